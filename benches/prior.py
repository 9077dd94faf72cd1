"""Boltzmann-machine prior energies at Advantage2 scale: the Rust core's edge loop
(`qbm._core.pair_energies` / `pair_energy_grad`, what `BoltzmannPrior.energy` uses for
large sparse graphs) against the torch gather over edges (the path before it), same run,
1 thread each (QBM_NUM_THREADS=1, torch.set_num_threads(1)).

"qbm" is `BoltzmannPrior.energy` as it runs: at 576 spins Z(4, 4) is dense enough that it takes
its dense-matrix path (one matmul), from 1248 spins on the core's edge loop.

Priors on full Zephyr graphs Z(m, 4): m = 4, 6, 8 (576, 1248, 2176 spins). Timed, median of
repeats: energies of 8000 latent samples (one test image's worth at K = 8000, or 8 images at
K = 1000) without gradients; forward + backward for a training batch of 128; and the whole
importance-weighted log-likelihood of 8 digits test images at K = 1000 for a BM-VAE with
the 2176-spin prior (decoder included; log Z given) beside a Gaussian VAE with 2176 latents.

    QBM_NUM_THREADS=1 python benches/prior.py [--repeats 3] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _common import median_time, print_core, print_table, write_json  # noqa: E402


def torch_energy(p, z):
    i, j = p.edges[:, 0], p.edges[:, 1]
    return -(z @ p.h) - (z[:, i] * z[:, j] * p.J).sum(-1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="bench-results")
    args = ap.parse_args()
    print_core()
    torch.set_num_threads(1)
    from qbm.models.prior import BoltzmannPrior

    rows = []
    g = torch.Generator().manual_seed(0)
    for n in (576, 1248, 2176):
        p = BoltzmannPrior(n, "zephyr", seed=0, init_scale=0.1)
        z = torch.where(torch.rand(8000, n, generator=g) < 0.5, 1.0, -1.0).double()
        zb = z[:128]
        with torch.no_grad():
            assert torch.allclose(p.energy(z[:64]), torch_energy(p, z[:64]), atol=1e-9)
        with torch.no_grad():
            t_core = median_time(lambda p=p, z=z: p.energy(z), args.repeats)
            t_torch = median_time(lambda p=p, z=z: torch_energy(p, z), args.repeats)

        def fb_core(p=p, zb=zb):
            p.zero_grad()
            p.energy(zb).mean().backward()

        def fb_torch(p=p, zb=zb):
            p.zero_grad()
            torch_energy(p, zb).mean().backward()

        f_core = median_time(fb_core, max(args.repeats, 5))
        f_torch = median_time(fb_torch, max(args.repeats, 5))
        rows.append(
            {
                "spins": n,
                "couplers": p.num_edges,
                "E(8000 rows) qbm s": t_core,
                "torch s": t_torch,
                "x": t_torch / t_core,
                "fwd+bwd (128) qbm ms": 1e3 * f_core,
                "torch ms": 1e3 * f_torch,
                "x ": f_torch / f_core,
            }
        )
    print("prior energies, 1 thread, median of repeats")
    print_table(rows, list(rows[0]))

    from qbm.data import load_dataset
    from qbm.models.evaluation import iw_loglik
    from qbm.models.vae import BMVAE

    data = load_dataset("digits")
    m = BMVAE(data.shape, 2176, graph="zephyr", seed=0)
    x = torch.as_tensor(data.x_test[:8])
    from qbm.models.vae import GaussianVAE

    t_iw = median_time(lambda: iw_loglik(m, x, 1000, log_z=0.0), args.repeats)
    gv = GaussianVAE(data.shape, 2176, seed=0)
    t_g = median_time(lambda: iw_loglik(gv, x, 1000), args.repeats)
    print(
        f"\nIW log-likelihood at K = 1000 per digits test image, 2176 latents: BM-VAE (Zephyr prior) "
        f"{t_iw / 8:.3f} s, Gaussian VAE {t_g / 8:.3f} s (BM / Gaussian {t_iw / t_g:.2f})"
    )
    write_json(
        os.path.join(args.out, "prior.json"),
        {"energies": rows, "iw_seconds_per_image": t_iw / 8, "gaussian_iw_seconds_per_image": t_g / 8},
    )


if __name__ == "__main__":
    main()
