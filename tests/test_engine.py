"""The Rust state-vector engine (qbm._core.CircuitProgram via qbm.quantum.engine) against
a dense-matrix reference and the torch simulator; adjoint and parameter-shift gradients
against finite differences; sampled counts against the probabilities; thread-count
independence."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

from qbm import _core, mmd
from qbm.models.qcbm import QCBM, _engine_shot_loss_and_grad, kl_divergence, local_fidelity_loss
from qbm.quantum import Circuit, engine

I2 = np.eye(2)
PAULI = {
    "x": np.array([[0, 1], [1, 0]], dtype=complex),
    "y": np.array([[0, -1j], [1j, 0]]),
    "z": np.diag([1.0 + 0j, -1.0]),
}
P0, P1 = np.diag([1.0, 0.0]), np.diag([0.0, 1.0])


def _rot(axis: str, a: float) -> np.ndarray:
    return math.cos(a / 2) * I2 - 1j * math.sin(a / 2) * PAULI[axis]


def _on(n: int, ops: dict[int, np.ndarray]) -> np.ndarray:
    """Kronecker product with ops[q] on qubit q (qubit 0 the most significant)."""
    m = np.ones((1, 1), dtype=complex)
    for q in range(n):
        m = np.kron(m, ops.get(q, I2))
    return m


def dense_unitary(c: Circuit, theta: np.ndarray) -> np.ndarray:
    """The circuit's 2^n x 2^n matrix built gate by gate from Kronecker products."""
    n = c.n
    u = np.eye(2**n, dtype=complex)
    for g in c.gates:
        if g.name in ("rx", "ry", "rz"):
            m = _on(n, {g.qubits[0]: _rot(g.name[1], theta[g.param])})
        elif g.name == "mat":
            m = _on(n, {g.qubits[0]: np.array(g.matrix).reshape(2, 2)})
        else:
            a, b = g.qubits
            if g.name == "cx":
                t = PAULI["x"]
            elif g.name == "cz":
                t = PAULI["z"]
            else:
                t = _rot(g.name[2], theta[g.param])
            m = _on(n, {a: P0}) + _on(n, {a: P1, b: t})
        u = m @ u
    return u


def random_circuit(n: int, gates: int, seed: int, kinds: tuple[str, ...] | None = None) -> Circuit:
    rng = np.random.default_rng(seed)
    kinds = kinds or ("rx", "ry", "rz", "crx", "cry", "crz", "cx", "cz", "mat")
    if n == 1:
        kinds = tuple(k for k in kinds if k in ("rx", "ry", "rz", "mat"))
    c = Circuit(n)
    for _ in range(gates):
        k = kinds[rng.integers(len(kinds))]
        a = int(rng.integers(n))
        b = int((a + 1 + rng.integers(n - 1)) % n) if n > 1 else a
        if k in ("rx", "ry", "rz"):
            c.rot(k, a)
        elif k in ("crx", "cry", "crz"):
            c.crot(k[1:], a, b)
        elif k == "cx":
            c.cx(a, b)
        elif k == "cz":
            c.cz(a, b)
        else:
            t, p, lam = rng.uniform(0, 2 * np.pi, 3)
            c.unitary(
                a,
                [
                    [math.cos(t / 2), -np.exp(1j * lam) * math.sin(t / 2)],
                    [np.exp(1j * p) * math.sin(t / 2), np.exp(1j * (p + lam)) * math.cos(t / 2)],
                ],
            )
    # every kind at least once, on the last qubits (runs of one-qubit gates get fused)
    if n > 1:
        if "cry" in kinds:
            c.crot("ry", n - 1, 0)
        c.cx(n - 1, n - 2)
        c.cz(0, n - 1)
    c.rz(n - 1)
    c.ry(n - 1)
    c.rx(n - 1)
    return c


def _random_state(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=2**n) + 1j * rng.normal(size=2**n)
    return v / np.linalg.norm(v)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 6])
