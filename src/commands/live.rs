//! `elbsim live [SCENARIO]`: the scenario in real time on 127.0.0.1, with the same report as
//! `elbsim run`.
//!
//! The library's live driver (`crate::live::driver`) runs real backends, real health checks and
//! one `model::LbNode` per LB node, and writes the DES's log type; this command loads the
//! scenario, picks the time scale, runs the driver on a tokio runtime, and renders the log with
//! `report::run::analyse` and `report::text`, exactly as `run` does, plus what only a live run
//! has: the time scale, the wall-clock duration and how late the driver's timers fired.
//!
//! Default time scale: the scenario's duration in about 10 s of wall clock, but never so fast
//! that `delay` or `timeout` drops below 20 ms of wall clock (below that, scheduling delays of
//! a loaded machine are a sizeable part of them), and never slower than real time.
//!
//! `--compare N` ([`live_compare`]) runs N live trials and the DES's trials of the same
//! scenario instead, and prints their latency distributions side by side
//! (`crate::live::compare`). It uses the same default time scale; each trial is cut after the
//! last fault's recovery, so a trial of `scenarios/crash.toml` takes about 3.5 s.

use super::{load_scenario, to_json, warning_lines, Outcome};
use crate::live::compare::{self, CompareFacts, CompareReport};
use crate::live::driver::{self, LiveFacts, LiveOptions};
use crate::report::run::{analyse, RunFacts};
use crate::report::text;
use crate::scenario::{CheckOverrides, Scenario};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::Ordering;
use tokio_util::sync::CancellationToken;

/// Wall-clock length the default time scale aims at.
const TARGET_WALL_S: f64 = 10.0;
/// Shortest wall-clock `delay` or `timeout` the default scale allows.
const MIN_SCALED_CHECK_S: f64 = 0.02;

/// Options of `elbsim live` besides the scenario.
#[derive(Debug, Clone, Copy, Default)]
pub struct LiveArgs {
    pub seed: Option<u64>,
    /// Wall-clock seconds per scenario second; `None`: the default (module docs).
    pub time_scale: Option<f64>,
    pub json: bool,
    pub timeline: bool,
    pub strict: bool,
    pub check: CheckOverrides,
    /// `--compare N`: N live trials against the DES instead of one run.
    pub compare: Option<u64>,
}

/// The default time scale for a scenario (module docs).
pub fn default_time_scale(s: &Scenario) -> f64 {
    let duration = s.sim.duration.as_secs_f64().max(1e-3);
    let shortest = s.sim.check.delay.min(s.sim.check.timeout).as_secs_f64();
    let floor = if shortest > 0.0 {
        MIN_SCALED_CHECK_S / shortest
    } else {
        0.0
    };
    round3((TARGET_WALL_S / duration).max(floor).min(1.0))
}

/// Three significant digits, so the scale reads (and is retyped) as 0.0167, not 0.01666...
fn round3(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return x;
    }
    let digits = 2 - x.log10().floor() as i32;
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

fn live_lines(f: &LiveFacts) -> Vec<String> {
    let scenario_ms = |ms: f64| ms / f.time_scale;
    let mut lines = vec![format!(
        "live: 127.0.0.1, time scale {} ({:.2}s of wall clock); timer lateness over {} timers p50 {} ms, max {} ms of wall clock = {:.0} ms, {:.0} ms of scenario time",
        f.time_scale,
        f.wall_s,
        f.lateness.timers,
        f.lateness.p50_ms,
        f.lateness.max_ms,
        scenario_ms(f.lateness.p50_ms),
        scenario_ms(f.lateness.max_ms),
    )];
    for m in &f.members {
        let check = if m.check_addr != m.addr {
            format!(", checked on {}", m.check_addr)
        } else {
            String::new()
        };
        lines.push(format!("live: {} backend on {}{check}", m.role, m.addr));
    }
    if let Some(t) = &f.traffic {
        // The counts are in the report's `traffic` section; what only a live run has is how
        // they were thinned, so that they can be compared with the simulator's.
        lines.push(format!(
            "live traffic: clients ran {:.0}% of the scenario's arrivals (thinned to {} new connections per wall-clock second: the counts in `traffic` compare with the simulator's times that fraction){}",
            t.sampled * 100.0,
            crate::live::traffic::MAX_WALL_ARRIVALS_PER_S,
            if t.skipped > 0 {
                format!(", {} more skipped at the cap of {} open clients", t.skipped, crate::live::traffic::MAX_CLIENTS)
            } else {
                String::new()
            },
        ));
        if t.requested_spacing_s > 0.0 {
            let widened = t.request_spacing_s > t.requested_spacing_s * 1.000_001;
            lines.push(format!(
                "live traffic: requests every {:.3}s of scenario time{}",
                t.request_spacing_s,
                if widened {
                    format!(
                        " (the scenario asks {:.3}s; at least {} ms of wall clock apart)",
                        t.requested_spacing_s,
                        crate::live::traffic::MIN_WALL_REQUEST_SPACING.as_millis()
                    )
                } else {
                    String::new()
                }
            ));
        }
    }
    for n in &f.notes {
        lines.push(format!("live: {n}"));
    }
    lines
}

