//! Scenario files: a pool body plus model choices, network noise, faults and traffic, turned into
//! a checked [`SimConfig`] (spec/scenario.md).
//!
//! Three sources: a TOML scenario (`body = "file.json"` or an inline `[pool]`), a bare API body
//! (a JSON file holding `{"pool": {...}}`: the master crashes at 60 s and is back at 180 s, over
//! 10 minutes), and the bundled example (that bare-body scenario on the seed page's own request).
//! The pool always goes through the API's validation: its errors stop the load, its warnings are
//! kept for the report. Every other problem names the file, the line and the key.

pub mod error;
pub mod file;

use crate::api::pool::{LbAlgorithm, MonitorType, Pool, Protocol};
use crate::api::problem::Problem;
use crate::api::{self, CheckOptions};
use crate::model::probe::ProbeKind;
use crate::model::quic;
use crate::model::router::Role;
use crate::sim::config::{
    CheckConfig, Fault, FaultKind, Lifetime, MemberLabel, ModelConfig, NetworkConfig, QuicConfig,
    Rtt, SimConfig, TrafficConfig,
};
use crate::sim::time::{SimDuration, SimTime};
use error::{located_api_problem, Located, ScenarioError};
use file::{DurSpec, FaultSection, ScenarioFile};
use std::path::{Path, PathBuf};

/// The seed page's own request example, bundled for `elbsim run` with no file.
pub const SEED_EXAMPLE_BODY: &str = include_str!("../../scenarios/bodies/seed-example.json");

/// Largest scenario file read (a scenario is a few kilobytes; this stops a wrong file early).
const MAX_SCENARIO_BYTES: u64 = 4 << 20;
/// Longest simulated run.
const MAX_DURATION: SimDuration = SimDuration::from_secs(366 * 86_400);
/// Most LB nodes.
const MAX_LB_NODES: i64 = 1024;
/// Most faults in one scenario (each fault edge rescans the faults of its member).
const MAX_FAULTS: usize = 10_000;
/// Default run length.
const DEFAULT_DURATION: SimDuration = SimDuration::from_secs(600);

/// A loaded, checked scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    /// How to name this scenario on a command line (a path, or empty for the bundled one).
    pub origin: String,
    /// The scenario's own seed, if it sets one.
    pub seed: Option<u64>,
    pub pool: Pool,
    /// API warnings about the pool (rules the seed page itself breaks).
    pub warnings: Vec<Located>,
    pub sim: SimConfig,
}

/// Health-check values given on the command line, overriding the pool body's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckOverrides {
    pub delay: Option<u32>,
    pub timeout: Option<u32>,
    pub max_retries: Option<u32>,
    pub max_retries_down: Option<u32>,
}

impl Scenario {
    /// Applies command-line overrides to both the pool and the engine's view of it.
    pub fn override_check(&mut self, o: CheckOverrides) {
        let hm = &mut self.pool.healthmonitor;
        if let Some(d) = o.delay {
            hm.delay_s = d;
            self.sim.check.delay = SimDuration::from_secs(d as u64);
        }
        if let Some(t) = o.timeout {
            hm.timeout_s = t;
            self.sim.check.timeout = SimDuration::from_secs(t as u64);
        }
        if let Some(r) = o.max_retries {
            hm.max_retries = r;
            self.sim.check.rise = r;
        }
        if let Some(f) = o.max_retries_down {
            hm.max_retries_down = f;
            self.sim.check.fall = f;
        }
    }
}

/// Loads `path`, or the bundled example when `None`; `-` reads standard input.
pub fn load(path: Option<&Path>, strict: bool) -> Result<Scenario, ScenarioError> {
    let Some(path) = path else {
        return bare_body(
            Path::new("<bundled seed example>"),
            SEED_EXAMPLE_BODY.as_bytes(),
            strict,
            String::new(),
        );
    };
    let text = read_limited(path)?;
    let origin = path.display().to_string();
    let looks_json = path.extension().is_some_and(|e| e == "json")
        || text.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if looks_json {
        return bare_body(path, &text, strict, origin);
    }
    let src = String::from_utf8(text)
        .map_err(|_| ScenarioError::file(path, "is not UTF-8 text; a scenario is a TOML file"))?;
    from_toml(path, &src, strict, origin)
}

