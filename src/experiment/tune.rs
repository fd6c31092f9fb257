//! `elbsim tune`: sweep health-check parameters (and, for QUIC pools, the CID slice), run trials
//! at every point, and rank the points by an objective under constraints.
//!
//! Every point runs the same trial indices with the same seed (common random numbers), so two
//! points differ by their parameters, not by luck. Latencies come from the trials; false
//! failovers from [`super::rare`]: the closed form (exact for independent probe failures) is the
//! figure constraints use, with the simulated count and its 95% interval beside it as a check.
//!
//! On a noisy probe path the trials are windowed by default (`super::windowed`): each trial
//! simulates a window around the fault, the (fall, rise) pairs of one (delay, timeout) share its
//! probe tape, and the simulated false-failover check is one noise-only stream per trial scored
//! by every pair (`super::stream`). `full` runs every trial whole, as before.
//!
//! A scenario with no fault on the master gets one for measuring latency (`probe_fault`, default
//! `host_down`, the slowest to detect), from a quarter of the run for ten minutes at most.
//!
//! Points are generated lazily (a sweep is never held as a list) and a sweep has at most
//! [`MAX_POINTS`] points. A point whose health check draws an API warning (e.g. `timeout >=
//! delay`) is measured and shown but not ranked, so it is never recommended, unless
//! `allow_warnings`. Ctrl-C stops the sweep: the points finished are ranked, the half-run one is
//! left out, and the report says `partial`.

use super::rare::FalseFailoverEstimate;
use super::stats::Summary;
use super::stream::CounterPair;
use super::trials::{report, run_range, run_trials, Accum, TrialsOptions, TrialsReport};
use super::windowed::{self, CounterBounds, Plan};
use crate::model::router::Role;
use crate::sim::config::{Fault, FaultKind, SimConfig};
use crate::sim::time::{SimDuration, SimTime};
use serde::Serialize;
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::AtomicBool;

/// Where the trials of each point come from.
#[derive(Debug, Clone, Copy)]
pub enum PointSource<'a> {
    /// Run them.
    Simulate,
    /// Merged from shards: the accumulator of every point, by index in the sweep.
    Merged(&'a BTreeMap<u64, Accum>),
    /// Computed exactly over every probe phase (`super::exact`), points in parallel; a point
    /// exact mode cannot compute (see `exact::compute`) runs its trials instead and is counted
    /// in `TuneReport::sampled_points`.
    Exact,
}

/// Runs the trials of points `range` of the sweep (one shard of it) and returns each point's
/// accumulator by index; `None` when interrupted (a shard is whole or nothing).
pub fn point_accums(
    base: &SimConfig,
    ranges: &Ranges,
    opts: TuneOptions,
    range: Range<u64>,
    interrupt: &'static AtomicBool,
    progress: &(dyn Fn(u64) + Sync),
) -> Option<Vec<(u64, Accum)>> {
    let (base_with_fault, _) = with_probe_fault(base, opts.probe_fault);
    let mut runner = Runner::new(base, ranges, opts);
    let mut out = Vec::new();
    let skip = range.start as usize;
    let take = range.end.saturating_sub(range.start) as usize;
    for (i, p) in points(base, ranges).enumerate().skip(skip).take(take) {
        if interrupt.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        let cfg = apply(&base_with_fault, &p);
        let acc = runner.accum(i as u64, &p, &cfg, range.end, interrupt)?;
        if acc.trials() < opts.trials && acc.limit().is_none() {
            return None;
        }
        out.push((i as u64, acc));
        progress(runner.done_through.max(i as u64 + 1) - range.start);
    }
    Some(out)
}

/// Computes points' accumulators: by default windowed, one probe tape per (delay, timeout)
/// group shared by its (fall, rise) pairs (`super::windowed`), where that applies; in full
/// otherwise or with `TuneOptions::full`. A point's accumulator is the same whichever points
/// share its group (each pair's runs are the runs drawing would give, and the window is sized
/// for the whole sweep's counters), so any shard of a sweep gets the unsharded figures.
struct Runner<'a> {
    base: &'a SimConfig,
    ranges: &'a Ranges,
    opts: TuneOptions,
    bounds: CounterBounds,
    /// Results of the current group not yet taken, by point index.
    group: Vec<(u64, Accum)>,
    /// One past the last point computed so far (for progress).
    done_through: u64,
}

