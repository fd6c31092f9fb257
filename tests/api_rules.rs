//! Every rule of spec/api.md at its edges, through the library's public API: the last valid
//! value passes, the first invalid one fails with the exact path and rule.

use elbsim::api::pool::{HttpMethod, LbAlgorithm, MonitorType, Protocol};
use elbsim::api::{check_bytes, check_value, CheckOptions, Checked, Pool};
use serde_json::{json, Value};

/// A valid body that draws no warning at all.
fn base() -> Value {
    json!({"pool": {
        "lb_algorithm": "ROUND_ROBIN",
        "protocol": "TCP",
        "type": "ip",
        "listener_id": "0b11747a-b139-492f-9692-2df0b1c87193",
        "members": [
            {"address": "192.168.0.10", "role": "master", "protocol_port": 80},
            {"address": "192.168.0.11", "role": "slave", "protocol_port": 80}
        ],
        "healthmonitor": {"type": "TCP", "delay": 5, "timeout": 3, "max_retries": 3}
    }})
}

/// `base()` as a QUIC pool (UDP_CONNECT check, SOURCE_IP persistence, QUIC_CID).
fn quic() -> Value {
    let mut v = base();
    set(&mut v, "/pool/protocol", json!("QUIC"));
    set(&mut v, "/pool/lb_algorithm", json!("QUIC_CID"));
    set(&mut v, "/pool/healthmonitor/type", json!("UDP_CONNECT"));
    set(
        &mut v,
        "/pool/session_persistence",
        json!({"type": "SOURCE_IP"}),
    );
    v
}

/// `base()` with an HTTP health check.
fn http() -> Value {
    let mut v = base();
    set(&mut v, "/pool/healthmonitor/type", json!("HTTP"));
    v
}

/// Sets (or inserts) the value at a JSON pointer whose parent exists.
fn set(v: &mut Value, pointer: &str, new: Value) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    match v.pointer_mut(parent).unwrap() {
        Value::Object(m) => {
            m.insert(key.to_string(), new);
        }
        Value::Array(a) => a[key.parse::<usize>().unwrap()] = new,
        _ => panic!("{parent} is not a container"),
    }
}

fn del(v: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    match v.pointer_mut(parent).unwrap() {
        Value::Object(m) => {
            m.remove(key);
        }
        Value::Array(a) => {
            a.remove(key.parse::<usize>().unwrap());
        }
        _ => panic!("{parent} is not a container"),
    }
}

fn with(mut v: Value, pointer: &str, new: Value) -> Value {
    set(&mut v, pointer, new);
    v
}

fn check(v: &Value) -> Checked {
    check_value(v, CheckOptions::default())
}

fn pairs(ps: &[elbsim::api::Problem]) -> Vec<(String, String)> {
    ps.iter()
        .map(|p| (p.path.clone(), p.rule.clone()))
        .collect()
}

#[track_caller]
fn assert_ok(v: &Value) {
    let c = check(v);
    assert!(c.is_valid(), "expected valid, got errors {:#?}", c.errors);
}

#[track_caller]
fn assert_clean(v: &Value) {
    let c = check(v);
    assert!(c.is_valid(), "expected valid, got errors {:#?}", c.errors);
    assert!(
        c.warnings.is_empty(),
        "expected no warning, got {:#?}",
        c.warnings
    );
}

#[track_caller]
fn assert_fails(v: &Value, path: &str, rule: &str) {
    let c = check(v);
    assert!(
        pairs(&c.errors).contains(&(path.to_string(), rule.to_string())),
        "expected error {rule} at {path}, got errors {:#?}",
        c.errors
    );
    for p in &c.errors {
        assert!(!p.message.is_empty());
        assert!(
            elbsim::api::problem::RULES.iter().any(|r| r.0 == p.rule),
            "{}",
            p.rule
        );
    }
}

#[track_caller]
fn assert_warns(v: &Value, path: &str, rule: &str) {
    let c = check(v);
    assert!(c.is_valid(), "expected valid, got errors {:#?}", c.errors);
    assert!(
        pairs(&c.warnings).contains(&(path.to_string(), rule.to_string())),
        "expected warning {rule} at {path}, got warnings {:#?}",
        c.warnings
    );
    let strict = check_value(v, CheckOptions { strict: true });
    assert!(pairs(&strict.errors).contains(&(path.to_string(), rule.to_string())));
    assert!(strict.warnings.is_empty());
}

