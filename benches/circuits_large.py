"""Circuits above the caches: forward state and 1e4 shots of two circuits at n = 12-24,
qbm's engine against qsim, Qiskit Aer, qulacs and pennylane-lightning, one thread each,
same run.

Circuits (the same gates and angles for every simulator):
  * qcbm: the QCBM line ansatz with 2 layers (`qbm.models.qcbm.QCBM(n).circuit`: an
    RZ RY RZ layer, then per layer CX(q, q+1) RY(q) CX(q, q+1) along the line and another
    RZ RY RZ layer), angles uniform in [0, 2 pi).
  * brick: depth 20; each layer RX RY on every qubit (angles uniform in [0, 2 pi)), then
    CZ on the pairs (q, q+1) starting at q = 0 on even layers and q = 1 on odd ones.

Timed: `forward` = the circuit from |0...0> to the full state vector in memory (qbm: its
compiled program's `states`, the core call returning both f64 planes; qsim: `simulate`;
Aer: `save_statevector`; qulacs: `update_quantum_state` on a reset state; lightning: a
tape returning `qml.state()`); `shots` = the circuit and 1e4 computational-basis samples
(qbm: `Circuit.sample`, the draws made in the core from the amplitudes; qsim: `run` with
measurements; Aer: `shots=10000` with `measure_all`; qulacs: `sampling`; lightning: a
finite-shot device and `qml.counts`); `grad` (qcbm only, qbm and lightning, the two
adjoint-method gradients) = the gradient of sum_i <Z_i> through torch autograd (qbm:
`Circuit.run(readout="z")` and `backward`; lightning: a torch QNode with
diff_method="adjoint" and a sum-of-Z observable), time and peak memory. Median of
`--repeats` after one warm-up.

Each peer at its fastest documented setting (every setting listed is timed at the
forward state and the fastest kept, named per row): qsim `max_fused_gate_size` 2, 3, 4
(complex64; qsim has no double precision); Aer `precision` double and single (fusion on,
its default); qulacs and lightning have one setting (complex128). qbm runs f64 and,
beside it, f32 (`precision="f32"`), with the total variation distance between the two
output distributions. Conventions are checked first at n = 8: each simulator's probabilities must
equal qbm's (1e-10 at double precision, 1e-5 at single; Aer and qulacs number qubits from
the least significant bit, qulacs rotates by exp(+i a P / 2), so qubits are mirrored and
its angles negated).

Every simulator runs in its own subprocess with 1 thread (QBM_NUM_THREADS,
OMP_NUM_THREADS, Aer's max_parallel_threads, qsim's cpu_threads). Peak memory: the
process's VmHWM after the timed calls minus its resident size after imports and set-up
(the peak is reset with /proc/self/clear_refs before the calls).

    python benches/circuits_large.py [--n 12 16 20 22 24] [--repeats 3] [--sims ...] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import fastest, median_time, print_core, print_table, write_json  # noqa: E402

SIMS = ("qbm", "qsim", "aer", "qulacs", "lightning")
CIRCUITS = ("qcbm", "brick")
SHOTS = 10_000


def _tolerance(sim: str, setting: str) -> float:
    """The convention check's bound on max |p - p_qbm|: 1e-5 for single precision (qsim,
    Aer's "single"), 1e-10 for double."""
    return 1e-5 if sim == "qsim" or setting == "single" else 1e-10


def gates(kind: str, n: int, seed: int = 0) -> list[tuple[str, tuple[int, ...], float | None]]:
    """(name, qubits, angle) in qbm's convention (qubit 0 most significant)."""
    rng = np.random.default_rng(seed)
    out: list[tuple[str, tuple[int, ...], float | None]] = []
    if kind == "qcbm":
        from qbm.models.qcbm import QCBM

        c = QCBM(n).circuit
        theta = rng.uniform(0, 2 * math.pi, c.num_params)
        for g in c.gates:
            out.append((g.name, tuple(g.qubits), None if g.param is None else float(theta[g.param])))
        return out
    for layer in range(20):
        for q in range(n):
            out.append(("rx", (q,), float(rng.uniform(0, 2 * math.pi))))
            out.append(("ry", (q,), float(rng.uniform(0, 2 * math.pi))))
        for q in range(layer % 2, n - 1, 2):
            out.append(("cz", (q, q + 1), None))
    return out


