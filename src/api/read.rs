//! Reading a request body into [`types::CreateRequest`], collecting every shape problem.
//!
//! serde's derive stops at the first error and words it for programmers; a user fixing a body
//! wants all problems at once, each with a path and a hint. So this module walks the
//! [`serde_json::Value`] by hand:
//!
//! * an unknown field is an `unknown-field` error that suggests the closest known field;
//! * a value of the wrong JSON type is a `wrong-type` error naming the expected type;
//! * JSON `null` on an optional field means "absent" (the Python SDK sends explicit nulls);
//! * a missing (or null) required field is a `required` error;
//! * integers must be JSON integers: `5.0` and `1e3` are `wrong-type`, and an integer that does
//!   not fit in 64 bits is a `range` error (never a panic or a silent wrap).
//!
//! Fields that could not be read keep a default value in the returned struct and their path is
//! recorded in [`ReadOutcome::unreadable`], so that validation does not pile a second, misleading
//! problem (such as "delay must be 1..50, got 0") on top of the first one.
//!
//! [`parse_json`] is the byte-level entry: size limit, UTF-8, JSON syntax, nesting depth.

use serde_json::{Map, Value};

use super::problem::Problem;
use super::types::{
    ConnectionDrain, CreateRequest, HealthMonitorOption, MemberOption, PoolOption,
    QuicCidHashStrategy, SessionPersistenceOption,
};

/// The largest body accepted, in bytes: 1 MiB. A valid body is well under 4 KiB; the limit only
/// keeps a mistaken upload (a log file, an image) from being parsed at all.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Known fields of each object, in the API's order; used both to reject unknown fields and to
/// suggest the closest known one.
pub const TOP_FIELDS: &[&str] = &["pool"];
pub const POOL_FIELDS: &[&str] = &[
    "lb_algorithm",
    "protocol",
    "type",
    "members",
    "healthmonitor",
    "listener_id",
    "loadbalancer_id",
    "vpc_id",
    "ip_version",
    "session_persistence",
    "any_port_enable",
    "connection_drain",
    "quic_cid_hash_strategy",
    "name",
    "description",
    "project_id",
    "enterprise_project_id",
    "public_border_group",
];
pub const MEMBER_FIELDS: &[&str] = &[
    "address",
    "role",
    "protocol_port",
    "subnet_cidr_id",
    "admin_state_up",
    "name",
];
pub const HEALTHMONITOR_FIELDS: &[&str] = &[
    "type",
    "delay",
    "timeout",
    "max_retries",
    "max_retries_down",
    "monitor_port",
    "http_method",
    "url_path",
    "domain_name",
    "expected_codes",
    "name",
];
pub const SESSION_PERSISTENCE_FIELDS: &[&str] = &["type", "cookie_name", "persistence_timeout"];
pub const CONNECTION_DRAIN_FIELDS: &[&str] = &["enable", "timeout"];
pub const QUIC_CID_FIELDS: &[&str] = &["len", "offset"];

/// Parses raw body bytes into JSON, turning every failure into one [`Problem`] at path `$`.
///
/// Rejects: an empty (or whitespace-only) body (`empty-body`), more than [`MAX_BODY_BYTES`]
/// (`body-too-large`), invalid UTF-8 (`invalid-utf8`), invalid or truncated JSON (`invalid-json`,
/// with serde_json's line and column) and nesting deeper than serde_json's recursion limit of
/// 128 (`too-deep`). The size check comes first so a huge buffer is never scanned further.
/// A leading UTF-8 byte-order mark is skipped.
pub fn parse_json(bytes: &[u8]) -> Result<Value, Problem> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(Problem::new(
            "$",
            "body-too-large",
            format!(
                "the body is {} bytes, more than the limit of {} bytes (1 MiB); send only the {{\"pool\": {{...}}}} object",
                bytes.len(),
                MAX_BODY_BYTES
            ),
        ));
    }
    // A UTF-8 byte-order mark (as some Windows editors write) is not JSON; skip it.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Problem::new(
            "$",
            "empty-body",
            "the body is empty; send a JSON object {\"pool\": {...}}",
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Problem::new(
            "$",
            "invalid-utf8",
            format!(
                "the body is not valid UTF-8 (bad byte at offset {}); save the file as UTF-8",
                e.valid_up_to()
            ),
        )
    })?;
    serde_json::from_str::<Value>(text).map_err(|e| {
        let shown = e.to_string();
        if shown.starts_with("recursion limit exceeded") {
            Problem::new(
                "$",
                "too-deep",
                format!(
                    "the body nests arrays/objects too deeply ({shown}); a pool body needs at most 4 levels, remove the extra nesting"
                ),
            )
        } else {
            Problem::new(
                "$",
                "invalid-json",
                format!("the body is not valid JSON: {shown}; fix the JSON syntax at that place"),
            )
        }
    })
}

