//! Data-plane profiles against their closed forms (docs/profiles.md), over many seeds.
//!
//! Each case runs a batch of trials of one pool under one profile and one fault, and checks
//! that every detection (or failback) latency lies in the window derived by hand from the
//! profile's rules, and that the batch spreads over the whole window (the fault's phase in the
//! check cycle is uniform): the minimum and maximum within 2% of the window's width of its
//! bounds, the median within 4% of its middle. The windows are written out here, independently
//! of the model's own `Rules::detection_window`, which is checked against them too.
//!
//! Pool: D = delay 5 s, T = timeout 3 s, F = max_retries_down 3, R = max_retries 2, r = 1 ms.

use elbsim::experiment::stats::Summary;
use elbsim::experiment::trials::{run_trials_observed, TrialsOptions, TrialsReport};
use elbsim::model::profile::ProfileName;
use elbsim::scenario::{self, CheckOverrides};
use std::path::Path;
use std::sync::atomic::AtomicBool;

const D: f64 = 5.0;
const T: f64 = 3.0;
const F: f64 = 3.0;
const R: f64 = 2.0;
const RTT: f64 = 0.001;
/// Slack for rounding to whole nanoseconds and HdrHistogram's 3 significant digits.
const EPS: f64 = 0.02;
const TRIALS: u64 = 2000;

