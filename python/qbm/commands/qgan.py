"""`qbm train qgan` and `qbm study capacity`."""

from __future__ import annotations

from qbm.cli_types import positive_float, positive_int, seed_int

import argparse
import os
import sys
from typing import Any

# the largest quantum generator the capacity study accepts (2^20 amplitudes per sample)
MAX_GENERATOR_QUBITS = 20


def _config(args: argparse.Namespace) -> Any:
    from qbm.training.qgan import QGANConfig

    return QGANConfig(
        dataset=args.dataset,
        data_dir=args.data_dir,
        generator=args.generator,
        qubits=args.qubits,
        layers=args.layers,
        latent=args.latent,
        gen_width=args.gen_width,
        gen_depth=args.gen_depth,
        disc_width=args.disc_width,
        disc_depth=args.disc_depth,
        loss=args.loss,
        epochs=args.epochs,
        iters_per_epoch=args.iters,
        seed=getattr(args, "seed", 0),
        lr_g=args.lr_g,
        lr_d=args.lr_d,
    )


def precheck_train_qgan(args: argparse.Namespace) -> None:
    """Checks that need no torch, run before it is imported."""
    from qbm.data import check_dataset
    from qbm.training.rundir import precheck

    precheck(args.out, "checkpoint.pt", resume=args.resume, force=args.force)
    check_dataset(args.dataset, args.data_dir)


def cmd_train_qgan(args: argparse.Namespace) -> int:
    from qbm.data import load_dataset
    from qbm.training.qgan import Shared, train_qgan

    from dataclasses import asdict

    from qbm.training import rundir
    from qbm.checkpoint import load_checkpoint

    from qbm.data import check_dataset

    cfg = _config(args)
    check_dataset(cfg.dataset, cfg.data_dir)
    if rundir.prepare(args.out, "checkpoint.pt", resume=args.resume, force=args.force):
        stored = load_checkpoint(os.path.join(args.out, "checkpoint.pt")).get("config") or {}
        dests = {f: f for f in asdict(cfg)} | {"iters": "iters_per_epoch"}
        rundir.conflicts(
            getattr(args, "explicit", set()) - {"epochs"},
            {d: getattr(args, d) for d in dests if hasattr(args, d)},
            {d: stored.get(f) for d, f in dests.items() if f in stored},
        )
        print(f"resuming {args.out} (continuing to {cfg.epochs} epochs)")
    data = load_dataset(cfg.dataset, cfg.data_dir)
    shared = Shared(
        data,
        cfg.latent,
        seed=cfg.seed,
        ae_epochs=cfg.ae_epochs,
        clf_epochs=cfg.clf_epochs,
        eval_samples=cfg.eval_samples,
        cache=os.path.join(args.out, "shared.pt"),
        progress=not args.quiet,
    )
    print(
        f"autoencoder: test MSE {shared.ae_report['test_mse']:.4f}, FID of reconstructions "
        f"{shared.ae_report['fid_reconstructions']:.2f}; FID classifier accuracy {shared.clf_accuracy:.3f}; "
        f"real-vs-real FID floor {shared.fid_floor:.2f}"
    )
    print("note: FID uses features of a classifier trained on this data set (no Inception weights offline)")
    r = train_qgan(cfg, shared, progress=not args.quiet, out=args.out)
    v = r["verdict"]
    print(
        f"{cfg.generator} generator ({r['generator_params']} params) vs discriminator "
        f"({r['discriminator_params']} params): FID {r['initial_fid']:.2f} -> {r['final_fid']:.2f}; "
        f"tail mean {v.get('tail_mean_fid', float('nan')):.2f}, spread {v.get('tail_rel_spread', float('nan')):.3f}, "
        f"optimal={v.get('optimal')}"
    )
    print(f"wrote {args.out}/metrics.json, samples.png, curves.png")
    return 0


