"""Circuit simulation for QCBM training steps and the style-based QGAN: qbm's Rust engine
against pennylane-lightning and qulacs on the same circuits, one thread each, same run.

Part 1, the kl-vs-mmd step (what `qbm study kl-vs-mmd` runs 1000 times per run): the
line ansatz with 2 layers (97 / 130 / 174 parameters at n = 9 / 12 / 16), a bars-and-
stripes target, and one Adam step's loss value and gradient:
  * shot steps (KL, MMD, local fidelity at 1e2, 1e3, 1e4 shots): the unshifted circuit
    and its 2P parameter-shifted copies, each sampled with `shots` draws, reduced with
    the same estimator weights (KL: p / max(q, eps); MMD: K (c' - t) from count vectors;
    fidelity: mean_i Z_i of U^dag |phi>). qbm forks each shifted circuit from the
    unshifted prefix in the core and draws counts there; the peers simulate the 2P + 1
    circuits (lightning: batches of tapes through qml.execute; qulacs: a parametric
    circuit re-run per parameter set) and draw multinomial counts with numpy per circuit
    (O(2^n), streamed: the peers never hold all 2P + 1 distributions either).
  * exact step (KL, infinite shots): qbm's adjoint sweep (an autograd Function) against
    qulacs' ParametricQuantumCircuit.backprop_inner_product with the same lambda.
  Whole step timed, median of repeats, f64 / complex128 everywhere. Every simulator runs
  in its own subprocess with 1 thread (QBM_NUM_THREADS, OMP_NUM_THREADS, torch); peak
  memory is ru_maxrss at the end minus ru_maxrss after imports and circuit set-up.
  Conventions are checked first: each peer's probabilities must equal qbm's to 1e-10
  (qulacs rotates by exp(+i a P / 2) and numbers qubits from the least significant bit,
  so its angles are negated and its qubit numbers mirrored); qulacs' exact gradient must equal
  qbm's adjoint gradient to 1e-8.

Part 2, the style-based QGAN (5 qubits x 2 layers, <Z> readout, batch 64; discriminator
width 32 on digits latents): generator forward + backward and one training epoch (50
generator and 250 critic steps, FID at the end), qbm's engine against qbm's own torch
simulator (the path before the engine), 1 thread.

    python benches/circuits.py [--n 9 12 16] [--shots 100 1000 10000] [--repeats 3] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import median_time, print_core, print_table, write_json  # noqa: E402

SIMS = ("qbm", "lightning", "qulacs")
LOSSES = ("kl", "mmd", "fidelity")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _target(n: int) -> np.ndarray:
    from qbm.studies.qcbm_studies import resolve_target

    return resolve_target("bas", n)


def _zbar(n: int) -> np.ndarray:
    x = np.arange(2**n)[:, None] >> np.arange(n - 1, -1, -1)
    return (1 - 2 * (x & 1)).mean(1)


def _weights(
    loss: str, q_counts: np.ndarray, q2_counts: np.ndarray, t_counts: np.ndarray, p: np.ndarray, shots: int, sig
):
    """Value and the weight vector w of the gradient sum_x (f^+ - f^-)(x) w(x), with its
    scale, from counts of the unshifted circuit (q, q2: independent draws) and the target."""
    from qbm import mmd
    from qbm.models.qcbm import kl_divergence

    import torch

    if loss == "mmd":
        value = mmd.mmd2_counts(q_counts, t_counts, sig, estimator="unbiased")
        return value, mmd.kernel_matvec((q2_counts - t_counts) / shots, sig), 1.0
    f = q_counts / shots
    if loss == "kl":
        value = float(kl_divergence(p, torch.as_tensor(f), 1e-6))
        return value, np.where(p > 0, p / np.maximum(f, 1e-6), 0.0), -0.5
    zb = _zbar(len(p).bit_length() - 1)
    return float(0.5 - 0.5 * f @ zb), zb, -0.25


# ------------------------------------------------------------------ workers
def _gates(n: int):
    from qbm.models.qcbm import QCBM

    m = QCBM(n, layers=2, seed=0)
    return m, [(g.name, g.qubits, g.param) for g in m.circuit.gates], m.theta.detach().numpy().copy()


class QbmSim:
    def __init__(self, n: int):
        import torch

        torch.set_num_threads(1)
        self.model, self.gates, self.theta = _gates(n)
        self.n = n

    def probs(self, theta, inverse=False, initial=None):
        import torch

        return self.model.circuit.run(torch.as_tensor(theta), inverse=inverse, initial=initial).numpy()

    def step(self, loss: str, shots: int | None, p: np.ndarray, sig, gen):
        import torch

        from qbm import mmd
        from qbm.models.qcbm import kl_divergence, shot_loss_and_grad

        m = self.model
        if shots is not None:
            return shot_loss_and_grad(m, p, loss, shots, gen, sig, 1e-6)
        m.theta.grad = None
        val = (
            kl_divergence(torch.as_tensor(p), m.probs(), 1e-6)
            if loss == "kl"
            else mmd.mmd2_exact(m.probs(), torch.as_tensor(p), sig)
        )
        val.backward()
        return float(val), m.theta.grad


class PeerSim:
    """Shared shot-step logic for the peers: simulate 2P + 1 circuits, stream counts."""

    batch = 1

    def step(self, loss: str, shots: int | None, p: np.ndarray, sig, gen):
        rng = np.random.default_rng(int(gen.integers(2**62)))
        P = len(self.theta)
        fid = loss == "fidelity"
        init = np.sqrt(p) if fid else None
        if shots is None:
            return self.exact_step(p)
        q0 = self.probs(self.theta, inverse=fid, initial=init)
        qc = rng.multinomial(shots, q0 / q0.sum())
        q2 = rng.multinomial(shots, q0 / q0.sum())
        tc = rng.multinomial(shots, p)
        value, w, scale = _weights(loss, qc.astype(float), q2.astype(float), tc.astype(float), p, shots, sig)
        grad = np.zeros(P)
        sets = []  # shifting theta itself: the inverse circuit negates it where it should
        for k in range(P):
            for s in (1, -1):
                t = self.theta.copy()
                t[k] += s * math.pi / 2
                sets.append((k, s, t))
        for i in range(0, len(sets), self.batch):
            chunk = sets[i : i + self.batch]
            probs = self.probs_many([t for _, _, t in chunk], inverse=fid, initial=init)
            for (k, s, _), q in zip(chunk, probs):
                c = rng.multinomial(shots, q / q.sum())
                grad[k] += s * (c @ w) / shots
        return value, scale * grad

    def probs_many(self, thetas, inverse=False, initial=None):
        return [self.probs(t, inverse=inverse, initial=initial) for t in thetas]


class LightningSim(PeerSim):
    batch = 16

    def __init__(self, n: int):
        import pennylane as qml

        self.qml = qml
        _, self.gates, self.theta = _gates(n)
        self.n = n
        self.dev = qml.device("lightning.qubit", wires=n)

    def _ops(self, theta, inverse):
        qml = self.qml
        ops = []
        for name, qs, k in self.gates:
            if name == "cx":
                ops.append(qml.CNOT(wires=list(qs)))
            else:
                cls = {"rx": qml.RX, "ry": qml.RY, "rz": qml.RZ}[name]
                ops.append(cls(-theta[k] if inverse else theta[k], wires=qs[0]))
        return ops[::-1] if inverse else ops

    def _tape(self, theta, inverse, initial):
        qml = self.qml
        ops = self._ops(theta, inverse)
        if initial is not None:
            ops = [qml.StatePrep(np.asarray(initial, dtype=np.complex128), wires=range(self.n))] + ops
        return qml.tape.QuantumScript(ops, [qml.probs(wires=range(self.n))])

    def probs(self, theta, inverse=False, initial=None):
        return self.probs_many([theta], inverse, initial)[0]

    def probs_many(self, thetas, inverse=False, initial=None):
        tapes = [self._tape(t, inverse, initial) for t in thetas]
        return [np.asarray(r) for r in self.qml.execute(tapes, self.dev, diff_method=None)]


class QulacsSim(PeerSim):
    def __init__(self, n: int):
        from qulacs import ParametricQuantumCircuit, QuantumState

        _, self.gates, self.theta = _gates(n)
        self.n = n
        self.QuantumState = QuantumState
        self.circ = {}
        for inverse in (False, True):
            c = ParametricQuantumCircuit(n)
            slots = []
            seq = self.gates[::-1] if inverse else self.gates
            for name, qs, k in seq:
                # qulacs' qubit k is index bit k (qbm's qubit 0 is the most significant bit):
                # mirrored qubit numbers give the same index layout
                m = [n - 1 - q for q in qs]
                if name == "cx":
                    c.add_CNOT_gate(m[0], m[1])
                else:
                    # qulacs rotates by exp(+i a P / 2): negate qbm's angle
                    getattr(c, f"add_parametric_{name.upper()}_gate")(m[0], 0.0)
                    slots.append(k)
            self.circ[inverse] = (c, slots)
        self.state = QuantumState(n)

    def _set(self, theta, inverse):
        c, slots = self.circ[inverse]
        sign = 1.0 if inverse else -1.0  # inverse gates carry -theta; qulacs wants -(angle)
        for i, k in enumerate(slots):
            c.set_parameter(i, sign * theta[k])
        return c

    def probs(self, theta, inverse=False, initial=None):
        c = self._set(theta, inverse)
        if initial is None:
            self.state.set_zero_state()
        else:
            self.state.load(np.asarray(initial, dtype=np.complex128))
        c.update_quantum_state(self.state)
        v = self.state.get_vector()
        return v.real**2 + v.imag**2

    def exact_step(self, p):
        """KL gradient by qulacs' adjoint: lambda = (dL/dq) psi, dL/da = 2 Re <lambda| d psi>."""
        c = self._set(self.theta, False)
        self.state.set_zero_state()
        c.update_quantum_state(self.state)
        v = self.state.get_vector()
        q = v.real**2 + v.imag**2
        qc = np.maximum(q, 1e-6)
        value = float(np.sum(p[p > 0] * (np.log(p[p > 0]) - np.log(qc[p > 0]))))
        g = np.where((p > 0) & (q > 1e-6), -p / qc, 0.0)
        lam = self.QuantumState(self.n)
        lam.load(g * v)
        r = np.asarray(c.backprop_inner_product(lam))
        grad = np.zeros(len(self.theta))
        _, slots = self.circ[False]
        for i, k in enumerate(slots):
            grad[k] += -2.0 * r[i]  # qulacs' angle is -theta
        return value, grad


