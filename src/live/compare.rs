//! `elbsim live --compare N`: N live trials and the DES on the same scenario, their latency
//! distributions side by side, each difference measured against the closed-form detection
//! window.
//!
//! - **Trials.** Live trial `i` runs with `LiveOptions::trial = i`, so its first probes go out
//!   at the phases the DES draws for its own trial `i` (and its clients, if any, arrive on trial
//!   `i`'s stream). The trials run one after the other: two at once would share the runtime
//!   and the cores, and each would make the other's timers late.
//! - **Cut.** Nothing the comparison measures happens after the last fault's recovery window
//!   (`sim::engine::recovery_window`: a probe in flight, then `max(max_retries,
//!   max_retries_down)` probes of up to `delay + timeout`, then the route update) or, for a fault
//!   without an end, after its detection window; each trial (live and DES) runs only that far,
//!   plus one `delay`. For `scenarios/crash.toml` that is 212 s of the 600, a third of the wall
//!   clock.
//! - **DES.** `experiment::trials::run_trials` on the same cut scenario, with at least
//!   [`MIN_DES_TRIALS`] trials (its trials `0..N` have the live trials' phases; the rest make
//!   its distribution the reference), fewer with client traffic ([`MIN_DES_TRIALS_TRAFFIC`]),
//!   whose trials cost far more.
//! - **Window.** The closed form of the detection latency for the first master fault the check
//!   can see ([`ClosedWindow::of`]); the differences are divided by its width, `max - min`,
//!   which for every class is one probe cycle: the spread that the random probe phase gives.
//!   A difference of 0.1 is a tenth of a cycle.

use super::driver::{self, LiveOptions};
use crate::api::pool::Pool;
use crate::experiment::stats::{LatencyStats, Summary};
use crate::experiment::trials::{run_trials, visible_fault_windows, TrialsOptions};
use crate::model::health::ProbeSchedule;
use crate::model::probe::{ProbeKind, Reason};
use crate::report::run::{detection_window, measure};
use crate::sim::config::{FaultKind, Rtt, SimConfig};
use crate::sim::engine::{recovery_window, RunLog};
use crate::sim::world::reason_of;
use crate::time::{SimDuration, SimTime};
use serde::Serialize;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Most live trials one `--compare` runs.
pub const MAX_COMPARE_TRIALS: u64 = 200;
/// Longest estimated wall clock of the live trials that `--compare` starts (one hour).
pub const MAX_COMPARE_WALL_S: f64 = 3600.0;
/// Fewest DES trials: enough that its quantiles are the reference (p50 within about 1.6% of a
/// cycle at 95%), and cheap without client traffic.
pub const MIN_DES_TRIALS: u64 = 1000;
/// Fewest DES trials when the scenario has client traffic (each trial simulates every client).
pub const MIN_DES_TRIALS_TRAFFIC: u64 = 100;
/// Wall-clock seconds each live trial costs besides its scaled duration (start, shutdown).
const TRIAL_OVERHEAD_S: f64 = 0.1;

/// The closed-form window of the detection latency of one fault, in scenario seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClosedWindow {
    /// Index of the fault in the scenario.
    pub fault: u32,
    /// The fault's kind.
    pub fault_kind: &'static str,
    /// `answered` (each failing probe ends one round trip after it went out: crash,
    /// monitor_port_down, a wrong status, a broken TLS handshake) or `silent` (each ends at
    /// the timeout: host_down, hang under an HTTP check, slow beyond the timeout).
    pub class: &'static str,
    /// The reason the failing probes give.
    pub reason: &'static str,
    /// The closed form, in F = max_retries_down, D = delay, T = timeout, r = the scenario's
    /// round trip.
    pub formula: String,
    pub min_s: f64,
    pub max_s: f64,
    /// `max_s - min_s`: the denominator of every fraction in the comparison.
    pub width_s: f64,
}

