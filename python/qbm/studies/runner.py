"""The study runner: a study is a list of independent runs, each a plain function of
(config, seed), spread over a local process pool or a Ray cluster.

* Resumable: every finished run writes its record atomically to
  ``OUT/runs/<key>.json``; rerunning the same study into ``OUT`` skips finished runs
  and retries only failed ones. A different study spec in a directory that holds one
  is refused unless ``force=True``.
* Failures are data: a run that raises, returns something that is not a JSON-able dict,
  or whose worker dies is recorded as failed with its error, and the study goes on; the
  finished runs are never touched. A malformed record on disk (torn, edited, from another
  version) is moved to ``OUT/quarantine/`` and its run computed again.
* A well-behaved parent: Ctrl-C (SIGINT) or SIGTERM stops every worker within about a
  second and keeps every record finished so far; workers die with their parent even when
  it is killed with SIGKILL (on Linux by ``PR_SET_PDEATHSIG``; elsewhere a watchdog thread
  in each worker notices the parent is gone within a second). Ray tasks share the
  driver's fate through Ray itself (a job's workers are killed when its driver exits).
* Refused up front, before any run starts: duplicate runs (the same seed twice),
  ``threads_per_run`` beyond the cores (or beyond every Ray node's CPUs), an engine or
  Ray address that does not answer (within seconds), and whatever ``Study.preflight``
  checks (data paths, output paths).
* Reproducible: each run pins torch's and qbm's threads (``threads_per_run``) before it
  starts, so a run gives the same bits on either engine and after a resume.
* Never silent: a run may call :func:`report_progress` ("epoch 3/8", "final evaluation");
  the driver shows the latest line of every run in flight beside the study's bar (through
  ``OUT/runs/<key>.progress`` files, at most one write a second per run; removed when the
  run's record is written). Outside a study the call does nothing.
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
import numbers
import os
import signal
import statistics
import socket
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from qbm._atomic import write_bytes_atomic

SPEC_FILE = "study.json"
RUNS_DIR = "runs"
PROGRESS_SUFFIX = ".progress"
# where report_progress sends a running run's line (set by execute for the run's duration)
_PROGRESS_SINK: ContextVar[Callable[[str], None] | None] = ContextVar("qbm_run_progress", default=None)


def report_progress(text: str) -> None:
    """Say where the current study run is (one short line, shown beside the study's bar);
    does nothing outside a study run, and never raises for the study's bookkeeping."""
    sink = _PROGRESS_SINK.get()
    if sink is not None:
        try:
            sink(str(text))
        except OSError:
            pass


def _file_sink(path: str, every: float = 1.0) -> Callable[[str], None]:
    last = [-math.inf]

    def write(text: str) -> None:
        now = time.monotonic()
        if now - last[0] < every:
            return
        last[0] = now
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            fh.write(text[:200])
        os.replace(tmp, path)

    return write


def progress_path(out: str, run: Run) -> str:
    return os.path.join(out, RUNS_DIR, run.key + PROGRESS_SUFFIX)


def _read_progress(paths: dict[str, str]) -> str:
    """The runs' latest lines, "label: line | ..." (runs that said nothing yet are left out)."""
    parts = []
    for label, p in paths.items():
        try:
            with open(p) as fh:
                line = fh.read().strip()
        except OSError:
            continue
        if line:
            parts.append(f"{label}: {line}")
    return " | ".join(parts)


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
    #: called once in the parent before any run starts (and before the study directory
    #: is made); raises ``ValueError`` naming the flag when a run could not succeed
    #: (a missing data path, say). Not part of the spec.
    preflight: Callable[[], None] | None = field(default=None, compare=False, repr=False)

    def spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "fn": self.fn,
            "runs": sorted(r.key for r in self.runs),
            "meta": self.meta,
        }


