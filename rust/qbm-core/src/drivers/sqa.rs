//! Simulated quantum annealing by path-integral Monte Carlo.
//!
//! H(s) = s H_p - (1 - s) Gamma sum_i X_i at inverse temperature beta, Suzuki-Trotter
//! with P slices z^0..z^{P-1} (periodic): the classical weight is
//! exp( sum_k [ -(beta s / P) E_p(z^k) + K sum_i z_i^k z_i^{k+1} ] ),
//! K = -(1/2) ln tanh(beta Gamma (1 - s) / P).
//!
//! Reads are packed LANES to a block (one lane each); a block stores P slices of n
//! spins. Per sweep: a local heat-bath / Metropolis update of every spin of every slice
//! with field A (h_i + sum_j J_ij z_j^k) - K (z_i^{k-1} + z_i^{k+1}), A = beta s / P,
//! then (optionally) a worldline move per spin: flip z_i in all slices at once, accepted
//! with min(1, exp(2 A sum_k z_i^k (h_i + sum_j J_ij z_j^k))) (inter-slice terms are
//! unchanged by it). Worldline moves matter when K is large (small Gamma (1 - s)).
//!
//! Cluster moves ([`Moves::Cluster`], the default): for each spin, bonds between
//! neighbouring slices k, k+1 (periodic) are placed with probability 1 - exp(-2K) where
//! the two slices agree (Swendsen-Wang along the worldline); every resulting segment is
//! set by heat bath on the longitudinal field it feels summed over its slices,
//! P(segment = +1) = 1 / (1 + exp(2 A F)), F = sum_k (h_i + sum_j J_ij z_j^k). When all
//! bonds hold, the segment is the whole worldline. Unlike local moves, their acceptance
//! does not freeze as K grows with P, so equilibration time does not grow with P.

use super::engine::{drive, Chains, Visit};
use crate::error::{ensure, Result};
use crate::memory::{bytes, try_vec};
use crate::model::IsingModel;
use crate::parallel::check_cancel;
use crate::rng::{tags, LaneRng, Xoshiro256pp};
use crate::simd::{exp_lanes, Lane, LANES};
use crate::updaters::{
    apply_update, base_order, coupling_field, random_block, worldline_fields, Csr32, UpdateRule,
};
use std::sync::atomic::AtomicBool;

/// Inter-slice coupling K for given beta, Gamma, s and P (K = 0 for P = 1; capped at
/// 30, where a broken worldline bond costs e^-120, once Gamma (1 - s) reaches 0).
pub fn trotter_coupling(beta: f64, gamma: f64, s: f64, p: usize) -> f64 {
    trotter_coupling_of(beta * gamma * (1.0 - s), p)
}

/// K = -(1/2) ln tanh(beta_x / P) for a transverse weight beta_x = beta Gamma_eff (the
/// general form behind [`trotter_coupling`]; same caps).
pub fn trotter_coupling_of(beta_x: f64, p: usize) -> f64 {
    if p <= 1 {
        return 0.0;
    }
    let x = beta_x / p as f64;
    if x <= 1e-26 {
        return 30.0;
    }
    (-0.5 * x.tanh().ln()).min(30.0)
}

/// The (gamma, s) form's parameters: beta finite and > 0, gamma finite and >= 0, and a
/// non-empty schedule of s in [0, 1] (shared with the continuous-time driver).
pub(crate) fn check_gamma_s(beta: f64, gamma: f64, s_schedule: &[f64]) -> Result<()> {
    ensure(beta.is_finite() && beta > 0.0, "beta", || {
        format!("must be finite and > 0, got {beta}")
    })?;
    ensure(gamma.is_finite() && gamma >= 0.0, "gamma", || {
        format!("must be finite and >= 0, got {gamma}")
    })?;
    ensure(!s_schedule.is_empty(), "s_schedule", || {
        "must have at least one sweep".into()
    })?;
    for &s in s_schedule {
        ensure(
            s.is_finite() && (0.0..=1.0).contains(&s),
            "s_schedule",
            || format!("values must lie in [0, 1], got {s}"),
        )?;
    }
    Ok(())
}

