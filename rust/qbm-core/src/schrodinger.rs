//! Closed-system annealing of a transverse-field Ising Hamiltonian on a state vector.
//!
//! H(s) = -A(s)/2 sum_q X_q + B(s)/2 E(z), with E(z) the problem's energy on basis state
//! z (qubit q is the index bit of weight 2^(n-1-q), as in [`crate::circuit`]; bit 0 is
//! spin +1, the eigenvalue of Z on |0>). With A, B in GHz and t in ns (h = 1), one
//! second-order (Strang) step of length dt multiplies amplitude z by
//! exp(-i pi dt B E(z) / 2), applies RX(theta) = exp(-i theta X / 2) with
//! theta = -2 pi A dt to every qubit, and multiplies by the same phase again.
//!
//! The caller turns a schedule into per-step arrays: `mix[k]`, the RX angle of step k,
//! and `phase[k]`, the coefficient c of the diagonal factor exp(-i c E(z)) applied before
//! step k's mixing (the half phases of neighbouring steps merged: `phase` has one more
//! entry than `mix`). [`Diagonal::evolve`] applies `phase[0], mix[0], phase[1], ...,
//! mix[m-1], phase[m]` in two memory passes per step: blocks of 2^11 amplitudes (L1)
//! take the phase and the RX of the 11 low-order qubits, then column tiles (rows of the
//! state viewed as 2^(n-11) x 2^11) take the RX of the high-order qubits. Each amplitude
//! is computed by the same operations whatever the number of threads (threads split
//! blocks and tiles, never a sum), so results are bit-identical on 1 or N threads.
//!
//! [`Diagonal::matvec`] is H's product with a real vector (H is real symmetric in the
//! computational basis), what a Lanczos eigensolver needs. [`draw_states`] reads basis
//! states out of |psi|^2, read r from stream `(seed, ANNEAL, r)`.

use crate::circuit::{rotation, Axis, MAX_QUBITS};
use crate::error::{ensure, CoreError, Result};
use crate::memory;
use crate::model::IsingModel;
use crate::parallel::{check_cancel, resolve_threads, useful_threads, with_exact_threads};
use crate::rng::{tags, Xoshiro256pp};
use rayon::prelude::*;
use std::sync::atomic::AtomicBool;

/// Low-order index bits handled inside one L1-resident block (2^11 amplitudes, 32 KiB).
const BLOCK_BITS: usize = 11;
/// Columns per tile of the high-order pass: at least one cache line, at most what keeps
/// a tile (all rows) within about 256 KiB (L2).
const TILE_MIN: usize = 8;
const TILE_BYTES: usize = 256 << 10;
/// Steps between cancellation checks.
const CANCEL_EVERY: usize = 32;

/// The diagonal of a problem Hamiltonian: E(z) for every basis state of n qubits.
#[derive(Clone, Debug)]
pub struct Diagonal {
    n: usize,
    e: Vec<f64>,
}

/// Bytes a run of `n` qubits holds: the diagonal and a state (real and imaginary planes)
/// plus the binding's copies of one state in and one out.
fn check_size(n: usize) -> Result<usize> {
    ensure((1..=MAX_QUBITS).contains(&n), "n", || {
        format!("the state of {n} spins has 2^{n} amplitudes; qbm simulates 1 to {MAX_QUBITS}")
    })?;
    let d = 1usize << n;
    memory::ensure_fits(memory::bytes(&[d, 8 + 16 * 3], "n")?, "n")?;
    Ok(d)
}

