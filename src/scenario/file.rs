//! The TOML shape of a scenario file (spec/scenario.md), deserialized with serde.
//!
//! Unknown keys are refused (`deny_unknown_fields`); [`super::error`] adds the closest known key
//! to serde's message. Durations are strings with units, parsed while deserializing so that a bad
//! one is reported at its own line.

use crate::sim::time::{parse_duration, SimDuration};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::fmt;

/// A duration written with a unit (`"250ms"`, `"5s"`, `"10m"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub SimDuration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration string with a unit, like \"250ms\", \"5s\" or \"10m\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Dur, E> {
                parse_duration(s).map(Dur).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Dur, E> {
                if n == 0 {
                    return Ok(Dur(SimDuration::ZERO));
                }
                Err(E::custom(format!(
                    "duration {n} has no unit; write it as a string like \"{n}s\" or \"{n}ms\""
                )))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "duration {n} has no unit; write it as a string like \"{n}s\""
                )))
            }
        }
        d.deserialize_any(V)
    }
}

/// A distribution written either as a plain duration or as a table.
///
/// `rtt = "1ms"` is fixed; `rtt = { median = "1ms", p99 = "20ms" }` is log-normal.
/// `lifetime = "30s"` is exponential with that mean; `lifetime = { fixed = "30s" }` is fixed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DurSpec {
    pub plain: Option<SimDuration>,
    pub median: Option<SimDuration>,
    pub p99: Option<SimDuration>,
    pub fixed: Option<SimDuration>,
    pub mean: Option<SimDuration>,
}

impl<'de> Deserialize<'de> for DurSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DurSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a duration like \"30s\" or a table like { median = \"1ms\", p99 = \"20ms\" }",
                )
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<DurSpec, E> {
                let d = parse_duration(s).map_err(E::custom)?;
                Ok(DurSpec {
                    plain: Some(d),
                    ..Default::default()
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DurSpec, A::Error> {
                let mut spec = DurSpec::default();
                while let Some(key) = map.next_key::<String>()? {
                    let d = map.next_value::<Dur>()?.0;
                    let slot = match key.as_str() {
                        "median" => &mut spec.median,
                        "p99" => &mut spec.p99,
                        "fixed" => &mut spec.fixed,
                        "mean" => &mut spec.mean,
                        other => {
                            return Err(de::Error::custom(format!(
                                "unknown field `{other}`, expected one of `median`, `p99`, `fixed`, `mean`"
                            )))
                        }
                    };
                    *slot = Some(d);
                }
                Ok(spec)
            }
        }
        d.deserialize_any(V)
    }
}

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub name: Option<String>,
    pub duration: Option<Dur>,
    pub seed: Option<u64>,
    pub lb_nodes: Option<i64>,
    pub body: Option<String>,
    pub pool: Option<toml::Value>,
    #[serde(default)]
    pub model: ModelSection,
    #[serde(default)]
    pub network: NetworkSection,
    #[serde(default)]
    pub faults: Vec<toml::Spanned<FaultSection>>,
    pub traffic: Option<toml::Spanned<TrafficSection>>,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub stalls: Vec<toml::Spanned<StallSection>>,
}

/// One `[[stalls]]` entry: LB nodes whose health checker pauses.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StallSection {
    pub lb_node: NodeList,
    pub at: Dur,
    pub until: Dur,
}

/// `lb_node = 2` or `lb_node = [0, 2]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeList(pub Vec<i64>);

