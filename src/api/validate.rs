//! Every rule of `spec/api.md`, checked at once, with errors and warnings kept apart.
//!
//! [`check_bytes`] / [`check_value`] read a body (see [`read`](super::read)) and then run the
//! rules below on whatever could be read, so one pass reports every problem. A rule never
//! reports on a field whose value could not be read (missing or wrong type): the reading
//! problem already says what to fix there.
//!
//! Choices made where the seed page is silent (each one marked "Choice" below):
//!
//! * `type` may be omitted when `listener_id` or `loadbalancer_id` is given (the seed's
//!   "at least one of listener_id, loadbalancer_id, type"); the Go SDK marks it required but
//!   then sends `""` when unset, so `type: ""` counts as absent too.
//! * Empty strings in optional id fields (`listener_id`, `loadbalancer_id`, `vpc_id`,
//!   `subnet_cidr_id`, `domain_name`) count as absent: the API's responses print `""` for
//!   "none", and users paste responses back.
//! * TLS pools: health-check type TCP, HTTP or HTTPS (as for TCP pools: TLS is TCP below);
//!   persistence_timeout 1..60 (like the other layer-4 pools); ip_version `v4` only.
//! * `dualstack` is allowed for TCP, UDP and QUIC (QUIC runs over UDP), not for TLS. Without
//!   ip_version, the pool is `dualstack` for TCP/UDP/QUIC and `v4` for TLS (as in the response).
//! * `protocol_port` is required unless `any_port_enable` is true; given with
//!   `any_port_enable` it draws a `no-effect` warning.
//! * A member address without `subnet_cidr_id` must be a private IPv4 address: 10/8,
//!   172.16/12, 192.168/16 (the ranges a VPC may use). 100.64/10 (shared CGNAT space) is NOT
//!   private here. A public IPv4 is only a warning (the seed's own example uses two); an IPv6
//!   address without a subnet is an error. Loopback, unspecified, multicast and broadcast
//!   addresses are errors (`ip-address`) in every case.
//! * A member with `subnet_cidr_id` is an ECS backend, which a pool of type `ip` cannot hold
//!   (`member-type`).
//! * `lb_algorithm` `QUIC_CID` needs a QUIC pool (only QUIC has connection IDs).
//! * `connection_drain` on a TLS pool is an error whenever the object is present.
//! * `name`, `description`, member and health-monitor names: at most 255 characters, an error
//!   (`string-length`) as in the other Huawei ELB create APIs.
//! * On TCP/UDP/TLS pools a session_persistence type other than SOURCE_IP draws a warning
//!   (`persistence-type-ignored`): the API accepts it but persists by source IP anyway.
//! * A quic_cid_hash_strategy whose offset + len passes 20 bytes (the longest CID) is a warning.

use std::net::{IpAddr, Ipv4Addr};

use serde_json::Value;

use super::pool::{
    ExpectedCodes, HttpMethod, IpVersion, LbAlgorithm, MonitorType, PersistenceType, PoolType,
    Protocol, Role,
};
use super::problem::{Problem, Severity};
use super::read::{self, parse_json};
use super::types::{CreateRequest, HealthMonitorOption, MemberOption, PoolOption};

/// How to check.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckOptions {
    /// Turn every warning into an error.
    pub strict: bool,
}

/// The outcome of checking a body.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// The request as read; Some whenever the body was `{"pool": {...}}`, even with errors
    /// (fields that could not be read then hold defaults; do not use it unless `is_valid`).
    pub request: Option<CreateRequest>,
    pub errors: Vec<Problem>,
    pub warnings: Vec<Problem>,
}

impl Checked {
    /// No errors and a request to use.
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty() && self.request.is_some()
    }
}

/// Parses bytes as JSON, then [`check_value`].
pub fn check_bytes(bytes: &[u8], opts: CheckOptions) -> Checked {
    match parse_json(bytes) {
        Ok(v) => check_value(&v, opts),
        Err(p) => Checked {
            request: None,
            errors: vec![p],
            warnings: Vec::new(),
        },
    }
}

/// Reads a JSON body and validates it, collecting every problem.
pub fn check_value(value: &Value, opts: CheckOptions) -> Checked {
    let outcome = read::read_request(value);
    let mut errors = outcome.errors.clone();
    let mut warnings = Vec::new();
    if let Some(req) = &outcome.request {
        let skip = |p: &str| outcome.is_unreadable(p);
        let (e, w) = run_rules(req, &skip);
        errors.extend(e);
        warnings.extend(w);
    }
    finish(outcome.request, errors, warnings, opts)
}

