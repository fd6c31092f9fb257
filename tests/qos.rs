//! Failure-detector QoS (T_D, T_MR, T_M, P_A; docs/metrics.md): consistent with the false
//! failovers and the members' transitions of a run, known values on a hand-built log, the
//! closed forms against known numbers, and tune's QoS constraints and objectives.

use assert_cmd::Command;
use elbsim::model::health::Health;
use elbsim::model::probe::{ProbeKind, Reason};
use elbsim::model::router::Role;
use elbsim::report::qos::{self, ClosedForms, QosReport, QosTotals};
use elbsim::sim::config::{CheckConfig, Fault, FaultKind, Rtt, SimConfig};
use elbsim::sim::engine::{RunLog, Transition};
use elbsim::time::{SimDuration, SimTime};
use serde_json::Value;
use std::path::Path;

fn scenario(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn json(args: &[&str]) -> Value {
    let out = Command::cargo_bin("elbsim")
        .unwrap()
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn noisy_run_agrees_with_false_failovers_and_transitions() {
    let r = json(&["run", &scenario("noisy-network.toml")]);
    let q = &r["qos"];
    // No fault at all: every master mistake is a false failover, and back.
    assert_eq!(q["mistakes_master"], r["false_failovers"]);
    assert!(q["mistakes_master"].as_u64().unwrap() > 0);
    let duration = f(&r["duration_s"]);
    // Both members healthy the whole run on the one node: 2 pairs x 6 h.
    assert_eq!(q["pairs"], 2);
    assert!(close(f(&q["healthy_s"]), 2.0 * duration));

    // Every mistake is an OFFLINE transition of its member, and its end the next ONLINE one.
    let events = q["mistake_events"].as_array().unwrap();
    assert_eq!(events.len() as u64, q["mistakes"].as_u64().unwrap());
    let min = f(&q["duration"]["closed_form_min_s"]);
    let mut offline_total = 0.0;
    for e in events {
        let member = e["member"].as_str().unwrap();
        let m = r["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["role"] == member)
            .unwrap();
        let ts = m["transitions"].as_array().unwrap();
        let k = ts
            .iter()
            .position(|t| t["at_s"] == e["at_s"] && t["operating_status"] == "OFFLINE")
            .expect("a mistake is an OFFLINE transition");
        match ts.get(k + 1) {
            Some(next) => {
                assert_eq!(next["operating_status"], "ONLINE");
                assert_eq!(next["at_s"], e["back_s"]);
                let d = f(&e["duration_s"]);
                assert!(close(d, f(&e["back_s"]) - f(&e["at_s"])));
                assert!(
                    d + 1e-9 >= min,
                    "T_M {d} below the closed-form minimum {min}"
                );
                offline_total += d;
            }
            None => {
                // Still OFFLINE at the end: censored.
                assert!(e["back_s"].is_null() && e["duration_s"].is_null());
                offline_total += duration - f(&e["at_s"]);
            }
        }
    }
    let pa = f(&q["accuracy"]["value"]);
    assert!(close(1.0 - pa, offline_total / f(&q["healthy_s"])), "{pa}");
    let mistakes = q["mistakes"].as_u64().unwrap() as f64;
    assert!(close(
        f(&q["recurrence"]["mean_s"]),
        f(&q["healthy_s"]) / mistakes
    ));
    assert_eq!(q["duration"]["min_respected"], true);
    // Count-based intervals exist, and bracket the estimate.
    let [lo, hi] = [0, 1].map(|i| f(&q["recurrence"]["ci95_s"][i]));
    assert!(lo < f(&q["recurrence"]["mean_s"]) && f(&q["recurrence"]["mean_s"]) < hi);
    // The rate per pair is mistakes over healthy hours.
    assert!(close(
        f(&q["mistake_rate_per_hour"]),
        mistakes / (f(&q["healthy_s"]) / 3600.0)
    ));
}

#[test]
fn runs_without_mistakes_have_pa_one_and_a_censored_recurrence() {
    for s in ["seed-example.toml", "crash.toml", "four-nodes.toml"] {
        let r = json(&["run", &scenario(s)]);
        let q = &r["qos"];
        assert_eq!(q["mistakes"], 0, "{s}");
        assert_eq!(q["accuracy"]["value"], 1.0, "{s}");
        assert!(q["accuracy"]["ci95"].is_null());
        assert!(q["recurrence"]["mean_s"].is_null());
        assert_eq!(q["recurrence"]["at_least_s"], q["healthy_s"], "{s}");
        // With no mistake the upper side of T_MR is open, the lower one rule-of-three.
        assert!(q["recurrence"]["ci95_s"][1].is_null());
        assert!(close(
            f(&q["recurrence"]["ci95_s"][0]),
            f(&q["healthy_s"]) / 3600.0 / (-(0.025f64).ln()) * 3600.0
        ));
        assert_eq!(q["duration"]["count"], 0);
        assert!(q["duration"]["mean_s"].is_null());
        // T_D is the detection latency of the failovers.
        let det: Vec<f64> = r["failovers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| f(&x["detection_latency_s"]))
            .collect();
        assert_eq!(q["detection"]["count"].as_u64().unwrap(), det.len() as u64);
        if !det.is_empty() {
            let mean = det.iter().sum::<f64>() / det.len() as f64;
            assert!((f(&q["detection"]["mean_s"]) - mean).abs() < 1e-6, "{s}");
        }
    }
}

#[test]
fn trials_qos_matches_false_failovers_and_the_closed_forms() {
    let r = json(&[
        "trials",
        &scenario("noisy-network.toml"),
        "-n",
        "100",
        "-j",
        "2",
    ]);
    let q = &r["qos"];
    // No fault: the master's mistakes are the false failovers trials counts.
    assert_eq!(q["mistakes_master"], r["false_failovers"]);
    assert!(close(f(&q["healthy_s"]), 2.0 * 100.0 * 6.0 * 3600.0));
    for k in ["recurrence", "duration", "accuracy"] {
        assert_eq!(q[k]["consistent"], true, "{k}: {}", q[k]);
    }
    assert!(f(&q["duration"]["min_s"]) + 1e-9 >= f(&q["duration"]["closed_form_min_s"]));
    let [lo, hi] = [0, 1].map(|i| f(&q["accuracy"]["ci95"][i]));
    let pa = f(&q["accuracy"]["value"]);
    assert!(lo <= pa && pa <= hi);
    // P_A = 1 - E[T_M]/E[T_MR] for the closed forms.
    let cf_pa = f(&q["accuracy"]["closed_form"]);
    let cf = 1.0 - f(&q["duration"]["closed_form_mean_s"]) / f(&q["recurrence"]["closed_form_s"]);
    assert!(close(cf_pa, cf));
    // Whatever the thread count.
    let r1 = json(&[
        "trials",
        &scenario("noisy-network.toml"),
        "-n",
        "100",
        "-j",
        "1",
    ]);
    assert_eq!(r1["qos"], r["qos"]);
}

fn check(kind: ProbeKind) -> CheckConfig {
    CheckConfig {
        kind,
        delay: SimDuration::from_secs(5),
        timeout: SimDuration::from_secs(3),
        rise: 3,
        fall: 2,
    }
}

fn transition(
    at_s: u64,
    member: Role,
    to: Health,
    reason: Option<Reason>,
    sent_s: u64,
) -> Transition {
    Transition {
        at: SimTime(at_s * 1_000_000_000),
        lb_node: 0,
        member,
        to,
        reason,
        status: None,
        probe_sent_at: SimTime(sent_s * 1_000_000_000),
        stall: None,
    }
}

#[test]
fn a_hand_built_log_gives_known_values() {
    let mut cfg = SimConfig::with_check(check(ProbeKind::Tcp));
    let s = |x: u64| SimTime(x * 1_000_000_000);
    cfg.faults.push(Fault {
        member: Role::Master,
        kind: FaultKind::Crash,
        at: s(200),
        until: Some(s(300)),
    });
    let log = RunLog {
        transitions: vec![
            // A mistake on the master (a lost probe: nothing explains it), back after 10 s.
            transition(
                100,
                Role::Master,
                Health::Offline,
                Some(Reason::ConnectTimeout),
                97,
            ),
            transition(110, Role::Master, Health::Online, None, 110),
            // The crash, detected; back 5 s after it ends (catching up: not a mistake).
            transition(
                206,
                Role::Master,
                Health::Offline,
                Some(Reason::ConnectRefused),
                206,
            ),
            transition(305, Role::Master, Health::Online, None, 305),
            // A mistake on the slave that lasts to the end: censored.
            transition(
                500,
                Role::Slave,
                Health::Offline,
                Some(Reason::ConnectTimeout),
                497,
            ),
        ],
        end: s(600),
        ..RunLog::default()
    };
    let m = elbsim::report::run::measure(&cfg, &log);
    assert_eq!(m.unexplained, vec![0, 4]);
    assert_eq!(m.false_failovers.len(), 1);
    let q = qos::measure(&cfg, &log, &m.unexplained, &qos::member_windows(&cfg));
    // Master: 600 s less the crash (100 s) and the catching up (5 s); slave: all 600 s.
    assert_eq!(q.healthy_ns, (495 + 600) * 1_000_000_000);
    // OFFLINE in healthy time: the master's 10 s, the slave's last 100 s.
    assert_eq!(q.offline_ns, 110 * 1_000_000_000);
    assert_eq!(q.mistakes.len(), 2);
    assert_eq!(q.mistakes[0].back, Some(s(110)));
    assert_eq!(q.mistakes[1].back, None);
    assert_eq!(q.mistakes[1].offline, SimDuration::from_secs(100));

    let mut t = QosTotals::default();
    t.add(&q);
    let det = elbsim::experiment::stats::LatencyStats::default().summary();
    let r = QosReport::new(&cfg, &t, &det);
    assert_eq!((r.mistakes, r.mistakes_master, r.mistakes_slave), (2, 1, 1));
    assert_eq!(r.duration.count, 1);
    assert_eq!(r.duration.censored, 1);
    assert_eq!(r.duration.mean_s, Some(10.0));
    assert!(close(r.accuracy.value.unwrap(), 1.0 - 110.0 / 1095.0));
    assert!(close(r.recurrence.mean_s.unwrap(), 1095.0 / 2.0));
    assert!(close(r.healthy_s, 1095.0));

    // A fault beginning during a mistake censors it, and the OFFLINE time after the fault is
    // catching up, not a mistake.
    let log2 = RunLog {
        transitions: vec![
            transition(
                190,
                Role::Master,
                Health::Offline,
                Some(Reason::ConnectTimeout),
                187,
            ),
            transition(320, Role::Master, Health::Online, None, 320),
        ],
        end: s(600),
        ..RunLog::default()
    };
    let m2 = elbsim::report::run::measure(&cfg, &log2);
    let q2 = qos::measure(&cfg, &log2, &m2.unexplained, &qos::member_windows(&cfg));
    assert_eq!(q2.mistakes.len(), 1);
    assert_eq!(q2.mistakes[0].back, None);
    assert_eq!(q2.mistakes[0].offline, SimDuration::from_secs(10));
    // Master: 600 - 100 (fault) - 20 (until ONLINE at 320); slave: 600.
    assert_eq!(q2.healthy_ns, (480 + 600) * 1_000_000_000);
    assert_eq!(q2.offline_ns, 10 * 1_000_000_000);
}

#[test]
fn closed_forms_match_known_numbers() {
    // q = 1/2 (half the probes lost), F = 2, R = 3: E_F = 6 probes, E_R = 14 probes.
    let mut cfg = SimConfig::with_check(check(ProbeKind::Tcp));
    cfg.network.loss = 0.5;
    cfg.network.rtt = Rtt::Fixed(SimDuration::from_millis(1));
    let c = ClosedForms::of(&cfg);
    // A cycle: delay + p * rtt + q * timeout = 5 + 0.0005 + 1.5.
    let cycle = 5.0 + 0.5 * 0.001 + 0.5 * 3.0;
    assert!(close(c.t_mr_s.unwrap(), cycle * 20.0));
    assert!(close(c.t_m_mean_s, cycle * 14.0));
    assert!(close(c.p_a, 6.0 / 20.0));
    assert!(close(c.t_m_min_s, 3.0 * 5.001));
    // No noise: no mistake ever, P_A 1, T_M the R successes in a row.
    cfg.network.loss = 0.0;
    let c = ClosedForms::of(&cfg);
    assert_eq!(c.t_mr_s, None);
    assert_eq!(c.p_a, 1.0);
    assert!(close(c.t_m_mean_s, 3.0 * 5.001));
    // UDP_CONNECT: a success is silence until the timeout.
    let udp = SimConfig::with_check(check(ProbeKind::UdpConnect));
    assert!(close(ClosedForms::of(&udp).t_m_min_s, 3.0 * 8.0));
}

#[test]
fn tune_constrains_and_optimises_qos() {
    let noisy = scenario("noisy-network.toml");
    let base = [
        "tune",
        noisy.as_str(),
        "-n",
        "4",
        "--delay",
        "2,5",
        "--timeout",
        "1",
        "--max-retries-down",
        "2,3",
        "--max-false-per-day",
        "1000",
    ];
    let mut args = base.to_vec();
    args.extend(["--objective", "pa", "--min-pa", "0.999"]);
    let r = json(&args);
    let points = r["points"].as_array().unwrap();
    assert_eq!(points.len(), 4);
    assert_eq!(r["constraints"]["min_pa"], 0.999);
    for p in points {
        let pa = f(&p["qos"]["accuracy"]["closed_form"]);
        assert!(close(f(&p["objective"]), 1.0 - pa));
        let violates = p["violations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v.as_str().unwrap().starts_with("P_A "));
        assert_eq!(violates, pa < 0.999, "{p}");
    }
    // Ranked by 1 - P_A among the feasible points first.
    let feasible: Vec<f64> = points
        .iter()
        .filter(|p| p["feasible"] == true)
        .map(|p| f(&p["objective"]))
        .collect();
    assert!(!feasible.is_empty());
    assert!(feasible.windows(2).all(|w| w[0] <= w[1]));
    assert!(r["reproduce"].as_str().unwrap().contains("--min-pa 0.999"));

    let mut args = base.to_vec();
    args.extend([
        "--objective",
        "mistake-duration",
        "--max-mistake-duration",
        "10s",
        "--min-mistake-recurrence",
        "1h",
    ]);
    let r = json(&args);
    for p in r["points"].as_array().unwrap() {
        let q = &p["qos"];
        let v: Vec<&str> = p["violations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let tm = f(&q["duration"]["closed_form_mean_s"]);
        assert_eq!(v.iter().any(|x| x.starts_with("T_M ")), tm > 10.0, "{p}");
        let tmr = f(&q["recurrence"]["closed_form_s"]);
        assert_eq!(
            v.iter().any(|x| x.starts_with("T_MR ")),
            tmr < 3600.0,
            "{p}"
        );
        assert!(close(f(&p["objective"]), tm));
    }
    let text = String::from_utf8(
        Command::cargo_bin("elbsim")
            .unwrap()
            .args(&args)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(text.contains("T_M <= 10.000s"), "{text}");
    assert!(text.contains("T_MR >= 1.000h"), "{text}");

    // Bad values are usage errors.
    for bad in [
        ["--min-pa", "1.5"],
        ["--max-mistake-duration", "0s"],
        ["--min-mistake-recurrence", "10"],
    ] {
        let mut args = base.to_vec();
        args.extend(bad);
        let out = Command::cargo_bin("elbsim")
            .unwrap()
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
}
