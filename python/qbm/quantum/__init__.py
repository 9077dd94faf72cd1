"""A small batched torch state-vector simulator for parameterised circuits."""

from qbm.quantum import engine as _engine  # noqa: F401  (binds itself to Circuit.run)
from qbm.quantum.circuit import Circuit
from qbm.quantum.statevector import (
    apply_controlled,
    apply_gate,
    cnot,
    cz,
    expect_x,
    expect_z,
    probabilities,
    rx,
    ry,
    rz,
    sample_bits,
    zero_state,
)

__all__ = [
    "Circuit",
    "apply_controlled",
    "apply_gate",
    "cnot",
    "cz",
    "expect_x",
    "expect_z",
    "probabilities",
    "rx",
    "ry",
    "rz",
    "sample_bits",
    "zero_state",
]
