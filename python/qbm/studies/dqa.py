"""`qbm study dqa`: how Boltzmann are the QPU stand-in's samples, and at which effective
temperature, as the anneal goes from fast (diabatic) to slow?

For each model (Zephyr spin glasses, and a trained BM-VAE prior when one is given) and
each anneal time, every run programs the model as a QPU would (scaled so that
max(|J|, |h| / 4) = 1, Advantage2's ranges), anneals it with path-integral SQA on the
device schedule (A(s), B(s) in GHz at the device temperature; anneal time -> sweeps by
the rule of :mod:`qbm.samplers.schedule`), and certifies the samples
(:func:`qbm.diagnostics.certify`): beta_eff by maximum pseudo-likelihood with a bootstrap
interval, in the programmed units; where the model is small enough to enumerate
(n <= 20), the TV and KL distances from the Boltzmann distribution at that beta_eff.
Beside it, the classical baselines at the fitted beta_eff with the same number of samples:
Gibbs chains, and parallel tempering (16 replicas from min(0.2, beta_eff / 2)), the
reference where single-spin Gibbs cannot equilibrate; each with its TV and certificate, so
"as Boltzmann as a classical sampler at the same temperature" is a measured statement.
Energies per spin of all three are recorded.

The prior's row also gives ``beta_ratio`` = beta_eff x scale: 1 when the device samples
the prior at the temperature it was trained at (beta = 1), the quantity a QPU-trained
BM-VAE needs.

``--dynamics exact`` (or ``both``) runs the closed-system anneal itself
(:class:`qbm.samplers.SchrodingerAnnealer`: the Schrödinger equation of H(t) = -A/2 sum X +
B/2 H_p on 2^n amplitudes, no temperature, no Monte Carlo) on the same programmed model and
schedule. One evolution per (model, anneal time); every seed draws its own ``reads`` from
the final |psi|^2 and is certified as above, so the intervals over seeds are sampling
intervals (the dynamics are deterministic). Beside the sampled TV, the noise-free numbers of
the output distribution p = |psi|^2 itself: its TV and KL to the Boltzmann distribution at
the seeds' mean beta_eff, the smallest TV to any Boltzmann distribution (and the beta that
attains it), the ground-state probability and the mean energy; and the linear-quench
prediction :func:`linear_quench_beta`.

The linear-quench prediction (derived here; the same statement as Gyhm, Kim, Kwon, Baek,
arXiv:2409.18126, that a fast quench gives a high-temperature Boltzmann distribution to
lowest order): expanding U(T)|+>^n to second order (Dyson series), with a = A/2, b = B/2,
|<z|U|+>|^2 = 2^-n [1 - 8 pi^2 Lambda (E_J(z) + E_h(z) / 2) + O(Lambda^2)],
Lambda = int_0^T dt1 A(t1) int_0^t1 dt2 B(t2) (GHz^2 ns^2, h = 1), E_J and E_h the coupling
and field parts of the programmed energy. So to first order p is Boltzmann in the
couplings at beta_pred = 8 pi^2 Lambda (fields at half that weight). It is a statement
about beta_pred << 1: the study reports where beta_eff leaves it.
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any

import numpy as np


DEFAULT_TIMES_US = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0]
DEFAULT_MODELS = ["zephyr:1,1", "zephyr:2,2"]


def build_model(spec: str, instance: int = 0) -> Any:
    """'zephyr:M,T' -> a spin glass on Z(M, T) (instance seed); 'glass:N' -> a spin glass on
    N connected Zephyr spins (:func:`qbm.models.prior.zephyr_edges`); 'prior:PATH' -> the
    prior of a BM-VAE checkpoint at beta = 1."""
    kind, _, rest = spec.partition(":")
    if kind == "zephyr":
        from qbm.problems import zephyr_spin_glass

        try:
            parts = [int(v) for v in rest.split(",")]
        except ValueError:
            raise ValueError(f"models: expected 'zephyr:M,T', got {spec!r}") from None
        if not 1 <= len(parts) <= 2 or min(parts) < 1:
            raise ValueError(f"models: expected 'zephyr:M,T' with M, T >= 1, got {spec!r}")
        return zephyr_spin_glass(parts[0], parts[1] if len(parts) > 1 else 4, seed=instance)
    if kind == "glass":
        import networkx as nx

        from qbm.models.prior import zephyr_edges
        from qbm.problems import spin_glass

        try:
            n = int(rest)
        except ValueError:
            raise ValueError(f"models: expected 'glass:N' (N Zephyr spins), got {spec!r}") from None
        if n < 2:
            raise ValueError(f"models: expected 'glass:N' with N >= 2, got {spec!r}")
        g = nx.Graph()
        g.add_nodes_from(range(n))
        g.add_edges_from(zephyr_edges(n))
        return spin_glass(g, seed=instance)
    if kind == "prior":
        from qbm.models.vae import BMVAE
        from qbm.checkpoint import load_checkpoint
        from qbm.training.vae import build_model as build_vae

        ck = load_checkpoint(rest)
        vae = build_vae(ck["kind"], ck["config"])
        if not isinstance(vae, BMVAE):
            raise ValueError(f"models: {rest!r} is a {type(vae).__name__}, not a BM-VAE (it has no Ising prior)")
        vae.load_state_dict(ck["model_state"])
        return vae.prior.to_ising()
    raise ValueError(f"models: expected 'zephyr:M,T', 'glass:N' or 'prior:PATH', got {spec!r}")


def programmed_scale(model: Any) -> float:
    """The factor a QPU's auto-scaling applies (:func:`qbm.qpu.sampler.max_energy_scale`;
    1 for a model with nothing to scale)."""
    from qbm.qpu.sampler import max_energy_scale

    s = max_energy_scale(model)
    return s if math.isfinite(s) else 1.0


def dqa_run(config: dict[str, Any], seed: int) -> dict[str, Any]:
    """One (model, anneal time, seed) of the study (a run of the study runner)."""
    import time

    from qbm.diagnostics import MAX_EXACT, certify, empirical_distribution, exact_distribution, reference_run
    from qbm.ising import IsingModel
    from qbm.samplers import GibbsSampler, SQASampler
    from qbm.samplers.schedule import advantage2_schedule

    if config.get("dynamics") == "exact":
        return exact_run(config, seed)
    t0 = time.perf_counter()
    model = build_model(config["model"], config.get("instance", 0))
    scale = programmed_scale(model)
    prog = IsingModel(model.h * scale, model.J * scale)
    sched = advantage2_schedule(config.get("schedule"))
    res = SQASampler().sample_model(
        prog,
        schedule=sched,
        temperature_mk=config["temperature_mk"],
        anneal_time_us=config["anneal_time_us"],
        sweeps_per_us=config["sweeps_per_us"],
        num_trotter_slices=config["slices"],
        num_reads=config["reads"],
        seed=seed,
    )
    n = prog.num_variables
    cert = certify(res, prog, bootstrap=config.get("bootstrap", 200), seed=seed)
    out: dict[str, Any] = {
        "num_variables": n,
        "scale": scale,
        "num_sweeps": res.info["num_sweeps"],
        "beta_final": res.info["beta_final"],
        "schedule": res.info["schedule"]["name"] + " " + res.info["schedule"]["version"],
        "beta_eff": cert["beta_eff"],
        "beta_eff_lo": cert["beta_eff_ci"][0],
        "beta_eff_hi": cert["beta_eff_ci"][1],
        "beta_ratio": cert["beta_eff"] * scale,
        "energy_per_spin": float(np.mean(res.energies)) / n,
        "energy_sd_per_spin": float(np.std(res.energies)) / n,
        "min_energy_per_spin": float(np.min(res.energies)) / n,
    }
    b = cert["beta_eff"]
    if math.isfinite(b) and b > 0:
        g = GibbsSampler().sample_model(
            prog, beta=b, num_reads=config["reads"], num_sweeps=config["gibbs_sweeps"], seed=seed, certify=True
        )
        gc = g.info["certificate"]
        out.update(
            gibbs_energy_per_spin=float(np.mean(g.energies)) / n,
            gibbs_ok=bool(gc["ok"]),
            gibbs_tau_int=gc["tau_int"],
        )
        # parallel tempering at the same beta: the reference where single-spin Gibbs is stuck
        pt = reference_run(prog, b, num_reads=config["reads"], num_sweeps=config["gibbs_sweeps"], seed=seed)
        pc = pt.info["certificate"]
        out.update(pt_energy_per_spin=float(np.mean(pt.energies)) / n, pt_ok=bool(pc["ok"]))
        if n <= MAX_EXACT:  # both baselines' certificates hold their TV to the exact distribution at b
            q = empirical_distribution(res.spins)
            p = exact_distribution(prog, b)
            nz = q > 0
            out.update(
                tv=cert["tv"],
                tv_floor=cert["tv_floor"],
                kl=float(np.sum(q[nz] * np.log(q[nz] / np.maximum(p[nz], 1e-300)))),
                gibbs_tv=gc["tv"],
                pt_tv=pc["tv"],
            )
    out["seconds"] = time.perf_counter() - t0
    return out


def linear_quench_beta(table: Any, anneal_time_us: float, points: int = 20001) -> float:
    """beta_pred = 8 pi^2 int_0^T A(t1) int_0^t1 B(t2) dt2 dt1 for a linear forward anneal of
    ``anneal_time_us`` on ``table`` (A, B in GHz, t in ns): the inverse temperature, in the
    programmed units, of the first-order (fast-quench) output distribution (module docs)."""
    t_ns = float(anneal_time_us) * 1e3
    t = np.linspace(0.0, t_ns, points)
    a, b = table(t / t_ns)
    cum_b = np.concatenate([[0.0], np.cumsum(0.5 * (b[1:] + b[:-1]) * np.diff(t))])
    f = a * cum_b
    return float(8 * np.pi**2 * np.sum(0.5 * (f[1:] + f[:-1]) * np.diff(t)))


def exact_run(config: dict[str, Any], seed: int) -> dict[str, Any]:
    """One (model, anneal time) of the exact-dynamics arm: one Schrödinger anneal, then
    ``config["reads"]`` reads per seed of ``config["read_seeds"]``, each certified."""
    import time

    from qbm import _core
    from qbm.diagnostics import all_energies, boltzmann_weights, certify
    from qbm.ising import IsingModel
    from qbm.samplers import SchrodingerAnnealer
    from qbm.samplers._base import SampleResult
    from qbm.samplers.schedule import advantage2_schedule
    from qbm.samplers.schrodinger import index_spins

    t0 = time.perf_counter()
    model = build_model(config["model"], config.get("instance", 0))
    scale = programmed_scale(model)
    prog = IsingModel(model.h * scale, model.J * scale)
    table = advantage2_schedule(config.get("schedule"))
    t_us = config["anneal_time_us"]
    res = SchrodingerAnnealer().sample_model(prog, anneal_time_us=t_us, schedule=table, num_reads=1, seed=seed,
                                             return_state=True, progress=False, num_threads=1)  # fmt: skip
    n = prog.num_variables
    z = res.info["state"]
    psi = np.ascontiguousarray(np.stack([z.real, z.imag]))
    p = res.info["probabilities"][::-1]  # the core's index (bit 0 = +1) -> diagnostics' (bit 1 = +1)
    per_seed = []
    for k in config["read_seeds"]:
        spins = index_spins(_core.draw_states(psi, config["reads"], int(k)), n)
        cert = certify(SampleResult(spins, prog.energy(spins), {}), prog, bootstrap=config.get("bootstrap", 200),
                       seed=int(k))  # fmt: skip
        per_seed.append(cert)
    betas = np.array([c["beta_eff"] for c in per_seed])
    finite = betas[np.isfinite(betas) & (betas > 0)]
    out: dict[str, Any] = {
        "num_variables": n,
        "scale": scale,
        "steps": res.info["steps"],
        "tv_error_estimate": res.info["tv_error_estimate"],
        "beta_pred": linear_quench_beta(table, t_us),
        "ground_state_probability": res.info["ground_state_probability"],
        "energy_per_spin": (res.info["mean_energy"]) / n,
        "seeds_beta_eff": [float(b) for b in betas],
        "seeds_beta_lo": [float(c["beta_eff_ci"][0]) for c in per_seed],
        "seeds_beta_hi": [float(c["beta_eff_ci"][1]) for c in per_seed],
        "seeds_tv": [float(c["tv"]) if c.get("tv") is not None else math.nan for c in per_seed],
        "seeds_tv_floor": [float(c["tv_floor"]) if c.get("tv_floor") is not None else math.nan for c in per_seed],
        "seeds_ok": [bool(c["ok"]) for c in per_seed],
    }
    if finite.size:
        b = float(np.mean(finite))
        e = all_energies(prog)  # enumerated once for the 62 Boltzmann laws below
        q = boltzmann_weights(e, b)
        nz = p > 0
        out.update(tv_exact=0.5 * float(np.abs(p - q).sum()),
                   kl_exact=float(np.sum(p[nz] * np.log(p[nz] / np.maximum(q[nz], 1e-300)))))  # fmt: skip
        grid = b * np.exp(np.linspace(-1.5, 1.5, 61))
        tvs = [0.5 * float(np.abs(p - boltzmann_weights(e, g)).sum()) for g in grid]
        j = int(np.argmin(tvs))
        out.update(tv_exact_best=tvs[j], beta_exact_best=float(grid[j]))
    if config.get("trace"):
        from qbm.samplers.schrodinger import anneal_trace

        # where the dynamics freeze: the gap of H(s) and the state's overlap with its ground state
        out["trace"] = anneal_trace(prog, anneal_time_us=t_us, schedule=table, points=config.get("trace_points", 21),
                                    steps=int(res.info["steps"]), num_threads=1)  # fmt: skip
    out["seconds"] = time.perf_counter() - t0
    return out


def plot_freeze(path: str, recs: list[dict[str, Any]], title: str) -> None:
    """Along the anneal (s): the gap E_1 - E_0 of H(s) per model (left, log scale; the same
    for every anneal time) and the evolved state's overlap with the instantaneous ground
    space per (model, anneal time) (right): where the overlap leaves 1 the dynamics stop
    following the ground state, near the gap's minimum for slow anneals, at once for fast
    ones."""
    from qbm.plotting import _plt

    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    traced = sorted(
        [r for r in recs if r["status"] == "ok" and r["result"].get("trace")],
        key=lambda r: (r["result"]["num_variables"], r["config"]["model"], r["config"]["anneal_time_us"]),
    )
    models = list(dict.fromkeys(r["config"]["model"] for r in traced))
    styles = ["-", "--", ":", "-."]
    for i, m in enumerate(models):
        sel = [r for r in traced if r["config"]["model"] == m]
        name = "prior" if m.startswith("prior") else m
        tr = sel[0]["result"]["trace"]
        axes[0].plot([p["s"] for p in tr], [p["gap"] for p in tr], "o-", color=f"C{i}", ms=3,
                     label=f"{name} (n={sel[0]['result']['num_variables']})")  # fmt: skip
        for j, r in enumerate(sel):
            tr = r["result"]["trace"]
            axes[1].plot([p["s"] for p in tr], [p["ground_overlap"] for p in tr], styles[j % 4], color=f"C{i}",
                         label=f"{name}, {r['config']['anneal_time_us'] * 1e3:g} ns")  # fmt: skip
    axes[0].set_yscale("log")
    labels = ["gap E1 - E0 of H(s) (GHz)", "|<ground(s)|psi(t)>|^2"]
    _finish(plt, fig, axes, labels, title, path, xlabel="s", xlog=False)


def exact_rows(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (model, anneal time) of the exact arm: the seeds' mean beta_eff with a 95% t
    interval, the sampled TV and its floor (means over seeds), how many seeds' certificates
    passed, and the noise-free numbers of |psi|^2."""
    from qbm.studies.runner import summarise

    rows = []
    for r in recs:
        if r["status"] != "ok" or r["config"].get("dynamics") != "exact":
            continue
        x = r["result"]
        sb = summarise([float(v) for v in x["seeds_beta_eff"]], (0.0, None))
        row = {"dynamics": "exact", "model": r["config"]["model"], "anneal_time_us": r["config"]["anneal_time_us"],
               "num_variables": x["num_variables"], "scale": x["scale"], "seeds": len(x["seeds_beta_eff"]),
               "beta_eff_mean": sb["mean"], "beta_eff_ci_lo": sb["ci_lo"], "beta_eff_ci_hi": sb["ci_hi"],
               "beta_eff_n_inf": sb["n_inf"],
               "tv_mean": _nanmean(x["seeds_tv"]), "tv_floor_mean": _nanmean(x["seeds_tv_floor"]),
               "ok_fraction": float(np.mean(x["seeds_ok"]))}  # fmt: skip
        for k in ("beta_pred", "tv_exact", "kl_exact", "tv_exact_best", "beta_exact_best", "ground_state_probability",
                  "energy_per_spin", "steps", "tv_error_estimate", "seconds"):  # fmt: skip
            row[k] = x.get(k, math.nan)
        row["beta_ratio_mean"] = row["beta_eff_mean"] * x["scale"]
        rows.append(row)
    return sorted(rows, key=lambda r: (r["num_variables"], r["model"], r["anneal_time_us"]))


