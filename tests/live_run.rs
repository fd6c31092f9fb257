//! `elbsim live` on the bundled fault scenarios, on 127.0.0.1 only, at time scale 0.01 (a
//! scenario minute in 0.6 s of wall clock), each run cut to just past the detection it checks.
//!
//! Each test asserts that the detection latency falls inside the closed-form window of
//! spec/model.md section 8, widened by what the live world adds: the measured timer lateness
//! and the probes' real round trips, converted to scenario time. The DES, run on the same
//! scenario and seed, must land in the same (unwidened) window.

use elbsim::live::driver::{self, LiveOptions, LiveRun};
use elbsim::model::health::Health;
use elbsim::model::router::{Role, Target};
use elbsim::sim::engine::{self, RunLog, RunOptions};
use elbsim::time::{SimDuration, SimTime};
use std::path::Path;
use tokio_util::sync::CancellationToken;

const SCALE: f64 = 0.01;

struct Outcome {
    live: LiveRun,
    des: RunLog,
    fault_at: SimTime,
}

async fn live(scenario: &str, duration_s: u64) -> Outcome {
    let mut s = elbsim::scenario::load(Some(Path::new(scenario)), false).expect("scenario loads");
    s.sim.duration = SimDuration::from_secs(duration_s);
    let seed = s.seed.unwrap_or(0);
    let opts = LiveOptions {
        time_scale: SCALE,
        seed,
        trial: 0,
        record_verdicts: true,
        cancel: CancellationToken::new(),
    };
    let live = driver::run(&s.sim, &s.pool, &opts).await.expect("live run");
    let des = engine::run(
        &s.sim,
        RunOptions {
            seed,
            ..Default::default()
        },
    );
    Outcome {
        live,
        des,
        fault_at: s.sim.faults[0].at,
    }
}

/// Seconds from the fault to node 0's first OFFLINE verdict on the master.
fn detection(log: &RunLog, fault_at: SimTime) -> f64 {
    let t = log
        .transitions
        .iter()
        .find(|t| t.lb_node == 0 && t.member == Role::Master && t.to == Health::Offline)
        .unwrap_or_else(|| panic!("the master was never marked OFFLINE: {log:?}"));
    t.at.since(fault_at).as_secs_f64()
}

/// What the live world may add, in scenario seconds: `probes` probe cycles, each late by up to
/// the largest timer lateness plus a few milliseconds of real round trip, and the fault's own
/// timer.
fn tolerance(o: &Outcome, probes: f64) -> f64 {
    let late_s = o.live.facts.lateness.max_ms / 1e3;
    (probes + 1.0) * (late_s + 0.005) / SCALE
}

fn check(o: &Outcome, lo: f64, hi: f64, probes: f64, reason: &str) {
    let tol = tolerance(o, probes);
    let live = detection(&o.live.log, o.fault_at);
    let des = detection(&o.des, o.fault_at);
    assert!(
        live >= lo - tol && live <= hi + tol,
        "live detection {live:.3}s outside [{lo}, {hi}] widened by {tol:.3}s (lateness {:?})",
        o.live.facts.lateness
    );
    // The DES on the same scenario and seed lands in the same window. The two single runs are
    // not compared with each other: their probes start at the same phases, but every live cycle
    // before the fault is longer by its real round trip and timer lateness, so by the fault the
    // live phase has drifted (here by up to a few scenario seconds) and may even have crossed a
    // cycle boundary. Distributions over many runs are what compare.
    assert!(
        des >= lo - 0.01 && des <= hi + 0.01,
        "DES detection {des:.3}s outside [{lo}, {hi}]"
    );
    let t = o
        .live
        .log
        .transitions
        .iter()
        .find(|t| t.member == Role::Master && t.to == Health::Offline)
        .unwrap();
    assert_eq!(t.reason.map(|r| r.as_str()), Some(reason));
    // The route moved to the slave.
    assert!(
        o.live.log.routes.iter().any(|r| r.to == Target::Slave),
        "{:?}",
        o.live.log.routes
    );
}

// F = max_retries_down = 3, D = delay = 5 s, T = timeout = 3 s in every scenario below.

