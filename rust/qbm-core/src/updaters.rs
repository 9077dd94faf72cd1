//! Single-spin update rules on a block of `LANES` chains.
//!
//! A block stores spin i of chain l at `spins[i][l]` as an f32 of value +-1. The local
//! field f_i = h_i + sum_j J_ij s_j is recomputed from the CSR row for all lanes at
//! once (no scatter, no branches), then every lane draws its own uniform.
//!
//! * Heat bath: P(s_i = +1) = 1 / (1 + exp(2 beta f_i)).
//! * Metropolis: flip with probability min(1, exp(-beta dE)), dE = -2 s_i f_i.

use crate::model::IsingModel;
use crate::rng::LaneRng;
use crate::simd::{exp_lanes, Lane, LANES};

/// Which single-spin transition kernel to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateRule {
    HeatBath,
    Metropolis,
}

/// Order in which spins are visited in a sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// 0, 1, ..., n-1 every sweep.
    Sequential,
    /// A fresh random permutation every sweep (shared by the chains of a block).
    Random,
    /// A fixed order grouping the spins by colour class of a greedy graph colouring, so
    /// consecutive updates touch independent spins (the CPU overlaps them instead of
    /// waiting for the previous spin's new value). Same stationary distribution.
    Colour,
}

/// Visiting order of a sweep for `order` (the random order is reshuffled by the driver).
pub fn base_order(model: &IsingModel, order: Order) -> Vec<u32> {
    let n = model.num_variables();
    match order {
        Order::Sequential | Order::Random => (0..n as u32).collect(),
        Order::Colour => {
            let colour = greedy_colouring(model);
            let mut idx: Vec<u32> = (0..n as u32).collect();
            idx.sort_by_key(|&i| (colour[i as usize], i));
            idx
        }
    }
}

/// Greedy colouring in index order: colour[i] is the smallest colour unused by i's
/// lower-indexed neighbours.
pub fn greedy_colouring(model: &IsingModel) -> Vec<u32> {
    let n = model.num_variables();
    let mut colour = vec![u32::MAX; n];
    let mut used: Vec<bool> = Vec::new();
    for i in 0..n {
        used.clear();
        for k in model.indptr()[i]..model.indptr()[i + 1] {
            let c = colour[model.indices()[k] as usize];
            if c != u32::MAX {
                if used.len() <= c as usize {
                    used.resize(c as usize + 1, false);
                }
                used[c as usize] = true;
            }
        }
        colour[i] = used.iter().position(|&u| !u).unwrap_or(used.len()) as u32;
    }
    colour
}

/// Borrowed CSR arrays in the kernels' precision.
///
/// Crate-private: the kernels index these arrays unchecked, relying on the invariants
/// [`IsingModel::from_csr`] established (every index < n, `indptr` within bounds), and
/// [`Csr32::of`] is the only way to build one.
#[derive(Clone, Copy)]
pub(crate) struct Csr32<'a> {
    pub(crate) h: &'a [f32],
    indptr: &'a [usize],
    indices: &'a [u32],
    data: &'a [f32],
}

impl<'a> Csr32<'a> {
    pub(crate) fn of(m: &'a IsingModel) -> Self {
        Self {
            h: m.h32(),
            indptr: m.indptr(),
            indices: m.indices(),
            data: m.data32(),
        }
    }
}

/// sum_j J_ij s_j for every lane (without h_i).
///
/// Four partial sums break the floating-point add dependency chain (the loop is
/// latency-bound otherwise); their combination order is fixed, so results stay
/// deterministic.
///
/// Crate-private: `spins` must hold at least n rows and `i < n` (callers index blocks
/// they built with n rows per slice and orders of indices < n).
#[inline(always)]
pub(crate) fn coupling_field<const W: usize>(
    m: &Csr32<'_>,
    spins: &[[f32; W]],
    i: usize,
) -> [f32; W] {
    // four named accumulators, not an array indexed by the unrolled position: at 16 lanes
    // LLVM kept an indexed array on the stack (every add a store-to-load round trip)
    let (mut a0, mut a1, mut a2, mut a3) = ([0f32; W], [0f32; W], [0f32; W], [0f32; W]);
    // SAFETY: the model validated every index < n and indptr within bounds;
    // `spins` has n rows (checked by callers through debug asserts).
    unsafe {
        let a = *m.indptr.get_unchecked(i);
        let b = *m.indptr.get_unchecked(i + 1);
        let term = |acc: &mut [f32; W], k: usize| {
            let j = *m.indices.get_unchecked(k) as usize;
            let w = *m.data.get_unchecked(k);
            let sj = spins.get_unchecked(j);
            for l in 0..W {
                acc[l] += w * sj[l];
            }
        };
        let mut k = a;
        while k + 4 <= b {
            term(&mut a0, k);
            term(&mut a1, k + 1);
            term(&mut a2, k + 2);
            term(&mut a3, k + 3);
            k += 4;
        }
        while k < b {
            term(&mut a0, k);
            k += 1;
        }
    }
    let mut out = [0f32; W];
    for l in 0..W {
        out[l] = (a0[l] + a1[l]) + (a2[l] + a3[l]);
    }
    out
}

