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
//! - **observe layer4** (`src/check.c`, `__health_adjust`; called from `src/backend.c`,
//!   `back_handle_st_cer` with `HANA_STATUS_L4_ERR` for every failed connection attempt, and
//!   `src/stream.c`, `back_establish` with `HANA_STATUS_L4_OK`): client connections judge the
//!   server too. An error increments `consecutive_errors`, a success clears it (so does a passed
//!   check: `set_server_check_status`, `if (s->onerror)`); at `error-limit` (default 10,
//!   `DEF_HANA_ERRLIMIT`) the `on-error` action runs and the count restarts:
//!   `fastinter` nothing more; `fail-check` (the default, `DEF_HANA_ONERR`) one failed check
//!   (`HCHK_STATUS_HANA`); `sudden-death` health down to `rise + 1` first, so the failed check
//!   leaves the server one failure from DOWN; `mark-down` health to `rise` first, so the failed
//!   check takes it DOWN. Then, when `fastinter` is *set*, the check task is moved to
//!   `now + fastinter` if that is sooner than its expiry: an idle check starts then, a check in
//!   progress is aborted then as a timeout (`process_chk_conn` wakes with `expired`). A
//!   connection to a silent server is an error when `timeout connect` runs out, and none if the
//!   client gave up before (measured against HAProxy 2.6.12: `scripts/haproxy-observe.py`). See
//!   [`ErrorCounter`], [`on_error`] and [`Observe`].

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
    /// `observe`: what client traffic tells the health checker (none, or `layer4`).
    pub observe: ObserveMode,
    /// `error-limit`: consecutive errors that run the `on-error` action (at least 1).
    pub error_limit: u32,
    /// `on-error`.
    pub on_error: OnError,
}

/// HAProxy's `observe` (`src/server.c`, `srv_parse_observe`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ObserveMode {
    /// `none`: client traffic is not observed (HAProxy's default).
    #[default]
    None,
    /// `layer4`: client connections that fail to open (refused, timed out, TLS handshake
    /// failed) are errors, connections that open are successes.
    Layer4,
}

/// HAProxy's `on-error` (`src/server.c`, `srv_parse_on_error`; the `HANA_ONERR_*` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// `fastinter`: only the check task's reschedule.
    FastInter,
    /// `fail-check`: one failed check (HAProxy's default, `DEF_HANA_ONERR` in
    /// `include/haproxy/defaults.h`).
    #[default]
    FailCheck,
    /// `sudden-death`: a pre-fatal failed check, one more failure marks the server DOWN.
    SuddenDeath,
    /// `mark-down`: the server DOWN at once.
    MarkDown,
}

impl OnError {
    /// Every mode, as HAProxy spells them.
    pub const ALL: [OnError; 4] = [
        OnError::FastInter,
        OnError::FailCheck,
        OnError::SuddenDeath,
        OnError::MarkDown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OnError::FastInter => "fastinter",
            OnError::FailCheck => "fail-check",
            OnError::SuddenDeath => "sudden-death",
            OnError::MarkDown => "mark-down",
        }
    }

    /// The mode spelt `s` (HAProxy's spelling).
    pub fn parse(s: &str) -> Option<OnError> {
        OnError::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// HAProxy's `error-limit` default (`DEF_HANA_ERRLIMIT`, `include/haproxy/defaults.h`).
pub const DEFAULT_ERROR_LIMIT: u32 = 10;

/// The passive side of `observe layer4`, compiled for a data plane: what [`LbNode`] needs to
/// count client connections and act on too many errors.
///
/// [`LbNode`]: crate::model::lb_node::LbNode
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observe {
    /// `error-limit`.
    pub error_limit: u32,
    pub on_error: OnError,
    /// `fastinter` when it is *set*: `__health_adjust` moves the check task only then
    /// (`if (s->check.fastinter) expire = now + fastinter; else expire = TICK_ETERNITY`).
    pub reschedule: Option<SimDuration>,
    /// `timeout connect`: a client connection to a silent server fails, and its error is
    /// observed, this long after the attempt (`back_handle_st_cer` runs when the connect timer
    /// expires); `None` (no `timeout connect`): such an attempt never fails.
    pub timeout_connect: Option<SimDuration>,
}

/// One member's `consecutive_errors` under `observe layer4` (`src/check.c`, `__health_adjust`),
/// sans-IO: fed each client connection's layer-4 outcome, it says when the `on-error` action is
/// due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ErrorCounter {
    consecutive: u32,
}

