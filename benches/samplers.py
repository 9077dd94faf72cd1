"""Throughput of qbm's samplers against peers, in the same run.

Part 1, fixed-beta Gibbs (spin updates per second).

Problems: spin glasses (J ~ U[-1,1], h ~ U[-0.1,0.1]) on Zephyr Z(4) (576 spins) and on
Z(12) with 4592 working qubits (Advantage2_system1-like). Each sampler does
num_reads x num_sweeps single-spin updates at fixed beta; we report the median over
repeats of spin updates per second and the ratio qbm / peer.

Peers: dwave-samplers SimulatedAnnealingSampler with beta_range=(beta, beta) (one
thread), openjij SASampler with beta_min = beta_max = beta, and a numpy colour-class
Gibbs sampler (all chains vectorised, one scipy.sparse product per colour class; BLAS
and numpy use every core).

Part 2, SQA against openjij's SQASampler at equal Trotter slices and reads: spin-slice
updates per second in steady state (the marginal rate between two sweep counts, so each
call's setup cancels), one thread each (qbm num_threads=1; openjij's OpenMP pool limited
to 1). qbm is timed with its default cluster moves, with local + worldline moves, and with
local Metropolis only (the single spin-slice flips openjij's SQASampler makes). openjij
returns the lowest-energy slice of each read, qbm a uniformly chosen one.

Part 4 (benches/sqa_peers.py): SQA time to the TV floor against openjij's SQASampler and
CSQASampler and dwave-samplers' PathIntegralAnnealingSampler, continuous-time segment
moves per second, and ground-state success (TTS99) on Z(4) +-1 glasses at equal wall time.

Part 3, parallel tempering against plain Gibbs on a frustrated Z(4) glass at low
temperature: effective sample size per second of the target-beta energy (Stan's
multi-chain ESS over the second half of 16 chains, which penalises chains stuck in
different valleys), and the mean energy each reaches.

Part 0, the training regime: a 32-spin RBM-shaped model (16 x 16), 128 chains, 10
sweeps per call, as a BM-VAE negative phase calls it thousands of times. Per-call time of
qbm's array API (``sample_model`` on a built model: Python and Rust), of the core call
alone, of dwave-samplers' SimulatedAnnealingSampler at fixed beta and of
dwave-pytorch-plugin's ``BlockSampler`` (torch, 2 colour classes) on the same model; the
rate is compared with qbm's per-core rate on Z(4), and measured again while another
process keeps one core busy.

    python benches/samplers.py [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import sys

import networkx as nx
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import check_mean_energy, fastest, median_time, print_core, print_table, write_json  # noqa: E402

from qbm import _core  # noqa: E402
from qbm.problems import advantage2_like_graph, spin_glass, zephyr_graph  # noqa: E402
from qbm.samplers import GibbsSampler  # noqa: E402


class NumpyColourGibbs:
    """Heat-bath Gibbs with all chains in one (n, R) array, one colour class at a time."""

    def __init__(self, model, graph_nodes_sorted, graph):
        idx = {v: k for k, v in enumerate(graph_nodes_sorted)}
        colours = nx.greedy_color(graph, strategy="largest_first")
        groups: dict[int, list[int]] = {}
        for v, c in colours.items():
            groups.setdefault(c, []).append(idx[v])
        self.classes = [np.array(sorted(g)) for g in groups.values()]
        J = model.J.tocsr().astype(np.float32)
        self.rows = [J[c] for c in self.classes]
        self.h = model.h.astype(np.float32)

    def sample(self, beta, num_reads, num_sweeps, seed):
        rng = np.random.default_rng(seed)
        n = self.h.shape[0]
        s = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=(n, num_reads))
        for _ in range(num_sweeps):
            for c, rows in zip(self.classes, self.rows):
                f = rows @ s + self.h[c, None]
                p_up = 1.0 / (1.0 + np.exp(2.0 * beta * f))
                s[c] = np.where(rng.random(f.shape, dtype=np.float32) < p_up, 1.0, -1.0)
        return s


def _busy_core():
    """Start a process that keeps one core busy; returns it (terminate() when done)."""
    import multiprocessing as mp
    import time

    p = mp.get_context("spawn").Process(target=_spin_forever, daemon=True)
    p.start()
    time.sleep(0.5)
    return p


def _spin_forever():
    x = 0
    while True:
        x += 1


def bench_small(args, z4_rate_1thr):
    """The training regime (see the module docstring)."""
    import torch

    from qbm import IsingModel

    rng = np.random.default_rng(0)
    nv = nh = 16
    W = rng.normal(size=(nv, nh)) * 0.3
    J = np.zeros((nv + nh, nv + nh))
    J[:nv, nv:] = W
    J = J + J.T
    h = rng.normal(size=nv + nh) * 0.1
    model = IsingModel(h, J)
    R, S, n = 128, 10, nv + nh
    updates = n * R * S
    reps = max(50, args.repeats * 40)
    out: dict[str, float] = {}

    def per_call(fn):
        return median_time(fn, reps, warmup=5)

    betas = np.ones(S)
    for label in ("idle", "one core busy"):
        busy = _busy_core() if label == "one core busy" else None
        try:
            for thr in sorted({1, _core.default_threads()}):
                g = GibbsSampler(num_threads=thr)
                out[f"qbm sample_model {thr} thr [{label}]"] = per_call(
                    lambda g=g: g.sample_model(model, num_reads=R, num_sweeps=S, seed=1)
                )
                out[f"qbm core call {thr} thr [{label}]"] = per_call(
                    lambda thr=thr: _core.sample_schedule(model.core, betas, R, seed=1, num_threads=thr)
                )
            # per-call overhead: the smallest call (8 chains, 1 sweep) through each layer
            out[f"qbm overhead sample_model (8 reads, 1 sweep) [{label}]"] = per_call(
                lambda: GibbsSampler(num_threads=1).sample_model(model, num_reads=8, num_sweeps=1, seed=1)
            )
            out[f"qbm overhead core call (8 reads, 1 sweep) [{label}]"] = per_call(
                lambda: _core.sample_schedule(model.core, betas[:1], 8, seed=1, num_threads=1)
            )
        finally:
            if busy is not None:
                busy.terminate()
    try:
        from dwave.samplers import SimulatedAnnealingSampler as DwaveSA

        bqm = model.to_bqm()
        d = DwaveSA()
        dw_times = {
            f"randomize_order={o}, {c}": per_call(
                lambda o=o, c=c: d.sample(bqm, beta_range=(1.0, 1.0), num_reads=R, num_sweeps=S, seed=1,
                                          beta_schedule_type="linear", randomize_order=o,
                                          proposal_acceptance_criteria=c)
            )
            for o in ((False, True) if args.peers_best else (False,))
            for c in (("Metropolis", "Gibbs") if args.peers_best else ("Metropolis",))
        }  # fmt: skip
        dw_best = min(dw_times, key=dw_times.get)
        print(f"  training regime: dwave-samplers SA settings (s per call): {dw_times} -> fastest: {dw_best}")
        out[f"dwave-samplers SA (fixed beta; {dw_best})"] = dw_times[dw_best]
    except ImportError:
        print("dwave-samplers not installed; skipped")
    try:
        from dwave.plugins.torch.models import GraphRestrictedBoltzmannMachine
        from dwave.plugins.torch.samplers import BlockSampler

        nodes = list(range(n))
        edges = [(i, nv + j) for i in range(nv) for j in range(nh)]
        # the plugin's energy is -(sum h s + sum J s s): negate qbm's parameters
        grbm = GraphRestrictedBoltzmannMachine(
            nodes,
            edges,
            linear={i: -float(h[i]) for i in nodes},
            quadratic={(i, nv + j): -float(W[i, j]) for i in range(nv) for j in range(nh)},
        )
        torch.set_num_threads(1)
        bs = BlockSampler(grbm, lambda v: int(v >= nv), R, schedule=[1.0] * S, seed=1)
        out["dwave-pytorch-plugin BlockSampler (torch, 1 thr)"] = per_call(lambda: bs.sample())
    except ImportError as e:
        print(f"dwave-pytorch-plugin not installed ({e}); skipped")
    rows = []
    base = out["qbm sample_model 1 thr [idle]"]
    for k, t in out.items():
        is_overhead = "overhead" in k
        rows.append(
            {
                "call": k,
                "us/call": t * 1e6,
                "updates/s": None if is_overhead else updates / t,
                "qbm1/this": None if is_overhead else t / base,
            }
        )
    print_table(rows, ["call", "us/call", "updates/s", "qbm1/this"])
    rate = updates / out["qbm core call 1 thr [idle]"]
    print(
        f"small-model rate (core, 1 thread) / Z(4) rate (1 thread) = {rate / z4_rate_1thr:.2f}; "
        f"sample_model overhead {out['qbm overhead sample_model (8 reads, 1 sweep) [idle]'] * 1e6:.0f} us per call"
    )
    return {"per_call_s": out, "rate_vs_z4": rate / z4_rate_1thr}


def _ordered(ss, labels):
    """A dimod-like response's samples as rows in ``labels`` order (an array is already in
    the model's index order, which is ``labels``)."""
    if isinstance(ss, np.ndarray):
        return ss
    cols = [list(ss.variables).index(v) for v in labels]
    return np.repeat(ss.record.sample[:, cols], ss.record.num_occurrences, axis=0)


