"""Two builds of qbm's core timed against each other in one process (A/B of a kernel change).

``python benches/ab_builds.py OLD/_core.abi3.so NEW/_core.abi3.so [--n 4 6 8 10] [--iters 60]``
loads both extension files side by side, checks that they give the same bits, and times the
forward states and the adjoint sweep of the style-based QGAN generator's circuit (n qubits x 2
layers: RY RZ RY RZ on every qubit, a ring of controlled RY, a last RY layer; batch 64, one
thread), alternating A and B call by call. It prints medians and the median of the paired
ratios B / A. On a shared VM whose speed moves by 20% from one process to the next, timing
each build in its own process cannot resolve a 10% change; alternating calls in one process
can (two copies of the same build give ratios 1.00 +- 0.01).

``--kernel gibbs`` times the fixed-temperature sampler instead (``sample_schedule``: heat bath,
colour order, 100 reads x 200 sweeps at beta 1 on the Zephyr glasses of ``--zephyr 4 12``, one
thread), its spins and energies compared between the builds; ``--kernel sqa`` times SQA
(``sample_sqa``: cluster moves, ``--trotter 8`` slices, 20 reads x ``--sweeps`` sweeps, s from 0
to 1, beta 5, Gamma 1) the same way.

Build the old side from a checkout with ``cargo build --release -p qbm-python`` and copy
``target/release/lib_core.so`` to ``OLD/_core.abi3.so`` (any directory; the files are loaded
under their own module names).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
from functools import partial

import numpy as np


def load(tag: str, path: str):
    """The extension at ``path`` as module ``{tag}._core`` (its init symbol is ``PyInit__core``)."""
    spec = importlib.util.spec_from_file_location(f"{tag}._core", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{path}: not a loadable extension module")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def qgan_program_args(n: int):
    """The engine's constructor arguments for the QGAN circuit, and its angles for batch 64."""
    import torch

    from qbm.models.qgan import StyleQuantumGenerator
    from qbm.quantum.engine import compile_circuit, program_codes

    g = StyleQuantumGenerator(n, 2, seed=0)
    codes, _ = program_codes(g.circuit)
    z = g.sample_noise(64, generator=torch.Generator().manual_seed(1))
    angles = np.ascontiguousarray(compile_circuit(g.circuit).angles(g.angles(z).detach()).numpy())
    return codes, angles


def _sampler_call(kernel, betas, sched, reads, slices, mod, core):
    """One Gibbs (``sample_schedule``) or SQA (``sample_sqa``) call of build ``mod``."""
    if kernel == "gibbs":
        return mod.sample_schedule(core, betas, reads, seed=1, num_threads=1)
    return mod.sample_sqa(core, sched, reads, beta=5.0, gamma=1.0, num_trotter_slices=slices, seed=1, num_threads=1)


def sampler_ab(a_mod, b_mod, args) -> None:
    """Gibbs or SQA on Zephyr glasses, both builds, calls alternated."""
    from qbm.problems import spin_glass, zephyr_graph

    for m in args.zephyr:
        model = spin_glass(zephyr_graph(m), seed=0)
        indptr, indices, data = model.core.csr()
        arrays = (model.h, np.asarray(indptr, np.int64), np.asarray(indices, np.int64), np.asarray(data))
        ma, mb = a_mod.IsingCsr(*arrays), b_mod.IsingCsr(*arrays)
        betas, sched = np.ones(args.sweeps), np.linspace(0.0, 1.0, args.sweeps)
        reads, slices = (100, 1) if args.kernel == "gibbs" else (20, args.trotter)
        call = partial(_sampler_call, args.kernel, betas, sched, reads, slices)
        oa, ob = call(a_mod, ma), call(b_mod, mb)
        same = np.array_equal(oa["spins"], ob["spins"]) and np.array_equal(oa["energies"], ob["energies"])
        t = {"A": [], "B": []}
        sides = (("A", a_mod, ma), ("B", b_mod, mb))
        for it in range(args.iters):
            for tag, mod, core in sides if it % 2 == 0 else sides[::-1]:
                s = time.perf_counter()
                call(mod, core)
                t[tag].append(time.perf_counter() - s)
        ra, rb = np.array(t["A"]), np.array(t["B"])
        upd = model.num_variables * reads * slices * args.sweeps
        what = "spin-slice updates/s" if slices > 1 else "spin updates/s"
        print(
            f"Z({m}) n = {model.num_variables}: A {upd / np.median(ra):.3g} B {upd / np.median(rb):.3g} {what}  "
            f"B / A time {np.median(rb / ra):.3f}  (same bits: {'yes' if same else 'NO'})"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--n", type=int, nargs="+", default=[4, 6, 8, 10])
    ap.add_argument("--iters", type=int, default=60)
    ap.add_argument("--kernel", choices=["circuit", "gibbs", "sqa"], default="circuit")
    ap.add_argument("--trotter", type=int, default=8, help="sqa: Trotter slices")
    ap.add_argument("--zephyr", type=int, nargs="+", default=[4, 12], help="gibbs, sqa: Zephyr sizes m")
    ap.add_argument("--sweeps", type=int, default=200, help="gibbs, sqa: sweeps per call")
    args = ap.parse_args()
    for p in (args.old, args.new):
        if not os.path.isfile(p):
            raise SystemExit(f"{p}: no such file")
    a_mod, b_mod = load("qbm_ab_old", args.old), load("qbm_ab_new", args.new)
    if args.kernel != "circuit":
        print("A =", args.old, "| B =", args.new, f"| {args.kernel}, 1 thread, colour order, calls alternated")
        sampler_ab(a_mod, b_mod, args)
        return
    print("A =", args.old, "| B =", args.new, "| 1 thread, batch 64, calls alternated")
    for n in args.n:
        codes, angles = qgan_program_args(n)
        pa, pb = a_mod.CircuitProgram(*codes), b_mod.CircuitProgram(*codes)
        psi = pa.states(angles, None, num_threads=1)
        lam = np.ascontiguousarray(np.random.default_rng(n).normal(size=psi.shape))
        same = np.array_equal(psi, pb.states(angles, None, num_threads=1)) and np.array_equal(
            pa.adjoint(angles, psi, lam, num_threads=1), pb.adjoint(angles, psi, lam, num_threads=1)
        )
        t = {k: [] for k in ("A states", "B states", "A adjoint", "B adjoint")}
        for it in range(args.iters):
            for tag, prog in (("A", pa), ("B", pb)) if it % 2 == 0 else (("B", pb), ("A", pa)):
                s = time.perf_counter()
                prog.states(angles, None, num_threads=1)
                t[f"{tag} states"].append(time.perf_counter() - s)
                s = time.perf_counter()
                prog.adjoint(angles, psi, lam, num_threads=1)
                t[f"{tag} adjoint"].append(time.perf_counter() - s)
        for k in ("states", "adjoint"):
            ra, rb = np.array(t[f"A {k}"]), np.array(t[f"B {k}"])
            print(
                f"n = {n:2d} {k:8s} A {np.median(ra) * 1e3:7.3f} ms  B {np.median(rb) * 1e3:7.3f} ms  "
                f"B / A {np.median(rb / ra):.3f}  (same bits: {'yes' if same else 'NO'})"
            )


if __name__ == "__main__":
    main()
