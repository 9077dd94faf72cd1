//! Batched energies of the Boltzmann-machine prior and their gradients (`qbm_core::energy`).

use crate::detach::{run_detached, work};
use crate::error::value_error;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use qbm_core::energy::{self, Pairwise};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(pair_energies, m)?)?;
    m.add_function(wrap_pyfunction!(pair_energy_grad, m)?)?;
    Ok(())
}

struct Owned {
    n: usize,
    h: Vec<f64>,
    a: Vec<u32>,
    b: Vec<u32>,
    j: Vec<f64>,
}

impl Owned {
    fn view(&self) -> Pairwise<'_> {
        Pairwise {
            n: self.n,
            h: &self.h,
            a: &self.a,
            b: &self.b,
            j: &self.j,
        }
    }
}

fn owned(
    h: &PyReadonlyArray1<'_, f64>,
    edges: &PyReadonlyArray2<'_, i64>,
    j: &PyReadonlyArray1<'_, f64>,
) -> PyResult<Owned> {
    let e = edges.as_array();
    if e.ncols() != 2 && e.nrows() > 0 {
        return Err(value_error(
            "edges",
            format!("expected shape (E, 2), got {:?}", e.shape()),
        ));
    }
    // checked once over the array's values, then converted by plain casts (every training
    // step passes the edges again: at 20k Zephyr edges a per-element checked collect cost
    // more than the energies); a non-contiguous array is copied to row-major first
    let e = e.as_standard_layout();
    let flat = e.as_slice().expect("standard layout is contiguous");
    if let Some(v) = flat.iter().find(|&&v| v < 0 || v > u32::MAX as i64) {
        return Err(value_error("edges", format!("unit index {v} out of range")));
    }
    let a: Vec<u32> = flat.iter().step_by(2).map(|&v| v as u32).collect();
    let b: Vec<u32> = flat.iter().skip(1).step_by(2).map(|&v| v as u32).collect();
    let hv = h.as_array().to_vec();
    Ok(Owned {
        n: hv.len(),
        h: hv,
        a,
        b,
        j: j.as_array().to_vec(),
    })
}

/// E(z) = -h . z - sum_e J_e z_a z_b for every row of z (rows, n) float64; edges (E, 2).
#[pyfunction]
#[pyo3(signature = (z, h, edges, j, *, num_threads=None))]
fn pair_energies<'py>(
    py: Python<'py>,
    z: PyReadonlyArray2<'py, f64>,
    h: PyReadonlyArray1<'py, f64>,
    edges: PyReadonlyArray2<'py, i64>,
    j: PyReadonlyArray1<'py, f64>,
    num_threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let m = owned(&h, &edges, &j)?;
    let zv: Vec<f64> = match z.as_slice() {
        Ok(flat) => flat.to_vec(),
        Err(_) => z.as_array().iter().copied().collect(),
    };
    let w = work(&[z.as_array().nrows(), m.j.len() + m.n]);
    let out = run_detached(py, w, move |c| {
        energy::energies(&m.view(), &zv, num_threads, c)
    })?;
    Ok(out.into_pyarray(py))
}

/// Gradients of sum_r g[r] E(z_r) with respect to h (n,), J (E,) and, when `want_z`,
/// z (rows, n); returns (grad_h, grad_J, grad_z or None).
#[pyfunction]
#[pyo3(signature = (z, h, edges, j, g, want_z=false, *, num_threads=None))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn pair_energy_grad<'py>(
    py: Python<'py>,
    z: PyReadonlyArray2<'py, f64>,
    h: PyReadonlyArray1<'py, f64>,
    edges: PyReadonlyArray2<'py, i64>,
    j: PyReadonlyArray1<'py, f64>,
    g: PyReadonlyArray1<'py, f64>,
    want_z: bool,
    num_threads: Option<usize>,
) -> PyResult<(
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
    Option<Bound<'py, PyArray2<f64>>>,
)> {
    let m = owned(&h, &edges, &j)?;
    let (rows, n) = z.as_array().dim();
    let zv: Vec<f64> = match z.as_slice() {
        Ok(flat) => flat.to_vec(),
        Err(_) => z.as_array().iter().copied().collect(),
    };
    let gv = g.as_array().to_vec();
    let w = work(&[rows, 3 * m.j.len() + m.n]);
    let r = run_detached(py, w, move |c| {
        energy::energy_grad(&m.view(), &zv, &gv, want_z, num_threads, c)
    })?;
    let gz = match r.z {
        Some(v) => Some(v.into_pyarray(py).reshape([rows, n])?),
        None => None,
    };
    Ok((r.h.into_pyarray(py), r.j.into_pyarray(py), gz))
}
