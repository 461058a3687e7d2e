//! `padv demo`: the whole idea on a real post-trained pair, against exact ground truth.
//!
//! 1. Loads the committed pair (`crates/padv-gym/pair`, found through
//!    `CARGO_MANIFEST_DIR` at build time, or any directory given as `pair`) and the map
//!    distribution and β it was trained with (its `manifest.json`).
//! 2. Rolls the policy and the reference out on held-out maps (seeds with bit 62 set, never
//!    used in training), `samples` rollouts per map.
//! 3. Labels every policy rollout with the exact ground truth: success, A*(s,a) of every
//!    step, and for failures the decisive mistake (`mistake_step`).
//! 4. Writes `trajectories.jsonl` (chat JSONL: `padv inspect`/`padv score` read it),
//!    `reference_trajectories.jsonl`, `ground_truth.jsonl`.
//! 5. Scores the policy's trajectories with the pair through the library scoring code that
//!    `padv score --renderer chat-template` runs, writing `records.jsonl`.
//! 6. Evaluates UQ, best-of-N and failure attribution for every method and aggregation,
//!    picks each method's headline row by cross-validation, adds the theory metrics, prints a
//!    table and writes `summary.json`.

mod eval;
mod report;

use std::path::{Path, PathBuf};
use std::time::Instant;

use padv_core::render::RendererKind;
use padv_core::{LogprobRecord, Trajectory};
use padv_engine::logprobs::{EngineOptions, LocalEngine};
use padv_engine::pipeline::{self, PipelineOptions};
use padv_engine::tokenize::{TextTokenizer, TokenizeOptions};

pub use eval::{evaluate, DemoSummary};
pub use report::print_table;

use crate::agent::{write_bytes, Agent, AgentError, Result};
use crate::lake::Lake;
use crate::sample::{rollout_batch, Job, Rollout, SampleConfig, Sampler};
use crate::train::heldout_map_seed;
pub use crate::train::read_manifest;

/// The pair committed in the repository.
pub fn default_pair_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pair")
}

/// Options of the demo.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoOptions {
    /// Pair directory (`reference/`, `policy/`, `manifest.json`).
    pub pair: PathBuf,
    /// Policy checkpoint to evaluate instead of `pair/policy` (e.g. an intermediate one).
    pub policy: Option<PathBuf>,
    /// Output directory.
    pub out: PathBuf,
    /// Held-out maps.
    pub maps: usize,
    /// Rollouts per map (the N of best-of-N).
    pub samples: usize,
    /// Seed of the held-out maps, sampling and slips.
    pub seed: u64,
    /// Bootstrap resamples of the AUROC intervals.
    pub bootstrap: usize,
    /// Cross-validation folds for the headline aggregation.
    pub folds: usize,
    /// Rollouts advanced together in one batch.
    pub batch: usize,
}

impl DemoOptions {
    /// The full demo (100 maps × 8) or the quick one (16 maps × 8).
    pub fn new(quick: bool, out: PathBuf, seed: u64) -> Self {
        DemoOptions {
            pair: default_pair_dir(),
            policy: None,
            out,
            maps: if quick { 16 } else { 100 },
            samples: 8,
            seed,
            bootstrap: if quick { 200 } else { 1000 },
            folds: 5,
            batch: 128,
        }
    }
}

/// Episode of one held-out map rollout: what the evaluation needs besides the record.
#[derive(Debug, Clone)]
pub struct Labeled {
    /// The rollout.
    pub rollout: Rollout,
    /// A*(s_t, a_t) of each step.
    pub advantages: Vec<f64>,
    /// The ground-truth record (`ground_truth.jsonl`).
    pub truth: crate::episode::TruthRecord,
    /// V*(s_0) of the map.
    pub v0: f64,
}

/// Plays `samples` rollouts on each lake with `agent`, in batches of `batch` rows.
/// Trajectory ids are `<prefix>-<map>-<sample>`, task ids `map-<map>`.
pub fn rollouts(
    agent: &Agent,
    sampler: &Sampler,
    lakes: &[Lake],
    samples: usize,
    seed: u64,
    batch: usize,
    prefix: &str,
) -> Result<Vec<Rollout>> {
    let model = agent.inference_model()?;
    let mut seeds = padv_core::eval::SplitMix64::new(seed ^ 0xD3E0);
    let jobs: Vec<Job> = lakes
        .iter()
        .enumerate()
        .flat_map(|(i, lake)| (0..samples).map(move |k| (i, k, lake)))
        .map(|(i, k, lake)| Job {
            lake,
            id: format!("{prefix}-{i:03}-{k}"),
            task_id: format!("map-{i:03}"),
            seed: seeds.next_u64(),
        })
        .collect();
    let cfg = SampleConfig::for_style(sampler.style());
    let mut out = Vec::with_capacity(jobs.len());
    for chunk in jobs.chunks(batch.max(1)) {
        out.extend(rollout_batch(&model, sampler, chunk, &cfg)?);
    }
    Ok(out)
}

/// Scores trajectories with the pair through the library pipeline that `padv score
/// --renderer chat-template` runs ([`padv_engine::pipeline::score_trajectories`]), in strict
/// mode: the demo's own rollouts must all score, so any skip is an error, not a footnote.
pub fn score_trajectories(
    policy_dir: &Path,
    reference_dir: &Path,
    trajectories: &[Trajectory],
) -> Result<Vec<LogprobRecord>> {
    let tok = TextTokenizer::from_dir(policy_dir)?;
    let encoder = tok.encoder(&TokenizeOptions {
        renderer: RendererKind::ChatTemplate,
        ..TokenizeOptions::default()
    })?;
    let engine = |dir: &Path| {
        LocalEngine::load(dir, EngineOptions::default())
            .map_err(|e| AgentError::Invalid(format!("loading {}: {e}", dir.display())))
    };
    let mut policy = engine(policy_dir)?;
    let mut reference = engine(reference_dir)?;
    let run = pipeline::score_trajectories(
        trajectories,
        &encoder,
        &mut policy,
        &mut reference,
        &PipelineOptions {
            strict: true,
            ..PipelineOptions::default()
        },
        &mut |_| {},
    )
    .map_err(|e| AgentError::Invalid(format!("scoring the demo trajectories: {e}")))?;
    Ok(run.records)
}

