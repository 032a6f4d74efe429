"""Figures 2 and 4 of the paper from a results folder.

    python -m eval_pipeline.plot results/eval --published

reads every RESULTS_DIR/<family>/<member>/<task>__<prompt>/summary.json and writes to --out-dir
(default RESULTS_DIR/figures):
  fig2_neqa.{png,pdf}    the paper's layout: a panel per family, a line per prompt method
  fig4_tasks.{png,pdf}   task 1 (zero-shot), task 2 (weak and strong prompt), NeQA zero-shot
  points.csv                every plotted point (source = results | published), with `answered`
Accuracies are fractions; error bars are the summaries' 95% intervals (the caption says over how many
items); the dashed line is chance (50%). Figures are at most 7 in wide (--ncols panels a row).

Like with like: the x axis is the member's place in its family (`order`, the paper's "Scale") whenever
two members of a family share a size (the GPT-3 text series: three models of 175B) or the paper's curves
are drawn, else parameters; with --published, results scored on other items than the paper's 100-item
files are left out unless --any-items. A chain-of-thought run with no parsable answer is drawn as
"no answer", not as 0%.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import math
import sys
from pathlib import Path

import matplotlib
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from neqa.cli import command
from data_pipeline.prompts import CLOZE, NEQA_PROMPTS, TASK2_PROMPTS  # noqa: E402
from eval_pipeline.registry import PUBLISHED_CSV, Family, list_families, load_family  # noqa: E402
from neqa.figures import save_figure
from neqa.io import DataError, atomic_open
from neqa.paths import REPO_ROOT  # noqa: E402
from neqa.results import load_items, load_summaries

COLUMNS = ["family", "member", "params", "flops", "order", "task", "prompt", "accuracy", "ci_lo", "ci_hi",
           "n_items", "answered", "source"]
PROMPT_TITLES = {"zeroshot": "Zero-shot", "zeroshot_hint": "Zero-shot + hint", "fewshot": "Few-shot",
                 "fewshot_hint": "Few-shot + hint", "fewshot_cot": "Few-shot chain of thought",
                 "cloze": "Cloze (option text)"}
X_LABELS = {"params": "Parameters", "flops": "Training FLOPs", "order": "Scale (place in family)"}
PAPER_FILES = {"neqa": "data_pipeline/neqa_100.jsonl", "task1": "data_pipeline/neqa_100_nonnegated.jsonl",
               "task2": "data_pipeline/neqa_100_task2.jsonl"}   # the 100 items of the paper's figures
MAX_WIDTH = 7.0                                                 # inches: a page at text width
TASK2_STYLE = {"weak": ("s", 0.5), "strong": ("o", 1.0)}   # marker and opacity of the two task-2 prompts


# -- reading -------------------------------------------------------------------------------------------
def _registry() -> dict[str, Family]:
    fams = {}
    for name in list_families():
        try:
            fams[name] = load_family(name)
        except DataError as e:   # one broken YAML must not stop plotting the others
            print(f"warning: skipping family file: {e}", file=sys.stderr)
    return fams


def _num(v):
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 else math.nan


def result_points(results_dir, families: dict[str, Family]) -> list[dict]:
    """One point per summary (read by neqa.results); sizes from the summary, else from the registry."""
    points = []
    for s in load_summaries(results_dir).to_dict("records"):
        fam = families.get(s["family"])
        base, _, revision = str(s["member"]).partition("@")    # evaluate names checkpoints MEMBER@REVISION
        member = None
        if fam is not None:
            member = next((m for m in fam.members if m.name == base), None)
        params = _num(s.get("n_params"))
        if math.isnan(params) and member is not None:
            params = float(member.params)
        flops = _num(s.get("flops"))
        if math.isnan(flops) and member is not None and member.flops:
            flops = member.flops
        sha = s.get("data_sha256")
        points.append({"series": s["family"] + (f"@{revision}" if revision else ""),
                       "family": s["family"], "member": s["member"], "params": params, "flops": flops,
                       "order": fam.order(member.name) if member is not None else math.nan,
                       "task": s["task"], "prompt": s["prompt"], "accuracy": float(s["accuracy"]),
                       "ci_lo": s["ci_lo"], "ci_hi": s["ci_hi"], "n_items": s["n_items"],
                       "answered": _answered(s) if s["prompt"] == "fewshot_cot" else 1.0,
                       "data_sha256": sha if isinstance(sha, str) else None, "source": "results"})
    # members the registry does not know are ordered by size within their family
    for series in {p["series"] for p in points if math.isnan(p["order"])}:
        mine = [p for p in points if p["series"] == series]
        sizes = sorted({p["params"] for p in mine if not math.isnan(p["params"])})
        for p in mine:
            if not math.isnan(p["params"]):
                p["order"] = sizes.index(p["params"]) + 1
    return points


def _answered(summary: dict) -> float:
    """Fraction of chain-of-thought generations with a parsable answer (prediction not null), from the
    run's items.jsonl; NaN when there are no records."""
    if not (Path(summary["run_dir"]) / "items.jsonl").exists():
        return math.nan
    items = load_items(summary["run_dir"], pd.DataFrame([summary]))
    if items.empty:
        return math.nan
    return float(items["prediction"].notna().mean()) if "prediction" in items else 0.0


