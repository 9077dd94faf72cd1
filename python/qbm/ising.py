"""Ising models: E(s) = offset + sum_i h_i s_i + sum_{i<j} J_ij s_i s_j, s in {-1, +1}^n.

This is dimod's SPIN convention; a sampler at inverse temperature beta targets
p(s) proportional to exp(-beta E(s)). ``J`` is held symmetric with zero diagonal
(J_ij = J_ji is the coupling of the pair, counted once in the energy).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import dimod
import numpy as np
import scipy.sparse as sp

from qbm import _core
from qbm._validate import as_spins, check_beta, finite_array


class IsingModel:
    """An Ising model held by the Rust core in CSR form.

    Build it from
      * ``IsingModel(h, J)`` with ``h`` a (n,) array and ``J`` a dense (n, n) array
        or a scipy.sparse matrix (symmetric, zero diagonal);
      * ``IsingModel(h_dict, J_dict)``: dimod-style ``{label: h}``, ``{(u, v): J}``
        with any hashable labels (repeated pairs add up, as in dimod);
      * :meth:`from_bqm` (SPIN or BINARY ``dimod.BinaryQuadraticModel``).

    Attributes: ``h`` (n,) float64, ``J`` symmetric ``scipy.sparse.csr_array``,
    ``labels`` (list), ``offset`` (float, added to every energy).
    """

    __slots__ = ("_core", "_labels", "_index", "offset", "__weakref__")

    def __init__(
        self,
        h: Any,
        J: Any,
        *,
        labels: Sequence[Hashable] | None = None,
        offset: float = 0.0,
    ) -> None:
        if isinstance(h, Mapping) or isinstance(J, Mapping):
            if labels is not None:
                raise ValueError("labels: not accepted with dict input (the dict keys are the labels)")
            h_arr, csr, labels = _from_dicts(h, J)
        else:
            h_arr = finite_array(h, "h", 1)
            csr = _csr_from_matrix(J, h_arr.shape[0])
        n = h_arr.shape[0]
        if labels is None:
            labels = list(range(n))
        labels = list(labels)
        if len(labels) != n:
            raise ValueError(f"labels: expected {n} labels, got {len(labels)}")
        index = {}
        for k, lab in enumerate(labels):
            if lab in index:
                raise ValueError(f"labels: duplicate label {lab!r}")
            index[lab] = k
        if not np.isfinite(offset):
            raise ValueError("offset: must be finite")
        self._core = _core.IsingCsr(
            np.ascontiguousarray(h_arr, dtype=np.float64),
            np.ascontiguousarray(csr.indptr, dtype=np.int64),
            np.ascontiguousarray(csr.indices, dtype=np.int64),
            np.ascontiguousarray(csr.data, dtype=np.float64),
        )
        self._labels = labels
        self._index = index
        self.offset = float(offset)

    # -- pickling (spawn workers, Ray tasks) -----------------------------------------
    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        J = self.J
        labels = self._labels if not isinstance(self._labels, range) else None
        return (_rebuild, (self.h, J.indptr, J.indices, J.data, labels, self.offset))

    # -- construction ---------------------------------------------------------------
    @classmethod
    def from_bqm(cls, bqm: dimod.BinaryQuadraticModel) -> IsingModel:
        """From a dimod BQM (BINARY models are converted to SPIN; the offset is kept)."""
        if not isinstance(bqm, dimod.BinaryQuadraticModel):
            raise ValueError(f"bqm: expected a dimod.BinaryQuadraticModel, got {type(bqm).__name__}")
        if bqm.num_variables == 0:
            raise ValueError("bqm: the model has no variables")
        spin = bqm.spin if bqm.vartype is dimod.BINARY else bqm
        labels = list(spin.variables)
        ldata, (irow, icol, qdata), off = spin.to_numpy_vectors(variable_order=labels)
        n = len(labels)
        mat = sp.coo_array((qdata, (irow, icol)), shape=(n, n)).tocsr()
        mat = (mat + mat.T).tocsr()
        return cls(np.asarray(ldata, dtype=np.float64), mat, labels=labels, offset=float(off))

    @classmethod
    def from_csr(cls, h: np.ndarray, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray) -> IsingModel:
        """Fast path for training loops: a model on spins 0..n-1 straight from CSR arrays
        (h (n,) float64, indptr (n+1,) int64, indices (nnz,) int64 sorted per row, data
        (nnz,) float64; J symmetric with zero diagonal). The core checks all of it once;
        no scipy conversion and no label bookkeeping beyond the identity."""
        self = cls.__new__(cls)
        self._core = _core.IsingCsr(
            np.ascontiguousarray(h, dtype=np.float64),
            np.ascontiguousarray(indptr, dtype=np.int64),
            np.ascontiguousarray(indices, dtype=np.int64),
            np.ascontiguousarray(data, dtype=np.float64),
        )
        n = self._core.num_variables
        self._labels = range(n)
        self._index = _IdentityIndex(n)
        self.offset = 0.0
        return self

    @classmethod
    def from_ising(cls, h: Any, J: Any, offset: float = 0.0) -> IsingModel:
        """dimod's ``sample_ising`` inputs: ``h`` a dict or list, ``J`` a dict."""
        if not isinstance(h, Mapping):
            h = dict(enumerate(h))
        return cls(h, J, offset=offset)

    # -- views ----------------------------------------------------------------------
    @property
    def num_variables(self) -> int:
        return int(self._core.num_variables)

    @property
    def labels(self) -> list[Hashable]:
        return list(self._labels)

    @property
    def h(self) -> np.ndarray:
        return np.asarray(self._core.h)

    @property
    def J(self) -> sp.csr_array:
        indptr, indices, data = self._core.csr()
        n = self.num_variables
        return sp.csr_array((data, indices, indptr), shape=(n, n))

    @property
    def num_interactions(self) -> int:
        return int(self._core.nnz) // 2

    @property
    def core(self) -> _core.IsingCsr:
        """The core object (used by the samplers)."""
        return self._core

    def index(self, label: Hashable) -> int:
        return self._index[label]

    def dense_J(self) -> np.ndarray:
        return self.J.toarray()

    # -- maths ----------------------------------------------------------------------
    def energy(self, spins: Any) -> np.ndarray:
        """Energies of a batch of spins: (N, n) (or (n,)) of +-1 -> (N,) float64."""
        s = as_spins(spins, self.num_variables, "spins")
        return np.asarray(self._core.energies(s)) + self.offset

    def scaled(self, beta: float) -> IsingModel:
        """The model with h and J multiplied by ``beta`` (the energy scale a QPU sees)."""
        b = check_beta(beta)
        return IsingModel(self.h * b, self.J * b, labels=self._labels, offset=self.offset * b)

    def max_abs_field(self) -> float:
        """max_i (|h_i| + sum_j |J_ij|): the largest local field magnitude."""
        return float(np.max(np.abs(self.h) + np.asarray(abs(self.J).sum(axis=1)).ravel()))

    def to_bqm(self) -> dimod.BinaryQuadraticModel:
        """SPIN ``dimod.BinaryQuadraticModel`` with the same labels and offset."""
        J = sp.triu(self.J, k=1).tocoo()
        lab = self._labels
        quad = {(lab[i], lab[j]): float(v) for i, j, v in zip(J.row, J.col, J.data)}
        lin = {lab[i]: float(v) for i, v in enumerate(self.h)}
        return dimod.BinaryQuadraticModel(lin, quad, self.offset, dimod.SPIN)

    def __repr__(self) -> str:
        return f"IsingModel(num_variables={self.num_variables}, num_interactions={self.num_interactions})"


