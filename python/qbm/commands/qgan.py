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


#: the calibration's budget: the paper's per-run budget (30 epochs x 50 generator steps), or a
#: smoke test of the machinery (minutes)
CALIBRATION_BUDGETS = {
    "paper": {"epochs": 30, "iters": 50},
    "smoke": {"epochs": 6, "iters": 3, "ae_epochs": 3, "clf_epochs": 2, "eval_samples": 100},
}
#: the study's generators: quantum generators whose latent matches 4-10 qubits (z readout:
#: latent = qubits) and three classical generator widths at latent 6
STUDY_GENERATORS = {"quantum": ["4x1", "4x2", "5x2", "6x2", "7x2", "8x2", "10x2"], "classical": [2, 4, 8],
                    "classical_latent": 6}  # fmt: skip


def _qgrid(quantum: list[str]) -> list[tuple[int, int]]:
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
    return qgrid


def cmd_capacity_calibrate(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from qbm.data import check_dataset
    from qbm.studies.capacity import capacity_calibrate, packaged_rule
    from qbm.studies.cli_common import runner_kwargs
    from qbm.studies.runner import check_seeds, check_threads
    from qbm.training.rundir import check_out_dir

    b = CALIBRATION_BUDGETS[args.budget]
    explicit = getattr(args, "explicit", set())
    base = _config(args)
    check_dataset(base.dataset, base.data_dir)
    check_out_dir(args.out)
    check_threads(args.threads_per_run, args.workers, args.engine)
    base = replace(base, epochs=args.epochs if "epochs" in explicit else b["epochs"],
                   iters_per_epoch=args.iters if "iters" in explicit else b["iters"],
                   **{k: b[k] for k in ("ae_epochs", "clf_epochs", "eval_samples") if k in b})  # fmt: skip
    seeds = check_seeds(args.seeds)
    ((n, L),) = _qgrid([args.quantum])
    print(f"capacity calibration on {base.dataset}: quantum {n}x{L}, discriminator width {args.disc_width}, "
          f"{base.epochs} epochs x {base.iters_per_epoch} iterations, seeds {seeds}, Adam beta2 0.9 and 0.999 "
          f"-> {args.out}")  # fmt: skip
    rule = capacity_calibrate(base, generator=(n, L), disc_width=args.disc_width, seeds=seeds, out=args.out,
                              runner_kw=runner_kwargs(args))  # fmt: skip
    c = rule["calibration"]
    print(f"beta2 {rule['adam_beta2']} (median tail EMA FID by beta2 {c['median_tail_fid_ema_by_beta2']}); weights "
          f"{rule['weights']} (median tail sd {c['median_tail_sd_by_weights']})")  # fmt: skip
    print(f"FID sampling noise at {rule['budget']['tail_fid_samples']} samples: sd {c['fid_noise_sd_generated']:.3g} "
          f"over fresh generated sets, {c['fid_noise_sd_real_bootstrap']:.3g} over resampled real sets")  # fmt: skip
    print(f"rule: the last {rule['tail_evaluations']} large FIDs; stable: sd <= {rule['spread_bound']:.3g} "
          f"(95th percentile of {len(c['tail_sds'])} seeds); low: mean <= {rule['low_factor']:.3g} x the "
          f"reconstruction FID ({c['fid_recon_big']:.3g} at latent {n})")  # fmt: skip
    print(f"wrote {args.out}/rule.json and calibration.png; commit the rule to a git repository before the study "
          f"and pass it as --rule (the study refuses an uncommitted rule; qbm's own rules are packaged as "
          f"{os.path.basename(packaged_rule(base.dataset))})")  # fmt: skip
    return 0


def cmd_capacity(args: argparse.Namespace) -> int:
    from qbm.data import check_dataset
    from qbm.studies.capacity import capacity_study, load_rule, packaged_rule
    from qbm.studies.cli_common import runner_kwargs
    from qbm.studies.runner import check_threads, default_workers
    from qbm.training.rundir import check_out_dir

    explicit = getattr(args, "explicit", set())
    fixed = sorted(explicit & {"epochs", "iters", "lr_g", "lr_d", "loss", "seeds"})
    if fixed:
        raise ValueError(f"--{fixed[0].replace('_', '-')}: the committed rule fixes the budget and the seeds "
                         "(see rule.json); calibrate again for another")  # fmt: skip
    base = _config(args)
    check_dataset(base.dataset, base.data_dir)
    check_out_dir(args.out)
    check_threads(args.threads_per_run, args.workers, args.engine)
    qgrid = _qgrid(args.quantum or STUDY_GENERATORS["quantum"])
    rule, prov = load_rule(args.rule or packaged_rule(base.dataset))
    if rule["dataset"] != base.dataset:
        raise ValueError(f"--rule: the rule was calibrated on {rule['dataset']}, not {base.dataset}")
    classical = args.classical or STUDY_GENERATORS["classical"]
    latent = args.classical_latent or STUDY_GENERATORS["classical_latent"]
    s = rule["search"]
    per_gen = len(s["coarse"]) * len(s["coarse_seeds"]) + 2 * (len(s["full_seeds"]) - len(s["coarse_seeds"])) \
        + 2 * len(s["full_seeds"])
    n_runs = per_gen * (len(qgrid) + len(classical))
    secs = rule["calibration"].get("run_seconds_median", float("nan"))
    workers = args.workers or default_workers(args.threads_per_run)
    print(f"capacity study on {base.dataset} under rule {prov['path']} (blob {prov['blob'][:12]}, "
          f"{'commit ' + prov['commit'][:12] if prov['commit'] else prov['source']})")  # fmt: skip
    print(f"budget: {len(qgrid)} quantum + {len(classical)} classical generators, about {per_gen} runs each "
          f"(coarse {len(s['coarse'])} widths x {len(s['coarse_seeds'])} seeds, then top-ups and bisection): "
          f"{n_runs} runs x {secs:.0f} s (the calibration's median run, which measured both weights' large FID "
          f"over half the epochs; a study run measures the rule's tail only, 0.6x on MNIST) = at most about "
          f"{n_runs * secs / 3600:.1f} core-hours, {n_runs * secs / 3600 / workers:.1f} h on {workers} workers; "
          "resumable")  # fmt: skip
    res = capacity_study(base, rule=rule, provenance=prov, quantum_grid=qgrid, classical_widths=classical,
                         classical_latent=latent, out=args.out, runner_kw=runner_kwargs(args))  # fmt: skip
    print(f"rule: last {rule['tail_evaluations']} large FIDs ({rule['weights']} weights), sd <= "
          f"{rule['spread_bound']:.3g}, mean <= {rule['low_factor']:.3g} x reconstruction FID; {res['runs']} runs in "
          f"{res['rounds']} rounds")  # fmt: skip
    print(f"{'generator':<10} {'capacity':<12} {'gen params':>10} {'threshold width':>16} {'disc params':>11} "
          f"{'95% interval':>16} widths tested")  # fmt: skip
    for b_ in res["best"]:
        cap = f"{b_['qubits']}q x {b_['layers']}L" if b_["generator"] == "quantum" else f"width {b_['gen_width']}"
        ci = f"[{b_['params_ci_lo']:.0f}, {b_['params_ci_hi']:.0f}]" if not b_["censored"] else "-"
        print(f"{b_['generator']:<10} {cap:<12} {str(b_['generator_params']):>10} "
              f"{'censored' if b_['censored'] else str(b_['threshold_width']):>16} "
              f"{str(b_['threshold_params']):>11} {ci:>16} {b_['widths_tested']}")  # fmt: skip
    for kind, d in res["decisions"].items():
        print(f"{kind}, calibrated rule: {d['verdict']}")
    for kind, d in res["first_rule_decisions"].items():
        print(f"{kind}, first rule (beside, on the cheap FID traces): {d['verdict']}")
    for kind, d in res["quality_decisions"].items():
        print(f"{kind}, quality only (beside): {d['verdict']}")
    print(f"wrote {args.out}/runs.csv, points.csv, capacity.csv, capacity.png, fits.json, prepared.json")
    lost = {k: v for k, v in res.get("failed_generators", {}).items() if v["failed"] == v["runs"]}
    for name, v in res.get("failed_generators", {}).items():
        print(f"{name}: {v['failed']} of {v['runs']} runs failed (first: {v['error']})", file=sys.stderr)
    if lost:
        from qbm.studies.cli_common import StudyFailed

        raise StudyFailed(f"every run of {', '.join(lost)} failed; see {args.out}/rounds")
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

    from qbm.studies.cli_common import add_runner_options

    p = study.add_parser("capacity", help="smallest optimal discriminator vs generator capacity (calibrated rule)")
    common(p, study=True)
    p.add_argument("--rule", default=None, help="the committed rule.json (default: the one packaged for --dataset)")
    p.add_argument("--quantum", nargs="+", default=None, help="QUBITSxLAYERS entries (default: 4x1 ... 10x2)")
    p.add_argument("--classical", type=positive_int, nargs="+", default=None, help="classical generator widths")
    p.add_argument("--classical-latent", type=positive_int, default=None, help="latent size of the classical ones")
    p.add_argument("--out", default="runs/capacity")
    add_runner_options(p, seeds=None)
    p.set_defaults(func=cmd_capacity)

    p = study.add_parser("capacity-calibrate", help="fix the capacity rule's constants on seeds the study never uses")
    common(p, study=True)
    p.set_defaults(disc_width=128)
    p.add_argument("--budget", default="paper", choices=list(CALIBRATION_BUDGETS))
    p.add_argument("--quantum", default="6x2", help="the calibration's generator, QUBITSxLAYERS")
    p.add_argument("--out", default="runs/capacity-calibration")
    add_runner_options(p, seeds=None)
    p.add_argument("--seeds", type=seed_int, nargs="+", default=list(range(100, 110)), help="default 100..109")
    p.set_defaults(func=cmd_capacity_calibrate)
