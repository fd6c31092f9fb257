//! The `haproxy` profile: HAProxy 2.6's active health checks, as OpenStack Octavia maps the
//! API's health monitor onto them (`inter <delay> fall <max_retries_down> rise <max_retries>`,
//! `timeout check <timeout>`, and its listener's `timeout connect`).
//!
//! Each rule and the HAProxy source that makes it (v2.6.0; `docs/profiles.md` has the table):
//!
//! - **Connect bound** (`src/tcpcheck.c`, `tcpcheck_eval_connect`): when a check starts its
//!   connection, the task expires at `now + inter`, or at `min(inter, timeout connect)` when both
//!   `timeout check` and `timeout connect` are set. A silent host fails (L4TOUT, reported as
//!   CONNECT_TIMEOUT) at C = min(inter, timeout connect). The API always sets `timeout`, so
//!   `timeout check` is always set here; `timeout_connect = "none"` leaves C = inter.
//! - **Read bound** (same function, at `out:`): once the connection is open, the task expires
//!   `timeout check` later: a hung application fails (L7TOUT, RECV_RESPONSE_TIMEOUT) at
//!   `rtt + timeout`, not at `timeout` from the send.
//! - **Next check** (`src/check.c`, `process_chk_conn`): after a check completes, the next one is
//!   due `srv_getinter(check) + rv` later, `rv` the `spread-checks` jitter.
//! - **Interval by state** (`src/server.c`, `srv_getinter`): `inter` at full health
//!   (`health == rise + fall - 1`), `downinter` while DOWN with health 0, otherwise `fastinter`;
//!   each defaults to `inter`.
//! - **Counting** (`src/check.c`, `set_server_check_status`): a failure decrements health and,
//!   below `rise`, drops it to 0 (DOWN); a success increments it and, at `rise`, jumps to
//!   `rise + fall - 1` (UP). From full health that is `fall` consecutive failures; from 0,
//!   `rise` consecutive successes; an opposite result resets: the streak counter exactly.
//! - **Start state** (`src/server.c`, `srv_settings_cpy` / `srv_parse_check_rise`: "health: up,
//!   but will fall down at first failure"): a server starts UP at health = rise, one failure
//!   from DOWN: the streak counter with `fall - 1` failures pre-counted.
//! - **First checks** (`src/check.c`, `start_checks` / `start_check_task`): check number `pos`
//!   of `nbcheck` starts `mininter * pos / nbcheck` after the process, `mininter` the check's
//!   own interval at start (`srv_getinter`: fastinter when fall > 1).
//! - **spread-checks** (`src/check.c`, `process_chk_conn`; `src/cfgparse-global.c`: 0..50):
//!   `rv = inter * spread / 100; rv -= 2 * rv * random`, uniform in (−rv, rv].
//! - **on-marked-down shutdown-sessions** (`src/server.c`, `srv_update_status`): a server marked
//!   DOWN has its sessions killed.
//! - **slowstart** (`src/server.c`, `server_recalc_eweight`): a server coming UP gets weight
//!   `ceil(uweight * elapsed / slowstart)`, at least 1 at once; with one active server and one
//!   backup, as in a master/slave pool, any weight above 0 takes every new connection, so it
//!   changes no route (accepted for completeness; the scenario loader warns).

use super::{
    FirstProbes, Intervals, Jitter, Judging, Monitor, ProfileError, ProfileName, Read, Rules,
};
use crate::model::health::{Health, HealthChecker, ProbeSchedule};
use crate::model::probe::ProbeKind;
use crate::time::SimDuration;

/// Octavia's default `timeout connect` for members (`DEFAULT_TIMEOUT_MEMBER_CONNECT = 5000` ms,
/// `octavia/common/constants.py`), written into every backend by its HAProxy template.
pub const DEFAULT_TIMEOUT_CONNECT: SimDuration = SimDuration::from_secs(5);

