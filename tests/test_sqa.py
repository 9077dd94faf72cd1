"""SQASampler: slice marginals against exact diagonalisation, seeds, order, bad input."""

import numpy as np
import pytest

from qbm import IsingModel
from qbm.problems import spin_glass, zephyr_graph
from qbm.samplers import (
    SQASampler,
    trotter_coupling,
)
from helpers import all_states, boltzmann, empirical, random_frustrated, tvd, tvd_bound


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


def _trotter_marginal(model: IsingModel, beta: float, gamma: float, s: float, P: int) -> np.ndarray:
    """Exact one-slice marginal of the P-slice path integral (transfer matrix): the
    target of the discrete-time sampler, Trotter error included."""
    z = all_states(model.num_variables).astype(np.float64)
    e = model.energy(z.astype(np.int8))
    K = trotter_coupling(beta, gamma, s, P)
    M = np.exp(-beta * s / P * (e - e.min()))[:, None] * np.exp(K * (z @ z.T - z.shape[1]))
    d = np.diag(np.linalg.matrix_power(M / np.abs(M).max(), P))
    return d / d.sum()


@pytest.mark.parametrize("P", [64, 256])
@pytest.mark.parametrize("s,gamma,beta", [(0.7, 1.5, 3.0), (0.3, 2.0, 4.0), (0.5, 2.0, 8.0)])
def test_cluster_moves_equilibrate_in_50_sweeps_at_any_P(s, gamma, beta, P):
    """From random initial states, 50 sweeps of cluster moves reach the exact slice
    marginal within the sampling bound, however large P is (local moves freeze as the
    inter-slice coupling K grows with P)."""
    model = random_frustrated(5, seed=7, h_scale=0.5)
    reads = 10000
    p = _trotter_marginal(model, beta, gamma, s, P)
    assert tvd(p, _tfim_diagonal(model, beta, gamma, s)) < 0.01  # P large enough: Trotter error small
    r = SQASampler().sample_model(
        model, beta=beta, gamma=gamma, s=s, num_trotter_slices=P, num_sweeps=50, num_reads=reads, seed=P
    )
    assert r.info["moves"] == "cluster"
    assert tvd(empirical(r.spins), p) < tvd_bound(p, reads)


def test_local_moves_freeze_where_cluster_moves_do_not():
    model = random_frustrated(5, seed=7, h_scale=0.5)
    kw = dict(beta=3.0, gamma=1.5, s=0.7, num_trotter_slices=256, num_sweeps=50, num_reads=4000, seed=0)
    p = _trotter_marginal(model, 3.0, 1.5, 0.7, 256)
    local = tvd(empirical(SQASampler().sample_model(model, moves="local", **kw).spins), p)
    cluster = tvd(empirical(SQASampler().sample_model(model, moves="cluster", **kw).spins), p)
    assert local > 5 * tvd_bound(p, 4000) and cluster < tvd_bound(p, 4000)


@pytest.mark.parametrize("s,gamma,beta", [(0.7, 1.5, 3.0), (0.3, 2.0, 4.0), (0.5, 2.0, 8.0)])
def test_continuous_time_matches_exact_diagonalisation_in_50_sweeps(s, gamma, beta):
    model = random_frustrated(5, seed=7, h_scale=0.5)
    reads = 10000
    p = _tfim_diagonal(model, beta, gamma, s)
    r = SQASampler().sample_model(
        model, beta=beta, gamma=gamma, s=s, num_sweeps=50, num_reads=reads, seed=3, continuous_time=True
    )
    assert r.info["continuous_time"] and r.spins.shape == (reads, 5)
    assert tvd(empirical(r.spins), p) < tvd_bound(p, reads)
    assert np.allclose(r.energies, model.energy(r.spins))


def test_continuous_time_seeds_threads_and_annealing():
    model = random_frustrated(8, seed=2, h_scale=0.3)
    kw = dict(beta=4.0, gamma=2.0, num_sweeps=40, num_reads=33, seed=9, continuous_time=True)
    a = SQASampler(num_threads=1).sample_model(model, **kw)
    b = SQASampler(num_threads=2).sample_model(model, **kw)
    assert np.array_equal(a.spins, b.spins)
    c = SQASampler(num_threads=1).sample_model(model, **{**kw, "seed": 10})
    assert not np.array_equal(a.spins, c.spins)
    # annealing to s = 1 removes all kinks (no transverse field left)
    r = SQASampler().sample_model(model, beta=4.0, gamma=2.0, num_sweeps=200, num_reads=64, seed=0,
                                  continuous_time=True)  # fmt: skip
    assert r.info["final_s"] == 1.0 and r.info["mean_kinks_per_spin"] == 0.0
    with pytest.raises(ValueError, match="return_slices"):
        SQASampler().sample_model(model, num_reads=2, continuous_time=True, return_slices=True)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["cluster-64", "cluster-256", "continuous"])
def test_n10_slice_marginal_within_the_bound_after_50_sweeps(mode):
    model = random_frustrated(10, seed=4, h_scale=0.4, density=0.4)
    s, gamma, beta, reads = 0.5, 2.0, 3.0, 20000
    p = _tfim_diagonal(model, beta, gamma, s)
    kw = dict(beta=beta, gamma=gamma, s=s, num_sweeps=50, num_reads=reads, seed=1)
    if mode == "continuous":
        r = SQASampler().sample_model(model, continuous_time=True, **kw)
    else:
        P = int(mode.split("-")[1])
        r = SQASampler().sample_model(model, num_trotter_slices=P, **kw)
        p = _trotter_marginal(model, beta, gamma, s, P) if P < 256 else p
    assert tvd(empirical(r.spins), p) < tvd_bound(p, reads)
