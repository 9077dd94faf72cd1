"""qbm.generation: each mode's sampler call against exact enumeration on a tiny prior;
the judging metrics on synthetic cases with known answers; `qbm generate` outputs and
errors."""

from __future__ import annotations

import itertools
import json
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from qbm import generation as G
from qbm.models.prior import BoltzmannPrior


def _tiny(seed: int = 0, n: int = 5) -> SimpleNamespace:
    prior = BoltzmannPrior(n, "full", seed=seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        prior.h.copy_(0.6 * torch.randn(prior.h.shape, generator=g, dtype=prior.h.dtype))
        prior.J.copy_(0.5 * torch.randn(prior.J.shape, generator=g, dtype=prior.J.dtype))
    return SimpleNamespace(prior=prior)


def _exact(model: SimpleNamespace, beta: float = 1.0, field=None) -> tuple[np.ndarray, np.ndarray]:
    n = model.prior.n
    states = np.array(list(itertools.product([-1, 1], repeat=n)), dtype=np.float64)
    with torch.no_grad():
        e = model.prior.energy(torch.as_tensor(states, dtype=model.prior.h.dtype)).numpy().astype(np.float64)
    if field is not None:
        e = e - states @ np.asarray(field)
    w = np.exp(-beta * (e - e.min()))
    return states, w / w.sum()


def _tv(spins: np.ndarray, states: np.ndarray, p: np.ndarray) -> float:
    idx = {tuple(s): i for i, s in enumerate(states.astype(int))}
    counts = np.zeros(len(states))
    for s in spins.astype(int):
        counts[idx[tuple(s)]] += 1
    return 0.5 * float(np.abs(counts / len(spins) - p).sum())


def test_prior_mode_samples_exp_minus_energy():
    m = _tiny(0)
    states, p = _exact(m)
    spins = G.prior_spins(m, 20000, num_sweeps=30, seed=1)
    assert _tv(spins, states, p) < 0.04  # sampling floor about sqrt(32 / 20000) / 2 ~ 0.02


def test_cqa_mode_samples_the_tilted_prior():
    m = _tiny(1)
    b = np.array([1.0, -0.5, 0.0, 0.3, 0.8])
    lam = 1.5
    states, p = _exact(m, field=lam * b)
    spins = G.cqa_spins(m, 20000, b, lam, num_sweeps=30, seed=2)
    assert _tv(spins, states, p) < 0.04
    # and not the untilted prior
    _, p0 = _exact(m)
    assert _tv(spins, states, p0) > 0.1


def test_qa_mode_is_colder_than_the_prior():
    """An anneal to final beta 3 is not an equilibrium sampler (it freezes on the way), but
    its samples sit far nearer exp(-3E) than exp(-E), with a mean energy between the two
    exact ones' and the ground state's."""
    m = _tiny(2)
    states, p3 = _exact(m, beta=3.0)
    _, p1 = _exact(m, beta=1.0)
    spins = G.qa_spins(m, 20000, beta_final=3.0, num_sweeps=300, seed=3)
    assert _tv(spins, states, p3) < 0.15 < 0.3 < _tv(spins, states, p1)
    with torch.no_grad():
        e_all = m.prior.energy(torch.as_tensor(states, dtype=m.prior.h.dtype)).numpy()
        e = m.prior.energy(torch.as_tensor(spins.astype(np.float64), dtype=m.prior.h.dtype)).numpy()
    assert e_all.min() <= e.mean() < float(p1 @ e_all)
    with pytest.raises(ValueError, match="beta_final"):
        G.qa_spins(m, 10, beta_final=0.0)
    with pytest.raises(ValueError, match="sampler"):
        G.qa_spins(m, 10, beta_final=2.0, sampler="pt")


def test_coverage_and_smallest_class():
    even = G.class_coverage(np.repeat(np.arange(10), 7), 10)
    assert even == {"coverage": pytest.approx(1.0), "min_class_fraction": 0.1}
    c = G.class_coverage(np.full(50, 3), 10)
    assert c["coverage"] == pytest.approx(0.0) and c["min_class_fraction"] == 0.0
    two = G.class_coverage(np.array([0] * 50 + [1] * 50), 4)
    assert two["coverage"] == pytest.approx(0.5)  # log 2 / log 4


def test_precision_recall_known_answers():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(200, 5))
    pr = G.precision_recall(real, real.copy())
    assert pr == {"precision": 1.0, "recall": 1.0}
    far = G.precision_recall(real, rng.normal(size=(200, 5)) + 100.0)
    assert far == {"precision": 0.0, "recall": 0.0}
    # collapse: every generated point on a few real points -> precise but no recall
    collapsed = np.repeat(real[:2], 100, axis=0) + 1e-3 * rng.normal(size=(200, 5))
    c = G.precision_recall(real, collapsed)
    assert c["precision"] == 1.0 and c["recall"] < 0.2
    with pytest.raises(ValueError, match="k"):
        G.precision_recall(real[:3], real[:3])


