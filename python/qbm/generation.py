"""Generation from a BM-VAE's learned energy, and how generated images are judged.

Three modes over one energy E(z) (the prior's Boltzmann machine, p(z) = exp(-E(z)) / Z),
each one sampler call on the prior's Ising model:

* ``prior``: Gibbs sampling at the model's own temperature (beta = 1): the honest
  generative distribution of the model.
* ``qa``: simulated annealing from beta = 0.05 to a final beta > 1, colder than the
  prior, so samples sit nearer low-energy minima. The final beta is chosen on a
  validation split of the training set by :data:`QA_RULE` (the coldest that keeps class
  coverage and recall), not fixed: too cold an anneal keeps one minimum (collapse).
* ``cqa``: the lambda-tilted prior exp(-E(z) + lambda b_y . z) at beta = 1, with b_y the
  weights of a multinomial logistic regression p(y | z) = softmax_y(b_y . z + c_y) fitted
  on spins drawn from the encoder for the training images. By Bayes,
  p(z | y) = p(z) p(y | z) / p(y); the tilted prior at lambda = 1 equals it only when the
  softmax's normaliser sum_y' exp(b_y' . z + c_y') does not depend on z (it does, so this
  is a tilted prior that leans toward the label's region while keeping the prior's
  variety there, and lambda > 1 leans harder). lambda is chosen per model on a
  validation split of the training set by :data:`LAMBDA_RULE`, with a logistic
  regression on pixels as the picker; the judge below is a different network.

Judging (:class:`Judge`): one feature classifier per data set (fixed seed, cached on
disk under a content key of the data and its configuration, shared by every run); FID on
its penultimate features against held-out real images with equal counts, beside the
real-vs-real floor; class coverage (normalised entropy of predicted classes, 1 = uniform,
and the smallest class fraction); precision and recall on the features (k-NN balls,
k = 3, Kynkaanniemi et al. 2019); for c-QA the judge's accuracy relative to its accuracy
on real images of the label, and within-class diversity relative to the prior's own
beta = 1 samples that the judge assigns to the label.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from qbm._adam import Adam
from qbm._logistic import fit_logistic
from qbm.data.cache import cache_dir

MODES = ("prior", "qa", "cqa")
QA_BETAS = (1.0, 1.1, 1.2, 1.3, 1.5, 2.0, 3.0)
LAMBDAS = (0.5, 1.0, 2.0, 4.0, 8.0)
MIN_COVERAGE = 0.9
MIN_RECALL_RATIO = 0.8
MIN_CLASS_FRACTION = 0.03
MAX_FID_RATIO = 1.2
MIN_RELATIVE_ACCURACY = 0.95
QA_VAL_IMAGES = 5000  # the QA beta choice judges at most this many validation images per beta
DIRECTION_IMAGES = 10000  # the logistic directions are fitted on at most this many training images
QA_RULE = (
    f"the coldest final beta in {list(QA_BETAS)} whose samples keep class coverage >= {MIN_COVERAGE}, every class "
    f">= {MIN_CLASS_FRACTION:.0%} of samples, recall >= {MIN_RECALL_RATIO}x and FID <= {MAX_FID_RATIO}x those of "
    f"the beta = 1 samples, on a validation split of the training set (at most {QA_VAL_IMAGES} of its images, "
    "as many samples per beta; beta = 1 when no colder one does)"
)
LAMBDA_RULE = (
    f"per label, the smallest lambda in {list(LAMBDAS)} whose c-QA images the picker (logistic regression on "
    f"pixels, trained on the rest of the training set) assigns to the label at >= {MIN_RELATIVE_ACCURACY}x its "
    "accuracy on real validation images of the label; if none does, that label's most accurate lambda. "
    "Conditioning is reported as failed when the accuracy's 95% lower bound is at most chance + 0.1"
)


# ------------------------------------------------------------------ sampling
def _ising(model: Any, extra_field: Any = None) -> Any:
    return model.prior.to_ising(extra_field=extra_field)


def prior_spins(
    model: Any, num: int, *, beta: float = 1.0, extra_field: Any = None, num_sweeps: int = 1000, seed: int = 0
) -> np.ndarray:
    """Spins (num, n) from exp(-beta (E(z) - extra_field . z)) by Gibbs sampling
    (``num`` independent chains from random states, ``num_sweeps`` sweeps)."""
    from qbm.samplers import GibbsSampler

    if not beta > 0:
        raise ValueError(f"beta: must be > 0, got {beta}")
    res = GibbsSampler().sample_model(
        _ising(model, extra_field), beta=beta, num_reads=num, num_sweeps=num_sweeps, seed=seed
    )
    return res.spins


def qa_spins(
    model: Any, num: int, *, beta_final: float, num_sweeps: int = 1000, seed: int = 0, sampler: str = "sa"
) -> np.ndarray:
    """QA mode: anneal from beta 0.05 to ``beta_final`` (SA, geometric schedule), or SQA
    (s from 0.01 to 1 at beta = ``beta_final``, Gamma = 2, P = 8)."""
    from qbm.samplers import SimulatedAnnealingSampler, SQASampler

    if not beta_final > 0:
        raise ValueError(f"beta_final: must be > 0, got {beta_final}")
    ising = _ising(model)
    if sampler == "sa":
        res = SimulatedAnnealingSampler().sample_model(
            ising, beta_range=(0.05, beta_final), num_reads=num, num_sweeps=num_sweeps, seed=seed
        )
    elif sampler == "sqa":
        res = SQASampler().sample_model(
            ising, beta=beta_final, gamma=2.0, num_trotter_slices=8, num_sweeps=num_sweeps, num_reads=num, seed=seed
        )
    else:
        raise ValueError(f"sampler: unknown anneal sampler {sampler!r}; choose 'sa' or 'sqa'")
    return res.spins


def cqa_spins(model: Any, num: int, direction: Any, lam: float, *, num_sweeps: int = 1000, seed: int = 0) -> np.ndarray:
    """c-QA mode: the lambda-tilted prior exp(-E(z) + lambda b . z) at beta = 1."""
    b = np.asarray(direction, dtype=np.float64)
    if not np.all(np.isfinite(b)):
        raise ValueError("direction: must be finite")
    return prior_spins(model, num, extra_field=lam * b, num_sweeps=num_sweeps, seed=seed)


@torch.no_grad()
def decode(model: Any, spins: np.ndarray) -> np.ndarray:
    """Decoded mean images (N, C, H, W) in [0, 1] for latent spins."""
    dev = next(model.parameters()).device
    z = torch.as_tensor(spins, dtype=torch.float32)
    parts = [torch.sigmoid(model.decode(z[s : s + 2048].to(dev))).cpu().numpy() for s in range(0, len(z), 2048)]
    return np.concatenate(parts) if parts else np.zeros((0, *model.shape), dtype=np.float32)


@torch.no_grad()
def gaussian_images(model: Any, num: int, *, tau: float = 1.0, seed: int = 0) -> np.ndarray:
    """A Gaussian VAE's images decoded from z ~ N(0, tau^2 I) (tau < 1: colder)."""
    g = torch.Generator().manual_seed(seed)
    dev = next(model.parameters()).device
    z = tau * torch.randn(num, model.latent, generator=g)
    return torch.sigmoid(model.decoder(z.to(dev))).cpu().numpy()


