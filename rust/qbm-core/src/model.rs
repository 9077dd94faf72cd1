//! Ising model in CSR form.
//!
//! E(s) = sum_i h_i s_i + sum_{i<j} J_ij s_i s_j  (dimod's convention), with J stored
//! as a symmetric CSR matrix with zero diagonal (both (i, j) and (j, i) are present).

use crate::error::{ensure, CoreError, Result};
use rayon::prelude::*;

/// An Ising model with fields `h` and symmetric sparse couplings `J`.
#[derive(Clone, Debug)]
pub struct IsingModel {
    n: usize,
    h: Vec<f64>,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    data: Vec<f64>,
    // f32 copies used by the sampling kernels.
    h32: Vec<f32>,
    data32: Vec<f32>,
}

impl IsingModel {
    /// Build from fields and a CSR matrix (row pointers, column indices, values).
    ///
    /// Rows must have strictly increasing column indices, no diagonal entries, finite
    /// values, and the matrix must be symmetric.
    pub fn from_csr(
        h: Vec<f64>,
        indptr: Vec<usize>,
        indices: Vec<u32>,
        data: Vec<f64>,
    ) -> Result<Self> {
        let n = h.len();
        ensure(n > 0, "h", || {
            "the model must have at least one variable".into()
        })?;
        ensure(h.iter().all(|x| x.is_finite()), "h", || {
            "fields must be finite (found NaN or inf)".into()
        })?;
        ensure(indptr.len() == n + 1, "J", || {
            format!(
                "CSR indptr has length {} but the model has {} variables",
                indptr.len(),
                n
            )
        })?;
        ensure(
            indptr[0] == 0 && indptr[n] == indices.len() && indices.len() == data.len(),
            "J",
            || "CSR arrays are inconsistent (indptr, indices and data lengths)".into(),
        )?;
        ensure(data.iter().all(|x| x.is_finite()), "J", || {
            "couplings must be finite (found NaN or inf)".into()
        })?;
        for i in 0..n {
            let (a, b) = (indptr[i], indptr[i + 1]);
            ensure(a <= b, "J", || "CSR indptr must be non-decreasing".into())?;
            let row = &indices[a..b];
            for (k, &j) in row.iter().enumerate() {
                ensure((j as usize) < n, "J", || {
                    format!("column index {j} out of range for {n} variables")
                })?;
                ensure(j as usize != i, "J", || {
                    format!("diagonal coupling J[{i},{i}] must be zero (a spin does not couple to itself)")
                })?;
                if k > 0 {
                    ensure(row[k - 1] < j, "J", || {
                        format!("row {i} has unsorted or duplicate column indices")
                    })?;
                }
            }
        }
        // Symmetry: every (i, j, v) has a matching (j, i, v).
        for i in 0..n {
            for k in indptr[i]..indptr[i + 1] {
                let j = indices[k] as usize;
                let row = &indices[indptr[j]..indptr[j + 1]];
                let v = data[k];
                match row.binary_search(&(i as u32)) {
                    Ok(p) => {
                        let w = data[indptr[j] + p];
                        let tol = 1e-12 * v.abs().max(w.abs());
                        ensure((v - w).abs() <= tol, "J", || {
                            format!("couplings must be symmetric: J[{i},{j}] = {v} but J[{j},{i}] = {w}")
                        })?;
                    }
                    Err(_) => {
                        return Err(CoreError::param(
                            "J",
                            format!("couplings must be symmetric: J[{i},{j}] = {v} but J[{j},{i}] is missing"),
                        ))
                    }
                }
            }
        }
        // fallible: a model near the memory limit is refused, never aborts the process
        let h32 = crate::memory::try_collect(n, h.iter().map(|&x| x as f32), "h")?;
        let data32 = crate::memory::try_collect(data.len(), data.iter().map(|&x| x as f32), "J")?;
        Ok(Self {
            n,
            h,
            indptr,
            indices,
            data,
            h32,
            data32,
        })
    }