@pytest.mark.parametrize("inverse", [False, True])
def test_states_equal_dense_matrices_and_the_torch_simulator(n, inverse):
    c = random_circuit(n, 12 * n, seed=n + 10 * inverse)
    theta = np.random.default_rng(n).uniform(-4, 4, size=(3, c.num_params))
    init = _random_state(n, 5 + n)
    got = engine.states(c, torch.tensor(theta), initial=init, inverse=inverse).reshape(3, -1).numpy()
    ref_torch = (
        c.state(
            torch.tensor(theta),
            initial=torch.tensor(init).reshape((1,) + (2,) * n),
            inverse=inverse,
            dtype=torch.complex128,
        )
        .reshape(3, -1)
        .numpy()
    )
    for r in range(3):
        u = dense_unitary(c, theta[r])
        want = (u.conj().T if inverse else u) @ init
        np.testing.assert_allclose(got[r], want, atol=1e-12)
        np.testing.assert_allclose(ref_torch[r], want, atol=1e-12)


def test_readouts_equal_the_torch_simulator_at_n_8():
    from qbm.quantum import statevector as sv

    c = random_circuit(8, 120, seed=3)
    theta = torch.tensor(np.random.default_rng(3).uniform(-3, 3, (4, c.num_params)))
    psi = c.state(theta, dtype=torch.complex128)
    np.testing.assert_allclose(c.run(theta, readout="probs").numpy(), sv.probabilities(psi).numpy(), atol=1e-12)
    np.testing.assert_allclose(c.run(theta, readout="z").numpy(), sv.expect_z(psi).numpy(), atol=1e-12)
    zx = c.run(theta, readout="zx").numpy()
    np.testing.assert_allclose(zx[:, 8:], sv.expect_x(psi).numpy(), atol=1e-12)


@pytest.mark.parametrize("readout", ["probs", "z", "zx"])
def test_adjoint_gradients_equal_finite_differences_and_autograd(readout):
    """A loss of the output (any torch function) differentiated by one adjoint sweep:
    equal to central differences and to autograd through the torch simulator, for every
    gate kind (controlled rotations included) and parameters used by several gates."""
    from qbm.quantum import statevector as sv

    c = random_circuit(4, 40, seed=7)
    c.rot("rx", 2, param=0)  # a parameter feeding two gates
    theta = torch.tensor(np.random.default_rng(1).uniform(-3, 3, (2, c.num_params)), requires_grad=True)
    w = torch.tensor(np.random.default_rng(2).normal(size=c.run(theta.detach(), readout=readout).shape))

    def loss(t: torch.Tensor) -> torch.Tensor:
        return (torch.sin(c.run(t, readout=readout)) * w).sum()

    (g,) = torch.autograd.grad(loss(theta), theta)
    h = 1e-6
    fd = torch.zeros_like(theta)
    with torch.no_grad():
        for r in range(2):
            for k in range(c.num_params):
                e = torch.zeros_like(theta)
                e[r, k] = h
                fd[r, k] = (loss(theta + e) - loss(theta - e)) / (2 * h)
    np.testing.assert_allclose(g.numpy(), fd.numpy(), atol=1e-7)
    psi = c.state(theta, dtype=torch.complex128)
    ref = {"probs": sv.probabilities(psi), "z": sv.expect_z(psi)}.get(readout)
    if ref is None:
        ref = torch.cat([sv.expect_z(psi), sv.expect_x(psi)], 1)
    (g_ref,) = torch.autograd.grad((torch.sin(ref) * w).sum(), theta)
    np.testing.assert_allclose(g.numpy(), g_ref.numpy(), atol=1e-11)


def _line_circuit(n: int, layers: int = 2) -> Circuit:
    return QCBM(n, layers=layers).circuit


