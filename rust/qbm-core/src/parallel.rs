//! Thread pools and cancellation.
//!
//! Work is split into units (blocks of chains, replicas) whose results do not depend on
//! which thread runs them; the pool size only changes speed. `num_threads = None`
//! uses `QBM_NUM_THREADS` if set, else all cores.

use crate::error::{CoreError, Result};
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Threads used when the caller does not say.
pub fn default_threads() -> usize {
    std::env::var("QBM_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
}

fn pool(n: usize) -> Result<Arc<ThreadPool>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<ThreadPool>>>> = OnceLock::new();
    let pools = POOLS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut g = pools
        .lock()
        .map_err(|_| CoreError::Internal("thread pool registry poisoned".into()))?;
    if let Some(p) = g.get(&n) {
        return Ok(p.clone());
    }
    let p = Arc::new(
        ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("qbm-worker-{i}"))
            .build()
            .map_err(|e| CoreError::Internal(format!("cannot start thread pool: {e}")))?,
    );
    g.insert(n, p.clone());
    Ok(p)
}

/// Run `f` inside a pool of `num_threads` threads (see module docs).
pub fn with_threads<T: Send>(
    num_threads: Option<usize>,
    f: impl FnOnce() -> T + Send,
) -> Result<T> {
    let n = match num_threads {
        Some(0) => return Err(CoreError::param("num_threads", "must be at least 1")),
        Some(n) => n,
        None => default_threads(),
    };
    Ok(pool(n)?.install(f))
}

/// Error out if the cancellation flag is set.
#[inline]
pub fn check_cancel(cancel: &AtomicBool) -> Result<()> {
    if cancel.load(Ordering::Relaxed) {
        Err(CoreError::Interrupted)
    } else {
        Ok(())
    }
}
