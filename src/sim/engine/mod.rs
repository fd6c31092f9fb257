//! The discrete-event run loop: drives the health checkers and routers of every LB node.
//!
//! One closed [`Event`] enum, matched exhaustively; events are small `Copy` values in a binary heap
//! keyed on `(time, seq)`, so the loop allocates nothing per event once the heap has grown (the
//! log below grows only on status and route changes, and per verdict only with `--timeline`).
//!
//! Slots: prober `p = node * 2 + role` for every (LB node, member) pair.
//!
//! A verdict reaches the router `route_update_delay` after it is given (an `ApplyHealth` event);
//! with a zero delay it is still an event, at the same instant, so the order of effects does not
//! depend on the setting.

use super::config::{FaultKind, InitialState, Rtt, SimConfig};
use super::network::{self, RttSampler};
use super::queue::EventQueue;
use super::rng::{self, Purpose};
use super::time::{SimDuration, SimTime};
use crate::model::connections::ConnId;
use crate::model::health::{Health, HealthChecker, Prober};
use crate::model::probe::{self, Condition, Reason};
use crate::model::router::{Role, Router, Target};
use rand_chacha::ChaCha8Rng;
use traffic::Traffic;
pub use traffic::{DrainRecord, TrafficCounters, TrafficLog, Unavailability};

mod traffic;

/// Everything that can happen.
#[derive(Debug, Clone, Copy)]
enum Event {
    /// Prober `slot` sends a probe.
    ProbeSend {
        slot: u32,
    },
    /// The verdict of a probe sent at `sent_at` reaches prober `slot`.
    ProbeVerdict {
        slot: u32,
        sent_at: SimTime,
        ok: bool,
        reason: Option<Reason>,
        status: Option<u16>,
    },
    /// A status change reaches the data plane of `node`.
    ApplyHealth {
        node: u32,
        role: Role,
        health: Health,
    },
    FaultStart {
        fault: u32,
    },
    FaultEnd {
        fault: u32,
    },
    /// A flap fault enters its down (`down = true`) or up phase.
    FlapEdge {
        fault: u32,
        down: bool,
    },
    /// The arrival rate changes to step `step` of the schedule.
    RateStep {
        step: u32,
    },
    /// A new client connection (stale when `generation` is not the current one).
    Arrival {
        generation: u32,
    },
    /// A connection's lifetime is over.
    ConnEnd {
        id: ConnId,
    },
    /// A connection drain on (`node`, `role`) times out (stale if `epoch` moved on).
    DrainDeadline {
        node: u32,
        role: Role,
        epoch: u32,
    },
    /// A QUIC connection switches `path` to a new CID.
    QuicRotate {
        id: ConnId,
        path: u8,
    },
    /// A QUIC client migrates `path` to a new address (and CID).
    QuicMigrate {
        id: ConnId,
        path: u8,
    },
}

/// A member's status change in one node's view.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition {
    pub at: SimTime,
    pub lb_node: u32,
    pub member: Role,
    pub to: Health,
    /// The failure reason of the deciding probe (OFFLINE only).
    pub reason: Option<Reason>,
    /// Status code received, for RESPONSE_MISMATCH.
    pub status: Option<u16>,
    /// When the deciding probe went out: faults are attributed by it.
    pub probe_sent_at: SimTime,
}

/// A change of where one node sends new connections.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RouteLog {
    pub at: SimTime,
    pub lb_node: u32,
    pub from: Target,
    pub to: Target,
}

/// One probe verdict, kept only for `--timeline`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VerdictLog {
    pub at: SimTime,
    pub lb_node: u32,
    pub member: Role,
    pub ok: bool,
    pub reason: Option<Reason>,
}

/// What a run produced; the report is computed from it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunLog {
    /// Events processed.
    pub events: u64,
    pub transitions: Vec<Transition>,
    pub routes: Vec<RouteLog>,
    /// Every verdict, when asked for.
    pub verdicts: Vec<VerdictLog>,
    /// What clients saw, when the scenario has traffic.
    pub traffic: Option<TrafficLog>,
}

/// Options of one run that are not part of the scenario.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    pub seed: u64,
    /// Trial index: selects independent random streams.
    pub trial: u64,
    /// Keep every verdict (for `--timeline`).
    pub record_verdicts: bool,
    /// Stop early once nothing can change any more (see [`quiet_from`]); `trials` uses it, `run`
    /// does not, so that its event count covers the whole run.
    pub stop_when_quiet: bool,
}

/// The instant after which a run can no longer change, if it has one: every fault has ended, the
/// probe path has no randomness (a fixed RTT within the timeout, no loss) and no client traffic
/// runs. From then on, once every member is ONLINE everywhere and no failing verdict or route
/// update is in flight, every probe succeeds and nothing more happens.
pub fn quiet_from(cfg: &SimConfig) -> Option<SimTime> {
    let deterministic = matches!(cfg.network.rtt, Rtt::Fixed(r) if r <= cfg.check.timeout)
        && cfg.network.loss == 0.0
        && cfg.traffic.is_none();
    if !deterministic {
        return None;
    }
    cfg.faults
        .iter()
        .try_fold(SimTime::ZERO, |acc, f| f.until.map(|u| acc.max(u)))
}