def check_seeds(seeds: Iterable[Any]) -> list[int]:
    """Seeds as ints: at least one, each a distinct non-negative integer (a repeated
    seed would repeat a run and count it twice in an interval)."""
    seeds = list(seeds)
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral):
            raise TypeError(f"--seeds: seeds must be integers, got {s!r}")
        if int(s) < 0:
            raise ValueError(f"--seeds: seeds must be >= 0, got {s}")
    dups = sorted(s for s, k in Counter(int(s) for s in seeds).items() if k > 1)
    if dups:
        raise ValueError(f"--seeds: duplicate seed(s) {dups}; each seed of a point must be different")
    if not seeds:
        raise ValueError("--seeds: at least one seed is needed")
    return [int(s) for s in seeds]


def grid(configs: Iterable[dict[str, Any]], seeds: Iterable[int]) -> list[Run]:
    """Every config with every seed (checked by :func:`check_seeds`)."""
    seeds = check_seeds(seeds)
    return [Run(dict(c), s) for c in configs for s in seeds]


def check_runs(runs: Sequence[Run]) -> None:
    """Refuse a study that lists the same (config, seed) twice."""
    seen: set[str] = set()
    for r in runs:
        if r.key in seen:
            raise ValueError(f"runs: the run (seed {r.seed}, config {r.config}) is listed twice")
        seen.add(r.key)


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