def test_mean_pairwise_distance_known_answer():
    x = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]])
    assert G.mean_pairwise_distance(x) == pytest.approx((5 + 0 + 5) / 3)
    assert G.mean_pairwise_distance(np.ones((5, 3))) == 0.0


def test_qa_rule_picks_the_coldest_beta_that_keeps_coverage_and_recall():
    class FakeJudge:
        table = {1.0: (0.97, 0.5), 1.5: (0.95, 0.45), 2.0: (0.92, 0.35), 3.0: (0.5, 0.1)}

        def judge(self, images, real):
            cov, rec = self.table[float(images[0])]
            return {"fid": 10.0, "coverage": cov, "recall": rec, "precision": 1.0, "min_class_fraction": 0.05}

    said, sizes = [], []

    def sample(b, n, s):
        sizes.append(n)
        return np.full(n, b)

    beta, table = G.choose_beta(sample, FakeJudge(), np.zeros(10), betas=(1.0, 1.5, 2.0, 3.0), progress=said.append)
    assert beta == 1.5  # 2.0 keeps coverage but recall 0.35 < 0.8 x 0.5
    assert [r["chosen"] for r in table] == [False, True, False, False]
    # every beta is announced before it is judged (minutes each at thousands of spins)
    assert len(said) == 4 and "beta 2.0 (3 of 4)" in said[2], said
    # as many samples as validation images, at most QA_VAL_IMAGES
    assert sizes == [10] * 4
    sizes.clear()
    G.choose_beta(sample, FakeJudge(), np.zeros(G.QA_VAL_IMAGES + 7), betas=(1.0, 1.5))
    assert sizes == [G.QA_VAL_IMAGES] * 2


def test_wilson_lower_bound():
    assert G.wilson_lower(0.1, 320) < 0.1 < G.wilson_lower(0.5, 320)
    assert G.wilson_lower(1.0, 10) < 1.0


@pytest.mark.slow
def test_generate_writes_array_and_json_and_refuses_bad_input(tmp_path, capsys, monkeypatch):
    from qbm.cli import main as cli

    monkeypatch.setenv("QBM_CACHE_DIR", str(tmp_path / "cache"))
    out = str(tmp_path / "run")
    args = ["train", "vae", "--epochs", "2", "--latent", "8", "--chains", "16", "--anneal-sweeps", "100",
            "--quiet", "--out", out]  # fmt: skip
    assert cli(args) == 0
    m = json.load(open(os.path.join(out, "metrics.json")))
    gen = m["generation"]
    for mode in ("prior", "qa"):
        for k in ("fid", "coverage", "min_class_fraction", "precision", "recall"):
            assert np.isfinite(gen[mode][k]), (mode, k)
    assert gen["qa"]["beta"] >= 1.0 and len(gen["cqa"]["per_label"]) == 10
    assert gen["fid_floor"] < gen["prior"]["fid"]
    model = os.path.join(out, "model.pt")
    for mode, extra in (("prior", []), ("qa", []), ("cqa", ["--label", "3"])):
        png = str(tmp_path / f"{mode}.png")
        rc = cli(["generate", "--model", model, "--mode", mode, "--num", "16", "--sweeps", "50", "--out", png, *extra])
        assert rc == 0
        arr = np.load(str(tmp_path / f"{mode}.npy"))
        assert arr.shape == (16, 1, 8, 8) and arr.min() >= 0 and arr.max() <= 1
        info = json.load(open(str(tmp_path / f"{mode}.json")))
        assert info["mode"] == mode and info["seed"] == 0 and "coverage" in info["metrics"]
    printed = capsys.readouterr().out
    assert "relative" not in printed or "x its accuracy" in printed
    assert cli(["generate", "--model", model, "--mode", "cqa", "--label", "12", "--out", png]) == 2
    assert "label" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli(["generate", "--model", model, "--mode", "dream", "--out", png])
    assert e.value.code == 2 and "--mode" in capsys.readouterr().err


