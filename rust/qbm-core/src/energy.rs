//! Energies of a batch of configurations under a sparse pairwise model, and their
//! gradients: the Boltzmann-machine prior's E(z) = -sum_i h_i z_i - sum_e J_e z_a(e) z_b(e)
//! (the prior's sign convention) for many z at once (importance-weighted evaluation
//! draws thousands of latent samples per image; the torch gather over edges allocates
//! rows x edges temporaries).
//!
//! Rows are split over threads in fixed chunks of [`CHUNK`] rows; the reductions over
//! rows (the gradients of h and J) are summed per chunk and then over chunks in order, so
//! results are identical on any number of threads.

use crate::error::{ensure, CoreError, Result};
use crate::parallel::{check_cancel, resolve_threads, useful_threads, with_exact_threads};
use rayon::prelude::*;
use std::sync::atomic::AtomicBool;

/// Rows per unit of work (and per partial sum of the parameter gradients).
pub const CHUNK: usize = 64;

/// A pairwise model on `n` units: fields `h` and couplings `j` on edges `(a[e], b[e])`.
pub struct Pairwise<'a> {
    pub n: usize,
    pub h: &'a [f64],
    pub a: &'a [u32],
    pub b: &'a [u32],
    pub j: &'a [f64],
}

impl Pairwise<'_> {
    fn check(&self) -> Result<()> {
        ensure(self.h.len() == self.n, "h", || {
            format!("expected {} fields, got {}", self.n, self.h.len())
        })?;
        ensure(
            self.a.len() == self.j.len() && self.b.len() == self.j.len(),
            "edges",
            || {
                format!(
                    "edges ({}, {}) and J ({}) must have one entry per edge",
                    self.a.len(),
                    self.b.len(),
                    self.j.len()
                )
            },
        )?;
        if let Some(e) = self
            .a
            .iter()
            .zip(self.b)
            .position(|(&x, &y)| x as usize >= self.n || y as usize >= self.n || x == y)
        {
            return Err(CoreError::param(
                "edges",
                format!(
                    "edge {e} = ({}, {}) is not a pair of distinct units below {}",
                    self.a[e], self.b[e], self.n
                ),
            ));
        }
        ensure(
            self.h.iter().chain(self.j).all(|v| v.is_finite()),
            "J",
            || "h and J must be finite".into(),
        )
    }

    #[cfg(test)]
    fn row_energy(&self, z: &[f64]) -> f64 {
        let mut e = 0.0;
        for (hi, zi) in self.h.iter().zip(z) {
            e -= hi * zi;
        }
        let mut c = 0.0;
        for ((&x, &y), &w) in self.a.iter().zip(self.b).zip(self.j) {
            c += w * z[x as usize] * z[y as usize];
        }
        e - c
    }
}

fn check_rows(z: &[f64], n: usize) -> Result<usize> {
    ensure(n > 0 && z.len().is_multiple_of(n), "z", || {
        format!("{} values do not split into rows of {n}", z.len())
    })?;
    ensure(z.iter().all(|v| v.is_finite()), "z", || {
        "must be finite".into()
    })?;
    Ok(z.len() / n)
}

fn threads_for(num_threads: Option<usize>, rows: usize, edges: usize) -> Result<usize> {
    let t = resolve_threads(num_threads)?;
    let work = (rows as u64).saturating_mul(edges as u64 + 1);
    Ok(useful_threads(t, rows.div_ceil(CHUNK), work))
}

/// Rows `r0 .. r0 + len` of `z` (rows x n) transposed into `zt` (n x CHUNK), so that
/// one edge's term for all rows of a chunk is one contiguous, vectorised pass; the rows
/// past `len` are zero.
fn transpose_in(z: &[f64], n: usize, r0: usize, len: usize, zt: &mut [f64]) {
    for r in 0..len {
        for (i, &v) in z[(r0 + r) * n..(r0 + r + 1) * n].iter().enumerate() {
            zt[i * CHUNK + r] = v;
        }
    }
    for i in 0..n {
        zt[i * CHUNK + len..(i + 1) * CHUNK].fill(0.0);
    }
}

