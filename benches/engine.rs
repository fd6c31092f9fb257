//! Engine throughput: one simulated day of health checks only (no traffic).
//!
//! Delay 1 s, timeout 1 s, a TCP check, four LB nodes (eight probers), two crashes of the master.
//! Criterion reports events per second through `Throughput::Elements(events)`; a manual timing
//! prints the same figure once on standard error.
//!
//! Run: `cargo bench --bench engine`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use elbsim::model::health::ProbeSchedule;
use elbsim::model::probe::ProbeKind;
use elbsim::model::router::Role;
use elbsim::sim::config::{CheckConfig, Fault, FaultKind, SimConfig};
use elbsim::sim::engine::{run, RunOptions};
use elbsim::sim::time::{SimDuration, SimTime};
use std::time::Instant;

const DAY: u64 = 86_400;

fn one_day_config() -> SimConfig {
    let mut cfg = SimConfig::with_check(CheckConfig {
        kind: ProbeKind::Tcp,
        delay: SimDuration::from_secs(1),
        timeout: SimDuration::from_secs(1),
        rise: 3,
        fall: 3,
    });
    cfg.model.probe_schedule = ProbeSchedule::AfterCompletion;
    cfg.duration = SimDuration::from_secs(DAY);
    cfg.lb_nodes = 4;
    let at = |s: u64| SimTime::ZERO + SimDuration::from_secs(s);
    for (start, end) in [(6 * 3600, 6 * 3600 + 300), (18 * 3600, 18 * 3600 + 600)] {
        cfg.faults.push(Fault {
            member: Role::Master,
            kind: FaultKind::Crash,
            at: at(start),
            until: Some(at(end)),
        });
    }
    cfg
}

fn opts(seed: u64) -> RunOptions<'static> {
    RunOptions {
        seed,
        ..Default::default()
    }
}

fn bench_engine(c: &mut Criterion) {
    let cfg = one_day_config();
    let log = run(&cfg, opts(1));
    let events = log.events;
    assert!(events > 0);
    assert!(
        log.transitions.iter().any(|t| t.member == Role::Master),
        "the crashes are detected"
    );

    // One manual timing, printed once.
    let reps = 5;
    let start = Instant::now();
    let mut total = 0u64;
    for seed in 0..reps {
        total += black_box(run(&cfg, opts(seed))).events;
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "engine: one simulated day, 4 LB nodes, delay 1s: {events} events per run; \
         manual timing {reps} runs in {secs:.3}s = {:.0} events/s",
        total as f64 / secs
    );

    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(events));
    group.sample_size(20);
    group.measurement_time(std::time::Duration::from_secs(8));
    group.bench_function("one_day_4_nodes_tcp_delay_1s", |b| {
        b.iter(|| run(black_box(&cfg), opts(1)))
    });
    group.finish();
}

criterion_group!(benches, bench_engine);
criterion_main!(benches);
