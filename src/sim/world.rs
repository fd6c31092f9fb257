//! The simulated world: how a member with faults answers a probe (the fault x probe-type matrix
//! of the model, `docs/model.md` "What each check sees").
//!
//! Pure functions: given the member's condition when the probe goes out, the probe's round trip
//! and whether the network lost it, [`judge`] says when the verdict arrives and what it is. The
//! engine draws the RTT and the loss; nothing here is random or knows the clock. A member's
//! condition is itself a pure function of the clock and the fault list ([`condition_at`]).
//!
//! Choices (README, "Model choices"):
//! - A probe is judged by the member's condition at the moment it is sent. This gives exactly the
//!   closed forms of `docs/model.md`.
//! - Success arrives after one round trip (TCP handshake; HTTP request and answer are counted as
//!   one round trip too), except for UDP_CONNECT, where "silence within the timeout" is the
//!   success signal (Huawei elb_faq_0024), so success arrives at `timeout`.
//! - UDP_CONNECT sends two things: an ICMP echo (lost: no echo reply, the check fails at the
//!   timeout) and then the UDP probe. A lost UDP probe, or a lost port-unreachable answer, is
//!   silence, which passes (elb_faq_0024: only an echo failure or a port-unreachable fails).
//! - A round trip longer than the timeout is a failure at the timeout, CONNECT_TIMEOUT.
//! - The timeouts are the profile's ([`Judging`], `crate::model::profile`): under the huawei
//!   profile one `timeout` from the send bounds everything; HAProxy bounds the connect by
//!   min(inter, timeout connect) and the answer by `timeout check` from the connection's
//!   opening; keepalived's UDP_CHECK has no echo step, so a silent host passes it.

use crate::model::probe::{ProbeKind, Reason, Verdict};
use crate::model::profile::Judging;
use crate::sim::config::{Fault, FaultKind};
use crate::time::{SimDuration, SimTime};

/// The state of one member as the faults active on it make it, seen from the probe path.
///
/// Several faults may overlap; [`Condition`] is their combination (the engine rebuilds it when a
/// fault starts or ends).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Condition {
    /// Host and path silent: nothing answers (`host_down`).
    pub host_down: bool,
    /// The process is gone, the host answers with RST / port unreachable (`crash`, `flap` down).
    pub crashed: bool,
    /// Only the health-check port refuses (`monitor_port_down`).
    pub monitor_port_down: bool,
    /// The kernel accepts, the application never answers (`hang`).
    pub hang: bool,
    /// TLS handshakes fail (`tls_error`).
    pub tls_error: bool,
    /// The application answers with this status; `true` when it is in expected_codes.
    pub http_status: Option<(u16, bool)>,
    /// Extra one-way-and-back latency (`slow`).
    pub extra_latency: SimDuration,
    /// Probability a probe or its answer is lost (`loss`), on top of the network's loss.
    pub loss: f64,
}

impl Condition {
    /// The member really failed: the process is gone or the host is silent. Its open
    /// connections break.
    pub fn is_down(&self) -> bool {
        self.crashed || self.host_down
    }
}

/// What the network lost of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lost {
    /// The probe's first exchange: the SYN or request (TCP, HTTP, HTTPS) or the ICMP echo
    /// (UDP_CONNECT), or its answer.
    pub first: bool,
    /// UDP_CONNECT only: the UDP probe or the port-unreachable answer. Silence passes.
    pub udp_probe: bool,
}

