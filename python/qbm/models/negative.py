"""Prior samplers: how a Boltzmann prior's model samples (the negative phase) are drawn.

Models never name samplers. A *prior sampler* is anything with

* ``sample(prior) -> torch.Tensor`` of shape (num_chains, n), float64 +-1 spins drawn
  from (approximately) p(z) proportional to exp(-E_prior(z)),
* ``state_dict()`` / ``load_state_dict(d)`` restoring it exactly (seeds, chain states),
* ``last_info``: the diagnostics of the last call.

Two implementations cover every qbm sampler: :class:`PersistentChains` (persistent
chains, PCD: each call continues from the last call's states) and :class:`FreshAnneals`
(every call an independent anneal, as a QPU gives). One registry (:mod:`qbm.registry`, above
this module) maps names to
factories; the negative phase, the generation modes and the CLI read their choices from
it. Adding a sampler is one :func:`qbm.registry.register` call::

    register("my-sampler", lambda num_chains, sweeps, seed, num_threads, **kw:
             PersistentChains(MySampler(num_threads=num_threads), num_chains, seed=seed, num_sweeps=sweeps))

Call k of a prior sampler uses the seed derived from (seed, k), so a run resumes
bit-for-bit from a checkpoint of its state.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from qbm.models.prior import BoltzmannPrior


@runtime_checkable
class PriorSampler(Protocol):
    last_info: dict[str, Any]

    def sample(self, prior: BoltzmannPrior) -> torch.Tensor: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, d: dict[str, Any]) -> None: ...


def _call_seed(seed: int, calls: int) -> int:
    return int(np.random.SeedSequence([seed, calls]).generate_state(1, dtype=np.uint64)[0])


class _Seeded:
    name = "custom"

    def __init__(self, num_chains: int, seed: int) -> None:
        if isinstance(num_chains, bool) or not isinstance(num_chains, (int, np.integer)):
            raise TypeError(f"num_chains: expected an integer, got {type(num_chains).__name__}")
        if num_chains < 1:
            raise ValueError(f"num_chains: must be >= 1, got {num_chains}")
        self.num_chains, self.seed = int(num_chains), int(seed)
        self.calls = 0
        self.last_info: dict[str, Any] = {}

    def _next_seed(self) -> int:
        s = _call_seed(self.seed, self.calls)
        self.calls += 1
        return s


class PersistentChains(_Seeded):
    """Persistent chains of any qbm sampler (``sample_model(model, num_reads=...,
    initial_states=..., seed=..., **params)``): each call starts from the last call's
    final states (random states on the first call). ``form="rbm"`` hands the sampler the
    prior's (W, a, b) RBM form instead of its Ising model (block Gibbs)."""

    def __init__(self, sampler: Any, num_chains: int, *, seed: int = 0, form: str = "ising", **params: Any) -> None:
        super().__init__(num_chains, seed)
        if form not in ("ising", "rbm"):
            raise ValueError(f"form: unknown value {form!r}; choose 'ising' or 'rbm'")
        self.sampler, self.form, self.params = sampler, form, params
        self.state: np.ndarray | None = None

    def _model(self, prior: BoltzmannPrior) -> Any:
        if self.form == "ising":
            return prior.to_ising()
        form = prior.rbm_form()
        if form is None:
            raise ValueError(f"sampler: {self.name!r} block Gibbs needs a prior on the 'rbm' graph")
        from qbm.rbm import RBM

        return RBM(*form)

    def sample(self, prior: BoltzmannPrior) -> torch.Tensor:
        seed = self._next_seed()
        res = self.sampler.sample_model(
            self._model(prior), num_reads=self.num_chains, initial_states=self.state, seed=seed, **self.params
        )
        self.state = np.ascontiguousarray(res.spins, dtype=np.int8)
        self.last_info = res.info
        return torch.as_tensor(res.spins, dtype=torch.float64)

    def state_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "calls": self.calls,
            "seed": self.seed,
            "state": None if self.state is None else self.state.copy(),
        }

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.calls, self.seed = int(d["calls"]), int(d["seed"])
        self.state = None if d.get("state") is None else np.asarray(d["state"], dtype=np.int8)


class FreshAnneals(_Seeded):
    """Independent anneals every call (no state carried between calls but the seed
    counter): SQA as a DQA stand-in, or a QPU backend."""

    def __init__(self, sampler: Any, num_chains: int, *, seed: int = 0, **params: Any) -> None:
        super().__init__(num_chains, seed)
        self.sampler, self.params = sampler, params

    def sample(self, prior: BoltzmannPrior) -> torch.Tensor:
        res = self.sampler.sample_model(
            prior.to_ising(), num_reads=self.num_chains, seed=self._next_seed(), **self.params
        )
        self.last_info = res.info
        return torch.as_tensor(res.spins, dtype=torch.float64)

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "calls": self.calls, "seed": self.seed, "state": None}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.calls, self.seed = int(d["calls"]), int(d["seed"])


