//! Restricted Boltzmann machines with +-1 units and block Gibbs sampling.
//!
//! E(v, h) = sum_i a_i v_i + sum_j b_j h_j + sum_ij v_i W_ij h_j (the Ising convention of
//! the rest of the core: an RBM is an Ising model on a bipartite graph), p proportional to
//! exp(-beta E). Given v, the hidden units are independent with
//! P(h_j = +1 | v) = 1 / (1 + exp(2 beta (b_j + sum_i v_i W_ij))), and symmetrically.
//!
//! The fields use the +-1 structure: sum_i v_i W_ij = -colsum_j + 2 sum_{i: v_i = +1} W_ij,
//! so a half-sweep adds only the rows of W (or W^T) of active units, in f32 tiles kept in
//! registers. Chains are packed LANES to a block (one lane each) for the random numbers.

use crate::drivers::engine::{drive, Chains};
use crate::error::{ensure, Result};
use crate::memory::{bytes, try_vec};
use crate::parallel::check_cancel;
use crate::rng::LaneRng;
use crate::simd::{exp_lanes, Lane, LANES};
use crate::updaters::{random_block, Order};
use std::sync::atomic::AtomicBool;

/// RBM parameters (f64 for energies, f32 copies for sampling). Fields are private so
/// that every `Rbm` passed the checks of [`Rbm::new`].
#[derive(Clone, Debug)]
pub struct Rbm {
    nv: usize,
    nh: usize,
    /// (nv x nh) row-major.
    w: Vec<f64>,
    a: Vec<f64>,
    b: Vec<f64>,
}

impl Rbm {
    pub fn new(nv: usize, nh: usize, w: Vec<f64>, a: Vec<f64>, b: Vec<f64>) -> Result<Self> {
        ensure(nv > 0 && nh > 0, "W", || {
            "needs at least one visible and one hidden unit".into()
        })?;
        ensure(w.len() == nv * nh, "W", || {
            format!("expected {nv} x {nh} weights, got {}", w.len())
        })?;
        ensure(a.len() == nv, "a", || {
            format!("expected {nv} visible biases, got {}", a.len())
        })?;
        ensure(b.len() == nh, "b", || {
            format!("expected {nh} hidden biases, got {}", b.len())
        })?;
        ensure(w.iter().all(|x| x.is_finite()), "W", || {
            "contains NaN or inf".into()
        })?;
        ensure(a.iter().all(|x| x.is_finite()), "a", || {
            "contains NaN or inf".into()
        })?;
        ensure(b.iter().all(|x| x.is_finite()), "b", || {
            "contains NaN or inf".into()
        })?;
        Ok(Self { nv, nh, w, a, b })
    }

    /// Number of visible units.
    pub fn num_visible(&self) -> usize {
        self.nv
    }

    /// Number of hidden units.
    pub fn num_hidden(&self) -> usize {
        self.nh
    }

    /// Energy of one (v, h) pair (`v`: nv values, `h`: nh values).
    pub fn energy(&self, v: &[i8], h: &[i8]) -> f64 {
        assert!(
            v.len() == self.nv && h.len() == self.nh,
            "Rbm::energy: wrong lengths"
        );
        let mut e = 0.0;
        for i in 0..self.nv {
            let vi = v[i] as f64;
            let mut s = self.a[i];
            let row = &self.w[i * self.nh..(i + 1) * self.nh];
            for j in 0..self.nh {
                s += row[j] * h[j] as f64;
            }
            e += vi * s;
        }
        for j in 0..self.nh {
            e += self.b[j] * h[j] as f64;
        }
        e
    }
}

/// Parameters of a block-Gibbs run.
#[derive(Clone, Debug)]
pub struct RbmRun<'a> {
    pub beta: f64,
    pub num_sweeps: usize,
    /// Chain options: `initial` rows are (num_reads x nv) starting visible states; the
    /// order is not used (a half-sweep updates a whole side at once).
    pub chains: Chains<'a>,
    /// Optional clamp mask (nv); clamped units keep their initial value.
    pub clamp: Option<&'a [bool]>,
}

