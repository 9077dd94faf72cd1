"""What every qbm sampler shares: the array-level result type, option checks, and the
``dimod.Sampler`` adapter (parameters from the signature, ``dimod.Initialized``
semantics for initial states, empty BQMs, timing, offsets, info)."""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import dimod
import numpy as np

from qbm.ising import IsingModel
from qbm._validate import as_spins, check_choice, check_seed, check_threads


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


def states_in_order(initial_states: Any, labels: list[Any]) -> np.ndarray:
    """A SampleSet or samples-like with labels -> (N, len(labels)) int8 spins in ``labels``
    order (BINARY 0/1 values are mapped to -1/+1)."""
    arr, have = dimod.as_samples(initial_states)
    have = list(have)
    pos = {v: k for k, v in enumerate(have)}
    try:
        cols = [pos[v] for v in labels]
    except KeyError as e:
        raise ValueError(f"initial_states: variable {e.args[0]!r} of the model is missing") from None
    if len(have) != len(labels):
        raise ValueError("initial_states: labels do not match the model's variables")
    out = np.asarray(arr)[:, cols]
    vartype = getattr(initial_states, "vartype", None)
    if vartype is dimod.BINARY or (vartype is None and out.size and set(np.unique(out)) <= {0, 1}):
        out = 2 * out.astype(np.int8) - 1
    return out


def resolve_initial_states(initial_states: Any, model: IsingModel, num_reads: int) -> np.ndarray | None:
    """Accept an (num_reads, n) array, or a SampleSet / samples-like with the model's labels."""
    if initial_states is None:
        return None
    if isinstance(initial_states, (dimod.SampleSet, Mapping)) or (
        isinstance(initial_states, tuple) and len(initial_states) == 2
    ):
        arr = states_in_order(initial_states, list(model.labels))
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
        raise TypeError(f"model: expected a qbm.IsingModel, got {type(model).__name__}")
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
    return RunSetup(
        update=check_choice(update, "update", UPDATES),
        order=check_choice(order, "order", ORDERS),
        seed=check_seed(seed),
        threads=check_threads(num_threads) or sampler.num_threads,
        init=resolve_initial_states(initial_states, model, num_reads),
    )


def timing_info(t0: float, updates: float) -> dict[str, float]:
    """Wall time since ``t0`` and the update rate."""
    dt = time.perf_counter() - t0
    return {"sampling_s": dt, "updates_per_s": updates / dt if dt > 0 else 0.0}


# Set by qbm.diagnostics when it is imported (it sits above the samplers and registers
# itself: the samplers never import it). ``import qbm`` imports it.
_CERTIFIER: Any = None

# Samplers by name (``IsingSampler.registry_name``), filled as their classes are defined:
# a certificate that needs a reference sampler looks one up here instead of importing it.
SAMPLERS: dict[str, type] = {}


def set_certifier(fn: Any) -> None:
    """Register the function behind ``sample_model(..., certify=True)``."""
    global _CERTIFIER
    _CERTIFIER = fn


def sampler_named(name: str) -> Any:
    """A new instance of the registered sampler ``name`` (e.g. ``"pt"``)."""
    if name not in SAMPLERS:
        raise ValueError(f"sampler: unknown name {name!r}; registered: {', '.join(sorted(SAMPLERS))}")
    return SAMPLERS[name]()


def _with_certificate(fn: Any) -> Any:
    """Adds ``certify=False`` to a ``sample_model``: with True, the result's
    ``info["certificate"]`` is :func:`qbm.diagnostics.certify` of its samples (with the
    energy trace recorded for it where the sampler can record one; the trace stays in
    ``info`` only when ``record_energies`` was asked for)."""
    import functools

    sig = inspect.signature(fn)
    if "certify" in sig.parameters:
        return fn
    has_trace = "record_energies" in sig.parameters

    @functools.wraps(fn)
    def sample_model(self: Any, model: Any, *args: Any, certify: bool = False, **kw: Any) -> Any:
        if not isinstance(certify, bool):
            raise ValueError(f"certify: expected True or False, got {certify!r}")
        if not certify:
            return fn(self, model, *args, **kw)
        if not isinstance(model, IsingModel):
            raise ValueError(f"certify: certificates are for Ising models, got {type(model).__name__}")
        asked = bool(kw.get("record_energies", False))
        if has_trace:
            kw["record_energies"] = True
        res = fn(self, model, *args, **kw)
        if _CERTIFIER is None:  # qbm.diagnostics registers it when imported (``import qbm`` does)
            raise RuntimeError("certify: no certifier registered; import qbm.diagnostics")
        _certify = _CERTIFIER
        target = res.info.get("beta") if self.samples_boltzmann else None
        if self.samples_boltzmann and target is None and "betas" in res.info:
            target = float(np.max(res.info["betas"]))
        t0 = time.perf_counter()
        cert = _certify(res, model, beta=target)
        cert["seconds"] = time.perf_counter() - t0
        res.info["certificate"] = cert
        if has_trace and not asked:
            res.info.pop("energy_trace", None)
        return res

    params = list(sig.parameters.values())
    cut = next((i for i, p in enumerate(params) if p.kind is inspect.Parameter.VAR_KEYWORD), len(params))
    params.insert(cut, inspect.Parameter("certify", inspect.Parameter.KEYWORD_ONLY, default=False))
    sample_model.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    return sample_model


