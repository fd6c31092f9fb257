//! The discrete-event run loop: drives one [`LbNode`] per LB node in simulated time.
//!
//! The engine is a driver: every decision of the load balancer (health status, route, drain,
//! failback reset, persistence, CID routing) is made by `crate::model::lb_node`; the engine owns
//! the clock, the event queue, the random streams and the simulated world (`super::world`: how a
//! faulty member answers probes and clients), and writes the one log type ([`RunLog`]) that
//! `crate::report` reads.
//!
//! One closed [`Event`] enum, matched exhaustively; events are packed into two words
//! (`event::Packed`) in the `(time, seq)` queue of `super::queue` (an in-order lane for the
//! probes' stream beside a heap), so the loop allocates nothing per event once the queue has
//! grown (the log below grows only on status and route changes, and per verdict only with
//! `--timeline`).
//!
//! Slots: prober `p = node * 2 + role` for every (LB node, member) pair.
//!
//! A probe is judged by its member's condition at the instant it is sent, and that condition is a
//! pure function of the clock and the (static) fault list ([`condition_at`]). So under
//! after_completion, a verdict sends the next probe at once, for `delay` later, and schedules only
//! that probe's verdict: one event per probe instead of two. `ProbeSend` events remain for each
//! prober's first probe and for the fixed_rate schedule, whose sends do not wait for verdicts.
//!
//! A verdict reaches the data plane `route_update_delay` after it is given (a node timer the
//! `LbNode` asks for); with a zero delay it is still an event, at the same instant, so the order
//! of effects does not depend on the setting.
//!
//! Limits (`SimConfig::limits`, `docs/limits.md`): the run stops, with [`RunLog::stopped`] saying
//! why, when it reaches its event budget, its cap on open connections, persistence entries or
//! log entries, or when the interrupt flag is raised (checked every [`INTERRUPT_EVERY`] events).

use super::config::{FaultKind, Rtt, SimConfig};
use super::network::{self, RttSampler};
use super::queue::EventQueue;
use super::rng::{self, Purpose};
use super::world::{self, condition_at, Condition, Lost};
use crate::model::health::Health;
use crate::model::lb_node::{Action, LbNode, LbNodeConfig, Timer};
use crate::model::probe::{ProbeKind, Reason};
use crate::model::profile::{Judging, Profile};
use crate::model::router::{AllDown, Failback};
use crate::model::router::{Role, Target};
use crate::sim::config::{FailbackSessions, Fault};
use crate::time::{SimDuration, SimTime};
use event::{Event, Packed};
use rand_chacha::ChaCha8Rng;
use std::sync::atomic::{AtomicBool, Ordering};
use traffic::Traffic;
pub use traffic::{
    recovery_window, status_fails_requests, Counter, DrainRecord, FailureSeries, FailureSpan,
    FaultCharging, PersistedReturn, TrafficCounters, TrafficLog, Unavailability,
};

mod event;
mod traffic;

/// Events between two looks at the interrupt flag: cheap, and a Ctrl-C is seen within
/// microseconds of simulated work.
pub const INTERRUPT_EVERY: u64 = 4096;

const NO_CAUSE: u32 = u32::MAX;

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
    /// Back to a master that is ONLINE in this node's view (not a fail-open).
    pub failback: bool,
    /// The status change (index in [`RunLog::transitions`]) whose arrival in the data plane made
    /// this change.
    pub cause: Option<u32>,
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

/// Which limit a run reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    Events,
    OpenConnections,
    PersistenceEntries,
    LogEntries,
}

impl LimitKind {
    /// The `[limits]` key that raises it.
    pub fn key(self) -> &'static str {
        match self {
            LimitKind::Events => "max_events",
            LimitKind::OpenConnections => "max_open_connections",
            LimitKind::PersistenceEntries => "max_persistence_entries",
            LimitKind::LogEntries => "max_log_entries",
        }
    }

    /// What is counted, for messages.
    pub fn what(self) -> &'static str {
        match self {
            LimitKind::Events => "events",
            LimitKind::OpenConnections => "client connections open at once",
            LimitKind::PersistenceEntries => "SOURCE_IP persistence entries",
            LimitKind::LogEntries => "logged status changes, route changes and verdicts",
        }
    }
}

