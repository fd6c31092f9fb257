//! The `elbsim` binary: parse the command line, call the library, print, map to exit codes
//! (0 success, 1 invalid input or a run that could not complete, 2 usage, from clap).

mod cli;

use clap::Parser;
use cli::{Cli, Command};
use elbsim::commands::{self, body, Outcome};
use elbsim::output;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let (outcome, out_path) = match cli.command {
        Command::Validate {
            file,
            format,
            strict,
            seed,
        } => {
            let format = match format {
                cli::ValidateFormat::Text => body::ValidateFormat::Text,
                cli::ValidateFormat::Json => body::ValidateFormat::Json,
                cli::ValidateFormat::Api => body::ValidateFormat::Api,
            };
            (body::validate(&file, format, strict, seed), None)
        }
        Command::Create {
            file,
            seed,
            project_id,
            now,
            strict,
            output,
        } => {
            let now_unix_s = match now.as_deref().map(body::parse_now).transpose() {
                Ok(Some(t)) => t,
                Ok(None) => std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let opts = elbsim::api::CreateOptions {
                seed,
                project_id,
                now_unix_s,
            };
            (body::create(&file, strict, &opts), output)
        }
        Command::Run {
            scenario,
            seed,
            format,
            timeline,
            check,
            strict,
            output,
        } => {
            let args = commands::run::RunArgs {
                seed,
                json: format == cli::Format::Json,
                timeline,
                strict,
                check: overrides(check),
            };
            (commands::run::run(scenario.as_deref(), args), output)
        }
        Command::Trials {
            scenario,
            n,
            seed,
            jobs,
            format,
            check,
            strict,
            output,
        } => {
            let jobs = jobs
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
                .max(1);
            let args = commands::trials::TrialsArgs {
                n,
                seed,
                jobs,
                json: format == cli::Format::Json,
                strict,
                check: overrides(check),
            };
            let outcome = with_progress(n, |stop, progress| {
                commands::trials::trials(scenario.as_deref(), args, stop, progress)
            });
            (outcome, output)
        }
        Command::Tune {
            scenario,
            delay,
            timeout,
            max_retries_down,
            max_retries,
            offset,
            len,
            n,
            seed,
            jobs,
            objective,
            max_false_per_day,
            timeout_below_delay,
            max_missed_rate,
            probe_fault,
            top,
            csv,
            format,
            strict,
            output,
        } => {
            use elbsim::experiment::tune::{Constraints, Objective, Ranges};
            // No range at all: the default health-check sweep. Any range given (the CID slice's
            // included): only what was given varies.
            let none_given = [
                &delay,
                &timeout,
                &max_retries_down,
                &max_retries,
                &offset,
                &len,
            ]
            .iter()
            .all(|r| r.is_none());
            let or_default = |v: Option<cli::ValueList>, lo: u32, hi: u32| match v {
                Some(l) => l.0,
                None if none_given => (lo..=hi).collect(),
                None => Vec::new(),
            };
            // Offsets and lengths were checked against 0..19 and 1..20: they fit in a byte.
            let to_u8 = |v: Option<cli::ValueList>| {
                v.map_or_else(Vec::new, |l| l.0.into_iter().map(|x| x as u8).collect())
            };
            let args = commands::tune::TuneArgs {
                ranges: Ranges {
                    delay: or_default(delay, 1, 10),
                    timeout: or_default(timeout, 1, 5),
                    max_retries_down: or_default(max_retries_down, 1, 5),
                    max_retries: or_default(max_retries, 1, 3),
                    offset: to_u8(offset),
                    len: to_u8(len),
                },
                trials: n,
                seed,
                jobs: jobs
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
                    .max(1),
                objective: match objective {
                    cli::ObjectiveArg::P99Failover => Objective::P99Failover,
                    cli::ObjectiveArg::P50Failover => Objective::P50Failover,
                    cli::ObjectiveArg::MeanFailover => Objective::MeanFailover,
                    cli::ObjectiveArg::P99Detection => Objective::P99Detection,
                    cli::ObjectiveArg::P99Failback => Objective::P99Failback,
                    cli::ObjectiveArg::ClientFailures => Objective::ClientFailures,
                },
                constraints: Constraints {
                    max_false_per_day,
                    timeout_below_delay,
                    max_missed_rate,
                },
                probe_fault: match probe_fault {
                    cli::ProbeFaultArg::Crash => elbsim::sim::config::FaultKind::Crash,
                    cli::ProbeFaultArg::HostDown => elbsim::sim::config::FaultKind::HostDown,
                },
                json: format == cli::Format::Json,
                csv,
                top,
                strict,
            };
            let points = [
                &args.ranges.delay,
                &args.ranges.timeout,
                &args.ranges.max_retries_down,
                &args.ranges.max_retries,
            ]
            .iter()
            .map(|v| v.len().max(1) as u64)
            .product::<u64>()
                * (args.ranges.offset.len().max(1) * args.ranges.len.len().max(1)) as u64;
            let outcome = with_progress(points, |stop, progress| {
                commands::tune::run(scenario.as_deref(), &args, stop, progress)
            });
            (outcome, output)
        }
    };
    finish(outcome, out_path.as_deref())
}

fn overrides(c: cli::CheckArgs) -> elbsim::scenario::CheckOverrides {
    elbsim::scenario::CheckOverrides {
        delay: c.delay,
        timeout: c.timeout,
        max_retries: c.max_retries,
        max_retries_down: c.max_retries_down,
    }
}

fn finish(o: Outcome, out_path: Option<&std::path::Path>) -> ExitCode {
    eprint!("{}", o.stderr);
    if o.exit == 0 || !o.stdout.is_empty() {
        if let Err(e) = output::emit(out_path, &o.stdout) {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    }
    ExitCode::from(o.exit)
}

/// Runs a batch with a progress bar on a terminal (none when standard error is piped) and a
/// Ctrl-C handler that asks the batch to stop and report what finished.
fn with_progress(n: u64, f: impl FnOnce(&AtomicBool, &(dyn Fn(u64) + Sync)) -> Outcome) -> Outcome {
    static STOP: AtomicBool = AtomicBool::new(false);
    // If a handler cannot be installed (one already is), Ctrl-C simply ends the process.
    let _ = ctrlc::set_handler(|| STOP.store(true, Ordering::Relaxed));
    let bar = if std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(n);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len}  {per_sec}  eta {eta}")
        {
            b.set_style(style);
        }
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let outcome = f(&STOP, &|done| bar.set_position(done));
    bar.finish_and_clear();
    outcome
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => return,
        1 => "elbsim=debug",
        _ => "elbsim=trace",
    };
    // Simulated time is in each line's `at`; the wall clock would only make logs differ.
    tracing_subscriber::fmt()
        .without_time()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(level))
        .with_target(false)
        .init();
}
