//! `tune` on the noisy scenario: windowed trials with one probe stream per (delay, timeout)
//! (the default) against every trial simulated whole (`--full`).
//!
//! Prints the wall time of the default 750-point sweep (`elbsim tune
//! scenarios/noisy-network.toml`, 200 trials per point) in both modes on one job and their
//! ratio, then a criterion group on a 90-point slice of it (delay 1..3, timeout 1..2, every
//! max_retries_down and max_retries) at 20 trials per point. Run: `cargo bench --bench tune`.
//! Target (issue): the default sweep at least 10 times faster than the previous build, with
//! the same recommendation.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use elbsim::experiment::tune::{
    tune, Constraints, Objective, PointSource, Ranges, TuneOptions, TuneReport,
};
use elbsim::sim::config::{FaultKind, SimConfig};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

static NEVER: AtomicBool = AtomicBool::new(false);

fn sweep(base: &SimConfig, ranges: &Ranges, trials: u64, full: bool) -> TuneReport {
    let opts = TuneOptions {
        trials,
        seed: 7,
        jobs: 1,
        objective: Objective::P99Failover,
        constraints: Constraints::default(),
        probe_fault: FaultKind::HostDown,
        allow_warnings: false,
        full,
    };
    tune(
        base,
        ranges,
        opts,
        &|p| {
            // The API's advice, as the command applies it: timeout below delay.
            if p.timeout >= p.delay {
                vec!["[timeout-not-below-delay]".to_string()]
            } else {
                Vec::new()
            }
        },
        &NEVER,
        &|_| {},
        PointSource::Simulate,
    )
}

fn bench(c: &mut Criterion) {
    let s = elbsim::scenario::load(Some(Path::new("scenarios/noisy-network.toml")), false)
        .expect("scenarios/noisy-network.toml loads");
    let default = Ranges::default().or_default_sweep();
    let mut secs = [0.0f64; 2];
    for (i, full) in [false, true].into_iter().enumerate() {
        let t = Instant::now();
        let r = sweep(&s.sim, &default, 200, full);
        secs[i] = t.elapsed().as_secs_f64();
        let best = r.best().map(|b| b.point);
        eprintln!(
            "default sweep, 750 points x 200 trials, 1 job, {}: {:.2} s; best {best:?}",
            if full { "--full" } else { "windowed" },
            secs[i]
        );
    }
    eprintln!(
        "windowed over --full: {:.1}x faster",
        secs[1] / secs[0].max(1e-9)
    );

    let slice = Ranges {
        delay: vec![1, 2, 3],
        timeout: vec![1, 2],
        max_retries_down: (1..=5).collect(),
        max_retries: (1..=3).collect(),
        ..Ranges::default()
    };
    let mut g = c.benchmark_group("tune_noisy_90_points_20_trials");
    g.sample_size(10);
    g.throughput(Throughput::Elements(slice.point_count()));
    for full in [false, true] {
        g.bench_with_input(
            BenchmarkId::from_parameter(if full { "full" } else { "windowed" }),
            &full,
            |b, &f| b.iter(|| sweep(&s.sim, &slice, 20, f)),
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
