//! The report of one run (spec/model.md section 7; JSON keys of spec/scenario.md).
//!
//! Computed after the run from the engine's log, so the hot loop only records status and route
//! changes. Attribution rule: a master OFFLINE verdict belongs to the fault that was active on the
//! master when the *deciding probe was sent* (the engine judges probes by the condition at send
//! time), so a verdict that lands just after a short fault ended still counts for that fault, and a
//! verdict from a probe sent before the fault began does not.

use crate::model::health::Health;
use crate::model::router::{Role, Target};
use crate::sim::config::{Fault, SimConfig};
use crate::sim::engine::{DrainRecord, RunLog, TrafficCounters, Transition, Unavailability};
use crate::sim::time::SimTime;
use serde::Serialize;

/// One failover: a fault on the master detected by one LB node.
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
    /// When this node's new connections left the master (s); null if they never did.
    pub switched_s: Option<f64>,
    /// `switched_s - fault_start_s`.
    pub failover_latency_s: Option<f64>,
    /// Where new connections went: `slave`, or `drop` when the slave was OFFLINE too.
    pub switched_to: Option<Target>,
    /// Reason code of the deciding probe.
    pub reason: Option<&'static str>,
    /// True for a fault clients do not feel (`monitor_port_down`): the failover was needless.
    pub needless: bool,
}

/// One failback: new connections back on the master after a fault ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailbackRecord {
    pub lb_node: u32,
    pub fault: &'static str,
    /// When the fault ended (s).
    pub fault_end_s: f64,
    /// When this node's new connections went back to the master (s).
    pub switched_back_s: f64,
    /// `switched_back_s - fault_end_s`.
    pub failback_latency_s: f64,
}

/// A master OFFLINE verdict with no fault active on the master: noise caused it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FalseFailover {
    pub lb_node: u32,
    /// When the master was judged OFFLINE (s).
    pub at_s: f64,
    pub reason: Option<&'static str>,
}

/// A fault on the master that one LB node never acted on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MissedFault {
    pub lb_node: u32,
    pub fault: &'static str,
    pub fault_start_s: f64,
    /// When the fault ended (s); null if it lasted to the end of the run.
    pub fault_end_s: Option<f64>,
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
    /// `fault_start`, `fault_end`, `verdict`, `status`, `route`.
    pub event: &'static str,
    pub lb_node: Option<u32>,
    pub member: Option<Role>,
    /// Human-readable detail: `ok`, `fail CONNECT_REFUSED`, `OFFLINE`, `master -> slave`, `crash`.
    pub detail: String,
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
    /// Events the engine processed.
    pub events: u64,
    pub failovers: Vec<Failover>,
    pub failbacks: Vec<FailbackRecord>,
    /// Count of master OFFLINE verdicts with no fault on the master.
    pub false_failovers: u64,
    /// The false failovers themselves.
    pub false_failover_events: Vec<FalseFailover>,
    /// Count of (fault on the master, LB node) pairs that never led to a failover.
    pub missed_faults: u64,
    pub missed: Vec<MissedFault>,
    pub members: Vec<MemberReport>,
    /// What clients saw, when the scenario has `[traffic]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic: Option<TrafficReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Vec<TimelineEntry>>,
}

/// The `traffic` section of a run report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrafficReport {
    #[serde(flatten)]
    pub counters: TrafficCounters,
    /// Where connections reach a member: its protocol_port, or the client's front port.
    pub backend_port: String,
    /// Per fault on the master: the outage as clients saw it.
    pub unavailability: Vec<Unavailability>,
    /// Every connection drain.
    pub drains: Vec<DrainRecord>,
}

fn secs(t: SimTime) -> f64 {
    t.as_secs_f64()
}

/// The window `[at, until)` of a fault; `until` defaults to the end of the run.
fn window(f: &Fault, end: SimTime) -> (SimTime, SimTime) {
    (f.at, f.until.unwrap_or(end).max(f.at))
}

/// The index of the master fault that was active at `t`, if any (the earliest-started wins).
fn master_fault_at(faults: &[Fault], t: SimTime, end: SimTime) -> Option<usize> {
    faults
        .iter()
        .enumerate()
        .filter(|(_, f)| f.member == Role::Master)
        .filter(|(_, f)| {
            let (a, b) = window(f, end);
            a <= t && t < b
        })
        .min_by_key(|(i, f)| (f.at, *i))
        .map(|(i, _)| i)
}

/// The master's status on `node` just before `t`.
fn master_status_before(log: &RunLog, node: u32, t: SimTime, initial: Health) -> Health {
    log.transitions
        .iter()
        .rfind(|x| x.lb_node == node && x.member == Role::Master && x.at < t)
        .map_or(initial, |x| x.to)
}

/// Facts about a run that the analysis needs besides the log.
pub struct RunFacts<'a> {
    pub name: &'a str,
    pub seed: u64,
    pub cfg: &'a SimConfig,
    /// Expected codes as the API spells them, for RESPONSE_MISMATCH reasons.
    pub expected_codes: Option<&'a str>,
}

/// The failover metrics of one run: what both `run` and `trials` report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    pub failovers: Vec<Failover>,
    pub failbacks: Vec<FailbackRecord>,
    pub false_failovers: Vec<FalseFailover>,
    pub missed: Vec<MissedFault>,
    /// (master fault, LB node) pairs where the master was ONLINE when the fault began: the
    /// denominator of the missed-fault rate.
    pub fault_node_pairs: u64,
}

