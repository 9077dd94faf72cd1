//! Maximum mean discrepancy (MMD) estimators on bitstrings and real vectors.
//!
//! Bitstrings are packed into u64 words (`words` per row). Every kernel on bitstrings
//! that qbm offers (Gaussian on Hamming distance exp(-d / (2 sigma)), mixtures of
//! bandwidths, delta) is a function of the Hamming distance d alone, so the core
//! computes *histograms* of d over the pairs (x, x'), (y, y') and (x, y); kernel sums
//! for any number of bandwidths are then dot products with a table of n + 1 values.
//! Pairs are counted by popcount of XOR; rows are split over threads and the integer
//! histograms summed, so results are exact and independent of the thread count.

use crate::error::{ensure, Result};
use crate::parallel::{check_cancel, with_threads};
use rayon::prelude::*;
use std::sync::atomic::AtomicBool;

/// Hamming-distance histograms: `xx[d]` counts unordered pairs i < j within x,
/// `yy[d]` within y, `xy[d]` all pairs (i, j) across the sets. Length nbits + 1.
#[derive(Clone, Debug, PartialEq)]
pub struct HammingHistograms {
    pub xx: Vec<u64>,
    pub yy: Vec<u64>,
    pub xy: Vec<u64>,
}

const ROWS_PER_TASK: usize = 64;
const SUBHIST: usize = 8;

#[inline(always)]
fn dist(a: &[u64], b: &[u64]) -> usize {
    let mut d = 0u32;
    for w in 0..a.len() {
        d += (a[w] ^ b[w]).count_ones();
    }
    d as usize
}

/// Add the distances of rows `a_rows` of `a` against rows `b_from..` of `b` (or all of
/// `b` when `upper` is false) into `hist` (SUBHIST interleaved copies of nbits + 1).
#[inline(always)]
fn pair_block(
    a: &[u64],
    b: &[u64],
    words: usize,
    rows: std::ops::Range<usize>,
    upper: bool,
    hist: &mut [u64],
    nb1: usize,
) {
    let nb = b.len() / words;
    if words == 1 {
        for i in rows {
            let x = a[i];
            let start = if upper { i + 1 } else { 0 };
            let mut j = start;
            while j + SUBHIST <= nb {
                for q in 0..SUBHIST {
                    let d = (x ^ b[j + q]).count_ones() as usize;
                    hist[q * nb1 + d] += 1;
                }
                j += SUBHIST;
            }
            while j < nb {
                let d = (x ^ b[j]).count_ones() as usize;
                hist[d] += 1;
                j += 1;
            }
        }
    } else {
        for i in rows {
            let x = &a[i * words..(i + 1) * words];
            let start = if upper { i + 1 } else { 0 };
            for j in start..nb {
                let d = dist(x, &b[j * words..(j + 1) * words]);
                hist[(j % SUBHIST) * nb1 + d] += 1;
            }
        }
    }
}

fn pair_block_dispatch(
    a: &[u64],
    b: &[u64],
    words: usize,
    lo: usize,
    hi: usize,
    upper: bool,
    hist: &mut [u64],
    nb1: usize,
) {
    crate::multiversion! {
        fn run(a: &[u64], b: &[u64], words: usize, rows: std::ops::Range<usize>, upper: bool, hist: &mut [u64], nb1: usize) = pair_block;
    }
    run(a, b, words, lo..hi, upper, hist, nb1)
}

fn histogram(
    a: &[u64],
    b: &[u64],
    words: usize,
    nbits: usize,
    upper: bool,
    cancel: &AtomicBool,
) -> Result<Vec<u64>> {
    let na = a.len() / words;
    let nb1 = nbits + 1;
    // Rows near the top of an upper-triangular sweep have more pairs; small tasks balance.
    let tasks: Vec<(usize, usize)> = (0..na)
        .step_by(ROWS_PER_TASK)
        .map(|s| (s, (s + ROWS_PER_TASK).min(na)))
        .collect();
    // collected as one Result so that a cancelled call stops scheduling tasks at once
    let parts: Result<Vec<Vec<u64>>> = tasks
        .par_iter()
        .map(|&(lo, hi)| {
            check_cancel(cancel)?;
            let mut h = vec![0u64; SUBHIST * nb1];
            pair_block_dispatch(a, b, words, lo, hi, upper, &mut h, nb1);
            Ok(h)
        })
        .collect();
    let mut out = vec![0u64; nb1];
    for p in parts? {
        for q in 0..SUBHIST {
            for d in 0..nb1 {
                out[d] += p[q * nb1 + d];
            }
        }
    }
    Ok(out)
}

fn validate_packed(x: &[u64], y: &[u64], words: usize, nbits: usize) -> Result<()> {
    ensure(words >= 1 && nbits >= 1 && nbits <= 64 * words, "x", || {
        format!("bit width {nbits} does not fit {words} words per row")
    })?;
    ensure(!x.is_empty() && x.len().is_multiple_of(words), "x", || {
        "must hold at least one bitstring".into()
    })?;
    ensure(!y.is_empty() && y.len().is_multiple_of(words), "y", || {
        "must hold at least one bitstring".into()
    })
}

