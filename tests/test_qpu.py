"""Advantage2 backend against dwave-system's MockDWaveSampler (offline)."""

import os

import dimod
import numpy as np
import pytest
from dwave.embedding.chain_strength import uniform_torque_compensation

from qbm import IsingModel
from qbm.models.prior import BoltzmannPrior
from qbm.qpu import Advantage2Sampler, estimate_beta_eff, mock_advantage2, scale_to_ranges
from qbm.qpu.standin import SQAStandIn
from qbm.samplers import GibbsSampler


@pytest.fixture(scope="module")
def mock():
    return mock_advantage2(4, 4)


class Recorder:
    """Wraps a structured sampler and records every submission."""

    def __init__(self, child, fail_times=0, fail_on=None):
        self.child, self.calls, self.fail_times, self.fail_on = child, [], fail_times, fail_on
        self.attempts = 0

    def __getattr__(self, name):
        return getattr(self.child, name)

    def sample(self, bqm, **kw):
        self.attempts += 1
        if self.fail_times and self.attempts <= self.fail_times:
            raise ConnectionError("simulated network failure")
        if self.fail_on is not None and len(self.calls) in self.fail_on:
            raise TimeoutError("simulated solver timeout")
        self.calls.append(kw)
        return self.child.sample(bqm, **kw)


@pytest.mark.parametrize(
    "graph, n, want_method, chains",
    [
        ("zephyr", 40, "native", False),
        ("rbm", 64, "biclique", True),  # a 32 x 32 RBM
        ("full", 24, "busclique", True),  # a 24-node clique
    ],
)
@pytest.mark.slow
def test_embeddings_and_unembedded_energies(mock, graph, n, want_method, chains, tmp_path):
    prior = BoltzmannPrior(n, graph, init_scale=0.4, seed=1)
    model = prior.to_ising()
    s = Advantage2Sampler(mock, mode="qa", cache_dir=str(tmp_path))
    res = s.sample_model(model, num_reads=40, seed=0)
    assert res.info["embedding_method"] == want_method
    assert (res.info["embedding"]["max_chain"] > 1) == chains
    assert res.spins.shape == (40, n)
    np.testing.assert_allclose(res.energies, model.energy(res.spins))
    ss = s.sample(model.to_bqm(), num_reads=10)
    assert set(ss.variables) == set(model.labels)
    np.testing.assert_allclose(ss.record.energy, model.to_bqm().energies(ss))
    assert 0.0 <= ss.info["chain_break_fraction"] <= 1.0
    assert "chain_break_fraction" in ss.record.dtype.names


def test_scaling_is_exact_and_chain_strength_default(mock):
    rng = np.random.default_rng(0)
    bqm = dimod.BQM(
        {i: rng.uniform(-3, 3) for i in range(6)},
        {(i, j): rng.uniform(-2, 2) for i in range(6) for j in range(i + 1, 6)},
        0.0,
        "SPIN",
    )
    scaled, s = scale_to_ranges(bqm, (-4.0, 4.0), (-1.0, 1.0))
    assert max(abs(v) for v in scaled.quadratic.values()) <= 1.0 + 1e-12
    assert max(abs(v) for v in scaled.linear.values()) <= 4.0 + 1e-12
    assert np.isclose(
        max(max(abs(v) for v in scaled.quadratic.values()), max(abs(v) for v in scaled.linear.values()) / 4), 1.0
    )
    back = scaled.copy()
    back.scale(1 / s)
    for v in bqm.variables:
        assert back.get_linear(v) == pytest.approx(bqm.get_linear(v), rel=1e-14)
    for (u, v), b in bqm.quadratic.items():
        assert back.get_quadratic(u, v) == pytest.approx(b, rel=1e-14)
    sampler = Advantage2Sampler(mock, mode="qa")
    ss = sampler.sample(bqm, num_reads=5)
    emb = sampler.embedding_for(bqm)
    assert ss.info["chain_strength"] == pytest.approx(uniform_torque_compensation(bqm, emb))
    ss2 = sampler.sample(bqm, num_reads=5, chain_strength=2.5)
    assert ss2.info["chain_strength"] == 2.5


