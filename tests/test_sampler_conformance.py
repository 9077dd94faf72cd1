"""Every qbm sampler against dimod's own conformance suite, plus the properties every
sampler shares: seeds reproduce across thread counts, initial states are honoured
(dimod.Initialized semantics), Ctrl-C stops a long call, bad options name themselves."""

from __future__ import annotations

import unittest

import dimod
import dimod.testing
import numpy as np
import pytest

from helpers import interrupted_after
from qbm import IsingModel
from qbm.samplers import (
    GibbsSampler,
    ParallelTemperingSampler,
    RBMSampler,
    SimulatedAnnealingSampler,
    SchrodingerAnnealer,
    SQASampler,
)

# small, quick settings so that dimod's ~30 BQMs per sampler run in well under a second
FAST = {
    GibbsSampler: {"num_sweeps": 5},
    SimulatedAnnealingSampler: {"num_sweeps": 5},
    ParallelTemperingSampler: {"num_sweeps": 5, "num_replicas": 3},
    SQASampler: {"num_sweeps": 5, "num_trotter_slices": 4},
    RBMSampler: {"num_sweeps": 5},
    SchrodingerAnnealer: {"anneal_time_us": 0.001, "steps": 8},
}
ALL = list(FAST)
# the Markov-chain samplers (sweeps, dimod.Initialized); the Schrödinger annealer's seeds,
# threads and Ctrl-C are tested in test_schrodinger.py
MC = [c for c in ALL if c is not SchrodingerAnnealer]


class _Fast(dimod.Sampler):
    """Wraps a qbm sampler with short runs; the API under test is the wrapped one's."""

    def __init__(self, inner):
        self.inner = inner

    @property
    def parameters(self):
        return self.inner.parameters

    @property
    def properties(self):
        return self.inner.properties

    def sample(self, bqm, **kw):
        return self.inner.sample(bqm, **{**FAST[type(self.inner)], **kw})


def _bipartite_only(sampler_cls):
    """dimod's suite uses general BQMs; RBMSampler takes bipartite ones (the rest must be
    refused with a clear error, tested below)."""
    return sampler_cls is RBMSampler


for _cls in ALL:
    if _bipartite_only(_cls):
        continue

    @dimod.testing.load_sampler_bqm_tests(lambda c=_cls: _Fast(c(num_threads=1)))
    class _T(unittest.TestCase):
        pass

    _T.__name__ = _T.__qualname__ = f"TestDimodSuite{_cls.__name__}"
    globals()[_T.__name__] = _T
del _T


def _bipartite_bqms():
    """dimod-suite-like BQMs on bipartite graphs: empty, one variable, a path, K_{2,3},
    BINARY, string and tuple labels, offsets."""
    yield dimod.BQM("SPIN")
    yield dimod.BQM("BINARY")
    yield dimod.BQM({"a": 0.5}, {}, 1.5, "SPIN")
    yield dimod.BQM({0: -1.0}, {}, 0.0, "BINARY")
    yield dimod.BQM({0: 0.1, 1: -0.2, 2: 0.3}, {(0, 1): 1.0, (1, 2): -0.5}, -2.0, "SPIN")
    yield dimod.BQM.from_ising({}, {((0, "v"), ("h", k)): 0.3 * (k + 1) for k in range(3)} | {(1, ("h", 0)): -1.0})
    yield dimod.BQM({"x": 1.0, "y": -1.0, "z": 0.5}, {("x", "y"): 2.0, ("x", "z"): -1.0}, 0.25, "BINARY")


@pytest.mark.parametrize("bqm", list(_bipartite_bqms()), ids=lambda b: f"{b.vartype.name}{b.num_variables}")
def test_rbm_sampler_dimod_contract(bqm):
    """The checks of dimod's suite (assert_sampleset_energies, vartype, variables,
    num_reads) on bipartite BQMs, including empty and one-variable ones."""
    sampler = RBMSampler(num_threads=1)
    ss = sampler.sample(bqm, num_reads=7, num_sweeps=5, seed=1)
    dimod.testing.assert_sampleset_energies(ss, bqm)
    assert ss.vartype is bqm.vartype
    assert set(ss.variables) == set(bqm.variables)
    assert len(ss) == (7 if bqm.num_variables else 7)


def test_rbm_sampler_refuses_non_bipartite_with_the_cycle():
    bqm = dimod.BQM.from_ising({}, {("a", "b"): 1.0, ("b", "c"): 1.0, ("a", "c"): 1.0})
    with pytest.raises(ValueError, match="not bipartite.*odd cycle"):
        RBMSampler().sample(bqm)


@pytest.mark.parametrize("cls", ALL)
def test_sampler_api(cls):
    dimod.testing.assert_sampler_api(cls())
    # Markov-chain samplers start from initial states (dimod.Initialized); the Schrödinger
    # annealer starts from |+>^n or one basis state (initial_state), so it has no generator
    assert ("initial_states_generator" in cls().parameters) == (cls is not SchrodingerAnnealer)


@pytest.mark.parametrize("cls", ALL)
def test_empty_bqm_gives_empty_sampleset(cls):
    for vartype in ("SPIN", "BINARY"):
        ss = cls().sample(dimod.BQM(vartype), num_reads=3)
        assert len(ss.variables) == 0 and ss.vartype is dimod.as_vartype(vartype)


