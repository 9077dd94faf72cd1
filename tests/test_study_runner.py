"""The study runner: resume after a kill gives the same records as an uninterrupted
study; the local pool and a local Ray give identical per-run results; failed runs are
recorded and only they are retried; a different study in the same directory is refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from qbm.studies.runner import RUNS_DIR, Study, aggregate, grid, run_study, summarise, write_csv

FN = "qbm.studies.runner:demo_run"


def _study(extra=None, seeds=(0, 1, 2)):
    configs = [{"beta": b, **(extra or {})} for b in (0.5, 1.0)]
    return Study("demo", FN, grid(configs, seeds))


def _results(records):
    return sorted(((r["config"]["beta"], r["seed"], json.dumps(r["result"], sort_keys=True)) for r in records))


def test_summarise_matches_a_t_interval():
    s = summarise([1.0, 2.0, 3.0, 4.0])
    assert s["mean"] == 2.5 and s["n"] == 4
    assert abs(s["se"] - 0.6454972243679028) < 1e-12
    assert abs((s["ci_hi"] - s["mean"]) - 3.182446305284263 * s["se"]) < 1e-9


@pytest.mark.slow
def test_killed_study_resumes_to_the_same_results(tmp_path):
    full = run_study(_study(), str(tmp_path / "full"), workers=1, progress=False)
    out = str(tmp_path / "killed")
    code = f"""
    from qbm.studies.runner import Study, grid, run_study
    configs = [{{"beta": b, "sleep": 0.4}} for b in (0.5, 1.0)]
    run_study(Study("demo", "{FN}", grid(configs, (0, 1, 2))), {out!r}, workers=1, progress=False)
    """
    p = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)])
    runs = os.path.join(out, RUNS_DIR)

    def finished_records() -> int:
        # a record being written is a .tmp- file until its rename: count only finished ones (the
        # wait once counted a temporary file on a loaded machine and killed the study too early)
        if not os.path.isdir(runs):
            return 0
        return len([f for f in os.listdir(runs) if f.endswith(".json") and not f.startswith(".tmp-")])

    deadline = time.time() + 60
    while time.time() < deadline and finished_records() < 2:
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    finished = finished_records()
    assert 2 <= finished < 6, finished
    before = {f: os.path.getmtime(os.path.join(runs, f)) for f in os.listdir(runs)}
    resumed = run_study(
        Study("demo", FN, grid([{"beta": b, "sleep": 0.4} for b in (0.5, 1.0)], (0, 1, 2))),
        out,
        workers=1,
        progress=False,
    )
    # finished runs were not recomputed
    assert all(os.path.getmtime(os.path.join(runs, f)) == t for f, t in before.items())
    assert len(resumed) == 6
    strip = [
        (b, s, {k: v for k, v in json.loads(r).items()}) for b, s, r in _results(resumed)
    ]  # same values as the uninterrupted study (sleep does not change results)
    assert [(b, s, r) for b, s, r in strip] == [(b, s, json.loads(r)) for b, s, r in _results(full)]
    agg_a = aggregate(full, ["beta"], ["mean_energy"])
    agg_b = aggregate(resumed, ["beta"], ["mean_energy"])
    assert [r["mean_energy_mean"] for r in agg_a] == [r["mean_energy_mean"] for r in agg_b]


@pytest.mark.slow
def test_local_pool_and_ray_give_identical_results(tmp_path):
    pytest.importorskip("ray")
    a = run_study(_study(), str(tmp_path / "local"), engine="local", workers=2, progress=False)
    b = run_study(_study(), str(tmp_path / "ray"), engine="ray", progress=False)
    assert _results(a) == _results(b)
    assert all(r["result"]["torch_threads"] == 1 for r in a + b)
    assert len({r["pid"] for r in b}) >= 1


def test_failed_runs_are_recorded_and_only_they_are_retried(tmp_path):
    flag = tmp_path / "fail-now"
    flag.write_text("x")
    configs = [{"beta": 0.5}, {"beta": 1.0, "fail_if_exists": str(flag)}]
    study = Study("demo", FN, grid(configs, (0, 1)))
    out = str(tmp_path / "s")
    recs = run_study(study, out, workers=1, progress=False)
    assert sorted(r["status"] for r in recs) == ["failed", "failed", "ok", "ok"]
    failed = [r for r in recs if r["status"] == "failed"][0]
    assert failed["error"]["type"] == "RuntimeError" and "on purpose" in failed["error"]["message"]
    rows = aggregate(recs, ["beta"], ["mean_energy"])
    assert [(r["beta"], r["seeds"], r["failed"]) for r in rows] == [(0.5, 2, 0), (1.0, 0, 2)]
    runs = os.path.join(out, RUNS_DIR)
    ok_times = {r["key"]: os.path.getmtime(os.path.join(runs, r["key"] + ".json")) for r in recs if r["status"] == "ok"}
    flag.unlink()
    recs2 = run_study(study, out, workers=1, progress=False)
    assert all(r["status"] == "ok" for r in recs2)
    assert all(os.path.getmtime(os.path.join(runs, k + ".json")) == t for k, t in ok_times.items())
    write_csv(str(tmp_path / "agg.csv"), aggregate(recs2, ["beta"], ["mean_energy"]))
    assert (tmp_path / "agg.csv").read_text().startswith("beta,seeds,failed,mean_energy_n")


def test_a_different_study_in_the_directory_is_refused(tmp_path):
    out = str(tmp_path / "s")
    run_study(_study(seeds=(0,)), out, workers=1, progress=False)
    with pytest.raises(ValueError, match="holds a different study"):
        run_study(_study(seeds=(0, 1)), out, workers=1, progress=False)
    recs = run_study(_study(seeds=(0, 1)), out, workers=1, progress=False, force=True)
    assert len(recs) == 4


def test_report_progress_reaches_a_sink_only_inside_a_run(tmp_path):
    from qbm.studies import runner as R

    R.report_progress("outside any run")  # a no-op, no error
    seen = []
    rec = R.execute(FN, {"beta": 1.0, "report": "halfway"}, 0, 1, sink=seen.append)
    assert rec["status"] == "ok" and seen == ["halfway"]
    R.report_progress("after the run")  # the sink is gone with the run
    assert seen == ["halfway"]
    # the file sink writes at most once per interval and keeps only the latest line
    p = str(tmp_path / "x.progress")
    write = R._file_sink(p, every=60.0)
    write("first")
    write("second")
    assert open(p).read() == "first"
    assert R._read_progress({"seed 3": p, "seed 4": str(tmp_path / "missing")}) == "seed 3: first"


def test_the_driver_shows_each_running_runs_line_and_removes_its_file(tmp_path, capfd):
    out = str(tmp_path / "s")
    study = Study("demo", FN, grid([{"beta": 1.0, "report": "epoch 2/8", "sleep": 1.5}], (0, 1)))
    recs = run_study(study, out, workers=2, progress=True)
    assert all(r["status"] == "ok" for r in recs)
    err = capfd.readouterr().err
    assert "seed 0: epoch 2/8" in err and "seed 1: epoch 2/8" in err
    assert not [f for f in os.listdir(os.path.join(out, RUNS_DIR)) if f.endswith(".progress")]
