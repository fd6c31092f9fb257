//! `elbsim probe BODY --target ADDR:PORT ...`: the body's health check, as configured, against
//! real servers now.
//!
//! Each target gets its own prober task (as each ELB node probes each member independently):
//! the first probe goes out at once, every later one `delay` after the previous verdict (the
//! `after_completion` schedule), `--count` probes per target. Each verdict is fed to a
//! `model::health::HealthChecker` that starts ONLINE (the pool's steady state), so the report
//! shows the member status `max_retries` / `max_retries_down` would give after each probe.
//! When the body sets `monitor_port`, the probe goes to the target's address on that port, as
//! ELB's does.
//!
//! The command stops by itself after `--count` probes per target (at most
//! [`MAX_COUNT`]); Ctrl-C stops it early, prints what was measured, marked interrupted, and exits
//! 130. The hidden `--time-scale S` multiplies `delay` and `timeout` by S so tests can use a
//! body's 1 s values and finish in a fraction of it; times printed are wall-clock.

use super::{load_scenario, to_json, warning_lines, Outcome};
use crate::api::pool::{HealthMonitor, MonitorType};
use crate::live::prober::{CheckSpec, EchoStep, ProbeResult, Prober};
use crate::model::health::{Health, HealthChecker};
use crate::model::probe::Reason;
use crate::scenario::CheckOverrides;
use serde::Serialize;
use std::fmt::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Most probes per target.
pub const MAX_COUNT: u32 = 100_000;
/// Most targets in one run.
pub const MAX_TARGETS: usize = 64;

/// Options of `elbsim probe` besides the body.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeArgs {
    /// The members to probe (their service address; `monitor_port` replaces the port).
    pub targets: Vec<SocketAddr>,
    /// Probes per target, 1..=[`MAX_COUNT`].
    pub count: u32,
    pub json: bool,
    pub strict: bool,
    /// Multiplies delay and timeout (tests: 0.05).
    pub time_scale: f64,
    /// Health-check values overriding the body's.
    pub check: CheckOverrides,
}

/// One verdict as the report lists it.
#[derive(Debug, Clone, Serialize)]
pub struct VerdictRow {
    /// Seconds from the start of the command to the verdict (wall clock).
    pub t_s: f64,
    /// The target as given.
    pub target: String,
    /// The address probed (the target, or its address on monitor_port).
    pub probed: String,
    /// 1-based probe number for this target.
    pub n: u32,
    /// ok, reason, http_status, rtt_ms, note.
    #[serde(flatten)]
    pub result: ProbeResult,
    /// The member status after this verdict.
    pub status: Health,
    /// Whether this verdict changed the status.
    pub changed: bool,
}

/// A status change of one target.
#[derive(Debug, Clone, Serialize)]
pub struct Transition {
    pub t_s: f64,
    pub status: Health,
    /// The reason of the verdict that turned it OFFLINE.
    pub reason: Option<Reason>,
}

/// What one target ended with.
#[derive(Debug, Clone, Serialize)]
pub struct TargetSummary {
    pub target: String,
    pub probed: String,
    pub probes: u32,
    pub ok: u32,
    pub failed: u32,
    /// The member status after the last verdict.
    pub status: Health,
    pub transitions: Vec<Transition>,
    /// Smallest, median and largest round trip of the successful probes (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_ms_ok: Option<[f64; 3]>,
}

/// The health check as run.
#[derive(Debug, Clone, Serialize)]
pub struct CheckShown {
    #[serde(rename = "type")]
    pub monitor_type: MonitorType,
    pub delay_s: u32,
    pub timeout_s: u32,
    pub max_retries: u32,
    pub max_retries_down: u32,
    pub monitor_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_codes: Option<String>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    pub body: String,
    pub check: CheckShown,
    /// delay and timeout were multiplied by this on the wall clock.
    pub time_scale: f64,
    /// The status every target starts with.
    pub initial_status: Health,
    /// Ctrl-C stopped the run before every probe was made.
    pub interrupted: bool,
    /// Every verdict, in time order.
    pub verdicts: Vec<VerdictRow>,
    pub targets: Vec<TargetSummary>,
}

fn usage(msg: String) -> Outcome {
    Outcome {
        stdout: String::new(),
        stderr: format!("error: {msg}\n"),
        exit: 2,
    }
}

