//! The report of one run: failovers, outages, failbacks, false, missed, censored and needless
//! failovers, and what clients saw (`docs/metrics.md` defines each figure).
//!
//! Computed after the run from the engine's log, so the hot loop only records status and route
//! changes. [`measure`] keeps integer time ([`SimTime`]) and is what `trials` samples; [`analyse`]
//! turns it into the seconds of the report.
//!
//! Attribution is by cause. A member's OFFLINE verdict belongs to a fault only when that fault was
//! active on the member when the *deciding probe was sent* (the engine judges probes by the
//! condition at send time) and the verdict's reason is one the fault produces on this check type
//! (`sim::world::reason_of`); among several such faults, the earliest started. An OFFLINE verdict
//! on the master that no fault explains is a false failover (noise), and a fault it coincides
//! with stays missed.
//!
//! The faults real networks have:
//! - a **per-path fault** is a fault only for the LB nodes on its path: a node off the path can
//!   neither detect it nor miss it (it forms no (fault, node) pair, and no verdict of that node
//!   is attributed to it), and its clients' failures are not charged to it;
//! - under `monitor_process = "separate"` a fault of the service process never reaches the
//!   check: it is attributed nothing, and a master fault of that kind is a missed fault with that
//!   reason ([`MissedFault::why`]);
//! - an OFFLINE verdict whose deciding probe an **LB-node stall** turned into a timeout
//!   (`Transition::stall`) is the stall's doing, neither a member fault's detection nor a false
//!   failover: it is reported apart ([`StallEvent`]), with where the node's traffic went.
//!
//! Cost: one pass over the log to index it by node, a sort of the verdicts to attribute (by probe
//! time) and a sweep over the faults; then per (fault, node) pair a few binary searches. So
//! `O((F + T) log (F + T) + F x N log T)` for F faults, T logged changes and N nodes, where F x N
//! is the size of the answer (a failover or a missed fault per pair).

use crate::model::health::Health;
use crate::model::probe::{ProbeKind, Reason};
use crate::model::router::{Role, Target};
use crate::sim::config::{Fault, FaultKind, Rtt, SimConfig};
use crate::sim::engine::{
    DrainRecord, FailureSpan, RunLog, Stopped, TrafficCounters, Transition, Unavailability,
};
use crate::sim::world;
use crate::time::{SimDuration, SimTime};
use serde::Serialize;
use std::collections::{BTreeSet, BinaryHeap, HashMap};

// ---------------------------------------------------------------------------------------------
// Integer-time measurements
// ---------------------------------------------------------------------------------------------

/// A fault detected by one node: the first OFFLINE verdict attributed to it there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub lb_node: u32,
    /// Index of the fault in the scenario.
    pub fault: u32,
    pub detected: SimTime,
    pub reason: Option<Reason>,
    /// Index of the deciding status change in the log.
    pub transition: u32,
}

/// New connections reached the slave because of a fault on the master.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FailoverM {
    pub detection: Detection,
    /// When the node's new connections went to the slave; `None` when they were there already
    /// (e.g. still on the slave after a sticky failback).
    pub switched: Option<SimTime>,
    /// The client rule that leaves this failover's clients unharmed, if one does.
    pub needless: Option<&'static str>,
}

/// How an outage sends new connections nowhere useful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutageKind {
    /// Both members OFFLINE, `all_down = "drop"`: new connections are dropped.
    Drop,
    /// Both members OFFLINE, `all_down = "master"`: new connections go to a master the node
    /// judged OFFLINE.
    FailOpen,
}

/// A fault's detection left a node with no member ONLINE to send to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutageM {
    pub detection: Detection,
    pub member: Role,
    /// When the node's data plane acted on it.
    pub at: SimTime,
    pub kind: OutageKind,
}

/// New connections went back to the master after a failover.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FailbackM {
    pub lb_node: u32,
    pub fault: u32,
    /// When the master became healthy again by the check's own rules: the end of the last
    /// overlapping fault the check can see (the start of a flap's up phase).
    pub healthy: SimTime,
    pub switched_back: SimTime,
    /// With persistence: the last new connection still sent to the slave after the failback,
    /// and how many were.
    pub persisted_last: Option<SimTime>,
    pub persisted_connections: u64,
    /// Whether every persisted client had returned by the node's next route change (or the end
    /// of the run): the last one's persistence entry had expired by then.
    pub persisted_returned: bool,
}

/// A master OFFLINE verdict no fault explains.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FalseM {
    pub lb_node: u32,
    pub at: SimTime,
    pub reason: Option<Reason>,
}

/// A (fault, node) pair without a failover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairM {
    pub lb_node: u32,
    pub fault: u32,
}

/// A member OFFLINE verdict caused by an LB-node stall.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StallM {
    pub lb_node: u32,
    pub member: Role,
    /// Index of the stall in `SimConfig::stalls`.
    pub stall: u32,
    pub at: SimTime,
    /// Where the node's new connections went because of it (none: no route change).
    pub route_to: Option<Target>,
}

/// The failover metrics of one run, in integer time: what both `run` and `trials` report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    pub failovers: Vec<FailoverM>,
    pub outages: Vec<OutageM>,
    pub failbacks: Vec<FailbackM>,
    pub false_failovers: Vec<FalseM>,
    /// Faults on the master whose detection window fit in the run and that never led a node to
    /// act on them.
    pub missed: Vec<PairM>,
    /// Faults on the master not detected whose detection window did not fit before the end.
    pub censored: Vec<PairM>,
    /// (master fault, LB node) pairs where the master was ONLINE when the fault began and the
    /// pair is not censored: the denominator of the missed-fault rate.
    pub fault_node_pairs: u64,
    /// Indices (into `log.transitions`, ascending) of the OFFLINE verdicts of either member that
    /// no fault explains: the failure-detector mistakes of [`super::qos`] come from these.
    pub unexplained: Vec<u32>,
    /// OFFLINE verdicts caused by LB-node stalls.
    pub stalls: Vec<StallM>,
}

