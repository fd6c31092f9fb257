//! The 201 body of a create: the seed response's shape, defaults, and seeded ids.

use elbsim::api::{
    api_error_body, check_value, create_response, request_id, CheckOptions, CreateOptions,
};
use serde_json::{json, Value};

/// The seed page's response example, verbatim.
const SEED_RESPONSE: &str = include_str!("fixtures/seed-response.json");

fn seed_request() -> elbsim::api::types::CreateRequest {
    let v: Value =
        serde_json::from_str(include_str!("../scenarios/bodies/seed-example.json")).unwrap();
    check_value(&v, CheckOptions::default()).request.unwrap()
}

fn opts(seed: u64) -> CreateOptions {
    CreateOptions {
        seed,
        project_id: None,
        now_unix_s: 1_616_722_392,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every key of `want` is in `got` with the same JSON type, recursively; arrays compare each
/// item of `got` against the first item of `want`. Returns the mismatches.
fn shape_mismatches(want: &Value, got: &Value, path: &str, out: &mut Vec<String>) {
    if kind(want) != kind(got) {
        out.push(format!("{path}: want {}, got {}", kind(want), kind(got)));
        return;
    }
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                match g.get(k) {
                    Some(gv) => shape_mismatches(wv, gv, &format!("{path}.{k}"), out),
                    None => out.push(format!("{path}.{k}: missing")),
                }
            }
        }
        (Value::Array(w), Value::Array(g)) => {
            if let Some(first) = w.first() {
                for (i, gv) in g.iter().enumerate() {
                    shape_mismatches(first, gv, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

#[test]
fn seed_response_shape_is_matched() {
    let want: Value = serde_json::from_str(SEED_RESPONSE).unwrap();
    let mut got = create_response(&seed_request(), &opts(1));
    let mut miss = Vec::new();
    shape_mismatches(&want, &got, "$", &mut miss);
    assert!(miss.is_empty(), "{miss:#?}");
    // The seed request has no loadbalancer_id, so check that list's item shape on a request
    // that has one.
    let mut req = seed_request();
    req.pool.loadbalancer_id = Some("098b2f68-af1c-41a9-8efd-69958722af62".into());
    got = create_response(&req, &opts(1));
    assert_eq!(got["pool"]["loadbalancers"].as_array().unwrap().len(), 1);
    let mut miss = Vec::new();
    shape_mismatches(&want, &got, "$", &mut miss);
    assert!(miss.is_empty(), "{miss:#?}");
}

#[test]
fn seed_response_values_and_defaults() {
    let r = create_response(&seed_request(), &opts(1));
    let p = &r["pool"];
    assert_eq!(p["lb_algorithm"], "LEAST_CONNECTIONS");
    assert_eq!(p["protocol"], "TCP");
    assert_eq!(p["type"], "ip");
    assert_eq!(p["vpc_id"], "");
    assert_eq!(p["name"], "My pool");
    assert_eq!(p["description"], "");
    assert_eq!(p["ip_version"], "dualstack");
    assert_eq!(p["enterprise_project_id"], "0");
    assert_eq!(p["any_port_enable"], false);
    assert_eq!(p["session_persistence"], Value::Null);
    assert_eq!(p["connection_drain"], Value::Null);
    assert_eq!(p["quic_cid_hash_strategy"], Value::Null);
    assert_eq!(p["created_at"], "2021-03-26T01:33:12Z");
    assert_eq!(p["updated_at"], p["created_at"]);
    assert_eq!(
        p["listeners"],
        json!([{"id": "0b11747a-b139-492f-9692-2df0b1c87193"}])
    );
    assert_eq!(p["loadbalancers"], json!([]));
    let hm = &p["healthmonitor"];
    assert_eq!(hm["max_retries_down"], 3);
    assert_eq!(hm["http_method"], "GET");
    assert_eq!(hm["url_path"], "/");
    assert_eq!(hm["expected_codes"], "200");
    assert_eq!(hm["monitor_port"], Value::Null);
    assert_eq!(hm["admin_state_up"], true);
    assert_eq!(hm["name"], "My Healthmonitor");
    let m0 = &p["members"][0];
    assert_eq!(m0["address"], "120.10.10.16");
    assert_eq!(m0["role"], "master");
    assert_eq!(m0["name"], "My member");
    assert_eq!(m0["member_type"], "ip");
    assert_eq!(m0["ip_version"], "v4");
    assert_eq!(m0["operating_status"], "ONLINE");
    assert_eq!(m0["reason"], Value::Null);
    assert_eq!(
        m0["status"],
        json!([{"listener_id": "0b11747a-b139-492f-9692-2df0b1c87193", "operating_status": "ONLINE"}])
    );
    assert_eq!(p["members"][1]["name"], "");
    assert_eq!(p["members"][1]["role"], "slave");
    // A project id is always 32 lowercase hex.
    let pid = p["project_id"].as_str().unwrap();
    assert_eq!(pid.len(), 32);
    assert!(pid
        .bytes()
        .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()));
}

#[test]
fn optional_objects_are_echoed_with_defaults() {
    let v = json!({"pool": {
        "lb_algorithm": "QUIC_CID", "protocol": "QUIC", "type": "instance", "vpc_id": "vpc-1",
        "members": [
            {"address": "2001:db8::1", "role": "master", "protocol_port": 443, "subnet_cidr_id": "sub-6"},
            {"address": "192.168.0.2", "role": "slave", "protocol_port": 443}
        ],
        "healthmonitor": {"type": "UDP_CONNECT", "delay": 5, "timeout": 3, "max_retries": 3},
        "session_persistence": {"type": "SOURCE_IP"},
        "connection_drain": {"enable": true, "timeout": 100},
        "quic_cid_hash_strategy": {"len": 5},
        "project_id": "99a3fff0d03c428eac3678da6a7d0f24",
        "enterprise_project_id": "ep-1"
    }});
    let c = check_value(&v, CheckOptions::default());
    assert!(c.is_valid(), "{:#?}", c.errors);
    let req = c.request.unwrap();
    let r = create_response(&req, &opts(3));
    let p = &r["pool"];
    assert_eq!(
        p["session_persistence"],
        json!({"type": "SOURCE_IP", "cookie_name": null, "persistence_timeout": 1})
    );
    assert_eq!(
        p["connection_drain"],
        json!({"enable": true, "timeout": 100})
    );
    assert_eq!(p["quic_cid_hash_strategy"], json!({"len": 5, "offset": 1}));
    assert_eq!(p["project_id"], "99a3fff0d03c428eac3678da6a7d0f24");
    assert_eq!(p["enterprise_project_id"], "ep-1");
    assert_eq!(p["members"][0]["ip_version"], "v6");
    assert_eq!(p["members"][0]["member_type"], "instance");
    assert_eq!(p["members"][0]["subnet_cidr_id"], "sub-6");
    assert_eq!(p["members"][0]["status"], json!([]));
    assert_eq!(p["listeners"], json!([]));
    // The URL's project id wins over the body's.
    let mut o = opts(3);
    o.project_id = Some("0123456789abcdef0123456789abcdef".into());
    assert_eq!(
        create_response(&req, &o)["pool"]["project_id"],
        "0123456789abcdef0123456789abcdef"
    );
}

fn all_ids(r: &Value) -> Vec<String> {
    let p = &r["pool"];
    let mut ids = vec![
        r["request_id"].as_str().unwrap().to_string(),
        p["id"].as_str().unwrap().to_string(),
        p["healthmonitor"]["id"].as_str().unwrap().to_string(),
        p["project_id"].as_str().unwrap().to_string(),
    ];
    for m in p["members"].as_array().unwrap() {
        ids.push(m["id"].as_str().unwrap().to_string());
    }
    ids
}

#[test]
fn same_seed_same_ids_different_seed_different_ids() {
    let req = seed_request();
    let a = create_response(&req, &opts(42));
    let b = create_response(&req, &opts(42));
    let c = create_response(&req, &opts(43));
    assert_eq!(a, b);
    let (ia, ic) = (all_ids(&a), all_ids(&c));
    for (x, y) in ia.iter().zip(&ic) {
        assert_ne!(x, y);
    }
    // Ids within one response are distinct and uuid-shaped.
    let mut uniq = ia.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), ia.len());
    for id in ia.iter().filter(|s| s.len() == 36) {
        let groups: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(groups, vec![8, 4, 4, 4, 12], "{id}");
        assert!(id
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase() || c == '-'));
    }
    assert_eq!(a["request_id"], request_id(42));
}

#[test]
fn error_body() {
    let v = json!({"pool": {"lb_algorithm": "ROUND_ROBIN", "protocol": "TCP", "type": "ip",
        "members": [
            {"address": "192.168.0.1", "role": "master", "protocol_port": 80},
            {"address": "192.168.0.2", "role": "slave", "protocol_port": 80}],
        "healthmonitor": {"type": "TCP", "delay": 5, "timeout": 3, "max_retries": 3},
        "connection_drain": {"enable": true}}});
    let c = check_value(&v, CheckOptions::default());
    assert_eq!(c.errors.len(), 1);
    let b = api_error_body(&c.errors[0], &request_id(1));
    assert_eq!(b["error_code"], "ELB.8902");
    assert!(b["error_msg"]
        .as_str()
        .unwrap()
        .contains("pool.connection_drain.timeout"));
    assert_eq!(b["request_id"], request_id(1));
}
