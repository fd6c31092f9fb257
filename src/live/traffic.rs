//! Client traffic in the live world: a TCP front proxy per LB node that routes each new
//! connection where that node's `model::LbNode` says, and real clients that open connections at
//! the scenario's (scaled) rate, make requests through them and close them at the end of their
//! lifetime.
//!
//! Design:
//! - Every client connects from 127.0.0.1, so the client's "address" (what SOURCE_IP
//!   persistence and the ECMP choice of node look at) travels as a 4-byte preamble, the client
//!   id, before any payload. A client always goes to node `client % lb_nodes`. The proxy answers
//!   one byte once the member accepted (a refused connection gets a reset instead), so clients
//!   make requests only on connections that are through, as a real client would.
//! - The proxy does not decide anything: it asks the driver ([`TrafficMsg::Route`]), which calls
//!   `LbNode::route_connection` and `LbNode::open` and answers with the member's address, the
//!   connection's handle and a token the driver cancels when the LB itself closes the
//!   connection (drain deadline, failback reset). The proxy then connects to the member within
//!   the scenario's `connect_timeout`, splices the two sockets (`copy_bidirectional`) and
//!   reports how the connection ended: a backend error (a crashed member's RST, a host that came
//!   back without its state) is `broken`, a client that closed first is `completed`.
//! - Outcomes are counted by the driver into the DES's own `TrafficLog` (the same counters, each
//!   failure charged to a fault by the DES's rule, the same drain records), so the run report's
//!   `traffic` section reads a live run as it reads a simulated one. What only a live run has
//!   (how much was thinned, the request spacing used, every failure with its kind for tests) is
//!   in [`LiveTraffic`].
//! - Load is bounded for a 2-core machine: arrivals above [`MAX_WALL_ARRIVALS_PER_S`] of wall
//!   clock are thinned (each kept with the same probability, reported as `sampled`), requests on
//!   one connection are at least [`MIN_WALL_REQUEST_SPACING`] apart (reported as
//!   `request_spacing_s`), and at most [`MAX_CLIENTS`] clients are open at once (arrivals over it
//!   are counted as `skipped`). Every client and proxy task stops on the run's token.
//! - Requests: against a TCP echo backend a request is a short line that must come back; against
//!   an HTTP backend, `GET url_path` whose status must be below 400. A request fails when the
//!   answer is wrong, the connection breaks, or nothing comes back within `connect_timeout`
//!   (at least [`MIN_WALL_ANSWER_WAIT`] of wall clock); a failure is stamped at the moment the
//!   request (or the connect) was made.
//!
//! UDP pools get flows through a relay instead of connections through a proxy
//! ([`super::udp_flows`]); QUIC flows and TLS clients are not driven live (the run says so).

use super::backend::Service;
use crate::model::connections::ConnId;
use crate::sim::config::{Lifetime, TrafficConfig};
use crate::time::SimTime;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Most new client connections per second of wall clock; more are thinned.
pub const MAX_WALL_ARRIVALS_PER_S: f64 = 100.0;
/// Shortest wall-clock spacing of requests on one connection.
pub const MIN_WALL_REQUEST_SPACING: Duration = Duration::from_millis(100);
/// Shortest wall-clock wait for a member's answer (a connect, a request): a few hundred
/// connections in flight on a loaded machine can delay an answer by tens of milliseconds,
/// which a scaled `connect_timeout` (30 ms at scale 0.01) would count as a failure. A real
/// silence (host_down, hang) still fails, only later; its failure is stamped at the attempt.
pub const MIN_WALL_ANSWER_WAIT: Duration = Duration::from_millis(250);
/// Most clients open at once.
pub const MAX_CLIENTS: usize = 1024;
/// Most failure instants kept for the report.
const MAX_FAILURES_KEPT: usize = 100_000;

/// What failed for a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    Refused,
    TimedOut,
    NoBackend,
    Broken,
    Drained,
    ResetOnFailback,
    Request,
}