/// Which Monte Carlo moves an SQA sweep makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moves {
    /// Single spin-slice updates (heat bath or Metropolis, `rule`), plus whole-worldline
    /// flips when `worldline` is set.
    Local,
    /// Swendsen-Wang segments along imaginary time, heat bath per segment (see module docs).
    Cluster,
}

/// Parameters of an SQA run.
#[derive(Clone, Debug)]
pub struct SqaRun<'a> {
    pub beta: f64,
    pub gamma: f64,
    pub num_slices: usize,
    /// One s in [0, 1] per sweep (not read when `fields` is given).
    pub s_schedule: &'a [f64],
    /// Per sweep, (beta_p, beta_x): the weights of the problem and of the transverse field
    /// in exp(-beta H), H = B_p H_p - Gamma_x sum_i X_i, i.e. beta_p = beta B_p and
    /// beta_x = beta Gamma_x; slice coupling beta_p / P, K = -(1/2) ln tanh(beta_x / P).
    /// The (gamma, s) form is beta_p = beta s, beta_x = beta gamma (1 - s); a device
    /// schedule is beta_p = beta B(s) / 2, beta_x = beta A(s) / 2. When given, `beta`,
    /// `gamma` and `s_schedule` are not used.
    pub fields: Option<&'a [(f64, f64)]>,
    /// Chain options; `initial` rows (num_reads x n) are copied into every slice.
    pub chains: Chains<'a>,
    pub rule: UpdateRule,
    pub worldline: bool,
    pub moves: Moves,
}

/// Output: all slices (num_reads x P x n) with their classical energies, and for each
/// read the index of a uniformly chosen slice (the unbiased single-slice sample).
#[derive(Clone, Debug)]
pub struct SqaOutput {
    pub num_variables: usize,
    pub num_slices: usize,
    pub slice_spins: Vec<i8>,
    pub slice_energies: Vec<f64>,
    pub chosen_slice: Vec<usize>,
    pub worldline_acceptance: f64,
    /// Per read: fraction of local spin-slice updates that flipped a spin.
    pub flip_fraction: Vec<f64>,
}

/// One local sweep of slice `cur` with its imaginary-time neighbours `up` (k + 1) and
/// `dn` (k - 1): field A (h_i + sum_j J_ij z_j) - K (z_i^up + z_i^dn). Written like
/// [`crate::updaters::sweep`] (separate rows, no index arithmetic in the loop) so it
/// vectorises as well as the classical sweep.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn slice_sweep(
    m: &Csr32<'_>,
    cur: &mut [Lane],
    up: &[Lane],
    dn: &[Lane],
    a: f32,
    kk: f32,
    rng: &mut LaneRng,
    rule: UpdateRule,
    order: &[u32],
    flips: &mut [u32; LANES],
) {
    // the generator's state in registers (see `updaters::sweep_tracked`)
    let mut r = rng.clone();
    let n = m.h.len();
    // a real check, once per slice sweep: the unchecked indexing below relies on it
    assert!(cur.len() == n && up.len() == n && dn.len() == n);
    for &i in order {
        let i = i as usize;
        let c = coupling_field(m, cur, i);
        // SAFETY: order holds indices < n (built by the drivers), rows have n entries.
        let (hi, zu, zd) = unsafe {
            (
                *m.h.get_unchecked(i),
                *up.get_unchecked(i),
                *dn.get_unchecked(i),
            )
        };
        let mut x = [0f32; LANES];
        for l in 0..LANES {
            x[l] = 2.0 * (a * (hi + c[l]) - kk * (zu[l] + zd[l]));
        }
        let u = r.next_f32();
        let s = unsafe { cur.get_unchecked_mut(i) };
        apply_update(rule, s, &x, &u, flips);
    }
    *rng = r;
}

