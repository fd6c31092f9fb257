//! `elbsim validate` and `elbsim create` through the binary: the seed page's own body, output
//! formats, the API error body, the 201 response against the seed page's response example, and
//! malformed input files (each an exit 1 with a message naming the file, never a panic).

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn elbsim() -> Command {
    Command::cargo_bin("elbsim").expect("the elbsim binary")
}

fn seed_body() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/bodies/seed-example.json")
}

fn seed_str() -> String {
    seed_body().display().to_string()
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

fn exec_in(args: &[&str], stdin: Option<Vec<u8>>) -> Out {
    let mut c = elbsim();
    c.args(args);
    if let Some(bytes) = stdin {
        c.write_stdin(bytes);
    }
    let o = c.output().expect("elbsim runs");
    let out = Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    assert!(
        !out.all().contains("panicked"),
        "elbsim {args:?} panicked: {}",
        out.stderr
    );
    out
}

fn exec(args: &[&str]) -> Out {
    exec_in(args, None)
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// The seed page's 201 response example, verbatim (spacing included).
const SEED_RESPONSE_EXAMPLE: &str = include_str!("fixtures/seed-response.json");

/// Every key of `expected` (recursively, through objects and arrays item by item) exists in
/// `actual` with the same JSON kind (null in `expected` matches anything).
fn assert_has_keys(expected: &Value, actual: &Value, path: &str) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                let p = format!("{path}.{k}");
                let av = a.get(k).unwrap_or_else(|| panic!("{p} is missing"));
                assert_has_keys(ev, av, &p);
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                assert_has_keys(ev, av, &format!("{path}[{i}]"));
            }
        }
        (Value::Null, _) => {}
        (e, a) => assert_eq!(
            std::mem::discriminant(e),
            std::mem::discriminant(a),
            "{path}: expected a value like {e}, got {a}"
        ),
    }
}

const NOW: &str = "2021-03-26T01:33:12Z";

fn create_seed(extra: &[&str]) -> Out {
    let seed = seed_str();
    let mut args = vec!["create", seed.as_str(), "--seed", "1", "--now", NOW];
    args.extend_from_slice(extra);
    exec(&args)
}

/// A valid, warning-free TCP pool with extra `pool` fields spliced in.
fn tcp_body(extra: &str) -> String {
    format!(
        r#"{{"pool": {{
  "lb_algorithm": "ROUND_ROBIN", "protocol": "TCP", "type": "ip",{extra}
  "members": [
    {{"role": "master", "address": "192.168.0.10", "protocol_port": 80}},
    {{"role": "slave", "address": "192.168.0.11", "protocol_port": 80}}
  ],
  "healthmonitor": {{"type": "TCP", "delay": 5, "timeout": 3, "max_retries": 3}}
}}}}"#
    )
}

// ---------------------------------------------------------------------------------------------
// validate

#[test]
fn validate_the_seed_example_is_valid_with_three_warnings() {
    let o = exec(&["validate", &seed_str()]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains("valid, 0 errors, 3 warnings"),
        "{}",
        o.stdout
    );
    assert_eq!(o.stdout.matches("warning:").count(), 3);
    assert!(o.stdout.contains("pool.healthmonitor.timeout"));
}

#[test]
fn validate_strict_refuses_the_seed_example() {
    let o = exec(&["validate", &seed_str(), "--strict"]);
    assert_eq!(o.code, 1, "{}", o.all());
    assert!(o.stdout.contains("invalid"), "{}", o.stdout);
}

#[test]
fn validate_json_has_valid_errors_and_warnings() {
    let o = exec(&["validate", &seed_str(), "--format", "json"]);
    assert_eq!(o.code, 0);
    let v = json(&o.stdout);
    assert_eq!(v["valid"], true);
    assert_eq!(v["errors"], Value::Array(vec![]));
    let w = v["warnings"].as_array().unwrap();
    assert_eq!(w.len(), 3);
    for p in w {
        for k in ["path", "rule", "message"] {
            assert!(p[k].is_string(), "{k} in {p}");
        }
    }
    let paths: Vec<&str> = w.iter().map(|p| p["path"].as_str().unwrap()).collect();
    assert!(paths.contains(&"pool.members[0].address"), "{paths:?}");
    assert!(paths.contains(&"pool.members[1].address"), "{paths:?}");
    assert!(paths.contains(&"pool.healthmonitor.timeout"), "{paths:?}");

    // Strict: the same problems are errors.
    let o = exec(&["validate", &seed_str(), "--format", "json", "--strict"]);
    assert_eq!(o.code, 1);
    let v = json(&o.stdout);
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"].as_array().unwrap().len(), 3);
}

