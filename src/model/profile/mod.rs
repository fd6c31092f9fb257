//! Data-plane profiles: the same pool under another load balancer's health-check rules.
//!
//! The API's `healthmonitor` (`delay`, `timeout`, `max_retries`, `max_retries_down`) says *what*
//! to check; each data plane decides *how*: when the next probe goes out, how long a probe may
//! take in each phase, how results are counted, and how checks start. A [`Profile`] is that
//! choice (`[model] profile` in a scenario, `--profile` on the command line) with its options
//! (`[model.haproxy]`, `[model.keepalived]`, ...). Rules and their sources: `docs/profiles.md`.
//!
//! # Design
//!
//! A profile is compiled once per run, from the pool's monitor, into [`Rules`]: plain numbers
//! and small enums, `Copy`, held by every [`crate::model::health::Prober`]. The hot path (one
//! verdict) is then a `match` on a few enums, with no allocation, trait object or random draw of
//! its own. Everything here is sans-IO like the rest of `model/`: no clock, no generator; a
//! driver hands in `now` and, only when [`Rules::needs_draw`] says so, one uniform draw per
//! verdict (jitter).
//!
//! The four questions a profile answers, and where each answer lives:
//!
//! 1. **When does the next probe go out?** [`Intervals`] (the interval after a verdict, by the
//!    member's state: HAProxy's inter/fastinter/downinter, keepalived's delay_loop and
//!    delay_before_retry) plus [`Jitter`]; computed in `Prober::on_verdict`. The first probes:
//!    [`FirstProbes`] ([`Rules::first_probes`]), and the start state ([`Rules::initial`],
//!    [`Rules::initial_fail_streak`]).
//! 2. **When is a silent or slow member's probe judged?** [`Judging`]: a connect bound (a
//!    connection not open by then fails with CONNECT_TIMEOUT) and a read bound counted from the
//!    send or from the connection's opening. The simulated world (`crate::sim::world::judge`)
//!    applies it to the member's condition; the live prober applies the same bounds to real
//!    sockets.
//! 3. **How are results counted?** Rise and fall ([`Rules::rise`], [`Rules::fall`]) on the
//!    consecutive-streak counter of `crate::model::health::HealthChecker` (HAProxy's health
//!    counter and keepalived's retry counter are both equivalent to streaks, see their modules),
//!    with a pre-loaded failure streak for a fresh start.
//! 4. **What does the data plane do on DOWN?** [`Rules::close_on_down`]: close the member's open
//!    connections at once (HAProxy `on-marked-down shutdown-sessions`, keepalived removing the
//!    real server from IPVS).
//!
//! # Adding a profile
//!
//! Add a module with an `Options` type (defaults in `Default`) and a
//! `rules(&self, &Monitor, ProbeSchedule, fresh) -> Result<Rules, ProfileError>`; add the
//! variant to [`Profile`] and its arms in [`Profile::name`] and [`Profile::rules`]; an interval
//! policy or jitter the existing variants cannot express gets a variant of [`Intervals`] /
//! [`Jitter`] with its arms; per-member state beyond the streaks goes in [`ProbeState`]. The
//! scenario side is `crate::scenario::profiles` (a `[model.<name>]` table).
//!
//! # What envoy adds beyond the seam
//!
//! Envoy's counting depends on *what* failed, not only whether: an HTTP status outside the
//! expected ones fails the host at once unless retriable, and the very first passing check
//! marks a starting host healthy at once. So the drivers hand the prober the whole verdict
//! (`LbNode::handle_probe_verdict`), and [`Intervals::Envoy`] carries the retriable statuses.
//! Envoy's passive side (outlier detection, the router's reading of
//! `x-envoy-immediate-health-check-fail`) and its priority/panic routing are data-plane
//! decisions, so they live in `crate::model::lb_node` (state from [`envoy`]), fed client
//! outcomes by the drivers (`LbNode::handle_client_outcome`). HAProxy's passive check
//! (`observe layer4`, `error-limit`, `on-error`) is kept the same way: a per-member
//! [`haproxy::ErrorCounter`] in the node, fed each client connection's fate
//! (`LbNode::handle_l4_outcome`), acting on the checker's own counters ([`haproxy::on_error`]).

