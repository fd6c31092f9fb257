//! Golden files: the text and JSON reports of `run`, `trials` and `tune` at fixed seeds, byte for
//! byte. A change that moves a number shows up here as a diff to explain. To accept a deliberate
//! change, run `UPDATE_GOLDEN=1 cargo test --test golden` and review the diff of `tests/golden/`.

use assert_cmd::Command;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `elbsim ARGS` from the repository root and compares its stdout with `tests/golden/NAME`.
fn golden(name: &str, args: &[&str]) {
    let out = Command::cargo_bin("elbsim")
        .expect("the elbsim binary")
        .current_dir(root())
        .args(args)
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .expect("elbsim runs");
    assert!(
        out.status.success(),
        "elbsim {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = String::from_utf8(out.stdout).expect("utf-8");
    let path = root().join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "{} is missing: run UPDATE_GOLDEN=1 cargo test --test golden",
            Path::new("tests/golden").join(name).display()
        )
    });
    if got != want {
        let line = got
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(got.lines().count().min(want.lines().count()));
        panic!(
            "{name} differs from its golden file at line {}:\n got: {:?}\nwant: {:?}",
            line + 1,
            got.lines().nth(line),
            want.lines().nth(line)
        );
    }
}

#[test]
fn run_reports() {
    golden("run-seed-example.txt", &["run"]);
    golden(
        "run-crash.json",
        &["run", "scenarios/crash.toml", "--format", "json"],
    );
    golden(
        "run-traffic-crash.txt",
        &["run", "scenarios/traffic-crash.toml", "--seed", "3"],
    );
    golden(
        "run-traffic-persistence-failback.json",
        &[
            "run",
            "scenarios/traffic-persistence-failback.toml",
            "--format",
            "json",
        ],
    );
    golden(
        "run-four-nodes.txt",
        &["run", "scenarios/four-nodes.toml", "--seed", "11"],
    );
}

#[test]
fn trials_reports() {
    golden(
        "trials-crash.txt",
        &["trials", "scenarios/crash.toml", "-n", "500", "-j", "1"],
    );
    golden(
        "trials-noisy.json",
        &[
            "trials",
            "scenarios/noisy-network.toml",
            "-n",
            "200",
            "-j",
            "2",
            "--format",
            "json",
        ],
    );
    golden(
        "trials-traffic-crash.json",
        &[
            "trials",
            "scenarios/traffic-crash.toml",
            "-n",
            "20",
            "--format",
            "json",
        ],
    );
}

#[test]
fn tune_reports() {
    let sweep = [
        "--delay",
        "2..4",
        "--timeout",
        "1..2",
        "--max-retries-down",
        "2..3",
        "-n",
        "40",
    ];
    let mut text = vec!["tune", "scenarios/noisy-network.toml"];
    text.extend(sweep);
    golden("tune-noisy.txt", &text);
    let mut json = text.clone();
    json.extend(["--format", "json"]);
    golden("tune-noisy.json", &json);
}
