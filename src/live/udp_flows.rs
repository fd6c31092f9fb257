//! UDP client flows in the live world: a relay per LB node keyed by flow, and clients that send
//! datagrams through it for their lifetime.
//!
//! Design (the UDP counterpart of the TCP proxy in [`super::traffic`]):
//! - A flow is one client socket: the relay keys its table by the client's source address.
//!   Every datagram a client sends starts with its 4-byte client id (all clients share
//!   127.0.0.1, and SOURCE_IP persistence and the choice of node look at the client's
//!   "address"); the relay strips it before forwarding.
//! - A new flow asks the driver where to go ([`TrafficMsg::Route`], the node's `LbNode`), then
//!   gets an upstream socket of its own *connected* to that member, so that the kernel reports
//!   the member's ICMP port unreachable (a crashed member) as `ECONNREFUSED` on it. The first
//!   datagram decides the flow's fate, as the DES decides it at arrival: an answer is
//!   `established`, a port unreachable is `refused`, silence until the connect timeout is
//!   `timed_out`.
//! - An established flow whose member then refuses a datagram is `broken`. A flow the client has
//!   finished stays in the relay's table (and the node's) for the scaled `udp_idle_timeout`
//!   after its last datagram, as the LB keeps it, then ends `completed`; a crash during that
//!   linger breaks nothing, as in the DES (no datagram meets it).
//! - A crash is only seen when a datagram meets it, so an active client sends a datagram every
//!   [`KEEPALIVE`] of wall clock besides its requests (keepalives are not counted as requests):
//!   a flow active at a crash is found broken within that.
//! - Bounded: at most [`MAX_FLOWS`] flows in a relay's table (datagrams of further new flows are
//!   dropped), a bounded queue per flow, every wait with a deadline, every task on the run's
//!   token.

use super::traffic::{OneClient, RouteReply, TrafficMsg};
use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Most flows in one relay's table.
pub const MAX_FLOWS: usize = 4096;
/// Wall-clock spacing of an active client's keepalive datagrams.
pub const KEEPALIVE: Duration = Duration::from_millis(20);
/// Datagrams queued for one flow while it is routed or sending; more are dropped.
const FLOW_QUEUE: usize = 64;
/// Largest datagram handled.
const MAX_DATAGRAM: usize = 2048;
/// What a client sends after its id.
const PAYLOAD: &[u8] = b"elbsim flow\n";

type Table = Arc<Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>>;

/// How a relay treats its flows (wall clock).
#[derive(Debug, Clone, Copy)]
pub struct RelayTimes {
    /// How long a new flow waits for the member's first answer.
    pub connect_timeout: Duration,
    /// How long a flow stays after its last datagram.
    pub idle: Duration,
}

/// Starts one relay per node; returns their addresses.
pub async fn start_relays(
    nodes: u32,
    tx: mpsc::Sender<TrafficMsg>,
    times: RelayTimes,
    cancel: &CancellationToken,
    tracker: &TaskTracker,
) -> std::io::Result<Vec<SocketAddr>> {
    let mut addrs = Vec::new();
    for node in 0..nodes {
        let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        addrs.push(sock.local_addr()?);
        tracker.spawn(relay(
            node,
            sock,
            tx.clone(),
            times,
            cancel.clone(),
            tracker.clone(),
        ));
    }
    Ok(addrs)
}

async fn relay(
    node: u32,
    front: Arc<UdpSocket>,
    tx: mpsc::Sender<TrafficMsg>,
    times: RelayTimes,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let table: Table = Arc::default();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let received = tokio::select! {
            _ = cancel.cancelled() => return,
            r = front.recv_from(&mut buf) => r,
        };
        let Ok((n, src)) = received else {
            // An ICMP error for an earlier answer to a client that went away: not a flow's
            // business. A pause, so that a socket in a lasting error state cannot spin.
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        };
        if n < 4 {
            continue;
        }
        let client = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let payload = buf[4..n].to_vec();
        let Ok(mut flows) = table.lock() else {
            return;
        };
        if let Some(q) = flows.get(&src) {
            // Full queue or a flow on its way out: the datagram is lost, as UDP allows.
            let _ = q.try_send(payload);
            continue;
        }
        if flows.len() >= MAX_FLOWS {
            continue;
        }
        let (q, rx) = mpsc::channel(FLOW_QUEUE);
        let _ = q.try_send(payload);
        flows.insert(src, q);
        drop(flows);
        let flow = Flow {
            node,
            client,
            src,
            front: front.clone(),
            tx: tx.clone(),
            times,
        };
        let (table, cancel) = (table.clone(), cancel.clone());
        tracker.spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = flow.run(rx) => {}
            }
            if let Ok(mut t) = table.lock() {
                t.remove(&src);
            }
        });
    }
}

/// One flow in a relay.
struct Flow {
    node: u32,
    client: u32,
    src: SocketAddr,
    front: Arc<UdpSocket>,
    tx: mpsc::Sender<TrafficMsg>,
    times: RelayTimes,
}

