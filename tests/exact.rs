//! Exact mode (`trials --exact`, `tune --exact`) against the engine and against sampling.
//!
//! - At every phase a batch of trials draws, the engine's measured latencies equal the exact
//!   function of the phase (`exact::node_outcome`): the closed form is the engine's own rules.
//! - On every bundled noise-free scenario, sampled percentiles from a large batch converge to the
//!   exact ones: the exact CDF at each sampled percentile is within 5 standard errors of its
//!   quantile (plus the histogram's bucket), and samples per trial and missed rates agree.
//! - Exact min and max lie on the closed forms of docs/model.md ("Detection latency: closed
//!   forms"), within the gap the probe grid leaves (a probe can only go out at phase + k x cycle).
//! - The command line: `--exact` refuses random scenarios naming why (exit 2), refuses `--shard`
//!   and per-trial exports; without `-n` a noise-free scenario is exact, with `-n` sampled;
//!   `tune --exact`'s recommendation is checked by sampled trials.

use assert_cmd::Command;
use elbsim::experiment::exact::{self, Exact};
use elbsim::experiment::trials::{run_trials, TrialsOptions};
use elbsim::model::health::ProbeSchedule;
use elbsim::model::probe::ProbeKind;
use elbsim::report::run::measure;
use elbsim::sim::config::{FaultKind, Rtt, SimConfig};
use elbsim::sim::engine::{run, RunOptions};
use elbsim::sim::rng::{stream, unit, Purpose};
use serde_json::Value;
use std::sync::atomic::AtomicBool;

fn load(name: &str) -> SimConfig {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name);
    elbsim::scenario::load_with(Some(&path), false, Default::default())
        .unwrap_or_else(|e| panic!("{name}: {:?}", e.problems))
        .sim
}

/// The bundled scenarios, by file name, sorted.
fn bundled() -> Vec<String> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    v.sort();
    v
}

fn noise_free() -> Vec<(String, SimConfig)> {
    bundled()
        .into_iter()
        .map(|n| {
            let c = load(&n);
            (n, c)
        })
        .filter(|(_, c)| exact::why_not_exact(c).is_none())
        .collect()
}

fn one_node(cfg: &SimConfig) -> SimConfig {
    let mut c = cfg.clone();
    c.lb_nodes = 1;
    c
}

#[test]
fn the_bundled_noise_free_scenarios_are_the_expected_ones() {
    let names: Vec<String> = noise_free().into_iter().map(|(n, _)| n).collect();
    for n in [
        "after-completion.toml",
        "crash.toml",
        "fixed-rate.toml",
        "flap.toml",
        "four-nodes.toml",
        "hang-http.toml",
        "hang-tcp.toml",
        "host-down.toml",
        "http-503.toml",
        "monitor-port-down.toml",
        "seed-example.toml",
        "slow.toml",
        "tls-error-https.toml",
        "udp-pool.toml",
    ] {
        assert!(
            names.iter().any(|x| x == n),
            "{n} should be exact: {names:?}"
        );
    }
    for (n, why) in [
        ("loss.toml", "loss, probability"),
        ("noisy-network.toml", "log-normal"),
        ("traffic-crash.toml", "[traffic]"),
    ] {
        let got = exact::why_not_exact(&load(n)).expect(n);
        assert!(got.contains(why), "{n}: {got}");
    }
}

