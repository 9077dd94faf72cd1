"""Closed-system quantum annealing simulated exactly: the Schrödinger equation of the
device Hamiltonian on a state vector (``qbm._core.TransverseIsing``).

H(t) = -A(t)/2 sum_i X_i + B(t)/2 E(z), A and B in GHz (energy / h), t in ns, h = 1;
E(z) the model's energy (times ``energy_scale``) on basis state z. The state starts in
|+>^n (the ground state of the transverse field) or in a given basis state, and evolves
by second-order (Strang) steps: amplitude z times exp(-i pi dt B E(z) / 2), RX(-2 pi A dt)
on every qubit, the same phase again, A and B taken at the step's midpoint (see
``qbm-core``'s ``schrodinger`` module). The number of steps is chosen by step doubling:
runs with m and 2m steps until the total-variation distance between their readout
distributions, TV(|psi_m|^2, |psi_2m|^2), is at most ``tv_target``; ``info`` reports
that TV, its Richardson estimate of the returned state's own TV error (TV / 3 for a
second-order method), and the 2-norm difference of the two states (which counts relative
phases readout never sees, so it is larger). Reads are basis states drawn from
|psi(t_a)|^2, read r from the core's stream (seed, r), so the same seed gives the same
samples on any number of threads.

Schedules: a device table (``schedule="advantage2"`` or an
:class:`~qbm.samplers.schedule.AnnealSchedule`) along s(t): a forward anneal over
``anneal_time_us``, or D-Wave's ``anneal_schedule`` points [(t_us, s), ...] (pauses and
quenches; a schedule starting at s = 1 is a reverse anneal and needs ``initial_state``);
or ``time_schedule=(A, B)``, callables of t in ns giving GHz (B may change sign) over
[0, 1000 anneal_time_us].
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import numpy as np

from qbm import _core
from qbm.ising import IsingModel
from qbm._validate import as_spins, check_number, check_positive_int, check_seed, check_threads
from qbm.samplers import schedule as sch
from qbm.samplers._base import IsingSampler, SampleResult, check_model

#: the most steps a run may take before it reports that it did not reach ``tv_target``
DEFAULT_MAX_STEPS = 1 << 21
#: a progress bar is shown when a call is expected to take longer than this (seconds)
PROGRESS_AFTER_S = 2.0
#: seconds of core work between progress updates (and Ctrl-C checks in Python)
CHUNK_S = 0.5
# measured cost of one step per amplitude-qubit on one core (used only to size chunks)
_SECONDS_PER_AMP_QUBIT = 0.4e-9


class TimeSchedule:
    """A(t), B(t) in GHz on t in ns over [0, duration_ns], from a device table along a
    piecewise-linear s(t), or from user callables."""

    def __init__(self, a_of_t: Any, b_of_t: Any, duration_ns: float, description: str) -> None:
        self.a_of_t, self.b_of_t = a_of_t, b_of_t
        self.duration_ns = float(duration_ns)
        self.description = description

    def __call__(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = np.asarray(t, dtype=np.float64)
        a = _evaluate(self.a_of_t, t, "time_schedule")
        b = _evaluate(self.b_of_t, t, "time_schedule")
        return a, b

    @classmethod
    def from_device(cls, table: sch.AnnealSchedule, points_us: list[tuple[float, float]]) -> TimeSchedule:
        ts = np.array([p[0] for p in points_us], dtype=np.float64) * 1e3
        ss = np.array([p[1] for p in points_us], dtype=np.float64)

        def s_of(t: np.ndarray) -> np.ndarray:
            return np.clip(np.interp(t, ts, ss), 0.0, 1.0)

        desc = f"{table.name} {table.version}".strip()
        return cls(lambda t: table(s_of(t))[0], lambda t: table(s_of(t))[1], ts[-1], desc)


def _evaluate(fn: Any, t: np.ndarray, name: str) -> np.ndarray:
    try:
        v = np.asarray(fn(t), dtype=np.float64)
        if v.shape != t.shape:
            v = np.broadcast_to(v, t.shape).astype(np.float64)
    except (TypeError, ValueError):  # a scalar-only callable
        v = np.array([float(fn(float(x))) for x in t.ravel()]).reshape(t.shape)
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name}: A(t) and B(t) must be finite on [0, anneal time]")
    return v


def check_anneal_schedule(points: Any) -> list[tuple[float, float]]:
    """D-Wave's ``anneal_schedule``: [(t_us, s), ...], t starting at 0 and strictly
    increasing, s in [0, 1], ending at s = 1 (a forward or reverse anneal, pauses and
    quenches as flat and steep segments)."""
    try:
        pts = [(float(t), float(s)) for t, s in points]
    except (TypeError, ValueError):
        raise ValueError(f"anneal_schedule: expected [(t_us, s), ...], got {points!r}") from None
    if len(pts) < 2:
        raise ValueError("anneal_schedule: needs at least two points")
    ts = [p[0] for p in pts]
    if ts[0] != 0.0 or any(b <= a for a, b in zip(ts, ts[1:])) or not all(map(math.isfinite, ts)):
        raise ValueError(f"anneal_schedule: times must start at 0 and increase strictly, got {ts}")
    if any(not (0.0 <= p[1] <= 1.0) for p in pts):
        raise ValueError("anneal_schedule: s must lie in [0, 1]")
    if pts[-1][1] != 1.0:
        raise ValueError(f"anneal_schedule: must end at s = 1, got s = {pts[-1][1]}")
    if pts[0][1] not in (0.0, 1.0):
        raise ValueError(f"anneal_schedule: must start at s = 0 (forward) or s = 1 (reverse), got {pts[0][1]}")
    return pts


def step_halves(sched: TimeSchedule, steps: int, energy_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Per step of ``steps`` equal steps: the half-phase coefficient pi dt B / 2 (times
    ``energy_scale``) and the mixing angle -2 pi A dt, A and B at the step's midpoint."""
    dt = sched.duration_ns / steps
    mid = (np.arange(steps) + 0.5) * dt
    a, b = sched(mid)
    return np.pi * dt * b * energy_scale / 2.0, -2.0 * np.pi * a * dt


