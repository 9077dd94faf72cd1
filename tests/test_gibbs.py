"""GibbsSampler (heat bath / Metropolis): exact enumeration, seeds, persistent chains, dimod, bad input,
interruption."""

import _thread
import threading
import time

import dimod
import numpy as np
import pytest

from qbm import IsingModel
from qbm.problems import spin_glass, zephyr_graph
from qbm.samplers import GibbsSampler, SimulatedAnnealingSampler
from helpers import boltzmann, empirical, random_frustrated, tvd, tvd_bound


@pytest.mark.parametrize("update", ["heat_bath", "metropolis"])
@pytest.mark.parametrize("order", ["colour", "sequential"])
@pytest.mark.parametrize("beta", [0.3, 1.0, 2.0])
def test_gibbs_matches_exact_distribution(update, order, beta):
    model = random_frustrated(8, seed=int(beta * 10) + (update == "metropolis"))
    p = boltzmann(model, beta)
    n_reads = 20000
    # at beta=2 these glasses have barriers: single-spin chains need thousands of sweeps
    sweeps = 3000 if beta >= 2 else 100
    res = GibbsSampler().sample_model(
        model, beta=beta, num_reads=n_reads, num_sweeps=sweeps, update=update, order=order, seed=7
    )
    d = tvd(empirical(res.spins), p)
    assert d < tvd_bound(p, n_reads), f"TV {d:.4f} vs bound {tvd_bound(p, n_reads):.4f}"


def test_random_order_matches_exact_distribution():
    model = random_frustrated(7, seed=3)
    p = boltzmann(model, 1.5)
    res = GibbsSampler().sample_model(model, beta=1.5, num_reads=20000, num_sweeps=60, order="random", seed=2)
    assert tvd(empirical(res.spins), p) < tvd_bound(p, 20000)


def test_wrong_beta_is_detected():
    """The TV test has power: samples at beta=1 do not pass as beta=1.3 samples."""
    model = random_frustrated(8, seed=4)
    res = GibbsSampler().sample_model(model, beta=1.0, num_reads=20000, num_sweeps=60, seed=1)
    p_wrong = boltzmann(model, 1.3)
    assert tvd(empirical(res.spins), p_wrong) > tvd_bound(p_wrong, 20000)


def test_energies_reported_are_model_energies():
    model = random_frustrated(9, seed=5)
    res = GibbsSampler().sample_model(model, beta=1.0, num_reads=50, num_sweeps=5, seed=0)
    np.testing.assert_allclose(res.energies, model.energy(res.spins), atol=1e-12)


@pytest.mark.parametrize("sampler_cls", [GibbsSampler, SimulatedAnnealingSampler])
def test_same_seed_same_sampleset_any_thread_count(sampler_cls, monkeypatch):
    bqm = spin_glass(zephyr_graph(1, 2), seed=1).to_bqm()
    kw = dict(num_reads=37, num_sweeps=40, seed=123, order="random")
    a = sampler_cls(num_threads=1).sample(bqm, **kw)
    b = sampler_cls(num_threads=2).sample(bqm, **kw)
    c = sampler_cls().sample(bqm, num_threads=3, **kw)
    monkeypatch.setenv("QBM_NUM_THREADS", "1")
    d = sampler_cls().sample(bqm, **kw)
    for other in (b, c, d):
        np.testing.assert_array_equal(a.record.sample, other.record.sample)
        np.testing.assert_array_equal(a.record.energy, other.record.energy)
    e = sampler_cls().sample(bqm, **{**kw, "seed": 124})
    assert not np.array_equal(a.record.sample, e.record.sample)


def test_persistent_chains_continue_and_reproduce():
    model = random_frustrated(10, seed=8)
    s = GibbsSampler()
    c1 = s.chains(16, seed=5, beta=1.0)
    c2 = s.chains(16, seed=5, beta=1.0)
    r1 = [c1.step(model, num_sweeps=3).spins for _ in range(3)]
    r2 = [c2.step(model, num_sweeps=3).spins for _ in range(3)]
    for a, b in zip(r1, r2):
        np.testing.assert_array_equal(a, b)
    # continuing = one longer run from the saved state with the same per-call seed
    state = c1.state_dict()
    c3 = s.chains(16, seed=0, beta=1.0)
    c3.load_state_dict(state)
    np.testing.assert_array_equal(c1.step(model, num_sweeps=2).spins, c3.step(model, num_sweeps=2).spins)