def execute(
    fn: str,
    config: dict[str, Any],
    seed: int,
    threads: int,
    progress_file: str | None = None,
    sink: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run one unit and return its record (never raises for the run's own errors). The
    run's :func:`report_progress` lines go to ``sink``, else to ``progress_file``."""
    pin_threads(threads)
    t0 = time.perf_counter()
    token = _PROGRESS_SINK.set(sink or (_file_sink(progress_file) if progress_file else None))
    try:
        result = _resolve(fn)(dict(config), int(seed))
        status, error = "ok", None
    except Exception as e:  # noqa: BLE001 - a failed run is recorded, the study goes on
        result, status = None, "failed"
        error = {"type": type(e).__name__, "message": str(e), "traceback": traceback.format_exc()}
    finally:
        _PROGRESS_SINK.reset(token)
    if status == "ok":
        # validated here, in the worker: what comes back is plain JSON (a dict), so a
        # result that cannot be stored fails this run only, never the study
        try:
            if not isinstance(result, dict):
                raise TypeError(f"a run must return a dict, got {type(result).__name__}")
            result = json.loads(json.dumps(result, default=_json_default))
        except (TypeError, ValueError) as e:
            result, status = None, "failed"
            error = {"type": "InvalidResult", "message": f"the run's result cannot be recorded: {e}",
                     "traceback": traceback.format_exc()}  # fmt: skip
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
    data = json.dumps(obj, indent=1, default=_json_default).encode()
    with _deferred_interrupts():  # a finished run's record is written whole, even on Ctrl-C
        write_bytes_atomic(path, data, suffix=".json")


class _deferred_interrupts:
    """In the main thread, hold Ctrl-C and SIGTERM until the block ends, then raise
    KeyboardInterrupt (elsewhere a no-op)."""

    def __enter__(self) -> None:
        self.got: list[int] = []
        self.old: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.old[sig] = signal.signal(sig, lambda signum, frame: self.got.append(signum))

    def __exit__(self, *exc: Any) -> None:
        for sig, h in self.old.items():
            signal.signal(sig, h)
        if self.got and exc[0] is None:
            raise KeyboardInterrupt(f"signal {self.got[0]}")


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


QUARANTINE_DIR = "quarantine"


def valid_record(rec: Any, run: Run) -> str | None:
    """Why ``rec`` is not a usable record of ``run`` (None when it is)."""
    if not isinstance(rec, dict):
        return f"not a JSON object ({type(rec).__name__})"
    if rec.get("status") not in ("ok", "failed"):
        return f"status {rec.get('status')!r} is not 'ok' or 'failed'"
    if rec.get("seed") != run.seed:
        return f"seed {rec.get('seed')!r} is not the run's {run.seed}"
    if Run(rec.get("config"), run.seed).key != run.key:  # the run key's canonical form of the config
        return "its config is not the run's"
    if rec["status"] == "ok" and not isinstance(rec.get("result"), dict):
        return "status 'ok' without a result object"
    if rec["status"] == "failed" and not isinstance(rec.get("error"), dict):
        return "status 'failed' without an error object"
    return None


def load_records(study: Study, out: str, *, quiet: bool = False) -> dict[str, dict[str, Any]]:
    """Records on disk for this study's runs, by run key. A record that is not valid
    JSON or not a record of its run is moved to ``out/quarantine/`` (with a warning) so
    that its run is computed again; nothing is deleted."""
    recs = {}
    for r in study.runs:
        p = os.path.join(out, RUNS_DIR, f"{r.key}.json")
        if not os.path.exists(p):
            continue
        try:
            with open(p) as fh:
                rec = json.load(fh)
            why = valid_record(rec, r)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            why = f"not valid JSON ({e})"
        except OSError as e:
            why = f"cannot be read ({e})"
        if why is None:
            recs[r.key] = rec
            continue
        qdir = os.path.join(out, QUARANTINE_DIR)
        os.makedirs(qdir, exist_ok=True)
        dest = os.path.join(qdir, f"{r.key}.{time.strftime('%Y%m%dT%H%M%S')}.{os.getpid()}.json")
        os.replace(p, dest)
        msg = f"run record {p} is malformed ({why}); moved to {dest}, the run will be computed again"
        if not quiet:
            print(f"warning: {msg}", file=sys.stderr)
    return recs


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def default_workers(threads_per_run: int) -> int:
    return max(1, available_cores() // max(1, threads_per_run))


def check_threads(threads_per_run: Any, workers: Any, engine: str) -> None:
    if isinstance(threads_per_run, bool) or not isinstance(threads_per_run, numbers.Integral) or threads_per_run < 1:
        raise ValueError(f"--threads-per-run: must be an integer >= 1, got {threads_per_run!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 1):
        raise ValueError(f"--workers: must be an integer >= 1, got {workers!r}")
    cores = available_cores()
    if engine == "local" and threads_per_run > cores:
        raise ValueError(
            f"--threads-per-run: {threads_per_run} threads per run, but this machine gives the process {cores} cores"
        )


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
    study's run order), finished earlier or now.

    Everything a run needs is checked before the first one starts (raises ``ValueError``
    naming the option). Ctrl-C / SIGTERM stop the workers and raise ``KeyboardInterrupt``
    after every record finished so far is on disk."""
    from tqdm import tqdm

    if engine not in ("local", "ray"):
        raise ValueError(f"--engine: unknown engine {engine!r}; choose 'local' or 'ray'")
    if address is not None and engine != "ray":
        raise ValueError("--address: only with --engine ray")
    check_threads(threads_per_run, workers, engine)
    check_runs(study.runs)
    if study.preflight is not None:
        study.preflight()
    if engine == "ray":
        check_ray_address(address)
    open_study_dir(study, out, force=force)
    done = load_records(study, out, quiet=not progress)
    todo = [r for r in study.runs if done.get(r.key, {}).get("status") != "ok"]
    n_ok = len(study.runs) - len(todo)
    bar = tqdm(total=len(study.runs), initial=n_ok, desc=f"{study.name} runs", unit="run", disable=not progress)

    def show(text: str) -> None:
        bar.set_postfix_str(text[:160], refresh=True)

    def record(run: Run, rec: dict[str, Any]) -> None:
        rec["key"] = run.key
        try:
            os.remove(progress_path(out, run))
        except OSError:
            pass
        try:
            _write_atomic(os.path.join(out, RUNS_DIR, f"{run.key}.json"), rec)
        except (TypeError, ValueError) as e:  # validated in the worker; a last guard
            rec = {**_failed(run, str(e), "InvalidResult"), "seconds": rec.get("seconds"), "key": run.key}
            _write_atomic(os.path.join(out, RUNS_DIR, f"{run.key}.json"), rec)
        done[run.key] = rec
        bar.update(1)
        if rec["status"] != "ok":
            bar.write(f"run {run.key} (seed {run.seed}) failed: {rec['error']['type']}: {rec['error']['message']}")

    try:
        with _sigterm_as_interrupt():
            if todo:
                if engine == "local":
                    _run_local(study, todo, record, workers or default_workers(threads_per_run), threads_per_run,
                               out=out, show=show)  # fmt: skip
                else:
                    _run_ray(study, todo, record, address, threads_per_run, out=out, show=show)
    finally:
        bar.close()
    return [done[r.key] for r in study.runs if r.key in done]


class _sigterm_as_interrupt:
    """While running a study in the main thread, SIGTERM behaves like Ctrl-C."""

    def __enter__(self) -> None:
        self.old = None
        if threading.current_thread() is threading.main_thread():
            self.old = signal.signal(signal.SIGTERM, self._raise)

    @staticmethod
    def _raise(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    def __exit__(self, *exc: Any) -> None:
        if self.old is not None:
            signal.signal(signal.SIGTERM, self.old)


# ----------------------------------------------------------------- the local engine
def _die_with_parent(parent_pid: int) -> None:
    """Make this worker die when its parent does, even by SIGKILL.

    Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, then a check that the parent did not
    die before the call. Everywhere (and as a second line on Linux): a daemon thread
    that exits the process once ``getppid()`` changes (checked every 0.5 s)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - no libc symbol
            pass
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="qbm-parent-watch", daemon=True).start()


def _worker_init(parent_pid: int) -> None:
    # Ctrl-C in a terminal reaches the whole process group: workers ignore it and are
    # stopped by the parent, which records what finished first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent_pid)


def _failed(run: Run, message: str, kind: str = "WorkerDied") -> dict[str, Any]:
    return {
        "config": run.config,
        "seed": run.seed,
        "status": "failed",
        "result": None,
        "error": {"type": kind, "message": message, "traceback": ""},
        "seconds": None,
        "pid": None,
    }


def _stop_pool(pool: Any) -> None:
    """End the worker processes now (TERM, then KILL after 1 s); the pool's own thread
    then fails the queued runs' futures, which nobody reads any more. (Cancelling them
    first makes CPython 3.11's pool thread print an InvalidStateError traceback.)"""
    procs = list(getattr(pool, "_processes", {}).values())
    for p in procs:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + 1.0
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join(1.0)
    pool.shutdown(wait=False)


def _label(run: Run) -> str:
    return f"seed {run.seed}"


def _run_local(
    study: Study, todo: list[Run], record: Callable, workers: int, threads: int, *, out: str = "",
    show: Callable[[str], None] = lambda s: None,
) -> None:  # fmt: skip
    """A process pool of ``workers`` with at most ``workers`` runs in flight. A worker
    that dies (killed by the OOM killer, an abort in native code) breaks the pool and
    fails every run in flight with it, not only its own: those runs are then rerun one
    at a time in a pool of their own, so the run that kills its worker is recorded
    failed and the healthy ones finish; the queued runs go on in a fresh pool."""
    if workers <= 1:
        for r in todo:
            record(r, execute(study.fn, r.config, r.seed, threads, sink=lambda t, r=r: show(f"{_label(r)}: {t}")))
        return
    queue = list(todo)
    suspects: list[Run] = []
    while queue or suspects:
        if suspects:
            r = suspects.pop(0)
            record(r, _run_isolated(study, r, threads))
            continue
        suspects = _pool_pass(study, queue, record, workers, threads, out=out, show=show)


def _new_pool(workers: int) -> Any:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(
        max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_worker_init, initargs=(os.getpid(),)
    )


def _pool_pass(
    study: Study, queue: list[Run], record: Callable, workers: int, threads: int, *, out: str = "",
    show: Callable[[str], None] = lambda s: None,
) -> list[Run]:  # fmt: skip
    """Runs ``queue`` (consumed in place) until it is empty or the pool breaks; returns
    the runs that were in flight when it broke."""
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    pool = _new_pool(min(workers, len(queue)))
    inflight: dict[Any, Run] = {}
    try:
        while queue or inflight:
            while queue and len(inflight) < workers:
                r = queue.pop(0)
                pf = progress_path(out, r) if out else None
                inflight[pool.submit(execute, study.fn, r.config, r.seed, threads, pf)] = r
            finished, _ = wait(set(inflight), timeout=0.5, return_when=FIRST_COMPLETED)
            if out:
                show(_read_progress({_label(r): progress_path(out, r) for r in inflight.values()}))
            broken: list[Run] = []
            for f in finished:
                r = inflight.pop(f)
                try:
                    rec = f.result()
                except BrokenProcessPool:
                    broken.append(r)
                    continue
                except Exception as e:  # noqa: BLE001 - a failed future fails its run, not the study
                    rec = _failed(r, f"the worker failed ({type(e).__name__}: {e}); rerun to retry")
                record(r, rec)
            if broken:
                broken += list(inflight.values())
                _stop_pool(pool)
                return broken
    except BaseException:
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)
    return []


def _run_isolated(study: Study, run: Run, threads: int) -> dict[str, Any]:
    """``run`` alone in a one-worker pool: its record, or a failure when its worker dies."""
    from concurrent.futures.process import BrokenProcessPool

    pool = _new_pool(1)
    try:
        rec = pool.submit(execute, study.fn, run.config, run.seed, threads).result()
    except BrokenProcessPool:
        rec = _failed(
            run,
            "the worker process died while running this run alone (killed by a signal such as the OOM killer's, "
            "or aborted in native code); the other runs were not affected",
        )
    except BaseException:
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)
    return rec


# ------------------------------------------------------------------- the Ray engine
def _resolve_ray_address(address: str) -> str:
    if address != "auto":
        return address
    found = os.environ.get("RAY_ADDRESS")
    if not found:
        try:
            from ray._private.services import canonicalize_bootstrap_address  # type: ignore[import-not-found]

            found = canonicalize_bootstrap_address("auto")
        except Exception:  # noqa: BLE001 - Ray's private helper moved or found nothing
            found = None
    if not found:
        raise ValueError(
            "--address: 'auto' found no running Ray cluster on this machine (start one with `ray start --head`, "
            "or leave out --address to start a private local Ray)"
        )
    return found


def check_ray_address(address: str | None, timeout: float = 3.0) -> None:
    """Fail within ``timeout`` seconds, naming ``--address``, when nothing answers there
    (``ray.init`` itself keeps retrying for minutes)."""
    if address is None:
        return
    if not isinstance(address, str) or not address.strip():
        raise ValueError(f"--address: expected 'auto', 'HOST:PORT' or 'ray://HOST:PORT', got {address!r}")
    addr = _resolve_ray_address(address.strip())
    if addr.startswith("ray://"):
        hostport, default_port = addr[len("ray://") :], 10001
    elif "://" in addr:
        raise ValueError(f"--address: unknown scheme in {addr!r}; expected 'auto', 'HOST:PORT' or 'ray://HOST:PORT'")
    else:
        hostport, default_port = addr, 6379
    host, _, port_s = hostport.rpartition(":") if ":" in hostport else (hostport, "", str(default_port))
    try:
        port = int(port_s.split("/")[0])
    except ValueError:
        raise ValueError(f"--address: bad port in {address!r}") from None
    try:
        with socket.create_connection((host or "127.0.0.1", port), timeout=timeout):
            pass
    except OSError as e:
        raise ValueError(
            f"--address: no Ray cluster answers at {host}:{port} ({e.strerror or e}) within {timeout:g} s; "
            "check the address, or leave out --address to start a local Ray"
        ) from None


def _run_ray(
    study: Study, todo: list[Run], record: Callable, address: str | None, threads: int, *, out: str = "",
    show: Callable[[str], None] = lambda s: None,
) -> None:  # fmt: skip
    try:
        import ray
    except ImportError:
        raise ValueError("--engine: 'ray' needs Ray (pip install 'quantum-boltzmann-ml[ray]')") from None
    started = False
    if not ray.is_initialized():
        try:
            if address:
                ray.init(address=address, ignore_reinit_error=True, logging_level="ERROR")
            else:
                ray.init(
                    num_cpus=available_cores(), include_dashboard=False, ignore_reinit_error=True, logging_level="ERROR"
                )
        except (ConnectionError, RuntimeError, TimeoutError) as e:
            raise ValueError(f"--address: cannot connect to Ray at {address or 'a new local cluster'}: {e}") from None
        started = True
    refs: dict[Any, Run] = {}
    try:
        node_cpus = [n.get("Resources", {}).get("CPU", 0) for n in ray.nodes() if n.get("Alive")]
        if node_cpus and threads > max(node_cpus):
            raise ValueError(
                f"--threads-per-run: {threads} threads per run, but the largest Ray node has {max(node_cpus):g} CPUs"
            )
        remote = ray.remote(num_cpus=threads, max_retries=0)(execute)
        # progress files are written where the driver reads them on a one-machine cluster; a
        # worker on another node writes into its own file system (nothing shown, nothing lost)
        refs = {remote.remote(study.fn, r.config, r.seed, threads, progress_path(out, r) if out else None): r
                for r in todo}  # fmt: skip
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=0.5)
            if out:
                show(_read_progress({_label(refs[p]): progress_path(out, refs[p]) for p in pending}))
            for ref in ready:
                try:
                    rec = ray.get(ref)
                except Exception as e:  # noqa: BLE001 - a dead worker fails its run, not the study
                    rec = _failed(refs[ref], f"the Ray task failed ({type(e).__name__}: {e}); rerun to retry")
                record(refs[ref], rec)
    except BaseException:
        for ref in refs:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - already finished or gone
                pass
        raise
    finally:
        if started:
            ray.shutdown()