/// h_i + sum_j J_ij z_j^k for every slice k of spin i, into `out` (P rows), on spins
/// stored worldline by worldline (`wl[j * p + k]`): one pass over the neighbours per
/// group of up to 16 slices (16, then 8, 4, 1), each weight applied to the neighbour's contiguous
/// slices. Every slice's sum runs over the neighbours in CSR order, as one slice at a time
/// would (the same bits); a group gives the CPU that many independent add chains where one
/// slice at a time waited on each add's latency.
#[inline(always)]
pub(crate) fn worldline_fields(m: &Csr32<'_>, wl: &[Lane], p: usize, i: usize, out: &mut [Lane]) {
    let mut k = 0;
    while k + 16 <= p {
        slice_group_fields::<16>(m, wl, p, i, k, out);
        k += 16;
    }
    if k + 8 <= p {
        slice_group_fields::<8>(m, wl, p, i, k, out);
        k += 8;
    }
    if k + 4 <= p {
        slice_group_fields::<4>(m, wl, p, i, k, out);
        k += 4;
    }
    while k < p {
        slice_group_fields::<1>(m, wl, p, i, k, out);
        k += 1;
    }
}

/// [`worldline_fields`] for slices k..k + G.
#[inline(always)]
fn slice_group_fields<const G: usize>(
    m: &Csr32<'_>,
    wl: &[Lane],
    p: usize,
    i: usize,
    k: usize,
    out: &mut [Lane],
) {
    // SAFETY: the model validated every index < n and indptr within bounds; callers
    // pass i < n and wl with n * p rows, out with p rows (checked once per sweep), and
    // k + G <= p.
    unsafe {
        let a = *m.indptr.get_unchecked(i);
        let b = *m.indptr.get_unchecked(i + 1);
        let hi = *m.h.get_unchecked(i);
        let base = wl.as_ptr().add(k);
        let mut acc = [[0f32; LANES]; G];
        for q in a..b {
            let j = *m.indices.get_unchecked(q) as usize;
            let w = *m.data.get_unchecked(q);
            let z = base.add(j * p);
            for (g, ag) in acc.iter_mut().enumerate() {
                let zg = &*z.add(g);
                for l in 0..LANES {
                    ag[l] += w * zg[l];
                }
            }
        }
        for (g, ag) in acc.iter().enumerate() {
            let f = out.get_unchecked_mut(k + g);
            for l in 0..LANES {
                f[l] = hi + ag[l];
            }
        }
    }
}

/// Update spin `i` of every lane given its (already scaled) argument.
///
/// `x[l]` is 2 * beta_l * f_i(l); flips are counted in `flips`. Returns the change
/// (new - old) of the spin in every lane (0 or +-2).
#[inline(always)]
pub(crate) fn apply_update<const W: usize>(
    rule: UpdateRule,
    s: &mut [f32; W],
    x: &[f32; W],
    u: &[f32; W],
    flips: &mut [u32; W],
) -> [f32; W] {
    let mut ds = [0f32; W];
    match rule {
        UpdateRule::HeatBath => {
            let e = exp_lanes(x);
            for l in 0..W {
                let new = if u[l] * (1.0 + e[l]) < 1.0 { 1.0 } else { -1.0 };
                ds[l] = new - s[l];
                flips[l] += (new != s[l]) as u32;
                s[l] = new;
            }
        }
        UpdateRule::Metropolis => {
            let mut y = [0f32; W];
            for l in 0..W {
                y[l] = (x[l] * s[l]).min(0.0);
            }
            let e = exp_lanes(&y);
            for l in 0..W {
                let acc = u[l] < e[l];
                flips[l] += acc as u32;
                let new = if acc { -s[l] } else { s[l] };
                ds[l] = new - s[l];
                s[l] = new;
            }
        }
    }
    ds
}

