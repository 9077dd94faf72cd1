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
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

H_MAX, J_MAX = 4.0, 1.0  # Advantage2's programmable ranges: |h| <= 4, |J| <= 1

DEFAULT_TIMES_US = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0]
DEFAULT_MODELS = ["zephyr:1,1", "zephyr:2,2"]


def build_model(spec: str, instance: int = 0) -> Any:
    """'zephyr:M,T' -> a spin glass on Z(M, T) (instance seed); 'prior:PATH' -> the prior
    of a BM-VAE checkpoint at beta = 1."""
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
    raise ValueError(f"models: expected 'zephyr:M,T' or 'prior:PATH', got {spec!r}")


def programmed_scale(model: Any) -> float:
    """The factor a QPU's auto-scaling applies: 1 / max(max|J| / 1, max|h| / 4)."""
    jmax = float(np.abs(model.J.data).max()) if model.num_interactions else 0.0
    hmax = float(np.abs(model.h).max()) if model.num_variables else 0.0
    m = max(jmax / J_MAX, hmax / H_MAX)
    return 1.0 / m if m > 0 else 1.0


def dqa_run(config: dict[str, Any], seed: int) -> dict[str, Any]:
    """One (model, anneal time, seed) of the study (a run of the study runner)."""
    import time

    from qbm.diagnostics import MAX_EXACT, certify, empirical_distribution, exact_distribution, reference_run
    from qbm.ising import IsingModel
    from qbm.samplers import GibbsSampler, SQASampler
    from qbm.samplers.schedule import advantage2_schedule

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


def dqa_configs(models: list[str], times: list[float], **common: Any) -> list[dict[str, Any]]:
    return [{"model": m, "anneal_time_us": float(t), **common} for m in models for t in times]


METRICS = ["beta_eff", "beta_ratio", "beta_final", "tv", "tv_floor", "kl", "gibbs_tv", "pt_tv", "energy_per_spin",
           "gibbs_energy_per_spin", "pt_energy_per_spin", "num_sweeps", "seconds"]  # fmt: skip


def summarise_runs(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (model, anneal time): mean and 95% t interval over seeds of every metric that
    all of its runs have."""
    from qbm.studies.runner import summarise

    ok = [r for r in recs if r["status"] == "ok"]
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
    for ax, yl in zip(axes, ["beta_eff (programmed units)", "TV to Boltzmann at beta_eff", "energy per spin"]):
        ax.set_xscale("log")
        ax.set_xlabel("anneal time (us)")
        ax.set_ylabel(yl)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def cmd_dqa(args: Any) -> int:
    from qbm.samplers.schedule import advantage2_schedule, anneal_sweeps, beta_per_ghz
    from qbm.studies import cli_common
    from qbm.studies.runner import Study, grid, write_csv

    models = list(args.models or DEFAULT_MODELS)
    if args.prior:
        models.append(f"prior:{os.path.abspath(args.prior)}")
    for m in models:  # fail before any run: a bad spec or checkpoint names itself here
        build_model(m, args.instance)
    sched = advantage2_schedule(args.schedule)
    times = args.anneal_times or DEFAULT_TIMES_US
    for t in times:
        anneal_sweeps(t, sweeps_per_us=args.sweeps_per_us)
    t_mk = sched.temperature(args.temperature_mk)
    common = {
        "temperature_mk": t_mk, "sweeps_per_us": args.sweeps_per_us, "slices": args.slices, "reads": args.reads,
        "gibbs_sweeps": args.gibbs_sweeps, "instance": args.instance,
        "schedule": os.path.abspath(args.schedule) if args.schedule else None,
    }  # fmt: skip
    study = Study("dqa", "qbm.studies.dqa:dqa_run", grid(dqa_configs(models, times, **common), args.seeds))
    print(
        f"DQA effective temperature: models {models}, anneal times {times} us "
        f"({args.sweeps_per_us:g} sweeps/us), schedule {sched.name} {sched.version}, {t_mk:g} mK "
        f"(beta {beta_per_ghz(t_mk):.3f}/GHz), P={args.slices}, {args.reads} reads, seeds {args.seeds} "
        f"({len(study.runs)} runs) -> {args.out}"
    )
    if "NOT D-Wave" in sched.source:
        print("note: the packaged schedule is a generic stand-in, not D-Wave's published table (--schedule CSV)")
    recs = cli_common.run(study, args)
    rows = summarise_runs(recs)
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
    print(f"wrote {args.out}/dqa.csv and dqa.png")
    return 0


def add_parser(study: Any) -> None:
    from qbm.cli_types import nonneg_int, positive_float, positive_int
    from qbm.studies.cli_common import add_runner_options

    p = study.add_parser("dqa", help="the QPU stand-in's effective temperature and Boltzmann-ness vs anneal time")
    p.add_argument("--models", nargs="+", default=None, help="zephyr:M,T entries (default: zephyr:1,1 zephyr:2,2)")
    p.add_argument("--prior", default=None, help="a BM-VAE checkpoint whose prior is added to the models")
    p.add_argument("--instance", type=nonneg_int, default=0, help="spin-glass instance seed")
    p.add_argument("--anneal-times", type=positive_float, nargs="+", default=None,
                   help=f"microseconds (default {DEFAULT_TIMES_US})")  # fmt: skip
    p.add_argument("--sweeps-per-us", type=positive_float, default=100.0, help="the anneal time -> sweeps rule")
    p.add_argument("--schedule", default=None, help="A(s), B(s) table (CSV, D-Wave's headers); default: packaged")
    p.add_argument("--temperature-mk", type=positive_float, default=None, help="default: the schedule's (16 mK)")
    p.add_argument("--slices", type=positive_int, default=16, help="Trotter slices P")
    p.add_argument("--reads", type=positive_int, default=1000, help="anneals per (model, time, seed)")
    p.add_argument("--gibbs-sweeps", type=positive_int, default=1000, help="sweeps of the Gibbs and PT baselines")
    p.add_argument("--out", default="runs/dqa")
    add_runner_options(p, seeds=5)
    p.set_defaults(func=cmd_dqa)