/// Judges one probe: `(time from send to verdict, verdict)`.
///
/// `rtt` is the network's round trip for this probe (the engine adds `extra_latency`), `lost`
/// what the network or a `loss` fault dropped, `j` the profile's phase bounds.
#[inline]
pub fn judge(
    kind: ProbeKind,
    j: &Judging,
    cond: &Condition,
    rtt: SimDuration,
    lost: Lost,
) -> (SimDuration, Verdict) {
    let rtt = rtt + cond.extra_latency;
    if kind == ProbeKind::UdpConnect && !j.udp_echo {
        // One datagram and no echo step (keepalived's UDP_CHECK): silence, whether the host is
        // gone, the datagram lost or the port-unreachable late, passes at the read timeout.
        if cond.host_down || lost.first || rtt > j.connect {
            return (j.udp_silence, Verdict::OK);
        }
        if cond.crashed || cond.monitor_port_down {
            return (rtt, Verdict::fail(Reason::ConnectRefused));
        }
        return (j.udp_silence, Verdict::OK);
    }
    // Silence: the probe, the echo or the SYN never comes back.
    if cond.host_down || lost.first {
        return (j.connect, Verdict::fail(Reason::ConnectTimeout));
    }
    if rtt > j.connect {
        return (j.connect, Verdict::fail(Reason::ConnectTimeout));
    }
    // An active refusal: RST for TCP-based probes, ICMP port unreachable for UDP_CONNECT, whose
    // lost UDP probe (or lost refusal) is silence instead, and silence passes.
    if cond.crashed || cond.monitor_port_down {
        if kind == ProbeKind::UdpConnect && lost.udp_probe {
            return (j.udp_silence, Verdict::OK);
        }
        return (rtt, Verdict::fail(Reason::ConnectRefused));
    }
    let success_after = match kind {
        ProbeKind::UdpConnect => j.udp_silence,
        _ => rtt,
    };
    if !kind.speaks_http() {
        // TCP and UDP_CONNECT stop at the transport: hang, status and TLS faults pass.
        return (success_after, Verdict::OK);
    }
    if kind == ProbeKind::Https && cond.tls_error {
        return (rtt, Verdict::fail(Reason::SslHandshakeError));
    }
    if cond.hang {
        return (
            j.read_deadline(rtt),
            Verdict::fail(Reason::RecvResponseTimeout),
        );
    }
    match cond.http_status {
        Some((status, false)) => (
            rtt,
            Verdict {
                ok: false,
                reason: Some(Reason::ResponseMismatch),
                status: Some(status),
            },
        ),
        _ => (success_after, Verdict::OK),
    }
}

/// The failure reason a fault of `kind` gives a probe of type `check` (what [`judge`] answers
/// for a member with only that fault), or `None` when the check cannot see the fault. `slow`
/// counts as seen when its latency plus the typical round trip `rtt` exceeds the timeout; a flap
/// is seen in its down phases. Failovers are attributed to a fault by this: a verdict whose
/// reason the fault does not produce was caused by something else (noise), not by the fault.
/// `j` is the profile's [`Judging`]: its connect bound decides `slow`, and a UDP check without
/// an echo step (keepalived) sees neither `host_down` nor `loss`.
pub fn reason_of(
    kind: &FaultKind,
    check: ProbeKind,
    j: &Judging,
    rtt: SimDuration,
) -> Option<Reason> {
    let timeout = j.connect;
    if check == ProbeKind::UdpConnect && !j.udp_echo {
        return match *kind {
            FaultKind::Crash | FaultKind::MonitorPortDown | FaultKind::Flap { .. } => {
                Some(Reason::ConnectRefused)
            }
            _ => None,
        };
    }
    match *kind {
        FaultKind::Crash | FaultKind::MonitorPortDown | FaultKind::Flap { .. } => {
            Some(Reason::ConnectRefused)
        }
        FaultKind::HostDown | FaultKind::Loss { .. } => Some(Reason::ConnectTimeout),
        FaultKind::Slow { latency } => (latency + rtt > timeout).then_some(Reason::ConnectTimeout),
        // Clients' failing answers count too where the profile reads them (envoy's outlier
        // detection, the immediate-fail header): then any check "sees" these faults.
        FaultKind::Hang => {
            (check.speaks_http() || j.clients_seen).then_some(Reason::RecvResponseTimeout)
        }
        FaultKind::HttpStatus { expected, status } => ((check.speaks_http() && !expected)
            || (j.clients_seen && crate::sim::engine::status_fails_requests(status)))
        .then_some(Reason::ResponseMismatch),
        FaultKind::TlsError => (check == ProbeKind::Https).then_some(Reason::SslHandshakeError),
    }
}

