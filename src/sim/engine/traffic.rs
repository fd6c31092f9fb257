//! Client traffic in the engine: arrivals, routing, outcomes, drain, failback resets, QUIC CIDs
//! (spec/model.md sections 3-6).
//!
//! Each new connection arrives at the LB node its client address hashes to (ECMP on the source
//! address, so one client always meets the same node and that node's persistence table), is
//! routed by that node's router (or its SOURCE_IP persistence entry), and its fate follows the
//! *real* condition of the chosen member, not the health view: a crashed member refuses, a silent
//! one makes the client time out, a hung or erroring one accepts but fails requests.
//!
//! Requests are counted, not simulated one by one (30 requests per connection would multiply the
//! events by 30): a connection that was active for `L` seconds made `L * requests_per_s` requests
//! (rounded stochastically, one draw), and those falling in a window where its member hangs or
//! answers an error status failed.

use super::{Engine, Event};
use crate::model::connections::{Conn, ConnId, ConnTable};
use crate::model::health::Health;
use crate::model::persistence::PersistenceTable;
use crate::model::quic::{self, CidTable, MAX_CID_LEN, MAX_PATHS};
use crate::model::router::{Role, Target};
use crate::sim::config::{FaultKind, Lifetime, SimConfig, TrafficConfig};
use crate::sim::rng::{self, Purpose};
use crate::sim::time::{SimDuration, SimTime};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// What clients saw, over the whole run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TrafficCounters {
    /// New connections attempted.
    pub connections: u64,
    /// Attempts that got a working connection.
    pub established: u64,
    /// Connections that ended by themselves (lifetime over).
    pub completed: u64,
    /// Refused by the member (RST, or ICMP port unreachable for UDP): it crashed.
    pub refused: u64,
    /// Unanswered until `connect_timeout`: the member's host or path is silent.
    pub timed_out: u64,
    /// No member to send to: both OFFLINE with `all_down = "drop"`.
    pub no_backend: u64,
    /// TLS handshakes that failed (TLS pool, `tls_error`).
    pub tls_failed: u64,
    /// Open connections broken because their member really failed (crash, host_down, flap).
    pub broken: u64,
    /// Open connections closed by the LB at the end of a connection drain.
    pub drained: u64,
    /// Open connections on the slave closed at failback (`failback_sessions = "reset"`).
    pub reset_on_failback: u64,
    /// QUIC connections broken because a packet's CID slice was routed to another member.
    pub quic_cid_broken: u64,
    /// New connections that SOURCE_IP persistence sent to a member other than the node's choice
    /// (after a failback: persisted clients still on the slave).
    pub persisted_elsewhere: u64,
    /// Established connections per member.
    pub to_master: u64,
    pub to_slave: u64,
    /// Requests made on established connections.
    pub requests: u64,
    /// Requests that failed (member hung or answering an error status).
    pub requests_failed: u64,
    /// Most connections open at once.
    pub peak_open: u64,
    /// Connections still open when the run ended (their requests so far are counted).
    pub open_at_end: u64,
}

/// The unavailability clients saw around one fault on the master.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unavailability {
    pub fault: &'static str,
    pub fault_start_s: f64,
    /// The first connection attempt that failed (or the first open connection broken).
    pub first_failure_s: Option<f64>,
    /// The first connection that succeeded after that.
    pub first_success_s: Option<f64>,
    /// `first_success_s - first_failure_s`: the outage as clients saw it.
    pub window_s: Option<f64>,
    /// The last client failure before the next fault on the master (or the end), e.g. QUIC
    /// connections broken or sessions reset at failback.
    pub last_failure_s: Option<f64>,
    /// Failed attempts and connections closed on clients (broken, reset, QUIC CID) from this
    /// fault's start until the next fault on the master.
    pub failures: u64,
}