impl ErrorCounter {
    /// Counts one client connection: `ok` is `HANA_STATUS_L4_OK` (it opened), else
    /// `HANA_STATUS_L4_ERR`. Returns true when this error reaches `limit`: the caller runs the
    /// `on-error` action; the count has restarted (`s->consecutive_errors = 0` after the action).
    #[inline]
    pub fn on_connection(&mut self, ok: bool, limit: u32) -> bool {
        if ok {
            // "good: clear consecutive_errors"
            self.consecutive = 0;
            return false;
        }
        self.consecutive = self.consecutive.saturating_add(1);
        if self.consecutive < limit {
            return false;
        }
        self.consecutive = 0;
        true
    }

    /// A passed active check clears the count (`set_server_check_status`, `CHK_RES_PASSED`:
    /// "clear consecutive_errors if observing is enabled", `if (s->onerror)`, which is always
    /// set: its default is fail-check).
    #[inline]
    pub fn on_check_passed(&mut self) {
        self.consecutive = 0;
    }

    /// Errors counted since the last success or action.
    pub fn count(&self) -> u32 {
        self.consecutive
    }
}

/// The `on-error` action on a member's counters (`__health_adjust`'s `switch (s->onerror)`), in
/// the streak form of HAProxy's health (`health = rise + fall - 1 - fail_streak` while UP,
/// `ok_streak` while DOWN: see `interval` and the module docs). Returns the member's new
/// status if it changed.
///
/// - `fastinter`: nothing here (the caller reschedules the check).
/// - `fail-check`: `set_server_check_status(HCHK_STATUS_HANA)`, a failed check: one failure.
/// - `sudden-death`: `if (health > rise) health = rise + 1`, then the failed check: an UP
///   server with fewer than `fall - 2` failures counted is set to `fall - 2` first, so that it
///   is left at `fall - 1`, one failure from DOWN; at `fall - 1` already, it goes DOWN.
/// - `mark-down`: `health = rise`, then the failed check, which drops health below `rise` to 0
///   (`check_notify_failure`, `srv_set_stopped`): DOWN, both streaks cleared, whatever the
///   state before (a DOWN server part-way back up starts over).
pub fn on_error(checker: &mut HealthChecker, fall: u32, mode: OnError) -> Option<Health> {
    match mode {
        OnError::FastInter => None,
        OnError::FailCheck => checker.on_verdict(false),
        OnError::SuddenDeath => {
            let (_, fail_streak) = checker.streaks();
            let pre_fatal = fall.saturating_sub(2);
            if checker.status() == Health::Online && fail_streak < pre_fatal {
                *checker = checker.with_fail_streak(pre_fatal);
            }
            checker.on_verdict(false)
        }
        OnError::MarkDown => {
            let was = checker.status();
            checker.set_status(Health::Offline);
            (was == Health::Online).then_some(Health::Offline)
        }
    }
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
            observe: ObserveMode::None,
            error_limit: DEFAULT_ERROR_LIMIT,
            on_error: OnError::FailCheck,
        }
    }
}

