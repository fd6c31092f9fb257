//! `elbsim validate` and `elbsim create`: the API's front door.

use super::{to_json, Outcome};
use crate::api::{self, CheckOptions, Checked, CreateOptions, Problem};
use std::fmt::Write;
use std::io::Read;
use std::path::Path;

/// How `validate` prints (also the values of its `--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ValidateFormat {
    /// One line per problem, for people.
    Text,
    /// `{valid, errors, warnings}`, each problem `{path, rule, message}`.
    Json,
    /// What the API would answer: its error body for the first error (HTTP 400), or the 201
    /// response body when the request is valid.
    Api,
}

/// Reads a body file or standard input, up to just past the API's size limit: anything larger
/// is refused by size without being read whole.
pub fn read_body(path: &Path) -> Result<Vec<u8>, Problem> {
    let limit = api::read::MAX_BODY_BYTES as u64;
    let mut buf = Vec::new();
    let res = if path == Path::new("-") {
        std::io::stdin().take(limit + 1).read_to_end(&mut buf)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(limit + 1).read_to_end(&mut buf))
    };
    res.map_err(|e| {
        Problem::new(
            "$",
            "unreadable-file",
            format!("{} cannot be read: {e}", path.display()),
        )
    })?;
    if buf.len() as u64 > limit {
        // Only a regular file has a size worth quoting; a device (/dev/zero), a pipe or standard
        // input reports 0, and was read only up to the limit anyway.
        let size = std::fs::metadata(path)
            .ok()
            .filter(|m| m.is_file() && m.len() > limit)
            .map_or_else(
                || "more than the limit of".to_string(),
                |m| format!("{} bytes, more than the limit of", m.len()),
            );
        return Err(Problem::new(
            "$",
            "body-too-large",
            format!("the body is {size} {limit} bytes (1 MiB); send only the {{\"pool\": {{...}}}} object"),
        ));
    }
    Ok(buf)
}

fn check_file(path: &Path, strict: bool) -> Checked {
    match read_body(path) {
        Ok(bytes) => api::check_bytes(&bytes, CheckOptions { strict }),
        Err(p) => Checked {
            request: None,
            errors: vec![p],
            warnings: vec![],
        },
    }
}

/// One line per problem in the layout every command uses:
/// `error: FILE: path [rule]: message` (a JSON body has no line numbers to give).
fn problem_lines(out: &mut String, label: &str, file: &Path, problems: &[Problem]) {
    for p in problems {
        let _ = writeln!(
            out,
            "{label}: {}: {} [{}]: {}",
            file.display(),
            p.path,
            p.rule,
            p.message
        );
    }
}

/// Warnings as people read them on standard error.
pub fn warning_lines(file: &Path, warnings: &[Problem]) -> String {
    let mut s = String::new();
    for w in warnings {
        let _ = writeln!(
            s,
            "warning: {}: {} [{}]: {}",
            file.display(),
            w.path,
            w.rule,
            w.message
        );
    }
    s
}

/// `elbsim validate FILE|-`.
pub fn validate(path: &Path, format: ValidateFormat, strict: bool, seed: u64) -> Outcome {
    let c = check_file(path, strict);
    let valid = c.is_valid();
    let stdout = match format {
        ValidateFormat::Json => to_json(&serde_json::json!({
            "valid": valid,
            "errors": c.errors,
            "warnings": c.warnings,
        })),
        ValidateFormat::Text => {
            let mut s = String::new();
            let _ = writeln!(
                s,
                "{}: {}, {} error{}, {} warning{}",
                path.display(),
                if valid { "valid" } else { "invalid" },
                c.errors.len(),
                if c.errors.len() == 1 { "" } else { "s" },
                c.warnings.len(),
                if c.warnings.len() == 1 { "" } else { "s" },
            );
            problem_lines(&mut s, "error", path, &c.errors);
            problem_lines(&mut s, "warning", path, &c.warnings);
            s
        }
        ValidateFormat::Api => match (&c.request, c.errors.first()) {
            (_, Some(first)) => to_json(&api::api_error_body(first, &api::request_id(seed))),
            (Some(req), None) => to_json(&api::create_response(
                req,
                &CreateOptions {
                    seed,
                    project_id: None,
                    now_unix_s: 0,
                },
            )),
            (None, None) => String::new(),
        },
    };
    Outcome {
        stdout,
        stderr: String::new(),
        exit: if valid { 0 } else { 1 },
    }
}

/// `elbsim create FILE|-`: the 201 body, or the problems and exit 1.
pub fn create(path: &Path, strict: bool, opts: &CreateOptions) -> Outcome {
    let c = check_file(path, strict);
    match (&c.request, c.is_valid()) {
        (Some(req), true) => Outcome {
            stdout: to_json(&api::create_response(req, opts)),
            stderr: warning_lines(path, &c.warnings),
            exit: 0,
        },
        _ => {
            let mut s = format!(
                "{}: the API would refuse this body (HTTP 400):\n",
                path.display()
            );
            problem_lines(&mut s, "error", path, &c.errors);
            Outcome {
                stdout: String::new(),
                stderr: s,
                exit: 1,
            }
        }
    }
}

/// The latest `--now`: 9999-12-31T23:59:59Z, the last instant the API's four-digit years can
/// write.
pub const MAX_NOW_UNIX_S: i64 = 253_402_300_799;

/// Parses `--now`: Unix seconds or the API's `yyyy-MM-ddTHH:mm:ssZ`, from 1970 to year 9999.
pub fn parse_now(s: &str) -> Result<i64, String> {
    if let Ok(n) = s.trim().parse::<i128>() {
        if !(0..=MAX_NOW_UNIX_S as i128).contains(&n) {
            return Err(format!(
                "--now {s}: Unix seconds must be from 0 (1970-01-01T00:00:00Z) to {MAX_NOW_UNIX_S} (9999-12-31T23:59:59Z), the years the API's yyyy-MM-ddTHH:mm:ssZ can write"
            ));
        }
        return Ok(n as i64);
    }
    let bad = || {
        format!("--now {s:?}: write Unix seconds (1616722392) or yyyy-MM-ddTHH:mm:ssZ (2021-03-26T01:33:12Z)")
    };
    let b = s.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<i64>().map_err(|_| bad());
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 59 {
        return Err(bad());
    }
    // Days from civil (Howard Hinnant's algorithm), the inverse of the API time formatting.
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let t = days * 86_400 + h * 3600 + mi * 60 + se;
    if api::format_api_time(t) != s {
        return Err(bad()); // e.g. February 30th
    }
    if t < 0 {
        return Err(format!(
            "--now {s}: the time must be from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z"
        ));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_round_trips_the_api_format() {
        assert_eq!(parse_now("2021-03-26T01:33:12Z"), Ok(1_616_722_392));
        assert_eq!(parse_now("1616722392"), Ok(1_616_722_392));
        assert!(parse_now("2021-02-30T00:00:00Z").is_err());
        assert!(parse_now("yesterday").is_err());
        assert_eq!(parse_now("253402300799"), Ok(MAX_NOW_UNIX_S));
        assert!(parse_now("9999999999999")
            .unwrap_err()
            .contains("9999-12-31"));
        assert!(parse_now("-1").is_err());
        assert!(parse_now("99999999999999999999999").is_err());
    }
}
