//! The discrete-event run loop: drives the health checkers and routers of every LB node.
//!
//! One closed [`Event`] enum, matched exhaustively; events are small `Copy` values in a binary heap
//! keyed on `(time, seq)`, so the loop allocates nothing per event once the heap has grown (the
//! log below grows only on status and route changes, and per verdict only with `--timeline`).
//!
//! Slots: prober `p = node * 2 + role` for every (LB node, member) pair.
//!
//! A probe is judged by its member's condition at the instant it is sent, and that condition is a
//! pure function of the clock and the (static) fault list ([`condition_at`]). So under
//! after_completion, a verdict sends the next probe at once, for `delay` later, and schedules only
//! that probe's verdict: one event per probe instead of two. `ProbeSend` events remain for each
//! prober's first probe and for the fixed_rate schedule, whose sends do not wait for verdicts.
//!
//! A verdict reaches the router `route_update_delay` after it is given (an `ApplyHealth` event);
//! with a zero delay it is still an event, at the same instant, so the order of effects does not
//! depend on the setting.

use super::config::{Fault, FaultKind, InitialState, Rtt, SimConfig};
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
    /// True when [`RunOptions::interrupt`] stopped the run before its end: the log covers the
    /// run up to then only.
    pub interrupted: bool,
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
    /// A flag (set by a Ctrl-C handler) that stops the run; checked every
    /// 4096 events, so that one long run cannot outlast an interrupt.
    pub interrupt: Option<&'static std::sync::atomic::AtomicBool>,
}

/// How often (in events) the run loop looks at [`RunOptions::interrupt`]: rare enough to cost
/// nothing measurable, often enough to stop within milliseconds.
const INTERRUPT_CHECK_EVENTS: u64 = 4096;

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
    /// The faults of master and slave, for [`condition_at`].
    member_faults: [Vec<Fault>; 2],
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
            member_faults: Role::BOTH.map(|r| {
                cfg.faults
                    .iter()
                    .filter(|f| f.member == r)
                    .copied()
                    .collect()
            }),
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
            if self.log.events.is_multiple_of(INTERRUPT_CHECK_EVENTS)
                && self
                    .opts
                    .interrupt
                    .is_some_and(|f| f.load(std::sync::atomic::Ordering::Relaxed))
            {
                self.log.interrupted = true;
                break;
            }
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
                let f = self.cfg.faults[fault as usize];
                tracing::debug!(at = %now, kind = f.kind.name(), member = f.member.as_str(), "fault starts");
                if let FaultKind::Flap { .. } = f.kind {
                    self.queue.push(now, Event::FlapEdge { fault, down: true });
                }
                self.rebuild_condition(now, f.member);
            }
            Event::FaultEnd { fault } => {
                let f = self.cfg.faults[fault as usize];
                tracing::debug!(at = %now, kind = f.kind.name(), member = f.member.as_str(), "fault ends");
                self.rebuild_condition(now, f.member);
            }
            Event::FlapEdge { fault, down } => {
                // Flap phases are computed from the clock (`condition_at`); this event only
                // wakes the engine at each edge, so that open connections break when one begins.
                let f = self.cfg.faults[fault as usize];
                if f.until.is_some_and(|u| now >= u) {
                    return;
                }
                if let FaultKind::Flap { period, down: frac } = f.kind {
                    let down_span = flap_down_span(period, frac);
                    let (next, span) = if down {
                        (false, down_span)
                    } else {
                        (true, period - down_span)
                    };
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

    /// A `ProbeSend` event: the first probe of each prober, and every probe under fixed_rate.
    #[inline]
    fn on_probe_send(&mut self, now: SimTime, slot: u32) {
        self.send_probe(now, slot);
        if let Some(next) = self.probers[slot as usize].on_sent(now) {
            self.queue.push(next, Event::ProbeSend { slot });
        }
    }

    /// Sends prober `slot`'s probe at `at` (now, or a later instant already decided) and
    /// schedules its verdict. A probe is judged by the member's condition at `at`, which is a
    /// function of the clock ([`condition_at`]), so under after_completion the next probe is
    /// sent straight from the previous verdict without an event of its own.
    #[inline]
    fn send_probe(&mut self, at: SimTime, slot: u32) {
        let role = if slot.is_multiple_of(2) {
            Role::Master
        } else {
            Role::Slave
        };
        let cond = condition_at(&self.member_faults[role.index()], at);
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
            at + after,
            Event::ProbeVerdict {
                slot,
                sent_at: at,
                ok: v.ok,
                reason: v.reason,
                status: v.status,
            },
        );
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
            self.send_probe(next, slot);
        }
        tracing::trace!(at = %now, node, member = role.as_str(), ok, reason = reason.map(Reason::as_str), "verdict");
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

    /// Recomputes a member's condition at a fault edge; open connections break when the
    /// member really fails.
    fn rebuild_condition(&mut self, now: SimTime, member: Role) {
        let was_down = self.conditions[member.index()].is_down();
        let c = condition_at(&self.member_faults[member.index()], now);
        self.conditions[member.index()] = c;
        if c.is_down() && !was_down {
            self.break_member(now, member);
        }
    }
}

