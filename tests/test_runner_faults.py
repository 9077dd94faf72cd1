"""The study runner as a well-behaved parent: Ctrl-C and SIGKILL of the parent with two
workers, an unreachable Ray address, a result that cannot be stored, malformed records,
duplicate seeds, impossible thread counts, preflight checks, and intervals that respect
the quantity's range."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from qbm.studies.runner import (
    QUARANTINE_DIR,
    RUNS_DIR,
    Study,
    aggregate,
    few_seeds_warning,
    grid,
    run_study,
    summarise,
)

FN = "qbm.studies.runner:demo_run"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def _children(pid: int) -> list[int]:
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                out += [int(x) for x in fh.read().split()]
        except FileNotFoundError:
            pass
    return out


def _wait_gone(pids: list[int], seconds: float) -> bool:
    """Wait up to ``seconds`` for every process in ``pids`` to exit; True when they have."""
    deadline = time.time() + seconds
    while time.time() < deadline and any(_alive(x) for x in pids):
        time.sleep(0.05)
    return not any(_alive(x) for x in pids)


def _start_parent(out: str, sleep: float, n_runs: int = 8) -> subprocess.Popen:
    code = f"""
    from qbm.studies.runner import Study, grid, run_study
    configs = [{{"beta": 0.5 + 0.1 * i, "sleep": {sleep}}} for i in range({n_runs // 2})]
    try:
        run_study(Study("demo", "{FN}", grid(configs, (0, 1))), {out!r}, workers=2, progress=False)
    except KeyboardInterrupt:
        raise SystemExit(130)
    """
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)])


def _wait_for_records(out: str, k: int, p: subprocess.Popen, timeout: float = 120) -> None:
    runs = os.path.join(out, RUNS_DIR)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.isdir(runs) and len([f for f in os.listdir(runs) if _is_record(f)]) >= k:
            return
        assert p.poll() is None, "the study ended early"
        time.sleep(0.05)
    raise AssertionError("no records appeared")


def _is_record(name: str) -> bool:
    return name.endswith(".json") and not name.startswith(".tmp-")  # not a record being written


def _records(out: str) -> list[dict]:
    runs = os.path.join(out, RUNS_DIR)
    return [json.load(open(os.path.join(runs, f))) for f in os.listdir(runs) if _is_record(f)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.slow
def test_sigint_stops_two_workers_within_seconds_and_keeps_finished_records(tmp_path):
    out = str(tmp_path / "s")
    p = _start_parent(out, sleep=1.5, n_runs=12)  # 12 runs x 1.5 s on 2 workers: 9 s of work left
    _wait_for_records(out, 2, p)
    workers = _children(p.pid)
    assert len(workers) >= 2, workers
    t0 = time.time()
    p.send_signal(signal.SIGINT)
    rc = p.wait(timeout=15)
    took = time.time() - t0
    assert rc == 130
    assert took < 3.0, f"the parent took {took:.1f} s to stop"
    assert _wait_gone(workers, 3), "workers outlived the interrupted parent"
    recs = _records(out)
    assert 2 <= len(recs) < 12
    assert all(r["status"] == "ok" and isinstance(r["result"], dict) for r in recs)
    assert len({r["key"] for r in recs}) == len(recs)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
@pytest.mark.slow
def test_workers_die_when_the_parent_is_killed(tmp_path):
    out = str(tmp_path / "s")
    p = _start_parent(out, sleep=3.0, n_runs=8)
    _wait_for_records(out, 0, p)
    deadline = time.time() + 120
    workers: list[int] = []
    while time.time() < deadline and len(workers) < 2:  # both workers started
        workers = [c for c in _children(p.pid) if "spawn_main" in open(f"/proc/{c}/cmdline").read()]
        time.sleep(0.05)
    assert len(workers) == 2, workers
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert _wait_gone(workers, 5), "workers outlived a SIGKILLed parent"


def test_unreachable_ray_address_fails_within_seconds(tmp_path):
    t0 = time.time()
    with pytest.raises(ValueError, match="--address: no Ray cluster answers at 127.0.0.1:9"):
        run_study(
            Study("demo", FN, grid([{"beta": 1.0}], [0])), str(tmp_path / "s"), engine="ray", address="127.0.0.1:9"
        )
    assert time.time() - t0 < 10
    assert not (tmp_path / "s").exists()  # refused before the study directory is made
    with pytest.raises(ValueError, match="--address: unknown scheme"):
        run_study(Study("demo", FN, grid([{"beta": 1.0}], [0])), str(tmp_path / "s"), engine="ray", address="http://x")
    with pytest.raises(ValueError, match="--address: only with --engine ray"):
        run_study(Study("demo", FN, grid([{"beta": 1.0}], [0])), str(tmp_path / "s"), address="auto")


@pytest.mark.slow
def test_cli_unreachable_ray_address_is_a_qbm_error(tmp_path):
    t0 = time.time()
    r = subprocess.run(
        [sys.executable, "-m", "qbm.cli", "study", "kl-vs-mmd", "--budget", "smoke", "--engine", "ray",
         "--address", "127.0.0.1:9", "--out", str(tmp_path / "s")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert "qbm: error: --address" in r.stderr and "Traceback" not in r.stderr
    assert time.time() - t0 < 30
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_unserialisable_result_fails_only_its_run(tmp_path, workers):
    configs = [{"beta": 0.5}, {"beta": 1.0, "unserialisable": True}]
    out = str(tmp_path / "s")
    recs = run_study(Study("demo", FN, grid(configs, (0, 1))), out, workers=workers, progress=False)
    by = {(r["config"]["beta"], r["seed"]): r for r in recs}
    assert len(recs) == 4
    assert all(by[(0.5, s)]["status"] == "ok" for s in (0, 1))
    for s in (0, 1):
        bad = by[(1.0, s)]
        assert bad["status"] == "failed" and bad["error"]["type"] == "InvalidResult"
        assert "object" in bad["error"]["message"]
    assert len(os.listdir(os.path.join(out, RUNS_DIR))) == 4


def test_a_dying_worker_fails_only_its_own_run(tmp_path):
    # one run SIGKILLs its worker (as the OOM killer would): before, the broken pool failed
    # every queued run with it; now the in-flight runs are rerun alone and only it fails
    configs = [{"beta": 0.5 + 0.1 * i} for i in range(3)] + [{"beta": 2.0, "die": True}]
    out = str(tmp_path / "s")
    recs = run_study(Study("demo", FN, grid(configs, (0, 1))), out, workers=2, progress=False)
    assert len(recs) == 8
    bad = [r for r in recs if r["status"] != "ok"]
    assert sorted((r["config"]["beta"], r["seed"]) for r in bad) == [(2.0, 0), (2.0, 1)]
    assert all("died" in r["error"]["message"] for r in bad)


def test_malformed_records_are_quarantined_and_recomputed(tmp_path, capsys):
    study = Study("demo", FN, grid([{"beta": 0.5}, {"beta": 1.0}], (0, 1)))
    out = str(tmp_path / "s")
    good = run_study(study, out, workers=1, progress=False)
    runs = os.path.join(out, RUNS_DIR)
    keys = [r.key for r in study.runs]
    bad = {
        keys[0]: "[]",
        keys[1]: json.dumps({"ok": True, "result": None}),
        keys[2]: "{not json",
    }
    for k, text in bad.items():
        with open(os.path.join(runs, f"{k}.json"), "w") as fh:
            fh.write(text)
    rec3 = json.load(open(os.path.join(runs, f"{keys[3]}.json")))
    rec3["result"] = None  # "ok" without a result must not count as a seed
    json.dump(rec3, open(os.path.join(runs, f"{keys[3]}.json"), "w"))
    again = run_study(study, out, workers=1, progress=True)
    err = capsys.readouterr().err
    assert err.count("is malformed") == 4
    quarantined = os.listdir(os.path.join(out, QUARANTINE_DIR))
    assert len(quarantined) == 4
    assert sorted(json.dumps(r["result"], sort_keys=True) for r in again) == sorted(
        json.dumps(r["result"], sort_keys=True) for r in good
    )
    rows = aggregate(again, ["beta"], ["mean_energy"])
    assert [r["seeds"] for r in rows] == [2, 2]


def test_duplicate_seeds_and_impossible_threads_are_refused_up_front(tmp_path):
    with pytest.raises(ValueError, match=r"--seeds: duplicate seed\(s\) \[0\]"):
        grid([{"beta": 1.0}], [0, 0])
    with pytest.raises(TypeError, match="--seeds"):
        grid([{"beta": 1.0}], [0.5])
    with pytest.raises(ValueError, match="listed twice"):
        run_study(Study("demo", FN, [grid([{"beta": 1.0}], [0])[0]] * 2), str(tmp_path / "a"))
    with pytest.raises(ValueError, match="--threads-per-run: 5000 threads per run"):
        run_study(Study("demo", FN, grid([{"beta": 1.0}], [0])), str(tmp_path / "b"), threads_per_run=5000)
    with pytest.raises(ValueError, match="--threads-per-run"):
        run_study(Study("demo", FN, grid([{"beta": 1.0}], [0])), str(tmp_path / "b"), threads_per_run=2.5)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_preflight_runs_before_anything_is_made(tmp_path):
    def check() -> None:
        raise ValueError("--data-dir: missing")

    with pytest.raises(ValueError, match="--data-dir: missing"):
        run_study(Study("demo", FN, grid([{"beta": 1.0}], [0]), preflight=check), str(tmp_path / "s"))
    assert not (tmp_path / "s").exists()


def test_intervals_respect_the_range_and_few_seeds_warn():
    s = summarise([0.066, 0.9], (0.0, 1.0))
    assert 0.0 <= s["ci_lo"] <= s["mean"] <= s["ci_hi"] <= 1.0
    raw = summarise([0.066, 0.9])
    assert raw["ci_lo"] < 0 and raw["ci_hi"] > 1  # what clipping prevents
    assert summarise([0.2, 0.3, 0.4], (0.0, 1.0))["ci_lo"] == pytest.approx(summarise([0.2, 0.3, 0.4])["ci_lo"])
    kl = summarise([0.01, 0.5], (0.0, None))
    assert kl["ci_lo"] == 0.0 and kl["ci_hi"] > 0.5
    assert "2 seeds" in few_seeds_warning(2) and few_seeds_warning(3) is None
    recs = [{"config": {"x": 1}, "seed": s, "status": "ok", "result": {"tvd": v}} for s, v in enumerate([0.066, 0.9])]
    row = aggregate(recs, ["x"], ["tvd"], bounds={"tvd": (0.0, 1.0)})[0]
    assert row["tvd_ci_lo"] >= 0 and row["tvd_ci_hi"] <= 1 and row["seeds"] == 2


def _descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, command name) of every process below ``pid`` (from /proc)."""
    kids: dict[int, list[tuple[int, str]]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = open(f"/proc/{d}/stat").read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        kids.setdefault(ppid, []).append((int(d), name))
    out, stack = [], [pid]
    while stack:
        for c in kids.get(stack.pop(), []):
            out.append(c)
            stack.append(c[0])
    return out


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ray_task_workers_die_when_the_driver_is_killed(tmp_path):
    pytest.importorskip("ray")
    out = str(tmp_path / "s")
    code = f"""
    from qbm.studies.runner import Study, grid, run_study
    configs = [{{"beta": 0.5 + 0.1 * i, "sleep": 60}} for i in range(2)]
    run_study(Study("demo", "{FN}", grid(configs, (0,))), {out!r}, engine="ray", progress=False)
    """
    p = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)])
    procs: list[tuple[int, str]] = []
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            procs = _descendants(p.pid)
            if sum(n == "ray::execute" for _, n in procs) == 2:
                break
            assert p.poll() is None, "the study ended early"
            time.sleep(0.2)
        tasks = [c for c, n in procs if n == "ray::execute"]
        assert len(tasks) == 2, procs
        p.send_signal(signal.SIGKILL)
        p.wait()
        assert _wait_gone(tasks, 15), "Ray task workers outlived a SIGKILLed driver"
    finally:
        if p.poll() is None:
            p.kill()
        for c, _ in procs:  # Ray's own helper processes can linger after a SIGKILL: clean up
            if _alive(c):
                os.kill(c, signal.SIGKILL)


def test_a_record_being_written_is_finished_before_ctrl_c_acts(tmp_path):
    """Ctrl-C (or SIGTERM) during a record's write is held until the write is done, then
    raised: a finished run's record is never lost to the interrupt."""
    from qbm.studies import runner

    path = str(tmp_path / "r.json")
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with runner._deferred_interrupts():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            reached.append(True)
            runner.write_bytes_atomic(path, b'{"status": "ok"}', suffix=".json")
    assert reached and json.load(open(path)) == {"status": "ok"}
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
