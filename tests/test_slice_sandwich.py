import numpy as np
import pytest

from eval_pipeline.slice_sandwich import difficulty_groups, forecast


def synthetic(seed=0, n_q=300):
    """Easy questions' Brier falls steadily with log FLOPs; hard ones first rise (the model grows
    confidently wrong) then fall: the aggregate dips before the threshold and recovers after it,
    which a chance-to-1 sigmoid fitted below the threshold cannot foresee. Per-question Brier is the
    group's curve plus small noise, so the truth is known by construction."""
    rng = np.random.default_rng(seed)
    x = np.linspace(18, 24, 13)                              # log10 FLOPs
    easy_curve = 0.25 - 0.03 * (x - 18)                      # linear (degree <= 5)
    hard_curve = 0.30 + 0.06 * (x - 18) - 0.015 * (x - 18) ** 2   # quadratic (degree 2)
    kind = np.arange(n_q) % 2                                # half easy, half hard
    curves = np.where(kind[None, :] == 0, easy_curve[:, None], hard_curve[:, None])
    brier = np.clip(curves + rng.normal(0, 0.005, (len(x), n_q)), 0, 1)
    avg = (easy_curve + hard_curve) / 2
    accuracy = 1.2 - 1.6 * avg                               # a known linear Brier -> accuracy map
    return brier, accuracy, x, kind


def test_difficulty_groups_sort_easy_first():
    brier, acc, x, kind = synthetic()
    groups = difficulty_groups(brier, x <= 21, 2)
    assert np.all(kind[groups[0]] == 0) and np.all(kind[groups[1]] == 1)


def test_forecast_beats_sigmoid_baseline_on_known_truth():
    brier, acc, x, _ = synthetic()
    f = forecast(brier, acc, x, threshold=21.0, n_groups=2)
    assert f.above.sum() == 6
    assert f.mae < 0.03, f.mae                               # near exact: the polynomials hold the truth
    assert f.baseline_mae > 2 * f.mae
    assert not f.notes


def test_degree_lowered_with_few_models_and_errors():
    brier, acc, x, _ = synthetic()
    keep = [0, 2, 4, 8, 12]                                  # 3 models below T=21
    f = forecast(brier[keep], acc[keep], x[keep], threshold=21.0)
    assert any("degree lowered from 5 to 2" in n for n in f.notes)
    with pytest.raises(ValueError):
        forecast(brier, acc, x, threshold=30.0)              # nothing above T
