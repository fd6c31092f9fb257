//! `--shard K/N` and `elbsim merge`: N shards run as separate processes merge into the report
//! the unsharded run prints, byte for byte, for `trials` and `tune`, text and JSON.

use assert_cmd::Command;
use std::path::{Path, PathBuf};

fn scenario(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// Runs elbsim with `env` set; returns (exit code, stdout, stderr).
fn elbsim(args: &[String], env: &[(&str, String)]) -> (i32, String, String) {
    let mut c = Command::cargo_bin("elbsim").unwrap();
    c.args(args)
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("SLURM_ARRAY_TASK_ID");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Runs `base` unsharded (text and JSON), then as `n` shards (alternating the ways K is given:
/// on the command line, from Kubernetes' and from Slurm's variable) and checks both merges.
fn check_split(base: &[&str], n: u64, dir: &Path) {
    let base = strings(base);
    let mut whole = base.clone();
    whole.extend(strings(&["-j", "2"]));
    let (code, text, err) = elbsim(&whole, &[]);
    assert_eq!(code, 0, "{err}");
    whole.extend(strings(&["--format", "json"]));
    let (code, json, err) = elbsim(&whole, &[]);
    assert_eq!(code, 0, "{err}");

    let mut files: Vec<PathBuf> = Vec::new();
    for k in 0..n {
        let file = dir.join(format!("{}-{n}-{k}.shard.json", base[0]));
        let mut args = base.clone();
        args.extend(strings(&["-j", "1", "-o"]));
        args.push(file.to_string_lossy().into_owned());
        let env = match k % 3 {
            0 => {
                args.extend(["--shard".to_string(), format!("{k}/{n}")]);
                vec![]
            }
            1 => {
                args.extend(["--shard".to_string(), n.to_string()]);
                vec![("JOB_COMPLETION_INDEX", k.to_string())]
            }
            _ => {
                args.extend(["--shard".to_string(), format!("/{n}")]);
                vec![("SLURM_ARRAY_TASK_ID", k.to_string())]
            }
        };
        let (code, _, err) = elbsim(&args, &env);
        assert_eq!(code, 0, "shard {k}/{n}: {err}");
        files.push(file);
    }
    // Any order of files.
    files.reverse();
    let mut merge = strings(&["merge"]);
    merge.extend(files.iter().map(|f| f.to_string_lossy().into_owned()));
    let (code, merged_text, err) = elbsim(&merge, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(merged_text, text, "text, {n} shards of {base:?}");
    merge.extend(strings(&["--format", "json"]));
    let (code, merged_json, err) = elbsim(&merge, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(merged_json, json, "json, {n} shards of {base:?}");

    if n > 1 {
        // A missing shard, or one given twice, is refused.
        let mut short = strings(&["merge"]);
        short.extend(files[1..].iter().map(|f| f.to_string_lossy().into_owned()));
        assert_eq!(elbsim(&short, &[]).0, 1);
        short.push(files[1].to_string_lossy().into_owned());
        assert_eq!(elbsim(&short, &[]).0, 1);
    }
}

#[test]
fn trials_shards_merge_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let noisy = scenario("noisy-network.toml");
    let traffic = scenario("traffic-persistence-failback.toml");
    for n in [1, 3, 7] {
        check_split(
            &["trials", &noisy, "-n", "100", "--seed", "5"],
            n,
            dir.path(),
        );
    }
    check_split(&["trials", &traffic, "-n", "6"], 3, dir.path());
    // Shards run with --step-every-probe (how the engine works, not what it computes) merge.
    let crash = scenario("crash.toml");
    check_split(
        &["trials", &crash, "-n", "60", "--step-every-probe"],
        3,
        dir.path(),
    );
    // Windowed trials: the window is the same in every shard.
    let windowed = scenario("noisy-host-down.toml");
    check_split(
        &["trials", &windowed, "-n", "60", "--windowed"],
        3,
        dir.path(),
    );
}

#[test]
fn tune_shards_merge_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let noisy = scenario("noisy-network.toml");
    for n in [1, 3, 7] {
        check_split(
            &[
                "tune",
                &noisy,
                "-n",
                "4",
                "--delay",
                "1..3",
                "--timeout",
                "1,2",
                "--top",
                "5",
            ],
            n,
            dir.path(),
        );
    }
    // One (delay, timeout) group of six (down, up) pairs split across shards: a windowed
    // group's points come out the same whichever shard computes them.
    check_split(
        &[
            "tune",
            &noisy,
            "-n",
            "6",
            "--delay",
            "2",
            "--timeout",
            "1",
            "--max-retries-down",
            "1..3",
            "--max-retries",
            "1,2",
        ],
        4,
        dir.path(),
    );
}

#[test]
fn bad_shards_and_files_are_refused_without_panic() {
    let dir = tempfile::tempdir().unwrap();
    let seed = scenario("seed-example.toml");
    for bad in ["3/3", "x", "0/0", "4"] {
        let (code, _, err) = elbsim(&strings(&["trials", &seed, "-n", "5", "--shard", bad]), &[]);
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(err.contains("--shard"), "{err}");
    }
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{\"format\": 1}").unwrap();
    let (code, _, err) = elbsim(&strings(&["merge", &junk.to_string_lossy()]), &[]);
    assert_eq!(code, 1);
    assert!(err.contains("not a shard file"), "{err}");
    let (code, _, _) = elbsim(&strings(&["merge", "/nonexistent.shard.json"]), &[]);
    assert_eq!(code, 1);
}

#[test]
fn merge_prints_markdown_like_the_unsharded_run() {
    let dir = tempfile::tempdir().unwrap();
    let noisy = scenario("noisy-network.toml");
    let base = strings(&["trials", &noisy, "-n", "40", "--seed", "9"]);
    let mut whole = base.clone();
    whole.extend(strings(&["--format", "markdown"]));
    let (code, markdown, err) = elbsim(&whole, &[]);
    assert_eq!(code, 0, "{err}");
    let mut merge = strings(&["merge", "--format", "markdown"]);
    for k in 0..2 {
        let file = dir.path().join(format!("md-{k}.shard.json"));
        let mut args = base.clone();
        args.extend(["--shard".to_string(), format!("{k}/2"), "-o".to_string()]);
        args.push(file.to_string_lossy().into_owned());
        let (code, _, err) = elbsim(&args, &[]);
        assert_eq!(code, 0, "{err}");
        merge.push(file.to_string_lossy().into_owned());
    }
    let (code, merged, err) = elbsim(&merge, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(merged, markdown);
}

#[test]
fn per_trial_exports_are_refused_with_shard() {
    let dir = tempfile::tempdir().unwrap();
    let noisy = scenario("noisy-network.toml");
    let out = dir.path().join("x.shard.json");
    let out = out.to_string_lossy().into_owned();
    for (cmd, flag, value) in [
        ("trials", "--csv", Some("t.csv")),
        ("trials", "--histogram", Some("t.hgrm")),
        ("trials", "--plot", Some("t.svg")),
        ("trials", "--html", Some("t.html")),
        ("trials", "--assert", Some("failover.p99 <= 5s")),
        ("trials", "--save-baseline", Some("b.json")),
        ("tune", "--plot", Some("p.svg")),
        ("tune", "--html", Some("p.html")),
    ] {
        let mut args = strings(&[cmd, &noisy, "-n", "2", "--shard", "0/2", "-o", &out, flag]);
        if let Some(v) = value {
            let v = if v.contains(' ') {
                v.to_string()
            } else {
                dir.path().join(v).to_string_lossy().into_owned()
            };
            args.push(v);
        }
        let (code, stdout, err) = elbsim(&args, &[]);
        assert_eq!(code, 2, "{cmd} {flag}: {err}");
        assert!(err.contains(flag) && err.contains("--shard"), "{err}");
        assert!(stdout.is_empty());
        assert!(!Path::new(&out).exists(), "{cmd} {flag} wrote a shard file");
    }
}
