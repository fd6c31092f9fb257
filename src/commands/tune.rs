//! `elbsim tune`: the best health-check parameters for a scenario, with the evidence.

use super::{to_json, Outcome};
use crate::api::pool::{MonitorType, Pool};
use crate::api::types::{CreateRequest, QuicCidHashStrategy};
use crate::api::{validate_request, CheckOptions};
use crate::experiment::shard::{self, Shard, ShardData, ShardFile};
use crate::experiment::trials::Accum;
use crate::experiment::tune::{
    point_accums, tune, Constraints, Objective, Point, PointResult, PointSource, ProbeFault,
    Ranges, TuneOptions, TuneReport, CLIENT_FAILURE_COUNTERS,
};
use crate::report::text::{s3, table};
use std::fmt::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// Options of `elbsim tune` besides the scenario.
#[derive(Debug, Clone)]
pub struct TuneArgs {
    pub ranges: Ranges,
    pub trials: u64,
    pub seed: Option<u64>,
    pub jobs: usize,
    pub objective: Objective,
    pub constraints: Constraints,
    pub probe_fault: ProbeFault,
    /// Rank points whose health check draws an API warning.
    pub allow_warnings: bool,
    /// `--full`: simulate every trial whole, never windowed.
    pub full: bool,
    pub json: bool,
    /// `--format markdown`: the text report as Markdown.
    pub markdown: bool,
    /// Whether `--csv` was given: then the CSV comes back with the outcome.
    pub csv: bool,
    /// `--plot`: the Pareto front as SVG.
    pub plot: bool,
    /// `--html`: one self-contained page with the report and the Pareto front.
    pub html: bool,
    pub top: usize,
    pub strict: bool,
    /// `--profile`: the data plane (wins over the scenario's `[model] profile`).
    pub profile: Option<crate::model::profile::ProfileName>,
    /// `--step-every-probe`: the engine never coasts (the same results, more work).
    pub step_every_probe: bool,
    /// `--exact`, `--sample`, or the choice by the scenario (see [`crate::experiment::exact`]).
    pub mode: crate::experiment::exact::Mode,
}

/// What `elbsim tune` produced: the report, and the CSV when asked for.
#[derive(Debug, Clone)]
pub struct TuneOutcome {
    pub outcome: Outcome,
    pub csv: Option<String>,
    /// `--plot` and `--html` files, by flag.
    pub files: Vec<(&'static str, String)>,
}

/// Sweeps estimated to take longer than this get a time estimate on standard error.
const ANNOUNCE_ETA_AFTER: Duration = Duration::from_secs(10);

/// Parses `1..10`, `1,3,5` or `4` into values, each within `lo..=hi` (the API's range). Bounds
/// are checked before a range is expanded, so `1..4294967295` is refused at once, and values are
/// kept in a set of at most `hi - lo + 1` entries whatever the text repeats.
pub fn parse_range(text: &str, lo: u32, hi: u32) -> Result<Vec<u32>, String> {
    let num = |s: &str| -> Result<u32, String> {
        let s = s.trim();
        // Parse wide first, so that a huge number is "outside the API's range", not "not a number".
        let v = s.parse::<u128>().map_err(|_| {
            format!("{s:?} is not a whole number; write a range as 1..10, 1,3,5 or 4")
        })?;
        if v < lo as u128 || v > hi as u128 {
            return Err(format!("{v} is outside what the API accepts ({lo}..{hi})"));
        }
        Ok(v as u32)
    };
    let mut out = std::collections::BTreeSet::new();
    for part in text.split(',') {
        match part.split_once("..") {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b.trim_start_matches('='))?);
                if a > b {
                    return Err(format!("{part:?} is an empty range; write low..high"));
                }
                out.extend(a..=b);
            }
            None => {
                out.insert(num(part)?);
            }
        }
    }
    Ok(out.into_iter().collect())
}

/// Values as a range argument again: runs of consecutive values as `a..b`, the rest by commas.
pub fn format_range<T: Copy + Into<u32>>(values: &[T]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < values.len() {
        let start = values[i].into();
        let mut end = start;
        while i + 1 < values.len() && values[i + 1].into() == end + 1 {
            i += 1;
            end += 1;
        }
        parts.push(if end > start + 1 {
            format!("{start}..{end}")
        } else if end == start + 1 {
            format!("{start},{end}")
        } else {
            start.to_string()
        });
        i += 1;
    }
    parts.join(",")
}

