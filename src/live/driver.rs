//! The real-time driver: the scenario's LB nodes as `model::LbNode`s, fed by real health checks
//! of real backends on 127.0.0.1, with the scenario's faults made real at their (scaled) times.
//! It writes the DES's own log type ([`RunLog`]), so `crate::report` reads a live run exactly as
//! it reads a simulated one.
//!
//! Design, mirroring `sim::engine` so that the two differ only in where verdicts come from:
//! - One driver task owns every `LbNode` and a timer heap keyed on `(wall instant, seq)` (FIFO at
//!   equal instants, as the DES queue). Timers: a prober's next probe, a node's own timers
//!   (`route_update_delay`, drain deadlines), fault starts and ends, and the end of the run.
//! - A probe is its own task: [`Prober::probe`] against the member's check address, its verdict
//!   sent back to the driver over a bounded channel. The node decides the schedule, as in the
//!   DES: under after_completion `handle_verdict` says when the next probe goes out, under
//!   fixed_rate `handle_probe_sent` does.
//! - The first probe of each (node, member) pair lands at the phase drawn from the same seeded
//!   stream, in the same order, as the DES's, so a live run and `elbsim run` with the same seed
//!   start their probes at the same scenario instants.
//! - Time: scenario time = wall time since the start / `time_scale`. Every input is stamped
//!   with the moment it was really handled (never the moment it was meant for), so timer
//!   lateness shows up in the measured latencies; it is also measured on its own
//!   ([`Lateness`]) and reported.
//! - Faults go to the members' fault layers ([`super::fault`]); durations inside faults (slow
//!   latency, flap period) are scaled too.
//!
//! - Client traffic (`[traffic]`, TCP and UDP pools): front proxies or UDP relays and real
//!   clients ([`super::traffic`], [`super::udp_flows`]); the driver routes each connection through its node's `LbNode`, closes
//!   the real connection when the node closes it (drain, failback reset), and fills the DES's
//!   own `TrafficLog` in `RunLog::traffic`: the counters, each client failure charged to a fault
//!   by the DES's rule (`FaultCharging`), the drains and the persisted returns, as the engine
//!   does. What only a live run has (the thinning, the request spacing) is in
//!   [`LiveFacts::traffic`].
//!
//! What is not driven live (yet), and said in the run's notes: QUIC flows and TLS clients, and the `[network]` noise (the loopback path is the network). Everything is bounded: the run ends at the scenario's duration on the scaled clock,
//! or at Ctrl-C, and every task watches one cancellation token.

use super::backend::{Backend, BackendSpec, HttpSite, Service};
use super::fault::{FaultId, LiveFault};
use super::prober::{CheckSpec, EchoStep, ProbeResult, Prober};
use super::traffic::{
    self, ClientPlan, Failure, LiveTraffic, RequestKind, RouteReply, TrafficClock, TrafficMsg,
};
use super::udp_flows;
use crate::api::pool::{MonitorType, Pool, Protocol};
use crate::model::connections::Conn;
use crate::model::lb_node::{Action, LbClose, LbNode, Timer};
use crate::model::router::Role;
use crate::sim::config::SimConfig;
use crate::sim::engine::{
    self, Counter, DrainRecord, FaultCharging, PersistedReturn, RouteLog, RunLog, Stopped,
    TrafficLog, Transition, VerdictLog,
};
use crate::sim::rng::{self, Purpose};
use crate::time::{SimDuration, SimTime};
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Most verdicts waiting for the driver; a probe task waits for room (never drops one).
const VERDICT_QUEUE: usize = 4096;
/// Longest wait for the client and proxy tasks at the end.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(2);
/// Most timer-lateness samples kept (the statistics cover the first ones).
const MAX_LATENESS_SAMPLES: usize = 1 << 20;

/// How to run.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Wall-clock seconds per scenario second.
    pub time_scale: f64,
    pub seed: u64,
    /// Which trial of `seed` this run is: its probe phases, client arrivals and backend draws
    /// come from the streams of the DES's trial of the same number (`elbsim run` is trial 0).
    pub trial: u64,
    /// Keep every verdict in the log (`--timeline`).
    pub record_verdicts: bool,
    /// Cancelling it stops the run, which then reports up to that point.
    pub cancel: CancellationToken,
}

/// How late the driver's timers fired, on the wall clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Lateness {
    pub timers: u64,
    /// Median lateness (ms, wall clock).
    pub p50_ms: f64,
    /// Largest lateness (ms, wall clock).
    pub max_ms: f64,
}

/// The members' live addresses.
#[derive(Debug, Clone, Serialize)]
pub struct LiveMember {
    pub role: &'static str,
    /// The member's service address on loopback.
    pub addr: String,
    /// Where its health check goes (the check port, when the pool sets monitor_port).
    pub check_addr: String,
}

/// What a live run produced besides its log.
#[derive(Debug, Clone, Serialize)]
pub struct LiveFacts {
    pub time_scale: f64,
    /// Wall-clock seconds the run took.
    pub wall_s: f64,
    pub lateness: Lateness,
    pub members: Vec<LiveMember>,
    /// How the clients ran, when the scenario has `[traffic]` and the pool is one the live
    /// clients speak to (`super::traffic`); what they saw is in the log's `traffic`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic: Option<LiveTraffic>,
    /// What this live run did not drive, and why.
    pub notes: Vec<String>,
}