def paper_digests() -> dict[str, str]:
    return {task: hashlib.sha256((REPO_ROOT / f).read_bytes()).hexdigest()
            for task, f in PAPER_FILES.items() if (REPO_ROOT / f).exists()}


def published_points(families: dict[str, Family], path=PUBLISHED_CSV) -> list[dict]:
    """The paper's numbers (read off its figures, about ±3 points); sizes from the registry."""
    by_label = {f.label: f for f in families.values()}
    points = []
    with open(path, encoding="utf-8", newline="") as f:
        for lineno, row in enumerate(csv.DictReader(f), 2):
            fam = by_label.get(row["family"])
            if fam is None:
                raise DataError(path, lineno, "family", f"no family with label {row['family']!r} in the registry")
            try:
                member = fam.member(row["model"])
                acc = float(row["accuracy_percent"]) / 100
            except KeyError as e:
                raise DataError(path, lineno, "model", str(e)) from None
            except ValueError:
                raise DataError(path, lineno, "accuracy_percent", "not a number") from None
            points.append({"series": fam.name, "family": fam.name, "member": member.name, "params": float(member.params),
                           "flops": member.flops or math.nan, "order": fam.order(member.name),
                           "task": row["task"], "prompt": row["prompt"], "accuracy": acc,
                           "ci_lo": math.nan, "ci_hi": math.nan, "n_items": 100, "answered": 1.0,
                           "source": "published"})
    return points


# -- drawing -------------------------------------------------------------------------------------------
def _colors(points) -> dict[str, str]:
    cmap = plt.get_cmap("tab10")
    names = sorted({p["series"] for p in points})
    return {n: cmap(i % 10) for i, n in enumerate(names)}


def _line_style(family, source, colors):
    published = source == "published"
    return dict(color=colors[family], linestyle="--" if published else "-", linewidth=1.4, markersize=5,
                markerfacecolor="white" if published else colors[family])


def _draw_lines(ax, points, x, colors, style_by_prompt=None):
    """One line per (source, family, prompt) group, members in family order. On the order axis the
    families are nudged apart a little so that their error bars do not hide each other."""
    groups = {}
    for p in points:
        groups.setdefault((p["source"], p["series"], p["prompt"]), []).append(p)
    families = sorted({f for _, f, _ in groups})
    for (source, family, prompt), pts in sorted(groups.items()):
        pts = sorted(pts, key=lambda p: (p["order"], p[x]))
        _mark_no_answer(ax, [p for p in pts if _no_answer(p)], x)
        pts = [p for p in pts if not _no_answer(p)]
        if not pts:
            continue
        nudge = 0.04 * (families.index(family) - (len(families) - 1) / 2) if x == "order" else 0.0
        xs = [p[x] + nudge for p in pts]
        ys = [p["accuracy"] for p in pts]
        marker, alpha = (style_by_prompt or {}).get(prompt, ("o", 1.0))
        kw = dict(_line_style(family, source, colors), marker=marker, alpha=alpha)
        if source == "published":
            ax.plot(xs, ys, **kw)
        else:
            err = [[max(0.0, y - p["ci_lo"]) if not math.isnan(p["ci_lo"]) else 0.0 for y, p in zip(ys, pts)],
                   [max(0.0, p["ci_hi"] - y) if not math.isnan(p["ci_hi"]) else 0.0 for y, p in zip(ys, pts)]]
            ax.errorbar(xs, ys, yerr=err, capsize=2.5, elinewidth=0.9, **kw)


