"""An independent re-computation of the authors' Slice-and-Sandwich numbers, for cross-checking
eval_pipeline/slice_sandwich.py. It shares no code with that module: it follows the steps of the
authors' fit_cluster.py (tony10101105/ExpEmergence) in their order and sign convention (negated Brier
scores, the split taken before dropping empty rows, OLS by explicit design matrices), with the
per-task settings written out again from their utils.py.

    python tests/expemergence_reference.py [DATA_DIR]     # prints each task's test-split MAE and MSE
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

SETTINGS = {  # task: (log10 threshold in 1e21 FLOPs, random-guess accuracy, easy column, hard column)
    "mmlu": (1.5, 0.25, "0_4680_brier", "9361_14042_brier"),
    "parsinlu_qa_mc": (2.3, 0.25, "0_350_brier", "700_1050_brier"),
    "arithmetic": (1.8, 0.145, "0_5007_brier", "10015_15023_brier"),
    "hindu_knowledge": (1, 0.25, "0_58_brier", "116_175_brier"),
    "analogical_similarity": (2, 0.145, "0_107_brier", "215_323_brier"),
    "conceptual_combinations": (1.5, 0.25, "0_34_brier", "68_103_brier"),
    "hellaswag": (2.3, 0.25, "0_3347_brier", "6694_10042_brier"),
    "arc": (2.3, 0.25, "0_1182_brier", "2365_3548_brier"),
    "abstract_narrative_understanding": (2.3, 0.1, "0_1000_brier", "2000_3000_brier"),
}
DROPPED = {"microsoft/phi-1_5", "microsoft/phi-2", "Qwen/Qwen1.5-0.5B", "Qwen/Qwen1.5-1.8B", "Qwen/Qwen1.5-4B",
           "stabilityai/stablelm-2-1_6b", "meta-llama/Meta-Llama-3-8B"}


def ols(columns, y):
    """Coefficients of y on [1, *columns] by least squares."""
    X = np.column_stack([np.ones(len(y))] + [np.asarray(c, float) for c in columns])
    return np.linalg.lstsq(X, np.asarray(y, float), rcond=None)[0]


def design(x, degree):
    return [x ** k for k in range(1, degree + 1)]


def reference(task: str, data_dir: Path) -> pd.DataFrame:
    log_t, guess, easy, hard = SETTINGS[task]
    t = 10 ** log_t
    path = next(p for p in Path(data_dir).rglob(f"{task}_instance_brier_-1000_*_3_redist.csv")
                if np.isclose(float(p.name.split("_-1000_")[1].split("_")[0]), t))
    df = pd.read_csv(path).rename(columns={"FLOPs (1E21)": "FLOPs"}).sort_values("FLOPs")
    df = df[~df["Model"].isin(DROPPED)]
    train_all, test_all = df["FLOPs"] < t, df["FLOPs"] >= t
    df = df.dropna(subset=["acc", easy, hard, "FLOPs"]).copy()
    for c in (easy, hard, "brier"):
        df[c] = -df[c].astype(float)
    df["FLOPs"] = np.log10(df["FLOPs"].astype(float))
    train, test = train_all.reindex(df.index), test_all.reindex(df.index)
    tr = df[df["FLOPs"] < np.log10(t)]
    c0, c1 = ols([tr["acc"]], tr["brier"])                                   # brier = c0 + c1 * acc
    e = ols(design(tr["FLOPs"], 5), tr[easy])
    h = ols(design(tr["FLOPs"], 2), tr[hard])
    x = df["FLOPs"]
    easy_hat = e[0] + sum(e[k] * x ** k for k in range(1, 6))
    hard_hat = h[0] + sum(h[k] * x ** k for k in range(1, 3))
    acc_hat = ((easy_hat + hard_hat) / 2 - c0) / c1
    acc_hat = acc_hat + df["acc"][train].mean() - acc_hat[train].mean()
    qt = np.clip(tr["acc"] - guess, 0, 1)
    b0, b1 = ols([tr["FLOPs"]], np.log((qt + 1e-6) / (1 - qt + 1e-6)))
    base = 1 / (1 + np.exp(-(b1 * x + b0))) + guess
    return pd.DataFrame({"model": df["Model"], "log10_flops": x, "acc": df["acc"], "test": test,
                         "sas_pred": acc_hat, "baseline_pred": base})


def errors(frame: pd.DataFrame) -> dict:
    t = frame[frame["test"]]
    out = {"n_test": len(t)}
    for name in ("sas", "baseline"):
        d = t[f"{name}_pred"] - t["acc"]
        out[f"{name}_mae"], out[f"{name}_mse"] = float(d.abs().mean()), float((d ** 2).mean())
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[0]) if argv else Path(__file__).resolve().parents[1] / "eval_pipeline" / "published" / "expemergence"
    print("task                               n_test  S&S MAE   S&S MSE     baseline MAE  baseline MSE")
    for task in SETTINGS:
        e = errors(reference(task, root))
        print(f"{task:34s} {e['n_test']:6d}  {e['sas_mae']:.4f}  {e['sas_mse']:.4g}  "
              f"{e['baseline_mae']:12.4f}  {e['baseline_mse']:.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
