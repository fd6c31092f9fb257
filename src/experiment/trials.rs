//! `elbsim trials`: many independent randomized runs of one scenario, summarized.
//!
//! Trial `i` runs with random streams derived from `(seed, i)` (see `crate::sim::rng`), so its
//! result does not depend on which thread runs it; per-thread accumulators are merged with exact
//! integer arithmetic, so the output is byte-identical for any `--jobs`. Nothing per trial is
//! kept: memory is the same for 10 trials or 10 million.
//!
//! Trials stop a run early once nothing can change any more (`RunOptions::stop_when_quiet`):
//! exact, because that only happens on a noise-free probe path after the last fault.

use super::stats::{CounterStats, CounterSummary, HistState, LatencyStats, Summary};
use crate::model::router::Role;
use crate::report::run::measure;
use crate::sim::config::SimConfig;
use crate::sim::engine::{self, ProbeOptions, RunOptions, StartPhase, TapeMode};
use crate::sim::time::{SimDuration, SimTime};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::Range;
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
    /// Master healthy again (end of the last overlapping fault its check sees) -> new
    /// connections back on the master.
    pub failback_latency_s: Summary,
    /// Fault start -> a node with no ONLINE member to send to (drop or fail-open); kept out of
    /// the failover figures.
    pub outage_latency_s: Summary,
    /// With session persistence: master healthy again -> the last new connection persistence
    /// still sent to the slave.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persisted_failback_latency_s: Option<Summary>,
    /// False failovers (summed over LB nodes) per hour of time with no fault on the master that
    /// its check can see; both counted outside such faults.
    pub false_failovers_per_hour: f64,
    /// 95% interval of the rate (Garwood's Poisson interval; an upper bound even for 0);
    /// `null` without fault-free time.
    pub false_failovers_per_hour_ci: Option<[f64; 2]>,
    pub false_failovers: u64,
    /// Hours with no fault on the master that its check can see, summed over trials.
    pub fault_free_hours: f64,
    /// Missed (fault, LB node) pairs over all (fault on the master, LB node) pairs.
    pub missed_fault_rate: Option<f64>,
    /// 95% interval of the rate (Wilson score; an upper bound even for 0 missed).
    pub missed_fault_rate_ci: Option<[f64; 2]>,
    pub missed_faults: u64,
    /// Undetected (fault, LB node) pairs whose detection window did not fit before the end of
    /// their trial: left out of the missed-fault rate.
    pub censored_faults: u64,
    /// Failovers the client rules leave harmless.
    pub needless_failovers: u64,
    pub fault_node_pairs: u64,
    /// Engine events over all trials.
    pub events: u64,
    /// Per traffic counter: mean, p99 and max over trials; plus the unavailability window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic: Option<TrafficSummary>,
    /// Failure-detector quality of service over all trials (`docs/metrics.md`).
    pub qos: crate::report::qos::QosReport,
    /// Set when a trial reached one of the scenario's limits: the batch is not valid.
    #[serde(skip)]
    pub limit: Option<engine::Stopped>,
    /// `"exact"` when the figures were computed over every probe phase instead of sampled
    /// (`super::exact`); absent for a sampled batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<&'static str>,
    /// What exact mode adds: the phase grid, and the first and last LB node's failover.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact: Option<super::exact::ExactFacts>,
}

/// The `traffic` part of a trials report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrafficSummary {
    #[serde(flatten)]
    pub counters: BTreeMap<&'static str, CounterSummary>,
    /// The unavailability window clients saw (first to last failure charged to a fault), one
    /// sample per fault that had a client failure.
    pub unavailability_s: Summary,
}

/// Per-thread (then merged) accumulator; also what a shard of a batch carries
/// ([`AccumState`]).
#[derive(Debug, Clone, Default)]
pub struct Accum {
    trials: u64,
    detection: LatencyStats,
    failover: LatencyStats,
    failback: LatencyStats,
    outage: LatencyStats,
    persisted_failback: LatencyStats,
    false_failovers: u64,
    missed: u64,
    censored: u64,
    needless: u64,
    pairs: u64,
    events: u64,
    counters: BTreeMap<&'static str, CounterStats>,
    unavailability: LatencyStats,
    qos: crate::report::qos::QosTotals,
    /// The first limit a trial reached, if any.
    limit: Option<engine::Stopped>,
}

