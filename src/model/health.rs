//! The per-member, per-LB-node health checker: probe schedule and rise/fall counters.
//!
//! Sans-IO: [`Prober`] is told when its probe went out ([`Prober::on_sent`]) and what the verdict
//! was ([`Prober::on_verdict`]); it answers with when the next probe goes out and whether the
//! member's status changed. The engine owns the clock and the queue.
//!
//! Counters follow the seed page and HAProxy's fall/rise: `max_retries_down` consecutive failures
//! turn ONLINE into OFFLINE, `max_retries` consecutive successes turn OFFLINE into ONLINE, and a
//! result in the other direction resets the streak.
//!
//! How the next probe is timed, how results are counted and how checks start depend on the
//! data plane: a [`Prober`] follows the [`Rules`] its profile compiled (`super::profile`).

use super::profile::{ProbeState, Rules};
use crate::time::{SimDuration, SimTime};
use serde::Serialize;

/// A member's health in one LB node's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Health {
    Online,
    Offline,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Online => "ONLINE",
            Health::Offline => "OFFLINE",
        }
    }
}

/// When the next probe goes out (spec/model.md section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeSchedule {
    /// `delay` after the previous probe's verdict (Huawei's published window; HAProxy, Envoy).
    AfterCompletion,
    /// Every `delay`, overlapping probes allowed, each judged on its own.
    FixedRate,
}

/// Rise/fall counters of one member in one node's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthChecker {
    status: Health,
    ok_streak: u32,
    fail_streak: u32,
    rise: u32,
    fall: u32,
}

impl HealthChecker {
    /// `rise` = max_retries, `fall` = max_retries_down; both at least 1.
    pub fn new(rise: u32, fall: u32, initial: Health) -> Self {
        HealthChecker {
            status: initial,
            ok_streak: 0,
            fail_streak: 0,
            rise: rise.max(1),
            fall: fall.max(1),
        }
    }

    /// The same checker with `n` failures already counted (a fresh HAProxy server starts at
    /// health = rise, keepalived at `retry_it = retry`: one failure from OFFLINE).
    pub fn with_fail_streak(mut self, n: u32) -> Self {
        self.fail_streak = n;
        self
    }

    pub fn status(&self) -> Health {
        self.status
    }

    /// (consecutive successes, consecutive failures) so far.
    #[inline]
    pub fn streaks(&self) -> (u32, u32) {
        (self.ok_streak, self.fail_streak)
    }

    /// Sets the status outright, both streaks cleared: Envoy's shortcuts (the first passing
    /// check marks a starting host healthy; an unexpected HTTP status or the immediate-fail
    /// header marks it unhealthy) that skip the counting.
    pub fn set_status(&mut self, status: Health) {
        self.status = status;
        self.ok_streak = 0;
        self.fail_streak = 0;
    }

    /// Counts one verdict; returns the new status if it changed.
    #[inline(always)]
    pub fn on_verdict(&mut self, ok: bool) -> Option<Health> {
        if ok {
            self.fail_streak = 0;
            self.ok_streak = self.ok_streak.saturating_add(1);
            if self.status == Health::Offline && self.ok_streak >= self.rise {
                self.status = Health::Online;
                return Some(Health::Online);
            }
        } else {
            self.ok_streak = 0;
            self.fail_streak = self.fail_streak.saturating_add(1);
            if self.status == Health::Online && self.fail_streak >= self.fall {
                self.status = Health::Offline;
                return Some(Health::Offline);
            }
        }
        None
    }

    /// Whether another verdict `ok` would change nothing but a streak that is already past its
    /// threshold: a passing member ONLINE, or a failing one OFFLINE. Such a verdict can never
    /// change the status, however many come.
    #[inline]
    pub fn settled(&self, ok: bool) -> bool {
        self.status == if ok { Health::Online } else { Health::Offline }
    }

    /// Counts `n` more verdicts `ok` on a [`HealthChecker::settled`] checker at once: the same
    /// state as `n` calls of [`HealthChecker::on_verdict`] (streaks saturate alike).
    pub fn skip(&mut self, ok: bool, n: u64) {
        debug_assert!(self.settled(ok));
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        if ok {
            self.fail_streak = 0;
            self.ok_streak = self.ok_streak.saturating_add(n);
        } else {
            self.ok_streak = 0;
            self.fail_streak = self.fail_streak.saturating_add(n);
        }
    }
}

/// What a verdict changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerdictEffect {
    /// The member's new status, if it changed.
    pub transition: Option<Health>,
    /// When the next probe goes out, [`NOT_DECIDED`] when this verdict does not decide it
    /// (fixed_rate). A sentinel rather than an `Option`: the engine reads the effect straight
    /// after the inlined prober wrote it, and a separate tag measured as a store-forwarding
    /// stall in the trials loop.
    next: SimTime,
}

/// [`VerdictEffect`]'s "no next probe from this verdict".
const NOT_DECIDED: SimTime = SimTime(u64::MAX);