impl ClosedWindow {
    /// The window of the first fault on the master that the check sees every time it probes
    /// (a `loss` fails probes at random and a `flap` only in its down phases: neither has one).
    /// `None` when there is no such fault.
    pub fn of(cfg: &SimConfig) -> Option<ClosedWindow> {
        let c = &cfg.check;
        let r = match cfg.network.rtt {
            Rtt::Fixed(d) => d,
            Rtt::LogNormal { median, .. } => median,
        };
        let (i, f, reason) = cfg.faults.iter().enumerate().find_map(|(i, f)| {
            if f.member != crate::model::router::Role::Master
                || matches!(f.kind, FaultKind::Loss { .. } | FaultKind::Flap { .. })
            {
                return None;
            }
            reason_of(&f.kind, c.kind, &cfg.judging(), r).map(|reason| (i, f, reason))
        })?;
        let silent = matches!(reason, Reason::ConnectTimeout | Reason::RecvResponseTimeout);
        let (d, t, rtt) = (
            c.delay.as_secs_f64(),
            c.timeout.as_secs_f64(),
            r.as_secs_f64(),
        );
        let big_f = f64::from(c.fall.max(1));
        // A failing probe ends after `fail`; a passing one after `pass` (UDP_CONNECT passes on
        // silence, so at the timeout).
        let fail = if silent { t } else { rtt };
        let udp = c.kind == ProbeKind::UdpConnect;
        let pass = if udp { t } else { rtt };
        let (min, max, formula) = match cfg.model.probe_schedule {
            // The fault lands somewhere in a passing cycle (D + pass long); F failing cycles
            // follow, the last one ending at its verdict.
            ProbeSchedule::AfterCompletion => {
                let min = (big_f - 1.0) * d + big_f * fail;
                let formula = match (silent, udp) {
                    (false, false) => "[(F-1)(D+r)+r, F(D+r)+r]",
                    (true, false) => "[F*T+(F-1)*D, F*T+F*D+r]",
                    (false, true) => "[(F-1)(D+r)+r, (F-1)(D+r)+r+D+T]",
                    (true, true) => "[F*T+(F-1)*D, F*T+F*D+T]",
                };
                (min, min + d + pass, formula)
            }
            // Probes every D whatever their verdicts: the F-th failing one ends `fail` after it
            // went out.
            ProbeSchedule::FixedRate => {
                let min = (big_f - 1.0) * d + fail;
                let formula = if silent {
                    "[(F-1)*D+T, F*D+T]"
                } else {
                    "[(F-1)*D+r, F*D+r]"
                };
                (min, min + d, formula)
            }
        };
        Some(ClosedWindow {
            fault: i as u32,
            fault_kind: f.kind.name(),
            class: if silent { "silent" } else { "answered" },
            reason: reason.as_str(),
            formula: formula.to_string(),
            min_s: min,
            max_s: max,
            width_s: max - min,
        })
    }
}

/// How far each trial runs (module docs): the scenario's duration, cut after the last fault's
/// recovery (or detection) window and one more `delay`.
pub fn cut_duration(cfg: &SimConfig) -> SimDuration {
    let settle = |t: SimTime, d: SimDuration| t + d + cfg.check.delay;
    let last = cfg
        .faults
        .iter()
        .map(|f| match f.until {
            Some(u) => settle(u, recovery_window(cfg)).max(settle(f.at, detection_window(cfg))),
            None => settle(f.at, detection_window(cfg)),
        })
        .max();
    match last {
        Some(t) => cfg.duration.min(t.since(SimTime::ZERO)),
        None => cfg.duration,
    }
}

/// The live trials' estimated wall clock, in seconds.
pub fn estimated_wall_s(cfg: &SimConfig, n: u64, time_scale: f64) -> f64 {
    n as f64 * (cut_duration(cfg).as_secs_f64() * time_scale + TRIAL_OVERHEAD_S)
}

/// DES trials for `n` live ones (module docs).
pub fn des_trials(cfg: &SimConfig, n: u64) -> u64 {
    n.max(if cfg.traffic.is_some() {
        MIN_DES_TRIALS_TRAFFIC
    } else {
        MIN_DES_TRIALS
    })
}

/// Latency distributions over trials, as `experiment::trials` collects them.
#[derive(Debug, Clone, Default)]
pub struct Distributions {
    pub trials: u64,
    pub detection: LatencyStats,
    pub failover: LatencyStats,
    pub failback: LatencyStats,
    /// Faults no node acted on, over all trials.
    pub missed: u64,
    /// False failovers outside the faults' visible windows, over all trials.
    pub false_failovers: u64,
}

impl Distributions {
    /// Adds one run's latencies, measured by the report's own `measure`, exactly as
    /// `experiment::trials` measures each DES trial.
    pub fn record(&mut self, cfg: &SimConfig, log: &RunLog) {
        let m = measure(cfg, log);
        self.trials += 1;
        for f in &m.failovers {
            let start = cfg.faults[f.detection.fault as usize].at;
            self.detection
                .record_ns(f.detection.detected.since(start).0);
            if let Some(sw) = f.switched {
                self.failover.record_ns(sw.since(start).0);
            }
        }
        for b in &m.failbacks {
            self.failback.record_ns(b.switched_back.since(b.healthy).0);
        }
        self.missed += m.missed.len() as u64;
        let windows = visible_fault_windows(cfg);
        self.false_failovers += m
            .false_failovers
            .iter()
            .filter(|x| !crate::experiment::trials::inside(&windows, x.at))
            .count() as u64;
    }
}

