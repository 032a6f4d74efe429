"""Figures 2 and 4 of the paper from a results folder.

    python -m eval_pipeline.plot results/eval --x order --published

reads every RESULTS_DIR/<family>/<member>/<task>__<prompt>/summary.json and writes to --out-dir
(default RESULTS_DIR/figures):
  figure2_neqa.{png,pdf}    a panel per NeQA prompt method, a line per family
  figure4_tasks.{png,pdf}   task 1 (zero-shot), task 2 (weak and strong prompt), NeQA zero-shot
  points.csv                every plotted point (source = results | published)
Accuracies are fractions; error bars are the summaries' 95% intervals; the dashed line is chance (50%).
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from data_pipeline.cli import command
from data_pipeline.io import DataError, atomic_open, read_json, save_figure  # noqa: E402
from data_pipeline.prompts import CLOZE, NEQA_PROMPTS, TASK2_PROMPTS  # noqa: E402
from eval_pipeline.registry import REPO_ROOT, Family, list_families, load_family  # noqa: E402

PUBLISHED_CSV = REPO_ROOT / "eval_pipeline" / "published" / "paper_figure_values.csv"
COLUMNS = ["family", "member", "params", "flops", "order", "task", "prompt", "accuracy", "ci_lo", "ci_hi",
           "n_items", "source"]
PROMPT_TITLES = {"zeroshot": "Zero-shot", "zeroshot_hint": "Zero-shot + hint", "fewshot": "Few-shot",
                 "fewshot_hint": "Few-shot + hint", "fewshot_cot": "Few-shot chain of thought",
                 "cloze": "Cloze (option text)"}
X_LABELS = {"params": "Parameters", "flops": "Training FLOPs", "order": "Scale (place in family)"}
SUMMARY_FIELDS = ("family", "member", "task", "prompt", "accuracy")
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


def _fraction(value, path, fld):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise DataError(path, None, fld, f"expected a fraction between 0 and 1, got {value!r}")
    return float(value)


def read_summary(path: Path) -> dict:
    s = read_json(path)
    for f in SUMMARY_FIELDS:
        if f not in s:
            raise DataError(path, None, f, "missing")
    acc = _fraction(s["accuracy"], path, "accuracy")
    ci = s.get("accuracy_ci")
    if ci is None:
        lo = hi = math.nan
    elif isinstance(ci, list) and len(ci) == 2:
        lo, hi = (_fraction(v, path, "accuracy_ci") for v in ci)
        if not lo - 1e-6 <= acc <= hi + 1e-6:
            raise DataError(path, None, "accuracy_ci", f"{ci} does not contain the accuracy {acc}")
    else:
        raise DataError(path, None, "accuracy_ci", "expected [lo, hi]")
    return {**s, "accuracy": acc, "ci_lo": lo, "ci_hi": hi}


def _num(v):
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 else math.nan


def result_points(results_dir, families: dict[str, Family]) -> list[dict]:
    """One point per summary.json; sizes from the summary, else from the registry."""
    summaries = [read_summary(p) for p in sorted(Path(results_dir).rglob("summary.json"))]
    points = []
    for s in summaries:
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
        points.append({"series": s["family"] + (f"@{revision}" if revision else ""),
                       "family": s["family"], "member": s["member"], "params": params, "flops": flops,
                       "order": fam.order(member.name) if member is not None else math.nan,
                       "task": s["task"], "prompt": s["prompt"], "accuracy": s["accuracy"],
                       "ci_lo": s["ci_lo"], "ci_hi": s["ci_hi"], "n_items": s.get("n_items", ""),
                       "source": "results"})
    # members the registry does not know are ordered by size within their family
    for series in {p["series"] for p in points if math.isnan(p["order"])}:
        mine = [p for p in points if p["series"] == series]
        sizes = sorted({p["params"] for p in mine if not math.isnan(p["params"])})
        for p in mine:
            if not math.isnan(p["params"]):
                p["order"] = sizes.index(p["params"]) + 1
    return points


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
                           "ci_lo": math.nan, "ci_hi": math.nan, "n_items": 100, "source": "published"})
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
        fig.legend(handles, names, loc="lower center", ncol=min(5, len(names)), frameon=False, fontsize=9)
    return len(names)


def _legend_space(n: int) -> tuple:
    rows = (n + 4) // 5
    return (0, 0.04 + 0.065 * rows, 1, 1)


def figure2(points, x, labels, colors, out_dir) -> list[Path]:
    neqa = [p for p in points if p["task"] == "neqa"]
    prompts = [m for m in NEQA_PROMPTS + (CLOZE,) if any(p["prompt"] == m for p in neqa)]
    if not prompts:
        return []
    fig, axes = plt.subplots(1, len(prompts), figsize=(3.4 * len(prompts) + 0.6, 3.6), sharey=True, squeeze=False)
    axes = axes[0]
    for ax, m in zip(axes, prompts):
        _draw_lines(ax, [p for p in neqa if p["prompt"] == m], x, colors)
        _style_axis(ax, x, PROMPT_TITLES.get(m, m))
    axes[0].set_ylabel("NeQA accuracy")
    fig.tight_layout(rect=_legend_space(_legend(fig, neqa, labels, colors)))
    return save_figure(fig, out_dir, "figure2_neqa")


def figure4(points, x, labels, colors, out_dir, prompt: str = "zeroshot") -> list[Path]:
    """Task 1 and NeQA read with the same prompt method (the paper: zero-shot), task 2 with both prompts."""
    title = PROMPT_TITLES.get(prompt, prompt).lower()
    panels = [(f"Task 1: question answering ({title})",
               [p for p in points if p["task"] == "task1" and p["prompt"] == prompt], None),
              ("Task 2: negation understanding", [p for p in points if p["task"] == "task2"],
               TASK2_STYLE),
              (f"NeQA ({title})", [p for p in points if p["task"] == "neqa" and p["prompt"] == prompt], None)]
    if not (panels[0][1] or panels[2][1]):
        return []
    fig, axes = plt.subplots(1, 3, figsize=(11.0, 3.6), sharey=True)
    for ax, (title, pts, style) in zip(axes, panels):
        _draw_lines(ax, pts, x, colors, style)
        _style_axis(ax, x, title)
    axes[0].set_ylabel("Accuracy")
    axes[1].legend([Line2D([], [], color="black", marker=m, alpha=a, linestyle="none") for m, a in TASK2_STYLE.values()],
                   [f"{k} prompt" for k in TASK2_STYLE], loc="best", fontsize=8, framealpha=0.8)
    shown = [p for _, pts, _ in panels for p in pts]
    fig.tight_layout(rect=_legend_space(_legend(fig, shown, labels, colors)))
    return save_figure(fig, out_dir, "figure4_tasks" + ("" if prompt == "zeroshot" else f"_{prompt}"))


def write_points(points, path: Path) -> None:
    def cell(v):
        return "" if isinstance(v, float) and math.isnan(v) else v
    with atomic_open(path, "w") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        for p in points:
            w.writerow({c: cell(p[c]) for c in COLUMNS})


def plot(results_dir, x="params", published=False, out_dir=None) -> dict:
    families = _registry()
    points = result_points(results_dir, families)
    if published:
        points += published_points(families)
    plotted = [p for p in points if not math.isnan(p[x])]
    dropped = len(points) - len(plotted)
    if dropped:
        print(f"note: {dropped} point(s) have no known {x} and are not plotted", file=sys.stderr)
    if not plotted:
        raise DataError(results_dir, None, None, f"no summary.json with a known {x} found")
    wanted = {"neqa", "task1", "task2"}
    plotted = [p for p in plotted if p["task"] in wanted and
               (p["task"] != "task2" or p["prompt"] in TASK2_PROMPTS)]
    out_dir = Path(out_dir) if out_dir else Path(results_dir) / "figures"
    labels = {n: f.label for n, f in families.items()}
    colors = _colors(plotted)
    files = figure2(plotted, x, labels, colors, out_dir) + figure4(plotted, x, labels, colors, out_dir)
    files += figure4(plotted, x, labels, colors, out_dir, prompt=CLOZE)   # nothing when no cloze results
    write_points(plotted, out_dir / "points.csv")
    return {"points": plotted, "files": files + [out_dir / "points.csv"]}


@command
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Draw Figure 2 (NeQA per prompt method) and Figure 4 (task 1, task 2, "
                                             "NeQA zero-shot) from every summary.json under RESULTS_DIR.")
    ap.add_argument("results_dir", help="folder laid out as <family>/<member>/<task>__<prompt>/summary.json")
    ap.add_argument("--x", choices=sorted(X_LABELS), default="params",
                    help="x axis: parameters or training FLOPs (log scale), or the member's place in its family "
                         "as in the paper (default: params)")
    ap.add_argument("--published", action="store_true",
                    help="add the paper's curves (eval_pipeline/published/paper_figure_values.csv)")
    ap.add_argument("--output-dir", "--out-dir", dest="out_dir", help="where to write the figures and points.csv (default: RESULTS_DIR/figures)")
    args = ap.parse_args(argv)
    try:
        out = plot(args.results_dir, args.x, args.published, args.out_dir)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for f in out["files"]:
        print(f)
    print(f"{len(out['points'])} points plotted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
