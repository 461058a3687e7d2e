//! `padv demo`: see `padv_gym::demo`.

use std::path::PathBuf;

use clap::Args;

/// Options of `padv demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Fewer held-out maps (16 × 8 rollouts instead of 100 × 8), for CI.
    #[arg(long)]
    pub quick: bool,
    /// Output directory (trajectories.jsonl, ground_truth.jsonl, records, summary.json).
    #[arg(long, default_value = "padv-demo")]
    pub out: PathBuf,
    /// Seed of the held-out maps, sampling and slips.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Pair directory (default: the pair committed in crates/padv-gym/pair).
    #[arg(long)]
    pub pair: Option<PathBuf>,
}

/// Runs the demo.
pub fn run(a: DemoArgs) -> anyhow::Result<()> {
    let _ = a;
    anyhow::bail!("padv demo: not implemented yet")
}
