//! What the engine runs: a pool's health check, the model choices, the network and the faults.
//!
//! Built by `crate::scenario` from a scenario file (or directly by tests and benches); every
//! value is already checked and in engine units, so the engine itself has no error path.

use crate::model::health::ProbeSchedule;
use crate::model::probe::ProbeKind;
use crate::model::profile::{Judging, Monitor, Profile, Rules};
use crate::model::router::{AllDown, Failback, Role};
use crate::time::{SimDuration, SimTime};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The pool's health monitor in engine units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CheckConfig {
    pub kind: ProbeKind,
    pub delay: SimDuration,
    pub timeout: SimDuration,
    /// max_retries: consecutive successes that turn OFFLINE into ONLINE.
    pub rise: u32,
    /// max_retries_down: consecutive failures that turn ONLINE into OFFLINE.
    pub fall: u32,
}

impl CheckConfig {
    /// The monitor as the model's profiles take it.
    pub fn monitor(&self) -> Monitor {
        Monitor {
            kind: self.kind,
            delay: self.delay,
            timeout: self.timeout,
            rise: self.rise,
            fall: self.fall,
        }
    }
}

/// How members start (spec/model.md section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitialState {
    /// Steady state: every member ONLINE at time zero.
    Online,
    /// A fresh pool: members take no traffic until `max_retries` successes.
    Initial,
}

/// What happens to open connections on the slave when the master comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailbackSessions {
    Keep,
    Reset,
}

/// `failback_hold_down` when `failback = "hold_down"` does not set it.
pub const DEFAULT_HOLD_DOWN: SimDuration = SimDuration::from_secs(30);

/// The `[model]` choices the API leaves open; `Default` gives the documented defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelConfig {
    pub probe_schedule: ProbeSchedule,
    pub initial_state: InitialState,
    pub all_down: AllDown,
    pub failback: Failback,
    pub failback_sessions: FailbackSessions,
    pub route_update_delay: SimDuration,
    /// `failback = "hold_down"`: how long the master must stay ONLINE in a node's data plane
    /// before new connections return to it.
    pub failback_hold_down: SimDuration,
    /// Which process answers the health check on `monitor_port`.
    pub monitor_process: MonitorProcess,
    /// The data plane whose health-check rules apply (`[model] profile`, `--profile`).
    pub profile: Profile,
}

/// Who answers the health check on a separate `monitor_port` (`[model] monitor_process`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MonitorProcess {
    /// The service's own process also serves the check port: its faults fail the check.
    Same,
    /// Another process (a sidecar, an agent) serves the check port: faults of the service
    /// process (`crash`, `hang`, `http_status`, `tls_error`, `flap`) do not reach the check.
    Separate,
}

impl ModelConfig {
    /// The failback and all-down rules routing applies. Under envoy its priority levels decide
    /// (the scenario loader refuses the keys): a recovered master always takes the traffic
    /// back, and with both down the panic threshold fails open to both (reported as a fail-open
    /// to the master) or drops.
    pub fn routing(&self) -> (Failback, AllDown) {
        match self.profile {
            Profile::Envoy(o) => (
                Failback::Preemptive,
                if o.priority.healthy_panic_threshold > 0 && !o.priority.fail_traffic_on_panic {
                    AllDown::Master
                } else {
                    AllDown::Drop
                },
            ),
            _ => (self.failback, self.all_down),
        }
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            probe_schedule: ProbeSchedule::AfterCompletion,
            initial_state: InitialState::Online,
            all_down: AllDown::Drop,
            failback: Failback::Preemptive,
            failback_sessions: FailbackSessions::Keep,
            route_update_delay: SimDuration::ZERO,
            failback_hold_down: DEFAULT_HOLD_DOWN,
            monitor_process: MonitorProcess::Same,
            profile: Profile::Huawei,
        }
    }
}

