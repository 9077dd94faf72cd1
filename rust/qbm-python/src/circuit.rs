//! State-vector engine entry points (`qbm_core::circuit`).

use crate::detach::{run_detached, work};
use crate::error::{to_py, value_error};
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArray3, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyReadonlyArray3,
};
use pyo3::prelude::*;
use qbm_core::circuit::{self, Program};
use qbm_core::memory;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<CircuitProgram>()?;
    m.add_function(wrap_pyfunction!(sample_counts, m)?)?;
    Ok(())
}

fn flat3(a: &PyReadonlyArray3<'_, f64>, name: &str) -> PyResult<(Vec<f64>, usize, usize, usize)> {
    let (r, p, d) = a.as_array().dim();
    let v = match a.as_slice() {
        Ok(s) => s.to_vec(),
        Err(_) => a.as_array().iter().copied().collect(),
    };
    if p != 2 {
        return Err(value_error(
            name,
            format!(
                "expected shape (rows, 2, 2^n) (real and imaginary planes), got ({r}, {p}, {d})"
            ),
        ));
    }
    Ok((v, r, p, d))
}

/// A circuit compiled for the core: gate codes `kinds` (0 rx, 1 ry, 2 rz, 3 crx, 4 cry,
/// 5 crz, 6 cx, 7 cz, 8 mat), qubits `q0` (control of controlled gates) and `q1`
/// (target; ignored for one-qubit gates), `mats` (G, 8) the 2x2 matrices of `mat` gates
/// as (re00, im00, re01, im01, re10, im10, re11, im11). Every parameterised gate owns
/// one angle slot, in gate order. States are arrays (rows, 2, 2^n): real and imaginary
/// planes, qubit 0 the most significant index bit.
#[pyclass(module = "qbm._core", frozen)]
pub struct CircuitProgram {
    inner: Program,
}

impl CircuitProgram {
    /// The angle array (rows, slots) as a flat vector, its rows and slots; a wrong
    /// number of slots is an error naming `angles`.
    fn angle_rows(&self, angles: &PyReadonlyArray2<'_, f64>) -> PyResult<(Vec<f64>, usize, usize)> {
        let (rows, s) = angles.as_array().dim();
        if s != self.inner.num_slots() {
            return Err(value_error(
                "angles",
                format!(
                    "expected (rows, {}), got ({rows}, {s})",
                    self.inner.num_slots()
                ),
            ));
        }
        Ok((angles.as_array().iter().copied().collect(), rows, s))
    }

    /// The shared body of `states` and `states_f32`: angles and initial states checked
    /// and copied, `run` detached from the GIL, the result shaped (rows, 2, 2^n).
    fn run_states<'py, R, F>(
        &self,
        py: Python<'py>,
        angles: &PyReadonlyArray2<'py, f64>,
        initial: Option<PyReadonlyArray3<'py, f64>>,
        run: F,
    ) -> PyResult<Bound<'py, PyArray3<R>>>
    where
        R: numpy::Element + Send,
        F: FnOnce(
                &Program,
                &[f64],
                usize,
                Option<&[f64]>,
                &std::sync::atomic::AtomicBool,
            ) -> qbm_core::error::Result<Vec<R>>
            + Send,
    {
        let (av, rows, _) = self.angle_rows(angles)?;
        let init = match initial {
            Some(a) => Some(flat3(&a, "initial")?.0),
            None => None,
        };
        let d = self.inner.dim();
        let w = work(&[rows, d, self.inner.num_ops().max(1)]);
        let prog = &self.inner;
        let out = run_detached(py, w, move |c| run(prog, &av, rows, init.as_deref(), c))?;
        out.into_pyarray(py).reshape([rows, 2, d])
    }
}

#[pymethods]
impl CircuitProgram {
    #[new]
    fn new(
        n: usize,
        kinds: PyReadonlyArray1<'_, i64>,
        q0: PyReadonlyArray1<'_, i64>,
        q1: PyReadonlyArray1<'_, i64>,
        mats: PyReadonlyArray2<'_, f64>,
    ) -> PyResult<Self> {
        let m = mats.as_array();
        if m.ncols() != 8 && m.nrows() > 0 {
            return Err(value_error(
                "mats",
                format!("expected shape (G, 8), got {:?}", m.shape()),
            ));
        }
        let mv: Vec<[f64; 8]> = m
            .rows()
            .into_iter()
            .map(|r| {
                let mut a = [0.0; 8];
                for (i, v) in r.iter().enumerate().take(8) {
                    a[i] = *v;
                }
                a
            })
            .collect();
        let kv: Vec<i64> = kinds.as_array().to_vec();
        let a: Vec<i64> = q0.as_array().to_vec();
        let b: Vec<i64> = q1.as_array().to_vec();
        let inner = Program::from_codes(n, &kv, &a, &b, &mv).map_err(crate::error::to_py)?;
        Ok(Self { inner })
    }

