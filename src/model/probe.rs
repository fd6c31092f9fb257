//! One health-check probe as the load balancer sees it: the check type, the verdict and the
//! failure reason codes the API reports.
//!
//! What a probe *meets* (a crashed, silent or hung backend) is the world's business, not the load
//! balancer's: the discrete-event engine judges probes in `crate::sim::world`, a real-time driver
//! on real sockets. Both hand the LB node a [`Verdict`].

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
    pub fn speaks_http(self) -> bool {
        matches!(self, ProbeKind::Http | ProbeKind::Https)
    }
}

/// Health-check failure reason codes, as the API's member `reason.reason_code` spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
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
    pub const OK: Verdict = Verdict {
        ok: true,
        reason: None,
        status: None,
    };

    pub fn fail(reason: Reason) -> Verdict {
        Verdict {
            ok: false,
            reason: Some(reason),
            status: None,
        }
    }
}
