//! `padv bench`: benchmarks, kept out of the tests (timings are never asserted).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use padv_core::eval::{run_full_grid_benchmark, BenchOptions};

/// `padv bench` subcommands.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Time the full evaluation grid (UQ with bootstrap and CV, best-of-N, FA) on synthetic records.
    Eval(BenchEvalArgs),
    /// Time the local engine scoring real tau2 trajectories at several sequence lengths.
    Engine(super::bench_engine::BenchEngineArgs),
    /// Time `padv report` (three grid evaluations + the HTML page) on synthetic records.
    Report(BenchReportArgs),
}

/// Arguments of `padv bench report`.
#[derive(Debug, Args)]
pub struct BenchReportArgs {
    /// Synthetic trajectories (8 rollouts per task; failures carry a mistake step).
    #[arg(long, default_value_t = 10_000)]
    trajectories: usize,
    #[command(flatten)]
    shape: SyntheticShape,
    /// Folder the page is written to (report.html).
    #[arg(long, value_name = "DIR", default_value = "bench-out/report")]
    out: PathBuf,
}

/// Arguments of `padv bench eval`.
#[derive(Debug, Args)]
pub struct BenchEvalArgs {
    /// Synthetic trajectories.
    #[arg(long, default_value_t = 100_000)]
    trajectories: usize,
    #[command(flatten)]
    shape: SyntheticShape,
    /// Compute the bootstrap CI for every grid cell (otherwise only for each method's best cell).
    #[arg(long)]
    bootstrap_all_cells: bool,
    /// Folder to also write the JSON report into, as bench-eval.json (created if missing).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// The synthetic records' shape and the bootstrap, shared by the evaluation benchmarks.
#[derive(Debug, Args)]
pub struct SyntheticShape {
    /// Action steps per trajectory.
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Tokens per step.
    #[arg(long, default_value_t = 50)]
    tokens: usize,
    /// Bootstrap resamples per grid cell.
    #[arg(long, default_value_t = 1000)]
    bootstrap: usize,
}

/// Run `padv bench …`.
pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Eval(a) => {
            let mut opts = BenchOptions {
                n_traj: a.trajectories,
                n_steps: a.shape.steps,
                n_tokens: a.shape.tokens,
                bootstrap_all_cells: a.bootstrap_all_cells,
                ..BenchOptions::default()
            };
            opts.uq.n_boot = a.shape.bootstrap;
            let report =
                run_full_grid_benchmark(&opts).context("running the evaluation benchmark")?;
            if let Some(dir) = &a.out {
                super::output::write_json(
                    &super::output::out_file(dir, "bench-eval.json")?,
                    &report,
                )?;
            }
            super::output::print_text(&super::output::to_json(&report)?)
        }
        BenchCommand::Engine(a) => super::bench_engine::run(a),
        BenchCommand::Report(a) => bench_report(&a),
    }
}

/// Times what `padv report` does after reading the records: the three grid evaluations,
/// then the page (charts, traces, HTML) and its atomic write. Prints JSON.
fn bench_report(a: &BenchReportArgs) -> anyhow::Result<()> {
    use std::time::Instant;
    let shape = &a.shape;
    let records = padv_core::score::synthetic_records(a.trajectories, shape.steps, shape.tokens, 1);
    let cfg = padv_core::eval::EvalConfig {
        grid: true,
        bootstrap: shape.bootstrap,
        ..padv_core::eval::EvalConfig::default()
    };
    let t0 = Instant::now();
    let reports = padv_report::evaluate_all(&records, &cfg).context("evaluating")?;
    let eval_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let input =
        padv_report::ReportInput::new("synthetic records", &records, reports.iter().collect());
    let path = padv_report::write_report(&a.out, &input, &padv_report::ReportOptions::default())
        .context("writing the report")?;
    let page_s = t1.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    let out = serde_json::json!({
        "benchmark": "report",
        "records": records.len(),
        "steps_per_record": shape.steps,
        "tokens_per_step": shape.tokens,
        "bootstrap": shape.bootstrap,
        "threads": rayon::current_num_threads(),
        "evaluate_seconds": eval_s,
        "page_seconds": page_s,
        "total_seconds": eval_s + page_s,
        "page_share_of_total": page_s / (eval_s + page_s),
        "report": path.display().to_string(),
        "bytes": bytes,
    });
    super::output::print_text(&super::output::to_json(&out)?)
}
