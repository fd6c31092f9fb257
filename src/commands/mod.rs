//! One function per command: typed options in, text out, with the exit code.
//!
//! The binary only parses the command line and prints; everything a command does lives here, so
//! tests can call it without a process.

pub mod body;
pub mod check;
pub mod compare;
pub mod live;
pub mod merge;
pub mod probe;
pub mod run;
pub mod trials;
pub mod tune;

use std::sync::atomic::AtomicBool;

/// Set by the binary's Ctrl-C handler (one process-wide flag, so the engine's run loop can hold
/// a `&'static` to it and look at it every few thousand events). Commands that see it set print
/// what finished, marked partial, and exit [`EXIT_INTERRUPTED`].
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The exit code of an interrupted command: 128 + SIGINT, as shells report it.
pub const EXIT_INTERRUPTED: u8 = 130;

/// What a command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The main output (standard output, or the `--output` file).
    pub stdout: String,
    /// Notes for people (warnings), printed on standard error.
    pub stderr: String,
    /// 0 success, 1 invalid input or a run that could not complete.
    pub exit: u8,
}

/// A command's outcome with the extra files it was asked for (`--csv`, `--plot`, `--html`, ...).
#[derive(Debug, Clone)]
pub struct WithFiles {
    pub outcome: Outcome,
    /// `(flag, contents)`, e.g. `("--plot", svg)`; only for flags that were given.
    pub files: Vec<(&'static str, String)>,
}

impl From<Outcome> for WithFiles {
    fn from(outcome: Outcome) -> Self {
        WithFiles {
            outcome,
            files: Vec::new(),
        }
    }
}

/// Loads a scenario with the command line's health-check overrides (validated with the body, by
/// the API's rules), or the outcome that reports why it cannot run (exit 1).
pub fn load_scenario(
    path: Option<&std::path::Path>,
    strict: bool,
    check: crate::scenario::CheckOverrides,
) -> Result<crate::scenario::Scenario, Outcome> {
    let mut s = crate::scenario::load_with(path, strict, check).map_err(|e| Outcome {
        stdout: String::new(),
        // Every problem on its own `error: ` line, as `validate` prints them.
        stderr: e.problems.iter().map(|p| format!("error: {p}\n")).collect(),
        exit: 1,
    })?;
    s.sim.step_every_probe = check.step_every_probe;
    Ok(s)
}

/// Warnings about the scenario's pool, one line each, for standard error.
pub fn warning_lines(s: &crate::scenario::Scenario) -> String {
    s.warnings
        .iter()
        .map(|w| format!("warning: {w}\n"))
        .collect()
}

/// A run or a trial reached one of the scenario's limits: the report is not valid, exit 1 with
/// the message that names the limit and the key that raises it.
pub fn limit_reached(
    s: &crate::scenario::Scenario,
    limit: crate::sim::engine::Stopped,
    mut stderr: String,
) -> Outcome {
    stderr.push_str(&format!("error: {}: {limit}\n", label(s)));
    Outcome {
        stdout: String::new(),
        stderr,
        exit: 1,
    }
}

/// How errors name a scenario: its path, or the bundled example.
pub fn label(s: &crate::scenario::Scenario) -> &str {
    if s.origin.is_empty() {
        "<bundled seed example>"
    } else {
        &s.origin
    }
}

/// Pretty JSON with a final newline.
pub fn to_json<T: serde::Serialize>(v: &T) -> String {
    // Serializing our own report types cannot fail (no maps with non-string keys, no NaN: every
    // float is computed from integer nanoseconds or counts); fall back to a message just in case.
    let mut s =
        serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}
