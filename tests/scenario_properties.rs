//! Properties of whole scenarios, generated as TOML text across every key: every fault kind on
//! either member, every `[model]` choice, both RTT forms, traffic with schedules, both lifetime
//! forms, UDP idle timeouts, QUIC with its CID section, drain, persistence, `lb_nodes` up to
//! the cap, per-path faults, bursty loss, ICMP rate limits, LB-node stalls, a separate monitor
//! process and the failback hold-down — and run through the same loader, engine and report as the binary. For each:
//! no panic, time never goes backwards, no detection before its fault, no negative or NaN
//! figure anywhere in the JSON report, every connection and failure accounted for, and trials
//! JSON identical for one job and three.

use elbsim::experiment::trials::{run_trials, TrialsOptions};
use elbsim::report::run::{analyse, RunFacts};
use elbsim::sim::engine::{run, Counter, RunOptions};
use elbsim::time::SimTime;
use proptest::prelude::*;
use serde_json::Value;
use std::path::Path;
use std::sync::atomic::AtomicBool;

/// One `[[faults]]` entry; a path kind may carry `LB_NODE`, which [`scenario`] replaces by an
/// `lb_node` line for its node count.
fn fault() -> impl Strategy<Value = String> {
    let kind = prop_oneof![
        Just("kind = \"crash\"".to_string()),
        Just("kind = \"monitor_port_down\"".to_string()),
        Just("kind = \"host_down\"".to_string()),
        Just("kind = \"hang\"".to_string()),
        prop_oneof![Just(302), Just(404), Just(503)]
            .prop_map(|s| format!("kind = \"http_status\"\nstatus = {s}")),
        (1u64..5000).prop_map(|ms| format!("kind = \"slow\"\nlatency = \"{ms}ms\"")),
        (0.05f64..1.0).prop_map(|p| format!("kind = \"loss\"\nprobability = {p:.3}")),
        Just("kind = \"tls_error\"".to_string()),
        (1u64..60, 0.0f64..1.0)
            .prop_map(|(s, d)| format!("kind = \"flap\"\nperiod = \"{s}s\"\ndown = {d:.2}")),
    ];
    (
        prop_oneof![Just("master"), Just("slave")],
        kind,
        0u64..50,
        proptest::option::of(1u64..40),
        any::<bool>(),
    )
        .prop_map(|(member, kind, at, len, path)| {
            let until = len.map_or(String::new(), |l| format!("until = \"{}s\"\n", at + l));
            let path_kind = ["host_down", "loss", "slow", "monitor_port_down"]
                .iter()
                .any(|k| kind.starts_with(&format!("kind = \"{k}\"")));
            let path = if path && path_kind { "LB_NODE\n" } else { "" };
            format!("[[faults]]\nmember = \"{member}\"\n{kind}\nat = \"{at}s\"\n{until}{path}")
        })
}

/// The faults real networks have, beyond `[[faults]]`: (burst table, ICMP limit, stalls as
/// (at, length) on node 0, separate monitor process, hold-down seconds).
#[allow(clippy::type_complexity)]
fn network_faults() -> impl Strategy<
    Value = (
        Option<(u64, u64, f64)>,
        Option<bool>,
        Vec<(u64, u64)>,
        bool,
        Option<u64>,
    ),
> {
    (
        proptest::option::of((1u64..120, 1u64..30, 0.1f64..1.0)),
        proptest::option::of(any::<bool>()),
        proptest::collection::vec((0u64..150, 1u64..20), 0..3),
        any::<bool>(),
        proptest::option::of(1u64..60),
    )
}

