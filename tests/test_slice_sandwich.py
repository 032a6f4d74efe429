import filecmp
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from eval_pipeline import slice_sandwich as sas

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "expemergence"


def _reference():
    spec = importlib.util.spec_from_file_location("expemergence_reference", ROOT / "tests" / "expemergence_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def simulated_models(seed=0, n_q=600):
    """Per-question right-answer probabilities drawn from a generative story, not from the forecast's
    formulas: easy questions' p_right rises linearly in log FLOPs, hard ones' is a downward parabola
    (models first grow confidently wrong). Brier = (1 − p)², accuracy = P(p > 1/2) estimated on the items."""
    rng = np.random.default_rng(seed)
    x = np.linspace(-1, 3, 17)
    kind = np.arange(n_q) % 2                               # 0 easy, 1 hard
    easy_p = 0.55 + 0.08 * (x + 1)
    hard_p = 0.35 - 0.06 * (x + 1) + 0.03 * (x + 1) ** 2
    p = np.where(kind[None] == 0, easy_p[:, None], hard_p[:, None]) + rng.normal(0, 0.02, (len(x), n_q))
    p = np.clip(p, 0.01, 0.99)
    return x, p, kind


def test_difficulty_groups_cut_like_the_authors():
    x, p, kind = simulated_models()
    groups = sas.difficulty_groups((1 - p) ** 2, x <= 1.0, 3)
    assert [len(g) for g in groups] == [200, 200, 200]      # floor(linspace(0, 600, 4))
    assert np.all(kind[groups[0]] == 0) and np.all(kind[groups[-1]] == 1)
    assert [len(g) for g in sas.difficulty_groups(np.zeros((2, 10)), np.array([True, True]), 3)] == [3, 3, 4]


def test_forecast_recovers_truth_where_it_is_polynomial_and_brier_linear_in_accuracy():
    # exact curves: easy Brier quadratic, hard Brier quadratic, accuracy a known line of the overall Brier
    x = np.linspace(-1, 3, 17)
    be = 0.30 - 0.05 * x + 0.004 * x ** 2
    bh = 0.60 - 0.02 * x - 0.03 * x ** 2
    overall = (be + bh) / 2
    acc = (0.70 - overall) / 0.9                            # overall = 0.70 - 0.9 acc
    f = sas.forecast(x, acc, overall, be, bh, threshold=1.5, chance=0.25, deg_easy=2, deg_hard=2)
    assert f.test.sum() == 7 and f.fit.sum() == 10
    assert f.acc_brier == (pytest.approx(0.70), pytest.approx(-0.9))
    np.testing.assert_allclose(f.sas_pred, acc, atol=1e-9)
    assert f.errors()["sas_mae"] < 1e-9


def test_baseline_recovers_a_chance_plus_sigmoid_curve():
    x = np.linspace(-1, 3, 12)
    chance = 0.25
    acc = chance + 1 / (1 + np.exp(-(1.3 * x - 2.0)))      # the baseline's own family: exact recovery
    base = sas.sigmoid_baseline(x, acc, x < 1.5, chance)
    np.testing.assert_allclose(base, acc, atol=1e-5)


def test_forecast_from_simulated_items_beats_the_baseline():
    x, p, _ = simulated_models()
    brier = (1 - p) ** 2
    acc = (p > 0.5).mean(axis=1)
    overall, easy, hard = sas.group_scores(brier, x, 1.5)
    f = sas.forecast(x, acc, overall, easy, hard, 1.5, 0.5, deg_easy=2, deg_hard=2)
    e = f.errors()
    assert e["n_test"] == 7
    assert e["sas_mae"] < e["baseline_mae"]


def test_errors_on_bad_input():
    with pytest.raises(ValueError):
        sas.forecast([1, 2, 3, 4], [0.3] * 4, [0.5] * 4, [0.4] * 4, [0.6] * 4, threshold=9, chance=0.25)
    with pytest.raises(ValueError):
        sas.expemergence_file("not_a_task")


@pytest.mark.parametrize("task", list(sas.TASKS))
def test_matches_an_independent_recomputation_of_the_authors_pipeline(task):
    ref = _reference()
    frame = ref.reference(task, sas.EXPEMERGENCE_DIR)
    df, f = sas.forecast_expemergence(task)
    ours = df.assign(sas_pred=f.sas_pred, baseline_pred=f.baseline_pred).set_index("model").sort_index()
    frame_ = frame.set_index("model").sort_index()           # ties in FLOPs may come in another order
    assert list(ours.index) == list(frame_.index)
    np.testing.assert_allclose(ours["sas_pred"], frame_["sas_pred"], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ours["baseline_pred"], frame_["baseline_pred"], rtol=1e-7, atol=1e-9)
    ours, theirs = f.errors(), ref.errors(frame)
    for k in ("sas_mae", "sas_mse", "baseline_mae", "baseline_mse", "n_test"):
        assert ours[k] == pytest.approx(theirs[k], rel=1e-7)


def test_vendored_thresholds_and_models():
    # the authors' thresholds (utils.py) and chance levels, as written in their file names / paper
    assert sas.TASKS["mmlu"] == (1.5, 0.25) and sas.TASKS["arithmetic"] == (1.8, 0.145)
    assert sas.TASKS["parsinlu_qa_mc"] == (2.3, 0.25)
    df = sas.load_expemergence("mmlu")
    assert not set(df["model"]) & set(sas.EXCLUDED_MODELS)
    assert df["log10_flops"].is_monotonic_increasing
    assert (df["log10_flops"] >= 1.5).sum() == 27           # 59 models with every column; 27 at or above 10^1.5


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/expemergence not beside this checkout")
def test_vendored_files_are_the_authors_release():
    vendored = sorted(sas.EXPEMERGENCE_DIR.glob("*.csv"))
    assert len(vendored) == 15
    for path in vendored:
        task = path.name.split("_instance_brier")[0]
        assert filecmp.cmp(path, SHARED / task / path.name, shallow=False), path.name
    assert filecmp.cmp(sas.EXPEMERGENCE_DIR / "LICENSE", SHARED / "LICENSE", shallow=False)
