"""qbm's Adam (no torch.optim, so no torch._dynamo import) against torch.optim.Adam: the same
bits step for step, the same state dict, checkpoints that load into either; and the main
job's trainer and judge step without importing torch._dynamo."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import torch

from qbm._adam import Adam


def _net(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.Tanh(), torch.nn.Linear(12, 3, bias=False))


def _run(net: torch.nn.Module, opt, steps: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for i in range(steps):
        x = torch.randn(16, 6, generator=g).to(next(net.parameters()).dtype)
        opt.zero_grad()
        loss = net(x).pow(2).mean()
        if i % 4 == 3:  # a parameter without a gradient this step is left alone, as torch does
            loss = loss + 0 * net[0].weight.sum()
            net[2].weight.grad = None
            loss.backward()
            net[2].weight.grad = None
        else:
            loss.backward()
        opt.step()


@pytest.mark.parametrize("fused,dtype", [(True, torch.float32), (False, torch.float32), (False, torch.float64)])
def test_same_bits_and_state_dict_as_torch_adam(fused, dtype):
    """float64 too: the QCBM's angles are float64."""
    a, b = _net(1).to(dtype), _net(1).to(dtype)
    ta = torch.optim.Adam(a.parameters(), lr=3e-3, betas=(0.8, 0.99), eps=1e-7, fused=fused or None)
    qa = Adam(b.parameters(), lr=3e-3, betas=(0.8, 0.99), eps=1e-7, fused=fused)
    _run(a, ta, 25, 7)
    _run(b, qa, 25, 7)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
    st, sq = ta.state_dict(), qa.state_dict()
    assert st["param_groups"] == sq["param_groups"]
    assert st["state"].keys() == sq["state"].keys()
    for i in st["state"]:
        for k, v in st["state"][i].items():
            assert torch.equal(v, sq["state"][i][k]) and v.dtype == sq["state"][i][k].dtype, (i, k)


@pytest.mark.parametrize("fused", [True, False])
def test_state_dicts_load_across_and_continue_identically(fused):
    """torch -> qbm and qbm -> torch halfway through: both continue as the uninterrupted run."""
    ref = _net(2)
    opt = Adam(ref.parameters(), lr=1e-2, fused=fused)
    _run(ref, opt, 10, 3)
    _run(ref, opt, 10, 4)

    for first, second in ((torch.optim.Adam, Adam), (Adam, torch.optim.Adam)):
        net = _net(2)
        kw = {"fused": fused} if first is Adam else {"fused": fused or None}
        o1 = first(net.parameters(), lr=1e-2, **kw)
        _run(net, o1, 10, 3)
        sd = copy.deepcopy(o1.state_dict())
        kw = {"fused": fused} if second is Adam else {"fused": fused or None}
        o2 = second(net.parameters(), lr=5.0, **kw)  # lr comes from the state dict
        o2.load_state_dict(sd)
        _run(net, o2, 10, 4)
        for p, q in zip(ref.parameters(), net.parameters(), strict=True):
            assert torch.equal(p, q), (first.__module__, second.__module__)


def test_bad_input_names_the_parameter():
    p = [torch.nn.Parameter(torch.zeros(3))]
    with pytest.raises(ValueError, match="lr"):
        Adam(p, lr=0.0)
    with pytest.raises(ValueError, match="betas"):
        Adam(p, betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="params"):
        Adam([])
    opt = Adam(p)
    with pytest.raises(ValueError, match="opt_state"):
        opt.load_state_dict({"nothing": 1})
    other = Adam([torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2))])
    with pytest.raises(ValueError, match="one group of 1 parameters"):
        opt.load_state_dict(other.state_dict())
    wrong = Adam([torch.nn.Parameter(torch.zeros(4))])
    wrong.params[0].grad = torch.ones(4)
    wrong.step()
    with pytest.raises(ValueError, match="exp_avg of parameter 0 has shape"):
        opt.load_state_dict(wrong.state_dict())


def test_trainer_and_judge_do_not_import_dynamo(tmp_path):
    """The reason the class exists: a VAE training step and a judge's training leave
    torch._dynamo unimported (torch.optim would import it on the first step, ~2 s)."""
    code = f"""
import sys
import numpy as np
from qbm.data.images import ImageData
from qbm.generation import Judge
from qbm.models.vae import BMVAE
from qbm.training.vae import VAETrainer
rng = np.random.default_rng(0)
x = (rng.random((96, 1, 8, 8)) < 0.5).astype(np.float32)
y = np.arange(96) % 2
data = ImageData("toy", x[:64], y[:64], x[64:], y[64:])
tr = VAETrainer(BMVAE((1, 8, 8), latent=8), data, num_chains=8, sweeps=1, batch_size=32)
tr.step(tr.x_train[:32], 1.0)
Judge.EPOCHS = 2
Judge(data, cache={str(tmp_path)!r})
print("dynamo" if "torch._dynamo" in sys.modules else "no dynamo")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("no dynamo")


def test_console_entry_freezes_the_collector_and_returns_mains_status():
    code = "import gc, sys\nfrom qbm.cli import entry\nsys.argv = ['qbm', '--version']\n" \
           "rc = entry()\nprint(rc, gc.get_freeze_count() > 0)"  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["0", "True"]
    code_bad = "import sys\nfrom qbm.cli import entry\nsys.argv = ['qbm', 'train', 'vae', '--epochs', '0']\n" \
               "sys.exit(entry())"  # fmt: skip
    bad = subprocess.run([sys.executable, "-c", code_bad], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "epochs" in bad.stderr
