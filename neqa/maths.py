"""Small pure functions more than one stage needs."""
from __future__ import annotations

import math

import numpy as np


def logaddexp(a: float, b: float) -> float:
    """log(exp(a) + exp(b)) for two floats, stable, and -inf when both are -inf."""
    top = max(a, b)
    return top + math.log(math.exp(a - top) + math.exp(b - top)) if top > -math.inf else top


def common_length(a, b) -> int:
    """Length of the common start of two sequences (e.g. token ids)."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


# The task decomposition (the paper's Section 5): task 1 linear, task 2 a sigmoid, NeQA their composition.
def linear(x, a: float, b: float):
    """a·x + b (unclipped; task-1 curves clip it to [0, 1] where they are probabilities)."""
    return a * np.asarray(x, dtype=float) + b


def sigmoid(x, mid: float, k: float, lo: float = 0.0, hi: float = 1.0):
    """From lo to hi, half-way at x = mid, steepness k."""
    return lo + (hi - lo) / (1.0 + np.exp(-k * (np.asarray(x, dtype=float) - mid)))


def compose(t1, t2):
    """P(right on the negated question) = both right + both wrong: t1·t2 + (1 − t1)(1 − t2)."""
    t1, t2 = np.asarray(t1, dtype=float), np.asarray(t2, dtype=float)
    return t1 * t2 + (1.0 - t1) * (1.0 - t2)
