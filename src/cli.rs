//! Command-line definitions (clap) only: the commands turn these into typed options and call
//! the library (`elbsim::commands`).

use clap::{Parser, Subcommand, ValueEnum};
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidateFormat {
    /// One line per problem, for people.
    Text,
    /// `{valid, errors, warnings}`, each problem `{path, rule, message}`.
    Json,
    /// What the API would answer: its error body for the first error (HTTP 400), or the 201
    /// response body when the request is valid.
    Api,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
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
        /// Creation time: Unix seconds or yyyy-MM-ddTHH:mm:ssZ (default: now).
        #[arg(long)]
        now: Option<String>,
        /// Treat warnings as errors.
        #[arg(long)]
        strict: bool,
        /// Write the response to this file (whole or not at all) instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Run one scenario: health checks, failover and failback in simulated time.
    Run {
        /// A scenario (TOML), a bare API body (JSON), or - for standard input. Without it, the
        /// bundled example: the seed page's own pool, master crash at 60s, back at 180s.
        scenario: Option<PathBuf>,
        /// Seed of every random draw (default: the scenario's `seed`, else 0).
        #[arg(long)]
        seed: Option<u64>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// List every probe verdict, status change and route change in time order.
        #[arg(long)]
        timeline: bool,
        /// Treat the pool's API warnings as errors.
        #[arg(long)]
        strict: bool,
        /// Write the report to this file (whole or not at all) instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Run a scenario many times with independent random draws and summarize failover timing.
    ///
    /// Trial i uses random streams derived from (seed, i): the output is identical for any --jobs.
    /// Ctrl-C prints the trials finished so far, marked as partial.
    Trials {
        /// A scenario (TOML), a bare API body (JSON), or - for standard input; the bundled
        /// example without it.
        scenario: Option<PathBuf>,
        /// Number of trials.
        #[arg(short = 'n', long, default_value_t = 1000)]
        n: u64,
        /// Base seed (default: the scenario's `seed`, else 0).
        #[arg(long)]
        seed: Option<u64>,
        /// Worker threads (default: all cores).
        #[arg(short, long)]
        jobs: Option<usize>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Treat the pool's API warnings as errors.
        #[arg(long)]
        strict: bool,
        /// Write the report to this file (whole or not at all) instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
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
