"""The tuned stage of the TinyWorld family: a short fine-tune of each pretrained member on letter-format
quizzes over TRAINED facts, the analogue of the paper's GPT-3 -> text-series step (instruction tuning
that teaches the answer format). The tuned models are scored on the HELD-OUT test sets, whose facts
never appear here.

What the tuning data holds, and what it leaves out (so the NeQA reading stays clean):
  * plain (un-negated) two-choice questions over trained facts, every (fact, wrong value, order),
    rendered exactly as the evaluator renders the zero-shot prompt, with or without the hint header
    (half each), followed by the answer letter;
  * no negated question, no sentence comparison (task 2), no few-shot shots (the paper's shots are
    negated questions): whatever the tuned models do with negation they bring from pretraining.
The loss is on the answer letter only. Each quiz is a row of its own from position 0, as the evaluator
scores it.

`binding_items` are the "answer in the question" exercises of simulation.letter_format: the same quizzes
with the right option as the question, so that finding it among the options is all there is to do.
"""
from __future__ import annotations

import torch

from data_pipeline.prompts import LETTERS, neqa_prompt
from simulation import world as W

TUNE_PROMPTS = ("zeroshot", "zeroshot_hint")


def tuning_items(facts: list[W.Fact], cfg: W.WorldConfig) -> list[dict]:
    """Every plain question over a trained fact: one per (fact, wrong value, answer position)."""
    items = []
    for f in facts:
        if f.heldout:
            continue
        for w in f.wrong_values(cfg.values_per_relation):
            for right_first in (True, False):
                choices = [f.value, w] if right_first else [w, f.value]
                items.append({"question": W.stem(f), "choices": choices, "answer": choices.index(f.value),
                              "fact": f.id})
    return items


def binding_items(items: list[dict]) -> list[dict]:
    """Each item with its right option as the whole question ("Question: marsh / A. desert / B. marsh"): the
    letter format with nothing to know, only the option to find."""
    return [{**it, "question": it["choices"][it["answer"]]} for it in items]


def tuning_texts(items: list[dict]) -> list[tuple[str, str]]:
    """(prompt, answer) pairs: each item under every prompt of TUNE_PROMPTS."""
    return [(neqa_prompt(it, m), " " + LETTERS[it["answer"]]) for it in items for m in TUNE_PROMPTS]


def encode_examples(pairs: list[tuple[str, str]], tokenizer) -> list[tuple[list[int], int]]:
    """(prompt ids, answer id): prompt and answer tokenised apart, as the evaluator does."""
    enc = tokenizer.backend_tokenizer
    out = []
    for prompt, answer in pairs:
        a = enc.encode(answer, add_special_tokens=False).ids
        if len(a) != 1:
            raise ValueError(f"answer {answer!r} is not one token")
        out.append((enc.encode(prompt, add_special_tokens=False).ids, a[0]))
    return out


def row_batches(examples: list[tuple[list[int], int]], batch_size: int, pad_id: int):
    """get_batch(step, generator) -> (x, y) for simulation.loop.train: each row one random example starting at
    position 0 with nothing before it, as the evaluator feeds a prompt (GPT-2's rule: no BOS, no end-of-text),
    right-padded to the longest row of the batch; y = -100 everywhere but at the last prompt token, which
    predicts the answer. (Packing several examples per row, each after an end-of-text, taught a rule that held
    only after an end-of-text: simulation/TINYWORLD.md, "The tuned stage's rows".)"""
    def get_batch(step: int, generator: torch.Generator):
        picks = [examples[i] for i in torch.randint(0, len(examples), (batch_size,), generator=generator).tolist()]
        width = max(len(prompt) for prompt, _ in picks) + 1
        x = torch.full((batch_size, width), pad_id, dtype=torch.long)
        y = torch.full((batch_size, width), -100, dtype=torch.long)
        for r, (prompt, answer) in enumerate(picks):
            x[r, :len(prompt) + 1] = torch.tensor(prompt + [answer])
            y[r, len(prompt) - 1] = answer
        return x, y
    return get_batch
