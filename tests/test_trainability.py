"""The trainability study's pieces: the shower stand-in against its parametrisation, the
variance estimators against autograd and the closed form, the parity pairs' marginals,
and the decision rules on inputs with known answers."""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil

import numpy as np
import pytest
import torch

from qbm import mmd
from qbm.data import ghz
from qbm.data import showers as sh
from qbm.studies import gradient_variance as gv
from qbm.studies import shower_losses as sl
from qbm.studies import spurious as sp
from qbm.studies.trainability import analyse_variance


# ------------------------------------------------------------------ showers
def test_shower_longitudinal_profile_matches_the_gamma_profile():
    rng = np.random.default_rng(3)
    energy = np.full(150, 20.0)
    s = sh.draw_spots(energy, rng)
    from scipy import stats

    edges = np.arange(0, 26, dtype=float)
    nshow = len(energy)
    # per shower: observed fraction of spots per layer minus the Gamma law's given its (alpha, beta)
    diffs = np.zeros((nshow, len(edges) - 1))
    for i in range(nshow):
        t = s["t"][s["shower"] == i]
        obs = np.histogram(t, edges)[0] / len(t)
        cdf = stats.gamma.cdf(edges, s["alpha"][i], scale=1 / s["beta"][i])
        diffs[i] = obs - np.diff(cdf)
    z = diffs.mean(0) / (diffs.std(0, ddof=1) / math.sqrt(nshow) + 1e-12)
    assert np.all(np.abs(z) < 4.5), z
    # and the shower-to-shower fluctuations are there: T varies with the GP spread
    lny = math.log(20.0 / sh.Detector().critical_gev)
    assert np.std(np.log(s["T"])) == pytest.approx(1 / (-1.4 + 1.26 * lny), rel=0.25)


def test_shower_radial_profile_matches_core_plus_tail():
    rng = np.random.default_rng(4)
    s = sh.draw_spots(np.full(40, 50.0), rng)
    tau = s["t"] / s["T"][s["shower"]]
    r_c, r_t, p = sh.radial_parameters(tau, np.full(len(tau), 50.0))
    for r in (0.05, 0.2, 0.5, 1.0, 2.0):
        expect = sh.radial_cdf(r, r_c, r_t, p)
        hit = (s["r"] <= r).astype(float)
        zscore = (hit - expect).sum() / math.sqrt((expect * (1 - expect)).sum())
        assert abs(zscore) < 4.5, (r, zscore)


def test_shower_grid_keeps_the_energy_and_centres_the_core():
    rng = np.random.default_rng(5)
    e = np.array([15.0, 60.0, 90.0])
    grid = sh.deposit(e, rng)
    assert grid.shape == (3, 25, 25, 25)
    frac = grid.sum(axis=(1, 2, 3)) / e
    assert np.all(frac > 0.9) and np.all(frac <= 1 + 1e-9)  # leakage only
    img = grid.sum(-1)
    for k in range(3):
        i, j = np.unravel_index(np.argmax(img[k]), (25, 25))
        assert (i, j) == (12, 12)


def test_shower_stream_is_reproducible_and_independent_of_count(tmp_path, monkeypatch):
    a = np.concatenate(list(sh.generate(300, seed=2)))
    b = np.concatenate(list(sh.generate(250, seed=2)))
    np.testing.assert_array_equal(a[:250], b)
    monkeypatch.setenv("QBM_CACHE_DIR", str(tmp_path))
    d1 = sh.depth_summed(300, seed=2)
    d2 = sh.depth_summed(300, seed=2)  # from the cache
    np.testing.assert_array_equal(d1, a.sum(-1))
    np.testing.assert_array_equal(d1, d2)
    with pytest.raises(ValueError, match="n"):
        sh.shower_distribution(7, count=300)


def test_shower_binarisation_is_the_calorimeter_files(tmp_path, monkeypatch):
    h5py = pytest.importorskip("h5py")
    from qbm.data.calorimeter import shower_distribution as from_file

    monkeypatch.setenv("QBM_CACHE_DIR", str(tmp_path))
    grids = np.concatenate(list(sh.generate(300, seed=1)))
    path = tmp_path / "showers.h5"
    with h5py.File(path, "w") as fh:
        fh["ECAL"] = grids
    for n in (4, 9, 20):
        np.testing.assert_allclose(sh.shower_distribution(n, count=300, seed=1), from_file(str(path), n))


