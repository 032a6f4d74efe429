"""Load a results folder (RESULTS_DIR/<family>/<member>/<task>__<prompt>/{summary.json, items.jsonl})
into pandas DataFrames: one row per summary, or one row per item record."""
from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from data_pipeline.io import DataError, read_json, read_jsonl

SKIP_DIRS = {"analysis"}
REQUIRED = {"accuracy": (int, float), "n_items": (int,)}
STEP_RE = re.compile(r"^(?:step)[-_]?(\d+)$")


def parse_step(revision) -> int | None:
    """'step143000', 'step-500', 'runs/x/checkpoints/step-5' -> the number; anything else -> None."""
    if revision is None:
        return None
    m = STEP_RE.match(Path(str(revision).strip().rstrip("/")).name)   # also .../checkpoints/step-6
    return int(m.group(1)) if m else None


def split_member(member: str) -> tuple[str, int | None]:
    """'tiny-2@step-500' -> ('tiny-2', 500); 'tiny-2' -> ('tiny-2', None)."""
    if "@" in member:
        base, rev = member.split("@", 1)
        step = parse_step(rev)
        if step is not None:
            return base, step
    return member, None


def summary_paths(results_dir) -> list[Path]:
    root = Path(results_dir)
    if not root.is_dir():
        raise DataError(root, None, None, "results folder not found")
    return sorted(p for p in root.glob("*/*/*/summary.json") if p.parts[-4] not in SKIP_DIRS)


def _read_summary(path: Path) -> dict:
    s = read_json(path)
    for field, types in REQUIRED.items():
        v = s.get(field)
        if not isinstance(v, types) or isinstance(v, bool) or (isinstance(v, float) and not math.isfinite(v)):
            raise DataError(path, None, field, "missing or not a number")
    if not 0 <= s["accuracy"] <= 1:
        raise DataError(path, None, "accuracy", f"{s['accuracy']} is not a fraction in [0, 1]")
    if s["n_items"] < 1:
        raise DataError(path, None, "n_items", "must be positive")
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
    """One row per summary.json; adds base_member, step (checkpoint, or NaN) and run_dir.
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
    from data_pipeline.io import FieldError
    if "correct" not in r:
        raise FieldError("correct", "missing")


def _unique_index(check):
    """A record validator that also refuses an index seen before in the file (two writers mixed)."""
    seen = set()

    def validate(r: dict) -> None:
        check(r)
        if "index" in r:
            if r["index"] in seen:
                from data_pipeline.io import FieldError
                raise FieldError("index", f"duplicate index {r['index']!r} (two runs mixed in one folder)")
            seen.add(r["index"])
    return validate


def load_items(results_dir, summaries: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per item record, with family, member, base_member, step, task, prompt columns added."""
    if summaries is None:
        summaries = load_summaries(results_dir)
    frames = []
    for s in summaries.to_dict("records"):
        path = Path(s["run_dir"]) / "items.jsonl"
        recs = read_jsonl(path, _unique_index(_check_item))
        f = pd.DataFrame(recs)
        if "index" not in f:
            f["index"] = range(len(f))
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


def scale_column(df: pd.DataFrame) -> tuple[str, str]:
    """The x to plot a family against: n_params if known for every row (log), else the member's place."""
    if df["n_params"].notna().all() and (df["n_params"] > 0).all():
        return "n_params", "log"
    return "rank", "linear"
