"""The capacity study's calibrated rule: the large FID against an exact Gaussian case, the
generator's weight average, the adaptive width search, the calibration's choices and the
refusal of an uncommitted rule."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import torch

from qbm.metrics import fid_from_features
from qbm.studies import capacity as C
from qbm.training.qgan import TAIL_FID_SAMPLES, EMAWeights


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def test_fid_matches_the_exact_frechet_distance_of_two_gaussians_at_the_study_size():
    """Two Gaussians with a known Frechet distance, sampled at the large FID's size: the
    estimate lies within the O(d^2 / N) finite-sample bias (plus noise) of the exact value,
    and a wrong covariance term (the trace of C1 C2 instead of its square root) would not."""
    rng = np.random.default_rng(0)
    d, n = 16, TAIL_FID_SAMPLES
    a1, a2 = rng.normal(size=(d, d)) / np.sqrt(d), rng.normal(size=(d, d)) / np.sqrt(d)
    c1, c2 = a1 @ a1.T + 0.5 * np.eye(d), a2 @ a2.T + 0.2 * np.eye(d)
    mu1, mu2 = np.zeros(d), rng.normal(size=d) * 0.3
    s1 = _sqrtm_psd(c1)
    exact = float(((mu1 - mu2) ** 2).sum() + np.trace(c1 + c2 - 2 * _sqrtm_psd(s1 @ c2 @ s1)))
    est = [
        fid_from_features(rng.multivariate_normal(mu1, c1, n), rng.multivariate_normal(mu2, c2, n)) for _ in range(3)
    ]
    bias_scale = d * d / n  # 0.05 here
    assert abs(np.mean(est) - exact) < 2 * bias_scale, (est, exact)
    wrong = float(((mu1 - mu2) ** 2).sum() + np.trace(c1 + c2 - 2 * c1 @ c2))
    assert abs(wrong - exact) > 10 * bias_scale
    # identical distributions: only the finite-sample bias remains, positive and O(d^2 / N)
    same = fid_from_features(rng.multivariate_normal(mu1, c1, n), rng.multivariate_normal(mu1, c1, n))
    assert 0 < same < bias_scale


def test_ema_weights_are_bias_corrected_and_match_the_closed_form():
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    ema = EMAWeights(m, half_life_steps=4.0)
    assert ema.decay == pytest.approx(0.5**0.25)
    w0 = m[0].weight.detach().clone()
    ema.update(m)  # a constant parameter is returned exactly from the first step on
    assert torch.allclose(ema.averaged()["0.weight"], w0)
    a, thetas = ema.decay, [w0]
    for _ in range(8):
        with torch.no_grad():
            m[0].weight.add_(1.0)
        thetas.append(m[0].weight.detach().clone())
        ema.update(m)
    T = len(thetas)
    want = sum(a ** (T - 1 - s) * (1 - a) * th for s, th in enumerate(thetas)) / (1 - a**T)
    assert torch.allclose(ema.averaged()["0.weight"], want, atol=1e-6)
    # the average lags the raw weights (recent steps weigh most) but lies inside their range
    assert thetas[0].max() < want.max() < thetas[-1].max()
    copy = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    ema.copy_to(copy)
    assert torch.allclose(copy[0].weight, want, atol=1e-6)
    assert copy[1].num_batches_tracked == 0  # integer buffers keep the module's own values
    other = EMAWeights(m, half_life_steps=1.0)
    other.load_state_dict(ema.state_dict())
    assert other.steps == T and torch.allclose(other.averaged()["0.weight"], want, atol=1e-6)
    with pytest.raises(ValueError, match="ema_half_life"):
        EMAWeights(m, 0.0)


def test_width_ladder():
    lad = C.width_ladder(128)
    assert lad[:7] == [1, 2, 3, 4, 5, 6, 7]
    assert lad[7:] == [8, 10, 11, 13, 16, 19, 23, 27, 32, 38, 45, 54, 64, 76, 91, 108, 128]
    assert all(w in lad for w in C.COARSE_WIDTHS)


SEARCH = {"coarse": C.COARSE_WIDTHS, "coarse_seeds": C.COARSE_SEEDS, "full_seeds": C.FULL_SEEDS}


def _search(success, seed: int = 0):
    """Run the adaptive search against ``success(width, seed) -> bool``."""
    verdicts: dict[int, dict[int, bool]] = {}
    runs = 0
    for _ in range(100):
        plan = C.plan_widths(verdicts, SEARCH)
        if not plan:
            break
        for w, seeds in plan:
            for sd in seeds:
                verdicts.setdefault(w, {})[sd] = success(w, sd)
                runs += 1
    else:
        raise AssertionError("the search did not end")
    return C.tested_threshold({w: C.point_optimal(v) for w, v in verdicts.items()}), runs, verdicts


@pytest.mark.parametrize("true_t", [1, 3, 7, 9, 12, 20, 30, 50, 70, 100, 128])
def test_bisection_finds_a_monotone_threshold_within_one_ladder_step(true_t):
    lad = C.width_ladder(128)
    t, runs, _ = _search(lambda w, s: w >= true_t)
    # exactly the smallest ladder width at or above the true threshold
    assert t == min(w for w in lad if w >= true_t)
    assert runs <= 7 * 5 + 2 * 5 + 4 * 10  # coarse, two top-ups, at most 4 bisection steps


@pytest.mark.parametrize("true_t", [5, 13, 27, 45, 91])
def test_bisection_with_noisy_seeds_lands_within_one_ladder_step(true_t):
    """Each seed succeeds with probability 0.85 above the threshold and 0.15 below: the
    majority of 10 seeds at the bracketing widths still puts the threshold within one step."""
    lad = C.width_ladder(128)
    rng = np.random.default_rng(true_t)
    draws = {}

    def success(w, s):
        if (w, s) not in draws:
            draws[(w, s)] = bool(rng.random() < (0.85 if w >= true_t else 0.15))
        return draws[(w, s)]

    t, _, _ = _search(success)
    i_true = lad.index(min(w for w in lad if w >= true_t))
    assert t is not None and abs(lad.index(t) - i_true) <= 1


def test_search_censors_and_bootstrap_interval():
    t, runs, ver = _search(lambda w, s: False)
    assert t is None and runs == 7 * 5  # the coarse grid only
    # 11..19 succeed on the even seeds only: 3 of the 5 coarse seeds (a majority) but 5 of 10
    # (not one), so the top-up at 16 moves the bracket to (16, 32] and bisection ends at 23
    t, _, ver = _search(lambda w, s: w >= 20 or (w >= 11 and s % 2 == 0))
    assert t == 23 and sorted(ver) == [2, 4, 8, 16, 19, 23, 32, 64, 128]
    assert C.search_status(ver, SEARCH).startswith("threshold in (19, 23], search done; optimal seeds by width 2: 0/5")
    assert "16: 5/10" in C.search_status(ver, SEARCH)
    partial = {w: v for w, v in ver.items() if w <= 16}
    assert C.search_status(partial, SEARCH).startswith("coarse grid running")
    assert C.search_status(_search(lambda w, s: False)[2], SEARCH).startswith("censored")
    coarse = {w: {sd: w >= 20 or (w >= 11 and sd % 2 == 0) for sd in range(5)} for w in SEARCH["coarse"]}
    assert C.search_status(coarse, SEARCH).startswith("threshold in (8, 16]; ")
    ti = C.threshold_interval(ver, {w: 10 * w for w in ver}, bootstrap=200)
    assert ti["width"] == 23 and ti["params"] == 230
    lo, hi = ti["params_ci"]
    # resampled seeds can make the half-successful widths 16 and 19 pass, never 23 fail
    assert lo in (160, 190, 230) and lo < 230 and hi == 230 and ti["censored_replicates"] == 0


def _calib_record(beta2, seed, level, wiggle, trend=0.0, noise=0.1, recon=2.0, k=15):
    rng = np.random.default_rng(seed + int(beta2 * 1000))
    raw = list(level + trend * np.arange(k)[::-1] + wiggle * rng.standard_normal(k))
    ema = list(level + trend * np.arange(k)[::-1] + 0.3 * wiggle * rng.standard_normal(k))
    return {"config": {"adam_beta2": beta2}, "tail_fid_raw": raw, "tail_fid_ema": ema, "fid_recon_big": recon,
            "fid_noise": {"generated_ema": list(level + noise * rng.standard_normal(6)),
                          "generated_raw": list(level + noise * rng.standard_normal(6)), "real_bootstrap_sd": 0.4},
            "seconds": 10.0}  # fmt: skip


def test_calibration_picks_beta2_weights_tail_and_bounds_as_stated():
    recs = [_calib_record(0.9, s, 5.0, 1.0) for s in range(10)]
    recs += [_calib_record(0.999, s, 6.0, 1.0) for s in range(10)]
    r = C.derive_rule(recs)
    assert r["adam_beta2"] == 0.9 and r["weights"] == "ema"
    sds = [np.std(x["tail_fid_ema"][-r["tail_evaluations"] :], ddof=1) for x in recs[:10]]
    assert r["spread_bound"] == pytest.approx(np.percentile(sds, 95))
    means = [np.mean(x["tail_fid_ema"][-r["tail_evaluations"] :]) / 2.0 for x in recs[:10]]
    assert r["low_factor"] == pytest.approx(np.percentile(means, 95))
    # a trace still falling over the long tails: the tail is cut to where the trend is within noise
    falling = [_calib_record(0.9, s, 5.0, 0.01, trend=0.2, noise=0.1) for s in range(10)]
    assert C.derive_rule(falling)["tail_evaluations"] <= 3
    flat = [_calib_record(0.9, s, 5.0, 0.01, trend=0.0, noise=0.1) for s in range(10)]
    assert C.derive_rule(flat)["tail_evaluations"] == 15


def _rows(verdicts):
    return {"tail_fid_ema": [1.0, 1.0, 1.0], "tail_fid_raw": [1.0, 5.0, 1.0], "fid_recon_big": 1.0,
            "d_loss": [1.0] * 6, "g_loss": [0.0] * 6}  # fmt: skip


def test_calibrated_verdict_uses_the_rules_weights_tail_and_bounds():
    rule = {"weights": "ema", "tail_evaluations": 3, "spread_bound": 0.5, "low_factor": 1.5}
    rec = _rows(None)
    assert C.calibrated_verdict(rec, rule)["optimal_calibrated"]
    assert not C.calibrated_verdict(rec, {**rule, "weights": "raw"})["big_stable"]
    assert not C.calibrated_verdict(rec, {**rule, "low_factor": 0.9})["big_low"]
    with pytest.raises(ValueError, match="rule"):
        C.calibrated_verdict(rec, {**rule, "tail_evaluations": 5})
    bad = {**rec, "d_loss": [1.0] * 5 + [float("nan")]}
    assert C.calibrated_verdict(bad, rule)["diverged"]


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_an_uncommitted_rule_is_refused_and_a_committed_one_recorded(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip

    def git(*a):
        return subprocess.run(["git", "-C", str(repo), *a], check=True, capture_output=True, text=True, env=env)

    git("init", "-q")
    rule = repo / "rule.json"
    body = {"version": C.RULE_VERSION, "dataset": "digits", "adam_beta2": 0.9, "weights": "ema",
            "tail_evaluations": 3, "spread_bound": 0.5, "low_factor": 1.5, "budget": {}, "search": SEARCH}  # fmt: skip
    rule.write_text(json.dumps(body))
    with pytest.raises(ValueError, match="not committed"):
        C.load_rule(str(rule))
    git("add", "rule.json")
    git("commit", "-qm", "rule")
    r, prov = C.load_rule(str(rule))
    assert r["low_factor"] == 1.5
    assert prov["commit"] == git("rev-parse", "HEAD").stdout.strip()
    assert prov["blob"] == git("hash-object", "rule.json").stdout.strip()
    rule.write_text(json.dumps({**body, "low_factor": 3.0}))  # changed after the commit
    with pytest.raises(ValueError, match="uncommitted changes"):
        C.load_rule(str(rule))
    outside = tmp_path / "loose.json"
    outside.write_text(json.dumps(body))
    with pytest.raises(ValueError, match="not in a git repository"):
        C.load_rule(str(outside))


def test_second_preparation_reuses_the_shared_pieces_by_content_key(tmp_path, monkeypatch):
    """Two studies on the same data and config share the prepared pieces through qbm's
    cache directory: the second trains nothing and names the key it used."""
    from qbm.training import qgan as Q

    monkeypatch.setenv("QBM_CACHE_DIR", str(tmp_path / "cache"))
    base = Q.QGANConfig(ae_epochs=1, eval_samples=100)
    logs: list[str] = []
    p1 = C.prepare_shared("digits", None, [2], base, log=logs.append)
    assert "prepared" in logs[-1] and os.path.dirname(p1[2]) == str(tmp_path / "cache" / "qgan")

    def no_training(*a, **k):
        raise AssertionError("the autoencoder was trained again")

    monkeypatch.setattr(Q.Shared, "_train_ae", no_training)
    p2 = C.prepare_shared("digits", None, [2], base, log=logs.append)
    assert p2 == p1 and "reused" in logs[-1] and os.path.basename(p1[2]).split("-")[-1][:-3] in logs[-1]
    sh = Q.Shared.from_cache(p1[2], latent=2)
    assert sh is not None and sh.real_feats_big.shape[0] == 359 and sh.fid_recon_big > sh.fid_floor_big >= 0


def test_large_fid_tail_and_ema_resume_bit_for_bit(tmp_path, monkeypatch):
    """A run interrupted after 2 of 4 epochs and resumed gives the same traces (raw and EMA
    large FIDs) as one uninterrupted run: the EMA state travels in the checkpoint."""
    from dataclasses import replace

    from qbm.data import load_dataset
    from qbm.training.qgan import QGANConfig, Shared, train_qgan

    monkeypatch.setenv("QBM_CACHE_DIR", str(tmp_path / "cache"))
    shared = Shared(load_dataset("digits", None), 2, ae_epochs=1, eval_samples=100)
    cfg = QGANConfig(qubits=2, layers=1, latent=2, readout="z", disc_width=8, epochs=4, iters_per_epoch=3,
                     eval_samples=100, tail_fid_fraction=0.5)  # fmt: skip
    whole = train_qgan(cfg, shared, progress=False, out=str(tmp_path / "a"))
    h = whole["history"]
    assert h["tail_epochs"] == [3, 4] and len(h["tail_fid_raw"]) == len(h["tail_fid_ema"]) == 2
    assert h["tail_fid_raw"] != h["tail_fid_ema"]  # the average is not the raw weights
    calls = {"n": 0}
    real = shared.fid_of_latents

    def interrupt_in_epoch_3(z):  # the initial evaluation, epochs 1 and 2, then Ctrl-C
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(z)

    monkeypatch.setattr(shared, "fid_of_latents", interrupt_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train_qgan(cfg, shared, progress=False, out=str(tmp_path / "b"))
    monkeypatch.setattr(shared, "fid_of_latents", real)
    resumed = train_qgan(cfg, shared, progress=False, out=str(tmp_path / "b"))
    for k in ("fid", "tail_epochs", "tail_fid_raw", "tail_fid_ema", "d_loss"):
        assert resumed["history"][k] == h[k], k
    # continued to more epochs: the tail moves to the new last half (no stale entries)
    train_qgan(replace(cfg, epochs=2), shared, progress=False, out=str(tmp_path / "c"))
    longer = train_qgan(cfg, shared, progress=False, out=str(tmp_path / "c"))
    assert longer["history"]["tail_epochs"] == [3, 4]


def test_a_study_run_measures_the_rules_tail_bit_for_bit_at_a_fraction_of_the_cost(tmp_path, monkeypatch):
    """A study run measures only the rule's weights over its last tail_evaluations epochs
    and no latent MMD: the series the rule reads is the calibration design's last k large
    FIDs bit for bit, and the other weights' large FID is never computed."""
    from dataclasses import replace

    from qbm.data import load_dataset
    from qbm.training.qgan import QGANConfig, Shared, train_qgan

    monkeypatch.setenv("QBM_CACHE_DIR", str(tmp_path / "cache"))
    shared = Shared(load_dataset("digits", None), 2, ae_epochs=1, eval_samples=100)
    full = QGANConfig(qubits=2, layers=1, latent=2, readout="z", disc_width=8, epochs=6, iters_per_epoch=3,
                      eval_samples=100, tail_fid_fraction=0.5)  # fmt: skip
    h = train_qgan(full, shared, progress=False)["history"]
    assert h["tail_epochs"] == [4, 5, 6] and np.all(np.isfinite(h["latent_mmd"]))
    rule = {"weights": "ema", "tail_evaluations": 2, "budget": {"tail_fid_fraction": 0.5, "epochs": 6}}
    calls = {"n": 0}
    big = shared.fid_big

    def counted(z):
        calls["n"] += 1
        return big(z)

    monkeypatch.setattr(shared, "fid_big", counted)
    study = replace(full, tail_fid_fraction=C.study_tail_fraction(rule), tail_weights="ema", monitor_mmd=False)
    s = train_qgan(study, shared, progress=False)["history"]
    assert s["tail_epochs"] == [5, 6] and s["tail_fid_ema"] == h["tail_fid_ema"][-2:] and s["tail_fid_raw"] == []
    assert calls["n"] == 2 and np.all(np.isnan(s["latent_mmd"]))
    assert s["fid"] == h["fid"] and s["d_loss"] == h["d_loss"]  # training itself untouched
    assert C.study_tail_fraction({**rule, "tail_evaluations": 5}) == 0.5  # never past the calibration's tail
    with pytest.raises(ValueError, match="tail_weights"):
        train_qgan(replace(full, tail_weights="both-ish"), shared, progress=False)


def test_the_packaged_digits_rule_loads_as_committed():
    """qbm's own digits rule: complete, of this rule version, and accepted (committed in a
    clone, or packaged in an installed qbm), with its blob hash recorded."""
    rule, prov = C.load_rule(C.packaged_rule("digits"))
    assert rule["dataset"] == "digits" and rule["calibration"]["seeds"] == C.CALIBRATION_SEEDS
    assert prov["source"] == "git" or prov["source"].startswith("packaged")
    with open(C.packaged_rule("digits"), "rb") as fh:
        assert prov["blob"] == C.git_blob_hash(fh.read())