/// What only a live run's traffic has; the counts themselves are in the run log's
/// `TrafficLog`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LiveTraffic {
    /// Fraction of the scenario's arrivals that ran (thinning to the wall-clock cap): the
    /// counts compare with the simulator's times this fraction.
    pub sampled: f64,
    /// Arrivals not run because [`MAX_CLIENTS`] were open.
    pub skipped: u64,
    /// Scenario seconds between two requests on one connection, as run.
    pub request_spacing_s: f64,
    /// What the scenario asks: 1 / requests_per_s (0 without requests). Smaller than
    /// `request_spacing_s` when the wall-clock floor widened the spacing.
    pub requested_spacing_s: f64,
    /// Every failure with its scenario instant (the first [`MAX_FAILURES_KEPT`]).
    #[serde(skip)]
    pub failures: Vec<(SimTime, Failure)>,
}

impl LiveTraffic {
    pub(crate) fn fail(&mut self, at: SimTime, f: Failure) {
        if self.failures.len() < MAX_FAILURES_KEPT {
            self.failures.push((at, f));
        }
    }
}

/// A routing decision sent back to a proxy.
#[derive(Debug)]
pub struct RouteReply {
    pub addr: SocketAddr,
    pub id: ConnId,
    /// Cancelled when the LB closes the connection (drain, failback reset).
    pub close: CancellationToken,
}

/// What proxies and clients tell the driver.
#[derive(Debug)]
pub enum TrafficMsg {
    /// A new connection from `client` on `node`: where to?
    Route {
        node: u32,
        client: u32,
        reply: oneshot::Sender<Option<RouteReply>>,
    },
    /// The member did not accept it; the attempt began at `started`.
    ConnectFailed {
        node: u32,
        id: ConnId,
        timed_out: bool,
        started: Instant,
    },
    Established {
        node: u32,
        id: ConnId,
    },
    /// The connection is over; `broken` when the member's side failed.
    Ended {
        node: u32,
        id: ConnId,
        broken: bool,
    },
    /// One request's result on a connection through `node`; it was sent at `sent`.
    Request {
        node: u32,
        ok: bool,
        sent: Instant,
    },
}

/// Scenario time for the clients' rate schedule.
#[derive(Debug, Clone, Copy)]
pub struct TrafficClock {
    pub start: Instant,
    pub scale: f64,
}

impl TrafficClock {
    fn wall(&self, scenario_s: f64) -> Duration {
        Duration::from_secs_f64((scenario_s * self.scale).max(0.0))
    }
}

/// Starts one front proxy per node; returns their addresses.
pub async fn start_fronts(
    nodes: u32,
    tx: mpsc::Sender<TrafficMsg>,
    connect_timeout: Duration,
    cancel: &CancellationToken,
    tracker: &TaskTracker,
) -> std::io::Result<Vec<SocketAddr>> {
    let mut addrs = Vec::new();
    for node in 0..nodes {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        addrs.push(listener.local_addr()?);
        tracker.spawn(front(
            node,
            listener,
            tx.clone(),
            connect_timeout,
            cancel.clone(),
            tracker.clone(),
        ));
    }
    Ok(addrs)
}

async fn front(
    node: u32,
    listener: TcpListener,
    tx: mpsc::Sender<TrafficMsg>,
    connect_timeout: Duration,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let (tx, cancel) = (tx.clone(), cancel.clone());
                tracker.spawn(async move {
                    tokio::select! {
                        _ = cancel.cancelled() => {}
                        _ = proxy(node, stream, tx, connect_timeout) => {}
                    }
                });
            }
        }
    }
}

/// Closes with RST: what a client of a refused or reset connection sees.
fn reset(s: TcpStream) {
    let _ = s.set_zero_linger();
}