impl Diagonal {
    /// E(z) for all 2^n basis states of `model` (n = its number of variables).
    pub fn from_model(model: &IsingModel, cancel: &AtomicBool) -> Result<Self> {
        let n = model.num_variables();
        let d = check_size(n)?;
        let h = model.h();
        let mut edges: Vec<(u32, u32, f64)> = Vec::with_capacity(model.nnz() / 2);
        for i in 0..n {
            for k in model.indptr()[i]..model.indptr()[i + 1] {
                let j = model.indices()[k] as usize;
                if j > i {
                    edges.push(((n - 1 - i) as u32, (n - 1 - j) as u32, model.data()[k]));
                }
            }
        }
        let fields: Vec<(u32, f64)> = (0..n)
            .filter(|&i| h[i] != 0.0)
            .map(|i| ((n - 1 - i) as u32, h[i]))
            .collect();
        let mut e = memory::try_vec(d, 0.0f64, "n")?;
        let fill = |(c, chunk): (usize, &mut [f64])| {
            let base = c * 4096;
            for (k, v) in chunk.iter_mut().enumerate() {
                let x = (base + k) as u64;
                let mut acc = 0.0;
                for &(b, hv) in &fields {
                    // spin +1 for bit 0: s = 1 - 2 bit
                    acc += if (x >> b) & 1 == 0 { hv } else { -hv };
                }
                for &(a, b, jv) in &edges {
                    acc += if ((x >> a) ^ (x >> b)) & 1 == 0 {
                        jv
                    } else {
                        -jv
                    };
                }
                *v = acc;
            }
        };
        let t = useful_threads(
            resolve_threads(None)?,
            d / 4096 + 1,
            (d * (edges.len() + n)) as u64,
        );
        fill_chunks(&mut e, t, fill)?;
        check_cancel(cancel)?;
        Ok(Self { n, e })
    }

    /// A diagonal given directly (2^n finite values).
    pub fn from_energies(e: Vec<f64>) -> Result<Self> {
        let d = e.len();
        ensure(d >= 2 && d.is_power_of_two(), "energies", || {
            format!("expected 2^n values (n >= 1), got {d}")
        })?;
        let n = d.trailing_zeros() as usize;
        check_size(n)?;
        ensure(e.iter().all(|v| v.is_finite()), "energies", || {
            "must be finite".into()
        })?;
        Ok(Self { n, e })
    }

    /// Number of qubits.
    pub fn n(&self) -> usize {
        self.n
    }

    /// E(z) for every basis state.
    pub fn energies(&self) -> &[f64] {
        &self.e
    }

    /// Apply `phase[0], mix[0], ..., mix[m-1], phase[m]` (see the module docs) to the
    /// state `(re, im)` in place.
    pub fn evolve(
        &self,
        re: &mut [f64],
        im: &mut [f64],
        phase: &[f64],
        mix: &[f64],
        num_threads: Option<usize>,
        cancel: &AtomicBool,
    ) -> Result<()> {
        let d = self.e.len();
        ensure(re.len() == d && im.len() == d, "state", || {
            format!(
                "expected 2 planes of {d} amplitudes, got {} and {}",
                re.len(),
                im.len()
            )
        })?;
        ensure(phase.len() == mix.len() + 1, "phase", || {
            format!(
                "expected len(mix) + 1 = {} values, got {}",
                mix.len() + 1,
                phase.len()
            )
        })?;
        ensure(
            phase.iter().chain(mix).all(|v| v.is_finite()),
            "phase",
            || "phase and mix must be finite".into(),
        )?;
        let n = self.n;
        let low = n.min(BLOCK_BITS);
        let b = 1usize << low;
        let rows = d / b;
        let t = resolve_threads(num_threads)?;
        let work = (d as u64)
            .saturating_mul(n as u64)
            .saturating_mul(mix.len().max(1) as u64);
        let threads = useful_threads(t, rows.max(b / TILE_MIN), work);
        let par = threads > 1;
        let e = &self.e[..];
        with_exact_threads(threads, || {
            for (k, &theta) in mix.iter().enumerate() {
                if k % CANCEL_EVERY == 0 {
                    check_cancel(cancel)?;
                }
                // the phase c_k, then RX(theta_k) on the low-order qubits block by block, then on
                // the high-order ones tile by tile
                for_blocks(re, im, e, b, par, phase[k], theta, low);
                if rows > 1 {
                    high_pass(re, im, rows, b, theta, par);
                }
            }
            // the last phase alone (theta 0: no rotation)
            for_blocks(re, im, e, b, par, phase[mix.len()], 0.0, low);
            Ok::<(), CoreError>(())
        })??;
        Ok(())
    }

