"""Training-loop speed: seconds per epoch of the Gaussian VAE and of the BM-VAE with each
negative phase (qbm gibbs, rbm, pt, sqa, and dwave-pytorch-plugin's BlockSampler), in the
same run, on the embedded digits (latent 32, 128 chains, 10 sweeps, batch 32), with qbm's
thread policy (torch 1 thread). Also times the README's main job end to end, idle and
while another process keeps one core busy. Part 2 (``--zephyr``): BM-VAEs with priors on
full Zephyr graphs Z(m, 4) at 576, 1248 and 2176 latent spins (Gibbs negative phase, 128
chains x 10 sweeps): seconds per digits epoch, negative-phase seconds per call, IW
evaluation per test image at K = 1000 (log Z given: its AIS is timed separately), and the
process's peak memory, each size in its own subprocess. Part 3 (``--mnist DIR``, the four
MNIST IDX files): one whole epoch of dynamically binarised MNIST (60k images, batch 32, conv
encoder/decoder) per model, each in its own subprocess on one thread: the Gaussian VAE with 32
latents, the BM-VAE with 32 spins (RBM prior) and with Zephyr priors at 576 and 2176 spins
(Gibbs, 128 chains x 10 sweeps), the training seconds, the per-epoch evaluation seconds (1000
test images, K = 50, with the prior's log Z), their sum and its ratio to the Gaussian VAE's.

    python benches/training.py [--epochs 3] [--repeats 3] [--skip-main-job | --main-job-only] [--zephyr]
    python benches/training.py --mnist DIR --skip-main-job --epochs 0
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import print_core, print_table  # noqa: E402


def epoch_seconds(kind: str, sampler: str, epochs: int, seed: int) -> list[float]:
    from qbm.data import load_dataset
    from qbm.models.vae import BMVAE, GaussianVAE
    from qbm.training.vae import VAETrainer

    data = load_dataset("digits")
    if kind == "gaussian":
        tr = VAETrainer(GaussianVAE(data.shape, 32, seed=seed), data, seed=seed)
    else:
        tr = VAETrainer(BMVAE(data.shape, 32, seed=seed), data, sampler=sampler, seed=seed)
    return [tr.train_epoch(progress=False)["epoch_seconds"] for _ in range(epochs)]


def zephyr_worker(n: int, epochs: int) -> dict:
    import resource

    import torch

    from qbm.data import load_dataset
    from qbm.models.evaluation import iw_loglik
    from qbm.models.vae import BMVAE
    from qbm.training.vae import VAETrainer

    data = load_dataset("digits")
    tr = VAETrainer(BMVAE(data.shape, n, graph="zephyr", seed=0), data, sampler="gibbs", seed=0)
    secs = [tr.train_epoch(progress=False)["epoch_seconds"] for _ in range(epochs + 1)][1:]
    neg = []
    for _ in range(5):
        t0 = time.perf_counter()
        tr.negative.sample(tr.model.prior)
        neg.append(time.perf_counter() - t0)
    x = torch.as_tensor(data.x_test[:8])
    t0 = time.perf_counter()
    iw_loglik(tr.model, x, 1000, log_z=0.0)
    iw = (time.perf_counter() - t0) / 8
    t0 = time.perf_counter()
    tr.model.prior.ais_log_z(num_chains=64, num_betas=1000)
    ais = time.perf_counter() - t0
    return {
        "spins": n,
        "couplers": tr.model.prior.num_edges,
        "s/epoch": statistics.median(secs),
        "negative phase s/call": statistics.median(neg),
        "IW s/image (K=1000)": iw,
        "AIS log Z s (64 x 1000)": ais,
        "peak MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def mnist_worker(spec: str, data_dir: str) -> dict:
    import resource

    from qbm.data.images import load_mnist
    from qbm.models.vae import BMVAE, GaussianVAE
    from qbm.training.vae import VAETrainer

    kind, n, graph = spec.split(":")
    n = int(n)
    data = load_mnist(data_dir)
    if kind == "gaussian":
        tr = VAETrainer(GaussianVAE(data.shape, n, seed=0), data, seed=0, binarize="dynamic")
    else:
        tr = VAETrainer(BMVAE(data.shape, n, graph=graph, seed=0), data, sampler="gibbs", seed=0, binarize="dynamic")
    rec = tr.train_epoch(progress=False)
    return {
        "model": "gaussian-vae" if kind == "gaussian" else f"bm-vae/{graph}",
        "latents": n,
        "train s": rec["epoch_seconds"],
        "eval s": rec["eval_seconds"],
        "epoch s": rec["epoch_seconds"] + rec["eval_seconds"],
        "eval share": rec["eval_seconds"] / rec["epoch_seconds"],
        "active units": rec["active_units"],
        "peak MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _busy():
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def main_job_seconds() -> float:
    out = tempfile.mkdtemp()
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "qbm.cli", "train", "vae", "--dataset", "digits", "--quiet", "--out", out],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=1, help="repeats of the main job timing")
    ap.add_argument("--skip-main-job", action="store_true")
    ap.add_argument("--main-job-only", action="store_true", help="time only the README main job (idle and busy)")
    ap.add_argument("--zephyr", action="store_true", help="also part 2: Zephyr priors at 576, 1248, 2176 spins")
    ap.add_argument("--zephyr-worker", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--mnist", default=None, help="part 3: a directory with the MNIST IDX files")
    ap.add_argument("--mnist-worker", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    print_core()
    if a.mnist_worker:
        import json

        from qbm.threads import apply_policy

        apply_policy(1)
        print(json.dumps(mnist_worker(a.mnist_worker, a.mnist)))
        return
    if a.zephyr_worker:
        import json

        from qbm.threads import apply_policy

        apply_policy(None)
        print(json.dumps(zephyr_worker(a.zephyr_worker, a.epochs)))
        return
    from qbm.threads import apply_policy

    print("thread policy:", apply_policy(None))
    try:
        import qbm.interop.plugin  # noqa: F401  (registers 'plugin-block')

        have_plugin = True
    except ImportError:
        have_plugin = False
        print("dwave-pytorch-plugin not installed; its BlockSampler is skipped")
    runs = [("gaussian", "-")] + [("bm", s) for s in ("gibbs", "rbm", "pt", "sqa")]
    if have_plugin:
        runs.append(("bm", "plugin-block"))
    if a.main_job_only or a.epochs == 0:
        runs = []
    rows = []
    base = None
    for kind, s in runs:
        secs = epoch_seconds(kind, s, a.epochs + 1, 0)[1:]  # first epoch warms up
        med = statistics.median(secs)
        if kind == "gaussian":
            base = med
        rows.append({"model": "gaussian-vae" if kind == "gaussian" else f"bm-vae/{s}", "s/epoch (median)": med,
                     "x gaussian": med / base})  # fmt: skip
    if rows:
        print(f"\nseconds per training epoch (median of {a.epochs}, after one warm-up epoch; evaluation excluded)")
        print_table(rows, ["model", "s/epoch (median)", "x gaussian"])
    if not a.skip_main_job:
        idle = [main_job_seconds() for _ in range(a.repeats)]
        p = _busy()
        try:
            time.sleep(0.5)
            busy = [main_job_seconds() for _ in range(a.repeats)]
        finally:
            p.kill()
        print(
            f"\nREADME main job (qbm train vae --dataset digits, 30 epochs) end to end: "
            f"{statistics.median(idle):.1f} s idle, {statistics.median(busy):.1f} s with one core busy "
            f"(median of {a.repeats})"
        )
    if a.zephyr:
        import json

        zrows = []
        for n in (576, 1248, 2176):
            r = subprocess.run(
                [sys.executable, __file__, "--zephyr-worker", str(n), "--epochs", str(a.epochs)],
                capture_output=True,
                text=True,
                check=True,
            )
            zrows.append(json.loads(r.stdout.strip().splitlines()[-1]))
        print(
            "\nBM-VAE with Zephyr Z(m, 4) priors on digits (gibbs, 128 chains x 10 sweeps; "
            f"median of {a.epochs} epochs)"
        )
        print_table(zrows, list(zrows[0]))

    if a.mnist:
        import json

        mrows = []
        for spec in ("gaussian:32:-", "bm:32:rbm", "bm:576:zephyr", "bm:2176:zephyr"):
            r = subprocess.run(
                [sys.executable, __file__, "--mnist-worker", spec, "--mnist", a.mnist],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            mrows.append(json.loads(r.stdout.strip().splitlines()[-1]))
            mrows[-1]["x gaussian"] = mrows[-1]["epoch s"] / mrows[0]["epoch s"]
            print(f"  {mrows[-1]['model']} ({mrows[-1]['latents']}): {mrows[-1]['epoch s']:.1f} s", flush=True)
        print("\none MNIST epoch (60k dynamically binarised images, batch 32, conv; 1 thread; evaluation: the "
              "per-epoch monitor, 1000 test images at K = 50 with log Z)")  # fmt: skip
        print_table(mrows, list(mrows[0]))


if __name__ == "__main__":
    main()
