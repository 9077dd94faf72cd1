"""Minor embedding onto the solver graph, cached on disk.

Order of attempts: identity placement (labels are qubits and edges are couplers),
a subgraph isomorphism (``minorminer.subgraph``, chains of length 1: hardware-native
models need no chains), ``busclique`` for cliques, a Zephyr biclique embedding for
complete bipartite graphs, then ``minorminer.find_embedding`` with a seed and timeout.
Embeddings are stored as JSON keyed by hashes of the source and target edge sets."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Hashable
from typing import Any

import networkx as nx
import numpy as np


def _graph_key(nodes: list[Any], edges: list[tuple[Any, Any]]) -> str:
    canon = json.dumps([sorted(map(repr, nodes)), sorted(sorted((repr(a), repr(b))) for a, b in edges)])
    return hashlib.sha256(canon.encode()).hexdigest()[:24]


class EmbeddingCache:
    """JSON files ``DIR/<source-hash>-<target-hash>.json``."""

    def __init__(self, directory: str | None) -> None:
        self.directory = directory
        self.memory: dict[str, dict[Hashable, list[Any]]] = {}

    def key(self, source: nx.Graph, target: nx.Graph) -> str:
        return (
            _graph_key(list(source.nodes), list(source.edges))
            + "-"
            + _graph_key(list(target.nodes), list(target.edges))
        )

    def get(self, key: str, source: nx.Graph) -> dict[Hashable, list[Any]] | None:
        if key in self.memory:
            return self.memory[key]
        if self.directory:
            path = os.path.join(self.directory, key + ".json")
            if os.path.exists(path):
                try:
                    with open(path) as fh:
                        raw = json.load(fh)
                except (OSError, json.JSONDecodeError):
                    return None  # a corrupt cache entry is recomputed, not trusted
                lookup = {repr(v): v for v in source.nodes}
                emb = {lookup[k]: list(chain) for k, chain in raw.items() if k in lookup}
                if len(emb) == source.number_of_nodes():
                    self.memory[key] = emb
                    return emb
        return None

    def put(self, key: str, emb: dict[Hashable, list[Any]]) -> None:
        self.memory[key] = emb
        if self.directory:
            os.makedirs(self.directory, exist_ok=True)
            path = os.path.join(self.directory, key + ".json")
            tmp = path + ".tmp"
            with open(tmp, "w") as fh:
                json.dump(
                    {repr(k): [int(q) if isinstance(q, (int, np.integer)) else q for q in v] for k, v in emb.items()},
                    fh,
                )
            os.replace(tmp, path)


def _is_complete(g: nx.Graph) -> bool:
    n = g.number_of_nodes()
    return g.number_of_edges() == n * (n - 1) // 2


def _complete_bipartite_sides(g: nx.Graph) -> tuple[list[Any], list[Any]] | None:
    if g.number_of_edges() == 0 or not nx.is_connected(g) or not nx.is_bipartite(g):
        return None
    a, b = nx.bipartite.sets(g)
    if g.number_of_edges() != len(a) * len(b):
        return None
    return sorted(a, key=repr), sorted(b, key=repr)


def find_embedding_for(
    source: nx.Graph, target: nx.Graph, *, seed: int = 0, timeout: float = 30.0, zephyr_m: int | None = None
) -> tuple[dict[Hashable, list[Any]], str]:
    """Embedding of ``source`` in ``target`` and the method that found it."""
    import minorminer

    if all(target.has_node(v) for v in source.nodes) and all(target.has_edge(a, b) for a, b in source.edges):
        return {v: [v] for v in source.nodes}, "identity"
    # native placement: a subgraph isomorphism (chains of length one), tried briefly first
    if source.number_of_edges() and source.number_of_edges() <= target.number_of_edges():
        from minorminer.subgraph import find_subgraph

        try:
            match = find_subgraph(source, target, timeout=int(max(1, min(timeout, 10))))
        except Exception:  # noqa: BLE001 - the subgraph solver is optional help
            match = None
        if match and len(match) == source.number_of_nodes():
            return {k: [v] for k, v in match.items()}, "native"
    if zephyr_m is not None and source.number_of_nodes() > 2:
        try:
            if _is_complete(source):
                from minorminer import busclique

                emb = busclique.find_clique_embedding(list(source.nodes), target)
                if emb:
                    return {k: list(v) for k, v in emb.items()}, "busclique"
            sides = _complete_bipartite_sides(source)
            if sides is not None:
                from dwave.embedding.zephyr import find_biclique_embedding

                ea, eb = find_biclique_embedding(sides[0], sides[1], target_graph=target)
                emb = {**ea, **eb}
                if emb and all(target.has_node(q) for c in emb.values() for q in c):
                    return {k: list(v) for k, v in emb.items()}, "biclique"
        except Exception:  # noqa: BLE001 - fall through to the general heuristic
            pass
    emb = minorminer.find_embedding(list(source.edges), list(target.edges), random_seed=seed, timeout=timeout)
    if not emb or len(emb) < source.number_of_nodes():
        raise ValueError(
            f"embedding: minorminer found no embedding of the {source.number_of_nodes()}-node, "
            f"{source.number_of_edges()}-edge model into the solver graph within {timeout} s "
            "(an empty embedding); try a larger solver, a sparser model or a longer timeout"
        )
    return {k: list(v) for k, v in emb.items()}, "minorminer"


def chain_length_stats(embedding: dict[Hashable, list[Any]]) -> dict[str, float]:
    lengths = np.array([len(c) for c in embedding.values()])
    return {
        "num_variables": int(lengths.size),
        "qubits": int(lengths.sum()),
        "max_chain": int(lengths.max()),
        "mean_chain": float(lengths.mean()),
        "median_chain": float(np.median(lengths)),
        "chains_longer_than_1": int((lengths > 1).sum()),
    }
