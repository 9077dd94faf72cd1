//! Parallel tempering (replica exchange).
//!
//! Every read runs K replicas at betas b_0 < ... < b_{K-1} (the last is the target).
//! Reads are packed LANES at a time into a block; a block holds K *slots*, each a full
//! lane state with its own per-lane RNG stream (seeded from the read and slot, so slots
//! can be swept in parallel and results do not depend on the thread count). A swap
//! exchanges the temperatures held by two slots (not their spins): neighbours (t, t+1)
//! swap with probability min(1, exp((b_t - b_{t+1})(E_t - E_{t+1}))).
//!
//! Energies are tracked incrementally during sweeps (dE = (s' - s) f_i, f32 per sweep
//! added to f64), and recomputed exactly for the output.
//!
//! Adaptive ladders: during `adapt_sweeps` the ladder is updated every
//! `adapt_interval` sweeps from the acceptance of every neighbouring pair, pooled over
//! all reads (a deterministic reduction between parallel windows), by equalising the
//! "thermodynamic length" sqrt(-ln a_t) of the gaps (see [`adapt_ladder`]); b_0 and
//! b_{K-1} stay fixed.

use super::engine::{Chains, Visit};
use super::validate_betas;
use crate::error::{ensure, Result};
use crate::memory::{bytes, try_vec};
use crate::model::IsingModel;
use crate::parallel::{check_cancel, each_mut, with_exact_threads};
use crate::rng::{stream_key, tags, LaneRng, Xoshiro256pp};
use crate::simd::{Lane, LANES};
use crate::updaters::{sweep_order, sweep_tracked, Csr32, UpdateRule};
use rayon::prelude::*;
use std::sync::atomic::AtomicBool;

/// Parameters of a parallel-tempering run.
#[derive(Clone, Debug)]
pub struct TemperingRun<'a> {
    /// Initial ladder, strictly increasing; the last entry is the target beta.
    pub betas: &'a [f64],
    /// Chain options; `initial` rows (num_reads x n) are copied into every replica.
    pub chains: Chains<'a>,
    /// Production sweeps (after adaptation).
    pub num_sweeps: usize,
    pub swap_interval: usize,
    /// Sweeps of ladder adaptation before production (0: fixed ladder).
    pub adapt_sweeps: usize,
    pub adapt_interval: usize,
    pub rule: UpdateRule,
    /// Record the target replica's energy after every swap step of production.
    pub trace: bool,
}

/// Output of a parallel-tempering run.
#[derive(Clone, Debug)]
pub struct TemperingOutput {
    pub num_variables: usize,
    pub num_replicas: usize,
    /// (num_reads x K x n) spins ordered by temperature (last = target).
    pub replica_spins: Vec<i8>,
    /// (num_reads x K) energies ordered by temperature.
    pub replica_energies: Vec<f64>,
    /// (K - 1) swap acceptance rates during production.
    pub swap_acceptance: Vec<f64>,
    /// Completed round trips (hottest -> coldest -> hottest) per read during production.
    pub round_trips: Vec<u32>,
    /// Final ladder.
    pub betas: Vec<f64>,
    /// (num_reads x steps) target-replica energies when `trace` was set.
    pub trace: Vec<f64>,
}

struct Slot {
    spins: Vec<Lane>,
    rng: LaneRng,
    /// Visiting order, restarted from the base order at every swap step.
    visit: Visit,
    energy: [f64; LANES],
    temp: [usize; LANES],
    // round-trip labels: 0 none, 1 last end visited was the hottest, 2 the coldest
    label: [u8; LANES],
}

struct Block {
    slots: Vec<Slot>,
    swap_rng: Vec<Xoshiro256pp>,
    attempts: Vec<u64>,
    accepts: Vec<u64>,
    round_trips: [u32; LANES],
    trace: Vec<[f64; LANES]>,
    /// Scratch for swaps: the slot holding each temperature.
    at: Vec<usize>,
}

#[inline(always)]
fn slot_sweeps(m: &Csr32<'_>, slot: &mut Slot, ladder: &[f32], rule: UpdateRule, sweeps: usize) {
    let beta: Lane = std::array::from_fn(|l| ladder[slot.temp[l]]);
    let mut flips = [0u32; LANES];
    for _ in 0..sweeps {
        let order = slot.visit.next_sweep();
        let mut de = [0f32; LANES];
        sweep_tracked::<true, LANES>(
            m,
            &mut slot.spins,
            &mut slot.rng,
            &beta,
            rule,
            order,
            &mut flips,
            &mut de,
        );
        for l in 0..LANES {
            slot.energy[l] += de[l] as f64;
        }
    }
}

