//! `trials --save-baseline NAME` and `--baseline NAME`: keep a report, and compare a later one
//! with it percentile by percentile, with the significance of each change (as criterion does).
//!
//! A baseline is the trials JSON report itself, stored at `.elbsim/baselines/NAME.json` (or at
//! NAME when it is a path: it contains `/` or ends in `.json`). The comparison needs nothing
//! else: every percentile in the report carries its 95% confidence interval.
//!
//! Significance, per percentile: **changed** when the two 95% intervals do not overlap (each
//! estimate is outside the other's interval, a conservative test: two non-overlapping 95%
//! intervals mean a difference at well under the 5% level); **maybe** when the new estimate
//! lies outside the baseline's interval but the intervals overlap; **no change** otherwise.
//! An open side (a small sample) counts as reaching infinitely far, so a percentile the sample
//! cannot bound is never called changed.

use crate::experiment::ci::QUANTILES;
use serde::Serialize;
use serde_json::Value;
use std::path::PathBuf;

/// Where a baseline named `name` is kept.
pub fn path_of(name: &str) -> PathBuf {
    if name.contains('/') || name.ends_with(".json") {
        PathBuf::from(name)
    } else {
        PathBuf::from(".elbsim/baselines").join(format!("{name}.json"))
    }
}

/// Checks a baseline name: a plain name must be a usable file name.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." || name.contains('\0') {
        return Err(format!(
            "{name:?} is not a baseline name; use letters, digits, - and _ (e.g. main), or a path ending in .json"
        ));
    }
    Ok(())
}

/// Reads a saved baseline.
pub fn load(name: &str) -> Result<Value, String> {
    let p = path_of(name);
    let text = std::fs::read_to_string(&p).map_err(|e| {
        format!(
            "--baseline {name}: cannot read {}: {e}; save one first with --save-baseline {name}",
            p.display()
        )
    })?;
    let v: Value = serde_json::from_str(&text).map_err(|e| {
        format!(
            "--baseline {name}: {} is not a trials JSON report: {e}",
            p.display()
        )
    })?;
    if v.get("failover_latency_s").is_none() {
        return Err(format!(
            "--baseline {name}: {} is not a trials JSON report (no failover_latency_s); save one with --save-baseline",
            p.display()
        ));
    }
    Ok(v)
}

/// The change of one percentile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// e.g. `failover_latency_s.p99`.
    pub key: String,
    pub baseline: Option<f64>,
    pub baseline_ci: [Option<f64>; 2],
    pub new: Option<f64>,
    pub new_ci: [Option<f64>; 2],
    /// (new - baseline) / baseline, when both exist and the baseline is not 0.
    pub change: Option<f64>,
    /// `changed`, `maybe`, `no change` or `no data`.
    pub significance: &'static str,
}

fn ci_of(v: &Value, key: &str) -> [Option<f64>; 2] {
    let a = v.get(format!("{key}_ci"));
    let side = |i: usize| a.and_then(|a| a.get(i)).and_then(Value::as_f64);
    [side(0), side(1)]
}

fn inside(x: f64, ci: [Option<f64>; 2]) -> bool {
    ci[0].is_none_or(|lo| lo <= x) && ci[1].is_none_or(|hi| x <= hi)
}

fn overlap(a: [Option<f64>; 2], b: [Option<f64>; 2]) -> bool {
    let below = |hi: Option<f64>, lo: Option<f64>| matches!((hi, lo), (Some(h), Some(l)) if h < l);
    !below(a[1], b[0]) && !below(b[1], a[0])
}

/// Compares the percentiles of every latency both reports have.
pub fn compare(baseline: &Value, new: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    for dist in [
        "detection_latency_s",
        "failover_latency_s",
        "failback_latency_s",
        "outage_latency_s",
        "persisted_failback_latency_s",
    ] {
        let (Some(b), Some(n)) = (baseline.get(dist), new.get(dist)) else {
            continue;
        };
        if b.get("count").and_then(Value::as_u64) == Some(0)
            && n.get("count").and_then(Value::as_u64) == Some(0)
        {
            continue;
        }
        for (q, _) in QUANTILES {
            let (bv, nv) = (
                b.get(q).and_then(Value::as_f64),
                n.get(q).and_then(Value::as_f64),
            );
            let (bci, nci) = (ci_of(b, q), ci_of(n, q));
            let significance = match (bv, nv) {
                (Some(bv), Some(nv)) => {
                    if !overlap(bci, nci) {
                        "changed"
                    } else if !inside(nv, bci) || !inside(bv, nci) {
                        "maybe"
                    } else {
                        "no change"
                    }
                }
                _ => "no data",
            };
            out.push(Change {
                key: format!("{dist}.{q}"),
                baseline: bv,
                baseline_ci: bci,
                new: nv,
                new_ci: nci,
                change: match (bv, nv) {
                    (Some(b), Some(n)) if b != 0.0 => Some((n - b) / b),
                    _ => None,
                },
                significance,
            });
        }
    }
    out
}

/// The comparison as a text table, for the end of the text report.
pub fn render(name: &str, changes: &[Change]) -> String {
    let f = |x: Option<f64>| x.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"));
    let ci = |c: [Option<f64>; 2]| format!("[{}, {}]", f(c[0]), f(c[1]));
    let rows: Vec<Vec<String>> = changes
        .iter()
        .map(|c| {
            vec![
                c.key.clone(),
                format!("{} {}", f(c.baseline), ci(c.baseline_ci)),
                format!("{} {}", f(c.new), ci(c.new_ci)),
                c.change
                    .map_or_else(|| "-".to_string(), |x| format!("{:+.2}%", x * 100.0)),
                c.significance.to_string(),
            ]
        })
        .collect();
    format!(
        "\nchange against baseline {name} (95% CIs; changed = intervals apart, maybe = new value outside the baseline's interval)\n{}",
        super::text::table(&["percentile", "baseline", "new", "change", "significance"], &rows)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn significance_follows_the_intervals() {
        let b = json!({"failover_latency_s": {"count": 100, "p50": 10.0, "p50_ci": [9.0, 11.0],
            "p90": 12.0, "p90_ci": [11.5, 12.5], "p99": 14.0, "p99_ci": [13.0, null],
            "p999": 15.0, "p999_ci": [14.0, null]}});
        let n = json!({"failover_latency_s": {"count": 100, "p50": 10.5, "p50_ci": [9.5, 11.5],
            "p90": 12.8, "p90_ci": [12.2, 13.5], "p99": 20.0, "p99_ci": [19.0, null],
            "p999": null, "p999_ci": [null, null]}});
        let c = compare(&b, &n);
        let sig: Vec<&str> = c.iter().map(|c| c.significance).collect();
        assert_eq!(sig, ["no change", "maybe", "maybe", "no data"]);
        assert!((c[0].change.unwrap() - 0.05).abs() < 1e-12);
        let n2 = json!({"failover_latency_s": {"count": 100, "p50": 20.0, "p50_ci": [19.0, 21.0]}});
        assert_eq!(compare(&b, &n2)[0].significance, "changed");
        assert_eq!(
            path_of("main"),
            PathBuf::from(".elbsim/baselines/main.json")
        );
        assert_eq!(path_of("x/y.json"), PathBuf::from("x/y.json"));
    }
}
