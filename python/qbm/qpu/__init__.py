"""D-Wave Advantage2 backend: embedding (cached), chains, scaling, effective temperature,
the three annealing modes, submission with retries, and an offline stand-in."""

from qbm.qpu.embedding import EmbeddingCache, chain_length_stats, find_embedding_for
from qbm.qpu.sampler import (
    MODES,
    Advantage2Sampler,
    calibrate_energy_scale,
    estimate_beta_eff,
    scale_to_ranges,
    steer_scale,
)
from qbm.qpu.standin import SchrodingerStandIn, SQAStandIn, mock_advantage2, parse_mock

__all__ = [
    "MODES",
    "Advantage2Sampler",
    "EmbeddingCache",
    "SQAStandIn",
    "SchrodingerStandIn",
    "calibrate_energy_scale",
    "chain_length_stats",
    "estimate_beta_eff",
    "find_embedding_for",
    "mock_advantage2",
    "parse_mock",
    "scale_to_ranges",
    "steer_scale",
]
