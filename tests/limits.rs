//! No input can hang the engine or exhaust memory: each reproducer of the hardening issue runs
//! through the binary under an address-space limit (`ulimit -v`) and a time bound, and must
//! finish or fail fast with an error that names the limit and the key to change.

use assert_cmd::Command;
use elbsim::model::probe::ProbeKind;
use elbsim::sim::config::{CheckConfig, Lifetime, SimConfig, TrafficConfig};
use elbsim::sim::engine::{run, LimitKind, RunOptions, Stopped};
use elbsim::time::{SimDuration, SimTime};
use std::path::Path;
use std::time::Duration;

mod common;

/// A TCP pool with a TCP check and `pool_extra` in its `[pool]` table, after `top`.
fn scenario(top: &str, pool_extra: &str) -> String {
    common::scenario_with(top, "TCP", "TCP", pool_extra)
}

/// Runs `elbsim ARGS` on the scenario under `ulimit -v` (KiB) and a time bound; returns (exit
/// code, stdout, stderr).
fn bounded(toml: &str, args: &[&str], vmem_kib: u64, secs: u64) -> (i32, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("s.toml");
    std::fs::write(&p, toml).expect("write");
    let bin = assert_cmd::cargo::cargo_bin("elbsim");
    let mut script = format!(
        "ulimit -v {vmem_kib}; exec '{}' {} '{}'",
        bin.display(),
        args[0],
        p.display()
    );
    for a in &args[1..] {
        script.push_str(&format!(" '{a}'"));
    }
    let out = Command::new("sh")
        .args(["-c", &script])
        .timeout(Duration::from_secs(secs))
        .output()
        .expect("sh runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const GIB: u64 = 1024 * 1024;

/// Defect 1: Persistence tables grow with the clients seen, not with `clients x lb_nodes`.
#[test]
fn persistence_memory_follows_the_clients_seen() {
    let toml = scenario(
        r#"duration = "30s"
lb_nodes = 1024
[traffic]
rate = 200.0
lifetime = "5s"
clients = 10000000"#,
        r#"session_persistence = { type = "SOURCE_IP", persistence_timeout = 10 }"#,
    );
    let (code, out, err) = bounded(&toml, &["run", "--format", "json"], GIB, 60);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"persisted_elsewhere\""), "{out}");
}

/// Defect 2: An expected peak of open connections over the cap is refused at load, naming the key.
#[test]
fn open_connections_over_the_cap_are_refused_at_load() {
    let toml = scenario(
        r#"duration = "60s"
[traffic]
rate = 1000000.0
lifetime = "366d""#,
        "",
    );
    let (code, _, err) = bounded(&toml, &["run"], GIB, 20);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("max_open_connections") && err.contains("traffic.rate"),
        "{err}"
    );
}

/// Defect 2: At run time the cap stops the run (the library's view).
#[test]
fn open_connections_over_the_cap_stop_the_run() {
    let mut cfg = SimConfig::with_check(CheckConfig {
        kind: ProbeKind::Tcp,
        delay: SimDuration::from_secs(5),
        timeout: SimDuration::from_secs(3),
        rise: 3,
        fall: 3,
    });
    cfg.traffic = Some(TrafficConfig {
        rate_steps: vec![(SimTime::ZERO, 100.0)],
        lifetime: Lifetime::Fixed(SimDuration::from_secs(100)),
        clients: 1000,
        connect_timeout: SimDuration::from_secs(3),
        requests_per_s: 1.0,
        udp_idle_timeout: None,
        persistence: None,
        drain: None,
        tls: false,
        any_port: false,
        quic: None,
    });
    cfg.limits.max_open_connections = 500;
    let log = run(&cfg, RunOptions::default());
    assert!(
        matches!(
            log.stopped,
            Some(Stopped::Limit {
                kind: LimitKind::OpenConnections,
                limit: 500,
                ..
            })
        ),
        "{:?}",
        log.stopped
    );
    // What was open is accounted for: every established connection closed one way or another.
    let t = log.traffic.expect("traffic");
    use elbsim::sim::engine::Counter::*;
    assert_eq!(t.counters.get(OpenAtEnd), 501);
}