    /// y = H x for real x: H = -a/2 sum_q X_q + b/2 diag(E) (real symmetric).
    pub fn matvec(
        &self,
        a: f64,
        bcoef: f64,
        x: &[f64],
        num_threads: Option<usize>,
    ) -> Result<Vec<f64>> {
        let d = self.e.len();
        ensure(x.len() == d, "x", || {
            format!("expected {d} values, got {}", x.len())
        })?;
        ensure(a.is_finite() && bcoef.is_finite(), "a", || {
            "a and b must be finite".into()
        })?;
        let n = self.n;
        let mut y = memory::try_vec(d, 0.0f64, "x")?;
        let f = |(c, chunk): (usize, &mut [f64])| {
            let base = c * 4096;
            for (k, v) in chunk.iter_mut().enumerate() {
                let i = base + k;
                let mut s = 0.0;
                for q in 0..n {
                    s += x[i ^ (1usize << q)];
                }
                *v = 0.5 * bcoef * self.e[i] * x[i] - 0.5 * a * s;
            }
        };
        let t = useful_threads(resolve_threads(num_threads)?, d / 4096 + 1, (d * n) as u64);
        fill_chunks(&mut y, t, f)?;
        Ok(y)
    }
}

/// `f(k, chunk)` on every chunk of 4096 values of `v`, on `threads` threads.
fn fill_chunks<F>(v: &mut [f64], threads: usize, f: F) -> Result<()>
where
    F: Fn((usize, &mut [f64])) + Sync + Send,
{
    with_exact_threads(threads, || {
        if threads > 1 {
            v.par_chunks_mut(4096).enumerate().for_each(f);
        } else {
            v.chunks_mut(4096).enumerate().for_each(f);
        }
    })
}

/// `num_reads` basis states drawn from |psi|^2 (normalised here): read r inverts the
/// cumulative distribution at one uniform of stream `(seed, ANNEAL, index0 + r)`.
pub fn draw_states(
    re: &[f64],
    im: &[f64],
    num_reads: usize,
    seed: u64,
    index0: u64,
) -> Result<Vec<u64>> {
    ensure(re.len() == im.len() && !re.is_empty(), "state", || {
        "real and imaginary planes of one length".into()
    })?;
    let mut cum = memory::try_vec(re.len(), 0.0f64, "state")?;
    let mut acc = 0.0f64;
    for (c, (r, i)) in cum.iter_mut().zip(re.iter().zip(im)) {
        acc += r * r + i * i;
        *c = acc;
    }
    ensure(acc.is_finite() && acc > 0.0, "state", || {
        format!("the state's squared norm is {acc}: nothing to draw")
    })?;
    let out = (0..num_reads)
        .map(|r| {
            let u = Xoshiro256pp::stream(seed, tags::ANNEAL, index0 + r as u64).next_f64() * acc;
            // the first state whose cumulative probability exceeds u
            let x = cum.partition_point(|&c| c <= u).min(cum.len() - 1);
            x as u64
        })
        .collect();
    Ok(out)
}

