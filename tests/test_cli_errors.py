"""The command line turns user errors into `qbm: error: ...` with exit status 2 (no
traceback, no huge allocation), refuses to overwrite runs, and checks --resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from qbm.cli import main

FAST_VAE = ["--latent", "8", "--chains", "16", "--anneal-sweeps", "20", "--quiet", "--batch-size", "256"]


def _qbm(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qbm.cli", *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize(
    "argv,match",
    [
        (["train", "vae", "--epochs", "-1"], "--epochs"),
        (["train", "vae", "--epochs", "0"], "--epochs"),
        (["train", "vae", "--latent", "-3"], "--latent"),
        (["train", "vae", "--lr", "nan"], "--lr"),
        (["train", "vae", "--threads", "100000"], "--threads"),
        (["train", "qcbm", "--n", "0"], "--n"),
        (["train", "qcbm", "--n", "40"], "--n"),
        (["train", "qgan", "--disc-width", "0"], "--disc-width"),
        (["study", "kl-vs-mmd", "--shots", "-5"], "--shots"),
        (["spin-glass", "--num-reads", "0"], "--num-reads"),
        (["generate", "--model", "x.pt", "--num", "0"], "--num"),
    ],
)
def test_bad_values_are_usage_errors(argv, match, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    assert "Traceback" not in err
    assert "error" in err and match in err


def test_bad_value_in_a_fresh_process_exits_2_without_traceback():
    r = _qbm("train", "qcbm", "--n", "40")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "--n" in r.stderr


@pytest.mark.parametrize("group", ["train", "study", "qpu", "compare"])
def test_group_without_subcommand_prints_its_help(group, capsys):
    assert main([group]) == 2
    err = capsys.readouterr().err
    assert f"usage: qbm {group}" in err and "subcommand is required" in err


def test_holding_out_every_class_and_out_file_are_errors(tmp_path, capsys):
    assert main(["train", "vae", "--holdout", *map(str, range(10)), "--out", str(tmp_path / "a")]) == 2
    assert "--holdout" in capsys.readouterr().err
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["train", "vae", "--epochs", "1", "--out", str(f)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert main(["train", "vae", "--holdout", "12", "--out", str(tmp_path / "b")]) == 2
    assert "not in digits" in capsys.readouterr().err


def test_rerun_into_a_run_directory_needs_resume_or_force(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["train", "vae", "--epochs", "1", *FAST_VAE, "--out", out]) == 0
    before = open(os.path.join(out, "model.pt"), "rb").read()
    capsys.readouterr()
    # a plain rerun is refused and leaves the run untouched
    assert main(["train", "vae", "--epochs", "1", *FAST_VAE, "--out", out]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert open(os.path.join(out, "model.pt"), "rb").read() == before
    # --resume with a conflicting flag names it
    assert main(["train", "vae", "--epochs", "2", *FAST_VAE, "--sampler", "pt", "--resume", "--out", out]) == 2
    err = capsys.readouterr().err
    assert "--sampler 'pt'" in err and "'gibbs'" in err
    assert main(["train", "vae", "--epochs", "2", "--latent", "12", "--resume", "--out", out]) == 2
    assert "--latent 12" in capsys.readouterr().err
    # --resume to a larger --epochs continues
    assert main(["train", "vae", "--epochs", "2", *FAST_VAE, "--resume", "--out", out]) == 0
    m = json.load(open(os.path.join(out, "metrics.json")))
    assert len(m["epochs"]) == 2
    # --force starts over
    assert main(["train", "vae", "--epochs", "1", *FAST_VAE, "--force", "--out", out]) == 0
    assert len(json.load(open(os.path.join(out, "metrics.json")))["epochs"]) == 1


def test_qgan_rerun_and_resume(tmp_path, capsys):
    out = str(tmp_path / "gan")
    base = ["train", "qgan", "--qubits", "2", "--layers", "1", "--latent", "4", "--iters", "2", "--quiet", "--out", out]
    assert main([*base, "--epochs", "1"]) == 0
    capsys.readouterr()
    assert main([*base, "--epochs", "2"]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main([*base, "--epochs", "2", "--disc-width", "8", "--resume"]) == 2
    assert "--disc-width 8" in capsys.readouterr().err
    assert main([*base, "--epochs", "2", "--resume"]) == 0
    m = json.load(open(os.path.join(out, "metrics.json")))
    assert len(m["history"]["fid"]) == 2  # epoch 1 from the checkpoint, epoch 2 added
