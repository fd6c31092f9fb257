//! Malformed input never panics and always yields errors with a usable path; plus a property
//! test that mutates the seed body at random.

use elbsim::api::problem::RULES;
use elbsim::api::{
    check_bytes, check_value, create_response, CheckOptions, Checked, CreateOptions, Pool,
};
use proptest::prelude::*;
use serde_json::{Map, Value};

const SEED: &[u8] = include_bytes!("../scenarios/bodies/seed-example.json");

fn check(bytes: &[u8]) -> Checked {
    check_bytes(bytes, CheckOptions::default())
}

#[track_caller]
fn assert_rejected(bytes: &[u8], path: &str, rule: &str) -> Checked {
    let c = check(bytes);
    assert!(!c.is_valid());
    assert!(
        c.errors.iter().any(|p| p.path == path && p.rule == rule),
        "expected {rule} at {path}, got {:#?}",
        c.errors
    );
    for p in &c.errors {
        assert!(!p.path.is_empty() && !p.message.is_empty());
    }
    c
}

#[test]
fn not_json() {
    assert_rejected(b"hello", "$", "invalid-json");
    assert_rejected(b"pool: {}", "$", "invalid-json");
    assert_rejected(b"{'pool': {}}", "$", "invalid-json");
    assert_rejected(b"{\"pool\": {},}", "$", "invalid-json");
}

#[test]
fn truncated() {
    let c = assert_rejected(&SEED[..SEED.len() / 2], "$", "invalid-json");
    assert!(
        c.errors[0].message.contains("line"),
        "{}",
        c.errors[0].message
    );
    assert!(c.errors[0].message.contains("column"));
}

#[test]
fn deep_nesting() {
    let mut s = String::from("{\"pool\": ");
    s.push_str(&"[".repeat(10_000));
    s.push_str(&"]".repeat(10_000));
    s.push('}');
    assert_rejected(s.as_bytes(), "$", "too-deep");
    let objects = "{\"a\":".repeat(10_000) + &"}".repeat(10_000);
    assert_rejected(objects.as_bytes(), "$", "too-deep");
}

fn seed_with_delay(delay: &str) -> Vec<u8> {
    String::from_utf8(SEED.to_vec())
        .unwrap()
        .replace("\"delay\": 1", &format!("\"delay\": {delay}"))
        .into_bytes()
}

#[test]
fn huge_numbers() {
    assert_rejected(&seed_with_delay("1e999"), "$", "invalid-json");
    assert_rejected(
        &seed_with_delay("99999999999999999999999"),
        "pool.healthmonitor.delay",
        "range",
    );
    assert_rejected(
        &seed_with_delay("-99999999999999999999999"),
        "pool.healthmonitor.delay",
        "range",
    );
    assert_rejected(
        &seed_with_delay("9223372036854775808"),
        "pool.healthmonitor.delay",
        "range",
    );
    assert_rejected(
        &seed_with_delay("-9223372036854775808"),
        "pool.healthmonitor.delay",
        "range",
    );
    assert_rejected(
        &seed_with_delay("9223372036854775807"),
        "pool.healthmonitor.delay",
        "range",
    );
    assert_rejected(
        &seed_with_delay("1.5"),
        "pool.healthmonitor.delay",
        "wrong-type",
    );
    assert_rejected(
        &seed_with_delay("1e3"),
        "pool.healthmonitor.delay",
        "wrong-type",
    );
    assert_rejected(
        &seed_with_delay("5.0"),
        "pool.healthmonitor.delay",
        "wrong-type",
    );
}

#[test]
fn wrong_types() {
    assert_rejected(
        &seed_with_delay("\"1\""),
        "pool.healthmonitor.delay",
        "wrong-type",
    );
    assert_rejected(
        &seed_with_delay("[1]"),
        "pool.healthmonitor.delay",
        "wrong-type",
    );
    assert_rejected(
        &seed_with_delay("{}"),
        "pool.healthmonitor.delay",
        "wrong-type",
    );
    assert_rejected(
        &seed_with_delay("true"),
        "pool.healthmonitor.delay",
        "wrong-type",
    );
    assert_rejected(b"[]", "$", "wrong-type");
    assert_rejected(b"\"pool\"", "$", "wrong-type");
    assert_rejected(b"42", "$", "wrong-type");
    assert_rejected(b"null", "$", "wrong-type");
    assert_rejected(b"{\"pool\": []}", "pool", "wrong-type");
    assert_rejected(b"{}", "pool", "required");
    assert_rejected(b"{\"pool\": null}", "pool", "required");
}

#[test]
fn empty_and_binary_input() {
    assert_rejected(b"", "$", "empty-body");
    assert_rejected(b"   \r\n", "$", "empty-body");
    assert_rejected(b"\xff\xfe{}", "$", "invalid-utf8");
    assert_rejected(b"\x00\x01\x02", "$", "invalid-json");
}

#[test]
fn hundred_megabytes() {
    let big = vec![b'{'; 100 * 1024 * 1024];
    let c = assert_rejected(&big, "$", "body-too-large");
    assert!(c.errors[0].message.contains("104857600"));
    assert!(c.errors[0].message.contains("1048576"));
}

#[test]
fn seed_bytes_with_a_byte_order_mark() {
    let mut b = b"\xEF\xBB\xBF".to_vec();
    b.extend_from_slice(SEED);
    assert!(check(&b).is_valid());
}

// ---- property: random mutations of the seed body ----