/// The longest a check can take to detect a fault it sees: a probe in flight when the fault
/// begins (`timeout`), then `max_retries_down` probes of up to `delay + timeout` each. A fault
/// undetected whose start is later than this before the end of the run is censored.
///
/// Under a profile other than huawei, `timeout` is the profile's longest probe
/// (`Judging::longest`), `delay` its longest interval with jitter, and `max_retries_down` its
/// fall; under huawei these are the pool's own values.
pub fn detection_window(cfg: &SimConfig) -> SimDuration {
    let rules = cfg.rules();
    let (t, d) = (rules.judging.longest(), rules.longest_interval());
    SimDuration(t.0.saturating_add((rules.fall as u64).saturating_mul(d.0.saturating_add(t.0))))
}

/// The typical probe round trip: the fixed one, or the log-normal's median.
pub fn typical_rtt(cfg: &SimConfig) -> SimDuration {
    match cfg.network.rtt {
        Rtt::Fixed(d) => d,
        Rtt::LogNormal { median, .. } => median,
    }
}

/// The client rule that leaves a failover caused by `kind` harmless to clients, if any.
pub fn needless_rule(cfg: &SimConfig, kind: &FaultKind) -> Option<&'static str> {
    let connect_timeout = cfg
        .traffic
        .as_ref()
        .map_or(SimDuration::from_secs(3), |t| t.connect_timeout);
    match *kind {
        FaultKind::MonitorPortDown => {
            Some("monitor_port_down: only the check port fails; clients reach the service port")
        }
        FaultKind::HttpStatus { status, .. }
            if !crate::sim::engine::status_fails_requests(status) =>
        {
            Some("http_status below 400: clients' requests still succeed")
        }
        FaultKind::TlsError if !cfg.clients_use_tls => {
            Some("tls_error on a pool whose clients do not speak TLS: clients are unaffected")
        }
        FaultKind::Slow { latency } if latency < connect_timeout => {
            Some("slow below the clients' connect_timeout: clients are slowed, not failed")
        }
        _ => None,
    }
}

/// The fault sets by the reason they produce on this check, for attribution.
struct Attributor<'a> {
    cfg: &'a SimConfig,
    check: ProbeKind,
    rtt: SimDuration,
    /// The profile's probe-phase bounds (which faults a check sees depends on them).
    judging: crate::model::profile::Judging,
}

impl Attributor<'_> {
    fn reason(&self, f: &Fault) -> Option<Reason> {
        if !crate::sim::paths::check_meets(self.cfg, &f.kind) {
            return None;
        }
        world::reason_of(&f.kind, self.check, &self.judging, self.rtt)
    }

    /// Attributes each OFFLINE status change of `member` (indices into `log.transitions`) to the
    /// fault that explains it, by a sweep over probe-send times: `out[i]` is the fault of the
    /// i-th index, if any.
    fn attribute(&self, log: &RunLog, member: Role, offline: &[u32]) -> Vec<Option<u32>> {
        let faults = &self.cfg.faults;
        let end = SimTime(u64::MAX);
        let mut by_start: Vec<u32> = (0..faults.len() as u32)
            .filter(|&i| faults[i as usize].member == member)
            .filter(|&i| self.reason(&faults[i as usize]).is_some())
            .collect();
        by_start.sort_by_key(|&i| (faults[i as usize].at, i));
        let mut queries: Vec<(SimTime, usize)> = offline
            .iter()
            .enumerate()
            .map(|(k, &t)| (log.transitions[t as usize].probe_sent_at, k))
            .collect();
        queries.sort();
        // Active faults per reason, ordered by (start, index); ends in a min-heap.
        let mut active: HashMap<Reason, BTreeSet<(SimTime, u32)>> = HashMap::new();
        let mut ends: BinaryHeap<std::cmp::Reverse<(SimTime, u32)>> = BinaryHeap::new();
        let mut next = 0;
        let mut out = vec![None; offline.len()];
        for (s, k) in queries {
            while next < by_start.len() && faults[by_start[next] as usize].at <= s {
                let i = by_start[next];
                let f = &faults[i as usize];
                if let Some(r) = self.reason(f) {
                    active.entry(r).or_default().insert((f.at, i));
                    ends.push(std::cmp::Reverse((f.until.unwrap_or(end), i)));
                }
                next += 1;
            }
            while let Some(&std::cmp::Reverse((until, i))) = ends.peek() {
                if until > s {
                    break;
                }
                ends.pop();
                let f = &faults[i as usize];
                if let Some(r) = self.reason(f) {
                    if let Some(set) = active.get_mut(&r) {
                        set.remove(&(f.at, i));
                    }
                }
            }
            let x = &log.transitions[offline[k] as usize];
            let Some(set) = x.reason.and_then(|r| active.get(&r)) else {
                continue;
            };
            out[k] = set
                .iter()
                .find(|&&(_, i)| {
                    let f = &faults[i as usize];
                    self.cfg.fault_visible(i, x.lb_node)
                        && world::seen_failing(
                            std::slice::from_ref(f),
                            s,
                            self.check,
                            &self.judging,
                            self.rtt,
                        )
                })
                .map(|&(_, i)| i);
        }
        out
    }
}

/// The log indexed by node.
struct NodeIndex {
    /// Per node: indices of the master's status changes, in time order.
    master: Vec<Vec<u32>>,
    /// Per node: (time, target) after each route change, in time order.
    routes: Vec<Vec<(SimTime, Target)>>,
    /// Status change index -> the route change it caused.
    route_of: HashMap<u32, usize>,
}

