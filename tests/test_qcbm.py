"""State-vector simulator, QCBM losses and training, MMD variance closed form, data."""

import math

import numpy as np
import pytest
import torch

from qbm.data import bars_and_stripes, cardinality, ghz, random_sparse
from qbm.models import QCBM, kl_divergence, local_fidelity_loss, train_qcbm
from qbm.models.qcbm import shot_loss_and_grad
from qbm.quantum import Circuit
from qbm.quantum import statevector as sv
from qbm.studies.mmd_variance import closed_form_C, closed_form_variance, numerical_variance
from qbm import mmd

X = np.array([[0, 1], [1, 0]], dtype=complex)
Y = np.array([[0, -1j], [1j, 0]])
Z = np.diag([1.0, -1.0]).astype(complex)
I2 = np.eye(2)


def expm_pauli(P, theta):
    return math.cos(theta / 2) * I2 - 1j * math.sin(theta / 2) * P


def op_on(n, q, U):
    out = np.array([[1.0]])
    for k in range(n):
        out = np.kron(out, U if k == q else I2)
    return out


def cnot_dense(n, c, t):
    P0, P1 = np.diag([1, 0]), np.diag([0, 1])
    a, b = np.array([[1.0]]), np.array([[1.0]])
    for k in range(n):
        a = np.kron(a, P0 if k == c else I2)
        b = np.kron(b, P1 if k == c else (X if k == t else I2))
    return a + b


def test_gates_match_dense_matrices():
    n, rng = 3, np.random.default_rng(0)
    c = Circuit(n)
    c.rx(0), c.ry(1), c.rz(2), c.cx(2, 0), c.euler(1), c.cx(0, 1), c.cz(1, 2), c.crot("ry", 2, 1)
    theta = rng.uniform(0, 2 * np.pi, c.num_params)
    psi = c.state(torch.tensor(theta), dtype=torch.complex128).reshape(-1).numpy()
    U = np.eye(2**n, dtype=complex)
    k = 0
    for g in c.gates:
        if g.name in ("rx", "ry", "rz"):
            P = {"rx": X, "ry": Y, "rz": Z}[g.name]
            G = op_on(n, g.qubits[0], expm_pauli(P, theta[g.param]))
        elif g.name == "cx":
            G = cnot_dense(n, *g.qubits)
        elif g.name == "cz":
            G = np.diag(
                [(-1) ** (((i >> (n - 1 - g.qubits[0])) & 1) * ((i >> (n - 1 - g.qubits[1])) & 1)) for i in range(2**n)]
            ).astype(complex)
        else:
            cq, tq = g.qubits
            P0, P1 = np.diag([1, 0]), np.diag([0, 1])
            R = expm_pauli(Y, theta[g.param])
            a, b = np.array([[1.0]]), np.array([[1.0]])
            for q in range(n):
                a = np.kron(a, P0 if q == cq else I2)
                b = np.kron(b, P1 if q == cq else (R if q == tq else I2))
            G = a + b
        U = G @ U
        k += 1
    want = U[:, 0]
    np.testing.assert_allclose(psi, want, atol=1e-10)
    # the inverse circuit undoes it
    back = c.state(
        torch.tensor(theta), initial=torch.tensor(psi).reshape(1, 2, 2, 2), inverse=True, dtype=torch.complex128
    )
    np.testing.assert_allclose(back.reshape(-1).numpy(), np.eye(8)[0], atol=1e-10)


def test_expectations_and_sampling():
    c = Circuit(2)
    c.ry(0), c.rx(1)
    th = torch.tensor([0.7, 1.9], dtype=torch.float64)
    psi = c.state(th, dtype=torch.complex128)
    np.testing.assert_allclose(sv.expect_z(psi)[0].numpy(), [math.cos(0.7), math.cos(1.9)], atol=1e-12)
    np.testing.assert_allclose(sv.expect_x(psi)[0].numpy(), [math.sin(0.7), 0.0], atol=1e-12)
    p = sv.probabilities(psi)[0]
    a = sv.sample_bits(p, 1000, torch.Generator().manual_seed(1))
    b = sv.sample_bits(p, 1000, torch.Generator().manual_seed(1))
    np.testing.assert_array_equal(a, b)
    assert abs(a[:, 0].mean() - (1 - math.cos(0.7)) / 2) < 0.05


