//! The block driver every sampler runs on.
//!
//! Chains are packed [`LANES`] to a block (one SIMD lane each). The driver owns what
//! samplers share: the chain options ([`Chains`]), checks of the run (once, before any
//! work), the random stream of every chain from `(seed, chain)`, initial states, the
//! visiting order with its per-sweep reshuffle ([`Visit`]), the thread policy (a call is
//! split over threads only when there is enough work, see
//! [`useful_threads`](crate::parallel::useful_threads)), a peak-memory check, and
//! gathering lanes back into output rows. A sampler is the kernel passed to [`drive`]:
//! a function of one block's [`BlockCtx`]. Results depend on `seed` only, never on the
//! number of threads.

use crate::error::{ensure, Result};
use crate::memory::{bytes, ensure_fits};
use crate::model::validate_spins;
use crate::parallel::{resolve_threads, useful_threads, with_exact_threads};
use crate::rng::{stream_key, tags, LaneRng, Xoshiro256pp};
use crate::simd::{Lane, LANES};
use crate::updaters::{random_block, Order};
use rayon::prelude::*;

/// Chain options shared by every sampler.
#[derive(Clone, Copy, Debug)]
pub struct Chains<'a> {
    pub num_reads: usize,
    /// Optional (num_reads x width) row-major starting states.
    pub initial: Option<&'a [i8]>,
    pub order: Order,
    pub seed: u64,
    pub num_threads: Option<usize>,
}

impl<'a> Chains<'a> {
    /// Check the chain options for rows of `width` values.
    pub fn validate(&self, width: usize) -> Result<()> {
        let reads = self.num_reads;
        ensure(reads >= 1, "num_reads", || {
            format!("must be at least 1, got {reads}")
        })?;
        resolve_threads(self.num_threads)?;
        if let Some(init) = self.initial {
            validate_spins(init, width, "initial_states")?;
            ensure(
                init.len() == bytes(&[reads, width], "num_reads")? as usize,
                "initial_states",
                || {
                    format!(
                        "expected shape ({reads}, {width}), got {} values",
                        init.len()
                    )
                },
            )?;
        }
        Ok(())
    }

    /// Number of blocks of `LANES` chains.
    pub fn num_blocks(&self) -> usize {
        self.num_reads.div_ceil(LANES)
    }

    /// `(lane, read)` of the real chains of block `b` (padding lanes left out).
    pub fn reads_of(&self, b: usize) -> impl Iterator<Item = (usize, usize)> {
        let reads = self.num_reads;
        (0..LANES)
            .map(move |l| (l, b * LANES + l))
            .filter(move |&(_, c)| c < reads)
    }

    /// Lane RNG of block `b` for stream `tag`: lane l is chain `b * LANES + l`'s own stream.
    pub fn block_rng(&self, tag: u64, b: usize) -> LaneRng {
        let keys: [u64; LANES] =
            std::array::from_fn(|l| stream_key(self.seed, tag, (b * LANES + l) as u64));
        LaneRng::from_keys(&keys)
    }

    /// Starting state of block `b` (n spins per lane): random +-1 drawn from `rng`, then
    /// the rows of `initial` copied over the real lanes when given.
    pub fn start(&self, n: usize, b: usize, rng: &mut LaneRng) -> Vec<Lane> {
        let mut spins = random_block(n, rng);
        if let Some(init) = self.initial {
            for (l, c) in self.reads_of(b) {
                for i in 0..n {
                    spins[i][l] = init[c * n + i] as f32;
                }
            }
        }
        spins
    }