crate::multiversion! {
    #[allow(clippy::too_many_arguments)]
    fn slice_sweep_mv(
        m: &Csr32<'_>,
        cur: &mut [Lane],
        up: &[Lane],
        dn: &[Lane],
        a: f32,
        kk: f32,
        rng: &mut LaneRng,
        rule: UpdateRule,
        order: &[u32],
        flips: &mut [u32; LANES]
    ) = slice_sweep;
}

/// Whole-worldline flips: spin i of every slice at once, Metropolis on
/// 2 A sum_k z_i^k (h_i + sum_j J_ij z_j^k). Returns (accepted, tried).
#[inline(always)]
fn worldline_pass(
    m: &Csr32<'_>,
    spins: &mut [Lane],
    a: f32,
    rng: &mut LaneRng,
    order: &[u32],
) -> (u64, u64) {
    // the generator's state in registers (see `updaters::sweep_tracked`)
    let mut r = rng.clone();
    let n = m.h.len();
    let p = spins.len() / n;
    let (mut wl_acc, mut wl_try) = (0u64, 0u64);
    for &i in order {
        let i = i as usize;
        let hi = m.h[i];
        let mut acc = [0f32; LANES];
        for k in 0..p {
            let off = k * n;
            let c = coupling_field(m, &spins[off..off + n], i);
            let z = spins[off + i];
            for l in 0..LANES {
                acc[l] += z[l] * (hi + c[l]);
            }
        }
        let mut y = [0f32; LANES];
        for l in 0..LANES {
            y[l] = (2.0 * a * acc[l]).min(0.0);
        }
        let e = exp_lanes(&y);
        let u = r.next_f32();
        let mut flip = [1f32; LANES];
        for l in 0..LANES {
            let ok = u[l] < e[l];
            wl_acc += ok as u64;
            flip[l] = if ok { -1.0 } else { 1.0 };
        }
        wl_try += LANES as u64;
        for k in 0..p {
            let z = &mut spins[k * n + i];
            for l in 0..LANES {
                z[l] *= flip[l];
            }
        }
    }
    *rng = r;
    (wl_acc, wl_try)
}

crate::multiversion! {
    fn worldline_pass_mv(
        m: &Csr32<'_>,
        spins: &mut [Lane],
        a: f32,
        rng: &mut LaneRng,
        order: &[u32]
    ) -> (u64, u64) = worldline_pass;
}

#[inline(always)]
fn block_run(
    m: &Csr32<'_>,
    spins: &mut [Lane],
    rng: &mut LaneRng,
    coeffs: &[(f32, f32)],
    rule: UpdateRule,
    worldline: bool,
    visit: &mut Visit,
    cancel: &AtomicBool,
) -> Result<(u64, u64, [u64; LANES])> {
    let n = m.h.len();
    let p = spins.len() / n;
    let (mut wl_acc, mut wl_try) = (0u64, 0u64);
    let mut local_flips = [0u64; LANES];
    // P = 1 has no neighbouring slices and K = 0, so any +-1 row gives the same argument
    // (0 * (zu + zd) = 0): a constant row, built once, stands in for both
    let lone = if p == 1 {
        vec![[1f32; LANES]; n]
    } else {
        Vec::new()
    };
    for &(a, kk) in coeffs {
        check_cancel(cancel)?;
        // one visiting order per sweep, shared by the slices and the worldline pass
        let order = visit.next_sweep();
        let mut flips = [0u32; LANES];
        // local moves, slice by slice
        for k in 0..p {
            let (before, rest) = spins.split_at_mut(k * n);
            let (cur, after) = rest.split_at_mut(n);
            // neighbours k + 1 and k - 1 (periodic)
            match (p, k) {
                (1, _) => slice_sweep_mv(m, cur, &lone, &lone, a, kk, rng, rule, order, &mut flips),
                (_, 0) => {
                    let up = &after[..n];
                    let dn = &after[(p - 2) * n..];
                    slice_sweep_mv(m, cur, up, dn, a, kk, rng, rule, order, &mut flips)
                }
                _ => {
                    let up = if k + 1 < p { &after[..n] } else { &before[..n] };
                    let dn = &before[(k - 1) * n..k * n];
                    slice_sweep_mv(m, cur, up, dn, a, kk, rng, rule, order, &mut flips)
                }
            }
        }
        if worldline && p > 1 {
            let (acc, tried) = worldline_pass_mv(m, spins, a, rng, order);
            wl_acc += acc;
            wl_try += tried;
        }
        for l in 0..LANES {
            local_flips[l] += flips[l] as u64;
        }
    }
    Ok((wl_acc, wl_try, local_flips))
}

