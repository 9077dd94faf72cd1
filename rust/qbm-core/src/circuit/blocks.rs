//! Cache blocking for states above the caches.
//!
//! A gate list is cut, in order, into *segments* whose gates together touch at most
//! [`HIGH`] qubits outside the [`LOW`] least significant index bits. A segment then
//! runs chunk by chunk: a chunk is every amplitude whose other bits are fixed, 2^[`LOW`]
//! contiguous amplitudes times 2^(high qubits touched), at most 2^[`BITS`] amplitudes
//! (1 MiB for the two f64 planes, 512 KiB at f32; the adjoint sweep's four planes take
//! one bit less). The chunk is gathered into a buffer (or
//! used in place when its amplitudes are contiguous), every gate of the segment is
//! applied to it with the qubits renumbered, and it is written back: one pass over
//! memory per segment instead of one per gate.
//!
//! The plan may run commuting gates (on disjoint qubits) in another order than the
//! program's ([`plan`]), which changes rounding only (1e-12 to program order, tested); the
//! gate-by-gate path of a state above one chunk runs the same order ([`planned_order`]).
//! Given that order, each amplitude goes through the same arithmetic as with the unblocked
//! kernels, so states are bit for bit those of [`super::run_ops`] on it; chunks are
//! independent, so they may run on several threads with the same bits.
//! The adjoint sweep runs the same segments backwards; a gradient is then a sum of
//! per-chunk overlaps taken in chunk order (equal to the unblocked sum to rounding,
//! and the same on any thread count).

use super::{adjoint_row, Op, Real};
use rayon::prelude::*;

/// Index bits always inside a chunk (contiguous runs of 2^LOW amplitudes: 1 KiB of each
/// f64 plane, 512 bytes at f32). 7 rather than 10 leaves more of a chunk's bits to the
/// qubits a segment chooses, so fewer segments (each a pass over memory): the depth-20
/// brick circuit takes 10 instead of 16 segments at n = 24; forward states 3-6% faster at
/// n = 22 and 24 (f32 and f64), the same at n = 20, the adjoint sweep 2% faster (same-process
/// A/B of the two builds, one thread).
pub(crate) const LOW: usize = 7;
/// Qubits above [`LOW`] a segment of a forward run may touch: chunks of up to 2^16
/// amplitudes (1 MiB for the two f64 planes, 512 KiB at f32). Chunks of 2^16 measured
/// against 2^15 at n = 22 and 24 (`benches/circuits_large.py`, one thread): forward 6-25%
/// faster at f32 and f64 (fewer segments, so fewer gather passes); 2^17 was no better at f64.
pub(crate) const HIGH: usize = 9;
/// The same for the adjoint sweep, which holds four planes per chunk (psi and lambda):
/// chunks of 2^15 keep them at 1 MiB (with 2^16 the gradient was 3-9% slower at n = 22
/// and 24).
pub(crate) const ADJOINT_HIGH: usize = 8;
/// Index bits of the largest chunk.
pub(crate) const BITS: usize = LOW + HIGH;
/// State bytes (all planes) from which one thread blocks a state: 16 MiB, where a gate
/// pass leaves the last-level cache's share of one core (below it gate-by-gate passes are
/// as fast, each pass bound by loads and stores rather than memory). Measured with
/// `benches/circuits_large.py`-style probes, one thread: f64 forward states (16 bytes per
/// amplitude) block from n = 20, 8-15% faster on the brick circuit there than gate by
/// gate; f32 (8 bytes) from n = 21, since at n = 20 blocking gained nothing for the brick
/// circuit and lost 10% on the QCBM. Several threads on one state always share it by chunks.
pub(crate) const MIN_BYTES: usize = 16 << 20;

/// Whether one thread blocks a state of `n` qubits holding `bytes` per amplitude.
fn blocked(n: usize, bytes: usize) -> bool {
    (bytes << n) >= MIN_BYTES
}

#[derive(Clone, Debug)]
enum Layout {
    /// The whole state at once (it fits a chunk).
    Whole,
    /// Contiguous chunks of 2^nl amplitudes.
    Contig,
    /// Chunks gathered from 2^k runs of 2^LOW amplitudes at offsets `high_off` from a
    /// base that deposits the chunk number into the bit positions `rest`.
    Gather {
        high_off: Vec<usize>,
        rest: Vec<usize>,
    },
}