def _nanmean(v: list[float]) -> float:
    a = np.asarray(v, dtype=float)
    return float(np.mean(a[np.isfinite(a)])) if np.any(np.isfinite(a)) else math.nan


def exact_verdicts(rows: list[dict[str, Any]], tv_tol: float = 0.05) -> list[str]:
    """Per model: the anneal times at which every seed's reads are Boltzmann within the floor
    (certificate ok), or the time with the lowest TV / floor when none is; the times at
    which |psi|^2 itself is within ``tv_tol`` of a Boltzmann distribution (noise-free),
    with the beta there; where the output is the ground state (P >= 0.99); and the times at
    which the linear-quench beta_pred lies inside beta_eff's interval."""
    out = []
    for m in sorted({r["model"] for r in rows}, key=lambda m: min(r["num_variables"] for r in rows if r["model"] == m)):
        sel = [r for r in rows if r["model"] == m]
        name = "prior" if m.startswith("prior") else m
        ok = [r["anneal_time_us"] for r in sel if r["ok_fraction"] == 1.0]
        if ok:
            v = f"{name}: reads Boltzmann within the floor (every seed) at t = {', '.join(f'{t:g}' for t in ok)} us"
        else:
            fin = [r for r in sel if math.isfinite(r["tv_mean"]) and r["tv_floor_mean"] > 0]
            best = min(fin, key=lambda r: r["tv_mean"] / r["tv_floor_mean"]) if fin else None
            v = f"{name}: reads Boltzmann within the floor at no anneal time"
            if best:
                ratio = best["tv_mean"] / best["tv_floor_mean"]
                v += f" (lowest TV / floor {ratio:.2f} at t = {best['anneal_time_us']:g} us)"
        near = [r for r in sel if r["tv_exact_best"] <= tv_tol and r["ground_state_probability"] < 0.99]
        v += ("; |psi|^2 within TV " + f"{tv_tol:g} of a Boltzmann distribution at "
              + ", ".join(f"t = {r['anneal_time_us']:g} us (beta {r['beta_exact_best']:.2g})" for r in near)
              if near else f"; |psi|^2 within TV {tv_tol:g} of a Boltzmann distribution at no anneal time "
              "short of the ground state")  # fmt: skip
        gs = [r["anneal_time_us"] for r in sel if r["ground_state_probability"] >= 0.99]
        if gs:
            v += f"; the ground state (P >= 0.99) from t = {min(gs):g} us"
        follows = [r["anneal_time_us"] for r in sel
                   if r["beta_eff_ci_lo"] <= r["beta_pred"] <= r["beta_eff_ci_hi"]]  # fmt: skip
        v += ("; beta_eff agrees with the linear-quench beta_pred (inside its 95% interval) at t = "
              + ", ".join(f"{t:g}" for t in follows) + " us" if follows
              else "; beta_eff agrees with the linear-quench beta_pred at no anneal time")  # fmt: skip
        out.append(v)
    return out


