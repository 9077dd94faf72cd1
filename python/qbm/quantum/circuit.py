"""Parameterised circuits as lists of gates over a parameter vector.

``Circuit(n)`` records gates; ``circuit.state(params)`` runs them on |0...0> for a batch
of parameter vectors ``params`` (B, P) (or one vector (P,)), in one batched pass.
Rotation gates take an angle from a parameter index; every parameter should feed one
rotation gate for the two-term parameter-shift rule to hold
(d<O>/d theta = (<O>(theta + pi/2) - <O>(theta - pi/2)) / 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from qbm.quantum import statevector as sv

ROTATIONS = {"rx": sv.rx, "ry": sv.ry, "rz": sv.rz}


@dataclass
class Gate:
    name: str
    qubits: tuple[int, ...]
    param: int | None = None


@dataclass
class Circuit:
    n: int
    gates: list[Gate] = field(default_factory=list)
    num_params: int = 0

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n: need at least one qubit, got {self.n}")

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

    def cx(self, c: int, t: int) -> None:
        self.gates.append(Gate("cx", (self._q(c), self._q(t))))

    def cz(self, a: int, b: int) -> None:
        self.gates.append(Gate("cz", (self._q(a), self._q(b))))

    def crot(self, name: str, c: int, t: int) -> int:
        """Controlled RX/RY/RZ (note: needs the four-term shift rule, not two)."""
        if name not in ROTATIONS:
            raise ValueError(f"name: unknown rotation {name!r}")
        k = self._new_param()
        self.gates.append(Gate("c" + name, (self._q(c), self._q(t)), k))
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
            if g.name in ROTATIONS:
                assert g.param is not None
                psi = sv.apply_gate(psi, g.qubits[0], ROTATIONS[g.name](sign * params[:, g.param]))
            elif g.name == "cx":
                psi = sv.cnot(psi, *g.qubits)
            elif g.name == "cz":
                psi = sv.cz(psi, *g.qubits)
            else:
                assert g.param is not None
                U = ROTATIONS[g.name[1:]](sign * params[:, g.param])
                psi = sv.apply_controlled(psi, g.qubits[0], g.qubits[1], U)
        return psi

    def probabilities(self, params: torch.Tensor, dtype: torch.dtype = torch.complex64) -> torch.Tensor:
        return sv.probabilities(self.state(params, dtype=dtype))

    def count(self, name: str) -> int:
        return sum(1 for g in self.gates if g.name == name)
