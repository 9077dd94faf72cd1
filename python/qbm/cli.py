"""The ``qbm`` command line."""

from __future__ import annotations

from qbm.cli_types import positive_float, positive_int, seed_int, threads_int

import argparse
import gc
import json
import os
import sys
import time
from typing import Any

import numpy as np


def _parse_graph(spec: str) -> tuple[int, int]:
    """'zephyr:M' or 'zephyr:M,T' -> (M, T)."""
    kind, _, rest = spec.partition(":")
    if kind != "zephyr" or not rest:
        raise ValueError(f"--graph: expected 'zephyr:M' or 'zephyr:M,T', got {spec!r}")
    parts = rest.split(",")
    try:
        m = int(parts[0])
        t = int(parts[1]) if len(parts) > 1 else 4
    except ValueError:
        raise ValueError(f"--graph: expected integers in {spec!r}") from None
    if m < 1 or t < 1:
        raise ValueError(f"--graph: M and T must be >= 1, got {spec!r}")
    return m, t


TRACE_SWEEPS = 2000  # sweeps of the spin-glass report's traced certificate run at least


def cmd_spin_glass(args: argparse.Namespace) -> int:
    """Sample a Zephyr spin glass with simulated annealing and Gibbs; print a report."""
    from tqdm import tqdm

    from qbm import _core
    from qbm.problems import zephyr_spin_glass
    from qbm.samplers import GibbsSampler, SimulatedAnnealingSampler

    m, t = _parse_graph(args.graph)
    if args.json:  # checked before the run, not after it
        if os.path.isdir(args.json):
            raise ValueError(f"--json: {args.json!r} is a directory; give a file path")
        parent = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(parent):
            raise FileNotFoundError(f"--json: directory {parent!r} does not exist")
        if not os.access(parent, os.W_OK):
            raise PermissionError(f"--json: cannot write in {parent!r}")
    model = zephyr_spin_glass(m, t, seed=args.seed)
    n = model.num_variables
    print(
        f"qbm {_core.__version__}: Zephyr Z({m},{t}) spin glass, {n} spins, {model.num_interactions} couplers "
        f"(J ~ U[-1,1], h ~ U[-0.1,0.1], seed {args.seed})"
    )
    print(f"core: simd={_core.simd_level()}, threads={args.threads or _core.default_threads()}")
    report: dict[str, Any] = {"graph": args.graph, "num_variables": n, "num_interactions": model.num_interactions}

    chunk = 8 * _core.LANES
    sa = SimulatedAnnealingSampler(num_threads=args.threads)
    energies, sa_spins, t0 = [], [], time.perf_counter()
    with tqdm(total=args.num_reads, desc="simulated annealing", unit="read", disable=args.quiet) as bar:
        for k, start in enumerate(range(0, args.num_reads, chunk)):
            r = sa.sample_model(
                model,
                num_reads=min(chunk, args.num_reads - start),
                num_sweeps=args.num_sweeps,
                seed=args.seed * 1_000_003 + k,
            )
            energies.append(r.energies)
            if sum(len(x) for x in sa_spins) < 256:  # kept for the certificate below (no second SA run)
                sa_spins.append(r.spins)
            bar.update(len(r))
    dt = time.perf_counter() - t0
    e = np.concatenate(energies)
    best = float(e.min())
    print(
        f"simulated annealing: {args.num_reads} reads x {args.num_sweeps} sweeps in {dt:.2f} s "
        f"({n * args.num_reads * args.num_sweeps / dt:.3g} spin updates/s)"
    )
    print(
        f"  lowest energy {best:.4f} (per spin {best / n:.4f}), mean {e.mean():.4f}, "
        f"reads within 1e-6 of lowest: {np.mean(e <= best + 1e-6):.1%}"
    )
    report["sa"] = {"min_energy": best, "mean_energy": float(e.mean()), "seconds": dt}

    gibbs = GibbsSampler(num_threads=args.threads)
    t0 = time.perf_counter()
    r = gibbs.sample_model(model, beta=args.beta, num_reads=args.num_reads, num_sweeps=args.num_sweeps, seed=args.seed)
    dt = time.perf_counter() - t0
    mag = np.abs(r.spins.mean(axis=1)).mean()
    print(
        f"Gibbs at beta={args.beta}: mean energy per spin {r.energies.mean() / n:.4f}, |magnetisation| {mag:.3f}, "
        f"flip fraction {r.info['flip_fraction']:.3f}, {n * args.num_reads * args.num_sweeps / dt:.3g} spin updates/s"
    )
    report["gibbs"] = {"beta": args.beta, "mean_energy": float(r.energies.mean()), "seconds": dt}
    # certificates, outside the timed runs: the Gibbs samples above, then a traced run of
    # fewer chains for the autocorrelation time; annealing's beta_eff for comparison
    from qbm.diagnostics import certify

    print("certifying the Gibbs samples (beta_eff, bootstrap interval"
          + (", parallel-tempering reference" if args.reference_pt else "") + ") ...", flush=True)  # fmt: skip
    c = certify(r, model, beta=args.beta, reference="pt" if args.reference_pt else None)
    print(f"  certificate: {c}", flush=True)
    k = min(args.num_reads, 128)
    # the trace needs 20 autocorrelation times (about 55 sweeps on these glasses at beta 1)
    trace_sweeps = max(args.num_sweeps, TRACE_SWEEPS)
    print(f"a traced run of {k} chains x {trace_sweeps} sweeps for the autocorrelation time ...", flush=True)
    traced = gibbs.sample_model(
        model, beta=args.beta, num_reads=k, num_sweeps=trace_sweeps, seed=args.seed + 1, certify=True
    ).info["certificate"]
    print(f"  trace ({k} chains x {trace_sweeps} sweeps): {traced}", flush=True)
    csa = certify(np.concatenate(sa_spins)[:256], model)  # the timed run's own final states
    print(f"simulated annealing's samples: beta_eff {csa['beta_eff']:.4g} [{csa['beta_eff_ci'][0]:.4g}, "
          f"{csa['beta_eff_ci'][1]:.4g}] (not a Boltzmann sampler: where its final states sit)")  # fmt: skip
    report["gibbs"]["certificate"] = {k_: v for k_, v in c.items()}
    report["gibbs"]["trace_certificate"] = {k_: v for k_, v in traced.items()}
    report["sa"]["beta_eff"] = csa["beta_eff"]
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)
        print(f"wrote {args.json}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qbm", description="Rust-accelerated Ising samplers and generative models.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command")

    sg = sub.add_parser("spin-glass", help="sample a Zephyr spin glass and print a short report")
    sg.add_argument("--graph", default="zephyr:4", help="zephyr:M[,T] (default zephyr:4 = 576 spins)")
    sg.add_argument("--num-reads", type=positive_int, default=256)
    sg.add_argument("--num-sweeps", type=positive_int, default=1000)
    sg.add_argument("--beta", type=positive_float, default=1.0, help="inverse temperature of the Gibbs run")
    sg.add_argument("--seed", type=seed_int, default=0)
    sg.add_argument("--threads", type=threads_int, default=None)
    sg.add_argument("--json", default=None, help="also write the report to this JSON file")
    sg.add_argument(
        "--reference-pt",
        action="store_true",
        help="also check the Gibbs samples' mean energy against parallel tempering's (a PT run)",
    )
    sg.add_argument("--quiet", action="store_true", help="no progress bar")
    sg.set_defaults(func=cmd_spin_glass)

    study_p = sub.add_parser("study", help="reproducible studies")
    study = study_p.add_subparsers(dest="study")
    train_p = sub.add_parser("train", help="train a model")
    train = train_p.add_subparsers(dest="model")
    from qbm.studies import qcbm_studies
    from qbm.commands import vae as vae_cli

    qcbm_studies.add_parsers(study, train)
    vae_cli.add_parsers(sub, train, study)
    from qbm.commands import qgan as qgan_cli
    from qbm.commands import qpu as qpu_cli

    qpu_cli.add_parsers(sub)
    from qbm.commands import data as data_cli

    data_cli.add_parsers(sub)
    qgan_cli.add_parsers(train, study)
    from qbm.studies import dqa

    dqa.add_parser(study)
    from qbm.studies import trainability

    trainability.add_all_parsers(study)
    from qbm import cli_help

    cli_help.apply(p)
    return p


