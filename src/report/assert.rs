//! `trials --assert`: thresholds a pipeline can gate on, k6-style.
//!
//! Grammar (whitespace between the parts is optional):
//!
//! ```text
//! assertion := key op value
//! key       := a dotted path into the trials JSON report, e.g. failover_latency_s.p99,
//!              traffic.refused.mean, failover_latency_s.p99_ci.1 (array items by index),
//!              or an alias (below)
//! op        := "<" | "<=" | ">" | ">=" | "==" | "!="
//! value     := number [unit]
//! unit      := "ms" | "s" | "m"     (keys in seconds: a path with a segment ending in _s)
//!            | "%"                  (rates: missed_fault_rate, ...: 1% = 0.01)
//! ```
//!
//! Aliases: `detection.X`, `failover.X`, `failback.X`, `outage.X` and `persisted_failback.X` are
//! `<name>_latency_s.X`; `unavailability.X` is `traffic.unavailability_s.X`; `missed_rate` is
//! `missed_fault_rate`; `false_failovers_per_day` is `false_failovers_per_hour` × 24;
//! `client.failed` is the mean per trial of all client failures (the counters `tune
//! --objective client-failures` sums); `client.X` is `traffic.X.mean`.
//!
//! A key whose value is `null` (a percentile with no samples, a rate with no pairs) fails its
//! assertion: a gate should not pass on no data. An unknown key is a usage error that names the
//! closest known key.

use serde_json::Value;
use std::fmt;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    fn holds(self, a: f64, b: f64) -> bool {
        // `==` on measured floats: equal to 1e-9 relative, so "0.1 + 0.2 == 0.3" holds.
        let eq = (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
        match self {
            Op::Lt => a < b && !eq,
            Op::Le => a < b || eq,
            Op::Gt => a > b && !eq,
            Op::Ge => a > b || eq,
            Op::Eq => eq,
            Op::Ne => !eq,
        }
    }
}

/// The unit written after a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    None,
    Ms,
    S,
    Min,
    Percent,
}

/// One parsed `--assert`.
#[derive(Debug, Clone, PartialEq)]
pub struct Assertion {
    /// As the user wrote it.
    pub text: String,
    /// As written (possibly an alias).
    pub key: String,
    pub op: Op,
    /// As written, before the unit.
    pub number: f64,
    pub unit: Unit,
}

/// Parses an assertion's syntax (keys are checked against a report later, in [`resolve`]).
pub fn parse(text: &str) -> Result<Assertion, String> {
    let t = text.trim();
    let ops = ["<=", ">=", "==", "!=", "<", ">"];
    let (pos, op_text) = ops
        .iter()
        .filter_map(|o| t.find(o).map(|p| (p, *o)))
        // The leftmost operator; at one position the two-character one (listed first) wins.
        .min_by_key(|(p, _)| *p)
        .ok_or_else(|| {
            format!(
                "{text:?} has no comparison; write KEY OP VALUE, e.g. \"failover.p99 <= 5s\" (OP one of < <= > >= == !=)"
            )
        })?;
    let key = t[..pos].trim();
    let rest = t[pos + op_text.len()..].trim();
    if key.is_empty() {
        return Err(format!(
            "{text:?} has no key before {op_text}; e.g. \"failover.p99 <= 5s\""
        ));
    }
    let op = match op_text {
        "<=" => Op::Le,
        ">=" => Op::Ge,
        "==" => Op::Eq,
        "!=" => Op::Ne,
        "<" => Op::Lt,
        _ => Op::Gt,
    };
    let (num, unit) = if let Some(n) = rest.strip_suffix("ms") {
        (n, Unit::Ms)
    } else if let Some(n) = rest.strip_suffix('s') {
        (n, Unit::S)
    } else if let Some(n) = rest.strip_suffix('m') {
        (n, Unit::Min)
    } else if let Some(n) = rest.strip_suffix('%') {
        (n, Unit::Percent)
    } else {
        (rest, Unit::None)
    };
    let number: f64 = num.trim().parse().ok().filter(|x: &f64| x.is_finite()).ok_or_else(|| {
        format!("{text:?}: {rest:?} is not a number with an optional unit (ms, s, m or %), e.g. 5s, 250ms, 1.5, 2%")
    })?;
    Ok(Assertion {
        text: t.to_string(),
        key: key.to_string(),
        op,
        number,
        unit,
    })
}

