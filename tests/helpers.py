"""Exact enumeration and statistical bounds shared by the tests."""

from __future__ import annotations

import itertools
import signal
import threading
import time
from typing import Any, Callable

import numpy as np

from qbm import IsingModel


def all_states(n: int) -> np.ndarray:
    """(2^n, n) +-1 states; row k has bit i of k (most significant first) as spin i."""
    bits = np.array(list(itertools.product([0, 1], repeat=n)), dtype=np.int8)
    return (2 * bits - 1).astype(np.int8)


def state_index(spins: np.ndarray) -> np.ndarray:
    n = spins.shape[1]
    weights = 1 << np.arange(n - 1, -1, -1)
    return ((spins > 0).astype(np.int64) * weights).sum(axis=1)


def boltzmann(model: IsingModel, beta: float) -> np.ndarray:
    e = model.energy(all_states(model.num_variables))
    w = np.exp(-beta * (e - e.min()))
    return w / w.sum()


def empirical(spins: np.ndarray) -> np.ndarray:
    n = spins.shape[1]
    return np.bincount(state_index(spins), minlength=2**n) / spins.shape[0]


def tvd(p: np.ndarray, q: np.ndarray) -> float:
    return 0.5 * float(np.abs(p - q).sum())


def tvd_bound(p: np.ndarray, num_samples: int, z: float = 4.0) -> float:
    """A bound the TV distance of N independent samples from p exceeds with small
    probability: E|p_hat - p| <= sqrt(p (1-p) / N) per state; z standard errors of slack
    on the sum (conservative)."""
    sd = np.sqrt(p * (1 - p) / num_samples)
    return 0.5 * float(sd.sum()) + z * 0.5 * float(np.sqrt((p * (1 - p)).sum() / num_samples)) + 1e-3


def random_frustrated(n: int, seed: int, density: float = 0.6, h_scale: float = 0.3) -> IsingModel:
    rng = np.random.default_rng(seed)
    J = np.triu(rng.uniform(-1, 1, (n, n)) * (rng.random((n, n)) < density), 1)
    J = J + J.T
    h = rng.uniform(-h_scale, h_scale, n)
    return IsingModel(h, J)


def interrupted_after(delay: float, call: Callable[[], Any]) -> float:
    """Run ``call`` on the main thread with a SIGINT (Ctrl-C) sent ``delay`` seconds in; it
    must raise KeyboardInterrupt. Returns the seconds from the start to that exception."""
    import pytest

    main = threading.get_ident()
    timer = threading.Timer(delay, lambda: signal.pthread_kill(main, signal.SIGINT))
    t0 = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            call()
    finally:
        timer.cancel()
    return time.perf_counter() - t0
