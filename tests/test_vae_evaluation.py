"""VAE evaluation against exact computations: the IW estimator against log p(x) by
enumerating every latent state, the RBM half-enumeration and AIS against full
enumeration, active units."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from qbm.models.evaluation import active_units, iw_loglik, log_partition, rbm_log_z
from qbm.models.prior import BoltzmannPrior
from qbm.models.vae import BMVAE, GaussianVAE, reconstruction_loss


def _tiny_bm(seed=0, latent=6, relaxation="gumbel"):
    torch.manual_seed(seed)
    m = BMVAE((1, 4, 4), latent, graph="full", arch="mlp", relaxation=relaxation, seed=seed)
    with torch.no_grad():
        m.prior.h.normal_(0, 0.3)
        m.prior.J.normal_(0, 0.2)
        # a posterior that is informative but overlaps the joint: p(x, z) / q(z | x) has
        # light tails, so the IW estimate converges at a K the test can afford
        for p in m.encoder.parameters():
            p.mul_(1.5)
        for p in m.decoder.parameters():
            p.mul_(2.0)
    return m


def _x(n=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand((n, 1, 4, 4), generator=g)


@torch.no_grad()
def _exact_log_px(m: BMVAE, x: torch.Tensor) -> torch.Tensor:
    z = m.prior.all_states()  # (2^n, n)
    log_pz = -m.prior.energy(z) - m.prior.exact_log_z()
    logits = m.decode(z)  # (2^n, C, H, W)
    out = []
    for xi in x:
        rec = reconstruction_loss(logits, xi.expand_as(logits), m.likelihood).to(torch.float64)
        out.append(torch.logsumexp(-rec + log_pz, 0))
    return torch.stack(out)


def test_iw_estimate_converges_to_exact_log_px():
    m = _tiny_bm()
    x = _x()
    exact = _exact_log_px(m, x)
    iw_big = iw_loglik(m, x, 20000, seed=0)
    iw_one = iw_loglik(m, x, 1, seed=0)
    assert torch.all((iw_big - exact).abs() < 0.05), (iw_big, exact)
    # K = 1 is an ELBO-like single-sample bound: lower on average
    assert float(iw_one.mean()) < float(iw_big.mean())
    # the bound holds in expectation: averaged over seeds at small K it is below the exact value
    small = torch.stack([iw_loglik(m, x, 5, seed=s) for s in range(40)]).mean(0)
    assert torch.all(small <= exact + 0.02)


def test_iw_ladder_is_the_prefix_of_one_draw_and_tightens_with_k():
    """Each rung k of the ladder is the k-sample estimate of the first k draws: equal to
    iw_loglik at K = k with the same seed (torch's uniform draws fill the (K, B, n) block in
    order, so the first k rows are what a k-draw call draws); the ladder's top equals the plain
    call, and the bound rises from k = 1 to the exact log p(x) (within noise at the top)."""
    from qbm.models.evaluation import iw_loglik_ladder

    m = _tiny_bm()
    x = _x()
    one = 3000 * len(x)  # every image in one chunk, so one (K, B, n) block of draws
    lad = iw_loglik_ladder(m, x, 3000, (1, 30, 300, 3000), seed=4, chunk=one)
    for k in (1, 30, 300):
        ref = iw_loglik(m, x, k, seed=4, chunk=k * len(x))
        torch.testing.assert_close(lad[k], ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(lad[3000], iw_loglik(m, x, 3000, seed=4, chunk=one), rtol=0, atol=0)
    means = [float(lad[k].mean()) for k in (1, 30, 300, 3000)]
    exact = float(_exact_log_px(m, x).mean())
    assert means[0] < means[1] - 0.5 and means[1] < exact + 0.02, (means, exact)
    assert abs(means[-1] - exact) < 0.05, (means, exact)
    with pytest.raises(ValueError, match="ks"):
        iw_loglik_ladder(m, x, 10, (20,))


def test_iw_not_reported_for_spike_and_exponential():
    assert iw_loglik(_tiny_bm(relaxation="spike_exp"), _x(), 10) is None


def test_gaussian_vae_iw_is_consistent():
    torch.manual_seed(0)
    m = GaussianVAE((1, 4, 4), 2, arch="mlp", seed=0)
    x = _x()
    a = iw_loglik(m, x, 3000, seed=0)
    b = iw_loglik(m, x, 3000, seed=1)
    # two independent large-K estimates agree; K=1 is lower on average
    assert torch.all((a - b).abs() < 0.1)
    assert float(iw_loglik(m, x, 1, seed=0).mean()) < float(a.mean())
    # against numerical integration over the 2-D latent on a grid
    grid = torch.linspace(-6, 6, 241, dtype=torch.float64)
    zz = torch.cartesian_prod(grid, grid)
    dz = float(grid[1] - grid[0]) ** 2
    with torch.no_grad():
        logits = m.decoder(zz.float())
        log_pz = (-0.5 * zz**2 - 0.5 * math.log(2 * math.pi)).sum(1)
        for i, xi in enumerate(x):
            rec = reconstruction_loss(logits, xi.expand_as(logits), m.likelihood).to(torch.float64)
            exact = torch.logsumexp(-rec + log_pz, 0) + math.log(dz)
            assert abs(float(a[i]) - float(exact)) < 0.05


@pytest.mark.parametrize("nv,nh", [(8, 8), (5, 11), (12, 6)])
def test_half_enumeration_matches_full_enumeration(nv, nh):
    p = BoltzmannPrior(nv + nh, "full", init_scale=0.0, seed=0)
    g = torch.Generator().manual_seed(nv * 100 + nh)
    W = torch.randn(nv, nh, generator=g, dtype=torch.float64) * 0.4
    a = torch.randn(nv, generator=g, dtype=torch.float64) * 0.3
    b = torch.randn(nh, generator=g, dtype=torch.float64) * 0.3
    z = p.all_states()
    v, h = z[:, :nv], z[:, nv:]
    e = v @ a + h @ b + ((v @ W) * h).sum(1)
    assert float(rbm_log_z(W, a, b)) == pytest.approx(float(torch.logsumexp(-e, 0)), abs=1e-9)


def test_log_partition_methods_agree():
    p = BoltzmannPrior(16, "rbm", init_scale=0.5, seed=3)
    exact = log_partition(p)
    assert exact["method"].startswith("exact (enumeration)")
    W, a, b = (torch.as_tensor(t) for t in p.rbm_form())
    assert float(rbm_log_z(W, a, b)) == pytest.approx(exact["log_z"], abs=1e-9)
    ais = p.ais_log_z(num_chains=512, num_betas=1000, seed=0)
    assert abs(ais["log_z"] - exact["log_z"]) < 4 * ais["stderr"] + 0.02
    big = BoltzmannPrior(40, "rbm", init_scale=0.3, seed=1)
    r = log_partition(big)
    assert r["method"] == "exact (RBM half-enumeration)"
    ais = big.ais_log_z(num_chains=512, num_betas=2000, seed=0)
    assert abs(ais["log_z"] - r["log_z"]) < 4 * ais["stderr"] + 0.05
    z = BoltzmannPrior(24, "zephyr", init_scale=0.3, seed=1)
    assert log_partition(z, ais_chains=64, ais_betas=100)["method"].startswith("AIS")


def test_active_units_counts_varying_posterior_means():
    m = _tiny_bm()
    x = _x(50)
    assert active_units(m, x) == 0  # near-uniform posteriors: nothing encoded
    with torch.no_grad():
        for p in m.encoder.parameters():
            p.mul_(4.0)
    n_active = active_units(m, x)
    assert 0 < n_active <= 6
    with torch.no_grad():  # a dead encoder: constant posterior means
        for p in m.encoder.parameters():
            p.zero_()
    assert active_units(m, x) == 0
    assert np.isfinite(float(iw_loglik(m, x, 5).mean()))


def test_sparse_prior_energy_in_the_core_matches_torch():
    """Large sparse priors take the core's edge loop (qbm._core.pair_energies): energies
    and gradients for z, h and J equal the torch gather formula, on 1 or 2 threads."""
    import numpy as np
    import torch

    from qbm import _core
    from qbm.models.prior import BoltzmannPrior

    edges = [(k, (k + 1) % 300) for k in range(300)] + [(k, (k + 7) % 300) for k in range(0, 300, 3)]
    p = BoltzmannPrior(300, edges, seed=1, init_scale=0.3)
    assert p.n * p.n > 128 * p.num_edges  # the sparse path
    z = torch.where(torch.rand(257, 300, generator=torch.Generator().manual_seed(0)) < 0.4, 1.0, -1.0)
    z = z.double().requires_grad_(True)
    e = p.energy(z)
    i, j = p.edges[:, 0], p.edges[:, 1]
    z2 = z.detach().clone().requires_grad_(True)
    ref = -(z2 @ p.h) - (z2[:, i] * z2[:, j] * p.J).sum(-1)
    np.testing.assert_allclose(e.detach().numpy(), ref.detach().numpy(), atol=1e-10)
    w = torch.linspace(-1, 1, 257, dtype=torch.float64)
    g = torch.autograd.grad((e * w).sum(), [z, p.h, p.J])
    r = torch.autograd.grad((ref * w).sum(), [z2, p.h, p.J])
    for a, b in zip(g, r):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-10)
    args = (z.detach().numpy(), p.h.detach().numpy(), p.edges.numpy(), p.J.detach().numpy(), w.numpy(), True)
    one = _core.pair_energy_grad(*args, num_threads=1)
    two = _core.pair_energy_grad(*args, num_threads=2)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="edges"):
        _core.pair_energies(z.detach().numpy(), p.h.detach().numpy(), np.array([[0, 0]]), np.ones(1))


def test_ais_log_z_of_a_large_prior_matches_the_exact_tree_decomposition():
    """AIS on a 300-spin prior with couplings stronger than a trained digits prior's
    (|J| about 0.5 vs 0.11 there) on a ladder graph of treewidth 2, where dwave-samplers'
    TreeDecompositionSampler gives log Z exactly: within 4 reported standard errors."""
    import numpy as np
    import torch
    from dwave.samplers import TreeDecompositionSampler

    from qbm.models.prior import BoltzmannPrior

    n = 300
    half = n // 2
    edges = [(k, k + 1) for k in range(half - 1)] + [(half + k, half + k + 1) for k in range(half - 1)]
    edges += [(k, half + k) for k in range(half)] + [(k, half + k + 1) for k in range(0, half - 1, 3)]
    p = BoltzmannPrior(n, edges, seed=0)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        p.h.copy_(0.3 * torch.randn(n, generator=g, dtype=torch.float64))
        p.J.copy_(0.6 * torch.randn(len(edges), generator=g, dtype=torch.float64))
    ising = p.to_ising()
    bqm = ising.to_bqm()
    exact = TreeDecompositionSampler().sample(bqm, beta=1.0, num_reads=1).info["log_partition_function"]
    # the prior's own energy and the BQM's agree (sign conventions), checked on a few states
    z = np.where(np.random.default_rng(0).random((4, n)) < 0.5, -1, 1)
    e_bqm = [bqm.energy(dict(zip(ising.labels, row))) for row in z]
    np.testing.assert_allclose(p.energy(torch.as_tensor(z, dtype=torch.float64)).detach().numpy(), e_bqm, atol=1e-9)
    est = p.ais_log_z(num_chains=256, num_betas=2000, seed=1)
    assert est["stderr"] < 0.5
    assert abs(est["log_z"] - exact) < 4 * est["stderr"] + 0.02, (est, exact)
