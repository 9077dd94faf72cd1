//! Fixed-temperature sampling (Gibbs / Metropolis) and simulated annealing: both run
//! independent chains through a per-sweep inverse-temperature schedule.

use super::engine::{drive, map_units, write_rows, BlockCtx, Chains, Visit};
use super::validate_betas;
use crate::error::Result;
use crate::memory::try_vec;
use crate::model::IsingModel;
use crate::parallel::check_cancel;
use crate::rng::LaneRng;
use crate::simd::{half_lanes, join_lanes, Lane, LANES, TWIN};
use crate::updaters::{lane_energies, sweep, sweep_order, sweep_tracked, Csr32, Order, UpdateRule};
use std::sync::atomic::AtomicBool;

/// Parameters of a schedule run.
#[derive(Clone, Debug)]
pub struct ScheduleRun<'a> {
    /// One inverse temperature per sweep; a constant schedule samples at fixed beta.
    pub betas: &'a [f64],
    pub chains: Chains<'a>,
    pub rule: UpdateRule,
    /// Record every chain's energy after every sweep (for autocorrelation analysis).
    pub trace: bool,
}

/// Samples of a run: row-major (num_reads x n) spins, energies, and per-read
/// fraction of updates that flipped a spin.
#[derive(Clone, Debug)]
pub struct Samples {
    pub num_variables: usize,
    pub spins: Vec<i8>,
    pub energies: Vec<f64>,
    pub flip_fraction: Vec<f64>,
    /// (num_reads x num_sweeps) energies after each sweep when `trace` was set, else empty.
    pub trace: Vec<f64>,
}

#[inline(always)]
fn block_sweeps(
    m: &Csr32<'_>,
    spins: &mut [Lane],
    rng: &mut LaneRng,
    betas: &[f32],
    rule: UpdateRule,
    visit: &mut Visit,
    trace: Option<&mut Vec<[f64; LANES]>>,
    cancel: &AtomicBool,
) -> Result<[u32; LANES]> {
    let mut flips = [0u32; LANES];
    match trace {
        None => {
            for &b in betas {
                check_cancel(cancel)?;
                let order = visit.next_sweep();
                sweep(m, spins, rng, &[b; LANES], rule, order, &mut flips);
            }
        }
        Some(tr) => {
            // tr holds the exact starting energies in its first entry
            let mut e = tr[0];
            tr.clear();
            for &b in betas {
                check_cancel(cancel)?;
                let order = visit.next_sweep();
                let mut de = [0f32; LANES];
                sweep_tracked::<true, LANES>(
                    m,
                    spins,
                    rng,
                    &[b; LANES],
                    rule,
                    order,
                    &mut flips,
                    &mut de,
                );
                for l in 0..LANES {
                    e[l] += de[l] as f64;
                }
                tr.push(e);
            }
        }
    }
    Ok(flips)
}

crate::multiversion! {
    fn block_sweeps_mv(
        m: &Csr32<'_>,
        spins: &mut [Lane],
        rng: &mut LaneRng,
        betas: &[f32],
        rule: UpdateRule,
        visit: &mut Visit,
        trace: Option<&mut Vec<[f64; LANES]>>,
        cancel: &AtomicBool
    ) -> Result<[u32; LANES]> = block_sweeps;
}

/// The sweeps of two blocks in lockstep, [`TWIN`] lanes: block `2u` in lanes `0..LANES`,
/// block `2u + 1` in the rest, each lane's arithmetic and draws those of its own block's
/// sweeps, so the same bits as running the blocks one after the other. One AVX-512
/// instruction then updates 16 chains where it updated 8, and each neighbour row loaded
/// (64 bytes, one cache line) serves both blocks. Fixed orders only (a random order is
/// reshuffled per block), no energy trace.
#[inline(always)]
fn twin_sweeps(
    m: &Csr32<'_>,
    spins: &mut [[f32; TWIN]],
    rng: &mut LaneRng<TWIN>,
    betas: &[f32],
    rule: UpdateRule,
    order: &[u32],
    cancel: &AtomicBool,
) -> Result<[u32; TWIN]> {
    let mut flips = [0u32; TWIN];
    for &b in betas {
        check_cancel(cancel)?;
        sweep(m, spins, rng, &[b; TWIN], rule, order, &mut flips);
    }
    Ok(flips)
}

