//! Windowed noisy trials and the shared probe stream of `tune` (`experiment::windowed`,
//! `experiment::stream`, the engine's probe tape) against full simulation.
//!
//! Three claims are checked: a replayed probe tape gives exactly the run that drawing gives
//! (so sharing one stream among (fall, rise) pairs changes nothing); windowed trials give the
//! latency percentiles of full runs within sampling error (their 95% intervals overlap); and
//! windowed `tune` ranks like full `tune`, with byte-identical results at any job count.

use elbsim::experiment::trials::{report, run_range, run_range_with, TrialsReport};
use elbsim::experiment::tune::{
    tune, with_probe_fault, Constraints, Objective, PointResult, PointSource, Ranges, TuneOptions,
};
use elbsim::experiment::windowed::{plan, CounterBounds, Plan};
use elbsim::sim::config::{FaultKind, SimConfig};
use elbsim::sim::engine::{run_with, ProbeOptions, ProbeTape, RunOptions, StartPhase, TapeMode};
use elbsim::sim::time::{SimDuration, SimTime};
use std::path::Path;
use std::sync::atomic::AtomicBool;

static NEVER: AtomicBool = AtomicBool::new(false);

fn load(name: &str) -> SimConfig {
    elbsim::scenario::load(Some(Path::new(&format!("scenarios/{name}"))), false)
        .unwrap()
        .sim
}

/// noisy-host-down.toml made shorter for a debug build: 2 h, the host down from 60 to 70 min.
fn short_noisy_host_down() -> SimConfig {
    let mut cfg = load("noisy-host-down.toml");
    cfg.duration = SimDuration::from_secs(2 * 3600);
    cfg.faults[0].at = SimTime(3600 * 1_000_000_000);
    cfg.faults[0].until = Some(SimTime(4200 * 1_000_000_000));
    cfg
}

fn window_of(cfg: &SimConfig, bounds: CounterBounds) -> elbsim::experiment::windowed::Window {
    match plan(cfg, bounds) {
        Plan::Windowed(w) => *w,
        Plan::Full(why) => panic!("expected a window: {why}"),
    }
}

#[test]
fn a_replayed_tape_is_the_run_drawing_gives() {
    let cfg = short_noisy_host_down();
    let w = window_of(&cfg, CounterBounds { fall: 5, rise: 3 });
    let with = |fall, rise| {
        let mut c = w.cfg.clone();
        c.check.fall = fall;
        c.check.rise = rise;
        c
    };
    let recorded_under = with(2, 3);
    let mut probes_seen = 0;
    for trial in 0..12 {
        let opts = RunOptions {
            seed: 11,
            trial,
            ..Default::default()
        };
        let mut tape = ProbeTape::default();
        let (recorded, diverged) = run_with(
            &recorded_under,
            opts,
            ProbeOptions {
                start: StartPhase::Equilibrium,
                tape: TapeMode::Record(&mut tape),
            },
        );
        assert!(!diverged);
        probes_seen += tape.entries.len();
        for (fall, rise) in [(1, 1), (2, 3), (4, 2), (5, 3)] {
            let c = with(fall, rise);
            let drawn = run_with(
                &c,
                opts,
                ProbeOptions {
                    start: StartPhase::Equilibrium,
                    tape: TapeMode::Off,
                },
            )
            .0;
            let (replayed, diverged) = run_with(
                &c,
                opts,
                ProbeOptions {
                    start: StartPhase::Equilibrium,
                    tape: TapeMode::Replay(&tape),
                },
            );
            assert!(!diverged, "trial {trial} fall {fall} rise {rise}");
            assert_eq!(replayed, drawn, "trial {trial} fall {fall} rise {rise}");
            if (fall, rise) == (2, 3) {
                assert_eq!(replayed, recorded);
            }
        }
    }
    // The window holds hundreds of probes per trial: the tape is not trivially short.
    assert!(probes_seen > 12 * 300, "{probes_seen}");
}