/// Validates an already-built request (e.g. one built from a TOML scenario), returning
/// `(errors, warnings)`; with `strict`, warnings are moved into errors.
pub fn validate_request(req: &CreateRequest, opts: CheckOptions) -> (Vec<Problem>, Vec<Problem>) {
    let (e, w) = run_rules(req, &|_| false);
    let c = finish(None, e, w, opts);
    (c.errors, c.warnings)
}

fn finish(
    request: Option<CreateRequest>,
    mut errors: Vec<Problem>,
    mut warnings: Vec<Problem>,
    opts: CheckOptions,
) -> Checked {
    if opts.strict {
        errors.append(&mut warnings);
    }
    Checked {
        request,
        errors,
        warnings,
    }
}

fn run_rules(req: &CreateRequest, skip: &dyn Fn(&str) -> bool) -> (Vec<Problem>, Vec<Problem>) {
    let mut v = V {
        errors: Vec::new(),
        warnings: Vec::new(),
        skip,
    };
    v.pool(&req.pool);
    (v.errors, v.warnings)
}

/// Upper bound on names and descriptions, in characters.
pub const MAX_NAME_CHARS: usize = 255;
/// Upper bound on cookie_name, in characters.
pub const MAX_COOKIE_NAME_CHARS: usize = 1024;

/// The characters url_path may hold besides ASCII letters and digits.
const URL_PATH_EXTRA: &str = "-/.%?#&_;~!()*[]@$^:',+";

/// A private IPv4 address in the sense of the member rule: 10/8, 172.16/12, 192.168/16.
pub fn is_private_ipv4(a: Ipv4Addr) -> bool {
    a.is_private()
}

fn last_segment(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

struct V<'a> {
    errors: Vec<Problem>,
    warnings: Vec<Problem>,
    skip: &'a dyn Fn(&str) -> bool,
}

