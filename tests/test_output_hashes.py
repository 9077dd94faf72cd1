"""Bit-identity: every sampler's outputs on fixed inputs hash to the values recorded
before the sampler-engine refactor (``benches/output_hashes.py``), on any thread count."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("threads", ["1", "2"])
def test_outputs_unchanged_bit_for_bit(threads):
    want = json.loads((ROOT / "tests" / "data" / "output_hashes.json").read_text())
    env = {**os.environ, "QBM_NUM_THREADS": threads}
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
