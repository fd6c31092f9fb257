//! `elbsim trials`: the distribution of failover timing over many randomized runs.

use super::{to_json, Outcome};
use crate::experiment::stats::Summary;
use crate::experiment::trials::{run_trials, TrialsOptions, TrialsReport};
use crate::report::text::{s3, table};
use crate::scenario;
use std::fmt::Write;
use std::path::Path;

/// Options of `elbsim trials` besides the scenario.
#[derive(Debug, Clone, Copy)]
pub struct TrialsArgs {
    pub n: u64,
    pub seed: Option<u64>,
    pub jobs: usize,
    pub json: bool,
    pub strict: bool,
    /// Health-check values overriding the pool body's.
    pub check: scenario::CheckOverrides,
}

/// One row of the latency table.
fn row(name: &str, s: &Summary) -> Vec<String> {
    let f = |x: Option<f64>| x.map_or_else(|| "-".to_string(), s3);
    vec![
        name.to_string(),
        s.count.to_string(),
        f(s.min),
        f(s.p50),
        f(s.p90),
        f(s.p99),
        f(s.p999),
        f(s.max),
        f(s.mean),
    ]
}

/// The text form of a trials report. The number of worker threads is not in it (it goes to
/// standard error): the report is byte-identical for any `--jobs`.
pub fn render(r: &TrialsReport, name: &str, reproduce: &str) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "elbsim trials: {name}");
    let _ = writeln!(
        o,
        "{} trials{} | seed {} | {} events",
        r.trials,
        if r.partial {
            format!(" of {} (PARTIAL: interrupted)", r.trials_requested)
        } else {
            String::new()
        },
        r.seed,
        r.events
    );
    o.push('\n');
    let header = [
        "latency", "count", "min", "p50", "p90", "p99", "p99.9", "max", "mean",
    ];
    let mut rows = vec![
        row("detection", &r.detection_latency_s),
        row("failover", &r.failover_latency_s),
        row("failback", &r.failback_latency_s),
    ];
    if let Some(p) = &r.persisted_failback_latency_s {
        rows.push(row("persisted back", p));
    }
    if r.outage_latency_s.count > 0 {
        rows.push(row("outage", &r.outage_latency_s));
    }
    o.push_str(&table(&header, &rows));
    let _ = writeln!(
        o,
        "\nfalse failovers: {} in {:.1} fault-free hours = {:.4} per hour ({:.3} per day)",
        r.false_failovers,
        r.fault_free_hours,
        r.false_failovers_per_hour,
        r.false_failovers_per_hour * 24.0
    );
    let _ = writeln!(
        o,
        "missed faults: {} of {} (fault, LB node) pairs{}",
        r.missed_faults,
        r.fault_node_pairs,
        r.missed_fault_rate
            .map_or(String::new(), |x| format!(" = {:.2}%", x * 100.0))
    );
    if r.censored_faults > 0 {
        let _ = writeln!(
            o,
            "censored faults: {} (undetected, detection window past the end of the run; not in the missed rate)",
            r.censored_faults
        );
    }
    if r.needless_failovers > 0 {
        let _ = writeln!(
            o,
            "needless failovers: {} (clients unharmed by the fault; see `elbsim run` for the rule)",
            r.needless_failovers
        );
    }
    if let Some(t) = &r.traffic {
        o.push_str("\ntraffic per trial\n");
        let rows: Vec<Vec<String>> = t
            .counters
            .iter()
            .map(|(k, c)| {
                vec![
                    k.to_string(),
                    format!("{:.2}", c.mean),
                    c.p99.to_string(),
                    c.max.to_string(),
                ]
            })
            .collect();
        o.push_str(&table(&["counter", "mean", "p99", "max"], &rows));
        o.push_str(
            "\nunavailability clients saw (first to last failure), per fault that had one\n",
        );
        o.push_str(&table(&header, &[row("unavailable", &t.unavailability_s)]));
    }
    let _ = writeln!(o, "\nreproduce: {reproduce}");
    o
}

/// `elbsim trials SCENARIO -n N`. Ctrl-C ([`super::INTERRUPTED`]) stops the batch, even inside a
/// long trial: the trials finished are reported, marked partial, with exit 130.
pub fn trials(path: Option<&Path>, args: TrialsArgs, progress: &(dyn Fn(u64) + Sync)) -> Outcome {
    let s = match super::load_scenario(path, args.strict, args.check) {
        Ok(s) => s,
        Err(failed) => return failed,
    };
    let seed = super::run::effective_seed(args.seed, &s);
    let report = run_trials(
        &s.sim,
        TrialsOptions {
            n: args.n,
            seed,
            jobs: args.jobs,
        },
        &super::INTERRUPTED,
        progress,
    );
    let mut stderr = super::warning_lines(&s);
    if let Some(limit) = report.limit {
        return super::limit_reached(&s, limit, stderr);
    }
    let _ = writeln!(
        stderr,
        "elbsim trials: {} job{}",
        args.jobs,
        if args.jobs == 1 { "" } else { "s" }
    );
    if report.partial {
        let _ = writeln!(
            stderr,
            "elbsim trials: interrupted (Ctrl-C): {} of {} trials finished; the report covers those",
            report.trials, report.trials_requested
        );
    }
    let reproduce = format!(
        "elbsim trials {}{} -n {} --seed {seed}",
        s.origin,
        super::run::override_flags(&args.check),
        args.n
    )
    .replace("  ", " ");
    Outcome {
        stdout: if args.json {
            to_json(&report)
        } else {
            render(&report, &s.name, &reproduce)
        },
        stderr,
        exit: if report.partial {
            super::EXIT_INTERRUPTED
        } else {
            0
        },
    }
}