/// Why a run stopped before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The interrupt flag (Ctrl-C) was raised.
    Interrupted { at: SimTime },
    /// A limit was reached.
    Limit {
        kind: LimitKind,
        limit: u64,
        at: SimTime,
    },
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Stopped::Interrupted { at } => write!(f, "interrupted at {at} of simulated time"),
            Stopped::Limit { kind, limit, at } => write!(
                f,
                "the run reached its limit of {limit} {} at {at} of simulated time; \
                 shorten `duration`, lower `lb_nodes` or the traffic rate, or raise \
                 `[limits] {}` (at most {})",
                kind.what(),
                kind.key(),
                kind.hard_max()
            ),
        }
    }
}

impl LimitKind {
    /// The hard ceiling of this limit.
    pub fn hard_max(self) -> u64 {
        let h = super::config::Limits::HARD;
        match self {
            LimitKind::Events => h.max_events,
            LimitKind::OpenConnections => h.max_open_connections,
            LimitKind::PersistenceEntries => h.max_persistence_entries,
            LimitKind::LogEntries => h.max_log_entries,
        }
    }
}

/// What a run produced; the report is computed from it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunLog {
    /// Events processed.
    pub events: u64,
    /// Status changes, in time order.
    pub transitions: Vec<Transition>,
    /// Route changes, in time order.
    pub routes: Vec<RouteLog>,
    /// Every verdict, when asked for.
    pub verdicts: Vec<VerdictLog>,
    /// What clients saw, when the scenario has traffic.
    pub traffic: Option<TrafficLog>,
    /// Set when the run stopped before its end; the log covers the run up to then.
    pub stopped: Option<Stopped>,
    /// The simulated instant the log covers up to (the end of the run, or where it stopped).
    pub end: SimTime,
}

/// Options of one run that are not part of the scenario.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions<'a> {
    pub seed: u64,
    /// Trial index: selects independent random streams.
    pub trial: u64,
    /// Keep every verdict (for `--timeline`).
    pub record_verdicts: bool,
    /// Stop early once nothing can change any more (see [`quiet_from`]); `trials` uses it, `run`
    /// does not, so that its event count covers the whole run.
    pub stop_when_quiet: bool,
    /// Raised by a Ctrl-C handler: the run stops at the next look ([`INTERRUPT_EVERY`] events).
    pub interrupt: Option<&'a AtomicBool>,
    /// Keep client failures per second and LB node (`TrafficLog::failure_series`), for
    /// pictures; `run` does, `trials` does not.
    pub failure_series: bool,
}

/// The instant after which a run can no longer change, if it has one: every fault has ended, the
/// probe path has no randomness (a fixed RTT within the timeout, no loss) and no client traffic
/// runs. From then on, once every member is ONLINE everywhere and no failing verdict or route
/// update is in flight, every probe succeeds and nothing more happens.
pub fn quiet_from(cfg: &SimConfig) -> Option<SimTime> {
    let deterministic = matches!(cfg.network.rtt, Rtt::Fixed(r) if r <= cfg.judging().connect)
        && cfg.network.loss == 0.0
        && cfg.traffic.is_none();
    if !deterministic {
        return None;
    }
    cfg.faults
        .iter()
        .try_fold(SimTime::ZERO, |acc, f| f.until.map(|u| acc.max(u)))
}