/// The engine's state for one run.
struct Engine<'a> {
    cfg: &'a SimConfig,
    opts: RunOptions,
    queue: EventQueue<Event>,
    probers: Vec<Prober>,
    routers: Vec<Router>,
    /// The fault-driven condition of master and slave.
    conditions: [Condition; 2],
    /// Per fault: active now, and (flap) in its down phase.
    active: Vec<bool>,
    flap_down: Vec<bool>,
    rtt: RttSampler,
    probes_rng: ChaCha8Rng,
    traffic: Option<Traffic>,
    /// Failing verdicts and route updates in flight, for the quiescence check.
    pending_failures: u32,
    pending_updates: u32,
    log: RunLog,
}

/// Runs one scenario to its end.
pub fn run(cfg: &SimConfig, opts: RunOptions) -> RunLog {
    let mut e = Engine::new(cfg, opts);
    e.start();
    e.run_loop();
    e.finish_traffic(SimTime::ZERO + cfg.duration);
    let mut log = e.log;
    log.traffic = e.traffic.map(|t| t.log);
    log
}

impl<'a> Engine<'a> {
    fn new(cfg: &'a SimConfig, opts: RunOptions) -> Self {
        let initial = match cfg.model.initial_state {
            InitialState::Online => Health::Online,
            InitialState::Initial => Health::Offline,
        };
        let nodes = cfg.lb_nodes.max(1) as usize;
        let checker = HealthChecker::new(cfg.check.rise, cfg.check.fall, initial);
        let prober = Prober::new(cfg.model.probe_schedule, cfg.check.delay, checker);
        let router = Router::new(initial, initial, cfg.model.all_down, cfg.model.failback);
        Engine {
            cfg,
            opts,
            queue: EventQueue::with_capacity(nodes * 4 + cfg.faults.len() * 2 + 8),
            probers: vec![prober; nodes * 2],
            routers: vec![router; nodes],
            conditions: [Condition::default(); 2],
            active: vec![false; cfg.faults.len()],
            flap_down: vec![false; cfg.faults.len()],
            rtt: RttSampler::new(cfg.network.rtt),
            probes_rng: rng::stream(opts.seed, opts.trial, Purpose::Probes),
            traffic: cfg
                .traffic
                .as_ref()
                .map(|t| Traffic::new(cfg, t, opts.seed, opts.trial)),
            pending_failures: 0,
            pending_updates: 0,
            log: RunLog::default(),
        }
    }

    fn start(&mut self) {
        for slot in 0..self.probers.len() {
            let phase = rng::unit(&mut self.probes_rng);
            let at = self.probers[slot].first_probe_at(phase);
            self.queue.push(at, Event::ProbeSend { slot: slot as u32 });
        }
        for (i, f) in self.cfg.faults.iter().enumerate() {
            let fault = i as u32;
            self.queue.push(f.at, Event::FaultStart { fault });
            if let Some(until) = f.until {
                self.queue.push(until, Event::FaultEnd { fault });
            }
        }
        self.start_traffic();
    }

    fn run_loop(&mut self) {
        let end = SimTime::ZERO + self.cfg.duration;
        let quiet = if self.opts.stop_when_quiet {
            quiet_from(self.cfg).unwrap_or(SimTime(u64::MAX))
        } else {
            SimTime(u64::MAX)
        };
        while let Some((now, event)) = self.queue.pop() {
            if now > end {
                break;
            }
            self.log.events += 1;
            self.handle(now, event);
            if now >= quiet && self.is_quiet() {
                break;
            }
        }
    }

    /// Every member ONLINE in every view, nothing in flight that could change that.
    fn is_quiet(&self) -> bool {
        self.pending_failures == 0
            && self.pending_updates == 0
            && self.probers.iter().all(|p| p.status() == Health::Online)
    }

