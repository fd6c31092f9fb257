//! The `envoy` profile: the pool's health monitor under Envoy's rules, as sans-IO state machines.
//!
//! Envoy has no master/slave pool; the closest configuration, and the one this profile models, is
//! a cluster with the master at priority 0 and the slave at priority 1, one active health checker
//! (the API's `healthmonitor` mapped onto Envoy's `HealthCheck`), optional outlier detection (the
//! passive part, fed by client traffic) and the load balancer's priority and panic rules. Every
//! rule below names the Envoy source it was read from (paths in `envoyproxy/envoy`); the user docs
//! (`docs/profiles.md`, section "envoy") carry the same list with the defaults.
//!
//! Three machines, each handed `now` and its random draws by the driver:
//!
//! - [`EnvoyChecker`]: one member's active health checking in one LB node
//!   (`source/extensions/health_checkers/common/health_checker_base_impl.cc`,
//!   `ActiveHealthCheckSession::handleSuccess` / `setUnhealthy` / `handleFailure`,
//!   `HealthCheckerImplBase::interval` / `intervalWithJitter`). A network failure (refused, reset)
//!   or a timeout counts towards `unhealthy_threshold`; an HTTP status outside the expected ones
//!   fails the host *at once*, unless it is a retriable status
//!   (`source/extensions/health_checkers/http/health_checker_impl.cc`, `healthCheckResult`). The
//!   next check is scheduled after each verdict with an interval that depends on the verdict and on
//!   whether a transition is pending (the edge intervals), plus jitter.
//! - [`OutlierDetector`]: consecutive 5xx and consecutive gateway failures per host, ejection for
//!   `base_ejection_time` × a backoff that grows with each ejection, checked on a sweep timer every
//!   `interval` (`source/common/upstream/outlier_detection_impl.cc`).
//! - [`priority_loads`] and [`choose_member`]: Envoy's split of traffic across priority levels with
//!   the overprovisioning factor and the panic threshold
//!   (`source/extensions/load_balancing_policies/common/load_balancer_impl.cc`,
//!   `recalculatePerPriorityState`, `recalculatePerPriorityPanic`, `choosePriority`,
//!   `hostSourceToUse`).
//!
//! Envoy counts time in whole milliseconds (`PROTOBUF_GET_MS_*`) and draws jitter as
//! `random() % n` milliseconds; the machines here do the same, with the draws handed in as `u64`.

use crate::model::health::Health;
use crate::model::router::Role;
use crate::time::{SimDuration, SimTime};

const NANOS_PER_MS: u64 = 1_000_000;

fn ms(d: SimDuration) -> u64 {
    d.0 / NANOS_PER_MS
}

fn from_ms(ms: u64) -> SimDuration {
    SimDuration::from_millis(ms)
}

// ---------------------------------------------------------------------------------------------
// HTTP status sets
// ---------------------------------------------------------------------------------------------

/// A set of HTTP status codes in `[100, 600)`, as Envoy's `Int64Range` lists give them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatusSet {
    /// Bit `code - 100`.
    bits: [u64; 8],
}

impl StatusSet {
    /// The empty set.
    pub const EMPTY: StatusSet = StatusSet { bits: [0; 8] };

    /// Envoy's default expected statuses: 200 only (`HttpStatusChecker`, default
    /// `Http::Code::OK`).
    pub fn only_200() -> StatusSet {
        let mut s = StatusSet::EMPTY;
        s.insert_range(200, 201);
        s
    }

    /// Adds the half-open range `[start, end)`, clipped to `[100, 600)`.
    pub fn insert_range(&mut self, start: u16, end: u16) {
        for code in start.max(100)..end.min(600) {
            let i = (code - 100) as usize;
            self.bits[i / 64] |= 1 << (i % 64);
        }
    }

    pub fn contains(&self, code: u16) -> bool {
        if !(100..600).contains(&code) {
            return false;
        }
        let i = (code - 100) as usize;
        self.bits[i / 64] & (1 << (i % 64)) != 0
    }

    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|b| *b == 0)
    }
}

// ---------------------------------------------------------------------------------------------
// Active health checking
// ---------------------------------------------------------------------------------------------

/// Envoy's `HealthCheck` as this profile uses it. Durations are whole milliseconds, as Envoy reads
/// them; the scenario loader rejects sub-millisecond values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthCheckConfig {
    /// `interval` (required) = healthmonitor.delay.
    pub interval: SimDuration,
    /// `timeout` (required) = healthmonitor.timeout: from sending the check to giving up.
    pub timeout: SimDuration,
    /// `unhealthy_threshold` (required) = healthmonitor.max_retries_down.
    pub unhealthy_threshold: u32,
    /// `healthy_threshold` (required) = healthmonitor.max_retries.
    pub healthy_threshold: u32,
    /// `interval_jitter`, default 0: up to this much (uniform, whole ms) added to every interval.
    pub interval_jitter: SimDuration,
    /// `interval_jitter_percent`, default 0: up to this percentage of the interval added too.
    pub interval_jitter_percent: u32,
    /// `initial_jitter`, default 0: the first check waits uniformly up to this long; with 0 it goes
    /// out at once.
    pub initial_jitter: SimDuration,
    /// `unhealthy_interval`, default `interval`: between checks of an unhealthy host.
    pub unhealthy_interval: SimDuration,
    /// `unhealthy_edge_interval`, default `unhealthy_interval`: after a failed check of a healthy
    /// host whose fall is still pending.
    pub unhealthy_edge_interval: SimDuration,
    /// `healthy_edge_interval`, default `interval`: after a passed check of an unhealthy host
    /// whose rise is still pending.
    pub healthy_edge_interval: SimDuration,
    /// `no_traffic_interval`, default 60 s: every interval while the cluster has never carried
    /// traffic (takes precedence over all the others).
    pub no_traffic_interval: SimDuration,
    /// `no_traffic_healthy_interval`, default `no_traffic_interval`: the same for a healthy host
    /// with no transition pending.
    pub no_traffic_healthy_interval: SimDuration,
    /// `http_health_check.expected_statuses`, default 200 only (= healthmonitor.expected_codes).
    pub expected_statuses: StatusSet,
    /// `http_health_check.retriable_statuses`, default none: failing statuses that count towards
    /// `unhealthy_threshold` instead of failing the host at once.
    pub retriable_statuses: StatusSet,
}

impl HealthCheckConfig {
    /// The required fields, every optional one at Envoy's default.
    pub fn new(
        interval: SimDuration,
        timeout: SimDuration,
        unhealthy_threshold: u32,
        healthy_threshold: u32,
    ) -> Self {
        let no_traffic = SimDuration::from_secs(60);
        HealthCheckConfig {
            interval,
            timeout,
            unhealthy_threshold: unhealthy_threshold.max(1),
            healthy_threshold: healthy_threshold.max(1),
            interval_jitter: SimDuration::ZERO,
            interval_jitter_percent: 0,
            initial_jitter: SimDuration::ZERO,
            unhealthy_interval: interval,
            unhealthy_edge_interval: interval,
            healthy_edge_interval: interval,
            no_traffic_interval: no_traffic,
            no_traffic_healthy_interval: no_traffic,
            expected_statuses: StatusSet::only_200(),
            retriable_statuses: StatusSet::EMPTY,
        }
    }

    /// The most jitter one interval of base `base` can get: `interval_jitter_percent` of it plus
    /// `interval_jitter`, each drawn as `random() % n` whole milliseconds (so at most n − 1 ms).
    pub fn max_jitter(&self, base: SimDuration) -> SimDuration {
        let pct = self.interval_jitter_percent as u64 * ms(base) / 100;
        let j = ms(self.interval_jitter);
        from_ms(pct.saturating_sub(1) + j.saturating_sub(1))
    }
}

/// What one check found, as Envoy's checker classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckResult {
    /// Connected (TCP), or an HTTP answer whose status is expected.
    Success,
    /// Connection refused, reset or closed (`NETWORK`): counts towards the threshold.
    Network,
    /// No answer within `timeout` (`NETWORK_TIMEOUT`): counts towards the threshold.
    Timeout,
    /// An HTTP answer with `code`. `immediate_fail` = the answer carried
    /// `x-envoy-immediate-health-check-fail`.
    Status { code: u16, immediate_fail: bool },
}

/// Envoy's `HealthTransition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Unchanged,
    /// The streak towards a transition grew but has not reached its threshold.
    ChangePending,
    Changed,
}

/// What a check's verdict did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckEffect {
    /// The host's new status when it changed.
    pub transition: Option<Health>,
    /// Envoy's view of the change, which picks the next interval.
    pub change: Transition,
    /// The check failed (any kind).
    pub failed: bool,
    /// When the next check goes out.
    pub next_check_at: SimTime,
}

/// One member's active health checking in one LB node: Envoy's `ActiveHealthCheckSession`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvoyChecker {
    /// Not `FAILED_ACTIVE_HC`.
    healthy: bool,
    /// `EXCLUDED_VIA_IMMEDIATE_HC_FAIL`: set by the header, cleared when the host turns healthy.
    excluded: bool,
    num_healthy: u32,
    num_unhealthy: u32,
    /// No verdict yet: the first success marks an unhealthy host healthy at once.
    first_check: bool,
}