    /// Number of qubits.
    #[getter]
    fn n(&self) -> usize {
        self.inner.n()
    }

    /// Number of angle slots (parameterised gates).
    #[getter]
    fn num_slots(&self) -> usize {
        self.inner.num_slots()
    }

    /// Number of gates.
    #[getter]
    fn num_ops(&self) -> usize {
        self.inner.num_ops()
    }

    /// Run the circuit for every row of `angles` (rows, slots) float64 from |0...0> or
    /// from `initial` (1 or rows states, (k, 2, 2^n)). Returns states (rows, 2, 2^n).
    #[pyo3(signature = (angles, initial=None, *, num_threads=None))]
    fn states<'py>(
        &self,
        py: Python<'py>,
        angles: PyReadonlyArray2<'py, f64>,
        initial: Option<PyReadonlyArray3<'py, f64>>,
        num_threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray3<f64>>> {
        self.run_states(py, &angles, initial, move |prog, a, rows, init, c| {
            prog.states(a, rows, init, num_threads, c)
        })
    }

    /// `states` with float32 amplitudes (half the memory and memory traffic; gate
    /// constants computed in float64 and rounded once; `initial` rounded to float32).
    /// Returns states (rows, 2, 2^n) float32. Forward only: gradients take float64.
    #[pyo3(signature = (angles, initial=None, *, num_threads=None))]
    fn states_f32<'py>(
        &self,
        py: Python<'py>,
        angles: PyReadonlyArray2<'py, f64>,
        initial: Option<PyReadonlyArray3<'py, f64>>,
        num_threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray3<f32>>> {
        self.run_states(py, &angles, initial, move |prog, a, rows, init, c| {
            prog.states_f32(a, rows, init, num_threads, c)
        })
    }

