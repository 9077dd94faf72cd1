"""Target distributions over n-bit strings as probability vectors of length 2^n
(index = bits read as a binary number, first bit most significant)."""

from __future__ import annotations

import itertools

import numpy as np


def states_to_index(bits: np.ndarray) -> np.ndarray:
    """(N, n) bits -> (N,) indices, first bit most significant."""
    bits = np.asarray(bits)
    n = bits.shape[1]
    return (bits.astype(np.int64) << np.arange(n - 1, -1, -1)).sum(axis=1)


def _from_support(n: int, support: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    p = np.zeros(2**n)
    w = np.ones(len(support)) if weights is None else weights
    np.add.at(p, support, w)
    return p / p.sum()


def ghz(n: int) -> np.ndarray:
    """Half the mass on 00...0 and half on 11...1."""
    if n < 1:
        raise ValueError(f"n: must be >= 1, got {n}")
    return _from_support(n, np.array([0, 2**n - 1]))


def cardinality(n: int, k: int | None = None) -> np.ndarray:
    """Uniform over all strings of Hamming weight k (default n // 2)."""
    k = n // 2 if k is None else k
    if not 0 <= k <= n:
        raise ValueError(f"k: must be in [0, {n}], got {k}")
    idx = np.arange(2**n)
    weight = np.array([bin(i).count("1") for i in idx])
    return _from_support(n, idx[weight == k])


def bars_and_stripes(rows: int, cols: int) -> np.ndarray:
    """Uniform over the bars-and-stripes patterns of a rows x cols grid (row-major bits);
    n = rows * cols."""
    if rows < 1 or cols < 1:
        raise ValueError("rows: the grid must be at least 1 x 1")
    pats = set()
    for bits in itertools.product([0, 1], repeat=cols):  # vertical bars: columns constant
        pats.add(tuple(np.tile(bits, rows)))
    for bits in itertools.product([0, 1], repeat=rows):  # horizontal stripes: rows constant
        pats.add(tuple(np.repeat(bits, cols)))
    arr = np.array(sorted(pats))
    return _from_support(rows * cols, states_to_index(arr))


def random_sparse(n: int, support: int, seed: int = 0) -> np.ndarray:
    """Random Dirichlet weights on ``support`` random strings."""
    if not 1 <= support <= 2**n:
        raise ValueError(f"support: must be in [1, 2^n], got {support}")
    rng = np.random.default_rng(seed)
    idx = rng.choice(2**n, size=support, replace=False)
    return _from_support(n, idx, rng.dirichlet(np.ones(support)))