# ---------------------------------------------------------------- simulators
class QbmSim:
    settings = ("f64",)

    def __init__(self, n: int, gl: list, setting: str) -> None:
        import torch

        from qbm.quantum import engine
        from qbm.quantum.circuit import Circuit

        torch.set_num_threads(1)
        self.engine, self.n = engine, n
        c, angles = Circuit(n), []
        for name, qs, a in gl:
            if a is None:
                getattr(c, name)(*qs)
            else:
                c.rot(name, qs[0])
                angles.append(a)
        self.c, self.theta = c, torch.tensor(angles, dtype=torch.float64)
        self.comp = engine.compile_circuit(c)
        self.a = np.ascontiguousarray(self.comp.angles(self.theta[None, :]).numpy())
        self.precision = setting

    def forward(self) -> np.ndarray:
        if self.precision == "f32":
            return self.comp.program.states_f32(self.a, None)
        return self.comp.program.states(self.a, None)

    def probs(self) -> np.ndarray:
        return self.c.run(self.theta, readout="probs", precision=self.precision).numpy()

    def shots(self) -> np.ndarray:
        return self.c.sample(self.theta, SHOTS, 1, precision=self.precision)

    def grad(self):
        theta = self.theta.clone().requires_grad_(True)
        self.c.run(theta, readout="z").sum().backward()
        return theta.grad


class QsimSim:
    settings = ("fuse2", "fuse3", "fuse4")

    def __init__(self, n: int, gl: list, setting: str) -> None:
        import cirq
        import qsimcirq

        self.cirq = cirq
        qs = cirq.LineQubit.range(n)
        table = {"rx": cirq.rx, "ry": cirq.ry, "rz": cirq.rz}
        ops = []
        for name, q, a in gl:
            if name in table:
                ops.append(table[name](a).on(qs[q[0]]))
            else:
                ops.append({"cx": cirq.CNOT, "cz": cirq.CZ}[name](qs[q[0]], qs[q[1]]))
        self.circuit = cirq.Circuit(ops)
        self.measured = self.circuit + cirq.measure(*qs, key="m")
        self.sim = qsimcirq.QSimSimulator(qsimcirq.QSimOptions(cpu_threads=1, max_fused_gate_size=int(setting[-1])))

    def forward(self):
        return self.sim.simulate(self.circuit).final_state_vector

    def probs(self) -> np.ndarray:
        return np.abs(self.forward()) ** 2  # cirq: qubit 0 most significant

    def shots(self):
        return self.sim.run(self.measured, repetitions=SHOTS)


class AerSim:
    settings = ("double", "single")

    def __init__(self, n: int, gl: list, setting: str) -> None:
        from qiskit import QuantumCircuit
        from qiskit_aer import AerSimulator

        self.n = n
        qc = QuantumCircuit(n)
        m = lambda q: n - 1 - q  # noqa: E731  (Aer: qubit 0 least significant)
        for name, q, a in gl:
            if a is not None:
                getattr(qc, name)(a, m(q[0]))
            else:
                getattr(qc, name)(m(q[0]), m(q[1]))
        self.state_circ = qc.copy()
        self.state_circ.save_statevector()
        self.shot_circ = qc.copy()
        self.shot_circ.measure_all()
        self.sim = AerSimulator(method="statevector", precision=setting, max_parallel_threads=1)

    def forward(self):
        return self.sim.run(self.state_circ, shots=1).result().get_statevector()

    def probs(self) -> np.ndarray:
        return np.abs(np.asarray(self.forward())) ** 2  # qubits mirrored: the index is qbm's

    def shots(self):
        return self.sim.run(self.shot_circ, shots=SHOTS).result().get_counts()


class QulacsSim:
    settings = ("c128",)

    def __init__(self, n: int, gl: list, setting: str) -> None:
        from qulacs import QuantumCircuit, QuantumState
        from qulacs import gate as qg

        self.n, self.state = n, QuantumState(n)
        c = QuantumCircuit(n)
        m = lambda q: n - 1 - q  # noqa: E731
        rot = {"rx": qg.RX, "ry": qg.RY, "rz": qg.RZ}
        for name, q, a in gl:
            if a is not None:
                c.add_gate(rot[name](m(q[0]), -a))  # qulacs: exp(+i a P / 2)
            elif name == "cx":
                c.add_gate(qg.CNOT(m(q[0]), m(q[1])))
            else:
                c.add_gate(qg.CZ(m(q[0]), m(q[1])))
        self.c = c

    def forward(self):
        self.state.set_zero_state()
        self.c.update_quantum_state(self.state)
        return self.state

    def probs(self) -> np.ndarray:
        return np.abs(self.forward().get_vector()) ** 2  # qubits mirrored: the index is qbm's

    def shots(self):
        return self.forward().sampling(SHOTS, 1)


