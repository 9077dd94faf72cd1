//! A state-vector engine for parameterised circuits.
//!
//! A state of `n` qubits is two `f64` planes (real and imaginary parts) of length
//! `2^n`, basis index = bits read as a binary number with qubit 0 most significant
//! (the convention of `qbm.mmd.mmd2_exact`), so qubit `q` is the index bit of weight
//! `2^(n-1-q)`. A [`Program`] is a gate list compiled once; every parameterised gate
//! owns one angle *slot* (in gate order), and a batch of states carries one row of
//! slot angles each. Rotations are `R_P(a) = exp(-i a P / 2)`.
//!
//! What runs here:
//! * [`Program::states`]: the circuit on a batch of initial states (threads across
//!   states; each state is processed by one thread, so every amplitude is computed by
//!   the same operations in the same order whatever the thread count).
//! * [`Program::adjoint`]: gradients of any real function of the output state whose
//!   derivative with respect to the conjugate amplitudes is given (`lambda`): one
//!   backward sweep that undoes the gates on the state and on `lambda` together,
//!   reading `dL/da = Im <lambda| G |phi>` at every parameterised gate (G its
//!   generator, restricted to control = 1 for controlled rotations).
//! * [`Program::shift_gradient`]: the parameter-shift rule with one fork per gate:
//!   `R(a +- pi/2) = R(a) (I -+ iP) / sqrt 2`, so the two shifted outputs are
//!   `(psi -+ i phi_k) / sqrt 2` with `phi_k` the circuit with `P` inserted after gate
//!   `k`, simulated from the unshifted prefix. Forks are streamed (each thread holds a
//!   prefix and a fork state, never a batch of forks); each shifted distribution is
//!   either used exactly or sampled with `shots` draws, and reduced against a weight
//!   vector on the spot: `g_k = sum_x (f_k^+(x) - f_k^-(x)) w(x)`.
//! * [`sample_counts`]: multinomial counts by merging sorted uniforms (exponential
//!   spacings) with the cumulative distribution, O(2^n + shots), one stream per
//!   `(seed, index)`; the walk adds vectorised block sums and steps amplitude by
//!   amplitude only inside blocks a draw lands in.
//!
//! Random draws come from [`Xoshiro256pp::stream`] with tag [`tags::CIRCUIT`] and the
//! circuit's index, so counts do not depend on the number of threads.

use crate::error::{ensure, CoreError, Result};
use crate::memory;
use crate::parallel::{check_cancel, resolve_threads, with_exact_threads};
use crate::rng::{tags, Xoshiro256pp};
use rayon::prelude::*;
use std::sync::atomic::AtomicBool;

mod blocks;
mod pairs2;

/// Largest number of qubits accepted (2^30 amplitudes take 16 GiB per state).
pub const MAX_QUBITS: usize = 30;

/// Rotation axis (Pauli generator).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axis {
    X,
    Y,
    Z,
}

/// One gate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    /// `R_axis(angle[slot])` on qubit `q`.
    Rot { axis: Axis, q: usize, slot: usize },
    /// Controlled `R_axis(angle[slot])`, control `c` (on |1>), target `t`.
    CRot {
        axis: Axis,
        c: usize,
        t: usize,
        slot: usize,
    },
    /// CNOT, control `c`, target `t`.
    Cx { c: usize, t: usize },
    /// Controlled-Z on qubits `a`, `b`.
    Cz { a: usize, b: usize },
    /// A fixed 2x2 matrix on qubit `q`: `m = [re00, im00, re01, im01, re10, im10, re11, im11]`.
    Mat { q: usize, m: [f64; 8] },
    /// A fixed 4x4 matrix on qubits `a`, `b` (basis |x_a x_b>, x_a more significant;
    /// entry (r, c) at `8 r + 2 c`, re then im): made by fusion only.
    Mat2 { a: usize, b: usize, m: [f64; 32] },
}

impl Op {
    /// The qubits the op acts on: `(qubits, k)` with the first `k` entries used.
    pub(crate) fn qubits(&self) -> ([usize; 2], usize) {
        match *self {
            Op::Rot { q, .. } | Op::Mat { q, .. } => ([q, q], 1),
            Op::CRot { c, t, .. } | Op::Cx { c, t } => ([c, t], 2),
            Op::Cz { a, b } | Op::Mat2 { a, b, .. } => ([a, b], 2),
        }
    }

    /// The same op with every qubit `q` renumbered `f(q)`.
    pub(crate) fn remap(&self, f: impl Fn(usize) -> usize) -> Op {
        match *self {
            Op::Rot { axis, q, slot } => Op::Rot {
                axis,
                q: f(q),
                slot,
            },
            Op::CRot { axis, c, t, slot } => Op::CRot {
                axis,
                c: f(c),
                t: f(t),
                slot,
            },
            Op::Cx { c, t } => Op::Cx { c: f(c), t: f(t) },
            Op::Cz { a, b } => Op::Cz { a: f(a), b: f(b) },
            Op::Mat { q, m } => Op::Mat { q: f(q), m },
            Op::Mat2 { a, b, m } => Op::Mat2 {
                a: f(a),
                b: f(b),
                m,
            },
        }
    }
}

/// Gate kinds as numbered at the binding (`kind` codes of [`Program::from_codes`]).
pub const KIND_NAMES: [&str; 9] = ["rx", "ry", "rz", "crx", "cry", "crz", "cx", "cz", "mat"];

/// A compiled circuit.
#[derive(Clone, Debug)]
pub struct Program {
    n: usize,
    ops: Vec<Op>,
    /// Op index of every slot.
    slot_op: Vec<usize>,
}

impl Program {
    /// Build from gate codes: `kinds[g]` indexes [`KIND_NAMES`], `q0[g]` / `q1[g]` the
    /// qubits (q1 only for two-qubit gates: target of controlled gates), `mats[g]` the
    /// matrix of a `mat` gate. Parameterised gates get slots 0, 1, ... in order.
    pub fn from_codes(
        n: usize,
        kinds: &[i64],
        q0: &[i64],
        q1: &[i64],
        mats: &[[f64; 8]],
    ) -> Result<Self> {
        ensure((1..=MAX_QUBITS).contains(&n), "n", || {
            format!("must lie in 1..={MAX_QUBITS}, got {n}")
        })?;
        let g = kinds.len();
        ensure(
            q0.len() == g && q1.len() == g && mats.len() == g,
            "kinds",
            || {
                format!(
                    "kinds, q0, q1 and mats must have one entry per gate ({g}, {}, {}, {})",
                    q0.len(),
                    q1.len(),
                    mats.len()
                )
            },
        )?;
        let qubit = |v: i64, name: &str| -> Result<usize> {
            if v < 0 || v as usize >= n {
                Err(CoreError::param(
                    name,
                    format!("qubit {v} out of range for {n} qubits"),
                ))
            } else {
                Ok(v as usize)
            }
        };
        let mut ops = Vec::with_capacity(g);
        let mut slot_op = Vec::new();
        for i in 0..g {
            let a = qubit(q0[i], "q0")?;
            let two = (3..=7).contains(&kinds[i]);
            let b = if two { qubit(q1[i], "q1")? } else { 0 };
            if two && a == b {
                return Err(CoreError::param(
                    "q1",
                    format!("gate {i}: the two qubits must differ, got {a} twice"),
                ));
            }
            let axis = |k: i64| match k % 3 {
                0 => Axis::X,
                1 => Axis::Y,
                _ => Axis::Z,
            };
            let slot = slot_op.len();
            let op = match kinds[i] {
                0..=2 => Op::Rot {
                    axis: axis(kinds[i]),
                    q: a,
                    slot,
                },
                3..=5 => Op::CRot {
                    axis: axis(kinds[i]),
                    c: a,
                    t: b,
                    slot,
                },
                6 => Op::Cx { c: a, t: b },
                7 => Op::Cz { a, b },
                8 => {
                    ensure(mats[i].iter().all(|v| v.is_finite()), "mats", || {
                        format!("gate {i}: matrix entries must be finite")
                    })?;
                    Op::Mat { q: a, m: mats[i] }
                }
                k => {
                    return Err(CoreError::param(
                        "kinds",
                        format!("gate {i}: unknown kind code {k} (0..=8: {KIND_NAMES:?})"),
                    ))
                }
            };
            if matches!(op, Op::Rot { .. } | Op::CRot { .. }) {
                slot_op.push(i);
            }
            ops.push(op);
        }
        Ok(Self { n, ops, slot_op })
    }

    /// Number of qubits.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Number of angle slots (parameterised gates).
    pub fn num_slots(&self) -> usize {
        self.slot_op.len()
    }

    /// Number of gates.
    pub fn num_ops(&self) -> usize {
        self.ops.len()
    }

    /// Amplitudes per state, 2^n.
    pub fn dim(&self) -> usize {
        1usize << self.n
    }

    fn check_angles(&self, angles: &[f64], rows: usize) -> Result<()> {
        let s = self.num_slots();
        ensure(angles.len() == rows * s, "angles", || {
            format!(
                "expected {rows} x {s} values (one per parameterised gate), got {}",
                angles.len()
            )
        })?;
        ensure(angles.iter().all(|a| a.is_finite()), "angles", || {
            "must be finite (got NaN or inf)".into()
        })
    }

    /// Run the circuit on `rows` states. `initial`: `None` (|0...0> for all), one state
    /// (`2 * 2^n` values: real plane then imaginary plane) for all rows, or one per
    /// row. Returns `rows` states, each `[re (2^n), im (2^n)]`.
    pub fn states(
        &self,
        angles: &[f64],
        rows: usize,
        initial: Option<&[f64]>,
        num_threads: Option<usize>,
        cancel: &AtomicBool,
    ) -> Result<Vec<f64>> {
        self.states_as::<f64>(angles, rows, initial, num_threads, cancel)
    }

    /// [`Program::states`] with f32 amplitudes (half the memory and traffic; gate
    /// constants computed in f64 and rounded once; `initial` rounded to f32).
    pub fn states_f32(
        &self,
        angles: &[f64],
        rows: usize,
        initial: Option<&[f64]>,
        num_threads: Option<usize>,
        cancel: &AtomicBool,
    ) -> Result<Vec<f32>> {
        self.states_as::<f32>(angles, rows, initial, num_threads, cancel)
    }

    fn states_as<R: Real>(
        &self,
        angles: &[f64],
        rows: usize,
        initial: Option<&[f64]>,
        num_threads: Option<usize>,
        cancel: &AtomicBool,
    ) -> Result<Vec<R>> {
        self.check_angles(angles, rows)?;
        let d = self.dim();
        self.check_initial(initial, rows)?;
        let need = memory::bytes(&[rows.max(1), 2 * d, std::mem::size_of::<R>()], "angles")?;
        memory::ensure_fits(need, "angles")?;
        let mut out = memory::try_vec(rows * 2 * d, R::default(), "angles")?;
        let s = self.num_slots();
        // fusing pays for large states only (small ones are bound by per-row overhead)
        let fuse_rows = d >= 1 << 10;
        let (threads, inner) = self.split_threads(num_threads, rows)?;
        let row = |(r, st): (usize, &mut [R])| {
            check_cancel(cancel)?;
            self.init_row(st, initial, r);
            let (re, im) = st.split_at_mut(d);
            let a = &angles[r * s..(r + 1) * s];
            if fuse_rows {
                run_fused(self.n, &self.ops, a, re, im, inner);
            } else {
                R::run(self.n, &self.ops, a, re, im, false);
            }
            Ok::<(), CoreError>(())
        };
        // one thread: rows in order on the calling thread (a parallel iterator outside a
        // pool would hand them to rayon's global pool, all cores, and wait for it)
        with_exact_threads(threads.max(inner), || {
            if inner > 1 || threads <= 1 {
                out.chunks_mut(2 * d).enumerate().try_for_each(row)
            } else {
                out.par_chunks_mut(2 * d)
                    .enumerate()
                    .with_min_len(rows.div_ceil(threads * 4).max(1))
                    .try_for_each(row)
            }
        })??;
        Ok(out)
    }

    fn check_initial(&self, initial: Option<&[f64]>, rows: usize) -> Result<()> {
        if let Some(init) = initial {
            let d2 = 2 * self.dim();
            ensure(
                init.len() == d2 || init.len() == rows * d2,
                "initial",
                || {
                    format!(
                        "expected 1 or {rows} states of 2 x {} values, got {} values",
                        self.dim(),
                        init.len()
                    )
                },
            )?;
            ensure(init.iter().all(|v| v.is_finite()), "initial", || {
                "must be finite (got NaN or inf)".into()
            })?;
        }
        Ok(())
    }

    fn init_row<R: Real>(&self, st: &mut [R], initial: Option<&[f64]>, r: usize) {
        let d2 = 2 * self.dim();
        let src = match initial {
            None => {
                st.fill(R::default());
                st[0] = R::of(1.0);
                return;
            }
            Some(init) if init.len() == d2 => init,
            Some(init) => &init[r * d2..(r + 1) * d2],
        };
        for (x, &v) in st.iter_mut().zip(src) {
            *x = R::of(v);
        }
    }

