//! Client traffic in `elbsim live`: real clients through a front proxy per LB node, on 127.0.0.1
//! only, at time scale 0.01 with each scenario cut to just past what it checks (1.5 to 3.3 s of
//! wall clock each). Arrivals are thinned to the wall-clock cap (`sampled` in the result), so
//! the checks are on when clients fail and what kind of failure, not on absolute counts.

use elbsim::live::driver::{self, LiveOptions, LiveRun};
use elbsim::live::traffic::{Failure, LiveTraffic};
use elbsim::model::health::Health;
use elbsim::model::router::{Role, Target};
use elbsim::sim::engine::{Counter, TrafficCounters};
use elbsim::time::{SimDuration, SimTime};
use std::path::Path;
use tokio_util::sync::CancellationToken;

const SCALE: f64 = 0.01;

async fn live(scenario: &str, duration_s: u64) -> LiveRun {
    let mut s = elbsim::scenario::load(Some(Path::new(scenario)), false).expect("scenario loads");
    s.sim.duration = SimDuration::from_secs(duration_s);
    let opts = LiveOptions {
        time_scale: SCALE,
        seed: s.seed.unwrap_or(0),
        trial: 0,
        record_verdicts: false,
        cancel: CancellationToken::new(),
    };
    driver::run(&s.sim, &s.pool, &opts).await.expect("live run")
}

fn traffic(run: &LiveRun) -> &LiveTraffic {
    run.facts.traffic.as_ref().expect("clients ran")
}

/// The counts, in the DES's own traffic log.
fn counts(run: &LiveRun) -> &TrafficCounters {
    &run.log.traffic.as_ref().expect("a traffic log").counters
}

/// Scenario seconds of slack for the live world: a few timer latenesses and round trips.
fn slack(run: &LiveRun) -> f64 {
    4.0 * (run.facts.lateness.max_ms / 1e3 + 0.005) / SCALE
}

fn route_to(run: &LiveRun, to: Target, failback: bool) -> f64 {
    run.log
        .routes
        .iter()
        .find(|r| r.to == to && r.failback == failback)
        .unwrap_or_else(|| panic!("no route to {to:?}: {:?}", run.log.routes))
        .at
        .as_secs_f64()
}

#[tokio::test]
async fn clients_fail_around_a_crash_and_not_after_the_failover() {
    // The master crashes at 120 s, back at 300 s.
    let run = live("scenarios/traffic-crash.toml", 330).await;
    let t = traffic(&run);
    let c = counts(&run);
    assert!(t.sampled > 0.0 && t.sampled <= 1.0);
    assert!(
        c.get(Counter::Refused) > 0,
        "new connections to the dead master are refused: {c:?}"
    );
    assert!(
        c.get(Counter::Broken) > 0,
        "open connections on the master break: {c:?}"
    );
    assert_eq!(
        c.get(Counter::TimedOut)
            + c.get(Counter::NoBackend)
            + c.get(Counter::Drained)
            + c.get(Counter::ResetOnFailback),
        0,
        "{c:?}"
    );
    assert!(
        c.get(Counter::ToMaster) > 0 && c.get(Counter::ToSlave) > 0,
        "{c:?}"
    );
    // Every failure is charged to the crash, as the DES charges it: its window spans the
    // failures, all on the one node.
    let log = run.log.traffic.as_ref().unwrap();
    assert!(log.unattributed.is_none(), "{log:?}");
    let span = log.unavailability[0]
        .all
        .expect("failures charged to the crash");
    assert_eq!(
        span.connections,
        c.get(Counter::Refused) + c.get(Counter::Broken)
    );
    assert!(span.first.as_secs_f64() >= 120.0 - slack(&run));
    let failover = route_to(&run, Target::Slave, false);
    let failback = route_to(&run, Target::Master, true);
    assert!(failback > 300.0);
    let slack = slack(&run);
    for &(at, f) in &t.failures {
        let at = at.as_secs_f64();
        // Every failure lies between the crash and the switch to the slave (a connection routed
        // just before the switch may fail just after it).
        assert!(
            at >= 120.0 - slack && at <= failover + slack,
            "{f:?} at {at:.3}s, outside [120, {failover:.3}] (slack {slack:.3})"
        );
    }
    // The master is ONLINE again at the end, so nothing failed after the failback.
    let last = run
        .log
        .transitions
        .iter()
        .rfind(|x| x.member == Role::Master);
    assert_eq!(last.map(|x| x.to), Some(Health::Online));
}

