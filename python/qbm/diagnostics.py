"""Sampler certificates: are these samples from the Boltzmann distribution asked for?

:func:`certify` takes the output of any qbm sampler (a :class:`~qbm.samplers.SampleResult`),
a ``dimod.SampleSet`` or a plain (N, n) array of +-1 spins, with the Ising model they were
drawn for (E(s) = offset + sum_i h_i s_i + sum_{i<j} J_ij s_i s_j, weight exp(-beta E)), and
returns a :class:`Certificate`:

- ``beta_eff``: the inverse temperature by maximum pseudo-likelihood (Besag): the
  conditionals P(s_i | s_rest) = exp(-beta s_i f_i) / 2 cosh(beta f_i), f_i = h_i +
  sum_j J_ij s_j, multiplied over spins and samples; the log is concave in beta, solved by
  safeguarded Newton. ``beta_eff_ci``: a percentile bootstrap over samples (rows resampled
  with replacement). It is consistent for Boltzmann samples at any size (no partition
  function is needed), which is why the QPU literature uses it (dwave.system.temperatures
  fits the same estimator, one sample set at a time, without an interval).
- ``tau_int`` and ``ess``: the integrated autocorrelation time (Sokal's window) and the
  multi-chain effective sample size (Stan's, between-chain variance included) of the
  energy, and of the magnetisation, along persistent chains, where the result carries a
  trace (``info["energy_trace"]``, from ``record_energies=True``, or rows labelled by
  ``read`` and ``sweep`` vectors). Fails when the ESS is under ``min_ess`` or the trace is
  shorter than 20 tau_int (too short to have equilibrated, or to estimate tau).
- ``tv`` and ``tv_floor``: for n <= ``max_exact`` (20), the total variation distance
  between the samples' histogram and the exact Boltzmann distribution at the target beta
  (or at beta_eff when no target is given), beside the expected TV of that many
  independent exact samples (de Moivre's mean absolute deviation of a binomial, summed
  over states). TV passes below ``tv_floor + sqrt(ln(1/alpha) / (2 N))`` (McDiarmid's
  bound: one sample moves the TV by at most 1/N), with N the effective sample size where
  a trace gives one.
- ``ok`` and ``verdict``: every check that applies passes; the verdict names each one that
  fails.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from qbm.ising import IsingModel
from qbm.metrics import effective_sample_size, integrated_autocorrelation_time
from qbm.samplers._base import sampler_named, set_certifier

MAX_EXACT = 20
MIN_TAUS = 20  # a trace shorter than this many autocorrelation times is not equilibrated
BETA_CAP = 1e3  # beta_eff reported as inf beyond this (samples all at local minima)


class Certificate(dict):
    """A mapping with ``beta_eff``, ``beta_eff_ci``, ``tau_int``, ``ess``, ``tv``,
    ``tv_floor``, ``ok`` and ``verdict`` (None where a check does not apply), and the
    details behind them. ``str()`` gives the one-line report."""

    def __str__(self) -> str:
        return format_certificate(self)


def local_fields(spins: np.ndarray, model: IsingModel) -> np.ndarray:
    """f_i = h_i + sum_j J_ij s_j for each row of ``spins`` (N, n)."""
    s = np.asarray(spins, dtype=np.float64)
    return (model.J @ s.T).T + model.h[None, :]  # IsingModel holds J symmetric


def pseudo_likelihood_beta(spins: Any, model: IsingModel, *, weights: Any = None) -> float:
    """Maximum pseudo-likelihood inverse temperature of ``spins`` under ``model``.

    d/dbeta of the log pseudo-likelihood is g(beta) = -sum f_i (s_i + tanh(beta f_i)), which
    decreases in beta; its root is found by Newton steps safeguarded by bisection. Returns
    ``inf`` when g stays positive (every spin aligned with its field: local minima only)
    and 0 when g(0) <= 0 (anti-aligned on average)."""
    s = np.asarray(spins, dtype=np.float64)
    f = local_fields(s, model)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)[:, None]
    return _pl_root(s, f, w)


def _pl_root(s: np.ndarray, f: np.ndarray, w: np.ndarray | None) -> float:
    sf = s * f
    if w is not None:
        sf, f2w = sf * w, w
    else:
        f2w = 1.0
    a = -float(sf.sum())  # g(0) = -sum s f

    def g(b: float) -> tuple[float, float]:
        t = np.tanh(b * f)
        return a - float((f * t * f2w).sum()), float((f * f * (1 - t * t) * f2w).sum())

    if a <= 0:
        return 0.0
    if not (sf > 0).any():  # no spin against its field: g > 0 for every beta (frozen samples)
        return math.inf
    lo, hi = 0.0, 1.0
    while g(hi)[0] > 0:
        lo, hi = hi, 2 * hi
        if hi > BETA_CAP:
            return math.inf
    b = 0.5 * (lo + hi)
    for _ in range(100):
        v, d = g(b)
        if v > 0:
            lo = b
        else:
            hi = b
        nb = b + v / d if d > 0 else 0.5 * (lo + hi)
        if not (lo < nb < hi):
            nb = 0.5 * (lo + hi)
        if abs(nb - b) <= 1e-12 * max(1.0, b):
            return nb
        b = nb
    return b


GRID_POINTS = 97  # beta values at which every row's score is tabulated for the bootstrap
GRID_HALF_WIDTH = 8.0  # in standard errors of beta_eff either side of the estimate


def _bootstrap_roots(s: np.ndarray, f: np.ndarray, W: np.ndarray, beta: float) -> np.ndarray:
    """The pseudo-likelihood root of each bootstrap replicate (row weights ``W``, (B, N)).

    Each replicate's score is a weighted sum of per-row scores g_r(b) = -sum_i f_ri (s_ri +
    tanh(b f_ri)). Tabulated once on a grid of :data:`GRID_POINTS` betas within
    :data:`GRID_HALF_WIDTH` standard errors of the estimate, every replicate's root is a
    (B, N) x (N, K) product and a linear interpolation between the two grid points that
    bracket it, instead of a Newton solve over all N x n fields per replicate (50 s for 200
    replicates of 256 samples of 4800 spins before, about a second now). The interpolation
    error is of order (grid step)^2 times the score's curvature, orders below the interval's
    width; replicates whose root leaves the grid, and estimates at 0 or inf, are solved
    exactly as before."""
    B = len(W)
    sf = s * f
    a_r = -sf.sum(axis=1)  # g_r(0)
    against = (sf > 0).any(axis=1)  # rows with a spin against its field (a finite root needs one)
    out = np.empty(B)
    exact = np.ones(B, dtype=bool)
    if math.isfinite(beta) and beta > 0:
        t = np.tanh(beta * f)
        g_r = a_r - (f * t).sum(axis=1)
        curv = float((f * f * (1 - t * t)).sum())
        se = math.sqrt(float((g_r**2).sum())) / curv if curv > 0 else math.nan
        if math.isfinite(se) and se > 0:
            grid = beta + np.linspace(-GRID_HALF_WIDTH, GRID_HALF_WIDTH, GRID_POINTS) * se
            grid = grid[grid > 0]
            T = np.empty((len(s), len(grid)))
            for k, b in enumerate(grid):  # rows' sum_i f tanh(b f), one pass over the fields per grid point
                T[:, k] = (f * np.tanh(b * f)).sum(axis=1)
            G = (W @ a_r)[:, None] - W @ T  # (B, K), decreasing in beta
            for j in range(B):
                g = G[j]
                if len(g) < 2 or g[0] <= 0 or g[-1] > 0 or not (W[j] * against).any():
                    continue
                k = int(np.argmax(g <= 0))  # first grid point at or past the root
                x0, x1, y0, y1 = grid[k - 1], grid[k], g[k - 1], g[k]
                out[j] = x0 + (x1 - x0) * y0 / (y0 - y1)
                exact[j] = False
    for j in np.flatnonzero(exact):
        out[j] = _pl_root(s, f, W[j][:, None])
    return out


def fit_beta(
    spins: Any, model: IsingModel, *, bootstrap: int = 200, level: float = 0.95, seed: int = 0
) -> tuple[float, tuple[float, float]]:
    """beta_eff by maximum pseudo-likelihood and a percentile bootstrap interval over rows."""
    s = np.asarray(spins, dtype=np.float64)
    f = local_fields(s, model)
    beta = _pl_root(s, f, None)
    if bootstrap <= 0 or len(s) < 2:
        return beta, (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    # resampling rows = integer weights, no copies of s
    W = np.stack([np.bincount(rng.integers(0, len(s), len(s)), minlength=len(s)) for _ in range(bootstrap)])
    reps = _bootstrap_roots(s, f, W.astype(np.float64), beta)
    q = (1 - level) / 2
    r = np.sort(np.asarray(reps))  # order statistics: replicates at inf (no flips) stay inf
    k_lo = int(math.floor(q * (len(r) - 1)))
    k_hi = int(math.ceil((1 - q) * (len(r) - 1)))
    return beta, (float(r[k_lo]), float(r[k_hi]))


def state_index(spins: Any) -> np.ndarray:
    """+-1 rows -> integer state index (spin 0 the most significant bit, +1 -> 1)."""
    from qbm.data.synthetic import states_to_index

    return states_to_index(np.asarray(spins) > 0)


def empirical_distribution(spins: Any) -> np.ndarray:
    """Histogram of +-1 rows over all 2^n states, in :func:`state_index` order."""
    s = np.asarray(spins)
    return np.bincount(state_index(s), minlength=1 << s.shape[1]) / len(s)


def all_states(n: int) -> np.ndarray:
    """All 2^n spin rows in :func:`state_index` order."""
    idx = np.arange(1 << n, dtype=np.int64)[:, None]
    return (2 * ((idx >> np.arange(n - 1, -1, -1)) & 1) - 1).astype(np.int8)


def all_energies(model: IsingModel) -> np.ndarray:
    """Energies of all 2^n states (n <= 24) in :func:`state_index` order."""
    n = model.num_variables
    if n > 24:
        raise ValueError(f"model: exact enumeration needs n <= 24, got {n}")
    states = all_states(n)
    return np.concatenate([model.energy(states[k : k + (1 << 16)]) for k in range(0, 1 << n, 1 << 16)])


def boltzmann_weights(energies: np.ndarray, beta: float) -> np.ndarray:
    """exp(-beta E) normalised, for energies already enumerated (:func:`all_energies`)."""
    if not (math.isfinite(beta) and beta > 0):
        raise ValueError(f"beta: must be finite and > 0, got {beta}")
    w = -beta * (energies - energies.min())
    p = np.exp(w)
    return p / p.sum()


def exact_distribution(model: IsingModel, beta: float) -> np.ndarray:
    """Boltzmann probabilities of all 2^n states (n <= 24) in :func:`state_index` order."""
    if not (math.isfinite(beta) and beta > 0):  # before the enumeration, which may be large
        raise ValueError(f"beta: must be finite and > 0, got {beta}")
    return boltzmann_weights(all_energies(model), beta)


def tv_floor(p: Any, num_samples: int) -> float:
    """Expected TV between the histogram of ``num_samples`` independent draws from ``p``
    and ``p`` itself: (1 / 2N) sum_x E|X_x - N p_x|, X_x ~ Binomial(N, p_x), with de
    Moivre's exact mean absolute deviation 2 v C(N, v) p^v (1 - p)^(N - v + 1), v =
    floor(N p) + 1."""
    p = np.asarray(p, dtype=np.float64)
    N = int(num_samples)
    p = p[(p > 0) & (p < 1)]
    if N <= 0 or p.size == 0:
        return 0.0
    from scipy.special import gammaln

    v = np.floor(N * p) + 1
    log_mad = (
        math.log(2) + np.log(v) + gammaln(N + 1) - gammaln(v + 1) - gammaln(N - v + 1)
        + v * np.log(p) + (N - v + 1) * np.log1p(-p)
    )  # fmt: skip
    mad = np.where(v <= N, np.exp(log_mad), 0.0)
    return float(0.5 * mad.sum() / N)


def _traces(result: Any, spins: np.ndarray, energies: np.ndarray) -> tuple[Any, Any, bool]:
    """(chains, T) energy and magnetisation traces where the result records them, and
    whether the result's rows are those traces (rather than the chains' final states)."""
    info = getattr(result, "info", None) or {}
    et = info.get("energy_trace")
    if et is not None:
        et = np.asarray(et, dtype=np.float64)
        mt = info.get("magnetisation_trace")
        return (et if et.ndim == 2 else et[None, :]), (None if mt is None else np.atleast_2d(mt)), False
    vec = getattr(result, "vectors", None)
    if vec is None and hasattr(result, "record"):  # a SampleSet's extra columns
        names = result.record.dtype.names
        vec = {k: result.record[k] for k in ("read", "sweep", "chain", "step") if k in names}
    vec = vec or {}
    chain = vec.get("read", vec.get("chain"))
    step = vec.get("sweep", vec.get("step"))
    if chain is None or step is None:
        return None, None, False
    chain, step = np.asarray(chain), np.asarray(step)
    ids = np.unique(chain)
    rows = [np.flatnonzero(chain == c) for c in ids]
    T = min(len(r) for r in rows)
    order = [r[np.argsort(step[r], kind="stable")][-T:] for r in rows]
    e = np.stack([energies[o] for o in order])
    m = np.stack([spins[o].mean(axis=1) for o in order])
    return e, m, True


def _as_arrays(result: Any, model: IsingModel | None) -> tuple[np.ndarray, IsingModel]:
    try:
        import dimod
    except ImportError:  # pragma: no cover - dimod is a dependency
        dimod = None
    if dimod is not None and isinstance(model, dimod.BinaryQuadraticModel):
        model = IsingModel.from_bqm(model.spin if model.vartype is dimod.BINARY else model)
    if model is None or not isinstance(model, IsingModel):
        raise TypeError(f"model: expected a qbm IsingModel or a dimod BQM, got {type(model).__name__}")
    if dimod is not None and isinstance(result, dimod.SampleSet):
        ss = result.change_vartype(dimod.SPIN, inplace=False) if result.vartype is dimod.BINARY else result
        pos = {v: k for k, v in enumerate(ss.variables)}
        missing = [v for v in model.labels if v not in pos]
        if missing:
            raise ValueError(f"result: the SampleSet lacks the model's variables {missing[:5]}")
        cols = [pos[v] for v in model.labels]
        spins = np.asarray(ss.record.sample)[:, cols].astype(np.int8)
        occ = np.asarray(ss.record.num_occurrences)
        if np.any(occ != 1):
            spins = np.repeat(spins, occ, axis=0)
        return spins, model
    s = getattr(result, "spins", result)
    spins = np.asarray(s)
    if spins.ndim != 2 or spins.shape[1] != model.num_variables:
        raise ValueError(f"result: expected spins of shape (N, {model.num_variables}), got {spins.shape}")
    if not np.all(np.abs(spins) == 1):
        raise ValueError("result: spins must be -1 or +1")
    return spins.astype(np.int8), model


def certify(
    result: Any,
    model: Any,
    *,
    beta: float | None = None,
    bootstrap: int = 200,
    level: float = 0.95,
    alpha: float = 1e-3,
    max_exact: int = MAX_EXACT,
    min_ess: float = 100.0,
    seed: int = 0,
    reference: Any = None,
    reference_sweeps: int = 1000,
) -> Certificate:
    """Certificate for samples of ``model`` (see the module docs). ``beta``: the target
    inverse temperature, checked against beta_eff's interval and used for the exact TV
    (default: none, and the TV is taken at beta_eff).

    ``reference="pt"`` (or a parallel-tempering sampler instance; for models too large to
    enumerate): parallel tempering at the target
    beta (else beta_eff; 16 replicas from min(0.2, beta / 2), ``reference_sweeps`` sweeps,
    as many reads as samples, at least 64 and at most 512) gives a reference mean energy; the samples fail
    when their mean energy differs from it by more than 4 combined standard errors. It
    catches what local checks cannot: chains stuck in glassy states whose local
    conditionals look like equilibrium. It costs a PT run; when the reference's own
    certificate fails the samples are not certified either (``reference_ok`` False is
    never ``ok``).

    ``question`` says which question the certificate answered: with ``beta``, "are these
    samples Boltzmann at the target beta?"; without, "at what beta are they Boltzmann,
    and are they?". ``ok`` is True only when every check that applied passed."""
    spins, model = _as_arrays(result, model)
    if beta is not None and not (isinstance(beta, (int, float)) and math.isfinite(beta) and beta > 0):
        raise ValueError(f"beta: must be finite and > 0, got {beta!r}")
    if not 0 < level < 1:
        raise ValueError(f"level: must lie in (0, 1), got {level}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: must lie in (0, 1), got {alpha}")
    N, n = spins.shape
    if N < 2:
        raise ValueError(f"result: need at least 2 samples, got {N}")
    energies = model.energy(spins)
    fails: list[str] = []
    cert = Certificate(
        num_samples=N, num_variables=n, target_beta=beta, beta_eff=None, beta_eff_ci=None, tau_int=None,
        ess=None, tau_int_magnetisation=None, ess_magnetisation=None, tv=None, tv_floor=None, tv_threshold=None,
        mean_energy=float(energies.mean()), ok=True, verdict="",
    )  # fmt: skip
    b, ci = fit_beta(spins, model, bootstrap=bootstrap, level=level, seed=seed)
    cert["beta_eff"], cert["beta_eff_ci"] = b, ci
    if beta is not None and not (ci[0] <= beta <= ci[1]) and not math.isnan(ci[0]):
        fails.append(f"beta_eff {b:.4g} [{ci[0]:.4g}, {ci[1]:.4g}] excludes the target beta {beta:.4g}")
    if b is not None and math.isinf(b):
        fails.append(
            "beta_eff is infinite: every spin agrees with its local field in every sample (frozen in local "
            "minima), which no finite temperature produces"
        )
    et, mt, rows_are_trace = _traces(result, spins, energies)
    n_eff = float(N)
    if et is not None and et.shape[1] >= 4:
        T = et.shape[1]
        cert["trace_shape"] = tuple(et.shape)
        cert["tau_int"] = float(np.mean([integrated_autocorrelation_time(row) for row in et]))
        cert["ess"] = effective_sample_size(et)
        if rows_are_trace:  # the samples are the trace itself: they count as ESS samples
            n_eff = min(n_eff, cert["ess"])
        if mt is not None and mt.shape[1] >= 4:
            cert["tau_int_magnetisation"] = float(np.mean([integrated_autocorrelation_time(r) for r in mt]))
            cert["ess_magnetisation"] = effective_sample_size(mt)
        if cert["ess"] < min_ess:
            fails.append(f"energy ESS {cert['ess']:.0f} < {min_ess:.0f} (tau_int {cert['tau_int']:.3g} sweeps)")
        if T < MIN_TAUS * cert["tau_int"]:
            fails.append(f"the chains ran {T} sweeps, fewer than {MIN_TAUS} x tau_int ({cert['tau_int']:.3g})")
    if n <= max_exact:
        tb = beta if beta is not None else b
        if tb is not None and math.isfinite(tb) and tb > 0:
            p = exact_distribution(model, tb)
            q = empirical_distribution(spins)
            cert["tv"] = 0.5 * float(np.abs(p - q).sum())
            m = max(2, int(round(n_eff)))
            cert["tv_floor"] = tv_floor(p, m)
            cert["tv_threshold"] = cert["tv_floor"] + math.sqrt(math.log(1 / alpha) / (2 * m))
            cert["tv_at"] = "target beta" if beta is not None else "beta_eff"
            if cert["tv"] > cert["tv_threshold"]:
                fails.append(
                    f"TV {cert['tv']:.3g} to the exact distribution at {cert['tv_at']} {tb:.4g} exceeds its floor "
                    f"{cert['tv_floor']:.3g} (threshold {cert['tv_threshold']:.3g} for {m} samples)"
                )
    if reference is not None:
        if isinstance(reference, str) and reference != "pt":
            raise ValueError(f"reference: expected None, 'pt' or a parallel-tempering sampler, got {reference!r}")
        tb = beta if beta is not None else b
        if tb is not None and math.isfinite(tb) and tb > 0:
            fails += _reference_check(cert, energies, model, tb, n_eff, reference_sweeps, seed, reference)
    ref_failed = cert.get("reference_ok") is False
    if reference is not None and ref_failed and not any("parallel tempering" in f for f in fails):
        fails.append(
            "the parallel-tempering reference failed its own certificate, so the energy comparison cannot "
            "vouch for these samples (raise reference_sweeps)"
        )
    cert["question"] = _question(beta)
    cert["remedy"] = _remedy(fails, cert) if fails else ""
    cert["ok"] = not fails
    cert["verdict"] = "ok: " + _summary(cert) if not fails else "FAIL: " + "; ".join(fails)
    return cert


