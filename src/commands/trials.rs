//! `elbsim trials`: the distribution of failover timing over many randomized runs.

use super::{to_json, Outcome};
use crate::experiment::ci::{self, Interval, QUANTILES};
use crate::experiment::shard::{self, Shard, ShardData, ShardFile};
use crate::experiment::stats::Summary;
use crate::experiment::trials::{
    report, run_range_with, run_trials_observed, Accum, TrialsOptions, TrialsReport,
};
use crate::experiment::windowed::{self, CounterBounds, Plan};
use crate::report::assert::{self as assertions, Assertion};
use crate::report::baseline;
use crate::report::export::{self, CsvRows, HistogramCollector, HistogramOf};
use crate::report::text::{s3, table};
use crate::report::warning::Warning;
use crate::scenario;
use crate::sim::engine::StartPhase;
use std::fmt::Write;
use std::path::Path;

/// Options of `elbsim trials` besides the scenario.
#[derive(Debug, Clone, Default)]
pub struct TrialsArgs {
    pub n: u64,
    pub seed: Option<u64>,
    pub jobs: usize,
    pub json: bool,
    /// `--format markdown`: the text report as Markdown.
    pub markdown: bool,
    pub strict: bool,
    /// Health-check values overriding the pool body's.
    pub check: scenario::CheckOverrides,
    /// `--csv`: one row per trial and (fault, LB node) pair comes back in the outcome.
    pub csv: bool,
    /// `--histogram`: this latency's distribution in HdrHistogram's text format.
    pub histogram: Option<HistogramOf>,
    /// `--assert`: thresholds; any failing one makes the exit code [`EXIT_ASSERTION_FAILED`].
    pub asserts: Vec<Assertion>,
    /// `--baseline NAME`: compare the percentiles with this saved report.
    pub baseline: Option<String>,
    /// `--save-baseline`: the JSON report comes back as the `--save-baseline` file.
    pub save_baseline: bool,
    /// `--plot`: CDFs of detection, failover and failback latency as SVG.
    pub plot: bool,
    /// `--html`: one self-contained page with the report and the plots.
    pub html: bool,
    /// `--windowed`: simulate a window around the faults (`crate::experiment::windowed`).
    pub windowed: bool,
    /// `--exact`, `--sample`, or the choice by the scenario (see [`crate::experiment::exact`]).
    pub mode: crate::experiment::exact::Mode,
}

/// The exit code when the report is complete but an `--assert` fails.
pub const EXIT_ASSERTION_FAILED: u8 = 3;

/// What `elbsim trials` produced: the report, and each extra file by the flag that asked.
pub type TrialsOutcome = super::WithFiles;

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

/// An interval as text: `[lo, hi]` in seconds, `-` for a side the sample is too small for.
fn ci_cell(i: &Interval) -> String {
    let f = |x: Option<f64>| x.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"));
    format!("[{}, {}]", f(i[0]), f(i[1]))
}

/// The latency summaries of a report with their JSON keys and text labels, in report order.
pub fn latency_summaries(r: &TrialsReport) -> Vec<(&'static str, &'static str, &Summary)> {
    let mut v = vec![
        ("detection_latency_s", "detection", &r.detection_latency_s),
        ("failover_latency_s", "failover", &r.failover_latency_s),
        ("failback_latency_s", "failback", &r.failback_latency_s),
    ];
    if let Some(p) = &r.persisted_failback_latency_s {
        v.push(("persisted_failback_latency_s", "persisted back", p));
    }
    if r.outage_latency_s.count > 0 {
        v.push(("outage_latency_s", "outage", &r.outage_latency_s));
    }
    if let Some(t) = &r.traffic {
        v.push((
            "traffic.unavailability_s",
            "unavailable",
            &t.unavailability_s,
        ));
    }
    v
}

