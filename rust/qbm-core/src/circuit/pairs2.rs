//! Two-qubit fusion: gates of a forward run gathered into blocks on at most two qubits,
//! each block with more than one gate multiplied into one 4x4 matrix ([`Op::Mat2`]),
//! applied in one pass over the state (as qsim's fuser does with its default size 2).
//!
//! The greedy pass keeps, per qubit, the last block touching it. A one-qubit gate joins
//! that block (every later block leaves the qubit alone, so moving the gate earlier
//! commutes past nothing it touches). A two-qubit gate joins the last block of both its
//! qubits when that is one block on exactly this pair; otherwise it opens a new block,
//! which takes over the one-qubit-only blocks that were last on either qubit (moved
//! later past blocks that do not touch that qubit). A block of one gate is emitted as
//! that gate; one-qubit blocks go through [`super::fuse`], and so does a two-qubit block
//! whose gates cost fewer passes than one 4x4 pass ([`mat2_passes`]: by precision).

use super::{apply_op, fuse, stride, Op, Real};

/// What one [`Op::Mat2`] pass costs in one-qubit gate passes, per amplitude precision
/// (16 complex products per 4 amplitudes against 4 per pair). At f32 a 4x4 pass measured
/// 2.3-2.6 one-qubit passes at n = 20, and fusing blocks cheaper than 3 passes gained
/// nothing. At f64 the 4x4 pass is relatively cheaper: with 2.0 instead of 3.0 the depth-20
/// brick circuit (blocks of two one-qubit matrices and a CZ, 2.6 passes) runs 1.4-1.9x
/// faster at n = 20-22 and 1.2x at n = 24 (`benches/circuits_large.py`, one thread), the
/// QCBM unchanged (its blocks cost more than 3 either way); 1.5 and 2.5 were no better.
const MAT2_PASSES_F32: f64 = 3.0;
const MAT2_PASSES_F64: f64 = 2.0;

/// [`MAT2_PASSES_F64`] for f64 amplitudes (`wide`), [`MAT2_PASSES_F32`] otherwise.
fn mat2_passes(wide: bool) -> f64 {
    if wide {
        MAT2_PASSES_F64
    } else {
        MAT2_PASSES_F32
    }
}

/// Gate passes of a gate list in one-qubit units (a controlled gate touches half the pairs).
fn passes(ops: &[Op], mat2: f64) -> f64 {
    ops.iter()
        .map(|o| match o {
            Op::Rot { .. } | Op::Mat { .. } => 1.0,
            Op::Mat2 { .. } => mat2,
            _ => 0.6,
        })
        .sum()
}

struct Block {
    qs: [usize; 2],
    two: bool,
    ops: Vec<Op>,
    alive: bool,
}

/// `ops` (on `n` qubits, angles resolved) with two-qubit blocks fused, for f64 amplitudes
/// when `wide` (else f32).
pub(crate) fn fuse_pairs(n: usize, ops: &[Op], angles: &[f64], wide: bool) -> Vec<Op> {
    let mat2 = mat2_passes(wide);
    let mut blocks: Vec<Block> = Vec::new();
    let mut last: Vec<Option<usize>> = vec![None; n];
    for op in ops {
        match op.qubits() {
            ([q, _], 1) => match last[q] {
                Some(b) => blocks[b].ops.push(*op),
                None => {
                    last[q] = Some(blocks.len());
                    blocks.push(Block {
                        qs: [q, q],
                        two: false,
                        ops: vec![*op],
                        alive: true,
                    });
                }
            },
            ([a, b], _) => {
                if let (Some(x), Some(y)) = (last[a], last[b]) {
                    if x == y && blocks[x].two {
                        blocks[x].ops.push(*op);
                        continue;
                    }
                }
                let mut taken = Vec::new();
                for q in [a, b] {
                    if let Some(x) = last[q] {
                        if !blocks[x].two {
                            blocks[x].alive = false;
                            taken.append(&mut blocks[x].ops);
                        }
                    }
                }
                taken.push(*op);
                last[a] = Some(blocks.len());
                last[b] = Some(blocks.len());
                blocks.push(Block {
                    qs: [a, b],
                    two: true,
                    ops: taken,
                    alive: true,
                });
            }
        }
    }
    let mut out = Vec::with_capacity(blocks.len());
    for blk in blocks.into_iter().filter(|b| b.alive) {
        if blk.ops.len() == 1 {
            out.push(blk.ops[0]);
            continue;
        }
        let single = fuse(&blk.ops, angles);
        if blk.two && passes(&single, mat2) > mat2 {
            out.push(Op::Mat2 {
                a: blk.qs[0],
                b: blk.qs[1],
                m: block_matrix(&blk.qs, &blk.ops, angles),
            });
        } else {
            out.extend(single);
        }
    }
    out
}