/// Checks `lo` and `hi` pass and `lo - 1` and `hi + 1` fail at `pointer` with `rule`.
#[track_caller]
fn assert_range(v: &Value, pointer: &str, lo: i64, hi: i64, rule: &str) {
    let path = pointer_to_path(pointer);
    assert_ok(&with(v.clone(), pointer, json!(lo)));
    assert_ok(&with(v.clone(), pointer, json!(hi)));
    assert_fails(&with(v.clone(), pointer, json!(lo - 1)), &path, rule);
    assert_fails(&with(v.clone(), pointer, json!(hi + 1)), &path, rule);
}

/// "/pool/members/1/role" -> "pool.members[1].role".
fn pointer_to_path(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.trim_start_matches('/').split('/') {
        if seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}

fn seed_example() -> Value {
    serde_json::from_str(include_str!("../scenarios/bodies/seed-example.json")).unwrap()
}

// ---- the base bodies ----

#[test]
fn base_bodies_are_clean() {
    assert_clean(&base());
    assert_clean(&quic());
    assert_clean(&http());
}

// ---- ranges ----

#[test]
fn delay_range() {
    // timeout 1 so that delay 1 does not draw the timeout warning into the picture.
    let v = with(base(), "/pool/healthmonitor/timeout", json!(1));
    assert_range(&v, "/pool/healthmonitor/delay", 1, 50, "range");
    let c = check(&with(base(), "/pool/healthmonitor/delay", json!(0)));
    assert!(c.errors[0]
        .message
        .contains("delay must be 1..50 seconds, got 0"));
}

#[test]
fn timeout_range() {
    let v = with(base(), "/pool/healthmonitor/delay", json!(50));
    assert_range(&v, "/pool/healthmonitor/timeout", 1, 50, "range");
}

#[test]
fn max_retries_ranges() {
    assert_range(&base(), "/pool/healthmonitor/max_retries", 1, 10, "range");
    assert_range(
        &base(),
        "/pool/healthmonitor/max_retries_down",
        1,
        10,
        "range",
    );
}

#[test]
fn port_ranges() {
    assert_range(
        &base(),
        "/pool/healthmonitor/monitor_port",
        1,
        65535,
        "range",
    );
    assert_range(&base(), "/pool/members/0/protocol_port", 1, 65535, "range");
    assert_range(&base(), "/pool/members/1/protocol_port", 1, 65535, "range");
}

#[test]
fn protocol_port_required_unless_any_port() {
    let mut v = base();
    del(&mut v, "/pool/members/1/protocol_port");
    assert_fails(&v, "pool.members[1].protocol_port", "required");
    set(&mut v, "/pool/any_port_enable", json!(true));
    del(&mut v, "/pool/members/0/protocol_port");
    assert_clean(&v);
    // A port given with any_port_enable does nothing: a warning says so.
    let v = with(base(), "/pool/any_port_enable", json!(true));
    assert_warns(&v, "pool.members[0].protocol_port", "no-effect");
}

#[test]
fn connection_drain() {
    let v = with(
        base(),
        "/pool/connection_drain",
        json!({"enable": true, "timeout": 10}),
    );
    assert_clean(&v);
    assert_range(&v, "/pool/connection_drain/timeout", 10, 4000, "range");
    let v = with(base(), "/pool/connection_drain", json!({"enable": true}));
    assert_fails(
        &v,
        "pool.connection_drain.timeout",
        "drain-timeout-required",
    );
    let v = with(base(), "/pool/connection_drain", json!({"enable": false}));
    assert_clean(&v);
    let v = with(base(), "/pool/connection_drain", json!({"timeout": 10}));
    assert_fails(&v, "pool.connection_drain.enable", "required");
    let v = with(
        with(base(), "/pool/protocol", json!("TLS")),
        "/pool/connection_drain",
        json!({"enable": true, "timeout": 60}),
    );
    assert_fails(&v, "pool.connection_drain", "connection-drain-protocol");
    for proto in ["UDP", "QUIC"] {
        let mut v = with(quic(), "/pool/protocol", json!(proto));
        if proto == "UDP" {
            set(&mut v, "/pool/lb_algorithm", json!("ROUND_ROBIN"));
        }
        set(
            &mut v,
            "/pool/connection_drain",
            json!({"enable": true, "timeout": 300}),
        );
        assert_clean(&v);
    }
}

#[test]
fn quic_cid_hash_strategy() {
    let v = with(
        quic(),
        "/pool/quic_cid_hash_strategy",
        json!({"len": 3, "offset": 0}),
    );
    assert_clean(&v);
    let off = "/pool/quic_cid_hash_strategy/offset";
    assert_fails(
        &with(v.clone(), off, json!(-1)),
        "pool.quic_cid_hash_strategy.offset",
        "range",
    );
    assert_clean(&with(v.clone(), off, json!(17)));
    let c = check(&with(
        v.clone(),
        "/pool/quic_cid_hash_strategy/offset",
        json!(19),
    ));
    assert!(c.errors.is_empty());
    assert_fails(
        &with(v.clone(), "/pool/quic_cid_hash_strategy/offset", json!(20)),
        "pool.quic_cid_hash_strategy.offset",
        "range",
    );
    assert_range(&v, "/pool/quic_cid_hash_strategy/len", 1, 20, "range");
    // offset 19 + len 3 runs past the 20-byte CID: a warning.
    assert_warns(
        &with(v.clone(), "/pool/quic_cid_hash_strategy/offset", json!(19)),
        "pool.quic_cid_hash_strategy",
        "quic-cid-slice",
    );
    // Without QUIC_CID the strategy does nothing: a warning.
    let v = with(v, "/pool/lb_algorithm", json!("ROUND_ROBIN"));
    assert_warns(&v, "pool.quic_cid_hash_strategy", "quic-cid-no-effect");
    let c = check(&v);
    assert!(c.warnings[0]
        .message
        .contains("takes effect only with lb_algorithm QUIC_CID"));
}

#[test]
fn persistence_timeout_ranges() {
    let tcp = with(
        base(),
        "/pool/session_persistence",
        json!({"type": "SOURCE_IP"}),
    );
    assert_clean(&tcp);
    let rule = "persistence-timeout-range";
    let p = "/pool/session_persistence/persistence_timeout";
    assert_range(&tcp, p, 1, 60, rule);
    assert_range(&quic(), p, 1, 60, rule);
    let udp = with(
        with(quic(), "/pool/protocol", json!("UDP")),
        "/pool/lb_algorithm",
        json!("SOURCE_IP"),
    );
    assert_clean(&udp);
    assert_range(&udp, p, 1, 60, rule);
    let tls = with(tcp, "/pool/protocol", json!("TLS"));
    assert_range(&tls, p, 1, 60, rule);
}

#[test]
fn cookie_name() {
    let app = |name: &str| {
        with(
            base(),
            "/pool/session_persistence",
            json!({"type": "APP_COOKIE", "cookie_name": name}),
        )
    };
    assert_ok(&app(&"c".repeat(1024)));
    assert_fails(
        &app(&"c".repeat(1025)),
        "pool.session_persistence.cookie_name",
        "string-length",
    );
    let v = with(
        base(),
        "/pool/session_persistence",
        json!({"type": "SOURCE_IP", "cookie_name": "x"}),
    );
    assert_fails(
        &v,
        "pool.session_persistence.cookie_name",
        "cookie-name-only-app-cookie",
    );
    let v = with(
        base(),
        "/pool/session_persistence",
        json!({"type": "HTTP_COOKIE", "cookie_name": "x"}),
    );
    assert_fails(
        &v,
        "pool.session_persistence.cookie_name",
        "cookie-name-only-app-cookie",
    );
}

#[test]
fn persistence_type_on_layer4_pools_is_a_warning() {
    let v = with(
        base(),
        "/pool/session_persistence",
        json!({"type": "HTTP_COOKIE"}),
    );
    assert_warns(
        &v,
        "pool.session_persistence.type",
        "persistence-type-ignored",
    );
    let v = with(
        base(),
        "/pool/session_persistence",
        json!({"type": "source_ip"}),
    );
    assert_fails(&v, "pool.session_persistence.type", "enum");
}

#[test]
fn quic_needs_source_ip() {
    let mut v = quic();
    del(&mut v, "/pool/session_persistence");
    assert_fails(&v, "pool.session_persistence", "quic-needs-source-ip");
    let v = with(
        quic(),
        "/pool/session_persistence/type",
        json!("APP_COOKIE"),
    );
    assert_fails(&v, "pool.session_persistence.type", "quic-needs-source-ip");
}

// ---- health-check strings ----

#[test]
fn expected_codes() {
    let p = "/pool/healthmonitor/expected_codes";
    let path = "pool.healthmonitor.expected_codes";
    for ok in [
        "200",
        "200,202",
        "200-204",
        "200-204,300-399",
        "200-204,300,301,302,303",
        "599",
        "200-599",
    ] {
        assert_clean(&with(http(), p, json!(ok)));
    }
    for bad in [
        "200-204,300,301,302,303,304",
        "199",
        "600",
        "204-200",
        "200, 202",
        "",
        "2000",
        "20a",
        "200-",
    ] {
        assert_fails(&with(http(), p, json!(bad)), path, "expected-codes");
    }
}

#[test]
fn url_path() {
    let p = "/pool/healthmonitor/url_path";
    let path = "pool.healthmonitor.url_path";
    assert_clean(&with(http(), p, json!("/")));
    assert_clean(&with(
        http(),
        p,
        json!("/health-check/v1.0?x&y(2)#a_b;~!*[]@$^:',+%20"),
    ));
    // '=' is not in the seed's character list.
    assert_fails(&with(http(), p, json!("/a?x=1")), path, "url-path");
    assert_fails(&with(http(), p, json!("/a b")), path, "url-path");
    assert_fails(&with(http(), p, json!("health")), path, "url-path");
    assert_fails(&with(http(), p, json!("")), path, "url-path");
    assert_fails(&with(http(), p, json!("/a\"b")), path, "url-path");
    assert_fails(&with(http(), p, json!("/é")), path, "url-path");
}

#[test]
fn domain_name() {
    let p = "/pool/healthmonitor/domain_name";
    let path = "pool.healthmonitor.domain_name";
    assert_clean(&with(http(), p, json!("www.example-1.com")));
    assert_clean(&with(http(), p, json!("1a")));
    assert_fails(&with(http(), p, json!("-a")), path, "domain-name");
    assert_fails(&with(http(), p, json!(".a")), path, "domain-name");
    assert_fails(&with(http(), p, json!("a_b")), path, "domain-name");
    assert_fails(&with(http(), p, json!("a b")), path, "domain-name");
}

#[test]
fn http_method() {
    let p = "/pool/healthmonitor/http_method";
    for m in ["GET", "HEAD", "POST"] {
        assert_clean(&with(http(), p, json!(m)));
    }
    assert_fails(
        &with(http(), p, json!("get")),
        "pool.healthmonitor.http_method",
        "enum",
    );
    let c = check(&with(http(), p, json!("get")));
    assert!(
        c.errors[0].message.contains("write \"GET\""),
        "{}",
        c.errors[0].message
    );
    assert_fails(
        &with(http(), p, json!("PUT")),
        "pool.healthmonitor.http_method",
        "enum",
    );
}

#[test]
fn http_fields_with_a_tcp_check_have_no_effect() {
    for (field, value) in [
        ("http_method", json!("GET")),
        ("url_path", json!("/x")),
        ("domain_name", json!("a.com")),
        ("expected_codes", json!("200")),
    ] {
        let v = with(base(), &format!("/pool/healthmonitor/{field}"), value);
        assert_warns(&v, &format!("pool.healthmonitor.{field}"), "no-effect");
    }
}

#[test]
fn timeout_not_below_delay_is_a_warning() {
    let v = with(base(), "/pool/healthmonitor/timeout", json!(5));
    assert_warns(&v, "pool.healthmonitor.timeout", "timeout-not-below-delay");
    assert_clean(&with(base(), "/pool/healthmonitor/timeout", json!(4)));
}

// ---- enums and cross-field rules ----

#[test]
fn enums() {
    for (p, good, bad) in [
        ("/pool/lb_algorithm", "LEAST_CONNECTIONS", "round_robin"),
        ("/pool/lb_algorithm", "SOURCE_IP", "RANDOM"),
        ("/pool/protocol", "TCP", "HTTP"),
        ("/pool/type", "ip", "IP"),
        ("/pool/members/0/role", "master", "primary"),
        ("/pool/healthmonitor/type", "HTTPS", "PING"),
        ("/pool/ip_version", "v4", "v6"),
        ("/pool/ip_version", "dualstack", ""),
    ] {
        assert_ok(&with(base(), p, json!(good)));
        assert_fails(&with(base(), p, json!(bad)), &pointer_to_path(p), "enum");
    }
}

#[test]
fn healthmonitor_type_for_protocol() {
    let rule = "healthmonitor-type-for-protocol";
    let path = "pool.healthmonitor.type";
    let t = "/pool/healthmonitor/type";
    for mt in ["TCP", "HTTP", "HTTPS"] {
        assert_ok(&with(base(), t, json!(mt)));
        let tls = with(base(), "/pool/protocol", json!("TLS"));
        assert_ok(&with(tls, t, json!(mt)));
        assert_fails(&with(quic(), t, json!(mt)), path, rule);
        let udp = with(quic(), "/pool/protocol", json!("UDP"));
        let udp = with(udp, "/pool/lb_algorithm", json!("ROUND_ROBIN"));
        assert_fails(&with(udp, t, json!(mt)), path, rule);
    }
    assert_fails(&with(base(), t, json!("UDP_CONNECT")), path, rule);
    let tls = with(base(), "/pool/protocol", json!("TLS"));
    assert_fails(&with(tls, t, json!("UDP_CONNECT")), path, rule);
}

#[test]
fn members_count_and_roles() {
    let mut one = base();
    del(&mut one, "/pool/members/1");
    assert_fails(&one, "pool.members", "members-count");
    let mut three = base();
    let extra = json!({"address": "192.168.0.12", "role": "slave", "protocol_port": 80});
    three["pool"]["members"].as_array_mut().unwrap().push(extra);
    assert_fails(&three, "pool.members", "members-count");
    assert_fails(
        &with(base(), "/pool/members", json!([])),
        "pool.members",
        "members-count",
    );
    let v = with(base(), "/pool/members/1/role", json!("master"));
    assert_fails(&v, "pool.members[1].role", "member-roles");
    let v = with(base(), "/pool/members/0/role", json!("slave"));
    assert_fails(&v, "pool.members[1].role", "member-roles");
    // Swapped order is fine.
    let v = with(
        with(base(), "/pool/members/0/role", json!("slave")),
        "/pool/members/1/role",
        json!("master"),
    );
    assert_clean(&v);
}

#[test]
fn vpc_id_with_type() {
    let rule = "vpc-id-with-type";
    let inst = with(base(), "/pool/type", json!("instance"));
    assert_fails(&inst, "pool.vpc_id", rule);
    assert_clean(&with(inst, "/pool/vpc_id", json!("vpc-1")));
    assert_fails(
        &with(base(), "/pool/vpc_id", json!("vpc-1")),
        "pool.vpc_id",
        rule,
    );
    // An empty vpc_id counts as absent.
    assert_clean(&with(base(), "/pool/vpc_id", json!("")));
    let mut untyped = with(base(), "/pool/vpc_id", json!("vpc-1"));
    del(&mut untyped, "/pool/type");
    assert_fails(&untyped, "pool.vpc_id", rule);
}

#[test]
fn target_required() {
    let mut v = base();
    del(&mut v, "/pool/type");
    assert_clean(&v); // listener_id alone
    del(&mut v, "/pool/listener_id");
    assert_fails(&v, "pool", "target-required");
    assert_clean(&with(v.clone(), "/pool/loadbalancer_id", json!("lb-1")));
    assert_clean(&with(v.clone(), "/pool/type", json!("ip")));
    // "" is no target (the Go SDK sends type "" when unset).
    assert_fails(&with(v, "/pool/type", json!("")), "pool", "target-required");
}

#[test]
fn ip_version() {
    let tls = with(base(), "/pool/protocol", json!("TLS"));
    assert_ok(&with(tls.clone(), "/pool/ip_version", json!("v4")));
    assert_fails(
        &with(tls, "/pool/ip_version", json!("dualstack")),
        "pool.ip_version",
        "ip-version",
    );
    assert_clean(&with(base(), "/pool/ip_version", json!("dualstack")));
    assert_clean(&with(quic(), "/pool/ip_version", json!("dualstack")));
    let udp = with(
        with(quic(), "/pool/protocol", json!("UDP")),
        "/pool/lb_algorithm",
        json!("ROUND_ROBIN"),
    );
    assert_clean(&with(udp, "/pool/ip_version", json!("dualstack")));
}

#[test]
fn any_port_protocol() {
    assert_ok(&with(base(), "/pool/any_port_enable", json!(true)));
    assert_ok(&with(quic(), "/pool/any_port_enable", json!(true)));
    let tls = with(base(), "/pool/protocol", json!("TLS"));
    assert_fails(
        &with(tls.clone(), "/pool/any_port_enable", json!(true)),
        "pool.any_port_enable",
        "any-port-protocol",
    );
    assert_clean(&with(tls, "/pool/any_port_enable", json!(false)));
}

#[test]
fn quic_cid_algorithm_needs_quic() {
    let v = with(base(), "/pool/lb_algorithm", json!("QUIC_CID"));
    assert_fails(&v, "pool.lb_algorithm", "lb-algorithm-protocol");
}

#[test]
fn project_id() {
    let p = "/pool/project_id";
    let path = "pool.project_id";
    assert_clean(&with(base(), p, json!("99a3fff0d03c428eac3678da6a7d0f24")));
    assert_fails(
        &with(base(), p, json!("99a3fff0d03c428eac3678da6a7d0f2")),
        path,
        "project-id-format",
    );
    assert_fails(
        &with(base(), p, json!("99a3fff0d03c428eac3678da6a7d0f245")),
        path,
        "project-id-format",
    );
    assert_fails(
        &with(base(), p, json!("99A3FFF0D03C428EAC3678DA6A7D0F24")),
        path,
        "project-id-format",
    );
    assert_fails(
        &with(base(), p, json!("99a3fff0-03c428eac3678da6a7d0f24")),
        path,
        "project-id-format",
    );
}

#[test]
fn enterprise_project_id() {
    let p = "/pool/enterprise_project_id";
    let path = "pool.enterprise_project_id";
    assert_fails(&with(base(), p, json!("")), path, "enterprise-project-id");
    assert_fails(&with(base(), p, json!("0")), path, "enterprise-project-id");
    assert_clean(&with(
        base(),
        p,
        json!("1b8e2a2c-6e0c-4bbf-9f5e-2d8b2d5f4e11"),
    ));
}

#[test]
fn name_lengths() {
    for p in [
        "/pool/name",
        "/pool/description",
        "/pool/members/0/name",
        "/pool/healthmonitor/name",
    ] {
        assert_clean(&with(base(), p, json!("n".repeat(255))));
        assert_fails(
            &with(base(), p, json!("n".repeat(256))),
            &pointer_to_path(p),
            "string-length",
        );
        // Characters, not bytes.
        assert_clean(&with(base(), p, json!("池".repeat(255))));
    }
}

// ---- addresses ----

#[test]
fn private_ipv4_boundaries() {
    let a = "/pool/members/0/address";
    let path = "pool.members[0].address";
    for private in [
        "10.0.0.0",
        "10.255.255.255",
        "172.16.0.0",
        "172.31.255.255",
        "192.168.0.1",
        "192.168.255.254",
    ] {
        assert_clean(&with(base(), a, json!(private)));
    }
    for public in [
        "172.15.255.255",
        "172.32.0.0",
        "9.255.255.255",
        "11.0.0.0",
        "192.169.0.0",
        "100.64.0.1",
        "120.10.10.16",
    ] {
        assert_warns(&with(base(), a, json!(public)), path, "private-ipv4");
    }
}

#[test]
fn member_addresses() {
    let a = "/pool/members/0/address";
    let path = "pool.members[0].address";
    let v6 = with(base(), a, json!("2001:db8::10"));
    assert_fails(&v6, path, "private-ipv4");
    let v6_subnet = with(
        v6.clone(),
        "/pool/members/0/subnet_cidr_id",
        json!("subnet-1"),
    );
    // A member with a subnet is an ECS backend: the pool must be of type instance.
    assert_fails(&v6_subnet, "pool.members[0].subnet_cidr_id", "member-type");
    let inst = with(
        with(v6_subnet, "/pool/type", json!("instance")),
        "/pool/vpc_id",
        json!("vpc-1"),
    );
    assert_clean(&inst);
    // ...and IPv6 needs a dualstack pool.
    assert_fails(
        &with(inst, "/pool/ip_version", json!("v4")),
        path,
        "ip-version",
    );
    for bad in [
        "",
        "192.168.0",
        "192.168.0.256",
        "host.example.com",
        " 192.168.0.1",
        "192.168.0.1/24",
    ] {
        assert_fails(&with(base(), a, json!(bad)), path, "ip-address");
    }
    for special in [
        "0.0.0.0",
        "127.0.0.1",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
    ] {
        assert_fails(&with(base(), a, json!(special)), path, "ip-address");
    }
}

// ---- the seed example ----

#[test]
fn seed_example_gives_exactly_the_two_documented_warnings() {
    let c = check(&seed_example());
    assert!(c.is_valid(), "{:#?}", c.errors);
    let mut w = pairs(&c.warnings);
    w.sort();
    assert_eq!(
        w,
        vec![
            (
                "pool.healthmonitor.timeout".to_string(),
                "timeout-not-below-delay".to_string()
            ),
            (
                "pool.members[0].address".to_string(),
                "private-ipv4".to_string()
            ),
            (
                "pool.members[1].address".to_string(),
                "private-ipv4".to_string()
            ),
        ]
    );
    let strict = check_value(&seed_example(), CheckOptions { strict: true });
    assert!(!strict.is_valid());
    assert_eq!(strict.errors.len(), 3);
    assert!(strict.warnings.is_empty());
    // The bytes on disk read the same way.
    let c2 = check_bytes(
        include_bytes!("../scenarios/bodies/seed-example.json"),
        CheckOptions::default(),
    );
    assert_eq!(c2.warnings, c.warnings);
}

#[test]
fn seed_example_becomes_a_typed_pool() {
    let c = check(&seed_example());
    let pool = Pool::from_request(c.request.as_ref().unwrap()).unwrap();
    assert_eq!(pool.protocol, Protocol::Tcp);
    assert_eq!(pool.lb_algorithm, LbAlgorithm::LeastConnections);
    assert_eq!(pool.healthmonitor.monitor_type, MonitorType::Http);
    assert_eq!(pool.healthmonitor.delay_s, 1);
    assert_eq!(pool.healthmonitor.timeout_s, 30);
    assert_eq!(pool.healthmonitor.max_retries_down, 3);
    assert_eq!(pool.healthmonitor.http_method, HttpMethod::Get);
    assert_eq!(pool.healthmonitor.url_path, "/");
    assert!(pool.healthmonitor.expected_codes.matches(200));
    assert!(!pool.healthmonitor.expected_codes.matches(201));
    assert_eq!(pool.master.address.to_string(), "120.10.10.16");
    assert_eq!(pool.slave.address.to_string(), "110.4.10.16");
    assert_eq!(pool.master.protocol_port, Some(89));
    assert_eq!(pool.master.name.as_deref(), Some("My member"));
    assert_eq!(pool.session_persistence, None);
    assert_eq!(pool.connection_drain_timeout_s, None);
    assert_eq!((pool.quic_cid.offset, pool.quic_cid.len), (1, 3));
    assert!(!pool.any_port_enable);
    let s = serde_json::to_value(&pool).unwrap();
    assert_eq!(s["protocol"], "TCP");
    assert_eq!(s["healthmonitor"]["expected_codes"], "200");
}

#[test]
fn typed_pool_fills_options_and_refuses_invalid_requests() {
    let mut v = quic();
    set(&mut v, "/pool/quic_cid_hash_strategy", json!({"len": 4}));
    set(
        &mut v,
        "/pool/connection_drain",
        json!({"enable": true, "timeout": 30}),
    );
    set(
        &mut v,
        "/pool/session_persistence/persistence_timeout",
        json!(7),
    );
    set(&mut v, "/pool/members/0/role", json!("slave"));
    set(&mut v, "/pool/members/1/role", json!("master"));
    let pool = Pool::from_request(check(&v).request.as_ref().unwrap()).unwrap();
    assert_eq!((pool.quic_cid.offset, pool.quic_cid.len), (1, 4));
    assert_eq!(pool.connection_drain_timeout_s, Some(30));
    assert_eq!(pool.session_persistence.unwrap().timeout_min, 7);
    assert_eq!(pool.master.address.to_string(), "192.168.0.11");
    let bad = with(base(), "/pool/healthmonitor/delay", json!(0));
    let errs = Pool::from_request(check(&bad).request.as_ref().unwrap()).unwrap_err();
    assert_eq!(errs[0].path, "pool.healthmonitor.delay");
}

// ---- collecting, reading ----

#[test]
fn all_problems_are_collected_at_once() {
    let mut v = base();
    set(&mut v, "/pool/healthmonitor/delay", json!(0)); // range
    set(&mut v, "/pool/members/1/role", json!("master")); // member-roles
    set(&mut v, "/pool/protocol", json!("tcp")); // enum
    set(&mut v, "/pool/healthmonitor/dealy", json!(5)); // unknown-field
    set(&mut v, "/pool/members/0/protocol_port", json!("80")); // wrong-type
    let c = check(&v);
    let mut got = pairs(&c.errors);
    got.sort();
    let mut want: Vec<(String, String)> = [
        ("pool.healthmonitor.delay", "range"),
        ("pool.members[1].role", "member-roles"),
        ("pool.protocol", "enum"),
        ("pool.healthmonitor.dealy", "unknown-field"),
        ("pool.members[0].protocol_port", "wrong-type"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    want.sort();
    assert_eq!(got, want, "{:#?}", c.errors);
    assert!(c.request.is_some());
    assert!(!c.is_valid());
}

#[test]
fn unknown_field_suggests_the_closest_one() {
    let v = with(base(), "/pool/healthmonitor/max_retry", json!(3));
    let c = check(&v);
    assert_eq!(
        pairs(&c.errors),
        vec![(
            "pool.healthmonitor.max_retry".into(),
            "unknown-field".into()
        )]
    );
    assert!(
        c.errors[0].message.contains("did you mean \"max_retries\""),
        "{}",
        c.errors[0].message
    );
    let v = with(base(), "/pool/lb_algoritm", json!("ROUND_ROBIN"));
    let c = check(&v);
    assert!(c.errors[0]
        .message
        .contains("did you mean \"lb_algorithm\""));
    let v = with(base(), "/pool/members/0/adress", json!("10.0.0.1"));
    let c = check(&v);
    assert_eq!(c.errors[0].path, "pool.members[0].adress");
    assert!(c.errors[0].message.contains("did you mean \"address\""));
}

#[test]
fn wrong_types_name_the_path_and_the_expected_type() {
    for (p, value, expected) in [
        (
            "/pool/healthmonitor/delay",
            json!("5"),
            "expected an integer",
        ),
        (
            "/pool/healthmonitor/delay",
            json!(5.0),
            "expected an integer",
        ),
        ("/pool/protocol", json!(6), "expected a string"),
        ("/pool/any_port_enable", json!("true"), "expected a boolean"),
        ("/pool/members", json!({}), "expected an array"),
        ("/pool/healthmonitor", json!([]), "expected an object"),
        ("/pool/members/1", json!("10.0.0.1"), "expected an object"),
        (
            "/pool/session_persistence",
            json!("SOURCE_IP"),
            "expected an object",
        ),
    ] {
        let c = check(&with(base(), p, value));
        let path = pointer_to_path(p);
        assert_eq!(
            pairs(&c.errors),
            vec![(path.clone(), "wrong-type".to_string())],
            "{p}"
        );
        assert!(
            c.errors[0].message.contains(expected),
            "{}",
            c.errors[0].message
        );
        assert!(c.errors[0].message.contains(&path));
    }
}

#[test]
fn missing_required_fields() {
    for p in [
        "/pool/lb_algorithm",
        "/pool/protocol",
        "/pool/members",
        "/pool/healthmonitor",
        "/pool/healthmonitor/type",
        "/pool/healthmonitor/delay",
        "/pool/healthmonitor/timeout",
        "/pool/healthmonitor/max_retries",
        "/pool/members/0/address",
        "/pool/members/1/role",
    ] {
        let mut v = base();
        del(&mut v, p);
        let c = check(&v);
        assert_eq!(
            pairs(&c.errors),
            vec![(pointer_to_path(p), "required".to_string())],
            "{p}"
        );
    }
}

// ---- bodies as the official SDKs build them ----

#[test]
fn go_sdk_shaped_body_passes() {
    // The Go SDK always sends its required (non-omitempty) fields and only the optional
    // fields that were set, never nulls.
    let v = json!({"pool": {
        "lb_algorithm": "ROUND_ROBIN",
        "protocol": "UDP",
        "type": "ip",
        "members": [
            {"address": "10.0.1.5", "role": "master", "protocol_port": 53},
            {"address": "10.0.1.6", "role": "slave", "protocol_port": 53}
        ],
        "healthmonitor": {"type": "UDP_CONNECT", "delay": 5, "timeout": 3, "max_retries": 3, "max_retries_down": 2},
        "loadbalancer_id": "098b2f68-af1c-41a9-8efd-69958722af62",
        "connection_drain": {"enable": true, "timeout": 60}
    }});
    assert_clean(&v);
}

#[test]
fn python_sdk_shaped_body_with_nulls_passes() {
    // The Python SDK may serialize every unset optional attribute as null.
    let v = json!({"pool": {
        "description": null,
        "lb_algorithm": "LEAST_CONNECTIONS",
        "loadbalancer_id": null,
        "listener_id": "0b11747a-b139-492f-9692-2df0b1c87193",
        "name": "My pool",
        "project_id": null,
        "protocol": "TCP",
        "session_persistence": null,
        "vpc_id": null,
        "type": "ip",
        "ip_version": null,
        "members": [
            {"admin_state_up": null, "name": "m", "protocol_port": 89, "subnet_cidr_id": null,
             "address": "192.168.1.16", "role": "master"},
            {"admin_state_up": null, "name": null, "protocol_port": 89, "subnet_cidr_id": null,
             "address": "192.168.1.17", "role": "slave"}
        ],
        "healthmonitor": {"delay": 5, "domain_name": null, "expected_codes": null, "http_method": null,
            "max_retries": 3, "max_retries_down": null, "monitor_port": null, "name": null,
            "timeout": 3, "type": "HTTP", "url_path": null},
        "any_port_enable": null,
        "connection_drain": null,
        "quic_cid_hash_strategy": null,
        "enterprise_project_id": null,
        "public_border_group": null
    }});
    assert_clean(&v);
}
