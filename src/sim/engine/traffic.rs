//! Client traffic in the engine: arrivals, the fate of each connection in the simulated world,
//! requests, QUIC CIDs, and what clients saw (`docs/model.md`, "Client traffic").
//!
//! Each new connection arrives at the LB node its client address hashes to (ECMP on the source
//! address, so one client always meets the same node and that node's persistence table). The
//! node's [`LbNode`](crate::model::lb_node::LbNode) routes it; its fate then follows the *real*
//! condition of the chosen member, not the health view: a crashed member refuses, a silent one
//! makes the client time out, a hung or erroring one accepts but fails requests.
//!
//! Requests are counted, not simulated one by one (30 requests per connection would multiply the
//! events by 30): a connection that was active for `L` seconds made `L * requests_per_s` requests
//! (rounded stochastically, one draw), and those falling in a window where its member hangs or
//! answers an error status failed.
//!
//! Every client failure (a failed connection attempt, an open connection broken, reset or cut by
//! CID routing, failed requests) is charged to one fault's [`Unavailability`]: the latest-started
//! fault on the master that is active at the failure or ended less than one recovery window
//! before it ([`recovery_window`]: failures at failback belong to the fault that caused the
//! failover); else the same for the slave's faults; else it is unattributed. The window runs from
//! the first to the last failure charged to the fault, on every node.

use super::{Engine, Event, LimitKind, Stopped};
use crate::model::connections::{Conn, ConnId};
use crate::model::lb_node::{CidOutcome, LbClose};
use crate::model::probe::Reason;
use crate::model::profile::envoy;
use crate::model::quic::{self, MAX_CID_LEN};
use crate::model::router::Role;
use crate::sim::config::{FaultKind, Lifetime, SimConfig, TrafficConfig};
use crate::sim::rng::{self, Purpose};
use crate::sim::world::Condition;
use crate::time::{SimDuration, SimTime};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::ser::SerializeMap;
use serde::Serialize;
use std::collections::BTreeMap;

macro_rules! counters {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, )+) => {
        /// A traffic counter: what clients saw, summed over the run.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Counter {
            $( $(#[$doc])* $variant, )+
        }

        impl Counter {
            /// Every counter, in report order.
            pub const ALL: [Counter; [$(Counter::$variant),+].len()] = [$(Counter::$variant),+];

            /// The counter's key in reports.
            pub fn name(self) -> &'static str {
                match self {
                    $( Counter::$variant => $name, )+
                }
            }

            /// The counter named `name`.
            pub fn parse(name: &str) -> Option<Counter> {
                Counter::ALL.into_iter().find(|c| c.name() == name)
            }
        }
    };
}

counters! {
    /// New connections attempted.
    Connections = "connections",
    /// Attempts that got a working connection.
    Established = "established",
    /// Connections that ended by themselves (lifetime over).
    Completed = "completed",
    /// Refused by the member (RST, or ICMP port unreachable for UDP): it crashed.
    Refused = "refused",
    /// Unanswered until `connect_timeout`: the member's host or path is silent.
    TimedOut = "timed_out",
    /// No member to send to: both OFFLINE with `all_down = "drop"`.
    NoBackend = "no_backend",
    /// TLS handshakes that failed (TLS pool, `tls_error`).
    TlsFailed = "tls_failed",
    /// Open connections broken because their member really failed (crash, host_down, flap).
    Broken = "broken",
    /// Open connections closed by the LB at the end of a connection drain.
    Drained = "drained",
    /// Open connections on the slave closed at a real failback (`failback_sessions = "reset"`).
    ResetOnFailback = "reset_on_failback",
    /// QUIC connections broken because a packet's CID slice was routed to another member.
    QuicCidBroken = "quic_cid_broken",
    /// New connections that SOURCE_IP persistence sent to a member other than the node's choice
    /// (after a failback: persisted clients still on the slave).
    PersistedElsewhere = "persisted_elsewhere",
    /// Established connections to the master.
    ToMaster = "to_master",
    /// Established connections to the slave.
    ToSlave = "to_slave",
    /// Requests made on established connections.
    Requests = "requests",
    /// Requests that failed (member hung or answering an error status).
    RequestsFailed = "requests_failed",
    /// Most connections open at once.
    PeakOpen = "peak_open",
    /// Connections still open when the run ended (their requests so far are counted).
    OpenAtEnd = "open_at_end",
}

/// What clients saw, over the whole run: one value per [`Counter`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrafficCounters([u64; Counter::ALL.len()]);

impl TrafficCounters {
    #[inline]
    pub fn get(&self, c: Counter) -> u64 {
        self.0[c as usize]
    }

    /// Adds `n` to counter `c` (a driver's way to fill the log: the engine, or the live one).
    #[inline]
    pub fn add(&mut self, c: Counter, n: u64) {
        self.0[c as usize] += n;
    }

    /// Sets counter `c` (for maxima such as `peak_open`).
    pub fn set(&mut self, c: Counter, n: u64) {
        self.0[c as usize] = n;
    }

    #[inline]
    fn bump(&mut self, c: Counter) {
        self.add(c, 1);
    }

    /// Every counter with its value, in report order.
    pub fn iter(&self) -> impl Iterator<Item = (Counter, u64)> + '_ {
        Counter::ALL.into_iter().map(|c| (c, self.get(c)))
    }
}

impl Serialize for TrafficCounters {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(Counter::ALL.len()))?;
        for (c, v) in self.iter() {
            m.serialize_entry(c.name(), &v)?;
        }
        m.end()
    }
}

/// First and last failure of a set, and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureSpan {
    pub first: SimTime,
    pub last: SimTime,
    /// Failed connections (attempts and open connections closed on clients).
    pub connections: u64,
    /// Failed requests.
    pub requests: u64,
}

impl FailureSpan {
    fn add(this: &mut Option<FailureSpan>, first: SimTime, last: SimTime, conns: u64, reqs: u64) {
        match this {
            None => {
                *this = Some(FailureSpan {
                    first,
                    last,
                    connections: conns,
                    requests: reqs,
                })
            }
            Some(s) => {
                s.first = s.first.min(first);
                s.last = s.last.max(last);
                s.connections += conns;
                s.requests += reqs;
            }
        }
    }

