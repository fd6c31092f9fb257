//! The typed, validated pool the simulator consumes.
//!
//! [`types`](super::types) keeps what the user wrote (strings, `Option`s) so problems can be
//! reported exactly; this module is the other end: enums instead of strings, defaults filled in,
//! and the master/slave pair split out of the members array. [`Pool::from_request`] refuses a
//! request that does not validate, so the simulator never sees an impossible configuration.
//!
//! Enums serialize as the API spells them (`"TCP"`, `"ROUND_ROBIN"`, `"UDP_CONNECT"`, ...).

use std::net::IpAddr;

use serde::{Serialize, Serializer};

use super::problem::Problem;
use super::types::{CreateRequest, MemberOption};
use super::validate::{self, CheckOptions};

/// Generates a string enum with `parse`, `as_str`, `NAMES` and `Display`, spelled as the API
/// spells it; parsing is case-sensitive because the API is.
macro_rules! api_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $text)] $variant),+
        }
        impl $name {
            /// Every accepted spelling, in the API's order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];
            /// The variant spelled exactly `s`, if any.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
            /// The API spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

api_enum!(
    /// Pool (backend) protocol.
    Protocol { Tcp = "TCP", Udp = "UDP", Quic = "QUIC", Tls = "TLS" }
);
api_enum!(
    /// Load-balancing algorithm.
    LbAlgorithm {
        RoundRobin = "ROUND_ROBIN",
        LeastConnections = "LEAST_CONNECTIONS",
        SourceIp = "SOURCE_IP",
        QuicCid = "QUIC_CID",
    }
);
api_enum!(
    /// Health-check probe protocol.
    MonitorType { Tcp = "TCP", UdpConnect = "UDP_CONNECT", Http = "HTTP", Https = "HTTPS" }
);
api_enum!(
    /// HTTP method of HTTP/HTTPS probes.
    HttpMethod { Get = "GET", Head = "HEAD", Post = "POST" }
);
api_enum!(
    /// Session-persistence type.
    PersistenceType { SourceIp = "SOURCE_IP", HttpCookie = "HTTP_COOKIE", AppCookie = "APP_COOKIE" }
);
api_enum!(
    /// Member role in the master/slave pair.
    Role { Master = "master", Slave = "slave" }
);
api_enum!(
    /// Pool type: `instance` (any backend, needs vpc_id) or `ip` (IP backends only).
    PoolType { Instance = "instance", Ip = "ip" }
);
api_enum!(
    /// Pool IP version.
    IpVersion { V4 = "v4", Dualstack = "dualstack" }
);

impl Protocol {
    /// TCP, UDP and QUIC: the protocols for which any_port_enable and connection_drain exist.
    pub fn is_tcp_udp_quic(self) -> bool {
        matches!(self, Protocol::Tcp | Protocol::Udp | Protocol::Quic)
    }
}

impl MonitorType {
    /// HTTP and HTTPS probes; only they use http_method, url_path, domain_name, expected_codes.
    pub fn is_http(self) -> bool {
        matches!(self, MonitorType::Http | MonitorType::Https)
    }
}

/// The status codes an HTTP/HTTPS probe accepts: up to 5 single codes or inclusive ranges,
/// each within 200..=599 (`"200"`, `"200,202"`, `"200-204"`, `"200-204,300-399"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedCodes {
    ranges: Vec<(u16, u16)>,
}

impl ExpectedCodes {
    /// The most items the API accepts.
    pub const MAX_ITEMS: usize = 5;

    /// Parses the API grammar; the error says what is wrong and what would be accepted.
    /// No spaces are allowed (the API grammar has none).
    pub fn parse(s: &str) -> Result<Self, String> {
        const HINT: &str =
            "use codes 200..599 as \"200\", \"200,202\" or \"200-204\", at most 5 items";
        if s.is_empty() {
            return Err(format!("expected_codes is empty; {HINT}"));
        }
        let items: Vec<&str> = s.split(',').collect();
        if items.len() > Self::MAX_ITEMS {
            return Err(format!(
                "expected_codes has {} items, more than {}; {HINT}",
                items.len(),
                Self::MAX_ITEMS
            ));
        }
        let code = |t: &str| -> Result<u16, String> {
            if t.len() != 3 || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "\"{t}\" in expected_codes is not a 3-digit status code; {HINT}"
                ));
            }
            let c: u16 = t.parse().map_err(|_| format!("\"{t}\" is not a number"))?;
            if !(200..=599).contains(&c) {
                return Err(format!("status code {c} is outside 200..599; {HINT}"));
            }
            Ok(c)
        };
        let mut ranges = Vec::with_capacity(items.len());
        for item in items {
            let (lo, hi) = match item.split_once('-') {
                Some((a, b)) => (code(a)?, code(b)?),
                None => {
                    let c = code(item)?;
                    (c, c)
                }
            };
            if lo > hi {
                return Err(format!(
                    "range \"{item}\" in expected_codes runs backwards; write the low code first ({hi}-{lo})"
                ));
            }
            ranges.push((lo, hi));
        }
        Ok(ExpectedCodes { ranges })
    }

    /// True when a probe answer with this status counts as healthy.
    pub fn matches(&self, code: u16) -> bool {
        self.ranges
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&code))
    }

    /// The inclusive ranges, in the order written.
    pub fn ranges(&self) -> &[(u16, u16)] {
        &self.ranges
    }
}