/// Reads a file or standard input, refusing anything over [`MAX_SCENARIO_BYTES`].
fn read_limited(path: &Path) -> Result<Vec<u8>, ScenarioError> {
    use std::io::Read;
    let mut buf = Vec::new();
    let res = if path == Path::new("-") {
        std::io::stdin()
            .take(MAX_SCENARIO_BYTES + 1)
            .read_to_end(&mut buf)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(MAX_SCENARIO_BYTES + 1).read_to_end(&mut buf))
    };
    res.map_err(|e| ScenarioError::file(path, format!("cannot be read: {e}")))?;
    if buf.len() as u64 > MAX_SCENARIO_BYTES {
        return Err(ScenarioError::file(
            path,
            format!(
                "is larger than {} MiB; a scenario or body is a few kilobytes: check the file name",
                MAX_SCENARIO_BYTES >> 20
            ),
        ));
    }
    Ok(buf)
}

/// A bare API body: the master crashes at 60 s and is back at 180 s, over 10 minutes.
fn bare_body(
    path: &Path,
    bytes: &[u8],
    strict: bool,
    origin: String,
) -> Result<Scenario, ScenarioError> {
    let (pool, warnings, expected_codes) = check_pool_json(path, bytes, None, strict)?;
    let _ = expected_codes;
    let mut sim = sim_config(&pool);
    sim.faults.push(Fault {
        member: Role::Master,
        kind: FaultKind::Crash,
        at: SimTime::ZERO + SimDuration::from_secs(60),
        until: Some(SimTime::ZERO + SimDuration::from_secs(180)),
    });
    let name = format!(
        "{}: master crashes at 60s, back at 180s",
        pool.name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "pool".to_string())
    );
    Ok(Scenario {
        name,
        origin,
        seed: None,
        pool,
        warnings,
        sim,
    })
}

/// Validates a pool given as JSON bytes (a body file) or as a JSON value (inline `[pool]`).
fn check_pool_json(
    file: &Path,
    bytes: &[u8],
    toml_src: Option<&str>,
    strict: bool,
) -> Result<(Pool, Vec<Located>, String), ScenarioError> {
    let checked = api::check_bytes(bytes, CheckOptions { strict });
    finish_pool(file, toml_src, checked)
}

fn finish_pool(
    file: &Path,
    toml_src: Option<&str>,
    checked: api::Checked,
) -> Result<(Pool, Vec<Located>, String), ScenarioError> {
    if !checked.errors.is_empty() {
        return Err(ScenarioError::from_api(file, toml_src, &checked.errors));
    }
    let Some(request) = checked.request else {
        return Err(ScenarioError::file(file, "the pool body could not be read"));
    };
    let pool = Pool::from_request(&request)
        .map_err(|e: Vec<Problem>| ScenarioError::from_api(file, toml_src, &e))?;
    let warnings = checked
        .warnings
        .iter()
        .map(|w| located_api_problem(file, toml_src, w))
        .collect();
    let codes = pool.healthmonitor.expected_codes.to_string();
    Ok((pool, warnings, codes))
}

/// The engine's view of a pool, with defaults for everything else.
pub fn sim_config(pool: &Pool) -> SimConfig {
    let hm = &pool.healthmonitor;
    let mut sim = SimConfig::with_check(CheckConfig {
        kind: match hm.monitor_type {
            MonitorType::Tcp => ProbeKind::Tcp,
            MonitorType::UdpConnect => ProbeKind::UdpConnect,
            MonitorType::Http => ProbeKind::Http,
            MonitorType::Https => ProbeKind::Https,
        },
        delay: SimDuration::from_secs(hm.delay_s as u64),
        timeout: SimDuration::from_secs(hm.timeout_s as u64),
        rise: hm.max_retries,
        fall: hm.max_retries_down,
    });
    sim.members = [
        MemberLabel {
            role: Role::Master,
            address: pool.master.address.to_string(),
            protocol_port: pool.master.protocol_port,
        },
        MemberLabel {
            role: Role::Slave,
            address: pool.slave.address.to_string(),
            protocol_port: pool.slave.protocol_port,
        },
    ];
    sim
}