/// Defect 3: Tiny periods are refused at load; the event budget stops a run that would take too long.
#[test]
fn tiny_periods_are_refused_and_the_event_budget_holds() {
    let flap = scenario(
        r#"duration = "10m"
[[faults]]
member = "master"
kind = "flap"
period = "1ns"
down = 0.5
at = "60s""#,
        "",
    );
    let (code, _, err) = bounded(&flap, &["run"], GIB, 20);
    assert_eq!(code, 1);
    assert!(
        err.contains("faults[0].period") && err.contains("1ms"),
        "{err}"
    );

    let quic = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quic-slice-nonce.toml"),
    )
    .unwrap();
    let rotation = quic
        .lines()
        .find(|l| l.starts_with("cid_rotation"))
        .expect("the scenario sets cid_rotation");
    let quic = quic.replace(rotation, "cid_rotation = \"1ns\"");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("q.toml");
    std::fs::write(&p, &quic).unwrap();
    let out = Command::cargo_bin("elbsim")
        .unwrap()
        .args(["run", p.to_str().unwrap()])
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("traffic.quic.cid_rotation"), "{err}");

    let budget = scenario(
        r#"duration = "366d"
lb_nodes = 64
[limits]
max_events = 100000"#,
        "",
    );
    let (code, _, err) = bounded(&budget, &["run"], GIB, 20);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("max_events") && err.contains("100000"),
        "{err}"
    );
    let over = budget.replace("max_events = 100000", "max_events = 99999999999999");
    let (code, _, err) = bounded(&over, &["run"], GIB, 20);
    assert_eq!(code, 1);
    assert!(
        err.contains("limits.max_events") && err.contains("hard maximum"),
        "{err}"
    );
}

/// Defect 5: The report analysis is linear: three hundred detected faults on a hundred nodes (some
/// 120,000 status and route changes), and ten thousand faults on four, analysed in seconds.
#[test]
fn report_analysis_scales_with_faults_and_nodes() {
    let mut faults = String::new();
    for i in 0..300 {
        faults.push_str(&format!(
            "[[faults]]\nmember = \"master\"\nkind = \"crash\"\nat = \"{}s\"\nuntil = \"{}s\"\n",
            10 + i * 40,
            30 + i * 40
        ));
    }
    let toml = scenario(&format!("duration = \"4h\"\nlb_nodes = 100\n{faults}"), "");
    let (code, out, err) = bounded(&toml, &["run", "--format", "json"], 2 * GIB, 60);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("\"missed_faults\": 0"),
        "every (fault, node) pair is detected"
    );

    let mut faults = String::new();
    for i in 0..10_000 {
        faults.push_str(&format!(
            "[[faults]]\nmember = \"master\"\nkind = \"crash\"\nat = \"{}ms\"\nuntil = \"{}ms\"\n",
            10_000 + i * 800,
            10_500 + i * 800
        ));
    }
    let toml = scenario(&format!("duration = \"3h\"\nlb_nodes = 4\n{faults}"), "");
    let (code, _, err) = bounded(&toml, &["run", "--format", "json"], 2 * GIB, 60);
    assert_eq!(code, 0, "{err}");
}

/// Defect 7: `run` memory is bounded by the log cap: 1,024 nodes flapping for an hour, with the
/// timeline on, stop with a clear error instead of taking gigabytes.
#[test]
fn run_memory_is_bounded_by_the_log_cap() {
    let toml = scenario(
        r#"duration = "1h"
lb_nodes = 1024
[[faults]]
member = "master"
kind = "flap"
period = "60s"
down = 0.5
at = "10s""#,
        "",
    );
    let (code, out, err) = bounded(&toml, &["run", "--format", "json"], GIB, 60);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"failovers\""));
    let (code, _, err) = bounded(&toml, &["run", "--format", "json", "--timeline"], GIB, 60);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("max_log_entries"), "{err}");
}
