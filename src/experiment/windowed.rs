//! Windowed trials: on a noisy probe path, simulate only a window around the faults.
//!
//! A trial's latencies (detection, failover, outage, failback) depend on the run only through
//! the state of every prober when a fault begins — the probe phase, the rise/fall streaks, the
//! member's status — and on what happens until the master is back. Hours of fault-free noise
//! before the fault only bring that state to its stationary distribution. So a windowed trial
//! starts `warm_up` before the first fault, in a state that becomes stationary within the
//! warm-up, and ends `tail` after the last fault's end, when the failback is done:
//!
//! * **Phase.** Every prober's first probe goes out at the equilibrium residual of a probe cycle
//!   ([`StartPhase::Equilibrium`]): the probe times then form a *stationary* renewal process
//!   from the window's start, exactly what a pool probing since long ago shows at an arbitrary
//!   instant. (A full run reaches this only approximately: its phase at the fault is the uniform
//!   first phase carried through hours of cycles.)
//! * **Counters.** A checker that starts ONLINE with empty streaks agrees with the one that has
//!   probed forever from the first run of `R` consecutive successes on: both are then ONLINE
//!   with no failure streak, whatever came before (a run of `F` failures couples them too). With
//!   one probe failing with probability `q` ([`super::rare::probe_failure_probability`]), the
//!   chance that `n` probes hold no run of `R` successes is computed exactly
//!   ([`probes_until_run`]), and `n` is the smallest count that makes it at most
//!   [`UNCOUPLED`] (10^-9). The warm-up is `n + 1` of the longest probe cycles
//!   (`delay + timeout`: every verdict comes by the timeout), the `+ 1` for the residual first
//!   cycle. So the warm-up is the "few multiples of max(F, R) cycles" that mixing needs, sized
//!   by the noise: at 5% failed probes and R = 3 it is 33 cycles; a noisier path gets a longer
//!   one, and one so noisy that the window would not save much runs in full.
//! * **Tail.** After the last fault ends the master needs a run of `R` successes to come back:
//!   the first probe sent after the end goes out within one cycle, and `n` more probes hold such
//!   a run but with probability 10^-9. The tail is `n + 2` cycles plus `route_update_delay`.
//!   The window also reaches each master fault's detection window past its start, so censoring
//!   is decided as in the full run, and never past the run's end.
//!
//! Windows are sized for the largest `max_retries_down` and `max_retries` a sweep uses, so one
//! window (and one probe tape, `crate::sim::engine::ProbeTape`) serves every (fall, rise) pair.
//!
//! What a window cannot give is the false-failover rate over the whole run: `trials --windowed`
//! counts false failovers over the window's fault-free time (fewer hours, so a wider interval),
//! and `tune` takes the rate from the closed form and checks it against a simulated noise
//! stream of the full run's fault-free time (`super::stream`).
//!
//! Where it applies (everything else runs in full): no client traffic (its counters cover the
//! whole run), members starting ONLINE, a noisy probe path (a log-normal round trip or a loss),
//! at least one fault, no `slow` master fault the check cannot see (it would change the noise of
//! "fault-free" time), and a window that starts after 0 and covers at most
//! [`MAX_WINDOW_FRACTION`] of the run.

use super::rare::probe_failure_probability;
use super::stream::{noise_check, CounterPair};
use super::trials::{add_trial, fault_free, trial_options, Accum};
use crate::report::run::detection_window;
use crate::sim::config::{FaultKind, InitialState, Rtt, SimConfig};
use crate::sim::engine::{run_with, ProbeOptions, ProbeTape, StartPhase, TapeMode};
use crate::sim::world;
use crate::time::{SimDuration, SimTime};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// Probability, per prober, that the warm-up ends before its checker has forgotten its made-up
/// start (or that the tail ends before the failback).
pub const UNCOUPLED: f64 = 1e-9;

/// A window longer than this fraction of the run is not worth it: the run goes in full.
pub const MAX_WINDOW_FRACTION: f64 = 0.8;

/// Most probes a warm-up may take before the path counts as too noisy to window.
const MAX_WARMUP_PROBES: u64 = 100_000;

/// The largest rise/fall counters one window must serve (a sweep's maxima).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterBounds {
    pub fall: u32,
    pub rise: u32,
}

impl CounterBounds {
    /// The scenario's own counters.
    pub fn of(cfg: &SimConfig) -> Self {
        CounterBounds {
            fall: cfg.check.fall,
            rise: cfg.check.rise,
        }
    }
}

/// A trial's window: the scenario cut to it and shifted to start at 0.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// The scenario's instant that is the window's 0.
    pub offset: SimTime,
    pub warm_up: SimDuration,
    pub tail: SimDuration,
    /// The scenario with faults moved by `-offset` and the duration cut to the window.
    pub cfg: SimConfig,
    /// Probes a warm-up holds at least.
    pub warm_up_probes: u64,
}

