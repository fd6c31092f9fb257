//! One finding about a request body: where it is, which rule it breaks, and what to do about it.
//!
//! `path` uses the API's own field names (`pool.members[1].role`, `pool.healthmonitor.delay`);
//! problems about the body as a whole (empty, not JSON, too deep) use `$`. `rule` is a short,
//! stable kebab-case name that scripts and tests may match on; `message` is for a person and
//! always says what would be accepted.

use serde::Serialize;

/// A rule broken by a request body (or a warning about a value the API accepts but that
/// probably does not do what the user meant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Where: `$` for the whole body, else a dotted path with `[i]` for array items.
    pub path: String,
    /// Which rule: a stable kebab-case name such as `range` or `member-roles`.
    pub rule: String,
    /// What is wrong and what to do instead.
    pub message: String,
}

impl Problem {
    /// Builds a problem; takes anything string-like so call sites stay short.
    pub fn new(
        path: impl Into<String>,
        rule: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Problem {
            path: path.into(),
            rule: rule.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} [{}]", self.path, self.message, self.rule)
    }
}

/// How bad a problem is. Warnings are accepted by the API (and by the simulator) unless the
/// caller asked for strict checking, which turns every warning into an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Severity {
    Error,
    Warning,
}

/// Every rule name a [`Problem`] can carry, with its usual severity and a one-line summary;
/// for `--help`, the README and tests (which check that no other name is ever produced).
pub const RULES: &[(&str, Severity, &str)] = &[
    // Reading the body.
    ("empty-body", Severity::Error, "the body is empty"),
    ("body-too-large", Severity::Error, "the body is over 1 MiB"),
    ("invalid-utf8", Severity::Error, "the body is not UTF-8"),
    (
        "invalid-json",
        Severity::Error,
        "the body is not valid JSON (line and column given)",
    ),
    (
        "too-deep",
        Severity::Error,
        "arrays/objects nested deeper than 128 levels",
    ),
    (
        "wrong-type",
        Severity::Error,
        "a value has the wrong JSON type",
    ),
    (
        "unknown-field",
        Severity::Error,
        "a field the API does not know (closest one suggested)",
    ),
    (
        "required",
        Severity::Error,
        "a required field is missing or null",
    ),
    // Single fields.
    (
        "enum",
        Severity::Error,
        "a value outside the field's enumeration",
    ),
    (
        "range",
        Severity::Error,
        "a number outside the field's range",
    ),
    (
        "string-length",
        Severity::Error,
        "name/description over 255 chars, cookie_name over 1024",
    ),
    (
        "ip-address",
        Severity::Error,
        "a member address that is not a usable IP address",
    ),
    (
        "url-path",
        Severity::Error,
        "url_path not starting with / or with a forbidden character",
    ),
    (
        "domain-name",
        Severity::Error,
        "domain_name not of letters, digits, '-', '.'",
    ),
    (
        "expected-codes",
        Severity::Error,
        "expected_codes outside the grammar (5 items, 200..599)",
    ),
    (
        "project-id-format",
        Severity::Error,
        "project_id not 32 of [a-z0-9]",
    ),
    (
        "enterprise-project-id",
        Severity::Error,
        "enterprise_project_id \"\" or \"0\"",
    ),
    // Across fields.
    (
        "target-required",
        Severity::Error,
        "none of listener_id, loadbalancer_id, type",
    ),
    (
        "vpc-id-with-type",
        Severity::Error,
        "instance without vpc_id, or vpc_id without instance",
    ),
    (
        "ip-version",
        Severity::Error,
        "dualstack on a TLS pool, or an IPv6 member in a v4 pool",
    ),
    ("members-count", Severity::Error, "not exactly two members"),
    (
        "member-roles",
        Severity::Error,
        "not one master and one slave",
    ),
    (
        "member-type",
        Severity::Error,
        "a member with subnet_cidr_id in a pool of type ip",
    ),
    (
        "private-ipv4",
        Severity::Warning,
        "a public IPv4 without subnet (an IPv6 one is an error)",
    ),
    (
        "healthmonitor-type-for-protocol",
        Severity::Error,
        "a check type the pool protocol does not allow",
    ),
    (
        "timeout-not-below-delay",
        Severity::Warning,
        "healthmonitor timeout >= delay",
    ),
    (
        "no-effect",
        Severity::Warning,
        "a field that does nothing in this configuration",
    ),
    (
        "quic-needs-source-ip",
        Severity::Error,
        "a QUIC pool without SOURCE_IP persistence",
    ),
    (
        "persistence-type-ignored",
        Severity::Warning,
        "non-SOURCE_IP persistence on a TCP/UDP/TLS pool",
    ),
    (
        "cookie-name-only-app-cookie",
        Severity::Error,
        "cookie_name without type APP_COOKIE",
    ),
    (
        "persistence-timeout-range",
        Severity::Error,
        "persistence_timeout outside 1..60 minutes",
    ),
    (
        "any-port-protocol",
        Severity::Error,
        "any_port_enable on a TLS pool",
    ),
    (
        "connection-drain-protocol",
        Severity::Error,
        "connection_drain on a TLS pool",
    ),
    (
        "drain-timeout-required",
        Severity::Error,
        "connection_drain enabled without timeout",
    ),
    (
        "lb-algorithm-protocol",
        Severity::Error,
        "QUIC_CID on a pool that is not QUIC",
    ),
    (
        "quic-cid-no-effect",
        Severity::Warning,
        "quic_cid_hash_strategy without QUIC_CID",
    ),
    (
        "quic-cid-slice",
        Severity::Warning,
        "quic_cid offset + len past 20 bytes",
    ),
    // Never expected: a validated request failed to convert (a bug).
    (
        "internal",
        Severity::Error,
        "a bug: a validated request did not convert",
    ),
];