def _rebuild(
    h: np.ndarray, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, labels: Any, offset: float
) -> IsingModel:
    """Unpickle an :class:`IsingModel` (the core checks the arrays again)."""
    m = IsingModel.from_csr(h, indptr, indices, data)
    if labels is not None:
        m._labels = list(labels)
        m._index = {lab: k for k, lab in enumerate(m._labels)}
    m.offset = float(offset)
    return m


def _csr_from_matrix(J: Any, n: int) -> sp.csr_array:
    if sp.issparse(J):
        if J.shape != (n, n):
            raise ValueError(f"J: expected shape ({n}, {n}), got {J.shape}")
        m = sp.csr_array(J, dtype=np.float64)
        m.sum_duplicates()
        if m.nnz and not np.all(np.isfinite(m.data)):
            raise ValueError("J: contains NaN or inf")
    else:
        a = finite_array(J, "J", 2)
        if a.shape != (n, n):
            raise ValueError(f"J: expected shape ({n}, {n}), got {a.shape}")
        m = sp.csr_array(a)
    if np.any(m.diagonal() != 0):
        raise ValueError("J: diagonal must be zero (a spin does not couple to itself)")
    m.eliminate_zeros()
    diff = m - m.T
    if diff.nnz and np.max(np.abs(diff.data)) > 1e-12 * max(1.0, np.max(np.abs(m.data))):
        raise ValueError(
            "J: couplings must be symmetric (J[i, j] == J[j, i]); pass J + J.T for an upper-triangular matrix"
        )
    m.sort_indices()
    return m


def _from_dicts(h: Any, J: Any) -> tuple[np.ndarray, sp.csr_array, list[Hashable]]:
    if not isinstance(h, Mapping):
        if isinstance(h, Iterable):
            h = dict(enumerate(h))
        else:
            raise ValueError("h: expected a dict {label: bias} or a sequence")
    if not isinstance(J, Mapping):
        raise ValueError("J: with dict fields, J must be a dict {(u, v): coupling}")
    labels: list[Hashable] = []
    index: dict[Hashable, int] = {}

    def idx(v: Hashable) -> int:
        if v not in index:
            index[v] = len(labels)
            labels.append(v)
        return index[v]

    for v in h:
        idx(v)
    rows, cols, vals = [], [], []
    for key, val in J.items():
        if not (isinstance(key, tuple) and len(key) == 2):
            raise ValueError(f"J: keys must be (u, v) pairs, got {key!r}")
        u, v = key
        if u == v:
            raise ValueError(f"J: diagonal coupling ({u!r}, {v!r}) is not allowed")
        i, j = idx(u), idx(v)
        rows += [i, j]
        cols += [j, i]
        vals += [float(val), float(val)]
    n = len(labels)
    if n == 0:
        raise ValueError("h: the model has no variables")
    hv = np.zeros(n)
    for v, b in h.items():
        hv[index[v]] = float(b)
    if not np.all(np.isfinite(hv)):
        raise ValueError("h: contains NaN or inf")
    vals_a = np.asarray(vals, dtype=np.float64)
    if not np.all(np.isfinite(vals_a)):
        raise ValueError("J: contains NaN or inf")
    m = sp.coo_array(
        (vals_a, (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64))), shape=(n, n)
    ).tocsr()
    m.sum_duplicates()
    m.eliminate_zeros()
    m.sort_indices()
    return hv, m, labels


class _IdentityIndex(Mapping):
    """label -> index for the labels 0..n-1 without building a dict."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __getitem__(self, label: Any) -> int:
        if isinstance(label, (int, np.integer)) and not isinstance(label, bool) and 0 <= label < self.n:
            return int(label)
        raise KeyError(label)

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self) -> int:
        return self.n