/// A run of gates applied chunk by chunk, renumbered for an `nl`-qubit chunk.
#[derive(Clone, Debug)]
pub(crate) struct Segment {
    ops: Vec<Op>,
    nl: usize,
    layout: Layout,
}

impl Segment {
    /// Number of chunks for a state of `n` qubits.
    fn chunks(&self, n: usize) -> usize {
        match &self.layout {
            Layout::Whole => 1,
            Layout::Contig => 1 << (n - self.nl),
            Layout::Gather { rest, .. } => 1 << rest.len(),
        }
    }
}

/// `c`'s bits written to the bit positions `pos` (bit j of c to position pos[j]).
fn deposit(c: usize, pos: &[usize]) -> usize {
    pos.iter()
        .enumerate()
        .map(|(j, &p)| ((c >> j) & 1) << p)
        .sum()
}

/// Cut `ops` (on `n` qubits) into segments touching at most `high_max` qubits above
/// [`LOW`]: the fewer of two plans, the gates in program order cut greedily
/// ([`cut_in_order`]) or scheduled across commuting gates ([`cut_scheduled`]; on a tie,
/// program order). The segments' gates, concatenated, are a reordering of `ops` that
/// keeps every qubit's sequence of gates, so the same unitary.
pub(crate) fn plan(n: usize, ops: &[Op], high_max: usize) -> Vec<Segment> {
    let bits = LOW + high_max;
    if n <= bits {
        return vec![Segment {
            ops: ops.to_vec(),
            nl: n,
            layout: Layout::Whole,
        }];
    }
    cuts(n, ops, high_max)
        .into_iter()
        .map(|(ops, high)| finish(n, bits, ops, high))
        .collect()
}

/// The segments' (gates, high positions) of [`plan`] for a state above one chunk.
fn cuts(n: usize, ops: &[Op], high_max: usize) -> Vec<(Vec<Op>, Vec<usize>)> {
    let in_order = cut_in_order(n, ops, high_max);
    let scheduled = cut_scheduled(n, ops, high_max);
    if scheduled.len() < in_order.len() {
        scheduled
    } else {
        in_order
    }
}

/// `ops` in the order [`plan`] runs them (unchanged when the state fits one chunk): the
/// gate-by-gate path runs this order too, so a state has the same bits on any number of
/// threads, blocked or not.
pub(crate) fn planned_order(n: usize, ops: &[Op], high_max: usize) -> Vec<Op> {
    if n <= LOW + high_max {
        return ops.to_vec();
    }
    cuts(n, ops, high_max)
        .into_iter()
        .flat_map(|(ops, _)| ops)
        .collect()
}

/// Bit positions at or above [`LOW`] of the qubits `op` touches.
fn high_positions(n: usize, op: &Op) -> impl Iterator<Item = usize> {
    let (qs, k) = op.qubits();
    (0..k).map(move |j| n - 1 - qs[j]).filter(|&p| p >= LOW)
}

/// Segments (gates, high positions touched) cut greedily in program order.
fn cut_in_order(n: usize, ops: &[Op], high_max: usize) -> Vec<(Vec<Op>, Vec<usize>)> {
    let mut out = Vec::new();
    let mut cur: Vec<Op> = Vec::new();
    let mut high: Vec<usize> = Vec::new();
    for op in ops {
        let fresh = high_positions(n, op).filter(|p| !high.contains(p)).count();
        if high.len() + fresh > high_max && !cur.is_empty() {
            out.push((std::mem::take(&mut cur), std::mem::take(&mut high)));
        }
        for p in high_positions(n, op) {
            if !high.contains(&p) {
                high.push(p);
            }
        }
        cur.push(*op);
    }
    if !cur.is_empty() {
        out.push((cur, high));
    }
    out
}

