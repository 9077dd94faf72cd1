"""Benchmark and demo problems: spin glasses on D-Wave hardware graphs."""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np

from qbm.ising import IsingModel


def zephyr_graph(m: int, t: int = 4) -> nx.Graph:
    """Zephyr Z(m, t) graph with linear integer labels (dwave-graphs or dwave-networkx)."""
    try:
        from dwave.graphs import zephyr_graph as zg  # dwave-system >= 1.30
    except ImportError:  # pragma: no cover - older Ocean
        from dwave_networkx import zephyr_graph as zg
    return zg(m, t)


def advantage2_like_graph(m: int = 12, t: int = 4, num_working: int | None = 4592, seed: int = 0) -> nx.Graph:
    """Z(m, t) with qubits removed at random (fixed seed) down to ``num_working`` qubits,
    as on a production QPU with imperfect yield (Advantage2_system1: Z(12, 4), 4592 qubits)."""
    g = zephyr_graph(m, t)
    if num_working is not None and num_working < g.number_of_nodes():
        rng = np.random.default_rng(seed)
        nodes = np.array(sorted(g.nodes))
        drop = rng.choice(nodes, size=g.number_of_nodes() - num_working, replace=False)
        g = g.copy()
        g.remove_nodes_from(drop.tolist())
    return g


def spin_glass(graph: nx.Graph, *, seed: int = 0, h_scale: float = 0.1, couplings: str = "uniform") -> IsingModel:
    """Random spin glass on ``graph``: J_ij uniform in [-1, 1] (or +-1 with
    ``couplings="pm1"``), h_i uniform in [-h_scale, h_scale]. Labels are the graph's nodes
    (sorted)."""
    rng = np.random.default_rng(seed)
    nodes = sorted(graph.nodes)
    index = {v: k for k, v in enumerate(nodes)}
    n = len(nodes)
    edges = np.array([(index[u], index[v]) for u, v in graph.edges], dtype=np.int64).reshape(-1, 2)
    if couplings == "uniform":
        w = rng.uniform(-1.0, 1.0, size=len(edges))
    elif couplings == "pm1":
        w = rng.choice([-1.0, 1.0], size=len(edges))
    else:
        raise ValueError(f"couplings: unknown value {couplings!r}; choose 'uniform' or 'pm1'")
    h = rng.uniform(-h_scale, h_scale, size=n)
    import scipy.sparse as sp

    J = sp.coo_array(
        (
            np.concatenate([w, w]),
            (np.concatenate([edges[:, 0], edges[:, 1]]), np.concatenate([edges[:, 1], edges[:, 0]])),
        ),
        shape=(n, n),
    )
    return IsingModel(h, J.tocsr(), labels=nodes)


def zephyr_spin_glass(m: int = 4, t: int = 4, **kwargs: Any) -> IsingModel:
    """Spin glass on the full Zephyr Z(m, t) graph (Z(4) has 576 spins)."""
    return spin_glass(zephyr_graph(m, t), **kwargs)