/// Final states (row-major) and energies.
#[derive(Clone, Debug)]
pub struct RbmSamples {
    pub visible: Vec<i8>,
    pub hidden: Vec<i8>,
    pub energies: Vec<f64>,
}

struct Prepared {
    nv: usize,
    nh: usize,
    w: Vec<f32>,
    wt: Vec<f32>,
    /// b - sum_i W_ij (hidden offset), a - sum_j W_ij (visible offset), scaled by nothing.
    hid0: Vec<f32>,
    vis0: Vec<f32>,
    beta: f32,
}

const TILE: usize = 64;

/// out[..] = base[..] + 2 * sum over active rows of mat (row length `len`).
#[inline(always)]
fn active_row_sum(mat: &[f32], len: usize, active: &[u32], base: &[f32], out: &mut [f32]) {
    let mut t0 = 0;
    while t0 < len {
        let w = TILE.min(len - t0);
        if w == TILE {
            let mut acc = [0f32; TILE];
            for &r in active {
                let row = &mat[r as usize * len + t0..r as usize * len + t0 + TILE];
                for q in 0..TILE {
                    acc[q] += row[q];
                }
            }
            for q in 0..TILE {
                out[t0 + q] = base[t0 + q] + 2.0 * acc[q];
            }
        } else {
            let mut acc = [0f32; TILE];
            for &r in active {
                let row = &mat[r as usize * len + t0..r as usize * len + t0 + w];
                for q in 0..w {
                    acc[q] += row[q];
                }
            }
            for q in 0..w {
                out[t0 + q] = base[t0 + q] + 2.0 * acc[q];
            }
        }
        t0 += TILE;
    }
}

/// Sides shorter than this get their fields lane-major ([`lane_row_sum`]; when both sides
/// are, the whole run is lane-major, [`lane_sample_half`]): for short
/// rows the tile loop of [`active_row_sum`] is mostly overhead (measured: a 6 x 6 RBM ran
/// 2.6x slower than Gibbs on the same model, a 64 x 64 one 0.76x).
const LANE_MAJOR_BELOW: usize = 48;

/// sum_r mask[r][l] * mat[r * len + q] for every lane l, rows in increasing order.
#[inline(always)]
fn masked_column_sum(mat: &[f32], len: usize, mask: &[Lane], q: usize) -> Lane {
    let mut acc: Lane = [0f32; LANES];
    for (r, m) in mask.iter().enumerate() {
        let w = mat[r * len + q];
        for l in 0..LANES {
            acc[l] += w * m[l];
        }
    }
    acc
}

/// The same fields as [`active_row_sum`] for all LANES chains at once, SIMD across the
/// chains: out[l][q] = base[q] + 2 * sum_r mask[r][l] * mat[r * len + q], where mask is
/// 1.0 for active rows and 0.0 otherwise. Rows are added in increasing order and x * 1.0
/// = x, x + 0.0 = x exactly, so the fields (and the samples) are bit-identical to
/// [`active_row_sum`]'s.
#[inline(always)]
fn lane_row_sum(mat: &[f32], len: usize, mask: &[Lane], base: &[f32], out: &mut [Vec<f32>]) {
    for q in 0..len {
        let acc = masked_column_sum(mat, len, mask, q);
        for l in 0..LANES {
            out[l][q] = base[q] + 2.0 * acc[l];
        }
    }
}

/// Fields (LANES x len) of one side from the states `src` of the other: lane-major for
/// short sides, active rows otherwise (bit-identical either way).
#[inline(always)]
fn fields_of(
    mat: &[f32],
    len: usize,
    src: &[Vec<i8>],
    base: &[f32],
    mask: &mut [Lane],
    active: &mut Vec<u32>,
    out: &mut [Vec<f32>],
) {
    if len < LANE_MAJOR_BELOW {
        lane_mask(src, mask);
        lane_row_sum(mat, len, mask, base, out);
    } else {
        for l in 0..LANES {
            active_set(&src[l], active);
            active_row_sum(mat, len, active, base, &mut out[l]);
        }
    }
}

