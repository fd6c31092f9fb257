//! The headline numbers users tune from, one test per defect of the "answers you can trust" issue:
//! client impact of request failures, unavailability over every node, outages kept apart from
//! failovers, resets only on real failbacks, attribution by cause, overlapping faults, failback
//! with persistence, censored faults, QUIC server ids and needless failovers. Each runs the
//! binary on a scenario as a user would and reads its JSON.

use assert_cmd::Command;
use serde_json::Value;
use std::path::Path;

mod common;

/// A scenario: `extra` goes at the top (duration, lb_nodes, [model], [network], faults,
/// [traffic]); the pool has protocol `protocol` and a health check of type `check`.
fn scenario(extra: &str, protocol: &str, check: &str) -> String {
    common::scenario_with(extra, protocol, check, "")
}

fn write(dir: &Path, toml: &str) -> std::path::PathBuf {
    let p = dir.join("s.toml");
    std::fs::write(&p, toml).expect("write the scenario");
    p
}

fn elbsim(args: &[&str]) -> String {
    let out = Command::cargo_bin("elbsim")
        .expect("the elbsim binary")
        .args(args)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .expect("elbsim runs");
    assert!(
        out.status.success(),
        "elbsim {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn run_json(toml: &str, seed: u64) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(dir.path(), toml);
    let s = seed.to_string();
    let out = elbsim(&["run", p.to_str().unwrap(), "--format", "json", "--seed", &s]);
    serde_json::from_str(&out).expect("JSON")
}

fn trials_json(toml: &str, n: u64) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(dir.path(), toml);
    let n = n.to_string();
    let out = elbsim(&["trials", p.to_str().unwrap(), "-n", &n, "--format", "json"]);
    serde_json::from_str(&out).expect("JSON")
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64()
        .unwrap_or_else(|| panic!("{k} is not a number in {v}"))
}

fn u(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("{k} is not a count in {v}"))
}

const TRAFFIC: &str = r#"[traffic]
rate = 20.0
lifetime = "30s"
clients = 1000
requests_per_s = 2.0"#;

/// Defect 1: A hung HTTP-checked master fails requests: that is client impact, in the fault's
/// unavailability, in the text headline and in `trials`.
#[test]
fn request_failures_are_client_impact() {
    let toml = scenario(
        &format!(
            r#"duration = "10m"
[[faults]]
member = "master"
kind = "hang"
at = "120s"
until = "300s"
{TRAFFIC}"#
        ),
        "TCP",
        "HTTP",
    );
    let r = run_json(&toml, 1);
    let un = &r["traffic"]["unavailability"][0];
    assert_eq!(un["fault"], "hang");
    assert!(u(un, "failed_requests") > 100, "{un}");
    assert_eq!(
        u(un, "failures"),
        u(un, "failed_requests") + u(un, "failed_connections")
    );
    assert!(f(un, "first_failure_s") >= 120.0);
    let t = trials_json(&toml, 20);
    assert_eq!(u(&t["traffic"]["unavailability_s"], "count"), 20, "{t}");
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), &toml);
    let text = elbsim(&["run", p.to_str().unwrap()]);
    assert!(!text.contains("no client connection"), "{text}");
    assert!(
        text.contains("master hang at 120.000s: clients failing"),
        "{text}"
    );
}