pub mod envoy;
pub mod haproxy;
pub mod huawei;
pub mod keepalived;

use super::health::{Health, HealthChecker, ProbeSchedule};
use super::probe::ProbeKind;
use crate::time::{SimDuration, SimTime};
use serde::{Deserialize, Serialize};

/// The data planes elbsim knows, as scenario files and `--profile` spell them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileName {
    /// Huawei Cloud ELB's documented semantics (the default).
    #[default]
    Huawei,
    /// HAProxy 2.6's health checks (`src/check.c`, `src/tcpcheck.c`, `src/server.c`).
    Haproxy,
    /// Envoy's active health checker, outlier detection and priority/panic load balancing
    /// (`source/extensions/health_checkers/`, `source/common/upstream/outlier_detection_impl.cc`,
    /// `source/extensions/load_balancing_policies/common/load_balancer_impl.cc`).
    Envoy,
    /// keepalived 2.2's checkers in front of IPVS (`keepalived/check/`).
    Keepalived,
}

impl ProfileName {
    /// Every name, in the order `compare` prints them.
    pub const ALL: [ProfileName; 4] = [
        ProfileName::Huawei,
        ProfileName::Haproxy,
        ProfileName::Envoy,
        ProfileName::Keepalived,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProfileName::Huawei => "huawei",
            ProfileName::Haproxy => "haproxy",
            ProfileName::Envoy => "envoy",
            ProfileName::Keepalived => "keepalived",
        }
    }

    /// The profile named `s`, or an error listing the names.
    pub fn parse(s: &str) -> Result<ProfileName, String> {
        ProfileName::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown profile {s:?}; use one of {}",
                    ProfileName::ALL.map(|p| p.as_str()).join(", ")
                )
            })
    }

    /// Whether this build can run the profile (every one, now that envoy has landed; kept so
    /// that a profile can be named before its module exists).
    pub fn available(self) -> bool {
        true
    }

    /// Every profile this build can run, for `compare`'s default.
    pub fn available_names() -> Vec<ProfileName> {
        ProfileName::ALL
            .into_iter()
            .filter(|p| p.available())
            .collect()
    }
}

impl std::fmt::Display for ProfileName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A profile that cannot apply to a pool or a setting: the scenario key at fault and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileError {
    /// The scenario key the problem is about (e.g. `model.profile`, `model.haproxy.fastinter`).
    pub key: String,
    pub message: String,
}

impl ProfileError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ProfileError {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// The pool's health monitor as the model needs it (the API's values, in engine units).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Monitor {
    pub kind: ProbeKind,
    /// healthmonitor.delay.
    pub delay: SimDuration,
    /// healthmonitor.timeout.
    pub timeout: SimDuration,
    /// max_retries.
    pub rise: u32,
    /// max_retries_down.
    pub fall: u32,
}

/// A data plane with its options.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Profile {
    #[default]
    Huawei,
    Haproxy(haproxy::Options),
    Envoy(envoy::Options),
    Keepalived(keepalived::Options),
}

impl Profile {
    pub fn name(&self) -> ProfileName {
        match self {
            Profile::Huawei => ProfileName::Huawei,
            Profile::Haproxy(_) => ProfileName::Haproxy,
            Profile::Envoy(_) => ProfileName::Envoy,
            Profile::Keepalived(_) => ProfileName::Keepalived,
        }
    }

    /// The rules of this profile for a pool's monitor. `fresh`: the run starts when the data
    /// plane starts (`initial_state = "initial"`), rather than in steady state.
    pub fn rules(
        &self,
        m: &Monitor,
        schedule: ProbeSchedule,
        fresh: bool,
    ) -> Result<Rules, ProfileError> {
        match self {
            Profile::Huawei => Ok(huawei::rules(m, schedule, fresh)),
            Profile::Haproxy(o) => o.rules(m, schedule, fresh),
            Profile::Envoy(o) => o.rules(m, schedule, fresh),
            Profile::Keepalived(o) => o.rules(m, schedule, fresh),
        }
    }
}

