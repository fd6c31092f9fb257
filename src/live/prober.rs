//! The real health check: one probe of one member over real sockets, as the pool's
//! `healthmonitor` configures it, with the reason codes of `model::probe::Reason`.
//!
//! One deadline per probe: `timeout` bounds the whole probe (connect, TLS handshake, request,
//! status line), as the DES's single `timeout` does, so a verdict never comes later than
//! `timeout` after the probe went out. A data-plane profile other than huawei splits it as the
//! simulator does ([`Prober::with_judging`], `crate::model::profile::Judging`): the connect is
//! bounded on its own (HAProxy: min(inter, timeout connect)), the answer by a bound counted
//! from the connection's opening (HAProxy `timeout check`), and a UDP check may skip its echo
//! step (keepalived's UDP_CHECK).
//!
//! - **TCP**: success = connected within the timeout. Then the connection is closed with an RST
//!   (SO_LINGER 0), as ELB's TCP check does, which also leaves no TIME_WAIT behind. RST on the
//!   SYN = CONNECT_REFUSED; no answer = CONNECT_TIMEOUT; anything else = CONNECT_FAILED.
//! - **HTTP / HTTPS**: connect, (TLS handshake,) send `http_method url_path HTTP/1.1` with
//!   `Host: domain_name` (else the target's IP, standing in for the LB's VIP) and
//!   `Connection: close`, read the status line, match it against `expected_codes` (the API's
//!   own parser, [`ExpectedCodes`]). A failed handshake is SSL_HANDSHAKE_ERROR; one that does not
//!   finish in time is RECV_RESPONSE_TIMEOUT (a ClientHello went out and nothing came back, as
//!   for a hung application); a status outside expected_codes is RESPONSE_MISMATCH with the
//!   status seen; a peer that closes before a status line is RECV_RESPONSE_FAILED; bytes that are
//!   no status line are RESPONSE_FORMAT_ERROR. The certificate is not verified (ELB does not).
//! - **UDP_CONNECT** (Huawei elb_faq_0024): first an ICMP echo (no reply within the timeout =
//!   unhealthy, CONNECT_TIMEOUT), then a datagram on a connected UDP socket: an ICMP port
//!   unreachable within the timeout (Linux reports it as ECONNREFUSED on the connected socket)
//!   = unhealthy, CONNECT_REFUSED; silence = healthy. Silence is the success signal, so a
//!   success is judged at the timeout, as in the DES; an echo from the service is noted but ends
//!   nothing early.
//!
//! **The echo step, honestly.** Against real hosts ([`EchoStep::Icmp`]) the prober sends a real
//! ICMP echo ([`super::icmp`]). The crate's own backends all live on 127.0.0.1, where the kernel
//! answers every echo, so a `host_down` fault could never fail it; for them the step asks the
//! member's fault layer instead ([`EchoStep::FaultLayer`]): its "host" answers unless
//! `host_down` is active or a `loss` fault drops the echo, in which case the step waits for the
//! deadline and fails, exactly as a lost echo would.

use super::fault::FaultHandle;
use super::http::{self, StatusLine};
use crate::api::pool::{ExpectedCodes, HealthMonitor, HttpMethod, MonitorType};
use crate::model::probe::{ProbeKind, Reason, Verdict};
use serde::Serialize;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

/// What one probe does, in wall-clock units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSpec {
    pub kind: ProbeKind,
    pub timeout: Duration,
    pub http_method: HttpMethod,
    pub url_path: String,
    /// The Host header (and TLS SNI); `None`: the target's IP.
    pub domain_name: Option<String>,
    pub expected_codes: ExpectedCodes,
}

/// The probe type of a monitor type.
pub fn probe_kind(t: MonitorType) -> ProbeKind {
    match t {
        MonitorType::Tcp => ProbeKind::Tcp,
        MonitorType::UdpConnect => ProbeKind::UdpConnect,
        MonitorType::Http => ProbeKind::Http,
        MonitorType::Https => ProbeKind::Https,
    }
}

