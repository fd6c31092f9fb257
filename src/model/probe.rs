//! What one health-check probe sees: the fault x probe-type matrix of spec/model.md section 3.
//!
//! Pure functions: given the member's condition when the probe goes out, the probe's round trip
//! and whether the network lost it, [`judge`] says when the verdict arrives and what it is. The
//! engine draws the RTT and the loss; nothing here is random or knows the clock.
//!
//! Choices (README, "Model choices"):
//! - A probe is judged by the member's condition at the moment it is sent. This gives exactly the
//!   closed forms of spec/model.md section 8.
//! - Success arrives after one round trip (TCP handshake; HTTP request and answer are counted as
//!   one round trip too), except for UDP_CONNECT, where "silence within the timeout" is the
//!   success signal (Huawei elb_faq_0024), so success arrives at `timeout`.
//! - A round trip longer than the timeout is a failure at the timeout, CONNECT_TIMEOUT.

use crate::sim::time::SimDuration;
use serde::Serialize;

/// The health monitor's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ProbeKind {
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP_CONNECT")]
    UdpConnect,
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "HTTPS")]
    Https,
}

impl ProbeKind {
    fn speaks_http(self) -> bool {
        matches!(self, ProbeKind::Http | ProbeKind::Https)
    }
}

/// Health-check failure reason codes, as the API's member `reason.reason_code` spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    ConnectTimeout,
    ConnectRefused,
    ConnectFailed,
    ConnectInterrupt,
    SslHandshakeError,
    RecvResponseFailed,
    RecvResponseTimeout,
    SendRequestFailed,
    SendRequestTimeout,
    ResponseFormatError,
    ResponseMismatch,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::ConnectTimeout => "CONNECT_TIMEOUT",
            Reason::ConnectRefused => "CONNECT_REFUSED",
            Reason::ConnectFailed => "CONNECT_FAILED",
            Reason::ConnectInterrupt => "CONNECT_INTERRUPT",
            Reason::SslHandshakeError => "SSL_HANDSHAKE_ERROR",
            Reason::RecvResponseFailed => "RECV_RESPONSE_FAILED",
            Reason::RecvResponseTimeout => "RECV_RESPONSE_TIMEOUT",
            Reason::SendRequestFailed => "SEND_REQUEST_FAILED",
            Reason::SendRequestTimeout => "SEND_REQUEST_TIMEOUT",
            Reason::ResponseFormatError => "RESPONSE_FORMAT_ERROR",
            Reason::ResponseMismatch => "RESPONSE_MISMATCH",
        }
    }
}

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

/// A probe's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub ok: bool,
    /// Why it failed; `None` on success.
    pub reason: Option<Reason>,
    /// The status code received, for RESPONSE_MISMATCH.
    pub status: Option<u16>,
}

impl Verdict {
    const OK: Verdict = Verdict {
        ok: true,
        reason: None,
        status: None,
    };

    fn fail(reason: Reason) -> Verdict {
        Verdict {
            ok: false,
            reason: Some(reason),
            status: None,
        }
    }
}

/// Judges one probe: `(time from send to verdict, verdict)`.
///
/// `rtt` is the network's round trip for this probe (the engine adds `extra_latency`), `lost`
/// whether the network or a `loss` fault dropped it.
pub fn judge(
    kind: ProbeKind,
    timeout: SimDuration,
    cond: &Condition,
    rtt: SimDuration,
    lost: bool,
) -> (SimDuration, Verdict) {
    let rtt = rtt + cond.extra_latency;
    // Silence: the probe, the echo or the SYN never comes back.
    if cond.host_down || lost {
        return (timeout, Verdict::fail(Reason::ConnectTimeout));
    }
    if rtt > timeout {
        return (timeout, Verdict::fail(Reason::ConnectTimeout));
    }
    // An active refusal: RST for TCP-based probes, ICMP port unreachable for UDP_CONNECT.
    if cond.crashed || cond.monitor_port_down {
        return (rtt, Verdict::fail(Reason::ConnectRefused));
    }
    let success_after = match kind {
        ProbeKind::UdpConnect => timeout,
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
        return (timeout, Verdict::fail(Reason::RecvResponseTimeout));
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

#[cfg(test)]
mod tests {
    use super::*;
    use ProbeKind::*;

    const T: SimDuration = SimDuration::from_secs(3);
    const R: SimDuration = SimDuration::from_millis(1);

    fn with(f: impl Fn(&mut Condition)) -> Condition {
        let mut c = Condition::default();
        f(&mut c);
        c
    }

    fn see(kind: ProbeKind, c: Condition) -> (SimDuration, bool, Option<Reason>) {
        let (after, v) = judge(kind, T, &c, R, false);
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
        assert_eq!(judge(Http, T, &bad, R, false).1.status, Some(503));
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
        for k in [Tcp, UdpConnect, Http, Https] {
            let (after, v) = judge(k, T, &Condition::default(), R, true);
            assert_eq!((after, v.ok), (T, false));
        }
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
}