/// The length of a flap's down phase in each period.
fn flap_down_span(period: SimDuration, down: f64) -> SimDuration {
    SimDuration((period.0 as f64 * down) as u64)
}

/// A member's condition at `t`: the combination of its faults active then (`at <= t < until`).
/// A flap is down during the first `down` of each period from its start.
pub fn condition_at(faults: &[Fault], t: SimTime) -> Condition {
    let mut c = Condition::default();
    for f in faults {
        if t < f.at || f.until.is_some_and(|u| t >= u) {
            continue;
        }
        match f.kind {
            FaultKind::Crash => c.crashed = true,
            FaultKind::HostDown => c.host_down = true,
            FaultKind::Hang => c.hang = true,
            FaultKind::HttpStatus { status, expected } => c.http_status = Some((status, expected)),
            FaultKind::Slow { latency } => c.extra_latency = c.extra_latency + latency,
            FaultKind::Loss { probability } => c.loss = 1.0 - (1.0 - c.loss) * (1.0 - probability),
            FaultKind::MonitorPortDown => c.monitor_port_down = true,
            FaultKind::TlsError => c.tls_error = true,
            FaultKind::Flap { period, down } => {
                let phase = t.since(f.at).0 % period.0.max(1);
                c.crashed |= phase < flap_down_span(period, down).0;
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(kind: FaultKind, at: u64, until: Option<u64>) -> Fault {
        Fault {
            member: Role::Master,
            kind,
            at: SimTime::ZERO + SimDuration::from_secs(at),
            until: until.map(|u| SimTime::ZERO + SimDuration::from_secs(u)),
        }
    }

    fn at(s: f64) -> SimTime {
        SimTime::ZERO + SimDuration::from_secs_f64(s)
    }

    #[test]
    fn faults_are_active_from_at_until_until() {
        let f = [fault(FaultKind::Crash, 10, Some(20))];
        assert!(!condition_at(&f, at(9.999)).crashed);
        assert!(condition_at(&f, at(10.0)).crashed);
        assert!(condition_at(&f, at(19.999)).crashed);
        assert!(!condition_at(&f, at(20.0)).crashed);
    }

    #[test]
    fn flaps_are_down_for_their_fraction_of_each_period() {
        let flap = FaultKind::Flap {
            period: SimDuration::from_secs(10),
            down: 0.3,
        };
        let f = [fault(flap, 100, None)];
        for (t, down) in [
            (100.0, true),
            (102.9, true),
            (103.0, false),
            (109.9, false),
            (110.0, true),
        ] {
            assert_eq!(condition_at(&f, at(t)).crashed, down, "at {t}");
        }
    }

    #[test]
    fn overlapping_faults_combine() {
        let f = [
            fault(FaultKind::Loss { probability: 0.5 }, 0, None),
            fault(FaultKind::Loss { probability: 0.5 }, 0, None),
            fault(
                FaultKind::Slow {
                    latency: SimDuration::from_secs(1),
                },
                0,
                None,
            ),
            fault(
                FaultKind::Slow {
                    latency: SimDuration::from_secs(2),
                },
                0,
                None,
            ),
        ];
        let c = condition_at(&f, at(1.0));
        assert!((c.loss - 0.75).abs() < 1e-12);
        assert_eq!(c.extra_latency, SimDuration::from_secs(3));
    }
}
