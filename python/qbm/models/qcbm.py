"""Quantum circuit Born machines, q_theta(x) = |<x|U(theta)|0>|^2, with MMD, KL and
local-fidelity losses (Rudolph et al., npj Quantum Information 10, 116 (2024)).

Ansatze:
  * ``"product"``: one layer of arbitrary single-qubit rotations (RZ RY RZ per qubit);
  * ``"line"``: the hardware-efficient line ansatz U = [prod_l R(theta_l) W(alpha_l)] R(theta_0),
    R a layer of RZ RY RZ rotations and W(alpha) = prod_i CX_{i,i+1} RY_i(alpha_i) CX_{i,i+1}
    (an exp(-i alpha Y_i X_{i+1} / 2) entangler on each neighbouring pair);
  * ``"all_to_all"``: R layers with CX between every pair.
On the CPU the circuits run on the Rust state-vector engine (:mod:`qbm.quantum.engine`):
exact losses are differentiated by the adjoint method (one forward and one backward
sweep, any torch loss of the probabilities); shot-based losses use the parameter-shift
rule with one fork of the unshifted circuit per parameter, streamed in the core and
reduced against the loss's weight vector, with counts drawn per circuit. ``backend=
"torch"`` (or a non-CPU device) uses the batched torch simulator instead.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from qbm import mmd
from qbm._adam import Adam
from qbm._validate import MAX_SHOTS
from qbm.quantum import Circuit
from qbm.quantum import engine
from qbm.quantum import statevector as sv

BACKENDS = ("auto", "engine", "torch")


class QCBM(torch.nn.Module):
    """A circuit Born machine on ``n`` qubits with ``layers`` entangling layers."""

    def __init__(
        self,
        n: int,
        *,
        ansatz: str = "line",
        layers: int = 2,
        seed: int = 0,
        dtype: torch.dtype = torch.complex64,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"backend: unknown value {backend!r}; choose one of {BACKENDS}")
        self.backend = backend
        if ansatz not in ("product", "line", "all_to_all"):
            raise ValueError(f"ansatz: unknown value {ansatz!r}; choose 'product', 'line' or 'all_to_all'")
        if layers < 0:
            raise ValueError(f"layers: must be >= 0, got {layers}")
        self.n, self.ansatz, self.layers, self.dtype = n, ansatz, layers, dtype
        c = Circuit(n)
        c.product_layer("euler")
        if ansatz != "product":
            for _ in range(layers):
                if ansatz == "line":
                    for q in range(n - 1):
                        c.cx(q, q + 1)
                        c.ry(q)
                        c.cx(q, q + 1)
                else:
                    c.all_to_all_entangler()
                c.product_layer("euler")
        self.circuit = c
        g = torch.Generator().manual_seed(seed)
        self.theta = torch.nn.Parameter(2 * math.pi * torch.rand(c.num_params, generator=g, dtype=torch.float64))

    def uses_engine(self) -> bool:
        """Whether circuits run on the Rust engine (CPU, backend "auto" or "engine")."""
        if self.backend == "torch":
            return False
        if self.theta.device.type != "cpu":
            if self.backend == "engine":
                raise ValueError("backend: the engine runs on the CPU; use backend='torch' on other devices")
            return False
        return True

    def probs(self, params: torch.Tensor | None = None) -> torch.Tensor:
        """Exact distribution (2^n,) (or (B, 2^n) for a batch of parameter vectors), float64."""
        p = self.theta if params is None else params
        if self.uses_engine():
            return self.circuit.run(p, readout="probs")
        out = self.circuit.probabilities(p, dtype=self.dtype).to(torch.float64)
        return out[0] if p.ndim == 1 else out

    def sample(self, shots: int, generator: torch.Generator | None = None) -> np.ndarray:
        """``shots`` bitstrings (shots, n) from the circuit."""
        with torch.no_grad():
            return sv.sample_bits(self.probs(), shots, generator)


# ---------------------------------------------------------------- losses
def tvd(p: Any, q: Any) -> float:
    p, q = torch.as_tensor(p, dtype=torch.float64), torch.as_tensor(q, dtype=torch.float64)
    return 0.5 * float((p - q).abs().sum())


def kl_divergence(p: Any, q: Any, eps: float = 1e-6) -> Any:
    """KL(p || q) = sum_x p(x) log(p(x) / max(q(x), eps)) (terms with p(x) = 0 vanish)."""
    p = torch.as_tensor(p, dtype=torch.float64)
    mask = p > 0
    return (p[mask] * (torch.log(p[mask]) - torch.log(torch.clamp(q[mask], min=eps)))).sum()


def local_fidelity_loss(model: QCBM, target_probs: Any, params: torch.Tensor | None = None) -> torch.Tensor:
    """L = 1 - <phi| U H_L U^dag |phi>, H_L = 1/2 + (1/2n) sum_i Z_i, |phi> = sum_x sqrt(p(x)) |x>.
    Returns (B,) for a batch of parameter vectors, else a scalar."""
    p = model.theta if params is None else params
    phi = torch.sqrt(torch.as_tensor(target_probs, dtype=torch.float64)).reshape((1,) + (2,) * model.n)
    if model.uses_engine():
        z = model.circuit.run(p, initial=phi, inverse=True, readout="z")
        return 1.0 - (0.5 + z.mean(-1) / 2)
    psi = model.circuit.state(p, initial=phi, inverse=True, dtype=model.dtype)
    z = sv.expect_z(psi).to(torch.float64)
    val = 1.0 - (0.5 + z.mean(-1) / 2)
    return val[0] if p.ndim == 1 else val


def _counts(bits: np.ndarray, n: int) -> torch.Tensor:
    from qbm.data.synthetic import states_to_index

    idx = states_to_index(bits)
    return torch.as_tensor(np.bincount(idx, minlength=2**n) / len(bits), dtype=torch.float64)


def shot_loss_and_grad(
    model: QCBM,
    target_probs: np.ndarray,
    loss: str,
    shots: int,
    generator: torch.Generator,
    sigmas: Any,
    eps: float,
    precision: str = "f64",
) -> tuple[float, torch.Tensor]:
    """A shot-based loss estimate and its parameter-shift gradient.

    MMD: dL/dtheta_k = (q_k^+ - q_k^-)^T K (q - p), estimated from independent shots of
    the shifted circuits, the circuit and the target; the value is the unbiased MMD^2
    estimate from count vectors. KL: -sum_x p(x) (q_k^+ - q_k^-)(x) / (2 max(q(x), eps))
    with empirical frequencies. Fidelity: shift rule on <Z_i> estimated from shots of
    U^dag |phi>. Every gradient is sum_x (f_k^+ - f_k^-)(x) w(x) for a weight vector w
    over the 2^n outcomes, which the engine evaluates fork by fork. ``precision="f32"``
    runs the circuit and its forks on f32 amplitudes in the engine (the draws and sums
    stay f64, the random streams the same); the torch path runs at the model's dtype.
    """
    engine.check_precision(precision)
    if model.uses_engine() and model.circuit.single_use_params():
        return _engine_shot_loss_and_grad(model, target_probs, loss, shots, generator, sigmas, eps, precision)
    if precision != "f64":
        raise ValueError(
            "precision: 'f32' applies to the engine's shot gradient (CPU, single-use parameters); "
            "the torch path runs at the model's dtype"
        )
    return _torch_shot_loss_and_grad(model, target_probs, loss, shots, generator, sigmas, eps)


def _zbar(n: int) -> np.ndarray:
    """mean_i (1 - 2 x_i) for every outcome x (2^n,)."""
    x = np.arange(2**n)[:, None] >> np.arange(n - 1, -1, -1)
    return (1 - 2 * (x & 1)).mean(1)


def _engine_shot_loss_and_grad(
    model: QCBM,
    target_probs: np.ndarray,
    loss: str,
    shots: int,
    generator: torch.Generator,
    sigmas: Any,
    eps: float,
    precision: str = "f64",
) -> tuple[float, torch.Tensor]:
    n, P = model.n, model.circuit.num_params
    p_t = np.asarray(target_probs, dtype=np.float64)
    fid = loss == "fidelity"
    comp = model.circuit.compile(inverse=fid)
    S = comp.num_slots
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    init = engine.planes(np.sqrt(p_t), n) if fid else None
    angles = np.ascontiguousarray(comp.angles(model.theta.detach()[None]).numpy())
    if precision == "f32":
        psi = comp.program.states_f32(angles, init).astype(np.float64)
    else:
        psi = comp.program.states(angles, init)
    q0 = psi[0, 0] ** 2 + psi[0, 1] ** 2
    # fork streams are (seed, 1..2S); the unshifted circuit and the target draw after them
    if loss == "mmd":
        cur, cur2, tgt = engine.sample_counts(np.stack([q0, q0, p_t]), shots, seed, 2 * S + 1).astype(np.float64)
        value = mmd.mmd2_counts(cur, tgt, sigmas, estimator="unbiased")
        w = mmd.kernel_matvec((cur2 - tgt) / shots, sigmas)
        scale = 1.0
    else:
        cur = engine.sample_counts(q0[None], shots, seed, 2 * S + 1)[0] / shots
        if loss == "kl":
            value = float(kl_divergence(p_t, torch.as_tensor(cur), eps))
            w = np.where(p_t > 0, p_t / np.maximum(cur, eps), 0.0)
            scale = -0.5
        else:
            zb = _zbar(n)
            value = float(0.5 - 0.5 * cur @ zb)
            w, scale = zb, -0.25
    g = comp.program.shift_gradient(
        angles[0], np.ascontiguousarray(w, dtype=np.float64), int(shots), seed, init, precision=precision
    )
    return float(value), scale * comp.param_grad(g, P)


def _torch_shot_loss_and_grad(
    model: QCBM,
    target_probs: np.ndarray,
    loss: str,
    shots: int,
    generator: torch.Generator,
    sigmas: Any,
    eps: float,
) -> tuple[float, torch.Tensor]:
    """The reference path: shifted circuits in the torch simulator (any device, any
    circuit whose parameters feed rotation gates)."""
    n, P = model.n, model.circuit.num_params
    theta = model.theta.detach()
    p_t = torch.as_tensor(target_probs, dtype=torch.float64)
    c = model.circuit
    with torch.no_grad():
        phi = torch.sqrt(p_t).reshape((1,) + (2,) * n) if loss == "fidelity" else None
        if c.single_use_params():
            # shifted circuits forked from the unshifted one at their shifted gate
            states = c.shifted_states(theta, math.pi / 2, initial=phi, inverse=phi is not None, dtype=model.dtype)
        else:
            eye = (math.pi / 2) * torch.eye(P, dtype=theta.dtype)
            shifts = torch.cat([theta[None], theta[None] + eye, theta[None] - eye])
            states = c.state(shifts, initial=phi, inverse=phi is not None, dtype=model.dtype)
        probs = sv.probabilities(states)
    # shots of every circuit in one batched draw: frequencies (B, 2^n) as multinomial
    # counts, or outcome indices (B, shots) where the loss needs the bitstrings
    if loss == "mmd":
        target = sv.sample_bits(p_t, shots, generator)
        cur = sv.sample_bits(probs[0].double(), shots, generator)
        cur2 = sv.sample_bits(probs[0].double(), shots, generator)
        value = mmd.mmd2(cur, target, sigmas, estimator="unbiased")
        # Cross-kernel means E_{x~a, y~b} K(x, y) between independent shot sets. Over 2^n
        # outcomes they equal freq_a^T K freq_b exactly, computed with the kernel's product
        # structure in O(n 2^n) (cheaper than the shots^2 pairs whenever 2^n << shots^2).
        if 2**n <= shots * shots:
            fr = sv.sample_frequencies(probs[1:], shots, generator)
            k_cur = mmd.kernel_matvec(_counts(cur2, n), sigmas)
            k_tgt = mmd.kernel_matvec(_counts(target, n), sigmas)
            grad = (fr[:P] - fr[P:]) @ (k_cur - k_tgt)
            return value, grad
        samples = sv.bits_of(sv.sample_indices(probs, shots, generator), n)
        table = mmd.hamming_kernel_table(n, sigmas)

        def kmean(a: np.ndarray, b: np.ndarray) -> float:
            from qbm import _core

            h = _core.hamming_cross_histogram(mmd.pack_bits(a.astype(bool)), mmd.pack_bits(b.astype(bool)), n)
            return float(np.asarray(h) @ table) / (len(a) * len(b))

        grad = torch.tensor(
            [
                kmean(samples[1 + k], cur2)
                - kmean(samples[1 + P + k], cur2)
                - kmean(samples[1 + k], target)
                + kmean(samples[1 + P + k], target)
                for k in range(P)
            ],
            dtype=torch.float64,
        )
        return value, grad
    freqs = sv.sample_frequencies(probs, shots, generator)
    if loss == "kl":
        q = freqs[0]
        value = float(kl_divergence(p_t, q, eps))
        w = torch.where(p_t > 0, p_t / torch.clamp(q, min=eps), torch.zeros_like(p_t))
        grad = -((freqs[1 : P + 1] - freqs[P + 1 :]) * w).sum(1) / 2
        return value, grad
    # fidelity: <Z_i> from bit frequencies of U^dag |phi>
    bits = ((torch.arange(2**n)[:, None] >> torch.arange(n - 1, -1, -1)) & 1).to(torch.float64)
    zmean = (freqs @ (1 - 2 * bits)).mean(1)
    vals = 1.0 - (0.5 + zmean / 2)
    return float(vals[0]), (vals[1 : P + 1] - vals[P + 1 :]) / 2


def paper_lr(t: int) -> float:
    """lr(t) = max(0.01 exp(-0.005 t), 1e-5) (Rudolph et al.)."""
    return max(0.01 * math.exp(-0.005 * t), 1e-5)


def train_qcbm(
    model: QCBM,
    target_probs: Any,
    *,
    loss: str = "mmd",
    steps: int = 500,
    shots: int | None = None,
    sigmas: Any = None,
    eps: float = 1e-6,
    lr_schedule: Any = paper_lr,
    seed: int = 0,
    progress: bool = True,
    precision: str = "f64",
) -> dict[str, Any]:
    """Train with Adam and the paper's learning-rate schedule. ``shots=None`` uses exact
    losses and autograd; an integer uses shot estimates and parameter-shift gradients
    (``precision="f32"``: on f32 amplitudes, see :func:`shot_loss_and_grad`; the exact TVD
    of the history stays f64). Returns the history: loss and exact TVD per step, wall time."""
    if loss not in ("mmd", "kl", "fidelity"):
        raise ValueError(f"loss: unknown value {loss!r}; choose 'mmd', 'kl' or 'fidelity'")
    engine.check_precision(precision)
    if precision != "f64" and shots is None:
        raise ValueError("precision: 'f32' applies to shot training (shots=...); exact gradients run at f64")
    if shots is not None and not 2 <= shots <= MAX_SHOTS:
        raise ValueError(f"shots: must lie in [2, {MAX_SHOTS}] or be None, got {shots}")
    p = np.asarray(target_probs, dtype=np.float64)
    if p.shape != (2**model.n,) or np.any(p < 0) or not np.isclose(p.sum(), 1.0):
        raise ValueError(f"target_probs: expected a probability vector of length 2^{model.n}")
    p_t = torch.as_tensor(p)
    sig = mmd.mmd_sigmas_mixture(model.n) if sigmas is None else sigmas
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = Adam([model.theta], lr=lr_schedule(0))
    hist: dict[str, Any] = {"loss": [], "tvd": [], "lr": []}
    t0 = time.perf_counter()
    bar = tqdm(range(steps), desc=f"QCBM {loss}{'' if shots is None else f' {shots} shots'}", disable=not progress)
    for t in bar:
        opt.lr = lr_schedule(t)
        opt.zero_grad()
        if shots is None:
            if loss == "mmd":
                val = mmd.mmd2_exact(model.probs(), p_t, sig)
            elif loss == "kl":
                val = kl_divergence(p_t, model.probs(), eps)
            else:
                val = local_fidelity_loss(model, p)
            val.backward()
            value = float(val.detach())
        else:
            value, grad = shot_loss_and_grad(model, p, loss, shots, gen, sig, eps, precision)
            model.theta.grad = grad.to(model.theta.dtype)
        opt.step()
        with torch.no_grad():
            d = tvd(model.probs(), p_t)
        hist["loss"].append(value)
        hist["tvd"].append(d)
        hist["lr"].append(lr_schedule(t))
        if t % 10 == 0:
            bar.set_postfix(loss=f"{value:.4g}", tvd=f"{d:.3f}")
    hist["seconds"] = time.perf_counter() - t0
    hist["final_tvd"] = hist["tvd"][-1] if hist["tvd"] else tvd(model.probs().detach(), p_t)
    return hist