/// The engine's outcome of one trial in the shape of `exact::node_outcome`.
fn engine_outcome(cfg: &SimConfig, trial: u64) -> exact::NodeOutcome {
    let log = run(
        cfg,
        RunOptions {
            seed: 11,
            trial,
            stop_when_quiet: true,
            ..Default::default()
        },
    );
    let m = measure(cfg, &log);
    let mut o = exact::NodeOutcome::default();
    for f in &m.failovers {
        let start = cfg.faults[f.detection.fault as usize].at;
        o.detection
            .push((f.detection.fault, f.detection.detected.since(start).0));
        if let Some(sw) = f.switched {
            o.failover.push((f.detection.fault, sw.since(start).0));
        }
        o.needless += u64::from(f.needless.is_some());
    }
    for x in &m.outages {
        o.outage
            .push(x.at.since(cfg.faults[x.detection.fault as usize].at).0);
    }
    for b in &m.failbacks {
        o.failback.push(b.switched_back.since(b.healthy).0);
    }
    o.missed = m.missed.len() as u64;
    o.censored = m.censored.len() as u64;
    o.pairs = m.fault_node_pairs;
    // The engine's false failovers are compared through the whole report below.
    o
}

#[test]
fn the_engine_agrees_with_the_exact_function_at_every_sampled_phase() {
    for (name, cfg) in noise_free() {
        let cfg = one_node(&cfg);
        let d = cfg.check.delay.0;
        for trial in 0..300 {
            // The engine's first draw of the probes' stream is the master's phase on node 0.
            let u = unit(&mut stream(11, trial, Purpose::Probes));
            let phase = (d as f64 * u) as u64 % d;
            let (mut want, _) = exact::node_outcome(&cfg, phase).unwrap();
            want.false_failovers = 0;
            let got = engine_outcome(&cfg, trial);
            assert_eq!(got, want, "{name}: trial {trial}, phase {phase} ns");
        }
    }
}

#[test]
fn the_engine_agrees_with_the_exact_function_across_model_settings_and_checks() {
    use elbsim::model::router::{AllDown, Failback};
    use elbsim::sim::config::InitialState;
    use elbsim::time::SimDuration;
    let mut variants = 0;
    for base in [
        "crash.toml",
        "host-down.toml",
        "flap.toml",
        "hang-http.toml",
        "udp-pool.toml",
    ] {
        let base = one_node(&load(base));
        for (k, (delay, timeout, fall, rise)) in [
            (1, 1, 1, 1),
            (2, 5, 2, 4),
            (7, 3, 4, 2),
            (13, 11, 10, 10),
            (50, 50, 3, 3),
        ]
        .into_iter()
        .enumerate()
        {
            let mut cfg = base.clone();
            cfg.check.delay = SimDuration::from_secs(delay);
            cfg.check.timeout = SimDuration::from_secs(timeout);
            cfg.check.fall = fall;
            cfg.check.rise = rise;
            cfg.model.probe_schedule = if k % 2 == 0 {
                ProbeSchedule::AfterCompletion
            } else {
                ProbeSchedule::FixedRate
            };
            cfg.model.route_update_delay = SimDuration::from_millis(250 * k as u64);
            cfg.model.failback = if k == 2 {
                Failback::Sticky
            } else {
                Failback::Preemptive
            };
            cfg.model.all_down = if k == 3 {
                AllDown::Master
            } else {
                AllDown::Drop
            };
            if k == 1 {
                cfg.model.initial_state = InitialState::Initial;
            }
            let Ok(x) = exact::compute(&cfg) else {
                continue;
            };
            variants += 1;
            let d = cfg.check.delay.0;
            for trial in 0..60 {
                let u = unit(&mut stream(11, trial, Purpose::Probes));
                let phase = (d as f64 * u) as u64 % d;
                let (mut want, _) = exact::node_outcome(&cfg, phase).unwrap();
                want.false_failovers = 0;
                let got = engine_outcome(&cfg, trial);
                assert_eq!(got, want, "{cfg:?}: trial {trial}, phase {phase} ns");
            }
            assert!(x.pieces >= 1);
        }
    }
    assert!(variants >= 20, "{variants} variants computed exactly");
    // Certain loss is no randomness: every probe is lost, and the engine agrees.
    let mut cfg = one_node(&load("crash.toml"));
    cfg.faults[0].kind = FaultKind::Loss { probability: 1.0 };
    assert!(exact::why_not_exact(&cfg).is_none());
    let d = cfg.check.delay.0;
    for trial in 0..60 {
        let u = unit(&mut stream(11, trial, Purpose::Probes));
        let phase = (d as f64 * u) as u64 % d;
        let (mut want, _) = exact::node_outcome(&cfg, phase).unwrap();
        want.false_failovers = 0;
        assert_eq!(engine_outcome(&cfg, trial), want, "loss 1.0, trial {trial}");
    }
}

