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


@pytest.mark.parametrize(
    "flag,value", [("--gumbel-tau", "0/1"), ("--gumbel-tau", "1/0"), ("--gumbel-tau", "x"), ("--kl-start", "1.5"),
                   ("--kl-start", "-0.1"), ("--kl-start", "nan")],
)  # fmt: skip
def test_relaxation_and_warmup_options_are_checked(tmp_path, capsys, flag, value):
    with pytest.raises(SystemExit) as e:
        main(["train", "vae", flag, value, "--out", str(tmp_path / "a")])
    assert e.value.code == 2 and f"argument {flag}" in capsys.readouterr().err and not (tmp_path / "a").exists()


def test_gumbel_tau_takes_a_fraction_and_reaches_the_model(tmp_path):
    from qbm.checkpoint import load_checkpoint

    out = str(tmp_path / "r")
    assert (
        main(["train", "vae", "--epochs", "1", *FAST_VAE, "--gumbel-tau", "1/7", "--kl-start", "0", "--out", out]) == 0
    )
    ck = load_checkpoint(os.path.join(out, "model.pt"))
    assert ck["config"]["tau"] == 1 / 7 and ck["trainer"]["kl_start"] == 0.0


def test_holding_out_every_class_and_out_file_are_errors(tmp_path, capsys):
    assert main(["train", "vae", "--holdout", *map(str, range(10)), "--out", str(tmp_path / "a")]) == 2
    assert "--holdout" in capsys.readouterr().err
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["train", "vae", "--epochs", "1", "--out", str(f)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert main(["train", "vae", "--holdout", "12", "--out", str(tmp_path / "b")]) == 2
    assert "not in digits" in capsys.readouterr().err
    assert main(["train", "vae", "--anneal-ns", "0.3", "--out", str(tmp_path / "c")]) == 2  # gibbs has no anneal
    assert "--anneal-ns" in capsys.readouterr().err and not (tmp_path / "c").exists()


@pytest.mark.slow
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


@pytest.mark.slow
def test_resume_keeps_the_runs_held_out_classes(tmp_path, capsys):
    from qbm.checkpoint import load_checkpoint

    out = str(tmp_path / "run")
    assert main(["train", "vae", "--epochs", "1", *FAST_VAE, "--holdout", "3", "--out", out]) == 0
    first = capsys.readouterr().out
    assert load_checkpoint(os.path.join(out, "model.pt"))["trainer"]["holdout"] == [3]
    # --resume without --holdout trains on the same images (the checkpoint's held-out class)
    assert main(["train", "vae", "--epochs", "2", *FAST_VAE, "--resume", "--out", out]) == 0
    resumed = capsys.readouterr().out
    n_train = [line.split(":")[1].split("train")[0].strip() for line in (first, resumed)
               for line in line.splitlines() if line.startswith("training ")]  # fmt: skip
    assert len(n_train) == 2 and n_train[0] == n_train[1], n_train
    assert load_checkpoint(os.path.join(out, "model.pt"))["trainer"]["holdout"] == [3]
    # a different --holdout on --resume is a conflict
    assert main(["train", "vae", "--epochs", "3", *FAST_VAE, "--holdout", "4", "--resume", "--out", out]) == 2
    assert "--holdout [4]" in capsys.readouterr().err


@pytest.mark.slow
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


@pytest.mark.parametrize(
    "argv,match",
    [
        (["train", "qcbm", "--target", "foo"], "--target: unknown target"),
        (["spin-glass", "--graph", "chimera:4"], "--graph"),
        (["spin-glass", "--graph", "zephyr:x"], "--graph"),
        (["train", "qgan", "--dataset", "sat4"], "--data-dir"),
        (["train", "vae", "--dataset", "mnist"], "--data-dir"),
        (["train", "vae", "--dataset", "mnist", "--data-dir", "/nonexistent"], "--data-dir"),
        (["compare", "vae", "--dataset", "mnist"], "--data-dir"),
        (["study", "kl-vs-mmd", "--budget", "smoke", "--seeds", "0", "0"], "--seeds: duplicate"),
        (["study", "kl-vs-mmd", "--budget", "smoke", "--target", "nope"], "--target"),
        (["study", "kl-vs-mmd", "--budget", "smoke", "--threads-per-run", "5000"], "--threads-per-run"),
        (["study", "capacity-calibrate", "--budget", "smoke", "--seeds", "101", "101"], "--seeds: duplicate"),
        (["study", "capacity-calibrate", "--budget", "smoke", "--seeds", "3"], "--seeds: calibration seeds"),
        (["study", "capacity-calibrate", "--budget", "smoke", "--dataset", "sat4"], "--data-dir"),
        (["study", "capacity", "--dataset", "sat4"], "--data-dir"),
        (["study", "capacity", "--rule", "/nonexistent/rule.json"], "--rule"),
        (["study", "capacity", "--epochs", "3"], "--epochs: the committed rule fixes"),
        (["study", "mmd-variance", "--address", "auto"], "--address"),
    ],
)
def test_cli_mistakes_are_qbm_errors_before_any_work(argv, match, tmp_path, capsys):
    out = tmp_path / "out"
    code = main([*argv, "--json" if argv[0] == "spin-glass" else "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "qbm: error: " in err and match in err, err
    assert not out.exists(), "a refused command left a directory behind"


def test_spin_glass_json_pointing_at_a_directory_fails_before_the_run(tmp_path, capsys):
    code = main(["spin-glass", "--json", str(tmp_path), "--num-reads", "8", "--num-sweeps", "10", "--quiet"])
    cap = capsys.readouterr()
    assert code == 2 and "qbm: error: --json" in cap.err
    assert "simulated annealing" not in cap.out  # nothing ran


def test_train_qcbm_refuses_to_overwrite_a_finished_run(tmp_path, capsys):
    out = str(tmp_path / "q")
    args = ["train", "qcbm", "--n", "2", "--steps", "2", "--layers", "1", "--quiet", "--out", out]
    assert main(args) == 0
    before = open(os.path.join(out, "metrics.json")).read()
    assert main(args) == 2
    assert "already holds a finished QCBM run" in capsys.readouterr().err
    assert open(os.path.join(out, "metrics.json")).read() == before
    assert main([*args, "--force", "--seed", "1"]) == 0
    assert json.load(open(os.path.join(out, "metrics.json")))["n"] == 2


def test_every_flag_has_help_and_shows_its_default():
    from qbm.cli import build_parser
    from qbm.cli_help import missing_help

    p = build_parser()
    assert missing_help(p) == []
    r = _qbm("train", "qcbm", "--help")
    assert r.returncode == 0 and "(default: 300)" in r.stdout and "--force" in r.stdout


def test_a_study_whose_every_run_fails_exits_nonzero(tmp_path, monkeypatch, capsys):
    # a target file that exists at preflight but is removed before the runs start is
    # the rare case preflight cannot catch; every run fails, and the command says so
    from qbm.studies import cli_common
    from qbm.studies.runner import Study, grid

    import argparse

    args = argparse.Namespace(out=str(tmp_path / "s"), engine="local", workers=1, threads_per_run=1, address=None,
                              force=False, quiet=True)  # fmt: skip
    flag = tmp_path / "fail"
    flag.write_text("x")
    study = Study("demo", "qbm.studies.runner:demo_run", grid([{"beta": 1.0, "fail_if_exists": str(flag)}], [0, 1, 2]))
    with pytest.raises(cli_common.StudyFailed):
        cli_common.run(study, args)
    assert "3 of 3 runs failed" in capsys.readouterr().err