impl EnvoyChecker {
    /// A checker whose host starts `initial`. Envoy itself starts every host of a health-checked
    /// cluster unhealthy (`FAILED_ACTIVE_HC`, "If we are depending on a health checker, we
    /// initialize to unhealthy", `source/common/upstream/upstream_impl.cc`); `Online` models a
    /// node that has been running for long (steady state).
    pub fn new(initial: Health) -> Self {
        EnvoyChecker {
            healthy: initial == Health::Online,
            excluded: false,
            num_healthy: 0,
            num_unhealthy: 0,
            first_check: true,
        }
    }

    pub fn status(&self) -> Health {
        if self.healthy {
            Health::Online
        } else {
            Health::Offline
        }
    }

    /// The host was excluded by `x-envoy-immediate-health-check-fail` and has not passed since.
    pub fn excluded(&self) -> bool {
        self.excluded
    }

    /// Delay of the first check after the checker starts (`onInitialInterval`): at once with no
    /// `initial_jitter`, else `max(1, draw % initial_jitter)` ms (`intervalWithJitter(0, ...)`).
    pub fn first_check_delay(cfg: &HealthCheckConfig, draw: u64) -> SimDuration {
        let j = ms(cfg.initial_jitter);
        if j == 0 {
            SimDuration::ZERO
        } else {
            from_ms((draw % j).max(1))
        }
    }

    /// A check's verdict arrived at `now`. `traffic_seen`: the cluster has carried traffic (else
    /// the no-traffic intervals apply). `draw` supplies the jitter draws (none, one or two).
    pub fn on_result(
        &mut self,
        cfg: &HealthCheckConfig,
        now: SimTime,
        result: CheckResult,
        traffic_seen: bool,
        draw: &mut impl FnMut() -> u64,
    ) -> CheckEffect {
        let before = self.healthy;
        let (passed, change) = match result {
            CheckResult::Success => (true, self.handle_success(cfg)),
            CheckResult::Network | CheckResult::Timeout => {
                (false, self.set_unhealthy(cfg, true, false))
            }
            CheckResult::Status {
                code,
                immediate_fail,
            } => {
                if cfg.expected_statuses.contains(code) {
                    (true, self.handle_success(cfg))
                } else {
                    // healthCheckResult: the header on a failing status excludes the host.
                    if immediate_fail {
                        self.excluded = true;
                    }
                    let retriable = cfg.retriable_statuses.contains(code);
                    (false, self.set_unhealthy(cfg, false, retriable))
                }
            }
        };
        let base = interval_base(cfg, passed, change, traffic_seen);
        CheckEffect {
            transition: (before != self.healthy).then(|| self.status()),
            change,
            failed: !passed,
            next_check_at: now + interval_with_jitter(cfg, base, draw),
        }
    }

    /// The router saw `x-envoy-immediate-health-check-fail` on a client's response
    /// (`source/common/router/router.cc`, `Filter::onUpstreamHeaders`, then
    /// `HealthCheckerImplBase::setUnhealthyCrossThread`): the host is excluded and fails at once
    /// (a `PASSIVE`, non-retriable failure). The check schedule is not touched. Returns the new
    /// status if it changed.
    pub fn on_immediate_fail_header(&mut self, cfg: &HealthCheckConfig) -> Option<Health> {
        self.excluded = true;
        let before = self.healthy;
        self.set_unhealthy(cfg, false, false);
        (before != self.healthy).then(|| self.status())
    }

    /// `handleSuccess`.
    fn handle_success(&mut self, cfg: &HealthCheckConfig) -> Transition {
        self.num_unhealthy = 0;
        let mut change = Transition::Unchanged;
        if !self.healthy {
            // The checker's very first verdict, if a success, marks the host healthy at once
            // ("This makes startup faster"); later ones need healthy_threshold in a row.
            self.num_healthy = self.num_healthy.saturating_add(1);
            if self.first_check || self.num_healthy == cfg.healthy_threshold {
                self.healthy = true;
                self.excluded = false;
                change = Transition::Changed;
            } else {
                change = Transition::ChangePending;
            }
        }
        self.first_check = false;
        change
    }

    /// `setUnhealthy`: `network` = NETWORK / NETWORK_TIMEOUT, which count towards the threshold;
    /// any other failure fails a healthy host at once unless it is `retriable`.
    fn set_unhealthy(
        &mut self,
        cfg: &HealthCheckConfig,
        network: bool,
        retriable: bool,
    ) -> Transition {
        self.num_healthy = 0;
        let mut change = Transition::Unchanged;
        if self.healthy {
            // Envoy's `(!network && !retriable) || ++num_unhealthy_ == threshold`: the counter
            // is not bumped on an immediate failure (short-circuit).
            let immediate = !network && !retriable;
            if immediate || {
                self.num_unhealthy = self.num_unhealthy.saturating_add(1);
                self.num_unhealthy == cfg.unhealthy_threshold
            } {
                self.healthy = false;
                change = Transition::Changed;
            } else {
                change = Transition::ChangePending;
            }
        }
        self.first_check = false;
        change
    }
}

/// `HealthCheckerImplBase::interval(state, changed_state)` before jitter. `passed` is the check's
/// own result (Envoy's `HealthState` argument), not the host's status.
pub fn interval_base(
    cfg: &HealthCheckConfig,
    passed: bool,
    change: Transition,
    traffic_seen: bool,
) -> SimDuration {
    let pending = change == Transition::ChangePending;
    if traffic_seen {
        // The edge intervals apply while a transition is *pending* (the code's comment and
        // behaviour); the API docs describe them as "right after" a transition.
        match (passed, pending) {
            (false, true) => cfg.unhealthy_edge_interval,
            (false, false) => cfg.unhealthy_interval,
            (true, true) => cfg.healthy_edge_interval,
            (true, false) => cfg.interval,
        }
    } else if passed && !pending {
        cfg.no_traffic_healthy_interval
    } else {
        cfg.no_traffic_interval
    }
}

/// `intervalWithJitter`: `interval_jitter_percent` then `interval_jitter`, each as
/// `random() % n` ms, and at least 1 ms ("to prevent live lock").
pub fn interval_with_jitter(
    cfg: &HealthCheckConfig,
    base: SimDuration,
    draw: &mut impl FnMut() -> u64,
) -> SimDuration {
    let mut t = ms(base);
    let pct = cfg.interval_jitter_percent as u64 * t / 100;
    if pct > 0 {
        t += draw() % pct;
    }
    let j = ms(cfg.interval_jitter);
    if j > 0 {
        t += draw() % j;
    }
    from_ms(t.max(1))
}

// ---------------------------------------------------------------------------------------------
// Outlier detection (passive)
// ---------------------------------------------------------------------------------------------

/// Envoy's `OutlierDetection`, the consecutive-error part (success-rate and failure-percentage
/// ejection need at least 5 hosts by default and never act on a two-member pool).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutlierConfig {
    /// `interval`, default 10 s: the sweep that returns ejected hosts.
    pub interval: SimDuration,
    /// `base_ejection_time`, default 30 s.
    pub base_ejection_time: SimDuration,
    /// `max_ejection_time`, default max(300 s, base_ejection_time).
    pub max_ejection_time: SimDuration,
    /// `max_ejection_time_jitter`, default 0: added to each ejection, `random() % (j + 1)` ms.
    pub max_ejection_time_jitter: SimDuration,
    /// `consecutive_5xx`, default 5.
    pub consecutive_5xx: u32,
    /// `consecutive_gateway_failure` (502, 503, 504), default 5.
    pub consecutive_gateway_failure: u32,
    /// `enforcing_consecutive_5xx`, percent, default 100.
    pub enforcing_consecutive_5xx: u32,
    /// `enforcing_consecutive_gateway_failure`, percent, default 0 (detected, not enforced).
    pub enforcing_consecutive_gateway_failure: u32,
    /// `max_ejection_percent`, default 10. An ejection needs (ejected + 1) / hosts × 100 <= this:
    /// in a two-member pool, 50 for one member and 100 for both.
    pub max_ejection_percent: u32,
    /// `always_eject_one_host`, default false: the first ejection ignores max_ejection_percent.
    pub always_eject_one_host: bool,
    /// `successful_active_health_check_uneject_host`, default true: a passed active check
    /// returns an ejected host at once.
    pub successful_active_health_check_uneject_host: bool,
}

impl Default for OutlierConfig {
    fn default() -> Self {
        OutlierConfig {
            interval: SimDuration::from_secs(10),
            base_ejection_time: SimDuration::from_secs(30),
            max_ejection_time: SimDuration::from_secs(300),
            max_ejection_time_jitter: SimDuration::ZERO,
            consecutive_5xx: 5,
            consecutive_gateway_failure: 5,
            enforcing_consecutive_5xx: 100,
            enforcing_consecutive_gateway_failure: 0,
            max_ejection_percent: 10,
            always_eject_one_host: false,
            successful_active_health_check_uneject_host: true,
        }
    }
}

