"""Shared machinery: the array-level result type and the dimod.Sampler adapter."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import dimod
import numpy as np

from qbm.ising import IsingModel
from qbm._validate import as_spins


@dataclass
class SampleResult:
    """Array-level output of a qbm sampler.

    spins: (num_reads, n) int8 in {-1, +1}, columns in the model's variable order (or in
    the order of ``info["labels"]`` when a sampler reorders them);
    energies: (num_reads,) float64, the model's energies (offset included);
    info: timing and diagnostics (seed, acceptance statistics, ...);
    vectors: extra per-row columns (e.g. the replica's beta), also put in SampleSets.
    """

    spins: np.ndarray
    energies: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.spins.shape[0])


def resolve_initial_states(initial_states: Any, model: IsingModel, num_reads: int) -> np.ndarray | None:
    """Accept an (num_reads, n) array, or a SampleSet / samples-like with the model's labels."""
    if initial_states is None:
        return None
    if isinstance(initial_states, dimod.SampleSet) or isinstance(initial_states, Mapping):
        arr, labels = dimod.as_samples(initial_states)
        try:
            cols = [list(labels).index(v) for v in model.labels]
        except ValueError:
            raise ValueError("initial_states: labels do not match the model's variables") from None
        arr = np.asarray(arr)[:, cols]
        if set(np.unique(arr)) <= {0, 1}:
            arr = 2 * arr.astype(np.int8) - 1
    else:
        arr = np.asarray(initial_states)
    s = as_spins(arr, model.num_variables, "initial_states")
    if s.shape[0] != num_reads:
        raise ValueError(f"initial_states: expected {num_reads} rows (num_reads), got {s.shape[0]}")
    return s


@dataclass
class RunSetup:
    """Validated options shared by every sampler call."""

    update: str
    order: str
    seed: int
    threads: int | None
    init: np.ndarray | None


UPDATES = ("heat_bath", "metropolis")
ORDERS = ("sequential", "colour", "random")


def check_model(model: Any) -> IsingModel:
    if not isinstance(model, IsingModel):
        raise ValueError(f"model: expected a qbm.IsingModel, got {type(model).__name__}")
    return model


def prepare_run(
    sampler: IsingSampler,
    model: IsingModel,
    num_reads: int,
    update: str,
    order: str,
    seed: Any,
    num_threads: Any,
    initial_states: Any,
) -> RunSetup:
    """Check the options every sampler shares; ``None`` seed draws one from the OS."""
    from qbm._validate import check_choice, check_seed, check_threads

    return RunSetup(
        update=check_choice(update, "update", UPDATES),
        order=check_choice(order, "order", ORDERS),
        seed=check_seed(seed),
        threads=check_threads(num_threads) or sampler.num_threads,
        init=resolve_initial_states(initial_states, model, num_reads),
    )


class IsingSampler(dimod.Sampler):
    """Base of qbm's classical samplers: a ``dimod.Sampler`` whose ``sample`` delegates to
    the array API ``sample_model(model, **params)``.

    Subclasses define ``_parameter_names`` and ``sample_model``.
    """

    _parameter_names: tuple[str, ...] = ()

    def __init__(self, *, num_threads: int | None = None) -> None:
        from qbm._validate import check_threads

        self.num_threads = check_threads(num_threads)

    @property
    def parameters(self) -> dict[str, list[str]]:
        return {name: [] for name in self._parameter_names}

    @property
    def properties(self) -> dict[str, Any]:
        from qbm import _core

        return {"simd": _core.simd_level(), "default_threads": _core.default_threads()}

    def sample_model(self, model: IsingModel, **params: Any) -> SampleResult:  # pragma: no cover
        raise NotImplementedError

    def _check_params(self, params: Mapping[str, Any]) -> None:
        unknown = sorted(set(params) - set(self._parameter_names))
        if unknown:
            raise ValueError(
                f"{unknown[0]}: unknown parameter for {type(self).__name__}; "
                f"known parameters: {', '.join(self._parameter_names)}"
            )

    def sample(self, bqm: dimod.BinaryQuadraticModel, **parameters: Any) -> dimod.SampleSet:
        """Sample a BQM (SPIN or BINARY). Returns a ``dimod.SampleSet`` whose energies are
        the BQM's own (offset included) and whose ``info`` holds timing and statistics."""
        self._check_params(parameters)
        t0 = time.perf_counter()
        model = IsingModel.from_bqm(bqm)
        res = self.sample_model(model, **parameters)
        samples = res.spins
        if bqm.vartype is dimod.BINARY:
            samples = ((samples + 1) // 2).astype(np.int8)
        info = dict(res.info)
        info.setdefault("timing", {})["total_s"] = time.perf_counter() - t0
        # a sampler that reorders columns (RBM: visible side first) says so in info["labels"]
        labels = info.get("labels", model.labels)
        return dimod.SampleSet.from_samples(
            (samples, labels), vartype=bqm.vartype, energy=res.energies, info=info, **res.vectors
        )