/// Field names worth using as random keys: every known one (so mutations reach deeper rules),
/// plus a misspelling and a stranger.
fn keys() -> Vec<&'static str> {
    use elbsim::api::read::*;
    [
        TOP_FIELDS,
        POOL_FIELDS,
        MEMBER_FIELDS,
        HEALTHMONITOR_FIELDS,
        SESSION_PERSISTENCE_FIELDS,
        CONNECTION_DRAIN_FIELDS,
        QUIC_CID_FIELDS,
        &["dealy", "x"],
    ]
    .concat()
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-100i64..100).prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        prop::sample::select(vec![
            "TCP",
            "UDP",
            "QUIC",
            "TLS",
            "HTTP",
            "UDP_CONNECT",
            "master",
            "slave",
            "ip",
            "instance",
            "SOURCE_IP",
            "APP_COOKIE",
            "QUIC_CID",
            "10.0.0.1",
            "::1",
            "200-204",
            "",
        ])
        .prop_map(|s| Value::String(s.to_string())),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(keys()).prop_map(str::to_string),
        "[a-z_]{1,10}",
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize),
    Replace(usize, Value),
    Rename(usize, String),
    Insert(usize, String, Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Delete),
        (any::<usize>(), json_value()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        (any::<usize>(), key()).prop_map(|(i, k)| Mutation::Rename(i, k)),
        (any::<usize>(), key(), json_value()).prop_map(|(i, k, v)| Mutation::Insert(i, k, v)),
    ]
}

/// JSON pointers of every node below the root, in document order.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(c, p, out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(c, p, out);
            }
        }
        _ => {}
    }
}

fn unescape(seg: &str) -> String {
    seg.replace("~1", "/").replace("~0", "~")
}

fn apply(v: &mut Value, m: &Mutation) {
    let mut ps = Vec::new();
    pointers(v, String::new(), &mut ps);
    let pick = |i: usize| -> Option<&String> {
        if ps.is_empty() {
            None
        } else {
            Some(&ps[i % ps.len()])
        }
    };
    match m {
        Mutation::Delete(i) | Mutation::Replace(i, _) | Mutation::Rename(i, _) => {
            let Some(p) = pick(*i) else { return };
            let (parent, last) = p.rsplit_once('/').unwrap();
            let last = unescape(last);
            let Some(container) = v.pointer_mut(parent) else {
                return;
            };
            match (container, m) {
                (Value::Object(o), Mutation::Delete(_)) => {
                    o.remove(&last);
                }
                (Value::Array(a), Mutation::Delete(_)) => {
                    a.remove(last.parse::<usize>().unwrap());
                }
                (Value::Object(o), Mutation::Replace(_, new)) => {
                    o.insert(last, new.clone());
                }
                (Value::Array(a), Mutation::Replace(_, new)) => {
                    a[last.parse::<usize>().unwrap()] = new.clone();
                }
                (Value::Object(o), Mutation::Rename(_, k)) => {
                    if let Some(x) = o.remove(&last) {
                        o.insert(k.clone(), x);
                    }
                }
                _ => {}
            }
        }
        Mutation::Insert(i, k, new) => {
            let mut objs: Vec<String> = vec![String::new()];
            objs.extend(
                ps.iter()
                    .filter(|p| v.pointer(p).is_some_and(Value::is_object))
                    .cloned(),
            );
            let p = &objs[i % objs.len()];
            if let Some(Value::Object(o)) = v.pointer_mut(p) {
                o.insert(k.clone(), new.clone());
            }
        }
    }
}

proptest! {
    // No failure persistence: a regression file would land outside the files this module owns.
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_seed_bodies_never_panic_and_paths_are_rooted(
        muts in prop::collection::vec(mutation(), 1..5),
        strict in any::<bool>(),
    ) {
        let mut v: Value = serde_json::from_slice(SEED).unwrap();
        for m in &muts {
            apply(&mut v, m);
        }
        let opts = CheckOptions { strict };
        let c = check_value(&v, opts);
        for p in c.errors.iter().chain(&c.warnings) {
            prop_assert!(!p.path.is_empty(), "{:?}", p);
            prop_assert!(p.path.starts_with("pool") || p.path.starts_with('$'), "{:?}", p);
            prop_assert!(!p.rule.is_empty() && !p.message.is_empty());
            prop_assert!(RULES.iter().any(|r| r.0 == p.rule), "rule {} not in RULES", p.rule);
            prop_assert!(p.rule != "internal", "{:?}", p);
        }
        if strict {
            prop_assert!(c.warnings.is_empty());
        }
        // The bytes path agrees with the value path (messages may differ in the last digit of
        // a float that does not round-trip through text, so compare paths and rules).
        let bytes = serde_json::to_vec(&v).unwrap();
        let cb = check_bytes(&bytes, opts);
        let key = |ps: &[elbsim::api::Problem]| -> Vec<(String, String)> {
            ps.iter().map(|p| (p.path.clone(), p.rule.clone())).collect()
        };
        prop_assert_eq!(key(&cb.errors), key(&c.errors));
        prop_assert_eq!(key(&cb.warnings), key(&c.warnings));
        // A body that passes converts to a typed pool and a response without trouble.
        if c.is_valid() {
            let req = c.request.as_ref().unwrap();
            prop_assert!(Pool::from_request(req).is_ok());
            let r = create_response(req, &CreateOptions { seed: 1, project_id: None, now_unix_s: 0 });
            prop_assert!(r["pool"]["id"].is_string());
        } else if let Some(req) = &c.request {
            // Even an invalid request yields a response body rather than a panic.
            let _ = create_response(req, &CreateOptions::default());
            prop_assert!(Pool::from_request(req).is_err() || c.errors.iter().all(|p| p.rule != "internal"));
        }
    }
}