class LightningSim:
    settings = ("c128",)

    def __init__(self, n: int, gl: list, setting: str) -> None:
        import pennylane as qml

        self.qml, self.gl, self.n = qml, gl, n
        ops = self.ops([a for _, _, a in gl if a is not None])
        self.dev = qml.device("lightning.qubit", wires=n)
        self.state_tape = qml.tape.QuantumScript(ops, [qml.state()])
        self.shot_tape = qml.tape.QuantumScript(ops, [qml.counts(wires=range(n))], shots=SHOTS)

    def ops(self, angles) -> list:
        """The circuit's operations with `angles` for its rotations, in order (inside a
        QNode they are recorded as they are made)."""
        qml, out, k = self.qml, [], 0
        for name, q, a in self.gl:
            if a is None:
                out.append({"cx": qml.CNOT, "cz": qml.CZ}[name](wires=list(q)))
            else:
                out.append({"rx": qml.RX, "ry": qml.RY, "rz": qml.RZ}[name](angles[k], wires=q[0]))
                k += 1
        return out

    def grad(self):
        import torch

        qml = self.qml
        angles = [a for _, _, a in self.gl if a is not None]
        theta = torch.tensor(angles, dtype=torch.float64, requires_grad=True)

        @qml.qnode(self.dev, diff_method="adjoint", interface="torch")
        def f(t):
            self.ops(t)
            return qml.expval(qml.sum(*[qml.Z(i) for i in range(self.n)]))

        f(theta).backward()
        return theta.grad

    def forward(self):
        return self.qml.execute([self.state_tape], self.dev, diff_method=None)[0]

    def probs(self) -> np.ndarray:
        return np.abs(np.asarray(self.forward())) ** 2  # wire 0 most significant

    def shots(self):
        return self.qml.execute([self.shot_tape], self.dev, diff_method=None)[0]