def worker(sim: str, n: int, shots_list: list[int], repeats: int) -> dict:
    from qbm import mmd

    cls = {"qbm": QbmSim, "lightning": LightningSim, "qulacs": QulacsSim}[sim]
    s = cls(n)
    p = _target(n)
    sig = mmd.mmd_sigmas_mixture(n)
    out: dict = {"sim": sim, "n": n}
    # conventions against qbm's engine
    if sim != "qbm":
        ref = QbmSim(n)
        for inverse, init in ((False, None), (True, np.sqrt(p))):
            d = np.abs(
                s.probs(s.theta, inverse=inverse, initial=init) - ref.probs(ref.theta, inverse=inverse, initial=init)
            ).max()
            if d > 1e-10:
                raise SystemExit(f"{sim}: probabilities differ from qbm's by {d:.2e} (inverse={inverse})")
        if sim == "qulacs":
            gq = s.exact_step(p)[1]
            gr = ref.step("kl", None, p, sig, None)[1].numpy()
            if np.abs(gq - gr).max() > 1e-8:
                raise SystemExit(f"qulacs: exact gradient differs from qbm's by {np.abs(gq - gr).max():.2e}")
    base = _rss_mb()
    import torch

    gen = torch.Generator().manual_seed(0) if sim == "qbm" else np.random.default_rng(0)
    rows = []
    for loss in LOSSES:
        for shots in shots_list:
            t = median_time(lambda loss=loss, shots=shots: s.step(loss, shots, p, sig, gen), repeats, warmup=1)
            rows.append({"loss": loss, "shots": shots, "seconds": t})
    if sim in ("qbm", "qulacs"):
        t = median_time(lambda: s.step("kl", None, p, sig, gen), max(repeats, 5), warmup=1)
        rows.append({"loss": "kl", "shots": "exact", "seconds": t})
    out["rows"] = rows
    out["peak_mb_above_baseline"] = _rss_mb() - base
    out["gate_passes"] = shot_step_passes(n)
    return out