def _no_answer(p) -> bool:
    return p.get("answered") == 0


def _mark_no_answer(ax, pts, x, color="grey"):
    """No parsable answer: an x on the chance line, not a point at 0%."""
    if pts:
        ax.plot([p[x] for p in pts], [0.5] * len(pts), marker="x", color=color, markersize=6, linestyle="none")


# which reading of the scores the figures show: summary.json's `accuracy` (options in the order given); the
# order-balanced reading (`balanced_accuracy`, --order-balanced) is reported beside it in tables, not drawn
READING = "paper's reading"


def _caption(fig, points) -> None:
    """What the error bars are, over how many items, under the figure."""
    ns = sorted({int(p["n_items"]) for p in points if p["source"] == "results" and str(p["n_items"]).isdigit()})
    parts = []
    if ns:
        n = f"{ns[0]}" if len(ns) == 1 else f"{ns[0]}–{ns[-1]}"
        parts.append(f"Error bars: 95% bootstrap intervals of the accuracy over n = {n} items per point.")
    if any(p["source"] == "published" for p in points):
        parts.append("Dashed, open markers: the paper's values (read off its figures, ±3 points; 100 items).")
    if any(_no_answer(p) for p in points):
        parts.append("x on the chance line: no answer (chain of thought gave no parsable answer).")
    if parts:
        fig.text(0.5, 0.01, "\n".join(parts), ha="center", va="bottom", fontsize=6)


def choose_x(points, published: bool) -> str:
    """`order` where the paper's curves are drawn or two members of a family share a size, else params."""
    if published:
        return "order"
    for series in {p["series"] for p in points}:
        sizes = {p["member"]: p["params"] for p in points if p["series"] == series}
        known = [v for v in sizes.values() if not math.isnan(v)]
        if len(known) != len(set(known)) or len(known) < len(sizes):
            return "order"
    return "params"


def _style_axis(ax, x, title):
    ax.axhline(0.5, color="gray", linestyle=(0, (4, 3)), linewidth=1.0, zorder=0)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(X_LABELS[x])
    ax.grid(alpha=0.25)
    if x == "order":
        ax.xaxis.get_major_locator().set_params(integer=True)
    else:
        ax.set_xscale("log")


def _label(series: str, labels: dict) -> str:
    family, _, revision = series.partition("@")
    return labels.get(family, family) + (f" @ {revision}" if revision else "")


def _legend(fig, points, labels, colors) -> int:
    """One entry per family and source (new results first, then the paper's curves)."""
    keys = sorted({(p["source"] == "published", p["series"]) for p in points})
    handles = [Line2D([], [], marker="o", **_line_style(f, "published" if pub else "results", colors)) for pub, f in keys]
    names = [_label(f, labels) + (" (paper)" if pub else "") for pub, f in keys]
    if names:
        fig.legend(handles, names, loc="lower center", ncol=min(4, len(names)), frameon=False, fontsize=7,
                   bbox_to_anchor=(0.5, 0.03))
    return len(names)


def _legend_space(n: int) -> tuple:
    rows = (n + 3) // 4
    return (0, 0.08 + 0.06 * rows, 1, 1)


