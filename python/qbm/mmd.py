"""Maximum mean discrepancy between sample sets and between distributions.

MMD^2(P, Q) = E_{x,x'~P} K(x,x') - 2 E_{x~P, y~Q} K(x,y) + E_{y,y'~Q} K(y,y').

Kernels on bitstrings (rows of {0,1} or {-1,+1}, any integer or bool dtype):
  * ``"gaussian"``: K_sigma(x, y) = exp(-d_H(x, y) / (2 sigma)), the convention of
    Rudolph et al. (npj QI 2024); ``sigma`` may be a sequence (mean of the kernels);
  * ``"delta"``: K(x, y) = [x == y].
On real vectors (N, d): ``kernel="rbf"``, K(a, b) = exp(-||a - b||^2 / (2 sigma^2)),
``sigma="median"`` for the median heuristic.

The Rust core packs bitstrings into u64 words and builds histograms of Hamming
distances with popcount (threads, GIL released), so extra bandwidths cost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from qbm import _core
from qbm._validate import check_choice, check_threads

ESTIMATORS = ("biased", "unbiased", "linear")
BIT_KERNELS = ("gaussian", "delta")


# ------------------------------------------------------------------ inputs
def as_bits(x: Any, name: str = "x") -> np.ndarray:
    """(N, n) bool array from {0,1} or {-1,+1} values (ValueError naming ``name`` otherwise)."""
    a = np.asarray(x)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D (N, n) array of bits, got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{name}: empty sample set (shape {a.shape})")
    if a.dtype == np.bool_:
        return a
    if a.dtype.kind not in "iuf":
        raise ValueError(f"{name}: expected bits as integers or bools, got dtype {a.dtype}")
    vals = np.unique(a)
    if np.all(np.isin(vals, (0, 1))):
        return a.astype(bool)
    if np.all(np.isin(vals, (-1, 1))):
        return a > 0
    raise ValueError(f"{name}: values must be {{0, 1}} or {{-1, +1}} bits, found {vals[:5].tolist()}")


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """(N, n) bool -> (N, ceil(n / 64)) uint64, bit i of a row in word i // 64, padding 0."""
    n = bits.shape[1]
    words = (n + 63) // 64
    packed = np.packbits(bits, axis=1, bitorder="little")
    pad = words * 8 - packed.shape[1]
    if pad:
        packed = np.concatenate([packed, np.zeros((packed.shape[0], pad), dtype=np.uint8)], axis=1)
    return np.ascontiguousarray(packed).view("<u8").reshape(bits.shape[0], words)


def _sigmas(sigma: Any, name: str = "sigma") -> np.ndarray:
    s = np.atleast_1d(np.asarray(sigma, dtype=np.float64))
    if s.ndim != 1 or s.size == 0 or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError(f"{name}: bandwidths must be finite and > 0, got {sigma!r}")
    return s


def hamming_kernel_table(nbits: int, sigma: Any, kernel: str = "gaussian") -> np.ndarray:
    """K as a function of the Hamming distance d = 0..nbits."""
    d = np.arange(nbits + 1, dtype=np.float64)
    if kernel == "delta":
        return (d == 0).astype(np.float64)
    s = _sigmas(sigma)
    return np.exp(-d[None, :] / (2.0 * s[:, None])).mean(axis=0)


# ------------------------------------------------------------------ kernel sums
@dataclass
class KernelSums:
    """Kernel sums over ordered pairs: ``xx``/``yy`` exclude i == j, ``xy`` all pairs;
    ``diag_x``/``diag_y`` the sums over i == j (N K(x, x))."""

    xx: float
    yy: float
    xy: float
    diag_x: float
    diag_y: float
    n_x: int
    n_y: int

    def mmd2(self, estimator: str = "biased") -> float:
        n, m = self.n_x, self.n_y
        if estimator == "biased":
            return (self.xx + self.diag_x) / n**2 + (self.yy + self.diag_y) / m**2 - 2 * self.xy / (n * m)
        if n < 2 or m < 2:
            raise ValueError("x: the unbiased estimator needs at least 2 samples in each set")
        return self.xx / (n * (n - 1)) + self.yy / (m * (m - 1)) - 2 * self.xy / (n * m)