/// One sweep over `order` at per-lane inverse temperatures `beta`.
#[inline(always)]
pub(crate) fn sweep<const W: usize>(
    m: &Csr32<'_>,
    spins: &mut [[f32; W]],
    rng: &mut LaneRng<W>,
    beta: &[f32; W],
    rule: UpdateRule,
    order: &[u32],
    flips: &mut [u32; W],
) {
    let mut de = [0f32; W];
    sweep_tracked::<false, W>(m, spins, rng, beta, rule, order, flips, &mut de);
}

/// Mark on an entry of a sweep order: this spin and the next one are not coupled, so the
/// sweep computes both updates together (two independent dependency chains for the CPU to
/// overlap; the same arithmetic and draws in the same order, so the same bits). Groups of
/// four measured slower than pairs (the fields of four spins do not stay in registers).
const PAIRED: u32 = 1 << 31;

/// The visiting order of [`sweep_tracked`] for `order`: [`base_order`], with pairs marked
/// ([`paired_order`]) when the order stays fixed (a random order is reshuffled every sweep,
/// which would move the marks). Only the single-spin sweeps read the marks; the SQA sweeps
/// take [`base_order`].
pub(crate) fn sweep_order(model: &IsingModel, order: Order) -> Vec<u32> {
    let base = base_order(model, order);
    match order {
        Order::Random => base,
        Order::Sequential | Order::Colour => paired_order(model, &base),
    }
}

/// `order` with [`PAIRED`] set on the first spin of every pair of consecutive uncoupled
/// spins, taken greedily from the start (a colour-class order pairs almost every spin).
/// Only for orders that stay fixed: a shuffled order would move the marks.
fn paired_order(model: &IsingModel, order: &[u32]) -> Vec<u32> {
    assert!(
        model.num_variables() < PAIRED as usize,
        "paired_order: too many spins"
    );
    let (ptr, idx) = (model.indptr(), model.indices());
    let mut out = order.to_vec();
    let mut k = 0;
    while k + 1 < order.len() {
        let (i, j) = (order[k] as usize, order[k + 1]);
        if i != j as usize && !idx[ptr[i]..ptr[i + 1]].contains(&j) {
            out[k] |= PAIRED;
            k += 2;
        } else {
            k += 1;
        }
    }
    out
}

/// (f_i, 2 beta f_i) for every lane.
#[inline(always)]
fn scaled_field<const W: usize>(
    m: &Csr32<'_>,
    spins: &[[f32; W]],
    i: usize,
    two_beta: &[f32; W],
) -> ([f32; W], [f32; W]) {
    let c = coupling_field(m, spins, i);
    // SAFETY: order holds indices < n (built by the drivers).
    let hi = unsafe { *m.h.get_unchecked(i) };
    let mut f = [0f32; W];
    let mut x = [0f32; W];
    for l in 0..W {
        f[l] = hi + c[l];
        x[l] = two_beta[l] * f[l];
    }
    (f, x)
}

