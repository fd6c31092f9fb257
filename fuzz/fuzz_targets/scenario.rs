//! Fuzz target: any text as a scenario file (TOML, or a bare JSON body when it starts with
//! `{`), through the loader: located errors or a checked `SimConfig` out, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    // The loader refuses non-UTF-8 text with a message; the fuzzer should spend its time on
    // text that gets past that.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // `body = "..."` resolves against this name's directory, which holds no body file, so the
    // target reads no file the fuzzer did not write.
    let origin = Path::new("/nonexistent-elbsim-fuzz/input.toml");
    match elbsim::scenario::load_str(origin, text, false) {
        Ok(s) => {
            // What a run would need: a positive duration and at least one LB node.
            assert!(s.sim.duration.0 > 0, "zero duration accepted");
            assert!(s.sim.lb_nodes >= 1, "no LB node accepted");
        }
        Err(e) => {
            assert!(!e.problems.is_empty(), "an error with no problem");
            let _ = e.to_string();
        }
    }
});
