//! `padv`: progress-advantage scoring of LLM agent trajectories.
//!
//! A thin shell over `padv-core` (formats, scoring, evaluations) and `padv-engine` (the local
//! log-prob engine). Each subcommand lives in its own file under `cli/`.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PADV_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("padv: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