/// An [`Accum`] as a shard file stores it: every figure exact (histograms in HdrHistogram's V2
/// encoding, integer counts and sums).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccumState {
    pub trials: u64,
    pub detection: HistState,
    pub failover: HistState,
    pub failback: HistState,
    pub outage: HistState,
    pub persisted_failback: HistState,
    pub false_failovers: u64,
    pub missed: u64,
    pub censored: u64,
    pub needless: u64,
    pub pairs: u64,
    pub events: u64,
    pub counters: BTreeMap<String, HistState>,
    pub unavailability: HistState,
    pub qos: super::qos::QosState,
}

impl Accum {
    /// Trials added so far.
    pub fn trials(&self) -> u64 {
        self.trials
    }

    /// The limit a trial reached, if any.
    pub fn limit(&self) -> Option<engine::Stopped> {
        self.limit
    }

    /// False failovers counted so far.
    pub fn false_failovers(&self) -> u64 {
        self.false_failovers
    }

    /// Replaces the false-failover count: windowed `tune` counts them on a noise stream of the
    /// full run's fault-free time (`super::stream`) instead of in the windows.
    pub(crate) fn set_false_failovers(&mut self, n: u64) {
        self.false_failovers = n;
    }

    pub fn to_state(&self) -> AccumState {
        AccumState {
            trials: self.trials,
            detection: self.detection.to_state(),
            failover: self.failover.to_state(),
            failback: self.failback.to_state(),
            outage: self.outage.to_state(),
            persisted_failback: self.persisted_failback.to_state(),
            false_failovers: self.false_failovers,
            missed: self.missed,
            censored: self.censored,
            needless: self.needless,
            pairs: self.pairs,
            events: self.events,
            counters: self
                .counters
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_state()))
                .collect(),
            unavailability: self.unavailability.to_state(),
            qos: super::qos::QosState::of(&self.qos),
        }
    }

    pub fn from_state(s: &AccumState) -> Result<Accum, String> {
        let mut counters = BTreeMap::new();
        for (k, v) in &s.counters {
            let c = crate::sim::engine::Counter::parse(k)
                .ok_or_else(|| format!("unknown traffic counter {k:?}"))?;
            counters.insert(c.name(), CounterStats::from_state(v)?);
        }
        Ok(Accum {
            trials: s.trials,
            detection: LatencyStats::from_state(&s.detection)?,
            failover: LatencyStats::from_state(&s.failover)?,
            failback: LatencyStats::from_state(&s.failback)?,
            outage: LatencyStats::from_state(&s.outage)?,
            persisted_failback: LatencyStats::from_state(&s.persisted_failback)?,
            false_failovers: s.false_failovers,
            missed: s.missed,
            censored: s.censored,
            needless: s.needless,
            pairs: s.pairs,
            events: s.events,
            counters,
            unavailability: LatencyStats::from_state(&s.unavailability)?,
            qos: s.qos.totals()?,
            limit: None,
        })
    }

    pub fn merge(&mut self, o: &Accum) {
        self.trials += o.trials;
        self.detection.merge(&o.detection);
        self.failover.merge(&o.failover);
        self.failback.merge(&o.failback);
        self.outage.merge(&o.outage);
        self.persisted_failback.merge(&o.persisted_failback);
        self.false_failovers += o.false_failovers;
        self.missed += o.missed;
        self.censored += o.censored;
        self.needless += o.needless;
        if self.limit.is_none() {
            self.limit = o.limit;
        }
        self.pairs += o.pairs;
        self.events += o.events;
        for (k, v) in &o.counters {
            self.counters.entry(k).or_default().merge(v);
        }
        self.unavailability.merge(&o.unavailability);
        self.qos.merge(&o.qos);
    }
}

/// Sees each finished trial: its index, what it measured and its traffic log. Called from the
/// worker threads in any order (exports sort by the index); `None` costs nothing.
pub type TrialObserver<'a> =
    Option<&'a (dyn Fn(u64, &crate::report::run::Measured, Option<&engine::TrafficLog>) + Sync)>;

/// The engine options of trial `i` of a batch.
pub(crate) fn trial_options(seed: u64, i: u64, interrupt: &AtomicBool) -> RunOptions<'_> {
    RunOptions {
        seed,
        trial: i,
        record_verdicts: false,
        stop_when_quiet: true,
        interrupt: Some(interrupt),
        failure_series: false,
    }
}

