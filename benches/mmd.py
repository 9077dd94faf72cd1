"""MMD^2 throughput on bitstrings: qbm (packed bits, popcount histograms) against numpy
and torch, same run.

N = M = 5000 bitstrings of n = 64 bits, Gaussian Hamming kernel exp(-d / (2 sigma)),
biased estimator (all N^2 + M^2 + NM pairs). Pairs per second = (N^2 + M^2 + N M) / time,
median of repeats. Peers: numpy (Hamming distances by a float32 matrix product of +-1
vectors, then exp), torch (the same fused in float32) and torch.cdist (p=0 is not
supported fast, so p=1 on {0,1} floats). Also a 5-bandwidth mixture (free for qbm: one
histogram, five table lookups), and the exact product-structure MMD over 2^n states
against the dense 2^n x 2^n kernel matrix at n = 12.

    python benches/mmd.py [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import median_time, print_core, print_table, write_json  # noqa: E402

from qbm import _core, mmd  # noqa: E402


def numpy_mmd(x, y, sigma):
    xs = (2 * x - 1).astype(np.float32)
    ys = (2 * y - 1).astype(np.float32)
    n = x.shape[1]

    def ksum(a, b):
        d = (n - a @ b.T) / 2  # Hamming distance from the +-1 inner product
        return np.exp(-d / (2 * sigma)).mean()

    return ksum(xs, xs) + ksum(ys, ys) - 2 * ksum(xs, ys)


def torch_mmd(x, y, sigma, cdist=False):
    import torch

    with torch.no_grad():
        xs, ys = torch.from_numpy(x).float(), torch.from_numpy(y).float()
        n = x.shape[1]

        def ksum(a, b):
            if cdist:
                d = torch.cdist(a, b, p=1)
            else:
                d = (n - (2 * a - 1) @ (2 * b - 1).T) / 2
            return torch.exp(-d / (2 * sigma)).mean()

        return float(ksum(xs, xs) + ksum(ys, ys) - 2 * ksum(xs, ys))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--bits", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    print_core()
    if args.quick:
        args.n, args.repeats = 2000, 1
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (args.n, args.bits)).astype(np.int8)
    y = rng.integers(0, 2, (args.n, args.bits)).astype(np.int8)
    pairs = 3 * args.n**2
    sigma = 1.0
    res = {}
    ref = mmd.mmd2(x, y, sigma)
    for threads in (1, _core.default_threads()):
        t = median_time(lambda th=threads: mmd.mmd2(x, y, sigma, num_threads=th), args.repeats)
        res[f"qbm ({threads} thr)"] = pairs / t
    mix = [0.5, 1, 4, 16, 64]
    t = median_time(lambda: mmd.mmd2(x, y, mix, num_threads=1), args.repeats)
    res["qbm (1 thr), 5-bandwidth mixture"] = pairs / t
    assert abs(numpy_mmd(x, y, sigma) - ref) < 1e-4
    t = median_time(lambda: numpy_mmd(x, y, sigma), args.repeats)
    res["numpy float32 matmul"] = pairs / t
    try:
        import torch

        assert abs(torch_mmd(x, y, sigma) - ref) < 1e-4
        t = median_time(lambda: torch_mmd(x, y, sigma), args.repeats)
        res[f"torch float32 matmul ({torch.get_num_threads()} thr)"] = pairs / t
        t = median_time(lambda: torch_mmd(x, y, sigma, cdist=True), max(1, args.repeats // 2))
        res["torch.cdist"] = pairs / t
    except ImportError:
        print("torch not installed; skipped")
    q1 = res["qbm (1 thr)"]
    rows = [{"method": k, "pairs/s": v, "qbm1/this": q1 / v} for k, v in res.items()]
    print(f"MMD^2, N = M = {args.n}, {args.bits} bits, biased estimator; median of {args.repeats}")
    print_table(rows, ["method", "pairs/s", "qbm1/this"])
    print(f"qbm 1 thread / numpy = {q1 / res['numpy float32 matmul']:.1f}x")

    # exact MMD over 2^n states
    n = 12
    pv, qv = rng.dirichlet(np.ones(2**n)), rng.dirichlet(np.ones(2**n))
    t_prod = median_time(lambda: mmd.mmd2_exact(pv, qv, 1.0), args.repeats)
    bits = ((np.arange(2**n)[:, None] >> np.arange(n - 1, -1, -1)) & 1).astype(np.float32)

    def dense():
        s = 2 * bits - 1
        K = np.exp(-((n - s @ s.T) / 2) / 2.0)
        d = pv - qv
        return d @ K @ d

    assert abs(dense() - mmd.mmd2_exact(pv, qv, 1.0)) < 1e-6
    t_dense = median_time(dense, max(1, args.repeats // 2))
    print(
        f"exact MMD at n = {n}: product structure {t_prod * 1e3:.2f} ms, dense 2^n x 2^n {t_dense * 1e3:.0f} ms "
        f"({t_dense / t_prod:.0f}x)"
    )
    if args.out:
        write_json(
            os.path.join(args.out, "mmd.json"), {"rows": rows, "exact_n12": {"product_s": t_prod, "dense_s": t_dense}}
        )


if __name__ == "__main__":
    main()
