//! One function per command: typed options in, text out, with the exit code.
//!
//! The binary only parses the command line and prints; everything a command does lives here, so
//! tests can call it without a process.

pub mod body;
pub mod live;
pub mod probe;
pub mod run;
pub mod trials;
pub mod tune;

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

/// Loads a scenario with the command line's health-check overrides, or the outcome that reports
/// why it cannot run (exit 1).
pub fn load_scenario(
    path: Option<&std::path::Path>,
    strict: bool,
    check: crate::scenario::CheckOverrides,
) -> Result<crate::scenario::Scenario, Outcome> {
    let mut s = crate::scenario::load(path, strict).map_err(|e| Outcome {
        stdout: String::new(),
        stderr: format!("{e}\n"),
        exit: 1,
    })?;
    s.override_check(check);
    Ok(s)
}

/// Warnings about the scenario's pool, one line each, for standard error.
pub fn warning_lines(s: &crate::scenario::Scenario) -> String {
    s.warnings
        .iter()
        .map(|w| format!("warning: {w}\n"))
        .collect()
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
