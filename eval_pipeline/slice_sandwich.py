"""Slice-and-Sandwich (Wu & Lo, 2024): forecast accuracy above an emergence threshold from models below it.

Per question, the target-conditioned Brier score (1 − p_right)² (`brier` in items.jsonl). Difficulty of
a question = its mean Brier over the models below the threshold T (in log10 FLOPs). Questions are
sorted by difficulty and cut into equal groups (10 for the picture, 3 for the forecast). The easy
third's mean Brier is fitted with a degree-5 polynomial and the hard third's with a degree-2
polynomial of log10 FLOPs on the models below T (with fewer than degree + 1 models the degree is
lowered and a note says so); the two fits are averaged ("sandwich"); that average is mapped to
accuracy by a line fitted on the models below T (measured average of the two groups' Brier ->
accuracy); the forecast is shifted so its mean over the models below T equals theirs; it is read off
above T.

Baseline: accuracy = chance + (1 − chance)·sigmoid(a·x + b), fitted on the models below T, so it
rises from chance to 1 (the usual "emergence" curve). Both are scored by the mean absolute error
on the models above T.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.polynomial import Polynomial
from scipy.optimize import curve_fit


def difficulty_groups(brier, below, n_groups):
    """Question indices per group, easiest (lowest mean Brier below T) first."""
    diff = np.asarray(brier, dtype=float)[below].mean(axis=0)
    order = np.argsort(diff, kind="stable")
    return np.array_split(order, n_groups)


def _polyfit(x, y, deg, notes, name):
    if len(x) < deg + 1:
        notes.append(f"{name}: {len(x)} models below the threshold, degree lowered from {deg} to {len(x) - 1}")
        deg = len(x) - 1
    return Polynomial.fit(x, y, deg)


def _baseline(x, a, b, chance):
    return chance + (1 - chance) / (1 + np.exp(-(a * x + b)))


@dataclass
class Forecast:
    threshold: float
    above: np.ndarray                 # mask of models above T
    accuracy: np.ndarray              # measured, all models
    forecast: np.ndarray              # slice-and-sandwich, all models
    baseline: np.ndarray              # sigmoid baseline, all models
    mae: float                        # on models above T
    baseline_mae: float
    group_brier: np.ndarray           # (n_groups, n_models) mean Brier per group (forecast groups)
    notes: list = field(default_factory=list)


def forecast(brier, accuracy, log_flops, threshold, n_groups=3, deg_easy=5, deg_hard=2, chance=0.5) -> Forecast:
    """brier: (models, questions); accuracy, log_flops: (models,). Models at or below `threshold` fit."""
    brier, accuracy, x = (np.asarray(v, dtype=float) for v in (brier, accuracy, log_flops))
    if brier.ndim != 2 or brier.shape[0] != len(x) or len(accuracy) != len(x):
        raise ValueError("brier must be (models, questions) with one accuracy and one log FLOPs per model")
    below, above = x <= threshold, x > threshold
    if below.sum() < 2 or above.sum() < 1:
        raise ValueError(f"need at least 2 models below and 1 above the threshold {threshold} "
                         f"(have {int(below.sum())} and {int(above.sum())})")
    if brier.shape[1] < n_groups:
        raise ValueError(f"need at least {n_groups} questions")
    notes: list[str] = []
    groups = difficulty_groups(brier, below, n_groups)
    gb = np.stack([brier[:, g].mean(axis=1) for g in groups])            # (n_groups, models)
    easy, hard = gb[0], gb[-1]
    p_easy = _polyfit(x[below], easy[below], deg_easy, notes, "easy group")
    p_hard = _polyfit(x[below], hard[below], deg_hard, notes, "hard group")
    sandwich = (p_easy(x) + p_hard(x)) / 2
    measured_avg = (easy + hard) / 2
    if np.ptp(measured_avg[below]) > 0:
        c, d = np.polyfit(measured_avg[below], accuracy[below], 1)
    else:
        c, d = 0.0, float(accuracy[below].mean())
        notes.append("the averaged Brier does not vary below the threshold: accuracy mapped to its mean")
    pred = c * sandwich + d
    pred = pred + (accuracy[below].mean() - pred[below].mean())
    pred = np.clip(pred, 0, 1)

    try:
        (a, b), _ = curve_fit(lambda x, a, b: _baseline(x, a, b, chance), x[below],
                              np.clip(accuracy[below], chance + 1e-3, 1 - 1e-3), p0=[1.0, -np.mean(x[below])],
                              maxfev=20000)
        base = _baseline(x, a, b, chance)
    except RuntimeError:
        notes.append("the sigmoid baseline did not converge: baseline = mean accuracy below the threshold")
        base = np.full_like(x, accuracy[below].mean())
    return Forecast(threshold=threshold, above=above, accuracy=accuracy, forecast=pred, baseline=base,
                    mae=float(np.mean(np.abs(pred[above] - accuracy[above]))),
                    baseline_mae=float(np.mean(np.abs(base[above] - accuracy[above]))),
                    group_brier=gb, notes=notes)


def matrices_from_items(items, summaries):
    """From results.load_items / load_summaries frames of ONE (task, prompt): the (models, questions)
    Brier matrix over the questions every model answered, accuracy and log10 FLOPs per model, names."""
    runs = summaries[["family", "member", "flops", "accuracy"]].drop_duplicates(["family", "member"])
    if runs["flops"].isna().any():
        missing = ", ".join(runs.loc[runs["flops"].isna(), "member"])
        raise ValueError(f"no FLOPs in summary.json for: {missing}")
    if "brier" not in items:
        raise ValueError("items.jsonl records have no 'brier' field")
    piv = items.pivot_table(index=["family", "member"], columns="index", values="brier", aggfunc="mean")
    piv = piv.dropna(axis=1)
    runs = runs.set_index(["family", "member"]).loc[piv.index]
    order = np.argsort(runs["flops"].to_numpy(float), kind="stable")
    names = [f"{f}/{m}" for f, m in piv.index]
    return (piv.to_numpy(float)[order], runs["accuracy"].to_numpy(float)[order],
            np.log10(runs["flops"].to_numpy(float))[order], [names[i] for i in order])
