//! Real backends for the live world: one server per member on a loopback address, speaking the
//! pool's protocol, with the member's fault layer ([`super::fault`]) consulted on every
//! connection, request and datagram.
//!
//! What each service does:
//! - `TcpEcho`: echoes what it reads.
//! - `Http`: answers a request for `url_path` (the whole request target) with 200 and anything
//!   else with 404; when a Host is configured (the pool's `domain_name`), a request with another
//!   Host gets 404 too. Keep-alive is honoured, `Connection: close` and HTTP/1.0 close.
//! - `Https`: the same behind TLS with a self-signed certificate made at start.
//! - `UdpEcho`: echoes each datagram.
//!
//! Each member has a listener task for its service port and, when the pool sets `monitor_port`,
//! one for a separate check port (an ephemeral port too: both members share 127.0.0.1, so they
//! cannot share one fixed port number; the prober is told the address to probe).
//!
//! How the faults are made real, and why:
//! - `crash`: the listening socket is really closed, so the kernel refuses connects (RST) and
//!   answers datagrams with ICMP port unreachable; open connections are reset (SO_LINGER 0,
//!   then close). On recovery the same port is bound again with SO_REUSEADDR (server-side
//!   TIME_WAIT would otherwise block the bind).
//! - `host_down`: a TCP connect must *time out*, not be refused, and on loopback the kernel
//!   completes handshakes for any listening socket. So the listener is replaced by a black
//!   hole: a socket on the same port with backlog 0 whose accept queue the backend fills with one
//!   connection of its own and never accepts; Linux then drops every further SYN
//!   (`sk_acceptq_is_full` in `tcp_conn_request`), and the client's connect times out.
//!   Accepting and dropping connections would not do: the handshake would already have
//!   succeeded and a TCP check would pass. A UDP socket stays bound (no ICMP error) and drops
//!   everything. Open connections stall (they are no longer served) and are reset when the host
//!   comes back, as a host that went away has lost their state.
//! - `hang`: connections are accepted (by the kernel) and read, never answered; datagrams are
//!   read and never echoed; TLS connections get no ServerHello.
//! - `http_status`: every HTTP answer carries that status.
//! - `slow`: every answer (echo, HTTP response, datagram) waits that long first. A TCP-connect
//!   check does not see it: the kernel completes the handshake, not the application.
//! - `loss`: each new connection is, with the probability, left unanswered (as if its request
//!   were lost); each datagram is dropped.
//! - `monitor_port_down`: only the check port is closed, as for a crash.
//! - `tls_error`: the HTTPS server answers the ClientHello with bytes that are no ServerHello.
//! - `flap`: the fault layer toggles a crash on the period.
//!
//! Everything stops through one [`CancellationToken`]: the backend's tasks (listeners,
//! connection handlers, delayed answers, flap toggles) all watch a child of the token passed to
//! [`Backend::start`], and [`Backend::shutdown`] waits for them, bounded in time. Concurrent
//! connections and pending delayed datagrams are capped so a flood cannot grow memory.

use super::fault::{FaultHandle, ListenerMode, Port};
use super::http;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Most connections one backend serves at once; more are closed at once.
const MAX_CONNECTIONS: usize = 4096;
/// Most delayed (`slow`) datagram answers pending at once; more are dropped.
const MAX_PENDING_DATAGRAMS: usize = 4096;
/// How long a rebind of a freed port is retried (another socket may briefly hold it).
const REBIND_TRIES: u32 = 40;
const REBIND_PAUSE: Duration = Duration::from_millis(25);
/// Longest wait for the backend's tasks after cancellation.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(2);

/// An HTTP site: the path that answers 200 and, if set, the only Host accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSite {
    /// The request target that answers 200 (the pool's `url_path`).
    pub url_path: String,
    /// The Host the site answers to (the pool's `domain_name`); `None` accepts any Host.
    pub host: Option<String>,
}

impl Default for HttpSite {
    fn default() -> Self {
        HttpSite {
            url_path: "/".into(),
            host: None,
        }
    }
}