/// A live run: the log for `crate::report`, and the live facts.
#[derive(Debug, Clone)]
pub struct LiveRun {
    pub log: RunLog,
    pub facts: LiveFacts,
    /// Every timer's lateness (wall clock, sorted; the first [`MAX_LATENESS_SAMPLES`]), so that
    /// several runs can pool them.
    pub lateness_samples: Vec<Duration>,
}

/// What a backend speaks for this pool: the health check decides (an HTTP check needs an HTTP
/// server behind the TCP listener), UDP and QUIC pools echo datagrams.
pub fn service_for(pool: &Pool) -> Service {
    let hm = &pool.healthmonitor;
    let site = HttpSite {
        url_path: hm.url_path.clone(),
        host: hm.domain_name.clone(),
    };
    match hm.monitor_type {
        MonitorType::Http => Service::Http(site),
        MonitorType::Https => Service::Https(site),
        MonitorType::Tcp => Service::TcpEcho,
        MonitorType::UdpConnect => Service::UdpEcho,
    }
}

/// Timers of the driver.
#[derive(Debug, Clone, Copy)]
enum Due {
    ProbeSend {
        node: u32,
        role: Role,
    },
    Node {
        node: u32,
        timer: Timer,
        cause: Option<u32>,
    },
    FaultStart(usize),
    FaultEnd(usize),
    End,
    /// haproxy `observe layer4`: a client connection to `role` attempted at `attempted_at` met
    /// silence; HAProxy's `timeout connect` has run out now: a layer-4 error.
    ObservedTimeout {
        node: u32,
        role: Role,
        attempted_at: SimTime,
    },
    /// haproxy `on-error` moved the check task while the check sent at `sent_at` was in
    /// progress: unless its verdict came first, it is aborted now as a timeout.
    AbortCheck {
        node: u32,
        role: Role,
        sent_at: SimTime,
    },
}

/// haproxy `observe layer4` with `fastinter` set: what one (node, member) check task waits for,
/// so that `on-error` can move it (see [`Driver::move_check`]).
#[derive(Debug, Clone, Copy, Default)]
struct CheckTask {
    /// The next check's timer (its sequence number) and when it is due.
    pending: Option<(u64, SimTime)>,
    /// The send time of the check in progress.
    in_flight: Option<SimTime>,
}

/// A verdict coming back from a probe task.
struct VerdictMsg {
    node: u32,
    role: Role,
    sent_at: SimTime,
    result: ProbeResult,
}

struct Clock {
    start: Instant,
    scale: f64,
    last: SimTime,
}

impl Clock {
    fn wall(&self, t: SimTime) -> Instant {
        self.start + Duration::from_secs_f64(t.0 as f64 * self.scale / 1e9)
    }

    /// The scenario instant of a past wall-clock instant.
    fn at(&self, wall: Instant) -> SimTime {
        SimTime((wall.saturating_duration_since(self.start).as_nanos() as f64 / self.scale) as u64)
    }

    /// Scenario time now, never going backwards.
    fn now(&mut self) -> SimTime {
        let t = SimTime((self.start.elapsed().as_nanos() as f64 / self.scale) as u64);
        self.last = self.last.max(t);
        self.last
    }
}

struct Driver<'a> {
    cfg: &'a SimConfig,
    opts: &'a LiveOptions,
    clock: Clock,
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    due: HashMap<u64, Due>,
    seq: u64,
    nodes: Vec<LbNode>,
    backends: [Backend; 2],
    prober: Prober,
    fault_ids: Vec<Option<FaultId>>,
    verdicts: mpsc::Sender<VerdictMsg>,
    probes: CancellationToken,
    lateness: Vec<Duration>,
    log: RunLog,
    traffic: Option<TrafficState>,
    /// The profile's jitter draws (the DES's `Purpose::Jitter` stream), when it has jitter.
    jitter: Option<rand_chacha::ChaCha8Rng>,
    /// envoy's data-plane draws (the DES's `Purpose::Passive` stream): each connection's
    /// priority level, outlier enforcement and ejection jitter.
    passive: Option<rand_chacha::ChaCha8Rng>,
    /// haproxy `observe layer4` with `fastinter` set: per slot (`node * 2 + role`), what its
    /// check task waits for (`None` otherwise).
    checks: Option<Vec<CheckTask>>,
}

/// The driver's side of client traffic.
struct TrafficState {
    live: LiveTraffic,
    /// What clients saw, as the engine records it.
    log: TrafficLog,
    /// Which fault each failure is charged to.
    charge: FaultCharging,
    /// Per open connection (by its serial): the token that closes the real connection, and
    /// whether it was established.
    open: HashMap<u64, (CancellationToken, bool)>,
    serial: u64,
    established_now: u64,
    /// Per (node, member): index of the drain in progress in `log.drains`.
    drain_record: Vec<Option<usize>>,
    /// Per node: index of the persisted-return record of its latest failback, while the node
    /// still routes to the master.
    persisted_return: Vec<Option<usize>>,
    /// SOURCE_IP persistence's timeout, when the scenario has it.
    persistence: Option<SimDuration>,
}