@pytest.mark.parametrize("inverse", [False, True])
def test_exact_forks_equal_shifted_circuits_and_the_adjoint(inverse):
    """shift_gradient with shots=None: sum_x (q_k^+ - q_k^-)(x) w(x) from the forked
    circuits equals running the two shifted circuits, and half of it equals the adjoint
    derivative of w . q (the parameter-shift rule)."""
    c = random_circuit(5, 50, seed=4, kinds=("rx", "ry", "rz", "cx", "cz", "mat"))
    theta = torch.tensor(np.random.default_rng(4).uniform(-3, 3, c.num_params), requires_grad=True)
    init = _random_state(5, 1) if inverse else None
    w = np.random.default_rng(5).normal(size=32)
    comp = c.compile(inverse)
    angles = comp.angles(theta.detach()[None]).numpy()
    planes = None if init is None else engine.planes(init, 5)
    g_slots = comp.program.shift_gradient(angles[0], w, None, 0, planes)
    g = comp.param_grad(g_slots, c.num_params).numpy()
    for k in range(c.num_params):
        e = np.zeros(c.num_params)
        e[k] = math.pi / 2
        up = c.run(theta.detach() + torch.tensor(e), initial=init, inverse=inverse).numpy()
        dn = c.run(theta.detach() - torch.tensor(e), initial=init, inverse=inverse).numpy()
        assert abs(g[k] - (up - dn) @ w) < 1e-12
    (adj,) = torch.autograd.grad((c.run(theta, initial=init, inverse=inverse) * torch.tensor(w)).sum(), theta)
    np.testing.assert_allclose(g / 2, adj.numpy(), atol=1e-12)


def test_sampled_counts_follow_the_probabilities():
    p = np.array([0.05, 0.0, 0.5, 0.15, 0.3, 0.0, 0.0, 0.0])
    shots = 200_000
    c = engine.sample_counts(p[None], shots, seed=3)[0]
    assert c.sum() == shots and c[1] == 0 and c[5:].sum() == 0
    se = np.sqrt(p * (1 - p) / shots)
    assert np.all(np.abs(c / shots - p) <= 5 * se + 1e-15)
    # a Pearson statistic over repeated draws has mean = degrees of freedom (3 here)
    draws = engine.sample_counts(np.tile(p, (400, 1)), 1000, seed=4)
    nz = p > 0
    chi2 = (((draws[:, nz] - 1000 * p[nz]) ** 2) / (1000 * p[nz])).sum(1)
    assert abs(chi2.mean() - 3.0) < 5 * math.sqrt(2 * 3 / 400)
    # rows are independent streams; the same (seed, index) repeats
    np.testing.assert_array_equal(
        engine.sample_counts(p[None], 100, seed=9, index0=5)[0],
        draws[0] * 0 + engine.sample_counts(np.tile(p, (6, 1)), 100, seed=9)[5],
    )


@pytest.mark.parametrize("inverse", [False, True])
def test_shots_from_the_state_are_sample_counts_draws(inverse):
    """Circuit.sample draws in the core from the amplitudes: at f64 exactly the counts of
    sample_counts on the same stream (so its distribution tests carry over), in increasing
    order; at f32 the same up to draws within rounding of a boundary."""
    n = 9
    model = QCBM(n, layers=2, seed=4)
    c, th = model.circuit, model.theta.detach()
    rng = np.random.default_rng(0)
    phi = rng.standard_normal(2**n) + 1j * rng.standard_normal(2**n)
    phi /= np.linalg.norm(phi)
    for init in (None, torch.as_tensor(phi).reshape((1,) + (2,) * n)):
        p = c.run(th, initial=init, inverse=inverse, readout="probs").numpy()
        want = engine.sample_counts(p[None], 3000, seed=11, index0=2)[0]
        idx = engine.sample(c, th, 3000, 11, initial=init, inverse=inverse, index0=2)
        assert idx.dtype == np.int64 and len(idx) == 3000 and np.all(np.diff(idx) >= 0)
        np.testing.assert_array_equal(np.bincount(idx, minlength=2**n), want)
        i32 = c.sample(th, 3000, 11, initial=init, inverse=inverse, precision="f32")
        base = engine.sample_counts(p[None], 3000, seed=11)[0]
        assert np.abs(np.bincount(i32, minlength=2**n) - base).sum() <= 10
    with pytest.raises(ValueError, match="shots"):
        c.sample(th, 0, 1)
    with pytest.raises(ValueError, match="params"):
        c.sample(th[None].repeat(2, 1), 10, 1)
    with pytest.raises(ValueError, match="precision"):
        c.sample(th, 10, 1, precision="f16")


