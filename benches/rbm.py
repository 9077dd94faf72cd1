"""RBM block Gibbs throughput: qbm against numpy (BLAS) and torch (float32), same run.

784 x 128 RBM (+-1 units, W ~ N(0, 0.01^2)), 100 chains, alternating h|v, v|h sweeps.
Unit updates per second = (nv + nh) * chains * sweeps / time; median of repeats.
numpy and torch use every core (their BLAS threads); qbm is timed on 1 thread and on
all threads.

Part 2: RBMSampler against GibbsSampler on the same model (the RBM as an IsingModel),
both on 1 thread, whole calls in the training regime (128 chains x 10 sweeps; 100
chains at 784 visible units), sizes 6x6, 16x16, 64x64, 784x128 and 784x512.

    python benches/rbm.py [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import median_time, print_core, print_table, write_json  # noqa: E402

from qbm import _core  # noqa: E402
from qbm.rbm import RBM  # noqa: E402
from qbm.samplers import GibbsSampler, RBMSampler  # noqa: E402


def numpy_block_gibbs(W, a, b, chains, sweeps, seed):
    rng = np.random.default_rng(seed)
    W = W.astype(np.float32)
    a, b = a.astype(np.float32), b.astype(np.float32)
    v = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=(chains, W.shape[0]))
    for _ in range(sweeps):
        fh = v @ W + b
        h = np.where(rng.random(fh.shape, dtype=np.float32) * (1 + np.exp(2 * fh)) < 1, 1.0, -1.0).astype(np.float32)
        fv = h @ W.T + a
        v = np.where(rng.random(fv.shape, dtype=np.float32) * (1 + np.exp(2 * fv)) < 1, 1.0, -1.0).astype(np.float32)
    return v, h


def torch_block_gibbs(W, a, b, chains, sweeps, seed):
    import torch

    g = torch.Generator().manual_seed(seed)
    Wt = torch.tensor(W, dtype=torch.float32)
    at, bt = torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32)
    v = torch.randint(0, 2, (chains, W.shape[0]), generator=g).float() * 2 - 1
    with torch.no_grad():
        for _ in range(sweeps):
            ph = torch.sigmoid(-2 * torch.addmm(bt, v, Wt))
            h = (torch.rand(ph.shape, generator=g) < ph).float() * 2 - 1
            pv = torch.sigmoid(-2 * torch.addmm(at, h, Wt.T))
            v = (torch.rand(pv.shape, generator=g) < pv).float() * 2 - 1
    return v, h


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nv", type=int, default=784)
    p.add_argument("--nh", type=int, default=128)
    p.add_argument("--chains", type=int, default=100)
    p.add_argument("--sweeps", type=int, default=500)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    print_core()
    if args.quick:
        args.sweeps, args.repeats = 50, 1
    rng = np.random.default_rng(0)
    W = rng.normal(0, 0.01, (args.nv, args.nh))
    a, b = rng.normal(0, 0.01, args.nv), rng.normal(0, 0.01, args.nh)
    rbm = RBM(W, a, b)
    updates = (args.nv + args.nh) * args.chains * args.sweeps
    res = {}
    for threads in (1, _core.default_threads()):
        s = RBMSampler(num_threads=threads)
        t = median_time(
            lambda s=s: s.sample_model(rbm, num_reads=args.chains, num_sweeps=args.sweeps, seed=1), args.repeats
        )
        res[f"qbm ({threads} thr)"] = updates / t
    t = median_time(lambda: numpy_block_gibbs(W, a, b, args.chains, args.sweeps, 1), args.repeats)
    res["numpy (BLAS)"] = updates / t
    try:
        import torch

        t = median_time(lambda: torch_block_gibbs(W, a, b, args.chains, args.sweeps, 1), args.repeats)
        res[f"torch float32 ({torch.get_num_threads()} thr)"] = updates / t
    except ImportError:
        print("torch not installed; skipped")
    qn = res[f"qbm ({_core.default_threads()} thr)"]
    rows = [{"sampler": k, "unit updates/s": v, "qbmN/this": qn / v} for k, v in res.items()]
    print(f"RBM {args.nv} x {args.nh}, {args.chains} chains, {args.sweeps} sweeps; median of {args.repeats}")
    print_table(rows, ["sampler", "unit updates/s", "qbmN/this"])
    peers = [v for k, v in res.items() if not k.startswith("qbm")]
    print(f"qbm all threads / fastest peer = {qn / max(peers):.2f}x")
    vs = rbm_vs_gibbs(args.repeats * 3)
    if args.out:
        write_json(os.path.join(args.out, "rbm.json"), {"rows": rows, "rbm_vs_gibbs": vs})


def rbm_vs_gibbs(repeats):
    """Part 2: median whole-call time of RBMSampler and GibbsSampler, 1 thread each."""
    rng = np.random.default_rng(0)
    rows = []
    for nv, nh, reads in ((6, 6, 128), (16, 16, 128), (64, 64, 128), (784, 128, 100), (784, 512, 100)):
        rbm = RBM(rng.normal(0, 0.1, (nv, nh)), rng.normal(0, 0.1, nv), rng.normal(0, 0.1, nh))
        model = rbm.to_ising()
        r, g = RBMSampler(num_threads=1), GibbsSampler(num_threads=1)
        kw = dict(num_reads=reads, num_sweeps=10, seed=0)
        tr = median_time(lambda r=r, rbm=rbm, kw=kw: r.sample_model(rbm, **kw), repeats)
        tg = median_time(lambda g=g, model=model, kw=kw: g.sample_model(model, **kw), repeats)
        rows.append({"rbm": f"{nv}x{nh}", "reads": reads, "RBMSampler us": tr * 1e6, "GibbsSampler us": tg * 1e6,
                     "rbm/gibbs": tr / tg})  # fmt: skip
    print("\nRBMSampler vs GibbsSampler, same model, 1 thread each, 10 sweeps per call (median whole call)")
    print_table(rows, ["rbm", "reads", "RBMSampler us", "GibbsSampler us", "rbm/gibbs"])
    return rows


if __name__ == "__main__":
    main()
