"""Tasks turn data items into backend requests; they know nothing of models or scores.

    neqa   NeQA items, prompts.NEQA_PROMPTS + cloze  (default data_pipeline/neqa.jsonl)
    task1  the same questions without the negation   (default data_pipeline/neqa_task1.jsonl)
    task2  negation understanding, prompts weak/strong (default data_pipeline/neqa_task2.jsonl)
    prize  an inverse-scaling-prize table (CSV or JSONL with prompt, classes, answer_index); its one
           prompt method is called "table"; multi-token classes are scored as summed log-probs.

A task gives, per item: the request (ScoreRequest, or GenerateRequest for chain of thought), the
options, the answer index and a short `question` text for the records; per method: the shared prefix.
"""
from __future__ import annotations

import ast
import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from data_pipeline.io import DataError, FieldError, UsageError, read_jsonl, read_text
from data_pipeline.prompts import CLOZE, LETTERS, NEQA_PROMPTS, TASK2_PROMPTS, neqa_prompt, prefix, task2_prompt
from data_pipeline.schema import check_neqa
from eval_pipeline.backends.base import GenerateRequest, ScoreRequest

REPO = Path(__file__).resolve().parents[1]
LETTER_OPTIONS = [" " + letter for letter in LETTERS]   # the answer token the paper read: " A" vs " B"
COT_MAX_TOKENS = 200


def check_task2(r: dict) -> None:
    for key in ("sentence1", "sentence2"):
        if not isinstance(r.get(key), str):
            raise FieldError(key, "missing or not a string")
    check_neqa({**r, "question": ""})


def _parse_classes(value) -> list[str]:
    """A prize `classes` cell: a JSON list or a Python list literal (as the prize CSVs wrote it)."""
    if isinstance(value, list):
        classes = value
    elif isinstance(value, str):
        try:
            classes = json.loads(value)
        except json.JSONDecodeError:
            try:
                classes = ast.literal_eval(value)   # literals only: never evaluates code
            except (ValueError, SyntaxError):
                raise FieldError("classes", f"not a list of strings: {value[:60]!r}") from None
    else:
        classes = None
    if not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(c, str) for c in classes):
        raise FieldError("classes", "expected a list of at least two strings")
    return classes


def _prize_record(r: dict) -> dict:
    if not isinstance(r.get("prompt"), str):
        raise FieldError("prompt", "missing or not a string")
    classes = _parse_classes(r.get("classes"))
    try:
        answer = int(r.get("answer_index"))
    except (TypeError, ValueError):
        raise FieldError("answer_index", f"not an integer: {r.get('answer_index')!r}") from None
    if not 0 <= answer < len(classes):
        raise FieldError("answer_index", f"{answer} is out of range for {len(classes)} classes")
    return {"prompt": r["prompt"], "classes": classes, "answer": answer}


def load_prize(path) -> list[dict]:
    path = Path(path)
    if path.suffix.lower() == ".csv":
        items = []
        with io.StringIO(read_text(path), newline="") as f:   # read_text: DataError for a folder or other bytes
            reader = csv.DictReader(f)
            missing = {"prompt", "classes", "answer_index"} - set(reader.fieldnames or [])
            if missing:
                raise DataError(path, 1, sorted(missing)[0], "missing column")
            for r in reader:
                try:
                    items.append(_prize_record(r))
                except FieldError as e:
                    raise DataError(path, reader.line_num, e.field, e.message) from None
        return items
    return [_prize_record(r) for r in read_jsonl(path, _prize_record)]


def _common_prefix(texts: list[str]) -> str:
    """Longest common start of all texts, cut after its last newline (a natural token boundary)."""
    if not texts:
        return ""
    common = os.path.commonprefix(texts)
    return common[:common.rfind("\n") + 1]


@dataclass(frozen=True)
class Task:
    name: str
    default_data: str        # relative to the repository root
    prompts: tuple[str, ...]
    load: Callable[[Path], list[dict]]

    def render(self, item: dict, method: str) -> str:
        if method == CLOZE:
            return item["question"]
        if self.name in ("neqa", "task1"):
            return neqa_prompt(item, method)
        if self.name == "task2":
            return task2_prompt(item, method)
        return item["prompt"]

    def options(self, item: dict, method: str = "") -> list[str]:
        if method == CLOZE:
            return [" " + c for c in item["choices"]]
        return item["classes"] if self.name == "prize" else LETTER_OPTIONS[:len(item["choices"])]

    def question(self, item: dict) -> str:
        if self.name == "task2":
            return item["sentence2"]
        return item["prompt"] if self.name == "prize" else item["question"]

    def generative(self, method: str) -> bool:
        return method == "fewshot_cot"

    def request(self, item: dict, method: str):
        text = self.render(item, method)
        if self.generative(method):
            return GenerateRequest(context=text, max_tokens=COT_MAX_TOKENS, stop="\n\n")
        return ScoreRequest(context=text, options=self.options(item, method))

    def shared_prefix(self, method: str, items: list[dict]) -> str:
        if self.name in ("neqa", "task1") and method != CLOZE:
            return prefix(method)
        return _common_prefix([self.render(it, method) for it in items])

    def check_prompt(self, method: str) -> None:
        if method not in self.prompts:
            raise UsageError(f"task {self.name!r} has no prompt {method!r}; choose from {', '.join(self.prompts)}")


def _load_neqa(path):
    return read_jsonl(path, check_neqa)


def _load_task2(path):
    return read_jsonl(path, check_task2)


TASKS = {
    "neqa": Task("neqa", "data_pipeline/neqa.jsonl", NEQA_PROMPTS + (CLOZE,), _load_neqa),
    "task1": Task("task1", "data_pipeline/neqa_task1.jsonl", NEQA_PROMPTS + (CLOZE,), _load_neqa),
    "task2": Task("task2", "data_pipeline/neqa_task2.jsonl", TASK2_PROMPTS, _load_task2),
    "prize": Task("prize", "data_pipeline/exports/neqa_zeroshot.csv", ("table",), load_prize),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise UsageError(f"unknown task {name!r}; choose from {', '.join(TASKS)}")
    return TASKS[name]


def data_path(task: Task, data: str | None = None) -> Path:
    """The data file: --data as given (relative to the working directory), else the task's default in the repo."""
    return Path(data) if data else REPO / task.default_data
