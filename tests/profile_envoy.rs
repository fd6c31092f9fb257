//! The envoy profile against its closed forms (`docs/profiles.md`, section "envoy"), over many
//! seeds, through the engine: each fault class's detection latency lies in the window that
//! `model::profile::envoy::detection_window` derives, the extremes come close to both bounds and
//! (without jitter) the spread is uniform; recovery, the fresh start, the panic threshold and
//! outlier detection each do what Envoy's source says.

use elbsim::model::health::Health;
use elbsim::model::probe::ProbeKind;
use elbsim::model::profile::envoy::{
    detection_window, recovery_window, FaultClass, Options, OutlierConfig, StatusRanges,
};
use elbsim::model::profile::Profile;
use elbsim::model::router::Role;
use elbsim::report::run::{analyse, RunFacts, RunReport};
use elbsim::sim::config::{CheckConfig, Fault, FaultKind, InitialState, SimConfig};
use elbsim::sim::engine::{run, RunLog, RunOptions};
use elbsim::sim::time::{SimDuration, SimTime};

const D: u64 = 5;
const T: u64 = 3;
const F: u32 = 3;
const RISE: u32 = 2;
const RUNS: u64 = 1500;

fn secs(s: u64) -> SimDuration {
    SimDuration::from_secs(s)
}

fn rtt() -> SimDuration {
    SimDuration::from_millis(1)
}

fn config(check: ProbeKind, kind: FaultKind, opts: Options) -> SimConfig {
    let mut cfg = SimConfig::with_check(CheckConfig {
        kind: check,
        delay: secs(D),
        timeout: secs(T),
        rise: RISE,
        fall: F,
    });
    cfg.model.profile = Profile::Envoy(opts);
    cfg.duration = secs(300);
    cfg.faults.push(Fault {
        member: Role::Master,
        kind,
        at: SimTime::ZERO + secs(60),
        until: Some(SimTime::ZERO + secs(180)),
    });
    cfg
}

fn one(cfg: &SimConfig, seed: u64) -> (RunLog, RunReport) {
    let log = run(
        cfg,
        RunOptions {
            seed,
            ..Default::default()
        },
    );
    let r = analyse(
        &RunFacts {
            name: "t",
            seed,
            cfg,
            expected_codes: None,
        },
        &log,
        false,
    );
    (log, r)
}

/// Detection and failback latencies over [`RUNS`] seeds (one failover and one failback each).
fn latencies(cfg: &SimConfig) -> (Vec<f64>, Vec<f64>) {
    let mut det = Vec::new();
    let mut back = Vec::new();
    for seed in 0..RUNS {
        let (_, r) = one(cfg, seed);
        assert_eq!(r.failovers.len(), 1, "seed {seed}: {r:?}");
        assert_eq!(r.false_failovers, 0, "seed {seed}");
        det.push(r.failovers[0].detection_latency_s);
        assert_eq!(r.failbacks.len(), 1, "seed {seed}");
        back.push(r.failbacks[0].failback_latency_s);
    }
    (det, back)
}

fn window((lo, hi): (SimDuration, SimDuration)) -> (f64, f64) {
    (lo.as_secs_f64(), hi.as_secs_f64())
}

/// All inside `[lo, hi]` and both ends approached within `near` of the width; with `uniform`,
/// every tenth of the window holds about a tenth of the samples.
fn assert_spread_in(what: &str, s: &[f64], (lo, hi): (f64, f64), near: f64, uniform: bool) {
    let eps = 1e-6;
    let width = hi - lo;
    let min = s.iter().cloned().fold(f64::MAX, f64::min);
    let max = s.iter().cloned().fold(f64::MIN, f64::max);
    assert!(
        min >= lo - eps && max <= hi + eps,
        "{what}: [{min}, {max}] outside [{lo}, {hi}]"
    );
    assert!(min - lo < near * width, "{what}: min {min} not near {lo}");
    assert!(hi - max < near * width, "{what}: max {max} not near {hi}");
    if uniform {
        let mut deciles = [0u32; 10];
        for &x in s {
            deciles[(((x - lo) / width) * 10.0).floor().clamp(0.0, 9.0) as usize] += 1;
        }
        let expect = s.len() as f64 / 10.0;
        // 1,500 runs: a decile holds 150 +- 11.6 (1 sigma); 4.5 sigma = 52.
        for (i, &n) in deciles.iter().enumerate() {
            assert!(
                (n as f64 - expect).abs() < 52.0,
                "{what}: decile {i}: {n}: {deciles:?}"
            );
        }
    }
}

