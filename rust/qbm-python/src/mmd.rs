//! MMD entry points.

use crate::detach::run_detached;
use crate::error::value_error;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use qbm_core::mmd;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(hamming_histograms, m)?)?;
    m.add_function(wrap_pyfunction!(hamming_cross_histogram, m)?)?;
    m.add_function(wrap_pyfunction!(rbf_kernel_sums, m)?)?;
    Ok(())
}

fn packed(a: &PyReadonlyArray2<'_, u64>, name: &str) -> PyResult<(Vec<u64>, usize)> {
    let (_, w) = a.as_array().dim();
    let v = a
        .as_slice()
        .map_err(|_| value_error(name, "must be a C-contiguous uint64 array"))?
        .to_vec();
    Ok((v, w))
}

/// Both packed sets, with equal words per row.
fn packed_pair(
    x: &PyReadonlyArray2<'_, u64>,
    y: &PyReadonlyArray2<'_, u64>,
) -> PyResult<(Vec<u64>, Vec<u64>, usize)> {
    let (xv, wx) = packed(x, "x")?;
    let (yv, wy) = packed(y, "y")?;
    if wx != wy {
        return Err(value_error(
            "y",
            format!("has {wy} words per row but x has {wx}"),
        ));
    }
    Ok((xv, yv, wx))
}

/// Hamming-distance histograms of packed bitstrings x (N, words), y (M, words) uint64.
/// Returns (xx, yy, xy) uint64 arrays of length nbits + 1 (xx, yy over pairs i < j).
#[pyfunction]
#[pyo3(signature = (x, y, nbits, *, num_threads=None))]
#[allow(clippy::type_complexity)]
fn hamming_histograms<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, u64>,
    y: PyReadonlyArray2<'py, u64>,
    nbits: usize,
    num_threads: Option<usize>,
) -> PyResult<(
    Bound<'py, PyArray1<u64>>,
    Bound<'py, PyArray1<u64>>,
    Bound<'py, PyArray1<u64>>,
)> {
    let (xv, yv, wx) = packed_pair(&x, &y)?;
    let w = crate::detach::work(&[xv.len() + yv.len(), xv.len() + yv.len()]);
    let h = run_detached(py, w, move |c| {
        mmd::hamming_histograms(&xv, &yv, wx, nbits, num_threads, c)
    })?;
    Ok((
        h.xx.into_pyarray(py),
        h.yy.into_pyarray(py),
        h.xy.into_pyarray(py),
    ))
}

/// Cross histogram only (all pairs (i, j)), length nbits + 1.
#[pyfunction]
#[pyo3(signature = (x, y, nbits, *, num_threads=None))]
fn hamming_cross_histogram<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, u64>,
    y: PyReadonlyArray2<'py, u64>,
    nbits: usize,
    num_threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray1<u64>>> {
    let (xv, yv, wx) = packed_pair(&x, &y)?;
    let w = crate::detach::work(&[xv.len(), yv.len()]);
    let h = run_detached(py, w, move |c| {
        mmd::hamming_cross_histogram(&xv, &yv, wx, nbits, num_threads, c)
    })?;
    Ok(h.into_pyarray(py))
}

/// RBF kernel sums for real vectors x (N, d), y (M, d) float64 and bandwidths (S,).
/// Returns (S, 3): sum_{i<j} k(x_i, x_j), sum_{i<j} k(y_i, y_j), sum_{i,j} k(x_i, y_j).
#[pyfunction]
#[pyo3(signature = (x, y, sigmas, *, num_threads=None))]
fn rbf_kernel_sums<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
    y: PyReadonlyArray2<'py, f64>,
    sigmas: PyReadonlyArray1<'py, f64>,
    num_threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let (_, d) = x.as_array().dim();
    let (_, dy) = y.as_array().dim();
    if d != dy {
        return Err(value_error(
            "y",
            format!("dimension {dy} differs from x's {d}"),
        ));
    }
    let xv: Vec<f64> = x.as_array().iter().copied().collect();
    let yv: Vec<f64> = y.as_array().iter().copied().collect();
    let s = sigmas.as_array().to_vec();
    let k = s.len();
    let w = crate::detach::work(&[xv.len() + yv.len(), xv.len() + yv.len(), k.max(1)]);
    let out = run_detached(py, w, move |c| {
        mmd::rbf_kernel_sums(&xv, &yv, d, &s, num_threads, c)
    })?;
    let flat: Vec<f64> = out.into_iter().flat_map(|(a, b, c)| [a, b, c]).collect();
    flat.into_pyarray(py).reshape([k, 3])
}
