"""Command-line options every study shares (engine, workers, seeds, budget) and the call
that runs a study with them."""

from __future__ import annotations

import argparse
from typing import Any

from qbm.cli_types import positive_int, seed_int


def add_runner_options(p: argparse.ArgumentParser, *, seeds: int) -> None:
    g = p.add_argument_group("study runner")
    g.add_argument("--seeds", type=seed_int, nargs="+", default=list(range(seeds)), help=f"default 0..{seeds - 1}")
    g.add_argument("--engine", default="local", choices=["local", "ray"], help="local process pool or Ray")
    g.add_argument("--address", default=None, help="with --engine ray: join this cluster (e.g. auto, ray://host)")
    g.add_argument("--workers", type=positive_int, default=None, help="local worker processes (default: cores)")
    g.add_argument("--threads-per-run", type=positive_int, default=1, help="torch and qbm threads of every run")
    g.add_argument("--force", action="store_true", help="discard a different study held in --out")
    g.add_argument("--quiet", action="store_true")


def runner_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The runner options of :func:`add_runner_options` as ``run_study`` keyword arguments."""
    return dict(
        engine=args.engine,
        workers=args.workers,
        threads_per_run=args.threads_per_run,
        address=args.address,
        force=args.force,
        progress=not args.quiet,
    )


def run(study: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    from qbm.studies.runner import run_study

    recs = run_study(study, args.out, **runner_kwargs(args))
    failed = [r for r in recs if r["status"] != "ok"]
    if failed:
        print(f"{len(failed)} of {len(recs)} runs failed (recorded in {args.out}/runs; rerun to retry them)")
    return recs