impl<'a> Runner<'a> {
    fn new(base: &'a SimConfig, ranges: &'a Ranges, opts: TuneOptions) -> Self {
        let max = |v: &[u32], d: u32| v.iter().copied().max().unwrap_or(d);
        Runner {
            base,
            ranges,
            opts,
            bounds: CounterBounds {
                fall: max(&ranges.max_retries_down, base.check.fall),
                rise: max(&ranges.max_retries, base.check.rise),
            },
            group: Vec::new(),
            done_through: 0,
        }
    }

    /// The window point scenario `cfg` runs in, if it runs windowed.
    fn window(&self, cfg: &SimConfig) -> Option<Box<windowed::Window>> {
        if self.opts.full {
            return None;
        }
        match windowed::plan(cfg, self.bounds) {
            Plan::Windowed(w) => Some(w),
            Plan::Full(_) => None,
        }
    }

    /// Point `i`'s accumulator (`cfg` is the point's scenario, with the probe fault); its group
    /// reaches no further than point `end`. `None` when a windowed group was interrupted (a
    /// full run returns what finished, as [`run_range`] does).
    fn accum(
        &mut self,
        i: u64,
        p: &Point,
        cfg: &SimConfig,
        end: u64,
        interrupt: &AtomicBool,
    ) -> Option<Accum> {
        if let Some(k) = self.group.iter().position(|(j, _)| *j == i) {
            return Some(self.group.swap_remove(k).1);
        }
        self.group.clear();
        if let Some(w) = self.window(cfg) {
            let same = |q: &Point| {
                (q.delay, q.timeout, q.offset, q.len) == (p.delay, p.timeout, p.offset, p.len)
            };
            let members: Vec<(u64, CounterPair)> = points(self.base, self.ranges)
                .enumerate()
                .skip(i as usize)
                .take_while(|(j, q)| (*j as u64) < end && same(q))
                .map(|(j, q)| {
                    (
                        j as u64,
                        CounterPair {
                            fall: q.max_retries_down,
                            rise: q.max_retries,
                        },
                    )
                })
                .collect();
            let pairs: Vec<CounterPair> = members.iter().map(|m| m.1).collect();
            let results = windowed::group_results(
                cfg,
                &w,
                &pairs,
                self.opts.seed,
                self.opts.trials,
                self.opts.jobs,
                interrupt,
            )?;
            self.done_through = members.last().map_or(i, |m| m.0) + 1;
            self.group = members
                .iter()
                .zip(results)
                .map(|(m, acc)| (m.0, acc))
                .collect();
            let k = self.group.iter().position(|(j, _)| *j == i)?;
            return Some(self.group.swap_remove(k).1);
        }
        self.done_through = i + 1;
        Some(run_range(
            cfg,
            self.opts.seed,
            0..self.opts.trials,
            self.opts.jobs,
            interrupt,
            &|_| {},
            None,
        ))
    }
}

/// Most points in one sweep. At the default 200 trials per point this is already hours of work;
/// a wider sweep is refused before anything runs, so that a typo cannot start a 10^8-point job.
pub const MAX_POINTS: u64 = 10_000;

/// Most points in one exact sweep (`--exact`): the whole API range of delay, timeout,
/// max_retries and max_retries_down (50 x 50 x 10 x 10), each point computed in microseconds.
pub const MAX_EXACT_POINTS: u64 = 250_000;

/// The traffic counters the `client-failures` objective sums (their means per trial).
pub const CLIENT_FAILURE_COUNTERS: [&str; 6] = [
    "refused",
    "timed_out",
    "no_backend",
    "tls_failed",
    "broken",
    "quic_cid_broken",
];

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
    /// Mean detection time E[T_D] (simulated).
    MeanDetection,
    /// Mean mistake duration E[T_M] (closed form).
    MistakeDuration,
    /// Mistakes per day per member and LB node, 1 / E[T_MR] (closed form).
    MistakeRate,
    /// Query accuracy probability P_A (closed form), maximised: ranks by 1 - P_A.
    Pa,
}

