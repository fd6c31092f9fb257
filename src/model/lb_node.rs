//! One LB node: everything the load balancer *decides*, as a sans-IO state machine.
//!
//! An [`LbNode`] owns, for one node of the pool's load balancer, the health checker of each member
//! (probe schedule and rise/fall counters), the router (master, slave, all-down policy,
//! failback), the table of open client connections, the SOURCE_IP persistence table and the QUIC
//! CID table. It is driven the way quinn-proto drives a QUIC connection:
//!
//! - inputs come in through `handle_*` / plain methods, each handed `now`: a probe was sent, a
//!   probe's verdict arrived, a timer fired, a client opened or closed a connection, a QUIC packet
//!   carried a new CID;
//! - what the node wants done comes out of [`LbNode::poll_action`]: timers to arm (a verdict
//!   reaching the data plane after `route_update_delay`, a drain deadline), route changes, drains
//!   starting and ending, and connections the LB itself closes (drained, reset on failback, QUIC
//!   stateless reset).
//!
//! The node never reads a clock, draws a random number or touches a socket. The discrete-event
//! engine (`crate::sim::engine`) feeds it in simulated time, where the backends' answers come from
//! the simulated world; a real-time driver feeds it verdicts from real probes. Both see the same
//! decisions for the same inputs.
//!
//! Rules and their sources are in `docs/model.md`; in short:
//! - a verdict changes the member's status in this node's view at once (rise/fall), and reaches the
//!   data plane `route_update_delay` later (a [`Timer::ApplyHealth`]);
//! - the data plane then routes (router), starts or cancels a connection drain of a member that
//!   turned OFFLINE / ONLINE, and, with `failback_sessions = "reset"`, closes the slave's open
//!   connections on a *real* failback: back to a master that is ONLINE in this node's view, never
//!   on a fail-open to a master that is still OFFLINE (`all_down = "master"`);
//! - with `failback = "hold_down"`, a master that turns ONLINE in the data plane while the slave
//!   carries the traffic arms a [`Timer::FailbackHold`] `failback_hold_down` later; if the master
//!   is still ONLINE then (no OFFLINE in between: each one bumps the hold's epoch), the traffic
//!   returns to it, a failback like any other.

use super::connections::{Conn, ConnId, ConnTable, QuicPaths};
use super::health::{Health, ProbeSchedule, Prober, VerdictEffect};
use super::persistence::PersistenceTable;
use super::probe::Reason;
use super::profile::envoy::{self, DataPlane, OutlierDetector, OutlierEvent};
use super::profile::haproxy::{self, ErrorCounter};
use super::profile::Rules;
use super::quic::CidTable;
use super::router::{AllDown, Failback, Role, RouteChange, Router, Target};
use crate::time::{SimDuration, SimTime};
use std::collections::VecDeque;

/// The settings of one LB node, taken from the pool body and the scenario's `[model]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LbNodeConfig {
    pub schedule: ProbeSchedule,
    /// healthmonitor.delay.
    pub delay: SimDuration,
    /// max_retries: consecutive successes that turn OFFLINE into ONLINE.
    pub rise: u32,
    /// max_retries_down: consecutive failures that turn ONLINE into OFFLINE.
    pub fall: u32,
    /// Status of both members at the start.
    pub initial: Health,
    pub all_down: AllDown,
    pub failback: Failback,
    /// `failback_sessions = "reset"`: a failback closes the slave's open connections.
    pub reset_on_failback: bool,
    /// From a verdict to the data plane acting on it.
    pub route_update_delay: SimDuration,
    /// connection_drain.timeout, when drain is enabled.
    pub drain: Option<SimDuration>,
    /// SOURCE_IP persistence timeout, when the pool sets session_persistence.
    pub persistence: Option<SimDuration>,
    /// `failback = "hold_down"`: how long the master stays ONLINE before the traffic returns.
    pub failback_hold_down: SimDuration,
    /// The data plane's health-check rules (`super::profile`): probe timing, counting, start.
    /// `schedule`, `rise`, `fall` and `initial` above are the same values, kept for readers.
    pub rules: Rules,
    /// The envoy profile's data-plane parts: priority/panic routing, outlier detection, the
    /// router's reading of `x-envoy-immediate-health-check-fail` (`None` for other profiles).
    pub envoy: Option<DataPlane>,
    /// The haproxy profile's passive side: `observe layer4` with its `error-limit` and
    /// `on-error` (`None` for other profiles, or without `observe`).
    pub observe: Option<haproxy::Observe>,
}

/// A timer the node asked for; the driver hands it back through [`LbNode::handle_timer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// A member's status change reaches the data plane.
    ApplyHealth { role: Role, health: Health },
    /// The drain of `role` times out (stale when `epoch` is not the current drain's).
    DrainDeadline { role: Role, epoch: u32 },
    /// The master's failback hold-down ends (stale when `epoch` is not the current hold's).
    FailbackHold { epoch: u32 },
    /// Envoy's outlier sweep that may return an ejected member is due.
    OutlierSweep,
}

/// Why the LB itself closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbClose {
    /// The drain of its member timed out.
    Drained,
    /// A failback with `failback_sessions = "reset"`.
    ResetOnFailback,
    /// A packet's CID slice was routed to a member that does not know the connection (stateless
    /// reset).
    QuicCid,
}

/// Something the node wants the driver to do or know.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    /// Call [`LbNode::handle_timer`] with `timer` at `at`.
    SetTimer { at: SimTime, timer: Timer },
    /// New connections now go to `change.to`. `failback` is true for a real failback: back to a
    /// master that is ONLINE in this node's view.
    RouteChanged { change: RouteChange, failback: bool },
    /// A drain of `role`'s open connections began; they are closed at `deadline` unless the
    /// member comes back first.
    DrainStarted { role: Role, deadline: SimTime },
    /// `role` came back ONLINE before its drain's deadline: the drain is off.
    DrainCancelled { role: Role },
    /// The drain of `role` ended; `closed` connections were closed by it (each also reported as
    /// a [`Action::Closed`] before this).
    DrainEnded { role: Role, closed: u64 },
    /// The LB closed an open connection.
    Closed { conn: Conn, why: LbClose },
    /// `role`'s status changed in this node's view for a reason other than a probe verdict
    /// (envoy: outlier ejection or return, the immediate-fail header on a client's answer;
    /// haproxy: `on-error` after `error-limit` failed client connections).
    /// Like a verdict's change, it reaches the data plane through a later
    /// [`Timer::ApplyHealth`] (queued right after this action).
    StatusChanged {
        role: Role,
        health: Health,
        reason: Option<Reason>,
        status: Option<u16>,
    },
}