crate::multiversion! {
    fn chunk_energies(model: &Pairwise<'_>, zt: &[f64], out: &mut [f64]) = chunk_energies_impl;
}
crate::multiversion! {
    fn chunk_coupling_grad(model: &Pairwise<'_>, zt: &[f64], g: &[f64], gj: &mut [f64]) = chunk_coupling_grad_impl;
}
crate::multiversion! {
    fn chunk_z_grad(model: &Pairwise<'_>, zt: &[f64], g: &[f64], ot: &mut [f64]) = chunk_z_grad_impl;
}

/// E of every row of a transposed chunk: per row, [`Pairwise::row_energy`]'s terms in its
/// order (the same bits), across the rows at once.
#[inline(always)]
fn chunk_energies_impl(model: &Pairwise<'_>, zt: &[f64], out: &mut [f64]) {
    let mut e = [0.0f64; CHUNK];
    for (i, &hi) in model.h.iter().enumerate() {
        let zi = &zt[i * CHUNK..(i + 1) * CHUNK];
        for r in 0..CHUNK {
            e[r] -= hi * zi[r];
        }
    }
    let mut c = [0.0f64; CHUNK];
    for ((&x, &y), &w) in model.a.iter().zip(model.b).zip(model.j) {
        let za = &zt[x as usize * CHUNK..(x as usize + 1) * CHUNK];
        let zb = &zt[y as usize * CHUNK..(y as usize + 1) * CHUNK];
        for r in 0..CHUNK {
            c[r] += w * za[r] * zb[r];
        }
    }
    for (r, o) in out.iter_mut().enumerate() {
        *o = e[r] - c[r];
    }
}

/// d/dJ_e of sum_r g_r E(z_r) over one chunk: -sum_r (g_r z_ra) z_rb, one dot product
/// over two contiguous rows of the transposed chunk per edge, summed in 8 interleaved partial
/// sums (rows r = q mod 8) added in a fixed order: the same bits on any thread count (the
/// chunks are fixed), not the per-row loop's order (rounding apart, its value).
#[inline(always)]
fn chunk_coupling_grad_impl(model: &Pairwise<'_>, zt: &[f64], g: &[f64], gj: &mut [f64]) {
    const W: usize = 8;
    let mut gg = [0.0f64; CHUNK]; // rows past the chunk's end: zero here and in zt
    gg[..g.len()].copy_from_slice(g);
    for ((&x, &y), out) in model.a.iter().zip(model.b).zip(gj.iter_mut()) {
        let za = &zt[x as usize * CHUNK..(x as usize + 1) * CHUNK];
        let zb = &zt[y as usize * CHUNK..(y as usize + 1) * CHUNK];
        let mut acc = [0.0f64; W];
        for blk in 0..CHUNK / W {
            for q in 0..W {
                let r = blk * W + q;
                acc[q] += gg[r] * za[r] * zb[r];
            }
        }
        let s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        *out = -s;
    }
}

/// d/dz of sum_r g_r E(z_r) over one chunk, transposed (n x CHUNK): per row, the field
/// term and then every edge's two terms in edge order (the per-row form's order).
#[inline(always)]
fn chunk_z_grad_impl(model: &Pairwise<'_>, zt: &[f64], g: &[f64], ot: &mut [f64]) {
    let mut gg = [0.0f64; CHUNK];
    gg[..g.len()].copy_from_slice(g);
    for (i, &hi) in model.h.iter().enumerate() {
        let o = &mut ot[i * CHUNK..(i + 1) * CHUNK];
        for r in 0..CHUNK {
            o[r] = -gg[r] * hi;
        }
    }
    let mut wj = [0.0f64; CHUNK];
    for ((&x, &y), &jv) in model.a.iter().zip(model.b).zip(model.j) {
        let (x, y) = (x as usize * CHUNK, y as usize * CHUNK);
        for r in 0..CHUNK {
            wj[r] = gg[r] * jv;
        }
        for r in 0..CHUNK {
            ot[x + r] -= wj[r] * zt[y + r];
        }
        for r in 0..CHUNK {
            ot[y + r] -= wj[r] * zt[x + r];
        }
    }
}

/// E(z) for every row of `z` (rows x n, row-major).
pub fn energies(
    model: &Pairwise<'_>,
    z: &[f64],
    num_threads: Option<usize>,
    cancel: &AtomicBool,
) -> Result<Vec<f64>> {
    model.check()?;
    let rows = check_rows(z, model.n)?;
    let n = model.n;
    let mut out = vec![0.0f64; rows];
    let threads = threads_for(num_threads, rows, model.j.len())?;
    let chunk = |(c, o): (usize, &mut [f64])| {
        check_cancel(cancel)?;
        let mut zt = vec![0.0f64; n * CHUNK];
        transpose_in(z, n, c * CHUNK, o.len(), &mut zt);
        chunk_energies(model, &zt, o);
        Ok::<(), CoreError>(())
    };
    // one thread: on the calling thread (a parallel iterator outside a pool would go to
    // rayon's global pool, all cores)
    with_exact_threads(threads, || {
        if threads <= 1 {
            out.chunks_mut(CHUNK).enumerate().try_for_each(chunk)
        } else {
            out.par_chunks_mut(CHUNK).enumerate().try_for_each(chunk)
        }
    })??;
    Ok(out)
}

/// Gradients of `sum_r g[r] E(z_r)`: with respect to h (n), J (edges) and, when
/// `want_z`, z (rows x n).
pub struct EnergyGrad {
    pub h: Vec<f64>,
    pub j: Vec<f64>,
    pub z: Option<Vec<f64>>,
}

/// See [`EnergyGrad`].
pub fn energy_grad(
    model: &Pairwise<'_>,
    z: &[f64],
    g: &[f64],
    want_z: bool,
    num_threads: Option<usize>,
    cancel: &AtomicBool,
) -> Result<EnergyGrad> {
    model.check()?;
    let rows = check_rows(z, model.n)?;
    ensure(g.len() == rows, "grad", || {
        format!("expected {rows} upstream gradients, got {}", g.len())
    })?;
    let n = model.n;
    let m = model.j.len();
    let chunks = rows.div_ceil(CHUNK);
    let threads = threads_for(num_threads, rows, m)?;
    let mut zgrad = if want_z {
        vec![0.0f64; rows * n]
    } else {
        Vec::new()
    };
    // per-chunk partial sums of the parameter gradients, summed in chunk order below
    let parts: Vec<(Vec<f64>, Vec<f64>)> = with_exact_threads(threads, || {
        let zg_chunks: Vec<Option<&mut [f64]>> = if want_z {
            zgrad.chunks_mut(CHUNK * n).map(Some).collect()
        } else {
            (0..chunks).map(|_| None).collect()
        };
        let part = |(c, mut zg): (usize, Option<&mut [f64]>)| {
            check_cancel(cancel)?;
            let mut gh = vec![0.0f64; n];
            let mut gj = vec![0.0f64; m];
            let end = ((c + 1) * CHUNK).min(rows);
            let len = end - c * CHUNK;
            let gc = &g[c * CHUNK..end];
            for (r, &w) in gc.iter().enumerate() {
                let zr = &z[(c * CHUNK + r) * n..(c * CHUNK + r + 1) * n];
                for (a, zi) in gh.iter_mut().zip(zr) {
                    *a -= w * zi;
                }
            }
            let mut zt = vec![0.0f64; n * CHUNK];
            transpose_in(z, n, c * CHUNK, len, &mut zt);
            chunk_coupling_grad(model, &zt, gc, &mut gj);
            if let Some(zg) = zg.as_deref_mut() {
                let mut ot = vec![0.0f64; n * CHUNK];
                chunk_z_grad(model, &zt, gc, &mut ot);
                for r in 0..len {
                    let o = &mut zg[r * n..(r + 1) * n];
                    for (i, oi) in o.iter_mut().enumerate() {
                        *oi = ot[i * CHUNK + r];
                    }
                }
            }
            Ok((gh, gj))
        };
        if threads <= 1 {
            zg_chunks
                .into_iter()
                .enumerate()
                .map(part)
                .collect::<Result<Vec<_>>>()
        } else {
            zg_chunks
                .into_par_iter()
                .enumerate()
                .map(part)
                .collect::<Result<Vec<_>>>()
        }
    })??;
    let mut h = vec![0.0f64; n];
    let mut j = vec![0.0f64; m];
    for (gh, gj) in parts {
        for (a, b) in h.iter_mut().zip(&gh) {
            *a += b;
        }
        for (a, b) in j.iter_mut().zip(&gj) {
            *a += b;
        }
    }
    Ok(EnergyGrad {
        h,
        j,
        z: if want_z { Some(zgrad) } else { None },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn energy_and_gradients_match_direct_sums() {
        let n = 5;
        let h = [0.3, -0.2, 0.5, 0.1, -0.4];
        let a = [0u32, 0, 1, 2, 3];
        let b = [1u32, 2, 3, 4, 4];
        let j = [0.7, -0.3, 0.2, 0.9, -0.5];
        let model = Pairwise {
            n,
            h: &h,
            a: &a,
            b: &b,
            j: &j,
        };
        let rows = 200;
        let z: Vec<f64> = (0..rows * n)
            .map(|k| {
                if (k * 7919 + k / 3) % 5 < 2 {
                    -1.0
                } else {
                    1.0
                }
            })
            .collect();
        let no = AtomicBool::new(false);
        let e = energies(&model, &z, Some(2), &no).unwrap();
        for r in 0..rows {
            let zr = &z[r * n..(r + 1) * n];
            let mut want = 0.0;
            for i in 0..n {
                want -= h[i] * zr[i];
            }
            for k in 0..5 {
                want -= j[k] * zr[a[k] as usize] * zr[b[k] as usize];
            }
            assert!((e[r] - want).abs() < 1e-12);
        }
        let g: Vec<f64> = (0..rows).map(|r| (r as f64).sin()).collect();
        let one = energy_grad(&model, &z, &g, true, Some(1), &no).unwrap();
        let two = energy_grad(&model, &z, &g, true, Some(2), &no).unwrap();
        assert_eq!(one.h, two.h);
        assert_eq!(one.j, two.j);
        assert_eq!(one.z, two.z);
        // finite differences in h and J
        let f = |hh: &[f64], jj: &[f64]| -> f64 {
            let m = Pairwise {
                n,
                h: hh,
                a: &a,
                b: &b,
                j: jj,
            };
            energies(&m, &z, Some(1), &no)
                .unwrap()
                .iter()
                .zip(&g)
                .map(|(e, w)| e * w)
                .sum()
        };
        for i in 0..n {
            let mut up = h;
            up[i] += 1e-6;
            let mut dn = h;
            dn[i] -= 1e-6;
            assert!(((f(&up, &j) - f(&dn, &j)) / 2e-6 - one.h[i]).abs() < 1e-6);
        }
        for k in 0..5 {
            let mut up = j;
            up[k] += 1e-6;
            let mut dn = j;
            dn[k] -= 1e-6;
            assert!(((f(&h, &up) - f(&h, &dn)) / 2e-6 - one.j[k]).abs() < 1e-6);
        }
        assert!(energies(&model, &z[..7], None, &no).is_err());
        let bad = Pairwise {
            n,
            h: &h,
            a: &[0],
            b: &[0],
            j: &[1.0],
        };
        assert!(energies(&bad, &z, None, &no).is_err());
    }

    #[test]
    fn chunked_kernels_give_the_per_row_forms_bits() {
        // the plain per-row loops (the layout before the chunk kernels), bit for bit for the
        // energies and the z gradient, on a model with a partial last chunk
        let (n, rows) = (37usize, 2 * CHUNK + 11);
        let mut s = 12345u64;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let h: Vec<f64> = (0..n).map(|_| next() - 0.5).collect();
        let (mut a, mut b, mut j) = (Vec::new(), Vec::new(), Vec::new());
        for x in 0..n as u32 {
            for y in x + 1..n as u32 {
                if next() < 0.3 {
                    a.push(x);
                    b.push(y);
                    j.push(next() - 0.5);
                }
            }
        }
        let model = Pairwise {
            n,
            h: &h,
            a: &a,
            b: &b,
            j: &j,
        };
        let z: Vec<f64> = (0..rows * n).map(|_| 2.0 * next() - 1.0).collect();
        let g: Vec<f64> = (0..rows).map(|_| next() - 0.3).collect();
        let no = AtomicBool::new(false);
        let e = energies(&model, &z, Some(1), &no).unwrap();
        let gr = energy_grad(&model, &z, &g, true, Some(1), &no).unwrap();
        let mut gj_want = vec![0.0f64; j.len()];
        let mut gj_chunk = vec![0.0f64; j.len()];
        for r in 0..rows {
            let zr = &z[r * n..(r + 1) * n];
            assert_eq!(e[r].to_bits(), model.row_energy(zr).to_bits(), "row {r}");
            let w = g[r];
            let mut o: Vec<f64> = h.iter().map(|hi| -w * hi).collect();
            for (k, ((&x, &y), &jv)) in a.iter().zip(&b).zip(&j).enumerate() {
                o[x as usize] -= w * jv * zr[y as usize];
                o[y as usize] -= w * jv * zr[x as usize];
                gj_chunk[k] -= w * zr[x as usize] * zr[y as usize];
            }
            let got = &gr.z.as_ref().unwrap()[r * n..(r + 1) * n];
            assert!(
                o.iter().zip(got).all(|(p, q)| p.to_bits() == q.to_bits()),
                "z grad row {r}"
            );
            if (r + 1) % CHUNK == 0 || r + 1 == rows {
                for (w, c) in gj_want.iter_mut().zip(&mut gj_chunk) {
                    *w += *c;
                    *c = 0.0;
                }
            }
        }
        // the coupling gradient sums rows in 8 interleaved partial sums: equal up to rounding
        for (p, q) in gr.j.iter().zip(&gj_want) {
            assert!((p - q).abs() <= 1e-12 * (1.0 + q.abs()), "{p} vs {q}");
        }
    }
}
