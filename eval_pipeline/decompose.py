"""Does task decomposition explain the NeQA curve?

The paper's model (simulation/task_decompose.py of yuhui-zh15/NeQA): a model answers the plain question
right with probability t1 (task 1) and understands the negation with probability s (task 2's latent
skill); on the negated question it is right when it does both or neither:

    NeQA = t1·s + (1 − t1)(1 − s)

Task 2 is a two-choice question ("the same" / "different"), so a model with no understanding is at
chance: the paper writes task-2 *accuracy* as 0.5 + 0.5·s. Measured accuracies are therefore mapped
to s by inverting that line, s = clip(2·acc₂ − 1, 0, 1) (mapping `above_chance`, the default); the
mapping `raw` uses s = acc₂ as a labelled alternative (it composes a task 2 at chance to a flat 0.5).

Three comparisons per (family, task-2 prompt, NeQA prompt, mapping):

* direct: compose the measured t1 and s, compare with the measured NeQA (R², MAE);
* fitted: t1 as a line and task-2 accuracy as a rising sigmoid in x (scipy curve_fit, the sigmoid from
  several starts), mapped and composed (the paper's "task 1 linear, task 2 sigmoid" story);
* joint binomial fit per model: task-1, task-2 and NeQA correct counts over n items each with two
  parameters (t1, s): three binomials, two parameters, so the deviance against the saturated model has
  one degree of freedom per model (summed over the family). Bootstrap intervals for t1 and s are
  percentiles of the maximum-likelihood estimates refitted on counts redrawn from the measured
  proportions (parametric bootstrap).

The paper pairs the task-2 prompt with the NeQA prompt: the weaker task-2 prompt with zero-shot NeQA,
the stronger one (with "Negated sentences are different from original sentences.") with zero-shot + hint
(`PAIRS`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.optimize import curve_fit, minimize

from neqa.maths import compose, linear, sigmoid

MAPPINGS = ("above_chance", "raw")
PAIRS = (("weak", "zeroshot"), ("strong", "zeroshot_hint"))   # (task-2 prompt, NeQA prompt), as in the paper


def latent_s(task2_accuracy, mapping: str = "above_chance"):
    """Task-2 accuracy → the probability s of understanding the negation."""
    a = np.asarray(task2_accuracy, dtype=float)
    if mapping == "above_chance":
        return np.clip(2.0 * a - 1.0, 0.0, 1.0)
    if mapping == "raw":
        return a
    raise ValueError(f"unknown mapping {mapping!r}; choose from {', '.join(MAPPINGS)}")


def compose_measured(t1, t2, mapping: str = "above_chance"):
    """The direct composition of measured accuracies: task 2 mapped to s, then NeQA = t1·s + (1 − t1)(1 − s).
    Returns (s, composed); used by `decompose` and by the measured Figure 5 (simulation.composition)."""
    s = latent_s(t2, mapping)
    return s, compose(np.asarray(t1, dtype=float), s)


def task2_accuracy(s, mapping: str = "above_chance"):
    """The inverse of latent_s: the task-2 accuracy a model with skill s reaches."""
    s = np.asarray(s, dtype=float)
    return 0.5 + 0.5 * s if mapping == "above_chance" else s


def fit_linear(x, y):
    (a, b), _ = curve_fit(linear, x, y, p0=[0.0, float(np.mean(y))])
    return float(a), float(b)


def _rising(x, mid, k, lo, gap):
    return sigmoid(x, mid, k, lo, lo + gap)


def fit_sigmoid(x, y):
    """A rising sigmoid (hi >= lo, k >= 0) by bounded least squares from starts with the midpoint at
    every gap between points and two steepnesses; the lowest squared error wins. Returns (mid, k, lo, hi)."""
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


# ----------------------------------------------------------------------------- joint binomial fit

_GRID = np.linspace(0.0, 1.0, 101)


def _probs(t1, s, mapping):
    return t1, task2_accuracy(s, mapping), compose(t1, s)


def _loglik(k, n, p):
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return k * np.log(p) + (n - k) * np.log(1 - p)


def _grid_mle(k1, k2, kn, n1, n2, nn, mapping):
    """Maximum likelihood on a 101 × 101 grid of (t1, s); k arrays of shape (B,). Returns (t1, s) arrays."""
    T, S = np.meshgrid(_GRID, _GRID, indexing="ij")
    p1, p2, pn = _probs(T.ravel(), S.ravel(), mapping)
    k1, k2, kn = (np.asarray(v, float)[:, None] for v in (k1, k2, kn))
    ll = _loglik(k1, n1, p1[None]) + _loglik(k2, n2, p2[None]) + _loglik(kn, nn, pn[None])
    best = np.argmax(ll, axis=1)
    return T.ravel()[best], S.ravel()[best]


@dataclass
class JointFit:
    t1: float
    s: float
    t1_ci: tuple
    s_ci: tuple
    deviance: float          # against the saturated model (one free proportion per task)
    p_value: float           # chi-square, 1 degree of freedom


def joint_fit(k1, n1, k2, n2, kn, nn, mapping="above_chance", n_boot=500, seed=0) -> JointFit:
    """One model's task-1, task-2 and NeQA counts → the (t1, s) that explain all three best."""
    t0, s0 = _grid_mle([k1], [k2], [kn], n1, n2, nn, mapping)

    def nll(p):
        return -float(sum(_loglik(k, n, q) for k, n, q in zip((k1, k2, kn), (n1, n2, nn), _probs(p[0], p[1], mapping))))

    res = minimize(nll, [t0[0], s0[0]], method="L-BFGS-B", bounds=[(0, 1), (0, 1)])
    t1, s = (float(v) for v in res.x)
    sat = sum(_loglik(k, n, k / n) for k, n in ((k1, n1), (k2, n2), (kn, nn)))
    dev = max(0.0, 2 * (float(sat) + res.fun))
    rng = np.random.default_rng(seed)
    b1, b2, bn = (rng.binomial(n, k / n, size=n_boot) for k, n in ((k1, n1), (k2, n2), (kn, nn)))
    bt, bs = _grid_mle(b1, b2, bn, n1, n2, nn, mapping)
    ci = lambda v: tuple(float(q) for q in np.percentile(v, [2.5, 97.5]))
    return JointFit(t1=t1, s=s, t1_ci=ci(bt), s_ci=ci(bs), deviance=dev, p_value=float(stats.chi2.sf(dev, 1)))


