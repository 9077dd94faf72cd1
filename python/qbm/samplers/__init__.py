"""Classical Ising samplers: each is a ``dimod.Sampler`` and has an array API
(``sample_model``) for training loops."""

from qbm.samplers._base import IsingSampler, SampleResult
from qbm.samplers.annealing import SimulatedAnnealingSampler, default_beta_range, make_beta_schedule
from qbm.samplers.gibbs import GibbsSampler, PersistentChains
from qbm.samplers.rbm import RBMSampler
from qbm.samplers.schrodinger import SchrodingerAnnealer
from qbm.samplers.sqa import SQASampler, trotter_coupling
from qbm.samplers.tempering import ParallelTemperingSampler, geometric_ladder

__all__ = [
    "GibbsSampler",
    "ParallelTemperingSampler",
    "RBMSampler",
    "SQASampler",
    "SchrodingerAnnealer",
    "geometric_ladder",
    "trotter_coupling",
    "IsingSampler",
    "PersistentChains",
    "SampleResult",
    "SimulatedAnnealingSampler",
    "default_beta_range",
    "make_beta_schedule",
]