/// The settings every node of a run shares.
pub fn node_config(cfg: &SimConfig) -> LbNodeConfig {
    let rules = cfg.rules();
    let envoy = match cfg.model.profile {
        Profile::Envoy(o) => Some(o.data_plane()),
        _ => None,
    };
    LbNodeConfig {
        envoy,
        schedule: cfg.model.probe_schedule,
        delay: cfg.check.delay,
        rise: rules.rise,
        fall: rules.fall,
        // The profile's start state (`initial_state = "initial"`: Huawei OFFLINE, HAProxy UP).
        initial: rules.initial,
        // envoy: priority levels decide (the scenario loader refuses other settings): a
        // recovered master always takes the traffic back, and with both down the panic
        // threshold fails open to both (reported as a fail-open to the master) or drops.
        all_down: match envoy {
            Some(dp)
                if dp.priority.healthy_panic_threshold > 0
                    && !dp.priority.fail_traffic_on_panic =>
            {
                AllDown::Master
            }
            Some(_) => AllDown::Drop,
            None => cfg.model.all_down,
        },
        failback: if envoy.is_some() {
            Failback::Preemptive
        } else {
            cfg.model.failback
        },
        reset_on_failback: cfg.model.failback_sessions == FailbackSessions::Reset,
        route_update_delay: cfg.model.route_update_delay,
        // A profile that closes a DOWN member's connections at once (HAProxy
        // `on-marked-down shutdown-sessions`, keepalived without `inhibit_on_failure`) drains
        // them with a zero timeout.
        drain: cfg.traffic.as_ref().and_then(|t| {
            if rules.close_on_down {
                Some(SimDuration::ZERO)
            } else {
                t.drain
            }
        }),
        persistence: cfg.traffic.as_ref().and_then(|t| t.persistence),
        rules,
    }
}

/// The engine's state for one run.
struct Engine<'a> {
    cfg: &'a SimConfig,
    opts: RunOptions<'a>,
    queue: EventQueue<Packed>,
    nodes: Vec<LbNode>,
    /// The fault-driven condition of master and slave.
    conditions: [Condition; 2],
    /// The faults of master and slave, for [`condition_at`].
    member_faults: [Vec<Fault>; 2],
    /// Per member: the condition over the span `[from, until)` last asked for. Probes of one
    /// member go out in nearly increasing time, so one span answers almost every probe.
    cond_cache: [(Condition, SimTime, SimTime); 2],
    /// Per member, over the same span: the verdict every probe gets when the probe path draws
    /// nothing (fixed RTT, no loss from the network or a fault), so that such probes skip the
    /// judging (which would draw nothing either: the random streams are unchanged).
    verdict_cache: [Option<(SimDuration, crate::model::probe::Verdict)>; 2],
    /// The network draws nothing for a probe: fixed RTT, no loss.
    quiet_network: bool,
    rtt: RttSampler,
    probes_rng: ChaCha8Rng,
    /// The profile's probe-phase bounds.
    judging: Judging,
    /// Jitter draws, when the profile has jitter.
    jitter_rng: Option<ChaCha8Rng>,
    /// envoy's data-plane draws (route hash, outlier), when the profile is envoy.
    passive_rng: Option<ChaCha8Rng>,
    traffic: Option<Traffic>,
    /// Failing verdicts and route updates in flight, for the quiescence check.
    pending_failures: u32,
    pending_updates: u32,
    /// Entries logged so far, against `limits.max_log_entries`.
    log_entries: u64,
    log: RunLog,
}

/// Runs one scenario to its end (or to a limit, or an interrupt: see [`RunLog::stopped`]).
pub fn run<'a>(cfg: &'a SimConfig, opts: RunOptions<'a>) -> RunLog {
    let mut e = Engine::new(cfg, opts);
    e.start();
    let end = e.run_loop();
    e.finish_traffic(end);
    let mut log = e.log;
    log.end = end;
    log.traffic = e.traffic.map(|t| t.log);
    log
}