impl NodeIndex {
    fn new(cfg: &SimConfig, log: &RunLog) -> Self {
        let n = cfg.lb_nodes.max(1) as usize;
        let mut master = vec![Vec::new(); n];
        for (i, x) in log.transitions.iter().enumerate() {
            if x.member == Role::Master {
                master[x.lb_node as usize].push(i as u32);
            }
        }
        let mut routes = vec![Vec::new(); n];
        let mut route_of = HashMap::new();
        for (i, r) in log.routes.iter().enumerate() {
            routes[r.lb_node as usize].push((r.at, r.to));
            if let Some(c) = r.cause {
                route_of.insert(c, i);
            }
        }
        NodeIndex {
            master,
            routes,
            route_of,
        }
    }

    /// The master's status on `node` just before `t`.
    fn master_before(&self, log: &RunLog, node: u32, t: SimTime, initial: Health) -> Health {
        let idx = &self.master[node as usize];
        let k = idx.partition_point(|&i| log.transitions[i as usize].at < t);
        if k == 0 {
            initial
        } else {
            log.transitions[idx[k - 1] as usize].to
        }
    }

    /// Where `node` sent new connections at `t` (after the changes at `t`).
    fn target_at(&self, node: u32, t: SimTime, initial: Target) -> Target {
        let r = &self.routes[node as usize];
        let k = r.partition_point(|&(at, _)| at <= t);
        if k == 0 {
            initial
        } else {
            r[k - 1].1
        }
    }

    /// The master's first status change on `node` after the change with index `after`.
    fn next_master_change(&self, node: u32, after: u32) -> Option<u32> {
        let idx = &self.master[node as usize];
        let k = idx.partition_point(|&i| i <= after);
        idx.get(k).copied()
    }
}

pub(crate) fn initial_health(cfg: &SimConfig) -> Health {
    cfg.rules().initial
}

/// The instant a run's log covers up to: where it stopped, else the end of the run.
pub(crate) fn covered_end(cfg: &SimConfig, log: &RunLog) -> SimTime {
    if log.end == SimTime::ZERO {
        SimTime::ZERO + cfg.duration
    } else {
        log.end
    }
}

/// When the master became healthy again before `t`, by what the check can see: the latest end of
/// a visible master fault at or before `t`, or the start of a flap's up phase.
struct Recovery {
    /// Ends of the visible master faults, sorted, with the fault's index.
    ends: Vec<(SimTime, u32)>,
    /// Visible master flaps, with their index.
    flaps: Vec<(Fault, u32)>,
}

impl Recovery {
    fn new(cfg: &SimConfig, att: &Attributor) -> Self {
        let visible = cfg
            .faults
            .iter()
            .enumerate()
            .filter(|(_, f)| f.member == Role::Master && att.reason(f).is_some());
        let mut ends: Vec<(SimTime, u32)> = visible
            .clone()
            .filter_map(|(i, f)| f.until.map(|u| (u, i as u32)))
            .collect();
        ends.sort();
        let flaps = visible
            .filter(|(_, f)| matches!(f.kind, FaultKind::Flap { .. }))
            .map(|(i, f)| (*f, i as u32))
            .collect();
        Recovery { ends, flaps }
    }

    /// The latest instant in `[from, t]` at which a visible fault ended (or a flap went up).
    /// `None` when the master came back while every fault it had was still on (an intermittent
    /// `loss` or `slow`): then there is no healthy moment to measure a failback from.
    /// Only faults on `node`'s path count.
    fn healthy_since(
        &self,
        cfg: &SimConfig,
        node: u32,
        from: SimTime,
        t: SimTime,
    ) -> Option<SimTime> {
        let k = self.ends.partition_point(|&(e, _)| e <= t);
        let mut best = self.ends[..k]
            .iter()
            .rev()
            .find(|&&(_, i)| cfg.fault_visible(i, node))
            .map(|&(e, _)| e)
            .filter(|&e| e >= from);
        for (f, i) in &self.flaps {
            if !cfg.fault_visible(*i, node) {
                continue;
            }
            if let FaultKind::Flap { period, down } = f.kind {
                if f.at <= t && f.until.is_none_or(|u| t < u) && period.0 > 0 {
                    let k = t.since(f.at).0 / period.0;
                    let up = f.at + SimDuration(k * period.0) + world::flap_down_span(period, down);
                    if up <= t && up >= from {
                        best = best.max(Some(up));
                    }
                }
            }
        }
        best
    }
}

