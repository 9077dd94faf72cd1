"""Command-line options every study shares (engine, workers, seeds, budget) and the call
that runs a study with them."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from qbm.cli_types import positive_int, seed_int


def add_runner_options(p: argparse.ArgumentParser, *, seeds: int | None) -> None:
    """The runner's options; ``seeds=None`` for a study whose runs are not seeds of points."""
    g = p.add_argument_group("study runner")
    if seeds is not None:
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


def run(study: Any, args: argparse.Namespace, *, intervals: bool = True) -> list[dict[str, Any]]:
    """Run ``study`` with the runner options in ``args``. Prints a warning when fewer than
    3 seeds are used. Raises :class:`StudyFailed` (exit status 1) when every run failed:
    there is nothing to aggregate and exiting 0 would hide it."""
    from qbm.studies.runner import few_seeds_warning, run_study

    seeds = sorted({r.seed for r in study.runs})
    w = few_seeds_warning(len(seeds)) if intervals else None
    if w:
        print(w, file=sys.stderr)
    recs = run_study(study, args.out, **runner_kwargs(args))
    failed = [r for r in recs if r["status"] != "ok"]
    if failed:
        first = failed[0]["error"]
        print(
            f"{len(failed)} of {len(recs)} runs failed (recorded in {args.out}/runs; rerun to retry them); "
            f"first error: {first['type']}: {first['message']}",
            file=sys.stderr,
        )
        if len(failed) == len(recs):
            raise StudyFailed(f"every run of the study failed; see {args.out}/runs")
    return recs


class StudyFailed(RuntimeError):
    """Every run of a study failed (the CLI exits with status 1)."""
