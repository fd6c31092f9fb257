//! `[model] profile` and its option tables (`[model.haproxy]`, `[model.keepalived]`) into a
//! `model::profile::Profile`, with `--profile` winning over the file.
//!
//! Every profile's table may be present whatever the chosen profile (so that one scenario
//! serves `elbsim compare`); only the chosen profile's table is read. Unknown keys are refused
//! by serde (with the closest known key, `super::error`); values are checked here, each error
//! naming its key.

use super::file::{Dur, EnvoySection, HaproxySection, KeepalivedSection, ModelSection};
use super::KeyError;
use crate::model::health::ProbeSchedule;
use crate::model::profile::{envoy, haproxy, keepalived, Monitor, Profile, ProfileName};
use crate::time::SimDuration;

/// A warning about a profile option: (key, message).
pub(super) type KeyWarning = (String, String);

/// The profile a scenario runs under: `cli` (from `--profile`) wins over `[model] profile`;
/// the default is huawei. Returns it with the warnings its options draw.
pub(super) fn profile(
    m: &ModelSection,
    cli: Option<ProfileName>,
) -> Result<(Profile, Vec<KeyWarning>), KeyError> {
    let name = cli.or(m.profile).unwrap_or_default();
    let by = if cli.is_some() {
        " (chosen on the command line by --profile)"
    } else {
        ""
    };
    let mut warnings = Vec::new();
    let p = match name {
        ProfileName::Huawei => Profile::Huawei,
        ProfileName::Haproxy => {
            let o = haproxy_options(m.haproxy.as_ref())?;
            if o.slowstart.0 > 0 {
                warnings.push((
                    "model.haproxy.slowstart".to_string(),
                    "slowstart changes no route in a master/slave pool: a server coming UP gets \
                     weight at least 1 at once (HAProxy src/server.c server_recalc_eweight), and \
                     with one active server and one backup any weight above 0 takes every new \
                     connection"
                        .to_string(),
                ));
            }
            if o.observe == haproxy::ObserveMode::None {
                let s = m.haproxy.as_ref();
                for (key, set) in [
                    ("error_limit", s.is_some_and(|s| s.error_limit.is_some())),
                    ("on_error", s.is_some_and(|s| s.on_error.is_some())),
                ] {
                    if set {
                        warnings.push((
                            format!("model.haproxy.{key}"),
                            "has no effect without observe = \"layer4\": HAProxy's error-limit \
                             and on-error act on observed client errors (src/check.c \
                             __health_adjust); add observe = \"layer4\" or remove the key"
                                .to_string(),
                        ));
                    }
                }
            }
            Profile::Haproxy(o)
        }
        ProfileName::Keepalived => Profile::Keepalived(keepalived_options(m.keepalived.as_ref())?),
        ProfileName::Envoy => {
            // Envoy's priority levels decide both: a recovered priority 0 takes its traffic
            // back at once, and with both down the panic threshold decides.
            if m.failback == Some(crate::model::router::Failback::Sticky) {
                return Err((
                    "model.failback".into(),
                    format!(
                        "\"sticky\" does not apply to profile envoy{by}: Envoy sends traffic to \
                         the highest priority level with healthy hosts, so a recovered master \
                         takes it back at once; remove the key (or use \"preemptive\")"
                    ),
                ));
            }
            if m.all_down.is_some() {
                return Err((
                    "model.all_down".into(),
                    format!(
                        "does not apply to profile envoy{by}: with both members down Envoy's \
                         panic threshold decides (model.envoy.healthy_panic_threshold, default \
                         50: half the traffic to each; 0: none); remove the key"
                    ),
                ));
            }
            let (o, w) = envoy_options(m.envoy.as_ref())?;
            warnings.extend(w);
            Profile::Envoy(o)
        }
    };
    Ok((p, warnings))
}