impl CheckSpec {
    /// The pool's health monitor, its timeout multiplied by `time_scale`.
    pub fn from_monitor(hm: &HealthMonitor, time_scale: f64) -> CheckSpec {
        CheckSpec {
            kind: probe_kind(hm.monitor_type),
            timeout: Duration::from_secs_f64(hm.timeout_s as f64 * time_scale.max(0.0)),
            http_method: hm.http_method,
            url_path: hm.url_path.clone(),
            domain_name: hm.domain_name.clone(),
            expected_codes: hm.expected_codes.clone(),
        }
    }
}

/// How the UDP_CONNECT check's first step (the ICMP echo) is done.
#[derive(Debug, Clone)]
pub enum EchoStep {
    /// A real ICMP echo to the target's address; when no ICMP socket can be opened, the step
    /// is skipped and the verdict's note says so.
    Icmp,
    /// Ask this member's fault layer whether its host answers (the crate's own backends).
    FaultLayer(FaultHandle),
    /// No echo step.
    Skip,
}

/// One probe's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeResult {
    pub ok: bool,
    /// Why it failed, as the API's member `reason.reason_code`; `None` on success.
    pub reason: Option<Reason>,
    /// The HTTP status received, if a status line was read.
    pub http_status: Option<u16>,
    /// From the probe going out to its verdict.
    #[serde(serialize_with = "ser_ms", rename = "rtt_ms")]
    pub rtt: Duration,
    /// Anything worth knowing about this probe (e.g. the echo step was skipped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e3)
}

impl ProbeResult {
    /// The model's verdict (what `HealthChecker` and the DES log take).
    pub fn verdict(&self) -> Verdict {
        Verdict {
            ok: self.ok,
            reason: self.reason,
            status: if self.reason == Some(Reason::ResponseMismatch) {
                self.http_status
            } else {
                None
            },
        }
    }
}

/// A failed step: the reason and the status seen, if any.
struct Fail(Reason, Option<u16>);

/// The phases of one probe in wall-clock units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Phases {
    connect: Duration,
    /// `Some`: the answer's bound counts from the connection's opening; `None`: from the send,
    /// `whole` after it.
    read_from_open: Option<Duration>,
    whole: Duration,
    udp_echo: bool,
    udp_silence: Duration,
}

/// Runs health-check probes as one pool's monitor configures them.
#[derive(Clone)]
pub struct Prober {
    spec: CheckSpec,
    tls: Option<tokio_rustls::TlsConnector>,
    phases: Phases,
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prober").field("spec", &self.spec).finish()
    }
}

impl Prober {
    /// Fails only when the TLS client cannot be configured (HTTPS checks).
    pub fn new(spec: CheckSpec) -> Result<Prober, String> {
        let tls = match spec.kind {
            ProbeKind::Https => Some(tokio_rustls::TlsConnector::from(
                super::tls::client_config()?
            )),
            _ => None,
        };
        let t = spec.timeout;
        let phases = Phases {
            connect: t,
            read_from_open: None,
            whole: t,
            udp_echo: true,
            udp_silence: t,
        };
        Ok(Prober { spec, tls, phases })
    }

    /// The same prober with a profile's phase bounds, each multiplied by `time_scale`.
    pub fn with_judging(mut self, j: &crate::model::profile::Judging, time_scale: f64) -> Prober {
        use crate::model::profile::Read;
        let wall = |d: crate::time::SimDuration| {
            Duration::from_secs_f64(d.as_secs_f64() * time_scale.max(0.0))
        };
        self.phases = Phases {
            connect: wall(j.connect),
            read_from_open: match j.read {
                Read::FromOpen(d) => Some(wall(d)),
                Read::FromSend(_) => None,
            },
            whole: match j.read {
                Read::FromSend(d) => wall(d),
                Read::FromOpen(_) => wall(j.longest()),
            },
            udp_echo: j.udp_echo,
            udp_silence: wall(j.udp_silence),
        };
        self
    }

