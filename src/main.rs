//! The `elbsim` binary: parse the command line, call the library, print, map to exit codes
//! (0 success, 1 invalid input or a run that could not complete, 2 usage, 130 interrupted by
//! Ctrl-C after printing what finished).

mod cli;

use clap::Parser;
use cli::{Cli, Command};
use elbsim::commands::{self, body, Outcome};
use elbsim::output::{self, Outputs};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    if matches!(
        cli.command,
        Command::Run { .. }
            | Command::Trials { .. }
            | Command::Tune { .. }
            | Command::Compare { .. }
    ) {
        install_ctrl_c();
    }
    dispatch(cli.command, None)
}

/// Runs `command`; `merged` carries the figures of merged shards (`elbsim merge`) for the
/// `trials` or `tune` command they recorded.
fn dispatch(command: Command, merged: Option<&commands::merge::MergeInput>) -> ExitCode {
    match command {
        Command::Merge {
            files,
            format,
            output,
        } => merge(&files, format, output),
        Command::Validate {
            file,
            format,
            strict,
            seed,
        } => finish(
            body::validate(&file, format, strict, seed),
            &Outputs::default(),
        ),
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
            let outputs = match check_outputs(&[("-o", output.as_deref())]) {
                Ok(o) => o,
                Err(code) => return code,
            };
            let opts = elbsim::api::CreateOptions {
                seed,
                project_id,
                now_unix_s,
            };
            finish(body::create(&file, strict, &opts), &outputs)
        }
        Command::Check { scenario, strict } => finish(
            commands::check::check(Some(&scenario), strict),
            &Outputs::default(),
        ),
        Command::Compare {
            scenario,
            profiles,
            n,
            jobs,
            seed,
            format,
            strict,
            output,
            check,
        } => {
            let outputs = match check_outputs(&[("-o", output.as_deref())]) {
                Ok(o) => o,
                Err(code) => return code,
            };
            let args = commands::compare::CompareArgs {
                n,
                seed,
                jobs: jobs_or_all_cores(jobs),
                json: format == cli::CompareFormat::Json,
                strict,
                check: overrides(check, cli::ProfileArgs::default()),
                profiles,
            };
            let count = args.profiles.len().max(3) as u64 * n;
            let outcome = with_progress(count, "trials", |progress, _| {
                commands::compare::compare(scenario.as_deref(), &args, progress)
            });
            finish(outcome, &outputs)
        }
        Command::Run {
            common,
            timeline,
            check,
            profile,
            engine,
        } => {
            if common.format == cli::Format::Shard {
                eprintln!("error: run: --format shard is for trials and tune");
                return ExitCode::from(2);
            }
            let outputs = match check_outputs(&[
                ("--plot", common.plot.as_deref()),
                ("--html", common.html.as_deref()),
                ("-o", common.output.as_deref()),
            ]) {
                Ok(o) => o,
                Err(code) => return code,
            };
            let args = commands::run::RunArgs {
                plot: common.plot.is_some(),
                html: common.html.is_some(),
                seed: common.seed,
                json: common.json(),
                markdown: common.markdown(),
                timeline,
                strict: common.strict,
                check: elbsim::scenario::CheckOverrides {
                    step_every_probe: engine.step_every_probe,
                    ..overrides(check, profile)
                },
            };
            let result = commands::run::run(common.scenario.as_deref(), args);
            finish_files(result.outcome, &outputs, &result.files)
        }
        Command::Trials {
            common,
            n,
            exact,
            sample,
            jobs,
            check,
            profile,
            engine,
            shard,
            windowed,
            csv,
            histogram,
            histogram_of,
            asserts,
            save_baseline,
            baseline,
        } => {
            let shard = match shard_of(shard.as_deref(), &common, "trials") {
                Ok(s) => s,
                Err(code) => return code,
            };
            let mode = match exact_mode("trials", exact, sample, n.is_some(), shard.is_some()) {
                Ok(m) => m,
                Err(code) => return code,
            };
            let n = n.unwrap_or(1000);
            if shard.is_some() {
                if let Err(code) = refuse_with_shard(
                    "trials",
                    &[
                        ("--csv", csv.is_some()),
                        ("--histogram", histogram.is_some()),
                        ("--plot", common.plot.is_some()),
                        ("--html", common.html.is_some()),
                        ("--assert", !asserts.is_empty()),
                        ("--save-baseline", save_baseline.is_some()),
                        ("--baseline", baseline.is_some()),
                    ],
                ) {
                    return code;
                }
            }
            let save_path = save_baseline
                .as_deref()
                .map(elbsim::report::baseline::path_of);
            if let Some(dir) = save_path.as_deref().and_then(|p| p.parent()) {
                // The default place, .elbsim/baselines, is created on first use.
                if dir.ends_with(".elbsim/baselines") {
                    if let Err(e) = std::fs::create_dir_all(dir) {
                        eprintln!(
                            "error: --save-baseline: cannot create {}: {e}",
                            dir.display()
                        );
                        return ExitCode::from(1);
                    }
                }
            }
            let outputs = match check_outputs(&[
                ("--csv", csv.as_deref()),
                ("--histogram", histogram.as_deref()),
                ("--save-baseline", save_path.as_deref()),
                ("--plot", common.plot.as_deref()),
                ("--html", common.html.as_deref()),
                ("-o", common.output.as_deref()),
            ]) {
                Ok(o) => o,
                Err(code) => return code,
            };
            use elbsim::report::export::HistogramOf;
            let argv = shard_args("trials");
            let args = commands::trials::TrialsArgs {
                n,
                seed: common.seed,
                jobs: jobs_or_all_cores(jobs),
                json: common.json(),
                markdown: common.markdown(),
                strict: common.strict,
                check: elbsim::scenario::CheckOverrides {
                    step_every_probe: engine.step_every_probe,
                    ..overrides(check, profile)
                },
                csv: csv.is_some(),
                histogram: histogram.is_some().then_some(match histogram_of {
                    cli::HistogramKind::Detection => HistogramOf::Detection,
                    cli::HistogramKind::Failover => HistogramOf::Failover,
                    cli::HistogramKind::Failback => HistogramOf::Failback,
                }),
                asserts,
                baseline,
                save_baseline: save_path.is_some(),
                plot: common.plot.is_some(),
                html: common.html.is_some(),
                windowed,
                mode,
            };
            let source = match (merged, shard) {
                (
                    Some(commands::merge::MergeInput {
                        data: commands::merge::Merged::Trials(acc),
                        fingerprint,
                        ..
                    }),
                    _,
                ) => commands::trials::Source::Merged { acc, fingerprint },
                (Some(_), _) => return merge_mismatch(),
                (None, Some(shard)) => commands::trials::Source::Shard { shard, args: &argv },
                (None, None) => commands::trials::Source::Simulate,
            };
            let result = with_progress(n, "trials", |progress, _| {
                commands::trials::trials_from(common.scenario.as_deref(), &args, progress, source)
            });
            finish_files(result.outcome, &outputs, &result.files)
        }
        Command::Tune {
            common,
            profile,
            engine,
            delay,
            timeout,
            max_retries_down,
            max_retries,
            offset,
            len,
            n,
            exact,
            sample,
            jobs,
            objective,
            max_false_per_day,
            timeout_below_delay,
            max_missed_rate,
            qos,
            allow_warnings,
            probe_fault,
            full,
            top,
            csv,
            shard,
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
            // Exact points cost microseconds, sampled ones seconds: each mode has its cap.
            let cap = if exact {
                elbsim::experiment::tune::MAX_EXACT_POINTS
            } else {
                elbsim::experiment::tune::MAX_POINTS
            };
            if points > cap {
                eprintln!(
                    "error: the sweep has {points} points, more than the limit of {cap}{}; narrow \
                     --delay, --timeout, --max-retries-down, --max-retries, --offset or --len \
                     (the number of points is the product of their lengths)",
                    if exact || points > elbsim::experiment::tune::MAX_EXACT_POINTS {
                        String::new()
                    } else {
                        format!(
                            " (--exact allows {} on a noise-free scenario)",
                            elbsim::experiment::tune::MAX_EXACT_POINTS
                        )
                    }
                );
                return ExitCode::from(2);
            }
            let outputs = match check_outputs(&[
                ("--csv", csv.as_deref()),
                ("--plot", common.plot.as_deref()),
                ("--html", common.html.as_deref()),
                ("-o", common.output.as_deref()),
            ]) {
                Ok(o) => o,
                Err(code) => return code,
            };
            let shard = match shard_of(shard.as_deref(), &common, "tune") {
                Ok(s) => s,
                Err(code) => return code,
            };
            let mode = match exact_mode("tune", exact, sample, n.is_some(), shard.is_some()) {
                Ok(m) => m,
                Err(code) => return code,
            };
            let n = n.unwrap_or(200);
            if shard.is_some() {
                if let Err(code) = refuse_with_shard(
                    "tune",
                    &[
                        ("--plot", common.plot.is_some()),
                        ("--html", common.html.is_some()),
                    ],
                ) {
                    return code;
                }
            }
            let argv = shard_args("tune");
            let source = match (merged, shard) {
                (
                    Some(commands::merge::MergeInput {
                        data: commands::merge::Merged::Tune(points),
                        fingerprint,
                        ..
                    }),
                    _,
                ) => commands::tune::Source::Merged {
                    points,
                    fingerprint,
                },
                (Some(_), _) => return merge_mismatch(),
                (None, Some(shard)) => commands::tune::Source::Shard { shard, args: &argv },
                (None, None) => commands::tune::Source::Simulate,
            };
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
                    qos: qos.constraints(),
                },
                probe_fault,
                allow_warnings,
                full,
                json: common.json(),
                markdown: common.markdown(),
                csv: csv.is_some(),
                plot: common.plot.is_some(),
                html: common.html.is_some(),
                top,
                strict: common.strict,
                profile: profile.profile,
                step_every_probe: engine.step_every_probe,
                mode,
            };
            let result = with_progress(points, "points", |progress, note| {
                commands::tune::run_from(common.scenario.as_deref(), &args, progress, note, source)
            });
            let mut files = result.files;
            if let Some(c) = result.csv {
                files.push(("--csv", c));
            }
            finish_files(result.outcome, &outputs, &files)
        }
        Command::Live {
            common,
            time_scale,
            timeline,
            compare,
            check,
            profile,
        } => {
            if common.format == cli::Format::Shard {
                eprintln!("error: live: --format shard is for trials and tune");
                return ExitCode::from(2);
            }
            let outputs = match check_outputs(&[("-o", common.output.as_deref())]) {
                Ok(o) => o,
                Err(code) => return code,
            };
            let args = commands::live::LiveArgs {
                seed: common.seed,
                time_scale,
                json: common.json(),
                timeline,
                strict: common.strict,
                check: overrides(check, profile),
                compare,
            };
            finish(
                commands::live::live(common.scenario.as_deref(), args),
                &outputs,
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
            if format == cli::Format::Shard {
                eprintln!("error: probe: --format shard is for trials and tune");
                return ExitCode::from(2);
            }
            let outputs = match check_outputs(&[("-o", output.as_deref())]) {
                Ok(o) => o,
                Err(code) => return code,
            };
            let args = commands::probe::ProbeArgs {
                targets,
                count,
                json: format == cli::Format::Json,
                strict,
                time_scale,
                check: overrides(check, cli::ProfileArgs::default()),
            };
            finish(commands::probe::probe(&body, &args), &outputs)
        }
    }
}

