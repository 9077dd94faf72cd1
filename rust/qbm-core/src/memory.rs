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

/// The parameters that size an allocation, the largest factor first, for the error's
/// name: `[("num_reads", 1000), ("num_replicas", 64)]` -> `"num_reads x num_replicas"`.
/// Factors of 1 are left out (they do not drive the size); all-ones gives the first name.
pub fn named(parts: &[(&str, u128)]) -> String {
    let mut p: Vec<(&str, u128)> = parts.iter().copied().filter(|&(_, v)| v > 1).collect();
    p.sort_by_key(|x| std::cmp::Reverse(x.1));
    if p.is_empty() {
        return parts.first().map_or(String::new(), |x| x.0.to_string());
    }
    p.iter().map(|x| x.0).collect::<Vec<_>>().join(" x ")
}

/// Refuse to build a model of `n` spins and `nnz` stored couplings when its arrays (the
/// caller's f64 / index copies plus the core's f32 copies) cannot fit; names `J` when the
/// couplings dominate, `h` otherwise.
pub fn check_model(n: usize, nnz: usize) -> Result<()> {
    // h f64 + h32 + indptr usize; indices u32 + data f64 + data32
    let spin_bytes = (n as u128 + 1).saturating_mul(8 + 4 + 8);
    let coupling_bytes = (nnz as u128).saturating_mul(4 + 8 + 4);
    let name = if coupling_bytes > spin_bytes {
        "J"
    } else {
        "h"
    };
    // a quarter more for the allocator's own pages and the mappings each large array adds
    // (a 1e7-spin ring passed the exact sum and then failed one allocation at a 2.6 GiB cap)
    let need = spin_bytes.saturating_add(coupling_bytes);
    ensure_fits(need.saturating_add(need / 4), name)
}

/// Allocate `len` copies of `value`, reporting failure as [`CoreError::OutOfMemory`].
pub fn try_vec<T: Clone>(len: usize, value: T, name: &str) -> Result<Vec<T>> {
    try_collect(len, std::iter::repeat_n(value, len), name)
}

/// Collect `len` values of `iter` into a new vector, reporting an allocation failure as
/// [`CoreError::OutOfMemory`] naming `name` (a fallible `collect`; the copies a call makes
/// of its inputs go through it, so a request near the memory limit is refused, not an abort).
pub fn try_collect<T>(len: usize, iter: impl IntoIterator<Item = T>, name: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| {
        too_big(
            name,
            (len as u128).saturating_mul(std::mem::size_of::<T>() as u128),
        )
    })?;
    v.extend(iter.into_iter().take(len));
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
        let e = check_model(1 << 20, usize::MAX / 2).unwrap_err();
        assert!(e.to_string().starts_with("J: "), "{e}");
        assert!(check_model(10, 20).is_ok());
        let e = try_collect(usize::MAX / 2, 0..1u64, "probs").unwrap_err();
        assert!(e.to_string().starts_with("probs: "), "{e}");
        assert_eq!(
            try_collect(3, [1.0f32, 2.0, 3.0, 4.0], "h").unwrap(),
            vec![1.0, 2.0, 3.0]
        );
    }

    #[test]
    fn named_lists_the_driving_parameters_largest_first() {
        assert_eq!(
            named(&[("num_reads", 10), ("num_replicas", 64), ("num_sweeps", 1)]),
            "num_replicas x num_reads"
        );
        assert_eq!(named(&[("num_reads", 1), ("beta x gamma", 1)]), "num_reads");
    }
}
