//! Exact mode: the latency distributions of a noise-free scenario computed over every probe
//! phase instead of sampled (`trials --exact`, `tune --exact`; `docs/model.md`, "Exact mode").
//!
//! # Why it is exact
//!
//! On a noise-free probe path (fixed round trip, no loss, no random fault) the only random draw
//! of a run is the first-probe phase of each (LB node, member) prober: the huawei profile's
//! `Rules::first_probes` turns a uniform draw into `floor(delay * u) mod delay`, a phase uniform on the integer-ns grid
//! `[0, delay)` (to within 2^-53 of the generator's resolution). Everything after that is a
//! function of the phase: a probe is judged by the member's condition when it is sent, the
//! condition is a function of the clock, and each verdict comes a fixed time after its probe.
//!
//! # How
//!
//! For one LB node, [`node_outcomes`] runs the node's state machine (`model::LbNode`, the one
//! the engine drives) at a master phase `a` with a tiny event loop that mirrors the engine's
//! `(time, seq)` order, and notes, for every event of the master's stream (probe sent, verdict,
//! route update), the distance to the next *edge* after it: a fault's start or end, a flap's
//! phase change, or the end of the run. Shifting the phase by `δ` below the smallest such
//! distance shifts every master event by exactly `δ` and changes no comparison the model or the
//! measurement makes (the condition a probe meets, a verdict before or after a fault's end, an
//! event inside the run or past it). So on the whole piece `[a, a + slack)` every latency is
//! `L(a) + (φ - a)`: slope one. Walking the pieces from 0 to `delay` covers every phase; each
//! piece costs one run of the node, and there are a handful (a few per fault edge). The
//! measured figures come from `report::run::measure`, the function `trials` samples, applied to
//! the node's log, so both modes attribute, censor and count by the same rules.
//!
//! LB nodes are independent and identical, and `trials` pools their samples, so the pooled
//! distribution over N nodes is one node's, N times over. Per fault, the first and last node
//! to fail over are the order statistics of N independent draws: `1 - (1 - F)^N` and `F^N`
//! ([`FirstLast`]).
//!
//! The result is reported as `trials` would report it after one trial per phase of the grid
//! (`delay` in ns trials, every node at the same phase: the pooled figures only depend on each
//! node's own distribution): counts are exact integers, the percentiles follow
//! `experiment::stats` exactly (the sample at rank `ceil(q x count)`, then the histogram's
//! rounding to 3 significant digits and the clamp into `[min, max]`), so a sampled batch
//! converges to these figures as it grows.
//!
//! # What qualifies (a whitelist)
//!
//! [`why_not_exact`] names the first thing that makes a scenario random or that this module
//! does not derive; anything it does not know is refused, so features added later fall back to
//! sampling until they are derived here. Every field of `SimConfig` is named there: a new one is
//! a compile error until someone decides whether exact mode derives it.

use super::ci::Interval;
use super::stats::Summary;
use super::trials::{fault_free, visible_fault_windows, TrialsReport};
use crate::model::health::Health;
use crate::model::lb_node::{Action, LbNode, Timer};
use crate::model::probe::{ProbeKind, Reason, Verdict};
use crate::model::router::Role;
use crate::report::run::measure;
use crate::sim::config::{
    CheckConfig, Fault, FaultKind, ModelConfig, NetworkConfig, Rtt, SimConfig,
};
use crate::sim::engine::{node_config, RouteLog, RunLog, Transition};
use crate::sim::world::{self, Lost};
use crate::time::{SimDuration, SimTime};
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// How `trials` and `tune` get their figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// Run trials (the library's default, and `--sample`).
    #[default]
    Sample,
    /// Compute exactly, or refuse when the scenario is random (`--exact`).
    Exact,
    /// Exactly where the scenario qualifies and no per-trial output is asked for, else sample
    /// (the command line's default when `-n` is not given).
    Auto,
}

/// Most fault edges (starts, ends, flap phase changes) exact mode walks; a flap with a tiny
/// period over a long run has more, and is sampled instead.
pub const MAX_EDGES: usize = 100_000;

/// Most phase pieces one node may need before exact mode gives up (a safety net: real
/// scenarios need a few per edge a probe can cross).
pub const MAX_PIECES: u64 = 1_000_000;

