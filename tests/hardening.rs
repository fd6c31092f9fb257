//! Issue 9 (no input can hang elbsim, exhaust its memory or damage a file) and issue 8's `tune`
//! items, through the binary. Every child runs under a 1 GiB address-space limit (`RLIMIT_AS`)
//! and a wall-clock bound, so a regression fails the test instead of hanging or swapping the
//! machine.

use serde_json::Value;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Address space a child may map: far above what any command here needs (a few MB), far below
/// what the defects allocated (2 to 17 GB).
const AS_LIMIT_BYTES: u64 = 1 << 30;

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Out {
    fn all(&self) -> String {
        format!("exit {:?}\n{}\n{}", self.code, self.stdout, self.stderr)
    }
}

fn elbsim() -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("elbsim"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    // SAFETY: setrlimit is async-signal-safe, and nothing else runs between fork and exec.
    unsafe {
        c.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: AS_LIMIT_BYTES as libc::rlim_t,
                rlim_max: AS_LIMIT_BYTES as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c
}

fn spawn(args: &[&str]) -> Child {
    elbsim()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits at most `limit` for the child (reading its output meanwhile); kills it and fails the
/// test past that.
fn wait_bounded(mut child: Child, limit: Duration, what: &str) -> Out {
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Out {
        code: status.code(),
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

fn run(args: &[&str]) -> Out {
    wait_bounded(spawn(args), Duration::from_secs(20), &args.join(" "))
}

fn sigint(child: &Child) {
    // SAFETY: plain kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn crash_toml() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/crash.toml"))
        .unwrap()
}

/// A scenario whose one trial runs for hours: a year on 1024 LB nodes, with probe loss so that
/// trials cannot stop early once quiet.
fn endless_scenario(dir: &Path) -> PathBuf {
    let text = crash_toml()
        .replace("duration = \"10m\"", "duration = \"366d\"\nlb_nodes = 1024")
        .replace("[[faults]]", "[network]\nloss = 0.001\n\n[[faults]]");
    write(dir, "endless.toml", &text)
}

// ---------------------------------------------------------------------------------------------
// #4 Ctrl-C

/// Sends Ctrl-C after the command has started, then expects exit 130 within a few seconds.
fn interrupted(args: &[&str]) -> Out {
    let child = spawn(args);
    std::thread::sleep(Duration::from_millis(1000));
    sigint(&child);
    let o = wait_bounded(child, Duration::from_secs(8), &args.join(" "));
    assert_eq!(o.code, Some(130), "{}", o.all());
    o
}

#[test]
fn ctrl_c_stops_a_long_trial_and_prints_the_partial_batch() {
    let dir = tempfile::tempdir().unwrap();
    let f = endless_scenario(dir.path());
    let o = interrupted(&["trials", f.to_str().unwrap(), "-n", "4", "--format", "json"]);
    let r: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(r["partial"], true);
    assert_eq!(r["trials_requested"], 4);
    // The trials cut short are left out: none of them finished.
    assert_eq!(r["trials"], 0);
    assert!(o.stderr.contains("interrupted"), "{}", o.stderr);
    // Text: marked partial too.
    let o = interrupted(&["trials", f.to_str().unwrap(), "-n", "4"]);
    assert!(o.stdout.contains("PARTIAL: interrupted"), "{}", o.stdout);
}

#[test]
fn ctrl_c_stops_a_long_run_with_a_partial_report() {
    let dir = tempfile::tempdir().unwrap();
    let f = endless_scenario(dir.path());
    let o = interrupted(&["run", f.to_str().unwrap(), "--format", "json"]);
    let r: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(r["partial"], true);
    assert!(r["events"].as_u64().unwrap() > 0);
    let o = interrupted(&["run", f.to_str().unwrap()]);
    assert!(o.stdout.contains("PARTIAL: interrupted"), "{}", o.stdout);
}

#[test]
fn ctrl_c_stops_tune_and_leaves_the_half_run_point_out() {
    let dir = tempfile::tempdir().unwrap();
    let f = endless_scenario(dir.path());
    let o = interrupted(&[
        "tune",
        f.to_str().unwrap(),
        "-n",
        "1",
        "--delay",
        "4,5",
        "--format",
        "json",
    ]);
    let r: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(r["partial"], true);
    assert_eq!(r["points_requested"], 2);
    assert_eq!(r["points"].as_array().unwrap().len(), 0, "{}", o.stdout);
    assert!(r.get("best").is_none());
    let o = interrupted(&["tune", f.to_str().unwrap(), "-n", "1", "--delay", "4,5"]);
    assert!(o.stdout.contains("PARTIAL: interrupted"), "{}", o.stdout);
}

#[test]
fn a_second_ctrl_c_ends_the_process_at_once() {
    // Blocked reading a scenario from a pipe that never closes: the first Ctrl-C cannot be
    // acted on; the second must end the process anyway.
    let mut child = elbsim()
        .args(["trials", "-", "-n", "10"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take();
    std::thread::sleep(Duration::from_millis(500));
    sigint(&child);
    std::thread::sleep(Duration::from_millis(300));
    sigint(&child);
    let o = wait_bounded(child, Duration::from_secs(5), "trials - with two Ctrl-C");
    drop(stdin);
    assert_eq!(o.code, Some(130), "{}", o.all());
}

// ---------------------------------------------------------------------------------------------
// #6 Locating thousands of problems

#[test]
fn thousands_of_bad_faults_are_located_at_once_and_capped() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("name = \"x\"\nduration = \"10m\"\n");
    for _ in 0..4000 {
        text.push_str("[[faults]]\nmember = \"master\"\nkind = \"crash\"\nat = \"20m\"\n");
    }
    text.push_str(&crash_toml()[crash_toml().find("[pool]").unwrap()..]);
    let f = write(dir.path(), "faults.toml", &text);
    let start = Instant::now();
    let o = run(&["run", f.to_str().unwrap()]);
    assert_eq!(o.code, Some(1), "{}", o.all());
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert!(
        o.stderr.contains("faults.toml:6:1: faults[0].at"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains("3900 more problems left out"),
        "{}",
        o.stderr
    );
    assert_eq!(o.stderr.lines().count(), 101);
}

#[test]
fn thousands_of_unknown_keys_are_located_at_once_and_capped() {
    let dir = tempfile::tempdir().unwrap();
    let keys: String = (0..8000).map(|i| format!("k{i} = 1\n")).collect();
    let text = crash_toml().replace(
        "max_retries_down = 3\n",
        &format!("max_retries_down = 3\n{keys}"),
    );
    let f = write(dir.path(), "keys.toml", &text);
    let start = Instant::now();
    let o = run(&["run", f.to_str().unwrap()]);
    assert_eq!(o.code, Some(1), "{}", o.all());
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert!(o.stderr.contains("[unknown-field]"), "{}", o.stderr);
    assert!(
        o.stderr.contains("7900 more problems left out"),
        "{}",
        o.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// #8 tune ranges

#[test]
fn a_huge_range_is_refused_before_it_is_expanded() {
    let o = run(&["tune", "scenarios/crash.toml", "--delay", "1..4294967295"]);
    assert_eq!(o.code, Some(2), "{}", o.all());
    assert!(
        o.stderr
            .contains("4294967295 is outside what the API accepts (1..50)"),
        "{}",
        o.stderr
    );
    let o = run(&[
        "tune",
        "scenarios/crash.toml",
        "--timeout",
        "1..99999999999999999999",
    ]);
    assert_eq!(o.code, Some(2), "{}", o.all());
    assert!(
        o.stderr.contains("outside what the API accepts"),
        "{}",
        o.stderr
    );
}

#[test]
fn a_full_quic_sweep_is_refused_by_the_point_cap() {
    let o = run(&[
        "tune",
        "scenarios/quic-slice-nonce.toml",
        "--delay",
        "1..50",
        "--timeout",
        "1..50",
        "--max-retries-down",
        "1..10",
        "--max-retries",
        "1..10",
        "--offset",
        "0..19",
        "--len",
        "1..20",
    ]);
    assert_eq!(o.code, Some(2), "{}", o.all());
    assert!(
        o.stderr
            .contains("100000000 points, more than the limit of 10000"),
        "{}",
        o.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// #9 -o and special files

#[test]
fn output_into_a_fifo_writes_through_it_and_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a path we own.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let o = run(&["run", "scenarios/crash.toml", "-o", fifo.to_str().unwrap()]);
    let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    use std::os::unix::fs::FileTypeExt;
    assert!(
        kind.is_fifo(),
        "the FIFO was replaced: {kind:?}; {}",
        o.all()
    );
    assert_eq!(o.code, Some(0), "{}", o.all());
    let got = reader.join().unwrap();
    assert!(got.starts_with("elbsim run: "), "{got}");
}

#[test]
fn output_through_a_symlink_lands_on_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let target = write(dir.path(), "target.txt", "old");
    let link = dir.path().join("link.txt");
    std::os::unix::fs::symlink("target.txt", &link).unwrap();
    let o = run(&["run", "scenarios/crash.toml", "-o", link.to_str().unwrap()]);
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the symlink was replaced by a file"
    );
    assert!(std::fs::read_to_string(&target)
        .unwrap()
        .starts_with("elbsim run: "));
}

#[test]
fn an_output_name_near_the_length_limit_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("{}.txt", "r".repeat(251)); // 255 bytes, NAME_MAX
    let p = dir.path().join(&name);
    let o = run(&["run", "scenarios/crash.toml", "-o", p.to_str().unwrap()]);
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert!(std::fs::read_to_string(&p)
        .unwrap()
        .starts_with("elbsim run: "));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

/// FNV-1a of a file name, as `output.rs` tags its temporaries.
fn tag(name: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

#[test]
fn a_temporary_left_by_a_killed_run_is_removed_on_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    // What a run killed mid-write (SIGKILL) leaves: pid 0 is never a user process, so it is gone.
    let stale = dir.path().join(format!(".elbsim-tmp-{}-0-0", tag("r.txt")));
    std::fs::write(&stale, "half a report").unwrap();
    // Someone else's file with a similar name is not ours to remove.
    let other = write(dir.path(), ".elbsim-tmp-notours", "keep");
    let out = dir.path().join("r.txt");
    let o = run(&["run", "scenarios/crash.toml", "-o", out.to_str().unwrap()]);
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert!(!stale.exists(), "the stale temporary is still there");
    assert!(other.exists());
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .starts_with("elbsim run: "));
}

// ---------------------------------------------------------------------------------------------
// #10 Outputs checked before the work

#[test]
fn an_unwritable_output_is_refused_before_the_run() {
    let start = Instant::now();
    // 10^8 trials would take many minutes: the refusal must come first.
    let o = run(&[
        "trials",
        "scenarios/crash.toml",
        "-n",
        "100000000",
        "-o",
        "/nonexistent/x",
    ]);
    assert_eq!(o.code, Some(1), "{}", o.all());
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(
        o.stderr.contains("-o /nonexistent/x") && o.stderr.contains("does not exist"),
        "{}",
        o.stderr
    );
    let dir = tempfile::tempdir().unwrap();
    let o = run(&[
        "run",
        "scenarios/crash.toml",
        "-o",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(o.code, Some(1), "{}", o.all());
    assert!(o.stderr.contains("is a directory"), "{}", o.stderr);
}

#[test]
fn tune_writes_both_outputs_or_neither_and_refuses_one_file_twice() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("a.csv");
    let missing = dir.path().join("missing/b.txt");
    let args = |out: &Path| {
        vec![
            "tune".to_string(),
            "scenarios/crash.toml".into(),
            "-n".into(),
            "5".into(),
            "--delay".into(),
            "2,3".into(),
            "--csv".into(),
            csv.display().to_string(),
            "-o".into(),
            out.display().to_string(),
        ]
    };
    let a = args(&missing);
    let o = run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.code, Some(1), "{}", o.all());
    assert!(!csv.exists(), "the CSV was left behind");
    // The same file twice, even spelled differently.
    let same = dir.path().join(".").join("a.csv");
    let a = args(&same);
    let o = run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.code, Some(2), "{}", o.all());
    assert!(o.stderr.contains("name the same file"), "{}", o.stderr);
    // Both written when both can be.
    let out = dir.path().join("b.txt");
    let a = args(&out);
    let o = run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert!(std::fs::read_to_string(&csv).unwrap().starts_with("rank,"));
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .starts_with("elbsim tune: "));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

// ---------------------------------------------------------------------------------------------
// #11 Small ones

#[test]
fn float_constraints_must_be_numbers_in_range() {
    for (flag, v) in [
        ("--max-false-per-day", "nan"),
        ("--max-false-per-day", "-1"),
        ("--max-false-per-day", "inf"),
        ("--max-missed-rate", "nan"),
        ("--max-missed-rate", "1.5"),
        ("--max-missed-rate", "-0.1"),
    ] {
        // `--flag=value`, so that clap takes "-1" as the value, not as an option.
        let arg = format!("{flag}={v}");
        let o = run(&[
            "tune",
            "scenarios/crash.toml",
            "-n",
            "2",
            "--delay",
            "2",
            &arg,
        ]);
        assert_eq!(o.code, Some(2), "{flag} {v}: {}", o.all());
        assert!(o.stderr.contains(flag), "{}", o.stderr);
    }
}

#[test]
fn trials_text_is_the_same_for_any_number_of_jobs() {
    let t = |j: &str| run(&["trials", "scenarios/crash.toml", "-n", "50", "--jobs", j]);
    let (one, two) = (t("1"), t("2"));
    assert_eq!(one.code, Some(0), "{}", one.all());
    assert_eq!(one.stdout, two.stdout);
    assert!(two.stderr.contains("2 jobs"), "{}", two.stderr);
}

#[test]
fn an_unsized_oversized_body_is_reported_without_a_false_size() {
    let o = run(&["validate", "/dev/zero"]);
    assert_eq!(o.code, Some(1), "{}", o.all());
    assert!(!o.stdout.contains("0 bytes"), "{}", o.stdout);
    assert!(
        o.stdout.contains("more than the limit of 1048576 bytes"),
        "{}",
        o.stdout
    );
}

#[test]
fn a_non_finite_delay_is_an_invalid_number_not_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    for v in ["nan", "inf", "-inf"] {
        let f = write(
            dir.path(),
            "nan.toml",
            &crash_toml().replace("delay = 5", &format!("delay = {v}")),
        );
        let o = run(&["run", f.to_str().unwrap()]);
        assert_eq!(o.code, Some(1), "{}", o.all());
        assert!(
            o.stderr.contains("pool.healthmonitor.delay")
                && o.stderr.contains("[invalid-number]")
                && !o.stderr.contains("is required"),
            "{v}: {}",
            o.stderr
        );
    }
}

#[test]
fn create_now_is_bounded_to_four_digit_years() {
    let body = "scenarios/bodies/seed-example.json";
    let o = run(&["create", body, "--now", "9999999999999"]);
    assert_eq!(o.code, Some(2), "{}", o.all());
    assert!(o.stderr.contains("9999-12-31T23:59:59Z"), "{}", o.stderr);
    let o = run(&["create", body, "--now", "253402300799"]);
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert!(
        o.stdout.contains("\"9999-12-31T23:59:59Z\""),
        "{}",
        o.stdout
    );
}

// ---------------------------------------------------------------------------------------------
// Issue 8 #11 and #12: tune's recommendation and the health-check overrides

#[test]
fn tune_never_recommends_a_timeout_not_below_delay() {
    // On a crash, detection does not depend on timeout, so delay 1 timeout 1 would win.
    let args = [
        "tune",
        "scenarios/crash.toml",
        "-n",
        "20",
        "--delay",
        "1..3",
        "--timeout",
        "1..3",
        "--format",
        "json",
    ];
    let o = run(&args);
    assert_eq!(o.code, Some(0), "{}", o.all());
    let r: Value = serde_json::from_str(&o.stdout).unwrap();
    assert!(
        r["best"]["timeout"].as_u64() < r["best"]["delay"].as_u64(),
        "{}",
        r["best"]
    );
    for p in r["points"].as_array().unwrap() {
        let breaks = p["timeout"].as_u64() >= p["delay"].as_u64();
        assert_eq!(p["ranked"], !breaks, "{p}");
        assert!(!(p["pareto"] == true && breaks), "{p}");
    }
    assert!(
        o.stderr.contains("elbsim tune: 9 points x 20 trials"),
        "{}",
        o.stderr
    );
    // --allow-warnings ranks them all again.
    let mut with = args.to_vec();
    with.push("--allow-warnings");
    let r: Value = serde_json::from_str(&run(&with).stdout).unwrap();
    assert!(r["points"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["ranked"] == true));
    // Text: unranked points shown with rank "-" and the reason.
    let o = run(&args[..8]);
    assert!(
        o.stdout
            .contains("not ranked (--allow-warnings ranks them)"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("[timeout-not-below-delay]"),
        "{}",
        o.stdout
    );
}

#[test]
fn tune_reproduce_line_repeats_every_option() {
    let o = run(&[
        "tune",
        "scenarios/crash.toml",
        "-n",
        "5",
        "--delay",
        "2,3,5",
        "--max-retries-down",
        "2..4",
        "--objective",
        "p99-detection",
        "--max-false-per-day",
        "0.5",
        "--max-missed-rate",
        "0.1",
        "--timeout-below-delay",
    ]);
    assert_eq!(o.code, Some(0), "{}", o.all());
    let line = o
        .stdout
        .lines()
        .find(|l| l.starts_with("reproduce: "))
        .unwrap();
    assert_eq!(
        line,
        "reproduce: elbsim tune scenarios/crash.toml -n 5 --seed 7 --objective p99-detection \
         --delay 2,3,5 --max-retries-down 2..4 --max-false-per-day 0.5 --timeout-below-delay \
         --max-missed-rate 0.1"
    );
}

#[test]
fn tune_shows_the_counter_its_objective_is_built_from() {
    let o = run(&[
        "tune",
        "scenarios/quic-slice-nonce.toml",
        "-n",
        "2",
        "--offset",
        "1,4",
        "--len",
        "3",
        "--objective",
        "client-failures",
    ]);
    assert_eq!(o.code, Some(0), "{}", o.all());
    let header = o.stdout.lines().find(|l| l.contains("rank")).unwrap();
    assert!(header.contains("quic_cid_broken"), "{header}");
}

#[test]
fn health_check_overrides_go_through_the_api_rules() {
    // crash.toml has delay 5: --timeout 5 breaks the API's advice timeout < delay.
    let o = run(&["run", "scenarios/crash.toml", "--timeout", "5"]);
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert!(
        o.stderr.contains("[timeout-not-below-delay]") && o.stderr.contains("--timeout"),
        "{}",
        o.stderr
    );
    for cmd in ["run", "trials"] {
        let o = run(&[cmd, "scenarios/crash.toml", "--timeout", "5", "--strict"]);
        assert_eq!(o.code, Some(1), "{cmd}: {}", o.all());
        assert!(o.stderr.contains("timeout-not-below-delay"), "{}", o.stderr);
    }
    // The bundled JSON body goes through the same rules.
    let o = run(&["run", "--delay", "10", "--timeout", "5", "--strict"]);
    assert_eq!(o.code, Some(1), "{}", o.all());
    assert!(
        !o.stderr.contains("timeout-not-below-delay"),
        "{}",
        o.stderr
    );
}