/// The API warnings (and errors) a point's health check and CID slice draw, by the same rules as
/// the body: the scenario's request with the point's values, validated.
pub fn point_warnings(request: &CreateRequest, p: &Point) -> Vec<String> {
    let mut r = request.clone();
    let hm = &mut r.pool.healthmonitor;
    hm.delay = p.delay.into();
    hm.timeout = p.timeout.into();
    hm.max_retries = p.max_retries.into();
    hm.max_retries_down = Some(p.max_retries_down.into());
    if p.offset.is_some() || p.len.is_some() {
        let q = r
            .pool
            .quic_cid_hash_strategy
            .get_or_insert_with(QuicCidHashStrategy::default);
        if let Some(o) = p.offset {
            q.offset = Some(o.into());
        }
        if let Some(l) = p.len {
            q.len = Some(l.into());
        }
    }
    let (errors, warnings) = validate_request(&r, CheckOptions { strict: false });
    errors
        .iter()
        .chain(&warnings)
        .filter(|w| {
            w.path.starts_with("pool.healthmonitor")
                || w.path.starts_with("pool.quic_cid_hash_strategy")
        })
        .map(|w| format!("[{}] {}", w.rule, w.message))
        .collect()
}

/// The whole command line of a sweep: scenario, trials, seed, objective, every range and every
/// constraint, so that it can be run again as it was.
pub fn reproduce_line(origin: &str, args: &TuneArgs, seed: u64, probe_fault_added: bool) -> String {
    use clap::ValueEnum;
    let name = |v: Option<clap::builder::PossibleValue>| {
        v.map_or_else(String::new, |p| p.get_name().to_string())
    };
    let mut s = String::from("elbsim tune");
    if !origin.is_empty() {
        let _ = write!(s, " {origin}");
    }
    if args.mode == crate::experiment::exact::Mode::Exact {
        let _ = write!(
            s,
            " --exact --objective {}",
            name(args.objective.to_possible_value())
        );
    } else {
        let _ = write!(
            s,
            " -n {} --seed {seed} --objective {}",
            args.trials,
            name(args.objective.to_possible_value())
        );
    }
    let r = &args.ranges;
    for (flag, values) in [
        ("delay", &r.delay),
        ("timeout", &r.timeout),
        ("max-retries-down", &r.max_retries_down),
        ("max-retries", &r.max_retries),
    ] {
        if !values.is_empty() {
            let _ = write!(s, " --{flag} {}", format_range(values));
        }
    }
    for (flag, values) in [("offset", &r.offset), ("len", &r.len)] {
        if !values.is_empty() {
            let _ = write!(s, " --{flag} {}", format_range(values));
        }
    }
    let c = &args.constraints;
    let _ = write!(s, " --max-false-per-day {}", c.max_false_per_day);
    if c.timeout_below_delay {
        s.push_str(" --timeout-below-delay");
    }
    if let Some(m) = c.max_missed_rate {
        let _ = write!(s, " --max-missed-rate {m}");
    }
    if let Some(x) = c.qos.min_mistake_recurrence_s {
        let _ = write!(s, " --min-mistake-recurrence {}", secs_arg(x));
    }
    if let Some(x) = c.qos.max_mistake_duration_s {
        let _ = write!(s, " --max-mistake-duration {}", secs_arg(x));
    }
    if let Some(x) = c.qos.min_pa {
        let _ = write!(s, " --min-pa {x}");
    }
    if probe_fault_added {
        let _ = write!(
            s,
            " --probe-fault {}",
            name(args.probe_fault.to_possible_value())
        );
    }
    if args.allow_warnings {
        s.push_str(" --allow-warnings");
    }
    if args.full {
        s.push_str(" --full");
    }
    if args.strict {
        s.push_str(" --strict");
    }
    if let Some(p) = args.profile {
        let _ = write!(s, " --profile {p}");
    }
    s
}

/// Seconds as a duration argument that parses back to the same value.
fn secs_arg(x: f64) -> String {
    format!(
        "{}s",
        crate::time::SimDuration::from_secs_f64(x).as_secs_f64()
    )
}

/// An objective's value as the table shows it: three decimals, or scientific notation for a
/// tiny fraction (1 - P_A, mistakes per day) that would otherwise read 0.000.
fn objective_cell(o: Objective, x: Option<f64>) -> String {
    match x {
        None => "-".to_string(),
        Some(x) if o.is_fraction() && x != 0.0 && x < 0.001 => format!("{x:.2e}"),
        Some(x) => format!("{x:.3}"),
    }
}