#[test]
fn a_tape_that_does_not_match_is_flagged() {
    let cfg = short_noisy_host_down();
    let w = window_of(&cfg, CounterBounds::of(&cfg));
    let opts = RunOptions {
        seed: 1,
        ..Default::default()
    };
    let mut tape = ProbeTape::default();
    run_with(
        &w.cfg,
        opts,
        ProbeOptions {
            start: StartPhase::Equilibrium,
            tape: TapeMode::Record(&mut tape),
        },
    );
    // Another delay sends probes at other instants: the replay must notice.
    let mut other = w.cfg.clone();
    other.check.delay = SimDuration::from_secs(3);
    let (_, diverged) = run_with(
        &other,
        opts,
        ProbeOptions {
            start: StartPhase::Equilibrium,
            tape: TapeMode::Replay(&tape),
        },
    );
    assert!(diverged);
}

/// The 95% intervals of two estimates of one percentile overlap.
fn agree(what: &str, full: &TrialsReport, win: &TrialsReport) {
    let pick = |r: &TrialsReport| match what {
        "detection" => r.detection_latency_s.clone(),
        "failback" => r.failback_latency_s.clone(),
        _ => unreachable!(),
    };
    let (f, w) = (pick(full), pick(win));
    for key in ["p50", "p90", "p99"] {
        let (fi, wi) = (f.ci(key).unwrap(), w.ci(key).unwrap());
        let (flo, fhi) = (fi[0].unwrap(), fi[1].unwrap());
        let (wlo, whi) = (wi[0].unwrap(), wi[1].unwrap());
        eprintln!(
            "{what} {key}: full {:.3} [{flo:.3}, {fhi:.3}], windowed {:.3} [{wlo:.3}, {whi:.3}]",
            f.percentile(key).unwrap(),
            w.percentile(key).unwrap()
        );
        assert!(
            flo <= whi && wlo <= fhi,
            "{what} {key}: full [{flo}, {fhi}] and windowed [{wlo}, {whi}] are apart"
        );
    }
}

#[test]
fn windowed_trials_give_the_percentiles_of_full_runs() {
    for kind in [FaultKind::HostDown, FaultKind::Crash] {
        let mut cfg = short_noisy_host_down();
        cfg.faults[0].kind = kind;
        let n = 800;
        let full = run_range(&cfg, 5, 0..n, 2, &NEVER, &|_| {}, None);
        let full = report(&cfg, &full, n, 5);
        let w = window_of(&cfg, CounterBounds::of(&cfg));
        assert!(w.fraction(&cfg) < 0.2, "{}", w.fraction(&cfg));
        let win = run_range_with(
            &w.cfg,
            5,
            0..n,
            2,
            &NEVER,
            &|_| {},
            None,
            StartPhase::Equilibrium,
        );
        let win = report(&w.cfg, &win, n, 5);
        eprintln!("{}:", kind.name());
        agree("detection", &full, &win);
        agree("failback", &full, &win);
        // A crash under noise is missed when a probe lost to noise (CONNECT_TIMEOUT, not the
        // crash's CONNECT_REFUSED) decides the verdict; the rate agrees, and no fault is
        // censored by the window.
        let (fm, wm) = (
            full.missed_fault_rate_ci.unwrap(),
            win.missed_fault_rate_ci.unwrap(),
        );
        eprintln!(
            "missed: full {} {fm:?}, windowed {} {wm:?}",
            full.missed_faults, win.missed_faults
        );
        assert!(fm[0] <= wm[1] && wm[0] <= fm[1]);
        assert_eq!(win.censored_faults, 0);
        if kind == FaultKind::HostDown {
            assert_eq!(win.missed_faults, 0);
            assert!(win.detection_latency_s.count >= n - 2);
            assert!(win.failback_latency_s.count >= n - 2);
        }
        // A fraction of the events.
        assert!(
            win.events * 4 < full.events,
            "{} {}",
            win.events,
            full.events
        );
    }
}

