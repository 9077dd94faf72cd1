"""Latent style-based quantum GAN pieces (Liepelt & Baglio 2026; Bravo-Prieto et al. 2022).

* :class:`LatentAutoencoder`: images -> tanh latent in [-1, 1]^d -> images (conv for 28 x 28,
  MLP for 8 x 8), trained first (with a small penalty that keeps the latent out of tanh
  saturation) and frozen.
* :class:`StyleQuantumGenerator`: n qubits, L layers; each layer applies RY, RZ, RY, RZ to
  every qubit, then a ring of controlled-RY gates CRY(i -> i+1 mod n); a final RY layer.
  Every angle is theta_k = w_k z_k + b_k with noise z ~ N(0, 1) (one component per angle),
  so there are 10 L n + 2 n parameters (n >= 2; one qubit has no ring). The output is <Z_i> (and <X_i> with
  ``readout="zx"``), computed for a whole batch of noise vectors in one call of the Rust
  state-vector engine (gradients by the adjoint method; ``backend="torch"`` or a non-CPU
  device uses the batched torch simulator).
* :class:`ClassicalGenerator` / :class:`Discriminator`: MLPs of adjustable width and depth.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from qbm.models.vae import upsample
from qbm.quantum import Circuit
from qbm.quantum import statevector as sv


def count_params(module: nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad))


class StyleQuantumGenerator(nn.Module):
    def __init__(
        self,
        qubits: int,
        layers: int,
        *,
        readout: str = "z",
        seed: int = 0,
        dtype: torch.dtype = torch.complex64,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        if backend not in ("auto", "engine", "torch"):
            raise ValueError(f"backend: unknown value {backend!r}; choose 'auto', 'engine' or 'torch'")
        self.backend = backend
        if qubits < 1:
            raise ValueError(f"qubits: must be >= 1, got {qubits}")
        if layers < 0:
            raise ValueError(f"layers: must be >= 0, got {layers}")
        if readout not in ("z", "zx"):
            raise ValueError(f"readout: unknown value {readout!r}; choose 'z' or 'zx'")
        self.qubits, self.layers, self.readout, self.dtype = qubits, layers, readout, dtype
        c = Circuit(qubits)
        for _ in range(layers):
            for q in range(qubits):
                c.ry(q), c.rz(q), c.ry(q), c.rz(q)
            if qubits > 1:
                for q in range(qubits):
                    c.crot("ry", q, (q + 1) % qubits)
        for q in range(qubits):
            c.ry(q)
        self.circuit = c
        self.num_angles = c.num_params
        g = torch.Generator().manual_seed(seed)
        real = torch.float64 if dtype == torch.complex128 else torch.float32
        self.w = nn.Parameter(0.1 * torch.randn(self.num_angles, generator=g, dtype=real))
        self.b = nn.Parameter(torch.rand(self.num_angles, generator=g, dtype=real) * 2 * math.pi)

    @property
    def output_dim(self) -> int:
        return self.qubits * (2 if self.readout == "zx" else 1)

    @property
    def noise_dim(self) -> int:
        return self.num_angles

    def angles(self, z: torch.Tensor) -> torch.Tensor:
        return self.w * z + self.b

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, num_angles) noise -> (B, output_dim) expectation values in [-1, 1]."""
        if z.ndim != 2 or z.shape[1] != self.num_angles:
            raise ValueError(f"z: expected shape (B, {self.num_angles}), got {tuple(z.shape)}")
        real = torch.float64 if self.dtype == torch.complex128 else torch.float32
        if self.backend != "torch" and z.device.type == "cpu" and self.w.device.type == "cpu":
            return self.circuit.run(self.angles(z), readout=self.readout).to(real)
        if self.backend == "engine":
            raise ValueError("backend: the engine runs on the CPU; use backend='torch' on other devices")
        psi = self.circuit.state(self.angles(z), dtype=self.dtype)
        out = sv.expect_z(psi)
        if self.readout == "zx":
            out = torch.cat([out, sv.expect_x(psi)], dim=1)
        return out.to(torch.float64 if self.dtype == torch.complex128 else torch.float32)

    def sample_noise(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(batch, self.num_angles, generator=generator, dtype=self.w.dtype)


class ClassicalGenerator(nn.Module):
    """MLP generator noise (noise_dim) -> tanh outputs (output_dim)."""

    def __init__(self, output_dim: int, *, width: int = 16, depth: int = 2, noise_dim: int | None = None) -> None:
        super().__init__()
        if width < 1 or depth < 1:
            raise ValueError(f"width: width and depth must be >= 1, got {width}, {depth}")
        self.output_dim, self.noise_dim = output_dim, noise_dim or output_dim
        layers: list[nn.Module] = []
        d = self.noise_dim
        for _ in range(depth):
            layers += [nn.Linear(d, width), nn.LeakyReLU(0.2)]
            d = width
        layers += [nn.Linear(d, output_dim), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)

    def sample_noise(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(batch, self.noise_dim, generator=generator)


class Discriminator(nn.Module):
    """MLP critic on latent vectors."""

    def __init__(self, input_dim: int, *, width: int = 32, depth: int = 2) -> None:
        super().__init__()
        if width < 1 or depth < 1:
            raise ValueError(f"width: width and depth must be >= 1, got {width}, {depth}")
        layers: list[nn.Module] = []
        d = input_dim
        for _ in range(depth):
            layers += [nn.Linear(d, width), nn.LeakyReLU(0.2)]
            d = width
        layers.append(nn.Linear(d, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


class LatentAutoencoder(nn.Module):
    """Deterministic autoencoder with a tanh latent of size ``latent``."""

    def __init__(self, shape: tuple[int, ...], latent: int = 8) -> None:
        super().__init__()
        self.shape, self.latent = tuple(shape), latent
        c, h, w = self.shape
        if (h, w) == (28, 28):
            self.enc: nn.Module = nn.Sequential(
                nn.Conv2d(c, 32, 4, 2, 1),
                nn.LeakyReLU(0.2),
                nn.Conv2d(32, 64, 4, 2, 1),
                nn.LeakyReLU(0.2),
                nn.Flatten(),
                nn.Linear(64 * 7 * 7, 128),
                nn.LeakyReLU(0.2),
                nn.Linear(128, latent),
                nn.Tanh(),
            )
            self.dec: nn.Module = nn.Sequential(
                nn.Linear(latent, 128),
                nn.LeakyReLU(0.2),
                nn.Linear(128, 64 * 7 * 7),
                nn.LeakyReLU(0.2),
                nn.Unflatten(1, (64, 7, 7)),
                upsample(64, 32),
                nn.LeakyReLU(0.2),
                upsample(32, c),
                nn.Sigmoid(),
            )
        else:
            d = c * h * w
            self.enc = nn.Sequential(
                nn.Flatten(),
                nn.Linear(d, 128),
                nn.LeakyReLU(0.2),
                nn.Linear(128, 64),
                nn.LeakyReLU(0.2),
                nn.Linear(64, latent),
                nn.Tanh(),
            )
            self.dec = nn.Sequential(
                nn.Linear(latent, 64),
                nn.LeakyReLU(0.2),
                nn.Linear(64, 128),
                nn.LeakyReLU(0.2),
                nn.Linear(128, d),
                nn.Sigmoid(),
                nn.Unflatten(1, self.shape),
            )

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        return self.enc(x)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.enc(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.dec(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dec(self.encode(x))

    def loss(self, x: torch.Tensor, saturation_penalty: float = 1e-2) -> torch.Tensor:
        """Reconstruction MSE plus a small penalty on the pre-tanh activations, which keeps
        the latent out of tanh saturation (where small latents otherwise collapse to +-1)."""
        pre = self.enc(x)
        return F.mse_loss(self.dec(torch.tanh(pre)), x) + saturation_penalty * pre.pow(2).mean()


class FeatureClassifier(nn.Module):
    """A small classifier whose penultimate layer gives FID features (Inception weights
    are not available offline, so FID here uses a network trained on the same data)."""

    def __init__(self, shape: tuple[int, ...], num_classes: int, feature_dim: int = 64) -> None:
        super().__init__()
        c, h, w = shape
        if (h, w) == (28, 28):
            self.body: nn.Module = nn.Sequential(
                nn.Conv2d(c, 16, 3, 2, 1),
                nn.ReLU(),
                nn.Conv2d(16, 32, 3, 2, 1),
                nn.ReLU(),
                nn.Flatten(),
                nn.Linear(32 * 7 * 7, feature_dim),
                nn.ReLU(),
            )
        else:
            self.body = nn.Sequential(
                nn.Flatten(), nn.Linear(c * h * w, 128), nn.ReLU(), nn.Linear(128, feature_dim), nn.ReLU()
            )
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def describe(module: Any) -> dict[str, Any]:
    return {"type": type(module).__name__, "params": count_params(module)}
