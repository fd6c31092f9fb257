//! `elbsim tune`: sweep health-check parameters (and, for QUIC pools, the CID slice), run trials
//! at every point, and rank the points by an objective under constraints.
//!
//! Every point runs the same trial indices with the same seed (common random numbers), so two
//! points differ by their parameters, not by luck. Latencies come from the trials; false
//! failovers from [`super::rare`]: the closed form (exact for independent probe failures) is the
//! figure constraints use, with the simulated count and its 95% interval beside it as a check.
//!
//! A scenario with no fault on the master gets one for measuring latency (`probe_fault`, default
//! `host_down`, the slowest to detect), from a quarter of the run for ten minutes at most.

use super::rare::FalseFailoverEstimate;
use super::stats::Summary;
use super::trials::{run_trials, TrialsOptions, TrialsReport};
use crate::model::router::Role;
use crate::sim::config::{Fault, FaultKind, SimConfig};
use crate::sim::time::{SimDuration, SimTime};
use serde::Serialize;
use std::sync::atomic::AtomicBool;

/// Values to try per parameter; an empty list keeps the scenario's value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ranges {
    pub delay: Vec<u32>,
    pub timeout: Vec<u32>,
    pub max_retries_down: Vec<u32>,
    pub max_retries: Vec<u32>,
    pub offset: Vec<u8>,
    pub len: Vec<u8>,
}

/// What to minimise (also the values of `--objective`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Objective {
    /// 99th percentile of failover latency.
    P99Failover,
    /// Median failover latency.
    P50Failover,
    /// Mean failover latency.
    MeanFailover,
    /// 99th percentile of detection latency.
    P99Detection,
    /// 99th percentile of failback latency.
    P99Failback,
    /// Mean failed or broken client connections per trial (needs [traffic]).
    ClientFailures,
}

/// The fault added to measure latency when a scenario has none on the master
/// (also the values of `--probe-fault`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProbeFault {
    Crash,
    HostDown,
}

impl ProbeFault {
    pub fn kind(self) -> FaultKind {
        match self {
            ProbeFault::Crash => FaultKind::Crash,
            ProbeFault::HostDown => FaultKind::HostDown,
        }
    }
}

impl Ranges {
    /// With no range at all, the default health-check sweep: delay 1..10, timeout 1..5,
    /// max_retries_down 1..5, max_retries 1..3. Any range given (the CID slice's included): only
    /// what was given varies.
    pub fn or_default_sweep(self) -> Ranges {
        let none = self.delay.is_empty()
            && self.timeout.is_empty()
            && self.max_retries_down.is_empty()
            && self.max_retries.is_empty()
            && self.offset.is_empty()
            && self.len.is_empty();
        if !none {
            return self;
        }
        Ranges {
            delay: (1..=10).collect(),
            timeout: (1..=5).collect(),
            max_retries_down: (1..=5).collect(),
            max_retries: (1..=3).collect(),
            ..self
        }
    }

    /// How many points the sweep has (an empty range counts as the scenario's one value).
    pub fn point_count(&self) -> u64 {
        [
            self.delay.len(),
            self.timeout.len(),
            self.max_retries_down.len(),
            self.max_retries.len(),
            self.offset.len(),
            self.len.len(),
        ]
        .iter()
        .map(|&n| n.max(1) as u64)
        .product()
    }
}

/// Conditions a point must meet.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Constraints {
    /// False failovers per day (all LB nodes) at most this.
    pub max_false_per_day: f64,
    /// Require `timeout < delay`, as the API advises.
    pub timeout_below_delay: bool,
    /// Missed-fault rate at most this, if set.
    pub max_missed_rate: Option<f64>,
}

