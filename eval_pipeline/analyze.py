"""Analyses of a results folder; each writes a table (CSV) and a figure (PNG + PDF).

    python -m eval_pipeline.analyze trends RESULTS_DIR            # curve shape of every family/task/prompt
    python -m eval_pipeline.analyze trends --published            # the same for the paper's plotted numbers
    python -m eval_pipeline.analyze decompose RESULTS_DIR|--published
    python -m eval_pipeline.analyze slice-sandwich RESULTS_DIR --threshold 20.5
    python -m eval_pipeline.analyze slice-sandwich --published      # the authors' released data, nine tasks
    python -m eval_pipeline.analyze trajectories RESULTS_DIR [--runs runs/tinyworld]
    python -m eval_pipeline.analyze fits RESULTS_DIR

Outputs go to RESULTS_DIR/analysis/ (or --out-dir).
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from neqa.cli import command
from eval_pipeline.registry import PUBLISHED_CSV
from neqa import io as neqa_io
from neqa.figures import save_figure
from neqa.io import DataError

EXPEMERGENCE_DIR = Path(__file__).resolve().parent / "published" / "expemergence"


# ----------------------------------------------------------------------------- output helpers

def write_csv(path, rows: list[dict]) -> Path:
    """The analyses' tables: floats to 6 significant digits, lists space-separated."""
    return neqa_io.write_csv(path, [{k: _cell(v) for k, v in r.items()} for r in rows])


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


def _shown(path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    p = Path(path).resolve()
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)


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
    from neqa.results import final_checkpoints, load_items, load_summaries

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

TREND_COLS = ["family", "task", "prompt", "accuracies", "label", "slope_support", "turn_support", "shape",
              "shape_p", "at_chance"]


def cmd_trends(args) -> int:
    from eval_pipeline.trends import classify_trend, compare_shapes, published_trends
    out_dir = _out_dir(args)
    kw = dict(monotone_support=args.monotone_support, turn_support=args.turn_support,
              n_boot=args.n_boot, seed=args.seed)
    if args.published:
        rows = published_trends(args.csv, n_items=args.n_items, readoff=args.readoff, shape_boot=args.shape_boot, **kw)
        curves = [(r["family"], r["task"], r["prompt"], np.arange(1, len(r["accuracies"].split()) + 1),
                   [float(a) for a in r["accuracies"].split()], r["label"] + (f", {r['shape']}" if r["shape"] else ""),
                   r["paper_label"]) for r in rows]
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
            shape = {}
            if tr.label == "positive" and len(g) >= 3:
                sh = compare_shapes(np.log10(x) if use_params else x, g["accuracy"].to_numpy(float),
                                    g["n_items"].to_numpy(int), n_boot=args.shape_boot, seed=args.seed)
                shape = sh.as_row()
            xlog = xlog and use_params
            rows.append({"family": family, "task": task, "prompt": prompt,
                         "models": " ".join(g["base_member"]), "x": " ".join(f"{v:.4g}" for v in x),
                         "accuracies": " ".join(f"{a:.3f}" for a in g["accuracy"]), **tr.as_row(), **shape})
            curves.append((family, task, prompt, x, list(g["accuracy"]),
                           tr.label + (f", {shape['shape']}" if shape else ""), None))
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
        loose = sum(r["agree_direction"] for r in rows)
        print(f"\nagreement with the paper's labels: {agree}/{len(rows)} (linear and sigmoid told apart; "
              f"{loose}/{len(rows)} when both count as positive); n = {args.n_items} items per point, "
              f"read-off error ±{args.readoff:g}")
        for r in rows:
            if not r["agree"]:
                ours = r["label"] + (f" ({r['shape']}, shape p = {r['shape_p']:.3g})" if r["shape"] else "")
                print(f"  differs: {r['family']} {r['task']} {r['prompt']} [{r['accuracies']}] "
                      f"paper {r['paper_label']} -> ours {ours}; slope support {r['slope_support']:.2f}"
                      + (f", turn support {r['turn_support']:.2f}" if r["turn_support"] is not None else ""))
    figs = _plot_trends(curves, out_dir, name, xlabel, xlog)
    print(f"wrote {table} and {', '.join(map(str, figs))}")
    return 0