def test_mode_presets_and_overrides(mock):
    prior = BoltzmannPrior(24, "zephyr", init_scale=0.3)
    model = prior.to_ising()
    rec = Recorder(mock)
    Advantage2Sampler(rec, mode="dqa").sample_model(model, num_reads=5)
    kw = rec.calls[-1]
    assert kw["fast_anneal"] is True and kw["annealing_time"] == 0.02 and kw["auto_scale"] is False
    assert "flux_biases" in kw  # fields routed through pinned ancillas
    Advantage2Sampler(rec, mode="qa").sample_model(model, num_reads=5)
    assert rec.calls[-1]["annealing_time"] == 200.0 and "fast_anneal" not in rec.calls[-1]
    Advantage2Sampler(rec, mode="qa", annealing_time=500.0).sample_model(model, num_reads=5)
    assert rec.calls[-1]["annealing_time"] == 500.0
    # c-QA: the extra fields change what is programmed
    s = Advantage2Sampler(rec, mode="cqa")
    r0 = s.sample_model(model, num_reads=50, seed=1)
    field = np.full(24, 5.0)
    r1 = s.sample_model(model, num_reads=50, seed=1, extra_field=field)
    # in qbm's Ising convention a positive field favours s = -1
    assert r1.spins.mean() < r0.spins.mean() - 0.5
    with pytest.raises(ValueError, match="mode"):
        Advantage2Sampler(mock, mode="turbo")


def test_unsupported_parameters_refused_before_submission():
    base = mock_advantage2(2, 4)

    class NoFastAnneal(Recorder):
        @property
        def parameters(self):
            return {k: v for k, v in self.child.parameters.items() if k != "fast_anneal"}

    rec = NoFastAnneal(base)
    model = BoltzmannPrior(8, "zephyr").to_ising()
    with pytest.raises(ValueError, match="fast_anneal: parameter not supported"):
        Advantage2Sampler(rec, mode="dqa").sample_model(model, num_reads=5)
    with pytest.raises(ValueError, match="annealing_time"):
        Advantage2Sampler(rec, mode="qa", annealing_time=1e6).sample_model(model, num_reads=5)
    with pytest.raises(ValueError, match="bogus_option: parameter not supported"):
        Advantage2Sampler(rec, mode="qa").sample_model(model, num_reads=5, bogus_option=1)
    assert rec.calls == [] and rec.attempts == 0


def test_beta_eff_recovers_known_beta():
    rng = np.random.default_rng(3)
    n = 20
    J = np.triu(rng.uniform(-1, 1, (n, n)) * (rng.random((n, n)) < 0.3), 1)
    model = IsingModel(rng.uniform(-0.5, 0.5, n), J + J.T)
    beta = 0.7
    spins = GibbsSampler().sample_model(model, beta=beta, num_reads=3000, num_sweeps=200, seed=1).spins
    est = estimate_beta_eff(model, spins, num_bootstrap=200, seed=0)
    assert est["beta_low"] <= beta <= est["beta_high"], est
    assert abs(est["beta_eff"] - beta) < 0.1


def test_retries_and_partial_results(mock):
    model = BoltzmannPrior(16, "zephyr", init_scale=0.3).to_ising()
    flaky = Recorder(mock, fail_times=2)
    res = Advantage2Sampler(flaky, mode="qa", backoff=0.0, max_retries=3).sample_model(model, num_reads=20)
    assert len(res) == 20 and flaky.attempts == 3
    dead = Recorder(mock, fail_times=10**6)
    with pytest.raises(RuntimeError, match="after 3 attempts") as ei:
        Advantage2Sampler(dead, mode="qa", backoff=0.0, max_retries=2).sample_model(model, num_reads=20)
    assert isinstance(ei.value.__cause__, ConnectionError)
    assert dead.attempts == 3
    # completed submissions are kept when a later one fails for good
    half = Recorder(mock, fail_on={1})
    s = Advantage2Sampler(half, mode="qa", backoff=0.0, max_retries=1, max_reads_per_call=10)
    with pytest.raises(RuntimeError) as ei:
        s.sample_model(model, num_reads=30)
    assert len(ei.value.partial) == 10 and len(s.partial) == 10


