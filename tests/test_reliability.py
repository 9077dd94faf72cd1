"""Reliability under forks, big requests, thread limits and interruption: each test here
reproduces a failure of an earlier version (hang after fork, SIGABRT on a huge request,
unbounded threads and pools, Ctrl-C ignored by MMD)."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from helpers import interrupted_after
from qbm import IsingModel, _core
from qbm.samplers import (
    GibbsSampler,
    ParallelTemperingSampler,
    RBMSampler,
    SimulatedAnnealingSampler,
    SQASampler,
)


def _model(n=64, seed=0):
    rng = np.random.default_rng(seed)
    j = np.zeros((n, n))
    for i in range(n):  # bipartite: even-odd couplings only
        for k in range(i + 1, n, 2):
            if (k - i) % 2 == 1 and rng.random() < 0.3:
                j[i, k] = rng.normal()
    return IsingModel(rng.normal(size=n) * 0.1, j + j.T)


def _big_call(seed: int) -> float:
    # enough work that the call is split over the 2-thread pool
    r = GibbsSampler(num_threads=2).sample_model(_model(), num_reads=512, num_sweeps=200, seed=seed)
    return float(r.energies.sum())


def _run(code: str, timeout: float = 60, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_fork_pool_workers_get_working_samplers():
    """A fork-started pool after the parent used the thread pool: workers used to block
    forever on their first call."""
    want = _big_call(1)
    ctx = mp.get_context("fork")
    with ctx.Pool(2) as pool:
        res = pool.map_async(_big_call, [1, 2, 3])
        got = res.get(timeout=60)
    assert got[0] == want  # same seed, same result in the child


@pytest.mark.skipif(sys.platform != "linux", reason="os.fork")
def test_os_fork_child_samples():
    _big_call(0)
    pid = os.fork()
    if pid == 0:  # child
        try:
            _big_call(5)
            os._exit(0)
        except BaseException:
            os._exit(3)
    deadline = time.time() + 60
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    pytest.fail("child process hung on its first sampler call after fork")


def test_thread_cap_is_a_value_error_naming_the_parameter():
    m = _model(8)
    with pytest.raises(ValueError, match="num_threads.*limit"):
        GibbsSampler(num_threads=10**6)
    with pytest.raises(ValueError, match="num_threads.*limit"):
        GibbsSampler().sample_model(m, num_reads=2, num_sweeps=1, num_threads=_core.MAX_THREADS + 1)
    with pytest.raises(ValueError, match="num_threads"):
        _core.sample_schedule(m.core, np.ones(1), 2, num_threads=10**6)
    r = _run(
        """
        import numpy as np
        from qbm import IsingModel
        from qbm.samplers import GibbsSampler
        try:
            GibbsSampler().sample_model(IsingModel(np.zeros(3), np.zeros((3, 3))), num_reads=2, num_sweeps=1)
        except ValueError as e:
            print("ValueError", e)
        """,
        env={"QBM_NUM_THREADS": str(10**6)},
    )
    assert "ValueError QBM_NUM_THREADS" in r.stdout, r.stdout + r.stderr


def test_live_pools_and_threads_are_bounded():
    """40 distinct thread counts used to leave 822 threads alive."""
    r = _run(
        """
        import os
        import numpy as np
        from qbm import IsingModel, _core
        from qbm.samplers import GibbsSampler
        rng = np.random.default_rng(0)
        j = np.triu(rng.normal(size=(64, 64)), 1)
        m = IsingModel(np.zeros(64), j + j.T)
        for t in range(2, 42):
            GibbsSampler(num_threads=t).sample_model(m, num_reads=8 * 41, num_sweeps=200, seed=0)
        print(_core.live_pools(), len(os.listdir("/proc/self/task")))
        """,
        timeout=120,
    )
    pools, threads = map(int, r.stdout.split())
    assert pools <= _core.MAX_POOLS
    # at most MAX_POOLS pools of <= 41 threads, plus the interpreter's own
    assert threads <= _core.MAX_POOLS * 41 + 16, threads


def test_min_work_per_thread_is_validated_and_splits_small_calls(monkeypatch):
    """QBM_MIN_WORK_PER_THREAD: a bad value is an error naming it; 1 makes a small
    two-thread call split (the thread tests rely on it), and the bits never change."""
    from qbm.quantum import Circuit

    c = Circuit(5)
    for q in range(5):
        c.ry(q)
    c.cx(0, 1)
    comp = c.compile()
    a = comp.angles(__import__("torch").tensor(np.random.default_rng(0).normal(size=(16, c.num_params)))).numpy()
    one = comp.program.states(a, num_threads=1)
    for bad in ("0", "-3", "many"):
        monkeypatch.setenv("QBM_MIN_WORK_PER_THREAD", bad)
        with pytest.raises(ValueError, match="QBM_MIN_WORK_PER_THREAD"):
            comp.program.states(a, num_threads=2)
    r = _run(
        """
        import os
        import numpy as np
        import torch
        from qbm.quantum import Circuit
        c = Circuit(5)
        for q in range(5):
            c.ry(q)
        comp = c.compile()
        a = comp.angles(torch.tensor(np.random.default_rng(0).normal(size=(16, c.num_params)))).numpy()
        before = len(os.listdir("/proc/self/task"))
        comp.program.states(a, num_threads=2)
        print(before, len(os.listdir("/proc/self/task")))
        """,
        env={"QBM_MIN_WORK_PER_THREAD": "1"},
    )
    assert r.returncode == 0, r.stderr
    before, after = map(int, r.stdout.split())
    assert after == before + 2  # a pool of two threads: the small call was split
    monkeypatch.setenv("QBM_MIN_WORK_PER_THREAD", "1")
    np.testing.assert_array_equal(comp.program.states(a, num_threads=2), one)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads through /proc")
def test_one_thread_calls_start_no_threads():
    """A call that runs on one thread (QBM_NUM_THREADS=1, or a small call) stays on the
    calling thread: the circuit engine, pair energies and their gradients, shot counts and
    parallel tempering used to hand their rows to rayon's global pool (every core) and wait
    for it, which on a busy machine put 3-5 ms stalls on one call in five."""
    r = _run(
        """
        import os
        import numpy as np
        import torch
        from qbm import IsingModel, _core
        from qbm.quantum import Circuit
        from qbm.samplers import ParallelTemperingSampler
        rng = np.random.default_rng(0)
        c = Circuit(4)
        for q in range(4):
            c.ry(q)
        c.cx(0, 1)
        j = np.triu(rng.normal(size=(8, 8)), 1)
        m = IsingModel(np.zeros(8), j + j.T)
        edges = np.array([(a, b) for a in range(6) for b in range(a + 1, 6)], dtype=np.int64)
        z = rng.choice([-1.0, 1.0], size=(300, 6))
        before = len(os.listdir("/proc/self/task"))
        for _ in range(3):
            p = c.run(torch.as_tensor(np.tile(rng.normal(size=c.num_params), (64, 1))))
            _core.sample_counts(np.ascontiguousarray(p.numpy()), 100, 0)
            _core.pair_energies(z, np.zeros(6), edges, np.ones(len(edges)))
            _core.pair_energy_grad(z, np.zeros(6), edges, np.ones(len(edges)), np.ones(300), True)
            ParallelTemperingSampler().sample_model(m, num_reads=64, num_sweeps=20, seed=0)
        print(before, len(os.listdir("/proc/self/task")))
        """,
        env={"QBM_NUM_THREADS": "1"},
    )
    assert r.returncode == 0, r.stderr
    before, after = map(int, r.stdout.split())
    assert after == before, (before, after, r.stderr)


@pytest.mark.parametrize(
    "cls,kw",
    [
        (GibbsSampler, {}),
        (SimulatedAnnealingSampler, {}),
        (ParallelTemperingSampler, {}),
        (SQASampler, {}),
        (RBMSampler, {}),
    ],
)
def test_huge_num_reads_raises_memory_error(cls, kw):
    with pytest.raises(MemoryError, match="num_reads"):
        cls().sample_model(_model(8), num_reads=10**12, num_sweeps=1, **kw)


def test_huge_trotter_slices_raise_memory_error():
    with pytest.raises(MemoryError, match="num_trotter_slices"):
        SQASampler().sample_model(_model(8), num_reads=1, num_sweeps=1, num_trotter_slices=10**9)


def _call_under_address_limit(setup: str, limit: str, call: str) -> str:
    """Run ``setup``, cap the address space at ``limit`` (an expression), then ``call``;
    returns the subprocess's output, asserting it exited normally (no SIGABRT) and lived on."""
    code = (
        "import resource\n" + textwrap.dedent(setup) + f"\nlim = {limit}\n"
        "resource.setrlimit(resource.RLIMIT_AS, (lim, lim))\n"
        f"try:\n    {call}\n    print('no error')\nexcept MemoryError as e:\n    print('MemoryError', e)\n"
        "print('alive')\n"
    )
    r = _run(code)
    assert r.returncode == 0, r.stderr
    assert "alive" in r.stdout, r.stdout + r.stderr
    return r.stdout


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS")
def test_request_over_an_address_space_limit_raises_and_the_process_lives():
    """10**8 reads under `ulimit -v` used to abort the interpreter (SIGABRT)."""
    out = _call_under_address_limit(
        """
        import numpy as np
        from qbm import IsingModel
        from qbm.samplers import GibbsSampler
        m = IsingModel(np.zeros(16), np.zeros((16, 16)))
        GibbsSampler().sample_model(m, num_reads=8, num_sweeps=1)  # warm up imports
        """,
        "3 * 2**30",
        "GibbsSampler().sample_model(m, num_reads=10**8, num_sweeps=1)",
    )
    assert "MemoryError num_reads" in out, out


