//! `elbsim check SCENARIO`: everything `run` checks before it runs (the pool body by the API's
//! rules, every scenario key, the limits), without running: exit 0 when the scenario would run,
//! 1 when it would not. Quick enough for a pre-commit hook over a directory of scenarios.

use super::Outcome;
use std::path::Path;

/// `elbsim check [SCENARIO]` (`--strict`: the pool's API warnings are errors, as in `run`).
pub fn check(path: Option<&Path>, strict: bool) -> Outcome {
    let s = match super::load_scenario(path, strict, Default::default()) {
        Ok(s) => s,
        Err(failed) => return failed,
    };
    let faults = s.sim.faults.len();
    let warnings = s.warnings.len();
    Outcome {
        stdout: format!(
            "{}: ok: {} LB node{}, {} fault{}, {} simulated{}, {} warning{}\n",
            super::label(&s),
            s.sim.lb_nodes,
            if s.sim.lb_nodes == 1 { "" } else { "s" },
            faults,
            if faults == 1 { "" } else { "s" },
            s.sim.duration,
            if s.sim.traffic.is_some() {
                ", client traffic"
            } else {
                ""
            },
            warnings,
            if warnings == 1 { "" } else { "s" },
        ),
        stderr: super::warning_lines(&s),
        exit: 0,
    }
}