CLASSES = {"qbm": QbmSim, "qsim": QsimSim, "aer": AerSim, "qulacs": QulacsSim, "lightning": LightningSim}


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _peak_mb(fn, base_kb: int) -> float:
    """Peak resident memory (MB) of one call of `fn` above `base_kb` (VmHWM reset first)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return float("nan")
    fn()
    return (_rss_kb("VmHWM") - base_kb) / 1024


def worker(sim: str, n: int, repeats: int) -> dict:
    cls = CLASSES[sim]
    if n == 8:  # the convention check
        out = {}
        for kind in CIRCUITS:
            gl = gates(kind, n)
            ref = QbmSim(n, gl, "f64").probs()
            for setting in cls.settings:
                p = np.asarray(cls(n, gl, setting).probs(), dtype=np.float64).ravel()
                out[f"{kind}/{setting}"] = float(np.abs(p - ref).max())
        return {"sim": sim, "check": out}
    rows = []
    for kind in CIRCUITS:
        gl = gates(kind, n)
        sims = {s: cls(n, gl, s) for s in cls.settings}
        base = _rss_kb("VmRSS")
        best, t_fwd, per = fastest({s: sims[s].forward for s in sims}, repeats)
        t_shots = median_time(sims[best].shots, repeats)
        peak = _peak_mb(sims[best].forward, base)
        row = {"circuit": kind, "gates": len(gl), "setting": best, "forward": t_fwd, "shots": t_shots,
               "settings": per, "peak_mb": peak}  # fmt: skip
        if kind == "qcbm" and hasattr(cls, "grad"):  # gradient of sum_i <Z_i> (adjoint methods)
            g_sim = sims[best]
            row["grad"] = median_time(g_sim.grad, max(1, repeats - 1))
            row["grad_peak_mb"] = _peak_mb(g_sim.grad, base)
        if sim == "qbm":  # the f32 path beside, and how far its distribution lies from f64's
            s32 = QbmSim(n, gl, "f32")
            row["forward_f32"] = median_time(s32.forward, repeats)
            row["shots_f32"] = median_time(s32.shots, repeats)
            p32, p64 = s32.probs(), sims[best].probs()
            row["tvd_f32_f64"] = 0.5 * float(np.abs(p32 - p64).sum())
            del s32
        rows.append(row)
        del sims
    return {"sim": sim, "n": n, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[12, 16, 20, 22, 24])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sims", nargs="+", default=list(SIMS), choices=SIMS)
    ap.add_argument("--out", default="bench-results")
    ap.add_argument("--worker", nargs=2, metavar=("SIM", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    print_core()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.repeats)))
        return
    env = dict(os.environ, QBM_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")

    def call(sim: str, n: int) -> dict | None:
        t0 = time.perf_counter()
        cmd = [sys.executable, __file__, "--worker", sim, str(n), "--repeats", str(args.repeats)]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            print(f"  {sim} n={n}: failed\n{r.stderr[-2000:]}", file=sys.stderr)
            return None
        print(f"  {sim} n={n}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        return json.loads(r.stdout.strip().splitlines()[-1])

    print("convention check at n = 8 (max |p - p_qbm| per circuit and setting):")
    ok = set()
    for sim in args.sims:
        res = call(sim, 8)
        if res is None:
            continue
        bad = {k: v for k, v in res["check"].items() if v > _tolerance(sim, k.split("/")[1])}
        verdict = "  FAIL: its probabilities differ from qbm's; not timed" if bad else ""
        print(f"  {sim}: " + ", ".join(f"{k} {v:.1e}" for k, v in res["check"].items()) + verdict)
        if not bad:
            ok.add(sim)
    results = [r for n in args.n for sim in args.sims if sim in ok for r in [call(sim, n)] if r]
    by = {(r["sim"], r["n"], row["circuit"]): row for r in results for row in r["rows"]}
    table = []
    for n in args.n:
        for kind in CIRCUITS:
            q = by.get(("qbm", n, kind))
            if not q:
                continue
            line = {"n": n, "circuit": kind, "qbm fwd s": q["forward"], "qbm shots s": q["shots"],
                    "qbm MB": q["peak_mb"], "qbm32 fwd s": q["forward_f32"], "qbm32 shots s": q["shots_f32"],
                    "TVD(f32, f64)": q["tvd_f32_f64"]}  # fmt: skip
            for sim in SIMS[1:]:
                p = by.get((sim, n, kind))
                if p:
                    line[f"{sim} fwd/qbm"] = p["forward"] / q["forward"]
                    line[f"{sim} shots/qbm"] = p["shots"] / q["shots"]
                    line[f"{sim} fwd/qbm32"] = p["forward"] / q["forward_f32"]
                    line[f"{sim} shots/qbm32"] = p["shots"] / q["shots_f32"]
                    line[f"{sim} MB"] = p["peak_mb"]
                    line[f"{sim} setting"] = p["setting"]
            table.append(line)
    print("\nforward state and 1e4 shots, 1 thread each, median of repeats; peer/qbm > 1: qbm (f64) faster")
    cols = ["n", "circuit", "qbm fwd s", "qbm shots s"]
    for sim in SIMS[1:]:
        cols += [f"{sim} fwd/qbm", f"{sim} shots/qbm"]
    print_table(table, cols)
    print("\nthe same against qbm at f32 (peer/qbm32 > 1: qbm f32 faster); TVD between qbm's f32 and f64 distributions")
    cols = ["n", "circuit", "qbm32 fwd s", "qbm32 shots s", "TVD(f32, f64)"]
    for sim in SIMS[1:]:
        cols += [f"{sim} fwd/qbm32", f"{sim} shots/qbm32"]
    print_table(table, cols)
    print("\npeak MB above set-up (forward state) and each peer's fastest setting:")
    mcols = ["n", "circuit", "qbm MB"] + [c for sim in SIMS[1:] for c in (f"{sim} MB", f"{sim} setting")]
    print_table(table, mcols)
    grad_rows = []
    for n in args.n:
        q = by.get(("qbm", n, "qcbm"))
        lt = by.get(("lightning", n, "qcbm"))
        if q and "grad" in q:
            line = {"n": n, "qbm grad s": q["grad"], "qbm grad MB": q["grad_peak_mb"]}
            if lt and "grad" in lt:
                line.update({"lightning grad s": lt["grad"], "lightning grad MB": lt["grad_peak_mb"],
                             "lightning/qbm time": lt["grad"] / q["grad"],
                             "qbm/lightning MB": q["grad_peak_mb"] / lt["grad_peak_mb"]})  # fmt: skip
            grad_rows.append(line)
    print("\ngradient of sum_i <Z_i>, qcbm circuit (adjoint methods, torch autograd), 1 thread; peak MB above set-up")
    print_table(grad_rows, ["n", "qbm grad s", "lightning grad s", "lightning/qbm time", "qbm grad MB",
                            "lightning grad MB", "qbm/lightning MB"])  # fmt: skip
    write_json(os.path.join(args.out, "circuits_large.json"), {"runs": results, "table": table, "grad": grad_rows})


if __name__ == "__main__":
    main()
