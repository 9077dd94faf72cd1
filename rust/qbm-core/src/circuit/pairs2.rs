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
//! whose gates cost fewer passes than one 4x4 pass ([`MAT2_PASSES`]).

use super::{apply_op, fuse, stride, Op, Real};

/// What one [`Op::Mat2`] pass costs in one-qubit gate passes (16 complex products per 4
/// amplitudes against 4 per pair: bound by arithmetic where a 2x2 pass is bound by loads
/// and stores; measured 2.3-2.6 at n = 20 on the machine of `benches/circuits_large.py`).
const MAT2_PASSES: f64 = 3.0;

/// Gate passes of a gate list in one-qubit units (a controlled gate touches half the pairs).
fn passes(ops: &[Op]) -> f64 {
    ops.iter()
        .map(|o| match o {
            Op::Rot { .. } | Op::Mat { .. } => 1.0,
            Op::Mat2 { .. } => MAT2_PASSES,
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

/// `ops` (on `n` qubits, angles resolved) with two-qubit blocks fused.
pub(crate) fn fuse_pairs(n: usize, ops: &[Op], angles: &[f64]) -> Vec<Op> {
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
        if blk.two && passes(&single) > MAT2_PASSES {
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
    if hi < 8 {
        // both qubits among the three lowest: whole groups of 2 hi amplitudes at once
        return match (hi, lo) {
            (2, 1) => small_quads::<R, 4, 1, 2>(re, im, [0, o1, o2, o1 + o2], m),
            (4, 1) => small_quads::<R, 8, 1, 4>(re, im, [0, o1, o2, o1 + o2], m),
            (4, 2) => small_quads::<R, 8, 2, 4>(re, im, [0, o1, o2, o1 + o2], m),
            _ => unreachable!("strides are distinct powers of two"),
        };
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

/// [`matrix2`] for `hi` = HI < 8: every group of `W = 2 HI` amplitudes holds `W / 4`
/// quads; fixed-size groups let the compiler vectorise across groups.
#[inline(always)]
fn small_quads<R: Real, const W: usize, const LO: usize, const HI: usize>(
    re: &mut [R],
    im: &mut [R],
    off: [usize; 4],
    m: &[R; 32],
) {
    for (cr, ci) in re.chunks_exact_mut(W).zip(im.chunks_exact_mut(W)) {
        let cr: &mut [R; W] = cr.try_into().unwrap();
        let ci: &mut [R; W] = ci.try_into().unwrap();
        for j in 0..W {
            // quad bases: both bits 0
            if j & (LO | HI) != 0 {
                continue;
            }
            let xr = [
                cr[j + off[0]],
                cr[j + off[1]],
                cr[j + off[2]],
                cr[j + off[3]],
            ];
            let xi = [
                ci[j + off[0]],
                ci[j + off[1]],
                ci[j + off[2]],
                ci[j + off[3]],
            ];
            let (yr, yi) = mul4(m, &xr, &xi);
            for k in 0..4 {
                cr[j + off[k]] = yr[k];
                ci[j + off[k]] = yi[k];
            }
        }
    }
}

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
