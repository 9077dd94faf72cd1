//! `qbm._core`: thin PyO3 binding of qbm-core. Functions here only convert types,
//! release the GIL and map errors; all logic lives in qbm-core.

mod circuit;
mod detach;
mod energy;
mod error;
mod ising;
mod mmd;
mod options;
mod samplers;
mod schrodinger;

use pyo3::prelude::*;

/// Name of the SIMD code path this CPU runs ("avx512", "avx2" or "baseline").
#[pyfunction]
fn simd_level() -> &'static str {
    qbm_core::simd::simd_level()
}

/// Threads used when `num_threads` is not given (`QBM_NUM_THREADS` or all cores).
/// Raises ValueError naming QBM_NUM_THREADS when it is set to something invalid.
#[pyfunction]
fn default_threads() -> PyResult<usize> {
    qbm_core::parallel::default_threads().map_err(error::to_py)
}

/// Inter-slice coupling K = -(1/2) ln tanh(beta Gamma (1 - s) / P) of SQA (0 for P = 1,
/// capped at 30).
#[pyfunction]
fn trotter_coupling(beta: f64, gamma: f64, s: f64, num_trotter_slices: usize) -> f64 {
    qbm_core::drivers::sqa::trotter_coupling(beta, gamma, s, num_trotter_slices)
}

/// Bytes this process may still allocate: the smallest of the system's available memory,
/// the address-space limit (`ulimit -v`) less what is mapped, and the cgroup's limit less
/// its usage (None where none can be read). The figure the core's memory checks use.
#[pyfunction]
fn available_memory() -> Option<u128> {
    qbm_core::memory::available_bytes()
}

/// Number of qbm thread pools alive in this process (at most `MAX_POOLS`).
#[pyfunction]
fn live_pools() -> usize {
    qbm_core::parallel::live_pools()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("LANES", qbm_core::simd::LANES)?;
    m.add_function(wrap_pyfunction!(simd_level, m)?)?;
    m.add_function(wrap_pyfunction!(default_threads, m)?)?;
    m.add_function(wrap_pyfunction!(live_pools, m)?)?;
    m.add_function(wrap_pyfunction!(available_memory, m)?)?;
    m.add_function(wrap_pyfunction!(trotter_coupling, m)?)?;
    m.add("MAX_THREADS", qbm_core::parallel::MAX_THREADS)?;
    m.add("MAX_POOLS", qbm_core::parallel::MAX_POOLS)?;
    m.add_class::<ising::IsingCsr>()?;
    samplers::register(m)?;
    mmd::register(m)?;
    circuit::register(m)?;
    energy::register(m)?;
    schrodinger::register(m)?;
    Ok(())
}