/// Whether the member is failing by `faults` at `t` as far as `check` can see: some fault active
/// then gives its probes a failure reason (a flap only in its down phase).
pub fn seen_failing(
    faults: &[Fault],
    t: SimTime,
    check: ProbeKind,
    j: &Judging,
    rtt: SimDuration,
) -> bool {
    faults.iter().any(|f| {
        let active = f.at <= t && f.until.is_none_or(|u| t < u);
        active
            && reason_of(&f.kind, check, j, rtt).is_some()
            && match f.kind {
                FaultKind::Flap { period, down } => {
                    t.since(f.at).0 % period.0.max(1) < flap_down_span(period, down).0
                }
                _ => true,
            }
    })
}

/// The length of a flap's down phase in each period.
pub fn flap_down_span(period: SimDuration, down: f64) -> SimDuration {
    SimDuration((period.0 as f64 * down) as u64)
}

/// A member's condition at `t`: the combination of its faults active then (`at <= t < until`).
/// A flap is down during the first `down` of each period from its start.
#[inline]
pub fn condition_at(faults: &[Fault], t: SimTime) -> Condition {
    let mut c = Condition::default();
    for f in faults {
        if t < f.at || f.until.is_some_and(|u| t >= u) {
            continue;
        }
        match f.kind {
            FaultKind::Crash => c.crashed = true,
            FaultKind::HostDown => c.host_down = true,
            FaultKind::Hang => c.hang = true,
            FaultKind::HttpStatus { status, expected } => c.http_status = Some((status, expected)),
            FaultKind::Slow { latency } => c.extra_latency = c.extra_latency + latency,
            FaultKind::Loss { probability } => c.loss = 1.0 - (1.0 - c.loss) * (1.0 - probability),
            FaultKind::MonitorPortDown => c.monitor_port_down = true,
            FaultKind::TlsError => c.tls_error = true,
            FaultKind::Flap { period, down } => {
                let phase = t.since(f.at).0 % period.0.max(1);
                c.crashed |= phase < flap_down_span(period, down).0;
            }
        }
    }
    c
}