/// Checks that a sampled quantile `v` (seconds) of `q` from `n` samples is where the exact
/// distribution puts it: the exact CDF just below and at `v` brackets `q` within 5 standard
/// errors, allowing the histogram's bucket (0.1%) on each side.
fn converged(name: &str, what: &str, dist: &exact::Dist, q: f64, v: f64, n: u64) {
    let total = dist.count() as f64;
    let sigma = (q * (1.0 - q) / n as f64).sqrt();
    let tol = 5.0 * sigma + 1e-9;
    let ns = (v * 1e9).round() as u64;
    let bucket = ns / 1000 + 1_000;
    let above = dist.count_le(ns + bucket) as f64 / total;
    let below = dist.count_le(ns.saturating_sub(bucket + 1)) as f64 / total;
    assert!(
        above >= q - tol && below <= q + tol,
        "{name} {what} q{q}: sampled {v} s has exact CDF in [{below}, {above}], not around {q} ± {tol}"
    );
}

#[test]
fn sampled_percentiles_converge_to_the_exact_ones_on_every_noise_free_scenario() {
    const N: u64 = 10_000;
    for (name, cfg) in noise_free() {
        let x: Exact = exact::compute(&cfg).unwrap();
        let exact_report = x.report(&cfg, 0);
        let sampled = run_trials(
            &cfg,
            TrialsOptions {
                n: N,
                seed: 3,
                jobs: 2,
            },
            &AtomicBool::new(false),
            &|_| {},
        );
        for (what, dist, s) in [
            ("detection", &x.detection, &sampled.detection_latency_s),
            ("failover", &x.failover, &sampled.failover_latency_s),
            ("failback", &x.failback, &sampled.failback_latency_s),
        ] {
            // Samples per trial: the share of phases with such a latency, times the nodes.
            let per_trial_exact = dist.count() as f64 / x.phases as f64;
            let per_trial_sampled = s.count as f64 / N as f64;
            assert!(
                (per_trial_exact - per_trial_sampled).abs()
                    <= 5.0 * (per_trial_exact.max(0.01) / N as f64).sqrt() + 1e-9,
                "{name} {what}: {per_trial_exact} per trial exact, {per_trial_sampled} sampled"
            );
            if s.count < 1000 {
                continue;
            }
            for (q, v) in [(0.5, s.p50), (0.9, s.p90), (0.99, s.p99)] {
                converged(&name, what, dist, q, v.unwrap(), s.count);
            }
            // The extremes are exact in both: sampled ones lie inside the exact range.
            let (lo, hi) = (dist.min().unwrap(), dist.max().unwrap());
            let ns = |v: Option<f64>| (v.unwrap() * 1e9).round() as u64;
            assert!(ns(s.min) >= lo && ns(s.max) <= hi, "{name} {what}: {s:?}");
        }
        let (em, sm) = (
            exact_report.missed_fault_rate.unwrap_or(0.0),
            sampled.missed_fault_rate.unwrap_or(0.0),
        );
        assert!(
            (em - sm).abs() <= 5.0 * (em.max(1e-3) / N as f64).sqrt(),
            "{name}: missed rate {em} exact, {sm} sampled"
        );
        assert_eq!(
            exact_report.false_failovers, 0,
            "{name}: a noise-free scenario"
        );
        assert_eq!(sampled.false_failovers, 0, "{name}");
    }
}

