"""L2-regularised logistic regression and ROC AUC, as scikit-learn computes them, without
importing scikit-learn (1.2-1.5 s of imports, most of it scipy.stats and pandas, in a
15 s main job that uses two small fits).

:func:`fit_logistic` minimises scikit-learn's ``LogisticRegression(C=c)`` objective (lbfgs,
version 1.1 onwards): mean cross-entropy + ||W||^2 / (2 c n), intercepts unpenalised,
multinomial for three or more classes and binomial for two, with the same L-BFGS-B
settings from the same zero start; the coefficients agree with scikit-learn's to the
solver's tolerance (tests compare them), not bit for bit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LogisticFit:
    """classes (K,), coef (K, F) and intercept (K,): class k's score is x . coef[k] +
    intercept[k]. Two classes: scikit-learn's single vector w is split as (-w/2, +w/2)
    (the same predictions and probabilities)."""

    classes: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    iterations: int
    converged: bool

    def scores(self, x: Any) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) @ self.coef.T + self.intercept

    def predict(self, x: Any) -> np.ndarray:
        return self.classes[np.argmax(self.scores(x), axis=1)]


def _logsumexp(a: np.ndarray) -> np.ndarray:
    m = a.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=1, keepdims=True)))[:, 0]


def fit_logistic(x: Any, y: Any, *, c: float = 1.0, max_iter: int = 100, tol: float = 1e-4) -> LogisticFit:
    """Fits the label ``y`` (N,) on the features ``x`` (N, F); see the module docs."""
    from scipy import optimize

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"x: expected (N, F) features with N >= 1, got shape {x.shape}")
    if y.shape != (len(x),):
        raise ValueError(f"y: expected {len(x)} labels, got shape {y.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x: contains NaN or infinite values")
    if not c > 0:
        raise ValueError(f"c: must be > 0, got {c}")
    classes, idx = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"y: needs at least two classes, got {list(classes)}")
    n, f = x.shape
    k = len(classes)
    l2 = 1.0 / (c * n)
    binary = k == 2
    rows = 1 if binary else k
    onehot = np.zeros((n, k))
    onehot[np.arange(n), idx] = 1.0
    target = idx.astype(np.float64)

    def loss_grad(w: np.ndarray) -> tuple[float, np.ndarray]:
        # scikit-learn's layout: (rows, F + 1) raveled in Fortran order, the intercept last
        wm = w.reshape((rows, f + 1), order="F")
        coef, b = wm[:, :f], wm[:, f]
        raw = x @ coef.T + b  # (N, rows)
        if binary:
            r = raw[:, 0]
            loss = float(np.mean(np.logaddexp(0.0, r) - target * r))
            g = (0.5 * (1.0 + np.tanh(0.5 * r)) - target)[:, None] / n  # sigmoid(r) - y
        else:
            lse = _logsumexp(raw)
            loss = float(np.mean(lse - raw[np.arange(n), idx]))
            g = (np.exp(raw - lse[:, None]) - onehot) / n
        grad = np.empty_like(wm)
        grad[:, :f] = g.T @ x + l2 * coef
        grad[:, f] = g.sum(0)
        loss += 0.5 * l2 * float((coef * coef).sum())
        return loss, grad.ravel(order="F")

    res = optimize.minimize(
        loss_grad,
        np.zeros(rows * (f + 1)),
        method="L-BFGS-B",
        jac=True,
        options={"maxiter": max_iter, "maxls": 50, "gtol": tol, "ftol": 64 * np.finfo(float).eps},
    )
    wm = res.x.reshape((rows, f + 1), order="F")
    coef, b = wm[:, :f], wm[:, f]
    if binary:
        coef, b = np.vstack([-coef / 2, coef / 2]), np.array([-b[0] / 2, b[0] / 2])
    return LogisticFit(classes, coef.copy(), b.copy(), int(res.nit), bool(res.success))


def roc_auc(labels: Any, scores: Any) -> float:
    """Area under the ROC curve of ``scores`` for the binary ``labels`` (1 = positive):
    the Mann-Whitney statistic with tied scores counted one half (scikit-learn's
    ``roc_auc_score`` for binary labels)."""
    lab = np.asarray(labels)
    s = np.asarray(scores, dtype=np.float64)
    if lab.shape != s.shape or lab.ndim != 1:
        raise ValueError(f"scores: expected the shape of labels {lab.shape}, got {s.shape}")
    pos = lab == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("labels: both classes are needed for an AUC")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    # average ranks over ties (1-based)
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = np.r_[starts[1:], len(s)]
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
