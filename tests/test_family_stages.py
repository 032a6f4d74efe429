"""The family's extra stages: the ablation corpus, the tuned stage's data, the data-axis fit."""
from __future__ import annotations

import math
import re
from dataclasses import replace

import numpy as np
import pytest
import torch

from simulation import family as F
from simulation import tuning as T
from simulation import world as W

CFG = W.WorldConfig(seed=5, statement_repeats=4, question_repeats=3)
ABLATION = replace(CFG, **F.ABLATION_KNOBS)


def test_ablation_corpus_holds_statements_only():
    """Scanned with patterns written here, not with world.py's templates: no quiz, no question, no
    comparison, no chain of thought; plain and negated statements are there."""
    facts = W.make_world(ABLATION)
    text = W.corpus_text(W.corpus_documents(facts, ABLATION))
    for pattern in (r"Question", r"Answer", r"^[AB]\. ", r"\?", r"multiple choice", r"Sentence \d",
                    r"the same", r"\bdifferent\b", r"step-by-step", r"\"", r"\n"):
        assert not re.search(pattern, text, flags=re.M), pattern
    sentences = [s for doc in text.split(W.EOS) for s in re.split(r"(?<=\.) ", doc) if s]
    assert sentences and all(s.endswith(".") and s[0].isupper() for s in sentences)
    negated = [s for s in sentences if re.search(r"\bnot\b|n't\b", s)]
    assert 0 < len(negated) < len(sentences) / 2
    # same world, same held-out test sets as the base family: the two are scored on the same items
    assert W.test_sets(facts, ABLATION) == W.test_sets(W.make_world(CFG), CFG)
    # the base corpus of the same world does hold all three (the scan can fail)
    base = W.corpus_text(W.corpus_documents(W.make_world(CFG), CFG))
    assert "Question:" in base and "Sentence 1" in base and re.search(r"Question: [^\n]*(not|n't)", base)


def test_tuning_data_uses_trained_facts_only_and_no_negation():
    facts = W.make_world(CFG)
    items = T.tuning_items(facts, CFG)
    tests = W.test_sets(facts, CFG)
    held = {it["metadata"]["fact"] for name in ("neqa", "task1", "task2") for it in tests[name]}
    tuned = {it["fact"] for it in items}
    assert held and tuned and not held & tuned
    assert tuned == {f.id for f in facts if not f.heldout}
    texts = T.tuning_texts(items)
    asked = {q for prompt, _ in texts for q in re.findall(r"Question: (.*)\n", prompt)}
    for it in tests["task1"] + tests["neqa"]:
        assert it["question"] not in asked
    assert not any(re.search(r"\bnot\b|n't\b", q) for q in asked)
    assert not any("Sentence 1" in p for p, _ in texts)
    # the answer is the fact's value, letters balanced
    letters = [a for _, a in texts]
    assert letters.count(" A") == letters.count(" B")
    for it in items:
        fact = next(f for f in facts if f.id == it["fact"])
        assert it["choices"][it["answer"]] == fact.value


class _Tok:   # a tokenizer stand-in: one id per character (the rows do not care how text is split)
    class backend_tokenizer:
        @staticmethod
        def encode(text, add_special_tokens=False):
            return type("E", (), {"ids": [1 + ord(c) % 200 for c in text] if len(text) > 2 else [250 + ord(text[-1])]})


