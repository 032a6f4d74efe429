"""Write REPORT.md from what the pipeline stages left on disk: every figure, and for each curve the
trend it shows (eval_pipeline.trends.classify_trend) with the numbers behind it.

    python scripts/report.py --results results --eval results/eval --family-run runs/tinyworld
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from neqa.cli import command
from eval_pipeline.trends import classify_trend
from neqa.io import DataError, atomic_open

FIG5_SIM_N = 100_000  # the simulated curves are exact; a large n makes the bootstrap noise-free


def _img(path: Path, out: Path, caption: str) -> str:
    if not path.exists():
        return f"*{caption}: not produced ({path}).*\n"
    return f"![{caption}]({os.path.relpath(path, out.parent)})\n"


def _pct(values) -> str:
    return " → ".join(f"{100 * v:.0f}" for v in values)


def _trend_row(name: str, x, acc, n, found: list | None = None, x_scale: str = "log") -> str:
    t = classify_trend(np.asarray(x, float), np.asarray(acc, float), n_items=n, x_scale=x_scale)
    if found is not None and t.label != "flat":
        found.append(f"{name}: {t.label} ({_pct(acc)})")
    turn = "" if t.turning_point is None or np.isnan(t.turning_point) else f"{t.turning_point:.3g}"
    return (f"| {name} | {_pct(acc)} | **{t.label}** | {t.slope:+.3f} ({t.slope_support:.2f}) "
            f"| {turn} | {'yes' if t.at_chance else 'no'} |")


def _cot_parsed(eval_dir: Path) -> tuple[int, int]:
    """Chain-of-thought generations that contain a parsable final answer, over all generations."""
    parsed = total = 0
    for path in eval_dir.glob("*/*/*__fewshot_cot/items.jsonl"):
        for line in path.read_text().splitlines():
            r = json.loads(line)
            total += 1
            parsed += r.get("prediction") is not None
    return parsed, total


TREND_HEAD = ("| curve | accuracy % (small → large) | trend | slope per decade (support) | turning point | at chance |\n"
              "|---|---|---|---|---|---|")


def section_data(results: Path, out: Path, check_json: Path | None) -> list[str]:
    lines = ["## 1. The benchmark (Figure 3)", "",
             "`data_pipeline/neqa.jsonl` is the published release (1,718 items). Agreement of our negation rules "
             "with the release (`python -m data_pipeline.check`), contraction and prompt wording aside:", ""]
    if check_json and check_json.exists():
        rep = json.loads(check_json.read_text())
        lines += [f"Root-verb finder: {rep['parser']}.", "", "| published rule | n | agree | rate |", "|---|---|---|---|"]
        for rule, r in rep["per_rule"].items():
            lines.append(f"| {rule} | {r['n']} | {r['agree']} | {100 * r['rate']:.1f}% |")
        total = "-" if rep["rate"] is None else f"{100 * rep['rate']:.1f}%"
        lines += [f"| all rule-made | {rep['n']} | {rep['agree']} | {total} |", ""]
    lines.append(_img(results / "figures" / "fig3_neqa_stats.png", out, "Figure 3: make-up of NeQA"))
    return lines


def section_fig5(results: Path, out: Path) -> list[str]:
    lines = ["## 2. Task decomposition (Figure 5)", "",
             "NeQA = t1·s + (1 − t1)(1 − s), task 1 linear in scale, s (understanding the negation) a sigmoid, "
             "with the paper's own parameters (`python -m simulation.composition`; the scale axis is read as "
             "linear, so the slope is per unit of scale).", ""]
    csv = results / "figures" / "fig5_task_decomposition.csv"
    if csv.exists():
        df = pd.read_csv(csv)
        idx = np.linspace(0, len(df) - 1, 6).round().astype(int)  # six evenly spaced points for the table
        sub = df.iloc[idx]
        lines += [TREND_HEAD]
        for col in ("task1", "task2", "neqa"):
            lines.append(_trend_row(f"simulated {col}", sub["scale"], sub[col], FIG5_SIM_N, x_scale="linear"))
        low = df.loc[df["neqa"].idxmin()]
        lines += ["", f"The composed curve falls to {100 * low['neqa']:.1f}% at scale {low['scale']:.1f} and "
                      f"ends at {100 * df['neqa'].iloc[-1]:.1f}%.", ""]
    lines.append(_img(results / "figures" / "fig5_task_decomposition.png", out, "Figure 5"))
    measured = results / "figures" / "fig5_measured_decomposition.png"
    if measured.exists():
        lines.append(_img(measured, out, "Figure 5, measured: composition of measured task 1 and task 2"))
    return lines


def section_fig6(results: Path, out: Path) -> list[str]:
    """The Figure-6 grid as simulation.sentiment_eval wrote it: cell means ± sd over seeds, labels from the seeds."""
    lines = ["## 3. Negation ratio × model size (Figure 6)", ""]
    settings_path, cells_path = results / "settings" / "fig6.json", results / "figures" / "fig6_negation_ratio_cells.csv"
    if not cells_path.exists():
        return lines + [f"*Not run ({cells_path} is missing).*", ""]
    cells = pd.read_csv(cells_path)
    trends = pd.read_csv(results / "figures" / "fig6_negation_ratio_trends.csv")
    if settings_path.exists():
        st = json.loads(settings_path.read_text())
        pre = st["pretraining"]
        lines += [f"Pretrained ladder ({st['init']}): {len(st['models'])} sizes, pretrained once each "
                  f"({pre.get('tokens', 'hub'):,} tokens of {pre['corpus']}), then fine-tuned ({st['loss'].split(';')[0]}) on "
                  f"{st['data']['n_train']:,} {st['data']['source']} reviews per ratio r and seed "
                  f"({st['epochs']} epochs, lr {st['learning_rate']:g}); seeds {', '.join(map(str, st['seeds']))}; "
                  f"{int(cells['n_test'].iloc[0])} held-out reviews (`bash simulation/run.sh`). How this differs "
                  "from the paper: section 7.", ""]
    sizes = sorted(cells["non_embedding_params"].unique())
    for reading, title in (("greedy", "greedy next word over the whole vocabulary (the paper's reading)"),
                           ("pair", "P(good) vs P(bad)")):
        lines += [f"**{title}**, accuracy % mean ± sd over seeds, small → large "
                  f"({', '.join(f'{n / 1e3:.0f}k' for n in sizes)} non-embedding params):", "",
                  "| r | metric | per size | trend (seeds' labels) |", "|---|---|---|---|"]
        for ratio, g in cells.groupby("ratio"):
            g = g.sort_values("non_embedding_params")
            for metric in ("task1", "neqa", "task2"):
                vals = " → ".join(f"{100 * m:.0f} ± {100 * sd:.0f}" for m, sd in
                                  zip(g[f"{reading}_{metric}_mean"], g[f"{reading}_{metric}_sd"]))
                t = trends[(trends["ratio"] == ratio) & (trends["reading"] == reading) & (trends["metric"] == metric)]
                label = "" if t.empty else f"**{t['label'].iloc[0]}** ({t['seed_labels'].iloc[0]})" + \
                    (", at chance" if bool(t["at_chance"].iloc[0]) else "")
                lines.append(f"| {ratio:g} | {metric} | {vals} | {label} |")
        lines.append("")
    lines += ["Trend labels: each seed's curve is classified (`eval_pipeline/trends.py`, binomial noise of the test "
              "reviews); the label stands only when every seed agrees, else *unclear*.", "",
              _img(results / "figures" / "fig6_negation_ratio.png", out, "Figure 6")]
    return lines


def section_family(eval_dir: Path, out: Path, family_run: Path | None, figures: Path) -> list[str]:
    lines = ["## 4. The offline family: NeQA, task 1 and task 2 (Figures 2 and 4)", ""]
    if family_run and (family_run / "family.json").exists():
        fam = json.loads((family_run / "family.json").read_text())
        knobs = ", ".join(f"{k}={v}" for k, v in fam.get("world", {}).items())
        train = fam.get("training", {})
        lines += [f"Generator settings: {knobs}.", "",
                  f"Training: {train.get('tokens_per_member')} tokens per member, batch "
                  f"{train.get('batch_size')} × {train.get('seq_len')} tokens, seed {train.get('seed')}. "
                  "Why these values: `simulation/TINYWORLD.md`.", ""]
    points = eval_dir / "figures" / "points.csv"
    if points.exists():
        df = pd.read_csv(points)
        df = df[df["source"] == "results"]
        lines.append(TREND_HEAD)
        found: list[str] = []
        for (family, task, prompt), g in df.groupby(["family", "task", "prompt"], sort=True):
            g = g.sort_values("params")
            if len(g) < 2:
                continue
            if "answered" in g and (g["answered"] == 0).all():   # chain of thought never gave a parsable answer
                lines.append(f"| {family} {task} {prompt} | no answer at any size | **no answer** | | | |")
                continue
            lines.append(_trend_row(f"{family} {task} {prompt}", g["params"], g["accuracy"],
                                    g["n_items"].to_numpy(int), found))
        lines += ["", "Trend method: `eval_pipeline/trends.py` (bootstrap support of the slope and of the "
                      "fall-then-rise; *at chance* = every point inside the binomial 95% band around 50%).", ""]
        lines += ["**Curves with a supported trend:** " + ("; ".join(found) if found else "none") + ". "
                  "Every other curve is flat, or gave no answer.", ""]
        lines += _side_by_side(df)
        parsed, total = _cot_parsed(eval_dir)
        if total:
            lines += [f"Chain of thought counts an answer only when the first paragraph ends in \"So the answer "
                      f"is A.\" or \"B.\": {parsed} of {total} generations had one.", ""]
    lines.append(_img(eval_dir / "figures" / "fig2_neqa.png", out, "Figure 2: NeQA accuracy against size"))
    lines.append(_img(eval_dir / "figures" / "fig4_tasks.png", out, "Figure 4: task 1, task 2 and NeQA"))
    cloze = eval_dir / "figures" / "fig4_tasks_cloze.png"
    if cloze.exists():
        lines.append(_img(cloze, out, "Figure 4, cloze reading: task 1, task 2 and NeQA"))
    traj = eval_dir.parent / "trajectories" / "analysis" / "trajectories.png"
    if traj.exists():
        lines += ["", "Accuracy along training (every saved checkpoint, cloze reading; "
                      "`python -m eval_pipeline.analyze trajectories`):", "", _img(traj, out, "Training trajectories")]
    if family_run and (family_run / "family.json").exists():
        lines += _data_axis(json.loads((family_run / "family.json").read_text()))
    for png in sorted(figures.glob("tinyworld*_scaling.png")) + sorted(figures.glob("tinyworld*_loss_curves.png")):
        lines.append(_img(png, out, png.stem.replace("_", " ")))
    return lines


SIDE_BY_SIDE = [("neqa", "zeroshot"), ("neqa", "zeroshot_hint"), ("neqa", "fewshot"), ("neqa", "cloze"),
                ("task1", "zeroshot"), ("task1", "cloze"), ("task2", "strong")]


def _side_by_side(df: pd.DataFrame) -> list[str]:
    """Base, tuned and ablation families member by member under the same prompts (as the paper sets GPT-3
    beside its text series)."""
    families = sorted(df["family"].unique(), key=lambda f: (len(f), f))
    if len(families) < 2:
        return []
    cols = [c for c in SIDE_BY_SIDE if ((df["task"] == c[0]) & (df["prompt"] == c[1])).any()]
    lines = ["**Side by side** (accuracy %, held-out facts; the tuned families had a short letter-quiz tuning on "
             "trained facts, the ablation families never saw a quiz, a negated question or a comparison in "
             "pretraining):", "",
             "| family | member | " + " | ".join(f"{t} {p}" for t, p in cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    for family in families:
        fam = df[df["family"] == family]
        for member, g in sorted(fam.groupby("member"), key=lambda kv: kv[1]["params"].iloc[0]):
            cells = []
            for task, prompt in cols:
                hit = g[(g["task"] == task) & (g["prompt"] == prompt)]
                cells.append("" if hit.empty else f"{100 * hit['accuracy'].iloc[0]:.0f}")
            lines.append(f"| {family} | {member} | " + " | ".join(cells) + " |")
    return lines + [""]


def _data_axis(fam: dict) -> list[str]:
    axis = fam.get("data_axis")
    if not axis:
        return []
    fit = axis["fit"]
    lines = ["**Data axis** (`simulation/data_axis.py`): validation loss of "
             f"{', '.join(axis['members'])} at {', '.join(f'{f:g}' for f in axis['fractions'])} × the token budget:", "",
             "| member | params | tokens | val loss |", "|---|---|---|---|"]
    for p in sorted(axis["points"], key=lambda p: (p["params"], p["train_tokens"])):
        lines.append(f"| {p['name']} | {p['params']:,} | {int(p['train_tokens']):,} | {p['val_loss']:.3f} |")
    if fit.get("fit"):
        f = fit["fit"]
        verdict = ", ".join(f"{k} {v}" for k, v in fit.get("verdict", {}).items())
        lines += ["", f"Chinchilla fit L(N, D) = E + A/N^α + B/D^β on {fit['n_points']} points: E {f['E']:.3g}, "
                      f"A {f['A']:.3g}, α {f['alpha']:.3g}, B {f['B']:.3g}, β {f['beta']:.3g}; largest residual "
                      f"{fit['max_abs_residual']:.3f} nats; bootstrap {fit['bootstrap']['replicates']} replicates "
                      f"({fit['bootstrap']['failed']} failed); per parameter: {verdict}."]
    return lines + [""]


PROMPT_ORDER = ("zeroshot", "zeroshot_hint", "fewshot", "fewshot_hint", "fewshot_cot", "cloze", "weak", "strong")


def section_real(real_dir: Path) -> list[str]:
    """The real pretrained models (eval_pipeline/families/real-gguf.yaml): both readings per task and prompt."""
    from neqa.results import load_summaries
    lines = ["## 6. Real pretrained models (quantised GGUF from wheels)", ""]
    if not real_dir.is_dir() or not any(real_dir.glob("*/*/*/summary.json")):
        return lines + [f"*Not run ({real_dir} holds no results; `bash scripts/reproduce.sh --real-models` "
                        "runs them).*", ""]
    df = load_summaries(real_dir)
    first = df.iloc[0]
    lines += [f"Read from `{real_dir}`. `eval_pipeline/families/real-gguf.yaml`, dequantised to float32 by transformers "
              "(`eval_pipeline/backends/gguf.py`), scored on CPU on the paper's 100-item subsets "
              f"({first['data_file']} and its task-1 and task-2 versions). *Accuracy* is the paper's reading "
              "(the option letter with the higher log-probability, options in the given order); *order-balanced* "
              "scores every item a second time with its options reversed and takes the option with the higher "
              "order-averaged probability; *same choice* is the share of items whose chosen option did not change "
              "with the order; *answers A* the share of items answered with the first letter. "
              "Chain of thought is generated greedily (200 tokens at most) and read from \"So the answer is A.\" / \"B.\".", "",
              "| model (quantisation) | task | prompt | items | accuracy [95% CI] | order-balanced [95% CI] | same choice | answers A |",
              "|---|---|---|---|---|---|---|---|"]
    df["_p"] = df["prompt"].map(lambda p: PROMPT_ORDER.index(p) if p in PROMPT_ORDER else len(PROMPT_ORDER))
    for _, r in df.sort_values(["member", "task", "_p"]).iterrows():
        gguf = r.get("gguf") if isinstance(r.get("gguf"), dict) else {}
        recs = [json.loads(x) for x in (Path(r["run_dir"]) / "items.jsonl").read_text().splitlines() if x.strip()]
        letters = [x["prediction"] for x in recs if x.get("prediction") is not None]
        a_share = f"{100 * sum(p == 0 for p in letters) / len(letters):.0f}%" if letters and r["prompt"] != "cloze" else ""
        ci = r["accuracy_ci"]
        bal = ""
        if isinstance(r.get("balanced_accuracy"), float) and r["balanced_accuracy"] == r["balanced_accuracy"]:
            bci = r["balanced_accuracy_ci"]
            bal = f"{100 * r['balanced_accuracy']:.0f} [{100 * bci[0]:.0f}, {100 * bci[1]:.0f}]"
        same = f"{100 * r['order_consistency']:.0f}%" if bal else ""
        if r["prompt"] == "fewshot_cot":
            a_share += f" ({len(letters)} of {len(recs)} parsed)"
        lines.append(f"| {r['member']} ({gguf.get('quantisation', '?')}) | {r['task']} | {r['prompt']} | {r['n_items']} "
                     f"| {100 * r['accuracy']:.0f} [{100 * ci[0]:.0f}, {100 * ci[1]:.0f}] | {bal} | {same} | {a_share} |")
    return lines + [""]


def _csv(path: Path):
    return pd.read_csv(path) if path.exists() else None


def section_analyses(results: Path, out: Path) -> list[str]:
    """The analyses of the paper's published numbers and of the authors' released Slice-and-Sandwich data
    (`python -m eval_pipeline.analyze ... --published`, written to RESULTS/analysis/), and the nested test
    of the training trajectories."""
    lines = ["## 5. Analyses against the papers", ""]
    a = results / "analysis"
    tr = _csv(a / "trends_published.csv")
    if tr is not None:
        agree, loose = int(tr["agree"].sum()), int(tr["agree_direction"].sum())
        lines += [f"**Trend shapes of the paper's curves** (`python -m eval_pipeline.analyze trends --published`; "
                  f"100 items per point plus a ±{100 * tr['readoff'].iloc[0]:.0f}-point read-off error; linear and "
                  f"sigmoid told apart by a parametric-bootstrap likelihood-ratio test): our label agrees with the "
                  f"paper's on {agree} of {len(tr)} curves ({loose} of {len(tr)} when linear and sigmoid both count "
                  "as rising). The others:", ""]
        lines += ["| curve | accuracy % | paper | ours |", "|---|---|---|---|"]
        for _, r in tr[~tr["agree"]].iterrows():
            ours = r["label"] + (f", {r['shape']}" if isinstance(r["shape"], str) and r["shape"] else "")
            acc = " → ".join(f"{100 * float(v):.0f}" for v in str(r["accuracies"]).split())
            lines.append(f"| {r['family']} {r['task']} {r['prompt']} | {acc} | {r['paper_label']} | {ours} |")
        lines.append("")
    dec = _csv(a / "decompose.csv")
    if dec is not None:
        lines += ["**Task decomposition of the paper's values** (`python -m eval_pipeline.analyze decompose "
                  "--published`): NeQA = t1·s + (1 − t1)(1 − s) with s from task-2 accuracy; `above_chance` "
                  "s = clip(2·acc − 1, 0, 1) (the paper's 0.5 + 0.5·s), `raw` s = acc. R² and MAE of the measured "
                  "t1 and s composed against measured NeQA; the joint binomial fit's deviance (one degree of "
                  "freedom per model):", "",
                  "| family | task 2 / NeQA prompt | mapping | R² | MAE | joint deviance (df), p |", "|---|---|---|---|---|---|"]
        for _, r in dec.iterrows():
            lines.append(f"| {r['family']} | {r['task2_prompt']} / {r['neqa_prompt']} | {r['mapping']} | "
                         f"{r['r2']:.2f} | {r['mae']:.3f} | {r['joint_deviance']:.1f} ({int(r['joint_df'])}), "
                         f"{r['joint_p_value']:.2g} |")
        lines += ["", _img(a / "decompose.png", out, "Task decomposition of the paper's values")]
    sas = _csv(a / "slice_sandwich_errors.csv")
    if sas is not None:
        lines += ["**Slice-and-Sandwich on the authors' released results** (`python -m eval_pipeline.analyze "
                  "slice-sandwich --published`; each task at the authors' threshold, errors over the models at or "
                  "above it):", "", "| task | threshold (log10 1e21 FLOPs) | models fit / forecast | S&S MAE | S&S MSE | "
                  "baseline MAE | baseline MSE |", "|---|---|---|---|---|---|---|"]
        for _, r in sas.iterrows():
            lines.append(f"| {r['task']} | {r['threshold']:g} | {int(r['n_fit'])} / {int(r['n_test'])} | "
                         f"{r['sas_mae']:.3f} | {r['sas_mse']:.3g} | {r['baseline_mae']:.3f} | {r['baseline_mse']:.3g} |")
        lines += ["", _img(a / "slice_sandwich.png", out, "Slice-and-Sandwich forecasts")]
    nested = _csv(results / "trajectories" / "analysis" / "trajectories_nested.csv")
    if nested is not None:
        lines += ["**Training trajectories, nested comparison** (`python -m eval_pipeline.analyze trajectories`; "
                  "binomial regressions of accuracy on log perplexity, log size and both over every checkpoint of "
                  "every size):", ""]
        for _, r in nested.iterrows():
            lines.append(f"- {r['family']} {r['task']}/{r['prompt']} ({int(r['n_points'])} checkpoints of "
                         f"{int(r['n_sizes'])} sizes): {r['answer']}.")
        lines.append("")
    return lines if len(lines) > 2 else []


def section_deviations(results: Path) -> list[str]:
    from simulation import deviations
    lines = ["## 7. Deviations from the paper", "",
             "Generated by `python -m simulation.deviations` from the settings the runs above recorded "
             "(`figures/fig5_task_decomposition.json`, `settings/fig6.json`, `settings/family.json`).", ""]
    try:
        return lines + [deviations.table(results)]
    except DataError as e:
        return lines + [f"Not available: {e}", ""]


@command
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default="results", help="folder holding figures/ (default: results)")
    ap.add_argument("--eval", default="results/eval", help="evaluation results folder (default: results/eval)")
    ap.add_argument("--family-run", default="runs/tinyworld", help="the offline family's run folder")
    ap.add_argument("--family-figures", default=None, help="folder with the family's loss figures "
                    "(default: RESULTS/figures)")
    ap.add_argument("--check-json", default=None, help="JSON written by data_pipeline.check --json")
    ap.add_argument("--real", default=None, help="the real models' results folder (default: RESULTS/real_models)")
    ap.add_argument("--out", default=None, help="report path (default: RESULTS/REPORT.md)")
    ap.add_argument("--title", default="NeQA reproduction report")
    args = ap.parse_args(argv)
    results = Path(args.results)
    out = Path(args.out) if args.out else results / "REPORT.md"
    figures = Path(args.family_figures) if args.family_figures else results / "figures"
    lines = [f"# {args.title}", "",
             "Written by `scripts/report.py` from the outputs of `bash scripts/reproduce.sh`; every number "
             "below is read from a file that command wrote.", ""]
    lines += section_data(results, out, Path(args.check_json) if args.check_json else None) + [""]
    lines += section_fig5(results, out) + [""]
    lines += section_fig6(results, out) + [""]
    lines += section_family(Path(args.eval), out, Path(args.family_run), figures) + [""]
    lines += section_analyses(results, out) + [""]
    lines += section_real(Path(args.real) if args.real else results / "real_models") + [""]
    lines += section_deviations(results)
    note = Path(args.family_run) / "NOTE.md"
    if note.exists():
        lines += [note.read_text()]
    with atomic_open(out) as f:   # a crash leaves the previous report, never half of one
        f.write("\n".join(lines) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