/// Warnings about percentiles the sample is too small to bound (rule `small-sample`): a p99.9
/// from 500 samples is little more than the maximum, and says so.
pub fn sample_warnings(r: &TrialsReport) -> Vec<Warning> {
    let mut out = Vec::new();
    for (key, _, s) in latency_summaries(r) {
        if s.count == 0 {
            continue;
        }
        for (q_key, q) in QUANTILES {
            let Some([lo, hi]) = s.ci(q_key) else {
                continue;
            };
            let missing = match (lo, hi) {
                (Some(_), Some(_)) => continue,
                (None, None) => "no 95% confidence bound on either side",
                (None, Some(_)) => "no lower 95% confidence bound",
                (Some(_), None) => "no upper 95% confidence bound",
            };
            out.push(Warning {
                path: Some(format!("{key}.{q_key}")),
                rule: Some("small-sample".to_string()),
                message: format!(
                    "{} from {} samples has {missing}; it needs at least {} samples",
                    q_label(q_key),
                    s.count,
                    ci::samples_for_both_bounds(q, ci::LEVEL)
                ),
                line: None,
            });
        }
    }
    out
}

/// A percentage for an interval bound: two decimals, or two significant digits below 0.01%, so
/// the upper bound of 0 missed in 100000 reads 0.0038%, not 0.00%.
fn pct(rate: f64) -> String {
    let p = rate * 100.0;
    if p == 0.0 || p >= 0.01 {
        format!("{p:.2}")
    } else {
        let digits = (1 - p.log10().floor() as i32).max(2) as usize;
        format!("{p:.digits$}")
    }
}

/// `p999` as people write it: `p99.9`.
fn q_label(key: &str) -> &str {
    if key == "p999" {
        "p99.9"
    } else {
        key
    }
}

/// The JSON form of a trials report: the report's keys, then every warning as an object.
pub fn json_value(r: &TrialsReport, warnings: &[Warning]) -> serde_json::Value {
    #[derive(serde::Serialize)]
    struct WithWarnings<'a> {
        #[serde(flatten)]
        report: &'a TrialsReport,
        warnings: &'a [Warning],
    }
    // Our own report types always serialize (string keys, finite floats).
    serde_json::to_value(WithWarnings {
        report: r,
        warnings,
    })
    .unwrap_or_default()
}

/// The 95% intervals of the percentiles, one row per distribution with samples.
fn ci_table(latencies: &[(&str, &str, &Summary)]) -> String {
    let rows: Vec<Vec<String>> = latencies
        .iter()
        .filter(|(_, _, s)| s.count > 0)
        .map(|(_, label, s)| {
            let mut r = vec![format!("{label} 95% CI")];
            r.extend(
                QUANTILES
                    .iter()
                    .map(|(k, _)| s.ci(k).map_or_else(|| "-".to_string(), |i| ci_cell(&i))),
            );
            r
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    "\n".to_string() + &table(&["interval", "p50", "p90", "p99", "p99.9"], &rows)
}

/// The text form of a trials report. The number of worker threads is not in it (it goes to
/// standard error): the report is byte-identical for any `--jobs`.
pub fn render(r: &TrialsReport, name: &str, reproduce: &str) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "elbsim trials: {name}");
    if r.method == Some("exact") {
        return render_exact(r, o, reproduce);
    }
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
        // "samples", not "count": one per (fault, LB node) event, so not the number of trials.
        "latency", "samples", "min", "p50", "p90", "p99", "p99.9", "max", "mean",
    ];
    let latencies: Vec<_> = latency_summaries(r)
        .into_iter()
        .filter(|(k, _, _)| *k != "traffic.unavailability_s")
        .collect();
    let rows: Vec<Vec<String>> = latencies.iter().map(|(_, l, s)| row(l, s)).collect();
    o.push_str(&table(&header, &rows));
    o.push_str(&ci_table(&latencies));
    let _ = writeln!(
        o,
        "\nfalse failovers: {} in {:.1} fault-free hours = {:.4} per hour ({:.3} per day){}",
        r.false_failovers,
        r.fault_free_hours,
        r.false_failovers_per_hour,
        r.false_failovers_per_hour * 24.0,
        r.false_failovers_per_hour_ci
            .map_or(String::new(), |[lo, hi]| format!(
                ", 95% CI [{:.3}, {:.3}] per day",
                lo * 24.0,
                hi * 24.0
            ))
    );
    let _ = writeln!(
        o,
        "missed faults: {} of {} (fault, LB node) pairs{}{}",
        r.missed_faults,
        r.fault_node_pairs,
        r.missed_fault_rate
            .map_or(String::new(), |x| format!(" = {:.2}%", x * 100.0)),
        r.missed_fault_rate_ci
            .map_or(String::new(), |[lo, hi]| format!(
                ", 95% CI [{}%, {}%]",
                pct(lo),
                pct(hi)
            ))
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
    o.push('\n');
    o.push_str(&crate::report::qos::text(&r.qos));
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
        o.push_str(&ci_table(&[("", "unavailable", &t.unavailability_s)]));
    }
    let warnings = sample_warnings(r);
    if !warnings.is_empty() {
        o.push('\n');
        for w in &warnings {
            let _ = writeln!(o, "{}", w.line_text());
        }
    }
    let _ = writeln!(o, "\nreproduce: {reproduce}");
    o
}