/// The `healthmonitor` object for the API body at a point, keeping the pool's other fields.
pub fn healthmonitor_json(pool: &Pool, r: &PointResult) -> serde_json::Value {
    let hm = &pool.healthmonitor;
    let mut v = serde_json::json!({
        "type": hm.monitor_type.as_str(),
        "delay": r.point.delay,
        "timeout": r.point.timeout,
        "max_retries": r.point.max_retries,
        "max_retries_down": r.point.max_retries_down,
    });
    let obj = v.as_object_mut().expect("a JSON object");
    if let Some(port) = hm.monitor_port {
        obj.insert("monitor_port".into(), port.into());
    }
    if matches!(hm.monitor_type, MonitorType::Http | MonitorType::Https) {
        obj.insert("http_method".into(), hm.http_method.as_str().into());
        obj.insert("url_path".into(), hm.url_path.clone().into());
        obj.insert(
            "expected_codes".into(),
            hm.expected_codes.to_string().into(),
        );
        if let Some(d) = &hm.domain_name {
            obj.insert("domain_name".into(), d.clone().into());
        }
    }
    v
}

fn opt(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), s3)
}

fn per_day(x: f64) -> String {
    if x == 0.0 {
        "0".to_string()
    } else if x < 0.001 {
        format!("{x:.2e}")
    } else {
        format!("{x:.3}")
    }
}

/// The counters of the objective shown as columns: for `client-failures`, each counter it sums
/// that is not zero at every point (and `quic_cid_broken` on QUIC pools, the one a CID slice
/// changes).
fn counter_columns(r: &TuneReport, quic: bool) -> Vec<&'static str> {
    CLIENT_FAILURE_COUNTERS
        .iter()
        .copied()
        .filter(|k| {
            (quic && *k == "quic_cid_broken")
                || r.points
                    .iter()
                    .any(|p| p.objective_counters.get(k).is_some_and(|&m| m != 0.0))
        })
        .filter(|_| r.objective == Objective::ClientFailures)
        .collect()
}

