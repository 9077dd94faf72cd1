"""Negative-phase samplers for Boltzmann priors, chosen by name.

``"gibbs"``: persistent heat-bath chains; ``"rbm"``: persistent block-Gibbs chains (RBM
graph only); ``"pt"``: parallel tempering restarted from the persistent states;
``"sqa"``: fresh simulated quantum anneals ending at s = 1 and the model's beta (DQA
stand-in); ``"qpu"``: the Advantage2 backend (see :mod:`qbm.qpu`). Every sampler returns
(num_chains, n) float64 +-1 tensors and can save / restore its state for exact resume.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from qbm.models.prior import BoltzmannPrior

NAMES = ("gibbs", "rbm", "pt", "sqa", "qpu")


class NegativePhase:
    def __init__(
        self,
        name: str,
        num_chains: int = 128,
        *,
        sweeps: int = 10,
        seed: int = 0,
        num_threads: int | None = None,
        qpu: Any = None,
    ) -> None:
        if name not in NAMES:
            raise ValueError(f"sampler: unknown sampler {name!r}; choose one of {', '.join(NAMES)}")
        if num_chains < 1:
            raise ValueError(f"num_chains: must be >= 1, got {num_chains}")
        self.name, self.num_chains, self.sweeps, self.seed = name, num_chains, sweeps, seed
        self.num_threads = num_threads
        self.calls = 0
        self.state: np.ndarray | None = None
        self.qpu = qpu
        self.qpu_scale: float | None = None
        self.last_info: dict[str, Any] = {}

    def _seed(self) -> int:
        return int(np.random.SeedSequence([self.seed, self.calls]).generate_state(1, dtype=np.uint64)[0])

    def sample(self, prior: BoltzmannPrior) -> torch.Tensor:
        from qbm.samplers import GibbsSampler, ParallelTemperingSampler, RBMSampler, SQASampler

        seed = self._seed()
        if self.name == "gibbs":
            res = GibbsSampler(num_threads=self.num_threads).sample_model(
                prior.to_ising(),
                beta=1.0,
                num_reads=self.num_chains,
                num_sweeps=self.sweeps,
                initial_states=self.state,
                seed=seed,
            )
            spins = res.spins
        elif self.name == "rbm":
            form = prior.rbm_form()
            if form is None:
                raise ValueError("sampler: 'rbm' block Gibbs needs a prior on the 'rbm' graph")
            from qbm.rbm import RBM

            res = RBMSampler(num_threads=self.num_threads).sample_model(
                RBM(*form),
                beta=1.0,
                num_reads=self.num_chains,
                num_sweeps=self.sweeps,
                initial_states=self.state,
                seed=seed,
            )
            spins = res.spins
        elif self.name == "pt":
            res = ParallelTemperingSampler(num_threads=self.num_threads).sample_model(
                prior.to_ising(),
                beta=1.0,
                beta_min=0.2,
                num_replicas=4,
                num_reads=self.num_chains,
                num_sweeps=self.sweeps,
                initial_states=self.state,
                seed=seed,
            )
            spins = res.spins
        elif self.name == "sqa":
            res = SQASampler(num_threads=self.num_threads).sample_model(
                prior.to_ising(),
                beta=1.0,
                gamma=1.0,
                num_trotter_slices=8,
                num_sweeps=max(5 * self.sweeps, 50),
                s_min=0.3,
                num_reads=self.num_chains,
                seed=seed,
            )
            spins = res.spins
        else:
            if self.qpu is None:
                raise ValueError("sampler: 'qpu' needs a qbm.qpu.Advantage2Sampler (qpu=...)")
            # The QPU samples about exp(-b_phys * scale * E); after the first call (ranges filled)
            # the programmed scale is steered so that beta_eff relative to the prior -> 1.
            res = self.qpu.sample_model(
                prior.to_ising(), num_reads=self.num_chains, seed=seed, energy_scale=self.qpu_scale
            )
            spins = res.spins
            b = res.info.get("beta_eff")
            used = res.info.get("scale")
            if b is not None and used and np.isfinite(b) and b > 0:
                self.qpu_scale = float(used) / float(b) ** 0.5 if self.qpu_scale is not None else float(used) / float(b)
                res.info["next_energy_scale"] = self.qpu_scale
        self.last_info = res.info
        self.calls += 1
        if self.name != "sqa":
            self.state = np.ascontiguousarray(spins, dtype=np.int8)
        return torch.as_tensor(spins, dtype=torch.float64)

    def state_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "calls": self.calls,
            "seed": self.seed,
            "qpu_scale": self.qpu_scale,
            "state": None if self.state is None else self.state.copy(),
        }

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.calls, self.seed = int(d["calls"]), int(d["seed"])
        self.qpu_scale = d.get("qpu_scale")
        self.state = None if d["state"] is None else np.asarray(d["state"], dtype=np.int8)
