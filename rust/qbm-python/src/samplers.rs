//! Sampler entry points: convert arrays, release the GIL, call the core drivers.

use crate::detach::run_detached;
use crate::error::value_error;
use crate::ising::{slice_i8, IsingCsr};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::IntoPyObject;
use qbm_core::drivers::sqa::{sample_sqa as sample_sqa_core, SqaRun};
use qbm_core::drivers::tempering::{sample_tempering as sample_tempering_core, TemperingRun};
use qbm_core::drivers::{sample_schedule as core_schedule, ScheduleRun};
use qbm_core::rbm::{sample_rbm as sample_rbm_core, Rbm, RbmRun};
use qbm_core::{Order, UpdateRule};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(sample_schedule, m)?)?;
    m.add_function(wrap_pyfunction!(sample_tempering, m)?)?;
    m.add_function(wrap_pyfunction!(sample_sqa, m)?)?;
    m.add_function(wrap_pyfunction!(sample_rbm, m)?)?;
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
#[pyo3(signature = (model, betas, num_reads, *, initial_states=None, update="heat_bath", order="colour", seed=0, num_threads=None, trace=false))]
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
    trace: bool,
) -> PyResult<(
    Bound<'py, PyArray2<i8>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray2<f64>>,
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
            trace,
        };
        core_schedule(&m, &run, cancel)
    })?;
    let t_len = if trace {
        out.trace.len() / num_reads
    } else {
        0
    };
    Ok((
        rows_to_array(py, out.spins, num_reads, n)?,
        out.energies.into_pyarray(py),
        out.flip_fraction.into_pyarray(py),
        out.trace.into_pyarray(py).reshape([num_reads, t_len])?,
    ))
}

fn py_dict<'py>(
    py: Python<'py>,
    items: Vec<(&str, Bound<'py, PyAny>)>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in items {
        d.set_item(k, v)?;
    }
    Ok(d)
}

/// Parallel tempering. betas: (K,) increasing ladder (last = target).
///
/// Returns a dict: replica_spins (num_reads, K, n) int8 ordered by temperature,
/// replica_energies (num_reads, K), swap_acceptance (K-1,), round_trips (num_reads,)
/// uint32, betas (K,) final ladder.
#[pyfunction]
#[pyo3(signature = (model, betas, num_reads, num_sweeps, *, swap_interval=1, adapt_sweeps=0, adapt_interval=50, initial_states=None, update="heat_bath", order="colour", seed=0, num_threads=None, trace=false))]
#[allow(clippy::too_many_arguments)]
fn sample_tempering<'py>(
    py: Python<'py>,
    model: &IsingCsr,
    betas: PyReadonlyArray1<'py, f64>,
    num_reads: usize,
    num_sweeps: usize,
    swap_interval: usize,
    adapt_sweeps: usize,
    adapt_interval: usize,
    initial_states: Option<PyReadonlyArray2<'py, i8>>,
    update: &str,
    order: &str,
    seed: u64,
    num_threads: Option<usize>,
    trace: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let rule = parse_rule(update)?;
    let order = parse_order(order)?;
    let n = model.inner.num_variables();
    let init = optional_states(&initial_states, num_reads, n)?;
    let betas = betas.as_array().to_vec();
    let m = model.inner.clone();
    let out = run_detached(py, move |cancel| {
        let run = TemperingRun {
            betas: &betas,
            num_reads,
            num_sweeps,
            swap_interval,
            adapt_sweeps,
            adapt_interval,
            initial: init.as_deref(),
            rule,
            order,
            seed,
            num_threads,
            trace,
        };
        sample_tempering_core(&m, &run, cancel)
    })?;
    let k = out.num_replicas;
    let t_len = out.trace.len() / num_reads;
    py_dict(
        py,
        vec![
            (
                "replica_spins",
                out.replica_spins
                    .into_pyarray(py)
                    .reshape([num_reads, k, n])?
                    .into_any(),
            ),
            (
                "replica_energies",
                out.replica_energies
                    .into_pyarray(py)
                    .reshape([num_reads, k])?
                    .into_any(),
            ),
            (
                "swap_acceptance",
                out.swap_acceptance.into_pyarray(py).into_any(),
            ),
            ("round_trips", out.round_trips.into_pyarray(py).into_any()),
            ("betas", out.betas.into_pyarray(py).into_any()),
            (
                "trace",
                out.trace
                    .into_pyarray(py)
                    .reshape([num_reads, t_len])?
                    .into_any(),
            ),
        ],
    )
}