    /// Number of spins.
    pub fn num_variables(&self) -> usize {
        self.n
    }
    /// Number of stored couplings (each edge counted twice).
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }
    pub fn h(&self) -> &[f64] {
        &self.h
    }
    pub fn indptr(&self) -> &[usize] {
        &self.indptr
    }
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }
    pub fn data(&self) -> &[f64] {
        &self.data
    }
    pub(crate) fn h32(&self) -> &[f32] {
        &self.h32
    }
    pub(crate) fn data32(&self) -> &[f32] {
        &self.data32
    }

    /// Energy of one configuration of +-1 spins (no validation; see [`Self::energies`]).
    pub fn energy_of(&self, s: &[i8]) -> f64 {
        let mut e = 0.0;
        for i in 0..self.n {
            let si = s[i] as f64;
            let mut f = 0.0;
            for k in self.indptr[i]..self.indptr[i + 1] {
                f += self.data[k] * s[self.indices[k] as usize] as f64;
            }
            e += si * (self.h[i] + 0.5 * f);
        }
        e
    }

    /// Energies of a batch of configurations stored row-major in `spins` (len N * n).
    pub fn energies(&self, spins: &[i8]) -> Result<Vec<f64>> {
        validate_spins(spins, self.n, "spins")?;
        Ok(spins
            .par_chunks(self.n)
            .map(|s| self.energy_of(s))
            .collect())
    }

    /// Local field f_i = h_i + sum_j J_ij s_j of spin i in configuration `s`.
    pub fn local_field(&self, s: &[i8], i: usize) -> f64 {
        let mut f = self.h[i];
        for k in self.indptr[i]..self.indptr[i + 1] {
            f += self.data[k] * s[self.indices[k] as usize] as f64;
        }
        f
    }
}

/// Check that `spins` is a whole number of rows of length `n` with entries in {-1, +1}.
pub fn validate_spins(spins: &[i8], n: usize, name: &str) -> Result<()> {
    ensure(n > 0 && spins.len().is_multiple_of(n), name, || {
        format!("expected rows of {n} spins, got {} values", spins.len())
    })?;
    // a fold without short-circuit vectorises (128 x 2176 initial states per training step)
    let ok = spins
        .iter()
        .fold(true, |ok, &s| ok & ((s == 1) | (s == -1)));
    ensure(ok, name, || "spins must be -1 or +1".into())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rng::Xoshiro256pp;

    /// A random model with dense-ish couplings, for tests.
    pub fn random_model(n: usize, density: f64, seed: u64) -> IsingModel {
        let mut r = Xoshiro256pp::from_key(seed);
        let mut dense = vec![0.0; n * n];
        for i in 0..n {
            for j in (i + 1)..n {
                if r.next_f64() < density {
                    let v = 2.0 * r.next_f64() - 1.0;
                    dense[i * n + j] = v;
                    dense[j * n + i] = v;
                }
            }
        }
        let h: Vec<f64> = (0..n).map(|_| r.next_f64() - 0.5).collect();
        from_dense(h, &dense)
    }

    pub fn from_dense(h: Vec<f64>, dense: &[f64]) -> IsingModel {
        let n = h.len();
        let mut indptr = vec![0];
        let mut indices = vec![];
        let mut data = vec![];
        for i in 0..n {
            for j in 0..n {
                if dense[i * n + j] != 0.0 {
                    indices.push(j as u32);
                    data.push(dense[i * n + j]);
                }
            }
            indptr.push(indices.len());
        }
        IsingModel::from_csr(h, indptr, indices, data).unwrap()
    }

    #[test]
    fn energy_matches_dense() {
        let n = 7;
        let m = random_model(n, 0.6, 11);
        let mut r = Xoshiro256pp::from_key(5);
        for _ in 0..20 {
            let s: Vec<i8> = (0..n)
                .map(|_| if r.next_u64() & 1 == 1 { 1 } else { -1 })
                .collect();
            let mut want = 0.0;
            for i in 0..n {
                want += m.h()[i] * s[i] as f64;
            }
            for i in 0..n {
                for k in m.indptr()[i]..m.indptr()[i + 1] {
                    let j = m.indices()[k] as usize;
                    if i < j {
                        want += m.data()[k] * (s[i] * s[j]) as f64;
                    }
                }
            }
            assert!((m.energy_of(&s) - want).abs() < 1e-12);
        }
    }

    #[test]
    fn rejects_bad_input() {
        let e =
            IsingModel::from_csr(vec![0.0, 0.0], vec![0, 1, 1], vec![1], vec![1.0]).unwrap_err();
        assert!(e.to_string().contains("symmetric"), "{e}");
        let e =
            IsingModel::from_csr(vec![0.0, 0.0], vec![0, 1, 1], vec![0], vec![1.0]).unwrap_err();
        assert!(e.to_string().contains("diagonal"), "{e}");
        let e = IsingModel::from_csr(vec![f64::NAN], vec![0, 0], vec![], vec![]).unwrap_err();
        assert!(e.to_string().starts_with("h:"), "{e}");
    }
}
