//! `[[faults]]`: each entry into an engine fault, kind-specific keys checked against the kind.

use super::file::FaultSection;
use super::KeyError;
use crate::api;
use crate::api::pool::Pool;
use crate::sim::config::{Fault, FaultKind};
use crate::time::{SimDuration, SimTime};

/// Shortest flap period.
pub const MIN_FLAP_PERIOD: SimDuration = SimDuration::from_millis(1);

/// The fault kinds that can be on the path between some LB nodes and a member (`lb_node`):
/// the path goes silent, loses or delays packets, or a filter on it rejects the check port.
/// The others are the member's own and every node meets them.
pub const PATH_KINDS: [&str; 4] = ["host_down", "loss", "slow", "monitor_port_down"];

/// An `lb_node` value (one node or a list) checked against `lb_nodes`: sorted, without
/// duplicates. `Err` is the message.
pub(super) fn node_list(list: &super::file::NodeList, lb_nodes: u32) -> Result<Vec<u32>, String> {
    if list.0.is_empty() {
        return Err("is an empty list; name at least one LB node, from 0".into());
    }
    let mut out = Vec::with_capacity(list.0.len());
    for &k in &list.0 {
        if !(0..i64::from(lb_nodes)).contains(&k) {
            return Err(format!(
                "LB node {k} does not exist: this scenario has lb_nodes = {lb_nodes}, numbered 0..{}",
                lb_nodes.saturating_sub(1)
            ));
        }
        out.push(k as u32);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// One `[[faults]]` entry: the fault, and the LB nodes on its path when it is a per-path fault.
pub(super) fn fault(
    s: &FaultSection,
    pool: &Pool,
    duration: SimDuration,
    lb_nodes: u32,
) -> Result<(Fault, Option<Vec<u32>>), KeyError> {
    let bad = |k: &str, m: String| Err((k.to_string(), m));
    let Some(named) = FaultKind::parse(&s.kind) else {
        let names = FaultKind::names();
        let hint = api::read::closest_field(&s.kind, &names)
            .map_or(String::new(), |k| format!("; did you mean \"{k}\"?"));
        return bad(
            "kind",
            format!(
                "unknown fault kind \"{}\": use one of {}{hint}",
                s.kind,
                names.join(", ")
            ),
        );
    };
    // Which kind-specific keys this kind takes; any other given key is an error.
    let takes = named.param_keys();
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
    let kind = match named {
        FaultKind::Crash | FaultKind::HostDown | FaultKind::Hang | FaultKind::TlsError => named,
        FaultKind::MonitorPortDown => {
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
        FaultKind::HttpStatus { .. } => {
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
        FaultKind::Slow { .. } => FaultKind::Slow {
            latency: s.latency.map(|d| d.0).unwrap_or_default(),
        },
        FaultKind::Loss { .. } => {
            let p = s.probability.unwrap_or_default();
            if !(p > 0.0 && p <= 1.0) {
                return bad("probability", format!("must be in (0, 1], got {p}"));
            }
            FaultKind::Loss { probability: p }
        }
        FaultKind::Flap { .. } => {
            let period = s.period.map(|d| d.0).unwrap_or_default();
            let down = s.down.unwrap_or_default();
            if period < MIN_FLAP_PERIOD {
                return bad(
                    "period",
                    format!("must be at least {MIN_FLAP_PERIOD} (each period makes two events per LB node), got {period}"),
                );
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
    let path = match &s.lb_node {
        None => None,
        Some(_) if !PATH_KINDS.contains(&kind.name()) => {
            return bad(
                "lb_node",
                format!(
                    "a \"{}\" fault is the member's own and every LB node meets it; only {} can be on the path of some LB nodes: remove lb_node",
                    kind.name(),
                    PATH_KINDS.join(", ")
                ),
            )
        }
        Some(list) => Some(node_list(list, lb_nodes).map_err(|m| ("lb_node".to_string(), m))?),
    };
    Ok((
        Fault {
            member: s.member,
            kind,
            at: SimTime::ZERO + s.at.0,
            until: s.until.map(|u| SimTime::ZERO + u.0),
        },
        path,
    ))
}