impl<'de> Deserialize<'de> for NodeList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NodeList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an LB node index like 0, or a list of them like [0, 2]")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<NodeList, E> {
                Ok(NodeList(vec![n]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<NodeList, A::Error> {
                let mut v = Vec::new();
                while let Some(n) = seq.next_element::<i64>()? {
                    v.push(n);
                }
                Ok(NodeList(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// `[limits]`: what one run may use (`docs/limits.md`); each up to its hard maximum.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub max_events: Option<u64>,
    pub max_open_connections: Option<u64>,
    pub max_persistence_entries: Option<u64>,
    pub max_log_entries: Option<u64>,
}

/// `[model]`: the choices the API leaves open.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    pub probe_schedule: Option<crate::model::health::ProbeSchedule>,
    pub initial_state: Option<crate::sim::config::InitialState>,
    pub all_down: Option<crate::model::router::AllDown>,
    pub failback: Option<crate::model::router::Failback>,
    pub failback_sessions: Option<crate::sim::config::FailbackSessions>,
    pub route_update_delay: Option<Dur>,
    pub failback_hold_down: Option<Dur>,
    pub monitor_process: Option<crate::sim::config::MonitorProcess>,
    /// The data plane whose health-check rules apply (`docs/profiles.md`).
    pub profile: Option<crate::model::profile::ProfileName>,
    /// `[model.haproxy]`: used when the profile is haproxy.
    pub haproxy: Option<HaproxySection>,
    /// `[model.keepalived]`: used when the profile is keepalived.
    pub keepalived: Option<KeepalivedSection>,
    /// `[model.envoy]`: used when the profile is envoy.
    pub envoy: Option<EnvoySection>,
}

/// A duration, or `"none"` for a setting left unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurOrNone(pub Option<SimDuration>);

impl<'de> Deserialize<'de> for DurOrNone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DurOrNone;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration string with a unit, like \"5s\", or \"none\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<DurOrNone, E> {
                if s == "none" {
                    return Ok(DurOrNone(None));
                }
                parse_duration(s)
                    .map(|d| DurOrNone(Some(d)))
                    .map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// `[model.haproxy]`: HAProxy settings the API has no field for (`docs/profiles.md`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaproxySection {
    pub timeout_connect: Option<DurOrNone>,
    pub fastinter: Option<Dur>,
    pub downinter: Option<Dur>,
    pub spread_checks: Option<i64>,
    pub on_marked_down_shutdown_sessions: Option<bool>,
    pub slowstart: Option<Dur>,
    /// `observe`: `"none"` or `"layer4"`.
    pub observe: Option<String>,
    pub error_limit: Option<i64>,
    /// `on-error`, as HAProxy spells it (`"fastinter"`, `"fail-check"`, ...).
    pub on_error: Option<String>,
}

/// `[model.keepalived]`: keepalived settings the API has no field for (`docs/profiles.md`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeepalivedSection {
    pub retry: Option<i64>,
    pub delay_before_retry: Option<Dur>,
    pub alpha: Option<bool>,
    pub inhibit_on_failure: Option<bool>,
}

/// `[model.envoy]`: Envoy settings the API has no field for (`docs/profiles.md`, "envoy").
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvoySection {
    pub interval_jitter: Option<Dur>,
    pub interval_jitter_percent: Option<i64>,
    pub initial_jitter: Option<Dur>,
    pub unhealthy_interval: Option<Dur>,
    pub unhealthy_edge_interval: Option<Dur>,
    pub healthy_edge_interval: Option<Dur>,
    pub no_traffic_interval: Option<Dur>,
    pub no_traffic_healthy_interval: Option<Dur>,
    pub retriable_statuses: Option<String>,
    pub immediate_health_check_fail: Option<bool>,
    pub overprovisioning_factor: Option<i64>,
    pub healthy_panic_threshold: Option<i64>,
    pub fail_traffic_on_panic: Option<bool>,
    /// `[model.envoy.outlier_detection]`: its presence turns outlier detection on.
    pub outlier_detection: Option<OutlierSection>,
}

/// `[model.envoy.outlier_detection]`: Envoy's `OutlierDetection` (consecutive errors).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutlierSection {
    pub interval: Option<Dur>,
    pub base_ejection_time: Option<Dur>,
    pub max_ejection_time: Option<Dur>,
    pub max_ejection_time_jitter: Option<Dur>,
    pub consecutive_5xx: Option<i64>,
    pub consecutive_gateway_failure: Option<i64>,
    pub enforcing_consecutive_5xx: Option<i64>,
    pub enforcing_consecutive_gateway_failure: Option<i64>,
    pub max_ejection_percent: Option<i64>,
    pub always_eject_one_host: Option<bool>,
    pub successful_active_health_check_uneject_host: Option<bool>,
}

/// `[network]`: the probe path with no fault.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSection {
    pub rtt: Option<DurSpec>,
    pub loss: Option<f64>,
    pub burst: Option<BurstSection>,
    pub icmp_ratelimit: Option<IcmpSection>,
}

/// `[network.burst]`: a Gilbert-Elliott channel on every path.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurstSection {
    pub mean_good: Dur,
    pub mean_bad: Dur,
    pub loss_good: Option<f64>,
    pub loss_bad: Option<f64>,
}

/// `[network.icmp_ratelimit]`: Linux's ICMP error limits on the members (kernel defaults).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IcmpSection {
    pub peer_interval: Option<Dur>,
    pub peer_burst: Option<i64>,
    pub global_per_s: Option<i64>,
    pub global_burst: Option<i64>,
    pub probe_source: Option<ProbeSource>,
}

/// Where the LB nodes' probes come from, as the member's kernel sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeSource {
    /// Each LB node from its own address: one per-destination bucket per node.
    PerNode,
    /// Every node from one address (a source NAT): one bucket for all.
    Shared,
}

/// One `[[faults]]` entry; kind-specific keys are checked against the kind in `super::load`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSection {
    pub member: crate::model::router::Role,
    pub kind: String,
    pub at: Dur,
    pub until: Option<Dur>,
    pub status: Option<i64>,
    pub latency: Option<Dur>,
    pub probability: Option<f64>,
    pub period: Option<Dur>,
    pub down: Option<f64>,
    pub lb_node: Option<NodeList>,
}

/// `[traffic]`: client connections (see `crate::traffic`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficSection {
    pub rate: Option<f64>,
    pub schedule: Option<Vec<RateStep>>,
    pub lifetime: Option<DurSpec>,
    pub clients: Option<i64>,
    pub connect_timeout: Option<Dur>,
    pub requests_per_s: Option<f64>,
    pub udp_idle_timeout: Option<Dur>,
    pub quic: Option<QuicSection>,
}

/// One step of `[[traffic.schedule]]`: from `at`, new connections arrive at `rate` per second.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateStep {
    pub at: Dur,
    pub rate: f64,
}

/// `[traffic.quic]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuicSection {
    pub client_dcid_len: Option<i64>,
    pub server_cid_len: Option<i64>,
    pub server_id_len: Option<i64>,
    pub cid_rotation: Option<Dur>,
    pub migration: Option<Dur>,
    pub paths: Option<i64>,
}