    #[inline]
    fn handle(&mut self, now: SimTime, event: Event) {
        match event {
            Event::ProbeSend { slot } => self.on_probe_send(now, slot),
            Event::ProbeVerdict {
                slot,
                sent_at,
                ok,
                reason,
                status,
            } => self.on_verdict(now, slot, sent_at, ok, reason, status),
            Event::ApplyHealth { node, role, health } => {
                self.pending_updates -= 1;
                self.on_health_applied(now, node, role, health);
                if let Some(change) = self.routers[node as usize].on_health(role, health) {
                    tracing::debug!(at = %now, node, from = change.from.as_str(), to = change.to.as_str(), "route change");
                    self.log.routes.push(RouteLog {
                        at: now,
                        lb_node: node,
                        from: change.from,
                        to: change.to,
                    });
                    self.on_route_change(now, node, change.from, change.to);
                }
            }
            Event::FaultStart { fault } => {
                self.active[fault as usize] = true;
                let f = self.cfg.faults[fault as usize];
                tracing::debug!(at = %now, kind = f.kind.name(), member = f.member.as_str(), "fault starts");
                if let FaultKind::Flap { .. } = f.kind {
                    self.queue.push(now, Event::FlapEdge { fault, down: true });
                }
                self.rebuild_condition(now, f.member);
            }
            Event::FaultEnd { fault } => {
                self.active[fault as usize] = false;
                self.flap_down[fault as usize] = false;
                let f = self.cfg.faults[fault as usize];
                tracing::debug!(at = %now, kind = f.kind.name(), member = f.member.as_str(), "fault ends");
                self.rebuild_condition(now, f.member);
            }
            Event::FlapEdge { fault, down } => {
                if !self.active[fault as usize] {
                    return;
                }
                let f = self.cfg.faults[fault as usize];
                if let FaultKind::Flap { period, down: frac } = f.kind {
                    self.flap_down[fault as usize] = down;
                    let down_span = SimDuration((period.0 as f64 * frac) as u64);
                    let (next, span) = if down {
                        (false, down_span)
                    } else {
                        (true, period - down_span)
                    };
                    // A zero-length phase is skipped by scheduling the next edge at once.
                    self.queue
                        .push(now + span, Event::FlapEdge { fault, down: next });
                    self.rebuild_condition(now, f.member);
                }
            }
            Event::RateStep { step } => self.on_rate_step(now, step),
            Event::Arrival { generation } => self.on_arrival(now, generation),
            Event::ConnEnd { id } => self.on_conn_end(now, id),
            Event::DrainDeadline { node, role, epoch } => {
                self.on_drain_deadline(now, node, role, epoch)
            }
            Event::QuicRotate { id, path } => self.on_quic_rotate(now, id, path),
            Event::QuicMigrate { id, path } => self.on_quic_migrate(now, id, path),
        }
    }

    #[inline]
    fn on_probe_send(&mut self, now: SimTime, slot: u32) {
        let role = if slot.is_multiple_of(2) {
            Role::Master
        } else {
            Role::Slave
        };
        let cond = self.conditions[role.index()];
        let rtt = self.rtt.draw(&mut self.probes_rng);
        let lost = network::lost(&self.cfg.network, cond.loss, &mut self.probes_rng);
        let (after, v) = probe::judge(
            self.cfg.check.kind,
            self.cfg.check.timeout,
            &cond,
            rtt,
            lost,
        );
        self.pending_failures += u32::from(!v.ok);
        self.queue.push(
            now + after,
            Event::ProbeVerdict {
                slot,
                sent_at: now,
                ok: v.ok,
                reason: v.reason,
                status: v.status,
            },
        );
        if let Some(next) = self.probers[slot as usize].on_sent(now) {
            self.queue.push(next, Event::ProbeSend { slot });
        }
    }

    #[inline]
    fn on_verdict(
        &mut self,
        now: SimTime,
        slot: u32,
        sent_at: SimTime,
        ok: bool,
        reason: Option<Reason>,
        status: Option<u16>,
    ) {
        self.pending_failures -= u32::from(!ok);
        let node = slot / 2;
        let role = if slot.is_multiple_of(2) {
            Role::Master
        } else {
            Role::Slave
        };
        let effect = self.probers[slot as usize].on_verdict(now, ok);
        if let Some(next) = effect.next_probe_at {
            self.queue.push(next, Event::ProbeSend { slot });
        }
        if self.opts.record_verdicts {
            self.log.verdicts.push(VerdictLog {
                at: now,
                lb_node: node,
                member: role,
                ok,
                reason,
            });
        }
        if let Some(health) = effect.transition {
            tracing::debug!(at = %now, node, member = role.as_str(), to = health.as_str(), reason = reason.map(Reason::as_str), "member status");
            self.log.transitions.push(Transition {
                at: now,
                lb_node: node,
                member: role,
                to: health,
                reason,
                status,
                probe_sent_at: sent_at,
            });
            self.pending_updates += 1;
            self.queue.push(
                now + self.cfg.model.route_update_delay,
                Event::ApplyHealth { node, role, health },
            );
        }
    }

    /// Recomputes a member's condition from the faults active on it now.
    fn rebuild_condition(&mut self, now: SimTime, member: Role) {
        let was_down = self.conditions[member.index()].is_down();
        let mut c = Condition::default();
        for (i, f) in self.cfg.faults.iter().enumerate() {
            if f.member != member || !self.active[i] {
                continue;
            }
            match f.kind {
                FaultKind::Crash => c.crashed = true,
                FaultKind::HostDown => c.host_down = true,
                FaultKind::Hang => c.hang = true,
                FaultKind::HttpStatus { status, expected } => {
                    c.http_status = Some((status, expected))
                }
                FaultKind::Slow { latency } => c.extra_latency = c.extra_latency + latency,
                FaultKind::Loss { probability } => {
                    c.loss = 1.0 - (1.0 - c.loss) * (1.0 - probability)
                }
                FaultKind::MonitorPortDown => c.monitor_port_down = true,
                FaultKind::TlsError => c.tls_error = true,
                FaultKind::Flap { .. } => c.crashed |= self.flap_down[i],
            }
        }
        self.conditions[member.index()] = c;
        if c.is_down() && !was_down {
            self.break_member(now, member);
        }
    }
}