/// A TOML scenario.
fn from_toml(
    path: &Path,
    src: &str,
    strict: bool,
    origin: String,
) -> Result<Scenario, ScenarioError> {
    let f: ScenarioFile =
        toml::from_str(src).map_err(|e| ScenarioError::from_toml(path, src, &e))?;
    let key_at = |key: &str| error::locate(src, key);
    let err = |key: &str, msg: String| ScenarioError::at(path, src, key_at(key), key, msg);

    // The pool: exactly one of `body` and `[pool]`.
    let (pool, warnings) = match (&f.body, &f.pool) {
        (Some(_), Some(_)) => {
            return Err(err(
                "body",
                "give the pool either as `body = \"file.json\"` or as an inline [pool] table, not both".into(),
            ))
        }
        (None, None) => {
            return Err(ScenarioError::file(
                path,
                "has no pool: add `body = \"bodies/your-pool.json\"` (a JSON file holding {\"pool\": {...}}) or an inline [pool] table",
            ))
        }
        (Some(body), None) => {
            let body_path = resolve(path, body);
            let bytes = read_limited(&body_path).map_err(|mut e| {
                for p in &mut e.problems {
                    p.message = format!("{} (named by `body` in {})", p.message, path.display());
                }
                e
            })?;
            let (pool, w, _) = check_pool_json(&body_path, &bytes, None, strict)?;
            (pool, w)
        }
        (None, Some(inline)) => {
            let json = serde_json::json!({ "pool": toml_to_json(inline) });
            let checked = api::check_value(&json, CheckOptions { strict });
            let (pool, w, _) = finish_pool(path, Some(src), checked)?;
            (pool, w)
        }
    };

    let mut sim = sim_config(&pool);
    let mut problems: Vec<ScenarioError> = Vec::new();

    if let Some(d) = f.duration {
        if d.0 == SimDuration::ZERO || d.0 > MAX_DURATION {
            problems.push(err(
                "duration",
                format!("must be more than 0 and at most 366d, got {}", d.0),
            ));
        }
        sim.duration = d.0;
    } else {
        sim.duration = DEFAULT_DURATION;
    }
    if let Some(n) = f.lb_nodes {
        if !(1..=MAX_LB_NODES).contains(&n) {
            problems.push(err(
                "lb_nodes",
                format!("must be 1..{MAX_LB_NODES}, got {n}"),
            ));
        }
        sim.lb_nodes = n.clamp(1, MAX_LB_NODES) as u32;
    }

    sim.model = model_config(&f.model);
    match network_config(&f.network) {
        Ok(n) => sim.network = n,
        Err((key, msg)) => problems.push(err(&key, msg)),
    }

    if f.faults.len() > MAX_FAULTS {
        problems.push(err(
            "faults",
            format!(
                "has {} entries; at most {MAX_FAULTS} faults fit in one scenario",
                f.faults.len()
            ),
        ));
    }
    for (i, spanned) in f.faults.iter().enumerate().take(MAX_FAULTS) {
        match fault(spanned.get_ref(), &pool, sim.duration) {
            Ok(flt) => sim.faults.push(flt),
            Err((key, msg)) => {
                let key = format!("faults[{i}].{key}");
                let at = key_at(&key).or(Some(spanned.span().start));
                problems.push(ScenarioError::at(path, src, at, &key, msg));
            }
        }
    }
    if let Some(t) = &f.traffic {
        match traffic_config(t.get_ref(), &pool, sim.duration) {
            Ok(tc) => sim.traffic = Some(tc),
            Err((key, msg)) => {
                let at = key_at(&key).or(Some(t.span().start));
                problems.push(ScenarioError::at(path, src, at, &key, msg));
            }
        }
    }

    if !problems.is_empty() {
        return Err(ScenarioError {
            problems: problems.into_iter().flat_map(|e| e.problems).collect(),
        });
    }
    Ok(Scenario {
        name: f.name.clone().unwrap_or_else(|| {
            path.file_stem().map_or_else(
                || "scenario".to_string(),
                |s| s.to_string_lossy().into_owned(),
            )
        }),
        origin,
        seed: f.seed,
        pool,
        warnings,
        sim,
    })
}

/// `body` paths are relative to the scenario file.
fn resolve(scenario: &Path, body: &str) -> PathBuf {
    let p = Path::new(body);
    if p.is_absolute() || scenario == Path::new("-") {
        p.to_path_buf()
    } else {
        scenario.parent().unwrap_or(Path::new(".")).join(p)
    }
}

