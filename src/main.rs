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
        } => (body::validate(&file, format, strict, seed), None),
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
            common,
            timeline,
            check,
        } => {
            let args = commands::run::RunArgs {
                seed: common.seed,
                json: common.json(),
                timeline,
                strict: common.strict,
                check: overrides(check),
            };
            (
                commands::run::run(common.scenario.as_deref(), args),
                common.output,
            )
        }
        Command::Trials {
            common,
            n,
            jobs,
            check,
        } => {
            let args = commands::trials::TrialsArgs {
                n,
                seed: common.seed,
                jobs: jobs_or_all_cores(jobs),
                json: common.json(),
                strict: common.strict,
                check: overrides(check),
            };
            let outcome = with_progress(n, |stop, progress| {
                commands::trials::trials(common.scenario.as_deref(), args, stop, progress)
            });
            (outcome, common.output)
        }
        Command::Tune {
            common,
            delay,
            timeout,
            max_retries_down,
            max_retries,
            offset,
            len,
            n,
            jobs,
            objective,
            max_false_per_day,
            timeout_below_delay,
            max_missed_rate,
            probe_fault,
            top,
            csv,
        } => {
            use cli::ValueList;
            // Offsets and lengths were checked against 0..19 and 1..20: they fit in a byte.
            let bytes = |v| ValueList::values(v).into_iter().map(|x| x as u8).collect();
            let ranges = elbsim::experiment::tune::Ranges {
                delay: ValueList::values(delay),
                timeout: ValueList::values(timeout),
                max_retries_down: ValueList::values(max_retries_down),
                max_retries: ValueList::values(max_retries),
                offset: bytes(offset),
                len: bytes(len),
            }
            .or_default_sweep();
            let points = ranges.point_count();
            let args = commands::tune::TuneArgs {
                ranges,
                trials: n,
                seed: common.seed,
                jobs: jobs_or_all_cores(jobs),
                objective,
                constraints: elbsim::experiment::tune::Constraints {
                    max_false_per_day,
                    timeout_below_delay,
                    max_missed_rate,
                },
                probe_fault: probe_fault.kind(),
                json: common.json(),
                csv,
                top,
                strict: common.strict,
            };
            let outcome = with_progress(points, |stop, progress| {
                commands::tune::run(common.scenario.as_deref(), &args, stop, progress)
            });
            (outcome, common.output)
        }
        Command::Live {
            common,
            time_scale,
            timeline,
            check,
        } => {
            let args = commands::live::LiveArgs {
                seed: common.seed,
                time_scale,
                json: common.json(),
                timeline,
                strict: common.strict,
                check: overrides(check),
            };
            (
                commands::live::live(common.scenario.as_deref(), args),
                common.output,
            )
        }
        Command::Probe {
            body,
            targets,
            count,
            format,
            strict,
            check,
            time_scale,
            output,
        } => {
            let args = commands::probe::ProbeArgs {
                targets,
                count,
                json: format == cli::Format::Json,
                strict,
                time_scale,
                check: overrides(check),
            };
            (commands::probe::probe(&body, &args), output)
        }
    };
    finish(outcome, out_path.as_deref())
}

/// `--jobs`, or every core the machine offers.
fn jobs_or_all_cores(jobs: Option<usize>) -> usize {
    jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
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
