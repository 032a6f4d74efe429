"""Scores from a backend's answers: pure functions of numbers, easy to test.

- accuracy: the option with the highest log-probability is the prediction (ties go to the first option);
- strict: the most likely next token itself must be the right option (" A" when the answer is A);
- surface competition: compare log(p(" A") + p(" A.")) with log(p(" B") + p(" B.")), each read as a single
  next token (`surface_forms` are the texts a task asks the backend for; where " A." is not one token,
  the option's own log-prob stands);
- p_right: the right option's probability renormalised over the options; Brier = (1 - p_right)^2;
- chain of thought: the first paragraph must say "So the answer is A." or "... B."; anything else is wrong;
- order-balanced reading: each item also scored with its options in reverse order; the option
  probabilities (renormalised) of both orders are averaged per option, and the option with the higher
  average is the prediction (an exact tie counts half); beside it, whether both orders chose the same option.
- top-K API readings: an item whose options all fell outside the top-K is undetermined (its options tie at
  the floor); more than MAX_UNDETERMINED_SHARE of such items and a run is refused, not reported.
"""
from __future__ import annotations

import math
import re

import numpy as np

from data_pipeline.prompts import LETTERS
from neqa.maths import logaddexp

COT_ANSWER = re.compile(r"So the answer is ([A-Z])\.")
# Above this share of undetermined items an accuracy says more about the top-K than about the model
# (with every item undetermined it is the share of answers "A", e.g. exactly 0.500 on NeQA).
MAX_UNDETERMINED_SHARE = 0.05


def argmax(values: list[float]) -> int:
    return max(range(len(values)), key=lambda i: (values[i], -i))


def renormalised(logprobs: list[float]) -> list[float]:
    """Probabilities of the options renormalised to sum to one (computed stably)."""
    top = max(logprobs)
    weights = [math.exp(lp - top) for lp in logprobs]
    total = sum(weights)
    return [w / total for w in weights]


def surface_forms(options: list[str]) -> list[str | None]:
    """The surface-form variant of each option ("A" -> "A."); None for an option of only spaces."""
    return [o.rstrip() + "." if o.strip() else None for o in options]


def surface_logprobs(logprobs: list[float], next_token_logprobs: list[float | None] | None) -> list[float] | None:
    """Per option log(p(option) + p(option + ".")) from the backend's next-token log-probs of surface_forms;
    None where the backend read none (options of several tokens)."""
    if next_token_logprobs is None:
        return None
    return [base if extra is None else logaddexp(base, extra) for base, extra in zip(logprobs, next_token_logprobs)]


def score_choice(logprobs: list[float], answer: int, options: list[str], top_token: str | None = None,
                 surface_logprobs: list[float] | None = None, missing_options: int | None = None) -> dict:
    """Per-item fields of items.jsonl for a scored (not generated) item. missing_options (top-K readings):
    how many options were outside the list; stored only when given."""
    prediction = argmax(logprobs)
    p_right = renormalised(logprobs)[answer]
    extra = {} if missing_options is None else {"missing_options": int(missing_options)}
    return {
        "choice_logprobs": list(logprobs),
        "prediction": prediction,
        "answer": answer,
        "correct": prediction == answer,
        "p_right": p_right,
        "brier": (1.0 - p_right) ** 2,
        "strict_correct": None if top_token is None else top_token == options[answer],
        "surface_correct": None if surface_logprobs is None else argmax(surface_logprobs) == answer,
        **extra,
    }


def score_order_balanced(logprobs: list[float], reversed_logprobs: list[float], answer: int) -> dict:
    """Per-item fields of the order-balanced reading. logprobs: per option in the item's order;
    reversed_logprobs: per option of the same item with its options reversed (so reversed_logprobs[-1]
    belongs to option 0)."""
    p = renormalised(logprobs)
    q = renormalised(reversed_logprobs)[::-1]
    avg = [(a + b) / 2 for a, b in zip(p, q)]
    best = max(avg)
    winners = [i for i, v in enumerate(avg) if v == best]
    return {"reversed_logprobs": list(reversed_logprobs), "balanced_p_right": avg[answer],
            "balanced_correct": (answer in winners) / len(winners),
            "order_consistent": argmax(p) == argmax(q)}


def undetermined(record: dict) -> bool:
    """All of a top-K-read item's options were outside the list: they tie, the prediction is arbitrary."""
    n = record.get("missing_options")
    return bool(n) and n >= max(2, len(record.get("choice_logprobs") or ()))


def missing_counts(records: list[dict]) -> dict:
    """Items with an option outside the top-K, and undetermined items; {} when nothing was read by top-K."""
    if not any("missing_options" in r for r in records):
        return {}
    return {"n_items_missing_options": sum(1 for r in records if r.get("missing_options")),
            "n_items_undetermined": sum(1 for r in records if undetermined(r))}


def parse_cot(text: str) -> int | None:
    """The option index stated in the first paragraph ("So the answer is A."), or None."""
    first = text.strip("\n").split("\n\n", 1)[0]
    match = COT_ANSWER.search(first)
    if match is None or match.group(1) not in LETTERS:
        return None
    return LETTERS.index(match.group(1))


def score_generation(text: str, answer: int) -> dict:
    """Per-item fields for chain of thought: a hard prediction, so no probabilities (p_right, brier are None)."""
    prediction = parse_cot(text)
    correct = prediction == answer
    return {"choice_logprobs": None, "prediction": prediction, "answer": answer, "correct": correct,
            "p_right": None, "brier": None, "strict_correct": correct, "surface_correct": correct,
            "generation": text}


def bootstrap_ci(correct: list[bool], n_boot: int = 10000, seed: int = 0, level: float = 0.95) -> list[float]:
    """Percentile bootstrap interval of the mean of 0/1 outcomes (seeded, so reruns agree)."""
    x = np.asarray(correct, dtype=float)
    if x.size == 0:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    alpha = (1 - level) / 2
    return [float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))]


def _mean(values) -> float | None:
    values = [float(v) for v in values if v is not None]
    return sum(values) / len(values) if values else None


def summarize(records: list[dict], seed: int = 0) -> dict:
    """accuracy, its 95% bootstrap interval, strict and surface accuracy, mean Brier over item records."""
    correct = [bool(r["correct"]) for r in records]
    return {
        "n_items": len(records),
        "accuracy": _mean(correct),
        "accuracy_ci": bootstrap_ci(correct, seed=seed),
        "strict_accuracy": _mean(r.get("strict_correct") for r in records),
        "surface_accuracy": _mean(r.get("surface_correct") for r in records),
        "mean_brier": _mean(r.get("brier") for r in records),
        **_balanced_summary(records, seed),
        **missing_counts(records),
    }


def _balanced_summary(records: list[dict], seed: int) -> dict:
    """The order-balanced reading, where every record has it (see score_order_balanced)."""
    if not records or any(r.get("balanced_correct") is None for r in records):
        return {}
    balanced = [float(r["balanced_correct"]) for r in records]
    return {"balanced_accuracy": _mean(balanced), "balanced_accuracy_ci": bootstrap_ci(balanced, seed=seed),
            "order_consistency": _mean(r["order_consistent"] for r in records)}
