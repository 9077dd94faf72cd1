//! Peak-memory checks for allocations sized by user input.
//!
//! Every driver estimates its call's peak (output rows plus the per-block lanes held
//! by the threads at once) before allocating and refuses a request that cannot fit in
//! the memory this process may still use: the smallest of the system's available
//! memory (`MemAvailable`), the address-space limit (`ulimit -v`) minus what the process
//! already maps, and the cgroup's `memory.max` minus its usage. The refusal is
//! [`CoreError::OutOfMemory`] (Python `MemoryError`) naming the parameter, so the
//! interpreter lives on instead of aborting in the allocator.

use crate::error::{CoreError, Result};

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn kib_field(text: &str, key: &str) -> Option<u128> {
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u128>().ok())
        .map(|k| k * 1024)
}

/// Bytes this process may still allocate (None when nothing can be read, e.g. not Linux).
pub fn available_bytes() -> Option<u128> {
    let mut best: Option<u128> = None;
    let mut take = |v: u128| best = Some(best.map_or(v, |b: u128| b.min(v)));
    if let Some(m) = read("/proc/meminfo").and_then(|t| kib_field(&t, "MemAvailable:")) {
        take(m);
    }
    if let Some(limits) = read("/proc/self/limits") {
        if let Some(line) = limits.lines().find(|l| l.starts_with("Max address space")) {
            let soft = line.split_whitespace().nth(3);
            if let Some(Ok(lim)) = soft.map(|s| s.parse::<u128>()) {
                let used = read("/proc/self/status")
                    .and_then(|t| kib_field(&t, "VmSize:"))
                    .unwrap_or(0);
                take(lim.saturating_sub(used));
            }
        }
    }
    if let (Some(max), Some(cur)) = (
        read("/sys/fs/cgroup/memory.max"),
        read("/sys/fs/cgroup/memory.current"),
    ) {
        if let (Ok(max), Ok(cur)) = (max.trim().parse::<u128>(), cur.trim().parse::<u128>()) {
            take(max.saturating_sub(cur));
        }
    }
    best
}

/// Checked product of sizes; an overflow is reported against `name`.
pub fn bytes(factors: &[usize], name: &str) -> Result<u128> {
    let mut acc: u128 = 1;
    for &f in factors {
        acc = acc
            .checked_mul(f as u128)
            .ok_or_else(|| too_big(name, u128::MAX))?;
    }
    Ok(acc)
}

fn too_big(name: &str, need: u128) -> CoreError {
    CoreError::OutOfMemory {
        name: name.to_string(),
        message: if need == u128::MAX {
            "the request's size overflows".into()
        } else {
            format!(
                "the call would need about {} of memory{}",
                human(need),
                available_bytes()
                    .map(|a| format!(" but only {} is available", human(a)))
                    .unwrap_or_default()
            )
        },
    }
}

fn human(b: u128) -> String {
    let gib = b as f64 / (1u64 << 30) as f64;
    if gib >= 1.0 {
        format!("{gib:.1} GiB")
    } else {
        format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
    }
}

/// Refuse a call whose estimated peak exceeds what the process may still allocate.
pub fn ensure_fits(need: u128, name: &str) -> Result<()> {
    // Small requests never need the /proc reads.
    if need < (64 << 20) {
        return Ok(());
    }
    match available_bytes() {
        Some(avail) if need > avail => Err(too_big(name, need)),
        _ => Ok(()),
    }
}

/// Allocate `len` copies of `value`, reporting failure as [`CoreError::OutOfMemory`].
pub fn try_vec<T: Clone>(len: usize, value: T, name: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| {
        too_big(
            name,
            (len as u128).saturating_mul(std::mem::size_of::<T>() as u128),
        )
    })?;
    v.resize(len, value);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_and_huge_requests_are_refused() {
        assert!(bytes(&[usize::MAX, usize::MAX, usize::MAX], "num_reads").is_err());
        let e = ensure_fits(1u128 << 80, "num_reads").unwrap_err();
        assert!(matches!(e, CoreError::OutOfMemory { .. }));
        assert!(ensure_fits(1024, "num_reads").is_ok());
    }
}
