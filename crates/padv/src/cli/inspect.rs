//! `padv inspect FILE...`: what a newcomer runs first.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use padv_core::formats::read_inputs;
use padv_core::inspect::{summarize, Summary};
use serde::Serialize;

use super::TrajectoryInput;

/// Arguments of `padv inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Trajectory files or folders (also accepted as positional arguments).
    #[arg(num_args = 0..)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    input: OptionalInput,
    /// Also write the JSON report to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct OptionalInput {
    /// Trajectory files or folders.
    #[arg(long = "input", short = 'i', num_args = 1..)]
    input: Vec<PathBuf>,
    /// Input format; detected from the content when omitted.
    #[arg(long, value_enum)]
    format: Option<padv_core::formats::Format>,
    /// Make a malformed record fatal instead of skipping and counting it.
    #[arg(long)]
    strict: bool,
}

#[derive(Serialize)]
struct FileReport {
    path: String,
    format: String,
    skipped_records: usize,
    errors: Vec<String>,
    #[serde(flatten)]
    summary: Summary,
}

#[derive(Serialize)]
struct Report {
    files: Vec<FileReport>,
    total: Summary,
    skipped_records: usize,
}

/// Run `padv inspect`.
pub fn run(args: InspectArgs) -> anyhow::Result<()> {
    let mut paths = args.files.clone();
    paths.extend(args.input.input.iter().cloned());
    if paths.is_empty() {
        anyhow::bail!("no input: give trajectory files or folders (e.g. padv inspect ../shared/data/who_and_when)");
    }
    let input = TrajectoryInput {
        input: paths,
        format: args.input.format,
        strict: args.input.strict,
    };
    let reports = read_inputs(&input.input, &input.options()).context("reading trajectories")?;
    let mut all = Vec::new();
    let mut files = Vec::new();
    let mut skipped = 0;
    for r in reports {
        skipped += r.skipped.len();
        files.push(FileReport {
            path: r.path.display().to_string(),
            format: r.format.to_string(),
            skipped_records: r.skipped.len(),
            errors: r.skipped.iter().take(20).map(|e| e.to_string()).collect(),
            summary: summarize(&r.trajectories),
        });
        all.extend(r.trajectories);
    }
    let report = Report {
        total: summarize(&all),
        files,
        skipped_records: skipped,
    };
    super::output::emit(&report, args.out.as_deref())
}
