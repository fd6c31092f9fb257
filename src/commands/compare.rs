//! `elbsim compare`: one scenario's trials under several data-plane profiles, side by side.
//!
//! Each profile gets the same batch `elbsim trials` would run with `--profile` (same `-n`,
//! `--seed`, `--jobs`, health-check overrides), so a column here is exactly what that command
//! reports; only the rules differ (`crate::model::profile`). A profile that cannot apply to the
//! pool (haproxy has no UDP check; envoy has no fixed_rate schedule) keeps its column, with `-` and
//! the reason under the table, rather than failing the command.
//!
//! Deterministic: trial `i` of every profile uses the streams of `(seed, i)`, whatever the job
//! count, and the profiles run one after the other in the order given.

use super::{to_json, Outcome};
use crate::experiment::stats::Summary;
use crate::experiment::trials::{run_trials_observed, TrialsOptions, TrialsReport};
use crate::experiment::tune::CLIENT_FAILURE_COUNTERS;
use crate::model::profile::ProfileName;
use crate::report::text::{s3, table};
use crate::scenario::CheckOverrides;
use serde::Serialize;
use std::fmt::Write;
use std::path::Path;

/// Options of `elbsim compare` besides the scenario.
#[derive(Debug, Clone)]
pub struct CompareArgs {
    /// Trials per profile.
    pub n: u64,
    pub seed: Option<u64>,
    pub jobs: usize,
    pub json: bool,
    pub strict: bool,
    /// Health-check overrides, applied under every profile (`profile` is ignored: see
    /// `profiles`).
    pub check: CheckOverrides,
    /// The profiles, in column order; empty: every available one.
    pub profiles: Vec<ProfileName>,
}

/// p50, p90 and p99 of one latency, seconds; `None` without samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
}

impl From<&Summary> for Percentiles {
    fn from(s: &Summary) -> Self {
        Percentiles {
            count: s.count,
            p50: s.p50,
            p90: s.p90,
            p99: s.p99,
        }
    }
}

/// One profile's column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Column {
    pub profile: ProfileName,
    /// Why the profile did not run (it cannot apply to this pool, or is not available).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detection_latency_s: Option<Percentiles>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failover_latency_s: Option<Percentiles>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failback_latency_s: Option<Percentiles>,
    /// False failovers per day of fault-free time, summed over LB nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub false_failovers_per_day: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missed_faults: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missed_fault_rate: Option<f64>,
    /// Mean client failures per trial (the counters `tune --objective client-failures` sums);
    /// `None` without `[traffic]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_failures_mean: Option<f64>,
    /// Mean failed requests per trial, with `[traffic]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_failed_mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partial: Option<bool>,
}

/// What `elbsim compare --format json` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompareReport {
    pub scenario: String,
    pub trials: u64,
    pub seed: u64,
    pub profiles: Vec<Column>,
    /// True when Ctrl-C stopped a batch early.
    pub partial: bool,
    pub reproduce: String,
}

fn column(profile: ProfileName, r: &TrialsReport) -> Column {
    let traffic = r.traffic.as_ref();
    Column {
        profile,
        unavailable: None,
        detection_latency_s: Some((&r.detection_latency_s).into()),
        failover_latency_s: Some((&r.failover_latency_s).into()),
        failback_latency_s: Some((&r.failback_latency_s).into()),
        false_failovers_per_day: Some(r.false_failovers_per_hour * 24.0),
        missed_faults: Some(r.missed_faults),
        missed_fault_rate: r.missed_fault_rate,
        client_failures_mean: traffic.map(|t| {
            CLIENT_FAILURE_COUNTERS
                .iter()
                .map(|k| t.counters.get(k).map_or(0.0, |c| c.mean))
                .sum()
        }),
        requests_failed_mean: traffic
            .map(|t| t.counters.get("requests_failed").map_or(0.0, |c| c.mean)),
        partial: Some(r.partial),
    }
}

fn unavailable(profile: ProfileName, why: String) -> Column {
    Column {
        profile,
        unavailable: Some(why),
        detection_latency_s: None,
        failover_latency_s: None,
        failback_latency_s: None,
        false_failovers_per_day: None,
        missed_faults: None,
        missed_fault_rate: None,
        client_failures_mean: None,
        requests_failed_mean: None,
        partial: None,
    }
}

/// The `--profiles` list as typed, for the reproduce line.
fn profile_list(p: &[ProfileName]) -> String {
    p.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(",")
}

