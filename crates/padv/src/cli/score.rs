//! `padv score`: trajectories + a policy/reference pair of local checkpoints -> log-prob records.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use padv_core::formats::read_inputs;
use padv_core::record::cache::LogprobCache;
use padv_core::record::write_records_atomic;
use padv_core::render::RendererKind;
use padv_engine::pair::score_pair;
use padv_engine::tokenize::{check_same_vocabulary, TextTokenizer, TokenizeOptions};
use serde::Serialize;

use super::engine_opts::{load_engine, EngineArgs};
use super::eval::{EvalKind, EvalOptions};
use super::TrajectoryInput;

/// Arguments of `padv score`.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Policy checkpoint: a local Hugging Face folder, or `org/name` in the local HF cache.
    #[arg(long)]
    policy: String,
    /// Reference checkpoint (the model the policy was regularised towards).
    #[arg(long)]
    reference: String,
    #[command(flatten)]
    input: TrajectoryInput,
    /// Output folder: records.jsonl, run.json, cache/, and eval results.
    #[arg(long)]
    out: PathBuf,
    /// How trajectories become tokens.
    #[arg(long, value_enum, default_value_t = RendererKind::Paper)]
    renderer: RendererKind,
    /// Keep only the last N tokens of each trajectory (as the reference implementation does).
    #[arg(long, default_value_t = 16384)]
    max_length: usize,
    #[command(flatten)]
    engine: EngineArgs,
    /// Evaluations to run on the records afterwards (uq, bon, fa); results go to OUT/eval-<kind>.json.
    #[arg(long, value_enum, value_delimiter = ',')]
    eval: Vec<EvalKind>,
    #[command(flatten)]
    eval_opts: EvalOptions,
    /// Do not read or write the cache in OUT/cache.
    #[arg(long)]
    no_cache: bool,
}

#[derive(Serialize)]
struct RunSummary {
    policy: String,
    reference: String,
    renderer: String,
    max_length: usize,
    trajectories: usize,
    records: usize,
    skipped_records_in_input: usize,
    failed_trajectories: Vec<String>,
    tokens: usize,
    action_tokens_scored: usize,
    action_steps: usize,
    action_steps_cut_by_truncation: usize,
    action_steps_clipped_by_truncation: usize,
    trajectories_truncated: usize,
    cache_hits: usize,
    seconds: f64,
    tokens_per_second: f64,
}

/// Run `padv score`.
pub fn run(args: ScoreArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let reports =
        read_inputs(&args.input.input, &args.input.options()).context("reading trajectories")?;
    let skipped: usize = reports.iter().map(|r| r.skipped.len()).sum();
    let trajectories: Vec<_> = reports.into_iter().flat_map(|r| r.trajectories).collect();
    if trajectories.is_empty() {
        anyhow::bail!("no trajectories in the input");
    }

    let (policy_dir, mut policy) =
        load_engine(&args.policy, &args.engine).context("loading the policy")?;
    let (reference_dir, mut reference) =
        load_engine(&args.reference, &args.engine).context("loading the reference")?;
    let tok = TextTokenizer::from_dir(&policy_dir)
        .with_context(|| format!("loading the policy tokenizer from {}", policy_dir.display()))?;
    let ref_tok = TextTokenizer::from_dir(&reference_dir).with_context(|| {
        format!(
            "loading the reference tokenizer from {}",
            reference_dir.display()
        )
    })?;
    check_same_vocabulary(&tok, &ref_tok).map_err(|e| {
        anyhow::anyhow!(
            "policy and reference tokenizers differ: {e}. PA compares the two models token by token, \
             so both must score the same token ids"
        )
    })?;

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let cache = if args.no_cache {
        None
    } else {
        let dir = args.out.join("cache");
        Some(
            LogprobCache::open(&dir)
                .with_context(|| format!("opening the cache {}", dir.display()))?,
        )
    };

    let encoder = tok
        .encoder(&TokenizeOptions {
            renderer: args.renderer,
            max_length: args.max_length,
            ..TokenizeOptions::default()
        })
        .context("preparing the renderer")?;
    let bar = ProgressBar::new(trajectories.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} trajectories {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut records = Vec::with_capacity(trajectories.len());
    let mut failed = Vec::new();
    let (mut tokens, mut targets, mut steps, mut cut, mut clipped, mut truncated, mut hits) =
        (0, 0, 0, 0, 0, 0, 0);
    let mut computed_tokens = 0usize;
    let compute_start = Instant::now();
    for t in &trajectories {
        let toks = match encoder.encode(t) {
            Ok(x) => x,
            Err(e) if !args.input.strict => {
                tracing::warn!("skipping trajectory {:?}: {e}", t.id);
                failed.push(format!("{}: {e}", t.id));
                bar.inc(1);
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("tokenising trajectory {:?}", t.id)),
        };
        let out = score_pair(
            t,
            &toks,
            policy.as_mut(),
            reference.as_mut(),
            cache.as_ref(),
        )
        .with_context(|| format!("scoring trajectory {:?}", t.id))?;
        tokens += out.n_tokens;
        targets += out.n_targets;
        hits += out.cache_hits;
        if out.cache_hits < 2 {
            computed_tokens += out.n_tokens;
        }
        steps += out.record.steps.len();
        cut += toks.actions_cut;
        clipped += toks.actions_clipped;
        truncated += usize::from(toks.truncated_tokens > 0);
        records.push(out.record);
        let rate = computed_tokens as f64 / compute_start.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(format!("{rate:.0} tok/s"));
        bar.inc(1);
    }
    bar.finish_and_clear();

    let records_path = args.out.join("records.jsonl");
    write_records_atomic(&records_path, &records)
        .with_context(|| format!("writing {}", records_path.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    let summary = RunSummary {
        policy: policy_dir.display().to_string(),
        reference: reference_dir.display().to_string(),
        renderer: args.renderer.to_string(),
        max_length: args.max_length,
        trajectories: trajectories.len(),
        records: records.len(),
        skipped_records_in_input: skipped,
        failed_trajectories: failed,
        tokens,
        action_tokens_scored: targets,
        action_steps: steps,
        action_steps_cut_by_truncation: cut,
        action_steps_clipped_by_truncation: clipped,
        trajectories_truncated: truncated,
        cache_hits: hits,
        seconds,
        tokens_per_second: computed_tokens as f64 / compute_start.elapsed().as_secs_f64().max(1e-9),
    };
    super::output::emit(&summary, Some(&args.out.join("run.json")))?;
    if cut > 0 {
        tracing::warn!(
            "{cut} action steps were cut entirely by --max-length {}",
            args.max_length
        );
    }
    for kind in &args.eval {
        let path = args.out.join(format!("eval-{kind}.json"));
        super::eval::evaluate_records(&records, *kind, &args.eval_opts, Some(&path))?;
    }
    eprintln!("wrote {}", display(&records_path));
    Ok(())
}

fn display(p: &Path) -> String {
    p.display().to_string()
}