impl V<'_> {
    fn report(&mut self, sev: Severity, path: &str, rule: &str, message: String) {
        if (self.skip)(path) {
            return;
        }
        let p = Problem::new(path, rule, message);
        match sev {
            Severity::Error => self.errors.push(p),
            Severity::Warning => self.warnings.push(p),
        }
    }

    fn error(&mut self, path: &str, rule: &str, message: String) {
        self.report(Severity::Error, path, rule, message);
    }

    fn warn(&mut self, path: &str, rule: &str, message: String) {
        self.report(Severity::Warning, path, rule, message);
    }

    /// `lo..=hi` check with rule `range`; returns whether the value is in range.
    fn range(&mut self, path: &str, value: i64, lo: i64, hi: i64, unit: &str) -> bool {
        self.range_rule(path, "range", value, lo, hi, unit)
    }

    fn range_rule(
        &mut self,
        path: &str,
        rule: &str,
        value: i64,
        lo: i64,
        hi: i64,
        unit: &str,
    ) -> bool {
        if (lo..=hi).contains(&value) {
            return true;
        }
        let field = last_segment(path);
        self.error(
            path,
            rule,
            format!(
                "{field} must be {lo}..{hi}{unit}, got {value}; use a value between {lo} and {hi}"
            ),
        );
        false
    }

    /// Checks an enumerated string; returns the parsed value when valid.
    fn enumerated<T>(
        &mut self,
        path: &str,
        value: &str,
        parse: fn(&str) -> Option<T>,
        names: &[&str],
    ) -> Option<T> {
        if (self.skip)(path) {
            return None;
        }
        if let Some(t) = parse(value) {
            return Some(t);
        }
        let field = last_segment(path);
        let mut msg = format!(
            "{field} must be one of {}, got \"{value}\"",
            names.join(", ")
        );
        if let Some(exact) = names.iter().find(|n| n.eq_ignore_ascii_case(value)) {
            msg.push_str(&format!("; values are case-sensitive: write \"{exact}\""));
        } else if let Some(close) = read::closest_field(value, names) {
            msg.push_str(&format!("; did you mean \"{close}\"?"));
        }
        self.error(path, "enum", msg);
        None
    }

    fn max_chars(&mut self, path: &str, value: &Option<String>, max: usize) {
        if let Some(s) = value {
            let n = s.chars().count();
            if n > max {
                let field = last_segment(path);
                self.error(
                    path,
                    "string-length",
                    format!("{field} is {n} characters long, more than {max}; shorten it to at most {max}"),
                );
            }
        }
    }

    fn pool(&mut self, p: &PoolOption) {
        let alg = self.enumerated(
            "pool.lb_algorithm",
            &p.lb_algorithm,
            LbAlgorithm::parse,
            LbAlgorithm::NAMES,
        );
        let proto = self.enumerated(
            "pool.protocol",
            &p.protocol,
            Protocol::parse,
            Protocol::NAMES,
        );

        // Choice: "" counts as an absent type (see the module docs).
        let type_given = non_empty(&p.pool_type);
        let ptype = type_given
            .and_then(|t| self.enumerated("pool.type", t, PoolType::parse, PoolType::NAMES));

        if non_empty(&p.listener_id).is_none()
            && non_empty(&p.loadbalancer_id).is_none()
            && type_given.is_none()
            && !(self.skip)("pool.type")
        {
            self.error(
                "pool",
                "target-required",
                "give at least one of listener_id, loadbalancer_id or type (\"ip\" or \"instance\"); \
                 e.g. add \"listener_id\": the id of the listener this pool serves"
                    .into(),
            );
        }

        let vpc = non_empty(&p.vpc_id).is_some();
        match ptype {
            Some(PoolType::Instance) if !vpc => self.error(
                "pool.vpc_id",
                "vpc-id-with-type",
                "type \"instance\" requires vpc_id; add the id of the pool's VPC, or use type \"ip\"".into(),
            ),
            Some(PoolType::Ip) if vpc => self.error(
                "pool.vpc_id",
                "vpc-id-with-type",
                "vpc_id is not allowed with type \"ip\"; remove vpc_id, or use type \"instance\"".into(),
            ),
            None if vpc && type_given.is_none() && !(self.skip)("pool.type") => self.error(
                "pool.vpc_id",
                "vpc-id-with-type",
                "vpc_id is only allowed with type \"instance\"; add \"type\": \"instance\" or remove vpc_id".into(),
            ),
            _ => {}
        }

        let ipv = p.ip_version.as_deref().and_then(|s| {
            self.enumerated("pool.ip_version", s, IpVersion::parse, IpVersion::NAMES)
        });
        if ipv == Some(IpVersion::Dualstack) && proto == Some(Protocol::Tls) {
            self.error(
                "pool.ip_version",
                "ip-version",
                "ip_version \"dualstack\" is only for TCP, UDP and QUIC pools; use \"v4\" for a TLS pool".into(),
            );
        }
        // The version the pool will have: the request's, else the response default.
        let effective_ipv = ipv.or(match proto {
            Some(Protocol::Tls) => Some(IpVersion::V4),
            Some(_) => Some(IpVersion::Dualstack),
            None => None,
        });

        let any_port = p.any_port_enable.unwrap_or(false);
        if any_port && proto == Some(Protocol::Tls) {
            self.error(
                "pool.any_port_enable",
                "any-port-protocol",
                "any_port_enable is only for QUIC, TCP and UDP pools; remove it or set it to false for a TLS pool".into(),
            );
        }

        self.members(p, proto, ptype, effective_ipv, any_port);
        self.healthmonitor(&p.healthmonitor, proto);
        self.session_persistence(p, proto);
        self.connection_drain(p, proto);
        self.quic_cid(p, alg);

        if alg == Some(LbAlgorithm::QuicCid) && proto.is_some_and(|x| x != Protocol::Quic) {
            self.error(
                "pool.lb_algorithm",
                "lb-algorithm-protocol",
                format!(
                    "lb_algorithm QUIC_CID needs a QUIC pool (only QUIC has connection IDs), but protocol is {}; \
                     use ROUND_ROBIN, LEAST_CONNECTIONS or SOURCE_IP",
                    p.protocol
                ),
            );
        }

        if let Some(id) = &p.project_id {
            let ok = id.len() == 32
                && id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            if !ok {
                self.error(
                    "pool.project_id",
                    "project-id-format",
                    format!(
                        "project_id must be exactly 32 lowercase letters and digits, got \"{id}\" ({} characters); \
                         copy it from the console's \"My Credentials\" page, or remove it (the URL's project_id is used anyway)",
                        id.chars().count()
                    ),
                );
            }
        }
        if let Some(e) = &p.enterprise_project_id {
            if e.is_empty() || e == "0" {
                self.error(
                    "pool.enterprise_project_id",
                    "enterprise-project-id",
                    format!(
                        "enterprise_project_id must not be \"{e}\"; remove it to use the default enterprise project, \
                         or give a non-default enterprise project's id"
                    ),
                );
            }
        }
        self.max_chars("pool.name", &p.name, MAX_NAME_CHARS);
        self.max_chars("pool.description", &p.description, MAX_NAME_CHARS);
    }

    fn members(
        &mut self,
        p: &PoolOption,
        proto: Option<Protocol>,
        ptype: Option<PoolType>,
        ipv: Option<IpVersion>,
        any_port: bool,
    ) {
        let n = p.members.len();
        if n != 2 {
            let hint = match n {
                0 => "add one member with role \"master\" and one with role \"slave\"".to_string(),
                1 => "add the second member (one must be \"master\", the other \"slave\")"
                    .to_string(),
                _ => format!(
                    "remove {} of them, keeping one \"master\" and one \"slave\"",
                    n - 2
                ),
            };
            self.error(
                "pool.members",
                "members-count",
                format!("a master/slave pool has exactly 2 members, got {n}; {hint}"),
            );
        }
        let mut roles = Vec::with_capacity(n);
        for (i, m) in p.members.iter().enumerate() {
            roles.push(self.member(
                m,
                &format!("pool.members[{i}]"),
                proto,
                ptype,
                ipv,
                any_port,
            ));
        }
        if let [Some(a), Some(b)] = roles[..] {
            if a == b {
                let other = if a == Role::Master {
                    Role::Slave
                } else {
                    Role::Master
                };
                self.error(
                    "pool.members[1].role",
                    "member-roles",
                    format!(
                        "pool.members[0] and pool.members[1] are both \"{a}\"; one member must be \"master\" \
                         and the other \"slave\": set pool.members[1].role to \"{other}\""
                    ),
                );
            }
        }
    }

    fn member(
        &mut self,
        m: &MemberOption,
        path: &str,
        proto: Option<Protocol>,
        ptype: Option<PoolType>,
        ipv: Option<IpVersion>,
        any_port: bool,
    ) -> Option<Role> {
        let role = self.enumerated(&format!("{path}.role"), &m.role, Role::parse, Role::NAMES);
        let ap = format!("{path}.address");
        let subnet = non_empty(&m.subnet_cidr_id).is_some();
        match m.address.parse::<IpAddr>() {
            Err(_) => self.error(
                &ap,
                "ip-address",
                format!(
                    "address must be an IPv4 or IPv6 address such as \"192.168.0.10\", got \"{}\"",
                    m.address
                ),
            ),
            Ok(ip) => {
                let special = match ip {
                    IpAddr::V4(a) => {
                        a.is_unspecified()
                            || a.is_loopback()
                            || a.is_multicast()
                            || a.is_broadcast()
                    }
                    IpAddr::V6(a) => a.is_unspecified() || a.is_loopback() || a.is_multicast(),
                };
                if special {
                    self.error(
                        &ap,
                        "ip-address",
                        format!(
                            "address {ip} is an unspecified, loopback, multicast or broadcast address and cannot be a backend; \
                             use the backend server's own IP address"
                        ),
                    );
                } else if !subnet {
                    match ip {
                        IpAddr::V6(_) => self.error(
                            &ap,
                            "private-ipv4",
                            format!(
                                "without subnet_cidr_id the member is an IP-type backend, whose address must be a private IPv4 \
                                 address, got the IPv6 address {ip}; add subnet_cidr_id (the member's IPv6 subnet) or use a private IPv4 address"
                            ),
                        ),
                        IpAddr::V4(a) if !is_private_ipv4(a) => self.warn(
                            &ap,
                            "private-ipv4",
                            format!(
                                "without subnet_cidr_id the member is an IP-type backend, whose address should be a private IPv4 \
                                 address (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16), got the public address {ip}; \
                                 the simulator accepts it, but the real API may not"
                            ),
                        ),
                        IpAddr::V4(_) => {}
                    }
                }
                if ip.is_ipv6() && ipv == Some(IpVersion::V4) {
                    let why = if proto == Some(Protocol::Tls) {
                        "a TLS pool is v4 only; use an IPv4 address"
                    } else {
                        "set pool.ip_version to \"dualstack\" or use an IPv4 address"
                    };
                    self.error(
                        &ap,
                        "ip-version",
                        format!("address {ip} is IPv6 but the pool's ip_version is v4; {why}"),
                    );
                }
            }
        }
        if subnet && ptype == Some(PoolType::Ip) {
            self.error(
                &format!("{path}.subnet_cidr_id"),
                "member-type",
                "a pool of type \"ip\" holds only IP-type backends (no subnet_cidr_id); remove subnet_cidr_id, \
                 or use type \"instance\" with vpc_id"
                    .into(),
            );
        }
        let pp = format!("{path}.protocol_port");
        if let Some(port) = m.protocol_port {
            let in_range = self.range(&pp, port, 1, 65535, "");
            if in_range && any_port {
                self.warn(
                    &pp,
                    "no-effect",
                    "protocol_port has no effect with any_port_enable true (the listener's front port is used); you may remove it".into(),
                );
            }
        } else if !any_port {
            self.error(
                &pp,
                "required",
                format!("{pp} is required unless pool.any_port_enable is true; add the backend's port (1..65535)"),
            );
        }
        self.max_chars(&format!("{path}.name"), &m.name, MAX_NAME_CHARS);
        role
    }

    fn healthmonitor(&mut self, hm: &HealthMonitorOption, proto: Option<Protocol>) {
        let base = "pool.healthmonitor";
        let tp = format!("{base}.type");
        let mt = self.enumerated(
            &tp,
            &hm.monitor_type,
            MonitorType::parse,
            MonitorType::NAMES,
        );
        if let (Some(mt), Some(proto)) = (mt, proto) {
            let allowed: &[MonitorType] = match proto {
                Protocol::Udp | Protocol::Quic => &[MonitorType::UdpConnect],
                // Choice for TLS: the seed is silent; TLS runs over TCP, so as for TCP.
                Protocol::Tcp | Protocol::Tls => {
                    &[MonitorType::Tcp, MonitorType::Http, MonitorType::Https]
                }
            };
            if !allowed.contains(&mt) {
                let names: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
                self.error(
                    &tp,
                    "healthmonitor-type-for-protocol",
                    format!(
                        "a {proto} pool cannot use a {mt} health check; use {}",
                        names.join(" or ")
                    ),
                );
            }
        }
        let delay_ok = self.range(&format!("{base}.delay"), hm.delay, 1, 50, " seconds");
        let timeout_ok = self.range(&format!("{base}.timeout"), hm.timeout, 1, 50, " seconds");
        if delay_ok
            && timeout_ok
            && hm.timeout >= hm.delay
            && !(self.skip)(&format!("{base}.delay"))
        {
            self.warn(
                &format!("{base}.timeout"),
                "timeout-not-below-delay",
                format!(
                    "timeout ({} s) is not below delay ({} s); the API advises timeout < delay, otherwise a slow probe \
                     is still pending when the next one is due; e.g. use timeout {} with delay {}",
                    hm.timeout,
                    hm.delay,
                    (hm.delay - 1).max(1),
                    hm.delay.max(2)
                ),
            );
        }
        self.range(&format!("{base}.max_retries"), hm.max_retries, 1, 10, "");
        if let Some(x) = hm.max_retries_down {
            self.range(&format!("{base}.max_retries_down"), x, 1, 10, "");
        }
        if let Some(x) = hm.monitor_port {
            self.range(&format!("{base}.monitor_port"), x, 1, 65535, "");
        }
        if let Some(method) = &hm.http_method {
            self.enumerated(
                &format!("{base}.http_method"),
                method,
                HttpMethod::parse,
                HttpMethod::NAMES,
            );
        }
        if let Some(path) = &hm.url_path {
            let bad = path
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || URL_PATH_EXTRA.contains(*c)));
            let msg = if !path.starts_with('/') {
                Some(format!("url_path must start with \"/\", got \"{path}\""))
            } else {
                bad.map(|c| format!("url_path may not contain {c:?} (in \"{path}\")"))
            };
            if let Some(msg) = msg {
                self.error(
                    &format!("{base}.url_path"),
                    "url-path",
                    format!(
                        "{msg}; use a path starting with \"/\" made of letters, digits and {URL_PATH_EXTRA} (percent-encode anything else, e.g. a space as %20)"
                    ),
                );
            }
        }
        if let Some(d) = non_empty(&hm.domain_name) {
            let starts_ok = d.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
            let bad = d
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'));
            let msg = if !starts_ok {
                Some(format!(
                    "domain_name must start with a letter or digit, got \"{d}\""
                ))
            } else {
                bad.map(|c| format!("domain_name may not contain {c:?} (in \"{d}\")"))
            };
            if let Some(msg) = msg {
                self.error(
                    &format!("{base}.domain_name"),
                    "domain-name",
                    format!("{msg}; use letters, digits, '-' and '.', e.g. \"www.example.com\""),
                );
            }
        }
        if let Some(codes) = &hm.expected_codes {
            if let Err(msg) = ExpectedCodes::parse(codes) {
                self.error(&format!("{base}.expected_codes"), "expected-codes", msg);
            }
        }
        if let Some(mt) = mt.filter(|m| !m.is_http()) {
            let given = [
                ("http_method", hm.http_method.is_some()),
                ("url_path", hm.url_path.is_some()),
                ("domain_name", non_empty(&hm.domain_name).is_some()),
                ("expected_codes", hm.expected_codes.is_some()),
            ];
            for (field, present) in given {
                if present {
                    self.warn(
                        &format!("{base}.{field}"),
                        "no-effect",
                        format!(
                            "{field} has no effect with a {mt} health check (only HTTP and HTTPS checks use it); remove it \
                             or use type HTTP"
                        ),
                    );
                }
            }
        }
        self.max_chars(&format!("{base}.name"), &hm.name, MAX_NAME_CHARS);
    }

    fn session_persistence(&mut self, p: &PoolOption, proto: Option<Protocol>) {
        let base = "pool.session_persistence";
        let Some(sp) = &p.session_persistence else {
            if proto == Some(Protocol::Quic) && !(self.skip)(base) {
                self.error(
                    base,
                    "quic-needs-source-ip",
                    "a QUIC pool needs session persistence by source IP; add \"session_persistence\": {\"type\": \"SOURCE_IP\"}".into(),
                );
            }
            return;
        };
        let tp = format!("{base}.type");
        let pt = self.enumerated(
            &tp,
            &sp.persistence_type,
            PersistenceType::parse,
            PersistenceType::NAMES,
        );
        if let Some(pt) = pt {
            match proto {
                Some(Protocol::Quic) if pt != PersistenceType::SourceIp => self.error(
                    &tp,
                    "quic-needs-source-ip",
                    format!("a QUIC pool needs session_persistence type SOURCE_IP, got {pt}; set type to \"SOURCE_IP\""),
                ),
                Some(proto @ (Protocol::Tcp | Protocol::Udp | Protocol::Tls))
                    if pt != PersistenceType::SourceIp =>
                {
                    self.warn(
                        &tp,
                        "persistence-type-ignored",
                        format!(
                            "on a {proto} pool session persistence always works by source IP, whatever the type; \
                             {pt} acts as SOURCE_IP, so write \"SOURCE_IP\" to say what happens"
                        ),
                    )
                }
                _ => {}
            }
        }
        if sp.cookie_name.is_some() {
            let cp = format!("{base}.cookie_name");
            if let Some(pt) = pt.filter(|t| *t != PersistenceType::AppCookie) {
                self.error(
                    &cp,
                    "cookie-name-only-app-cookie",
                    format!("cookie_name is only allowed with type APP_COOKIE, got type {pt}; remove cookie_name"),
                );
            }
            self.max_chars(&cp, &sp.cookie_name, MAX_COOKIE_NAME_CHARS);
        }
        if let Some(t) = sp.persistence_timeout {
            // Every pool protocol here is layer 4: 1..60 minutes (HTTP/HTTPS's 1..1440 cannot occur).
            self.range_rule(
                &format!("{base}.persistence_timeout"),
                "persistence-timeout-range",
                t,
                1,
                60,
                " minutes for a TCP, UDP, QUIC or TLS pool",
            );
        }
    }

    fn connection_drain(&mut self, p: &PoolOption, proto: Option<Protocol>) {
        let base = "pool.connection_drain";
        let Some(cd) = &p.connection_drain else {
            return;
        };
        if let Some(proto) = proto.filter(|x| !x.is_tcp_udp_quic()) {
            self.error(
                base,
                "connection-drain-protocol",
                format!("connection_drain is only for TCP, UDP and QUIC pools, not {proto}; remove connection_drain"),
            );
        }
        let tp = format!("{base}.timeout");
        match cd.timeout {
            Some(t) => {
                self.range(&tp, t, 10, 4000, " seconds");
            }
            None if cd.enable && !(self.skip)(&format!("{base}.enable")) => self.error(
                &tp,
                "drain-timeout-required",
                "connection_drain.timeout is required when enable is true; add \"timeout\" in seconds (10..4000)".into(),
            ),
            None => {}
        }
    }

    fn quic_cid(&mut self, p: &PoolOption, alg: Option<LbAlgorithm>) {
        let base = "pool.quic_cid_hash_strategy";
        let Some(q) = &p.quic_cid_hash_strategy else {
            return;
        };
        let len_ok = q
            .len
            .map(|l| self.range(&format!("{base}.len"), l, 1, 20, " bytes"));
        let off_ok = q
            .offset
            .map(|o| self.range(&format!("{base}.offset"), o, 0, 19, ""));
        if len_ok != Some(false) && off_ok != Some(false) {
            let len = q.len.unwrap_or(3);
            let offset = q.offset.unwrap_or(1);
            if len + offset > 20 {
                self.warn(
                    base,
                    "quic-cid-slice",
                    format!(
                        "offset {offset} + len {len} runs past byte 20, the longest connection ID; \
                         the hashed slice will be cut short, keep offset + len <= 20"
                    ),
                );
            }
        }
        if let Some(alg) = alg.filter(|a| *a != LbAlgorithm::QuicCid) {
            self.warn(
                base,
                "quic-cid-no-effect",
                format!(
                    "quic_cid_hash_strategy takes effect only with lb_algorithm QUIC_CID, but lb_algorithm is {alg}; \
                     remove it or use QUIC_CID"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::problem::RULES;
    use serde_json::json;

    fn body() -> Value {
        json!({"pool": {"lb_algorithm": "ROUND_ROBIN", "protocol": "TCP", "type": "ip",
            "members": [
                {"address": "10.0.0.1", "role": "master", "protocol_port": 80},
                {"address": "10.0.0.2", "role": "slave", "protocol_port": 80}],
            "healthmonitor": {"type": "TCP", "delay": 5, "timeout": 3, "max_retries": 3}}})
    }

    #[test]
    fn unreadable_fields_draw_no_second_problem() {
        let mut v = body();
        v["pool"]["healthmonitor"]["delay"] = json!("5");
        v["pool"]["protocol"] = json!(7);
        let c = check_value(&v, CheckOptions::default());
        let rules: Vec<&str> = c.errors.iter().map(|p| p.rule.as_str()).collect();
        // No "range" on delay, no "enum" on protocol, no timeout warning.
        assert_eq!(rules, vec!["wrong-type", "wrong-type"], "{:#?}", c.errors);
        assert!(c.warnings.is_empty());
        assert!(c.request.is_some());
    }

    #[test]
    fn missing_healthmonitor_is_one_problem() {
        let mut v = body();
        v["pool"].as_object_mut().unwrap().remove("healthmonitor");
        let c = check_value(&v, CheckOptions::default());
        assert_eq!(c.errors.len(), 1, "{:#?}", c.errors);
        assert_eq!(c.errors[0].path, "pool.healthmonitor");
    }

    #[test]
    fn strict_moves_warnings_into_errors() {
        let mut v = body();
        v["pool"]["healthmonitor"]["timeout"] = json!(9);
        let lax = check_value(&v, CheckOptions::default());
        assert!(lax.is_valid());
        assert_eq!(lax.warnings.len(), 1);
        let strict = check_value(&v, CheckOptions { strict: true });
        assert!(!strict.is_valid());
        assert_eq!(strict.errors, lax.warnings);
        let (e, w) = validate_request(lax.request.as_ref().unwrap(), CheckOptions::default());
        assert!(e.is_empty());
        assert_eq!(w, lax.warnings);
    }

    #[test]
    fn rule_table_is_unique_and_kebab_case() {
        let mut names: Vec<&str> = RULES.iter().map(|r| r.0).collect();
        assert!(names.iter().all(|n| n
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')));
        names.sort();
        names.dedup();
        assert_eq!(names.len(), RULES.len());
    }
}
