"""Smoke test of an installed qbm wheel, run from outside the source tree with no Rust
toolchain on PATH: the extension loads, samplers run through dimod, the circuit engine
runs and differentiates, the CLI starts."""

import os
import shutil
import subprocess
import sys

import dimod
import numpy as np

import qbm
from qbm import _core
from qbm.samplers import GibbsSampler, SQASampler

assert shutil.which("cargo") is None and shutil.which("rustc") is None, "a Rust toolchain is on PATH"
src = os.environ.get("QBM_SOURCE_TREE", "")
assert src and not os.path.abspath(qbm.__file__).startswith(os.path.abspath(src)), qbm.__file__
print(f"qbm {qbm.__version__} from {os.path.dirname(qbm.__file__)}; simd={_core.simd_level()}")
bqm = dimod.BQM.from_ising({"a": 0.5, "b": -0.2}, {("a", "b"): -1.0})
ss = GibbsSampler().sample(bqm, num_reads=20, num_sweeps=50, seed=1)
dimod.testing.assert_sampleset_energies(ss, bqm)
r = SQASampler().sample_model(qbm.IsingModel.from_bqm(bqm), num_reads=8, num_sweeps=20, seed=0)
assert r.spins.shape == (8, 2) and np.all(np.abs(r.spins) == 1)
# the circuit engine: a Bell pair's probabilities and an adjoint gradient
import torch  # noqa: E402

from qbm.quantum import Circuit  # noqa: E402

c = Circuit(2)
k = c.ry(0)
c.cx(0, 1)
theta = torch.tensor([np.pi / 2], dtype=torch.float64, requires_grad=True)
q = c.run(theta)
assert np.allclose(q.detach().numpy(), [0.5, 0, 0, 0.5]), q
(q[0] - q[3]).backward()
assert abs(float(theta.grad[k]) + 1.0) < 1e-12, theta.grad  # d/dt (cos^2 - sin^2)(t/2) = -sin t
# package data travels in the wheel: the shipped annealing schedule loads
from qbm.samplers.schedule import advantage2_schedule  # noqa: E402

sched = advantage2_schedule()
assert sched.version and sched.s[-1] == 1.0, sched
out = subprocess.run([os.path.join(os.path.dirname(sys.executable), "qbm"), "--help"], capture_output=True, text=True)
assert out.returncode == 0 and "usage: qbm" in out.stdout, out
print("wheel smoke test OK")