def test_parameter_shift_equals_autograd_in_expectation():
    """Exact (infinite-shot) versions of the shift-rule gradients match autograd."""
    n = 3
    target = cardinality(n, 1)
    model = QCBM(n, ansatz="line", layers=1, seed=2, dtype=torch.complex128)
    P = model.circuit.num_params
    theta = model.theta.detach()
    shifts = torch.cat(
        [
            theta + (math.pi / 2) * torch.eye(P, dtype=theta.dtype),
            theta - (math.pi / 2) * torch.eye(P, dtype=theta.dtype),
        ]
    )
    q = model.probs()
    qs = model.probs(shifts)
    sig = [0.5, 2.0]
    loss = mmd.mmd2_exact(q, torch.tensor(target), sig)
    (g_auto,) = torch.autograd.grad(loss, model.theta)
    dq = (qs[:P] - qs[P:]).detach()
    g_shift = dq @ mmd.kernel_matvec((q - torch.tensor(target)).detach(), sig)
    np.testing.assert_allclose(g_shift.numpy(), g_auto.numpy(), atol=1e-8)
    fl = local_fidelity_loss(model, target)
    (gf,) = torch.autograd.grad(fl, model.theta)
    fs = local_fidelity_loss(model, target, shifts).detach()
    np.testing.assert_allclose(((fs[:P] - fs[P:]) / 2).numpy(), gf.numpy(), atol=1e-8)


@pytest.mark.parametrize("ansatz", ["product", "line", "all_to_all"])
@pytest.mark.parametrize("inverse", [False, True])
def test_forked_shifted_states_equal_the_full_shift_batch(ansatz, inverse):
    """Circuit.shifted_states (rows forked from the unshifted circuit at their shifted
    gate) gives the states of the explicit batch [theta, theta + s e_k, theta - s e_k]."""
    n = 4
    model = QCBM(n, ansatz=ansatz, layers=2, seed=3, dtype=torch.complex128)
    c, theta = model.circuit, model.theta.detach()
    P = c.num_params
    eye = 0.7 * torch.eye(P, dtype=theta.dtype)
    batch = torch.cat([theta[None], theta[None] + eye, theta[None] - eye])
    g = torch.Generator().manual_seed(0)
    phi = torch.randn((1,) + (2,) * n, dtype=torch.complex128, generator=g)
    phi = phi / phi.abs().pow(2).sum().sqrt()
    init = phi if inverse else None
    full = c.state(batch, initial=init, inverse=inverse, dtype=torch.complex128)
    forked = c.shifted_states(theta, 0.7, initial=init, inverse=inverse, dtype=torch.complex128)
    assert c.single_use_params()
    torch.testing.assert_close(forked, full, rtol=0, atol=1e-12)
    shared = Circuit(2)
    k = shared.rx(0)
    shared.rot("ry", 1, param=k)
    assert not shared.single_use_params()
    with pytest.raises(ValueError, match="shifted_states"):
        shared.shifted_states(torch.zeros(1), 0.5)


def test_rz_fast_path_matches_the_dense_gate():
    n, th = 3, 0.83
    c = Circuit(n)
    c.ry(0), c.ry(1), c.ry(2), c.rz(1)
    params = torch.tensor([0.3, 1.1, -0.4, th], dtype=torch.float64)
    psi = c.state(params, dtype=torch.complex128).reshape(-1).numpy()
    c0 = Circuit(n)
    c0.ry(0), c0.ry(1), c0.ry(2)
    psi0 = c0.state(params[:3], dtype=torch.complex128).reshape(-1).numpy()
    np.testing.assert_allclose(psi, op_on(n, 1, expm_pauli(Z, th)) @ psi0, atol=1e-12)


def _mmd_shot_gradients(shots, draws):
    """A 3-qubit GHZ-target QCBM: its exact MMD gradient (autograd) and ``draws`` shot-based
    parameter-shift estimates with ``shots`` shots each (draws x P)."""
    n = 3
    target = ghz(n)
    model = QCBM(n, ansatz="line", layers=1, seed=1, dtype=torch.complex128)
    loss = mmd.mmd2_exact(model.probs(), torch.tensor(target), 1.0)
    (g_auto,) = torch.autograd.grad(loss, model.theta)
    gen = torch.Generator().manual_seed(0)
    est = [shot_loss_and_grad(model, target, "mmd", shots, gen, 1.0, 1e-6)[1].numpy() for _ in range(draws)]
    return g_auto.numpy(), np.array(est)


def test_shot_gradients_are_unbiased_estimates():
    g_auto, draws = _mmd_shot_gradients(400, 60)
    assert np.abs(draws.mean(0) - g_auto).max() < 0.02