/// A whole scenario: (TOML text, whether it has traffic).
fn scenario() -> impl Strategy<Value = (String, bool)> {
    (
        prop_oneof![Just("TCP"), Just("UDP"), Just("QUIC"), Just("TLS")],
        prop_oneof![Just(1u32), Just(2), Just(4), Just(1024)],
        (
            prop_oneof![Just("after_completion"), Just("fixed_rate")],
            prop_oneof![Just("online"), Just("initial")],
            prop_oneof![Just("drop"), Just("master")],
            prop_oneof![Just("preemptive"), Just("sticky")],
            prop_oneof![Just("keep"), Just("reset")],
            0u64..500,
        ),
        (any::<bool>(), 0.0f64..0.2),
        proptest::collection::vec(fault(), 0..4),
        (any::<bool>(), 1u32..40, any::<bool>(), any::<bool>(), any::<bool>()),
        (1u32..4, 1u32..3, 1u32..4),
        (1u8..4, 1u8..4),
        network_faults(),
    )
        .prop_map(
            |(protocol, nodes, model, net, faults, traffic, check, quic, extra)| {
                let (burst, icmp, stalls, separate, hold) = extra;
                let (sched, initial, all_down, failback, sessions, rud) = model;
                let (lognormal, loss) = net;
                let (with_traffic, rate, fixed_life, drain, persist) = traffic;
                let (delay, timeout, down) = check;
                let (offset, len) = quic;
                // Keep a run small: a short one on 1,024 nodes.
                let duration = if nodes == 1024 { 60 } else { 180 };
                let rtt = if lognormal {
                    "{ median = \"2ms\", p99 = \"300ms\" }".to_string()
                } else {
                    "\"1ms\"".to_string()
                };
                let (failback, hold) = match hold {
                    Some(h) => ("hold_down", format!("failback_hold_down = \"{h}s\"\n")),
                    None => (failback, String::new()),
                };
                let monitor = if separate { "separate" } else { "same" };
                let mut toml = format!(
                    "duration = \"{duration}s\"\nlb_nodes = {nodes}\n\
                     [model]\nprobe_schedule = \"{sched}\"\ninitial_state = \"{initial}\"\n\
                     all_down = \"{all_down}\"\nfailback = \"{failback}\"\n{hold}\
                     failback_sessions = \"{sessions}\"\nroute_update_delay = \"{rud}ms\"\n\
                     monitor_process = \"{monitor}\"\n\
                     [network]\nrtt = {rtt}\nloss = {loss:.3}\n"
                );
                if let Some((good, bad, loss_bad)) = burst {
                    toml.push_str(&format!(
                        "[network.burst]\nmean_good = \"{good}s\"\nmean_bad = \"{bad}s\"\nloss_bad = {loss_bad:.2}\n"
                    ));
                }
                let check_type = match protocol {
                    "UDP" | "QUIC" => "UDP_CONNECT",
                    _ => "TCP",
                };
                if let (Some(shared), "UDP_CONNECT") = (icmp, check_type) {
                    let source = if shared { "shared" } else { "per_node" };
                    toml.push_str(&format!(
                        "[network.icmp_ratelimit]\nprobe_source = \"{source}\"\n"
                    ));
                }
                for (k, f) in faults.iter().enumerate() {
                    let nodes_line = format!("lb_node = [{}]\n", k as u32 % nodes);
                    toml.push_str(&f.replace("LB_NODE\n", &nodes_line));
                }
                for (at, len) in &stalls {
                    let at = at % duration;
                    toml.push_str(&format!(
                        "[[stalls]]\nlb_node = 0\nat = \"{at}s\"\nuntil = \"{}s\"\n",
                        at + len
                    ));
                }
                let traffic = with_traffic && nodes <= 4;
                if traffic {
                    let life = if fixed_life {
                        "{ fixed = \"20s\" }"
                    } else {
                        "\"20s\""
                    };
                    toml.push_str(&format!(
                        "[traffic]\nschedule = [ {{ at = \"0s\", rate = {rate}.0 }}, {{ at = \"90s\", rate = {}.0 }} ]\n\
                         lifetime = {life}\nclients = 50\nconnect_timeout = \"2s\"\nrequests_per_s = 2.0\n",
                        rate / 2 + 1
                    ));
                    if protocol == "UDP" {
                        toml.push_str("udp_idle_timeout = \"30s\"\n");
                    }
                    if protocol == "QUIC" {
                        toml.push_str(
                            "[traffic.quic]\ncid_rotation = \"5s\"\nmigration = \"15s\"\npaths = 2\n",
                        );
                    }
                }
                let algorithm = if protocol == "QUIC" {
                    "QUIC_CID"
                } else {
                    "ROUND_ROBIN"
                };
                let mut pool = format!(
                    "[pool]\nlb_algorithm = \"{algorithm}\"\nprotocol = \"{protocol}\"\ntype = \"ip\"\n"
                );
                if protocol == "QUIC" {
                    pool.push_str(&format!(
                        "quic_cid_hash_strategy = {{ offset = {offset}, len = {len} }}\n"
                    ));
                }
                if persist || protocol == "QUIC" {
                    pool.push_str(
                        "session_persistence = { type = \"SOURCE_IP\", persistence_timeout = 1 }\n",
                    );
                }
                if drain && protocol != "TLS" {
                    pool.push_str("connection_drain = { enable = true, timeout = 10 }\n");
                }
                let timeout = timeout.min(delay);
                pool.push_str(&format!(
                    "[pool.healthmonitor]\ntype = \"{check_type}\"\ndelay = {}\ntimeout = {timeout}\nmonitor_port = 8080\n\
                     max_retries = {down}\nmax_retries_down = {down}\n\
                     [[pool.members]]\nrole = \"master\"\naddress = \"192.168.0.10\"\nprotocol_port = 80\n\
                     [[pool.members]]\nrole = \"slave\"\naddress = \"192.168.0.11\"\nprotocol_port = 80\n",
                    delay + 1
                ));
                (format!("{toml}\n{pool}"), traffic)
            },
        )
}