impl Default for ExpectedCodes {
    /// The API default, "200".
    fn default() -> Self {
        ExpectedCodes {
            ranges: vec![(200, 200)],
        }
    }
}

impl std::fmt::Display for ExpectedCodes {
    /// The canonical API spelling ("200", "200-204,300").
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (lo, hi)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

impl Serialize for ExpectedCodes {
    /// As the API string, so reports read like the request.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The health check, defaults filled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthMonitor {
    pub monitor_type: MonitorType,
    pub delay_s: u32,
    pub timeout_s: u32,
    /// Consecutive successes that turn OFFLINE into ONLINE.
    pub max_retries: u32,
    /// Consecutive failures that turn ONLINE into OFFLINE (default 3).
    pub max_retries_down: u32,
    /// None: probe the member's own port.
    pub monitor_port: Option<u16>,
    pub http_method: HttpMethod,
    pub url_path: String,
    /// None: the LB's VIP is the Host.
    pub domain_name: Option<String>,
    pub expected_codes: ExpectedCodes,
}

/// One backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub address: IpAddr,
    /// None only when any_port_enable is on (the listener's front port is used).
    pub protocol_port: Option<u16>,
    pub name: Option<String>,
}

/// Session persistence, with the timeout default filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SessionPersistence {
    pub persistence_type: PersistenceType,
    pub timeout_min: u32,
}

/// Which bytes of the destination connection ID a QUIC_CID pool hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QuicCidSlice {
    pub offset: u8,
    pub len: u8,
}

impl Default for QuicCidSlice {
    /// The API defaults: offset 1, len 3.
    fn default() -> Self {
        QuicCidSlice { offset: 1, len: 3 }
    }
}

/// A validated master/slave pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pool {
    pub protocol: Protocol,
    pub lb_algorithm: LbAlgorithm,
    pub healthmonitor: HealthMonitor,
    pub master: Member,
    pub slave: Member,
    pub session_persistence: Option<SessionPersistence>,
    pub any_port_enable: bool,
    /// Some only when connection drain is enabled.
    pub connection_drain_timeout_s: Option<u32>,
    /// The request's strategy with defaults filled, or the defaults (1, 3) when absent.
    pub quic_cid: QuicCidSlice,
    pub name: Option<String>,
}

/// Default persistence timeout in minutes: 1 for every pool protocol modelled here (the API's
/// 1440 applies to HTTP/HTTPS pools, which cannot be master/slave pools).
pub const DEFAULT_PERSISTENCE_TIMEOUT_MIN: u32 = 1;

