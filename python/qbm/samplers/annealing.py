"""Simulated annealing: single-spin updates under an inverse-temperature schedule."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from qbm.ising import IsingModel
from qbm._validate import check_beta, check_choice, check_positive_int, finite_array
from qbm.samplers._base import IsingSampler, SampleResult
from qbm.samplers.gibbs import _run_schedule


def default_beta_range(model: IsingModel) -> tuple[float, float]:
    """(beta_hot, beta_cold) from the model's energy scales.

    Hot: the largest single-flip energy change, dE_max = 2 max_i(|h_i| + sum_j |J_ij|), is
    accepted with probability 1/2 (beta = ln 2 / dE_max). Cold: the smallest nonzero
    energy scale, dE_min = 2 min(|h_i|, |J_ij| > 0), is accepted with probability 1/100
    (beta = ln 100 / dE_min).
    """
    de_max = 2.0 * model.max_abs_field()
    mags = np.concatenate([np.abs(model.h), np.abs(model.J.data)])
    mags = mags[mags > 0]
    if de_max == 0 or mags.size == 0:
        return 0.1, 1.0
    de_min = 2.0 * float(mags.min())
    hot = math.log(2.0) / de_max
    cold = max(math.log(100.0) / de_min, hot * 1.0001)
    return hot, cold


def make_beta_schedule(
    beta_range: tuple[float, float], num_sweeps: int, schedule_type: str = "geometric", num_sweeps_per_beta: int = 1
) -> np.ndarray:
    """Per-sweep betas from ``beta_range`` (geometric or linear interpolation)."""
    lo = check_beta(beta_range[0], "beta_range")
    hi = check_beta(beta_range[1], "beta_range")
    schedule_type = check_choice(schedule_type, "beta_schedule_type", ("geometric", "linear"))
    steps = max(1, math.ceil(num_sweeps / num_sweeps_per_beta))
    if schedule_type == "geometric":
        b = np.geomspace(lo, hi, steps)
    else:
        b = np.linspace(lo, hi, steps)
    return np.repeat(b, num_sweeps_per_beta)[:num_sweeps]


class SimulatedAnnealingSampler(IsingSampler):
    """Simulated annealing with the same single-spin updates as :class:`GibbsSampler`.

    The schedule is ``beta_schedule`` (explicit, one beta per sweep) or ``beta_range``
    interpolated geometrically (default) or linearly over ``num_sweeps``; without
    either, :func:`default_beta_range` derives one from the model. Metropolis updates by
    default (``update="heat_bath"`` available).
    """

    registry_name = "sa"

    def sample_model(
        self,
        model: IsingModel,
        *,
        beta_range: tuple[float, float] | None = None,
        beta_schedule_type: str = "geometric",
        beta_schedule: Any = None,
        num_reads: int = 10,
        num_sweeps: int = 1000,
        num_sweeps_per_beta: int = 1,
        update: str = "metropolis",
        order: str = "colour",
        initial_states: Any = None,
        seed: int | None = None,
        num_threads: int | None = None,
    ) -> SampleResult:
        num_reads = check_positive_int(num_reads, "num_reads")
        if beta_schedule is not None:
            if beta_range is not None:
                raise ValueError("beta_schedule: give either beta_schedule or beta_range, not both")
            betas = finite_array(beta_schedule, "beta_schedule", 1)
            if betas.size == 0 or np.any(betas <= 0):
                raise ValueError("beta_schedule: must be a non-empty array of betas > 0")
        else:
            num_sweeps = check_positive_int(num_sweeps, "num_sweeps")
            check_positive_int(num_sweeps_per_beta, "num_sweeps_per_beta")
            if num_sweeps_per_beta > num_sweeps:
                raise ValueError(
                    f"num_sweeps_per_beta: {num_sweeps_per_beta} exceeds num_sweeps={num_sweeps} "
                    "(the schedule would hold a single beta)"
                )
            if beta_range is None:
                beta_range = default_beta_range(model)
            else:
                if len(beta_range) != 2:
                    raise ValueError("beta_range: expected (beta_hot, beta_cold)")
            betas = make_beta_schedule(beta_range, num_sweeps, beta_schedule_type, num_sweeps_per_beta)
        return _run_schedule(
            self,
            model,
            betas,
            num_reads,
            update,
            order,
            initial_states,
            seed,
            num_threads,
            {"beta_range": (float(betas[0]), float(betas[-1]))},
        )