# ------------------------------------------------------------------ variance estimators
@pytest.mark.parametrize("ansatz,layers", [("line", 2), ("all_to_all", 1)])
def test_fixed_derivative_equals_autograd(ansatz, layers):
    from qbm.models import QCBM
    from qbm.models.qcbm import kl_divergence, local_fidelity_loss

    n = 5
    res = gv.draw_values(n, ansatz, layers, 2, 11)
    m = QCBM(n, ansatz=ansatz, layers=layers)
    p = ghz(n)
    pt = torch.as_tensor(p)
    k = gv.fixed_parameter(n)
    losses = {
        "kl": lambda: kl_divergence(pt, m.probs(), 1e-300),
        "mmd:1": lambda: mmd.mmd2_exact(m.probs(), pt, 1.0),
        "mmd:n/4": lambda: mmd.mmd2_exact(m.probs(), pt, n / 4),
        "mmd:mix": lambda: mmd.mmd2_exact(m.probs(), pt, mmd.mmd_sigmas_mixture(n)),
        "fidelity": lambda: local_fidelity_loss(m, p),
    }
    for i in range(2):
        theta = np.random.default_rng([11, i]).uniform(0, 2 * math.pi, m.circuit.num_params)
        m.theta.data = torch.as_tensor(theta)
        for key, f in losses.items():
            m.theta.grad = None
            v = f()
            v.backward()
            assert float(v.detach()) == pytest.approx(res[key]["loss"][i], abs=1e-10)
            assert float(m.theta.grad[k]) == pytest.approx(res[key]["grad"][i], abs=1e-10)


def test_shot_kl_gradient_is_zero_when_no_shot_hits_the_support():
    res = gv.draw_values(14, "line", 1, 20, 0, shots=(100,))
    g = res["kl@100"]["grad"]
    # at n = 14 a random circuit puts ~2^-13 on the GHZ support: most 100-shot draws miss it
    assert np.mean(g == 0.0) > 0.5
    assert np.all(np.isfinite(g))


@pytest.mark.slow
def test_product_ansatz_variance_matches_closed_form():
    from qbm.studies.mmd_variance import closed_form_variance

    for n in (3, 4):
        res = gv.draw_values(n, "product", 0, 1500, 5, shots=())
        for key, sigma in (("mmd:1", 1.0), ("mmd:n/4", n / 4)):
            iv = gv.variance_interval(res[key]["loss"], boot=400)
            cf = closed_form_variance(n, sigma, "ghz", moments=gv.PRODUCT_MOMENTS)
            # the bootstrap interval, widened by a quarter for its own noise at 1500 draws
            width = iv["var_hi"] - iv["var_lo"]
            assert iv["var_lo"] - width / 4 <= cf <= iv["var_hi"] + width / 4, (n, key, iv, cf)
    # and the Haar moments give the paper's B
    e = math.exp(-1 / 2)
    from qbm.studies.mmd_variance import closed_form_B

    assert closed_form_B(5, 1.0) == pytest.approx(((7 + 6 * e + 2 * e * e) / 15) ** 5 - ((4 + 4 * e + e * e) / 9) ** 5)


# ------------------------------------------------------------------ pairs
@pytest.mark.parametrize("n,k", [(5, 1), (5, 2), (5, 4), (6, 3)])
def test_parity_pairs_agree_on_every_marginal_below_k_plus_one(n, k):
    even, odd = sp.parity_pair(n, k)
    uni = sp.uniform(n)
    for m in range(1, k + 1):
        for bits in itertools.combinations(range(n), m):
            np.testing.assert_allclose(sp.marginal(even, bits), sp.marginal(odd, bits), atol=1e-15)
            np.testing.assert_allclose(sp.marginal(even, bits), sp.marginal(uni, bits), atol=1e-15)
    block = tuple(range(k + 1))
    assert 0.5 * np.abs(sp.marginal(even, block) - sp.marginal(odd, block)).sum() == pytest.approx(1.0)
    assert 0.5 * np.abs(even - odd).sum() == pytest.approx(1.0)
    for sigma in (0.3, 1.0, n / 4, 10.0):
        assert float(mmd.mmd2_exact(even, odd, sigma)) == pytest.approx(sp.pair_mmd2_closed(n, k, sigma), rel=1e-10)
        got = float(mmd.mmd2_exact(even, uni, sigma))
        assert got == pytest.approx(sp.pair_mmd2_closed(n, k, sigma, "uniform"), rel=1e-10)
    # never above 2^(2 - n) for the full pair
    full_e, full_o = sp.parity_pair(n)
    assert max(float(mmd.mmd2_exact(full_e, full_o, s)) for s in np.geomspace(0.01, 100, 30)) <= 2.0 ** (2 - n)