/// The 4x4 matrix of `ops` on qubits (a, b), basis |x_a x_b> (x_a more significant):
/// entry (r, c) at `8 r + 2 c` (re, im). Columns are the ops run on basis states of a
/// two-qubit register with a as qubit 0 and b as qubit 1.
fn block_matrix(qs: &[usize; 2], ops: &[Op], angles: &[f64]) -> [f64; 32] {
    let local = |q: usize| if q == qs[0] { 0 } else { 1 };
    let mapped: Vec<Op> = ops.iter().map(|o| o.remap(local)).collect();
    let mut m = [0.0f64; 32];
    for c in 0..4 {
        let (mut re, mut im) = ([0.0f64; 4], [0.0f64; 4]);
        re[c] = 1.0;
        for op in &mapped {
            apply_op(2, op, angles, &mut re, &mut im, false);
        }
        for r in 0..4 {
            m[8 * r + 2 * c] = re[r];
            m[8 * r + 2 * c + 1] = im[r];
        }
    }
    m
}

/// `U^dag` of a 4x4 matrix in the layout of [`Op::Mat2`].
#[inline(always)]
pub(crate) fn dagger2(m: &[f64; 32]) -> [f64; 32] {
    let mut out = [0.0f64; 32];
    for r in 0..4 {
        for c in 0..4 {
            out[8 * r + 2 * c] = m[8 * c + 2 * r];
            out[8 * r + 2 * c + 1] = -m[8 * c + 2 * r + 1];
        }
    }
    out
}

/// Apply the 4x4 matrix `m` on qubits (a, b) of an `n`-qubit state.
#[inline(always)]
pub(crate) fn matrix2<R: Real>(
    n: usize,
    re: &mut [R],
    im: &mut [R],
    a: usize,
    b: usize,
    m: &[f64; 32],
) {
    let m = &m.map(R::of);
    let (sa, sb) = (stride(n, a), stride(n, b));
    let (hi, lo) = (sa.max(sb), sa.min(sb));
    let d = re.len();
    // offsets of |x_a x_b> = 01, 10
    let (o1, o2) = (sb, sa);
    if lo < LOW_BELOW && d >= LANES {
        // the lower stride inside one vector: constant shuffles (`in_register`, `low_split`)
        let swap = o1 != lo; // the quad's second amplitude (x_a x_b = 01) at the higher stride
        macro_rules! both {
            ($(($l:literal, $h:literal)),*) => {
                match (lo, hi, swap) {
                    $(($l, $h, false) => return in_register::<R, $l, $h, false>(re, im, m),
                      ($l, $h, true) => return in_register::<R, $l, $h, true>(re, im, m),)*
                    _ => {}
                }
            };
        }
        both!((1, 2), (1, 4), (1, 8), (2, 4), (2, 8), (4, 8));
        macro_rules! split {
            ($($l:literal),*) => {
                match (lo, swap) {
                    $(($l, false) => return low_split::<R, $l, false>(re, im, hi, m),
                      ($l, true) => return low_split::<R, $l, true>(re, im, hi, m),)*
                    _ => unreachable!("strides are distinct powers of two"),
                }
            };
        }
        split!(1, 2, 4, 8);
    }
    #[cfg(target_arch = "x86_64")]
    if crate::simd::has_avx512() && runs_avx512(re, im, lo, hi, [0, o1, o2, o1 + o2], m) {
        return;
    }
    let mut outer = 0;
    while outer < d {
        let mut mid = outer;
        while mid < outer + hi {
            // SAFETY: mid + o1 + o2 + lo <= d, and the four runs [mid + o, mid + o + lo)
            // for o in {0, o1, o2, o1 + o2} are disjoint (lo <= min(o1, o2)).
            unsafe {
                quads(
                    re.as_mut_ptr(),
                    im.as_mut_ptr(),
                    mid,
                    lo,
                    [0, o1, o2, o1 + o2],
                    m,
                )
            };
            mid += 2 * lo;
        }
        outer += 2 * hi;
    }
}

