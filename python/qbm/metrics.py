"""Metrics: distances between distributions and sampler diagnostics."""

from __future__ import annotations

from typing import Any

import numpy as np


def total_variation(p: Any, q: Any) -> float:
    """TV(p, q) = 1/2 sum |p - q| for probability vectors of equal length."""
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    if p.shape != q.shape:
        raise ValueError(f"q: shape {q.shape} differs from p's {p.shape}")
    return 0.5 * float(np.abs(p - q).sum())


def autocorrelation(x: Any) -> np.ndarray:
    """Normalised autocorrelation function of a 1-D series (FFT, O(T log T))."""
    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or x.size < 2:
        raise ValueError("x: expected a 1-D series of length >= 2")
    y = x - x.mean()
    n = 1 << (2 * y.size - 1).bit_length()
    f = np.fft.rfft(y, n)
    acf = np.fft.irfft(f * np.conj(f), n)[: y.size]
    if acf[0] <= 0:
        return np.ones(1)
    return acf / acf[0]


def integrated_autocorrelation_time(x: Any, c: float = 5.0) -> float:
    """tau_int = 1 + 2 sum_{t>=1} rho(t), with Sokal's automatic window (the smallest
    W with W >= c * tau(W)). tau = 1 for independent samples."""
    rho = autocorrelation(x)
    if rho.size == 1:
        return 1.0
    taus = 2.0 * np.cumsum(rho) - 1.0
    window = np.arange(taus.size) >= c * taus
    w = int(np.argmax(window)) if np.any(window) else taus.size - 1
    return float(max(taus[w], 1e-12))


def _autocovariance(x: np.ndarray) -> np.ndarray:
    y = x - x.mean()
    n = 1 << (2 * y.size - 1).bit_length()
    f = np.fft.rfft(y, n)
    return np.fft.irfft(f * np.conj(f), n)[: y.size] / y.size


def effective_sample_size(traces: Any) -> float:
    """Multi-chain effective sample size of a scalar (traces: (T,) or (chains, T)).

    Stan's estimator (Vehtari et al. 2021, without rank normalisation): autocorrelations
    rho_t = 1 - (W - mean_m C_m(t)) / var_plus with W the mean within-chain variance,
    var_plus = (T-1)/T W + B/T including the between-chain variance B, summed with
    Geyer's initial monotone sequence; ESS = chains * T / tau. Chains stuck in different
    regions inflate B and so lower the ESS, unlike a per-chain autocorrelation time.
    """
    a = np.asarray(traces, dtype=float)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] < 4:
        raise ValueError("traces: expected (T,) or (chains, T) with T >= 4")
    m, n = a.shape
    acov = np.array([_autocovariance(row) for row in a])
    means = a.mean(axis=1)
    w = float(np.mean(acov[:, 0] * n / (n - 1)))
    b = float(n * np.var(means, ddof=1)) if m > 1 else 0.0
    var_plus = (n - 1) / n * w + b / n
    if var_plus <= 0:
        return float(m * n)
    rho = 1.0 - (w - acov.mean(axis=0)) / var_plus
    rho[0] = 1.0
    tau, prev = -1.0, np.inf
    for k in range(0, n - 1, 2):
        pair = rho[k] + rho[k + 1]
        if pair <= 0:
            break
        pair = min(pair, prev)
        tau += 2.0 * pair
        prev = pair
    return float(m * n / max(tau, 1e-12))


def frechet_distance(mu1: Any, cov1: Any, mu2: Any, cov2: Any) -> float:
    """||mu1 - mu2||^2 + Tr(C1 + C2 - 2 (C1 C2)^{1/2})."""
    import warnings

    import scipy.linalg

    mu1, mu2 = np.asarray(mu1, float), np.asarray(mu2, float)
    c1, c2 = np.atleast_2d(cov1), np.atleast_2d(cov2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        covmean = scipy.linalg.sqrtm(c1 @ c2)
        if not np.all(np.isfinite(covmean)):  # singular products: regularise both covariances
            eps = 1e-6 * np.eye(len(c1))
            c1, c2 = c1 + eps, c2 + eps
            covmean = scipy.linalg.sqrtm(c1 @ c2)
    covmean = np.real(covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(c1) + np.trace(c2) - 2 * np.trace(covmean))


def fid_from_features(f1: Any, f2: Any) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N, d), (M, d)."""
    a, b = np.asarray(f1, float), np.asarray(f2, float)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"f2: feature shapes {a.shape} and {b.shape} must be (N, d) and (M, d)")
    if len(a) < 2 or len(b) < 2:
        raise ValueError("f1: need at least 2 feature vectors per set")
    return frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