def figure2(points, x, labels, colors, out_dir, ncols: int = 3) -> list[Path]:
    """The paper's layout: a panel per family, a line per prompt method (the paper's curves dashed)."""
    neqa = [p for p in points if p["task"] == "neqa"]
    prompts = [m for m in NEQA_PROMPTS + (CLOZE,) if any(p["prompt"] == m for p in neqa)]
    series = sorted({p["series"] for p in neqa})
    if not prompts:
        return []
    cmap = plt.get_cmap("tab10")
    pcolors = {m: cmap(i) for i, m in enumerate(NEQA_PROMPTS + (CLOZE,))}
    ncols = max(1, min(ncols, len(series)))
    nrows = math.ceil(len(series) / ncols)
    width = min(MAX_WIDTH, max(4.8, 2.4 * ncols))
    legend_rows = math.ceil(len(prompts) / 3)
    bottom = 0.45 + 0.16 * legend_rows                      # inches under the panels: legend and caption
    height = 2.3 * nrows + bottom
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), sharey=True, squeeze=False)
    no_answer = set()
    for ax, fam in zip(axes.flat, series):
        for (source, prompt) in sorted({(p["source"], p["prompt"]) for p in neqa if p["series"] == fam}):
            pts = sorted((p for p in neqa if p["series"] == fam and p["source"] == source and p["prompt"] == prompt),
                         key=lambda p: (p["order"], p[x]))
            silent = [p for p in pts if _no_answer(p)]
            _mark_no_answer(ax, silent, x, pcolors[prompt])
            no_answer |= {prompt} if silent else set()
            pts = [p for p in pts if not _no_answer(p)]
            if not pts:
                continue
            xs, ys = [p[x] for p in pts], [p["accuracy"] for p in pts]
            kw = dict(color=pcolors[prompt], marker="o", markersize=3, linewidth=1.1)
            if source == "published":
                ax.plot(xs, ys, linestyle="--", markerfacecolor="white", **kw)
            else:
                err = [[max(0.0, y - p["ci_lo"]) if not math.isnan(p["ci_lo"]) else 0.0 for y, p in zip(ys, pts)],
                       [max(0.0, p["ci_hi"] - y) if not math.isnan(p["ci_hi"]) else 0.0 for y, p in zip(ys, pts)]]
                ax.errorbar(xs, ys, yerr=err, capsize=1.5, elinewidth=0.7, **kw)
        _style_axis(ax, x, _label(fam, labels))
        ax.tick_params(labelsize=6)
        ax.xaxis.label.set_size(7)
    for ax in list(axes.flat)[len(series):]:
        ax.axis("off")
    for row in axes:
        row[0].set_ylabel(f"NeQA accuracy ({READING})", fontsize=7)
    handles = [Line2D([], [], color=pcolors[m], marker="x" if m in no_answer else "o", markersize=3,
                      linestyle="none" if m in no_answer else "-") for m in prompts]
    names = [PROMPT_TITLES.get(m, m) + (" (no answer)" if m in no_answer else "") for m in prompts]
    fig.legend(handles, names, loc="lower center", ncol=min(3, len(prompts)), frameon=False, fontsize=6.5,
               bbox_to_anchor=(0.5, 0.4 / height))
    _caption(fig, neqa)
    fig.tight_layout(rect=(0, bottom / height, 1, 1))
    return save_figure(fig, out_dir, "fig2_neqa")


def figure4(points, x, labels, colors, out_dir, prompt: str = "zeroshot") -> list[Path]:
    """Task 1 and NeQA read with the same prompt method (the paper: zero-shot), task 2 with both prompts."""
    title = PROMPT_TITLES.get(prompt, prompt).lower()
    panels = [(f"Task 1 ({title})",
               [p for p in points if p["task"] == "task1" and p["prompt"] == prompt], None),
              ("Task 2: negation", [p for p in points if p["task"] == "task2"],
               TASK2_STYLE),
              (f"NeQA ({title})", [p for p in points if p["task"] == "neqa" and p["prompt"] == prompt], None)]
    if not (panels[0][1] or panels[2][1]):
        return []
    fig, axes = plt.subplots(1, 3, figsize=(MAX_WIDTH, 3.3), sharey=True)
    for ax, (title, pts, style) in zip(axes, panels):
        _draw_lines(ax, pts, x, colors, style)
        _style_axis(ax, x, title)
        ax.tick_params(labelsize=6)
        ax.xaxis.label.set_size(7)
        ax.title.set_size(8)
    axes[0].set_ylabel(f"Accuracy ({READING})")
    axes[1].legend([Line2D([], [], color="black", marker=m, alpha=a, linestyle="none") for m, a in TASK2_STYLE.values()],
                   [f"{k} prompt" for k in TASK2_STYLE], loc="best", fontsize=6, framealpha=0.8)
    shown = [p for _, pts, _ in panels for p in pts]
    _caption(fig, shown)
    fig.tight_layout(rect=_legend_space(_legend(fig, shown, labels, colors)))
    return save_figure(fig, out_dir, "fig4_tasks" + ("" if prompt == "zeroshot" else f"_{prompt}"))


