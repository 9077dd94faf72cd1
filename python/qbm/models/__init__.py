"""Torch models: Boltzmann-machine priors and the VAEs built on them, the Gaussian VAE
baseline, quantum circuit Born machines, and latent style-based quantum GANs."""

from qbm.models.evaluation import evaluate_vae, iw_loglik, log_partition
from qbm.models.negative import FreshAnneals, PersistentChains, QPUAnneals
from qbm.models.prior import BoltzmannPrior, rbm_edges, zephyr_edges
from qbm.models.qcbm import QCBM, kl_divergence, local_fidelity_loss, train_qcbm, tvd
from qbm.models.qgan import ClassicalGenerator, Discriminator, LatentAutoencoder, StyleQuantumGenerator
from qbm.models.vae import BMVAE, GaussianVAE

__all__ = [
    "BMVAE",
    "BoltzmannPrior",
    "ClassicalGenerator",
    "Discriminator",
    "FreshAnneals",
    "GaussianVAE",
    "LatentAutoencoder",
    "PersistentChains",
    "QCBM",
    "QPUAnneals",
    "StyleQuantumGenerator",
    "evaluate_vae",
    "iw_loglik",
    "kl_divergence",
    "local_fidelity_loss",
    "log_partition",
    "rbm_edges",
    "train_qcbm",
    "tvd",
    "zephyr_edges",
]