impl Options {
    /// The passive side these options ask for: `None` without `observe layer4`.
    pub fn observe(&self) -> Option<Observe> {
        match self.observe {
            ObserveMode::None => None,
            ObserveMode::Layer4 => Some(Observe {
                error_limit: self.error_limit.max(1),
                on_error: self.on_error,
                reschedule: self.fastinter.filter(|d| d.0 > 0),
                timeout_connect: self.timeout_connect.filter(|d| d.0 > 0),
            }),
        }
    }

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
        if self.error_limit == 0 {
            return Err(ProfileError::new(
                "model.haproxy.error_limit",
                "must be at least 1 (HAProxy: \"error-limit has to be > 0\", src/server.c \
                 srv_parse_error_limit); leave it out for the default, 10",
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

    /// HAProxy's server under `observe layer4`, literally: `check.health`, the server's state
    /// and `consecutive_errors` as `set_server_check_status`, `check_notify_failure`,
    /// `check_notify_success` and `__health_adjust` (src/check.c, v2.6.0) change them.
    struct HaproxyServer {
        health: u32,
        up: bool,
        consecutive_errors: u32,
        rise: u32,
        fall: u32,
        limit: u32,
        onerror: OnError,
    }

    impl HaproxyServer {
        /// `set_server_check_status` with a passed or failed result, then `check_notify_*`.
        fn check(&mut self, passed: bool) {
            let (rise, fall) = (self.rise, self.fall);
            if passed {
                if self.health < rise + fall - 1 {
                    self.health += 1;
                    if self.health >= rise {
                        self.health = rise + fall - 1;
                    }
                }
                // "clear consecutive_errors if observing is enabled"
                self.consecutive_errors = 0;
                if self.health >= rise {
                    self.up = true; // check_notify_success: srv_set_running
                }
            } else {
                if self.health > 0 {
                    self.health -= 1;
                    if self.health < rise {
                        self.health = 0;
                    }
                }
                if self.health == 0 {
                    self.up = false; // check_notify_failure: srv_set_stopped
                }
            }
        }

        /// `__health_adjust(s, L4_OK / L4_ERR)`; true when the on-error action ran.
        fn health_adjust(&mut self, l4_ok: bool) -> bool {
            if l4_ok {
                self.consecutive_errors = 0;
                return false;
            }
            self.consecutive_errors += 1;
            if self.consecutive_errors < self.limit {
                return false;
            }
            match self.onerror {
                OnError::FastInter => {}
                OnError::SuddenDeath => {
                    if self.health > self.rise {
                        self.health = self.rise + 1;
                    }
                    self.check(false); // HCHK_STATUS_HANA: CHK_RES_FAILED
                }
                OnError::FailCheck => self.check(false),
                OnError::MarkDown => {
                    self.health = self.rise;
                    self.check(false);
                }
            }
            self.consecutive_errors = 0;
            true
        }
    }

    #[test]
    fn observe_layer4_is_haproxys_health_adjust() {
        // Every sequence of 7 inputs (a passed or failed check, a client connection that opened
        // or failed), for each on-error mode, from both start states, for several rise/fall:
        // the streak counter, the error counter and `on_error` agree with HAProxy's health,
        // state and consecutive_errors after every input, and the action runs on the same one.
        for (rise, fall) in [(2, 3), (1, 1), (3, 2), (1, 4)] {
            let m = Monitor {
                rise,
                fall,
                ..monitor()
            };
            for onerror in OnError::ALL {
                let o = Options {
                    observe: ObserveMode::Layer4,
                    error_limit: 2,
                    on_error: onerror,
                    ..Options::default()
                };
                let obs = o.observe().unwrap();
                for fresh in [true, false] {
                    let rules = o.rules(&m, ProbeSchedule::AfterCompletion, fresh).unwrap();
                    for bits in 0u32..(1 << 14) {
                        let mut c = rules.checker();
                        let mut e = ErrorCounter::default();
                        let mut h = HaproxyServer {
                            health: if fresh { rise } else { rise + fall - 1 },
                            up: true,
                            consecutive_errors: 0,
                            rise,
                            fall,
                            limit: obs.error_limit,
                            onerror,
                        };
                        for i in 0..7 {
                            let input = bits >> (2 * i) & 3;
                            let ok = input & 1 == 1;
                            if input & 2 == 0 {
                                c.on_verdict(ok);
                                if ok {
                                    e.on_check_passed();
                                }
                                h.check(ok);
                            } else {
                                let acts = e.on_connection(ok, obs.error_limit);
                                if acts {
                                    on_error(&mut c, fall, onerror);
                                }
                                assert_eq!(acts, h.health_adjust(ok), "bits {bits:b} step {i}");
                            }
                            let at = format!("{onerror:?} rise {rise} fall {fall} fresh {fresh} bits {bits:b} step {i}");
                            assert_eq!(c.status() == Health::Online, h.up, "{at}");
                            let (ok_streak, fail_streak) = c.streaks();
                            let health = if h.up {
                                rise + fall - 1 - fail_streak
                            } else {
                                ok_streak
                            };
                            assert_eq!(health, h.health, "{at}");
                            assert_eq!(e.count(), h.consecutive_errors, "{at}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn each_on_error_mode_from_full_health() {
        // rise 2, fall 3, from full health: 10 errors run the action once.
        let m = monitor();
        let after = |mode: OnError, errors: u32| {
            let o = Options {
                observe: ObserveMode::Layer4,
                on_error: mode,
                ..Options::default()
            };
            let obs = o.observe().unwrap();
            assert_eq!(obs.error_limit, 10);
            let mut c = o
                .rules(&m, ProbeSchedule::AfterCompletion, false)
                .unwrap()
                .checker();
            let mut e = ErrorCounter::default();
            let mut transitions = Vec::new();
            for _ in 0..errors {
                if e.on_connection(false, obs.error_limit) {
                    transitions.push(on_error(&mut c, m.fall, mode));
                }
            }
            (c, transitions)
        };
        // Nine errors do nothing.
        for mode in OnError::ALL {
            let (c, t) = after(mode, 9);
            assert!(t.is_empty());
            assert_eq!(c.streaks(), (0, 0));
        }
        // fastinter: the streaks are untouched.
        let (c, t) = after(OnError::FastInter, 30);
        assert_eq!(
            (c.status(), c.streaks(), t),
            (Health::Online, (0, 0), vec![None; 3])
        );
        // fail-check: one failure per 10 errors, DOWN at the third action (fall 3).
        let (c, t) = after(OnError::FailCheck, 20);
        assert_eq!((c.status(), c.streaks().1), (Health::Online, 2));
        assert_eq!(t, vec![None, None]);
        let (_, t) = after(OnError::FailCheck, 30);
        assert_eq!(t, vec![None, None, Some(Health::Offline)]);
        // sudden-death: one failure from DOWN at the first action, DOWN at the second.
        let (c, t) = after(OnError::SuddenDeath, 10);
        assert_eq!(
            (c.status(), c.streaks().1, t),
            (Health::Online, 2, vec![None])
        );
        let (_, t) = after(OnError::SuddenDeath, 20);
        assert_eq!(t, vec![None, Some(Health::Offline)]);
        // mark-down: DOWN at once.
        let (c, t) = after(OnError::MarkDown, 10);
        assert_eq!(
            (c.status(), c.streaks(), t),
            (Health::Offline, (0, 0), vec![Some(Health::Offline)])
        );
    }

    #[test]
    fn a_success_clears_the_errors_and_fastinter_must_be_set_to_reschedule() {
        let mut e = ErrorCounter::default();
        for _ in 0..9 {
            assert!(!e.on_connection(false, 10));
        }
        assert!(!e.on_connection(true, 10));
        assert_eq!(e.count(), 0);
        for _ in 0..9 {
            assert!(!e.on_connection(false, 10));
        }
        e.on_check_passed();
        assert_eq!(e.count(), 0);
        // error-limit 1: every error acts.
        assert!(e.on_connection(false, 1) && e.on_connection(false, 1));
        // Without observe there is no passive side; fastinter reschedules only when set.
        assert_eq!(Options::default().observe(), None);
        let o = Options {
            observe: ObserveMode::Layer4,
            ..Options::default()
        };
        assert_eq!(o.observe().unwrap().reschedule, None);
        assert_eq!(o.observe().unwrap().on_error, OnError::FailCheck);
        let o = Options {
            fastinter: Some(SimDuration::from_secs(1)),
            ..o
        };
        assert_eq!(
            o.observe().unwrap().reschedule,
            Some(SimDuration::from_secs(1))
        );
        // error-limit 0 is refused, as HAProxy refuses it.
        let e = Options {
            error_limit: 0,
            ..o
        }
        .rules(&monitor(), ProbeSchedule::AfterCompletion, false)
        .unwrap_err();
        assert_eq!(e.key, "model.haproxy.error_limit");
        for mode in OnError::ALL {
            assert_eq!(OnError::parse(mode.as_str()), Some(mode));
        }
        assert_eq!(OnError::parse("markdown"), None);
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
