"""Simulated quantum annealing: path-integral Monte Carlo of a transverse-field Ising model."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from qbm import _core
from qbm.ising import IsingModel
from qbm._validate import check_choice, check_number, check_positive_int, finite_array
from qbm.samplers import schedule as sch
from qbm.samplers._base import IsingSampler, SampleResult, check_model, prepare_run, timing_info


def trotter_coupling(beta: float, gamma: float, s: float, num_trotter_slices: int) -> float:
    """K = -(1/2) ln tanh(beta Gamma (1 - s) / P), the ferromagnetic coupling between
    neighbouring Trotter slices (0 for P = 1; capped at 30 as Gamma (1 - s) -> 0)."""
    return _core.trotter_coupling(float(beta), float(gamma), float(s), int(num_trotter_slices))


class SQASampler(IsingSampler):
    """Simulated quantum annealing of H(s) = s H_p - (1 - s) Gamma sum_i X_i at inverse
    temperature ``beta`` by path-integral Monte Carlo with ``num_trotter_slices`` (P)
    slices: per-slice coupling beta s / P, inter-slice coupling
    K = -(1/2) ln tanh(beta Gamma (1 - s) / P).

    ``s_schedule`` gives one s per sweep (default: linear from ``s_min`` to 1 over
    ``num_sweeps``); ``s=`` a constant schedule, which samples the equilibrium state at
    fixed s. Moves (``moves=``): ``"cluster"`` (default), Swendsen-Wang segments along
    imaginary time: between neighbouring slices that agree, a bond is placed with
    probability 1 - exp(-2K), and every segment is set by heat bath on the longitudinal
    field summed over its slices; equilibration no longer slows down as P grows. Or
    ``"local"``: single spin-slice Metropolis (or heat bath, ``update=``) in every slice,
    plus worldline moves flipping a spin in all slices at once (``worldline=True``).

    Device schedules (``schedule=``, :mod:`qbm.samplers.schedule`): H(s) = -A(s)/2 sum X_i
    + B(s)/2 H_p with A, B in GHz (energy / h) at the device temperature ``temperature_mk``
    (beta = h 1e9 / (k_B T) per GHz), e.g. ``schedule="advantage2"``; the anneal then runs
    ``anneal_sweeps(anneal_time_us, sweeps_per_us)`` sweeps along s rising linearly from 0
    to 1 (or along ``s_schedule`` / a constant ``s``). ``beta`` and ``gamma`` belong to the
    (gamma, s) form and are refused with a schedule. The two forms run the same kernel: with
    A(s) = 2 gamma (1 - s), B(s) = 2 s and beta_GHz = beta they are the same chain.

    Returns, per read, one slice chosen uniformly at random (unbiased: not the
    lowest-energy slice), with its classical energy; ``return_slices=True`` returns all
    P slices per read (rows read-major).
    """

    registry_name = "sqa"

    def sample_model(
        self,
        model: IsingModel,
        *,
        beta: float | None = None,
        gamma: float | None = None,
        num_trotter_slices: int = 8,
        num_sweeps: int = 1000,
        schedule: Any = None,
        temperature_mk: float | None = None,
        anneal_time_us: float | None = None,
        sweeps_per_us: float | None = None,
        s_schedule: Any = None,
        s: float | None = None,
        s_min: float = 0.01,
        num_reads: int = 10,
        update: str = "metropolis",
        worldline: bool = True,
        moves: str = "cluster",
        continuous_time: bool = False,
        return_slices: bool = False,
        order: str = "colour",
        initial_states: Any = None,
        seed: int | None = None,
        num_threads: int | None = None,
    ) -> SampleResult:
        check_model(model)
        dev = None
        if schedule is not None:
            for name, v in (("beta", beta), ("gamma", gamma)):
                if v is not None:
                    raise ValueError(
                        f"{name}: a device schedule sets the fields from A(s), B(s) and temperature_mk; "
                        f"{name} belongs to the (gamma, s) form"
                    )
            if continuous_time:
                raise ValueError("continuous_time: device schedules run the discrete-slice path")
            dev = sch.as_schedule(schedule)
            if sweeps_per_us is None:
                sweeps_per_us = sch.DEFAULT_SWEEPS_PER_US
            if anneal_time_us is not None:
                num_sweeps = sch.anneal_sweeps(anneal_time_us, sweeps_per_us=sweeps_per_us)
        elif temperature_mk is not None or anneal_time_us is not None or sweeps_per_us is not None:
            raise ValueError("schedule: temperature_mk, anneal_time_us and sweeps_per_us need a device schedule")
        # ranges of beta, gamma, P and s are checked once, in the core
        beta = check_number(5.0 if beta is None else beta, "beta")
        gamma_f = check_number(1.0 if gamma is None else gamma, "gamma")
        p = check_positive_int(num_trotter_slices, "num_trotter_slices")
        num_reads = check_positive_int(num_reads, "num_reads")
        if s_schedule is not None and s is not None:
            raise ValueError("s_schedule: give either s_schedule or a constant s, not both")
        if anneal_time_us is not None and (s_schedule is not None or s is not None):
            given = "s_schedule" if s_schedule is not None else "s"
            raise ValueError(
                f"anneal_time_us: it sets the sweeps of a forward anneal from s = 0 to 1, but {given} already gives "
                f"the path; give one or the other"
            )
        if s_schedule is not None:
            sched = finite_array(s_schedule, "s_schedule", 1)
        elif s is not None:
            sched = np.full(check_positive_int(num_sweeps, "num_sweeps"), check_number(s, "s"))
        elif dev is not None:
            sched = sch.forward_path(check_positive_int(num_sweeps, "num_sweeps"))
        else:
            sched = np.linspace(check_number(s_min, "s_min"), 1.0, check_positive_int(num_sweeps, "num_sweeps"))
        fields = None
        if dev is not None:
            fields = dev.fields(sched, temperature_mk=temperature_mk)
        moves = check_choice(moves, "moves", ("cluster", "local"))
        if continuous_time and moves != "cluster":
            raise ValueError(
                f"moves: continuous_time=True always uses its own cluster (segment) moves; got moves={moves!r}"
            )
        run = prepare_run(self, model, num_reads, update, order, seed, num_threads, initial_states)
        update, order, seed, threads, init = run.update, run.order, run.seed, run.threads, run.init
        if continuous_time:
            return self._continuous(model, sched, num_reads, beta, gamma_f, order, seed, threads, init, return_slices)
        t0 = time.perf_counter()
        out = _core.sample_sqa(
            model.core,
            np.ascontiguousarray(sched, dtype=np.float64),
            num_reads,
            beta=beta,
            gamma=gamma_f,
            num_trotter_slices=p,
            initial_states=init,
            update=update,
            worldline=bool(worldline),
            moves=moves,
            order=order,
            seed=seed,
            num_threads=threads,
            fields=fields,
        )
        n = model.num_variables
        timing = timing_info(t0, n * p * sched.size * num_reads)
        timing["spin_slice_updates_per_s"] = timing.pop("updates_per_s")
        spins = out["spins"]
        energies = out["energies"] + model.offset
        chosen = out["chosen_slice"].astype(np.int64)
        info: dict[str, Any] = {
            "seed": seed,
            "final_s": float(sched[-1]),
            "beta": beta,
            "gamma": gamma_f,
            "num_trotter_slices": p,
            "num_sweeps": int(sched.size),
            "order": order,
            "moves": moves,
            "worldline_acceptance": float(out["worldline_acceptance"]),
            "flip_fraction": float(np.mean(out["flip_fraction"])),
            "timing": timing,
        }
        if dev is not None:
            t_mk = dev.temperature(temperature_mk)
            for k in ("beta", "gamma"):
                info.pop(k)
            info.update(
                schedule={"name": dev.name, "version": dev.version, "source": dev.source},
                temperature_mk=t_mk,
                beta_per_ghz=sch.beta_per_ghz(t_mk),
                beta_final=float(fields[-1, 0]),
                anneal_time_us=anneal_time_us,
                sweeps_per_us=sweeps_per_us if anneal_time_us is not None else None,
            )
        if return_slices:
            vec = {"slice": np.tile(np.arange(p), num_reads), "read": np.repeat(np.arange(num_reads), p)}
            return SampleResult(spins.reshape(num_reads * p, n), energies.reshape(-1), info, vec)
        rows = np.arange(num_reads)
        info["chosen_slice"] = chosen
        return SampleResult(np.ascontiguousarray(spins[rows, chosen]), energies[rows, chosen].copy(), info)


def _continuous_impl(
    self: SQASampler,
    model: IsingModel,
    sched: np.ndarray,
    num_reads: int,
    beta: float,
    gamma: float,
    order: str,
    seed: int,
    threads: int | None,
    init: np.ndarray | None,
    return_slices: bool,
) -> SampleResult:
    """Continuous imaginary time (no Trotter error): see ``qbm-core``'s ``sqa_ct``."""
    if return_slices:
        raise ValueError("return_slices: continuous time has no slices; it returns the state at imaginary time 0")
    t0 = time.perf_counter()
    out = _core.sample_sqa_ct(
        model.core,
        np.ascontiguousarray(sched, dtype=np.float64),
        num_reads,
        beta=beta,
        gamma=gamma,
        initial_states=init,
        order=order,
        seed=seed,
        num_threads=threads,
    )
    timing = timing_info(t0, float(out["moves"]))
    timing["segment_moves_per_s"] = timing.pop("updates_per_s")
    info: dict[str, Any] = {
        "seed": seed,
        "final_s": float(sched[-1]),
        "beta": beta,
        "gamma": gamma,
        "continuous_time": True,
        "num_sweeps": int(sched.size),
        "order": order,
        "moves": "cluster (continuous time)",
        "mean_kinks_per_spin": float(np.mean(out["mean_kinks"])),
        "timing": timing,
    }
    return SampleResult(out["spins"], out["energies"] + model.offset, info)


SQASampler._continuous = _continuous_impl  # type: ignore[attr-defined]
