//! `elbsim live --compare N` on 127.0.0.1: a handful of live trials of `scenarios/crash.toml` at
//! time scale 0.005 (each trial, cut at 212 scenario seconds, about 1.1 s of wall clock), against
//! the DES's 1,000 trials.
//!
//! The live trials start at the DES's own phases for trials 0..N, so their detection latencies
//! spread over the window as the DES's do; with five of them the p50 difference is a fraction of
//! a probe cycle. The bound here (half a cycle, plus three times the latest timer the run saw)
//! is loose on purpose: a loaded CI machine makes timers late, and that lateness is inside the
//! live latencies.

use std::time::Duration;

fn compare(args: &[&str]) -> std::process::Output {
    assert_cmd::Command::cargo_bin("elbsim")
        .unwrap()
        .args(["live", "scenarios/crash.toml", "--time-scale", "0.005"])
        .args(args)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap()
}

#[test]
fn compare_prints_live_and_des_side_by_side() {
    let out = compare(&["--compare", "5", "--format", "json"]);
    assert!(out.status.success(), "{out:?}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["live_trials"], 5);
    assert!(r["des_trials"].as_u64().unwrap() >= 1000);
    assert_eq!(r["trial_duration_s"], 212.0);
    let w = &r["window"];
    assert_eq!(w["class"], "answered");
    assert_eq!(w["fault_kind"], "crash");
    assert!((w["width_s"].as_f64().unwrap() - 5.001).abs() < 1e-9);
    let names: Vec<&str> = r["latencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["latency"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["detection", "failover", "failback"]);
    // Timers that fire late make live latencies later: on a loaded machine each of the three
    // probes of a detection (fall 3) can be as late as the latest timer seen, in scenario time.
    let width = w["width_s"].as_f64().unwrap();
    let late = r["lateness_max_scenario_ms"].as_f64().unwrap() / 1000.0;
    let bound = 0.5 + 3.0 * late / width;
    for l in r["latencies"].as_array().unwrap() {
        let what = l["latency"].as_str().unwrap();
        // Both columns exist: every live trial detected the crash and failed back once.
        assert_eq!(l["live"]["count"], 5, "{what}: {l}");
        assert!(l["des"]["count"].as_u64().unwrap() >= 1000, "{what}: {l}");
        assert!(l["live"]["p50"].as_f64().is_some() && l["des"]["p50"].as_f64().is_some());
        let frac = l["fraction_of_window"]["p50"]
            .as_f64()
            .unwrap_or_else(|| panic!("{what}: no p50 fraction: {l}"));
        assert!(
            frac.is_finite() && frac.abs() < bound,
            "{what}: live p50 - DES p50 = {frac} of the window, bound {bound} ({l})"
        );
    }
    assert!(r["lateness"]["timers"].as_u64().unwrap() > 100);
    assert!(r["lateness"]["max_ms"].as_f64().unwrap() >= r["lateness"]["p50_ms"].as_f64().unwrap());
    assert_eq!(r["live_missed_faults"], 0);
}

#[test]
fn compare_text_names_the_window_class_and_both_columns() {
    let out = compare(&["--compare", "1"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("answered class"), "{text}");
    assert!(
        text.contains("[(F-1)(D+r)+r, F(D+r)+r] = [10.003s, 15.004s]"),
        "{text}"
    );
    assert!(text.contains("live - DES"), "{text}");
    assert!(text.contains("timer lateness over"), "{text}");
    assert!(
        text.contains("--compare 1 --seed 7 --time-scale 0.005"),
        "{text}"
    );
}

#[test]
fn compare_refuses_too_many_trials() {
    let out = compare(&["--compare", "201"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = compare(&["--compare", "0"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // A cap on the wall clock too: 200 trials in real time would take hours.
    let out = assert_cmd::Command::cargo_bin("elbsim")
        .unwrap()
        .args([
            "live",
            "scenarios/crash.toml",
            "--time-scale",
            "1",
            "--compare",
            "200",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cap"));
}
