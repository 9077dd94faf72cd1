"""Type stubs for the Rust extension ``qbm._core`` (checked by ``mypy.stubtest``)."""

from typing import Any, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "__version__",
    "LANES",
    "simd_level",
    "default_threads",
    "live_pools",
    "available_memory",
    "trotter_coupling",
    "MAX_THREADS",
    "MAX_POOLS",
    "IsingCsr",
    "sample_schedule",
    "sample_tempering",
    "sample_sqa",
    "sample_rbm",
    "sample_sqa_ct",
    "hamming_histograms",
    "hamming_cross_histogram",
    "rbf_kernel_sums",
    "CircuitProgram",
    "sample_counts",
    "pair_energies",
    "pair_energy_grad",
    "TransverseIsing",
    "draw_states",
]

__version__: str
LANES: int
MAX_THREADS: int
MAX_POOLS: int

def simd_level() -> str: ...
def default_threads() -> int: ...
def live_pools() -> int: ...
def available_memory() -> int | None: ...
def trotter_coupling(beta: float, gamma: float, s: float, num_trotter_slices: int) -> float: ...

@final
class IsingCsr:
    """Ising model held by the core in CSR form."""

    def __new__(
        cls,
        h: npt.NDArray[np.float64],
        indptr: npt.NDArray[np.int64],
        indices: npt.NDArray[np.int64],
        data: npt.NDArray[np.float64],
    ) -> IsingCsr: ...
    @property
    def num_variables(self) -> int: ...
    @property
    def nnz(self) -> int: ...
    @property
    def h(self) -> npt.NDArray[np.float64]: ...
    def csr(
        self,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]: ...
    def energies(self, spins: npt.NDArray[np.int8]) -> npt.NDArray[np.float64]: ...

def sample_schedule(
    model: IsingCsr,
    betas: npt.NDArray[np.float64],
    num_reads: int,
    *,
    initial_states: npt.NDArray[np.int8] | None = None,
    update: str = "heat_bath",
    order: str = "colour",
    seed: int = 0,
    num_threads: int | None = None,
    trace: bool = False,
) -> dict[str, Any]: ...
def sample_tempering(
    model: IsingCsr,
    betas: npt.NDArray[np.float64],
    num_reads: int,
    num_sweeps: int,
    *,
    swap_interval: int = 1,
    adapt_sweeps: int = 0,
    adapt_interval: int = 50,
    initial_states: npt.NDArray[np.int8] | None = None,
    update: str = "heat_bath",
    order: str = "colour",
    seed: int = 0,
    num_threads: int | None = None,
    trace: bool = False,
) -> dict[str, Any]: ...
def sample_sqa(
    model: IsingCsr,
    s_schedule: npt.NDArray[np.float64],
    num_reads: int,
    *,
    beta: float,
    gamma: float,
    num_trotter_slices: int,
    initial_states: npt.NDArray[np.int8] | None = None,
    update: str = "metropolis",
    worldline: bool = True,
    moves: str = "cluster",
    order: str = "colour",
    seed: int = 0,
    num_threads: int | None = None,
    fields: npt.NDArray[np.float64] | None = None,
) -> dict[str, Any]: ...
def sample_sqa_ct(
    model: IsingCsr,
    s_schedule: npt.NDArray[np.float64],
    num_reads: int,
    *,
    beta: float,
    gamma: float,
    initial_states: npt.NDArray[np.int8] | None = None,
    order: str = "colour",
    seed: int = 0,
    num_threads: int | None = None,
) -> dict[str, Any]: ...
def sample_rbm(
    w: npt.NDArray[np.float64],
    a: npt.NDArray[np.float64],
    b: npt.NDArray[np.float64],
    num_reads: int,
    num_sweeps: int,
    *,
    beta: float = 1.0,
    initial_states: npt.NDArray[np.int8] | None = None,
    clamp: npt.NDArray[np.bool_] | None = None,
    seed: int = 0,
    num_threads: int | None = None,
) -> dict[str, Any]: ...
def hamming_histograms(
    x: npt.NDArray[np.uint64],
    y: npt.NDArray[np.uint64],
    nbits: int,
    *,
    num_threads: int | None = None,
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64], npt.NDArray[np.uint64]]: ...
def hamming_cross_histogram(
    x: npt.NDArray[np.uint64],
    y: npt.NDArray[np.uint64],
    nbits: int,
    *,
    num_threads: int | None = None,
) -> npt.NDArray[np.uint64]: ...
def rbf_kernel_sums(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    sigmas: npt.NDArray[np.float64],
    *,
    num_threads: int | None = None,
) -> npt.NDArray[np.float64]: ...

