import numpy as np
import pytest

from qbm.metrics import effective_sample_size, integrated_autocorrelation_time, total_variation


def test_tau_of_ar1_process():
    rng = np.random.default_rng(0)
    for rho in (0.0, 0.5, 0.9):
        x = np.empty(200_000)
        x[0] = 0
        noise = rng.normal(size=x.size)
        for t in range(1, x.size):
            x[t] = rho * x[t - 1] + noise[t]
        want = (1 + rho) / (1 - rho)
        assert integrated_autocorrelation_time(x) == pytest.approx(want, rel=0.1)


def test_ess_of_independent_chains():
    rng = np.random.default_rng(1)
    ess = effective_sample_size(rng.normal(size=(4, 5000)))
    assert 4 * 5000 * 0.85 < ess < 4 * 5000 * 1.15


def test_ess_penalises_chains_that_disagree():
    rng = np.random.default_rng(2)
    good = rng.normal(size=(4, 2000))
    stuck = good + np.array([[0.0], [3.0], [-3.0], [6.0]])
    assert effective_sample_size(stuck) < 0.05 * effective_sample_size(good)


def test_ess_of_ar1_chain():
    rng = np.random.default_rng(3)
    x = np.empty(100_000)
    x[0] = 0
    e = rng.normal(size=x.size)
    for t in range(1, x.size):
        x[t] = 0.8 * x[t - 1] + e[t]
    assert effective_sample_size(x) == pytest.approx(x.size / 9.0, rel=0.15)


def test_total_variation():
    assert total_variation([0.5, 0.5], [1.0, 0.0]) == 0.5
    with pytest.raises(ValueError, match="q"):
        total_variation([1.0], [0.5, 0.5])