/// What a backend speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Service {
    TcpEcho,
    Http(HttpSite),
    Https(HttpSite),
    UdpEcho,
}

impl Service {
    fn is_udp(&self) -> bool {
        matches!(self, Service::UdpEcho)
    }
}

/// How to start one backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSpec {
    pub service: Service,
    /// Also listen on a separate check port (the pool sets `monitor_port`).
    pub monitor_port: bool,
    /// A loopback address to bind (127.0.0.1 unless told otherwise).
    pub ip: IpAddr,
    /// Seed of the `loss` draws.
    pub seed: u64,
}

impl BackendSpec {
    /// A backend on 127.0.0.1 with no check port.
    pub fn new(service: Service) -> Self {
        BackendSpec {
            service,
            monitor_port: false,
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            seed: 0,
        }
    }

    pub fn with_monitor_port(mut self) -> Self {
        self.monitor_port = true;
        self
    }

    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// What every task of one backend shares.
struct Ctx {
    service: Service,
    faults: FaultHandle,
    cancel: CancellationToken,
    tls: Option<tokio_rustls::TlsAcceptor>,
    connections: Arc<Semaphore>,
    datagrams: Arc<Semaphore>,
    tracker: TaskTracker,
}

/// A running backend. Dropping it does not stop it: call [`Backend::shutdown`] or cancel the
/// token it was started with.
pub struct Backend {
    addr: SocketAddr,
    monitor_addr: Option<SocketAddr>,
    ctx: Arc<Ctx>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("addr", &self.addr)
            .field("monitor_addr", &self.monitor_addr)
            .field("service", &self.ctx.service)
            .finish()
    }
}

impl Backend {
    /// Binds the member's port (and check port) on an ephemeral port and starts serving.
    /// Fails for a non-loopback address: the live world stays on this machine.
    pub async fn start(spec: BackendSpec, cancel: CancellationToken) -> io::Result<Backend> {
        if !spec.ip.is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a loopback address", spec.ip),
            ));
        }
        let cancel = cancel.child_token();
        let tls = match &spec.service {
            Service::Https(site) => {
                let names: Vec<String> = site.host.iter().cloned().collect();
                let config = super::tls::server_config(&names).map_err(io::Error::other)?;
                Some(tokio_rustls::TlsAcceptor::from(config))
            }
            _ => None,
        };
        let ctx = Arc::new(Ctx {
            service: spec.service.clone(),
            faults: FaultHandle::new(spec.seed, cancel.clone()),
            cancel,
            tls,
            connections: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            datagrams: Arc::new(Semaphore::new(MAX_PENDING_DATAGRAMS)),
            tracker: TaskTracker::new(),
        });
        let any = SocketAddr::new(spec.ip, 0);
        let mut ports = vec![Port::Member];
        if spec.monitor_port {
            ports.push(Port::Monitor);
        }
        let mut addrs = Vec::new();
        for port in ports {
            let ack = ctx.faults.register_listener();
            let addr = if ctx.service.is_udp() {
                let sock = UdpSocket::bind(any).await?;
                let addr = sock.local_addr()?;
                ctx.tracker
                    .spawn(udp_listener(port, addr, sock, ctx.clone(), ack));
                addr
            } else {
                let listener = bind_tcp(any, 1024)?;
                let addr = listener.local_addr()?;
                ctx.tracker
                    .spawn(tcp_listener(port, addr, listener, ctx.clone(), ack));
                addr
            };
            addrs.push(addr);
        }
        Ok(Backend {
            addr: addrs[0],
            monitor_addr: addrs.get(1).copied(),
            ctx,
        })
    }

    /// The member's service address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The separate check port's address, when started with one.
    pub fn monitor_addr(&self) -> Option<SocketAddr> {
        self.monitor_addr
    }

    /// Where a health check goes: the check port if there is one, else the member's port.
    pub fn check_addr(&self) -> SocketAddr {
        self.monitor_addr.unwrap_or(self.addr)
    }

    /// The member's fault layer.
    pub fn faults(&self) -> &FaultHandle {
        &self.ctx.faults
    }

    /// Waits (at most one second) until the listeners have acted on the latest fault change.
    pub async fn settled(&self) -> bool {
        self.ctx.faults.settled(Duration::from_secs(1)).await
    }

    /// Stops every task of this backend and waits for them (bounded); returns false if some
    /// were still running at the limit.
    pub async fn shutdown(self) -> bool {
        self.ctx.cancel.cancel();
        self.ctx.tracker.close();
        tokio::time::timeout(SHUTDOWN_LIMIT, self.ctx.tracker.wait())
            .await
            .is_ok()
    }
}