/// Where a new connection goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routed {
    pub member: Role,
    /// SOURCE_IP persistence sent it to a member other than the node's current choice.
    pub persisted_elsewhere: bool,
    /// The persistence table gained an entry (a client this node had not remembered).
    pub new_persistence_entry: bool,
}

/// What became of a connection whose packet carried a new CID.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CidOutcome {
    /// Routed to the connection's own member.
    Kept,
    /// Routed elsewhere (or nowhere): the connection broke and is closed.
    Broken(Conn),
    /// The connection was no longer open.
    Gone,
}

/// One LB node's state.
#[derive(Debug, Clone)]
pub struct LbNode {
    cfg: LbNodeConfig,
    probers: [Prober; 2],
    router: Router,
    conns: ConnTable,
    persistence: Option<PersistenceTable>,
    cids: CidTable,
    /// Per member: generation of its drain, so that a cancelled drain's deadline is stale.
    drain_epoch: [u32; 2],
    /// Per member: when the drain in progress began.
    drain_started: [Option<SimTime>; 2],
    /// Generation of the master's failback hold-down: an OFFLINE master makes a pending hold
    /// stale.
    hold_epoch: u32,
    actions: VecDeque<Action>,
    /// envoy: outlier detection of this node, when configured (boxed: the other profiles' nodes
    /// stay small to clone).
    outlier: Option<Box<OutlierDetector>>,
    /// haproxy `observe layer4`: each member's `consecutive_errors` (unused otherwise).
    errors: [ErrorCounter; 2],
    /// A verdict does more than the prober's counting (envoy's outlier detection, haproxy's
    /// error counts): [`LbNode::handle_probe_verdict`] takes its out-of-line path.
    passive_verdicts: bool,
}

impl LbNode {
    pub fn new(cfg: LbNodeConfig) -> Self {
        let prober = Prober::new(cfg.rules);
        LbNode {
            outlier: cfg
                .envoy
                .and_then(|e| e.outlier)
                .map(|o| Box::new(OutlierDetector::new(o, SimTime::ZERO))),
            cfg,
            probers: [prober; 2],
            router: Router::new(cfg.initial, cfg.initial, cfg.all_down, cfg.failback),
            conns: ConnTable::new(),
            persistence: cfg.persistence.map(PersistenceTable::new),
            cids: CidTable::default(),
            drain_epoch: [0; 2],
            drain_started: [None; 2],
            hold_epoch: 0,
            actions: VecDeque::new(),
            errors: [ErrorCounter::default(); 2],
            passive_verdicts: cfg.envoy.is_some_and(|e| e.outlier.is_some())
                || cfg.observe.is_some(),
        }
    }

    pub fn config(&self) -> &LbNodeConfig {
        &self.cfg
    }

    // ---- health checking ----

    /// When master's and slave's first probes go out, from one uniform draw in `[0, 1)` per
    /// member, master's first (the profile places them: Huawei within the first `delay`,
    /// elb_faq_0002; HAProxy staggered by position).
    pub fn first_probes_at(&self, phases: [f64; 2]) -> [SimTime; 2] {
        self.cfg.rules.first_probes(phases)
    }

    /// Whether [`LbNode::handle_verdict`] reads its draw (the profile's jitter).
    #[inline]
    pub fn needs_draw(&self) -> bool {
        self.cfg.rules.needs_draw()
    }

    /// A probe of `role` went out at `now`; returns when the next one goes out if the schedule
    /// does not wait for the verdict (fixed_rate).
    #[inline]
    pub fn handle_probe_sent(&mut self, now: SimTime, role: Role) -> Option<SimTime> {
        self.probers[role.index()].on_sent(now)
    }

    /// A verdict on `role` arrived at `now`. A status change is effective in this node's view at
    /// once (see [`LbNode::status`]) and reaches the data plane `route_update_delay` later: an
    /// [`Action::SetTimer`] is queued for it. `draw` is a uniform draw in `[0, 1)` for the
    /// profile's jitter, read only when [`LbNode::needs_draw`].
    #[inline]
    pub fn handle_verdict(
        &mut self,
        now: SimTime,
        role: Role,
        ok: bool,
        draw: f64,
    ) -> VerdictEffect {
        self.handle_probe_verdict(now, role, ok, None, draw)
    }

    /// [`LbNode::handle_verdict`] with what failed: `mismatch` is the status of a failed HTTP
    /// answer (RESPONSE_MISMATCH), which the envoy profile counts at once unless retriable.
    /// The returned transition is of the member's status in this node's view
    /// ([`LbNode::status`]), which under envoy also reflects an outlier ejection: a passing
    /// check returns an ejected member (`successful_active_health_check_uneject_host`).
    #[inline(always)]
    pub fn handle_probe_verdict(
        &mut self,
        now: SimTime,
        role: Role,
        ok: bool,
        mismatch: Option<u16>,
        draw: f64,
    ) -> VerdictEffect {
        // Only envoy (outlier detection) and haproxy (observe) have a passive side, and their
        // probers never have a fixed interval: huawei's verdicts pay one check, which the
        // prober repeats (and the compiler merges).
        if !self.probers[role.index()].has_fixed_interval() && self.passive_verdicts {
            return self.probe_verdict_passive(now, role, ok, mismatch, draw);
        }
        let effect = self.probers[role.index()].on_probe_verdict(now, ok, mismatch, draw);
        if let Some(health) = effect.transition {
            self.push_apply(now, role, health);
        }
        effect
    }

    /// [`LbNode::handle_probe_verdict`] with a passive side: envoy's outlier detection, haproxy's
    /// `observe` (out of line: the other profiles' path stays small).
    #[inline(never)]
    fn probe_verdict_passive(
        &mut self,
        now: SimTime,
        role: Role,
        ok: bool,
        mismatch: Option<u16>,
        draw: f64,
    ) -> VerdictEffect {
        // Sweeps are not run here: the one that returns a member has its own timer
        // (`Timer::OutlierSweep`), so a verdict changes no other status than its member's.
        let before = self.status(role);
        let mut effect = self.probers[role.index()].on_probe_verdict(now, ok, mismatch, draw);
        if ok {
            // haproxy: a passed check clears `consecutive_errors` (`set_server_check_status`).
            self.errors[role.index()].on_check_passed();
        }
        if ok && self.probers[role.index()].status() == Health::Online {
            if let Some(od) = self.outlier.as_mut() {
                od.on_active_check_passed(now, role);
            }
        }
        let after = self.status(role);
        effect.transition = (before != after).then_some(after);
        if let Some(health) = effect.transition {
            self.push_apply(now, role, health);
        }
        effect
    }

