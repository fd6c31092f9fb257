//! `[model]` and `[network]`: their keys into engine settings.

use super::file::{self, DurSpec};
use super::KeyError;
use crate::sim::config::{ModelConfig, NetworkConfig, Rtt};

pub(super) fn model_config(m: &file::ModelSection) -> ModelConfig {
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
