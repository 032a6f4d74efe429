"""The one reader of a results folder (RESULTS_DIR/<family>/<member>/<task>__<prompt>/{summary.json,
items.jsonl}): pandas DataFrames with one row per summary, or one row per item record.

    from neqa import load_summaries, load_items
    df = load_summaries("results/eval")          # accuracy, accuracy_ci, n_params, task, prompt, ...
    items = load_items("results/eval")           # per item: correct, choice_logprobs, p_right, ...
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from neqa.checkpoints import parse_step
from neqa.io import DataError, FieldError, read_json, read_jsonl

SKIP_DIRS = {"analysis"}
REQUIRED = {"accuracy": (int, float), "n_items": (int,)}


def split_member(member: str) -> tuple[str, int | None]:
    """'tiny-2@step-500' -> ('tiny-2', 500); 'tiny-2' -> ('tiny-2', None)."""
    if "@" in member:
        base, rev = member.split("@", 1)
        step = parse_step(rev)
        if step is not None:
            return base, step
    return member, None


def summary_paths(results_dir) -> list[Path]:
    """Every summary.json below results_dir (usually <family>/<member>/<task>__<prompt>/), outside analysis/."""
    root = Path(results_dir)
    if not root.is_dir():
        raise DataError(root, None, None, "results folder not found")
    return sorted(p for p in root.rglob("summary.json") if not SKIP_DIRS & set(p.relative_to(root).parts))


def _fraction(value, path, field) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise DataError(path, None, field, f"expected a fraction between 0 and 1, got {value!r}")
    return float(value)


def _read_summary(path: Path) -> dict:
    s = read_json(path)
    for field, types in REQUIRED.items():
        v = s.get(field)
        if not isinstance(v, types) or isinstance(v, bool) or (isinstance(v, float) and not math.isfinite(v)):
            raise DataError(path, None, field, "missing or not a number")
        if field == "accuracy" and not 0 <= v <= 1:
            raise DataError(path, None, "accuracy", f"{v} is not a fraction in [0, 1]")
        if field == "n_items" and v < 1:
            raise DataError(path, None, "n_items", "must be positive")
    ci = s.get("accuracy_ci")
    if ci is None:
        s["ci_lo"] = s["ci_hi"] = math.nan
    elif isinstance(ci, list) and len(ci) == 2:
        s["ci_lo"], s["ci_hi"] = (_fraction(v, path, "accuracy_ci") for v in ci)
        if not s["ci_lo"] - 1e-6 <= s["accuracy"] <= s["ci_hi"] + 1e-6:
            raise DataError(path, None, "accuracy_ci", f"{ci} does not contain the accuracy {s['accuracy']}")
    else:
        raise DataError(path, None, "accuracy_ci", "expected [lo, hi]")
    family, member, run = path.parts[-4], path.parts[-3], path.parts[-2]
    task, _, prompt = run.partition("__")
    s.setdefault("family", family)
    s.setdefault("member", member)
    s.setdefault("task", task)
    s.setdefault("prompt", prompt or None)
    base, step = split_member(str(s["member"]))
    rev_step = parse_step(s.get("revision"))
    s["base_member"] = base
    s["step"] = rev_step if rev_step is not None else step
    s["run_dir"] = str(path.parent)
    return s


def load_summaries(results_dir) -> pd.DataFrame:
    """One row per summary.json; adds base_member, step (checkpoint, or NaN), ci_lo, ci_hi and run_dir.
    Raises DataError on an empty folder or a malformed summary."""
    paths = summary_paths(results_dir)
    if not paths:
        raise DataError(results_dir, None, None,
                        "no results found (expected <family>/<member>/<task>__<prompt>/summary.json)")
    df = pd.DataFrame([_read_summary(p) for p in paths])
    for col in ("n_params", "train_tokens", "flops", "val_loss", "perplexity"):
        if col not in df:
            df[col] = float("nan")
        df[col] = pd.to_numeric(df[col], errors="coerce")
    df["step"] = pd.to_numeric(df["step"], errors="coerce")
    return df


def _check_item(r: dict) -> None:
    if "correct" not in r:
        raise FieldError("correct", "missing")


def _unique_index(check):
    """A record validator that also refuses an index seen before in the file (two writers mixed)."""
    seen = set()

    def validate(r: dict) -> None:
        check(r)
        if "index" in r:
            if r["index"] in seen:
                from neqa.io import FieldError
                raise FieldError("index", f"duplicate index {r['index']!r} (two runs mixed in one folder)")
            seen.add(r["index"])
    return validate


def load_items(results_dir, summaries: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per item record, with family, member, base_member, step, task, prompt columns added, and
    full_prompt: the whole text scored, run.json's shared_prefix + the record's prompt (None for runs whose
    run.json predates shared_prefix)."""
    if summaries is None:
        summaries = load_summaries(results_dir)
    frames = []
    for s in summaries.to_dict("records"):
        path = Path(s["run_dir"]) / "items.jsonl"
        recs = read_jsonl(path, _unique_index(_check_item))
        f = pd.DataFrame(recs)
        if "index" not in f:
            f["index"] = range(len(f))
        run_json = Path(s["run_dir"]) / "run.json"
        shared = read_json(run_json).get("shared_prefix") if run_json.exists() else None
        if "prompt" in f:
            f["full_prompt"] = [shared + p if isinstance(p, str) and shared is not None else None
                                for p in f["prompt"]]
        for col in ("family", "member", "base_member", "step", "task", "prompt", "n_params", "flops"):
            f[col] = s.get(col)
        frames.append(f)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def final_checkpoints(summaries: pd.DataFrame) -> pd.DataFrame:
    """Per (family, base_member, task, prompt): the run without a checkpoint step if there is one,
    else the one with the largest step."""
    df = summaries.copy()
    df["_order"] = df["step"].fillna(float("inf"))
    df = df.sort_values("_order").groupby(["family", "base_member", "task", "prompt"], dropna=False).tail(1)
    return df.drop(columns="_order")
