//! One mapping from core errors to Python exceptions.

use pyo3::exceptions::{PyKeyboardInterrupt, PyMemoryError, PyRuntimeError, PyValueError};
use pyo3::PyErr;
use qbm_core::CoreError;

/// Core error -> Python exception (`ValueError` names the parameter).
pub fn to_py(e: CoreError) -> PyErr {
    match e {
        CoreError::InvalidParameter { .. } => PyValueError::new_err(e.to_string()),
        CoreError::OutOfMemory { .. } => PyMemoryError::new_err(e.to_string()),
        CoreError::Interrupted => PyKeyboardInterrupt::new_err("interrupted"),
        CoreError::Internal(_) => PyRuntimeError::new_err(e.to_string()),
    }
}

/// A `ValueError` naming `name`.
pub fn value_error(name: &str, msg: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(format!("{name}: {msg}"))
}