# ------------------------------------------------------------------------ aggregation
def t_quantile(df: int, q: float = 0.975) -> float:
    from scipy import stats

    return float(stats.t.ppf(q, df)) if df >= 1 else float("nan")


def summarise(values: Sequence[float], bounds: tuple[float | None, float | None] | None = None) -> dict[str, float]:
    """mean, median, standard error and 95% t interval over the finite values, their count
    ``n`` and the count of infinite ones ``n_inf`` (a seed whose estimate is infinite, a
    frozen beta_eff, is counted, not averaged into inf or nan).

    ``bounds`` = (low, high), either None: the range the quantity can take (a TVD lies in
    [0, 1], a KL divergence or a count of active units is >= 0). The interval is the t
    interval clipped to that range, so it never claims values the quantity cannot have;
    with few seeds it is still wide, which is the honest answer (no bootstrap: it
    under-covers below about 10 seeds)."""
    vals = [float(x) for x in values if x is not None]
    v = [x for x in vals if math.isfinite(x)]
    n_inf = sum(1 for x in vals if math.isinf(x))
    n = len(v)
    nan = float("nan")
    if n == 0:
        return {"n": 0, "n_inf": n_inf, "mean": nan, "median": nan, "se": nan, "ci_lo": nan, "ci_hi": nan}
    mean = sum(v) / n
    median = float(statistics.median(v))
    if n == 1:
        return {"n": 1, "n_inf": n_inf, "mean": mean, "median": median, "se": nan, "ci_lo": nan, "ci_hi": nan}
    sd = math.sqrt(sum((x - mean) ** 2 for x in v) / (n - 1))
    se = sd / math.sqrt(n)
    h = t_quantile(n - 1) * se
    lo, hi = mean - h, mean + h
    if bounds is not None:
        if bounds[0] is not None:
            lo, hi = max(lo, bounds[0]), max(hi, bounds[0])
        if bounds[1] is not None:
            lo, hi = min(lo, bounds[1]), min(hi, bounds[1])
    return {"n": n, "n_inf": n_inf, "mean": mean, "median": median, "se": se, "ci_lo": lo, "ci_hi": hi}


