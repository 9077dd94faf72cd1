"""How a VAE is judged: the importance-weighted (IW) test log-likelihood with the prior's
log partition function, the rate (KL) and distortion (reconstruction) of the ELBO, and
the number of active latent units.

IW estimate (Burda et al. 2016) with K posterior samples z_k ~ q(z|x):

    log p(x) ~= log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x)

a lower bound on log p(x) in expectation that tightens as K grows. For the BM-VAE,
p(z) = exp(-E(z)) / Z, so it needs log Z: exact by enumeration for n <= 20, by summing
the hidden side of an RBM-shaped prior out analytically and enumerating the other side
(up to 24 units there), and otherwise an AIS estimate with its standard error. With AIS
the IW number is an estimate, not a bound: AIS underestimates log Z on average, which
*raises* the BM prior's IW number (flatters it); it is reported with that caveat.

The IW estimate is defined for the hard-latent BM-VAE (Gumbel straight-through: the
decoder sees z in {-1, +1}^n). With the spike-and-exponential relaxation the decoder sees
continuous zeta, the generative model is a mixture over zeta, and the estimate here does
not apply: it is not reported (None) for that relaxation.

Digits are grey levels scored under a Bernoulli likelihood (binary cross-entropy with
non-binary targets is not a normalised density), so these numbers rank priors on this data
and are not comparable with published binarised-MNIST log-likelihoods.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from qbm.models.prior import BoltzmannPrior
from qbm.models.vae import BMVAE, GaussianVAE, reconstruction_loss

NOTE = (
    "IW log-likelihood in nats per image; digits are grey levels under a Bernoulli likelihood, so values rank "
    "priors on this data and are not comparable with published binarised-MNIST figures"
)


# ------------------------------------------------------------------ log partition function
def rbm_log_z(W: torch.Tensor, a: torch.Tensor, b: torch.Tensor, chunk: int = 1 << 15) -> torch.Tensor:
    """log Z of an RBM E(v, h) = a.v + b.h + v W h over +-1 units, summing the larger side
    out analytically (sum_h exp(-E) = exp(-a.v) prod_j 2 cosh(b_j + (W^T v)_j)) and
    enumerating the smaller side (at most 24 units). Differentiable."""
    if W.shape[0] > W.shape[1]:
        W, a, b = W.T, b, a
    nv = W.shape[0]
    if nv > 24:
        raise ValueError(f"prior: the enumerated side has {nv} units (> 24); use AIS")
    parts = []
    shifts = torch.arange(nv - 1, -1, -1)
    for start in range(0, 2**nv, chunk):
        idx = torch.arange(start, min(start + chunk, 2**nv))
        v = ((idx[:, None] >> shifts) & 1).to(W.device, W.dtype) * 2 - 1
        field = b + v @ W
        # log 2cosh(x) = log(e^x + e^-x) = |x| + log(1 + e^{-2|x|}), stable for large |x|
        lc = field.abs() + torch.log1p(torch.exp(-2 * field.abs()))
        parts.append(torch.logsumexp(-(v @ a) + lc.sum(1), 0))
    return torch.logsumexp(torch.stack(parts), 0)


def log_partition(prior: BoltzmannPrior, *, ais_chains: int = 512, ais_betas: int = 2000, seed: int = 0) -> dict:
    """{"log_z", "stderr", "method"}: exact enumeration (n <= 20), RBM half-enumeration
    (RBM graph, smaller side <= 24), or AIS (estimate with standard error)."""
    with torch.no_grad():
        if prior.n <= 20:
            return {"log_z": float(prior.exact_log_z()), "stderr": 0.0, "method": "exact (enumeration)"}
        form = prior.rbm_form()
        if form is not None and min(form[0].shape) <= 24:
            W, a, b = (torch.as_tensor(t, dtype=torch.float64) for t in form)
            return {"log_z": float(rbm_log_z(W, a, b)), "stderr": 0.0, "method": "exact (RBM half-enumeration)"}
    r = prior.ais_log_z(num_chains=ais_chains, num_betas=ais_betas, seed=seed)
    return {"log_z": r["log_z"], "stderr": r["stderr"], "method": f"AIS ({ais_chains} chains, {ais_betas} betas)"}


# --------------------------------------------------------------------------- IW estimate
def _bernoulli_log_q(z: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """log q(z|x) for z in {-1, +1}, q(z_i = +1) = sigmoid(l_i); sums the last axis."""
    return -torch.nn.functional.softplus(-z * logits).sum(-1)


IW_LADDER = (1, 10, 100, 1000, 5000)  # the sample sizes :func:`evaluate_vae` reports below its own K


@torch.no_grad()
def iw_loglik(
    model: BMVAE | GaussianVAE,
    x: torch.Tensor,
    num_samples: int,
    *,
    log_z: float | None = None,
    seed: int = 0,
    chunk: int = 8192,
) -> torch.Tensor | None:
    """Per-example IW estimates of log p(x) (B,) with ``num_samples`` posterior samples;
    None for a BM-VAE with the spike-and-exponential relaxation (see the module docs).
    ``log_z``: the BM prior's log Z (computed with :func:`log_partition` when None)."""
    out = iw_loglik_ladder(model, x, num_samples, (num_samples,), log_z=log_z, seed=seed, chunk=chunk)
    return None if out is None else out[num_samples]


