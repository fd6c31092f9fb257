//! `[model]`, `[network]` and `[limits]`: their keys into engine settings.

use super::file::{self, DurSpec};
use super::KeyError;
use crate::sim::config::{Limits, ModelConfig, NetworkConfig, Rtt};

pub(super) fn model_config(m: &file::ModelSection) -> ModelConfig {
    let d = ModelConfig::default();
    ModelConfig {
        probe_schedule: m.probe_schedule.unwrap_or(d.probe_schedule),
        initial_state: m.initial_state.unwrap_or(d.initial_state),
        all_down: m.all_down.unwrap_or(d.all_down),
        failback: m.failback.unwrap_or(d.failback),
        failback_sessions: m.failback_sessions.unwrap_or(d.failback_sessions),
        route_update_delay: m.route_update_delay.map_or(d.route_update_delay, |x| x.0),
        // Set by the loader (`super::profiles`), which also knows the command line's choice.
        profile: d.profile,
    }
}

pub(super) fn network_config(n: &file::NetworkSection) -> Result<NetworkConfig, KeyError> {
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

/// `[limits]`: each given value must be at least 1 and at most its hard maximum.
pub(super) fn limits(l: &file::LimitsSection) -> Result<Limits, KeyError> {
    let d = Limits::default();
    let h = Limits::HARD;
    let one = |key: &str, v: Option<u64>, default: u64, hard: u64| match v {
        None => Ok(default),
        Some(v) if (1..=hard).contains(&v) => Ok(v),
        Some(v) => Err((
            format!("limits.{key}"),
            format!("must be 1..{hard} (the hard maximum), got {v}"),
        )),
    };
    Ok(Limits {
        max_events: one("max_events", l.max_events, d.max_events, h.max_events)?,
        max_open_connections: one(
            "max_open_connections",
            l.max_open_connections,
            d.max_open_connections,
            h.max_open_connections,
        )?,
        max_persistence_entries: one(
            "max_persistence_entries",
            l.max_persistence_entries,
            d.max_persistence_entries,
            h.max_persistence_entries,
        )?,
        max_log_entries: one(
            "max_log_entries",
            l.max_log_entries,
            d.max_log_entries,
            h.max_log_entries,
        )?,
    })
}
