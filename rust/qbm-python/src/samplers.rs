//! Sampler entry points: convert arrays, release the GIL, call the core drivers.
//!
//! Every sampler returns the same result type, a dict with at least
//! `spins` (int8), `energies` (float64) and `flip_fraction` ((num_reads,) float64), plus
//! the sampler's own diagnostics; see each function's docstring for shapes.

use crate::detach::{run_detached, work};
use crate::error::value_error;
use crate::ising::{slice_i8, IsingCsr};
use crate::options::Wrap;
use numpy::{IntoPyArray, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::IntoPyObject;
use qbm_core::drivers::sqa::{sample_sqa as sample_sqa_core, Moves, SqaRun};
use qbm_core::drivers::tempering::{sample_tempering as sample_tempering_core, TemperingRun};
use qbm_core::drivers::{sample_schedule as core_schedule, Chains, ScheduleRun};
use qbm_core::rbm::{sample_rbm as sample_rbm_core, Rbm, RbmRun};
use qbm_core::{Order, UpdateRule};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(sample_schedule, m)?)?;
    m.add_function(wrap_pyfunction!(sample_tempering, m)?)?;
    m.add_function(wrap_pyfunction!(sample_sqa, m)?)?;
    m.add_function(wrap_pyfunction!(sample_rbm, m)?)?;
    m.add_function(wrap_pyfunction!(sample_sqa_ct, m)?)?;
    Ok(())
}

/// Owned copy of optional (reads, width) starting states, shape-checked.
pub fn optional_states(
    init: &Option<PyReadonlyArray2<'_, i8>>,
    reads: usize,
    width: usize,
) -> PyResult<Option<Vec<i8>>> {
    match init {
        None => Ok(None),
        Some(a) => {
            let (r, c) = a.as_array().dim();
            if r != reads || c != width {
                return Err(value_error(
                    "initial_states",
                    format!("expected shape ({reads}, {width}), got ({r}, {c})"),
                ));
            }
            Ok(Some(slice_i8(a, "initial_states")?.to_vec()))
        }
    }
}

/// The one result type: a dict of arrays and numbers, built from `(key, value)` pairs.
struct Output<'py> {
    py: Python<'py>,
    dict: Bound<'py, PyDict>,
}

impl<'py> Output<'py> {
    fn new(py: Python<'py>) -> Self {
        Self {
            py,
            dict: PyDict::new(py),
        }
    }

    fn array<T: numpy::Element>(self, key: &str, v: Vec<T>, shape: &[usize]) -> PyResult<Self> {
        let a = v.into_pyarray(self.py).reshape(shape.to_vec())?;
        self.dict.set_item(key, a)?;
        Ok(self)
    }

    fn value<T: for<'a> IntoPyObject<'py>>(self, key: &str, v: T) -> PyResult<Self> {
        self.dict.set_item(key, v)?;
        Ok(self)
    }
}

/// Run `num_reads` chains through a per-sweep inverse-temperature schedule.
///
/// betas: (num_sweeps,) float64 > 0. Returns {spins (num_reads, n) int8, energies
/// (num_reads,), flip_fraction (num_reads,), trace (num_reads, num_sweeps or 0)}.
#[pyfunction]
#[pyo3(
    signature = (model, betas, num_reads, *, initial_states=None, update=Wrap(UpdateRule::HeatBath), order=Wrap(Order::Colour), seed=0, num_threads=None, trace=false),
    text_signature = "(model, betas, num_reads, *, initial_states=None, update='heat_bath', order='colour', seed=0, num_threads=None, trace=False)"
)]
#[allow(clippy::too_many_arguments)]
fn sample_schedule<'py>(
    py: Python<'py>,
    model: &IsingCsr,
    betas: PyReadonlyArray1<'py, f64>,
    num_reads: usize,
    initial_states: Option<PyReadonlyArray2<'py, i8>>,
    update: Wrap<UpdateRule>,
    order: Wrap<Order>,
    seed: u64,
    num_threads: Option<usize>,
    trace: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let m = &*model.inner;
    let n = m.num_variables();
    let init = optional_states(&initial_states, num_reads, n)?;
    let betas = betas
        .as_slice()
        .map_err(|_| value_error("betas", "must be contiguous"))?;
    let w = work(&[num_reads, m.nnz() / 2 + n, betas.len()]);
    let out = run_detached(py, w, |cancel| {
        let run = ScheduleRun {
            betas,
            chains: Chains {
                num_reads,
                initial: init.as_deref(),
                order: order.0,
                seed,
                num_threads,
            },
            rule: update.0,
            trace,
        };
        core_schedule(m, &run, cancel)
    })?;
    let t_len = if trace { betas.len() } else { 0 };
    Ok(Output::new(py)
        .array("spins", out.spins, &[num_reads, n])?
        .array("energies", out.energies, &[num_reads])?
        .array("flip_fraction", out.flip_fraction, &[num_reads])?
        .array("trace", out.trace, &[num_reads, t_len])?
        .dict)
}