/// TOML values as the JSON the API reader expects.
fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(a) => J::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => J::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

fn model_config(m: &file::ModelSection) -> ModelConfig {
    let d = ModelConfig::default();
    ModelConfig {
        probe_schedule: m.probe_schedule.unwrap_or(d.probe_schedule),
        initial_state: m.initial_state.unwrap_or(d.initial_state),
        all_down: m.all_down.unwrap_or(d.all_down),
        failback: m.failback.unwrap_or(d.failback),
        failback_sessions: m.failback_sessions.unwrap_or(d.failback_sessions),
        route_update_delay: m.route_update_delay.map_or(d.route_update_delay, |x| x.0),
    }
}

type KeyError = (String, String);

fn network_config(n: &file::NetworkSection) -> Result<NetworkConfig, KeyError> {
    let mut out = NetworkConfig::default();
    if let Some(loss) = n.loss {
        if !(0.0..1.0).contains(&loss) {
            return Err((
                "network.loss".into(),
                format!("must be in [0, 1), got {loss}"),
            ));
        }
        out.loss = loss;
    }
    if let Some(spec) = &n.rtt {
        out.rtt = rtt(spec).map_err(|m| ("network.rtt".to_string(), m))?;
    }
    Ok(out)
}

fn rtt(spec: &DurSpec) -> Result<Rtt, String> {
    match spec {
        DurSpec { plain: Some(d), .. } => Ok(Rtt::Fixed(*d)),
        DurSpec {
            median: Some(m),
            p99: Some(p),
            fixed: None,
            mean: None,
            ..
        } => {
            if m.0 == 0 || p < m {
                Err(format!("needs 0 < median <= p99, got median {m}, p99 {p}"))
            } else {
                Ok(Rtt::LogNormal { median: *m, p99: *p })
            }
        }
        _ => Err("write a fixed RTT as \"1ms\" or a log-normal one as { median = \"1ms\", p99 = \"20ms\" }".into()),
    }
}

/// Most new connections per second (a bound, so a typo cannot exhaust memory).
const MAX_RATE: f64 = 1_000_000.0;
/// Most distinct clients.
const MAX_CLIENTS: i64 = 10_000_000;

