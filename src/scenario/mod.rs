//! Scenario files: a pool body plus model choices, network noise, faults and traffic, turned into
//! a checked [`SimConfig`] (spec/scenario.md).
//!
//! Three sources: a TOML scenario (`body = "file.json"` or an inline `[pool]`), a bare API body
//! (a JSON file holding `{"pool": {...}}`: the master crashes at 60 s and is back at 180 s, over
//! 10 minutes), and the bundled example (that bare-body scenario on the seed page's own request).
//! The pool always goes through the API's validation: its errors stop the load, its warnings are
//! kept for the report. Every other problem names the file, the line and the key.

pub mod error;
mod faults;
pub mod file;
mod sections;
mod traffic;

use crate::api::pool::{MonitorType, Pool};
use crate::api::problem::Problem;
use crate::api::{self, CheckOptions};
use crate::model::probe::ProbeKind;
use crate::model::router::Role;
use crate::sim::config::{CheckConfig, Fault, FaultKind, MemberLabel, SimConfig};
use crate::sim::time::{SimDuration, SimTime};
use error::{located_api_problem, Located, ScenarioError};
use file::ScenarioFile;
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
    let (pool, warnings) = check_pool_json(path, bytes, strict)?;
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

/// Validates a pool body file's bytes.
fn check_pool_json(
    file: &Path,
    bytes: &[u8],
    strict: bool,
) -> Result<(Pool, Vec<Located>), ScenarioError> {
    finish_pool(file, None, api::check_bytes(bytes, CheckOptions { strict }))
}

/// The typed pool and its warnings from a check; with `toml_src` (an inline `[pool]`) every
/// problem is located at its key in the TOML text.
fn finish_pool(
    file: &Path,
    toml_src: Option<&str>,
    checked: api::Checked,
) -> Result<(Pool, Vec<Located>), ScenarioError> {
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
    Ok((pool, warnings))
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
    sim.clients_use_tls = pool.protocol == crate::api::pool::Protocol::Tls;
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
            let (pool, w) = check_pool_json(&body_path, &bytes, strict)?;
            (pool, w)
        }
        (None, Some(inline)) => {
            let json = serde_json::json!({ "pool": toml_to_json(inline) });
            let checked = api::check_value(&json, CheckOptions { strict });
            let (pool, w) = finish_pool(path, Some(src), checked)?;
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

    sim.model = sections::model_config(&f.model);
    match sections::network_config(&f.network) {
        Ok(n) => sim.network = n,
        Err((key, msg)) => problems.push(err(&key, msg)),
    }

    match sections::limits(&f.limits) {
        Ok(l) => sim.limits = l,
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
        match faults::fault(spanned.get_ref(), &pool, sim.duration) {
            Ok(flt) => sim.faults.push(flt),
            Err((key, msg)) => {
                let key = format!("faults[{i}].{key}");
                let at = key_at(&key).or(Some(spanned.span().start));
                problems.push(ScenarioError::at(path, src, at, &key, msg));
            }
        }
    }
    if let Some(t) = &f.traffic {
        match traffic::traffic_config(t.get_ref(), &pool, sim.duration, &sim.limits) {
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

/// A problem with one key: (key path, message).
type KeyError = (String, String);