def test_shot_gradients_are_unbiased():
    """Mean of the shot-based shift gradient over independent seeds = the exact one, within
    5 standard errors per parameter."""
    c = _line_circuit(4, layers=1)
    comp = c.compile()
    theta = torch.tensor(np.random.default_rng(0).uniform(-3, 3, c.num_params))
    angles = comp.angles(theta[None]).numpy()[0]
    w = np.random.default_rng(1).normal(size=16)
    exact = comp.program.shift_gradient(angles, w, None, 0)
    reps = 300
    est = np.stack([comp.program.shift_gradient(angles, w, 500, s) for s in range(reps)])
    se = est.std(0, ddof=1) / math.sqrt(reps)
    assert np.all(np.abs(est.mean(0) - exact) <= 5 * se + 1e-12)
    assert np.all(se > 0)


def test_same_seed_same_bits_on_one_or_two_threads():
    c = _line_circuit(9)
    comp = c.compile()
    theta = np.random.default_rng(2).uniform(-3, 3, (3, c.num_params))
    a = comp.angles(torch.tensor(theta)).numpy()
    s1 = comp.program.states(a, num_threads=1)
    s2 = comp.program.states(a, num_threads=2)
    np.testing.assert_array_equal(s1, s2)
    lam = np.ascontiguousarray(s1 * 0.3)
    np.testing.assert_array_equal(
        comp.program.adjoint(a, s1, lam, num_threads=1), comp.program.adjoint(a, s1, lam, num_threads=2)
    )
    w = np.linspace(-1, 1, 2**9)
    g1 = comp.program.shift_gradient(a[0], w, 1000, 77, num_threads=1)
    g2 = comp.program.shift_gradient(a[0], w, 1000, 77, num_threads=2)
    np.testing.assert_array_equal(g1, g2)
    assert not np.array_equal(g1, comp.program.shift_gradient(a[0], w, 1000, 78, num_threads=1))
    p = s1[:, 0] ** 2 + s1[:, 1] ** 2
    np.testing.assert_array_equal(
        _core.sample_counts(p, 500, 5, num_threads=1), _core.sample_counts(p, 500, 5, num_threads=2)
    )


def test_histogram_mmd_equals_the_pairwise_estimator_on_the_same_shots():
    n = 7
    rng = np.random.default_rng(8)
    p, q = rng.dirichlet(np.ones(2**n)), rng.dirichlet(np.ones(2**n) * 0.3)
    cx = engine.sample_counts(p[None], 400, seed=1)[0]
    cy = engine.sample_counts(q[None], 300, seed=2)[0]
    bits = ((np.arange(2**n)[:, None] >> np.arange(n - 1, -1, -1)) & 1).astype(np.uint8)
    x, y = np.repeat(bits, cx, 0), np.repeat(bits, cy, 0)
    sig = mmd.mmd_sigmas_mixture(n)
    for est in ("biased", "unbiased"):
        assert mmd.mmd2_counts(cx, cy, sig, estimator=est) == pytest.approx(
            mmd.mmd2(x, y, sig, estimator=est), abs=1e-12
        )
    with pytest.raises(ValueError, match="cy"):
        mmd.mmd2_counts(cx, cy[:-1], sig)


