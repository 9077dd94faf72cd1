"""Variational autoencoders with a Boltzmann-machine prior (BM-VAE) or a standard normal
prior (Gaussian VAE), sharing encoder and decoder architectures.

BM-VAE (Rolfe 2016; Khoshaman et al. 2018; Kim & Park 2026): the encoder gives Bernoulli
logits l for n spins z in {-1, +1}; q(z|x) = prod_i sigmoid(+-l_i). Loss per example
  recon(x, z) + KL,   KL = -H(q) + E_q[E(z)] + log Z,
with E_q[E(z)] in closed form (E is multilinear and q factorises: plug in the means
tanh(l / 2)) and the log Z gradient supplied by the quasi-objective -mean E(z_model) with
model samples from a qbm sampler (the negative phase). Backprop through the discrete z
uses a hard Gumbel-softmax straight-through relaxation (temperature ``tau``) or the DVAE
spike-and-exponential smoothing.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from qbm.models.prior import BoltzmannPrior


def mlp_encoder(in_dim: int, out_dim: int, hidden: tuple[int, ...] = (256, 128)) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]
    d = in_dim
    for h in hidden:
        layers += [nn.Linear(d, h), nn.ReLU()]
        d = h
    layers.append(nn.Linear(d, out_dim))
    return nn.Sequential(*layers)


def mlp_decoder(latent: int, shape: tuple[int, ...], hidden: tuple[int, ...] = (128, 256)) -> nn.Module:
    layers: list[nn.Module] = []
    d = latent
    for h in hidden:
        layers += [nn.Linear(d, h), nn.ReLU()]
        d = h
    out = int(math.prod(shape))
    layers += [nn.Linear(d, out), nn.Unflatten(1, shape)]
    return nn.Sequential(*layers)


def conv_encoder(channels: int, out_dim: int, side: int = 28) -> nn.Module:
    """For square images whose side is a multiple of 4 (28 x 28 MNIST, 32 x 32 or 64 x 64
    CelebA): two stride-2 convolutions, then a 256-unit layer."""
    s = side // 4
    return nn.Sequential(
        nn.Conv2d(channels, 32, 4, 2, 1),
        nn.ReLU(),
        nn.Conv2d(32, 64, 4, 2, 1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(64 * s * s, 256),
        nn.ReLU(),
        nn.Linear(256, out_dim),
    )


class FoldConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` (same parameters and state dict) computed as one matmul and
    ``F.fold``: for a single output channel on the CPU, torch's oneDNN kernel is 2.5x
    slower forward and 1.8x forward + backward (32 -> 1 channels, 14 -> 28 pixels, batch
    512; at 3 or more output channels the kernel wins, so only the one-channel output
    layers use this). Equal to the kernel up to float rounding (3e-5 on MNIST decoders;
    bit for bit torch's non-oneDNN path)."""

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:  # type: ignore[override]
        plain = self.groups == 1 and self.dilation == (1, 1) and self.output_padding == (0, 0)
        if output_size is not None or x.dim() != 4 or not plain or self.padding_mode != "zeros":
            return super().forward(x, output_size)
        b, c, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        cols = torch.matmul(self.weight.reshape(c, -1).t(), x.reshape(b, c, h * w))
        out = F.fold(cols, ((h - 1) * sh - 2 * ph + kh, (w - 1) * sw - 2 * pw + kw), (kh, kw), stride=(sh, sw),
                     padding=(ph, pw))  # fmt: skip
        return out if self.bias is None else out + self.bias.view(1, -1, 1, 1)


def upsample(in_channels: int, out_channels: int) -> nn.ConvTranspose2d:
    """The decoders' stride-2 4x4 transposed convolution (see :class:`FoldConvTranspose2d`)."""
    cls = FoldConvTranspose2d if out_channels == 1 else nn.ConvTranspose2d
    return cls(in_channels, out_channels, 4, 2, 1)


def conv_decoder(latent: int, channels: int, side: int = 28) -> nn.Module:
    s = side // 4
    return nn.Sequential(
        nn.Linear(latent, 256),
        nn.ReLU(),
        nn.Linear(256, 64 * s * s),
        nn.ReLU(),
        nn.Unflatten(1, (64, s, s)),
        upsample(64, 32),
        nn.ReLU(),
        upsample(32, channels),
    )