def _remedy(fails: list[str], c: dict[str, Any]) -> str:
    """One line: what a failure means for the user's result and what to do about it."""
    text = " ".join(fails)
    if "infinite" in text:
        return (
            "these are local minima (an annealer's or a quench's end states), not thermal samples: use them as "
            "optimisation results, or sample at a finite beta (Gibbs, parallel tempering, a slower anneal)"
        )
    if "tau_int" in text or "ESS" in text:
        need = int(math.ceil(MIN_TAUS * (c.get("tau_int") or 1)))
        return (f"the chains are too short to have forgotten their start: averages over them are biased; run at "
                f"least {need} sweeps (20 x tau_int) or more chains")  # fmt: skip
    if "failed its own certificate" in text:
        return ("the parallel-tempering reference did not equilibrate, so nothing was compared: raise "
                "reference_sweeps (the reference's own certificate says why it failed)")  # fmt: skip
    if "parallel tempering" in text or "reference" in text:
        return ("the samples sit at a different mean energy than an equilibrated reference (stuck in glassy states): "
                "more sweeps, or parallel tempering as the sampler")  # fmt: skip
    if "excludes the target" in text:
        return ("the samples are Boltzmann at another temperature than asked: a gradient or average computed from them "
                "is that of the model at beta_eff; more sweeps for MCMC, or calibrate the energy scale of an "
                "annealer (calibrate_energy_scale, --calibrate-beta)")  # fmt: skip
    return ("the histogram differs from the Boltzmann distribution by more than sampling noise: more sweeps, or a "
            "sampler that mixes better (parallel tempering)")  # fmt: skip


