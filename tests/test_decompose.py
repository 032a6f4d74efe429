import numpy as np
import pytest

from eval_pipeline.analyze import PUBLISHED_CSV
from eval_pipeline.decompose import compose_measured, decompose, fit_linear, fit_sigmoid, joint_fit, latent_s, published_series, sigmoid


def simulate_items(t1, s, n, rng):
    """The paper's story played out item by item (no formula of the implementation): a model knows the
    plain answer with probability t1 and notices the negation with probability s. Task 2: it says
    "different" when it notices, else guesses between the two options. NeQA: it answers the plain
    question's answer unless it notices the negation, in which case it picks the other option."""
    knows = rng.random(n) < t1
    notices = rng.random(n) < s
    task1 = knows
    task2 = notices | (rng.random(n) < 0.5)
    neqa = np.where(notices, knows, ~knows)
    return task1.mean(), task2.mean(), neqa.mean()


def test_latent_s_mapping():
    assert list(latent_s([0.3, 0.5, 0.75, 1.0])) == [0.0, 0.0, 0.5, 1.0]
    assert list(latent_s([0.3, 0.75], "raw")) == [0.3, 0.75]
    with pytest.raises(ValueError):
        latent_s([0.5], "nope")


def test_compose_measured_by_hand():
    # task 2 at 75% → s = 0.5; at chance or below → s = 0, so NeQA = 1 − t1; raw: s = the accuracy itself
    s, c = compose_measured([0.8, 0.9, 0.6], [0.75, 0.5, 0.3])
    np.testing.assert_allclose(s, [0.5, 0.0, 0.0])
    np.testing.assert_allclose(c, [0.5, 0.1, 0.4])
    s, c = compose_measured(0.8, 0.75, "raw")
    assert s == pytest.approx(0.75) and c == pytest.approx(0.8 * 0.75 + 0.2 * 0.25)


def test_fits_recover_known_curves():
    x = np.linspace(7, 11, 6)
    a, b = fit_linear(x, 0.1 * x - 0.3)
    assert (a, b) == (pytest.approx(0.1), pytest.approx(-0.3))
    truth = 0.05 + 0.9 / (1 + np.exp(-4.0 * (x - 9.5)))
    mid, k, lo, hi = fit_sigmoid(x, truth)
    assert np.max(np.abs(sigmoid(x, mid, k, lo, hi) - truth)) < 1e-3
    assert mid == pytest.approx(9.5, abs=0.2)


def test_above_chance_mapping_explains_simulated_items_and_raw_does_not():
    rng = np.random.default_rng(0)
    x = np.arange(6.0)
    t1_true = 0.5 + 0.08 * x                                  # linear
    s_true = 1 / (1 + np.exp(-3 * (x - 3.5)))                 # sigmoid from 0
    acc = np.array([simulate_items(a, b, 20000, rng) for a, b in zip(t1_true, s_true)])
    t1, t2, neqa = acc.T
    assert neqa[2] < 0.42 and neqa[-1] > 0.8                  # the story's U
    good = decompose(x, t1, t2, neqa, mapping="above_chance", n_items=20000, n_boot=100)
    raw = decompose(x, t1, t2, neqa, mapping="raw", n_items=20000, n_boot=100)
    assert good.r2 > 0.98 and good.mae < 0.02
    assert raw.mae > 3 * good.mae and raw.r2 < good.r2 - 0.2
    assert good.joint_summary()["joint_p_value"] > 0.001
    assert raw.joint_summary()["joint_p_value"] < 1e-6
    for j, a, b in zip(good.joint, t1_true, s_true):
        assert j.t1_ci[0] - 0.01 <= a <= j.t1_ci[1] + 0.01
        assert j.s_ci[0] - 0.01 <= b <= j.s_ci[1] + 0.01


def test_joint_fit_recovers_parameters_and_rejects_an_unrelated_neqa():
    rng = np.random.default_rng(1)
    t1, t2, neqa = simulate_items(0.8, 0.3, 5000, rng)
    j = joint_fit(round(t1 * 5000), 5000, round(t2 * 5000), 5000, round(neqa * 5000), 5000, n_boot=200)
    assert j.t1 == pytest.approx(0.8, abs=0.02) and j.s == pytest.approx(0.3, abs=0.03)
    assert j.p_value > 0.001
    # NeQA at 90% with task 1 at 80% and task 2 at chance (s = 0) cannot be composed: 1 - t1 = 20%
    bad = joint_fit(4000, 5000, 2500, 5000, 4500, 5000, n_boot=50)
    assert bad.p_value < 1e-10


def test_published_pairs_and_hand_computed_errors():
    s = published_series(PUBLISHED_CSV)
    assert [(f, p2, pn) for f, p2, pn, *_ in s] == [
        ("GPT-3", "weak", "zeroshot"), ("GPT-3", "strong", "zeroshot_hint"),
        ("GPT-3 Text Series", "weak", "zeroshot"), ("GPT-3 Text Series", "strong", "zeroshot_hint")]
    fam, p2, pn, models, t1, t2, n = s[0]
    d = decompose(np.arange(1, 5), t1, t2, n, n_items=None)
    # by hand from the paper's figure values: t1 = .44 .47 .61 .76, task 2 weak = .49 .49 .22 .53 -> s = 0 0 0 .06;
    # composed = 1 - t1 for the first three, .76·.06 + .24·.94 = .2712 for davinci; NeQA = .54 .54 .36 .33
    np.testing.assert_allclose(d.composed, [0.56, 0.53, 0.39, 0.2712], atol=1e-9)
    assert d.mae == pytest.approx((0.02 + 0.01 + 0.03 + 0.0588) / 4)
    raw = decompose(np.arange(1, 5), t1, t2, n, mapping="raw")
    # raw: .44·.49 + .56·.51 = .5012, .47·.49 + .53·.51 = .5006, .61·.22 + .39·.78 = .4384, .76·.53 + .24·.47 = .5156
    np.testing.assert_allclose(raw.composed, [0.5012, 0.5006, 0.4384, 0.5156], atol=1e-9)
    with pytest.raises(ValueError):
        decompose([1, 2], [0.5, 0.6], [0.5, 0.5], [0.5, 0.5])
