//! Warnings as every JSON report carries them: `{path, rule, message, line}` objects, the same
//! fields as the `file:line:col: path [rule]: message` text lines on standard error, so a
//! pipeline can filter on `rule` instead of parsing English.

use crate::scenario::error::Located;
use serde::Serialize;

/// One warning of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// What it is about: a scenario key (`pool.healthmonitor.timeout`) or a report key
    /// (`failover_latency_s.p999`).
    pub path: Option<String>,
    /// A stable name of the rule, for filters.
    pub rule: Option<String>,
    pub message: String,
    /// The line in the scenario file, when the warning is about one.
    pub line: Option<usize>,
}

impl From<&Located> for Warning {
    fn from(l: &Located) -> Self {
        Warning {
            path: l.key.clone(),
            rule: l.rule.clone(),
            message: l.message.clone(),
            line: l.line_col.map(|(line, _)| line),
        }
    }
}

impl Warning {
    /// The warning as a line of standard error: `warning: path [rule]: message`.
    pub fn line_text(&self) -> String {
        let mut s = String::from("warning: ");
        if let Some(p) = &self.path {
            s.push_str(p);
            if let Some(r) = &self.rule {
                s.push_str(&format!(" [{r}]"));
            }
            s.push_str(": ");
        }
        s.push_str(&self.message);
        s
    }
}
