"""Tasks turn data items into backend requests; they know nothing of models or scores.

    neqa   NeQA items, prompts.NEQA_PROMPTS + cloze  (default data_pipeline/neqa.jsonl)
    task1  the same questions without the negation   (default data_pipeline/neqa_task1.jsonl)
    task2  negation understanding, prompts weak/strong (default data_pipeline/neqa_task2.jsonl)
    prize  an inverse-scaling-prize table (CSV or JSONL with prompt, classes, answer_index); its one
           prompt method is called "table"; multi-token classes are scored as summed log-probs.

A task (a `Task` value, no per-name code elsewhere) gives, per item: the request (ScoreRequest, or
GenerateRequest for chain of thought), the options, and a short `question` text for the records; per
method: the shared prefix. The answer is item["answer"].
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

from data_pipeline.prompts import CLOZE, LETTERS, NEQA_PROMPTS, TASK2_PROMPTS, neqa_prompt, prefix, task2_prompt
from data_pipeline.schema import check_neqa, check_task2
from eval_pipeline.backends.base import GenerateRequest, ScoreRequest
from eval_pipeline.metrics import surface_forms
from neqa.io import DataError, FieldError, UsageError, read_jsonl, read_text
from neqa.paths import REPO_ROOT

LETTER_OPTIONS = [" " + letter for letter in LETTERS]   # the answer token the paper read: " A" vs " B"
COT_MAX_TOKENS = 200
GENERATIVE = ("fewshot_cot",)   # prompt methods answered by generation, not by scoring options


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


def _render_neqa(item: dict, method: str) -> str:
    return item["question"] if method == CLOZE else neqa_prompt(item, method)


def _letters(item: dict, method: str) -> list[str]:
    return [" " + c for c in item["choices"]] if method == CLOZE else LETTER_OPTIONS[:len(item["choices"])]


def _neqa_prefix(method: str, items: list[dict]) -> str:
    return _common_prefix([it["question"] for it in items]) if method == CLOZE else prefix(method)


@dataclass(frozen=True)
class Task:
    """A task is data: how an item becomes a prompt, its options and its record text, under each method.
    The answer is always item["answer"]; `aliases` maps a generic method name onto this task's own."""
    name: str
    default_data: str                                  # relative to the repository root
    prompts: tuple[str, ...]
    load: Callable[[Path], list[dict]]
    render: Callable[[dict, str], str]                 # (item, method) -> the context
    options: Callable[[dict, str], list[str]]          # (item, method) -> continuations to score
    question: Callable[[dict], str]                    # item -> the short text kept in the records
    shared_prefix: Callable[[str, list[dict]], str] | None = None   # (method, items) -> text all contexts start with
    aliases: tuple[tuple[str, str], ...] = ()
    run_per_file: bool = False   # each data file scored gets its own run folder, named after the file
    lettered: bool = False       # the prompt lists item["choices"] under letters, read as " A"/" B" (not cloze)

    def generative(self, method: str) -> bool:
        return method in GENERATIVE

    def order_matters(self, method: str) -> bool:
        """Whether the options' order is part of the prompt (letter-labelled choices, read as " A"/" B"),
        so that an order-balanced reading (the item scored with its options reversed too) means something."""
        return self.lettered and method != CLOZE and not self.generative(method)

    @staticmethod
    def reversed_options(item: dict) -> dict:
        """The item with its choices in reverse order and the answer moved with them."""
        return {**item, "choices": item["choices"][::-1], "answer": len(item["choices"]) - 1 - item["answer"]}

    def request(self, item: dict, method: str):
        text = self.render(item, method)
        if self.generative(method):
            return GenerateRequest(context=text, max_tokens=COT_MAX_TOKENS, stop="\n\n")
        options = self.options(item, method)
        return ScoreRequest(context=text, options=options, next_tokens=surface_forms(options))

    def prefix(self, method: str, items: list[dict]) -> str:
        if self.shared_prefix is not None:
            return self.shared_prefix(method, items)
        return _common_prefix([self.render(it, method) for it in items])

    def method(self, method: str) -> str:
        """The method as this task names it (e.g. the prize table's one method answers to "zeroshot")."""
        return dict(self.aliases).get(method, method)

    def check_prompt(self, method: str) -> None:
        if method not in self.prompts:
            raise UsageError(f"task {self.name!r} has no prompt {method!r}; choose from {', '.join(self.prompts)}")


def _load_neqa(path):
    return read_jsonl(path, check_neqa)


def _load_task2(path):
    return read_jsonl(path, check_task2)


TASKS = {
    "neqa": Task("neqa", "data_pipeline/neqa.jsonl", NEQA_PROMPTS + (CLOZE,), _load_neqa, _render_neqa, _letters,
                 lambda it: it["question"], _neqa_prefix, lettered=True),
    "task1": Task("task1", "data_pipeline/neqa_task1.jsonl", NEQA_PROMPTS + (CLOZE,), _load_neqa, _render_neqa,
                  _letters, lambda it: it["question"], _neqa_prefix, lettered=True),
    "task2": Task("task2", "data_pipeline/neqa_task2.jsonl", TASK2_PROMPTS, _load_task2, task2_prompt, _letters,
                  lambda it: it["sentence2"], lettered=True),
    "prize": Task("prize", "data_pipeline/exports/neqa_zeroshot.csv", ("table",), load_prize,
                  lambda it, m: it["prompt"], lambda it, m: it["classes"], lambda it: it["prompt"],
                  aliases=(("zeroshot", "table"),), run_per_file=True),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise UsageError(f"unknown task {name!r}; choose from {', '.join(TASKS)}")
    return TASKS[name]


def data_path(task: Task, data: str | None = None) -> Path:
    """The data file: --data as given (relative to the working directory), else the task's default in the repo."""
    return Path(data) if data else REPO_ROOT / task.default_data