def test_ctrl_c_stops_mmd_rbf_within_a_second():
    from qbm.mmd import mmd2

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40000, 8))
    y = rng.normal(size=(40000, 8))
    assert interrupted_after(0.3, lambda: mmd2(x, y, kernel="rbf")) < 1.5


@pytest.mark.parametrize(
    "p,q,match",
    [
        ([0.5, np.nan, 0.5, 0.0], [0.25] * 4, "p"),
        ([0.5, 0.5, 0.0, 0.0], [0.5, -0.25, 0.5, 0.25], "q"),
        ([0.5, 0.5, 0.0, 0.0], [0.25, 0.25, 0.25], "q"),
    ],
)
def test_mmd2_exact_refuses_bad_probabilities(p, q, match):
    from qbm.mmd import mmd2_exact

    with pytest.raises(ValueError, match=match):
        mmd2_exact(np.array(p), np.array(q), 2)


def test_pt_beta_with_explicit_ladder_is_refused():
    with pytest.raises(ValueError, match="beta"):
        ParallelTemperingSampler().sample_model(_model(8), beta=3.0, betas=[0.5, 1.0, 2.0], num_reads=2)


def test_sa_sweeps_per_beta_above_num_sweeps_is_refused():
    with pytest.raises(ValueError, match="num_sweeps_per_beta"):
        SimulatedAnnealingSampler().sample_model(_model(8), num_reads=2, num_sweeps=10, num_sweeps_per_beta=20)


