"""Sampler certificates (qbm.diagnostics): beta_eff, autocorrelation, exact TV and its floor."""

from __future__ import annotations

import dimod
import numpy as np
import pytest
from helpers import all_states, boltzmann, random_frustrated, state_index

from qbm import IsingModel
from qbm.diagnostics import (
    certify,
    exact_distribution,
    fit_beta,
    pseudo_likelihood_beta,
    tv_floor,
)
from qbm.diagnostics import all_states as d_all_states
from qbm.diagnostics import state_index as d_state_index
from qbm.metrics import integrated_autocorrelation_time
from qbm.samplers import GibbsSampler, ParallelTemperingSampler, SimulatedAnnealingSampler


def _ferromagnet(n: int = 10) -> IsingModel:
    """All-to-all ferromagnet with a small field favouring +1: single-spin chains started
    at random split between the two modes and stay there for e^(n beta) sweeps."""
    J = {(i, j): -1.0 for i in range(n) for j in range(i + 1, n)}
    return IsingModel.from_ising({i: -0.05 for i in range(n)}, J)


def test_enumeration_matches_the_test_helpers():
    m = random_frustrated(7, seed=1)
    assert np.array_equal(d_all_states(7), all_states(7))
    s = all_states(7)
    assert np.array_equal(d_state_index(s), state_index(s))
    np.testing.assert_allclose(exact_distribution(m, 0.7), boltzmann(m, 0.7), rtol=1e-12, atol=0)


@pytest.mark.parametrize("beta", [0.3, 1.0, 2.0])
def test_pseudo_likelihood_recovers_beta_from_exact_samples(beta):
    """Independent exact Boltzmann draws: the bootstrap interval holds the true beta and
    the estimate is close (consistency of maximum pseudo-likelihood)."""
    m = random_frustrated(10, seed=4)
    p = exact_distribution(m, beta)
    rng = np.random.default_rng(7)
    spins = d_all_states(10)[rng.choice(p.size, 5000, p=p)]
    b, (lo, hi) = fit_beta(spins, m, bootstrap=100, seed=1)
    assert lo <= beta <= hi, (b, lo, hi)
    assert abs(b - beta) < 0.1 * beta
    # the root is the likelihood's stationary point: the derivative changes sign there
    assert pseudo_likelihood_beta(spins, m) == pytest.approx(b, rel=1e-12)


def test_tv_floor_is_the_expected_tv_of_exact_samples():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(16) * 0.7)
    for N in (20, 500, 5000):
        draws = rng.multinomial(N, p, size=4000) / N
        mc = 0.5 * np.abs(draws - p).sum(axis=1)
        se = mc.std() / np.sqrt(len(mc))
        assert abs(tv_floor(p, N) - mc.mean()) < 4 * se + 1e-4, (N, tv_floor(p, N), mc.mean())


def test_certify_passes_gibbs_samples_at_the_target_beta():
    """The issue's acceptance case: Gibbs at beta = 1 on a 12-spin model."""
    m = random_frustrated(12, seed=3)
    r = GibbsSampler().sample_model(m, beta=1.0, num_reads=3000, num_sweeps=100, seed=11, certify=True)
    c = r.info["certificate"]
    lo, hi = c["beta_eff_ci"]
    assert lo <= 1.0 <= hi
    assert c["tv"] <= c["tv_threshold"] and c["tv_floor"] > 0
    assert c["tau_int"] is not None and c["ess"] > 1000
    assert c["ok"] and c["verdict"].startswith("ok")
    assert "energy_trace" not in r.info  # recorded for the certificate only
    for k in ("beta_eff", "beta_eff_ci", "tau_int", "ess", "tv", "tv_floor", "ok", "verdict"):
        assert k in c


def test_certify_reports_unequilibrated_samples():
    """Too few sweeps on a slow-mixing model: the TV and the trace both fail, and the
    verdict says so."""
    m = _ferromagnet()
    r = GibbsSampler().sample_model(m, beta=0.5, num_reads=2000, num_sweeps=20, seed=1, certify=True)
    c = r.info["certificate"]
    assert not c["ok"]
    assert "TV" in c["verdict"] and "tau_int" in c["verdict"]
    assert c["tv"] > 5 * c["tv_floor"]
    # the wrong target beta is caught by the interval on well-mixed samples
    m2 = random_frustrated(12, seed=3)
    r2 = GibbsSampler().sample_model(m2, beta=1.0, num_reads=3000, num_sweeps=60, seed=2)
    c2 = certify(r2, m2, beta=1.3)
    assert not c2["ok"] and "excludes the target beta" in c2["verdict"]


