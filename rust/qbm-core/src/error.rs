//! The one error type of the core. The binding maps `InvalidParameter` to
//! Python's `ValueError` and the rest to `RuntimeError` / `KeyboardInterrupt`.

use thiserror::Error;

/// Errors raised by the core.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CoreError {
    /// A caller-supplied parameter is invalid; `name` is the parameter's name.
    #[error("{name}: {message}")]
    InvalidParameter { name: String, message: String },
    /// A request (named by `name`) would need more memory than the process can get.
    #[error("{name}: {message}")]
    OutOfMemory { name: String, message: String },
    /// The call was cancelled (e.g. Ctrl-C) before it finished.
    #[error("interrupted")]
    Interrupted,
    /// Something that should not happen did.
    #[error("internal error: {0}")]
    Internal(String),
}

impl CoreError {
    /// Shorthand for [`CoreError::InvalidParameter`].
    pub fn param(name: &str, message: impl Into<String>) -> Self {
        CoreError::InvalidParameter {
            name: name.to_string(),
            message: message.into(),
        }
    }
}

/// Result alias used throughout the core.
pub type Result<T> = std::result::Result<T, CoreError>;

/// Fail with an `InvalidParameter` error unless `cond` holds.
pub fn ensure(cond: bool, name: &str, message: impl FnOnce() -> String) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(CoreError::param(name, message()))
    }
}
