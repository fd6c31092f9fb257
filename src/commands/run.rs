//! `elbsim run`: one scenario, one seed, one report.

use super::{to_json, Outcome};
use crate::report::run::{analyse, RunFacts, RunReport};
use crate::report::text;
use crate::scenario::{self, Scenario};
use crate::sim::config::{FaultKind, SimConfig};
use crate::sim::engine::{self, RunOptions};
use std::path::Path;

/// Options of `elbsim run` besides the scenario.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunArgs {
    pub seed: Option<u64>,
    pub json: bool,
    /// `--format markdown`: the text report as Markdown.
    pub markdown: bool,
    pub timeline: bool,
    pub strict: bool,
    /// `--plot`: the timeline as SVG.
    pub plot: bool,
    /// `--html`: one self-contained page with the report and the timeline.
    pub html: bool,
    /// Health-check values overriding the pool body's.
    pub check: scenario::CheckOverrides,
}

/// The override flags as they would be typed, for "reproduce" lines.
pub fn override_flags(o: &scenario::CheckOverrides) -> String {
    let mut s = String::new();
    let mut add = |name: &str, v: Option<u32>| {
        if let Some(v) = v {
            s.push_str(&format!(" --{name} {v}"));
        }
    };
    add("delay", o.delay);
    add("timeout", o.timeout);
    add("max-retries", o.max_retries);
    add("max-retries-down", o.max_retries_down);
    if let Some(p) = o.profile {
        s.push_str(&format!(" --profile {p}"));
    }
    s
}

/// The seed of a run: the command line's, else the scenario's, else 0.
pub fn effective_seed(cli: Option<u64>, scenario: &Scenario) -> u64 {
    cli.or(scenario.seed).unwrap_or(0)
}

/// Runs a loaded scenario and builds its report; the flag is true when Ctrl-C cut the run
/// short (the report then covers the run up to that point).
pub fn run_scenario(
    s: &Scenario,
    seed: u64,
    timeline: bool,
) -> (RunReport, bool, Vec<engine::RouteLog>) {
    let log = engine::run(
        &s.sim,
        RunOptions {
            seed,
            trial: 0,
            record_verdicts: timeline,
            stop_when_quiet: false,
            interrupt: Some(&super::INTERRUPTED),
            failure_series: true,
        },
    );
    let codes = s.pool.healthmonitor.expected_codes.to_string();
    let facts = RunFacts {
        name: &s.name,
        seed,
        cfg: &s.sim,
        expected_codes: Some(&codes),
    };
    let report = analyse(&facts, &log, timeline);
    let partial = report.partial;
    (report, partial, log.routes)
}

/// Lines that say what was simulated, above the text report.
pub fn context_lines(s: &Scenario) -> Vec<String> {
    let p = &s.pool;
    let hm = &p.healthmonitor;
    let mut lines = vec![format!(
        "pool: {} {}, health check {} delay {}s timeout {}s max_retries {} max_retries_down {}",
        p.protocol,
        p.lb_algorithm,
        hm.monitor_type,
        hm.delay_s,
        hm.timeout_s,
        hm.max_retries,
        hm.max_retries_down
    )];
    lines.push(model_line(&s.sim));
    if s.sim.faults.is_empty() {
        lines.push("faults: none".to_string());
    }
    for (i, f) in s.sim.faults.iter().enumerate() {
        let until = f.until.map_or("the end".to_string(), |u| u.to_string());
        let path = s
            .sim
            .fault_paths
            .get(&(i as u32))
            .map_or(String::new(), |nodes| {
                let list: Vec<String> = nodes.iter().map(u32::to_string).collect();
                format!(" on the path from LB node {}", list.join(", "))
            });
        let extra = match f.kind {
            FaultKind::HttpStatus { status, expected } => format!(
                " status {status}{}",
                if expected { " (in expected_codes)" } else { "" }
            ),
            FaultKind::Slow { latency } => format!(" +{latency}"),
            FaultKind::Loss { probability } => format!(" p={probability}"),
            FaultKind::Flap { period, down } => format!(" period {period}, down {down}"),
            _ => String::new(),
        };
        lines.push(format!(
            "fault: {} {}{} from {} to {}{path}",
            f.member.as_str(),
            f.kind.name(),
            extra,
            f.at,
            until
        ));
    }
    for st in &s.sim.stalls {
        let list: Vec<String> = st.lb_nodes.iter().map(u32::to_string).collect();
        lines.push(format!(
            "stall: LB node {} checker paused from {} to {}",
            list.join(", "),
            st.at,
            st.until
        ));
    }
    if let Some(b) = s.sim.network.burst {
        lines.push(format!(
            "network burst: good {} (loss {}), bad {} (loss {}), long-run loss {:.4}",
            b.mean_good,
            b.loss_good,
            b.mean_bad,
            b.loss_bad,
            b.mean_loss()
        ));
    }
    if let Some(l) = s.sim.network.icmp_ratelimit {
        lines.push(format!(
            "icmp rate limit: {} per destination (burst {}), {} per second host-wide (burst {}), probes from {}",
            l.peer_interval,
            l.peer_burst,
            l.global_per_s,
            l.global_burst,
            if l.shared_source { "one shared address" } else { "each LB node's own address" }
        ));
    }
    lines
}