/// Where a trials command's figures come from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// Run every trial and print the report.
    Simulate,
    /// Run shard `shard` of the trials and print its shard file; `args` are the command's
    /// arguments for the file ([`shard::canonical_args`]).
    Shard { shard: Shard, args: &'a [String] },
    /// Print the report of the merged shards' accumulator; `fingerprint` is the shards'
    /// scenario's, checked against the scenario loaded now.
    Merged {
        acc: &'a Accum,
        fingerprint: &'a str,
    },
}

/// The fingerprint of a loaded scenario, for shard files.
pub fn scenario_fingerprint(s: &scenario::Scenario) -> String {
    // `--step-every-probe` changes how the engine works, never what it computes: shards run
    // with and without it merge (and `merge` rebuilds the command without it).
    let sim = crate::sim::config::SimConfig {
        step_every_probe: false,
        ..s.sim.clone()
    };
    shard::fingerprint(&format!("{}\n{:?}", s.name, sim))
}

/// `elbsim trials SCENARIO -n N`. Ctrl-C ([`super::INTERRUPTED`]) stops the batch, even inside a
/// long trial: the trials finished are reported, marked partial, with exit 130.
pub fn trials(
    path: Option<&Path>,
    args: &TrialsArgs,
    progress: &(dyn Fn(u64) + Sync),
) -> TrialsOutcome {
    trials_from(path, args, progress, Source::Simulate)
}