def shot_step_passes(n: int) -> int:
    """Gate passes over the 2^n state in one shot step of qbm's engine: the unshifted
    circuit once, and each of the 2P shifted circuits from its shifted gate on (the prefix
    is shared: every shifted circuit forks from the unshifted one)."""
    _, gates, _ = _gates(n)
    G = len(gates)
    return G + 2 * sum(G - i for i, (_, _, k) in enumerate(gates) if k is not None)


# ------------------------------------------------------------------ part 2
def qgan_part(repeats: int) -> list[dict]:
    import torch

    torch.set_num_threads(1)
    from qbm.data import load_dataset
    from qbm.models.qgan import StyleQuantumGenerator
    from qbm.training.qgan import QGANConfig, Shared, train_qgan

    rows = []
    times = {}
    for backend in ("engine", "torch"):
        g = StyleQuantumGenerator(5, 2, readout="z", backend=backend)
        z = g.sample_noise(64, torch.Generator().manual_seed(0))

        def fb(g=g, z=z):
            g.zero_grad()
            g(z).sum().backward()

        times[backend] = median_time(fb, 50, warmup=5)
    rows.append(
        {
            "what": "generator fwd+bwd (5x2, batch 64)",
            "qbm engine s": times["engine"],
            "torch sim s": times["torch"],
            "speed-up": times["torch"] / times["engine"],
        }
    )
    data = load_dataset("digits")
    shared = Shared(data, 5, seed=0, ae_epochs=20, clf_epochs=10)
    ep = {}
    import qbm.models.qgan as mq

    for backend in ("engine", "torch"):
        orig = mq.StyleQuantumGenerator.__init__

        def init(self, *a, _orig=orig, _b=backend, **k):
            k["backend"] = _b
            _orig(self, *a, **k)

        mq.StyleQuantumGenerator.__init__ = init
        try:
            ts = []
            for r in range(repeats):
                cfg = QGANConfig(qubits=5, layers=2, latent=5, disc_width=32, epochs=1, seed=r)
                ts.append(train_qgan(cfg, shared, progress=False)["seconds"])
            ep[backend] = float(np.median(ts))
        finally:
            mq.StyleQuantumGenerator.__init__ = orig
    rows.append(
        {
            "what": "capacity-study epoch (5x2, disc 32)",
            "qbm engine s": ep["engine"],
            "torch sim s": ep["torch"],
            "speed-up": ep["torch"] / ep["engine"],
        }
    )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[9, 12, 16])
    ap.add_argument("--shots", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sims", nargs="+", default=list(SIMS), choices=SIMS)
    ap.add_argument("--quick", action="store_true", help="n = 9 and 12, 1e3 shots, 2 repeats")
    ap.add_argument("--no-qgan", action="store_true")
    ap.add_argument("--out", default="bench-results")
    ap.add_argument("--worker", nargs=2, metavar=("SIM", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    print_core()
    if args.quick:
        args.n, args.shots, args.repeats = [9, 12], [1000], 2
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.shots, args.repeats)))
        return
    env = dict(os.environ, QBM_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    results = []
    for n in args.n:
        for sim in args.sims:
            t0 = time.perf_counter()
            cmd = [
                sys.executable,
                __file__,
                "--worker",
                sim,
                str(n),
                "--repeats",
                str(args.repeats),
                "--shots",
                *map(str, args.shots),
            ]
            r = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if r.returncode != 0:
                print(f"{sim} n={n}: failed\n{r.stderr[-2000:]}", file=sys.stderr)
                continue
            res = json.loads(r.stdout.strip().splitlines()[-1])
            results.append(res)
            print(f"  {sim} n={n}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    table = []
    by = {(r["sim"], r["n"]): r for r in results}
    for n in args.n:
        q = by.get(("qbm", n))
        if not q:
            continue
        for row in q["rows"]:
            line = {"n": n, "loss": row["loss"], "shots": row["shots"], "qbm s/step": row["seconds"]}
            if row["shots"] != "exact":
                line["qbm gate passes/s"] = q["gate_passes"] / row["seconds"]
            for sim in ("lightning", "qulacs"):
                peer = by.get((sim, n))
                match = [
                    x for x in (peer or {}).get("rows", []) if x["loss"] == row["loss"] and x["shots"] == row["shots"]
                ]
                if match:
                    line[f"{sim} s/step"] = match[0]["seconds"]
                    line[f"{sim}/qbm"] = match[0]["seconds"] / row["seconds"]
            table.append(line)
    print("\nPart 1: kl-vs-mmd step, line ansatz 2 layers, 1 thread each, median of repeats (whole step)")
    print_table(
        table,
        [
            "n",
            "loss",
            "shots",
            "qbm s/step",
            "qbm gate passes/s",
            "lightning s/step",
            "lightning/qbm",
            "qulacs s/step",
            "qulacs/qbm",
        ],
    )
    print("\npeak memory above the post-import baseline (MB):")
    print_table(
        [{"n": r["n"], "sim": r["sim"], "peak MB": r["peak_mb_above_baseline"]} for r in results],
        ["n", "sim", "peak MB"],
    )
    out = {"part1": results, "table": table}
    if not args.no_qgan:
        rows = qgan_part(args.repeats)
        print("\nPart 2: style-based QGAN, 1 thread")
        print_table(rows, ["what", "qbm engine s", "torch sim s", "speed-up"])
        out["part2"] = rows
    write_json(os.path.join(args.out, "circuits.json"), out)


if __name__ == "__main__":
    main()
