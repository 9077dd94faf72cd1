"""``Advantage2Sampler``: a dimod sampler (and BM-VAE prior sampler) on a Zephyr QPU."""

from __future__ import annotations

import math
import time
from typing import Any

import dimod
import networkx as nx
import numpy as np

from qbm.ising import IsingModel
from qbm.qpu.embedding import EmbeddingCache, chain_length_stats, find_embedding_for
from qbm.samplers._base import SampleResult

#: Mode presets (every entry can be overridden by keyword).
MODES: dict[str, dict[str, Any]] = {
    # diabatic / fast anneal: Boltzmann-like samples at an effective temperature (training)
    "dqa": {"fast_anneal": True, "annealing_time": 0.02, "answer_mode": "raw"},
    # slow anneal toward low-energy states (unconditional generation)
    "qa": {"annealing_time": 200.0, "answer_mode": "raw"},
    # slow anneal with extra bias fields from the caller (conditional generation)
    "cqa": {"annealing_time": 200.0, "answer_mode": "raw"},
}


#: Exceptions treated as failures of the service (retried); parameter errors are not.
def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, (ValueError, TypeError, KeyError)):
        return False
    return True


def scale_to_ranges(
    bqm: dimod.BinaryQuadraticModel, h_range: tuple[float, float], j_range: tuple[float, float]
) -> tuple[dimod.BinaryQuadraticModel, float]:
    """Scale a SPIN BQM by one factor s so that h and J use the solver's ranges as fully as
    possible (like auto_scale, but explicit); returns (scaled BQM, s) with scaled = s * bqm."""
    lin = np.array(list(bqm.linear.values()), dtype=float) if bqm.num_variables else np.zeros(0)
    quad = np.array(list(bqm.quadratic.values()), dtype=float) if bqm.num_interactions else np.zeros(0)
    limits = []
    for vals, (lo, hi) in ((lin, h_range), (quad, j_range)):
        if vals.size:
            vmax, vmin = vals.max(), vals.min()
            if vmax > 0:
                limits.append(hi / vmax)
            if vmin < 0:
                limits.append(lo / vmin)
    s = min(limits) if limits else 1.0
    out = bqm.copy()
    out.scale(s)
    return out, float(s)


H_MAX, J_MAX = 4.0, 1.0  # Advantage2's programmable ranges: |h| <= 4, |J| <= 1


def max_energy_scale(model: IsingModel) -> float:
    """The largest factor a QPU can program ``model`` at: 1 / max(max|J| / 1, max|h| / 4)
    (what auto-scaling applies; inf for a model with no field or coupling)."""
    jmax = float(np.abs(model.J.data).max()) if model.num_interactions else 0.0
    hmax = float(np.abs(model.h).max()) if model.num_variables else 0.0
    m = max(jmax / J_MAX, hmax / H_MAX)
    return 1.0 / m if m > 0 else math.inf


def estimate_beta_eff(
    model: IsingModel, spins: np.ndarray, *, num_bootstrap: int = 100, seed: int = 0
) -> dict[str, float]:
    """beta_eff of samples relative to ``model``'s energy scale by maximum pseudo-likelihood
    (dwave.system.temperatures), with a 95% bootstrap interval."""
    from dwave.system.temperatures import maximum_pseudolikelihood_temperature

    bqm = model.to_bqm()
    T, boots = maximum_pseudolikelihood_temperature(
        bqm=bqm, sampleset=(spins, model.labels), num_bootstrap_samples=num_bootstrap, seed=seed
    )
    boots = np.asarray(boots, dtype=float)
    beta = 1.0 / T if T > 0 else math.inf
    if boots.size:
        lo_T, hi_T = np.percentile(boots, [2.5, 97.5])
        interval = (1.0 / hi_T if hi_T > 0 else math.inf, 1.0 / lo_T if lo_T > 0 else math.inf)
    else:
        interval = (beta, beta)
    return {"beta_eff": beta, "beta_low": interval[0], "beta_high": interval[1]}


