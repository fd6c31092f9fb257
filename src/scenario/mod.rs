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
mod profiles;
mod sections;
mod traffic;

use crate::api::pool::{MonitorType, Pool};
use crate::api::problem::Problem;
use crate::api::types::CreateRequest;
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
    /// The request body as validated (command-line overrides applied), e.g. for `tune` to check
    /// each point's health check against the API's rules.
    pub request: CreateRequest,
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
    /// `--profile`: the data plane, winning over the scenario's `[model] profile`.
    pub profile: Option<crate::model::profile::ProfileName>,
    /// `--step-every-probe`: the engine simulates every probe (`SimConfig::step_every_probe`).
    pub step_every_probe: bool,
}

impl CheckOverrides {
    /// Each override as (body field, command-line flag, value).
    fn fields(&self) -> [(&'static str, &'static str, Option<u32>); 4] {
        [
            ("delay", "--delay", self.delay),
            ("timeout", "--timeout", self.timeout),
            ("max_retries", "--max-retries", self.max_retries),
            (
                "max_retries_down",
                "--max-retries-down",
                self.max_retries_down,
            ),
        ]
    }

    /// Writes the overrides into a body's `pool.healthmonitor` before it is validated, so they
    /// go through the API's rules like the body's own values (warnings, `--strict`). A body with
    /// no healthmonitor object is left alone: its own error says what is missing.
    fn apply_to(&self, body: &mut serde_json::Value) {
        let hm = body
            .get_mut("pool")
            .and_then(|p| p.get_mut("healthmonitor"))
            .and_then(|h| h.as_object_mut());
        if let Some(hm) = hm {
            for (field, _, value) in self.fields() {
                if let Some(v) = value {
                    hm.insert(field.into(), v.into());
                }
            }
        }
    }

    /// Adds to a problem about an overridden value which flag set it.
    fn annotate(&self, p: &mut Problem) {
        let flags: Vec<&str> = self
            .fields()
            .iter()
            .filter(|(field, _, v)| {
                v.is_some()
                    && (p.path == format!("pool.healthmonitor.{field}")
                        || (p.rule == "timeout-not-below-delay"
                            && matches!(*field, "delay" | "timeout")))
            })
            .map(|(_, flag, _)| *flag)
            .collect();
        if !flags.is_empty() {
            p.message.push_str(&format!(
                " (set on the command line by {})",
                flags.join(" and ")
            ));
        }
    }
}

/// Loads `path`, or the bundled example when `None`; `-` reads standard input.
pub fn load(path: Option<&Path>, strict: bool) -> Result<Scenario, ScenarioError> {
    load_with(path, strict, CheckOverrides::default())
}

/// [`load`] with command-line health-check overrides, written into the pool body before it is
/// validated.
pub fn load_with(
    path: Option<&Path>,
    strict: bool,
    overrides: CheckOverrides,
) -> Result<Scenario, ScenarioError> {
    let opts = PoolCheck { strict, overrides };
    let Some(path) = path else {
        return bare_body(
            Path::new("<bundled seed example>"),
            SEED_EXAMPLE_BODY.as_bytes(),
            opts,
            String::new(),
        );
    };
    let text = read_limited(path)?;
    let origin = path.display().to_string();
    let looks_json = path.extension().is_some_and(|e| e == "json")
        || text.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if looks_json {
        return bare_body(path, &text, opts, origin);
    }
    let src = String::from_utf8(text)
        .map_err(|_| ScenarioError::file(path, "is not UTF-8 text; a scenario is a TOML file"))?;
    from_toml(path, &src, opts, origin)
}

/// Loads a scenario from its text, as if read from the file `origin` (which names it in
/// problems and against which `body = "..."` is resolved): a TOML scenario, or a bare API body
/// when the text starts with `{`. The entry point of the scenario fuzz target.
pub fn load_str(origin: &Path, text: &str, strict: bool) -> Result<Scenario, ScenarioError> {
    load_str_with(origin, text, strict, CheckOverrides::default())
}

/// [`load_str`] with command-line overrides (health-check values, `--profile`).
pub fn load_str_with(
    origin: &Path,
    text: &str,
    strict: bool,
    overrides: CheckOverrides,
) -> Result<Scenario, ScenarioError> {
    let opts = PoolCheck { strict, overrides };
    let name = origin.display().to_string();
    if text.trim_start().starts_with('{') {
        return bare_body(origin, text.as_bytes(), opts, name);
    }
    from_toml(origin, text, opts, name)
}

/// How the pool body is checked: `--strict` and the command line's overrides.
#[derive(Debug, Clone, Copy, Default)]
struct PoolCheck {
    strict: bool,
    overrides: CheckOverrides,
}