#[tokio::test]
async fn haproxy_observe_takes_the_crashed_master_out_before_any_check_could() {
    // The master crashes at 60 s; checks every 20 s (fall 3) could not see it before 100 s;
    // observe layer4 marks it down at the 10th refused client connection (error_limit 10,
    // on_error mark-down). Cut at 95 s.
    let run = live("scenarios/profile-haproxy-observe.toml", 95).await;
    let c = counts(&run);
    let down = run
        .log
        .transitions
        .iter()
        .find(|x| x.member == Role::Master && x.to == Health::Offline)
        .unwrap_or_else(|| panic!("the master goes OFFLINE: {:?} {c:?}", run.log.transitions));
    let at = down.at.as_secs_f64();
    assert!(at >= 60.0 - slack(&run) && at < 95.0, "{at}");
    assert_eq!(
        down.reason,
        Some(elbsim::model::probe::Reason::ConnectRefused)
    );
    // At least error_limit refusals (more may be under way when the route changes).
    assert!(c.get(Counter::Refused) >= 10, "{c:?}");
    assert!(route_to(&run, Target::Slave, false) < 95.0);
}

#[tokio::test]
async fn haproxy_observe_on_error_fastinter_moves_the_live_check_forward() {
    // The same crash under checks every 60 s with fastinter 1 s and on_error fastinter: no
    // health change from the clients, but the 10th refusal moves the next check to 1 s later,
    // then fall 3 checks at fastinter: detection a few seconds after the crash, where the
    // checks alone (the DES at the same seed, whose first-check phases the live run shares)
    // see it only at their next round.
    use elbsim::model::profile::{haproxy, Profile};
    let mut s = elbsim::scenario::load(
        Some(Path::new("scenarios/profile-haproxy-observe.toml")),
        false,
    )
    .expect("scenario loads");
    s.sim.duration = SimDuration::from_secs(100);
    s.sim.check.delay = SimDuration::from_secs(60);
    let Profile::Haproxy(o) = s.sim.model.profile else {
        panic!("haproxy")
    };
    let observing = haproxy::Options {
        on_error: haproxy::OnError::FastInter,
        fastinter: Some(SimDuration::from_secs(1)),
        ..o
    };
    let seed = s.seed.unwrap_or(0);
    let des_offline = |profile: haproxy::Options| {
        let mut cfg = s.sim.clone();
        cfg.model.profile = Profile::Haproxy(profile);
        let log = elbsim::sim::engine::run(
            &cfg,
            elbsim::sim::engine::RunOptions {
                seed,
                ..Default::default()
            },
        );
        log.transitions
            .iter()
            .find(|x| x.member == Role::Master && x.to == Health::Offline)
            .map(|x| x.at.as_secs_f64())
    };
    let checks_alone = des_offline(haproxy::Options {
        observe: haproxy::ObserveMode::None,
        ..observing
    })
    .unwrap_or(f64::INFINITY);
    let des = des_offline(observing).expect("the DES detects");
    s.sim.model.profile = Profile::Haproxy(observing);
    let opts = LiveOptions {
        time_scale: SCALE,
        seed,
        trial: 0,
        record_verdicts: false,
        cancel: CancellationToken::new(),
    };
    let run = driver::run(&s.sim, &s.pool, &opts).await.expect("live run");
    let slack = slack(&run);
    let at = run
        .log
        .transitions
        .iter()
        .find(|x| x.member == Role::Master && x.to == Health::Offline)
        .map(|x| x.at.as_secs_f64())
        .expect("the master goes OFFLINE");
    // The DES: observe moves the check (about 63.7 s) where the checks alone see the crash at
    // about 78 s at this seed. Live clients are thinned to the wall-clock cap, so the 10th
    // refusal comes later there (about 69.5 s), still well before the checks alone.
    assert!(des < 60.0 + 8.0, "DES with observe: {des}");
    assert!(checks_alone > 75.0, "checks alone: {checks_alone}");
    assert!(
        at < checks_alone - slack,
        "live {at} (slack {slack}), DES {des}, checks alone {checks_alone}"
    );
}

#[tokio::test]
async fn drain_closes_the_hung_masters_connections_at_its_deadline() {
    // The master hangs at 60 s; drain on, timeout 30 s; connections live 120 s.
    let run = live("scenarios/traffic-drain-on.toml", 150).await;
    let t = traffic(&run);
    let c = counts(&run);
    assert!(c.get(Counter::Drained) > 0, "{c:?}");
    assert_eq!(
        c.get(Counter::Broken),
        0,
        "a hang breaks no connection: {c:?}"
    );
    let offline = run
        .log
        .transitions
        .iter()
        .find(|x| x.member == Role::Master && x.to == Health::Offline)
        .expect("the hung master goes OFFLINE")
        .at
        .as_secs_f64();
    let slack = slack(&run);
    let drained: Vec<f64> = t
        .failures
        .iter()
        .filter(|(_, f)| *f == Failure::Drained)
        .map(|(at, _)| at.as_secs_f64())
        .collect();
    assert!(!drained.is_empty());
    for at in drained {
        assert!(
            (at - (offline + 30.0)).abs() <= slack,
            "drained at {at:.3}s, the deadline is {:.3}s",
            offline + 30.0
        );
    }
    // The drain is in the log as the engine records it: closed at the deadline.
    let drains = &run.log.traffic.as_ref().unwrap().drains;
    assert_eq!(drains.len(), 1, "{drains:?}");
    let closed = drains[0].closed.expect("the drain ran to its deadline");
    assert!((closed.since(drains[0].started).as_secs_f64() - 30.0).abs() <= slack);
    assert_eq!(drains[0].connections, c.get(Counter::Drained));
    // Requests on the hung master fail from the hang until the drain.
    assert!(c.get(Counter::RequestsFailed) > 0);
    assert!(t
        .failures
        .iter()
        .filter(|(_, f)| *f == Failure::Request)
        .all(|(at, _)| at.as_secs_f64() >= 60.0 - slack
            && at.as_secs_f64() <= offline + 30.0 + slack));
}

