"""`qbm train qgan` and `qbm study capacity`."""

from __future__ import annotations

from qbm.cli_types import positive_float, positive_int, seed_int

import argparse
import os
from typing import Any


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
        seed=args.seed,
        lr_g=args.lr_g,
        lr_d=args.lr_d,
    )


def cmd_train_qgan(args: argparse.Namespace) -> int:
    from qbm.data import load_dataset
    from qbm.training.qgan import Shared, train_qgan

    from dataclasses import asdict

    from qbm.training import rundir
    from qbm.training.checkpoint import load_checkpoint

    cfg = _config(args)
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


def cmd_capacity(args: argparse.Namespace) -> int:
    from qbm.training.qgan import capacity_study

    base = _config(args)
    qgrid = [(int(a), int(b)) for a, b in (s.split("x") for s in args.quantum)]
    res = capacity_study(
        base,
        quantum_grid=qgrid,
        classical_widths=args.classical,
        disc_widths=args.disc_widths,
        out=args.out,
        workers=args.workers,
    )
    print(f"{'generator':<10} {'capacity':<12} {'gen params':>10} {'optimal disc width':>19} {'disc params':>11}")
    for b in res["best"]:
        cap = f"{b['qubits']}q x {b['layers']}L" if b["generator"] == "quantum" else f"width {b['gen_width']}"
        print(
            f"{b['generator']:<10} {cap:<12} {b['generator_params']:>10} {str(b['optimal_disc_width']):>19} "
            f"{str(b['optimal_disc_params']):>11}"
        )
    for kind, f in res["fits"].items():
        if f:
            print(
                f"{kind}: exponential fit R^2 {f['exponential']['r2']:.3f} (rate {f['exponential']['b']:.4g}/param), "
                f"power-law fit R^2 {f['polynomial']['r2']:.3f} (exponent {f['polynomial']['b']:.3f})"
            )
    print(f"wrote {args.out}/runs.csv, capacity.csv, capacity.png, fits.json")
    return 0


def add_parsers(train: Any, study: Any) -> None:
    def common(p: argparse.ArgumentParser) -> None:
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
        p.add_argument("--seed", type=seed_int, default=0)
        p.add_argument("--quiet", action="store_true")

    p = train.add_parser("qgan", help="train a latent style-based quantum GAN (or a classical GAN)")
    common(p)
    p.add_argument("--out", default="runs/qgan")
    p.add_argument("--resume", action="store_true", help="continue the run in OUT (also to a larger --epochs)")
    p.add_argument("--force", action="store_true", help="start over even if OUT holds a run")
    p.set_defaults(func=cmd_train_qgan)

    p = study.add_parser("capacity", help="smallest optimal discriminator vs generator capacity")
    common(p)
    p.add_argument("--quantum", nargs="+", default=["2x1", "3x1", "4x1", "4x2"], help="QUBITSxLAYERS entries")
    p.add_argument("--classical", type=positive_int, nargs="+", default=[2, 4, 8])
    p.add_argument("--disc-widths", type=positive_int, nargs="+", default=[2, 4, 8, 16, 32, 64])
    p.add_argument("--workers", type=positive_int, default=None)
    p.add_argument("--out", default="runs/capacity")
    p.set_defaults(func=cmd_capacity)
