"""Device annealing schedules: A(s), B(s) in GHz, the device temperature, and the rule
from anneal time to Monte Carlo sweeps.

D-Wave writes the annealing Hamiltonian as

    H(s) = -A(s)/2 sum_i X_i + B(s)/2 [sum_i h_i Z_i + sum_{i<j} J_ij Z_i Z_j]

with A and B in GHz as energy / h (Planck's h, not h-bar), and publishes A(s), B(s) per
QPU as a table (a spreadsheet with columns ``s``, ``A(s) (GHz)``, ``B(s) (GHz)``). At the
device temperature T the Boltzmann weight is exp(-H / k_B T), so an energy of 1 GHz
counts beta_GHz = h * 1e9 / (k_B T) per GHz (3.0 at 16 mK). Path-integral SQA of that
Hamiltonian uses, per sweep at s, the problem weight beta_p = beta_GHz B(s) / 2 and the
transverse weight beta_x = beta_GHz A(s) / 2 (see ``qbm-core``'s ``drivers::sqa``).

Anneal time to sweeps (the stated rule, :func:`anneal_sweeps`): Monte Carlo time has no
physical clock, so the number of sweeps is proportional to the anneal time,
``num_sweeps = max(min_sweeps, round(sweeps_per_us * t_us))``, with ``sweeps_per_us`` a
calibration constant (default 1000: one sweep per nanosecond), and s advances linearly
in time (s_k = (k + 1/2) / num_sweeps for a standard forward anneal). Trends in anneal
time are what it can show; the absolute scale is the calibration's.

The schedule shipped with qbm (:func:`advantage2_schedule` without a path) is *not*
D-Wave's published Advantage2 table, which cannot be downloaded on the machines qbm is
built on: it is a smooth stand-in with the published curves' qualitative shape (A falls
from about 8 GHz to zero, B rises to about 10 GHz, crossing near s = 0.33), marked by its
``source`` and ``version``. For a study that claims to emulate a device, export the
device's published table to CSV and pass it (``advantage2_schedule(path)``,
:meth:`AnnealSchedule.from_csv`, or ``QBM_ANNEAL_SCHEDULE=path``); a solver's properties
that carry a schedule table (``anneal_schedule_table``: rows of s, A, B) are read by
:meth:`AnnealSchedule.from_properties`.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

H_PLANCK = 6.62607015e-34  # J s (exact, SI 2019)
K_BOLTZMANN = 1.380649e-23  # J / K (exact, SI 2019)
DEFAULT_TEMPERATURE_MK = 16.0
DEFAULT_SWEEPS_PER_US = 1000.0


def beta_per_ghz(temperature_mk: float) -> float:
    """Inverse temperature per GHz of energy: h * 1e9 / (k_B T), T in millikelvin."""
    t = float(temperature_mk)
    if not (math.isfinite(t) and t > 0):
        raise ValueError(f"temperature_mk: must be finite and > 0, got {temperature_mk!r}")
    return H_PLANCK * 1e9 / (K_BOLTZMANN * t * 1e-3)


def anneal_sweeps(anneal_time_us: float, *, sweeps_per_us: float = DEFAULT_SWEEPS_PER_US,
                  min_sweeps: int = 1) -> int:  # fmt: skip
    """The stated rule: ``max(min_sweeps, round(sweeps_per_us * anneal_time_us))``."""
    t = float(anneal_time_us)
    if not (math.isfinite(t) and t > 0):
        raise ValueError(f"anneal_time_us: must be finite and > 0, got {anneal_time_us!r}")
    r = float(sweeps_per_us)
    if not (math.isfinite(r) and r > 0):
        raise ValueError(f"sweeps_per_us: must be finite and > 0, got {sweeps_per_us!r}")
    return max(int(min_sweeps), int(round(r * t)))


def forward_path(num_sweeps: int) -> np.ndarray:
    """s at the midpoint of each sweep of a linear forward anneal from 0 to 1."""
    k = np.arange(int(num_sweeps), dtype=np.float64)
    return (k + 0.5) / num_sweeps


@dataclass(frozen=True)
class AnnealSchedule:
    """A(s), B(s) in GHz on a grid of s (interpolated linearly between grid points)."""

    s: np.ndarray
    A: np.ndarray
    B: np.ndarray
    name: str = "custom"
    source: str = "user"
    version: str = ""
    temperature_mk: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        s, a, b = (np.asarray(v, dtype=np.float64) for v in (self.s, self.A, self.B))
        if s.ndim != 1 or s.size < 2 or a.shape != s.shape or b.shape != s.shape:
            raise ValueError(f"s: expected 1-D s, A, B of one length >= 2, got {s.shape}, {a.shape}, {b.shape}")
        if not (np.all(np.isfinite(s)) and np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
            raise ValueError("A: s, A(s) and B(s) must be finite")
        if np.any(np.diff(s) <= 0) or s[0] > 0 or s[-1] < 1:
            raise ValueError(f"s: must increase strictly and cover [0, 1], got [{s[0]}, {s[-1]}]")
        if np.any(a < 0) or np.any(b < 0):
            raise ValueError("A: A(s) and B(s) must be >= 0 (GHz)")
        if self.temperature_mk is not None:
            t = self.temperature_mk
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not (math.isfinite(t) and t > 0):
                raise ValueError(f"temperature_mk: must be finite and > 0 (millikelvin), got {t!r}")
        object.__setattr__(self, "s", s)
        object.__setattr__(self, "A", a)
        object.__setattr__(self, "B", b)

    def __call__(self, s: Any) -> tuple[np.ndarray, np.ndarray]:
        """(A(s), B(s)) in GHz at the given s values."""
        x = np.asarray(s, dtype=np.float64)
        if np.any(~np.isfinite(x)) or np.any(x < 0) or np.any(x > 1):
            raise ValueError("s: values must lie in [0, 1]")
        return np.interp(x, self.s, self.A), np.interp(x, self.s, self.B)

    def temperature(self, temperature_mk: float | None = None) -> float:
        """The temperature an anneal runs at (mK): the one given, else the schedule's own,
        else :data:`DEFAULT_TEMPERATURE_MK`."""
        if temperature_mk is not None:
            return float(temperature_mk)
        return float(self.temperature_mk if self.temperature_mk is not None else DEFAULT_TEMPERATURE_MK)

    def fields(self, s_path: Any, *, temperature_mk: float | None = None) -> np.ndarray:
        """(num_sweeps, 2) weights (beta_p, beta_x) = beta_GHz (B(s)/2, A(s)/2) for SQA."""
        b = beta_per_ghz(self.temperature(temperature_mk))
        a, bb = self(s_path)
        return np.ascontiguousarray(np.stack([b * bb / 2, b * a / 2], axis=1))

    @classmethod
    def from_functions(cls, A: Any, B: Any, *, points: int = 1001, **kw: Any) -> AnnealSchedule:
        """Tabulate callables A(s), B(s) (GHz) on ``points`` evenly spaced s."""
        s = np.linspace(0.0, 1.0, int(points))
        return cls(s, np.asarray(A(s), dtype=float), np.asarray(B(s), dtype=float), **kw)

    @classmethod
    def from_csv(cls, path: str, **kw: Any) -> AnnealSchedule:
        """Read a table with columns s, A, B in GHz: D-Wave's published headers (``s``,
        ``A(s) (GHz)``, ``B(s) (GHz)``) or plain ``s,A,B``; lines starting with # are
        comments (``# key: value`` lines become ``meta``, and name, source and version)."""
        meta: dict[str, str] = {}
        rows: list[list[str]] = []
        try:
            with open(path, newline="") as fh:
                for line in fh:
                    if line.startswith("#"):
                        k, sep, v = line[1:].partition(":")
                        if sep:
                            meta[k.strip()] = v.strip()
                        continue
                    if line.strip():
                        rows.append(next(csv.reader([line])))
        except OSError as e:
            raise ValueError(f"path: cannot read the schedule {path!r}: {e}") from None
        if len(rows) < 3:
            raise ValueError(f"path: {path!r} holds no schedule table (header and >= 2 rows)")
        head = [h.strip().lower() for h in rows[0]]

        def col(*names: str) -> int:
            for i, h in enumerate(head):
                if any(h == n or h.startswith(n + " ") or h.startswith(n + "(") for n in names):
                    return i
            raise ValueError(f"path: {path!r} lacks a column {names[0]!r} (header {rows[0]})")

        i_s, i_a, i_b = col("s"), col("a(s)", "a"), col("b(s)", "b")
        try:
            t = np.array([[float(r[i_s]), float(r[i_a]), float(r[i_b])] for r in rows[1:]])
        except (ValueError, IndexError) as e:
            raise ValueError(f"path: {path!r} has a malformed row: {e}") from None
        kw.setdefault("name", meta.get("name", os.path.basename(path)))
        kw.setdefault("source", meta.get("source", path))
        kw.setdefault("version", meta.get("version", ""))
        if "temperature_mk" in meta:
            try:
                kw.setdefault("temperature_mk", float(meta["temperature_mk"]))
            except ValueError:
                raise ValueError(
                    f"temperature_mk: {path!r} gives {meta['temperature_mk']!r}, not a number of millikelvin"
                ) from None
        return cls(t[:, 0], t[:, 1], t[:, 2], meta=meta, **kw)

    @classmethod
    def from_properties(cls, properties: dict[str, Any]) -> AnnealSchedule | None:
        """A schedule from a solver's properties (``anneal_schedule_table``: rows of s,
        A, B in GHz; ``temperature_mk`` if present), or None when they carry none."""
        table = properties.get("anneal_schedule_table")
        if table is None:
            return None
        t = np.asarray(table, dtype=np.float64)
        if t.ndim != 2 or t.shape[1] != 3:
            raise ValueError(f"properties: anneal_schedule_table must be rows of (s, A, B), got shape {t.shape}")
        return cls(t[:, 0], t[:, 1], t[:, 2], name=str(properties.get("chip_id", "solver")), source="solver properties",
                   temperature_mk=properties.get("temperature_mk"))  # fmt: skip


_PACKAGED = os.path.join(os.path.dirname(__file__), "data", "advantage2_generic.csv")


def advantage2_schedule(path: str | None = None) -> AnnealSchedule:
    """The schedule the stand-in uses: ``path`` (or ``$QBM_ANNEAL_SCHEDULE``) when given,
    D-Wave's published table exported to CSV; otherwise the packaged generic stand-in
    (see the module docs: not D-Wave's table)."""
    path = path or os.environ.get("QBM_ANNEAL_SCHEDULE") or None
    path = path or _PACKAGED
    try:
        st = os.stat(path)
        key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    except OSError:
        return AnnealSchedule.from_csv(path)  # raises the error naming the path
    hit = _TABLES.get(key)
    if hit is None:
        hit = AnnealSchedule.from_csv(path)
        if len(_TABLES) >= 16:
            _TABLES.clear()
        _TABLES[key] = hit
    return hit


# tables read, by (path, size, modification time): samplers called thousands of times in a
# training loop ask for the schedule on every call (AnnealSchedule is frozen, so sharing is safe)
_TABLES: dict[tuple[str, int, int], AnnealSchedule] = {}


def as_schedule(spec: Any) -> AnnealSchedule:
    """``"advantage2"`` -> :func:`advantage2_schedule`; an :class:`AnnealSchedule` as it is."""
    if isinstance(spec, AnnealSchedule):
        return spec
    if isinstance(spec, str) and spec == "advantage2":
        return advantage2_schedule()
    raise ValueError(f"schedule: expected 'advantage2' or an AnnealSchedule, got {spec!r}")


def _generic_table(points: int = 1001) -> np.ndarray:
    """The packaged stand-in: A(s) = 8 (1 - s)^2 e^(-3 s) GHz, B(s) = 10 (0.02 + 0.98 s^2)
    GHz (how ``data/advantage2_generic.csv`` was written)."""
    s = np.linspace(0.0, 1.0, points)
    return np.stack([s, 8.0 * (1 - s) ** 2 * np.exp(-3 * s), 10.0 * (0.02 + 0.98 * s**2)], axis=1)
