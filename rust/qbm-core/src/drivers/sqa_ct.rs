//! Continuous-time path-integral Monte Carlo for H(s) = s H_p - (1 - s) Gamma sum_i X_i at
//! inverse temperature beta (the P -> infinity limit of [`super::sqa`]: no Trotter error).
//!
//! Every spin's worldline on imaginary time [0, beta) (periodic) is its value at tau = 0
//! and the sorted times of its kinks (where it changes sign). A sweep visits every spin:
//! new cuts are placed by a Poisson process of rate Gamma (1 - s); kinks and cuts split the
//! worldline into segments; every segment is set by heat bath on s times the longitudinal
//! field integrated over its length, P(+1) = 1 / (1 + exp(2 s F)),
//! F = integral (h_i + sum_j J_ij z_j(tau)) dtau (Rieger & Kawashima 1999); kinks remain only
//! where neighbouring segments differ. The weight of a worldline configuration is
//! exp(-s integral E_p dtau) (Gamma (1 - s) dtau)^(#kinks), so the state at tau = 0 follows
//! the diagonal of exp(-beta H(s)) / Tr. The schedule gives one s per sweep.
//!
//! Chains are scalar (one worldline set per read) and run in parallel over reads; chain c
//! draws from the stream (seed, c), so results do not depend on the thread count.

use super::engine::{map_units, Chains};
use crate::error::Result;
use crate::memory::try_vec;
use crate::model::IsingModel;
use crate::parallel::check_cancel;
use crate::rng::{tags, Xoshiro256pp};
use std::sync::atomic::AtomicBool;

/// Stream tag of continuous-time chains.
const CT_TAG: u64 = tags::REPLICA + 100;

/// Parameters of a continuous-time run.
#[derive(Clone, Debug)]
pub struct CtRun<'a> {
    pub beta: f64,
    pub gamma: f64,
    /// One s in [0, 1] per sweep.
    pub s_schedule: &'a [f64],
    /// `initial` rows are the worldlines' constant starting values.
    pub chains: Chains<'a>,
}

/// States at tau = 0 (num_reads x n), their classical energies, and per-read mean kinks
/// per spin at the end (a measure of quantum fluctuations).
#[derive(Clone, Debug)]
pub struct CtOutput {
    pub spins: Vec<i8>,
    pub energies: Vec<f64>,
    pub mean_kinks: Vec<f64>,
    /// Segment heat-bath moves made (for moves-per-second reporting).
    pub moves: u64,
}

/// Worldline of one spin.
#[derive(Clone, Debug, Default)]
struct Line {
    v0: f64,
    kinks: Vec<f64>,
}

impl Line {
    /// I(t) = integral_0^t z(tau) dtau at each sorted `ts` (written to `out`, added with weight `w`).
    fn add_integrals(&self, ts: &[f64], w: f64, out: &mut [f64]) {
        let mut k = 0;
        let mut acc = 0.0;
        let mut last = 0.0;
        let mut val = self.v0;
        for (o, &t) in out.iter_mut().zip(ts) {
            while k < self.kinks.len() && self.kinks[k] <= t {
                acc += val * (self.kinks[k] - last);
                last = self.kinks[k];
                val = -val;
                k += 1;
            }
            *o += w * (acc + val * (t - last));
        }
    }
}

fn sweep_chain(
    lines: &mut [Line],
    model: &IsingModel,
    order: &[u32],
    beta: f64,
    rate: f64,
    s: f64,
    rng: &mut Xoshiro256pp,
    bounds: &mut Vec<f64>,
    g: &mut Vec<f64>,
    vals: &mut Vec<f64>,
) -> u64 {
    let (indptr, indices, data, h) = (model.indptr(), model.indices(), model.data(), model.h());
    let mut moves = 0u64;
    for &i in order {
        let i = i as usize;
        // boundaries: existing kinks plus Poisson cuts of rate Gamma (1 - s)
        bounds.clear();
        bounds.extend_from_slice(&lines[i].kinks);
        if rate > 0.0 {
            let mut t = 0.0;
            loop {
                t += -(1.0 - rng.next_f64()).ln() / rate;
                if t >= beta {
                    break;
                }
                bounds.push(t);
            }
            bounds.sort_by(|a, b| a.partial_cmp(b).unwrap());
        }
        let m = bounds.len();
        // G(t) = sum_j J_ij integral_0^t z_j at every boundary and at beta
        bounds.push(beta);
        g.clear();
        g.resize(m + 1, 0.0);
        for k in indptr[i]..indptr[i + 1] {
            let j = indices[k] as usize;
            lines[j].add_integrals(bounds, data[k], g);
        }
        bounds.pop();
        let hi = h[i];
        vals.clear();
        if m == 0 {
            let f = hi * beta + g[0];
            let v = if rng.next_f64() * (1.0 + (2.0 * s * f).min(700.0).exp()) < 1.0 {
                1.0
            } else {
                -1.0
            };
            lines[i].v0 = v;
            lines[i].kinks.clear();
            moves += 1;
            continue;
        }
        // segments [b_k, b_{k+1}) for k < m-1, and the wrap segment [b_{m-1}, beta) + [0, b_0)
        for k in 0..m - 1 {
            let f = hi * (bounds[k + 1] - bounds[k]) + g[k + 1] - g[k];
            vals.push(
                if rng.next_f64() * (1.0 + (2.0 * s * f).min(700.0).exp()) < 1.0 {
                    1.0
                } else {
                    -1.0
                },
            );
        }
        let fw = hi * (beta - bounds[m - 1] + bounds[0]) + (g[m] - g[m - 1]) + g[0];
        let vw = if rng.next_f64() * (1.0 + (2.0 * s * fw).min(700.0).exp()) < 1.0 {
            1.0
        } else {
            -1.0
        };
        moves += m as u64;
        // kinks where neighbouring segments differ: at b_0 (wrap -> seg 0), b_k (seg k-1 -> k),
        // b_{m-1} (seg m-2 -> wrap)
        let line = &mut lines[i];
        line.v0 = vw;
        line.kinks.clear();
        let mut prev = vw;
        for k in 0..m {
            let next = if k < m - 1 { vals[k] } else { vw };
            if next != prev {
                line.kinks.push(bounds[k]);
            }
            prev = next;
        }
    }
    moves
}