/// Segments scheduled across commuting gates: a gate is *ready* when every earlier gate
/// on its qubits is placed. A segment takes every ready gate inside its high positions
/// (repeatedly, as placing gates readies others); while it has room, it then opens the
/// ready gate that adds the fewest new high positions (the earliest in program order on
/// a tie), and closes when no ready gate fits. On a line of nearest-neighbour layers
/// (the brick circuit) a segment advances a window of qubits by several layers where
/// program order cuts every layer into pieces.
fn cut_scheduled(n: usize, ops: &[Op], high_max: usize) -> Vec<(Vec<Op>, Vec<usize>)> {
    // per qubit, the indices of its gates in program order, and the next one not placed
    let mut queue: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, op) in ops.iter().enumerate() {
        let (qs, k) = op.qubits();
        for &q in &qs[..k] {
            queue[q].push(i);
        }
    }
    let mut next = vec![0usize; n];
    let head = |q: usize, next: &[usize]| queue[q].get(next[q]).copied();
    let ready = |i: usize, next: &[usize]| {
        let (qs, k) = ops[i].qubits();
        qs[..k].iter().all(|&q| head(q, next) == Some(i))
    };
    let mut out = Vec::new();
    let mut placed = 0;
    while placed < ops.len() {
        let mut cur: Vec<Op> = Vec::new();
        let mut high: Vec<usize> = Vec::new();
        loop {
            // the ready gates: heads of some qubit's queue, ready on all of theirs
            let mut cands: Vec<usize> = (0..n)
                .filter_map(|q| head(q, &next))
                .filter(|&i| ready(i, &next))
                .collect();
            cands.sort_unstable();
            cands.dedup();
            let fresh = |i: usize| {
                high_positions(n, &ops[i])
                    .filter(|p| !high.contains(p))
                    .count()
            };
            let pick = match cands.iter().find(|&&i| fresh(i) == 0) {
                Some(&i) => Some(i),
                None => cands
                    .iter()
                    .map(|&i| (fresh(i), i))
                    .filter(|&(f, _)| high.len() + f <= high_max)
                    .min()
                    .map(|(_, i)| i),
            };
            let Some(i) = pick else { break };
            for p in high_positions(n, &ops[i]) {
                if !high.contains(&p) {
                    high.push(p);
                }
            }
            let (qs, k) = ops[i].qubits();
            for &q in &qs[..k] {
                next[q] += 1;
            }
            cur.push(ops[i]);
            placed += 1;
        }
        debug_assert!(!cur.is_empty(), "a ready gate always exists");
        out.push((cur, high));
    }
    out
}

fn finish(n: usize, bits: usize, ops: Vec<Op>, mut high: Vec<usize>) -> Segment {
    if high.iter().all(|&p| p < bits) {
        // the chunk of the 2^bits lowest positions holds every pair: contiguous
        let shift = n - bits;
        return Segment {
            ops: ops.iter().map(|o| o.remap(|q| q - shift)).collect(),
            nl: bits,
            layout: Layout::Contig,
        };
    }
    high.sort_unstable();
    let nl = LOW + high.len();
    let local = |q: usize| {
        let p = n - 1 - q;
        let lp = if p < LOW {
            p
        } else {
            LOW + high.iter().position(|&h| h == p).expect("planned qubit")
        };
        nl - 1 - lp
    };
    let ops = ops.iter().map(|o| o.remap(local)).collect();
    let rest = (LOW..n).filter(|p| !high.contains(p)).collect();
    let high_off = (0..1usize << high.len())
        .map(|h| deposit(h, &high))
        .collect();
    Segment {
        ops,
        nl,
        layout: Layout::Gather { high_off, rest },
    }
}

/// A plane shared by the chunk loop; chunks touch disjoint amplitudes.
struct Plane<R>(*mut R);
impl<R> Clone for Plane<R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<R> Copy for Plane<R> {}
unsafe impl<R: Send> Send for Plane<R> {}
unsafe impl<R: Sync> Sync for Plane<R> {}

impl<R: Real> Plane<R> {
    /// Copy chunk `c` of a gathered segment into `buf` (`to_buf`) or back.
    ///
    /// # Safety
    /// The plane holds 2^n values and `high_off` / `rest` come from one [`plan`] for n.
    unsafe fn copy(self, buf: &mut [R], base: usize, high_off: &[usize], to_buf: bool) {
        let run = 1usize << LOW;
        for (h, &off) in high_off.iter().enumerate() {
            let p = self.0.add(base + off);
            let b = buf.as_mut_ptr().add(h * run);
            if to_buf {
                std::ptr::copy_nonoverlapping(p, b, run);
            } else {
                std::ptr::copy_nonoverlapping(b, p, run);
            }
        }
    }
}

