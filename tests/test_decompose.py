import numpy as np
import pytest

from eval_pipeline.decompose import decompose, fit_linear, fit_sigmoid, published_series
from eval_pipeline.registry import PUBLISHED_CSV
from neqa.maths import compose, linear, sigmoid


def test_fits_recover_known_curves():
    x = np.linspace(7, 11, 6)
    a, b = fit_linear(x, linear(x, 0.1, -0.3))
    assert (a, b) == (pytest.approx(0.1), pytest.approx(-0.3))
    true = (9.5, 4.0, 0.05, 0.95)
    mid, k, lo, hi = fit_sigmoid(x, sigmoid(x, *true))
    assert np.max(np.abs(sigmoid(x, mid, k, lo, hi) - sigmoid(x, *true))) < 1e-3
    assert mid == pytest.approx(9.5, abs=0.2)


def test_composition_of_exact_tasks_explains_u_shaped_neqa():
    # the paper's story: task 1 rises linearly, task 2 switches on late from 0 -> NeQA is U-shaped
    x = np.linspace(7, 11, 6)
    t1 = linear(x, 0.1, -0.2)                       # 0.5 .. 0.9
    t2 = sigmoid(x, 9.8, 6.0, 0.0, 1.0)
    neqa = compose(t1, t2)
    assert neqa[2] < neqa[0] - 0.05 and neqa[-1] > neqa[2] + 0.2     # U by construction
    d = decompose(x, t1, t2, neqa)
    assert d.r2_fit > 0.98 and d.mae_fit < 0.02
    assert d.r2_measured == pytest.approx(1.0)


def test_published_series_and_errors():
    s = published_series(PUBLISHED_CSV)
    assert {(f, p) for f, p, *_ in s} == {("GPT-3", "weak"), ("GPT-3", "strong"),
                                          ("GPT-3 Text Series", "weak"), ("GPT-3 Text Series", "strong")}
    fam, p, models, t1, t2, n = s[0]
    assert models == ["ada", "babbage", "curie", "davinci"] and n[0] == pytest.approx(0.54)
    with pytest.raises(ValueError):
        decompose([1, 2], [0.5, 0.6], [0.5, 0.5], [0.5, 0.5])