/// Computes failovers, outages, failbacks, false, missed and censored faults from a run's log.
pub fn measure(cfg: &SimConfig, log: &RunLog) -> Measured {
    let end = covered_end(cfg, log);
    let initial = initial_health(cfg);
    let initial_target = match initial {
        Health::Online => Target::Master,
        Health::Offline => match cfg.model.all_down {
            crate::model::router::AllDown::Drop => Target::Drop,
            crate::model::router::AllDown::Master => Target::Master,
        },
    };
    let att = Attributor {
        cfg,
        check: cfg.check.kind,
        rtt: typical_rtt(cfg),
        judging: cfg.judging(),
    };
    let idx = NodeIndex::new(cfg, log);
    let delay = cfg.model.route_update_delay;
    let mut m = Measured::default();

    // Attribute every OFFLINE status change of either member.
    let mut detections: HashMap<(u32, u32), Detection> = HashMap::new();
    for member in Role::BOTH {
        let offline: Vec<u32> = log
            .transitions
            .iter()
            .enumerate()
            .filter(|(_, x)| x.member == member && x.to == Health::Offline)
            .map(|(i, _)| i as u32)
            .collect();
        // Verdicts an LB-node stall decided are the stall's, reported apart.
        let (stalled, offline): (Vec<u32>, Vec<u32>) = if cfg.stalls.is_empty() {
            (Vec::new(), offline)
        } else {
            offline
                .into_iter()
                .partition(|&t| log.transitions[t as usize].stall.is_some())
        };
        for t in stalled {
            let x = &log.transitions[t as usize];
            m.stalls.push(StallM {
                lb_node: x.lb_node,
                member: x.member,
                stall: x.stall.unwrap_or(0),
                at: x.at,
                route_to: idx.route_of.get(&t).map(|&r| log.routes[r].to),
            });
        }
        let faults = att.attribute(log, member, &offline);
        for (&t, fault) in offline.iter().zip(faults) {
            let x: &Transition = &log.transitions[t as usize];
            match fault {
                Some(f) => {
                    let d = Detection {
                        lb_node: x.lb_node,
                        fault: f,
                        detected: x.at,
                        reason: x.reason,
                        transition: t,
                    };
                    detections.entry((f, x.lb_node)).or_insert(d);
                }
                None => {
                    m.unexplained.push(t);
                    if member == Role::Master {
                        m.false_failovers.push(FalseM {
                            lb_node: x.lb_node,
                            at: x.at,
                            reason: x.reason,
                        });
                    }
                }
            }
        }
    }
    m.unexplained.sort_unstable();

    // Faults in start order; per node, what their detection did.
    let mut order: Vec<u32> = (0..cfg.faults.len() as u32).collect();
    order.sort_by_key(|&i| (cfg.faults[i as usize].at, i));
    let window = detection_window(cfg);
    let recovery = Recovery::new(cfg, &att);
    for fi in order {
        let f = &cfg.faults[fi as usize];
        for node in 0..cfg.lb_nodes.max(1) {
            if !cfg.fault_visible(fi, node) {
                // A per-path fault off this node's path: nothing to detect or miss here.
                continue;
            }
            let detection = detections.get(&(fi, node)).copied();
            if f.member == Role::Slave {
                // A slave fault matters to new connections only when it leaves no member up.
                if let Some(d) = detection {
                    if let Some(o) = outage(&idx, log, d, Role::Slave, initial_target, delay) {
                        m.outages.push(o);
                    }
                }
                continue;
            }
            if idx.master_before(log, node, f.at, initial) != Health::Online {
                // Already failed over (or never up): this fault cannot cause a failover here.
                continue;
            }
            let Some(d) = detection else {
                let pair = PairM {
                    lb_node: node,
                    fault: fi,
                };
                if f.at + window > end {
                    m.censored.push(pair);
                } else {
                    m.fault_node_pairs += 1;
                    m.missed.push(pair);
                }
                continue;
            };
            m.fault_node_pairs += 1;
            if let Some(o) = outage(&idx, log, d, Role::Master, initial_target, delay) {
                m.outages.push(o);
                continue;
            }
            let route = idx.route_of.get(&d.transition).map(|&r| &log.routes[r]);
            let switched = route.filter(|r| r.to == Target::Slave).map(|r| r.at);
            m.failovers.push(FailoverM {
                detection: d,
                switched,
                needless: needless_rule(cfg, &f.kind),
            });
            let Some(sw) = switched else { continue };
            // The master's next status change on this node is its recovery; the failback is the
            // route change back it caused (none under sticky failback).
            let Some(on) = idx.next_master_change(node, d.transition) else {
                continue;
            };
            let on_x = &log.transitions[on as usize];
            let back = idx
                .route_of
                .get(&on)
                .map(|&r| &log.routes[r])
                .filter(|r| r.failback && r.at >= sw);
            let (Some(back), Some(healthy)) =
                (back, recovery.healthy_since(cfg, node, f.at, on_x.at))
            else {
                continue;
            };
            let persisted = log.traffic.as_ref().and_then(|t| {
                t.persisted_returns
                    .iter()
                    .find(|p| p.lb_node == node && p.failback_at == back.at)
            });
            m.failbacks.push(FailbackM {
                lb_node: node,
                fault: fi,
                healthy,
                switched_back: back.at,
                persisted_last: persisted.and_then(|p| p.last_to_slave),
                persisted_connections: persisted.map_or(0, |p| p.connections),
                persisted_returned: persisted.is_none_or(|p| p.returned),
            });
        }
    }
    m.stalls.sort_by_key(|x| (x.at, x.lb_node, x.member));
    m
}

/// The outage a detection caused, if its node was left with no member ONLINE: a route change to
/// drop, a fail-open route change, or no change while the node keeps sending to the master it
/// just judged OFFLINE.
fn outage(
    idx: &NodeIndex,
    log: &RunLog,
    d: Detection,
    member: Role,
    initial_target: Target,
    delay: SimDuration,
) -> Option<OutageM> {
    let route = idx.route_of.get(&d.transition).map(|&r| &log.routes[r]);
    let out = |at, kind| {
        Some(OutageM {
            detection: d,
            member,
            at,
            kind,
        })
    };
    match route {
        Some(r) if r.to == Target::Drop => out(r.at, OutageKind::Drop),
        Some(r) if r.to == Target::Master && !r.failback => out(r.at, OutageKind::FailOpen),
        Some(_) => None,
        None if member == Role::Master => {
            let applied = d.detected + delay;
            (idx.target_at(d.lb_node, applied, initial_target) == Target::Master)
                .then_some(())
                .and(out(applied, OutageKind::FailOpen))
        }
        None => None,
    }
}

// ---------------------------------------------------------------------------------------------
// The report, in seconds
// ---------------------------------------------------------------------------------------------