    fn push_apply(&mut self, now: SimTime, role: Role, health: Health) {
        self.actions.push_back(Action::SetTimer {
            at: now + self.cfg.route_update_delay,
            timer: Timer::ApplyHealth { role, health },
        });
    }

    /// Whether the next verdicts on `role`, while each is `ok`, change nothing in this node:
    /// its prober is settled ([`crate::model::health::Prober::settled`]) and no passive side
    /// (envoy's outlier detection) reads them.
    #[inline]
    pub fn settled(&self, role: Role, ok: bool) -> bool {
        self.outlier.is_none() && self.probers[role.index()].settled(ok)
    }

    /// Counts `n` verdicts `ok` on `role` at once, on a [`LbNode::settled`] prober.
    pub fn coast(&mut self, role: Role, ok: bool, n: u64) {
        self.probers[role.index()].coast(ok, n);
    }

    /// `role`'s status by the active checks alone (envoy's outlier detection aside): what the
    /// engine's quiescence test reads, which only runs without client traffic, where nothing
    /// is ever ejected.
    #[inline]
    pub fn active_status(&self, role: Role) -> Health {
        self.probers[role.index()].status()
    }

    /// `role`'s status as this node's health checker sees it (under envoy: passing active
    /// checks and not ejected by outlier detection).
    pub fn status(&self, role: Role) -> Health {
        let active = self.probers[role.index()].status();
        match &self.outlier {
            Some(od) if od.ejected(role) => Health::Offline,
            _ => active,
        }
    }

    // ---- envoy's passive side ----

    /// Whether client outcomes matter to this node (envoy with outlier detection or the
    /// immediate-fail header): drivers skip [`LbNode::handle_client_outcome`] otherwise.
    pub fn wants_client_outcomes(&self) -> bool {
        self.cfg
            .envoy
            .is_some_and(|e| e.outlier.is_some() || e.immediate_fail_header)
    }

    /// A client operation this node routed to `role` ended with `outcome` at `now` (a refused
    /// or timed-out connection, a failed request's status). Under envoy, the router reads the
    /// immediate-fail header on an answer, and outlier detection counts the outcome; a status
    /// change comes out as [`Action::StatusChanged`]. `draw` gives uniform `u64`s for the
    /// enforcement and ejection-jitter draws.
    pub fn handle_client_outcome(
        &mut self,
        now: SimTime,
        role: Role,
        outcome: envoy::Outcome,
        draw: &mut impl FnMut() -> u64,
    ) {
        let Some(dp) = self.cfg.envoy else { return };
        self.outlier_advance(now);
        let before = self.status(role);
        if dp.immediate_fail_header {
            if let envoy::Outcome::Status(_) = outcome {
                self.probers[role.index()].fail_at_once();
            }
        }
        let mut wake = None;
        if let Some(od) = self.outlier.as_mut() {
            for e in od.on_outcome(now, role, outcome, draw) {
                if let OutlierEvent::Ejected { role, .. } = e {
                    wake = od.wake_at(role);
                }
            }
        }
        let after = self.status(role);
        if before != after {
            let (reason, status) = match outcome {
                envoy::Outcome::ConnectFailed => (Reason::ConnectRefused, None),
                envoy::Outcome::Timeout => (Reason::ConnectTimeout, None),
                envoy::Outcome::RequestTimeout => (Reason::RecvResponseTimeout, None),
                envoy::Outcome::Status(s) => (Reason::ResponseMismatch, Some(s)),
            };
            self.status_changed(now, role, after, Some(reason), status);
        }
        if let Some(at) = wake {
            self.actions.push_back(Action::SetTimer {
                at,
                timer: Timer::OutlierSweep,
            });
        }
    }

    /// Whether another failing client answer from `role` could still change something here:
    /// outlier detection has not ejected it, or the immediate-fail header would take it out.
    pub fn passive_sees(&self, role: Role) -> bool {
        let Some(dp) = self.cfg.envoy else {
            return false;
        };
        let not_ejected = self.outlier.as_ref().is_some_and(|o| !o.ejected(role));
        let header = dp.immediate_fail_header && self.status(role) == Health::Online;
        not_ejected || header
    }

    // ---- haproxy's passive side ----

    /// Whether client connections' layer-4 outcomes matter to this node (haproxy with
    /// `observe layer4`): drivers skip [`LbNode::handle_l4_outcome`] otherwise.
    #[inline]
    pub fn observes_layer4(&self) -> bool {
        self.cfg.observe.is_some()
    }

    /// A client connection this node routed to `role` opened (`error` is `None`) or failed to
    /// open at `now` (`error`: CONNECT_REFUSED, CONNECT_TIMEOUT, or SSL_HANDSHAKE_ERROR for a
    /// failed TLS handshake with a TLS member). Under haproxy's `observe layer4` it is counted
    /// (`__health_adjust`, [`haproxy::ErrorCounter`]); at `error-limit` consecutive errors the
    /// `on-error` action runs on the member's counters ([`haproxy::on_error`]), and a status
    /// change comes out as [`Action::StatusChanged`] with `error` as its reason (HAProxy's
    /// "Detected N consecutive errors, last one was: ..."). Returns `now + fastinter` when the
    /// action ran and `fastinter` is set: the driver moves the member's next check there if
    /// that is sooner (an idle check starts then, one in progress is aborted then as a timeout:
    /// see [`haproxy`]).
    pub fn handle_l4_outcome(
        &mut self,
        now: SimTime,
        role: Role,
        error: Option<Reason>,
    ) -> Option<SimTime> {
        let obs = self.cfg.observe?;
        let r = role.index();
        if !self.errors[r].on_connection(error.is_none(), obs.error_limit) {
            return None;
        }
        let before = self.status(role);
        self.probers[r].on_error(obs.on_error);
        let after = self.status(role);
        if before != after {
            self.status_changed(now, role, after, error, None);
        }
        obs.reschedule.map(|d| now + d)
    }