fn usage(msg: String) -> Outcome {
    Outcome {
        stdout: String::new(),
        stderr: format!("error: {msg}\n"),
        exit: 2,
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Outcome> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Outcome {
            stdout: String::new(),
            stderr: format!("error: cannot start the async runtime: {e}\n"),
            exit: 1,
        })
}

/// `elbsim live [SCENARIO]` (and `--compare N`).
pub fn live(path: Option<&Path>, args: LiveArgs) -> Outcome {
    let s = match load_scenario(path, args.strict, args.check) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let time_scale = args.time_scale.unwrap_or_else(|| default_time_scale(&s));
    if !(time_scale.is_finite() && time_scale > 0.0 && time_scale <= 10.0) {
        return usage(format!(
            "--time-scale must be above 0 and at most 10, got {time_scale}"
        ));
    }
    if let Some(n) = args.compare {
        return live_compare(&s, n, time_scale, args);
    }
    let seed = super::run::effective_seed(args.seed, &s);
    let mut notes = warning_lines(&s);
    let wall_s = s.sim.duration.as_secs_f64() * time_scale;
    if wall_s > 60.0 {
        // Not an error: the run is bounded, only long. Said up front, as nothing prints until
        // the end.
        notes.push_str(&format!(
            "note: this live run takes {wall_s:.0} s of wall clock (duration x time scale {time_scale}); \
             a smaller --time-scale shortens it, at the price of coarser timing\n"
        ));
        eprint!("{notes}");
        notes.clear();
    }
    let runtime = match runtime() {
        Ok(r) => r,
        Err(o) => return o,
    };
    let cancel = CancellationToken::new();
    let opts = LiveOptions {
        time_scale,
        seed,
        trial: 0,
        record_verdicts: args.timeline,
        cancel: cancel.clone(),
    };
    let result = runtime.block_on(async {
        let run = driver::run(&s.sim, &s.pool, &opts);
        tokio::pin!(run);
        loop {
            tokio::select! {
                r = &mut run => break r,
                // Ctrl-C: the driver stops, reports what it saw, marked interrupted.
                Ok(()) = tokio::signal::ctrl_c(), if !cancel.is_cancelled() => cancel.cancel(),
            }
        }
    });
    let run = match result {
        Ok(r) => r,
        Err(e) => {
            return Outcome {
                stdout: String::new(),
                stderr: format!("{notes}error: {e}\n"),
                exit: 1,
            }
        }
    };
    // Without live clients (a UDP pool, say) the report reads the scenario without traffic, so
    // that no section claims counts nobody measured.
    let mut cfg = s.sim.clone();
    if run.log.traffic.is_none() {
        cfg.traffic = None;
    }
    let codes = s.pool.healthmonitor.expected_codes.to_string();
    let facts = RunFacts {
        name: &s.name,
        seed,
        cfg: &cfg,
        expected_codes: Some(&codes),
    };
    let report = analyse(&facts, &run.log, args.timeline);
    let interrupted = run.log.stopped.is_some();
    let reproduce = format!(
        "elbsim live{}{}{} --seed {seed} --time-scale {time_scale}",
        if s.origin.is_empty() { "" } else { " " },
        s.origin,
        super::run::override_flags(&args.check)
    );
    let stdout = if args.json {
        let mut v = serde_json::to_value(&report).unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            obj.insert(
                "live".into(),
                serde_json::to_value(&run.facts).unwrap_or_default(),
            );
            obj.insert(
                "warnings".into(),
                serde_json::Value::Array(
                    s.warnings
                        .iter()
                        .map(|w| serde_json::Value::String(w.to_string()))
                        .collect(),
                ),
            );
        }
        to_json(&v)
    } else {
        let mut context = super::run::context_lines(&s);
        context.extend(live_lines(&run.facts));
        text::run_report(&report, &context, &reproduce).replacen("elbsim run:", "elbsim live:", 1)
    };
    Outcome {
        stdout,
        stderr: notes,
        exit: if interrupted {
            super::EXIT_INTERRUPTED
        } else {
            0
        },
    }
}