impl TrafficState {
    fn new(cfg: &SimConfig, live: LiveTraffic) -> Self {
        let nodes = cfg.lb_nodes.max(1) as usize;
        TrafficState {
            live,
            log: TrafficLog::for_faults(cfg),
            charge: FaultCharging::new(cfg),
            open: HashMap::new(),
            serial: 0,
            established_now: 0,
            drain_record: vec![None; nodes * 2],
            persisted_return: vec![None; nodes],
            persistence: cfg.traffic.as_ref().and_then(|t| t.persistence),
        }
    }

    /// A client failure on `node` at `at`: kept for the live facts, counted as a failure of
    /// the fault it is charged to. A drained connection is not a failure in the DES's log (the
    /// LB closed it on purpose, at the deadline the user set), so it is only kept.
    fn fail(&mut self, node: u32, at: SimTime, f: Failure) {
        self.live.fail(at, f);
        let (conns, reqs) = match f {
            Failure::Drained => return,
            Failure::Request => (0, 1),
            _ => (1, 0),
        };
        let fault = self.charge.fault_at(at, node);
        self.log.record_failure(fault, node, at, at, conns, reqs);
    }

    /// Closes `node`'s open persisted-return record at `now`: its clients all returned if the
    /// last one's entry expired by then (the engine's rule).
    fn close_persisted_return(&mut self, node: u32, now: SimTime) {
        let timeout = self.persistence.unwrap_or(SimDuration::ZERO);
        if let Some(i) = self.persisted_return[node as usize].take() {
            let r = &mut self.log.persisted_returns[i];
            r.returned = r.last_to_slave.is_none_or(|l| l + timeout <= now);
        }
    }

    fn counters(&mut self) -> &mut crate::sim::engine::TrafficCounters {
        &mut self.log.counters
    }
}

/// Why the live driver cannot run `cfg`, if it cannot: the faults real networks have that
/// loopback and one process cannot reproduce. (`failback = "hold_down"` runs live: it lives in
/// the `LbNode`.)
pub fn not_live(cfg: &SimConfig) -> Option<String> {
    let sim = "; run it in the simulator (elbsim run / trials)";
    if !cfg.fault_paths.is_empty() {
        return Some(format!(
            "per-path faults (`[[faults]] lb_node`) cannot run live: every live LB node reaches a backend over the same loopback path{sim}"
        ));
    }
    if !cfg.stalls.is_empty() {
        return Some(format!(
            "`[[stalls]]` cannot run live: the live LB nodes' checkers share one process, which cannot pause one node{sim}"
        ));
    }
    if cfg.network.burst.is_some() {
        return Some(format!(
            "`[network.burst]` cannot run live: the loopback path is the network, and it loses nothing{sim}"
        ));
    }
    if cfg.network.icmp_ratelimit.is_some() {
        return Some(format!(
            "`[network.icmp_ratelimit]` cannot run live: Linux does not rate-limit ICMP errors on loopback (net/ipv4/icmp.c, \"No rate limit on loopback\"){sim}"
        ));
    }
    if cfg.model.monitor_process == crate::sim::config::MonitorProcess::Separate {
        return Some(format!(
            "`monitor_process = \"separate\"` cannot run live: a live backend serves its check port from its own process{sim}"
        ));
    }
    None
}