impl Objective {
    /// Objectives whose values are small fractions, printed in scientific notation when tiny.
    pub fn is_fraction(self) -> bool {
        matches!(self, Objective::MistakeRate | Objective::Pa)
    }

    /// Objectives about the failure detector's quality of service.
    pub fn is_qos(self) -> bool {
        matches!(
            self,
            Objective::MistakeDuration | Objective::MistakeRate | Objective::Pa
        )
    }
}

/// The fault added to measure latency when a scenario has none on the master
/// (also the values of `--probe-fault`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProbeFault {
    Crash,
    /// Spelled as in scenario files and reports; `host-down` is still accepted.
    #[value(name = "host_down", alias = "host-down")]
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
    /// Saturates instead of overflowing; compare it with [`MAX_POINTS`].
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
        .fold(1u64, |acc, &n| acc.saturating_mul(n.max(1) as u64))
    }
}

/// Failure-detector QoS conditions (on the closed forms, per member and LB node); each off
/// when `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct QosConstraints {
    /// E[T_MR] at least this (s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_mistake_recurrence_s: Option<f64>,
    /// E[T_M] at most this (s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_mistake_duration_s: Option<f64>,
    /// P_A at least this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_pa: Option<f64>,
}

impl QosConstraints {
    pub fn any(&self) -> bool {
        self.min_mistake_recurrence_s.is_some()
            || self.max_mistake_duration_s.is_some()
            || self.min_pa.is_some()
    }