/// All inside `[lo, hi]`, the low end reached. Recovery's upper end needs the fault to end at
/// every phase of the failing check cycle, which a fault of fixed length (here 120 s) does not
/// give: its end phase follows its start phase.
fn assert_within_reaching_lo(what: &str, s: &[f64], (lo, hi): (f64, f64)) {
    let min = s.iter().cloned().fold(f64::MAX, f64::min);
    let max = s.iter().cloned().fold(f64::MIN, f64::max);
    assert!(
        min >= lo - 1e-6 && max <= hi + 1e-6,
        "{what}: [{min}, {max}] outside [{lo}, {hi}]"
    );
    assert!(
        min - lo < 0.02 * (hi - lo),
        "{what}: min {min} not near {lo}"
    );
}

fn hc(opts: &Options) -> elbsim::model::profile::envoy::HealthCheckConfig {
    opts.health_check(secs(D), secs(T), F, RISE)
}

#[test]
fn crash_is_counted_like_huawei_with_default_intervals() {
    let opts = Options::default();
    let cfg = config(ProbeKind::Tcp, FaultKind::Crash, opts);
    let (det, back) = latencies(&cfg);
    let w = window(detection_window(&hc(&opts), FaultClass::Refused, rtt()));
    // With the edge intervals at their defaults the window is huawei's: [(F-1)(D+r)+r, F(D+r)+r].
    assert!(
        (w.0 - 10.003).abs() < 1e-9 && (w.1 - 15.004).abs() < 1e-9,
        "{w:?}"
    );
    assert_spread_in("crash", &det, w, 0.01, true);
    let b = window(recovery_window(&hc(&opts), rtt(), rtt()));
    assert_within_reaching_lo("crash recovery", &back, b);
}

#[test]
fn host_down_waits_for_the_timeouts() {
    let opts = Options::default();
    let cfg = config(ProbeKind::Tcp, FaultKind::HostDown, opts);
    let (det, back) = latencies(&cfg);
    let w = window(detection_window(&hc(&opts), FaultClass::Silent, rtt()));
    assert!(
        (w.0 - 19.0).abs() < 1e-9 && (w.1 - 24.001).abs() < 1e-9,
        "{w:?}"
    );
    assert_spread_in("host_down", &det, w, 0.01, true);
    let b = window(recovery_window(&hc(&opts), secs(T), rtt()));
    assert_within_reaching_lo("host_down recovery", &back, b);
}

#[test]
fn hang_under_http_times_out_like_host_down() {
    let opts = Options::default();
    let cfg = config(ProbeKind::Http, FaultKind::Hang, opts);
    let (det, _) = latencies(&cfg);
    let w = window(detection_window(&hc(&opts), FaultClass::Silent, rtt()));
    assert_spread_in("hang", &det, w, 0.01, true);
}

fn http_503() -> FaultKind {
    FaultKind::HttpStatus {
        status: 503,
        expected: false,
    }
}

#[test]
fn an_unexpected_status_fails_on_the_first_check() {
    let opts = Options::default();
    let cfg = config(ProbeKind::Http, http_503(), opts);
    let (det, _) = latencies(&cfg);
    let w = window(detection_window(
        &hc(&opts),
        FaultClass::ImmediateStatus,
        rtt(),
    ));
    assert!(
        (w.0 - 0.001).abs() < 1e-9 && (w.1 - 5.002).abs() < 1e-9,
        "{w:?}"
    );
    assert_spread_in("503", &det, w, 0.01, true);
}

#[test]
fn a_retriable_status_counts_towards_the_threshold() {
    let opts = Options {
        retriable_statuses: StatusRanges::from_inclusive(&[(500, 599)]).unwrap(),
        ..Options::default()
    };
    let cfg = config(ProbeKind::Http, http_503(), opts);
    let (det, _) = latencies(&cfg);
    let w = window(detection_window(
        &hc(&opts),
        FaultClass::RetriableStatus,
        rtt(),
    ));
    assert_spread_in("retriable 503", &det, w, 0.01, true);
}

