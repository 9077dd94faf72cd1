"""dwave-pytorch-plugin interop (``pip install "quantum-boltzmann-ml[plugin]"``).

Conventions. The plugin's ``GraphRestrictedBoltzmannMachine`` (GRBM) has energy
H(x) = sum_i linear_i x_i + sum_(ij) quadratic_ij x_i x_j (dimod's Ising convention) and
samples p(x) ~ exp(-H(x)). qbm's :class:`~qbm.models.prior.BoltzmannPrior` writes
E(z) = -sum_i h_i z_i - sum_(ij) J_ij z_i z_j. The same distribution therefore has
``linear = -h`` and ``quadratic = -J``: the parameters flip sign, the energies agree.

* :func:`prior_to_grbm` / :func:`grbm_to_prior` convert models (all GRBM nodes, hidden
  ones included, become prior units, in the GRBM's node order).
* :class:`QbmSampler` is a plugin ``TorchSampler`` backed by any qbm sampler (Gibbs by
  default, persistent chains): use it wherever the plugin takes a sampler, e.g. instead
  of ``BlockSampler`` in a ``DiscreteVariationalAutoencoder`` training loop. qbm's
  samplers are also ``dimod.Sampler``s, so ``grbm.sample(GibbsSampler(), prefactor=1,
  sample_params=...)`` works as it does with any dimod sampler.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from qbm.ising import IsingModel
from qbm.models.prior import BoltzmannPrior

try:
    from dwave.plugins.torch.models import GraphRestrictedBoltzmannMachine
    from dwave.plugins.torch.samplers.base import TorchSampler
except ImportError as e:  # pragma: no cover - optional extra
    raise ImportError(
        "qbm.interop.plugin needs dwave-pytorch-plugin (pip install 'quantum-boltzmann-ml[plugin]': it also needs "
        "einops and dwave-hybrid)"
    ) from e

__all__ = ["prior_to_grbm", "grbm_to_prior", "grbm_to_ising", "QbmSampler"]


def prior_to_grbm(prior: BoltzmannPrior) -> GraphRestrictedBoltzmannMachine:
    """The prior as a GRBM on nodes 0..n-1 with the prior's edges (same distribution)."""
    edges = [tuple(int(v) for v in e) for e in prior.edges.tolist()]
    h = prior.h.detach().cpu().numpy()
    J = prior.J.detach().cpu().numpy()
    return GraphRestrictedBoltzmannMachine(
        list(range(prior.n)),
        edges,
        linear={i: -float(h[i]) for i in range(prior.n)},
        quadratic={e: -float(J[k]) for k, e in enumerate(edges)},
    )


def grbm_to_prior(grbm: GraphRestrictedBoltzmannMachine) -> BoltzmannPrior:
    """A prior with one unit per GRBM node (in ``grbm.nodes`` order) and its edges."""
    n = int(grbm.n_nodes)
    ei = grbm.edge_idx_i.detach().cpu().tolist()
    ej = grbm.edge_idx_j.detach().cpu().tolist()
    prior = BoltzmannPrior(n, list(zip(ei, ej)), init_scale=0.0)
    with torch.no_grad():
        prior.h.copy_(-grbm.linear.detach().to(torch.float64).cpu())
        prior.J.copy_(-grbm.quadratic.detach().to(torch.float64).cpu())
    return prior


def grbm_to_ising(grbm: GraphRestrictedBoltzmannMachine, beta: float = 1.0) -> IsingModel:
    """The GRBM's Ising model exp(-beta H) on spins 0..n-1 (node order)."""
    n = int(grbm.n_nodes)
    ei = grbm.edge_idx_i.detach().cpu().numpy()
    ej = grbm.edge_idx_j.detach().cpu().numpy()
    q = grbm.quadratic.detach().cpu().numpy().astype(np.float64)
    J = np.zeros((n, n))
    np.add.at(J, (ei, ej), beta * q)
    np.add.at(J, (ej, ei), beta * q)
    return IsingModel(beta * grbm.linear.detach().cpu().numpy().astype(np.float64), J)