/// Amplitudes per vector block of the low-stride kernels: 16 (one AVX-512 register of
/// f32, two of f64).
const LANES: usize = 16;

/// Per column j of a 4x4 matrix, one value per lane.
type Lanes4<R> = [[R; LANES]; 4];

/// [`matrix2`] takes the low-stride kernels when the lower stride is below this: there a
/// run of quads is shorter than half a vector and the run loop falls to scalar or 128-bit
/// code (perf, n = 24, f32 QCBM forward: the pairs among the three lowest qubits took 45%
/// of the 4x4 time). Probe at n = 20-22, one thread: pairs with lower stride 1 or 2 run
/// 1.7-2.3x faster in them; with stride 8 the run loop is faster (f32 and f64).
const LOW_BELOW: usize = 8;

/// Canonical position (bit 0: the lower-stride bit, bit 1: the higher) of the quad's
/// amplitude `k` (matrix index: bit 0 is qubit b, bit 1 qubit a); an involution.
#[inline(always)]
const fn position<const SWAP: bool>(k: usize) -> usize {
    if SWAP && (k == 1 || k == 2) {
        3 - k
    } else {
        k
    }
}

/// One 4x4 product on vectors whose lanes are amplitudes: `src(j)` gives, for every lane,
/// the quad's amplitude in column j (re, im), `c*[j]` the matrix entries of each lane's row.
/// The accumulation runs over the columns in order with [`mul4`]'s operations: the same bits.
#[inline(always)]
fn columns<R: Real>(
    src: impl Fn(usize) -> ([R; LANES], [R; LANES]),
    cr: &Lanes4<R>,
    nci: &Lanes4<R>,
    ci: &Lanes4<R>,
) -> ([R; LANES], [R; LANES]) {
    let mut ar = [R::default(); LANES];
    let mut ai = [R::default(); LANES];
    for j in 0..4 {
        let (sr, si) = src(j);
        for l in 0..LANES {
            ar[l] = cr[j][l].mul_add(sr[l], nci[j][l].mul_add(si[l], ar[l]));
            ai[l] = cr[j][l].mul_add(si[l], ci[j][l].mul_add(sr[l], ai[l]));
        }
    }
    (ar, ai)
}

/// Per lane and column j: the entries of `m` in the row of the lane's quad amplitude, `row(l)`.
#[inline(always)]
fn coefficients<R: Real>(
    m: &[R; 32],
    row: impl Fn(usize) -> usize,
) -> (Lanes4<R>, Lanes4<R>, Lanes4<R>) {
    let cr = std::array::from_fn(|j| std::array::from_fn(|l| m[8 * row(l) + 2 * j]));
    let ci: Lanes4<R> = std::array::from_fn(|j| std::array::from_fn(|l| m[8 * row(l) + 2 * j + 1]));
    let nci = ci.map(|c| c.map(|v| -v));
    (cr, nci, ci)
}