fn secs(t: SimTime) -> f64 {
    t.as_secs_f64()
}

/// One failover: a fault on the master made one LB node send new connections to the slave.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failover {
    /// The LB node, from 0.
    pub lb_node: u32,
    /// The member the fault hit (always `master` for a failover).
    pub member: Role,
    /// The fault kind.
    pub fault: &'static str,
    /// When the fault began (s).
    pub fault_start_s: f64,
    /// When this node judged the master OFFLINE (s).
    pub detected_s: f64,
    /// `detected_s - fault_start_s`.
    pub detection_latency_s: f64,
    /// When this node's new connections reached the slave (s); null if they were there already.
    pub switched_s: Option<f64>,
    /// `switched_s - fault_start_s`.
    pub failover_latency_s: Option<f64>,
    /// Where new connections went: always `slave` (switches to nowhere are outages).
    pub switched_to: Option<Target>,
    /// Reason code of the deciding probe.
    pub reason: Option<&'static str>,
    /// True when the model's client rules leave this failover's clients unharmed.
    pub needless: bool,
    /// The rule that decided `needless`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needless_rule: Option<&'static str>,
}

/// One outage: a detection left a node with no ONLINE member to send new connections to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outage {
    pub lb_node: u32,
    /// The member whose fault was detected.
    pub member: Role,
    pub fault: &'static str,
    pub fault_start_s: f64,
    pub detected_s: f64,
    /// When the node's data plane acted on it (s).
    pub at_s: f64,
    /// `at_s - fault_start_s`.
    pub outage_latency_s: f64,
    /// `drop` (new connections dropped) or `fail_open` (sent to an OFFLINE master).
    pub kind: OutageKind,
    pub reason: Option<&'static str>,
}

/// One failback: new connections back on the master after a failover.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailbackRecord {
    pub lb_node: u32,
    pub fault: &'static str,
    /// When the master was healthy again by its check's rules: the end of the last overlapping
    /// fault the check can see (s).
    pub fault_end_s: f64,
    /// When this node's new connections went back to the master (s).
    pub switched_back_s: f64,
    /// `switched_back_s - fault_end_s`.
    pub failback_latency_s: f64,
    /// With session persistence: the last new connection persistence still sent to the slave
    /// (s); absent when none was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persisted_last_to_slave_s: Option<f64>,
    /// With session persistence: `persisted_last_to_slave_s - fault_end_s` (0 when none was
    /// sent); absent when persisted clients had not all returned by the node's next route
    /// change or the end of the run (see `persisted_returned`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persisted_failback_latency_s: Option<f64>,
    /// With session persistence: whether every persisted client had returned to the master
    /// (the last one's persistence entry expired) by the node's next route change or the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persisted_returned: Option<bool>,
    /// New connections persistence sent to the slave after the failback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persisted_connections: Option<u64>,
}

/// A master OFFLINE verdict no fault explains: noise caused it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FalseFailover {
    pub lb_node: u32,
    /// When the master was judged OFFLINE (s).
    pub at_s: f64,
    pub reason: Option<&'static str>,
}

/// A fault on the master that one LB node never acted on (missed), or whose detection window did
/// not fit before the end of the run (censored).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MissedFault {
    pub lb_node: u32,
    pub fault: &'static str,
    pub fault_start_s: f64,
    /// When the fault ended (s); null if it lasted to the end of the run.
    pub fault_end_s: Option<f64>,
    /// Why the check could not see it, when the model knows a reason beyond the fault x check
    /// table (a separate monitor process).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<&'static str>,
}

/// A member OFFLINE verdict an LB-node stall caused: the deciding probe's timeout ran out while
/// the node's checker was paused.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StallEvent {
    pub lb_node: u32,
    pub member: Role,
    /// The stall: when it began and ended (s).
    pub stall_start_s: f64,
    pub stall_end_s: f64,
    /// When the member was judged OFFLINE (the stall's end) (s).
    pub at_s: f64,
    /// Always CONNECT_TIMEOUT.
    pub reason: &'static str,
    /// Where the node's new connections went because of it: `slave` (a failover), `drop` or
    /// `master` (all-down policy: both members OFFLINE); null when the route did not change.
    pub route_to: Option<Target>,
}

/// One status change of a member in one node's view, with the API's reason fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberTransition {
    pub lb_node: u32,
    pub at_s: f64,
    /// `ONLINE` or `OFFLINE`.
    pub operating_status: Health,
    /// The API's `reason.reason_code` (OFFLINE only).
    pub reason_code: Option<&'static str>,
    /// The API's `reason.expected_response` (RESPONSE_MISMATCH only).
    pub expected_response: Option<String>,
    /// The API's `reason.healthcheck_response` (RESPONSE_MISMATCH only).
    pub healthcheck_response: Option<String>,
}

/// A member and what happened to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberReport {
    pub role: Role,
    pub address: String,
    pub protocol_port: Option<u16>,
    /// Status at the end of the run, per LB node.
    pub final_status: Vec<Health>,
    pub transitions: Vec<MemberTransition>,
}

/// One line of `--timeline`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEntry {
    pub at_s: f64,
    /// `fault_start`, `fault_end`, `stall_start`, `stall_end`, `verdict`, `status`, `route`.
    pub event: &'static str,
    pub lb_node: Option<u32>,
    pub member: Option<Role>,
    /// Human-readable detail: `ok`, `fail CONNECT_REFUSED`, `OFFLINE`, `master -> slave`, `crash`.
    pub detail: String,
}

/// The health check a run used (the body's, or the command line's overrides).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthCheckUsed {
    #[serde(rename = "type")]
    pub kind: ProbeKind,
    pub delay_s: f64,
    pub timeout_s: f64,
    pub max_retries: u32,
    pub max_retries_down: u32,
}

