"""Parallel tempering, simulated quantum annealing and RBM block Gibbs against exact
enumeration / exact diagonalisation; seeds; bad input."""

import dimod
import numpy as np
import pytest

from qbm import IsingModel
from qbm.problems import spin_glass, zephyr_graph
from qbm.rbm import RBM
from qbm.samplers import (
    GibbsSampler,
    ParallelTemperingSampler,
    RBMSampler,
    SQASampler,
    geometric_ladder,
    trotter_coupling,
)
from helpers import all_states, boltzmann, empirical, random_frustrated, tvd, tvd_bound


# ---------------------------------------------------------------- parallel tempering
def _glassy_model():
    """A frustrated 10-spin model with strong couplings: at beta=3 single-spin chains
    stay trapped for hundreds of sweeps."""
    return random_frustrated(10, seed=2, density=0.7, h_scale=0.2)


def test_pt_target_replica_matches_exact_where_gibbs_fails():
    model = _glassy_model()
    beta, reads, sweeps = 3.0, 6000, 300
    p = boltzmann(model, beta)
    bound = tvd_bound(p, reads)
    pt = ParallelTemperingSampler().sample_model(
        model, beta=beta, beta_min=0.2, num_replicas=8, num_reads=reads, num_sweeps=sweeps, seed=3
    )
    gibbs = GibbsSampler().sample_model(model, beta=beta, num_reads=reads, num_sweeps=sweeps, seed=3)
    d_pt, d_gibbs = tvd(empirical(pt.spins), p), tvd(empirical(gibbs.spins), p)
    assert d_pt < bound, f"PT TV {d_pt:.4f} vs bound {bound:.4f}"
    assert d_gibbs > 2 * bound, f"this model should defeat plain Gibbs (TV {d_gibbs:.4f})"
    acc = pt.info["swap_acceptance"]
    assert acc.shape == (7,) and np.all((acc >= 0) & (acc <= 1))
    np.testing.assert_allclose(pt.energies, model.energy(pt.spins), atol=1e-9)


def test_pt_all_replicas_and_sampleset():
    model = random_frustrated(6, seed=1)
    res = ParallelTemperingSampler().sample_model(
        model, beta=2.0, num_replicas=4, num_reads=3, num_sweeps=20, seed=0, return_replicas=True
    )
    assert res.spins.shape == (12, 6)
    np.testing.assert_allclose(res.vectors["beta"][:4], res.info["betas"])
    np.testing.assert_allclose(res.energies, model.energy(res.spins), atol=1e-9)
    ss = ParallelTemperingSampler().sample(
        model.to_bqm(), num_reads=3, num_sweeps=20, seed=0, return_replicas=True, num_replicas=4, beta=2.0
    )
    assert "beta" in ss.record.dtype.names and len(ss) == 12


def test_pt_adaptive_ladder_equalises_acceptance():
    model = spin_glass(zephyr_graph(2, 4), seed=4)
    kw = dict(beta=3.0, beta_min=0.03, num_replicas=8, num_reads=16, num_sweeps=600, seed=2)
    fixed = ParallelTemperingSampler().sample_model(model, **kw)
    adapt = ParallelTemperingSampler().sample_model(model, adaptive=True, adapt_sweeps=1000, adapt_interval=100, **kw)
    a_fixed, a_adapt = fixed.info["swap_acceptance"], adapt.info["swap_acceptance"]
    spread = lambda a: (a.max() - a.min()) / a.mean()  # noqa: E731
    assert spread(a_adapt) < 0.6, a_adapt
    assert spread(a_adapt) < 0.5 * spread(a_fixed), (a_fixed, a_adapt)
    b = adapt.info["betas"]
    assert b[0] == pytest.approx(0.03) and b[-1] == pytest.approx(3.0) and np.all(np.diff(b) > 0)


def test_pt_seeds_and_threads():
    model = spin_glass(zephyr_graph(1, 2), seed=3)
    kw = dict(beta=2.0, num_reads=11, num_sweeps=30, seed=9, adaptive=True, adapt_sweeps=20, adapt_interval=5)
    a = ParallelTemperingSampler(num_threads=1).sample_model(model, **kw)
    b = ParallelTemperingSampler(num_threads=2).sample_model(model, **kw)
    np.testing.assert_array_equal(a.spins, b.spins)
    np.testing.assert_array_equal(a.info["betas"], b.info["betas"])
    c = ParallelTemperingSampler().sample_model(model, **{**kw, "seed": 10})
    assert not np.array_equal(a.spins, c.spins)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"betas": [1.0, 0.5]}, "betas"),
        ({"betas": [1.0]}, "betas"),
        ({"beta_min": 3.0, "beta": 2.0}, "beta_min"),
        ({"num_replicas": 1}, "num_replicas"),
        ({"swap_interval": 0}, "swap_interval"),
        ({"beta": -1.0}, "beta"),
        ({"adapt_sweeps": 10}, "adapt_sweeps"),
        ({"num_reads": 0}, "num_reads"),
    ],
)
def test_pt_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ParallelTemperingSampler().sample_model(random_frustrated(3, 0), **kwargs)


