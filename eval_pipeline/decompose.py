"""Does task decomposition explain the NeQA curve?

Task 1 (answer the plain question) is fitted as a line in x, task 2 (tell the negated sentence from
the original) as a rising sigmoid in x (x = log10 parameters, or the member's place in its family), each by
scipy curve_fit (the sigmoid from several starts, bounded to [0, 1]). Composed:
NeQA = t1·t2 + (1 − t1)(1 − t2) (`neqa.maths.compose`), compared with the measured
NeQA accuracies by R² and mean absolute error. The measured t1, t2 composed directly (no fit) are
reported too; `measured_rows` gives that composition per family member of a results folder.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import curve_fit

from neqa.maths import compose, linear, sigmoid


def fit_linear(x, y):
    (a, b), _ = curve_fit(linear, x, y, p0=[0.0, float(np.mean(y))])
    return float(a), float(b)


def _rising(x, mid, k, lo, gap):
    return sigmoid(x, mid, k, lo, lo + gap)


def fit_sigmoid(x, y):
    """A rising sigmoid (task 2 is expected to switch on with scale: hi >= lo, k >= 0), bounded least
    squares from starts with the midpoint at every gap between points and two steepnesses; the
    lowest squared error wins. Returns (mid, k, lo, hi)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    span = np.ptp(x) or 1.0
    bounds = ([x.min() - span, 0.0, 0.0, 0.0], [x.max() + span, 50.0 / span, 1.0, 1.0])
    best, best_sse = None, np.inf
    mids = (x[:-1] + x[1:]) / 2 if len(x) > 1 else x
    lo0 = float(np.clip(y.min(), 0.01, 0.98))
    for mid in mids:
        for k in (2.0 / span, 10.0 / span):
            p0 = [mid, k, lo0, float(np.clip(y.max() - lo0, 0.01, 0.98))]
            try:
                p, _ = curve_fit(_rising, x, y, p0=p0, bounds=bounds, maxfev=10000)
            except (RuntimeError, ValueError):
                continue
            sse = float(np.sum((_rising(x, *p) - y) ** 2))
            if sse < best_sse:
                best, best_sse = p, sse
    if best is None:
        raise ValueError("the sigmoid fit did not converge from any start")
    mid, k, lo, gap = (float(v) for v in best)
    return mid, k, lo, min(1.0, lo + gap)


def r2(y, yhat) -> float:
    y, yhat = np.asarray(y, dtype=float), np.asarray(yhat, dtype=float)
    ss = np.sum((y - y.mean()) ** 2)
    return float(1 - np.sum((y - yhat) ** 2) / ss) if ss > 0 else float("nan")


@dataclass
class Decomposition:
    x: np.ndarray
    t1: np.ndarray
    t2: np.ndarray
    neqa: np.ndarray
    t1_fit: tuple          # (a, b)
    t2_fit: tuple          # (mid, k, lo, hi)
    composed_fit: np.ndarray      # compose(linear fit, sigmoid fit) at x
    composed_measured: np.ndarray  # compose(t1, t2) at x, no fitting
    r2_fit: float
    mae_fit: float
    r2_measured: float
    mae_measured: float

    def curve(self, xs):
        """The fitted composition on a grid, for plotting."""
        t1 = np.clip(linear(xs, *self.t1_fit), 0, 1)
        return t1, sigmoid(xs, *self.t2_fit), compose(t1, sigmoid(xs, *self.t2_fit))


def decompose(x, t1, t2, neqa) -> Decomposition:
    x, t1, t2, neqa = (np.asarray(v, dtype=float) for v in (x, t1, t2, neqa))
    if not (x.shape == t1.shape == t2.shape == neqa.shape) or len(x) < 3:
        raise ValueError("decompose needs x, task 1, task 2 and NeQA accuracies for the same 3+ models")
    lin = fit_linear(x, t1)
    sig = fit_sigmoid(x, t2)
    comp = compose(np.clip(linear(x, *lin), 0, 1), sigmoid(x, *sig))
    meas = compose(t1, t2)
    return Decomposition(x=x, t1=t1, t2=t2, neqa=neqa, t1_fit=lin, t2_fit=sig, composed_fit=comp,
                         composed_measured=meas, r2_fit=r2(neqa, comp),
                         mae_fit=float(np.mean(np.abs(neqa - comp))), r2_measured=r2(neqa, meas),
                         mae_measured=float(np.mean(np.abs(neqa - meas))))


def published_series(csv_path, neqa_prompt="zeroshot", t1_prompt="zeroshot", t2_prompts=("weak", "strong")):
    """(family, t2_prompt, models, t1, t2, neqa) for every family of the paper with all three tasks
    (GPT-3 and the GPT-3 text series); accuracies as fractions, models in family order."""
    import pandas as pd
    df = pd.read_csv(csv_path)
    out = []
    for fam, g in df.groupby("family", sort=False):
        n = g[(g.task == "neqa") & (g.prompt == neqa_prompt)]
        a = g[(g.task == "task1") & (g.prompt == t1_prompt)]
        if n.empty or a.empty:
            continue
        models = list(n["model"])
        for p in t2_prompts:
            b = g[(g.task == "task2") & (g.prompt == p)]
            if b.empty or list(a["model"]) != models or list(b["model"]) != models:
                continue
            out.append((fam, p, models, a["accuracy_percent"].to_numpy(float) / 100,
                        b["accuracy_percent"].to_numpy(float) / 100, n["accuracy_percent"].to_numpy(float) / 100))
    return out


def above_chance(accuracy):
    """Two-choice accuracy above chance as a probability: 0.5 → 0, 1 → 1 (clipped)."""
    return np.clip(2.0 * np.asarray(accuracy, dtype=float) - 1.0, 0.0, 1.0)


def measured_rows(results_dir, t1_prompt: str = "zeroshot", t2_prompt: str = "strong",
                  neqa_prompt: str = "zeroshot", t2_above_chance: bool = False) -> list[dict]:
    """One row per family member that has task-1 and task-2 summaries: measured accuracies,
    the composed prediction, and the measured NeQA accuracy (None when not evaluated).
    With t2_above_chance the task-2 accuracy enters the composition as above_chance(accuracy)."""
    from neqa.results import load_summaries
    df = load_summaries(results_dir)
    runs = {(r["family"], r["member"], r["task"], r["prompt"]): r for r in df.to_dict("records")}
    rows = []
    for family, member in sorted({(f, m) for f, m, _, _ in runs}):
        s1, s2 = runs.get((family, member, "task1", t1_prompt)), runs.get((family, member, "task2", t2_prompt))
        if s1 is None or s2 is None:
            continue
        sn = runs.get((family, member, "neqa", neqa_prompt))
        t2 = float(above_chance(s2["accuracy"])) if t2_above_chance else s2["accuracy"]
        size = next((int(s["n_params"]) for s in (s1, s2) if s["n_params"] == s["n_params"] and s["n_params"]), None)
        rows.append({"family": family, "member": member, "n_params": size,
                     "task1": s1["accuracy"], "task2": s2["accuracy"],
                     "predicted_neqa": float(compose(s1["accuracy"], t2)),
                     "measured_neqa": None if sn is None else sn["accuracy"]})
    rows.sort(key=lambda r: (r["family"], r["n_params"] is None, r["n_params"] or 0, r["member"]))
    return rows