    /// All failures.
    pub fn failures(&self) -> u64 {
        self.connections + self.requests
    }
}

/// The client failures charged to one fault.
#[derive(Debug, Clone, PartialEq)]
pub struct Unavailability {
    /// Index of the fault in the scenario.
    pub fault: u32,
    /// Over every node.
    pub all: Option<FailureSpan>,
    /// Per LB node that saw a failure.
    pub nodes: BTreeMap<u32, FailureSpan>,
}

/// One connection drain: a member turned OFFLINE in one node's data plane with drain enabled.
#[derive(Debug, Clone, PartialEq)]
pub struct DrainRecord {
    pub lb_node: u32,
    pub member: Role,
    pub started: SimTime,
    /// When the LB closed what was still open (`started + connection_drain.timeout`); `None`
    /// when the member came back first and the drain was cancelled.
    pub closed: Option<SimTime>,
    /// Connections closed by this drain.
    pub connections: u64,
}

/// After one failback: persisted clients still sent to the slave.
#[derive(Debug, Clone, PartialEq)]
pub struct PersistedReturn {
    pub lb_node: u32,
    /// When the node's route went back to the master.
    pub failback_at: SimTime,
    /// The last new connection persistence still sent to the slave, before the node's next
    /// route change (`None`: no persisted client stayed).
    pub last_to_slave: Option<SimTime>,
    /// New connections persistence sent to the slave after the failback.
    pub connections: u64,
    /// Whether the last persisted client's entry had expired before the record closed (the
    /// node's next route change, or the end of the run): every persisted client had returned.
    pub returned: bool,
}

/// The traffic part of a run's log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrafficLog {
    pub counters: TrafficCounters,
    /// One per fault, in the scenario's order.
    pub unavailability: Vec<Unavailability>,
    /// Failures no fault had started before (e.g. with no fault at all).
    pub unattributed: Option<FailureSpan>,
    pub drains: Vec<DrainRecord>,
    pub persisted_returns: Vec<PersistedReturn>,
    /// Client failures over time, per LB node, when asked for ([`super::RunOptions`]
    /// `failure_series`; `run --plot` draws them).
    pub failure_series: Option<FailureSeries>,
}

/// Client failures per LB node in bins of time: for pictures (failures per second).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FailureSeries {
    /// Width of a bin: one second, or more for long runs (at most [`FailureSeries::MAX_BINS`]
    /// bins over the run).
    pub bin: SimDuration,
    /// (LB node, bin index) -> failures (connections and requests) in that bin.
    pub counts: BTreeMap<(u32, u64), u64>,
}

impl FailureSeries {
    /// Most bins over a run, whatever its length.
    pub const MAX_BINS: u64 = 2000;

    fn new(duration: SimDuration) -> Self {
        let bin = SimDuration::from_secs(1).max(SimDuration(duration.0.div_ceil(Self::MAX_BINS)));
        FailureSeries {
            bin,
            counts: BTreeMap::new(),
        }
    }

    /// Adds `n` failures spread evenly over `[first, last]`.
    fn add(&mut self, node: u32, first: SimTime, last: SimTime, n: u64) {
        if n == 0 {
            return;
        }
        let b = self.bin.0.max(1);
        let (lo, hi) = (first.0 / b, last.0.max(first.0) / b);
        let k = hi - lo + 1;
        for (i, bin) in (lo..=hi).enumerate() {
            let share = n / k + u64::from((i as u64) < n % k);
            if share > 0 {
                *self.counts.entry((node, bin)).or_insert(0) += share;
            }
        }
    }
}

impl TrafficLog {
    /// An empty log with one [`Unavailability`] per fault of `cfg`, in the scenario's order.
    pub fn for_faults(cfg: &SimConfig) -> Self {
        TrafficLog {
            unavailability: (0..cfg.faults.len() as u32)
                .map(|fault| Unavailability {
                    fault,
                    all: None,
                    nodes: BTreeMap::new(),
                })
                .collect(),
            ..Default::default()
        }
    }

    /// Records failures seen on `node` from `first` to `last` (`conns` connections, `reqs`
    /// requests), charged to `fault` (from [`FaultCharging::fault_at`]; `None`: unattributed).
    pub fn record_failure(
        &mut self,
        fault: Option<u32>,
        node: u32,
        first: SimTime,
        last: SimTime,
        conns: u64,
        reqs: u64,
    ) {
        if let Some(series) = &mut self.failure_series {
            series.add(node, first, first, conns);
            series.add(node, first, last, reqs);
        }
        match fault.and_then(|f| self.unavailability.get_mut(f as usize)) {
            Some(u) => {
                FailureSpan::add(&mut u.all, first, last, conns, reqs);
                let mut span = u.nodes.get(&node).copied();
                FailureSpan::add(&mut span, first, last, conns, reqs);
                if let Some(s) = span {
                    u.nodes.insert(node, s);
                }
            }
            None => FailureSpan::add(&mut self.unattributed, first, last, conns, reqs),
        }
    }
}

/// Traffic state of a run.
pub(super) struct Traffic {
    /// Arrival times and client addresses: a stream of their own, so that two variants of a
    /// scenario (drain on and off, say) see the same clients at the same instants.
    arrivals_rng: ChaCha8Rng,
    /// Everything else: lifetimes, requests, CIDs.
    rng: ChaCha8Rng,
    /// Per (node, member): index of the drain in progress in `log.drains`.
    drain_record: Vec<Option<usize>>,
    /// Per node: index of the persisted-return record of its latest failback, while the node
    /// still routes to the master.
    persisted_return: Vec<Option<usize>>,
    arrival_generation: u32,
    rate: f64,
    serial: u64,
    /// Connections open over every node, and persistence entries (for the limits).
    open: u64,
    persistence_entries: u64,
    /// Per member: windows where its requests fail (hang, error status).
    request_fail_windows: [Vec<(SimTime, SimTime)>; 2],
    /// envoy: per (node, member), the generation of the request stream that feeds the node's
    /// passive side while the member's requests fail, and whether an event of it is pending.
    request_stream: Vec<[(u32, bool); 2]>,
    /// Which fault a failure at a given instant is charged to.
    charge: FaultCharging,
    pub(super) log: TrafficLog,
}

/// Whether clients' requests fail while a member answers `status` (4xx and 5xx do).
pub fn status_fails_requests(status: u16) -> bool {
    status >= 400
}

