"""What shape does a scaling curve have, and how sure are we?

`classify_trend(x, acc, n_items=...)` labels a curve positive | inverse | u-shaped | inverted-u | flat
and returns the numbers behind the label.

Method (every step works with 3 to 6 points):

1. x is put on log10 scale (`x_scale="log"`, for parameter counts or FLOPs) or used as given
   (`x_scale="linear"`, e.g. the member's place in its family, which is the paper's x axis).
2. Uncertainty comes from bootstrapping the accuracies. With `items` (one 0/1 array per point, the
   same questions in the same order) the questions are resampled jointly for all points (a paired
   bootstrap: models answering the same questions are correlated, which makes differences between
   them more precise). Otherwise each accuracy is redrawn as Binomial(n_items, acc) / n_items
   (acc clipped to [0.5/n, 1 - 0.5/n] so that 0% and 100% points still vary).
3. Monotone trend: least-squares slope of accuracy on x, with its percentile interval, and its
   support = the fraction of bootstrap replicates with the slope's sign. Spearman's rho of the
   points is reported too (exact permutation p-value).
4. Turning point: a quadratic in x is fitted to the points. If it is convex (concave) with its
   vertex strictly inside the x range, the curve is a U (inverted-U) candidate. The break point is
   the lower (higher) of the two observed points either side of the vertex, kept off the ends.
   Then, as in the "two lines" test (Simonsohn 2018), a line is fitted to the points up to and
   including the break and another to the points from the break on: the fall before and the
   rise after (or rise then fall) must both hold in at least `turn_support` of the bootstrap
   replicates jointly. Testing the two segments separately, instead of trusting the quadratic,
   keeps sigmoid curves (flat, then a late rise) from being called U-shaped: their first
   segment is flat, so the "fall" is not supported. The vertex's interval is the percentile
   interval over the replicates whose quadratic has the same curvature.
5. Label: u-shaped / inverted-u if step 4 holds; else positive / inverse if the slope's support is
   at least `monotone_support`; else flat. `at_chance` says whether every point lies in the
   binomial 95% band around chance at n_items (the band is reported); a flat curve may sit at
   chance or above it (e.g. saturated at 98%), so flat means "no supported trend".

Mapping to the paper's labels: "linear" and "sigmoid" (a late, sudden rise) both rise with scale;
a positive curve is then told linear or sigmoid by `compare_shapes` (binomial likelihoods, a
parametric-bootstrap likelihood-ratio test). The other labels are the same words. For the paper's
published values the bootstrap adds the ±3-point read-off error to the binomial noise of 100 items.
The default thresholds were chosen on synthetic curves (tests/test_trends.py), not on the paper's.
"""
from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

LABELS = ("positive", "inverse", "u-shaped", "inverted-u", "flat")
PAPER_LABEL_MAP = {"linear": "positive", "sigmoid": "positive", "positive": "positive",
                   "inverse": "inverse", "u-shaped": "u-shaped", "inverted-u": "inverted-u", "flat": "flat"}


@dataclass
class Trend:
    label: str
    n_points: int
    x_scale: str
    method: str                      # "items" (paired item bootstrap) or "binomial"
    n_boot: int
    slope: float                     # accuracy per unit of transformed x (per decade on log scale)
    slope_ci: tuple[float, float]    # 95% percentile interval
    slope_support: float             # fraction of replicates with the point slope's sign
    spearman_rho: float
    spearman_p: float                # exact two-sided permutation p-value
    quad_coef: float                 # coefficient of x^2 (transformed x)
    turn_kind: str | None            # "min" (U candidate), "max" (inverted-U candidate) or None
    turning_point: float | None      # vertex, in the original x units
    turning_ci: tuple[float, float] | None
    break_index: int | None          # index of the point used as the break
    fall_support: float | None       # U: fraction with falling first segment (inverted-U: rising)
    rise_support: float | None       # U: fraction with rising second segment (inverted-U: falling)
    turn_support: float | None       # both at once
    chance: float
    chance_band: tuple[float, float]  # binomial 95% band around chance at the smallest n_items
    at_chance: bool
    n_items: int | None

    def as_row(self) -> dict:
        row = asdict(self)
        for key in ("slope_ci", "turning_ci", "chance_band"):
            v = row.pop(key)
            row[f"{key}_lo"], row[f"{key}_hi"] = (v if v is not None else (None, None))
        return row