/// Every number in the report is finite and not negative.
fn check_numbers(v: &Value, path: &str) -> Result<(), String> {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(x) if x.is_finite() && x >= 0.0 => Ok(()),
            _ => Err(format!("{path} = {n}")),
        },
        Value::Array(a) => a
            .iter()
            .enumerate()
            .try_for_each(|(i, x)| check_numbers(x, &format!("{path}[{i}]"))),
        Value::Object(o) => o
            .iter()
            .try_for_each(|(k, x)| check_numbers(x, &format!("{path}.{k}"))),
        _ => Ok(()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn generated_scenarios_load_run_and_report_soundly((toml, traffic) in scenario(), seed in 0u64..1000) {
        let s = elbsim::scenario::load_str(Path::new("generated.toml"), &toml, false)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{toml}")))?;
        let cfg = &s.sim;
        let log = run(cfg, RunOptions { seed, ..Default::default() });
        prop_assert!(log.stopped.is_none(), "{:?}", log.stopped);
        prop_assert!(log.transitions.windows(2).all(|w| w[0].at <= w[1].at));
        prop_assert!(log.routes.windows(2).all(|w| w[0].at <= w[1].at));
        let end = SimTime::ZERO + cfg.duration;
        prop_assert!(log.transitions.iter().all(|t| t.probe_sent_at <= t.at && t.at <= end));

        let facts = RunFacts { name: &s.name, seed, cfg, expected_codes: None };
        let report = analyse(&facts, &log, false);
        for f in &report.failovers {
            prop_assert!(f.detected_s >= f.fault_start_s, "detection before the fault: {f:?}");
        }
        for o in &report.outages {
            prop_assert!(o.detected_s >= o.fault_start_s, "{o:?}");
        }
        let json = serde_json::to_value(&report).expect("the report serializes");
        check_numbers(&json, "$").map_err(|e| TestCaseError::fail(format!("{e}\n{toml}")))?;

        prop_assert_eq!(log.traffic.is_some(), traffic);
        if let Some(t) = &log.traffic {
            let k = |c| t.counters.get(c);
            use Counter::*;
            prop_assert_eq!(
                k(Established) + k(Refused) + k(TimedOut) + k(NoBackend) + k(TlsFailed),
                k(Connections)
            );
            prop_assert_eq!(
                k(Completed) + k(Broken) + k(Drained) + k(ResetOnFailback) + k(QuicCidBroken)
                    + k(OpenAtEnd),
                k(Established)
            );
            let charged: u64 = t.unavailability.iter().filter_map(|u| u.all.map(|s| s.failures())).sum::<u64>()
                + t.unattributed.map_or(0, |s| s.failures());
            prop_assert_eq!(
                charged,
                k(Refused) + k(TimedOut) + k(NoBackend) + k(TlsFailed) + k(Broken)
                    + k(ResetOnFailback) + k(QuicCidBroken) + k(RequestsFailed)
            );
        }

        // Trials: the same JSON for one job and three.
        let stop = AtomicBool::new(false);
        let opts = |jobs| TrialsOptions { n: 6, seed, jobs };
        let one = run_trials(cfg, opts(1), &stop, &|_| {});
        let three = run_trials(cfg, opts(3), &stop, &|_| {});
        prop_assert_eq!(
            serde_json::to_string(&one).unwrap(),
            serde_json::to_string(&three).unwrap()
        );
        check_numbers(&serde_json::to_value(&one).unwrap(), "trials")
            .map_err(|e| TestCaseError::fail(format!("{e}\n{toml}")))?;
    }
}