def gibbs_peer_variants(model, beta, R, S, best=True, seed=1):
    """Each fixed-beta single-spin peer's documented settings (name -> call): all of them
    with ``best`` (the bench keeps the fastest and says which), else its default only.
    openjij 0.12 returns one read num_reads times when given a seed: the convention check
    runs it unseeded (``seed=None``)."""
    out = {}
    bqm = model.to_bqm()
    try:
        from dwave.samplers import SimulatedAnnealingSampler as DwaveSA

        d = DwaveSA()

        def dw(order, crit):
            return lambda: d.sample(bqm, beta_range=(beta, beta), num_reads=R, num_sweeps=S, seed=seed,
                                    randomize_order=order, proposal_acceptance_criteria=crit,
                                    beta_schedule_type="linear")  # fmt: skip

        v = {"sequential order, Metropolis (default)": dw(False, "Metropolis")}
        if best:
            v.update({"random order, Metropolis": dw(True, "Metropolis"), "sequential order, Gibbs": dw(False, "Gibbs"),
                      "random order, Gibbs": dw(True, "Gibbs")})  # fmt: skip
        out["dwave-samplers SA (fixed beta)"] = v
    except ImportError:
        print("dwave-samplers not installed; skipped")
    try:
        import openjij as oj

        h, J = dict(bqm.linear), dict(bqm.quadratic)
        o = oj.SASampler()

        def ojs(sparse):
            return lambda: o.sample_ising(h, J, beta_min=beta, beta_max=beta, num_sweeps=S, num_reads=R, seed=seed,
                                          sparse=sparse)  # fmt: skip

        v = {"dense (default)": ojs(False)}
        if best:
            v["sparse"] = ojs(True)
        out["openjij SA (fixed beta)"] = v
    except ImportError:
        print("openjij not installed; skipped (pip install .[bench])")
    try:
        out["ferrotherm (chromatic Gibbs)"] = {"sweep, 1 thread (default)": _ferrotherm_call(model, beta, R, S, seed)}
    except ImportError:
        print("ferrotherm not installed; skipped (pip install .[bench])")
    try:
        out["thrml (block Gibbs, JAX)"] = {"colour blocks, vmap over chains, jit": _thrml_call(model, beta, R, S, seed)}
    except ImportError:
        print("thrml not installed; skipped (pip install .[bench])")
    return out