async fn proxy(
    node: u32,
    mut client: TcpStream,
    tx: mpsc::Sender<TrafficMsg>,
    connect_timeout: Duration,
) {
    let mut id = [0u8; 4];
    let read = tokio::time::timeout(Duration::from_secs(1), client.read_exact(&mut id)).await;
    if !matches!(read, Ok(Ok(_))) {
        return;
    }
    let (reply_tx, reply_rx) = oneshot::channel();
    let route = TrafficMsg::Route {
        node,
        client: u32::from_be_bytes(id),
        reply: reply_tx,
    };
    if tx.send(route).await.is_err() {
        return;
    }
    let Ok(Some(route)) = reply_rx.await else {
        // No member to send to (or the run is over): the client is turned away.
        return reset(client);
    };
    let started = Instant::now();
    let backend = match tokio::time::timeout(connect_timeout, TcpStream::connect(route.addr)).await
    {
        Ok(Ok(b)) => b,
        failed => {
            let timed_out = failed.is_err();
            let _ = tx
                .send(TrafficMsg::ConnectFailed {
                    node,
                    id: route.id,
                    timed_out,
                    started,
                })
                .await;
            return reset(client);
        }
    };
    let _ = tx
        .send(TrafficMsg::Established { node, id: route.id })
        .await;
    // Tell the client it is through, so that a refused or timed-out connection is never mistaken
    // by the client for an established one whose first request then fails.
    if client.write_all(&[1]).await.is_err() {
        return reset(backend);
    }
    let mut backend = backend;
    let broken = tokio::select! {
        _ = route.close.cancelled() => {
            // The LB closed it: the driver has counted it already.
            reset(backend);
            return reset(client);
        }
        r = tokio::io::copy_bidirectional(&mut client, &mut backend) => r.is_err(),
    };
    if broken {
        reset(client);
    }
    let _ = tx
        .send(TrafficMsg::Ended {
            node,
            id: route.id,
            broken,
        })
        .await;
}

/// What the clients send.
#[derive(Debug, Clone)]
pub enum RequestKind {
    /// A line the echo backend returns.
    Echo,
    /// `GET path` with this Host; a status below 400 is a success.
    Http { path: String, host: String },
    /// A datagram the UDP echo backend returns, in a flow through the node's relay
    /// ([`super::udp_flows`]).
    Datagram,
}

impl RequestKind {
    /// The requests the backend of `service` answers; `None` for services clients cannot use.
    pub fn for_service(service: &Service) -> Option<RequestKind> {
        match service {
            Service::TcpEcho => Some(RequestKind::Echo),
            Service::Http(site) => Some(RequestKind::Http {
                path: site.url_path.clone(),
                host: site.host.clone().unwrap_or_else(|| "127.0.0.1".into()),
            }),
            Service::UdpEcho => Some(RequestKind::Datagram),
            Service::Https(_) => None,
        }
    }
}

/// How the clients behave, in wall-clock terms where it matters.
#[derive(Debug, Clone)]
pub struct ClientPlan {
    pub traffic: TrafficConfig,
    pub fronts: Vec<SocketAddr>,
    pub request: RequestKind,
    pub clock: TrafficClock,
    pub end: SimTime,
    pub seed: u64,
    /// The trial whose arrival stream the clients draw from (as the DES's trial `i`).
    pub trial: u64,
}

impl ClientPlan {
    /// Requests' wall-clock spacing on one connection, if the scenario makes any.
    pub fn request_spacing(&self) -> Option<Duration> {
        let r = self.traffic.requests_per_s;
        (r > 0.0 && r.is_finite()).then(|| self.clock.wall(1.0 / r).max(MIN_WALL_REQUEST_SPACING))
    }

    /// How long a client waits for a request's answer, and the proxy for a member's accept:
    /// the scenario's `connect_timeout`, at least [`MIN_WALL_ANSWER_WAIT`].
    pub fn answer_wait(&self) -> Duration {
        self.clock
            .wall(self.traffic.connect_timeout.as_secs_f64())
            .max(MIN_WALL_ANSWER_WAIT)
    }

    /// Fraction of arrivals kept at `rate` (per scenario second).
    pub fn keep_fraction(&self, rate: f64) -> f64 {
        let wall_rate = rate / self.clock.scale;
        if wall_rate <= MAX_WALL_ARRIVALS_PER_S {
            1.0
        } else {
            MAX_WALL_ARRIVALS_PER_S / wall_rate
        }
    }
}

/// The arrival rate at `t`: the last step at or before it.
fn rate_at(steps: &[(SimTime, f64)], t: SimTime) -> f64 {
    steps
        .iter()
        .take_while(|(at, _)| *at <= t)
        .last()
        .map_or(0.0, |&(_, r)| r)
}