#[test]
fn exact_extremes_lie_on_the_closed_forms() {
    let mut checked = 0;
    for (name, cfg) in noise_free() {
        let Some(f) = cfg.faults.first() else {
            continue;
        };
        let Rtt::Fixed(r) = cfg.network.rtt else {
            unreachable!()
        };
        let (d, t, n, r) = (
            cfg.check.delay.0,
            cfg.check.timeout.0,
            cfg.check.fall as u64,
            r.0,
        );
        let udp = cfg.check.kind == ProbeKind::UdpConnect;
        let answered = matches!(
            f.kind,
            FaultKind::Crash | FaultKind::MonitorPortDown | FaultKind::HttpStatus { .. }
        ) || (f.kind == FaultKind::TlsError && cfg.check.kind == ProbeKind::Https);
        let silent = f.kind == FaultKind::HostDown
            || (f.kind == FaultKind::Hang && cfg.check.kind.speaks_http())
            || matches!(f.kind, FaultKind::Slow { latency } if latency.0 + r > t);
        // A passing probe's verdict: one round trip, or the timeout for UDP_CONNECT.
        let ok_after = if udp { t } else { r };
        let fail_after = if silent { t } else { r };
        let (lo, hi) = match (cfg.model.probe_schedule, answered, silent) {
            // docs/model.md, "Detection latency: closed forms" (the upper bounds are reached
            // 1 ns short: the probe just before the fault is the last to pass).
            (ProbeSchedule::AfterCompletion, true, _) => (
                (n - 1) * (d + r) + r,
                (d + ok_after) + (n - 1) * (d + r) + r - 1,
            ),
            (ProbeSchedule::AfterCompletion, _, true) => (
                n * t + (n - 1) * d,
                (d + ok_after) + n * t + (n - 1) * d - 1,
            ),
            (ProbeSchedule::FixedRate, true, _) | (ProbeSchedule::FixedRate, _, true) => {
                ((n - 1) * d + fail_after, n * d + fail_after - 1)
            }
            _ => continue,
        };
        let x = exact::compute(&cfg).unwrap();
        let (min, max) = (x.detection.min().unwrap(), x.detection.max().unwrap());
        // Under after_completion a probe goes out only at phase + k x (delay + its verdict
        // time): the fault's start may fall in a gap of that grid, which moves both extremes
        // by at most the gap.
        let gap = match cfg.model.probe_schedule {
            ProbeSchedule::AfterCompletion => ok_after,
            ProbeSchedule::FixedRate => 0,
        };
        assert!(
            min >= lo && min <= lo + gap,
            "{name}: min {min} ns, closed form {lo} ns (+{gap})"
        );
        assert!(
            max <= hi && max + gap >= hi,
            "{name}: max {max} ns, closed form {hi} ns (-{gap})"
        );
        // The spread is at most one probe cycle: the uniform phase.
        assert!(max - min < d + ok_after, "{name}: {min}..{max}");
        checked += 1;
    }
    assert!(checked >= 8, "{checked} scenarios checked");
}

#[test]
fn four_nodes_pool_one_distribution_and_give_first_and_last_node() {
    let cfg = load("four-nodes.toml");
    assert_eq!(cfg.lb_nodes, 4);
    let four = exact::compute(&cfg).unwrap();
    let one = exact::compute(&one_node(&cfg)).unwrap();
    assert_eq!(four.detection.count(), 4 * one.detection.count());
    assert_eq!(
        four.report(&cfg, 0).failover_latency_s.p99,
        one.report(&cfg, 0).failover_latency_s.p99
    );
    let fl = four.first_last();
    assert_eq!(fl.len(), 1);
    let (first, last) = (&fl[0].first_node_s, &fl[0].last_node_s);
    let single = one.report(&cfg, 0).failover_latency_s;
    // The first of four is earlier than one node's median, the last later.
    assert!(first.p50.unwrap() < single.p50.unwrap());
    assert!(last.p50.unwrap() > single.p50.unwrap());
    // The median of the last of four uniform phases sits at 0.5^(1/4) = 84% of the spread.
    let (lo, hi) = (single.min.unwrap(), single.max.unwrap());
    let at = (last.p50.unwrap() - lo) / (hi - lo);
    assert!((at - 0.5f64.powf(0.25)).abs() < 0.01, "{at}");
    assert_eq!(fl[0].all_nodes_share, 1.0);
}