/// sin and cos of x (|x| up to about 1e6, error about 1 ulp), written without branches
/// so that loops over it vectorise: x = k pi/2 + r with |r| <= pi/4 (pi/2 split in three
/// parts), Cephes' minimax polynomials on r, and the quadrant k mod 4 picks signs.
#[inline(always)]
#[allow(clippy::excessive_precision)] // Cephes' published digits, kept as published
pub fn sincos(x: f64) -> (f64, f64) {
    const TWO_OVER_PI: f64 = std::f64::consts::FRAC_2_PI;
    const P1: f64 = 1.570_796_251_296_997_070_31;
    const P2: f64 = 7.549_789_415_861_596_353_35e-8;
    const P3: f64 = 5.390_302_858_158_119_052_90e-15;
    const SHIFTER: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52: adding it rounds to an integer
    let t = x * TWO_OVER_PI + SHIFTER;
    let k = t - SHIFTER;
    let q = t.to_bits() & 3;
    let r = ((x - k * P1) - k * P2) - k * P3;
    let z = r * r;
    let mut ps = 1.589_623_015_765_465_680_60e-10;
    ps = ps * z - 2.505_074_776_285_780_728_66e-8;
    ps = ps * z + 2.755_731_362_138_572_452_13e-6;
    ps = ps * z - 1.984_126_982_958_953_859_96e-4;
    ps = ps * z + 8.333_333_333_322_118_588_78e-3;
    ps = ps * z - 1.666_666_666_666_663_072_95e-1;
    let s = r + r * z * ps;
    let mut pc = -1.135_853_652_138_768_173_00e-11;
    pc = pc * z + 2.087_570_084_197_473_167_78e-9;
    pc = pc * z - 2.755_731_417_929_673_881_12e-7;
    pc = pc * z + 2.480_158_728_885_170_453_48e-5;
    pc = pc * z - 1.388_888_888_887_305_641_16e-3;
    pc = pc * z + 4.166_666_666_666_659_292_18e-2;
    let c = 1.0 - 0.5 * z + z * z * pc;
    // quadrant: 0 (s, c), 1 (c, -s), 2 (-s, -c), 3 (-c, s)
    let swap = q & 1 == 1;
    let (s1, c1) = if swap { (c, s) } else { (s, c) };
    let sin_neg = q & 2 != 0;
    let cos_neg = (q + 1) & 2 != 0;
    (
        if sin_neg { -s1 } else { s1 },
        if cos_neg { -c1 } else { c1 },
    )
}

/// [`block_mv`] on every block of `b` amplitudes, on the pool's threads when `par`.
#[allow(clippy::too_many_arguments)]
fn for_blocks(
    re: &mut [f64],
    im: &mut [f64],
    e: &[f64],
    b: usize,
    par: bool,
    c: f64,
    theta: f64,
    low: usize,
) {
    let blk = |((r, i), eb): ((&mut [f64], &mut [f64]), &[f64])| block_mv(r, i, eb, c, theta, low);
    if par {
        re.par_chunks_mut(b)
            .zip(im.par_chunks_mut(b))
            .zip(e.par_chunks(b))
            .for_each(blk);
    } else {
        re.chunks_mut(b)
            .zip(im.chunks_mut(b))
            .zip(e.chunks(b))
            .for_each(blk);
    }
}

/// Multiply every amplitude by exp(-i c E).
#[inline(always)]
fn phase_impl(re: &mut [f64], im: &mut [f64], e: &[f64], c: f64) {
    if c == 0.0 {
        return;
    }
    for ((r, i), &ev) in re.iter_mut().zip(im.iter_mut()).zip(e) {
        let (s, co) = sincos(c * ev);
        let (ar, ai) = (*r, *i);
        // (ar + i ai)(co - i s)
        *r = ar * co + ai * s;
        *i = ai * co - ar * s;
    }
}

/// One block: the phase, then RX(theta) on the `low` lowest-order qubits.
#[inline(always)]
fn block_impl(re: &mut [f64], im: &mut [f64], e: &[f64], c: f64, theta: f64, low: usize) {
    phase_impl(re, im, e, c);
    if theta == 0.0 {
        return;
    }
    for bit in 0..low {
        rotation(re, im, Axis::X, 1usize << bit, 0, theta);
    }
}

