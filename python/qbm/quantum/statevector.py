"""Batched state vectors in torch.

A state of n qubits is a complex tensor of shape (B, 2, ..., 2) (one axis per qubit,
qubit 0 first), so flattening gives basis index = bits read as a binary number with
qubit 0 most significant (the convention of :func:`qbm.mmd.mmd2_exact`). Gates act on
one axis with ``einsum``; batches carry different parameter values (noise samples,
parameter-shift copies) through one pass. Everything is differentiable by autograd.
Rotations are R_P(theta) = exp(-i theta P / 2).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

Tensor = torch.Tensor


def zero_state(n: int, batch: int = 1, dtype: torch.dtype = torch.complex64, device: Any = None) -> Tensor:
    """|0...0> for ``batch`` copies: shape (batch, 2, ..., 2)."""
    if n < 1:
        raise ValueError(f"n: need at least one qubit, got {n}")
    psi = torch.zeros((batch,) + (2,) * n, dtype=dtype, device=device)
    psi.view(batch, -1)[:, 0] = 1.0
    return psi


def _as_batch(theta: Any, batch: int, dtype: torch.dtype, device: Any) -> Tensor:
    t = torch.as_tensor(theta, device=device)
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    t = t.to(real)
    if t.ndim == 0:
        t = t.expand(batch)
    return t


def rx(theta: Tensor) -> Tensor:
    """(..., 2, 2) RX matrices for angles ``theta`` (...)."""
    c, s = torch.cos(theta / 2), torch.sin(theta / 2)
    z = torch.zeros_like(c)
    re = torch.stack([torch.stack([c, z], -1), torch.stack([z, c], -1)], -2)
    im = torch.stack([torch.stack([z, -s], -1), torch.stack([-s, z], -1)], -2)
    return torch.complex(re, im)


def ry(theta: Tensor) -> Tensor:
    c, s = torch.cos(theta / 2), torch.sin(theta / 2)
    re = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    return torch.complex(re, torch.zeros_like(re))


def rz(theta: Tensor) -> Tensor:
    c, s = torch.cos(theta / 2), torch.sin(theta / 2)
    z = torch.zeros_like(c)
    re = torch.stack([torch.stack([c, z], -1), torch.stack([z, c], -1)], -2)
    im = torch.stack([torch.stack([-s, z], -1), torch.stack([z, s], -1)], -2)
    return torch.complex(re, im)


def _halves(psi: Tensor, qubit: int) -> tuple[Tensor, Tensor]:
    """Views of the amplitudes with ``qubit`` = 0 and = 1, each (B, 2^q, 2^(n-q-1)); stacking
    updated halves on axis 2 and reshaping to ``psi.shape`` restores the layout."""
    b, n = psi.shape[0], psi.ndim - 1
    v = psi.reshape(b, 2**qubit, 2, 2 ** (n - qubit - 1))
    return v[:, :, 0], v[:, :, 1]


def apply_gate(psi: Tensor, qubit: int, U: Tensor) -> Tensor:
    """Apply a one-qubit gate U ((2, 2) or (B, 2, 2)) to axis ``qubit``.

    Elementwise on the two halves of the state along that axis (psi viewed as
    (B, 2^q, 2, 2^(n-q-1))): out_a = U_a0 psi_0 + U_a1 psi_1, with U broadcast over the
    batch; no transposes or small matrix products."""
    a0, a1 = _halves(psi, qubit)
    u = U.to(psi.dtype)
    u = u.reshape(-1, 1, 1, 2, 2) if u.ndim == 3 else u
    u00, u01, u10, u11 = u[..., 0, 0], u[..., 0, 1], u[..., 1, 0], u[..., 1, 1]
    out = torch.stack([u00 * a0 + u01 * a1, u10 * a0 + u11 * a1], 2)
    return out.reshape(psi.shape)


def apply_rz(psi: Tensor, qubit: int, theta: Tensor) -> Tensor:
    """RZ(theta) = diag(e^{-i theta/2}, e^{i theta/2}) on axis ``qubit``; ``theta`` () or (B,).
    Two phase multiplications instead of a general 2x2 update."""
    a0, a1 = _halves(psi, qubit)
    ph = torch.polar(torch.ones_like(theta), -theta / 2).to(psi.dtype)
    ph = ph.reshape(-1, 1, 1) if ph.ndim == 1 else ph
    out = torch.stack([a0 * ph, a1 * ph.conj()], 2)
    return out.reshape(psi.shape)


def apply_controlled(psi: Tensor, control: int, target: int, U: Tensor) -> Tensor:
    """Controlled-U (control on |1>) with U (2, 2) or (B, 2, 2)."""
    if control == target:
        raise ValueError("target: must differ from the control qubit")
    ca = control + 1
    p0 = psi.select(ca, 0)
    p1 = psi.select(ca, 1)
    t = target if target < control else target - 1
    p1 = apply_gate(p1, t, U)
    return torch.stack([p0, p1], dim=ca)


_X = torch.tensor([[0, 1], [1, 0]], dtype=torch.complex128)
_Z = torch.tensor([[1, 0], [0, -1]], dtype=torch.complex128)


def cnot(psi: Tensor, control: int, target: int) -> Tensor:
    if control == target:  # flipping the control's own slice would silently act as the identity
        raise ValueError("target: must differ from the control qubit")
    ca = control + 1
    p0, p1 = psi.select(ca, 0), psi.select(ca, 1)
    t = (target if target < control else target - 1) + 1
    return torch.stack([p0, p1.flip(t)], dim=ca)


def cz(psi: Tensor, a: int, b: int) -> Tensor:
    return apply_controlled(psi, a, b, _Z)


def probabilities(psi: Tensor) -> Tensor:
    """|amplitude|^2 as (B, 2^n) real."""
    return (psi.real**2 + psi.imag**2).reshape(psi.shape[0], -1)


def expect_z(psi: Tensor) -> Tensor:
    """<Z_i> for every qubit: (B, n)."""
    p = psi.real**2 + psi.imag**2
    n = p.ndim - 1
    out = []
    for q in range(n):
        m = p.movedim(q + 1, -1).reshape(p.shape[0], -1, 2).sum(1)
        out.append(m[:, 0] - m[:, 1])
    return torch.stack(out, -1)


def expect_x(psi: Tensor) -> Tensor:
    """<X_i> for every qubit: (B, n)."""
    n = psi.ndim - 1
    out = []
    for q in range(n):
        m = psi.movedim(q + 1, -1).reshape(psi.shape[0], -1, 2)
        out.append(2 * (m[..., 0].conj() * m[..., 1]).real.sum(1))
    return torch.stack(out, -1)


def sample_indices(probs: Tensor, shots: int, generator: torch.Generator | None = None) -> Tensor:
    """``shots`` outcome indices for every row of ``probs`` (B, 2^n) (or of one vector
    (2^n,)): (B, shots) (or (shots,)) int64, in one batched draw."""
    p = probs.detach().double().clamp_min(0)
    return torch.multinomial(p / p.sum(-1, keepdim=True), shots, replacement=True, generator=generator)


def sample_frequencies(probs: Tensor, shots: int, generator: torch.Generator | None = None) -> Tensor:
    """Empirical frequencies (B, 2^n) float64 of ``shots`` draws from every row of
    ``probs``: multinomial counts drawn directly (O(2^n) per row, not O(shots)), from a
    numpy stream seeded by ``generator`` so one torch generator still fixes everything."""
    p = probs.detach().double().clamp_min(0).cpu().numpy()
    p = p / p.sum(-1, keepdims=True)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    counts = np.random.default_rng(seed).multinomial(shots, p)
    return torch.as_tensor(counts / shots, dtype=torch.float64)


def bits_of(idx: Tensor, n: int) -> np.ndarray:
    """Outcome indices (...,) as bitstrings (..., n) uint8, qubit 0 first."""
    i = idx.cpu().numpy()
    return ((i[..., None] >> np.arange(n - 1, -1, -1)) & 1).astype(np.uint8)


def sample_bits(probs: Tensor, shots: int, generator: torch.Generator | None = None) -> np.ndarray:
    """Draw ``shots`` bitstrings from one probability vector (2^n,): (shots, n) uint8,
    qubit 0 first."""
    return bits_of(sample_indices(probs, shots, generator), probs.shape[-1].bit_length() - 1)
