import numpy as np
import pytest

from eval_pipeline.registry import PUBLISHED_CSV
from eval_pipeline.trends import LABELS, PAPER_LABEL_MAP, chance_band, classify_trend, published_trends


def shapes(k):
    u = np.linspace(0, 1, k)
    return {
        "positive": 0.5 + 0.3 * u,
        "inverse": 0.75 - 0.3 * u,
        "u-shaped": 0.35 + 1.2 * (u - 0.5) ** 2,
        "inverted-u": 0.7 - 1.2 * (u - 0.5) ** 2,
        "flat": 0.5 + 0 * u,
        # flat, then a late sudden rise (the paper's "sigmoid"): must not be called U-shaped
        "sigmoid": 0.5 + 0.4 / (1 + np.exp(-(u - 0.75) * 25)),
    }


@pytest.mark.parametrize("k", [3, 4, 6])
def test_noisy_synthetic_curves_mostly_recovered(k):
    rng = np.random.default_rng(123 + k)
    for name, p in shapes(k).items():
        want = "positive" if name == "sigmoid" else name
        labels = [classify_trend(np.arange(k), rng.binomial(100, p) / 100, n_items=100, x_scale="linear",
                                 n_boot=400, seed=s).label for s in range(30)]
        agree = np.mean([lab == want for lab in labels])
        assert agree >= 0.7, (k, name, agree, labels)


def test_noise_free_large_n_is_exact_and_turning_point_located():
    x = np.logspace(7, 11, 5)                               # 1e7 .. 1e11 parameters, log scale
    t = np.log10(x)
    acc = 0.3 + 0.05 * (t - 9.5) ** 2                       # vertex at 10**9.5
    tr = classify_trend(x, acc, n_items=10_000)
    assert tr.label == "u-shaped"
    assert tr.turning_point == pytest.approx(10 ** 9.5, rel=1e-6)
    lo, hi = tr.turning_ci
    assert lo < 10 ** 9.5 < hi
    assert classify_trend(x, 0.9 - (acc - 0.3), n_items=10_000).label == "inverted-u"
    assert classify_trend(x, 0.5 + 0.05 * (t - 7), n_items=10_000).label == "positive"
    tr = classify_trend(x, 0.8 - 0.05 * (t - 7), n_items=10_000)
    assert tr.label == "inverse" and tr.slope == pytest.approx(-0.05)


def test_order_of_points_does_not_matter():
    x = np.array([1e9, 1e7, 1e11, 1e8])
    acc = np.array([0.45, 0.6, 0.7, 0.5])
    a = classify_trend(x, acc, n_items=100)
    perm = [2, 0, 3, 1]
    b = classify_trend(x[perm], acc[perm], n_items=100)
    assert a.label == b.label and a.slope == pytest.approx(b.slope)


def test_chance_band_matches_binomial_quantiles():
    # 95% of fair-coin guessers on 100 items score between 40 and 60 (a textbook binomial fact)
    assert chance_band(100, 0.5) == (0.40, 0.60)
    tr = classify_trend([1, 2, 3], [0.48, 0.52, 0.5], n_items=100, x_scale="linear")
    assert tr.label == "flat" and tr.at_chance
    assert not classify_trend([1, 2, 3], [0.9, 0.91, 0.9], n_items=100, x_scale="linear").at_chance


def test_paired_item_bootstrap_sees_small_consistent_gains():
    # Each larger model gets the same questions right as the smaller one plus 4 more (of 200): a small
    # but perfectly consistent gain. Independent binomial noise hides it; the paired bootstrap does not.
    m, k = 200, 4
    items = []
    for i in range(k):
        y = np.zeros(m)
        y[: 100 + 4 * i] = 1
        items.append(y)
    acc = [y.mean() for y in items]
    paired = classify_trend(np.arange(k), acc, items=items, x_scale="linear")
    assert paired.method == "items" and paired.label == "positive" and paired.slope_support == 1.0
    assert classify_trend(np.arange(k), acc, n_items=m, x_scale="linear").label == "flat"


def test_bad_input_raises():
    with pytest.raises(ValueError):
        classify_trend([1, 2, 3], [0.5, 1.2, 0.4], n_items=100)
    with pytest.raises(ValueError):
        classify_trend([0, 1, 2], [0.5, 0.6, 0.7], n_items=100)          # log of 0
    with pytest.raises(ValueError):
        classify_trend([1], [0.5], n_items=100)
    with pytest.raises(ValueError):
        classify_trend([1, 2, 3], [0.5, 0.6, 0.7])                       # no noise model