/// Why a scenario cannot be computed exactly, or `None` when it can. The message names the
/// scenario key that makes it random or that exact mode does not derive.
pub fn why_not_exact(cfg: &SimConfig) -> Option<String> {
    // Every field named: a field added to SimConfig must be judged here before this compiles.
    let SimConfig {
        check,
        model,
        network,
        faults,
        duration,
        lb_nodes: _,
        members: _,
        traffic,
        clients_use_tls: _,
        limits: _,
        fault_paths,
        stalls,
        step_every_probe: _,
    } = cfg;
    let CheckConfig {
        kind,
        delay,
        timeout: _,
        rise: _,
        fall: _,
    } = check;
    let ModelConfig {
        probe_schedule,
        initial_state: _,
        all_down,
        failback,
        failback_sessions: _,
        route_update_delay: _,
        failback_hold_down: _,
        monitor_process,
        profile,
    } = model;
    // Exact mode derives the huawei profile's rules (one interval, streak counting, uniform
    // first probes); the other profiles' state-dependent intervals, jitter and counting are
    // sampled.
    if profile.name() != crate::model::profile::ProfileName::Huawei {
        return Some(format!(
            "[model] profile is {}: exact mode derives the huawei profile only",
            profile.name()
        ));
    }
    let NetworkConfig {
        rtt,
        loss,
        burst,
        icmp_ratelimit,
    } = network;
    use crate::model::health::ProbeSchedule;
    use crate::model::router::{AllDown, Failback};
    if !matches!(
        kind,
        ProbeKind::Tcp | ProbeKind::Http | ProbeKind::Https | ProbeKind::UdpConnect
    ) {
        return Some("the health check type is not derived by exact mode".into());
    }
    if !matches!(
        probe_schedule,
        ProbeSchedule::AfterCompletion | ProbeSchedule::FixedRate
    ) {
        return Some("[model] probe_schedule is not derived by exact mode".into());
    }
    if !matches!(all_down, AllDown::Drop | AllDown::Master) {
        return Some("[model] all_down is not derived by exact mode".into());
    }
    if !matches!(failback, Failback::Preemptive | Failback::Sticky) {
        return Some("[model] failback is not derived by exact mode".into());
    }
    if *monitor_process != crate::sim::config::MonitorProcess::Same {
        return Some("[model] monitor_process = \"separate\" is not derived by exact mode".into());
    }
    if burst.is_some() {
        return Some("[network.burst]: every probe on a bursty path is lost at random".into());
    }
    if icmp_ratelimit.is_some() {
        return Some("[network.icmp_ratelimit] is not derived by exact mode".into());
    }
    if !fault_paths.is_empty() {
        return Some("per-path faults (`[[faults]] lb_node`) are not derived by exact mode".into());
    }
    if !stalls.is_empty() {
        return Some("[[stalls]] are not derived by exact mode".into());
    }
    match rtt {
        Rtt::Fixed(_) => {}
        Rtt::LogNormal { .. } => {
            return Some(
                "[network] rtt is log-normal: every probe draws its round trip at random".into(),
            )
        }
    }
    if *loss != 0.0 {
        return Some(format!(
            "[network] loss is {loss}: every probe is lost at random"
        ));
    }
    if traffic.is_some() {
        return Some(
            "[traffic]: client arrivals, lifetimes and the counters trials reports are random"
                .into(),
        );
    }
    if delay.0 == 0 || duration.0 == 0 {
        return Some("a zero delay or duration has no probe phase to enumerate".into());
    }
    for (i, f) in faults.iter().enumerate() {
        if f.member != Role::Master {
            return Some(format!(
                "faults[{i}] is on the slave: its probe phase and the master's would interact \
                 (exact mode derives faults on the master)"
            ));
        }
        let ok = match f.kind {
            FaultKind::Crash
            | FaultKind::HostDown
            | FaultKind::Hang
            | FaultKind::HttpStatus { .. }
            | FaultKind::Slow { .. }
            | FaultKind::MonitorPortDown
            | FaultKind::TlsError
            | FaultKind::Flap { .. } => true,
            // Certain loss or none is deterministic; anything between draws each probe's fate.
            FaultKind::Loss { probability } => probability == 0.0 || probability >= 1.0,
            #[allow(unreachable_patterns)]
            _ => false,
        };
        if !ok {
            return Some(match f.kind {
                FaultKind::Loss { probability } => format!(
                    "faults[{i}] (loss, probability {probability}) loses each probe at random"
                ),
                _ => format!(
                    "faults[{i}] ({}) is not derived by exact mode",
                    f.kind.name()
                ),
            });
        }
    }
    edges(cfg).err()
}

/// The instants at which what a probe meets or what the measurement compares can change: every
/// fault's start and end, every flap phase change within the run, and one past the end of the
/// run (an event after the end is not processed). Sorted, without duplicates.
fn edges(cfg: &SimConfig) -> Result<Vec<u64>, String> {
    let end = cfg.duration.0;
    let mut e = vec![end.saturating_add(1)];
    for (i, f) in cfg.faults.iter().enumerate() {
        e.push(f.at.0);
        if let Some(u) = f.until {
            e.push(u.0);
        }
        if let FaultKind::Flap { period, down } = f.kind {
            let p = period.0.max(1);
            let d = world::flap_down_span(period, down).0;
            let stop = f.until.map_or(end, |u| u.0.min(end));
            let mut t = f.at.0;
            while t <= stop {
                e.push(t);
                e.push(t.saturating_add(d));
                if e.len() > MAX_EDGES {
                    return Err(format!(
                        "faults[{i}] (flap, period {period}) changes phase more than {MAX_EDGES} \
                         times in the run; exact mode walks every edge"
                    ));
                }
                t = t.saturating_add(p);
            }
        }
    }
    e.sort_unstable();
    e.dedup();
    Ok(e)
}

/// One run of `len` consecutive nanosecond values `start, start + 1, ...`, each `weight` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    start: u64,
    len: u64,
    weight: u64,
}

/// An exact distribution on the nanosecond grid: a union of runs of consecutive values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dist {
    runs: Vec<Run>,
}

impl Dist {
    fn add(&mut self, start: u64, len: u64, weight: u64) {
        if len == 0 || weight == 0 {
            return;
        }
        if let Some(last) = self.runs.last_mut() {
            if last.weight == weight && last.start + last.len == start {
                last.len += len;
                return;
            }
        }
        self.runs.push(Run { start, len, weight });
    }

