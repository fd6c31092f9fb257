//! Client traffic through the `elbsim` binary (spec/model.md sections 3-7).
//!
//! Each `traffic-*` / `quic-*` file of `scenarios/` is run with `--format json` over several seeds
//! and the property its header promises is asserted against the report's `traffic` section. The
//! counts are also checked against what the model implies: arrivals are Poisson, so a count of
//! arrivals in a window of known length `w` is Poisson with mean `rate * w` and must lie within
//! 5 sigma of it; connections open at an instant (M/G/inf from an empty start) are Poisson too.
//! Variants (no fault, `host_down`, no persistence, `failback_sessions = "keep"`, no migration)
//! are written into a temporary directory from the files' own text.

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Seeds tried on top of each file's own.
const SEEDS: std::ops::Range<u64> = 1..6;
/// Slack for floating-point seconds in the report.
const EPS: f64 = 1e-6;

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(scenario(name)).expect("scenario file")
}

/// The file's own seed, then [`SEEDS`].
fn seeds() -> impl Iterator<Item = Option<u64>> {
    std::iter::once(None).chain(SEEDS.map(Some))
}

/// `elbsim run FILE --format json [--seed S]` as raw output, asserting success.
fn run_raw(file: &Path, seed: Option<u64>) -> String {
    let mut cmd = Command::cargo_bin("elbsim").expect("the elbsim binary");
    cmd.arg("run").arg(file).args(["--format", "json"]);
    if let Some(s) = seed {
        cmd.args(["--seed", &s.to_string()]);
    }
    let o = cmd.output().expect("elbsim runs");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "{}: exit {:?}: {stderr}",
        file.display(),
        o.status.code()
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    String::from_utf8(o.stdout).expect("UTF-8 stdout")
}

