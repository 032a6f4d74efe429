"""Training trajectories (Xia et al., 2023): accuracy along training checkpoints, against validation
perplexity, tokens and FLOPs, one line per model size; and whether perplexity predicts accuracy
across sizes better than size does.

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