def steer_scale(used: float, beta_eff: float, target: float = 1.0, *, damped: bool = False) -> float:
    """The next programmed energy scale: a QPU samples about exp(-b_phys * scale * E), so
    beta_eff relative to the model moves with the scale; one full step scale * target /
    beta_eff, then damped (square-root) steps, as the stand-in's dynamics are not linear."""
    if damped:
        return float(used) * float(target) ** 0.5 / float(beta_eff) ** 0.5
    return float(used) * float(target) / float(beta_eff)


def calibrate_energy_scale(
    qpu: Any, model: IsingModel, *, target_beta: float = 1.0, num_reads: int = 100, rounds: int = 5,
    seed: int = 0, **params: Any,
) -> dict[str, Any]:  # fmt: skip
    """Steer ``energy_scale`` until the samples' beta_eff relative to ``model`` (maximum
    pseudo-likelihood, 95% bootstrap interval) holds ``target_beta``, in at most ``rounds``
    probe calls of ``num_reads`` each; returns the scale, whether it converged, and every
    round's (scale, beta_eff, interval). ``qpu``: an :class:`Advantage2Sampler`, or any
    sampler whose ``sample_model`` takes ``energy_scale`` (None: its default) and reports
    the scale it used (e.g. :class:`qbm.samplers.SchrodingerAnnealer`); beta_eff is estimated
    here when the sampler does not report one."""
    if not (np.isfinite(target_beta) and target_beta > 0):
        raise ValueError(f"target_beta: must be finite and > 0, got {target_beta!r}")
    scale: float | None = None
    history = []
    for k in range(int(rounds)):
        r = qpu.sample_model(model, num_reads=num_reads, seed=seed + k, energy_scale=scale, **params)
        if "beta_eff" not in r.info:  # a sampler with an energy scale but no thermometer (SchrodingerAnnealer)
            r.info.update(estimate_beta_eff(model, r.spins, seed=seed + k))
        b, lo, hi = (r.info.get(x) for x in ("beta_eff", "beta_low", "beta_high"))
        used = r.info.get("scale", r.info.get("energy_scale"))
        history.append({"scale": used, "beta_eff": b, "beta_low": lo, "beta_high": hi})
        if b is None or not np.isfinite(b) or b <= 0:
            break
        if lo is not None and hi is not None and np.isfinite(lo) and np.isfinite(hi) and lo <= target_beta <= hi:
            return {"energy_scale": float(used), "converged": True, "history": history}
        scale = steer_scale(used, b, target_beta, damped=k > 0)
    last = history[-1]["scale"] if history else None
    return {"energy_scale": scale if scale is not None else last, "converged": False, "history": history}