class QPUAnneals(FreshAnneals):
    """Fresh anneals on the Advantage2 backend. The QPU samples about
    exp(-b_phys * scale * E); after the first call (ranges filled) the programmed scale
    is steered so that beta_eff relative to the prior -> 1. The backend's own random
    state (the offline stand-in's) is saved with the sampler."""

    def __init__(self, qpu: Any, num_chains: int, *, seed: int = 0) -> None:
        super().__init__(qpu, num_chains, seed=seed)
        self.qpu_scale: float | None = None

    def sample(self, prior: BoltzmannPrior) -> torch.Tensor:
        res = self.sampler.sample_model(
            prior.to_ising(), num_reads=self.num_chains, seed=self._next_seed(), energy_scale=self.qpu_scale
        )
        b = res.info.get("beta_eff")
        used = res.info.get("scale")
        if b is not None and used and np.isfinite(b) and b > 0:
            from qbm.qpu.sampler import steer_scale

            self.qpu_scale = steer_scale(used, b, 1.0, damped=self.qpu_scale is not None)
            res.info["next_energy_scale"] = self.qpu_scale
        self.last_info = res.info
        return torch.as_tensor(res.spins, dtype=torch.float64)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "qpu_scale": self.qpu_scale}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        super().load_state_dict(d)
        self.qpu_scale = d.get("qpu_scale")


class ExactDQA(FreshAnneals):
    """Exact diabatic annealing as the negative phase: every call a fresh closed-system
    anneal of the prior (:class:`qbm.samplers.SchrodingerAnnealer`, the packaged schedule,
    ``anneal_time_us``), with the energy scale steered after each call so that beta_eff
    relative to the prior (maximum pseudo-likelihood) moves to 1, as :class:`QPUAnneals`
    steers a QPU: by at most a factor 4 per call and never beyond what the device could
    program (:func:`qbm.qpu.sampler.max_energy_scale`; ``last_info["scale_capped"]`` says when the cap binds).
    The step count is chosen by step doubling on the first call and again every
    ``recheck`` calls (the prior changes slowly); other calls reuse it."""

    def __init__(self, sampler: Any, num_chains: int, *, seed: int = 0, anneal_time_us: float = 0.0003,
                 recheck: int = 50) -> None:  # fmt: skip
        super().__init__(sampler, num_chains, seed=seed)
        if not (np.isfinite(anneal_time_us) and anneal_time_us > 0):
            raise ValueError(f"anneal_ns: must be finite and > 0, got {anneal_time_us * 1e3!r}")
        self.anneal_time_us, self.recheck = float(anneal_time_us), int(recheck)
        self.scale = 1.0
        self.steps: int | None = None

    def sample(self, prior: BoltzmannPrior) -> torch.Tensor:
        from qbm.qpu.sampler import estimate_beta_eff, max_energy_scale, steer_scale

        model = prior.to_ising()
        fixed = self.steps if self.steps is not None and self.calls % self.recheck != 0 else None
        try:
            res = self.sampler.sample_model(
                model, anneal_time_us=self.anneal_time_us, energy_scale=self.scale, num_reads=self.num_chains,
                seed=self._next_seed(), steps=fixed, progress=False,
            )  # fmt: skip
        except (ValueError, MemoryError) as e:
            if str(e).startswith("n:"):
                raise type(e)(
                    f"latent: exact DQA simulates 2^latent amplitudes; {model.num_variables} latents are too many "
                    f"(use about 24 or fewer) ({e})"
                ) from None
            raise
        if fixed is None:
            self.steps = int(res.info["steps"])
        est = estimate_beta_eff(model, res.spins, num_bootstrap=0, seed=self.calls)
        b = est["beta_eff"]
        res.info.update(beta_eff=b, scale=self.scale)
        if np.isfinite(b) and b > 0:
            # at most a factor 4 per call (the fit is noisy while the prior is nearly flat), and
            # never beyond the device's range: max |J| scale <= 1, max |h| scale <= 4
            nxt = float(np.clip(steer_scale(self.scale, b, 1.0, damped=self.calls > 1), self.scale / 4, self.scale * 4))
            cap = max_energy_scale(model)
            res.info["scale_capped"] = nxt > cap
            self.scale = min(nxt, cap)
            res.info["next_energy_scale"] = self.scale
        self.last_info = res.info
        return torch.as_tensor(res.spins, dtype=torch.float64)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "scale": self.scale, "steps": self.steps, "anneal_time_us": self.anneal_time_us}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        super().load_state_dict(d)
        self.scale = float(d.get("scale", 1.0))
        self.steps = d.get("steps")
        self.anneal_time_us = float(d.get("anneal_time_us", self.anneal_time_us))


# The registry of prior samplers by name is qbm.registry (torch-free, above this module:
# it builds these adapters; nothing here imports it).
__all__ = ["PriorSampler", "PersistentChains", "FreshAnneals", "QPUAnneals", "ExactDQA"]