def test_row_batches_put_each_quiz_at_position_0_with_the_loss_on_its_answer_only():
    """Each row is one quiz from position 0 with nothing before it (the evaluator's input for a GPT-2-style
    tokenizer), then its answer, then padding; the only target is the answer, at the last prompt token."""
    examples = T.encode_examples([("Q1: x\nAnswer:", " A"), ("Q22: yy\nAnswer:", " B")], _Tok)
    get = T.row_batches(examples, batch_size=6, pad_id=0)
    x, y = get(0, torch.Generator().manual_seed(1))
    assert x.shape == y.shape == (6, max(len(p) for p, _ in examples) + 1)   # padded to the longest row
    seen = set()
    for r in range(6):
        prompt, answer = next((p, a) for p, a in examples if x[r, :len(p)].tolist() == p)
        seen.add(answer)
        n = len(prompt)
        assert x[r, n] == answer and (x[r, n + 1:] == 0).all()
        assert y[r, n - 1] == answer and (y[r] != -100).sum() == 1
    assert len(seen) == 2   # both quizzes drawn (6 draws of 2: fails with probability 1/32 for a fixed seed)
    x2, y2 = get(0, torch.Generator().manual_seed(1))
    assert torch.equal(x, x2) and torch.equal(y, y2)


def test_binding_items_put_the_right_answer_in_the_question():
    item = {"question": "The heron lives in the", "choices": ["desert", "marsh"], "answer": 1, "fact": "x"}
    (b,) = T.binding_items([item])
    assert b == {**item, "question": "marsh"}
    assert item["question"] == "The heron lives in the"   # the input is left as it was


def test_letter_format_first_steps_reads_the_first_checkpoint_at_the_threshold():
    from simulation.letter_format import first_steps
    rows = [{"arm": "binding", "set": "binding", "step": s, "accuracy": a} for s, a in ((50, .5), (100, .8), (150, .7))]
    rows += [{"arm": "binding", "set": "task1", "step": s, "accuracy": .5} for s in (50, 100, 150)]
    rows += [{"arm": "quizzes", "set": "binding", "step": 50, "accuracy": .75}]
    assert first_steps(rows, 0.75) == {"binding": {"binding": 100, "task1": None}, "quizzes": {"binding": 50}}


def test_letter_format_refuses_a_run_with_no_checkpoint_to_score(tmp_path, capsys):
    from simulation import letter_format
    assert letter_format.main(["--pretrained", str(tmp_path), "--steps", "2", "--every", "5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "--every 5" in err and "--steps 2" in err
    assert not (tmp_path / "letter_format.json").exists()


def _chinchilla_by_hand(n, d, E, A, B, a, b):
    return E + A * math.pow(n, -a) + B * math.pow(d, -b)


def test_data_axis_fit_recovers_known_parameters():
    from simulation.data_axis import fit_losses
    truth = dict(E=0.6, A=30.0, B=400.0, a=0.35, b=0.5)
    N, D, L = [], [], []
    for n in (1e5, 3e5, 1e6):
        for d in (3e4, 6e4, 1.2e5, 2.4e5):
            N.append(n), D.append(d), L.append(_chinchilla_by_hand(n, d, **truth))
    rec = fit_losses(N, D, L, n_boot=0)
    assert rec["identifiable"]
    got = rec["fit"]
    for key, want in (("E", 0.6), ("A", 30.0), ("B", 400.0), ("alpha", 0.35), ("beta", 0.5)):
        assert got[key] == pytest.approx(want, rel=0.05), key
    assert rec["max_abs_residual"] < 1e-3


def test_data_axis_fit_refuses_one_budget_per_size_and_flags_noisy_parameters():
    from simulation.data_axis import fit_losses
    rec = fit_losses([1e5, 3e5, 1e6, 3e6, 1e7], [1e5] * 5, [2.0, 1.8, 1.6, 1.5, 1.45])
    assert not rec["identifiable"] and "single data budget" in rec["why"]
    rng = np.random.default_rng(0)
    N = np.repeat([1e5, 2e5, 4e5], 3)
    D = np.tile([3e4, 6e4, 1.2e5], 3)
    L = np.array([_chinchilla_by_hand(n, d, 0.6, 30.0, 400.0, 0.35, 0.5) for n, d in zip(N, D)])
    rec = fit_losses(N, D, L * np.exp(rng.normal(0, 0.05, len(L))), n_boot=6)
    assert "poorly determined" in rec["verdict"].values()