#[test]
fn validate_json_on_an_invalid_body_lists_every_error_with_a_path() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.json");
    let body = tcp_body("")
        .replace("\"delay\": 5", "\"delay\": 0")
        .replace("\"role\": \"slave\"", "\"role\": \"boss\"");
    std::fs::write(&p, body).unwrap();
    let o = exec(&["validate", &p.display().to_string(), "--format", "json"]);
    assert_eq!(o.code, 1);
    let v = json(&o.stdout);
    assert_eq!(v["valid"], false);
    let errs = v["errors"].as_array().unwrap();
    let paths: Vec<&str> = errs.iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert!(paths.contains(&"pool.healthmonitor.delay"), "{paths:?}");
    assert!(paths.contains(&"pool.members[1].role"), "{paths:?}");
    for e in errs {
        assert!(e["rule"].is_string() && e["message"].is_string(), "{e}");
    }
}

#[test]
fn validate_api_format_gives_the_api_error_body() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, tcp_body("").replace("\"delay\": 5", "\"delay\": 0")).unwrap();
    let o = exec(&["validate", &bad.display().to_string(), "--format", "api"]);
    assert_eq!(o.code, 1, "{}", o.all());
    let v = json(&o.stdout);
    assert_eq!(v["error_code"], "ELB.1001", "{v}");
    assert!(
        v["error_msg"].as_str().is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    assert!(v["request_id"].is_string(), "{v}");

    // Drain enabled without a timeout has its own code.
    let drain = dir.path().join("drain.json");
    std::fs::write(
        &drain,
        tcp_body(r#" "connection_drain": {"enable": true},"#),
    )
    .unwrap();
    let o = exec(&["validate", &drain.display().to_string(), "--format", "api"]);
    assert_eq!(o.code, 1, "{}", o.all());
    assert_eq!(json(&o.stdout)["error_code"], "ELB.8902", "{}", o.stdout);

    // A valid body: the 201 response.
    let good = dir.path().join("good.json");
    std::fs::write(&good, tcp_body("")).unwrap();
    let o = exec(&["validate", &good.display().to_string(), "--format", "api"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let v = json(&o.stdout);
    assert!(
        v["request_id"].is_string() && v["pool"]["id"].is_string(),
        "{v}"
    );
}

#[test]
fn validate_reads_standard_input() {
    let body = std::fs::read(seed_body()).unwrap();
    let o = exec_in(&["validate", "-"], Some(body.clone()));
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(o.stdout.contains("3 warnings"), "{}", o.stdout);
    let o = exec_in(&["validate", "-", "--format", "json"], Some(b"{".to_vec()));
    assert_eq!(o.code, 1);
    assert_eq!(json(&o.stdout)["errors"][0]["rule"], "invalid-json");
}

// ---------------------------------------------------------------------------------------------
// create

#[test]
fn create_is_deterministic_and_has_every_key_of_the_seed_response() {
    let a = create_seed(&[]);
    let b = create_seed(&[]);
    assert_eq!(a.code, 0, "{}", a.all());
    assert_eq!(a.stdout, b.stdout, "same seed and --now, different output");
    // The body's warnings go to stderr.
    assert_eq!(a.stderr.matches("warning:").count(), 3, "{}", a.stderr);

    let v = json(&a.stdout);
    assert_eq!(v["pool"]["created_at"], NOW);
    assert_eq!(v["pool"]["updated_at"], NOW);
    let example = json(SEED_RESPONSE_EXAMPLE);
    assert_has_keys(&example, &v, "$");
    // The request's own values are echoed.
    assert_eq!(v["pool"]["name"], "My pool");
    assert_eq!(v["pool"]["healthmonitor"]["max_retries_down"], 3);
    assert_eq!(
        v["pool"]["listeners"][0]["id"],
        "0b11747a-b139-492f-9692-2df0b1c87193"
    );
    assert_eq!(v["pool"]["members"][0]["role"], "master");
    assert_eq!(v["pool"]["members"][1]["role"], "slave");
    assert!(v["request_id"].is_string());

    // Another seed: other ids.
    let seed = seed_str();
    let c = exec(&["create", &seed, "--seed", "2", "--now", NOW]);
    assert_ne!(json(&c.stdout)["pool"]["id"], v["pool"]["id"]);
    // Unix seconds for --now.
    let d = exec(&["create", &seed, "--seed", "1", "--now", "1616722392"]);
    assert_eq!(d.stdout, a.stdout);
}

#[test]
fn create_uses_the_project_id() {
    let pid = "0123456789abcdef0123456789abcdef";
    let o = create_seed(&["--project-id", pid]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert_eq!(json(&o.stdout)["pool"]["project_id"], pid);
}

#[test]
fn create_refuses_a_malformed_project_id() {
    let o = create_seed(&["--project-id", "BAD"]);
    assert_ne!(o.code, 0, "{}", o.stdout);
}

#[test]
fn create_refuses_an_invalid_body_and_a_bad_now() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, tcp_body("").replace("\"delay\": 5", "\"delay\": 0")).unwrap();
    let o = exec(&["create", &bad.display().to_string()]);
    assert_eq!(o.code, 1);
    assert!(o.stdout.is_empty());
    assert!(o.stderr.contains("bad.json"), "{}", o.stderr);
    assert!(
        o.stderr.contains("pool.healthmonitor.delay"),
        "{}",
        o.stderr
    );

    let o = exec(&["create", &seed_str(), "--now", "yesterday"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("--now"), "{}", o.stderr);
}

#[test]
fn create_reads_standard_input_and_writes_output_files() {
    let body = std::fs::read(seed_body()).unwrap();
    let o = exec_in(&["create", "-", "--seed", "1", "--now", NOW], Some(body));
    assert_eq!(o.code, 0, "{}", o.all());
    assert_eq!(o.stdout, create_seed(&[]).stdout);

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("created.json");
    let o = create_seed(&["--output", &out.display().to_string()]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(o.stdout.is_empty());
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        create_seed(&[]).stdout
    );
}

// ---------------------------------------------------------------------------------------------
// Malformed input files: exit 1, a message naming the file, no panic, for every command.

/// Runs validate, create and run on `path`; each must exit 1 and name the file.
fn assert_refused(path: &Path, what: &str) {
    let p = path.display().to_string();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    for args in [
        vec!["validate", p.as_str()],
        vec!["validate", p.as_str(), "--format", "json"],
        vec!["validate", p.as_str(), "--format", "api"],
        vec!["create", p.as_str()],
        vec!["run", p.as_str()],
    ] {
        let o = exec(&args);
        assert_eq!(o.code, 1, "{what}: {args:?}: exit {}: {}", o.code, o.all());
        let all = o.all();
        if args.contains(&"--format") {
            // JSON and API problems name the JSON path ($ for the whole body).
            assert!(
                all.contains("\"path\": \"")
                    || all.contains("Invalid input for ")
                    || all.contains(&name),
                "{what}: {args:?} names no path: {all}"
            );
        } else {
            assert!(
                all.contains(&name),
                "{what}: {args:?} does not name the file: {all}"
            );
        }
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn not_json_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert_refused(
        &write(dir.path(), "notjson.json", b"pool: yes\n"),
        "not JSON",
    );
    assert_refused(
        &write(dir.path(), "binary.json", &[0xff, 0xfe, 0x00, 0x7b]),
        "not UTF-8",
    );
    assert_refused(
        &write(dir.path(), "array.json", b"[1, 2, 3]"),
        "not an object",
    );
}

#[test]
fn truncated_json_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::read(seed_body()).unwrap();
    for cut in [1, full.len() / 3, full.len() / 2, full.len() - 3] {
        assert_refused(
            &write(dir.path(), "truncated.json", &full[..cut]),
            &format!("truncated at {cut}"),
        );
    }
}

#[test]
fn deep_nesting_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let arrays = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert_refused(
        &write(dir.path(), "deep.json", arrays.as_bytes()),
        "deep arrays",
    );
    let objects = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    assert_refused(
        &write(dir.path(), "deepobj.json", objects.as_bytes()),
        "deep objects",
    );
    let o = exec(&[
        "validate",
        &dir.path().join("deep.json").display().to_string(),
        "--format",
        "json",
    ]);
    assert_eq!(json(&o.stdout)["errors"][0]["rule"], "too-deep");
}

#[test]
fn huge_numbers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert_refused(&write(dir.path(), "big.json", b"1e999"), "1e999");
    let body = tcp_body("").replace("\"delay\": 5", "\"delay\": 1e999");
    assert_refused(
        &write(dir.path(), "bigdelay.json", body.as_bytes()),
        "delay 1e999",
    );
    let body = tcp_body("").replace("\"delay\": 5", "\"delay\": 99999999999999999999999");
    assert_refused(
        &write(dir.path(), "wide.json", body.as_bytes()),
        "delay > u64",
    );
}

#[test]
fn empty_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert_refused(&write(dir.path(), "empty.json", b""), "empty");
    assert_refused(&write(dir.path(), "blank.json", b"  \n\t\n"), "blank");
    let o = exec(&[
        "validate",
        &dir.path().join("empty.json").display().to_string(),
        "--format",
        "json",
    ]);
    assert_eq!(json(&o.stdout)["errors"][0]["rule"], "empty-body");
}

#[test]
fn a_100_mb_file_is_refused_by_size() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("huge.json");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
    f.write_all(b"{\"pool\": {\"name\": \"").unwrap();
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..100 {
        f.write_all(&chunk).unwrap();
    }
    f.write_all(b"\"}}").unwrap();
    f.into_inner().unwrap().sync_all().unwrap();
    assert!(std::fs::metadata(&p).unwrap().len() > 100 << 20);
    assert_refused(&p, "100 MB");
    let o = exec(&["validate", &p.display().to_string(), "--format", "json"]);
    assert_eq!(json(&o.stdout)["errors"][0]["rule"], "body-too-large");
}

#[test]
fn a_missing_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert_refused(&dir.path().join("absent.json"), "missing");
    // A directory is not a file either.
    let o = exec(&["validate", &dir.path().display().to_string()]);
    assert_eq!(o.code, 1, "{}", o.all());
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(exec(&["validate"]).code, 2);
    assert_eq!(exec(&["validate", &seed_str(), "--format", "yaml"]).code, 2);
    assert_eq!(exec(&["frobnicate"]).code, 2);
}