/// The probe path's round trip with no fault.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rtt {
    Fixed(SimDuration),
    /// Log-normal with this median and 99th percentile.
    LogNormal {
        median: SimDuration,
        p99: SimDuration,
    },
}

/// The `[network]` section: background noise on the probe path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetworkConfig {
    pub rtt: Rtt,
    /// Probability that a probe or its answer is lost.
    pub loss: f64,
    /// Bursty loss on every (LB node, member) path (`[network.burst]`), for probes and clients.
    pub burst: Option<Burst>,
    /// The members' kernels rate-limit ICMP errors (`[network.icmp_ratelimit]`).
    pub icmp_ratelimit: Option<IcmpRateLimit>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            rtt: Rtt::Fixed(SimDuration::from_millis(1)),
            loss: 0.0,
            burst: None,
            icmp_ratelimit: None,
        }
    }
}

/// A Gilbert-Elliott loss channel in continuous time: each path alternates between a good and a
/// bad state, each lasting an exponential time with its mean, and loses each packet with the
/// state's probability.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Burst {
    pub mean_good: SimDuration,
    pub mean_bad: SimDuration,
    pub loss_good: f64,
    pub loss_bad: f64,
}

impl Burst {
    /// Long-run fraction of time in the bad state.
    pub fn bad_fraction(&self) -> f64 {
        let (g, b) = (self.mean_good.as_secs_f64(), self.mean_bad.as_secs_f64());
        if g + b <= 0.0 {
            0.0
        } else {
            b / (g + b)
        }
    }

    /// Long-run loss probability of one packet.
    pub fn mean_loss(&self) -> f64 {
        let pb = self.bad_fraction();
        pb * self.loss_bad + (1.0 - pb) * self.loss_good
    }
}

/// Linux's limits on ICMP errors, here on the port-unreachable a crashed UDP member sends
/// (`net/ipv4/icmp.c`: `icmp_global_allow`, then `icmpv4_xrlim_allow` ->
/// `inet_peer_xrlim_allow` in `net/ipv4/inetpeer.c`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IcmpRateLimit {
    /// `net.ipv4.icmp_ratelimit`: one message per this per destination (default 1000 ms).
    pub peer_interval: SimDuration,
    /// Per-destination burst, in messages (`XRLIM_BURST_FACTOR` = 6).
    pub peer_burst: u32,
    /// `net.ipv4.icmp_msgs_per_sec` (default 1000).
    pub global_per_s: u32,
    /// `net.ipv4.icmp_msgs_burst` (default 50).
    pub global_burst: u32,
    /// Every LB node probes from one address (one per-destination bucket for all), instead of
    /// each from its own.
    pub shared_source: bool,
}

impl Default for IcmpRateLimit {
    fn default() -> Self {
        IcmpRateLimit {
            peer_interval: SimDuration::from_secs(1),
            peer_burst: 6,
            global_per_s: 1000,
            global_burst: 50,
            shared_source: false,
        }
    }
}

/// An LB node's health checker pauses (CPU starvation, a GC pause, a control-plane restart)
/// from `at` until `until` (`[[stalls]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Stall {
    /// The LB nodes that stall.
    pub lb_nodes: Vec<u32>,
    pub at: SimTime,
    pub until: SimTime,
}

/// A fault kind with its parameters (spec/model.md section 3).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FaultKind {
    Crash,
    HostDown,
    Hang,
    /// The application answers `status`; `expected` is whether expected_codes accepts it.
    HttpStatus {
        status: u16,
        expected: bool,
    },
    Slow {
        latency: SimDuration,
    },
    Loss {
        probability: f64,
    },
    MonitorPortDown,
    TlsError,
    /// Alternates: crashed for `down` of each `period`, from the start of each period.
    Flap {
        period: SimDuration,
        down: f64,
    },
}

