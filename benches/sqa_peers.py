"""SQA against the peers' path-integral samplers (used by benches/samplers.py; also runs
alone: ``python benches/sqa_peers.py [--quick]``).

1. Time to the TV floor at fixed s on a 5-spin model held out from the tests
   (s = 0.7, Gamma = 1.5, beta = 3): for growing sweep counts, total variation of the
   returned states to the exact target, and the wall time of the first run within the
   sampling floor (the TV that exact samples of the same size show, 97.5th percentile).
   Targets: qbm discrete time (cluster moves, P = 64) -> the exact P-slice marginal
   (transfer matrix); qbm continuous time, openjij CSQASampler and dwave-samplers
   PathIntegralAnnealingSampler -> the diagonal of exp(-beta H(s)) (exact
   diagonalisation); openjij SQASampler (P = 64) returns the lowest-energy slice of each
   read, which is not a sample of that marginal: its TV is reported for that marginal
   with that caveat. openjij 0.12's CSQASampler (only its sample_ising works) returned
   P(+1) ~ 0.5 on a one-spin model whose exact P(+1) is 0.23: its states do not follow
   the longitudinal field, so its TV does not fall with sweeps. Conventions mapped on a
   one-spin model: openjij beta, gamma and
   schedule [(s, sweeps)] are H(s) = s H_p + (1 - s) Gamma sum X; dwave-samplers
   Hp_field = beta s, Hd_field = beta (1 - s) Gamma, Gamma = 1.
2. Ground-state success on Z(4) glasses at equal wall time: each method anneals s from
   0.01 to 1 (beta = 5, Gamma = 1); the probability that one read reaches the reference
   ground energy (best of a long simulated-annealing run), the time per read, and the
   probability of at least one success within the same wall-time budget.
One thread everywhere (QBM_NUM_THREADS=1, OMP_NUM_THREADS=1).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from _common import print_table  # noqa: E402

warnings.filterwarnings("ignore")


def _states(n):
    from helpers import all_states

    return all_states(n)


def _index(spins):
    from helpers import state_index

    return state_index(np.asarray(spins, dtype=np.int8))


def tfim_diagonal(model, beta, gamma, s):
    n = model.num_variables
    st = _states(n)
    H = np.diag(s * model.energy(st)).astype(float)
    for i in range(n):
        f = st.copy()
        f[:, i] *= -1
        H[np.arange(2**n), _index(f)] -= (1 - s) * gamma
    w, v = np.linalg.eigh(H)
    d = np.diag((v * np.exp(-beta * (w - w.min()))) @ v.T)
    return d / d.sum()


def trotter_marginal(model, beta, gamma, s, P):
    from qbm.samplers import trotter_coupling

    z = _states(model.num_variables).astype(float)
    e = model.energy(z.astype(np.int8))
    K = trotter_coupling(beta, gamma, s, P)
    M = np.exp(-beta * s / P * (e - e.min()))[:, None] * np.exp(K * (z @ z.T - z.shape[1]))
    d = np.diag(np.linalg.matrix_power(M / np.abs(M).max(), P))
    return d / d.sum()


def tv(spins, p):
    q = np.bincount(_index(spins), minlength=len(p)) / len(spins)
    return 0.5 * float(np.abs(q - p).sum())


def floor(p, reads, seed=0):
    rng = np.random.default_rng(seed)
    vals = [0.5 * np.abs(rng.multinomial(reads, p) / reads - p).sum() for _ in range(200)]
    return float(np.quantile(vals, 0.975))


def _samplers(model, beta, gamma, s, P, reads):
    """name -> (callable(sweeps, seed) -> spins, target name)."""
    import dimod

    from qbm.samplers import SQASampler

    q = SQASampler(num_threads=1)
    bqm = model.to_bqm()
    labels = list(model.labels)
    out = {
        f"qbm discrete (cluster, P={P})": (
            lambda S, seed: (
                q.sample_model(
                    model, beta=beta, gamma=gamma, s=s, num_trotter_slices=P, num_sweeps=S, num_reads=reads, seed=seed
                ).spins
            ),
            "trotter",
        ),
        "qbm continuous time": (
            lambda S, seed: (
                q.sample_model(
                    model, beta=beta, gamma=gamma, s=s, num_sweeps=S, num_reads=reads, seed=seed, continuous_time=True
                ).spins
            ),
            "exact",
        ),
    }
    try:
        import openjij as oj

        h_, j_ = dict(bqm.linear), dict(bqm.quadratic)

        def oj_run(cls, extra):
            # CSQASampler only implements sample_ising (its inherited sample() rejects its own params)
            def f(S, seed):
                r = cls().sample_ising(h_, j_, beta=beta, gamma=gamma, schedule=[(s, S)], num_reads=reads, seed=seed,
                                       **extra)  # fmt: skip
                cols = [list(r.variables).index(v) for v in labels]
                return dimod.as_samples((r.record.sample, list(r.variables)))[0][:, cols]

            return f

        out[f"openjij SQASampler (P={P}, lowest slice)"] = (oj_run(oj.SQASampler, {"trotter": P}), "exact")
        out["openjij CSQASampler"] = (oj_run(oj.CSQASampler, {}), "exact")
    except ImportError:
        print("openjij not installed: its samplers are skipped")
    try:
        from dwave.samplers import PathIntegralAnnealingSampler

        pimc = PathIntegralAnnealingSampler()

        def pimc_run(S, seed):
            ss = pimc.sample(bqm, num_reads=reads, Hp_field=[beta * s] * S, Hd_field=[beta * (1 - s) * gamma] * S,
                             Gamma=1.0, seed=seed, beta_schedule_type="custom")  # fmt: skip
            return ss.record.sample[:, [list(ss.variables).index(v) for v in labels]]

        out["dwave-samplers PathIntegralAnnealingSampler"] = (pimc_run, "exact")
    except ImportError:
        print("dwave-samplers not installed: PIMC skipped")
    return out


def time_to_floor(args):
    from helpers import random_frustrated

    model = random_frustrated(5, seed=101, h_scale=0.5)  # not one of the test models
    beta, gamma, s, P, reads = 3.0, 1.5, 0.7, 64, args.reads
    targets = {"exact": tfim_diagonal(model, beta, gamma, s), "trotter": trotter_marginal(model, beta, gamma, s, P)}
    floors = {k: floor(p, reads) for k, p in targets.items()}
    rows = []
    for name, (fn, tgt) in _samplers(model, beta, gamma, s, P, reads).items():
        reached, trace = None, []
        for S in args.sweeps:
            t0 = time.perf_counter()
            spins = fn(S, 1)
            dt = time.perf_counter() - t0
            d = tv(spins, targets[tgt])
            trace.append(f"{S}:{d:.3f}")
            if reached is None and d <= floors[tgt]:
                reached = (S, dt)
        rows.append({"sampler": name, "target": tgt, "TV by sweeps": " ".join(trace),
                     "sweeps to floor": reached[0] if reached else None,
                     "seconds to floor": reached[1] if reached else None})  # fmt: skip
    print(f"\nTime to the TV floor: 5 spins, s={s}, Gamma={gamma}, beta={beta}, {reads} reads, one thread "
          f"(floor {floors['exact']:.3f} exact / {floors['trotter']:.3f} P={P})")  # fmt: skip
    print_table(rows, ["sampler", "target", "sweeps to floor", "seconds to floor", "TV by sweeps"])
    return rows


def _anneal_methods(model, sched, inst):
    from qbm.samplers import SQASampler

    def qbm_discrete(r):
        return (
            SQASampler(num_threads=1)
            .sample_model(model, beta=5.0, gamma=1.0, num_trotter_slices=8, s_schedule=sched, num_reads=r, seed=inst)
            .energies
        )

    def qbm_ct(r):
        return (
            SQASampler(num_threads=1)
            .sample_model(model, beta=5.0, gamma=1.0, s_schedule=sched, num_reads=r, seed=inst, continuous_time=True)
            .energies
        )

    methods = {"qbm SQA cluster P=8": qbm_discrete, "qbm SQA continuous": qbm_ct}
    try:
        import openjij as oj

        bqm = model.to_bqm()
        sch = [(float(x), 1) for x in sched]

        def ojs(r):
            return oj.SQASampler().sample(bqm, beta=5.0, gamma=1.0, schedule=sch, trotter=8, num_reads=r,
                                          seed=inst).record.energy  # fmt: skip

        methods["openjij SQASampler P=8"] = ojs
    except ImportError:
        pass
    return methods


def ground_states(args):
    from qbm.problems import spin_glass, zephyr_graph
    from qbm.samplers import SimulatedAnnealingSampler

    rows = []
    for inst in range(args.instances):
        model = spin_glass(zephyr_graph(4, 4), seed=100 + inst)
        ref = SimulatedAnnealingSampler().sample_model(model, num_reads=256, num_sweeps=20000, seed=inst).energies.min()
        S = args.anneal_sweeps
        sched = np.linspace(0.01, 1.0, S)
        methods = _anneal_methods(model, sched, inst)
        for name, fn in methods.items():
            t0 = time.perf_counter()
            e = np.asarray(fn(args.gs_reads), dtype=float)
            per_read = (time.perf_counter() - t0) / args.gs_reads
            p = float(np.mean(e <= ref + 1e-6))
            budget_reads = args.budget / per_read
            rows.append({"instance": inst, "method": name, "p(success)/read": p, "s/read": per_read,
                         f"P(success in {args.budget:g} s)": 1 - (1 - p) ** budget_reads,
                         "residual E/spin (median)": float(np.median(e - ref)) / model.num_variables})  # fmt: skip
    print(f"\nGround states on Z(4) glasses ({args.anneal_sweeps}-sweep anneals, reference: best of a long SA run)")
    print_table(
        rows,
        [
            "instance",
            "method",
            "p(success)/read",
            "s/read",
            f"P(success in {args.budget:g} s)",
            "residual E/spin (median)",
        ],
    )
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reads", type=int, default=4000)
    ap.add_argument("--sweeps", type=int, nargs="+", default=[5, 10, 20, 50, 100, 200])
    ap.add_argument("--instances", type=int, default=2)
    ap.add_argument("--anneal-sweeps", type=int, default=1000)
    ap.add_argument("--gs-reads", type=int, default=32)
    ap.add_argument("--budget", type=float, default=1.0, help="wall-time budget (s) for the success probability")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    os.environ["QBM_NUM_THREADS"] = "1"
    if a.quick:
        a.reads, a.sweeps, a.instances, a.gs_reads = 1000, [10, 50], 1, 8
    return {"time_to_floor": time_to_floor(a), "ground_states": ground_states(a)}


if __name__ == "__main__":
    main()