/// Histograms of Hamming distances within and across two packed bit sets.
///
/// `x`: (N x words) u64, `y`: (M x words) u64, `nbits` <= 64 * words meaningful bits
/// (padding bits must be zero in both).
pub fn hamming_histograms(
    x: &[u64],
    y: &[u64],
    words: usize,
    nbits: usize,
    num_threads: Option<usize>,
    cancel: &AtomicBool,
) -> Result<HammingHistograms> {
    validate_packed(x, y, words, nbits)?;
    with_threads(num_threads, || -> Result<HammingHistograms> {
        Ok(HammingHistograms {
            xx: histogram(x, x, words, nbits, true, cancel)?,
            yy: histogram(y, y, words, nbits, true, cancel)?,
            xy: histogram(x, y, words, nbits, false, cancel)?,
        })
    })?
}

/// Cross histogram only (for callers that need the cross term alone).
pub fn hamming_cross_histogram(
    x: &[u64],
    y: &[u64],
    words: usize,
    nbits: usize,
    num_threads: Option<usize>,
    cancel: &AtomicBool,
) -> Result<Vec<u64>> {
    validate_packed(x, y, words, nbits)?;
    with_threads(num_threads, || histogram(x, y, words, nbits, false, cancel))?
}

/// RBF kernel sums on real vectors: for every bandwidth s, returns
/// (sum_{i<j} k(x_i, x_j), sum_{i<j} k(y_i, y_j), sum_{i,j} k(x_i, y_j)) with
/// k(a, b) = exp(-||a - b||^2 / (2 s^2)). x: (N x d), y: (M x d) row-major.
pub fn rbf_kernel_sums(
    x: &[f64],
    y: &[f64],
    d: usize,
    sigmas: &[f64],
    num_threads: Option<usize>,
    cancel: &AtomicBool,
) -> Result<Vec<(f64, f64, f64)>> {
    ensure(
        d >= 1 && !x.is_empty() && x.len().is_multiple_of(d),
        "x",
        || "expected a non-empty (N, d) array".into(),
    )?;
    ensure(!y.is_empty() && y.len().is_multiple_of(d), "y", || {
        format!("expected a non-empty (M, {d}) array")
    })?;
    for &s in sigmas {
        ensure(s.is_finite() && s > 0.0, "sigma", || {
            format!("bandwidths must be finite and > 0, got {s}")
        })?;
    }
    let coef: Vec<f64> = sigmas.iter().map(|s| -0.5 / (s * s)).collect();
    let sums = |a: &[f64], b: &[f64], upper: bool| -> Result<Vec<f64>> {
        let na = a.len() / d;
        let nb = b.len() / d;
        // one Result for all rows: a cancelled call stops at the next row of every thread
        let parts: Result<Vec<Vec<f64>>> = (0..na)
            .into_par_iter()
            .with_min_len(16)
            .map(|i| {
                check_cancel(cancel)?;
                let xi = &a[i * d..(i + 1) * d];
                let mut acc = vec![0.0; coef.len()];
                let start = if upper { i + 1 } else { 0 };
                for j in start..nb {
                    let yj = &b[j * d..(j + 1) * d];
                    let mut sq = 0.0;
                    for k in 0..d {
                        let t = xi[k] - yj[k];
                        sq += t * t;
                    }
                    for (c, a) in coef.iter().zip(acc.iter_mut()) {
                        *a += (c * sq).exp();
                    }
                }
                Ok(acc)
            })
            .collect();
        let mut out = vec![0.0; coef.len()];
        for p in parts? {
            for (o, v) in out.iter_mut().zip(p) {
                *o += v;
            }
        }
        Ok(out)
    };
    with_threads(num_threads, || -> Result<Vec<(f64, f64, f64)>> {
        let xx = sums(x, x, true)?;
        let yy = sums(y, y, true)?;
        let xy = sums(x, y, false)?;
        Ok((0..coef.len()).map(|k| (xx[k], yy[k], xy[k])).collect())
    })?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Xoshiro256pp;

    #[test]
    fn histograms_match_brute_force() {
        let mut r = Xoshiro256pp::from_key(1);
        for &(nbits, words) in &[(7usize, 1usize), (64, 1), (70, 2)] {
            let mk = |r: &mut Xoshiro256pp, n: usize| -> Vec<u64> {
                (0..n * words)
                    .map(|k| {
                        let w = k % words;
                        let bits = (nbits - 64 * w).min(64);
                        let mask = if bits == 64 {
                            u64::MAX
                        } else {
                            (1u64 << bits) - 1
                        };
                        r.next_u64() & mask
                    })
                    .collect()
            };
            let x = mk(&mut r, 37);
            let y = mk(&mut r, 23);
            let h =
                hamming_histograms(&x, &y, words, nbits, Some(2), &AtomicBool::new(false)).unwrap();
            let mut want = vec![0u64; nbits + 1];
            for i in 0..37 {
                for j in 0..23 {
                    want[dist(
                        &x[i * words..(i + 1) * words],
                        &y[j * words..(j + 1) * words],
                    )] += 1;
                }
            }
            assert_eq!(h.xy, want);
            assert_eq!(h.xx.iter().sum::<u64>(), 37 * 36 / 2);
            assert_eq!(h.yy.iter().sum::<u64>(), 23 * 22 / 2);
        }
    }
}