/// `elbsim live SCENARIO --compare N`: N live trials, then the DES's, side by side.
fn live_compare(s: &Scenario, n: u64, time_scale: f64, args: LiveArgs) -> Outcome {
    if !(1..=compare::MAX_COMPARE_TRIALS).contains(&n) {
        return usage(format!(
            "--compare takes 1 to {} trials, got {n}",
            compare::MAX_COMPARE_TRIALS
        ));
    }
    let mut cfg = s.sim.clone();
    cfg.duration = compare::cut_duration(&s.sim);
    let estimate = compare::estimated_wall_s(&cfg, n, time_scale);
    if estimate > compare::MAX_COMPARE_WALL_S {
        return usage(format!(
            "{n} live trials of {:.0} s of scenario time at time scale {time_scale} would take about {:.0} min of wall clock, over the {:.0} min cap: lower N or --time-scale",
            cfg.duration.as_secs_f64(),
            estimate / 60.0,
            compare::MAX_COMPARE_WALL_S / 60.0
        ));
    }
    let seed = super::run::effective_seed(args.seed, s);
    let mut stderr = warning_lines(s);
    // Said at once: nothing else prints until the end.
    eprintln!(
        "{stderr}elbsim live --compare: {n} live trial{} of {:.0} s of scenario time at time scale {time_scale}, about {:.0} s of wall clock, then the DES",
        if n == 1 { "" } else { "s" },
        cfg.duration.as_secs_f64(),
        estimate
    );
    stderr.clear();
    let runtime = match runtime() {
        Ok(r) => r,
        Err(o) => return o,
    };
    let cancel = CancellationToken::new();
    // Progress on a terminal only: a log file gets the start line and the report.
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut progress = |done: u64| {
        if tty {
            eprint!("\relbsim live --compare: {done}/{n} live trials");
            if done == n {
                eprintln!();
            }
        }
    };
    let live = runtime.block_on(async {
        let trials =
            compare::run_live_trials(&cfg, &s.pool, n, time_scale, seed, &cancel, &mut progress);
        tokio::pin!(trials);
        let mut poll = tokio::time::interval(std::time::Duration::from_millis(50));
        loop {
            tokio::select! {
                r = &mut trials => break r,
                // Ctrl-C, seen by tokio or by the binary's handler: the trial under way stops
                // and is left out; the DES then matches the trials that finished.
                Ok(()) = tokio::signal::ctrl_c(), if !cancel.is_cancelled() => cancel.cancel(),
                _ = poll.tick(), if !cancel.is_cancelled() => {
                    if super::INTERRUPTED.load(Ordering::Relaxed) {
                        cancel.cancel();
                    }
                }
            }
        }
    });
    drop(runtime);
    let live = match live {
        Ok(l) => l,
        Err(e) => {
            return Outcome {
                stdout: String::new(),
                stderr: format!("error: {e}\n"),
                exit: 1,
            }
        }
    };
    let des_n = compare::des_trials(&cfg, live.dist.trials.max(1));
    let jobs = std::thread::available_parallelism().map_or(1, |j| j.get());
    // A Ctrl-C during the live trials also set the flag: the DES then runs its trials anyway
    // (they take a moment), so the partial report still has both sides. A Ctrl-C now stops it.
    super::INTERRUPTED.store(false, Ordering::Relaxed);
    let des = compare::run_des_trials(&cfg, des_n, seed, jobs, &super::INTERRUPTED);
    if des.limit {
        return Outcome {
            stdout: String::new(),
            stderr: "error: a DES trial reached one of the engine's limits (see `elbsim run` on this scenario)\n".into(),
            exit: 1,
        };
    }
    let report = compare::compare(
        &CompareFacts {
            name: &s.name,
            seed,
            time_scale,
            cfg: &cfg,
        },
        &live,
        &des,
    );
    let partial = report.partial || des.trials < des_n;
    if partial {
        let _ = writeln!(
            stderr,
            "elbsim live --compare: interrupted (Ctrl-C): {} of {n} live trials and {} of {des_n} DES trials finished; the report covers those",
            report.live_trials, des.trials
        );
    }
    let reproduce = format!(
        "elbsim live{}{}{} --compare {n} --seed {seed} --time-scale {time_scale}",
        if s.origin.is_empty() { "" } else { " " },
        s.origin,
        super::run::override_flags(&args.check)
    );
    Outcome {
        stdout: if args.json {
            to_json(&report)
        } else {
            render_compare(&report, &reproduce)
        },
        stderr,
        exit: if partial { super::EXIT_INTERRUPTED } else { 0 },
    }
}

