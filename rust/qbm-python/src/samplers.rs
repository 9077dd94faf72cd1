//! Sampler entry points: convert arrays, release the GIL, call the core drivers.

use crate::detach::run_detached;
use crate::error::value_error;
use crate::ising::{slice_i8, IsingCsr};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use qbm_core::drivers::{sample_schedule as core_schedule, ScheduleRun};
use qbm_core::{Order, UpdateRule};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(sample_schedule, m)?)?;
    Ok(())
}

pub fn parse_rule(update: &str) -> PyResult<UpdateRule> {
    match update {
        "heat_bath" | "gibbs" => Ok(UpdateRule::HeatBath),
        "metropolis" => Ok(UpdateRule::Metropolis),
        other => Err(value_error(
            "update",
            format!("unknown update rule {other:?}; use 'heat_bath' or 'metropolis'"),
        )),
    }
}

pub fn parse_order(order: &str) -> PyResult<Order> {
    match order {
        "sequential" => Ok(Order::Sequential),
        "random" => Ok(Order::Random),
        "colour" | "color" => Ok(Order::Colour),
        other => Err(value_error(
            "order",
            format!("unknown order {other:?}; use 'sequential', 'colour' or 'random'"),
        )),
    }
}

pub fn optional_states(
    init: &Option<PyReadonlyArray2<'_, i8>>,
    reads: usize,
    n: usize,
) -> PyResult<Option<Vec<i8>>> {
    match init {
        None => Ok(None),
        Some(a) => {
            let sh = a.as_array().dim();
            let sh = [sh.0, sh.1];
            if sh[0] != reads || sh[1] != n {
                return Err(value_error(
                    "initial_states",
                    format!("expected shape ({reads}, {n}), got ({}, {})", sh[0], sh[1]),
                ));
            }
            Ok(Some(slice_i8(a, "initial_states")?.to_vec()))
        }
    }
}

pub fn rows_to_array<'py>(
    py: Python<'py>,
    v: Vec<i8>,
    rows: usize,
    cols: usize,
) -> PyResult<Bound<'py, PyArray2<i8>>> {
    v.into_pyarray(py).reshape([rows, cols])
}

/// Run `num_reads` chains through a per-sweep inverse-temperature schedule.
///
/// betas: (num_sweeps,) float64 > 0. Returns (spins (num_reads, n) int8,
/// energies (num_reads,) float64, flip_fraction (num_reads,) float64).
#[pyfunction]
#[pyo3(signature = (model, betas, num_reads, *, initial_states=None, update="heat_bath", order="colour", seed=0, num_threads=None))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn sample_schedule<'py>(
    py: Python<'py>,
    model: &IsingCsr,
    betas: PyReadonlyArray1<'py, f64>,
    num_reads: usize,
    initial_states: Option<PyReadonlyArray2<'py, i8>>,
    update: &str,
    order: &str,
    seed: u64,
    num_threads: Option<usize>,
) -> PyResult<(
    Bound<'py, PyArray2<i8>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
)> {
    let rule = parse_rule(update)?;
    let order = parse_order(order)?;
    let n = model.inner.num_variables();
    let init = optional_states(&initial_states, num_reads, n)?;
    let betas = betas.as_array().to_vec();
    let m = model.inner.clone();
    let out = run_detached(py, move |cancel| {
        let run = ScheduleRun {
            betas: &betas,
            num_reads,
            initial: init.as_deref(),
            rule,
            order,
            seed,
            num_threads,
        };
        core_schedule(&m, &run, cancel)
    })?;
    Ok((
        rows_to_array(py, out.spins, num_reads, n)?,
        out.energies.into_pyarray(py),
        out.flip_fraction.into_pyarray(py),
    ))
}
