//! The per-member, per-LB-node health checker: probe schedule and rise/fall counters.
//!
//! Sans-IO: [`Prober`] is told when its probe went out ([`Prober::on_sent`]) and what the verdict
//! was ([`Prober::on_verdict`]); it answers with when the next probe goes out and whether the
//! member's status changed. The engine owns the clock and the queue.
//!
//! Counters follow the seed page and HAProxy's fall/rise: `max_retries_down` consecutive failures
//! turn ONLINE into OFFLINE, `max_retries` consecutive successes turn OFFLINE into ONLINE, and a
//! result in the other direction resets the streak.

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

    pub fn status(&self) -> Health {
        self.status
    }

    /// Counts one verdict; returns the new status if it changed.
    #[inline]
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
}

/// What a verdict changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerdictEffect {
    /// The member's new status, if it changed.
    pub transition: Option<Health>,
    /// When the next probe goes out, if this verdict decides it (after_completion).
    pub next_probe_at: Option<SimTime>,
}

/// The probe schedule and the counters of one member in one LB node.
#[derive(Debug, Clone, Copy)]
pub struct Prober {
    schedule: ProbeSchedule,
    delay: SimDuration,
    checker: HealthChecker,
}

impl Prober {
    pub fn new(schedule: ProbeSchedule, delay: SimDuration, checker: HealthChecker) -> Self {
        Prober {
            schedule,
            delay,
            checker,
        }
    }

    /// When the first probe goes out: `phase` in `[0, 1)` is a uniform draw, so the first probe
    /// lands uniformly within the first `delay` (Huawei elb_faq_0002).
    pub fn first_probe_at(&self, phase: f64) -> SimTime {
        SimTime((self.delay.0 as f64 * phase.clamp(0.0, 1.0)) as u64 % self.delay.0.max(1))
    }

    /// A probe went out at `now`; returns the next send time when the schedule already knows it.
    #[inline]
    pub fn on_sent(&mut self, now: SimTime) -> Option<SimTime> {
        match self.schedule {
            ProbeSchedule::FixedRate => Some(now + self.delay),
            ProbeSchedule::AfterCompletion => None,
        }
    }

    /// A probe's verdict arrived at `now`.
    #[inline]
    pub fn on_verdict(&mut self, now: SimTime, ok: bool) -> VerdictEffect {
        VerdictEffect {
            transition: self.checker.on_verdict(ok),
            next_probe_at: match self.schedule {
                ProbeSchedule::AfterCompletion => Some(now + self.delay),
                ProbeSchedule::FixedRate => None,
            },
        }
    }

    pub fn status(&self) -> Health {
        self.checker.status()
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

    #[test]
    fn schedules_differ_in_who_sets_the_next_probe() {
        let d = SimDuration::from_secs(5);
        let mut ac = Prober::new(
            ProbeSchedule::AfterCompletion,
            d,
            HealthChecker::new(1, 1, Health::Online),
        );
        assert_eq!(ac.on_sent(SimTime(0)), None);
        assert_eq!(
            ac.on_verdict(SimTime(7), true).next_probe_at,
            Some(SimTime(7) + d)
        );
        let mut fr = Prober::new(
            ProbeSchedule::FixedRate,
            d,
            HealthChecker::new(1, 1, Health::Online),
        );
        assert_eq!(fr.on_sent(SimTime(0)), Some(SimTime(0) + d));
        assert_eq!(fr.on_verdict(SimTime(7), true).next_probe_at, None);
    }

    #[test]
    fn first_probe_lands_within_the_first_delay() {
        let p = Prober::new(
            ProbeSchedule::AfterCompletion,
            SimDuration::from_secs(5),
            HealthChecker::new(1, 1, Health::Online),
        );
        assert_eq!(p.first_probe_at(0.0), SimTime(0));
        assert!(p.first_probe_at(0.999_999_999_9) < SimTime(5_000_000_000));
        assert_eq!(p.first_probe_at(0.5), SimTime(2_500_000_000));
    }
}