/// [`trials`], with the figures from `source`. A shard runs no per-trial export (`--csv`,
/// `--histogram`, `--plot`, `--html`): the command line refuses those with `--shard`.
pub fn trials_from(
    path: Option<&Path>,
    args: &TrialsArgs,
    progress: &(dyn Fn(u64) + Sync),
    source: Source,
) -> TrialsOutcome {
    let mut s = match super::load_scenario(path, args.strict, args.check) {
        Ok(s) => s,
        Err(failed) => return failed.into(),
    };
    // --windowed: the trials run on the scenario cut to its window, from an equilibrium start.
    let mut phase = StartPhase::Uniform;
    let mut window_note = None;
    if args.windowed {
        window_note = Some(match windowed::plan(&s.sim, CounterBounds::of(&s.sim)) {
            Plan::Windowed(w) => {
                let note = format!(
                    "elbsim trials: windowed: each trial simulates {:.1} s of the {:.1} s run \
                     ({:.1} s of warm-up before the first fault, to {:.1} s after the last); false \
                     failovers are counted over the windows' fault-free time",
                    w.cfg.duration.as_secs_f64(),
                    s.sim.duration.as_secs_f64(),
                    w.warm_up.as_secs_f64(),
                    w.tail.as_secs_f64()
                );
                s.sim = w.cfg;
                phase = StartPhase::Equilibrium;
                note
            }
            Plan::Full(why) => {
                format!("elbsim trials: --windowed: every trial runs in full: {why}")
            }
        });
    }
    if args.csv && args.n > export::MAX_CSV_TRIALS {
        return Outcome {
            stdout: String::new(),
            stderr: format!(
                "error: --csv keeps one row per trial in memory and takes at most {} trials, not {}; \
                 run several batches with different --seed values\n",
                export::MAX_CSV_TRIALS,
                args.n
            ),
            exit: 2,
        }
        .into();
    }
    let usage = |msg: String| -> TrialsOutcome {
        Outcome {
            stdout: String::new(),
            stderr: format!("error: {msg}\n"),
            exit: 2,
        }
        .into()
    };
    // Assertion keys are checked before any work, against a report of no trials: its keys are
    // those of the real one (they depend on the scenario, not on the numbers).
    let resolved = if args.asserts.is_empty() {
        Vec::new()
    } else {
        let empty = run_trials_observed(
            &s.sim,
            TrialsOptions {
                n: 0,
                seed: 0,
                jobs: 1,
            },
            &std::sync::atomic::AtomicBool::new(false),
            &|_| {},
            None,
        );
        match assertions::resolve(&args.asserts, &assertions::view(&json_value(&empty, &[]))) {
            Ok(r) => r,
            Err(e) => return usage(e),
        }
    };
    let base = match args.baseline.as_deref().map(baseline::load).transpose() {
        Ok(b) => b,
        Err(e) => {
            return Outcome {
                stdout: String::new(),
                stderr: format!("error: {e}\n"),
                exit: 1,
            }
            .into()
        }
    };
    let seed = super::run::effective_seed(args.seed, &s);
    let exact = match exact_mode(&s, args, &source) {
        Ok(x) => x,
        Err(e) => return usage(e),
    };
    let csv = args.csv.then(|| CsvRows::new(&s.sim));
    let hist = args.histogram.map(|of| HistogramCollector::new(&s.sim, of));
    // The plots need the three distributions themselves, not only their summaries.
    let cdfs = (args.plot || args.html).then(|| {
        [
            HistogramOf::Detection,
            HistogramOf::Failover,
            HistogramOf::Failback,
        ]
        .map(|of| HistogramCollector::new(&s.sim, of))
    });
    let observe =
        |i: u64, m: &crate::report::run::Measured, t: Option<&crate::sim::engine::TrafficLog>| {
            if let Some(c) = &csv {
                c.observe(i, m, t);
            }
            if let Some(h) = &hist {
                h.observe(m);
            }
            for c in cdfs.iter().flatten() {
                c.observe(m);
            }
        };
    let observe: crate::experiment::trials::TrialObserver =
        if csv.is_some() || hist.is_some() || cdfs.is_some() {
            Some(&observe)
        } else {
            None
        };
    let acc = match (&exact, source) {
        (Some(_), _) => Accum::default(),
        (None, Source::Simulate) => run_range_with(
            &s.sim,
            seed,
            0..args.n,
            args.jobs,
            &super::INTERRUPTED,
            progress,
            observe,
            phase,
        ),
        (None, Source::Shard { shard, args: argv }) => {
            let range = shard.range(args.n);
            let acc = run_range_with(
                &s.sim,
                seed,
                range.clone(),
                args.jobs,
                &super::INTERRUPTED,
                progress,
                None,
                phase,
            );
            let mut stderr = super::warning_lines(&s);
            if let Some(limit) = acc.limit() {
                return super::limit_reached(&s, limit, stderr).into();
            }
            if acc.trials() < range.end - range.start {
                stderr.push_str("elbsim trials: interrupted (Ctrl-C): no shard file written\n");
                return Outcome {
                    stdout: String::new(),
                    stderr,
                    exit: super::EXIT_INTERRUPTED,
                }
                .into();
            }
            let _ = writeln!(
                stderr,
                "elbsim trials: shard {}/{}: trials {}..{} of {}",
                shard.k, shard.n, range.start, range.end, args.n
            );
            let file = ShardFile {
                format: shard::FORMAT.to_string(),
                command: "trials".to_string(),
                args: argv.to_vec(),
                fingerprint: scenario_fingerprint(&s),
                shard,
                total: args.n,
                range: [range.start, range.end],
                data: ShardData::Trials(Box::new(acc.to_state())),
            };
            return Outcome {
                stdout: file.to_json(),
                stderr,
                exit: 0,
            }
            .into();
        }
        (None, Source::Merged { acc, fingerprint }) => {
            if scenario_fingerprint(&s) != fingerprint {
                return Outcome {
                    stdout: String::new(),
                    stderr: format!("{}\n", super::merge::CHANGED),
                    exit: 1,
                }
                .into();
            }
            acc.clone()
        }
    };
    let report = match &exact {
        Some(x) => x.report(&s.sim, seed),
        None => report(&s.sim, &acc, args.n, seed),
    };
    let mut stderr = super::warning_lines(&s);
    if let Some(limit) = report.limit {
        return super::limit_reached(&s, limit, stderr).into();
    }
    match &exact {
        Some(x) => {
            let _ = writeln!(
                stderr,
                "elbsim trials: exact over every first-probe phase ({} pieces); no trials run",
                x.pieces
            );
        }
        None => {
            let _ = writeln!(
                stderr,
                "elbsim trials: {} job{}",
                args.jobs,
                if args.jobs == 1 { "" } else { "s" }
            );
            if let Some(note) = &window_note {
                let _ = writeln!(stderr, "{note}");
            }
        }
    }
    if report.partial {
        let _ = writeln!(
            stderr,
            "elbsim trials: interrupted (Ctrl-C): {} of {} trials finished; the report covers those",
            report.trials, report.trials_requested
        );
    }
    let reproduce = if exact.is_some() {
        format!(
            "elbsim trials {}{} --exact",
            s.origin,
            super::run::override_flags(&args.check)
        )
    } else {
        format!(
            "elbsim trials {}{} -n {} --seed {seed}{}",
            s.origin,
            super::run::override_flags(&args.check),
            args.n,
            if args.windowed { " --windowed" } else { "" }
        )
    }
    .replace("  ", " ");
    let warnings: Vec<Warning> = s
        .warnings
        .iter()
        .map(Warning::from)
        .chain(sample_warnings(&report))
        .collect();
    let plain = json_value(&report, &warnings);
    let verdicts = assertions::evaluate(&resolved, &assertions::view(&plain));
    // Verdicts go to standard error, where a CI log shows them whatever the format and `-o`.
    for v in &verdicts {
        let _ = writeln!(stderr, "{v}");
    }
    let changes = base.as_ref().map(|b| baseline::compare(b, &plain));
    let stdout = if args.json {
        let mut v = plain.clone();
        if let Some(obj) = v.as_object_mut() {
            if !verdicts.is_empty() {
                obj.insert("assertions".into(), serde_json::json!(verdicts));
            }
            if let (Some(name), Some(c)) = (&args.baseline, &changes) {
                obj.insert(
                    "baseline".into(),
                    serde_json::json!({"name": name, "changes": c}),
                );
            }
        }
        to_json(&v)
    } else {
        let mut text = render(&report, &s.name, &reproduce);
        let mut extra = String::new();
        if let (Some(name), Some(c)) = (&args.baseline, &changes) {
            extra.push_str(&baseline::render(name, c));
        }
        // Above the reproduce line, which stays last.
        if let Some(at) = text.rfind("\nreproduce: ") {
            text.insert_str(at, &extra);
        }
        if args.markdown {
            crate::report::markdown::from_text(&text)
        } else {
            text
        }
    };
    let mut files = Vec::new();
    if let Some(c) = cdfs {
        let [d, f, b] = c.map(HistogramCollector::finish);
        let svg = match crate::report::plot::cdf_svg(
            &format!(
                "elbsim trials: {} ({} trials, seed {seed})",
                s.name, report.trials
            ),
            &[("detection", &d), ("failover", &f), ("failback", &b)],
            crate::report::plot::closed_form_window(&s.sim),
        ) {
            Ok(svg) => svg,
            Err(e) => {
                return Outcome {
                    stdout: String::new(),
                    stderr: format!("{stderr}error: --plot: {e}\n"),
                    exit: 1,
                }
                .into()
            }
        };
        if args.html {
            let text = render(&report, &s.name, &reproduce);
            let title = format!("elbsim trials: {}", s.name);
            files.push((
                "--html",
                crate::report::html::page_with_plot(
                    &title,
                    &reproduce,
                    &super::run::context_lines(&s),
                    vec![
                        ("trials".into(), args.n.to_string()),
                        ("seed".into(), seed.to_string()),
                    ],
                    "Empirical CDFs of detection, failover and failback latency; shaded: the closed-form detection window of docs/model.md",
                    &svg,
                    &text,
                ),
            ));
        }
        if args.plot {
            files.push(("--plot", svg));
        }
    }
    if args.save_baseline {
        files.push(("--save-baseline", to_json(&plain)));
    }
    if let Some(c) = csv {
        files.push(("--csv", c.finish()));
    }
    if let Some(h) = hist {
        files.push(("--histogram", export::hdr_percentiles(&h.finish())));
    }
    TrialsOutcome {
        outcome: Outcome {
            stdout,
            stderr,
            exit: if report.partial {
                super::EXIT_INTERRUPTED
            } else if verdicts.iter().any(|v| !v.passed) {
                EXIT_ASSERTION_FAILED
            } else {
                0
            },
        },
        files,
    }
}

