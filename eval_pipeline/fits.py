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


def _r2(y, yhat) -> float:
    y, yhat = np.asarray(y, float), np.asarray(yhat, float)
    ss = np.sum((y - y.mean()) ** 2)
    return float(1 - np.sum((y - yhat) ** 2) / ss) if ss > 0 else 1.0


@dataclass
class Chinchilla:
    """L(N, D) = E + A / N**alpha + B / D**beta (Hoffmann et al. 2022, approach 3)."""
    E: float
    A: float
    B: float
    alpha: float
    beta: float
    loss: float          # the Huber objective at the optimum

    def __call__(self, N, D):
        N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
        return self.E + self.A / N ** self.alpha + self.B / D ** self.beta


def _huber(r, delta):
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r ** 2, delta * (a - 0.5 * delta))


def fit_chinchilla(N, D, L, delta: float = 1e-3, grid=None, n_polish: int = 4) -> Chinchilla:
    """Hoffmann et al.'s fit: minimise the Huber loss (delta 1e-3) between log L and
    log(exp(a - alpha log N) + exp(b - beta log D) + exp(e)). Every start of a grid (default a, b in
    {0, 5, 10, 15, 20, 25}, alpha, beta in {0.2, 0.5, 1.0}, e in {-1, 0, 1}; theirs is finer) is scored,
    the `n_polish` best are run to convergence with L-BFGS-B (bounded), and the best of those is kept
    (Hoffmann et al. run every start). A = exp(a), B = exp(b), E = exp(e). The form is identifiable
    only when D varies independently of N: check `chinchilla_identifiable` first."""
    from scipy.optimize import minimize
    from scipy.special import logsumexp
    N, D, L = (np.asarray(v, dtype=float) for v in (N, D, L))
    if not (N.shape == D.shape == L.shape) or len(L) < 5:
        raise ValueError("fit_chinchilla needs N, D, L of the same length, at least 5 points")
    if np.any(N <= 0) or np.any(D <= 0) or np.any(L <= 0):
        raise ValueError("N, D and L must be positive")
    lN, lD, lL = np.log(N), np.log(D), np.log(L)

    def objective(p):
        a, b, e, alpha, beta = p
        pred = logsumexp(np.stack([a - alpha * lN, b - beta * lD, np.full_like(lN, e)]), axis=0)
        return float(np.sum(_huber(pred - lL, delta)))

    def gradient(p):
        a, b, e, alpha, beta = p
        terms = np.stack([a - alpha * lN, b - beta * lD, np.full_like(lN, e)])
        pred = logsumexp(terms, axis=0)
        w = np.exp(terms - pred)                          # d pred / d term
        h = np.clip(pred - lL, -delta, delta)             # Huber derivative
        return np.array([h @ w[0], h @ w[1], h @ w[2], -(h * w[0]) @ lN, -(h * w[1]) @ lD])

    if grid is None:
        grid = [(a, b, e, al, be) for a in (0, 5, 10, 15, 20, 25) for b in (0, 5, 10, 15, 20, 25)
                for e in (-1, 0, 1) for al in (0.2, 0.5, 1.0) for be in (0.2, 0.5, 1.0)]
    # rank the starts by their objective (all at once) and polish the best few
    G = np.asarray(grid, dtype=float)
    terms = np.stack([G[:, :1] - G[:, 3:4] * lN, G[:, 1:2] - G[:, 4:5] * lD,
                      np.broadcast_to(G[:, 2:3], (len(G), len(lN)))])
    grid_obj = np.sum(_huber(logsumexp(terms, axis=0) - lL, delta), axis=1)
    scored = [G[i] for i in np.argsort(grid_obj, kind="stable")[:n_polish]]
    bounds = [(-10, 60), (-10, 60), (-5, 5), (0.0, 3.0), (0.0, 3.0)]
    best = min((minimize(objective, np.array(p0, float), jac=gradient, method="L-BFGS-B", bounds=bounds,
                                 options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 2000}) for p0 in scored),
               key=lambda r: r.fun)
    a, b, e, alpha, beta = best.x
    return Chinchilla(E=float(np.exp(e)), A=float(np.exp(a)), B=float(np.exp(b)),
                      alpha=float(alpha), beta=float(beta), loss=float(best.fun))


def chinchilla_identifiable(N, D) -> tuple[bool, str]:
    """The Chinchilla form separates the N and D terms only when each model size has been seen at two
    or more data budgets (and there are two or more sizes); otherwise N and D move together."""
    N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
    sizes = np.unique(N)
    if len(sizes) < 2:
        return False, "one model size: the N term cannot be told from the constant"
    budgets = {n: len(np.unique(D[N == n])) for n in sizes}
    if min(budgets.values()) < 2:
        one = sum(v < 2 for v in budgets.values())
        return False, (f"{one} of {len(sizes)} sizes have a single data budget: N and D vary together, so "
                       "A/N^alpha and B/D^beta cannot be separated")
    if len(N) < 5:
        return False, "fewer than 5 points for 5 parameters"
    return True, f"{len(sizes)} sizes × {min(budgets.values())}-{max(budgets.values())} data budgets"


