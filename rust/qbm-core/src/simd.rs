//! Lane-parallel arithmetic: a block of `LANES` chains is updated together, one
//! spin at a time, with every chain in its own lane (spin-major, chain-minor).
//! The loops here are written over fixed-size arrays so LLVM vectorises them; the
//! [`multiversion!`](crate::multiversion) macro compiles a driver for AVX-512,
//! AVX2+FMA and the baseline target and picks one at run time. No fused
//! multiply-add is requested explicitly, so all variants round identically and
//! results do not depend on the CPU's vector width.

/// Chains per block (one AVX2 register of f32).
pub const LANES: usize = 8;

/// One value per lane.
pub type Lane = [f32; LANES];

/// Lanes of two blocks run in lockstep (16 f32: one AVX-512 register).
pub const TWIN: usize = 2 * LANES;

/// Two blocks' per-lane values side by side: `a` in lanes `0..LANES`, `b` in the rest.
#[inline(always)]
pub fn join_lanes<T: Copy>(a: &[T; LANES], b: &[T; LANES]) -> [T; TWIN] {
    std::array::from_fn(|l| if l < LANES { a[l] } else { b[l - LANES] })
}

/// Block `half`'s (0 or 1) per-lane values of a [`join_lanes`] pair.
#[inline(always)]
pub fn half_lanes<T: Copy>(x: &[T; TWIN], half: usize) -> [T; LANES] {
    std::array::from_fn(|l| x[half * LANES + l])
}

/// `exp(x)` for every lane, relative error about 2e-7 on [-87, 88]; inputs are clamped
/// to that range (so the result is never inf or 0 for finite x). Any width `W` (a block's
/// [`LANES`], or two blocks in lockstep): each lane's arithmetic is the same.
#[inline(always)]
pub fn exp_lanes<const W: usize>(x: &[f32; W]) -> [f32; W] {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const C1: f32 = 0.693_359_4;
    const C2: f32 = -2.121_944_4e-4;
    const SHIFTER: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    let mut out = [0f32; W];
    for l in 0..W {
        let v = x[l].clamp(-87.0, 88.0);
        let t = v * LOG2E + SHIFTER;
        let n = t - SHIFTER;
        let r = v - n * C1 - n * C2;
        let mut p = 1.987_569_1e-4f32;
        p = p * r + 1.398_199_9e-3;
        p = p * r + 8.333_452e-3;
        p = p * r + 4.166_579_6e-2;
        p = p * r + 1.666_666_5e-1;
        p = p * r + 0.5;
        let e = p * r * r + r + 1.0;
        // 2^n via the exponent bits; n in [-126, 127] after the clamp.
        let ni = t.to_bits() as i32 - 0x4B40_0000;
        let scale = f32::from_bits(((ni + 127) as u32) << 23);
        out[l] = e * scale;
    }
    out
}

/// Compile `$imp` three times (AVX-512, AVX2+FMA, baseline) and dispatch at run time.
/// Every argument must be a plain identifier with a type.
#[macro_export]
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? = $imp:path;) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma,bmi2,popcnt")]
                unsafe fn v512($($arg: $ty),*) $(-> $ret)? { $imp($($arg),*) }
                #[target_feature(enable = "avx2,fma,bmi2,popcnt")]
                unsafe fn v256($($arg: $ty),*) $(-> $ret)? { $imp($($arg),*) }
                if $crate::simd::has_avx512() {
                    // SAFETY: the CPU supports the features v512 was compiled for.
                    return unsafe { v512($($arg),*) };
                }
                if $crate::simd::has_avx2() {
                    // SAFETY: the CPU supports the features v256 was compiled for.
                    return unsafe { v256($($arg),*) };
                }
            }
            $imp($($arg),*)
        }
    };
}

/// Whether the AVX-512 variant may run (and is not disabled by `QBM_SIMD`).
#[cfg(target_arch = "x86_64")]
pub fn has_avx512() -> bool {
    use std::sync::OnceLock;
    static V: OnceLock<bool> = OnceLock::new();
    *V.get_or_init(|| {
        simd_allowed("avx512")
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("bmi2")
            && std::arch::is_x86_feature_detected!("popcnt")
    })
}

/// Whether the AVX2 variant may run (and is not disabled by `QBM_SIMD`).
#[cfg(target_arch = "x86_64")]
pub fn has_avx2() -> bool {
    use std::sync::OnceLock;
    static V: OnceLock<bool> = OnceLock::new();
    *V.get_or_init(|| {
        simd_allowed("avx2")
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("bmi2")
            && std::arch::is_x86_feature_detected!("popcnt")
    })
}

/// `QBM_SIMD=baseline|avx2|avx512` caps the instruction set (for testing and comparison).
#[cfg(target_arch = "x86_64")]
fn simd_allowed(level: &str) -> bool {
    let cap = std::env::var("QBM_SIMD").unwrap_or_default();
    match cap.as_str() {
        "baseline" => false,
        "avx2" => level == "avx2",
        _ => true,
    }
}

/// Name of the variant that runs on this CPU.
pub fn simd_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx512() {
            return "avx512";
        }
        if has_avx2() {
            return "avx2";
        }
    }
    "baseline"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std() {
        let mut x = -87.0f32;
        while x < 88.0 {
            let v: Lane = std::array::from_fn(|l| x + 0.013 * l as f32);
            let e = exp_lanes(&v);
            for l in 0..LANES {
                let want = (v[l] as f64).exp();
                let rel = ((e[l] as f64) - want).abs() / want;
                assert!(rel < 1e-6, "x={} got {} want {}", v[l], e[l], want);
            }
            x += 0.37;
        }
        let big = exp_lanes(&[1e6; LANES]);
        assert!(big[0].is_finite());
        let small = exp_lanes(&[-1e6; LANES]);
        assert!(small[0] > 0.0);
    }
}
