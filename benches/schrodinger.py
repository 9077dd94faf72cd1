"""Exact (Schrödinger) anneals: wall time, steps, gate passes per second and memory of one
forward anneal on the packaged Advantage2 stand-in schedule at the default error target
(readout TV 1e-3 by step doubling), whole call including the doubling ladder and 1000
reads, on spin glasses over n connected Zephyr spins. Beside it, one fixed-step
evolution per size timed in steady state (steps per second, amplitude-qubit updates per
second), the kernel's speed without the ladder. No peer runs the same dynamics; the
closest is qbm's own SQA (a different physics), so no ratio is printed.

    python benches/schrodinger.py [--sizes 12 16 20] [--anneal-ns 100] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import networkx as nx
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import print_core, print_table  # noqa: E402

from qbm import _core  # noqa: E402
from qbm.models.prior import zephyr_edges  # noqa: E402
from qbm.problems import spin_glass  # noqa: E402
from qbm.samplers import SchrodingerAnnealer  # noqa: E402


def glass(n: int):
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(zephyr_edges(n))
    return spin_glass(g, seed=0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[12, 16])
    ap.add_argument("--anneal-ns", type=float, default=100.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="whole calls per size (median quoted)")
    args = ap.parse_args()
    print_core()
    rows = []
    for n in args.sizes:
        model = glass(n)
        ham = _core.TransverseIsing(model.core)
        d = 1 << n
        psi = np.zeros((2, d))
        psi[0] = d**-0.5
        m = max(16, int(2e8 / (d * n)))  # about 0.1 s of steps
        steady = []
        for _ in range(3):
            t0 = time.perf_counter()
            ham.evolve(psi, np.full(m + 1, 0.01), np.full(m, 0.05), num_threads=args.threads)
            steady.append((time.perf_counter() - t0) / m)
        per_step = statistics.median(steady)
        reps = 1 if n >= 20 else args.repeats
        walls, info = [], None
        for r in range(reps):
            t0 = time.perf_counter()
            res = SchrodingerAnnealer().sample_model(
                model, anneal_time_us=args.anneal_ns / 1e3, num_reads=1000, seed=r, num_threads=args.threads
            )
            walls.append(time.perf_counter() - t0)
            info = res.info
        rows.append(
            {
                "n": n,
                "anneal (ns)": f"{args.anneal_ns:g}",
                "whole call (s, median)": f"{statistics.median(walls):.2f}",
                "steps (final / all)": f"{info['steps']} / {info['total_steps']}",
                "TV doubling": f"{info['tv_error']:.1e}",
                "gate passes/s": f"{info['timing']['gate_passes_per_s']:.3g}",
                "steady ms/step": f"{per_step * 1e3:.3f}",
                "amp-qubit upd/s": f"{d * n / per_step:.3g}",
                "memory (MB, est.)": f"{info['memory_bytes'] / 2**20:.1f}",
            }
        )
        print(f"n={n} done", flush=True)
    print(f"\nthreads {args.threads}; whole call = step-doubling ladder + 1000 reads; steady = fixed-step evolve")
    print_table(rows, list(rows[0]))


if __name__ == "__main__":
    main()
