//! The scenario files of `scenarios/`, run through the `elbsim` binary.
//!
//! Every `.toml` file in the directory must run (new files are picked up by iterating the
//! directory); each file's key property (the cell of the fault x check matrix it shows) is
//! asserted against the JSON report, with the closed forms of spec/model.md section 8 for the
//! detection latencies, over several seeds. The check parameters are read from the files
//! themselves, so the bounds follow the files. Also: determinism, `--timeline`, a bare API body
//! as a scenario, the bundled example, `--output`, and located errors for bad files.

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The default probe RTT (`[network] rtt`), in seconds.
const R: f64 = 0.001;
/// Slack for floating-point seconds in the report.
const EPS: f64 = 1e-6;
/// Seeds tried on top of each file's own, for the closed-form checks.
const SEEDS: std::ops::Range<u64> = 1..9;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

fn scenario(name: &str) -> PathBuf {
    dir().join(name)
}

fn elbsim() -> Command {
    Command::cargo_bin("elbsim").expect("the elbsim binary")
}

/// Every `.toml` scenario in `scenarios/`, sorted.
fn all_scenarios() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir())
        .expect("scenarios/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

/// Output of one invocation: exit code, stdout, stderr.
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn exec(args: &[&str]) -> Out {
    let o = elbsim().args(args).output().expect("elbsim runs");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8(o.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(o.stderr).expect("UTF-8 stderr"),
    }
}

/// `elbsim run FILE --format json [--seed S]`, asserting success.
fn run_json(file: &Path, seed: Option<u64>) -> Value {
    let mut args = vec![
        "run".to_string(),
        file.display().to_string(),
        "--format".into(),
        "json".into(),
    ];
    if let Some(s) = seed {
        args.extend(["--seed".to_string(), s.to_string()]);
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = exec(&argv);
    assert_eq!(
        o.code,
        0,
        "{}: exit {}: {}",
        file.display(),
        o.code,
        o.stderr
    );
    assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
    serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// The file's own seed, then [`SEEDS`].
fn seeds() -> impl Iterator<Item = Option<u64>> {
    std::iter::once(None).chain(SEEDS.map(Some))
}

/// Health-check parameters of a scenario, read from its `[pool]` or its `body` file:
/// (D = delay, T = timeout, F = max_retries_down, rise = max_retries), in seconds / counts.
#[derive(Debug, Clone, Copy)]
struct Check {
    d: f64,
    t: f64,
    f: f64,
    rise: f64,
}

fn check_of(file: &Path) -> Check {
    let text = std::fs::read_to_string(file).unwrap();
    let doc: toml::Value = toml::from_str(&text).unwrap();
    let hm: serde_json::Value = match (doc.get("pool"), doc.get("body")) {
        (Some(pool), _) => serde_json::to_value(&pool["healthmonitor"]).unwrap(),
        (None, Some(body)) => {
            let p = file.parent().unwrap().join(body.as_str().unwrap());
            let v: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
            v["pool"]["healthmonitor"].clone()
        }
        _ => panic!("{}: no pool", file.display()),
    };
    let num = |k: &str, default: f64| hm.get(k).and_then(Value::as_f64).unwrap_or(default);
    Check {
        d: num("delay", f64::NAN),
        t: num("timeout", f64::NAN),
        f: num("max_retries_down", 3.0),
        rise: num("max_retries", f64::NAN),
    }
}

/// [(F-1)(D+r)+r, F(D+r)+r]: a failure one RTT after each probe (crash, 503, TLS, ...).
fn crash_form(c: Check) -> (f64, f64) {
    ((c.f - 1.0) * (c.d + R) + R, c.f * (c.d + R) + R)
}

/// [F*T + (F-1)*D, F*T + F*D + r]: a failure at the timeout (after_completion).
fn timeout_form(c: Check) -> (f64, f64) {
    (c.f * c.t + (c.f - 1.0) * c.d, c.f * c.t + c.f * c.d + R)
}

/// [(F-1)D + T, F*D + T]: a failure at the timeout (fixed_rate).
fn fixed_rate_timeout_form(c: Check) -> (f64, f64) {
    ((c.f - 1.0) * c.d + c.t, c.f * c.d + c.t)
}

fn assert_in(what: &str, x: f64, (lo, hi): (f64, f64)) {
    assert!(
        x >= lo - EPS && x <= hi + EPS,
        "{what}: {x} outside [{lo}, {hi}]"
    );
}

fn failovers(r: &Value) -> &Vec<Value> {
    r["failovers"].as_array().expect("failovers is an array")
}

fn f64_of(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

/// The one failover of a single-node run, checked for kind, reason and a switch to the slave.
fn single_failover<'a>(r: &'a Value, fault: &str, reason: &str) -> &'a Value {
    let fo = failovers(r);
    assert_eq!(fo.len(), 1, "seed {}: {:#?}", r["seed"], fo);
    let f = &fo[0];
    assert_eq!(f["fault"], fault);
    assert_eq!(f["reason"], reason);
    assert_eq!(f["member"], "master");
    assert_eq!(f["switched_to"], "slave");
    assert_eq!(r["false_failovers"], 0);
    f
}

/// For the file's seed and [`SEEDS`]: one failover of `fault` with `reason`, detected within
/// `form`; returns the reports.
fn detection_within(file: &str, fault: &str, reason: &str, form: (f64, f64)) -> Vec<Value> {
    seeds()
        .map(|seed| {
            let r = run_json(&scenario(file), seed);
            let f = single_failover(&r, fault, reason);
            let lat = f64_of(f, "detection_latency_s");
            assert_in(&format!("{file} seed {}", r["seed"]), lat, form);
            // No route_update_delay in these files: the switch is the verdict.
            assert!((f64_of(f, "failover_latency_s") - lat).abs() < EPS);
            assert!(
                (f64_of(f, "detected_s") - f64_of(f, "fault_start_s") - lat).abs() < EPS,
                "{f}"
            );
            r
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Every file

#[test]
fn every_scenario_file_runs_and_is_documented() {
    let files = all_scenarios();
    for name in [
        "seed-example",
        "crash",
        "host-down",
        "hang-tcp",
        "hang-http",
        "http-503",
        "slow",
        "loss",
        "monitor-port-down",
        "tls-error-https",
        "flap",
        "noisy-network",
        "udp-pool",
        "four-nodes",
        "fixed-rate",
        "after-completion",
        "per-path-fault",
        "bursty-loss",
        "lb-stall",
        "udp-icmp-ratelimit",
        "monitor-process-separate",
        "failback-hold-down",
        "profile-haproxy-observe",
    ] {
        assert!(
            files.iter().any(|f| f.file_stem().unwrap() == name),
            "scenarios/{name}.toml is missing"
        );
    }
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(
            text.starts_with('#'),
            "{}: starts without a comment header saying what it shows",
            file.display()
        );
        assert!(
            text.contains("Expect"),
            "{}: the header should say what to expect",
            file.display()
        );
        let doc: toml::Value = toml::from_str(&text).unwrap();
        assert!(doc.get("name").is_some(), "{}: no name", file.display());
        let seed = doc
            .get("seed")
            .and_then(toml::Value::as_integer)
            .unwrap_or_else(|| panic!("{}: no seed", file.display()));

        let r = run_json(file, None);
        assert_eq!(r["name"], doc["name"].as_str().unwrap());
        assert_eq!(
            r["seed"],
            seed,
            "{}: the file's seed is used",
            file.display()
        );
        for key in [
            "seed",
            "duration_s",
            "events",
            "failovers",
            "failbacks",
            "false_failovers",
            "missed_faults",
            "members",
        ] {
            assert!(r.get(key).is_some(), "{}: no `{key}`", file.display());
        }
        assert!(r["events"].as_u64().unwrap() > 0);
        for f in failovers(&r) {
            for key in [
                "lb_node",
                "member",
                "fault",
                "fault_start_s",
                "detected_s",
                "detection_latency_s",
                "switched_s",
                "failover_latency_s",
                "reason",
            ] {
                assert!(
                    f.get(key).is_some(),
                    "{}: failover without `{key}`",
                    file.display()
                );
            }
        }
        for f in r["failbacks"].as_array().unwrap() {
            for key in [
                "lb_node",
                "fault_end_s",
                "switched_back_s",
                "failback_latency_s",
            ] {
                assert!(
                    f.get(key).is_some(),
                    "{}: failback without `{key}`",
                    file.display()
                );
            }
        }
        // The inline pools are valid bodies with nothing to warn about; only the seed page's
        // own body draws warnings.
        let warnings = r["warnings"].as_array().unwrap();
        if doc.get("pool").is_some() {
            assert!(warnings.is_empty(), "{}: {warnings:?}", file.display());
        }
    }
}

#[test]
fn every_scenario_is_deterministic() {
    for file in all_scenarios() {
        let f = file.display().to_string();
        let a = exec(&["run", &f, "--format", "json", "--seed", "11"]);
        let b = exec(&["run", &f, "--format", "json", "--seed", "11"]);
        assert_eq!(a.code, 0, "{f}: {}", a.stderr);
        assert_eq!(a.stdout, b.stdout, "{f}: two runs with seed 11 differ");
        assert_eq!(a.stderr, b.stderr, "{f}");
        // The text report too.
        let a = exec(&["run", &f, "--seed", "11"]);
        let b = exec(&["run", &f, "--seed", "11"]);
        assert_eq!(a.stdout, b.stdout, "{f}: text reports differ");
    }
}

#[test]
fn a_different_seed_gives_a_different_run() {
    let f = scenario("crash.toml").display().to_string();
    let a = exec(&["run", &f, "--format", "json", "--seed", "1"]);
    let b = exec(&["run", &f, "--format", "json", "--seed", "2"]);
    assert_eq!(a.code, 0);
    assert_ne!(a.stdout, b.stdout);
    let (ra, rb): (Value, Value) = (
        serde_json::from_str(&a.stdout).unwrap(),
        serde_json::from_str(&b.stdout).unwrap(),
    );
    // The random first-probe phase moves the detection time.
    assert_ne!(
        ra["failovers"][0]["detected_s"],
        rb["failovers"][0]["detected_s"]
    );
    // The file's own seed is the default; --seed wins over it.
    let own = exec(&["run", &f, "--format", "json"]);
    let seven = exec(&["run", &f, "--format", "json", "--seed", "7"]);
    assert_eq!(own.stdout, seven.stdout, "crash.toml says seed = 7");
}

// ---------------------------------------------------------------------------------------------
// One key property per file

#[test]
fn seed_example_crash_fails_over_within_the_crash_form_with_three_warnings() {
    let c = check_of(&scenario("seed-example.toml"));
    assert_eq!((c.d, c.t, c.f), (1.0, 30.0, 3.0));
    let rs = detection_within(
        "seed-example.toml",
        "crash",
        "CONNECT_REFUSED",
        crash_form(c),
    );
    for r in &rs {
        assert_eq!(r["warnings"].as_array().unwrap().len(), 3);
        assert_eq!(r["failbacks"].as_array().unwrap().len(), 1);
    }
    let o = exec(&["run", &scenario("seed-example.toml").display().to_string()]);
    assert_eq!(o.stderr.matches("warning:").count(), 3, "{}", o.stderr);
    // --strict turns the warnings into errors.
    let o = exec(&[
        "run",
        &scenario("seed-example.toml").display().to_string(),
        "--strict",
    ]);
    assert_eq!(o.code, 1, "{}", o.stdout);
    assert!(o.stderr.contains("seed-example.json"), "{}", o.stderr);
}

#[test]
fn crash_fails_over_and_back_within_the_crash_form() {
    let c = check_of(&scenario("crash.toml"));
    for r in detection_within("crash.toml", "crash", "CONNECT_REFUSED", crash_form(c)) {
        let fb = r["failbacks"].as_array().unwrap();
        assert_eq!(fb.len(), 1);
        assert_eq!(fb[0]["fault_end_s"], 180.0);
        // Recovery takes max_retries passing probes, one RTT each.
        let rise_form = ((c.rise - 1.0) * (c.d + R) + R, c.rise * (c.d + R) + R);
        assert_in("failback", f64_of(&fb[0], "failback_latency_s"), rise_form);
        assert_eq!(r["members"][0]["final_status"][0], "ONLINE");
    }
}

#[test]
fn host_down_fails_over_within_the_timeout_form() {
    let c = check_of(&scenario("host-down.toml"));
    detection_within(
        "host-down.toml",
        "host_down",
        "CONNECT_TIMEOUT",
        timeout_form(c),
    );
}

#[test]
fn haproxy_silent_host_fails_over_within_haproxys_connect_bound_window() {
    // C = min(inter, timeout connect) = min(5, 5): [F*C + (F-1)*inter, F*(C + inter) + r].
    let c = check_of(&scenario("profile-haproxy-silent-host.toml"));
    let conn = c.d.min(5.0);
    let form = (c.f * conn + (c.f - 1.0) * c.d, c.f * (conn + c.d) + R);
    let rs = detection_within(
        "profile-haproxy-silent-host.toml",
        "host_down",
        "CONNECT_TIMEOUT",
        form,
    );
    // Later than the huawei profile could ever detect it (its window ends at F*T + F*D + r).
    for r in &rs {
        let lat = f64_of(&failovers(r)[0], "detection_latency_s");
        assert!(lat > timeout_form(c).0, "{lat}");
    }
}

#[test]
fn keepalived_crash_retries_after_delay_before_retry_and_fails_back_on_one_success() {
    // F = retry + 1 = 3 refused checks, delay_before_retry (1 s) apart after the first.
    let c = check_of(&scenario("profile-keepalived-crash.toml"));
    let lo = (c.f - 1.0) * (1.0 + R) + R;
    for r in detection_within(
        "profile-keepalived-crash.toml",
        "crash",
        "CONNECT_REFUSED",
        (lo, lo + c.d + R),
    ) {
        let fb = &r["failbacks"].as_array().unwrap()[0];
        assert_in(
            "keepalived failback",
            f64_of(fb, "failback_latency_s"),
            (R, c.d + 2.0 * R),
        );
    }
}

#[test]
fn haproxy_observe_takes_a_crashed_master_out_at_the_error_limit() {
    let file = "profile-haproxy-observe.toml";
    let c = check_of(&scenario(file));
    let doc: toml::Value =
        toml::from_str(&std::fs::read_to_string(scenario(file)).unwrap()).unwrap();
    let haproxy = &doc["model"]["haproxy"];
    assert_eq!(haproxy["on_error"].as_str(), Some("mark-down"));
    let limit = haproxy["error_limit"].as_integer().unwrap() as u64;
    let rate = doc["traffic"]["rate"].as_float().unwrap();
    // The error_limit-th refusal after the crash: a Gamma(limit, rate) wait (mean 0.5 s here),
    // under 2 s but with probability 1 - 1e-10 (fewer than 10 arrivals in 2 s at 20/s).
    let (lo, hi) = (0.0, 2.0);
    assert!(hi * rate > 3.0 * limit as f64);
    let active = crash_form(c);
    for r in detection_within(file, "crash", "CONNECT_REFUSED", (lo, hi)) {
        // Far before the active checks could see it ([40.003 s, 60.004 s] at inter 20 s).
        let lat = f64_of(&failovers(&r)[0], "detection_latency_s");
        assert!(lat < active.0 / 10.0, "{lat}");
        // Exactly error_limit connections refused: the next one goes to the slave.
        assert_eq!(
            r["traffic"]["refused"].as_u64(),
            Some(limit),
            "seed {}",
            r["seed"]
        );
        assert_eq!(r["traffic"]["timed_out"], 0);
        // Back by the active checks alone (rise checks at downinter = inter) after 180 s.
        let fb = &r["failbacks"].as_array().unwrap()[0];
        assert_in(
            "observe failback",
            f64_of(fb, "failback_latency_s"),
            ((c.rise - 1.0) * (c.d + R) + R, c.rise * (c.d + R) + R),
        );
    }
    // The same file without `observe` (and its keys): the active window, and every client
    // refused until then.
    let without = |t: &str| {
        t.lines()
            .filter(|l| {
                !["observe", "error_limit", "on_error"]
                    .iter()
                    .any(|k| l.starts_with(k))
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    for seed in SEEDS {
        let r = run_edited(file, without, seed);
        let f = single_failover(&r, "crash", "CONNECT_REFUSED");
        let lat = f64_of(f, "detection_latency_s");
        assert_in(&format!("{file} without observe, seed {seed}"), lat, active);
        let refused = r["traffic"]["refused"].as_u64().unwrap() as f64;
        // Poisson around rate x latency: far more than error_limit.
        assert!(
            (refused - rate * lat).abs() < 5.0 * (rate * lat).sqrt(),
            "{refused}"
        );
        assert!(r["warnings"].as_array().unwrap().is_empty());
    }
}

/// `run --profile NAME --format json` of a scenario file.
fn run_profile_json(file: &Path, profile: &str) -> Value {
    let out = exec(&[
        "run",
        &file.display().to_string(),
        "--profile",
        profile,
        "--format",
        "json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap()
}

#[test]
fn profile_compare_fails_over_inside_each_profiles_silent_host_window() {
    let file = scenario("profile-compare.toml");
    let c = check_of(&file);
    // (profile, C or T, gap between failing checks): the windows of docs/profiles.md.
    for (profile, v, gap) in [
        ("huawei", c.t, c.d),
        ("haproxy", 4.0, 2.0),
        ("keepalived", c.t, 1.0),
    ] {
        let r = run_profile_json(&file, profile);
        let f = single_failover(&r, "host_down", "CONNECT_TIMEOUT");
        let lo = c.f * v + (c.f - 1.0) * gap;
        assert_in(
            profile,
            f64_of(f, "detection_latency_s"),
            (lo, lo + c.d + R),
        );
        assert!(r["traffic"]["timed_out"].as_u64().unwrap() > 0, "{profile}");
    }
}

#[test]
fn hang_under_a_tcp_check_is_a_missed_fault() {
    for seed in seeds() {
        let r = run_json(&scenario("hang-tcp.toml"), seed);
        assert!(failovers(&r).is_empty(), "{:#?}", r["failovers"]);
        assert!(r["missed_faults"].as_u64().unwrap() >= 1);
        assert_eq!(r["missed"][0]["fault"], "hang");
        assert_eq!(r["missed"][0]["lb_node"], 0);
        assert_eq!(r["false_failovers"], 0);
        assert!(r["members"][0]["transitions"]
            .as_array()
            .unwrap()
            .is_empty());
    }
}

#[test]
fn hang_under_an_http_check_times_out_the_response() {
    let c = check_of(&scenario("hang-http.toml"));
    let rs = detection_within(
        "hang-http.toml",
        "hang",
        "RECV_RESPONSE_TIMEOUT",
        timeout_form(c),
    );
    for r in rs {
        assert_eq!(r["missed_faults"], 0);
    }
}

#[test]
fn http_503_is_a_response_mismatch_after_max_retries_down_round_trips() {
    let c = check_of(&scenario("http-503.toml"));
    for r in detection_within(
        "http-503.toml",
        "http_status",
        "RESPONSE_MISMATCH",
        crash_form(c),
    ) {
        let t = &r["members"][0]["transitions"][0];
        assert_eq!(t["operating_status"], "OFFLINE");
        assert_eq!(t["reason_code"], "RESPONSE_MISMATCH");
        assert_eq!(t["healthcheck_response"], "503");
        assert_eq!(t["expected_response"], "200-299");
    }
}

#[test]
fn slow_above_the_timeout_fails_over_and_below_it_does_not() {
    let c = check_of(&scenario("slow.toml"));
    for r in detection_within("slow.toml", "slow", "CONNECT_TIMEOUT", timeout_form(c)) {
        assert_eq!(failovers(&r)[0]["fault_start_s"], 60.0);
        // The second, 1 s spell stays under the 3 s timeout: not acted on.
        assert_eq!(r["missed_faults"], 1);
        assert_eq!(r["missed"][0]["fault"], "slow");
        assert_eq!(r["missed"][0]["fault_start_s"], 300.0);
    }
}

#[test]
fn loss_fails_over_with_timeouts() {
    let c = check_of(&scenario("loss.toml"));
    for seed in seeds() {
        let r = run_json(&scenario("loss.toml"), seed);
        let f = single_failover(&r, "loss", "CONNECT_TIMEOUT");
        // At least F lost probes, each judged at the timeout, `delay` apart.
        let lat = f64_of(f, "detection_latency_s");
        assert!(lat >= timeout_form(c).0 - EPS, "seed {seed:?}: {lat}");
        assert!(f64_of(f, "detected_s") <= f64_of(&r, "duration_s"));
    }
}

#[test]
fn monitor_port_down_is_a_needless_failover() {
    let c = check_of(&scenario("monitor-port-down.toml"));
    for r in detection_within(
        "monitor-port-down.toml",
        "monitor_port_down",
        "CONNECT_REFUSED",
        crash_form(c),
    ) {
        assert_eq!(failovers(&r)[0]["needless"], true);
    }
    // Real failures are not needless.
    let r = run_json(&scenario("crash.toml"), None);
    assert_eq!(failovers(&r)[0]["needless"], false);
}

#[test]
fn tls_error_under_an_https_check_is_an_ssl_handshake_error() {
    let c = check_of(&scenario("tls-error-https.toml"));
    detection_within(
        "tls-error-https.toml",
        "tls_error",
        "SSL_HANDSHAKE_ERROR",
        crash_form(c),
    );
}

#[test]
fn flap_fails_over_and_bounces() {
    let c = check_of(&scenario("flap.toml"));
    for r in detection_within("flap.toml", "flap", "CONNECT_REFUSED", crash_form(c)) {
        // 30 s down / 30 s up over 420 s: the master goes OFFLINE and ONLINE again, many times.
        let t = r["members"][0]["transitions"].as_array().unwrap();
        assert!(t.len() >= 8, "seed {}: {} transitions", r["seed"], t.len());
        let offline = t
            .iter()
            .filter(|x| x["operating_status"] == "OFFLINE")
            .count();
        assert!(offline >= 4);
        assert_eq!(r["false_failovers"], 0);
    }
}

#[test]
fn noisy_network_gives_false_failovers() {
    let r = run_json(&scenario("noisy-network.toml"), None);
    assert!(
        r["false_failovers"].as_u64().unwrap() > 0,
        "no false failover with the default seed"
    );
    assert_eq!(
        r["false_failovers"].as_u64().unwrap() as usize,
        r["false_failover_events"].as_array().unwrap().len()
    );
    assert!(failovers(&r).is_empty(), "no fault, so no real failover");
    assert_eq!(r["missed_faults"], 0);
    assert_eq!(r["duration_s"], 6.0 * 3600.0);
    for e in r["false_failover_events"].as_array().unwrap() {
        assert_eq!(e["reason"], "CONNECT_TIMEOUT", "{e}");
    }
}

#[test]
fn noisy_host_down_is_detected_through_the_noise() {
    let c = check_of(&scenario("noisy-host-down.toml"));
    let r = run_json(&scenario("noisy-host-down.toml"), None);
    let f = single_failover(&r, "host_down", "CONNECT_TIMEOUT");
    // No later than the timeout form's end (plus a probe in flight at the start); sooner is
    // possible: a probe lost to noise just before the fault counts towards the F failures.
    let lat = f64_of(f, "detection_latency_s");
    assert_in(
        "noisy-host-down.toml",
        lat,
        (0.0, c.f * c.t + c.f * c.d + c.t),
    );
    assert_eq!(r["missed_faults"], 0);
    assert_eq!(r["failbacks"].as_array().map(Vec::len), Some(1));
}

#[test]
fn udp_pool_fails_over_on_a_crash() {
    let c = check_of(&scenario("udp-pool.toml"));
    // Passing UDP_CONNECT probes are judged at the timeout (silence), so the first failing
    // probe goes out within D + T of the crash.
    let lo = crash_form(c).0;
    let hi = (c.d + c.t) + (c.f - 1.0) * (c.d + R) + R;
    detection_within("udp-pool.toml", "crash", "CONNECT_REFUSED", (lo, hi));
}

#[test]
fn four_nodes_each_detect_at_their_own_time() {
    let c = check_of(&scenario("four-nodes.toml"));
    for seed in seeds() {
        let r = run_json(&scenario("four-nodes.toml"), seed);
        assert_eq!(r["lb_nodes"], 4);
        let fo = failovers(&r);
        assert_eq!(fo.len(), 4, "seed {seed:?}: {fo:#?}");
        let mut nodes: Vec<u64> = fo.iter().map(|f| f["lb_node"].as_u64().unwrap()).collect();
        nodes.sort();
        assert_eq!(nodes, [0, 1, 2, 3]);
        let mut times: Vec<f64> = fo.iter().map(|f| f64_of(f, "detected_s")).collect();
        for f in fo {
            assert_eq!(f["reason"], "CONNECT_TIMEOUT");
            assert_in(
                "four-nodes",
                f64_of(f, "detection_latency_s"),
                timeout_form(c),
            );
        }
        times.sort_by(f64::total_cmp);
        times.dedup();
        assert_eq!(
            times.len(),
            4,
            "seed {seed:?}: detection times not distinct"
        );
        assert_eq!(r["failbacks"].as_array().unwrap().len(), 4);
        assert_eq!(r["members"][0]["final_status"].as_array().unwrap().len(), 4);
    }
}

#[test]
fn fixed_rate_and_after_completion_lie_in_their_closed_forms() {
    let cf = check_of(&scenario("fixed-rate.toml"));
    let ca = check_of(&scenario("after-completion.toml"));
    assert_eq!(
        (cf.d, cf.t, cf.f),
        (ca.d, ca.t, ca.f),
        "the two files show the same pool"
    );
    let fixed = detection_within(
        "fixed-rate.toml",
        "host_down",
        "CONNECT_TIMEOUT",
        fixed_rate_timeout_form(cf),
    );
    let after = detection_within(
        "after-completion.toml",
        "host_down",
        "CONNECT_TIMEOUT",
        timeout_form(ca),
    );
    // With these parameters the windows do not overlap: fixed_rate detects sooner, always.
    let worst_fixed = fixed
        .iter()
        .map(|r| f64_of(&failovers(r)[0], "detection_latency_s"))
        .fold(f64::MIN, f64::max);
    let best_after = after
        .iter()
        .map(|r| f64_of(&failovers(r)[0], "detection_latency_s"))
        .fold(f64::MAX, f64::min);
    assert!(worst_fixed < best_after, "{worst_fixed} vs {best_after}");
}

// ---------------------------------------------------------------------------------------------
// Timeline, bare bodies, the bundled example, --output

#[test]
fn timeline_is_in_time_order() {
    for name in ["crash.toml", "four-nodes.toml", "flap.toml"] {
        let f = scenario(name).display().to_string();
        let o = exec(&["run", &f, "--format", "json", "--timeline"]);
        assert_eq!(o.code, 0, "{}", o.stderr);
        let r: Value = serde_json::from_str(&o.stdout).unwrap();
        let tl = r["timeline"].as_array().expect("timeline with --timeline");
        assert!(!tl.is_empty());
        let times: Vec<f64> = tl.iter().map(|e| f64_of(e, "at_s")).collect();
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "{name}: timeline not in time order"
        );
        for kind in ["fault_start", "verdict", "status", "route"] {
            assert!(
                tl.iter().any(|e| e["event"] == kind),
                "{name}: no `{kind}` entry"
            );
        }
        // Without --timeline there is none.
        assert!(run_json(&scenario(name), None).get("timeline").is_none());
        // The text timeline too.
        let o = exec(&["run", &f, "--timeline"]);
        assert_eq!(o.code, 0);
        assert!(o.stdout.contains("timeline"));
    }
}

#[test]
fn a_bare_api_body_is_a_scenario_with_warnings_on_stderr() {
    let body = scenario("bodies/seed-example.json").display().to_string();
    let o = exec(&["run", &body, "--format", "json"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stderr.matches("warning:").count(), 3, "{}", o.stderr);
    assert!(o.stderr.contains("private-ipv4"));
    assert!(o.stderr.contains("timeout-not-below-delay"));
    let r: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(r["duration_s"], 600.0);
    let f = single_failover(&r, "crash", "CONNECT_REFUSED");
    assert_eq!(f["fault_start_s"], 60.0);
    assert_eq!(r["failbacks"][0]["fault_end_s"], 180.0);
    assert_eq!(r["members"][0]["address"], "120.10.10.16");
    // The UDP body works the same way.
    let udp = scenario("bodies/udp-pool.json").display().to_string();
    let o = exec(&["run", &udp, "--format", "json"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stderr.is_empty(), "{}", o.stderr);
}

#[test]
fn run_without_a_file_runs_the_bundled_example() {
    let o = exec(&["run", "--format", "json"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stderr.matches("warning:").count(), 3, "{}", o.stderr);
    let r: Value = serde_json::from_str(&o.stdout).unwrap();
    assert!(
        r["name"].as_str().unwrap().contains("My pool"),
        "{}",
        r["name"]
    );
    assert_eq!(r["seed"], 0);
    let f = single_failover(&r, "crash", "CONNECT_REFUSED");
    assert_eq!(f["fault_start_s"], 60.0);
    // The same as running the body file itself.
    let body = scenario("bodies/seed-example.json").display().to_string();
    let o2 = exec(&["run", &body, "--format", "json"]);
    let r2: Value = serde_json::from_str(&o2.stdout).unwrap();
    assert_eq!(r["failovers"], r2["failovers"]);
    // Text form.
    let o = exec(&["run"]);
    assert_eq!(o.code, 0);
    assert!(o.stdout.contains("failovers"), "{}", o.stdout);
}

#[test]
fn a_scenario_on_standard_input() {
    let text = std::fs::read_to_string(scenario("crash.toml")).unwrap();
    let o = elbsim()
        .args(["run", "-", "--format", "json"])
        .write_stdin(text)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    let file = run_json(&scenario("crash.toml"), None);
    assert_eq!(r["failovers"], file["failovers"]);
}

#[test]
fn output_writes_the_report_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.json");
    let f = scenario("crash.toml").display().to_string();
    let o = exec(&[
        "run",
        &f,
        "--format",
        "json",
        "--output",
        &out.display().to_string(),
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.is_empty(), "report went to stdout: {}", o.stdout);
    let written = std::fs::read_to_string(&out).unwrap();
    let plain = exec(&["run", &f, "--format", "json"]);
    assert_eq!(written, plain.stdout);
    // Only the report is left in the directory (no temporary file).
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    // A directory that does not exist: exit 1 and a message, no panic.
    let bad = dir.path().join("missing/report.json");
    let o = exec(&["run", &f, "-o", &bad.display().to_string()]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("report.json"), "{}", o.stderr);
    assert!(!o.stderr.contains("panicked"));
}

// ---------------------------------------------------------------------------------------------
// Bad scenario files

/// A valid inline pool (line 1 is `name`).
const GOOD: &str = r#"name = "bad-file test"
duration = "5m"
seed = 1

[pool]
lb_algorithm = "ROUND_ROBIN"
protocol = "TCP"
type = "ip"

[pool.healthmonitor]
type = "TCP"
delay = 5
timeout = 3
max_retries = 3

[[pool.members]]
role = "master"
address = "192.168.0.10"
protocol_port = 80

[[pool.members]]
role = "slave"
address = "192.168.0.11"
protocol_port = 80
"#;

const CRASH_FAULT: &str = "\n[[faults]]\nmember = \"master\"\nkind = \"crash\"\nat = \"60s\"\n";

/// 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in the text"))
        + 1
}

/// Writes `text` as `name` in a tempdir, runs it, expects exit 1; returns stderr.
fn run_bad(name: &str, text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    let o = exec(&["run", &path.display().to_string(), "--format", "json"]);
    assert_eq!(o.code, 1, "{name}: exit {}: {}", o.code, o.stdout);
    assert!(o.stdout.is_empty(), "{name}: {}", o.stdout);
    assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
    o.stderr
}

/// `file:line:col` at the start of the message, with the expected line.
fn assert_located(stderr: &str, file: &str, line: usize) {
    let prefix = format!("{file}:{line}:");
    let at = stderr
        .find(&prefix)
        .unwrap_or_else(|| panic!("no `{prefix}COL` in: {stderr}"));
    let col: String = stderr[at + prefix.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert!(!col.is_empty(), "no column after `{prefix}` in: {stderr}");
}

#[test]
fn the_good_base_file_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("good.toml");
    std::fs::write(&path, format!("{GOOD}{CRASH_FAULT}")).unwrap();
    let r = run_json(&path, None);
    assert_eq!(failovers(&r).len(), 1);
}

#[test]
fn unknown_pool_key_is_located_and_gets_a_suggestion() {
    let text = GOOD.replace("delay = 5", "dealy = 5");
    let err = run_bad("dealy.toml", &text);
    assert_located(&err, "dealy.toml", line_of(&text, "dealy"));
    assert!(err.contains("dealy"), "{err}");
    assert!(
        err.contains("did you mean") && err.contains("delay"),
        "{err}"
    );
}

#[test]
fn unknown_top_level_key_is_located_and_gets_a_suggestion() {
    let text = GOOD.replace("duration = ", "dration = ");
    let err = run_bad("dration.toml", &text);
    assert_located(&err, "dration.toml", line_of(&text, "dration"));
    assert!(
        err.contains("dration") && err.contains("`duration`"),
        "{err}"
    );
}

#[test]
fn bad_duration_is_located() {
    let text = GOOD.replace("\"5m\"", "\"5 parsecs\"");
    let err = run_bad("parsecs.toml", &text);
    assert_located(&err, "parsecs.toml", line_of(&text, "parsecs"));
    assert!(err.contains("duration") && err.contains("parsecs"), "{err}");
    assert!(err.contains("ms, s, m, h, d"), "names the units: {err}");
}

#[test]
fn bad_duration_in_a_fault_names_the_key() {
    let text = format!("{GOOD}{CRASH_FAULT}").replace("\"60s\"", "\"5 parsecs\"");
    let err = run_bad("fault-at.toml", &text);
    assert_located(&err, "fault-at.toml", line_of(&text, "parsecs"));
    assert!(err.contains("at:") || err.contains("`at`"), "{err}");
}

#[test]
fn misspelt_fault_kind_suggests_the_right_one() {
    let text = format!("{GOOD}{CRASH_FAULT}").replace("\"crash\"", "\"crahs\"");
    let err = run_bad("crahs.toml", &text);
    assert_located(&err, "crahs.toml", line_of(&text, "crahs"));
    assert!(err.contains("faults[0].kind"), "{err}");
    assert!(
        err.contains("\"crahs\"") && err.contains("did you mean \"crash\""),
        "{err}"
    );
}

#[test]
fn a_key_that_does_not_apply_to_the_kind_is_located() {
    let text = format!("{GOOD}{CRASH_FAULT}status = 503\n");
    let err = run_bad("status.toml", &text);
    assert_located(&err, "status.toml", line_of(&text, "status = 503"));
    assert!(err.contains("faults[0].status"), "{err}");
    assert!(err.contains("crash"), "{err}");
}

#[test]
fn an_invalid_inline_pool_points_at_its_line() {
    let text = GOOD.replace("delay = 5", "delay = 0");
    let err = run_bad("delay0.toml", &text);
    assert_located(&err, "delay0.toml", line_of(&text, "delay = 0"));
    assert!(err.contains("pool.healthmonitor.delay"), "{err}");
    assert!(err.contains("1..50"), "{err}");
}

#[test]
fn a_missing_body_file_is_named() {
    let text = "name = \"x\"\nbody = \"no-such-body.json\"\n";
    let err = run_bad("nobody.toml", text);
    assert!(err.contains("no-such-body.json"), "{err}");
    assert!(err.contains("nobody.toml"), "{err}");
}

#[test]
fn both_body_and_pool_is_an_error() {
    let text = format!("body = \"x.json\"\n{GOOD}");
    let err = run_bad("both.toml", &text);
    assert_located(&err, "both.toml", 1);
    assert!(err.contains("body"), "{err}");
}

#[test]
fn not_toml_at_all_is_located() {
    let err = run_bad("garbage.toml", "name = \"x\"\nthis is not toml\n");
    assert_located(&err, "garbage.toml", 2);
}

// ---------------------------------------------------------------------------------------------
// The faults real networks have

/// Runs a copy of `file` with `edit` applied to its text (in the same directory, so `body`
/// paths still resolve), as JSON at `seed`.
fn run_edited(file: &str, edit: impl Fn(&str) -> String, seed: u64) -> Value {
    let text = std::fs::read_to_string(scenario(file)).unwrap();
    let copy = dir().join(format!(".edited-{}-{file}", std::process::id()));
    std::fs::write(&copy, edit(&text)).unwrap();
    let r = run_json(&copy, Some(seed));
    std::fs::remove_file(&copy).ok();
    r
}

#[test]
fn a_per_path_fault_fails_over_only_the_nodes_on_its_path() {
    let c = check_of(&scenario("per-path-fault.toml"));
    for seed in seeds() {
        let r = run_json(&scenario("per-path-fault.toml"), seed);
        let fo = failovers(&r);
        let nodes: Vec<u64> = fo.iter().map(|f| f["lb_node"].as_u64().unwrap()).collect();
        assert_eq!(nodes, vec![0, 2], "seed {}: {fo:#?}", r["seed"]);
        for f in fo {
            assert_eq!(f["reason"], "CONNECT_TIMEOUT");
            assert_in(
                "per-path detection",
                f64_of(f, "detection_latency_s"),
                timeout_form(c),
            );
        }
        // Nodes 1 and 3 are off the path: neither failed over nor missed.
        assert_eq!(r["missed_faults"], 0);
        assert_eq!(r["censored_faults"], 0);
        assert_eq!(r["false_failovers"], 0);
        // Only the clients of nodes 0 and 2 fail, and only until their node fails over.
        let u = &r["traffic"]["unavailability"][0];
        let per_node: Vec<u64> = u["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["lb_node"].as_u64().unwrap())
            .collect();
        assert_eq!(per_node, vec![0, 2], "seed {}", r["seed"]);
        assert!(r["traffic"]["timed_out"].as_u64().unwrap() > 0);
        for n in u["nodes"].as_array().unwrap() {
            let switched = fo
                .iter()
                .find(|f| f["lb_node"] == n["lb_node"])
                .map(|f| f64_of(f, "switched_s"))
                .unwrap();
            assert!(f64_of(n, "last_failure_s") <= switched + EPS, "{n}");
        }
    }
}

#[test]
fn bursty_loss_gives_far_more_false_failovers_than_independent_losses() {
    let r = run_json(&scenario("bursty-loss.toml"), None);
    let bursty = r["false_failovers"].as_u64().unwrap();
    assert_eq!(failovers(&r).len(), 0);
    // The same mean loss, independent: [network] loss = 20/320 x 0.9.
    let independent = run_edited(
        "bursty-loss.toml",
        |t| {
            let start = t.find("[network.burst]").unwrap();
            let end = t.find("[pool]").unwrap();
            format!("{}[network]\nloss = 0.05625\n\n{}", &t[..start], &t[end..])
        },
        5,
    );
    let flat = independent["false_failovers"].as_u64().unwrap();
    assert!(bursty >= 10, "bursty: {bursty}");
    assert!(
        bursty >= 5 * flat.max(1),
        "bursty {bursty} vs independent {flat}"
    );
}

#[test]
fn lb_stalls_are_reported_apart_and_can_fail_both_members_at_once() {
    // The file's seed: the first stall fails both members on node 0: a drop by the LB's fault.
    let r = run_json(&scenario("lb-stall.toml"), None);
    let events = r["stall_events"].as_array().expect("stall_events");
    let at_first: Vec<&Value> = events.iter().filter(|e| e["at_s"] == 65.0).collect();
    assert_eq!(at_first.len(), 2, "{events:#?}");
    assert!(
        at_first.iter().any(|e| e["route_to"] == "drop"),
        "{events:#?}"
    );
    assert!(r["stall_failovers"].as_u64().unwrap() >= 2);
    // Over many seeds: every OFFLINE is a stall's, on node 0, at a stall's end, CONNECT_TIMEOUT;
    // the first stall hits each member with probability r/D = 0.8/4 (see the file).
    let (mut first_hits, mut pairs) = (0u64, 0u64);
    let stall_ends = [65.0, 145.0, 225.0, 305.0, 385.0, 465.0];
    for seed in 1..41u64 {
        let r = run_json(&scenario("lb-stall.toml"), Some(seed));
        assert_eq!(r["false_failovers"], 0);
        assert_eq!(failovers(&r).len(), 0);
        assert_eq!(r["missed_faults"], 0);
        let offline: usize = r["members"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|m| m["transitions"].as_array().unwrap())
            .filter(|x| x["operating_status"] == "OFFLINE")
            .count();
        let events = r["stall_events"].as_array().map_or(&[][..], Vec::as_slice);
        assert_eq!(offline, events.len(), "every OFFLINE is a stall's");
        for e in events {
            assert_eq!(e["lb_node"], 0);
            assert_eq!(e["reason"], "CONNECT_TIMEOUT");
            assert!(stall_ends.contains(&f64_of(e, "at_s")), "{e}");
            assert_eq!(f64_of(e, "at_s"), f64_of(e, "stall_end_s"));
        }
        first_hits += events.iter().filter(|e| e["at_s"] == 65.0).count() as u64;
        pairs += 2;
    }
    let p = 0.8 / 4.0;
    let mean = pairs as f64 * p;
    let sd = (pairs as f64 * p * (1.0 - p)).sqrt();
    assert!(
        (first_hits as f64 - mean).abs() <= 4.0 * sd,
        "{first_hits} first-stall hits in {pairs} pairs, expected {mean} +- {sd}"
    );
}

#[test]
fn icmp_rate_limiting_lets_a_crashed_udp_member_pass_probes_from_a_shared_source() {
    let c = check_of(&scenario("udp-icmp-ratelimit.toml"));
    let (lo, hi) = (
        (c.f - 1.0) * (c.d + R) + R,
        (c.d + c.t) + (c.f - 1.0) * (c.d + R) + R,
    );
    for seed in seeds() {
        let r = run_json(&scenario("udp-icmp-ratelimit.toml"), seed);
        // Some node detects late or never.
        let late = failovers(&r)
            .iter()
            .filter(|f| f64_of(f, "detection_latency_s") > hi + EPS)
            .count() as u64
            + r["missed_faults"].as_u64().unwrap();
        assert!(
            late > 0,
            "seed {}: every node within [{lo}, {hi}]",
            r["seed"]
        );
        // Per-node sources: the budget is never short, the same report as without the table.
        let per_node = run_edited(
            "udp-icmp-ratelimit.toml",
            |t| t.replace("probe_source = \"shared\"", "probe_source = \"per_node\""),
            r["seed"].as_u64().unwrap(),
        );
        let without = run_edited(
            "udp-icmp-ratelimit.toml",
            |t| {
                t.replace("[network.icmp_ratelimit]", "")
                    .replace("probe_source = \"shared\"", "")
            },
            r["seed"].as_u64().unwrap(),
        );
        assert_eq!(per_node["failovers"], without["failovers"]);
        assert_eq!(per_node["missed_faults"], 0);
        for f in failovers(&per_node) {
            assert_in(
                "per-node sources",
                f64_of(f, "detection_latency_s"),
                (lo, hi),
            );
        }
    }
}

#[test]
fn a_separate_monitor_process_misses_a_crash_with_its_reason() {
    for seed in seeds() {
        let r = run_json(&scenario("monitor-process-separate.toml"), seed);
        assert_eq!(failovers(&r).len(), 0);
        assert_eq!(r["missed_faults"], 1);
        let why = r["missed"][0]["why"].as_str().expect("a reason");
        assert!(why.contains("monitor_process"), "{why}");
        // Clients keep meeting the crashed master: refused ~ Poisson(rate x 120 s).
        let refused = r["traffic"]["refused"].as_f64().unwrap();
        let mean = 10.0 * 120.0;
        assert!(
            (refused - mean).abs() <= 5.0 * mean.sqrt(),
            "refused {refused}, expected about {mean}"
        );
    }
}

#[test]
fn failback_hold_down_adds_the_hold_down_to_the_preemptive_failback() {
    let c = check_of(&scenario("failback-hold-down.toml"));
    let hold = 30.0;
    for r in detection_within(
        "failback-hold-down.toml",
        "crash",
        "CONNECT_REFUSED",
        crash_form(c),
    ) {
        let fb = r["failbacks"].as_array().unwrap();
        assert_eq!(fb.len(), 1, "{fb:#?}");
        let (lo, hi) = (
            (c.rise - 1.0) * (c.d + R) + R + hold,
            c.rise * (c.d + R) + R + hold,
        );
        assert_in(
            "hold-down failback",
            f64_of(&fb[0], "failback_latency_s"),
            (lo, hi),
        );
        // Exactly the preemptive failback of the same seed, plus the hold-down.
        let pre = run_edited(
            "failback-hold-down.toml",
            |t| {
                t.replace("failback = \"hold_down\"", "failback = \"preemptive\"")
                    .replace("failback_hold_down = \"30s\"", "")
            },
            r["seed"].as_u64().unwrap(),
        );
        let p = f64_of(&pre["failbacks"][0], "failback_latency_s");
        assert!((f64_of(&fb[0], "failback_latency_s") - p - hold).abs() < EPS);
    }
}

// The envoy profile (docs/profiles.md, "envoy")

#[test]
fn envoy_fails_a_503_on_the_first_check() {
    // An unexpected status is a non-retriable failure: one check, [r, D + 2r].
    let c = check_of(&scenario("profile-envoy-http-503.toml"));
    let rs = detection_within(
        "profile-envoy-http-503.toml",
        "http_status",
        "RESPONSE_MISMATCH",
        (R, c.d + 2.0 * R),
    );
    // Always sooner than the huawei profile's F checks ([(F-1)(D+r)+r, ...]).
    for r in &rs {
        let lat = f64_of(&failovers(r)[0], "detection_latency_s");
        assert!(lat < crash_form(c).0, "{lat}");
    }
}

#[test]
fn envoy_outlier_detection_ejects_a_503_master_a_tcp_check_passes() {
    let c = check_of(&scenario("profile-envoy-outlier.toml"));
    for seed in seeds() {
        let r = run_json(&scenario("profile-envoy-outlier.toml"), seed);
        let f = single_failover(&r, "http_status", "RESPONSE_MISMATCH");
        // 5 failed requests at ~500 requests/s to the master: well under a second.
        assert!(f64_of(f, "detection_latency_s") < 1.0, "{f}");
        assert_eq!(r["missed_faults"], 0);
        // Returned by each passing TCP check, ejected again: it flaps until the fault ends, and
        // is back for good within one check of the end (180 s).
        let t = r["members"][0]["transitions"].as_array().unwrap();
        let offline = t
            .iter()
            .filter(|x| x["operating_status"] == "OFFLINE")
            .count();
        assert!(offline >= 10, "seed {}: {offline} ejections", r["seed"]);
        let last = t.last().unwrap();
        assert_eq!(last["operating_status"], "ONLINE");
        let back = f64_of(last, "at_s");
        assert!((180.0..=180.0 + c.d + 2.0 * R).contains(&back), "{back}");
        assert!(r["traffic"]["requests_failed"].as_u64().unwrap() > 0);
    }
}

#[test]
fn envoy_panic_sends_half_the_traffic_to_each_dead_member() {
    for seed in seeds() {
        let r = run_json(&scenario("profile-envoy-panic.toml"), seed);
        let t = &r["traffic"];
        let (refused, timed_out) = (
            t["refused"].as_u64().unwrap(),
            t["timed_out"].as_u64().unwrap(),
        );
        // ~100 s of panic at 50 connections/s: about 2,500 each way, none dropped.
        assert!(refused > 2000 && timed_out > 2000, "{t}");
        let ratio = refused as f64 / timed_out as f64;
        assert!((0.85..1.2).contains(&ratio), "seed {}: {ratio}", r["seed"]);
        assert_eq!(t["no_backend"], 0);
        let outages = r["outages"].as_array().unwrap();
        assert_eq!(outages.len(), 1, "{outages:?}");
        assert_eq!(outages[0]["kind"], "fail_open");
    }
}