/// Timer lateness pooled over every timer of every live trial (wall clock).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct PooledLateness {
    pub timers: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl PooledLateness {
    fn of(samples: &mut [Duration]) -> Self {
        if samples.is_empty() {
            return PooledLateness::default();
        }
        samples.sort_unstable();
        let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        PooledLateness {
            timers: samples.len() as u64,
            p50_ms: ms(at(0.5)),
            p99_ms: ms(at(0.99)),
            max_ms: ms(samples[samples.len() - 1]),
        }
    }
}

/// What the live trials produced.
#[derive(Debug, Clone, Default)]
pub struct LiveTrials {
    pub dist: Distributions,
    pub lateness: PooledLateness,
    /// Trials asked for.
    pub requested: u64,
    /// Wall-clock seconds the trials took.
    pub wall_s: f64,
    /// Stopped before all trials finished (the unfinished one is left out whole).
    pub interrupted: bool,
}

/// Runs `n` live trials of `cfg` (already cut) one after the other; `cancel` stops them, and
/// `progress` hears of each finished trial.
pub async fn run_live_trials(
    cfg: &SimConfig,
    pool: &Pool,
    n: u64,
    time_scale: f64,
    seed: u64,
    cancel: &CancellationToken,
    progress: &mut dyn FnMut(u64),
) -> Result<LiveTrials, String> {
    if !(1..=MAX_COMPARE_TRIALS).contains(&n) {
        return Err(format!(
            "--compare takes 1 to {MAX_COMPARE_TRIALS} trials, got {n}"
        ));
    }
    let started = std::time::Instant::now();
    let mut out = LiveTrials {
        requested: n,
        ..LiveTrials::default()
    };
    let mut samples = Vec::new();
    for trial in 0..n {
        if cancel.is_cancelled() {
            out.interrupted = true;
            break;
        }
        let opts = LiveOptions {
            time_scale,
            seed,
            trial,
            record_verdicts: false,
            cancel: cancel.child_token(),
        };
        let run = driver::run(cfg, pool, &opts).await?;
        if run.log.stopped.is_some() {
            out.interrupted = true;
            break;
        }
        out.dist.record(cfg, &run.log);
        samples.extend(run.lateness_samples);
        progress(trial + 1);
    }
    out.lateness = PooledLateness::of(&mut samples);
    out.wall_s = started.elapsed().as_secs_f64();
    Ok(out)
}

/// The DES side: `n` trials of `cfg` (already cut) on every job given; `stop` ends them early.
pub fn run_des_trials(cfg: &SimConfig, n: u64, seed: u64, jobs: usize, stop: &AtomicBool) -> Des {
    let r = run_trials(cfg, TrialsOptions { n, seed, jobs }, stop, &|_| {});
    Des {
        trials: r.trials,
        detection: r.detection_latency_s,
        failover: r.failover_latency_s,
        failback: r.failback_latency_s,
        missed: r.missed_faults,
        false_failovers: r.false_failovers,
        limit: r.limit.is_some(),
    }
}

/// What the DES trials produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Des {
    pub trials: u64,
    pub detection: Summary,
    pub failover: Summary,
    pub failback: Summary,
    pub missed: u64,
    pub false_failovers: u64,
    /// A trial reached one of the engine's limits: the DES side is not valid.
    pub limit: bool,
}

/// Four quantiles of a difference, or of a difference over the window width.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Quantiles {
    pub min: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub max: Option<f64>,
}

impl Quantiles {
    /// `live - des` for each quantile both have.
    fn difference(live: &Summary, des: &Summary) -> Self {
        let d = |a: Option<f64>, b: Option<f64>| Some(a? - b?);
        Quantiles {
            min: d(live.min, des.min),
            p50: d(live.p50, des.p50),
            p90: d(live.p90, des.p90),
            max: d(live.max, des.max),
        }
    }

    fn over(self, width: f64) -> Self {
        let f = |x: Option<f64>| x.map(|x| x / width).filter(|x| x.is_finite());
        Quantiles {
            min: f(self.min),
            p50: f(self.p50),
            p90: f(self.p90),
            max: f(self.max),
        }
    }
}

/// One latency, live and DES.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencyComparison {
    /// `detection`, `failover` or `failback`.
    pub latency: &'static str,
    pub live: Summary,
    pub des: Summary,
    /// Live minus DES, seconds.
    pub difference_s: Quantiles,
    /// The difference over the window's width; absent without a window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fraction_of_window: Option<Quantiles>,
}

