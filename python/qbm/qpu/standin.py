"""Offline stand-ins for an Advantage2 QPU.

:func:`mock_advantage2` returns dwave-system's ``MockDWaveSampler`` with a Zephyr
topology whose classical substitute is :class:`SQAStandIn`: qbm's simulated quantum
annealer, with the anneal time honoured as a number of sweeps. Nothing here reaches
a real QPU."""

from __future__ import annotations

from typing import Any

import dimod
import numpy as np

from qbm.ising import IsingModel


class _StandIn(dimod.Sampler):
    """What the stand-ins share: a seed per call derived from (base seed, call number)."""

    parameters: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    base_seed = 0
    calls = 0

    def reseed(self, seed: int) -> None:
        """Restart the stand-in's random stream: call k after this uses the seed derived
        from (seed, k). How a seed reaches it through ``MockDWaveSampler``, which refuses
        unknown solver parameters."""
        self.base_seed = int(seed)
        self.calls = 0

    def _call_seed(self, kwargs: dict[str, Any]) -> int:
        """``kwargs["seed"]`` when given, else the one derived from (base seed, call); counts the call."""
        default = np.random.SeedSequence([self.base_seed, self.calls]).generate_state(1, dtype=np.uint64)[0]
        self.calls += 1
        return int(kwargs.get("seed", default))


class SQAStandIn(_StandIn):
    """A dimod sampler that accepts QPU solver parameters and runs qbm's SQA.

    By default it anneals on a device schedule (``schedule="advantage2"``: H(s) =
    -A(s)/2 sum X_i + B(s)/2 H_p, A and B in GHz, at ``temperature_mk``; see
    :mod:`qbm.samplers.schedule` for the shipped table and how to load a device's own),
    with the programmed h, J in the solver's units (|J| <= 1). ``annealing_time``
    (microseconds) becomes ``round(sweeps_per_us * annealing_time)`` sweeps, clipped to
    [``min_sweeps``, ``max_sweeps``], along s rising linearly from 0 to 1; ``fast_anneal``
    runs the same schedule. ``schedule="linear"`` keeps the older (gamma, s) form, H(s) =
    s H_p - (1 - s) gamma sum X_i at inverse temperature ``beta``."""

    def __init__(
        self,
        *,
        schedule: Any = "advantage2",
        temperature_mk: float | None = None,
        beta: float = 4.0,
        gamma: float = 2.0,
        num_trotter_slices: int = 8,
        sweeps_per_us: float = 50.0,
        min_sweeps: int = 20,
        max_sweeps: int = 20000,
    ) -> None:
        from qbm.samplers.schedule import AnnealSchedule, as_schedule

        named = isinstance(schedule, str) and schedule in ("advantage2", "linear")
        if not (named or isinstance(schedule, AnnealSchedule)):
            raise ValueError(f"schedule: expected 'advantage2', 'linear' or an AnnealSchedule, got {schedule!r}")
        self.schedule = "linear" if schedule == "linear" else as_schedule(schedule)
        self.temperature_mk = temperature_mk
        self.beta, self.gamma, self.slices = beta, gamma, num_trotter_slices
        self.sweeps_per_us, self.min_sweeps, self.max_sweeps = sweeps_per_us, min_sweeps, max_sweeps

    def sample(self, bqm: dimod.BinaryQuadraticModel, **kwargs: Any) -> dimod.SampleSet:
        from qbm.samplers import SQASampler

        num_reads = int(kwargs.get("num_reads", 1))
        t = float(kwargs.get("annealing_time", 20.0))
        sweeps = int(np.clip(round(self.sweeps_per_us * t), self.min_sweeps, self.max_sweeps))
        seed = self._call_seed(kwargs)
        model = IsingModel.from_bqm(_with_flux_biases(bqm, kwargs.get("flux_biases")))
        if self.schedule == "linear":
            kw: dict[str, Any] = {"beta": self.beta, "gamma": self.gamma, "s_min": 0.01}
        else:
            kw = {"schedule": self.schedule, "temperature_mk": self.temperature_mk}
        res = SQASampler().sample_model(
            model, num_trotter_slices=self.slices, num_sweeps=sweeps, num_reads=num_reads, seed=seed, **kw
        )
        samples = res.spins if bqm.vartype is dimod.SPIN else (res.spins + 1) // 2
        info = {"num_sweeps": sweeps, "annealing_time_us": t}
        for k in ("schedule", "temperature_mk", "beta_final"):
            if k in res.info:
                info[k] = res.info[k]
        return dimod.SampleSet.from_samples_bqm((samples, model.labels), bqm, info=info)