impl<'a> Engine<'a> {
    fn new(cfg: &'a SimConfig, opts: RunOptions<'a>) -> Self {
        let nodes = cfg.lb_nodes.max(1) as usize;
        let node_cfg = node_config(cfg);
        Engine {
            cfg,
            opts,
            queue: EventQueue::with_capacity(nodes * 4 + cfg.faults.len() * 2 + 8),
            nodes: vec![LbNode::new(node_cfg); nodes],
            conditions: [Condition::default(); 2],
            cond_cache: [(Condition::default(), SimTime(1), SimTime(0)); 2],
            verdict_cache: [None; 2],
            quiet_network: matches!(cfg.network.rtt, Rtt::Fixed(_)) && cfg.network.loss == 0.0,
            member_faults: Role::BOTH.map(|r| {
                cfg.faults
                    .iter()
                    .filter(|f| f.member == r)
                    .copied()
                    .collect()
            }),
            rtt: RttSampler::new(cfg.network.rtt),
            probes_rng: rng::stream(opts.seed, opts.trial, Purpose::Probes),
            judging: node_cfg.rules.judging,
            jitter_rng: node_cfg
                .rules
                .needs_draw()
                .then(|| rng::stream(opts.seed, opts.trial, Purpose::Jitter)),
            passive_rng: node_cfg
                .envoy
                .map(|_| rng::stream(opts.seed, opts.trial, Purpose::Passive)),
            traffic: cfg
                .traffic
                .as_ref()
                .map(|_| Traffic::new(cfg, opts.seed, opts.trial, opts.failure_series)),
            pending_failures: 0,
            pending_updates: 0,
            log_entries: 0,
            log: RunLog::default(),
        }
    }