fn run_json(file: &Path, seed: Option<u64>) -> Value {
    let out = run_raw(file, seed);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// A scenario written into a temporary directory (kept alive by the returned guard).
struct TempScenario {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn temp_scenario(text: &str) -> TempScenario {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("scenario.toml");
    std::fs::write(&path, text).expect("write scenario");
    TempScenario { _dir: dir, path }
}

/// `text` with the first line that starts with `from` edited to start with `to` instead
/// (comments never match: they start with `#`).
fn edit(text: &str, from: &str, to: &str) -> String {
    let at = text
        .match_indices(from)
        .map(|(i, _)| i)
        .find(|&i| i == 0 || text.as_bytes()[i - 1] == b'\n')
        .unwrap_or_else(|| panic!("no line starting with `{from}` in the scenario"));
    format!("{}{to}{}", &text[..at], &text[at + from.len()..])
}

fn f64_of(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

fn u64_of(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a count in {v}"))
}

fn traffic(r: &Value) -> &Value {
    let t = &r["traffic"];
    assert!(t.is_object(), "no traffic section in {r}");
    t
}

fn count(r: &Value, key: &str) -> u64 {
    u64_of(traffic(r), key)
}

/// A Poisson count with mean `mean` is within 5 sigma of it.
fn assert_poisson(what: &str, observed: u64, mean: f64) {
    let sigma = mean.sqrt().max(1.0);
    assert!(
        (observed as f64 - mean).abs() <= 5.0 * sigma,
        "{what}: {observed} is not within 5 sigma of the Poisson mean {mean:.1} (sigma {sigma:.1})"
    );
}

/// The one failover of a single-node run.
fn the_failover(r: &Value) -> &Value {
    let fo = r["failovers"].as_array().expect("failovers");
    assert_eq!(fo.len(), 1, "seed {}: {fo:#?}", r["seed"]);
    &fo[0]
}

fn the_failback(r: &Value) -> &Value {
    let fb = r["failbacks"].as_array().expect("failbacks");
    assert_eq!(fb.len(), 1, "seed {}: {fb:#?}", r["seed"]);
    &fb[0]
}

/// Where new connections left the master, and where they came back (s).
fn switch_times(r: &Value) -> (f64, f64) {
    (
        f64_of(the_failover(r), "switched_s"),
        f64_of(the_failback(r), "switched_back_s"),
    )
}

/// The first transition of `role` to `status` (in node 0's view) at or after `after` (s).
fn transition_at(r: &Value, role: &str, status: &str, after: f64) -> f64 {
    r["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == role)
        .unwrap()["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["operating_status"] == status && t["lb_node"] == 0)
        .map(|t| f64_of(t, "at_s"))
        .find(|&at| at >= after)
        .unwrap_or_else(|| panic!("no {role} {status} after {after}"))
}

/// The conservation laws of the counters: every attempt has one outcome, every established
/// connection is closed for one reason or still open (and no more are open than the peak).
fn assert_conservation(what: &str, r: &Value) {
    let c = |k| count(r, k);
    assert_eq!(
        c("established") + c("refused") + c("timed_out") + c("no_backend") + c("tls_failed"),
        c("connections"),
        "{what}: attempts and outcomes"
    );
    assert_eq!(
        c("to_master") + c("to_slave"),
        c("established"),
        "{what}: per-member split"
    );
    let closed =
        c("completed") + c("broken") + c("drained") + c("reset_on_failback") + c("quic_cid_broken");
    assert!(
        closed <= c("established"),
        "{what}: {closed} closed > established"
    );
    let open_at_end = c("established") - closed;
    assert_eq!(
        open_at_end,
        c("open_at_end"),
        "{what}: every connection accounted for"
    );
    assert!(
        open_at_end <= c("peak_open"),
        "{what}: {open_at_end} open at the end > peak_open {}",
        c("peak_open")
    );
    assert!(c("requests_failed") <= c("requests"), "{what}");
    let drained_by_records: u64 = traffic(r)["drains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| u64_of(d, "connections"))
        .sum();
    assert_eq!(drained_by_records, c("drained"), "{what}: drain records");
}

fn traffic_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(scenario(""))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            (name.starts_with("traffic-") || name.starts_with("quic-")) && name.ends_with(".toml")
        })
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------------
// Every traffic file

#[test]
fn every_traffic_file_conserves_connections() {
    let files = traffic_files();
    assert!(files.len() >= 10, "{files:?}");
    for file in &files {
        for seed in seeds() {
            let r = run_json(file, seed);
            let what = format!("{} seed {}", file.display(), r["seed"]);
            assert_conservation(&what, &r);
            assert!(count(&r, "connections") > 0, "{what}");
            assert!(
                r["warnings"].as_array().unwrap().is_empty(),
                "{what}: {}",
                r["warnings"]
            );
        }
    }
}

#[test]
fn determinism_byte_identical_and_seed_dependent() {
    for name in ["quic-slice-nonce.toml", "traffic-persistence-failback.toml"] {
        let f = scenario(name);
        let a = run_raw(&f, Some(11));
        let b = run_raw(&f, Some(11));
        assert_eq!(a, b, "{name}: two runs with seed 11 differ");
        let c = run_raw(&f, Some(12));
        assert_ne!(a, c, "{name}: seeds 11 and 12 give the same report");
        let (ra, rc): (Value, Value) = (
            serde_json::from_str(&a).unwrap(),
            serde_json::from_str(&c).unwrap(),
        );
        assert_ne!(
            ra["traffic"]["connections"], rc["traffic"]["connections"],
            "{name}: the arrivals do not depend on the seed"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// No fault, a crash, host_down, hang

/// A TCP pool with a TCP check, exponential lifetimes of 10 s, 20 connections per second; the
/// `faults` text is appended.
fn tcp_pool(faults: &str, extra_pool: &str) -> String {
    format!(
        r#"# generated by tests/traffic_run.rs
# Expect: see the test.
name = "generated"
duration = "10m"
seed = 3
{faults}
[traffic]
rate = 20.0
lifetime = "10s"
clients = 1000

[pool]
name = "generated"
lb_algorithm = "ROUND_ROBIN"
protocol = "TCP"
type = "ip"
{extra_pool}
[pool.healthmonitor]
type = "TCP"
delay = 5
timeout = 3
max_retries = 3
max_retries_down = 3

[[pool.members]]
role = "master"
address = "192.168.0.10"
protocol_port = 80

[[pool.members]]
role = "slave"
address = "192.168.0.11"
protocol_port = 80
"#
    )
}

const RATE: f64 = 20.0;
const LIFETIME_S: f64 = 10.0;

#[test]
fn without_a_fault_no_connection_fails() {
    let s = temp_scenario(&tcp_pool("", ""));
    for seed in seeds() {
        let r = run_json(&s.path, seed);
        let what = format!("no fault, seed {}", r["seed"]);
        for k in [
            "refused",
            "timed_out",
            "broken",
            "no_backend",
            "tls_failed",
            "drained",
            "reset_on_failback",
            "quic_cid_broken",
            "persisted_elsewhere",
            "requests_failed",
            "to_slave",
        ] {
            assert_eq!(count(&r, k), 0, "{what}: {k}");
        }
        assert_eq!(count(&r, "established"), count(&r, "connections"), "{what}");
        assert_poisson(&what, count(&r, "connections"), RATE * 600.0);
        // Requests: about requests_per_s (1) x the seconds of connections that ended.
        let completed = count(&r, "completed") as f64;
        let requests = count(&r, "requests") as f64;
        assert!(
            (requests - completed * LIFETIME_S).abs() < 0.1 * completed * LIFETIME_S,
            "{what}: {requests} requests for {completed} connections of mean {LIFETIME_S} s"
        );
        assert_conservation(&what, &r);
        assert!(r["failovers"].as_array().unwrap().is_empty());
        assert!(traffic(&r)["unavailability"].as_array().unwrap().is_empty());
    }
}

#[test]
fn a_crash_breaks_open_connections_and_refuses_new_ones_until_failover() {
    let (crash_at, lifetime) = (120.0, 30.0);
    let file = scenario("traffic-crash.toml");
    for seed in seeds() {
        let r = run_json(&file, seed);
        let what = format!("crash, seed {}", r["seed"]);
        let fo = the_failover(&r);
        assert_eq!(fo["reason"], "CONNECT_REFUSED");
        let failover = f64_of(fo, "failover_latency_s");
        // Open on the master at the crash: M/M/inf from an empty start, Poisson.
        let open_mean = RATE * lifetime * (1.0 - (-crash_at / lifetime).exp());
        assert_poisson(&format!("{what}: broken"), count(&r, "broken"), open_mean);
        // Every attempt between the crash and the switch: Poisson(rate x failover latency).
        assert_poisson(
            &format!("{what}: refused"),
            count(&r, "refused"),
            RATE * failover,
        );
        assert_eq!(count(&r, "timed_out"), 0, "{what}");
        assert_eq!(count(&r, "no_backend"), 0, "{what}");
        let u = &traffic(&r)["unavailability"][0];
        assert_eq!(u["fault"], "crash");
        assert!((f64_of(u, "fault_start_s") - crash_at).abs() < EPS);
        // Open connections break at the crash itself: the outage starts with the fault.
        assert!(
            (f64_of(u, "first_failure_s") - crash_at).abs() < EPS,
            "{what}: {u}"
        );
        let w = f64_of(u, "window_s");
        // It ends with the last attempt refused before the switch: an exponential gap of mean
        // 1/rate before it.
        assert!(
            w <= failover + EPS && w >= failover - 2.0,
            "{what}: window {w} vs failover latency {failover}"
        );
        assert_eq!(
            u64_of(u, "failures"),
            count(&r, "broken") + count(&r, "refused"),
            "{what}: {u}"
        );
        assert_conservation(&what, &r);
    }
}

#[test]
fn host_down_times_out_instead_of_refusing() {
    let s = temp_scenario(&tcp_pool(
        "[[faults]]\nmember = \"master\"\nkind = \"host_down\"\nat = \"120s\"\nuntil = \"300s\"\n",
        "",
    ));
    for seed in seeds() {
        let r = run_json(&s.path, seed);
        let what = format!("host_down, seed {}", r["seed"]);
        let fo = the_failover(&r);
        assert_eq!(fo["reason"], "CONNECT_TIMEOUT");
        assert_eq!(count(&r, "refused"), 0, "{what}");
        assert!(count(&r, "timed_out") > 0, "{what}");
        assert_poisson(
            &format!("{what}: timed_out"),
            count(&r, "timed_out"),
            RATE * f64_of(fo, "failover_latency_s"),
        );
        assert!(
            count(&r, "broken") > 0,
            "{what}: open connections stall and break"
        );
        assert_conservation(&what, &r);
    }
}

#[test]
fn hang_under_an_http_check_fails_requests_on_established_connections() {
    let f = scenario("traffic-drain-off.toml");
    for seed in seeds() {
        let r = run_json(&f, seed);
        let what = format!("hang, seed {}", r["seed"]);
        assert_eq!(the_failover(&r)["reason"], "RECV_RESPONSE_TIMEOUT");
        assert!(count(&r, "requests_failed") > 0, "{what}");
        assert_eq!(count(&r, "established"), count(&r, "connections"), "{what}");
        for k in ["refused", "timed_out", "broken", "drained"] {
            assert_eq!(count(&r, k), 0, "{what}: {k}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Drain

#[test]
fn drain_on_closes_open_connections_exactly_at_the_timeout() {
    let f = scenario("traffic-drain-on.toml");
    for seed in seeds() {
        let r = run_json(&f, seed);
        let what = format!("drain on, seed {}", r["seed"]);
        let drains = traffic(&r)["drains"].as_array().unwrap();
        assert_eq!(drains.len(), 1, "{what}: {drains:?}");
        let d = &drains[0];
        assert_eq!(d["member"], "master");
        let started = f64_of(d, "started_s");
        let closed = f64_of(d, "closed_s");
        assert!(
            (closed - started - 30.0).abs() < 1e-9,
            "{what}: closed {closed} - started {started} is not the 30 s drain timeout"
        );
        // The drain starts with the OFFLINE verdict, which is when traffic switched.
        assert!((started - f64_of(the_failover(&r), "switched_s")).abs() < EPS);
        let drained = count(&r, "drained");
        assert!(drained > 0, "{what}");
        assert_eq!(drained, u64_of(d, "connections"));
        // Lifetimes are a fixed 120 s > started + 30 s: every connection the master got before
        // the drain began is still open at the deadline. Poisson(rate x started).
        assert_poisson(&what, drained, RATE * started);
        for k in ["broken", "refused", "timed_out"] {
            assert_eq!(count(&r, k), 0, "{what}: {k}");
        }
        assert!(count(&r, "requests_failed") > 0, "{what}");
    }
}

#[test]
fn drain_off_drains_nothing_and_hung_connections_fail_more_requests() {
    let (on, off) = (
        scenario("traffic-drain-on.toml"),
        scenario("traffic-drain-off.toml"),
    );
    for seed in seeds() {
        let (a, b) = (run_json(&on, seed), run_json(&off, seed));
        let what = format!("drain off, seed {}", b["seed"]);
        assert_eq!(count(&b, "drained"), 0, "{what}");
        assert!(
            traffic(&b)["drains"].as_array().unwrap().is_empty(),
            "{what}"
        );
        assert!(
            count(&b, "requests_failed") > count(&a, "requests_failed"),
            "{what}: without drain the hung master keeps failing requests longer"
        );
    }
}

#[test]
fn a_member_back_inside_the_drain_window_cancels_the_drain() {
    // The hang ends at 70 s and the master is judged OFFLINE some 20 s after 60 s: it comes back
    // a few seconds later, well inside a 4000 s drain window.
    let text = edit(
        &edit(
            &read("traffic-drain-on.toml"),
            "until = \"240s\"",
            "until = \"85s\"",
        ),
        "connection_drain = { enable = true, timeout = 30 }",
        "connection_drain = { enable = true, timeout = 4000 }",
    );
    let s = temp_scenario(&text);
    for seed in seeds() {
        let r = run_json(&s.path, seed);
        let what = format!("cancelled drain, seed {}", r["seed"]);
        let drains = traffic(&r)["drains"].as_array().unwrap();
        assert_eq!(drains.len(), 1, "{what}: {drains:?}");
        assert!(drains[0]["closed_s"].is_null(), "{what}: {drains:?}");
        assert_eq!(count(&r, "drained"), 0, "{what}");
    }
}

// ---------------------------------------------------------------------------------------------
// Persistence, failback reset

#[test]
fn persisted_clients_stay_on_the_slave_after_failback() {
    let f = scenario("traffic-persistence-failback.toml");
    let stripped = temp_scenario(&edit(
        &read("traffic-persistence-failback.toml"),
        "session_persistence = { type = \"SOURCE_IP\", persistence_timeout = 5 }\n",
        "",
    ));
    for seed in seeds() {
        let r = run_json(&f, seed);
        let what = format!("persistence, seed {}", r["seed"]);
        let (switched, back) = switch_times(&r);
        let end = f64_of(&r, "duration_s");
        // 50 clients each connecting every 2.5 s on average: all of them are bound to the slave
        // during the failover and refresh their entry long before its 5 minutes run out, so
        // every connection after the failback is persisted on the slave.
        let pe = count(&r, "persisted_elsewhere");
        assert!(pe > 0, "{what}");
        assert_poisson(&what, pe, RATE * (end - back));
        assert!(
            count(&r, "to_slave") as f64 > 2.0 * RATE * (back - switched),
            "{what}: new connections to the slave continue after the failback"
        );

        let r = run_json(&stripped.path, seed);
        let what = format!("no persistence, seed {}", r["seed"]);
        assert_eq!(count(&r, "persisted_elsewhere"), 0, "{what}");
        let (switched, back) = switch_times(&r);
        assert_poisson(&what, count(&r, "to_slave"), RATE * (back - switched));
    }
}

#[test]
fn failback_reset_closes_the_slave_connections_and_keep_does_not() {
    let f = scenario("traffic-failback-reset.toml");
    let keep = temp_scenario(&edit(
        &read("traffic-failback-reset.toml"),
        "failback_sessions = \"reset\"\n",
        "failback_sessions = \"keep\"\n",
    ));
    let lifetime = 60.0;
    for seed in seeds() {
        let r = run_json(&f, seed);
        let what = format!("reset, seed {}", r["seed"]);
        let (switched, back) = switch_times(&r);
        let reset = count(&r, "reset_on_failback");
        assert!(reset > 0, "{what}");
        // Open on the slave at the failback: M/M/inf started empty at the switch, Poisson.
        let mean = RATE * lifetime * (1.0 - (-(back - switched) / lifetime).exp());
        assert_poisson(&what, reset, mean);

        let r = run_json(&keep.path, seed);
        assert_eq!(
            count(&r, "reset_on_failback"),
            0,
            "keep, seed {}",
            r["seed"]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// QUIC

#[test]
fn quic_server_id_slice_survives_failback_and_nonce_slice_does_not() {
    for seed in seeds() {
        let r = run_json(&scenario("quic-slice-server-id.toml"), seed);
        let what = format!("server-id slice, seed {}", r["seed"]);
        assert_eq!(count(&r, "quic_cid_broken"), 0, "{what}");
        assert!(
            count(&r, "broken") > 0,
            "{what}: the crash breaks connections"
        );
        assert!(count(&r, "refused") > 0, "{what}");
        assert_eq!(the_failover(&r)["reason"], "CONNECT_REFUSED");

        let r = run_json(&scenario("quic-slice-nonce.toml"), seed);
        let what = format!("nonce slice, seed {}", r["seed"]);
        let q = count(&r, "quic_cid_broken");
        assert!(q > 0, "{what}");
        // Only connections opened on the slave (during the failover) can break that way.
        assert!(q <= count(&r, "to_slave"), "{what}");
    }
}

#[test]
fn quic_dcid_too_short_falls_back_to_the_tuple_and_migrations_break() {
    let no_migration = temp_scenario(&edit(
        &read("quic-dcid-too-short.toml"),
        "migration = \"20s\"",
        "migration = \"0s\"",
    ));
    for seed in seeds() {
        let r = run_json(&scenario("quic-dcid-too-short.toml"), seed);
        let what = format!("too short, seed {}", r["seed"]);
        let q = count(&r, "quic_cid_broken");
        assert!(q > 0, "{what}");
        assert!(q <= count(&r, "to_slave"), "{what}");

        // Without migration the 4-tuple never changes; a connection can break only when a
        // CID of a path is routed afresh.
        let r = run_json(&no_migration.path, seed);
        let what = format!("too short, no migration, seed {}", r["seed"]);
        assert!(
            count(&r, "quic_cid_broken") <= count(&r, "persisted_elsewhere"),
            "{what}: {} > {}",
            count(&r, "quic_cid_broken"),
            count(&r, "persisted_elsewhere")
        );
    }
}

/// spec/model.md section 6: "A slice inside the server-id bytes is the same in every CID of a
/// connection, so the connection stays put through rotation, migration and new paths."
/// Here: the default slice (offset 1, len 3, the server id), a QUIC pool with SOURCE_IP
/// persistence (60 min), 2 clients, 0.2 connections/s of a fixed 1 s, a master crash 60..180 s.
/// After the failback, persistence sends every new connection to the slave while the node's
/// target is the master; no other connection holds the slave's slice in the node's CID table,
/// so the first member-issued CID (`quic_new_cid` at open, path 0) is routed to the target
/// (the master) and the connection is counted in `quic_cid_broken`: 354 of 354 persisted
/// connections with the file's seed 7.
#[test]
fn quic_server_id_slice_keeps_persisted_connections_after_failback() {
    let text = read("quic-slice-server-id.toml");
    let text = edit(&text, "rate = 20.0", "rate = 0.2");
    let text = edit(&text, "lifetime = \"60s\"", "lifetime = { fixed = \"1s\" }");
    let text = edit(&text, "clients = 100000", "clients = 2");
    let text = edit(
        &text,
        "session_persistence = { type = \"SOURCE_IP\", persistence_timeout = 1 }",
        "session_persistence = { type = \"SOURCE_IP\", persistence_timeout = 60 }",
    );
    let text = edit(&text, "duration = \"10m\"", "duration = \"30m\"");
    let s = temp_scenario(&text);
    let r = run_json(&s.path, None);
    assert!(count(&r, "persisted_elsewhere") > 0);
    assert_eq!(
        count(&r, "quic_cid_broken"),
        0,
        "persisted connections on the slave broke at their first member CID: {}",
        traffic(&r)
    );
}

// ---------------------------------------------------------------------------------------------
// UDP, any port, all down

#[test]
fn udp_flows_are_refused_until_failover() {
    let rate = 50.0;
    for seed in seeds() {
        let r = run_json(&scenario("traffic-udp.toml"), seed);
        let what = format!("udp, seed {}", r["seed"]);
        let fo = the_failover(&r);
        assert_eq!(fo["reason"], "CONNECT_REFUSED");
        let refused = count(&r, "refused");
        assert!(refused > 0, "{what}");
        assert_poisson(&what, refused, rate * f64_of(fo, "failover_latency_s"));
        assert_eq!(count(&r, "timed_out"), 0, "{what}");
        // Flows still active on the master at 60 s break: Poisson with mean
        // rate * E[min(5 s Exp, 60 s)]. Flows the client had finished, only lingering in the
        // LB's table for the 30 s idle timeout, are not broken (they complete).
        assert!(count(&r, "broken") > 0, "{what}");
        let mean_active = 5.0 * (1.0 - (-60.0 / 5.0f64).exp());
        assert_poisson(&what, count(&r, "broken"), rate * mean_active);
    }
}

#[test]
fn any_port_runs_and_reports_the_front_port() {
    let r = run_json(&scenario("traffic-any-port.toml"), None);
    let bp = traffic(&r)["backend_port"].as_str().unwrap();
    assert!(bp.contains("front port"), "{bp}");
    for m in r["members"].as_array().unwrap() {
        assert!(m["protocol_port"].is_null(), "{m}");
    }
    assert_eq!(the_failover(&r)["reason"], "CONNECT_REFUSED");
    assert!(count(&r, "refused") > 0 && count(&r, "broken") > 0);
    assert!(r["warnings"].as_array().unwrap().is_empty());
}

#[test]
fn both_members_down_with_drop_gives_no_backend() {
    for seed in seeds() {
        let r = run_json(&scenario("traffic-all-down.toml"), seed);
        let what = format!("all down, seed {}", r["seed"]);
        let nb = count(&r, "no_backend");
        assert!(nb > 0, "{what}");
        // From the slave's OFFLINE verdict to its ONLINE verdict (node 0, the only node).
        let off = transition_at(&r, "slave", "OFFLINE", 120.0);
        let on = transition_at(&r, "slave", "ONLINE", off);
        assert_poisson(&what, nb, RATE * (on - off));
        assert_conservation(&what, &r);
    }
}