    /// Why `q` fails these constraints (empty when it meets them).
    pub fn violations(&self, q: &crate::report::qos::QosReport) -> Vec<String> {
        use crate::report::qos::{prob, span};
        let mut v = Vec::new();
        if let Some(min) = self.min_mistake_recurrence_s {
            // No closed form: probes never fail, so mistakes never recur.
            if let Some(mr) = q.recurrence.closed_form_s.filter(|&mr| mr < min) {
                v.push(format!("T_MR {} < {}", span(mr), span(min)));
            }
        }
        if let Some(max) = self.max_mistake_duration_s {
            let m = q.duration.closed_form_mean_s;
            if m > max {
                v.push(format!("T_M {} > {}", span(m), span(max)));
            }
        }
        if let Some(min) = self.min_pa {
            let pa = q.accuracy.closed_form;
            if pa < min {
                v.push(format!("P_A {} < {min}", prob(pa)));
            }
        }
        v
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
    /// Failure-detector QoS constraints.
    #[serde(flatten)]
    pub qos: QosConstraints,
}

impl Default for Constraints {
    fn default() -> Self {
        Constraints {
            max_false_per_day: 1.0,
            timeout_below_delay: false,
            max_missed_rate: None,
            qos: QosConstraints::default(),
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
    /// Rank points whose health check draws an API warning (by default they are shown, unranked).
    pub allow_warnings: bool,
    /// Simulate every point's trials in full, never windowed (`--full`).
    pub full: bool,
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
    /// The means per trial of the counters the objective is built from (client-failures only).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub objective_counters: BTreeMap<&'static str, f64>,
    /// Failure-detector QoS at this point (simulated and closed form).
    pub qos: crate::report::qos::QosReport,
    /// API warnings the point's health check draws (`[rule] message`).
    pub api_warnings: Vec<String>,
    /// In the ranking: false for a point with API warnings (unless `allow_warnings`), which is
    /// shown but never recommended.
    pub ranked: bool,
}

/// The whole sweep, ranked: feasible points by objective, then the rest, then the unranked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TuneReport {
    /// True when Ctrl-C stopped the sweep: `points` holds the points finished (the one running
    /// then is left out), `points_requested` what the sweep had.
    pub partial: bool,
    pub points_requested: u64,
    pub trials_per_point: u64,
    pub seed: u64,
    pub objective: Objective,
    pub constraints: Constraints,
    /// The fault added to measure latency when the scenario had none on the master.
    pub probe_fault: Option<&'static str>,
    /// How many points ran windowed (absent when none did: every trial ran whole).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub windowed: Option<WindowedSummary>,
    pub points: Vec<PointResult>,
    /// `"exact"` when the points were computed over every probe phase (`super::exact`);
    /// absent for a sampled sweep.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<&'static str>,
    /// In an exact sweep, the points exact mode could not compute, which ran trials instead.
    #[serde(skip_serializing_if = "is_zero")]
    pub sampled_points: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The points of a sweep that ran windowed (`super::windowed`): their latencies come from a
/// window around the fault, their simulated false failovers from a noise-only stream of the
/// run's fault-free time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowedSummary {
    pub points: u64,
    /// Shortest and longest window, seconds.
    pub window_s: (f64, f64),
    /// Length of the full run, seconds.
    pub run_s: f64,
}

/// Every combination of the ranges, in a fixed order, generated one at a time (a sweep is never
/// held as a list).
pub fn points(base: &SimConfig, r: &Ranges) -> impl Iterator<Item = Point> {
    let or = |v: &Vec<u32>, d: u32| if v.is_empty() { vec![d] } else { v.clone() };
    let or8 = |v: &Vec<u8>, d: Option<u8>| {
        if v.is_empty() {
            vec![d]
        } else {
            v.iter().map(|&x| Some(x)).collect()
        }
    };
    let q = base.traffic.as_ref().and_then(|t| t.quic);
    // Each axis holds at most 51 values (the API's ranges), so these lists are small; only their
    // product, the sweep, could be large.
    let delays = or(&r.delay, base.check.delay.as_secs_f64() as u32);
    let timeouts = or(&r.timeout, base.check.timeout.as_secs_f64() as u32);
    let downs = or(&r.max_retries_down, base.check.fall);
    let ups = or(&r.max_retries, base.check.rise);
    let offsets = or8(&r.offset, q.map(|q| q.shape.offset));
    let lens = or8(&r.len, q.map(|q| q.shape.len));
    let sizes = [
        delays.len(),
        timeouts.len(),
        downs.len(),
        ups.len(),
        offsets.len(),
        lens.len(),
    ];
    let total: u64 = sizes.iter().fold(1u64, |a, &n| a.saturating_mul(n as u64));
    (0..total).map(move |mut i| {
        // Mixed-radix digits, the last axis fastest (the order of nested loops).
        let mut digit = [0usize; 6];
        for (d, &n) in digit.iter_mut().zip(sizes.iter()).rev() {
            *d = (i % n as u64) as usize;
            i /= n as u64;
        }
        Point {
            delay: delays[digit[0]],
            timeout: timeouts[digit[1]],
            max_retries_down: downs[digit[2]],
            max_retries: ups[digit[3]],
            offset: offsets[digit[4]],
            len: lens[digit[5]],
        }
    })
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
        Objective::MeanDetection => r.detection_latency_s.mean,
        Objective::MistakeDuration => Some(r.qos.duration.closed_form_mean_s),
        Objective::MistakeRate => Some(
            r.qos
                .recurrence
                .closed_form_s
                .map_or(0.0, |mr| 86_400.0 / mr),
        ),
        Objective::Pa => Some(1.0 - r.qos.accuracy.closed_form),
    }
}

fn client_failures(r: &TrialsReport) -> Option<f64> {
    Some(client_failure_counters(r)?.values().sum())
}

/// The mean per trial of each counter `client-failures` sums.
fn client_failure_counters(r: &TrialsReport) -> Option<BTreeMap<&'static str, f64>> {
    let t = r.traffic.as_ref()?;
    Some(
        CLIENT_FAILURE_COUNTERS
            .iter()
            .map(|&k| (k, t.counters.get(k).map_or(0.0, |c| c.mean)))
            .collect(),
    )
}

