//! `[model] profile` and its option tables (`[model.haproxy]`, `[model.keepalived]`) into a
//! `model::profile::Profile`, with `--profile` winning over the file.
//!
//! Every profile's table may be present whatever the chosen profile (so that one scenario
//! serves `elbsim compare`); only the chosen profile's table is read. Unknown keys are refused
//! by serde (with the closest known key, `super::error`); values are checked here, each error
//! naming its key.

use super::file::{HaproxySection, KeepalivedSection, ModelSection};
use super::KeyError;
use crate::model::health::ProbeSchedule;
use crate::model::profile::{haproxy, keepalived, Monitor, Profile, ProfileName};

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
            Profile::Haproxy(o)
        }
        ProfileName::Keepalived => Profile::Keepalived(keepalived_options(m.keepalived.as_ref())?),
        ProfileName::Envoy => {
            return Err((
                "model.profile".into(),
                format!(
                    "profile envoy not yet available{by}; use one of {}",
                    ProfileName::available_names()
                        .iter()
                        .map(|p| p.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ))
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
    Ok(haproxy::Options {
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
