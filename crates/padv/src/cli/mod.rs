//! Command-line definitions. Flags mean the same in every subcommand:
//!
//! - `--input` (`-i`): what to read: files or folders (trajectory files for `inspect`,
//!   `render` and `score`; record files or `padv score` output folders for `eval`);
//! - `--out DIR`: the folder a command writes its named JSON files into, created if missing
//!   (`score`: records.jsonl, run.json, eval-<kind>.json, cache/; `eval`: eval-<kind>.json;
//!   `inspect`: inspect.json; `bench eval`: bench-eval.json). Files of the same name are
//!   replaced atomically, never appended to;
//! - value names are snake_case, as in the JSON (`diff_of_agg`, `policy_logprob`); the
//!   kebab-case spelling is accepted too;
//! - `--method`, `--token-agg`, `--step-agg`, `--pa-mode`, `--beta`, `--grid`.

mod bench;
mod bench_engine;
mod chat_opts;
mod demo;
mod engine_opts;
mod eval;
mod gym;
mod inputs;
mod inspect;
mod judge;
mod merge;
mod names;
pub(crate) mod output;
mod progress;
mod remote_opts;
mod render;
mod report;
mod run_info;
mod score;
mod serve;

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
#[command(
    name = "padv",
    version,
    about,
    long_about,
    after_help = "Examples:\n  \
        padv inspect ../shared/data/tau2_bench_leaderboard\n  \
        padv score --policy ./rl-model --reference ./sft-model -i runs.jsonl --out out/ --eval uq,bon\n  \
        padv eval uq --input out/ --grid"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the largest variant (`score`, with all its flags) costs
// nothing, and boxing it would only obscure the clap definitions.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Read trajectory files and report what is in them (format, counts, labels, problems) as JSON.
    #[command(after_help = "Example:\n  padv inspect ../shared/data/who_and_when --out report/")]
    Inspect(inspect::InspectArgs),
    /// Show the text spans a tokenizer will see, and which are action steps.
    #[command(
        after_help = "Example:\n  padv render -i ../shared/data/tau2_bench_leaderboard --limit 1 | head -40"
    )]
    Render(render::RenderArgs),
    /// Turn trajectories into log-prob records with a policy/reference pair of local checkpoints.
    #[command(
        after_help = "Example:\n  padv score --policy ./rl-model --reference ./sft-model \\\n      \
            --input ../shared/data/tau2_bench_leaderboard --out out/ --eval uq,bon\n\n\
            Writes out/records.jsonl, out/run.json (version, command line, inputs, models, counts, \
            skips) and out/eval-<kind>.json; prints the evaluation tables."
    )]
    Score(score::ScoreArgs),
    /// Serve live progress advantage over HTTP (score steps, pick the best of K, vLLM subset).
    Serve(serve::ServeArgs),
    /// Merge a policy into its reference in weight space (linear, TIES, DARE, EMR) and write
    /// the checkpoint.
    #[command(
        after_help = "Example:\n  padv merge --policy ./rl-model --reference ./sft-model --method linear \\\n      --alpha 0.5 --out ./ref-a0.5"
    )]
    Merge(merge::MergeArgs),
    /// Reward-model and judge baselines: score trajectories with an outcome RM, a PRM or an
    /// LLM judge (or import scores) and attach them to log-prob records.
    #[command(
        after_help = "Examples:\n  padv judge --kind outcome-rm --model ./wildreward -i runs/ --out rm/ --attach out/\n  \
            padv judge --kind prm --endpoint http://gpu1:8000 --model thinkprm -i runs/ --out prm/ --attach out/\n  \
            padv judge import --scores judge.jsonl --name sonnet --attach out/"
    )]
    Judge(judge::JudgeArgs),
    /// Evaluate log-prob records: uncertainty quantification, best-of-N, failure attribution.
    #[command(subcommand)]
    Eval(eval::EvalCommand),
    /// Write one self-contained HTML page of the evaluations: ROC, best-of-k, step traces, grid.
    #[command(
        after_help = "Examples:\n  padv report --input out/ --out out/    # out/report.html from padv score's records\n  \
            padv report -i out/records.jsonl --trajectories ../shared/data/who_and_when --out report/"
    )]
    Report(report::ReportArgs),
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
    /// Trajectory files or folders (tau2 results JSON, Who&When JSON, chat JSONL); a folder
    /// stands for every *.json / *.jsonl file below it.
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
            ..ReadOptions::default()
        }
    }
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Inspect(a) => inspect::run(a),
        Command::Render(a) => render::run(a),
        Command::Score(a) => score::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Merge(a) => merge::run(a),
        Command::Judge(a) => judge::run(a),
        Command::Eval(c) => eval::run(c),
        Command::Report(a) => report::run(a),
        Command::Bench(c) => bench::run(c),
        Command::Gym(c) => gym::run(c),
        Command::Demo(a) => demo::run(a),
    }
}