    /// Values counted with their multiplicity.
    pub fn count(&self) -> u64 {
        self.runs.iter().map(|r| r.len * r.weight).sum()
    }

    pub fn min(&self) -> Option<u64> {
        self.runs.iter().map(|r| r.start).min()
    }

    pub fn max(&self) -> Option<u64> {
        self.runs.iter().map(|r| r.start + r.len - 1).max()
    }

    /// Sum of every value, exactly.
    fn sum(&self) -> u128 {
        self.runs
            .iter()
            .map(|r| {
                let (s, n) = (r.start as u128, r.len as u128);
                (n * s + n * (n - 1) / 2) * r.weight as u128
            })
            .sum()
    }

    /// How many values are at most `x`.
    pub fn count_le(&self, x: u64) -> u64 {
        self.runs
            .iter()
            .filter(|r| r.start <= x)
            .map(|r| (x - r.start + 1).min(r.len) * r.weight)
            .sum()
    }

    /// The `rank`-th smallest value (1-based), by bisection on the value.
    pub fn at_rank(&self, rank: u64) -> Option<u64> {
        let (mut lo, mut hi) = (self.min()?, self.max()?);
        if rank == 0 || rank > self.count() {
            return None;
        }
        // Runs in increasing, disjoint order (the usual case): walk them.
        if self
            .runs
            .windows(2)
            .all(|w| w[0].start + w[0].len <= w[1].start)
        {
            let mut left = rank;
            for r in &self.runs {
                let n = r.len * r.weight;
                if left <= n {
                    return Some(r.start + (left - 1) / r.weight);
                }
                left -= n;
            }
        }
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.count_le(mid) >= rank {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Some(lo)
    }

    /// The quantile `q` as `trials` reports it (`stats::LatencyStats::quantile_s`): the sample
    /// at rank `ceil(q x count)` (at least 1), in the histogram's bucket of 3 significant
    /// digits in microseconds, its top, clamped into the exact `[min, max]`; in seconds.
    pub fn quantile_s(&self, q: f64) -> Option<f64> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
        let x = self.at_rank(rank)?;
        Some(hdr_round(x).clamp(self.min()?, self.max()?) as f64 / 1e9)
    }

    /// The same distribution as increasing, disjoint runs (overlapping runs of the pieces
    /// summed), so that a rank is found by one walk.
    fn disjoint(&self) -> Dist {
        let mut edges: Vec<(u64, i128)> = Vec::with_capacity(self.runs.len() * 2);
        for r in &self.runs {
            edges.push((r.start, r.weight as i128));
            edges.push((r.start + r.len, -(r.weight as i128)));
        }
        edges.sort_unstable();
        let mut out = Dist::default();
        let (mut weight, mut from) = (0i128, 0u64);
        for (at, dw) in edges {
            if at > from && weight > 0 {
                out.add(from, at - from, weight as u64);
            }
            weight += dw;
            from = at;
        }
        out
    }

    /// What `trials` prints for this distribution; an exact figure has no sampling error, so
    /// each interval is the point itself.
    pub fn summary(&self) -> Summary {
        let disjoint = self.disjoint();
        let this = &disjoint;
        this.summary_of_disjoint()
    }

    fn summary_of_disjoint(&self) -> Summary {
        let count = self.count();
        let some = |v: Option<u64>| v.map(|ns| ns as f64 / 1e9);
        let [p50, p90, p99, p999] = [0.5, 0.9, 0.99, 0.999].map(|q| self.quantile_s(q));
        let point = |v: Option<f64>| -> Interval { [v, v] };
        Summary {
            count,
            min: some(self.min()),
            p50,
            p90,
            p99,
            p999,
            max: some(self.max()),
            mean: (count > 0).then(|| (self.sum() / count as u128) as f64 / 1e9),
            p50_ci: point(p50),
            p90_ci: point(p90),
            p99_ci: point(p99),
            p999_ci: point(p999),
        }
    }
}

/// The value `stats::LatencyStats` reports for a sample of `ns`: recorded in microseconds
/// (at least 1), reported as the top of its 3-significant-digit bucket, back in nanoseconds.
fn hdr_round(ns: u64) -> u64 {
    thread_local! {
        // Bucket bounds depend on the precision only, not on the values recorded.
        static H: hdrhistogram::Histogram<u64> =
            hdrhistogram::Histogram::new(3).expect("valid histogram precision");
    }
    H.with(|h| {
        h.highest_equivalent((ns / 1_000).max(1))
            .saturating_mul(1_000)
    })
}

/// The exact figures of a scenario, as `trials` accumulates them over one trial per phase.
#[derive(Debug, Clone, Default)]
pub struct Exact {
    /// Phases per prober: `delay` in nanoseconds; the "trials" of the enumeration.
    pub phases: u64,
    /// Pieces of the phase range with one shape of run each.
    pub pieces: u64,
    pub lb_nodes: u32,
    pub detection: Dist,
    pub failover: Dist,
    pub failback: Dist,
    pub outage: Dist,
    /// Per master fault (in scenario order, with its index): one node's failover latency.
    pub per_fault_failover: Vec<(u32, Dist)>,
    pub false_failovers: u64,
    pub missed: u64,
    pub censored: u64,
    pub needless: u64,
    pub pairs: u64,
}

/// The first and the last LB node to fail over for one fault, over independent phases.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FirstLast {
    pub fault: u32,
    /// Share of trials in which every node fails over for this fault.
    pub all_nodes_share: f64,
    pub first_node_s: OrderStat,
    pub last_node_s: OrderStat,
}