/// `[model.haproxy]`: HAProxy settings the API has no field for. `None` durations default to
/// `inter` (the pool's `delay`), as HAProxy defaults them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// `timeout connect`; `None`: not set, so `inter` bounds the connect phase.
    pub timeout_connect: Option<SimDuration>,
    pub fastinter: Option<SimDuration>,
    pub downinter: Option<SimDuration>,
    /// Global `spread-checks`, percent (0..50).
    pub spread_checks: u32,
    /// `on-marked-down shutdown-sessions`.
    pub on_marked_down_shutdown_sessions: bool,
    /// `slowstart`.
    pub slowstart: SimDuration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout_connect: Some(DEFAULT_TIMEOUT_CONNECT),
            fastinter: None,
            downinter: None,
            spread_checks: 0,
            on_marked_down_shutdown_sessions: false,
            slowstart: SimDuration::ZERO,
        }
    }
}

impl Options {
    /// HAProxy's rules for `m`.
    pub fn rules(
        &self,
        m: &Monitor,
        schedule: ProbeSchedule,
        fresh: bool,
    ) -> Result<Rules, ProfileError> {
        if m.kind == ProbeKind::UdpConnect {
            return Err(ProfileError::new(
                "model.profile",
                "profile haproxy cannot check a UDP_CONNECT health monitor: HAProxy 2.6 has no \
                 UDP health check; use profile huawei or keepalived for a UDP pool",
            ));
        }
        if schedule == ProbeSchedule::FixedRate {
            return Err(ProfileError::new(
                "model.probe_schedule",
                "profile haproxy schedules each check after the previous one completes \
                 (src/check.c process_chk_conn); remove probe_schedule = \"fixed_rate\" or use \
                 profile huawei",
            ));
        }
        if self.spread_checks > 50 {
            return Err(ProfileError::new(
                "model.haproxy.spread_checks",
                format!(
                    "must be 0..50 (HAProxy's own limit), got {}",
                    self.spread_checks
                ),
            ));
        }
        let inter = m.delay;
        let fastinter = self.fastinter.unwrap_or(inter);
        let downinter = self.downinter.unwrap_or(inter);
        for (key, d) in [("fastinter", fastinter), ("downinter", downinter)] {
            if d.0 == 0 {
                return Err(ProfileError::new(
                    format!("model.haproxy.{key}"),
                    "must be more than 0 (HAProxy refuses a zero interval)",
                ));
            }
        }
        let connect = match self.timeout_connect {
            Some(c) if c.0 > 0 => c.min(inter),
            _ => inter,
        };
        let (rise, fall) = (m.rise.max(1), m.fall.max(1));
        // At start health = rise: full health (inter) only when fall = 1.
        let start_inter = if fall > 1 { fastinter } else { inter };
        Ok(Rules {
            profile: ProfileName::Haproxy,
            schedule,
            rise,
            fall,
            initial: Health::Online,
            initial_fail_streak: if fresh { fall - 1 } else { 0 },
            intervals: Intervals::ByHealth {
                inter,
                fastinter,
                downinter,
            },
            jitter: if self.spread_checks > 0 {
                Jitter::Symmetric {
                    percent: self.spread_checks,
                }
            } else {
                Jitter::None
            },
            judging: Judging {
                connect,
                read: Read::FromOpen(m.timeout),
                udp_echo: false,
                udp_silence: connect,
                clients_seen: false,
            },
            first: FirstProbes::Staggered {
                span: if fresh { start_inter } else { inter },
                offset_random: !fresh,
            },
            initial_probe_state: super::ProbeState::default(),
            close_on_down: self.on_marked_down_shutdown_sessions,
        })
    }
}