def test_marginal_orders_bits_as_asked():
    p = np.zeros(8)
    p[0b100] = 1.0  # bit 0 (most significant) set
    np.testing.assert_array_equal(sp.marginal(p, (0,)), [0, 1])
    np.testing.assert_array_equal(sp.marginal(p, (2, 0)), [0, 1, 0, 0])  # (bit2=0, bit0=1) -> index 1


# ------------------------------------------------------------------ rules on known answers
def _draws(var_of_n, ns, size=4000, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(size) * math.sqrt(var_of_n(n)) for n in ns]


NS = list(range(4, 25, 2))


@pytest.mark.parametrize(
    "law,expected",
    [
        (lambda n: math.exp(-0.6 * n), "exponential"),
        (lambda n: n**-2.0, "polynomial"),
        (lambda n: 0.3, "flat"),
    ],
)
def test_series_rule_on_known_laws(law, expected):
    out = gv.classify_series(NS, _draws(law, NS), boot=100)
    assert out["class"] == expected, out


def test_series_rule_leaves_noise_undecided_and_censors_all_zero_points():
    rng = np.random.default_rng(1)
    noisy = [rng.standard_cauchy(30) * 10.0 ** rng.uniform(-3, 3) for _ in NS]
    assert gv.classify_series(NS, noisy, boot=50)["class"] == "undecided"
    samples = _draws(lambda n: math.exp(-0.5 * n), NS)
    samples[-1] = np.zeros(200)
    out = gv.classify_series(NS, samples, boot=50)
    assert out["censored_n"] == [24] and out["class"] == "exponential"


def _series(cls):
    return {"class": cls}


def test_claim_verdicts_for_claims_1_and_2():
    good = {
        ("line", L, f"kl@{s}", w): _series("exponential")
        for L in (1, 2)
        for s in gv.SHOTS
        for w in ("loss_var", "nonzero")
    }
    good.update({("line", L, "mmd:1", "grad_var"): _series("exponential") for L in (1, 2)})
    good.update({("line", L, "mmd:n/4", "grad_var"): _series("polynomial") for L in (1, 2)})
    v = gv.claim_verdicts(good)
    assert v["claim1"].startswith("supported") and v["claim2"].startswith("supported")
    bad = dict(good)
    bad[("line", 2, "kl@1000", "nonzero")] = _series("flat")
    bad[("line", 1, "mmd:n/4", "grad_var")] = _series("exponential")
    v = gv.claim_verdicts(bad)
    assert v["claim1"].startswith("refuted") and v["claim2"].startswith("refuted")
    part = dict(good)
    part[("line", 1, "mmd:1", "grad_var")] = _series("undecided")
    assert gv.claim_verdicts(part)["claim2"].startswith("undecided")


def test_claim1_rule_v2():
    good = {
        ("line", L, f"kl@{s}", w): _series("exponential")
        for L in (1, 2)
        for s in gv.SHOTS
        for w in ("loss_deviates", "nonzero")
    }
    v = gv.claim_verdicts(good)
    assert v["claim1_v2"].startswith("supported") and v["claim1"].startswith("undecided")  # v1 needs loss_var
    bad = dict(good)
    bad[("line", 1, "kl@100", "loss_deviates")] = _series("polynomial")
    v = gv.claim_verdicts(bad)
    assert v["claim1_v2"].startswith("refuted") and "kl@100 L=1 loss_deviates" in v["claim1_v2"]
    part = dict(good)
    del part[("line", 2, "kl@10000", "nonzero")]
    assert gv.claim_verdicts(part)["claim1_v2"].startswith("undecided")