/// A pair opened for evaluation: how it was trained, its two checkpoints and the tokenizer.
pub(crate) struct OpenedPair {
    /// The training configuration (map distribution, β).
    pub train: crate::train::TrainConfig,
    /// The manifest as written.
    pub manifest: serde_json::Value,
    /// The evaluated policy checkpoint (`pair/policy` unless another is given).
    pub policy_dir: PathBuf,
    /// `pair/reference`.
    pub reference_dir: PathBuf,
    /// The policy's tokenizer.
    pub tok: TextTokenizer,
    /// The policy.
    pub policy: Agent,
    /// The reference.
    pub reference: Agent,
}

/// Opens `pair` (with `policy` instead of `pair/policy` when given) and creates `out`.
pub(crate) fn open_pair(pair: &Path, policy: Option<&Path>, out: &Path) -> Result<OpenedPair> {
    let (train, manifest) = read_manifest(pair)?;
    let policy_dir = policy.map_or_else(|| pair.join("policy"), Path::to_path_buf);
    let reference_dir = pair.join("reference");
    std::fs::create_dir_all(out).map_err(|source| AgentError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let tok = TextTokenizer::from_dir(&policy_dir)?;
    let policy = Agent::load(&policy_dir, &tok)?;
    let reference = Agent::load(&reference_dir, &tok)?;
    Ok(OpenedPair {
        train,
        manifest,
        policy_dir,
        reference_dir,
        tok,
        policy,
        reference,
    })
}

/// The held-out maps `0..maps` of the pair's map distribution for `seed`.
pub(crate) fn heldout_lakes(
    train: &crate::train::TrainConfig,
    seed: u64,
    maps: usize,
) -> Result<Vec<Lake>> {
    Ok((0..maps)
        .map(|i| Lake::generate(&train.lake, heldout_map_seed(seed, i)))
        .collect::<std::result::Result<_, _>>()?)
}

/// Runs the demo; returns the summary (also written to `out/summary.json`).
pub fn run(opts: &DemoOptions) -> Result<DemoSummary> {
    let started = Instant::now();
    let OpenedPair {
        train: train_cfg,
        manifest,
        policy_dir,
        reference_dir,
        tok,
        policy,
        reference,
    } = open_pair(&opts.pair, opts.policy.as_deref(), &opts.out)?;
    let sampler = Sampler::new(&tok, crate::tokenizer::END_OF_TURN, train_cfg.style)?;
    let lakes = heldout_lakes(&train_cfg, opts.seed, opts.maps)?;
    let t0 = Instant::now();
    // The two models' rollouts are independent (own seeds); sampling is mostly
    // single-threaded element-wise work, so running them side by side uses both cores.
    let (pol, ref_rollouts) = rayon::join(
        || {
            rollouts(
                &policy,
                &sampler,
                &lakes,
                opts.samples,
                opts.seed,
                opts.batch,
                "policy",
            )
        },
        || {
            rollouts(
                &reference,
                &sampler,
                &lakes,
                opts.samples,
                opts.seed ^ 0xF00D,
                opts.batch,
                "reference",
            )
        },
    );
    let (mut pol, ref_rollouts) = (pol?, ref_rollouts?);
    let rollout_s = t0.elapsed().as_secs_f64();

    let labeled = eval::label(&lakes, &mut pol, opts.samples)?;
    let trajectories: Vec<Trajectory> = labeled
        .iter()
        .map(|l| l.rollout.trajectory.clone())
        .collect();
    crate::episode::write_chat_jsonl(&opts.out.join("trajectories.jsonl"), &trajectories)?;
    let ref_trajs: Vec<Trajectory> = ref_rollouts.iter().map(|r| r.trajectory.clone()).collect();
    crate::episode::write_chat_jsonl(&opts.out.join("reference_trajectories.jsonl"), &ref_trajs)?;
    let truths: Vec<_> = labeled.iter().map(|l| l.truth.clone()).collect();
    crate::episode::write_truth_jsonl(&opts.out.join("ground_truth.jsonl"), &truths)?;

    let t1 = Instant::now();
    let records = score_trajectories(&policy_dir, &reference_dir, &trajectories)?;
    let score_s = t1.elapsed().as_secs_f64();
    let mut buf = Vec::new();
    for r in &records {
        serde_json::to_writer(&mut buf, r).map_err(|source| AgentError::Json {
            path: opts.out.join("records.jsonl"),
            source,
        })?;
        buf.push(b'\n');
    }
    write_bytes(&opts.out.join("records.jsonl"), &buf)?;

    let ctx = eval::EvalContext {
        opts,
        train: &train_cfg,
        manifest: &manifest,
        policy_dir: &policy_dir,
        labeled: &labeled,
        reference: &ref_rollouts,
        records: &records,
        timings: eval::Timings {
            rollout_s,
            score_s,
            total_s: 0.0,
        },
    };
    let mut summary = evaluate(&ctx)?;
    summary.timings.total_s = started.elapsed().as_secs_f64();
    crate::agent::write_json(
        &opts.out.join("summary.json"),
        &serde_json::to_value(&summary).map_err(|source| AgentError::Json {
            path: opts.out.join("summary.json"),
            source,
        })?,
    )?;
    Ok(summary)
}
