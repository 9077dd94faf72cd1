//! Fixed-temperature sampling (Gibbs / Metropolis) and simulated annealing: both run
//! independent chains through a per-sweep inverse-temperature schedule.

use super::engine::{drive, write_rows, Chains, Visit};
use super::validate_betas;
use crate::error::Result;
use crate::memory::try_vec;
use crate::model::IsingModel;
use crate::parallel::check_cancel;
use crate::rng::LaneRng;
use crate::simd::{Lane, LANES};
use crate::updaters::{lane_energies, sweep, sweep_order, sweep_tracked, Csr32, UpdateRule};
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
                sweep_tracked::<true>(m, spins, rng, &[b; LANES], rule, order, &mut flips, &mut de);
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

/// Run every read through the schedule. Deterministic in `seed` whatever the thread count.
pub fn sample_schedule(
    model: &IsingModel,
    run: &ScheduleRun<'_>,
    cancel: &AtomicBool,
) -> Result<Samples> {
    let n = model.num_variables();
    let chains = &run.chains;
    let reads = chains.num_reads;
    chains.validate(n)?;
    validate_betas(run.betas, "beta")?;
    let t_len = run.betas.len();
    let trace_len = if run.trace { t_len } else { 0 };
    chains.check_memory(
        (n + 16 + 8 * trace_len) as u128,
        (n * 4 * LANES + trace_len * 8 * LANES) as u128,
        "num_reads",
    )?;
    let betas32: Vec<f32> = run.betas.iter().map(|&b| b as f32).collect();
    let csr = Csr32::of(model);
    let base = sweep_order(model, chains.order);
    let work = (n as u64 + model.indices().len() as u64 / 2) * t_len as u64;
    let blocks = drive(chains, &base, work, |ctx| {
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
    })?;
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