impl Flow {
    async fn run(self, mut rx: mpsc::Receiver<Vec<u8>>) {
        let (reply_tx, reply_rx) = oneshot::channel();
        let route = TrafficMsg::Route {
            node: self.node,
            client: self.client,
            reply: reply_tx,
        };
        if self.tx.send(route).await.is_err() {
            return;
        }
        let Ok(Some(route)) = reply_rx.await else {
            // No member (counted by the driver): the client hears nothing.
            return;
        };
        let started = Instant::now();
        let Some(up) = self.open(&route, &mut rx).await else {
            return;
        };
        let msg = |broken| TrafficMsg::Ended {
            node: self.node,
            id: route.id,
            broken,
        };
        let mut buf = vec![0u8; MAX_DATAGRAM];
        // The first answer, within the connect timeout.
        let first = tokio::select! {
            _ = route.close.cancelled() => return,
            r = tokio::time::timeout(self.times.connect_timeout, up.recv(&mut buf)) => r,
        };
        match first {
            Ok(Ok(n)) => {
                let _ = self.front.send_to(&buf[..n], self.src).await;
                let _ = self
                    .tx
                    .send(TrafficMsg::Established {
                        node: self.node,
                        id: route.id,
                    })
                    .await;
            }
            failed => {
                let timed_out =
                    !matches!(&failed, Ok(Err(e)) if e.kind() == ErrorKind::ConnectionRefused);
                let _ = self
                    .tx
                    .send(TrafficMsg::ConnectFailed {
                        node: self.node,
                        id: route.id,
                        timed_out,
                        started,
                    })
                    .await;
                return;
            }
        }
        let mut last = Instant::now();
        loop {
            tokio::select! {
                // The LB closed it (drain, failback reset): counted by the driver.
                _ = route.close.cancelled() => return,
                _ = tokio::time::sleep_until(last + self.times.idle) => {
                    let _ = self.tx.send(msg(false)).await;
                    return;
                }
                d = rx.recv() => {
                    let Some(d) = d else { return };
                    last = Instant::now();
                    if let Err(e) = up.send(&d).await {
                        if e.kind() == ErrorKind::ConnectionRefused {
                            let _ = self.tx.send(msg(true)).await;
                            return;
                        }
                    }
                }
                r = up.recv(&mut buf) => match r {
                    Ok(n) => {
                        let _ = self.front.send_to(&buf[..n], self.src).await;
                    }
                    // Port unreachable (the member crashed), or any other error of the member's
                    // side: the flow is broken.
                    Err(_) => {
                        let _ = self.tx.send(msg(true)).await;
                        return;
                    }
                },
            }
        }
    }

    /// The upstream socket, connected to the member, with the first datagram sent; `None` (and
    /// the attempt reported as refused) when it cannot even be sent.
    async fn open(
        &self,
        route: &RouteReply,
        rx: &mut mpsc::Receiver<Vec<u8>>,
    ) -> Option<UdpSocket> {
        let started = Instant::now();
        let failed = |timed_out| TrafficMsg::ConnectFailed {
            node: self.node,
            id: route.id,
            timed_out,
            started,
        };
        let up = match UdpSocket::bind("127.0.0.1:0").await {
            Ok(s) => s,
            Err(_) => {
                let _ = self.tx.send(failed(true)).await;
                return None;
            }
        };
        let first = rx.recv().await.unwrap_or_default();
        if up.connect(route.addr).await.is_err() || up.send(&first).await.is_err() {
            let _ = self.tx.send(failed(false)).await;
            return None;
        }
        Some(up)
    }
}

/// One client flow: datagrams to its node's relay until its lifetime is over, a request every
/// `spacing` (counted: it must be answered within `answer_within`) and a keepalive every
/// [`KEEPALIVE`] (not counted). Answers are read as they come, so none waits in the socket to
/// be mistaken for a later request's; an answer to a keepalive sent just before a request can
/// still pass for the request's, which only an echo that was already on its way can do.
pub(crate) async fn client_flow(c: OneClient, tx: mpsc::Sender<TrafficMsg>) {
    let Ok(sock) = UdpSocket::bind("127.0.0.1:0").await else {
        return;
    };
    if sock.connect(c.front).await.is_err() {
        return;
    }
    let mut datagram = c.client.to_be_bytes().to_vec();
    datagram.extend_from_slice(PAYLOAD);
    let mut buf = [0u8; MAX_DATAGRAM];
    // The first datagram; no answer means the flow failed (counted by the driver) and the
    // client gives up, as after a refused TCP connect.
    let wait = c.answer_within * 2 + Duration::from_secs(1);
    if sock.send(&datagram).await.is_err()
        || !matches!(
            tokio::time::timeout(wait, sock.recv(&mut buf)).await,
            Ok(Ok(_))
        )
    {
        return;
    }
    let start = Instant::now();
    let until = start + c.lifetime;
    let mut next_request = c.spacing.map(|s| start + s);
    let mut next_keepalive = start + KEEPALIVE;
    // The request waiting for its answer: when it was sent.
    let mut pending: Option<Instant> = None;
    loop {
        let deadline = pending.map(|sent| sent + c.answer_within);
        let wake = [Some(until), next_request, Some(next_keepalive), deadline]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(until);
        tokio::select! {
            r = sock.recv(&mut buf) => {
                // The relay is gone (the run is ending): nothing more to say.
                if r.is_err() {
                    return;
                }
                if let Some(sent) = pending.take() {
                    let msg = TrafficMsg::Request { node: c.node, ok: true, sent };
                    if tx.send(msg).await.is_err() {
                        return;
                    }
                }
            }
            _ = tokio::time::sleep_until(wake) => {
                let now = Instant::now();
                if let Some(sent) = pending.filter(|s| now >= *s + c.answer_within) {
                    // Unanswered: the flow is broken or silent; the client stops.
                    let _ = tx.send(TrafficMsg::Request { node: c.node, ok: false, sent }).await;
                    return;
                }
                if now >= until {
                    if pending.is_none() {
                        return;
                    }
                    continue;
                }
                if pending.is_none() && next_request.is_some_and(|t| now >= t) {
                    if let (Some(t), Some(s)) = (next_request.as_mut(), c.spacing) {
                        *t += s;
                    }
                    pending = Some(now);
                    if sock.send(&datagram).await.is_err() {
                        return;
                    }
                } else if now >= next_keepalive {
                    next_keepalive = now + KEEPALIVE;
                    // Its answer is not waited for: a refusal shows in the relay.
                    if sock.send(&datagram).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}