    /// Runs the outlier sweeps due by `now`; members they return change status.
    fn outlier_advance(&mut self, now: SimTime) {
        let Some(od) = self.outlier.as_mut() else {
            return;
        };
        if od.next_sweep() > now {
            return;
        }
        let before = Role::BOTH.map(|r| od.ejected(r));
        od.advance(now);
        for role in Role::BOTH {
            if before[role.index()] && !self.outlier.as_ref().is_some_and(|o| o.ejected(role)) {
                let active = self.probers[role.index()].status();
                if active == Health::Online {
                    self.status_changed(now, role, Health::Online, None, None);
                }
            }
        }
    }

    fn status_changed(
        &mut self,
        now: SimTime,
        role: Role,
        health: Health,
        reason: Option<Reason>,
        status: Option<u16>,
    ) {
        self.actions.push_back(Action::StatusChanged {
            role,
            health,
            reason,
            status,
        });
        self.push_apply(now, role, health);
    }

    /// `role`'s status as this node's data plane acts on it (`route_update_delay` behind).
    pub fn health(&self, role: Role) -> Health {
        self.router.health(role)
    }

    /// Where new connections go now.
    pub fn target(&self) -> Target {
        self.router.target()
    }

    // ---- timers ----

    /// A timer the node asked for fired.
    pub fn handle_timer(&mut self, now: SimTime, timer: Timer) {
        match timer {
            Timer::ApplyHealth { role, health } => self.apply_health(now, role, health),
            Timer::DrainDeadline { role, epoch } => self.drain_deadline(now, role, epoch),
            Timer::FailbackHold { epoch } => {
                if epoch == self.hold_epoch {
                    let change = self.router.release_hold();
                    self.route_changed(change);
                }
            }
            Timer::OutlierSweep => self.outlier_advance(now),
        }
    }