/// `elbsim probe`.
pub fn probe(body: &Path, args: &ProbeArgs) -> Outcome {
    if args.targets.is_empty() || args.targets.len() > MAX_TARGETS {
        return usage(format!(
            "give 1 to {MAX_TARGETS} --target ADDR:PORT, got {}",
            args.targets.len()
        ));
    }
    if !(1..=MAX_COUNT).contains(&args.count) {
        return usage(format!(
            "--count must be 1..{MAX_COUNT}, got {}",
            args.count
        ));
    }
    if !(args.time_scale.is_finite() && args.time_scale > 0.0 && args.time_scale <= 100.0) {
        return usage(format!(
            "--time-scale must be above 0 and at most 100, got {}",
            args.time_scale
        ));
    }
    let scenario = match load_scenario(Some(body), args.strict, args.check) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let warnings = warning_lines(&scenario);
    let hm = scenario.pool.healthmonitor.clone();
    let prober = match Prober::new(CheckSpec::from_monitor(&hm, args.time_scale)) {
        Ok(p) => p,
        Err(e) => {
            return Outcome {
                stdout: String::new(),
                stderr: format!("{warnings}error: {e}\n"),
                exit: 1,
            }
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return Outcome {
                stdout: String::new(),
                stderr: format!("{warnings}error: cannot start the async runtime: {e}\n"),
                exit: 1,
            }
        }
    };
    let delay = Duration::from_secs_f64(hm.delay_s as f64 * args.time_scale);
    let (verdicts, interrupted) = runtime.block_on(run_probes(&prober, &hm, args, delay));
    let report = build_report(body, &hm, args, verdicts, interrupted);
    let stdout = if args.json {
        to_json(&report)
    } else {
        text(&report)
    };
    Outcome {
        stdout,
        stderr: warnings,
        exit: if interrupted {
            super::EXIT_INTERRUPTED
        } else {
            0
        },
    }
}

/// The address a probe of `target` goes to.
fn probed(target: SocketAddr, hm: &HealthMonitor) -> SocketAddr {
    match hm.monitor_port {
        Some(p) => SocketAddr::new(target.ip(), p),
        None => target,
    }
}

