import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from qbm import mmd


def brute_kernel(n, sigma):
    bits = np.array(list(itertools.product([0, 1], repeat=n)))
    d = (bits[:, None, :] != bits[None, :, :]).sum(-1)
    return np.mean([np.exp(-d / (2 * s)) for s in np.atleast_1d(sigma)], axis=0)


@pytest.mark.parametrize("n", [1, 3, 5, 8])
@pytest.mark.parametrize("sigma", [0.5, 2.0, [0.1, 1.0, 8.0]])
def test_exact_product_structure_equals_dense(n, sigma):
    rng = np.random.default_rng(n)
    p, q = rng.dirichlet(np.ones(2**n)), rng.dirichlet(np.ones(2**n))
    K = brute_kernel(n, sigma)
    want = (p - q) @ K @ (p - q)
    assert mmd.mmd2_exact(p, q, sigma) == pytest.approx(want, rel=1e-10, abs=1e-14)
    tp = torch.tensor(p, requires_grad=True)
    val = mmd.mmd2_exact(tp, torch.tensor(q), sigma)
    val.backward()
    np.testing.assert_allclose(tp.grad.numpy(), 2 * K @ (p - q), rtol=1e-9, atol=1e-12)


def brute_mmd(x, y, sigma, unbiased):
    def k(a, b):
        d = (a[:, None, :] != b[None, :, :]).sum(-1)
        return np.mean([np.exp(-d / (2 * s)) for s in np.atleast_1d(sigma)], axis=0)

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    n, m = len(x), len(y)
    if unbiased:
        return (
            (kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
        )
    return kxx.mean() + kyy.mean() - 2 * kxy.mean()


@pytest.mark.parametrize("nbits", [5, 64, 100])
def test_sample_estimators_equal_brute_force(nbits):
    rng = np.random.default_rng(nbits)
    x = rng.integers(0, 2, (37, nbits))
    y = 2 * rng.integers(0, 2, (29, nbits)) - 1  # +-1 input
    yb = (y > 0).astype(int)
    for sigma in (1.0, [0.5, 3.0]):
        assert mmd.mmd2(x, y, sigma) == pytest.approx(brute_mmd(x, yb, sigma, False), rel=1e-10)
        assert mmd.mmd2(x, y, sigma, estimator="unbiased") == pytest.approx(brute_mmd(x, yb, sigma, True), rel=1e-9)
    same = (x[:, None, :] == yb[None, :, :]).all(-1).sum()
    ks = mmd.kernel_sums(x, y, kernel="delta")
    assert ks.xy == same


def test_unbiased_mmd_averages_to_exact():
    n, rng = 4, np.random.default_rng(0)
    p, q = rng.dirichlet(np.ones(16)), rng.dirichlet(np.ones(16))
    bits = np.array(list(itertools.product([0, 1], repeat=n)))
    exact = mmd.mmd2_exact(p, q, 1.0)
    vals = [
        mmd.mmd2(bits[rng.choice(16, 200, p=p)], bits[rng.choice(16, 200, p=q)], 1.0, estimator="unbiased")
        for _ in range(400)
    ]
    se = np.std(vals) / np.sqrt(len(vals))
    assert abs(np.mean(vals) - exact) < 4 * se


def test_linear_estimator_is_unbiased():
    rng = np.random.default_rng(1)
    bits = np.array(list(itertools.product([0, 1], repeat=3)))
    p, q = rng.dirichlet(np.ones(8)), rng.dirichlet(np.ones(8))
    exact = mmd.mmd2_exact(p, q, 2.0)
    vals = [
        mmd.mmd2(bits[rng.choice(8, 400, p=p)], bits[rng.choice(8, 400, p=q)], 2.0, estimator="linear")
        for _ in range(300)
    ]
    assert abs(np.mean(vals) - exact) < 4 * np.std(vals) / np.sqrt(300)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 70),
    nx=st.integers(2, 20),
    ny=st.integers(2, 20),
    seed=st.integers(0, 10**6),
    sigma=st.floats(0.05, 50),
)
def test_mmd_properties(n, nx, ny, seed, sigma):
    rng = np.random.default_rng(seed)
    x, y = rng.integers(0, 2, (nx, n)), rng.integers(0, 2, (ny, n))
    assert mmd.mmd2(x, y, sigma) == pytest.approx(mmd.mmd2(y, x, sigma), rel=1e-9, abs=1e-12)
    assert mmd.mmd2(x, y, sigma) >= -1e-12
    assert abs(mmd.mmd2(x, x, sigma)) < 1e-12
    assert mmd.mmd2(x, y, sigma, estimator="unbiased") == pytest.approx(
        mmd.mmd2(y, x, sigma, estimator="unbiased"), rel=1e-9, abs=1e-12
    )


