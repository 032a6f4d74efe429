"""Scaling-law fits (pure functions of arrays)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PowerLaw:
    """L(x) = (x_c / x) ** alpha, fitted as a straight line in log-log space."""
    x_c: float
    alpha: float
    r2: float

    def __call__(self, x):
        return (self.x_c / np.asarray(x, dtype=float)) ** self.alpha


def fit_power_law(x, y) -> PowerLaw:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("a power-law fit needs at least two points with positive x and y")
    lx, ly = np.log(x), np.log(y)
    slope, intercept = np.polyfit(lx, ly, 1)
    alpha = -slope
    resid = ly - (intercept + slope * lx)
    ss_tot = np.sum((ly - ly.mean()) ** 2)
    r2 = 1.0 - np.sum(resid ** 2) / ss_tot if ss_tot > 0 else 1.0
    x_c = float(np.exp(intercept / alpha)) if alpha != 0 else float("inf")
    return PowerLaw(x_c=x_c, alpha=float(alpha), r2=float(r2))