class SchrodingerStandIn(_StandIn):
    """A dimod sampler that accepts QPU solver parameters and anneals the programmed
    problem exactly: the closed-system Schrödinger equation of H(s) = -A(s)/2 sum X_i +
    B(s)/2 H_p on the device schedule (:class:`qbm.samplers.SchrodingerAnnealer`; no
    temperature, no noise). ``annealing_time`` (microseconds) is the anneal's duration
    and ``anneal_schedule`` points are followed as given (pauses, quenches, reverse
    anneals from ``initial_state``); ``fast_anneal`` runs the same schedule. Only the
    variables of the submitted BQM are simulated (2^n amplitudes: about 20-24 qubits,
    chains included; more is refused naming ``n``)."""

    def __init__(self, *, schedule: Any = "advantage2", tv_target: float = 1e-3) -> None:
        from qbm.samplers.schedule import as_schedule

        self.schedule = as_schedule(schedule)
        self.tv_target = tv_target

    def sample(self, bqm: dimod.BinaryQuadraticModel, **kwargs: Any) -> dimod.SampleSet:
        from qbm.samplers import SchrodingerAnnealer

        num_reads = int(kwargs.get("num_reads", 1))
        seed = self._call_seed(kwargs)
        model = IsingModel.from_bqm(_with_flux_biases(bqm, kwargs.get("flux_biases")))
        kw: dict[str, Any] = {}
        if kwargs.get("anneal_schedule") is not None:
            kw["anneal_schedule"] = kwargs["anneal_schedule"]
            init = kwargs.get("initial_state")
            if init is not None:
                init = dict(init)
                kw["initial_state"] = [1 if init[v] > 0 else -1 for v in model.labels]
        else:
            kw["anneal_time_us"] = float(kwargs.get("annealing_time", 20.0))
        res = SchrodingerAnnealer().sample_model(
            model, schedule=self.schedule, num_reads=num_reads, seed=seed, tv_target=self.tv_target, **kw
        )
        samples = res.spins if bqm.vartype is dimod.SPIN else (res.spins + 1) // 2
        info = {k: res.info[k] for k in ("anneal_time_us", "schedule", "steps", "tv_error")}
        return dimod.SampleSet.from_samples_bqm((samples, model.labels), bqm, info=info)


def _with_flux_biases(bqm: dimod.BinaryQuadraticModel, fb: Any) -> dimod.BinaryQuadraticModel:
    """The SPIN form of ``bqm`` with flux biases added as fields (how qbm pins fast-anneal
    ancillas)."""
    spin = bqm.spin if bqm.vartype is dimod.BINARY else bqm
    if fb is None:
        return spin
    from dwave.system.temperatures import fluxbias_to_h

    spin = spin.copy()
    for v in spin.variables:
        if isinstance(v, (int, np.integer)) and v < len(fb) and fb[v]:
            spin.add_linear(v, float(fluxbias_to_h(fb[v])))
    return spin


def mock_advantage2(
    m: int = 4, t: int = 4, *, standin: Any = None, schedule: Any = "advantage2", dynamics: str = "sqa", **kwargs: Any
) -> Any:
    """``MockDWaveSampler`` with Zephyr Z(m, t) topology and a stand-in annealing on
    ``schedule`` (default: :func:`qbm.samplers.schedule.advantage2_schedule`, i.e. the
    table in ``$QBM_ANNEAL_SCHEDULE`` when set, else the packaged generic one; or an
    :class:`~qbm.samplers.schedule.AnnealSchedule`, e.g. from a real solver's properties
    via ``AnnealSchedule.from_properties``): ``dynamics="sqa"`` path-integral SQA at the
    device temperature (:class:`SQAStandIn`), ``"exact"`` the closed-system Schrödinger
    equation (:class:`SchrodingerStandIn`, small problems only)."""
    from dwave.system.testing import MockDWaveSampler

    if dynamics not in ("sqa", "exact"):
        raise ValueError(f"dynamics: expected 'sqa' or 'exact', got {dynamics!r}")
    if standin is None:
        standin = SQAStandIn(schedule=schedule) if dynamics == "sqa" else SchrodingerStandIn(schedule=schedule)
    return MockDWaveSampler(
        topology_type="zephyr",
        topology_shape=[m, t],
        substitute_sampler=standin,
        substitute_kwargs={},
        exact_solver_cutoff=0,
        parameter_warnings=False,
        **kwargs,
    )


def parse_mock(spec: str) -> Any:
    """'zephyr:M,T' (or 'zephyr:M') -> :func:`mock_advantage2` with the SQA stand-in;
    'zephyr:M,T:exact' with the exact (Schrödinger) stand-in."""
    dynamics = "sqa"
    if spec.endswith(":exact"):
        spec, dynamics = spec[: -len(":exact")], "exact"
    kind, _, rest = spec.partition(":")
    if kind != "zephyr" or not rest:
        raise ValueError(f"mock: expected 'zephyr:M,T', got {spec!r}")
    try:
        parts = [int(v) for v in rest.split(",")]
    except ValueError:
        raise ValueError(f"mock: expected integers in {spec!r}") from None
    return mock_advantage2(parts[0], parts[1] if len(parts) > 1 else 4, dynamics=dynamics)