    fn threads_for(&self, num_threads: Option<usize>, units: usize) -> Result<usize> {
        let t = resolve_threads(num_threads)?;
        // a state of 2^n amplitudes through every gate is about ops * 2^n updates
        let work = (self.ops.len().max(1) as u64)
            .saturating_mul(self.dim() as u64)
            .saturating_mul(units as u64);
        Ok(crate::parallel::useful_threads(t, units, work))
    }

    /// Threads across rows and threads inside each row's state: a call with fewer rows
    /// than threads above one chunk ([`blocks::BITS`]) runs its rows one after another,
    /// each spread over every thread by chunks; otherwise rows go to threads whole.
    fn split_threads(&self, num_threads: Option<usize>, rows: usize) -> Result<(usize, usize)> {
        let all = resolve_threads(num_threads)?;
        if self.n > blocks::BITS && rows < all {
            Ok((1, all))
        } else {
            Ok((self.threads_for(num_threads, rows)?, 1))
        }
    }

    /// Gradient of the angles by the adjoint method for `rows` states: `psi` the
    /// circuit's outputs (as [`Program::states`] returns them), `lambda` the derivative
    /// of the loss with respect to the conjugate amplitudes, scaled so that
    /// `dL/da = 2 Re <lambda| d psi / da>` (for a loss of the probabilities q,
    /// `lambda = (dL/dq) * psi`; for `sum_i g_i <O_i>`, `lambda = sum_i g_i O_i psi`).
    /// Returns `rows x slots` values. Both states are taken over and undone in place
    /// (no copies: at n = 24 each is 256 MiB).
    pub fn adjoint(
        &self,
        angles: &[f64],
        rows: usize,
        mut psi: Vec<f64>,
        mut lambda: Vec<f64>,
        num_threads: Option<usize>,
        cancel: &AtomicBool,
    ) -> Result<Vec<f64>> {
        self.check_angles(angles, rows)?;
        let d = self.dim();
        ensure(psi.len() == rows * 2 * d, "psi", || {
            format!(
                "expected {rows} states of 2 x {d} values, got {} values",
                psi.len()
            )
        })?;
        ensure(lambda.len() == rows * 2 * d, "lambda", || {
            format!(
                "expected {rows} states of 2 x {d} values, got {} values",
                lambda.len()
            )
        })?;
        ensure(
            lambda.iter().chain(psi.iter()).all(|v| v.is_finite()),
            "lambda",
            || "psi and lambda must be finite (got NaN or inf)".into(),
        )?;
        let s = self.num_slots();
        let mut grad = vec![0.0f64; rows * s];
        let (threads, inner) = self.split_threads(num_threads, rows)?;
        type Row<'a> = (usize, (&'a mut [f64], (&'a mut [f64], &'a mut [f64])));
        let row = |(r, (g, (phi, lam))): Row<'_>| {
            check_cancel(cancel)?;
            let (pr, pi) = phi.split_at_mut(d);
            let (lr, li) = lam.split_at_mut(d);
            blocks::adjoint(
                self.n,
                &self.ops,
                &angles[r * s..(r + 1) * s],
                pr,
                pi,
                lr,
                li,
                g,
                inner,
            );
            Ok::<(), CoreError>(())
        };
        let w = s.max(1);
        with_exact_threads(threads.max(inner), || {
            if inner > 1 || threads <= 1 {
                grad.chunks_mut(w)
                    .zip(psi.chunks_mut(2 * d).zip(lambda.chunks_mut(2 * d)))
                    .enumerate()
                    .take(rows)
                    .try_for_each(row)
            } else {
                grad.par_chunks_mut(w)
                    .zip(psi.par_chunks_mut(2 * d).zip(lambda.par_chunks_mut(2 * d)))
                    .enumerate()
                    .take(rows)
                    .try_for_each(row)
            }
        })??;
        Ok(grad)
    }

    /// Parameter-shift gradient reduced against `weight` (2^n values) for one angle
    /// vector: `g_k = sum_x (f_k^+(x) - f_k^-(x)) w(x)`, where `f_k^+-` is the output
    /// distribution with slot k's angle shifted by +-pi/2, taken exactly (`shots = None`)
    /// or as the frequencies of `shots` draws (stream `(seed, 1 + k)` for + and
    /// `(seed, 1 + S + k)` for -, S the number of slots). Every parameterised gate must
    /// be an uncontrolled rotation (the two-term rule). `initial` as in
    /// [`Program::states`] (one state).
    ///
    /// With `R = f32` the circuit and every fork run on f32 amplitudes (gate constants
    /// computed in f64 and rounded once); the shifted distributions, the draws and the
    /// sums are computed in f64 from them, from the same random streams as at f64.
    #[allow(clippy::too_many_arguments)]
    pub fn shift_gradient<R: Real>(
        &self,
        angles: &[f64],
        initial: Option<&[f64]>,
        weight: &[f64],
        shots: Option<u64>,
        seed: u64,
        num_threads: Option<usize>,
        cancel: &AtomicBool,
    ) -> Result<Vec<f64>> {
        self.check_angles(angles, 1)?;
        self.check_initial(initial, 1)?;
        let d = self.dim();
        ensure(weight.len() == d, "weight", || {
            format!(
                "expected {d} values (one per basis state), got {}",
                weight.len()
            )
        })?;
        ensure(weight.iter().all(|v| v.is_finite()), "weight", || {
            "must be finite (got NaN or inf)".into()
        })?;
        if let Some(n) = shots {
            ensure((1..=MAX_SHOTS).contains(&n), "shots", || {
                format!("must lie in [1, {MAX_SHOTS}], got {n}")
            })?;
        }
        if let Some(k) = self.ops.iter().position(|o| matches!(o, Op::CRot { .. })) {
            return Err(CoreError::param(
                "circuit",
                format!(
                    "gate {k} is a controlled rotation: the two-term parameter-shift rule needs \
                     uncontrolled rotations (use the adjoint gradient)"
                ),
            ));
        }
        let s = self.num_slots();
        if s == 0 {
            return Ok(Vec::new());
        }
        // the unshifted output, shared by every fork
        let mut psi = vec![R::default(); 2 * d];
        self.init_row(&mut psi, initial, 0);
        {
            let (re, im) = psi.split_at_mut(d);
            run_fused(self.n, &self.ops, angles, re, im, 1);
        }
        let chunks = self.fork_chunks(resolve_threads(num_threads)?);
        let threads = resolve_threads(num_threads)?.min(chunks.len()).max(1);
        let held = shots.unwrap_or(0).min(SHOT_CHUNK) as usize;
        // per thread: prefix and fork (4 d amplitudes), the two shifted distributions (2 d
        // f64) and the spacings
        let amp = std::mem::size_of::<R>();
        let per_thread = memory::bytes(&[4 * d * amp + 8 * (2 * d + held + 1), 1], "shots")?;
        memory::ensure_fits(per_thread.saturating_mul(threads as u128), "shots")?;
        let fork = |range: &std::ops::Range<usize>| {
            let mut ws = ForkWork::<R>::new(d, shots);
            self.forks(
                range.clone(),
                angles,
                initial,
                &psi,
                weight,
                shots,
                seed,
                &mut ws,
                cancel,
            )
        };
        let parts: Vec<Vec<f64>> = with_exact_threads(threads, || {
            if threads <= 1 {
                chunks.iter().map(fork).collect::<Result<Vec<_>>>()
            } else {
                chunks.par_iter().map(fork).collect::<Result<Vec<_>>>()
            }
        })??;
        Ok(parts.concat())
    }

    /// `shots` computational-basis draws from the circuit's output state (one angle
    /// vector; `initial` as in [`Program::states`]), as basis-state indices in increasing
    /// order, from stream `(seed, index0)`: the draws of [`sample_counts`] on the same
    /// stream for |psi|^2 (bit for bit at f64, where |psi_x|^2 = re^2 + im^2), without an
    /// array of probabilities (they are computed from the planes on the fly, in f64).
    #[allow(clippy::too_many_arguments)]
    pub fn sample<R: Real>(
        &self,
        angles: &[f64],
        initial: Option<&[f64]>,
        shots: u64,
        seed: u64,
        index0: u64,
        num_threads: Option<usize>,
        cancel: &AtomicBool,
    ) -> Result<Vec<u64>> {
        ensure((1..=MAX_SHOTS).contains(&shots), "shots", || {
            format!("must lie in [1, {MAX_SHOTS}], got {shots}")
        })?;
        let held = shots.min(SHOT_CHUNK) as usize + 1;
        memory::ensure_fits(
            memory::bytes(&[held + shots as usize, 8], "shots")?,
            "shots",
        )?;
        let st = self.states_as::<R>(angles, 1, initial, num_threads, cancel)?;
        check_cancel(cancel)?;
        let d = self.dim();
        let (re, im) = st.split_at(d);
        let probs = Planes(re, im);
        let mut sums = Vec::new();
        let total = block_sums(&probs, &mut sums);
        let mut rng = Xoshiro256pp::stream(seed, tags::CIRCUIT, index0);
        let mut buf = Vec::with_capacity(held);
        let mut out = Vec::with_capacity(shots as usize);
        merge_draws(&probs, &sums, total, shots, &mut rng, &mut buf, |x| {
            out.push(x as u64)
        });
        if shots > SHOT_CHUNK {
            out.sort_unstable(); // each pass of SHOT_CHUNK draws comes out sorted
        }
        Ok(out)
    }

    /// Split the slots into contiguous ranges of about equal fork cost (gates after the
    /// slot's gate): one range for one thread, a few per thread otherwise.
    fn fork_chunks(&self, threads: usize) -> Vec<std::ops::Range<usize>> {
        let s = self.num_slots();
        let g = self.ops.len();
        let want = if threads <= 1 {
            1
        } else {
            (threads * 3).min(s)
        };
        let cost: Vec<usize> = self.slot_op.iter().map(|&j| g - j).collect();
        let total: usize = cost.iter().sum();
        let mut out = Vec::with_capacity(want);
        let mut start = 0;
        let mut acc = 0;
        for (k, c) in cost.iter().enumerate() {
            acc += c;
            if out.len() + 1 < want && acc * want >= total * (out.len() + 1) {
                out.push(start..k + 1);
                start = k + 1;
            }
        }
        if start < s {
            out.push(start..s);
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn forks<R: Real>(
        &self,
        range: std::ops::Range<usize>,
        angles: &[f64],
        initial: Option<&[f64]>,
        psi: &[R],
        weight: &[f64],
        shots: Option<u64>,
        seed: u64,
        ws: &mut ForkWork<R>,
        cancel: &AtomicBool,
    ) -> Result<Vec<f64>> {
        let d = self.dim();
        let s = self.num_slots();
        let mut out = Vec::with_capacity(range.len());
        self.init_row(&mut ws.prefix, initial, 0);
        let mut done = 0; // ops already applied to the prefix
        for k in range {
            check_cancel(cancel)?;
            let j = self.slot_op[k];
            {
                let (re, im) = ws.prefix.split_at_mut(d);
                R::run(self.n, &self.ops[done..=j], angles, re, im, false);
            }
            done = j + 1;
            ws.fork.copy_from_slice(&ws.prefix);
            let q = match self.ops[j] {
                Op::Rot { axis, q, .. } => (axis, q),
                _ => unreachable!("slots are rotations"),
            };
            {
                let (re, im) = ws.fork.split_at_mut(d);
                apply_pauli(self.n, q.0, q.1, re, im);
                run_fused(self.n, &self.ops[j + 1..], angles, re, im, 1);
            }
            let (pr, pi) = psi.split_at(d);
            let (fr, fi) = ws.fork.split_at(d);
            let g = match shots {
                None => exact_fork(pr, pi, fr, fi, weight),
                Some(n) => {
                    shifted_probs(pr, pi, fr, fi, &mut ws.qp, &mut ws.qm);
                    let a = weighted_draws(
                        &ws.qp,
                        n,
                        weight,
                        &mut Xoshiro256pp::stream(seed, tags::CIRCUIT, 1 + k as u64),
                        &mut ws.spacing,
                        &mut ws.sums,
                    );
                    let b = weighted_draws(
                        &ws.qm,
                        n,
                        weight,
                        &mut Xoshiro256pp::stream(seed, tags::CIRCUIT, 1 + (s + k) as u64),
                        &mut ws.spacing,
                        &mut ws.sums,
                    );
                    (a - b) / n as f64
                }
            };
            out.push(g);
        }
        Ok(out)
    }
}

/// Per-thread buffers of the fork sweep (amplitudes at the sweep's precision).
struct ForkWork<R> {
    prefix: Vec<R>,
    fork: Vec<R>,
    qp: Vec<f64>,
    qm: Vec<f64>,
    spacing: Vec<f64>,
    sums: Vec<f64>,
}

impl<R: Real> ForkWork<R> {
    fn new(d: usize, shots: Option<u64>) -> Self {
        let sampled = shots.is_some();
        Self {
            prefix: vec![R::default(); 2 * d],
            fork: vec![R::default(); 2 * d],
            qp: if sampled { vec![0.0; d] } else { Vec::new() },
            qm: if sampled { vec![0.0; d] } else { Vec::new() },
            spacing: Vec::with_capacity(shots.unwrap_or(0).min(SHOT_CHUNK) as usize + 1),
            sums: Vec::new(),
        }
    }
}

/// `sum_x 2 Im(conj(psi_x) phi_x) w_x` = `sum_x (q^+ - q^-)(x) w(x)` exactly.
fn exact_fork<R: Real>(pr: &[R], pi: &[R], fr: &[R], fi: &[R], w: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let d = pr.len();
    let im = |i: usize| pr[i].wide() * fi[i].wide() - pi[i].wide() * fr[i].wide();
    let mut x = 0;
    while x + 4 <= d {
        for l in 0..4 {
            let i = x + l;
            acc[l] += 2.0 * im(i) * w[i];
        }
        x += 4;
    }
    for i in x..d {
        acc[0] += 2.0 * im(i) * w[i];
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

/// The two shifted distributions `(|psi|^2 + |phi|^2) / 2 +- Im(conj(psi) phi)` (clipped
/// at 0), into `qp` and `qm`.
fn shifted_probs<R: Real>(pr: &[R], pi: &[R], fr: &[R], fi: &[R], qp: &mut [f64], qm: &mut [f64]) {
    for i in 0..pr.len() {
        let (xr, xi, yr, yi) = (pr[i].wide(), pi[i].wide(), fr[i].wide(), fi[i].wide());
        let m = 0.5 * (xr * xr + xi * xi + yr * yr + yi * yi);
        let c = xr * yi - xi * yr;
        qp[i] = (m + c).max(0.0);
        qm[i] = (m - c).max(0.0);
    }
}

/// `shots` sorted uniforms on [0, total) as cumulative exponential spacings, written into
/// `buf` (shots + 1 values; the last is the scale).
fn sorted_uniforms(shots: u64, total: f64, rng: &mut Xoshiro256pp, buf: &mut Vec<f64>) {
    buf.clear();
    let mut acc = 0.0f64;
    for _ in 0..=shots {
        // -ln(1 - u) with u in [0, 1): an Exp(1) draw, never infinite
        acc += -(1.0 - rng.next_f64()).ln();
        buf.push(acc);
    }
    let scale = total / acc;
    buf.truncate(shots as usize);
    for v in buf.iter_mut() {
        *v *= scale;
    }
}

/// Shots drawn per merge pass: above it a row's draws are the sum of independent
/// multinomials of at most this many shots each (the same distribution), so the sorted
/// uniforms held per thread stay bounded (32 MiB) whatever `shots` is.
pub const SHOT_CHUNK: u64 = 1 << 22;

/// The most shots per row a call accepts (the cost is linear in shots: about 10 ns each).
pub const MAX_SHOTS: u64 = 1_000_000_000;

/// Amplitudes per block of the draw walk: the walk adds the blocks' sums (taken with
/// eight independent lanes) and steps through a block amplitude by amplitude only where a
/// draw lands, so a pass touches each probability once, in a vectorised sum, instead of
/// adding 2^n of them in one dependent chain.
const DRAW_BLOCK: usize = 64;

/// The 2^n probabilities a draw walks: a slice of them, or |psi|^2 computed from the two
/// planes of a state in f64 (`x * x + y * y`, the value a slice made from the planes holds,
/// so both give the same draws).
trait Probs {
    fn len(&self) -> usize;
    fn at(&self, x: usize) -> f64;
    /// The sum over `[lo, hi)` in eight lanes (x in lane x mod 8, lanes added pairwise).
    fn sum(&self, lo: usize, hi: usize) -> f64;
}

/// Eight lane sums added pairwise.
fn lanes(acc: [f64; 8]) -> f64 {
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

impl Probs for [f64] {
    fn len(&self) -> usize {
        <[f64]>::len(self)
    }
    fn at(&self, x: usize) -> f64 {
        self[x]
    }
    fn sum(&self, lo: usize, hi: usize) -> f64 {
        let mut acc = [0.0f64; 8];
        let v = &self[lo..hi];
        let mut it = v.chunks_exact(8);
        for c in &mut it {
            for l in 0..8 {
                acc[l] += c[l];
            }
        }
        for (l, &p) in it.remainder().iter().enumerate() {
            acc[l] += p;
        }
        lanes(acc)
    }
}

/// The two planes of a state.
struct Planes<'a, R>(&'a [R], &'a [R]);

impl<R: Real> Probs for Planes<'_, R> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn at(&self, x: usize) -> f64 {
        let (a, b) = (self.0[x].wide(), self.1[x].wide());
        a * a + b * b
    }
    fn sum(&self, lo: usize, hi: usize) -> f64 {
        let mut acc = [0.0f64; 8];
        let (re, im) = (&self.0[lo..hi], &self.1[lo..hi]);
        let mut r8 = re.chunks_exact(8);
        let mut i8 = im.chunks_exact(8);
        for (a, b) in (&mut r8).zip(&mut i8) {
            for l in 0..8 {
                let (x, y) = (a[l].wide(), b[l].wide());
                acc[l] += x * x + y * y;
            }
        }
        for (l, (a, b)) in r8.remainder().iter().zip(i8.remainder()).enumerate() {
            let (x, y) = (a.wide(), b.wide());
            acc[l] += x * x + y * y;
        }
        lanes(acc)
    }
}

/// The sums of `p` over blocks of [`DRAW_BLOCK`], into `sums` (cleared first); returns
/// their total (added in block order).
fn block_sums<P: Probs + ?Sized>(p: &P, sums: &mut Vec<f64>) -> f64 {
    let d = p.len();
    sums.clear();
    sums.extend(
        (0..d.div_ceil(DRAW_BLOCK)).map(|b| p.sum(b * DRAW_BLOCK, ((b + 1) * DRAW_BLOCK).min(d))),
    );
    sums.iter().sum()
}

/// Walk the cumulative distribution of `p` (summing to about `total`; `sums` its
/// [`block_sums`]) against `shots` sorted uniforms, calling `hit(x)` once per draw landing
/// on basis state x; in passes of at most [`SHOT_CHUNK`] shots. A draw is placed in the
/// first block whose cumulative end lies above it, then on the first state of that block
/// whose cumulative sum (from the block's start) does; a draw left above the block's last
/// partial sum by rounding goes to the block's last state of positive probability.
fn merge_draws<P: Probs + ?Sized>(
    p: &P,
    sums: &[f64],
    total: f64,
    shots: u64,
    rng: &mut Xoshiro256pp,
    buf: &mut Vec<f64>,
    mut hit: impl FnMut(usize),
) {
    let mut left = shots;
    while left > 0 {
        let n = left.min(SHOT_CHUNK);
        merge_pass(p, sums, total, n, rng, buf, &mut hit);
        left -= n;
    }
}

fn merge_pass<P: Probs + ?Sized>(
    p: &P,
    sums: &[f64],
    total: f64,
    shots: u64,
    rng: &mut Xoshiro256pp,
    buf: &mut Vec<f64>,
    hit: &mut impl FnMut(usize),
) {
    sorted_uniforms(shots, total, rng, buf);
    let d = p.len();
    let len = buf.len();
    let mut k = 0;
    let mut cum = 0.0f64;
    for (b, &s) in sums.iter().enumerate() {
        if s <= 0.0 {
            continue;
        }
        let end = cum + s;
        if buf[k] < end {
            let mut part = cum;
            let mut last = b * DRAW_BLOCK;
            for x in b * DRAW_BLOCK..((b + 1) * DRAW_BLOCK).min(d) {
                let px = p.at(x);
                if px <= 0.0 {
                    continue;
                }
                last = x;
                part += px;
                while k < len && buf[k] < part && buf[k] < end {
                    hit(x);
                    k += 1;
                }
            }
            while k < len && buf[k] < end {
                hit(last);
                k += 1;
            }
            if k == len {
                return;
            }
        }
        cum = end;
    }
    // rounding left a few uniforms above the last block's end
    if let Some(last) = (0..d).rev().find(|&x| p.at(x) > 0.0) {
        while k < len {
            hit(last);
            k += 1;
        }
    }
}

/// `sum w[x]` over `shots` draws from `probs` (not necessarily normalised; `sums` holds
/// its [`block_sums`] afterwards).
fn weighted_draws(
    probs: &[f64],
    shots: u64,
    w: &[f64],
    rng: &mut Xoshiro256pp,
    buf: &mut Vec<f64>,
    sums: &mut Vec<f64>,
) -> f64 {
    let mut acc = 0.0f64;
    let total = block_sums(probs, sums);
    merge_draws(probs, sums, total, shots, rng, buf, |x| acc += w[x]);
    acc
}

/// Multinomial counts of `shots` draws from every row of `probs` (`rows x 2^n`,
/// non-negative, not necessarily normalised), row `r` drawn from stream
/// `(seed, index0 + r)`. Returns `rows x 2^n` counts.
pub fn sample_counts(
    probs: &[f64],
    rows: usize,
    shots: u64,
    seed: u64,
    index0: u64,
    num_threads: Option<usize>,
    cancel: &AtomicBool,
) -> Result<Vec<u64>> {
    ensure(
        rows > 0 && probs.len().is_multiple_of(rows),
        "probs",
        || format!("{} values do not split into {rows} rows", probs.len()),
    )?;
    let d = probs.len() / rows;
    ensure(
        probs.iter().all(|p| p.is_finite() && *p >= 0.0),
        "probs",
        || "must be finite and non-negative".into(),
    )?;
    ensure((1..=MAX_SHOTS).contains(&shots), "shots", || {
        format!("must lie in [1, {MAX_SHOTS}] per row, got {shots}")
    })?;
    let t = resolve_threads(num_threads)?;
    let held = shots.min(SHOT_CHUNK) as usize + 1;
    let need =
        memory::bytes(&[rows, d, 8], "probs")? + memory::bytes(&[t.max(1), held, 8], "shots")?;
    memory::ensure_fits(
        need,
        if rows * d > held * t.max(1) {
            "probs"
        } else {
            "shots"
        },
    )?;
    let mut out = memory::try_vec(rows * d, 0u64, "probs")?;
    let threads =
        crate::parallel::useful_threads(t, rows, (rows as u64).saturating_mul(d as u64 + shots));
    let row = |(r, c): (usize, &mut [u64])| {
        check_cancel(cancel)?;
        let p = &probs[r * d..(r + 1) * d];
        let mut sums = Vec::new();
        let total = block_sums(p, &mut sums);
        if total <= 0.0 {
            return Err(CoreError::param(
                "probs",
                format!("row {r} sums to {total}: no outcome to draw"),
            ));
        }
        let mut rng = Xoshiro256pp::stream(seed, tags::CIRCUIT, index0 + r as u64);
        let mut buf = Vec::with_capacity(held);
        merge_draws(p, &sums, total, shots, &mut rng, &mut buf, |x| c[x] += 1);
        Ok::<(), CoreError>(())
    };
    with_exact_threads(threads, || {
        if threads <= 1 {
            out.chunks_mut(d.max(1)).enumerate().try_for_each(row)
        } else {
            out.par_chunks_mut(d.max(1)).enumerate().try_for_each(row)
        }
    })??;
    Ok(out)
}

// ------------------------------------------------------------------ fusion

/// A forward run of `ops` (angles resolved) with two-qubit fusion, blocked above the
/// caches or on `threads` > 1 ([`blocks::run`]).
fn run_fused<R: Real>(
    n: usize,
    ops: &[Op],
    angles: &[f64],
    re: &mut [R],
    im: &mut [R],
    threads: usize,
) {
    blocks::run(
        n,
        &pairs2::fuse_pairs(n, ops, angles, std::mem::size_of::<R>() == 8),
        angles,
        re,
        im,
        threads,
    );
}

/// The 2x2 matrix of a one-qubit op at the given angles (None for other ops).
fn single(op: &Op, angles: &[f64]) -> Option<(usize, [f64; 8])> {
    match *op {
        Op::Rot { axis, q, slot } => {
            let (s, c) = (0.5 * angles[slot]).sin_cos();
            Some((
                q,
                match axis {
                    Axis::X => [c, 0.0, 0.0, -s, 0.0, -s, c, 0.0],
                    Axis::Y => [c, 0.0, -s, 0.0, s, 0.0, c, 0.0],
                    Axis::Z => [c, -s, 0.0, 0.0, 0.0, 0.0, c, s],
                },
            ))
        }
        Op::Mat { q, m } => Some((q, m)),
        _ => None,
    }
}

/// `a b` for 2x2 complex matrices stored as [re00, im00, re01, im01, re10, im10, re11, im11].
fn matmul(a: &[f64; 8], b: &[f64; 8]) -> [f64; 8] {
    let mut out = [0.0; 8];
    for r in 0..2 {
        for c in 0..2 {
            let (mut re, mut im) = (0.0, 0.0);
            for k in 0..2 {
                let (ar, ai) = (a[4 * r + 2 * k], a[4 * r + 2 * k + 1]);
                let (br, bi) = (b[4 * k + 2 * c], b[4 * k + 2 * c + 1]);
                re += ar * br - ai * bi;
                im += ar * bi + ai * br;
            }
            out[4 * r + 2 * c] = re;
            out[4 * r + 2 * c + 1] = im;
        }
    }
    out
}

/// `ops` with every run of consecutive one-qubit gates on the same qubit multiplied into
/// one matrix gate (one pass over the state instead of one per gate; the kernels are
/// bound by memory traffic, so a matrix costs about what a rotation does). For runs of
/// the forward circuit only (slots are resolved to their angles).
pub fn fuse(ops: &[Op], angles: &[f64]) -> Vec<Op> {
    let mut out = Vec::with_capacity(ops.len());
    let mut i = 0;
    while i < ops.len() {
        if let Some((q, m)) = single(&ops[i], angles) {
            let mut acc = m;
            let mut j = i + 1;
            while let Some((q2, m2)) = ops.get(j).and_then(|o| single(o, angles)) {
                if q2 != q {
                    break;
                }
                acc = matmul(&m2, &acc);
                j += 1;
            }
            out.push(if j - i >= 2 {
                Op::Mat { q, m: acc }
            } else {
                ops[i]
            });
            i = j;
        } else {
            out.push(ops[i]);
            i += 1;
        }
    }
    out
}

/// Amplitude precision of the kernels: f64 (every path) or f32 (forward states only).
/// Gate constants are computed in f64 and rounded once to the precision.
pub trait Real:
    Copy
    + Send
    + Sync
    + Default
    + PartialEq
    + std::fmt::Debug
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Neg<Output = Self>
    + 'static
{
    /// `v` rounded to this precision.
    fn of(v: f64) -> Self;
    /// `self * a + b` rounded once (exact fused multiply-add: the same bits on every CPU,
    /// whether or not it has an FMA unit).
    fn mul_add(self, a: Self, b: Self) -> Self;
    /// `ops` in order on one state (the run-time dispatched kernels of this precision).
    fn run(n: usize, ops: &[Op], angles: &[f64], re: &mut [Self], im: &mut [Self], inverse: bool);
    /// `self` as f64 (exact).
    fn wide(self) -> f64;
}

impl Real for f64 {
    #[inline(always)]
    fn of(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        f64::mul_add(self, a, b)
    }
    fn run(n: usize, ops: &[Op], angles: &[f64], re: &mut [f64], im: &mut [f64], inverse: bool) {
        run_ops(n, ops, angles, re, im, inverse)
    }
    #[inline(always)]
    fn wide(self) -> f64 {
        self
    }
}

impl Real for f32 {
    #[inline(always)]
    fn of(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        f32::mul_add(self, a, b)
    }
    fn run(n: usize, ops: &[Op], angles: &[f64], re: &mut [f32], im: &mut [f32], inverse: bool) {
        run_ops32(n, ops, angles, re, im, inverse)
    }
    #[inline(always)]
    fn wide(self) -> f64 {
        self as f64
    }
}

// ------------------------------------------------------------------ kernels

#[inline(always)]
fn stride(n: usize, q: usize) -> usize {
    1usize << (n - 1 - q)
}

/// Apply `t(a_re, a_im, b_re, b_im) -> (a_re, a_im, b_re, b_im)` to every pair of
/// amplitudes (target bit 0, target bit 1) with the control bit set (`ctrl` 0: all).
/// Blocks of `2 st` amplitudes hold `st` pairs at distance `st`; the loops are written
/// over zipped slices (or fixed-size chunks for `st < 4`) so that they vectorise, and a
/// control bit below the target's leaves runs of pairs (scalar when shorter than a
/// vector).
#[inline(always)]
fn pairs<R: Real, T>(re: &mut [R], im: &mut [R], st: usize, ctrl: usize, t: T)
where
    T: Fn(R, R, R, R) -> (R, R, R, R),
{
    // strides 4 (and 8 at f32): a run of pairs is shorter than a vector ([`in_lanes`])
    let short = if std::mem::size_of::<R>() == 4 { 16 } else { 8 };
    if (4..short).contains(&st) && re.len() >= LANE_BLOCK {
        match st {
            4 => return in_lanes::<R, 4, T>(re, im, ctrl, t),
            8 => return in_lanes::<R, 8, T>(re, im, ctrl, t),
            _ => {}
        }
    }
    match st {
        1 => return small::<R, 1, 2, T>(re, im, ctrl, t),
        2 => return small::<R, 2, 4, T>(re, im, ctrl, t),
        _ => {}
    }
    let w = 2 * st;
    for (b, (cr, ci)) in re
        .chunks_exact_mut(w)
        .zip(im.chunks_exact_mut(w))
        .enumerate()
    {
        let base = b * w;
        let (r0, r1) = cr.split_at_mut(st);
        let (i0, i1) = ci.split_at_mut(st);
        if ctrl == 0 || ctrl >= w {
            if ctrl != 0 && base & ctrl == 0 {
                continue;
            }
            full(r0, i0, r1, i1, &t);
        } else if ctrl >= 4 {
            // runs of `ctrl` pairs with the control bit set, every 2 ctrl
            let mut k = ctrl;
            while k < st {
                full(
                    &mut r0[k..k + ctrl],
                    &mut i0[k..k + ctrl],
                    &mut r1[k..k + ctrl],
                    &mut i1[k..k + ctrl],
                    &t,
                );
                k += 2 * ctrl;
            }
        } else {
            // control stride 1 or 2: short runs, scalar
            let mut k = ctrl;
            while k < st {
                for j in k..k + ctrl {
                    let (x, y, z, v) = t(r0[j], i0[j], r1[j], i1[j]);
                    r0[j] = x;
                    i0[j] = y;
                    r1[j] = z;
                    i1[j] = v;
                }
                k += 2 * ctrl;
            }
        }
    }
}

#[inline(always)]
fn full<R: Real, T>(r0: &mut [R], i0: &mut [R], r1: &mut [R], i1: &mut [R], t: &T)
where
    T: Fn(R, R, R, R) -> (R, R, R, R),
{
    for (((a, b), c), e) in r0
        .iter_mut()
        .zip(i0.iter_mut())
        .zip(r1.iter_mut())
        .zip(i1.iter_mut())
    {
        let (x, y, z, v) = t(*a, *b, *c, *e);
        *a = x;
        *b = y;
        *c = z;
        *e = v;
    }
}

/// CZ on the qubits of strides `sa` and `sb`: the amplitudes with both bits set negated.
/// With a stride below [`LANE_BLOCK`], blocks of 16 amplitudes are multiplied by a vector
/// of signs (exact: the same bits as negation); otherwise through [`pairs`]. On the two
/// lowest qubits the pair loop took 17x the time of a CZ on high qubits, this 5x
/// (probe on a 2^16-amplitude state, one thread; f32 brick circuit forward 15% faster).
#[inline(always)]
fn cz<R: Real>(re: &mut [R], im: &mut [R], sa: usize, sb: usize) {
    const B: usize = LANE_BLOCK;
    let (lo, hi) = (sa.min(sb), sa.max(sb));
    if lo >= B || re.len() < B {
        return pairs(re, im, lo, hi, |ar, ai, br, bi| (ar, ai, -br, -bi));
    }
    // lanes whose bits below the block are set for both qubits (the higher one may lie
    // above the block: then whole blocks are skipped or signed)
    let (one, minus) = (R::of(1.0), R::of(-1.0));
    let in_block = if hi < B { lo | hi } else { lo };
    let mut sign = [one; B];
    for (l, v) in sign.iter_mut().enumerate() {
        if l & in_block == in_block {
            *v = minus;
        }
    }
    for (b, (br, bi)) in re
        .chunks_exact_mut(B)
        .zip(im.chunks_exact_mut(B))
        .enumerate()
    {
        if hi >= B && (b * B) & hi == 0 {
            continue;
        }
        for l in 0..B {
            br[l] = br[l] * sign[l];
            bi[l] = bi[l] * sign[l];
        }
    }
}

/// Amplitudes per block of [`in_lanes`]: one AVX-512 register of f32, two of f64.
const LANE_BLOCK: usize = 16;

/// [`pairs`] for a target stride `ST` below [`LANE_BLOCK`]: every block of 16 amplitudes
/// holds whole pairs, so each lane takes its pair's two amplitudes by a constant shuffle,
/// runs the pair's transform and keeps its own half (the transform runs twice per pair,
/// on full vectors, where the run loops fell to scalar or 128-bit code: at f64 a one-qubit
/// matrix at stride 4 took 7x the time of one at a high stride, 1.1-1.3x with this kernel).
/// Lanes whose control bit (below the block) is clear keep their amplitude. Each pair
/// goes through `t`'s arithmetic as in the run loops: the same bits. Used for strides 4
/// (and 8 at f32), where a run of pairs is shorter than a vector; at strides 1 and 2 the
/// fixed-size blocks of [`small`] measured faster.
#[inline(always)]
fn in_lanes<R: Real, const ST: usize, T>(re: &mut [R], im: &mut [R], ctrl: usize, t: T)
where
    T: Fn(R, R, R, R) -> (R, R, R, R),
{
    const B: usize = LANE_BLOCK;
    let low_ctrl = if ctrl < B { ctrl } else { 0 };
    for (b, (br, bi)) in re
        .chunks_exact_mut(B)
        .zip(im.chunks_exact_mut(B))
        .enumerate()
    {
        if ctrl >= B && (b * B) & ctrl == 0 {
            continue;
        }
        let mut xr = [R::default(); B];
        let mut xi = [R::default(); B];
        xr.copy_from_slice(br);
        xi.copy_from_slice(bi);
        let mut ar = [R::default(); B];
        let mut ai = [R::default(); B];
        let mut cr = [R::default(); B];
        let mut ci = [R::default(); B];
        for l in 0..B {
            ar[l] = xr[l & !ST];
            ai[l] = xi[l & !ST];
            cr[l] = xr[l | ST];
            ci[l] = xi[l | ST];
        }
        let mut y0r = [R::default(); B];
        let mut y0i = [R::default(); B];
        let mut y1r = [R::default(); B];
        let mut y1i = [R::default(); B];
        for l in 0..B {
            (y0r[l], y0i[l], y1r[l], y1i[l]) = t(ar[l], ai[l], cr[l], ci[l]);
        }
        for l in 0..B {
            let keep = low_ctrl != 0 && l & low_ctrl == 0;
            let (vr, vi) = if l & ST == 0 {
                (y0r[l], y0i[l])
            } else {
                (y1r[l], y1i[l])
            };
            br[l] = if keep { xr[l] } else { vr };
            bi[l] = if keep { xi[l] } else { vi };
        }
    }
}

/// [`pairs`] for targets of stride `ST` < 4 (`W = 2 ST` amplitudes per block).
#[inline(always)]
fn small<R: Real, const ST: usize, const W: usize, T>(re: &mut [R], im: &mut [R], ctrl: usize, t: T)
where
    T: Fn(R, R, R, R) -> (R, R, R, R),
{
    for (b, (cr, ci)) in re
        .chunks_exact_mut(W)
        .zip(im.chunks_exact_mut(W))
        .enumerate()
    {
        let cr: &mut [R; W] = cr.try_into().unwrap();
        let ci: &mut [R; W] = ci.try_into().unwrap();
        if ctrl >= W && (b * W) & ctrl == 0 {
            continue;
        }
        for j in 0..ST {
            if ctrl != 0 && ctrl < W && j & ctrl == 0 {
                continue;
            }
            let (x, y, z, v) = t(cr[j], ci[j], cr[j + ST], ci[j + ST]);
            cr[j] = x;
            ci[j] = y;
            cr[j + ST] = z;
            ci[j + ST] = v;
        }
    }
}

/// `exp(-i a P / 2)` (or its inverse) on the pairs.
#[inline(always)]
pub(crate) fn rotation<R: Real>(
    re: &mut [R],
    im: &mut [R],
    axis: Axis,
    st: usize,
    ctrl: usize,
    a: f64,
) {
    let (s, c) = (0.5 * a).sin_cos();
    let (s, c) = (R::of(s), R::of(c));
    match axis {
        Axis::X => pairs(re, im, st, ctrl, |ar, ai, br, bi| {
            rot_pair::<AX_X, R>(c, s, ar, ai, br, bi)
        }),
        Axis::Y => pairs(re, im, st, ctrl, |ar, ai, br, bi| {
            rot_pair::<AX_Y, R>(c, s, ar, ai, br, bi)
        }),
        Axis::Z => pairs(re, im, st, ctrl, |ar, ai, br, bi| {
            rot_pair::<AX_Z, R>(c, s, ar, ai, br, bi)
        }),
    }
}

/// Axes as constants, for kernels specialised per axis.
const AX_X: u8 = 0;
const AX_Y: u8 = 1;
const AX_Z: u8 = 2;

/// `exp(-i a P / 2)` (axis `A`) on one pair (target bit 0: `a`, 1: `b`), `c` and `s` the
/// cosine and sine of `a / 2`: the arithmetic of every rotation, forward and in the
/// adjoint sweep.
#[inline(always)]
fn rot_pair<const A: u8, R: Real>(c: R, s: R, ar: R, ai: R, br: R, bi: R) -> (R, R, R, R) {
    match A {
        // [[c, -is], [-is, c]]
        AX_X => (
            c * ar + s * bi,
            c * ai - s * br,
            s * ai + c * br,
            c * bi - s * ar,
        ),
        // [[c, -s], [s, c]]
        AX_Y => (
            c * ar - s * br,
            c * ai - s * bi,
            s * ar + c * br,
            s * ai + c * bi,
        ),
        // diag(c - is, c + is)
        _ => (
            c * ar + s * ai,
            c * ai - s * ar,
            c * br - s * bi,
            c * bi + s * br,
        ),
    }
}

#[inline(always)]
fn matrix<R: Real>(re: &mut [R], im: &mut [R], st: usize, m: &[f64; 8]) {
    let [ar_, ai_, br_, bi_, cr_, ci_, dr_, di_] = m.map(R::of);
    pairs(re, im, st, 0, |xr, xi, yr, yi| {
        (
            ar_ * xr - ai_ * xi + br_ * yr - bi_ * yi,
            ar_ * xi + ai_ * xr + br_ * yi + bi_ * yr,
            cr_ * xr - ci_ * xi + dr_ * yr - di_ * yi,
            cr_ * xi + ci_ * xr + dr_ * yi + di_ * yr,
        )
    })
}

#[inline(always)]
fn dagger(m: &[f64; 8]) -> [f64; 8] {
    // (U^dag)_{ij} = conj(U_{ji})
    [m[0], -m[1], m[4], -m[5], m[2], -m[3], m[6], -m[7]]
}

#[inline(always)]
fn apply_op<R: Real>(n: usize, op: &Op, angles: &[f64], re: &mut [R], im: &mut [R], inverse: bool) {
    let sign = if inverse { -1.0 } else { 1.0 };
    match *op {
        Op::Rot { axis, q, slot } => rotation(re, im, axis, stride(n, q), 0, sign * angles[slot]),
        Op::CRot { axis, c, t, slot } => rotation(
            re,
            im,
            axis,
            stride(n, t),
            stride(n, c),
            sign * angles[slot],
        ),
        Op::Cx { c, t } => pairs(re, im, stride(n, t), stride(n, c), |ar, ai, br, bi| {
            (br, bi, ar, ai)
        }),
        Op::Cz { a, b } => cz(re, im, stride(n, a), stride(n, b)),
        Op::Mat { q, ref m } => {
            if inverse {
                matrix(re, im, stride(n, q), &dagger(m))
            } else {
                matrix(re, im, stride(n, q), m)
            }
        }
        Op::Mat2 { a, b, ref m } => {
            if inverse {
                pairs2::matrix2(n, re, im, a, b, &pairs2::dagger2(m))
            } else {
                pairs2::matrix2(n, re, im, a, b, m)
            }
        }
    }
}

/// The Pauli `P` (no phase factor beyond the matrix's own) on qubit `q`.
#[inline(always)]
fn apply_pauli<R: Real>(n: usize, axis: Axis, q: usize, re: &mut [R], im: &mut [R]) {
    let st = stride(n, q);
    match axis {
        Axis::X => pairs(re, im, st, 0, |ar, ai, br, bi| (br, bi, ar, ai)),
        // Y = [[0, -i], [i, 0]]: (a, b) -> (-i b, i a)
        Axis::Y => pairs(re, im, st, 0, |ar, ai, br, bi| (bi, -br, -ai, ar)),
        Axis::Z => pairs(re, im, st, 0, |ar, ai, br, bi| (ar, ai, -br, -bi)),
    }
}

#[inline(always)]
fn run_ops_impl<R: Real>(
    n: usize,
    ops: &[Op],
    angles: &[f64],
    re: &mut [R],
    im: &mut [R],
    inverse: bool,
) {
    if inverse {
        for op in ops.iter().rev() {
            apply_op(n, op, angles, re, im, true);
        }
    } else {
        for op in ops {
            apply_op(n, op, angles, re, im, false);
        }
    }
}

crate::multiversion! {
    /// Apply `ops` in order (or their inverses in reverse order).
    fn run_ops(n: usize, ops: &[Op], angles: &[f64], re: &mut [f64], im: &mut [f64], inverse: bool) = run_ops_impl::<f64>;
}

crate::multiversion! {
    /// [`run_ops`] on f32 amplitudes.
    fn run_ops32(n: usize, ops: &[Op], angles: &[f64], re: &mut [f32], im: &mut [f32], inverse: bool) = run_ops_impl::<f32>;
}

/// `Im <lambda| G |phi>` for the generator G of a (controlled) rotation.
///
/// The axis is matched once, outside the loops, and runs of pairs are read as fixed
/// arrays of four (no bounds check per amplitude), so the four partial sums are one
/// vector. (Indexed access, the axis matched per pair and a closure per run, compiled
/// as a function of its own without the sweep's vector instruction set, kept this loop
/// scalar: it took more time than the two rotations the sweep applies after it.)
#[inline(always)]
fn generator_overlap(
    lr: &[f64],
    li: &[f64],
    pr: &[f64],
    pi: &[f64],
    axis: Axis,
    st: usize,
    ctrl: usize,
) -> f64 {
    match axis {
        Axis::X => overlap_axis::<AX_X>(lr, li, pr, pi, st, ctrl),
        Axis::Y => overlap_axis::<AX_Y>(lr, li, pr, pi, st, ctrl),
        Axis::Z => overlap_axis::<AX_Z>(lr, li, pr, pi, st, ctrl),
    }
}

/// The contribution of one pair (target bit 0: `a`, 1: `b`; `l` lambda, `p` psi) to
/// `Im <lambda| P |phi>` for the axis `A`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn pair_term<const A: u8>(
    lar: f64,
    lai: f64,
    lbr: f64,
    lbi: f64,
    par: f64,
    pai: f64,
    pbr: f64,
    pbi: f64,
) -> f64 {
    // Im(conj(l) f) = l_r f_i - l_i f_r; Re(conj(l) f) = l_r f_r + l_i f_i
    match A {
        // Z: conj(l_a) f_a - conj(l_b) f_b
        AX_Z => (lar * pai - lai * par) - (lbr * pbi - lbi * pbr),
        // X: conj(l_a) f_b + conj(l_b) f_a
        AX_X => (lar * pbi - lai * pbr) + (lbr * pai - lbi * par),
        // Y: conj(l_a) (-i f_b) + conj(l_b) (i f_a): Im(-i z) = -Re z, Im(i z) = Re z
        _ => -(lar * pbr + lai * pbi) + (lbr * par + lbi * pai),
    }
}

/// [`generator_overlap`] for one axis: one running sum below stride 4 without a control,
/// else four partial sums per run of pairs (a block of `st` pairs at distance `st`; with a
/// control, every run of `min(st, ctrl)` indices whose target bit is 0 and control bit 1),
/// added to the total run by run.
#[inline(always)]
fn overlap_axis<const A: u8>(
    lr: &[f64],
    li: &[f64],
    pr: &[f64],
    pi: &[f64],
    st: usize,
    ctrl: usize,
) -> f64 {
    let d = lr.len();
    let mut acc = 0.0f64;
    if ctrl == 0 && st < 4 {
        let mut b = 0;
        while b < d {
            for j in b..b + st {
                let k = j + st;
                acc += pair_term::<A>(lr[j], li[j], lr[k], li[k], pr[j], pi[j], pr[k], pi[k]);
            }
            b += 2 * st;
        }
        return acc;
    }
    #[inline(always)]
    fn four(x: &[f64], at: usize) -> [f64; 4] {
        x[at..at + 4].try_into().unwrap()
    }
    let run = if ctrl == 0 { st } else { st.min(ctrl) };
    let step = if ctrl == 0 { 2 * st } else { run };
    let mut i0 = 0;
    while i0 < d {
        if ctrl == 0 || (i0 & st == 0 && i0 & ctrl != 0) {
            let mut part = [0.0f64; 4];
            let mut j = i0;
            let end = i0 + run;
            while j + 4 <= end {
                let k = j + st;
                let (lar, lai, lbr, lbi) = (four(lr, j), four(li, j), four(lr, k), four(li, k));
                let (par, pai, pbr, pbi) = (four(pr, j), four(pi, j), four(pr, k), four(pi, k));
                for l in 0..4 {
                    part[l] += pair_term::<A>(
                        lar[l], lai[l], lbr[l], lbi[l], par[l], pai[l], pbr[l], pbi[l],
                    );
                }
                j += 4;
            }
            while j < end {
                let k = j + st;
                part[0] += pair_term::<A>(lr[j], li[j], lr[k], li[k], pr[j], pi[j], pr[k], pi[k]);
                j += 1;
            }
            acc += (part[0] + part[1]) + (part[2] + part[3]);
        }
        i0 += step;
    }
    acc
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn adjoint_row_impl(
    n: usize,
    ops: &[Op],
    angles: &[f64],
    pr: &mut [f64],
    pi: &mut [f64],
    lr: &mut [f64],
    li: &mut [f64],
    grad: &mut [f64],
) {
    let mut end = ops.len();
    while end > 0 {
        // a run of rotations on one qubit is swept in one pass (see `fused_rotations`)
        if let Op::Rot { q, .. } = ops[end - 1] {
            let mut start = end - 1;
            while start > 0
                && end - start < MAX_FUSED_ROTATIONS
                && matches!(ops[start - 1], Op::Rot { q: q2, .. } if q2 == q)
            {
                start -= 1;
            }
            if end - start >= 2 {
                fused_rotations(n, &ops[start..end], angles, pr, pi, lr, li, grad);
                end = start;
                continue;
            }
        }
        adjoint_gate(n, &ops[end - 1], angles, pr, pi, lr, li, grad);
        end -= 1;
    }
}

/// One gate of the adjoint sweep: its gradient when it has an angle, then the gate undone
/// on psi and on lambda.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn adjoint_gate(
    n: usize,
    op: &Op,
    angles: &[f64],
    pr: &mut [f64],
    pi: &mut [f64],
    lr: &mut [f64],
    li: &mut [f64],
    grad: &mut [f64],
) {
    match *op {
        Op::Rot { axis, q, slot } => {
            grad[slot] = generator_overlap(lr, li, pr, pi, axis, stride(n, q), 0);
        }
        Op::CRot {
            axis, c, t, slot, ..
        } => {
            grad[slot] = generator_overlap(lr, li, pr, pi, axis, stride(n, t), stride(n, c));
        }
        _ => {}
    }
    apply_op(n, op, angles, pr, pi, true);
    apply_op(n, op, angles, lr, li, true);
}

/// Longest run of rotations [`fused_rotations`] takes at once.
const MAX_FUSED_ROTATIONS: usize = 8;

/// Lanes of [`fused_rotations`]: `N` pairs of amplitudes of psi (`p`) and lambda (`l`),
/// target bit 0 (`a`) and 1 (`b`), real and imaginary parts.
struct PairLanes<const N: usize> {
    par: [f64; N],
    pai: [f64; N],
    pbr: [f64; N],
    pbi: [f64; N],
    lar: [f64; N],
    lai: [f64; N],
    lbr: [f64; N],
    lbi: [f64; N],
}

impl<const N: usize> PairLanes<N> {
    #[inline(always)]
    fn load(pr: &[f64], pi: &[f64], lr: &[f64], li: &[f64], j: usize, st: usize) -> Self {
        let at = |x: &[f64], i: usize| -> [f64; N] { x[i..i + N].try_into().unwrap() };
        Self {
            par: at(pr, j),
            pai: at(pi, j),
            pbr: at(pr, j + st),
            pbi: at(pi, j + st),
            lar: at(lr, j),
            lai: at(li, j),
            lbr: at(lr, j + st),
            lbi: at(li, j + st),
        }
    }

    #[inline(always)]
    fn store(
        &self,
        pr: &mut [f64],
        pi: &mut [f64],
        lr: &mut [f64],
        li: &mut [f64],
        j: usize,
        st: usize,
    ) {
        pr[j..j + N].copy_from_slice(&self.par);
        pi[j..j + N].copy_from_slice(&self.pai);
        pr[j + st..j + st + N].copy_from_slice(&self.pbr);
        pi[j + st..j + st + N].copy_from_slice(&self.pbi);
        lr[j..j + N].copy_from_slice(&self.lar);
        li[j..j + N].copy_from_slice(&self.lai);
        lr[j + st..j + st + N].copy_from_slice(&self.lbr);
        li[j + st..j + st + N].copy_from_slice(&self.lbi);
    }

    /// Add gate `A`'s overlap terms into `part` (lane by lane), then undo the gate
    /// (inverse rotation, `c` and `s` of the negated angle) on psi and lambda, with
    /// [`pair_term`] and [`rot_pair`], the arithmetic of the gate-by-gate sweep.
    #[inline(always)]
    fn step<const A: u8>(&mut self, c: f64, s: f64, part: &mut [f64; N]) {
        for l in 0..N {
            part[l] += pair_term::<A>(
                self.lar[l],
                self.lai[l],
                self.lbr[l],
                self.lbi[l],
                self.par[l],
                self.pai[l],
                self.pbr[l],
                self.pbi[l],
            );
        }
        for l in 0..N {
            (self.par[l], self.pai[l], self.pbr[l], self.pbi[l]) =
                rot_pair::<A, f64>(c, s, self.par[l], self.pai[l], self.pbr[l], self.pbi[l]);
            (self.lar[l], self.lai[l], self.lbr[l], self.lbi[l]) =
                rot_pair::<A, f64>(c, s, self.lar[l], self.lai[l], self.lbr[l], self.lbi[l]);
        }
    }

    /// Every gate of the run on these lanes, the last gate first.
    #[inline(always)]
    fn sweep<const K: usize>(
        &mut self,
        axes: &[Axis; K],
        cs: &[(f64, f64); K],
        part: &mut [[f64; N]; K],
    ) {
        for ((ax, &(c, s)), p) in axes.iter().zip(cs).zip(part.iter_mut()) {
            match ax {
                Axis::X => self.step::<AX_X>(c, s, p),
                Axis::Y => self.step::<AX_Y>(c, s, p),
                Axis::Z => self.step::<AX_Z>(c, s, p),
            }
        }
    }
}

/// The adjoint sweep over `run`, 2 to [`MAX_FUSED_ROTATIONS`] consecutive rotations on one
/// qubit, in one pass over psi and lambda instead of three per gate: pairs of amplitudes
/// are loaded once, and for each gate from the last to the first its gradient terms are
/// added and the gate undone on both states. The terms are summed in
/// [`generator_overlap`]'s order (one running sum below stride 4, four partial sums per
/// block of pairs above) and every pair sees [`rotation`]'s arithmetic, so gradients and
/// undone states equal the gate-by-gate sweep's bit for bit.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn fused_rotations(
    n: usize,
    run: &[Op],
    angles: &[f64],
    pr: &mut [f64],
    pi: &mut [f64],
    lr: &mut [f64],
    li: &mut [f64],
    grad: &mut [f64],
) {
    // the run length as a constant, so the per-gate sums stay in registers
    match run.len() {
        2 => fused_run::<2>(n, run, angles, pr, pi, lr, li, grad),
        3 => fused_run::<3>(n, run, angles, pr, pi, lr, li, grad),
        4 => fused_run::<4>(n, run, angles, pr, pi, lr, li, grad),
        5 => fused_run::<5>(n, run, angles, pr, pi, lr, li, grad),
        6 => fused_run::<6>(n, run, angles, pr, pi, lr, li, grad),
        7 => fused_run::<7>(n, run, angles, pr, pi, lr, li, grad),
        _ => fused_run::<8>(n, run, angles, pr, pi, lr, li, grad),
    }
}

