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
//! Coasting. A prober whose member passes and is ONLINE (or fails and is OFFLINE) is *settled*:
//! while its verdicts stay the same, they change nothing but a streak already past its threshold,
//! and they come at a constant period (interval plus round trip) when the profile has no jitter
//! and an interval that depends only on UP/DOWN (`Rules::coastable`). When the probe path draws
//! nothing (fixed RTT, no loss: the span's fixed verdict) the verdicts until the member's
//! condition changes are known in advance, so the engine counts them at once
//! ([`Engine::coast`]) and sends only the last probe of the run: a settled minute of probes
//! costs one event instead of sixty. The run's log is the same, its event count included,
//! because coasting stops short of everything such a verdict could be seen by: the end of the
//! condition span, the quiescence instant, the end of the run and the event budget; and it is
//! off whenever something reads every verdict (jitter draws, `--timeline`, stalls, per-path
//! views, client traffic, envoy's outlier detection, a trace-level subscriber).
//! `SimConfig::step_every_probe` (`--step-every-probe`) turns it off; a property test runs both ways and compares.
//!
//! [`run_with`] adds two probe modes for windowed trials (`crate::experiment::windowed`): a start
//! at equilibrium (each prober's first probe at the residual of a length-biased probe cycle, as
//! in a pool probing since long ago), and a probe tape ([`tape`]) that records every probe's
//! verdict so that runs differing only in the rise/fall counters replay it instead of drawing.
//!
//! The faults real networks have (`super::paths`, `super::loss`):
//! - per-path faults and a separate monitor process: members' conditions are kept per *view*
//!   (the LB nodes that see the same faults; one view without per-path faults);
//! - `[network.burst]`, `[network.icmp_ratelimit]` and `[[stalls]]` make a probe's verdict
//!   depend on what happens around its send time, so with any of them every probe is sent from
//!   its own `ProbeSend` event, in time order ("exact sends"), instead of straight from the
//!   previous verdict;
//! - a stalled node's checker sends nothing and judges nothing: a `ProbeSend` due in the stall
//!   waits for its end, and so does a verdict due in it; at the end the held verdicts are
//!   judged first (a probe whose `timeout` ran out in the stall is a CONNECT_TIMEOUT failure,
//!   logged as caused by the stall unless it had failed anyway), then the held probes go out.
//!   The data plane keeps forwarding: clients and route updates do not stall.
//!
//! Limits (`SimConfig::limits`, `docs/limits.md`): the run stops, with [`RunLog::stopped`] saying
//! why, when it reaches its event budget, its cap on open connections, persistence entries or
//! log entries, or when the interrupt flag is raised (checked every [`INTERRUPT_EVERY`] events).

use super::config::{FaultKind, Rtt, SimConfig};
use super::loss::{BurstChannels, IcmpBudget};
use super::network::{self, RttSampler};
use super::paths::Views;
use super::queue::EventQueue;
use super::rng::{self, Purpose};
use super::world::{self, condition_at, Condition, Lost};
use crate::model::health::Health;
use crate::model::lb_node::{Action, LbNode, LbNodeConfig, Timer};
use crate::model::probe::{ProbeKind, Reason};
use crate::model::profile::{Judging, Profile};
use crate::model::router::{Role, Target};
use crate::sim::config::FailbackSessions;
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
mod tape;
mod traffic;
pub use tape::{ProbeOptions, ProbeTape, StartPhase, TapeEntry, TapeMode};

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
    /// The LB-node stall (index in `SimConfig::stalls`) that made the deciding probe a
    /// timeout: its verdict was held through the stall and its `timeout` ran out there.
    pub stall: Option<u32>,
}

