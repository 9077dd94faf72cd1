"""SimulatedAnnealingSampler: ground states against brute force and planted solutions, schedules."""

import numpy as np
import pytest

from qbm import IsingModel
from qbm.problems import spin_glass, zephyr_graph
from qbm.samplers import SimulatedAnnealingSampler, default_beta_range
from helpers import all_states, random_frustrated


def test_sa_finds_brute_force_ground_state():
    for seed in range(5):
        model = random_frustrated(12, seed=100 + seed, density=0.7)
        e_min = model.energy(all_states(12)).min()
        res = SimulatedAnnealingSampler().sample_model(model, num_reads=32, num_sweeps=500, seed=seed)
        assert res.energies.min() == pytest.approx(e_min, abs=1e-9)


def test_sa_finds_planted_ground_state_on_zephyr():
    g = zephyr_graph(2, 4)
    nodes = sorted(g.nodes)
    idx = {v: k for k, v in enumerate(nodes)}
    rng = np.random.default_rng(0)
    star = rng.choice([-1, 1], size=len(nodes))
    J = {}
    for u, v in g.edges:
        J[(idx[u], idx[v])] = -rng.uniform(0.5, 1.0) * star[idx[u]] * star[idx[v]]
    h = {i: -0.1 * star[i] for i in range(len(nodes))}
    model = IsingModel(h, J)
    res = SimulatedAnnealingSampler().sample_model(model, num_reads=16, num_sweeps=1000, seed=3)
    best = res.spins[np.argmin(res.energies)]
    np.testing.assert_array_equal(best, star)


def test_default_beta_range_is_sensible():
    model = spin_glass(zephyr_graph(1, 2), seed=0)
    hot, cold = default_beta_range(model)
    assert 0 < hot < cold
    assert np.exp(-hot * 2 * model.max_abs_field()) == pytest.approx(0.5)