/// Runs the sweep. `progress` is told how many points are done; `api_warnings` gives the API
/// warnings a point's health check draws (the same rules as the body's validation); `interrupt`
/// (Ctrl-C) stops the sweep, even inside a long trial.
pub fn tune(
    base: &SimConfig,
    ranges: &Ranges,
    opts: TuneOptions,
    api_warnings: &dyn Fn(&Point) -> Vec<String>,
    interrupt: &'static AtomicBool,
    progress: &(dyn Fn(u64) + Sync),
    source: PointSource,
) -> TuneReport {
    let (base_with_fault, added) = with_probe_fault(base, opts.probe_fault);
    let mut runner = Runner::new(base, ranges, opts);
    let total = ranges.point_count();
    let mut results: Vec<PointResult> = Vec::new();
    let mut windowed_summary: Option<WindowedSummary> = None;
    let mut partial = false;
    // Exact points are computed a chunk at a time, in parallel, ahead of the ranking loop.
    let mut ahead = points(base, ranges);
    let mut computed: std::collections::VecDeque<Result<TrialsReport, String>> =
        std::collections::VecDeque::new();
    let mut sampled_points = 0u64;
    for (i, p) in points(base, ranges).enumerate() {
        if interrupt.load(std::sync::atomic::Ordering::Relaxed) {
            partial = true;
            break;
        }
        let cfg = apply(&base_with_fault, &p);
        let window_s = runner.window(&cfg).map(|w| w.cfg.duration.as_secs_f64());
        let sample = |cfg: &SimConfig| {
            run_trials(
                cfg,
                TrialsOptions {
                    n: opts.trials,
                    seed: opts.seed,
                    jobs: opts.jobs,
                },
                interrupt,
                &|_| {},
            )
        };
        let r = match source {
            PointSource::Exact => {
                if computed.is_empty() {
                    let chunk: Vec<SimConfig> = ahead
                        .by_ref()
                        .take(super::exact::TUNE_CHUNK)
                        .map(|p| apply(&base_with_fault, &p))
                        .collect();
                    computed = super::exact::reports(&chunk, opts.seed, opts.jobs).into();
                }
                match computed.pop_front() {
                    Some(Ok(r)) => r,
                    _ => {
                        sampled_points += 1;
                        sample(&cfg)
                    }
                }
            }
            PointSource::Simulate => match runner.accum(i as u64, &p, &cfg, total, interrupt) {
                Some(acc) => report(&cfg, &acc, opts.trials, opts.seed),
                None => {
                    partial = true;
                    break;
                }
            },
            PointSource::Merged(m) => match m.get(&(i as u64)) {
                Some(acc) => report(&cfg, acc, opts.trials, opts.seed),
                None => {
                    partial = true;
                    break;
                }
            },
        };
        if r.partial {
            // A half-run point has fewer trials than the others: its figures would not compare.
            partial = true;
            break;
        }
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
        violations.extend(c.qos.violations(&r.qos));
        let objective = objective_value(opts.objective, &r);
        if objective.is_none() {
            violations.push("no sample for the objective (every fault missed?)".to_string());
        }
        let warnings = api_warnings(&p);
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
            objective_counters: if opts.objective == Objective::ClientFailures {
                client_failure_counters(&r).unwrap_or_default()
            } else {
                BTreeMap::new()
            },
            qos: r.qos.clone(),
            ranked: warnings.is_empty() || opts.allow_warnings,
            api_warnings: warnings,
        });
        if let Some(len) = window_s {
            let s = windowed_summary.get_or_insert(WindowedSummary {
                points: 0,
                window_s: (len, len),
                run_s: cfg.duration.as_secs_f64(),
            });
            s.points += 1;
            s.window_s = (s.window_s.0.min(len), s.window_s.1.max(len));
        }
        progress(runner.done_through.max(i as u64 + 1));
    }
    mark_pareto(&mut results);
    // Sorted by index, then moved once: a point's result is a kilobyte, and an exact sweep
    // has 250,000 of them.
    let by_rank = |a: &PointResult, b: &PointResult| {
        let key = |r: &PointResult| (!r.ranked, !r.feasible, r.objective.unwrap_or(f64::INFINITY));
        let (ra, fa, oa) = key(a);
        let (rb, fb, ob) = key(b);
        ra.cmp(&rb)
            .then(fa.cmp(&fb))
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
                    a.point.offset,
                    a.point.len,
                )
                    .cmp(&(
                        b.point.delay,
                        b.point.timeout,
                        b.point.max_retries_down,
                        b.point.max_retries,
                        b.point.offset,
                        b.point.len,
                    )),
            )
    };
    let mut order: Vec<usize> = (0..results.len()).collect();
    order.sort_by(|&a, &b| by_rank(&results[a], &results[b]));
    let mut slots: Vec<Option<PointResult>> = results.into_iter().map(Some).collect();
    let results: Vec<PointResult> = order.into_iter().filter_map(|i| slots[i].take()).collect();
    TuneReport {
        partial,
        points_requested: ranges.point_count(),
        trials_per_point: opts.trials,
        seed: opts.seed,
        objective: opts.objective,
        constraints: opts.constraints,
        probe_fault: added.then(|| opts.probe_fault.name()),
        windowed: windowed_summary,
        points: results,
        method: matches!(source, PointSource::Exact).then_some("exact"),
        sampled_points,
    }
}