/// One cluster sweep per s-schedule entry (see module docs); returns per-lane flip counts.
fn block_run_cluster(
    m: &Csr32<'_>,
    spins: &mut [Lane],
    rng: &mut LaneRng,
    coeffs: &[(f32, f32)],
    visit: &mut Visit,
    cancel: &AtomicBool,
) -> Result<[u64; LANES]> {
    let n = m.h.len();
    let p = spins.len() / n;
    let mut scratch = ClusterScratch {
        closing: vec![[0f32; LANES]; p],
        broken: vec![[0u32; LANES]; p],
        first: vec![[0u32; LANES]; p],
    };
    let mut flips = [0u64; LANES];
    for &(a, kk) in coeffs {
        check_cancel(cancel)?;
        let pbond = if p > 1 { 1.0 - (-2.0 * kk).exp() } else { 0.0 };
        let order = visit.next_sweep();
        let mut f = [0u32; LANES];
        cluster_sweep_mv(m, spins, rng, a, pbond, order, &mut scratch, &mut f);
        for l in 0..LANES {
            flips[l] += f[l] as u64;
        }
    }
    Ok(flips)
}

/// Per-slice work rows of the cluster sweep (one entry per slice and lane).
struct ClusterScratch {
    /// Segment field sums at their closing slices.
    closing: Vec<Lane>,
    /// All-ones where the bond k -> k + 1 is broken (the segment closes at k).
    broken: Vec<[u32; LANES]>,
    /// All-ones at the first broken bond (it closes the segment through slice 0).
    first: Vec<[u32; LANES]>,
}