/// A checked pool: typed, the request it came from, and its warnings.
type CheckedPool = (Pool, CreateRequest, Vec<Located>);

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
    opts: PoolCheck,
    origin: String,
) -> Result<Scenario, ScenarioError> {
    let (pool, request, warnings) = check_pool_json(path, bytes, opts)?;
    let mut sim = sim_config(&pool);
    // A bare body has no [model] table: the profile can only come from --profile.
    let model = file::ModelSection::default();
    let chosen = profiles::profile(&model, opts.overrides.profile)
        .and_then(|(p, _)| {
            profiles::check_applies(
                &p,
                &sim.check.monitor(),
                sim.model.probe_schedule,
                false,
                true,
            )
            .map(|()| p)
        })
        .map_err(|(key, msg)| ScenarioError::file(path, format!("{key}: {msg}")))?;
    sim.model.profile = chosen;
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
        request,
        warnings,
        sim,
    })
}

/// Validates a pool body file's bytes, with the overrides written in.
fn check_pool_json(
    file: &Path,
    bytes: &[u8],
    opts: PoolCheck,
) -> Result<CheckedPool, ScenarioError> {
    let mut body = api::parse_json(bytes)
        .map_err(|p| ScenarioError::from_api(file, None, std::slice::from_ref(&p)))?;
    opts.overrides.apply_to(&mut body);
    let checked = api::check_value(
        &body,
        CheckOptions {
            strict: opts.strict,
        },
    );
    finish_pool(file, None, checked, opts.overrides)
}