/// Whether this command computes exactly: `Ok(Some(..))` with the exact figures, `Ok(None)` to
/// sample, `Err` (a usage error, exit 2) when `--exact` cannot be honoured. Shards and merges
/// always sample: a shard file holds sampled histograms.
fn exact_mode(
    s: &scenario::Scenario,
    args: &TrialsArgs,
    source: &Source,
) -> Result<Option<crate::experiment::exact::Exact>, String> {
    use crate::experiment::exact::{self, Mode};
    let per_trial = [
        ("--csv", args.csv),
        ("--histogram", args.histogram.is_some()),
        ("--plot", args.plot),
        ("--html", args.html),
    ];
    let sharded = !matches!(source, Source::Simulate);
    match args.mode {
        Mode::Sample => Ok(None),
        Mode::Auto => {
            if sharded || per_trial.iter().any(|(_, on)| *on) {
                return Ok(None);
            }
            // Not applicable: sample, as without exact mode.
            Ok(exact::compute(&s.sim).ok())
        }
        Mode::Exact => {
            if let Some((flag, _)) = per_trial.iter().find(|(_, on)| *on) {
                return Err(format!(
                    "trials --exact: {flag} needs the trials themselves, and exact mode runs none; \
                     drop --exact (or use --sample) for {flag}"
                ));
            }
            if sharded {
                return Err(
                    "trials --exact: exact mode needs no --shard (it computes the whole \
                     distribution in one process)"
                        .into(),
                );
            }
            exact::compute(&s.sim).map(Some).map_err(|why| {
                format!(
                    "trials --exact: {} is not noise-free: {why}; run without --exact to sample it",
                    s.origin
                )
            })
        }
    }
}