def test_batched_shot_frequencies_follow_the_rows():
    """sv.sample_frequencies: each row a multinomial over its own probabilities (mean over
    repeats within 5 standard errors), rows sum to 1, one torch generator fixes the draw."""
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(3, 8, generator=g, dtype=torch.float64), -1)
    shots, reps = 200, 400
    draws = torch.stack([sv.sample_frequencies(probs, shots, g) for _ in range(reps)])
    torch.testing.assert_close(draws.sum(-1), torch.ones(reps, 3, dtype=torch.float64))
    se = (probs * (1 - probs) / (shots * reps)).sqrt()
    assert ((draws.mean(0) - probs).abs() <= 5 * se + 1e-12).all()
    a = sv.sample_frequencies(probs, shots, torch.Generator().manual_seed(7))
    b = sv.sample_frequencies(probs, shots, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


@pytest.mark.slow
def test_shot_gradients_are_unbiased_on_the_bitstring_path():
    """With 2^n > shots^2 the MMD gradient uses bitstrings of every shifted circuit."""
    g_auto, draws = _mmd_shot_gradients(2, 500)
    se = draws.std(0) / np.sqrt(len(draws))
    assert np.abs(g_auto).max() > 5 * se.max()  # a sign or row error would show
    assert (np.abs(draws.mean(0) - g_auto) <= 4.5 * se).all()


@pytest.mark.slow
def test_qcbm_mmd_learns_bars_and_stripes():
    target = bars_and_stripes(2, 2)
    model = QCBM(4, ansatz="line", layers=4, seed=0)
    hist = train_qcbm(model, target, loss="mmd", steps=300, progress=False)
    assert hist["final_tvd"] < 0.1
    assert hist["tvd"][0] > 0.3


def test_kl_clipping_and_concentration():
    p = ghz(3)
    q = torch.zeros(8, dtype=torch.float64)
    q[1] = 1.0
    # q misses the support entirely: every log is clipped at eps
    assert float(kl_divergence(p, q, eps=1e-4)) == pytest.approx(math.log(0.5 / 1e-4))


def test_training_is_seedable():
    t = bars_and_stripes(2, 2)
    h1 = train_qcbm(QCBM(4, layers=1, seed=3), t, loss="kl", steps=5, shots=50, seed=9, progress=False)
    h2 = train_qcbm(QCBM(4, layers=1, seed=3), t, loss="kl", steps=5, shots=50, seed=9, progress=False)
    assert h1["tvd"] == h2["tvd"]


def test_f32_shot_gradients_are_unbiased_and_follow_f64():
    """precision="f32": the engine's forks on f32 amplitudes; the mean of shot estimates
    equals the exact (autograd) gradient as at f64, each estimate stays within a few draws
    of f64's (same streams), and training histories follow f64's."""
    n = 3
    target = ghz(n)
    model = QCBM(n, ansatz="line", layers=1, seed=1, dtype=torch.complex128)
    (g_auto,) = torch.autograd.grad(mmd.mmd2_exact(model.probs(), torch.tensor(target), 1.0), model.theta)
    g32, g64 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    est32, est64 = [], []
    for _ in range(60):
        est32.append(shot_loss_and_grad(model, target, "mmd", 400, g32, 1.0, 1e-6, "f32")[1].numpy())
        est64.append(shot_loss_and_grad(model, target, "mmd", 400, g64, 1.0, 1e-6)[1].numpy())
    est32, est64 = np.array(est32), np.array(est64)
    assert np.abs(est32.mean(0) - g_auto.numpy()).max() < 0.02
    assert np.mean(est32 == est64) > 0.8  # most estimates bit-identical
    assert np.abs(est32 - est64).max() < 0.05
    # the exact fork sums do run at f32: within 1e-5 of f64, not equal to it
    comp = model.circuit.compile()
    a = np.ascontiguousarray(comp.angles(model.theta.detach()[None]).numpy())[0]
    w = np.linspace(-1.0, 1.0, 2**n)
    e64 = comp.program.shift_gradient(a, w, None, 0)
    e32 = comp.program.shift_gradient(a, w, None, 0, precision="f32")
    assert np.abs(e32 - e64).max() < 1e-5 and not np.array_equal(e32, e64)
    t = bars_and_stripes(2, 3)
    h = {pr: train_qcbm(QCBM(6, layers=1, seed=3), t, loss="kl", steps=20, shots=1000, seed=9, progress=False,
                        precision=pr) for pr in ("f64", "f32")}  # fmt: skip
    assert abs(h["f64"]["final_tvd"] - h["f32"]["final_tvd"]) < 0.02
    t4 = bars_and_stripes(2, 2)
    with pytest.raises(ValueError, match="precision"):
        train_qcbm(QCBM(4, layers=1), t4, steps=1, precision="f32", progress=False)
    with pytest.raises(ValueError, match="precision"):
        train_qcbm(QCBM(4, layers=1), t4, steps=1, shots=10, precision="f16", progress=False)
    with pytest.raises(ValueError, match="precision"):
        torch_model = QCBM(3, layers=1, backend="torch")
        shot_loss_and_grad(torch_model, target, "mmd", 10, g32, 1.0, 1e-6, "f32")


@pytest.mark.parametrize("n", [2, 4])
@pytest.mark.parametrize("sigma", [1.0, "n/4", 10.0])
def test_numerical_variance_agrees_with_closed_form(n, sigma):
    s = n / 4 if sigma == "n/4" else sigma
    num = numerical_variance(n, s, "ghz", samples=4000, seed=n)
    cf = closed_form_variance(n, s, "ghz")
    assert abs(num["loss_var"] - cf) < 4 * num["loss_var_se"], (num, cf)


def test_closed_form_C_generic_target_matches_special_cases():
    for n in (1, 3, 6):
        for s in (0.7, 3.0):
            assert closed_form_C(n, s, ghz(n)) == pytest.approx(closed_form_C(n, s, "ghz"), rel=1e-10, abs=1e-15)
            point = np.zeros(2**n)
            point[0] = 1
            assert closed_form_C(n, s, point) == pytest.approx(closed_form_C(n, s, "point"), rel=1e-10, abs=1e-15)


def test_variance_decays_exponentially_for_small_sigma_only():
    v1 = [closed_form_variance(n, 1.0) for n in (50, 100, 200)]
    v4 = [closed_form_variance(n, n / 4) for n in (50, 100, 200)]
    assert v1[2] / v1[1] < 1e-3 * v1[1] / v1[0] or v1[2] < 1e-20
    assert v4[2] / v4[1] > 0.2  # polynomial


def test_synthetic_targets():
    bas = bars_and_stripes(2, 2)
    assert np.count_nonzero(bas) == 6 and bas.sum() == pytest.approx(1)
    assert np.count_nonzero(cardinality(4)) == 6
    g = ghz(3)
    assert g[0] == g[7] == 0.5
    r = random_sparse(5, 7, seed=1)
    assert np.count_nonzero(r) == 7


def test_bad_inputs():
    with pytest.raises(ValueError, match="ansatz"):
        QCBM(3, ansatz="brick")
    with pytest.raises(ValueError, match="loss"):
        train_qcbm(QCBM(2), ghz(2), loss="js", progress=False)
    with pytest.raises(ValueError, match="target_probs"):
        train_qcbm(QCBM(2), ghz(3), progress=False)
    with pytest.raises(ValueError, match="qubit"):
        Circuit(2).rx(5)
    with pytest.raises(ValueError, match="params"):
        Circuit(2).state(torch.zeros(3))


def test_calorimeter_loader(tmp_path):
    h5py = pytest.importorskip("h5py")
    from qbm.data.calorimeter import binarise, downsize, load_showers, shower_distribution

    rng = np.random.default_rng(0)
    showers = rng.exponential(1.0, size=(50, 25, 25, 25))
    showers[:, 10:15, 10:15, :] *= 30  # a hot core
    path = tmp_path / "showers.h5"
    with h5py.File(path, "w") as fh:
        fh.create_dataset("ECAL", data=showers)
    data = load_showers(str(path))
    assert data.shape == (50, 25, 25, 25)
    img = downsize(data, 3, 3)
    np.testing.assert_allclose(img.sum(axis=(1, 2)), showers.sum(axis=(1, 2, 3)))
    bits = binarise(img)
    assert bits.shape == (50, 9) and set(np.unique(bits)) <= {0, 1}
    p = shower_distribution(str(path), 9)
    assert p.shape == (512,) and p.sum() == pytest.approx(1)
    with pytest.raises(FileNotFoundError, match="path"):
        load_showers(str(tmp_path / "missing.h5"))
    (tmp_path / "bad.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="path"):
        load_showers(str(tmp_path / "bad.h5"))
    with pytest.raises(ValueError, match="n:"):
        shower_distribution(str(path), 5)