#[test]
fn edge_intervals_and_jitter_shape_the_window() {
    let opts = Options {
        unhealthy_edge_interval: Some(secs(1)),
        interval_jitter: SimDuration::from_millis(500),
        interval_jitter_percent: 10,
        ..Options::default()
    };
    for (kind, class) in [
        (FaultKind::Crash, FaultClass::Refused),
        (FaultKind::HostDown, FaultClass::Silent),
    ] {
        let cfg = config(ProbeKind::Tcp, kind, opts);
        let (det, _) = latencies(&cfg);
        let w = window(detection_window(&hc(&opts), class, rtt()));
        // Sums of uniform jitters: the far ends are reached rarely, so only within 10 %.
        assert_spread_in(&format!("{class:?} with jitter"), &det, w, 0.1, false);
    }
}

#[test]
fn a_fresh_envoy_starts_unhealthy_and_the_first_pass_is_enough() {
    let mut cfg = config(ProbeKind::Tcp, FaultKind::Crash, Options::default());
    cfg.model.initial_state = InitialState::Initial;
    cfg.faults.clear();
    for seed in 0..20 {
        let (log, _) = one(&cfg, seed);
        // First check at once, passes after one round trip: ONLINE though healthy_threshold = 2.
        let ups: Vec<_> = log
            .transitions
            .iter()
            .filter(|x| x.to == Health::Online)
            .collect();
        assert_eq!(ups.len(), 2, "seed {seed}: {:?}", log.transitions);
        for x in ups {
            assert_eq!(x.at, SimTime::ZERO + rtt(), "seed {seed}");
        }
    }
}

fn traffic(cfg: &mut SimConfig) {
    let text = r#"
        name = "t"
        duration = "5m"
        [traffic]
        rate = 50.0
        lifetime = "10s"
        requests_per_s = 2.0
        [pool]
        lb_algorithm = "ROUND_ROBIN"
        protocol = "TCP"
        type = "ip"
        [pool.healthmonitor]
        type = "TCP"
        delay = 5
        timeout = 3
        max_retries = 2
        [[pool.members]]
        role = "master"
        address = "192.168.0.10"
        protocol_port = 80
        [[pool.members]]
        role = "slave"
        address = "192.168.0.11"
        protocol_port = 80
    "#;
    let s = elbsim::scenario::load_str(std::path::Path::new("t.toml"), text, true).expect("loads");
    cfg.traffic = s.sim.traffic;
}

#[test]
fn both_down_panics_and_splits_the_traffic_between_them() {
    // The master crashes and the slave goes silent at the same time: once both are detected,
    // Envoy is in total panic and sends half the new connections to each (refused by the
    // master, timed out at the slave); before that, each goes to the one still thought healthy.
    let mut cfg = config(ProbeKind::Tcp, FaultKind::Crash, Options::default());
    cfg.faults.push(Fault {
        member: Role::Slave,
        kind: FaultKind::HostDown,
        at: SimTime::ZERO + secs(60),
        until: Some(SimTime::ZERO + secs(180)),
    });
    traffic(&mut cfg);
    use elbsim::sim::engine::Counter;
    for seed in 0..5 {
        let (log, r) = one(&cfg, seed);
        let t = log.traffic.expect("traffic");
        let (refused, timed_out) = (
            t.counters.get(Counter::Refused),
            t.counters.get(Counter::TimedOut),
        );
        // About 100 s of panic at 50 connections/s: ~2,500 each way.
        assert!(refused > 2000 && timed_out > 2000, "{:?}", t.counters);
        let ratio = refused as f64 / timed_out as f64;
        assert!((0.85..1.2).contains(&ratio), "seed {seed}: {ratio}");
        assert_eq!(t.counters.get(Counter::NoBackend), 0);
        // The report calls it a fail-open to the master: an outage, not a failover.
        assert!(!r.outages.is_empty(), "seed {seed}: {r:?}");
    }

    // Panic threshold 0: no panic, and no healthy host at priority 0: nothing is routed.
    let mut opts = Options::default();
    opts.priority.healthy_panic_threshold = 0;
    cfg.model.profile = Profile::Envoy(opts);
    let (log, _) = one(&cfg, 3);
    let t = log.traffic.expect("traffic");
    assert!(
        t.counters.get(Counter::NoBackend) > 4000,
        "{:?}",
        t.counters
    );
    assert!(t.counters.get(Counter::Refused) < 1000, "{:?}", t.counters);
}