/// A listening TCP socket with SO_REUSEADDR, so a crashed member can take its port back.
fn bind_tcp(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(backlog)
}

/// Binds `addr` again, retrying briefly: a client socket of this machine may hold the freed
/// ephemeral port for a moment.
async fn rebind<T>(addr: SocketAddr, mut bind: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut last = None;
    for _ in 0..REBIND_TRIES {
        match bind() {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(REBIND_PAUSE).await;
    }
    Err(last.unwrap_or_else(|| io::Error::other(format!("cannot bind {addr}"))))
}

/// host_down for TCP: a listener on the same port whose accept queue is full, so the kernel
/// drops SYNs and connects time out. The filler connection is kept until the host comes back.
/// If a client's SYN wins the race for the one queue slot, that client fills it instead and the
/// filler is not needed (its connect then times out quickly and is dropped).
async fn black_hole(addr: SocketAddr) -> io::Result<(TcpListener, Option<TcpStream>)> {
    let listener = rebind(addr, || bind_tcp(addr, 0)).await?;
    // With backlog 0 Linux queues one connection; ours takes that place.
    let filler = tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr))
        .await
        .ok()
        .and_then(Result::ok);
    Ok((listener, filler))
}

/// Accepts on `l`, or never when there is no listener.
async fn accept(l: Option<&TcpListener>) -> io::Result<TcpStream> {
    match l {
        Some(l) => l.accept().await.map(|(s, _)| s),
        None => std::future::pending().await,
    }
}

/// One TCP listening port of a member: rebuilt whenever the faults change its mode.
async fn tcp_listener(
    port: Port,
    addr: SocketAddr,
    first: TcpListener,
    ctx: Arc<Ctx>,
    ack: watch::Sender<u64>,
) {
    let mut rx = ctx.faults.subscribe();
    let mut mode = ListenerMode::Open;
    let mut listener = Some(first);
    // Held, never read: the black hole lasts as long as this value.
    let mut _hole: Option<(TcpListener, Option<TcpStream>)> = None;
    loop {
        let (generation, want) = {
            let s = rx.borrow_and_update();
            (s.generation(), s.view().mode(port))
        };
        if want != mode {
            // Close first: the same port cannot be bound twice.
            listener = None;
            _hole = None;
            match want {
                ListenerMode::Open => match rebind(addr, || bind_tcp(addr, 1024)).await {
                    Ok(l) => listener = Some(l),
                    Err(e) => tracing::warn!(%addr, "live backend cannot listen again: {e}"),
                },
                ListenerMode::Silent => match black_hole(addr).await {
                    Ok(h) => _hole = Some(h),
                    Err(e) => tracing::warn!(%addr, "live backend cannot go silent: {e}"),
                },
                ListenerMode::Closed => {}
            }
            mode = want;
        }
        ack.send_replace(generation);
        tokio::select! {
            _ = ctx.cancel.cancelled() => return,
            changed = rx.changed() => if changed.is_err() { return },
            accepted = accept(listener.as_ref()) => {
                let Ok(stream) = accepted else {
                    // EMFILE and the like: pause instead of spinning on the error.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                match ctx.connections.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let c = ctx.clone();
                        ctx.tracker.spawn(async move {
                            serve_connection(stream, port, c).await;
                            drop(permit);
                        });
                    }
                    // Over the cap: close at once rather than queue without bound.
                    Err(_) => drop(stream),
                }
            }
        }
    }
}