/// A sweep that also accumulates, when `TRACK`, the energy change of every lane in `de`
/// (dE = (s_new - s_old) * f_i per update), as parallel tempering needs. `order` may carry
/// [`PAIRED`] marks (see [`paired_order`]).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn sweep_tracked<const TRACK: bool, const W: usize>(
    m: &Csr32<'_>,
    spins: &mut [[f32; W]],
    rng: &mut LaneRng<W>,
    beta: &[f32; W],
    rule: UpdateRule,
    order: &[u32],
    flips: &mut [u32; W],
    de: &mut [f32; W],
) {
    // a real check, once per sweep: the unchecked indexing below relies on it
    assert!(
        spins.len() >= m.h.len(),
        "sweep: block has fewer rows than spins"
    );
    let mut two_beta = [0f32; W];
    for l in 0..W {
        two_beta[l] = 2.0 * beta[l];
    }
    // the generator's state in registers for the sweep (behind `&mut` LLVM kept it in
    // memory, stalling every draw on the previous draw's store)
    let mut r = rng.clone();
    let mut k = 0;
    while k < order.len() {
        // SAFETY: k < order.len(); a PAIRED entry is never the last (paired_order).
        let v = unsafe { *order.get_unchecked(k) };
        if v & PAIRED != 0 {
            let i = (v & !PAIRED) as usize;
            let i2 = unsafe { *order.get_unchecked(k + 1) } as usize;
            let (f, x) = scaled_field(m, spins, i, &two_beta);
            let (f2, x2) = scaled_field(m, spins, i2, &two_beta);
            let u = r.next_f32();
            let u2 = r.next_f32();
            // SAFETY: i != i2 (paired_order checks), both < n (the drivers' orders).
            let (s, s2) = unsafe {
                let p = spins.as_mut_ptr();
                (&mut *p.add(i), &mut *p.add(i2))
            };
            let ds = apply_update(rule, s, &x, &u, flips);
            let ds2 = apply_update(rule, s2, &x2, &u2, flips);
            if TRACK {
                for l in 0..W {
                    de[l] += ds[l] * f[l];
                }
                for l in 0..W {
                    de[l] += ds2[l] * f2[l];
                }
            }
            k += 2;
        } else {
            let i = v as usize;
            let (f, x) = scaled_field(m, spins, i, &two_beta);
            let u = r.next_f32();
            // SAFETY: i < n (the drivers' orders).
            let s = unsafe { spins.get_unchecked_mut(i) };
            let ds = apply_update(rule, s, &x, &u, flips);
            if TRACK {
                for l in 0..W {
                    de[l] += ds[l] * f[l];
                }
            }
            k += 1;
        }
    }
    *rng = r;
}

/// Energy of lane `l` of a block, in f64 against the model's own values (the reference
/// [`lane_energies`] is tested against).
#[cfg(test)]
pub fn lane_energy(model: &IsingModel, spins: &[Lane], l: usize) -> f64 {
    let s: Vec<i8> = spins.iter().map(|row| row[l] as i8).collect();
    model.energy_of(&s)
}

/// Energies of every lane of a block at once: [`IsingModel::energy_of`]'s arithmetic, term
/// by term in the same order, across the lanes (the same f64 bits as [`lane_energy`] per
/// lane, at a fraction of its cost: one pass over the couplings for all lanes, vectorised,
/// where the per-lane form passes over them once per lane; at 2176 Zephyr spins and 128
/// chains the per-chain energies cost more than a sweep).
pub fn lane_energies(model: &IsingModel, spins: &[Lane]) -> [f64; LANES] {
    crate::multiversion! {
        fn run(model: &IsingModel, spins: &[Lane]) -> [f64; LANES] = lane_energies_impl;
    }
    run(model, spins)
}

#[inline(always)]
fn lane_energies_impl(model: &IsingModel, spins: &[Lane]) -> [f64; LANES] {
    let (h, ptr, idx, data) = (model.h(), model.indptr(), model.indices(), model.data());
    let mut e = [0f64; LANES];
    for i in 0..model.num_variables() {
        let mut f = [0f64; LANES];
        for k in ptr[i]..ptr[i + 1] {
            let jk = data[k];
            let sj = &spins[idx[k] as usize];
            for l in 0..LANES {
                f[l] += jk * sj[l] as f64;
            }
        }
        let si = &spins[i];
        for l in 0..LANES {
            e[l] += si[l] as f64 * (h[i] + 0.5 * f[l]);
        }
    }
    e
}