def test_kl_only_draws_match_the_full_draws_and_concentrate_at_log_one_over_eps():
    full = gv.draw_values(6, "line", 1, 6, 3)
    kl = gv.draw_values(6, "line", 1, 6, 3, losses="kl")
    assert set(kl) == {"kl", "kl@100", "kl@1000", "kl@10000"}
    for m in ("loss", "grad"):  # same parameter draws, same exact KL (from the support's amplitudes only)
        np.testing.assert_allclose(kl["kl"][m], full["kl"][m], rtol=1e-10, atol=1e-12)
    fresh = gv.draw_values(6, "line", 1, 6, 3, losses="kl", stream=1)
    assert not np.allclose(fresh["kl"]["loss"], kl["kl"]["loss"])  # stream 1 draws other parameters
    # at n = 14 a random line circuit puts ~2^-14 on the GHZ support: most 100-shot losses sit exactly at
    # the concentrated value (no shot on the support); a draw off it has a shot there, so a smaller loss
    big = gv.draw_values(14, "line", 1, 20, 0, losses="kl", stream=1)
    conc = gv.kl_concentrated(np.array([0.5, 0.5]))
    assert conc == pytest.approx(math.log(0.5 / gv.EPS))
    at = big["kl@100"]["loss"] == conc
    assert at.sum() >= 15
    assert np.all(big["kl@100"]["loss"][~at] < conc)
    with pytest.raises(ValueError, match="losses"):
        gv.draw_values(4, "line", 1, 1, 0, losses="mmd")
    with pytest.raises(ValueError, match="stream"):
        gv.draw_values(4, "line", 1, 1, 0, stream=-1)


def _rec(n, loss, t_target, t_uni, t_odd=0.9):
    return {"config": {"n": n, "loss": loss}, "status": "ok",
            "result": {"tvd_target": t_target, "tvd_uniform": t_uni, "tvd_odd": t_odd}}  # fmt: skip


def test_claim_verdicts_for_claims_3_and_4():
    pairs = [{"n": 8, "k": 7, "against": "uniform", "sigma": "n/4", "mmd2_pair": 1e-8}]
    runs = [_rec(8, "mmd:n/4", 0.5, 0.1) for _ in range(3)] + [_rec(8, "fidelity", 0.05, 0.5) for _ in range(3)]
    v = sp.claim_verdicts(pairs, runs)
    assert v["claim3"].startswith("supported") and v["claim4"].startswith("supported")
    runs2 = [_rec(8, "mmd:n/4", 0.05, 0.5) for _ in range(3)] + [_rec(8, "fidelity", 0.6, 0.4) for _ in range(3)]
    v = sp.claim_verdicts(pairs, runs2)
    assert v["claim3"].startswith("refuted") and v["claim4"].startswith("undecided")
    runs3 = [_rec(8, "mmd:n/4", 0.5, 0.1) for _ in range(3)] + [_rec(8, "fidelity", 0.6, 0.4) for _ in range(3)]
    assert sp.claim_verdicts(pairs, runs3)["claim4"].startswith("refuted")
    assert sp.classify_run({"tvd_target": 0.4, "tvd_uniform": 0.6, "tvd_odd": 0.7}) == "elsewhere"


def test_claim5_rule():
    def recs(loss, vals, n=9, shots=100):
        return [
            {"status": "ok", "config": {"n": n, "shots": shots, "loss": loss}, "result": {"final_tvd": v}} for v in vals
        ]

    base = recs("mmd", [0.1, 0.12, 0.11]) + recs("kl", [0.8, 0.7, 0.75])
    base += recs("mmd", [0.1, 0.12, 0.11], shots=1000) + recs("kl", [0.8, 0.7, 0.75], shots=1000)
    verdict, table = sl.claim5(base)
    assert verdict.startswith("supported") and all(t["best"] == "mmd" for t in table)
    flip = recs("mmd", [0.8, 0.7, 0.75]) + recs("kl", [0.1, 0.12, 0.11])
    assert sl.claim5(flip)[0].startswith("refuted")
    assert sl.claim5(recs("mmd", [0.1, 0.5, 0.3]) + recs("kl", [0.2, 0.4, 0.3]))[0].startswith("undecided")


# ------------------------------------------------------------------ commands
def _cli(args):
    from qbm.cli import main

    return main(args)


