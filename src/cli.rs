//! Command-line definitions (clap) only: the commands turn these into typed options and call
//! the library (`elbsim::commands`).

use clap::{Parser, Subcommand, ValueEnum};
use elbsim::commands::body::ValidateFormat;
use elbsim::experiment::tune::{Objective, ProbeFault};
use std::path::PathBuf;

/// elbsim: simulate a Huawei Cloud ELB master/slave pool: health checks, failover, failback.
#[derive(Debug, Parser)]
#[command(name = "elbsim", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// More logs on standard error (-v: status and route changes, -vv: everything).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// Health-check values that override the pool body's, e.g. to check what `tune` recommends.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct CheckArgs {
    /// Override healthmonitor.delay (s, 1..50).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub delay: Option<u32>,
    /// Override healthmonitor.timeout (s, 1..50).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub timeout: Option<u32>,
    /// Override healthmonitor.max_retries (1..10).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub max_retries: Option<u32>,
    /// Override healthmonitor.max_retries_down (1..10).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub max_retries_down: Option<u32>,
}

/// The data plane whose health-check rules apply.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct ProfileArgs {
    /// Data-plane profile: huawei (default), haproxy, envoy, keepalived; wins over the
    /// scenario's `[model] profile`. See docs/profiles.md.
    #[arg(long, value_name = "NAME", value_parser = profile_name)]
    pub profile: Option<elbsim::model::profile::ProfileName>,
}

/// How the engine simulates (never what it computes).
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct EngineArgs {
    /// Simulate every probe as an event of its own instead of coasting through stretches where
    /// a member's checks keep giving the same verdict and change nothing: the same output, event
    /// count included, with more work. For checking that, and for measuring the engine.
    #[arg(long)]
    pub step_every_probe: bool,
}

fn profile_name(s: &str) -> Result<elbsim::model::profile::ProfileName, String> {
    elbsim::model::profile::ProfileName::parse(s)
}

/// `compare --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompareFormat {
    Text,
    Json,
}

/// The latencies `trials --histogram` can export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HistogramKind {
    Detection,
    Failover,
    Failback,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    /// The text report as Markdown (pipe tables), to paste into a ticket.
    Markdown,
    /// `trials` and `tune`: a shard file for `elbsim merge` (see `--shard`).
    Shard,
}

/// What `run`, `trials` and `tune` share: the scenario and how to report on it.
#[derive(Debug, Clone, clap::Args)]
pub struct ScenarioArgs {
    /// A scenario (TOML), a bare API body (JSON), or - for standard input. Without it, the
    /// bundled example: the seed page's own pool, master crash at 60s, back at 180s.
    pub scenario: Option<PathBuf>,
    /// Seed of every random draw (default: the scenario's `seed`, else 0); trial i of a batch
    /// uses streams derived from (seed, i).
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Treat the pool's API warnings as errors.
    #[arg(long)]
    pub strict: bool,
    /// Write the report to this file (whole or not at all) instead of standard output.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Also draw the result as SVG to this file: run, a timeline per LB node; trials, the
    /// latency CDFs with the closed-form window; tune, the Pareto front.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Also write one self-contained HTML page (report, plots, parameters, reproduce command;
    /// nothing loaded from the network) to this file.
    #[arg(long, value_name = "FILE.html")]
    pub html: Option<PathBuf>,
}

impl ScenarioArgs {
    pub fn json(&self) -> bool {
        self.format == Format::Json
    }