def _plot_trends(curves, out_dir, name, xlabel, xlog):
    plt = _plt()
    panels = sorted({(c[1], c[2]) for c in curves})
    ncol = min(3, len(panels))
    nrow = math.ceil(len(panels) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(min(7.0, 2.4 * ncol), 2.3 * nrow), squeeze=False)
    for ax, (task, prompt) in zip(axes.flat, panels):
        for family, t, p, x, acc, label, paper in curves:
            if (t, p) != (task, prompt):
                continue
            text = f"{family}: {label}" + (f" (paper: {paper})" if paper else "")
            ax.plot(x, acc, marker="o", label=text)
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        if xlog:
            ax.set_xscale("log")
        ax.set_title(f"{task} / {prompt}", fontsize=7)
        ax.set_xlabel(xlabel, fontsize=6)
        ax.set_ylabel("accuracy", fontsize=6)
        ax.tick_params(labelsize=5)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=4)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    return save_figure(fig, out_dir, name)


# ----------------------------------------------------------------------------- decompose

DECOMPOSE_COLS = ["family", "task2_prompt", "neqa_prompt", "mapping", "n_models", "r2", "mae", "r2_fit", "mae_fit",
                  "joint_deviance", "joint_df", "joint_p_value"]


def _pairs(values) -> list[tuple[str, str]]:
    out = []
    for v in values:
        if v.count(":") != 1:
            raise DataError("--pairs", None, None, f"expected TASK2_PROMPT:NEQA_PROMPT, got {v!r}")
        out.append(tuple(v.split(":")))
    return out


def cmd_decompose(args) -> int:
    import warnings

    from eval_pipeline.decompose import decompose, published_series
    out_dir = _out_dir(args)
    pairs = _pairs(args.pairs)
    series = []   # (family, t2_prompt, neqa_prompt, models, x, t1, t2, neqa, n_items (k, 3), xlabel)
    if args.published:
        for fam, p2, pn, models, t1, t2, n in published_series(args.csv, pairs, args.t1_prompt):
            series.append((fam, p2, pn, models, np.arange(1, len(models) + 1, dtype=float), t1, t2, n,
                           np.full((len(models), 3), args.n_items), "place in family"))
    else:
        by = {(f, t, p): g for f, t, p, g in results_curves(args.results_dir, with_items=False)}
        for family in sorted({k[0] for k in by}):
            g1 = by.get((family, "task1", args.t1_prompt))
            for p2, pn in pairs:
                g2, gn = by.get((family, "task2", p2)), by.get((family, "neqa", pn))
                if g1 is None or g2 is None or gn is None:
                    continue
                common = [m for m in gn["base_member"] if m in set(g1["base_member"]) & set(g2["base_member"])]
                if len(common) < 3:
                    continue
                pick = lambda g: g.set_index("base_member").loc[common]
                a, b, n = pick(g1), pick(g2), pick(gn)
                use_params = n["n_params"].notna().all() and (n["n_params"] > 0).all() and n["n_params"].nunique() == len(n)
                x = np.log10(n["n_params"].to_numpy(float)) if use_params else n["rank"].to_numpy(float)
                counts = np.stack([a["n_items"], b["n_items"], n["n_items"]], axis=1).astype(int)
                series.append((family, p2, pn, common, x, a["accuracy"].to_numpy(float), b["accuracy"].to_numpy(float),
                               n["accuracy"].to_numpy(float), counts, "log10 parameters" if use_params else "place in family"))
        if not series:
            raise DataError(args.results_dir, None, None,
                            f"no family has task1/{args.t1_prompt} and a task2/neqa pair of "
                            f"{', '.join(args.pairs)} results for 3+ common members")
    rows, models, fits = [], [], []
    for fam, p2, pn, names, x, t1, t2, n, counts, xlabel in series:
        for mapping in args.mapping:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                d = decompose(x, t1, t2, n, mapping=mapping, n_items=counts, n_boot=args.n_boot, seed=args.seed)
            fits.append((fam, p2, pn, xlabel, d))
            rows.append({"family": fam, "task2_prompt": p2, "neqa_prompt": pn, "task1_prompt": args.t1_prompt,
                         "mapping": mapping, "n_models": len(names), "r2": d.r2, "mae": d.mae, "r2_fit": d.r2_fit,
                         "mae_fit": d.mae_fit, **d.joint_summary()})
            for i, m in enumerate(names):
                j = d.joint[i]
                models.append({"family": fam, "task2_prompt": p2, "neqa_prompt": pn, "mapping": mapping, "model": m,
                               "x": x[i], "n_items": " ".join(map(str, counts[i])), "task1": t1[i], "task2": t2[i],
                               "s": d.s[i], "neqa": n[i], "composed": d.composed[i], "composed_fit": d.composed_fit[i],
                               "joint_t1": j.t1, "joint_t1_lo": j.t1_ci[0], "joint_t1_hi": j.t1_ci[1],
                               "joint_s": j.s, "joint_s_lo": j.s_ci[0], "joint_s_hi": j.s_ci[1],
                               "joint_deviance": j.deviance, "joint_p_value": j.p_value})
    out_dir.mkdir(parents=True, exist_ok=True)
    table = write_csv(out_dir / "decompose.csv", rows)
    table2 = write_csv(out_dir / "decompose_models.csv", models)
    source = "the paper's plotted values (±3 points read off its figures; n = %d items per point)" % args.n_items \
        if args.published else str(args.results_dir)
    print(f"Task decomposition on {source}; task 1 = task1/{args.t1_prompt}; r2/mae: measured t1 and s composed, "
          "r2_fit/mae_fit: t1 linear and task 2 sigmoid fitted, then composed; joint: binomial fit per model")
    _print_table(rows, DECOMPOSE_COLS)
    figs = _plot_decompose([f for f in fits if f[4].mapping == args.mapping[0]], out_dir, args.ncols,
                           {(f, p2, pn, d.mapping): d for f, p2, pn, _, d in fits})
    print(f"wrote {table}, {table2} and {', '.join(map(str, figs))}")
    return 0


