"""Classical Ising samplers: each is a ``dimod.Sampler`` and has an array API
(``sample_model``) for training loops."""

from qbm.samplers._base import IsingSampler, SampleResult
from qbm.samplers.annealing import SimulatedAnnealingSampler, default_beta_range, make_beta_schedule
from qbm.samplers.gibbs import GibbsSampler, PersistentChains

__all__ = [
    "GibbsSampler",
    "IsingSampler",
    "PersistentChains",
    "SampleResult",
    "SimulatedAnnealingSampler",
    "default_beta_range",
    "make_beta_schedule",
]
