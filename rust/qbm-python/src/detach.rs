//! Release the GIL, run a long core call, and stop it on Ctrl-C.
//!
//! Short calls (estimated work below [`INLINE_WORK`] spin updates, a few milliseconds)
//! run on the calling thread with the GIL released: no thread is started, which is what
//! keeps the per-call overhead of small models in training loops low. Longer calls run
//! on a scoped thread while the calling (main) thread waits with the GIL released,
//! waking every 100 ms to run Python's signal handlers; if one raises
//! (KeyboardInterrupt), the core's cancellation flag is set, the work stops at its next
//! check (between sweeps or chunks), and the Python exception propagates.

use pyo3::prelude::*;
use qbm_core::{CoreError, Result as CoreResult};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Calls estimated below this many single-spin updates run inline (see module docs).
pub const INLINE_WORK: u128 = 1 << 23;

/// Run `f` with the GIL released; `work` is the call's estimated size in updates.
pub fn run_detached<T, F>(py: Python<'_>, work: u128, f: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce(&AtomicBool) -> CoreResult<T> + Send,
{
    if work < INLINE_WORK {
        let cancel = AtomicBool::new(false);
        return py.detach(|| f(&cancel)).map_err(crate::error::to_py);
    }
    let cancel = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    let mut signal_err: Option<PyErr> = None;
    let result = py.detach(|| {
        let waiter = std::thread::current();
        std::thread::scope(|s| {
            let handle = s.spawn(|| {
                let r = f(&cancel);
                done.store(true, Ordering::Release);
                waiter.unpark();
                r
            });
            while !done.load(Ordering::Acquire) {
                std::thread::park_timeout(Duration::from_millis(100));
                if done.load(Ordering::Acquire) {
                    break;
                }
                if signal_err.is_none() {
                    if let Err(e) = Python::attach(|py| py.check_signals()) {
                        signal_err = Some(e);
                        cancel.store(true, Ordering::Relaxed);
                    }
                }
            }
            handle
                .join()
                .unwrap_or_else(|_| Err(CoreError::Internal("a worker thread panicked".into())))
        })
    });
    if let Some(e) = signal_err {
        return Err(e);
    }
    result.map_err(crate::error::to_py)
}

/// Product of sizes as a work estimate (saturating).
pub fn work(factors: &[usize]) -> u128 {
    factors
        .iter()
        .fold(1u128, |a, &f| a.saturating_mul(f as u128))
}