impl Transition {
    /// A status change the node's passive side made (envoy's outlier detection or immediate-fail
    /// header, haproxy's `observe`): no probe decided it, so it is dated by itself.
    pub fn passive(
        at: SimTime,
        lb_node: u32,
        member: Role,
        to: Health,
        reason: Option<Reason>,
        status: Option<u16>,
    ) -> Self {
        Transition {
            at,
            lb_node,
            member,
            to,
            reason,
            status,
            probe_sent_at: at,
            stall: None,
        }
    }
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
/// `connect` is the profile's connect bound (`Judging::connect`), which the caller has.
pub fn quiet_from(cfg: &SimConfig, connect: SimDuration) -> Option<SimTime> {
    let deterministic = matches!(cfg.network.rtt, Rtt::Fixed(r) if r <= connect)
        && cfg.network.loss == 0.0
        && cfg.network.burst.is_none()
        && cfg.traffic.is_none();
    if !deterministic {
        return None;
    }
    let faults_over = cfg
        .faults
        .iter()
        .try_fold(SimTime::ZERO, |acc, f| f.until.map(|u| acc.max(u)))?;
    Some(
        cfg.stalls
            .iter()
            .fold(faults_over, |acc, s| acc.max(s.until)),
    )
}

/// The settings every node of a run shares.
pub fn node_config(cfg: &SimConfig) -> LbNodeConfig {
    let rules = cfg.rules();
    let (failback, all_down) = cfg.model.routing();
    let envoy = match cfg.model.profile {
        Profile::Envoy(o) => Some(o.data_plane()),
        _ => None,
    };
    LbNodeConfig {
        envoy,
        observe: match cfg.model.profile {
            Profile::Haproxy(o) => o.observe(),
            _ => None,
        },
        schedule: cfg.model.probe_schedule,
        delay: cfg.check.delay,
        rise: rules.rise,
        fall: rules.fall,
        // The profile's start state (`initial_state = "initial"`: Huawei OFFLINE, HAProxy UP).
        initial: rules.initial,
        // envoy: priority levels decide (`ModelConfig::routing`).
        all_down,
        failback,
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
        failback_hold_down: cfg.model.failback_hold_down,
        rules,
    }
}

/// One view's probe caches for one member: the condition span and the fixed verdict.
type ViewCaches = (
    (Condition, SimTime, SimTime),
    Option<(SimDuration, crate::model::probe::Verdict)>,
);

/// A verdict held while its node's checker stalls: (slot, sent_at, ok, reason, status).
type HeldVerdict = (u32, SimTime, bool, Option<Reason>, Option<u16>);

/// The engine's state for one run.
struct Engine<'a> {
    cfg: &'a SimConfig,
    opts: RunOptions<'a>,
    queue: EventQueue<Packed>,
    nodes: Vec<LbNode>,
    /// Which faults each LB node sees (one view without per-path faults).
    views: Views,
    /// Every node in view 0: a probe's condition needs no lookup of its node's view.
    single_view: bool,
    /// Per (view, member), `view * 2 + role`: the condition clients meet.
    conditions: Vec<Condition>,
    /// Per member, in view 0: the condition over the span `[from, until)` last asked for, as
    /// the probes meet it. Probes of one member go out in nearly increasing time, so one span
    /// answers almost every probe.
    cond_cache: [(Condition, SimTime, SimTime); 2],
    /// Per member, in view 0, over the same span: the verdict every probe gets when the probe
    /// path draws nothing (fixed RTT, no loss from the network or a fault), so that such probes
    /// skip the judging (which would draw nothing either: the random streams are unchanged).
    verdict_cache: [Option<(SimDuration, crate::model::probe::Verdict)>; 2],
    /// The same two caches for views 1 and up, `(view - 1) * 2 + role`: swapped into the
    /// view-0 slots while a probe of such a view is sent, so that the hot path stays the one
    /// of a run without per-path faults (arrays, no lookup).
    other_caches: Vec<ViewCaches>,
    /// The view whose probe is being sent (0 but inside [`Engine::send_probe_other_view`]).
    probe_view: usize,
    /// Every probe is sent from its own event, in time order (module docs).
    exact_sends: bool,
    /// `[network.burst]`: one channel per prober slot (its path).
    burst: Option<BurstChannels>,
    /// `[network.icmp_ratelimit]`: each member's kernel budget.
    icmp: Option<[IcmpBudget; 2]>,
    /// Per node: stalls in force; and what waits for the checker to resume.
    stalled: Vec<u32>,
    held_verdicts: Vec<Vec<HeldVerdict>>,
    held_sends: Vec<Vec<u32>>,
    /// The network draws no loss for a probe (with a fixed RTT, matched where this is read, it
    /// draws nothing).
    quiet_network: bool,
    rtt: RttSampler,
    probes_rng: ChaCha8Rng,
    /// The profile's probe-phase bounds.
    judging: Judging,
    /// Jitter draws, when the profile has jitter.
    jitter_rng: Option<ChaCha8Rng>,
    /// envoy's data-plane draws (route hash, outlier), when the profile is envoy.
    passive_rng: Option<ChaCha8Rng>,
    /// haproxy `observe layer4`: client connections are fed to the nodes' error counts.
    observe_l4: bool,
    traffic: Option<Traffic>,
    /// Failing verdicts and route updates in flight, for the quiescence check.
    pending_failures: u32,
    pending_updates: u32,
    /// Entries logged so far, against `limits.max_log_entries`.
    log_entries: u64,
    log: RunLog,
    /// Where first probes go out, and the probe tape (see [`tape`]).
    start_phase: StartPhase,
    tape: TapeMode<'a>,
    /// Next entry of a replayed tape.
    tape_pos: usize,
    /// A replayed probe did not match the tape: the run drew its own from there on.
    tape_diverged: bool,
    /// Settled probers may coast (module docs): nothing in this run reads a verdict that
    /// changes nothing.
    coasting: bool,
    /// The quiescence instant ([`quiet_from`]) when the run stops once quiet, else never.
    quiet_at: SimTime,
    /// The event count at which the interrupt flag is next read.
    next_look: u64,
}