impl Pool {
    /// Builds the typed pool from a request, after validating it (warnings allowed).
    /// Returns the validation errors when the request is invalid.
    pub fn from_request(req: &CreateRequest) -> Result<Pool, Vec<Problem>> {
        let (errors, _warnings) = validate::validate_request(req, CheckOptions::default());
        if !errors.is_empty() {
            return Err(errors);
        }
        // Validation guarantees every parse below succeeds; the error path is kept anyway so
        // a future rule change cannot turn into a panic.
        let bug = |what: &str| {
            vec![Problem::new(
                "pool",
                "internal",
                format!("{what} did not convert after validation"),
            )]
        };
        let p = &req.pool;
        let hm = &p.healthmonitor;
        let healthmonitor = HealthMonitor {
            monitor_type: MonitorType::parse(&hm.monitor_type).ok_or_else(|| bug("type"))?,
            delay_s: u32::try_from(hm.delay).map_err(|_| bug("delay"))?,
            timeout_s: u32::try_from(hm.timeout).map_err(|_| bug("timeout"))?,
            max_retries: u32::try_from(hm.max_retries).map_err(|_| bug("max_retries"))?,
            max_retries_down: u32::try_from(hm.max_retries_down.unwrap_or(3))
                .map_err(|_| bug("max_retries_down"))?,
            monitor_port: hm
                .monitor_port
                .map(|x| u16::try_from(x).map_err(|_| bug("monitor_port")))
                .transpose()?,
            http_method: match &hm.http_method {
                Some(m) => HttpMethod::parse(m).ok_or_else(|| bug("http_method"))?,
                None => HttpMethod::Get,
            },
            url_path: hm.url_path.clone().unwrap_or_else(|| "/".into()),
            domain_name: hm.domain_name.clone().filter(|d| !d.is_empty()),
            expected_codes: match &hm.expected_codes {
                Some(c) => ExpectedCodes::parse(c).map_err(|_| bug("expected_codes"))?,
                None => ExpectedCodes::default(),
            },
        };
        let member = |m: &MemberOption| -> Result<Member, Vec<Problem>> {
            Ok(Member {
                address: m.address.parse().map_err(|_| bug("address"))?,
                protocol_port: m
                    .protocol_port
                    .map(|x| u16::try_from(x).map_err(|_| bug("protocol_port")))
                    .transpose()?,
                name: m.name.clone(),
            })
        };
        let master = p
            .members
            .iter()
            .find(|m| m.role == "master")
            .ok_or_else(|| bug("master"))?;
        let slave = p
            .members
            .iter()
            .find(|m| m.role == "slave")
            .ok_or_else(|| bug("slave"))?;
        let session_persistence = match &p.session_persistence {
            Some(sp) => Some(SessionPersistence {
                persistence_type: PersistenceType::parse(&sp.persistence_type)
                    .ok_or_else(|| bug("session_persistence.type"))?,
                timeout_min: match sp.persistence_timeout {
                    Some(t) => u32::try_from(t).map_err(|_| bug("persistence_timeout"))?,
                    None => DEFAULT_PERSISTENCE_TIMEOUT_MIN,
                },
            }),
            None => None,
        };
        let connection_drain_timeout_s = match &p.connection_drain {
            Some(cd) if cd.enable => Some(
                cd.timeout
                    .and_then(|t| u32::try_from(t).ok())
                    .ok_or_else(|| bug("connection_drain.timeout"))?,
            ),
            _ => None,
        };
        let mut quic_cid = QuicCidSlice::default();
        if let Some(q) = &p.quic_cid_hash_strategy {
            if let Some(len) = q.len {
                quic_cid.len = u8::try_from(len).map_err(|_| bug("quic len"))?;
            }
            if let Some(offset) = q.offset {
                quic_cid.offset = u8::try_from(offset).map_err(|_| bug("quic offset"))?;
            }
        }
        Ok(Pool {
            protocol: Protocol::parse(&p.protocol).ok_or_else(|| bug("protocol"))?,
            lb_algorithm: LbAlgorithm::parse(&p.lb_algorithm).ok_or_else(|| bug("lb_algorithm"))?,
            healthmonitor,
            master: member(master)?,
            slave: member(slave)?,
            session_persistence,
            any_port_enable: p.any_port_enable.unwrap_or(false),
            connection_drain_timeout_s,
            quic_cid,
            name: p.name.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_codes_grammar() {
        let c = ExpectedCodes::parse("200-204,300,301,302,303").unwrap();
        assert!(c.matches(202) && c.matches(303) && !c.matches(205) && !c.matches(304));
        assert_eq!(c.to_string(), "200-204,300,301,302,303");
        assert!(ExpectedCodes::parse("200,201,202,203,204,205").is_err());
        assert!(ExpectedCodes::parse("199").is_err());
        assert!(ExpectedCodes::parse("600").is_err());
        assert!(ExpectedCodes::parse("599").is_ok());
        assert!(ExpectedCodes::parse("204-200").is_err());
        assert!(ExpectedCodes::parse("200, 202").is_err());
        assert!(ExpectedCodes::parse("200,").is_err());
        assert!(ExpectedCodes::parse("").is_err());
        assert!(ExpectedCodes::parse("2000").is_err());
        assert!(ExpectedCodes::parse("200-300-400").is_err());
        assert!(ExpectedCodes::default().matches(200));
        assert!(!ExpectedCodes::default().matches(201));
    }

    #[test]
    fn enums_parse_case_sensitively_and_serialize_as_api() {
        assert_eq!(Protocol::parse("TCP"), Some(Protocol::Tcp));
        assert_eq!(Protocol::parse("tcp"), None);
        assert_eq!(
            serde_json::to_string(&MonitorType::UdpConnect).unwrap(),
            "\"UDP_CONNECT\""
        );
        assert_eq!(LbAlgorithm::QuicCid.as_str(), "QUIC_CID");
        assert_eq!(Role::parse("slave"), Some(Role::Slave));
    }
}
