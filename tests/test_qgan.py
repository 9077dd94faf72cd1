"""Style-based quantum generator, FID, SAT-4 loading, and a short QGAN training."""

import json
import math
import os

import numpy as np
import pytest
import scipy.io
import torch

from qbm.metrics import fid_from_features
from qbm.models.qgan import ClassicalGenerator, Discriminator, StyleQuantumGenerator, count_params
from qbm.studies.capacity import fit_scaling
from qbm.training.qgan import stability_verdict

I2 = np.eye(2)


def ry(t):
    return np.array([[math.cos(t / 2), -math.sin(t / 2)], [math.sin(t / 2), math.cos(t / 2)]], dtype=complex)


def rz(t):
    return np.diag([np.exp(-1j * t / 2), np.exp(1j * t / 2)])


def on(n, q, U):
    out = np.array([[1.0 + 0j]])
    for k in range(n):
        out = np.kron(out, U if k == q else I2)
    return out


def controlled(n, c, t, U):
    P0, P1 = np.diag([1, 0]), np.diag([0, 1])
    a, b = np.array([[1.0 + 0j]]), np.array([[1.0 + 0j]])
    for k in range(n):
        a = np.kron(a, P0 if k == c else I2)
        b = np.kron(b, P1 if k == c else (U if k == t else I2))
    return a + b


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_one_layer_expectations_match_dense_unitary(n):
    gen = StyleQuantumGenerator(n, 1, readout="zx", seed=n, dtype=torch.complex128)
    z = torch.randn(3, gen.num_angles, generator=torch.Generator().manual_seed(0))
    out = gen(z).double().detach().numpy()
    ang = gen.angles(z).detach().numpy()
    Z, X = np.diag([1.0, -1.0]), np.array([[0, 1], [1, 0]])
    for b in range(3):
        a = iter(ang[b])
        U = np.eye(2**n, dtype=complex)
        for q in range(n):
            for gate in (ry, rz, ry, rz):
                U = on(n, q, gate(next(a))) @ U
        if n > 1:
            for q in range(n):
                U = controlled(n, q, (q + 1) % n, ry(next(a))) @ U
        for q in range(n):
            U = on(n, q, ry(next(a))) @ U
        psi = U[:, 0]
        want_z = [np.real(psi.conj() @ on(n, q, Z) @ psi) for q in range(n)]
        want_x = [np.real(psi.conj() @ on(n, q, X) @ psi) for q in range(n)]
        np.testing.assert_allclose(out[b], want_z + want_x, atol=1e-6)


@pytest.mark.parametrize("n, L", [(2, 1), (3, 2), (4, 3), (6, 1)])
def test_parameter_count(n, L):
    assert count_params(StyleQuantumGenerator(n, L)) == 10 * L * n + 2 * n


def test_gradients_match_finite_differences():
    gen = StyleQuantumGenerator(3, 2, readout="zx", seed=1, dtype=torch.complex128)
    z = torch.randn(4, gen.num_angles, generator=torch.Generator().manual_seed(2))
    weights = torch.randn(6, dtype=torch.float64, generator=torch.Generator().manual_seed(3))

    def f():
        return (gen(z).double() * weights).sum()

    loss = f()
    loss.backward()
    eps = 1e-4
    for p in (gen.w, gen.b):
        for k in (0, 5, len(p) - 1):
            with torch.no_grad():
                old = p[k].item()
                p[k] = old + eps
                up = f().item()
                p[k] = old - eps
                dn = f().item()
                p[k] = old
            assert p.grad[k].item() == pytest.approx((up - dn) / (2 * eps), abs=2e-5)


def test_classical_pieces_and_bad_input():
    g = ClassicalGenerator(8, width=5, depth=2)
    assert g(g.sample_noise(3)).shape == (3, 8)
    assert count_params(Discriminator(8, width=4, depth=1)) == 8 * 4 + 4 + 4 + 1
    with pytest.raises(ValueError, match="readout"):
        StyleQuantumGenerator(2, 1, readout="y")
    with pytest.raises(ValueError, match="z:"):
        StyleQuantumGenerator(2, 1)(torch.zeros(2, 3))


def test_fid_properties():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 6))
    assert abs(fid_from_features(a, a)) < 1e-6
    b = rng.normal(size=(500, 6))
    f0 = fid_from_features(a, b)
    f1 = fid_from_features(a, b + 0.5)
    f2 = fid_from_features(a, b + 1.0)
    assert f0 < 0.2 < f1 < f2
    assert f2 == pytest.approx(6 * 1.0 + f0, abs=1.0)  # ||mu shift||^2 = 6 (+- sampling noise)