    pub fn markdown(&self) -> bool {
        self.format == Format::Markdown
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a CreateMasterSlavePool request body against every rule of the API.
    ///
    /// Exit 0 when valid (warnings allowed), 1 when invalid.
    Validate {
        /// The body: a JSON file holding {"pool": {...}}, or - for standard input.
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = ValidateFormat::Text)]
        format: ValidateFormat,
        /// Treat warnings (rules the seed page's own example breaks) as errors.
        #[arg(long)]
        strict: bool,
        /// Seed of the request_id in `--format api` output.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Print the 201 response the API would give for a request body (ids, defaults, timestamps).
    Create {
        /// The body: a JSON file holding {"pool": {...}}, or - for standard input.
        file: PathBuf,
        /// Seed of every generated id: the same seed gives the same ids.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// The project id of the URL (32 of [a-z0-9]); wins over the body's project_id.
        #[arg(long, value_parser = project_id)]
        project_id: Option<String>,
        /// Creation time: Unix seconds or yyyy-MM-ddTHH:mm:ssZ, from 1970 to 9999 (default: now).
        #[arg(long)]
        now: Option<String>,
        /// Treat warnings as errors.
        #[arg(long)]
        strict: bool,
        /// Write the response to this file (whole or not at all) instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Check a scenario (its pool body by the API's rules, every key, the limits) without
    /// running it.
    ///
    /// Exit 0 when it would run (warnings allowed), 1 when it would not.
    Check {
        /// A scenario (TOML), a bare API body (JSON), or - for standard input.
        scenario: PathBuf,
        /// Treat the pool's API warnings as errors.
        #[arg(long)]
        strict: bool,
    },
    /// Run one scenario's trials under several data-plane profiles and print detection,
    /// failover and failback percentiles, false failovers per day, missed faults and client
    /// failures side by side (docs/profiles.md).
    ///
    /// Each column is what `elbsim trials --profile NAME` reports with the same -n and --seed;
    /// identical for any --jobs.
    Compare {
        /// A scenario (TOML), a bare API body (JSON), or - for standard input. Without it, the
        /// bundled example.
        scenario: Option<PathBuf>,
        /// Profiles to compare, comma-separated, in column order (default: every available one:
        /// huawei,haproxy,envoy,keepalived).
        #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = profile_name)]
        profiles: Vec<elbsim::model::profile::ProfileName>,
        /// Trials per profile.
        #[arg(short = 'n', long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
        n: u64,
        /// Worker threads (default: all cores).
        #[arg(short, long, value_parser = jobs)]
        jobs: Option<usize>,
        /// Seed of every random draw (default: the scenario's `seed`, else 0).
        #[arg(long)]
        seed: Option<u64>,
        /// text or json.
        #[arg(long, value_enum, default_value_t = CompareFormat::Text)]
        format: CompareFormat,
        /// Treat the pool's API warnings as errors.
        #[arg(long)]
        strict: bool,
        /// Write the report to this file (whole or not at all) instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        check: CheckArgs,
    },
    /// Run one scenario: health checks, failover and failback in simulated time.
    Run {
        #[command(flatten)]
        common: ScenarioArgs,
        /// List every probe verdict, status change and route change in time order.
        #[arg(long)]
        timeline: bool,
        #[command(flatten)]
        check: CheckArgs,
        #[command(flatten)]
        profile: ProfileArgs,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Run a scenario many times with independent random draws and summarize failover timing.
    ///
    /// Trial i uses random streams derived from (seed, i): the output is identical for any --jobs.
    /// Ctrl-C prints the trials finished so far, marked as partial.
    Trials {
        #[command(flatten)]
        common: ScenarioArgs,
        /// Number of trials [default: 1000]. Without -n, a noise-free scenario is computed
        /// exactly over every probe phase instead (see --exact).
        #[arg(short = 'n', long, value_parser = clap::value_parser!(u64).range(1..))]
        n: Option<u64>,
        /// Compute the latency distributions exactly over every first-probe phase instead of
        /// sampling (noise-free scenarios only: fixed rtt, no loss, no [traffic], faults on the
        /// master; exit 2 naming what is random otherwise). The default without -n.
        #[arg(long, conflicts_with = "sample")]
        exact: bool,
        /// Sample trials even where exact mode applies.
        #[arg(long)]
        sample: bool,
        /// Worker threads (default: all cores).
        #[arg(short, long, value_parser = jobs)]
        jobs: Option<usize>,
        #[command(flatten)]
        check: CheckArgs,
        #[command(flatten)]
        profile: ProfileArgs,
        #[command(flatten)]
        engine: EngineArgs,
        /// Run shard K of N (0-based) and write a shard file for `elbsim merge`: `K/N`, or `N`
        /// with K from $JOB_COMPLETION_INDEX (Kubernetes Indexed Job), else
        /// $SLURM_ARRAY_TASK_ID (Slurm array); an explicit K wins.
        #[arg(long, value_name = "K/N")]
        shard: Option<String>,
        /// Simulate only a window around the faults (noisy probe paths): a warm-up that makes
        /// the checks' state at the first fault stationary, the faults, and the failback. The
        /// latencies agree with full runs within sampling error; false failovers are counted
        /// over the windows' fault-free time only. Where it does not apply (no noise, client
        /// traffic, no fault, ...) the trials run in full and standard error says why.
        #[arg(long, conflicts_with = "csv")]
        windowed: bool,
        /// Also write one CSV row per trial and (fault, LB node) pair to this file (at most
        /// 1000000 trials: the rows are held in memory).
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Also write a latency distribution (--histogram-of) to this file in HdrHistogram's
        /// percentile text format (milliseconds), as its plotter reads it.
        #[arg(long)]
        histogram: Option<PathBuf>,
        /// Which latency --histogram exports.
        #[arg(long, value_enum, default_value_t = HistogramKind::Failover, requires = "histogram")]
        histogram_of: HistogramKind,
        /// A threshold to check, e.g. "failover.p99 <= 5s", "false_failovers_per_day <= 1",
        /// "client.failed <= 100", "missed_rate < 1%": KEY OP VALUE, KEY a dotted path into the
        /// JSON report or an alias (detection.*, failover.*, failback.*, unavailability.*,
        /// missed_rate, false_failovers_per_day, client.failed, client.COUNTER), OP one of
        /// < <= > >= == !=, VALUE a number with an optional unit (ms, s, m; % for rates).
        /// Repeatable; exit 3 when any fails. Grammar: docs/metrics.md#assertions.
        #[arg(long = "assert", value_name = "ASSERTION", value_parser = assertion)]
        asserts: Vec<elbsim::report::assert::Assertion>,
        /// Save the JSON report as a baseline: .elbsim/baselines/NAME.json, or NAME when it is a
        /// path (contains / or ends in .json).
        #[arg(long, value_name = "NAME", value_parser = baseline_name)]
        save_baseline: Option<String>,
        /// Compare each percentile with a saved baseline and say whether it changed
        /// significantly (95% confidence intervals apart).
        #[arg(long, value_name = "NAME", value_parser = baseline_name)]
        baseline: Option<String>,
    },
    /// Sweep health-check parameters, run trials at each point, rank them by an objective under
    /// constraints, and print the best `healthmonitor` ready to paste into the API body.
    ///
    /// Without any range, tunes --delay 1..10 --timeout 1..5 --max-retries-down 1..5
    /// --max-retries 1..3. A scenario with no fault on the master gets one (--probe-fault) to
    /// measure latency. False failovers use the closed form for independent probe failures,
    /// cross-checked by the simulated count and its 95% interval; so do the failure-detector
    /// QoS constraints (--min-mistake-recurrence, --max-mistake-duration, --min-pa). A sweep has
    /// at most 10000 points (250000 with --exact); points whose health check draws an API
    /// warning are shown but not ranked.
    /// Ctrl-C prints the points finished, marked as partial.
    Tune {
        #[command(flatten)]
        common: ScenarioArgs,
        #[command(flatten)]
        profile: ProfileArgs,
        #[command(flatten)]
        engine: EngineArgs,
        /// delay values (s): 1..10, 1,2,5 or 3; the API accepts 1..50.
        #[arg(long, value_parser = |s: &str| range(s, 1, 50))]
        delay: Option<ValueList>,
        /// timeout values (s); the API accepts 1..50.
        #[arg(long, value_parser = |s: &str| range(s, 1, 50))]
        timeout: Option<ValueList>,
        /// max_retries_down values; the API accepts 1..10.
        #[arg(long, value_parser = |s: &str| range(s, 1, 10))]
        max_retries_down: Option<ValueList>,
        /// max_retries values; the API accepts 1..10.
        #[arg(long, value_parser = |s: &str| range(s, 1, 10))]
        max_retries: Option<ValueList>,
        /// QUIC pools: quic_cid_hash_strategy.offset values (0..19).
        #[arg(long, value_parser = |s: &str| range(s, 0, 19))]
        offset: Option<ValueList>,
        /// QUIC pools: quic_cid_hash_strategy.len values (1..20).
        #[arg(long, value_parser = |s: &str| range(s, 1, 20))]
        len: Option<ValueList>,
        /// Trials per point [default: 200]. Without -n, a noise-free scenario is computed
        /// exactly at every point (see --exact).
        #[arg(short = 'n', long, value_parser = clap::value_parser!(u64).range(1..))]
        n: Option<u64>,
        /// Compute every point exactly over every first-probe phase instead of running trials
        /// (noise-free scenarios only; exit 2 naming what is random otherwise); allows sweeps
        /// of up to 250000 points. The default without -n.
        #[arg(long, conflicts_with = "sample")]
        exact: bool,
        /// Run trials at every point even where exact mode applies.
        #[arg(long)]
        sample: bool,
        /// Worker threads (default: all cores).
        #[arg(short, long, value_parser = jobs)]
        jobs: Option<usize>,
        /// What to minimise.
        #[arg(long, value_enum, default_value_t = Objective::P99Failover)]
        objective: Objective,
        /// Constraint: false failovers per day (all LB nodes) at most this (a number >= 0).
        #[arg(long, default_value_t = 1.0, value_parser = non_negative)]
        max_false_per_day: f64,
        /// Constraint: timeout below delay, as the API advises.
        #[arg(long)]
        timeout_below_delay: bool,
        /// Constraint: missed-fault rate at most this (0 to 1).
        #[arg(long, value_parser = rate)]
        max_missed_rate: Option<f64>,
        #[command(flatten)]
        qos: QosConstraintArgs,
        /// Rank points whose health check draws an API warning (e.g. timeout >= delay); by
        /// default they are shown but never recommended.
        #[arg(long)]
        allow_warnings: bool,
        /// The fault added to measure latency when the scenario has none on the master.
        #[arg(long, value_enum, default_value_t = ProbeFault::HostDown)]
        probe_fault: ProbeFault,
        /// Simulate every trial whole. By default, on a noisy probe path, tune simulates a
        /// window around the fault (with a warm-up that makes the checks' state at the fault
        /// stationary), shares one probe stream per (delay, timeout) among the (fall, rise)
        /// pairs, and checks the false-failover closed form on a noise-only stream of the run's
        /// fault-free time: the same figures within sampling error, many times faster.
        #[arg(long)]
        full: bool,
        /// Rows of the ranked table to print.
        #[arg(long, default_value_t = 15)]
        top: usize,
        /// Also write every point as CSV to this file.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Run shard K of N (0-based) and write a shard file for `elbsim merge`: `K/N`, or `N`
        /// with K from $JOB_COMPLETION_INDEX (Kubernetes Indexed Job), else
        /// $SLURM_ARRAY_TASK_ID (Slurm array); an explicit K wins.
        #[arg(long, value_name = "K/N")]
        shard: Option<String>,
    },
    /// Combine the shard files of one `trials` or `tune` run (`--shard K/N`) into the report the
    /// unsharded run prints, byte for byte. The scenario must be at the path the shards used.
    Merge {
        /// The shard files, every one of the run's N, in any order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Write the report to this file (whole or not at all) instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Run a scenario in real time on 127.0.0.1: real backends, real health checks, the
    /// faults made real, one LB-node state machine per node; the same report as `run`, times in
    /// scenario seconds.
    ///
    /// Client traffic runs through a front proxy per LB node for TCP pools (arrivals thinned
    /// to 100 per wall-clock second; counts in the `live traffic` lines); UDP/QUIC flows, TLS
    /// clients and [network] noise are not driven live (the report says so).
    /// Ctrl-C stops early with a partial report (exit 130).
    Live {
        #[command(flatten)]
        common: ScenarioArgs,
        /// Wall-clock seconds per scenario second (default: the run in about 10 s, with delay
        /// and timeout at least 20 ms of wall clock; 1 = real time).
        #[arg(long)]
        time_scale: Option<f64>,
        /// List every probe verdict, status change and route change in time order.
        #[arg(long, conflicts_with = "compare")]
        timeline: bool,
        /// Run N live trials (1..200, one after the other, each cut after the last fault's
        /// recovery) and the DES's trials of the same scenario, and print their detection,
        /// failover and failback latencies side by side, each difference as a fraction of the
        /// closed-form detection window.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=200))]
        compare: Option<u64>,
        #[command(flatten)]
        check: CheckArgs,
        #[command(flatten)]
        profile: ProfileArgs,
    },
    /// Run the body's health check, as configured, against real servers now.
    ///
    /// Probes each --target (ADDR:PORT; the body's monitor_port replaces the port) --count times,
    /// the first at once and each later one `delay` after the previous verdict, and prints each
    /// verdict (time, result, reason code, HTTP status, round trip) with the member status that
    /// max_retries / max_retries_down give, starting ONLINE. UDP_CONNECT sends a real ICMP echo
    /// first (needs root or net.ipv4.ping_group_range; otherwise that step is skipped and said).
    /// Ctrl-C stops early with what was measured (exit 130).
    Probe {
        /// The body: a JSON file holding {"pool": {...}} (a scenario file works too).
        body: PathBuf,
        /// A member to probe, as ADDR:PORT; repeat for several (at most 64).
        #[arg(long = "target", value_name = "ADDR:PORT", required = true)]
        targets: Vec<std::net::SocketAddr>,
        /// Probes per target.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        count: u32,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Treat the pool's API warnings as errors.
        #[arg(long)]
        strict: bool,
        #[command(flatten)]
        check: CheckArgs,
        /// Multiplies delay and timeout on the wall clock (for tests: 0.05 runs a 1 s body at
        /// 50 ms); printed times stay wall-clock.
        #[arg(long, default_value_t = 1.0, hide = true)]
        time_scale: f64,
        /// Write the report to this file (whole or not at all) instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

/// The values of a range argument (a newtype, so clap takes it as one value, not a list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueList(pub Vec<u32>);

impl ValueList {
    /// The values, none when the argument was not given.
    pub fn values(v: Option<ValueList>) -> Vec<u32> {
        v.map_or_else(Vec::new, |l| l.0)
    }
}

/// A range argument: `1..10`, `1,3,5` or `4`, within the API's bounds.
fn range(s: &str, lo: u32, hi: u32) -> Result<ValueList, String> {
    elbsim::commands::tune::parse_range(s, lo, hi).map(ValueList)
}

/// `--project-id`: the path parameter's own rule, 32 characters of [a-z0-9].
fn project_id(s: &str) -> Result<String, String> {
    if s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        Ok(s.to_string())
    } else {
        Err(format!(
            "a project id is 32 characters of lowercase letters and digits, got {s:?} ({} characters)",
            s.chars().count()
        ))
    }
}

/// A float constraint: a finite number >= 0 (NaN would silently disable the comparison).
fn non_negative(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(format!("{s:?} is not a finite number >= 0")),
    }
}

/// `tune`'s failure-detector QoS constraints (closed forms, per member and LB node).
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct QosConstraintArgs {
    /// Constraint: mistake recurrence time T_MR at least this (a duration: 30d, 12h), per
    /// member and LB node; off by default.
    #[arg(long, value_name = "DURATION", value_parser = positive_duration_s)]
    pub min_mistake_recurrence: Option<f64>,
    /// Constraint: mean mistake duration T_M at most this (a duration: 10s); off by default.
    #[arg(long, value_name = "DURATION", value_parser = positive_duration_s)]
    pub max_mistake_duration: Option<f64>,
    /// Constraint: query accuracy probability P_A at least this (0 to 1, e.g. 0.9999); off by
    /// default.
    #[arg(long, value_name = "P", value_parser = rate)]
    pub min_pa: Option<f64>,
}

impl QosConstraintArgs {
    pub fn constraints(self) -> elbsim::experiment::tune::QosConstraints {
        elbsim::experiment::tune::QosConstraints {
            min_mistake_recurrence_s: self.min_mistake_recurrence,
            max_mistake_duration_s: self.max_mistake_duration,
            min_pa: self.min_pa,
        }
    }
}

/// A duration above zero, in seconds.
fn positive_duration_s(s: &str) -> Result<f64, String> {
    match elbsim::time::parse_duration(s) {
        Ok(d) if d.0 > 0 => Ok(d.as_secs_f64()),
        Ok(_) => Err(format!("{s:?} must be above zero")),
        Err(e) => Err(e),
    }
}

/// A rate: a finite number from 0 to 1.
fn rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!("{s:?} is not a rate from 0 to 1")),
    }
}

/// `--assert`: the syntax here (exit 2 from clap); keys are checked against the report.
fn assertion(s: &str) -> Result<elbsim::report::assert::Assertion, String> {
    elbsim::report::assert::parse(s)
}

/// `--baseline`, `--save-baseline`: a usable name or path.
fn baseline_name(s: &str) -> Result<String, String> {
    elbsim::report::baseline::check_name(s).map(|_| s.to_string())
}

/// `--jobs`: at least one worker thread, at most 1024.
fn jobs(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=1024).contains(&n) => Ok(n),
        _ => Err(format!("{s:?} is not a number of worker threads (1..1024)")),
    }
}