# ----------------------------------------------------------------------------- one family

@dataclass
class Decomposition:
    mapping: str
    x: np.ndarray
    t1: np.ndarray
    t2: np.ndarray                 # measured task-2 accuracy
    s: np.ndarray                  # latent_s(t2, mapping)
    neqa: np.ndarray
    t1_fit: tuple                  # (a, b)
    t2_fit: tuple                  # (mid, k, lo, hi) of the task-2 accuracy
    composed: np.ndarray           # compose(t1, s), measured, no fitting
    composed_fit: np.ndarray       # composition of the fitted curves at x
    r2: float
    mae: float
    r2_fit: float
    mae_fit: float
    joint: list | None = None      # JointFit per model, when counts are known

    def curve(self, xs):
        """Fitted task 1, task-2 accuracy, latent s and composition on a grid, for plotting."""
        t1 = np.clip(linear(xs, *self.t1_fit), 0, 1)
        t2 = sigmoid(xs, *self.t2_fit)
        s = latent_s(t2, self.mapping)
        return t1, t2, s, compose(t1, s)

    def joint_summary(self) -> dict:
        if not self.joint:
            return {}
        dev = float(sum(j.deviance for j in self.joint))
        return {"joint_deviance": dev, "joint_df": len(self.joint),
                "joint_p_value": float(stats.chi2.sf(dev, len(self.joint)))}


def decompose(x, t1, t2, neqa, mapping="above_chance", n_items=None, n_boot=500, seed=0) -> Decomposition:
    """x, accuracies of task 1, task 2 and NeQA per model (3+ models). n_items: (n1, n2, nn) per model
    or one int for all, to add the joint binomial fit."""
    x, t1, t2, neqa = (np.asarray(v, dtype=float) for v in (x, t1, t2, neqa))
    if not (x.shape == t1.shape == t2.shape == neqa.shape) or len(x) < 3:
        raise ValueError("decompose needs x, task 1, task 2 and NeQA accuracies for the same 3+ models")
    s, comp = compose_measured(t1, t2, mapping)
    lin = fit_linear(x, t1)
    sig = fit_sigmoid(x, t2)
    comp_fit = compose(np.clip(linear(x, *lin), 0, 1), latent_s(sigmoid(x, *sig), mapping))
    joint = None
    if n_items is not None:
        n = np.broadcast_to(np.asarray(n_items, dtype=int).reshape(-1, 3) if np.ndim(n_items) else
                            np.full((len(x), 3), int(n_items)), (len(x), 3))
        joint = [joint_fit(round(t1[i] * n[i, 0]), n[i, 0], round(t2[i] * n[i, 1]), n[i, 1],
                           round(neqa[i] * n[i, 2]), n[i, 2], mapping, n_boot=n_boot, seed=seed + i)
                 for i in range(len(x))]
    return Decomposition(mapping=mapping, x=x, t1=t1, t2=t2, s=s, neqa=neqa, t1_fit=lin, t2_fit=sig,
                         composed=comp, composed_fit=comp_fit, r2=r2(neqa, comp),
                         mae=float(np.mean(np.abs(neqa - comp))), r2_fit=r2(neqa, comp_fit),
                         mae_fit=float(np.mean(np.abs(neqa - comp_fit))), joint=joint)


def published_series(csv_path, pairs=PAIRS, t1_prompt="zeroshot"):
    """(family, t2_prompt, neqa_prompt, models, t1, t2, neqa) for every family of the paper with all
    three tasks (GPT-3 and the GPT-3 text series); accuracies as fractions, models in family order."""
    import pandas as pd
    df = pd.read_csv(csv_path)
    out = []
    for fam, g in df.groupby("family", sort=False):
        a = g[(g.task == "task1") & (g.prompt == t1_prompt)]
        if a.empty:
            continue
        models = list(a["model"])
        for p2, pn in pairs:
            b = g[(g.task == "task2") & (g.prompt == p2)]
            n = g[(g.task == "neqa") & (g.prompt == pn)]
            if list(b["model"]) != models or list(n["model"]) != models:
                continue
            out.append((fam, p2, pn, models, a["accuracy_percent"].to_numpy(float) / 100,
                        b["accuracy_percent"].to_numpy(float) / 100, n["accuracy_percent"].to_numpy(float) / 100))
    return out
