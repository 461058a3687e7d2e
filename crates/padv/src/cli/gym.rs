//! `padv gym train`: post-train a gym pair (SFT reference, KL-regularised RL policy).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use padv_gym::lake::LakeConfig;
use padv_gym::protocol::ActionStyle;
use padv_gym::train::{train_pair, TrainConfig};

/// Gym commands.
#[derive(Debug, Subcommand)]
pub enum GymCommand {
    /// Train a reference (SFT on an imperfect expert) and a policy (KL-regularised RL).
    Train(TrainArgs),
    /// Step-level guided search: at each step sample K candidate actions and execute the one
    /// with the highest PA (or policy log-prob); compared with plain sampling and best-of-N
    /// episodes on held-out maps.
    #[command(
        after_help = "Example:\n  padv gym search --quick\n  padv gym search --k 8 --maps 100 --json"
    )]
    Search(SearchArgs),
}

/// Options of `padv gym search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// 12 maps, K = 4, 2 guided episodes per map (for CI) instead of 100, 8 and 4.
    #[arg(long)]
    pub quick: bool,
    /// Output directory: search_summary.json and the episodes of each chooser as chat JSONL.
    #[arg(long, default_value = "padv-search")]
    pub out: PathBuf,
    /// Which pair, policy, maps and seed.
    #[command(flatten)]
    pub heldout: super::demo::HeldoutArgs,
    /// Candidates per step, and N of the best-of-N baseline.
    #[arg(long)]
    pub k: Option<usize>,
    /// Guided episodes per map and chooser.
    #[arg(long)]
    pub episodes: Option<usize>,
    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Options of `padv gym train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Output directory (reference/, policy/, policy-iter-NNNN/, train_log.jsonl, manifest.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Master seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// KL coefficient β.
    #[arg(long, default_value_t = 0.1)]
    pub beta: f64,
    /// How actions are written: `terse` (`go down`) or `verbose` (a free-text remark line,
    /// then `go down`).
    #[arg(long, default_value = "terse", value_parser = parse_style)]
    pub style: ActionStyle,
    /// Slip probability of each move.
    #[arg(long)]
    pub slip: Option<f64>,
    /// Map side length.
    #[arg(long)]
    pub size: Option<usize>,
    /// RL iterations.
    #[arg(long)]
    pub iterations: Option<usize>,
    /// SFT optimiser steps.
    #[arg(long)]
    pub sft_steps: Option<usize>,
    /// Expert demonstrations for SFT.
    #[arg(long)]
    pub sft_episodes: Option<usize>,
    /// Distinct maps per RL iteration.
    #[arg(long)]
    pub maps_per_iteration: Option<usize>,
    /// Rollouts per map per RL iteration.
    #[arg(long)]
    pub group: Option<usize>,
    /// Sequences per RL forward/backward pass (memory grows with it and with the episode
    /// length: verbose episodes are ~10x the tokens of terse ones).
    #[arg(long)]
    pub micro_batch: Option<usize>,
    /// RL learning rate.
    #[arg(long)]
    pub rl_lr: Option<f64>,
    /// SFT learning rate.
    #[arg(long)]
    pub sft_lr: Option<f64>,
    /// Validation maps on which KL(policy ‖ oracle) is measured during RL (0: off, and the
    /// last policy is kept instead of the closest).
    #[arg(long)]
    pub monitor_maps: Option<usize>,
    /// Measure every this many RL iterations.
    #[arg(long)]
    pub monitor_every: Option<usize>,
    /// Skip SFT: copy the reference of this earlier training output (its manifest must show
    /// the same seed, map family and SFT settings), then run RL with this run's β and RL
    /// settings. For sweeps over β, where the reference does not depend on β.
    #[arg(long, value_name = "PAIR_DIR")]
    pub reuse_reference: Option<PathBuf>,
    /// Continue SFT from the reference of this earlier training output (same seed, map
    /// family, style and model shape) instead of a fresh initialisation; `--sft-steps` more
    /// steps on this run's demonstrations, with a fresh optimiser and schedule. With
    /// `--reuse-reference`, it describes how the reused reference was made (checked, not rerun).
    #[arg(long, value_name = "PAIR_DIR")]
    pub sft_init: Option<PathBuf>,
    /// Stop RL after the iteration in which its wall time passes this many minutes
    /// (the distance to the optimum is measured there; the manifest records where it stopped).
    #[arg(long, value_name = "MINUTES")]
    pub rl_minutes: Option<f64>,
}

/// Parses `terse` / `verbose`.
pub(crate) fn parse_style(s: &str) -> Result<ActionStyle, String> {
    ActionStyle::parse(s).ok_or_else(|| format!("unknown action style {s:?} (terse, verbose)"))
}

/// Runs a gym command.
pub fn run(cmd: GymCommand) -> anyhow::Result<()> {
    match cmd {
        GymCommand::Train(a) => train(a),
        GymCommand::Search(a) => search(a),
    }
}

fn search(a: SearchArgs) -> anyhow::Result<()> {
    use padv_gym::search::eval::{print_seeds_table, print_table, run, run_seeds, SearchOptions};
    let h = a.heldout;
    let mut opts = SearchOptions::new(a.quick, a.out.clone(), h.seed);
    if let Some(p) = h.pair_dir() {
        opts.pair = p;
    }
    opts.policy = h.policy;
    if let Some(n) = h.maps {
        opts.maps = n;
    }
    if let Some(n) = a.k {
        opts.k = n;
    }
    if let Some(n) = a.episodes {
        opts.episodes = n;
    }
    let context = || format!("padv gym search into {}", a.out.display());
    if !h.seeds.is_empty() {
        let summary = run_seeds(&opts, &h.seeds).with_context(context)?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&summary)?);
        } else {
            print!("{}", print_seeds_table(&summary));
        }
    } else {
        let summary = run(&opts).with_context(context)?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&summary)?);
        } else {
            print!("{}", print_table(&summary));
        }
    }
    eprintln!("wrote {}", a.out.join("search_summary.json").display());
    Ok(())
}

fn train(a: TrainArgs) -> anyhow::Result<()> {
    let mut lake = LakeConfig::default();
    if let Some(s) = a.size {
        lake = LakeConfig::default_for_size(s);
    }
    if let Some(p) = a.slip {
        lake.slip = p;
    }
    let mut cfg = TrainConfig::new(a.seed, lake, a.beta, a.style);
    if let Some(n) = a.iterations {
        cfg.rl.iterations = n;
        cfg.save_at = vec![(n / 10).max(1), (n / 2).max(1)];
    }
    if let Some(n) = a.sft_steps {
        cfg.sft.steps = n;
    }
    if let Some(n) = a.sft_episodes {
        cfg.sft.episodes = n;
    }
    if let Some(n) = a.maps_per_iteration {
        cfg.rl.maps_per_iteration = n;
    }
    if let Some(n) = a.group {
        cfg.rl.group = n;
    }
    if let Some(n) = a.micro_batch {
        if n == 0 {
            anyhow::bail!("--micro-batch must be at least 1");
        }
        cfg.rl.micro_batch = n;
    }
    if let Some(x) = a.rl_lr {
        cfg.rl.lr = x;
    }
    if let Some(x) = a.sft_lr {
        cfg.sft.lr = x;
    }
    if let Some(n) = a.monitor_maps {
        cfg.monitor.maps = n;
        cfg.rl.keep_best = n > 0;
    }
    if let Some(n) = a.monitor_every {
        cfg.monitor.every = n;
    }
    if let Some(p) = &a.sft_init {
        cfg.sft.init_from = Some(p.display().to_string());
    }
    if let Some(m) = a.rl_minutes {
        if !(m.is_finite() && m > 0.0) {
            anyhow::bail!("--rl-minutes must be a positive number of minutes, got {m}");
        }
        cfg.rl.time_budget_s = Some(m * 60.0);
    }
    let provenance = serde_json::json!({
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "git_commit": git_commit(),
        "padv_version": env!("CARGO_PKG_VERSION"),
    });
    let outcome = train_pair(&cfg, &a.out, provenance, a.reuse_reference.as_deref())
        .with_context(|| format!("training into {}", a.out.display()))?;
    let last_rl = outcome.log.iter().rev().find(|e| e.phase == "rl");
    let rl = match last_rl {
        Some(e) => format!(
            "final RL iteration: success {:.3}, KL {:.3}",
            e.success_rate.unwrap_or(f64::NAN),
            e.mean_kl.unwrap_or(f64::NAN)
        ),
        None => "no RL iterations (the policy is the reference)".to_string(),
    };
    println!(
        "trained in {:.1} s: expert success {:.3}; {rl}; wrote {}",
        outcome.wall_s,
        outcome.expert_success,
        a.out.display()
    );
    Ok(())
}

/// The checkout's commit, when run inside a git work tree (best effort, for the manifest).
fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