def _plot_decompose(fits, out_dir, ncols, all_fits):
    plt = _plt()
    ncols = max(1, min(ncols, len(fits)))
    nrows = math.ceil(len(fits) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(min(7.0, 3.4 * ncols), 2.8 * nrows + 0.3), squeeze=False)
    for ax, (fam, p2, pn, xlabel, d) in zip(axes.flat, fits):
        xs = np.linspace(d.x.min(), d.x.max(), 200)
        c1, c2, cs, cn = d.curve(xs)
        ax.plot(d.x, d.t1, "o", color="C0", ms=3)
        ax.plot(xs, c1, "-", color="C0", lw=1, label="task 1 (linear fit)")
        ax.plot(d.x, d.t2, "o", color="C1", ms=3)
        ax.plot(xs, c2, "-", color="C1", lw=1, label=f"task 2 accuracy, {p2} (sigmoid fit)")
        ax.plot(xs, cs, "--", color="C1", lw=1, label=f"latent s ({d.mapping})")
        ax.plot(d.x, d.neqa, "s", color="C3", ms=3, label=f"NeQA {pn} (measured)")
        ax.plot(d.x, d.composed, "x", color="k", ms=4, label=f"composed, measured (R² {d.r2:.2f})")
        ax.plot(xs, cn, "-", color="k", lw=1, label=f"composed, fitted (R² {d.r2_fit:.2f})")
        other = [v for k, v in all_fits.items() if k[:3] == (fam, p2, pn) and k[3] != d.mapping]
        for o in other:
            ax.plot(d.x, o.composed, ":", color="grey", lw=1, label=f"composed, {o.mapping} (R² {o.r2:.2f})")
        ax.axhline(0.5, color="grey", lw=0.5)
        ax.set_title(f"{fam}: task 2 {p2} / NeQA {pn}", fontsize=7)
        ax.set_xlabel(xlabel, fontsize=7)
        ax.tick_params(labelsize=6)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=4.5, loc="lower left")
    for ax in list(axes.flat)[len(fits):]:
        ax.axis("off")
    fig.tight_layout()
    return save_figure(fig, out_dir, "decompose")


# ----------------------------------------------------------------------------- slice-and-sandwich

