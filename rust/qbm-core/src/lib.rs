//! qbm-core: Ising models, multithreaded Monte Carlo samplers and MMD estimators.
//!
//! Pure Rust (no Python). Layers: [`model`] (CSR Ising model), [`rng`] (per-chain
//! streams), [`simd`] (lane arithmetic), [`updaters`] (single-spin kernels),
//! [`drivers`] (fixed-beta, annealing, tempering, SQA loops), [`parallel`] (pools,
//! cancellation).

pub mod error;
pub mod simd;
pub mod rng;
pub mod model;
pub mod updaters;
pub mod parallel;
pub mod drivers;

pub use error::{CoreError, Result};
pub use model::IsingModel;
pub use updaters::{Order, UpdateRule};