/// Runs one scenario to its end (or to a limit, or an interrupt: see [`RunLog::stopped`]).
pub fn run<'a>(cfg: &'a SimConfig, opts: RunOptions<'a>) -> RunLog {
    run_with(cfg, opts, ProbeOptions::default()).0
}

/// [`run`], with the first probes placed and the probes judged as `probes` says (a stationary
/// start for windowed trials; recording or replaying a probe tape). The flag is true when a
/// replayed tape did not match the run's probes: that run drew its own verdicts from the first
/// mismatch on, so it is a valid run but not the tape's.
pub fn run_with<'a>(
    cfg: &'a SimConfig,
    opts: RunOptions<'a>,
    probes: ProbeOptions<'a>,
) -> (RunLog, bool) {
    let mut e = Engine::new(cfg, opts);
    e.start_phase = probes.start;
    e.tape = probes.tape;
    e.coasting &= matches!(e.tape, TapeMode::Off);
    e.start();
    let end = e.run_loop();
    e.finish_traffic(end);
    let mut log = e.log;
    log.end = end;
    log.traffic = e.traffic.map(|t| t.log);
    (log, e.tape_diverged)
}

impl<'a> Engine<'a> {
    fn new(cfg: &'a SimConfig, opts: RunOptions<'a>) -> Self {
        let nodes = cfg.lb_nodes.max(1) as usize;
        let node_cfg = node_config(cfg);
        let views = Views::new(cfg);
        let per_view = views.count() * 2;
        let single_view = views.count() == 1;
        // Burst losses, ICMP budgets and stalls make a verdict depend on its send time's
        // surroundings: every probe is sent from its own event (module docs).
        let exact_sends = cfg.network.burst.is_some()
            || cfg.network.icmp_ratelimit.is_some()
            || !cfg.stalls.is_empty();
        let stall_nodes = if cfg.stalls.is_empty() { 0 } else { nodes };
        let icmp_peers = match cfg.network.icmp_ratelimit {
            Some(l) if l.shared_source => 1,
            _ => nodes,
        };
        Engine {
            cfg,
            opts,
            queue: EventQueue::with_capacity(
                nodes * 4 + cfg.faults.len() * 2 + cfg.stalls.len() * 2 + 8,
            ),
            nodes: vec![LbNode::new(node_cfg); nodes],
            single_view,
            views,
            conditions: vec![Condition::default(); per_view],
            cond_cache: [(Condition::default(), SimTime(1), SimTime(0)); 2],
            verdict_cache: [None; 2],
            other_caches: vec![
                ((Condition::default(), SimTime(1), SimTime(0)), None);
                per_view - 2
            ],
            probe_view: 0,
            quiet_network: cfg.network.loss == 0.0
                && cfg.network.burst.is_none()
                && cfg.network.icmp_ratelimit.is_none(),
            exact_sends,
            burst: cfg.network.burst.map(|b| {
                BurstChannels::new(
                    b,
                    nodes * 2,
                    rng::stream(opts.seed, opts.trial, Purpose::Burst),
                )
            }),
            icmp: cfg.network.icmp_ratelimit.map(|l| {
                [
                    IcmpBudget::new(l, icmp_peers),
                    IcmpBudget::new(l, icmp_peers),
                ]
            }),
            stalled: vec![0; stall_nodes],
            held_verdicts: vec![Vec::new(); stall_nodes],
            held_sends: vec![Vec::new(); stall_nodes],
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
            observe_l4: node_cfg.observe.is_some(),
            traffic: cfg
                .traffic
                .as_ref()
                .map(|_| Traffic::new(cfg, opts.seed, opts.trial, opts.failure_series)),
            pending_failures: 0,
            pending_updates: 0,
            log_entries: 0,
            log: RunLog::default(),
            start_phase: StartPhase::Uniform,
            tape: TapeMode::Off,
            tape_pos: 0,
            tape_diverged: false,
            // Everything that reads or changes what a verdict that changes nothing would:
            // jitter draws, the verdict log, stalls and exact sends (a verdict's timing against
            // other events), per-path views, client traffic (passive checks), a tracing
            // subscriber that wants every verdict. The profile's part is `Rules::coastable`.
            coasting: !cfg.step_every_probe
                && !opts.record_verdicts
                && !node_cfg.rules.needs_draw()
                && node_cfg.rules.coastable()
                && node_cfg.envoy.is_none()
                && !exact_sends
                && cfg.traffic.is_none()
                && single_view
                && !tracing::enabled!(tracing::Level::TRACE),
            quiet_at: if opts.stop_when_quiet {
                quiet_from(cfg, node_cfg.rules.judging.connect).unwrap_or(SimTime(u64::MAX))
            } else {
                SimTime(u64::MAX)
            },
            next_look: INTERRUPT_EVERY,
        }
    }