/// The interval from a verdict to the next probe, by the member's state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Intervals {
    /// One interval whatever the state (Huawei's `delay`).
    Fixed(SimDuration),
    /// HAProxy's `srv_getinter` (`src/server.c`): `inter` at full health, `downinter` while
    /// DOWN with health 0, `fastinter` in between (changing state).
    ByHealth {
        inter: SimDuration,
        fastinter: SimDuration,
        downinter: SimDuration,
    },
    /// keepalived's checkers: `delay_loop` after a success or a final failure,
    /// `delay_before_retry` after a failure that is retried (see [`keepalived`]).
    Retry {
        delay_loop: SimDuration,
        delay_before_retry: SimDuration,
        /// `retry`: failures retried before the final one.
        retry: u32,
        checker: keepalived::Checker,
    },
    /// Envoy's `HealthCheckerImplBase::interval`: by the verdict and whether a transition is
    /// pending, or the no-traffic intervals (see [`envoy`]). Also carries Envoy's counting
    /// (retriable statuses).
    Envoy(envoy::EnvoyIntervals),
}

/// Random spread added to each interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Jitter {
    None,
    /// Uniform in (−p·interval, +p·interval] with p = `percent` / 100 (HAProxy `spread-checks`,
    /// `process_chk_conn`: `rv = inter * spread / 100; rv -= 2 * rv * random`).
    Symmetric {
        percent: u32,
    },
    /// Envoy's `intervalWithJitter`: `random() % (percent × interval / 100)` ms plus
    /// `random() % ms` ms, added (never subtracted), in whole milliseconds.
    Additive {
        percent: u32,
        ms: u64,
    },
}

impl Jitter {
    /// The offset to add to `interval` for a uniform draw `u` in [0, 1), in nanoseconds.
    #[inline(always)]
    pub fn offset(self, interval: SimDuration, u: f64) -> i64 {
        match self {
            Jitter::None => 0,
            _ => self.offset_jittered(interval, u),
        }
    }

    /// [`Jitter::offset`] of a jitter that is not `None`: out of line, so that the common case
    /// stays one comparison in the probe loop.
    #[inline(never)]
    fn offset_jittered(self, interval: SimDuration, u: f64) -> i64 {
        match self {
            Jitter::None => 0,
            Jitter::Symmetric { percent } => {
                let rv = (interval.0 as u128 * percent as u128 / 100) as i64;
                rv - (2.0 * rv as f64 * u) as i64
            }
            Jitter::Additive { percent, ms } => {
                envoy::additive_jitter(interval, percent, ms, u.clamp(0.0, 1.0)).0 as i64
            }
        }
    }

    /// The largest offset this jitter can add to `interval`.
    pub fn max_offset(self, interval: SimDuration) -> SimDuration {
        match self {
            Jitter::None => SimDuration::ZERO,
            Jitter::Symmetric { .. } => SimDuration(self.offset(interval, 0.0).max(0) as u64),
            Jitter::Additive { percent, ms } => {
                envoy::additive_jitter(interval, percent, ms, 1.0 - f64::EPSILON)
            }
        }
    }
}

/// How a probe's read phase is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// One deadline from the send bounds the whole probe (Huawei's `timeout`).
    FromSend(SimDuration),
    /// Once the connection is open, the answer must come within this (HAProxy `timeout check`,
    /// keepalived's `connect_timeout` re-armed for the read).
    FromOpen(SimDuration),
}

/// When a probe's verdict comes for a silent or slow member: the phases of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judging {
    /// A connection (or an echo) not answered by then, counted from the send, fails with
    /// CONNECT_TIMEOUT; a round trip longer than this fails the same way.
    pub connect: SimDuration,
    /// The bound on the answer of an application-level probe (HTTP status line).
    pub read: Read,
    /// UDP checks: an ICMP echo first, whose silence fails the probe (Huawei elb_faq_0024).
    /// Without it (keepalived's UDP_CHECK) a silent host passes.
    pub udp_echo: bool,
    /// UDP checks: silence until then is a success.
    pub udp_silence: SimDuration,
    /// Failing answers that *clients* get (5xx statuses, request timeouts) also mark the member
    /// down: Envoy's outlier detection or `x-envoy-immediate-health-check-fail`, with client
    /// traffic. Attribution then credits `hang` and `http_status` faults whatever the check.
    pub clients_seen: bool,
}

