//! `[traffic]` and `[traffic.quic]`: client traffic and the pool settings that act on it.

use super::file::{self, DurSpec};
use super::KeyError;
use crate::api::pool::{LbAlgorithm, Pool, Protocol};
use crate::model::quic;
use crate::sim::config::{Lifetime, Limits, QuicConfig, TrafficConfig};
use crate::time::{SimDuration, SimTime};

/// Most new connections per second (a bound, so a typo cannot exhaust memory).
const MAX_RATE: f64 = 1_000_000.0;
/// Most distinct clients.
const MAX_CLIENTS: i64 = 10_000_000;
/// Shortest mean time between a QUIC connection's CID rotations or migrations: shorter ones
/// would make more events than packets a real connection sends.
pub const MIN_QUIC_PERIOD: SimDuration = SimDuration::from_millis(1);

pub(super) fn traffic_config(
    t: &file::TrafficSection,
    pool: &Pool,
    duration: SimDuration,
    limits: &Limits,
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
    let connect_timeout = t.connect_timeout.map_or(SimDuration::from_secs(3), |d| d.0);
    if connect_timeout == SimDuration::ZERO {
        return bad(
            "connect_timeout",
            "must be more than 0 (a client that waits for nothing connects to nothing)".into(),
        );
    }
    // The expected peak of open connections (Little's law: rate x mean lifetime, plus the UDP
    // idle tail) must fit the cap: otherwise the run would only fail later, after minutes.
    let peak_rate = rate_steps.iter().map(|s| s.1).fold(0.0, f64::max);
    let mean_life = match lifetime {
        Lifetime::Exponential(d) | Lifetime::Fixed(d) => d,
    };
    let idle = if udp {
        t.udp_idle_timeout
            .map_or(SimDuration::from_secs(300), |d| d.0)
    } else {
        SimDuration::ZERO
    };
    let expected_peak = peak_rate * (mean_life + idle).as_secs_f64().min(duration.as_secs_f64());
    if expected_peak > limits.max_open_connections as f64 {
        return bad(
            "rate",
            format!(
                "about {expected_peak:.0} connections would be open at once (rate x lifetime), more than the limit of {}: lower `traffic.rate` or `traffic.lifetime`, or raise `[limits] max_open_connections` (at most {})",
                limits.max_open_connections,
                Limits::HARD.max_open_connections
            ),
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
        connect_timeout,
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
        tls: clients_use_tls(pool),
        any_port: pool.any_port_enable,
        quic,
    })
}

/// Whether clients' connections carry TLS that a member's `tls_error` breaks: a TLS pool. On
/// a TCP, UDP or QUIC pool the model's clients do not depend on the member's TLS setup, so a
/// failover for `tls_error` there is needless (an HTTPS check still sees it).
pub fn clients_use_tls(pool: &Pool) -> bool {
    pool.protocol == Protocol::Tls
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
    let mean_or_off = |k: &str, d: Option<file::Dur>, default_s: u64| {
        let d = d.map_or(SimDuration::from_secs(default_s), |d| d.0);
        if d > SimDuration::ZERO && d < MIN_QUIC_PERIOD {
            return Err((
                format!("traffic.quic.{k}"),
                format!("must be \"0s\" (off) or at least {MIN_QUIC_PERIOD}, got {d}"),
            ));
        }
        Ok((d > SimDuration::ZERO).then_some(d))
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
        cid_rotation: mean_or_off("cid_rotation", q.cid_rotation, 20)?,
        migration: mean_or_off("migration", q.migration, 60)?,
        paths,
    })
}
