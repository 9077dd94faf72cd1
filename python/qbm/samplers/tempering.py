"""Parallel tempering (replica exchange Monte Carlo)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from qbm import _core
from qbm.ising import IsingModel
from qbm._validate import (
    check_beta,
    check_positive_int,
    finite_array,
)
from qbm.samplers._base import IsingSampler, SampleResult, check_model, prepare_run
from qbm.samplers.annealing import default_beta_range


def geometric_ladder(beta_min: float, beta: float, num_replicas: int) -> np.ndarray:
    """K betas from ``beta_min`` to ``beta`` spaced geometrically (hottest first)."""
    lo = check_beta(beta_min, "beta_min")
    hi = check_beta(beta, "beta")
    if lo >= hi:
        raise ValueError(f"beta_min: must be below the target beta {hi}, got {lo}")
    return np.geomspace(lo, hi, check_positive_int(num_replicas, "num_replicas", minimum=2))


class ParallelTemperingSampler(IsingSampler):
    """Replica-exchange Monte Carlo: each read runs K replicas at betas
    b_1 < ... < b_K = ``beta`` (a geometric ladder from ``beta_min``, or an explicit
    ``betas`` array), with single-spin sweeps on every replica and Metropolis swaps of
    neighbouring temperatures, accepted with min(1, exp((b_k - b_{k+1})(E_k - E_{k+1}))),
    every ``swap_interval`` sweeps.

    Returns the replica at the target beta (``return_replicas=True``: all of them, with a
    ``beta`` column). ``info`` has the swap acceptance per neighbouring pair, round trips
    (hottest -> coldest -> hottest) per read, mean energy per replica and the ladder.
    ``adaptive=True`` spends ``adapt_sweeps`` burn-in sweeps moving the ladder toward
    equal swap acceptance (acceptance-equalising updates of the ln-beta gaps, pooled over
    reads between synchronised windows, so results stay independent of the thread count).
    Work is parallel over reads and, inside a read, over replicas.
    """

    registry_name = "pt"

    samples_boltzmann = True

    def sample_model(
        self,
        model: IsingModel,
        *,
        beta: float | None = None,
        beta_min: float | None = None,
        betas: Any = None,
        num_replicas: int = 8,
        num_reads: int = 10,
        num_sweeps: int = 1000,
        swap_interval: int = 1,
        adaptive: bool = False,
        adapt_sweeps: int | None = None,
        adapt_interval: int = 50,
        return_replicas: bool = False,
        update: str = "heat_bath",
        order: str = "colour",
        initial_states: Any = None,
        seed: int | None = None,
        num_threads: int | None = None,
        record_energies: bool = False,
    ) -> SampleResult:
        """Sample ``model`` (see the class docs). ``record_energies=True`` adds
        ``info["energy_trace"]`` (num_reads, steps): the target replica's energy after every
        swap step of production."""
        check_model(model)
        if betas is not None:
            if beta_min is not None:
                raise ValueError("betas: give either an explicit ladder or beta_min, not both")
            if beta is not None:
                raise ValueError(
                    "beta: an explicit betas ladder sets the target beta (its last entry); do not also give beta"
                )
            ladder = finite_array(betas, "betas", 1)
            if ladder.size < 2 or np.any(ladder <= 0) or np.any(np.diff(ladder) <= 0):
                raise ValueError("betas: need >= 2 strictly increasing positive betas (target last)")
        else:
            beta = check_beta(1.0 if beta is None else beta)
            if beta_min is None:
                hot = default_beta_range(model)[0]
                beta_min = hot if hot < beta else beta / 10.0
            ladder = geometric_ladder(beta_min, beta, num_replicas)
        num_reads = check_positive_int(num_reads, "num_reads")
        num_sweeps = check_positive_int(num_sweeps, "num_sweeps")
        swap_interval = check_positive_int(swap_interval, "swap_interval")
        adapt_interval = check_positive_int(adapt_interval, "adapt_interval")
        if adaptive:
            adapt_sweeps = num_sweeps if adapt_sweeps is None else check_positive_int(adapt_sweeps, "adapt_sweeps")
        else:
            if adapt_sweeps:
                raise ValueError("adapt_sweeps: only used with adaptive=True")
            adapt_sweeps = 0
        run = prepare_run(self, model, num_reads, update, order, seed, num_threads, initial_states)
        update, order, seed, threads, init = run.update, run.order, run.seed, run.threads, run.init
        t0 = time.perf_counter()
        out = _core.sample_tempering(
            model.core,
            np.ascontiguousarray(ladder, dtype=np.float64),
            num_reads,
            num_sweeps,
            swap_interval=swap_interval,
            adapt_sweeps=adapt_sweeps,
            adapt_interval=adapt_interval,
            initial_states=init,
            update=update,
            order=order,
            seed=seed,
            num_threads=threads,
            trace=bool(record_energies),
        )
        dt = time.perf_counter() - t0
        k = len(ladder)
        rep_spins = out["spins"]
        rep_e = out["energies"] + model.offset
        final = np.asarray(out["betas"])
        n = model.num_variables
        info: dict[str, Any] = {
            "seed": seed,
            "betas": final,
            "initial_betas": ladder,
            "swap_acceptance": np.asarray(out["swap_acceptance"]),
            "round_trips": np.asarray(out["round_trips"]),
            "replica_mean_energy": rep_e.mean(axis=0),
            "num_sweeps": num_sweeps,
            "adapt_sweeps": adapt_sweeps,
            "timing": {
                "sampling_s": dt,
                "spin_updates_per_s": n * k * (num_sweeps + adapt_sweeps) * num_reads / dt if dt > 0 else 0.0,
            },
        }
        if record_energies:
            info["energy_trace"] = np.asarray(out["trace"]) + model.offset
        if return_replicas:
            vec = {"beta": np.tile(final, num_reads), "read": np.repeat(np.arange(num_reads), k)}
            return SampleResult(rep_spins.reshape(num_reads * k, n), rep_e.reshape(-1), info, vec)
        return SampleResult(np.ascontiguousarray(rep_spins[:, -1, :]), rep_e[:, -1].copy(), info)
