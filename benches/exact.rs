//! Exact mode: `tune --exact` over the whole API range of delay (1..50), timeout (1..50),
//! max_retries_down (1..10) and max_retries (1..10), 250,000 points, on the noise-free
//! `scenarios/crash.toml`, through the command's own code (validation of every point's health
//! check, ranking, rendering); and `trials --exact` against 100,000 sampled trials.
//!
//! Run: `cargo bench --bench exact`. The figures are printed on standard error (best of three
//! runs each, the usual guard against a noisy shared machine); criterion then times a
//! 2,500-point exact sweep and one exact `trials`.

use criterion::{criterion_group, criterion_main, Criterion};
use elbsim::commands::tune::{run, TuneArgs};
use elbsim::experiment::exact::{self, Mode};
use elbsim::experiment::trials::{run_trials, TrialsOptions};
use elbsim::experiment::tune::{Constraints, Objective, ProbeFault, Ranges};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

fn scenario() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/crash.toml")
}

fn args(ranges: Ranges, jobs: usize, mode: Mode, trials: u64) -> TuneArgs {
    TuneArgs {
        ranges,
        trials,
        seed: Some(1),
        jobs,
        objective: Objective::P99Failover,
        constraints: Constraints::default(),
        probe_fault: ProbeFault::HostDown,
        allow_warnings: false,
        full: false,
        json: false,
        markdown: false,
        csv: false,
        plot: false,
        html: false,
        top: 5,
        strict: false,
        profile: None,
        step_every_probe: false,
        mode,
    }
}

fn full_range() -> Ranges {
    Ranges {
        delay: (1..=50).collect(),
        timeout: (1..=50).collect(),
        max_retries_down: (1..=10).collect(),
        max_retries: (1..=10).collect(),
        ..Ranges::default()
    }
}

fn best_of_3(what: &str, f: &dyn Fn() -> String) -> f64 {
    let mut best = f64::INFINITY;
    let mut last = String::new();
    for _ in 0..3 {
        let t = Instant::now();
        last = f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    eprintln!("{what}: best of 3 {best:.3} s");
    if let Some(line) = last.lines().find(|l| l.starts_with("check it:")) {
        eprintln!("  {line}");
    }
    best
}

fn bench(c: &mut Criterion) {
    let path = scenario();
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let tune = |ranges: Ranges, mode: Mode, trials: u64| {
        run(
            Some(&path),
            &args(ranges, jobs, mode, trials),
            &|_| {},
            &|_| {},
        )
        .outcome
        .stdout
    };

    let exact_s = best_of_3(
        &format!("tune --exact, 250000 points, {jobs} jobs"),
        &|| tune(full_range(), Mode::Exact, 200),
    );
    eprintln!("  {:.0} points/s", 250_000.0 / exact_s);
    // A sampled sweep of the same points at the default 200 trials per point, measured on 50
    // of them (sampled points cost about the same each).
    let few = Ranges {
        delay: (1..=5).collect(),
        timeout: (1..=5).collect(),
        max_retries_down: vec![3],
        max_retries: (1..=2).collect(),
        ..Ranges::default()
    };
    let sampled_s = best_of_3(
        &format!("tune --sample -n 200, 50 points, {jobs} jobs"),
        &|| tune(few.clone(), Mode::Sample, 200),
    );
    eprintln!(
        "  sampled: {:.1} ms per point; 250000 points would take about {:.0} s: exact is {:.0}x faster per point",
        sampled_s / 50.0 * 1e3,
        sampled_s / 50.0 * 250_000.0,
        (sampled_s / 50.0) / (exact_s / 250_000.0)
    );

    let s = elbsim::scenario::load_with(Some(&path), false, Default::default())
        .expect("the bundled scenario loads");
    let t = Instant::now();
    let x = exact::compute(&s.sim).expect("crash.toml is noise-free");
    eprintln!(
        "trials --exact crash.toml: {:.3} ms ({} pieces)",
        t.elapsed().as_secs_f64() * 1e3,
        x.pieces
    );
    let stop = AtomicBool::new(false);
    let t = Instant::now();
    run_trials(
        &s.sim,
        TrialsOptions {
            n: 100_000,
            seed: 1,
            jobs,
        },
        &stop,
        &|_| {},
    );
    eprintln!(
        "trials -n 100000 crash.toml, {jobs} jobs: {:.3} s",
        t.elapsed().as_secs_f64()
    );

    let mut g = c.benchmark_group("exact");
    g.sample_size(10);
    let mid = Ranges {
        delay: (1..=50).collect(),
        timeout: (1..=50).collect(),
        max_retries_down: vec![3],
        max_retries: vec![3],
        ..Ranges::default()
    };
    g.bench_function("tune_2500_points", |b| {
        b.iter(|| tune(mid.clone(), Mode::Exact, 200))
    });
    g.bench_function("trials_crash", |b| {
        b.iter(|| exact::compute(&s.sim).expect("exact"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