@torch.no_grad()
def encoded_means(model: Any, x: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """E[z | x] for every image, encoded in chunks (bounded memory at 60k images)."""
    dev = next(model.parameters()).device
    parts = [
        model.encode_mean(torch.as_tensor(x[s : s + chunk]).to(dev)).cpu().numpy() for s in range(0, len(x), chunk)
    ]
    return np.concatenate(parts).astype(np.float64)


def directions(model: Any, x: np.ndarray, y: np.ndarray, num_classes: int, seed: int = 0) -> np.ndarray:
    """b_c (num_classes, n): weights of a multinomial logistic regression of the label on
    spins drawn from the encoder (4 draws per image; the mean spin m = tanh(l / 2) gives
    P(z_i = +1) = (1 + m_i) / 2), on at most :data:`DIRECTION_IMAGES` images (a fixed random
    subset of larger sets: at 2176 spins the fit on 48k images x 4 draws took most of 20
    minutes). A class absent from ``y`` gets b_c = 0."""
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    if len(x) > DIRECTION_IMAGES:
        keep = np.sort(rng.permutation(len(x))[:DIRECTION_IMAGES])
        x, y = x[keep], y[keep]
    means = encoded_means(model, x)
    reps = 4
    m = np.repeat(means, reps, 0)
    z = np.where(rng.random(m.shape) < (1 + m) / 2, 1.0, -1.0)
    yy = np.repeat(np.asarray(y), reps)
    lr = fit_logistic(z, yy, max_iter=3000)
    out = np.zeros((num_classes, means.shape[1]))
    for i, c in enumerate(lr.classes):  # two classes: scikit-learn's vector w as (-w/2, +w/2)
        out[int(c)] = lr.coef[i]
    return out


def posterior_accuracy(model: Any, judge: Any, x: np.ndarray, y: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Per label c, the judge's accuracy on images decoded from one posterior sample of spins
    z ~ q(z | x) (independent spins with mean tanh(l / 2)) of every real image x of label c
    (nan for a label absent from ``y``): how often the encoder and decoder render a code of
    the label as the label. The reference for c-QA's accuracy on that label: a tilt of the
    prior that reaches it places its samples where the label's own codes lie (it may exceed
    it by favouring the best-rendered codes); a label whose own codes are judged far below
    the judge's accuracy on real images is limited by the autoencoder, not by the prior."""
    y = np.asarray(y)
    means = encoded_means(model, x)
    z = np.where(np.random.default_rng(seed).random(means.shape) < (1 + means) / 2, 1.0, -1.0)
    pred = judge.predict(decode(model, z))
    return np.array([float(np.mean(pred[y == c] == c)) if np.any(y == c) else float("nan")
                     for c in range(judge.num_classes)])  # fmt: skip


def class_means(model: Any, x: np.ndarray, y: np.ndarray, num_classes: int) -> np.ndarray:
    """m_c (num_classes, n): the mean encoded spin E[z | x] = tanh(l / 2) over the images
    of class c (0 for a class absent from ``y``)."""
    means = encoded_means(model, x)
    y = np.asarray(y)
    out = np.zeros((num_classes, means.shape[1]))
    for c in range(num_classes):
        if np.any(y == c):
            out[c] = means[y == c].mean(0)
    return out


MAX_FIELD_STEP = 0.5  # the largest change of one field in one step of learn_bias_fields
FIELD_CLIP = 1e-3  # target means are clipped to +-(1 - FIELD_CLIP): the optimum exists only inside (-1, 1)
FIELD_RIDGE = 1e-3  # added to the diagonal of the chains' covariance in each Newton step


def bonferroni_se(n: int, level: float = 0.05) -> float:
    """The gap in standard errors that the largest of ``n`` spins' sampling errors alone
    exceeds with probability ``level`` (two-sided, Bonferroni): the stopping bound of
    :func:`learn_bias_fields`. 1.96 at n = 1, 3.16 at 32, 3.92 at 576, 4.23 at 2176."""
    from statistics import NormalDist

    return -NormalDist().inv_cdf(level / (2 * max(1, int(n))))


def newton_direction(spins: np.ndarray, grad: np.ndarray) -> tuple[np.ndarray, float]:
    """Cov^-1 grad for the Newton step of moment matching, with the covariance of the chains'
    spins (N, n) shrunk toward its diagonal (Schaefer & Strimmer 2005, target D): N chains
    give a covariance of rank below N, singular when n >= N, whose inverse would blow
    sampling noise up along its null space. The intensity is the estimated
    sum_{i != j} Var(s_ij) / sum_{i != j} s_ij^2 with the Gaussian Var(s_ij) ~ (s_ii s_jj +
    s_ij^2) / N, clipped to [0, 1]; a ridge :data:`FIELD_RIDGE` on the diagonal. Solved through
    the N x N Gram matrix (Woodbury) when n > N: O(N^2 n), never an n x n matrix. Returns
    the direction and the intensity."""
    x = np.asarray(spins, dtype=np.float64)
    num, n = x.shape
    xc = x - x.mean(0)
    var = (xc * xc).sum(0) / max(num - 1, 1)
    small = num >= n
    gram = xc @ xc.T if not small else None  # (N, N): ||S||_F^2 = ||X X^T||_F^2 / (N - 1)^2
    cov = (xc.T @ xc) / max(num - 1, 1) if small else None
    frob2 = float((cov * cov).sum()) if small else float((gram * gram).sum()) / max(num - 1, 1) ** 2
    off2 = max(frob2 - float((var * var).sum()), 0.0)  # sum_{i != j} s_ij^2
    noise = ((float(var.sum()) ** 2 - float((var * var).sum())) + off2) / num
    alpha = 1.0 if off2 <= 0 else min(1.0, max(0.0, noise / off2))
    d = alpha * var + FIELD_RIDGE
    if small:
        full = (1 - alpha) * cov + np.diag(d)
        return np.linalg.solve(full, grad), alpha
    # (D + U U^T)^-1 g with U = sqrt((1 - alpha) / (N - 1)) X_c^T
    c = (1 - alpha) / max(num - 1, 1)
    dg = grad / d
    inner = np.eye(num) + c * (xc / d) @ xc.T
    return dg - (xc.T @ np.linalg.solve(inner, c * (xc @ dg))) / d, alpha


def learn_bias_fields(
    model: Any,
    targets: Any,
    *,
    num_chains: int = 256,
    sweeps: int = 20,
    burn_in: int = 200,
    max_iters: int = 300,
    tol_se: float | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """c-QA by learned bias fields: for every row m_y of ``targets`` (K, n), fields h_y with
    the couplings fixed such that the tilted prior p_h(z) ~ exp(-E(z) + h . z) has mean
    spins m_y: the maximum-likelihood fields of the exponential family, whose
    log-likelihood h . m_y - log Z(h) is concave with gradient m_y - E_h[z].

    Targets are clipped to +-(1 - :data:`FIELD_CLIP`) (at +-1 the optimum is at infinity).
    Each step runs persistent Gibbs chains under the current fields (``num_chains``,
    ``sweeps`` per step after ``burn_in``) and takes a Newton step, the gradient through the
    chains' covariance of z (the negative Hessian) shrunk toward its diagonal
    (:func:`newton_direction`), each field moving by at most :data:`MAX_FIELD_STEP`; it
    stops when |m_y - E_h[z]| is below ``tol_se`` sampler standard errors on every spin (the
    standard error at the larger of the two variances, over ``num_chains`` chains), else
    after ``max_iters`` steps (reported). ``tol_se`` defaults to :func:`bonferroni_se` of the
    number of spins, the largest gap that sampling noise alone exceeds with probability 0.05
    (a fixed bound such as 2 is unreachable on many spins: 2176 spins all within 2 standard
    errors happens with probability 0.954^2176). ``progress`` (a callable taking a line)
    hears where the fit is: each label's start and every 10th step with its largest gap in
    standard errors. Returns ``fields`` (K, n), per-label ``converged``, ``iterations``, the
    final ``max_gap_se`` and the bound ``tol_se`` used."""
    from qbm.samplers import GibbsSampler

    t = np.clip(np.asarray(targets, dtype=np.float64), -1 + FIELD_CLIP, 1 - FIELD_CLIP)
    if t.ndim != 2 or t.shape[1] != model.prior.n:
        raise ValueError(f"targets: expected shape (K, {model.prior.n}), got {t.shape}")
    if tol_se is None:
        tol_se = bonferroni_se(t.shape[1])
    elif not tol_se > 0:
        raise ValueError(f"tol_se: must be > 0, got {tol_se}")
    g = GibbsSampler()
    fields = np.zeros_like(t)
    converged, iters, gaps = [], [], []
    for k in range(len(t)):
        h = np.zeros(t.shape[1])
        state = None
        ok, gap, it = False, float("inf"), 0
        if progress is not None:
            progress(f"c-QA fields: label {k + 1} of {len(t)}")
        for it in range(1, max_iters + 1):
            if progress is not None and it % 10 == 0:
                progress(f"c-QA fields: label {k + 1} of {len(t)}, step {it} of at most {max_iters}, gap {gap:.1f} se "
                         f"(stops at {tol_se:.2f})")  # fmt: skip
            res = g.sample_model(
                _ising(model, h), beta=1.0, num_reads=num_chains, num_sweeps=burn_in if state is None else sweeps,
                initial_states=state, seed=seed + 100_003 * k + it,
            )  # fmt: skip
            state = res.spins
            m = state.mean(0)
            se = np.sqrt(np.maximum(1 - m**2, 1 - t[k] ** 2) / num_chains)
            grad = t[k] - m
            gap = float(np.max(np.abs(grad) / se))
            if gap <= tol_se:
                ok = True
                break
            # Newton on the concave log-likelihood: its Hessian is -Cov_h(z), estimated from the
            # chains and shrunk toward its diagonal; each field moves by at most MAX_FIELD_STEP
            step, _ = newton_direction(state, grad)
            h = h + step * min(1.0, MAX_FIELD_STEP / max(float(np.abs(step).max()), 1e-12))
        fields[k] = h
        converged.append(ok)
        iters.append(it)
        gaps.append(gap)
    return {"fields": fields, "converged": converged, "iterations": iters, "max_gap_se": gaps, "targets": t,
            "tol_se": float(tol_se)}  # fmt: skip


# ------------------------------------------------------------------ metrics
def class_coverage(pred: Any, num_classes: int) -> dict[str, float]:
    """Normalised entropy of the predicted-class histogram (1 = all classes equally often,
    0 = one class) and the smallest class fraction."""
    p = np.bincount(np.asarray(pred, dtype=np.int64), minlength=num_classes)[:num_classes] / max(1, len(pred))
    nz = p[p > 0]
    ent = max(0.0, float(-(nz * np.log(nz)).sum() / math.log(num_classes))) if num_classes > 1 else 1.0
    return {"coverage": ent, "min_class_fraction": float(p.min())}


def _pairwise_sq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T, 0.0)


def precision_recall(real: Any, fake: Any, k: int = 3) -> dict[str, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) on feature vectors: a
    point is covered by a set when it lies within the k-th-nearest-neighbour radius of some
    member of the set. precision = fraction of generated points covered by the real set,
    recall = fraction of real points covered by the generated set."""
    r = np.asarray(real, dtype=np.float64)
    f = np.asarray(fake, dtype=np.float64)
    if len(r) <= k or len(f) <= k:
        raise ValueError(f"k: need more than k = {k} points in each set, got {len(r)} and {len(f)}")

    def radii(x: np.ndarray) -> np.ndarray:
        d = _pairwise_sq(x, x)
        return np.sqrt(np.sort(d, axis=1)[:, k])  # column 0 is the point itself

    rr, rf = radii(r), radii(f)
    d_fr = np.sqrt(_pairwise_sq(f, r))  # (F, R)
    precision = float(np.mean((d_fr <= rr[None, :]).any(1)))
    recall = float(np.mean((d_fr <= rf[:, None]).any(0)))
    return {"precision": precision, "recall": recall}


def distinct_fraction(x: Any) -> float:
    """Distinct images / images (1.0: no two identical; 1/N: all one image). Reported
    beside the mean pairwise distance, which duplicates dilute without showing."""
    a = np.ascontiguousarray(np.asarray(x).reshape(len(x), -1))
    if len(a) == 0:
        return float("nan")
    return float(len(np.unique(a, axis=0)) / len(a))


def ratio(a: float, b: float) -> float:
    """a / b, or nan where b is nan or (numerically) 0: a relative number with no reference
    (e.g. the diversity of a collapsed prior's samples, identical up to rounding)."""
    return float(a) / float(b) if (b == b and abs(b) > 1e-6) else float("nan")


# mean pairwise distances of larger sets are taken over this many evenly spaced images
# (the full N x N matrix of 50,000 images would need 20 GB)
PAIRWISE_MAX = 2000


def mean_pairwise_distance(x: Any) -> float:
    """Mean Euclidean distance over pairs of images (of at most :data:`PAIRWISE_MAX`
    evenly spaced ones)."""
    if len(x) > PAIRWISE_MAX:
        x = np.asarray(x)[np.linspace(0, len(x) - 1, PAIRWISE_MAX).astype(np.int64)]
    a = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    if len(a) < 2:
        return float("nan")
    d = np.sqrt(_pairwise_sq(a, a))
    return float(d[np.triu_indices(len(a), 1)].mean())


# ------------------------------------------------------------------ the judge


def content_key(*arrays: Any, config: Any = None) -> str:
    """sha256 over arrays, a configuration and qbm's version."""
    from qbm import __version__

    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a))
        h.update(str((a.dtype, a.shape)).encode())
        flat = a.reshape(-1).view(np.uint8)  # the bytes of tobytes(), without copying a big set
        for s in range(0, flat.size, 1 << 26):
            h.update(flat[s : s + (1 << 26)])
    h.update(repr(config).encode())
    h.update(str(__version__).encode())
    return h.hexdigest()[:24]


