//! Rough single-process timing of the fixed-beta kernel on a random regular-ish graph.
//! `cargo run --release --example speed -- N DEGREE THREADS`
use qbm_core::drivers::{sample_schedule, ScheduleRun};
use qbm_core::rng::Xoshiro256pp;
use qbm_core::{IsingModel, Order, UpdateRule};
use std::sync::atomic::AtomicBool;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let (n, deg, threads) = (
        args.first().copied().unwrap_or(576),
        args.get(1).copied().unwrap_or(20),
        args.get(2).copied().unwrap_or(1),
    );
    let mut r = Xoshiro256pp::from_key(1);
    let mut rows: Vec<Vec<(u32, f64)>> = vec![vec![]; n];
    for i in 0..n {
        for _ in 0..deg / 2 {
            let j = r.below(n);
            if j != i && !rows[i].iter().any(|&(c, _)| c as usize == j) {
                let v = 2.0 * r.next_f64() - 1.0;
                rows[i].push((j as u32, v));
                rows[j].push((i as u32, v));
            }
        }
    }
    let mut indptr = vec![0];
    let (mut idx, mut dat) = (vec![], vec![]);
    for row in rows.iter_mut() {
        row.sort_by_key(|x| x.0);
        for &(c, v) in row.iter() {
            idx.push(c);
            dat.push(v);
        }
        indptr.push(idx.len());
    }
    let h = (0..n).map(|_| r.next_f64() - 0.5).collect();
    let m = IsingModel::from_csr(h, indptr, idx, dat).unwrap();
    let betas = vec![1.0; 1000];
    let run = ScheduleRun {
        betas: &betas,
        chains: qbm_core::drivers::Chains {
            num_reads: 100,
            initial: None,
            order: Order::Colour,
            seed: 0,
            num_threads: Some(threads),
        },
        rule: UpdateRule::HeatBath,
        trace: false,
    };
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let _ = sample_schedule(&m, &run, &AtomicBool::new(false)).unwrap();
        let dt = t.elapsed().as_secs_f64();
        println!(
            "{} {:.3}s {:.3e} updates/s (avg degree {:.1}) simd={}",
            n,
            dt,
            (n * 100 * 1000) as f64 / dt,
            m.nnz() as f64 / n as f64,
            qbm_core::simd::simd_level()
        );
    }
}