@pytest.mark.slow
def test_the_judge_is_the_same_network_whatever_ran_before(tmp_path, monkeypatch):
    """The judge's weights come from its fixed seed alone (initialisation included), and
    building it leaves the caller's random stream where it was."""
    from qbm.data import load_digits

    d = load_digits()
    nets = []
    for k in (1, 2):
        monkeypatch.setenv("QBM_CACHE_DIR", str(tmp_path / f"c{k}"))
        torch.manual_seed(k)
        torch.rand(13 * k)
        before = torch.random.get_rng_state()
        nets.append(G.Judge(d).net.state_dict())
        assert torch.equal(torch.random.get_rng_state(), before)
    for a, b in zip(nets[0].values(), nets[1].values()):
        assert torch.equal(a, b)


def _five_spin_model(seed=0):
    """A BM-VAE whose prior is a 5-spin fully connected Boltzmann machine with O(1) weights."""
    from qbm.models.vae import BMVAE

    m = BMVAE((1, 4, 4), 5, graph="full", seed=seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        m.prior.h.copy_(torch.randn(m.prior.h.shape, generator=g, dtype=m.prior.h.dtype) * 0.5)
        m.prior.J.copy_(torch.randn(m.prior.J.shape, generator=g, dtype=m.prior.J.dtype) * 0.6)
    return m


def _tilted_exact(model, h):
    """Exact distribution over the 32 states of p(z) exp(h . z) and its mean spins."""
    from qbm.diagnostics import all_states, exact_distribution

    ising = model.prior.to_ising(extra_field=h)
    p = exact_distribution(ising, 1.0)
    z = all_states(5).astype(np.float64)
    return p, p @ z


def test_learned_bias_fields_match_exact_moment_matching_on_a_5_spin_prior():
    from qbm.generation import learn_bias_fields

    model = _five_spin_model()
    targets = np.array([[0.6, -0.3, 0.1, 0.8, -0.7], [-0.5, 0.5, -0.2, 0.0, 0.4]])
    # exact moment matching by enumeration: Newton on h . m - log Z(h)
    from qbm.diagnostics import all_states

    z = all_states(5).astype(np.float64)
    exact = []
    for t in targets:
        h = np.zeros(5)
        for _ in range(300):
            p, m = _tilted_exact(model, h)
            cov = (z * p[:, None]).T @ z - np.outer(m, m)
            step = np.linalg.solve(cov + 1e-12 * np.eye(5), t - m)
            h = h + step / max(1.0, np.abs(step).max())  # damped: at most 1 per step
        assert np.allclose(_tilted_exact(model, h)[1], t, atol=1e-10)
        exact.append(h)
    said: list[str] = []
    r = learn_bias_fields(model, targets, num_chains=2000, seed=1, progress=said.append)
    assert all(r["converged"])
    # every label's start is reported (a long fit is not silent)
    assert [line for line in said if "step" not in line] == [
        f"c-QA fields: label {k + 1} of {len(targets)}" for k in range(len(targets))
    ]
    for k, t in enumerate(targets):
        _, m = _tilted_exact(model, r["fields"][k])
        se = np.sqrt((1 - t**2) / 2000)
        assert np.all(np.abs(m - t) <= 4 * se + 1e-3), (m, t)  # the learned fields' exact means hit the target
        assert np.allclose(r["fields"][k], exact[k], atol=0.25)


def test_learned_bias_fields_converge_on_hundreds_of_spins():
    """576 independent spins (couplings 0): the exact fields are atanh(m) - h. A fixed bound of
    2 standard errors on every spin is met by noise alone with probability 0.954^576 (the
    2176-spin MNIST prior's fit never stopped); the Bonferroni bound is met once the fields are
    right."""
    from qbm.generation import bonferroni_se, learn_bias_fields
    from qbm.models.vae import BMVAE

    model = BMVAE((1, 4, 4), 576, graph="zephyr", seed=0)
    rng = np.random.default_rng(4)
    with torch.no_grad():
        model.prior.h.copy_(torch.as_tensor(rng.normal(0, 0.5, 576), dtype=model.prior.h.dtype))
        model.prior.J.zero_()
    targets = rng.uniform(-0.8, 0.8, (2, 576))
    r = learn_bias_fields(model, targets, max_iters=60, seed=2)
    assert r["tol_se"] == bonferroni_se(576) and 3.9 < r["tol_se"] < 4.0
    assert all(r["converged"]), r["max_gap_se"]
    exact = np.arctanh(targets) - model.prior.h.detach().numpy()
    err = r["fields"] - exact
    assert np.sqrt((err**2).mean()) < 0.15, np.sqrt((err**2).mean())
    # the largest spin's error is within the stopping bound's reach (4 se at 256 chains, 1 - m^2 >= 0.36)
    assert np.abs(err).max() < 0.6


def test_newton_direction_through_the_gram_matrix_equals_the_dense_solve():
    """n > N takes the Woodbury path; the same shrunk covariance written out densely gives the
    same direction, and the intensity is 1 when the spins are independent draws."""
    from qbm.generation import FIELD_RIDGE, newton_direction

    rng = np.random.default_rng(0)
    x = np.where(rng.random((40, 120)) < 0.5, 1.0, -1.0)
    x[:, 1] = x[:, 0]  # one strongly correlated pair
    grad = rng.normal(size=120)
    step, alpha = newton_direction(x, grad)
    xc = x - x.mean(0)
    s = xc.T @ xc / 39
    dense = (1 - alpha) * s + np.diag(alpha * np.diag(s) + FIELD_RIDGE)
    assert 0 < alpha <= 1
    assert np.allclose(step, np.linalg.solve(dense, grad), rtol=1e-9, atol=1e-9)
    step2, alpha2 = newton_direction(x[:, :30], grad[:30])  # N >= n: the dense path
    s2 = s[:30, :30]
    dense2 = (1 - alpha2) * s2 + np.diag(alpha2 * np.diag(s2) + FIELD_RIDGE)
    assert np.allclose(step2, np.linalg.solve(dense2, grad[:30]), rtol=1e-9, atol=1e-9)
    # many chains of strongly coupled spins: little shrinkage
    base = np.where(rng.random((4000, 1)) < 0.5, 1.0, -1.0)
    flips = np.where(rng.random((4000, 6)) < 0.05, -1.0, 1.0)
    _, alpha3 = newton_direction(base * flips, np.ones(6))
    assert alpha3 < 0.01


def test_posterior_accuracy_matches_the_exact_expectation_over_the_posterior():
    """Three latent spins: the exact accuracy per label is sum_z q(z | x) [judge(decode(z)) = y]
    over the 8 codes; one posterior draw per image over many copies of two images lands
    within a few standard errors of it (a draw with the wrong sign convention, or labels
    mixed up, would not)."""
    from types import SimpleNamespace

    from qbm.diagnostics import all_states
    from qbm.generation import decode, encoded_means, posterior_accuracy
    from qbm.models.vae import BMVAE

    torch.manual_seed(0)
    model = BMVAE((1, 4, 4), 3, graph="full", seed=0)
    model.eval()
    last = [mod for mod in model.encoder.modules() if isinstance(mod, torch.nn.Linear)][-1]
    with torch.no_grad():  # posterior means away from 0 and of both signs
        last.weight.mul_(0.2)
        last.bias.copy_(torch.tensor([2.4, -1.6, 1.0] + [0.0] * (last.bias.numel() - 3)))
    codes = all_states(3).astype(np.float64)
    brightness = decode(model, codes).reshape(8, -1).mean(1)
    cut = float(np.median(brightness))
    judge = SimpleNamespace(num_classes=2, predict=lambda imgs: (imgs.reshape(len(imgs), -1).mean(1) > cut).astype(int))
    rng = np.random.default_rng(1)
    two = rng.random((2, 1, 4, 4)).astype(np.float32)
    reps = 2000
    x = np.repeat(two, reps, axis=0)
    y = np.repeat([0, 1], reps)
    got = posterior_accuracy(model, judge, x, y, seed=3)
    m = encoded_means(model, two)
    assert np.all(np.abs(m) < 0.95) and np.all(np.abs(m) > 0.3), m  # random draws, not the sign of the mean
    pred = judge.predict(decode(model, codes))
    for c in range(2):
        q = np.prod(np.where(codes > 0, (1 + m[c]) / 2, (1 - m[c]) / 2), axis=1)  # q(z | x_c) per code
        exact = float(q @ (pred == c))
        se = np.sqrt(exact * (1 - exact) / reps) + 1e-9
        assert abs(got[c] - exact) < 4 * se + 1e-3, (c, got[c], exact)
    assert np.isnan(posterior_accuracy(model, judge, x[:reps], y[:reps], seed=3)[1])  # a label absent: nan


def test_cqa_samples_from_learned_fields_follow_the_exact_tilted_distribution():
    from helpers import empirical, tvd, tvd_bound

    from qbm.generation import cqa_spins, learn_bias_fields

    model = _five_spin_model(seed=2)
    r = learn_bias_fields(model, np.array([[0.5, 0.2, -0.6, 0.3, 0.0]]), num_chains=1000, seed=3)
    h = r["fields"][0]
    p, _ = _tilted_exact(model, h)
    spins = cqa_spins(model, 4000, h, 1.0, num_sweeps=200, seed=5)
    assert tvd(empirical(spins), p) <= tvd_bound(p, 4000)


def test_targets_at_plus_minus_one_are_clipped_not_infinite():
    from qbm.generation import FIELD_CLIP, learn_bias_fields

    model = _five_spin_model()
    r = learn_bias_fields(model, np.array([[1.0, -1.0, 0.0, 0.5, -0.5]]), num_chains=500, max_iters=400, seed=0)
    assert np.all(np.isfinite(r["fields"])) and r["targets"][0, 0] == 1 - FIELD_CLIP


def test_cqa_field_follows_the_validation_choice_per_label():
    from qbm.generation import cqa_field

    dirs = np.arange(6.0).reshape(2, 3)
    fields = -np.ones((2, 3))
    ck = {"generation": {"directions": dirs.tolist(), "fields": fields.tolist(), "cqa_method": ["fields", "direction"],
                         "lambda": [2.0, 4.0]}}  # fmt: skip
    f0, how0, lam0 = cqa_field(ck, 0)
    f1, how1, lam1 = cqa_field(ck, 1)
    assert np.array_equal(f0, fields[0]) and "learned" in how0 and lam0 is None
    assert np.array_equal(f1, 4.0 * dirs[1]) and "lambda 4" in how1 and lam1 == 4.0
    f0l, how0l, lam0l = cqa_field(ck, 0, lam=1.5)  # an explicit lambda asks for the direction
    assert np.array_equal(f0l, 1.5 * dirs[0]) and "lambda 1.5" in how0l and lam0l == 1.5
    with pytest.raises(ValueError, match="--label"):
        cqa_field(ck, 2)
    old = {"generation": {"directions": dirs.tolist(), "lambda": 3.0}}  # a checkpoint from before the fields
    assert np.array_equal(cqa_field(old, 1)[0], 3.0 * dirs[1])


def test_pick_tilt_takes_the_most_diverse_accurate_candidate_else_the_most_accurate():
    from qbm.generation import MIN_RELATIVE_ACCURACY, pick_tilt

    rows = [{"id": 0, "accuracy": 0.99, "diversity": 0.5}, {"id": 1, "accuracy": 0.9, "diversity": 2.0},
            {"id": 2, "accuracy": 0.96, "diversity": 1.5}, {"id": 3, "accuracy": 0.3, "diversity": 9.0}]  # fmt: skip
    assert pick_tilt(rows, 1.0)["id"] == 2  # 0.9 < 0.95 x 1.0: candidate 1 is not accurate enough
    assert pick_tilt(rows, 0.9 / MIN_RELATIVE_ACCURACY)["id"] == 1
    assert pick_tilt(rows[3:] + [{"id": 4, "accuracy": 0.3, "diversity": 1.0}], 1.0)["id"] == 3  # tie: more diverse
    assert pick_tilt([{"id": 5, "accuracy": 0.5, "diversity": 1}, {"id": 6, "accuracy": 0.6, "diversity": 0}],
                     1.0)["id"] == 6  # fmt: skip
    with pytest.raises(ValueError, match="candidates"):
        pick_tilt([], 1.0)


def test_cqa_targets_fail_a_label_on_any_missed_check():
    from qbm.generation import cqa_targets

    good = {
        "relative_accuracy": 0.95,
        "relative_diversity": 0.8,
        "relative_diversity_real": 0.3,
        "distinct_fraction": 1.0,
    }
    per = [{"label": c, **good} for c in range(4)]
    assert cqa_targets(per)["met"] and cqa_targets(per)["missed"] == []
    per[1]["relative_accuracy"] = 0.85
    per[2]["distinct_fraction"] = 31 / 32
    per[3]["relative_diversity_real"] = float("nan")  # no reference: not met
    t = cqa_targets(per)
    assert not t["met"] and t["missed"] == [1, 2, 3]


def test_cqa_field_scales_learned_fields_by_the_chosen_factor():
    from qbm.generation import cqa_field

    dirs, fields = np.ones((2, 3)), np.arange(6.0).reshape(2, 3)
    ck = {"generation": {"directions": dirs.tolist(), "fields": fields.tolist(), "cqa_method": ["direction", "fields"],
                         "field_scale": [None, 2.0], "lambda": [1.0, 1.0]}}  # fmt: skip
    f1, how, lam = cqa_field(ck, 1)
    assert np.array_equal(f1, 2.0 * fields[1]) and "x 2" in how and lam is None