impl Traffic {
    pub(super) fn new(cfg: &SimConfig, seed: u64, trial: u64, series: bool) -> Self {
        let nodes = cfg.lb_nodes.max(1) as usize;
        let end = SimTime::ZERO + cfg.duration;
        let mut request_fail_windows: [Vec<(SimTime, SimTime)>; 2] = Default::default();
        for f in &cfg.faults {
            let until = f.until.unwrap_or(end);
            let fails_requests = match f.kind {
                FaultKind::Hang => true,
                FaultKind::HttpStatus { status, .. } => status_fails_requests(status),
                _ => false,
            };
            if fails_requests {
                request_fail_windows[f.member.index()].push((f.at, until));
            }
        }
        Traffic {
            arrivals_rng: rng::stream(seed, trial, Purpose::Arrivals),
            rng: rng::stream(seed, trial, Purpose::Traffic),
            drain_record: vec![None; nodes * 2],
            persisted_return: vec![None; nodes],
            arrival_generation: 0,
            rate: 0.0,
            serial: 0,
            open: 0,
            persistence_entries: 0,
            request_fail_windows,
            request_stream: vec![[(0, false); 2]; nodes],
            charge: FaultCharging::new(cfg),
            log: TrafficLog {
                failure_series: series.then(|| FailureSeries::new(cfg.duration)),
                ..TrafficLog::for_faults(cfg)
            },
        }
    }

    /// Charges failures on `node` between `first` and `last` to the fault they belong to.
    fn failure(&mut self, node: u32, first: SimTime, last: SimTime, conns: u64, reqs: u64) {
        let fault = self.charge.fault_at(first, node);
        self.log
            .record_failure(fault, node, first, last, conns, reqs);
    }
}

/// How long after a fault ends its failures are still its own: a probe in flight, then
/// `max_retries` successes (each up to `delay + timeout`), then the route update. Failures at
/// failback (sessions reset, QUIC connections cut) fall inside it.
/// Under a profile, the probe's bound and the interval are the profile's longest
/// (`Judging::longest`, `Rules::longest_interval`), rise and fall its own.
pub fn recovery_window(cfg: &SimConfig) -> SimDuration {
    let rules = cfg.rules();
    let t = rules.judging.longest();
    let per_probe = rules.longest_interval().0.saturating_add(t.0);
    SimDuration(
        t.0.saturating_add((rules.rise.max(rules.fall) as u64).saturating_mul(per_probe))
            .saturating_add(cfg.model.route_update_delay.0),
    )
}

/// Which fault a client failure at a given instant is charged to (the rule of the module docs),
/// for any driver that fills a [`TrafficLog`]: the engine, or the live one. A per-path fault is
/// charged only the failures of the LB nodes on its path: one chart per view
/// ([`crate::sim::paths::Views`]).
#[derive(Debug, Clone)]
pub struct FaultCharging {
    views: Vec<[Charging; 2]>,
    node_view: Vec<u32>,
}

impl FaultCharging {
    pub fn new(cfg: &SimConfig) -> Self {
        let end = SimTime::ZERO + cfg.duration;
        let grace = recovery_window(cfg);
        let views = crate::sim::paths::Views::new(cfg);
        FaultCharging {
            views: views
                .sees(cfg)
                .iter()
                .map(|sees| Role::BOTH.map(|r| Charging::new(cfg, r, end, grace, sees)))
                .collect(),
            node_view: views.node_views(cfg.lb_nodes),
        }
    }

    /// The fault a failure on LB node `node` at `t` is charged to: the master's, else the
    /// slave's, else none.
    pub fn fault_at(&self, t: SimTime, node: u32) -> Option<u32> {
        let v = &self.views[self.node_view.get(node as usize).copied().unwrap_or(0) as usize];
        v[Role::Master.index()]
            .at(t)
            .or_else(|| v[Role::Slave.index()].at(t))
    }
}

/// For one member: the fault a failure at each instant is charged to, as sorted breakpoints.
/// Between two breakpoints the answer is constant: the latest-started of the member's faults
/// whose span `[at, until + grace)` covers the instant. Built by one sweep over the faults'
/// edges, so a query is a binary search however many faults there are.
#[derive(Debug, Clone, Default)]
struct Charging {
    /// (from this instant on, the fault charged), sorted by instant.
    breaks: Vec<(SimTime, Option<u32>)>,
}

impl Charging {
    fn new(cfg: &SimConfig, member: Role, end: SimTime, grace: SimDuration, sees: &[bool]) -> Self {
        use std::collections::BinaryHeap;
        // (instant, is_start, fault): ends sort before starts at the same instant.
        let mut edges: Vec<(SimTime, bool, u32)> = Vec::new();
        for (i, f) in cfg.faults.iter().enumerate() {
            if f.member == member && sees[i] {
                let until = f.until.map_or(SimTime(u64::MAX), |u| u + grace).max(f.at);
                edges.push((f.at, true, i as u32));
                if until <= end {
                    edges.push((until, false, i as u32));
                }
            }
        }
        edges.sort();
        // Active faults by (start, index) in a max-heap, so the latest-started is on top; ended
        // ones are dropped lazily when they reach the top.
        let mut active: BinaryHeap<(SimTime, u32)> = BinaryHeap::new();
        let mut ended = vec![false; cfg.faults.len()];
        let mut breaks = Vec::new();
        let mut k = 0;
        while k < edges.len() {
            let t = edges[k].0;
            while k < edges.len() && edges[k].0 == t {
                let (_, start, i) = edges[k];
                if start {
                    active.push((cfg.faults[i as usize].at, i));
                } else {
                    ended[i as usize] = true;
                }
                k += 1;
            }
            while active.peek().is_some_and(|&(_, i)| ended[i as usize]) {
                active.pop();
            }
            let now = active.peek().map(|&(_, i)| i);
            if breaks.last().map(|&(_, f)| f) != Some(now) {
                breaks.push((t, now));
            }
        }
        Charging { breaks }
    }

    /// The fault a failure at `t` is charged to.
    fn at(&self, t: SimTime) -> Option<u32> {
        let n = self.breaks.partition_point(|&(at, _)| at <= t);
        if n == 0 {
            None
        } else {
            self.breaks[n - 1].1
        }
    }
}