    fn start(&mut self) {
        // One phase draw per prober, in slot order (node * 2 + role), as always.
        for node in 0..self.nodes.len() {
            match self.start_phase {
                StartPhase::Uniform => {
                    let m = rng::unit(&mut self.probes_rng);
                    let s = rng::unit(&mut self.probes_rng);
                    let at = self.nodes[node].first_probes_at([m, s]);
                    for (r, at) in at.into_iter().enumerate() {
                        let slot = (node * 2 + r) as u32;
                        self.queue.push(at, Event::ProbeSend { slot });
                    }
                }
                StartPhase::Equilibrium => {
                    for role in Role::BOTH {
                        let phase = rng::unit(&mut self.probes_rng);
                        let at = self.equilibrium_first_probe(role, phase);
                        let slot = (node * 2 + role.index()) as u32;
                        self.queue.push(at, Event::ProbeSend { slot });
                    }
                }
            }
        }
        for (i, f) in self.cfg.faults.iter().enumerate() {
            let fault = i as u32;
            self.queue.push(f.at, Event::FaultStart { fault });
            if let Some(until) = f.until {
                self.queue.push(until, Event::FaultEnd { fault });
            }
        }
        for (i, st) in self.cfg.stalls.iter().enumerate() {
            let stall = i as u32;
            self.queue.push(st.at, Event::Stall { stall, end: false });
            self.queue.push(st.until, Event::Stall { stall, end: true });
        }
        self.start_traffic();
    }