/// A member's condition at `t` with the span `[from, until)` around `t` over which it holds:
/// no fault starts, ends or changes flap phase inside it. The engine caches it per member, so
/// a probe costs a range check instead of a walk over the faults.
pub fn condition_span(faults: &[Fault], t: SimTime) -> (Condition, SimTime, SimTime) {
    let mut from = SimTime::ZERO;
    let mut until = SimTime(u64::MAX);
    for f in faults {
        if t < f.at {
            until = until.min(f.at);
            continue;
        }
        if let Some(u) = f.until {
            if t >= u {
                from = from.max(u);
                continue;
            }
            until = until.min(u);
        }
        from = from.max(f.at);
        if let FaultKind::Flap { period, down } = f.kind {
            let period = period.0.max(1);
            let phase = t.since(f.at).0 % period;
            let cycle = t.0 - phase;
            let down = flap_down_span(SimDuration(period), down).0;
            if phase < down {
                from = from.max(SimTime(cycle));
                until = until.min(SimTime(cycle.saturating_add(down)));
            } else {
                from = from.max(SimTime(cycle + down));
                until = until.min(SimTime(cycle.saturating_add(period)));
            }
        }
    }
    (condition_at(faults, t), from, until)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::router::Role;
    use ProbeKind::*;

    const T: SimDuration = SimDuration::from_secs(3);
    const R: SimDuration = SimDuration::from_millis(1);
    /// Huawei's bounds: one timeout T from the send.
    const J: Judging = Judging {
        connect: T,
        read: crate::model::profile::Read::FromSend(T),
        udp_echo: true,
        udp_silence: T,
        clients_seen: false,
    };

    fn with(f: impl Fn(&mut Condition)) -> Condition {
        let mut c = Condition::default();
        f(&mut c);
        c
    }

    fn see(kind: ProbeKind, c: Condition) -> (SimDuration, bool, Option<Reason>) {
        let (after, v) = judge(kind, &J, &c, R, Lost::default());
        (after, v.ok, v.reason)
    }

    #[test]
    fn healthy_member_passes_after_one_round_trip_udp_after_timeout() {
        for k in [Tcp, Http, Https] {
            assert_eq!(see(k, Condition::default()), (R, true, None));
        }
        assert_eq!(see(UdpConnect, Condition::default()), (T, true, None));
    }

    #[test]
    fn crash_is_refused_after_rtt_for_every_probe() {
        let c = with(|c| c.crashed = true);
        for k in [Tcp, UdpConnect, Http, Https] {
            assert_eq!(see(k, c), (R, false, Some(Reason::ConnectRefused)));
        }
    }

    #[test]
    fn host_down_times_out_for_every_probe() {
        let c = with(|c| c.host_down = true);
        for k in [Tcp, UdpConnect, Http, Https] {
            assert_eq!(see(k, c), (T, false, Some(Reason::ConnectTimeout)));
        }
    }

    #[test]
    fn hang_passes_transport_checks_and_fails_http_at_timeout() {
        let c = with(|c| c.hang = true);
        assert_eq!(see(Tcp, c), (R, true, None));
        assert_eq!(see(UdpConnect, c), (T, true, None));
        for k in [Http, Https] {
            assert_eq!(see(k, c), (T, false, Some(Reason::RecvResponseTimeout)));
        }
    }

    #[test]
    fn http_status_fails_only_http_checks_unless_expected() {
        let bad = with(|c| c.http_status = Some((503, false)));
        let fine = with(|c| c.http_status = Some((503, true)));
        assert_eq!(see(Tcp, bad), (R, true, None));
        assert!(see(UdpConnect, bad).1);
        for k in [Http, Https] {
            assert_eq!(see(k, bad), (R, false, Some(Reason::ResponseMismatch)));
            assert_eq!(see(k, fine), (R, true, None));
        }
        assert_eq!(
            judge(Http, &J, &bad, R, Lost::default()).1.status,
            Some(503)
        );
    }

    #[test]
    fn slow_fails_only_beyond_the_timeout() {
        let under = with(|c| c.extra_latency = SimDuration::from_millis(2998));
        let over = with(|c| c.extra_latency = SimDuration::from_millis(3000));
        assert_eq!(
            see(Tcp, under),
            (T - SimDuration::from_millis(1), true, None)
        );
        assert_eq!(see(Tcp, over), (T, false, Some(Reason::ConnectTimeout)));
    }

    #[test]
    fn lost_probe_fails_at_timeout() {
        let first = Lost {
            first: true,
            udp_probe: false,
        };
        for k in [Tcp, UdpConnect, Http, Https] {
            let (after, v) = judge(k, &J, &Condition::default(), R, first);
            assert_eq!((after, v.ok), (T, false));
        }
    }

    #[test]
    fn a_lost_udp_probe_is_silence_and_passes_even_when_refused() {
        let udp = Lost {
            first: false,
            udp_probe: true,
        };
        let crashed = with(|c| c.crashed = true);
        assert_eq!(judge(UdpConnect, &J, &crashed, R, udp), (T, Verdict::OK));
        assert_eq!(
            judge(UdpConnect, &J, &Condition::default(), R, udp),
            (T, Verdict::OK)
        );
        // Only UDP_CONNECT has a second exchange.
        assert!(!judge(Tcp, &J, &crashed, R, udp).1.ok);
    }

    #[test]
    fn monitor_port_down_fails_every_probe_after_rtt() {
        let c = with(|c| c.monitor_port_down = true);
        for k in [Tcp, UdpConnect, Http, Https] {
            assert_eq!(see(k, c), (R, false, Some(Reason::ConnectRefused)));
        }
    }

    #[test]
    fn tls_error_fails_only_https() {
        let c = with(|c| c.tls_error = true);
        assert_eq!(see(Https, c), (R, false, Some(Reason::SslHandshakeError)));
        for k in [Tcp, Http] {
            assert_eq!(see(k, c), (R, true, None));
        }
        assert!(see(UdpConnect, c).1);
    }

    // Conditions over time.

    fn fault(kind: FaultKind, at: u64, until: Option<u64>) -> Fault {
        Fault {
            member: Role::Master,
            kind,
            at: SimTime::ZERO + SimDuration::from_secs(at),
            until: until.map(|u| SimTime::ZERO + SimDuration::from_secs(u)),
        }
    }

    fn at(s: f64) -> SimTime {
        SimTime::ZERO + SimDuration::from_secs_f64(s)
    }

    #[test]
    fn faults_are_active_from_at_until_until() {
        let f = [fault(FaultKind::Crash, 10, Some(20))];
        assert!(!condition_at(&f, at(9.999)).crashed);
        assert!(condition_at(&f, at(10.0)).crashed);
        assert!(condition_at(&f, at(19.999)).crashed);
        assert!(!condition_at(&f, at(20.0)).crashed);
    }

    #[test]
    fn flaps_are_down_for_their_fraction_of_each_period() {
        let flap = FaultKind::Flap {
            period: SimDuration::from_secs(10),
            down: 0.3,
        };
        let f = [fault(flap, 100, None)];
        for (t, down) in [
            (100.0, true),
            (102.9, true),
            (103.0, false),
            (109.9, false),
            (110.0, true),
        ] {
            assert_eq!(condition_at(&f, at(t)).crashed, down, "at {t}");
        }
    }

    #[test]
    fn condition_spans_hold_their_condition() {
        let flap = FaultKind::Flap {
            period: SimDuration::from_secs(10),
            down: 0.3,
        };
        let f = [
            fault(flap, 100, Some(157)),
            fault(FaultKind::Crash, 20, Some(40)),
            fault(FaultKind::Hang, 30, None),
        ];
        let step = SimDuration::from_millis(250);
        let mut t = SimTime::ZERO;
        while t < at(200.0) {
            let (c, from, until) = condition_span(&f, t);
            assert!(from <= t && t < until, "{t}");
            assert_eq!(c, condition_at(&f, t));
            assert_eq!(c, condition_at(&f, from), "from {from}");
            assert_eq!(c, condition_at(&f, SimTime(until.0 - 1)), "until {until}");
            t += step;
        }
    }

    #[test]
    fn overlapping_faults_combine() {
        let f = [
            fault(FaultKind::Loss { probability: 0.5 }, 0, None),
            fault(FaultKind::Loss { probability: 0.5 }, 0, None),
            fault(
                FaultKind::Slow {
                    latency: SimDuration::from_secs(1),
                },
                0,
                None,
            ),
            fault(
                FaultKind::Slow {
                    latency: SimDuration::from_secs(2),
                },
                0,
                None,
            ),
        ];
        let c = condition_at(&f, at(1.0));
        assert!((c.loss - 0.75).abs() < 1e-12);
        assert_eq!(c.extra_latency, SimDuration::from_secs(3));
    }

    #[test]
    fn reason_of_agrees_with_judge_for_every_fault_and_check() {
        let kinds = [
            FaultKind::Crash,
            FaultKind::HostDown,
            FaultKind::Hang,
            FaultKind::HttpStatus {
                status: 503,
                expected: false,
            },
            FaultKind::HttpStatus {
                status: 302,
                expected: true,
            },
            FaultKind::Slow {
                latency: SimDuration::from_secs(5),
            },
            FaultKind::Slow {
                latency: SimDuration::from_millis(10),
            },
            FaultKind::Loss { probability: 1.0 },
            FaultKind::MonitorPortDown,
            FaultKind::TlsError,
            FaultKind::Flap {
                period: SimDuration::from_secs(10),
                down: 0.5,
            },
        ];
        for kind in kinds {
            for check in [Tcp, UdpConnect, Http, Https] {
                let f = [fault(kind, 0, None)];
                let c = condition_at(&f, at(1.0));
                let lost = Lost {
                    first: c.loss >= 1.0,
                    udp_probe: false,
                };
                let (_, v) = judge(check, &J, &c, R, lost);
                assert_eq!(
                    v.reason,
                    reason_of(&kind, check, &J, R),
                    "{} on {check:?}",
                    kind.name()
                );
            }
        }
    }
}
