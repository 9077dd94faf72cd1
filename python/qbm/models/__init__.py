"""Torch models."""

from qbm.models.qcbm import QCBM, kl_divergence, local_fidelity_loss, train_qcbm, tvd

__all__ = ["QCBM", "kl_divergence", "local_fidelity_loss", "train_qcbm", "tvd"]