/// Seconds with three decimals and a unit, or `-`.
fn secs(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{x:.3}s"))
}

/// A signed number, or `-`.
fn signed(x: Option<f64>, unit: &str) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{x:+.3}{unit}"))
}

/// The `--compare` report as text.
pub fn render_compare(r: &CompareReport, reproduce: &str) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "elbsim live --compare: {}", r.name);
    let _ = writeln!(
        o,
        "seed {} | live: {} of {} trials at time scale {} ({:.1}s of wall clock) | DES: {} trials | each trial {:.0}s of scenario time",
        r.seed,
        r.live_trials,
        r.live_trials_requested,
        r.time_scale,
        r.live_wall_s,
        r.des_trials,
        r.trial_duration_s
    );
    match &r.window {
        Some(w) => {
            let _ = writeln!(
                o,
                "closed-form detection window of the master's {} ({} class: each failing probe {}, {}): {} = [{:.3}s, {:.3}s], width {:.3}s",
                w.fault_kind,
                w.class,
                if w.class == "silent" {
                    "ends at the timeout"
                } else {
                    "is answered after one round trip"
                },
                w.reason,
                w.formula,
                w.min_s,
                w.max_s,
                w.width_s
            );
        }
        None => {
            let _ = writeln!(
                o,
                "closed-form detection window: none (no fault on the master that every probe sees): differences in seconds only"
            );
        }
    }
    if r.window.is_some() {
        let _ = writeln!(
            o,
            "sampling: with {} live trials, the live p50 itself is uncertain by about {:.3} of the window (1 standard error, latencies uniform over it)",
            r.live_trials, r.live_p50_standard_error
        );
    }
    let l = &r.lateness;
    let _ = writeln!(
        o,
        "timer lateness over {} timers: p50 {} ms, p99 {} ms, max {} ms of wall clock = {:.0} ms (p50), {:.0} ms (max) of scenario time",
        l.timers, l.p50_ms, l.p99_ms, l.max_ms, r.lateness_p50_scenario_ms, r.lateness_max_scenario_ms
    );
    for c in &r.latencies {
        let f = c.fraction_of_window;
        let rows: Vec<Vec<String>> = [
            (
                "min",
                c.live.min,
                c.des.min,
                c.difference_s.min,
                f.and_then(|f| f.min),
            ),
            (
                "p50",
                c.live.p50,
                c.des.p50,
                c.difference_s.p50,
                f.and_then(|f| f.p50),
            ),
            (
                "p90",
                c.live.p90,
                c.des.p90,
                c.difference_s.p90,
                f.and_then(|f| f.p90),
            ),
            (
                "max",
                c.live.max,
                c.des.max,
                c.difference_s.max,
                f.and_then(|f| f.max),
            ),
        ]
        .into_iter()
        .map(|(q, live, des, d, frac)| {
            vec![
                q.to_string(),
                secs(live),
                secs(des),
                signed(d, "s"),
                signed(frac, ""),
            ]
        })
        .collect();
        let mut all = vec![vec![
            "count".to_string(),
            c.live.count.to_string(),
            c.des.count.to_string(),
            String::new(),
            String::new(),
        ]];
        all.extend(rows);
        let _ = writeln!(o, "\n{} latency", c.latency);
        o.push_str(&text::table(
            &["", "live", "DES", "live - DES", "/ window width"],
            &all,
        ));
    }
    let _ = writeln!(
        o,
        "\nmissed faults: live {}, DES {}; false failovers: live {}, DES {}",
        r.live_missed_faults, r.des_missed_faults, r.live_false_failovers, r.des_false_failovers
    );
    let _ = writeln!(o, "\nreproduce: {reproduce}");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_scales_round_to_three_digits() {
        assert_eq!(round3(10.0 / 600.0), 0.0167);
        assert_eq!(round3(0.02), 0.02);
        assert_eq!(round3(1.0), 1.0);
        assert_eq!(round3(0.123456), 0.123);
    }

    #[test]
    fn default_scale_keeps_checks_above_20_ms() {
        let s = crate::scenario::load(None, false).unwrap();
        // The bundled example: 600 s with delay 1 s: 10/600 would make delay 16.7 ms.
        assert_eq!(default_time_scale(&s), 0.02);
    }
}