def build_nets(shape: tuple[int, ...], enc_out: int, latent: int, arch: str) -> tuple[nn.Module, nn.Module]:
    square4 = shape[-1] == shape[-2] and shape[-1] % 4 == 0 and shape[-1] >= 16
    if arch == "auto":
        arch = "conv" if square4 else "mlp"
    if arch == "conv":
        if not square4:
            raise ValueError(
                f"arch: the conv net expects square images with a side divisible by 4 (>= 16), got {shape}"
            )
        return conv_encoder(shape[0], enc_out, shape[-1]), conv_decoder(latent, shape[0], shape[-1])
    if arch == "mlp":
        return mlp_encoder(int(math.prod(shape)), enc_out), mlp_decoder(latent, shape)
    raise ValueError(f"arch: unknown value {arch!r}; choose mlp, conv or auto")


def reconstruction_loss(logits: torch.Tensor, x: torch.Tensor, likelihood: str) -> torch.Tensor:
    """Per-example negative log-likelihood (summed over pixels)."""
    if likelihood == "bernoulli":
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    # Gaussian with unit variance on sigmoid outputs (up to a constant)
    return 0.5 * ((torch.sigmoid(logits) - x) ** 2).flatten(1).sum(1)


class BMVAE(nn.Module):
    """BM-VAE with ``latent`` spins and a :class:`BoltzmannPrior` on ``graph``."""

    def __init__(
        self,
        shape: tuple[int, ...],
        latent: int = 32,
        *,
        graph: Any = "rbm",
        arch: str = "auto",
        likelihood: str = "bernoulli",
        relaxation: str = "gumbel",
        tau: float = 1.0,
        spike_beta: float = 10.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"likelihood: unknown value {likelihood!r}; choose bernoulli or gaussian")
        if relaxation not in ("gumbel", "spike_exp"):
            raise ValueError(f"relaxation: unknown value {relaxation!r}; choose gumbel or spike_exp")
        if not tau > 0:
            raise ValueError(f"tau: must be > 0, got {tau}")
        torch.manual_seed(seed)
        self.shape, self.latent, self.likelihood = tuple(shape), latent, likelihood
        self.relaxation, self.tau, self.spike_beta = relaxation, tau, spike_beta
        self.encoder, self.decoder = build_nets(self.shape, latent, latent, arch)
        self.prior = BoltzmannPrior(latent, graph, seed=seed)
        self.config = dict(
            shape=list(shape),
            latent=latent,
            graph=graph if isinstance(graph, str) else list(graph),
            arch=arch,
            likelihood=likelihood,
            relaxation=relaxation,
            tau=tau,
            spike_beta=spike_beta,
            seed=seed,
        )

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x).to(torch.float64)

    def relax(self, logits: torch.Tensor, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(z in {-1, +1} for the prior terms, decoder input with gradients)."""
        # random numbers come from the CPU generator whatever the device: same stream everywhere
        u = torch.rand(logits.shape, generator=generator, dtype=logits.dtype).to(logits.device)
        u = u.clamp(1e-10, 1 - 1e-10)
        if self.relaxation == "gumbel":
            noise = torch.log(u) - torch.log1p(-u)
            soft = torch.sigmoid((logits + noise) / self.tau)
            hard = (soft > 0.5).to(soft.dtype)
            st = hard + soft - soft.detach()
            return 2 * hard - 1, 2 * st - 1
        # spike-and-exponential: zeta = 0 w.p. 1 - q, else exponential(beta) on [0, 1]
        q = torch.sigmoid(logits)
        b = self.spike_beta
        on = u > 1 - q
        arg = ((u + q - 1) / q.clamp_min(1e-8)) * math.expm1(b) + 1
        zeta = torch.where(on, torch.log(arg.clamp_min(1.0)) / b, torch.zeros_like(u))
        return 2 * on.to(u.dtype) - 1, 2 * zeta - 1

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z.to(torch.float32))

    def forward_losses(
        self,
        x: torch.Tensor,
        z_model: torch.Tensor | None,
        generator: torch.Generator | None,
        log_z: float = 0.0,
        kl_weight: float = 1.0,
    ) -> dict[str, torch.Tensor]:
        """Per-batch means: recon, kl (with the given log Z), and the training objective
        recon + kl_weight * (KL surrogate whose prior gradient uses ``z_model``)."""
        t = self.elbo_terms(x, generator)
        kl = t["kl_no_log_z"] + log_z
        kl_obj = t["kl_no_log_z"].mean()
        if z_model is not None:
            kl_obj = kl_obj - self.prior.energy(z_model.detach()).mean()
        obj = t["recon"].mean() + kl_weight * kl_obj
        return {"recon": t["recon"].mean(), "kl": kl.mean(), "objective": obj, "z": t["z"], "mean": t["mean"]}

    def elbo_terms(self, x: torch.Tensor, generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        """Per-example terms: recon (B,), kl_no_log_z = -H(q) + E_q[E(z)] (B,), the relaxed
        sample z and the posterior means tanh(l / 2)."""
        logit = self.logits(x)
        z, z_dec = self.relax(logit, generator)
        recon = reconstruction_loss(self.decode(z_dec), x, self.likelihood)
        mean = torch.tanh(logit / 2)
        # entropy of factorised Bernoulli q(z_i = +1) = sigmoid(l_i)
        ent = (F.softplus(logit) - logit * torch.sigmoid(logit)).sum(1)
        return {"recon": recon, "kl_no_log_z": -ent + self.prior.energy(mean), "z": z, "mean": mean}

    @torch.no_grad()
    def most_likely_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Decoder logits at the most likely latent (z_i = sign of the encoder logit, +1 at 0)."""
        return self.decode(torch.where(self.logits(x) >= 0, 1.0, -1.0))

    @torch.no_grad()
    def encode_mean(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.logits(x) / 2)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.most_likely_logits(x))