crate::multiversion! {
    fn twin_sweeps_mv(
        m: &Csr32<'_>,
        spins: &mut [[f32; TWIN]],
        rng: &mut LaneRng<TWIN>,
        betas: &[f32],
        rule: UpdateRule,
        order: &[u32],
        cancel: &AtomicBool
    ) -> Result<[u32; TWIN]> = twin_sweeps;
}

/// Whether [`sample_schedule`] runs blocks in pairs ([`twin_sweeps`]) on this CPU: where
/// 16 f32 lanes are one AVX-512 register. The result is the same either way. With AVX2
/// alone (two ymm operations per 16 lanes, twice the registers live) pairs measured 1.23x
/// / 1.26x slower on Z(4) / Z(12) (`QBM_SIMD=avx2 python benches/ab_builds.py ... --kernel
/// gibbs`), so they stay off there.
fn twins_pay() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        crate::simd::has_avx512()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// One block's output: spins, flip counts, energy trace (empty unless traced), energies.
type BlockOut = (Vec<Lane>, [u32; LANES], Vec<[f64; LANES]>, [f64; LANES]);

/// Run every read through the schedule. Deterministic in `seed` whatever the thread count.
pub fn sample_schedule(
    model: &IsingModel,
    run: &ScheduleRun<'_>,
    cancel: &AtomicBool,
) -> Result<Samples> {
    sample_schedule_with(model, run, cancel, twins_pay())
}

/// [`sample_schedule`], with blocks paired ([`twin_sweeps`]) when `twins` and the run
/// allows it (a fixed order, no trace, two blocks or more): the same samples either way.
pub(crate) fn sample_schedule_with(
    model: &IsingModel,
    run: &ScheduleRun<'_>,
    cancel: &AtomicBool,
    twins: bool,
) -> Result<Samples> {
    let n = model.num_variables();
    let chains = &run.chains;
    let reads = chains.num_reads;
    chains.validate(n)?;
    validate_betas(run.betas, "beta")?;
    let t_len = run.betas.len();
    let trace_len = if run.trace { t_len } else { 0 };
    let twins = twins && !run.trace && chains.order != Order::Random && chains.num_blocks() >= 2;
    // a pair of blocks holds its two starting blocks, or its two output blocks, beside the
    // interleaved one: four blocks' spins at the peak
    let block_spins = if twins { 4 } else { 1 } * n * 4 * LANES;
    chains.check_memory(
        (n + 16 + 8 * trace_len) as u128,
        (block_spins + trace_len * 8 * LANES) as u128,
        "num_reads",
    )?;
    let betas32: Vec<f32> = run.betas.iter().map(|&b| b as f32).collect();
    let csr = Csr32::of(model);
    let base = sweep_order(model, chains.order);
    let work = (n as u64 + model.indices().len() as u64 / 2) * t_len as u64;
    // one block's run (every block when blocks are not paired; an odd last one when they are)
    let single = |ctx: &mut BlockCtx<'_>| -> Result<BlockOut> {
        let mut spins = ctx.start(n);
        let mut trace = Vec::new();
        if run.trace {
            trace.push(lane_energies(model, &spins));
        }
        let flips = block_sweeps_mv(
            &csr,
            &mut spins,
            &mut ctx.rng,
            &betas32,
            run.rule,
            &mut ctx.visit,
            if run.trace { Some(&mut trace) } else { None },
            cancel,
        )?;
        let energies = lane_energies(model, &spins);
        Ok((spins, flips, trace, energies))
    };
    let blocks = if twins {
        run_twins(
            model, &csr, &base, chains, &betas32, run.rule, work, cancel, &single,
        )?
    } else {
        drive(chains, &base, work, single)?
    };
    let mut out = Samples {
        num_variables: n,
        spins: try_vec(reads * n, 0i8, "num_reads")?,
        energies: try_vec(reads, 0.0, "num_reads")?,
        flip_fraction: try_vec(reads, 0.0, "num_reads")?,
        trace: try_vec(reads * trace_len, 0.0, "num_reads")?,
    };
    let updates = (t_len * n).max(1) as f64;
    for (b, (spins, flips, trace, energies)) in blocks.into_iter().enumerate() {
        write_rows(chains, &spins, b, &mut out.spins);
        for (l, c) in chains.reads_of(b) {
            out.energies[c] = energies[l];
            out.flip_fraction[c] = flips[l] as f64 / updates;
            for (t, e) in trace.iter().enumerate() {
                out.trace[c * t_len + t] = e[l];
            }
        }
    }
    Ok(out)
}