def cmd_slice_sandwich(args) -> int:
    from eval_pipeline import slice_sandwich as sas
    out_dir = _out_dir(args)
    runs = []      # (task label, names, Forecast)
    try:
        if args.published:
            for task in args.tasks or list(sas.TASKS):
                df, f = sas.forecast_expemergence(task, args.data_dir, threshold=args.threshold,
                                                  deg_easy=args.deg_easy, deg_hard=args.deg_hard)
                runs.append((task, list(df["model"]), f))
            source = f"the authors' released results ({_shown(args.data_dir)})"
        else:
            from neqa.results import final_checkpoints, load_items, load_summaries
            summ = final_checkpoints(load_summaries(args.results_dir))
            summ = summ[(summ["task"] == args.task) & (summ["prompt"] == args.prompt)]
            if args.family:
                summ = summ[summ["family"].isin(args.family)]
            if len(summ) < 4:
                raise DataError(args.results_dir, None, None, f"fewer than 4 models with {args.task}/{args.prompt} results")
            brier, acc, x, names = sas.matrices_from_items(load_items(args.results_dir, summ), summ)
            threshold = args.threshold if args.threshold is not None else float(np.quantile(x, 2 / 3))
            overall, easy, hard = sas.group_scores(brier, x, threshold)
            f = sas.forecast(x, acc, overall, easy, hard, threshold, args.chance,
                             deg_easy=args.deg_easy, deg_hard=args.deg_hard)
            runs.append((f"{args.task}/{args.prompt}", names, f))
            source = f"{args.results_dir} ({brier.shape[1]} questions every model answered)"
    except (ValueError, FileNotFoundError) as e:
        raise DataError(args.results_dir or args.data_dir, None, None, str(e)) from None
    rows, errs = [], []
    for task, names, f in runs:
        for i, m in enumerate(names):
            rows.append({"task": task, "model": m, "log10_flops": f.log_flops[i], "acc": f.accuracy[i],
                         "split": "forecast" if f.test[i] else "fit", "sas_pred": f.sas_pred[i],
                         "baseline_pred": f.baseline_pred[i], "brier_pred": f.brier_pred[i]})
        errs.append({"task": task, "threshold": f.threshold, **f.errors()})
    out_dir.mkdir(parents=True, exist_ok=True)
    t1 = write_csv(out_dir / "slice_sandwich_forecast.csv", rows)
    t2 = write_csv(out_dir / "slice_sandwich_errors.csv", errs)
    print(f"Slice-and-Sandwich on {source}; errors over the models at or above the threshold:")
    _print_table(errs, ["task", "threshold", "n_fit", "n_test", "sas_mae", "sas_mse", "baseline_mae", "baseline_mse"])
    for task, _, f in runs:
        for n in f.notes:
            print(f"note ({task}): {n}")
    figs = _plot_slice_sandwich(runs, out_dir, args.ncols, "log10 FLOPs (1e21)" if args.published else "log10 FLOPs")
    print(f"wrote {t1}, {t2} and {', '.join(map(str, figs))}")
    return 0


def _plot_slice_sandwich(runs, out_dir, ncols, xlabel):
    """The authors' forecast figure, one panel per task: fitting models red, forecast models blue,
    slice-and-sandwich black, baseline orange."""
    plt = _plt()
    ncols = max(1, min(ncols, len(runs)))
    nrows = math.ceil(len(runs) / ncols)
    width = min(7.0, 2.4 * ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, 2.1 * nrows + 0.4), squeeze=False)
    for ax, (task, _, f) in zip(axes.flat, runs):
        e = f.errors()
        order = np.argsort(f.log_flops, kind="stable")
        ax.scatter(f.log_flops[f.fit], f.accuracy[f.fit], s=8, color="red", label="fitting split")
        ax.scatter(f.log_flops[f.test], f.accuracy[f.test], s=8, color="blue", label="forecast split")
        ax.plot(f.log_flops[order], f.sas_pred[order], color="black", lw=1,
                label=f"S&S (MSE {e['sas_mse']:.2g})")
        ax.plot(f.log_flops[order], f.baseline_pred[order], color="orange", lw=1,
                label=f"baseline (MSE {e['baseline_mse']:.2g})")
        ax.axvline(f.threshold, color="grey", lw=0.6, ls=":")
        ax.set_ylim(0, 1)
        ax.set_title(task, fontsize=8)
        ax.tick_params(labelsize=6)
        ax.set_xlabel(xlabel, fontsize=7)
        ax.set_ylabel("accuracy", fontsize=7)
        ax.legend(fontsize=5, loc="upper left")
    for ax in list(axes.flat)[len(runs):]:
        ax.axis("off")
    fig.tight_layout()
    return save_figure(fig, out_dir, "slice_sandwich")