    pub fn spec(&self) -> &CheckSpec {
        &self.spec
    }

    /// One probe of `target`; never takes (much) longer than the timeout.
    pub async fn probe(&self, target: SocketAddr, echo: &EchoStep) -> ProbeResult {
        let start = Instant::now();
        let p = self.phases;
        let connect_by = start + p.connect;
        let mut note = None;
        let outcome = match self.spec.kind {
            ProbeKind::Tcp => self.tcp(target, connect_by).await.map(|()| None),
            ProbeKind::Http | ProbeKind::Https => self
                .http(target, connect_by, start + p.whole)
                .await
                .map(Some),
            ProbeKind::UdpConnect => {
                let echo = if p.udp_echo { echo } else { &EchoStep::Skip };
                self.udp(target, start + p.udp_silence, echo, &mut note)
                    .await
            }
        };
        let rtt = start.elapsed();
        match outcome {
            Ok(status) => ProbeResult {
                ok: true,
                reason: None,
                http_status: status,
                rtt,
                note,
            },
            Err(Fail(reason, status)) => ProbeResult {
                ok: false,
                reason: Some(reason),
                http_status: status,
                rtt,
                note,
            },
        }
    }

    async fn connect(&self, target: SocketAddr, deadline: Instant) -> Result<TcpStream, Fail> {
        match super::timer::timeout_at(deadline, TcpStream::connect(target)).await {
            Err(_) => Err(Fail(Reason::ConnectTimeout, None)),
            Ok(Err(e)) => Err(Fail(connect_reason(&e), None)),
            Ok(Ok(s)) => Ok(s),
        }
    }

    async fn tcp(&self, target: SocketAddr, deadline: Instant) -> Result<(), Fail> {
        let s = self.connect(target, deadline).await?;
        // Handshake done: close with RST, as ELB's TCP check does.
        let _ = s.set_zero_linger();
        Ok(())
    }

    /// `connect_by` bounds the connect; the rest is bounded by `whole` or, when the profile
    /// counts the answer's bound from the opening, by that much after it.
    async fn http(
        &self,
        target: SocketAddr,
        connect_by: Instant,
        whole: Instant,
    ) -> Result<u16, Fail> {
        let mut stream = self.connect(target, connect_by).await?;
        let deadline = match self.phases.read_from_open {
            Some(d) => Instant::now() + d,
            None => whole,
        };
        let request = self.request(target.ip());
        let result = match &self.tls {
            None => self.exchange(&mut stream, &request, deadline).await,
            Some(connector) => {
                let name = super::tls::server_name(self.spec.domain_name.as_deref(), target.ip());
                let handshake = connector.connect(name, &mut stream);
                match super::timer::timeout_at(deadline, handshake).await {
                    Err(_) => Err(Fail(Reason::RecvResponseTimeout, None)),
                    Ok(Err(_)) => Err(Fail(Reason::SslHandshakeError, None)),
                    Ok(Ok(mut tls)) => self.exchange(&mut tls, &request, deadline).await,
                }
            }
        };
        // The probe has what it came for: close with RST rather than wait for the rest.
        let _ = stream.set_zero_linger();
        result
    }

    fn request(&self, ip: IpAddr) -> Vec<u8> {
        let host = match (&self.spec.domain_name, ip) {
            (Some(d), _) => d.clone(),
            (None, IpAddr::V4(v4)) => v4.to_string(),
            (None, IpAddr::V6(v6)) => format!("[{v6}]"),
        };
        let body_header = if self.spec.http_method == HttpMethod::Post {
            "Content-Length: 0\r\n"
        } else {
            ""
        };
        format!(
            "{} {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: elbsim-health-check\r\nAccept: */*\r\n{body_header}Connection: close\r\n\r\n",
            self.spec.http_method, self.spec.url_path
        )
        .into_bytes()
    }