/// [`matrix2`] with both strides below [`LANES`]: each block of 16 amplitudes holds whole
/// quads; column j of every lane's quad is a constant shuffle of the block.
#[inline(always)]
fn in_register<R: Real, const LO: usize, const HI: usize, const SWAP: bool>(
    re: &mut [R],
    im: &mut [R],
    m: &[R; 32],
) {
    let canon = |l: usize| ((l & LO != 0) as usize) | (((l & HI != 0) as usize) << 1);
    let (cr, nci, ci) = coefficients(m, |l| position::<SWAP>(canon(l)));
    let lane = |l: usize, j: usize| {
        let p = position::<SWAP>(j);
        (l & !(LO | HI)) | if p & 1 != 0 { LO } else { 0 } | if p & 2 != 0 { HI } else { 0 }
    };
    #[cfg(target_arch = "x86_64")]
    if crate::simd::has_avx512() {
        let table: [[usize; LANES]; 4] =
            std::array::from_fn(|j| std::array::from_fn(|l| lane(l, j)));
        if in_register_avx512(re, im, &cr, &nci, &ci, &table) {
            return;
        }
    }
    for (br, bi) in re.chunks_exact_mut(LANES).zip(im.chunks_exact_mut(LANES)) {
        let xr: [R; LANES] = (&*br).try_into().unwrap();
        let xi: [R; LANES] = (&*bi).try_into().unwrap();
        let src = |j: usize| {
            (
                std::array::from_fn(|l| xr[lane(l, j)]),
                std::array::from_fn(|l| xi[lane(l, j)]),
            )
        };
        let (yr, yi) = columns(src, &cr, &nci, &ci);
        br.copy_from_slice(&yr);
        bi.copy_from_slice(&yi);
    }
}

/// [`in_register`]'s loop with explicit AVX-512 lane permutes (`table[j][l]`: the lane of
/// the block holding column j of lane l's quad), for f32 and f64 amplitudes (false for
/// another type: the caller then runs the portable loop). The same operations per lane as
/// [`columns`] (fused multiply-adds in its order): the same bits. The portable loop is
/// compiled by LLVM into gather instructions for these shuffles (perf: `vgatherqps` on
/// the f32 pair on the two lowest qubits, 5x the time of a pair on high qubits).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn in_register_avx512<R: Real>(
    re: &mut [R],
    im: &mut [R],
    cr: &Lanes4<R>,
    nci: &Lanes4<R>,
    ci: &Lanes4<R>,
    table: &[[usize; LANES]; 4],
) -> bool {
    use std::any::TypeId;
    let d = re.len();
    assert!(im.len() == d && d.is_multiple_of(LANES));
    let cast = |c: &Lanes4<R>| -> [[f64; LANES]; 4] { c.map(|v| v.map(|x| x.wide())) };
    if TypeId::of::<R>() == TypeId::of::<f32>() {
        let narrow = |c: &Lanes4<R>| cast(c).map(|v| v.map(|x| x as f32));
        // SAFETY: R is f32 (same layout); the CPU has AVX-512F (checked by the caller);
        // both planes hold d values, a multiple of LANES.
        unsafe {
            let (r, i) = (re.as_mut_ptr() as *mut f32, im.as_mut_ptr() as *mut f32);
            quads16_f32(r, i, d, &narrow(cr), &narrow(nci), &narrow(ci), table);
        }
        return true;
    }
    if TypeId::of::<R>() == TypeId::of::<f64>() {
        // SAFETY: R is f64; as above.
        unsafe {
            let (r, i) = (re.as_mut_ptr() as *mut f64, im.as_mut_ptr() as *mut f64);
            quads16_f64(r, i, d, &cast(cr), &cast(nci), &cast(ci), table);
        }
        return true;
    }
    false
}

