//! The outputs of issue 13 through the binary: `trials --csv` and `--histogram` parse back to
//! the report's numbers, `--format markdown` gives pipe tables, and everything is byte-identical
//! for any `--jobs`.

use assert_cmd::Command;
use serde_json::Value;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn elbsim(args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("elbsim")
        .unwrap()
        .current_dir(root())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn csv_and_histogram_parse_back_to_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("t.csv");
    let hist = dir.path().join("f.hgrm");
    let (code, out, err) = elbsim(&[
        "trials",
        "scenarios/four-nodes.toml",
        "-n",
        "150",
        "--seed",
        "3",
        "--format",
        "json",
        "--csv",
        csv.to_str().unwrap(),
        "--histogram",
        hist.to_str().unwrap(),
        "-j",
        "2",
    ]);
    assert_eq!(code, 0, "{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert!(rows.iter().all(|r| r.len() == header.len()));
    // Every trial appears, in order.
    let mut trials: Vec<u64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    trials.dedup();
    assert_eq!(trials, (0..150).collect::<Vec<_>>());
    let values = |name: &str| -> Vec<f64> {
        rows.iter()
            .filter(|r| !r[col(name)].is_empty())
            .map(|r| r[col(name)].parse().unwrap())
            .collect()
    };
    for (column, key) in [
        ("detection_s", "detection_latency_s"),
        ("failover_s", "failover_latency_s"),
        ("failback_s", "failback_latency_s"),
    ] {
        let v = values(column);
        let s = &r[key];
        assert_eq!(v.len() as u64, s["count"].as_u64().unwrap(), "{column}");
        let min = v.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = v.iter().cloned().fold(0.0, f64::max);
        // Exact to the nanosecond on both sides.
        assert!((min - s["min"].as_f64().unwrap()).abs() < 1e-9, "{column}");
        assert!((max - s["max"].as_f64().unwrap()).abs() < 1e-9, "{column}");
    }
    let ff: u64 = values("false_failovers").iter().map(|&x| x as u64).sum();
    assert_eq!(ff, r["false_failovers"].as_u64().unwrap());
    let missed = rows
        .iter()
        .filter(|r| r[col("outcome")] == "missed")
        .count();
    assert_eq!(missed as u64, r["missed_faults"].as_u64().unwrap());

    // The histogram: HdrHistogram's percentile layout, in milliseconds, same count and maximum.
    let h = std::fs::read_to_string(&hist).unwrap();
    assert!(h.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"));
    let rows: Vec<Vec<f64>> = h
        .lines()
        .skip(2)
        .take_while(|l| !l.starts_with('#'))
        .map(|l| l.split_whitespace().map(|x| x.parse().unwrap()).collect())
        .collect();
    let last = rows.last().unwrap();
    let f = &r["failover_latency_s"];
    assert_eq!(last[2] as u64, f["count"].as_u64().unwrap());
    let max_ms = f["max"].as_f64().unwrap() * 1000.0;
    assert!(
        (last[0] - max_ms).abs() <= max_ms * 0.001 + 0.001,
        "{last:?} {max_ms}"
    );
    let mean_line = h.lines().find(|l| l.starts_with("#[Mean")).unwrap();
    let mean: f64 = mean_line
        .split(['=', ','])
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mean_ms = f["mean"].as_f64().unwrap() * 1000.0;
    assert!(
        (mean - mean_ms).abs() <= mean_ms * 0.001,
        "{mean} {mean_ms}"
    );
    // Percentiles rise with the percentile column.
    assert!(rows
        .windows(2)
        .all(|w| w[0][0] <= w[1][0] && w[0][1] <= w[1][1]));

    // The same files from one worker thread.
    let csv1 = dir.path().join("t1.csv");
    let hist1 = dir.path().join("f1.hgrm");
    let (code, out1, _) = elbsim(&[
        "trials",
        "scenarios/four-nodes.toml",
        "-n",
        "150",
        "--seed",
        "3",
        "--format",
        "json",
        "--csv",
        csv1.to_str().unwrap(),
        "--histogram",
        hist1.to_str().unwrap(),
        "-j",
        "1",
    ]);
    assert_eq!(code, 0);
    assert_eq!(out, out1);
    assert_eq!(std::fs::read(&csv).unwrap(), std::fs::read(&csv1).unwrap());
    assert_eq!(
        std::fs::read(&hist).unwrap(),
        std::fs::read(&hist1).unwrap()
    );
}

#[test]
fn csv_refuses_batches_it_cannot_hold() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("t.csv");
    let (code, _, err) = elbsim(&[
        "trials",
        "scenarios/crash.toml",
        "-n",
        "2000000",
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with("error: --csv") && err.contains("--seed"),
        "{err}"
    );
    assert!(!csv.exists());
}

#[test]
fn markdown_reports_have_pipe_tables() {
    let (code, out, err) = elbsim(&["run", "scenarios/crash.toml", "--format", "markdown"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("## elbsim run: "), "{out}");
    assert!(out.contains("| node | fault | start | detected |"), "{out}");
    assert!(
        out.contains("reproduce: `elbsim run scenarios/crash.toml --seed"),
        "{out}"
    );
    let (code, out, err) = elbsim(&[
        "trials",
        "scenarios/crash.toml",
        "-n",
        "50",
        "--format",
        "markdown",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("| latency | samples | min | p50 |"), "{out}");
    assert!(out.contains("|---|---|"), "{out}");
    let (code, out, err) = elbsim(&[
        "tune",
        "scenarios/crash.toml",
        "-n",
        "5",
        "--delay",
        "2,3",
        "--timeout",
        "1",
        "--max-retries-down",
        "2",
        "--max-retries",
        "1",
        "--format",
        "markdown",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("## elbsim tune: "), "{out}");
    assert!(out.contains("| rank | delay | timeout |"), "{out}");
}

#[test]
fn assertions_gate_with_exit_3_and_explain_bad_keys() {
    let run = |asserts: &[&str]| {
        let mut args = vec!["trials", "scenarios/crash.toml", "-n", "60", "--seed", "5"];
        for a in asserts {
            args.push("--assert");
            args.push(a);
        }
        elbsim(&args)
    };
    let (code, _, err) = run(&[
        "failover.p99 <= 20s",
        "false_failovers_per_day <= 1",
        "missed_rate < 1%",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err.matches("assert PASS").count(), 3, "{err}");
    for failing in [
        "failover.p99 <= 5s",
        "failover.p50 < 5000ms",
        "failover.p99 >= 1m",
        "failover.p99 > 20",
        "failover.count == 61",
        "failover.count != 60",
    ] {
        let (code, _, err) = run(&["failover.p99 <= 20s", failing]);
        assert_eq!(code, 3, "{failing}: {err}");
        assert!(err.contains(&format!("assert FAIL: {failing}")), "{err}");
        assert!(err.contains("assert PASS: failover.p99 <= 20s"), "{err}");
    }
    let (code, _, err) = run(&["failover.p98 <= 5s"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with("error: --assert") && err.contains("closest is failover_latency_s.p9"),
        "{err}"
    );
    let (code, _, err) = run(&["failover.p99 5s"]);
    assert_eq!(code, 2, "{err}");
    // JSON carries the verdicts.
    let (code, out, _) = elbsim(&[
        "trials",
        "scenarios/crash.toml",
        "-n",
        "60",
        "--format",
        "json",
        "--assert",
        "failover.p99 <= 5s",
    ]);
    assert_eq!(code, 3);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["assertions"][0]["passed"], Value::Bool(false));
    assert_eq!(v["assertions"][0]["key"], "failover_latency_s.p99");
}

#[test]
fn baselines_save_and_compare() {
    let dir = tempfile::tempdir().unwrap();
    let exe = assert_cmd::cargo::cargo_bin("elbsim");
    let scenario = root().join("scenarios/crash.toml");
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(&exe)
            .current_dir(dir.path())
            .args(["trials", scenario.to_str().unwrap(), "-n", "200"])
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = run(&["--save-baseline", "main", "--seed", "1"]);
    assert_eq!(code, 0, "{err}");
    assert!(dir.path().join(".elbsim/baselines/main.json").exists());
    // Same seed: nothing changed.
    let (code, out, err) = run(&["--baseline", "main", "--seed", "1"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("change against baseline main"), "{out}");
    assert!(out.contains("failover_latency_s.p50"), "{out}");
    assert!(!out.lines().any(|l| l.ends_with("  changed")), "{out}");
    // A shorter delay: detection clearly faster.
    let (code, out, _) = run(&[
        "--baseline",
        "main",
        "--seed",
        "2",
        "--delay",
        "2",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    let p50 = v["baseline"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == "failover_latency_s.p50")
        .unwrap();
    assert_eq!(p50["significance"], "changed", "{p50}");
    assert!(p50["change"].as_f64().unwrap() < -0.3);
    let (code, _, err) = run(&["--baseline", "nope"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: --baseline nope") && err.contains("--save-baseline nope"),
        "{err}"
    );
}