/// One half-sweep of a small RBM held lane-major: the fields of [`lane_row_sum`] and the
/// draws of [`sample_units`] (same arithmetic, same random numbers in the same order), with
/// the states kept as 0/1 masks (`dst_mask[q][l]`) instead of chain-major rows.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn lane_sample_half(
    mat: &[f32],
    len: usize,
    src_mask: &[Lane],
    base: &[f32],
    beta: f32,
    rng: &mut LaneRng,
    dst_mask: &mut [Lane],
    clamp: Option<&[bool]>,
) {
    let two_beta = 2.0 * beta;
    for q in 0..len {
        let acc = masked_column_sum(mat, len, src_mask, q);
        let mut x = [0f32; LANES];
        for l in 0..LANES {
            x[l] = two_beta * (base[q] + 2.0 * acc[l]);
        }
        let e = exp_lanes(&x);
        let u: Lane = rng.next_f32();
        if clamp.is_some_and(|c| c[q]) {
            continue;
        }
        for l in 0..LANES {
            dst_mask[q][l] = if u[l] * (1.0 + e[l]) < 1.0 { 1.0 } else { 0.0 };
        }
    }
}

/// units[l][r] = +1 where mask[r][l] is 1.0, else -1 (the inverse of [`lane_mask`]).
#[inline(always)]
fn units_of(mask: &[Lane], units: &mut [Vec<i8>]) {
    for (r, m) in mask.iter().enumerate() {
        for l in 0..LANES {
            units[l][r] = if m[l] > 0.5 { 1 } else { -1 };
        }
    }
}

/// mask[r][l] = 1.0 where unit r of chain l is +1, else 0.0.
#[inline(always)]
fn lane_mask(units: &[Vec<i8>], mask: &mut [Lane]) {
    for (r, m) in mask.iter_mut().enumerate() {
        for l in 0..LANES {
            m[l] = (units[l][r] > 0) as i32 as f32;
        }
    }
}

/// Sample `dst` (LANES chains x len, chain-major) from fields (LANES x len).
#[inline(always)]
fn sample_units(
    fields: &[Vec<f32>],
    beta: f32,
    rng: &mut LaneRng,
    dst: &mut [Vec<i8>],
    clamp: Option<&[bool]>,
) {
    let len = fields[0].len();
    let two_beta = 2.0 * beta;
    for j in 0..len {
        let mut x = [0f32; LANES];
        for l in 0..LANES {
            x[l] = two_beta * fields[l][j];
        }
        let e = exp_lanes(&x);
        let u: Lane = rng.next_f32();
        let mut new = [0i8; LANES];
        for l in 0..LANES {
            new[l] = if u[l] * (1.0 + e[l]) < 1.0 { 1 } else { -1 };
        }
        if clamp.is_some_and(|c| c[j]) {
            continue;
        }
        for l in 0..LANES {
            dst[l][j] = new[l];
        }
    }
}

/// Indices of the +1 entries of `units`, without data-dependent branches.
#[inline(always)]
fn active_set(units: &[i8], active: &mut Vec<u32>) {
    active.resize(units.len() + 1, 0);
    let mut cnt = 0;
    for (i, &s) in units.iter().enumerate() {
        active[cnt] = i as u32;
        cnt += (s > 0) as usize;
    }
    active.truncate(cnt);
}

