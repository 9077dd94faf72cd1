"""`qbm study capacity`: the smallest discriminator that trains a latent GAN optimally, as a
function of the generator's capacity (Liepelt & Baglio 2026), on the study runner.

The calibrated rule (this version; its constants come from ``qbm study capacity-calibrate``
and live in a committed ``rule.json``, never in this file, and the study refuses to start
from a rule file that is not committed):

0. Measurement. Every run trains the paper's budget (the rule's epochs x iterations) and
   measures the *large FID*: :data:`TAIL_FID_SAMPLES` generated latents (decoded) against as
   many test images (all of a smaller test set), for the raw generator weights and for their
   exponential moving average (half-life 5% of the generator steps, bias-corrected). The
   calibration measures both over the last half of the epochs; the rule's ``weights`` says
   which of the two it judges, and a study run measures only those, over the last
   ``tail_evaluations`` epochs (:func:`study_tail_fraction`: the same numbers bit for bit).
1. A run is *optimal* when, over its last ``tail_evaluations`` large FIDs, the mean is at
   most ``low_factor`` x the autoencoder's reconstruction FID at the same latent size and
   sample size (the best any latent generator can reach there), the absolute spread
   (standard deviation) is at most ``spread_bound``, and the losses do not diverge (as in
   the first rule below).
2. A (generator, width) point is optimal when most of its seeds are.
3. Adaptive widths: per generator, a coarse grid (``search.coarse``, ``search.coarse_seeds``)
   brackets the threshold (the smallest tested width from which every larger tested width
   is optimal); the two bracketing widths get ``search.full_seeds``; then bisection on the
   ladder of widths (every integer below 8, then round(8 * 2^(k/4))) between them, each
   bisected width with ``search.full_seeds``, until the bracket holds no untested ladder
   width. The threshold is the upper end of the final bracket; a generator whose widest
   coarse width is not optimal is *censored*. Its interval: the same threshold computed on
   seeds resampled with replacement within every tested width (:data:`BOOTSTRAP`
   replicates), 2.5-97.5 percentiles of the discriminator's parameter count.
4.-5. Fits and verdict exactly as in the first rule's 4-5 below (exponential vs power law by
   AICc Akaike weights on uncensored generators, bootstrap over seeds, slope interval),
   for the quantum generators and, separately, for the classical ones.

Calibration (``capacity-calibrate``, seeds disjoint from the study's): one generator and one
wide discriminator, over 10 seeds and Adam beta2 in {0.9, 0.999}. From its runs, in this
order: beta2 = the one with the lower median (over seeds) tail-mean EMA FID; weights = EMA
unless the raw weights' median tail spread is smaller; tail_evaluations = the longest of
:data:`TAIL_CANDIDATES` over which the median |mean of the first half - mean of the second
half| is at most 2 x the FID's sampling noise (the standard deviation over fresh generated
sets of one fixed generator; the shortest when none is); spread_bound = the 95th percentile
of the calibration seeds' tail standard deviations; low_factor = the 95th percentile of
their tail mean / reconstruction FID.

The constants, per data set (``qbm/studies/rules/capacity-<dataset>.json``, packaged; each
committed before its study ran):

- digits (commit d5eff01; calibration quantum 6x2 vs width 128, seeds 100-109, 30 epochs x 50
  generator steps): beta2 0.9, EMA weights, the last 3 large FIDs (5000 generated latents
  against all 359 test images), sd <= 0.889, mean <= 4.02 x the reconstruction FID.
- MNIST (commit 196b098; same design, `--data-dir` with the original IDX files): beta2 0.9, EMA
  weights, the last 10 large FIDs (5000 generated latents against 5000 test images), sd <= 16.8,
  mean <= 5.55 x the reconstruction FID.

The first rule (fixed before the paper-budget study on digits; still computed on every
study's cheap FID traces and reported beside, never instead of the calibrated rule):

1. A run is *optimal* when, over the last :data:`TAIL_FRACTION` of its FID evaluations, the
   mean FID is at most :data:`LOW_FACTOR` x the best tail mean of any run in the study, the
   relative spread is at most :data:`MAX_SPREAD`, and the losses do not diverge.
2. A (generator, discriminator width) point is optimal when most of its seeds are.
3. A generator's *threshold* is the smallest width from which every larger width in the
   grid is optimal too (a width that works only by luck, with failures above it, does not
   count). A generator with no such width is *censored* (threshold above the grid).
4. Fits of ln(threshold discriminator parameters) against generator parameters
   (exponential) and against ln(generator parameters) (power law), AICc with Akaike
   weights, on the uncensored points; the whole procedure is bootstrapped over seeds
   (seeds resampled with replacement within every point, :data:`BOOTSTRAP` replicates).
5. Verdict: *undecided* with fewer than :data:`MIN_POINTS` uncensored generators or more
   than a third censored; *supported* when the exponential's Akaike weight is >= 0.9 in the
   point estimate and in >= 80% of the bootstrap replicates and its slope's bootstrap 95%
   interval lies above 0; *refuted* when the power law wins by the same standard;
   otherwise *undecided*.

Secondary analysis of the first study (added after 392 of the 605 paper-budget runs had been
seen, so it is reported beside the rules above, never instead of them): under the first rule
every quantum generator came out censored, because (a) "low" compares runs in different
latent spaces, whose floors differ (the autoencoder's reconstruction FID is 8.1 at 2 latents
and 0.8 at 6), and (b) the WGAN-GP FID traces oscillate at every width (median tail relative
spread about 0.45), so almost no run is "stable". The *quality threshold* therefore drops
stability and compares within one latent space: a run is *good* when its tail-mean FID is at
most :data:`QUALITY_FACTOR` x the best point (median over seeds) with the same latent size;
rules 2-5 are then applied unchanged to "good" instead of "optimal".
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict
from typing import Any

import numpy as np

from qbm.training.qgan import TAIL_FID_SAMPLES, QGANConfig, Shared, train_qgan

BOOTSTRAP = 200
MIN_POINTS = 5
RULE_VERSION = "capacity-calibrated-1"
#: tail lengths (large-FID evaluations) the calibration chooses from
TAIL_CANDIDATES = (3, 5, 8, 10, 15)
#: the calibration's fixed design: seeds disjoint from the study's, Adam beta2 candidates
CALIBRATION_SEEDS = list(range(100, 110))
CALIBRATION_BETA2 = (0.9, 0.999)
#: adaptive search defaults written into rule.json by the calibration
COARSE_WIDTHS = [2, 4, 8, 16, 32, 64, 128]
COARSE_SEEDS = [0, 1, 2, 3, 4]
FULL_SEEDS = list(range(10))


# ------------------------------------------------------------------ capacity study
# Optimality, decided at aggregation from each run's stored traces (science.md, section 3):
# over the last TAIL_FRACTION of the FID evaluations a run is
#   low:    tail-mean FID <= LOW_FACTOR x the best tail-mean FID of any run of the study
#           (same budget), and
#   stable: relative spread (std / mean) of those FIDs <= MAX_SPREAD, and
#   sane:   every loss is finite and the tail |d_loss| is at most DIVERGE_FACTOR x its
#           median over the first half of training (no divergence).
# A point (generator capacity, discriminator width) is optimal when most of its seeds are.
TAIL_FRACTION = 0.3
LOW_FACTOR = 1.5
MAX_SPREAD = 0.2
DIVERGE_FACTOR = 10.0
QUALITY_FACTOR = 2.0  # secondary analysis: tail FID within this factor of the latent's best point


def capacity_run(config: dict[str, Any], seed: int) -> dict[str, Any]:
    """One GAN training of the capacity study (a run of the study runner): stores the FID
    and loss traces; the optimality verdict is made later, across runs."""
    cfg_d = {k: v for k, v in config.items() if k not in ("cache",)}
    cfg = QGANConfig(**{**cfg_d, "seed": seed})
    # the driver prepared the shared pieces: runs need only latents, never images
    shared = Shared.from_cache(config.get("cache") or "", latent=cfg.latent, dataset=cfg.dataset)
    if shared is None:
        from qbm.data import load_dataset

        shared = Shared(
            load_dataset(cfg.dataset, cfg.data_dir),
            cfg.latent,
            seed=0,
            ae_epochs=cfg.ae_epochs,
            clf_epochs=cfg.clf_epochs,
            eval_samples=cfg.eval_samples,
            cache=config.get("cache"),
        )
    from qbm.studies.runner import report_progress

    name = _generator_name(config)

    def show(epoch: int, fid: float) -> None:  # the bar names the seed
        report_progress(f"{name} vs {cfg.disc_width}: epoch {epoch}/{cfg.epochs}, FID {fid:.2f}")

    r = train_qgan(cfg, shared, progress=False, on_epoch=show)
    return {
        "generator_params": r["generator_params"],
        "discriminator_params": r["discriminator_params"],
        "initial_fid": r["initial_fid"],
        "fid_floor": r["fid_floor_real_vs_real"],
        "fid": r["history"]["fid"],
        "d_loss": r["history"]["d_loss"],
        "g_loss": r["history"]["g_loss"],
        "final_fid": r["final_fid"],
        "seconds": r["seconds"],
        "latent": cfg.latent,
        "tail_epochs": r["history"]["tail_epochs"],
        "tail_fid_raw": r["history"]["tail_fid_raw"],
        "tail_fid_ema": r["history"]["tail_fid_ema"],
        "fid_recon_big": r["fid_recon_big"],
        "fid_floor_big": r["fid_floor_big"],
        "fid_noise": r["fid_noise"],
    }


def _tail(v: list[float]) -> np.ndarray:
    k = max(2, int(math.ceil(TAIL_FRACTION * len(v))))
    return np.asarray(v[-k:], dtype=float)


def _diverged(r: dict[str, Any]) -> bool:
    """Both rules' divergence check: a loss is not finite, or the tail |d_loss| exceeds
    DIVERGE_FACTOR x its median over the first half of training."""
    losses = np.asarray(r["d_loss"] + r["g_loss"], dtype=float)
    d = np.abs(np.asarray(r["d_loss"], dtype=float))
    early = float(np.median(d[: max(1, len(d) // 2)])) if len(d) else 0.0
    return bool(
        not np.all(np.isfinite(losses)) or (len(d) and _tail(list(d)).max() > DIVERGE_FACTOR * max(early, 1e-3))
    )


def run_verdicts(results: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], float]:
    """Per-run optimality (see the constants above); returns verdicts and the best
    tail-mean FID of the study."""
    tails = [float(_tail(r["fid"]).mean()) if len(r["fid"]) >= 2 else math.inf for r in results]
    best = min(tails) if tails else math.inf
    out = []
    for r, tm in zip(results, tails):
        f = _tail(r["fid"]) if len(r["fid"]) >= 2 else np.array([math.inf])
        spread = float(f.std() / f.mean()) if f.mean() > 0 and np.isfinite(f.mean()) else math.inf
        diverged = _diverged(r)
        low = bool(tm <= LOW_FACTOR * best)
        stable = bool(spread <= MAX_SPREAD)
        out.append(
            {"tail_mean_fid": tm, "tail_rel_spread": spread, "low": low, "stable": stable, "diverged": diverged,
             "optimal": low and stable and not diverged}
        )  # fmt: skip
    return out, best


def fit_scaling(x: np.ndarray, y: np.ndarray) -> dict[str, dict[str, Any]]:
    """Least-squares fits of ln y against x (exponential, y = e^a e^(b x)) and against ln x
    (power law, y = e^a x^b), with 95% t intervals on a and b, R^2 in ln y, and AICc (small
    sample corrected, k = 3 counting the noise variance) with Akaike weights for the
    comparison. AICc needs at least 5 points; with fewer it is NaN and no model is preferred."""
    from scipy import stats

    x = np.asarray(x, dtype=float)
    ly = np.log(np.asarray(y, dtype=float))
    n = len(x)
    out: dict[str, dict[str, Any]] = {}
    if n < 2:
        return out
    for name, feat in (("exponential", x), ("polynomial", np.log(x))):
        A = np.stack([np.ones(n), feat], axis=1)
        coef, *_ = np.linalg.lstsq(A, ly, rcond=None)
        resid = ly - A @ coef
        rss = float(resid @ resid)
        ss = float(((ly - ly.mean()) ** 2).sum())
        fit: dict[str, Any] = {"a": float(coef[0]), "b": float(coef[1]), "r2": 1 - rss / ss if ss > 0 else float("nan")}
        if n > 2:
            s2 = rss / (n - 2)
            cov = s2 * np.linalg.inv(A.T @ A)
            h = stats.t.ppf(0.975, n - 2)
            fit["a_ci"] = [float(coef[0] - h * np.sqrt(cov[0, 0])), float(coef[0] + h * np.sqrt(cov[0, 0]))]
            fit["b_ci"] = [float(coef[1] - h * np.sqrt(cov[1, 1])), float(coef[1] + h * np.sqrt(cov[1, 1]))]
        k = 3
        if n - k - 1 > 0 and rss > 0:
            fit["aicc"] = n * math.log(rss / n) + 2 * k + 2 * k * (k + 1) / (n - k - 1)
        else:
            fit["aicc"] = float("nan")
        fit["points"] = n
        out[name] = fit
    a1, a2 = out["exponential"]["aicc"], out["polynomial"]["aicc"]
    if math.isfinite(a1) and math.isfinite(a2):
        m = min(a1, a2)
        w1, w2 = math.exp(-(a1 - m) / 2), math.exp(-(a2 - m) / 2)
        out["exponential"]["akaike_weight"] = w1 / (w1 + w2)
        out["polynomial"]["akaike_weight"] = w2 / (w1 + w2)
    return out


def thresholds(opt: dict[Any, dict[int, bool]]) -> dict[Any, int | None]:
    """Rule 3: per generator, the smallest width from which every larger width of its grid
    is optimal; None (censored) when the largest width is not optimal."""
    out: dict[Any, int | None] = {}
    for key, by_w in opt.items():
        widths = sorted(by_w)
        t = None
        for w in reversed(widths):
            if not by_w[w]:
                break
            t = w
        out[key] = t
    return out


def quality_flags(rows: list[dict[str, Any]], factor: float = QUALITY_FACTOR) -> list[bool]:
    """Secondary analysis: per run, tail-mean FID <= ``factor`` x the best point median
    (over seeds) among points with the same latent size. ``rows`` need ``latent``, ``key``,
    ``disc_width`` and ``tail_mean_fid``."""
    cells: dict[tuple[Any, int], list[float]] = {}
    for r in rows:
        cells.setdefault((r["key"], r["disc_width"]), []).append(float(r["tail_mean_fid"]))
    best: dict[int, float] = {}
    lat = {r["key"]: r["latent"] for r in rows}
    for (key, _w), v in cells.items():
        m = float(np.median(v))
        best[lat[key]] = min(best.get(lat[key], math.inf), m)
    return [bool(r["tail_mean_fid"] <= factor * best[r["latent"]]) for r in rows]


def decide(
    rows: list[dict[str, Any]], *, kind: str, bootstrap: int = BOOTSTRAP, seed: int = 0, flag: str = "optimal"
) -> dict[str, Any]:
    """Rules 2-5 for the generators of one ``kind`` ("quantum" or "classical"): threshold
    widths (with censoring), fits, the bootstrap over seeds and the verdict. ``rows``: one
    per run with ``key`` (generator), ``generator_params``, ``disc_width``,
    ``discriminator_params`` and the per-run verdict named by ``flag`` ("optimal", or
    "good" for the secondary analysis)."""
    sel = [r for r in rows if r["generator"] == kind]
    cells: dict[tuple[Any, int], list[bool]] = {}
    gparams, dparams = {}, {}
    for r in sel:
        cells.setdefault((r["key"], r["disc_width"]), []).append(bool(r[flag]))
        gparams[r["key"]] = r["generator_params"]
        # per generator: the discriminator's input is the generator's latent, so the same
        # width has a different parameter count for different latent sizes
        dparams[(r["key"], r["disc_width"])] = r["discriminator_params"]

    def analyse(c: dict[tuple[Any, int], list[bool]]) -> tuple[dict[str, Any], list[tuple[float, float]], int]:
        opt: dict[Any, dict[int, bool]] = {}
        for (key, w), v in c.items():
            opt.setdefault(key, {})[w] = sum(v) > len(v) / 2
        th = thresholds(opt)
        pts = sorted((float(gparams[k]), float(dparams[(k, w)])) for k, w in th.items() if w is not None)
        censored = sum(w is None for w in th.values())
        if len(pts) < 2:
            return {}, pts, censored
        x, y = np.array(pts).T
        return fit_scaling(x, y), pts, censored

    fit, pts, censored = analyse(cells)
    rng = np.random.default_rng(seed)
    w_exp, w_pow, slopes = [], [], []
    for _ in range(bootstrap if len(pts) >= MIN_POINTS else 0):
        rc = {k: list(rng.choice(v, len(v))) for k, v in cells.items()}
        f, p, _ = analyse(rc)
        if f and "akaike_weight" in f.get("exponential", {}):
            w_exp.append(f["exponential"]["akaike_weight"])
            w_pow.append(f["polynomial"]["akaike_weight"])
            slopes.append(f["exponential"]["b"])
    n_gen = len({r["key"] for r in sel})
    boot = {
        "replicates": len(w_exp),
        "exp_weight_ge_0.9": float(np.mean(np.asarray(w_exp) >= 0.9)) if w_exp else float("nan"),
        "power_weight_ge_0.9": float(np.mean(np.asarray(w_pow) >= 0.9)) if w_pow else float("nan"),
        "exp_slope_ci": [float(np.percentile(slopes, 2.5)), float(np.percentile(slopes, 97.5))] if slopes else None,
    }
    e_w = fit.get("exponential", {}).get("akaike_weight", float("nan")) if fit else float("nan")
    p_w = fit.get("polynomial", {}).get("akaike_weight", float("nan")) if fit else float("nan")
    if len(pts) < MIN_POINTS or censored > n_gen / 3:
        verdict = (
            f"undecided: {len(pts)} generators with a threshold (need {MIN_POINTS}), {censored} of {n_gen} censored"
        )
    elif e_w >= 0.9 and boot["exp_weight_ge_0.9"] >= 0.8 and boot["exp_slope_ci"] and boot["exp_slope_ci"][0] > 0:
        verdict = "supported: exponential growth preferred (Akaike weight and bootstrap)"
    elif p_w >= 0.9 and boot["power_weight_ge_0.9"] >= 0.8:
        verdict = "refuted: a power law is preferred (Akaike weight and bootstrap)"
    else:
        verdict = f"undecided: exponential weight {e_w:.2f}, power-law weight {p_w:.2f}, bootstrap {boot}"
    return {"points": pts, "censored": censored, "generators": n_gen, "fit": fit, "bootstrap": boot,
            "verdict": verdict}  # fmt: skip


# ------------------------------------------------------------------ the calibrated rule
def width_ladder(top: int) -> list[int]:
    """The bisection's widths up to ``top``: every integer below 8, then round(8 * 2^(k/4))
    (distinct integers: 8, 10, 11, 13, 16, 19, 23, 27, 32, ...)."""
    out = list(range(1, min(8, top + 1)))
    k = 0
    while (w := int(round(8 * 2 ** (k / 4)))) <= top:
        if w not in out:
            out.append(w)
        k += 1
    return out


def point_optimal(by_seed: dict[int, bool | None]) -> bool:
    """Rule 2: most of the point's finished seeds are optimal (failed runs, None, count as
    neither)."""
    v = [b for b in by_seed.values() if b is not None]
    return bool(v) and sum(v) > len(v) / 2


def tested_threshold(opt: dict[int, bool]) -> int | None:
    """The smallest tested width from which every larger tested width is optimal (None when
    the widest is not)."""
    return thresholds({0: opt})[0]


def plan_widths(verdicts: dict[int, dict[int, bool | None]], search: dict[str, Any]) -> list[tuple[int, list[int]]]:
    """Rule 3, one step: the (width, seeds) still to run for one generator given its
    verdicts so far (``verdicts[width][seed]``: optimal, not, or None for a failed run);
    an empty list when the search is over. Deterministic, so a resumed study replays the
    same rounds."""
    coarse, cseeds, fseeds = search["coarse"], search["coarse_seeds"], search["full_seeds"]

    def missing(w: int, seeds: list[int]) -> list[int]:
        return [sd for sd in seeds if sd not in verdicts.get(w, {})]

    need = [(w, m) for w in coarse if (m := missing(w, cseeds))]
    if need:
        return need
    opt = {w: point_optimal(v) for w, v in verdicts.items()}
    t = tested_threshold(opt)
    if t is None:
        return []  # censored: the widest coarse width fails
    below = [w for w in opt if w < t]
    lo = max(below) if below else 0
    need = [(w, m) for w in (lo, t) if w > 0 and (m := missing(w, fseeds))]
    if need:
        return need
    cand = [w for w in width_ladder(max(coarse)) if lo < w < t and w not in verdicts]
    if not cand:
        return []
    return [(cand[len(cand) // 2], fseeds)]


def search_status(verdicts: dict[int, dict[int, bool | None]], search: dict[str, Any]) -> str:
    """One generator's search so far, for the log after every round: each tested width
    with its optimal / finished seeds, and where rule 3 stands (coarse grid running,
    censored, bracketed between two widths, or done)."""
    if not verdicts:
        return "nothing run yet"
    cells = []
    for w in sorted(verdicts):
        v = [b for b in verdicts[w].values() if b is not None]
        cells.append(f"{w}: {sum(v)}/{len(v)}")
    coarse_done = all(sd in verdicts.get(w, {}) for w in search["coarse"] for sd in search["coarse_seeds"])
    t = tested_threshold({w: point_optimal(v) for w, v in verdicts.items()})
    if not coarse_done:
        state = "coarse grid running"
    elif t is None:
        state = "censored (the widest width is not optimal)"
    else:
        below = [w for w in verdicts if w < t]
        todo = plan_widths(verdicts, search)
        state = f"threshold in ({max(below) if below else 0}, {t}]" + ("" if todo else ", search done")
    return f"{state}; optimal seeds by width {', '.join(cells)}"


def threshold_interval(
    verdicts: dict[int, dict[int, bool | None]], dparams: dict[int, int], *, bootstrap: int = BOOTSTRAP, seed: int = 0
) -> dict[str, Any]:
    """The threshold (width and discriminator parameters) of one generator from its tested
    widths, and its bootstrap interval: seeds resampled with replacement within every
    tested width, the threshold recomputed; censored replicates counted."""
    t = tested_threshold({w: point_optimal(v) for w, v in verdicts.items()})
    rng = np.random.default_rng(seed)
    reps, cens = [], 0
    for _ in range(bootstrap):
        opt = {}
        for w, v in verdicts.items():
            vals = [b for b in v.values() if b is not None]
            opt[w] = point_optimal(dict(enumerate(rng.choice(vals, len(vals))))) if vals else False
        tb = tested_threshold(opt)
        if tb is None:
            cens += 1
        else:
            reps.append(dparams[tb])
    ci = [float(np.percentile(reps, 2.5)), float(np.percentile(reps, 97.5))] if reps else None
    return {"width": t, "params": dparams.get(t) if t is not None else None, "params_ci": ci,
            "censored_replicates": cens / bootstrap if bootstrap else float("nan")}  # fmt: skip


def calibrated_verdict(rec: dict[str, Any], rule: dict[str, Any]) -> dict[str, Any]:
    """Rule 1 of the calibrated rule for one run's stored result."""
    series = rec["tail_fid_ema" if rule["weights"] == "ema" else "tail_fid_raw"]
    k = int(rule["tail_evaluations"])
    if len(series) < k:
        raise ValueError(f"rule: the run measured {len(series)} large FIDs, the rule needs the last {k}")
    tail = np.asarray(series[-k:], dtype=float)
    mean, sd = float(tail.mean()), float(tail.std(ddof=1))
    diverged = _diverged(rec)
    low = bool(mean <= rule["low_factor"] * rec["fid_recon_big"])
    stable = bool(sd <= rule["spread_bound"])
    return {"big_tail_mean": mean, "big_tail_sd": sd, "big_low": low, "big_stable": stable, "diverged": diverged,
            "optimal_calibrated": low and stable and not diverged}  # fmt: skip


