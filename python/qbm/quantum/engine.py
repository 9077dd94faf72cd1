"""Circuits on the Rust state-vector engine (``qbm._core.CircuitProgram``), with autograd.

:class:`qbm.quantum.Circuit` is the description; :func:`compile_circuit` turns it (or its
inverse) into a gate list the core executes, once per circuit. Every parameterised gate
owns an angle *slot*: ``angles = coef * params[:, slot_param]`` (coef -1 for the gates
of an inverse circuit), taken in torch so that autograd maps slot gradients back to
parameters that feed several gates (the QGAN's ``w z + b``).

:func:`run` is differentiable: the forward pass runs the engine and returns the
probabilities, <Z_i> or (<Z_i>, <X_i>); the backward pass runs one adjoint sweep in the
core with lambda = dL/d(psi^*) built from the output's gradient (diag(dL/dq) psi for
probabilities, sum_i g_i Z_i psi + h_i X_i psi for expectations), whatever the number
of parameters. The engine computes in float64 on the CPU; the torch simulator in
:mod:`qbm.quantum.statevector` stays the reference (and the path for other devices).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from qbm import _core
from qbm._validate import MAX_SHOTS
from qbm.quantum.circuit import bind_engine

if TYPE_CHECKING:
    from qbm.quantum.circuit import Circuit

KINDS = {"rx": 0, "ry": 1, "rz": 2, "crx": 3, "cry": 4, "crz": 5, "cx": 6, "cz": 7, "mat": 8}
READOUTS = ("probs", "z", "zx")
PRECISIONS = ("f64", "f32")


def check_precision(precision: str) -> None:
    """A clear error naming ``precision`` unless it is one of :data:`PRECISIONS`."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision: unknown value {precision!r}; choose one of {PRECISIONS}")


@dataclass(frozen=True)
class Compiled:
    """A circuit (or its inverse) compiled for the engine."""

    program: Any
    n: int
    slot_param: torch.Tensor  # (S,) int64: the parameter index of every slot
    slot_coef: torch.Tensor  # (S,) float64: +1, or -1 for gates of an inverse circuit
    inverse: bool

    @property
    def num_slots(self) -> int:
        return int(self.slot_param.shape[0])

    def angles(self, params: torch.Tensor) -> torch.Tensor:
        """Slot angles (B, S) float64 from parameters (B, P) (differentiable)."""
        return params.to(torch.float64)[:, self.slot_param] * self.slot_coef

    def param_grad(self, slot_grad: np.ndarray | torch.Tensor, num_params: int) -> torch.Tensor:
        """Parameter gradient (P,) from slot gradients (S,) with respect to the slot angles."""
        g = torch.as_tensor(slot_grad, dtype=torch.float64) * self.slot_coef
        return torch.zeros(num_params, dtype=torch.float64).index_add_(0, self.slot_param, g)


def _dagger(m: np.ndarray) -> np.ndarray:
    return m.conj().T


def program_codes(circuit: Circuit, inverse: bool = False) -> tuple[tuple[Any, ...], list[int]]:
    """The arguments of ``_core.CircuitProgram`` for ``circuit`` (or its inverse): (n, kinds,
    first qubits, second qubits, fixed matrices (G, 8)), and the parameter index of every slot."""
    gates = list(reversed(circuit.gates)) if inverse else list(circuit.gates)
    kinds, q0, q1, mats, slot_param = [], [], [], [], []
    for g in gates:
        if g.name not in KINDS:
            raise ValueError(f"circuit: gate {g.name!r} has no engine kernel")
        kinds.append(KINDS[g.name])
        q0.append(g.qubits[0])
        q1.append(g.qubits[1] if len(g.qubits) > 1 else 0)
        m = np.zeros(8)
        if g.name == "mat":
            u = np.asarray(g.matrix, dtype=np.complex128).reshape(2, 2)
            u = _dagger(u) if inverse else u
            m = np.stack([u.real.ravel(), u.imag.ravel()], -1).ravel()
        mats.append(m)
        if g.param is not None:
            slot_param.append(g.param)
    codes = (
        circuit.n,
        np.asarray(kinds, dtype=np.int64),
        np.asarray(q0, dtype=np.int64),
        np.asarray(q1, dtype=np.int64),
        np.asarray(mats, dtype=np.float64).reshape(len(gates), 8),
    )
    return codes, slot_param


