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

    #[inline]
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
    ensure(n > 0 && z.len() % n == 0, "z", || {
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
    with_exact_threads(threads, || {
        out.par_chunks_mut(CHUNK)
            .enumerate()
            .try_for_each(|(c, o)| {
                check_cancel(cancel)?;
                for (k, v) in o.iter_mut().enumerate() {
                    let r = c * CHUNK + k;
                    *v = model.row_energy(&z[r * n..(r + 1) * n]);
                }
                Ok::<(), CoreError>(())
            })
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
        zg_chunks
            .into_par_iter()
            .enumerate()
            .map(|(c, mut zg)| {
                check_cancel(cancel)?;
                let mut gh = vec![0.0f64; n];
                let mut gj = vec![0.0f64; m];
                let end = ((c + 1) * CHUNK).min(rows);
                for r in c * CHUNK..end {
                    let zr = &z[r * n..(r + 1) * n];
                    let w = g[r];
                    for (a, zi) in gh.iter_mut().zip(zr) {
                        *a -= w * zi;
                    }
                    for ((&x, &y), a) in model.a.iter().zip(model.b).zip(gj.iter_mut()) {
                        *a -= w * zr[x as usize] * zr[y as usize];
                    }
                    if let Some(zg) = zg.as_deref_mut() {
                        let o = &mut zg[(r - c * CHUNK) * n..(r - c * CHUNK + 1) * n];
                        for (oi, hi) in o.iter_mut().zip(model.h) {
                            *oi = -w * hi;
                        }
                        for ((&x, &y), &jv) in model.a.iter().zip(model.b).zip(model.j) {
                            o[x as usize] -= w * jv * zr[y as usize];
                            o[y as usize] -= w * jv * zr[x as usize];
                        }
                    }
                }
                Ok((gh, gj))
            })
            .collect::<Result<Vec<_>>>()
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
}
