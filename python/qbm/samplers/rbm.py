"""Block Gibbs sampling of RBMs (all hidden units given the visible ones, then all
visible given the hidden ones)."""

from __future__ import annotations

import time
import weakref
from typing import Any

import networkx as nx
import numpy as np

from qbm import _core
from qbm.ising import IsingModel
from qbm.rbm import RBM
from qbm._validate import as_spins, check_beta, check_positive_int, check_seed, check_threads
from qbm.samplers._base import IsingSampler, SampleResult, states_in_order, timing_info


class RBMSampler(IsingSampler):
    """Alternating block Gibbs on an :class:`qbm.rbm.RBM`: sample h | v, then v | h,
    ``num_sweeps`` times, in ``num_reads`` chains in parallel (Rust core: f32 fields from
    sums of the active rows of W, SIMD, one random stream per chain).

    ``clamp``: boolean mask over the visible units; clamped units keep the values given in
    ``initial_states`` (conditional sampling of p(h, v_free | v_clamped)).
    ``sample_model`` returns spins (num_reads, nv + nh), visible first, with energies
    E(v, h). As a dimod sampler, ``sample(bqm)`` needs a bipartite BQM; the larger side
    is taken as visible unless ``visible=`` lists the labels.
    """

    registry_name = "rbm"

    def sample_model(
        self,
        model: RBM | IsingModel,
        *,
        beta: float = 1.0,
        num_reads: int = 10,
        num_sweeps: int = 1000,
        initial_states: Any = None,
        clamp: Any = None,
        visible: Any = None,
        seed: int | None = None,
        num_threads: int | None = None,
    ) -> SampleResult:
        labels = None
        pad = 0
        if isinstance(model, IsingModel):
            rbm, order, pad = _split(model, visible)
            labels = order
            offset = model.offset
            if initial_states is not None and not isinstance(initial_states, np.ndarray):
                initial_states = states_in_order(initial_states, order)
        elif isinstance(model, RBM):
            rbm, offset = model, 0.0
        else:
            raise TypeError(f"model: expected a qbm.rbm.RBM or a bipartite IsingModel, got {type(model).__name__}")
        beta = check_beta(beta)
        num_reads = check_positive_int(num_reads, "num_reads")
        num_sweeps = check_positive_int(num_sweeps, "num_sweeps")
        seed = check_seed(seed)
        threads = check_threads(num_threads) or self.num_threads
        nv, nh = rbm.num_visible, rbm.num_hidden
        init = None
        if initial_states is not None:
            arr = np.asarray(initial_states)
            if arr.ndim == 2 and arr.shape[1] == nv + nh - pad and arr.shape[1] != nv:
                arr = arr[:, :nv]
            init = as_spins(arr, nv, "initial_states")
            if init.shape[0] != num_reads:
                raise ValueError(f"initial_states: expected {num_reads} rows (num_reads), got {init.shape[0]}")
        mask = None
        if clamp is not None:
            mask = np.asarray(clamp)
            if mask.dtype != np.bool_ or mask.shape != (nv,):
                raise ValueError(f"clamp: expected a boolean mask of shape ({nv},)")
            if init is None:
                raise ValueError("clamp: clamping needs initial_states holding the clamped values")
            mask = np.ascontiguousarray(mask)
        t0 = time.perf_counter()
        out = _core.sample_rbm(
            np.ascontiguousarray(rbm.W, dtype=np.float64),
            np.ascontiguousarray(rbm.a, dtype=np.float64),
            np.ascontiguousarray(rbm.b, dtype=np.float64),
            num_reads,
            num_sweeps,
            beta=beta,
            initial_states=init,
            clamp=mask,
            seed=seed,
            num_threads=threads,
        )
        timing = timing_info(t0, (nv + nh) * num_sweeps * num_reads)
        timing["unit_updates_per_s"] = timing.pop("updates_per_s")
        spins = out["spins"][:, : nv + nh - pad] if pad else out["spins"]
        info: dict[str, Any] = {
            "seed": seed,
            "beta": beta,
            "num_visible": nv,
            "num_hidden": nh - pad,
            "timing": timing,
        }
        if labels is not None:
            info["labels"] = labels
        return SampleResult(np.ascontiguousarray(spins), out["energies"] + offset, info)


# (model, visible) -> its RBM split: a training loop that passes the same IsingModel on
# every call pays the bipartite check and the split once (models are immutable; the
# cache holds them weakly, so it never keeps one alive).
_SPLITS: weakref.WeakKeyDictionary[IsingModel, dict[Any, tuple[RBM, list[Any], int]]] = weakref.WeakKeyDictionary()


def _split(model: IsingModel, visible: Any) -> tuple[RBM, list[Any], int]:
    key = None if visible is None else tuple(visible)
    per_model = _SPLITS.get(model)
    if per_model is not None and key in per_model:
        return per_model[key]
    vis = list(visible) if visible is not None else _larger_side(model)
    rbm = RBM.from_ising(model, vis) if len(vis) < model.num_variables else None
    vset = set(vis)
    order = [lab for lab in model.labels if lab in vset] + [lab for lab in model.labels if lab not in vset]
    pad = 0
    if rbm is None:
        # no hidden side (one variable, or all on one side): pad with one hidden
        # unit of zero field and coupling, sampled and then dropped
        nv = model.num_variables
        idx = [model.labels.index(lab) for lab in order]
        rbm = RBM(np.zeros((nv, 1)), model.h[idx], np.zeros(1))
        pad = 1
    try:
        _SPLITS.setdefault(model, {})[key] = (rbm, order, pad)
    except TypeError:  # pragma: no cover - unhashable visible labels: no cache
        pass
    return rbm, order, pad


def _larger_side(model: IsingModel) -> list[Any]:
    n = model.num_variables
    J = model.J.tocoo()
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(zip(J.row.tolist(), J.col.tolist()))
    if not nx.is_bipartite(g):
        cycle = _odd_cycle(g)
        raise ValueError(
            "model: the coupling graph is not bipartite (odd cycle through variables "
            f"{[model.labels[k] for k in cycle]}); block Gibbs needs two sides without couplings inside "
            "either; use GibbsSampler or ParallelTemperingSampler"
        )
    if n == 1:
        return list(model.labels)
    colour = nx.bipartite.color(g)
    side0 = [k for k in range(n) if colour[k] == 0]
    side1 = [k for k in range(n) if colour[k] == 1]
    vis = side0 if len(side0) >= len(side1) else side1
    labels = model.labels
    return [labels[k] for k in vis]


def _odd_cycle(g: nx.Graph) -> list[int]:
    """Nodes of one odd cycle of a non-bipartite graph (for the error message)."""
    for comp in nx.connected_components(g):
        root = next(iter(comp))
        depth = {root: 0}
        parent = {root: root}
        queue = [root]
        for u in queue:
            for v in g[u]:
                if v not in depth:
                    depth[v], parent[v] = depth[u] + 1, u
                    queue.append(v)
                elif depth[v] == depth[u]:
                    # walk both up to the common ancestor
                    a, b, left, right = u, v, [u], [v]
                    while a != b:
                        a, b = parent[a], parent[b]
                        left.append(a)
                        right.append(b)
                    return left + right[-2::-1]
    return []
