//! Sampler options parsed once into typed core values (`Wrap<T>: FromPyObject`, as
//! polars does). A value of the wrong type is a `TypeError`, an unknown one a
//! `ValueError` listing the allowed values; both name the parameter.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyString;
use qbm_core::drivers::sqa::Moves;
use qbm_core::{Order, UpdateRule};

/// A core option value extracted from a Python string.
pub struct Wrap<T>(pub T);

/// Allowed spellings of an option and the parameter that carries it.
pub trait Choice: Sized + Copy + 'static {
    const PARAM: &'static str;
    const VALUES: &'static [(&'static str, Self)];
}

impl Choice for UpdateRule {
    const PARAM: &'static str = "update";
    const VALUES: &'static [(&'static str, Self)] = &[
        ("heat_bath", UpdateRule::HeatBath),
        ("gibbs", UpdateRule::HeatBath),
        ("metropolis", UpdateRule::Metropolis),
    ];
}

impl Choice for Order {
    const PARAM: &'static str = "order";
    const VALUES: &'static [(&'static str, Self)] = &[
        ("colour", Order::Colour),
        ("color", Order::Colour),
        ("sequential", Order::Sequential),
        ("random", Order::Random),
    ];
}

impl Choice for Moves {
    const PARAM: &'static str = "moves";
    const VALUES: &'static [(&'static str, Self)] =
        &[("cluster", Moves::Cluster), ("local", Moves::Local)];
}

impl<'a, 'py, T: Choice> FromPyObject<'a, 'py> for Wrap<T> {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let s = obj.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!(
                "{}: expected a string, got {}",
                T::PARAM,
                obj.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_else(|_| "?".into())
            ))
        })?;
        let s = s.to_str()?;
        T::VALUES
            .iter()
            .find(|(k, _)| *k == s)
            .map(|(_, v)| Wrap(*v))
            .ok_or_else(|| {
                let allowed: Vec<String> =
                    T::VALUES.iter().map(|(k, _)| format!("'{k}'")).collect();
                PyValueError::new_err(format!(
                    "{}: unknown value {s:?}; allowed: {}",
                    T::PARAM,
                    allowed.join(", ")
                ))
            })
    }
}