/// The text of an exact report: the same latency table, figures over every phase instead of
/// samples, and no intervals (there is no sampling error).
fn render_exact(r: &TrialsReport, mut o: String, reproduce: &str) -> String {
    let phases = r.exact.as_ref().map_or(r.trials, |e| e.phases_per_prober);
    let _ = writeln!(
        o,
        "exact: every first-probe phase, {} | no sampling error",
        crate::experiment::exact::describe(phases)
    );
    o.push('\n');
    let header = [
        "latency", "phases", "min", "p50", "p90", "p99", "p99.9", "max", "mean",
    ];
    let rows: Vec<Vec<String>> = latency_summaries(r)
        .iter()
        .map(|(_, l, s)| row(l, s))
        .collect();
    o.push_str(&table(&header, &rows));
    if let Some(e) = r.exact.as_ref().filter(|e| !e.overall.is_empty()) {
        o.push_str("\nfailover over all LB nodes (independent phases)\n");
        let f = |x: Option<f64>| x.map_or_else(|| "-".to_string(), s3);
        let mut rows = Vec::new();
        for fl in &e.overall {
            for (label, st) in [
                ("first node", &fl.first_node_s),
                ("last node", &fl.last_node_s),
            ] {
                rows.push(vec![
                    format!("fault {} {label}", fl.fault),
                    f(st.min),
                    f(st.p50),
                    f(st.p90),
                    f(st.p99),
                    f(st.max),
                ]);
            }
        }
        o.push_str(&table(
            &["failover", "min", "p50", "p90", "p99", "max"],
            &rows,
        ));
    }
    let _ = writeln!(
        o,
        "\nfalse failovers: {:.4} per hour ({:.3} per day), exact",
        r.false_failovers_per_hour,
        r.false_failovers_per_hour * 24.0
    );
    let _ = writeln!(
        o,
        "missed faults: {}, exact",
        r.missed_fault_rate.map_or_else(
            || "no (fault, LB node) pair".to_string(),
            |x| format!("{:.2}% of (fault, LB node) pairs", x * 100.0)
        )
    );
    let share = |k: u64| {
        let total = r.trials as f64 * 1.0;
        k as f64 / total
    };
    if r.censored_faults > 0 {
        let _ = writeln!(
            o,
            "censored faults: {:.3} per run (undetected, detection window past the end of the run; not in the missed rate)",
            share(r.censored_faults)
        );
    }
    if r.needless_failovers > 0 {
        let _ = writeln!(
            o,
            "needless failovers: {:.3} per run (clients unharmed by the fault; see `elbsim run` for the rule)",
            share(r.needless_failovers)
        );
    }
    let _ = writeln!(o, "\nreproduce: {reproduce}");
    o
}
