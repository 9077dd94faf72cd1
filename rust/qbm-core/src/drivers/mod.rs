//! Driver loops: how sweeps, schedules, replicas and slices are put together. Every
//! sampler is a kernel on the block driver of [`engine`].

pub mod anneal;
pub mod engine;
pub mod sqa;
pub mod sqa_ct;
pub mod tempering;

pub use anneal::{sample_schedule, Samples, ScheduleRun};
pub use engine::{drive, BlockCtx, Chains, Visit};

use crate::error::{ensure, Result};

/// Validate inverse temperatures (finite and > 0).
pub fn validate_betas(betas: &[f64], name: &str) -> Result<()> {
    ensure(!betas.is_empty(), name, || "must not be empty".into())?;
    for &b in betas {
        ensure(b.is_finite() && b > 0.0, name, || {
            format!("inverse temperatures must be finite and > 0, got {b}")
        })?;
    }
    Ok(())
}
