"""Boltzmann-machine priors over n spins z in {-1, +1}^n.

E(z) = -sum_i h_i z_i - sum_{(i,j) in edges} J_ij z_i z_j, p(z) = exp(-E(z)) / Z
(the sign convention of Kim & Park and DVAE; :meth:`BoltzmannPrior.to_ising` converts to
qbm's Ising convention E = sum h s + sum J s s by flipping signs).

Graphs: ``"rbm"`` (complete bipartite between the first n//2 and the rest),
``"zephyr"`` (a connected hardware-native subgraph of a Zephyr graph, so a QPU samples it
without chains), ``"full"``, or an explicit edge list.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from qbm.ising import IsingModel


def rbm_edges(n: int) -> list[tuple[int, int]]:
    nv = n // 2
    return [(i, j) for i in range(nv) for j in range(nv, n)]


def zephyr_edges(n: int, m: int | None = None, t: int = 4) -> list[tuple[int, int]]:
    """Edges among n Zephyr qubits taken in breadth-first order from a central qubit of
    Z(m, t) (connected, hardware-native); returns edges on indices 0..n-1."""
    from qbm.problems import zephyr_graph

    if m is None:
        m = 1
        while 4 * t * m * (2 * m + 1) < n:
            m += 1
    g = zephyr_graph(m, t)
    if g.number_of_nodes() < n:
        raise ValueError(f"n: Z({m},{t}) has only {g.number_of_nodes()} qubits")
    start = max(g.nodes, key=lambda v: g.degree(v))
    order, seen, frontier = [], {start}, [start]
    while frontier and len(order) < n:
        nxt = []
        for v in frontier:
            order.append(v)
            for u in sorted(g.neighbors(v)):
                if u not in seen:
                    seen.add(u)
                    nxt.append(u)
        frontier = nxt
    chosen = order[:n]
    idx = {v: k for k, v in enumerate(chosen)}
    return sorted((min(idx[a], idx[b]), max(idx[a], idx[b])) for a, b in g.subgraph(chosen).edges)


def make_edges(n: int, graph: str | Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    if not isinstance(graph, str):
        edges = sorted({(min(a, b), max(a, b)) for a, b in graph})
        for a, b in edges:
            if a == b or not (0 <= a < n and 0 <= b < n):
                raise ValueError(f"graph: bad edge ({a}, {b}) for {n} units")
        return edges
    if graph == "rbm":
        return rbm_edges(n)
    if graph == "zephyr":
        return zephyr_edges(n)
    if graph == "full":
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    raise ValueError(f"graph: unknown graph {graph!r}; choose rbm, zephyr, full or give an edge list")


class _PairEnergy(torch.autograd.Function):
    """E(z) for a batch of rows by the Rust core (``qbm._core.pair_energies``), with
    gradients for z, h and J by ``qbm._core.pair_energy_grad`` (same bits on any number
    of threads)."""

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, h: torch.Tensor, J: torch.Tensor, edges: np.ndarray) -> torch.Tensor:  # type: ignore[override]
        from qbm import _core

        zd = np.ascontiguousarray(z.detach().to(torch.float64).numpy())
        hd, jd = h.detach().numpy(), J.detach().numpy()
        ctx.zd, ctx.hd, ctx.jd, ctx.edges, ctx.zdtype = zd, hd, jd, edges, z.dtype
        return torch.from_numpy(_core.pair_energies(zd, hd, edges, jd))

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        from qbm import _core

        want_z = bool(ctx.needs_input_grad[0])
        gh, gj, gz = _core.pair_energy_grad(
            ctx.zd, ctx.hd, ctx.edges, ctx.jd, np.ascontiguousarray(g.detach().to(torch.float64).numpy()), want_z
        )
        return (
            torch.from_numpy(gz).to(ctx.zdtype) if want_z else None,
            torch.from_numpy(gh) if ctx.needs_input_grad[1] else None,
            torch.from_numpy(gj) if ctx.needs_input_grad[2] else None,
            None,
        )


class BoltzmannPrior(torch.nn.Module):
    """Learnable fields h (n,) and couplings J (one per edge) on a fixed graph."""

    def __init__(
        self, n: int, graph: str | Sequence[tuple[int, int]] = "rbm", *, init_scale: float = 0.01, seed: int = 0
    ) -> None:
        super().__init__()
        if n < 1:
            raise ValueError(f"n: need at least one unit, got {n}")
        self.n = n
        self.graph_name = graph if isinstance(graph, str) else "edges"
        edges = make_edges(n, graph)
        if not edges and n > 1:
            raise ValueError("graph: no edges")
        self.register_buffer("edges", torch.tensor(edges, dtype=torch.long).reshape(-1, 2))
        g = torch.Generator().manual_seed(seed)
        self.h = torch.nn.Parameter(init_scale * torch.randn(n, generator=g, dtype=torch.float64))
        self.J = torch.nn.Parameter(init_scale * torch.randn(len(edges), generator=g, dtype=torch.float64))

    @property
    def num_edges(self) -> int:
        return int(self.edges.shape[0])

    def energy(self, z: torch.Tensor) -> torch.Tensor:
        """E(z) for a batch (B, n) of +-1 values (or their means: E is multilinear)."""
        z = z.to(self.h.dtype)
        i, j = self.edges[:, 0], self.edges[:, 1]
        if self.n <= 2048 and self.n * self.n <= 128 * self.num_edges:
            # dense upper-triangular coupling matrix: one small matmul instead of a gather
            # over the edges (and a scatter in backward) while the matrix is not much
            # sparser than Zephyr's (forward + backward, B = 128, 1 thread: 16x16 RBM 2.4x,
            # Z(4) 1.5x, 128-node degree 8 2.1x faster; 1024-node degree 8 2.6x slower)
            W = torch.zeros(self.n, self.n, dtype=self.J.dtype, device=self.J.device).index_put((i, j), self.J)
            return -(z @ self.h) - ((z @ W) * z).sum(-1)
        if z.device.type == "cpu" and self.h.device.type == "cpu" and z.ndim == 2:
            # sparse and large (Zephyr-scale priors): the core's edge loop, rows over threads,
            # no rows x edges temporaries (8000 x 20328 edges: 8.3 s in torch, see benches/prior.py)
            return _PairEnergy.apply(z, self.h, self.J, self._edge_array())
        return -(z @ self.h) - (z[:, i] * z[:, j] * self.J).sum(-1)

    def _edge_array(self) -> np.ndarray:
        arr = getattr(self, "_edges_np", None)
        if arr is None:
            arr = np.ascontiguousarray(self.edges.cpu().numpy().astype(np.int64))
            self._edges_np = arr
        return arr

    def quasi_objective(
        self, z_data: torch.Tensor, z_model: torch.Tensor, weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        """mean E(z_data) - mean E(z_model), model samples held constant: its gradient
        w.r.t. (h, J) is the negative log-likelihood gradient E_data[dE] - E_model[dE].
        ``weights`` (optional) weight the model samples (e.g. exact probabilities)."""
        e_model = self.energy(z_model.detach())
        m = e_model.mean() if weights is None else (weights.detach() * e_model).sum() / weights.detach().sum()
        return self.energy(z_data).mean() - m

    def to_ising(self, beta: float = 1.0, extra_field: Any = None) -> IsingModel:
        """The prior at inverse temperature ``beta`` as an :class:`IsingModel` (qbm's sign
        convention), optionally with extra fields added to h (c-QA bias)."""
        h = self.h.detach().cpu().numpy().astype(np.float64)
        if extra_field is not None:
            h = h + np.asarray(extra_field, dtype=np.float64)
        indptr, indices, take = self._csr_pattern()
        J = self.J.detach().cpu().numpy().astype(np.float64)
        return IsingModel.from_csr(-beta * h, indptr, indices, -beta * J[take])

    def _csr_pattern(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CSR structure of the (fixed) edge set, built once: row pointers, column
        indices, and for every CSR entry the edge whose coupling it holds."""
        pat = getattr(self, "_pattern", None)
        if pat is None:
            e = self.edges.cpu().numpy().astype(np.int64)
            m = len(e)
            rows = np.concatenate([e[:, 0], e[:, 1]])
            cols = np.concatenate([e[:, 1], e[:, 0]])
            edge = np.concatenate([np.arange(m), np.arange(m)])
            o = np.lexsort((cols, rows))
            indptr = np.zeros(self.n + 1, dtype=np.int64)
            np.add.at(indptr, rows[o] + 1, 1)
            pat = (np.cumsum(indptr), cols[o], edge[o])
            self._pattern = pat
        return pat

    def rbm_form(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(W, a, b) in qbm's RBM convention if the graph is the bipartite ``"rbm"`` graph."""
        if self.graph_name != "rbm":
            return None
        nv = self.n // 2
        W = np.zeros((nv, self.n - nv))
        e = self.edges.cpu().numpy()
        W[e[:, 0], e[:, 1] - nv] = -self.J.detach().cpu().numpy()
        h = -self.h.detach().cpu().numpy()
        return W, h[:nv], h[nv:]

    # ------------------------------------------------------------- partition function
    def exact_log_z(self, chunk: int = 1 << 16) -> torch.Tensor:
        """log Z by enumeration of all 2^n states (n <= 20); differentiable."""
        if self.n > 20:
            raise ValueError(f"n: exact log Z enumerates 2^n states; n = {self.n} > 20, use ais_log_z")
        parts = []
        for start in range(0, 2**self.n, chunk):
            idx = torch.arange(start, min(start + chunk, 2**self.n))
            z = ((idx[:, None] >> torch.arange(self.n - 1, -1, -1)) & 1).to(self.h.device, torch.float64) * 2 - 1
            parts.append(torch.logsumexp(-self.energy(z), 0))
        return torch.logsumexp(torch.stack(parts), 0)

    def all_states(self) -> torch.Tensor:
        idx = torch.arange(2**self.n)
        return ((idx[:, None] >> torch.arange(self.n - 1, -1, -1)) & 1).to(self.h.device, torch.float64) * 2 - 1

    def ais_log_z(self, num_chains: int = 256, num_betas: int = 2000, seed: int = 0) -> dict[str, float]:
        """Annealed importance sampling estimate of log Z: from the uniform distribution
        (beta = 0, log Z_0 = n log 2) to beta = 1 through ``num_betas`` intermediate
        distributions exp(-beta E), one heat-bath sweep per step (Rust Gibbs sampler).
        Returns the estimate and its standard error (delta method over chains)."""
        from qbm.samplers import GibbsSampler
        from qbm.samplers.gibbs import _run_schedule

        model = self.to_ising()
        betas = np.linspace(0.0, 1.0, num_betas + 1) ** 2
        rng = np.random.default_rng(seed)
        z0 = rng.choice(np.array([-1, 1], dtype=np.int8), size=(num_chains, self.n))
        # one core call: heat-bath sweep k at betas[k], energies recorded after every sweep
        res = _run_schedule(
            GibbsSampler(),
            model,
            betas[1:],
            num_chains,
            "heat_bath",
            "colour",
            z0,
            int(rng.integers(2**63)),
            None,
            {},
            record_energies=True,
        )
        e_prev = np.concatenate([model.energy(z0)[:, None], res.info["energy_trace"][:, :-1]], axis=1)
        logw = -(e_prev * np.diff(betas)[None, :]).sum(axis=1)
        m = logw.max()
        w = np.exp(logw - m)
        est = self.n * math.log(2) + m + math.log(w.mean())
        se = float(w.std(ddof=1) / (w.mean() * math.sqrt(num_chains))) if num_chains > 1 else float("nan")
        return {"log_z": est, "stderr": se}

    def log_z(self) -> float:
        """Exact log Z for n <= 20, else an AIS estimate."""
        if self.n <= 20:
            with torch.no_grad():
                return float(self.exact_log_z())
        return self.ais_log_z()["log_z"]