def hamming_histograms(x: Any, y: Any, *, num_threads: int | None = None) -> tuple[np.ndarray, ...]:
    """Histograms (xx, yy, xy) of Hamming distances: xx/yy over unordered pairs i < j."""
    bx, by = as_bits(x, "x"), as_bits(y, "y")
    if bx.shape[1] != by.shape[1]:
        raise ValueError(f"y: bit width {by.shape[1]} differs from x's {bx.shape[1]}")
    px, py = pack_bits(bx), pack_bits(by)
    hxx, hyy, hxy = _core.hamming_histograms(px, py, bx.shape[1], num_threads=check_threads(num_threads))
    return np.asarray(hxx), np.asarray(hyy), np.asarray(hxy)


def kernel_sums(
    x: Any, y: Any, sigma: Any = 1.0, *, kernel: str = "gaussian", num_threads: int | None = None
) -> KernelSums:
    """Kernel sums within and across two sample sets (so callers can form any term)."""
    if kernel == "rbf":
        return _rbf_sums(x, y, sigma, num_threads)
    kernel = check_choice(kernel, "kernel", BIT_KERNELS + ("rbf",))
    hxx, hyy, hxy = hamming_histograms(x, y, num_threads=num_threads)
    k = hamming_kernel_table(len(hxy) - 1, sigma, kernel)
    n_x, n_y = _rows(x), _rows(y)
    return KernelSums(
        xx=2.0 * float(hxx @ k),
        yy=2.0 * float(hyy @ k),
        xy=float(hxy @ k),
        diag_x=n_x * float(k[0]),
        diag_y=n_y * float(k[0]),
        n_x=n_x,
        n_y=n_y,
    )


def _rows(a: Any) -> int:
    a = np.asarray(a)
    return 1 if a.ndim == 1 else int(a.shape[0])


# ------------------------------------------------------------------ estimators
def mmd2(
    x: Any,
    y: Any,
    sigma: Any = 1.0,
    *,
    estimator: str = "biased",
    kernel: str = "gaussian",
    num_threads: int | None = None,
) -> float:
    """MMD^2 between sample sets ``x`` (N, n) and ``y`` (M, n).

    estimator: ``"biased"`` (V-statistic, >= 0), ``"unbiased"`` (U-statistic), or
    ``"linear"`` (the O(N) estimator over disjoint pairs of Gretton et al. 2012).
    kernel: ``"gaussian"`` or ``"delta"`` on bitstrings, ``"rbf"`` on real vectors.
    """
    estimator = check_choice(estimator, "estimator", ESTIMATORS)
    kernel = check_choice(kernel, "kernel", BIT_KERNELS + ("rbf",))
    if estimator == "linear":
        return _linear(x, y, sigma, kernel)
    return kernel_sums(x, y, sigma, kernel=kernel, num_threads=num_threads).mmd2(estimator)


def mmd2_counts(cx: Any, cy: Any, sigma: Any = 1.0, *, estimator: str = "unbiased") -> float:
    """MMD^2 (Gaussian Hamming kernel) between two sample sets given as count vectors over
    all 2^n bitstrings (index = bits, first bit most significant): the same number as
    :func:`mmd2` on the shots themselves, in O(n 2^n) from the kernel's product
    structure instead of O(shots^2) pairs. Unbiased within-set terms are
    (c^T K c - N K(0)) / (N (N - 1)) (K(0) = 1)."""
    estimator = check_choice(estimator, "estimator", ("biased", "unbiased"))
    a = np.asarray(cx, dtype=np.float64)
    b = np.asarray(cy, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"cy: expected a count vector of the same length as cx {a.shape}, got {b.shape}")
    if np.any(a < 0) or np.any(b < 0) or not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("cx: counts must be finite and non-negative")
    N, M = float(a.sum()), float(b.sum())
    ka, kb = kernel_matvec(a, sigma), kernel_matvec(b, sigma)
    xx, yy, xy = float(a @ ka), float(b @ kb), float(a @ kb)
    if estimator == "biased":
        return xx / N**2 + yy / M**2 - 2 * xy / (N * M)
    if N < 2 or M < 2:
        raise ValueError("cx: the unbiased estimator needs at least 2 samples per set")
    return (xx - N) / (N * (N - 1)) + (yy - M) / (M * (M - 1)) - 2 * xy / (N * M)