fn model_line(sim: &SimConfig) -> String {
    let m = &sim.model;
    let rtt = match sim.network.rtt {
        crate::sim::config::Rtt::Fixed(d) => format!("rtt {d}"),
        crate::sim::config::Rtt::LogNormal { median, p99 } => {
            format!("rtt log-normal median {median} p99 {p99}")
        }
    };
    let name = |v: serde_json::Value| v.as_str().unwrap_or("?").to_string();
    // The default profile is left unsaid, so reports from before profiles read the same.
    let profile = match m.profile.name() {
        crate::model::profile::ProfileName::Huawei => String::new(),
        p => format!("profile {p}, "),
    };
    // envoy: the panic threshold decides what happens with both members down.
    let all_down = match (m.profile, m.routing().1) {
        (crate::model::profile::Profile::Envoy(_), crate::model::router::AllDown::Master) => {
            "panic (half to each)".to_string()
        }
        (_, all_down) => name(serde_json::json!(all_down)),
    };
    let failback = match m.failback {
        crate::model::router::Failback::HoldDown => {
            format!("hold_down ({})", m.failback_hold_down)
        }
        f => name(serde_json::json!(f)),
    };
    let monitor = match m.monitor_process {
        crate::sim::config::MonitorProcess::Same => "",
        crate::sim::config::MonitorProcess::Separate => ", separate monitor process",
    };
    format!(
        "model: {profile}{} schedule, {failback} failback, all down -> {all_down}, route update delay {}{monitor}; network {rtt}, loss {}",
        name(serde_json::json!(m.probe_schedule)),
        m.route_update_delay,
        sim.network.loss
    )
}

/// `elbsim run [SCENARIO]`.
pub fn run(path: Option<&Path>, args: RunArgs) -> super::WithFiles {
    let s = match super::load_scenario(path, args.strict, args.check) {
        Ok(s) => s,
        Err(failed) => return failed.into(),
    };
    let seed = effective_seed(args.seed, &s);
    let (report, partial, routes) = run_scenario(&s, seed, args.timeline);
    let mut stderr = super::warning_lines(&s);
    if let Some(limit) = report.limit {
        return super::limit_reached(&s, limit, stderr).into();
    }
    if partial {
        stderr.push_str(
            "elbsim run: interrupted (Ctrl-C): the report covers the run up to that point only\n",
        );
    }
    let reproduce = format!(
        "elbsim run{}{}{} --seed {seed}",
        if s.origin.is_empty() { "" } else { " " },
        s.origin,
        override_flags(&args.check)
    );
    let stdout = if args.json {
        /// The report with the scenario's warnings, serialized straight to text: no
        /// intermediate JSON tree, whose size would be a multiple of the report's.
        #[derive(serde::Serialize)]
        struct WithWarnings<'a> {
            #[serde(flatten)]
            report: &'a RunReport,
            warnings: Vec<crate::report::warning::Warning>,
        }
        to_json(&WithWarnings {
            report: &report,
            warnings: s.warnings.iter().map(Into::into).collect(),
        })
    } else if args.markdown {
        crate::report::markdown::from_text(&text::run_report(
            &report,
            &context_lines(&s),
            &reproduce,
        ))
    } else {
        text::run_report(&report, &context_lines(&s), &reproduce)
    };
    let mut files = Vec::new();
    if args.plot || args.html {
        let t = crate::report::plot::timeline_of(&s.sim, &report, &routes);
        let svg = match crate::report::plot::timeline_svg(&t) {
            Ok(svg) => svg,
            Err(e) => {
                return Outcome {
                    stdout: String::new(),
                    stderr: format!("{stderr}error: --plot: {e}\n"),
                    exit: 1,
                }
                .into()
            }
        };
        if args.html {
            let text = text::run_report(&report, &context_lines(&s), &reproduce);
            let title = format!("elbsim run: {}", s.name);
            files.push((
                "--html",
                crate::report::html::page_with_plot(
                    &title,
                    &reproduce,
                    &context_lines(&s),
                    vec![("seed".into(), seed.to_string())],
                    "Timeline per LB node: each member's status in that node's view, the node's route, the faults and the client failures per second",
                    &svg,
                    &text,
                ),
            ));
        }
        if args.plot {
            files.push(("--plot", svg));
        }
    }
    super::WithFiles {
        outcome: Outcome {
            stdout,
            stderr,
            exit: if partial { super::EXIT_INTERRUPTED } else { 0 },
        },
        files,
    }
}