/// What a client operation on a member looked like to the outlier detector. With
/// `split_external_local_origin_errors` off (Envoy's default), local-origin errors are mapped to
/// HTTP codes (`DetectorHostMonitorImpl::resultToHttpCode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP response with this status.
    Status(u16),
    /// The connection was refused or reset: `LocalOriginConnectFailed`, counted as 503.
    ConnectFailed,
    /// A connection not answered in time: `LocalOriginTimeout`, counted as 504.
    Timeout,
    /// A request on an open connection not answered in time (the router's upstream timeout):
    /// counted as 504.
    RequestTimeout,
}

impl Outcome {
    fn code(self) -> u16 {
        match self {
            Outcome::Status(c) => c,
            Outcome::ConnectFailed => 503,
            Outcome::Timeout | Outcome::RequestTimeout => 504,
        }
    }
}

/// Why a host was ejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EjectionKind {
    Consecutive5xx,
    ConsecutiveGatewayFailure,
}

/// A change the outlier detector made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutlierEvent {
    Ejected {
        role: Role,
        kind: EjectionKind,
    },
    /// The threshold was reached but the ejection did not happen: `max_ejection_percent`
    /// forbade it (`overflow`) or the `enforcing_*` draw said no.
    NotEjected {
        role: Role,
        kind: EjectionKind,
        overflow: bool,
    },
    Unejected {
        role: Role,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct HostMonitor {
    consecutive_5xx: u32,
    consecutive_gateway: u32,
    ejected: bool,
    /// `eject_time_backoff_`: the ejection lasts base × this (capped), and it decays by one per
    /// sweep while the host stays in.
    backoff: u32,
    last_ejection: Option<SimTime>,
    last_unejection: Option<SimTime>,
    jitter: SimDuration,
}

/// Outlier detection of one LB node over the pool's two members (`DetectorImpl`).
#[derive(Debug, Clone, PartialEq)]
pub struct OutlierDetector {
    cfg: OutlierConfig,
    hosts: [HostMonitor; 2],
    next_sweep: SimTime,
}

impl OutlierDetector {
    /// The sweep timer is armed when the detector starts (`initialize` -> `armIntervalTimer`).
    pub fn new(cfg: OutlierConfig, start: SimTime) -> Self {
        OutlierDetector {
            cfg,
            hosts: [HostMonitor::default(); 2],
            next_sweep: start + cfg.interval,
        }
    }

    pub fn ejected(&self, role: Role) -> bool {
        self.hosts[role.index()].ejected
    }

    /// When the next sweep runs; the driver calls [`OutlierDetector::on_sweep`] then.
    pub fn next_sweep(&self) -> SimTime {
        self.next_sweep
    }

    /// How long an ejection that starts now would last before the sweep may return the host:
    /// min(base × backoff, max) + jitter, with the backoff as it will be after the ejection.
    pub fn ejection_span(&self, role: Role) -> SimDuration {
        let h = &self.hosts[role.index()];
        self.span_for(h.backoff, h.jitter)
    }

    fn span_for(&self, backoff: u32, jitter: SimDuration) -> SimDuration {
        let base = ms(self.cfg.base_ejection_time);
        let max = ms(self.cfg.max_ejection_time);
        from_ms((base.saturating_mul(backoff as u64)).min(max)) + jitter
    }

    /// A client operation on `role` ended with `outcome` (`putHttpResponseCode` after the
    /// local-origin mapping). `draw` supplies the enforcement and ejection-jitter draws.
    pub fn on_outcome(
        &mut self,
        now: SimTime,
        role: Role,
        outcome: Outcome,
        draw: &mut impl FnMut() -> u64,
    ) -> Vec<OutlierEvent> {
        let code = outcome.code();
        let h = &mut self.hosts[role.index()];
        let mut fired = Vec::new();
        if (500..600).contains(&code) {
            if matches!(code, 502..=504) {
                h.consecutive_gateway = h.consecutive_gateway.saturating_add(1);
                if h.consecutive_gateway == self.cfg.consecutive_gateway_failure {
                    fired.push(EjectionKind::ConsecutiveGatewayFailure);
                }
            } else {
                h.consecutive_gateway = 0;
            }
            h.consecutive_5xx = h.consecutive_5xx.saturating_add(1);
            if h.consecutive_5xx == self.cfg.consecutive_5xx {
                fired.push(EjectionKind::Consecutive5xx);
            }
        } else {
            h.consecutive_5xx = 0;
            h.consecutive_gateway = 0;
        }
        let mut events = Vec::new();
        for kind in fired {
            if let Some(e) = self.on_consecutive_error(now, role, kind, draw) {
                events.push(e);
            }
        }
        events
    }

    /// `onConsecutiveErrorWorker`: an ejected host is left alone (and its counter is not reset);
    /// otherwise try to eject, then reset the counter that fired.
    fn on_consecutive_error(
        &mut self,
        now: SimTime,
        role: Role,
        kind: EjectionKind,
        draw: &mut impl FnMut() -> u64,
    ) -> Option<OutlierEvent> {
        if self.hosts[role.index()].ejected {
            return None;
        }
        let event = self.eject(now, role, kind, draw);
        let h = &mut self.hosts[role.index()];
        match kind {
            EjectionKind::Consecutive5xx => h.consecutive_5xx = 0,
            EjectionKind::ConsecutiveGatewayFailure => h.consecutive_gateway = 0,
        }
        Some(event)
    }

    /// `ejectHost`.
    fn eject(
        &mut self,
        now: SimTime,
        role: Role,
        kind: EjectionKind,
        draw: &mut impl FnMut() -> u64,
    ) -> OutlierEvent {
        let active = self.hosts.iter().filter(|h| h.ejected).count() as u64;
        let max_pct = self.cfg.max_ejection_percent.min(100) as f64;
        let ejected_pct = 100.0 * (active + 1) as f64 / self.hosts.len() as f64;
        let allowed = ejected_pct <= max_pct || (self.cfg.always_eject_one_host && active == 0);
        if !allowed {
            return OutlierEvent::NotEjected {
                role,
                kind,
                overflow: true,
            };
        }
        let enforcing = match kind {
            EjectionKind::Consecutive5xx => self.cfg.enforcing_consecutive_5xx,
            EjectionKind::ConsecutiveGatewayFailure => {
                self.cfg.enforcing_consecutive_gateway_failure
            }
        };
        // Runtime `featureEnabled(key, percent)`: a draw modulo 100 below the percentage.
        let enforced = enforcing >= 100 || (enforcing > 0 && draw() % 100 < enforcing as u64);
        if !enforced {
            return OutlierEvent::NotEjected {
                role,
                kind,
                overflow: false,
            };
        }
        let jitter_ms = ms(self.cfg.max_ejection_time_jitter);
        let jitter = if jitter_ms > 0 {
            from_ms(draw() % (jitter_ms + 1))
        } else {
            SimDuration::ZERO
        };
        let base = ms(self.cfg.base_ejection_time);
        let max = ms(self.cfg.max_ejection_time);
        let h = &mut self.hosts[role.index()];
        h.ejected = true;
        h.last_ejection = Some(now);
        h.jitter = jitter;
        if (h.backoff as u64).saturating_mul(base) < max.saturating_add(base) {
            h.backoff += 1;
        }
        OutlierEvent::Ejected { role, kind }
    }

    /// `unejectHost`: counters reset so that a few new errors do not eject again at once.
    fn uneject(&mut self, now: SimTime, role: Role) -> OutlierEvent {
        let h = &mut self.hosts[role.index()];
        h.ejected = false;
        h.consecutive_5xx = 0;
        h.consecutive_gateway = 0;
        h.last_unejection = Some(now);
        OutlierEvent::Unejected { role }
    }

    /// The sweep timer fired (`onIntervalTimer`): return hosts whose ejection has run its course,
    /// decay the backoff of hosts that stayed in for a whole interval, and re-arm.
    pub fn on_sweep(&mut self, now: SimTime) -> Vec<OutlierEvent> {
        let mut events = Vec::new();
        for role in Role::BOTH {
            let h = self.hosts[role.index()];
            if let (true, Some(at)) = (h.ejected, h.last_ejection) {
                if self.span_for(h.backoff, h.jitter) <= now.since(at) {
                    events.push(self.uneject(now, role));
                }
            }
        }
        for h in &mut self.hosts {
            if !h.ejected {
                if let Some(at) = h.last_unejection {
                    if now.since(at) >= self.cfg.interval && h.backoff != 0 {
                        h.backoff -= 1;
                    }
                }
            }
        }
        self.next_sweep = now + self.cfg.interval;
        events
    }

    /// Runs every sweep due up to `now` (the sweeps only return hosts and decay backoffs, so a
    /// driver may run them late, in a batch, as long as it wakes at [`Self::wake_at`]).
    pub fn advance(&mut self, now: SimTime) -> Vec<OutlierEvent> {
        let mut events = Vec::new();
        while self.next_sweep <= now {
            let at = self.next_sweep;
            events.extend(self.on_sweep(at));
        }
        events
    }

    /// The sweep that will return `role`, if it is ejected: the first one at least the
    /// ejection's span after the ejection.
    pub fn wake_at(&self, role: Role) -> Option<SimTime> {
        let h = &self.hosts[role.index()];
        let at = h.last_ejection.filter(|_| h.ejected)?;
        let due = at + self.span_for(h.backoff, h.jitter);
        let step = self.cfg.interval.0.max(1);
        let k = due.0.saturating_sub(self.next_sweep.0).div_ceil(step);
        Some(SimTime(self.next_sweep.0 + k * step))
    }

    /// An active check of `role` completed and the host is healthy by active checking: with
    /// `successful_active_health_check_uneject_host`, an ejected host returns at once.
    pub fn on_active_check_passed(&mut self, now: SimTime, role: Role) -> Option<OutlierEvent> {
        if self.cfg.successful_active_health_check_uneject_host && self.hosts[role.index()].ejected
        {
            Some(self.uneject(now, role))
        } else {
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Priority levels and the panic threshold
// ---------------------------------------------------------------------------------------------

/// The load balancer settings this profile models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriorityConfig {
    /// `ClusterLoadAssignment.policy.overprovisioning_factor`, percent, default 140 (= 1.4).
    pub overprovisioning_factor: u32,
    /// `common_lb_config.healthy_panic_threshold`, percent, default 50.
    pub healthy_panic_threshold: u32,
    /// `zone_aware_lb_config.fail_traffic_on_panic`, default false: a priority in panic gets no
    /// traffic instead of all its hosts.
    pub fail_traffic_on_panic: bool,
}

impl Default for PriorityConfig {
    fn default() -> Self {
        PriorityConfig {
            overprovisioning_factor: 140,
            healthy_panic_threshold: 50,
            fail_traffic_on_panic: false,
        }
    }
}

/// Per-priority load (percent of new connections, summing to 100) and panic flags; index 0 is
/// the master (priority 0), index 1 the slave (priority 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriorityLoads {
    pub load: [u32; 2],
    pub panic: [bool; 2],
    /// Member health the loads were computed from.
    pub healthy: [bool; 2],
}

/// Envoy's per-priority load for one host per priority. A host is healthy when it passes active
/// checking and is not ejected by outlier detection. (An excluded host counts as no host at its
/// level, which for a level of one host gives the same loads as an unhealthy one.)
pub fn priority_loads(cfg: &PriorityConfig, healthy: [bool; 2]) -> PriorityLoads {
    // recalculatePerPriorityState: health = min(100, factor × healthy / total).
    let health: [u32; 2] = healthy.map(|h| {
        if h {
            cfg.overprovisioning_factor.min(100)
        } else {
            0
        }
    });
    let normalized = (health[0] + health[1]).min(100);
    let mut load = [0u32; 2];
    if normalized > 0 {
        let mut remaining = 100u32;
        let mut first_available = None;
        for i in 0..2 {
            if first_available.is_none() && health[i] > 0 {
                first_available = Some(i);
            }
            load[i] = remaining.min((health[i] * 100).checked_div(normalized).unwrap_or(0));
            remaining -= load[i];
        }
        // Rounding leftovers go to the first available priority.
        if let (true, Some(i)) = (remaining > 0, first_available) {
            load[i] += remaining;
        }
    }
    // recalculatePerPriorityPanic.
    let threshold = cfg.healthy_panic_threshold.min(100);
    if threshold == 0 && normalized == 0 {
        return PriorityLoads {
            load: [100, 0],
            panic: [false; 2],
            healthy,
        };
    }
    let panic: [bool; 2] = healthy.map(|h| {
        let healthy_percent = if h { 100 } else { 0 };
        normalized != 100 && healthy_percent < threshold
    });
    if panic[0] && panic[1] {
        // recalculateLoadInTotalPanic: by host count, whatever the health: 50 / 50.
        load = [50, 50];
    }
    PriorityLoads {
        load,
        panic,
        healthy,
    }
}

/// Where a new connection goes (`choosePriority` then `hostSourceToUse`): `hash` picks the
/// priority (`hash % 100 + 1` against the cumulative loads); a priority in panic uses all its
/// hosts (healthy or not) unless `fail_traffic_on_panic`; otherwise only a healthy host. `None`:
/// no host ("no healthy upstream").
pub fn choose_member(cfg: &PriorityConfig, loads: &PriorityLoads, hash: u64) -> Option<Role> {
    let h = (hash % 100 + 1) as u32;
    let mut acc = 0;
    let mut priority = 0;
    for (i, l) in loads.load.iter().enumerate() {
        acc += l;
        if h <= acc {
            priority = i;
            break;
        }
    }
    let role = if priority == 0 {
        Role::Master
    } else {
        Role::Slave
    };
    if loads.panic[priority] {
        (!cfg.fail_traffic_on_panic).then_some(role)
    } else {
        loads.healthy[priority].then_some(role)
    }
}

// ---------------------------------------------------------------------------------------------
// Options (`[model.envoy]`)
// ---------------------------------------------------------------------------------------------

/// `[model.envoy]`: Envoy settings the API has no field for. `None` durations default as Envoy
/// defaults them (from `interval` = the pool's `delay`, or from each other).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    pub interval_jitter: SimDuration,
    pub interval_jitter_percent: u32,
    pub initial_jitter: SimDuration,
    pub unhealthy_interval: Option<SimDuration>,
    pub unhealthy_edge_interval: Option<SimDuration>,
    pub healthy_edge_interval: Option<SimDuration>,
    pub no_traffic_interval: SimDuration,
    pub no_traffic_healthy_interval: Option<SimDuration>,
    /// `retriable_statuses`, inclusive ranges.
    pub retriable_statuses: StatusRanges,
    /// The member's failing HTTP answers carry `x-envoy-immediate-health-check-fail`.
    pub immediate_health_check_fail: bool,
    /// `[model.envoy.outlier_detection]`, when present.
    pub outlier: Option<OutlierConfig>,
    pub priority: PriorityConfig,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            interval_jitter: SimDuration::ZERO,
            interval_jitter_percent: 0,
            initial_jitter: SimDuration::ZERO,
            unhealthy_interval: None,
            unhealthy_edge_interval: None,
            healthy_edge_interval: None,
            no_traffic_interval: SimDuration::from_secs(60),
            no_traffic_healthy_interval: None,
            retriable_statuses: StatusRanges::default(),
            immediate_health_check_fail: false,
            outlier: None,
            priority: PriorityConfig::default(),
        }
    }
}

