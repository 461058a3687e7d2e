//! `padv`: progress-advantage scoring of LLM agent trajectories.
//!
//! A thin shell over `padv-core` (formats, scoring, evaluations) and `padv-engine` (the local
//! log-prob engine and the scoring pipeline). Each subcommand lives in its own file under
//! `cli/`.

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    // Colour codes only for a person at a terminal: in a log file they are noise.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PADV_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of stdout went away (`padv inspect … | head`): it has what it wanted.
        Err(e) if cli::output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // The one place an error is printed; code below returns errors, never logs them too.
            eprintln!("padv: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