/// Checks that `profile` applies to the pool's monitor and schedule (e.g. no UDP check under
/// haproxy); the key of the problem and its message.
pub(super) fn check_applies(
    profile: &Profile,
    monitor: &Monitor,
    schedule: ProbeSchedule,
    fresh: bool,
    cli: bool,
) -> Result<(), KeyError> {
    profile
        .rules(monitor, schedule, fresh)
        .map(|_| ())
        .map_err(|e| {
            let by = if cli && e.key == "model.profile" {
                " (profile chosen on the command line by --profile)"
            } else {
                ""
            };
            (e.key, format!("{}{by}", e.message))
        })
}

fn haproxy_options(s: Option<&HaproxySection>) -> Result<haproxy::Options, KeyError> {
    let d = haproxy::Options::default();
    let Some(s) = s else { return Ok(d) };
    let spread = match s.spread_checks {
        None => 0,
        Some(v) if (0..=50).contains(&v) => v as u32,
        Some(v) => {
            return Err((
                "model.haproxy.spread_checks".into(),
                format!("must be 0..50 (a percentage; HAProxy's own limit), got {v}"),
            ))
        }
    };
    for (key, v) in [("fastinter", s.fastinter), ("downinter", s.downinter)] {
        if v.is_some_and(|d| d.0 .0 == 0) {
            return Err((
                format!("model.haproxy.{key}"),
                "must be more than 0 (HAProxy refuses a zero interval); leave it out to use the pool's delay".into(),
            ));
        }
    }
    let observe = match s.observe.as_deref() {
        None | Some("none") => haproxy::ObserveMode::None,
        Some("layer4") => haproxy::ObserveMode::Layer4,
        Some("layer7") => {
            return Err((
                "model.haproxy.observe".into(),
                "\"layer7\" is not modelled, only \"layer4\" is: elbsim counts client \
                 connections, not the HTTP responses HAProxy's layer7 mode judges \
                 (src/http_ana.c); use \"layer4\" (connections that fail to open are errors) \
                 or \"none\""
                    .into(),
            ))
        }
        Some(v) => {
            return Err((
                "model.haproxy.observe".into(),
                format!("must be \"none\" or \"layer4\" (HAProxy's observe modes), got {v:?}"),
            ))
        }
    };
    let error_limit = match s.error_limit {
        None => d.error_limit,
        Some(v) if (1..=1_000_000).contains(&v) => v as u32,
        Some(v) => {
            return Err((
                "model.haproxy.error_limit".into(),
                format!(
                    "must be 1..1000000 (consecutive client errors that run on_error; HAProxy \
                     refuses 0: \"error-limit has to be > 0\"), got {v}; leave it out for \
                     HAProxy's default, 10"
                ),
            ))
        }
    };
    let on_error = match s.on_error.as_deref() {
        None => d.on_error,
        Some(v) => haproxy::OnError::parse(v).ok_or_else(|| {
            (
                "model.haproxy.on_error".to_string(),
                format!(
                    "must be one of {} (HAProxy's on-error modes), got {v:?}",
                    haproxy::OnError::ALL
                        .map(|m| format!("\"{}\"", m.as_str()))
                        .join(", ")
                ),
            )
        })?,
    };
    Ok(haproxy::Options {
        observe,
        error_limit,
        on_error,
        timeout_connect: s.timeout_connect.map_or(d.timeout_connect, |t| t.0),
        fastinter: s.fastinter.map(|x| x.0),
        downinter: s.downinter.map(|x| x.0),
        spread_checks: spread,
        on_marked_down_shutdown_sessions: s
            .on_marked_down_shutdown_sessions
            .unwrap_or(d.on_marked_down_shutdown_sessions),
        slowstart: s.slowstart.map_or(d.slowstart, |x| x.0),
    })
}

fn keepalived_options(s: Option<&KeepalivedSection>) -> Result<keepalived::Options, KeyError> {
    let d = keepalived::Options::default();
    let Some(s) = s else { return Ok(d) };
    let retry = match s.retry {
        None => None,
        Some(v) if (0..=100).contains(&v) => Some(v as u32),
        Some(v) => {
            return Err((
                "model.keepalived.retry".into(),
                format!("must be 0..100 (failures retried before the one that marks a server down), got {v}"),
            ))
        }
    };
    if s.delay_before_retry.is_some_and(|d| d.0 .0 == 0) {
        return Err((
            "model.keepalived.delay_before_retry".into(),
            "must be more than 0; leave it out for keepalived's default (1s, 3s for HTTP_GET)"
                .into(),
        ));
    }
    Ok(keepalived::Options {
        retry,
        delay_before_retry: s.delay_before_retry.map(|x| x.0),
        alpha: s.alpha.unwrap_or(d.alpha),
        inhibit_on_failure: s.inhibit_on_failure.unwrap_or(d.inhibit_on_failure),
    })
}