/// Runs trial `i` and adds it to `acc`.
#[allow(clippy::too_many_arguments)]
fn one_trial(
    cfg: &SimConfig,
    seed: u64,
    i: u64,
    interrupt: &AtomicBool,
    windows: &[Vec<(SimTime, SimTime)>; 2],
    acc: &mut Accum,
    observe: TrialObserver,
    start: StartPhase,
) -> bool {
    let (log, _) = engine::run_with(
        cfg,
        trial_options(seed, i, interrupt),
        ProbeOptions {
            start,
            tape: TapeMode::Off,
        },
    );
    add_trial(cfg, i, &log, windows, acc, observe)
}

/// Adds trial `i`'s run `log` to `acc`; false when the run stopped early (interrupted, or a
/// limit, which `acc` keeps).
pub(crate) fn add_trial(
    cfg: &SimConfig,
    i: u64,
    log: &engine::RunLog,
    windows: &[Vec<(SimTime, SimTime)>; 2],
    acc: &mut Accum,
    observe: TrialObserver,
) -> bool {
    if let Some(stopped) = log.stopped {
        // An interrupted trial is left out whole; a limit is the scenario's to fix.
        if let engine::Stopped::Limit { .. } = stopped {
            acc.limit.get_or_insert(stopped);
        }
        return false;
    }
    let m = measure(cfg, log);
    if let Some(f) = observe {
        f(i, &m, log.traffic.as_ref());
    }
    acc.trials += 1;
    acc.events += log.events;
    for f in &m.failovers {
        let start = cfg.faults[f.detection.fault as usize].at;
        acc.detection.record_ns(f.detection.detected.since(start).0);
        if let Some(sw) = f.switched {
            acc.failover.record_ns(sw.since(start).0);
        }
        acc.needless += u64::from(f.needless.is_some());
    }
    for o in &m.outages {
        let start = cfg.faults[o.detection.fault as usize].at;
        acc.outage.record_ns(o.at.since(start).0);
    }
    for b in &m.failbacks {
        acc.failback.record_ns(b.switched_back.since(b.healthy).0);
        if cfg
            .traffic
            .as_ref()
            .is_some_and(|t| t.persistence.is_some())
            && b.persisted_returned
        {
            let back = b.persisted_last.map_or(0, |p| p.since(b.healthy).0);
            acc.persisted_failback.record_ns(back);
        }
    }
    // The rate's numerator and denominator cover the same time: outside visible faults.
    acc.false_failovers += m
        .false_failovers
        .iter()
        .filter(|x| !inside(&windows[Role::Master.index()], x.at))
        .count() as u64;
    acc.missed += m.missed.len() as u64;
    acc.censored += m.censored.len() as u64;
    acc.pairs += m.fault_node_pairs;
    acc.qos.add(&crate::report::qos::measure(
        cfg,
        log,
        &m.unexplained,
        windows,
    ));
    if let Some(t) = &log.traffic {
        for (k, v) in t.counters.iter() {
            acc.counters.entry(k.name()).or_default().record(v);
        }
        for u in &t.unavailability {
            if let Some(s) = &u.all {
                acc.unavailability.record_ns(s.last.since(s.first).0);
            }
        }
    }
    true
}

/// The spans of one run in which the master has a fault its check can see, merged and sorted.
/// False-failover rates are taken outside them: inside, an OFFLINE verdict may be the fault's.
pub fn visible_fault_windows(cfg: &SimConfig) -> Vec<(SimTime, SimTime)> {
    crate::report::qos::visible_windows(cfg, Role::Master)
}

/// Time with no fault on the master that its check can see, in one run.
pub fn fault_free(cfg: &SimConfig) -> SimDuration {
    let covered: u64 = visible_fault_windows(cfg)
        .iter()
        .map(|(a, b)| b.0 - a.0)
        .sum();
    SimDuration(cfg.duration.0 - covered.min(cfg.duration.0))
}

/// Whether `t` falls inside one of the sorted, merged `windows`.
pub(crate) fn inside(windows: &[(SimTime, SimTime)], t: SimTime) -> bool {
    let k = windows.partition_point(|&(a, _)| a <= t);
    k > 0 && t < windows[k - 1].1
}

/// Runs the batch. `stop` ends it early (Ctrl-C); `progress` is told how many trials are done.
pub fn run_trials(
    cfg: &SimConfig,
    opts: TrialsOptions,
    stop: &AtomicBool,
    progress: &(dyn Fn(u64) + Sync),
) -> TrialsReport {
    run_trials_observed(cfg, opts, stop, progress, None)
}