/// A few quantiles of an order statistic, in seconds (`null` where it does not exist).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderStat {
    pub min: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

/// What exact mode adds to a `trials` report (JSON `exact`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExactFacts {
    /// Phases per (LB node, member) prober: `delay` on the 1 ns grid.
    pub phases_per_prober: u64,
    /// Pieces of the phase range over which the run keeps one shape.
    pub pieces: u64,
    /// With more than one LB node: per master fault, the first and last node's failover.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overall: Vec<FirstLast>,
}

/// An event of the one-node loop.
#[derive(Debug, Clone, Copy)]
enum Ev {
    Send(Role),
    Verdict {
        role: Role,
        sent: SimTime,
        ok: bool,
        reason: Option<Reason>,
        status: Option<u16>,
    },
    Apply {
        timer: Timer,
        cause: u32,
    },
}

/// One node's run at given phases, and how far the master's phase can move with no change of
/// shape.
struct NodeRun {
    log: RunLog,
    /// The master's phase may grow by less than this with every master event shifting alike.
    slack: u64,
    /// The last instant a slave status change reached the data plane.
    slave_settled: Option<u64>,
}

/// The one-node event loop: the engine's rules (`sim::engine`) for one node without traffic,
/// in the engine's `(time, seq)` order.
struct Loop<'a> {
    cfg: &'a SimConfig,
    edges: &'a [u64],
    /// The faults of master and slave.
    faults: &'a [Vec<Fault>; 2],
    heap: BinaryHeap<Reverse<(u64, u64)>>,
    events: Vec<Ev>,
    node: LbNode,
    log: RunLog,
    slack: u64,
    pending_failures: u32,
    pending_updates: u32,
    /// Per member: no status change can happen any more (constant condition, steady status),
    /// so its probes are not followed (the slave only: nothing else depends on them).
    slave_done: bool,
    slave_settled: Option<u64>,
    after_completion: bool,
    /// Per member: the span `[from, until)` of its last condition and the verdict in it.
    cache: [Option<(u64, u64, SimDuration, Verdict)>; 2],
    /// The master's verdicts in flight: [failing, passing].
    inflight: [u32; 2],
}