impl VerdictEffect {
    pub fn new(transition: Option<Health>, next_probe_at: Option<SimTime>) -> Self {
        VerdictEffect {
            transition,
            next: next_probe_at.unwrap_or(NOT_DECIDED),
        }
    }

    /// When the next probe goes out, if this verdict decides it (after_completion).
    #[inline(always)]
    pub fn next_probe_at(&self) -> Option<SimTime> {
        (self.next != NOT_DECIDED).then_some(self.next)
    }
}

/// The probe schedule and the counters of one member in one LB node, as its profile's
/// [`Rules`] say.
#[derive(Debug, Clone, Copy)]
pub struct Prober {
    rules: Rules,
    checker: HealthChecker,
    state: ProbeState,
}

impl Prober {
    pub fn new(rules: Rules) -> Self {
        Prober {
            rules,
            checker: rules.checker(),
            state: rules.initial_probe_state,
        }
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// A probe went out at `now`; returns the next send time when the schedule already knows it.
    #[inline]
    pub fn on_sent(&mut self, now: SimTime) -> Option<SimTime> {
        match self.rules.schedule {
            ProbeSchedule::FixedRate => Some(now + self.fixed_interval()),
            ProbeSchedule::AfterCompletion => None,
        }
    }

    /// The interval of the fixed_rate schedule (only the huawei profile has one).
    fn fixed_interval(&self) -> SimDuration {
        match self.rules.intervals {
            super::profile::Intervals::Fixed(d) => d,
            _ => self.rules.longest_interval(),
        }
    }

    /// A probe's verdict arrived at `now`; `draw` is a uniform draw in [0, 1) for the jitter,
    /// read only when [`Rules::needs_draw`].
    #[inline]
    pub fn on_verdict(&mut self, now: SimTime, ok: bool, draw: f64) -> VerdictEffect {
        self.on_probe_verdict(now, ok, None, draw)
    }

    /// [`Prober::on_verdict`] with what failed: `mismatch` is the status of a failed HTTP
    /// answer (RESPONSE_MISMATCH), which some profiles count differently (envoy: at once,
    /// unless retriable).
    #[inline(always)]
    pub fn on_probe_verdict(
        &mut self,
        now: SimTime,
        ok: bool,
        mismatch: Option<u16>,
        draw: f64,
    ) -> VerdictEffect {
        // One interval whatever the state (huawei): the whole verdict inline, with one match
        // on the interval policy; every other policy takes the general path, out of line, so
        // that this one stays small enough to inline into the engine's loop.
        if let super::profile::Intervals::Fixed(d) = self.rules.intervals {
            let transition = self.checker.on_verdict(ok);
            let next_probe_at = match self.rules.schedule {
                // Matched in place: copying the jitter out first (to call `offset`) measured a
                // tenth of a trials run, a store-forwarding stall on the copy.
                ProbeSchedule::AfterCompletion => match &self.rules.jitter {
                    super::profile::Jitter::None => now + d,
                    jitter => {
                        let j = jitter.offset(d, draw);
                        SimTime((now.0 + d.0).saturating_add_signed(j))
                    }
                },
                ProbeSchedule::FixedRate => NOT_DECIDED,
            };
            return VerdictEffect {
                transition,
                next: next_probe_at,
            };
        }
        self.on_verdict_general(now, ok, mismatch, draw)
    }

    /// [`Prober::on_probe_verdict`] for interval policies that depend on the state (haproxy,
    /// keepalived, envoy), and envoy's counting.
    #[inline(never)]
    fn on_verdict_general(
        &mut self,
        now: SimTime,
        ok: bool,
        mismatch: Option<u16>,
        draw: f64,
    ) -> VerdictEffect {
        let was = self.checker.status();
        let transition = match &self.rules.intervals {
            super::profile::Intervals::Envoy(e) => {
                let at_once = !ok && e.fails_at_once(mismatch);
                self.envoy_count(ok, at_once)
            }
            _ => self.checker.on_verdict(ok),
        };
        let next_probe_at = match self.rules.schedule {
            ProbeSchedule::AfterCompletion => {
                let d = self
                    .rules
                    .interval_after(&self.checker, &mut self.state, was, ok);
                let j = self.rules.jitter.offset(d, draw);
                Some(SimTime((now.0 + d.0).saturating_add_signed(j)))
            }
            ProbeSchedule::FixedRate => None,
        };
        VerdictEffect::new(transition, next_probe_at)
    }

    pub fn status(&self) -> Health {
        self.checker.status()
    }

    /// Whether the next verdicts, as long as each is `ok` like the last, change nothing and
    /// come at a constant interval: the rules allow coasting ([`Rules::coastable`]) and the
    /// checker is [`HealthChecker::settled`]. A driver may then count them at once
    /// ([`Prober::coast`]) instead of simulating each.
    #[inline]
    pub fn settled(&self, ok: bool) -> bool {
        self.rules.coastable() && self.checker.settled(ok)
    }

    /// Counts `n` verdicts `ok` at once on a [`Prober::settled`] prober.
    pub fn coast(&mut self, ok: bool, n: u64) {
        self.checker.skip(ok, n);
    }

    /// One interval whatever the state (the huawei profile).
    #[inline(always)]
    pub fn has_fixed_interval(&self) -> bool {
        matches!(self.rules.intervals, super::profile::Intervals::Fixed(_))
    }

    /// Envoy's counting (`ActiveHealthCheckSession::handleSuccess` / `setUnhealthy`, see
    /// `super::profile::envoy`): the streaks, plus two shortcuts.
    /// `at_once`: a failed HTTP answer with an unexpected, non-retriable status.
    fn envoy_count(&mut self, ok: bool, at_once: bool) -> Option<Health> {
        let first = !self.state.has_run;
        self.state.has_run = true;
        let was = self.checker.status();
        let mut transition = self.checker.on_verdict(ok);
        if ok && first && was == Health::Offline && transition.is_none() {
            // "If this is the first time we ever got a check result on this host, we
            // immediately move it to healthy."
            self.checker.set_status(Health::Online);
            transition = Some(Health::Online);
        }
        if at_once && was == Health::Online && transition.is_none() {
            // An unexpected, non-retriable HTTP status: an ACTIVE failure, no threshold.
            self.checker.set_status(Health::Offline);
            transition = Some(Health::Offline);
        }
        transition
    }

    /// The member fails at once, whatever the counters (Envoy's router read
    /// `x-envoy-immediate-health-check-fail` on a client's answer); the probe schedule is not
    /// touched. Returns the new status if it changed.
    pub fn fail_at_once(&mut self) -> Option<Health> {
        self.state.has_run = true;
        (self.checker.status() == Health::Online).then(|| {
            self.checker.set_status(Health::Offline);
            Health::Offline
        })
    }

    /// haproxy's `on-error` action after `error-limit` failed client connections
    /// ([`super::profile::haproxy::on_error`]); the probe schedule is not touched. Returns the
    /// new status if it changed.
    pub fn on_error(&mut self, mode: super::profile::haproxy::OnError) -> Option<Health> {
        super::profile::haproxy::on_error(&mut self.checker, self.rules.fall, mode)
    }

    /// The cluster has carried traffic: the profile's traffic intervals apply from now on.
    pub fn set_traffic_seen(&mut self) {
        self.state.traffic_seen = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn falls_after_max_retries_down_and_rises_after_max_retries() {
        let mut c = HealthChecker::new(2, 3, Health::Online);
        assert_eq!(c.on_verdict(false), None);
        assert_eq!(c.on_verdict(false), None);
        assert_eq!(c.on_verdict(false), Some(Health::Offline));
        assert_eq!(c.on_verdict(false), None);
        assert_eq!(c.on_verdict(true), None);
        assert_eq!(c.on_verdict(true), Some(Health::Online));
    }

    #[test]
    fn an_opposite_result_resets_the_streak() {
        let mut c = HealthChecker::new(1, 2, Health::Online);
        for _ in 0..10 {
            assert_eq!(c.on_verdict(false), None);
            assert_eq!(c.on_verdict(true), None);
        }
        assert_eq!(c.status(), Health::Online);
    }

    #[test]
    fn initial_state_needs_max_retries_successes() {
        let mut c = HealthChecker::new(3, 3, Health::Offline);
        assert_eq!(c.on_verdict(true), None);
        assert_eq!(c.on_verdict(true), None);
        assert_eq!(c.on_verdict(true), Some(Health::Online));
    }

    fn huawei(schedule: ProbeSchedule, d: SimDuration) -> Rules {
        let m = crate::model::profile::Monitor {
            kind: crate::model::probe::ProbeKind::Tcp,
            delay: d,
            timeout: SimDuration::from_secs(1),
            rise: 1,
            fall: 1,
        };
        crate::model::profile::huawei::rules(&m, schedule, false)
    }

    #[test]
    fn schedules_differ_in_who_sets_the_next_probe() {
        let d = SimDuration::from_secs(5);
        let mut ac = Prober::new(huawei(ProbeSchedule::AfterCompletion, d));
        assert_eq!(ac.on_sent(SimTime(0)), None);
        assert_eq!(
            ac.on_verdict(SimTime(7), true, 0.0).next_probe_at(),
            Some(SimTime(7) + d)
        );
        let mut fr = Prober::new(huawei(ProbeSchedule::FixedRate, d));
        assert_eq!(fr.on_sent(SimTime(0)), Some(SimTime(0) + d));
        assert_eq!(fr.on_verdict(SimTime(7), true, 0.0).next_probe_at(), None);
    }

    #[test]
    fn first_probe_lands_within_the_first_delay() {
        let r = huawei(ProbeSchedule::AfterCompletion, SimDuration::from_secs(5));
        assert_eq!(
            r.first_probes([0.0, 0.5]),
            [SimTime(0), SimTime(2_500_000_000)]
        );
        assert!(r.first_probes([0.999_999_999_9, 0.0])[0] < SimTime(5_000_000_000));
    }
}