fn slot_sweeps_dispatch(
    m: &Csr32<'_>,
    slot: &mut Slot,
    ladder: &[f32],
    rule: UpdateRule,
    sweeps: usize,
) {
    crate::multiversion! {
        fn run(m: &Csr32<'_>, slot: &mut Slot, ladder: &[f32], rule: UpdateRule, sweeps: usize) = slot_sweeps;
    }
    run(m, slot, ladder, rule, sweeps)
}

impl Block {
    fn new(model: &IsingModel, run: &TemperingRun<'_>, b: usize, k: usize, base: &[u32]) -> Self {
        let n = model.num_variables();
        let slots = (0..k)
            .map(|slot| {
                let keys: [u64; LANES] = std::array::from_fn(|l| {
                    stream_key(
                        run.chains.seed,
                        tags::REPLICA,
                        ((b * LANES + l) * k + slot) as u64,
                    )
                });
                let mut rng = LaneRng::from_keys(&keys);
                let spins = run.chains.start(n, b, &mut rng);
                let visit = run.chains.visit(base, (b * k + slot) as u64);
                let energy = crate::updaters::lane_energies(model, &spins);
                Slot {
                    spins,
                    rng,
                    visit,
                    energy,
                    temp: [slot; LANES],
                    label: [0; LANES],
                }
            })
            .collect();
        Block {
            slots,
            swap_rng: (0..LANES)
                .map(|l| Xoshiro256pp::stream(run.chains.seed, tags::SWAP, (b * LANES + l) as u64))
                .collect(),
            attempts: vec![0; k.saturating_sub(1)],
            accepts: vec![0; k.saturating_sub(1)],
            round_trips: [0; LANES],
            trace: Vec::new(),
            at: vec![0; k],
        }
    }

    fn record_target(&mut self) {
        let k = self.slots.len();
        let mut e = [0f64; LANES];
        for s in &self.slots {
            for l in 0..LANES {
                if s.temp[l] == k - 1 {
                    e[l] = s.energy[l];
                }
            }
        }
        self.trace.push(e);
    }

    /// Sweep every slot `sweeps` times (slots in parallel), then attempt swaps.
    fn step(
        &mut self,
        m: &Csr32<'_>,
        ladder: &[f32],
        ladder64: &[f64],
        rule: UpdateRule,
        base: &[u32],
        sweeps: usize,
    ) {
        each_mut(&mut self.slots, |slot| {
            slot.visit.restart(base);
            slot_sweeps_dispatch(m, slot, ladder, rule, sweeps);
        });
        self.swap(ladder64);
    }

    fn swap(&mut self, ladder: &[f64]) {
        let k = ladder.len();
        if k < 2 {
            return;
        }
        let mut at = std::mem::take(&mut self.at);
        for l in 0..LANES {
            // slot holding temperature t
            for (si, s) in self.slots.iter().enumerate() {
                at[s.temp[l]] = si;
            }
            let rng = &mut self.swap_rng[l];
            for t in 0..k - 1 {
                let (a, b) = (at[t], at[t + 1]);
                let ea = self.slots[a].energy[l];
                let eb = self.slots[b].energy[l];
                let logp = (ladder[t] - ladder[t + 1]) * (ea - eb);
                self.attempts[t] += 1;
                if logp >= 0.0 || rng.next_f64() < logp.exp() {
                    self.accepts[t] += 1;
                    self.slots[a].temp[l] = t + 1;
                    self.slots[b].temp[l] = t;
                    at.swap(t, t + 1);
                }
            }
            // round trips: hottest end is t = 0, coldest t = k - 1
            let (hot, cold) = (at[0], at[k - 1]);
            if self.slots[cold].label[l] == 1 {
                self.slots[cold].label[l] = 2;
            }
            if self.slots[hot].label[l] == 2 {
                self.round_trips[l] += 1;
            }
            self.slots[hot].label[l] = 1;
        }
        self.at = at;
    }

    fn reset_stats(&mut self) {
        self.attempts.iter_mut().for_each(|x| *x = 0);
        self.accepts.iter_mut().for_each(|x| *x = 0);
        self.round_trips = [0; LANES];
        for s in &mut self.slots {
            s.label = [0; LANES];
        }
    }
}

/// Move the ladder toward equal neighbour acceptance (see module docs).
///
/// Each gap gets a length L_t = sqrt(-ln a_t) (for near-Gaussian energy histograms this
/// grows linearly with the gap, L ~ (b_{t+1} - b_t) sigma_E / 2), spread uniformly over
/// the gap in ln(beta); the new betas split the total length into equal parts, and the
/// ladder moves half way there (damping). Ends stay fixed.
pub fn adapt_ladder(ladder: &[f64], acceptance: &[f64]) -> Vec<f64> {
    let k = ladder.len();
    if k < 3 {
        return ladder.to_vec();
    }
    let logs: Vec<f64> = ladder.iter().map(|b| b.ln()).collect();
    let lens: Vec<f64> = acceptance
        .iter()
        .map(|&a| (-(a.clamp(1e-4, 0.999)).ln()).sqrt())
        .collect();
    let mut cum = vec![0.0; k];
    for t in 0..k - 1 {
        cum[t + 1] = cum[t] + lens[t];
    }
    let total = cum[k - 1];
    let mut out = Vec::with_capacity(k);
    out.push(ladder[0]);
    let mut t = 0;
    for r in 1..k - 1 {
        let c = total * r as f64 / (k - 1) as f64;
        while t < k - 2 && cum[t + 1] < c {
            t += 1;
        }
        let frac = ((c - cum[t]) / lens[t]).clamp(0.0, 1.0);
        let target = logs[t] + frac * (logs[t + 1] - logs[t]);
        out.push((0.5 * (logs[r] + target)).exp());
    }
    out.push(ladder[k - 1]);
    out
}

/// Run parallel tempering. Deterministic in `seed` whatever the thread count.
pub fn sample_tempering(
    model: &IsingModel,
    run: &TemperingRun<'_>,
    cancel: &AtomicBool,
) -> Result<TemperingOutput> {
    let n = model.num_variables();
    let chains = &run.chains;
    let reads = chains.num_reads;
    chains.validate(n)?;
    validate_betas(run.betas, "betas")?;
    let k = run.betas.len();
    ensure(run.betas.windows(2).all(|w| w[0] < w[1]), "betas", || {
        "the ladder must be strictly increasing (hottest first, target beta last)".into()
    })?;
    ensure(run.swap_interval >= 1, "swap_interval", || {
        "must be at least 1".into()
    })?;
    ensure(
        run.adapt_sweeps == 0 || run.adapt_interval >= 1,
        "adapt_interval",
        || "must be at least 1".into(),
    )?;
    ensure(run.num_sweeps >= 1, "num_sweeps", || {
        "must be at least 1".into()
    })?;
    let kn = bytes(&[k, n], "num_replicas")?;
    let trace_steps = if run.trace {
        run.num_sweeps.div_ceil(run.swap_interval)
    } else {
        0
    };
    // every block is alive for the whole run
    let mem_name = crate::memory::named(&[
        ("num_reads", reads as u128),
        ("num_replicas", k as u128),
        ("num_sweeps (trace)", trace_steps as u128),
    ]);
    chains.check_memory(
        kn + k as u128 * 8 + 8 + 8 * trace_steps as u128 + (kn * 4 + 8 * trace_steps as u128),
        0,
        &mem_name,
    )?;
    let csr = Csr32::of(model);
    let base = sweep_order(model, chains.order);
    let nb = chains.num_blocks();
    let mut ladder: Vec<f64> = run.betas.to_vec();
    let work_per_slot = (n as u64 + model.indices().len() as u64 / 2)
        .saturating_mul((run.num_sweeps + run.adapt_sweeps) as u64);
    let threads = chains.threads_for(nb * k, work_per_slot)?;

    let blocks = with_exact_threads(threads, || -> Result<Vec<Block>> {
        let new_block = |b| Block::new(model, run, b, k, &base);
        let mut blocks: Vec<Block> = if threads <= 1 {
            (0..nb).map(new_block).collect()
        } else {
            (0..nb).into_par_iter().map(new_block).collect()
        };
        // Adaptation windows: the ladder changes only between windows.
        let mut done = 0;
        while done < run.adapt_sweeps {
            check_cancel(cancel)?;
            let window = run.adapt_interval.min(run.adapt_sweeps - done);
            let l32: Vec<f32> = ladder.iter().map(|&b| b as f32).collect();
            each_mut(&mut blocks, |blk| {
                blk.reset_stats();
                let mut s = 0;
                // a cancelled call stops within one swap step (results are discarded)
                while s < window && !cancel.load(std::sync::atomic::Ordering::Relaxed) {
                    let w = run.swap_interval.min(window - s);
                    blk.step(&csr, &l32, &ladder, run.rule, &base, w);
                    s += w;
                }
            });
            check_cancel(cancel)?;
            done += window;
            let acc = pooled_acceptance(&blocks, k);
            ladder = adapt_ladder(&ladder, &acc);
        }
        // Production.
        let l32: Vec<f32> = ladder.iter().map(|&b| b as f32).collect();
        each_mut(&mut blocks, |b| b.reset_stats());
        let chunk = run.swap_interval * (1024 / run.swap_interval).max(1);
        let mut done = 0;
        while done < run.num_sweeps {
            check_cancel(cancel)?;
            let window = chunk.min(run.num_sweeps - done);
            each_mut(&mut blocks, |blk| {
                let mut s = 0;
                while s < window && !cancel.load(std::sync::atomic::Ordering::Relaxed) {
                    let w = run.swap_interval.min(window - s);
                    blk.step(&csr, &l32, &ladder, run.rule, &base, w);
                    if run.trace {
                        blk.record_target();
                    }
                    s += w;
                }
            });
            check_cancel(cancel)?;
            done += window;
        }
        Ok(blocks)
    })??;

    let mut out = TemperingOutput {
        num_variables: n,
        num_replicas: k,
        replica_spins: try_vec(reads * k * n, 0i8, &mem_name)?,
        replica_energies: try_vec(reads * k, 0.0, &mem_name)?,
        swap_acceptance: pooled_acceptance(&blocks, k),
        round_trips: try_vec(reads, 0u32, "num_reads")?,
        betas: ladder,
        trace: Vec::new(),
    };
    let steps = blocks.first().map_or(0, |b| b.trace.len());
    if run.trace {
        out.trace = try_vec(reads * steps, 0.0, &mem_name)?;
    }
    for (b, blk) in blocks.iter().enumerate() {
        for (l, c) in chains.reads_of(b) {
            out.round_trips[c] = blk.round_trips[l];
            for (t, e) in blk.trace.iter().enumerate() {
                out.trace[c * steps + t] = e[l];
            }
            for slot in &blk.slots {
                let t = slot.temp[l];
                let row = &mut out.replica_spins[(c * k + t) * n..(c * k + t + 1) * n];
                for i in 0..n {
                    row[i] = slot.spins[i][l] as i8;
                }
                out.replica_energies[c * k + t] = model.energy_of(row);
            }
        }
    }
    Ok(out)
}

fn pooled_acceptance(blocks: &[Block], k: usize) -> Vec<f64> {
    (0..k.saturating_sub(1))
        .map(|t| {
            let a: u64 = blocks.iter().map(|b| b.accepts[t]).sum();
            let n: u64 = blocks.iter().map(|b| b.attempts[t]).sum();
            if n == 0 {
                0.0
            } else {
                a as f64 / n as f64
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::random_model;

    #[test]
    fn tracked_energies_match_exact_and_threads_agree() {
        let m = random_model(12, 0.5, 4);
        let betas = [0.2, 0.5, 1.0, 2.0];
        let mk = |t| TemperingRun {
            betas: &betas,
            chains: Chains {
                num_reads: 11,
                initial: None,
                order: crate::updaters::Order::Colour,
                seed: 3,
                num_threads: Some(t),
            },
            num_sweeps: 50,
            swap_interval: 1,
            adapt_sweeps: 20,
            adapt_interval: 10,
            rule: UpdateRule::HeatBath,
            trace: true,
        };
        let c = AtomicBool::new(false);
        let a = sample_tempering(&m, &mk(1), &c).unwrap();
        let b = sample_tempering(&m, &mk(2), &c).unwrap();
        assert_eq!(a.replica_spins, b.replica_spins);
        assert_eq!(a.betas, b.betas);
        assert!(a.swap_acceptance.iter().all(|&x| (0.0..=1.0).contains(&x)));
        // the tracked energy of the target replica at the end equals the exact energy
        let k = a.num_replicas;
        for c in 0..11 {
            let last = a.trace[c * 50 + 49];
            assert!(
                (last - a.replica_energies[c * k + k - 1]).abs() < 1e-3,
                "{last}"
            );
        }
    }

    #[test]
    fn adapt_keeps_ends_and_order() {
        let l = [0.1, 0.2, 0.4, 0.8, 1.6];
        let out = adapt_ladder(&l, &[0.9, 0.5, 0.1, 0.05]);
        assert_eq!(out[0], 0.1);
        assert_eq!(out[4], 1.6);
        assert!(out.windows(2).all(|w| w[0] < w[1]));
        // low acceptance at the cold end -> the cold gaps shrink
        assert!(out[4] / out[3] < 2.0);
    }
}
