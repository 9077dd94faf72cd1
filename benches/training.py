"""Training-loop speed: seconds per epoch of the Gaussian VAE and of the BM-VAE with each
negative phase (qbm gibbs, rbm, pt, sqa, and dwave-pytorch-plugin's BlockSampler), in the
same run, on the embedded digits (latent 32, 128 chains, 10 sweeps, batch 32), with qbm's
thread policy (torch 1 thread). Also times the README's main job end to end, idle and
while another process keeps one core busy.

    python benches/training.py [--epochs 3] [--repeats 3] [--skip-main-job]
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
from _common import print_table  # noqa: E402


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
    a = ap.parse_args()
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
    rows = []
    base = None
    for kind, s in runs:
        secs = epoch_seconds(kind, s, a.epochs + 1, 0)[1:]  # first epoch warms up
        med = statistics.median(secs)
        if kind == "gaussian":
            base = med
        rows.append({"model": "gaussian-vae" if kind == "gaussian" else f"bm-vae/{s}", "s/epoch (median)": med,
                     "x gaussian": med / base})  # fmt: skip
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


if __name__ == "__main__":
    main()
