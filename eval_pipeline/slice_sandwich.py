"""Slice-and-Sandwich (Wu & Lo, ICLR 2025): forecast accuracy above an emergence threshold from models below it.

As the authors' `fit_cluster.py` computes it (their code is read, not copied; differences are listed in
the README's deviation table):

1. Models are split at the threshold T (log10 FLOPs): those with FLOPs < T fit, those at or above it
   are forecast.
2. Questions are sorted by their mean target-conditioned Brier score (1 − p_right)², p_right
   renormalised over the options, over the models with FLOPs ≤ T and cut into 3 equal groups; the
   easy group's mean Brier per model is fitted by a degree-5 and the hard group's by a degree-2
   polynomial of log10 FLOPs, on the fitting models; the forecast Brier is the average of the two.
3. The accuracy↔Brier map is an ordinary least-squares line of the *overall* Brier score on accuracy
   over the fitting models, inverted: acc = (Brier − intercept) / slope.
4. The forecast accuracy is shifted so that its mean over the fitting models equals theirs.
   Not clipped (their default).
5. Baseline (their code): logit(acc − chance) (clipped to [0, 1], ε = 1e-6) regressed on log10 FLOPs by
   OLS over the fitting models; forecast sigmoid(a·x + b) + chance.

Errors (MAE, MSE) are computed on the models at or above T. The authors' per-task settings
(threshold, chance, which models they drop as probably over-trained) are in `TASKS` and
`EXCLUDED_MODELS`; their released per-group results are vendored in `published/expemergence/`.
The authors use the negated Brier score (higher is better); every step above is linear in the
Brier score, so the sign makes no difference to the forecast.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

EXPEMERGENCE_DIR = Path(__file__).resolve().parent / "published" / "expemergence"

# task: (threshold in log10 of FLOPs/1e21, chance accuracy) -- the authors' utils.py (basic_parameter)
TASKS = {
    "mmlu": (1.5, 0.25),
    "parsinlu_qa_mc": (2.3, 0.25),
    "arithmetic": (1.8, 0.145),
    "hindu_knowledge": (1.0, 0.25),
    "analogical_similarity": (2.0, 0.145),
    "conceptual_combinations": (1.5, 0.25),
    "hellaswag": (2.3, 0.25),
    "arc": (2.3, 0.25),
    "abstract_narrative_understanding": (2.3, 0.1),
}
EMERGENT = ("mmlu", "parsinlu_qa_mc", "arithmetic", "hindu_knowledge", "analogical_similarity",
            "conceptual_combinations")   # the authors' 'Emergence' tasks; the other three they call 'No Emergence'
# the authors' model_filter: small models they consider probably over-trained, left out of every fit
EXCLUDED_MODELS = ("microsoft/phi-1_5", "microsoft/phi-2", "Qwen/Qwen1.5-0.5B", "Qwen/Qwen1.5-1.8B",
                   "Qwen/Qwen1.5-4B", "stabilityai/stablelm-2-1_6b", "meta-llama/Meta-Llama-3-8B")


@dataclass
class Forecast:
    threshold: float
    fit: np.ndarray                   # mask: models used for fitting (log FLOPs < threshold)
    test: np.ndarray                  # mask: models forecast (log FLOPs >= threshold)
    log_flops: np.ndarray
    accuracy: np.ndarray
    brier_pred: np.ndarray            # sandwich of the easy and hard polynomials
    sas_pred: np.ndarray              # slice-and-sandwich accuracy forecast, every model
    baseline_pred: np.ndarray         # sigmoid baseline, every model
    acc_brier: tuple                  # (intercept, slope) of Brier = intercept + slope · accuracy
    easy_poly: np.ndarray             # coefficients, highest power first
    hard_poly: np.ndarray
    notes: list = field(default_factory=list)

    def errors(self) -> dict:
        a = self.accuracy[self.test]
        e_s, e_b = self.sas_pred[self.test] - a, self.baseline_pred[self.test] - a
        return {"n_fit": int(self.fit.sum()), "n_test": int(self.test.sum()),
                "sas_mae": float(np.mean(np.abs(e_s))), "sas_mse": float(np.mean(e_s ** 2)),
                "baseline_mae": float(np.mean(np.abs(e_b))), "baseline_mse": float(np.mean(e_b ** 2))}


def _polyfit(x, y, deg, notes, name):
    if len(x) < deg + 1:
        notes.append(f"{name}: {len(x)} fitting models, polynomial degree lowered from {deg} to {len(x) - 1}")
        deg = len(x) - 1
    return np.polyfit(x, y, deg)


def _logit(p, eps=1e-6):
    p = np.clip(p, 0.0, 1.0)
    return np.log((p + eps) / (1 - p + eps))


def sigmoid_baseline(x, acc, fit, chance):
    """The authors' baseline: OLS of logit(acc − chance) on x over `fit`, then sigmoid(a·x + b) + chance."""
    a, b = np.polyfit(x[fit], _logit(acc[fit] - chance), 1)
    return 1.0 / (1.0 + np.exp(-(a * x + b))) + chance


