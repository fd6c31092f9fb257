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

use super::{load_scenario, to_json, warning_lines, Outcome};
use crate::live::driver::{self, LiveFacts, LiveOptions};
use crate::report::run::{analyse, RunFacts};
use crate::report::text;
use crate::scenario::{CheckOverrides, Scenario};
use std::path::Path;
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

/// `elbsim live [SCENARIO]`.
pub fn live(path: Option<&Path>, args: LiveArgs) -> Outcome {
    let s = match load_scenario(path, args.strict, args.check) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let time_scale = args.time_scale.unwrap_or_else(|| default_time_scale(&s));
    if !(time_scale.is_finite() && time_scale > 0.0 && time_scale <= 10.0) {
        return Outcome {
            stdout: String::new(),
            stderr: format!(
                "error: --time-scale must be above 0 and at most 10, got {time_scale}\n"
            ),
            exit: 2,
        };
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
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return Outcome {
                stdout: String::new(),
                stderr: format!("error: cannot start the async runtime: {e}\n"),
                exit: 1,
            }
        }
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