#[tokio::test]
async fn without_drain_nothing_is_drained() {
    let run = live("scenarios/traffic-drain-off.toml", 150).await;
    let c = counts(&run);
    assert_eq!(c.get(Counter::Drained), 0, "{c:?}");
    assert!(c.get(Counter::RequestsFailed) > 0, "{c:?}");
    assert!(run.log.traffic.as_ref().unwrap().drains.is_empty());
}

#[tokio::test]
async fn failback_reset_closes_the_slaves_connections_at_the_failback() {
    let run = live("scenarios/traffic-failback-reset.toml", 230).await;
    let t = traffic(&run);
    assert!(
        counts(&run).get(Counter::ResetOnFailback) > 0,
        "{:?}",
        counts(&run)
    );
    let failback = route_to(&run, Target::Master, true);
    let slack = slack(&run);
    for (at, _) in t
        .failures
        .iter()
        .filter(|(_, f)| *f == Failure::ResetOnFailback)
    {
        assert!((at.as_secs_f64() - failback).abs() <= slack);
    }
}

#[tokio::test]
async fn udp_flows_are_refused_by_a_crashed_master_until_the_failover() {
    // The master crashes at 60 s, back at 180 s; 50 flows per second (thinned), UDP_CONNECT
    // check. A new flow's first datagram to the dead master meets ICMP port unreachable.
    let run = live("scenarios/traffic-udp.toml", 200).await;
    let t = traffic(&run);
    let c = counts(&run);
    assert!(
        c.get(Counter::Refused) > 0,
        "new flows to the dead master are refused: {c:?}"
    );
    assert!(c.get(Counter::Established) > 0, "{c:?}");
    assert_eq!(
        c.get(Counter::TimedOut) + c.get(Counter::NoBackend),
        0,
        "the host is up: nothing times out ({c:?})"
    );
    let failover = route_to(&run, Target::Slave, false);
    let slack = slack(&run);
    for &(at, f) in t.failures.iter().filter(|(_, f)| *f != Failure::Request) {
        let at = at.as_secs_f64();
        assert!(
            at >= 60.0 - slack && at <= failover + slack,
            "{f:?} at {at:.3}s, outside [60, {failover:.3}] (slack {slack:.3})"
        );
    }
    // Charged to the crash, as the DES charges them.
    let log = run.log.traffic.as_ref().unwrap();
    assert!(log.unavailability[0].all.is_some(), "{log:?}");
}

#[tokio::test]
async fn a_quic_pool_runs_no_clients_and_says_so() {
    let run = live("scenarios/quic-slice-server-id.toml", 20).await;
    assert!(run.facts.traffic.is_none());
    assert!(run.log.traffic.is_none());
    assert!(run
        .facts
        .notes
        .iter()
        .any(|n| n.contains("QUIC") && n.contains("no clients ran")));
    assert_eq!(run.log.end, SimTime::ZERO + SimDuration::from_secs(20));
}

/// The number after `word ` in `text` (the first occurrence).
fn number_after(text: &str, word: &str) -> u64 {
    let at = text
        .find(&format!("{word} "))
        .unwrap_or_else(|| panic!("no {word:?} in {text}"));
    text[at + word.len() + 1..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no number after {word:?} in {text}"))
}

#[test]
fn the_live_command_prints_the_run_reports_traffic_section() {
    // The whole ten scenario minutes at 0.01: 6 s of wall clock.
    let out = assert_cmd::Command::cargo_bin("elbsim")
        .unwrap()
        .args([
            "live",
            "scenarios/traffic-crash.toml",
            "--time-scale",
            "0.01",
        ])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let section = &text[text
        .find("\ntraffic\n")
        .unwrap_or_else(|| panic!("no traffic section: {text}"))..];
    assert!(number_after(section, "refused") > 0, "{section}");
    assert!(number_after(section, "broken") > 0, "{section}");
    assert!(
        section.contains("master crash at 120.000s: clients failing for"),
        "{section}"
    );
    // The thinning is said, so the counts can be compared with the simulator's.
    assert!(text.contains("% of the scenario's arrivals"), "{text}");
}