#[inline(always)]
fn block_gibbs(
    p: &Prepared,
    vis: &mut [Vec<i8>],
    hid: &mut [Vec<i8>],
    rng: &mut LaneRng,
    sweeps: usize,
    clamp: Option<&[bool]>,
    cancel: &AtomicBool,
) -> Result<()> {
    let mut fh: Vec<Vec<f32>> = vec![vec![0f32; p.nh]; LANES];
    let mut fv: Vec<Vec<f32>> = vec![vec![0f32; p.nv]; LANES];
    let mut active: Vec<u32> = Vec::with_capacity(p.nv.max(p.nh));
    let mut vmask: Vec<Lane> = vec![[0f32; LANES]; p.nv];
    let mut hmask: Vec<Lane> = vec![[0f32; LANES]; p.nh];
    if p.nv < LANE_MAJOR_BELOW && p.nh < LANE_MAJOR_BELOW {
        // small RBMs: the whole run lane-major on 0/1 masks, rows written back at the end
        lane_mask(vis, &mut vmask);
        lane_mask(hid, &mut hmask);
        for _ in 0..sweeps {
            check_cancel(cancel)?;
            lane_sample_half(&p.w, p.nh, &vmask, &p.hid0, p.beta, rng, &mut hmask, None);
            lane_sample_half(&p.wt, p.nv, &hmask, &p.vis0, p.beta, rng, &mut vmask, clamp);
        }
        units_of(&vmask, vis);
        units_of(&hmask, hid);
        return Ok(());
    }
    for _ in 0..sweeps {
        check_cancel(cancel)?;
        // h | v, then v | h
        fields_of(&p.w, p.nh, vis, &p.hid0, &mut vmask, &mut active, &mut fh);
        sample_units(&fh, p.beta, rng, hid, None);
        fields_of(&p.wt, p.nv, hid, &p.vis0, &mut hmask, &mut active, &mut fv);
        sample_units(&fv, p.beta, rng, vis, clamp);
    }
    Ok(())
}

crate::multiversion! {
    fn block_gibbs_mv(
        p: &Prepared,
        vis: &mut [Vec<i8>],
        hid: &mut [Vec<i8>],
        rng: &mut LaneRng,
        sweeps: usize,
        clamp: Option<&[bool]>,
        cancel: &AtomicBool
    ) -> Result<()> = block_gibbs;
}

