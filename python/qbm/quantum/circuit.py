"""Parameterised circuits as lists of gates over a parameter vector.

``Circuit(n)`` records gates. ``circuit.run(params)`` executes them on the Rust
state-vector engine (:mod:`qbm.quantum.engine`; differentiable by the adjoint method)
for a batch of parameter vectors ``params`` (B, P) (or one vector (P,));
``circuit.state(params)`` is the batched torch reference simulator (any device, autograd
through every gate).
Rotation gates take an angle from a parameter index; every parameter should feed one
rotation gate for the two-term parameter-shift rule to hold
(d<O>/d theta = (<O>(theta + pi/2) - <O>(theta - pi/2)) / 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from qbm.quantum import statevector as sv

# The engine sits above this description and binds itself here when imported
# (qbm.quantum imports it): this module never imports the engine.
_ENGINE: Any = None


def bind_engine(engine: Any) -> None:
    """Called by :mod:`qbm.quantum.engine`: the module whose ``compile_circuit`` and
    ``run`` back :meth:`Circuit.compile` and :meth:`Circuit.run`."""
    global _ENGINE
    _ENGINE = engine


def _engine() -> Any:
    if _ENGINE is None:  # only reachable if qbm.quantum.circuit is loaded without its package
        raise RuntimeError("Circuit.run: the engine is not bound; import qbm.quantum")
    return _ENGINE


ROTATIONS = {"rx": sv.rx, "ry": sv.ry, "rz": sv.rz}


@dataclass
class Gate:
    name: str
    qubits: tuple[int, ...]
    param: int | None = None
    matrix: tuple[complex, ...] | None = None  # a fixed 2x2 gate ("mat"), row-major


@dataclass
class Circuit:
    n: int
    gates: list[Gate] = field(default_factory=list)
    num_params: int = 0

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n: need at least one qubit, got {self.n}")

    def __getstate__(self) -> dict[str, Any]:
        # compiled engine programs are rebuilt on demand (they do not pickle)
        return {k: v for k, v in self.__dict__.items() if k != "_compiled"}

    # ---- building
    def _new_param(self) -> int:
        self.num_params += 1
        return self.num_params - 1

    def _q(self, q: int) -> int:
        if not 0 <= q < self.n:
            raise ValueError(f"qubit: {q} out of range for {self.n} qubits")
        return q

    def rot(self, name: str, q: int, param: int | None = None) -> int:
        """Add RX/RY/RZ on qubit q; a new parameter unless ``param`` is given."""
        if name not in ROTATIONS:
            raise ValueError(f"name: unknown rotation {name!r}")
        k = self._new_param() if param is None else param
        self.gates.append(Gate(name, (self._q(q),), k))
        return k

    def rx(self, q: int) -> int:
        return self.rot("rx", q)

    def ry(self, q: int) -> int:
        return self.rot("ry", q)

    def rz(self, q: int) -> int:
        return self.rot("rz", q)

    def euler(self, q: int) -> tuple[int, int, int]:
        """Arbitrary single-qubit rotation RZ RY RZ (3 parameters)."""
        return (self.rz(q), self.ry(q), self.rz(q))

    def unitary(self, q: int, matrix: Any) -> None:
        """Add a fixed 2x2 unitary on qubit q (checked to be unitary to 1e-10)."""
        u = np.asarray(matrix, dtype=np.complex128)
        if u.shape != (2, 2) or not np.all(np.isfinite(u)):
            raise ValueError(f"matrix: expected a finite 2x2 array, got shape {u.shape}")
        if not np.allclose(u.conj().T @ u, np.eye(2), atol=1e-10):
            raise ValueError("matrix: not unitary (U^dag U differs from I by more than 1e-10)")
        self.gates.append(Gate("mat", (self._q(q),), None, tuple(complex(v) for v in u.ravel())))

    def _pair(self, a: int, b: int) -> tuple[int, int]:
        qa, qb = self._q(a), self._q(b)
        if qa == qb:
            raise ValueError(f"t: a two-qubit gate needs two different qubits, got {a} and {b}")
        return qa, qb

    def cx(self, c: int, t: int) -> None:
        self.gates.append(Gate("cx", self._pair(c, t)))

    def cz(self, a: int, b: int) -> None:
        self.gates.append(Gate("cz", self._pair(a, b)))

    def crot(self, name: str, c: int, t: int) -> int:
        """Controlled RX/RY/RZ (note: needs the four-term shift rule, not two)."""
        if name not in ROTATIONS:
            raise ValueError(f"name: unknown rotation {name!r}")
        pair = self._pair(c, t)
        k = self._new_param()
        self.gates.append(Gate("c" + name, pair, k))
        return k

    def product_layer(self, kind: str = "euler") -> None:
        for q in range(self.n):
            if kind == "euler":
                self.euler(q)
            else:
                self.rot(kind, q)

    def line_entangler(self, kind: str = "cx") -> None:
        for q in range(self.n - 1):
            self.cx(q, q + 1) if kind == "cx" else self.cz(q, q + 1)

    def all_to_all_entangler(self, kind: str = "cx") -> None:
        for a in range(self.n):
            for b in range(a + 1, self.n):
                self.cx(a, b) if kind == "cx" else self.cz(a, b)

    # ---- running
    def compile(self, inverse: bool = False) -> Any:
        """The circuit (or its inverse) compiled for the engine (cached)."""
        return _engine().compile_circuit(self, inverse)

    def run(
        self,
        params: torch.Tensor,
        *,
        initial: Any = None,
        inverse: bool = False,
        readout: str = "probs",
        num_threads: int | None = None,
        precision: str = "f64",
    ) -> torch.Tensor:
        """Probabilities, <Z_i> or [<Z_i>, <X_i>] (float64) on the engine; differentiable
        by the adjoint method at ``precision="f64"``; ``"f32"`` runs forward only. See
        :func:`qbm.quantum.engine.run`."""
        return _engine().run(
            self,
            params,
            initial=initial,
            inverse=inverse,
            readout=readout,
            num_threads=num_threads,
            precision=precision,
        )

    def sample(
        self,
        params: torch.Tensor,
        shots: int,
        seed: int,
        *,
        initial: Any = None,
        inverse: bool = False,
        num_threads: int | None = None,
        precision: str = "f64",
    ) -> Any:
        """``shots`` basis-state draws (indices, increasing) from the engine's output state
        for one parameter vector; see :func:`qbm.quantum.engine.sample`."""
        return _engine().sample(
            self,
            params,
            shots,
            seed,
            initial=initial,
            inverse=inverse,
            num_threads=num_threads,
            precision=precision,
        )

    def state(
        self,
        params: torch.Tensor,
        *,
        initial: torch.Tensor | None = None,
        inverse: bool = False,
        dtype: torch.dtype = torch.complex64,
    ) -> torch.Tensor:
        """Run the circuit (or its inverse) for a batch of parameter vectors.

        params: (P,) or (B, P) real; returns the state (B, 2, ..., 2)."""
        if params.ndim == 1:
            params = params[None, :]
        if params.shape[-1] != self.num_params:
            raise ValueError(f"params: expected {self.num_params} parameters, got {params.shape[-1]}")
        batch = params.shape[0]
        real = torch.float64 if dtype == torch.complex128 else torch.float32
        params = params.to(real)
        if initial is None:
            psi = sv.zero_state(self.n, batch, dtype, params.device)
        else:
            psi = initial.to(dtype)
            if psi.shape[0] == 1 and batch > 1:
                psi = psi.expand((batch,) + psi.shape[1:])
        gates = reversed(self.gates) if inverse else self.gates
        sign = -1.0 if inverse else 1.0
        for g in gates:
            angle = None if g.param is None else sign * params[:, g.param]
            psi = _apply(psi, g, angle, inverse)
        return psi

    def single_use_params(self) -> bool:
        """Whether every parameter feeds exactly one (uncontrolled) rotation gate."""
        uses = [0] * self.num_params
        for g in self.gates:
            if g.param is not None:
                if g.name not in ROTATIONS:
                    return False
                uses[g.param] += 1
        return all(u == 1 for u in uses)

    @torch.no_grad()
    def shifted_states(
        self,
        theta: torch.Tensor,
        shift: float,
        *,
        initial: torch.Tensor | None = None,
        inverse: bool = False,
        dtype: torch.dtype = torch.complex64,
    ) -> torch.Tensor:
        """States for the parameter-shift rule: rows [theta, theta + shift e_k (k < P),
        theta - shift e_k (k < P)], shape (1 + 2P, 2, ..., 2) — what ``state`` gives for
        that batch, with about half the work: a shifted circuit equals the unshifted one up
        to its shifted gate, so its row is forked from row 0 there. Needs
        :meth:`single_use_params`; no autograd."""
        if not self.single_use_params():
            raise ValueError("shifted_states: every parameter must feed exactly one rotation gate")
        if theta.ndim != 1 or theta.shape[0] != self.num_params:
            raise ValueError(f"theta: expected shape ({self.num_params},), got {tuple(theta.shape)}")
        P = self.num_params
        real = torch.float64 if dtype == torch.complex128 else torch.float32
        theta = theta.to(real)
        buf = torch.empty((1 + 2 * P,) + (2,) * self.n, dtype=dtype, device=theta.device)
        buf[0] = sv.zero_state(self.n, 1, dtype, theta.device)[0] if initial is None else initial.to(dtype)[0]
        rows = [0]  # output row of each active buffer row
        gates = reversed(self.gates) if inverse else self.gates
        sign = -1.0 if inverse else 1.0
        m = 1
        for g in gates:
            if g.param is None:
                buf[:m] = _apply(buf[:m], g, None, inverse)
                continue
            k = g.param
            buf[m] = buf[0]
            buf[m + 1] = buf[0]
            rows += [1 + k, 1 + P + k]
            m += 2
            angle = theta[k].expand(m).clone()
            angle[m - 2] += shift
            angle[m - 1] -= shift
            buf[:m] = _apply(buf[:m], g, sign * angle)
        order = torch.empty(1 + 2 * P, dtype=torch.long)
        order[torch.tensor(rows)] = torch.arange(1 + 2 * P)
        return buf[order]

    def probabilities(self, params: torch.Tensor, dtype: torch.dtype = torch.complex64) -> torch.Tensor:
        return sv.probabilities(self.state(params, dtype=dtype))

    def count(self, name: str) -> int:
        return sum(1 for g in self.gates if g.name == name)


def _apply(psi: torch.Tensor, g: Gate, angle: torch.Tensor | None, inverse: bool = False) -> torch.Tensor:
    """One gate on a batch of states; ``angle`` (B,) for parameterised gates (already
    negated for an inverse circuit); fixed matrices are conjugate-transposed there."""
    if g.name == "mat":
        assert g.matrix is not None
        u = torch.tensor(g.matrix, dtype=torch.complex128).reshape(2, 2)
        return sv.apply_gate(psi, g.qubits[0], u.conj().T if inverse else u)
    if g.name == "rz":
        assert angle is not None
        return sv.apply_rz(psi, g.qubits[0], angle)
    if g.name in ROTATIONS:
        assert angle is not None
        return sv.apply_gate(psi, g.qubits[0], ROTATIONS[g.name](angle))
    if g.name == "cx":
        return sv.cnot(psi, *g.qubits)
    if g.name == "cz":
        return sv.cz(psi, *g.qubits)
    assert angle is not None
    return sv.apply_controlled(psi, g.qubits[0], g.qubits[1], ROTATIONS[g.name[1:]](angle))