    fn start(&mut self) {
        // One phase draw per prober, in slot order (node * 2 + role), as always.
        for node in 0..self.nodes.len() {
            let m = rng::unit(&mut self.probes_rng);
            let s = rng::unit(&mut self.probes_rng);
            let at = self.nodes[node].first_probes_at([m, s]);
            for (r, at) in at.into_iter().enumerate() {
                let slot = (node * 2 + r) as u32;
                self.queue.push(at, Event::ProbeSend { slot });
            }
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

    /// Runs events until the end, quiescence, a limit or an interrupt; returns the instant the
    /// run covers up to.
    fn run_loop(&mut self) -> SimTime {
        let end = SimTime::ZERO + self.cfg.duration;
        let quiet = if self.opts.stop_when_quiet {
            quiet_from(self.cfg).unwrap_or(SimTime(u64::MAX))
        } else {
            SimTime(u64::MAX)
        };
        let max_events = self.cfg.limits.max_events;
        let mut last = SimTime::ZERO;
        while let Some((now, packed)) = self.queue.pop() {
            let event = Event::from(packed);
            if now > end {
                break;
            }
            debug_assert!(now >= last, "time went backwards: {now} after {last}");
            last = now;
            if self.log.events == max_events {
                self.stop(Stopped::Limit {
                    kind: LimitKind::Events,
                    limit: max_events,
                    at: now,
                });
                return now;
            }
            self.log.events += 1;
            if self.log.events.is_multiple_of(INTERRUPT_EVERY)
                && self
                    .opts
                    .interrupt
                    .is_some_and(|f| f.load(Ordering::Relaxed))
            {
                self.stop(Stopped::Interrupted { at: now });
            }
            self.handle(now, event);
            if self.log.stopped.is_some() {
                return now;
            }
            if now >= quiet && self.is_quiet() {
                break;
            }
        }
        end
    }

    /// Stops the run (the first reason wins).
    fn stop(&mut self, why: Stopped) {
        self.log.stopped.get_or_insert(why);
    }

    /// Counts `n` more log entries against the limit.
    #[inline]
    fn count_log(&mut self, now: SimTime, n: u64) {
        self.log_entries += n;
        let limit = self.cfg.limits.max_log_entries;
        if self.log_entries > limit {
            self.stop(Stopped::Limit {
                kind: LimitKind::LogEntries,
                limit,
                at: now,
            });
        }
    }

    /// Every member ONLINE in every view, nothing in flight that could change that.
    fn is_quiet(&self) -> bool {
        self.pending_failures == 0
            && self.pending_updates == 0
            && self
                .nodes
                .iter()
                // Quiescence is only tested without client traffic, where envoy's outlier
                // detection ejects nothing: the active checks' status is the status.
                .all(|n| {
                    Role::BOTH
                        .iter()
                        .all(|&r| n.active_status(r) == Health::Online)
                })
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
            Event::NodeTimer { node, timer, cause } => {
                if let Timer::ApplyHealth { .. } = timer {
                    debug_assert!(self.pending_updates > 0);
                    self.pending_updates -= 1;
                }
                self.nodes[node as usize].handle_timer(now, timer);
                self.node_actions(now, node, cause);
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
                    let down_span = world::flap_down_span(period, frac);
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
            Event::ConnEnd { node, id } => self.on_conn_end(now, node, id),
            Event::QuicRotate { node, id, path } => self.on_quic_rotate(now, node, id, path),
            Event::QuicMigrate { node, id, path } => self.on_quic_migrate(now, node, id, path),
            Event::ClientRequest {
                node,
                member,
                generation,
            } => self.on_client_request(now, node, member, generation),
        }
    }

    /// Carries out what node `node` asked for; `cause` is the status change behind it.
    fn node_actions(&mut self, now: SimTime, node: u32, mut cause: u32) {
        while let Some(action) = self.nodes[node as usize].poll_action() {
            match action {
                Action::StatusChanged {
                    role,
                    health,
                    reason,
                    status,
                } => {
                    // envoy's passive side (outlier detection, the immediate-fail header): a
                    // status change of its own, the cause of the route update queued next.
                    tracing::debug!(at = %now, node, member = role.as_str(), to = health.as_str(), reason = reason.map(Reason::as_str), "member status (passive)");
                    cause = self.log.transitions.len() as u32;
                    self.log.transitions.push(Transition {
                        at: now,
                        lb_node: node,
                        member: role,
                        to: health,
                        reason,
                        status,
                        probe_sent_at: now,
                    });
                    self.count_log(now, 1);
                    if health == Health::Online {
                        self.start_requests(now, node, role);
                    }
                }
                Action::SetTimer { at, timer } => {
                    if let Timer::ApplyHealth { .. } = timer {
                        self.pending_updates += 1;
                        // `route_update_delay` after a verdict: part of the probes' stream.
                        self.queue
                            .push_in_order(at, Event::NodeTimer { node, timer, cause });
                    } else {
                        // A drain deadline, far ahead: the heap.
                        self.queue.push(at, Event::NodeTimer { node, timer, cause });
                    }
                }
                Action::RouteChanged { change, failback } => {
                    tracing::debug!(at = %now, node, from = change.from.as_str(), to = change.to.as_str(), "route change");
                    self.log.routes.push(RouteLog {
                        at: now,
                        lb_node: node,
                        from: change.from,
                        to: change.to,
                        failback,
                        cause: (cause != NO_CAUSE).then_some(cause),
                    });
                    self.count_log(now, 1);
                    self.on_route_change(now, node, failback);
                }
                Action::DrainStarted { role, deadline: _ } => {
                    self.on_drain_started(now, node, role)
                }
                Action::DrainCancelled { role } => self.on_drain_cancelled(node, role),
                Action::DrainEnded { role, closed } => self.on_drain_ended(now, node, role, closed),
                Action::Closed { conn, why } => self.on_lb_closed(now, node, conn, why),
            }
        }
    }

    /// A `ProbeSend` event: the first probe of each prober, and every probe under fixed_rate.
    #[inline]
    fn on_probe_send(&mut self, now: SimTime, slot: u32) {
        self.send_probe(now, slot);
        let (node, role) = slot_parts(slot);
        if let Some(next) = self.nodes[node as usize].handle_probe_sent(now, role) {
            self.queue.push_in_order(next, Event::ProbeSend { slot });
        }
    }

    /// Sends prober `slot`'s probe at `at` (now, or a later instant already decided) and
    /// schedules its verdict. A probe is judged by the member's condition at `at`, which is a
    /// function of the clock ([`condition_at`]), so under after_completion the next probe is
    /// sent straight from the previous verdict without an event of its own.
    #[inline]
    fn send_probe(&mut self, at: SimTime, slot: u32) {
        let (_, role) = slot_parts(slot);
        let r = role.index();
        let (_, from, until) = self.cond_cache[r];
        if at < from || at >= until {
            self.refresh_condition(r, at);
        }
        if let Some((after, v)) = self.verdict_cache[r] {
            self.pending_failures += u32::from(!v.ok);
            self.queue.push_in_order(
                at + after,
                Event::ProbeVerdict {
                    slot,
                    sent_at: at,
                    ok: v.ok,
                    reason: v.reason,
                    status: v.status,
                },
            );
            return;
        }
        let cond = self.cond_cache[r].0;
        let rtt = self.rtt.draw(&mut self.probes_rng);
        let kind = self.cfg.check.kind;
        let lost = Lost {
            first: network::lost(&self.cfg.network, cond.loss, &mut self.probes_rng),
            // UDP_CONNECT's second exchange; other checks have none, and draw nothing for it.
            udp_probe: kind == ProbeKind::UdpConnect
                && network::lost(&self.cfg.network, cond.loss, &mut self.probes_rng),
        };
        let (after, v) = world::judge(kind, &self.judging, &cond, rtt, lost);
        self.pending_failures += u32::from(!v.ok);
        self.queue.push_in_order(
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

    /// Recomputes member `r`'s condition span around `at`, and its fixed verdict when probes
    /// draw nothing.
    #[cold]
    fn refresh_condition(&mut self, r: usize, at: SimTime) {
        let span = world::condition_span(&self.member_faults[r], at);
        self.cond_cache[r] = span;
        let cond = span.0;
        self.verdict_cache[r] = match self.rtt {
            RttSampler::Fixed(rtt) if self.quiet_network && cond.loss == 0.0 => Some(world::judge(
                self.cfg.check.kind,
                &self.judging,
                &cond,
                rtt,
                Lost::default(),
            )),
            _ => None,
        };
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
        debug_assert!(ok || self.pending_failures > 0);
        self.pending_failures -= u32::from(!ok);
        let (node, role) = slot_parts(slot);
        let draw = match &mut self.jitter_rng {
            Some(r) => rng::unit(r),
            None => 0.0,
        };
        // The status of a failed HTTP answer: envoy counts it at once unless retriable.
        let mismatch = status.filter(|_| reason == Some(Reason::ResponseMismatch));
        let effect = self.nodes[node as usize].handle_probe_verdict(now, role, ok, mismatch, draw);
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
            self.count_log(now, 1);
        }
        if let Some(health) = effect.transition {
            tracing::debug!(at = %now, node, member = role.as_str(), to = health.as_str(), reason = reason.map(Reason::as_str), "member status");
            let cause = self.log.transitions.len() as u32;
            self.log.transitions.push(Transition {
                at: now,
                lb_node: node,
                member: role,
                to: health,
                reason,
                status,
                probe_sent_at: sent_at,
            });
            self.count_log(now, 1);
            self.node_actions(now, node, cause);
            if health == Health::Online {
                self.start_requests(now, node, role);
            }
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
        self.restart_requests(now, member);
    }
}

/// The (LB node, member) of prober slot `slot = node * 2 + role`.
#[inline]
fn slot_parts(slot: u32) -> (u32, Role) {
    let role = if slot.is_multiple_of(2) {
        Role::Master
    } else {
        Role::Slave
    };
    (slot / 2, role)
}