/// [`fused_rotations`] for a run of exactly `K` gates.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn fused_run<const K: usize>(
    n: usize,
    run: &[Op],
    angles: &[f64],
    pr: &mut [f64],
    pi: &mut [f64],
    lr: &mut [f64],
    li: &mut [f64],
    grad: &mut [f64],
) {
    assert_eq!(run.len(), K, "fused_run: run length");
    let mut axes = [Axis::X; K];
    let mut slots = [0usize; K];
    let mut cs = [(0f64, 0f64); K];
    let mut q = 0;
    // gate m of the sweep is run[K - 1 - m]; its inverse is `rotation` at -angle
    for m in 0..K {
        if let Op::Rot { axis, q: qq, slot } = run[K - 1 - m] {
            let (s, c) = (0.5 * -angles[slot]).sin_cos(); // -1.0 * x in `apply_op`: the same bits
            (axes[m], slots[m], cs[m], q) = (axis, slot, (c, s), qq);
        }
    }
    let st = stride(n, q);
    let d = pr.len();
    let mut acc = [0f64; K];
    if st < 4 {
        let mut part = [[0f64; 1]; K];
        let mut b = 0;
        while b < d {
            for j in b..b + st {
                let mut x = PairLanes::<1>::load(pr, pi, lr, li, j, st);
                x.sweep(&axes, &cs, &mut part);
                x.store(pr, pi, lr, li, j, st);
            }
            b += 2 * st;
        }
        for m in 0..K {
            acc[m] = part[m][0];
        }
    } else {
        let mut b = 0;
        while b < d {
            let mut part = [[0f64; 4]; K];
            for j in (b..b + st).step_by(4) {
                let mut x = PairLanes::<4>::load(pr, pi, lr, li, j, st);
                x.sweep(&axes, &cs, &mut part);
                x.store(pr, pi, lr, li, j, st);
            }
            for m in 0..K {
                let p = &part[m];
                acc[m] += (p[0] + p[1]) + (p[2] + p[3]);
            }
            b += 2 * st;
        }
    }
    for m in 0..K {
        grad[slots[m]] = acc[m];
    }
}