/// The 4x4 pass of [`in_register`] on f32 planes: per block of [`LANES`] amplitudes (one
/// register), column j's amplitudes by one permute per plane, accumulated as [`columns`] does.
///
/// # Safety
/// AVX-512F present; `re` and `im` hold `d` values, a multiple of [`LANES`]; table entries < LANES.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn quads16_f32(
    re: *mut f32,
    im: *mut f32,
    d: usize,
    cr: &[[f32; LANES]; 4],
    nci: &[[f32; LANES]; 4],
    ci: &[[f32; LANES]; 4],
    table: &[[usize; LANES]; 4],
) {
    use std::arch::x86_64::*;
    let idx: [__m512i; 4] = std::array::from_fn(|j| {
        let t: [i32; LANES] = std::array::from_fn(|l| table[j][l] as i32);
        _mm512_loadu_si512(t.as_ptr() as *const _)
    });
    let ld = |a: &[f32; LANES]| _mm512_loadu_ps(a.as_ptr());
    let (c, n, s): ([__m512; 4], [__m512; 4], [__m512; 4]) = (
        std::array::from_fn(|j| ld(&cr[j])),
        std::array::from_fn(|j| ld(&nci[j])),
        std::array::from_fn(|j| ld(&ci[j])),
    );
    let mut b = 0;
    while b < d {
        let xr = _mm512_loadu_ps(re.add(b));
        let xi = _mm512_loadu_ps(im.add(b));
        let mut ar = _mm512_setzero_ps();
        let mut ai = _mm512_setzero_ps();
        for j in 0..4 {
            let sr = _mm512_permutexvar_ps(idx[j], xr);
            let si = _mm512_permutexvar_ps(idx[j], xi);
            ar = _mm512_fmadd_ps(c[j], sr, _mm512_fmadd_ps(n[j], si, ar));
            ai = _mm512_fmadd_ps(c[j], si, _mm512_fmadd_ps(s[j], sr, ai));
        }
        _mm512_storeu_ps(re.add(b), ar);
        _mm512_storeu_ps(im.add(b), ai);
        b += LANES;
    }
}

/// [`quads16_f32`] for f64: a block of 16 is two registers per plane.
///
/// # Safety
/// As [`quads16_f32`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn quads16_f64(
    re: *mut f64,
    im: *mut f64,
    d: usize,
    cr: &[[f64; LANES]; 4],
    nci: &[[f64; LANES]; 4],
    ci: &[[f64; LANES]; 4],
    table: &[[usize; LANES]; 4],
) {
    use std::arch::x86_64::*;
    // per column j and half h (output lanes 8h..8h+8): indices into the 16 lanes of two registers
    let idx: [[__m512i; 2]; 4] = std::array::from_fn(|j| {
        std::array::from_fn(|h| {
            let t: [i64; 8] = std::array::from_fn(|l| table[j][8 * h + l] as i64);
            _mm512_loadu_si512(t.as_ptr() as *const _)
        })
    });
    let ld = |a: &[f64; LANES], h: usize| _mm512_loadu_pd(a.as_ptr().add(8 * h));
    let coef = |a: &[[f64; LANES]; 4]| -> [[__m512d; 2]; 4] {
        std::array::from_fn(|j| std::array::from_fn(|h| ld(&a[j], h)))
    };
    let (c, n, s) = (coef(cr), coef(nci), coef(ci));
    let mut b = 0;
    while b < d {
        let (r0, r1) = (_mm512_loadu_pd(re.add(b)), _mm512_loadu_pd(re.add(b + 8)));
        let (i0, i1) = (_mm512_loadu_pd(im.add(b)), _mm512_loadu_pd(im.add(b + 8)));
        for h in 0..2 {
            let mut ar = _mm512_setzero_pd();
            let mut ai = _mm512_setzero_pd();
            for j in 0..4 {
                let sr = _mm512_permutex2var_pd(r0, idx[j][h], r1);
                let si = _mm512_permutex2var_pd(i0, idx[j][h], i1);
                ar = _mm512_fmadd_pd(c[j][h], sr, _mm512_fmadd_pd(n[j][h], si, ar));
                ai = _mm512_fmadd_pd(c[j][h], si, _mm512_fmadd_pd(s[j][h], sr, ai));
            }
            _mm512_storeu_pd(re.add(b + 8 * h), ar);
            _mm512_storeu_pd(im.add(b + 8 * h), ai);
        }
        b += LANES;
    }
}

