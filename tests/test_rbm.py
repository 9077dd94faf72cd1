"""RBMSampler: block Gibbs against exact enumeration, clamping, the Ising path, dimod, bad input."""

import dimod
import numpy as np
import pytest

from qbm.rbm import RBM
from qbm.samplers import (
    GibbsSampler,
    RBMSampler,
)
from helpers import all_states, empirical, tvd, tvd_bound


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


def test_rbm_mixed_kernel_sizes_match_exact_conditional():
    """Mixed kernel sizes: 64 visible units (their fields summed over active rows) and 6
    hidden units (fields computed lane-major). Clamping 60 visible units leaves 10 free
    units whose conditional distribution is enumerable."""
    rng = np.random.default_rng(5)
    nv, nh, free = 64, 6, [3, 17, 40, 63]
    rbm = RBM(rng.normal(0, 0.25, (nv, nh)), rng.normal(0, 0.3, nv), rng.normal(0, 0.3, nh))
    clamp = np.ones(nv, bool)
    clamp[free] = False
    values = np.where(rng.random(nv) < 0.5, 1, -1).astype(np.int8)
    s = all_states(len(free) + nh)
    v = np.tile(values, (len(s), 1))
    v[:, free] = s[:, : len(free)]
    e = rbm.energy(v, s[:, len(free) :])
    p = np.exp(-(e - e.min()))
    p /= p.sum()
    reads = 20000
    r = RBMSampler().sample_model(
        rbm, num_reads=reads, num_sweeps=30, initial_states=np.tile(values, (reads, 1)), clamp=clamp, seed=4
    )
    assert np.all(r.spins[:, :nv][:, clamp] == values[clamp])
    got = np.concatenate([r.spins[:, free], r.spins[:, nv:]], axis=1)
    assert tvd(empirical(got), p) < tvd_bound(p, reads)