/// What reading produced: the request (when the top level was `{"pool": {...}}`), the problems
/// found, and the paths whose values could not be read (missing or wrong type).
#[derive(Debug, Clone, Default)]
pub struct ReadOutcome {
    pub request: Option<CreateRequest>,
    pub errors: Vec<Problem>,
    pub unreadable: Vec<String>,
}

impl ReadOutcome {
    /// True when `path` is, or lies under, a path that could not be read: a problem there would
    /// only repeat (or contradict) the reading problem.
    pub fn is_unreadable(&self, path: &str) -> bool {
        self.unreadable.iter().any(|bad| is_under(path, bad))
    }
}

/// `path` equals `prefix` or is a field/item below it.
pub fn is_under(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('.') || rest.starts_with('['),
        None => false,
    }
}

/// Reads a whole body (`{"pool": {...}}`) from a JSON value.
pub fn read_request(value: &Value) -> ReadOutcome {
    let mut r = Reader::default();
    let request = r.top(value);
    ReadOutcome {
        request,
        errors: r.errors,
        unreadable: r.unreadable,
    }
}

/// Names a JSON value's type (and a short rendering of scalars) for "got ..." in messages.
pub fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => {
            let shown: String = s.chars().take(40).collect();
            let more = if s.chars().count() > 40 { "..." } else { "" };
            format!("the string \"{shown}{more}\"")
        }
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// The known field closest to `unknown`, when it is close enough to be a likely typo.
pub fn closest_field<'k>(unknown: &str, known: &[&'k str]) -> Option<&'k str> {
    let lower = unknown.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(&lower, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[derive(Default)]
struct Reader {
    errors: Vec<Problem>,
    unreadable: Vec<String>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl Reader {
    fn fail(&mut self, path: String, rule: &str, message: String) {
        self.unreadable.push(path.clone());
        self.errors.push(Problem::new(path, rule, message));
    }

    fn wrong_type(&mut self, path: String, expected: &str, got: &Value) {
        let msg = format!("{path}: expected {expected}, got {}", describe(got));
        self.fail(path, "wrong-type", msg);
    }

    /// Reports every key of `map` that is not in `known`.
    fn unknown_fields(&mut self, map: &Map<String, Value>, path: &str, known: &[&str]) {
        for key in map.keys() {
            if known.contains(&key.as_str()) {
                continue;
            }
            let field_path = if path.is_empty() {
                format!("$.{key}")
            } else {
                join(path, key)
            };
            let where_ = if path.is_empty() { "the body" } else { path };
            let msg = match closest_field(key, known) {
                Some(k) => format!("unknown field \"{key}\" in {where_}; did you mean \"{k}\"?"),
                None => format!(
                    "unknown field \"{key}\" in {where_}; remove it (known fields: {})",
                    known.join(", ")
                ),
            };
            self.errors
                .push(Problem::new(field_path, "unknown-field", msg));
        }
    }

    /// The value of `key`, with JSON null treated as absent.
    fn get<'v>(map: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
        map.get(key).filter(|v| !v.is_null())
    }

    fn missing(&mut self, path: &str, key: &str, what: &str) {
        let p = join(path, key);
        let msg = format!("{p} is required; add {what}");
        self.fail(p, "required", msg);
    }

    fn opt_str(&mut self, map: &Map<String, Value>, path: &str, key: &str) -> Option<String> {
        match Self::get(map, key)? {
            Value::String(s) => Some(s.clone()),
            other => {
                self.wrong_type(join(path, key), "a string", other);
                None
            }
        }
    }

    fn req_str(&mut self, map: &Map<String, Value>, path: &str, key: &str, what: &str) -> String {
        if Self::get(map, key).is_none() {
            self.missing(path, key, what);
            return String::new();
        }
        self.opt_str(map, path, key).unwrap_or_default()
    }

    fn opt_bool(&mut self, map: &Map<String, Value>, path: &str, key: &str) -> Option<bool> {
        match Self::get(map, key)? {
            Value::Bool(b) => Some(*b),
            other => {
                self.wrong_type(join(path, key), "a boolean (true or false)", other);
                None
            }
        }
    }

    fn opt_int(&mut self, map: &Map<String, Value>, path: &str, key: &str) -> Option<i64> {
        let v = Self::get(map, key)?;
        let p = join(path, key);
        match v {
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    return Some(i);
                }
                // Either a u64 above i64::MAX, or a float. serde_json (without
                // arbitrary_precision) reads integers beyond u64 as floats, so a float with no
                // fraction and a huge magnitude is an integer that is simply too large.
                let too_big = n.is_u64()
                    || n.as_f64()
                        .is_some_and(|f| f.is_finite() && f.fract() == 0.0 && f.abs() >= 9.2e18);
                if too_big {
                    let msg = format!(
                        "{p}: the integer {n} is far too large (it does not fit in 64 bits); use a small value in the field's range"
                    );
                    self.fail(p, "range", msg);
                } else {
                    let msg = format!(
                        "{p}: expected an integer, got {}; write it without a decimal point or exponent",
                        describe(v)
                    );
                    self.fail(p, "wrong-type", msg);
                }
                None
            }
            other => {
                self.wrong_type(p, "an integer", other);
                None
            }
        }
    }

    fn req_int(&mut self, map: &Map<String, Value>, path: &str, key: &str, what: &str) -> i64 {
        if Self::get(map, key).is_none() {
            self.missing(path, key, what);
            return 0;
        }
        self.opt_int(map, path, key).unwrap_or_default()
    }

    /// The object at `key`, or None (absent, null, or wrong type, the latter reported).
    fn opt_obj<'v>(
        &mut self,
        map: &'v Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<&'v Map<String, Value>> {
        match Self::get(map, key)? {
            Value::Object(m) => Some(m),
            other => {
                self.wrong_type(join(path, key), "an object", other);
                None
            }
        }
    }

    fn top(&mut self, value: &Value) -> Option<CreateRequest> {
        let Value::Object(map) = value else {
            let msg = format!(
                "the body must be a JSON object {{\"pool\": {{...}}}}, got {}",
                describe(value)
            );
            self.fail("$".into(), "wrong-type", msg);
            return None;
        };
        self.unknown_fields(map, "", TOP_FIELDS);
        match map.get("pool") {
            None | Some(Value::Null) => {
                self.fail(
                    "pool".into(),
                    "required",
                    "the body must hold the pool under the key \"pool\": {\"pool\": {...}}".into(),
                );
                None
            }
            Some(Value::Object(pool)) => Some(CreateRequest {
                pool: self.pool(pool),
            }),
            Some(other) => {
                self.wrong_type("pool".into(), "an object", other);
                None
            }
        }
    }

    fn pool(&mut self, m: &Map<String, Value>) -> PoolOption {
        let p = "pool";
        self.unknown_fields(m, p, POOL_FIELDS);
        let lb_algorithm = self.req_str(
            m,
            p,
            "lb_algorithm",
            "one of ROUND_ROBIN, LEAST_CONNECTIONS, SOURCE_IP, QUIC_CID",
        );
        let protocol = self.req_str(m, p, "protocol", "one of TCP, UDP, QUIC, TLS");
        let pool_type = self.opt_str(m, p, "type");
        let members = match Self::get(m, "members") {
            None => {
                self.missing(
                    p,
                    "members",
                    "an array of two members, one master and one slave",
                );
                Vec::new()
            }
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| self.member(item, &format!("pool.members[{i}]")))
                .collect(),
            Some(other) => {
                self.wrong_type("pool.members".into(), "an array", other);
                Vec::new()
            }
        };
        let healthmonitor = match Self::get(m, "healthmonitor") {
            None => {
                self.missing(
                    p,
                    "healthmonitor",
                    "a health check object, e.g. {\"type\": \"TCP\", \"delay\": 5, \"timeout\": 3, \"max_retries\": 3}",
                );
                HealthMonitorOption::default()
            }
            Some(Value::Object(hm)) => self.healthmonitor(hm),
            Some(other) => {
                self.wrong_type("pool.healthmonitor".into(), "an object", other);
                HealthMonitorOption::default()
            }
        };
        let listener_id = self.opt_str(m, p, "listener_id");
        let loadbalancer_id = self.opt_str(m, p, "loadbalancer_id");
        let vpc_id = self.opt_str(m, p, "vpc_id");
        let ip_version = self.opt_str(m, p, "ip_version");
        let session_persistence = self
            .opt_obj(m, p, "session_persistence")
            .map(|sp| self.session_persistence(sp));
        let any_port_enable = self.opt_bool(m, p, "any_port_enable");
        let connection_drain = self
            .opt_obj(m, p, "connection_drain")
            .map(|cd| self.connection_drain(cd));
        let quic_cid_hash_strategy = self
            .opt_obj(m, p, "quic_cid_hash_strategy")
            .map(|q| self.quic_cid(q));
        PoolOption {
            lb_algorithm,
            protocol,
            pool_type,
            members,
            healthmonitor,
            listener_id,
            loadbalancer_id,
            vpc_id,
            ip_version,
            session_persistence,
            any_port_enable,
            connection_drain,
            quic_cid_hash_strategy,
            name: self.opt_str(m, p, "name"),
            description: self.opt_str(m, p, "description"),
            project_id: self.opt_str(m, p, "project_id"),
            enterprise_project_id: self.opt_str(m, p, "enterprise_project_id"),
            public_border_group: self.opt_str(m, p, "public_border_group"),
        }
    }

    fn member(&mut self, v: &Value, p: &str) -> MemberOption {
        let Value::Object(m) = v else {
            // Keep a placeholder so the member count and indexes stay what the user wrote.
            self.wrong_type(p.to_string(), "an object (a member)", v);
            return MemberOption::default();
        };
        self.unknown_fields(m, p, MEMBER_FIELDS);
        MemberOption {
            address: self.req_str(
                m,
                p,
                "address",
                "the backend's IP address, e.g. \"192.168.0.10\"",
            ),
            role: self.req_str(m, p, "role", "\"master\" or \"slave\""),
            protocol_port: self.opt_int(m, p, "protocol_port"),
            subnet_cidr_id: self.opt_str(m, p, "subnet_cidr_id"),
            admin_state_up: self.opt_bool(m, p, "admin_state_up"),
            name: self.opt_str(m, p, "name"),
        }
    }

    fn healthmonitor(&mut self, m: &Map<String, Value>) -> HealthMonitorOption {
        let p = "pool.healthmonitor";
        self.unknown_fields(m, p, HEALTHMONITOR_FIELDS);
        HealthMonitorOption {
            monitor_type: self.req_str(m, p, "type", "one of TCP, UDP_CONNECT, HTTP, HTTPS"),
            delay: self.req_int(m, p, "delay", "the probe interval in seconds (1..50)"),
            timeout: self.req_int(
                m,
                p,
                "timeout",
                "the probe timeout in seconds (1..50, below delay)",
            ),
            max_retries: self.req_int(
                m,
                p,
                "max_retries",
                "the successes needed to turn a member ONLINE (1..10)",
            ),
            max_retries_down: self.opt_int(m, p, "max_retries_down"),
            monitor_port: self.opt_int(m, p, "monitor_port"),
            http_method: self.opt_str(m, p, "http_method"),
            url_path: self.opt_str(m, p, "url_path"),
            domain_name: self.opt_str(m, p, "domain_name"),
            expected_codes: self.opt_str(m, p, "expected_codes"),
            name: self.opt_str(m, p, "name"),
        }
    }

    fn session_persistence(&mut self, m: &Map<String, Value>) -> SessionPersistenceOption {
        let p = "pool.session_persistence";
        self.unknown_fields(m, p, SESSION_PERSISTENCE_FIELDS);
        SessionPersistenceOption {
            persistence_type: self.req_str(
                m,
                p,
                "type",
                "one of SOURCE_IP, HTTP_COOKIE, APP_COOKIE",
            ),
            cookie_name: self.opt_str(m, p, "cookie_name"),
            persistence_timeout: self.opt_int(m, p, "persistence_timeout"),
        }
    }

    fn connection_drain(&mut self, m: &Map<String, Value>) -> ConnectionDrain {
        let p = "pool.connection_drain";
        self.unknown_fields(m, p, CONNECTION_DRAIN_FIELDS);
        let enable = if Self::get(m, "enable").is_none() {
            self.missing(p, "enable", "true or false");
            false
        } else {
            self.opt_bool(m, p, "enable").unwrap_or_default()
        };
        ConnectionDrain {
            enable,
            timeout: self.opt_int(m, p, "timeout"),
        }
    }

    fn quic_cid(&mut self, m: &Map<String, Value>) -> QuicCidHashStrategy {
        let p = "pool.quic_cid_hash_strategy";
        self.unknown_fields(m, p, QUIC_CID_FIELDS);
        QuicCidHashStrategy {
            len: self.opt_int(m, p, "len"),
            offset: self.opt_int(m, p, "offset"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(o: &ReadOutcome) -> Vec<(String, String)> {
        o.errors
            .iter()
            .map(|p| (p.path.clone(), p.rule.clone()))
            .collect()
    }

    #[test]
    fn empty_and_whitespace_bodies_are_empty() {
        assert_eq!(parse_json(b"").unwrap_err().rule, "empty-body");
        assert_eq!(parse_json(b" \n\t").unwrap_err().rule, "empty-body");
    }

    #[test]
    fn too_large_is_rejected_before_parsing() {
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        let p = parse_json(&big).unwrap_err();
        assert_eq!(p.rule, "body-too-large");
        assert!(p.message.contains(&(MAX_BODY_BYTES + 1).to_string()));
        // Exactly the limit is still parsed (and here found empty).
        assert_eq!(parse_json(&big[1..]).unwrap_err().rule, "empty-body");
    }

    #[test]
    fn invalid_utf8_and_json() {
        assert_eq!(
            parse_json(b"{\"pool\": \"\xff\"}").unwrap_err().rule,
            "invalid-utf8"
        );
        let p = parse_json(b"{\"pool\": {\n  \"a\": ").unwrap_err();
        assert_eq!(p.rule, "invalid-json");
        assert!(p.message.contains("line 2"), "{}", p.message);
        assert_eq!(
            parse_json(b"{\"a\": 1e999}").unwrap_err().rule,
            "invalid-json"
        );
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        assert_eq!(
            parse_json(b"\xEF\xBB\xBF{}").unwrap(),
            serde_json::json!({})
        );
        assert_eq!(parse_json(b"\xEF\xBB\xBF").unwrap_err().rule, "empty-body");
    }

    #[test]
    fn deep_nesting_is_too_deep() {
        let mut s = String::new();
        s.push_str(&"[".repeat(10_000));
        s.push_str(&"]".repeat(10_000));
        let p = parse_json(s.as_bytes()).unwrap_err();
        assert_eq!(p.rule, "too-deep");
        assert_eq!(p.path, "$");
    }

    #[test]
    fn unknown_field_suggests_closest() {
        let v = json!({"pool": {"lb_algorithm": "ROUND_ROBIN", "protocol": "TCP", "members": [],
            "healthmonitor": {"type": "TCP", "dealy": 5, "delay": 5, "timeout": 3, "max_retries": 3}}});
        let o = read_request(&v);
        let p = o.errors.iter().find(|p| p.rule == "unknown-field").unwrap();
        assert_eq!(p.path, "pool.healthmonitor.dealy");
        assert!(
            p.message.contains("did you mean \"delay\""),
            "{}",
            p.message
        );
    }

    #[test]
    fn far_unknown_field_lists_known_fields() {
        let v = json!({"pool": {}, "zzzzzzzzzz": 1});
        let o = read_request(&v);
        let p = o.errors.iter().find(|p| p.rule == "unknown-field").unwrap();
        assert_eq!(p.path, "$.zzzzzzzzzz");
        assert!(p.message.contains("known fields: pool"));
    }

    #[test]
    fn integers_must_be_json_integers() {
        for bad in [json!(5.0), json!(1e3), json!("5"), json!(true)] {
            let v = json!({"pool": {"healthmonitor": {"delay": bad}}});
            let o = read_request(&v);
            assert!(
                rules(&o).contains(&("pool.healthmonitor.delay".into(), "wrong-type".into())),
                "{:?}",
                o.errors
            );
            assert!(o.is_unreadable("pool.healthmonitor.delay"));
        }
    }

    #[test]
    fn huge_integers_are_range_errors() {
        let v: Value = serde_json::from_str(
            r#"{"pool": {"healthmonitor": {"delay": 99999999999999999999999, "timeout": 18446744073709551615}}}"#,
        )
        .unwrap();
        let o = read_request(&v);
        let r = rules(&o);
        assert!(r.contains(&("pool.healthmonitor.delay".into(), "range".into())));
        assert!(r.contains(&("pool.healthmonitor.timeout".into(), "range".into())));
    }

    #[test]
    fn null_is_absent() {
        let v = json!({"pool": {"lb_algorithm": "ROUND_ROBIN", "protocol": "TCP", "vpc_id": null,
            "members": null, "healthmonitor": {"type": "TCP", "delay": 5, "timeout": 3,
            "max_retries": 3, "url_path": null}}});
        let o = read_request(&v);
        let req = o.request.clone().unwrap();
        assert_eq!(req.pool.vpc_id, None);
        assert_eq!(req.pool.healthmonitor.url_path, None);
        // A null required field is a missing required field.
        assert_eq!(rules(&o), vec![("pool.members".into(), "required".into())]);
    }

    #[test]
    fn top_level_shape() {
        assert_eq!(
            rules(&read_request(&json!([1]))),
            vec![("$".into(), "wrong-type".into())]
        );
        assert_eq!(
            rules(&read_request(&json!({}))),
            vec![("pool".into(), "required".into())]
        );
        assert_eq!(
            rules(&read_request(&json!({"pool": 3}))),
            vec![("pool".into(), "wrong-type".into())]
        );
    }

    #[test]
    fn non_object_member_keeps_index() {
        let v = json!({"pool": {"members": [{"address": "10.0.0.1", "role": "master"}, 7]}});
        let o = read_request(&v);
        assert_eq!(o.request.as_ref().unwrap().pool.members.len(), 2);
        assert!(rules(&o).contains(&("pool.members[1]".into(), "wrong-type".into())));
        assert!(o.is_unreadable("pool.members[1].role"));
        assert!(!o.is_unreadable("pool.members[10].role"));
    }
}
