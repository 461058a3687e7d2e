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
    /// Report every file on its own (default: one entry per folder and format).
    #[arg(long)]
    per_file: bool,
    /// Folder to also write the JSON report into, as inspect.json (created if missing).
    #[arg(long, value_name = "DIR")]
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
    files: usize,
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
    // Group reports by folder and format unless --per-file: a Who&When split is 126 files.
    let mut groups: Vec<(String, String, Vec<padv_core::formats::ReadReport>)> = Vec::new();
    for r in reports {
        let key = if args.per_file {
            r.path.display().to_string()
        } else {
            r.path
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        let format = r.format.map_or("unreadable", |f| f.name()).to_string();
        match groups
            .iter_mut()
            .find(|(k, f, _)| *k == key && *f == format)
        {
            Some((_, _, members)) => members.push(r),
            None => groups.push((key, format, vec![r])),
        }
    }
    let mut all = Vec::new();
    let mut files = Vec::new();
    let mut skipped = 0;
    for (key, format, members) in groups {
        let errors: Vec<String> = members
            .iter()
            .flat_map(|r| r.skipped.iter())
            .take(20)
            .map(|e| e.to_string())
            .collect();
        let n_skipped: usize = members.iter().map(|r| r.skipped.len()).sum();
        skipped += n_skipped;
        let n_files = members.len();
        let trajectories: Vec<_> = members.into_iter().flat_map(|r| r.trajectories).collect();
        files.push(FileReport {
            path: key,
            files: n_files,
            format,
            skipped_records: n_skipped,
            errors,
            summary: summarize(&trajectories),
        });
        all.extend(trajectories);
    }
    let report = Report {
        total: summarize(&all),
        files,
        skipped_records: skipped,
    };
    if let Some(dir) = &args.out {
        super::output::write_json(&super::output::out_file(dir, "inspect.json")?, &report)?;
    }
    super::output::print_text(&super::output::to_json(&report)?)
}