impl Window {
    /// Simulated time per trial, against the full run's.
    pub fn fraction(&self, full: &SimConfig) -> f64 {
        self.cfg.duration.0 as f64 / full.duration.0.max(1) as f64
    }
}

/// Windowed, or why not.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    Windowed(Box<Window>),
    Full(&'static str),
}

/// Smallest `n` such that `n` independent probes, each passing with probability `p`, hold a run
/// of `r` consecutive passes with probability at least `1 - eps`; `None` beyond `cap`.
/// Exact: a chain over the length of the current run of passes.
pub fn probes_until_run(p: f64, r: u32, eps: f64, cap: u64) -> Option<u64> {
    if r == 0 {
        return Some(0);
    }
    if p <= 0.0 {
        return None;
    }
    // mass[j]: probability of no completed run yet and a current run of j passes.
    let mut mass = vec![0.0f64; r as usize];
    mass[0] = 1.0;
    let mut n = 0u64;
    loop {
        let alive: f64 = mass.iter().sum();
        if alive <= eps {
            return Some(n);
        }
        if n >= cap {
            return None;
        }
        let fail: f64 = alive * (1.0 - p);
        for j in (1..r as usize).rev() {
            mass[j] = mass[j - 1] * p;
        }
        // A pass from run length r-1 completes the run and leaves the chain.
        mass[0] = fail;
        n += 1;
    }
}

/// The window of one trial of `cfg`, sized for counters up to `bounds`, or why it runs in full.
pub fn plan(cfg: &SimConfig, bounds: CounterBounds) -> Plan {
    if cfg.traffic.is_some() {
        return Plan::Full("client traffic is counted over the whole run");
    }
    if cfg.model.initial_state != InitialState::Online {
        return Plan::Full("members start OFFLINE (initial_state = \"initial\")");
    }
    // What the warm-up argument and the shared probe stream do not cover runs in full.
    if cfg.model.profile.name() != crate::model::profile::ProfileName::Huawei {
        return Plan::Full("the profile's intervals and counting are not the shared stream's");
    }
    if !cfg.fault_paths.is_empty() {
        return Plan::Full("a per-path fault gives LB nodes different views");
    }
    if !cfg.stalls.is_empty() {
        return Plan::Full("an LB-node stall pauses the checker");
    }
    if cfg.network.burst.is_some() || cfg.network.icmp_ratelimit.is_some() {
        return Plan::Full("bursty loss or ICMP rate limiting keeps state between probes");
    }
    if cfg.model.monitor_process != crate::sim::config::MonitorProcess::Same {
        return Plan::Full("a separate monitor process changes what the check sees");
    }
    if cfg.model.failback == crate::model::router::Failback::HoldDown {
        return Plan::Full("failback hold-down lengthens the tail a window needs");
    }
    let noisy = matches!(cfg.network.rtt, Rtt::LogNormal { .. }) || cfg.network.loss > 0.0;
    if !noisy {
        return Plan::Full("the probe path has no noise");
    }
    if cfg.faults.is_empty() {
        return Plan::Full("no fault: the whole run is fault-free time");
    }
    let rtt = crate::report::run::typical_rtt(cfg);
    let hidden_slow = cfg.faults.iter().any(|f| {
        matches!(f.kind, FaultKind::Slow { .. })
            && world::reason_of(&f.kind, cfg.check.kind, &cfg.judging(), rtt).is_none()
    });
    if hidden_slow {
        return Plan::Full("a slow fault the check cannot see changes the noise");
    }
    let q = probe_failure_probability(cfg);
    let Some(n) = probes_until_run(1.0 - q, bounds.rise.max(1), UNCOUPLED, MAX_WARMUP_PROBES)
    else {
        return Plan::Full("the probe path is too noisy for a warm-up of bounded length");
    };
    let cycle = cfg.check.delay + cfg.check.timeout;
    let warm_up = SimDuration(cycle.0.saturating_mul(n + 1));
    let tail = SimDuration(cycle.0.saturating_mul(n + 2)) + cfg.model.route_update_delay;
    let end = SimTime::ZERO + cfg.duration;
    let first = cfg.faults.iter().map(|f| f.at).min().unwrap_or(end);
    let Some(offset) = first.0.checked_sub(warm_up.0).map(SimTime) else {
        return Plan::Full("the first fault comes before a warm-up fits");
    };
    // Detection windows at the largest fall counter: censoring is decided as in the full run.
    let mut widest = cfg.clone();
    widest.check.fall = bounds.fall.max(cfg.check.fall);
    let dw = detection_window(&widest);
    let mut stop = SimTime::ZERO;
    for f in &cfg.faults {
        let until = f.until.unwrap_or(end).min(end);
        stop = stop.max(until + tail).max(f.at + dw);
    }
    let stop = stop.min(end);
    let len = stop.0.saturating_sub(offset.0);
    if len as f64 > MAX_WINDOW_FRACTION * cfg.duration.0 as f64 {
        return Plan::Full("the window would cover most of the run");
    }
    let mut w = cfg.clone();
    w.duration = SimDuration(len);
    for f in &mut w.faults {
        f.at = SimTime(f.at.0 - offset.0);
        f.until = f
            .until
            .map(|u| SimTime(u.0.min(stop.0).saturating_sub(offset.0)));
    }
    Plan::Windowed(Box::new(Window {
        offset,
        warm_up,
        tail,
        cfg: w,
        warm_up_probes: n,
    }))
}

