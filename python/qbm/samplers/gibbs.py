"""Fixed-temperature single-spin samplers (heat bath / Metropolis)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from qbm import _core
from qbm.ising import IsingModel
from qbm._validate import check_beta, check_positive_int, check_seed
from qbm.samplers._base import ORDERS, UPDATES, IsingSampler, SampleResult, check_model, prepare_run, timing_info

__all__ = ["ORDERS", "UPDATES", "GibbsSampler", "PersistentChains"]


class GibbsSampler(IsingSampler):
    """Single-spin Markov chains at a fixed inverse temperature ``beta``.

    Each of ``num_reads`` independent chains does ``num_sweeps`` sweeps; a sweep visits
    every spin once, in a fixed order grouped by the colour classes of a greedy graph
    colouring (``order="colour"``, the default: consecutive updates are independent, so
    the CPU overlaps them), in index order (``"sequential"``), or in a fresh random
    permutation per sweep (``"random"``), and updates it by the heat-bath rule
    P(s_i = +1) = 1 / (1 + exp(2 beta f_i)), f_i = h_i + sum_j J_ij s_j, or, with
    ``update="metropolis"``, flips it with probability min(1, exp(-beta dE)).
    The stationary distribution is p(s) proportional to exp(-beta E(s)).

    Chains run in parallel in the Rust core (blocks of ``qbm._core.LANES`` chains, one
    SIMD lane each); chain c uses the random stream (seed, c), so a seed gives identical
    samples whatever ``num_threads`` is. For training loops, :meth:`chains` returns
    :class:`PersistentChains` that continue from where the last call stopped.
    """

    registry_name = "gibbs"

    samples_boltzmann = True

    def sample_model(
        self,
        model: IsingModel,
        *,
        beta: float = 1.0,
        num_reads: int = 10,
        num_sweeps: int = 1000,
        update: str = "heat_bath",
        order: str = "colour",
        initial_states: Any = None,
        seed: int | None = None,
        num_threads: int | None = None,
        record_energies: bool = False,
    ) -> SampleResult:
        """Sample ``model``; returns spins (num_reads, n) int8 and energies (num_reads,).

        ``record_energies=True`` adds ``info["energy_trace"]`` (num_reads, num_sweeps):
        every chain's energy after every sweep (for autocorrelation / ESS analysis)."""
        beta = check_beta(beta)
        num_reads = check_positive_int(num_reads, "num_reads")
        num_sweeps = check_positive_int(num_sweeps, "num_sweeps")
        betas = np.full(num_sweeps, beta)
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
            {"beta": beta},
            record_energies,
        )

    def chains(self, num_reads: int, *, seed: int | None = None, **fixed: Any) -> PersistentChains:
        """Persistent chains for training loops (see :class:`PersistentChains`)."""
        return PersistentChains(self, num_reads, seed=seed, **fixed)


class PersistentChains:
    """Chains that live between calls, as persistent contrastive divergence needs.

    ``step(model, **params)`` runs the sampler from the chains' current states (random
    states on the first call) and keeps the final states. Call k uses the seed
    derived from (seed, k), so a run is reproducible call by call. ``model`` may change
    between calls (the chains follow the updated parameters).
    """

    def __init__(self, sampler: IsingSampler, num_reads: int, *, seed: int | None = None, **fixed: Any) -> None:
        self.sampler = sampler
        self.num_reads = check_positive_int(num_reads, "num_reads")
        self.seed = check_seed(seed)
        self.fixed = fixed
        self.calls = 0
        self.state: np.ndarray | None = None

    def step(self, model: IsingModel, **params: Any) -> SampleResult:
        kw = {**self.fixed, **params}
        call_seed = int(np.random.SeedSequence([self.seed, self.calls]).generate_state(1, dtype=np.uint64)[0])
        if self.state is not None and self.state.shape[1] != model.num_variables:
            raise ValueError(f"model: has {model.num_variables} variables but the chains hold {self.state.shape[1]}")
        res = self.sampler.sample_model(
            model, num_reads=self.num_reads, initial_states=self.state, seed=call_seed, **kw
        )
        self.state = res.spins.copy()
        self.calls += 1
        return res

    def reset(self) -> None:
        self.state = None
        self.calls = 0

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume the chains bit-for-bit."""
        return {"seed": self.seed, "calls": self.calls, "state": None if self.state is None else self.state.copy()}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.seed = int(d["seed"])
        self.calls = int(d["calls"])
        self.state = None if d["state"] is None else np.asarray(d["state"], dtype=np.int8)


def _run_schedule(
    sampler: IsingSampler,
    model: IsingModel,
    betas: np.ndarray,
    num_reads: int,
    update: str,
    order: str,
    initial_states: Any,
    seed: int | None,
    num_threads: int | None,
    extra_info: dict[str, Any],
    record_energies: bool = False,
) -> SampleResult:
    check_model(model)
    run = prepare_run(sampler, model, num_reads, update, order, seed, num_threads, initial_states)
    update, order, seed, threads, init = run.update, run.order, run.seed, run.threads, run.init
    t0 = time.perf_counter()
    out = _core.sample_schedule(
        model.core,
        np.ascontiguousarray(betas, dtype=np.float64),
        num_reads,
        initial_states=init,
        update=update,
        order=order,
        seed=seed,
        num_threads=threads,
        trace=record_energies,
    )
    if record_energies:
        extra_info = {**extra_info, "energy_trace": out["trace"] + model.offset}
    timing = timing_info(t0, model.num_variables * len(betas) * num_reads)
    timing["spin_updates_per_s"] = timing.pop("updates_per_s")
    info = {
        "seed": seed,
        "num_sweeps": len(betas),
        "update": update,
        "order": order,
        "flip_fraction": float(np.mean(out["flip_fraction"])),
        "timing": timing,
        **extra_info,
    }
    return SampleResult(out["spins"], out["energies"] + model.offset, info)
