"""Block Gibbs sampling of RBMs (all hidden units given the visible ones, then all
visible given the hidden ones)."""

from __future__ import annotations

import time
from typing import Any

import networkx as nx
import numpy as np

from qbm import _core
from qbm.ising import IsingModel
from qbm.rbm import RBM
from qbm._validate import as_spins, check_beta, check_positive_int, check_seed, check_threads
from qbm.samplers._base import IsingSampler, SampleResult


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

    _parameter_names = (
        "beta",
        "num_reads",
        "num_sweeps",
        "initial_states",
        "clamp",
        "visible",
        "seed",
        "num_threads",
    )

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
        if isinstance(model, IsingModel):
            vis = visible if visible is not None else _larger_side(model)
            rbm = RBM.from_ising(model, vis)
            order = [lab for lab in model.labels if lab in set(vis)] + [
                lab for lab in model.labels if lab not in set(vis)
            ]
            labels = order
            offset = model.offset
        elif isinstance(model, RBM):
            rbm, offset = model, 0.0
        else:
            raise ValueError(f"model: expected a qbm.rbm.RBM or a bipartite IsingModel, got {type(model).__name__}")
        beta = check_beta(beta)
        num_reads = check_positive_int(num_reads, "num_reads")
        num_sweeps = check_positive_int(num_sweeps, "num_sweeps")
        seed = check_seed(seed)
        threads = check_threads(num_threads) or self.num_threads
        nv, nh = rbm.num_visible, rbm.num_hidden
        init = None
        if initial_states is not None:
            arr = np.asarray(initial_states)
            if arr.ndim == 2 and arr.shape[1] == nv + nh:
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
        v, h, e = _core.sample_rbm(
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
        dt = time.perf_counter() - t0
        spins = np.concatenate([np.asarray(v), np.asarray(h)], axis=1)
        info: dict[str, Any] = {
            "seed": seed,
            "beta": beta,
            "num_visible": nv,
            "num_hidden": nh,
            "timing": {
                "sampling_s": dt,
                "unit_updates_per_s": (nv + nh) * num_sweeps * num_reads / dt if dt > 0 else 0.0,
            },
        }
        if labels is not None:
            info["labels"] = labels
        return SampleResult(spins, np.asarray(e) + offset, info)


def _larger_side(model: IsingModel) -> list[Any]:
    n = model.num_variables
    J = model.J.tocoo()
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(zip(J.row.tolist(), J.col.tolist()))
    if not nx.is_bipartite(g):
        raise ValueError("model: the coupling graph is not bipartite; use GibbsSampler or PT")
    colour = nx.bipartite.color(g)
    side0 = [k for k in range(n) if colour[k] == 0]
    side1 = [k for k in range(n) if colour[k] == 1]
    vis = side0 if len(side0) >= len(side1) else side1
    labels = model.labels
    return [labels[k] for k in vis]
