"""The study runner: a study is a list of independent runs, each a plain function of
(config, seed), spread over a local process pool or a Ray cluster.

* Resumable: every finished run writes its record atomically to
  ``OUT/runs/<key>.json``; rerunning the same study into ``OUT`` skips finished runs
  and retries only failed ones. A different study spec in a directory that holds one
  is refused unless ``force=True``.
* Failures are data: a run that raises is recorded with its error and traceback, and
  the study goes on.
* Reproducible: each run pins torch's and qbm's threads (``threads_per_run``) before it
  starts, so a run gives the same bits on either engine and after a resume.
* Engines: ``"local"`` (a ``spawn`` process pool, workers x threads_per_run <= cores) and
  ``"ray"`` (``address=None`` starts a local Ray; ``address="auto"`` or ``"ray://..."``
  joins a cluster; one CPU x threads_per_run per task).

:func:`aggregate` turns records into per-point mean, standard error and a 95% t
interval over seeds; :func:`write_csv` and :func:`errorbar_plot` write CSV and PNG.
"""

from __future__ import annotations

import csv
import hashlib
import importlib
import json
import math
import os
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from qbm._atomic import write_bytes_atomic

SPEC_FILE = "study.json"
RUNS_DIR = "runs"


@dataclass(frozen=True)
class Run:
    """One unit of a study: ``fn(config, seed)`` returns a JSON-able dict."""

    config: dict[str, Any]
    seed: int

    @property
    def key(self) -> str:
        blob = json.dumps({"config": self.config, "seed": self.seed}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class Study:
    """``fn`` is ``"module:function"`` (importable in a worker process)."""

    name: str
    fn: str
    runs: list[Run]
    meta: dict[str, Any] = field(default_factory=dict)

    def spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "fn": self.fn,
            "runs": sorted(r.key for r in self.runs),
            "meta": self.meta,
        }


def grid(configs: Iterable[dict[str, Any]], seeds: Iterable[int]) -> list[Run]:
    """Every config with every seed."""
    seeds = list(seeds)
    return [Run(dict(c), int(s)) for c in configs for s in seeds]


# ----------------------------------------------------------------- executing one run
def _resolve(fn: str) -> Callable[[dict[str, Any], int], dict[str, Any]]:
    mod, _, name = fn.partition(":")
    return getattr(importlib.import_module(mod), name)