fn whole_ms(key: &str, d: Dur, positive: bool) -> Result<SimDuration, KeyError> {
    let ms = SimDuration::from_millis(1).0;
    if !d.0 .0.is_multiple_of(ms) {
        return Err((
            format!("model.envoy.{key}"),
            format!(
                "must be whole milliseconds (Envoy reads durations in ms), got {}",
                d.0
            ),
        ));
    }
    if positive && d.0 .0 == 0 {
        return Err((
            format!("model.envoy.{key}"),
            "must be more than 0 (Envoy requires it); leave it out for the default".into(),
        ));
    }
    Ok(d.0)
}

fn in_range(
    key: &str,
    v: Option<i64>,
    lo: i64,
    hi: i64,
    default: u32,
    what: &str,
) -> Result<u32, KeyError> {
    match v {
        None => Ok(default),
        Some(v) if (lo..=hi).contains(&v) => Ok(v as u32),
        Some(v) => Err((
            format!("model.envoy.{key}"),
            format!("must be {lo}..{hi} ({what}), got {v}"),
        )),
    }
}

/// `[model.envoy]` into the envoy profile's options, with the warnings they draw.
fn envoy_options(s: Option<&EnvoySection>) -> Result<(envoy::Options, Vec<KeyWarning>), KeyError> {
    let d = envoy::Options::default();
    let Some(s) = s else {
        return Ok((d, Vec::new()));
    };
    let opt =
        |key: &str, v: Option<Dur>, positive: bool| -> Result<Option<SimDuration>, KeyError> {
            v.map(|x| whole_ms(key, x, positive)).transpose()
        };
    let retriable = match &s.retriable_statuses {
        None => envoy::StatusRanges::default(),
        Some(text) if text.is_empty() => envoy::StatusRanges::default(),
        Some(text) => {
            let codes = crate::api::pool::ExpectedCodes::parse(text).map_err(|e| {
                (
                    "model.envoy.retriable_statuses".to_string(),
                    e.replace("expected_codes", "retriable_statuses"),
                )
            })?;
            envoy::StatusRanges::from_inclusive(codes.ranges()).ok_or_else(|| {
                (
                    "model.envoy.retriable_statuses".to_string(),
                    "at most 5 codes or ranges".to_string(),
                )
            })?
        }
    };
    let outlier = match &s.outlier_detection {
        None => None,
        Some(o) => {
            let od = envoy::OutlierConfig::default();
            let key = |k: &str| format!("outlier_detection.{k}");
            let interval = opt(&key("interval"), o.interval, true)?.unwrap_or(od.interval);
            let base = opt(&key("base_ejection_time"), o.base_ejection_time, true)?
                .unwrap_or(od.base_ejection_time);
            let max = opt(&key("max_ejection_time"), o.max_ejection_time, true)?
                .unwrap_or(od.max_ejection_time.max(base));
            if max < base {
                return Err((
                    "model.envoy.outlier_detection.max_ejection_time".into(),
                    format!(
                        "{max} is shorter than base_ejection_time ({base}); Envoy refuses this \
                         (\"max_ejection_time cannot be smaller than base_ejection_time\")"
                    ),
                ));
            }
            let count = |k: &str, v: Option<i64>, def: u32| {
                in_range(
                    &key(k),
                    v,
                    0,
                    1_000_000,
                    def,
                    "consecutive errors; 0 never ejects",
                )
            };
            let pct = |k: &str, v: Option<i64>, def: u32| {
                in_range(&key(k), v, 0, 100, def, "a percentage")
            };
            Some(envoy::OutlierConfig {
                interval,
                base_ejection_time: base,
                max_ejection_time: max,
                max_ejection_time_jitter: opt(
                    &key("max_ejection_time_jitter"),
                    o.max_ejection_time_jitter,
                    false,
                )?
                .unwrap_or(od.max_ejection_time_jitter),
                consecutive_5xx: count("consecutive_5xx", o.consecutive_5xx, od.consecutive_5xx)?,
                consecutive_gateway_failure: count(
                    "consecutive_gateway_failure",
                    o.consecutive_gateway_failure,
                    od.consecutive_gateway_failure,
                )?,
                enforcing_consecutive_5xx: pct(
                    "enforcing_consecutive_5xx",
                    o.enforcing_consecutive_5xx,
                    od.enforcing_consecutive_5xx,
                )?,
                enforcing_consecutive_gateway_failure: pct(
                    "enforcing_consecutive_gateway_failure",
                    o.enforcing_consecutive_gateway_failure,
                    od.enforcing_consecutive_gateway_failure,
                )?,
                max_ejection_percent: pct(
                    "max_ejection_percent",
                    o.max_ejection_percent,
                    od.max_ejection_percent,
                )?,
                always_eject_one_host: o.always_eject_one_host.unwrap_or(od.always_eject_one_host),
                successful_active_health_check_uneject_host: o
                    .successful_active_health_check_uneject_host
                    .unwrap_or(od.successful_active_health_check_uneject_host),
            })
        }
    };
    let mut warnings = Vec::new();
    if let Some(o) = &outlier {
        if o.max_ejection_percent < 50 && !o.always_eject_one_host {
            warnings.push((
                "model.envoy.outlier_detection.max_ejection_percent".to_string(),
                format!(
                    "{} % ejects no member of a two-member pool: Envoy ejects only while \
                     (ejected + 1) / hosts x 100 <= max_ejection_percent \
                     (outlier_detection_impl.cc, ejectHost); set 50 (one member), 100 (both) \
                     or always_eject_one_host = true",
                    o.max_ejection_percent
                ),
            ));
        }
    }
    let options = envoy::Options {
        interval_jitter: opt("interval_jitter", s.interval_jitter, false)?
            .unwrap_or(d.interval_jitter),
        interval_jitter_percent: in_range(
            "interval_jitter_percent",
            s.interval_jitter_percent,
            0,
            100,
            d.interval_jitter_percent,
            "a percentage of the interval",
        )?,
        initial_jitter: opt("initial_jitter", s.initial_jitter, false)?.unwrap_or(d.initial_jitter),
        unhealthy_interval: opt("unhealthy_interval", s.unhealthy_interval, true)?,
        unhealthy_edge_interval: opt("unhealthy_edge_interval", s.unhealthy_edge_interval, true)?,
        healthy_edge_interval: opt("healthy_edge_interval", s.healthy_edge_interval, true)?,
        no_traffic_interval: opt("no_traffic_interval", s.no_traffic_interval, true)?
            .unwrap_or(d.no_traffic_interval),
        no_traffic_healthy_interval: opt(
            "no_traffic_healthy_interval",
            s.no_traffic_healthy_interval,
            true,
        )?,
        retriable_statuses: retriable,
        immediate_health_check_fail: s
            .immediate_health_check_fail
            .unwrap_or(d.immediate_health_check_fail),
        outlier,
        priority: envoy::PriorityConfig {
            overprovisioning_factor: in_range(
                "overprovisioning_factor",
                s.overprovisioning_factor,
                1,
                u32::MAX as i64,
                d.priority.overprovisioning_factor,
                "percent, 140 = 1.4",
            )?,
            healthy_panic_threshold: in_range(
                "healthy_panic_threshold",
                s.healthy_panic_threshold,
                0,
                100,
                d.priority.healthy_panic_threshold,
                "a percentage",
            )?,
            fail_traffic_on_panic: s
                .fail_traffic_on_panic
                .unwrap_or(d.priority.fail_traffic_on_panic),
        },
    };
    Ok((options, warnings))
}