impl Options {
    /// Envoy's `HealthCheck` for a monitor of `delay`, `timeout`, `fall` (max_retries_down) and
    /// `rise` (max_retries), with these options and Envoy's defaults for the rest.
    pub fn health_check(
        &self,
        delay: SimDuration,
        timeout: SimDuration,
        fall: u32,
        rise: u32,
    ) -> HealthCheckConfig {
        let mut c = HealthCheckConfig::new(delay, timeout, fall, rise);
        c.interval_jitter = self.interval_jitter;
        c.interval_jitter_percent = self.interval_jitter_percent;
        c.initial_jitter = self.initial_jitter;
        c.unhealthy_interval = self.unhealthy_interval.unwrap_or(delay);
        c.unhealthy_edge_interval = self.unhealthy_edge_interval.unwrap_or(c.unhealthy_interval);
        c.healthy_edge_interval = self.healthy_edge_interval.unwrap_or(delay);
        c.no_traffic_interval = self.no_traffic_interval;
        c.no_traffic_healthy_interval = self
            .no_traffic_healthy_interval
            .unwrap_or(self.no_traffic_interval);
        c.retriable_statuses = self.retriable_statuses.to_set();
        c
    }
}

/// Up to five inclusive status ranges (the API's `expected_codes` grammar), `Copy` and small:
/// what the compiled rules carry of `retriable_statuses`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatusRanges {
    ranges: [(u16, u16); 5],
    len: u8,
}

impl StatusRanges {
    /// The most ranges kept (the API's limit for `expected_codes`).
    pub const MAX: usize = 5;

    /// From inclusive ranges; `None` when there are more than [`Self::MAX`].
    pub fn from_inclusive(ranges: &[(u16, u16)]) -> Option<StatusRanges> {
        if ranges.len() > Self::MAX {
            return None;
        }
        let mut r = StatusRanges::default();
        for (i, &x) in ranges.iter().enumerate() {
            r.ranges[i] = x;
        }
        r.len = ranges.len() as u8;
        Some(r)
    }

    pub fn contains(&self, code: u16) -> bool {
        self.ranges[..self.len as usize]
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&code))
    }

    /// The same codes as a [`StatusSet`].
    pub fn to_set(&self) -> StatusSet {
        let mut s = StatusSet::EMPTY;
        for &(lo, hi) in &self.ranges[..self.len as usize] {
            s.insert_range(lo, hi.saturating_add(1));
        }
        s
    }
}

