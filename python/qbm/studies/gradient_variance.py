"""Variance of QCBM losses and of a fixed partial derivative at random initialisation
against the number of qubits (Rudolph et al. 2024, the variance-scaling figure):
``qbm study gradient-variance``.

What is measured, per (ansatz, depth, n): ``draws`` parameter vectors theta uniform on
[0, 2 pi)^P (the QCBM's own initialisation); for each, the loss and the partial derivative
with respect to one fixed parameter, k = the RY angle of qubit n // 2 in the first
rotation layer (3 (n // 2) + 1), for

* ``kl``: KL(p || q) with exact probabilities (no clipping);
* ``kl@S`` for S in 100, 1000, 10000 shots: the training estimator (frequencies f of S
  shots of each circuit, KL(p || max(f, 1e-6)), gradient -1/2 sum_x p(x) (f_k^+ - f_k^-)(x)
  / max(f(x), 1e-6));
* ``mmd:1``, ``mmd:n/4``, ``mmd:mix``: exact MMD^2 with the Gaussian Hamming kernel at
  sigma = 1, sigma = n / 4 and the paper's mixture (0.01, 0.1, 0.25, 0.5, 1, 10) x n;
* ``fidelity``: the local quantum fidelity 1 - <phi|U H_L U^dag|phi>, |phi> the target's
  amplitudes sqrt(p(x)).

Gradients are the parameter-shift rule on the two shifted circuits only (theta_k +- pi/2):
exact for a rotation angle (equal to the adjoint gradient to rounding; tested), with
shots drawn from the shifted circuits' probabilities in the shot cases. Every loss of one
draw uses the same three circuits (and three of U^dag for the fidelity). MMD losses and
gradients for every bandwidth come from one Walsh-Hadamard transform of q - p and of
q_k^+ - q_k^- (the kernel is diagonal there: eigenvalue (1 + e)^(n - |A|) (1 - e)^|A| per
subset A, e = exp(-1 / (2 sigma))); the fidelity is E_{x ~ |U^dag phi|^2} |x| / n.

Target family (defined for every n): GHZ, half the mass on 0...0 and half on 1...1. It is
sparse like the showers (two patterns) and its closed-form C is known for any n.

Exactly-zero shot gradients (no shot of either shifted circuit on the target's support)
are values of the estimator and count as zeros in its variance; the fraction of exactly
zero gradients is reported beside it. A point whose draws are all zero has variance 0: it
is drawn as a bound at the fit's floor, listed, and left out of the fit.

Rule (fixed before the runs; the report prints the commit of this file):

* a series is the variance (of the loss or of the derivative) of one loss for one
  (ansatz, depth) over n; it is fitted with :func:`qbm.studies.capacity.fit_scaling`
  (ln var against n, exponential, and against ln n, power law; AICc, Akaike weights);
* the series *decays exponentially* when the exponential fit's Akaike weight is >= 0.9,
  its slope's 95% interval lies below 0, and >= 80% of 200 bootstrap replicates (draws
  resampled within every point) give the exponential weight >= 0.9; it *decays
  polynomially* by the same test with the roles exchanged (and the power's interval
  below 0); it is *flat* when the exponential slope's interval lies inside
  [-0.05, 0.05] per qubit (the data bound any change to a factor e^(+-1) over 20 qubits);
  else undecided (a noisy series whose intervals merely include 0 is not flat). Fewer than
  5 fitted points: undecided. (The flat test was tightened once, after a smoke run at
  n = 4..8 with 40 draws and before the study's analysis: "both intervals include 0"
  called noise flat.)
* Claim 1 (explicit KL at finite shots concentrates exponentially): supported when, for
  the line ansatz at L = 1 and 2 and every shot count, the loss variance and the
  fraction of nonzero gradients both decay exponentially; refuted when any of these
  series decays polynomially or is flat; else undecided.
* Claim 1, rule v2 (written on 2026-12-03 after rule v1's analysis of stream 0 came out
  undecided, and before any draw of stream 1; v1 stays as it was and is reported beside).
  Why: science.md states the claim as concentration at a parameter-independent value
  (log(1/eps) for a point-mass target), and the variance of the clipped loss is not
  monotone in n (it rises while shots still hit the target's support, then falls), so no
  single law fits it. Concentration is measured directly: P(loss != L_conc), the
  probability that the shot loss differs from its concentrated value
  L_conc = sum_x p(x) log(p(x) / eps) (no shot of the circuit on the target's support),
  beside P(gradient != 0) as in v1. Supported when, on draws of stream >= 1 only (seeds
  disjoint from the data v2 was written after), for the line ansatz at L = 1 and 2 and
  every shot count, both series decay exponentially under the series rule above; refuted
  when any of them decays polynomially or is flat; else undecided. Stream >= 1 runs the KL
  losses only (``losses="kl"``): the counts on the target's support are drawn from their
  exact joint law (multinomial over the support's patterns and the rest), which is the law
  of the full-state sampler's counts there.
* Claim 2 (MMD at sigma in O(1) exponential, at sigma in Theta(n) polynomial): supported
  when, for the line ansatz at L = 1 and 2, the derivative variance at sigma = 1 decays
  exponentially and at sigma = n / 4 polynomially or flat; refuted when sigma = 1 is
  polynomial or flat, or sigma = n / 4 exponential, for either depth; else undecided.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from qbm.studies.mmd_variance import popcounts, wht

SHOTS = (100, 1000, 10000)
EPS = 1e-6
MIN_POINTS = 5
FLAT_RATE = 0.05
#: (E m^2, E m^4) of m = <Z> = cos(b) for the product ansatz's RY angle b uniform on [0, 2 pi)
PRODUCT_MOMENTS = (0.5, 0.375)


def loss_keys(shots: tuple[int, ...] = SHOTS) -> tuple[str, ...]:
    """The measured losses, in the order the outputs list them."""
    return ("kl", *(f"kl@{s}" for s in shots), "mmd:1", "mmd:n/4", "mmd:mix", "fidelity")


LOSS_KEYS = loss_keys()


def fixed_parameter(n: int) -> int:
    """Index of the differentiated parameter: RY of qubit n // 2 in the first layer."""
    return 3 * (n // 2) + 1


def kernel_eigen(n: int, sigma: float) -> np.ndarray:
    """Eigenvalue of the Gaussian Hamming kernel on the Walsh function of weight w, w = 0..n."""
    e = math.exp(-1.0 / (2.0 * sigma))
    w = np.arange(n + 1)
    return (1 + e) ** (n - w) * (1 - e) ** w


def mmd_terms(
    d: np.ndarray, dq: np.ndarray, n: int, weights: np.ndarray, *, inplace: bool = False
) -> dict[str, tuple[float, float]]:
    """(MMD^2, derivative) for every bandwidth key, from d = q - p and dq = q_k^+ - q_k^-:
    MMD^2 = sum_A hat d_A^2 lambda_A / 2^n, derivative = sum_A hat d_A hat dq_A lambda_A / 2^n.
    With ``inplace`` d and dq are overwritten by their transforms (bounded memory at n = 24)."""
    hd, hq = wht(d, inplace=inplace), wht(dq, inplace=inplace)
    hq *= hd
    by_w_grad = np.bincount(weights, weights=hq, minlength=n + 1) / d.size
    hd *= hd
    by_w_loss = np.bincount(weights, weights=hd, minlength=n + 1) / d.size
    from qbm.mmd import mmd_sigmas_mixture

    out = {}
    for key, sigmas in (("mmd:1", [1.0]), ("mmd:n/4", [n / 4]), ("mmd:mix", mmd_sigmas_mixture(n))):
        lam = np.mean([kernel_eigen(n, s) for s in sigmas], axis=0)
        out[key] = (float(by_w_loss @ lam), float(by_w_grad @ lam))
    return out


def _build_qcbm(n: int, ansatz: str, layers: int) -> Any:
    from qbm.models import QCBM

    return QCBM(n, ansatz=ansatz, layers=layers, seed=0)


def _states(comp: Any, params: np.ndarray, init: np.ndarray | None) -> np.ndarray:
    """Engine planes (1, 2, 2^n) of the compiled circuit at ``params``."""
    import torch

    a = np.ascontiguousarray(comp.angles(torch.as_tensor(params[None])).numpy())
    return comp.program.states(a, init)


def _probs_rows(comp: Any, params: np.ndarray, init: np.ndarray | None, *, lazy: bool = False) -> Any:
    """|psi|^2 of the circuit at every row of params, one row at a time (bounded memory);
    ``lazy`` yields them one by one."""

    def one(row: np.ndarray) -> np.ndarray:
        psi = _states(comp, row, init)[0]
        q = psi[0] * psi[0]
        q += psi[1] * psi[1]
        return q

    gen = (one(row) for row in params)
    return gen if lazy else list(gen)


LOSS_SETS = ("all", "kl")


def exact_kl(ps: np.ndarray, q0: np.ndarray, qp: np.ndarray, qm: np.ndarray) -> tuple[float, float]:
    """Exact KL (no clipping) and its derivative -sum p (q+ - q-) / (2 q), from the
    probabilities of the circuit and its two shifted circuits on the target's support."""
    return float((ps * np.log(ps / q0)).sum()), float(-(ps * (qp - qm) / (2 * q0)).sum())


def shot_kl(ps: np.ndarray, c: np.ndarray) -> tuple[float, float]:
    """The training estimator from the frequencies ``c`` (3, support) of the circuit and
    its two shifted circuits on the target's support: KL(p || max(f, eps)) and
    -1/2 sum p (f+ - f-) / max(f, eps)."""
    w = ps / np.maximum(c[0], EPS)
    return float((ps * np.log(ps / np.maximum(c[0], EPS))).sum()), float(-0.5 * (w * (c[1] - c[2])).sum())


def ghz_target(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The target family, kept sparse: its support (0...0 and 1...1) and p = 1/2 there."""
    return np.array([0, 2**n - 1]), np.array([0.5, 0.5])


def kl_concentrated(ps: np.ndarray) -> float:
    """The shot-KL loss when no shot lands on the target's support: sum p log(p / eps),
    computed by the estimator itself (so equality with it is exact)."""
    return shot_kl(ps, np.zeros((3, len(ps))))[0]


def draw_values(
    n: int,
    ansatz: str,
    layers: int,
    draws: int,
    seed: int,
    *,
    shots: tuple[int, ...] = SHOTS,
    losses: str = "all",
    stream: int = 0,
    progress: bool = False,
) -> dict[str, dict[str, np.ndarray]]:
    """Per loss key: arrays ``loss`` and ``grad`` (draws,) at random initialisations,
    draw i from the stream (seed, i) (stream 0) or (seed, i, stream). ``losses="kl"``
    computes the KL keys only, from the amplitudes on the target's support."""
    from qbm.quantum import engine

    if n < 2:
        raise ValueError(f"n: needs at least 2 qubits, got {n}")
    if losses not in LOSS_SETS:
        raise ValueError(f"losses: one of {LOSS_SETS}, got {losses!r}")
    if stream < 0:
        raise ValueError(f"stream: must be >= 0, got {stream}")
    if losses == "kl":
        return _draw_kl(n, ansatz, layers, draws, seed, shots=shots, stream=stream, progress=progress)
    model = _build_qcbm(n, ansatz, layers)
    P, k = model.circuit.num_params, fixed_parameter(n)
    support, ps = ghz_target(n)
    comp = model.circuit.compile()
    # U^dag runs the circuit backwards, so theta_k's gate is near its end: the part of U^dag before
    # that gate (the inverse of everything after it in U) runs once per draw, and only the short
    # rest (theta_k's gate and the gates before it in U, inverted) once per shifted angle
    from qbm.quantum import Circuit

    gates = model.circuit.gates
    gk = next(i for i, g in enumerate(gates) if g.param == k)
    inv_tail = Circuit(n, list(gates[gk + 1 :]), P).compile(inverse=True)
    inv_head = Circuit(n, list(gates[: gk + 1]), P).compile(inverse=True)
    phi = np.zeros(2**n)
    phi[support] = np.sqrt(ps)
    init = engine.planes(phi, n)
    del phi
    weights = popcounts(n)
    hw = weights / float(n)
    res = {key: {"loss": np.empty(draws), "grad": np.empty(draws)} for key in loss_keys(shots)}
    from tqdm import tqdm

    for i in tqdm(range(draws), desc=f"n={n} {ansatz} L={layers}", disable=not progress):
        rng = np.random.default_rng([seed, i])
        theta = rng.uniform(0.0, 2 * math.pi, P)
        rows = np.stack([theta, theta, theta])
        rows[1, k] += math.pi / 2
        rows[2, k] -= math.pi / 2
        q0, qp, qm = _probs_rows(comp, rows, None)
        # exact KL (no clipping): d/dtheta_k = -sum p(x) (q+ - q-)(x) / (2 q(x))
        res["kl"]["loss"][i], res["kl"]["grad"][i] = exact_kl(ps, q0[support], qp[support], qm[support])
        shot_seed = int(rng.integers(0, 2**62))
        for j, s in enumerate(shots):
            # row r of the (q0, q+, q-) triple from the stream (shot_seed, 3 j + r); only the support is read
            c = (
                np.stack(
                    [
                        engine.sample_counts(q[None], s, shot_seed, 3 * j + r)[0, support]
                        for r, q in enumerate((q0, qp, qm))
                    ]
                ).astype(np.float64)
                / s
            )
            res[f"kl@{s}"]["loss"][i], res[f"kl@{s}"]["grad"][i] = shot_kl(ps, c)
        qp -= qm  # q+ - q-
        del qm
        q0[support] -= ps  # q - p
        for key, (lv, gv) in mmd_terms(q0, qp, n, weights, inplace=True).items():
            res[key]["loss"][i], res[key]["grad"][i] = lv, gv  # d(d^T K d) = 2 d^T K (q+ - q-) / 2
        del q0, qp
        mid = _states(inv_tail, theta, init)
        fids = _probs_rows(inv_head, rows, mid, lazy=True)
        res["fidelity"]["loss"][i] = float(next(fids) @ hw)
        fp = next(fids)
        fp -= next(fids)
        res["fidelity"]["grad"][i] = float(0.5 * (fp @ hw))
        del fp, fids, mid
    return res


def _draw_kl(
    n: int, ansatz: str, layers: int, draws: int, seed: int, *, shots: tuple[int, ...], stream: int, progress: bool
) -> dict[str, dict[str, np.ndarray]]:
    """The KL keys of :func:`draw_values` from the three circuits' amplitudes on the GHZ
    support; shot counts there from their exact multinomial law (rule v2 of claim 1)."""
    model = _build_qcbm(n, ansatz, layers)
    P, k = model.circuit.num_params, fixed_parameter(n)
    support, ps = ghz_target(n)
    comp = model.circuit.compile()
    res = {key: {"loss": np.empty(draws), "grad": np.empty(draws)} for key in ("kl", *(f"kl@{s}" for s in shots))}
    from tqdm import tqdm

    for i in tqdm(range(draws), desc=f"n={n} {ansatz} L={layers} (KL)", disable=not progress):
        rng = np.random.default_rng([seed, i] if stream == 0 else [seed, i, stream])
        theta = rng.uniform(0.0, 2 * math.pi, P)
        q = np.empty((3, support.size))
        for r, shift in enumerate((0.0, math.pi / 2, -math.pi / 2)):
            row = theta.copy()
            row[k] += shift
            psi = _states(comp, row, None)[0][:, support]
            q[r] = psi[0] * psi[0] + psi[1] * psi[1]
            del psi
        res["kl"]["loss"][i], res["kl"]["grad"][i] = exact_kl(ps, q[0], q[1], q[2])
        shot_rng = np.random.default_rng(int(rng.integers(0, 2**62)))
        rest = np.clip(1.0 - q.sum(axis=1, keepdims=True), 0.0, None)
        pv = np.concatenate([q, rest], axis=1)
        pv /= pv.sum(axis=1, keepdims=True)
        for s in shots:
            c = np.stack([shot_rng.multinomial(s, pv[r])[: support.size] for r in range(3)]).astype(np.float64) / s
            res[f"kl@{s}"]["loss"][i], res[f"kl@{s}"]["grad"][i] = shot_kl(ps, c)
    return res


def variance_run(config: dict[str, Any], seed: int) -> dict[str, Any]:
    """One chunk of draws at one (ansatz, layers, n) (a run of the study runner); the
    optional config keys ``losses`` and ``stream`` select rule v2's KL-only fresh draws."""
    vals = draw_values(
        int(config["n"]),
        config["ansatz"],
        int(config["layers"]),
        int(config["draws"]),
        seed,
        losses=config.get("losses", "all"),
        stream=int(config.get("stream", 0)),
    )
    return {key: {"loss": v["loss"].tolist(), "grad": v["grad"].tolist()} for key, v in vals.items()}


# ------------------------------------------------------------------ statistics
def variance_interval(x: np.ndarray, boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """Sample variance with a 95% percentile bootstrap interval over the draws, and the
    fraction of values that are exactly zero."""
    x = np.asarray(x, dtype=np.float64)
    v = float(np.var(x, ddof=1)) if len(x) > 1 else float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), (boot, len(x)))
    bv = np.var(x[idx], axis=1, ddof=1)
    return {
        "var": v,
        "var_lo": float(np.percentile(bv, 2.5)),
        "var_hi": float(np.percentile(bv, 97.5)),
        "zero_fraction": float(np.mean(x == 0.0)),
        "draws": int(len(x)),
    }


def classify_series(
    ns: list[int], samples: list[np.ndarray], *, stat: str = "var", boot: int = 200, seed: int = 0
) -> dict[str, Any]:
    """Apply the rule (module docstring) to one series: ``samples[i]`` are the draws at
    ``ns[i]``; ``stat`` is "var" (variance of the draws) or "nonzero" (fraction of
    nonzero draws). Returns the fit, the bootstrap shares and the class."""
    from qbm.studies.capacity import fit_scaling

    def stat_of(x: np.ndarray) -> float:
        return float(np.var(x, ddof=1)) if stat == "var" else float(np.mean(x != 0.0))

    vals = np.array([stat_of(s) for s in samples])
    keep = vals > 0
    x = np.asarray(ns, dtype=float)[keep]
    out: dict[str, Any] = {
        "n": list(map(int, ns)),
        "value": vals.tolist(),
        "censored_n": [int(v) for v, k in zip(ns, keep) if not k],
    }
    if keep.sum() < MIN_POINTS:
        out.update({"class": "undecided", "why": f"{int(keep.sum())} points with a nonzero value (need {MIN_POINTS})"})
        return out
    fit = fit_scaling(x, vals[keep])
    rng = np.random.default_rng(seed)
    exp_w, pow_w = [], []
    for _ in range(boot):
        bv = np.array([stat_of(s[rng.integers(0, len(s), len(s))]) for s in samples])[keep]
        if np.all(bv > 0):
            f = fit_scaling(x, bv)
            exp_w.append(f["exponential"].get("akaike_weight", math.nan))
            pow_w.append(f["polynomial"].get("akaike_weight", math.nan))
    share_exp = float(np.mean(np.asarray(exp_w) >= 0.9)) if exp_w else 0.0
    share_pow = float(np.mean(np.asarray(pow_w) >= 0.9)) if pow_w else 0.0
    e, pw = fit["exponential"], fit["polynomial"]
    e_w, p_w = e.get("akaike_weight", math.nan), pw.get("akaike_weight", math.nan)
    e_ci, p_ci = e.get("b_ci", [math.nan, math.nan]), pw.get("b_ci", [math.nan, math.nan])
    if e_w >= 0.9 and e_ci[1] < 0 and share_exp >= 0.8:
        cls = "exponential"
    elif p_w >= 0.9 and p_ci[1] < 0 and share_pow >= 0.8:
        cls = "polynomial"
    elif -FLAT_RATE <= e_ci[0] and e_ci[1] <= FLAT_RATE:
        cls = "flat"
    else:
        cls = "undecided"
    out.update(
        {
            "fit": fit,
            "bootstrap_exp_share": share_exp,
            "bootstrap_pow_share": share_pow,
            "class": cls,
            "exp_rate_per_qubit": e["b"],
            "power": pw["b"],
        }
    )
    return out


def claim_verdicts(series: dict[tuple[str, int, str, str], dict[str, Any]]) -> dict[str, str]:
    """Claims 1 and 2 from classified series keyed (ansatz, layers, loss, what) with
    what in "loss_var", "loss_deviates", "grad_var", "nonzero"."""
    out = {}
    for key, what, claim in (
        ("claim1", "loss_var", "loss variance"),
        ("claim1_v2", "loss_deviates", "P(loss != L_conc)"),
    ):
        need = [("line", L, f"kl@{s}", w) for L in (1, 2) for s in SHOTS for w in (what, "nonzero")]
        got = [series.get(k, {}).get("class", "missing") for k in need]
        detail = [f"{k[2]} L={k[1]} {k[3]}: {c}" for k, c in zip(need, got)]
        if all(c == "exponential" for c in got):
            out[key] = f"supported: {claim} and P(nonzero gradient) of KL at 1e2-1e4 shots decay exponentially"
        elif any(c in ("polynomial", "flat") for c in got):
            out[key] = "refuted: " + "; ".join(d for d, c in zip(detail, got) if c in ("polynomial", "flat"))
        else:
            out[key] = "undecided: " + "; ".join(detail)
    s1 = [series.get(("line", L, "mmd:1", "grad_var"), {}).get("class", "missing") for L in (1, 2)]
    sn = [series.get(("line", L, "mmd:n/4", "grad_var"), {}).get("class", "missing") for L in (1, 2)]
    detail = f"sigma=1: {s1}, sigma=n/4: {sn} (line, L = 1, 2)"
    if all(c == "exponential" for c in s1) and all(c in ("polynomial", "flat") for c in sn):
        out["claim2"] = "supported: " + detail
    elif any(c in ("polynomial", "flat") for c in s1) or any(c == "exponential" for c in sn):
        out["claim2"] = "refuted: " + detail
    else:
        out["claim2"] = "undecided: " + detail
    return out