def _upper_edges(model):
    """(i, j, J_ij) for i < j in the model's index order (qbm counts each pair once)."""
    c = model.J.tocoo()
    m = c.row < c.col
    return c.row[m], c.col[m], c.data[m]


def _ferrotherm_call(model, beta, R, S, seed):
    """ferrotherm (Rust, ctypes): one ``Sim`` per chain, ``sweep(S)`` chromatic Gibbs sweeps on
    one thread. Its energy is -sum J s s - sum h s, so qbm's h and J enter negated (checked
    against enumeration by :func:`check_peer_conventions`). The R chains are built once, outside
    the timed calls (building them from the spec is not timed); each call continues them by S
    sweeps and reads their states back."""
    import ferrotherm as ft

    ii, jj, vv = _upper_edges(model)
    spec = {"graph": {"n": int(model.num_variables),
                      "couplings": [[int(i), int(j), float(-v)] for i, j, v in zip(ii, jj, vv)],
                      "biases": [[int(i), float(-x)] for i, x in enumerate(model.h)]}}  # fmt: skip
    base = 0 if seed is None else int(seed) * 100_003
    sims = [ft.from_spec(spec, beta=beta, seed=base + k + 1) for k in range(R)]

    def call():
        for s_ in sims:
            s_.sweep(S, threads=1)
        return np.array([s_.spins for s_ in sims], dtype=np.int8)

    return call