impl TuneReport {
    /// The recommended point: the first, when it is ranked and meets the constraints.
    pub fn best(&self) -> Option<&PointResult> {
        self.points.first().filter(|p| p.ranked && p.feasible)
    }
}

/// Marks ranked points no other ranked point beats on both objective and false failovers per
/// day (an unranked point is never offered, so it neither joins nor shapes the front).
fn mark_pareto(results: &mut [PointResult]) {
    let keys: Vec<(f64, f64)> = results
        .iter()
        .filter(|r| r.ranked)
        .map(|r| {
            (
                r.objective.unwrap_or(f64::INFINITY),
                r.false_failovers.per_day,
            )
        })
        .collect();
    for r in results.iter_mut() {
        let (o, f) = (
            r.objective.unwrap_or(f64::INFINITY),
            r.false_failovers.per_day,
        );
        r.pareto = r.ranked
            && o.is_finite()
            && !keys
                .iter()
                .any(|&(o2, f2)| o2 <= o && f2 <= f && (o2 < o || f2 < f));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::probe::ProbeKind;
    use crate::sim::config::{CheckConfig, SimConfig};

    fn base() -> SimConfig {
        SimConfig::with_check(CheckConfig {
            kind: ProbeKind::Tcp,
            delay: SimDuration::from_secs(5),
            timeout: SimDuration::from_secs(3),
            rise: 3,
            fall: 3,
        })
    }

    #[test]
    fn points_come_lazily_in_nested_loop_order() {
        let r = Ranges {
            delay: vec![1, 2],
            timeout: vec![1, 2, 3],
            ..Ranges::default()
        };
        let got: Vec<(u32, u32, u32)> = points(&base(), &r)
            .map(|p| (p.delay, p.timeout, p.max_retries_down))
            .collect();
        assert_eq!(
            got,
            [
                (1, 1, 3),
                (1, 2, 3),
                (1, 3, 3),
                (2, 1, 3),
                (2, 2, 3),
                (2, 3, 3)
            ]
        );
        // A sweep of 10^8 points is an iterator, not a 2 GB list: taking one costs nothing.
        let huge = Ranges {
            delay: (1..=50).collect(),
            timeout: (1..=50).collect(),
            max_retries_down: (1..=10).collect(),
            max_retries: (1..=10).collect(),
            offset: (0..=19).collect(),
            len: (1..=20).collect(),
        };
        assert_eq!(huge.point_count(), 100_000_000);
        let first = points(&base(), &huge).next().unwrap();
        assert_eq!(
            (first.delay, first.offset, first.len),
            (1, Some(0), Some(1))
        );
        assert!(huge.point_count() > MAX_POINTS);
    }
}
