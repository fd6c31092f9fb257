//! Batches of seeds against the closed forms of spec/model.md section 8.
//!
//! For each schedule and fault, 2,000 runs with different seeds: every detection latency lies in
//! the closed-form interval, the extremes come close to both bounds, and the spread is uniform
//! (each tenth of the interval holds about a tenth of the runs), which shows the first-probe phase
//! really is random rather than a point.

use elbsim::model::health::ProbeSchedule;
use elbsim::model::probe::ProbeKind;
use elbsim::model::router::Role;
use elbsim::report::run::{analyse, RunFacts};
use elbsim::sim::config::{CheckConfig, Fault, FaultKind, SimConfig};
use elbsim::sim::engine::{run, RunOptions};
use elbsim::sim::time::{SimDuration, SimTime};

const D: f64 = 5.0;
const T: f64 = 3.0;
const F: f64 = 3.0;
const R: f64 = 0.001;
const RUNS: u64 = 2000;

fn config(kind: FaultKind, schedule: ProbeSchedule) -> SimConfig {
    let mut cfg = SimConfig::with_check(CheckConfig {
        kind: ProbeKind::Tcp,
        delay: SimDuration::from_secs(D as u64),
        timeout: SimDuration::from_secs(T as u64),
        rise: 3,
        fall: F as u32,
    });
    cfg.model.probe_schedule = schedule;
    cfg.duration = SimDuration::from_secs(300);
    cfg.faults.push(Fault {
        member: Role::Master,
        kind,
        at: SimTime::ZERO + SimDuration::from_secs(60),
        until: Some(SimTime::ZERO + SimDuration::from_secs(180)),
    });
    cfg
}

fn detections(cfg: &SimConfig) -> Vec<f64> {
    (0..RUNS)
        .map(|seed| {
            let log = run(
                cfg,
                RunOptions {
                    seed,
                    ..Default::default()
                },
            );
            let facts = RunFacts {
                name: "t",
                seed,
                cfg,
                expected_codes: None,
            };
            let r = analyse(&facts, &log, false);
            assert_eq!(r.failovers.len(), 1, "seed {seed}: {:?}", r);
            assert_eq!(r.false_failovers, 0);
            assert_eq!(r.failbacks.len(), 1, "seed {seed}");
            r.failovers[0].detection_latency_s
        })
        .collect()
}

/// All inside `[lo, hi]`, both ends approached within 1% of the width, deciles uniform.
fn assert_uniform_in(samples: &[f64], lo: f64, hi: f64) {
    let eps = 1e-6;
    let width = hi - lo;
    let min = samples.iter().cloned().fold(f64::MAX, f64::min);
    let max = samples.iter().cloned().fold(f64::MIN, f64::max);
    assert!(
        min >= lo - eps && max <= hi + eps,
        "[{min}, {max}] outside [{lo}, {hi}]"
    );
    assert!(min - lo < 0.01 * width, "min {min} not near {lo}");
    assert!(hi - max < 0.01 * width, "max {max} not near {hi}");
    let mut deciles = [0u32; 10];
    for &s in samples {
        let i = (((s - lo) / width) * 10.0).floor().clamp(0.0, 9.0) as usize;
        deciles[i] += 1;
    }
    let expect = samples.len() as f64 / 10.0;
    for (i, &n) in deciles.iter().enumerate() {
        // 2,000 runs: a decile holds 200 +- 13 (1 sigma); 4.5 sigma = 60.
        assert!(
            (n as f64 - expect).abs() < 60.0,
            "decile {i}: {n} of {}: {deciles:?}",
            samples.len()
        );
    }
}

#[test]
fn crash_after_completion() {
    let s = detections(&config(FaultKind::Crash, ProbeSchedule::AfterCompletion));
    assert_uniform_in(&s, (F - 1.0) * (D + R) + R, F * (D + R) + R);
}

#[test]
fn host_down_after_completion() {
    let s = detections(&config(FaultKind::HostDown, ProbeSchedule::AfterCompletion));
    assert_uniform_in(&s, F * T + (F - 1.0) * D, F * T + F * D + R);
}

#[test]
fn host_down_fixed_rate() {
    let s = detections(&config(FaultKind::HostDown, ProbeSchedule::FixedRate));
    assert_uniform_in(&s, (F - 1.0) * D + T, F * D + T);
}

#[test]
fn crash_fixed_rate() {
    let s = detections(&config(FaultKind::Crash, ProbeSchedule::FixedRate));
    assert_uniform_in(&s, (F - 1.0) * D + R, F * D + R);
}

#[test]
fn failback_after_recovery_takes_max_retries_successes() {
    // After a crash ends, the master needs `rise` = 3 passing probes: recovery is detected within
    // [(rise-1)(D+r) + r, rise(D+r) + r] of the fault's end, as for detection.
    let cfg = config(FaultKind::Crash, ProbeSchedule::AfterCompletion);
    for seed in 0..300 {
        let log = run(
            &cfg,
            RunOptions {
                seed,
                ..Default::default()
            },
        );
        let r = analyse(
            &RunFacts {
                name: "t",
                seed,
                cfg: &cfg,
                expected_codes: None,
            },
            &log,
            false,
        );
        let fb = r.failbacks[0].failback_latency_s;
        assert!(
            (2.0 * (D + R) + R - 1e-6..=3.0 * (D + R) + R + 1e-6).contains(&fb),
            "seed {seed}: {fb}"
        );
    }
}