def test_qcbm_on_the_engine_matches_the_torch_backend():
    """Exact losses and their gradients: engine (adjoint) = torch simulator (autograd)."""
    n = 5
    target = np.random.default_rng(0).dirichlet(np.ones(32))
    a = QCBM(n, seed=3)
    b = QCBM(n, seed=3, backend="torch", dtype=torch.complex128)
    assert a.uses_engine() and not b.uses_engine()
    pt = torch.tensor(target)
    for f in (
        lambda m: kl_divergence(pt, m.probs()),
        lambda m: mmd.mmd2_exact(m.probs(), pt, mmd.mmd_sigmas_mixture(n)),
        lambda m: local_fidelity_loss(m, target),
    ):
        la, lb = f(a), f(b)
        (ga,) = torch.autograd.grad(la, a.theta)
        (gb,) = torch.autograd.grad(lb, b.theta)
        assert la.item() == pytest.approx(lb.item(), abs=1e-12)
        np.testing.assert_allclose(ga.numpy(), gb.numpy(), atol=1e-11)


@pytest.mark.parametrize("loss", ["mmd", "kl", "fidelity"])
def test_engine_shot_gradients_average_to_the_exact_gradient(loss):
    """The shot-based loss gradient of every loss, averaged over steps of one generator,
    equals the exact gradient within 5 standard errors (MMD, fidelity: the exact loss's
    gradient; KL's estimator is biased by the finite-shot q in its weight, so it is
    compared with a large-shot average instead)."""
    n = 3
    target = np.random.default_rng(1).dirichlet(np.ones(8))
    m = QCBM(n, seed=2)
    sig = mmd.mmd_sigmas_mixture(n)
    gen = torch.Generator().manual_seed(0)
    shots = 4000 if loss != "kl" else 20000
    est = torch.stack([_engine_shot_loss_and_grad(m, target, loss, shots, gen, sig, 1e-6)[1] for _ in range(200)])
    pt = torch.tensor(target)
    exact = {
        "mmd": lambda: mmd.mmd2_exact(m.probs(), pt, sig),
        "kl": lambda: kl_divergence(pt, m.probs(), 1e-6),
        "fidelity": lambda: local_fidelity_loss(m, target),
    }[loss]()
    (g,) = torch.autograd.grad(exact, m.theta)
    se = est.std(0) / math.sqrt(len(est))
    tol = 5 * se + (1e-3 if loss == "kl" else 1e-9)
    assert torch.all((est.mean(0) - g).abs() <= tol), (est.mean(0) - g).abs() / se


def test_engine_errors_name_the_parameter():
    c = _line_circuit(3)
    comp = c.compile()
    with pytest.raises(ValueError, match="angles"):
        comp.program.states(np.zeros((1, comp.num_slots + 1)))
    with pytest.raises(ValueError, match="angles.*finite"):
        comp.program.states(np.full((1, comp.num_slots), np.nan))
    with pytest.raises(ValueError, match="weight"):
        comp.program.shift_gradient(np.zeros(comp.num_slots), np.zeros(7), 10, 0)
    with pytest.raises(ValueError, match="initial"):
        comp.program.states(np.zeros((1, comp.num_slots)), np.zeros((1, 2, 4)))
    with pytest.raises(ValueError, match="kinds"):
        _core.CircuitProgram(2, np.array([11]), np.array([0]), np.array([0]), np.zeros((1, 8)))
    with pytest.raises(ValueError, match="q1"):
        _core.CircuitProgram(2, np.array([6]), np.array([1]), np.array([1]), np.zeros((1, 8)))
    with pytest.raises(ValueError, match="n:"):
        _core.CircuitProgram(31, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 8)))
    ctrl = Circuit(2)
    ctrl.crot("ry", 0, 1)
    with pytest.raises(ValueError, match="controlled rotation"):
        ctrl.compile().program.shift_gradient(np.zeros(1), np.zeros(4), 10, 0)
    with pytest.raises(ValueError, match="probs"):
        _core.sample_counts(np.array([[0.5, -0.1]]), 10, 0)
    with pytest.raises(ValueError, match="readout"):
        c.run(torch.zeros(c.num_params), readout="y")
    with pytest.raises(ValueError, match="matrix"):
        c.unitary(0, [[1, 1], [0, 1]])