def test_geometric_ladder():
    lad = geometric_ladder(0.1, 10.0, 3)
    np.testing.assert_allclose(lad, [0.1, 1.0, 10.0])


# ---------------------------------------------------------------- SQA
def _tfim_diagonal(model: IsingModel, beta: float, gamma: float, s: float) -> np.ndarray:
    """Diagonal of exp(-beta H(s)) / Tr, H(s) = s H_p - (1 - s) Gamma sum_i X_i, in the
    basis order of helpers.all_states."""
    n = model.num_variables
    e = model.energy(all_states(n))
    X, I2 = np.array([[0.0, 1.0], [1.0, 0.0]]), np.eye(2)
    H = s * np.diag(e)
    for i in range(n):
        op = np.array([[1.0]])
        for k in range(n):
            op = np.kron(op, X if k == i else I2)
        H = H - (1 - s) * gamma * op
    w, v = np.linalg.eigh(H)
    rho = (v * np.exp(-beta * (w - w.min()))) @ v.T
    d = np.diag(rho)
    return d / d.sum()


def test_sqa_slice_marginal_converges_to_exact_diagonal():
    model = random_frustrated(4, seed=11, h_scale=0.5)
    beta, gamma, s, reads = 2.0, 1.0, 0.5, 20000
    p = _tfim_diagonal(model, beta, gamma, s)
    bound = tvd_bound(p, reads)
    err = {}
    for P in (2, 16):
        r = SQASampler().sample_model(
            model,
            beta=beta,
            gamma=gamma,
            s=s,
            num_trotter_slices=P,
            num_sweeps=150,
            num_reads=reads,
            seed=P,
            return_slices=True,
        )
        err[P] = tvd(empirical(r.spins), p)
    assert err[16] < bound, err
    assert err[2] > 2 * bound and err[2] > 3 * err[16], err
    # the quantum marginal differs from the classical Boltzmann distribution at beta*s
    assert tvd(boltzmann(model, beta * s), p) > 3 * bound


def test_sqa_single_slice_is_unbiased():
    model = random_frustrated(4, seed=5, h_scale=0.5)
    p = _tfim_diagonal(model, 2.0, 1.0, 0.6)
    r = SQASampler().sample_model(
        model, beta=2.0, gamma=1.0, s=0.6, num_trotter_slices=16, num_sweeps=150, num_reads=20000, seed=1
    )
    assert r.spins.shape == (20000, 4)
    assert tvd(empirical(r.spins), p) < tvd_bound(p, 20000)
    assert len(np.unique(r.info["chosen_slice"])) == 16


def test_sqa_anneal_finds_ground_states():
    for seed in range(3):
        model = random_frustrated(12, seed=200 + seed, density=0.6)
        e_min = model.energy(all_states(12)).min()
        r = SQASampler().sample_model(
            model, beta=10.0, gamma=2.0, num_trotter_slices=8, num_sweeps=400, num_reads=16, seed=seed
        )
        assert r.energies.min() == pytest.approx(e_min, abs=1e-9)
        assert r.info["final_s"] == 1.0


def test_sqa_seeds_threads_and_trotter_coupling():
    model = spin_glass(zephyr_graph(1, 2), seed=0)
    kw = dict(num_reads=13, num_sweeps=30, seed=4, num_trotter_slices=4)
    a = SQASampler(num_threads=1).sample_model(model, **kw)
    b = SQASampler(num_threads=2).sample_model(model, **kw)
    np.testing.assert_array_equal(a.spins, b.spins)
    assert not np.array_equal(a.spins, SQASampler().sample_model(model, **{**kw, "seed": 5}).spins)
    assert trotter_coupling(2.0, 1.0, 0.5, 4) == pytest.approx(-0.5 * np.log(np.tanh(0.25)))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"beta": 0.0}, "beta"),
        ({"gamma": -1.0}, "gamma"),
        ({"num_trotter_slices": 0}, "num_trotter_slices"),
        ({"s_schedule": [0.5, 1.5]}, "s_schedule"),
        ({"s": 0.5, "s_schedule": [0.5]}, "s_schedule"),
        ({"update": "wolff"}, "update"),
    ],
)
def test_sqa_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SQASampler().sample_model(random_frustrated(3, 0), **kwargs)


# ---------------------------------------------------------------- RBM
def _rbm(seed=0, nv=6, nh=4):
    rng = np.random.default_rng(seed)
    return RBM(rng.normal(0, 0.7, (nv, nh)), rng.normal(0, 0.3, nv), rng.normal(0, 0.3, nh))