class GaussianVAE(nn.Module):
    """The same encoder / decoder with a standard normal prior over ``latent`` reals."""

    def __init__(
        self,
        shape: tuple[int, ...],
        latent: int = 32,
        *,
        arch: str = "auto",
        likelihood: str = "bernoulli",
        seed: int = 0,
    ) -> None:
        super().__init__()
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"likelihood: unknown value {likelihood!r}")
        torch.manual_seed(seed)
        self.shape, self.latent, self.likelihood = tuple(shape), latent, likelihood
        self.encoder, self.decoder = build_nets(self.shape, 2 * latent, latent, arch)
        self.config = dict(shape=list(shape), latent=latent, arch=arch, likelihood=likelihood, seed=seed)

    def forward_losses(
        self,
        x: torch.Tensor,
        z_model: Any,
        generator: torch.Generator | None,
        log_z: float = 0.0,
        kl_weight: float = 1.0,
    ) -> dict[str, torch.Tensor]:
        t = self.elbo_terms(x, generator)
        recon, kl = t["recon"], t["kl"]
        return {
            "recon": recon.mean(),
            "kl": kl.mean(),
            "objective": recon.mean() + kl_weight * kl.mean(),
            "z": t["z"],
            "mean": t["mean"],
        }

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder's mean and log-variance (clamped to [-10, 10])."""
        h = self.encoder(x)
        return h[:, : self.latent], h[:, self.latent :].clamp(-10, 10)

    def elbo_terms(self, x: torch.Tensor, generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        """Per-example terms: recon (B,) at one reparameterised sample z, the analytic
        KL(q || N(0, I)) (B,), z and the posterior mean."""
        mu, logvar = self.posterior(x)
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(mu.device)
        z = mu + torch.exp(0.5 * logvar) * eps
        recon = reconstruction_loss(self.decoder(z), x, self.likelihood)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
        return {"recon": recon, "kl": kl, "z": z, "mean": mu}

    @torch.no_grad()
    def encode_mean(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)[:, : self.latent]

    @torch.no_grad()
    def most_likely_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Decoder logits at the posterior mean."""
        return self.decoder(self.encode_mean(x))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.most_likely_logits(x))

    @torch.no_grad()
    def sample_images(self, num: int, generator: torch.Generator | None = None) -> torch.Tensor:
        dev = next(self.parameters()).device
        z = torch.randn(num, self.latent, generator=generator).to(dev)
        return torch.sigmoid(self.decoder(z))