/// Run continuous-time SQA. Deterministic in `seed` whatever the thread count.
pub fn sample_sqa_ct(model: &IsingModel, run: &CtRun<'_>, cancel: &AtomicBool) -> Result<CtOutput> {
    let n = model.num_variables();
    let chains = &run.chains;
    let reads = chains.num_reads;
    chains.validate(n)?;
    super::sqa::check_gamma_s(run.beta, run.gamma, run.s_schedule)?;
    // worldlines hold about beta Gamma kinks per spin: a few doubles each
    let kinks = (run.beta * run.gamma).ceil() as u128;
    let per_read = (n as u128) * (64 + 16 * (1 + kinks)) + n as u128 + 24;
    let mem_name = crate::memory::named(&[("num_reads", reads as u128), ("beta x gamma", kinks)]);
    chains.check_memory(per_read, 0, &mem_name)?;
    let base: Vec<u32> = crate::updaters::base_order(model, chains.order);
    let nnz = model.indices().len() as u64;
    let work =
        (n as u64 + nnz / 2) * (1 + (run.beta * run.gamma) as u64) * run.s_schedule.len() as u64;
    let threads = chains.threads_for(reads, work)?;
    let one = |c: usize| -> Result<(Vec<Line>, u64)> {
        let mut rng = Xoshiro256pp::stream(chains.seed, CT_TAG, c as u64);
        let mut lines: Vec<Line> = (0..n)
            .map(|i| Line {
                v0: match chains.initial {
                    Some(init) => init[c * n + i] as f64,
                    None => {
                        if rng.next_u64() >> 63 == 1 {
                            1.0
                        } else {
                            -1.0
                        }
                    }
                },
                kinks: Vec::new(),
            })
            .collect();
        let mut order = base.clone();
        let mut order_rng = match chains.order {
            crate::updaters::Order::Random => {
                Some(Xoshiro256pp::stream(chains.seed, tags::ORDER, c as u64))
            }
            _ => None,
        };
        let (mut bounds, mut g, mut vals) = (Vec::new(), Vec::new(), Vec::new());
        let mut moves = 0;
        for &s in run.s_schedule {
            check_cancel(cancel)?;
            if let Some(r) = order_rng.as_mut() {
                r.shuffle(&mut order);
            }
            let rate = run.gamma * (1.0 - s);
            moves += sweep_chain(
                &mut lines,
                model,
                &order,
                run.beta,
                rate,
                s,
                &mut rng,
                &mut bounds,
                &mut g,
                &mut vals,
            );
        }
        Ok((lines, moves))
    };
    let results: Vec<(Vec<Line>, u64)> = map_units(threads, reads, one)?;
    let mut out = CtOutput {
        spins: try_vec(reads * n, 0i8, "num_reads")?,
        energies: try_vec(reads, 0.0, "num_reads")?,
        mean_kinks: try_vec(reads, 0.0, "num_reads")?,
        moves: 0,
    };
    for (c, (lines, moves)) in results.into_iter().enumerate() {
        out.moves += moves;
        let row = &mut out.spins[c * n..(c + 1) * n];
        let mut kinks = 0usize;
        for (i, l) in lines.iter().enumerate() {
            row[i] = l.v0 as i8;
            kinks += l.kinks.len();
        }
        out.energies[c] = model.energy_of(row);
        out.mean_kinks[c] = kinks as f64 / n as f64;
    }
    Ok(out)
}