def test_rbf_matches_numpy_and_torch_grad():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(40, 3)), rng.normal(0.5, 1, size=(30, 3))

    def brute(a, b, s, unbiased):
        k = lambda u, v: np.exp(-((u[:, None] - v[None]) ** 2).sum(-1) / (2 * s * s))  # noqa: E731
        kxx, kyy, kxy = k(a, a), k(b, b), k(a, b)
        n, m = len(a), len(b)
        if unbiased:
            return (kxx.sum() - n) / (n * (n - 1)) + (kyy.sum() - m) / (m * (m - 1)) - 2 * kxy.mean()
        return kxx.mean() + kyy.mean() - 2 * kxy.mean()

    for est in ("biased", "unbiased"):
        assert mmd.mmd2(x, y, 1.3, kernel="rbf", estimator=est) == pytest.approx(brute(x, y, 1.3, est == "unbiased"))
    med = mmd.median_heuristic(x, y)
    assert mmd.mmd2(x, y, "median", kernel="rbf") == pytest.approx(brute(x, y, med, False))
    tx = torch.tensor(x, requires_grad=True)
    loss = mmd.MMDLoss(sigma=1.3)(tx, torch.tensor(y))
    assert loss.item() == pytest.approx(brute(x, y, 1.3, False))
    assert torch.autograd.gradcheck(lambda a: mmd.mmd2_torch(a, torch.tensor(y), 1.3), (tx,))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: mmd.mmd2(np.zeros((3, 4)), np.zeros((3, 5))), "y: bit width"),
        (lambda: mmd.mmd2(np.zeros((0, 4)), np.zeros((3, 4))), "x: empty"),
        (lambda: mmd.mmd2(np.zeros((3, 4)), np.zeros((3, 4)), sigma=0.0), "sigma"),
        (lambda: mmd.mmd2(np.zeros((3, 4)), np.zeros((3, 4)), sigma=[1.0, -1.0]), "sigma"),
        (lambda: mmd.mmd2(np.full((3, 4), 2), np.zeros((3, 4))), "x: values must be"),
        (lambda: mmd.mmd2(np.zeros((3, 4)), np.zeros((3, 4)), estimator="quadratic"), "estimator"),
        (lambda: mmd.mmd2(np.zeros((3, 4)), np.zeros((3, 4)), kernel="laplace"), "kernel"),
        (lambda: mmd.mmd2_exact(np.ones(3) / 3, np.ones(3) / 3), "power of two"),
        (lambda: mmd.mmd2_exact(np.ones(4) / 4, np.ones(8) / 8), "q: shape"),
        (lambda: mmd.mmd2(np.zeros((3, 2)), np.zeros((3, 3)), kernel="rbf"), "y: dimension"),
    ],
)
def test_mmd_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_histograms_do_not_depend_on_threads():
    rng = np.random.default_rng(5)
    x, y = rng.integers(0, 2, (300, 130)), rng.integers(0, 2, (200, 130))
    a = mmd.hamming_histograms(x, y, num_threads=1)
    b = mmd.hamming_histograms(x, y, num_threads=2)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert a[0].sum() == 300 * 299 // 2 and a[2].sum() == 300 * 200
