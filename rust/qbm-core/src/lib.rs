//! qbm-core: Ising models, multithreaded Monte Carlo samplers and MMD estimators.
//!
//! Pure Rust (no Python). Layers: [`circuit`] (state-vector engine for parameterised
//! circuits), [`model`] (CSR Ising model), [`rng`] (per-chain
//! streams), [`simd`] (lane arithmetic), [`updaters`] (single-spin kernels),
//! [`drivers`] (fixed-beta, annealing, tempering, SQA loops), [`parallel`] (pools,
//! cancellation).

// Lane loops index several fixed-size arrays with one counter; that is the form LLVM
// vectorises best, so the range-loop lint is off for the crate.
#![allow(clippy::needless_range_loop)]

pub mod circuit;
pub mod drivers;
pub mod energy;
pub mod error;
pub mod memory;
pub mod mmd;
pub mod model;
pub mod parallel;
pub mod rbm;
pub mod rng;
pub mod schrodinger;
pub mod simd;
pub mod updaters;

pub use error::{CoreError, Result};
pub use model::IsingModel;
pub use updaters::{Order, UpdateRule};