def write_points(points, path: Path) -> None:
    def cell(v):
        return "" if isinstance(v, float) and math.isnan(v) else v
    with atomic_open(path, "w") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        for p in points:
            w.writerow({c: cell(p[c]) for c in COLUMNS})


def plot(results_dir, x="auto", published=False, out_dir=None, any_items=False, ncols=3) -> dict:
    families = _registry()
    points = result_points(results_dir, families)
    if published:
        paper = paper_digests()
        other = [p for p in points if p["data_sha256"] and p["data_sha256"] != paper.get(p["task"])]
        if other and not any_items:
            print(f"note: {len(other)} result(s) were scored on other items than the paper's 100-item files "
                  f"({', '.join(sorted(set(PAPER_FILES.values())))}) and are left out of the comparison "
                  "(--any-items keeps them)", file=sys.stderr)
            points = [p for p in points if p not in other]
        points += published_points(families)
    if x == "auto":
        x = choose_x(points, published)
        print(f"x axis: {x}", file=sys.stderr)
    plotted = [p for p in points if not math.isnan(p[x])]
    dropped = len(points) - len(plotted)
    if dropped:
        print(f"note: {dropped} point(s) have no known {x} and are not plotted", file=sys.stderr)
    if not plotted:
        raise DataError(results_dir, None, None, f"no summary.json with a known {x} found")
    wanted = {"neqa", "task1", "task2"}
    plotted = [p for p in plotted if p["task"] in wanted and
               (p["task"] != "task2" or p["prompt"] in TASK2_PROMPTS)]
    for p in plotted:
        if _no_answer(p):
            print(f"note: {p['family']}/{p['member']} {p['task']}/{p['prompt']}: no parsable answer "
                  "(drawn as 'no answer', not 0%)", file=sys.stderr)
    out_dir = Path(out_dir) if out_dir else Path(results_dir) / "figures"
    labels = {n: f.label for n, f in families.items()}
    colors = _colors(plotted)
    files = figure2(plotted, x, labels, colors, out_dir, ncols) + figure4(plotted, x, labels, colors, out_dir)
    files += figure4(plotted, x, labels, colors, out_dir, prompt=CLOZE)   # nothing when no cloze results
    write_points(plotted, out_dir / "points.csv")
    return {"points": plotted, "files": files + [out_dir / "points.csv"], "x": x}


@command
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Draw Figure 2 (NeQA per prompt method) and Figure 4 (task 1, task 2, "
                                             "NeQA zero-shot) from every summary.json under RESULTS_DIR.")
    ap.add_argument("results_dir", help="folder laid out as <family>/<member>/<task>__<prompt>/summary.json")
    ap.add_argument("--x", choices=["auto"] + sorted(X_LABELS), default="auto",
                    help="x axis: parameters or training FLOPs (log scale), or the member's place in its family "
                         "as in the paper (default auto: order where members of a family share a size or the "
                         "paper's curves are drawn, else params)")
    ap.add_argument("--published", action="store_true",
                    help="add the paper's curves (eval_pipeline/published/paper_figure_values.csv)")
    ap.add_argument("--any-items", action="store_true",
                    help="with --published, also draw results scored on other items than the paper's 100")
    ap.add_argument("--ncols", type=int, default=3, help="Figure 2 panels (families) per row")
    ap.add_argument("--output-dir", "--out-dir", dest="out_dir", help="where to write the figures and points.csv (default: RESULTS_DIR/figures)")
    args = ap.parse_args(argv)
    try:
        out = plot(args.results_dir, args.x, args.published, args.out_dir, args.any_items, args.ncols)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for f in out["files"]:
        print(f)
    print(f"{len(out['points'])} points plotted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
