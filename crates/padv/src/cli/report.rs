//! `padv report`: one self-contained HTML page of the evaluations of log-prob records
//! (`padv_report::write_report`, the call `padv score --report` and the demo make too).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use padv_core::eval::EvalReport;
use padv_core::formats::{expand_inputs, read_inputs, ReadOptions};
use padv_core::record::read_records;
use padv_core::{LogprobRecord, Trajectory};
use padv_report::{evaluate_all, write_report, ReportInput, ReportOptions, RunInfo, SourceFile};

use super::eval::{record_files, EvalOptions};

/// Arguments of `padv report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Log-prob record files (JSONL or Parquet), or `padv score --out` folders (their *.jsonl
    /// and *.parquet files).
    #[arg(long = "input", short = 'i', required = true, num_args = 1..)]
    input: Vec<PathBuf>,
    /// The trajectory files the records were scored from (files or folders): each step's
    /// text is shown under its trace.
    #[arg(long, num_args = 1..)]
    trajectories: Vec<PathBuf>,
    /// Folder to write report.html into (created if missing).
    #[arg(long, value_name = "DIR", default_value = "padv-report")]
    out: PathBuf,
    /// Most trajectories with a step trace; beyond it a seeded random sample (said so on the page).
    #[arg(long, default_value_t = ReportOptions::default().max_traces)]
    max_traces: usize,
    /// The evaluation settings (the grid is always evaluated: the page maps it).
    #[command(flatten)]
    opts: EvalOptions,
}

/// Run `padv report`.
pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let cfg = args.opts.config_with(true)?;
    let files = record_files(&args.input)?;
    let mut records = Vec::new();
    let mut sources = Vec::new();
    for path in &files {
        records.extend(read_records(path)?);
        sources.push(SourceFile::read(path, "records")?);
    }
    let (trajectories, trajectory_sources) = read_trajectories(&args.trajectories)?;
    sources.extend(trajectory_sources);
    let reports = evaluate_all(&records, &cfg).context("evaluating the records")?;
    let run = files.first().and_then(|f| run_info(f));
    let title = args
        .input
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let path = write_page(
        &args.out,
        ReportInput {
            trajectories: &trajectories,
            sources,
            run,
            ..ReportInput::new(&title, &records, reports.iter().collect())
        },
        args.max_traces,
    )?;
    super::output::print_text(&path.display().to_string())
}

/// Writes the page into `dir` and says where and how large on stderr.
pub fn write_page(
    dir: &Path,
    input: ReportInput<'_>,
    max_traces: usize,
) -> anyhow::Result<PathBuf> {
    let opts = ReportOptions {
        max_traces,
        ..ReportOptions::default()
    };
    let path = write_report(dir, &input, &opts).context("writing the HTML report")?;
    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    eprintln!(
        "padv: wrote {} ({:.2} MB)",
        path.display(),
        bytes as f64 / 1e6
    );
    Ok(path)
}

/// The `run.json` beside the first record file, if any; an unreadable one is a warning,
/// not a failure (the page then says the models are unknown).
pub fn run_info(record_file: &Path) -> Option<RunInfo> {
    let dir = record_file.parent()?;
    match RunInfo::from_dir(dir) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("{e}; the report will not name the models");
            None
        }
    }
}

/// Every trajectory of `inputs` (files or folders; malformed records skipped with a
/// warning) and the files they came from.
fn read_trajectories(inputs: &[PathBuf]) -> anyhow::Result<(Vec<Trajectory>, Vec<SourceFile>)> {
    if inputs.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let mut sources = Vec::new();
    for path in expand_inputs(inputs).context("reading --trajectories")? {
        sources.push(SourceFile::read(&path, "trajectories")?);
    }
    let mut trajectories = Vec::new();
    for report in read_inputs(inputs, &ReadOptions::default()).context("reading --trajectories")? {
        if !report.skipped.is_empty() {
            tracing::warn!(
                "{}: {} malformed records skipped",
                report.path.display(),
                report.skipped.len()
            );
        }
        trajectories.extend(report.trajectories);
    }
    Ok((trajectories, sources))
}

/// The records scored by `padv score`, as a page in its `--out` folder.
pub fn score_report(
    out: &Path,
    records_path: &Path,
    records: &[LogprobRecord],
    reports: &[EvalReport],
    trajectories: &[Trajectory],
    trajectory_files: &[PathBuf],
) -> anyhow::Result<PathBuf> {
    let mut sources = Vec::new();
    for path in trajectory_files {
        sources.push(SourceFile::read(path, "trajectories")?);
    }
    sources.push(SourceFile::read(records_path, "records")?);
    let run = RunInfo::from_dir(out).ok().flatten();
    write_page(
        out,
        ReportInput {
            trajectories,
            sources,
            run,
            ..ReportInput::new(
                &out.display().to_string(),
                records,
                reports.iter().collect(),
            )
        },
        ReportOptions::default().max_traces,
    )
}