impl FaultKind {
    /// Every kind, with placeholder parameters: the one list of kinds that names and parsing
    /// derive from.
    pub const ALL: [FaultKind; 9] = [
        FaultKind::Crash,
        FaultKind::HostDown,
        FaultKind::Hang,
        FaultKind::HttpStatus {
            status: 0,
            expected: false,
        },
        FaultKind::Slow {
            latency: SimDuration::ZERO,
        },
        FaultKind::Loss { probability: 0.0 },
        FaultKind::MonitorPortDown,
        FaultKind::TlsError,
        FaultKind::Flap {
            period: SimDuration::ZERO,
            down: 0.0,
        },
    ];

    /// The kind's name in scenario files, reports and flags.
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Crash => "crash",
            FaultKind::HostDown => "host_down",
            FaultKind::Hang => "hang",
            FaultKind::HttpStatus { .. } => "http_status",
            FaultKind::Slow { .. } => "slow",
            FaultKind::Loss { .. } => "loss",
            FaultKind::MonitorPortDown => "monitor_port_down",
            FaultKind::TlsError => "tls_error",
            FaultKind::Flap { .. } => "flap",
        }
    }

    /// The kind named `name`, with placeholder parameters for the caller to fill.
    pub fn parse(name: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Every kind's name.
    pub fn names() -> [&'static str; 9] {
        FaultKind::ALL.map(|k| k.name())
    }

    /// The scenario keys this kind takes besides member, kind, at and until.
    pub fn param_keys(&self) -> &'static [&'static str] {
        match self {
            FaultKind::HttpStatus { .. } => &["status"],
            FaultKind::Slow { .. } => &["latency"],
            FaultKind::Loss { .. } => &["probability"],
            FaultKind::Flap { .. } => &["period", "down"],
            FaultKind::Crash
            | FaultKind::HostDown
            | FaultKind::Hang
            | FaultKind::MonitorPortDown
            | FaultKind::TlsError => &[],
        }
    }
}

/// One fault on one member from `at` until `until` (or the end of the run).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fault {
    pub member: Role,
    pub kind: FaultKind,
    pub at: SimTime,
    pub until: Option<SimTime>,
}

/// A member as reports name it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberLabel {
    pub role: Role,
    pub address: String,
    pub protocol_port: Option<u16>,
}

/// What one run may use at most (`[limits]` in a scenario; `docs/limits.md`). A run that reaches
/// a limit stops there with an error naming the limit and the key that raises it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Events one run may process.
    pub max_events: u64,
    /// Client connections open at once, over all LB nodes.
    pub max_open_connections: u64,
    /// SOURCE_IP persistence entries, over all LB nodes, after expired ones are purged.
    pub max_persistence_entries: u64,
    /// Status changes, route changes and (with `--timeline`) verdicts one run may log.
    pub max_log_entries: u64,
}

impl Limits {
    /// Hard ceilings: `[limits]` may raise a limit up to these, never beyond.
    pub const HARD: Limits = Limits {
        max_events: 20_000_000_000,
        max_open_connections: 20_000_000,
        max_persistence_entries: 50_000_000,
        max_log_entries: 50_000_000,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_events: 1_000_000_000,
            max_open_connections: 2_000_000,
            max_persistence_entries: 5_000_000,
            max_log_entries: 1_000_000,
        }
    }
}

/// Everything one run needs.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub check: CheckConfig,
    pub model: ModelConfig,
    pub network: NetworkConfig,
    pub faults: Vec<Fault>,
    pub duration: SimDuration,
    pub lb_nodes: u32,
    /// Master first, then slave.
    pub members: [MemberLabel; 2],
    /// Client traffic; `None` runs health checks only.
    pub traffic: Option<TrafficConfig>,
    /// Clients' connections carry TLS that a member's `tls_error` breaks (a TLS pool). Known
    /// without `[traffic]`, for the needless-failover rule.
    pub clients_use_tls: bool,
    pub limits: Limits,
    /// Per-path faults: fault index -> the LB nodes whose path to the member it is on. A fault
    /// not listed is seen by every node.
    pub fault_paths: BTreeMap<u32, Vec<u32>>,
    /// LB-node stalls.
    pub stalls: Vec<Stall>,
    /// Not a scenario key: `--step-every-probe` (simulate every probe, never coast; the same
    /// results, more work; see `crate::sim::engine`).
    pub step_every_probe: bool,
}

