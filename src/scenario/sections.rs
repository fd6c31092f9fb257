//! `[model]`, `[network]` and `[limits]`: their keys into engine settings.

use super::file::{self, DurSpec};
use super::KeyError;
use crate::model::router::Failback;
use crate::sim::config::{Burst, IcmpRateLimit, Limits, ModelConfig, NetworkConfig, Rtt};
use crate::time::SimDuration;

pub(super) fn model_config(m: &file::ModelSection) -> Result<ModelConfig, KeyError> {
    let d = ModelConfig::default();
    let failback = m.failback.unwrap_or(d.failback);
    if let Some(h) = m.failback_hold_down {
        if failback != Failback::HoldDown {
            return Err((
                "model.failback_hold_down".into(),
                "applies only with failback = \"hold_down\"; set that, or remove this key".into(),
            ));
        }
        if h.0 == SimDuration::ZERO {
            return Err((
                "model.failback_hold_down".into(),
                "must be more than 0 (a hold-down of 0 is failback = \"preemptive\")".into(),
            ));
        }
    }
    Ok(ModelConfig {
        probe_schedule: m.probe_schedule.unwrap_or(d.probe_schedule),
        initial_state: m.initial_state.unwrap_or(d.initial_state),
        all_down: m.all_down.unwrap_or(d.all_down),
        failback,
        failback_sessions: m.failback_sessions.unwrap_or(d.failback_sessions),
        route_update_delay: m.route_update_delay.map_or(d.route_update_delay, |x| x.0),
        // Set by the loader (`super::profiles`), which also knows the command line's choice.
        profile: d.profile,
        failback_hold_down: m.failback_hold_down.map_or(d.failback_hold_down, |x| x.0),
        monitor_process: m.monitor_process.unwrap_or(d.monitor_process),
    })
}

/// `[network.burst]`: positive means, losses in range.
fn burst(b: &file::BurstSection) -> Result<Burst, KeyError> {
    let err = |k: &str, m: String| Err((format!("network.burst.{k}"), m));
    for (k, d) in [("mean_good", b.mean_good), ("mean_bad", b.mean_bad)] {
        if d.0 < SimDuration::from_millis(1) {
            return err(k, format!("must be at least 1ms, got {}", d.0));
        }
    }
    let loss_good = b.loss_good.unwrap_or(0.0);
    let loss_bad = b.loss_bad.unwrap_or(1.0);
    if !(0.0..1.0).contains(&loss_good) {
        return err("loss_good", format!("must be in [0, 1), got {loss_good}"));
    }
    if !(0.0..=1.0).contains(&loss_bad) {
        return err("loss_bad", format!("must be in [0, 1], got {loss_bad}"));
    }
    Ok(Burst {
        mean_good: b.mean_good.0,
        mean_bad: b.mean_bad.0,
        loss_good,
        loss_bad,
    })
}

/// `[network.icmp_ratelimit]`: the kernel's defaults, each overridable within a range.
fn icmp(s: &file::IcmpSection) -> Result<IcmpRateLimit, KeyError> {
    let d = IcmpRateLimit::default();
    let count = |k: &str, v: Option<i64>, default: u32, max: i64| match v {
        None => Ok(default),
        Some(v) if (1..=max).contains(&v) => Ok(v as u32),
        Some(v) => Err((
            format!("network.icmp_ratelimit.{k}"),
            format!("must be 1..{max}, got {v}"),
        )),
    };
    let peer_interval = s.peer_interval.map_or(d.peer_interval, |x| x.0);
    if peer_interval < SimDuration::from_millis(1) {
        return Err((
            "network.icmp_ratelimit.peer_interval".into(),
            format!("must be at least 1ms, got {peer_interval}"),
        ));
    }
    Ok(IcmpRateLimit {
        peer_interval,
        peer_burst: count("peer_burst", s.peer_burst, d.peer_burst, 1_000_000)?,
        global_per_s: count("global_per_s", s.global_per_s, d.global_per_s, 10_000_000)?,
        global_burst: count("global_burst", s.global_burst, d.global_burst, 10_000_000)?,
        shared_source: s.probe_source == Some(file::ProbeSource::Shared),
    })
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
    if let Some(b) = &n.burst {
        out.burst = Some(burst(b)?);
    }
    if let Some(i) = &n.icmp_ratelimit {
        out.icmp_ratelimit = Some(icmp(i)?);
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
