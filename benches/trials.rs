//! `trials` throughput: the bundled seed-example scenario (health checks only), one job against
//! two. Prints trials per second for each and the speed-up of `--jobs 2` over `--jobs 1`.
//!
//! Run: `cargo bench --bench trials`. Target (issue): 100,000 trials in at most 5 s on a 2-core
//! machine, and `--jobs 2` at least 1.8 times faster than `--jobs 1`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use elbsim::experiment::trials::{run_trials, TrialsOptions};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

const TRIALS: u64 = 20_000;

fn bench(c: &mut Criterion) {
    let s = elbsim::scenario::load(None, false).expect("the bundled scenario loads");
    let stop = AtomicBool::new(false);
    let run = |jobs: usize, n: u64| {
        run_trials(&s.sim, TrialsOptions { n, seed: 1, jobs }, &stop, &|_| {})
    };

    // A manual measurement first, so the ratio is printed plainly: best of three runs each, the
    // usual guard against a noisy shared machine.
    let mut secs = [0.0f64; 2];
    for (i, jobs) in [1usize, 2].into_iter().enumerate() {
        let _ = run(jobs, 2_000); // warm up
        let mut best = f64::INFINITY;
        let mut r = None;
        for _ in 0..3 {
            let t = Instant::now();
            r = Some(run(jobs, 100_000));
            best = best.min(t.elapsed().as_secs_f64());
        }
        let r = r.expect("three runs");
        secs[i] = best;
        eprintln!(
            "100000 trials, --jobs {jobs}: best of 3 {:.3} s ({:.0} trials/s, {} events)",
            secs[i],
            100_000.0 / secs[i],
            r.events
        );
    }
    eprintln!(
        "speed-up of --jobs 2 over --jobs 1: {:.2}x",
        secs[0] / secs[1]
    );

    let mut g = c.benchmark_group("trials_seed_example");
    g.sample_size(10);
    g.throughput(Throughput::Elements(TRIALS));
    for jobs in [1usize, 2] {
        g.bench_with_input(
            BenchmarkId::from_parameter(format!("jobs{jobs}")),
            &jobs,
            |b, &j| b.iter(|| run(j, TRIALS)),
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