class Judge:
    """The data set's feature classifier (FID features, coverage and c-QA accuracy)."""

    EPOCHS = 30
    PATIENCE = 5
    SEED = 1234

    def __init__(self, data: Any, *, cache: str | None = None, progress: bool = False) -> None:
        from qbm.models.qgan import FeatureClassifier

        self.num_classes = int(data.num_classes)
        self.progress = progress  # a bar over the judge's training epochs (minutes on MNIST)
        with torch.random.fork_rng(devices=[]):  # the initial weights too come from the fixed seed
            torch.manual_seed(self.SEED)
            self.net = FeatureClassifier(tuple(data.shape), self.num_classes)
        # "init": seeded initial weights (caches of judges built before that are not reused)
        cfg = {"arch": "FeatureClassifier", "epochs": self.EPOCHS, "patience": self.PATIENCE, "seed": self.SEED,
               "init": "seeded"}  # fmt: skip
        self.key = content_key(data.x_train, data.y_train, config=cfg)
        path = os.path.join(cache if cache is not None else cache_dir(), f"judge-{data.name}-{self.key}.pt")
        loaded = False
        if os.path.exists(path):
            from qbm.checkpoint import load_file

            try:
                ck = load_file(path)
                self.net.load_state_dict(ck["state"])
                self.report = ck.get("report", {})
                loaded = True
            except (ValueError, KeyError, RuntimeError):  # stale or corrupt: retrain
                loaded = False
        if not loaded:
            self._train(data)
            try:
                from qbm.checkpoint import save_atomic

                os.makedirs(os.path.dirname(path), exist_ok=True)
                save_atomic({"state": self.net.state_dict(), "config": cfg, "report": self.report}, path)
            except OSError:  # a read-only home: keep the judge in memory
                pass
        self.path = path
        self.net.eval()
        pred = self.predict(data.x_test)
        y = np.asarray(data.y_test)
        self.accuracy = float(np.mean(pred == y))
        self.per_class_accuracy = [
            float(np.mean(pred[y == c] == c)) if np.any(y == c) else float("nan") for c in range(self.num_classes)
        ]

    @classmethod
    def from_weights(cls, shape: tuple[int, ...], num_classes: int, state: dict[str, Any]) -> Judge:
        """A judge rebuilt from stored weights (no data: no accuracy is measured)."""
        from qbm.models.qgan import FeatureClassifier

        obj = cls.__new__(cls)
        obj.num_classes = int(num_classes)
        obj.net = FeatureClassifier(tuple(shape), obj.num_classes)
        obj.net.load_state_dict(state)
        obj.net.eval()
        obj.key, obj.path, obj.report, obj.progress = "", "", {}, False
        return obj

    def _train(self, data: Any) -> None:
        # one thread: the same weights in every process, whatever its torch thread count
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.random.fork_rng(devices=[]):  # the caller's random stream is left as it was
                self._fit(data)
        finally:
            torch.set_num_threads(threads)

    def _fit(self, data: Any) -> None:
        """At most :data:`EPOCHS` epochs, stopped when the accuracy on a validation split of
        the training images (10%) has not improved for :data:`PATIENCE` epochs; the best
        epoch's weights are kept (``self.report``)."""
        torch.manual_seed(self.SEED)
        g = torch.Generator().manual_seed(self.SEED)
        from qbm.data.images import to_float01

        fit, val = validation_split(len(data.x_train), 0.1, self.SEED)
        x_all = data.x_train  # uint8 sets stay uint8 (often memory-mapped): rows converted per batch
        y = torch.as_tensor(np.asarray(data.y_train, dtype=np.int64)[fit])
        xv = x_all[val]
        yv = np.asarray(data.y_train)[val]
        from qbm.checkpoint import BestWeights

        opt = Adam(self.net.parameters(), lr=2e-3)  # torch.optim.Adam's bits without the dynamo import
        stop = BestWeights(self.PATIENCE, lambda acc, best: acc > best, -1.0)
        ran = 0
        from tqdm import tqdm

        bar = tqdm(range(self.EPOCHS), desc=f"judge for {getattr(data, 'name', 'data')} (trained once, cached)",
                   disable=not self.progress, leave=False)  # fmt: skip
        for ep in bar:
            perm = torch.randperm(len(fit), generator=g)
            for s in range(0, len(fit), 64):
                b = perm[s : s + 64]
                xb = torch.as_tensor(to_float01(x_all[fit[b.numpy()]]))
                loss = F.cross_entropy(self.net(xb), y[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
            ran = ep + 1
            acc = float(np.mean(self.predict(xv) == yv))
            bar.set_postfix(val_accuracy=f"{acc:.3f}")
            if stop.update(ran, acc, self.net):
                break
        stop.restore(self.net)
        best, best_epoch = stop.best, stop.best_epoch
        self.report = {"epochs": ran, "best_epoch": best_epoch, "val_accuracy": best}

    def summary(self) -> dict[str, Any]:
        """What metrics.json records about the judge."""
        return {
            "accuracy": self.accuracy,
            "per_class_accuracy": self.per_class_accuracy,
            "key": self.key,
            "training": getattr(self, "report", {}),
        }

    CHUNK = 4096  # images per forward pass (bounded memory on big sets)

    @torch.no_grad()
    def features(self, images: Any) -> np.ndarray:
        """Feature vectors (float64) of float [0, 1] or uint8 images (numpy arrays or
        float torch tensors), in chunks. The one image-features implementation: generation,
        the QGAN's FID and the capacity study all measure through it."""
        from qbm.data.images import iter_float_chunks

        if isinstance(images, torch.Tensor):
            chunks: Any = (images[s : s + self.CHUNK].float() for s in range(0, len(images), self.CHUNK))
        else:
            chunks = (torch.as_tensor(c) for c in iter_float_chunks(images, self.CHUNK))
        parts = [self.net.features(c).numpy() for c in chunks]
        return np.concatenate(parts).astype(np.float64) if parts else np.zeros((0, 0))

    @torch.no_grad()
    def predict(self, images: Any) -> np.ndarray:
        """Predicted classes of float [0, 1] or uint8 images, in chunks."""
        from qbm.data.images import iter_float_chunks

        parts = [self.net(torch.as_tensor(c)).argmax(1).numpy() for c in iter_float_chunks(images, self.CHUNK)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def judge(self, images: Any, real: Any) -> dict[str, float]:
        """FID (equal counts: the first min(N, M) of each), coverage, precision, recall."""
        from qbm.metrics import fid_from_features

        n = min(len(images), len(real))
        fg, fr = self.features(images[:n]), self.features(real[:n])
        out = {"fid": fid_from_features(fg, fr), "count": n}
        out.update(class_coverage(self.predict(images), self.num_classes))
        out.update(precision_recall(fr, fg))
        return out


# ------------------------------------------------------------------ choices
def choose_beta(
    sample: Callable[[float, int, int], np.ndarray],
    judge: Judge,
    real_val: np.ndarray,
    *,
    betas=QA_BETAS,
    seed=0,
    progress: Callable[[str], None] | None = None,
) -> tuple[float, list[dict[str, Any]]]:
    """:data:`QA_RULE` for any sampler ``sample(beta, num, seed) -> images``; ``progress`` hears
    each beta as it starts."""
    real_val = real_val[:QA_VAL_IMAGES]
    table = []
    for i, beta in enumerate(betas):
        if progress is not None:
            progress(f"QA final beta: judging beta {beta} ({i + 1} of {len(betas)}), {len(real_val)} samples")
        m = judge.judge(sample(beta, len(real_val), seed), real_val)
        table.append({"beta": float(beta), **m})
    base = table[0]
    ok = [
        r
        for r in table
        if r["coverage"] >= MIN_COVERAGE
        and r["min_class_fraction"] >= MIN_CLASS_FRACTION
        and r["recall"] >= MIN_RECALL_RATIO * base["recall"]
        and r["fid"] <= MAX_FID_RATIO * base["fid"]
    ]
    beta = max((r["beta"] for r in ok), default=float(betas[0]))
    for r in table:
        r["chosen"] = r["beta"] == beta
    return beta, table


def validation_split(n: int, fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(fit, validation) indices of a training set of n images (fixed permutation)."""
    perm = np.random.default_rng(seed).permutation(n)
    k = max(2, int(round(fraction * n)))
    return np.sort(perm[k:]), np.sort(perm[:k])


def wilson_lower(p: float, n: int, z: float = 1.96) -> float:
    if n == 0:
        return 0.0
    d = 1 + z * z / n
    c = p + z * z / (2 * n)
    r = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (c - r) / d


def choose_lambda(
    model: Any,
    data: Any,
    *,
    lambdas: Sequence[float] = LAMBDAS,
    num: int = 32,
    num_sweeps: int = 500,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """:data:`LAMBDA_RULE` on a validation split of the training set; returns the chosen
    lambda, the table and the directions computed on the fit split. ``progress`` hears each
    phase (the two logistic fits, each lambda)."""
    say = progress or (lambda line: None)
    fit, val = validation_split(len(data.x_train), seed=seed)
    x, y = data.rows("train"), np.asarray(data.y_train)
    k = int(data.num_classes)
    say(f"c-QA lambda: logistic directions on {min(len(fit), DIRECTION_IMAGES)} images' encoded spins")
    dirs = directions(model, x[fit], y[fit], k)
    say(f"c-QA lambda: the picker (logistic regression on pixels) on {len(fit)} images")
    picker = fit_logistic(x[fit].reshape(len(fit), -1), y[fit], max_iter=2000)
    real_pred = picker.predict(x[val].reshape(len(val), -1))
    real_acc = np.array([np.mean(real_pred[y[val] == c] == c) if np.any(y[val] == c) else np.nan for c in range(k)])
    table = []
    for i, lam in enumerate(lambdas):
        say(f"c-QA lambda: judging lambda {lam} ({i + 1} of {len(lambdas)}), {num} images per label")
        acc, div = [], []
        for c in range(k):
            imgs = decode(model, cqa_spins(model, num, dirs[c], lam, num_sweeps=num_sweeps, seed=seed + 7919 * c))
            acc.append(float(np.mean(picker.predict(imgs.reshape(num, -1)) == c)))
            div.append(mean_pairwise_distance(imgs))
        a = np.asarray(acc)
        table.append(
            {
                "lambda": float(lam),
                "accuracy": float(a.mean()),
                "per_label": [float(v) for v in a],
                "relative_per_label": [float(v) for v in a / real_acc],
                "diversity_per_label": div,
            }
        )
    per_label = []
    for c in range(k):
        good = [r["lambda"] for r in table if r["relative_per_label"][c] >= MIN_RELATIVE_ACCURACY]
        per_label.append(min(good) if good else max(table, key=lambda r: r["per_label"][c])["lambda"])
    return {
        "lambda": per_label,
        "chance": 1.0 / k,
        "table": table,
        "picker_real_accuracy": [float(v) for v in real_acc],
        "directions": dirs,
        "rule": LAMBDA_RULE,
        "_picker": picker,
    }


FIELD_SCALES = (1.0, 1.5, 2.0, 3.0)
CQA_RULE = (
    f"per label, every candidate tilt -- the learned bias fields x s for s in {list(FIELD_SCALES)} (s = 1: the "
    f"paper's moment matching) and the logistic direction x lambda for lambda in {list(LAMBDAS)} -- draws images "
    f"on a validation split of the training set; among those the picker assigns to the label at >= "
    f"{MIN_RELATIVE_ACCURACY}x its accuracy on real validation images of the label, the one with the largest "
    "within-class diversity (mean pairwise distance); if none reaches that accuracy, the most accurate one"
)


def pick_tilt(candidates: list[dict[str, Any]], real_accuracy: float) -> dict[str, Any]:
    """:data:`CQA_RULE`'s choice among one label's candidates (dicts with ``accuracy`` and
    ``diversity``): the most diverse of those at >= MIN_RELATIVE_ACCURACY x
    ``real_accuracy``, else the most accurate (the more diverse on a tie)."""
    if not candidates:
        raise ValueError("candidates: empty")
    ok = [r for r in candidates if r["accuracy"] >= MIN_RELATIVE_ACCURACY * real_accuracy]
    if ok:
        return max(ok, key=lambda r: r["diversity"])
    return max(candidates, key=lambda r: (r["accuracy"], r["diversity"]))


def choose_cqa(
    model: Any,
    lam: dict[str, Any],
    fields: np.ndarray,
    picker: Any,
    *,
    num: int = 32,
    num_sweeps: int = 500,
    seed: int = 0,
    scales: Sequence[float] = FIELD_SCALES,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """:data:`CQA_RULE`: per label the tilt of the prior (learned fields x s or the logistic
    direction x lambda, from ``choose_lambda``'s table) that keeps the picker's accuracy at
    >= MIN_RELATIVE_ACCURACY x real and draws the most diverse images on validation data.
    Returns per label ``method`` ("fields" / "direction"), ``field_scale``, ``lambda`` and the
    candidate ``table``."""
    k = len(fields)
    real = np.asarray(lam["picker_real_accuracy"], dtype=np.float64)
    table: list[dict[str, Any]] = []
    for c in range(k):
        if progress is not None:
            progress(f"c-QA: judging learned fields x {list(scales)} on label {c + 1} of {k}")
        rows = []
        for sc in scales:
            imgs = decode(model, prior_spins(model, num, extra_field=sc * fields[c], num_sweeps=num_sweeps,
                                             seed=seed + 7919 * c + 1))  # fmt: skip
            acc = float(np.mean(picker.predict(imgs.reshape(len(imgs), -1)) == c))
            rows.append({"method": "fields", "field_scale": float(sc), "lambda": None, "accuracy": acc,
                         "diversity": mean_pairwise_distance(imgs)})  # fmt: skip
        for r in lam["table"]:
            rows.append({"method": "direction", "field_scale": None, "lambda": r["lambda"],
                         "accuracy": r["per_label"][c], "diversity": r["diversity_per_label"][c]})  # fmt: skip
        for r in rows:
            r["relative_accuracy"] = ratio(r["accuracy"], real[c])
        table.append({"label": c, "candidates": rows})
    method, scale, lams = [], [], []
    for c, t in enumerate(table):
        best = pick_tilt(t["candidates"], real[c])
        best["chosen"] = True
        method.append(best["method"])
        scale.append(best["field_scale"] if best["method"] == "fields" else None)
        # a label conditioned by fields keeps its direction's lambda for --lam-free use of the direction
        lams.append(best["lambda"] if best["method"] == "direction" else lam["lambda"][c])
    return {"method": method, "field_scale": scale, "lambda": lams, "table": table, "rule": CQA_RULE}


# ------------------------------------------------------------------ whole evaluations
def evaluate_bm(
    model: Any,
    data: Any,
    judge: Judge,
    *,
    seed: int = 0,
    num_sweeps: int = 1000,
    cqa_num: int = 32,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Every mode of a BM-VAE chosen on validation data and judged on the test set."""
    say = progress or (lambda s: None)
    x_tr = data.rows("train")
    fit_idx, val = validation_split(len(x_tr), seed=seed)  # the split choose_lambda uses too
    real_val = x_tr[val]
    real_test = data.rows("test")
    n_test = len(real_test)
    y_test = np.asarray(data.y_test)
    say("choosing the QA final beta on validation data")

    def qa(beta: float, num: int, s: int) -> np.ndarray:
        if beta == 1.0:
            return decode(model, prior_spins(model, num, num_sweeps=num_sweeps, seed=s))
        return decode(model, qa_spins(model, num, beta_final=beta, num_sweeps=num_sweeps, seed=s))

    beta, qa_table = choose_beta(qa, judge, real_val, seed=seed + 1, progress=say)
    say(f"QA final beta {beta}; choosing c-QA lambda per label on validation data")
    lam = choose_lambda(model, data, num=cqa_num, num_sweeps=num_sweeps // 2, seed=seed, progress=say)
    # the test-side numbers, fresh seeds
    say(f"judging the prior and QA modes on {n_test} test images")
    prior_sp = prior_spins(model, n_test, num_sweeps=num_sweeps, seed=seed + 11)
    prior_img = decode(model, prior_sp)
    qa_img = qa(beta, n_test, seed + 12)
    out: dict[str, Any] = {
        "judge": judge.summary(),
        "fid_floor": real_floor(judge, data, seed),
        "prior": {"beta": 1.0, **judge.judge(prior_img, real_test)},
        "qa": {"beta": beta, **judge.judge(qa_img, real_test)},
        "qa_table": qa_table,
        "qa_rule": QA_RULE,
    }
    # c-QA by learned bias fields (moment matching of each label's mean encoded spins), the
    # paper's method, against the logistic direction at its chosen lambda: per label, the
    # one with the higher validation accuracy (the same picker), the fields on a tie
    k = judge.num_classes
    picker = lam.pop("_picker")
    say("learning c-QA bias fields per label (moment matching of the encoded spins)")
    learned = learn_bias_fields(model, class_means(model, x_tr[fit_idx], np.asarray(data.y_train)[fit_idx], k),
                                seed=seed + 31, progress=say)  # fmt: skip
    fields = learned["fields"]
    choice = choose_cqa(model, lam, fields, picker, num=cqa_num, num_sweeps=num_sweeps // 2, seed=seed, progress=say)
    methods, scales = choice["method"], choice["field_scale"]
    n_fields = sum(m == "fields" for m in methods)
    say(f"judging c-QA per label ({n_fields} of {k} labels by learned fields x {choice['field_scale']}, the rest by "
        f"the logistic direction x lambda {choice['lambda']}), {cqa_num} images per label")  # fmt: skip
    prior_pred = judge.predict(prior_img)
    cq: dict[str, Any] = {
        "lambda": choice["lambda"],
        "method": methods,
        "field_scale": scales,
        "per_label": [],
        "candidates": choice["table"],
        "cqa_rule": CQA_RULE,
        "fields_converged": learned["converged"],
        "fields_iterations": learned["iterations"],
        "fields_tol_se": learned["tol_se"],
    }
    # the label's own posterior codes, decoded and judged: c-QA's reference per label
    own = posterior_accuracy(model, judge, real_test, y_test, seed=seed + 41)
    images = []
    for c in range(k):
        field = (
            scales[c] * fields[c] if methods[c] == "fields" else choice["lambda"][c] * np.asarray(lam["directions"][c])
        )
        imgs = decode(model, prior_spins(model, cqa_num, extra_field=field, num_sweeps=num_sweeps,
                                         seed=seed + 100 + c))  # fmt: skip
        images.append(imgs)
        acc = float(np.mean(judge.predict(imgs) == c))
        ref = prior_img[prior_pred == c]
        div_ref = mean_pairwise_distance(ref) if len(ref) >= 2 else float("nan")
        real_c = real_test[y_test == c]
        div_real = mean_pairwise_distance(real_c) if len(real_c) >= 2 else float("nan")
        cq["per_label"].append(
            {
                "label": c,
                "method": methods[c],
                "lambda": choice["lambda"][c],
                "field_scale": scales[c],
                "accuracy": acc,
                "relative_accuracy": ratio(acc, judge.per_class_accuracy[c]),
                "diversity": mean_pairwise_distance(imgs),
                "distinct_fraction": distinct_fraction(imgs),
                "relative_diversity": ratio(mean_pairwise_distance(imgs), div_ref),
                "relative_diversity_real": ratio(mean_pairwise_distance(imgs), div_real),
                "prior_samples_of_label": int(len(ref)),
                "posterior_accuracy": float(own[c]),
                "relative_posterior_accuracy": ratio(own[c], judge.per_class_accuracy[c]),
                "failed": wilson_lower(acc, cqa_num) <= 1.0 / judge.num_classes + 0.1,
            }
        )
    per = cq["per_label"]
    cq["accuracy"] = float(np.mean([r["accuracy"] for r in per]))
    cq["relative_accuracy"] = float(np.nanmean([r["relative_accuracy"] for r in per]))
    cq["min_relative_accuracy"] = float(np.nanmin([r["relative_accuracy"] for r in per]))
    cq["relative_diversity"] = float(np.nanmean([r["relative_diversity"] for r in per]))
    cq["min_relative_diversity"] = float(np.nanmin([r["relative_diversity"] for r in per]))
    cq["min_distinct_fraction"] = float(min(r["distinct_fraction"] for r in per))
    cq["accuracy_lower95"] = wilson_lower(cq["accuracy"], cqa_num * judge.num_classes)
    cq["failed"] = cq["accuracy_lower95"] <= 1.0 / judge.num_classes + 0.1
    cq["failed_labels"] = [r["label"] for r in per if r["failed"]]
    cq["targets"] = cqa_targets(per)
    cq["lambda_table"] = lam["table"]
    cq["lambda_rule"] = LAMBDA_RULE
    out["cqa"] = cq
    out["_images"] = {"prior": prior_img, "qa": qa_img, "cqa": images}
    out["_directions"] = lam["directions"]
    out["_fields"] = fields
    return out


TARGET_ACCURACY, TARGET_DIVERSITY_PRIOR, TARGET_DIVERSITY_REAL = 0.9, 0.5, 0.2


def cqa_targets(per_label: list[dict[str, Any]]) -> dict[str, Any]:
    """The c-QA targets per label: judge accuracy >= 0.9x the judge's on real images of the
    label, within-class diversity >= 0.5x the prior's own samples of the label and >= 0.2x
    real images of the label, no duplicate images. ``met`` only when every label meets all."""
    missed = []
    for r in per_label:
        checks = (
            r["relative_accuracy"] >= TARGET_ACCURACY,
            r["relative_diversity"] >= TARGET_DIVERSITY_PRIOR,
            r["relative_diversity_real"] >= TARGET_DIVERSITY_REAL,
            r["distinct_fraction"] == 1.0,
        )
        if not all(checks):  # a nan ratio (no reference) fails its check
            missed.append(r["label"])
    # labels missing the accuracy target whose own posterior codes, decoded, miss it too
    limited = [
        r["label"]
        for r in per_label
        if not r["relative_accuracy"] >= TARGET_ACCURACY
        and r.get("relative_posterior_accuracy", float("nan")) < TARGET_ACCURACY
    ]
    return {
        "what": f"accuracy >= {TARGET_ACCURACY}x real, diversity >= {TARGET_DIVERSITY_PRIOR}x the prior's and >= "
        f"{TARGET_DIVERSITY_REAL}x real images' of the label, no duplicates",
        "met": not missed,
        "missed": missed,
        "autoencoder_limited": limited,
    }


def real_floor(judge: Judge, data: Any, seed: int = 0) -> float:
    """FID of real training images against the real test images (equal counts)."""
    from qbm.metrics import fid_from_features

    x_tr = data.x_train
    n = min(len(x_tr), len(data.x_test))
    idx = np.random.default_rng(seed).choice(len(x_tr), n, replace=False)
    return fid_from_features(judge.features(x_tr[idx]), judge.features(data.x_test[:n]))


def evaluate_gaussian(
    model: Any, data: Any, judge: Judge, *, seed: int = 0, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """The Gaussian VAE at tau = 1 and at the coldest tau = beta^(-1/2) chosen by the QA
    rule (the fair match for QA)."""
    say = progress or (lambda line: None)
    x_tr = data.rows("train")
    _, val = validation_split(len(x_tr), seed=seed)
    real_test = data.rows("test")

    def sample(beta: float, num: int, s: int) -> np.ndarray:
        return gaussian_images(model, num, tau=beta**-0.5, seed=s)

    beta, table = choose_beta(sample, judge, x_tr[val], seed=seed + 1, progress=say)
    say(f"judging tau = 1 and tau = {beta**-0.5:.3g} on {len(real_test)} test images")
    return {
        "judge": judge.summary(),
        "fid_floor": real_floor(judge, data, seed),
        "prior": {"tau": 1.0, **judge.judge(sample(1.0, len(real_test), seed + 11), real_test)},
        "qa": {"tau": beta**-0.5, "beta": beta, **judge.judge(sample(beta, len(real_test), seed + 12), real_test)},
        "qa_table": table,
        "qa_rule": QA_RULE.replace("final beta", "beta = tau^-2"),
    }


def summary_lines(gen: dict[str, Any]) -> list[str]:
    """Printable lines; accuracy never alone."""
    lines = [f"judge: accuracy {gen['judge']['accuracy']:.3f} on real test images; FID floor (real vs real) "
             f"{gen['fid_floor']:.2f}"]  # fmt: skip
    for mode in ("prior", "qa"):
        m = gen[mode]
        t = f"tau {m['tau']:.2f}" if "tau" in m else f"beta {m['beta']:g}"
        lines.append(
            f"{mode:>5} ({t}): FID {m['fid']:.2f}, coverage {m['coverage']:.2f} (smallest class "
            f"{m['min_class_fraction']:.0%}), precision {m['precision']:.2f}, recall {m['recall']:.2f}"
        )
    if gen.get("qa_table"):
        key = "beta"
        lines.append(
            "  QA choice on validation data ("
            + key
            + ": FID / coverage / recall): "
            + ", ".join(
                f"{r[key]:g}: {r['fid']:.1f} / {r['coverage']:.2f} / {r['recall']:.2f}"
                + ("*" if r.get("chosen") else "")
                for r in gen["qa_table"]
            )
        )
    if "cqa" in gen:
        c = gen["cqa"]
        how = ", ".join(
            f"{r['label']}: "
            + (f"fields x{r['field_scale']:g}" if r["method"] == "fields" else f"dir x{r['lambda']:g}")
            for r in c["per_label"]
        )
        lines.append(
            f"  cqa ({how}): accuracy {c['accuracy']:.2f} = {c['relative_accuracy']:.2f}x the "
            f"judge's on real images (worst label {c['min_relative_accuracy']:.2f}x), within-class diversity "
            f"{c['relative_diversity']:.2f}x the prior's own samples of the label "
            f"(worst {c['min_relative_diversity']:.2f}x), distinct images per label at least "
            f"{c.get('min_distinct_fraction', float('nan')):.0%}"
            + ("; CONDITIONING FAILED (accuracy near chance)" if c["failed"] else "")
            + (
                f"; conditioning failed for label(s) {c['failed_labels']} (accuracy near chance)"
                if c["failed_labels"] and not c["failed"]
                else ""
            )
        )
        if "targets" in c:
            t = c["targets"]
            lines.append(
                f"    c-QA targets ({t['what']}): "
                + ("met on every label" if t["met"] else f"NOT met on label(s) {t['missed']}")
            )
        if any("relative_posterior_accuracy" in r for r in c["per_label"]):
            lines.append(
                "    the labels' own posterior codes, decoded: "
                + ", ".join(f"{r['label']}: {r['relative_posterior_accuracy']:.2f}x" for r in c["per_label"])
                + " the judge's accuracy on real images"
                + (
                    f"; label(s) {c['targets']['autoencoder_limited']} miss the accuracy target with their own codes "
                    "too (the autoencoder, not the prior, limits them)"
                    if c.get("targets", {}).get("autoencoder_limited")
                    else ""
                )
            )
    return lines


# ------------------------------------------------------------------ judging a command's samples
def judge_generated(
    ck: dict[str, Any],
    model: Any,
    imgs: np.ndarray,
    mode: str,
    label: int | None,
    *,
    data_dir: str | None = None,
    sweeps: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Numbers that would catch collapse, by the data set's judge (digits, or a data set
    found at ``data_dir``): class coverage and diversity; FID / precision / recall against
    as many real test images (prior, QA); accuracy and diversity relative to the judge on
    real images and to the prior's own samples of the label (c-QA). Empty when the data
    set cannot be loaded."""
    from qbm.models.vae import BMVAE

    ds = ck.get("trainer", {}).get("dataset")
    metrics: dict[str, Any] = {}
    if not (ds == "digits" or data_dir):
        return metrics
    from qbm.data import load_dataset

    data = load_dataset(ds, data_dir)
    judge = Judge(data)
    pred = judge.predict(imgs)
    metrics.update(class_coverage(pred, judge.num_classes))
    metrics["diversity"] = mean_pairwise_distance(imgs)
    metrics["distinct_fraction"] = distinct_fraction(imgs)
    if mode == "cqa" and label is not None:
        acc = float(np.mean(pred == label))
        metrics.update(accuracy=acc, relative_accuracy=ratio(acc, judge.per_class_accuracy[label]))
        if isinstance(model, BMVAE):
            ref = decode(model, prior_spins(model, 400, num_sweeps=sweeps, seed=seed + 1))
            ref = ref[judge.predict(ref) == label]
            if len(ref) >= 2:
                metrics["relative_diversity"] = ratio(metrics["diversity"], mean_pairwise_distance(ref))
    elif len(imgs) > 3:
        metrics.update(judge.judge(imgs, data.rows("test", slice(0, len(imgs)))))
    return metrics


def describe_metrics(m: dict[str, Any], mode: str, label: int | None) -> str:
    """'; ...' with the judged numbers (accuracy never alone), or '' without any."""
    if not m:
        return ""
    if mode == "cqa" and "accuracy" in m:
        return (
            f"; judge assigns {m['accuracy']:.0%} to label {label} ({m['relative_accuracy']:.2f}x its accuracy "
            f"on real images), diversity {m.get('relative_diversity', float('nan')):.2f}x the prior's own samples "
            f"of the label, {m['distinct_fraction']:.0%} distinct images"
        )
    return (
        f"; class coverage {m['coverage']:.2f} (smallest class {m['min_class_fraction']:.0%}), "
        f"{m['distinct_fraction']:.0%} distinct images"
    ) + (
        f", FID {m['fid']:.2f} ({m['count']} vs as many real test images), precision {m['precision']:.2f}, "
        f"recall {m['recall']:.2f}"
        if "fid" in m
        else ""
    )


def cqa_field(
    ck: dict[str, Any], label: int, lam: float | None = None, path: str = "model"
) -> tuple[np.ndarray, str, float | None]:
    """The c-QA field of ``label`` a checkpoint's generation choice holds: the learned bias
    fields where validation chose them for the label (unless ``lam`` is given, which asks
    for the logistic direction at that lambda), else lambda x the logistic direction, lambda
    as chosen at training (else :data:`qbm.registry.DEFAULT_LAMBDA`). Returns (field, a
    description, the lambda used or None for learned fields)."""
    from qbm.registry import DEFAULT_LAMBDA

    choice = ck.get("generation") or {}
    dirs = cqa_directions(ck, path)
    if not 0 <= label < len(dirs):
        raise ValueError(f"--label: --mode cqa needs --label in [0, {len(dirs) - 1}]")
    methods, fields = choice.get("cqa_method"), choice.get("fields")
    if lam is None and methods and fields is not None and methods[label] == "fields":
        # checkpoints written before the field scale was chosen used the fields as learned
        sc = (choice.get("field_scale") or [1.0] * len(methods))[label]
        return sc * np.asarray(fields[label], dtype=np.float64), f"learned bias fields x {sc:g}", None
    if lam is None:
        lam = choice.get("lambda", DEFAULT_LAMBDA)
        if isinstance(lam, list):  # chosen per label at training
            lam = lam[label]
    lam = float(lam)
    return lam * dirs[label], f"lambda {lam:g} x the logistic direction", lam


def cqa_directions(ck: dict[str, Any], path: str = "model") -> np.ndarray:
    """The c-QA bias directions stored in a checkpoint (one row per label); a ValueError
    when it holds none (a Gaussian VAE, or a run stopped before generation was chosen)."""
    choice = ck.get("generation") or {}
    d = choice.get("directions")
    if d is None:
        d = ck.get("directions")
    if d is None or len(d) == 0:
        raise ValueError(
            f"model: {path!r} holds no c-QA directions (written before training finished choosing the generation "
            "modes); finish the run with qbm train vae --resume, or use --mode prior or qa"
        )
    return np.asarray(d)