def test_persistent_chains_keep_state():
    """At very low temperature chains started in the ground state stay there."""
    model = IsingModel(np.zeros(6), -(np.ones((6, 6)) - np.eye(6)))
    s = GibbsSampler()
    chains = s.chains(8, seed=1, beta=20.0)
    chains.state = np.ones((8, 6), dtype=np.int8)
    r = chains.step(model, num_sweeps=5)
    assert np.all(r.spins == 1)


def test_dimod_composite_and_string_labels():
    bqm = dimod.BQM({"x": 1.0, "y": -0.5, "z": 0.2}, {("x", "y"): -1.0, ("y", "z"): 0.8}, 0.0, "SPIN")
    ss = dimod.TruncateComposite(SimulatedAnnealingSampler(), 3).sample(bqm, num_reads=20, seed=1)
    assert len(ss) == 3
    assert set(ss.variables) == {"x", "y", "z"}
    np.testing.assert_allclose(ss.record.energy, bqm.energies(ss))
    gs = dimod.ExactSolver().sample(bqm).first.energy
    assert ss.first.energy == pytest.approx(gs)


def test_qubo_and_ising_entry_points():
    s = SimulatedAnnealingSampler()
    ss = s.sample_qubo({(0, 0): -1.0, (1, 1): -1.0, (0, 1): 2.0}, num_reads=10, seed=0)
    assert ss.vartype is dimod.BINARY
    assert ss.first.energy == pytest.approx(-1.0)
    assert set(np.unique(ss.record.sample)) <= {0, 1}
    ss2 = GibbsSampler().sample_ising({"a": 1.0}, {("a", "b"): -1.0}, beta=5.0, num_reads=10, seed=0)
    np.testing.assert_allclose(ss2.record.energy, dimod.BQM.from_ising({"a": 1.0}, {("a", "b"): -1.0}).energies(ss2))
    assert "timing" in ss2.info and "flip_fraction" in ss2.info
    assert set(s.parameters) >= {"beta_range", "num_reads", "num_sweeps", "seed"}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"beta": 0.0}, "beta"),
        ({"beta": -1.0}, "beta"),
        ({"beta": float("nan")}, "beta"),
        ({"num_reads": 0}, "num_reads"),
        ({"num_sweeps": 0}, "num_sweeps"),
        ({"update": "glauber"}, "update"),
        ({"order": "backwards"}, "order"),
        ({"seed": -1}, "seed"),
        ({"num_threads": 0}, "num_threads"),
        ({"initial_states": np.ones((3, 4))}, "initial_states"),
        ({"initial_states": np.zeros((2, 3))}, "initial_states"),
    ],
)
def test_gibbs_bad_input(kwargs, match):
    model = random_frustrated(3, seed=0)
    with pytest.raises(ValueError, match=match):
        GibbsSampler().sample_model(model, **{"num_reads": 2, **kwargs})


def test_sampler_unknown_option_and_bad_schedules():
    bqm = dimod.BQM.from_ising({0: 1.0}, {(0, 1): 1.0})
    with pytest.raises(ValueError, match="num_sweep: unknown parameter"):
        GibbsSampler().sample(bqm, num_sweep=10)
    sa = SimulatedAnnealingSampler()
    model = IsingModel.from_bqm(bqm)
    with pytest.raises(ValueError, match="beta_range"):
        sa.sample_model(model, beta_range=(0.0, 1.0))
    with pytest.raises(ValueError, match="beta_schedule"):
        sa.sample_model(model, beta_schedule=[1.0, -2.0])
    with pytest.raises(ValueError, match="beta_schedule_type"):
        sa.sample_model(model, beta_schedule_type="cubic")
    with pytest.raises(TypeError, match="model"):
        GibbsSampler().sample_model(bqm)


def test_explicit_schedule_and_initial_states_from_sampleset():
    bqm = dimod.BQM.from_ising({"a": 0.0, "b": 0.0}, {("a", "b"): -1.0})
    init = dimod.SampleSet.from_samples(([[1, 1]] * 4, ["b", "a"]), "SPIN", energy=[0] * 4)
    ss = SimulatedAnnealingSampler().sample(bqm, beta_schedule=[5.0] * 3, num_reads=4, initial_states=init, seed=0)
    assert ss.info["beta_range"] == (5.0, 5.0)
    assert np.all(ss.record.energy == -1.0)


def test_ctrl_c_stops_a_long_call():
    model = spin_glass(zephyr_graph(4, 4), seed=0)
    timer = threading.Timer(0.3, _thread.interrupt_main)
    t0 = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        GibbsSampler().sample_model(model, num_reads=64, num_sweeps=10**7, seed=0)
    assert time.perf_counter() - t0 < 3.0