/// Run `f(part)` on every chunk of `seg` for `K` planes of 2^n values (`part[k]`: plane
/// k's amplitudes of the chunk, gathered into a per-thread buffer and written back, or
/// the plane's own contiguous range), on `threads` threads of the caller's pool; results
/// in chunk order.
///
/// # Safety
/// Every plane holds 2^n values and nothing else touches them during the call; `seg`
/// comes from [`plan`] for `n` (different chunks then touch disjoint amplitudes).
unsafe fn for_chunks<R: Real, T: Send, const K: usize>(
    n: usize,
    seg: &Segment,
    planes: [Plane<R>; K],
    threads: usize,
    f: impl Fn([&mut [R]; K]) -> T + Sync,
) -> Vec<T> {
    let len = 1usize << seg.nl;
    let body = |c: usize, buf: &mut [R]| match &seg.layout {
        Layout::Gather { high_off, rest } => {
            let base = deposit(c, rest);
            let mut parts = buf.chunks_mut(len);
            let mut part: [&mut [R]; K] =
                std::array::from_fn(|_| parts.next().expect("a buffer of K planes"));
            for (p, b) in planes.iter().zip(part.iter_mut()) {
                p.copy(b, base, high_off, true);
            }
            let out = f(part.each_mut().map(|b| &mut **b));
            for (p, b) in planes.iter().zip(part.iter_mut()) {
                p.copy(b, base, high_off, false);
            }
            out
        }
        // contiguous: chunk c is the range [c len, (c + 1) len) of every plane
        Layout::Contig | Layout::Whole => {
            f(planes.map(|p| std::slice::from_raw_parts_mut(p.0.add(c * len), len)))
        }
    };
    let nc = seg.chunks(n);
    let buf_len = match seg.layout {
        Layout::Gather { .. } => K * len,
        _ => 0,
    };
    if threads <= 1 || nc == 1 {
        let mut buf = vec![R::default(); buf_len];
        return (0..nc).map(|c| body(c, &mut buf)).collect();
    }
    (0..nc)
        .into_par_iter()
        .with_min_len(nc.div_ceil(threads * 4).max(1))
        .map_init(|| vec![R::default(); buf_len], |buf, c| body(c, buf))
        .collect()
}

/// Apply `ops` to the state (`re`, `im`: 2^n values each), segment by segment; with
/// `threads` > 1 the chunks of a segment are spread over the current pool. One thread on
/// a state below [`MIN_BYTES`] runs gate by gate (the same bits).
pub(crate) fn run<R: Real>(
    n: usize,
    ops: &[Op],
    angles: &[f64],
    re: &mut [R],
    im: &mut [R],
    threads: usize,
) {
    if threads <= 1 && !blocked(n, 2 * std::mem::size_of::<R>()) {
        R::run(n, &planned_order(n, ops, HIGH), angles, re, im, false);
    } else {
        run_planned(n, ops, angles, re, im, threads);
    }
}

/// [`run`] through the segments whatever the size.
pub(crate) fn run_planned<R: Real>(
    n: usize,
    ops: &[Op],
    angles: &[f64],
    re: &mut [R],
    im: &mut [R],
    threads: usize,
) {
    for seg in plan(n, ops, HIGH) {
        run_segment(n, &seg, angles, re, im, threads);
    }
}

fn run_segment<R: Real>(
    n: usize,
    seg: &Segment,
    angles: &[f64],
    re: &mut [R],
    im: &mut [R],
    threads: usize,
) {
    let planes = [Plane(re.as_mut_ptr()), Plane(im.as_mut_ptr())];
    // SAFETY: both planes hold 2^n values, borrowed mutably for the call; seg is planned for n.
    unsafe {
        for_chunks(n, seg, planes, threads, |[r, i]| {
            R::run(seg.nl, &seg.ops, angles, r, i, false)
        });
    }
}

/// The adjoint sweep (see [`super::Program::adjoint`]) on one state, segment by
/// segment backwards: `grad[slot]` for every parameterised gate of `ops`. One thread on
/// a state (psi and lambda) below [`MIN_BYTES`] sweeps gate by gate.
#[allow(clippy::too_many_arguments)]
pub(crate) fn adjoint(
    n: usize,
    ops: &[Op],
    angles: &[f64],
    pr: &mut [f64],
    pi: &mut [f64],
    lr: &mut [f64],
    li: &mut [f64],
    grad: &mut [f64],
    threads: usize,
) {
    if threads <= 1 && !blocked(n, 4 * std::mem::size_of::<f64>()) {
        adjoint_row(n, ops, angles, pr, pi, lr, li, grad);
    } else {
        adjoint_planned(n, ops, angles, pr, pi, lr, li, grad, threads);
    }
}

