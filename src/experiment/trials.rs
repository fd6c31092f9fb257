//! `elbsim trials`: many independent randomized runs of one scenario, summarized.
//!
//! Trial `i` runs with random streams derived from `(seed, i)` (see `crate::sim::rng`), so its
//! result does not depend on which thread runs it; per-thread accumulators are merged with exact
//! integer arithmetic, so the output is byte-identical for any `--jobs`. Nothing per trial is
//! kept: memory is the same for 10 trials or 10 million.
//!
//! Trials stop a run early once nothing can change any more (`RunOptions::stop_when_quiet`):
//! exact, because that only happens on a noise-free probe path after the last fault.

use super::stats::{CounterStats, CounterSummary, LatencyStats, Summary};
use crate::model::router::Role;
use crate::report::run::measure;
use crate::sim::config::SimConfig;
use crate::sim::engine::{self, RunOptions, TrafficCounters};
use crate::sim::time::{SimDuration, SimTime};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// How to run a batch.
#[derive(Debug, Clone, Copy)]
pub struct TrialsOptions {
    pub n: u64,
    pub seed: u64,
    /// Worker threads (at least 1).
    pub jobs: usize,
}

/// What `elbsim trials` prints (JSON keys of spec/scenario.md, plus the counts behind rates).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrialsReport {
    /// Trials that finished (fewer than asked when interrupted).
    pub trials: u64,
    /// Trials asked for.
    pub trials_requested: u64,
    /// True when Ctrl-C stopped the batch early: the figures cover `trials` only.
    pub partial: bool,
    pub seed: u64,
    /// Fault start -> master OFFLINE, one sample per (fault, LB node) failover.
    pub detection_latency_s: Summary,
    /// Fault start -> new connections leave the master.
    pub failover_latency_s: Summary,
    /// Fault end -> new connections back on the master.
    pub failback_latency_s: Summary,
    /// False failovers (summed over LB nodes) per hour of time with no fault on the master.
    pub false_failovers_per_hour: f64,
    pub false_failovers: u64,
    /// Hours with no fault on the master, summed over trials.
    pub fault_free_hours: f64,
    /// Missed (fault, LB node) pairs over all (fault on the master, LB node) pairs.
    pub missed_fault_rate: Option<f64>,
    pub missed_faults: u64,
    pub fault_node_pairs: u64,
    /// Engine events over all trials.
    pub events: u64,
    /// Per traffic counter: mean, p99 and max over trials; plus the unavailability window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic: Option<TrafficSummary>,
}

/// The `traffic` part of a trials report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrafficSummary {
    #[serde(flatten)]
    pub counters: BTreeMap<&'static str, CounterSummary>,
    /// The unavailability window clients saw, one sample per master fault that had one.
    pub unavailability_s: Summary,
}

/// Per-thread (then merged) accumulator.
#[derive(Debug, Clone, Default)]
struct Accum {
    trials: u64,
    detection: LatencyStats,
    failover: LatencyStats,
    failback: LatencyStats,
    false_failovers: u64,
    missed: u64,
    pairs: u64,
    events: u64,
    counters: BTreeMap<&'static str, CounterStats>,
    unavailability: LatencyStats,
}

impl Accum {
    fn merge(&mut self, o: &Accum) {
        self.trials += o.trials;
        self.detection.merge(&o.detection);
        self.failover.merge(&o.failover);
        self.failback.merge(&o.failback);
        self.false_failovers += o.false_failovers;
        self.missed += o.missed;
        self.pairs += o.pairs;
        self.events += o.events;
        for (k, v) in &o.counters {
            self.counters.entry(k).or_default().merge(v);
        }
        self.unavailability.merge(&o.unavailability);
    }
}

fn s_to_ns(s: f64) -> u64 {
    SimDuration::from_secs_f64(s).0
}