def _glass(n=12, seed=3):
    rng = np.random.default_rng(seed)
    j = np.zeros((n, n))
    for i in range(n):  # a bipartite ring-ish graph so RBMSampler takes it too
        for k in range(i + 1, n):
            if (i + k) % 2 == 1 and rng.random() < 0.5:
                j[i, k] = rng.normal()
    return IsingModel(rng.normal(size=n) * 0.3, j + j.T)


@pytest.mark.parametrize("cls", MC)
def test_seed_reproduces_on_any_thread_count(cls):
    m = _glass()
    kw = {**FAST[cls], "num_sweeps": 20, "num_reads": 37, "seed": 11}
    a = cls(num_threads=1).sample_model(m, **kw)
    b = cls(num_threads=2).sample_model(m, **kw)
    c = cls(num_threads=3).sample_model(m, **kw)
    assert np.array_equal(a.spins, b.spins) and np.array_equal(a.spins, c.spins)
    assert np.array_equal(a.energies, c.energies)
    d = cls(num_threads=1).sample_model(m, **{**kw, "seed": 12})
    assert not np.array_equal(a.spins, d.spins)


@pytest.mark.parametrize("cls", MC)
def test_initial_states_dimod_semantics(cls):
    """Fewer initial states than num_reads: 'tile' repeats them, 'none' refuses, the
    default ('random') fills the rest; num_reads defaults to their count. With zero
    sweeps' worth of change impossible to guarantee, the check is on a model whose
    initial state is a strict local minimum at low temperature for Gibbs-like samplers:
    here we only check the shape/label plumbing and refusal semantics."""
    bqm = dimod.BQM.from_ising({"a": 0.0, "b": 0.0}, {("a", "b"): -1.0})
    init = dimod.SampleSet.from_samples([{"a": 1, "b": 1}, {"a": -1, "b": -1}], "SPIN", 0)
    s = cls()
    ss = s.sample(bqm, initial_states=init, **FAST[cls], seed=1)
    assert len(ss) == 2
    ss = s.sample(bqm, initial_states=init, initial_states_generator="tile", num_reads=5, **FAST[cls], seed=1)
    assert len(ss) == 5
    with pytest.raises(ValueError):
        s.sample(bqm, initial_states=init, initial_states_generator="none", num_reads=5, **FAST[cls])
    with pytest.raises(ValueError, match="initial_states_generator"):
        s.sample(bqm, initial_states=init, initial_states_generator="bogus", num_reads=5, **FAST[cls])


@pytest.mark.parametrize("cls", [GibbsSampler, SimulatedAnnealingSampler, ParallelTemperingSampler, SQASampler])
def test_initial_states_are_where_chains_start(cls):
    """A chain that starts at a state of a strongly coupled ferromagnet at low
    temperature stays there: the initial state reached the core, row for row."""
    n = 6
    j = -3.0 * (np.ones((n, n)) - np.eye(n))
    m = IsingModel(np.zeros(n), j)
    init = np.ones((16, n), dtype=np.int8)
    init[::2] = -1
    kw = dict(FAST[cls], num_reads=16, initial_states=init, seed=2)
    if cls is SimulatedAnnealingSampler:
        kw["beta_range"] = (5.0, 10.0)
    elif cls is SQASampler:
        kw.update(beta=10.0, s=1.0)
    elif cls is ParallelTemperingSampler:
        kw.update(beta=10.0, beta_min=8.0)
    else:
        kw["beta"] = 10.0
    r = cls().sample_model(m, **kw)
    assert np.array_equal(r.spins, init)


@pytest.mark.parametrize("cls", ALL)
def test_wrong_types_are_type_errors_naming_the_parameter(cls):
    m = _glass()
    with pytest.raises(TypeError, match="num_reads"):
        cls().sample_model(m, num_reads="10")
    with pytest.raises(TypeError, match="seed"):
        cls().sample_model(m, num_reads=2, seed=1.5)
    with pytest.raises(ValueError, match="num_reads"):
        cls().sample_model(m, num_reads=0)
    with pytest.raises(ValueError, match="unknown parameter"):
        cls().sample(dimod.BQM.from_ising({0: 1.0}, {}), bogus=1)


@pytest.mark.parametrize("cls", [GibbsSampler, SimulatedAnnealingSampler, ParallelTemperingSampler, SQASampler])
def test_unknown_option_values_list_the_allowed_ones(cls):
    m = _glass()
    with pytest.raises(ValueError, match="order.*'random'"):
        cls().sample_model(m, num_reads=2, order="zigzag")
    with pytest.raises(TypeError, match="update"):
        cls().sample_model(m, num_reads=2, update=3)


def _long_kwargs(cls):
    big = {"num_reads": 4096, "num_sweeps": 10**6}
    if cls is ParallelTemperingSampler:
        big["num_replicas"] = 4
    if cls is SQASampler:
        big["num_trotter_slices"] = 8
    return big


@pytest.mark.parametrize("cls", MC)
def test_ctrl_c_stops_every_sampler_within_a_second(cls):
    m = _glass(40)
    assert interrupted_after(0.3, lambda: cls(num_threads=1).sample_model(m, **_long_kwargs(cls), seed=0)) < 1.5