/// `--shard` (or `--format shard`, or `-o *.shard.json`, which mean shard 0/1 without it), or
/// exit 2 with the reason.
fn shard_of(
    text: Option<&str>,
    common: &cli::ScenarioArgs,
    command: &str,
) -> Result<Option<elbsim::experiment::shard::Shard>, ExitCode> {
    let to_file = common
        .output
        .as_deref()
        .and_then(|p| p.to_str())
        .is_some_and(|p| p.ends_with(".shard.json"));
    let text = match text {
        Some(t) => t,
        None if common.format == cli::Format::Shard || to_file => "0/1",
        None => return Ok(None),
    };
    if common
        .scenario
        .as_deref()
        .is_some_and(|p| p.as_os_str() == "-")
    {
        eprintln!(
            "error: {command} --shard: the scenario must be a file (merge reads it again), not standard input"
        );
        return Err(ExitCode::from(2));
    }
    elbsim::experiment::shard::Shard::parse(text, &|v| std::env::var(v).ok())
        .map(Some)
        .map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(2)
        })
}

/// `--exact`, `--sample` or neither: exact when asked, sampled when asked or when `-n` (a trial
/// count) was given or the run is a shard, else exact where the scenario qualifies.
/// `--exact --shard` is a usage error: exact mode computes everything in one process.
fn exact_mode(
    command: &str,
    exact: bool,
    sample: bool,
    n_given: bool,
    sharded: bool,
) -> Result<elbsim::experiment::exact::Mode, ExitCode> {
    use elbsim::experiment::exact::Mode;
    if exact && sharded {
        eprintln!(
            "error: {command} --exact: exact mode needs no --shard (it computes the whole \
             distribution in one process, in seconds); drop --shard, or use --sample to shard trials"
        );
        return Err(ExitCode::from(2));
    }
    Ok(if exact {
        Mode::Exact
    } else if sample || n_given || sharded {
        Mode::Sample
    } else {
        Mode::Auto
    })
}