def _lines_slopes(u, acc_b):
    """Least-squares slope of each row of acc_b (B, k) against u (k,)."""
    du = u - u.mean()
    return (acc_b - acc_b.mean(axis=1, keepdims=True)) @ du / np.sum(du ** 2)


def _quad(u, acc_b):
    """Quadratic fits of each row: returns (c2, c1, c0) arrays."""
    V = np.vander(u, 3)                                   # columns u^2, u, 1
    coef, *_ = np.linalg.lstsq(V, np.atleast_2d(acc_b).T, rcond=None)
    return coef[0], coef[1], coef[2]


def _spearman_exact(x, y):
    """Spearman's rho and its exact two-sided permutation p-value (fine up to ~8 points)."""
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    if np.ptp(ry) == 0 or np.ptp(rx) == 0:
        return 0.0, 1.0
    rho = float(np.corrcoef(rx, ry)[0, 1])
    if len(x) > 8:
        return rho, float(stats.spearmanr(x, y).pvalue)
    P = ry[np.array(list(itertools.permutations(range(len(ry)))))]      # every ordering of y's ranks
    dx, dP = rx - rx.mean(), P - P.mean(axis=1, keepdims=True)
    perms = dP @ dx / (np.sqrt(np.sum(dP ** 2, axis=1)) * np.sqrt(np.sum(dx ** 2)))
    p = float(np.mean(np.abs(perms) >= abs(rho) - 1e-12))
    return rho, p


def chance_band(n: int, chance: float = 0.5, level: float = 0.95) -> tuple[float, float]:
    """Accuracies a model guessing at `chance` reaches with probability `level` on n items."""
    a = (1 - level) / 2
    return float(stats.binom.ppf(a, n, chance) / n), float(stats.binom.isf(a, n, chance) / n)


def bootstrap_accuracies(acc, n_items=None, items=None, n_boot=2000, seed=0, readoff=0.0):
    """(n_boot, k) replicated accuracies and the method used (see the module docstring). `readoff`: the
    half-width of a uniform read-off error added to every replicated value (published numbers read off
    a figure are known to about ±0.03), clipped to [0, 1]."""
    rng = np.random.default_rng(seed)
    if readoff:
        boot, method = bootstrap_accuracies(acc, n_items, items, n_boot, seed)
        jitter = rng.uniform(-readoff, readoff, size=boot.shape)
        return np.clip(boot + jitter, 0.0, 1.0), method + f"+readoff{readoff:g}"
    acc = np.asarray(acc, dtype=float)
    if items is not None:
        items = [np.asarray(it, dtype=float) for it in items]
        if len(items) != len(acc):
            raise ValueError(f"items has {len(items)} entries for {len(acc)} points")
        lengths = {len(it) for it in items}
        if 0 in lengths:
            raise ValueError("an items entry is empty")
        if len(lengths) == 1:                              # same questions: paired resampling
            m = lengths.pop()
            Y = np.stack(items)                            # (k, m)
            idx = rng.integers(0, m, size=(n_boot, m))
            return Y[:, idx].mean(axis=2).T, "items"
        return np.stack([it[rng.integers(0, len(it), size=(n_boot, len(it)))].mean(axis=1)
                         for it in items], axis=1), "items"
    if n_items is None:
        raise ValueError("classify_trend needs n_items (or items) to know how noisy each accuracy is")
    n = np.broadcast_to(np.asarray(n_items, dtype=int), acc.shape)
    if np.any(n < 1):
        raise ValueError("n_items must be positive")
    p = np.clip(acc, 0.5 / n, 1 - 0.5 / n)
    return rng.binomial(n, p, size=(n_boot, len(acc))) / n, "binomial"


