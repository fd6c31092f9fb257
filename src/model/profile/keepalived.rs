//! The `keepalived` profile: keepalived 2.2's checkers in front of IPVS (LVS).
//!
//! How the API's monitor maps onto a `real_server` block: `delay` → `delay_loop`, `timeout` →
//! `connect_timeout`, `max_retries_down` → `retry = max_retries_down - 1` (keepalived marks a
//! server down on the failure *after* `retry` retried ones, so this keeps the API's meaning of
//! F consecutive failures; OpenStack Octavia's LVS template writes `retry <fall_threshold>`,
//! i.e. F + 1 failures: set `retry` to reproduce it). `max_retries` has no counterpart: one
//! success brings a server back. The HTTP, HTTPS, TCP and UDP_CONNECT monitors become
//! HTTP_GET, SSL_GET, TCP_CHECK and UDP_CHECK.
//!
//! Each rule and the keepalived source that makes it (v2.2.7; `docs/profiles.md` has the table):
//!
//! - **Retry counting** (`keepalived/check/check_tcp.c`, `tcp_epilog`): a failure with
//!   `retry_it < retry` schedules a retry `delay_before_retry` later and increments `retry_it`;
//!   the next failure with `retry_it >= retry` marks the server DOWN and waits `delay_loop`; a
//!   success marks it UP (if it was not) and waits `delay_loop`. `check_udp.c`, `udp_epilog`,
//!   retries only while the server is up; `check_http.c`, `epilog`, increments first and marks
//!   DOWN when `retry_it > retry`, and while DOWN (`REGISTER_CHECKER_FAILED`) waits
//!   `max(delay_before_retry, delay_loop)`.
//! - **Defaults** (`check_api.c`, `queue_checker`: `default_retry = 1`,
//!   `default_delay_before_retry = 1 s`; `check_http.c`, `http_get_handler`: 3 s for HTTP_GET /
//!   SSL_GET; `check_data.c`, `alloc_rs`: `connect_timeout` 5 s, `delay_loop` 60 s).
//! - **Start** (`check_data.c`, `validate_check_config`: "For non alpha mode, one failure is
//!   enough initially", `retry_it = retry`; with `alpha` the checker starts failed):
//!   a fresh start is UP one failure from DOWN, or DOWN with `alpha`.
//! - **First check** (`check_api.c`, `register_checkers_thread`): a random `warmup` within
//!   `delay_loop` (uniform, each checker its own).
//! - **Timeouts** (`check_tcp.c` / `layer4.c`: `connect_timeout` bounds the connect;
//!   `check_http.c`, `http_read_thread`: each read is re-armed with `connect_timeout`): a
//!   silent host fails at `connect_timeout`, a hung application at `rtt + connect_timeout`.
//! - **UDP_CHECK** (`check_udp.c`, `layer4.c` `udp_socket_state`: "Handle Read timeout, we
//!   consider it success unless require_reply is set"): no ICMP echo first; a port unreachable
//!   fails, silence until `connect_timeout` passes, so a silent host is not seen.
//! - **inhibit_on_failure** (`ipwrapper.c`, `perform_svr_state`): off (the default), a DOWN
//!   server is removed from IPVS, whose open connections then lose their packets (IPVS
//!   `expire_nodest_conn`); on, its weight is set to 0 and open connections go on.
//! - No jitter: keepalived draws the warmup once, then runs its timers exactly.

use super::{
    FirstProbes, Intervals, Jitter, Judging, Monitor, ProbeState, ProfileError, ProfileName, Read,
    Rules,
};
use crate::model::health::{Health, ProbeSchedule};
use crate::model::probe::ProbeKind;
use crate::time::SimDuration;

/// Which keepalived checker the monitor type becomes: they count retries differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checker {
    /// TCP_CHECK: retries whatever the state.
    Tcp,
    /// UDP_CHECK: retries only while up.
    Udp,
    /// HTTP_GET / SSL_GET: retries while up; while down waits max(delay_before_retry, delay_loop).
    Http,
}

