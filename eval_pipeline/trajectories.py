"""Training trajectories (Xia et al., 2023): accuracy along training checkpoints, against validation
perplexity, tokens and FLOPs, one line per model size; whether perplexity predicts accuracy across
sizes better than size does, tested as nested binomial regressions over all checkpoints
(`nested_comparison`).

Checkpoint results are summaries whose `revision` names a step ("step143000", ".../checkpoints/step-6")
or whose member is "<member>@step-N". Validation loss comes from summary.json (`val_loss`, or
`perplexity` = exp(val_loss)) or, with --runs, from runs/<family>/<member>/train_log.jsonl (the row
with val_loss nearest the checkpoint's step, at or before it; the layout is neqa.checkpoints').
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from neqa.checkpoints import train_log
from neqa.io import DataError, FieldError, read_jsonl


def read_train_log(path) -> pd.DataFrame:
    """train_log.jsonl rows with a validation loss: step, tokens, flops, val_loss."""
    def check(r):
        if not isinstance(r.get("step"), int):
            raise FieldError("step", "missing or not an integer")
    df = pd.DataFrame(read_jsonl(path, check))
    for col in ("tokens", "flops", "val_loss"):
        if col not in df:
            df[col] = np.nan
    df = df[["step", "tokens", "flops", "val_loss"]]
    return df[pd.to_numeric(df["val_loss"], errors="coerce").notna()].astype(float).sort_values("step")


def trajectory_table(summaries: pd.DataFrame, runs_dir=None) -> pd.DataFrame:
    """Checkpoint rows (one per family, base_member, step, task, prompt) with accuracy, val_loss,
    perplexity, tokens, flops and n_params filled in where known."""
    df = summaries[summaries["step"].notna()].copy()
    if df.empty:
        raise DataError("results", None, "revision", "no checkpoint results (revision 'stepN' or member '<m>@step-N')")
    if "val_loss" not in df:
        df["val_loss"] = np.nan
    df["val_loss"] = df["val_loss"].where(df["val_loss"].notna(), np.log(df["perplexity"]))
    if runs_dir is not None:
        logs: dict[str, pd.DataFrame | None] = {}
        for i, r in df.iterrows():
            key = r["base_member"]
            if key not in logs:
                path = train_log(Path(runs_dir) / key)
                logs[key] = read_train_log(path) if path.exists() else None
            log = logs[key]
            if log is None or log.empty:
                continue
            before = log[log["step"] <= r["step"]]
            row = before.iloc[-1] if len(before) else log.iloc[0]
            if pd.isna(r["val_loss"]):
                df.at[i, "val_loss"] = row["val_loss"]
            if not pd.isna(row["tokens"]):   # the registry's count is the final model's, not this checkpoint's
                df.at[i, "train_tokens"] = row["tokens"]
            if not pd.isna(row["flops"]):
                df.at[i, "flops"] = row["flops"]
    df["perplexity"] = np.exp(df["val_loss"])
    return df.sort_values(["family", "task", "prompt", "n_params", "step"])


def _r2_line(x, y) -> float:
    if len(x) < 3 or np.ptp(x) == 0:
        return float("nan")
    return float(stats.linregress(x, y).rvalue ** 2)


def compare_predictors(traj: pd.DataFrame) -> list[dict]:
    """Per (family, task, prompt), pooled over sizes and checkpoints: R² of a line and Spearman's rho
    of accuracy against log perplexity, log params, log tokens and log FLOPs. 'Perplexity predicts
    better' when its R² is higher than log-params'."""
    rows = []
    for (fam, task, prompt), g in traj.groupby(["family", "task", "prompt"], dropna=False):
        row = {"family": fam, "task": task, "prompt": prompt, "n_points": len(g),
               "n_sizes": g["base_member"].nunique()}
        for name, col in (("log_ppl", "val_loss"), ("log_params", "n_params"),
                          ("log_tokens", "train_tokens"), ("log_flops", "flops")):
            v = g[col].to_numpy(float)
            if name != "log_ppl":
                v = np.log(np.where(v > 0, v, np.nan))
            ok = np.isfinite(v)
            y = g["accuracy"].to_numpy(float)[ok]
            row[f"r2_{name}"] = _r2_line(v[ok], y)
            row[f"spearman_{name}"] = (float(stats.spearmanr(v[ok], y).statistic)
                                       if ok.sum() >= 3 and np.ptp(v[ok]) > 0 else float("nan"))
        a, b = row["r2_log_ppl"], row["r2_log_params"]
        row["perplexity_better"] = (bool(a > b) if not (math.isnan(a) or math.isnan(b)) else None)
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- nested comparison

def _logistic_fit(X, k, n, iters=100):
    """Binomial GLM with logit link by iteratively reweighted least squares: coefficients, deviance,
    Pearson chi-square and fitted p. X includes the intercept column."""
    y = k / n
    beta = np.zeros(X.shape[1])
    beta[0] = math.log((k.sum() + 0.5) / (n.sum() - k.sum() + 0.5))
    for _ in range(iters):
        eta = np.clip(X @ beta, -30, 30)
        p = 1 / (1 + np.exp(-eta))
        w = n * p * (1 - p) + 1e-12
        z = eta + (y - p) / (p * (1 - p) + 1e-12)
        new = np.linalg.lstsq(X * np.sqrt(w)[:, None], z * np.sqrt(w), rcond=None)[0]
        if np.max(np.abs(new - beta)) < 1e-10:
            beta = new
            break
        beta = new
    p = np.clip(1 / (1 + np.exp(-np.clip(X @ beta, -30, 30))), 1e-12, 1 - 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        dev = 2 * np.sum(np.where(k > 0, k * np.log(k / (n * p)), 0.0)
                         + np.where(n - k > 0, (n - k) * np.log((n - k) / (n * (1 - p))), 0.0))
    pearson = float(np.sum((k - n * p) ** 2 / (n * p * (1 - p))))
    return beta, float(dev), pearson, p


def nested_comparison(traj: pd.DataFrame) -> list[dict]:
    """Xia et al.'s claim as nested binomial regressions over every checkpoint of every size, per
    (family, task, prompt): logit(accuracy) on log perplexity, on log parameters, and on both.

    * `p_size_given_ppl`: does log size add predictive power once log perplexity is in the model?
      (likelihood-ratio test, 1 df; `_quasi` the same as an F test with the dispersion of the full
      model, since checkpoints of one model are not independent binomial draws);
    * `p_ppl_given_size`: does log perplexity add once log size is in?
    * `cv_mae_*`: leave-one-size-out cross-validation: each size's checkpoints predicted by the model
      fitted on the other sizes; mean absolute error in accuracy.
    Needs n_items (items per checkpoint) and val_loss for every row."""
    rows = []
    for (fam, task, prompt), g in traj.groupby(["family", "task", "prompt"], dropna=False):
        g = g.dropna(subset=["val_loss", "n_params", "accuracy", "n_items"])
        sizes = g["base_member"].nunique()
        if len(g) < 5 or sizes < 2:
            continue
        n = g["n_items"].to_numpy(float)
        k = np.round(g["accuracy"].to_numpy(float) * n)
        lp, ln = g["val_loss"].to_numpy(float), np.log(g["n_params"].to_numpy(float))
        one = np.ones(len(g))
        designs = {"ppl": np.column_stack([one, lp]), "size": np.column_stack([one, ln]),
                   "both": np.column_stack([one, lp, ln])}
        fits = {name: _logistic_fit(X, k, n) for name, X in designs.items()}
        dev = {name: f[1] for name, f in fits.items()}
        df_resid = len(g) - 3
        phi = max(1.0, fits["both"][2] / df_resid) if df_resid > 0 else float("nan")
        row = {"family": fam, "task": task, "prompt": prompt, "n_points": len(g), "n_sizes": sizes,
               "deviance_ppl": dev["ppl"], "deviance_size": dev["size"], "deviance_both": dev["both"],
               "dispersion": phi}
        for name, smaller in (("size_given_ppl", "ppl"), ("ppl_given_size", "size")):
            lr = max(0.0, dev[smaller] - dev["both"])
            row[f"lr_{name}"] = lr
            row[f"p_{name}"] = float(stats.chi2.sf(lr, 1))
            row[f"p_{name}_quasi"] = float(stats.f.sf(lr / phi, 1, df_resid)) if df_resid > 0 else float("nan")
        members = g["base_member"].to_numpy()
        for name, X in designs.items():
            err = []
            for m in np.unique(members):
                tr, te = members != m, members == m
                beta = _logistic_fit(X[tr], k[tr], n[tr])[0]
                p = 1 / (1 + np.exp(-np.clip(X[te] @ beta, -30, 30)))
                err += list(np.abs(p - k[te] / n[te]))
            row[f"cv_mae_{name}"] = float(np.mean(err))
        row["answer"] = nested_answer(row)
        rows.append(row)
    return rows


def nested_answer(r: dict, alpha: float = 0.05) -> str:
    """The nested comparison in words (quasi-likelihood p-values, which allow for overdispersion)."""
    size_adds = r["p_size_given_ppl_quasi"] < alpha
    ppl_adds = r["p_ppl_given_size_quasi"] < alpha
    best = min(("perplexity", r["cv_mae_ppl"]), ("size", r["cv_mae_size"]), ("both", r["cv_mae_both"]),
               key=lambda t: t[1])[0]
    if ppl_adds and not size_adds:
        head = "perplexity carries the information: size adds nothing once perplexity is known"
    elif size_adds and not ppl_adds:
        head = "size carries the information: perplexity adds nothing once size is known"
    elif size_adds and ppl_adds:
        head = "each adds to the other: neither perplexity nor size alone is enough"
    else:
        head = "neither adds to the other (the two predictors are interchangeable here)"
    return (f"{head} (p = {r['p_size_given_ppl_quasi']:.2g} for size given perplexity, "
            f"{r['p_ppl_given_size_quasi']:.2g} for perplexity given size); leave-one-size-out error is "
            f"lowest with {best} (MAE {r['cv_mae_ppl']:.3f} perplexity, {r['cv_mae_size']:.3f} size, "
            f"{r['cv_mae_both']:.3f} both)")