/// [`matrix2`] with the lower stride LO below [`LANES`] and `hi` >= [`LANES`]: blocks of 16
/// at b and b + hi; column j of a lane's quad is a constant shuffle of one of the two.
#[inline(always)]
fn low_split<R: Real, const LO: usize, const SWAP: bool>(
    re: &mut [R],
    im: &mut [R],
    hi: usize,
    m: &[R; 32],
) {
    let d = re.len();
    assert!(im.len() == d && hi >= LANES && 2 * hi <= d);
    let lob = |l: usize| (l & LO != 0) as usize;
    let (c0r, n0i, c0i) = coefficients(m, |l| position::<SWAP>(lob(l)));
    let (c1r, n1i, c1i) = coefficients(m, |l| position::<SWAP>(lob(l) | 2));
    let lane = |l: usize, p: usize| (l & !LO) | if p & 1 != 0 { LO } else { 0 };
    let mut outer = 0;
    while outer < d {
        let (lower, upper) = re[outer..outer + 2 * hi].split_at_mut(hi);
        let (loweri, upperi) = im[outer..outer + 2 * hi].split_at_mut(hi);
        let blocks = lower
            .chunks_exact_mut(LANES)
            .zip(upper.chunks_exact_mut(LANES))
            .zip(
                loweri
                    .chunks_exact_mut(LANES)
                    .zip(upperi.chunks_exact_mut(LANES)),
            );
        for ((b0r, b1r), (b0i, b1i)) in blocks {
            let x: [([R; LANES], [R; LANES]); 2] = [
                ((&*b0r).try_into().unwrap(), (&*b0i).try_into().unwrap()),
                ((&*b1r).try_into().unwrap(), (&*b1i).try_into().unwrap()),
            ];
            let src = |j: usize| {
                let p = position::<SWAP>(j);
                let (vr, vi) = &x[p >> 1];
                (
                    std::array::from_fn(|l| vr[lane(l, p)]),
                    std::array::from_fn(|l| vi[lane(l, p)]),
                )
            };
            let (y0r, y0i) = columns(src, &c0r, &n0i, &c0i);
            let (y1r, y1i) = columns(src, &c1r, &n1i, &c1i);
            b0r.copy_from_slice(&y0r);
            b0i.copy_from_slice(&y0i);
            b1r.copy_from_slice(&y1r);
            b1i.copy_from_slice(&y1i);
        }
        outer += 2 * hi;
    }
}

/// The run loop of [`matrix2`] (lower stride `lo`, higher `hi`, quad offsets `off`) with
/// explicit AVX-512 code, for f64 with `lo` a multiple of 8 and f32 with `lo` a multiple
/// of 16 (false otherwise: the caller runs the portable loop). Two registers of each quad
/// amplitude are held (16 registers) and each row's 8 entries are broadcast once for both.
/// The same operations per amplitude as [`mul4`]: the same bits. Probe (a 2^16-amplitude
/// state, one thread): f32 at high strides 0.22-0.25 -> 0.15-0.20 ns per amplitude (about
/// 75-95% of the multiply-add peak), f64 0.28-0.31 ns either way (within the VM's noise);
/// in the circuits (same-process A/B, n = 20-24) f32 QCBM 0.86-0.94x the time, f64 and the
/// brick circuit 0.94-0.98x. A 256-bit twin for f32 runs of 8 was 2.2x faster in the
/// probe but 1.1-1.2x slower on the n = 20 f32 QCBM forward (unexplained), so those runs
/// keep the portable loop.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn runs_avx512<R: Real>(
    re: &mut [R],
    im: &mut [R],
    lo: usize,
    hi: usize,
    off: [usize; 4],
    m: &[R; 32],
) -> bool {
    use std::any::TypeId;
    let d = re.len();
    assert!(im.len() == d && off[3] + lo <= 2 * hi && (2 * hi).is_multiple_of(2 * lo));
    assert!(d.is_multiple_of(2 * hi));
    let wide = m.map(|v| v.wide());
    if TypeId::of::<R>() == TypeId::of::<f64>() && lo.is_multiple_of(8) {
        // SAFETY: R is f64; the CPU has AVX-512F (checked by the caller); every run
        // [base + off[k], base + off[k] + lo) lies inside the planes of d values.
        unsafe {
            let (r, i) = (re.as_mut_ptr() as *mut f64, im.as_mut_ptr() as *mut f64);
            runs_f64(r, i, d, lo, hi, off, &wide);
        }
        return true;
    }
    if TypeId::of::<R>() == TypeId::of::<f32>() && lo.is_multiple_of(16) {
        let narrow = wide.map(|v| v as f32);
        // SAFETY: R is f32; as above.
        unsafe {
            let (r, i) = (re.as_mut_ptr() as *mut f32, im.as_mut_ptr() as *mut f32);
            runs_f32(r, i, d, lo, hi, off, &narrow);
        }
        return true;
    }
    false
}