def _rbm_exact(rbm: RBM, beta: float = 1.0) -> np.ndarray:
    nv, nh = rbm.num_visible, rbm.num_hidden
    s = all_states(nv + nh)
    e = rbm.energy(s[:, :nv], s[:, nv:])
    w = np.exp(-beta * (e - e.min()))
    return w / w.sum()


def test_rbm_block_gibbs_matches_exact():
    rbm = _rbm()
    p = _rbm_exact(rbm, 1.0)
    r = RBMSampler().sample_model(rbm, num_reads=30000, num_sweeps=30, seed=1)
    assert r.spins.shape == (30000, 10)
    assert tvd(empirical(r.spins), p) < tvd_bound(p, 30000)
    np.testing.assert_allclose(r.energies, rbm.energy(r.spins[:, :6], r.spins[:, 6:]), atol=1e-9)


def test_rbm_clamped_matches_exact_conditional():
    rbm = _rbm(seed=3)
    p = _rbm_exact(rbm)
    s = all_states(10)
    clamp = np.array([True, True, False, True, False, False])
    values = np.array([1, -1, 1, 1, 1, 1], dtype=np.int8)
    keep = np.all(s[:, :6][:, clamp] == values[clamp], axis=1)
    cond = np.where(keep, p, 0.0)
    cond /= cond.sum()
    reads = 20000
    init = np.tile(values, (reads, 1))
    r = RBMSampler().sample_model(rbm, num_reads=reads, num_sweeps=30, initial_states=init, clamp=clamp, seed=2)
    assert np.all(r.spins[:, :6][:, clamp] == values[clamp])
    assert tvd(empirical(r.spins), cond) < tvd_bound(cond, reads)


def test_rbm_and_general_ising_paths_agree():
    rbm = _rbm(seed=4)
    p = _rbm_exact(rbm)
    model = rbm.to_ising()
    g = GibbsSampler().sample_model(model, num_reads=20000, num_sweeps=60, seed=0)
    assert tvd(empirical(g.spins), p) < tvd_bound(p, 20000)
    r = RBMSampler().sample_model(model, visible=[("v", i) for i in range(6)], num_reads=20000, num_sweeps=30, seed=0)
    assert tvd(empirical(r.spins), p) < tvd_bound(p, 20000)
    np.testing.assert_allclose(model.energy(all_states(10)), rbm.energy(all_states(10)[:, :6], all_states(10)[:, 6:]))


def test_rbm_dimod_interface_and_seeds():
    rbm = _rbm(seed=5)
    bqm = rbm.to_ising().to_bqm()
    ss = RBMSampler().sample(bqm, num_reads=20, num_sweeps=5, seed=3)
    np.testing.assert_allclose(ss.record.energy, bqm.energies(ss))
    a = RBMSampler(num_threads=1).sample_model(rbm, num_reads=21, num_sweeps=7, seed=8)
    b = RBMSampler(num_threads=2).sample_model(rbm, num_reads=21, num_sweeps=7, seed=8)
    np.testing.assert_array_equal(a.spins, b.spins)
    triangle = dimod.BQM.from_ising({}, {(0, 1): 1.0, (1, 2): 1.0, (0, 2): 1.0})
    with pytest.raises(ValueError, match="not bipartite"):
        RBMSampler().sample(triangle)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: RBM(np.zeros((0, 3))), "W"),
        (lambda: RBM(np.full((2, 2), np.nan)), "W"),
        (lambda: RBM(np.zeros((2, 2)), a=np.zeros(3)), "a"),
        (lambda: RBMSampler().sample_model(_rbm(), clamp=np.ones(6, bool)), "clamp"),
        (lambda: RBMSampler().sample_model(_rbm(), beta=0), "beta"),
        (lambda: RBMSampler().sample_model(_rbm(), num_reads=2, initial_states=np.ones((3, 6))), "initial_states"),
    ],
)
def test_rbm_bad_input(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_sqa_random_order_reshuffles_and_matches_exact():
    """order='random' is a fresh permutation every sweep (it used to run sequential order
    silently): a different chain from 'sequential' with the same seed, same marginal."""
    model = random_frustrated(4, seed=5, h_scale=0.5)
    p = _tfim_diagonal(model, 2.0, 1.0, 0.6)
    kw = dict(beta=2.0, gamma=1.0, s=0.6, num_trotter_slices=16, num_sweeps=150, num_reads=20000, seed=3)
    seq = SQASampler().sample_model(model, order="sequential", **kw)
    rnd = SQASampler().sample_model(model, order="random", **kw)
    assert not np.array_equal(seq.spins, rnd.spins)
    assert rnd.info["order"] == "random"
    assert tvd(empirical(rnd.spins), p) < tvd_bound(p, 20000)