def test_large_num_reads_are_split(mock):
    model = BoltzmannPrior(16, "zephyr", init_scale=0.3).to_ising()
    rec = Recorder(mock)
    res = Advantage2Sampler(rec, mode="qa", max_reads_per_call=30).sample_model(model, num_reads=100)
    assert len(res) == 100 and [c["num_reads"] for c in rec.calls] == [30, 30, 30, 10]
    assert res.info["submissions"] == 4 and res.info["qpu_access_time_us"] > 0


@pytest.mark.slow
def test_embedding_cache_is_reused(mock, tmp_path):
    bqm = BoltzmannPrior(30, "rbm", init_scale=0.3).to_ising().to_bqm()
    a = Advantage2Sampler(mock, cache_dir=str(tmp_path))
    ea = a.embedding_for(bqm)
    assert a.minorminer_calls == 1 and len(os.listdir(tmp_path)) == 1
    a.embedding_for(bqm)
    assert a.minorminer_calls == 1
    b = Advantage2Sampler(mock, cache_dir=str(tmp_path))  # a new process would do the same
    assert b.embedding_for(bqm) == ea and b.minorminer_calls == 0


def test_standin_honours_anneal_time():
    st = SQAStandIn()
    bqm = dimod.BQM({0: 0.1}, {(0, 1): -1.0}, 0, "SPIN")
    assert st.sample(bqm, num_reads=2, annealing_time=1.0).info["num_sweeps"] == 50
    assert st.sample(bqm, num_reads=2, annealing_time=100.0).info["num_sweeps"] == 5000


def test_empty_embedding_is_an_error():
    from qbm.qpu import find_embedding_for
    import networkx as nx

    with pytest.raises(ValueError, match="empty embedding"):
        find_embedding_for(nx.complete_graph(12), nx.path_graph(12), timeout=1)


@pytest.mark.slow
def test_train_vae_against_the_stand_in(tmp_path):
    from qbm.cli import main

    out = str(tmp_path / "run")
    assert (
        main(
            [
                "train",
                "vae",
                "--sampler",
                "qpu",
                "--mock",
                "zephyr:4,4",
                "--graph",
                "zephyr",
                "--latent",
                "16",
                "--epochs",
                "1",
                "--chains",
                "32",
                "--anneal-sweeps",
                "50",
                "--quiet",
                "--out",
                out,
            ]
        )
        == 0
    )
    import json

    m = json.load(open(os.path.join(out, "metrics.json")))
    assert m["sampler"] == "qpu" and "beta_eff" in m["epochs"][0]


def test_seed_reaches_the_offline_stand_in(mock):
    """Seeds 1 and 2 used to give identical samples; the same seed now repeats exactly."""
    model = BoltzmannPrior(6, "zephyr", init_scale=0.5, seed=3).to_ising()
    s = Advantage2Sampler(mock, mode="qa")
    a = s.sample_model(model, num_reads=30, seed=1)
    b = s.sample_model(model, num_reads=30, seed=1)
    c = s.sample_model(model, num_reads=30, seed=2)
    assert np.array_equal(a.spins, b.spins)
    assert not np.array_equal(a.spins, c.spins)
    assert a.info["seed_honoured"] is True


