//! The API's answers: the 201 body of a create, and the error body of a rejected request.
//!
//! The 201 body has the shape of the seed page's response example (every key it has, with the
//! same JSON types) plus the keys the response table lists that the example leaves out
//! (`enterprise_project_id`, `any_port_enable`, `connection_drain`, `quic_cid_hash_strategy`,
//! member `reason`). Ids are uuid-shaped and derived from the seed with ChaCha8, so the same
//! seed always gives the same ids (and reports stay reproducible).
//!
//! Choices where the seed is silent:
//!
//! * `healthmonitor.domain_name` is `""` when not given, as in the seed's response example
//!   (the request's default "null = use the VIP" is rendered the way the API renders it).
//! * `http_method` is upper case (`"GET"`); the example's `"get"` is a quirk of the page.
//! * Member `operating_status` is `ONLINE` (and so is each `status` item): the simulator
//!   starts from healthy members by default; the example's OFFLINE is one real pool's state.
//! * `ip_version`: the request's, else `dualstack` for TCP/UDP/QUIC and `v4` for TLS.
//! * `session_persistence.persistence_timeout` defaults to 1 (minutes); `cookie_name` is null
//!   when absent. `connection_drain` and `quic_cid_hash_strategy` are echoed with defaults
//!   filled (timeout null when not given; len 3, offset 1) and are null when absent.
//! * `project_id`: [`CreateOptions::project_id`] (the URL's) wins, then the body's when it is
//!   well formed, else a 32-hex id derived from the seed.

use std::net::IpAddr;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};

use super::pool::Pool;
use super::problem::Problem;
use super::types::{CreateRequest, MemberOption};

/// Inputs of a create response besides the request.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Seeds every generated id.
    pub seed: u64,
    /// The URL's project_id; wins over the body's.
    pub project_id: Option<String>,
    /// The creation time, seconds since the Unix epoch (UTC).
    pub now_unix_s: i64,
}

/// ChaCha streams, one per kind of id, so adding a member does not shift the request id.
const STREAM_RESOURCES: u64 = 0;
const STREAM_REQUEST_ID: u64 = 1;
const STREAM_PROJECT_ID: u64 = 2;

fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// A random (version 4) uuid, lowercase: `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`.
fn uuid(r: &mut ChaCha8Rng) -> String {
    let mut b = [0u8; 16];
    r.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The request id of a response: uuid-shaped, digits, lowercase letters and '-', from the seed.
pub fn request_id(seed: u64) -> String {
    uuid(&mut rng(seed, STREAM_REQUEST_ID))
}

fn seeded_project_id(seed: u64) -> String {
    let mut b = [0u8; 16];
    rng(seed, STREAM_PROJECT_ID).fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn is_project_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Formats Unix seconds as the API does: `yyyy-MM-ddTHH:mm:ssZ`, UTC.
///
/// Hand-written (no chrono): the civil-from-days algorithm of Howard Hinnant, valid for the
/// whole proleptic Gregorian calendar, negative times included.
pub fn format_api_time(unix_s: i64) -> String {
    let days = unix_s.div_euclid(86_400);
    let secs = unix_s.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// (year, month 1..=12, day 1..=31) of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The error body of a rejected request, shaped like the API's:
/// `{"error_code": "ELB.1001", "error_msg": "...", "request_id": "..."}`.
/// `ELB.8902` is the code the API uses for a missing drain timeout; every other rule maps to
/// the generic parameter error `ELB.1001`.
pub fn api_error_body(first_error: &Problem, request_id: &str) -> Value {
    let code = match first_error.rule.as_str() {
        "drain-timeout-required" => "ELB.8902",
        _ => "ELB.1001",
    };
    json!({
        "error_code": code,
        "error_msg": format!("Invalid input for {}: {}", first_error.path, first_error.message),
        "request_id": request_id,
    })
}

fn str_or_empty(s: &Option<String>) -> Value {
    Value::String(s.clone().unwrap_or_default())
}

fn id_list(id: &Option<String>) -> Value {
    match id.as_deref().filter(|s| !s.is_empty()) {
        Some(id) => json!([{ "id": id }]),
        None => json!([]),
    }
}

/// The 201 body of `POST /v3/{project_id}/elb/master-slave-pools` for a request that validated.
///
/// Every value the API defaults (max_retries_down, http_method, url_path, expected_codes, the
/// persistence timeout, the QUIC slice) comes from the typed [`Pool`], where each default is
/// written once. On an invalid request it still returns a body (it never panics), with the
/// request's own values and `null` where it gave none: only as meaningful as the request.
pub fn create_response(req: &CreateRequest, opts: &CreateOptions) -> Value {
    let p = &req.pool;
    let hm = &p.healthmonitor;
    let typed = Pool::from_request(req).ok();
    let thm = typed.as_ref().map(|t| &t.healthmonitor);
    let mut ids = rng(opts.seed, STREAM_RESOURCES);
    let pool_id = uuid(&mut ids);
    let hm_id = uuid(&mut ids);
    let member_ids: Vec<String> = p.members.iter().map(|_| uuid(&mut ids)).collect();
    let now = format_api_time(opts.now_unix_s);

    let project_id = opts
        .project_id
        .clone()
        .or_else(|| p.project_id.clone().filter(|s| is_project_id(s)))
        .unwrap_or_else(|| seeded_project_id(opts.seed));
    let listener = p.listener_id.clone().filter(|s| !s.is_empty());
    let ip_version = p.ip_version.clone().unwrap_or_else(|| {
        if p.protocol == "TLS" {
            "v4".into()
        } else {
            "dualstack".into()
        }
    });

    let healthmonitor = json!({
        "monitor_port": hm.monitor_port,
        "id": hm_id,
        "domain_name": str_or_empty(&hm.domain_name),
        "name": str_or_empty(&hm.name),
        "max_retries": hm.max_retries,
        "max_retries_down": thm.map_or(json!(hm.max_retries_down), |t| json!(t.max_retries_down)),
        "admin_state_up": true,
        "type": hm.monitor_type,
        "timeout": hm.timeout,
        "delay": hm.delay,
        "http_method": thm.map_or(json!(hm.http_method), |t| json!(t.http_method.as_str())),
        "url_path": thm.map_or(json!(hm.url_path), |t| json!(t.url_path)),
        "expected_codes": thm.map_or(json!(hm.expected_codes), |t| json!(t.expected_codes.to_string())),
    });

    let members: Vec<Value> = p
        .members
        .iter()
        .zip(&member_ids)
        .map(|(m, id)| member_json(m, id, listener.as_deref()))
        .collect();

    let session_persistence = match &p.session_persistence {
        Some(sp) => json!({
            "type": sp.persistence_type,
            "cookie_name": sp.cookie_name,
            "persistence_timeout": typed
                .as_ref()
                .and_then(|t| t.session_persistence)
                .map_or(json!(sp.persistence_timeout), |t| json!(t.timeout_min)),
        }),
        None => Value::Null,
    };
    let connection_drain = match &p.connection_drain {
        Some(cd) => json!({ "enable": cd.enable, "timeout": cd.timeout }),
        None => Value::Null,
    };
    let quic = match (&p.quic_cid_hash_strategy, &typed) {
        (Some(_), Some(t)) => json!({ "len": t.quic_cid.len, "offset": t.quic_cid.offset }),
        (Some(q), None) => json!({ "len": q.len, "offset": q.offset }),
        (None, _) => Value::Null,
    };

    let mut pool = Map::new();
    let mut put = |k: &str, v: Value| {
        pool.insert(k.to_string(), v);
    };
    put("lb_algorithm", Value::String(p.lb_algorithm.clone()));
    put("type", str_or_empty(&p.pool_type));
    put("vpc_id", str_or_empty(&p.vpc_id));
    put("protocol", Value::String(p.protocol.clone()));
    put("description", str_or_empty(&p.description));
    put("loadbalancers", id_list(&p.loadbalancer_id));
    put("project_id", Value::String(project_id));
    put(
        "enterprise_project_id",
        Value::String(
            p.enterprise_project_id
                .clone()
                .unwrap_or_else(|| "0".into()),
        ),
    );
    put("session_persistence", session_persistence);
    put("healthmonitor", healthmonitor);
    put("listeners", id_list(&p.listener_id));
    put("members", Value::Array(members));
    put("id", Value::String(pool_id));
    put("name", str_or_empty(&p.name));
    put("ip_version", Value::String(ip_version));
    put(
        "any_port_enable",
        typed
            .as_ref()
            .map_or(json!(p.any_port_enable), |t| json!(t.any_port_enable)),
    );
    put("connection_drain", connection_drain);
    put("quic_cid_hash_strategy", quic);
    put("created_at", Value::String(now.clone()));
    put("updated_at", Value::String(now));

    json!({ "pool": Value::Object(pool), "request_id": request_id(opts.seed) })
}

fn member_json(m: &MemberOption, id: &str, listener: Option<&str>) -> Value {
    let subnet = m.subnet_cidr_id.clone().filter(|s| !s.is_empty());
    let ip_version = match m.address.parse::<IpAddr>() {
        Ok(IpAddr::V6(_)) => "v6",
        _ => "v4",
    };
    // A fresh pool is assumed healthy: the simulator's default initial state.
    let status = match listener {
        Some(l) => json!([{ "listener_id": l, "operating_status": "ONLINE" }]),
        None => json!([]),
    };
    json!({
        "admin_state_up": true,
        "address": m.address,
        "protocol_port": m.protocol_port,
        "id": id,
        "operating_status": "ONLINE",
        "status": status,
        "instance_id": "",
        "device_id": "",
        "device_owner": "",
        "member_type": if subnet.is_some() { "instance" } else { "ip" },
        "role": m.role,
        "ip_version": ip_version,
        "name": m.name.clone().unwrap_or_default(),
        "subnet_cidr_id": subnet.unwrap_or_default(),
        "reason": Value::Null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_time_format() {
        assert_eq!(format_api_time(0), "1970-01-01T00:00:00Z");
        // The seed response's created_at.
        assert_eq!(format_api_time(1_616_722_392), "2021-03-26T01:33:12Z");
        assert_eq!(format_api_time(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_api_time(-1), "1969-12-31T23:59:59Z");
        assert_eq!(format_api_time(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn ids_are_uuid_shaped_and_seeded() {
        let a = request_id(7);
        assert_eq!(a, request_id(7));
        assert_ne!(a, request_id(8));
        assert_eq!(a.len(), 36);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase() || c == '-'));
        assert_eq!(a.matches('-').count(), 4);
        assert!(is_project_id(&seeded_project_id(7)));
    }

    #[test]
    fn error_body_codes() {
        let p = Problem::new(
            "pool.connection_drain.timeout",
            "drain-timeout-required",
            "x",
        );
        assert_eq!(api_error_body(&p, "r")["error_code"], "ELB.8902");
        let p = Problem::new("pool.healthmonitor.delay", "range", "x");
        let b = api_error_body(&p, "r");
        assert_eq!(b["error_code"], "ELB.1001");
        assert_eq!(b["request_id"], "r");
    }
}