def _thrml_call(model, beta, R, S, seed):
    """thrml (JAX): an ``IsingEBM`` (E = -beta (sum b s + sum J s s), so b = -h and the pair
    weights -J_ij), block Gibbs over the greedy colour classes, ``hinton_init`` starts, S
    sweeps, ``jax.vmap`` over the R chains under one ``jax.jit`` (compiled in the untimed
    warm-up call); XLA on one thread."""
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    import jax
    import jax.numpy as jnp
    from thrml import Block, SamplingSchedule, SpinNode, sample_states
    from thrml.models import IsingEBM, IsingSamplingProgram, hinton_init

    n = model.num_variables
    ii, jj, vv = _upper_edges(model)
    nodes = [SpinNode() for _ in range(n)]
    ebm = IsingEBM(nodes, [(nodes[i], nodes[j]) for i, j in zip(ii, jj)], jnp.asarray(-model.h, jnp.float32),
                   jnp.asarray(-vv, jnp.float32), jnp.array(beta, jnp.float32))  # fmt: skip
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(zip(ii.tolist(), jj.tolist()))
    classes: dict[int, list[int]] = {}
    for v, c in nx.greedy_color(g, strategy="largest_first").items():
        classes.setdefault(c, []).append(v)
    blocks = [Block([nodes[v] for v in sorted(c)]) for c in classes.values()]
    program = IsingSamplingProgram(ebm, blocks, clamped_blocks=[])
    schedule = SamplingSchedule(n_warmup=S - 1, n_samples=1, steps_per_sample=1)

    def one(key):
        k1, k2 = jax.random.split(key)
        return sample_states(k2, program, schedule, hinton_init(k1, ebm, blocks, ()), [], [Block(nodes)])[0][0]

    run = jax.jit(jax.vmap(one))
    counter = [0 if seed is None else int(seed) * 100_003]

    def call():
        counter[0] += 1
        out = np.asarray(run(jax.random.split(jax.random.key(counter[0]), R)).block_until_ready())
        return np.where(out, 1, -1).astype(np.int8)

    return call


def check_peer_conventions(beta=0.7):
    """Every Gibbs-type peer's samples at fixed beta against exact enumeration on a
    10-spin glass, before anything is timed (a flipped sign would time the wrong model)."""
    import networkx as nx

    small = spin_glass(nx.random_regular_graph(3, 10, seed=2), seed=3, h_scale=0.3)
    for peer, variants in gibbs_peer_variants(small, beta, 400, 200, best=True, seed=None).items():
        for setting, call in variants.items():
            check_mean_energy(f"{peer}, {setting}", _ordered(call(), small.labels), small, beta)