@pytest.mark.parametrize("cs", [-1.0, float("nan"), 0.0, "strong"])
def test_per_call_chain_strength_is_validated(mock, cs):
    model = BoltzmannPrior(4, "zephyr", init_scale=0.5).to_ising()
    with pytest.raises(ValueError, match="chain_strength"):
        Advantage2Sampler(mock, mode="qa").sample(model.to_bqm(), num_reads=5, chain_strength=cs)


@pytest.mark.slow
def test_qpu_vae_resume_is_exact(tmp_path):
    """`train vae --sampler qpu --mock ... --resume` continues bit-for-bit."""
    import json

    from qbm.cli import main

    common = [
        "train", "vae", "--sampler", "qpu", "--mock", "zephyr:4,4", "--graph", "zephyr", "--latent", "8",
        "--chains", "16", "--anneal-sweeps", "20", "--quiet",
    ]  # fmt: skip
    full, part = str(tmp_path / "full"), str(tmp_path / "part")
    assert main(common + ["--epochs", "2", "--out", full]) == 0
    assert main(common + ["--epochs", "1", "--out", part]) == 0
    assert main(common + ["--epochs", "2", "--out", part, "--resume"]) == 0
    a = json.load(open(os.path.join(full, "metrics.json")))["epochs"]
    b = json.load(open(os.path.join(part, "metrics.json")))["epochs"]
    assert [e["test_elbo"] for e in a] == [e["test_elbo"] for e in b]


def test_nan_bias_fields_and_exclusive_anneal_parameters_are_refused(mock):
    model = BoltzmannPrior(8, "zephyr").to_ising()
    rec = Recorder(mock)
    field = np.zeros(8)
    field[3] = np.nan
    with pytest.raises(ValueError, match="extra_fields: the bias field of 3 is nan"):
        Advantage2Sampler(rec, mode="cqa").sample_model(model, num_reads=5, extra_field=field)
    sched = [(0.0, 0.0), (10.0, 0.5), (20.0, 1.0)]
    with pytest.raises(ValueError, match="annealing_time: cannot be combined with anneal_schedule"):
        Advantage2Sampler(rec, mode="qa", annealing_time=50.0).sample_model(model, num_reads=5, anneal_schedule=sched)
    with pytest.raises(ValueError, match="annealing_time: cannot be combined"):
        Advantage2Sampler(rec, mode="qa").sample_model(model, num_reads=5, annealing_time=50.0, anneal_schedule=sched)
    assert rec.attempts == 0  # nothing was submitted
    # a schedule alone replaces the preset's annealing time
    params = Advantage2Sampler(rec, mode="qa").solver_parameters(anneal_schedule=sched)
    assert params["anneal_schedule"] == sched and "annealing_time" not in params


@pytest.mark.slow
def test_calibrating_the_energy_scale_reaches_beta_one(mock):
    """The stand-in samples a prior far colder than beta = 1 at the auto-scaled range;
    steering the programmed scale brings beta_eff (relative to the prior) to 1, and a
    fresh sample at that scale confirms it."""
    from qbm.qpu import calibrate_energy_scale, steer_scale

    assert steer_scale(2.0, 4.0) == 0.5 and steer_scale(2.0, 4.0, damped=True) == 1.0
    model = BoltzmannPrior(24, "zephyr", init_scale=1.0, seed=2).to_ising()
    qpu = Advantage2Sampler(child=mock, seed=5)
    first = qpu.sample_model(model, num_reads=300, seed=0)
    assert first.info["beta_low"] > 1.5  # colder than the prior at the auto-scaled range
    cal = calibrate_energy_scale(qpu, model, num_reads=300, rounds=6, seed=1)
    assert cal["converged"], cal["history"]
    check = qpu.sample_model(model, num_reads=300, seed=99, energy_scale=cal["energy_scale"])
    assert 0.75 < check.info["beta_eff"] < 1.33, check.info["beta_eff"]
    with pytest.raises(ValueError, match="target_beta"):
        calibrate_energy_scale(qpu, model, target_beta=0.0)