@torch.no_grad()
def iw_loglik_ladder(
    model: BMVAE | GaussianVAE,
    x: torch.Tensor,
    num_samples: int,
    ks: Sequence[int],
    *,
    log_z: float | None = None,
    seed: int = 0,
    chunk: int = 8192,
) -> dict[int, torch.Tensor] | None:
    """:func:`iw_loglik` at every k in ``ks`` (each <= ``num_samples``) from one set of
    ``num_samples`` draws: the k-sample estimate uses the first k draws of each image, so the
    ladder costs what the largest K costs and shows how far the bound still moves with K
    (published binarised-MNIST numbers, Burda et al. 2015 Table 1, are at K = 5000).
    Returns {k: (B,)}."""
    if num_samples < 1:
        raise ValueError(f"num_samples: must be >= 1, got {num_samples}")
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1 or ks[-1] > num_samples:
        raise ValueError(f"ks: every k must be in [1, num_samples = {num_samples}], got {ks}")
    g = torch.Generator().manual_seed(seed)
    model.eval()
    out: dict[int, list[torch.Tensor]] = {k: [] for k in ks}

    def collect(logw: torch.Tensor) -> None:  # (K, B)
        for k in ks:
            out[k].append(torch.logsumexp(logw[:k], 0) - math.log(k))

    per = max(1, chunk // num_samples)
    if isinstance(model, BMVAE):
        if model.relaxation != "gumbel":
            return None
        lz = log_partition(model.prior)["log_z"] if log_z is None else float(log_z)
        for s in range(0, len(x), per):
            xb = x[s : s + per]
            logit = model.logits(xb)  # (B, n)
            u = torch.rand((num_samples, *logit.shape), generator=g, dtype=logit.dtype).to(logit.device)
            z = torch.where(u < torch.sigmoid(logit), 1.0, -1.0).to(logit.dtype)  # (K, B, n)
            flat = z.reshape(-1, z.shape[-1])
            rec = reconstruction_loss(model.decode(flat), xb.repeat(num_samples, 1, 1, 1), model.likelihood)
            log_px_z = -rec.reshape(num_samples, -1).to(torch.float64)
            log_pz = -model.prior.energy(flat).reshape(num_samples, -1) - lz
            log_q = _bernoulli_log_q(z, logit)
            collect(log_px_z + log_pz - log_q)
        return {k: torch.cat(v) for k, v in out.items()}
    for s in range(0, len(x), per):
        xb = x[s : s + per]
        mu, logvar = (t.to(torch.float64) for t in model.posterior(xb))
        std = torch.exp(0.5 * logvar)
        eps = torch.randn((num_samples, *mu.shape), generator=g, dtype=mu.dtype).to(mu.device)
        z = mu + std * eps
        rec = reconstruction_loss(model.decoder(z.reshape(-1, model.latent).float()), xb.repeat(num_samples, 1, 1, 1),
                                  model.likelihood)  # fmt: skip
        log_px_z = -rec.reshape(num_samples, -1).to(torch.float64)
        c = 0.5 * math.log(2 * math.pi)
        log_pz = (-0.5 * z**2 - c).sum(-1)
        log_q = (-0.5 * eps**2 - c - 0.5 * logvar).sum(-1)
        collect(log_px_z + log_pz - log_q)
    return {k: torch.cat(v) for k, v in out.items()}


@torch.no_grad()
def active_units(model: BMVAE | GaussianVAE, x: torch.Tensor, threshold: float = 0.01) -> int:
    """Units whose posterior mean varies across data: Cov_x(E_q[z_u | x]) > ``threshold``
    (Burda et al. 2016)."""
    m = model.encode_mean(x).to(torch.float64)
    return int((m.var(0, unbiased=True) > threshold).sum())


@torch.no_grad()
def evaluate_vae(
    model: BMVAE | GaussianVAE,
    x: torch.Tensor,
    *,
    num_samples: int,
    log_z: dict[str, Any] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """All test numbers of a VAE on ``x``: IW log-likelihood (mean over images), ELBO, its
    sampled reconstruction (distortion) and KL (rate), the reconstruction at the mode
    (most likely spins for the BM-VAE, posterior mean for the Gaussian VAE), active units."""
    g = torch.Generator().manual_seed(seed)
    model.eval()
    lz = log_z if log_z is not None else (log_partition(model.prior) if isinstance(model, BMVAE) else None)
    out = model.forward_losses(x, None, g, 0.0 if lz is None else lz["log_z"])
    mode_rec = float(reconstruction_loss(model.most_likely_logits(x), x, model.likelihood).mean())
    ks = [k for k in IW_LADDER if k < num_samples] + [num_samples]
    ladder = iw_loglik_ladder(model, x, num_samples, ks, log_z=None if lz is None else lz["log_z"], seed=seed + 1)
    iw = None if ladder is None else ladder[num_samples]
    res: dict[str, Any] = {
        "iw_loglik": None if iw is None else float(iw.mean()),
        "iw_samples": num_samples,
        # the same draws' estimate at each smaller K (how far the bound still moves with K)
        "iw_by_k": None if ladder is None else {str(k): float(v.mean()) for k, v in ladder.items()},
        "elbo": -(float(out["recon"]) + float(out["kl"])),
        "recon_sampled": float(out["recon"]),
        "kl": float(out["kl"]),
        "recon_at_mode": mode_rec,
        "mode": "most likely spins" if isinstance(model, BMVAE) else "posterior mean",
        "active_units": active_units(model, x),
    }
    if lz is not None:
        res.update({"log_z": lz["log_z"], "log_z_stderr": lz["stderr"], "log_z_method": lz["method"]})
        if lz["method"].startswith("AIS"):
            res["iw_note"] = "log Z from AIS: the IW value is an estimate, not a bound, and AIS bias flatters the prior"
    return res