/// The whole comparison (`--format json` prints it as is).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompareReport {
    pub name: String,
    pub seed: u64,
    pub time_scale: f64,
    /// Scenario seconds each trial ran (the cut of the module docs).
    pub trial_duration_s: f64,
    pub live_trials: u64,
    pub live_trials_requested: u64,
    /// The standard error of the live p50 as a fraction of the window, were the live latencies
    /// spread uniformly over it (as the random probe phase spreads them): `1 / (2 sqrt(N))`.
    /// A p50 difference within about twice this is what N trials can resolve.
    pub live_p50_standard_error: f64,
    pub des_trials: u64,
    /// Interrupted: fewer live trials than asked (and the DES matched to those).
    pub partial: bool,
    /// Wall-clock seconds of the live trials.
    pub live_wall_s: f64,
    /// Closed-form detection window used as the yardstick; absent when no master fault has
    /// one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<ClosedWindow>,
    /// Timer lateness over every live trial, wall clock.
    pub lateness: PooledLateness,
    /// The same, in scenario milliseconds (wall clock / time scale).
    pub lateness_p50_scenario_ms: f64,
    pub lateness_max_scenario_ms: f64,
    pub latencies: Vec<LatencyComparison>,
    pub live_missed_faults: u64,
    pub des_missed_faults: u64,
    pub live_false_failovers: u64,
    pub des_false_failovers: u64,
}

/// Everything the report needs besides the two sides.
pub struct CompareFacts<'a> {
    pub name: &'a str,
    pub seed: u64,
    pub time_scale: f64,
    /// The cut scenario both sides ran.
    pub cfg: &'a SimConfig,
}

/// Puts the two sides together.
pub fn compare(f: &CompareFacts, live: &LiveTrials, des: &Des) -> CompareReport {
    let window = ClosedWindow::of(f.cfg);
    let width = window.as_ref().map(|w| w.width_s).filter(|w| *w > 0.0);
    let row = |latency, live: &LatencyStats, des: &Summary| {
        let live = live.summary();
        let difference_s = Quantiles::difference(&live, des);
        LatencyComparison {
            latency,
            fraction_of_window: width.map(|w| difference_s.over(w)),
            live,
            des: des.clone(),
            difference_s,
        }
    };
    CompareReport {
        name: f.name.to_string(),
        seed: f.seed,
        time_scale: f.time_scale,
        trial_duration_s: f.cfg.duration.as_secs_f64(),
        live_trials: live.dist.trials,
        live_trials_requested: live.requested,
        live_p50_standard_error: 0.5 / (live.dist.trials.max(1) as f64).sqrt(),
        des_trials: des.trials,
        partial: live.interrupted,
        live_wall_s: live.wall_s,
        window,
        lateness: live.lateness,
        lateness_p50_scenario_ms: live.lateness.p50_ms / f.time_scale,
        lateness_max_scenario_ms: live.lateness.max_ms / f.time_scale,
        latencies: vec![
            row("detection", &live.dist.detection, &des.detection),
            row("failover", &live.dist.failover, &des.failover),
            row("failback", &live.dist.failback, &des.failback),
        ],
        live_missed_faults: live.dist.missed,
        des_missed_faults: des.missed,
        live_false_failovers: live.dist.false_failovers,
        des_false_failovers: des.false_failovers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(path: &str) -> SimConfig {
        crate::scenario::load(Some(std::path::Path::new(path)), false)
            .unwrap()
            .sim
    }

    #[test]
    fn windows_follow_the_closed_forms() {
        // F = 3, D = 5, T = 3, r = 1 ms in each.
        let w = ClosedWindow::of(&scenario("scenarios/crash.toml")).unwrap();
        assert_eq!((w.class, w.reason), ("answered", "CONNECT_REFUSED"));
        assert!((w.min_s - 10.003).abs() < 1e-9 && (w.max_s - 15.004).abs() < 1e-9);
        let w = ClosedWindow::of(&scenario("scenarios/hang-http.toml")).unwrap();
        assert_eq!((w.class, w.reason), ("silent", "RECV_RESPONSE_TIMEOUT"));
        assert!((w.min_s - 19.0).abs() < 1e-9 && (w.max_s - 24.001).abs() < 1e-9);
        let w = ClosedWindow::of(&scenario("scenarios/host-down.toml")).unwrap();
        assert_eq!(w.class, "silent");
        let w = ClosedWindow::of(&scenario("scenarios/http-503.toml")).unwrap();
        assert_eq!((w.class, w.reason), ("answered", "RESPONSE_MISMATCH"));
        // UDP_CONNECT passes at the timeout: the window is D + T wide.
        let w = ClosedWindow::of(&scenario("scenarios/udp-pool.toml")).unwrap();
        assert!((w.min_s - 10.003).abs() < 1e-9 && (w.max_s - 18.003).abs() < 1e-9);
        // A hang under a TCP check is not seen: no window.
        assert!(ClosedWindow::of(&scenario("scenarios/hang-tcp.toml")).is_none());
    }

    #[test]
    fn trials_are_cut_after_the_last_recovery() {
        let cfg = scenario("scenarios/crash.toml");
        // 180 s + (3 + 3 x 8) s + 5 s.
        assert_eq!(cut_duration(&cfg), SimDuration::from_secs(212));
        let mut none = cfg.clone();
        none.faults.clear();
        assert_eq!(cut_duration(&none), cfg.duration);
    }
}