#[tokio::test]
async fn crash_is_detected_within_the_closed_form_and_fails_back() {
    // crash: [(F-1)D, FD] = [10, 15] s (round trips are negligible on loopback).
    let o = live("scenarios/crash.toml", 200).await;
    check(&o, 10.0, 15.0, 3.0, "CONNECT_REFUSED");
    // Back at 180 s: max_retries successes later the master is ONLINE and traffic fails back.
    let back = o
        .live
        .log
        .transitions
        .iter()
        .rfind(|t| t.member == Role::Master)
        .unwrap();
    assert_eq!(back.to, Health::Online);
    assert!(o.live.log.routes.iter().any(|r| r.failback));
    assert!(o.live.log.stopped.is_none());
}

#[tokio::test]
async fn host_down_is_detected_within_the_published_window() {
    // host_down: [FT + (F-1)D, FT + FD] = [19, 24] s.
    let o = live("scenarios/host-down.toml", 100).await;
    check(&o, 19.0, 24.0, 3.0, "CONNECT_TIMEOUT");
}

#[tokio::test]
async fn hang_fails_the_http_check_at_the_timeout() {
    // An HTTP probe of a hung application fails at the timeout, as host_down: [19, 24] s.
    let o = live("scenarios/hang-http.toml", 100).await;
    check(&o, 19.0, 24.0, 3.0, "RECV_RESPONSE_TIMEOUT");
}

#[tokio::test]
async fn http_503_is_a_mismatch_after_one_round_trip() {
    // A wrong status fails after one round trip, as crash: [10, 15] s.
    let o = live("scenarios/http-503.toml", 100).await;
    check(&o, 10.0, 15.0, 3.0, "RESPONSE_MISMATCH");
    let t = o
        .live
        .log
        .transitions
        .iter()
        .find(|t| t.to == Health::Offline)
        .unwrap();
    assert_eq!(t.status, Some(503));
}

#[tokio::test]
async fn udp_crash_is_refused_by_icmp_port_unreachable() {
    // UDP_CONNECT succeeds at the timeout, so a cycle is D + T before the fault and D + r after:
    // [(F-1)D, (F-1)D + D + T] = [10, 18] s.
    let o = live("scenarios/udp-pool.toml", 230).await;
    check(&o, 10.0, 18.0, 3.0, "CONNECT_REFUSED");
    let back = o
        .live
        .log
        .transitions
        .iter()
        .rfind(|t| t.member == Role::Master)
        .unwrap();
    // Three successes of D + T each after 180 s: ONLINE again by about 212 s.
    assert_eq!(back.to, Health::Online, "recovered after 180 s");
}

#[tokio::test]
async fn a_cancelled_run_reports_up_to_the_cancellation() {
    let s = elbsim::scenario::load(Some(Path::new("scenarios/crash.toml")), false).unwrap();
    let cancel = CancellationToken::new();
    let opts = LiveOptions {
        time_scale: SCALE,
        seed: 7,
        trial: 0,
        record_verdicts: false,
        cancel: cancel.clone(),
    };
    let stopper = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        stopper.cancel();
    });
    let started = std::time::Instant::now();
    let run = driver::run(&s.sim, &s.pool, &opts).await.unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    assert!(run.log.stopped.is_some());
    assert!(run.log.end < SimTime::ZERO + SimDuration::from_secs(60));
}

#[test]
fn the_live_command_prints_the_run_report_with_live_facts() {
    let out = assert_cmd::Command::cargo_bin("elbsim")
        .unwrap()
        .args(["live", "scenarios/crash.toml", "--time-scale", "0.005"])
        .args(["--format", "json"])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["seed"], 7, "the scenario's seed");
    assert_eq!(r["duration_s"], 600.0, "times in scenario seconds");
    let f = &r["failovers"][0];
    assert_eq!(f["fault"], "crash");
    assert_eq!(f["reason"], "CONNECT_REFUSED");
    assert_eq!(f["switched_to"], "slave");
    assert_eq!(r["failbacks"].as_array().map(Vec::len), Some(1));
    assert_eq!(r["live"]["time_scale"], 0.005);
    assert!(r["live"]["lateness"]["timers"].as_u64().unwrap() > 100);
    assert!(r["live"]["wall_s"].as_f64().unwrap() < 10.0);
}