impl Loop<'_> {
    fn push(&mut self, at: u64, ev: Ev) {
        let seq = self.events.len() as u64;
        self.events.push(ev);
        self.heap.push(Reverse((at, seq)));
        if Self::is_master(&ev) {
            self.note(at);
        }
    }

    fn is_master(ev: &Ev) -> bool {
        match *ev {
            Ev::Send(r) | Ev::Verdict { role: r, .. } => r == Role::Master,
            Ev::Apply { timer, .. } => match timer {
                Timer::ApplyHealth { role, .. } | Timer::DrainDeadline { role, .. } => {
                    role == Role::Master
                }
                // Only under failback = "hold_down", which `why_not_exact` refuses.
                Timer::FailbackHold { .. } => true,
                // envoy's outlier sweep: never under the huawei profile exact mode derives.
                Timer::OutlierSweep => false,
            },
        }
    }

    /// A master event at `at`: the phase may move less than the distance to the next edge.
    fn note(&mut self, at: u64) {
        let k = self.edges.partition_point(|&e| e <= at);
        if let Some(&e) = self.edges.get(k) {
            self.slack = self.slack.min(e - at);
        }
    }

    /// The verdict a probe of `role` sent at `at` gets, and until when every probe gets the same
    /// one (the member's condition span, cached as the engine caches it).
    fn judged(&mut self, at: u64, role: Role) -> (SimDuration, Verdict, u64) {
        let r = role.index();
        if let Some((from, until, after, v)) = self.cache[r] {
            if from <= at && at < until {
                return (after, v, until);
            }
        }
        let (cond, from, until) = world::condition_span(&self.faults[r], SimTime(at));
        let certain = cond.loss >= 1.0;
        let kind = self.cfg.check.kind;
        let lost = Lost {
            first: certain,
            udp_probe: kind == ProbeKind::UdpConnect && certain,
        };
        let Rtt::Fixed(rtt) = self.cfg.network.rtt else {
            unreachable!("why_not_exact admits fixed round trips only")
        };
        let (after, v) = world::judge(kind, &self.cfg.judging(), &cond, rtt, lost);
        self.cache[r] = Some((from.0, until.0, after, v));
        (after, v, until.0)
    }

    /// Where the master's next probe may go instead of `at` with nothing else changing: while
    /// every probe until the member's condition changes gets the verdict its status already
    /// reflects (passing while ONLINE, failing while OFFLINE), and no verdict of the other kind
    /// is in flight, no probe there changes a status, a route or a measurement, so whole probe
    /// cycles can be skipped, up to two cycles before the change. Each skipped event lies
    /// further from every edge than the events kept near the change, so the slack is unchanged.
    fn skip_steady(&mut self, at: u64, cycle_extra: bool) -> u64 {
        let (after, v, until) = self.judged(at, Role::Master);
        let status = self.node.status(Role::Master);
        let steady = if v.ok {
            status == Health::Online
        } else {
            status == Health::Offline
        };
        // In flight, by verdict: [failing, passing].
        if !steady || self.inflight[usize::from(!v.ok)] > 0 {
            return at;
        }
        let cycle = self.cfg.check.delay.0 + if cycle_extra { after.0 } else { 0 };
        let horizon = until.min(self.cfg.duration.0);
        if cycle == 0 || horizon <= at || horizon - at < 4 * cycle {
            return at;
        }
        at + ((horizon - at) / cycle - 2) * cycle
    }

    fn send(&mut self, at: u64, role: Role) {
        if role == Role::Slave && self.slave_done {
            return;
        }
        let at = if role == Role::Master && self.after_completion {
            self.skip_steady(at, true)
        } else {
            at
        };
        if role == Role::Master {
            // A probe is judged by the condition when it goes out: its send time counts too.
            self.note(at);
        }
        let (after, v, _) = self.judged(at, role);
        self.pending_failures += u32::from(!v.ok);
        if role == Role::Master {
            self.inflight[usize::from(v.ok)] += 1;
        }
        if role == Role::Slave && self.faults[1].is_empty() {
            // A slave without faults meets one condition for ever: once its status is what
            // every verdict says, nothing about it changes again.
            let steady = if v.ok {
                Health::Online
            } else {
                Health::Offline
            };
            if self.node.status(Role::Slave) == steady {
                self.slave_done = true;
            }
        }
        self.push(
            at + after.0,
            Ev::Verdict {
                role,
                sent: SimTime(at),
                ok: v.ok,
                reason: v.reason,
                status: v.status,
            },
        );
    }

    fn actions(&mut self, now: u64, cause: u32) {
        while let Some(a) = self.node.poll_action() {
            match a {
                Action::SetTimer { at, timer } => {
                    if let Timer::ApplyHealth { .. } = timer {
                        self.pending_updates += 1;
                    }
                    self.push(at.0, Ev::Apply { timer, cause });
                }
                Action::RouteChanged { change, failback } => self.log.routes.push(RouteLog {
                    at: SimTime(now),
                    lb_node: 0,
                    from: change.from,
                    to: change.to,
                    failback,
                    cause: Some(cause),
                }),
                // No traffic: drains start and end on no connection; no passive status change
                // (envoy's) under the huawei profile.
                Action::DrainStarted { .. }
                | Action::DrainCancelled { .. }
                | Action::DrainEnded { .. }
                | Action::Closed { .. }
                | Action::StatusChanged { .. } => {}
            }
        }
    }

    fn run(mut self, phases: [u64; 2]) -> NodeRun {
        let end = self.cfg.duration.0;
        for role in Role::BOTH {
            self.push(phases[role.index()], Ev::Send(role));
        }
        // After the last fault, once everything is ONLINE with nothing in flight, every probe
        // succeeds and nothing changes (the engine's `quiet_from`).
        let quiet =
            crate::sim::engine::quiet_from(self.cfg, self.cfg.judging().connect).map(|t| t.0);
        while let Some(Reverse((now, seq))) = self.heap.pop() {
            if now > end {
                break;
            }
            self.log.events += 1;
            match self.events[seq as usize] {
                Ev::Send(role) => {
                    self.send(now, role);
                    if let Some(next) = self.node.handle_probe_sent(SimTime(now), role) {
                        if !(role == Role::Slave && self.slave_done) {
                            let next = if role == Role::Master {
                                self.skip_steady(next.0, false)
                            } else {
                                next.0
                            };
                            self.push(next, Ev::Send(role));
                        }
                    }
                }
                Ev::Verdict {
                    role,
                    sent,
                    ok,
                    reason,
                    status,
                } => {
                    self.pending_failures -= u32::from(!ok);
                    if role == Role::Master {
                        self.inflight[usize::from(ok)] -= 1;
                    }
                    // The huawei profile draws no jitter (why_not_exact admits no other).
                    let effect = self.node.handle_verdict(SimTime(now), role, ok, 0.0);
                    if let Some(next) = effect.next_probe_at() {
                        self.send(next.0, role);
                    }
                    if let Some(health) = effect.transition {
                        let cause = self.log.transitions.len() as u32;
                        self.log.transitions.push(Transition {
                            at: SimTime(now),
                            lb_node: 0,
                            member: role,
                            to: health,
                            reason,
                            status,
                            probe_sent_at: sent,
                            stall: None,
                        });
                        self.actions(now, cause);
                    }
                }
                Ev::Apply { timer, cause } => {
                    if let Timer::ApplyHealth { role, .. } = timer {
                        self.pending_updates -= 1;
                        if role == Role::Slave {
                            self.slave_settled = Some(now);
                        }
                    }
                    self.node.handle_timer(SimTime(now), timer);
                    self.actions(now, cause);
                }
            }
            if quiet.is_some_and(|q| now >= q)
                && self.pending_failures == 0
                && self.pending_updates == 0
                && Role::BOTH
                    .iter()
                    .all(|&r| self.node.status(r) == Health::Online)
            {
                break;
            }
        }
        self.log.end = SimTime(end);
        NodeRun {
            log: self.log,
            slack: self.slack,
            slave_settled: self.slave_settled,
        }
    }
}

/// What every run of one scenario's node shares.
struct Prepared {
    edges: Vec<u64>,
    faults: [Vec<Fault>; 2],
    windows: Vec<(SimTime, SimTime)>,
}

impl Prepared {
    fn new(cfg: &SimConfig) -> Result<Prepared, String> {
        Ok(Prepared {
            edges: edges(cfg)?,
            faults: Role::BOTH.map(|r| {
                cfg.faults
                    .iter()
                    .filter(|f| f.member == r)
                    .copied()
                    .collect()
            }),
            windows: visible_fault_windows(cfg),
        })
    }
}

