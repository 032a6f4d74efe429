"""The TinyWorld data axis: the Chinchilla form L(N, D) = E + A/N^alpha + B/D^beta fitted to final
validation losses of the smaller members, each trained at several token budgets (a separate run per
budget, each with its own full cosine schedule: an intermediate checkpoint is not a shorter run).

The fit is eval_pipeline.fits.fit_chinchilla (Hoffmann et al.'s Huber fit in log space); its uncertainty
comes from a case bootstrap over the points. A parameter is reported as poorly determined when its 95%
bootstrap interval is wider than the estimate itself (or when fewer than half the replicates could be fitted),
and an exponent that ends on fit_chinchilla's search bound (0 or 3) is reported as such.
"""
from __future__ import annotations

import numpy as np

from eval_pipeline.fits import bootstrap_intervals, chinchilla_identifiable, fit_chinchilla

PARAMS = ("E", "A", "B", "alpha", "beta")


def fit_losses(N, D, L, n_boot: int = 20, seed: int = 0) -> dict:
    """Fit, intervals and a plain verdict per parameter ("not assessed" with n_boot=0);
    {"identifiable": False, "why": ...} when the points cannot separate the N and D terms."""
    N, D, L = (np.asarray(v, dtype=float) for v in (N, D, L))
    ok, why = chinchilla_identifiable(N, D)
    if not ok:
        return {"identifiable": False, "why": why, "n_points": int(len(L))}
    fit = fit_chinchilla(N, D, L, n_polish=2)

    def refit(n, d, l):
        if not chinchilla_identifiable(n, d)[0]:
            raise ValueError("resample lost a budget")
        f = fit_chinchilla(n, d, l, n_polish=1)
        return {k: getattr(f, k) for k in PARAMS}

    intervals, failed = bootstrap_intervals(refit, (N, D, L), n_boot=n_boot, seed=seed) if n_boot else ({}, 0)
    enough = n_boot - failed >= n_boot / 2
    verdict = {}
    for k in PARAMS:
        est = getattr(fit, k)
        lo, hi = intervals.get(k, (float("nan"), float("nan")))
        at_bound = k in ("alpha", "beta") and not 1e-6 < est < 3.0 - 1e-6   # fit_chinchilla's search bounds
        verdict[k] = ("at the search bound" if at_bound else "not assessed" if not n_boot else
                      "determined" if enough and hi - lo <= abs(est) else "poorly determined")
    pred = fit(N, D)
    return {"identifiable": True, "why": why, "n_points": int(len(L)),
            "fit": {k: getattr(fit, k) for k in PARAMS}, "huber_objective": fit.loss,
            "interval95": {k: list(v) for k, v in intervals.items()}, "bootstrap": {"replicates": n_boot,
                                                                                     "failed": failed},
            "verdict": verdict, "max_abs_residual": float(np.max(np.abs(pred - L))), "_fit": fit}


def fit_record(points: list[dict], others: list[dict] = (), n_boot: int = 20) -> dict:
    """fit_losses over rows with params / train_tokens / val_loss; the fit's prediction for `others`
    (members with one budget, left out of the fit) is an out-of-sample check."""
    rec = fit_losses([p["params"] for p in points], [p["train_tokens"] for p in points],
                     [p["val_loss"] for p in points], n_boot=n_boot)
    fit = rec.pop("_fit", None)
    if fit is not None:
        rec["held_out_members"] = [{"name": o["name"], "params": o["params"], "train_tokens": o["train_tokens"],
                                    "val_loss": o["val_loss"],
                                    "predicted": float(fit(o["params"], o["train_tokens"]))} for o in others]
    return rec
