//! The faults real networks have, through the library: the rare-event closed form beside the
//! simulation under bursty loss, and the located errors of every new key.

use elbsim::experiment::rare::FalseFailoverEstimate;
use elbsim::experiment::trials::{run_trials, TrialsOptions};
use std::path::Path;
use std::sync::atomic::AtomicBool;

#[test]
fn the_closed_form_says_it_assumes_independent_losses_and_disagrees_under_bursts() {
    let s = elbsim::scenario::load(Some(Path::new("scenarios/bursty-loss.toml")), false).unwrap();
    let r = run_trials(
        &s.sim,
        TrialsOptions {
            n: 8,
            seed: 1,
            jobs: 2,
        },
        &AtomicBool::new(false),
        &|_| {},
    );
    let e = FalseFailoverEstimate::new(&s.sim, r.false_failovers, r.fault_free_hours);
    eprintln!("{e:?}");
    assert!(e.assumption.is_some_and(|a| a.contains("independent")));
    assert!(
        !e.consistent,
        "closed form {} per day inside the simulated {:?}",
        e.closed_form_per_day, e.simulated_ci95_per_day
    );
    // Bursts fail consecutive probes together: far more false failovers than the form says.
    assert!(e.simulated_ci95_per_day.0 > 10.0 * e.closed_form_per_day);
    let json = serde_json::to_value(&e).unwrap();
    assert!(json.get("assumption").is_some() && json["consistent"] == false);
}

/// The TCP pool of the scenarios, with `extra` before it; returns the load error's text.
fn load_error(extra: &str) -> String {
    let toml = format!(
        "duration = \"10m\"\nlb_nodes = 2\n{extra}\n\
         [pool]\nlb_algorithm = \"ROUND_ROBIN\"\nprotocol = \"TCP\"\ntype = \"ip\"\n\
         [pool.healthmonitor]\ntype = \"TCP\"\ndelay = 5\ntimeout = 3\nmax_retries = 3\n\
         [[pool.members]]\nrole = \"master\"\naddress = \"192.168.0.10\"\nprotocol_port = 80\n\
         [[pool.members]]\nrole = \"slave\"\naddress = \"192.168.0.11\"\nprotocol_port = 80\n"
    );
    match elbsim::scenario::load_str(Path::new("bad.toml"), &toml, false) {
        Ok(_) => panic!("loaded:\n{toml}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn every_new_key_refuses_bad_values_with_its_path() {
    let cases = [
        (
            "[[faults]]\nmember = \"master\"\nkind = \"host_down\"\nat = \"1m\"\nlb_node = 2\n",
            "faults[0].lb_node",
            "LB node 2 does not exist",
        ),
        (
            "[[faults]]\nmember = \"master\"\nkind = \"host_down\"\nat = \"1m\"\nlb_node = []\n",
            "faults[0].lb_node",
            "empty list",
        ),
        (
            "[[faults]]\nmember = \"master\"\nkind = \"hang\"\nat = \"1m\"\nlb_node = 0\n",
            "faults[0].lb_node",
            "member's own",
        ),
        (
            "[model]\nfailback_hold_down = \"30s\"\n",
            "model.failback_hold_down",
            "hold_down",
        ),
        (
            "[model]\nfailback = \"hold_down\"\nfailback_hold_down = \"0s\"\n",
            "model.failback_hold_down",
            "more than 0",
        ),
        (
            "[model]\nmonitor_process = \"separate\"\n",
            "model.monitor_process",
            "monitor_port",
        ),
        (
            "[network.icmp_ratelimit]\n",
            "network.icmp_ratelimit",
            "UDP_CONNECT",
        ),
        (
            "[network.burst]\nmean_good = \"1m\"\nmean_bad = \"0s\"\n",
            "network.burst.mean_bad",
            "at least 1ms",
        ),
        (
            "[network.burst]\nmean_good = \"1m\"\nmean_bad = \"1s\"\nloss_bad = 1.5\n",
            "network.burst.loss_bad",
            "[0, 1]",
        ),
        (
            "[[stalls]]\nlb_node = 0\nat = \"1m\"\nuntil = \"1m\"\n",
            "stalls[0].until",
            "after `at`",
        ),
        (
            "[[stalls]]\nlb_node = [0, 5]\nat = \"1m\"\nuntil = \"2m\"\n",
            "stalls[0].lb_node",
            "LB node 5 does not exist",
        ),
    ];
    for (extra, path, words) in cases {
        let e = load_error(extra);
        assert!(e.contains(path), "{extra}: no `{path}` in: {e}");
        assert!(e.contains(words), "{extra}: no `{words}` in: {e}");
        assert!(e.contains("bad.toml"), "{e}");
    }
}

#[test]
fn live_refuses_what_it_cannot_do_and_says_why() {
    use elbsim::live::driver::not_live;
    let base = elbsim::scenario::load(Some(Path::new("scenarios/crash.toml")), false).unwrap();
    assert!(not_live(&base.sim).is_none());
    for (file, words) in [
        ("scenarios/per-path-fault.toml", "per-path faults"),
        ("scenarios/lb-stall.toml", "[[stalls]]"),
        ("scenarios/bursty-loss.toml", "[network.burst]"),
        ("scenarios/udp-icmp-ratelimit.toml", "loopback"),
        ("scenarios/monitor-process-separate.toml", "separate"),
    ] {
        let s = elbsim::scenario::load(Some(Path::new(file)), false).unwrap();
        let why = not_live(&s.sim).unwrap_or_else(|| panic!("{file} runs live?"));
        assert!(why.contains(words), "{file}: {why}");
        assert!(why.contains("simulator"), "{why}");
    }
    let hold = elbsim::scenario::load(Some(Path::new("scenarios/failback-hold-down.toml")), false)
        .unwrap();
    assert!(
        not_live(&hold.sim).is_none(),
        "hold_down lives in the LbNode"
    );
}