class IsingSampler(dimod.Sampler, dimod.Initialized):
    """Base of qbm's classical samplers: a ``dimod.Sampler`` whose ``sample`` delegates to
    the array API ``sample_model(model, **params)``.

    A subclass is its ``sample_model`` signature (keyword-only parameters with defaults:
    the sampler's parameter list is read from it), its docstring and its call into the
    core. ``sample(bqm, ...)`` adds what dimod users expect: SPIN or BINARY BQMs,
    energies with the offset, an empty SampleSet for an empty BQM, and
    ``initial_states`` with ``initial_states_generator`` ('random', 'tile' or 'none') as
    :class:`dimod.Initialized` defines them. Without initial states, random starts are
    drawn in the Rust core from (seed, chain).
    """

    def __init__(self, *, num_threads: int | None = None) -> None:
        self.num_threads = check_threads(num_threads)

    #: whether the sampler's output is meant to be Boltzmann at ``info["beta"]`` (then a
    #: certificate checks beta_eff and the exact TV against that beta)
    samples_boltzmann = False

    #: the name under which the class registers in :data:`SAMPLERS` (None: not registered)
    registry_name: str | None = None

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if cls.__dict__.get("registry_name"):
            SAMPLERS[cls.__dict__["registry_name"]] = cls
        if "sample_model" in cls.__dict__:  # a wrapped one already has `certify` and is returned as is
            cls.sample_model = _with_certificate(cls.__dict__["sample_model"])  # type: ignore[method-assign]

    @classmethod
    def parameter_names(cls) -> tuple[str, ...]:
        """Keyword-only parameters of ``sample_model`` (the sampler's options)."""
        sig = inspect.signature(cls.sample_model)
        return tuple(p.name for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY)

    @property
    def parameters(self) -> dict[str, list[str]]:
        names = self.parameter_names()
        out = {name: [] for name in names}
        if "initial_states" in names:
            out["initial_states_generator"] = []
        return out

    @property
    def properties(self) -> dict[str, Any]:
        from qbm import _core

        return {
            "simd": _core.simd_level(),
            "default_threads": _core.default_threads(),
            "max_threads": _core.MAX_THREADS,
        }

    def sample_model(self, model: IsingModel, **params: Any) -> SampleResult:  # pragma: no cover
        raise NotImplementedError

    def _check_params(self, params: Mapping[str, Any]) -> None:
        known = self.parameters
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ValueError(
                f"{unknown[0]}: unknown parameter for {type(self).__name__}; known parameters: {', '.join(known)}"
            )

    def sample(self, bqm: dimod.BinaryQuadraticModel, **parameters: Any) -> dimod.SampleSet:
        """Sample a BQM (SPIN or BINARY). Returns a ``dimod.SampleSet`` whose energies are
        the BQM's own (offset included) and whose ``info`` holds timing and statistics."""
        self._check_params(parameters)
        t0 = time.perf_counter()
        if bqm.num_variables == 0:
            n = parameters.get("num_reads")
            n = 0 if n is None else int(n)
            return dimod.SampleSet.from_samples(
                (np.empty((n, 0), dtype=np.int8), []),
                vartype=bqm.vartype,
                energy=np.full(n, float(bqm.offset)),
                info={"timing": {"total_s": time.perf_counter() - t0}},
            )
        model = IsingModel.from_bqm(bqm)
        gen = parameters.pop("initial_states_generator", "random")
        if parameters.get("initial_states") is not None:
            parameters = self._parse_dimod_initial(bqm, model, gen, parameters)
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

    def _parse_dimod_initial(
        self, bqm: dimod.BinaryQuadraticModel, model: IsingModel, gen: Any, parameters: dict[str, Any]
    ) -> dict[str, Any]:
        """dimod.Initialized semantics: fewer initial states than ``num_reads`` are
        extended by ``initial_states_generator``; ``num_reads`` defaults to their count."""
        seed = parameters.get("seed")
        if seed is not None:
            seed = check_seed(seed) % 2**32
        parsed = self.parse_initial_states(
            bqm.spin if bqm.vartype is dimod.BINARY else bqm,
            initial_states=_as_spin_samples(parameters["initial_states"], bqm),
            initial_states_generator=gen,
            num_reads=parameters.get("num_reads"),
            seed=seed,
        )
        out = dict(parameters)
        out["num_reads"] = parsed.num_reads
        ss = parsed.initial_states
        out["initial_states"] = dimod.SampleSet.from_samples(
            (ss.record.sample, ss.variables), vartype=dimod.SPIN, energy=np.zeros(len(ss))
        )
        return out


def _as_spin_samples(initial_states: Any, bqm: dimod.BinaryQuadraticModel) -> Any:
    """Initial states given against a BINARY BQM are 0/1; dimod parses them against the
    BQM's SPIN form, so map them to -1/+1 first."""
    if isinstance(initial_states, np.ndarray) and initial_states.ndim == 2 and initial_states.dtype.kind in "biuf":
        initial_states = (initial_states, list(bqm.variables))
    if bqm.vartype is not dimod.BINARY:
        return initial_states
    arr, labels = dimod.as_samples(initial_states)
    arr = np.asarray(arr)
    if arr.size and set(np.unique(arr)) <= {0, 1}:
        arr = 2 * arr.astype(np.int8) - 1
    return (arr, labels)
