//! `qbm._core`: thin PyO3 binding of qbm-core. Functions here only convert types,
//! release the GIL and map errors; all logic lives in qbm-core.

mod detach;
mod error;
mod ising;
mod mmd;
mod samplers;

use pyo3::prelude::*;

/// Name of the SIMD code path this CPU runs ("avx512", "avx2" or "baseline").
#[pyfunction]
fn simd_level() -> &'static str {
    qbm_core::simd::simd_level()
}

/// Threads used when `num_threads` is not given (`QBM_NUM_THREADS` or all cores).
#[pyfunction]
fn default_threads() -> usize {
    qbm_core::parallel::default_threads()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("LANES", qbm_core::simd::LANES)?;
    m.add_function(wrap_pyfunction!(simd_level, m)?)?;
    m.add_function(wrap_pyfunction!(default_threads, m)?)?;
    m.add_class::<ising::IsingCsr>()?;
    samplers::register(m)?;
    mmd::register(m)?;
    Ok(())
}
