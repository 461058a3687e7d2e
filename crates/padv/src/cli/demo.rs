//! `padv demo`: roll the committed gym pair out on held-out maps, score the trajectories with
//! the pair, and evaluate PA against every baseline and the exact ground truth (see
//! `padv_gym::demo`).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use padv_gym::demo::{print_table, run as run_demo, DemoOptions};

/// Options of `padv demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// 16 held-out maps × 8 rollouts instead of 100 × 8 (for CI; fewer bootstrap resamples).
    #[arg(long)]
    pub quick: bool,
    /// Output directory: trajectories.jsonl, reference_trajectories.jsonl, ground_truth.jsonl,
    /// records.jsonl, eval-{uq,bon,fa}.json, summary.json.
    #[arg(long, default_value = "padv-demo")]
    pub out: PathBuf,
    /// Which pair, policy, maps and seed.
    #[command(flatten)]
    pub heldout: HeldoutArgs,
}

/// The pair and held-out maps an evaluation in the gym runs on (`padv demo`, `padv gym search`).
#[derive(Debug, Args)]
pub struct HeldoutArgs {
    /// Seed of the held-out maps, sampling and slips.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Pair directory (default: the pair committed in crates/padv-gym/pair).
    #[arg(long)]
    pub pair: Option<PathBuf>,
    /// Evaluate this policy checkpoint instead of PAIR/policy (e.g. PAIR/policy-iter-0005, an intermediate RL policy).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Number of held-out maps (overrides the --quick/full default).
    #[arg(long)]
    pub maps: Option<usize>,
}

/// Runs the demo.
pub fn run(a: DemoArgs) -> anyhow::Result<()> {
    let h = a.heldout;
    let mut opts = DemoOptions::new(a.quick, a.out.clone(), h.seed);
    if let Some(p) = h.pair {
        opts.pair = p;
    }
    opts.policy = h.policy;
    if let Some(m) = h.maps {
        opts.maps = m;
    }
    let summary = run_demo(&opts).with_context(|| format!("padv demo into {}", a.out.display()))?;
    print!("{}", print_table(&summary));
    println!("wrote {}", a.out.join("summary.json").display());
    Ok(())
}