def test_checkpoints_load_without_executing_pickled_code(tmp_path):
    """A payload that would run code when unpickled is refused (weights_only loading)."""
    import hashlib
    import io
    import pickle

    import torch

    from qbm.checkpoint import MAGIC, load_file, save_atomic

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    buf = io.BytesIO()
    torch.save({"kind": "bm", "model_state": Evil()}, buf, pickle_module=pickle)
    payload = buf.getvalue()
    p = tmp_path / "evil.pt"
    p.write_bytes(MAGIC + hashlib.sha256(payload).digest() + payload)
    with pytest.raises(ValueError, match="not a readable qbm checkpoint"):
        load_file(str(p))
    assert not (tmp_path / "pwned").exists()
    # numpy arrays survive the round trip with their dtype
    save_atomic({"a": np.arange(5, dtype=np.int8), "b": [np.float32(1.5)]}, str(tmp_path / "ok.pt"))
    back = load_file(str(tmp_path / "ok.pt"))
    assert back["a"].dtype == np.int8 and back["a"].tolist() == [0, 1, 2, 3, 4] and back["b"] == [1.5]


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS, /proc/self/status")
def test_model_construction_over_an_address_space_limit_raises_naming_J():
    """A 1e7-spin ring built under `ulimit -v` used to abort the interpreter (SIGABRT)
    while the core copied the CSR arrays."""
    out = _call_under_address_limit(
        """
        import numpy as np
        from qbm import IsingModel
        IsingModel(np.zeros(4), np.zeros((4, 4)))  # warm up imports
        n = 10**7
        i = np.arange(n)
        indptr = np.arange(0, 2 * n + 1, 2, dtype=np.int64)
        nb = np.sort(np.stack([(i - 1) % n, (i + 1) % n], 1), axis=1).ravel().astype(np.int64)
        data = np.ones(2 * n)
        h = np.zeros(n)
        vm = int([l.split()[1] for l in open("/proc/self/status") if l.startswith("VmSize")][0]) * 1024
        """,
        "vm + 200 * 2**20  # the copies need about 480 MB more",
        "IsingModel.from_csr(h, indptr, nb, data)",
    )
    assert "MemoryError J:" in out, out


def test_tempering_memory_error_names_num_replicas():
    from qbm.samplers import ParallelTemperingSampler

    m = IsingModel(np.zeros(2000), np.zeros((2000, 2000)))
    with pytest.raises(MemoryError, match=r"^num_replicas x num_reads: "):
        ParallelTemperingSampler().sample_model(m, beta=1.0, num_replicas=10**6, num_reads=10**5, num_sweeps=1)


def test_continuous_time_sqa_refuses_unknown_and_unused_moves():
    from qbm.samplers import SQASampler

    m = IsingModel(np.zeros(3), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="moves: unknown value 'nonsense'"):
        SQASampler().sample_model(m, continuous_time=True, moves="nonsense", num_reads=2, num_sweeps=2)
    with pytest.raises(ValueError, match="moves: continuous_time=True"):
        SQASampler().sample_model(m, continuous_time=True, moves="local", num_reads=2, num_sweeps=2)


def test_ising_model_pickles_with_labels_and_offset():
    import pickle

    m = IsingModel({"a": 0.5, "b": -0.2, "c": 0.1}, {("a", "b"): -1.0, ("b", "c"): 0.7}, offset=1.5)
    m2 = pickle.loads(pickle.dumps(m))
    assert m2.labels == m.labels and m2.offset == 1.5
    assert np.array_equal(m2.h, m.h) and (m2.J != m.J).nnz == 0
    s = np.array([[1, -1, 1], [-1, -1, 1]], dtype=np.int8)
    assert np.array_equal(m2.energy(s), m.energy(s))
    assert m2.index("c") == 2
    r = IsingModel.from_csr(np.zeros(3), *[np.asarray(a) for a in (m.J.indptr, m.J.indices, m.J.data)])
    assert pickle.loads(pickle.dumps(r)).labels == [0, 1, 2]