    /// Adjoint gradient of the angles (rows, slots): `psi` the outputs of `states`,
    /// `lam` (rows, 2, 2^n) the derivative of the loss with respect to the conjugate
    /// amplitudes, scaled so that dL/da = 2 Re <lam| d psi/da> (a loss of the
    /// probabilities q: lam = (dL/dq) psi).
    #[pyo3(signature = (angles, psi, lam, *, num_threads=None))]
    fn adjoint<'py>(
        &self,
        py: Python<'py>,
        angles: PyReadonlyArray2<'py, f64>,
        psi: PyReadonlyArray3<'py, f64>,
        lam: PyReadonlyArray3<'py, f64>,
        num_threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let (av, rows, s) = self.angle_rows(&angles)?;
        let (pv, pr, _, _) = flat3(&psi, "psi")?;
        let (lv, lr, _, _) = flat3(&lam, "lam")?;
        if pr != rows || lr != rows {
            return Err(value_error(
                "lam",
                format!("psi and lam need {rows} rows (one per angle row), got {pr} and {lr}"),
            ));
        }
        let d = self.inner.dim();
        let w = work(&[rows, d, 3 * self.inner.num_ops().max(1)]);
        let prog = &self.inner;
        let g = run_detached(py, w, move |c| {
            prog.adjoint(&av, rows, pv, lv, num_threads, c)
        })?;
        g.into_pyarray(py).reshape([rows, s])
    }

    /// Parameter-shift gradient for one angle vector (slots,), reduced against `weight`
    /// (2^n,): g_k = sum_x (f_k^+(x) - f_k^-(x)) weight(x), f_k^+- the output
    /// distribution with slot k shifted by +-pi/2, exact (`shots=None`) or as frequencies
    /// of `shots` draws from streams (seed, 1 + k) and (seed, 1 + slots + k). Each shifted
    /// circuit is forked from the unshifted prefix and streamed. `precision="f32"` runs the
    /// circuit and every fork on f32 amplitudes (the draws and sums stay f64, the streams
    /// the same).
    #[pyo3(signature = (angles, weight, shots, seed, initial=None, *, num_threads=None, precision="f64"))]
    #[allow(clippy::too_many_arguments)]
    fn shift_gradient<'py>(
        &self,
        py: Python<'py>,
        angles: PyReadonlyArray1<'py, f64>,
        weight: PyReadonlyArray1<'py, f64>,
        shots: Option<u64>,
        seed: u64,
        initial: Option<PyReadonlyArray3<'py, f64>>,
        num_threads: Option<usize>,
        precision: &str,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let f32_path = parse_precision(precision)?;
        let av = angles.as_array().to_vec();
        let wv = weight.as_array().to_vec();
        let init = match initial {
            Some(a) => Some(flat3(&a, "initial")?.0),
            None => None,
        };
        let d = self.inner.dim();
        let w = work(&[
            self.inner.num_slots().max(1),
            d,
            self.inner.num_ops().max(1),
        ]);
        let prog = &self.inner;
        let g = run_detached(py, w, move |c| {
            let init = init.as_deref();
            if f32_path {
                prog.shift_gradient::<f32>(&av, init, &wv, shots, seed, num_threads, c)
            } else {
                prog.shift_gradient::<f64>(&av, init, &wv, shots, seed, num_threads, c)
            }
        })?;
        Ok(g.into_pyarray(py))
    }

    /// `shots` computational-basis draws (outcome indices, increasing, uint64) from the
    /// output state for one angle vector (slots,), stream (seed, index0): the draws
    /// `sample_counts` makes from |psi|^2 on that stream (the same at f64), computed
    /// from the amplitudes without an array of probabilities. `precision="f32"` runs the
    /// state on f32 amplitudes.
    #[pyo3(signature = (angles, shots, seed, initial=None, *, index0=0, num_threads=None, precision="f64"))]
    #[allow(clippy::too_many_arguments)]
    fn sample<'py>(
        &self,
        py: Python<'py>,
        angles: PyReadonlyArray1<'py, f64>,
        shots: u64,
        seed: u64,
        initial: Option<PyReadonlyArray3<'py, f64>>,
        index0: u64,
        num_threads: Option<usize>,
        precision: &str,
    ) -> PyResult<Bound<'py, PyArray1<u64>>> {
        let f32_path = parse_precision(precision)?;
        let av = angles.as_array().to_vec();
        let init = match initial {
            Some(a) => Some(flat3(&a, "initial")?.0),
            None => None,
        };
        let d = self.inner.dim();
        let w = work(&[d, self.inner.num_ops().max(1)]);
        let prog = &self.inner;
        let out = run_detached(py, w, move |c| {
            let init = init.as_deref();
            if f32_path {
                prog.sample::<f32>(&av, init, shots, seed, index0, num_threads, c)
            } else {
                prog.sample::<f64>(&av, init, shots, seed, index0, num_threads, c)
            }
        })?;
        Ok(out.into_pyarray(py))
    }

    fn __repr__(&self) -> String {
        format!(
            "CircuitProgram(n={}, gates={}, slots={})",
            self.inner.n(),
            self.inner.num_ops(),
            self.inner.num_slots()
        )
    }
}

/// Multinomial counts (rows, 2^n) int64 of `shots` draws from every row of `probs`
/// (rows, 2^n) (non-negative; normalised here), row r from stream (seed, index0 + r):
/// sorted uniforms merged with the cumulative distribution, O(2^n + shots) per row.
#[pyfunction]
#[pyo3(signature = (probs, shots, seed, index0=0, *, num_threads=None))]
fn sample_counts<'py>(
    py: Python<'py>,
    probs: PyReadonlyArray2<'py, f64>,
    shots: u64,
    seed: u64,
    index0: u64,
    num_threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray2<i64>>> {
    let (rows, d) = probs.as_array().dim();
    // the copy handed to the core and the counts it returns, checked before either exists
    let n = rows
        .checked_mul(d)
        .ok_or_else(|| value_error("probs", "too many values"))?;
    let need = memory::bytes(&[n, 16], "probs").map_err(to_py)?;
    memory::ensure_fits(need, "probs").map_err(to_py)?;
    let pv = memory::try_collect(n, probs.as_array().iter().copied(), "probs").map_err(to_py)?;
    let w = work(&[rows, d + shots as usize]);
    let c = run_detached(py, w, move |c| {
        circuit::sample_counts(&pv, rows, shots, seed, index0, num_threads, c)
    })?;
    let v: Vec<i64> = c.into_iter().map(|x| x as i64).collect();
    v.into_pyarray(py).reshape([rows, d])
}

/// `precision`: "f64" (false) or "f32" (true).
fn parse_precision(precision: &str) -> PyResult<bool> {
    match precision {
        "f64" => Ok(false),
        "f32" => Ok(true),
        other => Err(value_error(
            "precision",
            format!("one of 'f64', 'f32', got {other:?}"),
        )),
    }
}
