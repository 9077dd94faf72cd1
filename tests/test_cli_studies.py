"""Smoke tests of the study and report commands at tiny sizes (the outputs exist and parse)."""

import csv
import json
import os

import pytest

from qbm.cli import main


def test_spin_glass_report(tmp_path, capsys):
    path = str(tmp_path / "report.json")
    assert (
        main(
            ["spin-glass", "--graph", "zephyr:1", "--num-reads", "16", "--num-sweeps", "50", "--quiet", "--json", path]
        )
        == 0
    )
    rep = json.load(open(path))
    assert rep["num_variables"] == 48 and rep["sa"]["min_energy"] <= rep["sa"]["mean_energy"]
    assert "spin updates/s" in capsys.readouterr().out


def test_mmd_variance_study(tmp_path):
    out = str(tmp_path / "mv")
    assert (
        main(
            [
                "study",
                "mmd-variance",
                "--n-max",
                "16",
                "--numeric-max",
                "4",
                "--samples",
                "200",
                "--workers",
                "1",
                "--quiet",
                "--out",
                out,
            ]
        )
        == 0
    )
    rows = list(csv.DictReader(open(os.path.join(out, "mmd_variance.csv"))))
    assert {r["sigma"] for r in rows} == {"1", "10", "n/4"}
    assert any(r["loss_var"] for r in rows) and os.path.exists(os.path.join(out, "mmd_variance.png"))


def test_kl_vs_mmd_study_and_train_qcbm(tmp_path):
    out = str(tmp_path / "kl")
    assert (
        main(
            [
                "study",
                "kl-vs-mmd",
                "--n",
                "3",
                "--shots",
                "20",
                "--steps",
                "3",
                "--layers",
                "1",
                "--quiet",
                "--target",
                "ghz",
                "--seeds",
                "0",
                "1",
                "--workers",
                "1",
                "--out",
                out,
            ]
        )
        == 0
    )
    rows = list(csv.DictReader(open(os.path.join(out, "kl_vs_mmd.csv"))))
    assert {r["loss"] for r in rows} == {"kl", "mmd", "fidelity"}
    assert all(r["seeds"] == "2" and r["final_tvd_ci_lo"] for r in rows)
    assert os.path.exists(os.path.join(out, "kl_vs_mmd.png")) and len(os.listdir(os.path.join(out, "runs"))) == 6
    out2 = str(tmp_path / "qcbm")
    assert main(["train", "qcbm", "--n", "4", "--steps", "5", "--layers", "1", "--quiet", "--out", out2]) == 0
    m = json.load(open(os.path.join(out2, "metrics.json")))
    assert len(m["tvd"]) == 5 and os.path.exists(os.path.join(out2, "curves.png"))


@pytest.mark.slow
def test_capacity_calibration_then_study_tiny(tmp_path, monkeypatch, capsys):
    """The whole flow at smoke size: calibrate, commit the rule, run the adaptive study,
    rerun it (resumes: no new runs), and a second study elsewhere reuses the prepared pieces."""
    import subprocess

    monkeypatch.setenv("QBM_CACHE_DIR", str(tmp_path / "cache"))
    cal = str(tmp_path / "cal")
    common = ["--workers", "1", "--quiet"]
    assert main(["study", "capacity-calibrate", "--budget", "smoke", "--quantum", "2x1", "--seeds", "100", "101",
                 "--out", cal, *common]) == 0  # fmt: skip
    rule = json.load(open(os.path.join(cal, "rule.json")))
    assert rule["calibration"]["seeds"] == [100, 101] and rule["weights"] in ("ema", "raw")
    assert rule["tail_evaluations"] == 3 and rule["spread_bound"] >= 0 and rule["low_factor"] > 0
    assert os.path.exists(os.path.join(cal, "calibration.png"))
    repo = tmp_path / "repo"
    repo.mkdir()
    rule["search"] = {**rule["search"], "coarse": [2, 8], "coarse_seeds": [0], "full_seeds": [0, 1]}
    (repo / "rule.json").write_text(json.dumps(rule))
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip
    for a in (["init", "-q"], ["add", "rule.json"], ["commit", "-qm", "rule"]):
        subprocess.run(["git", "-C", str(repo), *a], check=True, env=env, capture_output=True)
    out = str(tmp_path / "cap")
    argv = ["study", "capacity", "--rule", str(repo / "rule.json"), "--quantum", "2x1", "--classical", "2",
            "--classical-latent", "2", "--out", out, *common]  # fmt: skip
    capsys.readouterr()
    assert main(argv) == 0
    log = capsys.readouterr().out
    assert "reused the shared pieces" in log  # the calibration prepared latent 2
    best = list(csv.DictReader(open(os.path.join(out, "capacity.csv"))))
    got = [(b["generator"], b["qubits"], b["gen_width"]) for b in best]
    assert got == [("quantum", "2", ""), ("classical", "", "2")]
    for b in best:  # the coarse grid, at least, was run for each generator
        assert {"2", "8"} <= set(b["widths_tested"].split())
    for f in ("runs.csv", "points.csv", "capacity.png", "fits.json", "prepared.json"):
        assert os.path.exists(os.path.join(out, f))
    prov = json.load(open(os.path.join(out, "prepared.json")))["rule"]
    assert prov["source"] == "git" and len(prov["commit"]) == 40
    fits = json.load(open(os.path.join(out, "fits.json")))
    assert set(fits["decisions"]) == {"quantum", "classical"} and "first_rule_decisions" in fits
    n_runs = len(list(csv.DictReader(open(os.path.join(out, "runs.csv")))))
    assert n_runs == fits["runs"] >= 4
    assert main(argv) == 0  # resumed: the same rounds, nothing new
    assert len(list(csv.DictReader(open(os.path.join(out, "runs.csv"))))) == n_runs