fn render(
    r: &TuneReport,
    pool: &Pool,
    name: &str,
    origin: &str,
    top: usize,
    quic: bool,
    reproduce: &str,
) -> String {
    let mut o = String::new();
    let exact = r.method == Some("exact");
    let _ = writeln!(o, "elbsim tune: {name}");
    let _ = writeln!(
        o,
        "{} points{} x {} | seed {} | objective {} | constraint: false failovers <= {}/day{}{}",
        r.points.len(),
        if r.partial {
            format!(" of {} (PARTIAL: interrupted)", r.points_requested)
        } else {
            String::new()
        },
        if r.method == Some("exact") {
            "exact (every probe phase)".to_string()
        } else {
            format!("{} trials", r.trials_per_point)
        },
        r.seed,
        serde_json::to_value(r.objective)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        r.constraints.max_false_per_day,
        if r.constraints.timeout_below_delay {
            ", timeout < delay"
        } else {
            ""
        },
        r.constraints
            .max_missed_rate
            .map_or(String::new(), |m| format!(", missed-fault rate <= {m}")),
    );
    let qc = &r.constraints.qos;
    if qc.any() {
        let mut parts = Vec::new();
        if let Some(x) = qc.min_mistake_recurrence_s {
            parts.push(format!("T_MR >= {}", crate::report::qos::span(x)));
        }
        if let Some(x) = qc.max_mistake_duration_s {
            parts.push(format!("T_M <= {}", crate::report::qos::span(x)));
        }
        if let Some(x) = qc.min_pa {
            parts.push(format!("P_A >= {x}"));
        }
        let _ = writeln!(
            o,
            "failure-detector constraints (closed forms, per member and LB node): {}",
            parts.join(", ")
        );
    }
    if r.sampled_points > 0 {
        let _ = writeln!(
            o,
            "({} point{} could not be computed exactly and ran {} trials instead)",
            r.sampled_points,
            if r.sampled_points == 1 { "" } else { "s" },
            r.trials_per_point
        );
    }
    if let Some(f) = r.probe_fault {
        let _ = writeln!(
            o,
            "(no fault on the master in the scenario: latency measured with an added {f} fault)"
        );
    }
    if let Some(w) = &r.windowed {
        let _ = writeln!(
            o,
            "(windowed: {} of {} points simulate {:.0} s to {:.0} s of the {:.0} s run around the fault; their simulated false failovers come from a noise-only stream of the run's fault-free time; --full runs every trial whole)",
            w.points,
            r.points.len(),
            w.window_s.0,
            w.window_s.1,
            w.run_s
        );
    }
    o.push('\n');
    let counters = counter_columns(r, quic);
    let mut header = vec!["rank", "delay", "timeout", "down", "up"];
    if quic {
        header.extend(["offset", "len"]);
    }
    header.push("objective");
    header.extend(counters.iter().copied());
    // The QoS columns (closed forms) when a QoS constraint or objective asks about them.
    let qos_columns = r.constraints.qos.any() || r.objective.is_qos();
    if qos_columns {
        header.extend(["T_MR", "T_M", "P_A"]);
    }
    header.extend([
        "p50 failover",
        "p99 failover",
        "false/day",
        if exact {
            "false/day over every phase"
        } else {
            "sim false (95% CI/day)"
        },
        "ok",
        "pareto",
    ]);
    let mut rank = 0;
    let rows: Vec<Vec<String>> = r
        .points
        .iter()
        .take(top)
        .map(|p| {
            let rank_cell = if p.ranked {
                rank += 1;
                rank.to_string()
            } else {
                "-".to_string()
            };
            let mut row = vec![
                rank_cell,
                p.point.delay.to_string(),
                p.point.timeout.to_string(),
                p.point.max_retries_down.to_string(),
                p.point.max_retries.to_string(),
            ];
            if quic {
                row.push(p.point.offset.map_or("-".into(), |x| x.to_string()));
                row.push(p.point.len.map_or("-".into(), |x| x.to_string()));
            }
            row.push(objective_cell(r.objective, p.objective));
            for k in &counters {
                row.push(
                    p.objective_counters
                        .get(k)
                        .map_or("-".to_string(), |x| format!("{x:.3}")),
                );
            }
            if qos_columns {
                let q = &p.qos;
                row.extend([
                    q.recurrence
                        .closed_form_s
                        .map_or_else(|| "never".to_string(), crate::report::qos::span),
                    crate::report::qos::span(q.duration.closed_form_mean_s),
                    crate::report::qos::prob(q.accuracy.closed_form),
                ]);
            }
            let (lo, hi) = p.false_failovers.simulated_ci95_per_day;
            row.extend([
                opt(p.failover_latency_s.p50),
                opt(p.failover_latency_s.p99),
                per_day(p.false_failovers.per_day),
                if exact {
                    per_day(exact_per_day(p))
                } else {
                    format!(
                        "{} ({}..{})",
                        p.false_failovers.simulated_count,
                        per_day(lo),
                        per_day(hi)
                    )
                },
                if !p.ranked {
                    "warning".into()
                } else if p.feasible {
                    "yes".into()
                } else {
                    "no".into()
                },
                if p.pareto { "*".into() } else { String::new() },
            ]);
            row
        })
        .collect();
    o.push_str(&table(&header, &rows));
    if r.points.len() > top {
        let _ = writeln!(
            o,
            "  ... {} more points (--top N, --csv FILE or --format json for all)",
            r.points.len() - top
        );
    }
    let unranked: Vec<&PointResult> = r.points.iter().filter(|p| !p.ranked).collect();
    if let Some(first) = unranked.first() {
        let _ = writeln!(
            o,
            "{} point{} break{} an API warning and {} not ranked (--allow-warnings ranks them), e.g. delay {} timeout {}: {}",
            unranked.len(),
            if unranked.len() == 1 { "" } else { "s" },
            if unranked.len() == 1 { "s" } else { "" },
            if unranked.len() == 1 { "is" } else { "are" },
            first.point.delay,
            first.point.timeout,
            first.api_warnings.first().map_or("", |w| w.as_str())
        );
    }
    let front: Vec<&PointResult> = r.points.iter().filter(|p| p.pareto).collect();
    let _ = writeln!(
        o,
        "\nPareto front (objective against false failovers per day), {} points:",
        front.len()
    );
    let mut sorted = front.clone();
    sorted.sort_by(|a, b| {
        a.objective
            .unwrap_or(f64::INFINITY)
            .total_cmp(&b.objective.unwrap_or(f64::INFINITY))
    });
    for p in sorted {
        let slice = match (p.point.offset, p.point.len) {
            (Some(off), Some(len)) if quic => format!(" offset {off} len {len}"),
            _ => String::new(),
        };
        let _ = writeln!(
            o,
            "  delay {} timeout {} down {} up {}{slice}: objective {}, false/day {}",
            p.point.delay,
            p.point.timeout,
            p.point.max_retries_down,
            p.point.max_retries,
            objective_cell(r.objective, p.objective),
            per_day(p.false_failovers.per_day)
        );
    }
    match r.best() {
        Some(best) => {
            let _ = writeln!(o, "\nbest: paste into the API body as \"healthmonitor\":");
            let hm =
                serde_json::to_string_pretty(&healthmonitor_json(pool, best)).unwrap_or_default();
            for line in hm.lines() {
                let _ = writeln!(o, "  {line}");
            }
            if quic {
                if let (Some(off), Some(len)) = (best.point.offset, best.point.len) {
                    let _ = writeln!(
                        o,
                        "  and \"quic_cid_hash_strategy\": {{\"offset\": {off}, \"len\": {len}}}"
                    );
                }
            }
            if exact {
                let _ = writeln!(
                    o,
                    "false failovers: closed form {} per day; exact over every probe phase {} per day",
                    per_day(best.false_failovers.per_day),
                    per_day(exact_per_day(best)),
                );
            } else {
                let _ = writeln!(
                    o,
                    "false failovers: closed form {} per day; simulation saw {} in {:.1} h{}",
                    per_day(best.false_failovers.per_day),
                    best.false_failovers.simulated_count,
                    best.false_failovers.simulated_hours,
                    if best.false_failovers.consistent {
                        ", consistent"
                    } else {
                        ", NOT consistent with the closed form"
                    }
                );
                if let Some(note) = best.false_failovers.assumption {
                    let _ = writeln!(o, "  note: {note}");
                }
            }
            let _ = writeln!(o, "{}", qos_line(&best.qos));
            if quic {
                let _ = writeln!(
                    o,
                    "check it: set that quic_cid_hash_strategy in the scenario's pool, then"
                );
            }
            let _ = writeln!(
                o,
                "check it: elbsim trials {origin}{} -n 10000{}",
                super::run::override_flags(&crate::scenario::CheckOverrides {
                    delay: Some(best.point.delay),
                    timeout: Some(best.point.timeout),
                    max_retries: Some(best.point.max_retries),
                    max_retries_down: Some(best.point.max_retries_down),
                    profile: None,
                    step_every_probe: false,
                }),
                // An exact figure is checked by sampling (-n samples anyway; said for clarity).
                if r.method == Some("exact") {
                    " --sample"
                } else {
                    ""
                }
            );
        }
        None => {
            let _ = writeln!(
                o,
                "\nno point meets the constraints; relax them or widen the ranges{}",
                if unranked.is_empty() {
                    ""
                } else {
                    " (or --allow-warnings to rank the points that break an API warning)"
                }
            );
        }
    }
    let _ = writeln!(o, "\nreproduce: {reproduce}");
    o
}