impl HealthCheckUsed {
    pub fn of(cfg: &SimConfig) -> Self {
        let c = &cfg.check;
        HealthCheckUsed {
            kind: c.kind,
            delay_s: c.delay.as_secs_f64(),
            timeout_s: c.timeout.as_secs_f64(),
            max_retries: c.rise,
            max_retries_down: c.fall,
        }
    }
}

/// What `elbsim run` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    /// The scenario's name.
    pub name: String,
    /// The seed that reproduces this run.
    pub seed: u64,
    pub duration_s: f64,
    pub lb_nodes: u32,
    /// The health check the run used.
    pub health_check: HealthCheckUsed,
    /// Events the engine processed.
    pub events: u64,
    /// True when the run was interrupted: the figures cover the run up to `covered_s`.
    pub partial: bool,
    /// The simulated time the report covers.
    pub covered_s: f64,
    pub failovers: Vec<Failover>,
    /// Detections that left a node with no ONLINE member (never failovers).
    pub outages: Vec<Outage>,
    pub failbacks: Vec<FailbackRecord>,
    /// Count of master OFFLINE verdicts no fault explains.
    pub false_failovers: u64,
    /// The false failovers themselves.
    pub false_failover_events: Vec<FalseFailover>,
    /// Count of (fault on the master, LB node) pairs that never led to a failover although the
    /// detection window fit in the run.
    pub missed_faults: u64,
    pub missed: Vec<MissedFault>,
    /// Count of undetected (fault, node) pairs whose detection window did not fit in the run.
    pub censored_faults: u64,
    pub censored: Vec<MissedFault>,
    /// Count of failovers the client rules leave harmless.
    pub needless_failovers: u64,
    /// Failure-detector quality of service (`docs/metrics.md`, "Failure-detector QoS").
    pub qos: super::qos::RunQos,
    /// With `[[stalls]]`: member OFFLINE verdicts caused by LB-node stalls that changed where
    /// new connections go (failovers or all-down switches of the LB's own making).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stall_failovers: Option<u64>,
    /// Every member OFFLINE verdict caused by a stall.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stall_events: Vec<StallEvent>,
    pub members: Vec<MemberReport>,
    /// What clients saw, when the scenario has `[traffic]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic: Option<TrafficReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Vec<TimelineEntry>>,
    /// Set when the run reached one of its limits: the report is not valid.
    #[serde(skip)]
    pub limit: Option<crate::sim::engine::Stopped>,
}

/// Client failures in one span, in seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeUnavailability {
    pub lb_node: u32,
    pub first_failure_s: f64,
    pub last_failure_s: f64,
    /// `last_failure_s - first_failure_s`.
    pub window_s: f64,
    /// `failed_connections + failed_requests`.
    pub failures: u64,
    pub failed_connections: u64,
    pub failed_requests: u64,
}

/// The unavailability clients saw around one fault.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnavailabilityReport {
    pub fault: &'static str,
    pub member: Role,
    pub fault_start_s: f64,
    /// The first client failure charged to this fault (s).
    pub first_failure_s: Option<f64>,
    /// The last one (s).
    pub last_failure_s: Option<f64>,
    /// `last_failure_s - first_failure_s`: the span of every failure of this fault.
    pub window_s: Option<f64>,
    /// Failed connections (attempts, and open connections broken, reset or cut by CID routing)
    /// plus failed requests.
    pub failures: u64,
    pub failed_connections: u64,
    pub failed_requests: u64,
    /// The same, per LB node that saw a failure.
    pub nodes: Vec<NodeUnavailability>,
}

/// A connection drain, in seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrainReport {
    pub lb_node: u32,
    pub member: Role,
    pub started_s: f64,
    /// When the LB closed what was still open; null when the drain was cancelled.
    pub closed_s: Option<f64>,
    pub connections: u64,
}

/// The `traffic` section of a run report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrafficReport {
    #[serde(flatten)]
    pub counters: TrafficCounters,
    /// Where connections reach a member: its protocol_port, or the client's front port.
    pub backend_port: String,
    /// Per fault: the outage as clients saw it.
    pub unavailability: Vec<UnavailabilityReport>,
    /// Failures before any fault began.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unattributed_failures: Option<u64>,
    /// Every connection drain.
    pub drains: Vec<DrainReport>,
    /// Client failures per time bin and LB node, for pictures (not in the JSON).
    #[serde(skip)]
    pub failure_series: Option<crate::sim::engine::FailureSeries>,
}

/// Facts about a run that the analysis needs besides the log.
pub struct RunFacts<'a> {
    pub name: &'a str,
    pub seed: u64,
    pub cfg: &'a SimConfig,
    /// Expected codes as the API spells them, for RESPONSE_MISMATCH reasons.
    pub expected_codes: Option<&'a str>,
}

fn span_parts(s: &FailureSpan) -> (f64, f64, f64) {
    (
        secs(s.first),
        secs(s.last),
        s.last.since(s.first).as_secs_f64(),
    )
}

fn unavailability(cfg: &SimConfig, u: &Unavailability) -> UnavailabilityReport {
    let f = &cfg.faults[u.fault as usize];
    let all = u.all.as_ref();
    UnavailabilityReport {
        fault: f.kind.name(),
        member: f.member,
        fault_start_s: secs(f.at),
        first_failure_s: all.map(|s| secs(s.first)),
        last_failure_s: all.map(|s| secs(s.last)),
        window_s: all.map(|s| s.last.since(s.first).as_secs_f64()),
        failures: all.map_or(0, FailureSpan::failures),
        failed_connections: all.map_or(0, |s| s.connections),
        failed_requests: all.map_or(0, |s| s.requests),
        nodes: u
            .nodes
            .iter()
            .map(|(&lb_node, s)| {
                let (first, last, window) = span_parts(s);
                NodeUnavailability {
                    lb_node,
                    first_failure_s: first,
                    last_failure_s: last,
                    window_s: window,
                    failures: s.failures(),
                    failed_connections: s.connections,
                    failed_requests: s.requests,
                }
            })
            .collect(),
    }
}