/// The blocks of a fixed-order, untraced run, two at a time in lockstep
/// ([`twin_sweeps`]; an odd last block alone, through `single`): each block starts from
/// its own generator and initial state as [`drive`] would start it, so the output equals
/// the block-by-block run's bit for bit.
#[allow(clippy::too_many_arguments)]
fn run_twins<'c>(
    model: &IsingModel,
    csr: &Csr32<'_>,
    order: &[u32],
    chains: &'c Chains<'c>,
    betas: &[f32],
    rule: UpdateRule,
    work: u64,
    cancel: &AtomicBool,
    single: &(impl Fn(&mut BlockCtx<'c>) -> Result<BlockOut> + Sync),
) -> Result<Vec<BlockOut>> {
    let n = model.num_variables();
    let nb = chains.num_blocks();
    let units = nb.div_ceil(2);
    let threads = chains.threads_for(units, work.saturating_mul(2))?;
    let pairs = map_units(threads, units, |u| {
        let (b0, b1) = (2 * u, 2 * u + 1);
        let mut c0 = chains.block_ctx(order, b0);
        if b1 >= nb {
            return Ok(vec![single(&mut c0)?]);
        }
        let mut c1 = chains.block_ctx(order, b1);
        let (s0, s1) = (c0.start(n), c1.start(n));
        let mut spins: Vec<[f32; TWIN]> =
            s0.iter().zip(&s1).map(|(a, b)| join_lanes(a, b)).collect();
        drop((s0, s1));
        let mut rng = LaneRng::twin(&c0.rng, &c1.rng);
        let flips = twin_sweeps_mv(csr, &mut spins, &mut rng, betas, rule, order, cancel)?;
        let out = |h: usize| -> BlockOut {
            let s: Vec<Lane> = spins.iter().map(|row| half_lanes(row, h)).collect();
            let e = lane_energies(model, &s);
            (s, half_lanes(&flips, h), Vec::new(), e)
        };
        Ok(vec![out(0), out(1)])
    })?;
    Ok(pairs.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::random_model;
    use crate::updaters::Order;

    fn exact_probs(m: &IsingModel, beta: f64) -> Vec<f64> {
        let n = m.num_variables();
        let mut w: Vec<f64> = (0..1usize << n)
            .map(|x| {
                let s: Vec<i8> = (0..n)
                    .map(|i| if x >> i & 1 == 1 { 1 } else { -1 })
                    .collect();
                (-beta * m.energy_of(&s)).exp()
            })
            .collect();
        let z: f64 = w.iter().sum();
        w.iter_mut().for_each(|v| *v /= z);
        w
    }

    fn tvd_vs_exact(rule: UpdateRule, order: Order) -> f64 {
        let m = random_model(5, 0.8, 3);
        let beta = 0.8;
        let p = exact_probs(&m, beta);
        let betas = vec![beta; 30];
        let run = ScheduleRun {
            betas: &betas,
            chains: Chains {
                num_reads: 16000,
                initial: None,
                order,
                seed: 1,
                num_threads: None,
            },
            rule,
            trace: false,
        };
        let s = sample_schedule(&m, &run, &AtomicBool::new(false)).unwrap();
        let mut counts = vec![0f64; 32];
        for row in s.spins.chunks(5) {
            let x: usize = row
                .iter()
                .enumerate()
                .map(|(i, &v)| ((v == 1) as usize) << i)
                .sum();
            counts[x] += 1.0;
        }
        counts
            .iter()
            .zip(&p)
            .map(|(c, q)| (c / 16000.0 - q).abs())
            .sum::<f64>()
            / 2.0
    }

    #[test]
    fn gibbs_and_metropolis_match_exact() {
        for rule in [UpdateRule::HeatBath, UpdateRule::Metropolis] {
            for order in [Order::Sequential, Order::Random, Order::Colour] {
                let t = tvd_vs_exact(rule, order);
                assert!(t < 0.03, "{rule:?} {order:?}: tvd {t}");
            }
        }
    }

    #[test]
    fn same_seed_same_samples_any_threads() {
        let m = random_model(20, 0.3, 9);
        let betas = vec![1.0; 50];
        let mk = |t| ScheduleRun {
            betas: &betas,
            chains: Chains {
                num_reads: 37,
                initial: None,
                order: Order::Random,
                seed: 42,
                num_threads: Some(t),
            },
            rule: UpdateRule::HeatBath,
            trace: false,
        };
        let c = AtomicBool::new(false);
        let a = sample_schedule(&m, &mk(1), &c).unwrap();
        let b = sample_schedule(&m, &mk(3), &c).unwrap();
        assert_eq!(a.spins, b.spins);
        let mut r = mk(1);
        r.chains.seed = 43;
        let d = sample_schedule(&m, &r, &c).unwrap();
        assert_ne!(a.spins, d.spins);
    }

    #[test]
    fn paired_blocks_equal_blocks_one_by_one_bit_for_bit() {
        let c = AtomicBool::new(false);
        for (seed, n) in [(1u64, 9usize), (2, 30), (3, 64)] {
            let m = random_model(n, 0.4, seed);
            let betas: Vec<f64> = (0..25).map(|t| 0.1 + 0.08 * t as f64).collect();
            // 5 reads: one block (nothing to pair); 29: four blocks, the last padded; 41: six
            for reads in [5usize, 29, 41] {
                let init: Vec<i8> = (0..reads * n)
                    .map(|k| {
                        if (k * 7 + seed as usize).is_multiple_of(3) {
                            1
                        } else {
                            -1
                        }
                    })
                    .collect();
                for order in [Order::Colour, Order::Sequential] {
                    for rule in [UpdateRule::HeatBath, UpdateRule::Metropolis] {
                        for (initial, threads) in [(None, 1), (Some(&init[..]), 2)] {
                            let run = ScheduleRun {
                                betas: &betas,
                                chains: Chains {
                                    num_reads: reads,
                                    initial,
                                    order,
                                    seed: seed * 11,
                                    num_threads: Some(threads),
                                },
                                rule,
                                trace: false,
                            };
                            let a = sample_schedule_with(&m, &run, &c, false).unwrap();
                            let b = sample_schedule_with(&m, &run, &c, true).unwrap();
                            assert_eq!(a.spins, b.spins, "{order:?} {rule:?} reads {reads}");
                            assert_eq!(a.energies, b.energies);
                            assert_eq!(a.flip_fraction, b.flip_fraction);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn twin_generator_draws_each_blocks_own_numbers() {
        let keys = |o: u64| -> [u64; LANES] { std::array::from_fn(|l| 1000 * o + l as u64) };
        let (mut a, mut b) = (LaneRng::from_keys(&keys(1)), LaneRng::from_keys(&keys(2)));
        let mut t = LaneRng::twin(&a, &b);
        for _ in 0..50 {
            let (ua, ub, ut) = (a.next_f32(), b.next_f32(), t.next_f32());
            assert_eq!(&ut[..LANES], &ua[..]);
            assert_eq!(&ut[LANES..], &ub[..]);
        }
        let (a2, b2) = t.split();
        assert_eq!(format!("{a2:?}"), format!("{a:?}"));
        assert_eq!(format!("{b2:?}"), format!("{b:?}"));
    }

    #[test]
    fn cancelled_run_stops() {
        let m = random_model(10, 0.3, 9);
        let betas = vec![1.0; 10];
        let run = ScheduleRun {
            betas: &betas,
            chains: Chains {
                num_reads: 4,
                initial: None,
                order: Order::Sequential,
                seed: 0,
                num_threads: Some(1),
            },
            rule: UpdateRule::HeatBath,
            trace: false,
        };
        let e = sample_schedule(&m, &run, &AtomicBool::new(true)).unwrap_err();
        assert_eq!(e, crate::error::CoreError::Interrupted);
    }
}
