"""Input checks shared by the Python layer. Every error names the parameter."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def check_beta(beta: Any, name: str = "beta") -> float:
    try:
        b = float(beta)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: must be a positive number, got {beta!r}") from None
    if not math.isfinite(b) or b <= 0:
        raise ValueError(f"{name}: inverse temperature must be finite and > 0, got {beta!r}")
    return b


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}: must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value}")
    return int(value)


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name}: unknown value {value!r}; choose one of {', '.join(map(repr, choices))}")
    return str(value)


def check_seed(seed: Any) -> int:
    """A seed in [0, 2**64); ``None`` draws one from the OS."""
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0])
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed: must be a non-negative integer or None, got {seed!r}")
    if seed < 0 or seed >= 2**64:
        raise ValueError(f"seed: must be in [0, 2**64), got {seed}")
    return int(seed)


def check_threads(num_threads: Any) -> int | None:
    if num_threads is None:
        return None
    return check_positive_int(num_threads, "num_threads")


def as_spins(spins: Any, n: int, name: str = "spins") -> np.ndarray:
    """(N, n) C-contiguous int8 array of +-1 values (a 1-D input is one row)."""
    a = np.asarray(spins)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] != n:
        raise ValueError(f"{name}: expected shape (N, {n}), got {np.shape(spins)}")
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{name}: expected numbers -1/+1, got dtype {a.dtype}")
    if a.size and not np.all((a == 1) | (a == -1)):
        raise ValueError(f"{name}: values must be -1 or +1")
    return np.ascontiguousarray(a, dtype=np.int8)


def finite_array(x: Any, name: str, ndim: int) -> np.ndarray:
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a numeric array") from None
    if a.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: contains NaN or inf")
    return a