/// A scenario with one master fault from 60 s to 240 s, under `profile` with `model` lines.
fn scenario_text(check: &str, fault: &str, model: &str) -> String {
    let path = if check == "HTTP" {
        "url_path = \"/\"\n"
    } else {
        ""
    };
    let protocol = if check == "UDP_CONNECT" { "UDP" } else { "TCP" };
    format!(
        r#"name = "profile window"
duration = "10m"
seed = 3
{model}
[[faults]]
member = "master"
kind = "{fault}"
at = "60s"
until = "240s"

[pool]
lb_algorithm = "ROUND_ROBIN"
protocol = "{protocol}"
type = "ip"

[pool.healthmonitor]
type = "{check}"
delay = 5
timeout = 3
max_retries = 2
max_retries_down = 3
{path}
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

/// The scenario under `profile`, chosen as `--profile` chooses it.
fn load(text: &str, profile: ProfileName) -> scenario::Scenario {
    scenario::load_str_with(
        Path::new("tests/profiles.toml"),
        text,
        false,
        CheckOverrides {
            profile: Some(profile),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn trials(text: &str, profile: ProfileName, n: u64) -> TrialsReport {
    let s = load(text, profile);
    run_trials_observed(
        &s.sim,
        TrialsOptions {
            n,
            seed: 42,
            jobs: 2,
        },
        &AtomicBool::new(false),
        &|_| {},
        None,
    )
}

/// Every sample in `[lo, hi]`, and the batch spread over it.
fn spreads_over(what: &str, s: &Summary, (lo, hi): (f64, f64)) {
    let (min, max, p50) = (s.min.unwrap(), s.max.unwrap(), s.p50.unwrap());
    let w = hi - lo;
    assert!(
        min >= lo - EPS && max <= hi + EPS,
        "{what}: [{min}, {max}] outside [{lo}, {hi}]"
    );
    assert!(
        min - lo < 0.02 * w && hi - max < 0.02 * w,
        "{what}: [{min}, {max}] does not cover [{lo}, {hi}]"
    );
    assert!(
        (p50 - (lo + hi) / 2.0).abs() < 0.04 * w,
        "{what}: median {p50} far from the middle of [{lo}, {hi}]"
    );
}

fn detection(check: &str, fault: &str, model: &str, profile: ProfileName) -> TrialsReport {
    let r = trials(&scenario_text(check, fault, model), profile, TRIALS);
    assert_eq!(
        r.detection_latency_s.count, TRIALS,
        "one detection per trial"
    );
    assert_eq!(r.false_failovers, 0);
    assert_eq!(r.missed_faults, 0);
    r
}

const HAPROXY: &str = "[model.haproxy]\ntimeout_connect = \"4s\"\nfastinter = \"2s\"\n";
/// C = min(inter, timeout connect); fastinter.
const C: f64 = 4.0;
const FAST: f64 = 2.0;
const KEEPALIVED: &str = "[model.keepalived]\ndelay_before_retry = \"1s\"\n";
const DBR: f64 = 1.0;

/// The window when each failing probe ends `v` after its send and the gap between failing
/// probes is `gap`, the healthy cycle `healthy + ok`: `[F*v + (F-1)*gap, + healthy + ok]`.
fn window(v: f64, gap: f64, healthy: f64, ok: f64) -> (f64, f64) {
    let lo = F * v + (F - 1.0) * gap;
    (lo, lo + healthy + ok)
}

#[test]
fn huawei_windows_are_the_published_ones() {
    let p = ProfileName::Huawei;
    let r = detection("TCP", "crash", "", p);
    // [(F-1)(D+r)+r, F(D+r)+r]
    let w = ((F - 1.0) * (D + RTT) + RTT, F * (D + RTT) + RTT);
    spreads_over("huawei crash", &r.detection_latency_s, w);
    assert_eq!(w, window(RTT, D, D, RTT));
    // [R-1)(D+r)+r, R(D+r)+r] after the crash ends.
    spreads_over(
        "huawei crash failback",
        &r.failback_latency_s,
        ((R - 1.0) * (D + RTT) + RTT, R * (D + RTT) + RTT),
    );
    let r = detection("TCP", "host_down", "", p);
    spreads_over(
        "huawei host_down",
        &r.detection_latency_s,
        (F * T + (F - 1.0) * D, F * T + F * D + RTT),
    );
    let r = detection("HTTP", "hang", "", p);
    spreads_over(
        "huawei hang",
        &r.detection_latency_s,
        (F * T + (F - 1.0) * D, F * T + F * D + RTT),
    );
}

#[test]
fn haproxy_silent_host_window_is_bounded_by_the_connect_timeout() {
    let p = ProfileName::Haproxy;
    // Each silent check fails at C = min(inter, timeout connect) (tcpcheck_eval_connect), the
    // failing ones fastinter apart (srv_getinter), the healthy ones inter apart:
    // [F*C + (F-1)*fastinter, F*C + (F-1)*fastinter + inter + r].
    let r = detection("TCP", "host_down", HAPROXY, p);
    spreads_over(
        "haproxy host_down",
        &r.detection_latency_s,
        window(C, FAST, D, RTT),
    );
    // With fastinter = inter it is the issue's [F*C + (F-1)*inter, F*(C + inter)] (+ r).
    let r = detection(
        "TCP",
        "host_down",
        "[model.haproxy]\ntimeout_connect = \"4s\"\n",
        p,
    );
    spreads_over(
        "haproxy host_down, fastinter = inter",
        &r.detection_latency_s,
        (F * C + (F - 1.0) * D, F * (C + D) + RTT),
    );
    // Without `timeout connect`, inter bounds the connect: C = D.
    let r = detection(
        "TCP",
        "host_down",
        "[model.haproxy]\ntimeout_connect = \"none\"\n",
        p,
    );
    spreads_over(
        "haproxy host_down, no timeout connect",
        &r.detection_latency_s,
        (F * D + (F - 1.0) * D, F * (D + D) + RTT),
    );
}

#[test]
fn haproxy_refusals_and_hangs() {
    let p = ProfileName::Haproxy;
    let r = detection("TCP", "crash", HAPROXY, p);
    spreads_over(
        "haproxy crash",
        &r.detection_latency_s,
        window(RTT, FAST, D, RTT),
    );
    // Back from DOWN: the first success (downinter = inter apart while DOWN), then R - 1 more
    // fastinter apart: [(R-1)(fastinter+r)+r, (R-1)(fastinter+r)+r + inter + r].
    let lo = (R - 1.0) * (FAST + RTT) + RTT;
    spreads_over(
        "haproxy crash failback",
        &r.failback_latency_s,
        (lo, lo + D + RTT),
    );
    // A hung application fails at `timeout check` after the connection opened: r + T.
    let r = detection("HTTP", "hang", HAPROXY, p);
    spreads_over(
        "haproxy hang",
        &r.detection_latency_s,
        window(RTT + T, FAST, D, RTT),
    );
}

#[test]
fn haproxy_spread_checks_widens_the_window_by_the_jitter() {
    let model =
        "[model.haproxy]\ntimeout_connect = \"4s\"\nfastinter = \"2s\"\nspread_checks = 20\n";
    let r = detection("TCP", "host_down", model, ProfileName::Haproxy);
    let (lo, hi) = window(C, FAST, D, RTT);
    // Each of the F-1 gaps moves by up to 20% of fastinter, and a healthy cycle (in which the
    // fault's phase is uniform) lasts up to 20% more than inter.
    let j = (F - 1.0) * 0.2 * FAST;
    let s = &r.detection_latency_s;
    let (min, max) = (s.min.unwrap(), s.max.unwrap());
    assert!(
        min >= lo - j - EPS && max <= hi + j + 0.2 * D + EPS,
        "[{min}, {max}]"
    );
    assert!(
        min < lo - 0.3 * j && max > hi + 0.3 * j,
        "jitter should spread past [{lo}, {hi}]: [{min}, {max}]"
    );
}

#[test]
fn haproxy_fresh_start_is_one_failure_from_down() {
    // initial_state = "initial": the process starts at t = 0 with the server UP at health =
    // rise; the master's check is first (position 0) at t = 0; a host silent from t = 0 is
    // DOWN after one check, at C exactly, in every trial.
    let text = scenario_text("TCP", "host_down", HAPROXY)
        .replace("at = \"60s\"", "at = \"0s\"")
        .replace(
            "[model.haproxy]",
            "[model]\ninitial_state = \"initial\"\n\n[model.haproxy]",
        );
    let r = trials(&text, ProfileName::Haproxy, 50);
    let s = &r.detection_latency_s;
    assert_eq!(s.count, 50);
    assert!((s.min.unwrap() - C).abs() < 1e-6 && (s.max.unwrap() - C).abs() < 1e-6);
}

#[test]
fn keepalived_retries_after_delay_before_retry() {
    let p = ProfileName::Keepalived;
    let r = detection("TCP", "crash", KEEPALIVED, p);
    spreads_over(
        "keepalived crash",
        &r.detection_latency_s,
        window(RTT, DBR, D, RTT),
    );
    // One success brings it back; the longest gap between checks while DOWN is delay_loop + r
    // (tcp_epilog), so the failback lies in [r, delay_loop + 2r].
    let s = &r.failback_latency_s;
    assert!(
        s.min.unwrap() >= RTT - EPS && s.max.unwrap() <= D + 2.0 * RTT + EPS,
        "{s:?}"
    );
    let r = detection("TCP", "host_down", KEEPALIVED, p);
    spreads_over(
        "keepalived host_down",
        &r.detection_latency_s,
        window(T, DBR, D, RTT),
    );
    // HTTP_GET re-arms connect_timeout for the read: a hang fails at r + connect_timeout.
    let r = detection("HTTP", "hang", KEEPALIVED, p);
    spreads_over(
        "keepalived hang",
        &r.detection_latency_s,
        window(RTT + T, DBR, D, RTT),
    );
}

#[test]
fn keepalived_udp_check_does_not_see_a_silent_host() {
    // UDP_CHECK has no echo step and counts silence as success (layer4.c udp_socket_state).
    let r = trials(
        &scenario_text("UDP_CONNECT", "host_down", KEEPALIVED),
        ProfileName::Keepalived,
        200,
    );
    assert_eq!(r.detection_latency_s.count, 0);
    assert_eq!(r.missed_faults, 200);
    // Huawei's echo step sees it.
    let r = trials(
        &scenario_text("UDP_CONNECT", "host_down", ""),
        ProfileName::Huawei,
        200,
    );
    assert_eq!(r.detection_latency_s.count, 200);
}

#[test]
fn the_models_closed_form_agrees_with_the_hand_derived_windows() {
    use elbsim::time::SimDuration;
    let ms = |x: f64| SimDuration::from_secs_f64(x);
    for (profile, model, v_silent, gap) in [
        (ProfileName::Huawei, "", T, D),
        (ProfileName::Haproxy, HAPROXY, C, FAST),
        (ProfileName::Keepalived, KEEPALIVED, T, DBR),
    ] {
        let text = scenario_text("TCP", "host_down", model);
        let s = load(&text, profile);
        let rules = s.sim.rules();
        let (lo, hi) = rules.detection_window(ms(v_silent), ms(RTT));
        let (wlo, whi) = window(v_silent, gap, D, RTT);
        assert!(
            (lo - wlo).abs() < 1e-9 && (hi - whi).abs() < 1e-9,
            "{profile}"
        );
    }
}

#[test]
fn profiles_are_deterministic_across_job_counts() {
    let text = scenario_text("TCP", "host_down", "[model.haproxy]\nspread_checks = 30\n");
    let s = load(&text, ProfileName::Haproxy);
    let run = |jobs| {
        run_trials_observed(
            &s.sim,
            TrialsOptions {
                n: 300,
                seed: 9,
                jobs,
            },
            &AtomicBool::new(false),
            &|_| {},
            None,
        )
    };
    assert_eq!(run(1), run(3));
}

// haproxy `observe layer4` (docs/profiles.md, "haproxy"): client connections through an LB node
// whose checks run every 20 s, 20 new connections a second, a master fault from 60 s.

/// The pool of `scenarios/profile-haproxy-observe.toml` with `fault` and `fall`, and `model`
/// lines under `[model.haproxy]`.
fn observe_text(fault: &str, fall: u32, model: &str) -> String {
    format!(
        r#"name = "observe"
duration = "5m"
seed = 3

[model]
profile = "haproxy"

[model.haproxy]
{model}

[[faults]]
member = "master"
kind = "{fault}"
at = "60s"
until = "180s"

[traffic]
rate = 20.0
lifetime = "30s"
clients = 1000

[pool]
lb_algorithm = "ROUND_ROBIN"
protocol = "TCP"
type = "ip"

[pool.healthmonitor]
type = "TCP"
delay = 20
timeout = 3
max_retries = 3
max_retries_down = {fall}

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

/// The master's first OFFLINE after the fault: (latency from 60 s, time from its deciding
/// probe's send to it, its reason), and the run's refused connections.
fn first_offline(text: &str, seed: u64) -> (f64, f64, String, u64) {
    use elbsim::sim::engine::{run, RunOptions};
    let s = load(text, ProfileName::Haproxy);
    let log = run(
        &s.sim,
        RunOptions {
            seed,
            ..Default::default()
        },
    );
    let x = log
        .transitions
        .iter()
        .find(|x| {
            x.member == elbsim::model::router::Role::Master
                && x.to == elbsim::model::health::Health::Offline
        })
        .expect("the master goes OFFLINE");
    let refused = log
        .traffic
        .as_ref()
        .map(|t| t.counters.get(elbsim::sim::engine::Counter::Refused))
        .unwrap();
    (
        x.at.as_secs_f64() - 60.0,
        x.at.since(x.probe_sent_at).as_secs_f64(),
        x.reason.map_or("", |r| r.as_str()).to_string(),
        refused,
    )
}

#[test]
fn haproxy_observe_mark_down_takes_the_master_out_at_the_error_limit() {
    let observe = "observe = \"layer4\"\nerror_limit = 10\non_error = \"mark-down\"";
    for seed in 0..20 {
        let (lat, _, reason, refused) = first_offline(&observe_text("crash", 3, observe), seed);
        // The 10th refusal in a row: a Gamma(10, 20/s) wait after the crash.
        assert!(lat < 2.0, "seed {seed}: {lat}");
        assert_eq!(reason, "CONNECT_REFUSED");
        assert_eq!(refused, 10, "seed {seed}: the 11th goes to the slave");
        // Without observe: the active window [(F-1)(inter+r)+r, F(inter+r)+r].
        let (lat, _, _, refused) = first_offline(&observe_text("crash", 3, ""), seed);
        assert!((40.003 - 1e-6..=60.004 + 1e-6).contains(&lat), "{lat}");
        assert!(refused > 500, "{refused}");
    }
}

#[test]
fn haproxy_observe_fastinter_moves_the_next_check_forward() {
    // on-error fastinter changes no health, but with fastinter set the next check goes out
    // fastinter after the 10th refusal instead of up to inter (20 s) later; fall 3 checks at
    // fastinter follow.
    let fast = "fastinter = \"1s\"";
    let observe = format!("{fast}\nobserve = \"layer4\"\non_error = \"fastinter\"");
    let mut slower = 0.0;
    for seed in 0..20 {
        let (with, _, reason, _) = first_offline(&observe_text("crash", 3, &observe), seed);
        let (without, _, _, _) = first_offline(&observe_text("crash", 3, fast), seed);
        assert_eq!(reason, "CONNECT_REFUSED");
        // The 10th refusal (< 2 s), then 1 s to the moved check, then two more at fastinter.
        assert!(
            with < 2.0 + 1.0 + 2.0 * 1.001 + 0.001,
            "seed {seed}: {with}"
        );
        assert!(with <= without + 1e-9, "seed {seed}: {with} > {without}");
        slower += without - with;
    }
    assert!(slower / 20.0 > 5.0, "{}", slower / 20.0);
    // Without fastinter set, HAProxy moves nothing (`expire = TICK_ETERNITY`): the same
    // detection as without observe.
    let observe = "observe = \"layer4\"\non_error = \"fastinter\"";
    for seed in 0..5 {
        let with = first_offline(&observe_text("crash", 3, observe), seed).0;
        let without = first_offline(&observe_text("crash", 3, ""), seed).0;
        assert!(
            (with - without).abs() < 1e-9,
            "seed {seed}: {with} vs {without}"
        );
    }
}

#[test]
fn haproxy_observe_aborts_a_check_in_progress_as_a_timeout() {
    // A silent master: client connections fail `timeout connect` (5 s) after their attempt,
    // and each check fails at C = min(inter, timeout connect) = 5 s. With fall 1, the first
    // failing check decides. When the on-error reschedule (fastinter 1 s) falls while a check
    // is in progress, HAProxy wakes the check task early and reports it timed out
    // (process_chk_conn, chk_report_conn_err with `expired`): it fails in less than 5 s.
    // Clients wait 10 s, longer than `timeout connect`: one that gave up first would abort
    // HAProxy's connect, which is then no error (the next test).
    let text = |model: &str| {
        observe_text("host_down", 1, model).replace(
            "clients = 1000",
            "clients = 1000\nconnect_timeout = \"10s\"",
        )
    };
    let fast = "fastinter = \"1s\"";
    let observe = format!("{fast}\nobserve = \"layer4\"\non_error = \"fastinter\"");
    let mut aborted = 0;
    for seed in 0..20 {
        let (with, took, reason, _) = first_offline(&text(&observe), seed);
        let (without, took0, _, _) = first_offline(&text(fast), seed);
        assert_eq!(reason, "CONNECT_TIMEOUT");
        assert!(
            (took0 - 5.0).abs() < 1e-9,
            "a silent check fails at C: {took0}"
        );
        assert!(took <= 5.0 + 1e-9 && with <= without + 1e-9, "seed {seed}");
        // No client error is seen before 65 s (5 s after the first silent attempt).
        assert!(with >= 5.0 + 1.0 || with == without, "seed {seed}: {with}");
        if took < 5.0 - 1e-9 {
            aborted += 1;
        }
    }
    // Unless the first silent check went out in [60 s, ~61.5 s) (p ~ 0.075), it is aborted.
    assert!(aborted >= 14, "{aborted} of 20 aborted");
}

#[test]
fn haproxy_observe_does_not_see_clients_that_give_up_before_timeout_connect() {
    // The same silent master with the clients' default connect_timeout, 3 s: each client gives
    // up before HAProxy's `timeout connect` (5 s) runs out, which aborts HAProxy's attempt
    // without a server error. Even mark-down at error_limit 1 changes nothing: the checks alone
    // decide, as without observe.
    let observe = "observe = \"layer4\"\nerror_limit = 1\non_error = \"mark-down\"";
    for seed in 0..5 {
        let with = first_offline(&observe_text("host_down", 1, observe), seed);
        let without = first_offline(&observe_text("host_down", 1, ""), seed);
        assert_eq!(with, without, "seed {seed}");
        assert!((with.1 - 5.0).abs() < 1e-9, "a check decided: {with:?}");
    }
    // Patient clients (10 s): the first error, 5 s after the first attempt, takes it out.
    let patient = observe_text("host_down", 1, observe).replace(
        "clients = 1000",
        "clients = 1000\nconnect_timeout = \"10s\"",
    );
    for seed in 0..5 {
        let (lat, since, _, _) = first_offline(&patient, seed);
        assert!(
            (5.0..6.0).contains(&lat) && since == 5.0,
            "seed {seed}: {lat} {since}"
        );
    }
}

#[test]
fn haproxy_observe_options_are_checked_with_their_key() {
    let text = |model: &str| observe_text("crash", 3, model);
    let load_err = |model: &str| {
        scenario::load_str(Path::new("o.toml"), &text(model), false)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    for (model, key, says) in [
        ("observe = \"layer7\"", "model.haproxy.observe", "only"),
        (
            "observe = \"layer5\"",
            "model.haproxy.observe",
            "\"layer4\"",
        ),
        (
            "observe = \"layer4\"\nerror_limit = 0",
            "model.haproxy.error_limit",
            "> 0",
        ),
        (
            "observe = \"layer4\"\non_error = \"markdown\"",
            "model.haproxy.on_error",
            "\"mark-down\"",
        ),
    ] {
        let e = load_err(model);
        assert!(
            e.contains("o.toml") && e.contains(key) && e.contains(says),
            "{model}: {e}"
        );
    }
    let ok = scenario::load_str(
        Path::new("o.toml"),
        &text("observe = \"layer4\"\nerror_limit = 3\non_error = \"sudden-death\""),
        false,
    )
    .expect("valid");
    match ok.sim.model.profile {
        elbsim::model::profile::Profile::Haproxy(o) => {
            let obs = o.observe().expect("observing");
            assert_eq!(obs.error_limit, 3);
            assert_eq!(
                obs.on_error,
                elbsim::model::profile::haproxy::OnError::SuddenDeath
            );
            assert_eq!(obs.reschedule, None, "fastinter is not set");
        }
        p => panic!("{p:?}"),
    }
    assert!(ok.warnings.is_empty(), "{:?}", ok.warnings);
    // error_limit / on_error without observe, observe without traffic: warnings.
    let s = scenario::load_str(Path::new("o.toml"), &text("error_limit = 3"), false).unwrap();
    assert!(
        s.warnings
            .iter()
            .any(|w| w.to_string().contains("model.haproxy.error_limit")),
        "{:?}",
        s.warnings
    );
    let no_traffic = text("observe = \"layer4\"").replace(
        "[traffic]\nrate = 20.0\nlifetime = \"30s\"\nclients = 1000\n",
        "",
    );
    let s = scenario::load_str(Path::new("o.toml"), &no_traffic, false).unwrap();
    assert!(
        s.warnings
            .iter()
            .any(|w| w.to_string().contains("without [traffic]")),
        "{:?}",
        s.warnings
    );
}