def classify_trend(x, acc, n_items=None, chance=0.5, items=None, *, x_scale="log",
                   monotone_support=0.95, turn_support=0.9, n_boot=2000, seed=0, readoff=0.0) -> Trend:
    """Label the curve acc(x); see the module docstring for the method.

    x: sizes (x_scale="log") or positions (x_scale="linear"); acc: accuracies in [0, 1];
    n_items: items per point (int or one per point); items: optional per-point 0/1 arrays.
    """
    x, acc = np.asarray(x, dtype=float), np.asarray(acc, dtype=float)
    if x.ndim != 1 or x.shape != acc.shape:
        raise ValueError("x and acc must be 1-D and the same length")
    if len(x) < 2:
        raise ValueError("a trend needs at least two points")
    if not np.all(np.isfinite(acc)) or np.any((acc < 0) | (acc > 1)):
        raise ValueError("accuracies must be fractions in [0, 1]")
    if x_scale == "log":
        if np.any(x <= 0):
            raise ValueError("x must be positive on a log scale (use x_scale='linear' for positions)")
        t = np.log10(x)
    elif x_scale == "linear":
        t = x
    else:
        raise ValueError(f"x_scale must be 'log' or 'linear', not {x_scale!r}")
    order = np.argsort(t, kind="stable")
    t, acc, x = t[order], acc[order], x[order]
    if items is not None:
        items = [items[i] for i in order]
        n_items = [len(it) for it in items]
    elif n_items is not None and np.ndim(n_items) > 0:
        n_items = list(np.asarray(n_items)[order])
    if np.ptp(t) == 0:
        raise ValueError("all x are equal")
    acc_b, method = bootstrap_accuracies(acc, n_items, items, n_boot, seed, readoff)
    k = len(t)

    slope = float(_lines_slopes(t, acc[None])[0])
    slopes_b = _lines_slopes(t, acc_b)
    sign = 1.0 if slope >= 0 else -1.0
    slope_support = float(np.mean(sign * slopes_b > 0))
    slope_ci = tuple(float(v) for v in np.percentile(slopes_b, [2.5, 97.5]))
    rho, rho_p = _spearman_exact(t, acc)

    n_min = int(np.min(n_items))
    band = chance_band(n_min, chance)
    at_chance = bool(np.all((acc >= band[0]) & (acc <= band[1])))

    quad_coef, turn_kind, turning_point, turning_ci = 0.0, None, None, None
    brk, fall_s, rise_s, both_s = None, None, None, None
    if k >= 3:
        c2, c1, _ = _quad(t, acc[None])
        quad_coef = float(c2[0])
        vertex = -c1[0] / (2 * c2[0]) if c2[0] != 0 else np.inf
        if t[0] < vertex < t[-1]:
            turn_kind = "min" if c2[0] > 0 else "max"
            s = 1.0 if turn_kind == "min" else -1.0        # flip so that the U logic serves both
            j = int(np.searchsorted(t, vertex))           # t[j-1] < vertex <= t[j]
            cands = [i for i in (j - 1, j) if 0 < i < k - 1]
            if cands:
                brk = min(cands, key=lambda i: s * acc[i])
                left = _lines_slopes(t[:brk + 1], acc_b[:, :brk + 1])
                right = _lines_slopes(t[brk:], acc_b[:, brk:])
                fall_s = float(np.mean(s * left < 0))
                rise_s = float(np.mean(s * right > 0))
                both_s = float(np.mean((s * left < 0) & (s * right > 0)))
            b2, b1, _ = _quad(t, acc_b)
            same = (np.sign(b2) == np.sign(c2[0]))
            if same.any():
                vb = np.clip(-b1[same] / (2 * b2[same]), t[0], t[-1])
                lo, hi = np.percentile(vb, [2.5, 97.5])
                back = (lambda v: float(10 ** v)) if x_scale == "log" else float
                turning_point, turning_ci = back(vertex), (back(lo), back(hi))

    if both_s is not None and both_s >= turn_support:
        label = "u-shaped" if turn_kind == "min" else "inverted-u"
    elif slope_support >= monotone_support:
        label = "positive" if slope > 0 else "inverse"
    else:
        label = "flat"
    return Trend(label=label, n_points=k, x_scale=x_scale, method=method, n_boot=n_boot,
                 slope=slope, slope_ci=slope_ci, slope_support=slope_support,
                 spearman_rho=rho, spearman_p=rho_p, quad_coef=quad_coef, turn_kind=turn_kind,
                 turning_point=turning_point, turning_ci=turning_ci, break_index=brk,
                 fall_support=fall_s, rise_support=rise_s, turn_support=both_s, chance=chance,
                 chance_band=band, at_chance=at_chance, n_items=n_min)


