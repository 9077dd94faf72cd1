"""Boltzmann priors, BM-VAE / Gaussian VAE training, checkpoints, generation, data."""

import gzip
import json
import os

import numpy as np
import pytest
import torch

from qbm.cli import main as cli
from qbm.data import load_digits, read_idx, write_idx
from qbm.data.images import ImageData, load_mnist
from qbm.registry import NegativePhase
from qbm.models.prior import BoltzmannPrior
from qbm.models.vae import BMVAE, GaussianVAE
from qbm.training.vae import VAETrainer


def small_digits(n_train=300, n_test=100):
    d = load_digits()
    return ImageData("digits", d.x_train[:n_train], d.y_train[:n_train], d.x_test[:n_test], d.y_test[:n_test])


# ---------------------------------------------------------------- prior
def test_quasi_objective_gradient_is_exact_loglik_gradient():
    prior = BoltzmannPrior(6, "full", init_scale=0.5, seed=1)
    rng = np.random.default_rng(0)
    z_data = torch.tensor(rng.choice([-1.0, 1.0], size=(40, 6)))
    # exact: d/dtheta [ mean E(z_data) + log Z ] = -d/dtheta mean log p(z_data)
    nll = prior.energy(z_data).mean() + prior.exact_log_z()
    g_exact = torch.autograd.grad(nll, [prior.h, prior.J])
    states = prior.all_states()
    with torch.no_grad():
        p = torch.softmax(-prior.energy(states), 0)
    q = prior.quasi_objective(z_data, states, weights=p)
    g_quasi = torch.autograd.grad(q, [prior.h, prior.J])
    for a, b in zip(g_exact, g_quasi):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-10)
    # and with model samples from qbm's Gibbs sampler the estimate is close
    neg = NegativePhase("gibbs", 20000, sweeps=50, seed=0)
    q2 = prior.quasi_objective(z_data, neg.sample(prior))
    g_mc = torch.autograd.grad(q2, [prior.h, prior.J])
    for a, b in zip(g_exact, g_mc):
        assert np.abs(a.numpy() - b.numpy()).max() < 0.03


def test_prior_fit_recovers_parameters():
    true = BoltzmannPrior(5, "full", init_scale=0.6, seed=3)
    states = true.all_states()
    with torch.no_grad():
        p = torch.softmax(-true.energy(states), 0).numpy()
    rng = np.random.default_rng(1)
    data = states[rng.choice(len(states), size=20000, p=p)]
    model = BoltzmannPrior(5, "full", init_scale=0.01, seed=0)
    neg = NegativePhase("gibbs", 2000, sweeps=5, seed=2)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(250):
        batch = data[rng.choice(len(data), 2000)]
        loss = model.quasi_objective(batch, neg.sample(model))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert np.abs(model.h.detach().numpy() - true.h.detach().numpy()).max() < 0.12
    assert np.abs(model.J.detach().numpy() - true.J.detach().numpy()).max() < 0.12


def test_ais_matches_exact_log_z():
    prior = BoltzmannPrior(12, "rbm", init_scale=0.4, seed=5)
    exact = float(prior.exact_log_z().detach())
    est = prior.ais_log_z(num_chains=256, num_betas=500, seed=0)
    assert abs(est["log_z"] - exact) < max(0.05, 4 * est["stderr"])


def test_graphs_and_ising_conversion():
    z = BoltzmannPrior(32, "zephyr")
    assert z.num_edges > 32  # connected and hardware-dense
    r = BoltzmannPrior(8, "rbm", init_scale=0.3)
    assert r.num_edges == 16
    s = torch.tensor(np.random.default_rng(0).choice([-1.0, 1.0], size=(10, 8)))
    np.testing.assert_allclose(r.to_ising().energy(s.numpy()), r.energy(s).detach().numpy(), atol=1e-10)
    from qbm.rbm import RBM

    W, a, b = r.rbm_form()
    np.testing.assert_allclose(
        RBM(W, a, b).energy(s[:, :4].numpy(), s[:, 4:].numpy()), r.energy(s).detach().numpy(), atol=1e-10
    )
    with pytest.raises(ValueError, match="graph"):
        BoltzmannPrior(4, "ring")
    with pytest.raises(ValueError, match="n:"):
        BoltzmannPrior(21, "rbm").exact_log_z()


