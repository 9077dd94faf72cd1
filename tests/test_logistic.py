"""qbm's logistic regression and ROC AUC (no scikit-learn import at run time) against
scikit-learn's own, and the digits loader against ``sklearn.datasets.load_digits``."""

from __future__ import annotations

import numpy as np
import pytest

from qbm._logistic import fit_logistic, roc_auc


def _spins(n: int, f: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(k, f))
    z = np.where(rng.random((n, f)) < 0.5, 1.0, -1.0)
    p = np.exp(z @ w.T * 0.4)
    y = np.array([rng.choice(k, p=row / row.sum()) for row in p])
    return z, y


@pytest.mark.parametrize("k", [2, 3, 10])
def test_coefficients_match_scikit_learn(k):
    from sklearn.linear_model import LogisticRegression

    x, y = _spins(600, 12, k, k)
    ref = LogisticRegression(max_iter=3000, random_state=0).fit(x, y)
    got = fit_logistic(x, y, max_iter=3000)
    coef, b = ref.coef_, ref.intercept_
    if k == 2:
        coef, b = np.vstack([-coef[0] / 2, coef[0] / 2]), np.array([-b[0] / 2, b[0] / 2])
    assert got.converged
    np.testing.assert_allclose(got.coef, coef, atol=1e-7 * np.abs(coef).max())
    np.testing.assert_allclose(got.intercept, b, atol=1e-7 * max(1.0, np.abs(b).max()))
    assert np.array_equal(got.predict(x), ref.predict(x))
    assert list(got.classes) == list(ref.classes_)


def test_labels_need_not_be_contiguous_and_regularisation_shrinks():
    x, y = _spins(400, 6, 3, 9)
    labels = np.array([7, 2, 40])[y]
    strong = fit_logistic(x, labels, c=1e-3)
    weak = fit_logistic(x, labels, c=1.0)
    assert list(weak.classes) == [2, 7, 40]
    assert np.abs(strong.coef).sum() < 0.1 * np.abs(weak.coef).sum()
    assert set(np.unique(weak.predict(x))) <= {2, 7, 40}


def test_bad_input_names_the_parameter():
    x, y = _spins(20, 3, 2, 1)
    with pytest.raises(ValueError, match="x:"):
        fit_logistic(x[:, 0], y)
    with pytest.raises(ValueError, match="y:"):
        fit_logistic(x, y[:-1])
    with pytest.raises(ValueError, match="two classes"):
        fit_logistic(x, np.zeros(20))
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fit_logistic(bad, y)
    with pytest.raises(ValueError, match="c:"):
        fit_logistic(x, y, c=0)
    with pytest.raises(ValueError, match="both classes"):
        roc_auc(np.ones(5), np.arange(5))


def test_roc_auc_matches_scikit_learn_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    lab = rng.integers(0, 2, 500)
    for s in (np.round(rng.normal(size=500) + lab, 1), rng.integers(0, 3, 500).astype(float), rng.normal(size=500)):
        assert roc_auc(lab, s) == pytest.approx(roc_auc_score(lab, s), abs=1e-12)
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert roc_auc([0, 0, 1, 1], [0.4, 0.3, 0.2, 0.1]) == 0.0


def test_digits_loader_reads_scikit_learns_file_bit_for_bit():
    from sklearn.datasets import load_digits as sk_digits

    from qbm.data.images import load_digits

    d, ref = load_digits(), sk_digits()
    x = (ref.images / 16.0).astype(np.float32)[:, None, :, :]
    perm = np.random.default_rng(0).permutation(len(x))
    n_test = int(round(0.2 * len(x)))
    assert np.array_equal(d.x_test, x[perm[:n_test]]) and np.array_equal(d.x_train, x[perm[n_test:]])
    assert np.array_equal(d.y_test, ref.target[perm[:n_test]]) and d.y_train.dtype == np.int64
