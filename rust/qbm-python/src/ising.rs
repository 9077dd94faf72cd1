//! The CSR Ising model as a Python object.

use crate::error::{to_py, value_error};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1, PyReadonlyArray2, ToPyArray};
use pyo3::prelude::*;
use qbm_core::IsingModel;
use std::sync::Arc;

/// An Ising model E(s) = sum_i h_i s_i + sum_{i<j} J_ij s_i s_j held by the core in CSR
/// form. Built by `qbm.IsingModel`; validates finiteness, symmetry and zero diagonal.
#[pyclass(frozen, module = "qbm._core")]
pub struct IsingCsr {
    pub inner: Arc<IsingModel>,
}

pub fn slice_i8<'a>(a: &'a PyReadonlyArray2<'_, i8>, name: &str) -> PyResult<&'a [i8]> {
    a.as_slice()
        .map_err(|_| value_error(name, "must be a C-contiguous int8 array"))
}

#[pymethods]
impl IsingCsr {
    /// h: (n,) float64; indptr: (n+1,) int64; indices: (nnz,) int64; data: (nnz,) float64.
    #[new]
    fn new(
        h: PyReadonlyArray1<'_, f64>,
        indptr: PyReadonlyArray1<'_, i64>,
        indices: PyReadonlyArray1<'_, i64>,
        data: PyReadonlyArray1<'_, f64>,
    ) -> PyResult<Self> {
        // checked before any copy: an allocation failure in Rust aborts the process
        qbm_core::memory::check_model(
            h.len().unwrap_or(0),
            data.len().unwrap_or(0).max(indices.len().unwrap_or(0)),
        )
        .map_err(to_py)?;
        let h = h.as_array().to_vec();
        let n = h.len();
        let indptr: Vec<usize> = indptr
            .as_array()
            .iter()
            .map(|&x| usize::try_from(x).map_err(|_| value_error("J", "negative CSR indptr")))
            .collect::<PyResult<_>>()?;
        let indices: Vec<u32> = indices
            .as_array()
            .iter()
            .map(|&x| {
                u32::try_from(x)
                    .ok()
                    .filter(|&v| (v as usize) < n)
                    .ok_or_else(|| {
                        value_error(
                            "J",
                            format!("column index {x} out of range for {n} variables"),
                        )
                    })
            })
            .collect::<PyResult<_>>()?;
        let data = data.as_array().to_vec();
        let inner = IsingModel::from_csr(h, indptr, indices, data).map_err(to_py)?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Number of spins n.
    #[getter]
    fn num_variables(&self) -> usize {
        self.inner.num_variables()
    }

    /// Number of stored couplings (each edge twice).
    #[getter]
    fn nnz(&self) -> usize {
        self.inner.nnz()
    }

    /// Fields h, (n,) float64 (a copy).
    #[getter]
    fn h<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.inner.h().to_pyarray(py)
    }

    /// CSR arrays (indptr int64, indices int64, data float64), copies.
    #[allow(clippy::type_complexity)]
    fn csr<'py>(
        &self,
        py: Python<'py>,
    ) -> (
        Bound<'py, PyArray1<i64>>,
        Bound<'py, PyArray1<i64>>,
        Bound<'py, PyArray1<f64>>,
    ) {
        let ip: Vec<i64> = self.inner.indptr().iter().map(|&x| x as i64).collect();
        let ix: Vec<i64> = self.inner.indices().iter().map(|&x| x as i64).collect();
        (
            ip.into_pyarray(py),
            ix.into_pyarray(py),
            self.inner.data().to_pyarray(py),
        )
    }

    /// Energies of a batch of +-1 spins, (N, n) int8 -> (N,) float64.
    fn energies<'py>(
        &self,
        py: Python<'py>,
        spins: PyReadonlyArray2<'py, i8>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let shape = spins.as_array().dim();
        let shape = [shape.0, shape.1];
        if shape[1] != self.inner.num_variables() {
            return Err(value_error(
                "spins",
                format!(
                    "expected shape (N, {}), got ({}, {})",
                    self.inner.num_variables(),
                    shape[0],
                    shape[1]
                ),
            ));
        }
        if shape[0] == 0 {
            return Ok(Vec::<f64>::new().into_pyarray(py));
        }
        let s = slice_i8(&spins, "spins")?.to_vec();
        let model = self.inner.clone();
        let w = crate::detach::work(&[s.len(), 1 + model.nnz() / model.num_variables().max(1)]);
        let e = crate::detach::run_detached(py, w, move |_| model.energies(&s))?;
        Ok(e.into_pyarray(py))
    }
}
