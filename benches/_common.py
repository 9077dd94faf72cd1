"""Helpers for benchmark scripts: timing with medians, tables, output files."""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any


def print_core() -> None:
    """Print the path of the qbm core a bench times: an installed qbm (CI installs its build
    into site-packages) and the working tree's (``PYTHONPATH=python``) may differ."""
    from qbm import _core

    print(f"qbm core timed: {_core.__file__}", flush=True)


def median_time(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def print_table(rows: list[dict[str, Any]], cols: list[str]) -> None:
    widths = [max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in cols]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(_fmt(r.get(c)).ljust(w) for c, w in zip(cols, widths)))


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def write_json(path: str, obj: Any) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as fh:
        json.dump(obj, fh, indent=2)


def fastest(variants: dict[str, Callable[[], Any]], repeats: int) -> tuple[str, float, dict[str, float]]:
    """Time every documented setting of a peer (name -> call) and keep the fastest:
    (its name, its median seconds, every setting's median seconds)."""
    times = {name: median_time(fn, repeats) for name, fn in variants.items()}
    best = min(times, key=times.get)
    return best, times[best], times


def check_mean_energy(name: str, spins: Any, model: Any, beta: float, z: float = 6.0) -> None:
    """Sign convention of a peer: its fixed-beta samples' mean energy (under qbm's
    E = sum h s + sum J s s) must match the exact Boltzmann mean at ``beta`` (enumeration,
    n <= 16) within ``z`` standard errors; a flipped h or J sign fails by far."""
    import numpy as np

    from qbm.diagnostics import all_states, exact_distribution

    p = exact_distribution(model, beta)
    e_all = model.energy(all_states(model.num_variables))
    exact = float(p @ e_all)
    e = model.energy(np.asarray(spins))
    se = float(np.std(e, ddof=1) / np.sqrt(len(e))) + 1e-12
    if abs(e.mean() - exact) > z * se + 1e-9:
        raise AssertionError(f"{name}: mean energy {e.mean():.4f} vs exact {exact:.4f} at beta {beta} (se {se:.2g}): "
                             "its sign convention differs from qbm's")  # fmt: skip
    dev = abs(e.mean() - exact) / se
    print(f"  convention check {name}: mean energy {e.mean():.4f} vs exact {exact:.4f} ({dev:.1f} se)")
