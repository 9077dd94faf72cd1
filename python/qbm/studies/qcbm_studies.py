"""`qbm study mmd-variance`, `qbm study kl-vs-mmd` and `qbm train qcbm`."""

from __future__ import annotations

from qbm.cli_types import int_range, positive_int, seed_int, shots_int

import argparse
import csv
import json
import os
from typing import Any

import numpy as np

from qbm.plotting import _plt, save_curves


def resolve_target(spec: str, n: int) -> np.ndarray:
    """'bas' (bars and stripes on a near-square grid), 'ghz', 'cardinality',
    'sparse[:K]', 'showers' (the Grindhammer-Peters stand-in for the CLIC showers,
    :mod:`qbm.data.showers`) or 'calo:PATH' (binarised calorimeter showers from a file)."""
    from qbm.data import bars_and_stripes, cardinality, ghz, random_sparse

    if spec == "bas":
        r = int(np.floor(np.sqrt(n)))
        while n % r:
            r -= 1
        return bars_and_stripes(r, n // r)
    if spec == "ghz":
        return ghz(n)
    if spec == "cardinality":
        return cardinality(n)
    if spec.startswith("sparse"):
        k = int(spec.split(":")[1]) if ":" in spec else max(2, n)
        return random_sparse(n, k, seed=0)
    if spec == "showers":
        from qbm.data.showers import shower_distribution as stand_in

        return stand_in(n)
    if spec.startswith("calo:"):
        from qbm.data.calorimeter import shower_distribution

        return shower_distribution(spec[5:], n)
    raise ValueError(
        f"--target: unknown target {spec!r}; choose bas, ghz, cardinality, sparse[:K], showers or calo:PATH"
    )


def target_label(spec: str) -> str:
    """The target's name in outputs; the shower stand-in says it is one."""
    return "showers (GP stand-in)" if spec == "showers" else spec


def mmd_variance_run(config: dict[str, Any], seed: int) -> dict[str, Any]:
    """Numerical MMD loss / gradient variance at one (n, sigma) (a run of the study runner)."""
    from qbm.studies.mmd_variance import numerical_variance

    n = int(config["n"])
    sigma = n / 4 if config["sigma"] == "n/4" else float(config["sigma"])
    return numerical_variance(n, sigma, config["target"], samples=int(config["samples"]), seed=seed)


def cmd_mmd_variance(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from qbm.studies.mmd_variance import closed_form_variance

    ns = sorted(
        set(
            [n for n in (2, 4, 6, 8, 10, 12, 16, 24, 32, 48, 64, 100, 150, 200, 300, 500, 700, 1000) if n <= args.n_max]
        )
    )
    from qbm.studies import cli_common
    from qbm.studies.runner import Study, grid

    labels = ("1", "10", "n/4")
    # the numerics (Monte Carlo over Haar-random circuits) are runs of the study runner:
    # resumable, spread over workers or Ray; the closed form is evaluated here
    configs = [
        {"n": n, "sigma": label, "target": args.target, "samples": args.samples}
        for n in ns
        if n <= args.numeric_max
        for label in labels
    ]
    study = Study("mmd-variance", "qbm.studies.qcbm_studies:mmd_variance_run", grid(configs, [args.seed]))
    recs = cli_common.run(study, args, intervals=False)
    numeric = {(r["config"]["n"], r["config"]["sigma"]): r["result"] for r in recs if r["status"] == "ok"}
    rows: list[dict[str, Any]] = []
    for n in tqdm(ns, desc="closed form", disable=args.quiet):
        for label in labels:
            sigma = n / 4 if label == "n/4" else float(label)
            row: dict[str, Any] = {
                "n": n,
                "sigma": label,
                "sigma_value": sigma,
                "closed_form": closed_form_variance(n, sigma, args.target),
            }
            row.update(numeric.get((n, label), {}))
            rows.append(row)
    path = os.path.join(args.out, "mmd_variance.csv")
    keys = ["n", "sigma", "sigma_value", "closed_form", "loss_var", "loss_var_se", "grad_var", "grad_var_se"]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in keys})
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for label, colour in (("1", "C0"), ("10", "C1"), ("n/4", "C2")):
        sel = [r for r in rows if r["sigma"] == label]
        ax.plot(
            [r["n"] for r in sel],
            [max(r["closed_form"], 1e-300) for r in sel],
            color=colour,
            label=f"closed form, sigma={label}",
        )
        num = [r for r in sel if "loss_var" in r]
        ax.errorbar(
            [r["n"] for r in num],
            [r["loss_var"] for r in num],
            yerr=[2 * r["loss_var_se"] for r in num],
            fmt="o",
            color=colour,
            ms=4,
            label=f"numeric loss var, sigma={label}",
        )
        ax.plot(
            [r["n"] for r in num],
            [r["grad_var"] for r in num],
            "x",
            color=colour,
            label=f"numeric d/dtheta var, sigma={label}",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(bottom=1e-40)
    ax.set_xlabel("qubits n")
    ax.set_ylabel("variance over Haar-random product circuits")
    ax.set_title(f"MMD loss variance, target {args.target}")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "mmd_variance.png"), dpi=120)
    plt.close(fig)
    for label in ("1", "n/4"):
        sel = [r for r in rows if r["sigma"] == label]
        print(
            f"sigma={label}: " + ", ".join(f"n={r['n']}: {r['closed_form']:.3g}" for r in sel[:: max(1, len(sel) // 6)])
        )
    print(f"wrote {path} and mmd_variance.png")
    return 0


BUDGETS = {
    # Rudolph et al.: n in 4, 9, 12, 16; shots 1e2..1e4; Adam, lr max(0.01 e^-0.005t, 1e-5)
    "paper": {"n": [4, 9, 12, 16], "shots": [100, 1000, 10000], "steps": 1000, "seeds": 5},
    "smoke": {"n": [4], "shots": [100, 1000], "steps": 20, "seeds": 2},
}


def kl_vs_mmd_run(config: dict[str, Any], seed: int) -> dict[str, Any]:
    """One QCBM training of the KL-vs-MMD study (a run of the study runner)."""
    from qbm.models import QCBM, train_qcbm

    n = int(config["n"])
    target = resolve_target(config["target"], n)
    model = QCBM(n, ansatz="line", layers=int(config["layers"]), seed=seed)
    h = train_qcbm(
        model, target, loss=config["loss"], steps=int(config["steps"]), shots=config["shots"], seed=seed, progress=False
    )
    tvd = [float(v) for v in h["tvd"]]
    stride = max(1, len(tvd) // 50)
    return {
        "final_tvd": tvd[-1],
        "best_tvd": min(tvd),
        "tvd_curve": tvd[::stride],
        "curve_stride": stride,
        "seconds": float(h["seconds"]),
    }


def shots_plot(path: str, rows: list[dict[str, Any]], ylabel: str, title: str) -> None:
    """Final TVD against shots, one line per loss, one panel per n (aggregated rows)."""
    from qbm.studies.runner import errorbar_plot

    errorbar_plot(
        path,
        rows,
        x="shots",
        metric="final_tvd",
        series="loss",
        panels="n",
        xlog=True,
        xlabel="shots per estimate",
        ylabel=ylabel,
        title=title,
    )


def _check_targets(spec: str, ns: list[int]) -> None:
    for n in ns:
        resolve_target(spec, n)


def cmd_kl_vs_mmd(args: argparse.Namespace) -> int:
    from qbm.studies import cli_common
    from qbm.studies.runner import Study, aggregate, grid, write_csv

    b = BUDGETS[args.budget]
    ns = args.n or b["n"]
    shots = args.shots or b["shots"]
    steps = args.steps or b["steps"]
    seeds = args.seeds if "seeds" in getattr(args, "explicit", set()) else list(range(b["seeds"]))
    configs = [
        {"n": n, "shots": s, "loss": loss, "steps": steps, "layers": args.layers, "target": args.target}
        for n in ns
        for s in shots
        for loss in args.losses
    ]
    study = Study(
        "kl-vs-mmd",
        "qbm.studies.qcbm_studies:kl_vs_mmd_run",
        grid(configs, seeds),
        {"budget": args.budget},
        preflight=lambda: _check_targets(args.target, ns),
    )
    print(
        f"KL vs MMD vs local fidelity: n {ns}, shots {shots}, {steps} steps, seeds {seeds}, "
        f"target {target_label(args.target)} "
        f"({len(study.runs)} runs, engine {args.engine}) -> {args.out}"
    )
    recs = cli_common.run(study, args)
    rows = aggregate(
        recs,
        ["n", "shots", "loss"],
        ["final_tvd", "best_tvd", "seconds"],
        bounds={"final_tvd": (0.0, 1.0), "best_tvd": (0.0, 1.0), "seconds": (0.0, None)},
    )
    path = os.path.join(args.out, "kl_vs_mmd.csv")
    write_csv(path, rows)
    shots_plot(
        os.path.join(args.out, "kl_vs_mmd.png"),
        rows,
        "final TVD (mean, 95% CI over seeds)",
        f"target {target_label(args.target)}",
    )
    for r in rows:
        print(
            f"n={r['n']:>2} shots={r['shots']:>6} {r['loss']:<8} final TVD {r['final_tvd_mean']:.3f} "
            f"[{r['final_tvd_ci_lo']:.3f}, {r['final_tvd_ci_hi']:.3f}] over {r['seeds']} seeds"
        )
    print(f"wrote {path} and kl_vs_mmd.png")
    return 0


def cmd_train_qcbm(args: argparse.Namespace) -> int:
    from qbm.models import QCBM, train_qcbm
    from qbm.training.rundir import check_out_dir

    check_out_dir(args.out)
    target = resolve_target(args.target, args.n)  # checked before the directory is made
    done = os.path.join(args.out, "metrics.json")
    if os.path.exists(done) and not args.force:
        raise ValueError(
            f"--out: {args.out!r} already holds a finished QCBM run (metrics.json); pass --force to replace it "
            "or choose another --out"
        )
    os.makedirs(args.out, exist_ok=True)
    model = QCBM(args.n, ansatz=args.ansatz, layers=args.layers, seed=args.seed)
    h = train_qcbm(
        model,
        target,
        loss=args.loss,
        steps=args.steps,
        shots=args.shots,
        seed=args.seed,
        progress=not args.quiet,
        precision=args.precision,
    )
    metrics = {
        "n": args.n,
        "target": target_label(args.target),
        "loss_name": args.loss,
        "shots": args.shots,
        "precision": args.precision,
        "ansatz": args.ansatz,
        "layers": args.layers,
        "num_params": model.circuit.num_params,
        **h,
    }
    from qbm._atomic import write_bytes_atomic

    write_bytes_atomic(done, json.dumps(metrics).encode(), suffix=".json")
    save_curves(
        os.path.join(args.out, "curves.png"),
        {"loss": h["loss"], "TVD (exact)": h["tvd"]},
        ylabel="value",
        logy=True,
        title=f"QCBM n={args.n}, {args.loss}, "
        + ("exact gradients" if args.shots is None else f"{args.shots} shots ({args.precision})")
        + f", target {target_label(args.target)}",
    )
    print(f"final TVD {h['final_tvd']:.4f} after {args.steps} steps ({h['seconds']:.1f} s); wrote {args.out}")
    return 0


def add_parsers(study: Any, train: Any) -> None:
    p = study.add_parser("mmd-variance", help="MMD loss variance vs n: closed form (B + 4C) and numerics")
    p.add_argument("--n-max", type=positive_int, default=1000)
    p.add_argument("--numeric-max", type=positive_int, default=10)
    p.add_argument("--samples", type=positive_int, default=2000)
    p.add_argument("--target", default="ghz", choices=["ghz", "point"])
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--out", default="runs/mmd-variance")
    from qbm.studies.cli_common import add_runner_options

    add_runner_options(p, seeds=1)
    p.set_defaults(func=cmd_mmd_variance)

    p = study.add_parser("kl-vs-mmd", help="train QCBMs with KL, MMD and local fidelity at finite shots")
    p.add_argument("--budget", default="paper", choices=list(BUDGETS), help="paper: the paper's grid; smoke: 1 min")
    p.add_argument("--n", type=int_range(1, 24), nargs="+", default=None, help="qubits (default: the budget's)")
    p.add_argument("--shots", type=shots_int, nargs="+", default=None)
    p.add_argument("--losses", nargs="+", default=["kl", "mmd", "fidelity"], choices=["kl", "mmd", "fidelity"])
    p.add_argument(
        "--target", default="bas", help="bas | ghz | cardinality | sparse[:K] | showers (GP stand-in) | calo:PATH"
    )
    p.add_argument("--steps", type=positive_int, default=None)
    p.add_argument("--layers", type=positive_int, default=2)
    p.add_argument("--out", default="runs/kl-vs-mmd")
    from qbm.studies.cli_common import add_runner_options

    add_runner_options(p, seeds=5)
    p.set_defaults(func=cmd_kl_vs_mmd)

    p = train.add_parser("qcbm", help="train a quantum circuit Born machine")
    p.add_argument("--n", type=int_range(1, 24), default=4)
    p.add_argument("--target", default="bas")
    p.add_argument("--loss", default="mmd", choices=["mmd", "kl", "fidelity"])
    p.add_argument("--shots", type=shots_int, default=None)
    p.add_argument("--steps", type=positive_int, default=300)
    p.add_argument("--ansatz", default="line", choices=["product", "line", "all_to_all"])
    p.add_argument("--layers", type=positive_int, default=4)
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument(
        "--precision",
        default="f64",
        choices=["f64", "f32"],
        help="amplitudes of the shot gradient's circuits (f32: faster from about 16 qubits; needs --shots)",
    )
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--force", action="store_true", help="replace a finished run in --out")
    p.add_argument("--out", default="runs/qcbm")
    p.set_defaults(func=cmd_train_qcbm)