/// [`runs_avx512`]'s kernels, one per precision: `$w` amplitudes per register.
macro_rules! runs_kernel {
    ($name:ident, $t:ty, $v:ty, $w:literal, $load:ident, $store:ident, $set1:ident, $zero:ident,
     $fmadd:ident, $fnmadd:ident) => {
        /// # Safety
        /// AVX-512F present; both planes hold `d` values; `lo` a multiple of the register
        /// width; the runs of [`matrix2`]'s loop lie inside the planes.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        unsafe fn $name(
            re: *mut $t,
            im: *mut $t,
            d: usize,
            lo: usize,
            hi: usize,
            off: [usize; 4],
            m: &[$t; 32],
        ) {
            use std::arch::x86_64::*;
            // `H` registers per quad amplitude and plane; per row, the row's entries
            // broadcast once, then the accumulation of [`mul4`] for every register
            #[inline(always)]
            unsafe fn step<const H: usize>(re: *mut $t, im: *mut $t, at: [usize; 4], m: &[$t; 32]) {
                let xr: [[$v; H]; 4] =
                    std::array::from_fn(|k| std::array::from_fn(|h| $load(re.add(at[k] + $w * h))));
                let xi: [[$v; H]; 4] =
                    std::array::from_fn(|k| std::array::from_fn(|h| $load(im.add(at[k] + $w * h))));
                for row in 0..4 {
                    let mut ar = [$zero(); H];
                    let mut ai = [$zero(); H];
                    for k in 0..4 {
                        let mr = $set1(m[8 * row + 2 * k]);
                        let mi = $set1(m[8 * row + 2 * k + 1]);
                        for h in 0..H {
                            ar[h] = $fmadd(mr, xr[k][h], $fnmadd(mi, xi[k][h], ar[h]));
                            ai[h] = $fmadd(mr, xi[k][h], $fmadd(mi, xr[k][h], ai[h]));
                        }
                    }
                    for h in 0..H {
                        $store(re.add(at[row] + $w * h), ar[h]);
                        $store(im.add(at[row] + $w * h), ai[h]);
                    }
                }
            }
            let mut outer = 0;
            while outer < d {
                let mut mid = outer;
                while mid < outer + hi {
                    let mut j = 0;
                    while j + 2 * $w <= lo {
                        step::<2>(re, im, off.map(|o| mid + o + j), m);
                        j += 2 * $w;
                    }
                    if j < lo {
                        step::<1>(re, im, off.map(|o| mid + o + j), m);
                    }
                    mid += 2 * lo;
                }
                outer += 2 * hi;
            }
        }
    };
}

runs_kernel!(
    runs_f64,
    f64,
    __m512d,
    8,
    _mm512_loadu_pd,
    _mm512_storeu_pd,
    _mm512_set1_pd,
    _mm512_setzero_pd,
    _mm512_fmadd_pd,
    _mm512_fnmadd_pd
);
runs_kernel!(
    runs_f32,
    f32,
    __m512,
    16,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_set1_ps,
    _mm512_setzero_ps,
    _mm512_fmadd_ps,
    _mm512_fnmadd_ps
);

#[inline(always)]
fn mul4<R: Real>(m: &[R; 32], xr: &[R; 4], xi: &[R; 4]) -> ([R; 4], [R; 4]) {
    let mut yr = [R::default(); 4];
    let mut yi = [R::default(); 4];
    for row in 0..4 {
        let mut ar = R::default();
        let mut ai = R::default();
        for k in 0..4 {
            let (mr, mi) = (m[8 * row + 2 * k], m[8 * row + 2 * k + 1]);
            ar = mr.mul_add(xr[k], (-mi).mul_add(xi[k], ar));
            ai = mr.mul_add(xi[k], mi.mul_add(xr[k], ai));
        }
        yr[row] = ar;
        yi[row] = ai;
    }
    (yr, yi)
}

