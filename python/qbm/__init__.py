"""qbm: Rust-accelerated Ising samplers and generative models with energy-based and
quantum components.

Layers (see the design notes): ``qbm._core`` (Rust), :mod:`qbm.ising`,
:mod:`qbm.samplers`, :mod:`qbm.problems`, the ``qbm`` command line.
"""

from qbm import _core
from qbm import diagnostics as _diagnostics  # noqa: F401  (registers the certifier behind certify=True)
from qbm.ising import IsingModel

__version__ = _core.__version__

__all__ = ["IsingModel", "__version__"]
