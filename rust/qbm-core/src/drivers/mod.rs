//! Driver loops: how sweeps, schedules, replicas and slices are put together.

pub mod anneal;
pub mod sqa;
pub mod tempering;

pub use anneal::{sample_schedule, Samples, ScheduleRun};

use crate::error::{ensure, Result};
use crate::model::validate_spins;
use crate::rng::{stream_key, LaneRng};
use crate::simd::{Lane, LANES};
use crate::updaters::random_block;

/// Number of blocks of `LANES` chains needed for `reads` chains.
pub fn num_blocks(reads: usize) -> usize {
    reads.div_ceil(LANES)
}

/// Lane RNG of block `b`: lane l is chain `b * LANES + l`'s own stream.
pub fn block_rng(seed: u64, tag: u64, b: usize) -> LaneRng {
    let keys: [u64; LANES] = std::array::from_fn(|l| stream_key(seed, tag, (b * LANES + l) as u64));
    LaneRng::from_keys(&keys)
}

/// Initial state of block `b`: rows of `initial` (N x n) if given, else random.
/// Padding lanes past the last read copy random spins and are discarded later.
pub fn block_init(
    n: usize,
    reads: usize,
    b: usize,
    initial: Option<&[i8]>,
    rng: &mut LaneRng,
) -> Vec<Lane> {
    let mut spins = random_block(n, rng);
    if let Some(init) = initial {
        for l in 0..LANES {
            let c = b * LANES + l;
            if c < reads {
                for i in 0..n {
                    spins[i][l] = init[c * n + i] as f32;
                }
            }
        }
    }
    spins
}

/// Validate the common run parameters.
pub fn validate_run(n: usize, reads: usize, initial: Option<&[i8]>) -> Result<()> {
    ensure(reads >= 1, "num_reads", || {
        format!("must be at least 1, got {reads}")
    })?;
    if let Some(init) = initial {
        validate_spins(init, n, "initial_states")?;
        ensure(init.len() == reads * n, "initial_states", || {
            format!("expected shape ({reads}, {n}), got {} values", init.len())
        })?;
    }
    Ok(())
}

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

/// Copy lane spins of a block into row-major int8 output rows.
pub fn write_rows(spins: &[Lane], b: usize, reads: usize, out: &mut [i8]) {
    let n = spins.len();
    for l in 0..LANES {
        let c = b * LANES + l;
        if c < reads {
            for i in 0..n {
                out[c * n + i] = spins[i][l] as i8;
            }
        }
    }
}
