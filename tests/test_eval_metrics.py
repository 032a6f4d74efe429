"""Metrics on hand-made numbers whose right answers are worked out by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from eval_pipeline.metrics import (bootstrap_ci, parse_cot, renormalised, score_choice, score_generation,
                                   score_order_balanced, summarize)

AB = [" A", " B"]


def test_accuracy_p_right_and_brier():
    # p(A) : p(B) = e^-1 : e^-2, so p~(A) = 1 / (1 + e^-1) = 0.7310586
    r = score_choice([-1.0, -2.0], answer=0, options=AB)
    assert r["prediction"] == 0 and r["correct"] is True
    assert r["p_right"] == pytest.approx(0.7310586, abs=1e-6)
    assert r["brier"] == pytest.approx((1 - 0.7310586) ** 2, abs=1e-6)
    wrong = score_choice([-1.0, -2.0], answer=1, options=AB)
    assert wrong["correct"] is False and wrong["p_right"] == pytest.approx(0.2689414, abs=1e-6)
    # probabilities 0.3 and 0.1 (not summing to one) renormalise to 0.75 and 0.25
    r = score_choice([math.log(0.3), math.log(0.1)], answer=1, options=AB)
    assert r["p_right"] == pytest.approx(0.25) and r["brier"] == pytest.approx(0.5625)


def test_ties_go_to_the_first_option_and_extreme_logprobs_are_stable():
    assert score_choice([-3.0, -3.0], answer=1, options=AB)["prediction"] == 0
    assert renormalised([-1000.0, -1001.0]) == pytest.approx([1 / (1 + math.exp(-1)), 1 / (1 + math.e)])


def test_strict_accuracy_needs_the_top_token_to_be_the_right_option():
    assert score_choice([-1.0, -2.0], 0, AB, top_token=" A")["strict_correct"] is True
    assert score_choice([-1.0, -2.0], 0, AB, top_token=" the")["strict_correct"] is False   # right by A vs B only
    assert score_choice([-2.0, -1.0], 0, AB, top_token=" B")["strict_correct"] is False
    assert score_choice([-1.0, -2.0], 0, AB)["strict_correct"] is None                       # backend gave no top token


def test_surface_competition_can_overturn_the_plain_comparison():
    # p(" A") = .30 > p(" B") = .25, but p(" B.") = .20 lifts B to .45 against A's .30 + .05
    plain = [math.log(0.30), math.log(0.25)]
    surface = [math.log(0.35), math.log(0.45)]
    r = score_choice(plain, answer=1, options=AB, surface_logprobs=surface)
    assert r["correct"] is False and r["surface_correct"] is True


@pytest.mark.parametrize("text,expected", [
    (" Let's think step-by-step.\nFor this non-negated question, we have A.\nSo the answer is B.", 1),
    ("\nSo the answer is A.", 0),
    ("So the answer is A. And more.", 0),
    ("Let's think.\n\nSo the answer is A.", None),       # only the first paragraph counts
    ("So the answer is C.", None),                       # not an option
    ("So the answer is A", None),                        # no full stop
    ("so the answer is B.", None),                       # the exact phrase
    ("The answer is B.", None),
    ("", None),
])
def test_parse_cot(text, expected):
    assert parse_cot(text) == expected


def test_score_generation_has_no_probabilities():
    r = score_generation("Let's see.\nSo the answer is B.\n", answer=1)
    assert r["correct"] is True and r["prediction"] == 1 and r["p_right"] is None and r["brier"] is None
    assert score_generation("I do not know.", answer=0)["correct"] is False


def test_bootstrap_interval():
    assert bootstrap_ci([True] * 20) == [1.0, 1.0]
    x = [True, False] * 200                              # mean 0.5, standard error sqrt(.25/400) = 0.025
    lo, hi = bootstrap_ci(x, seed=3)
    assert lo < 0.5 < hi
    assert hi - lo == pytest.approx(2 * 1.96 * 0.025, rel=0.15)
    assert bootstrap_ci(x, seed=3) == [lo, hi]           # seeded: reruns agree
    assert all(np.isnan(bootstrap_ci([])))


def test_summarize():
    records = [score_choice([-1.0, -2.0], 0, AB, top_token=" A"),
               score_choice([-1.0, -2.0], 1, AB, top_token=" x"),
               score_choice([-2.0, -1.0], 1, AB, top_token=" B"),
               score_choice([-2.0, -1.0], 1, AB, top_token=" the")]
    s = summarize(records)
    assert s["n_items"] == 4 and s["accuracy"] == 0.75 and s["strict_accuracy"] == 0.5
    p = 1 / (1 + math.exp(-1))
    assert s["mean_brier"] == pytest.approx(((1 - p) ** 2 * 3 + p ** 2) / 4)
    assert s["surface_accuracy"] is None
    assert s["accuracy_ci"][0] <= 0.75 <= s["accuracy_ci"][1]


def test_order_balanced_reading_by_hand():
    # original order: p(A)=0.8, p(B)=0.2 with A = option 0; reversed order (option 1 shown as A):
    # p(A)=0.6, p(B)=0.4, so option 1 gets 0.6 and option 0 gets 0.4. Averages: option 0 (0.8+0.4)/2 = 0.6,
    # option 1 (0.2+0.6)/2 = 0.4. The two orders disagree (option 0, then option 1).
    r = score_order_balanced([math.log(0.8), math.log(0.2)], [math.log(0.6), math.log(0.4)], answer=0)
    assert r["balanced_p_right"] == pytest.approx(0.6) and r["balanced_correct"] == 1.0
    assert r["order_consistent"] is False
    assert score_order_balanced([math.log(0.8), math.log(0.2)], [math.log(0.6), math.log(0.4)], 1)["balanced_correct"] == 0
    # agreeing orders: option 1 preferred both times
    r = score_order_balanced([math.log(0.3), math.log(0.7)], [math.log(0.9), math.log(0.1)], answer=1)
    assert r["order_consistent"] is True and r["balanced_p_right"] == pytest.approx(0.8)


def test_a_model_that_always_says_a_reads_as_chance_and_never_consistent():
    # the same p(A) = 0.7 whatever the options: the paper's accuracy is the share of answers that are A,
    # the order-balanced probabilities tie at 0.5 (half credit) and no item keeps its choice across orders
    records = []
    for answer in (0, 1, 0, 0):
        rec = score_choice([math.log(0.7), math.log(0.3)], answer, AB)
        rec.update(score_order_balanced([math.log(0.7), math.log(0.3)], [math.log(0.7), math.log(0.3)], answer))
        records.append(rec)
    s = summarize(records)
    assert s["accuracy"] == 0.75
    assert s["balanced_accuracy"] == 0.5 and s["order_consistency"] == 0.0
    assert all(r["balanced_p_right"] == pytest.approx(0.5) for r in records)
    assert "balanced_accuracy" not in summarize([score_choice([-1.0, -2.0], 0, AB)])
