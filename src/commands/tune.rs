//! `elbsim tune`: the best health-check parameters for a scenario, with the evidence.

use super::{to_json, Outcome};
use crate::api::pool::{MonitorType, Pool};
use crate::experiment::tune::{
    tune, Constraints, Objective, PointResult, Ranges, TuneOptions, TuneReport,
};
use crate::output;
use crate::report::text::{s3, table};
use crate::sim::config::FaultKind;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// Options of `elbsim tune` besides the scenario.
#[derive(Debug, Clone)]
pub struct TuneArgs {
    pub ranges: Ranges,
    pub trials: u64,
    pub seed: Option<u64>,
    pub jobs: usize,
    pub objective: Objective,
    pub constraints: Constraints,
    pub probe_fault: FaultKind,
    pub json: bool,
    pub csv: Option<PathBuf>,
    pub top: usize,
    pub strict: bool,
}

/// Parses `1..10`, `1,3,5` or `4` into values, each within `lo..=hi` (the API's range).
pub fn parse_range(text: &str, lo: u32, hi: u32) -> Result<Vec<u32>, String> {
    let num = |s: &str| {
        s.trim()
            .parse::<u32>()
            .map_err(|_| format!("{s:?} is not a whole number; write a range as 1..10, 1,3,5 or 4"))
    };
    let mut out = Vec::new();
    for part in text.split(',') {
        match part.split_once("..") {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b.trim_start_matches('='))?);
                if a > b {
                    return Err(format!("{part:?} is an empty range; write low..high"));
                }
                out.extend(a..=b);
            }
            None => out.push(num(part)?),
        }
    }
    if let Some(bad) = out.iter().find(|&&v| v < lo || v > hi) {
        return Err(format!(
            "{bad} is outside what the API accepts ({lo}..{hi})"
        ));
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
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
    let _ = writeln!(o, "elbsim tune: {name}");
    let _ = writeln!(
        o,
        "{} points x {} trials | seed {} | objective {} | constraint: false failovers <= {}/day{}{}",
        r.points.len(),
        r.trials_per_point,
        r.seed,
        serde_json::to_value(r.objective).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
        r.constraints.max_false_per_day,
        if r.constraints.timeout_below_delay { ", timeout < delay" } else { "" },
        r.constraints
            .max_missed_rate
            .map_or(String::new(), |m| format!(", missed-fault rate <= {m}")),
    );
    if let Some(f) = r.probe_fault {
        let _ = writeln!(
            o,
            "(no fault on the master in the scenario: latency measured with an added {f} fault)"
        );
    }
    o.push('\n');
    let mut header = vec!["rank", "delay", "timeout", "down", "up"];
    if quic {
        header.extend(["offset", "len"]);
    }
    header.extend([
        "objective",
        "p50 failover",
        "p99 failover",
        "false/day",
        "sim false (95% CI/day)",
        "ok",
        "pareto",
    ]);
    let rows: Vec<Vec<String>> = r
        .points
        .iter()
        .take(top)
        .enumerate()
        .map(|(i, p)| {
            let mut row = vec![
                (i + 1).to_string(),
                p.point.delay.to_string(),
                p.point.timeout.to_string(),
                p.point.max_retries_down.to_string(),
                p.point.max_retries.to_string(),
            ];
            if quic {
                row.push(p.point.offset.map_or("-".into(), |x| x.to_string()));
                row.push(p.point.len.map_or("-".into(), |x| x.to_string()));
            }
            let (lo, hi) = p.false_failovers.simulated_ci95_per_day;
            row.extend([
                p.objective.map_or("-".to_string(), |x| format!("{x:.3}")),
                opt(p.failover_latency_s.p50),
                opt(p.failover_latency_s.p99),
                per_day(p.false_failovers.per_day),
                format!(
                    "{} ({}..{})",
                    p.false_failovers.simulated_count,
                    per_day(lo),
                    per_day(hi)
                ),
                if p.feasible {
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
            p.objective.map_or("-".to_string(), |x| format!("{x:.3}")),
            per_day(p.false_failovers.per_day)
        );
    }
    match r.points.first().filter(|p| p.feasible) {
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
            if quic {
                let _ = writeln!(
                    o,
                    "check it: set that quic_cid_hash_strategy in the scenario's pool, then"
                );
            }
            let _ = writeln!(
                o,
                "check it: elbsim trials {origin}{} -n 10000",
                super::run::override_flags(&crate::scenario::CheckOverrides {
                    delay: Some(best.point.delay),
                    timeout: Some(best.point.timeout),
                    max_retries: Some(best.point.max_retries),
                    max_retries_down: Some(best.point.max_retries_down),
                })
            );
        }
        None => {
            let _ = writeln!(
                o,
                "\nno point meets the constraints; relax them or widen the ranges"
            );
        }
    }
    let _ = writeln!(o, "\nreproduce: {reproduce}");
    o
}

/// The sweep as CSV, one row per point in rank order.
pub fn csv(r: &TuneReport) -> String {
    let mut s = String::from(
        "rank,delay,timeout,max_retries_down,max_retries,offset,len,objective,p50_failover_s,p99_failover_s,p99_detection_s,false_failovers_per_day,simulated_false_failovers,simulated_hours,missed_fault_rate,feasible,pareto\n",
    );
    let f = |x: Option<f64>| x.map_or(String::new(), |v| v.to_string());
    for (i, p) in r.points.iter().enumerate() {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            i + 1,
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
            p.pareto
        );
    }
    s
}

/// `elbsim tune SCENARIO`.
pub fn run(
    path: Option<&Path>,
    args: &TuneArgs,
    stop: &AtomicBool,
    progress: &(dyn Fn(u64) + Sync),
) -> Outcome {
    let fail = |msg: String| Outcome {
        stdout: String::new(),
        stderr: msg,
        exit: 1,
    };
    let s = match super::load_scenario(path, args.strict, Default::default()) {
        Ok(s) => s,
        Err(failed) => return failed,
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
    let report = tune(
        &s.sim,
        &args.ranges,
        TuneOptions {
            trials: args.trials,
            seed,
            jobs: args.jobs,
            objective: args.objective,
            constraints: args.constraints,
            probe_fault: args.probe_fault,
        },
        stop,
        progress,
    );
    if let Some(p) = &args.csv {
        if let Err(e) = output::write_atomically(p, csv(&report).as_bytes()) {
            return fail(format!("{}: cannot write the CSV: {e}\n", p.display()));
        }
    }
    let stderr = super::warning_lines(&s);
    let stdout = if args.json {
        let mut v = serde_json::to_value(&report).unwrap_or_default();
        if let (Some(obj), Some(best)) = (
            v.as_object_mut(),
            report.points.first().filter(|p| p.feasible),
        ) {
            obj.insert(
                "best".into(),
                serde_json::to_value(best).unwrap_or_default(),
            );
            obj.insert("healthmonitor".into(), healthmonitor_json(&s.pool, best));
        }
        to_json(&v)
    } else {
        let reproduce = format!(
            "elbsim tune {} -n {} --seed {seed} (with the same ranges)",
            s.origin, args.trials
        );
        render(
            &report, &s.pool, &s.name, &s.origin, args.top, quic, &reproduce,
        )
    };
    Outcome {
        stdout,
        stderr,
        exit: 0,
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
    }
}