/// The typed pool and its warnings from a check; with `toml_src` (an inline `[pool]`) every
/// problem is located at its key in the TOML text.
fn finish_pool(
    file: &Path,
    toml_src: Option<&error::Source>,
    mut checked: api::Checked,
    overrides: CheckOverrides,
) -> Result<CheckedPool, ScenarioError> {
    for p in checked.errors.iter_mut().chain(checked.warnings.iter_mut()) {
        overrides.annotate(p);
    }
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
    Ok((pool, request, warnings))
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
    sim.clients_use_tls = traffic::clients_use_tls(pool);
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
    text: &str,
    opts: PoolCheck,
    origin: String,
) -> Result<Scenario, ScenarioError> {
    let f: ScenarioFile =
        toml::from_str(text).map_err(|e| ScenarioError::from_toml(path, text, &e))?;
    // Problems are located through one index of the file's keys, built on the first problem:
    // re-parsing the file per problem made thousands of problems take minutes.
    let src = error::Source::new(text);
    let key_at = |key: &str| src.locate(key);
    let err = |key: &str, msg: String| ScenarioError::at(path, &src, key_at(key), key, msg);

    // The pool: exactly one of `body` and `[pool]`.
    let (pool, request, mut warnings) = match (&f.body, &f.pool) {
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
            check_pool_json(&body_path, &bytes, opts)?
        }
        (None, Some(inline)) => {
            let mut non_finite = Vec::new();
            let mut json =
                serde_json::json!({ "pool": toml_to_json(inline, "pool", &mut non_finite) });
            opts.overrides.apply_to(&mut json);
            let mut checked = api::check_value(&json, CheckOptions { strict: opts.strict });
            if !non_finite.is_empty() {
                // JSON has no NaN or infinity, so the body would see null there and call the
                // field missing; say what is really wrong instead.
                checked.errors.retain(|p| !non_finite.iter().any(|(k, _)| *k == p.path));
                for (key, v) in non_finite.iter().rev() {
                    checked.errors.insert(
                        0,
                        Problem::new(
                            key.clone(),
                            "invalid-number",
                            format!(
                                "{v} is not a number the API accepts (a JSON body has no NaN or infinity); write a finite number"
                            ),
                        ),
                    );
                }
            }
            finish_pool(path, Some(&src), checked, opts.overrides)?
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

    match sections::model_config(&f.model) {
        Ok(m) => sim.model = m,
        Err((key, msg)) => problems.push(err(&key, msg)),
    }
    if sim.model.monitor_process == crate::sim::config::MonitorProcess::Separate {
        let hm_port = pool.healthmonitor.monitor_port;
        let separate = hm_port.is_some()
            && hm_port != pool.master.protocol_port
            && hm_port != pool.slave.protocol_port;
        if !separate {
            problems.push(err(
                "model.monitor_process",
                "\"separate\" needs a health check on its own port: set healthmonitor.monitor_port to a port other than the members' protocol_port (without it the check meets the service itself)".into(),
            ));
        }
    }
    let cli_profile = opts.overrides.profile;
    match profiles::profile(&f.model, cli_profile) {
        Ok((p, warns)) => {
            sim.model.profile = p;
            // Envoy's priority levels decide (`ModelConfig::routing`).
            (sim.model.failback, sim.model.all_down) = sim.model.routing();
            let fresh = sim.model.initial_state == crate::sim::config::InitialState::Initial;
            if let Err((key, msg)) = profiles::check_applies(
                &p,
                &sim.check.monitor(),
                sim.model.probe_schedule,
                fresh,
                cli_profile.is_some(),
            ) {
                problems.push(err(&key, msg));
            }
            let mut warns = warns;
            if let crate::model::profile::Profile::Haproxy(o) = p {
                if o.observe().is_some() && f.traffic.is_none() {
                    warns.push((
                        "model.haproxy.observe".into(),
                        "has no effect without [traffic]: observe layer4 judges members by \
                         client connections; add a [traffic] section"
                            .into(),
                    ));
                }
            }
            for (key, msg) in warns {
                let mut w = ScenarioError::at(path, &src, key_at(&key), &key, msg).problems;
                for l in &mut w {
                    l.rule = Some("no-effect".into());
                }
                warnings.extend(w);
            }
        }
        Err((key, msg)) => problems.push(err(&key, msg)),
    }
    match sections::network_config(&f.network) {
        Ok(n) => {
            if n.icmp_ratelimit.is_some() && sim.check.kind != ProbeKind::UdpConnect {
                problems.push(err(
                    "network.icmp_ratelimit",
                    format!(
                        "applies to UDP_CONNECT checks only (their failure signal is an ICMP port-unreachable); this pool's check is {:?}: remove it",
                        sim.check.kind
                    ),
                ));
            }
            sim.network = n
        }
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
        match faults::fault(spanned.get_ref(), &pool, sim.duration, sim.lb_nodes) {
            Ok((flt, path)) => {
                if let Some(nodes) = path {
                    sim.fault_paths.insert(sim.faults.len() as u32, nodes);
                }
                sim.faults.push(flt)
            }
            Err((key, msg)) => {
                let key = format!("faults[{i}].{key}");
                let at = key_at(&key).or(Some(spanned.span().start));
                problems.push(ScenarioError::at(path, &src, at, &key, msg));
            }
        }
    }
    if f.stalls.len() > MAX_FAULTS {
        problems.push(err(
            "stalls",
            format!(
                "has {} entries; at most {MAX_FAULTS} stalls fit in one scenario",
                f.stalls.len()
            ),
        ));
    }
    for (i, spanned) in f.stalls.iter().enumerate().take(MAX_FAULTS) {
        let st = spanned.get_ref();
        let checked = faults::node_list(&st.lb_node, sim.lb_nodes)
            .map_err(|m| ("lb_node", m))
            .and_then(|nodes| {
                if st.at.0 > sim.duration {
                    Err((
                        "at",
                        format!("{} is after the end of the run ({})", st.at.0, sim.duration),
                    ))
                } else if st.until.0 <= st.at.0 {
                    Err((
                        "until",
                        format!("{} must be after `at` ({})", st.until.0, st.at.0),
                    ))
                } else {
                    Ok(nodes)
                }
            });
        match checked {
            Ok(lb_nodes) => sim.stalls.push(crate::sim::config::Stall {
                lb_nodes,
                at: SimTime::ZERO + st.at.0,
                until: SimTime::ZERO + st.until.0,
            }),
            Err((key, msg)) => {
                let key = format!("stalls[{i}].{key}");
                let at = key_at(&key).or(Some(spanned.span().start));
                problems.push(ScenarioError::at(path, &src, at, &key, msg));
            }
        }
    }
    if let Some(t) = &f.traffic {
        match traffic::traffic_config(t.get_ref(), &pool, sim.duration, &sim.limits) {
            Ok(tc) => sim.traffic = Some(tc),
            Err((key, msg)) => {
                let at = key_at(&key).or(Some(t.span().start));
                problems.push(ScenarioError::at(path, &src, at, &key, msg));
            }
        }
    }

    if !problems.is_empty() {
        return Err(ScenarioError::capped(
            problems.into_iter().flat_map(|e| e.problems).collect(),
        ));
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
        request,
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

/// TOML values as the JSON the API reader expects. JSON has no NaN or infinity: such a float
/// becomes null, and its path (e.g. `pool.healthmonitor.delay`) and text go to `non_finite`.
fn toml_to_json(
    v: &toml::Value,
    path: &str,
    non_finite: &mut Vec<(String, String)>,
) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or_else(
            || {
                non_finite.push((path.to_string(), f.to_string()));
                J::Null
            },
            J::Number,
        ),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(a) => J::Array(
            a.iter()
                .enumerate()
                .map(|(i, x)| toml_to_json(x, &format!("{path}[{i}]"), non_finite))
                .collect(),
        ),
        toml::Value::Table(t) => J::Object(
            t.iter()
                .map(|(k, x)| {
                    (
                        k.clone(),
                        toml_to_json(x, &format!("{path}.{k}"), non_finite),
                    )
                })
                .collect(),
        ),
    }
}

/// A problem with one key: (key path, message).
type KeyError = (String, String);