/// An assertion whose key was found in the report: the JSON path and the threshold in the
/// report's unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub assertion: Assertion,
    pub path: String,
    pub threshold: f64,
}

/// The friendly name's JSON path.
fn unalias(key: &str) -> String {
    let (head, tail) = key.split_once('.').unwrap_or((key, ""));
    let join = |p: &str| {
        if tail.is_empty() {
            p.to_string()
        } else {
            format!("{p}.{tail}")
        }
    };
    match head {
        "detection" | "failover" | "failback" | "outage" | "persisted_failback" => {
            join(&format!("{head}_latency_s"))
        }
        "unavailability" => join("traffic.unavailability_s"),
        "missed_rate" if tail.is_empty() => "missed_fault_rate".into(),
        "client" if tail == "failed" => "client_failures_per_trial".into(),
        "client" if !tail.is_empty() && !tail.contains('.') => format!("traffic.{tail}.mean"),
        _ => key.to_string(),
    }
}

/// The report as assertions see it: its JSON plus the derived keys of the aliases.
pub fn view(report_json: &Value) -> Value {
    let mut v = report_json.clone();
    if let Some(obj) = v.as_object_mut() {
        if let Some(h) = obj.get("false_failovers_per_hour").and_then(Value::as_f64) {
            obj.insert("false_failovers_per_day".into(), (h * 24.0).into());
        }
        if let Some(t) = obj.get("traffic").and_then(Value::as_object) {
            let sum: f64 = crate::experiment::tune::CLIENT_FAILURE_COUNTERS
                .iter()
                .filter_map(|k| t.get(*k)?.get("mean")?.as_f64())
                .sum();
            obj.insert("client_failures_per_trial".into(), sum.into());
        }
    }
    v
}

/// Every leaf key of `v` (numbers, nulls and booleans), dotted.
pub fn leaf_keys(v: &Value) -> Vec<String> {
    fn walk(v: &Value, prefix: &str, out: &mut Vec<String>) {
        let join = |k: &str| {
            if prefix.is_empty() {
                k.to_string()
            } else {
                format!("{prefix}.{k}")
            }
        };
        match v {
            Value::Object(m) => m.iter().for_each(|(k, x)| walk(x, &join(k), out)),
            // Lists of records (warnings) are not thresholds; fixed pairs ([lo, hi]) are.
            Value::Array(a) if a.len() <= 2 && a.iter().all(|x| !x.is_object()) => a
                .iter()
                .enumerate()
                .for_each(|(i, x)| walk(x, &join(&i.to_string()), out)),
            Value::Array(_) | Value::String(_) => {}
            _ => out.push(prefix.to_string()),
        }
    }
    let mut out = Vec::new();
    walk(v, "", &mut out);
    out
}

fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, seg| match v {
        Value::Object(m) => m.get(seg),
        Value::Array(a) => a.get(seg.parse::<usize>().ok()?),
        _ => None,
    })
}

/// Checks each assertion's key and unit against `view` (a [`view`] of a report of the same
/// scenario: the keys do not depend on the numbers). Errors are usage errors.
pub fn resolve(list: &[Assertion], view: &Value) -> Result<Vec<Resolved>, String> {
    let keys = leaf_keys(view);
    list.iter()
        .map(|a| {
            let path = unalias(&a.key);
            match lookup(view, &path) {
                Some(Value::Number(_) | Value::Null | Value::Bool(_)) => {}
                Some(Value::Object(_)) => {
                    let first = keys
                        .iter()
                        .find(|k| k.starts_with(&format!("{path}.")))
                        .cloned()
                        .unwrap_or_default();
                    return Err(format!(
                        "--assert {:?}: {} is a group of figures, not one; name one, e.g. {first}",
                        a.text, a.key
                    ));
                }
                _ => {
                    let closest = keys
                        .iter()
                        .min_by(|x, y| {
                            strsim::jaro_winkler(&path, y)
                                .total_cmp(&strsim::jaro_winkler(&path, x))
                        })
                        .cloned()
                        .unwrap_or_default();
                    return Err(format!(
                        "--assert {:?}: no key {path} in this trials report; the closest is {closest} (keys are the JSON report's, dotted; see `elbsim trials --help`)",
                        a.text
                    ));
                }
            }
            let seconds = path.split('.').any(|s| s.ends_with("_s"));
            let rate = path.contains("rate");
            let threshold = match a.unit {
                Unit::None => a.number,
                Unit::Ms | Unit::S | Unit::Min if !seconds => {
                    return Err(format!(
                        "--assert {:?}: {path} is not a time; drop the unit",
                        a.text
                    ))
                }
                Unit::Ms => a.number / 1000.0,
                Unit::S => a.number,
                Unit::Min => a.number * 60.0,
                Unit::Percent if !rate => {
                    return Err(format!(
                        "--assert {:?}: {path} is not a rate; % applies to rates such as missed_fault_rate",
                        a.text
                    ))
                }
                Unit::Percent => a.number / 100.0,
            };
            Ok(Resolved {
                assertion: a.clone(),
                path,
                threshold,
            })
        })
        .collect()
}

