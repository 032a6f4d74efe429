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
The loss is on the answer letter only. Quizzes are packed into rows of seq_len+1 tokens, each after an
<|endoftext|> as documents are in pretraining.
"""
from __future__ import annotations

import random

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


def packed_batches(examples: list[tuple[list[int], int]], batch_size: int, seq_len: int, eos_id: int):
    """get_batch(step, generator) -> (x, y) for simulation.loop.train: rows of random examples, each
    `<eos> prompt answer`, y = -100 everywhere but at the position that predicts the answer."""
    longest = max(len(p) for p, _ in examples) + 2
    if longest > seq_len + 1:
        raise ValueError(f"a tuning example has {longest} tokens, more than seq_len+1 = {seq_len + 1}")

    def get_batch(step: int, generator: torch.Generator):
        rng = random.Random(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
        xs, ys = [], []
        for _ in range(batch_size):
            row, target = [], []
            while True:
                prompt, answer = examples[rng.randrange(len(examples))]
                piece = [eos_id] + prompt + [answer]
                if len(row) + len(piece) > seq_len + 1:
                    break
                target += [-100] * (len(piece) - 2) + [answer, -100]   # predicted at the last prompt token
                row += piece
            pad = seq_len + 1 - len(row)
            row += [eos_id] * pad
            target += [-100] * pad
            xs.append(row[:-1])
            ys.append(target[:seq_len])
        return torch.tensor(xs, dtype=torch.long), torch.tensor(ys, dtype=torch.long)
    return get_batch