/// Parallel tempering. betas: (K,) increasing ladder (last = target).
///
/// Returns {spins (num_reads, K, n) int8 ordered by temperature, energies (num_reads, K),
/// flip_fraction (num_reads,) (not tracked: zeros), swap_acceptance (K-1,), round_trips
/// (num_reads,) uint32, betas (K,) final ladder, trace (num_reads, steps or 0)}.
#[pyfunction]
#[pyo3(
    signature = (model, betas, num_reads, num_sweeps, *, swap_interval=1, adapt_sweeps=0, adapt_interval=50, initial_states=None, update=Wrap(UpdateRule::HeatBath), order=Wrap(Order::Colour), seed=0, num_threads=None, trace=false),
    text_signature = "(model, betas, num_reads, num_sweeps, *, swap_interval=1, adapt_sweeps=0, adapt_interval=50, initial_states=None, update='heat_bath', order='colour', seed=0, num_threads=None, trace=False)"
)]
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
    update: Wrap<UpdateRule>,
    order: Wrap<Order>,
    seed: u64,
    num_threads: Option<usize>,
    trace: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let m = &*model.inner;
    let n = m.num_variables();
    let init = optional_states(&initial_states, num_reads, n)?;
    let betas = betas
        .as_slice()
        .map_err(|_| value_error("betas", "must be contiguous"))?;
    let w = work(&[
        num_reads,
        betas.len(),
        m.nnz() / 2 + n,
        num_sweeps.saturating_add(adapt_sweeps),
    ]);
    let out = run_detached(py, w, |cancel| {
        let run = TemperingRun {
            betas,
            chains: Chains {
                num_reads,
                initial: init.as_deref(),
                order: order.0,
                seed,
                num_threads,
            },
            num_sweeps,
            swap_interval,
            adapt_sweeps,
            adapt_interval,
            rule: update.0,
            trace,
        };
        sample_tempering_core(m, &run, cancel)
    })?;
    let k = out.num_replicas;
    let t_len = out.trace.len() / num_reads;
    Ok(Output::new(py)
        .array("spins", out.replica_spins, &[num_reads, k, n])?
        .array("energies", out.replica_energies, &[num_reads, k])?
        .array("flip_fraction", vec![0.0f64; num_reads], &[num_reads])?
        .array(
            "swap_acceptance",
            out.swap_acceptance,
            &[k.saturating_sub(1)],
        )?
        .array("round_trips", out.round_trips, &[num_reads])?
        .array("betas", out.betas, &[k])?
        .array("trace", out.trace, &[num_reads, t_len])?
        .dict)
}

/// Simulated quantum annealing (path-integral Monte Carlo). s_schedule: (num_sweeps,).
///
/// Returns {spins (num_reads, P, n) int8 (every slice), energies (num_reads, P) classical
/// energies, flip_fraction (num_reads,), chosen_slice (num_reads,) uniformly drawn slice
/// index per read, worldline_acceptance}.
#[pyfunction]
#[pyo3(
    signature = (model, s_schedule, num_reads, *, beta, gamma, num_trotter_slices, initial_states=None, update=Wrap(UpdateRule::Metropolis), worldline=true, moves=Wrap(Moves::Cluster), order=Wrap(Order::Colour), seed=0, num_threads=None, fields=None),
    text_signature = "(model, s_schedule, num_reads, *, beta, gamma, num_trotter_slices, initial_states=None, update='metropolis', worldline=True, moves='cluster', order='colour', seed=0, num_threads=None, fields=None)"
)]
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
    update: Wrap<UpdateRule>,
    worldline: bool,
    moves: Wrap<Moves>,
    order: Wrap<Order>,
    seed: u64,
    num_threads: Option<usize>,
    fields: Option<PyReadonlyArray2<'py, f64>>,
) -> PyResult<Bound<'py, PyDict>> {
    let m = &*model.inner;
    let n = m.num_variables();
    let init = optional_states(&initial_states, num_reads, n)?;
    let sched = s_schedule
        .as_slice()
        .map_err(|_| value_error("s_schedule", "must be contiguous"))?;
    let pairs: Option<Vec<(f64, f64)>> = match &fields {
        None => None,
        Some(f) => {
            let a = f.as_array();
            if a.ncols() != 2 {
                return Err(value_error(
                    "fields",
                    format!("expected shape (num_sweeps, 2), got {:?}", a.shape()),
                ));
            }
            Some(a.rows().into_iter().map(|r| (r[0], r[1])).collect())
        }
    };
    let sweeps = pairs.as_ref().map_or(sched.len(), |v| v.len());
    let w = work(&[num_reads, num_trotter_slices, m.nnz() / 2 + n, sweeps]);
    let out = run_detached(py, w, |cancel| {
        let run = SqaRun {
            beta,
            gamma,
            num_slices: num_trotter_slices,
            s_schedule: sched,
            fields: pairs.as_deref(),
            chains: Chains {
                num_reads,
                initial: init.as_deref(),
                order: order.0,
                seed,
                num_threads,
            },
            rule: update.0,
            worldline,
            moves: moves.0,
        };
        sample_sqa_core(m, &run, cancel)
    })?;
    let p = out.num_slices;
    let chosen: Vec<u64> = out.chosen_slice.iter().map(|&x| x as u64).collect();
    Output::new(py)
        .array("spins", out.slice_spins, &[num_reads, p, n])?
        .array("energies", out.slice_energies, &[num_reads, p])?
        .array("flip_fraction", out.flip_fraction, &[num_reads])?
        .array("chosen_slice", chosen, &[num_reads])?
        .value("worldline_acceptance", out.worldline_acceptance)
        .map(|o| o.dict)
}