def _linear(x: Any, y: Any, sigma: Any, kernel: str) -> float:
    if kernel == "rbf":
        a, b = _real(x, "x"), _real(y, "y")
        if a.shape[1] != b.shape[1]:
            raise ValueError(f"y: dimension {b.shape[1]} differs from x's {a.shape[1]}")
        s = _rbf_sigmas(sigma, a, b)
        m = min(len(a), len(b)) // 2
        if m < 1:
            raise ValueError("x: the linear estimator needs at least 2 samples in each set")

        def k(u: np.ndarray, v: np.ndarray) -> np.ndarray:
            sq = ((u - v) ** 2).sum(axis=1)
            return np.exp(-sq[None, :] / (2 * s[:, None] ** 2)).mean(axis=0)

        x1, x2, y1, y2 = a[0 : 2 * m : 2], a[1 : 2 * m : 2], b[0 : 2 * m : 2], b[1 : 2 * m : 2]
    else:
        bx, by = as_bits(x, "x"), as_bits(y, "y")
        if bx.shape[1] != by.shape[1]:
            raise ValueError(f"y: bit width {by.shape[1]} differs from x's {bx.shape[1]}")
        table = hamming_kernel_table(bx.shape[1], sigma, kernel)
        px, py = pack_bits(bx), pack_bits(by)
        m = min(len(px), len(py)) // 2
        if m < 1:
            raise ValueError("x: the linear estimator needs at least 2 samples in each set")

        def k(u: np.ndarray, v: np.ndarray) -> np.ndarray:
            return table[np.bitwise_count(u ^ v).sum(axis=1)]

        x1, x2, y1, y2 = px[0 : 2 * m : 2], px[1 : 2 * m : 2], py[0 : 2 * m : 2], py[1 : 2 * m : 2]
    h = k(x1, x2) + k(y1, y2) - k(x1, y2) - k(x2, y1)
    return float(h.mean())


# ------------------------------------------------------------------ real vectors
def _real(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty (N, d) array, got shape {np.shape(x)}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: contains NaN or inf")
    return np.ascontiguousarray(a)


def median_heuristic(x: Any, y: Any, max_points: int = 1000, seed: int = 0) -> float:
    """Median pairwise Euclidean distance of the pooled sample (subsampled to
    ``max_points``): the usual RBF bandwidth."""
    z = np.concatenate([_real(x, "x"), _real(y, "y")])
    if len(z) > max_points:
        z = z[np.random.default_rng(seed).choice(len(z), max_points, replace=False)]
    sq = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    d = np.sqrt(sq[np.triu_indices(len(z), 1)])
    med = float(np.median(d)) if d.size else 1.0
    return med if med > 0 else 1.0


def _rbf_sigmas(sigma: Any, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if isinstance(sigma, str):
        if sigma != "median":
            raise ValueError(f"sigma: unknown value {sigma!r}; give bandwidths or 'median'")
        return np.array([median_heuristic(a, b)])
    return _sigmas(sigma)


def _rbf_sums(x: Any, y: Any, sigma: Any, num_threads: int | None) -> KernelSums:
    a, b = _real(x, "x"), _real(y, "y")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"y: dimension {b.shape[1]} differs from x's {a.shape[1]}")
    s = _rbf_sigmas(sigma, a, b)
    sums = np.asarray(_core.rbf_kernel_sums(a, b, s, num_threads=check_threads(num_threads)))
    xx, yy, xy = sums.mean(axis=0)
    return KernelSums(xx=2 * xx, yy=2 * yy, xy=xy, diag_x=float(len(a)), diag_y=float(len(b)), n_x=len(a), n_y=len(b))


# ------------------------------------------------------------------ exact, on distributions
def kernel_matvec(v: Any, sigma: Any) -> Any:
    """K v for vectors over all 2^n bitstrings (last axis; index = bits, first bit most
    significant) with the Gaussian Hamming kernel, by its product structure:
    K = (x)_i [[1, e], [e, 1]], e = exp(-1 / (2 sigma)): n contractions, O(n 2^n).
    Works on numpy arrays and (differentiably) on torch tensors, batched over leading
    axes; a sequence of sigmas gives the mean kernel."""
    sig = _sigmas(sigma)
    size = v.shape[-1]
    n = int(size).bit_length() - 1
    if n < 0 or 1 << n != size:
        raise ValueError(f"p: length must be a power of two (2^n), got {size}")
    lead = tuple(v.shape[:-1])
    out = None
    for s in sig:
        e = float(np.exp(-1.0 / (2.0 * s)))
        w = v.reshape(lead + (2,) * n)
        for axis in range(len(lead), len(lead) + n):
            w = w + e * _flip(w, axis)
        w = w.reshape(lead + (size,))
        out = w if out is None else out + w
    assert out is not None
    return out / len(sig)


def _flip(w: Any, axis: int) -> Any:
    try:
        import torch

        if isinstance(w, torch.Tensor):
            return torch.flip(w, dims=(axis,))
    except ImportError:  # pragma: no cover
        pass
    return np.flip(w, axis=axis)


def mmd2_exact(p: Any, q: Any, sigma: Any = 1.0) -> Any:
    """Exact MMD^2 = (p - q)^T K (p - q) between probability vectors of length 2^n
    (index = bits read as a binary number, first bit most significant). Uses the
    kernel's product structure (never a 2^n x 2^n matrix); differentiable when given
    torch tensors. ``p`` may be a batch (B, 2^n) against one ``q``."""
    if getattr(p, "shape", None) is None or getattr(q, "shape", None) is None:
        p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if tuple(p.shape) != tuple(q.shape) and not (len(q.shape) == 1 and p.shape[-1:] == q.shape):
        raise ValueError(f"q: shape {tuple(q.shape)} differs from p's {tuple(p.shape)}")
    if len(q.shape) != 1:
        raise ValueError(f"q: expected a 1-D probability vector, got shape {tuple(q.shape)}")
    _check_probabilities(p, "p")
    _check_probabilities(q, "q")
    d = p - q
    return (d * kernel_matvec(d, sigma)).sum(-1)


def _check_probabilities(v: Any, name: str) -> None:
    """Finite, non-negative, summing to 1 along the last axis, length a power of two."""
    a = v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)
    size = a.shape[-1]
    if size < 2 or size & (size - 1):
        raise ValueError(f"{name}: length {size} is not a power of two (2^n states, n >= 1)")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: contains NaN or inf")
    if np.any(a < 0):
        raise ValueError(f"{name}: probabilities must be >= 0 (found {float(a.min()):.3g})")
    sums = a.sum(axis=-1)
    # float32 simulators sum to 1 within ~1e-6; anything beyond 1e-3 is not a distribution
    if np.any(np.abs(sums - 1.0) > 1e-3):
        raise ValueError(f"{name}: probabilities must sum to 1 (found {float(np.ravel(sums)[0]):.6g})")


