"""The one layout of a training run on disk; the trainer writes it, the evaluator and analyses read it.

    RUN/final/                 the trained model (Hugging Face folder, with its tokenizer)
    RUN/checkpoints/step-N/    intermediate checkpoints, same format
    RUN/train_log.jsonl        one row per logged step: step, tokens, loss, val_loss, flops, lr, ...
    RUN/state.pt               optimizer state for resuming (removed once final/ is complete)

A model folder RUN/final evaluated "at revision step-N" is RUN/checkpoints/step-N.
"""
from __future__ import annotations

import re
from pathlib import Path

FINAL, CHECKPOINTS, TRAIN_LOG, STATE = "final", "checkpoints", "train_log.jsonl", "state.pt"
STEP_RE = re.compile(r"^(?:step)[-_]?(\d+)$")


def parse_step(revision) -> int | None:
    """'step143000', 'step-500', 'runs/x/checkpoints/step-5' -> the number; anything else -> None."""
    if revision is None:
        return None
    m = STEP_RE.match(Path(str(revision).strip().rstrip("/")).name)
    return int(m.group(1)) if m else None


def step_name(step: int) -> str:
    return f"step-{step}"


def checkpoint_dir(run, step: int) -> Path:
    return Path(run) / CHECKPOINTS / step_name(step)


def run_of(model_folder) -> Path:
    """The run folder of a model folder RUN/final (or of RUN itself)."""
    p = Path(model_folder)
    return p.parent if p.name == FINAL else p


def checkpoint_of(model_folder, revision: str) -> Path:
    """The folder of checkpoint `revision` (e.g. "step-64") of the run that model_folder belongs to."""
    return run_of(model_folder) / CHECKPOINTS / revision


def saved_steps(run) -> list[tuple[int, Path]]:
    """(step, folder) of every saved checkpoint of a run, in step order."""
    ck = Path(run) / CHECKPOINTS
    found = [(parse_step(p.name), p) for p in ck.iterdir() if p.is_dir()] if ck.is_dir() else []
    return sorted((s, p) for s, p in found if s is not None)


def train_log(run) -> Path:
    return Path(run) / TRAIN_LOG