#[test]
fn the_live_command_refuses_a_bad_time_scale() {
    let out = assert_cmd::Command::cargo_bin("elbsim")
        .unwrap()
        .args(["live", "scenarios/crash.toml", "--time-scale", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[tokio::test]
async fn fixed_rate_host_down_is_detected_within_its_window() {
    // fixed_rate, host_down: [(F-1)D + T, FD + T] = [13, 18] s.
    let o = live("scenarios/fixed-rate.toml", 100).await;
    check(&o, 13.0, 18.0, 3.0, "CONNECT_TIMEOUT");
}

#[tokio::test]
async fn four_nodes_each_detect_on_their_own() {
    let o = live("scenarios/four-nodes.toml", 100).await;
    let tol = tolerance(&o, 3.0);
    for node in 0..4 {
        let t = o
            .live
            .log
            .transitions
            .iter()
            .find(|t| t.lb_node == node && t.member == Role::Master && t.to == Health::Offline)
            .unwrap_or_else(|| panic!("node {node} never marked the master OFFLINE"));
        let d = t.at.since(o.fault_at).as_secs_f64();
        assert!(
            (19.0 - tol..=24.0 + tol).contains(&d),
            "node {node}: {d:.3}s outside [19, 24] widened by {tol:.3}s"
        );
        assert!(o
            .live
            .log
            .routes
            .iter()
            .any(|r| r.lb_node == node && r.to == Target::Slave));
    }
}

#[tokio::test]
async fn monitor_port_down_and_tls_error_fail_over_though_clients_are_fine() {
    // Only the check port closes: refused after one round trip, as a crash.
    let o = live("scenarios/monitor-port-down.toml", 100).await;
    check(&o, 10.0, 15.0, 3.0, "CONNECT_REFUSED");
    // The HTTPS check sees a broken handshake, after one round trip.
    let o = live("scenarios/tls-error-https.toml", 100).await;
    check(&o, 10.0, 15.0, 3.0, "SSL_HANDSHAKE_ERROR");
}

#[tokio::test]
async fn every_bundled_scenario_runs_live() {
    // The first 30 scenario seconds of each (more for a pool checked rarely), all at once: no
    // scenario may fail to set up (a backend, a TLS configuration, a check port) or leave the
    // log inconsistent.
    let mut runs = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir("scenarios")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    for path in paths {
        let mut s = elbsim::scenario::load(Some(&path), false)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // 30 s, or long enough for two checks of each pair of a pool checked less often
        // (profile-haproxy-observe.toml checks every 20 s).
        let two_checks = SimDuration(s.sim.check.delay.0 * 2) + SimDuration::from_secs(5);
        s.sim.duration = SimDuration::from_secs(30).max(two_checks);
        if let Some(why) = driver::not_live(&s.sim) {
            // The faults live cannot reproduce (per-path faults, stalls, bursts, ICMP limits, a
            // separate monitor process) are refused with the reason, before anything starts.
            assert!(why.contains("simulator"), "{}: {why}", path.display());
            continue;
        }
        let end = s.sim.duration;
        runs.push(async move {
            let opts = LiveOptions {
                time_scale: SCALE,
                seed: 1,
                trial: 0,
                record_verdicts: true,
                cancel: CancellationToken::new(),
            };
            let run = driver::run(&s.sim, &s.pool, &opts)
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path, s.sim.lb_nodes, end, run)
        });
    }
    let started = std::time::Instant::now();
    let mut handles = Vec::new();
    for r in runs {
        handles.push(tokio::spawn(r));
    }
    for h in handles {
        let (path, nodes, end, run) = h.await.unwrap();
        let log = &run.log;
        assert!(log.stopped.is_none(), "{}", path.display());
        assert_eq!(log.end, SimTime::ZERO + end);
        // Every (node, member) pair was probed at least a few times.
        for node in 0..nodes.max(1) {
            for role in [Role::Master, Role::Slave] {
                let n = log
                    .verdicts
                    .iter()
                    .filter(|v| v.lb_node == node && v.member == role)
                    .count();
                assert!(
                    n >= 2,
                    "{}: node {node} {role:?}: {n} verdicts",
                    path.display()
                );
            }
        }
        assert!(
            log.verdicts.windows(2).all(|w| w[0].at <= w[1].at),
            "{}: verdicts out of order",
            path.display()
        );
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}