def bootstrap_intervals(fit, arrays, n_boot=200, seed=0, level=0.95):
    """Percentile intervals of `fit(*resampled) -> dict of numbers` over case-resampled rows of `arrays`
    (same length); replicates where the fit fails are skipped (their count is returned)."""
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(a) for a in arrays]
    m = len(arrays[0])
    draws: dict[str, list] = {}
    failed = 0
    for _ in range(n_boot):
        idx = rng.integers(0, m, size=m)
        try:
            out = fit(*(a[idx] for a in arrays))
        except (ValueError, RuntimeError, np.linalg.LinAlgError):
            failed += 1
            continue
        for k, v in out.items():
            draws.setdefault(k, []).append(v)
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    return {k: tuple(float(x) for x in np.percentile(v, q)) for k, v in draws.items()}, failed


@dataclass
class BrokenPowerLaw:
    """y = a + b * x**(-c0) * (1 + (x / d1)**(1 / f1))**(-c1 * f1): Caballero et al. (2022), one break.
    Far below d1 the curve is a power law with exponent c0; above it, c0 + c1. A negative c0 + c1
    with positive c0 (b > 0) turns a falling curve into a rising one: a U shape."""
    a: float
    b: float
    c0: float
    c1: float
    d1: float
    f1: float
    r2: float

    def __call__(self, x):
        return _bpl(np.log10(np.asarray(x, dtype=float)), self.a, self.b, self.c0, self.c1,
                    np.log10(self.d1), self.f1)


def _bpl(lx, a, b, c0, c1, log_d1, f1):
    # in log10 x for numerical sanity; (x/d1)^(1/f1) = 10^((lx - log_d1)/f1)
    z = np.clip((lx - log_d1) / f1, -50, 50)
    return a + b * 10 ** (-c0 * lx) * (1 + 10 ** z) ** (-c1 * f1)


def fit_broken_power_law(x, y, n_starts: int = 4, seed: int = 0, max_nfev: int = 2000) -> BrokenPowerLaw:
    """Least-squares fit of the one-break form with scipy curve_fit from several starts
    (breaks at interior x quantiles, exponents of both signs), bounded; the best R² wins.
    Six parameters: with few points (fewer than 7) the fit interpolates, so read it as a smoother."""
    from scipy.optimize import curve_fit
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 4 or np.any(x <= 0):
        raise ValueError("a broken power law needs at least 4 points with positive x")
    m = float(np.log10(x).mean())
    lz = np.log10(x) - m                  # fit in centred log x: b and d1 stay of order one
    rng = np.random.default_rng(seed)
    lo_b = [-np.inf, -np.inf, -3.0, -6.0, lz.min() - 1, 0.01]
    hi_b = [np.inf, np.inf, 3.0, 6.0, lz.max() + 1, 5.0]
    span = float(np.ptp(y)) or 1.0
    starts = [[y.min(), span * sb, c0, c1, np.quantile(lz, q), 0.5]
              for q in (0.25, 0.5, 0.75)
              for sb, c0, c1 in ((1, 0.1, -0.2), (-1, -0.1, 0.2), (1, 0.3, 0.3), (1, 0.05, -0.05))]
    starts += [[y.mean(), span * rng.normal(), rng.uniform(-1, 1), rng.uniform(-2, 2),
                rng.uniform(lz.min(), lz.max()), rng.uniform(0.1, 2)] for _ in range(n_starts)]
    best, best_r2 = None, -np.inf
    with np.errstate(over="ignore", invalid="ignore"):
        for p0 in starts:
            try:
                p, _ = curve_fit(_bpl, lz, y, p0=np.clip(p0, np.add(lo_b, 1e-9), np.subtract(hi_b, 1e-9)),
                                 bounds=(lo_b, hi_b), maxfev=max_nfev)
            except (RuntimeError, ValueError):
                continue
            r2 = _r2(y, _bpl(lz, *p))
            if r2 > best_r2:
                best, best_r2 = p, r2
    if best is None:
        raise ValueError("the broken power law fit did not converge from any start")
    a, b, c0, c1, log_d1, f1 = best
    b, log_d1 = b * 10 ** (c0 * m), log_d1 + m      # back to uncentred x
    return BrokenPowerLaw(a=float(a), b=float(b), c0=float(c0), c1=float(c1), d1=float(10 ** log_d1),
                          f1=float(f1), r2=float(best_r2))