def test_compiled_circuits_pickle_and_recompile():
    """A circuit holding a compiled program pickles (for worker processes and Ray) and
    compiles again on the other side; adding a gate recompiles."""
    c = _line_circuit(3)
    theta = torch.linspace(0, 1, c.num_params)
    before = c.run(theta)
    c2 = pickle.loads(pickle.dumps(c))
    np.testing.assert_array_equal(c2.run(theta).numpy(), before.numpy())
    c2.rx(0)
    assert c2.compile().num_slots == c.compile().num_slots + 1


@pytest.mark.parametrize("readout", ["z", "zx"])
def test_style_qgan_generator_on_the_engine_matches_the_torch_backend(readout):
    """Outputs and gradients of w and b (angles w z + b, each angle feeding one gate of a
    circuit with controlled-RY rings) agree between the engine and the torch simulator."""
    from qbm.models.qgan import StyleQuantumGenerator

    a = StyleQuantumGenerator(4, 2, readout=readout, seed=1, dtype=torch.complex128)
    b = StyleQuantumGenerator(4, 2, readout=readout, seed=1, dtype=torch.complex128, backend="torch")
    z = a.sample_noise(16, torch.Generator().manual_seed(2))
    oa, ob = a(z), b(z)
    np.testing.assert_allclose(oa.detach().numpy(), ob.detach().numpy(), atol=1e-12)
    wts = torch.randn(oa.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    ga = torch.autograd.grad((oa * wts).sum(), [a.w, a.b])
    gb = torch.autograd.grad((ob * wts).sum(), [b.w, b.b])
    for x, y in zip(ga, gb):
        np.testing.assert_allclose(x.numpy(), y.numpy(), atol=1e-11)


def test_z_readout_without_a_table_of_signs_equals_the_table():
    import torch

    from qbm.quantum.engine import z_expect, z_weights

    def _zsigns(n):  # the n x 2^n table of signs the engine used before: 1 - 2 bit_i(x), qubit 0 first
        x = torch.arange(2**n)[:, None] >> torch.arange(n - 1, -1, -1)
        return (1 - 2 * (x & 1)).to(torch.float64)

    g = torch.Generator().manual_seed(0)
    for n in (1, 3, 7):
        q = torch.rand(4, 2**n, generator=g, dtype=torch.float64)
        torch.testing.assert_close(z_expect(q, n), q @ _zsigns(n), rtol=0, atol=1e-12)
        w = torch.randn(4, n, generator=g, dtype=torch.float64)
        torch.testing.assert_close(z_weights(w, n), w @ _zsigns(n).T, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n", [5, 12, 17])
def test_f32_states_follow_f64_and_refuse_gradients(n):
    # n = 12: two-qubit fusion; n = 17: cache-blocked segments, chunks shared by 2 threads
    c = QCBM(n, layers=2, seed=n).circuit
    theta = torch.tensor(np.random.default_rng(n).uniform(-4, 4, size=(2, c.num_params)))
    s64 = engine.states(c, theta).reshape(2, -1)
    s32 = engine.states(c, theta, precision="f32").reshape(2, -1)
    assert s32.dtype == torch.complex64 and s64.dtype == torch.complex128
    assert float((s32.to(torch.complex128) - s64).abs().max()) < 1e-5
    p64 = c.run(theta, readout="probs")
    p32 = c.run(theta, readout="probs", precision="f32", num_threads=2)
    assert p32.dtype == torch.float64
    tvd = 0.5 * float((p32 - p64).abs().sum(1).max())
    assert tvd < 1e-5, tvd
    one = c.run(theta, readout="probs", precision="f32", num_threads=1)
    assert torch.equal(one, p32)  # same bits on one and two threads
    z = c.run(theta, readout="z", precision="f32")
    np.testing.assert_allclose(z.numpy(), c.run(theta, readout="z").detach().numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="precision.*forward only"):
        c.run(theta.clone().requires_grad_(True), precision="f32")
    with pytest.raises(ValueError, match="precision"):
        c.run(theta, precision="f16")
    with pytest.raises(ValueError, match="precision"):
        engine.states(c, theta, precision="bf16")