/// `x` rounded up or down at random so that the mean is exact.
fn stochastic_round(x: f64, rng: &mut ChaCha8Rng) -> u64 {
    let floor = x.floor();
    floor as u64 + u64::from(rng.gen::<f64>() < x - floor)
}

/// Seconds of overlap between `[a, b)` and the windows, and the first and last instant of it.
fn overlap(windows: &[(SimTime, SimTime)], a: SimTime, b: SimTime) -> (f64, SimTime, SimTime) {
    let mut total = 0.0;
    let (mut first, mut last) = (SimTime(u64::MAX), SimTime::ZERO);
    for &(s, e) in windows {
        let (lo, hi) = (s.max(a), e.min(b));
        if hi > lo {
            total += hi.since(lo).as_secs_f64();
            first = first.min(lo);
            last = last.max(hi);
        }
    }
    (total, first, last)
}

/// Why a connection closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    Completed,
    Broken,
    Lb(LbClose),
    /// Still open when the run ended: its requests so far are counted.
    RunEnd,
}

impl Engine<'_> {
    fn traffic_cfg(&self) -> &TrafficConfig {
        // Only called from traffic events, which exist only when traffic is configured.
        self.cfg
            .traffic
            .as_ref()
            .expect("traffic events need a traffic config")
    }

    fn tr(&mut self) -> &mut Traffic {
        self.traffic
            .as_mut()
            .expect("traffic events need traffic state")
    }

    /// Schedules the rate steps (each schedules its arrivals).
    pub(super) fn start_traffic(&mut self) {
        let Some(t) = self.cfg.traffic.as_ref() else {
            return;
        };
        for (i, &(at, _)) in t.rate_steps.iter().enumerate() {
            self.queue.push(at, Event::RateStep { step: i as u32 });
        }
    }

    pub(super) fn on_rate_step(&mut self, now: SimTime, step: u32) {
        let rate = self.traffic_cfg().rate_steps[step as usize].1;
        let tr = self.tr();
        tr.rate = rate;
        // Poisson arrivals are memoryless: drawing the next gap afresh at the new rate is exact.
        tr.arrival_generation = tr.arrival_generation.wrapping_add(1);
        self.schedule_arrival(now);
    }

    fn schedule_arrival(&mut self, now: SimTime) {
        let tr = self.tr();
        if tr.rate <= 0.0 {
            return;
        }
        let u: f64 = tr.arrivals_rng.gen();
        let gap = SimDuration::from_secs_f64(-(1.0 - u).ln() / tr.rate);
        let generation = tr.arrival_generation;
        self.queue.push(now + gap, Event::Arrival { generation });
    }

    pub(super) fn on_arrival(&mut self, now: SimTime, generation: u32) {
        if self
            .traffic
            .as_ref()
            .is_none_or(|t| t.arrival_generation != generation)
        {
            return;
        }
        self.schedule_arrival(now);
        let cfg = self.cfg;
        let t = cfg.traffic.as_ref().expect("traffic");
        let nodes = cfg.lb_nodes.max(1);
        let tr = self.tr();
        tr.log.counters.bump(Counter::Connections);
        tr.serial += 1;
        let serial = tr.serial;
        let client = tr.arrivals_rng.gen_range(0..t.clients.max(1));
        let node = (rng::mix(client as u64) % nodes as u64) as u32;

        // QUIC: the client's first packets carry a random DCID (or, too short for the slice,
        // only the 4-tuple).
        let mut initial_key = None;
        if let Some(q) = &t.quic {
            let mut dcid = [0u8; MAX_CID_LEN];
            tr.rng.fill(&mut dcid[..]);
            initial_key = Some(quic::routing_key(
                &dcid[..q.shape.client_dcid_len as usize],
                &route_shape(q),
                quic::tuple(serial, 0, 0),
            ));
        }
        // envoy draws each connection's priority level (from its own stream).
        let hash = match (
            &mut self.passive_rng,
            self.nodes[node as usize].needs_route_draw(),
        ) {
            (Some(r), true) => r.gen::<u64>(),
            _ => 0,
        };
        let lb = &mut self.nodes[node as usize];
        let target = lb.target();
        let Some(routed) = lb.route_connection_hashed(now, client, initial_key, hash) else {
            let tr = self.tr();
            tr.log.counters.bump(Counter::NoBackend);
            tr.failure(node, now, now, 1, 0);
            return;
        };
        let member = routed.member;
        let tr = self.traffic.as_mut().expect("traffic");
        if routed.persisted_elsewhere {
            tr.log.counters.bump(Counter::PersistedElsewhere);
        }
        if routed.persisted_elsewhere
            && member == Role::Slave
            && target == crate::model::router::Target::Master
        {
            if let Some(i) = tr.persisted_return[node as usize] {
                let r = &mut tr.log.persisted_returns[i];
                r.last_to_slave = Some(now);
                r.connections += 1;
            }
        }
        if routed.new_persistence_entry {
            tr.persistence_entries += 1;
            if tr.persistence_entries > cfg.limits.max_persistence_entries {
                self.purge_persistence(now);
            }
        }

        // As for probes, a silent host answers nothing, not even a refusal.
        let path = node as usize * 2 + member.index();
        let cond = self.conditions[self.views.view_of(node) * 2 + member.index()];
        let failed = if cond.host_down {
            Some(Counter::TimedOut)
        } else if cond.crashed {
            // A UDP member's kernel answers with a port-unreachable only if its ICMP budget
            // allows (each client is a destination of its own, seen fresh: only the host-wide
            // bucket can refuse); otherwise the client meets silence.
            let udp = t.udp_idle_timeout.is_some();
            let kept = udp
                && self
                    .icmp
                    .as_mut()
                    .is_some_and(|icmp| !icmp[member.index()].allow(None, now));
            Some(if kept {
                Counter::TimedOut
            } else {
                Counter::Refused
            })
        } else if self.handshake_times_out(&cond, now, path) {
            Some(Counter::TimedOut)
        } else if t.tls && cond.tls_error {
            Some(Counter::TlsFailed)
        } else {
            None
        };
        if let Some(counter) = failed {
            self.nodes[node as usize].connect_failed(initial_key);
            let tr = self.tr();
            tr.log.counters.bump(counter);
            tr.failure(node, now, now, 1, 0);
            // envoy's passive side: a refused or failed connection is a 503 to outlier
            // detection, one that timed out a 504.
            let outcome = if counter == Counter::TimedOut {
                envoy::Outcome::Timeout
            } else {
                envoy::Outcome::ConnectFailed
            };
            self.client_outcome(now, node, member, outcome);
            if self.observe_l4 {
                self.observe_failed(now, node, member, counter);
            }
            return;
        }
        if self.observe_l4 {
            self.observe_connection(now, node, member, None);
        }

        let tr = self.tr();
        let life = match t.lifetime {
            Lifetime::Fixed(d) => d,
            Lifetime::Exponential(mean) => {
                let u: f64 = tr.rng.gen();
                SimDuration::from_secs_f64(-(1.0 - u).ln() * mean.as_secs_f64())
            }
        };
        let active_until = now + life;
        let conn = Conn {
            member,
            client,
            opened_at: now,
            active_until,
            serial,
        };
        let mut quic_keys = None;
        if let (Some(q), Some(k)) = (&t.quic, initial_key) {
            // The handshake: the member's first CID, whose slice the node learns.
            let mut random = [0u8; MAX_CID_LEN];
            tr.rng.fill(&mut random[..]);
            let mut cid = [0u8; MAX_CID_LEN];
            let n = quic::server_cid(&q.shape, member, &random, &mut cid);
            let key = quic::routing_key(&cid[..n], &route_shape(q), quic::tuple(serial, 0, 0));
            quic_keys = Some((k, key));
        }
        let k = &mut tr.log.counters;
        k.bump(Counter::Established);
        k.bump(match member {
            Role::Master => Counter::ToMaster,
            Role::Slave => Counter::ToSlave,
        });
        tr.open += 1;
        let open = tr.open;
        if open > k.get(Counter::PeakOpen) {
            k.set(Counter::PeakOpen, open);
        }
        let id = self.nodes[node as usize].open(conn, quic_keys);
        if open > cfg.limits.max_open_connections {
            self.stop(Stopped::Limit {
                kind: LimitKind::OpenConnections,
                limit: cfg.limits.max_open_connections,
                at: now,
            });
            return;
        }
        self.queue.push_wheel(
            ends_at(&conn, t.udp_idle_timeout),
            Event::ConnEnd { node, id },
        );
        self.start_requests(now, node, member);
        if let Some(q) = t.quic {
            // Further paths each get a CID the member issues later (NEW_CONNECTION_ID, which
            // the LB cannot read): their packets are routed by slice.
            for path in 1..q.paths {
                if !self.quic_new_cid(now, node, id, path) {
                    return;
                }
            }
            self.schedule_quic(now, node, id);
        }
    }

    /// Persistence entries passed their cap: purge expired ones everywhere; if the live ones
    /// alone are over the cap, the run stops.
    fn purge_persistence(&mut self, now: SimTime) {
        let purged: usize = self
            .nodes
            .iter_mut()
            .map(|n| n.purge_persistence(now))
            .sum();
        let limit = self.cfg.limits.max_persistence_entries;
        let tr = self.tr();
        tr.persistence_entries -= purged as u64;
        if tr.persistence_entries > limit {
            self.stop(Stopped::Limit {
                kind: LimitKind::PersistenceEntries,
                limit,
                at: now,
            });
        }
    }

    /// Whether a client's handshake to a member in this condition outlasts `connect_timeout`:
    /// a `slow` member's extra latency, or a `loss` fault dropping the SYN (or first flight) and
    /// every retransmission sent within the timeout (RTO 1 s, doubling: RFC 6298).
    /// With `[network.burst]`, each transmission is also lost with the loss of its path's
    /// state at the moment it is sent.
    fn handshake_times_out(&mut self, cond: &Condition, now: SimTime, path: usize) -> bool {
        let timeout = self.traffic_cfg().connect_timeout;
        if cond.extra_latency >= timeout {
            return true;
        }
        if self.burst.is_some() {
            return self.bursty_handshake_times_out(cond.loss, timeout, now, path);
        }
        if cond.loss <= 0.0 {
            return false;
        }
        let mut attempts = 0;
        let mut at = SimDuration::ZERO;
        let mut rto = SimDuration::from_secs(1);
        while at < timeout {
            attempts += 1;
            at = at + rto;
            rto = rto + rto;
        }
        self.tr().rng.gen::<f64>() < cond.loss.powi(attempts)
    }

    /// [`Self::handshake_times_out`] on a bursty path: every transmission (at 0, 1 s, 3 s, ...
    /// before `connect_timeout`) lost, each by the fault's loss or its path state's loss.
    fn bursty_handshake_times_out(
        &mut self,
        fault_loss: f64,
        timeout: SimDuration,
        now: SimTime,
        path: usize,
    ) -> bool {
        let mut at = SimDuration::ZERO;
        let mut rto = SimDuration::from_secs(1);
        while at < timeout {
            let burst = self
                .burst
                .as_mut()
                .map_or(0.0, |b| b.loss_at(path, now + at, now));
            let tr = self.tr();
            let lost = rng::chance(&mut tr.rng, fault_loss) || rng::chance(&mut tr.rng, burst);
            if !lost {
                return false;
            }
            at = at + rto;
            rto = rto + rto;
        }
        true
    }

    /// Schedules the next CID rotation and migration of a QUIC connection.
    fn schedule_quic(&mut self, now: SimTime, node: u32, id: ConnId) {
        self.schedule_quic_one(now, node, id, true);
        self.schedule_quic_one(now, node, id, false);
    }

    /// The client switches `path` of `id` to a new member-issued CID; the LB routes its next
    /// packet by the slice (or the tuple). Returns whether the connection survived.
    fn quic_new_cid(&mut self, now: SimTime, node: u32, id: ConnId, path: u8) -> bool {
        let q = self.traffic_cfg().quic.expect("quic");
        let lb = &self.nodes[node as usize];
        let Some(conn) = lb.conn(id) else {
            return false;
        };
        let migrations = lb.quic_paths(id).map_or(0, |p| p.migrations);
        let tr = self.tr();
        let mut random = [0u8; MAX_CID_LEN];
        tr.rng.fill(&mut random[..]);
        let mut cid = [0u8; MAX_CID_LEN];
        let n = quic::server_cid(&q.shape, conn.member, &random, &mut cid);
        let key = quic::routing_key(
            &cid[..n],
            &route_shape(&q),
            quic::tuple(conn.serial, path, migrations),
        );
        match self.nodes[node as usize].route_cid(id, path, key) {
            CidOutcome::Kept => true,
            CidOutcome::Gone => false,
            CidOutcome::Broken(c) => {
                // The packet reached a member that does not know the connection: stateless
                // reset.
                self.account_close(now, node, c, Close::Lb(LbClose::QuicCid));
                false
            }
        }
    }

    pub(super) fn on_quic_rotate(&mut self, now: SimTime, node: u32, id: ConnId, path: u8) {
        if self.quic_new_cid(now, node, id, path) {
            self.schedule_quic_one(now, node, id, true);
        }
    }

    pub(super) fn on_quic_migrate(&mut self, now: SimTime, node: u32, id: ConnId, path: u8) {
        if !self.nodes[node as usize].quic_migrated(id) {
            return;
        }
        // A migration also takes a new CID on the migrating path (RFC 9000 section 9.5).
        if self.quic_new_cid(now, node, id, path) {
            self.schedule_quic_one(now, node, id, false);
        }
    }

    /// Reschedules one of the two QUIC timers of a connection.
    fn schedule_quic_one(&mut self, now: SimTime, node: u32, id: ConnId, rotation: bool) {
        let q = self.traffic_cfg().quic.expect("quic");
        let mean = if rotation {
            q.cid_rotation
        } else {
            q.migration
        };
        let Some(mean) = mean else {
            return;
        };
        let tr = self.tr();
        let u: f64 = tr.rng.gen();
        let gap = SimDuration::from_secs_f64(-(1.0 - u).ln() * mean.as_secs_f64());
        let path = tr.rng.gen_range(0..q.paths.max(1));
        let at = now + gap;
        let idle = self.traffic_cfg().udp_idle_timeout;
        if self.nodes[node as usize]
            .conn(id)
            .is_some_and(|c| at < ends_at(&c, idle))
        {
            let ev = if rotation {
                Event::QuicRotate { node, id, path }
            } else {
                Event::QuicMigrate { node, id, path }
            };
            self.queue.push(at, ev);
        }
    }

    pub(super) fn on_conn_end(&mut self, now: SimTime, node: u32, id: ConnId) {
        self.close(now, node, id, Close::Completed);
    }

    /// Closes a connection the client or the world ended.
    fn close(&mut self, now: SimTime, node: u32, id: ConnId, why: Close) {
        let Some(c) = self.nodes[node as usize].close(id) else {
            return; // already closed: a stale timer
        };
        self.account_close(now, node, c, why);
    }

    /// Counts a closed connection's requests and why it closed.
    fn account_close(&mut self, now: SimTime, node: u32, c: Conn, why: Close) {
        let rps = self.traffic_cfg().requests_per_s;
        let tr = self.tr();
        debug_assert!(tr.open > 0, "closing more connections than were opened");
        tr.open -= 1;
        let active_end = now.min(c.active_until);
        let made = stochastic_round(
            active_end.since(c.opened_at).as_secs_f64() * rps,
            &mut tr.rng,
        );
        let (bad_s, bad_from, bad_to) = overlap(
            &tr.request_fail_windows[c.member.index()],
            c.opened_at,
            active_end,
        );
        let failed = stochastic_round(bad_s * rps, &mut tr.rng).min(made);
        let k = &mut tr.log.counters;
        k.add(Counter::Requests, made);
        k.add(Counter::RequestsFailed, failed);
        k.bump(match why {
            Close::Completed => Counter::Completed,
            Close::Broken => Counter::Broken,
            Close::Lb(LbClose::Drained) => Counter::Drained,
            Close::Lb(LbClose::ResetOnFailback) => Counter::ResetOnFailback,
            Close::Lb(LbClose::QuicCid) => Counter::QuicCidBroken,
            Close::RunEnd => Counter::OpenAtEnd,
        });
        if failed > 0 {
            tr.failure(node, bad_from, bad_to, 0, failed);
        }
        if matches!(
            why,
            Close::Broken | Close::Lb(LbClose::QuicCid) | Close::Lb(LbClose::ResetOnFailback)
        ) {
            tr.failure(node, now, now, 1, 0);
        }
    }

    /// A member really failed (crash, host_down, flap down): its open connections break.
    /// Only the nodes of `view` see it (a per-path fault breaks only its nodes' connections).
    pub(super) fn break_member(&mut self, now: SimTime, member: Role, view: u32) {
        if self.traffic.is_none() {
            return;
        }
        for node in 0..self.nodes.len() as u32 {
            if self.views.view_of(node) != view as usize {
                continue;
            }
            // Every one, in the group's order, without a copy of the group (millions, at scale).
            let mut closed = 0;
            while let Some(id) = self.nodes[node as usize].next_conn_on(member, closed) {
                closed += 1;
                // A UDP flow the client had finished, only lingering in the LB's table until its
                // idle timeout, is not a client's loss.
                let idle = self.nodes[node as usize]
                    .conn(id)
                    .is_some_and(|c| now >= c.active_until);
                let why = if idle {
                    Close::Completed
                } else {
                    Close::Broken
                };
                self.close(now, node, id, why);
            }
        }
    }

    /// The run is over: count the requests of the connections still open.
    pub(super) fn finish_traffic(&mut self, end: SimTime) {
        let timeout = self
            .cfg
            .traffic
            .as_ref()
            .and_then(|t| t.persistence)
            .unwrap_or(SimDuration::ZERO);
        let Some(tr) = self.traffic.as_mut() else {
            return;
        };
        for node in 0..self.nodes.len() as u32 {
            close_persisted_return(tr, node, end, timeout);
        }
        for node in 0..self.nodes.len() as u32 {
            for role in Role::BOTH {
                // As in `break_member`: no copy of what is open at the end, often the most.
                let mut closed = 0;
                while let Some(id) = self.nodes[node as usize].next_conn_on(role, closed) {
                    closed += 1;
                    self.close(end, node, id, Close::RunEnd);
                }
            }
        }
        debug_assert_eq!(self.traffic.as_ref().map_or(0, |t| t.open), 0);
    }

    /// The LB closed a connection (drain, failback reset).
    pub(super) fn on_lb_closed(&mut self, now: SimTime, node: u32, conn: Conn, why: LbClose) {
        self.account_close(now, node, conn, Close::Lb(why));
    }

    pub(super) fn on_drain_started(&mut self, now: SimTime, node: u32, role: Role) {
        let Some(tr) = self.traffic.as_mut() else {
            return;
        };
        tr.drain_record[node as usize * 2 + role.index()] = Some(tr.log.drains.len());
        tr.log.drains.push(DrainRecord {
            lb_node: node,
            member: role,
            started: now,
            closed: None,
            connections: 0,
        });
    }

    pub(super) fn on_drain_cancelled(&mut self, node: u32, role: Role) {
        if let Some(tr) = self.traffic.as_mut() {
            tr.drain_record[node as usize * 2 + role.index()] = None;
        }
    }

    pub(super) fn on_drain_ended(&mut self, now: SimTime, node: u32, role: Role, closed: u64) {
        let Some(tr) = self.traffic.as_mut() else {
            return;
        };
        if let Some(i) = tr.drain_record[node as usize * 2 + role.index()].take() {
            tr.log.drains[i].closed = Some(now);
            tr.log.drains[i].connections = closed;
        }
    }

    /// envoy: a client operation `node` routed to `member` ended with `outcome`; the node's
    /// passive side (outlier detection, the immediate-fail header) takes it in.
    fn client_outcome(&mut self, now: SimTime, node: u32, member: Role, outcome: envoy::Outcome) {
        if !self.nodes[node as usize].wants_client_outcomes() {
            return;
        }
        let Some(rng) = self.passive_rng.as_mut() else {
            return;
        };
        self.nodes[node as usize]
            .handle_client_outcome(now, member, outcome, &mut || rng.gen::<u64>());
        self.node_actions(now, node, super::NO_CAUSE);
    }

    /// haproxy `observe layer4`: a client connection `node` routed to `member` failed to open
    /// (`counter` says how). A refusal or a failed TLS handshake with the member is an error at
    /// once. A connection that met silence fails `timeout connect` later, when HAProxy's connect
    /// timer expires (`src/backend.c`, `back_handle_st_cer`), and is observed then; but only if
    /// the client is still waiting: a client that gives up first (`[traffic] connect_timeout`
    /// not longer than `timeout connect`) aborts HAProxy's attempt, which is then no server
    /// error (measured: `scripts/haproxy-observe.py`); never without `timeout connect`.
    #[cold]
    #[inline(never)]
    fn observe_failed(&mut self, now: SimTime, node: u32, member: Role, counter: Counter) {
        let error = match counter {
            Counter::TimedOut => {
                let observe = self.nodes[node as usize].config().observe;
                let patience = self.traffic_cfg().connect_timeout;
                let expires = observe.and_then(|o| o.timeout_connect);
                if let Some(after) = expires.filter(|&c| c < patience) {
                    let attempted_at = now;
                    self.queue.push(
                        now + after,
                        Event::ObservedTimeout {
                            node,
                            member,
                            attempted_at,
                        },
                    );
                }
                return;
            }
            Counter::TlsFailed => Reason::SslHandshakeError,
            _ => Reason::ConnectRefused,
        };
        self.observe_connection(now, node, member, Some((error, now)));
    }

    /// haproxy `observe layer4`: a client connection `node` routed to `member` opened (`error` is
    /// `None`) or failed to open: `error` is why, and when it was attempted. The node counts it;
    /// an `on-error` action's status change is logged like envoy's passive ones, with the
    /// attempt as its "probe" (faults are attributed by it), and its reschedule moves the
    /// member's check ([`Self::move_check`]). Out of line: only such runs come here.
    #[cold]
    #[inline(never)]
    pub(super) fn observe_connection(
        &mut self,
        now: SimTime,
        node: u32,
        member: Role,
        error: Option<(Reason, SimTime)>,
    ) {
        let moved = self.nodes[node as usize].handle_l4_outcome(now, member, error.map(|e| e.0));
        let Some((_, attempted_at)) = error else {
            return;
        };
        let logged = self.log.transitions.len();
        self.node_actions(now, node, super::NO_CAUSE);
        for x in &mut self.log.transitions[logged..] {
            x.probe_sent_at = attempted_at;
        }
        if let Some(at) = moved {
            self.move_check(now, node * 2 + member.index() as u32, at);
        }
    }

    /// haproxy `on-error` with `fastinter` set (`src/check.c`, `__health_adjust`): prober `slot`'s
    /// check task expires at `at` if that is sooner (`task_schedule` when `tick_is_lt(expire,
    /// task->expire)`). What the task waits for decides:
    /// - the next check (its `ProbeSend` event, or, where sends ride on verdicts, a verdict event
    ///   whose probe goes out after `now`) goes out at `at` instead;
    /// - the verdict of a check in progress that would come after `at`: the check is aborted at
    ///   `at` as a timeout (`process_chk_conn` wakes `expired`; `chk_report_conn_err`: L4TOUT while
    ///   connecting, L7TOUT once connected, i.e. RECV_RESPONSE_TIMEOUT when that check was
    ///   waiting for an answer, else CONNECT_TIMEOUT).
    ///
    /// A check that completes first is rescheduled from its completion (`process_chk_conn` sets
    /// the expiry afresh), so nothing moves; nor does a verdict held by a stall.
    #[cold]
    #[inline(never)]
    fn move_check(&mut self, now: SimTime, slot: u32, at: SimTime) {
        let found = self.queue.replace_first(
            |t, p| match Event::from(p) {
                Event::ProbeSend { slot: s } => s == slot && t > at,
                Event::ProbeVerdict {
                    slot: s, sent_at, ..
                } if s == slot => {
                    if sent_at > now {
                        sent_at > at
                    } else {
                        t > at
                    }
                }
                _ => false,
            },
            super::Packed::from(Event::Cancelled),
        );
        let Some((_, was)) = found else {
            return;
        };
        match Event::from(was) {
            Event::ProbeVerdict {
                sent_at,
                ok,
                reason,
                ..
            } => {
                self.pending_failures -= u32::from(!ok);
                if sent_at > now {
                    tracing::debug!(at = %now, slot, from = %sent_at, to = %at, "check moved (on-error)");
                    self.send_probe(at, slot);
                } else {
                    let reason = if reason == Some(Reason::RecvResponseTimeout) {
                        Reason::RecvResponseTimeout
                    } else {
                        Reason::ConnectTimeout
                    };
                    tracing::debug!(at = %now, slot, sent = %sent_at, abort = %at, "check in progress aborted (on-error)");
                    self.pending_failures += 1;
                    self.queue.push(
                        at,
                        Event::ProbeVerdict {
                            slot,
                            sent_at,
                            ok: false,
                            reason: Some(reason),
                            status: None,
                        },
                    );
                }
            }
            _ => {
                tracing::debug!(at = %now, slot, to = %at, "check moved (on-error)");
                self.queue.push(at, Event::ProbeSend { slot });
            }
        }
    }

    /// What a request to `member` meets now, when its answer fails in a way Envoy's passive
    /// side sees: no answer (`hang`, the router's timeout: a 504) or a failing status. `None`
    /// when requests succeed (or cannot be made: the member is down, its connections broke).
    fn request_outcome(&self, member: Role) -> Option<envoy::Outcome> {
        let c = self.conditions[member.index()];
        if c.is_down() {
            return None;
        }
        if c.hang {
            return Some(envoy::Outcome::RequestTimeout);
        }
        match c.http_status {
            Some((status, _)) if status_fails_requests(status) => {
                Some(envoy::Outcome::Status(status))
            }
            _ => None,
        }
    }

    /// envoy: starts `node`'s stream of requests to `member` if they fail and matter: each
    /// event is the next request its open connections send (a Poisson stream at
    /// open connections x `requests_per_s`), fed to the node's passive side. The stream stops
    /// when the member is ejected or out (more failures change nothing until it returns) and
    /// restarts on its return, on a new connection to it, and at a fault edge.
    pub(super) fn start_requests(&mut self, now: SimTime, node: u32, member: Role) {
        if self.traffic.is_none()
            || self.passive_rng.is_none()
            || !self.nodes[node as usize].wants_client_outcomes()
            || self.request_outcome(member).is_none()
        {
            return;
        }
        let (gen, pending) = self.tr().request_stream[node as usize][member.index()];
        if pending {
            return;
        }
        let open = self.nodes[node as usize].open_on(member) as f64;
        let rate = open * self.traffic_cfg().requests_per_s;
        if rate <= 0.0 {
            return;
        }
        let rng = self.passive_rng.as_mut().expect("envoy stream");
        let u: f64 = rng.gen();
        let gap = SimDuration::from_secs_f64(-(1.0 - u).ln() / rate);
        let generation = gen.wrapping_add(1);
        self.tr().request_stream[node as usize][member.index()] = (generation, true);
        self.queue.push(
            now + gap,
            Event::ClientRequest {
                node,
                member,
                generation,
            },
        );
    }

    /// A request of `node`'s stream to `member` (see [`Self::start_requests`]).
    pub(super) fn on_client_request(
        &mut self,
        now: SimTime,
        node: u32,
        member: Role,
        generation: u32,
    ) {
        let slot = &mut self.tr().request_stream[node as usize][member.index()];
        if slot.0 != generation || !slot.1 {
            return;
        }
        slot.1 = false;
        let Some(outcome) = self.request_outcome(member) else {
            // The failures are over: this request succeeds, which resets Envoy's streaks.
            self.client_outcome(now, node, member, envoy::Outcome::Status(200));
            return;
        };
        self.client_outcome(now, node, member, outcome);
        if self.nodes[node as usize].passive_sees(member) {
            self.start_requests(now, node, member);
        }
    }

    /// Restarts every node's request streams to `member` (a fault edge, a return).
    pub(super) fn restart_requests(&mut self, now: SimTime, member: Role) {
        // Only envoy's passive side sends requests of its own (`start_requests`).
        if self.traffic.is_none() || self.passive_rng.is_none() {
            return;
        }
        for node in 0..self.nodes.len() as u32 {
            self.start_requests(now, node, member);
        }
    }

    /// A route change on `node`: a failback opens a persisted-return record, any other change
    /// closes it.
    pub(super) fn on_route_change(&mut self, now: SimTime, node: u32, failback: bool) {
        let Some(tr) = self.traffic.as_mut() else {
            return;
        };
        let timeout = self
            .cfg
            .traffic
            .as_ref()
            .and_then(|t| t.persistence)
            .unwrap_or(SimDuration::ZERO);
        close_persisted_return(tr, node, now, timeout);
        if failback
            && self
                .cfg
                .traffic
                .as_ref()
                .is_some_and(|t| t.persistence.is_some())
        {
            tr.persisted_return[node as usize] = Some(tr.log.persisted_returns.len());
            tr.log.persisted_returns.push(PersistedReturn {
                lb_node: node,
                failback_at: now,
                last_to_slave: None,
                connections: 0,
                returned: true,
            });
        }
    }
}