CAPACITY_BUDGETS = {
    # a day on a workstation: 5 quantum capacities, 4 classical widths, 7 disc widths, 5 seeds
    # the paper's per-run budget (30 epochs x 50 iterations, 5 seeds); 8 quantum capacities
    # (24-192 generator parameters) so that 5 uncensored thresholds can decide the fits, and
    # sqrt(2)-spaced discriminator widths
    "paper": {"quantum": ["2x1", "3x1", "4x1", "3x2", "4x2", "5x2", "6x2", "6x3"], "classical": [2, 4, 8],
              "disc_widths": [2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64], "epochs": 30, "iters": 50, "seeds": 5},
    "smoke": {"quantum": ["2x1"], "classical": [2], "disc_widths": [4, 8], "epochs": 3, "iters": 3, "seeds": 2,
              "ae_epochs": 3, "clf_epochs": 2, "eval_samples": 100},
}  # fmt: skip


def cmd_capacity(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from qbm.studies.cli_common import runner_kwargs
    from qbm.studies.capacity import capacity_study

    from qbm.data import check_dataset
    from qbm.studies.runner import check_seeds, check_threads
    from qbm.training.rundir import check_out_dir

    b = CAPACITY_BUDGETS[args.budget]
    explicit = getattr(args, "explicit", set())
    base = _config(args)
    check_dataset(base.dataset, base.data_dir)
    check_out_dir(args.out)
    check_threads(args.threads_per_run, args.workers, args.engine)
    if "epochs" not in explicit:
        base = replace(base, epochs=b["epochs"])
    if "iters" not in explicit:
        base = replace(base, iters_per_epoch=b["iters"])
    for k in ("ae_epochs", "clf_epochs", "eval_samples"):
        if k in b:
            base = replace(base, **{k: b[k]})
    quantum = args.quantum or b["quantum"]
    classical = args.classical or b["classical"]
    widths = args.disc_widths or b["disc_widths"]
    seeds = args.seeds if "seeds" in explicit else list(range(b["seeds"]))
    check_seeds(seeds)  # before anything is made
    try:
        qgrid = [(int(a), int(c)) for a, c in (s.lower().split("x") for s in quantum)]
    except ValueError:
        raise ValueError(f"--quantum: expected QUBITSxLAYERS entries such as 4x2, got {quantum}") from None
    for n, L in qgrid:  # before anything is made: a generator the engine cannot hold is refused here
        if not 1 <= n <= MAX_GENERATOR_QUBITS or L < 1:
            raise ValueError(
                f"--quantum: {n}x{L}: qubits must lie in 1..{MAX_GENERATOR_QUBITS} (the generator's state vector "
                f"holds 2^qubits amplitudes per sample) and layers must be >= 1"
            )
    print(
        f"capacity study on {base.dataset}: quantum {quantum}, classical widths {classical}, discriminator widths "
        f"{widths}, {base.epochs} epochs x {base.iters_per_epoch} iterations, seeds {seeds} -> {args.out}"
    )
    res = capacity_study(
        base,
        quantum_grid=qgrid,
        classical_widths=classical,
        disc_widths=widths,
        seeds=seeds,
        out=args.out,
        runner_kw=runner_kwargs(args),
    )
    c = res["criteria"]
    print(
        f"optimal run: tail ({c['tail_fraction']:.0%} of evaluations) mean FID <= {c['low_factor_vs_best_tail_fid']}x "
        f"the best ({c['best_tail_fid']:.3g}), relative spread <= {c['max_rel_spread']}, no divergence; a point is "
        "optimal when most seeds are"
    )
    print(
        f"secondary (quality only): tail mean FID <= {c['quality_factor_vs_latent_best_point']}x the best point "
        "median with the same latent size, stability not required"
    )
    print(
        f"{'generator':<10} {'capacity':<12} {'gen params':>10} {'optimal disc width':>19} {'disc params':>11} "
        f"{'quality width':>14} {'disc params':>11}"
    )
    for b_ in res["best"]:
        cap = f"{b_['qubits']}q x {b_['layers']}L" if b_["generator"] == "quantum" else f"width {b_['gen_width']}"
        print(
            f"{b_['generator']:<10} {cap:<12} {b_['generator_params']:>10} "
            f"{str(b_['optimal_disc_width']) if not b_.get('censored') else 'above grid':>19} "
            f"{str(b_['optimal_disc_params']):>11} "
            f"{str(b_['quality_disc_width']) if not b_.get('quality_censored') else 'above grid':>14} "
            f"{str(b_['quality_disc_params']):>11}"
        )
    for kind, f in res["fits"].items():
        if f:
            e, p = f["exponential"], f["polynomial"]
            print(
                f"{kind}: exponential b={e['b']:.4g} CI {e.get('b_ci')} R^2 {e['r2']:.3f} AICc {e['aicc']:.2f}; "
                f"power b={p['b']:.3f} CI {p.get('b_ci')} R^2 {p['r2']:.3f} AICc {p['aicc']:.2f} ({e['points']} points)"
            )
    for kind, d in res.get("decisions", {}).items():
        print(f"{kind}, stated rule: {d['verdict']}")
    for kind, d in res.get("quality_decisions", {}).items():
        print(f"{kind}, quality only (secondary): {d['verdict']}")
    print(f"wrote {args.out}/runs.csv, points.csv, capacity.csv, capacity.png, fits.json")
    lost = {k: v for k, v in res.get("failed_generators", {}).items() if v["failed"] == v["runs"]}
    for name, v in res.get("failed_generators", {}).items():
        print(f"{name}: {v['failed']} of {v['runs']} runs failed (first: {v['error']})", file=sys.stderr)
    if lost:
        from qbm.studies.cli_common import StudyFailed

        raise StudyFailed(
            f"every run of {', '.join(lost)} failed, so capacity.csv has no row for it; see {args.out}/runs"
        )
    return 0


def add_parsers(train: Any, study: Any) -> None:
    def common(p: argparse.ArgumentParser, study: bool = False) -> None:
        p.add_argument("--dataset", default="digits", choices=["digits", "sat4", "mnist", "fashion-mnist"])
        p.add_argument("--data-dir", default=None)
        p.add_argument("--generator", default="quantum", choices=["quantum", "classical"])
        p.add_argument("--qubits", type=positive_int, default=4)
        p.add_argument("--layers", type=positive_int, default=2)
        p.add_argument("--latent", type=positive_int, default=8)
        p.add_argument("--gen-width", type=positive_int, default=16)
        p.add_argument("--gen-depth", type=positive_int, default=2)
        p.add_argument("--disc-width", type=positive_int, default=32)
        p.add_argument("--disc-depth", type=positive_int, default=2)
        p.add_argument("--loss", default="wgan-gp", choices=["wgan-gp", "ns"])
        p.add_argument("--epochs", type=positive_int, default=20)
        p.add_argument("--iters", type=positive_int, default=50, help="generator updates per epoch")
        p.add_argument("--lr-g", type=positive_float, default=1e-3)
        p.add_argument("--lr-d", type=positive_float, default=1e-3)
        if not study:  # a study takes --seeds and --quiet from the runner options
            p.add_argument("--seed", type=seed_int, default=0)
            p.add_argument("--quiet", action="store_true")

    p = train.add_parser("qgan", help="train a latent style-based quantum GAN (or a classical GAN)")
    common(p)
    p.add_argument("--out", default="runs/qgan")
    p.add_argument("--resume", action="store_true", help="continue the run in OUT (also to a larger --epochs)")
    p.add_argument("--force", action="store_true", help="start over even if OUT holds a run")
    p.set_defaults(func=cmd_train_qgan, precheck=precheck_train_qgan)

    p = study.add_parser("capacity", help="smallest optimal discriminator vs generator capacity")
    common(p, study=True)
    p.add_argument("--budget", default="paper", choices=list(CAPACITY_BUDGETS))
    p.add_argument("--quantum", nargs="+", default=None, help="QUBITSxLAYERS entries (default: the budget's)")
    p.add_argument("--classical", type=positive_int, nargs="+", default=None)
    p.add_argument("--disc-widths", type=positive_int, nargs="+", default=None)
    p.add_argument("--out", default="runs/capacity")
    from qbm.studies.cli_common import add_runner_options

    add_runner_options(p, seeds=5)
    p.set_defaults(func=cmd_capacity)
