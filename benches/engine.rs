//! Engine throughput: one simulated day of health checks only (no traffic).
//!
//! Delay 1 s, timeout 1 s, a TCP check, four LB nodes (eight probers), two crashes of the master.
//! Criterion reports events per second through `Throughput::Elements(events)`; a manual timing
//! prints the same figure once on standard error, and the per-event rate at 1, 4 and 256 LB
//! nodes (256 nodes over one simulated hour) with the ratio 256 : 1, which should stay >= 0.8:
//! the probes' events take the queue's in-order lane, O(1) however many probers there are.
//!
//! Every probe is simulated as its own event here (`step_every_probe`): the figures are the
//! cost per event. A run's default, coasting through settled probers, simulates the same events
//! with a fraction of the work; one more line prints that day with coasting, and its speed-up.
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
    config(4, DAY)
}

fn config(nodes: u32, secs: u64) -> SimConfig {
    let mut cfg = SimConfig::with_check(CheckConfig {
        kind: ProbeKind::Tcp,
        delay: SimDuration::from_secs(1),
        timeout: SimDuration::from_secs(1),
        rise: 3,
        fall: 3,
    });
    cfg.model.probe_schedule = ProbeSchedule::AfterCompletion;
    cfg.duration = SimDuration::from_secs(secs);
    cfg.lb_nodes = nodes;
    // Every probe an event of its own: the per-event cost.
    cfg.step_every_probe = true;
    let at = |s: u64| SimTime::ZERO + SimDuration::from_secs(s);
    let faults = [(6 * 3600, 6 * 3600 + 300), (18 * 3600, 18 * 3600 + 600)]
        .map(|(a, b)| (a * secs / DAY, b * secs / DAY));
    for (start, end) in faults {
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

/// `cfg` run as by default: settled probers coast.
fn coasting(cfg: &SimConfig) -> SimConfig {
    SimConfig {
        step_every_probe: false,
        ..cfg.clone()
    }
}

fn bench_engine(c: &mut Criterion) {
    let cfg = one_day_config();
    let coasted_cfg = coasting(&cfg);
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

    // The same runs coasting (the default): the same events, counted, not all simulated.
    assert_eq!(run(&coasted_cfg, opts(1)), log, "coasting changes nothing");
    let start = Instant::now();
    for seed in 0..reps {
        black_box(run(&coasted_cfg, opts(seed)));
    }
    let coasted = start.elapsed().as_secs_f64();
    eprintln!(
        "engine: the same day coasting (the default): {:.3} ms per run against {:.3} ms \
         stepping every probe: {:.1}x",
        coasted * 1e3 / reps as f64,
        secs * 1e3 / reps as f64,
        secs / coasted
    );

    // Per-event rate against the number of LB nodes: at least 5 s of events each.
    let rate = |nodes: u32, secs: u64| {
        let cfg = config(nodes, secs);
        let start = Instant::now();
        let mut events = 0u64;
        let mut seed = 0;
        while start.elapsed().as_secs_f64() < 1.5 || seed < 3 {
            events += black_box(run(&cfg, opts(seed))).events;
            seed += 1;
        }
        events as f64 / start.elapsed().as_secs_f64()
    };
    let r1 = rate(1, DAY);
    let r4 = rate(4, DAY);
    let r256 = rate(256, 3_600);
    eprintln!(
        "engine: events/s by LB nodes: 1: {r1:.0}, 4: {r4:.0}, 256: {r256:.0}; \
         256 nodes : 1 node = {:.2} (target >= 0.8)",
        r256 / r1
    );

    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(events));
    group.sample_size(20);
    group.measurement_time(std::time::Duration::from_secs(8));
    group.bench_function("one_day_4_nodes_tcp_delay_1s", |b| {
        b.iter(|| run(black_box(&cfg), opts(1)))
    });
    group.bench_function("one_day_4_nodes_tcp_delay_1s_coasting", |b| {
        b.iter(|| run(black_box(&coasted_cfg), opts(1)))
    });
    let big = config(256, 3_600);
    let big_events = run(&big, opts(1)).events;
    group.throughput(Throughput::Elements(big_events));
    group.sample_size(10);
    group.bench_function("one_hour_256_nodes_tcp_delay_1s", |b| {
        b.iter(|| run(black_box(&big), opts(1)))
    });
    group.finish();
}

criterion_group!(benches, bench_engine);
criterion_main!(benches);