def test_published_curves_agreement_and_clear_cases():
    rows = published_trends(PUBLISHED_CSV, n_boot=1000, shape_boot=200)
    assert len(rows) == 18
    assert all(r["label"] in LABELS for r in rows)
    by = {(r["family"], r["task"], r["prompt"]): r for r in rows}
    # curves whose shape is unambiguous at n = 100 (effects of 15+ points on each side)
    assert by[("GPT-3", "neqa", "zeroshot")]["label"] == "inverse"              # 54 54 36 33
    assert by[("GPT-3", "neqa", "zeroshot_hint")]["label"] == "u-shaped"        # 55 47 35 51
    assert by[("GPT-3 Text Series", "neqa", "zeroshot")]["label"] == "u-shaped"  # 61 53 48 31 56 71
    assert by[("GPT-3 Text Series", "neqa", "fewshot_cot")]["label"] == "positive"
    # 51 49 50 94 100 99: flat at chance then a jump of 44 points -- no line through 100 items per point does that
    strong = by[("GPT-3 Text Series", "task2", "strong")]
    assert strong["label"] == "positive" and strong["shape"] == "sigmoid" and strong["agree"]
    # the agreement rule: the paper's linear/sigmoid need a positive curve of that shape; other labels match words
    for r in rows:
        if r["paper_label"] in ("linear", "sigmoid"):
            assert r["agree"] == (r["label"] == "positive" and r["shape"] == r["paper_label"])
        else:
            assert r["agree"] == (r["label"] == r["paper_label"])
        assert r["readoff"] == 0.03
    assert PAPER_LABEL_MAP["sigmoid"] == PAPER_LABEL_MAP["linear"] == "positive"


def test_readoff_error_adds_its_variance_to_the_binomial():
    from eval_pipeline.trends import bootstrap_accuracies
    acc = np.array([0.3, 0.5, 0.7])
    plain, _ = bootstrap_accuracies(acc, 100, n_boot=40000, seed=1)
    noisy, method = bootstrap_accuracies(acc, 100, n_boot=40000, seed=1, readoff=0.03)
    # uniform(-r, r) has variance r^2 / 3, independent of the binomial p(1-p)/n
    want = acc * (1 - acc) / 100 + 0.03 ** 2 / 3
    np.testing.assert_allclose(noisy.var(axis=0), want, rtol=0.05)
    np.testing.assert_allclose(plain.var(axis=0), acc * (1 - acc) / 100, rtol=0.05)
    assert method.startswith("binomial+readoff")


def _draw(p, n, rng):
    """Accuracy of a model that answers each of n items right with probability p (item by item)."""
    return np.array([(rng.random(n) < q).mean() for q in p])


def test_linear_versus_sigmoid_on_simulated_curves():
    from eval_pipeline.trends import compare_shapes
    rng = np.random.default_rng(7)
    x = np.arange(6.0)
    line = 0.45 + 0.08 * x                                   # 45% -> 85%, evenly
    late = 0.5 + 0.45 / (1 + np.exp(-6 * (x - 3.5)))         # flat at chance, then a jump
    lin_calls = [compare_shapes(x, _draw(line, 300, rng), 300, n_boot=100, seed=i).label for i in range(12)]
    sig_calls = [compare_shapes(x, _draw(late, 300, rng), 300, n_boot=100, seed=i).label for i in range(12)]
    assert lin_calls.count("sigmoid") <= 3, lin_calls          # about alpha = 5% false alarms
    assert sig_calls.count("sigmoid") >= 10, sig_calls
    # a read-off error can only widen the null distribution: p-values do not shrink much
    acc = _draw(late, 100, rng)
    assert compare_shapes(x, acc, 100, readoff=0.03, n_boot=300).p_value >= \
        compare_shapes(x, acc, 100, n_boot=300).p_value - 0.02


def test_spearman_exact_permutation_p_value():
    # 4 strictly increasing points: rho = 1, and only 2 of the 4! = 24 orderings are as extreme (|rho| = 1)
    tr = classify_trend([1, 2, 3, 4], [0.5, 0.6, 0.7, 0.8], n_items=100, x_scale="linear", n_boot=200)
    assert tr.spearman_rho == pytest.approx(1.0)
    assert tr.spearman_p == pytest.approx(2 / 24)