def bench_problem(name, graph, args, rows):
    model = spin_glass(graph, seed=0)
    n = model.num_variables
    R, S, beta = args.num_reads, args.num_sweeps, args.beta
    updates = n * R * S
    results, settings = {}, {}

    for threads in (1, _core.default_threads()):
        g = GibbsSampler(num_threads=threads)
        t = median_time(lambda g=g: g.sample_model(model, beta=beta, num_reads=R, num_sweeps=S, seed=1), args.repeats)
        results[f"qbm ({threads} thr)"] = updates / t

    # every setting probed once at a twentieth of the sweeps (openjij's dense mode costs
    # O(n) per update: minutes per call on Z(12)), the fastest then timed in full
    probe_s = max(2, S // 20)
    probes = gibbs_peer_variants(model, beta, R, probe_s, args.peers_best)
    full = gibbs_peer_variants(model, beta, R, S, args.peers_best)
    for peer, variants in probes.items():
        best, _, times = fastest(variants, 1)
        t = median_time(full[peer][best], args.repeats)
        results[peer] = updates / t
        settings[peer] = best
        if len(times) > 1:
            print(f"  {name}: {peer}: probe ({probe_s} sweeps) " + ", ".join(
                f"{k} {n * R * probe_s / v:.3g}/s" for k, v in times.items()) + f" -> fastest: {best}")  # fmt: skip

    nodes = sorted(graph.nodes)
    npg = NumpyColourGibbs(model, nodes, graph)
    t = median_time(lambda: npg.sample(beta, R, S, 1), args.repeats)
    results[f"numpy colour Gibbs ({len(npg.classes)} classes)"] = updates / t

    q1 = results["qbm (1 thr)"]
    qn = results[f"qbm ({_core.default_threads()} thr)"]
    peers = {k: v for k, v in results.items() if not k.startswith("qbm")}
    best_peer = max(peers.values()) if peers else float("nan")
    for k, v in results.items():
        rows.append({"problem": name, "sampler": k, "setting": settings.get(k, "-"), "updates/s": v,
                     "qbm1/this": q1 / v, "qbmN/this": qn / v})  # fmt: skip
    return {
        "problem": name,
        "n": n,
        "results": results,
        "qbm1_over_best_peer": q1 / best_peer,
        "thread_scaling": qn / q1,
    }


def steady_rate(call, updates_per_sweep, s1, s2, repeats, warmup=1):
    """Spin-slice updates per second in steady state: the marginal rate between s1 and
    s2 sweeps, (s2 - s1) sweeps / (t(s2) - t(s1)), so per-call setup (graph building,
    allocation, output) cancels. Also returns the setup time that implies and the
    whole-call rate at s2 sweeps (updates / wall time of the whole call, setup included:
    what a user timing one call sees)."""
    t1 = median_time(lambda: call(s1), repeats, warmup)
    t2 = median_time(lambda: call(s2), repeats, warmup=0)
    per_sweep = (t2 - t1) / (s2 - s1)
    return updates_per_sweep / per_sweep, t1 - s1 * per_sweep, updates_per_sweep * s2 / t2


def bench_sqa(name, graph, args, rows, oj_scale=1):
    """SQA spin-slice updates per second in steady state, one thread each.

    Rows: qbm's default (cluster moves), qbm local moves with worldline flips (the
    local default), qbm local moves without worldline flips (single spin-slice
    Metropolis, the moves openjij's SQASampler makes), qbm's default on all cores, and
    openjij's SQASampler with its OpenMP pool limited to one thread (on the large graph
    it takes ~0.5 s per sweep, so it runs 1/oj_scale of the sweeps, once each)."""
    from threadpoolctl import threadpool_limits

    from qbm.samplers import SQASampler

    model = spin_glass(graph, seed=0)
    n, P, R = model.num_variables, args.trotter, args.sqa_reads
    s1, s2 = args.sqa_sweeps, 5 * args.sqa_sweeps
    per_sweep = n * P * R
    base = dict(beta=5.0, gamma=1.0, num_trotter_slices=P, num_reads=R, seed=1)
    q1, qa = SQASampler(num_threads=1), SQASampler()
    variants = {
        "qbm SQA cluster moves, default (1 thr)": (q1, {}),
        "qbm SQA local + worldline moves (1 thr)": (q1, dict(moves="local")),
        "qbm SQA local Metropolis, openjij's moves (1 thr)": (
            q1,
            dict(moves="local", worldline=False, update="metropolis"),
        ),
        f"qbm SQA cluster moves ({_core.default_threads()} thr)": (qa, {}),
    }
    res, setup, whole, settings = {}, {}, {}, {}
    for label, (smp, kw) in variants.items():
        res[label], setup[label], whole[label] = steady_rate(
            lambda S, smp=smp, kw=kw: smp.sample_model(model, **base, num_sweeps=S, **kw),
            per_sweep,
            s1,
            s2,
            args.repeats,
        )
        print(f"  {name}: {label}: {res[label]:.3g} updates/s steady, {whole[label]:.3g} whole call", flush=True)
    bqm = model.to_bqm()
    try:
        import openjij as oj

        ojs = oj.SQASampler()
        modes = {"dense (default)": False, "sparse": True} if args.peers_best else {"dense (default)": False}
        oj_runs = {}
        with threadpool_limits(limits=1, user_api="openmp"):
            # each mode probed once at a few sweeps (dense costs O(n) per update on Z(12)); the
            # fastest is then timed in full
            probe = {}
            for mode, sparse in modes.items():
                probe[mode] = median_time(lambda sparse=sparse: ojs.sample(
                    bqm, beta=5.0, gamma=1.0, trotter=P, num_sweeps=5, num_reads=R, seed=1, sparse=sparse), 1,
                    warmup=0)  # fmt: skip
            print(f"  {name}: openjij SQA probes (5 sweeps, s): {probe}", flush=True)
            for mode in [min(probe, key=probe.get)]:
                sparse = modes[mode]
                oj_runs[mode] = steady_rate(
                    lambda S, sparse=sparse: ojs.sample(
                        bqm, beta=5.0, gamma=1.0, trotter=P, num_sweeps=S, num_reads=R, seed=1, sparse=sparse
                    ),
                    per_sweep,
                    max(1, s1 // oj_scale),
                    max(2, s2 // oj_scale),
                    min(args.repeats, 3) if oj_scale == 1 else 1,
                    warmup=0,
                )
                print(f"  {name}: openjij SQA {mode} (1 thr): {oj_runs[mode][0]:.3g} updates/s steady, "
                      f"{oj_runs[mode][2]:.3g} whole call", flush=True)  # fmt: skip
        best = max(oj_runs, key=lambda m: oj_runs[m][2])  # the fastest whole call
        oj = "openjij SQA (1 thr)"
        res[oj], setup[oj], whole[oj] = oj_runs[best]
        settings[oj] = best
    except ImportError:
        print("openjij not installed; SQA peer skipped")
    try:
        from dwave.samplers import PathIntegralAnnealingSampler

        pimc = PathIntegralAnnealingSampler()
        S = max(2, s2 // oj_scale)
        sched = np.linspace(0.0, 1.0, S)  # s from 0 to 1, dwave-samplers' fields: Hp = beta s, Hd = beta (1 - s) Gamma
        t = median_time(lambda: pimc.sample(bqm, num_reads=R, Hp_field=5.0 * sched, Hd_field=5.0 * (1 - sched),
                                            Gamma=1.0, seed=1, beta_schedule_type="custom"),
                        min(args.repeats, 3), warmup=0)  # fmt: skip
        pimc_label = "dwave-samplers PathIntegralAnnealingSampler (continuous time)"
        whole[pimc_label] = n * R * S / t  # per spin-sweep: it has no Trotter slices to count
        settings[pimc_label] = "whole call, spin-sweeps/s"
        print(f"  {name}: {pimc_label}: {whole[pimc_label]:.3g} spin-sweeps/s whole call "
              f"({R} reads x {S} sweeps in {t:.3g} s)", flush=True)  # fmt: skip
    except ImportError:
        print("dwave-samplers not installed; PIMC skipped")
    oj_rate = res.get("openjij SQA (1 thr)")
    oj_whole = whole.get("openjij SQA (1 thr)")
    qbm_sweep = whole["qbm SQA cluster moves, default (1 thr)"] / P  # spin-sweeps/s, whole call
    for k in whole:
        v = res.get(k)
        rows.append(
            {
                "problem": name,
                "sampler": k,
                "setting": settings.get(k, "-"),
                "updates/s": v,
                "setup s": setup.get(k),
                "this/openjij": v / oj_rate if (oj_rate and v) else None,
                "whole-call updates/s": whole[k] if k in res else None,
                "whole/openjij": whole[k] / oj_whole if (oj_whole and k in res) else None,
                "qbm/this, whole call per spin-sweep": qbm_sweep / (whole[k] / (P if k in res else 1)),
            }
        )
    default = res["qbm SQA cluster moves, default (1 thr)"]
    return {
        "problem": name,
        "results": res,
        "whole_call": whole,
        "setup_seconds": setup,
        "qbm1_whole_over_openjij": whole["qbm SQA cluster moves, default (1 thr)"] / oj_whole if oj_whole else None,
        "qbm1_over_openjij": default / oj_rate if oj_rate else None,
        "qbm1_local_over_openjij": res["qbm SQA local Metropolis, openjij's moves (1 thr)"] / oj_rate
        if oj_rate
        else None,
    }


def bench_pt(args):
    import time

    from qbm.metrics import effective_sample_size
    from qbm.samplers import ParallelTemperingSampler

    model = spin_glass(zephyr_graph(4, 4), seed=1)
    beta, R, S = args.pt_beta, 16, args.pt_sweeps
    out = {}
    t0 = time.perf_counter()
    g = GibbsSampler().sample_model(model, beta=beta, num_reads=R, num_sweeps=S, seed=2, record_energies=True)
    tg = time.perf_counter() - t0
    tr = g.info["energy_trace"][:, S // 2 :]
    out["gibbs"] = {"ess": effective_sample_size(tr), "seconds": tg, "mean_energy": float(tr.mean())}
    K = 16
    t0 = time.perf_counter()
    p = ParallelTemperingSampler().sample_model(
        model,
        beta=beta,
        beta_min=0.1,
        num_replicas=K,
        num_reads=R,
        num_sweeps=S,
        seed=2,
        adaptive=True,
        adapt_sweeps=S // 4,
        adapt_interval=max(1, S // 40),
        record_energies=True,
    )
    tp = time.perf_counter() - t0
    trp = p.info["energy_trace"][:, S // 2 :]
    out["pt"] = {
        "ess": effective_sample_size(trp),
        "seconds": tp,
        "mean_energy": float(trp.mean()),
        "swap_acceptance_min": float(p.info["swap_acceptance"].min()),
        "round_trips_per_read": float(p.info["round_trips"].mean()),
    }
    for k in out:
        out[k]["ess_per_s"] = out[k]["ess"] / out[k]["seconds"]
    out["ratio_pt_over_gibbs"] = out["pt"]["ess_per_s"] / out["gibbs"]["ess_per_s"]
    return out


def run_sqa_part(args):
    """Part 2: SQA against openjij, steady state and whole call (``--sqa-only`` runs just this)."""
    print(
        "\nSQA: spin-slice updates/s in steady state (marginal rate between %d and %d sweeps), P=%d, "
        "%d reads, beta=5, Gamma=1, s linear 0 -> 1"
        % (args.sqa_sweeps, 5 * args.sqa_sweeps, args.trotter, args.sqa_reads)
    )
    sqa_rows: list[dict] = []
    sqa = [bench_sqa("Z(4) 576 spins", zephyr_graph(4, 4), args, sqa_rows)]
    if not args.skip_z12:
        sqa.append(bench_sqa("Z(12) 4592 spins", advantage2_like_graph(12, 4, 4592), args, sqa_rows, oj_scale=10))
    print_table(
        sqa_rows,
        ["problem", "sampler", "setting", "updates/s", "setup s", "this/openjij", "whole-call updates/s",
         "whole/openjij", "qbm/this, whole call per spin-sweep"],
    )
    for s_ in sqa:
        if s_["qbm1_over_openjij"]:
            print(
                f"{s_['problem']}: per core, qbm SQA default (cluster moves) / openjij SQA = "
                f"{s_['qbm1_over_openjij']:.1f}x in steady state, {s_['qbm1_whole_over_openjij']:.1f}x whole call "
                f"({5 * args.sqa_sweeps} sweeps, setup included); same moves (local Metropolis) / openjij = "
                f"{s_['qbm1_local_over_openjij']:.1f}x steady"
            )
    return sqa


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-reads", type=int, default=100)
    p.add_argument("--num-sweeps", type=int, default=1000)
    p.add_argument("--beta", type=float, default=1.0)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="fewer sweeps and repeats (smoke run)")
    p.add_argument("--skip-z12", action="store_true")
    p.add_argument("--trotter", type=int, default=8)
    p.add_argument("--sqa-sweeps", type=int, default=100)
    p.add_argument("--sqa-reads", type=int, default=20)
    p.add_argument("--pt-beta", type=float, default=2.0)
    p.add_argument("--pt-sweeps", type=int, default=4000)
    p.add_argument("--skip-sqa-peers", action="store_true", help="skip Part 4 (benches/sqa_peers.py)")
    p.add_argument("--sqa-only", action="store_true", help="run only Part 2 (SQA vs openjij) and exit")
    p.add_argument("--out", default=None, help="directory for samplers.json and samplers.png")
    p.add_argument(
        "--peers-best",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="time every documented setting of each peer and keep the fastest (--no-peers-best: defaults only)",
    )
    args = p.parse_args()
    if args.quick:
        args.num_sweeps, args.repeats, args.sqa_sweeps, args.pt_sweeps = 100, 1, 20, 400
    print(
        f"qbm core simd={_core.simd_level()}, cores={_core.default_threads()}; "
        f"{args.num_reads} reads x {args.num_sweeps} sweeps at beta={args.beta}; median of {args.repeats}"
    )
    print_core()
    if args.sqa_only:
        run_sqa_part(args)
        return
    print("peer sign conventions against exact enumeration (10-spin glass, fixed beta):")
    check_peer_conventions()
    rows: list[dict] = []
    summary = [bench_problem("Z(4) 576 spins", zephyr_graph(4, 4), args, rows)]
    print("\nTraining regime: 32-spin RBM-shaped model, 128 chains, 10 sweeps per call (median per call)")
    small = bench_small(args, summary[0]["results"]["qbm (1 thr)"])
    if not args.skip_z12:
        summary.append(bench_problem("Z(12) 4592 spins", advantage2_like_graph(12, 4, 4592), args, rows))
    print()
    print_table(rows, ["problem", "sampler", "setting", "updates/s", "qbm1/this", "qbmN/this"])
    print()
    for s in summary:
        print(
            f"{s['problem']}: qbm 1 thread / fastest peer = {s['qbm1_over_best_peer']:.2f}x; "
            f"qbm all threads / 1 thread = {s['thread_scaling']:.2f}x"
        )

    sqa = run_sqa_part(args)

    print(f"\nPT vs Gibbs: Z(4) glass at beta={args.pt_beta}, 16 reads, {args.pt_sweeps} sweeps (PT: 16 replicas)")
    pt = bench_pt(args)
    print_table(
        [{"sampler": k, **v} for k, v in pt.items() if isinstance(v, dict)],
        ["sampler", "ess", "seconds", "ess_per_s", "mean_energy"],
    )
    print(
        f"PT / Gibbs ESS per second: {pt['ratio_pt_over_gibbs']:.2f}x "
        f"(PT min swap acceptance {pt['pt']['swap_acceptance_min']:.2f}, "
        f"{pt['pt']['round_trips_per_read']:.1f} round trips per read)"
    )
    peers = None
    if not args.skip_sqa_peers:
        import sqa_peers

        peers = sqa_peers.main(["--quick"] if args.quick else [])
    if args.out:
        write_json(
            os.path.join(args.out, "samplers.json"),
            {"rows": rows, "summary": summary, "small": small, "sqa": sqa, "pt_vs_gibbs": pt, "sqa_peers": peers},
        )
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker

        fig, axes = plt.subplots(1, len(summary), figsize=(6 * len(summary), 4), squeeze=False)
        for ax, s in zip(axes[0], summary):
            names = list(s["results"])
            vals = [s["results"][k] for k in names]
            bars = ax.barh(names, vals)
            ax.bar_label(bars, labels=[f"{v:.2g}" for v in vals], padding=2, fontsize=8)
            ax.set_xscale("log")
            ax.set_xlim(right=max(vals) * 3)  # room for the labels
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # minor labels overlapped
            ax.set_xlabel("spin updates / s")
            ax.set_title(s["problem"])
        fig.tight_layout()
        fig.savefig(os.path.join(args.out, "samplers.png"), dpi=120)
        print(f"wrote {args.out}/samplers.json and samplers.png")


if __name__ == "__main__":
    main()