/// `srv_getinter`: the interval after a check, from the health the check left.
#[inline]
pub(super) fn interval(
    c: &HealthChecker,
    inter: SimDuration,
    fastinter: SimDuration,
    downinter: SimDuration,
) -> SimDuration {
    let (ok_streak, fail_streak) = c.streaks();
    match c.status() {
        // health == rise + fall - 1: UP with no failure since the last success.
        Health::Online if fail_streak == 0 => inter,
        // health == 0: DOWN with no success since the last failure.
        Health::Offline if ok_streak == 0 => downinter,
        _ => fastinter,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::profile::ProbeState;

    fn monitor() -> Monitor {
        Monitor {
            kind: ProbeKind::Tcp,
            delay: SimDuration::from_secs(5),
            timeout: SimDuration::from_secs(3),
            rise: 2,
            fall: 3,
        }
    }

    /// HAProxy's health counter, literally (`set_server_check_status`).
    fn haproxy_health(health: &mut u32, rise: u32, fall: u32, ok: bool) {
        if ok {
            if *health < rise + fall - 1 {
                *health += 1;
                if *health >= rise {
                    *health = rise + fall - 1;
                }
            }
        } else if *health > 0 {
            *health -= 1;
            if *health < rise {
                *health = 0;
            }
        }
    }

    #[test]
    fn the_streak_counter_is_haproxys_health_counter() {
        // Every sequence of 12 results, from the fresh start (health = rise) and from full
        // health: UP/DOWN and the interval agree after every result.
        let m = monitor();
        let o = Options {
            fastinter: Some(SimDuration::from_secs(1)),
            downinter: Some(SimDuration::from_secs(9)),
            ..Options::default()
        };
        for fresh in [true, false] {
            let rules = o.rules(&m, ProbeSchedule::AfterCompletion, fresh).unwrap();
            for bits in 0u32..(1 << 12) {
                let mut c = rules.checker();
                let mut st = ProbeState::default();
                let mut health = if fresh { m.rise } else { m.rise + m.fall - 1 };
                let mut up = true;
                for i in 0..12 {
                    let ok = bits >> i & 1 == 1;
                    let was = c.status();
                    c.on_verdict(ok);
                    haproxy_health(&mut health, m.rise, m.fall, ok);
                    if health == 0 {
                        up = false;
                    } else if health >= m.rise {
                        up = true;
                    }
                    assert_eq!(c.status() == Health::Online, up, "bits {bits:b} step {i}");
                    let want = if health == m.rise + m.fall - 1 {
                        m.delay
                    } else if !up && health == 0 {
                        SimDuration::from_secs(9)
                    } else {
                        SimDuration::from_secs(1)
                    };
                    assert_eq!(rules.interval_after(&c, &mut st, was, ok), want);
                }
            }
        }
    }

    #[test]
    fn connect_bound_is_min_of_inter_and_timeout_connect() {
        let m = monitor();
        let r = Options::default()
            .rules(&m, ProbeSchedule::AfterCompletion, false)
            .unwrap();
        assert_eq!(r.judging.connect, SimDuration::from_secs(5));
        let r = Options {
            timeout_connect: Some(SimDuration::from_secs(2)),
            ..Options::default()
        }
        .rules(&m, ProbeSchedule::AfterCompletion, false)
        .unwrap();
        assert_eq!(r.judging.connect, SimDuration::from_secs(2));
        assert_eq!(r.judging.read, Read::FromOpen(SimDuration::from_secs(3)));
        let r = Options {
            timeout_connect: None,
            ..Options::default()
        }
        .rules(&m, ProbeSchedule::AfterCompletion, false)
        .unwrap();
        assert_eq!(r.judging.connect, m.delay);
    }

    #[test]
    fn udp_and_fixed_rate_are_refused() {
        let mut m = monitor();
        let o = Options::default();
        assert!(o.rules(&m, ProbeSchedule::FixedRate, false).is_err());
        m.kind = ProbeKind::UdpConnect;
        let e = o
            .rules(&m, ProbeSchedule::AfterCompletion, false)
            .unwrap_err();
        assert!(e.message.contains("UDP"), "{}", e.message);
    }

    #[test]
    fn first_checks_are_staggered_by_position() {
        let m = monitor();
        let fresh = Options::default()
            .rules(&m, ProbeSchedule::AfterCompletion, true)
            .unwrap();
        let [a, b] = fresh.first_probes([0.3, 0.9]);
        assert_eq!((a.0, b.0), (0, 2_500_000_000));
        assert_eq!(fresh.initial_fail_streak, 2);
        let steady = Options::default()
            .rules(&m, ProbeSchedule::AfterCompletion, false)
            .unwrap();
        let [a, b] = steady.first_probes([0.8, 0.1]);
        assert_eq!((a.0, b.0), (4_000_000_000, 1_500_000_000));
    }
}