/// Alternating block Gibbs (h | v, then v | h) for `num_sweeps` sweeps on every chain.
pub fn sample_rbm(rbm: &Rbm, run: &RbmRun<'_>, cancel: &AtomicBool) -> Result<RbmSamples> {
    let (nv, nh) = (rbm.nv, rbm.nh);
    let chains = &run.chains;
    let reads = chains.num_reads;
    chains.validate(nv)?;
    ensure(chains.order != Order::Random, "order", || {
        "block Gibbs updates a whole side at once; 'random' order does not apply".into()
    })?;
    ensure(run.beta.is_finite() && run.beta > 0.0, "beta", || {
        format!("must be finite and > 0, got {}", run.beta)
    })?;
    if let Some(c) = run.clamp {
        ensure(c.len() == nv, "clamp", || {
            format!("expected a mask of {nv} visible units, got {}", c.len())
        })?;
        ensure(chains.initial.is_some(), "clamp", || {
            "clamping needs initial_states holding the clamped values".into()
        })?;
    }
    let row = bytes(&[nv + nh], "W")?;
    chains.check_memory(row + 8, row * 8 * LANES as u128, "num_reads")?;
    let w: Vec<f32> = rbm.w.iter().map(|&x| x as f32).collect();
    let mut wt = vec![0f32; nv * nh];
    for i in 0..nv {
        for j in 0..nh {
            wt[j * nv + i] = w[i * nh + j];
        }
    }
    let hid0: Vec<f32> = (0..nh)
        .map(|j| (rbm.b[j] - (0..nv).map(|i| rbm.w[i * nh + j]).sum::<f64>()) as f32)
        .collect();
    let vis0: Vec<f32> = (0..nv)
        .map(|i| (rbm.a[i] - rbm.w[i * nh..(i + 1) * nh].iter().sum::<f64>()) as f32)
        .collect();
    let prep = Prepared {
        nv,
        nh,
        w,
        wt,
        hid0,
        vis0,
        beta: run.beta as f32,
    };
    // about half the units are active: nv * nh / 2 adds per half-sweep and lane
    let work = ((nv * nh) as u64 + (nv + nh) as u64).saturating_mul(run.num_sweeps as u64);
    let results = drive(chains, &[], work, |ctx| {
        let b = ctx.b;
        let mut vis: Vec<Vec<i8>> = match chains.initial {
            // given states: real lanes copy them, padding lanes hold +1 (no draws)
            Some(init) => (0..LANES)
                .map(|l| {
                    let c = b * LANES + l;
                    if c < reads {
                        init[c * nv..(c + 1) * nv].to_vec()
                    } else {
                        vec![1; nv]
                    }
                })
                .collect(),
            None => {
                let r = random_block(nv, &mut ctx.rng);
                (0..LANES)
                    .map(|l| r.iter().map(|x| x[l] as i8).collect())
                    .collect()
            }
        };
        let mut hid = vec![vec![1i8; nh]; LANES];
        block_gibbs_mv(
            &prep,
            &mut vis,
            &mut hid,
            &mut ctx.rng,
            run.num_sweeps,
            run.clamp,
            cancel,
        )?;
        Ok((vis, hid))
    })?;
    let mut out = RbmSamples {
        visible: try_vec(reads * nv, 0i8, "num_reads")?,
        hidden: try_vec(reads * nh, 0i8, "num_reads")?,
        energies: try_vec(reads, 0.0, "num_reads")?,
    };
    for (b, (vis, hid)) in results.into_iter().enumerate() {
        for (l, c) in chains.reads_of(b) {
            out.visible[c * nv..(c + 1) * nv].copy_from_slice(&vis[l]);
            out.hidden[c * nh..(c + 1) * nh].copy_from_slice(&hid[l]);
            out.energies[c] = rbm.energy(&vis[l], &hid[l]);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Xoshiro256pp;

    #[test]
    fn matches_exact_enumeration_3x2() {
        let (nv, nh) = (3, 2);
        let mut r = Xoshiro256pp::from_key(9);
        let w: Vec<f64> = (0..nv * nh).map(|_| r.next_f64() * 2.0 - 1.0).collect();
        let a: Vec<f64> = (0..nv).map(|_| r.next_f64() - 0.5).collect();
        let b: Vec<f64> = (0..nh).map(|_| r.next_f64() - 0.5).collect();
        let rbm = Rbm::new(nv, nh, w, a, b).unwrap();
        let run = RbmRun {
            beta: 1.0,
            num_sweeps: 20,
            chains: Chains {
                num_reads: 20000,
                initial: None,
                order: Order::Sequential,
                seed: 2,
                num_threads: None,
            },
            clamp: None,
        };
        let out = sample_rbm(&rbm, &run, &AtomicBool::new(false)).unwrap();
        let mut p = vec![0f64; 32];
        let mut q = vec![0f64; 32];
        for x in 0..32usize {
            let v: Vec<i8> = (0..3)
                .map(|i| if x >> i & 1 == 1 { 1 } else { -1 })
                .collect();
            let h: Vec<i8> = (0..2)
                .map(|j| if x >> (3 + j) & 1 == 1 { 1 } else { -1 })
                .collect();
            p[x] = (-rbm.energy(&v, &h)).exp();
        }
        let z: f64 = p.iter().sum();
        for c in 0..20000 {
            let v = &out.visible[c * 3..c * 3 + 3];
            let h = &out.hidden[c * 2..c * 2 + 2];
            let x: usize = v
                .iter()
                .enumerate()
                .map(|(i, &s)| ((s == 1) as usize) << i)
                .sum::<usize>()
                + h.iter()
                    .enumerate()
                    .map(|(j, &s)| ((s == 1) as usize) << (3 + j))
                    .sum::<usize>();
            q[x] += 1.0 / 20000.0;
        }
        let tvd: f64 = p
            .iter()
            .zip(&q)
            .map(|(a, b)| (a / z - b).abs())
            .sum::<f64>()
            / 2.0;
        assert!(tvd < 0.03, "tvd {tvd}");
    }
}