/// Block Gibbs on an RBM with +-1 units. W: (nv, nh); a: (nv,); b: (nh,).
///
/// Returns {spins (num_reads, nv + nh) int8 (visible units first), energies (num_reads,),
/// flip_fraction (num_reads,) (not tracked: zeros)}.
#[pyfunction]
#[pyo3(signature = (w, a, b, num_reads, num_sweeps, *, beta=1.0, initial_states=None, clamp=None, seed=0, num_threads=None))]
#[allow(clippy::too_many_arguments)]
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
) -> PyResult<Bound<'py, PyDict>> {
    let (nv, nh) = w.as_array().dim();
    let wv: Vec<f64> = w.as_array().iter().copied().collect();
    let rbm = Rbm::new(nv, nh, wv, a.as_array().to_vec(), b.as_array().to_vec())
        .map_err(crate::error::to_py)?;
    let init = optional_states(&initial_states, num_reads, nv)?;
    let clamp: Option<Vec<bool>> = clamp.map(|c| c.as_array().to_vec());
    let wk = work(&[num_reads, nv * nh + nv + nh, num_sweeps]);
    let out = run_detached(py, wk, |cancel| {
        let run = RbmRun {
            beta,
            num_sweeps,
            chains: Chains {
                num_reads,
                initial: init.as_deref(),
                order: Order::Colour,
                seed,
                num_threads,
            },
            clamp: clamp.as_deref(),
        };
        sample_rbm_core(&rbm, &run, cancel)
    })?;
    let mut spins = Vec::with_capacity(num_reads * (nv + nh));
    for c in 0..num_reads {
        spins.extend_from_slice(&out.visible[c * nv..(c + 1) * nv]);
        spins.extend_from_slice(&out.hidden[c * nh..(c + 1) * nh]);
    }
    Ok(Output::new(py)
        .array("spins", spins, &[num_reads, nv + nh])?
        .array("energies", out.energies, &[num_reads])?
        .array("flip_fraction", vec![0.0f64; num_reads], &[num_reads])?
        .dict)
}

/// Continuous-time SQA (no Trotter slices). s_schedule: (num_sweeps,).
///
/// Returns {spins (num_reads, n) int8 at imaginary time 0, energies (num_reads,),
/// flip_fraction (num_reads,) (not tracked: zeros), mean_kinks (num_reads,) per spin,
/// moves (segment heat-bath moves made)}.
#[pyfunction]
#[pyo3(
    signature = (model, s_schedule, num_reads, *, beta, gamma, initial_states=None, order=Wrap(Order::Colour), seed=0, num_threads=None),
    text_signature = "(model, s_schedule, num_reads, *, beta, gamma, initial_states=None, order='colour', seed=0, num_threads=None)"
)]
#[allow(clippy::too_many_arguments)]
fn sample_sqa_ct<'py>(
    py: Python<'py>,
    model: &IsingCsr,
    s_schedule: PyReadonlyArray1<'py, f64>,
    num_reads: usize,
    beta: f64,
    gamma: f64,
    initial_states: Option<PyReadonlyArray2<'py, i8>>,
    order: Wrap<Order>,
    seed: u64,
    num_threads: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    use qbm_core::drivers::sqa_ct::{sample_sqa_ct as core_ct, CtRun};
    let m = &*model.inner;
    let n = m.num_variables();
    let init = optional_states(&initial_states, num_reads, n)?;
    let sched = s_schedule
        .as_slice()
        .map_err(|_| value_error("s_schedule", "must be contiguous"))?;
    let kinks = (beta * gamma).clamp(1.0, 1e6) as usize;
    let w = work(&[num_reads, m.nnz() / 2 + n, sched.len(), kinks, 8]);
    let out = run_detached(py, w, |cancel| {
        let run = CtRun {
            beta,
            gamma,
            s_schedule: sched,
            chains: Chains {
                num_reads,
                initial: init.as_deref(),
                order: order.0,
                seed,
                num_threads,
            },
        };
        core_ct(m, &run, cancel)
    })?;
    Output::new(py)
        .array("spins", out.spins, &[num_reads, n])?
        .array("energies", out.energies, &[num_reads])?
        .array("flip_fraction", vec![0.0f64; num_reads], &[num_reads])?
        .array("mean_kinks", out.mean_kinks, &[num_reads])?
        .value("moves", out.moves)
        .map(|o| o.dict)
}