# ----------------------------------------------------------------------------- trajectories

def cmd_trajectories(args) -> int:
    from eval_pipeline.trajectories import compare_predictors, nested_comparison, trajectory_table
    from neqa.results import load_summaries
    out_dir = _out_dir(args)
    traj = trajectory_table(load_summaries(args.results_dir), args.runs)
    if args.losses:
        traj = _fill_losses(traj, args.losses)
    if traj["val_loss"].isna().all():
        raise DataError(args.results_dir, None, "val_loss", "no validation loss for any checkpoint: give --runs "
                        "(train logs) or --losses (a table with base_member, step, val_loss)")
    rows = compare_predictors(traj)
    nested = nested_comparison(traj)
    out_dir.mkdir(parents=True, exist_ok=True)
    cols = ["family", "base_member", "step", "task", "prompt", "n_params", "train_tokens", "flops",
            "val_loss", "perplexity", "accuracy", "n_items"]
    t1 = write_csv(out_dir / "trajectories.csv", traj[cols].to_dict("records"))
    t2 = write_csv(out_dir / "trajectories_predictors.csv", rows)
    _print_table(rows, ["family", "task", "prompt", "n_points", "n_sizes", "r2_log_ppl", "r2_log_params",
                        "spearman_log_ppl", "spearman_log_params", "perplexity_better"])
    if nested:
        t3 = write_csv(out_dir / "trajectories_nested.csv", nested)
        print("\nnested binomial regressions over every checkpoint of every size (logit accuracy on log perplexity, "
              "log parameters, both):")
        _print_table(nested, ["family", "task", "prompt", "n_points", "dispersion", "p_size_given_ppl_quasi",
                              "p_ppl_given_size_quasi", "cv_mae_ppl", "cv_mae_size", "cv_mae_both"])
        for r in nested:
            print(f"{r['family']} {r['task']}/{r['prompt']}: {r['answer']}")
        t2 = f"{t2}, {t3}"
    plt = _plt()
    keys = sorted(traj.groupby(["family", "task", "prompt"], dropna=False).groups)
    fig, axes = plt.subplots(len(keys), 3, figsize=(7.0, 2.3 * len(keys)), squeeze=False)
    for row_axes, key in zip(axes, keys):
        g = traj[(traj["family"] == key[0]) & (traj["task"] == key[1]) & (traj["prompt"] == key[2])]
        for col, ax, lab in (("perplexity", row_axes[0], "validation perplexity"),
                             ("train_tokens", row_axes[1], "tokens"), ("flops", row_axes[2], "FLOPs")):
            for m, gm in g.groupby("base_member", sort=False):
                gm = gm.sort_values("step")
                ax.plot(gm[col], gm["accuracy"], "-o", ms=3, label=m)
            ax.set_xscale("log")
            ax.set_xlabel(lab, fontsize=7)
            ax.set_ylabel("accuracy", fontsize=7)
            ax.tick_params(labelsize=6)
            ax.set_title(f"{key[0]} {key[1]}/{key[2]}", fontsize=7)
        row_axes[0].invert_xaxis()          # better models to the right
        row_axes[0].legend(fontsize=6)
    fig.tight_layout()
    figs = save_figure(fig, out_dir, "trajectories")
    print(f"wrote {t1}, {t2} and {', '.join(map(str, figs))}")
    return 0