fn traffic_config(
    t: &file::TrafficSection,
    pool: &Pool,
    duration: SimDuration,
) -> Result<TrafficConfig, KeyError> {
    let bad = |k: &str, m: String| Err((format!("traffic.{k}"), m));
    let check_rate = |k: &str, r: f64| -> Result<f64, KeyError> {
        if r.is_finite() && (0.0..=MAX_RATE).contains(&r) {
            Ok(r)
        } else {
            Err((
                format!("traffic.{k}"),
                format!("must be 0..{MAX_RATE} connections per second, got {r}"),
            ))
        }
    };
    if t.rate.is_none() && t.schedule.is_none() {
        return bad(
            "rate",
            "is required: new connections per second, e.g. rate = 200.0".into(),
        );
    }
    let mut rate_steps = vec![(SimTime::ZERO, check_rate("rate", t.rate.unwrap_or(0.0))?)];
    for (i, step) in t.schedule.iter().flatten().enumerate() {
        let r = check_rate(&format!("schedule[{i}].rate"), step.rate)?;
        let at = SimTime::ZERO + step.at.0;
        if at <= rate_steps.last().map_or(SimTime::ZERO, |s| s.0) && i > 0 || step.at.0 > duration {
            return bad(
                &format!("schedule[{i}].at"),
                format!(
                    "steps must be in increasing time within the run, got {}",
                    step.at.0
                ),
            );
        }
        if at == SimTime::ZERO {
            rate_steps[0].1 = r;
        } else {
            rate_steps.push((at, r));
        }
    }
    let lifetime = match &t.lifetime {
        None => Lifetime::Exponential(SimDuration::from_secs(30)),
        Some(DurSpec { plain: Some(d), .. })
        | Some(DurSpec {
            mean: Some(d),
            fixed: None,
            median: None,
            p99: None,
            ..
        }) => Lifetime::Exponential(*d),
        Some(DurSpec {
            fixed: Some(d),
            mean: None,
            median: None,
            p99: None,
            ..
        }) => Lifetime::Fixed(*d),
        Some(_) => {
            return bad(
                "lifetime",
                "write a mean lifetime as \"30s\" (exponential) or { fixed = \"30s\" }".into(),
            )
        }
    };
    if matches!(lifetime, Lifetime::Exponential(d) | Lifetime::Fixed(d) if d == SimDuration::ZERO) {
        return bad("lifetime", "must be more than 0".into());
    }
    let clients = t.clients.unwrap_or(1000);
    if !(1..=MAX_CLIENTS).contains(&clients) {
        return bad(
            "clients",
            format!("must be 1..{MAX_CLIENTS}, got {clients}"),
        );
    }
    let requests_per_s = t.requests_per_s.unwrap_or(1.0);
    if !(requests_per_s.is_finite() && (0.0..=10_000.0).contains(&requests_per_s)) {
        return bad(
            "requests_per_s",
            format!("must be 0..10000, got {requests_per_s}"),
        );
    }
    let udp = pool.protocol == Protocol::Udp;
    if t.udp_idle_timeout.is_some() && !udp {
        return bad(
            "udp_idle_timeout",
            format!("applies to UDP pools only; this pool is {}", pool.protocol),
        );
    }
    let quic = match (&t.quic, pool.protocol) {
        (Some(_), p) if p != Protocol::Quic => {
            return bad(
                "quic",
                format!("applies to QUIC pools only; this pool is {p}"),
            )
        }
        (q, Protocol::Quic) => Some(quic_config(q.as_ref(), pool)?),
        _ => None,
    };
    Ok(TrafficConfig {
        rate_steps,
        lifetime,
        clients: clients as u32,
        connect_timeout: t.connect_timeout.map_or(SimDuration::from_secs(3), |d| d.0),
        requests_per_s,
        udp_idle_timeout: udp.then(|| {
            t.udp_idle_timeout
                .map_or(SimDuration::from_secs(300), |d| d.0)
        }),
        persistence: pool
            .session_persistence
            .map(|p| SimDuration::from_secs(p.timeout_min as u64 * 60)),
        drain: pool
            .connection_drain_timeout_s
            .map(|s| SimDuration::from_secs(s as u64)),
        tls: pool.protocol == Protocol::Tls,
        any_port: pool.any_port_enable,
        quic,
    })
}

fn quic_config(q: Option<&file::QuicSection>, pool: &Pool) -> Result<QuicConfig, KeyError> {
    let default = file::QuicSection::default();
    let q = q.unwrap_or(&default);
    let bad = |k: &str, m: String| Err((format!("traffic.quic.{k}"), m));
    let int = |k: &str, v: Option<i64>, d: i64, lo: i64, hi: i64| -> Result<u8, KeyError> {
        let v = v.unwrap_or(d);
        if (lo..=hi).contains(&v) {
            Ok(v as u8)
        } else {
            Err((
                format!("traffic.quic.{k}"),
                format!("must be {lo}..{hi}, got {v}"),
            ))
        }
    };
    let max = quic::MAX_CID_LEN as i64;
    // RFC 9000 section 7.2: a client's first DCID is at least 8 bytes.
    let client_dcid_len = int("client_dcid_len", q.client_dcid_len, 8, 8, max)?;
    let server_cid_len = int("server_cid_len", q.server_cid_len, 8, 1, max)?;
    let server_id_len = int("server_id_len", q.server_id_len, 3, 0, max)?;
    if server_id_len as usize + 1 > server_cid_len as usize {
        return bad(
            "server_id_len",
            format!("{server_id_len} server-id bytes after the config octet do not fit in a {server_cid_len}-byte CID"),
        );
    }
    let paths = int("paths", q.paths, 1, 1, quic::MAX_PATHS as i64)?;
    // A mean time between events; "0s" turns the behaviour off.
    let mean_or_off = |d: Option<file::Dur>, default_s: u64| {
        let d = d.map_or(SimDuration::from_secs(default_s), |d| d.0);
        (d > SimDuration::ZERO).then_some(d)
    };
    Ok(QuicConfig {
        shape: quic::CidShape {
            client_dcid_len,
            server_cid_len,
            server_id_len,
            offset: pool.quic_cid.offset,
            len: pool.quic_cid.len,
        },
        cid_routing: pool.lb_algorithm == LbAlgorithm::QuicCid,
        cid_rotation: mean_or_off(q.cid_rotation, 20),
        migration: mean_or_off(q.migration, 60),
        paths,
    })
}