/// Runs `cfg` live: backends for `pool`'s members, one `LbNode` per LB node, the faults at their
/// scaled times. Fails only when a backend or the TLS client cannot be set up.
pub async fn run(cfg: &SimConfig, pool: &Pool, opts: &LiveOptions) -> Result<LiveRun, String> {
    if let Some(why) = not_live(cfg) {
        return Err(why);
    }
    let scale = opts.time_scale;
    if !(scale.is_finite() && scale > 0.0) {
        return Err(format!("the time scale must be above 0, got {scale}"));
    }
    let cancel = opts.cancel.child_token();
    // Whatever way this function returns (an error half-way through set-up included), every
    // task it started stops.
    let _stop_all = cancel.clone().drop_guard();
    let service = service_for(pool);
    let mut started = Vec::new();
    for (i, role) in Role::BOTH.iter().enumerate() {
        // The member in bit 0, the trial above it: every (seed, trial, member) its own draws.
        let seed = rng::mix(opts.seed ^ i as u64 ^ (opts.trial << 1));
        let mut spec = BackendSpec::new(service.clone()).with_seed(seed);
        spec.monitor_port = pool.healthmonitor.monitor_port.is_some();
        let b = Backend::start(spec, cancel.clone())
            .await
            .map_err(|e| format!("cannot start the {} backend: {e}", role.as_str()))?;
        started.push(b);
    }
    let [master, slave]: [Backend; 2] = started
        .try_into()
        .map_err(|_| "two backends were expected".to_string())?;
    // The profile's phase bounds (connect, read from open, UDP echo), scaled like the timeout.
    let prober = Prober::new(CheckSpec::from_monitor(&pool.healthmonitor, scale))?
        .with_judging(&cfg.judging(), scale);
    let mut notes = Vec::new();
    notes.push(
        "[network] rtt and loss are not applied: the loopback path is the network".to_string(),
    );
    let (tx, mut rx) = mpsc::channel(VERDICT_QUEUE);
    let (traffic_tx, mut traffic_rx) = mpsc::channel(VERDICT_QUEUE);
    let traffic_cancel = cancel.child_token();
    let tracker = TaskTracker::new();
    let nodes = cfg.lb_nodes.max(1);
    let start = Instant::now();
    let mut clients = None;
    let mut traffic_state = None;
    if let Some(t) = &cfg.traffic {
        let request = RequestKind::for_service(&service);
        let not_live = if !matches!(pool.protocol, Protocol::Tcp | Protocol::Udp) {
            Some(format!(
                "the live clients speak TCP and UDP, and this is a {} pool",
                pool.protocol
            ))
        } else if cfg.clients_use_tls || t.quic.is_some() {
            Some("the live clients do not speak TLS or QUIC".to_string())
        } else if request.is_none() {
            Some(
                "the backend of an HTTPS check speaks TLS, which the live clients do not"
                    .to_string(),
            )
        } else {
            None
        };
        match request {
            Some(request) if not_live.is_none() => {
                let connect_timeout =
                    Duration::from_secs_f64(t.connect_timeout.as_secs_f64() * scale)
                        .max(traffic::MIN_WALL_ANSWER_WAIT);
                let fronts = if matches!(request, RequestKind::Datagram) {
                    let idle = t.udp_idle_timeout.unwrap_or(SimDuration::ZERO);
                    let times = udp_flows::RelayTimes {
                        connect_timeout,
                        idle: Duration::from_secs_f64(idle.as_secs_f64() * scale),
                    };
                    udp_flows::start_relays(nodes, traffic_tx.clone(), times, &traffic_cancel, &tracker)
                        .await
                        .map_err(|e| format!("cannot start the UDP relays: {e}"))?
                } else {
                    traffic::start_fronts(
                        nodes,
                        traffic_tx.clone(),
                        connect_timeout,
                        &traffic_cancel,
                        &tracker,
                    )
                    .await
                    .map_err(|e| format!("cannot start the front proxies: {e}"))?
                };
                let plan = ClientPlan {
                    traffic: t.clone(),
                    fronts,
                    request,
                    clock: TrafficClock { start, scale },
                    end: SimTime::ZERO + cfg.duration,
                    seed: opts.seed,
                    trial: opts.trial,
                };
                let spacing_s = plan
                    .request_spacing()
                    .map_or(0.0, |d| d.as_secs_f64() / scale);
                clients = Some(tokio::spawn(traffic::run_clients(
                    plan,
                    traffic_tx.clone(),
                    traffic_cancel.clone(),
                    tracker.clone(),
                )));
                let requested_spacing_s = if t.requests_per_s > 0.0 {
                    1.0 / t.requests_per_s
                } else {
                    0.0
                };
                traffic_state = Some(TrafficState::new(
                    cfg,
                    LiveTraffic {
                        request_spacing_s: spacing_s,
                        requested_spacing_s,
                        ..LiveTraffic::default()
                    },
                ));
            }
            _ => notes.insert(
                0,
                format!(
                    "[traffic] is not driven live here ({}): no clients ran, the report covers health checks and routing",
                    not_live.unwrap_or_default()
                ),
            ),
        }
    }
    drop(traffic_tx);
    let node_cfg = engine::node_config(cfg);
    let mut d = Driver {
        cfg,
        opts,
        clock: Clock {
            start,
            scale,
            last: SimTime::ZERO,
        },
        heap: BinaryHeap::new(),
        due: HashMap::new(),
        seq: 0,
        nodes: vec![LbNode::new(node_cfg); cfg.lb_nodes.max(1) as usize],
        backends: [master, slave],
        prober,
        fault_ids: vec![None; cfg.faults.len()],
        verdicts: tx,
        probes: cancel.child_token(),
        lateness: Vec::new(),
        log: RunLog::default(),
        traffic: traffic_state,
        jitter: node_cfg
            .rules
            .needs_draw()
            .then(|| rng::stream(opts.seed, opts.trial, Purpose::Jitter)),
        passive: node_cfg
            .envoy
            .map(|_| rng::stream(opts.seed, opts.trial, Purpose::Passive)),
        checks: node_cfg
            .observe
            .and_then(|o| o.reschedule)
            .map(|_| vec![CheckTask::default(); cfg.lb_nodes.max(1) as usize * 2]),
    };
    d.start();
    let end = d.run_loop(&mut rx, &mut traffic_rx, &cancel).await;
    d.probes.cancel();
    traffic_cancel.cancel();
    let mut traffic_log = None;
    let mut traffic = d.traffic.take().map(|mut t| {
        // What the engine does at the end: persisted-return records close, open connections
        // are counted as open at the end.
        for node in 0..nodes {
            t.close_persisted_return(node, end);
        }
        let open = t.established_now;
        t.counters().set(Counter::OpenAtEnd, open);
        traffic_log = Some(t.log);
        t.live
    });
    if let Some(handle) = clients {
        if let Ok(Ok((sampled, skipped))) = tokio::time::timeout(SHUTDOWN_LIMIT, handle).await {
            if let Some(t) = traffic.as_mut() {
                t.sampled = sampled;
                t.skipped = skipped;
            }
        }
    }
    tracker.close();
    let _ = tokio::time::timeout(SHUTDOWN_LIMIT, tracker.wait()).await;
    let wall_s = d.clock.start.elapsed().as_secs_f64();
    let members = Role::BOTH
        .iter()
        .zip(&d.backends)
        .map(|(r, b)| LiveMember {
            role: r.as_str(),
            addr: b.addr().to_string(),
            check_addr: b.check_addr().to_string(),
        })
        .collect();
    let lateness = lateness_stats(&mut d.lateness);
    let lateness_samples = std::mem::take(&mut d.lateness);
    let mut log = std::mem::take(&mut d.log);
    log.end = end;
    log.traffic = traffic_log;
    let Driver { backends, .. } = d;
    for b in backends {
        b.shutdown().await;
    }
    cancel.cancel();
    Ok(LiveRun {
        log,
        facts: LiveFacts {
            time_scale: scale,
            wall_s,
            lateness,
            members,
            traffic,
            notes,
        },
        lateness_samples,
    })
}