impl Judging {
    /// The longest a probe can take from its send to its verdict.
    pub fn longest(&self) -> SimDuration {
        let read_end = match self.read {
            Read::FromSend(d) => d,
            Read::FromOpen(d) => self.connect + d,
        };
        self.connect.max(read_end).max(self.udp_silence)
    }

    /// When a hung application's probe fails, for a connection opened after `rtt`.
    #[inline]
    pub fn read_deadline(&self, rtt: SimDuration) -> SimDuration {
        match self.read {
            Read::FromSend(d) => d,
            Read::FromOpen(d) => rtt + d,
        }
    }
}

/// Where the first probes of one LB node go.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FirstProbes {
    /// Each member's first probe uniformly within `span` (its own draw): Huawei elb_faq_0002,
    /// keepalived's `warmup` (`register_checkers_thread`).
    Uniform(SimDuration),
    /// HAProxy's `start_checks`: the member at position `pos` of `n` starts `span * pos / n`
    /// after the process; `offset_random`: the process started at a uniform moment within
    /// `span` before the run (steady state), else at 0 (a fresh start).
    Staggered {
        span: SimDuration,
        offset_random: bool,
    },
}

/// The compiled rules of one profile for one pool: what every prober of the run follows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    pub profile: ProfileName,
    pub schedule: ProbeSchedule,
    /// Consecutive successes that turn OFFLINE into ONLINE.
    pub rise: u32,
    /// Consecutive failures that turn ONLINE into OFFLINE.
    pub fall: u32,
    /// Status of both members at the start.
    pub initial: Health,
    /// Failures already counted at the start (HAProxy starts a server at health = rise, one
    /// failure from DOWN; keepalived sets `retry_it = retry`).
    pub initial_fail_streak: u32,
    pub intervals: Intervals,
    pub jitter: Jitter,
    pub judging: Judging,
    pub first: FirstProbes,
    /// Profile state of each member at the start.
    pub initial_probe_state: ProbeState,
    /// A member turning OFFLINE has its open connections closed at once.
    pub close_on_down: bool,
}

/// Per-member state a profile keeps beyond the rise/fall streaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProbeState {
    /// keepalived's `checker->retry_it`.
    pub retry_it: u32,
    /// keepalived's `checker->has_run`; envoy: a check has given its verdict (Envoy's
    /// `first_check_` is its negation).
    pub has_run: bool,
    /// envoy: the cluster has carried traffic (else the no-traffic intervals apply).
    pub traffic_seen: bool,
}

impl Rules {
    /// Whether a settled prober's verdicts come at a constant interval and change no state but
    /// a saturated streak (see `Prober::settled`): no jitter, and an interval that is one value
    /// (huawei) or a function of UP/DOWN at full or zero health (haproxy's `srv_getinter`: a
    /// run of passes at ONLINE keeps `inter`, a run of failures at OFFLINE keeps `downinter`).
    /// keepalived's retry state and envoy's edge intervals and outlier detection do not qualify.
    #[inline]
    pub fn coastable(&self) -> bool {
        matches!(self.jitter, Jitter::None)
            && matches!(
                self.intervals,
                Intervals::Fixed(_) | Intervals::ByHealth { .. }
            )
    }

    /// Whether a verdict needs a uniform draw (jitter); drivers skip the draw otherwise, so a
    /// profile without jitter consumes no randomness.
    #[inline]
    pub fn needs_draw(&self) -> bool {
        !matches!(self.jitter, Jitter::None)
    }

    /// A fresh checker in the start state.
    pub fn checker(&self) -> HealthChecker {
        HealthChecker::new(self.rise, self.fall, self.initial)
            .with_fail_streak(self.initial_fail_streak)
    }