/// One connection drain: a member turned OFFLINE in one node's view with drain enabled.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrainRecord {
    pub lb_node: u32,
    pub member: Role,
    pub started_s: f64,
    /// When the LB closed what was still open (`started_s + connection_drain.timeout`); null when
    /// the member came back first and the drain was cancelled.
    pub closed_s: Option<f64>,
    /// Connections closed by this drain.
    pub connections: u64,
}

/// The traffic part of a run's log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrafficLog {
    pub counters: TrafficCounters,
    pub unavailability: Vec<Unavailability>,
    pub drains: Vec<DrainRecord>,
}

/// Traffic state of a run.
pub(super) struct Traffic {
    /// Arrival times and client addresses: a stream of their own, so that two variants of a
    /// scenario (drain on and off, say) see the same clients at the same instants.
    arrivals_rng: ChaCha8Rng,
    /// Everything else: lifetimes, requests, CIDs.
    rng: ChaCha8Rng,
    conns: ConnTable,
    persistence: Vec<PersistenceTable>,
    cids: Vec<CidTable>,
    /// Per (node, member): generation of the drain in progress, and its record index.
    drain_epoch: Vec<u32>,
    drain_record: Vec<Option<usize>>,
    arrival_generation: u32,
    rate: f64,
    serial: u64,
    /// Per member: windows where its requests fail (hang, error status).
    request_fail_windows: [Vec<(SimTime, SimTime)>; 2],
    /// Master faults in start order: (start, index in `unavailability`).
    master_faults: Vec<(SimTime, usize)>,
    pub(super) log: TrafficLog,
}

impl Traffic {
    pub(super) fn new(cfg: &SimConfig, t: &TrafficConfig, seed: u64, trial: u64) -> Self {
        let nodes = cfg.lb_nodes.max(1) as usize;
        let end = SimTime::ZERO + cfg.duration;
        let mut request_fail_windows: [Vec<(SimTime, SimTime)>; 2] = Default::default();
        let mut unavailability = Vec::new();
        let mut master_faults = Vec::new();
        for f in &cfg.faults {
            let until = f.until.unwrap_or(end);
            let fails_requests = match f.kind {
                FaultKind::Hang => true,
                FaultKind::HttpStatus { status, .. } => {
                    status >= 500 || (400..500).contains(&status)
                }
                _ => false,
            };
            if fails_requests {
                request_fail_windows[f.member.index()].push((f.at, until));
            }
            if f.member == Role::Master {
                master_faults.push((f.at, unavailability.len()));
                unavailability.push(Unavailability {
                    fault: f.kind.name(),
                    fault_start_s: f.at.as_secs_f64(),
                    first_failure_s: None,
                    first_success_s: None,
                    window_s: None,
                    last_failure_s: None,
                    failures: 0,
                });
            }
        }
        master_faults.sort_by_key(|&(at, i)| (at, i));
        let persistence_timeout = t.persistence.unwrap_or(SimDuration::ZERO);
        Traffic {
            arrivals_rng: rng::stream(seed, trial, Purpose::Arrivals),
            rng: rng::stream(seed, trial, Purpose::Traffic),
            conns: ConnTable::new(nodes),
            persistence: if t.persistence.is_some() {
                vec![PersistenceTable::new(t.clients as usize, persistence_timeout); nodes]
            } else {
                Vec::new()
            },
            cids: vec![CidTable::default(); nodes],
            drain_epoch: vec![0; nodes * 2],
            drain_record: vec![None; nodes * 2],
            arrival_generation: 0,
            rate: 0.0,
            serial: 0,
            request_fail_windows,
            master_faults,
            log: TrafficLog {
                unavailability,
                ..Default::default()
            },
        }
    }
}

/// `x` rounded up or down at random so that the mean is exact.
fn stochastic_round(x: f64, rng: &mut ChaCha8Rng) -> u64 {
    let floor = x.floor();
    floor as u64 + u64::from(rng.gen::<f64>() < x - floor)
}

/// Seconds of overlap between `[a, b)` and the windows.
fn overlap_s(windows: &[(SimTime, SimTime)], a: SimTime, b: SimTime) -> f64 {
    windows
        .iter()
        .map(|&(s, e)| e.min(b).since(s.max(a)).as_secs_f64())
        .sum()
}