impl Default for Constraints {
    fn default() -> Self {
        Constraints {
            max_false_per_day: 1.0,
            timeout_below_delay: false,
            max_missed_rate: None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct TuneOptions {
    pub trials: u64,
    pub seed: u64,
    pub jobs: usize,
    pub objective: Objective,
    pub constraints: Constraints,
    pub probe_fault: FaultKind,
}

/// One point of the sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Point {
    pub delay: u32,
    pub timeout: u32,
    pub max_retries_down: u32,
    pub max_retries: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub len: Option<u8>,
}

/// What one point measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointResult {
    #[serde(flatten)]
    pub point: Point,
    /// The objective's value (seconds, or connections for client-failures); null when the trials
    /// gave no sample (e.g. every fault missed).
    pub objective: Option<f64>,
    pub feasible: bool,
    /// Why an infeasible point fails its constraints.
    pub violations: Vec<String>,
    /// Not dominated in (objective, false failovers per day) by any other point.
    pub pareto: bool,
    pub detection_latency_s: Summary,
    pub failover_latency_s: Summary,
    pub failback_latency_s: Summary,
    pub false_failovers: FalseFailoverEstimate,
    pub missed_fault_rate: Option<f64>,
    /// Mean client failures per trial (traffic only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_failures_mean: Option<f64>,
    /// Mean QUIC connections broken by CID routing per trial (QUIC traffic only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quic_cid_broken_mean: Option<f64>,
}

/// The whole sweep, ranked: feasible points by objective, then the rest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TuneReport {
    pub trials_per_point: u64,
    pub seed: u64,
    pub objective: Objective,
    pub constraints: Constraints,
    /// The fault added to measure latency when the scenario had none on the master.
    pub probe_fault: Option<&'static str>,
    pub points: Vec<PointResult>,
}