@final
class CircuitProgram:
    def __new__(
        cls,
        n: int,
        kinds: npt.NDArray[np.int64],
        q0: npt.NDArray[np.int64],
        q1: npt.NDArray[np.int64],
        mats: npt.NDArray[np.float64],
    ) -> CircuitProgram: ...
    @property
    def n(self) -> int: ...
    @property
    def num_slots(self) -> int: ...
    @property
    def num_ops(self) -> int: ...
    def states(
        self,
        angles: npt.NDArray[np.float64],
        initial: npt.NDArray[np.float64] | None = None,
        *,
        num_threads: int | None = None,
    ) -> npt.NDArray[np.float64]: ...
    def states_f32(
        self,
        angles: npt.NDArray[np.float64],
        initial: npt.NDArray[np.float64] | None = None,
        *,
        num_threads: int | None = None,
    ) -> npt.NDArray[np.float32]: ...
    def adjoint(
        self,
        angles: npt.NDArray[np.float64],
        psi: npt.NDArray[np.float64],
        lam: npt.NDArray[np.float64],
        *,
        num_threads: int | None = None,
    ) -> npt.NDArray[np.float64]: ...
    def shift_gradient(
        self,
        angles: npt.NDArray[np.float64],
        weight: npt.NDArray[np.float64],
        shots: int | None,
        seed: int,
        initial: npt.NDArray[np.float64] | None = None,
        *,
        num_threads: int | None = None,
        precision: str = "f64",
    ) -> npt.NDArray[np.float64]: ...
    def sample(
        self,
        angles: npt.NDArray[np.float64],
        shots: int,
        seed: int,
        initial: npt.NDArray[np.float64] | None = None,
        *,
        index0: int = 0,
        num_threads: int | None = None,
        precision: str = "f64",
    ) -> npt.NDArray[np.uint64]: ...

def sample_counts(
    probs: npt.NDArray[np.float64],
    shots: int,
    seed: int,
    index0: int = 0,
    *,
    num_threads: int | None = None,
) -> npt.NDArray[np.int64]: ...
def pair_energies(
    z: npt.NDArray[np.float64],
    h: npt.NDArray[np.float64],
    edges: npt.NDArray[np.int64],
    j: npt.NDArray[np.float64],
    *,
    num_threads: int | None = None,
) -> npt.NDArray[np.float64]: ...
def pair_energy_grad(
    z: npt.NDArray[np.float64],
    h: npt.NDArray[np.float64],
    edges: npt.NDArray[np.int64],
    j: npt.NDArray[np.float64],
    g: npt.NDArray[np.float64],
    want_z: bool = False,
    *,
    num_threads: int | None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64] | None]: ...

@final
class TransverseIsing:
    """H = -a/2 sum_q X_q + b/2 E(z) of a problem with diagonal E: Schrödinger steps and matvec."""

    def __new__(
        cls, model: IsingCsr | None = None, *, energies: npt.NDArray[np.float64] | None = None
    ) -> TransverseIsing: ...
    @property
    def n(self) -> int: ...
    def energies(self) -> npt.NDArray[np.float64]: ...
    def evolve(
        self,
        state: npt.NDArray[np.float64],
        phase: npt.NDArray[np.float64],
        mix: npt.NDArray[np.float64],
        *,
        num_threads: int | None = None,
    ) -> npt.NDArray[np.float64]: ...
    def matvec(
        self, a: float, b: float, x: npt.NDArray[np.float64], *, num_threads: int | None = None
    ) -> npt.NDArray[np.float64]: ...

def draw_states(
    state: npt.NDArray[np.float64], num_reads: int, seed: int, index0: int = 0
) -> npt.NDArray[np.int64]: ...