#[test]
fn outlier_detection_ejects_a_member_the_tcp_check_cannot_see_failing() {
    let mut opts = Options {
        outlier: Some(OutlierConfig {
            max_ejection_percent: 50,
            successful_active_health_check_uneject_host: false,
            ..OutlierConfig::default()
        }),
        ..Options::default()
    };
    let mut cfg = config(ProbeKind::Tcp, http_503(), opts);
    traffic(&mut cfg);
    for seed in 0..10 {
        let (log, _) = one(&cfg, seed);
        let down: Vec<_> = log
            .transitions
            .iter()
            .filter(|x| x.member == Role::Master && x.to == Health::Offline)
            .collect();
        // Ejected within a second (5 failing requests at ~100 requests/s to the master), then
        // back and out again every base_ejection_time × k until the fault ends.
        assert!(!down.is_empty(), "seed {seed}");
        assert!(
            down[0].at.since(SimTime::ZERO + secs(60)) < secs(1),
            "seed {seed}: {:?}",
            down[0]
        );
    }
    // max_ejection_percent at its default (10 %): a pair cannot lose a member.
    opts.outlier = Some(OutlierConfig::default());
    cfg.model.profile = Profile::Envoy(opts);
    let (log, _) = one(&cfg, 1);
    assert!(log.transitions.is_empty(), "{:?}", log.transitions);
}

#[test]
fn the_immediate_fail_header_takes_the_member_out_on_the_first_failing_request() {
    // A TCP check cannot see a 503; with the header, the router marks the master failed on the
    // first client answer that carries it (router.cc, onUpstreamHeaders).
    let opts = Options {
        immediate_health_check_fail: true,
        ..Options::default()
    };
    let mut cfg = config(ProbeKind::Tcp, http_503(), opts);
    traffic(&mut cfg);
    for seed in 0..10 {
        let (_, r) = one(&cfg, seed);
        assert_eq!(r.failovers.len(), 1, "seed {seed}: {r:?}");
        let f = &r.failovers[0];
        // ~250 open connections at 2 requests/s: the first request within milliseconds.
        assert!(f.detection_latency_s < 0.1, "seed {seed}: {f:?}");
        assert_eq!(r.false_failovers, 0);
        // The TCP check keeps passing, so healthy_threshold (2) checks bring the master back
        // and the next failing request takes it out again: it flaps until the fault ends, then
        // is back within two checks (not the first check any more).
        let (log, _) = one(&cfg, seed);
        let master: Vec<_> = log
            .transitions
            .iter()
            .filter(|x| x.member == Role::Master)
            .collect();
        let downs = master.iter().filter(|x| x.to == Health::Offline).count();
        assert!(downs >= 8, "seed {seed}: {downs}");
        let last = master.last().unwrap();
        assert_eq!(last.to, Health::Online);
        let back = last.at.since(SimTime::ZERO + secs(180)).as_secs_f64();
        assert!(
            back <= 2.0 * (D as f64 + 0.001) + 0.001 + D as f64,
            "seed {seed}: {back}"
        );
    }
    // Without traffic, nothing reads the header: the TCP check never fails, the fault is missed.
    let cfg = config(ProbeKind::Tcp, http_503(), opts);
    let (_, r) = one(&cfg, 1);
    assert!(r.failovers.is_empty());
}

#[test]
fn refused_connections_eject_the_master_before_the_check_notices() {
    let opts = Options {
        outlier: Some(OutlierConfig {
            max_ejection_percent: 50,
            ..OutlierConfig::default()
        }),
        ..Options::default()
    };
    let mut cfg = config(ProbeKind::Tcp, FaultKind::Crash, opts);
    traffic(&mut cfg);
    for seed in 0..10 {
        let (_, r) = one(&cfg, seed);
        let f = &r.failovers[0];
        // 5 refused connections at 50/s: about 0.1 s, well before the check's 10 s at least.
        assert!(f.detection_latency_s < 1.0, "seed {seed}: {f:?}");
        assert_eq!(f.reason, Some("CONNECT_REFUSED"), "{f:?}");
        assert_eq!(r.false_failovers, 0, "seed {seed}");
    }
}