/// Defect 2: The window covers every failure on every node, with a per-node breakdown; a slave crash
/// while the master is down keeps the master fault's window open.
#[test]
fn unavailability_covers_every_failure_on_every_node() {
    let toml = scenario(
        &format!(
            r#"duration = "10m"
lb_nodes = 4
[[faults]]
member = "master"
kind = "host_down"
at = "120s"
until = "300s"
{TRAFFIC}"#
        ),
        "TCP",
        "TCP",
    );
    for seed in 0..5 {
        let r = run_json(&toml, seed);
        let un = &r["traffic"]["unavailability"][0];
        let nodes = un["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), 4, "{un}");
        let last = nodes
            .iter()
            .map(|n| f(n, "last_failure_s"))
            .fold(0.0, f64::max);
        assert_eq!(f(un, "last_failure_s"), last);
        assert!(f(un, "first_failure_s") + f(un, "window_s") >= f(un, "last_failure_s") - 1e-9);
        let sum: u64 = nodes.iter().map(|n| u(n, "failures")).sum();
        assert_eq!(sum, u(un, "failures"));
        // Clients of the slowest node failed until it switched: the window reaches it.
        let slowest = r["failovers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| f(x, "switched_s"))
            .fold(0.0, f64::max);
        assert!(
            f(un, "last_failure_s") >= slowest - 2.0,
            "{un} vs {slowest}"
        );
    }
    let toml = scenario(
        &format!(
            r#"duration = "10m"
[[faults]]
member = "master"
kind = "crash"
at = "60s"
[[faults]]
member = "slave"
kind = "crash"
at = "70s"
until = "130s"
{TRAFFIC}"#
        ),
        "TCP",
        "TCP",
    );
    let r = run_json(&toml, 3);
    let un = &r["traffic"]["unavailability"][0];
    assert_eq!(un["member"], "master");
    assert!(f(un, "window_s") > 60.0, "{un}");
}

/// Defect 3: Slave down first, then the master crashes: a switch to `drop` is an outage, never a
/// failover.
#[test]
fn a_switch_to_drop_is_an_outage_not_a_failover() {
    let toml = scenario(
        r#"duration = "10m"
[[faults]]
member = "slave"
kind = "crash"
at = "30s"
[[faults]]
member = "master"
kind = "crash"
at = "120s"
until = "300s""#,
        "TCP",
        "TCP",
    );
    let r = run_json(&toml, 1);
    assert!(r["failovers"].as_array().unwrap().is_empty(), "{r}");
    let o = &r["outages"][0];
    assert_eq!(o["kind"], "drop");
    assert_eq!(o["member"], "master");
    let l = f(o, "outage_latency_s");
    assert!((10.0..=15.1).contains(&l), "{o}");
    let t = trials_json(&toml, 50);
    assert_eq!(u(&t["failover_latency_s"], "count"), 0, "{t}");
    assert_eq!(u(&t["outage_latency_s"], "count"), 50, "{t}");
    assert_eq!(u(&t, "missed_faults"), 0);
    // Fail-open under all_down = "master": an outage too.
    let open = toml.replace(
        "duration = \"10m\"",
        "duration = \"10m\"\n[model]\nall_down = \"master\"",
    );
    let r = run_json(&open, 1);
    assert!(r["failovers"].as_array().unwrap().is_empty(), "{r}");
    assert_eq!(r["outages"][0]["kind"], "fail_open");
}

/// Defect 4: `failback_sessions = "reset"` acts on a real failback only, not on the fail-open route
/// change while the master is still down.
#[test]
fn sessions_reset_only_on_a_real_failback() {
    let toml = scenario(
        &format!(
            r#"duration = "10m"
[model]
all_down = "master"
failback_sessions = "reset"
[[faults]]
member = "master"
kind = "crash"
at = "60s"
[[faults]]
member = "slave"
kind = "crash"
at = "200s"
until = "400s"
{TRAFFIC}"#
        ),
        "TCP",
        "TCP",
    );
    for seed in 0..3 {
        let r = run_json(&toml, seed);
        assert_eq!(u(&r["traffic"], "reset_on_failback"), 0, "{}", r["traffic"]);
        assert!(r["failbacks"].as_array().unwrap().is_empty());
    }
}

/// Defect 5: TCP check, noisy probe path, master hang: the check cannot see a hang, so a noise-driven
/// OFFLINE verdict is a false failover and the hang stays missed.
#[test]
fn noise_is_not_credited_to_a_fault_the_check_cannot_see() {
    let toml = scenario(
        r#"duration = "20m"
[network]
loss = 0.2
[[faults]]
member = "master"
kind = "hang"
at = "60s""#,
        "TCP",
        "TCP",
    );
    let t = trials_json(&toml, 200);
    assert_eq!(u(&t["detection_latency_s"], "count"), 0, "{t}");
    assert_eq!(t["missed_fault_rate"].as_f64(), Some(1.0), "{t}");
    assert!(u(&t, "false_failovers") > 0, "{t}");
}

/// Defect 6: Overlapping faults: a sub-timeout `slow` fault does not steal a crash's failover, and the
/// failback is measured from the end of the last fault the check can see.
#[test]
fn overlapping_faults_are_attributed_by_cause() {
    let toml = scenario(
        r#"duration = "10m"
[[faults]]
member = "master"
kind = "slow"
latency = "10ms"
at = "50s"
until = "500s"
[[faults]]
member = "master"
kind = "crash"
at = "60s"
until = "180s"
[[faults]]
member = "master"
kind = "host_down"
at = "150s"
until = "300s""#,
        "TCP",
        "TCP",
    );
    for seed in 0..10 {
        let r = run_json(&toml, seed);
        let fo = r["failovers"].as_array().unwrap();
        assert_eq!(fo.len(), 1, "{r}");
        assert_eq!(fo[0]["fault"], "crash");
        assert_eq!(
            u(&r, "missed_faults"),
            1,
            "the slow fault is missed: {}",
            r["missed"]
        );
        assert_eq!(r["missed"][0]["fault"], "slow");
        let fb = &r["failbacks"][0];
        assert_eq!(f(fb, "fault_end_s"), 300.0, "{fb}");
        // A probe in flight at 300 s times out (3 s), then three successes 5 s apart.
        assert!(f(fb, "failback_latency_s") <= 3.0 + 3.0 * 5.0 + 0.1, "{fb}");
    }
}

/// Defect 7: With SOURCE_IP persistence, the failback record says when persisted clients
/// returned, or that they had not by the end.
#[test]
fn failback_reports_when_persisted_clients_return() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/traffic-persistence-failback.toml");
    let src = std::fs::read_to_string(&path).unwrap();
    // As shipped (5-minute entries, clients back every few seconds): they never return.
    let r = run_json(&src, 7);
    let fb = &r["failbacks"][0];
    assert!(u(fb, "persisted_connections") > 0, "{fb}");
    assert!(
        f(fb, "persisted_last_to_slave_s") > f(fb, "switched_back_s"),
        "{fb}"
    );
    assert_eq!(fb["persisted_returned"], false, "{fb}");
    assert!(fb.get("persisted_failback_latency_s").is_none(), "{fb}");
    // One-minute entries and clients that come back rarely: they return.
    let line = "session_persistence = { type = \"SOURCE_IP\", persistence_timeout = 5 }";
    assert!(
        src.contains(line),
        "the scenario sets its persistence in one line"
    );
    let short = src
        .replace(line, &line.replace("= 5 }", "= 1 }"))
        .replace("clients = 50", "clients = 5000");
    let r = run_json(&short, 7);
    let fb = &r["failbacks"][0];
    assert_eq!(fb["persisted_returned"], true, "{fb}");
    assert!(
        f(fb, "persisted_failback_latency_s") >= f(fb, "failback_latency_s"),
        "{fb}"
    );
    // Each use refreshes an entry, so a client back within the minute stays longer; still, it
    // ends within the run.
    assert!(f(fb, "persisted_last_to_slave_s") < 600.0 - 60.0, "{fb}");
}

/// Defect 8: A fault too close to the end to be detected is censored, not missed.
#[test]
fn a_fault_near_the_end_is_censored_not_missed() {
    let toml = scenario(
        r#"duration = "600s"
[[faults]]
member = "master"
kind = "crash"
at = "595s""#,
        "TCP",
        "TCP",
    );
    let r = run_json(&toml, 1);
    assert_eq!(u(&r, "missed_faults"), 0, "{r}");
    assert_eq!(u(&r, "censored_faults"), 1);
    let t = trials_json(&toml, 20);
    assert_eq!(u(&t, "missed_faults"), 0);
    assert_eq!(u(&t, "censored_faults"), 20);
    assert!(t["missed_fault_rate"].is_null(), "{t}");
}

/// Defect 9: The members' QUIC server ids differ in every byte: a one-byte slice inside the server id
/// tells them apart, so no connection breaks.
#[test]
fn every_byte_of_the_server_id_tells_the_members_apart() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quic-slice-server-id.toml");
    let src = std::fs::read_to_string(&path).unwrap();
    for offset in 1..=3 {
        let slice = "quic_cid_hash_strategy = { offset = 1, len = 3 }";
        assert!(
            src.contains(slice),
            "the scenario sets its slice in one line"
        );
        let toml = src.replace(
            slice,
            &format!("quic_cid_hash_strategy = {{ offset = {offset}, len = 1 }}"),
        );
        let r = run_json(&toml, 2);
        assert_eq!(u(&r["traffic"], "quic_cid_broken"), 0, "offset {offset}");
    }
}