/// The best point's failure-detector QoS in one line: closed forms, with what simulation saw.
fn qos_line(q: &crate::report::qos::QosReport) -> String {
    use crate::report::qos::{prob, span};
    let flag = |c: Option<bool>| match c {
        Some(false) => " NOT consistent",
        _ => "",
    };
    format!(
        "failure-detector QoS per member and LB node: T_MR {}{} (simulated {}), T_M {}{} (simulated {}), P_A {}{} (simulated {})",
        q.recurrence.closed_form_s.map_or_else(|| "never".to_string(), span),
        flag(q.recurrence.consistent),
        match (q.recurrence.mean_s, q.recurrence.at_least_s) {
            (Some(x), _) => format!(
                "{} over {} mistake{}",
                span(x),
                q.mistakes,
                if q.mistakes == 1 { "" } else { "s" }
            ),
            (None, Some(h)) => format!("no mistake in {}", span(h)),
            _ => "n/a".to_string(),
        },
        span(q.duration.closed_form_mean_s),
        flag(q.duration.consistent),
        q.duration.mean_s.map_or_else(|| "n/a".to_string(), span),
        prob(q.accuracy.closed_form),
        flag(q.accuracy.consistent),
        q.accuracy.value.map_or_else(|| "n/a".to_string(), prob),
    )
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The sweep as CSV, one row per point in rank order.
pub fn csv(r: &TuneReport) -> String {
    let mut s = String::from(
        "rank,delay,timeout,max_retries_down,max_retries,offset,len,objective,p50_failover_s,p99_failover_s,p99_detection_s,false_failovers_per_day,simulated_false_failovers,simulated_hours,missed_fault_rate,feasible,pareto,ranked,api_warnings,t_mr_s,t_m_s,p_a\n",
    );
    let f = |x: Option<f64>| x.map_or(String::new(), |v| v.to_string());
    let mut rank = 0;
    for p in &r.points {
        let rank_cell = if p.ranked {
            rank += 1;
            rank.to_string()
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            rank_cell,
            p.point.delay,
            p.point.timeout,
            p.point.max_retries_down,
            p.point.max_retries,
            p.point.offset.map_or(String::new(), |x| x.to_string()),
            p.point.len.map_or(String::new(), |x| x.to_string()),
            f(p.objective),
            f(p.failover_latency_s.p50),
            f(p.failover_latency_s.p99),
            f(p.detection_latency_s.p99),
            p.false_failovers.per_day,
            p.false_failovers.simulated_count,
            p.false_failovers.simulated_hours,
            f(p.missed_fault_rate),
            p.feasible,
            p.pareto,
            p.ranked,
            csv_field(&p.api_warnings.join("; ")),
            f(p.qos.recurrence.closed_form_s),
            p.qos.duration.closed_form_mean_s,
            p.qos.accuracy.closed_form
        );
    }
    s
}

/// `elbsim tune SCENARIO`. `note` prints a line on standard error at once (the point count
/// and, for a long sweep, the estimated time). Ctrl-C ([`super::INTERRUPTED`]) stops the sweep:
/// the points finished are ranked and printed, marked partial, with exit 130.
pub fn run(
    path: Option<&Path>,
    args: &TuneArgs,
    progress: &(dyn Fn(u64) + Sync),
    note: &(dyn Fn(&str) + Sync),
) -> TuneOutcome {
    run_from(path, args, progress, note, Source::Simulate)
}

/// Where a tune command's per-point figures come from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// Run every point's trials and print the ranking.
    Simulate,
    /// Run shard `shard` of the points and print its shard file.
    Shard { shard: Shard, args: &'a [String] },
    /// Rank the merged shards' points; `fingerprint` is the shards' scenario's.
    Merged {
        points: &'a std::collections::BTreeMap<u64, Accum>,
        fingerprint: &'a str,
    },
}

/// [`run`], with the per-point figures from `source`.
pub fn run_from(
    path: Option<&Path>,
    args: &TuneArgs,
    progress: &(dyn Fn(u64) + Sync),
    note: &(dyn Fn(&str) + Sync),
    source: Source,
) -> TuneOutcome {
    let fail = |msg: String| TuneOutcome {
        outcome: Outcome {
            stdout: String::new(),
            stderr: msg,
            exit: 1,
        },
        csv: None,
        files: Vec::new(),
    };
    let s = match super::load_scenario(
        path,
        args.strict,
        crate::scenario::CheckOverrides {
            profile: args.profile,
            step_every_probe: args.step_every_probe,
            ..Default::default()
        },
    ) {
        Ok(s) => s,
        Err(failed) => {
            return TuneOutcome {
                outcome: failed,
                csv: None,
                files: Vec::new(),
            }
        }
    };
    let quic = s.sim.traffic.as_ref().is_some_and(|t| t.quic.is_some());
    let tunes_slice = !args.ranges.offset.is_empty() || !args.ranges.len.is_empty();
    if tunes_slice && !quic {
        return fail(
            "--offset and --len tune the QUIC CID slice: they need a QUIC pool with [traffic]\n"
                .into(),
        );
    }
    if args.objective == Objective::ClientFailures && s.sim.traffic.is_none() {
        return fail("--objective client-failures needs a scenario with [traffic]\n".into());
    }
    let seed = super::run::effective_seed(args.seed, &s);
    let points = args.ranges.point_count();
    let exact = match exact_sweep(&s, args, &source, points) {
        Ok(e) => e,
        Err(msg) => {
            return TuneOutcome {
                outcome: Outcome {
                    stdout: String::new(),
                    stderr: format!("error: {msg}\n"),
                    exit: 2,
                },
                csv: None,
                files: Vec::new(),
            }
        }
    };
    let resolved;
    let args = if exact {
        resolved = TuneArgs {
            mode: crate::experiment::exact::Mode::Exact,
            ..args.clone()
        };
        &resolved
    } else {
        args
    };
    note(&format!(
        "elbsim tune: {points} point{} x {}",
        if points == 1 { "" } else { "s" },
        if exact {
            "exact (every probe phase)".to_string()
        } else {
            format!("{} trials", args.trials)
        }
    ));
    // The estimate comes from the first point's wall time: points cost about the same.
    let started = Instant::now();
    // Windowed sweeps finish a (delay, timeout) group of points at once: the estimate is taken
    // at the first report of progress, whatever it says.
    let announced = std::sync::atomic::AtomicBool::new(false);
    let announce = |done: u64| {
        if done >= 1 && done < points && !announced.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            let eta = started
                .elapsed()
                .mul_f64((points - done) as f64 / done as f64);
            if eta >= ANNOUNCE_ETA_AFTER {
                note(&format!(
                    "elbsim tune: the first {} took {:.1} s; at that pace the {} others take about {} (Ctrl-C stops and prints the points finished)",
                    if done == 1 { "point".to_string() } else { format!("{done} points") },
                    started.elapsed().as_secs_f64(),
                    points - done,
                    human_duration(eta)
                ));
            }
        }
        progress(done);
    };
    let opts = TuneOptions {
        trials: args.trials,
        seed,
        jobs: args.jobs,
        objective: args.objective,
        constraints: args.constraints,
        probe_fault: args.probe_fault.kind(),
        allow_warnings: args.allow_warnings,
        full: args.full,
    };
    let point_source = match source {
        Source::Simulate if exact => PointSource::Exact,
        Source::Simulate => PointSource::Simulate,
        Source::Merged {
            points: m,
            fingerprint,
        } => {
            if super::trials::scenario_fingerprint(&s) != fingerprint {
                return fail(format!("{}\n", super::merge::CHANGED));
            }
            PointSource::Merged(m)
        }
        Source::Shard { shard, args: argv } => {
            let range = shard.range(points);
            let mut stderr = super::warning_lines(&s);
            let Some(accs) = point_accums(
                &s.sim,
                &args.ranges,
                opts,
                range.clone(),
                &super::INTERRUPTED,
                &announce,
            ) else {
                stderr.push_str("elbsim tune: interrupted (Ctrl-C): no shard file written\n");
                return TuneOutcome {
                    outcome: Outcome {
                        stdout: String::new(),
                        stderr,
                        exit: super::EXIT_INTERRUPTED,
                    },
                    csv: None,
                    files: Vec::new(),
                };
            };
            let _ = writeln!(
                stderr,
                "elbsim tune: shard {}/{}: points {}..{} of {points}",
                shard.k, shard.n, range.start, range.end
            );
            let file = ShardFile {
                format: shard::FORMAT.to_string(),
                command: "tune".to_string(),
                args: argv.to_vec(),
                fingerprint: super::trials::scenario_fingerprint(&s),
                shard,
                total: points,
                range: [range.start, range.end],
                data: ShardData::Tune(accs.iter().map(|(i, a)| (*i, a.to_state())).collect()),
            };
            return TuneOutcome {
                outcome: Outcome {
                    stdout: file.to_json(),
                    stderr,
                    exit: 0,
                },
                csv: None,
                files: Vec::new(),
            };
        }
    };
    let report = tune(
        &s.sim,
        &args.ranges,
        opts,
        &|p| point_warnings(&s.request, p),
        &super::INTERRUPTED,
        &announce,
        point_source,
    );
    let mut stderr = super::warning_lines(&s);
    if report.partial {
        let _ = writeln!(
            stderr,
            "elbsim tune: interrupted (Ctrl-C): {} of {} points finished; the ranking covers those",
            report.points.len(),
            report.points_requested
        );
    }
    let reproduce = reproduce_line(&s.origin, args, seed, report.probe_fault.is_some());
    let stdout = if args.json {
        let mut v = serde_json::to_value(&report).unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            if let Some(best) = report.best() {
                obj.insert(
                    "best".into(),
                    serde_json::to_value(best).unwrap_or_default(),
                );
                obj.insert("healthmonitor".into(), healthmonitor_json(&s.pool, best));
            }
            obj.insert("reproduce".into(), reproduce.clone().into());
            // The scenario's own warnings, as every JSON report carries them.
            let warnings: Vec<crate::report::warning::Warning> =
                s.warnings.iter().map(Into::into).collect();
            obj.insert(
                "warnings".into(),
                serde_json::to_value(warnings).unwrap_or_default(),
            );
        }
        to_json(&v)
    } else {
        let text = render(
            &report, &s.pool, &s.name, &s.origin, args.top, quic, &reproduce,
        );
        if args.markdown {
            crate::report::markdown::from_text(&text)
        } else {
            text
        }
    };
    let mut files = Vec::new();
    if args.plot || args.html {
        let title = format!("elbsim tune: {}", s.name);
        let svg = match crate::report::plot::pareto_svg(&title, &report) {
            Ok(svg) => svg,
            Err(e) => return fail(format!("{stderr}error: --plot: {e}\n")),
        };
        if args.html {
            let text = render(
                &report, &s.pool, &s.name, &s.origin, args.top, quic, &reproduce,
            );
            files.push((
                "--html",
                crate::report::html::page_with_plot(
                    &title,
                    &reproduce,
                    &super::run::context_lines(&s),
                    vec![
                        ("trials per point".into(), args.trials.to_string()),
                        ("seed".into(), seed.to_string()),
                    ],
                    "Every point: false failovers per day against the objective; the Pareto front joined; the recommended point circled",
                    &svg,
                    &text,
                ),
            ));
        }
        if args.plot {
            files.push(("--plot", svg));
        }
    }
    TuneOutcome {
        outcome: Outcome {
            stdout,
            stderr,
            exit: if report.partial {
                super::EXIT_INTERRUPTED
            } else {
                0
            },
        },
        csv: args.csv.then(|| csv(&report)),
        files,
    }
}