/// The compiled interval policy of the envoy profile, and the counting detail the prober needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnvoyIntervals {
    pub interval: SimDuration,
    pub unhealthy: SimDuration,
    pub unhealthy_edge: SimDuration,
    pub healthy_edge: SimDuration,
    pub no_traffic: SimDuration,
    pub no_traffic_healthy: SimDuration,
    /// `retriable_statuses`: failing statuses that count towards the threshold.
    pub retriable: StatusRanges,
}

impl EnvoyIntervals {
    /// The interval after a verdict that passed (`ok`) or not, the member now `status` (the
    /// verdict counted): a transition is pending when the verdict disagrees with the status.
    /// Out of line: it keeps the other profiles' probe path small.
    #[inline(never)]
    pub fn after(&self, status: Health, ok: bool, traffic_seen: bool) -> SimDuration {
        let pending = ok != (status == Health::Online);
        let change = if pending {
            Transition::ChangePending
        } else {
            Transition::Unchanged
        };
        let cfg = HealthCheckConfig {
            unhealthy_interval: self.unhealthy,
            unhealthy_edge_interval: self.unhealthy_edge,
            healthy_edge_interval: self.healthy_edge,
            no_traffic_interval: self.no_traffic,
            no_traffic_healthy_interval: self.no_traffic_healthy,
            ..HealthCheckConfig::new(self.interval, SimDuration::ZERO, 1, 1)
        };
        interval_base(&cfg, ok, change, traffic_seen)
    }

    /// The longest interval any state asks for; the no-traffic intervals count only when the
    /// run starts before the cluster has carried traffic (`traffic_seen` false).
    pub fn longest(&self, traffic_seen: bool) -> SimDuration {
        let with_traffic = self
            .interval
            .max(self.unhealthy)
            .max(self.unhealthy_edge)
            .max(self.healthy_edge);
        if traffic_seen {
            with_traffic
        } else {
            with_traffic
                .max(self.no_traffic)
                .max(self.no_traffic_healthy)
        }
    }

    /// A failed verdict with `status` fails the host at once: an HTTP status outside the
    /// expected ones (the world reports it as RESPONSE_MISMATCH) that is not retriable.
    #[inline]
    pub fn fails_at_once(&self, status: Option<u16>) -> bool {
        status.is_some_and(|s| !self.retriable.contains(s))
    }
}

/// Envoy's jitter for one interval from one uniform draw `u` in `[0, 1)`: whole milliseconds
/// uniform in `[0, percent × interval / 100)` plus whole milliseconds uniform in `[0, ms)`, the
/// two taken from the integer and fractional parts of one draw (independent and uniform, as
/// Envoy's two `random() %` calls are).
pub fn additive_jitter(interval: SimDuration, percent: u32, jitter_ms: u64, u: f64) -> SimDuration {
    let pct = percent as u64 * ms(interval) / 100;
    let mut extra = 0u64;
    let mut u = u;
    if pct > 0 {
        let x = u * pct as f64;
        let a = (x.floor() as u64).min(pct - 1);
        extra += a;
        u = (x - a as f64).clamp(0.0, 1.0 - f64::EPSILON);
    }
    if jitter_ms > 0 {
        extra += ((u * jitter_ms as f64).floor() as u64).min(jitter_ms - 1);
    }
    from_ms(extra)
}

impl Options {
    /// The compiled rules of the envoy profile for `m` (see the module docs for each rule).
    /// `fresh`: Envoy starts with the run (hosts unhealthy, first check at once, the first pass
    /// marks healthy; no traffic yet); otherwise steady state.
    pub fn rules(
        &self,
        m: &super::Monitor,
        schedule: crate::model::health::ProbeSchedule,
        fresh: bool,
    ) -> Result<super::Rules, super::ProfileError> {
        use super::{FirstProbes, Intervals, Jitter, Judging, ProbeState, ProfileName, Read};
        if schedule != crate::model::health::ProbeSchedule::AfterCompletion {
            return Err(super::ProfileError::new(
                "model.probe_schedule",
                "Envoy schedules each check after the previous one's verdict \
                 (health_checker_base_impl.cc, handleSuccess / handleFailure); \
                 probe_schedule = \"fixed_rate\" does not apply to profile envoy",
            ));
        }
        let hc = self.health_check(m.delay, m.timeout, m.fall, m.rise);
        let retriable = self.retriable_statuses;
        let jitter = if hc.interval_jitter_percent > 0 || ms(hc.interval_jitter) > 0 {
            Jitter::Additive {
                percent: hc.interval_jitter_percent,
                ms: ms(hc.interval_jitter),
            }
        } else {
            Jitter::None
        };
        Ok(super::Rules {
            profile: ProfileName::Envoy,
            schedule,
            rise: m.rise.max(1),
            fall: m.fall.max(1),
            initial: if fresh {
                Health::Offline
            } else {
                Health::Online
            },
            initial_fail_streak: 0,
            intervals: Intervals::Envoy(EnvoyIntervals {
                interval: hc.interval,
                unhealthy: hc.unhealthy_interval,
                unhealthy_edge: hc.unhealthy_edge_interval,
                healthy_edge: hc.healthy_edge_interval,
                no_traffic: hc.no_traffic_interval,
                no_traffic_healthy: hc.no_traffic_healthy_interval,
                retriable,
            }),
            jitter,
            judging: Judging {
                // One timeout from the check's start bounds it all (onIntervalBase arms
                // timeout_timer_ when the check starts).
                connect: m.timeout,
                read: Read::FromSend(m.timeout),
                udp_echo: true,
                udp_silence: m.timeout,
                clients_seen: self.outlier.is_some() || self.immediate_health_check_fail,
            },
            first: if fresh {
                FirstProbes::Uniform(self.initial_jitter)
            } else {
                FirstProbes::Uniform(m.delay)
            },
            initial_probe_state: ProbeState {
                has_run: !fresh,
                traffic_seen: !fresh,
                ..ProbeState::default()
            },
            close_on_down: false,
        })
    }
}

/// What an LB node needs of the envoy profile beyond the probe rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DataPlane {
    pub priority: PriorityConfig,
    pub outlier: Option<OutlierConfig>,
    /// The member's failing answers carry `x-envoy-immediate-health-check-fail`, which the
    /// router reads on clients' answers.
    pub immediate_fail_header: bool,
}

