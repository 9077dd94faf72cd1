//! Rough timing of RBM block Gibbs: `cargo run --release --example rbm_speed -- NV NH READS THREADS`
use qbm_core::rbm::{sample_rbm, Rbm, RbmRun};
use qbm_core::rng::Xoshiro256pp;
use std::sync::atomic::AtomicBool;

fn main() {
    let a: Vec<usize> = std::env::args()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    let (nv, nh, reads, threads) = (
        a.first().copied().unwrap_or(784),
        a.get(1).copied().unwrap_or(128),
        a.get(2).copied().unwrap_or(100),
        a.get(3).copied().unwrap_or(1),
    );
    let mut r = Xoshiro256pp::from_key(1);
    let w = (0..nv * nh).map(|_| 0.02 * (r.next_f64() - 0.5)).collect();
    let rbm = Rbm::new(nv, nh, w, vec![0.0; nv], vec![0.0; nh]).unwrap();
    let sweeps = 500;
    let run = RbmRun {
        beta: 1.0,
        num_sweeps: sweeps,
        chains: qbm_core::drivers::Chains {
            num_reads: reads,
            initial: None,
            order: qbm_core::Order::Colour,
            seed: 0,
            num_threads: Some(threads),
        },
        clamp: None,
    };
    for _ in 0..3 {
        let t = std::time::Instant::now();
        sample_rbm(&rbm, &run, &AtomicBool::new(false)).unwrap();
        let dt = t.elapsed().as_secs_f64();
        println!(
            "{:.3e} unit updates/s",
            ((nv + nh) * reads * sweeps) as f64 / dt
        );
    }
}