@pytest.mark.parametrize("name", ["gibbs", "rbm", "pt", "sqa"])
def test_negative_phase_samplers(name):
    prior = BoltzmannPrior(8, "rbm", init_scale=0.3, seed=0)
    neg = NegativePhase(name, 16, sweeps=5, seed=1)
    z = neg.sample(prior)
    assert z.shape == (16, 8) and set(torch.unique(z).tolist()) <= {-1.0, 1.0}
    st = neg.state_dict()
    z2 = neg.sample(prior)
    neg2 = NegativePhase(name, 16, sweeps=5, seed=99)
    neg2.load_state_dict(st)
    assert torch.equal(neg2.sample(prior), z2)


def test_negative_phase_bad_input():
    with pytest.raises(ValueError, match="sampler"):
        NegativePhase("metropolis-hastings")
    with pytest.raises(ValueError, match="sampler"):
        NegativePhase("rbm", 4).sample(BoltzmannPrior(6, "full"))


# ---------------------------------------------------------------- training
@pytest.mark.parametrize("kind", ["bm", "gaussian"])
def test_one_epoch_lowers_test_loss(kind):
    d = load_digits()
    model = BMVAE(d.shape, 16, seed=0) if kind == "bm" else GaussianVAE(d.shape, 16, seed=0)
    tr = VAETrainer(model, d, seed=0)
    before = tr.evaluate()
    rec = tr.train_epoch(progress=False)
    assert rec["test_recon"] < before["recon"] - 3
    assert rec["test_elbo"] > before["elbo"]


def test_checkpoint_resume_continues_identically(tmp_path):
    d = small_digits()
    a = VAETrainer(BMVAE(d.shape, 12, seed=4), d, seed=4, num_chains=32, sweeps=3, iw_samples=7)
    a.train(2, progress=False)
    b = VAETrainer(BMVAE(d.shape, 12, seed=4), d, seed=4, num_chains=32, sweeps=3, iw_samples=7)
    b.train(1, progress=False)
    path = str(tmp_path / "model.pt")
    b.save(path)
    c = VAETrainer.from_checkpoint(path, d)
    assert c.epoch == 1
    assert c.iw_samples == 7  # the per-epoch IW estimate keeps its K after a resume
    c.train(2, progress=False)
    for (k, va), (_, vc) in zip(a.model.state_dict().items(), c.model.state_dict().items()):
        assert torch.equal(va, vc), k
    assert a.history[-1]["test_recon"] == c.history[-1]["test_recon"]
    # corrupt files are refused with a clear error
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="model: .* not a qbm checkpoint"):
        VAETrainer.from_checkpoint(str(bad), d)
    # a byte flipped inside a checkpoint fails its checksum
    raw = bytearray(open(path, "rb").read())
    raw[len(raw) // 2] ^= 0x01
    flipped = tmp_path / "flipped.pt"
    flipped.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="corrupt.*checksum"):
        VAETrainer.from_checkpoint(str(flipped), d)
    flipped.unlink()
    # no temporary files left behind by the atomic writer
    assert sorted(os.listdir(tmp_path)) == ["bad.pt", "model.pt"]


@pytest.fixture(scope="module")
def trained_digits():
    d = load_digits()
    tr = VAETrainer(BMVAE(d.shape, 32, seed=0), d, seed=0)
    tr.train(20, progress=False)
    return tr


@pytest.mark.slow
def test_conditional_generation_moves_toward_class(trained_digits, tmp_path):
    """c-QA with the logistic-regression directions: a picker that never saw the samples
    assigns them to the requested label far above chance, and above lambda = 0."""
    from qbm import generation as G

    said: list[str] = []
    res = G.choose_lambda(trained_digits.model, trained_digits.data, lambdas=(0.0, 4.0), num=24, num_sweeps=300,
                          progress=said.append)  # fmt: skip
    # each phase announced: the two logistic fits, then each lambda
    assert len(said) == 4 and "directions" in said[0] and "picker" in said[1] and "lambda 4.0 (2 of 2)" in said[3]
    acc = {r["lambda"]: r["accuracy"] for r in res["table"]}
    assert acc[4.0] > 0.5  # chance is 0.1
    assert acc[4.0] > acc[0.0] + 0.3


def test_bad_vae_options():
    with pytest.raises(ValueError, match="relaxation"):
        BMVAE((1, 8, 8), 8, relaxation="concrete")
    with pytest.raises(ValueError, match="likelihood"):
        BMVAE((1, 8, 8), 8, likelihood="poisson")
    with pytest.raises(ValueError, match="arch"):
        BMVAE((1, 8, 8), 8, arch="conv")
    with pytest.raises(ValueError, match="batch_size"):
        VAETrainer(GaussianVAE((1, 8, 8), 4), small_digits(), batch_size=0)