impl SimConfig {
    /// Whether fault `fault` is on LB node `node`'s path (every node, unless it is a per-path
    /// fault).
    #[inline]
    pub fn fault_visible(&self, fault: u32, node: u32) -> bool {
        self.fault_paths
            .get(&fault)
            .is_none_or(|nodes| nodes.binary_search(&node).is_ok())
    }

    /// The profile's rules for this pool's monitor. The scenario loader has checked that they
    /// apply (`Profile::rules` fails only on a setting no check value changes, such as a UDP
    /// monitor under haproxy), so a failure here is a `SimConfig` built around the loader.
    pub fn rules(&self) -> Rules {
        let fresh = self.model.initial_state == InitialState::Initial;
        self.model
            .profile
            .rules(&self.check.monitor(), self.model.probe_schedule, fresh)
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {} (a SimConfig must come from the scenario loader)",
                    e.key, e.message
                )
            })
    }

    /// How the profile judges a probe's phases (connect and read bounds).
    pub fn judging(&self) -> Judging {
        self.rules().judging
    }

    /// A pool with the given check and defaults elsewhere: one LB node, 10 minutes, no fault.
    pub fn with_check(check: CheckConfig) -> Self {
        let member = |role, address: &str| MemberLabel {
            role,
            address: address.to_string(),
            protocol_port: Some(80),
        };
        SimConfig {
            check,
            model: ModelConfig::default(),
            network: NetworkConfig::default(),
            faults: Vec::new(),
            duration: SimDuration::from_secs(600),
            lb_nodes: 1,
            members: [
                member(Role::Master, "192.168.0.10"),
                member(Role::Slave, "192.168.0.11"),
            ],
            traffic: None,
            clients_use_tls: false,
            limits: Limits::default(),
            fault_paths: BTreeMap::new(),
            stalls: Vec::new(),
            step_every_probe: false,
        }
    }
}

/// How long a client connection lives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lifetime {
    /// Exponential with this mean.
    Exponential(SimDuration),
    Fixed(SimDuration),
}

/// QUIC client behaviour (`[traffic.quic]`) and the pool's CID slice.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuicConfig {
    pub shape: crate::model::quic::CidShape,
    /// Route by the CID slice (`lb_algorithm = QUIC_CID`); otherwise by the 4-tuple.
    pub cid_routing: bool,
    /// Mean time between a connection's switches to a new CID (none: never).
    pub cid_rotation: Option<SimDuration>,
    /// Mean time between client address changes (none: never).
    pub migration: Option<SimDuration>,
    /// Paths per connection (multipath: one CID per path).
    pub paths: u8,
}

/// Client traffic (`[traffic]`) and the pool settings that act on it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficConfig {
    /// New connections per second from each instant on; the first step is at 0.
    pub rate_steps: Vec<(SimTime, f64)>,
    pub lifetime: Lifetime,
    /// Distinct client addresses.
    pub clients: u32,
    /// A client gives up on an unanswered connection after this.
    pub connect_timeout: SimDuration,
    pub requests_per_s: f64,
    /// UDP pool: flows, kept by the LB for `udp_idle_timeout` after their last packet.
    pub udp_idle_timeout: Option<SimDuration>,
    /// SOURCE_IP persistence timeout, when the pool sets session_persistence.
    pub persistence: Option<SimDuration>,
    /// connection_drain.timeout, when drain is enabled.
    pub drain: Option<SimDuration>,
    /// TLS pool: a `tls_error` fault fails new connections.
    pub tls: bool,
    /// any_port_enable: the backend port is the client's front port.
    pub any_port: bool,
    pub quic: Option<QuicConfig>,
}