/// Runs one LB node with the master's first probe at `master` and the slave's at `slave`.
fn run_node(cfg: &SimConfig, prep: &Prepared, master: u64, slave: u64) -> NodeRun {
    Loop {
        cfg,
        edges: &prep.edges,
        faults: &prep.faults,
        heap: BinaryHeap::with_capacity(16),
        events: Vec::with_capacity(64),
        node: LbNode::new(node_config(cfg)),
        log: RunLog::default(),
        slack: u64::MAX,
        pending_failures: 0,
        pending_updates: 0,
        slave_done: false,
        slave_settled: None,
        after_completion: cfg.model.probe_schedule
            == crate::model::health::ProbeSchedule::AfterCompletion,
        cache: [None; 2],
        inflight: [0; 2],
    }
    .run([master, slave])
}

/// What one node measured at one phase, in the integer time of `report::run::measure`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeOutcome {
    /// (fault, latency ns) per failover.
    pub detection: Vec<(u32, u64)>,
    pub failover: Vec<(u32, u64)>,
    pub failback: Vec<u64>,
    pub outage: Vec<u64>,
    pub false_failovers: u64,
    pub missed: u64,
    pub censored: u64,
    pub needless: u64,
    pub pairs: u64,
}

/// The outcome of one node whose master's first probe goes out at `phase` (ns), by the rules
/// of `trials` (`experiment::trials`): the same measurement, the same false-failover window.
/// `cfg` must have one LB node and pass [`why_not_exact`].
pub fn node_outcome(cfg: &SimConfig, phase: u64) -> Result<(NodeOutcome, u64), String> {
    let prep = Prepared::new(cfg)?;
    let r = run_node(cfg, &prep, phase, 0);
    Ok((outcome_of(cfg, &r.log, &prep.windows), r.slack))
}

fn outcome_of(cfg: &SimConfig, log: &RunLog, windows: &[(SimTime, SimTime)]) -> NodeOutcome {
    let m = measure(cfg, log);
    let mut o = NodeOutcome::default();
    for f in &m.failovers {
        let start = cfg.faults[f.detection.fault as usize].at;
        o.detection
            .push((f.detection.fault, f.detection.detected.since(start).0));
        if let Some(sw) = f.switched {
            o.failover.push((f.detection.fault, sw.since(start).0));
        }
        o.needless += u64::from(f.needless.is_some());
    }
    for x in &m.outages {
        let start = cfg.faults[x.detection.fault as usize].at;
        o.outage.push(x.at.since(start).0);
    }
    for b in &m.failbacks {
        o.failback.push(b.switched_back.since(b.healthy).0);
    }
    o.false_failovers = m
        .false_failovers
        .iter()
        .filter(|x| !super::trials::inside(windows, x.at))
        .count() as u64;
    o.missed = m.missed.len() as u64;
    o.censored = m.censored.len() as u64;
    o.pairs = m.fault_node_pairs;
    o
}

/// Computes the exact distributions of `cfg`, or says why it cannot (see [`why_not_exact`]).
pub fn compute(cfg: &SimConfig) -> Result<Exact, String> {
    if let Some(why) = why_not_exact(cfg) {
        return Err(why);
    }
    let mut one = cfg.clone();
    one.lb_nodes = 1;
    let prep = Prepared::new(&one)?;
    let d = cfg.check.delay.0;
    let nodes = cfg.lb_nodes.max(1);
    let w = nodes as u64;
    let first_fault = cfg.faults.iter().map(|f| f.at.0).min();
    let mut x = Exact {
        phases: d,
        lb_nodes: nodes,
        ..Exact::default()
    };
    let mut per_fault: Vec<(u32, Dist)> = Vec::new();
    let mut a = 0u64;
    while a < d {
        let r = run_node(&one, &prep, a, 0);
        if x.pieces == 0 {
            // The slave's phase is held at 0: that is exact only if every slave status change
            // (initial_state = "initial", or a round trip beyond the timeout) is over, for
            // every slave phase, before the first fault.
            if let (Some(s), Some(f)) = (r.slave_settled, first_fault) {
                if s.saturating_add(d) > f {
                    return Err(format!(
                        "the slave's status still changes at {} (by its probe phase) when the \
                         first fault starts at {}: the two phases interact",
                        SimTime(s),
                        SimTime(f)
                    ));
                }
            }
        }
        x.pieces += 1;
        if x.pieces > MAX_PIECES {
            return Err(format!(
                "the run changes shape more than {MAX_PIECES} times over the probe phase"
            ));
        }
        let len = r.slack.max(1).min(d - a);
        let o = outcome_of(&one, &r.log, &prep.windows);
        for &(_, l) in &o.detection {
            x.detection.add(l, len, w);
        }
        for &(fault, l) in &o.failover {
            x.failover.add(l, len, w);
            match per_fault.iter_mut().find(|(f, _)| *f == fault) {
                Some((_, dist)) => dist.add(l, len, 1),
                None => {
                    let mut dist = Dist::default();
                    dist.add(l, len, 1);
                    per_fault.push((fault, dist));
                }
            }
        }
        for &l in &o.failback {
            x.failback.add(l, len, w);
        }
        for &l in &o.outage {
            x.outage.add(l, len, w);
        }
        x.false_failovers += o.false_failovers * len * w;
        x.missed += o.missed * len * w;
        x.censored += o.censored * len * w;
        x.needless += o.needless * len * w;
        x.pairs += o.pairs * len * w;
        a += len;
    }
    per_fault.sort_by_key(|(f, _)| *f);
    x.per_fault_failover = per_fault;
    Ok(x)
}