@pytest.mark.slow
def test_gradient_variance_command_writes_and_resumes(tmp_path):
    out = str(tmp_path / "gv")
    args = ["study", "gradient-variance", "--n", "4", "5", "--draws", "10", "--chunk", "5", "--ansatz", "product",
            "line", "--out", out, "--workers", "1", "--quiet"]  # fmt: skip
    assert _cli(args) == 0
    runs = sorted(os.listdir(os.path.join(out, "n=04", "runs")))
    mtimes = [os.path.getmtime(os.path.join(out, "n=04", "runs", r)) for r in runs]
    assert _cli(args) == 0  # every run is on disk: nothing reruns
    assert mtimes == [os.path.getmtime(os.path.join(out, "n=04", "runs", r)) for r in runs]
    for f in ("report.md", "variance.csv", "series.json", "gradient_variance.png", "loss_variance.png"):
        assert os.path.exists(os.path.join(out, f))
    with open(os.path.join(out, "series.json")) as fh:
        s = json.load(fh)
    assert set(s["verdicts"]) == {"claim1", "claim1_v2", "claim2"}
    assert "gradient_variance.py" in s["rules"]
    with open(os.path.join(out, "report.md")) as fh:
        text = fh.read()
    assert "- Claim 1 (KL at finite shots concentrates exponentially; rule v1)" in text
    assert "rule v2" not in "".join(line for line in text.splitlines() if line.startswith("- Claim"))
    # rule v2's fresh draws: KL only, stream 1, its own directory; mixing streams in one directory is refused
    out1 = str(tmp_path / "gv1")
    args1 = ["study", "gradient-variance", "--n", "4", "5", "--draws", "10", "--chunk", "5", "--ansatz", "line",
             "--deep-max", "2", "--losses", "kl", "--stream", "1", "--out", out1, "--workers", "1",
             "--quiet"]  # fmt: skip
    assert _cli(args1) == 0
    with open(os.path.join(out1, "report.md")) as fh:
        claims = [line for line in fh.read().splitlines() if line.startswith("- Claim")]
    assert len(claims) == 1 and "rule v2, fresh stream 1" in claims[0]
    shutil.copytree(os.path.join(out1, "n=04", "runs"), os.path.join(out, "n=04", "runs"), dirs_exist_ok=True)
    with pytest.raises(ValueError, match="streams"):
        analyse_variance(out)


@pytest.mark.slow
def test_spurious_minima_command(tmp_path):
    out = str(tmp_path / "sp")
    assert _cli(["study", "spurious-minima", "--n", "4", "--steps", "30", "--seeds", "0", "1", "--losses", "kl",
                 "mmd:n/4", "fidelity", "--out", out, "--workers", "1", "--quiet"]) == 0  # fmt: skip
    text = open(os.path.join(out, "report.md")).read()
    assert "Claim 3" in text and "Claim 4" in text
    assert os.path.exists(os.path.join(out, "spurious_pairs.png"))


@pytest.mark.slow
def test_showers_target_is_labelled_a_stand_in(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QBM_CACHE_DIR", str(tmp_path / "cache"))
    from qbm.studies.qcbm_studies import resolve_target, target_label

    p = resolve_target("showers", 4)
    assert p.shape == (16,) and p.sum() == pytest.approx(1.0)
    assert "stand-in" in target_label("showers")


@pytest.mark.slow
def test_shower_losses_command_adds_n_later(tmp_path, monkeypatch):
    monkeypatch.setenv("QBM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(sh, "shower_distribution", lambda n, count=10000, seed=0, progress=False: _small_showers(n))
    out = str(tmp_path / "sl")
    base = ["study", "shower-losses", "--steps", "15", "--teacher-steps", "30", "--shots", "100", "--seeds", "0", "1",
            "--out", out, "--workers", "1", "--quiet"]  # fmt: skip
    assert _cli(base + ["--n", "4"]) == 0
    assert _cli(base + ["--n", "6"]) == 0  # a second n joins the same report
    text = open(os.path.join(out, "report.md")).read()
    assert "| 4 |" in text and "| 6 |" in text and "Claim 5" in text
    with open(os.path.join(out, "teachers.json")) as fh:
        t = json.load(fh)
    q = np.load(t["4"]["target_path"])
    assert q.shape == (16,) and q.sum() == pytest.approx(1.0) and t["4"]["layers"] in sl.DEPTHS


def _small_showers(n):
    from qbm.data.calorimeter import pattern_distribution

    return pattern_distribution(np.concatenate(list(sh.generate(200, seed=0))), n)


def test_plot_panels_in_numeric_order():
    from qbm.studies.runner import _sorted_values

    assert _sorted_values({12, 4, 16, 9}) == [4, 9, 12, 16]
    assert _sorted_values({"mmd", "kl"}) == ["kl", "mmd"]
    assert _sorted_values({1, "exact"}) == [1, "exact"]
