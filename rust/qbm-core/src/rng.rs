//! Random number generators.
//!
//! Every chain owns a stream derived from `(seed, stream, index)` by SplitMix64,
//! so results do not depend on how chains are spread over threads.
//! [`Xoshiro256pp`] is the scalar generator (orders, swaps, initial states);
//! [`LaneRng`] runs one xoshiro128+ per SIMD lane so that a block of chains draws
//! its uniforms in one vectorised step.

use crate::simd::{half_lanes, join_lanes, LANES, TWIN};

/// SplitMix64 step: a good 64-bit mixer used for seeding.
#[inline]
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Derive a 64-bit stream key from a user seed, a stream tag and an index.
pub fn stream_key(seed: u64, tag: u64, index: u64) -> u64 {
    let mut s = seed ^ 0x5851_F42D_4C95_7F2D;
    let a = splitmix64(&mut s);
    let mut t = a ^ tag.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let b = splitmix64(&mut t);
    let mut u = b ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03);
    splitmix64(&mut u)
}

/// Stream tags, so that different uses of the same `(seed, index)` never share numbers.
pub mod tags {
    pub const CHAIN: u64 = 1;
    pub const ORDER: u64 = 2;
    pub const SWAP: u64 = 3;
    pub const WORLDLINE: u64 = 4;
    pub const REPLICA: u64 = 5;
    pub const CIRCUIT: u64 = 6;
    pub const ANNEAL: u64 = 7;
}

/// xoshiro256++ (Blackman & Vigna), scalar.
#[derive(Clone, Debug)]
pub struct Xoshiro256pp {
    s: [u64; 4],
}

impl Xoshiro256pp {
    /// Seed from a 64-bit key via SplitMix64.
    pub fn from_key(key: u64) -> Self {
        let mut st = key;
        let mut s = [0u64; 4];
        for x in s.iter_mut() {
            *x = splitmix64(&mut st);
        }
        if s.iter().all(|&x| x == 0) {
            s[0] = 1;
        }
        Self { s }
    }

    /// Generator for `(seed, tag, index)`.
    pub fn stream(seed: u64, tag: u64, index: u64) -> Self {
        Self::from_key(stream_key(seed, tag, index))
    }

    /// Next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1) with 53 random bits.
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [0, n) (Lemire's multiply-shift, unbiased enough for n << 2^32).
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// One xoshiro128+ generator per SIMD lane, stored lane-minor so that a step of all
/// lanes is a handful of vector instructions. `W` lanes: [`LANES`] for a block; twice
/// that for two blocks run in lockstep ([`LaneRng::twin`]), whose lanes draw exactly what
/// each block's own generator draws.
#[derive(Clone, Debug)]
pub struct LaneRng<const W: usize = LANES> {
    s0: [u32; W],
    s1: [u32; W],
    s2: [u32; W],
    s3: [u32; W],
}

impl LaneRng<LANES> {
    /// The generators of two blocks side by side: lanes `0..LANES` are `a`'s, the rest
    /// `b`'s ([`LaneRng::split`] gives them back).
    pub fn twin(a: &Self, b: &Self) -> LaneRng<TWIN> {
        LaneRng {
            s0: join_lanes(&a.s0, &b.s0),
            s1: join_lanes(&a.s1, &b.s1),
            s2: join_lanes(&a.s2, &b.s2),
            s3: join_lanes(&a.s3, &b.s3),
        }
    }
}

impl LaneRng<TWIN> {
    /// The two blocks' generators of a [`LaneRng::twin`].
    pub fn split(&self) -> (LaneRng, LaneRng) {
        let part = |h| LaneRng {
            s0: half_lanes(&self.s0, h),
            s1: half_lanes(&self.s1, h),
            s2: half_lanes(&self.s2, h),
            s3: half_lanes(&self.s3, h),
        };
        (part(0), part(1))
    }
}

impl<const W: usize> LaneRng<W> {
    /// Lane `l` is seeded from `keys[l]` (one key per chain).
    pub fn from_keys(keys: &[u64; W]) -> Self {
        let mut r = Self {
            s0: [0; W],
            s1: [0; W],
            s2: [0; W],
            s3: [0; W],
        };
        for (l, &k) in keys.iter().enumerate() {
            let mut st = k;
            let a = splitmix64(&mut st);
            let b = splitmix64(&mut st);
            r.s0[l] = a as u32;
            r.s1[l] = (a >> 32) as u32;
            r.s2[l] = b as u32;
            r.s3[l] = (b >> 32) as u32 | 1;
        }
        r
    }

    /// Raw 32-bit outputs of every lane.
    #[inline(always)]
    pub fn next_u32(&mut self) -> [u32; W] {
        let mut out = [0u32; W];
        for l in 0..W {
            let result = self.s0[l].wrapping_add(self.s3[l]);
            let t = self.s1[l] << 9;
            self.s2[l] ^= self.s0[l];
            self.s3[l] ^= self.s1[l];
            self.s1[l] ^= self.s2[l];
            self.s0[l] ^= self.s3[l];
            self.s2[l] ^= t;
            self.s3[l] = self.s3[l].rotate_left(11);
            out[l] = result;
        }
        out
    }

    /// Uniforms in [0, 1) with 24 random bits (the top bits of xoshiro128+).
    #[inline(always)]
    pub fn next_f32(&mut self) -> [f32; W] {
        let r = self.next_u32();
        let mut u = [0f32; W];
        for l in 0..W {
            u[l] = ((r[l] >> 8) as i32) as f32 * (1.0 / 16_777_216.0);
        }
        u
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_differ_and_repeat() {
        let mut a = Xoshiro256pp::stream(7, tags::CHAIN, 0);
        let mut b = Xoshiro256pp::stream(7, tags::CHAIN, 1);
        let mut c = Xoshiro256pp::stream(7, tags::CHAIN, 0);
        let va: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let vb: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let vc: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_ne!(va, vb);
        assert_eq!(va, vc);
    }

    #[test]
    fn lane_uniforms_have_right_mean() {
        let keys: [u64; LANES] = std::array::from_fn(|l| stream_key(3, tags::CHAIN, l as u64));
        let mut r = LaneRng::from_keys(&keys);
        let mut sum = 0.0f64;
        let m = 20000;
        for _ in 0..m {
            for u in r.next_f32() {
                assert!((0.0..1.0).contains(&u));
                sum += u as f64;
            }
        }
        let mean = sum / (m * LANES) as f64;
        // sd of the mean: sqrt(1/12 / (m*LANES)) ~ 0.0007
        assert!((mean - 0.5).abs() < 0.005, "mean {mean}");
    }
}