def published_trends(csv_path, n_items: int = 100, readoff: float = 0.03, shape_boot: int = 400, **kwargs):
    """Classify every curve of the paper's figure values (x = place in the family, as in the paper), with
    the read-off error of the values (±`readoff`) added to the binomial noise of n_items.

    Returns a list of dicts: figure, family, prompt, task, accuracies, paper label, our label, the
    linear-vs-sigmoid comparison (`compare_shapes`) of every curve, and `agree`: for the paper's
    "linear"/"sigmoid" labels, our curve must be positive *and* of that shape; for the other labels
    the words must match. `agree_direction` is the looser reading (linear and sigmoid both = positive).
    """
    import pandas as pd
    df = pd.read_csv(csv_path)
    need = {"figure", "family", "model", "prompt", "task", "accuracy_percent", "trend_label_in_paper"}
    if not need <= set(df.columns):
        raise ValueError(f"{csv_path}: missing columns {sorted(need - set(df.columns))}")
    rows = []
    for (fig, fam, prompt, task), g in df.groupby(["figure", "family", "prompt", "task"], sort=False):
        acc = g["accuracy_percent"].to_numpy(float) / 100
        pos = np.arange(1, len(g) + 1)
        tr = classify_trend(pos, acc, n_items=n_items, x_scale="linear", readoff=readoff, **kwargs)
        sh = compare_shapes(pos, acc, n_items, readoff=readoff, n_boot=shape_boot, seed=kwargs.get("seed", 0))
        paper = str(g["trend_label_in_paper"].iloc[0])
        mapped = PAPER_LABEL_MAP.get(paper, paper)
        if paper in ("linear", "sigmoid"):
            agree = tr.label == "positive" and sh.label == paper
        else:
            agree = tr.label == mapped
        rows.append({"figure": int(fig), "family": fam, "prompt": prompt, "task": task,
                     "models": " ".join(g["model"]), "accuracies": " ".join(f"{a:.2f}" for a in acc),
                     "paper_label": paper, "label": tr.label,
                     "shape": sh.label if tr.label == "positive" else "", "agree": agree,
                     "agree_direction": tr.label == mapped, "readoff": readoff,
                     **{k: (v if tr.label == "positive" else None) for k, v in sh.as_row().items() if k != "shape"},
                     **{k: v for k, v in tr.as_row().items() if k != "label"}})
    return rows


# ----------------------------------------------------------------------------- linear or sigmoid?

@dataclass
class Shape:
    """Linear against sigmoid for a rising curve, by binomial likelihood (the paper: task 1 "linear",
    task 2 "sigmoid").

    linear:  p = a + b·t (clipped to (0, 1)), 2 parameters;
    sigmoid: p = lo + (1 − lo)·σ(k·(t − m)), k ≥ 0: flat at lo, then a rise towards 1; 3 parameters.
    lr = 2·(loglik_sigmoid − loglik_linear). Its p-value is calibrated by a parametric bootstrap under
    the fitted line (replicated counts, plus the read-off error when given, both models refitted), so it
    needs no asymptotic theory for these non-nested models with 3-6 points. label: "sigmoid" when
    p < alpha (a line cannot produce that much improvement), else "linear" (the line suffices)."""
    label: str
    lr: float
    p_value: float
    aic_linear: float
    aic_sigmoid: float
    linear: tuple      # (a, b)
    sigmoid: tuple     # (lo, k, m)
    n_boot: int

    def as_row(self) -> dict:
        return {"shape": self.label, "shape_lr": self.lr, "shape_p": self.p_value,
                "aic_linear": self.aic_linear, "aic_sigmoid": self.aic_sigmoid}