/// Closes node `node`'s open persisted-return record at `now`: its clients all returned if the
/// last one's entry (`timeout` after it) expired by then.
fn close_persisted_return(tr: &mut Traffic, node: u32, now: SimTime, timeout: SimDuration) {
    if let Some(i) = tr.persisted_return[node as usize].take() {
        let r = &mut tr.log.persisted_returns[i];
        r.returned = r.last_to_slave.is_none_or(|l| l + timeout <= now);
    }
}

/// When connection `c` ends by itself: its lifetime, plus the pool's idle timeout for a UDP
/// flow (kept out of the connection's slot: it is the same for every connection of a run).
fn ends_at(c: &Conn, udp_idle_timeout: Option<SimDuration>) -> SimTime {
    c.active_until + udp_idle_timeout.unwrap_or(SimDuration::ZERO)
}

/// The slice the LB hashes, or none at all (4-tuple routing) without `QUIC_CID`.
fn route_shape(q: &crate::sim::config::QuicConfig) -> quic::CidShape {
    if q.cid_routing {
        q.shape
    } else {
        // An impossible slice: every DCID is "too short", so routing uses the 4-tuple.
        quic::CidShape {
            offset: MAX_CID_LEN as u8,
            len: 1,
            ..q.shape
        }
    }
}