def compile_circuit(circuit: Circuit, inverse: bool = False) -> Compiled:
    """Compile ``circuit`` (or its inverse: gates reversed, angles negated, fixed matrices
    conjugate-transposed) for the engine. Cached on the circuit until a gate is added."""
    key = (len(circuit.gates), bool(inverse))
    cache = circuit.__dict__.setdefault("_compiled", {})
    hit = cache.get(key)
    if hit is not None:
        return hit
    codes, slot_param = program_codes(circuit, inverse)
    program = _core.CircuitProgram(*codes)
    sp = torch.as_tensor(slot_param, dtype=torch.long)
    coef = torch.full((len(slot_param),), -1.0 if inverse else 1.0, dtype=torch.float64)
    out = Compiled(program, circuit.n, sp, coef, bool(inverse))
    cache[key] = out
    return out


def planes(state: Any, n: int) -> np.ndarray:
    """A state or batch of states (complex (..., 2, ..., 2) or (..., 2^n), real or
    complex) as engine planes (k, 2, 2^n) float64."""
    t = torch.as_tensor(state)
    d = 2**n
    t = t.reshape(-1, d)
    if t.is_complex():
        t = t.to(torch.complex128)
        out = torch.stack([t.real, t.imag], 1)
    else:
        out = torch.stack([t.to(torch.float64), torch.zeros(t.shape, dtype=torch.float64)], 1)
    return np.ascontiguousarray(out.detach().cpu().numpy())


def z_expect(q: torch.Tensor, n: int) -> torch.Tensor:
    """<Z_i> (B, n) from probabilities q (B, 2^n): for each qubit the probability mass
    with its bit 0 minus that with its bit 1, by a view of q (no n x 2^n table of signs:
    at n = 24 that table alone was 3.2 GB)."""
    b = q.shape[0]
    out = []
    for i in range(n):
        v = q.reshape(b, 2**i, 2, 2 ** (n - i - 1)).sum((1, 3))
        out.append(v[:, 0] - v[:, 1])
    return torch.stack(out, -1)


def z_weights(g: torch.Tensor, n: int) -> torch.Tensor:
    """w (B, 2^n) with w(x) = sum_i g_i (1 - 2 bit_i(x)) for g (B, n): the weight on each
    basis state of the gradient of sum_i g_i <Z_i>, built qubit by qubit in place."""
    b = g.shape[0]
    w = torch.zeros(b, 2**n, dtype=torch.float64)
    for i in range(n):
        v = w.view(b, 2**i, 2, 2 ** (n - i - 1))
        gi = g[:, i, None, None]
        v[:, :, 0] += gi
        v[:, :, 1] -= gi
    return w


def _flip(p: torch.Tensor, n: int, q: int) -> torch.Tensor:
    """X on qubit q applied to planes (B, 2, 2^n)."""
    b = p.shape[0]
    return p.reshape(b, 2, 2**q, 2, 2 ** (n - q - 1)).flip(3).reshape(p.shape)


def _x_expect(p: torch.Tensor, n: int) -> torch.Tensor:
    b = p.shape[0]
    out = []
    for q in range(n):
        v = p.reshape(b, 2, 2**q, 2, 2 ** (n - q - 1))
        out.append(2 * (v[:, :, :, 0] * v[:, :, :, 1]).sum((1, 2, 3)))
    return torch.stack(out, -1)


def readout_of(psi: torch.Tensor, n: int, readout: str) -> torch.Tensor:
    """Probabilities (B, 2^n), <Z> (B, n) or [<Z>, <X>] (B, 2n) from planes (B, 2, 2^n)."""
    q = psi[:, 0] ** 2 + psi[:, 1] ** 2
    if readout == "probs":
        return q
    z = z_expect(q, n)
    if readout == "z":
        return z
    return torch.cat([z, _x_expect(psi, n)], 1)


class _EngineRun(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        angles: torch.Tensor,
        comp: Compiled,
        initial: np.ndarray | None,
        readout: str,
        num_threads: int | None,
    ) -> torch.Tensor:
        a = np.ascontiguousarray(angles.detach().cpu().numpy(), dtype=np.float64)
        psi = comp.program.states(a, initial, num_threads=num_threads)
        ctx.comp, ctx.readout, ctx.threads, ctx.a, ctx.psi = comp, readout, num_threads, a, psi
        return readout_of(torch.from_numpy(psi), comp.n, readout)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        n = ctx.comp.n
        psi = torch.from_numpy(ctx.psi)
        g = grad.to(torch.float64)
        if ctx.readout == "probs":
            lam = g[:, None, :] * psi
        else:
            gz = z_weights(g[:, :n], n)
            lam = gz[:, None, :] * psi
            if ctx.readout == "zx":
                for q in range(n):
                    lam = lam + g[:, n + q, None, None] * _flip(psi, n, q)
        ga = ctx.comp.program.adjoint(ctx.a, ctx.psi, np.ascontiguousarray(lam.numpy()), num_threads=ctx.threads)
        return torch.from_numpy(ga), None, None, None, None