fn initial_health(cfg: &SimConfig) -> Health {
    match cfg.model.initial_state {
        crate::sim::config::InitialState::Online => Health::Online,
        crate::sim::config::InitialState::Initial => Health::Offline,
    }
}

/// Computes failovers, failbacks, false failovers and missed faults from a run's log.
pub fn measure(cfg: &SimConfig, log: &RunLog) -> Measured {
    let end = SimTime::ZERO + cfg.duration;
    let initial = initial_health(cfg);
    let mut m = Measured::default();

    for (fi, f) in cfg.faults.iter().enumerate() {
        if f.member != Role::Master {
            continue;
        }
        for node in 0..cfg.lb_nodes {
            if master_status_before(log, node, f.at, initial) != Health::Online {
                // Already failed over (or never up): this fault cannot cause a failover here.
                continue;
            }
            m.fault_node_pairs += 1;
            let decided: Option<&Transition> = log.transitions.iter().find(|x| {
                x.lb_node == node
                    && x.member == Role::Master
                    && x.to == Health::Offline
                    && x.at >= f.at
                    && master_fault_at(&cfg.faults, x.probe_sent_at, end) == Some(fi)
            });
            let Some(d) = decided else {
                m.missed.push(MissedFault {
                    lb_node: node,
                    fault: f.kind.name(),
                    fault_start_s: secs(f.at),
                    fault_end_s: f.until.map(secs),
                });
                continue;
            };
            // The route change this verdict caused: `route_update_delay` after it. None when the
            // node was not sending to the master anyway (e.g. still on the slave after a
            // sticky failover): then no switch happened for this fault.
            let delay = cfg.model.route_update_delay;
            let switch = log.routes.iter().find(|r| {
                r.lb_node == node
                    && r.from == Target::Master
                    && r.at >= d.at
                    && r.at <= d.at + delay
            });
            m.failovers.push(Failover {
                lb_node: node,
                member: Role::Master,
                fault: f.kind.name(),
                fault_start_s: secs(f.at),
                detected_s: secs(d.at),
                detection_latency_s: d.at.since(f.at).as_secs_f64(),
                switched_s: switch.map(|r| secs(r.at)),
                failover_latency_s: switch.map(|r| r.at.since(f.at).as_secs_f64()),
                switched_to: switch.map(|r| r.to),
                reason: d.reason.map(|r| r.as_str()),
                needless: matches!(f.kind, crate::sim::config::FaultKind::MonitorPortDown),
            });
            if let (Some(until), Some(sw)) = (f.until, switch) {
                if until >= end {
                    continue;
                }
                // The master's first ONLINE verdict after the fault, and the route change back it
                // caused (none under sticky failback).
                let online = log.transitions.iter().find(|x| {
                    x.lb_node == node
                        && x.member == Role::Master
                        && x.to == Health::Online
                        && x.at >= until
                        && x.at >= sw.at
                });
                let back = online.and_then(|on| {
                    log.routes.iter().find(|r| {
                        r.lb_node == node
                            && r.to == Target::Master
                            && r.at >= on.at
                            && r.at <= on.at + delay
                    })
                });
                if let Some(b) = back {
                    m.failbacks.push(FailbackRecord {
                        lb_node: node,
                        fault: f.kind.name(),
                        fault_end_s: secs(until),
                        switched_back_s: secs(b.at),
                        failback_latency_s: b.at.since(until).as_secs_f64(),
                    });
                }
            }
        }
    }

    m.false_failovers = log
        .transitions
        .iter()
        .filter(|x| x.member == Role::Master && x.to == Health::Offline)
        .filter(|x| master_fault_at(&cfg.faults, x.probe_sent_at, end).is_none())
        .map(|x| FalseFailover {
            lb_node: x.lb_node,
            at_s: secs(x.at),
            reason: x.reason.map(|r| r.as_str()),
        })
        .collect();
    m
}

/// Computes the report of one run.
pub fn analyse(facts: &RunFacts, log: &RunLog, timeline: bool) -> RunReport {
    let cfg = facts.cfg;
    let initial = initial_health(cfg);
    let Measured {
        failovers,
        failbacks,
        false_failovers: false_failover_events,
        missed,
        ..
    } = measure(cfg, log);

    let members = cfg
        .members
        .iter()
        .map(|m| MemberReport {
            role: m.role,
            address: m.address.clone(),
            protocol_port: m.protocol_port,
            final_status: (0..cfg.lb_nodes)
                .map(|n| {
                    log.transitions
                        .iter()
                        .rfind(|x| x.lb_node == n && x.member == m.role)
                        .map_or(initial, |x| x.to)
                })
                .collect(),
            transitions: log
                .transitions
                .iter()
                .filter(|x| x.member == m.role)
                .map(|x| {
                    let mismatch = x.reason == Some(crate::model::probe::Reason::ResponseMismatch);
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
        events: log.events,
        false_failovers: false_failover_events.len() as u64,
        false_failover_events,
        missed_faults: missed.len() as u64,
        missed,
        failovers,
        failbacks,
        members,
        traffic: log.traffic.as_ref().map(|t| TrafficReport {
            counters: t.counters.clone(),
            backend_port: match cfg.traffic.as_ref() {
                Some(tc) if tc.any_port => "the client's front port (any_port_enable)".to_string(),
                _ => "each member's protocol_port".to_string(),
            },
            unavailability: t.unavailability.clone(),
            drains: t.drains.clone(),
        }),
        timeline: timeline.then(|| build_timeline(cfg, log)),
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