class QbmSampler(TorchSampler):
    """A plugin ``TorchSampler`` that draws from ``grbm`` with a qbm sampler.

    ``sample()`` returns (num_chains, n_nodes) +-1 spins on the GRBM's device and dtype.
    Chains persist between calls (PCD) unless ``persistent=False``; call k uses the
    seed derived from (seed, k), so runs are reproducible. The GRBM's current parameters
    are read at every call. ``sampler`` is any qbm sampler with the array API
    (default :class:`qbm.samplers.GibbsSampler`); ``params`` go to its ``sample_model``.
    """

    def __init__(
        self,
        grbm: GraphRestrictedBoltzmannMachine,
        num_chains: int,
        *,
        num_sweeps: int = 10,
        beta: float = 1.0,
        sampler: Any = None,
        persistent: bool = True,
        seed: int = 0,
        **params: Any,
    ) -> None:
        from qbm.samplers import GibbsSampler

        self._grbm = grbm
        from qbm._validate import check_beta, check_positive_int, check_seed

        self.num_chains = check_positive_int(num_chains, "num_chains")
        self.num_sweeps = check_positive_int(num_sweeps, "num_sweeps")
        self.beta = check_beta(beta)
        seed = check_seed(seed)
        self.sampler = sampler if sampler is not None else GibbsSampler()
        self.persistent, self.seed, self.params = persistent, int(seed), params
        self.calls = 0
        self.state: np.ndarray | None = None
        super().__init__(refresh=True)

    def sample(self, x: torch.Tensor | None = None) -> torch.Tensor:
        """Draw (num_chains, n_nodes) spins; ``x`` (optional) gives the starting states."""
        model = grbm_to_ising(self._grbm)
        init = self.state if self.persistent else None
        if x is not None:
            init = np.ascontiguousarray(np.sign(x.detach().cpu().numpy()), dtype=np.int8)
        seed = int(np.random.SeedSequence([self.seed, self.calls]).generate_state(1, dtype=np.uint64)[0])
        self.calls += 1
        kw = dict(num_reads=self.num_chains, num_sweeps=self.num_sweeps, initial_states=init, seed=seed)
        if "beta" in type(self.sampler).parameter_names():
            kw["beta"] = self.beta
        res = self.sampler.sample_model(model, **kw, **self.params)
        self.state = np.ascontiguousarray(res.spins, dtype=np.int8)
        ref = self._grbm.linear
        return torch.as_tensor(res.spins, dtype=ref.dtype, device=ref.device)


class PluginBlockChains:
    """A qbm prior sampler (see :mod:`qbm.models.negative`) backed by the plugin's
    ``BlockSampler``: persistent block-Gibbs chains in torch on a GRBM that mirrors the
    prior (parameters copied in before every call). Registered as ``"plugin-block"`` so
    the BM-VAE can train with it and ``benches/training.py`` can time it beside qbm's."""

    name = "plugin-block"

    def __init__(self, num_chains: int, sweeps: int, seed: int, colouring: str = "greedy") -> None:
        from qbm._validate import check_positive_int, check_seed

        self.num_chains = check_positive_int(num_chains, "num_chains")
        self.sweeps = check_positive_int(sweeps, "sweeps")
        self.seed = check_seed(seed)
        self.colouring = colouring
        self.calls = 0
        self.last_info: dict[str, Any] = {}
        self._grbm: GraphRestrictedBoltzmannMachine | None = None
        self._sampler: Any = None

    def _build(self, prior: BoltzmannPrior) -> None:
        import networkx as nx
        from dwave.plugins.torch.samplers import BlockSampler

        self._grbm = prior_to_grbm(prior)
        g = nx.Graph()
        g.add_nodes_from(range(prior.n))
        g.add_edges_from(tuple(e) for e in prior.edges.tolist())
        colour = nx.greedy_color(g)
        self._sampler = BlockSampler(
            self._grbm, lambda v: colour[v], self.num_chains, schedule=[1.0] * self.sweeps, seed=self.seed
        )
        pending = getattr(self, "_pending", None)
        if pending is not None and pending.get("state") is not None:  # resume: chains and torch RNG
            with torch.no_grad():
                self._sampler._x.copy_(torch.as_tensor(pending["state"]))
            self._sampler._rng.set_state(pending["rng"])

    def sample(self, prior: BoltzmannPrior) -> torch.Tensor:
        if self._grbm is None:
            self._build(prior)
        assert self._grbm is not None
        with torch.no_grad():
            self._grbm._linear.copy_(-prior.h.detach().to(self._grbm._linear.dtype))
            self._grbm._quadratic.copy_(-prior.J.detach().to(self._grbm._quadratic.dtype))
        self.calls += 1
        return self._sampler.sample().detach().to(torch.float64)

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "calls": self.calls, "seed": self.seed,
                "state": None if self._sampler is None else self._sampler._x.detach().numpy().copy(),
                "rng": None if self._sampler is None else self._sampler._rng.get_state()}  # fmt: skip

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.calls, self.seed = int(d["calls"]), int(d["seed"])
        self._pending = d


def _plugin_block(num_chains: int, sweeps: int, seed: int, **_: Any) -> PluginBlockChains:
    return PluginBlockChains(num_chains, sweeps, seed)


def _register() -> None:
    from qbm import registry

    if "plugin-block" not in registry.REGISTRY:
        registry.register("plugin-block", _plugin_block, "dwave-pytorch-plugin BlockSampler (torch), for comparison")


_register()
