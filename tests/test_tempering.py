"""ParallelTemperingSampler: target replica against exact enumeration, ladders, seeds, bad input."""

import numpy as np
import pytest

from qbm.problems import spin_glass, zephyr_graph
from qbm.samplers import (
    GibbsSampler,
    ParallelTemperingSampler,
    geometric_ladder,
)
from helpers import boltzmann, empirical, random_frustrated, tvd, tvd_bound


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
