//! Command-line definitions. Flags are named the same in every subcommand: `--input`,
//! `--method`, `--token-agg`, `--step-agg`, `--pa-mode`, `--beta`, `--grid`, `--out`.

mod bench;
mod bench_engine;
mod demo;
mod engine_opts;
mod eval;
mod gym;
mod inspect;
mod output;
mod render;
mod score;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use padv_core::formats::{Format, ReadOptions};

/// padv: a step-level judge for LLM agents from the by-product of RL post-training.
///
/// Progress advantage scores each action token by β·(log π_θ − log π_ref), the optimal advantage
/// under KL-regularised RL. padv reads agent logs, computes per-token log-probs with a
/// policy/reference pair, and evaluates the scores for uncertainty quantification, best-of-N
/// selection and failure attribution against confidence baselines.
#[derive(Debug, Parser)]
#[command(name = "padv", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read trajectory files and report what is in them (format, counts, labels, problems) as JSON.
    Inspect(inspect::InspectArgs),
    /// Show the text spans a tokenizer will see, and which are action steps.
    Render(render::RenderArgs),
    /// Turn trajectories into log-prob records with a policy/reference pair of local checkpoints.
    Score(score::ScoreArgs),
    /// Evaluate log-prob records: uncertainty quantification, best-of-N, failure attribution.
    #[command(subcommand)]
    Eval(eval::EvalCommand),
    /// Benchmarks (separate from the tests): evaluation throughput and engine speed.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// The gym: a slippery lake with exact dynamics and a post-trained tiny agent pair.
    #[command(subcommand)]
    Gym(gym::GymCommand),
    /// Roll the committed gym pair out on held-out maps, score and evaluate PA against ground truth.
    Demo(demo::DemoArgs),
}

/// Options shared by every command that reads trajectory files.
#[derive(Debug, Clone, Args)]
pub struct TrajectoryInput {
    /// Trajectory files or folders (tau2 results JSON, Who&When JSON, chat JSONL).
    #[arg(long = "input", short = 'i', required = true, num_args = 1..)]
    pub input: Vec<PathBuf>,
    /// Input format; detected from the content when omitted.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Make a malformed record fatal instead of skipping and counting it.
    #[arg(long)]
    pub strict: bool,
}

impl TrajectoryInput {
    fn options(&self) -> ReadOptions {
        ReadOptions {
            format: self.format,
            strict: self.strict,
        }
    }
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Inspect(a) => inspect::run(a),
        Command::Render(a) => render::run(a),
        Command::Score(a) => score::run(a),
        Command::Eval(c) => eval::run(c),
        Command::Bench(c) => bench::run(c),
        Command::Gym(c) => gym::run(c),
        Command::Demo(a) => demo::run(a),
    }
}