def derive_rule(records: list[dict[str, Any]], *, tail_candidates: tuple[int, ...] = TAIL_CANDIDATES) -> dict[str, Any]:
    """The calibrated rule's constants from the calibration's runs (one generator, one wide
    discriminator, several seeds, both beta2 values): the order and choices stated in the
    module docstring. ``records``: the runs' results with ``config`` (``adam_beta2``)."""
    by_beta: dict[float, list[dict[str, Any]]] = {}
    for r in records:
        by_beta.setdefault(float(r["config"]["adam_beta2"]), []).append(r)
    if not by_beta:
        raise ValueError("calibration: no finished runs")
    n_tail = min(len(r["tail_fid_ema"]) for r in records)
    whole = max(2, n_tail)  # beta2 and the weights are chosen on every large FID the runs measured

    def tail_means(rs: list[dict[str, Any]], key: str, k: int) -> list[float]:
        return [float(np.mean(r[key][-k:])) for r in rs]

    med_fid = {b: float(np.median(tail_means(rs, "tail_fid_ema", whole))) for b, rs in by_beta.items()}
    beta2 = min(sorted(by_beta), key=lambda b: (med_fid[b], abs(b - 0.9)))
    rs = by_beta[beta2]
    med_sd = {w: float(np.median([np.std(r[f"tail_fid_{w}"][-whole:], ddof=1) for r in rs])) for w in ("ema", "raw")}
    weights = "raw" if med_sd["raw"] < med_sd["ema"] else "ema"
    key = f"tail_fid_{weights}"
    noise = float(np.median([np.std(r["fid_noise"][f"generated_{weights}"], ddof=1) for r in rs]))
    trend = {}
    for k in tail_candidates:
        if k > n_tail:
            continue
        h = k // 2
        trend[k] = float(np.median([abs(np.mean(r[key][-k:][:h]) - np.mean(r[key][-k:][h:])) for r in rs]))
    ok = [k for k, v in trend.items() if v <= 2 * noise]
    if not trend:
        raise ValueError(f"calibration: runs measured {n_tail} large FIDs, fewer than any tail candidate")
    k = max(ok) if ok else min(trend)
    sds = [float(np.std(r[key][-k:], ddof=1)) for r in rs]
    ratios = [float(np.mean(r[key][-k:]) / r["fid_recon_big"]) for r in rs]
    return {
        "adam_beta2": beta2,
        "weights": weights,
        "tail_evaluations": k,
        "spread_bound": float(np.percentile(sds, 95)),
        "low_factor": float(np.percentile(ratios, 95)),
        "evidence": {
            "median_tail_fid_ema_by_beta2": {str(b): v for b, v in med_fid.items()},
            "median_tail_sd_by_weights": med_sd,
            "fid_noise_sd_generated": noise,
            "fid_noise_sd_real_bootstrap": float(np.median([r["fid_noise"]["real_bootstrap_sd"] for r in rs])),
            "tail_trend_by_length": {str(a): v for a, v in trend.items()},
            "tail_sds": sds,
            "tail_mean_over_recon": ratios,
            "fid_recon_big": float(rs[0]["fid_recon_big"]),
            "runs_at_chosen_beta2": len(rs),
            "run_seconds_median": float(np.median([r["seconds"] for r in records])),
        },
    }


