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
   the longitudinal field, so its TV does not fall with sweeps. Given a seed, openjij
   0.12's SQASampler returns the same read num_reads times (200 reads of a 5-spin model:
   one distinct state), so it runs unseeded here. Conventions mapped on a
   one-spin model: openjij beta, gamma and
   schedule [(s, sweeps)] are H(s) = s H_p + (1 - s) Gamma sum X; dwave-samplers
   Hp_field = beta s, Hd_field = beta (1 - s) Gamma, Gamma = 1.
2. Ground-state success on Z(4) +-1 glasses (h = 0) at equal wall time: each method
   anneals s linearly from 0.01 to 1 (beta = 20, Gamma = 3, P = 8 where discrete) at
   each anneal length, with the same wall-time budget of one core per method and length;
   the probability that one read reaches the reference ground energy (the lowest energy
   any method or a long simulated-annealing run found), seconds per read, TTS99, and the
   successes within the budget. Discrete-time methods (qbm and openjij) report the
   lowest-energy slice of each read, continuous time the state at imaginary time 0.
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
from _common import print_core, print_table  # noqa: E402

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

        def oj_run(cls, extra, seeded=True):
            # CSQASampler only implements sample_ising (its inherited sample() rejects its own params)
            def f(S, seed):
                r = cls().sample_ising(h_, j_, beta=beta, gamma=gamma, schedule=[(s, S)], num_reads=reads,
                                       seed=seed if seeded else None, **extra)  # fmt: skip
                cols = [list(r.variables).index(v) for v in labels]
                return dimod.as_samples((r.record.sample, list(r.variables)))[0][:, cols]

            return f

        # unseeded: given a seed, openjij 0.12's SQASampler returns one read num_reads times
        out[f"openjij SQASampler (P={P}, lowest slice)"] = (oj_run(oj.SQASampler, {"trotter": P}, False), "exact")
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


def floor_model():
    """The 5-spin model of part 1 (not one of the test models)."""
    from helpers import random_frustrated

    return random_frustrated(5, seed=101, h_scale=0.5)


def time_to_floor(args):
    model = floor_model()
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


def _anneal_methods(model, beta, gamma, P):
    """name -> f(sweeps, reads, seed) returning final energies; one thread each."""
    from qbm.samplers import SQASampler

    q = SQASampler(num_threads=1)

    def qbm(**kw):
        # discrete time: the lowest-energy slice of each read, as openjij returns (an
        # optimiser keeps the best state it saw); continuous time: the state at time 0
        slices = kw.get("continuous_time") is not True

        def f(S, r, seed):
            sched = np.linspace(0.01, 1.0, S)
            res = q.sample_model(model, beta=beta, gamma=gamma, s_schedule=sched, num_reads=r, seed=seed,
                                 return_slices=slices, **kw)  # fmt: skip
            return res.energies.reshape(r, -1).min(axis=1)

        return f

    methods = {
        f"qbm SQA cluster moves P={P}": qbm(num_trotter_slices=P),
        f"qbm SQA local moves P={P}": qbm(num_trotter_slices=P, moves="local"),
        "qbm SQA continuous time": qbm(continuous_time=True),
    }
    try:
        import openjij as oj

        bqm = model.to_bqm()

        def ojs(S, r, seed):
            # unseeded: given a seed, openjij 0.12's SQASampler returns one read num_reads times
            sch = [(float(x), 1) for x in np.linspace(0.01, 1.0, S)]
            return oj.SQASampler().sample(bqm, beta=beta, gamma=gamma, schedule=sch, trotter=P,
                                          num_reads=r).record.energy  # fmt: skip

        methods[f"openjij SQASampler P={P}"] = ojs
    except ImportError:
        pass
    return methods


def ct_rates(args):
    """Continuous-time SQA throughput in segment heat-bath moves per second (one thread):
    on the 5-spin model of part 1 and on a Z(4) glass at fixed s."""
    from qbm.problems import spin_glass, zephyr_graph
    from qbm.samplers import SQASampler

    q = SQASampler(num_threads=1)
    cases = [
        ("5 spins, s=0.7, Gamma=1.5, beta=3", floor_model(), 3.0, 1.5, 0.7, 200, 1000),
        ("Z(4) glass, s=0.5, Gamma=1, beta=5", spin_glass(zephyr_graph(4, 4), seed=0), 5.0, 1.0, 0.5, 20, 16),
    ]
    rows = []
    for name, model, beta, gamma, s, S, reads in cases:
        kw = dict(beta=beta, gamma=gamma, s=s, num_sweeps=S, num_reads=reads, seed=1, continuous_time=True)
        q.sample_model(model, **kw)  # warm-up
        rates, kinks = [], None
        for _ in range(args.ct_repeats):
            info = q.sample_model(model, **kw).info
            rates.append(info["timing"]["segment_moves_per_s"])
            kinks = info["mean_kinks_per_spin"]
        rows.append({"problem": name, "sweeps x reads": f"{S} x {reads}",
                     "segment moves/s (median)": float(np.median(rates)), "mean kinks per spin": kinks})  # fmt: skip
    print("\nqbm continuous-time SQA throughput (one thread)")
    print_table(rows, ["problem", "sweeps x reads", "segment moves/s (median)", "mean kinks per spin"])
    return rows