def mmd_sigmas_mixture(n: int) -> list[float]:
    """The bandwidth mixture of Rudolph et al.: (0.01, 0.1, 0.25, 0.5, 1, 10) x n."""
    return [c * n for c in (0.01, 0.1, 0.25, 0.5, 1.0, 10.0)]


# ------------------------------------------------------------------ torch
def mmd2_torch(x: Any, y: Any, sigma: Any = "median", estimator: str = "biased") -> Any:
    """Differentiable MMD^2 with the RBF kernel for real torch tensors (N, d), (M, d);
    ``sigma``: bandwidth(s) or ``"median"`` (computed on detached data)."""
    import torch

    estimator = check_choice(estimator, "estimator", ("biased", "unbiased"))
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"y: shapes {tuple(x.shape)} and {tuple(y.shape)} must be (N, d) and (M, d)")
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError("x: need at least 2 samples in each set")
    if isinstance(sigma, str):
        s = _rbf_sigmas(sigma, x.detach().cpu().double().numpy(), y.detach().cpu().double().numpy())
    else:
        s = _sigmas(sigma)
    sig = torch.as_tensor(s, dtype=x.dtype, device=x.device)

    def k(a: Any, b: Any) -> Any:
        sq = torch.cdist(a, b).pow(2)
        return torch.exp(-sq[None] / (2 * sig[:, None, None] ** 2)).mean(0)

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    n, m = x.shape[0], y.shape[0]
    if estimator == "biased":
        return kxx.mean() + kyy.mean() - 2 * kxy.mean()
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return sxx + syy - 2 * kxy.mean()


def _make_mmd_loss() -> Any:
    import torch

    class MMDLoss(torch.nn.Module):
        """``torch.nn.Module`` computing MMD^2 (RBF kernel, bandwidth mixture or median
        heuristic) between two batches of real vectors; gradients by autograd."""

        def __init__(self, sigma: Any = "median", estimator: str = "biased") -> None:
            super().__init__()
            if not isinstance(sigma, str):
                _sigmas(sigma)
            self.sigma = sigma
            self.estimator = check_choice(estimator, "estimator", ("biased", "unbiased"))

        def forward(self, x: Any, y: Any) -> Any:
            return mmd2_torch(x, y, self.sigma, self.estimator)

    return MMDLoss


def __getattr__(name: str) -> Any:
    if name == "MMDLoss":
        cls = _make_mmd_loss()
        globals()["MMDLoss"] = cls
        return cls
    raise AttributeError(name)