def pin_threads(threads: int) -> None:
    """Pin torch's and qbm's thread counts for the run in this process."""
    os.environ["QBM_NUM_THREADS"] = str(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


def execute(fn: str, config: dict[str, Any], seed: int, threads: int) -> dict[str, Any]:
    """Run one unit and return its record (never raises for the run's own errors)."""
    pin_threads(threads)
    t0 = time.perf_counter()
    try:
        result = _resolve(fn)(dict(config), int(seed))
        status, error = "ok", None
    except Exception as e:  # noqa: BLE001 - a failed run is recorded, the study goes on
        result, status = None, "failed"
        error = {"type": type(e).__name__, "message": str(e), "traceback": traceback.format_exc()}
    return {
        "config": config,
        "seed": seed,
        "status": status,
        "result": result,
        "error": error,
        "seconds": time.perf_counter() - t0,
        "pid": os.getpid(),
    }


def _write_atomic(path: str, obj: Any) -> None:
    write_bytes_atomic(path, json.dumps(obj, indent=1, default=_json_default).encode(), suffix=".json")


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# ------------------------------------------------------------------- the study directory
def open_study_dir(study: Study, out: str, *, force: bool = False) -> None:
    """Create ``out`` for ``study`` or check that it holds the same study."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out: {out!r} is a file, not a directory")
    os.makedirs(os.path.join(out, RUNS_DIR), exist_ok=True)
    spec_path = os.path.join(out, SPEC_FILE)
    spec = study.spec()
    if os.path.exists(spec_path):
        with open(spec_path) as fh:
            try:
                old = json.load(fh)
            except json.JSONDecodeError:
                old = None
        if old != json.loads(json.dumps(spec, default=str)):
            if not force:
                raise ValueError(
                    f"--out: {out!r} holds a different study ({(old or {}).get('name', '?')}); rerunning the same "
                    "study there resumes it, a different one needs another --out or --force (which discards it)"
                )
            for f in os.listdir(os.path.join(out, RUNS_DIR)):
                os.unlink(os.path.join(out, RUNS_DIR, f))
    _write_atomic(spec_path, spec)


def load_records(study: Study, out: str) -> dict[str, dict[str, Any]]:
    """Records on disk for this study's runs, by run key."""
    recs = {}
    for r in study.runs:
        p = os.path.join(out, RUNS_DIR, f"{r.key}.json")
        if os.path.exists(p):
            try:
                with open(p) as fh:
                    recs[r.key] = json.load(fh)
            except json.JSONDecodeError:
                continue  # a torn file cannot exist (atomic writes), but be safe: rerun it
    return recs


def default_workers(threads_per_run: int) -> int:
    from qbm import _core

    return max(1, _core.default_threads() // max(1, threads_per_run))


def run_study(
    study: Study,
    out: str,
    *,
    engine: str = "local",
    workers: int | None = None,
    threads_per_run: int = 1,
    address: str | None = None,
    force: bool = False,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Run every unfinished run of ``study`` into ``out``; returns all records (in the
    study's run order), finished earlier or now."""
    from tqdm import tqdm

    if engine not in ("local", "ray"):
        raise ValueError(f"engine: unknown engine {engine!r}; choose 'local' or 'ray'")
    open_study_dir(study, out, force=force)
    done = load_records(study, out)
    todo = [r for r in study.runs if done.get(r.key, {}).get("status") != "ok"]
    n_ok = len(study.runs) - len(todo)
    bar = tqdm(total=len(study.runs), initial=n_ok, desc=f"{study.name} runs", unit="run", disable=not progress)

    def record(run: Run, rec: dict[str, Any]) -> None:
        rec["key"] = run.key
        _write_atomic(os.path.join(out, RUNS_DIR, f"{run.key}.json"), rec)
        done[run.key] = rec
        bar.update(1)
        if rec["status"] != "ok":
            bar.write(f"run {run.key} (seed {run.seed}) failed: {rec['error']['type']}: {rec['error']['message']}")

    try:
        if todo:
            if engine == "local":
                _run_local(study, todo, record, workers or default_workers(threads_per_run), threads_per_run)
            else:
                _run_ray(study, todo, record, address, threads_per_run)
    finally:
        bar.close()
    return [done[r.key] for r in study.runs if r.key in done]


def _run_local(study: Study, todo: list[Run], record: Callable, workers: int, threads: int) -> None:
    if workers <= 1:
        for r in todo:
            record(r, execute(study.fn, r.config, r.seed, threads))
        return
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futs = {pool.submit(execute, study.fn, r.config, r.seed, threads): r for r in todo}
        pending = set(futs)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in finished:
                record(futs[f], f.result())


def _run_ray(study: Study, todo: list[Run], record: Callable, address: str | None, threads: int) -> None:
    try:
        import ray
    except ImportError:
        raise ValueError("engine: 'ray' needs Ray (pip install 'qbm[ray]')") from None
    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, ignore_reinit_error=True, logging_level="ERROR")
        else:
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, ignore_reinit_error=True, logging_level="ERROR")
        started = True
    try:
        remote = ray.remote(num_cpus=threads, max_retries=0)(execute)
        refs = {remote.remote(study.fn, r.config, r.seed, threads): r for r in todo}
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                record(refs[ref], ray.get(ref))
    finally:
        if started:
            ray.shutdown()


# ------------------------------------------------------------------------ aggregation
def t_quantile(df: int, q: float = 0.975) -> float:
    from scipy import stats

    return float(stats.t.ppf(q, df)) if df >= 1 else float("nan")


def summarise(values: Sequence[float]) -> dict[str, float]:
    """mean, standard error, 95% t interval and count of finite values."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    n = len(v)
    if n == 0:
        return {"n": 0, "mean": float("nan"), "se": float("nan"), "ci_lo": float("nan"), "ci_hi": float("nan")}
    mean = sum(v) / n
    if n == 1:
        return {"n": 1, "mean": mean, "se": float("nan"), "ci_lo": float("nan"), "ci_hi": float("nan")}
    sd = math.sqrt(sum((x - mean) ** 2 for x in v) / (n - 1))
    se = sd / math.sqrt(n)
    h = t_quantile(n - 1) * se
    return {"n": n, "mean": mean, "se": se, "ci_lo": mean - h, "ci_hi": mean + h}


def aggregate(records: Iterable[dict[str, Any]], by: Sequence[str], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """Group finished runs by the config keys ``by`` and summarise each metric of their
    results over seeds: columns ``<metric>_mean``, ``_se``, ``_ci_lo``, ``_ci_hi``, ``_n``;
    ``failed`` counts failed runs of the point."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    failed: dict[tuple, int] = {}
    for rec in records:
        k = tuple(json.dumps(rec["config"].get(b), default=str) for b in by)
        if rec["status"] != "ok":
            failed[k] = failed.get(k, 0) + 1
            continue
        groups.setdefault(k, []).append(rec)
    rows = []
    for k in sorted(set(groups) | set(failed), key=lambda t: [json.loads(x) if x != "null" else "" for x in t]):
        recs = groups.get(k, [])
        row: dict[str, Any] = {b: json.loads(v) for b, v in zip(by, k)}
        row["seeds"] = len(recs)
        row["failed"] = failed.get(k, 0)
        for m in metrics:
            s = summarise([r["result"].get(m) for r in recs if r["result"] is not None])
            for stat, val in s.items():
                row[f"{m}_{stat}"] = val
        rows.append(row)
    return rows


def write_csv(path: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    keys: list[str] = []
    for r in rows:
        for k in r:
            if k not in keys:
                keys.append(k)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def errorbar_plot(
    path: str,
    rows: list[dict[str, Any]],
    *,
    x: str,
    metric: str,
    series: str | None = None,
    panels: str | None = None,
    xlog: bool = False,
    ylog: bool = False,
    xlabel: str | None = None,
    ylabel: str | None = None,
    title: str = "",
) -> None:
    """Mean with 95% interval bars of ``metric`` against ``x``, one line per ``series``
    value, one panel per ``panels`` value."""
    from qbm.plotting import _plt

    plt = _plt()
    pvals = sorted({r[panels] for r in rows}, key=str) if panels else [None]
    fig, axes = plt.subplots(1, len(pvals), figsize=(4.6 * len(pvals), 3.8), squeeze=False)
    for ax, pv in zip(axes[0], pvals):
        sel = [r for r in rows if panels is None or r[panels] == pv]
        svals = sorted({r[series] for r in sel}, key=str) if series else [None]
        for sv in svals:
            pts = sorted((r for r in sel if series is None or r[series] == sv), key=lambda r: r[x])
            xs = [r[x] for r in pts]
            ys = [r[f"{metric}_mean"] for r in pts]
            lo = [r[f"{metric}_mean"] - r[f"{metric}_ci_lo"] if math.isfinite(r[f"{metric}_ci_lo"]) else 0 for r in pts]
            hi = [r[f"{metric}_ci_hi"] - r[f"{metric}_mean"] if math.isfinite(r[f"{metric}_ci_hi"]) else 0 for r in pts]
            ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=None if sv is None else str(sv))
        if xlog:
            ax.set_xscale("log")
        if ylog:
            ax.set_yscale("log")
        ax.set_xlabel(xlabel or x)
        ax.set_ylabel(ylabel or metric)
        ax.set_title(f"{title}{'' if pv is None else f' {panels}={pv}'}".strip())
        if series:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------- a small demo study
def demo_run(config: dict[str, Any], seed: int) -> dict[str, Any]:
    """A real, quick run for tests and examples: Gibbs on a small random glass at
    ``config["beta"]``; returns the mean energy and the torch thread count it ran with.
    ``config["fail_if_exists"]``: a path; the run raises while that file exists."""
    import numpy as np
    import torch

    from qbm import IsingModel
    from qbm.samplers import GibbsSampler

    flag = config.get("fail_if_exists")
    if flag and os.path.exists(flag):
        raise RuntimeError(f"failing on purpose while {flag} exists")
    if config.get("sleep"):
        time.sleep(float(config["sleep"]))
    rng = np.random.default_rng(config.get("model_seed", 0))
    n = int(config.get("n", 12))
    j = np.triu(rng.normal(size=(n, n)), 1)
    m = IsingModel(rng.normal(size=n) * 0.1, j + j.T)
    r = GibbsSampler().sample_model(m, beta=float(config["beta"]), num_reads=64, num_sweeps=50, seed=seed)
    x = torch.randn(50, generator=torch.Generator().manual_seed(seed)).sum().item()
    return {"mean_energy": float(r.energies.mean()), "torch_value": x, "torch_threads": torch.get_num_threads()}