/// One cluster sweep over `order`, vectorised over the lanes without branches: a
/// forward pass over the slices sums the field of every segment and closes it at its
/// broken bond (the segment through slice 0 closes at the first broken bond, after
/// adding the tail past the last one); every closing slice then decides its segment's
/// value by heat bath (vector exp), and a backward pass hands each slice the value of
/// the segment it belongs to. A lane without broken bonds has one segment, the whole
/// worldline.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn cluster_sweep(
    m: &Csr32<'_>,
    spins: &mut [Lane],
    rng: &mut LaneRng,
    a: f32,
    pbond: f32,
    order: &[u32],
    scr: &mut ClusterScratch,
    flips: &mut [u32; LANES],
) {
    // the generator's state in registers (see `updaters::sweep_tracked`)
    let mut r = rng.clone();
    let n = m.h.len();
    let p = spins.len() / n;
    // a real check, once per sweep: the unchecked indexing below relies on it
    assert!(
        spins.len() == p * n
            && scr.closing.len() == p
            && scr.broken.len() == p
            && scr.first.len() == p
    );
    let always = if p == 1 { u32::MAX } else { 0 };
    let two_a = 2.0 * a;
    for &i in order {
        let i = i as usize;
        // the field on spin i in every slice (kept in `closing` until the pass below)
        worldline_fields(m, spins, p, i, &mut scr.closing);
        // forward pass: bonds, running sums, closing sums
        let mut acc = [0f32; LANES];
        let mut head = [0f32; LANES];
        let mut seen = [0u32; LANES];
        for k in 0..p {
            let k1 = if k + 1 == p { 0 } else { k + 1 };
            // SAFETY: k, k1 < p and i < n, so every index is < n * p.
            let (zk, zk1, br_k, first_k, cl_k) = unsafe {
                (
                    *spins.get_unchecked(i * p + k),
                    *spins.get_unchecked(i * p + k1),
                    scr.broken.get_unchecked_mut(k),
                    scr.first.get_unchecked_mut(k),
                    scr.closing.get_unchecked_mut(k),
                )
            };
            let u = r.next_f32();
            // bit masks (all ones / zero) rather than bools, computed into whole
            // arrays and stored at once, so these loops vectorise
            let mut br = [0u32; LANES];
            let mut fst = [0u32; LANES];
            for l in 0..LANES {
                acc[l] += cl_k[l];
                let differ = (zk[l].to_bits() ^ zk1[l].to_bits()) >> 31;
                br[l] = (differ | (u[l] >= pbond) as u32).wrapping_neg() | always;
                fst[l] = br[l] & !seen[l];
            }
            *cl_k = acc;
            *br_k = br;
            *first_k = fst;
            for l in 0..LANES {
                let a_bits = acc[l].to_bits();
                head[l] = f32::from_bits((a_bits & fst[l]) | (head[l].to_bits() & !fst[l]));
                seen[l] |= br[l];
                acc[l] = f32::from_bits(a_bits & !br[l]);
            }
        }
        // the wrap segment: the tail past the last break plus the head up to the first
        let uw = r.next_f32();
        let mut wrap = [0f32; LANES];
        for l in 0..LANES {
            wrap[l] = acc[l] + f32::from_bits(head[l].to_bits() & seen[l]);
        }
        let wrap_val = heat_bath_values(two_a, &wrap, &uw);
        let mut cur = wrap_val;
        // heat bath at every slice as if it closed a segment (slices in reverse, the
        // order the random numbers are drawn in), then the backward pass: each slice
        // takes the value decided at the next closing slice
        for k in (0..p).rev() {
            let u = r.next_f32();
            // SAFETY: k < p.
            let cl_k = unsafe { scr.closing.get_unchecked_mut(k) };
            *cl_k = heat_bath_values(two_a, cl_k, &u);
        }
        for k in (0..p).rev() {
            // SAFETY: k < p, i < n.
            let (hb, br_k, first_k, z) = unsafe {
                (
                    *scr.closing.get_unchecked(k),
                    *scr.broken.get_unchecked(k),
                    *scr.first.get_unchecked(k),
                    spins.get_unchecked_mut(i * p + k),
                )
            };
            // bit selects on +-1.0 (they differ only in the sign bit), on copies in
            // registers and stored at once, so this loop vectorises whatever LLVM makes of
            // the aliasing: cur = br ? (first ? wrap : hb) : cur
            let old = *z;
            let mut new = [0f32; LANES];
            for l in 0..LANES {
                let (f, b) = (first_k[l], br_k[l]);
                let decided = (wrap_val[l].to_bits() & f) | (hb[l].to_bits() & !f);
                let c = (decided & b) | (cur[l].to_bits() & !b);
                flips[l] += (old[l].to_bits() ^ c) >> 31;
                cur[l] = f32::from_bits(c);
                new[l] = cur[l];
            }
            *z = new;
        }
    }
    *rng = r;
}

/// Heat-bath values +-1 for segment sums `f`: +1 where u (1 + exp(two_a f)) < 1.
#[inline(always)]
fn heat_bath_values(two_a: f32, f: &Lane, u: &Lane) -> Lane {
    let mut x = [0f32; LANES];
    for l in 0..LANES {
        x[l] = two_a * f[l];
    }
    let e = exp_lanes(&x);
    let mut out = [0f32; LANES];
    for l in 0..LANES {
        out[l] = if u[l] * (1.0 + e[l]) < 1.0 { 1.0 } else { -1.0 };
    }
    out
}