/// Every combination of the ranges, in a fixed order.
pub fn points(base: &SimConfig, r: &Ranges) -> Vec<Point> {
    let or = |v: &Vec<u32>, d: u32| if v.is_empty() { vec![d] } else { v.clone() };
    let or8 = |v: &Vec<u8>, d: Option<u8>| {
        if v.is_empty() {
            vec![d]
        } else {
            v.iter().map(|&x| Some(x)).collect()
        }
    };
    let q = base.traffic.as_ref().and_then(|t| t.quic);
    let mut out = Vec::new();
    for &delay in &or(&r.delay, base.check.delay.as_secs_f64() as u32) {
        for &timeout in &or(&r.timeout, base.check.timeout.as_secs_f64() as u32) {
            for &mrd in &or(&r.max_retries_down, base.check.fall) {
                for &mr in &or(&r.max_retries, base.check.rise) {
                    for &offset in &or8(&r.offset, q.map(|q| q.shape.offset)) {
                        for &len in &or8(&r.len, q.map(|q| q.shape.len)) {
                            out.push(Point {
                                delay,
                                timeout,
                                max_retries_down: mrd,
                                max_retries: mr,
                                offset,
                                len,
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

/// The scenario with a point's parameters.
pub fn apply(base: &SimConfig, p: &Point) -> SimConfig {
    let mut c = base.clone();
    c.check.delay = SimDuration::from_secs(p.delay as u64);
    c.check.timeout = SimDuration::from_secs(p.timeout as u64);
    c.check.fall = p.max_retries_down;
    c.check.rise = p.max_retries;
    if let Some(q) = c.traffic.as_mut().and_then(|t| t.quic.as_mut()) {
        q.shape.offset = p.offset.unwrap_or(q.shape.offset);
        q.shape.len = p.len.unwrap_or(q.shape.len);
    }
    c
}

/// Adds the latency-measuring fault when the scenario has none on the master.
pub fn with_probe_fault(base: &SimConfig, kind: FaultKind) -> (SimConfig, bool) {
    if base.faults.iter().any(|f| f.member == Role::Master) {
        return (base.clone(), false);
    }
    let mut c = base.clone();
    let at = SimTime(base.duration.0 / 4);
    let len = SimDuration(base.duration.0 / 4).min(SimDuration::from_secs(600));
    c.faults.push(Fault {
        member: Role::Master,
        kind,
        at,
        until: Some(at + len),
    });
    (c, true)
}

fn objective_value(o: Objective, r: &TrialsReport) -> Option<f64> {
    match o {
        Objective::P99Failover => r.failover_latency_s.p99,
        Objective::P50Failover => r.failover_latency_s.p50,
        Objective::MeanFailover => r.failover_latency_s.mean,
        Objective::P99Detection => r.detection_latency_s.p99,
        Objective::P99Failback => r.failback_latency_s.p99,
        Objective::ClientFailures => client_failures(r),
    }
}

fn client_failures(r: &TrialsReport) -> Option<f64> {
    let t = r.traffic.as_ref()?;
    let mean = |k: &str| t.counters.get(k).map_or(0.0, |c| c.mean);
    Some(
        [
            "refused",
            "timed_out",
            "no_backend",
            "tls_failed",
            "broken",
            "quic_cid_broken",
        ]
        .iter()
        .map(|k| mean(k))
        .sum(),
    )
}

/// Runs the sweep. `progress` is told how many points are done.
pub fn tune(
    base: &SimConfig,
    ranges: &Ranges,
    opts: TuneOptions,
    stop: &AtomicBool,
    progress: &(dyn Fn(u64) + Sync),
) -> TuneReport {
    let (base_with_fault, added) = with_probe_fault(base, opts.probe_fault);
    let mut results: Vec<PointResult> = Vec::new();
    for (i, p) in points(base, ranges).into_iter().enumerate() {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        let cfg = apply(&base_with_fault, &p);
        let r = run_trials(
            &cfg,
            TrialsOptions {
                n: opts.trials,
                seed: opts.seed,
                jobs: opts.jobs,
            },
            stop,
            &|_| {},
        );
        let ff = FalseFailoverEstimate::new(&cfg, r.false_failovers, r.fault_free_hours);
        let c = &opts.constraints;
        let mut violations = Vec::new();
        if ff.per_day > c.max_false_per_day {
            violations.push(format!(
                "{:.3} false failovers per day > {}",
                ff.per_day, c.max_false_per_day
            ));
        }
        if c.timeout_below_delay && p.timeout >= p.delay {
            violations.push("timeout is not below delay".to_string());
        }
        if let (Some(max), Some(rate)) = (c.max_missed_rate, r.missed_fault_rate) {
            if rate > max {
                violations.push(format!("missed-fault rate {rate:.4} > {max}"));
            }
        }
        let objective = objective_value(opts.objective, &r);
        if objective.is_none() {
            violations.push("no sample for the objective (every fault missed?)".to_string());
        }
        results.push(PointResult {
            point: p,
            objective,
            feasible: violations.is_empty(),
            violations,
            pareto: false,
            detection_latency_s: r.detection_latency_s.clone(),
            failover_latency_s: r.failover_latency_s.clone(),
            failback_latency_s: r.failback_latency_s.clone(),
            false_failovers: ff,
            missed_fault_rate: r.missed_fault_rate,
            client_failures_mean: client_failures(&r),
            quic_cid_broken_mean: r
                .traffic
                .as_ref()
                .filter(|_| cfg.traffic.as_ref().is_some_and(|t| t.quic.is_some()))
                .and_then(|t| t.counters.get("quic_cid_broken").map(|c| c.mean)),
        });
        progress(i as u64 + 1);
    }
    mark_pareto(&mut results);
    results.sort_by(|a, b| {
        let key = |r: &PointResult| (!r.feasible, r.objective.unwrap_or(f64::INFINITY));
        let (fa, oa) = key(a);
        let (fb, ob) = key(b);
        fa.cmp(&fb)
            .then(oa.total_cmp(&ob))
            .then(
                a.false_failovers
                    .per_day
                    .total_cmp(&b.false_failovers.per_day),
            )
            // Then the faster failback (a lower max_retries), all else equal.
            .then(
                a.failback_latency_s
                    .p99
                    .unwrap_or(f64::INFINITY)
                    .total_cmp(&b.failback_latency_s.p99.unwrap_or(f64::INFINITY)),
            )
            .then(
                (
                    a.point.delay,
                    a.point.timeout,
                    a.point.max_retries_down,
                    a.point.max_retries,
                )
                    .cmp(&(
                        b.point.delay,
                        b.point.timeout,
                        b.point.max_retries_down,
                        b.point.max_retries,
                    )),
            )
    });
    TuneReport {
        trials_per_point: opts.trials,
        seed: opts.seed,
        objective: opts.objective,
        constraints: opts.constraints,
        probe_fault: added.then(|| opts.probe_fault.name()),
        points: results,
    }
}

/// Marks points no other point beats on both objective and false failovers per day.
fn mark_pareto(results: &mut [PointResult]) {
    let keys: Vec<(f64, f64)> = results
        .iter()
        .map(|r| {
            (
                r.objective.unwrap_or(f64::INFINITY),
                r.false_failovers.per_day,
            )
        })
        .collect();
    for (i, r) in results.iter_mut().enumerate() {
        let (o, f) = keys[i];
        r.pareto = o.is_finite()
            && !keys
                .iter()
                .any(|&(o2, f2)| o2 <= o && f2 <= f && (o2 < o || f2 < f));
    }
}
