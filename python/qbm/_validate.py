"""Input checks shared by the Python layer. Every error names the parameter."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def check_number(value: Any, name: str) -> float:
    """A real number (TypeError naming ``name`` for anything else, strings included)."""
    if isinstance(value, (bool, str, bytes)) or not isinstance(value, (int, float, np.integer, np.floating)):
        if not (isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf"):
            raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    return float(value)


def check_beta(beta: Any, name: str = "beta") -> float:
    b = check_number(beta, name)
    if not math.isfinite(b) or b <= 0:
        raise ValueError(f"{name}: inverse temperature must be finite and > 0, got {beta!r}")
    return b


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer >= {minimum}, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value}")
    return int(value)


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise TypeError(
            f"{name}: expected a string, one of {', '.join(map(repr, choices))}; got {type(value).__name__}"
        )
    if value not in choices:
        raise ValueError(f"{name}: unknown value {value!r}; choose one of {', '.join(map(repr, choices))}")
    return str(value)


def check_seed(seed: Any) -> int:
    """A seed in [0, 2**64); ``None`` draws one from the OS."""
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0])
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed: expected a non-negative integer or None, got {type(seed).__name__} {seed!r}")
    if seed < 0 or seed >= 2**64:
        raise ValueError(f"seed: must be in [0, 2**64), got {seed}")
    return int(seed)


def check_threads(num_threads: Any) -> int | None:
    """``None`` (QBM_NUM_THREADS or all cores) or 1 .. ``qbm._core.MAX_THREADS``."""
    if num_threads is None:
        return None
    from qbm import _core

    n = check_positive_int(num_threads, "num_threads")
    if n > _core.MAX_THREADS:
        raise ValueError(f"num_threads: {n} exceeds the limit of {_core.MAX_THREADS} threads")
    return n


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


# the core's cap on shots per circuit (qbm-core circuit::MAX_SHOTS; sampling costs O(shots))
MAX_SHOTS = 1_000_000_000