/// Resolves when an open connection must end: its port closed (crash, monitor_port_down) or
/// its host came back after being down. While the host is down, reports `true` in `silent` so
/// the caller stops serving.
async fn must_end(
    rx: &mut watch::Receiver<super::fault::FaultState>,
    port: Port,
    silent: &watch::Sender<bool>,
) {
    let mut was_silent = false;
    loop {
        let mode = rx.borrow_and_update().view().mode(port);
        match mode {
            ListenerMode::Closed => return,
            ListenerMode::Silent => was_silent = true,
            ListenerMode::Open if was_silent => return,
            ListenerMode::Open => {}
        }
        silent.send_replace(was_silent);
        if rx.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// Serves one accepted connection until it ends, the backend stops, or a fault ends it with a
/// reset.
async fn serve_connection(mut stream: TcpStream, port: Port, ctx: Arc<Ctx>) {
    let mut rx = ctx.faults.subscribe();
    let (silent_tx, mut silent_rx) = watch::channel(false);
    // `loss`: this connection's request is lost; it is read and never answered.
    let lost = ctx.faults.lose();
    let reset = {
        let work = serve(&mut stream, &ctx, lost);
        tokio::pin!(work);
        let end = must_end(&mut rx, port, &silent_tx);
        tokio::pin!(end);
        loop {
            let silent = *silent_rx.borrow_and_update();
            tokio::select! {
                _ = ctx.cancel.cancelled() => break false,
                _ = &mut end => break true,
                _ = silent_rx.changed() => {}
                // A down host serves nothing: the work is simply not polled meanwhile.
                _ = &mut work, if !silent => break false,
            }
        }
    };
    if reset {
        // SO_LINGER 0: close sends RST, as a crashed process's kernel does.
        let _ = stream.set_zero_linger();
    }
}

/// The service itself on one connection.
async fn serve(stream: &mut TcpStream, ctx: &Ctx, lost: bool) {
    if lost {
        return discard(stream).await;
    }
    match &ctx.service {
        Service::TcpEcho => echo(stream, ctx).await,
        Service::Http(site) => serve_http(stream, ctx, site).await,
        Service::Https(site) => {
            let view = ctx.faults.view();
            if view.hang {
                return discard(stream).await;
            }
            if view.tls_error {
                return broken_handshake(stream).await;
            }
            let Some(acceptor) = &ctx.tls else { return };
            if let Ok(mut tls) = acceptor.accept(&mut *stream).await {
                serve_http(&mut tls, ctx, site).await;
                let _ = tls.shutdown().await;
            }
        }
        // UDP services have no TCP listener.
        Service::UdpEcho => {}
    }
}

/// Reads and throws away until the peer closes: an application that never answers.
async fn discard<S: AsyncRead + Unpin>(io: &mut S) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = io.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}

/// `tls_error`: reads the ClientHello, answers with bytes that are no TLS record, closes.
async fn broken_handshake(stream: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
        if n > 0 {
            let _ = stream.write_all(b"this is not a ServerHello\r\n").await;
            let _ = stream.shutdown().await;
        }
    }
}

