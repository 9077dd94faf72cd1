"""Restricted Boltzmann machines with +-1 units.

E(v, h) = sum_i a_i v_i + sum_j b_j h_j + sum_ij v_i W_ij h_j, p proportional to
exp(-beta E): an Ising model on the complete bipartite graph, in the same convention as
:class:`qbm.IsingModel` (see :meth:`RBM.to_ising`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from qbm.ising import IsingModel
from qbm._validate import as_spins, finite_array


class RBM:
    """RBM parameters: ``W`` (nv, nh), visible biases ``a`` (nv,), hidden biases ``b`` (nh,)."""

    def __init__(self, W: Any, a: Any = None, b: Any = None) -> None:
        W = finite_array(W, "W", 2)
        nv, nh = W.shape
        if nv == 0 or nh == 0:
            raise ValueError("W: needs at least one visible and one hidden unit")
        self.W = np.ascontiguousarray(W)
        self.a = np.zeros(nv) if a is None else finite_array(a, "a", 1)
        self.b = np.zeros(nh) if b is None else finite_array(b, "b", 1)
        if self.a.shape != (nv,):
            raise ValueError(f"a: expected shape ({nv},), got {self.a.shape}")
        if self.b.shape != (nh,):
            raise ValueError(f"b: expected shape ({nh},), got {self.b.shape}")

    @property
    def num_visible(self) -> int:
        return int(self.W.shape[0])

    @property
    def num_hidden(self) -> int:
        return int(self.W.shape[1])

    def energy(self, v: Any, h: Any) -> np.ndarray:
        """E(v, h) for batches v (N, nv), h (N, nh) of +-1."""
        v = as_spins(v, self.num_visible, "v").astype(np.float64)
        h = as_spins(h, self.num_hidden, "h").astype(np.float64)
        return v @ self.a + h @ self.b + np.einsum("ki,ij,kj->k", v, self.W, h)

    def to_ising(self) -> IsingModel:
        """The same model as an :class:`IsingModel` on nv + nh spins (visible first),
        labels ``("v", i)`` and ``("h", j)``."""
        nv, nh = self.W.shape
        Wsp = sp.csr_array(self.W)
        J = sp.block_array([[None, Wsp], [Wsp.T, None]], format="csr")
        if J.shape != (nv + nh, nv + nh):  # pragma: no cover - defensive
            raise RuntimeError("bad block layout")
        labels = [("v", i) for i in range(nv)] + [("h", j) for j in range(nh)]
        return IsingModel(np.concatenate([self.a, self.b]), J, labels=labels)

    @classmethod
    def from_ising(cls, model: IsingModel, visible: Any) -> RBM:
        """Split a bipartite :class:`IsingModel` into an RBM; ``visible`` lists the labels
        of one side (the other side is hidden, in model order)."""
        vis = set(visible)
        idx_v = [k for k, lab in enumerate(model.labels) if lab in vis]
        idx_h = [k for k, lab in enumerate(model.labels) if lab not in vis]
        if len(idx_v) != len(vis):
            raise ValueError("visible: contains labels that are not in the model")
        J = model.J.tocsr()
        if J[idx_v][:, idx_v].nnz or J[idx_h][:, idx_h].nnz:
            raise ValueError("model: not bipartite between the given visible units and the rest")
        W = J[idx_v][:, idx_h].toarray()
        return cls(W, model.h[idx_v], model.h[idx_h])

    def __repr__(self) -> str:
        return f"RBM(num_visible={self.num_visible}, num_hidden={self.num_hidden})"
