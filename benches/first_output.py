"""Time to the first line of output, and the longest silence, of every README command.

Each command runs in its own process in a scratch directory (a trained BM-VAE is made
first for the commands that need one); output lines (stdout and stderr, progress-bar
updates included) are timestamped as they arrive. A command still running after
``--limit`` seconds is stopped: its longest silence is then measured up to that point.

    python benches/first_output.py [--limit 120] [--busy]

``--busy`` keeps one core busy with another process while the commands run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import print_table  # noqa: E402


def timed(cmd: list[str], cwd: str, limit: float) -> dict[str, float | str]:
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0)
    first, last, longest = None, t0, 0.0
    os.set_blocking(p.stdout.fileno(), False)
    while True:
        now = time.perf_counter()
        if now - t0 > limit:
            p.kill()
            status = "stopped"
            break
        try:
            chunk = p.stdout.read(4096)
        except BlockingIOError:
            chunk = None
        if chunk:
            if first is None:
                first = now - t0
            longest = max(longest, now - last)
            last = now
        elif chunk == b"" and p.poll() is not None:
            status = f"exit {p.returncode}"
            break
        else:
            time.sleep(0.01)
    end = time.perf_counter()
    longest = max(longest, end - last)
    return {"first line (s)": first if first is not None else float("nan"), "longest silence (s)": longest,
            "wall (s)": end - t0, "status": status}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=float, default=120.0, help="seconds after which a command is stopped")
    ap.add_argument("--busy", action="store_true", help="keep one core busy meanwhile")
    a = ap.parse_args()
    qbm = [sys.executable, "-m", "qbm.cli"]
    work = tempfile.mkdtemp(prefix="qbm-first-output-")
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if a.busy else None
    try:
        run = os.path.join(work, "runs", "vae")
        commands = [
            ("qbm train vae --dataset digits --out runs/vae", ["train", "vae", "--dataset", "digits", "--out", run]),
            ("qbm train vae ... (refused: the run exists)", ["train", "vae", "--dataset", "digits", "--out", run]),
            ("qbm generate --mode cqa --label 3", ["generate", "--model", f"{run}/model.pt", "--mode", "cqa",
                                                   "--label", "3", "--out", os.path.join(work, "c.png")]),
            ("qbm qpu sample --mode qa --mock zephyr:4,4 --calibrate-beta",
             ["qpu", "sample", "--model", f"{run}/model.pt", "--mode", "qa", "--mock", "zephyr:4,4",
              "--calibrate-beta", "--out", os.path.join(work, "q.png")]),
            ("qbm spin-glass --graph zephyr:12", ["spin-glass", "--graph", "zephyr:12"]),
            ("qbm train qcbm --n 4 --target bas --loss mmd --shots 1000",
             ["train", "qcbm", "--n", "4", "--target", "bas", "--loss", "mmd", "--shots", "1000",
              "--out", os.path.join(work, "qcbm")]),
            ("qbm study mmd-variance", ["study", "mmd-variance", "--out", os.path.join(work, "mmdv")]),
            ("qbm study kl-vs-mmd --budget smoke", ["study", "kl-vs-mmd", "--budget", "smoke",
                                                    "--out", os.path.join(work, "klmmd")]),
            ("qbm train qgan --dataset digits", ["train", "qgan", "--dataset", "digits", "--epochs", "3",
                                                 "--out", os.path.join(work, "qgan")]),
            ("qbm study dqa (first minute)", ["study", "dqa", "--out", os.path.join(work, "dqa")]),
        ]  # fmt: skip
        rows = []
        for name, args in commands:
            r = timed(qbm + args, work, a.limit)
            rows.append({"command": name, **r})
            print(f"{name}: {r}", flush=True)
        print(f"\ntime to first output line and longest silence ({'one core busy' if a.busy else 'idle'}; "
              f"stopped after {a.limit:g} s)")  # fmt: skip
        print_table(rows, ["command", "first line (s)", "longest silence (s)", "wall (s)", "status"])
    finally:
        if busy is not None:
            busy.kill()


if __name__ == "__main__":
    main()