/// This process's arguments after the subcommand `command`, as a shard file records them.
fn shard_args(command: &str) -> Vec<String> {
    let all: Vec<String> = std::env::args().skip(1).collect();
    let rest = match all.iter().position(|a| a == command) {
        Some(i) => &all[i + 1..],
        None => &all[..],
    };
    elbsim::experiment::shard::canonical_args(rest)
}

/// Exit 2 when a flag that needs every trial's own figures (or the final report) is given with
/// `--shard`: a shard file carries merged histograms only. `flags` pairs each flag with whether
/// it was given.
fn refuse_with_shard(command: &str, flags: &[(&str, bool)]) -> Result<(), ExitCode> {
    let given: Vec<&str> = flags.iter().filter(|f| f.1).map(|f| f.0).collect();
    if given.is_empty() {
        return Ok(());
    }
    eprintln!(
        "error: {command} --shard: {} cannot be used with --shard (a shard file holds merged \
         histograms, not each trial nor the final report); run without --shard for {}",
        given.join(", "),
        if given.len() == 1 { "it" } else { "them" }
    );
    Err(ExitCode::from(2))
}

fn merge_mismatch() -> ExitCode {
    eprintln!("error: merge: the shards' data does not match the command they recorded");
    ExitCode::from(1)
}

/// `elbsim merge FILES...`: re-reads the command line the shards recorded and renders its
/// report from the merged figures, in `format`, to `output`.
fn merge(
    files: &[std::path::PathBuf],
    format: cli::Format,
    output: Option<std::path::PathBuf>,
) -> ExitCode {
    if format == cli::Format::Shard {
        eprintln!("error: merge: --format is text, json or markdown");
        return ExitCode::from(2);
    }
    let input = match commands::merge::read_shards(files) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let argv = std::iter::once("elbsim".to_string())
        .chain(std::iter::once(input.command.clone()))
        .chain(input.args.iter().cloned());
    let command = match Cli::try_parse_from(argv) {
        Ok(cli) => cli.command,
        Err(e) => {
            eprintln!("error: merge: the shards' command line does not parse: {e}");
            return ExitCode::from(1);
        }
    };
    let command = match command {
        Command::Trials {
            mut common,
            n,
            jobs,
            check,
            profile,
            histogram_of,
            windowed,
            ..
        } => {
            common.format = format;
            common.output = output;
            // Flags refused with --shard (see refuse_with_shard) never reach a shard file.
            common.plot = None;
            common.html = None;
            Command::Trials {
                common,
                n,
                // Shards sample; their merge renders the sampled figures.
                exact: false,
                sample: true,
                jobs,
                check,
                profile,
                engine: cli::EngineArgs::default(),
                shard: None,
                windowed,
                csv: None,
                histogram: None,
                histogram_of,
                asserts: Vec::new(),
                save_baseline: None,
                baseline: None,
            }
        }
        Command::Tune {
            mut common,
            profile,
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
            qos,
            allow_warnings,
            probe_fault,
            full,
            top,
            csv: _,
            shard: _,
            ..
        } => {
            common.format = format;
            common.output = output;
            common.plot = None;
            common.html = None;
            Command::Tune {
                common,
                profile,
                engine: cli::EngineArgs::default(),
                delay,
                timeout,
                max_retries_down,
                max_retries,
                offset,
                len,
                n,
                exact: false,
                sample: true,
                jobs,
                objective,
                max_false_per_day,
                timeout_below_delay,
                max_missed_rate,
                qos,
                allow_warnings,
                probe_fault,
                full,
                top,
                csv: None,
                shard: None,
            }
        }
        _ => {
            eprintln!("error: merge: shards come from `trials` or `tune` only");
            return ExitCode::from(1);
        }
    };
    dispatch(command, Some(&input))
}