_EPS = 1e-6


def _line_grid(t, steps=150):
    """Every line whose ends (at the smallest and largest t) lie on a grid in (0, 1): (G, points)."""
    ends = np.linspace(0.002, 0.998, steps)
    lo, hi = (a.ravel() for a in np.meshgrid(ends, ends, indexing="ij"))
    u = (t - t.min()) / np.ptp(t)
    return lo[:, None] + (hi - lo)[:, None] * u[None, :], np.stack([lo, hi], axis=1)


def _sigmoid_grid(t):
    """lo + (1 − lo)·σ(k·(t − m)) on a grid of (lo, k, m): (G, points)."""
    span = np.ptp(t)
    lo, k, m = (a.ravel() for a in np.meshgrid(np.linspace(0, 0.95, 39), np.geomspace(0.5, 60, 14) / span,
                                               np.linspace(t.min() - 0.25 * span, t.max() + 0.25 * span, 41),
                                               indexing="ij"))
    z = np.clip(k[:, None] * (t[None, :] - m[:, None]), -50, 50)
    return lo[:, None] + (1 - lo[:, None]) / (1 + np.exp(-z)), np.stack([lo, k, m], axis=1)


def _max_ll(K, n, P):
    """Best binomial log-likelihood over the grid P (G, points) for each row of counts K (B, points)."""
    P = np.clip(P, _EPS, 1 - _EPS)
    ll = K @ np.log(P).T + (n[None, :] - K) @ np.log1p(-P).T          # (B, G)
    best = np.argmax(ll, axis=1)
    return ll[np.arange(len(K)), best], best


def compare_shapes(x, acc, n_items, *, readoff=0.0, n_boot=400, seed=0, alpha=0.05) -> Shape:
    """x: positions or log sizes (used as given); acc in [0, 1]; n_items per point (int or array).
    Both models are maximised on fine parameter grids (every line with ends on a 150-step grid in
    (0, 1); 22,386 sigmoids), for the data and for every bootstrap replicate alike, so the Monte-Carlo
    p-value is exact for the statistic computed."""
    t, acc = np.asarray(x, dtype=float), np.asarray(acc, dtype=float)
    n = np.broadcast_to(np.asarray(n_items, dtype=float), acc.shape).astype(float)
    PL, lin_par = _line_grid(t)
    PS, sig_par = _sigmoid_grid(t)
    K = (acc * n)[None, :]
    ll_l, il = _max_ll(K, n, PL)
    ll_s, js = _max_ll(K, n, PS)
    lr = float(max(0.0, 2 * (ll_s[0] - ll_l[0])))
    rng = np.random.default_rng(seed)
    p0 = np.clip(PL[il[0]], _EPS, 1 - _EPS)
    Kb = rng.binomial(n.astype(int), p0, size=(n_boot, len(t))).astype(float)
    if readoff:
        Kb = np.clip(Kb + n * rng.uniform(-readoff, readoff, size=Kb.shape), 0, n)
    lrs = np.maximum(0.0, 2 * (_max_ll(Kb, n, PS)[0] - _max_ll(Kb, n, PL)[0]))
    p = float((1 + np.sum(lrs >= lr - 1e-9)) / (n_boot + 1))
    lo, hi = lin_par[il[0]]
    slope = (hi - lo) / np.ptp(t)
    return Shape(label="sigmoid" if p < alpha else "linear", lr=lr, p_value=p,
                 aic_linear=float(4 - 2 * ll_l[0]), aic_sigmoid=float(6 - 2 * ll_s[0]),
                 linear=(float(lo - slope * t.min()), float(slope)), sigmoid=tuple(map(float, sig_par[js[0]])),
                 n_boot=n_boot)