impl Options {
    /// The data-plane parts of these options.
    pub fn data_plane(&self) -> DataPlane {
        DataPlane {
            priority: self.priority,
            outlier: self.outlier,
            immediate_fail_header: self.immediate_health_check_fail,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Closed-form detection windows
// ---------------------------------------------------------------------------------------------

/// How a fault looks to Envoy's active checker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultClass {
    /// Refused after one round trip and counted towards `unhealthy_threshold` (crash, and the
    /// refusal faults).
    Refused,
    /// Silent: every check times out (host_down; hang under an HTTP check).
    Silent,
    /// An HTTP status outside `expected_statuses` and outside `retriable_statuses`: fails the
    /// host on the first failing check.
    ImmediateStatus,
    /// A retriable HTTP status: counts like a refusal.
    RetriableStatus,
}

/// The interval of detection latency (fault start -> the node's unhealthy verdict) over a
/// uniform check phase, in steady state with traffic, a fixed round trip `rtt` and no noise.
///
/// The healthy cycle is `interval` + jitter + `rtt`; the first failing check goes out somewhere
/// in it. Each later failing check waits `unhealthy_edge_interval` (+ jitter) after the previous
/// verdict: with F = `unhealthy_threshold`, E = `unhealthy_edge_interval`, c = the time one
/// failing check takes (`rtt`, or `timeout` when silent):
/// `[c + (F−1)(E + c), (I + J_I + rtt) + c + (F−1)(E + J_E + c)]`, where J_x is the most jitter
/// an interval x can get. An immediate status needs one failing check: `[rtt, I + J_I + 2·rtt]`.
pub fn detection_window(
    cfg: &HealthCheckConfig,
    class: FaultClass,
    rtt: SimDuration,
) -> (SimDuration, SimDuration) {
    let f = cfg.unhealthy_threshold.max(1) as u64;
    let cycle = cfg.interval + cfg.max_jitter(cfg.interval) + rtt;
    let (c, n) = match class {
        FaultClass::Refused | FaultClass::RetriableStatus => (rtt, f),
        FaultClass::Silent => (cfg.timeout, f),
        FaultClass::ImmediateStatus => (rtt, 1),
    };
    let e = cfg.unhealthy_edge_interval;
    let rest_min = SimDuration((e + c).0.saturating_mul(n - 1));
    let rest_max = SimDuration((e + cfg.max_jitter(e) + c).0.saturating_mul(n - 1));
    (c + rest_min, cycle + c + rest_max)
}

/// The interval of recovery latency (fault end -> the node's healthy verdict), for a host that
/// turned unhealthy under the fault and whose checks fail taking `c_fail` each (`rtt` refused,
/// `timeout` silent): the first passing check goes out within one unhealthy cycle
/// (`unhealthy_interval` + jitter + `c_fail`), and with R = `healthy_threshold`, each later one
/// `healthy_edge_interval` (+ jitter) after the previous verdict:
/// `[rtt + (R−1)(H + rtt), (U + J_U + c_fail) + rtt + (R−1)(H + J_H + rtt)]`.
pub fn recovery_window(
    cfg: &HealthCheckConfig,
    c_fail: SimDuration,
    rtt: SimDuration,
) -> (SimDuration, SimDuration) {
    let r = cfg.healthy_threshold.max(1) as u64;
    let u = cfg.unhealthy_interval;
    let h = cfg.healthy_edge_interval;
    let cycle = u + cfg.max_jitter(u) + c_fail;
    let rest_min = SimDuration((h + rtt).0.saturating_mul(r - 1));
    let rest_max = SimDuration((h + cfg.max_jitter(h) + rtt).0.saturating_mul(r - 1));
    (rtt + rest_min, cycle + rtt + rest_max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> SimDuration {
        SimDuration::from_secs(s)
    }

    fn hc() -> HealthCheckConfig {
        HealthCheckConfig::new(secs(5), secs(3), 3, 2)
    }

    fn no_draw() -> impl FnMut() -> u64 {
        || panic!("no draw expected")
    }

    fn run(c: &mut EnvoyChecker, cfg: &HealthCheckConfig, r: CheckResult) -> CheckEffect {
        c.on_result(cfg, SimTime(0), r, true, &mut no_draw())
    }

    const S503: CheckResult = CheckResult::Status {
        code: 503,
        immediate_fail: false,
    };

    #[test]
    fn network_failures_count_towards_the_threshold() {
        let cfg = hc();
        let mut c = EnvoyChecker::new(Health::Online);
        assert_eq!(
            run(&mut c, &cfg, CheckResult::Network).change,
            Transition::ChangePending
        );
        assert_eq!(
            run(&mut c, &cfg, CheckResult::Timeout).change,
            Transition::ChangePending
        );
        let e = run(&mut c, &cfg, CheckResult::Network);
        assert_eq!(e.transition, Some(Health::Offline));
        assert_eq!(e.change, Transition::Changed);
        // Further failures of an unhealthy host change nothing.
        assert_eq!(
            run(&mut c, &cfg, CheckResult::Network).change,
            Transition::Unchanged
        );
    }

    #[test]
    fn a_success_resets_the_fall_streak() {
        let cfg = hc();
        let mut c = EnvoyChecker::new(Health::Online);
        for _ in 0..10 {
            run(&mut c, &cfg, CheckResult::Network);
            run(&mut c, &cfg, CheckResult::Network);
            assert_eq!(
                run(&mut c, &cfg, CheckResult::Success).change,
                Transition::Unchanged
            );
        }
        assert_eq!(c.status(), Health::Online);
    }

    #[test]
    fn an_unexpected_status_fails_the_host_at_once_unless_retriable() {
        let mut cfg = hc();
        let mut c = EnvoyChecker::new(Health::Online);
        assert_eq!(run(&mut c, &cfg, S503).transition, Some(Health::Offline));
        // Any unexpected status, not only 503.
        let mut c = EnvoyChecker::new(Health::Online);
        let s500 = CheckResult::Status {
            code: 500,
            immediate_fail: false,
        };
        assert_eq!(run(&mut c, &cfg, s500).transition, Some(Health::Offline));
        // Retriable: counts like a network failure.
        cfg.retriable_statuses.insert_range(503, 504);
        let mut c = EnvoyChecker::new(Health::Online);
        assert_eq!(run(&mut c, &cfg, S503).transition, None);
        assert_eq!(run(&mut c, &cfg, S503).transition, None);
        assert_eq!(run(&mut c, &cfg, S503).transition, Some(Health::Offline));
        // An expected status passes.
        cfg.expected_statuses.insert_range(503, 504);
        let mut c = EnvoyChecker::new(Health::Online);
        assert!(!run(&mut c, &cfg, S503).failed);
    }

    #[test]
    fn the_header_excludes_and_the_router_path_fails_at_once() {
        let cfg = hc();
        let mut c = EnvoyChecker::new(Health::Online);
        assert_eq!(c.on_immediate_fail_header(&cfg), Some(Health::Offline));
        assert!(c.excluded());
        assert_eq!(c.on_immediate_fail_header(&cfg), None);
        // Recovery needs healthy_threshold successes (not the first check any more) and clears
        // the exclusion.
        assert_eq!(run(&mut c, &cfg, CheckResult::Success).transition, None);
        assert_eq!(
            run(&mut c, &cfg, CheckResult::Success).transition,
            Some(Health::Online)
        );
        assert!(!c.excluded());
        // On an active check's failing status the header only excludes.
        let mut c = EnvoyChecker::new(Health::Online);
        let hdr = CheckResult::Status {
            code: 503,
            immediate_fail: true,
        };
        assert_eq!(run(&mut c, &cfg, hdr).transition, Some(Health::Offline));
        assert!(c.excluded());
    }

    #[test]
    fn first_success_marks_a_starting_host_healthy_at_once() {
        let cfg = HealthCheckConfig::new(secs(5), secs(3), 3, 5);
        let mut c = EnvoyChecker::new(Health::Offline);
        assert_eq!(
            run(&mut c, &cfg, CheckResult::Success).transition,
            Some(Health::Online)
        );
        // A failing first check spends the fast path: healthy_threshold in a row then.
        let mut c = EnvoyChecker::new(Health::Offline);
        assert_eq!(
            run(&mut c, &cfg, CheckResult::Network).change,
            Transition::Unchanged
        );
        for _ in 0..4 {
            assert_eq!(
                run(&mut c, &cfg, CheckResult::Success).change,
                Transition::ChangePending
            );
        }
        assert_eq!(
            run(&mut c, &cfg, CheckResult::Success).transition,
            Some(Health::Online)
        );
    }

    #[test]
    fn intervals_follow_the_verdict_and_the_pending_transition() {
        let mut cfg = hc();
        cfg.unhealthy_interval = secs(20);
        cfg.unhealthy_edge_interval = secs(1);
        cfg.healthy_edge_interval = secs(2);
        let at = |e: CheckEffect| e.next_check_at.0 / 1_000_000_000;
        let mut c = EnvoyChecker::new(Health::Online);
        assert_eq!(at(run(&mut c, &cfg, CheckResult::Success)), 5);
        assert_eq!(at(run(&mut c, &cfg, CheckResult::Network)), 1); // pending fall
        assert_eq!(at(run(&mut c, &cfg, CheckResult::Network)), 1);
        assert_eq!(at(run(&mut c, &cfg, CheckResult::Network)), 20); // changed
        assert_eq!(at(run(&mut c, &cfg, CheckResult::Network)), 20); // unhealthy
        assert_eq!(at(run(&mut c, &cfg, CheckResult::Success)), 2); // pending rise
        assert_eq!(at(run(&mut c, &cfg, CheckResult::Success)), 5); // changed
                                                                    // Without traffic: no_traffic_healthy_interval for a healthy verdict with nothing
                                                                    // pending, no_traffic_interval otherwise.
        cfg.no_traffic_healthy_interval = secs(90);
        let mut c = EnvoyChecker::new(Health::Online);
        let e = c.on_result(
            &cfg,
            SimTime(0),
            CheckResult::Success,
            false,
            &mut no_draw(),
        );
        assert_eq!(at(e), 90);
        let e = c.on_result(
            &cfg,
            SimTime(0),
            CheckResult::Network,
            false,
            &mut no_draw(),
        );
        assert_eq!(at(e), 60);
    }

    #[test]
    fn jitter_is_drawn_in_whole_milliseconds_modulo_its_bound() {
        let mut cfg = hc();
        cfg.interval_jitter = SimDuration::from_millis(1000);
        cfg.interval_jitter_percent = 10;
        let mut draws = [1234u64, 5678].into_iter();
        let mut d = || draws.next().unwrap();
        // 5000 + 1234 % 500 + 5678 % 1000 = 5000 + 234 + 678.
        assert_eq!(
            interval_with_jitter(&cfg, secs(5), &mut d),
            SimDuration::from_millis(5912)
        );
        assert_eq!(cfg.max_jitter(secs(5)), SimDuration::from_millis(499 + 999));
        // Never below 1 ms.
        let cfg0 = HealthCheckConfig::new(SimDuration::ZERO, secs(1), 1, 1);
        assert_eq!(
            interval_with_jitter(&cfg0, SimDuration::ZERO, &mut no_draw()),
            SimDuration::from_millis(1)
        );
    }

    #[test]
    fn the_first_check_goes_out_at_once_or_within_initial_jitter() {
        let mut cfg = hc();
        assert_eq!(
            EnvoyChecker::first_check_delay(&cfg, 999),
            SimDuration::ZERO
        );
        cfg.initial_jitter = SimDuration::from_millis(2000);
        assert_eq!(
            EnvoyChecker::first_check_delay(&cfg, 4321),
            SimDuration::from_millis(321)
        );
        assert_eq!(
            EnvoyChecker::first_check_delay(&cfg, 4000),
            SimDuration::from_millis(1)
        );
    }

    fn outlier(max_pct: u32) -> OutlierDetector {
        OutlierDetector::new(
            OutlierConfig {
                max_ejection_percent: max_pct,
                ..OutlierConfig::default()
            },
            SimTime(0),
        )
    }

    fn feed(
        od: &mut OutlierDetector,
        t: SimTime,
        role: Role,
        o: Outcome,
        n: u32,
    ) -> Vec<OutlierEvent> {
        let mut all = Vec::new();
        for _ in 0..n {
            all.extend(od.on_outcome(t, role, o, &mut no_draw()));
        }
        all
    }

    #[test]
    fn default_max_ejection_percent_ejects_nobody_in_a_pair() {
        let mut od = outlier(10);
        let ev = feed(&mut od, SimTime(0), Role::Master, Outcome::Status(500), 5);
        assert_eq!(
            ev,
            vec![OutlierEvent::NotEjected {
                role: Role::Master,
                kind: EjectionKind::Consecutive5xx,
                overflow: true
            }]
        );
        assert!(!od.ejected(Role::Master));
        // always_eject_one_host lets the first one go.
        let mut od = OutlierDetector::new(
            OutlierConfig {
                always_eject_one_host: true,
                ..OutlierConfig::default()
            },
            SimTime(0),
        );
        feed(&mut od, SimTime(0), Role::Master, Outcome::Status(500), 5);
        assert!(od.ejected(Role::Master));
        feed(&mut od, SimTime(0), Role::Slave, Outcome::Status(500), 5);
        assert!(!od.ejected(Role::Slave));
    }

    #[test]
    fn consecutive_5xx_ejects_and_a_success_resets() {
        let mut od = outlier(50);
        feed(&mut od, SimTime(0), Role::Master, Outcome::Status(500), 4);
        feed(&mut od, SimTime(0), Role::Master, Outcome::Status(200), 1);
        feed(&mut od, SimTime(0), Role::Master, Outcome::Status(500), 4);
        assert!(!od.ejected(Role::Master));
        // A 4xx is not an error for outlier detection: it resets too.
        feed(&mut od, SimTime(0), Role::Master, Outcome::Status(404), 1);
        let ev = feed(&mut od, SimTime(0), Role::Master, Outcome::Status(500), 5);
        assert_eq!(
            ev,
            vec![OutlierEvent::Ejected {
                role: Role::Master,
                kind: EjectionKind::Consecutive5xx
            }]
        );
        // Refused connections count as 503 (a 5xx and a gateway failure).
        let mut od = outlier(50);
        feed(&mut od, SimTime(0), Role::Slave, Outcome::ConnectFailed, 5);
        assert!(od.ejected(Role::Slave));
        // Only one of two members may go at 50 %.
        feed(&mut od, SimTime(0), Role::Master, Outcome::Timeout, 5);
        assert!(!od.ejected(Role::Master));
    }

    #[test]
    fn gateway_failures_are_detected_but_not_enforced_by_default() {
        let mut od = OutlierDetector::new(
            OutlierConfig {
                max_ejection_percent: 100,
                consecutive_5xx: 100,
                ..OutlierConfig::default()
            },
            SimTime(0),
        );
        let ev = feed(&mut od, SimTime(0), Role::Master, Outcome::Status(503), 5);
        assert_eq!(
            ev,
            vec![OutlierEvent::NotEjected {
                role: Role::Master,
                kind: EjectionKind::ConsecutiveGatewayFailure,
                overflow: false
            }]
        );
        let mut od = OutlierDetector::new(
            OutlierConfig {
                max_ejection_percent: 100,
                consecutive_5xx: 100,
                enforcing_consecutive_gateway_failure: 100,
                ..OutlierConfig::default()
            },
            SimTime(0),
        );
        feed(&mut od, SimTime(0), Role::Master, Outcome::Status(503), 5);
        assert!(od.ejected(Role::Master));
        // A 500 breaks the gateway streak.
        let mut od = OutlierDetector::new(
            OutlierConfig {
                max_ejection_percent: 100,
                consecutive_5xx: 100,
                enforcing_consecutive_gateway_failure: 100,
                ..OutlierConfig::default()
            },
            SimTime(0),
        );
        feed(&mut od, SimTime(0), Role::Master, Outcome::Status(503), 4);
        feed(&mut od, SimTime(0), Role::Master, Outcome::Status(500), 1);
        feed(&mut od, SimTime(0), Role::Master, Outcome::Status(503), 4);
        assert!(!od.ejected(Role::Master));
    }

    #[test]
    fn partial_enforcement_uses_a_draw() {
        let mut od = OutlierDetector::new(
            OutlierConfig {
                max_ejection_percent: 100,
                enforcing_consecutive_5xx: 30,
                ..OutlierConfig::default()
            },
            SimTime(0),
        );
        for _ in 0..4 {
            od.on_outcome(
                SimTime(0),
                Role::Master,
                Outcome::Status(500),
                &mut no_draw(),
            );
        }
        let ev = od.on_outcome(SimTime(0), Role::Master, Outcome::Status(500), &mut || 130);
        assert!(matches!(
            ev[0],
            OutlierEvent::NotEjected {
                overflow: false,
                ..
            }
        ));
        for _ in 0..4 {
            od.on_outcome(
                SimTime(0),
                Role::Master,
                Outcome::Status(500),
                &mut no_draw(),
            );
        }
        let ev = od.on_outcome(SimTime(0), Role::Master, Outcome::Status(500), &mut || 129);
        assert!(matches!(ev[0], OutlierEvent::Ejected { .. }));
    }

    #[test]
    fn ejection_time_grows_with_each_ejection_and_decays_while_healthy() {
        let mut od = outlier(50);
        let s = |x: u64| SimTime(x * 1_000_000_000);
        // First ejection at 5 s: base × 1 = 30 s; the sweeps run at 10, 20, 30, 40 s.
        feed(&mut od, s(5), Role::Master, Outcome::Status(500), 5);
        assert_eq!(od.ejection_span(Role::Master), secs(30));
        for t in [10, 20, 30] {
            assert!(od.on_sweep(s(t)).is_empty(), "still ejected at {t}");
        }
        assert_eq!(
            od.on_sweep(s(40)),
            vec![OutlierEvent::Unejected { role: Role::Master }]
        );
        // Ejected again at once: base × 2 = 60 s.
        feed(&mut od, s(41), Role::Master, Outcome::Status(500), 5);
        assert_eq!(od.ejection_span(Role::Master), secs(60));
        for t in [50, 60, 70, 80, 90] {
            assert!(od.on_sweep(s(t)).is_empty(), "still ejected at {t}");
        }
        assert_eq!(od.on_sweep(s(110)).len(), 1);
        // Two sweeps a full interval after the unejection decay the backoff back to 0.
        od.on_sweep(s(120));
        od.on_sweep(s(130));
        feed(&mut od, s(131), Role::Master, Outcome::Status(500), 5);
        assert_eq!(od.ejection_span(Role::Master), secs(30));
    }

    #[test]
    fn ejection_time_is_capped_at_max_ejection_time() {
        let mut od = OutlierDetector::new(
            OutlierConfig {
                max_ejection_percent: 50,
                max_ejection_time: secs(70),
                ..OutlierConfig::default()
            },
            SimTime(0),
        );
        let mut t = 0u64;
        for _ in 0..6 {
            feed(&mut od, SimTime(t), Role::Master, Outcome::Status(500), 5);
            assert!(od.ejection_span(Role::Master) <= secs(70));
            t += 1_000_000_000_000;
            od.on_sweep(SimTime(t));
        }
        assert_eq!(od.ejection_span(Role::Master), secs(70));
    }

    #[test]
    fn lazy_sweeps_match_the_timer_and_wake_at_the_returning_sweep() {
        let s = |x: u64| SimTime(x * 1_000_000_000);
        let mut eager = outlier(50);
        let mut lazy = outlier(50);
        for od in [&mut eager, &mut lazy] {
            feed(od, s(5), Role::Master, Outcome::Status(500), 5);
        }
        assert_eq!(lazy.wake_at(Role::Master), Some(s(40)));
        assert_eq!(lazy.wake_at(Role::Slave), None);
        let mut eager_events = Vec::new();
        for t in (10..=200).step_by(10) {
            eager_events.extend(eager.on_sweep(s(t)));
            if t == 60 {
                eager_events.extend(feed(
                    &mut eager,
                    s(61),
                    Role::Master,
                    Outcome::Status(500),
                    5,
                ));
            }
        }
        let mut lazy_events = lazy.advance(s(40));
        lazy_events.extend(lazy.advance(s(60)));
        lazy_events.extend(feed(
            &mut lazy,
            s(61),
            Role::Master,
            Outcome::Status(500),
            5,
        ));
        // The sweep at 50 s, a full interval after the return at 40 s, decayed the backoff to 0:
        // the ejection at 61 s lasts base × 1 again.
        assert_eq!(lazy.ejection_span(Role::Master), secs(30));
        assert_eq!(lazy.wake_at(Role::Master), Some(s(100)));
        lazy_events.extend(lazy.advance(s(200)));
        assert_eq!(eager_events, lazy_events);
        assert_eq!(eager, lazy);
    }

    #[test]
    fn a_passed_active_check_returns_an_ejected_host() {
        let mut od = outlier(50);
        feed(&mut od, SimTime(0), Role::Master, Outcome::Status(500), 5);
        assert_eq!(
            od.on_active_check_passed(SimTime(1), Role::Master),
            Some(OutlierEvent::Unejected { role: Role::Master })
        );
        let mut od = OutlierDetector::new(
            OutlierConfig {
                max_ejection_percent: 50,
                successful_active_health_check_uneject_host: false,
                ..OutlierConfig::default()
            },
            SimTime(0),
        );
        feed(&mut od, SimTime(0), Role::Master, Outcome::Status(500), 5);
        assert_eq!(od.on_active_check_passed(SimTime(1), Role::Master), None);
    }

    #[test]
    fn ejection_jitter_lengthens_the_ejection() {
        let mut od = OutlierDetector::new(
            OutlierConfig {
                max_ejection_percent: 50,
                max_ejection_time_jitter: SimDuration::from_millis(1000),
                ..OutlierConfig::default()
            },
            SimTime(0),
        );
        for _ in 0..4 {
            od.on_outcome(
                SimTime(0),
                Role::Master,
                Outcome::Status(500),
                &mut no_draw(),
            );
        }
        od.on_outcome(SimTime(0), Role::Master, Outcome::Status(500), &mut || 2002);
        // 2002 % 1001 = 0; the jitter bound is inclusive of the maximum.
        assert_eq!(od.ejection_span(Role::Master), secs(30));
        let mut od2 = od.clone();
        od2.hosts[0].ejected = false;
        for _ in 0..4 {
            od2.on_outcome(
                SimTime(0),
                Role::Slave,
                Outcome::Status(500),
                &mut no_draw(),
            );
        }
        od2.on_outcome(SimTime(0), Role::Slave, Outcome::Status(500), &mut || 1000);
        assert_eq!(
            od2.ejection_span(Role::Slave),
            secs(30) + SimDuration::from_millis(1000)
        );
    }

    #[test]
    fn priority_levels_fail_over_and_panic_splits_the_traffic() {
        let cfg = PriorityConfig::default();
        let l = priority_loads(&cfg, [true, true]);
        assert_eq!((l.load, l.panic), ([100, 0], [false, false]));
        let l = priority_loads(&cfg, [true, false]);
        assert_eq!((l.load, l.panic), ([100, 0], [false, false]));
        let l = priority_loads(&cfg, [false, true]);
        assert_eq!((l.load, l.panic), ([0, 100], [false, false]));
        // Both down: total panic, by host count, healthy or not.
        let l = priority_loads(&cfg, [false, false]);
        assert_eq!((l.load, l.panic), ([50, 50], [true, true]));
        assert_eq!(choose_member(&cfg, &l, 49), Some(Role::Master));
        assert_eq!(choose_member(&cfg, &l, 50), Some(Role::Slave));
        assert_eq!(choose_member(&cfg, &l, 99), Some(Role::Slave));
        assert_eq!(choose_member(&cfg, &l, 100), Some(Role::Master));
        // fail_traffic_on_panic: nothing.
        let strict = PriorityConfig {
            fail_traffic_on_panic: true,
            ..cfg
        };
        assert_eq!(choose_member(&strict, &l, 0), None);
        // Panic threshold 0: no panic, all load on P0, and no healthy host there.
        let zero = PriorityConfig {
            healthy_panic_threshold: 0,
            ..cfg
        };
        let l = priority_loads(&zero, [false, false]);
        assert_eq!((l.load, l.panic), ([100, 0], [false, false]));
        for h in 0..100 {
            assert_eq!(choose_member(&zero, &l, h), None);
        }
    }

    #[test]
    fn overprovisioning_below_one_spills_traffic_to_the_slave() {
        let cfg = PriorityConfig {
            overprovisioning_factor: 50,
            ..PriorityConfig::default()
        };
        let l = priority_loads(&cfg, [true, true]);
        assert_eq!(l.load, [50, 50]);
        assert_eq!(l.panic, [false, false]);
        let l = priority_loads(&cfg, [false, true]);
        assert_eq!(l.load, [0, 100]);
        assert_eq!(l.panic, [true, false]);
        assert_eq!(choose_member(&cfg, &l, 7), Some(Role::Slave));
        let cfg = PriorityConfig {
            overprovisioning_factor: 70,
            ..PriorityConfig::default()
        };
        // 70 × 100 / 100 = 70 to P0, 30 to P1.
        assert_eq!(priority_loads(&cfg, [true, true]).load, [70, 30]);
    }

    /// Drives one checker against a fault starting at `fault_at`, checks taking `c` when failing
    /// and `rtt` when passing; returns the time of the unhealthy verdict.
    fn detect(
        cfg: &HealthCheckConfig,
        phase: SimDuration,
        fault_at: SimTime,
        class: FaultClass,
        rtt: SimDuration,
    ) -> SimTime {
        let mut c = EnvoyChecker::new(Health::Online);
        let mut send = SimTime(phase.0);
        let mut n = 0u64;
        loop {
            let failing = send >= fault_at;
            let (took, result) = match (failing, class) {
                (false, _) => (rtt, CheckResult::Success),
                (true, FaultClass::Refused) => (rtt, CheckResult::Network),
                (true, FaultClass::Silent) => (cfg.timeout, CheckResult::Timeout),
                (true, FaultClass::ImmediateStatus | FaultClass::RetriableStatus) => (rtt, S503),
            };
            let verdict = send + took;
            n += 1;
            let mut d = || {
                n = n
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                n >> 11
            };
            let e = c.on_result(cfg, verdict, result, true, &mut d);
            if e.transition == Some(Health::Offline) {
                return verdict;
            }
            send = e.next_check_at;
        }
    }

    #[test]
    fn detection_windows_hold_and_are_tight() {
        let rtt = SimDuration::from_millis(1);
        let mut cfgs = vec![hc()];
        let mut edged = hc();
        edged.unhealthy_edge_interval = secs(1);
        edged.interval_jitter = SimDuration::from_millis(700);
        edged.interval_jitter_percent = 10;
        cfgs.push(edged);
        let mut retriable = hc();
        retriable.retriable_statuses.insert_range(500, 600);
        for cfg in &cfgs {
            for class in [
                FaultClass::Refused,
                FaultClass::Silent,
                FaultClass::ImmediateStatus,
            ] {
                let (lo, hi) = detection_window(cfg, class, rtt);
                let (mut seen_lo, mut seen_hi) = (SimDuration(u64::MAX), SimDuration::ZERO);
                for k in 0..2000u64 {
                    let fault_at = SimTime(60_000_000_000);
                    let phase = SimDuration(k * 3_000_017);
                    let d = detect(cfg, phase, fault_at, class, rtt).since(fault_at);
                    assert!(lo <= d && d <= hi, "{class:?}: {d} outside [{lo}, {hi}]");
                    seen_lo = seen_lo.min(d);
                    seen_hi = seen_hi.max(d);
                }
                // The spread covers most of the window (no jitter: all of it, to a cycle).
                let width = hi.0 - lo.0;
                assert!(
                    seen_hi.0 - seen_lo.0 > width / 2,
                    "{class:?}: narrow spread"
                );
            }
        }
        let (lo, hi) = detection_window(&retriable, FaultClass::RetriableStatus, rtt);
        assert_eq!(
            (lo, hi),
            detection_window(&retriable, FaultClass::Refused, rtt)
        );
    }

    #[test]
    fn recovery_window_bounds_the_first_healthy_verdict() {
        let mut cfg = hc();
        cfg.unhealthy_interval = secs(10);
        cfg.healthy_edge_interval = secs(1);
        let rtt = SimDuration::from_millis(1);
        let (lo, hi) = recovery_window(&cfg, cfg.timeout, rtt);
        assert_eq!(lo, rtt + (secs(1) + rtt));
        assert_eq!(hi, (secs(10) + cfg.timeout) + rtt + (secs(1) + rtt));
    }

    #[test]
    fn status_sets_are_half_open_ranges() {
        let mut s = StatusSet::EMPTY;
        assert!(s.is_empty());
        s.insert_range(200, 205);
        assert!(s.contains(200) && s.contains(204) && !s.contains(205) && !s.contains(199));
        s.insert_range(590, 700);
        assert!(s.contains(599) && !s.contains(600));
        assert!(StatusSet::only_200().contains(200) && !StatusSet::only_200().contains(201));
    }
}