    /// Sends the request and reads the status line.
    async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: &mut S,
        request: &[u8],
        deadline: Instant,
    ) -> Result<u16, Fail> {
        let send = async {
            io.write_all(request).await?;
            io.flush().await
        };
        match super::timer::timeout_at(deadline, send).await {
            Err(_) => return Err(Fail(Reason::SendRequestTimeout, None)),
            Ok(Err(_)) => return Err(Fail(Reason::SendRequestFailed, None)),
            Ok(Ok(())) => {}
        }
        let mut buf = Vec::with_capacity(256);
        let mut chunk = [0u8; 1024];
        loop {
            if let Some(line) = http::parse_status_line(&buf) {
                return match line {
                    StatusLine::Malformed => Err(Fail(Reason::ResponseFormatError, None)),
                    StatusLine::Status(code) if self.spec.expected_codes.matches(code) => Ok(code),
                    StatusLine::Status(code) => Err(Fail(Reason::ResponseMismatch, Some(code))),
                };
            }
            if buf.len() > http::MAX_HEAD_BYTES {
                return Err(Fail(Reason::ResponseFormatError, None));
            }
            match super::timer::timeout_at(deadline, io.read(&mut chunk)).await {
                Err(_) => return Err(Fail(Reason::RecvResponseTimeout, None)),
                Ok(Ok(0)) if buf.is_empty() => return Err(Fail(Reason::RecvResponseFailed, None)),
                Ok(Ok(0)) => return Err(Fail(Reason::ResponseFormatError, None)),
                Ok(Err(_)) => return Err(Fail(Reason::RecvResponseFailed, None)),
                Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    async fn udp(
        &self,
        target: SocketAddr,
        deadline: Instant,
        echo: &EchoStep,
        note: &mut Option<String>,
    ) -> Result<Option<u16>, Fail> {
        match echo {
            EchoStep::Skip => {}
            EchoStep::FaultLayer(faults) => {
                if !faults.host_answers_echo() {
                    super::timer::precise_sleep_until(deadline).await;
                    return Err(Fail(Reason::ConnectTimeout, None));
                }
            }
            EchoStep::Icmp => match super::icmp::echo(target.ip(), deadline).await {
                super::icmp::Echo::Reply(_) => {}
                super::icmp::Echo::NoReply => return Err(Fail(Reason::ConnectTimeout, None)),
                super::icmp::Echo::Unavailable(why) => {
                    *note = Some(format!("echo step skipped: {why}"));
                }
            },
        }
        let local: SocketAddr = match target {
            SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let sock = match UdpSocket::bind(local).await {
            Ok(s) => Arc::new(s),
            Err(_) => return Err(Fail(Reason::ConnectFailed, None)),
        };
        if let Err(e) = sock.connect(target).await {
            return Err(Fail(connect_reason(&e), None));
        }
        let sent = Instant::now();
        if let Err(e) = sock.send(b"elbsim UDP_CONNECT health check\n").await {
            return Err(Fail(connect_reason(&e), None));
        }
        let mut buf = [0u8; 2048];
        loop {
            match super::timer::timeout_at(deadline, sock.recv(&mut buf)).await {
                // Silence until the deadline: healthy.
                Err(_) => return Ok(None),
                Ok(Ok(_)) => {
                    if note.is_none() {
                        *note = Some(format!(
                            "the service answered after {:.3} ms",
                            sent.elapsed().as_secs_f64() * 1e3
                        ));
                    }
                }
                Ok(Err(e)) => return Err(Fail(connect_reason(&e), None)),
            }
        }
    }
}

/// The reason code of a failed connect (or a connected UDP socket's ICMP error).
fn connect_reason(e: &io::Error) -> Reason {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => Reason::ConnectRefused,
        io::ErrorKind::TimedOut => Reason::ConnectTimeout,
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
            Reason::ConnectInterrupt
        }
        _ => Reason::ConnectFailed,
    }
}