/// Why a connection closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    Completed,
    Broken,
    Drained,
    ResetOnFailback,
    QuicCid,
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

    /// Schedules the first arrival and the rate steps.
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
        let tr = self.traffic.as_mut().expect("traffic");
        tr.rate = rate;
        // Poisson arrivals are memoryless: drawing the next gap afresh at the new rate is exact.
        tr.arrival_generation = tr.arrival_generation.wrapping_add(1);
        self.schedule_arrival(now);
    }

    fn schedule_arrival(&mut self, now: SimTime) {
        let tr = self.traffic.as_mut().expect("traffic");
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
        let tr = self.traffic.as_mut().expect("traffic");
        tr.log.counters.connections += 1;
        tr.serial += 1;
        let serial = tr.serial;
        let client = tr.arrivals_rng.gen_range(0..t.clients.max(1));
        let node = (rng::mix(client as u64) % nodes as u64) as u32;
        let router = &self.routers[node as usize];
        let target = router.target();

        // SOURCE_IP persistence first, if the remembered member is ONLINE in this node's view.
        let persisted = tr
            .persistence
            .get(node as usize)
            .and_then(|p| p.lookup(client, now))
            .filter(|&m| router.health(m) == Health::Online);
        let Some(mut member) = persisted.or(target.member()) else {
            tr.log.counters.no_backend += 1;
            self.client_failure(now);
            return;
        };
        // QUIC: the client's first packets carry a random DCID (or, too short for the slice,
        // only the 4-tuple); a slice value the node already knows goes where it went before.
        let mut initial_key = None;
        if let Some(q) = &t.quic {
            let mut dcid = [0u8; MAX_CID_LEN];
            tr.rng.fill(&mut dcid[..]);
            let key = quic::routing_key(
                &dcid[..q.shape.client_dcid_len as usize],
                &route_shape(q),
                quic::tuple(serial, 0, 0),
            );
            if let Some(m) = tr.cids[node as usize].route(key, Target::of(member)) {
                member = m;
            }
            initial_key = Some(key);
        }
        if persisted.is_some() && target.member() != Some(member) {
            tr.log.counters.persisted_elsewhere += 1;
        }
        if let Some(p) = tr.persistence.get_mut(node as usize) {
            p.touch(client, member, now);
        }

        let cond = self.conditions[member.index()];
        let timed_out = !cond.crashed && (cond.host_down || self.handshake_times_out(&cond));
        let tr = self.traffic.as_mut().expect("traffic");
        let k = &mut tr.log.counters;
        let failed = if cond.crashed {
            Some(&mut k.refused)
        } else if timed_out {
            Some(&mut k.timed_out)
        } else if t.tls && cond.tls_error {
            Some(&mut k.tls_failed)
        } else {
            None
        };
        if let Some(counter) = failed {
            *counter += 1;
            if let Some(key) = initial_key {
                tr.cids[node as usize].release(key);
            }
            return self.client_failure(now);
        }

        let tr = self.traffic.as_mut().expect("traffic");
        let life = match t.lifetime {
            Lifetime::Fixed(d) => d,
            Lifetime::Exponential(mean) => {
                let u: f64 = tr.rng.gen();
                SimDuration::from_secs_f64(-(1.0 - u).ln() * mean.as_secs_f64())
            }
        };
        let active_until = now + life;
        let ends_at = active_until + t.udp_idle_timeout.unwrap_or(SimDuration::ZERO);
        let mut conn = Conn {
            node,
            member,
            client,
            opened_at: now,
            active_until,
            ends_at,
            serial,
            quic_keys: [0; MAX_PATHS],
            quic_paths: 0,
            migrations: 0,
        };
        if let (Some(q), Some(k)) = (&t.quic, initial_key) {
            // The handshake: the member's first CID travels back through the LB in its SCID, so
            // the node learns that CID's slice for this member; the client's Initial DCID is
            // done with.
            let mut random = [0u8; MAX_CID_LEN];
            tr.rng.fill(&mut random[..]);
            let mut cid = [0u8; MAX_CID_LEN];
            let n = quic::server_cid(&q.shape, member, &random, &mut cid);
            let key = quic::routing_key(&cid[..n], &route_shape(q), quic::tuple(serial, 0, 0));
            tr.cids[node as usize].bind(key, member);
            tr.cids[node as usize].release(k);
            conn.quic_keys[0] = key;
            conn.quic_paths = 1;
        }
        tr.log.counters.established += 1;
        match member {
            Role::Master => tr.log.counters.to_master += 1,
            Role::Slave => tr.log.counters.to_slave += 1,
        }
        let id = tr.conns.open(conn);
        tr.log.counters.peak_open = tr.log.counters.peak_open.max(tr.conns.open_count() as u64);
        self.client_success(now);
        self.queue.push(ends_at, Event::ConnEnd { id });
        if let Some(q) = t.quic {
            // Further paths each get a CID the member issues later (NEW_CONNECTION_ID, which
            // the LB cannot read): their packets are routed by slice.
            for path in 1..q.paths {
                if !self.quic_new_cid(now, id, path) {
                    return;
                }
            }
            self.schedule_quic(now, id);
        }
    }

    /// Whether a client's handshake to a member in this condition outlasts `connect_timeout`:
    /// a `slow` member's extra latency, or a `loss` fault dropping the SYN (or first flight) and
    /// every retransmission sent within the timeout (RTO 1 s, doubling: RFC 6298).
    fn handshake_times_out(&mut self, cond: &crate::model::probe::Condition) -> bool {
        let timeout = self.traffic_cfg().connect_timeout;
        if cond.extra_latency >= timeout {
            return true;
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
        let tr = self.traffic.as_mut().expect("traffic");
        tr.rng.gen::<f64>() < cond.loss.powi(attempts)
    }

    /// Schedules the next CID rotation and migration of a QUIC connection.
    fn schedule_quic(&mut self, now: SimTime, id: ConnId) {
        self.schedule_quic_one(now, id, true);
        self.schedule_quic_one(now, id, false);
    }

    /// The client switches `path` of `id` to a new member-issued CID; the LB routes its next
    /// packet by the slice (or the tuple). Returns whether the connection survived.
    fn quic_new_cid(&mut self, now: SimTime, id: ConnId, path: u8) -> bool {
        let q = self.traffic_cfg().quic.expect("quic");
        let tr = self.traffic.as_mut().expect("traffic");
        let Some(conn) = tr.conns.get(id).copied() else {
            return false;
        };
        let mut random = [0u8; MAX_CID_LEN];
        tr.rng.fill(&mut random[..]);
        let mut cid = [0u8; MAX_CID_LEN];
        let n = quic::server_cid(&q.shape, conn.member, &random, &mut cid);
        let shape = route_shape(&q);
        let key = quic::routing_key(
            &cid[..n],
            &shape,
            quic::tuple(conn.serial, path, conn.migrations),
        );
        let node = conn.node as usize;
        let target = self.routers[node].target();
        let tr = self.traffic.as_mut().expect("traffic");
        let routed = tr.cids[node].route(key, target);
        if let Some(m) = routed {
            let c = tr.conns.get_mut(id).expect("open");
            let p = path as usize;
            if p < c.quic_paths as usize {
                tr.cids[node].release(c.quic_keys[p]);
            } else {
                c.quic_paths = (p + 1) as u8;
            }
            c.quic_keys[p] = key;
            if m == conn.member {
                return true;
            }
        }
        // The packet reached a member that does not know the connection: stateless reset.
        self.close(now, id, Close::QuicCid);
        false
    }

    pub(super) fn on_quic_rotate(&mut self, now: SimTime, id: ConnId, path: u8) {
        if self.quic_new_cid(now, id, path) {
            self.schedule_quic_one(now, id, true);
        }
    }

    pub(super) fn on_quic_migrate(&mut self, now: SimTime, id: ConnId, path: u8) {
        let tr = self.traffic.as_mut().expect("traffic");
        let Some(c) = tr.conns.get_mut(id) else {
            return;
        };
        c.migrations += 1;
        // A migration also takes a new CID on the migrating path (RFC 9000 section 9.5).
        if self.quic_new_cid(now, id, path) {
            self.schedule_quic_one(now, id, false);
        }
    }

    /// Reschedules one of the two QUIC timers of a connection.
    fn schedule_quic_one(&mut self, now: SimTime, id: ConnId, rotation: bool) {
        let q = self.traffic_cfg().quic.expect("quic");
        let mean = if rotation {
            q.cid_rotation
        } else {
            q.migration
        };
        let Some(mean) = mean else {
            return;
        };
        let tr = self.traffic.as_mut().expect("traffic");
        let u: f64 = tr.rng.gen();
        let gap = SimDuration::from_secs_f64(-(1.0 - u).ln() * mean.as_secs_f64());
        let path = tr.rng.gen_range(0..q.paths.max(1));
        let at = now + gap;
        if tr.conns.get(id).is_some_and(|c| at < c.ends_at) {
            let ev = if rotation {
                Event::QuicRotate { id, path }
            } else {
                Event::QuicMigrate { id, path }
            };
            self.queue.push(at, ev);
        }
    }

    pub(super) fn on_conn_end(&mut self, now: SimTime, id: ConnId) {
        self.close(now, id, Close::Completed);
    }

    /// Closes a connection, counting its requests and why it closed.
    fn close(&mut self, now: SimTime, id: ConnId, why: Close) {
        let rps = self.traffic_cfg().requests_per_s;
        let tr = self.traffic.as_mut().expect("traffic");
        let Some(c) = tr.conns.close(id) else {
            return; // already closed: a stale timer
        };
        for &key in &c.quic_keys[..c.quic_paths as usize] {
            tr.cids[c.node as usize].release(key);
        }
        let active_end = now.min(c.active_until);
        let made = stochastic_round(
            active_end.since(c.opened_at).as_secs_f64() * rps,
            &mut tr.rng,
        );
        let bad_s = overlap_s(
            &tr.request_fail_windows[c.member.index()],
            c.opened_at,
            active_end,
        );
        let failed = stochastic_round(bad_s * rps, &mut tr.rng).min(made);
        let k = &mut tr.log.counters;
        k.requests += made;
        k.requests_failed += failed;
        match why {
            Close::Completed => k.completed += 1,
            Close::Broken => k.broken += 1,
            Close::Drained => k.drained += 1,
            Close::ResetOnFailback => k.reset_on_failback += 1,
            Close::QuicCid => k.quic_cid_broken += 1,
            Close::RunEnd => k.open_at_end += 1,
        }
        if matches!(why, Close::Broken | Close::QuicCid | Close::ResetOnFailback) {
            self.client_failure(now);
        }
    }

    /// A member really failed (crash, host_down, flap down): its open connections break.
    pub(super) fn break_member(&mut self, now: SimTime, member: Role) {
        let Some(tr) = self.traffic.as_ref() else {
            return;
        };
        for id in tr.conns.on_member(member) {
            let tr = self.traffic.as_ref().expect("traffic");
            // A UDP flow the client had finished, only lingering in the LB's table until its
            // idle timeout, is not a client's loss.
            let idle = tr.conns.get(id).is_some_and(|c| now >= c.active_until);
            self.close(
                now,
                id,
                if idle {
                    Close::Completed
                } else {
                    Close::Broken
                },
            );
        }
    }

    /// The run is over: count the requests of the connections still open.
    pub(super) fn finish_traffic(&mut self, end: SimTime) {
        let Some(tr) = self.traffic.as_ref() else {
            return;
        };
        for id in tr.conns.all_open() {
            self.close(end, id, Close::RunEnd);
        }
    }

    /// The data plane of `node` learned that `role` is now `health`: drain starts or stops.
    pub(super) fn on_health_applied(
        &mut self,
        now: SimTime,
        node: u32,
        role: Role,
        health: Health,
    ) {
        let Some(drain) = self.cfg.traffic.as_ref().and_then(|t| t.drain) else {
            return;
        };
        let slot = node as usize * 2 + role.index();
        let tr = self.traffic.as_mut().expect("traffic");
        tr.drain_epoch[slot] = tr.drain_epoch[slot].wrapping_add(1);
        match health {
            Health::Offline => {
                tr.drain_record[slot] = Some(tr.log.drains.len());
                tr.log.drains.push(DrainRecord {
                    lb_node: node,
                    member: role,
                    started_s: now.as_secs_f64(),
                    closed_s: None,
                    connections: 0,
                });
                let epoch = tr.drain_epoch[slot];
                self.queue
                    .push(now + drain, Event::DrainDeadline { node, role, epoch });
            }
            // Back ONLINE inside the window: the bumped epoch cancels the pending deadline.
            Health::Online => tr.drain_record[slot] = None,
        }
    }

    pub(super) fn on_drain_deadline(&mut self, now: SimTime, node: u32, role: Role, epoch: u32) {
        let slot = node as usize * 2 + role.index();
        let tr = self.traffic.as_mut().expect("traffic");
        if tr.drain_epoch[slot] != epoch {
            return;
        }
        // The deadline is exactly `connection_drain.timeout` after the drain began.
        let drain = self.traffic_cfg().drain.unwrap_or(SimDuration::ZERO);
        let started = SimTime(now.0.saturating_sub(drain.0));
        let tr = self.traffic.as_ref().expect("traffic");
        let ids = tr.conns.group(node, role);
        let mut closed = 0;
        for id in ids {
            let tr = self.traffic.as_ref().expect("traffic");
            // Only what was open when the drain began; later ones (fail-open) are not drained.
            let before = tr.conns.get(id).is_some_and(|c| c.opened_at <= started);
            if before {
                self.close(now, id, Close::Drained);
                closed += 1;
            }
        }
        let tr = self.traffic.as_mut().expect("traffic");
        if let Some(i) = tr.drain_record[slot].take() {
            tr.log.drains[i].closed_s = Some(now.as_secs_f64());
            tr.log.drains[i].connections = closed;
        }
    }

    /// A route change on `node`: with `failback_sessions = "reset"`, a failback closes the
    /// connections still open on the slave.
    pub(super) fn on_route_change(&mut self, now: SimTime, node: u32, from: Target, to: Target) {
        let reset = self.cfg.model.failback_sessions == crate::sim::config::FailbackSessions::Reset;
        if !(reset && from == Target::Slave && to == Target::Master) {
            return;
        }
        let Some(tr) = self.traffic.as_ref() else {
            return;
        };
        for id in tr.conns.group(node, Role::Slave) {
            self.close(now, id, Close::ResetOnFailback);
        }
    }

    /// The master fault a client failure or success at `now` belongs to: the latest started.
    fn current_unavailability(&mut self, now: SimTime) -> Option<&mut Unavailability> {
        let tr = self.traffic.as_mut()?;
        let idx = tr
            .master_faults
            .iter()
            .rev()
            .find(|(at, _)| *at <= now)
            .map(|&(_, i)| i)?;
        Some(&mut tr.log.unavailability[idx])
    }

    fn client_failure(&mut self, now: SimTime) {
        if let Some(u) = self.current_unavailability(now) {
            u.failures += 1;
            u.first_failure_s.get_or_insert(now.as_secs_f64());
            u.last_failure_s = Some(now.as_secs_f64());
        }
    }

    fn client_success(&mut self, now: SimTime) {
        if let Some(u) = self.current_unavailability(now) {
            if let (Some(f), None) = (u.first_failure_s, u.first_success_s) {
                let s = now.as_secs_f64();
                u.first_success_s = Some(s);
                u.window_s = Some(s - f);
            }
        }
    }
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