/// `[model.keepalived]`: keepalived settings the API has no field for.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Options {
    /// `retry`; `None`: `max_retries_down - 1`.
    pub retry: Option<u32>,
    /// `delay_before_retry`; `None`: keepalived's default (1 s, 3 s for HTTP_GET / SSL_GET).
    pub delay_before_retry: Option<SimDuration>,
    /// `alpha`: servers start DOWN until their first successful check (fresh start only).
    pub alpha: bool,
    /// `inhibit_on_failure`: a DOWN server keeps its open connections (weight 0).
    pub inhibit_on_failure: bool,
}

impl Options {
    /// keepalived's rules for `m`.
    pub fn rules(
        &self,
        m: &Monitor,
        schedule: ProbeSchedule,
        fresh: bool,
    ) -> Result<Rules, ProfileError> {
        if schedule == ProbeSchedule::FixedRate {
            return Err(ProfileError::new(
                "model.probe_schedule",
                "profile keepalived schedules each check after the previous one completes \
                 (keepalived/check/check_tcp.c tcp_epilog); remove probe_schedule = \
                 \"fixed_rate\" or use profile huawei",
            ));
        }
        let checker = match m.kind {
            ProbeKind::Tcp => Checker::Tcp,
            ProbeKind::UdpConnect => Checker::Udp,
            ProbeKind::Http | ProbeKind::Https => Checker::Http,
        };
        let retry = self.retry.unwrap_or(m.fall.max(1) - 1);
        if retry > 100 {
            return Err(ProfileError::new(
                "model.keepalived.retry",
                format!("must be 0..100, got {retry}"),
            ));
        }
        let dbr = self.delay_before_retry.unwrap_or(match checker {
            Checker::Http => SimDuration::from_secs(3),
            _ => SimDuration::from_secs(1),
        });
        if dbr.0 == 0 {
            return Err(ProfileError::new(
                "model.keepalived.delay_before_retry",
                "must be more than 0",
            ));
        }
        let ct = m.timeout;
        let fall = retry + 1;
        let alpha = fresh && self.alpha;
        Ok(Rules {
            profile: ProfileName::Keepalived,
            schedule,
            rise: 1,
            fall,
            initial: if alpha {
                Health::Offline
            } else {
                Health::Online
            },
            initial_fail_streak: if fresh && !alpha { fall - 1 } else { 0 },
            intervals: Intervals::Retry {
                delay_loop: m.delay,
                delay_before_retry: dbr,
                retry,
                checker,
            },
            jitter: Jitter::None,
            judging: Judging {
                connect: ct,
                read: Read::FromOpen(ct),
                udp_echo: false,
                udp_silence: ct,
                clients_seen: false,
            },
            first: FirstProbes::Uniform(m.delay),
            initial_probe_state: ProbeState {
                retry_it: if fresh { retry } else { 0 },
                has_run: !fresh,
                ..ProbeState::default()
            },
            close_on_down: !self.inhibit_on_failure,
        })
    }
}

