//! `elbsim trials` and `elbsim tune` through the binary, on the bundled scenarios.

use assert_cmd::Command;
use serde_json::Value;
use std::time::Duration;

fn elbsim(args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("elbsim")
        .unwrap()
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn trials_json(args: &[&str]) -> Value {
    let mut all = vec!["trials", "--format", "json"];
    all.extend_from_slice(args);
    let (code, out, err) = elbsim(&all);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// min and max inside `[lo, hi]` and within 1% of its width of each end; p50 near the middle.
fn assert_fills(s: &Value, lo: f64, hi: f64) {
    let g = |k: &str| s[k].as_f64().unwrap();
    let w = hi - lo;
    assert!(
        g("min") >= lo - 1e-6 && g("max") <= hi + 1e-6,
        "{s} outside [{lo}, {hi}]"
    );
    assert!(
        g("min") - lo < 0.01 * w && hi - g("max") < 0.01 * w,
        "{s} does not reach [{lo}, {hi}]"
    );
    for k in ["p50", "p90", "p99", "p999", "mean"] {
        assert!(g(k) >= lo - 1e-6 && g(k) <= hi + 1e-6, "{k} {s}");
    }
    assert!(
        (g("p50") - (lo + hi) / 2.0).abs() < 0.05 * w,
        "uniform phase: {s}"
    );
    assert!(
        (g("p90") - (lo + 0.9 * w)).abs() < 0.05 * w,
        "uniform phase: {s}"
    );
}

#[test]
fn crash_trials_fill_the_closed_form() {
    // F = 3, D = 5, r = 1 ms: [(F-1)(D+r)+r, F(D+r)+r].
    let r = trials_json(&["scenarios/crash.toml", "-n", "20000"]);
    assert_eq!(r["trials"], 20000);
    assert_eq!(r["partial"], false);
    assert_eq!(r["detection_latency_s"]["count"], 20000);
    assert_fills(
        &r["detection_latency_s"],
        2.0 * 5.001 + 0.001,
        3.0 * 5.001 + 0.001,
    );
    assert_eq!(r["missed_fault_rate"], 0.0);
    assert_eq!(r["false_failovers_per_hour"], 0.0);
}

#[test]
fn host_down_trials_fill_the_closed_form() {
    // F = 3, T = 3, D = 5, r = 1 ms: [F*T + (F-1)*D, F*T + F*D + r].
    let r = trials_json(&["scenarios/host-down.toml", "-n", "20000"]);
    assert_fills(&r["detection_latency_s"], 19.0, 24.001);
}

#[test]
fn results_do_not_depend_on_the_number_of_jobs() {
    let args = |j| {
        vec![
            "trials",
            "scenarios/noisy-network.toml",
            "-n",
            "64",
            "--format",
            "json",
            "--jobs",
            j,
        ]
    };
    let one = elbsim(&args("1"));
    let two = elbsim(&args("2"));
    let three = elbsim(&args("3"));
    assert_eq!(one.0, 0);
    assert_eq!(one.1, two.1);
    assert_eq!(one.1, three.1);
    let v: Value = serde_json::from_str(&one.1).unwrap();
    assert!(v["false_failovers"].as_u64().unwrap() > 0);
}

#[test]
fn trials_json_has_the_contract_keys() {
    let r = trials_json(&["scenarios/crash.toml", "-n", "50", "--seed", "3"]);
    for k in [
        "trials",
        "seed",
        "detection_latency_s",
        "failover_latency_s",
        "failback_latency_s",
        "false_failovers_per_hour",
        "missed_fault_rate",
    ] {
        assert!(r.get(k).is_some(), "missing {k}");
    }
    for k in ["count", "min", "p50", "p90", "p99", "p999", "max", "mean"] {
        assert!(r["failover_latency_s"].get(k).is_some(), "missing {k}");
    }
    assert_eq!(r["seed"], 3);
}

#[test]
fn ctrl_c_prints_the_finished_trials_marked_partial() {
    let bin = assert_cmd::cargo::cargo_bin("elbsim");
    let child = std::process::Command::new(bin)
        .args([
            "trials",
            "scenarios/noisy-network.toml",
            "-n",
            "100000000",
            "--format",
            "json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // The shell's own `kill`, so the test needs no procps on a minimal machine.
    let killed = std::process::Command::new("sh")
        .args(["-c", &format!("kill -INT {}", child.id())])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    // Interrupted: the finished trials are printed, and the exit code says so (130).
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["partial"], true);
    let done = r["trials"].as_u64().unwrap();
    assert!(done > 0 && done < 100_000_000, "{done}");
    assert_eq!(r["trials_requested"], 100_000_000u64);
}

#[test]
fn tune_recommendation_meets_its_constraint_in_trials() {
    let (code, out, err) = elbsim(&[
        "tune",
        "scenarios/noisy-network.toml",
        "-n",
        "20",
        "--delay",
        "1..3",
        "--timeout",
        "1..2",
        "--max-retries-down",
        "3..5",
        "--max-retries",
        "3",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    let best = &r["best"];
    assert_eq!(best["feasible"], true);
    assert!(best["false_failovers"]["per_day"].as_f64().unwrap() <= 1.0);
    let hm = &r["healthmonitor"];
    for k in [
        "type",
        "delay",
        "timeout",
        "max_retries",
        "max_retries_down",
    ] {
        assert!(hm.get(k).is_some(), "healthmonitor lacks {k}: {hm}");
    }
    // Points are ranked: feasible first, by objective.
    let pts = r["points"].as_array().unwrap();
    assert_eq!(pts.len(), 3 * 2 * 3);
    let objs: Vec<f64> = pts
        .iter()
        .take_while(|p| p["feasible"] == true)
        .map(|p| p["objective"].as_f64().unwrap())
        .collect();
    assert!(objs.windows(2).all(|w| w[0] <= w[1]), "{objs:?}");
    assert!(pts.iter().any(|p| p["pareto"] == true));

    // trials with the recommended values: simulation agrees with the constraint. 300 trials of
    // 6 h = 75 days; a true rate of at most 1/day gives a 95% interval reaching below 1/day.
    let s = |k: &str| hm[k].to_string();
    let check = trials_json(&[
        "scenarios/noisy-network.toml",
        "-n",
        "300",
        "--delay",
        &s("delay"),
        "--timeout",
        &s("timeout"),
        "--max-retries",
        &s("max_retries"),
        "--max-retries-down",
        &s("max_retries_down"),
    ]);
    let per_day = check["false_failovers_per_hour"].as_f64().unwrap() * 24.0;
    let count = check["false_failovers"].as_u64().unwrap() as f64;
    let days = check["fault_free_hours"].as_f64().unwrap() / 24.0;
    // Lower end of an approximate 95% Poisson interval.
    let lower = (count - 1.96 * count.sqrt()).max(0.0) / days;
    assert!(
        lower <= 1.0,
        "simulated {per_day}/day (lower 95% bound {lower}) breaks the constraint"
    );
}

#[test]
fn tune_writes_csv_and_refuses_slice_ranges_without_quic() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("t.csv");
    let (code, out, err) = elbsim(&[
        "tune",
        "scenarios/crash.toml",
        "-n",
        "20",
        // Above the scenario's timeout (3): points with timeout >= delay are never recommended.
        "--delay",
        "4..5",
        "--csv",
        &csv.display().to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("best: paste into the API body"), "{out}");
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 3);
    assert!(text.starts_with("rank,delay,timeout"));
    let (code, _, err) = elbsim(&["tune", "scenarios/crash.toml", "--offset", "1..3"]);
    assert_eq!(code, 1);
    assert!(err.contains("QUIC"), "{err}");
    let (code, _, err) = elbsim(&["tune", "scenarios/crash.toml", "--delay", "0..3"]);
    assert_eq!(code, 2, "out-of-range is a usage error: {err}");
    assert!(err.contains("outside what the API accepts"), "{err}");
}

#[test]
fn tune_picks_a_cid_slice_inside_the_server_id_for_quic() {
    let (code, out, err) = elbsim(&[
        "tune",
        "scenarios/quic-slice-nonce.toml",
        "-n",
        "4",
        "--offset",
        "1,4",
        "--len",
        "3",
        "--objective",
        "client-failures",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    let pts = r["points"].as_array().unwrap();
    // Only the slice varies: the health check keeps the scenario's values.
    assert_eq!(pts.len(), 2);
    assert_eq!(
        r["best"]["offset"], 1,
        "a slice in the server id breaks no connection at failback"
    );
    let broken = |i: usize| pts[i]["quic_cid_broken_mean"].as_f64().unwrap();
    assert_eq!(broken(0), 0.0);
    assert!(broken(1) > 0.0);
}

/// Coasting (the default) and `--step-every-probe` give byte-identical reports, event counts
/// included, for `run`, `trials` and `tune`, on scenarios where coasting happens (noise-free,
/// huawei and haproxy, one and four LB nodes, flapping) and where it cannot (noise, traffic).
#[test]
fn step_every_probe_gives_the_same_reports() {
    let cases: [&[&str]; 8] = [
        &["trials", "scenarios/seed-example.toml", "-n", "300"],
        &["trials", "scenarios/four-nodes.toml", "-n", "200"],
        &["trials", "scenarios/flap.toml", "-n", "200"],
        &[
            "trials",
            "scenarios/profile-haproxy-silent-host.toml",
            "-n",
            "200",
        ],
        &["trials", "scenarios/noisy-host-down.toml", "-n", "20"],
        &["run", "scenarios/traffic-crash.toml"],
        &["run", "scenarios/fixed-rate.toml"],
        &[
            "tune",
            "scenarios/crash.toml",
            "--sample",
            "-n",
            "20",
            "--delay",
            "1..3",
            "--timeout",
            "1",
        ],
    ];
    for args in cases {
        let coasted = elbsim(args);
        let mut stepped_args = args.to_vec();
        stepped_args.push("--step-every-probe");
        let stepped = elbsim(&stepped_args);
        assert_eq!(coasted.0, 0, "{args:?}: {}", coasted.2);
        assert_eq!(coasted.1, stepped.1, "{args:?}");
    }
}