def run(
    circuit: Circuit,
    params: torch.Tensor,
    *,
    initial: Any = None,
    inverse: bool = False,
    readout: str = "probs",
    num_threads: int | None = None,
    precision: str = "f64",
) -> torch.Tensor:
    """Run ``circuit`` (or its inverse) on the engine for parameters (P,) or (B, P).

    Returns float64 probabilities (B, 2^n), <Z_i> (B, n) or [<Z_i>, <X_i>] (B, 2n)
    ((...) without the batch axis for a (P,) input), differentiable with respect to
    ``params`` by the adjoint method (not with respect to ``initial``, which is taken as a
    constant). ``initial``: a state (2^n amplitudes, or (1 or B, 2, ..., 2)), default
    |0...0>. ``precision="f32"`` runs the state in float32 (half the memory; the readout
    is computed in float32 and returned as float64; forward only, no gradient)."""
    if readout not in READOUTS:
        raise ValueError(f"readout: unknown value {readout!r}; choose one of {READOUTS}")
    check_precision(precision)
    single = params.ndim == 1
    p = params[None, :] if single else params
    if p.ndim != 2 or p.shape[1] != circuit.num_params:
        raise ValueError(f"params: expected {circuit.num_params} parameters per row, got shape {tuple(params.shape)}")
    comp = compile_circuit(circuit, inverse)
    init = None if initial is None else planes(initial, circuit.n)
    if precision == "f32":
        if torch.is_grad_enabled() and params.requires_grad:
            raise ValueError("precision: 'f32' runs forward only; use 'f64' for gradients (or torch.no_grad())")
        a = np.ascontiguousarray(comp.angles(p.detach()).numpy(), dtype=np.float64)
        psi = torch.from_numpy(comp.program.states_f32(a, init, num_threads=num_threads))
        out = readout_of(psi, comp.n, readout).to(torch.float64)
    else:
        out = _EngineRun.apply(comp.angles(p), comp, init, readout, num_threads)
    return out[0] if single else out


def states(
    circuit: Circuit, params: torch.Tensor, *, initial: Any = None, inverse: bool = False, precision: str = "f64"
) -> torch.Tensor:
    """Output states as complex128 (B, 2, ..., 2), complex64 with ``precision="f32"``
    (no autograd)."""
    check_precision(precision)
    p = params[None, :] if params.ndim == 1 else params
    comp = compile_circuit(circuit, inverse)
    init = None if initial is None else planes(initial, circuit.n)
    a = np.ascontiguousarray(comp.angles(p.detach()).numpy())
    run_states = comp.program.states_f32 if precision == "f32" else comp.program.states
    psi = torch.from_numpy(run_states(a, init))
    return torch.complex(psi[:, 0], psi[:, 1]).reshape((p.shape[0],) + (2,) * circuit.n)


def sample(
    circuit: Circuit,
    params: torch.Tensor,
    shots: int,
    seed: int,
    *,
    initial: Any = None,
    inverse: bool = False,
    index0: int = 0,
    num_threads: int | None = None,
    precision: str = "f64",
) -> np.ndarray:
    """``shots`` computational-basis draws from the output state for one parameter
    vector (P,): outcome indices (shots,) int64 in increasing order (qubit 0 the most
    significant bit), from the engine stream (seed, index0) -- the draws
    :func:`sample_counts` makes from the state's probabilities on that stream (the same
    counts at f64), computed in the core without a 2^n array of probabilities."""
    check_precision(precision)
    if params.ndim != 1 or params.shape[0] != circuit.num_params:
        raise ValueError(f"params: expected one vector of {circuit.num_params} parameters, got {tuple(params.shape)}")
    if not 1 <= int(shots) <= MAX_SHOTS:
        raise ValueError(f"shots: must lie in [1, {MAX_SHOTS}], got {shots}")
    comp = compile_circuit(circuit, inverse)
    init = None if initial is None else planes(initial, circuit.n)
    a = np.ascontiguousarray(comp.angles(params.detach()[None]).numpy(), dtype=np.float64)[0]
    out = comp.program.sample(
        a, int(shots), int(seed), init, index0=int(index0), num_threads=num_threads, precision=precision
    )
    return out.astype(np.int64)


def sample_counts(probs: Any, shots: int, seed: int, index0: int = 0) -> np.ndarray:
    """Multinomial counts (B, 2^n) int64 of ``shots`` draws from every row of ``probs``,
    row r from the engine stream (seed, index0 + r)."""
    p = np.ascontiguousarray(torch.as_tensor(probs).detach().to(torch.float64).reshape(-1, probs.shape[-1]).numpy())
    return _core.sample_counts(np.clip(p, 0.0, None), int(shots), int(seed), int(index0))


bind_engine(sys.modules[__name__])  # Circuit.compile / Circuit.run call this module
