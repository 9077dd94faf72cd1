"""Bit-identity: every sampler's outputs on fixed inputs hash to the values recorded
before the sampler-engine refactor (``benches/output_hashes.py``; the circuit engine's
cases were recorded when it replaced the torch simulator; its states and exact shift
gradients were re-recorded when two-qubit fusion changed their rounding, and the exact shift
gradients again when f64 runs fused cheaper blocks, equal to the gate-by-gate path to 1e-12
as the core's tests check), on any thread count and
instruction set."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("threads,simd", [("1", None), ("2", None), ("2", "baseline")])
def test_outputs_unchanged_bit_for_bit(threads, simd):
    want = json.loads((ROOT / "tests" / "data" / "output_hashes.json").read_text())
    env = {**os.environ, "QBM_NUM_THREADS": threads}
    if simd:
        env["QBM_SIMD"] = simd
    out = subprocess.run(
        [sys.executable, str(ROOT / "benches" / "output_hashes.py")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    got = json.loads(out.stdout)
    assert set(got) == set(want)
    changed = sorted(k for k in want if got[k] != want[k])
    assert not changed, f"outputs changed for {changed}"
