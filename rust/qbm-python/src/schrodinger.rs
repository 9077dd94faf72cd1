//! Schrödinger annealing entry points (`qbm_core::schrodinger`).

use crate::detach::{run_detached, work};
use crate::error::{to_py, value_error};
use crate::ising::IsingCsr;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use qbm_core::schrodinger::{self, Diagonal};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<TransverseIsing>()?;
    m.add_function(wrap_pyfunction!(draw_states, m)?)?;
    Ok(())
}

fn planes(state: &PyReadonlyArray2<'_, f64>, d: usize) -> PyResult<(Vec<f64>, Vec<f64>)> {
    let a = state.as_array();
    if a.dim() != (2, d) {
        return Err(value_error(
            "state",
            format!(
                "expected shape (2, {d}) (real and imaginary planes), got {:?}",
                a.shape()
            ),
        ));
    }
    Ok((a.row(0).to_vec(), a.row(1).to_vec()))
}

/// The transverse-field Ising Hamiltonian H = -a/2 sum_q X_q + b/2 E(z) of a problem with
/// diagonal E (from an `IsingCsr`, or `energies` (2^n,) given directly): the state-vector
/// steps of a Schrödinger anneal and H's product with a real vector. Basis index: qubit
/// q is bit 2^(n-1-q), bit 0 = spin +1.
#[pyclass(module = "qbm._core", frozen)]
pub struct TransverseIsing {
    inner: Diagonal,
}

#[pymethods]
impl TransverseIsing {
    #[new]
    #[pyo3(signature = (model=None, *, energies=None))]
    fn new(
        py: Python<'_>,
        model: Option<&IsingCsr>,
        energies: Option<PyReadonlyArray1<'_, f64>>,
    ) -> PyResult<Self> {
        let inner = match (model, energies) {
            (Some(m), None) => {
                let m = m.inner.clone();
                let w = work(&[
                    1usize << m.num_variables().min(40),
                    m.nnz() / 2 + m.num_variables(),
                ]);
                run_detached(py, w, move |c| Diagonal::from_model(&m, c))?
            }
            (None, Some(e)) => Diagonal::from_energies(e.as_array().to_vec()).map_err(to_py)?,
            _ => return Err(value_error("model", "give a model or energies=, not both")),
        };
        Ok(Self { inner })
    }

    /// Number of qubits.
    #[getter]
    fn n(&self) -> usize {
        self.inner.n()
    }

    /// E(z) for every basis state (2^n,).
    fn energies<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.inner.energies().to_vec().into_pyarray(py)
    }

    /// Apply phase[0], mix[0], phase[1], ..., mix[m-1], phase[m] to `state` (2, 2^n):
    /// amplitude z times exp(-i phase[k] E(z)), then RX(mix[k]) on every qubit. Returns the
    /// new state (2, 2^n); bit-identical on any number of threads.
    #[pyo3(signature = (state, phase, mix, *, num_threads=None))]
    fn evolve<'py>(
        &self,
        py: Python<'py>,
        state: PyReadonlyArray2<'py, f64>,
        phase: PyReadonlyArray1<'py, f64>,
        mix: PyReadonlyArray1<'py, f64>,
        num_threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let d = 1usize << self.inner.n();
        let (mut re, mut im) = planes(&state, d)?;
        let ph = phase.as_array().to_vec();
        let mx = mix.as_array().to_vec();
        let w = work(&[d, self.inner.n(), mx.len().max(1)]);
        let diag = &self.inner;
        let (re, im) = run_detached(py, w, move |c| {
            diag.evolve(&mut re, &mut im, &ph, &mx, num_threads, c)?;
            Ok((re, im))
        })?;
        let mut out = re;
        out.extend_from_slice(&im);
        out.into_pyarray(py).reshape([2, d])
    }

    /// y = H x = -a/2 sum_q X_q x + b/2 E x for a real vector x (2^n,).
    #[pyo3(signature = (a, b, x, *, num_threads=None))]
    fn matvec<'py>(
        &self,
        py: Python<'py>,
        a: f64,
        b: f64,
        x: PyReadonlyArray1<'py, f64>,
        num_threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let xv = x.as_array().to_vec();
        let diag = &self.inner;
        let y = py
            .detach(|| diag.matvec(a, b, &xv, num_threads))
            .map_err(to_py)?;
        Ok(y.into_pyarray(py))
    }

    fn __repr__(&self) -> String {
        format!("TransverseIsing(n={})", self.inner.n())
    }
}

/// `num_reads` basis-state indices (int64) drawn from |psi|^2 of `state` (2, 2^n), read r
/// from stream (seed, index0 + r): bit-identical whatever the threads.
#[pyfunction]
#[pyo3(signature = (state, num_reads, seed, index0=0))]
fn draw_states<'py>(
    py: Python<'py>,
    state: PyReadonlyArray2<'py, f64>,
    num_reads: usize,
    seed: u64,
    index0: u64,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let a = state.as_array();
    if a.nrows() != 2 {
        return Err(value_error(
            "state",
            format!("expected shape (2, 2^n), got {:?}", a.shape()),
        ));
    }
    let (re, im) = (a.row(0).to_vec(), a.row(1).to_vec());
    let x = py
        .detach(|| schrodinger::draw_states(&re, &im, num_reads, seed, index0))
        .map_err(to_py)?;
    Ok(x.into_iter()
        .map(|v| v as i64)
        .collect::<Vec<i64>>()
        .into_pyarray(py))
}