// ---- the command line ----

fn elbsim(args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("elbsim")
        .unwrap()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
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
fn exact_is_the_default_without_n_and_sampling_with_it() {
    let (code, out, _) = elbsim(&["trials", "scenarios/crash.toml", "--format", "json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["method"], "exact");
    assert_eq!(v["exact"]["phases_per_prober"], 5_000_000_000u64);
    assert_eq!(v["failover_latency_s"]["min"], 10.003);
    let (code, out, _) = elbsim(&["trials", "scenarios/crash.toml"]);
    assert_eq!(code, 0);
    assert!(out.contains("exact: every first-probe phase"), "{out}");
    assert!(out.contains("reproduce: elbsim trials scenarios/crash.toml --exact"));
    let (code, out, _) = elbsim(&[
        "trials",
        "scenarios/crash.toml",
        "-n",
        "50",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(v.get("method").is_none(), "sampled reports keep their keys");
    // A random scenario without -n samples, as before.
    let (code, out, _) = elbsim(&["trials", "scenarios/loss.toml", "--format", "json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["trials"], 1000);
    // --sample forces sampling; --exact with -n computes exactly.
    let (_, out, _) = elbsim(&["trials", "scenarios/crash.toml", "--sample"]);
    assert!(out.contains("1000 trials"), "{out}");
    let (_, out, _) = elbsim(&["trials", "scenarios/crash.toml", "--exact", "-n", "5"]);
    assert!(out.contains("exact:"), "{out}");
    // Assertions work on the exact report's keys.
    let (code, _, err) = elbsim(&[
        "trials",
        "scenarios/crash.toml",
        "--assert",
        "failover.max <= 15.004s",
        "--assert",
        "failover.p99 < 14.9s",
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("assert PASS: failover.max"), "{err}");
}

#[test]
fn exact_refuses_what_it_cannot_do_with_exit_2_and_the_reason() {
    let (code, _, err) = elbsim(&["trials", "scenarios/loss.toml", "--exact"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("faults[0] (loss, probability 0.6) loses each probe at random"),
        "{err}"
    );
    let (code, _, err) = elbsim(&["trials", "scenarios/noisy-network.toml", "--exact"]);
    assert_eq!(code, 2);
    assert!(err.contains("[network] rtt is log-normal"), "{err}");
    let (code, _, err) = elbsim(&["tune", "scenarios/traffic-crash.toml", "--exact"]);
    assert_eq!(code, 2);
    assert!(err.contains("[traffic]"), "{err}");
    let (code, _, err) = elbsim(&[
        "trials",
        "scenarios/crash.toml",
        "--exact",
        "--shard",
        "0/2",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("needs no --shard"), "{err}");
    let (code, _, err) = elbsim(&[
        "trials",
        "scenarios/crash.toml",
        "--exact",
        "--csv",
        "/dev/null",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--csv needs the trials themselves"), "{err}");
    let (code, _, err) = elbsim(&["trials", "scenarios/crash.toml", "--exact", "--sample"]);
    assert_eq!(code, 2, "{err}");
    // A sampled sweep keeps its cap; an exact one may take the API's whole range.
    let wide = [
        "tune",
        "scenarios/crash.toml",
        "--delay",
        "1..50",
        "--timeout",
        "1..50",
        "--max-retries-down",
        "1..10",
        "--max-retries",
        "1..3",
    ];
    let (code, _, err) = elbsim(&wide);
    assert_eq!(code, 2);
    assert!(err.contains("--exact allows 250000"), "{err}");
}

#[test]
fn tune_exact_recommends_what_sampled_trials_confirm() {
    let (code, out, err) = elbsim(&[
        "tune",
        "scenarios/crash.toml",
        "--exact",
        "--delay",
        "1..6",
        "--timeout",
        "1..3",
        "--max-retries-down",
        "1..4",
        "--max-retries",
        "1..2",
        "--timeout-below-delay",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["method"], "exact");
    assert_eq!(v["points"].as_array().unwrap().len(), 6 * 3 * 4 * 2);
    let best = &v["best"];
    let objective = best["objective"].as_f64().unwrap();
    let args: Vec<String> = [
        ("--delay", "delay"),
        ("--timeout", "timeout"),
        ("--max-retries-down", "max_retries_down"),
        ("--max-retries", "max_retries"),
    ]
    .iter()
    .flat_map(|(flag, key)| [flag.to_string(), best[*key].to_string()])
    .collect();
    let mut cmd = vec![
        "trials",
        "scenarios/crash.toml",
        "-n",
        "20000",
        "--sample",
        "--format",
        "json",
    ];
    cmd.extend(args.iter().map(String::as_str));
    let (code, out, err) = elbsim(&cmd);
    assert_eq!(code, 0, "{err}");
    let s: Value = serde_json::from_str(&out).unwrap();
    let p99 = &s["failover_latency_s"]["p99_ci"];
    let (lo, hi) = (p99[0].as_f64().unwrap(), p99[1].as_f64().unwrap());
    // The exact p99 lies in the sampled 95% interval, widened by one histogram bucket.
    assert!(
        objective >= lo * 0.999 && objective <= hi * 1.001,
        "exact p99 {objective} vs sampled interval [{lo}, {hi}] at {best}"
    );
    // The recommendation is the fastest point the constraints allow: delay 2, timeout 1, one
    // failure (max_retries_down 1) under a crash (each refused probe answers at once).
    assert_eq!(best["max_retries_down"], 1, "{best}");
    assert_eq!(best["timeout"], 1, "{best}");
    assert_eq!(best["delay"], 2, "{best}");
    // Checked by sampling: the text says how.
    let (_, text, _) = elbsim(&[
        "tune",
        "scenarios/crash.toml",
        "--exact",
        "--delay",
        "2..3",
        "--timeout",
        "1",
    ]);
    assert!(text.contains("x exact (every probe phase)"), "{text}");
    assert!(text.contains("-n 10000 --sample"), "{text}");
}

#[test]
fn an_exact_sweep_samples_the_points_exact_mode_cannot_compute() {
    use elbsim::experiment::tune::{
        tune, Constraints, Objective, PointSource, Ranges, TuneOptions,
    };
    use elbsim::sim::config::InitialState;
    static STOP: AtomicBool = AtomicBool::new(false);
    // A fresh pool: the slave comes ONLINE after max_retries probes; with delay 10 and 9 of
    // them its rise may still be under way when the crash starts at 60 s.
    let mut cfg = load("crash.toml");
    cfg.model.initial_state = InitialState::Initial;
    let ranges = Ranges {
        delay: vec![2, 10],
        max_retries: vec![1, 9],
        ..Ranges::default()
    };
    let r = tune(
        &cfg,
        &ranges,
        TuneOptions {
            trials: 20,
            seed: 1,
            jobs: 2,
            objective: Objective::P99Failover,
            constraints: Constraints::default(),
            probe_fault: FaultKind::HostDown,
            allow_warnings: true,
        },
        &|_| Vec::new(),
        &STOP,
        &|_| {},
        PointSource::Exact,
    );
    assert_eq!(r.method, Some("exact"));
    assert_eq!(r.points.len(), 4);
    assert_eq!(r.sampled_points, 1, "only delay 10 with max_retries 9");
}
