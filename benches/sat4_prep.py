"""Full-size SAT-4 preparation for the capacity study: what the study's driver pays once
(decode, judge, autoencoder, encoding) and what each run pays (load the shared cache,
train), with peak memory per phase. The real set cannot be downloaded here, so the files
are SAT-4-format stand-ins written by :func:`qbm.data.sat4.write_sat4` at the published
size (400k train / 100k test patches, 28x28x4, .mat).

Every phase runs in its own process with one thread (QBM_NUM_THREADS=1, torch 1 thread)
and reports its wall time and peak resident memory (VmHWM of that process; memory-mapped
pages it touched count too). Epoch
counts are capped (``--ae-epochs``, ``--judge-epochs``) so the bench ends in minutes; the
per-epoch times are what it measures, and a full preparation is per-epoch time x the
epochs early stopping runs (at most 80 for the autoencoder, 30 for the judge).

    python benches/sat4_prep.py --dir /data/sat4-standin [--n-train 400000 --n-test 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

PHASE = r"""
import json, os, resource, sys, time
import torch
torch.set_num_threads(1)
phase, d, latent, cache, ae_epochs, judge_epochs = sys.argv[1:7]
latent, ae_epochs, judge_epochs = int(latent), int(ae_epochs), int(judge_epochs)
t0 = time.perf_counter()
out = {}
if phase == "decode":
    from qbm.data.sat4 import load_sat4_uint8
    x = load_sat4_uint8(d)
    out["shapes"] = [list(a.shape) for a in x]
elif phase == "mmap":
    from qbm.data.sat4 import load_sat4
    data = load_sat4(d)
    out["type"] = type(data.x_train).__name__
elif phase == "judge":
    from qbm.data.sat4 import load_sat4
    from qbm.generation import Judge
    Judge.EPOCHS = judge_epochs
    j = Judge(load_sat4(d))
    out.update(accuracy=j.accuracy, training=j.report)
elif phase == "prepare":
    from qbm.data.sat4 import load_sat4
    from qbm.generation import Judge
    from qbm.training.qgan import Shared
    Judge.EPOCHS = judge_epochs
    t1 = time.perf_counter()
    s = Shared(load_sat4(d), latent, ae_epochs=ae_epochs, cache=cache)
    out.update(ae=s.ae_report, fid_floor=s.fid_floor)
elif phase == "run":
    from qbm.studies.capacity import capacity_run
    cfg = {"dataset": "sat4", "data_dir": d, "generator": "quantum", "qubits": latent, "layers": 2,
           "readout": "z", "latent": latent, "disc_width": 32, "epochs": 30, "iters_per_epoch": 50,
           "eval_samples": 500, "ae_epochs": ae_epochs, "cache": cache}
    r = capacity_run(cfg, 0)
    out.update(final_fid=r["final_fid"], train_seconds=r["seconds"])
out["seconds"] = time.perf_counter() - t0
# VmHWM: this process image's own peak (ru_maxrss carries the forking parent's across exec)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")]
out["peak_rss_mb"] = int(hwm[0].split()[1]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT " + json.dumps(out))
"""


def phase(name: str, d: str, latent: int, cache: str, ae_epochs: int, judge_epochs: int, env: dict) -> dict:
    r = subprocess.run(
        [sys.executable, "-c", PHASE, name, d, str(latent), cache, str(ae_epochs), str(judge_epochs)],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    if r.returncode != 0:
        raise RuntimeError(f"phase {name} failed:\n{r.stderr[-3000:]}")
    line = next(x for x in r.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[7:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", required=True, help="where the SAT-4-format files are (written when absent)")
    ap.add_argument("--n-train", type=int, default=400_000)
    ap.add_argument("--n-test", type=int, default=100_000)
    ap.add_argument("--latent", type=int, default=6)
    ap.add_argument("--ae-epochs", type=int, default=1)
    ap.add_argument("--judge-epochs", type=int, default=1)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    from qbm.data.sat4 import write_sat4

    env = {**os.environ, "QBM_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env["QBM_CACHE_DIR"] = os.environ.get("QBM_CACHE_DIR") or tempfile.mkdtemp(prefix="qbm-sat4-bench-")
    res: dict = {"n_train": a.n_train, "n_test": a.n_test, "latent": a.latent, "threads": 1}
    if not os.path.exists(os.path.join(a.dir, "sat-4-full.mat")):
        t0 = time.perf_counter()
        write_sat4(a.dir, a.n_train, a.n_test, fmt="mat", seed=0)
        res["write_files_s"] = time.perf_counter() - t0
        print(f"wrote SAT-4-format files ({a.n_train} + {a.n_test}) in {res['write_files_s']:.0f} s", flush=True)
    cache = os.path.join(env["QBM_CACHE_DIR"], f"shared-sat4-latent{a.latent}.pt")
    for name in ("decode", "mmap", "judge", "prepare", "run"):
        r = phase(name, a.dir, a.latent, cache, a.ae_epochs, a.judge_epochs, env)
        res[name] = r
        print(f"{name:<8} {r['seconds']:8.1f} s  peak RSS {r['peak_rss_mb']:7.0f} MB  "
              f"{ {k: v for k, v in r.items() if k not in ('seconds', 'peak_rss_mb')} }", flush=True)  # fmt: skip
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
