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
}

/// Arguments of `padv bench eval`.
#[derive(Debug, Args)]
pub struct BenchEvalArgs {
    /// Synthetic trajectories.
    #[arg(long, default_value_t = 100_000)]
    trajectories: usize,
    /// Action steps per trajectory.
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Tokens per step.
    #[arg(long, default_value_t = 50)]
    tokens: usize,
    /// Bootstrap resamples per grid cell.
    #[arg(long, default_value_t = 1000)]
    bootstrap: usize,
    /// Compute the bootstrap CI for every grid cell (otherwise only for each method's best cell).
    #[arg(long)]
    bootstrap_all_cells: bool,
    /// Folder to also write the JSON report into, as bench-eval.json (created if missing).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// Run `padv bench …`.
pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Eval(a) => {
            let mut opts = BenchOptions {
                n_traj: a.trajectories,
                n_steps: a.steps,
                n_tokens: a.tokens,
                bootstrap_all_cells: a.bootstrap_all_cells,
                ..BenchOptions::default()
            };
            opts.uq.n_boot = a.bootstrap;
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
    }
}