def _question(beta: float | None) -> str:
    """The question a certificate answers: Boltzmann at a given beta, or at some beta."""
    if beta is not None:
        return f"are these samples Boltzmann at the target beta {beta:.4g}?"
    return "at what beta are these samples Boltzmann (beta_eff), and are they Boltzmann there?"


def reference_run(
    model: IsingModel, beta: float, *, num_reads: int, num_sweeps: int, seed: int, sampler: Any = "pt"
) -> Any:
    """Parallel tempering at ``beta`` (16 replicas on a geometric ladder from
    min(0.2, beta / 2)), certified: the classical reference at a given temperature.
    ``sampler``: a parallel-tempering sampler instance, or the name it is registered
    under in the samplers' registry (this module never imports a sampler)."""
    pt = sampler_named(sampler) if isinstance(sampler, str) else sampler
    return pt.sample_model(
        model, beta=beta, beta_min=min(0.2, 0.5 * beta), num_replicas=16, num_reads=int(num_reads),
        num_sweeps=int(num_sweeps), seed=seed, certify=True,
    )  # fmt: skip


def _reference_check(
    cert: dict[str, Any],
    energies: np.ndarray,
    model: IsingModel,
    beta: float,
    n_eff: float,
    sweeps: int,
    seed: int,
    sampler: Any = "pt",
) -> list[str]:
    """Mean energy against parallel tempering's at ``beta`` (see :func:`certify`)."""
    ref = reference_run(
        model, beta, num_reads=int(min(max(len(energies), 64), 512)), num_sweeps=sweeps, seed=seed, sampler=sampler
    )
    e_ref = ref.energies
    se = math.sqrt(float(np.var(energies, ddof=1)) / max(n_eff, 2) + float(np.var(e_ref, ddof=1)) / len(e_ref))
    gap = float(energies.mean() - e_ref.mean())
    rc = ref.info["certificate"]
    cert.update(reference_energy=float(e_ref.mean()), reference_energy_gap=gap, reference_ok=bool(rc["ok"]),
                reference_beta=beta)  # fmt: skip
    if abs(gap) > 4 * se + 1e-12:
        return [
            f"mean energy {float(energies.mean()):.5g} differs from parallel tempering's {float(e_ref.mean()):.5g} at "
            f"beta {beta:.4g} by {gap:+.3g} ({abs(gap) / se:.1f} standard errors)"
            + ("" if rc["ok"] else "; the reference's own certificate fails too")
        ]
    return []