def test_stability_and_fits():
    v = stability_verdict([100, 50, 20, 10, 10.2, 9.9, 10.1], floor=2.0, initial=120.0, window=0.4, threshold=0.1)
    assert v["optimal"] and v["stable"] and v["low"]
    v = stability_verdict([100, 50, 20, 10, 30, 5, 40], floor=2.0, initial=120.0, window=0.4, threshold=0.1)
    assert not v["stable"]
    x = np.array([10.0, 20, 40, 80])
    f = fit_scaling(x, 3 * np.exp(0.05 * x))
    assert f["exponential"]["r2"] > 0.999 and f["exponential"]["b"] == pytest.approx(0.05)
    f = fit_scaling(x, 2 * x**1.5)
    assert f["polynomial"]["r2"] > 0.999 and f["polynomial"]["b"] == pytest.approx(1.5)


def test_sat4_loaders(tmp_path):
    from qbm.data.sat4 import load_sat4

    rng = np.random.default_rng(0)
    ntr, nte = 12, 5
    x_tr = rng.integers(0, 256, (28, 28, 4, ntr)).astype(np.uint8)
    y_tr = np.eye(4, dtype=np.uint8)[rng.integers(0, 4, ntr)].T
    x_te = rng.integers(0, 256, (28, 28, 4, nte)).astype(np.uint8)
    y_te = np.eye(4, dtype=np.uint8)[rng.integers(0, 4, nte)].T
    mat_dir = tmp_path / "mat"
    mat_dir.mkdir()
    scipy.io.savemat(mat_dir / "sat-4-full.mat", {"train_x": x_tr, "train_y": y_tr, "test_x": x_te, "test_y": y_te})
    d = load_sat4(str(mat_dir))
    assert d.x_train.shape == (ntr, 4, 28, 28) and d.x_test.shape == (nte, 4, 28, 28)
    np.testing.assert_allclose(d.rows("train")[3, 2], x_tr[:, :, 2, 3] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(d.y_train, np.argmax(y_tr, axis=0))
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    for split, x, y in (("train", x_tr, y_tr), ("test", x_te, y_te)):
        rows = np.transpose(x, (3, 0, 1, 2)).reshape(x.shape[3], -1)
        np.savetxt(csv_dir / f"X_{split}_sat4.csv", rows, fmt="%d", delimiter=",")
        np.savetxt(csv_dir / f"y_{split}_sat4.csv", y.T, fmt="%d", delimiter=",")
    d2 = load_sat4(str(csv_dir))
    np.testing.assert_allclose(d2.x_train, d.x_train)
    np.testing.assert_array_equal(d2.y_test, d.y_test)
    os.remove(csv_dir / "y_test_sat4.csv")
    with pytest.raises(FileNotFoundError, match="y_test_sat4.csv"):
        load_sat4(str(csv_dir))
    np.savetxt(csv_dir / "y_test_sat4.csv", np.ones((nte, 3)), fmt="%d", delimiter=",")
    with pytest.raises(ValueError, match="columns"):
        load_sat4(str(csv_dir))


@pytest.mark.slow
def test_short_training_improves_fid(tmp_path):
    from qbm.cli import main

    out = str(tmp_path / "qgan")
    assert (
        main(
            [
                "train",
                "qgan",
                "--qubits",
                "4",
                "--layers",
                "2",
                "--latent",
                "8",
                "--epochs",
                "3",
                "--quiet",
                "--out",
                out,
            ]
        )
        == 0
    )
    m = json.load(open(os.path.join(out, "metrics.json")))
    assert m["generator_params"] == 10 * 2 * 4 + 2 * 4
    # three epochs cut FID to about half (0.48-0.50x measured with the early-stopped
    # autoencoder and the data set's judge); an untrained or broken generator stays near 1x
    assert min(m["history"]["fid"]) < 0.7 * m["initial_fid"]
    assert m["final_fid"] < m["initial_fid"]
    for f in ("samples.png", "curves.png"):
        assert os.path.exists(os.path.join(out, f))


def test_shared_pieces_are_cached_by_content_and_reused_without_images(tmp_path, monkeypatch):
    """The capacity study's shared pieces: built once, read back without the data (same
    latents, features and floor), rebuilt when the data change; the FID features come
    from the data set's judge, so two latent sizes share one feature space."""
    from qbm.data import load_digits
    from qbm.data.images import ImageData
    from qbm.training import qgan as Q

    monkeypatch.setenv("QBM_CACHE_DIR", str(tmp_path / "judges"))
    d = load_digits()
    path = str(tmp_path / "shared.pt")
    a = Q.Shared(d, 4, ae_epochs=2, eval_samples=100, cache=path)
    calls = []
    report = {"test_mse": 0.0, "val_code_sd": 0.5}
    monkeypatch.setattr(Q.Shared, "_train_ae", lambda self, *a_, **k: calls.append(1) or report)
    b = Q.Shared(d, 4, ae_epochs=2, eval_samples=100, cache=path)  # same content: no training
    assert not calls and b.key == a.key
    c = Q.Shared.from_cache(path, latent=4, dataset="digits")
    assert c is not None and not hasattr(c, "data")
    np.testing.assert_array_equal(c.z_train.numpy(), a.z_train.numpy())
    np.testing.assert_array_equal(c.real_feats, a.real_feats)
    assert c.fid_floor == a.fid_floor
    z = torch.zeros(10, 4)
    assert c.fid_of_latents(z) == pytest.approx(a.fid_of_latents(z))
    assert Q.Shared.from_cache(path, latent=8) is None and Q.Shared.from_cache(str(tmp_path / "none.pt")) is None
    # other data (one image changed): a different key, rebuilt
    x = d.x_train.copy()
    x[0, 0, 0, 0] = 1.0 - x[0, 0, 0, 0]
    d2 = ImageData("digits", x, d.y_train, d.x_test, d.y_test)
    e = Q.Shared(d2, 4, ae_epochs=2, eval_samples=100, cache=path)
    assert calls and e.key != a.key
    # the feature network is the judge: identical for another latent size
    f = Q.Shared(d, 6, ae_epochs=1, eval_samples=100)
    for p, q in zip(a.clf.state_dict().values(), f.clf.state_dict().values()):
        assert torch.equal(p, q)


def test_a_collapsed_autoencoder_is_trained_again_from_the_next_seed(monkeypatch):
    """An autoencoder that gives every image the same code (MNIST at latent 5 did: its
    reconstruction FID was 2260) is retrained from the next seed; three collapses are an
    error naming the latent. The code spread is measured on the validation images."""
    from qbm.data import load_digits
    from qbm.training import qgan as Q

    d = load_digits()
    real = Q.Shared._train_ae
    seeds: list[int] = []

    def collapse_first(self, epochs, seed, progress):
        seeds.append(seed)
        if len(seeds) == 1:  # a dead encoder: the same code for every image
            for p in self.ae.enc.parameters():
                p.data.zero_()
        return real(self, epochs if len(seeds) > 1 else 0, seed, progress)

    monkeypatch.setattr(Q.Shared, "_train_ae", collapse_first)
    sh = Q.Shared(d, 3, ae_epochs=2, eval_samples=100)
    assert seeds == [0, 1] and sh.ae_report["collapsed_attempts"] == 1 and sh.ae_report["val_code_sd"] >= 0.01
    assert float(sh.z_train.std(0).max()) >= 0.01
    monkeypatch.setattr(Q.Shared, "_train_ae", lambda self, e, s, p: {"val_code_sd": 0.0})
    with pytest.raises(RuntimeError, match="3-latent autoencoder collapsed on 3 seeds"):
        Q.Shared(d, 3, ae_epochs=2, eval_samples=100)


def _synthetic_rows(threshold_of, widths, params_of_width, seeds=5, flip=0.0, seed=0):
    """Runs whose optimality is True from each generator's threshold width upwards (with a
    fraction ``flip`` of seeds flipped at random)."""
    rng = np.random.default_rng(seed)
    rows = []
    for g, (gp, t) in threshold_of.items():
        for w in widths:
            for s in range(seeds):
                ok = t is not None and w >= t
                if rng.random() < flip:
                    ok = not ok
                rows.append({"generator": "quantum", "key": g, "generator_params": gp, "disc_width": w,
                             "discriminator_params": params_of_width[w], "optimal": ok, "seed": s})  # fmt: skip
    return rows


def test_capacity_decision_rule_thresholds_censoring_and_verdicts():
    from qbm.studies.capacity import decide, thresholds

    # rule 3: the smallest width from which every larger one is optimal; a lucky width below
    # a failure does not count; a generator whose largest width fails is censored
    assert thresholds({"a": {2: False, 4: True, 8: True}, "b": {2: True, 4: False, 8: True},
                       "c": {2: True, 4: True, 8: False}}) == {"a": 4, "b": 8, "c": None}  # fmt: skip
    widths = [2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64, 91, 128, 181, 256]
    dparams = {w: 3 * w * w + 20 * w for w in widths}  # a 2-layer MLP's parameter count grows like w^2
    gens = [24, 48, 72, 96, 120, 144, 168]
    # exponential: disc params double every 24 generator parameters -> widths grow like 2^(g / 48)
    expo = {f"g{g}": (g, min(widths, key=lambda w: abs(dparams[w] - 40 * 2 ** (g / 24)))) for g in gens}
    d = decide(_synthetic_rows(expo, widths, dparams), kind="quantum", bootstrap=50)
    assert d["verdict"].startswith("supported"), d["verdict"]
    # power law: disc params ~ g^1
    power = {f"g{g}": (g, min(widths, key=lambda w: abs(dparams[w] - 30 * g))) for g in gens}
    d = decide(_synthetic_rows(power, widths, dparams), kind="quantum", bootstrap=50)
    assert d["verdict"].startswith("refuted"), d["verdict"]
    # too many censored generators: undecided, whatever the fits say
    cens = dict(expo)
    for k in list(cens)[-3:]:
        cens[k] = (cens[k][0], None)
    d = decide(_synthetic_rows(cens, widths, dparams), kind="quantum", bootstrap=50)
    assert d["verdict"].startswith("undecided") and d["censored"] == 3


def test_capacity_quality_flags_compare_within_a_latent_space():
    """The secondary analysis: a run is good against the best point of its own latent
    size (median over seeds), so a 2-latent generator is not judged by a 6-latent FID."""
    from qbm.studies.capacity import decide, quality_flags

    rows = []
    for key, latent, fids in ((("quantum", 2, 1, None), 2, {8: [30.0, 31, 90], 16: [12.0, 11, 13]}),
                              (("quantum", 6, 2, None), 6, {8: [9.0, 8, 10], 16: [3.0, 3.5, 2.5]})):  # fmt: skip
        for w, v in fids.items():
            for s, f in enumerate(v):
                rows.append({"generator": "quantum", "key": key, "latent": latent, "disc_width": w, "seed": s,
                             "tail_mean_fid": f, "generator_params": 10 * latent,
                             "discriminator_params": w * 3})  # fmt: skip
    flags = quality_flags(rows, factor=2.0)
    got = {(r["latent"], r["disc_width"], r["seed"]): g for r, g in zip(rows, flags)}
    # latent 2: best point median 12 -> good up to 24; latent 6: best 3.0 -> up to 6
    assert got[(2, 16, 0)] and got[(2, 16, 1)] and not got[(2, 8, 0)]
    assert got[(6, 16, 2)] and not got[(6, 8, 1)] and not got[(6, 8, 0)]
    for r, g in zip(rows, flags):
        r["good"] = g
        r["optimal"] = False
    d = decide(rows, kind="quantum", flag="good", bootstrap=0)
    assert d["censored"] == 0 and sorted(d["points"]) == [(20.0, 48.0), (60.0, 48.0)]
    assert decide(rows, kind="quantum", bootstrap=0)["censored"] == 2


def test_capacity_thresholds_use_each_generators_own_discriminator_size():
    """The discriminator reads the generator's latent: the same width has more parameters
    after a wider latent, and the fit must use the generator's own count."""
    from qbm.studies.capacity import decide

    rows = []
    for key, latent, t in ((("quantum", 2, 1, None), 2, 8), (("quantum", 6, 2, None), 6, 16)):
        for w in (4, 8, 16):
            for s in range(3):
                rows.append({"generator": "quantum", "key": key, "latent": latent, "disc_width": w, "seed": s,
                             "generator_params": 10 * latent, "discriminator_params": w * (latent + 1) + w + 1,
                             "optimal": w >= t})  # fmt: skip
    d = decide(rows, kind="quantum", bootstrap=0)
    assert sorted(d["points"]) == [(20.0, 8 * 3 + 9), (60.0, 16 * 7 + 17)]


def test_autoencoder_epochs_are_bounded_on_big_sets(monkeypatch):
    """Above EPOCH_IMAGES training images an autoencoder epoch is that many images of a
    running shuffle (validation every EPOCH_IMAGES images), and the cache key says so;
    below it nothing changes."""
    from qbm.data import load_digits
    from qbm.training import qgan as Q

    d = load_digits()
    a = Q.Shared(d, 3, ae_epochs=2, eval_samples=100)
    assert a.ae_report["images_per_epoch"] == len(d.x_train) - round(0.1 * len(d.x_train))
    monkeypatch.setattr(Q, "EPOCH_IMAGES", 500)
    b = Q.Shared(d, 3, ae_epochs=2, eval_samples=100)
    assert b.ae_report["images_per_epoch"] == 500 and b.ae_report["epochs"] == 2
    assert b.key != a.key