/// Simulated quantum annealing (path-integral Monte Carlo). s_schedule: (num_sweeps,).
///
/// Returns a dict: slice_spins (num_reads, P, n) int8, slice_energies (num_reads, P)
/// classical energies, chosen_slice (num_reads,) uniformly drawn slice index per read,
/// worldline_acceptance, flip_fraction.
#[pyfunction]
#[pyo3(signature = (model, s_schedule, num_reads, *, beta, gamma, num_trotter_slices, initial_states=None, update="metropolis", worldline=true, order="colour", seed=0, num_threads=None))]
#[allow(clippy::too_many_arguments)]
fn sample_sqa<'py>(
    py: Python<'py>,
    model: &IsingCsr,
    s_schedule: PyReadonlyArray1<'py, f64>,
    num_reads: usize,
    beta: f64,
    gamma: f64,
    num_trotter_slices: usize,
    initial_states: Option<PyReadonlyArray2<'py, i8>>,
    update: &str,
    worldline: bool,
    order: &str,
    seed: u64,
    num_threads: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let rule = parse_rule(update)?;
    let order = parse_order(order)?;
    let n = model.inner.num_variables();
    let init = optional_states(&initial_states, num_reads, n)?;
    let sched = s_schedule.as_array().to_vec();
    let m = model.inner.clone();
    let out = run_detached(py, move |cancel| {
        let run = SqaRun {
            beta,
            gamma,
            num_slices: num_trotter_slices,
            s_schedule: &sched,
            num_reads,
            initial: init.as_deref(),
            rule,
            worldline,
            order,
            seed,
            num_threads,
        };
        sample_sqa_core(&m, &run, cancel)
    })?;
    let p = out.num_slices;
    let chosen: Vec<u64> = out.chosen_slice.iter().map(|&x| x as u64).collect();
    py_dict(
        py,
        vec![
            (
                "slice_spins",
                out.slice_spins
                    .into_pyarray(py)
                    .reshape([num_reads, p, n])?
                    .into_any(),
            ),
            (
                "slice_energies",
                out.slice_energies
                    .into_pyarray(py)
                    .reshape([num_reads, p])?
                    .into_any(),
            ),
            ("chosen_slice", chosen.into_pyarray(py).into_any()),
            (
                "worldline_acceptance",
                out.worldline_acceptance.into_pyobject(py)?.into_any(),
            ),
            (
                "flip_fraction",
                out.flip_fraction.into_pyobject(py)?.into_any(),
            ),
        ],
    )
}

/// Block Gibbs on an RBM with +-1 units. W: (nv, nh); a: (nv,); b: (nh,).
///
/// Returns (visible (num_reads, nv) int8, hidden (num_reads, nh) int8, energies).
#[pyfunction]
#[pyo3(signature = (w, a, b, num_reads, num_sweeps, *, beta=1.0, initial_states=None, clamp=None, seed=0, num_threads=None))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn sample_rbm<'py>(
    py: Python<'py>,
    w: PyReadonlyArray2<'py, f64>,
    a: PyReadonlyArray1<'py, f64>,
    b: PyReadonlyArray1<'py, f64>,
    num_reads: usize,
    num_sweeps: usize,
    beta: f64,
    initial_states: Option<PyReadonlyArray2<'py, i8>>,
    clamp: Option<PyReadonlyArray1<'py, bool>>,
    seed: u64,
    num_threads: Option<usize>,
) -> PyResult<(
    Bound<'py, PyArray2<i8>>,
    Bound<'py, PyArray2<i8>>,
    Bound<'py, PyArray1<f64>>,
)> {
    let (nv, nh) = w.as_array().dim();
    let wv: Vec<f64> = w.as_array().iter().copied().collect();
    let rbm = Rbm::new(nv, nh, wv, a.as_array().to_vec(), b.as_array().to_vec())
        .map_err(crate::error::to_py)?;
    let init = optional_states(&initial_states, num_reads, nv)?;
    let clamp: Option<Vec<bool>> = clamp.map(|c| c.as_array().to_vec());
    let out = run_detached(py, move |cancel| {
        let run = RbmRun {
            beta,
            num_reads,
            num_sweeps,
            initial_visible: init.as_deref(),
            clamp: clamp.as_deref(),
            seed,
            num_threads,
        };
        sample_rbm_core(&rbm, &run, cancel)
    })?;
    Ok((
        rows_to_array(py, out.visible, num_reads, nv)?,
        rows_to_array(py, out.hidden, num_reads, nh)?,
        out.energies.into_pyarray(py),
    ))
}