crate::multiversion! {
    #[allow(clippy::too_many_arguments)]
    fn cluster_sweep_mv(
        m: &Csr32<'_>,
        spins: &mut [Lane],
        rng: &mut LaneRng,
        a: f32,
        pbond: f32,
        order: &[u32],
        scr: &mut ClusterScratch,
        flips: &mut [u32; LANES]
    ) = cluster_sweep;
}

crate::multiversion! {
    fn block_run_mv(
        m: &Csr32<'_>,
        spins: &mut [Lane],
        rng: &mut LaneRng,
        coeffs: &[(f32, f32)],
        rule: UpdateRule,
        worldline: bool,
        visit: &mut Visit,
        cancel: &AtomicBool
    ) -> Result<(u64, u64, [u64; LANES])> = block_run;
}

/// Rows x cols lanes (row-major) to cols x rows.
fn transpose(a: &[Lane], rows: usize, cols: usize) -> Vec<Lane> {
    (0..cols)
        .flat_map(|c| (0..rows).map(move |r| a[r * cols + c]))
        .collect()
}

/// Run SQA. Deterministic in `seed` whatever the thread count.
pub fn sample_sqa(model: &IsingModel, run: &SqaRun<'_>, cancel: &AtomicBool) -> Result<SqaOutput> {
    let n = model.num_variables();
    let chains = &run.chains;
    let reads = chains.num_reads;
    chains.validate(n)?;
    ensure(run.num_slices >= 1, "num_trotter_slices", || {
        "must be at least 1".into()
    })?;
    let p = run.num_slices;
    let coeffs: Vec<(f32, f32)> = match run.fields {
        Some(fields) => {
            ensure(!fields.is_empty(), "fields", || {
                "must have at least one sweep".into()
            })?;
            for &(bp, bx) in fields {
                ensure(
                    bp.is_finite() && bp >= 0.0 && bx.is_finite() && bx >= 0.0,
                    "fields",
                    || format!("weights must be finite and >= 0, got ({bp}, {bx})"),
                )?;
            }
            fields
                .iter()
                .map(|&(bp, bx)| ((bp / p as f64) as f32, trotter_coupling_of(bx, p) as f32))
                .collect()
        }
        None => {
            check_gamma_s(run.beta, run.gamma, run.s_schedule)?;
            // the same operations as the fields form with beta_p = beta s and
            // beta_x = beta gamma (1 - s), so the two agree bit for bit where they coincide
            run.s_schedule
                .iter()
                .map(|&s| {
                    (
                        (run.beta * s / p as f64) as f32,
                        trotter_coupling(run.beta, run.gamma, s, p) as f32,
                    )
                })
                .collect()
        }
    };
    let slice_rows = bytes(&[p, n], "num_trotter_slices")?;
    // a block holds P x n lanes; the output P x n bytes and P energies per read
    let block_bytes = slice_rows * 4 * LANES as u128;
    let row_bytes = slice_rows + p as u128 * 16 + 16;
    let name = if block_bytes > row_bytes.saturating_mul(reads as u128) {
        "num_trotter_slices"
    } else {
        "num_reads"
    };
    chains.check_memory(row_bytes, block_bytes, name)?;
    let csr = Csr32::of(model);
    let base = base_order(model, chains.order);
    let work = (n as u64 + model.indices().len() as u64 / 2)
        .saturating_mul(p as u64 * (1 + run.worldline as u64))
        .saturating_mul(coeffs.len() as u64);
    let blocks = drive(chains, &base, work, |ctx| {
        let first = ctx.start(n);
        let mut spins = Vec::with_capacity(p * n);
        for k in 0..p {
            if k == 0 || chains.initial.is_some() {
                spins.extend_from_slice(&first);
            } else {
                spins.extend(random_block(n, &mut ctx.rng));
            }
        }
        let stats = match run.moves {
            Moves::Local => block_run_mv(
                &csr,
                &mut spins,
                &mut ctx.rng,
                &coeffs,
                run.rule,
                run.worldline,
                &mut ctx.visit,
                cancel,
            )?,
            Moves::Cluster => {
                // the cluster kernel keeps each spin's worldline contiguous
                let mut wl = transpose(&spins, p, n);
                let f = block_run_cluster(
                    &csr,
                    &mut wl,
                    &mut ctx.rng,
                    &coeffs,
                    &mut ctx.visit,
                    cancel,
                )?;
                spins = transpose(&wl, n, p);
                (0, 0, f)
            }
        };
        Ok((spins, stats))
    })?;
    let mut out = SqaOutput {
        num_variables: n,
        num_slices: p,
        slice_spins: try_vec(reads * p * n, 0i8, "num_reads")?,
        slice_energies: try_vec(reads * p, 0.0, "num_reads")?,
        chosen_slice: (0..reads)
            .map(|c| Xoshiro256pp::stream(chains.seed, tags::WORLDLINE, c as u64).below(p))
            .collect(),
        worldline_acceptance: 0.0,
        flip_fraction: try_vec(reads, 0.0, "num_reads")?,
    };
    let (mut wa, mut wt) = (0u64, 0u64);
    let updates = (p * n * coeffs.len()) as f64;
    for (b, (spins, (a, t, f))) in blocks.into_iter().enumerate() {
        wa += a;
        wt += t;
        for (l, c) in chains.reads_of(b) {
            out.flip_fraction[c] = f[l] as f64 / updates;
            for k in 0..p {
                let row = &mut out.slice_spins[(c * p + k) * n..(c * p + k + 1) * n];
                for i in 0..n {
                    row[i] = spins[k * n + i][l] as i8;
                }
                out.slice_energies[c * p + k] = model.energy_of(row);
            }
        }
    }
    out.worldline_acceptance = if wt > 0 { wa as f64 / wt as f64 } else { 0.0 };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::random_model;

    #[test]
    fn classical_limit_p1_is_gibbs_at_beta_s() {
        // P = 1: no transverse field term; samples follow exp(-beta s E).
        let m = random_model(4, 0.9, 2);
        let sched = vec![0.5; 40];
        let run = SqaRun {
            beta: 2.0,
            gamma: 1.0,
            num_slices: 1,
            s_schedule: &sched,
            fields: None,
            chains: Chains {
                num_reads: 20000,
                initial: None,
                order: crate::updaters::Order::Sequential,
                seed: 1,
                num_threads: None,
            },
            rule: UpdateRule::HeatBath,
            worldline: true,
            moves: Moves::Local,
        };
        let out = sample_sqa(&m, &run, &AtomicBool::new(false)).unwrap();
        let mut w = [0f64; 16];
        for x in 0..16usize {
            let s: Vec<i8> = (0..4)
                .map(|i| if x >> i & 1 == 1 { 1 } else { -1 })
                .collect();
            w[x] = (-m.energy_of(&s)).exp();
        }
        let z: f64 = w.iter().sum();
        let mut counts = [0f64; 16];
        for row in out.slice_spins.chunks(4) {
            let x: usize = row
                .iter()
                .enumerate()
                .map(|(i, &v)| ((v == 1) as usize) << i)
                .sum();
            counts[x] += 1.0 / 20000.0;
        }
        let tvd: f64 = counts
            .iter()
            .zip(&w)
            .map(|(c, q)| (c - q / z).abs())
            .sum::<f64>()
            / 2.0;
        assert!(tvd < 0.03, "tvd {tvd}");
    }

    #[test]
    fn trotter_coupling_limits() {
        assert_eq!(trotter_coupling(1.0, 1.0, 0.5, 1), 0.0);
        assert_eq!(trotter_coupling(1.0, 1.0, 1.0, 8), 30.0);
        let k = trotter_coupling(2.0, 1.0, 0.5, 4);
        assert!((k - (-0.5 * (0.25f64).tanh().ln())).abs() < 1e-12);
    }
}