#[inline(always)]
unsafe fn quads<R: Real>(
    re: *mut R,
    im: *mut R,
    base: usize,
    len: usize,
    off: [usize; 4],
    m: &[R; 32],
) {
    let r = |k: usize| std::slice::from_raw_parts_mut(re.add(base + off[k]), len);
    let i = |k: usize| std::slice::from_raw_parts_mut(im.add(base + off[k]), len);
    quad_runs(r(0), r(1), r(2), r(3), i(0), i(1), i(2), i(3), m);
}

/// The 4x4 product on runs of quads held in eight disjoint slices (distinct `&mut`
/// parameters: the compiler may assume they do not alias, and vectorises across j).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn quad_runs<R: Real>(
    r0: &mut [R],
    r1: &mut [R],
    r2: &mut [R],
    r3: &mut [R],
    i0: &mut [R],
    i1: &mut [R],
    i2: &mut [R],
    i3: &mut [R],
    m: &[R; 32],
) {
    let len = r0.len();
    let (r1, r2, r3) = (&mut r1[..len], &mut r2[..len], &mut r3[..len]);
    let (i0, i1, i2, i3) = (
        &mut i0[..len],
        &mut i1[..len],
        &mut i2[..len],
        &mut i3[..len],
    );
    for j in 0..len {
        let xr = [r0[j], r1[j], r2[j], r3[j]];
        let xi = [i0[j], i1[j], i2[j], i3[j]];
        let (yr, yi) = mul4(m, &xr, &xi);
        r0[j] = yr[0];
        r1[j] = yr[1];
        r2[j] = yr[2];
        r3[j] = yr[3];
        i0[j] = yi[0];
        i1[j] = yi[1];
        i2[j] = yi[2];
        i3[j] = yi[3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Xoshiro256pp;

    /// [`matrix2`] against the plain loop over every quad (the arithmetic of [`mul4`]),
    /// bit for bit: the in-register, split and run kernels on every pair of qubits, both
    /// orders, at f64 and f32.
    fn same_bits<R: Real>(n: usize, seed: u64) {
        let mut rng = Xoshiro256pp::stream(seed, 0, 0);
        let d = 1usize << n;
        let mut u = || rng.next_f64() - 0.5;
        let m: [f64; 32] = std::array::from_fn(|_| u());
        let re0: Vec<R> = (0..d).map(|_| R::of(u())).collect();
        let im0: Vec<R> = (0..d).map(|_| R::of(u())).collect();
        let mr = m.map(R::of);
        for a in 0..n {
            for b in 0..n {
                if a == b {
                    continue;
                }
                let (mut re, mut im) = (re0.clone(), im0.clone());
                matrix2(n, &mut re, &mut im, a, b, &m);
                let (mut wr, mut wi) = (re0.clone(), im0.clone());
                let (sa, sb) = (stride(n, a), stride(n, b));
                for i in (0..d).filter(|i| i & (sa | sb) == 0) {
                    let idx = [i, i + sb, i + sa, i + sa + sb];
                    let (yr, yi) = mul4(&mr, &idx.map(|j| wr[j]), &idx.map(|j| wi[j]));
                    for k in 0..4 {
                        wr[idx[k]] = yr[k];
                        wi[idx[k]] = yi[k];
                    }
                }
                assert!(re == wr && im == wi, "n {n}, qubits ({a}, {b})");
            }
        }
    }

    #[test]
    fn matrix2_equals_the_plain_quad_loop_bit_for_bit() {
        for (n, seed) in [(2, 1u64), (3, 2), (4, 3), (5, 4), (8, 5)] {
            same_bits::<f64>(n, seed);
            same_bits::<f32>(n, seed);
        }
    }
}
