//! Thread pools, the work-splitting policy and cancellation.
//!
//! Work is split into units (blocks of chains, replicas) whose results do not depend on
//! which thread runs them; the pool size only changes speed. `num_threads = None`
//! uses `QBM_NUM_THREADS` if set, else all cores.
//!
//! Limits: `num_threads` (and `QBM_NUM_THREADS`) must lie in 1..=[`MAX_THREADS`]; a
//! larger value is an error naming the parameter, never a silent clamp. At most
//! [`MAX_POOLS`] pools are alive at once (the least recently used one is dropped and its
//! threads exit once its last call returns).
//!
//! Fork: a child process created by `fork()` inherits the pool registry but not the
//! pools' threads. The registry remembers the process id that built it; in a child it is
//! discarded (leaked, since its threads do not exist there) and fresh pools are built, so
//! samplers work in `multiprocessing` workers started with `fork`.

use crate::error::{CoreError, Result};
use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Largest accepted `num_threads` / `QBM_NUM_THREADS`.
pub const MAX_THREADS: usize = 1024;
/// Most thread pools kept alive at once.
pub const MAX_POOLS: usize = 4;
/// Below this many single-spin (or unit) updates per thread a call is not split further
/// (unless `QBM_MIN_WORK_PER_THREAD` says otherwise, see [`min_work_per_thread`]): about
/// 2^20 updates take 1-2 ms on one core. Handing work to another thread pays on an idle
/// machine from about 2^17; with other processes on the cores a woken thread waits for a
/// time slice, and a 6-qubit batch-64 circuit call (0.2 ms on its thread) split over 2
/// threads took 1.42 ms on average beside two busy processes, against 0.25 ms unsplit.
pub const MIN_WORK_PER_THREAD: u64 = 1 << 20;

fn check_count(n: usize, name: &str) -> Result<usize> {
    if n == 0 {
        return Err(CoreError::param(name, "must be at least 1"));
    }
    if n > MAX_THREADS {
        return Err(CoreError::param(
            name,
            format!("{n} threads exceeds the limit of {MAX_THREADS}"),
        ));
    }
    Ok(n)
}

/// Threads used when the caller does not say: `QBM_NUM_THREADS` if set, else all cores.
/// An unparsable, zero or too large `QBM_NUM_THREADS` is an error naming it.
pub fn default_threads() -> Result<usize> {
    match std::env::var("QBM_NUM_THREADS") {
        Ok(v) if !v.trim().is_empty() => {
            let n = v.trim().parse::<usize>().map_err(|_| {
                CoreError::param(
                    "QBM_NUM_THREADS",
                    format!("expected a positive integer, got {v:?}"),
                )
            })?;
            check_count(n, "QBM_NUM_THREADS")
        }
        _ => Ok(cores().min(MAX_THREADS)),
    }
}

/// Cores available to this process, read once (`available_parallelism` reads cgroup
/// files on Linux, ~0.1 ms: too slow for every call of a training loop).
pub fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

/// The work a thread must get before a call is split (see [`MIN_WORK_PER_THREAD`]):
/// `QBM_MIN_WORK_PER_THREAD` when set (a positive integer; 1 splits every call, which the
/// tests of thread-count independence use), else the constant. An unparsable or zero
/// value is an error naming it.
pub fn min_work_per_thread() -> Result<u64> {
    match std::env::var("QBM_MIN_WORK_PER_THREAD") {
        Ok(v) if !v.trim().is_empty() => match v.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(CoreError::param(
                "QBM_MIN_WORK_PER_THREAD",
                format!("expected a positive integer, got {v:?}"),
            )),
        },
        _ => Ok(MIN_WORK_PER_THREAD),
    }
}

/// Resolve a requested thread count (validated) or the default; also validates
/// `QBM_MIN_WORK_PER_THREAD`, which every split decision after it reads.
pub fn resolve_threads(num_threads: Option<usize>) -> Result<usize> {
    min_work_per_thread()?;
    match num_threads {
        Some(n) => check_count(n, "num_threads"),
        None => default_threads(),
    }
}