def _groups(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Command groups (``train``, ``study``, ``compare``, ``qpu``): name -> parser."""
    out = {}
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, sp in a.choices.items():
                if any(isinstance(b, argparse._SubParsersAction) for b in sp._actions):
                    out[name] = sp
    return out


def _explicit(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """argparse dests of the options given on the command line (not defaulted)."""
    opts: dict[str, str] = {}

    def walk(p: argparse.ArgumentParser) -> None:
        for a in p._actions:
            for o in a.option_strings:
                opts[o] = a.dest
            if isinstance(a, argparse._SubParsersAction):
                for sp in a.choices.values():
                    walk(sp)

    walk(parser)
    return {opts[t.split("=")[0]] for t in argv if t.startswith("--") and t.split("=")[0] in opts}


def entry() -> int:
    """The ``qbm`` console script: :func:`main` with ``freeze_gc=True``."""
    return main(freeze_gc=True)


def main(argv: list[str] | None = None, *, freeze_gc: bool = False) -> int:
    """Runs one command line; returns its exit status. ``freeze_gc`` (the console script's
    setting, not for a caller that goes on running Python): once torch is imported, and
    again when the command ends, the objects alive are moved out of the cyclic garbage
    collector's sight (``gc.freeze``): the collector then stops walking torch's and the
    other modules' ~10^6 long-lived objects in every full collection, and the interpreter's
    shutdown stops walking them too (a process that imports torch, scikit-learn and
    matplotlib starts and exits in 2.9 s instead of 3.6 s, median of 5; the main job 0.65 s
    sooner). Nothing else changes: reference counting still frees what it frees, files and
    exit handlers close as before."""
    try:
        return _main(argv, freeze_gc)
    finally:
        if freeze_gc:
            gc.freeze()


def _main(argv: list[str] | None, freeze_gc: bool) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from qbm import __version__

        print(__version__)
        return 0
    if not getattr(args, "func", None):
        group = _groups(parser).get(getattr(args, "command", None) or "")
        if group is not None:  # `qbm train` etc. without a subcommand: that group's help
            group.print_help(sys.stderr)
            print(f"qbm {args.command}: error: a subcommand is required", file=sys.stderr)
            return 2
        parser.print_help()
        return 0 if not argv else 2
    args.explicit = _explicit(parser, argv)
    from qbm.studies.cli_common import StudyFailed

    try:
        pre = getattr(args, "precheck", None)
        if pre is not None:  # argument and directory checks that need no torch: a refusal comes at once
            pre(args)
        if args.command in ("train", "compare", "generate", "qpu", "study") and not getattr(args, "quiet", False):
            # importing torch and the models is a silent stretch of a few seconds on a busy machine
            print(f"qbm {args.command}: starting (loading torch) ...", file=sys.stderr, flush=True)
        if args.command in ("train", "compare", "generate", "qpu"):
            from qbm.threads import apply_policy

            apply_policy(getattr(args, "threads", None))
            if freeze_gc:
                gc.freeze()
        return int(args.func(args))
    except (ValueError, TypeError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as e:
        print(f"qbm: error: {e}", file=sys.stderr)
        return 2
    except StudyFailed as e:
        print(f"qbm: error: {e}", file=sys.stderr)
        return 1
    except MemoryError as e:
        print(f"qbm: error: not enough memory: {e or 'an allocation failed'}", file=sys.stderr)
        return 2
    except OSError as e:  # a read-only or full output or cache directory, and the like
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        print(f"qbm: error: {e.strerror or e}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qbm: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(entry())
