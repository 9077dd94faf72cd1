"""`qbm study gradient-variance`, `qbm study spurious-minima`, `qbm study shower-losses`
and `qbm study trainability` (the report of Rudolph et al.'s claims).

The rules that turn measurements into verdicts live in the docstrings of
:mod:`qbm.studies.gradient_variance` (claims 1, 2), :mod:`qbm.studies.spurious`
(claims 3, 4) and :mod:`qbm.studies.shower_losses` (claim 5); every output records the git
commit and content hash of those files, so a verdict can be traced to the rule it used.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import math
import os
import subprocess
from typing import Any

import numpy as np

from qbm.cli_types import positive_int

RULE_FILES = ("gradient_variance.py", "spurious.py", "shower_losses.py")


def rule_provenance() -> dict[str, Any]:
    """Content hash (sha256, 16 hex) of each rule file, and the git commit that last
    changed it and whether the working copy differs from it (when qbm runs from a checkout)."""
    here = os.path.dirname(os.path.abspath(__file__))
    out: dict[str, Any] = {}
    for name in RULE_FILES:
        path = os.path.join(here, name)
        with open(path, "rb") as fh:
            info: dict[str, Any] = {"sha256": hashlib.sha256(fh.read()).hexdigest()[:16]}
        try:
            commit = subprocess.run(
                ["git", "log", "-1", "--format=%H", "--", name], cwd=here, capture_output=True, text=True, timeout=10
            ).stdout.strip()
            dirty = subprocess.run(
                ["git", "status", "--porcelain", "--", name], cwd=here, capture_output=True, text=True, timeout=10
            ).stdout.strip()
            info["commit"] = commit or None
            info["uncommitted_changes"] = bool(dirty)
        except (OSError, subprocess.SubprocessError):
            info["commit"] = None
        out[name] = info
    return out


# ------------------------------------------------------------------ gradient variance
DEPTHS = ("1", "2", "n/2")


def variance_configs(
    ns: list[int], ansatzes: list[str], chunk: int, deep_max: int, *, losses: str = "all", stream: int = 0
) -> dict[int, list]:
    """Per n: the configs (product at depth 0; line / all_to_all at L = 1, 2 and n / 2
    while n <= deep_max), each split into chunks of ``chunk`` draws. ``losses`` and
    ``stream`` enter a config only when not the defaults (the first study's runs keep their keys)."""
    extra: dict[str, Any] = {}
    if losses != "all":
        extra["losses"] = losses
    if stream:
        extra["stream"] = stream
    out: dict[int, list] = {}
    for n in ns:
        cells: list[tuple[str, int]] = []
        for a in ansatzes:
            if a == "product":
                cells.append((a, 0))
                continue
            for d in DEPTHS:
                if d == "n/2" and n > deep_max:
                    continue
                L = n // 2 if d == "n/2" else int(d)
                if (a, L) not in cells:
                    cells.append((a, L))
        out[n] = [{"n": n, "ansatz": a, "layers": L, "draws": chunk, **extra} for a, L in cells]
    return out


def _load_variance_records(out: str) -> tuple[dict[tuple[str, int, int], dict[str, dict[str, np.ndarray]]], set[int]]:
    """(ansatz, layers, n) -> loss key -> {"loss", "grad"} arrays over every finished
    chunk found under ``out``/n=*/runs, and the draw streams they come from."""
    acc: dict[tuple[str, int, int], dict[str, dict[str, list[float]]]] = {}
    streams: set[int] = set()
    for rec in _records(out):
        if rec.get("status") != "ok":
            continue
        c = rec["config"]
        streams.add(int(c.get("stream", 0)))
        cell = acc.setdefault((c["ansatz"], int(c["layers"]), int(c["n"])), {})
        for key, v in rec["result"].items():
            d = cell.setdefault(key, {"loss": [], "grad": []})
            d["loss"].extend(v["loss"])
            d["grad"].extend(v["grad"])
    cells = {k: {key: {m: np.asarray(a) for m, a in v.items()} for key, v in cell.items()} for k, cell in acc.items()}
    return cells, streams


def _depth_label(ansatz: str, layers: int, n: int) -> list[str]:
    if ansatz == "product":
        return ["0"]
    labels = [str(layers)] if layers in (1, 2) else []
    if layers == n // 2:
        labels.append("n/2")
    return labels


def analyse_variance(out: str, *, boot: int = 200) -> dict[str, Any]:
    """Table rows, classified series and the claim verdicts from the records in ``out``."""
    from qbm.studies import gradient_variance as gv
    from qbm.studies.mmd_variance import closed_form_variance

    cells, streams = _load_variance_records(out)
    if len(streams) > 1:
        raise ValueError(f"{out}: holds draws of streams {sorted(streams)}; one stream per output directory")
    stream = streams.pop() if streams else 0
    l_conc = gv.kl_concentrated(gv.ghz_target(2)[1])  # the same value at every n
    rows: list[dict[str, Any]] = []
    series_data: dict[tuple[str, str, str, str], dict[int, np.ndarray]] = {}
    for (ansatz, layers, n), by_loss in sorted(cells.items()):
        for key, v in by_loss.items():
            lv = gv.variance_interval(v["loss"])
            g = gv.variance_interval(v["grad"])
            row = {
                "ansatz": ansatz,
                "layers": layers,
                "n": n,
                "loss": key,
                "draws": g["draws"],
                "loss_var": lv["var"],
                "loss_var_lo": lv["var_lo"],
                "loss_var_hi": lv["var_hi"],
                "grad_var": g["var"],
                "grad_var_lo": g["var_lo"],
                "grad_var_hi": g["var_hi"],
                "grad_zero_fraction": g["zero_fraction"],
            }
            if key.startswith("kl@"):
                row["loss_deviates_fraction"] = float(np.mean(v["loss"] != l_conc))
            if ansatz == "product" and key.startswith("mmd:") and key != "mmd:mix":
                sigma = 1.0 if key == "mmd:1" else n / 4
                row["closed_form_loss_var"] = closed_form_variance(n, sigma, "ghz", moments=gv.PRODUCT_MOMENTS)
            rows.append(row)
            for d in _depth_label(ansatz, layers, n):
                series_data.setdefault((ansatz, d, key, "grad_var"), {})[n] = v["grad"]
                series_data.setdefault((ansatz, d, key, "loss_var"), {})[n] = v["loss"]
                if key.startswith("kl@"):
                    series_data.setdefault((ansatz, d, key, "nonzero"), {})[n] = v["grad"]
                    series_data.setdefault((ansatz, d, key, "loss_deviates"), {})[n] = v["loss"] - l_conc
    classified: dict[tuple[str, Any, str, str], dict[str, Any]] = {}
    for (ansatz, d, key, what), by_n in sorted(series_data.items()):
        ns = sorted(by_n)
        stat = "nonzero" if what in ("nonzero", "loss_deviates") else "var"
        res = gv.classify_series(ns, [by_n[n] for n in ns], stat=stat, boot=boot)
        classified[(ansatz, int(d) if d.isdigit() else d, key, what)] = res
    verdicts = gv.claim_verdicts(classified)  # type: ignore[arg-type]
    return {"rows": rows, "series": classified, "verdicts": verdicts, "stream": stream}


ZERO_FLOOR = 1e-28  # below this a variance is rounding noise around an exact zero (drawn as a censored point)


def _plot_variance(path: str, rows: list[dict[str, Any]], what: str, title: str) -> None:
    """One panel per (ansatz, depth), one line per loss; points whose variance is zero
    (or rounding noise, < 1e-28) are drawn as downward triangles on the panel's floor."""
    from qbm.plotting import _plt

    plt = _plt()
    panels = sorted({(r["ansatz"], r["layers"] if r["layers"] in (0, 1, 2) else -1) for r in rows})
    cols = min(4, len(panels))
    nrows = -(-len(panels) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.3 * cols, 3.7 * nrows), squeeze=False)
    from qbm.studies.gradient_variance import LOSS_KEYS

    for ax, (ansatz, lay) in zip(axes.ravel(), panels):
        sel_all = [
            r
            for r in rows
            if r["ansatz"] == ansatz
            and (r["layers"] == lay if lay >= 0 else r["layers"] == r["n"] // 2 and r["layers"] > 2)
        ]
        pos = [r[what] for r in sel_all if r[what] > ZERO_FLOOR]
        floor = min(pos) / 10 if pos else 1e-12
        for j, key in enumerate(LOSS_KEYS):
            sel = sorted((r for r in sel_all if r["loss"] == key), key=lambda r: r["n"])
            good = [r for r in sel if r[what] > ZERO_FLOOR]
            if good:
                ys = np.array([r[what] for r in good])
                lo = np.minimum(np.array([max(r[what + "_lo"], floor) for r in good]), ys)
                hi = np.maximum(np.array([r[what + "_hi"] for r in good]), ys)
                ax.errorbar(
                    [r["n"] for r in good],
                    ys,
                    yerr=[ys - lo, hi - ys],
                    marker="o",
                    ms=3,
                    capsize=2,
                    color=f"C{j}",
                    label=key,
                )
            zero = [r["n"] for r in sel if r[what] <= ZERO_FLOOR]
            if zero:
                ax.plot(zero, [floor] * len(zero), "v", color=f"C{j}", ms=6, label=f"{key}: zero" if not good else None)
            if what == "loss_var" and good and "closed_form_loss_var" in good[0]:
                ax.plot(
                    [r["n"] for r in sel],
                    [r["closed_form_loss_var"] for r in sel],
                    "--",
                    color=f"C{j}",
                    label=f"{key} closed form (B + 4C)",
                )
        ax.set_yscale("log")
        ax.set_xlabel("qubits n")
        ax.set_title(f"{ansatz}, L = {'n/2' if lay < 0 else lay}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=5, ncol=2)
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    for row in axes:
        row[0].set_ylabel(f"{title}\n(95% bootstrap interval; v = zero)", fontsize=8)
    fig.suptitle(f"{title} at random initialisation, GHZ target", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_zero_fraction(path: str, rows: list[dict[str, Any]]) -> None:
    """KL at finite shots: P(nonzero gradient) and P(loss != its concentrated value) against n."""
    from qbm.plotting import _plt

    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    panels = (
        (lambda r: 1 - r["grad_zero_fraction"], "fraction of draws with a nonzero shot gradient"),
        (lambda r: r.get("loss_deviates_fraction", math.nan), "fraction of draws with loss != sum p log(p / eps)"),
    )
    for ax, (value, label) in zip(axes, panels):
        for j, key in enumerate(("kl@100", "kl@1000", "kl@10000")):
            for ls, (ansatz, lay) in zip(("-", "--", ":"), (("line", 1), ("line", 2), ("all_to_all", 2))):
                sel = sorted(
                    (r for r in rows if r["loss"] == key and r["ansatz"] == ansatz and r["layers"] == lay),
                    key=lambda r: r["n"],
                )
                pts = [(r["n"], value(r)) for r in sel if value(r) > 0]
                if pts:
                    ax.plot(*zip(*pts), ls, marker="o", ms=3, color=f"C{j}", label=f"{key} {ansatz} L={lay}")
        ax.set_yscale("log")
        ax.set_xlabel("qubits n")
        ax.set_ylabel(label, fontsize=8)
        ax.legend(fontsize=6)
        ax.grid(alpha=0.3)
    fig.suptitle("KL at finite shots (GHZ target): how often the estimator leaves its concentrated value", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _series_table(series: dict[tuple, dict[str, Any]]) -> list[str]:
    lines = [
        "| ansatz | L | loss | quantity | n fitted | exp. rate / qubit | power | Akaike w (exp) | class |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (ansatz, d, key, what), s in sorted(series.items(), key=lambda kv: tuple(map(str, kv[0]))):
        fit = s.get("fit", {})
        w = fit.get("exponential", {}).get("akaike_weight", math.nan)
        nfit = len(s["n"]) - len(s["censored_n"])
        rate = s.get("exp_rate_per_qubit", math.nan)
        power = s.get("power", math.nan)
        cls = s["class"]
        lines.append(f"| {ansatz} | {d} | {key} | {what} | {nfit} | {rate:.3f} | {power:.2f} | {w:.2f} | {cls} |")
    return lines


def write_variance_report(out: str, analysis: dict[str, Any]) -> list[str]:
    """variance.csv, series.json, the PNGs; returns the report section's lines."""
    from qbm.studies.runner import write_csv

    rows = analysis["rows"]
    write_csv(os.path.join(out, "variance.csv"), rows)
    ser = {" | ".join(map(str, k)): v for k, v in analysis["series"].items()}
    with open(os.path.join(out, "series.json"), "w") as fh:
        json.dump(
            {"series": ser, "verdicts": analysis["verdicts"], "rules": rule_provenance()}, fh, indent=1, default=float
        )
    _plot_variance(os.path.join(out, "gradient_variance.png"), rows, "grad_var", "Var of d loss / d theta_k")
    _plot_variance(os.path.join(out, "loss_variance.png"), rows, "loss_var", "Var of the loss")
    _plot_zero_fraction(os.path.join(out, "kl_nonzero_gradients.png"), rows)
    ns = sorted({r["n"] for r in rows})
    v = analysis["verdicts"]
    lines = [
        f"## Variance at random initialisation (target GHZ, n = {ns[0]}..{ns[-1]})",
        "",
        f"Draws per point: {min(r['draws'] for r in rows)}-{max(r['draws'] for r in rows)}. "
        "Files: variance.csv, series.json, gradient_variance.png, loss_variance.png, kl_nonzero_gradients.png.",
        "",
        *_series_table(analysis["series"]),
        "",
    ]
    if analysis["stream"] == 0:
        lines += [
            f"- Claim 1 (KL at finite shots concentrates exponentially; rule v1): {v['claim1']}",
            f"- Claim 2 (MMD: sigma = 1 exponential, sigma = n/4 polynomial): {v['claim2']}",
            "",
            "Rule v2 of claim 1 applied to these draws (stream 0, seen before v2 was written, so not its test; "
            f"the test is `--losses kl --stream 1`): {v['claim1_v2']}",
            "",
        ]
    else:
        lines += [
            f"- Claim 1 (KL at finite shots concentrates at log(1/eps); rule v2, fresh stream {analysis['stream']}): "
            f"{v['claim1_v2']}",
            "",
            f"Rule v1 of claim 1 on the same draws, for comparison: {v['claim1']}",
            "",
        ]
    return lines


def cmd_gradient_variance(args: argparse.Namespace) -> int:
    from qbm.studies import cli_common
    from qbm.studies.runner import Study, grid

    if args.draws % args.chunk:
        raise ValueError(f"--draws: must be a multiple of --chunk ({args.chunk}), got {args.draws}")
    per_n = variance_configs(
        sorted(set(args.n)), args.ansatz, args.chunk, args.deep_max, losses=args.losses, stream=args.stream
    )
    chunks = list(range(args.draws // args.chunk))
    os.makedirs(args.out, exist_ok=True)
    total = sum(len(c) for c in per_n.values()) * len(chunks)
    print(
        f"gradient variance: n {sorted(per_n)}, ansatz {args.ansatz}, {args.draws} draws per point "
        f"({total} runs of {args.chunk} draws), losses {args.losses}, draw stream {args.stream} -> {args.out}"
    )
    for n, configs in per_n.items():
        study = Study(f"gradient-variance n={n}", "qbm.studies.gradient_variance:variance_run", grid(configs, chunks))
        sub = argparse.Namespace(**{**vars(args), "out": os.path.join(args.out, f"n={n:02d}")})
        cli_common.run(study, sub, intervals=False)
    return _write_part_report(
        args.out, "Gradient variance", write_variance_report(args.out, analyse_variance(args.out))
    )


def _write_part_report(out: str, title: str, lines: list[str]) -> int:
    """``out``/report.md of one part (the report command reads it back), its verdicts printed."""
    with open(os.path.join(out, "report.md"), "w") as fh:
        fh.write("\n".join([f"# {title}", "", *lines]))
    print("\n".join(line for line in lines if line.startswith("- Claim")))
    print(f"wrote {out}/report.md and the CSV and PNG files beside it")
    return 0


def add_parsers(study: Any) -> None:
    from qbm.cli_types import int_range
    from qbm.studies.cli_common import add_runner_options

    p = study.add_parser("gradient-variance", help="loss and gradient variance at random initialisation vs n")
    p.add_argument("--n", type=int_range(2, 26), nargs="+", default=list(range(4, 25, 2)))
    p.add_argument(
        "--ansatz", nargs="+", default=["product", "line", "all_to_all"], choices=["product", "line", "all_to_all"]
    )
    p.add_argument("--draws", type=positive_int, default=200, help="random initialisations per point")
    p.add_argument("--chunk", type=positive_int, default=50, help="draws per run of the study runner")
    p.add_argument("--deep-max", type=positive_int, default=20, help="largest n with depth L = n/2")
    p.add_argument(
        "--losses", default="all", choices=["all", "kl"], help="kl: the KL losses only (claim 1, rule v2), cheaper"
    )
    p.add_argument(
        "--stream",
        type=int_range(0, 1000),
        default=0,
        help="draw stream: 0 is the first study's; rule v2 of claim 1 is judged on streams >= 1 only",
    )
    p.add_argument("--out", default="runs/gradient-variance")
    add_runner_options(p, seeds=None)
    p.set_defaults(func=cmd_gradient_variance)
    add_spurious_parser(study)
    add_shower_parser(study)


def add_all_parsers(study: Any) -> None:
    """Every study of this module, the report included."""
    add_parsers(study)
    add_report_parser(study)


# ------------------------------------------------------------------ spurious minima
PAIR_SIGMAS = tuple(float(s) for s in np.geomspace(0.05, 100.0, 25))


def pair_rows(n: int, layers: int, model_draws: int = 20) -> list[dict[str, Any]]:
    """Exact MMD^2 of each parity pair (k = 1, n // 2, n - 1; against odd parity and
    against uniform) at the named bandwidths and on a grid, beside the median MMD^2
    between the even-parity target and randomly initialised models."""
    from qbm import mmd
    from qbm.studies import spurious as sp

    rows: list[dict[str, Any]] = []
    labels: list[tuple[str, Any]] = [("1", 1.0), ("n/4", n / 4), ("mix", sp.sigma_value("mix", n))]
    labels += [(f"{s:.4g}", s) for s in PAIR_SIGMAS]
    model = sp.typical_model_mmd2(n, layers, dict(labels), draws=model_draws)
    uni = sp.uniform(n)
    for k in sorted({1, n // 2, n - 1}):
        even, odd = sp.parity_pair(n, k)
        for against, other in (("odd", odd), ("uniform", uni)):
            for lab, sig in labels:
                rows.append(
                    {
                        "n": n,
                        "k": k,
                        "against": against,
                        "sigma": lab,
                        "sigma_value": float(np.mean(sig)) if lab != "mix" else float("nan"),
                        "mmd2_pair": float(mmd.mmd2_exact(even, other, sig)),
                        "mmd2_model": model[lab],
                    }
                )
    return rows


def _plot_pairs(path: str, rows: list[dict[str, Any]]) -> None:
    from qbm.plotting import _plt

    plt = _plt()
    ns = sorted({r["n"] for r in rows})
    fig, axes = plt.subplots(1, len(ns), figsize=(4.6 * len(ns), 4.0), squeeze=False, sharey=True)
    for ax, n in zip(axes[0], ns):
        grid = [r for r in rows if r["n"] == n and r["sigma"] not in ("1", "n/4", "mix")]
        for j, k in enumerate(sorted({r["k"] for r in grid})):
            for ls, against in (("-", "odd"), (":", "uniform")):
                sel = sorted(
                    (r for r in grid if r["k"] == k and r["against"] == against), key=lambda r: r["sigma_value"]
                )
                ax.plot(
                    [r["sigma_value"] for r in sel],
                    [r["mmd2_pair"] for r in sel],
                    ls,
                    color=f"C{j}",
                    label=f"even vs {against}, parity on {k + 1} bits",
                )
        sel = sorted((r for r in grid if r["k"] == n - 1 and r["against"] == "odd"), key=lambda r: r["sigma_value"])
        ax.plot(
            [r["sigma_value"] for r in sel],
            [r["mmd2_model"] for r in sel],
            "k--",
            label="target vs random-init QCBM (median)",
        )
        ax.axvline(n / 4, color="grey", lw=0.8)
        ax.axvline(1.0, color="grey", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("bandwidth sigma (lines at 1 and n/4)")
        ax.set_title(f"n = {n}")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("exact MMD^2")
    axes[0][-1].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_spurious_runs(path: str, recs: list[dict[str, Any]]) -> None:
    from qbm.plotting import _plt
    from qbm.studies.spurious import LOSSES

    plt = _plt()
    ns = sorted({int(r["config"]["n"]) for r in recs})
    fig, axes = plt.subplots(1, len(ns), figsize=(4.6 * len(ns), 4.0), squeeze=False)
    for ax, n in zip(axes[0], ns):
        for j, loss in enumerate(LOSSES):
            sel = [r["result"] for r in recs if int(r["config"]["n"]) == n and r["config"]["loss"] == loss]
            ax.scatter([r["tvd_uniform"] for r in sel], [r["tvd_target"] for r in sel], color=f"C{j}", label=loss, s=18)
        ax.plot([0, 1], [0, 1], color="grey", lw=0.7)
        ax.set_xlabel("final TVD to uniform (spurious)")
        ax.set_ylabel("final TVD to even parity (target)")
        ax.set_title(f"n = {n}: where training ends (one point per seed)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def spurious_section(out: str, recs: list[dict[str, Any]], pairs: list[dict[str, Any]]) -> list[str]:
    from qbm.studies import spurious as sp
    from qbm.studies.runner import aggregate, write_csv

    ok = [r for r in recs if r["status"] == "ok"]
    for r in ok:
        r["result"]["class"] = sp.classify_run(r["result"])
    rows = aggregate(
        ok,
        ["n", "layers", "loss"],
        ["tvd_target", "tvd_uniform", "tvd_odd", "final_loss", "spurious_loss"],
        bounds={k: (0.0, 1.0) for k in ("tvd_target", "tvd_uniform", "tvd_odd")},
    )
    for row in rows:
        cls = [r["result"]["class"] for r in ok if r["config"]["n"] == row["n"] and r["config"]["loss"] == row["loss"]]
        for c in ("reached", "spurious", "elsewhere"):
            row[c] = cls.count(c)
    write_csv(os.path.join(out, "spurious_runs.csv"), rows)
    write_csv(os.path.join(out, "spurious_pairs.csv"), pairs)
    _plot_pairs(os.path.join(out, "spurious_pairs.png"), pairs)
    _plot_spurious_runs(os.path.join(out, "spurious_runs.png"), ok)
    v = sp.claim_verdicts(pairs, ok)
    lines = [
        "## Spurious minima (even-parity target, line ansatz, exact gradients)",
        "",
        "| n | pair (parity bits) | vs | MMD^2 sigma=1 | sigma=n/4 | mixture | model MMD^2 at n/4 |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in pairs:
        if r["sigma"] != "1":
            continue
        at = {q["sigma"]: q for q in pairs if (q["n"], q["k"], q["against"]) == (r["n"], r["k"], r["against"])}
        lines.append(
            f"| {r['n']} | {r['k'] + 1} | {r['against']} | {r['mmd2_pair']:.3g} | {at['n/4']['mmd2_pair']:.3g} "
            f"| {at['mix']['mmd2_pair']:.3g} | {at['n/4']['mmd2_model']:.3g} |"
        )
    lines += [
        "",
        "| n | L | loss | TVD to target | TVD to uniform | TVD to odd | reached / spurious / elsewhere |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']} | {r['layers']} | {r['loss']} | {r['tvd_target_mean']:.3f} [{r['tvd_target_ci_lo']:.3f}, "
            f"{r['tvd_target_ci_hi']:.3f}] | {r['tvd_uniform_mean']:.3f} | {r['tvd_odd_mean']:.3f} "
            f"| {r['reached']} / {r['spurious']} / {r['elsewhere']} |"
        )
    lines += [
        "",
        f"- Claim 3 (low-body MMD blind to high-order correlations, spurious minima): {v['claim3']}",
        f"- Claim 4 (the local fidelity trains where 3 fails): {v['claim4']}",
        "",
        "Files: spurious_pairs.csv/png, spurious_runs.csv/png.",
        "",
    ]
    return lines


def cmd_spurious(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from qbm.studies import cli_common
    from qbm.studies.runner import Study, grid

    os.makedirs(args.out, exist_ok=True)
    layers = {n: (n // 2 if args.layers == "n/2" else int(args.layers)) for n in args.n}
    configs = [{"n": n, "loss": loss, "layers": layers[n], "steps": args.steps} for n in args.n for loss in args.losses]
    study = Study("spurious-minima", "qbm.studies.spurious:spurious_run", grid(configs, args.seeds))
    print(f"spurious minima: n {args.n}, losses {args.losses}, {args.steps} steps, seeds {args.seeds} -> {args.out}")
    pairs: list[dict[str, Any]] = []
    for n in tqdm(args.n, desc="pair MMDs", disable=args.quiet):
        pairs += pair_rows(n, layers[n])
    recs = cli_common.run(study, args)
    return _write_part_report(args.out, "Spurious minima", spurious_section(args.out, recs, pairs))


def add_spurious_parser(study: Any) -> None:
    from qbm.cli_types import int_range
    from qbm.studies.cli_common import add_runner_options
    from qbm.studies.spurious import LOSSES

    p = study.add_parser(
        "spurious-minima", help="parity pairs the MMD cannot see, and where QCBMs trained on parity end"
    )
    p.add_argument("--n", type=int_range(3, 16), nargs="+", default=[6, 8, 10])
    p.add_argument("--layers", default="n/2", help="line ansatz depth: an integer or n/2 (default)")
    p.add_argument("--losses", nargs="+", default=list(LOSSES), choices=list(LOSSES))
    p.add_argument("--steps", type=positive_int, default=1000)
    p.add_argument("--out", default="runs/spurious-minima")
    add_runner_options(p, seeds=5)
    p.set_defaults(func=cmd_spurious)


# ------------------------------------------------------------------ losses on showers
def prepare_teachers(
    out: str, ns: list[int], source: str, teacher_steps: int, steps: int, quiet: bool
) -> dict[int, dict[str, Any]]:
    """Per n: the teacher of the chosen depth (module docstring of
    :mod:`qbm.studies.shower_losses`), cached as teachers/n=NN-L=L.npy and teachers.json."""
    from tqdm import tqdm

    from qbm.models.qcbm import tvd
    from qbm.studies import shower_losses as sl
    from qbm.studies.runner import _write_atomic

    path = os.path.join(out, "teachers.json")
    info: dict[str, Any] = {}
    if os.path.exists(path):
        with open(path) as fh:
            info = json.load(fh)
    os.makedirs(os.path.join(out, "teachers"), exist_ok=True)
    for n in tqdm(ns, desc="teachers and depths", disable=quiet):
        key = f"{n}"
        if key in info and info[key].get("source") == source and info[key].get("teacher_steps") == teacher_steps:
            continue
        showers = sl.shower_target(n, source)
        tried = []
        for L in sl.DEPTHS:
            q = sl.fit_teacher(n, L, showers, teacher_steps)
            tpath = os.path.join(out, "teachers", f"n={n:02d}-L={L}.npy")
            np.save(tpath, q)
            check = sl.student_run(
                {"n": n, "layers": L, "loss": "kl", "shots": 0, "steps": steps, "target_path": tpath}, 0
            )
            tried.append(
                {
                    "layers": L,
                    "exact_kl_final_tvd": check["final_tvd"],
                    "teacher_entropy_bits": sl.entropy_bits(q),
                    "teacher_tvd_to_showers": tvd(q, showers),
                }
            )
            if check["final_tvd"] <= sl.REACH_TVD:
                break
        chosen = tried[-1]
        info[key] = {
            "n": n,
            "source": source,
            "teacher_steps": teacher_steps,
            "layers": chosen["layers"],
            "reached": chosen["exact_kl_final_tvd"] <= sl.REACH_TVD,
            "tried": tried,
            "showers_entropy_bits": sl.entropy_bits(showers),
            "showers_support": int((showers > 0).sum()),
            "target_path": tpath,  # the last depth tried is the one chosen
        }
        _write_atomic(path, info)
    return {n: info[str(n)] for n in ns}


def shower_section(out: str, teachers: dict[int, dict[str, Any]], recs: list[dict[str, Any]], source: str) -> list[str]:
    from qbm.studies import shower_losses as sl
    from qbm.studies.qcbm_studies import shots_plot, target_label
    from qbm.studies.runner import aggregate, write_csv

    ok = [r for r in recs if r["status"] == "ok"]
    rows = aggregate(
        ok,
        ["n", "layers", "shots", "loss"],
        ["final_tvd", "best_tvd", "seconds"],
        bounds={"final_tvd": (0.0, 1.0), "best_tvd": (0.0, 1.0), "seconds": (0.0, None)},
    )
    write_csv(os.path.join(out, "shower_losses.csv"), rows)
    shot_rows = [r for r in rows if r["shots"] > 0]
    if shot_rows:
        shots_plot(
            os.path.join(out, "shower_losses.png"),
            shot_rows,
            "final TVD to the teacher (mean, 95% CI)",
            f"teacher fitted to {target_label(source)}",
        )
    verdict, table = sl.claim5(ok)
    lines = [
        f"## Losses on a reachable shower-like target ({target_label(source)})",
        "",
        "| n | depth L | reached by exact KL | teacher entropy (bits) | teacher TVD to showers "
        "| showers entropy | showers support |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, t in sorted(teachers.items()):
        c = t["tried"][-1]
        lines.append(
            f"| {n} | {t['layers']} | {'yes' if t['reached'] else 'no (capped at 6)'} "
            f"| {c['teacher_entropy_bits']:.2f} "
            f"| {c['teacher_tvd_to_showers']:.3f} | {t['showers_entropy_bits']:.2f} | {t['showers_support']} |"
        )
    lines += [
        "",
        "| n | L | shots | loss | final TVD (mean, 95% CI) | seeds | s/run |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        sh = "exact" if r["shots"] == 0 else f"{r['shots']:g}"
        lines.append(
            f"| {r['n']} | {r['layers']} | {sh} | {r['loss']} | {r['final_tvd_mean']:.3f} [{r['final_tvd_ci_lo']:.3f}, "
            f"{r['final_tvd_ci_hi']:.3f}] | {r['seeds']} | {r['seconds_mean']:.1f} |"
        )
    lines += ["", "| n | shots | lowest mean TVD | separated from the runner-up (Welch 95%) |", "|---|---|---|---|"]
    for t in table:
        sh = "exact" if t["shots"] == 0 else f"{t['shots']:g}"
        lines.append(f"| {t['n']} | {sh} | {t['best']} | {t.get('best_separated', 'n/a')} |")
    lines += [
        "",
        f"- Claim 5 (on showers, KL at finite shots fails below ~1e3 shots while MMD works): {verdict}",
        "",
        "Files: shower_losses.csv/png, teachers.json, teachers/*.npy.",
        "",
    ]
    return lines


def _records(out: str) -> list[dict[str, Any]]:
    """Every run record under ``out``/n=*/runs."""
    recs = []
    for path in sorted(glob.glob(os.path.join(out, "n=*", "runs", "*.json"))):
        with open(path) as fh:
            recs.append(json.load(fh))
    return recs


def cmd_shower_losses(args: argparse.Namespace) -> int:
    from qbm.studies import cli_common
    from qbm.studies.runner import Study, grid

    os.makedirs(args.out, exist_ok=True)
    print(
        f"shower losses: n {args.n}, shots {args.shots} and exact, losses {args.losses}, {args.steps} steps, "
        f"seeds {args.seeds}, target: teacher fitted to {args.source} -> {args.out}"
    )
    teachers = prepare_teachers(args.out, args.n, args.source, args.teacher_steps, args.steps, args.quiet)
    for n in args.n:
        configs = [
            {
                "n": n,
                "layers": teachers[n]["layers"],
                "loss": loss,
                "shots": s,
                "steps": args.steps,
                "target_path": teachers[n]["target_path"],
                "source": args.source,
            }
            for s in [0, *args.shots]  # the exact-gradient ceiling first, then by cost
            for loss in args.losses
        ]
        study = Study(f"shower-losses n={n}", "qbm.studies.shower_losses:student_run", grid(configs, args.seeds))
        cli_common.run(study, argparse.Namespace(**{**vars(args), "out": os.path.join(args.out, f"n={n:02d}")}))
    # every n studied in this directory so far (a later call may add n)
    recs = _records(args.out)
    with open(os.path.join(args.out, "teachers.json")) as fh:
        teachers = {int(k): v for k, v in json.load(fh).items() if any(int(r["config"]["n"]) == int(k) for r in recs)}
    return _write_part_report(args.out, "Losses on showers", shower_section(args.out, teachers, recs, args.source))


def add_shower_parser(study: Any) -> None:
    from qbm.cli_types import int_range, shots_int
    from qbm.studies.cli_common import add_runner_options

    p = study.add_parser("shower-losses", help="KL / MMD / fidelity at finite shots on a reachable shower-like target")
    p.add_argument("--n", type=int_range(2, 20), nargs="+", default=[4, 9, 12, 16])
    p.add_argument("--source", default="showers", help="showers (GP stand-in) or calo:PATH (real CLIC file)")
    p.add_argument("--shots", type=shots_int, nargs="+", default=[100, 1000, 10000])
    p.add_argument("--losses", nargs="+", default=["kl", "mmd", "fidelity"], choices=["kl", "mmd", "fidelity"])
    p.add_argument("--steps", type=positive_int, default=1000)
    p.add_argument("--teacher-steps", type=positive_int, default=2000)
    p.add_argument("--out", default="runs/shower-losses")
    add_runner_options(p, seeds=5)
    p.set_defaults(func=cmd_shower_losses)


# ------------------------------------------------------------------ the report
PARTS = {  # output sub-directory -> the study command that fills it
    "gradient-variance": "gradient-variance",
    "claim1-stream1": "gradient-variance",
    "spurious-minima": "spurious-minima",
    "shower-losses": "shower-losses",
}
CLAIM1_V2 = ["--ansatz", "line", "--deep-max", "2", "--losses", "kl", "--stream", "1"]
BUDGETS = {
    # variance to n = 24 (L = n/2 to n = 20), 200 draws; the paper's HEP protocol. With the blocked, fused
    # engine a draw at n = 24 takes about 8 s on one idle core (2.2-2.7 core-hours for its 5 cells, 1.7 GB
    # per worker), n <= 22 about 1.2 core-hours together
    "paper": {
        "gradient-variance": ["--n", *map(str, range(4, 25, 2))],
        # claim 1's rule v2 on fresh draws: KL only, line ansatz, L = 1, 2 (about 1 core-hour, most of it at n = 24)
        "claim1-stream1": [*CLAIM1_V2, "--n", *map(str, range(4, 25, 2))],
        "spurious-minima": [],
        "shower-losses": [],
    },
    "smoke": {
        "gradient-variance": [
            "--n",
            "4",
            "5",
            "6",
            "7",
            "8",
            "--draws",
            "40",
            "--chunk",
            "20",
            "--ansatz",
            "product",
            "line",
        ],
        "claim1-stream1": [*CLAIM1_V2, "--n", "4", "5", "6", "7", "8", "--draws", "40", "--chunk", "20"],
        "spurious-minima": ["--n", "6", "--steps", "200", "--seeds", "0", "1", "2"],
        "shower-losses": [
            "--n",
            "4",
            "9",
            "--steps",
            "100",
            "--teacher-steps",
            "300",
            "--shots",
            "100",
            "1000",
            "--seeds",
            "0",
            "1",
            "2",
        ],
    },
}


def cmd_trainability(args: argparse.Namespace) -> int:
    """Run the parts (each resumable in its own sub-directory) and write report.md."""
    parser = argparse.ArgumentParser(prog="qbm study")
    sub = parser.add_subparsers()
    add_parsers(sub)
    runner = ["--engine", args.engine, "--threads-per-run", str(args.threads_per_run)]
    runner += ["--workers", str(args.workers)] if args.workers else []
    runner += ["--address", args.address] if args.address else []
    runner += ["--quiet"] if args.quiet else []
    os.makedirs(args.out, exist_ok=True)
    sections: list[str] = []
    verdicts: list[str] = []
    for part, command in PARTS.items():
        if part in args.skip:
            continue
        out = os.path.join(args.out, part)
        if args.report_only:
            if not os.path.exists(os.path.join(out, "report.md")):
                print(f"== {part}: no report in {out}; left out")
                continue
        else:
            print(f"== {part} -> {out}")
            pargs = parser.parse_args([command, "--out", out, *BUDGETS[args.budget][part], *runner])
            pargs.func(pargs)
        with open(os.path.join(out, "report.md")) as fh:
            body = fh.read().splitlines()[2:]
        sections += [line.replace("Files: ", f"Files (in {part}/): ") for line in body]
        verdicts += [line for line in body if line.startswith("- Claim")]
    prov = rule_provenance()
    head = [
        "# Trainability of quantum generative models (Rudolph et al. 2024): report",
        "",
        ("Budget: as each part last ran (--report-only). " if args.report_only else f"Budget: {args.budget}. ")
        + "Rules: the docstrings of qbm.studies.gradient_variance (claims 1, 2), "
        "qbm.studies.spurious (3, 4) and qbm.studies.shower_losses (5).",
        "",
        "| rule file | git commit | uncommitted changes | sha256 (16) |",
        "|---|---|---|---|",
    ]
    for name, info in prov.items():
        head.append(
            f"| {name} | {info.get('commit') or 'not a git checkout'} | {info.get('uncommitted_changes', 'n/a')} "
            f"| {info['sha256']} |"
        )
    if args.budget == "smoke" and not args.report_only:
        head += [
            "",
            "Smoke budget: n, draws, steps and seeds far below the rules' needs; the verdicts below show"
            " the machinery, they do not decide the claims.",
        ]
    head += ["", "## Verdicts", "", *verdicts, ""]
    path = os.path.join(args.out, "report.md")
    with open(path, "w") as fh:
        fh.write("\n".join(head + sections))
    print("\n".join(verdicts))
    print(f"wrote {path}")
    return 0


def add_report_parser(study: Any) -> None:
    from qbm.studies.cli_common import add_runner_options

    p = study.add_parser("trainability", help="the trainability report: variance, spurious minima, losses on showers")
    p.add_argument(
        "--budget", default="paper", choices=list(BUDGETS), help="paper: the issue's budgets (hours); smoke: minutes"
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="write report.md from the parts' reports already in --out; run nothing",
    )
    p.add_argument("--skip", nargs="*", default=[], choices=list(PARTS))
    p.add_argument("--out", default="runs/trainability")
    add_runner_options(p, seeds=None)
    p.set_defaults(func=cmd_trainability)