def _summary(c: dict[str, Any]) -> str:
    parts = []
    if c.get("beta_eff") is not None:
        lo, hi = c["beta_eff_ci"]
        parts.append(f"beta_eff {c['beta_eff']:.4g} [{lo:.4g}, {hi:.4g}]")
    if c.get("tau_int") is not None:
        ch, t = c["trace_shape"]
        parts.append(f"tau_int {c['tau_int']:.3g} sweeps, trace ESS {c['ess']:.0f} ({ch} chains x {t})")
    if c.get("tv") is not None:
        parts.append(f"TV {c['tv']:.3g} (floor {c['tv_floor']:.3g})")
    if c.get("reference_energy") is not None:
        parts.append(
            f"mean energy {c['mean_energy']:.5g} vs parallel tempering's {c['reference_energy']:.5g} "
            f"(reference {'ok' if c.get('reference_ok') else 'FAIL'})"
        )
    return ", ".join(parts)


def format_certificate(c: dict[str, Any]) -> str:
    """One line: the question asked, what was measured and, when something fails, what."""
    t = c.get("target_beta")
    asked = f"(Boltzmann at target beta {t:.4g}?)" if t is not None else "(Boltzmann at some beta? beta_eff fitted)"
    verdict = str(c.get("verdict", ""))
    if c.get("ok"):
        return f"{asked} {verdict}"
    # what was measured, less what the failure text already states (one interval per quantity)
    rest = [p for p in _summary(c).split(", ") if p and p.split(" ")[0] not in verdict]
    remedy = f" -> {c['remedy']}" if c.get("remedy") else ""
    return f"{asked} {verdict}" + (f" [{', '.join(rest)}]" if rest else "") + remedy


set_certifier(certify)  # ``sample_model(..., certify=True)`` calls it (see qbm.samplers._base)