crate::multiversion! {
    fn block_mv(re: &mut [f64], im: &mut [f64], e: &[f64], c: f64, theta: f64, low: usize) = block_impl;
}

#[derive(Clone, Copy)]
struct Planes {
    re: *mut f64,
    im: *mut f64,
}
// SAFETY: tiles write disjoint columns; see `high_pass`.
unsafe impl Send for Planes {}
unsafe impl Sync for Planes {}

/// RX(theta) on the qubits of the row index (the state as `rows x b`), tile by tile: a
/// tile is `TILE_W` columns of every row, so each thread owns disjoint amplitudes.
fn high_pass(re: &mut [f64], im: &mut [f64], rows: usize, b: usize, theta: f64, par: bool) {
    if theta == 0.0 {
        return;
    }
    let p = Planes {
        re: re.as_mut_ptr(),
        im: im.as_mut_ptr(),
    };
    let w = (TILE_BYTES / (16 * rows)).clamp(TILE_MIN, b);
    let tiles = b / w;
    let (s, c) = (0.5 * theta).sin_cos();
    // tile k touches only columns k w .. (k + 1) w of each row, which no other tile touches
    let f = move |tile: usize| tile_mv(p, rows, b, tile * w, w, c, s);
    if par {
        (0..tiles).into_par_iter().for_each(f);
    } else {
        (0..tiles).for_each(f);
    }
}

/// RX on the row-index qubits for columns `c0 .. c0 + w` (`w` a multiple of 8). `p`
/// must point to `rows * b` amplitudes per plane, and no other thread may touch those
/// columns meanwhile (what [`high_pass`] guarantees).
#[inline(always)]
fn tile_impl(p: Planes, rows: usize, b: usize, c0: usize, w: usize, c: f64, s: f64) {
    let (re, im) = (p.re, p.im);
    let mut rs = 1;
    while rs < rows {
        let mut r = 0;
        while r < rows {
            for r0 in r..r + rs {
                let a0 = r0 * b + c0;
                let b0 = (r0 + rs) * b + c0;
                // SAFETY: a0 + w <= b0 + w <= rows * b (c0 + w <= b), the four runs are
                // disjoint, and this tile's columns are this thread's alone.
                let (ar, ai, br, bi) = unsafe {
                    (
                        std::slice::from_raw_parts_mut(re.add(a0), w),
                        std::slice::from_raw_parts_mut(im.add(a0), w),
                        std::slice::from_raw_parts_mut(re.add(b0), w),
                        std::slice::from_raw_parts_mut(im.add(b0), w),
                    )
                };
                for (((xr, xi), yr), yi) in ar
                    .chunks_exact_mut(TILE_MIN)
                    .zip(ai.chunks_exact_mut(TILE_MIN))
                    .zip(br.chunks_exact_mut(TILE_MIN))
                    .zip(bi.chunks_exact_mut(TILE_MIN))
                {
                    for j in 0..TILE_MIN {
                        let (a, b_, x, y) = (xr[j], xi[j], yr[j], yi[j]);
                        xr[j] = c * a + s * y;
                        xi[j] = c * b_ - s * x;
                        yr[j] = s * b_ + c * x;
                        yi[j] = c * y - s * a;
                    }
                }
            }
            r += 2 * rs;
        }
        rs *= 2;
    }
}