def test_compare_vae_tiny(tmp_path, capsys):
    out = str(tmp_path / "cmp")
    assert (
        main(
            [
                "compare",
                "vae",
                "--epochs",
                "1",
                "--latent",
                "8",
                "--samplers",
                "gibbs",
                "--chains",
                "16",
                "--seeds",
                "0",
                "1",
                "--workers",
                "1",
                "--iw-final",
                "50",
                "--quiet",
                "--out",
                out,
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "gaussian" in text and "bm/gibbs" in text and "IW log-lik" in text
    for f in ("compare.png", "compare.md", "compare.csv"):
        assert os.path.exists(os.path.join(out, f))
    rows = list(csv.DictReader(open(os.path.join(out, "compare.csv"))))
    assert [r["rank"] for r in rows] == ["1", "2"] and all(r["seeds"] == "2" for r in rows)
    iw = [float(r["iw_loglik_mean"]) for r in rows]
    assert iw == sorted(iw, reverse=True) and all(float(r["iw_loglik_ci_lo"]) <= v for r, v in zip(rows, iw))
    # generation is judged beside the likelihood, with intervals, for both models
    assert "Generation (judge" in text and "c-QA" in text
    for r in rows:
        for k in ("prior_fid", "qa_coverage", "qa_recall", "prior_precision"):
            assert float(r[f"{k}_ci_lo"]) <= float(r[f"{k}_mean"]) <= float(r[f"{k}_ci_hi"]), k
    bm = next(r for r in rows if r["model"] == "bm/gibbs")
    assert float(bm["cqa_relative_diversity_mean"]) > 0
    # "faster convergence": epochs until the Gaussian's last-epoch monitor reconstruction is reached
    assert "epochs to target recon" in text and "target reconstruction" in text
    g = next(r for r in rows if r["model"] == "gaussian")
    assert g["reached_target_recon"] in ("0", "1", "2") and int(g["final_images"]) == 359
    # the IW ladder from the final evaluation's draws: K = 1 and 10 at or below K = 50, the table's number
    # (equal within noise where one epoch left the posterior at the prior)
    for r in rows:
        assert float(r["iw_k50_mean"]) == pytest.approx(float(r["iw_loglik_mean"]), abs=1e-9)
        assert float(r["iw_k1_mean"]) <= float(r["iw_k50_mean"]) + 0.01 and "iw_k10_mean" in r
    assert "IW log-likelihood by K" in open(os.path.join(out, "compare.md")).read()


@pytest.mark.slow
def test_dqa_study_tiny(tmp_path, capsys):
    """Fast anneals are hot, slower ones colder (beta_eff rises with anneal time); the
    enumerable model gets TV and KL at beta_eff; the CSV and PNG are written."""
    import csv

    from qbm.cli import main

    out = tmp_path / "dqa"
    argv = ["study", "dqa", "--dynamics", "sqa", "--out", str(out), "--models", "zephyr:1,1", "--anneal-times",
            "0.01", "0.1", "--reads", "200", "--seeds", "0", "1", "--workers", "1", "--quiet", "--gibbs-sweeps",
            "200"]  # fmt: skip
    rc = main(argv)
    assert rc == 0
    rows = list(csv.DictReader(open(out / "dqa.csv")))
    assert [float(r["anneal_time_us"]) for r in rows] == [0.01, 0.1]
    assert float(rows[1]["beta_eff_mean"]) > 3 * float(rows[0]["beta_eff_mean"])
    assert float(rows[1]["pt_energy_per_spin_ci_hi"]) < 0  # energy intervals are not clipped at 0
    for r in rows:
        assert 0 <= float(r["tv_mean"]) <= 1 and float(r["kl_mean"]) >= 0 and r["gibbs_tv_mean"] and r["pt_tv_mean"]
    assert (out / "dqa.png").stat().st_size > 10_000
    capsys.readouterr()
    assert main(["study", "dqa", "--out", str(tmp_path / "x"), "--models", "chimera:2", "--quiet"]) == 2
    assert "models" in capsys.readouterr().err


@pytest.mark.slow
def test_dqa_study_exact_dynamics_tiny(tmp_path, capsys):
    """The exact arm: a 0.1 ns quench is hot and Boltzmann (|psi|^2 close to its best fit,
    beta_eff near the linear-quench beta_pred), a 10 ns anneal is colder; the trace shows the
    state starting in the ground state; CSV, PNGs and verdicts are written."""
    import csv

    from qbm.cli import main

    out = tmp_path / "dqa"
    argv = ["study", "dqa", "--dynamics", "exact", "--out", str(out), "--models", "glass:6", "--anneal-times",
            "0.0001", "0.01", "--trace-times", "0.01", "--reads", "300", "--seeds", "0", "1", "2", "--workers", "1",
            "--quiet"]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "verdict (exact dynamics)" in text and "glass:6:" in text
    rows = list(csv.DictReader(open(out / "dqa_exact.csv")))
    assert [float(r["anneal_time_us"]) for r in rows] == [0.0001, 0.01]
    fast, slow = rows
    assert float(fast["tv_exact_best"]) < 0.03 and float(fast["beta_eff_mean"]) < 0.2
    assert abs(float(fast["beta_eff_mean"]) - float(fast["beta_pred"])) < 0.05
    assert float(slow["beta_eff_mean"]) > 3 * float(fast["beta_eff_mean"])
    assert float(slow["ground_state_probability"]) > float(fast["ground_state_probability"])
    for name in ("dqa_exact.png", "dqa_freeze.png"):
        assert (out / name).stat().st_size > 10_000
    assert not (out / "dqa.csv").exists()  # no SQA arm was asked for


def test_compare_vae_holdout_reports_one_class_ood_auroc(tmp_path, capsys):
    out = str(tmp_path / "cmp")
    args = ["compare", "vae", "--epochs", "1", "--latent", "8", "--samplers", "gibbs", "--chains", "16", "--seeds",
            "0", "1", "--workers", "1", "--iw-final", "20", "--out", out]  # fmt: skip
    assert main(args + ["--holdout", "12"]) != 0  # not a digit class: refused before any run
    assert "--holdout: classes [12] are not in digits" in capsys.readouterr().err
    assert not os.path.exists(out)
    assert main(args + ["--holdout", "3"]) == 0
    text = capsys.readouterr().out
    assert "One-class OOD AUROC, classes [3] held out" in text
    # the cost printed up front, before any run
    assert text.index("budget: 4 runs to do, about") < text.index("| rank |") and "core-hours" in text
    rows = list(csv.DictReader(open(os.path.join(out, "compare.csv"))))
    for r in rows:
        for k in ("ood_auroc_prior_energy", "ood_auroc_neg_elbo"):
            assert 0.0 <= float(r[f"{k}_mean"]) <= 1.0
    from qbm.data import load_digits

    d = load_digits()
    runs = os.path.join(out, "runs")
    recs = [json.load(open(os.path.join(runs, f))) for f in os.listdir(runs) if f.endswith(".json")]
    assert len(recs) == 4
    for r in recs:  # the held-out digit's test images against the rest
        assert r["result"]["ood"]["out_images"] == int((d.y_test == 3).sum())
        assert r["result"]["ood"]["in_images"] == int((d.y_test != 3).sum())