/// Runs the clients until the end of the run or the token; returns (sampled fraction as the
/// mean keep probability over arrivals, arrivals skipped at the client cap).
pub async fn run_clients(
    plan: ClientPlan,
    tx: mpsc::Sender<TrafficMsg>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) -> (f64, u64) {
    let mut rng: ChaCha8Rng =
        crate::sim::rng::stream(plan.seed, plan.trial, crate::sim::rng::Purpose::Arrivals);
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    let (mut arrivals, mut kept_weight, mut skipped) = (0u64, 0.0f64, 0u64);
    let steps = plan.traffic.rate_steps.clone();
    let spacing = plan.request_spacing();
    let nodes = plan.fronts.len().max(1) as u32;
    let clients = plan.traffic.clients.max(1);
    // Arrivals on an absolute schedule (scenario seconds), so the timer wheel's millisecond
    // rounding delays single arrivals but never lowers the rate. Thinning is applied to the
    // rate itself (a Poisson process thinned by p is one of rate p x rate), and a draw that
    // crosses a rate step restarts at the step (memorylessness makes that exact).
    let mut t = 0.0f64;
    let end_s = plan.end.as_secs_f64();
    loop {
        if t >= end_s || cancel.is_cancelled() {
            break;
        }
        let now = SimTime::ZERO + crate::time::SimDuration::from_secs_f64(t);
        let rate = rate_at(&steps, now);
        let keep = plan.keep_fraction(rate);
        let next_step = steps
            .iter()
            .map(|(at, _)| at.as_secs_f64())
            .find(|&at| at > t);
        let draw = if rate > 0.0 {
            t + -(1.0 - rng.gen::<f64>()).ln() / (rate * keep)
        } else {
            f64::INFINITY
        };
        match next_step {
            Some(step) if step <= draw => {
                t = step;
                continue;
            }
            _ if !draw.is_finite() => break,
            _ => t = draw,
        }
        if t >= end_s {
            break;
        }
        let at = plan.clock.start + plan.clock.wall(t);
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep_until(at) => {}
        }
        arrivals += 1;
        kept_weight += keep;
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            skipped += 1;
            continue;
        };
        let client = rng.gen_range(0..clients);
        let node = client % nodes;
        let front = plan.fronts[node as usize];
        let lifetime_s = match plan.traffic.lifetime {
            Lifetime::Fixed(d) => d.as_secs_f64(),
            Lifetime::Exponential(mean) => -(1.0 - rng.gen::<f64>()).ln() * mean.as_secs_f64(),
        };
        let (tx, cancel, request) = (tx.clone(), cancel.clone(), plan.request.clone());
        let answer_within = plan.answer_wait();
        let lifetime = plan.clock.wall(lifetime_s);
        tracker.spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = async {
                    let udp = matches!(request, RequestKind::Datagram);
                    let c = OneClient { front, node, client, lifetime, spacing, answer_within, request };
                    if udp {
                        super::udp_flows::client_flow(c, tx).await;
                    } else {
                        client_conn(c, tx).await;
                    }
                } => {}
            }
            drop(permit);
        });
    }
    let sampled = if arrivals == 0 {
        1.0
    } else {
        kept_weight / arrivals as f64
    };
    (sampled, skipped)
}

/// One client connection: preamble, requests until the lifetime is over, then an orderly close.
/// One client connection's (or UDP flow's) plan, in wall-clock durations.
pub(crate) struct OneClient {
    pub front: SocketAddr,
    pub node: u32,
    pub client: u32,
    pub lifetime: Duration,
    pub spacing: Option<Duration>,
    pub answer_within: Duration,
    pub request: RequestKind,
}