crate::multiversion! {
    /// One backward sweep of the adjoint method (see [`Program::adjoint`]).
    fn adjoint_row(n: usize, ops: &[Op], angles: &[f64], pr: &mut [f64], pi: &mut [f64], lr: &mut [f64], li: &mut [f64], grad: &mut [f64]) = adjoint_row_impl;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no() -> AtomicBool {
        AtomicBool::new(false)
    }

    /// The largest |x - y| over two equally long vectors.
    fn max_diff(x: &[f64], y: &[f64]) -> f64 {
        x.iter()
            .zip(y)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
    }

    /// Dense 2^n x 2^n complex matrix of one op (reference), row-major (re, im).
    fn dense(n: usize, op: &Op, angles: &[f64]) -> Vec<(f64, f64)> {
        let d = 1 << n;
        let mut m = vec![(0.0, 0.0); d * d];
        for col in 0..d {
            let mut re = vec![0.0; d];
            let mut im = vec![0.0; d];
            re[col] = 1.0;
            apply_op(n, op, angles, &mut re, &mut im, false);
            for row in 0..d {
                m[row * d + col] = (re[row], im[row]);
            }
        }
        m
    }

    /// |0...0> run gate by gate through `ops` in the order the blocked path plans them
    /// (both planes, re then im).
    fn planned_from_zero(n: usize, ops: &[Op], a: &[f64]) -> Vec<f64> {
        let d = 1usize << n;
        let mut st = vec![0.0f64; 2 * d];
        st[0] = 1.0;
        let (re, im) = st.split_at_mut(d);
        run_ops(
            n,
            &blocks::planned_order(n, ops, blocks::HIGH),
            a,
            re,
            im,
            false,
        );
        st
    }

    fn random_program(n: usize, gates: usize, seed: u64) -> (Program, Vec<f64>) {
        let mut rng = Xoshiro256pp::stream(seed, 99, 0);
        let (mut kinds, mut q0, mut q1, mut mats) = (vec![], vec![], vec![], vec![]);
        for _ in 0..gates {
            let k = rng.below(9) as i64;
            let a = rng.below(n) as i64;
            let mut b = rng.below(n) as i64;
            if b == a {
                b = (a + 1) % n as i64;
            }
            kinds.push(k);
            q0.push(a);
            q1.push(b);
            let mut m = [0.0; 8];
            // a unitary: RZ RY RZ product written out is not needed; any matrix works for
            // the dense comparison, but keep it unitary so states stay normalised.
            let (t, p, l) = (
                rng.next_f64() * 6.0,
                rng.next_f64() * 6.0,
                rng.next_f64() * 6.0,
            );
            let (c, s) = ((t / 2.0).cos(), (t / 2.0).sin());
            // U3(t, p, l) = [[c, -e^{il} s], [e^{ip} s, e^{i(p+l)} c]]
            m[0] = c;
            m[2] = -l.cos() * s;
            m[3] = -l.sin() * s;
            m[4] = p.cos() * s;
            m[5] = p.sin() * s;
            m[6] = (p + l).cos() * c;
            m[7] = (p + l).sin() * c;
            mats.push(m);
        }
        let prog = Program::from_codes(n, &kinds, &q0, &q1, &mats).unwrap();
        let angles = (0..prog.num_slots())
            .map(|_| rng.next_f64() * 6.0 - 3.0)
            .collect();
        (prog, angles)
    }

    #[test]
    fn states_match_dense_products() {
        for n in 1..=4 {
            let (p, a) = random_program(n.max(2), 25, n as u64);
            let n = p.n();
            let d = 1 << n;
            let st = p.states(&a, 1, None, Some(1), &no()).unwrap();
            let mut v: Vec<(f64, f64)> = (0..d).map(|i| ((i == 0) as u8 as f64, 0.0)).collect();
            for op in &p.ops {
                let m = dense(n, op, &a);
                v = (0..d)
                    .map(|r| {
                        (0..d).fold((0.0, 0.0), |acc, c| {
                            let (mr, mi) = m[r * d + c];
                            let (xr, xi) = v[c];
                            (acc.0 + mr * xr - mi * xi, acc.1 + mr * xi + mi * xr)
                        })
                    })
                    .collect();
            }
            for i in 0..d {
                assert!((st[i] - v[i].0).abs() < 1e-12 && (st[d + i] - v[i].1).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn inverse_undoes_and_threads_do_not_change_bits() {
        let (p, a) = random_program(7, 60, 3);
        let rows = 5;
        let angles: Vec<f64> = (0..rows)
            .flat_map(|r| a.iter().map(move |x| x + r as f64))
            .collect();
        let one = p.states(&angles, rows, None, Some(1), &no()).unwrap();
        let two = p.states(&angles, rows, None, Some(2), &no()).unwrap();
        assert_eq!(one, two);
        let d = p.dim();
        let mut st = one[..2 * d].to_vec();
        let (re, im) = st.split_at_mut(d);
        run_ops(p.n, &p.ops, &a, re, im, true);
        assert!((re[0] - 1.0).abs() < 1e-12);
        assert!(re[1..].iter().chain(im.iter()).all(|v| v.abs() < 1e-12));
    }

    #[test]
    fn adjoint_matches_finite_differences() {
        let (p, a) = random_program(5, 40, 11);
        let d = p.dim();
        let w: Vec<f64> = (0..d)
            .map(|i| ((i * 7919) % 13) as f64 / 13.0 - 0.4)
            .collect();
        let loss = |ang: &[f64]| -> f64 {
            let s = p.states(ang, 1, None, Some(1), &no()).unwrap();
            (0..d)
                .map(|i| w[i] * (s[i] * s[i] + s[d + i] * s[d + i]))
                .sum()
        };
        let psi = p.states(&a, 1, None, Some(1), &no()).unwrap();
        let mut lam = psi.clone();
        for i in 0..d {
            lam[i] *= w[i];
            lam[d + i] *= w[i];
        }
        let g = p
            .adjoint(&a, 1, psi.clone(), lam.clone(), Some(1), &no())
            .unwrap();
        for k in 0..p.num_slots() {
            let mut up = a.clone();
            let mut dn = a.clone();
            up[k] += 1e-5;
            dn[k] -= 1e-5;
            let fd = (loss(&up) - loss(&dn)) / 2e-5;
            assert!((g[k] - fd).abs() < 1e-7, "slot {k}: {} vs {fd}", g[k]);
        }
    }

    #[test]
    fn exact_forks_equal_shifted_circuits() {
        // rotations and fixed gates only (the two-term rule)
        let n = 5;
        let mut rng = Xoshiro256pp::stream(5, 1, 1);
        let (mut kinds, mut q0, mut q1) = (vec![], vec![], vec![]);
        for _ in 0..30 {
            let k = [0i64, 1, 2, 6, 7][rng.below(5)];
            let a = rng.below(n) as i64;
            kinds.push(k);
            q0.push(a);
            q1.push((a + 1 + rng.below(n - 1) as i64) % n as i64);
        }
        let mats = vec![[0.0; 8]; kinds.len()];
        let p = Program::from_codes(n, &kinds, &q0, &q1, &mats).unwrap();
        let a: Vec<f64> = (0..p.num_slots()).map(|_| rng.next_f64() * 6.0).collect();
        let d = p.dim();
        let w: Vec<f64> = (0..d).map(|i| (i as f64).sin()).collect();
        let f = |ang: &[f64]| -> f64 {
            let s = p.states(ang, 1, None, Some(1), &no()).unwrap();
            (0..d)
                .map(|i| w[i] * (s[i] * s[i] + s[d + i] * s[d + i]))
                .sum()
        };
        for threads in [1, 2, 3] {
            let g = p
                .shift_gradient::<f64>(&a, None, &w, None, 0, Some(threads), &no())
                .unwrap();
            for k in 0..p.num_slots() {
                let mut up = a.clone();
                let mut dn = a.clone();
                up[k] += std::f64::consts::FRAC_PI_2;
                dn[k] -= std::f64::consts::FRAC_PI_2;
                assert!((g[k] - (f(&up) - f(&dn))).abs() < 1e-12);
            }
        }
        // 500-shot estimates on 1 and 2 threads (they must be equal)
        fn shots_1_2<R: Real>(p: &Program, a: &[f64], w: &[f64]) -> (Vec<f64>, Vec<f64>) {
            let on = |t| {
                p.shift_gradient::<R>(a, None, w, Some(500), 9, Some(t), &no())
                    .unwrap()
            };
            (on(1), on(2))
        }
        let (s1, s2) = shots_1_2::<f64>(&p, &a, &w);
        assert_eq!(s1, s2);
        // f32 forks: exact gradients within 1e-5 of f64; shots from the same streams, the
        // same on 1 and 2 threads, and equal to f64's unless a draw sits within rounding
        // of a cumulative boundary (each slot's estimate moves by at most a few draws)
        for threads in [1, 2] {
            let g = p
                .shift_gradient::<f64>(&a, None, &w, None, 0, Some(threads), &no())
                .unwrap();
            let g32 = p
                .shift_gradient::<f32>(&a, None, &w, None, 0, Some(threads), &no())
                .unwrap();
            let err = max_diff(&g, &g32);
            assert!(err < 1e-5, "threads {threads}: {err}");
        }
        let (t1, t2) = shots_1_2::<f32>(&p, &a, &w);
        assert_eq!(t1, t2);
        let wmax = w.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (x, y) in s1.iter().zip(&t1) {
            assert!((x - y).abs() <= 4.0 * 2.0 * wmax / 500.0, "{x} vs {y}");
        }
    }

    #[test]
    fn blocked_states_equal_gate_by_gate_bits() {
        // above the chunk size: segments in place and gathered, one and several threads
        for (n, seed) in [(blocks::BITS + 1, 1u64), (blocks::BITS + 3, 2)] {
            let (p, a) = random_program(n, 120, seed);
            let d = p.dim();
            let mut want = vec![0.0f64; 2 * d];
            want[0] = 1.0;
            {
                let (re, im) = want.split_at_mut(d);
                run_ops(n, &p.ops, &a, re, im, false);
            }
            for ops in [p.ops.clone(), fuse(&p.ops, &a)] {
                // the gate-by-gate run of the plan's order: the blocked runs' bits
                let exact = planned_from_zero(n, &ops, &a);
                let err = max_diff(&exact, &want);
                assert!(err < 1e-12, "planned order or fusion: {err}");
                for threads in [1, 3] {
                    let mut st = vec![0.0f64; 2 * d];
                    st[0] = 1.0;
                    let (re, im) = st.split_at_mut(d);
                    with_exact_threads(threads, || {
                        blocks::run_planned(n, &ops, &a, re, im, threads)
                    })
                    .unwrap();
                    assert_eq!(st, exact, "n {n}, {threads} threads");
                }
            }
            // the public call, one row on one and two threads
            let one = p.states(&a, 1, None, Some(1), &no()).unwrap();
            let two = p.states(&a, 1, None, Some(2), &no()).unwrap();
            assert_eq!(one, two);
        }
    }

    #[test]
    fn pair_fusion_keeps_the_state_and_its_inverse_undoes_it() {
        // random gates on few qubits make long two-qubit blocks (4x4 passes) on every pair,
        // the three lowest included (the fixed-group kernel)
        for (n, seed) in [(3, 5u64), (5, 6), (9, 7), (blocks::BITS + 2, 8)] {
            let (p, a) = random_program(n, 400, seed);
            let f = pairs2::fuse_pairs(n, &p.ops, &a, true);
            let mat2 = f.iter().filter(|o| matches!(o, Op::Mat2 { .. })).count();
            assert!(
                mat2 > 0 && f.len() < p.ops.len(),
                "n {n}: {} ops, {mat2} 4x4",
                f.len()
            );
            let d = p.dim();
            let mut want = vec![0.0f64; 2 * d];
            want[0] = 1.0;
            let mut got = want.clone();
            {
                let (re, im) = want.split_at_mut(d);
                run_ops(n, &p.ops, &a, re, im, false);
                let (re, im) = got.split_at_mut(d);
                run_ops(n, &f, &a, re, im, false);
            }
            let err = max_diff(&got, &want);
            assert!(err < 1e-12, "n {n}: {err}");
            // the public call fuses pairs from 2^10 amplitudes on (and runs the gates in
            // the plan's order above one chunk)
            let st = p.states(&a, 1, None, Some(1), &no()).unwrap();
            if d >= 1 << 10 {
                assert_eq!(st, planned_from_zero(n, &f, &a));
            }
            let (re, im) = got.split_at_mut(d);
            run_ops(n, &f, &a, re, im, true);
            assert!((re[0] - 1.0).abs() < 1e-12);
            assert!(re[1..].iter().chain(im.iter()).all(|v| v.abs() < 1e-12));
        }
    }

    #[test]
    fn f32_states_follow_f64_and_do_not_depend_on_threads() {
        // unfused (n < 10), fused, and blocked with chunks shared by threads
        for (n, seed) in [(6, 31u64), (11, 32), (blocks::BITS + 2, 33)] {
            let (p, a) = random_program(n, 150, seed);
            let d = p.dim();
            let want = p.states(&a, 1, None, Some(1), &no()).unwrap();
            let one = p.states_f32(&a, 1, None, Some(1), &no()).unwrap();
            let two = p.states_f32(&a, 1, None, Some(2), &no()).unwrap();
            assert_eq!(one, two);
            let wide: Vec<f64> = one.iter().map(|&v| v as f64).collect();
            let err = max_diff(&wide, &want);
            assert!(err < 1e-5, "n {n}: {err}");
            let norm: f64 = one.iter().map(|v| (*v as f64).powi(2)).sum();
            assert!((norm - 1.0).abs() < 1e-5, "n {n}: norm {norm}");
            // an initial state given in f64 is rounded once: |0...0> given equals the default
            let mut zero = vec![0.0f64; 2 * d];
            zero[0] = 1.0;
            let from = p.states_f32(&a, 1, Some(&zero), Some(1), &no()).unwrap();
            assert_eq!(from, one);
        }
    }

    #[test]
    fn blocked_adjoint_equals_the_gate_by_gate_sweep() {
        let n = blocks::BITS + 2;
        let (p, a) = random_program(n, 90, 7);
        let d = p.dim();
        let psi = p.states(&a, 1, None, Some(1), &no()).unwrap();
        let lam: Vec<f64> = psi
            .iter()
            .enumerate()
            .map(|(i, v)| v * (((i % d) * 7919 % 13) as f64 / 13.0 - 0.4))
            .collect();
        let mut want = vec![0.0; p.num_slots()];
        {
            let (mut phi, mut l) = (psi.clone(), lam.clone());
            let (pr, pi) = phi.split_at_mut(d);
            let (lr, li) = l.split_at_mut(d);
            adjoint_row(n, &p.ops, &a, pr, pi, lr, li, &mut want);
        }
        let planned = |threads: usize| {
            let (mut phi, mut l) = (psi.clone(), lam.clone());
            let (pr, pi) = phi.split_at_mut(d);
            let (lr, li) = l.split_at_mut(d);
            let mut g = vec![0.0; p.num_slots()];
            with_exact_threads(threads, || {
                blocks::adjoint_planned(n, &p.ops, &a, pr, pi, lr, li, &mut g, threads)
            })
            .unwrap();
            g
        };
        let g1 = planned(1);
        assert_eq!(g1, planned(3));
        // the public call: one thread sweeps gate by gate here, two share the chunks
        let public = |t: usize| {
            p.adjoint(&a, 1, psi.clone(), lam.clone(), Some(t), &no())
                .unwrap()
        };
        assert_eq!(public(1), want);
        assert_eq!(public(2), g1);
        let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (x, y) in g1.iter().zip(&want) {
            assert!((x - y).abs() <= 1e-12 * scale.max(1.0), "{x} vs {y}");
        }
    }

    /// The adjoint sweep one gate at a time (overlap, then the inverse gate on psi and on
    /// lambda): the reference the fused runs of rotations must equal bit for bit.
    fn adjoint_gate_by_gate(
        n: usize,
        ops: &[Op],
        a: &[f64],
        pr: &mut [f64],
        pi: &mut [f64],
        lr: &mut [f64],
        li: &mut [f64],
        g: &mut [f64],
    ) {
        for op in ops.iter().rev() {
            adjoint_gate(n, op, a, pr, pi, lr, li, g);
        }
    }

    #[test]
    fn fused_rotation_runs_in_the_adjoint_equal_the_gate_by_gate_sweep() {
        // runs of 1-11 rotations (random axes) on every qubit, so every stride and runs
        // longer than one fused block, between controlled rotations, CNOTs and matrices
        for (n, seed) in [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (7, 6), (9, 7)] {
            let mut rng = Xoshiro256pp::stream(seed, 98, 0);
            let (mut kinds, mut q0, mut q1) = (vec![], vec![], vec![]);
            for _ in 0..6 * n {
                let q = rng.below(n) as i64;
                for _ in 0..1 + rng.below(11) {
                    kinds.push(rng.below(3) as i64);
                    q0.push(q);
                    q1.push(q);
                }
                if n > 1 {
                    let t = (q + 1 + rng.below(n - 1) as i64) % n as i64;
                    kinds.push([3, 4, 5, 6, 8][rng.below(5)]);
                    q0.push(q);
                    q1.push(t);
                }
            }
            let mats = vec![[0.6, 0.0, 0.8, 0.0, -0.8, 0.0, 0.6, 0.0]; kinds.len()];
            let p = Program::from_codes(n, &kinds, &q0, &q1, &mats).unwrap();
            let a: Vec<f64> = (0..p.num_slots())
                .map(|_| rng.next_f64() * 6.0 - 3.0)
                .collect();
            let d = p.dim();
            let psi = p.states(&a, 1, None, Some(1), &no()).unwrap();
            let lam: Vec<f64> = (0..2 * d).map(|_| rng.next_f64() - 0.5).collect();
            let sweep = |fused: bool| {
                let (mut phi, mut l) = (psi.clone(), lam.clone());
                let mut g = vec![0.0; p.num_slots()];
                {
                    let (pr, pi) = phi.split_at_mut(d);
                    let (lr, li) = l.split_at_mut(d);
                    if fused {
                        adjoint_row(n, &p.ops, &a, pr, pi, lr, li, &mut g);
                    } else {
                        adjoint_gate_by_gate(n, &p.ops, &a, pr, pi, lr, li, &mut g);
                    }
                }
                (g, phi, l)
            };
            let (g0, phi0, l0) = sweep(false);
            let (g1, phi1, l1) = sweep(true);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&g1), bits(&g0), "gradients, n = {n}");
            assert_eq!(bits(&phi1), bits(&phi0), "undone psi, n = {n}");
            assert_eq!(bits(&l1), bits(&l0), "undone lambda, n = {n}");
            // the undone psi is the initial state |0...0> (to rounding)
            assert!(
                (phi1[0] - 1.0).abs() < 1e-9 && phi1[1..].iter().all(|v| v.abs() < 1e-9),
                "n = {n}"
            );
        }
    }

    #[test]
    fn fusion_keeps_the_state() {
        // euler layers (RZ RY RZ, a matrix) around entanglers and random gates
        let n = 6;
        let (mut kinds, mut q0, mut q1) = (vec![], vec![], vec![]);
        let mut rng = Xoshiro256pp::stream(21, 1, 1);
        for layer in 0..3 {
            for q in 0..n as i64 {
                for k in [2i64, 1, 2, 8] {
                    kinds.push(k);
                    q0.push(q);
                    q1.push(0);
                }
            }
            for _ in 0..10 {
                kinds.push(rng.below(9) as i64);
                let a = rng.below(n) as i64;
                q0.push(a);
                q1.push((a + 1 + layer) % n as i64);
            }
        }
        let (r, _) = random_program(2, kinds.len(), 3);
        let mats: Vec<[f64; 8]> = r
            .ops
            .iter()
            .map(|o| match o {
                Op::Mat { m, .. } => *m,
                _ => [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            })
            .collect();
        let p = Program::from_codes(n, &kinds, &q0, &q1, &mats).unwrap();
        let a: Vec<f64> = (0..p.num_slots()).map(|_| rng.next_f64() * 6.0).collect();
        let d = p.dim();
        let (mut x, mut y) = (vec![0.0; 2 * d], vec![0.0; 2 * d]);
        x[0] = 1.0;
        y[0] = 1.0;
        let (xr, xi) = x.split_at_mut(d);
        run_ops(p.n, &p.ops, &a, xr, xi, false);
        let f = fuse(&p.ops, &a);
        assert!(f.len() < p.ops.len());
        let (yr, yi) = y.split_at_mut(d);
        run_ops(p.n, &f, &a, yr, yi, false);
        for i in 0..2 * d {
            assert!((x[i] - y[i]).abs() < 1e-13);
        }
    }

    #[test]
    fn counts_sum_to_shots_and_follow_probabilities() {
        let p = [0.1, 0.0, 0.6, 0.3];
        let c = sample_counts(&p, 1, 100_000, 4, 0, Some(1), &no()).unwrap();
        assert_eq!(c.iter().sum::<u64>(), 100_000);
        assert_eq!(c[1], 0);
        for i in 0..4 {
            let f = c[i] as f64 / 1e5;
            let se = (p[i] * (1.0 - p[i]) / 1e5).sqrt();
            assert!((f - p[i]).abs() <= 5.0 * se + 1e-12, "{i}: {f}");
        }
        assert!(sample_counts(&[0.0, 0.0], 1, 5, 0, 0, None, &no()).is_err());
        assert!(sample_counts(&[0.5, 0.5], 1, MAX_SHOTS + 1, 0, 0, None, &no()).is_err());
    }

    #[test]
    fn block_walk_places_every_draw_where_the_plain_cumulative_walk_does() {
        // integer weights (every partial sum exact in f64), zeros inside blocks, whole
        // blocks of zeros, zeros at both ends and a length that is not a multiple of the
        // block: the block walk must place each sorted uniform on the state the plain
        // walk over all 2^n partial sums picks, and planes and slices must agree
        let mut rng = Xoshiro256pp::stream(3, 0, 0);
        for d in [1usize, 5, 64, 200, 1000, 4096] {
            let mut p: Vec<f64> = (0..d)
                .map(|_| match rng.below(4) {
                    0 => 0.0,
                    _ => (1 + rng.below(7)) as f64,
                })
                .collect();
            if d > 300 {
                p[64..192].fill(0.0); // two whole blocks
            }
            p[0] = 0.0;
            p[d - 1] = 0.0;
            if p.iter().all(|&v| v == 0.0) {
                p[d / 2] = 3.0;
            }
            let mut sums = Vec::new();
            let total = block_sums(&p[..], &mut sums);
            assert_eq!(total, p.iter().sum::<f64>());
            let shots = 3000;
            let mut buf = Vec::new();
            let mut got = Vec::new();
            let mut r1 = Xoshiro256pp::stream(9, 1, d as u64);
            merge_draws(&p[..], &sums, total, shots, &mut r1, &mut buf, |x| {
                got.push(x)
            });
            let mut want = Vec::new();
            sorted_uniforms(
                shots,
                total,
                &mut Xoshiro256pp::stream(9, 1, d as u64),
                &mut buf,
            );
            let (mut cum, mut k) = (0.0, 0);
            for (x, &px) in p.iter().enumerate() {
                cum += px;
                while px > 0.0 && k < buf.len() && buf[k] < cum {
                    want.push(x);
                    k += 1;
                }
            }
            assert_eq!(k, buf.len(), "d = {d}");
            assert_eq!(got, want, "d = {d}");
            // |psi|^2 from the planes (re = the weights, im = 0: exact squares) against
            // the slice of those squares: the same block sums and draws
            let re = p.clone();
            let im = vec![0.0; d];
            let sq: Vec<f64> = re.iter().map(|v| v * v).collect();
            let mut s1 = Vec::new();
            let mut s2 = Vec::new();
            let t1 = block_sums(&Planes(&re, &im), &mut s1);
            let t2 = block_sums(&sq[..], &mut s2);
            assert_eq!((t1, &s1), (t2, &s2));
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let mut ra = Xoshiro256pp::stream(4, 1, 0);
            let mut rb = Xoshiro256pp::stream(4, 1, 0);
            merge_draws(&Planes(&re, &im), &s1, t1, 500, &mut ra, &mut buf, |x| {
                a.push(x)
            });
            merge_draws(&sq[..], &s2, t2, 500, &mut rb, &mut buf, |x| b.push(x));
            assert_eq!(a, b);
        }
    }

    #[test]
    fn counts_above_one_pass_sum_chunks_and_follow_probabilities() {
        // 2.5 passes of SHOT_CHUNK: the counts are the sum of the passes' multinomials
        let p = [0.25, 0.5, 0.0, 0.25];
        let shots = 2 * SHOT_CHUNK + SHOT_CHUNK / 2;
        let c = sample_counts(&p, 1, shots, 9, 0, Some(1), &no()).unwrap();
        assert_eq!(c.iter().sum::<u64>(), shots);
        assert_eq!(c[2], 0);
        for i in 0..4 {
            let f = c[i] as f64 / shots as f64;
            let se = (p[i] * (1.0 - p[i]) / shots as f64).sqrt();
            assert!((f - p[i]).abs() <= 5.0 * se + 1e-12, "{i}: {f}");
        }
    }

    #[test]
    fn bad_programs_are_refused() {
        let m = [[0.0; 8]];
        assert!(Program::from_codes(2, &[0], &[2], &[0], &m).is_err());
        assert!(Program::from_codes(2, &[6], &[1], &[1], &m).is_err());
        assert!(Program::from_codes(2, &[9], &[0], &[0], &m).is_err());
        assert!(Program::from_codes(31, &[], &[], &[], &[]).is_err());
        let p = Program::from_codes(2, &[4], &[0], &[1], &m).unwrap();
        let e = p
            .shift_gradient::<f64>(&[0.1], None, &[0.0; 4], None, 0, Some(1), &no())
            .unwrap_err();
        assert!(e.to_string().contains("controlled"));
        assert!(p.states(&[f64::NAN], 1, None, None, &no()).is_err());
    }
}
#[cfg(test)]
mod masked_tests {
    use super::*;

    /// `op` by a plain loop over its pairs (index i with the target bit clear and the
    /// control bit set), with the arithmetic of the kernels: the reference for their bits.
    fn plain_pairs<R: Real>(n: usize, op: &Op, angles: &[f64], re: &mut [R], im: &mut [R]) {
        let st = |q: usize| 1usize << (n - 1 - q);
        let rot = |axis: Axis, a: f64| {
            let (s, c) = (0.5 * a).sin_cos();
            let (s, c) = (R::of(s), R::of(c));
            move |ar: R, ai: R, br: R, bi: R| match axis {
                Axis::X => rot_pair::<AX_X, R>(c, s, ar, ai, br, bi),
                Axis::Y => rot_pair::<AX_Y, R>(c, s, ar, ai, br, bi),
                Axis::Z => rot_pair::<AX_Z, R>(c, s, ar, ai, br, bi),
            }
        };
        type Pair<R> = Box<dyn Fn(R, R, R, R) -> (R, R, R, R)>;
        let (t, tst, ctrl): (Pair<R>, usize, usize) = match *op {
            Op::Rot { axis, q, slot } => (Box::new(rot(axis, angles[slot])), st(q), 0),
            Op::CRot { axis, c, t, slot } => (Box::new(rot(axis, angles[slot])), st(t), st(c)),
            Op::Cx { c, t } => (Box::new(|ar, ai, br, bi| (br, bi, ar, ai)), st(t), st(c)),
            Op::Cz { a, b } => (
                Box::new(|ar, ai, br: R, bi: R| (ar, ai, -br, -bi)),
                st(b),
                st(a),
            ),
            Op::Mat { q, m } => {
                let [ar_, ai_, br_, bi_, cr_, ci_, dr_, di_] = m.map(R::of);
                (
                    Box::new(move |xr, xi, yr, yi| {
                        (
                            ar_ * xr - ai_ * xi + br_ * yr - bi_ * yi,
                            ar_ * xi + ai_ * xr + br_ * yi + bi_ * yr,
                            cr_ * xr - ci_ * xi + dr_ * yr - di_ * yi,
                            cr_ * xi + ci_ * xr + dr_ * yi + di_ * yr,
                        )
                    }),
                    st(q),
                    0,
                )
            }
            Op::Mat2 { .. } => unreachable!("two-qubit matrices have their own test"),
        };
        for i in 0..re.len() {
            if i & tst == 0 && (ctrl == 0 || i & ctrl != 0) {
                let j = i | tst;
                let (x, y, z, v) = t(re[i], im[i], re[j], im[j]);
                (re[i], im[i], re[j], im[j]) = (x, y, z, v);
            }
        }
    }

    fn gate_kernels_equal_plain_pairs<R: Real>() {
        let mut rng = Xoshiro256pp::stream(5, 99, 0);
        for n in [3usize, 4, 5, 6, 7] {
            let d = 1usize << n;
            let re0: Vec<R> = (0..d).map(|_| R::of(rng.next_f64() - 0.5)).collect();
            let im0: Vec<R> = (0..d).map(|_| R::of(rng.next_f64() - 0.5)).collect();
            let m = [0.3, -0.1, 0.5, 0.2, -0.7, 0.4, 0.1, 0.9];
            let mut ops = Vec::new();
            for a in 0..n {
                for axis in [Axis::X, Axis::Y, Axis::Z] {
                    ops.push(Op::Rot {
                        axis,
                        q: a,
                        slot: 0,
                    });
                }
                ops.push(Op::Mat { q: a, m });
                for b in (0..n).filter(|&b| b != a) {
                    ops.push(Op::Cx { c: a, t: b });
                    ops.push(Op::Cz { a, b });
                    ops.push(Op::CRot {
                        axis: Axis::X,
                        c: a,
                        t: b,
                        slot: 0,
                    });
                }
            }
            for op in &ops {
                let (mut re, mut im) = (re0.clone(), im0.clone());
                R::run(n, std::slice::from_ref(op), &[0.7], &mut re, &mut im, false);
                let (mut wr, mut wi) = (re0.clone(), im0.clone());
                plain_pairs(n, op, &[0.7], &mut wr, &mut wi);
                assert!(re == wr && im == wi, "n {n}, {op:?}");
            }
        }
    }

    #[test]
    fn one_qubit_controlled_and_cz_kernels_equal_a_plain_pair_loop_bit_for_bit() {
        // every qubit and ordered pair, strides inside and above one block of lanes
        gate_kernels_equal_plain_pairs::<f64>();
        gate_kernels_equal_plain_pairs::<f32>();
    }

    /// Every control/target pair of CX and CRY through the dispatched kernels (the code
    /// LLVM vectorises for AVX-512 / AVX2), against index arithmetic.
    #[test]
    fn controlled_gates_on_every_pair_of_qubits() {
        let n = 6;
        let d = 1usize << n;
        let re0: Vec<f64> = (0..d).map(|i| i as f64).collect();
        let im0: Vec<f64> = (0..d).map(|i| 1000.0 + i as f64).collect();
        let (s, c) = (0.35f64).sin_cos();
        for a in 0..n {
            for b in 0..n {
                if a == b {
                    continue;
                }
                let (ca, tb) = (1usize << (n - 1 - a), 1usize << (n - 1 - b));
                let (mut re, mut im) = (re0.clone(), im0.clone());
                run_ops(n, &[Op::Cx { c: a, t: b }], &[], &mut re, &mut im, false);
                for i in 0..d {
                    let j = if i & ca != 0 { i ^ tb } else { i };
                    assert_eq!((re[i], im[i]), (re0[j], im0[j]), "cx({a},{b}) index {i}");
                }
                let op = Op::CRot {
                    axis: Axis::Y,
                    c: a,
                    t: b,
                    slot: 0,
                };
                let (mut re, mut im) = (re0.clone(), im0.clone());
                run_ops(n, &[op], &[0.7], &mut re, &mut im, false);
                for i in 0..d {
                    let (lo, hi) = (i & !tb, i | tb);
                    let (wr, wi) = if i & ca == 0 {
                        (re0[i], im0[i])
                    } else if i & tb == 0 {
                        (c * re0[lo] - s * re0[hi], c * im0[lo] - s * im0[hi])
                    } else {
                        (s * re0[lo] + c * re0[hi], s * im0[lo] + c * im0[hi])
                    };
                    assert!(
                        (re[i] - wr).abs() < 1e-12 && (im[i] - wi).abs() < 1e-12,
                        "cry({a},{b}) index {i}"
                    );
                }
            }
        }
    }
}