/// Defect 10: Needless failovers: a status clients still accept, TLS trouble on a pool whose clients do
/// not speak TLS; each says which rule decided.
#[test]
fn needless_failovers_name_their_rule() {
    let s302 = scenario(
        r#"duration = "10m"
[[faults]]
member = "master"
kind = "http_status"
status = 302
at = "60s"
until = "180s""#,
        "TCP",
        "HTTP",
    );
    let r = run_json(&s302, 1);
    let fo = &r["failovers"][0];
    assert_eq!(fo["needless"], true, "{fo}");
    assert!(fo["needless_rule"]
        .as_str()
        .unwrap()
        .contains("http_status"));
    assert_eq!(u(&r, "needless_failovers"), 1);
    let tls = scenario(
        r#"duration = "10m"
[[faults]]
member = "master"
kind = "tls_error"
at = "60s"
until = "180s""#,
        "TCP",
        "HTTPS",
    );
    let r = run_json(&tls, 1);
    assert_eq!(r["failovers"][0]["needless"], true, "{r}");
    // A 503 fails clients' requests: not needless.
    let s503 = s302.replace("302", "503");
    let r = run_json(&s503, 1);
    assert_eq!(r["failovers"][0]["needless"], false);
}

/// The JSON report carries the health check the run used, overrides included.
#[test]
fn run_json_carries_the_health_check_used() {
    let toml = scenario("duration = \"10m\"", "TCP", "TCP");
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), &toml);
    let out = elbsim(&[
        "run",
        p.to_str().unwrap(),
        "--format",
        "json",
        "--delay",
        "7",
    ]);
    let r: Value = serde_json::from_str(&out).unwrap();
    let hc = &r["health_check"];
    assert_eq!(hc["type"], "TCP");
    assert_eq!(f(hc, "delay_s"), 7.0);
    assert_eq!(f(hc, "timeout_s"), 3.0);
    assert_eq!(u(hc, "max_retries_down"), 3);
}