/// Random +-1 initial state for every lane.
pub fn random_block(n: usize, rng: &mut LaneRng) -> Vec<Lane> {
    (0..n)
        .map(|_| {
            let r = rng.next_u32();
            std::array::from_fn(|l| if r[l] >> 31 == 1 { 1.0 } else { -1.0 })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::random_model;
    use crate::rng::LaneRng;

    #[test]
    fn slice_groups_equal_one_slice_at_a_time_bit_for_bit() {
        for (n, density, seed) in [(1, 0.0, 11), (13, 0.4, 12), (50, 0.2, 13)] {
            let m = random_model(n, density, seed);
            let csr = Csr32::of(&m);
            for p in [1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 24, 31, 32, 40, 64] {
                let keys = std::array::from_fn(|l| seed * 77 + p as u64 * 8 + l as u64);
                let wl = random_block(n * p, &mut LaneRng::from_keys(&keys));
                for i in 0..n {
                    let mut grouped = vec![[0f32; LANES]; p];
                    worldline_fields(&csr, &wl, p, i, &mut grouped);
                    let mut single = vec![[0f32; LANES]; p];
                    for k in 0..p {
                        slice_group_fields::<1>(&csr, &wl, p, i, k, &mut single);
                    }
                    assert_eq!(grouped, single, "n {n}, p {p}, spin {i}");
                    // and the field itself, from the definition in f64
                    for k in 0..p {
                        for l in 0..LANES {
                            let mut f = m.h()[i];
                            for q in m.indptr()[i]..m.indptr()[i + 1] {
                                let j = m.indices()[q] as usize;
                                f += m.data()[q] * wl[j * p + k][l] as f64;
                            }
                            assert!((grouped[k][l] as f64 - f).abs() < 1e-4 * (1.0 + f.abs()));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn paired_sweeps_equal_spin_by_spin_sweeps_bit_for_bit() {
        for (n, density, seed) in [(2, 1.0, 5), (9, 0.3, 6), (40, 0.15, 7), (64, 0.6, 8)] {
            let m = random_model(n, density, seed);
            let csr = Csr32::of(&m);
            // a shuffled order carries no marks
            let random = sweep_order(&m, Order::Random);
            assert_eq!(random, base_order(&m, Order::Random));
            assert!(random.iter().all(|&v| v & PAIRED == 0));
            for order in [Order::Sequential, Order::Colour] {
                let plain = base_order(&m, order);
                let paired = paired_order(&m, &plain);
                assert_eq!(sweep_order(&m, order), paired);
                // marks only on uncoupled consecutive spins, never on the last or on a pair's second
                let mut k = 0;
                while k < paired.len() {
                    if paired[k] & PAIRED != 0 {
                        let (i, j) = ((paired[k] & !PAIRED) as usize, paired[k + 1]);
                        assert_eq!(j & PAIRED, 0);
                        assert!(!m.indices()[m.indptr()[i]..m.indptr()[i + 1]].contains(&j));
                        k += 2;
                    } else {
                        k += 1;
                    }
                }
                if order == Order::Colour && n > 8 {
                    assert!(
                        paired.iter().any(|&v| v & PAIRED != 0),
                        "n {n}: no pair formed"
                    );
                }
                for rule in [UpdateRule::HeatBath, UpdateRule::Metropolis] {
                    let run = |ord: &[u32]| {
                        let keys = std::array::from_fn(|l| seed * 1000 + l as u64);
                        let mut rng = LaneRng::from_keys(&keys);
                        let mut spins = random_block(n, &mut rng);
                        let beta: Lane = std::array::from_fn(|l| 0.3 + 0.2 * l as f32);
                        let (mut flips, mut de) = ([0u32; LANES], [0f32; LANES]);
                        for _ in 0..5 {
                            sweep_tracked::<true, LANES>(
                                &csr, &mut spins, &mut rng, &beta, rule, ord, &mut flips, &mut de,
                            );
                        }
                        (spins, flips, de.map(f32::to_bits), rng.next_u32())
                    };
                    assert_eq!(run(&plain), run(&paired), "n {n}, {order:?}, {rule:?}");
                }
            }
        }
    }

    #[test]
    fn lane_energies_equal_each_lanes_energy_bit_for_bit() {
        for (n, density, seed) in [(1, 0.0, 1), (7, 0.5, 2), (40, 0.3, 3), (64, 1.0, 4)] {
            let m = random_model(n, density, seed);
            let mut rng = LaneRng::from_keys(&std::array::from_fn(|l| seed * 100 + l as u64));
            let spins = random_block(n, &mut rng);
            let all = lane_energies(&m, &spins);
            for (l, e) in all.iter().enumerate() {
                assert_eq!(
                    e.to_bits(),
                    lane_energy(&m, &spins, l).to_bits(),
                    "n {n}, lane {l}"
                );
            }
        }
    }
}