def merged_phases(half: np.ndarray, k0: int, k1: int) -> np.ndarray:
    """The phase array of steps k0 .. k1 - 1 run on their own: half[k0], then the two
    halves meeting between neighbouring steps, then half[k1 - 1]."""
    ph = np.zeros(k1 - k0 + 1)
    ph[:-1] += half[k0:k1]
    ph[1:] += half[k0:k1]
    return ph


def step_arrays(sched: TimeSchedule, steps: int, energy_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(phase, mix) of ``steps`` Strang steps of equal length (see the module docs):
    phase has steps + 1 entries, each the sum of the half phases meeting there."""
    half, mix = step_halves(sched, steps, energy_scale)
    return merged_phases(half, 0, steps), mix


def minimum_steps(sched: TimeSchedule, max_flip: float, energy_scale: float) -> int:
    """Where step doubling starts: an eighth of the step count at which the phase between
    basis states one flip apart would alias while the transverse field still acts
    (|B| E_flip dt >= 1 where A > 1e-3 max A). Below about that count the split steps are
    unstable and two step counts do not agree (their TV is about 0.5), so the doubling
    moves on; starting there saves the useless levels. (The mixing angle needs no bound:
    RX is exact, and the split's error comes from the problem term.)"""
    t = np.linspace(0.0, sched.duration_ns, 2001)
    a, b = sched(t)
    amax = float(np.max(np.abs(a))) if a.size else 0.0
    live = np.abs(a) > 1e-3 * amax
    bl = float(np.max(np.abs(b[live]))) if np.any(live) else 0.0
    m2 = bl * max_flip * abs(energy_scale) * sched.duration_ns / 8.0
    return max(16, int(math.ceil(m2)))


def _finite(value: Any, name: str) -> float:
    v = check_number(value, name)
    if not math.isfinite(v):
        raise ValueError(f"{name}: must be finite, got {value!r}")
    return v


def tv(p: np.ndarray, q: np.ndarray) -> float:
    return 0.5 * float(np.abs(p - q).sum())


class SchrodingerAnnealer(IsingSampler):
    """Closed-system quantum annealing simulated exactly (the Schrödinger equation on a
    state vector of 2^n amplitudes; n <= 30, memory permitting): a ``dimod.Sampler`` and a
    qbm sampler (array API ``sample_model``, ``certify=True``). See the module docs for the
    Hamiltonian, the schedules and the step-doubling error control.

    Options: ``anneal_time_us`` (a forward anneal on the device table, default 0.02 us) or
    ``anneal_schedule`` points, or ``time_schedule=(A, B)`` callables of t (ns);
    ``energy_scale`` multiplies the problem Hamiltonian (what a QPU's programmed scale
    does; ``qbm.qpu.calibrate_energy_scale`` steers it); ``initial_state`` a basis state
    (spins) to start from instead of |+>^n; ``tv_target`` the readout error target;
    ``steps`` a fixed step count (no doubling, no error estimate); ``return_state`` puts
    the final state in ``info["state"]``. Ctrl-C stops it between chunks of steps.
    """

    registry_name = "schrodinger"

    def sample_model(
        self,
        model: IsingModel,
        *,
        anneal_time_us: float | None = None,
        anneal_schedule: Any = None,
        schedule: Any = "advantage2",
        time_schedule: Any = None,
        energy_scale: float | None = 1.0,
        initial_state: Any = None,
        num_reads: int = 100,
        tv_target: float = 1e-3,
        steps: int | None = None,
        max_steps: int = DEFAULT_MAX_STEPS,
        return_state: bool = False,
        progress: bool | None = None,
        seed: int | None = None,
        num_threads: int | None = None,
    ) -> SampleResult:
        check_model(model)
        t_start = time.perf_counter()
        n = model.num_variables
        num_reads = check_positive_int(num_reads, "num_reads")
        seed = check_seed(seed)
        threads = check_threads(num_threads) or self.num_threads
        scale = 1.0 if energy_scale is None else _finite(energy_scale, "energy_scale")
        tv_target = _finite(tv_target, "tv_target")
        if not 0 < tv_target < 1:
            raise ValueError(f"tv_target: must lie in (0, 1), got {tv_target}")
        max_steps = check_positive_int(max_steps, "max_steps")
        sched, reverse = self._schedule(anneal_time_us, anneal_schedule, schedule, time_schedule)
        init = None
        if initial_state is not None:
            s0 = as_spins(np.asarray(initial_state).reshape(1, -1), n, "initial_state")[0]
            init = int(sum(1 << (n - 1 - q) for q in range(n) if s0[q] < 0))
        elif reverse:
            raise ValueError("initial_state: a reverse anneal (anneal_schedule starting at s = 1) needs a basis state")
        ham = _core.TransverseIsing(model.core)  # refuses n whose 2^n amplitudes do not fit, naming n
        e = ham.energies()
        d = e.size
        psi0 = np.zeros((2, d))
        if init is None:
            psi0[0] = 1.0 / math.sqrt(d)
        else:
            psi0[0, init] = 1.0
        max_flip = _max_flip_energy(model)
        est = {"seconds_per_step": d * n * _SECONDS_PER_AMP_QUBIT / max(1, min(threads or 1, 2))}
        bar = _Progress(progress, n)

        def run(m: int) -> np.ndarray:
            phase, mix = step_arrays(sched, m, scale)
            return _evolve(ham, psi0, phase, mix, threads, est, bar, m)

        info: dict[str, Any] = {}
        if steps is not None:
            m = check_positive_int(steps, "steps")
            psi = run(m)
            info.update(steps=m, tv_error=None, tv_error_estimate=None, converged=None, total_steps=m)
        else:
            m = minimum_steps(sched, max_flip, scale)
            m = 1 << max(2, math.ceil(math.log2(m)))
            if m > max_steps:
                raise ValueError(
                    f"max_steps: this anneal needs at least {m} steps to resolve its phases (|B| x the largest "
                    f"one-flip energy x energy_scale {scale:g} x the anneal time), more than max_steps {max_steps}; "
                    f"shorten the anneal, lower energy_scale or raise max_steps"
                )
            coarse = run(m)
            total = m
            converged = False
            while True:
                if 2 * m > max_steps:
                    psi = coarse
                    break
                fine = run(2 * m)
                total += 2 * m
                pc, pf = _probs(coarse), _probs(fine)
                err = tv(pc, pf)
                diff = fine - coarse
                l2 = float(np.sqrt(np.sum(diff * diff)))
                ov = np.vdot(_complex(coarse), _complex(fine))
                info.update(tv_error=err, tv_error_estimate=err / 3.0, l2_error=l2,
                            l2_error_up_to_phase=float(np.sqrt(max(0.0, 2.0 - 2.0 * abs(ov)))))  # fmt: skip
                m *= 2
                psi = fine
                if err <= tv_target:
                    converged = True
                    break
                coarse = fine
            info.update(steps=m, converged=converged, total_steps=total)
            if not converged:
                print(
                    f"warning: SchrodingerAnnealer did not reach tv_target {tv_target:g} within max_steps {max_steps} "
                    f"(last step-doubling TV {info.get('tv_error', float('nan')):.3g}); raise max_steps",
                    file=sys.stderr,
                )
        bar.close()
        probs = _probs(psi)
        probs /= probs.sum()
        idx = _core.draw_states(psi, num_reads, seed)
        spins = index_spins(idx, n)
        energies = e[idx] + model.offset
        emin = float(e.min())
        ground = np.isclose(e, emin, rtol=0, atol=1e-9 * max(1.0, abs(emin)))
        seconds = time.perf_counter() - t_start
        info.update(
            seed=seed,
            anneal_time_us=sched.duration_ns / 1e3,
            schedule=sched.description,
            energy_scale=scale,
            initial_state="plus" if init is None else "basis",
            mean_energy=float(probs @ e) + model.offset,
            ground_state_probability=float(probs[ground].sum()),
            memory_bytes=int(d * (8 + 16 * 4)),
            timing={
                "sampling_s": seconds,
                "steps_per_s": info["total_steps"] / seconds if seconds > 0 else 0.0,
                # one pass = one one-qubit gate (or the diagonal phase) over all 2^n amplitudes
                "gate_passes_per_s": info["total_steps"] * (n + 1) / seconds if seconds > 0 else 0.0,
            },
        )
        if return_state:
            info["state"] = _complex(psi)
            info["probabilities"] = probs
        return SampleResult(spins, energies, info)

    @staticmethod
    def _schedule(
        anneal_time_us: Any, anneal_schedule: Any, schedule: Any, time_schedule: Any
    ) -> tuple[TimeSchedule, bool]:
        if time_schedule is not None:
            if anneal_schedule is not None:
                raise ValueError("time_schedule: give a time_schedule or anneal_schedule points, not both")
            try:
                a_fn, b_fn = time_schedule
            except (TypeError, ValueError):
                raise ValueError("time_schedule: expected (A, B), two callables of t in ns giving GHz") from None
            if not (callable(a_fn) and callable(b_fn)):
                raise ValueError("time_schedule: expected (A, B), two callables of t in ns giving GHz")
            return TimeSchedule(a_fn, b_fn, _anneal_us(anneal_time_us) * 1e3, "user A(t), B(t)"), False
        table = sch.as_schedule(schedule)
        if anneal_schedule is not None:
            if anneal_time_us is not None:
                raise ValueError("anneal_time_us: give anneal_time_us or anneal_schedule, not both (D-Wave's rule)")
            pts = check_anneal_schedule(anneal_schedule)
            return TimeSchedule.from_device(table, pts), pts[0][1] == 1.0
        return TimeSchedule.from_device(table, [(0.0, 0.0), (_anneal_us(anneal_time_us), 1.0)]), False


def _anneal_us(anneal_time_us: Any) -> float:
    """The anneal time in us (default 0.02, DQA's preset), finite and > 0."""
    t_us = _finite(0.02 if anneal_time_us is None else anneal_time_us, "anneal_time_us")
    if t_us <= 0:
        raise ValueError(f"anneal_time_us: must be > 0, got {t_us}")
    return t_us


def index_spins(idx: np.ndarray, n: int) -> np.ndarray:
    """Basis-state indices of the core (qubit q = bit 2^(n-1-q), bit 0 = spin +1) -> (N, n)
    int8 spins in the model's variable order."""
    shifts = (n - 1 - np.arange(n)).astype(np.int64)
    return (1 - 2 * ((np.asarray(idx)[:, None] >> shifts[None, :]) & 1)).astype(np.int8)


def _max_flip_energy(model: IsingModel) -> float:
    """max_i 2 (|h_i| + sum_j |J_ij|): the largest energy change of one spin flip."""
    j = model.J
    row = np.asarray(abs(j).sum(axis=1)).ravel() if model.num_interactions else np.zeros(model.num_variables)
    return float(np.max(2.0 * (np.abs(model.h) + row)))


def _probs(psi: np.ndarray) -> np.ndarray:
    return psi[0] * psi[0] + psi[1] * psi[1]


def _complex(psi: np.ndarray) -> np.ndarray:
    return psi[0] + 1j * psi[1]


def _evolve(ham: Any, psi0: np.ndarray, phase: np.ndarray, mix: np.ndarray, threads: int | None,
            est: dict[str, float], bar: Any, m: int) -> np.ndarray:  # fmt: skip
    """The steps in chunks of about CHUNK_S seconds (progress, Ctrl-C between chunks);
    the measured speed resizes the chunks."""
    psi = psi0
    k = 0
    while k < m:
        chunk = max(1, min(m - k, int(CHUNK_S / max(est["seconds_per_step"], 1e-12))))
        last = k + chunk == m
        ph = phase[k : k + chunk + 1].copy()
        if not last:
            ph[-1] = 0.0  # the next chunk applies the phase at its start
        t0 = time.perf_counter()
        psi = ham.evolve(psi, ph, mix[k : k + chunk], num_threads=threads)
        dt = time.perf_counter() - t0
        if dt > 0.05:
            est["seconds_per_step"] = dt / chunk
        k += chunk
        bar.update(chunk, m, est["seconds_per_step"])
    return psi


class _Progress:
    """A progress line on stderr for calls expected to exceed PROGRESS_AFTER_S (or always /
    never with progress=True / False)."""

    def __init__(self, progress: bool | None, n: int) -> None:
        self.mode, self.n = progress, n
        self.bar: Any = None
        self.m = 0

    def update(self, chunk: int, m: int, sec_per_step: float) -> None:
        if self.mode is False:
            return
        if self.bar is None or self.m != m:
            if self.bar is None and self.mode is None and m * sec_per_step < PROGRESS_AFTER_S:
                return
            if self.bar is not None:
                self.bar.close()
            from tqdm import tqdm

            self.bar = tqdm(total=m, desc=f"schrodinger n={self.n} {m} steps", unit="step", leave=False,
                            file=sys.stderr)  # fmt: skip
            self.m = m
        self.bar.update(chunk)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def lowest_eigenpairs(model: IsingModel, a: float, b: float, *, k: int = 2, energy_scale: float = 1.0,
                      num_threads: int | None = None, ham: Any = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The ``k`` lowest eigenvalues (ascending, GHz) and eigenvectors (2^n, k) of
    H = -a/2 sum X_i + b/2 energy_scale E(z) (H is real symmetric in the computational
    basis): Lanczos (``scipy.sparse.linalg.eigsh``) on the core's matrix-vector product,
    or a dense solve for 2^n <= 64. ``a``, ``b`` in GHz, e.g. A(s), B(s) of a schedule."""
    import scipy.sparse.linalg as sla

    check_model(model)
    k = check_positive_int(k, "k")
    a, b = _finite(a, "a"), _finite(b, "b") * _finite(energy_scale, "energy_scale")
    ham = ham if ham is not None else _core.TransverseIsing(model.core)
    d = 1 << model.num_variables
    if k >= d:
        raise ValueError(f"k: at most {d - 1} eigenpairs of a {d}-dimensional H, got {k}")
    if d <= 64:
        h = np.stack([ham.matvec(a, b, col, num_threads=num_threads) for col in np.eye(d)], axis=1)
        w, v = np.linalg.eigh(h)
        return w[:k], v[:, :k]

    def mv(x: np.ndarray) -> np.ndarray:
        return ham.matvec(a, b, np.ascontiguousarray(x, dtype=np.float64).ravel(), num_threads=num_threads)

    op = sla.LinearOperator((d, d), matvec=mv, dtype=np.float64)
    v0 = np.full(d, 1.0 / math.sqrt(d))  # deterministic start: |+>^n
    w, v = sla.eigsh(op, k=k, which="SA", v0=v0, tol=1e-10)
    order = np.argsort(w)
    return w[order], v[:, order]


def anneal_trace(
    model: IsingModel,
    *,
    anneal_time_us: float,
    schedule: Any = "advantage2",
    energy_scale: float = 1.0,
    points: int = 11,
    steps: int | None = None,
    num_threads: int | None = None,
) -> list[dict[str, float]]:
    """Along a forward anneal: at ``points`` values of s, the gap E_1 - E_0 of H(s) (Lanczos;
    degenerate levels count once only when split by more than 1e-9 GHz), and the evolved
    state's overlap |<g_0(s)|psi(t)>|^2 with the instantaneous ground state (summed over
    the ground space when E_1 - E_0 < 1e-9), where the dynamics freeze: the overlap stops
    following the ground state once the gap closes faster than the anneal allows."""
    table = sch.as_schedule(schedule)
    ham = _core.TransverseIsing(model.core)
    d = 1 << model.num_variables
    sched = TimeSchedule.from_device(table, [(0.0, 0.0), (float(anneal_time_us), 1.0)])
    if steps is None:  # the step count step doubling picks for the whole anneal
        probe = SchrodingerAnnealer().sample_model(model, anneal_time_us=anneal_time_us, schedule=table,
                                                   energy_scale=energy_scale, num_reads=1, progress=False,
                                                   num_threads=num_threads)  # fmt: skip
        steps = int(probe.info["steps"])
    half, mix = step_halves(sched, steps, energy_scale)
    marks = np.unique(np.round(np.linspace(0, steps, points)).astype(int))
    psi = np.zeros((2, d))
    psi[0] = 1.0 / math.sqrt(d)
    out, k0 = [], 0
    for k1 in marks:
        if k1 > k0:
            psi = ham.evolve(psi, merged_phases(half, k0, k1), mix[k0:k1], num_threads=num_threads)
        s = k1 / steps
        a, b = table(np.array([s]))
        kk = min(3, d - 1)
        w, v = lowest_eigenpairs(model, float(a[0]), float(b[0]), k=kk, energy_scale=energy_scale, ham=ham,
                                 num_threads=num_threads)  # fmt: skip
        z = psi[0] + 1j * psi[1]
        gs = w - w[0] < 1e-9
        overlap = float(np.sum(np.abs(v[:, gs].T @ z) ** 2))
        excited = w[~gs]
        out.append({"s": float(s), "t_ns": float(s * sched.duration_ns), "A": float(a[0]), "B": float(b[0]),
                    "gap": float(excited[0] - w[0]) if excited.size else math.nan,
                    "ground_overlap": overlap, "ground_degeneracy": int(gs.sum())})  # fmt: skip
        k0 = k1
    return out