/// "3 min", "2.5 h": a rough duration for an estimate.
fn human_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 90.0 {
        format!("{s:.0} s")
    } else if s < 5400.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

/// Whether this sweep is computed exactly; `Err` (exit 2) when `--exact` cannot be honoured.
/// Shards and merges always run trials. The question is asked of the scenario with the fault
/// tune adds to measure latency; the swept values never make a scenario random.
fn exact_sweep(
    s: &crate::scenario::Scenario,
    args: &TuneArgs,
    source: &Source,
    points: u64,
) -> Result<bool, String> {
    use crate::experiment::exact::{why_not_exact, Mode};
    let (cfg, _) = crate::experiment::tune::with_probe_fault(&s.sim, args.probe_fault.kind());
    let sharded = !matches!(source, Source::Simulate);
    match args.mode {
        Mode::Sample => Ok(false),
        Mode::Auto => Ok(!sharded
            && points <= crate::experiment::tune::MAX_POINTS
            && why_not_exact(&cfg).is_none()),
        Mode::Exact if sharded => {
            Err("tune --exact: exact mode needs no --shard; drop --shard, or use --sample".into())
        }
        Mode::Exact => match why_not_exact(&cfg) {
            None => Ok(true),
            Some(why) => Err(format!(
                "tune --exact: {} is not noise-free: {why}; run without --exact to sample it{}",
                s.origin,
                if points > crate::experiment::tune::MAX_POINTS {
                    format!(
                        " (a sampled sweep takes at most {} points)",
                        crate::experiment::tune::MAX_POINTS
                    )
                } else {
                    String::new()
                }
            )),
        },
    }
}