MIN_SEEDS = 3


def few_seeds_warning(n_seeds: int) -> str | None:
    """The warning to print beside intervals over fewer than :data:`MIN_SEEDS` seeds."""
    if n_seeds >= MIN_SEEDS:
        return None
    if n_seeds <= 1:
        return f"warning: {n_seeds} seed per point: no interval can be given (use at least {MIN_SEEDS} seeds)"
    return (
        f"warning: intervals over {n_seeds} seeds are very wide and rest on a normality assumption they cannot "
        f"check; use at least {MIN_SEEDS} seeds (5 or more to compare methods)"
    )


def aggregate(
    records: Iterable[dict[str, Any]],
    by: Sequence[str],
    metrics: Sequence[str],
    bounds: dict[str, tuple[float | None, float | None]] | None = None,
) -> list[dict[str, Any]]:
    """Group finished runs by the config keys ``by`` and summarise each metric of their
    results over seeds: columns ``<metric>_mean``, ``_se``, ``_ci_lo``, ``_ci_hi``, ``_n``;
    ``seeds`` counts the finished runs of the point, ``failed`` its failed runs.
    ``bounds``: metric -> (low, high) range the interval is clipped to."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    failed: dict[tuple, int] = {}
    for rec in records:
        k = tuple(json.dumps(rec["config"].get(b), default=str) for b in by)
        if rec["status"] != "ok" or not isinstance(rec.get("result"), dict):
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
            s = summarise([r["result"].get(m) for r in recs], (bounds or {}).get(m))
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


def _sorted_values(values: set[Any]) -> list[Any]:
    """Numbers in numeric order (4 before 12), anything else by its text."""
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


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
    pvals = _sorted_values({r[panels] for r in rows}) if panels else [None]
    fig, axes = plt.subplots(1, len(pvals), figsize=(4.6 * len(pvals), 3.8), squeeze=False)
    for ax, pv in zip(axes[0], pvals):
        sel = [r for r in rows if panels is None or r[panels] == pv]
        svals = _sorted_values({r[series] for r in sel}) if series else [None]
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
    ``config["fail_if_exists"]``: a path; the run raises while that file exists.
    ``config["sleep"]``: seconds to wait first; ``config["unserialisable"]``: return a
    value JSON cannot hold (to test the runner's validation); ``config["die"]``: the
    worker process kills itself with SIGKILL (as the OOM killer would);
    ``config["report"]``: a line for :func:`report_progress`, said before the sleep."""
    import numpy as np
    import torch

    from qbm import IsingModel
    from qbm.samplers import GibbsSampler

    if config.get("die"):
        os.kill(os.getpid(), signal.SIGKILL)
    flag = config.get("fail_if_exists")
    if flag and os.path.exists(flag):
        raise RuntimeError(f"failing on purpose while {flag} exists")
    if config.get("report"):
        report_progress(str(config["report"]))
    if config.get("sleep"):
        time.sleep(float(config["sleep"]))
    rng = np.random.default_rng(config.get("model_seed", 0))
    n = int(config.get("n", 12))
    j = np.triu(rng.normal(size=(n, n)), 1)
    m = IsingModel(rng.normal(size=n) * 0.1, j + j.T)
    r = GibbsSampler().sample_model(m, beta=float(config["beta"]), num_reads=64, num_sweeps=50, seed=seed)
    x = torch.randn(50, generator=torch.Generator().manual_seed(seed)).sum().item()
    out = {"mean_energy": float(r.energies.mean()), "torch_value": x, "torch_threads": torch.get_num_threads()}
    if config.get("unserialisable"):
        out["model"] = object()
    return out