/// The delay after a check, by keepalived's epilogs; `up` is whether the server was up before
/// this result. Keeps `retry_it` and `has_run` in `st`.
#[inline]
pub(super) fn interval(
    checker: Checker,
    st: &mut ProbeState,
    up: bool,
    ok: bool,
    retry: u32,
    delay_loop: SimDuration,
    dbr: SimDuration,
) -> SimDuration {
    // A fresh checker has `retry_it = retry` (validate_check_config); a steady one has 0. The
    // caller's start state encodes which: `has_run` false is only ever the very first check.
    let first = !st.has_run;
    st.has_run = true;
    if ok {
        st.retry_it = 0;
        return delay_loop;
    }
    match checker {
        Checker::Tcp => {
            // tcp_epilog: `if (is_success || retry_it >= retry)`.
            if st.retry_it >= retry {
                st.retry_it = 0;
                delay_loop
            } else {
                st.retry_it += 1;
                dbr
            }
        }
        Checker::Udp => {
            // udp_epilog: the final branch needs `is_up || !has_run`; retries only `if is_up`.
            if (up || first) && st.retry_it >= retry {
                st.retry_it = 0;
                delay_loop
            } else if up {
                st.retry_it += 1;
                dbr
            } else {
                delay_loop
            }
        }
        Checker::Http => {
            // timeout_epilog: a server known dead is not retried (REGISTER_CHECKER_FAILED);
            // epilog: the wait after a failure is max(dbr, delay_loop) once a URL has failed.
            if up || first {
                st.retry_it += 1;
                if st.retry_it > retry {
                    dbr.max(delay_loop)
                } else {
                    dbr
                }
            } else {
                dbr.max(delay_loop)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::health::HealthChecker;

    fn monitor(kind: ProbeKind) -> Monitor {
        Monitor {
            kind,
            delay: SimDuration::from_secs(6),
            timeout: SimDuration::from_secs(2),
            rise: 3,
            fall: 3,
        }
    }

    /// tcp_epilog / udp_epilog / http epilog, literally: (is_up, delay).
    fn literal(
        c: Checker,
        is_up: &mut bool,
        has_run: &mut bool,
        retry_it: &mut u32,
        retry: u32,
        ok: bool,
    ) -> u64 {
        let (lp, dbr) = (6, 1);
        match c {
            Checker::Tcp => {
                let d = if ok || *retry_it >= retry {
                    *retry_it = 0;
                    if ok && (!*is_up || !*has_run) {
                        *is_up = true;
                    } else if !ok && (*is_up || !*has_run) {
                        *is_up = false;
                    }
                    lp
                } else {
                    *retry_it += 1;
                    dbr
                };
                *has_run = true;
                d
            }
            Checker::Udp => {
                let mut d = lp;
                if ok || ((*is_up || !*has_run) && *retry_it >= retry) {
                    *retry_it = 0;
                    if ok && (!*is_up || !*has_run) {
                        *is_up = true;
                    } else if !ok && (*is_up || !*has_run) {
                        *is_up = false;
                    }
                } else if *is_up {
                    d = dbr;
                    *retry_it += 1;
                }
                *has_run = true;
                d
            }
            Checker::Http => {
                if ok {
                    *is_up = true;
                    *has_run = true;
                    *retry_it = 0;
                    return lp;
                }
                if *is_up || !*has_run {
                    *has_run = true;
                    *retry_it += 1;
                    if *retry_it > retry {
                        *is_up = false;
                        return dbr.max(lp);
                    }
                    return dbr;
                }
                dbr.max(lp)
            }
        }
    }

    #[test]
    fn status_and_delays_follow_keepalived_epilogs() {
        for (kind, c) in [
            (ProbeKind::Tcp, Checker::Tcp),
            (ProbeKind::UdpConnect, Checker::Udp),
            (ProbeKind::Http, Checker::Http),
        ] {
            let o = Options {
                delay_before_retry: Some(SimDuration::from_secs(1)),
                ..Options::default()
            };
            for fresh in [false, true] {
                let rules = o
                    .rules(&monitor(kind), ProbeSchedule::AfterCompletion, fresh)
                    .unwrap();
                let retry = rules.fall - 1;
                for bits in 0u32..(1 << 11) {
                    let mut checker: HealthChecker = rules.checker();
                    let mut st = rules.initial_probe_state;
                    let (mut up, mut has_run) = (true, !fresh);
                    let mut retry_it = if fresh { retry } else { 0 };
                    for i in 0..11 {
                        let ok = bits >> i & 1 == 1;
                        let was = checker.status();
                        checker.on_verdict(ok);
                        let d = literal(c, &mut up, &mut has_run, &mut retry_it, retry, ok);
                        assert_eq!(
                            checker.status() == Health::Online,
                            up,
                            "{c:?} fresh {fresh} bits {bits:b} step {i}"
                        );
                        let got = rules.interval_after(&checker, &mut st, was, ok);
                        assert_eq!(got, SimDuration::from_secs(d), "{c:?} {bits:b} {i}");
                    }
                }
            }
        }
    }

    #[test]
    fn retry_defaults_keep_the_apis_fall_and_keepalived_delays() {
        let r = Options::default()
            .rules(
                &monitor(ProbeKind::Http),
                ProbeSchedule::AfterCompletion,
                false,
            )
            .unwrap();
        assert_eq!((r.rise, r.fall), (1, 3));
        assert!(matches!(
            r.intervals,
            Intervals::Retry { delay_before_retry, .. } if delay_before_retry == SimDuration::from_secs(3)
        ));
        assert!(r.close_on_down);
        assert!(!r.judging.udp_echo);
    }
}