def forecast(log_flops, accuracy, brier, brier_easy, brier_hard, threshold, chance,
             deg_easy=5, deg_hard=2) -> Forecast:
    """All arguments per model (1-D, same length): log10 FLOPs, accuracy, overall mean Brier, the easy
    and the hard group's mean Brier. Models with log_flops < threshold fit; the rest are forecast."""
    x, acc, b, be, bh = (np.asarray(v, dtype=float) for v in (log_flops, accuracy, brier, brier_easy, brier_hard))
    if not (x.ndim == 1 and x.shape == acc.shape == b.shape == be.shape == bh.shape):
        raise ValueError("log FLOPs, accuracy and the three Brier scores must be 1-D and of the same length")
    fit, test = x < threshold, x >= threshold
    if fit.sum() < 3 or test.sum() < 1:
        raise ValueError(f"need at least 3 models below and 1 at or above the threshold {threshold:g} "
                         f"(have {int(fit.sum())} and {int(test.sum())})")
    notes: list[str] = []
    slope, intercept = np.polyfit(acc[fit], b[fit], 1)
    if slope == 0:
        raise ValueError("the Brier score does not vary with accuracy among the fitting models")
    pe = _polyfit(x[fit], be[fit], deg_easy, notes, "easy group")
    ph = _polyfit(x[fit], bh[fit], deg_hard, notes, "hard group")
    brier_pred = (np.polyval(pe, x) + np.polyval(ph, x)) / 2
    pred = (brier_pred - intercept) / slope
    pred = pred + acc[fit].mean() - pred[fit].mean()
    base = sigmoid_baseline(x, acc, fit, chance)
    return Forecast(threshold=float(threshold), fit=fit, test=test, log_flops=x, accuracy=acc,
                    brier_pred=brier_pred, sas_pred=pred, baseline_pred=base,
                    acc_brier=(float(intercept), float(slope)), easy_poly=pe, hard_poly=ph, notes=notes)


# ----------------------------------------------------------------------------- the authors' released data

def expemergence_file(task: str, data_dir=EXPEMERGENCE_DIR, threshold=None) -> Path:
    """The authors' 3-group file whose difficulty groups were defined below `threshold` (log10 of
    FLOPs/1e21; default the task's own): they released one file per threshold they tried."""
    if task not in TASKS:
        raise ValueError(f"unknown ExpEmergence task {task!r}; choose from {', '.join(TASKS)}")
    t = 10 ** (TASKS[task][0] if threshold is None else threshold)
    matches = [p for p in Path(data_dir).glob(f"{task}_instance_brier_-1000_*_3_redist.csv")
               if abs(float(p.name.split("_-1000_")[1].split("_")[0]) - t) < 1e-6 * t]
    if not matches:
        raise FileNotFoundError(f"{data_dir}: no 3-group file for {task} at threshold {t:g} (1e21 FLOPs)")
    return matches[0]


def load_expemergence(task: str, data_dir=EXPEMERGENCE_DIR, exclude=EXCLUDED_MODELS, threshold=None):
    """Per model of the authors' released table: name, log10 FLOPs (FLOPs in 1e21, as they use it),
    acc, overall Brier, easy-group and hard-group Brier; rows missing any of them are dropped, as are
    `exclude`d models. Sorted by FLOPs."""
    import pandas as pd
    path = expemergence_file(task, data_dir, threshold)
    df = pd.read_csv(path)
    groups = sorted((c for c in df.columns if c.endswith("_brier") and c.split("_")[0].isdigit()),
                    key=lambda c: int(c.split("_")[0]))
    if len(groups) != 3:
        raise ValueError(f"{path}: expected 3 difficulty-group columns, found {groups}")
    df = df[~df["Model"].isin(exclude)]
    df = df.rename(columns={"FLOPs (1E21)": "flops", groups[0]: "brier_easy", groups[-1]: "brier_hard"})
    df = df.dropna(subset=["acc", "brier", "brier_easy", "brier_hard", "flops"])
    df = df.sort_values("flops", kind="stable").reset_index(drop=True)
    df["log10_flops"] = np.log10(df["flops"].astype(float))
    return df[["Model", "log10_flops", "acc", "brier", "brier_easy", "brier_hard"]].rename(columns={"Model": "model"})


def forecast_expemergence(task: str, data_dir=EXPEMERGENCE_DIR, threshold=None, **kw):
    t, chance = TASKS[task]
    t = t if threshold is None else threshold
    df = load_expemergence(task, data_dir, threshold=t)
    f = forecast(df["log10_flops"], df["acc"], df["brier"], df["brier_easy"], df["brier_hard"], t, chance, **kw)
    return df, f


# ----------------------------------------------------------------------------- our own item records

def difficulty_groups(brier, define, n_groups=3):
    """Question indices per group, easiest first: questions sorted by their mean Brier over the models in
    `define` (mask), cut at floor(linspace(0, n_questions, n_groups + 1)) as the authors cut them."""
    brier = np.asarray(brier, dtype=float)
    order = np.argsort(brier[define].mean(axis=0), kind="stable")
    cuts = np.floor(np.linspace(0, brier.shape[1], n_groups + 1)).astype(int)
    return [order[cuts[i]:cuts[i + 1]] for i in range(n_groups)]


def group_scores(brier, log_flops, threshold, n_groups=3):
    """Overall, easy-group and hard-group mean Brier per model; difficulty is defined by the models
    with log FLOPs ≤ threshold (the authors' grouping scripts keep the model at the threshold)."""
    brier = np.asarray(brier, dtype=float)
    if brier.shape[1] < n_groups:
        raise ValueError(f"need at least {n_groups} questions")
    g = difficulty_groups(brier, np.asarray(log_flops) <= threshold, n_groups)
    return brier.mean(axis=1), brier[:, g[0]].mean(axis=1), brier[:, g[-1]].mean(axis=1)


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
