"""`qbm study capacity`: the smallest discriminator that trains a latent GAN optimally, as a
function of the generator's capacity (Liepelt & Baglio 2026), on the study runner.

Decision rule (fixed before running; the docs and fits.json state it):

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

Secondary analysis (added after 392 of the 605 paper-budget runs had been seen, so it is
reported beside the rule above, never instead of it): under the rule above every quantum
generator came out censored, because (a) "low" compares runs in different latent spaces,
whose floors differ (the autoencoder's reconstruction FID is 8.1 at 2 latents and 0.8 at 6),
and (b) the WGAN-GP FID traces oscillate at every width (median tail relative spread about
0.45), so almost no run is "stable". The *quality threshold* therefore drops stability and
compares within one latent space: a run is *good* when its tail-mean FID is at most
:data:`QUALITY_FACTOR` x the best point (median over seeds) with the same latent size; rules
2-5 are then applied unchanged to "good" instead of "optimal".
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict
from typing import Any

import numpy as np

from qbm.training.qgan import QGANConfig, Shared, train_qgan

BOOTSTRAP = 200
MIN_POINTS = 5


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
    r = train_qgan(cfg, shared, progress=False)
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
    }


def _tail(v: list[float]) -> np.ndarray:
    k = max(2, int(math.ceil(TAIL_FRACTION * len(v))))
    return np.asarray(v[-k:], dtype=float)


def run_verdicts(results: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], float]:
    """Per-run optimality (see the constants above); returns verdicts and the best
    tail-mean FID of the study."""
    tails = [float(_tail(r["fid"]).mean()) if len(r["fid"]) >= 2 else math.inf for r in results]
    best = min(tails) if tails else math.inf
    out = []
    for r, tm in zip(results, tails):
        f = _tail(r["fid"]) if len(r["fid"]) >= 2 else np.array([math.inf])
        spread = float(f.std() / f.mean()) if f.mean() > 0 and np.isfinite(f.mean()) else math.inf
        losses = np.asarray(r["d_loss"] + r["g_loss"], dtype=float)
        d = np.abs(np.asarray(r["d_loss"], dtype=float))
        early = float(np.median(d[: max(1, len(d) // 2)])) if len(d) else 0.0
        diverged = bool(
            not np.all(np.isfinite(losses)) or (len(d) and _tail(list(d)).max() > DIVERGE_FACTOR * max(early, 1e-3))
        )
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


def capacity_configs(
    base: QGANConfig, quantum_grid: list[tuple[int, int]], classical_widths: list[int], disc_widths: list[int]
) -> list[dict[str, Any]]:
    jobs = []
    for n, L in quantum_grid:
        for w in disc_widths:
            c = {**asdict(base), "generator": "quantum", "qubits": n, "layers": L, "latent": n, "readout": "z"}
            jobs.append({**c, "disc_width": w})
    for gw in classical_widths:
        for w in disc_widths:
            jobs.append({**asdict(base), "generator": "classical", "gen_width": gw, "disc_width": w})
    for j in jobs:
        j.pop("seed", None)
        j.pop("extra", None)
    return jobs


def capacity_study(
    base: QGANConfig,
    *,
    quantum_grid: list[tuple[int, int]],
    classical_widths: list[int],
    disc_widths: list[int],
    seeds: list[int],
    out: str,
    runner_kw: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """For each generator capacity, the smallest discriminator width (from ``disc_widths``)
    at which training is optimal (decided over ``seeds``), and fits of discriminator
    against generator capacity. Runs go through the study runner (resumable, local pool
    or Ray)."""
    from qbm.data import load_dataset
    from qbm.studies.runner import Study, grid, run_study, summarise, write_csv

    os.makedirs(out, exist_ok=True)
    jobs = capacity_configs(base, quantum_grid, classical_widths, disc_widths)
    for j in jobs:  # the shared autoencoder / FID classifier, trained once per latent size
        j["cache"] = os.path.join(os.path.abspath(out), f"shared-latent{j['latent']}.pt")
    for latent in sorted({j["latent"] for j in jobs}):
        j = next(j for j in jobs if j["latent"] == latent)
        Shared(
            load_dataset(j["dataset"], j["data_dir"]),
            latent,
            seed=0,
            ae_epochs=j["ae_epochs"],
            clf_epochs=j["clf_epochs"],
            eval_samples=j["eval_samples"],
            cache=j["cache"],
        )
    study = Study("capacity", "qbm.studies.capacity:capacity_run", grid(jobs, seeds))
    recs = run_study(study, out, **(runner_kw or {}))
    ok = [r for r in recs if r["status"] == "ok"]
    verdicts, best_fid = run_verdicts([r["result"] for r in ok])
    rows = []
    for r, v in zip(ok, verdicts):
        c = r["config"]
        rows.append(
            {
                "generator": c["generator"],
                "qubits": c["qubits"] if c["generator"] == "quantum" else None,
                "layers": c["layers"] if c["generator"] == "quantum" else None,
                "gen_width": c["gen_width"] if c["generator"] == "classical" else None,
                "disc_width": c["disc_width"],
                "latent": c["latent"],
                "key": (c["generator"], c.get("qubits"), c.get("layers"), c.get("gen_width")),
                "seed": r["seed"],
                "generator_params": r["result"]["generator_params"],
                "discriminator_params": r["result"]["discriminator_params"],
                "final_fid": r["result"]["final_fid"],
                **v,
            }
        )
    for r, g in zip(rows, quality_flags(rows)):
        r["good"] = g
    write_csv(os.path.join(out, "runs.csv"), [{k: v for k, v in r.items() if k != "key"} for r in rows])
    gkey = lambda r: (r["generator"], r["qubits"] or 0, r["layers"] or 0, r["gen_width"] or 0)  # noqa: E731
    points = []
    for key in sorted({gkey(r) for r in rows}):
        for w in sorted({r["disc_width"] for r in rows if gkey(r) == key}):
            sel = [r for r in rows if gkey(r) == key and r["disc_width"] == w]
            fid = summarise([r["tail_mean_fid"] for r in sel], (0.0, None))
            points.append(
                {
                    "generator": key[0],
                    "qubits": key[1] or None,
                    "layers": key[2] or None,
                    "gen_width": key[3] or None,
                    "disc_width": w,
                    "generator_params": sel[0]["generator_params"],
                    "discriminator_params": sel[0]["discriminator_params"],
                    "seeds": len(sel),
                    "optimal_seeds": sum(r["optimal"] for r in sel),
                    "optimal": sum(r["optimal"] for r in sel) > len(sel) / 2,
                    "good_seeds": sum(r["good"] for r in sel),
                    "good": sum(r["good"] for r in sel) > len(sel) / 2,
                    "tail_fid_median": float(np.median([r["tail_mean_fid"] for r in sel])),
                    "tail_spread_median": float(np.median([r["tail_rel_spread"] for r in sel])),
                    "tail_fid_mean": fid["mean"],
                    "tail_fid_ci_lo": fid["ci_lo"],
                    "tail_fid_ci_hi": fid["ci_hi"],
                }
            )
    write_csv(os.path.join(out, "points.csv"), points)
    best = []
    pkey = lambda p: (p["generator"], p["qubits"], p["layers"], p["gen_width"])  # noqa: E731
    opt_map: dict[Any, dict[int, bool]] = {}
    good_map: dict[Any, dict[int, bool]] = {}
    for p in points:
        opt_map.setdefault(pkey(p), {})[p["disc_width"]] = p["optimal"]
        good_map.setdefault(pkey(p), {})[p["disc_width"]] = p["good"]
    th = thresholds(opt_map)  # rule 3: optimal from the threshold width upwards; None = censored
    thq = thresholds(good_map)  # the secondary analysis's threshold
    for key in sorted(opt_map, key=str):
        sel = sorted([p for p in points if pkey(p) == key], key=lambda p: p["disc_width"])
        w, wq = th[key], thq[key]
        best.append(
            {
                "generator": key[0],
                "qubits": key[1],
                "layers": key[2],
                "gen_width": key[3],
                "generator_params": sel[0]["generator_params"],
                "optimal_disc_width": w,
                "optimal_disc_params": next((p["discriminator_params"] for p in sel if p["disc_width"] == w), None),
                "censored": w is None,
                "quality_disc_width": wq,
                "quality_disc_params": next((p["discriminator_params"] for p in sel if p["disc_width"] == wq), None),
                "quality_censored": wq is None,
            }
        )
    write_csv(os.path.join(out, "capacity.csv"), best)
    fits: dict[str, Any] = {}
    decisions: dict[str, Any] = {}
    quality: dict[str, Any] = {}
    for kind in ("quantum", "classical"):
        if any(r["generator"] == kind for r in rows):
            decisions[kind] = decide(rows, kind=kind)
            quality[kind] = decide(rows, kind=kind, flag="good")
            fits[kind] = decisions[kind]["fit"]
    _capacity_figure(os.path.join(out, "capacity.png"), points, best, decisions, quality)
    criteria = {
        "tail_fraction": TAIL_FRACTION,
        "low_factor_vs_best_tail_fid": LOW_FACTOR,
        "best_tail_fid": best_fid,
        "max_rel_spread": MAX_SPREAD,
        "diverge_factor": DIVERGE_FACTOR,
        "point_optimal": "majority of seeds",
        "seeds": seeds,
        "quality_factor_vs_latent_best_point": QUALITY_FACTOR,
    }
    with open(os.path.join(out, "fits.json"), "w") as fh:
        json.dump({"fits": fits, "decisions": decisions, "quality_decisions": quality, "criteria": criteria,
                   "rule": __doc__}, fh, indent=1)  # fmt: skip
    return {"rows": rows, "points": points, "best": best, "fits": fits, "criteria": criteria,
            "decisions": decisions, "quality_decisions": quality, "failed": len(recs) - len(ok),
            "failed_generators": failed_generators(recs)}  # fmt: skip


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


def _capacity_figure(path: str, points: list[dict[str, Any]], best: list[dict[str, Any]],
                     decisions: dict[str, Any], quality: dict[str, Any]) -> None:  # fmt: skip
    """Left: median tail FID per (generator, discriminator width), optimal points boxed
    (x) and good points dotted; right: threshold discriminator parameters against
    generator parameters for both analyses, with the fits where there are any."""
    from qbm.plotting import _plt

    plt = _plt()
    pkey = lambda p: (p["generator"], p["qubits"] or 0, p["layers"] or 0, p["gen_width"] or 0)  # noqa: E731
    keys = sorted({pkey(p) for p in points})
    widths = sorted({p["disc_width"] for p in points})
    grid = np.full((len(keys), len(widths)), np.nan)
    for p in points:
        grid[keys.index(pkey(p)), widths.index(p["disc_width"])] = p["tail_fid_median"]
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(13, 0.35 * len(keys) + 3.5))
    im = ax0.imshow(np.log10(grid), aspect="auto", cmap="viridis_r")
    for p in points:
        i, j = keys.index(pkey(p)), widths.index(p["disc_width"])
        if p["optimal"]:
            ax0.text(j, i, "x", ha="center", va="center", color="red", fontsize=9)
        elif p["good"]:
            ax0.plot(j, i, "o", mfc="none", mec="white", ms=6)
    lab = [f"Q {k[1]}q x {k[2]}L" if k[0] == "quantum" else f"C width {k[3]}" for k in keys]
    ax0.set_yticks(range(len(keys)), lab, fontsize=7)
    ax0.set_xticks(range(len(widths)), [str(w) for w in widths], fontsize=7)
    ax0.set_xlabel("discriminator width")
    ax0.set_title("median tail FID (log10); x optimal (stated rule), o good (quality only)", fontsize=8)
    fig.colorbar(im, ax=ax0, fraction=0.04)
    for kind, colour in (("quantum", "C0"), ("classical", "C1")):
        for col, mark, dec, name in (("optimal_disc_params", "o", decisions, "rule"),
                                     ("quality_disc_params", "s", quality, "quality")):  # fmt: skip
            pts = [(b["generator_params"], b[col]) for b in best if b["generator"] == kind and b[col]]
            if not pts:
                continue
            x, y = np.array(pts, dtype=float).T
            ax1.scatter(x, y, color=colour, marker=mark, facecolors="none" if mark == "s" else colour,
                        label=f"{kind}, {name}: {dec.get(kind, {}).get('verdict', '')[:40]}")  # fmt: skip
            f = dec.get(kind, {}).get("fit") or {}
            if f and len(pts) >= 3:  # a line through two points is not a fit
                xs = np.linspace(x.min(), x.max(), 50)
                e, pl = f["exponential"], f["polynomial"]
                ax1.plot(xs, np.exp(e["a"] + e["b"] * xs), "--", color=colour, lw=0.8)
                ax1.plot(xs, np.exp(pl["a"]) * xs ** pl["b"], ":", color=colour, lw=0.8)
    ax1.set_yscale("log")
    ax1.set_xlabel("generator parameters")
    ax1.set_ylabel("threshold discriminator parameters")
    if ax1.get_legend_handles_labels()[0]:
        ax1.legend(fontsize=6)
    else:
        ax1.set_title("no generator reached a threshold with the widths tried", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