    /// Runs events until the end, quiescence, a limit or an interrupt; returns the instant the
    /// run covers up to.
    // Inlined into `run`, its one caller, as it was before `Engine::new` grew.
    #[inline(always)]
    fn run_loop(&mut self) -> SimTime {
        let end = SimTime::ZERO + self.cfg.duration;
        let quiet = self.quiet_at;
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
            // A threshold, not a multiple: coasting adds many events at once.
            if self.log.events >= self.next_look {
                self.next_look = self.log.events + INTERRUPT_EVERY;
                if self
                    .opts
                    .interrupt
                    .is_some_and(|f| f.load(Ordering::Relaxed))
                {
                    self.stop(Stopped::Interrupted { at: now });
                }
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

    // Always inlined into the event loop: measured, out of line it cost a quarter of a trials
    // run once the stall and envoy events made it too big for the compiler's own choice.
    #[inline(always)]
    fn handle(&mut self, now: SimTime, event: Event) {
        match event {
            Event::ProbeSend { slot } => self.on_probe_send(now, slot),
            Event::ProbeVerdict {
                slot,
                sent_at,
                ok,
                reason,
                status,
            } => {
                if !self.stalled.is_empty() && self.stalled[(slot / 2) as usize] > 0 {
                    self.held_verdicts[(slot / 2) as usize]
                        .push((slot, sent_at, ok, reason, status));
                    return;
                }
                self.on_verdict(now, slot, sent_at, ok, reason, status, None)
            }
            Event::NodeTimer { node, timer, cause } => {
                if let Timer::ApplyHealth { .. } | Timer::FailbackHold { .. } = timer {
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
            Event::Stall { stall, end } => self.on_stall(now, stall, end),
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
            Event::Cancelled => {}
            Event::ObservedTimeout {
                node,
                member,
                attempted_at,
            } => self.observe_connection(
                now,
                node,
                member,
                Some((crate::model::probe::Reason::ConnectTimeout, attempted_at)),
            ),
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
                    self.log
                        .transitions
                        .push(Transition::passive(now, node, role, health, reason, status));
                    self.count_log(now, 1);
                    if health == Health::Online {
                        self.start_requests(now, node, role);
                    }
                }
                Action::SetTimer { at, timer } => {
                    if let Timer::FailbackHold { .. } = timer {
                        // It may change the route: the run is not quiet until it fired.
                        self.pending_updates += 1;
                        self.queue.push(at, Event::NodeTimer { node, timer, cause });
                    } else if let Timer::ApplyHealth { .. } = timer {
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
        if !self.stalled.is_empty() && self.stalled[(slot / 2) as usize] > 0 {
            // The checker is paused: the probe goes out when it resumes.
            self.held_sends[(slot / 2) as usize].push(slot);
            return;
        }
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
        if !self.single_view {
            let v = self.views.view_of(slot / 2);
            if v != 0 {
                self.send_probe_other_view(at, slot, v);
                return;
            }
        }
        self.send_probe_in_view(at, slot);
    }

    /// [`Engine::send_probe`] for a node outside view 0 (per-path faults): its view's caches
    /// take the view-0 slots for the time of the send.
    #[cold]
    #[inline(never)]
    fn send_probe_other_view(&mut self, at: SimTime, slot: u32, view: usize) {
        let r = slot_parts(slot).1.index();
        let k = (view - 1) * 2 + r;
        std::mem::swap(&mut self.cond_cache[r], &mut self.other_caches[k].0);
        std::mem::swap(&mut self.verdict_cache[r], &mut self.other_caches[k].1);
        self.probe_view = view;
        self.send_probe_in_view(at, slot);
        self.probe_view = 0;
        std::mem::swap(&mut self.cond_cache[r], &mut self.other_caches[k].0);
        std::mem::swap(&mut self.verdict_cache[r], &mut self.other_caches[k].1);
    }

    /// Sends a probe with the caches in the view-0 slots (those of `probe_view`).
    #[inline(always)]
    fn send_probe_in_view(&mut self, at: SimTime, slot: u32) {
        let (_, role) = slot_parts(slot);
        let r = role.index();
        let (_, from, until) = self.cond_cache[r];
        if at < from || at >= until {
            self.refresh_condition(r, at);
        }
        // A fixed verdict (the probe path draws nothing) skips the tape: it has nothing to
        // record or replay.
        let (after, v) = match self.verdict_cache[r] {
            Some(fixed) => fixed,
            None => self.drawn_verdict(slot, at, r),
        };
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

    /// The verdict of a probe whose path draws: replayed from the tape when it matches, else
    /// drawn and judged (and recorded when recording).
    #[inline(always)]
    fn drawn_verdict(
        &mut self,
        slot: u32,
        at: SimTime,
        r: usize,
    ) -> (SimDuration, crate::model::probe::Verdict) {
        if let Some(e) = self.replayed(slot, at) {
            return (e.after, e.verdict);
        }
        let cond = self.cond_cache[r].0;
        let judged = self.judge_probe(&cond, slot, at);
        if let TapeMode::Record(t) = &mut self.tape {
            t.entries.push(tape::TapeEntry {
                slot,
                sent_at: at,
                after: judged.0,
                verdict: judged.1,
            });
        }
        judged
    }

    /// Draws one probe's round trip and losses and judges it under `cond`.
    #[inline]
    fn draw_verdict(&mut self, cond: &Condition) -> (SimDuration, crate::model::probe::Verdict) {
        let (rtt, lost) = self.draw_path(cond);
        world::judge(self.cfg.check.kind, &self.judging, cond, rtt, lost)
    }

    /// One probe's round trip and independent losses under `cond`, from the probes' stream.
    #[inline]
    fn draw_path(&mut self, cond: &Condition) -> (SimDuration, Lost) {
        let rtt = self.rtt.draw(&mut self.probes_rng);
        let udp = self.cfg.check.kind == ProbeKind::UdpConnect;
        let lost = Lost {
            first: network::lost(&self.cfg.network, cond.loss, &mut self.probes_rng),
            // UDP_CONNECT's second exchange; other checks have none, and draw nothing for it.
            udp_probe: udp && network::lost(&self.cfg.network, cond.loss, &mut self.probes_rng),
        };
        (rtt, lost)
    }

    /// The taped verdict of the probe prober `slot` sends at `at`, when replaying a tape that
    /// matches; a mismatch stops the replay for good (the run draws from then on).
    #[inline]
    fn replayed(&mut self, slot: u32, at: SimTime) -> Option<tape::TapeEntry> {
        let TapeMode::Replay(t) = &self.tape else {
            return None;
        };
        if self.tape_diverged {
            return None;
        }
        match t.entries.get(self.tape_pos) {
            Some(e) if e.slot == slot && e.sent_at == at => {
                self.tape_pos += 1;
                Some(*e)
            }
            _ => {
                self.tape_diverged = true;
                None
            }
        }
    }

    /// The first send of a prober started at equilibrium ([`StartPhase::Equilibrium`]): a probe
    /// cycle drawn length-biased (a cycle drawn as a probe would be, `delay` plus its verdict's
    /// time, accepted with probability cycle / (`delay` + `timeout`), the longest a cycle can
    /// be: every verdict comes by the timeout), and the point `phase` of the way through it.
    /// These draws come from the probes' stream before any probe goes out, the same for any
    /// rise/fall counters, so a tape stays valid.
    fn equilibrium_first_probe(&mut self, role: Role, phase: f64) -> SimTime {
        let delay = self.cfg.check.delay;
        if self.cfg.model.probe_schedule == crate::model::health::ProbeSchedule::FixedRate {
            return SimTime((delay.0 as f64 * phase) as u64 % delay.0.max(1));
        }
        let longest = (delay + self.cfg.check.timeout).0 as f64;
        // Windowed runs have no per-path faults (`experiment::windowed` refuses them): one view.
        let cond = condition_at(self.views.probe_faults(0, role.index()), SimTime::ZERO);
        let cycle = loop {
            let (after, _) = self.draw_verdict(&cond);
            let cycle = (delay + after).0 as f64;
            if rng::unit(&mut self.probes_rng) * longest < cycle {
                break cycle;
            }
        };
        SimTime((cycle * phase) as u64)
    }

    /// Draws one sent probe's round trip and losses (independent, then `[network.burst]`'s) and
    /// judges it under `cond`; a UDP port-unreachable the ICMP rate limit keeps back is silence.
    #[inline]
    fn judge_probe(
        &mut self,
        cond: &Condition,
        slot: u32,
        at: SimTime,
    ) -> (SimDuration, crate::model::probe::Verdict) {
        if self.burst.is_some() || self.icmp.is_some() {
            return self.judge_probe_on_a_real_path(cond, slot, at);
        }
        self.draw_verdict(cond)
    }

    /// [`Engine::judge_probe`] with `[network.burst]` or `[network.icmp_ratelimit]` (out of
    /// line, so that the common send stays small).
    #[cold]
    #[inline(never)]
    fn judge_probe_on_a_real_path(
        &mut self,
        cond: &Condition,
        slot: u32,
        at: SimTime,
    ) -> (SimDuration, crate::model::probe::Verdict) {
        let (node, role) = slot_parts(slot);
        let kind = self.cfg.check.kind;
        // The channel draws from its own stream: its place here moves no probe draw.
        let burst = match self.burst.as_mut() {
            Some(b) => b.loss_at(slot as usize, at, at),
            None => 0.0,
        };
        let (rtt, mut lost) = self.draw_path(cond);
        if burst > 0.0 {
            // Drawn after the independent losses, so that those stay what they were.
            lost.first |= rng::chance(&mut self.probes_rng, burst);
            if kind == ProbeKind::UdpConnect {
                lost.udp_probe |= rng::chance(&mut self.probes_rng, burst);
            }
        }
        let (mut after, mut v) = world::judge(kind, &self.judging, cond, rtt, lost);
        if kind == ProbeKind::UdpConnect && v.reason == Some(Reason::ConnectRefused) {
            if let Some(icmp) = self.icmp.as_mut() {
                let peer = if self
                    .cfg
                    .network
                    .icmp_ratelimit
                    .is_some_and(|l| l.shared_source)
                {
                    0
                } else {
                    node as usize
                };
                if !icmp[role.index()].allow(Some(peer), at) {
                    // The kernel kept its port-unreachable: silence, and silence passes.
                    (after, v) = (self.cfg.check.timeout, crate::model::probe::Verdict::OK);
                }
            }
        }
        (after, v)
    }
    /// Recomputes member `r`'s condition span around `at` in view `probe_view`, and its fixed
    /// verdict when probes draw nothing.
    #[cold]
    fn refresh_condition(&mut self, r: usize, at: SimTime) {
        let span = world::condition_span(self.views.probe_faults(self.probe_view, r), at);
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

    // Always inlined: it is the hot path, and its second caller (a stall's end) would otherwise
    // keep it out of line for everyone (measured: 15% of a trials run in the call).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn on_verdict(
        &mut self,
        now: SimTime,
        slot: u32,
        sent_at: SimTime,
        ok: bool,
        reason: Option<Reason>,
        status: Option<u16>,
        stall: Option<u32>,
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
        if let Some(next) = effect.next_probe_at() {
            if self.exact_sends {
                self.queue.push_in_order(next, Event::ProbeSend { slot });
            } else if self.coasting
                && effect.transition.is_none()
                && self.nodes[node as usize].settled(role, ok)
            {
                self.coast(now, next, slot, ok);
            } else {
                self.send_probe(next, slot);
            }
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
                stall,
            });
            self.count_log(now, 1);
            self.node_actions(now, node, cause);
            if health == Health::Online {
                self.start_requests(now, node, role);
            }
        }
    }

    /// Sends prober `slot`'s next probe, due at `next`, after a verdict `ok` at `now` that left
    /// it settled: the probes that would meet the same fixed verdict (the same condition span,
    /// no draw) and whose verdicts would come before the quiescence instant, by the end and
    /// within the event budget are counted at once, and only the last is sent (module docs,
    /// "Coasting").
    #[inline(never)]
    fn coast(&mut self, now: SimTime, next: SimTime, slot: u32, ok: bool) {
        let (node, role) = slot_parts(slot);
        let r = role.index();
        let (_, from, until) = self.cond_cache[r];
        if next < from || next >= until {
            self.refresh_condition(r, next);
        }
        let until = self.cond_cache[r].2;
        let Some((after, v)) = self.verdict_cache[r].filter(|(_, v)| v.ok == ok) else {
            return self.send_probe_in_view(next, slot);
        };
        // Verdict j (1-based) would come at next + after + (j - 1) * period, its probe sent
        // `after` before; `skip` of them are counted, the probe after them is sent.
        let period = (next.0 - now.0) + after.0;
        let first_verdict = next.0 + after.0;
        let end = (SimTime::ZERO + self.cfg.duration).0;
        let budget = self
            .cfg
            .limits
            .max_events
            .saturating_sub(self.log.events + 1);
        let skip = (count_below(next.0, period, until.0).saturating_sub(1))
            .min(count_below(first_verdict, period, self.quiet_at.0))
            .min(count_below(first_verdict, period, end.saturating_add(1)))
            .min(budget);
        if skip == 0 {
            return self.send_probe_in_view(next, slot);
        }
        self.nodes[node as usize].coast(role, ok, skip);
        self.log.events += skip;
        let sent = SimTime(next.0 + skip * period);
        self.pending_failures += u32::from(!ok);
        // Far ahead of the in-order lane: the heap.
        self.queue.push(
            sent + after,
            Event::ProbeVerdict {
                slot,
                sent_at: sent,
                ok,
                reason: v.reason,
                status: v.status,
            },
        );
    }

    /// A stall of some LB nodes begins or ends. At the end of a node's last stall, the verdicts
    /// held through it are judged (module docs), then the probes held go out.
    fn on_stall(&mut self, now: SimTime, stall: u32, end: bool) {
        let cfg = self.cfg;
        let timeout = cfg.check.timeout;
        for &node in &cfg.stalls[stall as usize].lb_nodes {
            let n = node as usize;
            if !end {
                self.stalled[n] += 1;
                continue;
            }
            self.stalled[n] -= 1;
            if self.stalled[n] > 0 {
                continue;
            }
            for (slot, sent_at, ok, reason, status) in std::mem::take(&mut self.held_verdicts[n]) {
                let (ok, reason, status, by_stall) = if ok && sent_at + timeout <= now {
                    self.pending_failures += 1;
                    (false, Some(Reason::ConnectTimeout), None, Some(stall))
                } else {
                    (ok, reason, status, None)
                };
                self.on_verdict(now, slot, sent_at, ok, reason, status, by_stall);
            }
            for slot in std::mem::take(&mut self.held_sends[n]) {
                self.on_probe_send(now, slot);
            }
        }
    }

    /// Recomputes a member's condition at a fault edge; open connections break when the
    /// member really fails.
    fn rebuild_condition(&mut self, now: SimTime, member: Role) {
        for view in 0..self.views.count() {
            let i = view * 2 + member.index();
            let was_down = self.conditions[i].is_down();
            let c = condition_at(self.views.client_faults(view, member.index()), now);
            self.conditions[i] = c;
            if c.is_down() && !was_down {
                self.break_member(now, member, view as u32);
            }
        }
        self.restart_requests(now, member);
    }
}

/// How many of `x0`, `x0 + step`, `x0 + 2 step`, ... are below `bound` (`step` > 0).
#[inline]
fn count_below(x0: u64, step: u64, bound: u64) -> u64 {
    if bound <= x0 {
        0
    } else {
        (bound - x0 - 1) / step.max(1) + 1
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