fn missed_fault(cfg: &SimConfig, p: &PairM) -> MissedFault {
    let f = &cfg.faults[p.fault as usize];
    MissedFault {
        lb_node: p.lb_node,
        fault: f.kind.name(),
        fault_start_s: secs(f.at),
        fault_end_s: f.until.map(secs),
        why: (!crate::sim::paths::check_meets(cfg, &f.kind)).then_some(
            "monitor_process = \"separate\": a separate process answers the check port, and this fault of the service process does not reach it",
        ),
    }
}

fn stall_event(cfg: &SimConfig, x: &StallM) -> StallEvent {
    let st = &cfg.stalls[x.stall as usize];
    StallEvent {
        lb_node: x.lb_node,
        member: x.member,
        stall_start_s: secs(st.at),
        stall_end_s: secs(st.until),
        at_s: secs(x.at),
        reason: Reason::ConnectTimeout.as_str(),
        route_to: x.route_to,
    }
}

/// The measurements in seconds: (failovers, outages, failbacks, false failovers).
pub fn in_seconds(
    cfg: &SimConfig,
    m: &Measured,
) -> (
    Vec<Failover>,
    Vec<Outage>,
    Vec<FailbackRecord>,
    Vec<FalseFailover>,
) {
    let fault = |i: u32| &cfg.faults[i as usize];
    let failovers = m
        .failovers
        .iter()
        .map(|x| {
            let d = &x.detection;
            let f = fault(d.fault);
            Failover {
                lb_node: d.lb_node,
                member: Role::Master,
                fault: f.kind.name(),
                fault_start_s: secs(f.at),
                detected_s: secs(d.detected),
                detection_latency_s: d.detected.since(f.at).as_secs_f64(),
                switched_s: x.switched.map(secs),
                failover_latency_s: x.switched.map(|s| s.since(f.at).as_secs_f64()),
                switched_to: x.switched.map(|_| Target::Slave),
                reason: d.reason.map(|r| r.as_str()),
                needless: x.needless.is_some(),
                needless_rule: x.needless,
            }
        })
        .collect();
    let outages = m
        .outages
        .iter()
        .map(|o| {
            let f = fault(o.detection.fault);
            Outage {
                lb_node: o.detection.lb_node,
                member: o.member,
                fault: f.kind.name(),
                fault_start_s: secs(f.at),
                detected_s: secs(o.detection.detected),
                at_s: secs(o.at),
                outage_latency_s: o.at.since(f.at).as_secs_f64(),
                kind: o.kind,
                reason: o.detection.reason.map(|r| r.as_str()),
            }
        })
        .collect();
    let persistence = cfg
        .traffic
        .as_ref()
        .is_some_and(|t| t.persistence.is_some());
    let failbacks = m
        .failbacks
        .iter()
        .map(|b| FailbackRecord {
            lb_node: b.lb_node,
            fault: fault(b.fault).kind.name(),
            fault_end_s: secs(b.healthy),
            switched_back_s: secs(b.switched_back),
            failback_latency_s: b.switched_back.since(b.healthy).as_secs_f64(),
            persisted_last_to_slave_s: b.persisted_last.map(secs),
            persisted_failback_latency_s: (persistence && b.persisted_returned).then(|| {
                b.persisted_last
                    .map_or(0.0, |p| p.since(b.healthy).as_secs_f64())
            }),
            persisted_returned: persistence.then_some(b.persisted_returned),
            persisted_connections: persistence.then_some(b.persisted_connections),
        })
        .collect();
    let false_failovers = m
        .false_failovers
        .iter()
        .map(|x| FalseFailover {
            lb_node: x.lb_node,
            at_s: secs(x.at),
            reason: x.reason.map(|r| r.as_str()),
        })
        .collect();
    (failovers, outages, failbacks, false_failovers)
}