/// [`adjoint`] through the segments whatever the size.
#[allow(clippy::too_many_arguments)]
pub(crate) fn adjoint_planned(
    n: usize,
    ops: &[Op],
    angles: &[f64],
    pr: &mut [f64],
    pi: &mut [f64],
    lr: &mut [f64],
    li: &mut [f64],
    grad: &mut [f64],
    threads: usize,
) {
    for seg in plan(n, ops, ADJOINT_HIGH).iter().rev() {
        let slots: Vec<usize> = seg
            .ops
            .iter()
            .filter_map(|o| match *o {
                Op::Rot { slot, .. } | Op::CRot { slot, .. } => Some(slot),
                _ => None,
            })
            .collect();
        let nslots = grad.len();
        let planes = [
            Plane(pr.as_mut_ptr()),
            Plane(pi.as_mut_ptr()),
            Plane(lr.as_mut_ptr()),
            Plane(li.as_mut_ptr()),
        ];
        // SAFETY: the four planes hold 2^n values each, borrowed mutably for the call.
        let parts = unsafe {
            for_chunks(n, seg, planes, threads, |[b0, b1, b2, b3]| {
                let mut g = vec![0.0f64; nslots];
                adjoint_row(seg.nl, &seg.ops, angles, b0, b1, b2, b3, &mut g);
                slots.iter().map(|&s| g[s]).collect::<Vec<f64>>()
            })
        };
        for (k, &s) in slots.iter().enumerate() {
            grad[s] = parts.iter().map(|p| p[k]).sum();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_cover_every_gate_within_the_budget() {
        use super::super::Axis;
        let n = 20;
        let mut ops = Vec::new();
        let mut slot = 0;
        for _ in 0..2 {
            for q in 0..n {
                ops.push(Op::Rot {
                    axis: Axis::X,
                    q,
                    slot,
                });
                slot += 1;
            }
            for q in 0..n - 1 {
                ops.push(Op::Cx { c: q, t: q + 1 });
            }
        }
        let segs = plan(n, &ops, HIGH);
        assert_eq!(segs.iter().map(|s| s.ops.len()).sum::<usize>(), ops.len());
        for s in &segs {
            assert!(s.nl <= BITS);
            if let Layout::Gather { rest, high_off } = &s.layout {
                assert_eq!(rest.len() + s.nl, n);
                assert_eq!(high_off.len(), 1 << (s.nl - LOW));
            }
        }
        // far fewer passes than gates
        assert!(segs.len() * 4 < ops.len(), "{} segments", segs.len());
    }

    /// The depth-20 brick circuit of `benches/circuits_large.py` on n qubits (one-qubit
    /// gates as RX, entanglers as CZ).
    fn brick(n: usize) -> Vec<Op> {
        use super::super::Axis;
        let mut ops = Vec::new();
        for layer in 0..20 {
            for q in 0..n {
                let slot = ops.len();
                ops.push(Op::Rot {
                    axis: Axis::X,
                    q,
                    slot,
                });
            }
            for q in (layer % 2..n - 1).step_by(2) {
                ops.push(Op::Cz { a: q, b: q + 1 });
            }
        }
        ops
    }

    #[test]
    fn scheduled_plans_keep_every_qubits_gate_order_in_fewer_segments() {
        for n in [BITS + 1, 22, 24] {
            let ops = brick(n);
            let order = planned_order(n, &ops, HIGH);
            assert_eq!(order.len(), ops.len());
            // the same gates, and on every qubit the same sequence (so the same unitary)
            let seq = |list: &[Op], q: usize| -> Vec<Op> {
                list.iter()
                    .filter(|o| {
                        let (qs, k) = o.qubits();
                        qs[..k].contains(&q)
                    })
                    .copied()
                    .collect()
            };
            for q in 0..n {
                assert_eq!(seq(&order, q), seq(&ops, q), "n {n}, qubit {q}");
            }
            let segs = plan(n, &ops, HIGH);
            let flat: Vec<usize> = segs.iter().map(|s| s.ops.len()).collect();
            assert_eq!(flat.iter().sum::<usize>(), ops.len());
            let (sched, greedy) = (
                cut_scheduled(n, &ops, HIGH).len(),
                cut_in_order(n, &ops, HIGH).len(),
            );
            assert_eq!(segs.len(), sched.min(greedy));
            // the scheduler's gain on the brick circuit (program order cuts every layer)
            assert!(2 * sched < greedy, "n {n}: {sched} vs {greedy} segments");
        }
    }
}