/// An exact point's false failovers per day: its count over every probe phase, per day of the
/// fault-free time of all those phases.
fn exact_per_day(p: &PointResult) -> f64 {
    let f = &p.false_failovers;
    if f.simulated_hours > 0.0 {
        f.simulated_count as f64 / f.simulated_hours * 24.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_respect_api_bounds() {
        assert_eq!(parse_range("1..3", 1, 50), Ok(vec![1, 2, 3]));
        assert_eq!(parse_range("5,1,3,3", 1, 50), Ok(vec![1, 3, 5]));
        assert_eq!(parse_range("4", 1, 50), Ok(vec![4]));
        assert!(parse_range("0..3", 1, 50).unwrap_err().contains("outside"));
        assert!(parse_range("3..1", 1, 50).is_err());
        assert!(parse_range("x", 1, 50).is_err());
        // Bounds before expansion: no 4-billion-entry list.
        assert!(parse_range("1..4294967295", 1, 50)
            .unwrap_err()
            .contains("4294967295 is outside what the API accepts (1..50)"));
        assert!(parse_range("1..99999999999999999999", 1, 50)
            .unwrap_err()
            .contains("outside"));
    }

    #[test]
    fn ranges_print_back_as_they_parse() {
        assert_eq!(format_range(&[1u32, 2, 3, 5, 7, 8]), "1..3,5,7,8");
        assert_eq!(format_range(&[4u8]), "4");
        let v = parse_range("1..3,5,7,8", 1, 50).unwrap();
        assert_eq!(parse_range(&format_range(&v), 1, 50).unwrap(), v);
    }
}
