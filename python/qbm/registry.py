"""The registry of prior samplers (negative phases) and generation anneals, torch-free so
that the command line can list the choices without importing torch. The prior-sampler
classes themselves are in :mod:`qbm.models.negative`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PriorSampler = Any  # qbm.models.negative.PriorSampler (a Protocol; kept out to avoid importing torch)


@dataclass(frozen=True)
class Entry:
    """A registered prior sampler: its factory and a one-line description."""

    factory: Callable[..., PriorSampler]
    description: str
    needs_qpu: bool = False


REGISTRY: dict[str, Entry] = {}


def register(name: str, factory: Callable[..., PriorSampler], description: str, *, needs_qpu: bool = False) -> None:
    """Make ``name`` available to the negative phase, the generation modes and the CLI.
    ``factory(num_chains, sweeps, seed, num_threads, qpu)`` returns a prior sampler."""
    REGISTRY[name] = Entry(factory, description, needs_qpu)


def names() -> tuple[str, ...]:
    return tuple(REGISTRY)


def make_prior_sampler(
    name: str,
    num_chains: int = 128,
    *,
    sweeps: int = 10,
    seed: int = 0,
    num_threads: int | None = None,
    qpu: Any = None,
    **options: Any,
) -> PriorSampler:
    """The registered prior sampler ``name`` (see :data:`REGISTRY`); ``options`` go to its
    factory (e.g. ``anneal_ns`` for ``"schrodinger"``)."""
    entry = REGISTRY.get(name)
    if entry is None:
        raise ValueError(f"sampler: unknown sampler {name!r}; choose one of {', '.join(REGISTRY)}")
    if entry.needs_qpu and qpu is None:
        raise ValueError(f"sampler: {name!r} needs a qbm.qpu.Advantage2Sampler (qpu=...)")
    s = entry.factory(num_chains=num_chains, sweeps=sweeps, seed=seed, num_threads=num_threads, qpu=qpu, **options)
    s.name = name
    s.sweeps = sweeps  # recorded in checkpoints so that a resumed run uses the same budget
    return s


# Backwards-compatible name: NegativePhase("gibbs", 128, sweeps=10, seed=0) etc.
NegativePhase = make_prior_sampler


def _gibbs(num_chains: int, sweeps: int, seed: int, num_threads: int | None, **_: Any) -> PriorSampler:
    from qbm.models.negative import PersistentChains
    from qbm.samplers import GibbsSampler

    return PersistentChains(GibbsSampler(num_threads=num_threads), num_chains, seed=seed, beta=1.0, num_sweeps=sweeps)


def _rbm(num_chains: int, sweeps: int, seed: int, num_threads: int | None, **_: Any) -> PriorSampler:
    from qbm.models.negative import PersistentChains
    from qbm.samplers import RBMSampler

    return PersistentChains(
        RBMSampler(num_threads=num_threads), num_chains, seed=seed, form="rbm", beta=1.0, num_sweeps=sweeps
    )


def _pt(num_chains: int, sweeps: int, seed: int, num_threads: int | None, **_: Any) -> PriorSampler:
    from qbm.models.negative import PersistentChains
    from qbm.samplers import ParallelTemperingSampler

    return PersistentChains(
        ParallelTemperingSampler(num_threads=num_threads),
        num_chains,
        seed=seed,
        beta=1.0,
        beta_min=0.2,
        num_replicas=4,
        num_sweeps=sweeps,
    )


def _sqa(num_chains: int, sweeps: int, seed: int, num_threads: int | None, **_: Any) -> PriorSampler:
    from qbm.models.negative import FreshAnneals
    from qbm.samplers import SQASampler

    return FreshAnneals(
        SQASampler(num_threads=num_threads),
        num_chains,
        seed=seed,
        beta=1.0,
        gamma=1.0,
        num_trotter_slices=8,
        num_sweeps=max(5 * sweeps, 50),
        s_min=0.3,
    )


#: the exact-DQA negative phase's default anneal: the longest anneal at which ``qbm study dqa``
#: found the reads Boltzmann within their floor on every model (16-spin prior included)
DEFAULT_ANNEAL_NS = 0.3


def _schrodinger(num_chains: int, seed: int, num_threads: int | None, anneal_ns: float | None = None,
                 **_: Any) -> PriorSampler:  # fmt: skip
    from qbm.models.negative import ExactDQA
    from qbm.samplers import SchrodingerAnnealer

    t_ns = DEFAULT_ANNEAL_NS if anneal_ns is None else float(anneal_ns)
    return ExactDQA(SchrodingerAnnealer(num_threads=num_threads), num_chains, seed=seed, anneal_time_us=t_ns / 1e3)


def _qpu(num_chains: int, seed: int, qpu: Any, **_: Any) -> PriorSampler:
    from qbm.models.negative import QPUAnneals

    return QPUAnneals(qpu, num_chains, seed=seed)


register("gibbs", _gibbs, "persistent single-spin heat-bath chains (PCD)")
register("rbm", _rbm, "persistent block-Gibbs chains (RBM graph only)")
register("pt", _pt, "parallel tempering (4 replicas, beta 0.2..1) restarted from the persistent states")
register("sqa", _sqa, "fresh simulated quantum anneals ending at s = 1 (DQA stand-in)")
register(
    "schrodinger",
    _schrodinger,
    "exact DQA: fresh closed-system (Schrödinger) anneals of the prior (--anneal-ns, default 0.3), energy scale "
    "steered to beta_eff = 1",
)
register("qpu", _qpu, "the Advantage2 backend (or its offline stand-in)", needs_qpu=True)

# Generation (QA) anneals by name (implemented in qbm.generation) and the c-QA bias strength
# used when a model carries no lambda chosen at training (qbm.generation.LAMBDA_RULE).
ANNEALER_NAMES = ("sa", "sqa")
DEFAULT_LAMBDA = 1.0