impl Exact {
    /// Per master fault, the first and last of `lb_nodes` independent nodes to fail over
    /// (none for one node).
    pub fn first_last(&self) -> Vec<FirstLast> {
        if self.lb_nodes <= 1 {
            return Vec::new();
        }
        let n = self.lb_nodes as i32;
        let total = self.phases as f64;
        self.per_fault_failover
            .iter()
            .map(|(fault, dist)| {
                // F(x): a node has failed over by x; a node that never does never counts.
                let cdf = |x: u64| dist.count_le(x) as f64 / total;
                let first = |p: f64| 1.0 - (1.0 - p).powi(n);
                let last = |p: f64| p.powi(n);
                let stat = |g: &dyn Fn(f64) -> f64| {
                    // The smallest x with g(F(x)) >= target, if the order statistic reaches it.
                    let q = |target: f64| -> Option<f64> {
                        let (mut lo, mut hi) = (dist.min()?, dist.max()?);
                        if g(cdf(hi)) < target {
                            return None;
                        }
                        while lo < hi {
                            let mid = lo + (hi - lo) / 2;
                            if g(cdf(mid)) >= target {
                                hi = mid;
                            } else {
                                lo = mid + 1;
                            }
                        }
                        Some(lo as f64 / 1e9)
                    };
                    OrderStat {
                        min: dist.min().map(|v| v as f64 / 1e9),
                        p50: q(0.5),
                        p90: q(0.9),
                        p99: q(0.99),
                        // Reached for sure only if every node always fails over.
                        max: dist
                            .max()
                            .filter(|_| dist.count() == self.phases)
                            .map(|v| v as f64 / 1e9),
                    }
                };
                FirstLast {
                    fault: *fault,
                    all_nodes_share: last(dist.count() as f64 / total),
                    first_node_s: stat(&first),
                    last_node_s: stat(&last),
                }
            })
            .collect()
    }

    /// The report `trials` would print after one trial per phase (every node at that phase).
    pub fn report(&self, cfg: &SimConfig, seed: u64) -> TrialsReport {
        let trials = self.phases;
        let free_h = fault_free(cfg).as_secs_f64() / 3600.0 * trials as f64;
        let rate = if free_h > 0.0 {
            self.false_failovers as f64 / free_h
        } else {
            0.0
        };
        let missed_rate = (self.pairs > 0).then(|| self.missed as f64 / self.pairs as f64);
        let detection = self.detection.summary();
        TrialsReport {
            trials,
            trials_requested: trials,
            partial: false,
            seed,
            detection_latency_s: detection.clone(),
            failover_latency_s: self.failover.summary(),
            failback_latency_s: self.failback.summary(),
            outage_latency_s: self.outage.summary(),
            persisted_failback_latency_s: None,
            false_failovers_per_hour: rate,
            false_failovers_per_hour_ci: (free_h > 0.0).then_some([rate, rate]),
            false_failovers: self.false_failovers,
            fault_free_hours: free_h,
            missed_fault_rate: missed_rate,
            missed_fault_rate_ci: missed_rate.map(|r| [r, r]),
            missed_faults: self.missed,
            censored_faults: self.censored,
            needless_failovers: self.needless,
            fault_node_pairs: self.pairs,
            events: 0,
            traffic: None,
            // Exact mode derives the latencies only: the failure detector's mistakes are left to
            // the closed forms (the simulated side is n/a; on a noise-free path there are none).
            qos: crate::report::qos::QosReport::new(
                cfg,
                &crate::report::qos::QosTotals::default(),
                &detection,
            ),
            limit: None,
            method: Some("exact"),
            exact: Some(ExactFacts {
                phases_per_prober: self.phases,
                pieces: self.pieces,
                overall: self.first_last(),
            }),
        }
    }
}

/// Points an exact sweep computes at once, split over the worker threads.
pub const TUNE_CHUNK: usize = 4096;