def _fill_losses(traj, path):
    """Validation loss (and the checkpoint's tokens and FLOPs) from a table with base_member, step,
    val_loss, e.g. a trajectories.csv written before, where the train logs are gone."""
    import pandas as pd
    try:
        t = pd.read_csv(path)
    except (OSError, ValueError) as e:
        raise DataError(path, None, None, f"cannot read: {e}") from None
    missing = {"base_member", "step", "val_loss"} - set(t.columns)
    if missing:
        raise DataError(path, 1, ", ".join(sorted(missing)), "missing column")
    keep = [c for c in ("base_member", "step", "val_loss", "train_tokens", "flops") if c in t.columns]
    t = t[keep].drop_duplicates(["base_member", "step"]).rename(columns=lambda c: c if c in ("base_member", "step") else f"{c}_table")
    out = traj.merge(t, on=["base_member", "step"], how="left")
    for c in ("val_loss", "train_tokens", "flops"):
        if f"{c}_table" in out:
            out[c] = out[f"{c}_table"].where(out[f"{c}_table"].notna(), out[c])
            out = out.drop(columns=f"{c}_table")
    out["perplexity"] = np.exp(out["val_loss"])
    return out


# ----------------------------------------------------------------------------- fits

def cmd_fits(args) -> int:
    import warnings

    from eval_pipeline.fits import (
        bootstrap_intervals,
        chinchilla_identifiable,
        fit_broken_power_law,
        fit_chinchilla,
        fit_power_law,
    )
    out_dir = _out_dir(args)
    rows, curves = [], []
    rng = np.random.default_rng(args.seed)
    for family, task, prompt, g in results_curves(args.results_dir, with_items=False):
        if len(g) < 2 or not (g["n_params"].notna().all() and (g["n_params"] > 0).all()):
            continue
        N, acc, n = g["n_params"].to_numpy(float), g["accuracy"].to_numpy(float), g["n_items"].to_numpy(int)
        row = {"family": family, "task": task, "prompt": prompt, "n_points": len(g)}
        err = 1 - acc
        if np.all(err > 0) and np.unique(N).size >= 2:
            pl = fit_power_law(N, err)
            alphas = []
            for _ in range(args.n_boot):            # items redrawn per point: Binomial(n, acc) / n
                eb = 1 - rng.binomial(n, acc) / n
                if np.all(eb > 0):
                    alphas.append(fit_power_law(N, eb).alpha)
            lo, hi = np.percentile(alphas, [2.5, 97.5]) if alphas else (np.nan, np.nan)
            row.update(power_law_x_c=pl.x_c, power_law_alpha=pl.alpha, power_law_alpha_lo=lo,
                       power_law_alpha_hi=hi, power_law_r2=pl.r2)
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
    chin = _chinchilla_rows(args, bootstrap_intervals, chinchilla_identifiable, fit_chinchilla)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = write_csv(out_dir / "fits.csv", rows)
    _print_table(rows, ["family", "task", "prompt", "n_points", "power_law_alpha", "power_law_alpha_lo",
                        "power_law_alpha_hi", "power_law_r2", "broken_r2"])
    print("(power law of the error rate 1 − accuracy in parameters; 95% interval from redrawing each point's items)")
    table2 = write_csv(out_dir / "fits_chinchilla.csv", chin)
    print("\nChinchilla form L = E + A/N^alpha + B/D^beta on validation loss over checkpoints:")
    for r in chin:
        if r.get("identifiable"):
            print(f"  {r['family']}: alpha {r['alpha']:.3g} [{r['alpha_lo']:.3g}, {r['alpha_hi']:.3g}], "
                  f"beta {r['beta']:.3g} [{r['beta_lo']:.3g}, {r['beta_hi']:.3g}], E {r['E']:.3g} "
                  f"({r['n_points']} points; {r['why']}; {r['n_boot']} bootstrap replicates, {r['failed']} failed)")
        else:
            print(f"  {r['family']}: not identifiable: {r['why']}")
    plt = _plt()
    ncols = max(1, min(3, len(curves)))
    nrows = math.ceil(len(curves) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(min(7.0, 2.4 * ncols), 2.2 * nrows + 0.3), squeeze=False)
    for ax, (family, task, prompt, N, acc, row, bpl) in zip(axes.flat, curves):
        xs = np.logspace(np.log10(N.min()), np.log10(N.max()), 200)
        ax.plot(N, acc, "ko", ms=3)
        if "power_law_alpha" in row:
            ax.plot(xs, 1 - (row["power_law_x_c"] / xs) ** row["power_law_alpha"], lw=1, label="1 − power law")
        if bpl is not None:
            ax.plot(xs, bpl(xs), "--", lw=1, label="broken power law")
        ax.set_xscale("log")
        ax.set_title(f"{family} {task}/{prompt}", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=5)
    for ax in list(axes.flat)[len(curves):]:
        ax.axis("off")
    fig.tight_layout()
    figs = save_figure(fig, out_dir, "fits")
    print(f"wrote {table}, {table2} and {', '.join(map(str, figs))}")
    return 0