/// [`run_trials`], showing each finished trial to `observe` (for per-trial exports).
pub fn run_trials_observed(
    cfg: &SimConfig,
    opts: TrialsOptions,
    stop: &AtomicBool,
    progress: &(dyn Fn(u64) + Sync),
    observe: TrialObserver,
) -> TrialsReport {
    let acc = run_range(
        cfg,
        opts.seed,
        0..opts.n,
        opts.jobs,
        stop,
        progress,
        observe,
    );
    report(cfg, &acc, opts.n, opts.seed)
}

/// Runs trials `range` of a batch (a shard of it, or all of it) and returns their accumulator,
/// showing each finished trial to `observe`. Trial `i` is the same whichever shard or thread
/// runs it, and accumulators merge exactly, so any split of a batch gives the same report as
/// the whole.
pub fn run_range(
    cfg: &SimConfig,
    seed: u64,
    range: Range<u64>,
    jobs: usize,
    stop: &AtomicBool,
    progress: &(dyn Fn(u64) + Sync),
    observe: TrialObserver,
) -> Accum {
    run_range_with(
        cfg,
        seed,
        range,
        jobs,
        stop,
        progress,
        observe,
        StartPhase::Uniform,
    )
}

/// [`run_range`], every prober's first probe placed by `start` (windowed trials start at
/// equilibrium: `super::windowed`).
#[allow(clippy::too_many_arguments)]
pub fn run_range_with(
    cfg: &SimConfig,
    seed: u64,
    range: Range<u64>,
    jobs: usize,
    stop: &AtomicBool,
    progress: &(dyn Fn(u64) + Sync),
    observe: TrialObserver,
    phase: StartPhase,
) -> Accum {
    /// Trials a worker claims at once: large enough to keep the shared counter cold.
    const CHUNK: u64 = 64;
    let next = AtomicU64::new(range.start);
    let done = AtomicU64::new(0);
    let total = Mutex::new(Accum::default());
    let jobs = jobs.max(1);
    let windows = crate::report::qos::member_windows(cfg);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                let mut acc = Accum::default();
                'claim: loop {
                    let start = next.fetch_add(CHUNK, Ordering::Relaxed);
                    if start >= range.end {
                        break;
                    }
                    let end = (start + CHUNK).min(range.end);
                    for i in start..end {
                        if stop.load(Ordering::Relaxed) {
                            break 'claim;
                        }
                        if !one_trial(cfg, seed, i, stop, &windows, &mut acc, observe, phase) {
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
    total.into_inner().unwrap_or_default()
}

/// The report of a batch of `n` trials from their accumulator (`acc.trials < n`: partial).
pub fn report(cfg: &SimConfig, acc: &Accum, n: u64, seed: u64) -> TrialsReport {
    let free_h = fault_free(cfg).as_secs_f64() / 3600.0 * acc.trials as f64;
    let detection = acc.detection.summary();
    TrialsReport {
        trials: acc.trials,
        trials_requested: n,
        partial: acc.trials < n,
        seed,
        detection_latency_s: detection.clone(),
        failover_latency_s: acc.failover.summary(),
        failback_latency_s: acc.failback.summary(),
        outage_latency_s: acc.outage.summary(),
        persisted_failback_latency_s: cfg
            .traffic
            .as_ref()
            .and_then(|t| t.persistence)
            .map(|_| acc.persisted_failback.summary()),
        false_failovers_per_hour: if free_h > 0.0 {
            acc.false_failovers as f64 / free_h
        } else {
            0.0
        },
        // No fault-free time at all: the rate is unknown, not infinite (JSON has no inf).
        false_failovers_per_hour_ci: (free_h > 0.0).then(|| {
            let (lo, hi) = super::rare::poisson_ci95(acc.false_failovers, free_h);
            [lo, hi]
        }),
        false_failovers: acc.false_failovers,
        fault_free_hours: free_h,
        missed_fault_rate: (acc.pairs > 0).then(|| acc.missed as f64 / acc.pairs as f64),
        missed_fault_rate_ci: super::ci::wilson95(acc.missed, acc.pairs),
        missed_faults: acc.missed,
        censored_faults: acc.censored,
        needless_failovers: acc.needless,
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
        qos: crate::report::qos::QosReport::new(cfg, &acc.qos, &detection),
        limit: acc.limit,
        method: None,
        exact: None,
    }
}