def test_spike_and_exponential_relaxation_trains():
    d = small_digits()
    tr = VAETrainer(BMVAE(d.shape, 12, relaxation="spike_exp", seed=0), d, seed=0, num_chains=32)
    before = tr.evaluate()["recon"]
    tr.train(2, progress=False)
    assert tr.history[-1]["test_recon"] < before


# ---------------------------------------------------------------- data
def test_idx_roundtrip_and_truncation(tmp_path):
    a = np.random.default_rng(0).integers(0, 255, size=(7, 28, 28), dtype=np.uint8)
    for name in ("x.idx", "x.idx.gz"):
        p = str(tmp_path / name)
        write_idx(p, a)
        np.testing.assert_array_equal(read_idx(p), a)
    raw = open(tmp_path / "x.idx", "rb").read()
    (tmp_path / "short.idx").write_bytes(raw[:-10])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(str(tmp_path / "short.idx"))
    with gzip.open(tmp_path / "short.idx.gz", "wb") as fh:
        fh.write(raw[:-1])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(str(tmp_path / "short.idx.gz"))
    (tmp_path / "junk.idx").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="magic"):
        read_idx(str(tmp_path / "junk.idx"))


def test_mnist_loader_and_conv_model(tmp_path):
    rng = np.random.default_rng(1)
    for stem, n in (("train", 40), ("t10k", 10)):
        write_idx(str(tmp_path / f"{stem}-images-idx3-ubyte.gz"), rng.integers(0, 255, (n, 28, 28), dtype=np.uint8))
        write_idx(str(tmp_path / f"{stem}-labels-idx1-ubyte.gz"), rng.integers(0, 10, n, dtype=np.uint8))
    d = load_mnist(str(tmp_path))
    assert d.x_train.shape == (40, 1, 28, 28) and d.x_test.shape == (10, 1, 28, 28)
    assert 0 <= d.x_train.min() and d.x_train.max() <= 1
    tr = VAETrainer(BMVAE(d.shape, 8, seed=0), d, num_chains=8, sweeps=2)
    tr.train_epoch(progress=False)
    os.remove(tmp_path / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(FileNotFoundError, match="t10k-labels"):
        load_mnist(str(tmp_path))


# ---------------------------------------------------------------- command line
@pytest.mark.slow
def test_cli_train_generate_resume(tmp_path, capsys):
    out = str(tmp_path / "run")
    args = [
        "train",
        "vae",
        "--epochs",
        "2",
        "--latent",
        "8",
        "--chains",
        "16",
        "--anneal-sweeps",
        "100",
        "--quiet",
        "--out",
        out,
        "--holdout",
        "9",
    ]
    assert cli(args) == 0
    files = ("model.pt", "metrics.json", "reconstructions.png", "samples.png", "prior.png", "conditional.png")
    for f in files + ("curves.png",):
        assert os.path.exists(os.path.join(out, f)), f
    m = json.load(open(os.path.join(out, "metrics.json")))
    assert len(m["epochs"]) == 2 and "generation" in m and "ood" in m
    assert cli(args[:3] + ["3"] + args[4:] + ["--resume"]) == 0
    m = json.load(open(os.path.join(out, "metrics.json")))
    assert [e["epoch"] for e in m["epochs"]] == [1, 2, 3]
    png = str(tmp_path / "gen.png")
    assert (
        cli(
            [
                "generate",
                "--model",
                os.path.join(out, "model.pt"),
                "--mode",
                "cqa",
                "--label",
                "3",
                "--num",
                "8",
                "--sweeps",
                "100",
                "--out",
                png,
            ]
        )
        == 0
    )
    assert os.path.exists(png)
    assert cli(["generate", "--model", str(tmp_path / "nope.pt"), "--out", png]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_device_option(tmp_path):
    """Models and data follow --device; a bad device names the parameter."""
    from qbm.cli import main

    d = small_digits()
    tr = VAETrainer(BMVAE(d.shape, 8, seed=0), d, seed=0, num_chains=16, sweeps=2, device="cpu")
    assert tr.x_train.device.type == "cpu" and next(tr.model.parameters()).device.type == "cpu"
    with pytest.raises(ValueError, match="device"):
        VAETrainer(BMVAE(d.shape, 8, seed=0), d, device="no-such-device")
    assert main(["train", "vae", "--device", "nonsense", "--out", str(tmp_path / "x")]) == 2


def test_negative_phase_certificates_do_not_touch_training():
    """Certificates every epoch are computed outside the step: same weights as without;
    they certify the last negative-phase samples against the prior at beta = 1 (12 latent
    spins: the exact TV too)."""
    d = small_digits()
    kw = dict(seed=4, num_chains=64, sweeps=3, iw_samples=5)
    a = VAETrainer(BMVAE(d.shape, 12, seed=4), d, certify_every=1, **kw)
    a.train(2, progress=False)
    b = VAETrainer(BMVAE(d.shape, 12, seed=4), d, certify_every=0, **kw)
    b.train(2, progress=False)
    for (k, va), (_, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(va, vb), k
    c = a.history[-1]["negative_certificate"]
    assert c["num_samples"] == 64 and c["tv"] is not None and c["tv_floor"] > 0
    assert isinstance(c["ok"], bool) and c["verdict"]
    assert "negative_certificate" not in b.history[-1]
    with pytest.raises(ValueError, match="certify_every"):
        VAETrainer(BMVAE(d.shape, 12, seed=4), d, certify_every=-1)


def test_the_per_epoch_monitor_uses_a_fixed_subset_of_a_large_test_set():
    from qbm.data.images import ImageData
    from qbm.models.vae import GaussianVAE
    from qbm.training import vae as V

    rng = np.random.default_rng(0)
    x = (rng.random((1300, 1, 8, 8)) < 0.3).astype(np.float32)
    y = rng.integers(0, 10, 1300)
    data = ImageData("digits", x[:100], y[:100], x[100:], y[100:])  # 1200 test images
    t = V.VAETrainer(GaussianVAE(data.shape, 4, seed=0), data, seed=0, batch_size=50)
    rec = t.train_epoch(progress=False)
    assert rec["eval_images"] == V.MONITOR_IMAGES == len(t.x_monitor) < len(t.x_test)
    t2 = V.VAETrainer(GaussianVAE(data.shape, 4, seed=0), data, seed=0, batch_size=50)
    assert torch.equal(t2.x_monitor, t.x_monitor)  # the same subset every time
    final = t.evaluate(num_samples=5)  # the final numbers: the whole test set
    assert final["iw_samples"] == 5


def test_dynamic_binarisation_is_fresh_per_batch_and_fixed_per_seed_on_the_test_set():
    from qbm.models.vae import GaussianVAE
    from qbm.training import vae as V

    data = load_digits()
    t1 = V.VAETrainer(GaussianVAE(data.shape, 4, seed=0), data, seed=3, binarize="dynamic")
    t2 = V.VAETrainer(GaussianVAE(data.shape, 4, seed=0), data, seed=3, binarize="dynamic")
    t3 = V.VAETrainer(GaussianVAE(data.shape, 4, seed=0), data, seed=4, binarize="dynamic")
    assert set(torch.unique(t1.x_test).tolist()) == {0.0, 1.0}
    assert torch.equal(t1.x_test, t2.x_test) and not torch.equal(t1.x_test, t3.x_test)
    # each test pixel is 1 with its grey level's probability (mean over the set)
    grey = torch.as_tensor(data.rows("test"))
    assert abs(float(t1.x_test.mean() - grey.mean())) < 0.01
    r1, r2 = t1.train_epoch(progress=False), t2.train_epoch(progress=False)
    assert r1["test_iw_loglik"] == r2["test_iw_loglik"]  # same seed, same bits
    with pytest.raises(ValueError, match="binarize"):
        V.VAETrainer(GaussianVAE(data.shape, 4, seed=0), data, binarize="static")


def test_dynamic_binarisation_resumes_exactly(tmp_path):
    args = ["train", "vae", "--epochs", "2", "--latent", "8", "--chains", "16", "--anneal-sweeps", "20", "--quiet",
            "--binarize", "dynamic", "--iw-final", "20"]  # fmt: skip
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    assert cli(args + ["--out", a]) == 0
    assert cli(args[:3] + ["1"] + args[4:] + ["--out", b]) == 0
    assert cli(args + ["--out", b, "--resume"]) == 0
    ma, mb = (json.load(open(os.path.join(d, "metrics.json"))) for d in (a, b))
    assert [e["test_iw_loglik"] for e in ma["epochs"]] == [e["test_iw_loglik"] for e in mb["epochs"]]


# ---------------------------------------------------------------- training at 28x28
def _stroke_images(n, seed=0):
    """28x28 binary images: ten random 25%-dense prototypes with 10% of their pixels dropped."""
    rng = np.random.default_rng(seed)
    protos = (rng.random((10, 28, 28)) < 0.25).astype(np.float32)
    y = rng.integers(0, 10, n)
    return (protos[y] * (rng.random((n, 28, 28)) < 0.9))[:, None].astype(np.float32), y


def test_kl_warmup_starts_at_kl_start_and_reaches_one():
    d = small_digits(64, 16)
    t = VAETrainer(BMVAE(d.shape, 8, seed=0), d, num_chains=8, sweeps=1, kl_warmup=4, kl_start=0.2)
    assert t.kl_weight(0.0) == pytest.approx(0.2)
    assert t.kl_weight(2.0) == pytest.approx(0.6)
    assert t.kl_weight(4.0) == t.kl_weight(9.0) == 1.0
    assert VAETrainer(BMVAE(d.shape, 8, seed=0), d, num_chains=8, sweeps=1, kl_warmup=0).kl_weight(0.0) == 1.0
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="kl_start"):
            VAETrainer(BMVAE(d.shape, 8, seed=0), d, kl_start=bad)


def test_conv_bm_vae_keeps_its_latent_units_active_from_the_first_epoch():
    # from a KL weight near 0 the encoder's logits saturate on 28x28 images and the
    # straight-through gradient dies with them (MNIST: 0 of 32 units active after an epoch);
    # with this data and tau = 1, kl_start = 0 leaves 2 of 16 active
    x, y = _stroke_images(2600)
    data = ImageData("mnist", x[:2400], y[:2400], x[2400:], y[2400:])
    torch.set_num_threads(1)
    tr = VAETrainer(BMVAE(data.shape, 16, seed=0), data, num_chains=32, sweeps=2, kl_warmup=10, seed=0)
    rec = tr.train_epoch(progress=False)
    assert rec["active_units"] >= 12


def test_final_evaluation_on_a_fixed_subset_reports_time_and_memory():
    rng = np.random.default_rng(0)
    x = (rng.random((400, 1, 8, 8)) < 0.3).astype(np.float32)
    y = rng.integers(0, 10, 400)
    data = ImageData("digits", x[:100], y[:100], x[100:], y[100:])  # 300 test images
    t = VAETrainer(GaussianVAE(data.shape, 4, seed=0), data, seed=0, batch_size=50)
    part = t.final_evaluation(7, images=120)
    again = t.final_evaluation(7, images=120)
    whole = t.final_evaluation(7)
    assert part["images"] == 120 and whole["images"] == part["of_images"] == 300
    assert part["iw_loglik"] == again["iw_loglik"] != whole["iw_loglik"]  # the same fixed subset
    assert part["seconds"] > 0 and part["peak_rss_mb"] > 10
    with pytest.raises(ValueError, match="images"):
        t.final_evaluation(7, images=0)


@pytest.mark.parametrize("shape", [(5, 32, 14, 14), (3, 8, 7, 9)])
def test_fold_transposed_convolution_equals_torchs(shape):
    """The one-channel decoder output layer (matmul + fold) against nn.ConvTranspose2d with
    the same weights: outputs and the gradients of input, weight and bias."""
    from torch import nn

    from qbm.models.vae import FoldConvTranspose2d, conv_decoder

    torch.manual_seed(0)
    ref = nn.ConvTranspose2d(shape[1], 1, 4, 2, 1).double()
    fold = FoldConvTranspose2d(shape[1], 1, 4, 2, 1).double()
    fold.load_state_dict(ref.state_dict())
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    a, b = ref(x), fold(x2)
    assert a.shape == b.shape == (shape[0], 1, 2 * shape[2], 2 * shape[3])
    torch.testing.assert_close(b, a, rtol=0, atol=1e-12)
    w = torch.randn_like(a)
    (a * w).sum().backward()
    (b * w).sum().backward()
    torch.testing.assert_close(x2.grad, x.grad, rtol=0, atol=1e-12)
    torch.testing.assert_close(fold.weight.grad, ref.weight.grad, rtol=0, atol=1e-10)
    torch.testing.assert_close(fold.bias.grad, ref.bias.grad, rtol=0, atol=1e-10)
    kinds = [type(m) for m in conv_decoder(8, 1)] + [type(m) for m in conv_decoder(8, 3)]
    assert kinds.count(FoldConvTranspose2d) == 1 and kinds.count(nn.ConvTranspose2d) == 3