def _chinchilla_rows(args, bootstrap_intervals, chinchilla_identifiable, fit_chinchilla):
    """One row per family: the Chinchilla fit on (N, D, validation loss) of every checkpoint, or why
    it cannot be made (no validation loss; N and D not separable)."""
    from eval_pipeline.trajectories import trajectory_table
    from neqa.results import load_summaries
    summ = load_summaries(args.results_dir)
    out = []
    for family, g in summ.groupby("family", dropna=False):
        if g["step"].notna().any():
            t = trajectory_table(g, args.runs)
            if args.losses:
                t = _fill_losses(t, args.losses)
            t = t.drop_duplicates(["base_member", "step"])
        else:
            t = g.assign(val_loss=g["val_loss"] if "val_loss" in g else np.nan)
        t = t.dropna(subset=["n_params", "train_tokens"]) if "train_tokens" in t else t.iloc[:0]
        if len(t) == 0:
            out.append({"family": family, "identifiable": False, "why": "no model size with training tokens"})
            continue
        ok, why = chinchilla_identifiable(t["n_params"].to_numpy(float), t["train_tokens"].to_numpy(float))
        t = t.dropna(subset=["val_loss"])
        N, D, L = (t[c].to_numpy(float) for c in ("n_params", "train_tokens", "val_loss"))
        if ok and len(t) == 0:
            ok, why = False, "no validation loss for the checkpoints (give --runs or --losses)"
        elif ok:
            ok, why = chinchilla_identifiable(N, D)
        row = {"family": family, "identifiable": ok, "why": why, "n_points": len(t)}
        if ok:
            f = fit_chinchilla(N, D, L, n_polish=2)

            def fit(n_, d_, l_):
                if not chinchilla_identifiable(n_, d_)[0]:      # a resample that lost a size's second budget
                    raise ValueError("not identifiable")
                c = fit_chinchilla(n_, d_, l_, n_polish=1)
                return {"alpha": c.alpha, "beta": c.beta, "E": c.E}

            ci, failed = bootstrap_intervals(fit, [N, D, L], n_boot=args.n_boot_chinchilla, seed=args.seed)
            row.update(E=f.E, A=f.A, B=f.B, alpha=f.alpha, beta=f.beta, huber=f.loss,
                       alpha_lo=ci.get("alpha", (np.nan,) * 2)[0], alpha_hi=ci.get("alpha", (np.nan,) * 2)[1],
                       beta_lo=ci.get("beta", (np.nan,) * 2)[0], beta_hi=ci.get("beta", (np.nan,) * 2)[1],
                       n_boot=args.n_boot_chinchilla, failed=failed)
        out.append(row)
    return out


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
    p.add_argument("--readoff", type=float, default=0.03,
                   help="--published: half-width of the read-off error of the paper's values, added to the "
                        "binomial noise (default 0.03, i.e. ±3 points)")
    p.add_argument("--shape-boot", type=int, default=400,
                   help="parametric-bootstrap replicates of the linear-vs-sigmoid likelihood-ratio test")
    p.set_defaults(func=cmd_trends)

    p = sub.add_parser("decompose", help="compose task 1 and task 2 as the paper does, compare with NeQA",
                       description="Task decomposition NeQA = t1·s + (1 − t1)(1 − s); method in eval_pipeline/decompose.py.")
    common(p)
    p.add_argument("--t1-prompt", default="zeroshot", help="prompt of the task-1 curve (the paper: zero-shot)")
    p.add_argument("--pairs", nargs="+", default=["weak:zeroshot", "strong:zeroshot_hint"],
                   help="TASK2_PROMPT:NEQA_PROMPT pairs (the paper: weak with zero-shot, strong with zero-shot + hint)")
    p.add_argument("--mapping", nargs="+", choices=["above_chance", "raw"], default=["above_chance", "raw"],
                   help="task-2 accuracy → s: above_chance s = clip(2·acc − 1, 0, 1) (the paper's 0.5 + 0.5·s), "
                        "raw s = acc; the first one is drawn")
    p.add_argument("--n-items", type=int, default=100, help="items per point for --published (the paper: 100)")
    p.add_argument("--n-boot", type=int, default=500, help="bootstrap replicates of the joint fit")
    p.add_argument("--ncols", type=int, default=2, help="figure panels per row")
    p.set_defaults(func=cmd_decompose)

    p = sub.add_parser("slice-sandwich", help="forecast accuracy above an emergence threshold (Wu & Lo 2024)",
                       description="Slice-and-Sandwich forecast as the authors compute it; method in "
                                   "eval_pipeline/slice_sandwich.py. --published runs it on the authors' released "
                                   "per-group results for ~100 LLMs (eval_pipeline/published/expemergence/).")
    common(p, published=False)
    p.add_argument("--published", action="store_true",
                   help="the authors' released results (ExpEmergence) instead of a results folder")
    p.add_argument("--data-dir", default=str(EXPEMERGENCE_DIR), help="folder of the ExpEmergence CSVs (--published)")
    p.add_argument("--tasks", nargs="+", help="ExpEmergence tasks (--published; default: all nine)")
    p.add_argument("--task", default="neqa", help="task of the results folder's runs")
    p.add_argument("--prompt", default="zeroshot", help="prompt of the results folder's runs")
    p.add_argument("--family", nargs="+", help="only these families (default: all, pooled by FLOPs)")
    p.add_argument("--threshold", type=float,
                   help="emergence threshold in log10 FLOPs (--published: log10 of FLOPs/1e21, default each task's "
                        "own from the authors' utils.py; results folder: default the 2/3 quantile of log FLOPs)")
    p.add_argument("--deg-easy", type=int, default=5, help="polynomial degree of the easy group (authors: 5)")
    p.add_argument("--deg-hard", type=int, default=2, help="polynomial degree of the hard group (authors: 2)")
    p.add_argument("--chance", type=float, default=0.5, help="chance accuracy of the results folder's task")
    p.add_argument("--ncols", type=int, default=3, help="figure panels per row")
    p.set_defaults(func=cmd_slice_sandwich)

    p = sub.add_parser("trajectories", help="accuracy along training vs perplexity, tokens, FLOPs (Xia et al. 2023)",
                       description="Training trajectories; method in eval_pipeline/trajectories.py.")
    common(p, published=False)
    p.add_argument("--runs", help="runs/<family> folder with <member>/train_log.jsonl for validation loss")
    p.add_argument("--losses", help="a table (CSV) with base_member, step, val_loss [, train_tokens, flops] "
                                    "for checkpoints whose train logs are gone, e.g. an earlier trajectories.csv")
    p.set_defaults(func=cmd_trajectories)

    p = sub.add_parser("fits", help="power law of the error rate and a broken power law per curve; the "
                                    "Chinchilla form on validation loss where each size has 2+ data budgets",
                       description="Scaling-law fits; see eval_pipeline/fits.py. Per (family, task, prompt): a power law "
                                   "of the error rate in parameters (bootstrap interval on the exponent) and, with 7+ "
                                   "points, a broken power law. Per family: the Chinchilla form on validation loss over "
                                   "checkpoints, run only when every size has two or more data budgets.")
    common(p, published=False)
    p.add_argument("--min-points-broken", type=int, default=7,
                   help="fit the 6-parameter broken power law only with this many points (fewer: it interpolates)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates of the power-law exponent")
    p.add_argument("--n-boot-chinchilla", type=int, default=50, help="bootstrap replicates of the Chinchilla fit")
    p.add_argument("--runs", help="runs/<family> folder with train logs (validation loss, tokens per checkpoint)")
    p.add_argument("--losses", help="a table with base_member, step, val_loss, train_tokens (e.g. a trajectories.csv)")
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