def git_blob_hash(data: bytes) -> str:
    """The git blob id of ``data`` (what ``git hash-object`` prints)."""
    import hashlib

    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def rule_provenance(path: str) -> dict[str, Any]:
    """Where the rule file comes from, refusing one that is not committed: inside a git work
    tree the file must be tracked with no uncommitted change (the commit that last changed
    it is recorded); outside one, only the rules packaged with qbm are accepted (they were
    committed before the release). Always records the file's git blob hash."""
    import subprocess

    import qbm

    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise ValueError(
            f"--rule: {path!r} does not exist; run `qbm study capacity-calibrate` and commit its rule.json"
        )
    with open(path, "rb") as fh:
        blob = git_blob_hash(fh.read())
    d = os.path.dirname(path)

    def git(*a: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-C", d, *a], capture_output=True, text=True, timeout=30)

    try:  # a file git ignores (an installed copy inside a virtual environment in a clone) is not in git
        inside = git("rev-parse", "--is-inside-work-tree").stdout.strip() == "true"
        inside = inside and git("check-ignore", "-q", path).returncode != 0
    except (OSError, subprocess.SubprocessError):
        inside = False
    if inside:
        if git("ls-files", "--error-unmatch", path).returncode != 0:
            raise ValueError(f"--rule: {path} is not committed; commit it before the study (the rule must be fixed "
                             "before any study data are seen)")  # fmt: skip
        if git("status", "--porcelain", "--", path).stdout.strip():
            raise ValueError(f"--rule: {path} has uncommitted changes; commit them before the study")
        commit = git("log", "-1", "--format=%H", "--", path).stdout.strip()
        return {"path": path, "blob": blob, "commit": commit, "source": "git"}
    pkg = os.path.dirname(os.path.abspath(qbm.__file__))
    if os.path.commonpath([pkg, path]) == pkg:
        return {"path": path, "blob": blob, "commit": None, "source": f"packaged with qbm {qbm.__version__}"}
    raise ValueError(f"--rule: {path} is not in a git repository; commit it (or use a rule packaged with qbm)")


def packaged_rule(dataset: str) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "rules", f"capacity-{dataset}.json")


