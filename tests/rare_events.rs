//! The closed form for false failovers against simulation, where rates are high enough for
//! simulation to measure them (spec issue: rare events need both).

use elbsim::experiment::rare::{closed_form_per_hour, FalseFailoverEstimate};
use elbsim::experiment::trials::{run_trials, TrialsOptions};
use elbsim::model::health::ProbeSchedule;
use elbsim::sim::config::Rtt;
use elbsim::sim::time::SimDuration;
use std::path::Path;
use std::sync::atomic::AtomicBool;

fn check(
    mutate: impl Fn(&mut elbsim::sim::config::SimConfig),
    trials: u64,
) -> FalseFailoverEstimate {
    let s = elbsim::scenario::load(Some(Path::new("scenarios/noisy-network.toml")), false).unwrap();
    let mut cfg = s.sim.clone();
    mutate(&mut cfg);
    let r = run_trials(
        &cfg,
        TrialsOptions {
            n: trials,
            seed: 3,
            jobs: 2,
        },
        &AtomicBool::new(false),
        &|_| {},
    );
    let e = FalseFailoverEstimate::new(&cfg, r.false_failovers, r.fault_free_hours);
    eprintln!("{e:?}");
    assert!(
        r.false_failovers >= 30,
        "too few events to cross-check: {}",
        r.false_failovers
    );
    assert!(
        e.consistent,
        "closed form {} outside simulated {:?}",
        e.closed_form_per_day, e.simulated_ci95_per_day
    );
    assert!(closed_form_per_hour(&cfg) > 0.0);
    e
}

#[test]
fn closed_form_matches_simulation_for_the_noisy_scenario() {
    check(|_| {}, 40);
}

#[test]
fn closed_form_matches_simulation_with_loss_only_and_fixed_rate() {
    check(
        |c| {
            c.network.rtt = Rtt::Fixed(SimDuration::from_millis(2));
            c.network.loss = 0.2;
            c.model.probe_schedule = ProbeSchedule::FixedRate;
        },
        20,
    );
}

#[test]
fn closed_form_matches_simulation_with_four_nodes_and_slow_recovery() {
    check(
        |c| {
            c.lb_nodes = 4;
            c.check.rise = 5;
            c.network.loss = 0.1;
        },
        10,
    );
}