/// Ctrl-C: the first asks the command to stop and print what finished (it then exits 130); a
/// second ends the process at once, for when the first cannot be acted on soon enough.
fn install_ctrl_c() {
    // If a handler cannot be installed, Ctrl-C simply ends the process, which is acceptable.
    let _ = ctrlc::set_handler(|| {
        if commands::INTERRUPTED.swap(true, Ordering::Relaxed) {
            std::process::exit(commands::EXIT_INTERRUPTED.into());
        }
    });
}

/// Checks the output paths given (flag, path) before any work; on failure prints why and gives
/// the exit code (2 when two flags name one file, else 1).
fn check_outputs(list: &[(&str, Option<&std::path::Path>)]) -> Result<Outputs, ExitCode> {
    let given: Vec<(&str, &std::path::Path)> = list
        .iter()
        .filter_map(|&(f, p)| p.map(|p| (f, p)))
        .collect();
    Outputs::check(&given).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(if e.usage { 2 } else { 1 })
    })
}

/// `--jobs`, or every core the machine offers.
fn jobs_or_all_cores(jobs: Option<usize>) -> usize {
    jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn overrides(c: cli::CheckArgs, p: cli::ProfileArgs) -> elbsim::scenario::CheckOverrides {
    elbsim::scenario::CheckOverrides {
        delay: c.delay,
        timeout: c.timeout,
        max_retries: c.max_retries,
        max_retries_down: c.max_retries_down,
        profile: p.profile,
        step_every_probe: false,
    }
}

/// Prints the notes, then writes the report (to `-o` or standard output).
/// A failed or interrupted command still writes what it produced.
fn finish(o: Outcome, outputs: &Outputs) -> ExitCode {
    finish_files(o, outputs, &[])
}

/// [`finish`] for commands with several output files: `files` holds `(flag, contents)` for
/// each extra output, written together with `-o` (all or none) in the order they were checked.
fn finish_files(o: Outcome, outputs: &Outputs, files: &[(&str, String)]) -> ExitCode {
    eprint!("{}", o.stderr);
    if o.exit != 0 && o.stdout.is_empty() {
        return ExitCode::from(o.exit);
    }
    let mut contents: Vec<&[u8]> = Vec::new();
    let mut to_file = false;
    for flag in outputs.flags() {
        if flag == "-o" {
            to_file = true;
            contents.push(o.stdout.as_bytes());
        } else if let Some((_, c)) = files.iter().find(|(f, _)| *f == flag) {
            contents.push(c.as_bytes());
        } else {
            // Every checked flag is one the command was asked to fill; a gap is a bug here.
            eprintln!("error: {flag}: nothing was produced for this output; please report this");
            return ExitCode::from(1);
        }
    }
    if let Err(e) = outputs.commit(&contents) {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    if !to_file {
        if let Err(e) = output::print_stdout(&o.stdout) {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    }
    ExitCode::from(o.exit)
}

/// Runs a batch with a progress bar on a terminal (none when standard error is piped); `note`
/// prints a line on standard error without breaking the bar.
fn with_progress<T>(
    n: u64,
    unit: &'static str,
    f: impl FnOnce(&(dyn Fn(u64) + Sync), &(dyn Fn(&str) + Sync)) -> T,
) -> T {
    let bar = if std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(n);
        // The rate with its unit ("12.3 trials/s"): indicatif's own {per_sec} has none.
        if let Ok(style) = indicatif::ProgressStyle::with_template(&format!(
            "{{bar:40}} {{pos}}/{{len}} {unit}  {{rate}}  eta {{eta}}"
        )) {
            b.set_style(style.with_key(
                "rate",
                move |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.1} {unit}/s", s.per_sec());
                },
            ));
        }
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let out = f(&|done| bar.set_position(done), &|line| {
        bar.suspend(|| eprintln!("{line}"))
    });
    bar.finish_and_clear();
    out
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => return,
        1 => "elbsim=debug",
        _ => "elbsim=trace",
    };
    // Simulated time is in each line's `at`; the wall clock would only make logs differ.
    // No level label: every line is asked for by -v, so DEBUG/TRACE on each would be noise.
    tracing_subscriber::fmt()
        .without_time()
        .with_level(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(level))
        .with_target(false)
        .init();
}