def ground_states(args):
    """Ground-state success on Z(4) +-1 glasses (h = 0) at equal wall time.

    Every (method, anneal length) gets the same wall-time budget per instance: reads are
    run in batches until the budget is spent. The reference ground energy is the lowest
    energy any method or a long simulated-annealing run found. Reported: success
    probability per read, seconds per read, TTS99 = t_read ln(0.01) / ln(1 - p) (the
    field's time to solution at 99% confidence) and successes within the budget."""
    from qbm.problems import spin_glass, zephyr_graph
    from qbm.samplers import SimulatedAnnealingSampler

    rows = []
    beta, gamma, P = args.gs_beta, args.gs_gamma, 8
    for inst in range(args.instances):
        model = spin_glass(zephyr_graph(4, 4), seed=100 + inst, h_scale=0.0, couplings="pm1")
        sa = SimulatedAnnealingSampler(num_threads=1).sample_model(model, num_reads=64, num_sweeps=20000, seed=inst)
        found = {}
        for name, fn in _anneal_methods(model, beta, gamma, P).items():
            for S in args.anneal_sweeps:
                if "continuous" in name and S > args.ct_max_sweeps:
                    continue
                energies, spent, batch = [], 0.0, 1
                while spent < args.budget:
                    t0 = time.perf_counter()
                    energies.extend(np.asarray(fn(S, batch, 1000 * inst + len(energies)), dtype=float))
                    spent += time.perf_counter() - t0
                    # grow batches towards what is left of the budget
                    per = spent / len(energies)
                    batch = int(max(1, min(64, (args.budget - spent) / per)))
                found[(name, S)] = (np.asarray(energies), spent / len(energies))
                print(f"  instance {inst}: {name}, {S} sweeps: {len(energies)} reads in {spent:.1f} s", flush=True)
        ref = min(sa.energies.min(), min(e.min() for e, _ in found.values()))
        for (name, S), (e, per_read) in found.items():
            p = float(np.mean(e <= ref + 1e-6))
            tts = per_read * np.log(0.01) / np.log1p(-p) if 0 < p < 1 else (per_read if p == 1 else float("inf"))
            rows.append({"instance": inst, "method": name, "sweeps": S, "reads": len(e), "p(success)/read": p,
                         "s/read": per_read, "TTS99 s": tts, "successes in budget": int(np.sum(e <= ref + 1e-6)),
                         "residual E (median)": float(np.median(e - ref))})  # fmt: skip
    print(f"\nGround states on Z(4) +-1 glasses (h = 0; beta={beta}, Gamma={gamma}, s linear 0.01 -> 1), "
          f"{args.budget:g} s of one core per method and anneal length; reference = lowest energy any method "
          f"or 64 x 20000-sweep SA reads found")  # fmt: skip
    print_table(rows, ["instance", "method", "sweeps", "reads", "p(success)/read", "s/read", "TTS99 s",
                       "successes in budget", "residual E (median)"])  # fmt: skip
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reads", type=int, default=4000)
    ap.add_argument("--sweeps", type=int, nargs="+", default=[5, 10, 20, 50, 100, 200])
    ap.add_argument("--instances", type=int, default=2)
    ap.add_argument("--anneal-sweeps", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--ct-max-sweeps", type=int, default=1000, help="longest continuous-time anneal tried")
    ap.add_argument("--gs-beta", type=float, default=20.0)
    ap.add_argument("--gs-gamma", type=float, default=3.0)
    ap.add_argument("--budget", type=float, default=20.0, help="wall-time budget (s) per method and anneal length")
    ap.add_argument("--ct-repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    print_core()
    os.environ["QBM_NUM_THREADS"] = "1"
    if a.quick:
        a.reads, a.sweeps, a.instances, a.anneal_sweeps, a.budget, a.ct_repeats = 1000, [10, 50], 1, [200], 2.0, 1
    return {"time_to_floor": time_to_floor(a), "ct_rates": ct_rates(a), "ground_states": ground_states(a)}


if __name__ == "__main__":
    main()