    /// Block `b`'s context for a kernel: its lane RNG (stream `(seed, CHAIN, chain)`) and
    /// its visiting order from `base` (stream `(seed, ORDER, b)`).
    pub fn block_ctx(&'a self, base: &[u32], b: usize) -> BlockCtx<'a> {
        BlockCtx {
            b,
            rng: self.block_rng(tags::CHAIN, b),
            visit: self.visit(base, b as u64),
            chains: self,
        }
    }

    /// Visiting order for unit `index` (a block, or a slot of one).
    pub fn visit(&self, base: &[u32], index: u64) -> Visit {
        Visit {
            order: base.to_vec(),
            rng: match self.order {
                Order::Random => Some(Xoshiro256pp::stream(self.seed, tags::ORDER, index)),
                Order::Sequential | Order::Colour => None,
            },
        }
    }

    /// Threads this call uses for `units` units of `work_per_unit` updates each.
    pub fn threads_for(&self, units: usize, work_per_unit: u64) -> Result<usize> {
        let requested = resolve_threads(self.num_threads)?;
        Ok(useful_threads(
            requested,
            units,
            work_per_unit.saturating_mul(units as u64),
        ))
    }

    /// Refuse a call whose peak memory cannot fit: `row_bytes` of output per read plus
    /// `block_bytes` held by each block while it runs (one per thread at a time).
    /// The error names `name`.
    pub fn check_memory(&self, row_bytes: u128, block_bytes: u128, name: &str) -> Result<()> {
        let threads = resolve_threads(self.num_threads)?.min(self.num_blocks()) as u128;
        let need = row_bytes
            .saturating_mul(self.num_reads as u128)
            .saturating_add(block_bytes.saturating_mul(threads.max(1)));
        ensure_fits(need, name)
    }
}

/// Visiting order of one unit, with its per-sweep reshuffle for `Order::Random`.
#[derive(Clone, Debug)]
pub struct Visit {
    order: Vec<u32>,
    rng: Option<Xoshiro256pp>,
}

impl Visit {
    /// The order of the next sweep (a fresh permutation of the last one when random).
    #[inline]
    pub fn next_sweep(&mut self) -> &[u32] {
        if let Some(r) = self.rng.as_mut() {
            r.shuffle(&mut self.order);
        }
        &self.order
    }

    /// Start the next permutation from `base` again (parallel tempering does this at
    /// every swap step).
    pub fn restart(&mut self, base: &[u32]) {
        if self.rng.is_some() {
            self.order.copy_from_slice(base);
        }
    }
}

/// What a kernel gets for one block: its index, the lane RNG of its chains (stream
/// `(seed, CHAIN, chain)`) and its visiting order (stream `(seed, ORDER, b)`).
pub struct BlockCtx<'c> {
    pub b: usize,
    pub rng: LaneRng,
    pub visit: Visit,
    pub chains: &'c Chains<'c>,
}

impl BlockCtx<'_> {
    /// Starting spins of this block (see [`Chains::start`]).
    pub fn start(&mut self, n: usize) -> Vec<Lane> {
        self.chains.start(n, self.b, &mut self.rng)
    }
}

/// Run `kernel` on every block of `chains` and return the blocks' results in order.
///
/// `work_per_block` (single-unit updates) decides how many threads are worth using; the
/// blocks are independent, so the result does not depend on it.
pub fn drive<'c, T: Send>(
    chains: &'c Chains<'c>,
    base: &[u32],
    work_per_block: u64,
    kernel: impl Fn(&mut BlockCtx<'c>) -> Result<T> + Sync + Send,
) -> Result<Vec<T>> {
    let nb = chains.num_blocks();
    let threads = chains.threads_for(nb, work_per_block)?;
    let one = |b: usize| kernel(&mut chains.block_ctx(base, b));
    map_units(threads, nb, one)
}

/// `f` on units 0..n in order, with `threads` threads (on the calling thread when 1);
/// the first error stops the rest.
pub fn map_units<T: Send>(
    threads: usize,
    n: usize,
    f: impl Fn(usize) -> Result<T> + Sync + Send,
) -> Result<Vec<T>> {
    with_exact_threads(threads, || {
        if threads == 1 {
            (0..n).map(&f).collect::<Result<Vec<T>>>()
        } else {
            (0..n).into_par_iter().map(&f).collect::<Result<Vec<T>>>()
        }
    })?
}

/// Copy lane spins of block `b` into row-major int8 rows of `out` (width = spins.len()).
pub fn write_rows(chains: &Chains<'_>, spins: &[Lane], b: usize, out: &mut [i8]) {
    let n = spins.len();
    for (l, c) in chains.reads_of(b) {
        let row = &mut out[c * n..(c + 1) * n];
        for i in 0..n {
            row[i] = spins[i][l] as i8;
        }
    }
}