/// Runs trials `0..trials` of every pair of `pairs` in `window` (planned for `full`, the
/// scenario with one point's delay and timeout; its own counters are ignored): per trial, one
/// windowed run records the probe tape and every other pair replays it (a tape that does not
/// match is run the ordinary way: the result is the same run either way), and one noise stream
/// over the full run's fault-free time scores every pair's false failovers. Trial `i` is the
/// same whichever thread runs it and accumulators merge exactly, so the result does not depend
/// on `jobs`. Per pair, its trials' accumulator, with the false failovers the noise stream
/// counted; `None` when `stop` was raised.
pub fn group_results(
    full: &SimConfig,
    window: &Window,
    pairs: &[CounterPair],
    seed: u64,
    trials: u64,
    jobs: usize,
    stop: &AtomicBool,
) -> Option<Vec<Accum>> {
    const CHUNK: u64 = 16;
    let cfgs: Vec<SimConfig> = pairs
        .iter()
        .map(|p| {
            let mut c = window.cfg.clone();
            c.check.fall = p.fall;
            c.check.rise = p.rise;
            c
        })
        .collect();
    let fault_windows = crate::report::qos::member_windows(&window.cfg);
    let span = fault_free(full);
    let next = AtomicU64::new(0);
    let total: Mutex<Vec<(Accum, u64)>> = Mutex::new(vec![(Accum::default(), 0); pairs.len()]);
    let complete = AtomicBool::new(true);
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                let mut accs: Vec<Accum> = vec![Accum::default(); pairs.len()];
                let mut mistakes = vec![0u64; pairs.len()];
                let mut tape = ProbeTape::default();
                'claim: loop {
                    let start = next.fetch_add(CHUNK, Ordering::Relaxed);
                    if start >= trials {
                        break;
                    }
                    for i in start..(start + CHUNK).min(trials) {
                        if stop.load(Ordering::Relaxed) {
                            complete.store(false, Ordering::Relaxed);
                            break 'claim;
                        }
                        tape.clear();
                        for (k, cfg) in cfgs.iter().enumerate() {
                            let opts = trial_options(seed, i, stop);
                            let log = if k == 0 {
                                run_with(cfg, opts, probes(TapeMode::Record(&mut tape))).0
                            } else {
                                match run_with(cfg, opts, probes(TapeMode::Replay(&tape))) {
                                    (log, false) => log,
                                    (_, true) => run_with(cfg, opts, probes(TapeMode::Off)).0,
                                }
                            };
                            if !add_trial(cfg, i, &log, &fault_windows, &mut accs[k], None) {
                                if accs[k].limit().is_none() {
                                    complete.store(false, Ordering::Relaxed);
                                }
                                break 'claim;
                            }
                        }
                        for (m, s) in mistakes
                            .iter_mut()
                            .zip(noise_check(full, pairs, seed, i, span))
                        {
                            *m += s;
                        }
                    }
                }
                // A poisoned lock means another worker panicked; its panic is re-raised by scope.
                if let Ok(mut t) = total.lock() {
                    for (k, (acc, m)) in t.iter_mut().enumerate() {
                        acc.merge(&accs[k]);
                        *m += mistakes[k];
                    }
                }
            });
        }
    });
    if !complete.load(Ordering::Relaxed) {
        return None;
    }
    let out = total.into_inner().unwrap_or_default();
    Some(
        out.into_iter()
            .map(|(mut acc, mistakes)| {
                acc.set_false_failovers(mistakes);
                acc
            })
            .collect(),
    )
}

/// Windowed runs start at equilibrium; `tape` records, replays or neither.
fn probes(tape: TapeMode<'_>) -> ProbeOptions<'_> {
    ProbeOptions {
        start: StartPhase::Equilibrium,
        tape,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_probabilities_match_the_known_chain() {
        // A fair coin: two heads in a row within 2 tosses with probability 1/4, so eps 0.75
        // needs 2 tosses and eps 0.7 needs more (P(no HH in 3) = 5/8 = 0.625).
        assert_eq!(probes_until_run(0.5, 2, 0.75, 100), Some(2));
        assert_eq!(probes_until_run(0.5, 2, 0.7, 100), Some(3));
        // Certain passes: exactly r probes.
        assert_eq!(probes_until_run(1.0, 3, 1e-9, 100), Some(3));
        assert_eq!(probes_until_run(0.0, 3, 1e-9, 100), None);
        // 5% failures, r = 3: about 30 probes for 1e-9.
        let n = probes_until_run(0.95, 3, 1e-9, 1000).unwrap();
        assert!((25..40).contains(&n), "{n}");
    }
}
