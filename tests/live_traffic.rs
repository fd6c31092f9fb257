//! Client traffic in `elbsim live`: real clients through a front proxy per LB node, on 127.0.0.1
//! only, at time scale 0.01 with each scenario cut to just past what it checks (1.5 to 3.3 s of
//! wall clock each). Arrivals are thinned to the wall-clock cap (`sampled` in the result), so
//! the checks are on when clients fail and what kind of failure, not on absolute counts.

use elbsim::live::driver::{self, LiveOptions, LiveRun};
use elbsim::live::traffic::{Failure, LiveTraffic};
use elbsim::model::health::Health;
use elbsim::model::router::{Role, Target};
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
        record_verdicts: false,
        cancel: CancellationToken::new(),
    };
    driver::run(&s.sim, &s.pool, &opts).await.expect("live run")
}

fn traffic(run: &LiveRun) -> &LiveTraffic {
    run.facts.traffic.as_ref().expect("clients ran")
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
    let c = &t.counts;
    assert!(t.sampled > 0.0 && t.sampled <= 1.0);
    assert!(
        c.refused > 0,
        "new connections to the dead master are refused: {c:?}"
    );
    assert!(c.broken > 0, "open connections on the master break: {c:?}");
    assert_eq!(
        c.timed_out + c.no_backend + c.drained + c.reset_on_failback,
        0,
        "{c:?}"
    );
    assert!(c.to_master > 0 && c.to_slave > 0, "{c:?}");
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
async fn drain_closes_the_hung_masters_connections_at_its_deadline() {
    // The master hangs at 60 s; drain on, timeout 30 s; connections live 120 s.
    let run = live("scenarios/traffic-drain-on.toml", 150).await;
    let t = traffic(&run);
    assert!(t.counts.drained > 0, "{:?}", t.counts);
    assert_eq!(
        t.counts.broken, 0,
        "a hang breaks no connection: {:?}",
        t.counts
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
    // Requests on the hung master fail from the hang until the drain.
    assert!(t.counts.requests_failed > 0);
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
    let c = &traffic(&run).counts;
    assert_eq!(c.drained, 0, "{c:?}");
    assert!(c.requests_failed > 0, "{c:?}");
}

#[tokio::test]
async fn failback_reset_closes_the_slaves_connections_at_the_failback() {
    let run = live("scenarios/traffic-failback-reset.toml", 230).await;
    let t = traffic(&run);
    assert!(t.counts.reset_on_failback > 0, "{:?}", t.counts);
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
async fn a_udp_pool_runs_no_clients_and_says_so() {
    let run = live("scenarios/traffic-udp.toml", 20).await;
    assert!(run.facts.traffic.is_none());
    assert!(run
        .facts
        .notes
        .iter()
        .any(|n| n.contains("UDP pool") && n.contains("no clients ran")));
    assert_eq!(run.log.end, SimTime::ZERO + SimDuration::from_secs(20));
}