/// The nine fault kinds of spec/model.md section 3.
const FAULT_KINDS: [&str; 9] = [
    "crash",
    "host_down",
    "hang",
    "http_status",
    "slow",
    "loss",
    "monitor_port_down",
    "tls_error",
    "flap",
];

fn fault(s: &FaultSection, pool: &Pool, duration: SimDuration) -> Result<Fault, KeyError> {
    let bad = |k: &str, m: String| Err((k.to_string(), m));
    // Which kind-specific keys this kind takes; any other given key is an error.
    let takes: &[&str] = match s.kind.as_str() {
        "http_status" => &["status"],
        "slow" => &["latency"],
        "loss" => &["probability"],
        "flap" => &["period", "down"],
        k if FAULT_KINDS.contains(&k) => &[],
        other => {
            let hint = api::read::closest_field(other, &FAULT_KINDS)
                .map_or(String::new(), |k| format!("; did you mean \"{k}\"?"));
            return bad(
                "kind",
                format!(
                    "unknown fault kind \"{other}\": use one of {}{hint}",
                    FAULT_KINDS.join(", ")
                ),
            );
        }
    };
    let given = [
        ("status", s.status.is_some()),
        ("latency", s.latency.is_some()),
        ("probability", s.probability.is_some()),
        ("period", s.period.is_some()),
        ("down", s.down.is_some()),
    ];
    for (key, present) in given {
        if present && !takes.contains(&key) {
            return bad(
                key,
                format!("does not apply to kind \"{}\"; remove it", s.kind),
            );
        }
    }
    for key in takes {
        if !given.iter().any(|(k, p)| k == key && *p) {
            return bad(key, format!("is required for kind \"{}\"", s.kind));
        }
    }
    let kind = match s.kind.as_str() {
        "crash" => FaultKind::Crash,
        "host_down" => FaultKind::HostDown,
        "hang" => FaultKind::Hang,
        "monitor_port_down" => {
            let hm_port = pool.healthmonitor.monitor_port;
            let member_port = |m: &crate::api::pool::Member| m.protocol_port;
            let separate = hm_port.is_some()
                && hm_port != member_port(&pool.master)
                && hm_port != member_port(&pool.slave);
            if !separate {
                return bad(
                    "kind",
                    "monitor_port_down needs a health check on its own port: set healthmonitor.monitor_port to a port other than the members' protocol_port (without it the check port is the service port; use kind = \"crash\")".into(),
                );
            }
            FaultKind::MonitorPortDown
        }
        "tls_error" => FaultKind::TlsError,
        "http_status" => {
            let status = s.status.unwrap_or_default();
            if !(100..=599).contains(&status) {
                return bad(
                    "status",
                    format!("must be an HTTP status 100..599, got {status}"),
                );
            }
            let status = status as u16;
            FaultKind::HttpStatus {
                status,
                expected: pool.healthmonitor.expected_codes.matches(status),
            }
        }
        "slow" => FaultKind::Slow {
            latency: s.latency.map(|d| d.0).unwrap_or_default(),
        },
        "loss" => {
            let p = s.probability.unwrap_or_default();
            if !(p > 0.0 && p <= 1.0) {
                return bad("probability", format!("must be in (0, 1], got {p}"));
            }
            FaultKind::Loss { probability: p }
        }
        _ => {
            let period = s.period.map(|d| d.0).unwrap_or_default();
            let down = s.down.unwrap_or_default();
            if period == SimDuration::ZERO {
                return bad("period", "must be more than 0".into());
            }
            if !(0.0..=1.0).contains(&down) {
                return bad(
                    "down",
                    format!("is the fraction of each period spent down, in [0, 1]; got {down}"),
                );
            }
            FaultKind::Flap { period, down }
        }
    };
    if s.at.0 > duration {
        return bad(
            "at",
            format!("{} is after the end of the run ({duration})", s.at.0),
        );
    }
    if let Some(u) = s.until {
        if u.0 <= s.at.0 {
            return bad("until", format!("{} must be after `at` ({})", u.0, s.at.0));
        }
    }
    Ok(Fault {
        member: s.member,
        kind,
        at: SimTime::ZERO + s.at.0,
        until: s.until.map(|u| SimTime::ZERO + u.0),
    })
}