    /// The next thing the node wants done, oldest first.
    #[inline]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn apply_health(&mut self, now: SimTime, role: Role, health: Health) {
        // Drain first: it concerns connections already open on the member.
        if let Some(drain) = self.cfg.drain {
            let r = role.index();
            self.drain_epoch[r] = self.drain_epoch[r].wrapping_add(1);
            match health {
                Health::Offline => {
                    let deadline = now + drain;
                    self.drain_started[r] = Some(now);
                    self.actions
                        .push_back(Action::DrainStarted { role, deadline });
                    self.actions.push_back(Action::SetTimer {
                        at: deadline,
                        timer: Timer::DrainDeadline {
                            role,
                            epoch: self.drain_epoch[r],
                        },
                    });
                }
                Health::Online => {
                    // Back inside the window: the bumped epoch makes the deadline stale.
                    if self.drain_started[r].take().is_some() {
                        self.actions.push_back(Action::DrainCancelled { role });
                    }
                }
            }
        }
        if role == Role::Master {
            self.hold_epoch = self.hold_epoch.wrapping_add(1);
        }
        let change = self.router.on_health(role, health);
        if role == Role::Master && health == Health::Online && self.router.holding() {
            self.actions.push_back(Action::SetTimer {
                at: now + self.cfg.failback_hold_down,
                timer: Timer::FailbackHold {
                    epoch: self.hold_epoch,
                },
            });
        }
        self.route_changed(change);
    }

    /// Reports a route change, and on a real failback with `failback_sessions = "reset"` closes
    /// the slave's open connections.
    fn route_changed(&mut self, change: Option<RouteChange>) {
        let Some(change) = change else {
            return;
        };
        let failback = change.from == Target::Slave
            && change.to == Target::Master
            && self.router.health(Role::Master) == Health::Online;
        self.actions
            .push_back(Action::RouteChanged { change, failback });
        if failback && self.cfg.reset_on_failback {
            // Every one of them, in the group's order, without a copy of the group.
            let mut closed = 0;
            while let Some(id) = self.conns.next_of(Role::Slave, closed) {
                closed += 1;
                if let Some(conn) = self.close(id) {
                    self.actions.push_back(Action::Closed {
                        conn,
                        why: LbClose::ResetOnFailback,
                    });
                }
            }
        }
    }

    fn drain_deadline(&mut self, _now: SimTime, role: Role, epoch: u32) {
        let r = role.index();
        if self.drain_epoch[r] != epoch {
            return;
        }
        let Some(started) = self.drain_started[r].take() else {
            return;
        };
        let mut closed = 0;
        for id in self.conns.group(role) {
            // Only what was open when the drain began; later ones (fail-open) are not drained.
            if self.conns.get(id).is_some_and(|c| c.opened_at <= started) {
                if let Some(conn) = self.close(id) {
                    closed += 1;
                    self.actions.push_back(Action::Closed {
                        conn,
                        why: LbClose::Drained,
                    });
                }
            }
        }
        self.actions.push_back(Action::DrainEnded { role, closed });
    }

    // ---- client connections ----

    /// Routes a client's new connection: its SOURCE_IP persistence entry if the remembered
    /// member is ONLINE in this node's data plane, else the router's choice; then, for QUIC, a
    /// routing key the node already knows goes where it went before. `None`: no member to send
    /// to (both OFFLINE, `all_down = "drop"`). Refreshes the client's persistence entry.
    pub fn route_connection(
        &mut self,
        now: SimTime,
        client: u32,
        quic_key: Option<u64>,
    ) -> Option<Routed> {
        self.route_connection_hashed(now, client, quic_key, 0)
    }

    /// Whether [`LbNode::route_connection_hashed`] reads its hash (envoy picks the priority
    /// level of each connection with a random draw).
    pub fn needs_route_draw(&self) -> bool {
        self.cfg.envoy.is_some()
    }

    /// [`LbNode::route_connection`] with a uniform `hash` for profiles that draw per
    /// connection: under envoy, the priority level comes from Envoy's per-priority loads
    /// (`envoy::priority_loads`, `envoy::choose_member`) over the data plane's view: the master
    /// while it is healthy, the slave while only it is, both halves of the traffic in panic.
    pub fn route_connection_hashed(
        &mut self,
        now: SimTime,
        client: u32,
        quic_key: Option<u64>,
        hash: u64,
    ) -> Option<Routed> {
        let target = self.router.target();
        let router = &self.router;
        let persisted = self
            .persistence
            .as_ref()
            .and_then(|p| p.lookup(client, now))
            .filter(|&m| router.health(m) == Health::Online);
        let chosen = match self.cfg.envoy {
            Some(dp) => {
                let healthy = Role::BOTH.map(|r| router.health(r) == Health::Online);
                let loads = envoy::priority_loads(&dp.priority, healthy);
                envoy::choose_member(&dp.priority, &loads, hash)
            }
            None => target.member(),
        };
        let mut member = persisted.or(chosen)?;
        if self.cfg.envoy.is_some() {
            // The cluster has carried traffic: Envoy leaves its no-traffic intervals.
            for p in &mut self.probers {
                p.set_traffic_seen();
            }
        }
        if let Some(key) = quic_key {
            if let Some(m) = self.cids.route(key, Target::of(member)) {
                member = m;
            }
        }
        let new_persistence_entry = self
            .persistence
            .as_mut()
            .is_some_and(|p| p.touch(client, member, now));
        Some(Routed {
            member,
            persisted_elsewhere: persisted.is_some() && target.member() != Some(member),
            new_persistence_entry,
        })
    }

    /// A connection routed with `quic_key` never opened (refused, timed out, TLS failed).
    pub fn connect_failed(&mut self, quic_key: Option<u64>) {
        if let Some(key) = quic_key {
            self.cids.release(key);
        }
    }

    /// A routed connection opened. For QUIC, `quic` is `(initial key, handshake key)`: the
    /// member's first CID travels back through the LB in the handshake's SCID, so the node
    /// learns that CID's slice for the member, and the client's Initial DCID is done with.
    pub fn open(&mut self, conn: Conn, quic: Option<(u64, u64)>) -> ConnId {
        let id = self.conns.open(conn);
        if let Some((initial, handshake)) = quic {
            self.cids.bind(handshake, conn.member);
            self.cids.release(initial);
            let q = self.conns.quic_mut(id).expect("opened just now");
            q.keys[0] = handshake;
            q.paths = 1;
        }
        id
    }

    /// A packet of connection `id` on `path` carries a CID with routing key `key` (rotation,
    /// migration, a new path): the node routes it by the key, or the current target if the key
    /// is new. If that is not the connection's member, the connection breaks.
    pub fn route_cid(&mut self, id: ConnId, path: u8, key: u64) -> CidOutcome {
        let Some(conn) = self.conns.get(id) else {
            return CidOutcome::Gone;
        };
        if let Some(m) = self.cids.route(key, self.router.target()) {
            let q = self.conns.quic_mut(id).expect("checked open above");
            let p = path as usize;
            if p < q.paths as usize {
                self.cids.release(q.keys[p]);
            } else {
                q.paths = (p + 1) as u8;
            }
            q.keys[p] = key;
            if m == conn.member {
                return CidOutcome::Kept;
            }
        }
        match self.close(id) {
            Some(c) => CidOutcome::Broken(c),
            None => CidOutcome::Gone,
        }
    }

    /// The connection ended or broke (the client's or the backend's doing); returns it if it was
    /// open.
    pub fn close(&mut self, id: ConnId) -> Option<Conn> {
        if let Some(q) = self.conns.quic(id) {
            for &key in q.keys() {
                self.cids.release(key);
            }
        }
        self.conns.close(id)
    }

    /// The connection, if `id` is still open.
    pub fn conn(&self, id: ConnId) -> Option<Conn> {
        self.conns.get(id)
    }

    /// A QUIC connection's paths, if `id` is still open and is one.
    pub fn quic_paths(&self, id: ConnId) -> Option<&QuicPaths> {
        self.conns.quic(id)
    }

    /// The client of QUIC connection `id` migrated (a new 4-tuple); false if it is closed.
    pub fn quic_migrated(&mut self, id: ConnId) -> bool {
        self.conns.quic_mut(id).map(|q| q.migrations += 1).is_some()
    }

    /// How many connections are open on `role`.
    pub fn open_on(&self, role: Role) -> usize {
        self.conns.open_on(role)
    }

    /// For closing every connection open on `role` without a snapshot: the one a snapshot
    /// ([`ConnTable::group`](super::connections::ConnTable::group)) would give at index `closed`, when the caller has closed the
    /// `closed` handles this returned before (see
    /// [`ConnTable::next_of`](super::connections::ConnTable::next_of)).
    pub fn next_conn_on(&self, role: Role, closed: usize) -> Option<ConnId> {
        self.conns.next_of(role, closed)
    }

    pub fn open_count(&self) -> usize {
        self.conns.open_count()
    }

    /// Entries in the persistence table.
    pub fn persistence_entries(&self) -> usize {
        self.persistence.as_ref().map_or(0, |p| p.len())
    }

    /// Forgets persistence entries expired at `now`; returns how many went.
    pub fn purge_persistence(&mut self, now: SimTime) -> usize {
        self.persistence.as_mut().map_or(0, |p| p.purge(now))
    }

    /// QUIC routing keys the node remembers.
    pub fn cid_entries(&self) -> usize {
        self.cids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Health::*;

    fn cfg() -> LbNodeConfig {
        LbNodeConfig {
            schedule: ProbeSchedule::AfterCompletion,
            delay: SimDuration::from_secs(1),
            rise: 2,
            fall: 2,
            initial: Online,
            all_down: AllDown::Drop,
            failback: Failback::Preemptive,
            reset_on_failback: true,
            route_update_delay: SimDuration::from_millis(100),
            drain: Some(SimDuration::from_secs(5)),
            persistence: Some(SimDuration::from_secs(60)),
            failback_hold_down: SimDuration::from_secs(30),
            rules: crate::model::profile::huawei::rules(
                &crate::model::profile::Monitor {
                    kind: crate::model::probe::ProbeKind::Tcp,
                    delay: SimDuration::from_secs(1),
                    timeout: SimDuration::from_secs(1),
                    rise: 2,
                    fall: 2,
                },
                ProbeSchedule::AfterCompletion,
                false,
            ),
            envoy: None,
            observe: None,
        }
    }

    /// An envoy node: the envoy profile's rules and data plane, all_down and failback as the
    /// engine sets them for it.
    fn envoy_cfg(opts: envoy::Options) -> LbNodeConfig {
        let m = crate::model::profile::Monitor {
            kind: crate::model::probe::ProbeKind::Tcp,
            delay: SimDuration::from_secs(1),
            timeout: SimDuration::from_secs(1),
            rise: 2,
            fall: 2,
        };
        LbNodeConfig {
            all_down: AllDown::Master,
            route_update_delay: SimDuration::ZERO,
            drain: None,
            persistence: None,
            rules: opts
                .rules(&m, ProbeSchedule::AfterCompletion, false)
                .expect("envoy rules"),
            envoy: Some(opts.data_plane()),
            ..cfg()
        }
    }

    /// Fires every timer in `acts` (in order) and collects what follows.
    fn settle(n: &mut LbNode, acts: Vec<Action>) -> Vec<Action> {
        let mut out = Vec::new();
        for a in acts {
            if let Action::SetTimer { at, timer } = a {
                n.handle_timer(at, timer);
                let more = actions(n);
                out.extend(settle(n, more));
            } else {
                out.push(a);
            }
        }
        out
    }

    #[test]
    fn envoy_routes_by_priority_and_splits_in_panic() {
        let mut n = LbNode::new(envoy_cfg(envoy::Options::default()));
        for h in [0, 37, 99] {
            assert_eq!(
                n.route_connection_hashed(t(0), 1, None, h).unwrap().member,
                Role::Master
            );
        }
        let a = actions(&mut n);
        assert!(a.is_empty());
        for _ in 0..2 {
            n.handle_verdict(t(1), Role::Master, false, 0.0);
        }
        let a = actions(&mut n);
        settle(&mut n, a);
        assert_eq!(
            n.route_connection_hashed(t(2), 1, None, 7).unwrap().member,
            Role::Slave
        );
        for _ in 0..2 {
            n.handle_verdict(t(3), Role::Slave, false, 0.0);
        }
        let a = actions(&mut n);
        settle(&mut n, a);
        // Total panic: hash % 100 + 1 <= 50 picks priority 0.
        assert_eq!(
            n.route_connection_hashed(t(4), 1, None, 49).unwrap().member,
            Role::Master
        );
        assert_eq!(
            n.route_connection_hashed(t(4), 1, None, 50).unwrap().member,
            Role::Slave
        );
        assert_eq!(n.target(), Target::Master, "reported as a fail-open");
    }

    #[test]
    fn envoy_an_unexpected_status_fails_the_member_on_one_check() {
        let mut n = LbNode::new(envoy_cfg(envoy::Options::default()));
        let e = n.handle_probe_verdict(t(1), Role::Master, false, Some(503), 0.0);
        assert_eq!(e.transition, Some(Offline));
        // A refusal needs the threshold (2).
        let e = n.handle_probe_verdict(t(1), Role::Slave, false, None, 0.0);
        assert_eq!(e.transition, None);
    }

    #[test]
    fn envoy_outlier_ejects_and_the_sweep_returns() {
        let opts = envoy::Options {
            outlier: Some(envoy::OutlierConfig {
                max_ejection_percent: 50,
                ..envoy::OutlierConfig::default()
            }),
            ..envoy::Options::default()
        };
        let mut n = LbNode::new(envoy_cfg(opts));
        assert!(n.wants_client_outcomes());
        let mut draw = || 0u64;
        for _ in 0..5 {
            n.handle_client_outcome(t(5), Role::Master, envoy::Outcome::Status(503), &mut draw);
        }
        let a = actions(&mut n);
        assert_eq!(
            a[0],
            Action::StatusChanged {
                role: Role::Master,
                health: Offline,
                reason: Some(Reason::ResponseMismatch),
                status: Some(503)
            }
        );
        assert_eq!(n.status(Role::Master), Offline);
        assert!(!n.passive_sees(Role::Master));
        // The sweep at 40 s (the first multiple of 10 s at least 30 s after 5 s) returns it.
        assert!(a.contains(&Action::SetTimer {
            at: t(40),
            timer: Timer::OutlierSweep
        }));
        n.handle_timer(t(40), Timer::OutlierSweep);
        let a = actions(&mut n);
        assert_eq!(
            a[0],
            Action::StatusChanged {
                role: Role::Master,
                health: Online,
                reason: None,
                status: None
            }
        );
        assert_eq!(n.status(Role::Master), Online);
    }

    #[test]
    fn envoy_a_passing_check_returns_an_ejected_member() {
        let opts = envoy::Options {
            outlier: Some(envoy::OutlierConfig {
                max_ejection_percent: 50,
                ..envoy::OutlierConfig::default()
            }),
            ..envoy::Options::default()
        };
        let mut n = LbNode::new(envoy_cfg(opts));
        for _ in 0..5 {
            n.handle_client_outcome(t(5), Role::Master, envoy::Outcome::ConnectFailed, &mut || 0);
        }
        actions(&mut n);
        let e = n.handle_probe_verdict(t(6), Role::Master, true, None, 0.0);
        assert_eq!(e.transition, Some(Online));
    }

    #[test]
    fn envoy_the_immediate_fail_header_takes_the_member_out_at_once() {
        let opts = envoy::Options {
            immediate_health_check_fail: true,
            ..envoy::Options::default()
        };
        let mut n = LbNode::new(envoy_cfg(opts));
        n.handle_client_outcome(t(5), Role::Master, envoy::Outcome::Status(503), &mut || 0);
        let a = actions(&mut n);
        assert!(matches!(
            a[0],
            Action::StatusChanged {
                role: Role::Master,
                health: Offline,
                ..
            }
        ));
        // Two passes bring it back (not the first check any more: healthy_threshold applies).
        assert_eq!(
            n.handle_verdict(t(6), Role::Master, true, 0.0).transition,
            None
        );
        assert_eq!(
            n.handle_verdict(t(7), Role::Master, true, 0.0).transition,
            Some(Online)
        );
    }

    /// A haproxy node (rise 2, fall 3, inter 1 s) with `observe layer4`, `error-limit 3`.
    fn haproxy_cfg(on_error: haproxy::OnError, fastinter: Option<SimDuration>) -> LbNodeConfig {
        let m = crate::model::profile::Monitor {
            kind: crate::model::probe::ProbeKind::Tcp,
            delay: SimDuration::from_secs(1),
            timeout: SimDuration::from_secs(1),
            rise: 2,
            fall: 3,
        };
        let opts = haproxy::Options {
            observe: haproxy::ObserveMode::Layer4,
            error_limit: 3,
            on_error,
            fastinter,
            ..haproxy::Options::default()
        };
        LbNodeConfig {
            rise: 2,
            fall: 3,
            route_update_delay: SimDuration::ZERO,
            drain: None,
            persistence: None,
            rules: opts
                .rules(&m, ProbeSchedule::AfterCompletion, false)
                .expect("haproxy rules"),
            observe: opts.observe(),
            ..cfg()
        }
    }

    #[test]
    fn haproxy_observe_runs_on_error_after_error_limit_client_errors() {
        use crate::model::probe::Reason::{ConnectRefused, ConnectTimeout};
        // mark-down: the third error in a row takes the master out, with its reason.
        let mut n = LbNode::new(haproxy_cfg(haproxy::OnError::MarkDown, None));
        assert!(n.observes_layer4());
        assert_eq!(
            n.handle_l4_outcome(t(1), Role::Master, Some(ConnectRefused)),
            None
        );
        assert_eq!(
            n.handle_l4_outcome(t(1), Role::Master, Some(ConnectRefused)),
            None
        );
        assert!(actions(&mut n).is_empty());
        // A connection that opens clears the count.
        n.handle_l4_outcome(t(2), Role::Master, None);
        n.handle_l4_outcome(t(3), Role::Master, Some(ConnectRefused));
        n.handle_l4_outcome(t(3), Role::Master, Some(ConnectRefused));
        assert!(actions(&mut n).is_empty());
        n.handle_l4_outcome(t(4), Role::Master, Some(ConnectTimeout));
        let a = actions(&mut n);
        assert_eq!(
            a[0],
            Action::StatusChanged {
                role: Role::Master,
                health: Offline,
                reason: Some(ConnectTimeout),
                status: None
            }
        );
        settle(&mut n, a);
        assert_eq!(n.target(), Target::Slave);
        // Checks bring it back as usual (rise 2).
        n.handle_verdict(t(5), Role::Master, true, 0.0);
        assert_eq!(
            n.handle_verdict(t(6), Role::Master, true, 0.0).transition,
            Some(Online)
        );

        // fail-check: each third error is one failed check; a passed check clears the count.
        let mut n = LbNode::new(haproxy_cfg(haproxy::OnError::FailCheck, None));
        let errors = |n: &mut LbNode, k: u32| {
            for _ in 0..k {
                n.handle_l4_outcome(t(1), Role::Master, Some(ConnectRefused));
            }
        };
        errors(&mut n, 6);
        assert_eq!(n.status(Role::Master), Online, "two failed checks of three");
        errors(&mut n, 2);
        n.handle_verdict(t(2), Role::Master, true, 0.0);
        errors(&mut n, 2);
        assert_eq!(
            n.status(Role::Master),
            Online,
            "the check cleared the count"
        );
        // The passed check also reset the failure streak: three more actions to go down, the
        // third at the ninth error since the check.
        errors(&mut n, 6);
        assert_eq!(n.status(Role::Master), Online);
        errors(&mut n, 1);
        assert_eq!(n.status(Role::Master), Offline);

        // sudden-death: the first action leaves it one failure from DOWN.
        let mut n = LbNode::new(haproxy_cfg(haproxy::OnError::SuddenDeath, None));
        errors(&mut n, 3);
        assert_eq!(n.status(Role::Master), Online);
        assert_eq!(
            n.handle_verdict(t(2), Role::Master, false, 0.0).transition,
            Some(Offline)
        );

        // fastinter: no status change, and a reschedule only when fastinter is set.
        let mut n = LbNode::new(haproxy_cfg(haproxy::OnError::FastInter, None));
        errors(&mut n, 30);
        assert_eq!(n.status(Role::Master), Online);
        assert!(actions(&mut n).is_empty());
        let fast = Some(SimDuration::from_millis(300));
        let mut n = LbNode::new(haproxy_cfg(haproxy::OnError::FastInter, fast));
        assert_eq!(
            n.handle_l4_outcome(t(7), Role::Slave, Some(ConnectRefused)),
            None
        );
        assert_eq!(
            n.handle_l4_outcome(t(7), Role::Slave, Some(ConnectRefused)),
            None
        );
        assert_eq!(
            n.handle_l4_outcome(t(7), Role::Slave, Some(ConnectRefused)),
            Some(t(7) + SimDuration::from_millis(300))
        );
        // Every mode moves the check when fastinter is set.
        let mut n = LbNode::new(haproxy_cfg(haproxy::OnError::MarkDown, fast));
        errors(&mut n, 2);
        assert!(n
            .handle_l4_outcome(t(8), Role::Master, Some(ConnectRefused))
            .is_some());
        // Without observe nothing is counted.
        let mut n = LbNode::new(cfg());
        assert!(!n.observes_layer4());
        for _ in 0..20 {
            assert_eq!(
                n.handle_l4_outcome(t(1), Role::Master, Some(ConnectRefused)),
                None
            );
        }
        assert_eq!(n.status(Role::Master), Online);
    }

    fn t(s: u64) -> SimTime {
        SimTime::ZERO + SimDuration::from_secs(s)
    }

    fn conn(member: Role, at: SimTime) -> Conn {
        Conn {
            member,
            client: 0,
            opened_at: at,
            active_until: at + SimDuration::from_secs(1000),
            serial: 0,
        }
    }

    fn actions(n: &mut LbNode) -> Vec<Action> {
        std::iter::from_fn(|| n.poll_action()).collect()
    }

    /// Feeds `k` verdicts and fires the timers they ask for.
    fn verdicts(n: &mut LbNode, now: SimTime, role: Role, ok: bool, k: u32) -> Vec<Action> {
        let mut out = Vec::new();
        for _ in 0..k {
            n.handle_verdict(now, role, ok, 0.0);
        }
        for a in actions(n) {
            if let Action::SetTimer { at, timer } = a {
                n.handle_timer(at, timer);
                out.extend(actions(n));
            }
        }
        out
    }

    #[test]
    fn a_verdict_reaches_the_data_plane_after_the_route_update_delay() {
        let mut n = LbNode::new(cfg());
        n.handle_verdict(t(1), Role::Master, false, 0.0);
        assert!(n.poll_action().is_none());
        let e = n.handle_verdict(t(2), Role::Master, false, 0.0);
        assert_eq!(e.transition, Some(Offline));
        assert_eq!(n.status(Role::Master), Offline);
        assert_eq!(n.health(Role::Master), Online, "not applied yet");
        let Some(Action::SetTimer { at, timer }) = n.poll_action() else {
            panic!("a timer")
        };
        assert_eq!(at, t(2) + SimDuration::from_millis(100));
        n.handle_timer(at, timer);
        assert_eq!(n.target(), Target::Slave);
    }

    #[test]
    fn drain_closes_what_was_open_at_its_start_and_a_comeback_cancels_it() {
        let mut n = LbNode::new(cfg());
        let a = n.open(conn(Role::Master, t(0)), None);
        let acts = verdicts(&mut n, t(10), Role::Master, false, 2);
        assert!(acts.iter().any(|a| matches!(
            a,
            Action::DrainStarted {
                role: Role::Master,
                ..
            }
        )));
        let deadline = acts
            .iter()
            .find_map(|a| match a {
                Action::SetTimer {
                    at,
                    timer: timer @ Timer::DrainDeadline { .. },
                } => Some((*at, *timer)),
                _ => None,
            })
            .expect("deadline timer");
        n.handle_timer(deadline.0, deadline.1);
        let acts = actions(&mut n);
        assert!(matches!(
            acts[0],
            Action::Closed {
                why: LbClose::Drained,
                ..
            }
        ));
        assert!(n.conn(a).is_none());
        // A comeback inside the window cancels the next drain.
        let mut n = LbNode::new(cfg());
        let b = n.open(conn(Role::Master, t(0)), None);
        let acts = verdicts(&mut n, t(10), Role::Master, false, 2);
        let (at, timer) = acts
            .iter()
            .find_map(|a| match a {
                Action::SetTimer { at, timer } => Some((*at, *timer)),
                _ => None,
            })
            .expect("deadline");
        let back = verdicts(&mut n, t(11), Role::Master, true, 2);
        assert!(back
            .iter()
            .any(|a| matches!(a, Action::DrainCancelled { .. })));
        n.handle_timer(at, timer);
        assert!(actions(&mut n).is_empty(), "stale deadline");
        assert!(n.conn(b).is_some());
    }

    #[test]
    fn reset_on_failback_only_on_a_real_failback() {
        // Fail-open: slave down, then master down, all_down = master; then the slave comes back
        // and the route moves master -> slave; the master's recovery later is a real failback.
        let mut c = cfg();
        c.all_down = AllDown::Master;
        c.drain = None;
        let mut n = LbNode::new(c);
        verdicts(&mut n, t(1), Role::Master, false, 2);
        assert_eq!(n.target(), Target::Slave);
        let s = n.open(conn(Role::Slave, t(2)), None);
        // The slave fails too: fail open to the (OFFLINE) master. Not a failback: no reset.
        let acts = verdicts(&mut n, t(3), Role::Slave, false, 2);
        assert!(acts.iter().any(|a| matches!(
            a,
            Action::RouteChanged {
                failback: false,
                ..
            }
        )));
        assert!(!acts.iter().any(|a| matches!(a, Action::Closed { .. })));
        assert!(n.conn(s).is_some());
        // Slave back: route to slave; master back: a real failback, the slave's sessions reset.
        verdicts(&mut n, t(4), Role::Slave, true, 2);
        let acts = verdicts(&mut n, t(5), Role::Master, true, 2);
        assert!(acts
            .iter()
            .any(|a| matches!(a, Action::RouteChanged { failback: true, .. })));
        assert!(acts.iter().any(|a| matches!(
            a,
            Action::Closed {
                why: LbClose::ResetOnFailback,
                ..
            }
        )));
        assert!(n.conn(s).is_none());
    }

    #[test]
    fn hold_down_returns_the_traffic_only_after_the_master_stayed_online() {
        let mut c = cfg();
        c.failback = Failback::HoldDown;
        c.route_update_delay = SimDuration::ZERO;
        c.drain = None;
        let mut n = LbNode::new(c);
        verdicts(&mut n, t(1), Role::Master, false, 2);
        assert_eq!(n.target(), Target::Slave);
        // The master is back at 10 s: the hold-down timer, 30 s later.
        n.handle_verdict(t(10), Role::Master, true, 0.0);
        n.handle_verdict(t(10), Role::Master, true, 0.0);
        let Some(Action::SetTimer { at, timer }) = n.poll_action() else {
            panic!("apply timer")
        };
        n.handle_timer(at, timer);
        let hold = actions(&mut n)
            .into_iter()
            .find_map(|a| match a {
                Action::SetTimer {
                    at,
                    timer: timer @ Timer::FailbackHold { .. },
                } => Some((at, timer)),
                _ => None,
            })
            .expect("a hold-down timer");
        assert_eq!(hold.0, t(40));
        assert_eq!(n.target(), Target::Slave, "held on the slave");
        n.handle_timer(hold.0, hold.1);
        assert!(actions(&mut n)
            .iter()
            .any(|a| matches!(a, Action::RouteChanged { failback: true, .. })));
        assert_eq!(n.target(), Target::Master);
        // A master that fails during its hold-down: the old timer is stale.
        verdicts(&mut n, t(50), Role::Master, false, 2);
        let acts = verdicts(&mut n, t(60), Role::Master, true, 2);
        let (at, timer) = acts
            .iter()
            .find_map(|a| match a {
                Action::SetTimer { at, timer } => Some((*at, *timer)),
                _ => None,
            })
            .expect("hold timer");
        verdicts(&mut n, t(70), Role::Master, false, 2);
        verdicts(&mut n, t(80), Role::Master, true, 2);
        n.handle_timer(at, timer);
        assert!(actions(&mut n).is_empty(), "stale hold");
        assert_eq!(n.target(), Target::Slave);
    }

    #[test]
    fn persistence_keeps_a_client_on_its_member_while_it_is_online() {
        let mut n = LbNode::new(cfg());
        verdicts(&mut n, t(1), Role::Master, false, 2);
        let r = n.route_connection(t(2), 7, None).expect("routed");
        assert_eq!(r.member, Role::Slave);
        assert!(r.new_persistence_entry);
        verdicts(&mut n, t(3), Role::Master, true, 2);
        assert_eq!(n.target(), Target::Master);
        let r = n.route_connection(t(4), 7, None).expect("routed");
        assert_eq!(r.member, Role::Slave);
        assert!(r.persisted_elsewhere && !r.new_persistence_entry);
        assert_eq!(
            n.route_connection(t(4), 8, None).unwrap().member,
            Role::Master
        );
        assert_eq!(n.persistence_entries(), 2);
    }
}