/// Computes the report of one run.
pub fn analyse(facts: &RunFacts, log: &RunLog, timeline: bool) -> RunReport {
    let cfg = facts.cfg;
    let initial = initial_health(cfg);
    let m = measure(cfg, log);
    let (failovers, outages, failbacks, false_failover_events) = in_seconds(cfg, &m);
    let needless_failovers = m.failovers.iter().filter(|f| f.needless.is_some()).count() as u64;
    let qos_m = super::qos::measure(cfg, log, &m.unexplained, &super::qos::member_windows(cfg));
    let qos = super::qos::RunQos::new(
        cfg,
        &qos_m,
        m.failovers.iter().map(|f| {
            f.detection
                .detected
                .since(cfg.faults[f.detection.fault as usize].at)
                .0
        }),
    );

    let mut final_status = vec![[initial; 2]; cfg.lb_nodes.max(1) as usize];
    for x in &log.transitions {
        final_status[x.lb_node as usize][x.member.index()] = x.to;
    }
    let members = cfg
        .members
        .iter()
        .map(|mem| MemberReport {
            role: mem.role,
            address: mem.address.clone(),
            protocol_port: mem.protocol_port,
            final_status: final_status.iter().map(|s| s[mem.role.index()]).collect(),
            transitions: log
                .transitions
                .iter()
                .filter(|x| x.member == mem.role)
                .map(|x| {
                    let mismatch = x.reason == Some(Reason::ResponseMismatch);
                    MemberTransition {
                        lb_node: x.lb_node,
                        at_s: secs(x.at),
                        operating_status: x.to,
                        reason_code: x.reason.map(|r| r.as_str()),
                        expected_response: mismatch
                            .then(|| facts.expected_codes.unwrap_or("200").to_string()),
                        healthcheck_response: if mismatch {
                            x.status.map(|s| s.to_string())
                        } else {
                            None
                        },
                    }
                })
                .collect(),
        })
        .collect();

    RunReport {
        name: facts.name.to_string(),
        seed: facts.seed,
        duration_s: cfg.duration.as_secs_f64(),
        lb_nodes: cfg.lb_nodes,
        health_check: HealthCheckUsed::of(cfg),
        events: log.events,
        partial: matches!(log.stopped, Some(Stopped::Interrupted { .. })),
        covered_s: secs(covered_end(cfg, log)),
        false_failovers: false_failover_events.len() as u64,
        false_failover_events,
        missed_faults: m.missed.len() as u64,
        missed: m.missed.iter().map(|p| missed_fault(cfg, p)).collect(),
        censored_faults: m.censored.len() as u64,
        censored: m.censored.iter().map(|p| missed_fault(cfg, p)).collect(),
        needless_failovers,
        qos,
        stall_failovers: (!cfg.stalls.is_empty())
            .then(|| m.stalls.iter().filter(|x| x.route_to.is_some()).count() as u64),
        stall_events: m.stalls.iter().map(|x| stall_event(cfg, x)).collect(),
        failovers,
        outages,
        failbacks,
        members,
        traffic: log.traffic.as_ref().map(|t| TrafficReport {
            counters: t.counters.clone(),
            backend_port: match cfg.traffic.as_ref() {
                Some(tc) if tc.any_port => "the client's front port (any_port_enable)".to_string(),
                _ => "each member's protocol_port".to_string(),
            },
            unavailability: t
                .unavailability
                .iter()
                .map(|u| unavailability(cfg, u))
                .collect(),
            unattributed_failures: t.unattributed.as_ref().map(FailureSpan::failures),
            drains: t.drains.iter().map(drain_report).collect(),
            failure_series: t.failure_series.clone(),
        }),
        timeline: timeline.then(|| build_timeline(cfg, log)),
        limit: log.stopped.filter(|s| matches!(s, Stopped::Limit { .. })),
    }
}

fn drain_report(d: &DrainRecord) -> DrainReport {
    DrainReport {
        lb_node: d.lb_node,
        member: d.member,
        started_s: secs(d.started),
        closed_s: d.closed.map(secs),
        connections: d.connections,
    }
}

/// Every verdict, status change, route change and fault edge, in time order.
fn build_timeline(cfg: &SimConfig, log: &RunLog) -> Vec<TimelineEntry> {
    // (time, order within the same instant, entry): fault edges first, then verdicts, status
    // changes and route changes, the order in which the engine acts on them.
    let mut rows: Vec<(SimTime, u8, usize, TimelineEntry)> = Vec::new();
    let end = SimTime::ZERO + cfg.duration;
    for (i, f) in cfg.faults.iter().enumerate() {
        if f.at <= end {
            rows.push((
                f.at,
                0,
                i,
                TimelineEntry {
                    at_s: secs(f.at),
                    event: "fault_start",
                    lb_node: None,
                    member: Some(f.member),
                    detail: f.kind.name().to_string(),
                },
            ));
        }
        if let Some(u) = f.until.filter(|u| *u <= end) {
            rows.push((
                u,
                0,
                i,
                TimelineEntry {
                    at_s: secs(u),
                    event: "fault_end",
                    lb_node: None,
                    member: Some(f.member),
                    detail: f.kind.name().to_string(),
                },
            ));
        }
    }
    for (i, st) in cfg.stalls.iter().enumerate() {
        for (at, event) in [(st.at, "stall_start"), (st.until, "stall_end")] {
            if at <= end {
                let nodes: Vec<String> = st.lb_nodes.iter().map(u32::to_string).collect();
                rows.push((
                    at,
                    0,
                    cfg.faults.len() + i,
                    TimelineEntry {
                        at_s: secs(at),
                        event,
                        lb_node: (st.lb_nodes.len() == 1).then(|| st.lb_nodes[0]),
                        member: None,
                        detail: format!("LB node {} checker", nodes.join(", ")),
                    },
                ));
            }
        }
    }
    for (i, v) in log.verdicts.iter().enumerate() {
        rows.push((
            v.at,
            1,
            i,
            TimelineEntry {
                at_s: secs(v.at),
                event: "verdict",
                lb_node: Some(v.lb_node),
                member: Some(v.member),
                detail: match v.reason {
                    None => "ok".to_string(),
                    Some(r) => format!("fail {}", r.as_str()),
                },
            },
        ));
    }
    for (i, x) in log.transitions.iter().enumerate() {
        rows.push((
            x.at,
            2,
            i,
            TimelineEntry {
                at_s: secs(x.at),
                event: "status",
                lb_node: Some(x.lb_node),
                member: Some(x.member),
                detail: match x.reason {
                    Some(r) => format!("{} ({})", x.to.as_str(), r.as_str()),
                    None => x.to.as_str().to_string(),
                },
            },
        ));
    }
    for (i, r) in log.routes.iter().enumerate() {
        rows.push((
            r.at,
            3,
            i,
            TimelineEntry {
                at_s: secs(r.at),
                event: "route",
                lb_node: Some(r.lb_node),
                member: None,
                detail: format!("{} -> {}", r.from.as_str(), r.to.as_str()),
            },
        ));
    }
    rows.sort_by_key(|(t, kind, i, _)| (*t, *kind, *i));
    rows.into_iter().map(|(_, _, _, e)| e).collect()
}
