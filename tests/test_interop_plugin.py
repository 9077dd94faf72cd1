"""dwave-pytorch-plugin interop against the real plugin: model round trips on energies,
and qbm's sampler and the plugin's BlockSampler drawing the same exact distribution."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("dwave.plugins.torch")

from dwave.plugins.torch.samplers import BlockSampler  # noqa: E402

from helpers import all_states, empirical, tvd, tvd_bound  # noqa: E402
from qbm.interop.plugin import QbmSampler, grbm_to_ising, grbm_to_prior, prior_to_grbm  # noqa: E402
from qbm.models.prior import BoltzmannPrior  # noqa: E402


@pytest.mark.parametrize("graph", ["rbm", "zephyr", "full"])
def test_round_trip_preserves_energies(graph):
    prior = BoltzmannPrior(10, graph, init_scale=0.7, seed=2)
    grbm = prior_to_grbm(prior)
    z = torch.as_tensor(all_states(10), dtype=torch.float64)
    e_prior = prior.energy(z).detach()
    e_grbm = grbm(z.to(grbm.linear.dtype)).detach().to(torch.float64)
    assert torch.allclose(e_prior, e_grbm, atol=1e-5)
    back = grbm_to_prior(grbm)
    assert torch.allclose(back.energy(z).detach(), e_prior, atol=1e-5)
    assert torch.allclose(prior_to_grbm(back).theta, grbm.theta)
    # the Ising form samples exp(-H): its energies are the GRBM's
    assert np.allclose(grbm_to_ising(grbm).energy(all_states(10)), e_grbm.numpy(), atol=1e-5)


def _exact(prior: BoltzmannPrior) -> np.ndarray:
    z = torch.as_tensor(all_states(prior.n), dtype=torch.float64)
    w = torch.softmax(-prior.energy(z).detach(), 0)
    return w.numpy()


def test_qbm_sampler_and_plugin_block_sampler_agree_with_exact():
    prior = BoltzmannPrior(6, "full", init_scale=0.5, seed=4)
    p = _exact(prior)
    grbm = prior_to_grbm(prior)
    n = 6000
    qs = QbmSampler(grbm, n, num_sweeps=30, seed=1)
    s = qs.sample()
    assert s.shape == (n, 6) and s.dtype == grbm.linear.dtype
    assert tvd(empirical(s.numpy().astype(np.int8)), p) < tvd_bound(p, n)
    # the plugin's own sampler on the converted model draws the same distribution
    bs = BlockSampler(grbm, lambda v: v, n, schedule=[1.0] * 30, seed=1)
    sb = bs.sample().detach().numpy().astype(np.int8)
    assert tvd(empirical(sb), p) < tvd_bound(p, n)
    # persistent chains continue; same seed reproduces
    s2 = qs.sample()
    assert not torch.equal(s, s2)
    again = QbmSampler(grbm, n, num_sweeps=30, seed=1).sample()
    assert torch.equal(again, s)


def test_counts_must_be_integers():
    grbm = prior_to_grbm(BoltzmannPrior(4, "full", seed=0))
    with pytest.raises(TypeError, match="num_chains"):
        QbmSampler(grbm, 2.7)
    with pytest.raises(ValueError, match="num_sweeps"):
        QbmSampler(grbm, 4, num_sweeps=0)
    with pytest.raises(ValueError, match="beta"):
        QbmSampler(grbm, 4, beta=-1.0)
