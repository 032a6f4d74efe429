"""Analyses of a results folder; each writes a table (CSV) and a figure (PNG + PDF).

    python -m eval_pipeline.analyze trends RESULTS_DIR            # curve shape of every family/task/prompt
    python -m eval_pipeline.analyze trends --published            # the same for the paper's plotted numbers
    python -m eval_pipeline.analyze decompose RESULTS_DIR|--published
    python -m eval_pipeline.analyze slice-sandwich RESULTS_DIR --threshold 20.5
    python -m eval_pipeline.analyze trajectories RESULTS_DIR [--runs runs/tinyworld]
    python -m eval_pipeline.analyze fits RESULTS_DIR

Outputs go to RESULTS_DIR/analysis/ (or --out-dir).
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

import numpy as np

from data_pipeline.cli import command
from data_pipeline.io import DataError, atomic_open, save_figure

PUBLISHED_CSV = Path(__file__).resolve().parent / "published" / "paper_figure_values.csv"


# ----------------------------------------------------------------------------- output helpers

def write_csv(path, rows: list[dict]) -> Path:
    path = Path(path)
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    with atomic_open(path) as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: _cell(v) for k, v in r.items()})
    return path


def _cell(v):
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    if isinstance(v, (list, tuple)):
        return " ".join(str(_cell(x)) for x in v)
    return "" if v is None else v


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _out_dir(args) -> Path:
    if args.out_dir:
        return Path(args.out_dir)
    if getattr(args, "results_dir", None):
        return Path(args.results_dir) / "analysis"
    return Path("results") / "analysis"


def _print_table(rows: list[dict], cols: list[str]) -> None:
    widths = {c: max(len(c), *(len(str(_cell(r.get(c)))) for r in rows)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(str(_cell(r.get(c))).ljust(widths[c]) for c in cols))


# ----------------------------------------------------------------------------- curves from a results folder

def member_ranks(family: str, members: list[str], n_params: dict) -> dict:
    """1-based place of each member in its family: the registry's order if the family is registered,
    else by parameter count, else by name."""
    try:
        from eval_pipeline.registry import load_family
        fam = load_family(family)
        known = [m.name for m in fam.members]
        if all(m in known for m in members):
            order = sorted(members, key=known.index)
            return {m: i + 1 for i, m in enumerate(order)}
    except Exception:  # an unregistered family (e.g. a test's): fall back
        pass
    order = sorted(members, key=lambda m: (n_params.get(m) if n_params.get(m) == n_params.get(m) else math.inf, m))
    return {m: i + 1 for i, m in enumerate(order)}


def results_curves(results_dir, with_items: bool = True):
    """Yield (family, task, prompt, frame) per curve, frame sorted small to large with columns
    base_member, rank, n_params, accuracy, n_items, flops and (optionally) items (0/1 arrays by index)."""
    from eval_pipeline.results import final_checkpoints, load_items, load_summaries

    summ = final_checkpoints(load_summaries(results_dir))
    items = load_items(results_dir, summ) if with_items else None
    for (family, task, prompt), g in summ.groupby(["family", "task", "prompt"], dropna=False, sort=True):
        g = g.copy()
        ranks = member_ranks(family, list(g["base_member"]), dict(zip(g["base_member"], g["n_params"])))
        g["rank"] = g["base_member"].map(ranks)
        g = g.sort_values("rank")
        if items is not None and len(items):
            sel = items[(items["family"] == family) & (items["task"] == task) & (items["prompt"] == prompt)]
            per = {m: f.sort_values("index") for m, f in sel.groupby("base_member")}
            idx_sets = {tuple(f["index"]) for f in per.values()}
            if len(per) == len(g) and len(idx_sets) == 1:
                g["items"] = [per[m]["correct"].astype(float).to_numpy() for m in g["base_member"]]
        yield family, task, prompt, g


# ----------------------------------------------------------------------------- trends

TREND_COLS = ["family", "task", "prompt", "accuracies", "label", "slope", "slope_support",
              "turning_point", "turn_support", "at_chance"]


def cmd_trends(args) -> int:
    from eval_pipeline.trends import classify_trend, published_trends
    out_dir = _out_dir(args)
    kw = dict(monotone_support=args.monotone_support, turn_support=args.turn_support,
              n_boot=args.n_boot, seed=args.seed)
    if args.published:
        rows = published_trends(args.csv, n_items=args.n_items, **kw)
        curves = [(r["family"], r["task"], r["prompt"], np.arange(1, len(r["accuracies"].split()) + 1),
                   [float(a) for a in r["accuracies"].split()], r["label"], r["paper_label"]) for r in rows]
        xlabel = "place in family (the paper's 'Scale')"
        xlog = False
        name = "trends_published"
    else:
        rows, curves = [], []
        xlog = True
        for family, task, prompt, g in results_curves(args.results_dir):
            if len(g) < 2:
                continue
            use_params = g["n_params"].notna().all() and (g["n_params"] > 0).all() and g["n_params"].nunique() == len(g)
            x = g["n_params"].to_numpy(float) if use_params else g["rank"].to_numpy(float)
            items = list(g["items"]) if "items" in g else None
            tr = classify_trend(x, g["accuracy"].to_numpy(float), n_items=g["n_items"].to_numpy(int),
                                chance=args.chance, items=items,
                                x_scale="log" if use_params else "linear", **kw)
            xlog = xlog and use_params
            rows.append({"family": family, "task": task, "prompt": prompt,
                         "models": " ".join(g["base_member"]), "x": " ".join(f"{v:.4g}" for v in x),
                         "accuracies": " ".join(f"{a:.3f}" for a in g["accuracy"]), **tr.as_row()})
            curves.append((family, task, prompt, x, list(g["accuracy"]), tr.label, None))
        if not rows:
            raise DataError(args.results_dir, None, None, "no curve with two or more members to classify")
        xlabel = "parameters" if xlog else "place in family"
        name = "trends"
    out_dir.mkdir(parents=True, exist_ok=True)
    table = write_csv(out_dir / f"{name}.csv", rows)
    cols = TREND_COLS + (["paper_label", "agree"] if args.published else [])
    _print_table(rows, cols)
    if args.published:
        agree = sum(r["agree"] for r in rows)
        print(f"\nagreement with the paper's labels: {agree}/{len(rows)}")
        for r in rows:
            if not r["agree"]:
                print(f"  differs: {r['family']} {r['task']} {r['prompt']} [{r['accuracies']}] "
                      f"paper {r['paper_label']} -> ours {r['label']}")
    figs = _plot_trends(curves, out_dir, name, xlabel, xlog)
    print(f"wrote {table} and {', '.join(map(str, figs))}")
    return 0


def _plot_trends(curves, out_dir, name, xlabel, xlog):
    plt = _plt()
    panels = sorted({(c[1], c[2]) for c in curves})
    ncol = min(3, len(panels))
    nrow = math.ceil(len(panels) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.2 * nrow), squeeze=False)
    for ax, (task, prompt) in zip(axes.flat, panels):
        for family, t, p, x, acc, label, paper in curves:
            if (t, p) != (task, prompt):
                continue
            text = f"{family}: {label}" + (f" (paper: {paper})" if paper else "")
            ax.plot(x, acc, marker="o", label=text)
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        if xlog:
            ax.set_xscale("log")
        ax.set_title(f"{task} / {prompt}", fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel("accuracy", fontsize=8)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    return save_figure(fig, out_dir, name)


# ----------------------------------------------------------------------------- decompose

def cmd_decompose(args) -> int:
    import warnings
    from eval_pipeline.decompose import decompose, published_series
    out_dir = _out_dir(args)
    series = []   # (family, t2_prompt, models, x, t1, t2, neqa, xlabel)
    if args.published:
        for fam, p, models, t1, t2, n in published_series(args.csv, args.neqa_prompt, args.t1_prompt,
                                                          tuple(args.t2_prompt)):
            series.append((fam, p, models, np.arange(1, len(models) + 1, dtype=float), t1, t2, n,
                           "place in family"))
        name = "decompose_published"
    else:
        by = {}
        for family, task, prompt, g in results_curves(args.results_dir, with_items=False):
            by[(family, task, prompt)] = g
        for (family, task, prompt), gn in by.items():
            if task != "neqa" or prompt != args.neqa_prompt:
                continue
            g1 = by.get((family, "task1", args.t1_prompt))
            for p2 in args.t2_prompt:
                g2 = by.get((family, "task2", p2))
                if g1 is None or g2 is None:
                    continue
                common = [m for m in gn["base_member"] if m in set(g1["base_member"]) & set(g2["base_member"])]
                if len(common) < 3:
                    continue
                pick = lambda g: g.set_index("base_member").loc[common]
                a, b, n = pick(g1), pick(g2), pick(gn)
                use_params = n["n_params"].notna().all() and (n["n_params"] > 0).all()
                x = np.log10(n["n_params"].to_numpy(float)) if use_params else n["rank"].to_numpy(float)
                series.append((family, p2, common, x, a["accuracy"].to_numpy(float), b["accuracy"].to_numpy(float),
                               n["accuracy"].to_numpy(float), "log10 parameters" if use_params else "place in family"))
        if not series:
            raise DataError(args.results_dir, None, None,
                            f"no family has neqa/{args.neqa_prompt}, task1/{args.t1_prompt} and task2/"
                            f"{'|'.join(args.t2_prompt)} results for 3+ common members")
        name = "decompose"
    rows, fits = [], []
    for fam, p2, models, x, t1, t2, n, xlabel in series:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            d = decompose(x, t1, t2, n)
        fits.append((fam, p2, xlabel, d))
        for i, m in enumerate(models):
            rows.append({"family": fam, "task2_prompt": p2, "model": m, "x": x[i], "task1": t1[i], "task2": t2[i],
                         "neqa": n[i], "composed_measured": d.composed_measured[i], "composed_fit": d.composed_fit[i],
                         "r2_fit": d.r2_fit, "mae_fit": d.mae_fit, "r2_measured": d.r2_measured,
                         "mae_measured": d.mae_measured, "t1_fit": d.t1_fit, "t2_fit": d.t2_fit})
    out_dir.mkdir(parents=True, exist_ok=True)
    table = write_csv(out_dir / f"{name}.csv", rows)
    summary = [{"family": f, "task2_prompt": p, "r2_fit": d.r2_fit, "mae_fit": d.mae_fit,
                "r2_measured": d.r2_measured, "mae_measured": d.mae_measured} for f, p, _, d in fits]
    _print_table(summary, list(summary[0]))
    plt = _plt()
    fig, axes = plt.subplots(1, len(fits), figsize=(4.2 * len(fits), 3.4), squeeze=False)
    for ax, (fam, p2, xlabel, d) in zip(axes.flat, fits):
        xs = np.linspace(d.x.min(), d.x.max(), 200)
        c1, c2, cn = d.curve(xs)
        for y, fit, lab, col in ((d.t1, c1, "task 1 (linear)", "C0"), (d.t2, c2, "task 2 (sigmoid)", "C1"),
                                 (d.neqa, cn, "NeQA vs composed", "C3")):
            ax.plot(d.x, y, "o", color=col)
            ax.plot(xs, fit, "-", color=col, label=lab)
        ax.set_title(f"{fam}, task 2 {p2}: R² {d.r2_fit:.2f}", fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=6)
    fig.tight_layout()
    figs = save_figure(fig, out_dir, name)
    print(f"wrote {table} and {', '.join(map(str, figs))}")
    return 0


# ----------------------------------------------------------------------------- slice-and-sandwich

def cmd_slice_sandwich(args) -> int:
    from eval_pipeline.results import final_checkpoints, load_items, load_summaries
    from eval_pipeline.slice_sandwich import difficulty_groups, forecast, matrices_from_items
    out_dir = _out_dir(args)
    summ = final_checkpoints(load_summaries(args.results_dir))
    summ = summ[(summ["task"] == args.task) & (summ["prompt"] == args.prompt)]
    if args.family:
        summ = summ[summ["family"].isin(args.family)]
    if len(summ) < 3:
        raise DataError(args.results_dir, None, None, f"fewer than 3 models with {args.task}/{args.prompt} results")
    try:
        brier, acc, x, names = matrices_from_items(load_items(args.results_dir, summ), summ)
        threshold = args.threshold if args.threshold is not None else float(np.quantile(x, 2 / 3))
        f = forecast(brier, acc, x, threshold, n_groups=args.groups, deg_easy=args.deg_easy,
                     deg_hard=args.deg_hard, chance=args.chance)
    except ValueError as e:
        raise DataError(args.results_dir, None, None, str(e)) from None
    rows = [{"model": m, "log10_flops": x[i], "above_threshold": bool(f.above[i]), "accuracy": acc[i],
             "forecast": f.forecast[i], "baseline": f.baseline[i], "threshold": threshold,
             "mae_above": f.mae, "baseline_mae_above": f.baseline_mae} for i, m in enumerate(names)]
    out_dir.mkdir(parents=True, exist_ok=True)
    name = f"slice_sandwich_{args.task}_{args.prompt}"
    table = write_csv(out_dir / f"{name}.csv", rows)
    for n in f.notes:
        print(f"note: {n}")
    print(f"threshold {threshold:.3g} log10 FLOPs; {int(f.above.sum())} models above it")
    print(f"forecast MAE above the threshold: slice-and-sandwich {f.mae:.4f}, sigmoid baseline {f.baseline_mae:.4f}")
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
    groups = difficulty_groups(brier, x <= threshold, min(args.picture_groups, brier.shape[1]))
    cmap = plt.get_cmap("viridis")
    for gi, g in enumerate(groups):
        a1.plot(x, brier[:, g].mean(axis=1), "-o", ms=3, color=cmap(gi / max(1, len(groups) - 1)))
    a1.set_xlabel("log10 FLOPs")
    a1.set_ylabel("mean Brier (easy = dark)")
    a2.plot(x, acc, "ko", label="measured")
    a2.plot(x, f.forecast, "-", label=f"slice-and-sandwich (MAE {f.mae:.3f})")
    a2.plot(x, f.baseline, "--", label=f"sigmoid baseline (MAE {f.baseline_mae:.3f})")
    for ax in (a1, a2):
        ax.axvline(threshold, color="grey", lw=0.8)
    a2.set_xlabel("log10 FLOPs")
    a2.set_ylabel("accuracy")
    a2.legend(fontsize=7)
    fig.tight_layout()
    figs = save_figure(fig, out_dir, name)
    print(f"wrote {table} and {', '.join(map(str, figs))}")
    return 0


# ----------------------------------------------------------------------------- trajectories

def cmd_trajectories(args) -> int:
    from eval_pipeline.results import load_summaries
    from eval_pipeline.trajectories import compare_predictors, trajectory_table
    out_dir = _out_dir(args)
    traj = trajectory_table(load_summaries(args.results_dir), args.runs)
    rows = compare_predictors(traj)
    out_dir.mkdir(parents=True, exist_ok=True)
    cols = ["family", "base_member", "step", "task", "prompt", "n_params", "train_tokens", "flops",
            "val_loss", "perplexity", "accuracy"]
    t1 = write_csv(out_dir / "trajectories.csv", traj[cols].to_dict("records"))
    t2 = write_csv(out_dir / "trajectories_predictors.csv", rows)
    _print_table(rows, ["family", "task", "prompt", "n_points", "n_sizes", "r2_log_ppl", "r2_log_params",
                        "spearman_log_ppl", "spearman_log_params", "perplexity_better"])
    plt = _plt()
    keys = sorted(traj.groupby(["family", "task", "prompt"], dropna=False).groups)
    fig, axes = plt.subplots(len(keys), 3, figsize=(12, 3.2 * len(keys)), squeeze=False)
    for row_axes, key in zip(axes, keys):
        g = traj[(traj["family"] == key[0]) & (traj["task"] == key[1]) & (traj["prompt"] == key[2])]
        for col, ax, lab in (("perplexity", row_axes[0], "validation perplexity"),
                             ("train_tokens", row_axes[1], "tokens"), ("flops", row_axes[2], "FLOPs")):
            for m, gm in g.groupby("base_member", sort=False):
                gm = gm.sort_values("step")
                ax.plot(gm[col], gm["accuracy"], "-o", ms=3, label=m)
            ax.set_xscale("log")
            ax.set_xlabel(lab, fontsize=8)
            ax.set_ylabel("accuracy", fontsize=8)
            ax.set_title(f"{key[0]} {key[1]}/{key[2]}", fontsize=8)
        row_axes[0].invert_xaxis()          # better models to the right
        row_axes[0].legend(fontsize=6)
    fig.tight_layout()
    figs = save_figure(fig, out_dir, "trajectories")
    print(f"wrote {t1}, {t2} and {', '.join(map(str, figs))}")
    return 0


# ----------------------------------------------------------------------------- fits

def cmd_fits(args) -> int:
    import warnings
    from eval_pipeline.fits import fit_broken_power_law, fit_power_law
    out_dir = _out_dir(args)
    rows, curves = [], []
    for family, task, prompt, g in results_curves(args.results_dir, with_items=False):
        if len(g) < 2 or not (g["n_params"].notna().all() and (g["n_params"] > 0).all()):
            continue
        N, acc = g["n_params"].to_numpy(float), g["accuracy"].to_numpy(float)
        row = {"family": family, "task": task, "prompt": prompt, "n_points": len(g)}
        err = 1 - acc
        if np.all(err > 0):
            pl = fit_power_law(N, err)
            row.update(power_law_x_c=pl.x_c, power_law_alpha=pl.alpha, power_law_r2=pl.r2)
        bpl = None
        if len(g) >= args.min_points_broken:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    bpl = fit_broken_power_law(N, acc)
                row.update(broken_a=bpl.a, broken_b=bpl.b, broken_c0=bpl.c0, broken_c1=bpl.c1,
                           broken_d1=bpl.d1, broken_f1=bpl.f1, broken_r2=bpl.r2)
            except ValueError as e:
                row["note"] = str(e)
        rows.append(row)
        curves.append((family, task, prompt, N, acc, row, bpl))
    if not rows:
        raise DataError(args.results_dir, None, "n_params", "no curve with 2+ members of known size")
    out_dir.mkdir(parents=True, exist_ok=True)
    table = write_csv(out_dir / "fits.csv", rows)
    _print_table(rows, ["family", "task", "prompt", "n_points", "power_law_alpha", "power_law_r2", "broken_r2"])
    plt = _plt()
    fig, axes = plt.subplots(1, len(curves), figsize=(4 * len(curves), 3.2), squeeze=False)
    for ax, (family, task, prompt, N, acc, row, bpl) in zip(axes.flat, curves):
        xs = np.logspace(np.log10(N.min()), np.log10(N.max()), 200)
        ax.plot(N, acc, "ko")
        if "power_law_alpha" in row:
            ax.plot(xs, 1 - (row["power_law_x_c"] / xs) ** row["power_law_alpha"], label="1 − power law")
        if bpl is not None:
            ax.plot(xs, bpl(xs), "--", label="broken power law")
        ax.set_xscale("log")
        ax.set_title(f"{family} {task}/{prompt}", fontsize=8)
        ax.legend(fontsize=6)
    fig.tight_layout()
    figs = save_figure(fig, out_dir, "fits")
    print(f"wrote {table} and {', '.join(map(str, figs))}")
    return 0


# ----------------------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m eval_pipeline.analyze", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="analysis", required=True, metavar="ANALYSIS")

    def common(p, published=True):
        p.add_argument("results_dir", nargs="?", help="results folder (<family>/<member>/<task>__<prompt>/)")
        p.add_argument("--output-dir", "--out-dir", dest="out_dir", help="where to write the table and figure (default RESULTS_DIR/analysis)")
        if published:
            p.add_argument("--published", action="store_true",
                           help="analyse the paper's plotted numbers (eval_pipeline/published/paper_figure_values.csv)")
            p.add_argument("--csv", default=str(PUBLISHED_CSV), help="the published-values CSV")
        p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("trends", help="label each curve positive / inverse / u-shaped / inverted-u / flat",
                       description="Label every (family, task, prompt) curve; method in eval_pipeline/trends.py.")
    common(p)
    p.add_argument("--n-items", type=int, default=100, help="items per point for --published (the paper: 100)")
    p.add_argument("--chance", type=float, default=0.5)
    p.add_argument("--monotone-support", type=float, default=0.95,
                   help="bootstrap support needed for a positive/inverse slope")
    p.add_argument("--turn-support", type=float, default=0.9,
                   help="bootstrap support needed for both arms of a U / inverted U")
    p.add_argument("--n-boot", type=int, default=2000)
    p.set_defaults(func=cmd_trends)

    p = sub.add_parser("decompose", help="fit task 1 (linear) and task 2 (sigmoid), compose, compare with NeQA",
                       description="Task-decomposition fit; method in eval_pipeline/decompose.py.")
    common(p)
    p.add_argument("--neqa-prompt", default="zeroshot")
    p.add_argument("--t1-prompt", default="zeroshot")
    p.add_argument("--t2-prompt", nargs="+", default=["weak", "strong"])
    p.set_defaults(func=cmd_decompose)

    p = sub.add_parser("slice-sandwich", help="forecast accuracy above an emergence threshold (Wu & Lo 2024)",
                       description="Slice-and-Sandwich forecast; method in eval_pipeline/slice_sandwich.py.")
    common(p, published=False)
    p.add_argument("--task", default="neqa")
    p.add_argument("--prompt", default="zeroshot")
    p.add_argument("--family", nargs="+", help="only these families (default: all, pooled by FLOPs)")
    p.add_argument("--threshold", type=float,
                   help="emergence threshold in log10 FLOPs (default: the 2/3 quantile of the models' log FLOPs)")
    p.add_argument("--groups", type=int, default=3, help="difficulty groups for the forecast")
    p.add_argument("--picture-groups", type=int, default=10, help="difficulty groups in the figure")
    p.add_argument("--deg-easy", type=int, default=5)
    p.add_argument("--deg-hard", type=int, default=2)
    p.add_argument("--chance", type=float, default=0.5)
    p.set_defaults(func=cmd_slice_sandwich)

    p = sub.add_parser("trajectories", help="accuracy along training vs perplexity, tokens, FLOPs (Xia et al. 2023)",
                       description="Training trajectories; method in eval_pipeline/trajectories.py.")
    common(p, published=False)
    p.add_argument("--runs", help="runs/<family> folder with <member>/train_log.jsonl for validation loss")
    p.set_defaults(func=cmd_trajectories)

    p = sub.add_parser("fits", help="power law of the error rate and a broken power law per curve",
                       description="Scaling-law fits of each (family, task, prompt) curve; see eval_pipeline/fits.py.")
    common(p, published=False)
    p.add_argument("--min-points-broken", type=int, default=7,
                   help="fit the 6-parameter broken power law only with this many points (fewer: it interpolates)")
    p.set_defaults(func=cmd_fits)
    return ap


@command
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "published", False) is False and getattr(args, "results_dir", "x") is None:
        print("error: give RESULTS_DIR" + (" or --published" if hasattr(args, "published") else ""), file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