/// The exact report of each scenario (`tune --exact`'s points), computed on `jobs` threads; in
/// the order given, each an error when exact mode cannot compute it.
pub fn reports(cfgs: &[SimConfig], seed: u64, jobs: usize) -> Vec<Result<TrialsReport, String>> {
    let jobs = jobs.clamp(1, cfgs.len().max(1));
    let per = cfgs.len().div_ceil(jobs).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = cfgs
            .chunks(per)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|c| compute(c).map(|x| x.report(c, seed)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            // A worker that panicked re-raises its panic here, as `scope` would.
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// The phase grid's size in a readable form, e.g. `5000000000 phases (delay 5s on the 1 ns grid)`.
pub fn describe(phases: u64) -> String {
    format!(
        "{phases} phases per prober (delay {} on the 1 ns grid)",
        SimDuration(phases)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::config::CheckConfig;

    fn cfg(kind: ProbeKind, delay_ns: u64, fault: FaultKind) -> SimConfig {
        let mut c = SimConfig::with_check(CheckConfig {
            kind,
            delay: SimDuration(delay_ns),
            timeout: SimDuration(delay_ns * 3 / 5),
            rise: 3,
            fall: 3,
        });
        c.network.rtt = Rtt::Fixed(SimDuration(delay_ns / 50 + 1));
        c.duration = SimDuration(delay_ns * 200);
        c.faults.push(Fault {
            member: Role::Master,
            kind: fault,
            at: SimTime(delay_ns * 20 + 7),
            until: Some(SimTime(delay_ns * 60 + 3)),
        });
        c
    }

    /// Every phase of a small grid, one by one, against the pieces.
    fn enumerate(c: &SimConfig) -> Exact {
        let prep = Prepared::new(c).unwrap();
        let mut x = Exact {
            phases: c.check.delay.0,
            lb_nodes: 1,
            ..Exact::default()
        };
        for p in 0..c.check.delay.0 {
            let r = run_node(c, &prep, p, 0);
            let o = outcome_of(c, &r.log, &prep.windows);
            for &(_, l) in &o.detection {
                x.detection.add(l, 1, 1);
            }
            for &(_, l) in &o.failover {
                x.failover.add(l, 1, 1);
            }
            for &l in &o.failback {
                x.failback.add(l, 1, 1);
            }
            x.missed += o.missed;
            x.pairs += o.pairs;
        }
        x
    }

    fn same(a: &Dist, b: &Dist, what: &str) {
        assert_eq!(a.count(), b.count(), "{what}");
        assert_eq!(a.sum(), b.sum(), "{what}");
        let (lo, hi) = (a.min().unwrap_or(0), a.max().unwrap_or(0));
        for v in lo..=hi {
            assert_eq!(a.count_le(v), b.count_le(v), "{what} at {v}");
        }
    }

    #[test]
    fn pieces_equal_enumeration_over_every_phase_of_a_small_grid() {
        use crate::model::health::ProbeSchedule;
        let kinds = [
            FaultKind::Crash,
            FaultKind::HostDown,
            FaultKind::Hang,
            FaultKind::MonitorPortDown,
            FaultKind::Flap {
                period: SimDuration(7_000),
                down: 0.4,
            },
        ];
        for check in [ProbeKind::Tcp, ProbeKind::Http, ProbeKind::UdpConnect] {
            for kind in kinds {
                for schedule in [ProbeSchedule::AfterCompletion, ProbeSchedule::FixedRate] {
                    let mut c = cfg(check, 1_000, kind);
                    c.model.probe_schedule = schedule;
                    c.model.route_update_delay = SimDuration(130);
                    let x = compute(&c).unwrap();
                    let e = enumerate(&c);
                    let what = format!("{check:?} {} {schedule:?}", kind.name());
                    same(&x.detection, &e.detection, &format!("{what} detection"));
                    same(&x.failover, &e.failover, &format!("{what} failover"));
                    same(&x.failback, &e.failback, &format!("{what} failback"));
                    assert_eq!((x.missed, x.pairs), (e.missed, e.pairs), "{what}");
                    assert!(x.pieces < 200, "{what}: {} pieces", x.pieces);
                }
            }
        }
    }

    #[test]
    fn quantiles_follow_the_histogram_convention() {
        let mut d = Dist::default();
        d.add(10_000_000_000, 5_000_000_000, 1);
        // 12.5 s exactly is the median sample; the histogram reports its bucket's top.
        let p50 = d.quantile_s(0.5).unwrap();
        assert!((12.5..12.52).contains(&p50), "{p50}");
        let mut s = super::super::stats::LatencyStats::default();
        s.record_ns(12_500_000_000);
        s.record_ns(20_000_000_000);
        assert_eq!(
            s.quantile_s(0.5),
            Some(hdr_round(12_500_000_000) as f64 / 1e9)
        );
        assert_eq!(d.at_rank(1), Some(10_000_000_000));
        assert_eq!(d.at_rank(5_000_000_000), Some(14_999_999_999));
        assert_eq!(d.summary().mean, Some(12.499_999_999));
    }

    #[test]
    fn overlapping_runs_keep_their_distribution_when_made_disjoint() {
        let mut d = Dist::default();
        d.add(100, 50, 2);
        d.add(120, 10, 3);
        d.add(90, 5, 1);
        d.add(149, 30, 1);
        let n = d.disjoint();
        assert!(n
            .runs
            .windows(2)
            .all(|w| w[0].start + w[0].len <= w[1].start));
        assert_eq!((n.count(), n.sum()), (d.count(), d.sum()));
        for v in 80..200 {
            assert_eq!(n.count_le(v), d.count_le(v), "{v}");
        }
        for rank in 1..=d.count() {
            assert_eq!(n.at_rank(rank), d.at_rank(rank), "{rank}");
        }
    }

    #[test]
    fn random_scenarios_are_refused_with_the_reason() {
        let mut c = cfg(ProbeKind::Tcp, 1_000, FaultKind::Crash);
        assert!(why_not_exact(&c).is_none());
        c.network.loss = 0.01;
        assert!(why_not_exact(&c).unwrap().contains("[network] loss"));
        let mut c = cfg(ProbeKind::Tcp, 1_000, FaultKind::Loss { probability: 0.5 });
        assert!(why_not_exact(&c).unwrap().contains("faults[0] (loss"));
        c.faults[0].kind = FaultKind::Loss { probability: 1.0 };
        assert!(why_not_exact(&c).is_none());
        c.faults[0].member = Role::Slave;
        assert!(why_not_exact(&c).unwrap().contains("slave"));
    }
}
