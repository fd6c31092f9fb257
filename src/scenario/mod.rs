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

use crate::api::pool::{MonitorType, Pool};
use crate::api::problem::Problem;
use crate::api::{self, CheckOptions};
use crate::model::probe::ProbeKind;
use crate::model::router::Role;
use crate::sim::config::{
    CheckConfig, Fault, FaultKind, MemberLabel, ModelConfig, NetworkConfig, Rtt, SimConfig,
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

    for (i, spanned) in f.faults.iter().enumerate() {
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
        problems.push(ScenarioError::at(
            path,
            src,
            Some(t.span().start),
            "traffic",
            "client traffic is not modelled in this version; remove [traffic] to run the health checks".to_string(),
        ));
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
        "monitor_port_down" => FaultKind::MonitorPortDown,
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
