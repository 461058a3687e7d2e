//! `padv demo`: roll the committed gym pair out on held-out maps, score the trajectories with
//! the pair, and evaluate PA against every baseline and the exact ground truth (see
//! `padv_gym::demo`).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use padv_gym::demo::{
    print_seeds_table, print_table, run as run_demo, run_seeds, verbose_pair_dir, DemoOptions,
};
use padv_gym::protocol::ActionStyle;

/// Options of `padv demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// 16 held-out maps × 8 rollouts instead of 100 × 8 (for CI; fewer bootstrap resamples).
    #[arg(long)]
    pub quick: bool,
    /// Output directory: per player (oracle/, policy/, reference/) trajectories.jsonl,
    /// records.jsonl and eval-{uq,bon,fa}.json; ground_truth.jsonl (hard and soft truth of
    /// every step); summary.json. With --seeds, one seed-N/ directory per seed and the
    /// aggregate summary.json.
    #[arg(long, default_value = "padv-demo")]
    pub out: PathBuf,
    /// Print the summary as JSON instead of the table.
    #[arg(long)]
    pub json: bool,
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
    /// Which committed pair: `terse` (actions are `go down`) or `verbose` (a free-text
    /// remark line, then `go down`). Ignored with --pair.
    #[arg(long, default_value = "terse", value_parser = super::gym::parse_style)]
    pub style: ActionStyle,
    /// Run several seeds (other held-out maps and rollouts, same pair), e.g. `1,2,3`, each
    /// into OUT/seed-N, and report the mean and spread of every headline over them.
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub seeds: Vec<u64>,
}

impl HeldoutArgs {
    /// The pair directory: --pair, else the committed pair of --style.
    pub fn pair_dir(&self) -> Option<PathBuf> {
        match (&self.pair, self.style) {
            (Some(p), _) => Some(p.clone()),
            (None, ActionStyle::Verbose) => Some(verbose_pair_dir()),
            (None, ActionStyle::Terse) => None,
        }
    }
}

/// Runs the demo.
pub fn run(a: DemoArgs) -> anyhow::Result<()> {
    let h = a.heldout;
    let mut opts = DemoOptions::new(a.quick, a.out.clone(), h.seed);
    if let Some(p) = h.pair_dir() {
        opts.pair = p;
    }
    opts.policy = h.policy;
    if let Some(m) = h.maps {
        opts.maps = m;
    }
    let context = || format!("padv demo into {}", a.out.display());
    if h.seeds.is_empty() {
        let summary = run_demo(&opts).with_context(context)?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&summary)?);
        } else {
            print!("{}", print_table(&summary));
        }
    } else {
        let summary = run_seeds(&opts, &h.seeds).with_context(context)?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&summary)?);
        } else {
            print!("{}", print_seeds_table(&summary));
        }
    }
    eprintln!("wrote {}", a.out.join("summary.json").display());
    Ok(())
}
