"""Variance of the MMD loss over random product circuits (Rudolph et al. 2024,
Eqs. 235-237) in closed form, checked numerically.

For a product ansatz of Haar-random single-qubit gates, q = (x)_i q_i and the MMD
observable O = (x)_i [(1 - p) 1 + p Z_i Z_{n+i}], p = (1 - e^{-1/(2 sigma)}) / 2, give
  MMD^2 = prod_i (1 - p + p m_i^2) - 2 sum_A (1-p)^{n-|A|} p^{|A|} z_A prod_{i in A} m_i + const
with m_i = <Z_i> uniform on [-1, 1] and z_A = sum_y p~(y) (-1)^{sum_{i in A} y_i}. The
two terms are uncorrelated, so Var = B + 4 C with
  B = [(7 + 6e^{-1/2s} + 2e^{-1/s}) / 15]^n - [(4 + 4e^{-1/2s} + e^{-1/s}) / 9]^n,
  C = sum_{A nonempty} (1 - p)^{2(n - |A|)} (p^2 / 3)^{|A|} z_A^2.
This is the variance of the loss landscape; the variance of a partial derivative (the
gradient variance proper) is estimated numerically alongside and decays the same way:
exponentially in n for sigma in O(1), polynomially for sigma = n / 4.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from qbm import mmd


def _p(sigma: float) -> float:
    return (1.0 - math.exp(-1.0 / (2.0 * sigma))) / 2.0


HAAR_MOMENTS = (1.0 / 3.0, 1.0 / 5.0)


def closed_form_B(n: int, sigma: float, moments: tuple[float, float] = HAAR_MOMENTS) -> float:
    """Var of prod_i (1 - p + p m_i^2) for independent m_i with E m^2, E m^4 = ``moments``
    (Haar: 1/3, 1/5, which gives the paper's B; an RY angle uniform on [0, 2 pi): 1/2, 3/8)."""
    p = _p(sigma)
    m2, m4 = moments
    return ((1 - p) ** 2 + 2 * p * (1 - p) * m2 + p * p * m4) ** n - (1 - p + p * m2) ** (2 * n)


def wht(v: np.ndarray, *, inplace: bool = False) -> np.ndarray:
    """Unnormalised Walsh-Hadamard transform of a float64 vector of length 2^n (a copy,
    or ``v`` itself with ``inplace``; half a vector of scratch either way)."""
    x = v if inplace else np.array(v, dtype=np.float64, copy=True)
    size = x.size
    h = 1
    while h < size:
        y = x.reshape(-1, 2, h)
        a = y[:, 0, :] + y[:, 1, :]
        np.subtract(y[:, 0, :], y[:, 1, :], out=y[:, 1, :])
        y[:, 0, :] = a
        del a
        h *= 2
    return x


def popcounts(n: int) -> np.ndarray:
    """|x| for every index x < 2^n (uint8)."""
    c = np.zeros(1, dtype=np.uint8)
    for _ in range(n):
        c = np.concatenate([c, c + 1])
    return c


def walsh_coefficients(target: np.ndarray) -> np.ndarray:
    """z_A for every subset A (index bits = membership, first qubit most significant)."""
    return wht(np.asarray(target, dtype=np.float64))


def closed_form_C(n: int, sigma: float, target: Any = "ghz", moments: tuple[float, float] = HAAR_MOMENTS) -> float:
    """C for a target: ``"ghz"`` or ``"point"`` (any n, closed form) or a probability
    vector of length 2^n (Walsh-Hadamard transform, n <= ~24); p^2 / 3 generalises to
    p^2 E m^2."""
    p = _p(sigma)
    a, b = (1 - p) ** 2, p * p * moments[0]
    if isinstance(target, str):
        if target == "ghz":  # z_A = 1 for |A| even, 0 for odd
            return 0.5 * ((a + b) ** n + (a - b) ** n) - a**n
        if target == "point":  # z_A = +-1 for every A
            return (a + b) ** n - a**n
        raise ValueError(f"target: unknown value {target!r}; use 'ghz', 'point' or a probability vector")
    z = walsh_coefficients(target)
    sizes = popcounts(n).astype(np.int64)
    terms = a ** (n - sizes) * b**sizes * z**2
    return float(terms[1:].sum())


def closed_form_variance(
    n: int, sigma: float, target: Any = "ghz", moments: tuple[float, float] = HAAR_MOMENTS
) -> float:
    """Var over random product circuits of MMD^2(q, target) = B + 4 C (Haar-random
    single-qubit gates by default; ``moments`` = (E m^2, E m^4) of m_i = <Z_i> otherwise)."""
    return closed_form_B(n, sigma, moments) + 4 * closed_form_C(n, sigma, target, moments)


def _target_vector(n: int, target: Any) -> np.ndarray:
    if isinstance(target, str):
        v = np.zeros(2**n)
        if target == "ghz":
            v[0] = v[-1] = 0.5
        elif target == "point":
            v[0] = 1.0
        else:
            raise ValueError(f"target: unknown value {target!r}")
        return v
    return np.asarray(target, dtype=np.float64)


def haar_unitaries(count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` Haar-random 2 x 2 unitaries (QR of complex Ginibre, phases fixed)."""
    z = torch.complex(
        torch.randn(count, 2, 2, generator=generator, dtype=torch.float64),
        torch.randn(count, 2, 2, generator=generator, dtype=torch.float64),
    ) / math.sqrt(2)
    q, r = torch.linalg.qr(z)
    d = torch.diagonal(r, dim1=-2, dim2=-1)
    return q * (d / d.abs())[:, None, :]


def numerical_variance(
    n: int, sigma: float, target: Any = "ghz", samples: int = 2000, seed: int = 0, batch: int = 500
) -> dict[str, float]:
    """Monte Carlo over Haar-random product circuits: variance of MMD^2 and of
    d MMD^2 / d theta for theta the RY angle of qubit 0 (U_0 = V RY(theta) W, V, W Haar),
    with standard errors."""
    from qbm.quantum import statevector as sv

    g = torch.Generator().manual_seed(seed)
    tvec = torch.as_tensor(_target_vector(n, target))
    losses, grads = [], []
    done = 0
    while done < samples:
        b = min(batch, samples - done)
        theta = (2 * math.pi * torch.rand(b, generator=g, dtype=torch.float64)).requires_grad_(True)
        psi = sv.zero_state(n, b, torch.complex128)
        V, W = haar_unitaries(b, g), haar_unitaries(b, g)
        psi = sv.apply_gate(psi, 0, W)
        psi = sv.apply_gate(psi, 0, sv.ry(theta))
        psi = sv.apply_gate(psi, 0, V)
        for q in range(1, n):
            psi = sv.apply_gate(psi, q, haar_unitaries(b, g))
        probs = sv.probabilities(psi)
        loss = mmd.mmd2_exact(probs, tvec, sigma)
        (gr,) = torch.autograd.grad(loss.sum(), theta)
        losses.append(loss.detach())
        grads.append(gr.detach())
        done += b
    L, G = torch.cat(losses).numpy(), torch.cat(grads).numpy()

    def var_se(x: np.ndarray) -> tuple[float, float]:
        v = float(np.var(x, ddof=1))
        m4 = float(np.mean((x - x.mean()) ** 4))
        se = math.sqrt(max(m4 - v * v, 0.0) / len(x))
        return v, se

    lv, lse = var_se(L)
    gv, gse = var_se(G)
    return {"loss_var": lv, "loss_var_se": lse, "grad_var": gv, "grad_var_se": gse}