async fn client_conn(c: OneClient, tx: mpsc::Sender<TrafficMsg>) {
    let OneClient {
        front,
        node,
        client,
        lifetime,
        spacing,
        answer_within,
        request,
    } = c;
    let Ok(Ok(mut s)) =
        tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(front)).await
    else {
        return;
    };
    if s.write_all(&client.to_be_bytes()).await.is_err() {
        return;
    }
    // The proxy's one-byte "through"; a refused, timed-out or unroutable connection gets a reset
    // instead (counted by the driver), and this client makes no request on it.
    let mut through = [0u8; 1];
    let wait = answer_within * 2 + Duration::from_secs(1);
    if !matches!(
        tokio::time::timeout(wait, s.read_exact(&mut through)).await,
        Ok(Ok(_))
    ) || through[0] != 1
    {
        return;
    }
    let until = Instant::now() + lifetime;
    let mut buf = Vec::with_capacity(512);
    if let Some(spacing) = spacing {
        let mut next = Instant::now() + spacing;
        while next < until {
            tokio::time::sleep_until(next).await;
            next += spacing;
            let sent = Instant::now();
            let ok = tokio::time::timeout(answer_within, one_request(&mut s, &request, &mut buf))
                .await
                .unwrap_or(Err(()));
            let msg = TrafficMsg::Request {
                node,
                ok: ok.is_ok(),
                sent,
            };
            if tx.send(msg).await.is_err() || ok.is_err() {
                // A failed exchange leaves the stream in an unknown state: this client stops
                // its requests (the proxy reports how the connection itself ended).
                break;
            }
        }
    }
    tokio::time::sleep_until(until).await;
    let _ = s.shutdown().await;
    // Read to the end so the close is orderly; bounded.
    let mut sink = [0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Ok(n) = s.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

async fn one_request(s: &mut TcpStream, kind: &RequestKind, buf: &mut Vec<u8>) -> Result<(), ()> {
    match kind {
        // A datagram plan never reaches a TCP connection; were it to, an echoed line is what it
        // asks.
        RequestKind::Echo | RequestKind::Datagram => {
            const LINE: &[u8] = b"elbsim client\n";
            s.write_all(LINE).await.map_err(|_| ())?;
            let mut back = [0u8; LINE.len()];
            s.read_exact(&mut back).await.map_err(|_| ())?;
            (back == *LINE).then_some(()).ok_or(())
        }
        RequestKind::Http { path, host } => {
            let req =
                format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: elbsim-client\r\n\r\n");
            s.write_all(req.as_bytes()).await.map_err(|_| ())?;
            buf.clear();
            let head = super::http::read_head(s, buf).await.map_err(|_| ())?;
            let status = match super::http::parse_status_line(&buf[..head]) {
                Some(super::http::StatusLine::Status(c)) => c,
                _ => return Err(()),
            };
            let len = std::str::from_utf8(&buf[..head])
                .ok()
                .and_then(|h| {
                    h.lines().find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.trim()
                            .eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                })
                .unwrap_or(0);
            let have = buf.len() - head;
            if len > have {
                let mut rest = vec![0u8; (len - have).min(1 << 20)];
                s.read_exact(&mut rest).await.map_err(|_| ())?;
            }
            (!crate::sim::engine::status_fails_requests(status))
                .then_some(())
                .ok_or(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::SimDuration;

    #[test]
    fn rate_steps_and_thinning() {
        let steps = [
            (SimTime::ZERO, 5.0),
            (SimTime::ZERO + SimDuration::from_secs(10), 0.0),
        ];
        assert_eq!(rate_at(&steps, SimTime::ZERO), 5.0);
        assert_eq!(
            rate_at(&steps, SimTime::ZERO + SimDuration::from_secs(11)),
            0.0
        );
        let plan = ClientPlan {
            traffic: TrafficConfig {
                rate_steps: steps.to_vec(),
                lifetime: Lifetime::Fixed(SimDuration::from_secs(1)),
                clients: 10,
                connect_timeout: SimDuration::from_secs(3),
                requests_per_s: 1000.0,
                udp_idle_timeout: None,
                persistence: None,
                drain: None,
                tls: false,
                any_port: false,
                quic: None,
            },
            fronts: vec![],
            request: RequestKind::Echo,
            clock: TrafficClock {
                start: Instant::now(),
                scale: 0.01,
            },
            end: SimTime::ZERO,
            seed: 0,
            trial: 0,
        };
        // 5/s at scale 0.01 is 500/s of wall clock: thinned to 100/s.
        assert!((plan.keep_fraction(5.0) - 0.2).abs() < 1e-12);
        assert_eq!(plan.keep_fraction(0.5), 1.0);
        // 1000 requests per scenario second would be 100 us apart on the wall clock.
        assert_eq!(plan.request_spacing(), Some(MIN_WALL_REQUEST_SPACING));
    }
}