class Advantage2Sampler(dimod.Sampler):
    """Samples Ising models on a Zephyr-topology D-Wave QPU (or an offline stand-in).

    ``child``: a structured dimod sampler; default ``DWaveSampler`` selecting a Zephyr
    solver (the user's D-Wave credentials, from the environment / config file; ``solver``
    names one). For offline use: :func:`qbm.qpu.mock_advantage2`.

    Per call: embed (cached), set chain strength (``uniform_torque_compensation`` or a
    number), scale into h_range / j_range (auto_scale off; the factor is reported),
    apply the mode preset (``"dqa"``, ``"qa"``, ``"cqa"``; keyword overrides win),
    validate parameters against the solver before submitting, split ``num_reads`` into
    submissions within the solver's limits, retry failures with exponential backoff,
    unembed (majority vote or discard), and compute energies on the user's unscaled model.
    """

    def __init__(
        self,
        child: Any = None,
        *,
        mode: str = "dqa",
        solver: str | None = None,
        chain_strength: float | None = None,
        chain_break_method: str = "majority_vote",
        cache_dir: str | None = None,
        embedding_timeout: float = 30.0,
        seed: int = 0,
        max_retries: int = 3,
        backoff: float = 1.0,
        max_reads_per_call: int | None = None,
        estimate_beta: bool = True,
        verbose: bool = False,
        max_qpu_seconds: float | None = 60.0,
        **overrides: Any,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode: unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        if chain_break_method not in ("majority_vote", "discard"):
            raise ValueError(
                f"chain_break_method: unknown value {chain_break_method!r}; choose majority_vote or discard"
            )
        if chain_strength is not None and not (np.isfinite(chain_strength) and chain_strength > 0):
            raise ValueError(f"chain_strength: must be a positive number, got {chain_strength!r}")
        if max_retries < 0:
            raise ValueError(f"max_retries: must be >= 0, got {max_retries}")
        self._child = child
        self._solver = solver
        self.mode, self.overrides = mode, overrides
        self.chain_strength, self.chain_break_method = chain_strength, chain_break_method
        self.cache = EmbeddingCache(cache_dir)
        self.embedding_timeout, self.seed = embedding_timeout, seed
        self.max_retries, self.backoff = max_retries, backoff
        self.max_reads_per_call, self.estimate_beta, self.verbose = max_reads_per_call, estimate_beta, verbose
        if max_qpu_seconds is not None and not (np.isfinite(max_qpu_seconds) and max_qpu_seconds > 0):
            raise ValueError(f"max_qpu_seconds: must be a positive number or None, got {max_qpu_seconds!r}")
        # a call whose estimated QPU access time exceeds this is refused before any submission
        # (QPU time costs money; None: no limit)
        self.max_qpu_seconds = max_qpu_seconds
        self.minorminer_calls = 0
        self.total_qpu_access_time_us = 0.0
        self.partial: dimod.SampleSet | None = None

    # ------------------------------------------------------------ solver facts
    @property
    def child(self) -> Any:
        if self._child is None:
            from dwave.system import DWaveSampler

            solver = self._solver or {"topology__type": "zephyr"}
            self._child = DWaveSampler(solver=solver)
        return self._child

    @property
    def properties(self) -> dict[str, Any]:
        return {"child_properties": self.child.properties, "mode": self.mode}

    @property
    def anneal_schedule(self) -> Any:
        """The solver's A(s), B(s): from its properties when they carry a table
        (``anneal_schedule_table``), else the stand-in's (:func:`qbm.samplers.schedule.
        advantage2_schedule`: ``$QBM_ANNEAL_SCHEDULE`` or the packaged generic table, whose
        ``source`` says which). What an offline emulation of this solver should anneal on."""
        from qbm.samplers.schedule import AnnealSchedule, advantage2_schedule

        sub = getattr(self.child, "substitute_sampler", None)
        if sub is not None and getattr(sub, "schedule", None) is not None and not isinstance(sub.schedule, str):
            return sub.schedule
        return AnnealSchedule.from_properties(dict(self.child.properties)) or advantage2_schedule()

    @property
    def parameters(self) -> dict[str, list[str]]:
        p = {k: [] for k in self.child.parameters}
        p.update({"num_reads": [], "seed": [], "extra_fields": [], "mode": [], "chain_strength": []})
        return p

    def target_graph(self) -> nx.Graph:
        """The solver's working graph (a Zephyr graph object with its family metadata when
        the topology is Zephyr, as busclique needs)."""
        if getattr(self, "_target", None) is not None:
            return self._target
        c = self.child
        topo = c.properties.get("topology", {})
        g = None
        if topo.get("type") == "zephyr":
            try:
                try:
                    from dwave.graphs import zephyr_graph
                except ImportError:  # pragma: no cover
                    from dwave_networkx import zephyr_graph
                m, t = topo["shape"][0], topo["shape"][1]
                g = zephyr_graph(m, t, node_list=list(c.nodelist), edge_list=list(c.edgelist))
            except Exception:  # noqa: BLE001 - fall back to a plain graph
                g = None
        if g is None:
            g = nx.Graph()
            g.add_nodes_from(c.nodelist)
            g.add_edges_from(c.edgelist)
        self._target = g
        return g

    def _zephyr_m(self) -> int | None:
        topo = self.child.properties.get("topology", {})
        if topo.get("type") == "zephyr":
            return int(topo["shape"][0])
        return None

    # ------------------------------------------------------------ embedding
    def embedding_for(self, bqm: dimod.BinaryQuadraticModel) -> dict[Any, list[Any]]:
        source = nx.Graph()
        source.add_nodes_from(bqm.variables)
        source.add_edges_from(bqm.quadratic)
        target = self.target_graph()
        key = self.cache.key(source, target)
        emb = self.cache.get(key, source)
        if emb is None:
            self.minorminer_calls += 1
            emb, method = find_embedding_for(
                source, target, seed=self.seed, timeout=self.embedding_timeout, zephyr_m=self._zephyr_m()
            )
            missing = [v for v in source.nodes if v not in emb]
            if missing:  # isolated variables: any free qubit
                used = {q for c in emb.values() for q in c}
                free = [q for q in target.nodes if q not in used]
                if len(free) < len(missing):
                    raise ValueError("embedding: not enough free qubits for isolated variables")
                for v, q in zip(missing, free):
                    emb[v] = [q]
            self.last_embedding_method = method
            self.cache.put(key, emb)
        return emb

    # ------------------------------------------------------------ parameters
    def solver_parameters(self, mode: str | None = None, **overrides: Any) -> dict[str, Any]:
        """The preset of ``mode`` with this sampler's and the call's overrides applied."""
        mode = mode or self.mode
        if mode not in MODES:
            raise ValueError(f"mode: unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        user = {**self.overrides, **overrides}
        if "anneal_schedule" in user and "annealing_time" in user:
            raise ValueError(
                "annealing_time: cannot be combined with anneal_schedule (the schedule's last time is the anneal's "
                "length); give one of them"
            )
        params = {**MODES[mode], **user}
        if "anneal_schedule" in user:
            params.pop("annealing_time", None)  # the preset's, replaced by the schedule
        return params

    def validate(self, params: dict[str, Any]) -> None:
        """Refuse, before any submission, parameters the solver does not support."""
        c = self.child
        for k in params:
            if k not in c.parameters:
                raise ValueError(
                    f"{k}: parameter not supported by solver {c.properties.get('chip_id', type(c).__name__)}"
                )
        props = c.properties
        if "annealing_time" in params and "anneal_schedule" in params:
            raise ValueError("annealing_time: cannot be combined with anneal_schedule")
        if params.get("fast_anneal"):
            rng = props.get("fast_anneal_time_range")
            if rng is None:
                raise ValueError("fast_anneal: the solver reports no fast_anneal_time_range")
            t = params.get("annealing_time")
            if t is not None and not rng[0] <= t <= rng[1]:
                raise ValueError(f"annealing_time: {t} us outside the fast-anneal range {rng}")
        elif "annealing_time" in params:
            rng = props.get("annealing_time_range")
            t = params["annealing_time"]
            if rng is not None and not rng[0] <= t <= rng[1]:
                raise ValueError(f"annealing_time: {t} us outside the solver's range {rng}")

    # ------------------------------------------------------------ sampling
    def estimate_access_time_us(self, num_qubits: int, num_reads: int, params: dict[str, Any]) -> float:
        c = self.child
        if hasattr(c, "estimate_qpu_access_time"):
            try:
                kw = {k: params[k] for k in ("annealing_time", "anneal_schedule") if k in params}
                return float(c.estimate_qpu_access_time(num_qubits, num_reads=num_reads, **kw))
            except Exception:  # noqa: BLE001 - fall back to a rough formula
                pass
        t = params.get("annealing_time", 20.0)
        return 15000.0 + num_reads * (t + 100.0)

    def _with_ancillas(
        self, target_bqm: dimod.BinaryQuadraticModel, params: dict[str, Any]
    ) -> tuple[dimod.BinaryQuadraticModel, dict[str, Any]]:
        """Fast anneal forbids h: move every field h_v onto a coupling to a neighbouring
        ancilla qubit pinned to +1 by a flux bias (the LinearAncillaComposite construction;
        that composite fails when ancillas are shared in dwave-system 1.36, so qbm builds
        it directly and shares each ancilla freely, which is valid for a pinned +1)."""
        from dwave.system.temperatures import h_to_fluxbias

        target = self.target_graph()
        used = set(target_bqm.variables)
        out = dimod.BinaryQuadraticModel(
            dict.fromkeys(target_bqm.variables, 0.0), dict(target_bqm.quadratic), target_bqm.offset, dimod.SPIN
        )
        load: dict[Any, int] = {}
        nq = max(self.child.nodelist) + 1
        fb = [0.0] * nq
        direct = 0
        for v, h in target_bqm.linear.items():
            if h == 0:
                continue
            cands = [q for q in target.neighbors(v) if q not in used]
            if not cands:  # no free neighbour: the field goes in as a flux bias on the qubit itself
                fb[v] += float(h_to_fluxbias(h))
                direct += 1
                continue
            a = min(cands, key=lambda q: (load.get(q, 0), q))
            load[a] = load.get(a, 0) + 1
            out.add_interaction(v, a, float(h))
        pin = float(h_to_fluxbias(-2.0))
        for a in load:
            fb[a] = pin
        self.last_ancillas = {"ancilla_qubits": len(load), "flux_bias_fields": direct}
        return out, {**params, "flux_biases": fb}

    def _submit(
        self, target_bqm: dimod.BinaryQuadraticModel, params: dict[str, Any], num_reads: int
    ) -> dimod.SampleSet:
        child = self.child
        last: BaseException | None = None
        for attempt in range(self.max_retries + 1):
            try:
                extra = {} if getattr(self, "_child_seed", None) is None else {"seed": self._child_seed}
                return child.sample(target_bqm, num_reads=num_reads, auto_scale=False, **params, **extra)
            except BaseException as e:  # noqa: BLE001
                if not _retryable(e) or isinstance(e, KeyboardInterrupt):
                    raise
                last = e
                if attempt < self.max_retries:
                    time.sleep(self.backoff * (2**attempt))
        raise RuntimeError(
            f"QPU submission failed after {self.max_retries + 1} attempts: {type(last).__name__}: {last}"
        ) from last

    def sample(
        self,
        bqm: dimod.BinaryQuadraticModel,
        num_reads: int = 100,
        *,
        mode: str | None = None,
        extra_fields: dict[Any, float] | None = None,
        chain_strength: float | None = None,
        energy_scale: float | None = None,
        seed: int | None = None,
        **params: Any,
    ) -> dimod.SampleSet:
        """Sample a BQM (SPIN or BINARY). ``extra_fields`` adds bias fields (c-QA mode).
        ``energy_scale``: programmed = energy_scale * embedded BQM (capped to fit the
        solver's ranges); ``None`` fills the ranges (the largest scale that fits).
        Returns samples over the BQM's variables with its own energies; ``info`` has the
        embedding method and chain lengths, chain-break fraction, chain strength, scale,
        QPU access time, and beta_eff when ``estimate_beta``."""
        from dwave.embedding import embed_bqm, unembed_sampleset
        from dwave.embedding.chain_breaks import discard, majority_vote
        from dwave.embedding.chain_strength import uniform_torque_compensation

        from qbm._validate import check_positive_int, check_seed

        num_reads = check_positive_int(num_reads, "num_reads")
        if chain_strength is not None and not (
            isinstance(chain_strength, (int, float, np.integer, np.floating))
            and not isinstance(chain_strength, bool)
            and np.isfinite(chain_strength)
            and chain_strength > 0
        ):
            raise ValueError(f"chain_strength: must be a positive number, got {chain_strength!r}")
        seed_used = self._seed_child(None if seed is None else check_seed(seed))
        spin = bqm.spin if bqm.vartype is dimod.BINARY else bqm.copy()
        work = spin.copy()
        if extra_fields:
            from qbm._validate import check_number

            for v, b in extra_fields.items():
                if v not in work.variables:
                    raise ValueError(f"extra_fields: unknown variable {v!r}")
                if not np.isfinite(check_number(b, f"extra_fields[{v!r}]")):
                    raise ValueError(f"extra_fields: the bias field of {v!r} is {b} (must be finite)")
                work.add_linear(v, float(b))
        solver_params = self.solver_parameters(mode, **params)
        self.validate(solver_params)
        emb = self.embedding_for(work)
        target = self.target_graph()
        adj = {q: set(target.neighbors(q)) for q in target.nodes}
        cs = chain_strength if chain_strength is not None else self.chain_strength
        if cs is None:
            cs = uniform_torque_compensation(work, emb) if any(len(c) > 1 for c in emb.values()) else 1.0
        target_bqm = embed_bqm(work, emb, adj, chain_strength=cs)
        props = self.child.properties
        j_rng = tuple(props.get("j_range", (-1, 1)))
        fast = bool(solver_params.get("fast_anneal"))
        # with fast anneal the fields become ancilla couplings, so they must fit j_range too
        h_rng = j_rng if fast else tuple(props.get("h_range", (-4, 4)))
        scaled, scale = scale_to_ranges(target_bqm, h_rng, j_rng)
        capped = False
        if energy_scale is not None:
            if not (np.isfinite(energy_scale) and energy_scale > 0):
                raise ValueError(f"energy_scale: must be a positive number, got {energy_scale!r}")
            if energy_scale < scale:
                scaled = target_bqm.copy()
                scaled.scale(energy_scale)
                scale = float(energy_scale)
            else:
                capped = energy_scale > scale
        submit_params = dict(solver_params)
        if fast and any(v != 0 for v in scaled.linear.values()):
            scaled_anc, submit_params = self._with_ancillas(scaled, solver_params)
        else:
            scaled_anc = scaled
        max_reads = int(props.get("num_reads_range", [1, 10000])[1])
        dur = props.get("problem_run_duration_range")
        per_read = solver_params.get("annealing_time", 20.0) + 150.0
        if dur:
            max_reads = max(1, min(max_reads, int(dur[1] // per_read)))
        if self.max_reads_per_call:
            max_reads = min(max_reads, self.max_reads_per_call)
        n_chunks = -(-num_reads // max_reads)
        est = self.estimate_access_time_us(scaled.num_variables, num_reads, solver_params) * max(1, n_chunks)
        if self.max_qpu_seconds is not None and est > self.max_qpu_seconds * 1e6:
            raise ValueError(
                f"num_reads: {num_reads} reads need about {est / 1e6:.3g} s of QPU access time in {n_chunks} "
                f"submission(s), above the budget of {self.max_qpu_seconds:g} s (max_qpu_seconds; "
                "--max-qpu-seconds on the command line): raise the budget to confirm, or ask for fewer reads"
            )
        chunks = [min(max_reads, num_reads - k) for k in range(0, num_reads, max_reads)]
        if self.verbose or est > 5e6:
            print(f"qbm qpu: {len(chunks)} submission(s), estimated QPU access time {est / 1e6:.2f} s")
        parts: list[dimod.SampleSet] = []
        access = 0.0
        self.partial = None
        for reads in chunks:
            try:
                ss = self._submit(scaled_anc, submit_params, reads)
            except RuntimeError as e:
                if parts:
                    self.partial = dimod.concatenate(parts)
                    e.partial = self.partial  # type: ignore[attr-defined]
                raise
            access += float(ss.info.get("timing", {}).get("qpu_access_time", 0.0))
            if set(ss.variables) != set(scaled.variables):  # drop ancilla qubits
                keep = [list(ss.variables).index(v) for v in scaled.variables]
                ss = dimod.SampleSet.from_samples_bqm(
                    (ss.record.sample[:, keep], list(scaled.variables)),
                    scaled,
                    info=ss.info,
                    num_occurrences=ss.record.num_occurrences,
                )
            parts.append(ss)
        self.total_qpu_access_time_us += access
        target_ss = dimod.concatenate(parts) if len(parts) > 1 else parts[0]
        cbm = majority_vote if self.chain_break_method == "majority_vote" else discard
        out = unembed_sampleset(target_ss, emb, spin, chain_break_method=cbm, chain_break_fraction=True)
        if bqm.vartype is dimod.BINARY:
            out = out.change_vartype(dimod.BINARY)
        energies = bqm.energies(out)
        out = dimod.SampleSet.from_samples(
            (out.record.sample, list(out.variables)),
            bqm.vartype,
            energy=energies,
            chain_break_fraction=out.record.chain_break_fraction,
            num_occurrences=out.record.num_occurrences,
        )
        lengths = chain_length_stats(emb)
        info: dict[str, Any] = {
            "mode": mode or self.mode,
            "solver_parameters": solver_params,
            "chain_strength": float(cs),
            "scale": scale,
            "scale_capped": capped,
            "embedding": lengths,
            "embedding_method": getattr(self, "last_embedding_method", "cached"),
            "chain_break_fraction": float(np.mean(out.record.chain_break_fraction)) if len(out) else 0.0,
            "submissions": len(chunks),
            "qpu_access_time_us": access,
            "estimated_access_time_us": est,
            "seed": seed,
            "seed_honoured": seed_used,
        }
        out.info.update(info)
        return out

    def _seed_child(self, seed: int | None) -> bool:
        """Pass ``seed`` to whatever samples in the end: the offline stand-in behind
        dwave-system's ``MockDWaveSampler`` (which refuses unknown keyword arguments) is
        reseeded directly; a child that declares a ``seed`` parameter gets it per call. A
        real QPU has no seed: returns False then (its samples are not reproducible)."""
        self._child_seed = None
        if seed is None:
            return False
        sub = getattr(self.child, "substitute_sampler", None)
        if sub is not None and hasattr(sub, "reseed"):
            sub.reseed(seed)
            return True
        if "seed" in getattr(self.child, "parameters", {}):
            self._child_seed = seed
            return True
        return False

    def sample_model(
        self,
        model: IsingModel,
        *,
        num_reads: int = 100,
        seed: int | None = None,
        extra_field: Any = None,
        energy_scale: float | None = None,
        certify: bool = False,
        target_beta: float | None = None,
        **params: Any,
    ) -> SampleResult:
        """Array API (BM-VAE negative phase / generation): spins (num_reads, n) in the model's
        variable order, its energies, and info (with beta_eff and its bootstrap interval;
        ``certify=True`` adds ``info["certificate"]``, :func:`qbm.diagnostics.certify` of the
        samples against ``model``: with ``target_beta`` it asks "Boltzmann at that beta?"
        (sampling a prior: 1), without it "at what beta, and are they?". The certificate's
        beta_eff interval then replaces the estimator's in info, so one interval is reported)."""
        if not isinstance(certify, bool):
            raise ValueError(f"certify: expected True or False, got {certify!r}")
        extra = None
        if extra_field is not None:
            extra = {lab: float(v) for lab, v in zip(model.labels, np.asarray(extra_field, dtype=float))}
        ss = self.sample(
            model.to_bqm(), num_reads=num_reads, extra_fields=extra, seed=seed, energy_scale=energy_scale, **params
        )
        idx = [list(ss.variables).index(v) for v in model.labels]
        spins = np.repeat(ss.record.sample[:, idx], ss.record.num_occurrences, axis=0).astype(np.int8)
        if len(spins) == 0:
            raise RuntimeError("qpu: every sample was discarded for broken chains; use majority_vote")
        info = dict(ss.info)
        if self.estimate_beta and len(spins) > 1:
            try:
                info.update(estimate_beta_eff(model, spins, num_bootstrap=50, seed=self.seed))
            except Exception as e:  # noqa: BLE001 - estimation is advisory
                info["beta_eff_error"] = str(e)
        if certify and len(spins) > 1:  # before any refill: only the samples the device gave
            from qbm.diagnostics import certify as _certify

            cert = _certify(spins, model, beta=target_beta, seed=self.seed or 0)
            info["certificate"] = cert
            if cert.get("beta_eff") is not None:
                info["beta_eff"] = cert["beta_eff"]
                info["beta_low"], info["beta_high"] = cert["beta_eff_ci"]
        if len(spins) < num_reads:  # discarded chains: refill by resampling rows
            rng = np.random.default_rng(self.seed if seed is None else [self.seed, seed])
            spins = spins[rng.integers(0, len(spins), num_reads)]
        return SampleResult(spins[:num_reads], model.energy(spins[:num_reads]), info)
