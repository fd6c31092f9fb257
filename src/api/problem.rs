//! One finding about a request body: where it is, which rule it breaks, and what to do about it.
//!
//! `path` uses the API's own field names (`pool.members[1].role`, `pool.healthmonitor.delay`);
//! problems about the body as a whole (empty, not JSON, too deep) use `$`. `rule` is a short,
//! stable kebab-case name that scripts and tests may match on; `message` is for a person and
//! always says what would be accepted.

use serde::Serialize;

/// A rule broken by a request body (or a warning about a value the API accepts but that
/// probably does not do what the user meant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Where: `$` for the whole body, else a dotted path with `[i]` for array items.
    pub path: String,
    /// Which rule: a stable kebab-case name such as `range` or `member-roles`.
    pub rule: String,
    /// What is wrong and what to do instead.
    pub message: String,
}

impl Problem {
    /// Builds a problem; takes anything string-like so call sites stay short.
    pub fn new(
        path: impl Into<String>,
        rule: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Problem {
            path: path.into(),
            rule: rule.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} [{}]", self.path, self.message, self.rule)
    }
}

/// How bad a problem is. Warnings are accepted by the API (and by the simulator) unless the
/// caller asked for strict checking, which turns every warning into an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Severity {
    Error,
    Warning,
}