fn sweep(full: bool, jobs: usize) -> Vec<PointResult> {
    let base = load("noisy-network.toml");
    let ranges = Ranges {
        delay: vec![2, 3],
        timeout: vec![1],
        max_retries_down: vec![2, 3, 4],
        max_retries: vec![1, 3],
        ..Ranges::default()
    };
    let opts = TuneOptions {
        trials: 60,
        seed: 7,
        jobs,
        objective: Objective::P99Failover,
        constraints: Constraints::default(),
        probe_fault: FaultKind::HostDown,
        allow_warnings: false,
        full,
    };
    let r = tune(
        &base,
        &ranges,
        opts,
        &|_| Vec::new(),
        &NEVER,
        &|_| {},
        PointSource::Simulate,
    );
    assert!(!r.partial);
    assert_eq!(r.windowed.is_some(), !full);
    let mut points = r.points;
    points.sort_by_key(|p| (p.point.delay, p.point.max_retries_down, p.point.max_retries));
    points
}

#[test]
fn windowed_tune_ranks_like_full_tune_at_any_job_count() {
    let windowed = sweep(false, 1);
    assert_eq!(windowed, sweep(false, 3), "windowed tune depends on --jobs");
    let full = sweep(true, 2);
    assert_eq!(windowed.len(), full.len());
    for (w, f) in windowed.iter().zip(&full) {
        assert_eq!(w.point, f.point);
        // The constraint's figure is the closed form: the same number.
        assert_eq!(w.false_failovers.per_day, f.false_failovers.per_day);
        // Both simulated checks cover the same fault-free hours, and agree with it.
        assert_eq!(
            w.false_failovers.simulated_hours,
            f.false_failovers.simulated_hours
        );
        assert!(w.false_failovers.consistent, "{:?}", w.false_failovers);
        let (wf, ff) = (&w.failover_latency_s, &f.failover_latency_s);
        for key in ["p50", "p90"] {
            let (a, b) = (wf.ci(key).unwrap(), ff.ci(key).unwrap());
            assert!(
                a[0].unwrap() <= b[1].unwrap() && b[0].unwrap() <= a[1].unwrap(),
                "{:?} {key}: windowed {a:?} full {b:?}",
                w.point
            );
        }
    }
    // The same recommendation.
    let best = |v: &[PointResult]| {
        v.iter()
            .filter(|p| p.feasible && p.ranked)
            .min_by(|a, b| {
                a.objective.unwrap().total_cmp(&b.objective.unwrap()).then(
                    a.false_failovers
                        .per_day
                        .total_cmp(&b.false_failovers.per_day),
                )
            })
            .map(|p| (p.point.delay, p.point.timeout, p.point.max_retries_down))
    };
    assert_eq!(best(&windowed), best(&full));
    assert_eq!(best(&windowed), Some((2, 1, 4)));
}

#[test]
fn where_windows_do_not_apply_runs_are_full() {
    // No fault, no noise, traffic, a fault too early for a warm-up: each says why.
    let noisy = load("noisy-network.toml");
    let bounds = CounterBounds::of(&noisy);
    assert!(matches!(plan(&noisy, bounds), Plan::Full(w) if w.contains("no fault")));
    let (with_fault, _) = with_probe_fault(&noisy, FaultKind::HostDown);
    assert!(matches!(plan(&with_fault, bounds), Plan::Windowed(_)));
    let crash = load("crash.toml");
    assert!(
        matches!(plan(&crash, CounterBounds::of(&crash)), Plan::Full(w) if w.contains("noise"))
    );
    let traffic = load("traffic-crash.toml");
    assert!(matches!(
        plan(&traffic, CounterBounds::of(&traffic)),
        Plan::Full(w) if w.contains("traffic")
    ));
    let mut early = with_fault.clone();
    early.faults[0].at = SimTime(1_000_000_000);
    assert!(matches!(plan(&early, bounds), Plan::Full(w) if w.contains("warm-up")));
}