crate::multiversion! {
    fn tile_mv(p: Planes, rows: usize, b: usize, c0: usize, w: usize, c: f64, s: f64) = tile_impl;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense_rx_all(n: usize, theta: f64, re: &mut [f64], im: &mut [f64]) {
        for q in 0..n {
            rotation(re, im, Axis::X, 1usize << q, 0, theta);
        }
    }

    #[test]
    fn sincos_matches_std() {
        let mut worst = 0.0f64;
        let mut x = -2000.0;
        while x < 2000.0 {
            let (s, c) = sincos(x);
            let (s0, c0) = x.sin_cos();
            worst = worst.max((s - s0).abs()).max((c - c0).abs());
            x += 0.0137;
        }
        assert!(worst < 1e-13, "worst {worst}");
    }

    #[test]
    fn blocked_step_equals_plain_passes() {
        // n = 13: two row bits above the 11 block bits
        for n in [3usize, 11, 13] {
            let d = 1usize << n;
            let e: Vec<f64> = (0..d).map(|i| ((i * 7919) % 23) as f64 - 11.0).collect();
            let diag = Diagonal::from_energies(e.clone()).unwrap();
            let mut rng = Xoshiro256pp::stream(1, 0, 0);
            let mut re: Vec<f64> = (0..d).map(|_| rng.next_f64() - 0.5).collect();
            let mut im: Vec<f64> = (0..d).map(|_| rng.next_f64() - 0.5).collect();
            let (mut r2, mut i2) = (re.clone(), im.clone());
            let phase = [0.3, -0.7, 0.2];
            let mix = [1.1, -0.4];
            let cancel = AtomicBool::new(false);
            diag.evolve(&mut re, &mut im, &phase, &mix, Some(1), &cancel)
                .unwrap();
            for k in 0..3 {
                phase_impl(&mut r2, &mut i2, &e, phase[k]);
                if k < 2 {
                    dense_rx_all(n, mix[k], &mut r2, &mut i2);
                }
            }
            for j in 0..d {
                assert!((re[j] - r2[j]).abs() < 1e-12 && (im[j] - i2[j]).abs() < 1e-12);
            }
            // same bits on two threads
            let (mut r3, mut i3) = (r2.clone(), i2.clone());
            let (mut r4, mut i4) = (r2.clone(), i2.clone());
            diag.evolve(&mut r3, &mut i3, &phase, &mix, Some(1), &cancel)
                .unwrap();
            diag.evolve(&mut r4, &mut i4, &phase, &mix, Some(2), &cancel)
                .unwrap();
            assert_eq!(r3, r4);
            assert_eq!(i3, i4);
        }
    }

    #[test]
    fn model_energies_match_direct() {
        // 3 spins: h = (0.5, 0, -1), J01 = 1, J12 = -2
        let m = IsingModel::from_csr(
            vec![0.5, 0.0, -1.0],
            vec![0, 1, 3, 4],
            vec![1, 0, 2, 1],
            vec![1.0, 1.0, -2.0, -2.0],
        )
        .unwrap();
        let diag = Diagonal::from_model(&m, &AtomicBool::new(false)).unwrap();
        for x in 0..8usize {
            let s: Vec<i8> = (0..3)
                .map(|q| if (x >> (2 - q)) & 1 == 0 { 1 } else { -1 })
                .collect();
            assert!((diag.energies()[x] - m.energy_of(&s)).abs() < 1e-12);
        }
    }

    #[test]
    fn matvec_is_hamiltonian() {
        let diag = Diagonal::from_energies(vec![1.0, -1.0, 2.0, 0.5]).unwrap();
        let y = diag
            .matvec(2.0, 4.0, &[1.0, 0.0, 0.0, 0.0], Some(1))
            .unwrap();
        // column 0 of -1 (X1 + X2) + 2 diag(E): (2, -1, -1, 0)
        assert_eq!(y, vec![2.0, -1.0, -1.0, 0.0]);
    }

    #[test]
    fn draws_follow_the_distribution() {
        let re = vec![0.0, 0.6f64.sqrt(), 0.0, 0.4f64.sqrt()];
        let im = vec![0.0; 4];
        let x = draw_states(&re, &im, 20000, 3, 0).unwrap();
        let ones = x.iter().filter(|&&v| v == 1).count() as f64 / 20000.0;
        assert!(x.iter().all(|&v| v == 1 || v == 3));
        assert!((ones - 0.6).abs() < 0.02);
        assert_eq!(x, draw_states(&re, &im, 20000, 3, 0).unwrap());
    }
}
