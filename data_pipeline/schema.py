"""Record validators for the two formats the pipelines read.

NeQA format (the published release):     {"question", "choices": [str, str], "answer": 0|1, "metadata"?}
Task-2 format (variants):                 {"sentence1", "sentence2", "choices", "answer", "metadata"?}
OpenBookQA format (sources, negate):     {"id", "question": {"stem", "choices": [{"text", "label"}]}, "answerKey"}
"""
from __future__ import annotations

from neqa.io import FieldError, read_jsonl


def check_neqa(r: dict, n_choices: int = 2) -> None:
    if not isinstance(r.get("question"), str):
        raise FieldError("question", "missing or not a string")
    choices = r.get("choices")
    if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
        raise FieldError("choices", "missing or not a list of strings")
    if len(choices) != n_choices:
        raise FieldError("choices", f"expected {n_choices} choices, got {len(choices)}")
    answer = r.get("answer")
    if not isinstance(answer, int) or isinstance(answer, bool):
        raise FieldError("answer", "missing or not an integer")
    if not 0 <= answer < len(choices):
        raise FieldError("answer", f"{answer} is out of range for {len(choices)} choices")


def check_task2(r: dict) -> None:
    for key in ("sentence1", "sentence2"):
        if not isinstance(r.get(key), str):
            raise FieldError(key, "missing or not a string")
    check_neqa({**r, "question": ""})  # choices and answer as in NeQA; no question of its own


def check_obqa(r: dict) -> None:
    if "id" not in r:
        raise FieldError("id", "missing")
    q = r.get("question")
    if not isinstance(q, dict):
        raise FieldError("question", "missing or not an object")
    if not isinstance(q.get("stem"), str):
        raise FieldError("question.stem", "missing or not a string")
    choices = q.get("choices")
    if not isinstance(choices, list) or len(choices) < 2:
        raise FieldError("question.choices", "missing or fewer than two choices")
    labels = []
    for i, c in enumerate(choices):
        if not isinstance(c, dict) or not isinstance(c.get("text"), str) or "label" not in c:
            raise FieldError(f"question.choices[{i}]", "expected an object with 'text' and 'label'")
        labels.append(c["label"])
    if r.get("answerKey") not in labels:
        raise FieldError("answerKey", f"{r.get('answerKey')!r} is not one of the choice labels {labels}")


def load_neqa(path) -> list[dict]:
    return read_jsonl(path, check_neqa)


def load_obqa(path) -> list[dict]:
    return read_jsonl(path, check_obqa)