/// `elbsim compare SCENARIO`. `progress` is told how many trials are done over all profiles.
pub fn compare(
    path: Option<&Path>,
    args: &CompareArgs,
    progress: &(dyn Fn(u64) + Sync),
) -> Outcome {
    let profiles = if args.profiles.is_empty() {
        ProfileName::available_names()
    } else {
        args.profiles.clone()
    };
    // The scenario as given (its own profile) decides the seed, the name and the warnings.
    let base = match super::load_scenario(
        path,
        args.strict,
        CheckOverrides {
            profile: None,
            ..args.check
        },
    ) {
        Ok(s) => s,
        Err(failed) => return failed,
    };
    let seed = super::run::effective_seed(args.seed, &base);
    let mut stderr = super::warning_lines(&base);
    let mut columns = Vec::new();
    let mut partial = false;
    for (k, &p) in profiles.iter().enumerate() {
        let overrides = CheckOverrides {
            profile: Some(p),
            ..args.check
        };
        let s = match crate::scenario::load_with(path, args.strict, overrides) {
            Ok(s) => s,
            Err(e) => {
                let why = e
                    .problems
                    .iter()
                    .map(|p| p.message.clone())
                    .collect::<Vec<_>>()
                    .join("; ");
                columns.push(unavailable(p, why));
                continue;
            }
        };
        let done = k as u64 * args.n;
        let report = run_trials_observed(
            &s.sim,
            TrialsOptions {
                n: args.n,
                seed,
                jobs: args.jobs.max(1),
            },
            &super::INTERRUPTED,
            &|i| progress(done + i),
            None,
        );
        if let Some(limit) = report.limit {
            return super::limit_reached(&s, limit, stderr);
        }
        partial |= report.partial;
        columns.push(column(p, &report));
        if report.partial {
            break;
        }
    }
    let origin = if base.origin.is_empty() {
        String::new()
    } else {
        format!(" {}", base.origin)
    };
    let reproduce = format!(
        "elbsim compare{origin} -n {} --seed {seed} --profiles {}{}",
        args.n,
        profile_list(&profiles),
        super::run::override_flags(&CheckOverrides {
            profile: None,
            ..args.check
        })
    );
    let report = CompareReport {
        scenario: base.name.clone(),
        trials: args.n,
        seed,
        profiles: columns,
        partial,
        reproduce,
    };
    if partial {
        stderr.push_str("elbsim compare: interrupted (Ctrl-C): the last column covers the trials finished, later profiles did not run\n");
    }
    let stdout = if args.json {
        to_json(&report)
    } else {
        render(&report)
    };
    Outcome {
        stdout,
        stderr,
        exit: if partial { super::EXIT_INTERRUPTED } else { 0 },
    }
}

/// The text table: one row per figure, one column per profile.
pub fn render(r: &CompareReport) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "elbsim compare: {}", r.scenario);
    let _ = writeln!(
        o,
        "{} trials per profile | seed {}{}\n",
        r.trials,
        r.seed,
        if r.partial {
            " | PARTIAL: interrupted"
        } else {
            ""
        }
    );
    let mut header = vec!["figure"];
    header.extend(r.profiles.iter().map(|c| c.profile.as_str()));
    let cell = |x: Option<f64>| x.map_or_else(|| "-".to_string(), s3);
    let lat = |name: &str, get: &dyn Fn(&Column) -> Option<Percentiles>| {
        [("p50", 0), ("p90", 1), ("p99", 2)].map(|(q, i)| {
            let mut row = vec![format!("{name} {q}")];
            for c in &r.profiles {
                row.push(match get(c) {
                    Some(p) => cell([p.p50, p.p90, p.p99][i]),
                    None => "-".into(),
                });
            }
            row
        })
    };
    let mut rows = Vec::new();
    rows.extend(lat("detection", &|c| c.detection_latency_s));
    rows.extend(lat("failover", &|c| c.failover_latency_s));
    rows.extend(lat("failback", &|c| c.failback_latency_s));
    let mut row = |name: &str, f: &dyn Fn(&Column) -> Option<String>| {
        let mut v = vec![name.to_string()];
        v.extend(
            r.profiles
                .iter()
                .map(|c| f(c).unwrap_or_else(|| "-".into())),
        );
        rows.push(v);
    };
    row("false failovers/day", &|c| {
        c.false_failovers_per_day.map(|x| format!("{x:.3}"))
    });
    row("missed faults", &|c| {
        c.missed_faults.map(|m| match c.missed_fault_rate {
            Some(rate) => format!("{m} ({:.2}%)", rate * 100.0),
            None => m.to_string(),
        })
    });
    if r.profiles.iter().any(|c| c.client_failures_mean.is_some()) {
        row("client failures/trial", &|c| {
            c.client_failures_mean.map(|x| format!("{x:.1}"))
        });
        row("failed requests/trial", &|c| {
            c.requests_failed_mean.map(|x| format!("{x:.1}"))
        });
    }
    o.push_str(&table(&header, &rows));
    for c in &r.profiles {
        if let Some(why) = &c.unavailable {
            let _ = writeln!(o, "{}: not run: {why}", c.profile);
        }
    }
    let _ = writeln!(o, "\nreproduce: {}", r.reproduce);
    o
}