/// Probes every target concurrently; returns the verdicts and whether Ctrl-C cut it short.
async fn run_probes(
    prober: &Prober,
    hm: &HealthMonitor,
    args: &ProbeArgs,
    delay: Duration,
) -> (Vec<VerdictRow>, bool) {
    let cancel = CancellationToken::new();
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for &target in &args.targets {
        let (cancel, prober, count) = (cancel.clone(), prober.clone(), args.count);
        let (to, rise, fall) = (probed(target, hm), hm.max_retries, hm.max_retries_down);
        tasks.spawn(async move {
            let mut checker = HealthChecker::new(rise, fall, Health::Online);
            let mut rows = Vec::new();
            for n in 1..=count {
                if n > 1 {
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
                let result = tokio::select! {
                    _ = cancel.cancelled() => break,
                    r = prober.probe(to, &EchoStep::Icmp) => r,
                };
                let changed = checker.on_verdict(result.ok).is_some();
                rows.push(VerdictRow {
                    t_s: (start.elapsed().as_secs_f64() * 1e6).round() / 1e6,
                    target: target.to_string(),
                    probed: to.to_string(),
                    n,
                    result,
                    status: checker.status(),
                    changed,
                });
            }
            rows
        });
    }
    let mut rows = Vec::new();
    let mut interrupted = false;
    loop {
        tokio::select! {
            next = tasks.join_next() => match next {
                Some(Ok(r)) => rows.extend(r),
                // A prober task cannot panic on input; if one did, the others still report.
                Some(Err(_)) => {}
                None => break,
            },
            // A Ctrl-C handler that cannot be installed just means Ctrl-C ends the process.
            Ok(()) = tokio::signal::ctrl_c(), if !interrupted => {
                interrupted = true;
                cancel.cancel();
            }
        }
    }
    rows.sort_by(|a, b| a.t_s.total_cmp(&b.t_s).then(a.target.cmp(&b.target)));
    (rows, interrupted)
}

fn build_report(
    body: &Path,
    hm: &HealthMonitor,
    args: &ProbeArgs,
    verdicts: Vec<VerdictRow>,
    interrupted: bool,
) -> ProbeReport {
    let http = hm.monitor_type.is_http();
    let check = CheckShown {
        monitor_type: hm.monitor_type,
        delay_s: hm.delay_s,
        timeout_s: hm.timeout_s,
        max_retries: hm.max_retries,
        max_retries_down: hm.max_retries_down,
        monitor_port: hm.monitor_port,
        http_method: http.then(|| hm.http_method.to_string()),
        url_path: http.then(|| hm.url_path.clone()),
        domain_name: if http { hm.domain_name.clone() } else { None },
        expected_codes: http.then(|| hm.expected_codes.to_string()),
    };
    let targets = args
        .targets
        .iter()
        .map(|&t| {
            let target = t.to_string();
            let mine: Vec<&VerdictRow> = verdicts.iter().filter(|v| v.target == target).collect();
            let ok = mine.iter().filter(|v| v.result.ok).count() as u32;
            let mut rtts: Vec<f64> = mine
                .iter()
                .filter(|v| v.result.ok)
                .map(|v| v.result.rtt.as_secs_f64() * 1e3)
                .collect();
            rtts.sort_by(f64::total_cmp);
            let round = |x: f64| (x * 1e3).round() / 1e3;
            TargetSummary {
                probed: probed(t, hm).to_string(),
                target,
                probes: mine.len() as u32,
                ok,
                failed: mine.len() as u32 - ok,
                status: mine.last().map_or(Health::Online, |v| v.status),
                transitions: mine
                    .iter()
                    .filter(|v| v.changed)
                    .map(|v| Transition {
                        t_s: v.t_s,
                        status: v.status,
                        reason: v.result.reason.filter(|_| v.status == Health::Offline),
                    })
                    .collect(),
                rtt_ms_ok: (!rtts.is_empty()).then(|| {
                    [
                        round(rtts[0]),
                        round(rtts[rtts.len() / 2]),
                        round(rtts[rtts.len() - 1]),
                    ]
                }),
            }
        })
        .collect();
    ProbeReport {
        body: body.display().to_string(),
        check,
        time_scale: args.time_scale,
        initial_status: Health::Online,
        interrupted,
        verdicts,
        targets,
    }
}

/// Milliseconds with three decimals.
fn ms(d: Duration) -> String {
    format!("{:.3}ms", d.as_secs_f64() * 1e3)
}

/// The report for people.
pub fn text(r: &ProbeReport) -> String {
    let c = &r.check;
    let mut s = String::new();
    let what = match (&c.http_method, &c.url_path) {
        (Some(m), Some(p)) => format!(
            "{} {m} {p}, Host {}, expected_codes {}",
            c.monitor_type,
            c.domain_name.as_deref().unwrap_or("<the target's IP>"),
            c.expected_codes.as_deref().unwrap_or("200"),
        ),
        _ => c.monitor_type.to_string(),
    };
    let _ = writeln!(s, "elbsim probe: {}: {what}", r.body);
    let scaled = if r.time_scale == 1.0 {
        String::new()
    } else {
        format!(" (x{} on the wall clock)", r.time_scale)
    };
    let _ = writeln!(
        s,
        "delay {}s, timeout {}s{scaled}, max_retries {}, max_retries_down {}{}; members start {}",
        c.delay_s,
        c.timeout_s,
        c.max_retries,
        c.max_retries_down,
        c.monitor_port
            .map(|p| format!(", monitor_port {p}"))
            .unwrap_or_default(),
        r.initial_status.as_str(),
    );
    let width = r
        .verdicts
        .iter()
        .map(|v| v.probed.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let _ = writeln!(
        s,
        "\n{:<9} {:<width$}  {:<6} {:<22} {:<5} {:>11}  status",
        "time", "target", "result", "reason", "http", "rtt"
    );
    for v in &r.verdicts {
        let res = &v.result;
        let _ = writeln!(
            s,
            "{:<9} {:<width$}  {:<6} {:<22} {:<5} {:>11}  {}{}",
            format!("{:.3}s", v.t_s),
            v.probed,
            if res.ok { "ok" } else { "fail" },
            res.reason.map_or("-", Reason::as_str),
            res.http_status.map_or("-".to_string(), |c| c.to_string()),
            ms(res.rtt),
            v.status.as_str(),
            if v.changed { " (changed)" } else { "" },
        );
        if let Some(note) = &res.note {
            let _ = writeln!(s, "{:<9} note: {note}", "");
        }
    }
    let _ = writeln!(s, "\ntargets");
    for t in &r.targets {
        let via = if t.probed != t.target {
            format!(" (checked on {})", t.probed)
        } else {
            String::new()
        };
        let since = t
            .transitions
            .last()
            .map(|x| format!(" since {:.3}s", x.t_s))
            .unwrap_or_default();
        let rtt = t
            .rtt_ms_ok
            .map(|[lo, mid, hi]| format!("; ok rtt min/median/max {lo}/{mid}/{hi} ms"))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "  {}{via}: {} probes, {} ok, {} failed; status {}{since}{rtt}",
            t.target,
            t.probes,
            t.ok,
            t.failed,
            t.status.as_str(),
        );
    }
    if r.interrupted {
        let _ = writeln!(s, "interrupted: Ctrl-C stopped the probes early");
    }
    s
}