    /// The first send time of master and slave on one LB node, from one uniform draw per
    /// member (drawn in that order).
    pub fn first_probes(&self, phases: [f64; 2]) -> [SimTime; 2] {
        let within = |span: SimDuration, u: f64| {
            SimTime((span.0 as f64 * u.clamp(0.0, 1.0)) as u64 % span.0.max(1))
        };
        match self.first {
            FirstProbes::Uniform(span) => phases.map(|u| within(span, u)),
            FirstProbes::Staggered {
                span,
                offset_random,
            } => {
                let offset = if offset_random {
                    within(span, phases[0]).0
                } else {
                    0
                };
                // Two checks (master at position 0, slave at 1): `mininter * srvpos / nbcheck`.
                let at = |pos: u64| {
                    let t = offset + span.0 * pos / 2;
                    if offset_random {
                        SimTime(t % span.0.max(1))
                    } else {
                        SimTime(t)
                    }
                };
                [at(0), at(1)]
            }
        }
    }

    /// The interval from a verdict to the next probe (before jitter). `checker` has counted
    /// the verdict already; `was` is the status before it.
    #[inline]
    pub fn interval_after(
        &self,
        checker: &HealthChecker,
        state: &mut ProbeState,
        was: Health,
        ok: bool,
    ) -> SimDuration {
        match self.intervals {
            Intervals::Fixed(d) => d,
            Intervals::ByHealth {
                inter,
                fastinter,
                downinter,
            } => haproxy::interval(checker, inter, fastinter, downinter),
            Intervals::Retry {
                delay_loop,
                delay_before_retry,
                retry,
                checker: kind,
            } => keepalived::interval(
                kind,
                state,
                was == Health::Online,
                ok,
                retry,
                delay_loop,
                delay_before_retry,
            ),
            Intervals::Envoy(e) => e.after(checker.status(), ok, state.traffic_seen),
        }
    }

    /// The longest interval any state can ask for, jitter included: for windows that must
    /// cover every case (censoring, charging client failures).
    pub fn longest_interval(&self) -> SimDuration {
        let base = match self.intervals {
            Intervals::Fixed(d) => d,
            Intervals::ByHealth {
                inter,
                fastinter,
                downinter,
            } => inter.max(fastinter).max(downinter),
            Intervals::Retry {
                delay_loop,
                delay_before_retry,
                ..
            } => delay_loop.max(delay_before_retry),
            Intervals::Envoy(e) => e.longest(self.initial_probe_state.traffic_seen),
        };
        base + self.jitter.max_offset(base)
    }

    /// The closed-form window `[lo, hi]` of detection latency for a fault whose probes all fail
    /// the same way, under after_completion with a fixed round trip `r` and no noise:
    /// `timed_out` when each failing probe ends at its deadline (`fail_after`, the time from
    /// send to verdict), else after `r`. `docs/profiles.md` derives each form.
    pub fn detection_window(&self, fail_after: SimDuration, ok_after: SimDuration) -> (f64, f64) {
        let f = f64::from(self.fall);
        let v = fail_after.as_secs_f64();
        let ok = ok_after.as_secs_f64();
        // The healthy cycle: the phase of the fault within it is uniform.
        let (healthy_gap, fail_gap) = match self.intervals {
            Intervals::Fixed(d) => (d, d),
            Intervals::ByHealth {
                inter, fastinter, ..
            } => (inter, fastinter),
            Intervals::Retry {
                delay_loop,
                delay_before_retry,
                ..
            } => (delay_loop, delay_before_retry),
            Intervals::Envoy(e) => (e.interval, e.unhealthy_edge),
        };
        let (g, fg) = (healthy_gap.as_secs_f64(), fail_gap.as_secs_f64());
        let lo = f * v + (f - 1.0) * fg;
        (lo, lo + g + ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_every_profile_is_available() {
        for p in ProfileName::ALL {
            assert_eq!(ProfileName::parse(p.as_str()), Ok(p));
        }
        assert!(ProfileName::parse("nginx").unwrap_err().contains("huawei"));
        assert!(ProfileName::Envoy.available());
        assert_eq!(ProfileName::available_names().len(), 4);
    }

    #[test]
    fn symmetric_jitter_spans_both_sides() {
        let j = Jitter::Symmetric { percent: 10 };
        let d = SimDuration::from_secs(10);
        assert_eq!(j.offset(d, 0.0), 1_000_000_000);
        assert_eq!(j.offset(d, 0.5), 0);
        assert!(j.offset(d, 0.999_999) <= -999_000_000);
        assert_eq!(Jitter::None.offset(d, 0.3), 0);
    }
}