def load_rule(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(rule, provenance); the rule file must be committed (:func:`rule_provenance`) and
    hold every constant."""
    prov = rule_provenance(path)
    try:
        with open(path) as fh:
            rule = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"--rule: {path} is not valid JSON ({e})") from None
    need = ("version", "dataset", "adam_beta2", "weights", "tail_evaluations", "spread_bound", "low_factor", "budget",
            "search")  # fmt: skip
    miss = [k for k in need if k not in rule]
    if miss:
        raise ValueError(f"--rule: {path} lacks {', '.join(miss)}")
    if rule["version"] != RULE_VERSION:
        raise ValueError(f"--rule: {path} is rule {rule['version']!r}; this qbm applies {RULE_VERSION!r}")
    return rule, prov


# ------------------------------------------------------------------ study drivers
def prepare_shared(dataset: str, data_dir: str | None, latents: list[int], base: QGANConfig,
                   log: Any = print, progress: bool = True) -> dict[int, str]:  # fmt: skip
    """Prepare (or find in qbm's cache directory, by content key) the shared pieces of every
    latent size; returns latent -> cache path, and logs each key and whether it was reused."""
    import time

    from qbm.data import load_dataset

    data = load_dataset(dataset, data_dir)
    paths = {}
    for latent in sorted(set(latents)):
        kw = dict(seed=0, ae_epochs=base.ae_epochs, eval_samples=base.eval_samples)
        key, path = Shared.cache_path(data, latent, **kw)
        t0 = time.perf_counter()
        sh = Shared(data, latent, clf_epochs=base.clf_epochs, cache=path, progress=progress, **kw)
        how = "reused" if sh.loaded else "prepared"
        log(f"latent {latent}: {how} the shared pieces (cache key {key}, {path}) in {time.perf_counter() - t0:.1f} s; "
            f"reconstruction FID {sh.fid_recon_big:.3g} at {TAIL_FID_SAMPLES} samples")  # fmt: skip
        paths[latent] = path
    return paths


def capacity_calibrate(
    base: QGANConfig,
    *,
    generator: tuple[int, int],
    disc_width: int,
    seeds: list[int],
    out: str,
    beta2s: tuple[float, ...] = CALIBRATION_BETA2,
    noise_repeats: int = 5,
    runner_kw: dict[str, Any] | None = None,
    log: Any = print,
) -> dict[str, Any]:
    """The calibration run: one quantum generator (qubits, layers; ``z`` readout, latent =
    qubits) and one wide discriminator over ``seeds`` and ``beta2s``; writes
    ``out/rule.json`` (the rule's constants, the budget and the adaptive search's design)
    and ``out/calibration.png``."""
    from qbm.studies.runner import Study, grid, run_study

    n, L = generator
    if set(seeds) & set(FULL_SEEDS):
        raise ValueError(f"--seeds: calibration seeds must be disjoint from the study's {FULL_SEEDS}")
    os.makedirs(out, exist_ok=True)
    paths = prepare_shared(base.dataset, base.data_dir, [n], base, log, (runner_kw or {}).get("progress", True))
    c = {**asdict(base), "generator": "quantum", "qubits": n, "layers": L, "latent": n, "readout": "z",
         "disc_width": disc_width, "tail_fid_fraction": 0.5, "noise_repeats": noise_repeats,
         "cache": paths[n]}  # fmt: skip
    c.pop("seed", None)
    c.pop("extra", None)
    jobs = [{**c, "adam_beta2": b} for b in beta2s]
    recs = run_study(Study("capacity-calibration", "qbm.studies.capacity:capacity_run", grid(jobs, seeds)), out,
                     **(runner_kw or {}))  # fmt: skip
    ok = [{**r["result"], "config": r["config"], "seed": r["seed"]} for r in recs if r["status"] == "ok"]
    if len(ok) < len(recs):
        raise ValueError(f"calibration: {len(recs) - len(ok)} of {len(recs)} runs failed; see {out}/runs")
    derived = derive_rule(ok)
    rule = {
        "version": RULE_VERSION,
        "dataset": base.dataset,
        **{k: v for k, v in derived.items() if k != "evidence"},
        "budget": {"epochs": base.epochs, "iters_per_epoch": base.iters_per_epoch, "tail_fid_fraction": 0.5,
                   "tail_fid_samples": TAIL_FID_SAMPLES, "ema_half_life": base.ema_half_life,
                   "ae_epochs": base.ae_epochs, "eval_samples": base.eval_samples},  # fmt: skip
        "search": {"coarse": COARSE_WIDTHS, "coarse_seeds": COARSE_SEEDS, "full_seeds": FULL_SEEDS,
                   "ladder": "every integer below 8, then round(8 * 2^(k/4))"},  # fmt: skip
        "decision": {"min_points": MIN_POINTS, "bootstrap": BOOTSTRAP, "akaike_weight": 0.9, "replicates": 0.8},
        "calibration": {"generator": f"quantum {n}x{L}", "disc_width": disc_width, "seeds": seeds,
                        "beta2_candidates": list(beta2s), "noise_repeats": noise_repeats,
                        "shared_key": os.path.basename(paths[n]), **derived["evidence"]},  # fmt: skip
    }
    with open(os.path.join(out, "rule.json"), "w") as fh:
        json.dump(rule, fh, indent=1)
    _calibration_figure(os.path.join(out, "calibration.png"), ok, rule)
    return rule


def _calibration_figure(path: str, recs: list[dict[str, Any]], rule: dict[str, Any]) -> None:
    """Left: every calibration seed's large-FID tail (raw thin, EMA thick) per beta2; right:
    the tail standard deviations against the spread bound and the sampling noise."""
    from qbm.plotting import _plt

    plt = _plt()
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(12, 4.2))
    for i, b in enumerate(sorted({float(r["config"]["adam_beta2"]) for r in recs})):
        for r in recs:
            if float(r["config"]["adam_beta2"]) != b:
                continue
            a0.plot(r["tail_epochs"], r["tail_fid_raw"], color=f"C{i}", lw=0.5, alpha=0.6)
            a0.plot(r["tail_epochs"], r["tail_fid_ema"], color=f"C{i}", lw=1.6, alpha=0.8)
        a0.plot([], [], color=f"C{i}", label=f"beta2 {b} (thin raw, thick EMA)")
    rec_fid = rule["calibration"]["fid_recon_big"]
    a0.axhline(rec_fid * rule["low_factor"], color="k", ls="--", lw=0.8, label="low bound")
    a0.axhline(rec_fid, color="k", ls=":", lw=0.8, label="reconstruction FID")
    a0.set_yscale("log")
    a0.set_xlabel("epoch")
    a0.set_ylabel(f"FID ({TAIL_FID_SAMPLES} samples)")
    a0.legend(fontsize=7)
    sds = rule["calibration"]["tail_sds"]
    a1.plot(range(len(sds)), sorted(sds), "o", label=f"tail sd ({rule['weights']}, last {rule['tail_evaluations']})")
    a1.axhline(rule["spread_bound"], color="C3", label="spread bound (95th percentile)")
    a1.axhline(rule["calibration"]["fid_noise_sd_generated"], color="C2", ls="--", label="FID sampling noise (sd)")
    a1.set_xlabel("calibration seed (sorted)")
    a1.set_ylabel("FID standard deviation")
    a1.legend(fontsize=7)
    fig.suptitle(f"capacity calibration on {rule['dataset']}: {rule['calibration']['generator']}, "
                 f"discriminator width {rule['calibration']['disc_width']}", fontsize=9)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def study_tail_fraction(rule: dict[str, Any]) -> float:
    """The fraction of the epochs whose large FID a study run measures: the last
    ``tail_evaluations`` (all rule 1 reads), never more than the calibration's budget. The
    large FID of an epoch does not depend on which other epochs measured it (fixed noise, no
    random state consumed), so the rule's tail is the calibration design's, bit for bit, for
    two thirds (MNIST: 10 of 15 epochs) or a fifth (digits: 3 of 15) of its large FIDs; with the
    rule's weights only, half again."""
    b = rule["budget"]
    k = int(rule["tail_evaluations"])
    return min(float(b["tail_fid_fraction"]), k / int(b["epochs"]))


def _gkey(c: dict[str, Any]) -> tuple[str, int, int, int]:
    """(kind, qubits, layers, width): a quantum generator's width and a classical one's qubits
    and layers are unused config fields, never part of its identity."""
    if c["generator"] == "quantum":
        return ("quantum", int(c["qubits"]), int(c["layers"]), 0)
    return ("classical", 0, 0, int(c["gen_width"]))


def capacity_study(
    base: QGANConfig,
    *,
    rule: dict[str, Any],
    provenance: dict[str, Any],
    quantum_grid: list[tuple[int, int]],
    classical_widths: list[int],
    classical_latent: int,
    out: str,
    runner_kw: dict[str, Any] | None = None,
    log: Any = print,
) -> dict[str, Any]:
    """The adaptive study under a committed calibrated rule: per generator, coarse grid,
    top-ups and bisection (rule 3) in rounds through the study runner (each round its own
    resumable directory ``out/rounds/NN``; a rerun replays the same rounds); thresholds
    with bootstrap intervals, fits and verdicts for quantum and classical generators, and
    the first rule's and the quality-only analysis's verdicts beside."""
    from qbm.studies.runner import Run, Study, run_study

    os.makedirs(out, exist_ok=True)
    b = rule["budget"]
    base = QGANConfig(**{**asdict(base), "epochs": b["epochs"], "iters_per_epoch": b["iters_per_epoch"],
                         "tail_fid_fraction": study_tail_fraction(rule), "tail_weights": rule["weights"],
                         "monitor_mmd": False, "ema_half_life": b["ema_half_life"],
                         "ae_epochs": b["ae_epochs"], "eval_samples": b["eval_samples"],
                         "adam_beta2": rule["adam_beta2"]})  # fmt: skip
    gens = []
    for n, L in quantum_grid:
        gens.append({**asdict(base), "generator": "quantum", "qubits": n, "layers": L, "latent": n, "readout": "z"})
    for gw in classical_widths:
        gens.append({**asdict(base), "generator": "classical", "gen_width": gw, "latent": classical_latent})
    for g in gens:
        g.pop("seed", None)
        g.pop("extra", None)
    paths = prepare_shared(base.dataset, base.data_dir, [g["latent"] for g in gens], base, log,
                           (runner_kw or {}).get("progress", True))
    for g in gens:
        g["cache"] = paths[g["latent"]]
    with open(os.path.join(out, "prepared.json"), "w") as fh:
        json.dump({"rule": provenance, "shared": {str(k): v for k, v in paths.items()}}, fh, indent=1)
    search = rule["search"]
    records: dict[str, dict[str, Any]] = {}  # run key -> record, over every round
    rnd = 0
    while True:
        runs = []
        for g in gens:
            ver = _verdicts_of(g, records, rule)
            for w, seeds in plan_widths(ver, search):
                runs += [Run({**g, "disc_width": w}, sd) for sd in seeds]
        if not runs:
            break
        log(f"round {rnd}: {len(runs)} runs ({len({_gkey(r.config) for r in runs})} generators)")
        recs = run_study(Study(f"capacity-round{rnd}", "qbm.studies.capacity:capacity_run", runs),
                         os.path.join(out, "rounds", f"{rnd:02d}"), **(runner_kw or {}))  # fmt: skip
        for r in recs:
            records[r["key"]] = r
        for r in runs:  # a run the runner lost counts as failed, never as "still to run"
            records.setdefault(r.key, {"status": "failed", "config": r.config, "seed": r.seed,
                                       "error": {"type": "Missing", "message": "no record"}})  # fmt: skip
        for g in gens:
            log(f"after round {rnd}, {_generator_name(g)}: {search_status(_verdicts_of(g, records, rule), search)}")
        rnd += 1
    return summarise_study(gens, records, rule, provenance, out, rounds=rnd)


def _verdicts_of(g: dict[str, Any], records: dict[str, dict[str, Any]],
                 rule: dict[str, Any]) -> dict[int, dict[int, bool | None]]:  # fmt: skip
    out: dict[int, dict[int, bool | None]] = {}
    for r in records.values():
        c = r["config"]
        if _gkey(c) != _gkey(g):
            continue
        v = calibrated_verdict(r["result"], rule)["optimal_calibrated"] if r["status"] == "ok" else None
        out.setdefault(c["disc_width"], {})[r["seed"]] = v
    return out


def summarise_study(gens: list[dict[str, Any]], records: dict[str, dict[str, Any]], rule: dict[str, Any],
                    provenance: dict[str, Any], out: str, *, rounds: int) -> dict[str, Any]:  # fmt: skip
    from qbm.studies.runner import write_csv

    ok = [r for r in records.values() if r["status"] == "ok"]
    first, best_fid = run_verdicts([r["result"] for r in ok])
    rows = []
    for r, v in zip(ok, first):
        c, res = r["config"], r["result"]
        rows.append({
            "generator": c["generator"], "qubits": c.get("qubits") if c["generator"] == "quantum" else None,
            "layers": c.get("layers") if c["generator"] == "quantum" else None,
            "gen_width": c.get("gen_width") if c["generator"] == "classical" else None,
            "disc_width": c["disc_width"], "latent": c["latent"], "key": _gkey(c), "seed": r["seed"],
            "generator_params": res["generator_params"], "discriminator_params": res["discriminator_params"],
            "final_fid": res["final_fid"], "fid_recon_big": res["fid_recon_big"],
            **calibrated_verdict(res, rule), **v,
        })  # fmt: skip
    for r, gflag in zip(rows, quality_flags(rows) if rows else []):
        r["good"] = gflag
    rows.sort(key=lambda r: (str(r["key"]), r["disc_width"], r["seed"]))
    write_csv(os.path.join(out, "runs.csv"), [{k: v for k, v in r.items() if k != "key"} for r in rows])
    best = []
    for g in gens:
        k = _gkey(g)
        sel = [r for r in rows if r["key"] == k]
        ver = _verdicts_of(g, records, rule)
        dparams = {r["disc_width"]: r["discriminator_params"] for r in sel}
        ti = threshold_interval(ver, dparams)
        best.append({
            "generator": k[0], "qubits": k[1] or None, "layers": k[2] or None, "gen_width": k[3] or None,
            "latent": g["latent"], "generator_params": sel[0]["generator_params"] if sel else None,
            "widths_tested": " ".join(str(w) for w in sorted(ver)), "runs": sum(len(v) for v in ver.values()),
            "threshold_width": ti["width"], "threshold_params": ti["params"],
            "params_ci_lo": ti["params_ci"][0] if ti["params_ci"] else None,
            "params_ci_hi": ti["params_ci"][1] if ti["params_ci"] else None,
            "censored": ti["width"] is None, "censored_replicates": ti["censored_replicates"],
            "fid_recon_big": sel[0]["fid_recon_big"] if sel else None,
        })  # fmt: skip
    write_csv(os.path.join(out, "capacity.csv"), best)
    points = []
    for k in sorted({r["key"] for r in rows}, key=str):
        for w in sorted({r["disc_width"] for r in rows if r["key"] == k}):
            sel = [r for r in rows if r["key"] == k and r["disc_width"] == w]
            points.append({"generator": k[0], "qubits": k[1] or None, "layers": k[2] or None, "gen_width": k[3] or None,
                           "disc_width": w, "discriminator_params": sel[0]["discriminator_params"],
                           "seeds": len(sel), "optimal_seeds": sum(r["optimal_calibrated"] for r in sel),
                           "optimal": sum(r["optimal_calibrated"] for r in sel) > len(sel) / 2,
                           "big_tail_fid_median": float(np.median([r["big_tail_mean"] for r in sel])),
                           "big_tail_sd_median": float(np.median([r["big_tail_sd"] for r in sel]))})  # fmt: skip
    write_csv(os.path.join(out, "points.csv"), points)
    decisions, first_rule, quality = {}, {}, {}
    for kind in ("quantum", "classical"):
        if any(r["generator"] == kind for r in rows):
            decisions[kind] = decide(rows, kind=kind, flag="optimal_calibrated")
            first_rule[kind] = decide(rows, kind=kind, flag="optimal")
            quality[kind] = decide(rows, kind=kind, flag="good")
    _study_figure(os.path.join(out, "capacity.png"), points, best, decisions, rule)
    failed = [r for r in records.values() if r["status"] != "ok"]
    res = {"rule": rule, "provenance": provenance, "rounds": rounds, "runs": len(records), "failed": len(failed),
           "best": best, "decisions": decisions, "first_rule_decisions": first_rule,
           "quality_decisions": quality, "first_rule_best_tail_fid": best_fid,
           "failed_generators": failed_generators(list(records.values()))}  # fmt: skip
    with open(os.path.join(out, "fits.json"), "w") as fh:
        json.dump({k: v for k, v in res.items() if k != "best"}, fh, indent=1, default=str)
    return res


def _study_figure(path: str, points: list[dict[str, Any]], best: list[dict[str, Any]],
                  decisions: dict[str, Any], rule: dict[str, Any]) -> None:  # fmt: skip
    """Left: median large tail FID per (generator, tested width), optimal points marked x;
    right: threshold discriminator parameters (bootstrap 95% intervals) against generator
    parameters, quantum and classical, with the fitted exponential (dashed) and power law
    (dotted); censored generators drawn as open triangles at the top."""
    from qbm.plotting import _plt

    plt = _plt()
    pk = lambda p: (p["generator"], p["qubits"] or 0, p["layers"] or 0, p["gen_width"] or 0)  # noqa: E731
    keys = sorted({pk(p) for p in points})
    widths = sorted({p["disc_width"] for p in points})
    grid = np.full((max(len(keys), 1), max(len(widths), 1)), np.nan)
    for p in points:
        grid[keys.index(pk(p)), widths.index(p["disc_width"])] = p["big_tail_fid_median"]
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(13, 0.35 * len(keys) + 3.5))
    im = ax0.imshow(np.log10(grid), aspect="auto", cmap="viridis_r")
    for p in points:
        if p["optimal"]:
            ax0.text(widths.index(p["disc_width"]), keys.index(pk(p)), "x", ha="center", va="center", color="red")
    ax0.set_yticks(range(len(keys)), [f"Q {k[1]}q x {k[2]}L" if k[0] == "quantum" else f"C width {k[3]}"
                                      for k in keys], fontsize=7)  # fmt: skip
    ax0.set_xticks(range(len(widths)), [str(w) for w in widths], fontsize=6)
    ax0.set_xlabel("discriminator width (tested)")
    ax0.set_title(f"median tail FID (log10, {rule['weights']} weights); x optimal (calibrated rule)", fontsize=8)
    fig.colorbar(im, ax=ax0, fraction=0.04)
    top = max([b["params_ci_hi"] or b["threshold_params"] or 0 for b in best] + [1]) * 2
    for kind, colour in (("quantum", "C0"), ("classical", "C1")):
        sel = [b for b in best if b["generator"] == kind and b["generator_params"]]
        pts = [b for b in sel if not b["censored"]]
        if pts:
            x = np.array([b["generator_params"] for b in pts], float)
            y = np.array([b["threshold_params"] for b in pts], float)
            lo = np.array([b["params_ci_lo"] if b["params_ci_lo"] is not None else v for b, v in zip(pts, y)], float)
            hi = np.array([b["params_ci_hi"] if b["params_ci_hi"] is not None else v for b, v in zip(pts, y)], float)
            ax1.errorbar(x, y, yerr=[y - lo, hi - y], fmt="o", color=colour, capsize=3,
                         label=f"{kind}: {decisions.get(kind, {}).get('verdict', '')[:60]}")  # fmt: skip
            f = decisions.get(kind, {}).get("fit") or {}
            if f and len(pts) >= 3:
                xs = np.linspace(x.min(), x.max(), 50)
                e, pl = f["exponential"], f["polynomial"]
                ax1.plot(xs, np.exp(e["a"] + e["b"] * xs), "--", color=colour, lw=0.8)
                ax1.plot(xs, np.exp(pl["a"]) * xs ** pl["b"], ":", color=colour, lw=0.8)
        cens = [b["generator_params"] for b in sel if b["censored"]]
        if cens:
            ax1.scatter(cens, [top] * len(cens), marker="^", s=60, color=colour, facecolors="none",
                        label=f"{kind}: censored (widest width not optimal)")  # fmt: skip
    ax1.set_yscale("log")
    ax1.set_ylim(top=top * 1.5)
    ax1.set_xlabel("generator parameters")
    ax1.set_ylabel("threshold discriminator parameters (95% bootstrap)")
    ax1.set_title("threshold per generator; open triangles at the top: censored", fontsize=8)
    if ax1.get_legend_handles_labels()[0]:
        ax1.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _generator_name(c: dict[str, Any]) -> str:
    if c["generator"] == "quantum":
        return f"quantum {c['qubits']}x{c['layers']}"
    return f"classical width {c['gen_width']}"


def failed_generators(recs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Generators with failed runs: name -> {"failed", "runs", "error"} (the first error).
    A generator none of whose runs finished has no row in capacity.csv; the CLI says so
    and exits with status 1 instead of leaving the row silently out."""
    out: dict[str, dict[str, Any]] = {}
    for r in recs:
        name = _generator_name(r["config"])
        e = out.setdefault(name, {"failed": 0, "runs": 0, "error": None})
        e["runs"] += 1
        if r["status"] != "ok":
            e["failed"] += 1
            if e["error"] is None and r.get("error"):
                e["error"] = f"{r['error']['type']}: {r['error']['message']}"
    return {k: v for k, v in out.items() if v["failed"]}
