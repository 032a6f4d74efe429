import numpy as np
import pytest

from eval_pipeline.fits import BrokenPowerLaw, Chinchilla, fit_broken_power_law, fit_chinchilla, fit_power_law


def test_power_law_recovers_parameters():
    rng = np.random.default_rng(0)
    x = np.logspace(6, 11, 12)
    y = (1e13 / x) ** 0.076 * (1 + rng.normal(0, 0.003, len(x)))      # Kaplan et al.'s L(N) form
    fit = fit_power_law(x, y)
    assert fit.alpha == pytest.approx(0.076, abs=0.004)
    assert np.log10(fit.x_c) == pytest.approx(13, abs=0.5)
    assert fit.r2 > 0.99
    with pytest.raises(ValueError):
        fit_power_law([1, 2], [1, -1])


def test_chinchilla_recovers_hoffmann_parameters():
    rng = np.random.default_rng(1)
    N = np.repeat(np.logspace(7, 10, 6), 4)
    D = np.tile(np.logspace(9, 11.5, 4), 6)
    true = Chinchilla(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28, loss=0.0)  # Hoffmann et al. 2022
    L = true(N, D) * np.exp(rng.normal(0, 0.003, len(N)))
    fit = fit_chinchilla(N, D, L, n_polish=2)
    assert fit.alpha == pytest.approx(0.34, abs=0.05)
    assert fit.beta == pytest.approx(0.28, abs=0.05)
    assert fit.E == pytest.approx(1.69, abs=0.1)
    assert np.max(np.abs(fit(N, D) / true(N, D) - 1)) < 0.01
    with pytest.raises(ValueError):
        fit_chinchilla(N[:3], D[:3], L[:3])


@pytest.mark.slow
def test_broken_power_law_fits_a_u_shaped_curve():
    rng = np.random.default_rng(2)
    x = np.logspace(6, 11, 12)
    true = BrokenPowerLaw(a=0.2, b=1.0, c0=0.05, c1=-0.15, d1=1e9, f1=0.3, r2=1.0)
    y = true(x) + rng.normal(0, 0.002, len(x))
    fit = fit_broken_power_law(x, y)
    assert fit.r2 > 0.99
    assert np.max(np.abs(fit(x) - true(x))) < 0.02
    assert np.log10(fit.d1) == pytest.approx(9, abs=0.5)
    assert fit.c0 > 0 and fit.c0 + fit.c1 < 0          # falls, then rises


def test_chinchilla_identifiable_only_with_two_budgets_per_size():
    from eval_pipeline.fits import chinchilla_identifiable
    N = np.logspace(7, 10, 6)
    ok, why = chinchilla_identifiable(N, 20 * N)                 # one budget per size (compute-optimal ladder)
    assert not ok and "single data budget" in why
    ok, _ = chinchilla_identifiable(np.repeat(N, 2), np.tile([1e9, 4e9], 6))
    assert ok
    assert not chinchilla_identifiable(np.full(6, 1e8), np.logspace(9, 10, 6))[0]


def test_bootstrap_interval_covers_the_true_exponents():
    from eval_pipeline.fits import bootstrap_intervals
    rng = np.random.default_rng(3)
    N = np.repeat(np.logspace(7, 10, 5), 4)
    D = np.tile(np.logspace(9, 11, 4), 5)
    L = (1.7 + 400 / N ** 0.34 + 410 / D ** 0.28) * np.exp(rng.normal(0, 0.01, len(N)))   # written out, not Chinchilla()

    def fit(n, d, l):
        c = fit_chinchilla(n, d, l, n_polish=1)
        return {"alpha": c.alpha, "beta": c.beta}

    ci, failed = bootstrap_intervals(fit, [N, D, L], n_boot=20, seed=0)
    assert failed == 0
    assert ci["alpha"][0] <= 0.34 <= ci["alpha"][1] and ci["alpha"][1] - ci["alpha"][0] < 0.5
    assert ci["beta"][0] <= 0.28 <= ci["beta"][1]