def test_certify_on_samplesets_and_other_samplers():
    m = random_frustrated(8, seed=5)
    bqm = m.to_bqm()
    ss = GibbsSampler().sample(bqm, beta=1.0, num_reads=400, num_sweeps=50, seed=3)
    a = certify(ss, m, beta=1.0)
    b = certify(ss.change_vartype(dimod.BINARY, inplace=False), bqm, beta=1.0)
    assert a["beta_eff"] == pytest.approx(b["beta_eff"], rel=1e-12) and a["tv"] == pytest.approx(b["tv"], rel=1e-9)
    # parallel tempering: the target replica's beta is the target
    pt = ParallelTemperingSampler().sample_model(m, beta=1.0, num_reads=300, num_sweeps=200, seed=1, certify=True)
    assert pt.info["certificate"]["target_beta"] == pytest.approx(1.0)
    # annealing is not Boltzmann at a stated beta: beta_eff is reported, no target
    sa = SimulatedAnnealingSampler().sample_model(m, num_reads=200, num_sweeps=100, seed=1, certify=True)
    assert sa.info["certificate"]["target_beta"] is None and sa.info["certificate"]["beta_eff"] > 1


def test_certify_trace_from_rows():
    """Rows that are the trace (read, sweep vectors) count through their ESS."""
    m = random_frustrated(6, seed=2)
    rng = np.random.default_rng(0)
    p = exact_distribution(m, 1.0)
    spins = d_all_states(6)[rng.choice(p.size, 4 * 300, p=p)]

    class R:
        pass

    r = R()
    r.spins = spins
    r.vectors = {"read": np.repeat(np.arange(4), 300), "sweep": np.tile(np.arange(300), 4)}
    c = certify(r, m, beta=1.0)
    assert c["trace_shape"] == (4, 300) and c["ess"] > 600 and c["ok"]


def test_certify_errors_name_the_parameter():
    m = random_frustrated(5, seed=0)
    s = np.ones((10, 5), dtype=np.int8)
    with pytest.raises(ValueError, match="beta"):
        certify(s, m, beta=0.0)
    with pytest.raises(ValueError, match="result"):
        certify(np.ones((10, 4)), m)
    with pytest.raises(ValueError, match="result"):
        certify(np.zeros((10, 5)), m)
    with pytest.raises(TypeError, match="model"):
        certify(s, "not a model")
    ss = dimod.SampleSet.from_samples((s[:, :4], list(range(4))), dimod.SPIN, energy=np.zeros(10))
    with pytest.raises(ValueError, match="lacks"):
        certify(ss, m)
    with pytest.raises(ValueError, match="certify"):
        GibbsSampler().sample_model(m, certify="yes")


def test_autocorrelation_time_of_an_ar1_series():
    """x_t = phi x_{t-1} + e_t has tau_int = (1 + phi) / (1 - phi)."""
    rng = np.random.default_rng(3)
    for phi in (0.5, 0.8, 0.9):
        e = rng.normal(size=200_000)
        x = np.empty_like(e)
        x[0] = e[0]
        for t in range(1, e.size):  # a test fixture, not a hot loop
            x[t] = phi * x[t - 1] + e[t]
        tau = (1 + phi) / (1 - phi)
        assert abs(integrated_autocorrelation_time(x) - tau) < 0.08 * tau


@pytest.mark.slow
def test_reference_energy_catches_what_local_checks_cannot():
    """An 80-spin Zephyr glass at beta = 3: short Gibbs chains pass the local checks
    (pseudo-likelihood beta, no trace) but sit far above parallel tempering's mean energy;
    independent PT samples at the same beta pass the reference check."""
    from qbm.problems import zephyr_spin_glass

    m = zephyr_spin_glass(2, 2, seed=0)
    g = GibbsSampler().sample_model(m, beta=3.0, num_reads=500, num_sweeps=20, seed=1)
    assert certify(g, m, beta=3.0)["ok"]  # the blind spot
    c = certify(g, m, beta=3.0, reference="pt")
    assert not c["ok"] and "parallel tempering" in c["verdict"] and c["reference_energy_gap"] > 0
    pt = ParallelTemperingSampler().sample_model(
        m, beta=3.0, beta_min=0.2, num_replicas=16, num_reads=500, num_sweeps=1000, seed=7
    )
    c2 = certify(pt, m, beta=3.0, reference="pt", seed=3)
    assert c2["ok"], c2["verdict"]
    with pytest.raises(ValueError, match="reference"):
        certify(g, m, reference="exact")