/// One assertion's outcome.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Verdict {
    pub assertion: String,
    pub key: String,
    /// The report's value (`null` when it had none).
    pub actual: Option<f64>,
    pub op: &'static str,
    pub threshold: f64,
    pub passed: bool,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let actual = self
            .actual
            .map_or_else(|| "null (no data)".to_string(), |x| format!("{x}"));
        write!(
            f,
            "assert {}: {} ({} = {actual}, must be {} {})",
            if self.passed { "PASS" } else { "FAIL" },
            self.assertion,
            self.key,
            self.op,
            self.threshold
        )
    }
}

/// Evaluates resolved assertions against a report's [`view`].
pub fn evaluate(list: &[Resolved], view: &Value) -> Vec<Verdict> {
    list.iter()
        .map(|r| {
            let actual = lookup(view, &r.path).and_then(|v| match v {
                Value::Bool(b) => Some(f64::from(u8::from(*b))),
                v => v.as_f64(),
            });
            Verdict {
                assertion: r.assertion.text.clone(),
                key: r.path.clone(),
                actual,
                op: r.assertion.op.as_str(),
                threshold: r.threshold,
                passed: actual.is_some_and(|a| r.assertion.op.holds(a, r.threshold)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report() -> Value {
        view(&json!({
            "failover_latency_s": {"count": 3, "p99": 4.5, "p99_ci": [4.0, null]},
            "false_failovers_per_hour": 0.01,
            "missed_fault_rate": 0.02,
            "traffic": {"refused": {"mean": 10.0}, "broken": {"mean": 5.5}},
            "partial": false,
        }))
    }

    fn check(text: &str) -> Result<bool, String> {
        let a = parse(text)?;
        let r = resolve(&[a], &report())?;
        Ok(evaluate(&r, &report())[0].passed)
    }

    #[test]
    fn every_operator_passes_and_fails() {
        for (t, want) in [
            ("failover.p99 <= 5s", true),
            ("failover.p99 <= 4s", false),
            ("failover.p99 < 4.5s", false),
            ("failover.p99 < 4501ms", true),
            ("failover.p99 >= 4.5", true),
            ("failover.p99 > 4.5", false),
            ("failover.p99 == 4500ms", true),
            ("failover.p99 != 4.5s", false),
            ("failover.p99 != 1m", true),
            ("failover_latency_s.p99_ci.0 >= 4s", true),
            ("failover_latency_s.p99_ci.1 <= 10s", false), // null: no data fails
            ("false_failovers_per_day <= 1", true),
            ("missed_rate < 1%", false),
            ("missed_rate<=2%", true),
            ("client.failed <= 15.5", true),
            ("client.failed < 15.5", false),
            ("client.refused == 10", true),
            ("partial == 0", true),
        ] {
            assert_eq!(check(t), Ok(want), "{t}");
        }
    }

    #[test]
    fn mistakes_are_explained() {
        let e = check("failover.p98 <= 5s").unwrap_err();
        assert!(
            e.contains("no key failover_latency_s.p98")
                && e.contains("closest is failover_latency_s.p99"),
            "{e}"
        );
        assert!(check("failover <= 5s")
            .unwrap_err()
            .contains("group of figures"));
        assert!(check("false_failovers_per_day <= 1s")
            .unwrap_err()
            .contains("not a time"));
        assert!(check("failover.p99 <= 5%")
            .unwrap_err()
            .contains("not a rate"));
        assert!(parse("failover.p99 5s")
            .unwrap_err()
            .contains("no comparison"));
        assert!(parse("failover.p99 <= fast")
            .unwrap_err()
            .contains("not a number"));
        assert!(parse("<= 5").unwrap_err().contains("no key"));
    }
}