/// Waits the `slow` latency, if any.
async fn slow(ctx: &Ctx) {
    let d = ctx.faults.view().slow;
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

async fn echo(stream: &mut TcpStream, ctx: &Ctx) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if ctx.faults.view().hang {
            continue;
        }
        slow(ctx).await;
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Answers HTTP requests on one connection (plain or TLS).
async fn serve_http<S: AsyncRead + AsyncWrite + Unpin>(io: &mut S, ctx: &Ctx, site: &HttpSite) {
    let mut buf = Vec::with_capacity(1024);
    loop {
        let head_len = match http::read_head(io, &mut buf).await {
            Ok(n) => n,
            Err(http::HeadError::Closed) => return,
            Err(http::HeadError::TooLong) => {
                let _ = io.write_all(&http::response(400, false, true)).await;
                return;
            }
        };
        let request = http::parse_request(&buf[..head_len]);
        buf.drain(..head_len);
        let Some(req) = request else {
            let _ = io.write_all(&http::response(400, false, true)).await;
            return;
        };
        // Skip the body (bounded: a larger one ends the connection).
        if req.content_length > (1 << 20) {
            return;
        }
        let mut body_left = req.content_length as usize;
        let take = body_left.min(buf.len());
        buf.drain(..take);
        body_left -= take;
        let mut sink = [0u8; 4096];
        while body_left > 0 {
            match io.read(&mut sink[..body_left.min(4096)]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => body_left -= n,
            }
        }
        let view = ctx.faults.view();
        if view.hang {
            return discard(io).await;
        }
        slow(ctx).await;
        let host_ok = match (&site.host, &req.host) {
            (None, _) => true,
            (Some(want), Some(got)) => want.eq_ignore_ascii_case(got),
            (Some(_), None) => false,
        };
        let code = match view.http_status {
            Some(code) => code,
            None if host_ok && req.target == site.url_path => 200,
            None => 404,
        };
        let answer = http::response(code, req.method == "HEAD", req.close);
        if io.write_all(&answer).await.is_err() || req.close {
            let _ = io.flush().await;
            return;
        }
    }
}

/// One UDP port of a member: bound while Open or Silent (a silent host sends no ICMP error),
/// closed while Closed.
async fn udp_listener(
    port: Port,
    addr: SocketAddr,
    first: UdpSocket,
    ctx: Arc<Ctx>,
    ack: watch::Sender<u64>,
) {
    let mut rx = ctx.faults.subscribe();
    let mut sock = Some(Arc::new(first));
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let (generation, mode) = {
            let s = rx.borrow_and_update();
            (s.generation(), s.view().mode(port))
        };
        match (mode, sock.is_some()) {
            (ListenerMode::Closed, true) => sock = None,
            (ListenerMode::Open | ListenerMode::Silent, false) => {
                match rebind(addr, || {
                    let s = std::net::UdpSocket::bind(addr)?;
                    s.set_nonblocking(true)?;
                    UdpSocket::from_std(s)
                })
                .await
                {
                    Ok(s) => sock = Some(Arc::new(s)),
                    Err(e) => tracing::warn!(%addr, "live backend cannot bind UDP again: {e}"),
                }
            }
            _ => {}
        }
        ack.send_replace(generation);
        let recv = async {
            match &sock {
                Some(s) => s.recv_from(&mut buf).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = ctx.cancel.cancelled() => return,
            changed = rx.changed() => if changed.is_err() { return },
            got = recv => {
                // ICMP errors from earlier answers surface here as errors: ignore them.
                let Ok((n, peer)) = got else { continue };
                let view = ctx.faults.view();
                if mode != ListenerMode::Open || view.hang || ctx.faults.lose() {
                    continue;
                }
                let Some(s) = sock.clone() else { continue };
                if view.slow.is_zero() {
                    let _ = s.send_to(&buf[..n], peer).await;
                } else if let Ok(permit) = ctx.datagrams.clone().try_acquire_owned() {
                    let data = buf[..n].to_vec();
                    let cancel = ctx.cancel.clone();
                    // A weak handle: a crash meanwhile really closes the socket (the listener
                    // drops the only strong one), and the late answer is simply not sent.
                    let weak = Arc::downgrade(&s);
                    drop(s);
                    ctx.tracker.spawn(async move {
                        tokio::select! {
                            _ = cancel.cancelled() => {}
                            _ = tokio::time::sleep(view.slow) => {
                                if let Some(s) = weak.upgrade() {
                                    let _ = s.send_to(&data, peer).await;
                                }
                            }
                        }
                        drop(permit);
                    });
                }
            }
        }
    }
}