/// Each traffic counter by name, in a fixed order.
fn counter_fields(c: &TrafficCounters) -> [(&'static str, u64); 18] {
    [
        ("connections", c.connections),
        ("established", c.established),
        ("completed", c.completed),
        ("refused", c.refused),
        ("timed_out", c.timed_out),
        ("no_backend", c.no_backend),
        ("tls_failed", c.tls_failed),
        ("broken", c.broken),
        ("drained", c.drained),
        ("reset_on_failback", c.reset_on_failback),
        ("quic_cid_broken", c.quic_cid_broken),
        ("persisted_elsewhere", c.persisted_elsewhere),
        ("to_master", c.to_master),
        ("to_slave", c.to_slave),
        ("requests", c.requests),
        ("requests_failed", c.requests_failed),
        ("peak_open", c.peak_open),
        ("open_at_end", c.open_at_end),
    ]
}

/// Runs trial `i` and adds it to `acc`, unless `interrupt` cut it short (a half-run trial would
/// skew every figure); returns whether it was added.
fn one_trial(
    cfg: &SimConfig,
    seed: u64,
    i: u64,
    interrupt: Option<&'static AtomicBool>,
    acc: &mut Accum,
) -> bool {
    let log = engine::run(
        cfg,
        RunOptions {
            seed,
            trial: i,
            record_verdicts: false,
            stop_when_quiet: true,
            interrupt,
        },
    );
    if log.interrupted {
        return false;
    }
    let m = measure(cfg, &log);
    acc.trials += 1;
    acc.events += log.events;
    for f in &m.failovers {
        acc.detection.record_ns(s_to_ns(f.detection_latency_s));
        if let Some(l) = f.failover_latency_s {
            acc.failover.record_ns(s_to_ns(l));
        }
    }
    for b in &m.failbacks {
        acc.failback.record_ns(s_to_ns(b.failback_latency_s));
    }
    acc.false_failovers += m.false_failovers.len() as u64;
    acc.missed += m.missed.len() as u64;
    acc.pairs += m.fault_node_pairs;
    if let Some(t) = &log.traffic {
        for (k, v) in counter_fields(&t.counters) {
            acc.counters.entry(k).or_default().record(v);
        }
        for u in &t.unavailability {
            if let Some(w) = u.window_s {
                acc.unavailability.record_ns(s_to_ns(w));
            }
        }
    }
    true
}

/// Time with no fault on the master in one run.
pub fn fault_free(cfg: &SimConfig) -> SimDuration {
    let end = SimTime::ZERO + cfg.duration;
    let mut windows: Vec<(SimTime, SimTime)> = cfg
        .faults
        .iter()
        .filter(|f| f.member == Role::Master)
        .map(|f| (f.at.min(end), f.until.unwrap_or(end).min(end)))
        .collect();
    windows.sort();
    let mut covered = 0u64;
    let mut reach = SimTime::ZERO;
    for (a, b) in windows {
        let a = a.max(reach);
        if b > a {
            covered += b.0 - a.0;
            reach = b;
        }
    }
    SimDuration(cfg.duration.0 - covered.min(cfg.duration.0))
}

/// Runs the batch. `stop` ends it early between trials; `progress` is told how many trials are
/// done.
pub fn run_trials(
    cfg: &SimConfig,
    opts: TrialsOptions,
    stop: &AtomicBool,
    progress: &(dyn Fn(u64) + Sync),
) -> TrialsReport {
    batch(cfg, opts, stop, None, progress)
}

/// [`run_trials`] that a process-wide flag (Ctrl-C) also stops inside a trial: the run loop looks
/// at it every few thousand events, so one long trial cannot outlast the interrupt. The trials
/// cut short are left out of the report.
pub fn run_trials_interruptible(
    cfg: &SimConfig,
    opts: TrialsOptions,
    interrupt: &'static AtomicBool,
    progress: &(dyn Fn(u64) + Sync),
) -> TrialsReport {
    batch(cfg, opts, interrupt, Some(interrupt), progress)
}

fn batch(
    cfg: &SimConfig,
    opts: TrialsOptions,
    stop: &AtomicBool,
    interrupt: Option<&'static AtomicBool>,
    progress: &(dyn Fn(u64) + Sync),
) -> TrialsReport {
    /// Trials a worker claims at once: large enough to keep the shared counter cold.
    const CHUNK: u64 = 64;
    let next = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let total = Mutex::new(Accum::default());
    let jobs = opts.jobs.max(1);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                let mut acc = Accum::default();
                'claim: loop {
                    let start = next.fetch_add(CHUNK, Ordering::Relaxed);
                    if start >= opts.n {
                        break;
                    }
                    let end = (start + CHUNK).min(opts.n);
                    for i in start..end {
                        if stop.load(Ordering::Relaxed) {
                            break 'claim;
                        }
                        if !one_trial(cfg, opts.seed, i, interrupt, &mut acc) {
                            break 'claim;
                        }
                    }
                    progress(done.fetch_add(end - start, Ordering::Relaxed) + end - start);
                }
                // A poisoned lock means another worker panicked; its panic is re-raised by scope.
                if let Ok(mut t) = total.lock() {
                    t.merge(&acc);
                }
            });
        }
    });
    let acc = total.into_inner().unwrap_or_default();
    let free_h = fault_free(cfg).as_secs_f64() / 3600.0 * acc.trials as f64;
    TrialsReport {
        trials: acc.trials,
        trials_requested: opts.n,
        partial: acc.trials < opts.n,
        seed: opts.seed,
        detection_latency_s: acc.detection.summary(),
        failover_latency_s: acc.failover.summary(),
        failback_latency_s: acc.failback.summary(),
        false_failovers_per_hour: if free_h > 0.0 {
            acc.false_failovers as f64 / free_h
        } else {
            0.0
        },
        false_failovers: acc.false_failovers,
        fault_free_hours: free_h,
        missed_fault_rate: (acc.pairs > 0).then(|| acc.missed as f64 / acc.pairs as f64),
        missed_faults: acc.missed,
        fault_node_pairs: acc.pairs,
        events: acc.events,
        traffic: cfg.traffic.as_ref().map(|_| TrafficSummary {
            counters: acc
                .counters
                .iter()
                .map(|(k, v)| (*k, v.summary()))
                .collect(),
            unavailability_s: acc.unavailability.summary(),
        }),
    }
}