#[test]
fn a_fresh_envoy_without_traffic_checks_at_the_no_traffic_interval() {
    let mut cfg = config(ProbeKind::Tcp, FaultKind::Crash, Options::default());
    cfg.model.initial_state = InitialState::Initial;
    cfg.faults.clear();
    let log = run(
        &cfg,
        RunOptions {
            seed: 1,
            record_verdicts: true,
            ..Default::default()
        },
    );
    let times: Vec<f64> = log
        .verdicts
        .iter()
        .filter(|v| v.member == Role::Master)
        .map(|v| v.at.as_secs_f64())
        .collect();
    // At once (r), then every no_traffic_healthy_interval (= no_traffic_interval, 60 s) + r.
    assert_eq!(times.len(), 5, "{times:?}");
    for (k, t) in times.iter().enumerate() {
        let want = 0.001 + k as f64 * 60.001;
        assert!((t - want).abs() < 1e-6, "{times:?}");
    }
}

#[test]
fn overprovisioning_below_one_spills_traffic_to_the_slave() {
    let mut opts = Options::default();
    opts.priority.overprovisioning_factor = 70;
    let mut cfg = config(ProbeKind::Tcp, FaultKind::Crash, opts);
    cfg.faults.clear();
    traffic(&mut cfg);
    let (log, _) = one(&cfg, 2);
    use elbsim::sim::engine::Counter;
    let t = log.traffic.expect("traffic");
    let (m, s) = (
        t.counters.get(Counter::ToMaster) as f64,
        t.counters.get(Counter::ToSlave) as f64,
    );
    let share = m / (m + s);
    // 70 % to priority 0 (binomial over ~15,000 connections: +-0.4 % at 1 sigma).
    assert!((share - 0.70).abs() < 0.02, "{share}");
}

fn load(extra: &str) -> Result<elbsim::scenario::Scenario, String> {
    let text = format!(
        r#"
        name = "t"
        [model]
        profile = "envoy"
        {extra}
        [pool]
        lb_algorithm = "ROUND_ROBIN"
        protocol = "TCP"
        type = "ip"
        [pool.healthmonitor]
        type = "HTTP"
        delay = 5
        timeout = 3
        max_retries = 2
        [[pool.members]]
        role = "master"
        address = "192.168.0.10"
        protocol_port = 80
        [[pool.members]]
        role = "slave"
        address = "192.168.0.11"
        protocol_port = 80
    "#
    );
    elbsim::scenario::load_str(std::path::Path::new("e.toml"), &text, true)
        .map_err(|e| e.to_string())
}

#[test]
fn envoy_options_are_checked_with_their_key() {
    let ok = load(
        "[model.envoy]\nunhealthy_edge_interval = \"1s\"\nretriable_statuses = \"500-504\"\n\
         [model.envoy.outlier_detection]\nmax_ejection_percent = 50\n",
    )
    .expect("valid");
    match ok.sim.model.profile {
        Profile::Envoy(o) => {
            assert_eq!(o.unhealthy_edge_interval, Some(secs(1)));
            assert!(o.retriable_statuses.contains(503));
            assert_eq!(o.outlier.map(|x| x.max_ejection_percent), Some(50));
        }
        p => panic!("{p:?}"),
    }
    for (extra, key, says) in [
        ("failback = \"sticky\"", "model.failback", "sticky"),
        ("all_down = \"master\"", "model.all_down", "panic threshold"),
        ("probe_schedule = \"fixed_rate\"", "model.probe_schedule", "fixed_rate"),
        (
            "[model.envoy]\ninterval_jitter = \"1500us\"",
            "model.envoy.interval_jitter",
            "whole milliseconds",
        ),
        (
            "[model.envoy]\nhealthy_panic_threshold = 101",
            "model.envoy.healthy_panic_threshold",
            "0..100",
        ),
        (
            "[model.envoy]\nretriable_statuses = \"5xx\"",
            "model.envoy.retriable_statuses",
            "retriable_statuses",
        ),
        (
            "[model.envoy.outlier_detection]\nbase_ejection_time = \"60s\"\nmax_ejection_time = \"30s\"",
            "model.envoy.outlier_detection.max_ejection_time",
            "base_ejection_time",
        ),
        (
            "[model.envoy]\nunhealthy_intervall = \"1s\"",
            "unhealthy_intervall",
            "unhealthy_interval",
        ),
    ] {
        let e = load(extra).expect_err(extra);
        assert!(e.contains(key) && e.contains(says), "{extra}: {e}");
    }
    // The default max_ejection_percent draws a warning: it ejects nobody in a pair.
    let s = load("[model.envoy.outlier_detection]\n").expect("valid");
    assert!(
        s.warnings
            .iter()
            .any(|w| w.message.contains("ejects no member")),
        "{:?}",
        s.warnings
    );
}