fn lateness_stats(samples: &mut [Duration]) -> Lateness {
    if samples.is_empty() {
        return Lateness::default();
    }
    samples.sort_unstable();
    let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
    Lateness {
        timers: samples.len() as u64,
        p50_ms: ms(samples[samples.len() / 2]),
        max_ms: ms(samples[samples.len() - 1]),
    }
}

impl Driver<'_> {
    fn push(&mut self, at: SimTime, due: Due) {
        self.seq += 1;
        let wall = self.clock.wall(at);
        self.heap.push(Reverse((wall, self.seq)));
        self.due.insert(self.seq, due);
        if let (Some(checks), Due::ProbeSend { node, role }) = (self.checks.as_mut(), due) {
            checks[node as usize * 2 + role.index()].pending = Some((self.seq, at));
        }
    }

    fn start(&mut self) {
        // The DES's phase draws, in the DES's order (slot = node * 2 + role).
        let mut phases = rng::stream(self.opts.seed, self.opts.trial, Purpose::Probes);
        for node in 0..self.nodes.len() as u32 {
            let m = rng::unit(&mut phases);
            let s = rng::unit(&mut phases);
            let at = self.nodes[node as usize].first_probes_at([m, s]);
            for role in Role::BOTH {
                self.push(at[role.index()], Due::ProbeSend { node, role });
            }
        }
        for i in 0..self.cfg.faults.len() {
            let f = self.cfg.faults[i];
            self.push(f.at, Due::FaultStart(i));
            if let Some(until) = f.until {
                self.push(until, Due::FaultEnd(i));
            }
        }
        self.push(SimTime::ZERO + self.cfg.duration, Due::End);
    }

    /// Handles timers and verdicts until the end or a cancellation; returns the scenario
    /// instant the log covers up to.
    async fn run_loop(
        &mut self,
        rx: &mut mpsc::Receiver<VerdictMsg>,
        traffic_rx: &mut mpsc::Receiver<TrafficMsg>,
        cancel: &CancellationToken,
    ) -> SimTime {
        loop {
            let next = self.heap.peek().map(|Reverse((at, _))| *at);
            let sleep = async {
                match next {
                    Some(at) => super::timer::precise_sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = cancel.cancelled() => {
                    let at = self.clock.now();
                    self.log.stopped = Some(Stopped::Interrupted { at });
                    return at;
                }
                // Timers first: they are what lateness measures, and a busy traffic channel
                // must not hold them back.
                _ = sleep => {
                    let Some(Reverse((wall, seq))) = self.heap.pop() else { continue };
                    if self.lateness.len() < MAX_LATENESS_SAMPLES {
                        self.lateness.push(Instant::now().saturating_duration_since(wall));
                    }
                    let Some(due) = self.due.remove(&seq) else { continue };
                    self.log.events += 1;
                    if let Due::End = due {
                        return SimTime::ZERO + self.cfg.duration;
                    }
                    self.fire(due);
                }
                msg = rx.recv() => {
                    // The driver holds a sender, so the channel never closes while it runs.
                    if let Some(m) = msg {
                        self.on_verdict(m);
                    }
                }
                // Closed (no traffic, or every client gone): the branch is disabled.
                Some(m) = traffic_rx.recv() => self.on_traffic(m),
            }
        }
    }

    fn fire(&mut self, due: Due) {
        let now = self.clock.now();
        match due {
            Due::ProbeSend { node, role } => {
                if let Some(checks) = self.checks.as_mut() {
                    let c = &mut checks[node as usize * 2 + role.index()];
                    c.pending = None;
                    c.in_flight = Some(now);
                }
                self.send_probe(now, node, role)
            }
            Due::ObservedTimeout {
                node,
                role,
                attempted_at,
            } => self.observe_connection(
                now,
                node,
                role,
                Some((crate::model::probe::Reason::ConnectTimeout, attempted_at)),
            ),
            Due::AbortCheck {
                node,
                role,
                sent_at,
            } => {
                let slot = node as usize * 2 + role.index();
                if self
                    .checks
                    .as_ref()
                    .is_some_and(|c| c[slot].in_flight == Some(sent_at))
                {
                    tracing::debug!(at = %now, node, member = role.as_str(), sent = %sent_at, "live check in progress aborted (on-error)");
                    // The real check carries on in its task; its verdict, when it comes, is
                    // dropped (no longer in flight).
                    let result = ProbeResult {
                        ok: false,
                        reason: Some(crate::model::probe::Reason::ConnectTimeout),
                        http_status: None,
                        rtt: Duration::from_secs_f64(
                            now.since(sent_at).as_secs_f64() * self.clock.scale,
                        ),
                        note: Some("aborted: on-error moved the check task".into()),
                    };
                    self.on_verdict(VerdictMsg {
                        node,
                        role,
                        sent_at,
                        result,
                    });
                }
            }
            Due::Node { node, timer, cause } => {
                self.nodes[node as usize].handle_timer(now, timer);
                self.node_actions(now, node, cause);
            }
            Due::FaultStart(i) => {
                let f = self.cfg.faults[i];
                let live = LiveFault::from_kind(&f.kind, self.clock.scale);
                tracing::debug!(at = %now, kind = f.kind.name(), member = f.member.as_str(), "live fault starts");
                self.fault_ids[i] = Some(self.backends[f.member.index()].faults().apply(live));
            }
            Due::FaultEnd(i) => {
                let f = self.cfg.faults[i];
                tracing::debug!(at = %now, kind = f.kind.name(), member = f.member.as_str(), "live fault ends");
                if let Some(id) = self.fault_ids[i].take() {
                    self.backends[f.member.index()].faults().clear(id);
                }
            }
            Due::End => {}
        }
    }

    fn send_probe(&mut self, now: SimTime, node: u32, role: Role) {
        let backend = &self.backends[role.index()];
        let target = backend.check_addr();
        let echo = EchoStep::FaultLayer(backend.faults().clone());
        let (prober, tx, cancel) = (
            self.prober.clone(),
            self.verdicts.clone(),
            self.probes.clone(),
        );
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                result = prober.probe(target, &echo) => {
                    let msg = VerdictMsg { node, role, sent_at: now, result };
                    tokio::select! {
                        _ = cancel.cancelled() => {}
                        _ = tx.send(msg) => {}
                    }
                }
            }
        });
        if let Some(next) = self.nodes[node as usize].handle_probe_sent(now, role) {
            self.push(next, Due::ProbeSend { node, role });
        }
    }

    fn on_verdict(&mut self, m: VerdictMsg) {
        if let Some(checks) = self.checks.as_mut() {
            let c = &mut checks[m.node as usize * 2 + m.role.index()];
            if c.in_flight != Some(m.sent_at) {
                // A check that on-error aborted: it already has its verdict.
                return;
            }
            c.in_flight = None;
        }
        let now = self.clock.now();
        self.log.events += 1;
        let v = m.result.verdict();
        // The profile's jitter, from the DES's own stream kind.
        let draw = match &mut self.jitter {
            Some(r) => rng::unit(r),
            None => 0.0,
        };
        // The status of a failed HTTP answer: envoy counts it at once unless retriable.
        let mismatch = v
            .status
            .filter(|_| v.reason == Some(crate::model::probe::Reason::ResponseMismatch));
        let effect =
            self.nodes[m.node as usize].handle_probe_verdict(now, m.role, v.ok, mismatch, draw);
        if let Some(next) = effect.next_probe_at() {
            self.push(
                next,
                Due::ProbeSend {
                    node: m.node,
                    role: m.role,
                },
            );
        }
        if self.opts.record_verdicts {
            self.log.verdicts.push(VerdictLog {
                at: now,
                lb_node: m.node,
                member: m.role,
                ok: v.ok,
                reason: v.reason,
            });
        }
        if let Some(health) = effect.transition {
            tracing::debug!(at = %now, node = m.node, member = m.role.as_str(), to = health.as_str(), "live member status");
            let cause = self.log.transitions.len() as u32;
            self.log.transitions.push(Transition {
                at: now,
                lb_node: m.node,
                member: m.role,
                to: health,
                reason: v.reason,
                status: v.status,
                probe_sent_at: m.sent_at,
                stall: None,
            });
            self.node_actions(now, m.node, Some(cause));
        }
    }

    /// Carries out what a node asked for. Drains act through the `Closed` actions of the
    /// connections they close.
    fn node_actions(&mut self, now: SimTime, node: u32, mut cause: Option<u32>) {
        while let Some(action) = self.nodes[node as usize].poll_action() {
            match action {
                Action::StatusChanged {
                    role,
                    health,
                    reason,
                    status,
                } => {
                    // envoy's passive side: a status change of its own, the cause of the route
                    // update that follows.
                    tracing::debug!(at = %now, node, member = role.as_str(), to = health.as_str(), "live member status (passive)");
                    cause = Some(self.log.transitions.len() as u32);
                    self.log
                        .transitions
                        .push(Transition::passive(now, node, role, health, reason, status));
                }
                // A timer already due (route_update_delay 0) acts at once, as the DES's
                // same-instant event does, instead of paying a round through the timer wheel.
                Action::SetTimer { at, timer } if at <= now => {
                    self.log.events += 1;
                    self.nodes[node as usize].handle_timer(now, timer);
                }
                Action::SetTimer { at, timer } => self.push(at, Due::Node { node, timer, cause }),
                Action::RouteChanged { change, failback } => {
                    tracing::debug!(at = %now, node, from = change.from.as_str(), to = change.to.as_str(), "live route change");
                    self.log.routes.push(RouteLog {
                        at: now,
                        lb_node: node,
                        from: change.from,
                        to: change.to,
                        failback,
                        cause,
                    });
                    self.on_route_change(now, node, failback);
                }
                Action::Closed { conn, why } => self.on_lb_closed(now, node, conn, why),
                Action::DrainStarted { role, deadline: _ } => {
                    if let Some(t) = self.traffic.as_mut() {
                        t.drain_record[node as usize * 2 + role.index()] = Some(t.log.drains.len());
                        t.log.drains.push(DrainRecord {
                            lb_node: node,
                            member: role,
                            started: now,
                            closed: None,
                            connections: 0,
                        });
                    }
                }
                Action::DrainCancelled { role } => {
                    if let Some(t) = self.traffic.as_mut() {
                        t.drain_record[node as usize * 2 + role.index()] = None;
                    }
                }
                Action::DrainEnded { role, closed } => {
                    if let Some(t) = self.traffic.as_mut() {
                        if let Some(i) = t.drain_record[node as usize * 2 + role.index()].take() {
                            t.log.drains[i].closed = Some(now);
                            t.log.drains[i].connections = closed;
                        }
                    }
                }
            }
        }
    }

    /// haproxy `observe layer4`, as the engine does it: a client connection `node` sent to `role`
    /// opened (`error` is `None`) or failed (why, and when it was attempted). An `on-error`
    /// status change is logged with the attempt as its probe; its reschedule moves the check.
    fn observe_connection(
        &mut self,
        now: SimTime,
        node: u32,
        role: Role,
        error: Option<(crate::model::probe::Reason, SimTime)>,
    ) {
        let moved = self.nodes[node as usize].handle_l4_outcome(now, role, error.map(|e| e.0));
        let Some((_, attempted_at)) = error else {
            return;
        };
        let logged = self.log.transitions.len();
        self.node_actions(now, node, None);
        for x in &mut self.log.transitions[logged..] {
            x.probe_sent_at = attempted_at;
        }
        if let Some(at) = moved {
            self.move_check(node, role, at);
        }
    }

    /// haproxy `on-error` with `fastinter` set: the check task of (`node`, `role`) expires at
    /// `at` if that is sooner (the engine's `move_check`). A pending check goes out at `at`
    /// instead; a check in progress is aborted at `at` as a timeout unless its verdict comes
    /// first (its verdict time is not known here until it comes).
    fn move_check(&mut self, node: u32, role: Role, at: SimTime) {
        let Some(checks) = self.checks.as_ref() else {
            return;
        };
        let c = checks[node as usize * 2 + role.index()];
        if let Some(sent_at) = c.in_flight {
            self.push(
                at,
                Due::AbortCheck {
                    node,
                    role,
                    sent_at,
                },
            );
        } else if let Some((seq, next)) = c.pending {
            if at < next {
                self.due.remove(&seq);
                self.push(at, Due::ProbeSend { node, role });
            }
        }
    }

    /// A route change on `node`: as in the engine, a failback opens a persisted-return record
    /// (with SOURCE_IP persistence), any change closes the previous one.
    fn on_route_change(&mut self, now: SimTime, node: u32, failback: bool) {
        let Some(t) = self.traffic.as_mut() else {
            return;
        };
        t.close_persisted_return(node, now);
        if failback && t.persistence.is_some() {
            t.persisted_return[node as usize] = Some(t.log.persisted_returns.len());
            t.log.persisted_returns.push(PersistedReturn {
                lb_node: node,
                failback_at: now,
                last_to_slave: None,
                connections: 0,
                returned: true,
            });
        }
    }

    /// The LB closed a connection (drain deadline, failback reset): close the real one.
    fn on_lb_closed(&mut self, now: SimTime, node: u32, conn: Conn, why: LbClose) {
        let Some(t) = self.traffic.as_mut() else {
            return;
        };
        let Some((token, established)) = t.open.remove(&conn.serial) else {
            return;
        };
        token.cancel();
        if established {
            t.established_now -= 1;
        }
        let (counter, f) = match why {
            LbClose::Drained => (Counter::Drained, Failure::Drained),
            LbClose::ResetOnFailback => (Counter::ResetOnFailback, Failure::ResetOnFailback),
            // The live clients speak TCP only: no CID routing.
            LbClose::QuicCid => (Counter::QuicCidBroken, Failure::Broken),
        };
        t.counters().add(counter, 1);
        t.fail(node, now, f);
    }

    fn on_traffic(&mut self, m: TrafficMsg) {
        let now = self.clock.now();
        self.log.events += 1;
        let Some(t) = self.traffic.as_mut() else {
            return;
        };
        match m {
            TrafficMsg::Route {
                node,
                client,
                reply,
            } => {
                t.counters().add(Counter::Connections, 1);
                let n = &mut self.nodes[node as usize];
                let target = n.target();
                let hash = match (&mut self.passive, n.needs_route_draw()) {
                    (Some(r), true) => rand::Rng::gen::<u64>(r),
                    _ => 0,
                };
                let Some(routed) = n.route_connection_hashed(now, client, None, hash) else {
                    t.counters().add(Counter::NoBackend, 1);
                    t.fail(node, now, Failure::NoBackend);
                    let _ = reply.send(None);
                    return;
                };
                if routed.persisted_elsewhere {
                    t.counters().add(Counter::PersistedElsewhere, 1);
                    // A persisted client still sent to the slave after a failback: the engine's
                    // persisted-return record.
                    if routed.member == Role::Slave
                        && target == crate::model::router::Target::Master
                    {
                        if let Some(i) = t.persisted_return[node as usize] {
                            let r = &mut t.log.persisted_returns[i];
                            r.last_to_slave = Some(now);
                            r.connections += 1;
                        }
                    }
                }
                t.serial += 1;
                let id = n.open(
                    Conn {
                        member: routed.member,
                        client,
                        opened_at: now,
                        // The client knows its lifetime; the node needs no timer for it here.
                        active_until: now,
                        serial: t.serial,
                    },
                    None,
                );
                let close = CancellationToken::new();
                t.open.insert(t.serial, (close.clone(), false));
                let addr = self.backends[routed.member.index()].addr();
                let _ = reply.send(Some(RouteReply { addr, id, close }));
            }
            TrafficMsg::ConnectFailed {
                node,
                id,
                timed_out,
                started,
            } => {
                let at = self.clock.at(started);
                let n = &mut self.nodes[node as usize];
                if let Some(conn) = n.close(id) {
                    n.connect_failed(None);
                    t.open.remove(&conn.serial);
                    let (counter, f) = if timed_out {
                        (Counter::TimedOut, Failure::TimedOut)
                    } else {
                        (Counter::Refused, Failure::Refused)
                    };
                    t.counters().add(counter, 1);
                    t.fail(node, at, f);
                    if n.observes_layer4() {
                        // haproxy: a refusal is an error now; silence once HAProxy's
                        // `timeout connect` has run out since the attempt, if the client was
                        // still waiting then (as the engine decides it).
                        let member = conn.member;
                        if timed_out {
                            let patience = self.cfg.traffic.as_ref().map(|t| t.connect_timeout);
                            let after = n.config().observe.and_then(|o| o.timeout_connect);
                            if let Some(after) = after.filter(|&c| patience.is_some_and(|p| c < p))
                            {
                                let due = Due::ObservedTimeout {
                                    node,
                                    role: member,
                                    attempted_at: at,
                                };
                                self.push(at + after, due);
                            }
                        } else {
                            let refused = crate::model::probe::Reason::ConnectRefused;
                            self.observe_connection(now, node, member, Some((refused, at)));
                        }
                        return;
                    }
                    // envoy's outlier detection: a refused connection is a 503, a timed-out
                    // one a 504.
                    if let (true, Some(r)) = (n.wants_client_outcomes(), self.passive.as_mut()) {
                        let outcome = if timed_out {
                            crate::model::profile::envoy::Outcome::Timeout
                        } else {
                            crate::model::profile::envoy::Outcome::ConnectFailed
                        };
                        n.handle_client_outcome(now, conn.member, outcome, &mut || {
                            rand::Rng::gen::<u64>(r)
                        });
                        self.node_actions(now, node, None);
                    }
                }
            }
            TrafficMsg::Established { node, id } => {
                let Some(conn) = self.nodes[node as usize].conn(id) else {
                    return;
                };
                if self.nodes[node as usize].observes_layer4() {
                    self.observe_connection(now, node, conn.member, None);
                }
                let Some(t) = self.traffic.as_mut() else {
                    return;
                };
                if let Some(entry) = t.open.get_mut(&conn.serial) {
                    entry.1 = true;
                    t.established_now += 1;
                    let open = t.established_now;
                    let c = t.counters();
                    c.add(Counter::Established, 1);
                    c.add(
                        match conn.member {
                            Role::Master => Counter::ToMaster,
                            Role::Slave => Counter::ToSlave,
                        },
                        1,
                    );
                    if open > c.get(Counter::PeakOpen) {
                        c.set(Counter::PeakOpen, open);
                    }
                }
            }
            TrafficMsg::Ended { node, id, broken } => {
                // Already closed by the LB (drain, reset): counted there.
                let Some(conn) = self.nodes[node as usize].close(id) else {
                    return;
                };
                if let Some((_, true)) = t.open.remove(&conn.serial) {
                    t.established_now -= 1;
                }
                if broken {
                    t.counters().add(Counter::Broken, 1);
                    t.fail(node, now, Failure::Broken);
                } else {
                    t.counters().add(Counter::Completed, 1);
                }
            }
            TrafficMsg::Request { node, ok, sent } => {
                t.counters().add(Counter::Requests, 1);
                if !ok {
                    t.counters().add(Counter::RequestsFailed, 1);
                    let at = self.clock.at(sent);
                    t.fail(node, at, Failure::Request);
                }
            }
        }
    }
}