struct Registry {
    pid: u32,
    /// Most recently used last.
    pools: Vec<(usize, Arc<ThreadPool>)>,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

fn pool(n: usize) -> Result<Arc<ThreadPool>> {
    // A poisoned lock only means another thread panicked while holding it; the
    // registry itself is always consistent, so take it anyway.
    let mut g = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    if g.as_ref().is_some_and(|r| r.pid != pid) {
        // forked child: the pools' threads live only in the parent
        if let Some(old) = g.take() {
            std::mem::forget(old);
        }
    }
    let reg = g.get_or_insert_with(|| Registry {
        pid,
        pools: Vec::new(),
    });
    if let Some(pos) = reg.pools.iter().position(|(k, _)| *k == n) {
        let entry = reg.pools.remove(pos);
        let p = entry.1.clone();
        reg.pools.push(entry);
        return Ok(p);
    }
    let p = Arc::new(
        ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("qbm-worker-{i}"))
            .build()
            .map_err(|e| CoreError::Internal(format!("cannot start thread pool: {e}")))?,
    );
    if reg.pools.len() >= MAX_POOLS {
        reg.pools.remove(0);
    }
    reg.pools.push((n, p.clone()));
    Ok(p)
}

/// Number of pools currently kept alive (for tests and diagnostics).
pub fn live_pools() -> usize {
    let g = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    match g.as_ref() {
        Some(r) if r.pid == std::process::id() => r.pools.len(),
        _ => 0,
    }
}

/// Threads worth using for `units` independent units totalling `work` updates: never
/// more than requested or than units, and only as many as have
/// [`min_work_per_thread`] each.
pub fn useful_threads(requested: usize, units: usize, work: u64) -> usize {
    let by_work = (work / min_work_per_thread().unwrap_or(MIN_WORK_PER_THREAD)).max(1);
    requested
        .min(units.max(1))
        .min(usize::try_from(by_work).unwrap_or(usize::MAX))
        .max(1)
}

/// Run `f` inside a pool of `num_threads` threads (see module docs).
pub fn with_threads<T: Send>(
    num_threads: Option<usize>,
    f: impl FnOnce() -> T + Send,
) -> Result<T> {
    let n = resolve_threads(num_threads)?;
    Ok(pool(n)?.install(f))
}

/// Run `f` with `n` threads: on the calling thread when `n == 1` (no pool, no hand-off),
/// else inside a pool of `n` threads.
pub fn with_exact_threads<T: Send>(n: usize, f: impl FnOnce() -> T + Send) -> Result<T> {
    if n <= 1 {
        Ok(f())
    } else {
        Ok(pool(check_count(n, "num_threads")?)?.install(f))
    }
}

/// `f` on every item, spread over the current pool's threads when called inside one
/// (qbm installs a pool whenever a call runs on more than one thread) and in order on the
/// calling thread otherwise: a parallel iterator outside a pool would hand the items to
/// rayon's global pool (every core) and wait for it, on a call meant to take one thread.
pub fn each_mut<T: Send>(items: &mut [T], f: impl Fn(&mut T) + Sync + Send) {
    if rayon::current_thread_index().is_some() {
        items.par_iter_mut().for_each(f);
    } else {
        items.iter_mut().for_each(f);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_limits() {
        assert!(resolve_threads(Some(0)).is_err());
        assert!(resolve_threads(Some(MAX_THREADS + 1)).is_err());
        assert_eq!(resolve_threads(Some(3)).unwrap(), 3);
    }

    #[test]
    fn pools_are_bounded() {
        for n in 1..=MAX_POOLS + 3 {
            with_threads(Some(n), || ()).unwrap();
        }
        assert!(live_pools() <= MAX_POOLS);
    }

    #[test]
    fn useful_threads_policy() {
        assert_eq!(useful_threads(8, 16, 1000), 1);
        assert_eq!(useful_threads(8, 2, 1 << 30), 2);
        assert_eq!(useful_threads(2, 16, 1 << 30), 2);
        assert_eq!(useful_threads(4, 16, 3 * MIN_WORK_PER_THREAD), 3);
    }
}