def exact_budget(configs: list[dict[str, Any]]) -> float:
    """Rough seconds of the exact arm on one core: steps ~ 100 per ns per (n / 8) (measured
    on the packaged schedule), a doubling ladder costing about twice the final step count,
    0.4 ns per amplitude-qubit per step."""
    total = 0.0
    for c in configs:
        n = build_model(c["model"], c.get("instance", 0)).num_variables
        steps = max(1024.0, 100.0 * c["anneal_time_us"] * 1e3 * n / 8)
        total += 2.0 * steps * (1 << n) * n * 0.4e-9
    return total


def dqa_configs(models: list[str], times: list[float], **common: Any) -> list[dict[str, Any]]:
    return [{"model": m, "anneal_time_us": float(t), **common} for m in models for t in times]


METRICS = ["beta_eff", "beta_ratio", "beta_final", "tv", "tv_floor", "kl", "gibbs_tv", "pt_tv", "energy_per_spin",
           "gibbs_energy_per_spin", "pt_energy_per_spin", "num_sweeps", "seconds"]  # fmt: skip


def summarise_runs(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (model, anneal time): mean and 95% t interval over seeds of every metric that
    all of its runs have."""
    from qbm.studies.runner import summarise

    ok = [r for r in recs if r["status"] == "ok"]
    ok = [r for r in ok if r["config"].get("dynamics", "sqa") == "sqa"]
    keys = sorted({(r["config"]["model"], r["config"]["anneal_time_us"]) for r in ok})
    rows = []
    for m, t in keys:
        sel = [r["result"] for r in ok if r["config"]["model"] == m and r["config"]["anneal_time_us"] == t]
        row: dict[str, Any] = {"model": m, "anneal_time_us": t, "seeds": len(sel),
                               "num_variables": sel[0]["num_variables"], "scale": sel[0]["scale"]}  # fmt: skip
        for k in METRICS:
            v = [s.get(k) for s in sel]
            if any(x is None for x in v):
                continue
            # over the finite seeds; seeds at inf (beta_eff of frozen samples) are counted apart
            # and seeds at nan (a TV at an infinite beta_eff) are left out, never poisoning the row
            s = summarise([float(x) for x in v], None if "energy" in k else (0.0, None))  # energies may be < 0
            row[f"{k}_mean"], row[f"{k}_ci_lo"], row[f"{k}_ci_hi"] = s["mean"], s["ci_lo"], s["ci_hi"]
            row[f"{k}_median"], row[f"{k}_n"], row[f"{k}_n_inf"] = s["median"], s["n"], s["n_inf"]
        row["gibbs_ok_fraction"] = float(np.mean([bool(s.get("gibbs_ok")) for s in sel]))
        row["pt_ok_fraction"] = float(np.mean([bool(s.get("pt_ok")) for s in sel]))
        rows.append(row)
    return rows


def plot(path: str, rows: list[dict[str, Any]], title: str) -> None:
    """Three panels against anneal time (log): beta_eff (programmed units, mean and 95%
    interval over seeds); TV from Boltzmann at beta_eff, SQA vs Gibbs at the same beta
    and the sampling floor (enumerable models); energy per spin, SQA vs Gibbs at beta_eff."""
    from qbm.plotting import _plt

    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    models = sorted({r["model"] for r in rows})

    def series(ax: Any, m: str, k: str, colour: str, style: str, label: str) -> None:
        sel = [r for r in rows if r["model"] == m and math.isfinite(r.get(f"{k}_mean", math.nan))]
        if not sel:
            return
        x = np.array([r["anneal_time_us"] for r in sel])
        y = np.array([r[f"{k}_mean"] for r in sel])
        lo = np.array([r.get(f"{k}_ci_lo", v) for r, v in zip(sel, y)])
        hi = np.array([r.get(f"{k}_ci_hi", v) for r, v in zip(sel, y)])
        ax.errorbar(x, y, yerr=[np.maximum(y - lo, 0), np.maximum(hi - y, 0)], fmt=style, color=colour,
                    capsize=2, ms=4, label=label)  # fmt: skip

    def at_infinity(ax: Any, m: str, colour: str) -> None:
        """Cells whose beta_eff is infinite (every sample at a local minimum) as ^ on top."""
        x = [r["anneal_time_us"] for r in rows if r["model"] == m and r.get("beta_eff_n_inf", 0) > 0]
        if x:
            top = ax.get_ylim()[1]
            ax.plot(x, [top] * len(x), "^", color=colour, ms=7, clip_on=False,
                    label="beta_eff = inf in a seed (all samples at local minima)")  # fmt: skip

    for i, m in enumerate(models):
        c = f"C{i}"
        n = next(r["num_variables"] for r in rows if r["model"] == m)
        name = f"{m.split(':')[0] if m.startswith('prior') else m} (n={n})"
        series(axes[0], m, "beta_eff", c, "o-", name)
        axes[0].set_yscale("log")
        at_infinity(axes[0], m, c)
        series(axes[1], m, "tv", c, "o-", f"{name}: SQA")
        series(axes[1], m, "gibbs_tv", c, "s--", f"{name}: Gibbs at beta_eff")
        series(axes[1], m, "pt_tv", c, "d-.", f"{name}: parallel tempering at beta_eff")
        series(axes[1], m, "tv_floor", c, ":", f"{name}: sampling floor")
        series(axes[2], m, "energy_per_spin", c, "o-", f"{name}: SQA")
        series(axes[2], m, "gibbs_energy_per_spin", c, "s--", f"{name}: Gibbs at beta_eff")
        series(axes[2], m, "pt_energy_per_spin", c, "d-.", f"{name}: PT at beta_eff")
    _finish(plt, fig, axes, ["beta_eff (programmed units)", "TV to Boltzmann at beta_eff", "energy per spin"],
            title, path)  # fmt: skip


def _finish(plt: Any, fig: Any, axes: Any, labels: list[str], title: str, path: str,
            xlabel: str = "anneal time (us)", xlog: bool = True) -> None:  # fmt: skip
    """Axes labels (x log by default) and legends, the title, and the PNG."""
    for ax, yl in zip(axes, labels):
        if xlog:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(yl)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_exact(path: str, exact: list[dict[str, Any]], sqa: list[dict[str, Any]], title: str) -> None:
    """Exact dynamics against anneal time, one colour per model. Left: beta_eff (mean and
    95% interval over read seeds; ^ at the top: seeds at beta_eff = inf, every read in the
    ground state), the linear-quench beta_pred (dotted, drawn up to 10x the largest
    finite beta_eff) and SQA's beta_eff (squares). Middle: the noise-free TV of |psi|^2 to
    its best-fitting Boltzmann distribution (solid), the reads' TV at beta_eff (circles)
    beside its sampling floor (dotted), SQA's reads (squares). Right: energy per spin
    (exact, SQA) and the ground-state probability (x)."""
    from qbm.plotting import _plt

    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    models = sorted(
        {r["model"] for r in exact}, key=lambda m: next(r["num_variables"] for r in exact if r["model"] == m)
    )
    finite = [r["beta_eff_mean"] for r in exact if math.isfinite(r["beta_eff_mean"])]
    top = 10 * max(finite) if finite else 100.0
    for i, m in enumerate(models):
        c = f"C{i}"
        sel = [r for r in exact if r["model"] == m]
        n = sel[0]["num_variables"]
        name = "prior" if m.startswith("prior") else m
        x = np.array([r["anneal_time_us"] for r in sel])
        y = np.array([r["beta_eff_mean"] for r in sel])
        lo = np.array([r["beta_eff_ci_lo"] for r in sel])
        hi = np.array([r["beta_eff_ci_hi"] for r in sel])
        good = np.isfinite(y) & np.isfinite(lo) & np.isfinite(hi)
        axes[0].errorbar(x[good], y[good], yerr=[np.maximum(y - lo, 0)[good], np.maximum(hi - y, 0)[good]], fmt="o-",
                         color=c, capsize=2, ms=4, label=f"{name} (n={n}) exact")  # fmt: skip
        inf = [r["anneal_time_us"] for r in sel if r.get("beta_eff_n_inf")]
        if inf:
            axes[0].plot(inf, [top] * len(inf), "^", color=c, ms=6, clip_on=False)
        pred = [(r["anneal_time_us"], r["beta_pred"]) for r in sel if r["beta_pred"] <= top]
        if pred:
            axes[0].plot(*zip(*pred), ":", color=c, label=f"{name} beta_pred (linear quench)")
        q = [r for r in sqa if r["model"] == m and math.isfinite(r.get("beta_eff_mean", math.nan))]
        if q:
            axes[0].plot([r["anneal_time_us"] for r in q], [r["beta_eff_mean"] for r in q], "s--", color=c, ms=3,
                         alpha=0.5, label=f"{name} SQA")  # fmt: skip
            axes[1].plot([r["anneal_time_us"] for r in q if "tv_mean" in r],
                         [r["tv_mean"] for r in q if "tv_mean" in r], "s--", color=c, ms=3, alpha=0.5)  # fmt: skip
            axes[2].plot([r["anneal_time_us"] for r in q], [r["energy_per_spin_mean"] for r in q], "s--", color=c,
                         ms=3, alpha=0.5)  # fmt: skip
        axes[1].plot(x, [r["tv_exact_best"] for r in sel], "-", color=c, lw=2, label=f"{name} |psi|^2, best beta")
        axes[1].plot(x, [r["tv_mean"] for r in sel], "o", color=c, ms=4, alpha=0.7)
        axes[1].plot(x, [r["tv_floor_mean"] for r in sel], ":", color=c)
        axes[2].plot(x, [r["energy_per_spin"] for r in sel], "o-", color=c, ms=4, label=f"{name} E/n exact")
        axes[2].plot(x, [r["ground_state_probability"] for r in sel], "x:", color=c, ms=5)
    axes[0].set_yscale("log")
    axes[0].set_ylim(top=top)
    axes[1].plot([], [], "ko", ms=4, label="reads at beta_eff (exact)")
    axes[1].plot([], [], "k:", label="sampling floor")
    axes[1].plot([], [], "ks--", ms=3, label="SQA reads")
    axes[2].plot([], [], "kx:", label="P(ground state), exact")
    axes[2].plot([], [], "ks--", ms=3, label="E/n SQA")
    labels = ["beta_eff (programmed units)", "TV to Boltzmann", "E/n (programmed units); P(ground)"]
    _finish(plt, fig, axes, labels, title, path)


EXACT_MODELS = ["glass:8", "glass:12", "glass:16", "glass:20"]
EXACT_TIMES_US = [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0]
#: anneal times (us) whose runs also trace the gap and the ground-state overlap along s
TRACE_TIMES_US = (0.001, 0.01, 0.1)


def exact_time_cap(n: int) -> float:
    """The longest anneal simulated exactly by default: 10 us up to 12 spins, 1 us at 16,
    0.3 us at 20 (the cost grows as 2^n n t)."""
    return 10.0 if n <= 12 else 1.0 if n <= 16 else 0.3 if n <= 20 else 0.03


def cmd_dqa(args: Any) -> int:
    from qbm.samplers.schedule import advantage2_schedule, anneal_sweeps, beta_per_ghz
    from qbm.studies import cli_common
    from qbm.studies.runner import Study, grid, write_csv

    dyn = args.dynamics
    models = list(args.models or (EXACT_MODELS if dyn != "sqa" else DEFAULT_MODELS))
    if args.prior:
        models.append(f"prior:{os.path.abspath(args.prior)}")
    sizes = {m: build_model(m, args.instance).num_variables for m in models}  # fail before any run
    sched = advantage2_schedule(args.schedule)
    times = args.anneal_times or (EXACT_TIMES_US if dyn != "sqa" else DEFAULT_TIMES_US)
    for t in times:
        anneal_sweeps(t, sweeps_per_us=args.sweeps_per_us)
    t_mk = sched.temperature(args.temperature_mk)
    common = {
        "temperature_mk": t_mk, "sweeps_per_us": args.sweeps_per_us, "slices": args.slices, "reads": args.reads,
        "gibbs_sweeps": args.gibbs_sweeps, "instance": args.instance,
        "schedule": os.path.abspath(args.schedule) if args.schedule else None,
    }  # fmt: skip
    runs = []
    if dyn in ("sqa", "both"):
        runs += grid([{**c, "dynamics": "sqa"} for c in dqa_configs(models, times, **common)], args.seeds)
    exact_cfgs = []
    if dyn in ("exact", "both"):
        for m in models:
            if sizes[m] > 24:
                raise ValueError(f"models: {m} has {sizes[m]} spins; exact dynamics runs up to 24 (2^n amplitudes)")
            cap = args.exact_max_time if args.exact_max_time else exact_time_cap(sizes[m])
            exact_cfgs += [{"model": m, "anneal_time_us": float(t), "dynamics": "exact", "read_seeds": list(args.seeds),
                            # only traced cells carry the key: the others keep the configs (and records) they had
                            **({"trace": True} if any(abs(t - x) < 1e-12 for x in args.trace_times) else {}),
                            **common}
                           for t in times if t <= cap * (1 + 1e-9)]  # fmt: skip
        runs += grid(exact_cfgs, [args.seeds[0]])
    study = Study("dqa", "qbm.studies.dqa:dqa_run", runs)
    print(
        f"DQA effective temperature ({dyn} dynamics): models {models}, anneal times {times} us "
        f"({args.sweeps_per_us:g} sweeps/us for SQA), schedule {sched.name} {sched.version}, {t_mk:g} mK "
        f"(beta {beta_per_ghz(t_mk):.3f}/GHz), P={args.slices}, {args.reads} reads, seeds {args.seeds} "
        f"({len(study.runs)} runs) -> {args.out}"
    )
    if exact_cfgs:
        b = exact_budget(exact_cfgs)
        caps = ", ".join(f"{m} up to {max(c['anneal_time_us'] for c in exact_cfgs if c['model'] == m):g} us"
                         for m in models if any(c["model"] == m for c in exact_cfgs))  # fmt: skip
        print(f"exact dynamics: {len(exact_cfgs)} anneals ({caps}); budget about {b / 3600:.2f} core-hours "
              f"(one evolution per cell, {len(args.seeds)} read seeds each)")  # fmt: skip
    if "NOT D-Wave" in sched.source:
        print("note: the packaged schedule is a generic stand-in, not D-Wave's published table (--schedule CSV)")
    # the exact arm's runs carry all read seeds in one run: warn on the seeds given, not on the runs
    recs = cli_common.run(study, args, intervals=dyn != "exact")
    if dyn == "exact" and len(args.seeds) < 3:
        from qbm.studies.runner import few_seeds_warning

        print(few_seeds_warning(len(args.seeds)), file=sys.stderr)
    rows = summarise_runs(recs)
    erows = exact_rows(recs)
    if any(r["status"] == "ok" and r["result"].get("trace") for r in recs):
        what = f"exact anneals on {sched.name} {sched.version}: where the dynamics leave the ground state"
        plot_freeze(os.path.join(args.out, "dqa_freeze.png"), recs, what)
    if erows:
        write_csv(os.path.join(args.out, "dqa_exact.csv"), erows)
        plot_exact(
            os.path.join(args.out, "dqa_exact.png"), erows, rows,
            f"exact (Schrödinger) anneals on {sched.name} {sched.version}, programmed units; {args.reads} reads x "
            f"{len(args.seeds)} seeds per cell (95% t interval); SQA at {t_mk:g} mK, P={args.slices} beside",
        )  # fmt: skip
    if not rows:
        _print_exact(erows)
        traced = ", dqa_freeze.png" if os.path.exists(os.path.join(args.out, "dqa_freeze.png")) else ""
        print(f"wrote {args.out}/dqa_exact.csv{traced} and dqa_exact.png")
        return 0
    write_csv(os.path.join(args.out, "dqa.csv"), rows)
    plot(
        os.path.join(args.out, "dqa.png"),
        rows,
        f"SQA stand-in on {sched.name} {sched.version} at {t_mk:g} mK, P={args.slices}, {args.reads} reads, "
        f"{args.sweeps_per_us:g} sweeps/us; mean and 95% t interval over the seeds with finite values "
        f"({len(args.seeds)} seeds; ^: seeds at beta_eff = inf)",
    )

    def f(r: dict[str, Any], k: str, fmt: str = ".3g") -> str:
        if f"{k}_mean" not in r:
            return "-"
        m = r[f"{k}_mean"]
        inf = f" +{r[f'{k}_n_inf']} inf" if r.get(f"{k}_n_inf") else ""  # seeds at inf, counted apart
        if not math.isfinite(m) or f"{k}_ci_lo" not in r or not math.isfinite(r[f"{k}_ci_lo"]):
            return f"{m:{fmt}}{inf}"
        return f"{m:{fmt}} [{r[f'{k}_ci_lo']:{fmt}}, {r[f'{k}_ci_hi']:{fmt}}]{inf}"

    print(f"{'model':<14} {'t (us)':>7} {'sweeps':>6}  {'beta_eff':<24} {'TV at beta_eff':<24} {'Gibbs TV':<22} "
          f"{'PT TV':<22} {'E/n SQA':>8} {'E/n Gibbs':>9} {'E/n PT':>8}")  # fmt: skip
    for r in rows:
        name = "prior" if r["model"].startswith("prior") else r["model"]
        print(
            f"{name:<14} {r['anneal_time_us']:>7g} {r.get('num_sweeps_mean', 0):>6.0f}  {f(r, 'beta_eff'):<24} "
            f"{f(r, 'tv'):<24} {f(r, 'gibbs_tv'):<22} {f(r, 'pt_tv'):<22} "
            f"{r.get('energy_per_spin_mean', math.nan):>8.4f} {r.get('gibbs_energy_per_spin_mean', math.nan):>9.4f} "
            f"{r.get('pt_energy_per_spin_mean', math.nan):>8.4f}"
        )
        if r["model"].startswith("prior"):
            print(f"{'':<14} {'':>7} {'':>6}  beta_eff x scale = {f(r, 'beta_ratio')} (1 = the prior's own beta)")
    if erows:
        _print_exact(erows)
        traced = ", dqa_freeze.png" if os.path.exists(os.path.join(args.out, "dqa_freeze.png")) else ""
        print(f"wrote {args.out}/dqa.csv, dqa.png, dqa_exact.csv{traced} and dqa_exact.png")
    else:
        print(f"wrote {args.out}/dqa.csv and dqa.png")
    return 0


def _print_exact(erows: list[dict[str, Any]]) -> None:
    print("\nexact dynamics (Schrödinger): beta_eff over read seeds, TV of the reads and its floor; noise-free TV of "
          "|psi|^2 at beta_eff and at its best beta")  # fmt: skip
    print(f"{'model':<10} {'t (us)':>7} {'steps':>7} {'beta_eff [95%]':<26} {'beta_pred':>9} {'TV':>6} {'floor':>6} "
          f"{'ok':>4} {'TV|psi|':>7} {'best':>6} {'@beta':>6} {'P(gs)':>6} {'E/n':>7}")  # fmt: skip
    for r in erows:
        name = "prior" if r["model"].startswith("prior") else r["model"]
        be = f"{r['beta_eff_mean']:.3g} [{r['beta_eff_ci_lo']:.3g}, {r['beta_eff_ci_hi']:.3g}]"
        if r.get("beta_eff_n_inf"):
            be = f"inf in {r['beta_eff_n_inf']} seeds" if not math.isfinite(r["beta_eff_mean"]) else be + " +inf"
        print(f"{name:<10} {r['anneal_time_us']:>7g} {r['steps']:>7.0f} {be:<26} {r['beta_pred']:>9.3g} "
              f"{r['tv_mean']:>6.3f} {r['tv_floor_mean']:>6.3f} {r['ok_fraction']:>4.1f} {r['tv_exact']:>7.3f} "
              f"{r['tv_exact_best']:>6.3f} {r['beta_exact_best']:>6.3g} {r['ground_state_probability']:>6.3f} "
              f"{r['energy_per_spin']:>7.3f}")  # fmt: skip
    print("verdict (exact dynamics):")
    for v in exact_verdicts(erows):
        print("  " + v)


def add_parser(study: Any) -> None:
    from qbm.cli_types import nonneg_int, positive_float, positive_int
    from qbm.studies.cli_common import add_runner_options

    p = study.add_parser("dqa", help="the QPU stand-in's effective temperature and Boltzmann-ness vs anneal time")
    p.add_argument(
        "--dynamics",
        choices=("exact", "sqa", "both"),
        default="both",
        help="exact: Schrödinger anneals of the closed system; sqa: path-integral Monte Carlo (default both)",
    )
    p.add_argument(
        "--models",
        nargs="+",
        default=None,
        help="zephyr:M,T or glass:N entries (default: glass:8 glass:12 glass:16 glass:20 with exact "
        "dynamics, zephyr:1,1 zephyr:2,2 with --dynamics sqa)",
    )
    p.add_argument(
        "--exact-max-time",
        type=positive_float,
        default=None,
        help="longest anneal (us) simulated exactly (default: 10 up to 12 spins, 1 at 16, 0.3 at 20)",
    )
    p.add_argument(
        "--trace-times",
        type=positive_float,
        nargs="*",
        default=list(TRACE_TIMES_US),
        help=f"anneal times (us) whose exact runs also trace the gap and ground-state overlap along s "
        f"(default {list(TRACE_TIMES_US)}; none: give the flag alone)",
    )
    p.add_argument("--prior", default=None, help="a BM-VAE checkpoint whose prior is added to the models")
    p.add_argument("--instance", type=nonneg_int, default=0, help="spin-glass instance seed")
    p.add_argument(
        "--anneal-times",
        type=positive_float,
        nargs="+",
        default=None,
        help=f"microseconds (default {EXACT_TIMES_US}; {DEFAULT_TIMES_US} with --dynamics sqa)",
    )
    p.add_argument("--sweeps-per-us", type=positive_float, default=100.0, help="the anneal time -> sweeps rule")
    p.add_argument("--schedule", default=None, help="A(s), B(s) table (CSV, D-Wave's headers); default: packaged")
    p.add_argument("--temperature-mk", type=positive_float, default=None, help="default: the schedule's (16 mK)")
    p.add_argument("--slices", type=positive_int, default=16, help="Trotter slices P")
    p.add_argument("--reads", type=positive_int, default=1000, help="anneals per (model, time, seed)")
    p.add_argument("--gibbs-sweeps", type=positive_int, default=1000, help="sweeps of the Gibbs and PT baselines")
    p.add_argument("--out", default="runs/dqa")
    add_runner_options(p, seeds=5)
    p.set_defaults(func=cmd_dqa)
