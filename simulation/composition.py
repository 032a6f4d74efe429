"""Figure 5: NeQA as the composition of task 1 (answer the plain question) and task 2 (understand negation).

A model that answers the plain question right with probability t1 and "flips" for the negation
with probability s is right on the negated question when it does both or neither:
    NeQA = t1·s + (1 − t1)(1 − s).
Task 1 rises linearly from chance (0.5). s, the latent probability of understanding the negation, is
near 0 for small models (they answer the negated question like the original), then a sigmoid to 1.
Task 2 itself is a two-choice question, so its *accuracy* is 0.5 + 0.5·s, as the paper's simulation
writes it and draws it (yuhui-zh15/NeQA, simulation/task_decompose.py); the figure draws that
accuracy, with s dashed. Before s switches on, NeQA = 1 − t1 falls below 50%; afterwards it follows
t1: a U shape.

    python -m simulation.composition                       # the simulated curves
    python -m simulation.composition --results results     # plus measured task 1 / task 2 → predicted NeQA

With --results, measured task-2 accuracy is turned back into s = clip(2·acc − 1, 0, 1) (--t2-raw: s =
acc) and each family is read through the first prompt reading, zero-shot then cloze, whose task-1
curve is not all at chance (--t1-prompt/--neqa-prompt fix it); the figure and the output say which.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from neqa.cli import command
from eval_pipeline.decompose import compose_measured
from neqa.figures import save_figure
from neqa.io import DataError, write_csv, write_json
from neqa.maths import compose, linear, sigmoid
from neqa.results import final_checkpoints, load_summaries

FIG_NAME = "fig5_task_decomposition"
MEASURED_NAME = "fig5_measured_decomposition"
SIMULATION_SETTINGS = ("t1_slope", "t1_intercept", "t2_midpoint", "t2_steepness", "t2_floor", "t2_ceiling",
                       "x_min", "x_max", "points")


def task1_curve(x, slope: float, intercept: float):
    """Task 1: slope·x + intercept, clipped to [0, 1]."""
    return np.clip(linear(x, slope, intercept), 0.0, 1.0)


def is_u_shaped(y, margin: float = 0.05) -> bool:
    """The minimum lies strictly inside and both ends are at least `margin` above it."""
    y = np.asarray(y, dtype=float)
    i = int(np.argmin(y))
    return 0 < i < len(y) - 1 and y[0] - y[i] >= margin and y[-1] - y[i] >= margin


def simulate(args) -> dict[str, np.ndarray]:
    x = np.linspace(args.x_min, args.x_max, args.points)
    t1 = task1_curve(x, args.t1_slope, args.t1_intercept)
    s = sigmoid(x, args.t2_midpoint, args.t2_steepness, args.t2_floor, args.t2_ceiling)
    return {"scale": x, "task1": t1, "task2": 0.5 + 0.5 * s, "task2_latent": s, "neqa": compose(t1, s)}


def _at_chance(acc: float, n: int) -> bool:
    """Inside the binomial 95% band around 0.5 at n items."""
    half = 1.96 * np.sqrt(0.25 / max(n, 1))
    return abs(acc - 0.5) <= half


def _size(*summaries) -> int | None:
    """The first known parameter count among the summaries."""
    return next((int(s["n_params"]) for s in summaries if s["n_params"] > 0), None)


def measured_rows(results_dir, t1_prompt: str = "auto", t2_prompt: str = "strong",
                  neqa_prompt: str = "auto", t2_raw: bool = False) -> list[dict]:
    """One row per family member that has task-1 and task-2 summaries: measured accuracies, s, the
    composed prediction (eval_pipeline.decompose.compose_measured, as `analyze decompose` composes), the
    measured NeQA accuracy (None when not evaluated) and the reading used. Summaries are read by
    neqa.results; a member evaluated at checkpoints is read at its final one, as `analyze decompose` does.
    With t1_prompt/neqa_prompt "auto", each family uses zero-shot unless its task-1 curve is all at
    chance there and a cloze task-1 curve exists (then cloze for task 1 and NeQA)."""
    summaries = final_checkpoints(load_summaries(results_dir))
    mapping = "raw" if t2_raw else "above_chance"
    rows = []
    for family, fam in summaries.groupby("family", sort=True):
        run = {(r["task"], r["prompt"], r["base_member"]): r for r in fam.to_dict("records")}
        reading = {}
        for prompt in ("zeroshot", "cloze"):
            found = fam[(fam["task"] == "task1") & (fam["prompt"] == prompt)]
            if len(found):
                reading[prompt] = all(_at_chance(a, n) for a, n in zip(found["accuracy"], found["n_items"]))
        auto = "cloze" if reading.get("zeroshot", True) and "cloze" in reading else "zeroshot"
        p1 = auto if t1_prompt == "auto" else t1_prompt
        pn = auto if neqa_prompt == "auto" else neqa_prompt
        for member in sorted(fam["base_member"].unique()):
            s1, s2 = run.get(("task1", p1, member)), run.get(("task2", t2_prompt, member))
            if s1 is None or s2 is None:
                continue
            neqa = run.get(("neqa", pn, member))
            s, predicted = compose_measured(s1["accuracy"], s2["accuracy"], mapping)
            rows.append({"family": family, "member": member, "n_params": _size(s1, s2),
                         "task1_prompt": p1, "task2_prompt": t2_prompt, "neqa_prompt": pn, "task2_mapping": mapping,
                         "task1": s1["accuracy"], "task2": s2["accuracy"], "task2_latent": float(s),
                         "predicted_neqa": float(predicted), "measured_neqa": None if neqa is None else neqa["accuracy"]})
    rows.sort(key=lambda r: (r["family"], r["n_params"] is None, r["n_params"] or 0, r["member"]))
    return rows


def plot_simulated(curves: dict, out_dir: Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    ax.plot(curves["scale"], curves["task1"], label="Task 1: question answering (linear)", color="tab:blue")
    ax.plot(curves["scale"], curves["task2"], label="Task 2: negation understanding, accuracy 0.5 + 0.5·s",
            color="tab:orange")
    ax.plot(curves["scale"], curves["task2_latent"], "--", label="s: P(understands the negation), sigmoid",
            color="tab:orange", lw=1)
    ax.plot(curves["scale"], curves["neqa"], label="Composed task: NeQA = t1·s + (1 − t1)(1 − s)", color="black", lw=2)
    ax.axhline(0.5, color="grey", ls=":", lw=1)
    ax.set_xlabel("Scale")
    ax.set_ylabel("Accuracy")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title("Simulation of task decomposition", fontsize=10)
    ax.legend(fontsize=6.5, loc="lower right")
    return save_figure(fig, out_dir, FIG_NAME)


def plot_measured(rows: list[dict], out_dir: Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    families = sorted({r["family"] for r in rows})
    ncol = min(2, len(families))
    nrow = -(-len(families) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(min(7.0, 3.5 * ncol), 3.0 * nrow), squeeze=False)
    for ax, family in zip(axes.flat, families):
        fam = [r for r in rows if r["family"] == family]
        r0 = fam[0]
        x = np.arange(len(fam))
        ax.plot(x, [r["task1"] for r in fam], "o-", label=f"task 1, {r0['task1_prompt']}", color="tab:blue")
        ax.plot(x, [r["task2"] for r in fam], "o-", label=f"task 2 accuracy, {r0['task2_prompt']}", color="tab:orange")
        ax.plot(x, [r["task2_latent"] for r in fam], "o--", label=f"s ({r0['task2_mapping']})",
                color="tab:orange", lw=1, ms=3)
        ax.plot(x, [r["predicted_neqa"] for r in fam], "s--", label="NeQA composed", color="black")
        measured = [(i, r["measured_neqa"]) for i, r in enumerate(fam) if r["measured_neqa"] is not None]
        if measured:
            ax.plot(*zip(*measured), "s-", label=f"NeQA measured, {r0['neqa_prompt']}", color="tab:red")
        ax.axhline(0.5, color="grey", ls=":", lw=1)
        ax.set_xticks(x, [r["member"] for r in fam], rotation=30, ha="right", fontsize=7)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"{family} (reading: task 1 {r0['task1_prompt']}, NeQA {r0['neqa_prompt']})", fontsize=8)
        ax.set_ylabel("Accuracy")
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(families):]:
        ax.axis("off")
    fig.tight_layout()
    return save_figure(fig, out_dir, MEASURED_NAME)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    # defaults: the paper's simulation (yuhui-zh15/NeQA, simulation/task_decompose.py)
    p.add_argument("--t1-slope", type=float, default=0.025, help="task 1 = slope·scale + intercept (clipped to [0,1])")
    p.add_argument("--t1-intercept", type=float, default=0.75, help="task-1 accuracy at scale 0")
    p.add_argument("--t2-midpoint", type=float, default=0.0, help="scale where task 2 is half-way")
    p.add_argument("--t2-steepness", type=float, default=1.0, help="sigmoid steepness of task 2")
    p.add_argument("--t2-floor", type=float, default=0.0,
                   help="s (latent task 2) for the smallest models (0: they treat the negated question as the original)")
    p.add_argument("--t2-ceiling", type=float, default=1.0, help="s (latent task 2) for the largest models")
    p.add_argument("--x-min", type=float, default=-10.0)
    p.add_argument("--x-max", type=float, default=10.0)
    p.add_argument("--points", type=int, default=100)
    p.add_argument("--results", type=Path, help="evaluation results folder: also compose measured task 1 and task 2")
    p.add_argument("--t1-prompt", default="auto",
                   help="prompt of the task-1 results (auto: zero-shot, or cloze where zero-shot is all at chance)")
    p.add_argument("--t2-prompt", default="strong", choices=["weak", "strong"], help="prompt of the task-2 results")
    p.add_argument("--neqa-prompt", default="auto", help="prompt of the measured NeQA results (auto: as task 1)")
    p.add_argument("--t2-raw", action="store_true",
                   help="compose with the raw task-2 accuracy as s instead of s = clip(2·acc − 1, 0, 1) "
                        "(the paper's task-2 accuracy is 0.5 + 0.5·s)")
    p.add_argument("--output-dir", "--out-dir", dest="out_dir", type=Path, default=Path("results/figures"))
    return p


@command
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.points < 3:
        print("error: --points must be at least 3", file=sys.stderr)
        return 2
    try:
        curves = simulate(args)
        args.out_dir.mkdir(parents=True, exist_ok=True)
        write_csv(args.out_dir / f"{FIG_NAME}.csv",
                  [{k: float(v[i]) for k, v in curves.items()} for i in range(args.points)])
        paths = plot_simulated(curves, args.out_dir)
        settings = {k: getattr(args, k) for k in SIMULATION_SETTINGS}
        write_json(args.out_dir / f"{FIG_NAME}.json", settings)   # read by simulation.deviations
        i = int(np.argmin(curves["neqa"]))
        print(f"simulated NeQA: {curves['neqa'][0]:.3f} at scale {curves['scale'][0]:g}, minimum "
              f"{curves['neqa'][i]:.3f} at {curves['scale'][i]:g}, {curves['neqa'][-1]:.3f} at "
              f"{curves['scale'][-1]:g} ({'U-shaped' if is_u_shaped(curves['neqa']) else 'not U-shaped'})")
        if args.results is not None:
            rows = measured_rows(args.results, args.t1_prompt, args.t2_prompt, args.neqa_prompt, args.t2_raw)
            if not rows:
                raise DataError(args.results, None, None, f"no member has both task1__{args.t1_prompt} and "
                                f"task2__{args.t2_prompt} summaries")
            write_csv(args.out_dir / f"{MEASURED_NAME}.csv", rows)
            paths += plot_measured(rows, args.out_dir)
            for r in rows:
                m = "n/a" if r["measured_neqa"] is None else f"{r['measured_neqa']:.3f}"
                print(f"{r['family']}/{r['member']} (task 1 {r['task1_prompt']}, task 2 {r['task2_prompt']}, "
                      f"NeQA {r['neqa_prompt']}): task1 {r['task1']:.3f} task2 {r['task2']:.3f} "
                      f"(s {r['task2_latent']:.3f}) -> predicted NeQA {r['predicted_neqa']:.3f} (measured {m})")
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for p in paths:
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
