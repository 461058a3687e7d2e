//! `padv demo`: the whole idea on a real post-trained pair, against exact ground truth, with
//! three players on the same held-out maps:
//!
//! - **oracle**: `π_o(y|h) ∝ π_ref(y|h)·e^{A_soft/β}` — the reference tilted by the exact
//!   soft advantage, no training ([`crate::oracle`]). What the theory talks about: its PA
//!   is the soft advantage by construction, so its rows show what *the method* can do;
//! - **policy**: the RL-trained checkpoint. Its rows show how far RL got;
//! - **reference**: the SFT checkpoint (scored by the trained pair: PA used off-policy).
//!
//! Steps:
//! 1. Opens the pair (`crates/padv-gym/pair` or `pair-verbose`, or any directory) and the map
//!    distribution, action style and β it was trained with (its `manifest.json`).
//! 2. Projects the reference onto every reachable state of each held-out map (seeds with
//!    bit 62 set, never used in training) and solves the soft values ([`oracle::project`]).
//! 3. Rolls the three players out, `samples` rollouts per map; labels each rollout with the
//!    hard ground truth (success, `A*`, the decisive mistake) and each step with the soft
//!    truth at its own history ([`oracle::rollout_truth_prefilled`]).
//! 4. Scores every trajectory through the library pipeline `padv score --renderer
//!    chat-template` runs: the policy's and the reference's with the checkpoint pair, the
//!    oracle's with [`oracle::OracleBackend`] as its policy. The reference's numbers (and
//!    the oracle's probes) are those of step 3's pass, which already ran the reference over
//!    every rollout ([`oracle::PrefilledBackend`]).
//! 5. Evaluates UQ, best-of-N and failure attribution per player with
//!    `padv_core::eval::evaluate` — each application choosing its own headline cell by
//!    cross-validation — adds the theory metrics (Spearman of step scores with the soft and
//!    the hard advantage, `KL(π ‖ π_o)` per step, the oracle's identity error, how far the
//!    histories' reference is from the projection), prints a table and writes `summary.json`.

mod eval;
mod report;
mod seeds;

use std::path::{Path, PathBuf};
use std::time::Instant;

use padv_core::render::RendererKind;
use padv_core::{LogprobBackend, LogprobRecord, Trajectory};
use padv_engine::decoder::DecoderModel;
use padv_engine::logprobs::{EngineOptions, LocalEngine};
use padv_engine::pipeline::{self, PipelineOptions};
use padv_engine::tokenize::{TextTokenizer, TokenizeOptions};
use serde::Serialize;

pub use eval::{DemoSummary, MethodRow, PlayerSummary};
pub(crate) use report::columns;
pub use report::print_table;
pub use seeds::{print_seeds_table, run_seeds, SeedsSummary, Spread};

use crate::agent::{write_bytes, Agent, AgentError, Result};
use crate::lake::Lake;
use crate::oracle::{
    oracle_rollouts, project, rollout_truth_prefilled, MapTruth, MoveTrie, OracleBackend,
    OracleStep, PrefilledBackend, ProjectionCost,
};
use crate::sample::{rollout_batch, Job, Rollout, SampleConfig, Sampler};
use crate::train::heldout_map_seed;
pub use crate::train::read_manifest;

/// The terse pair committed in the repository.
pub fn default_pair_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pair")
}

/// The verbose pair committed in the repository.
pub fn verbose_pair_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pair-verbose")
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
    /// Bootstrap resamples of the confidence intervals.
    pub bootstrap: usize,
    /// Cross-validation folds for the headline cells.
    pub folds: usize,
    /// Rollouts advanced together in one batch. Small (32) on purpose: decoding reads every
    /// row's whole KV cache at each step, and a small batch's caches stay in the CPU's caches
    /// (32 rows sampled ~10 % faster than 256 on the 2-core machine; the rows are the same
    /// either way, each with its own seed).
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
            batch: 32,
        }
    }
}

/// The demo's three players.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Player {
    /// The reference tilted by the exact soft advantage.
    Oracle,
    /// The RL checkpoint.
    Policy,
    /// The SFT checkpoint.
    Reference,
}

impl Player {
    /// All players, in table order.
    pub const ALL: [Player; 3] = [Player::Oracle, Player::Policy, Player::Reference];

    /// Snake-case name (also the output sub-directory and the trajectory id prefix).
    pub fn name(self) -> &'static str {
        match self {
            Player::Oracle => "oracle",
            Player::Policy => "policy",
            Player::Reference => "reference",
        }
    }

    /// What the player is, for the table.
    pub fn what(self) -> &'static str {
        match self {
            Player::Oracle => {
                "pi_ref tilted by exp(A_soft/beta), no training: what the theory describes"
            }
            Player::Policy => "the RL checkpoint: how far RL got",
            Player::Reference => "the SFT checkpoint, scored by the trained pair (PA off-policy)",
        }
    }
}

/// One held-out rollout with what the evaluation needs besides its record.
#[derive(Debug, Clone)]
pub struct Labeled {
    /// The rollout.
    pub rollout: Rollout,
    /// A*(s_t, a_t) of each step (hard truth).
    pub advantages: Vec<f64>,
    /// The ground-truth record (hard and soft truth of every step).
    pub truth: crate::episode::TruthRecord,
    /// V*(s_0) of the map.
    pub v0: f64,
}

/// Everything one player produced.
#[derive(Debug, Clone)]
pub struct PlayerRun {
    /// Which player.
    pub player: Player,
    /// Its rollouts with ground truth, map-major (`samples` per map).
    pub labeled: Vec<Labeled>,
    /// Its log-prob records, in the same order.
    pub records: Vec<LogprobRecord>,
    /// The oracle's own identity per action (oracle only).
    pub oracle_steps: Option<Vec<Vec<OracleStep>>>,
}

/// The jobs of `samples` rollouts per lake; ids `<prefix>-<map>-<sample>`, task ids
/// `map-<map>`, episode seeds drawn from `seed`.
pub(crate) fn jobs<'a>(lakes: &'a [Lake], samples: usize, seed: u64, prefix: &str) -> Vec<Job<'a>> {
    let mut seeds = padv_core::eval::SplitMix64::new(seed ^ 0xD3E0);
    lakes
        .iter()
        .enumerate()
        .flat_map(|(i, lake)| (0..samples).map(move |k| (i, k, lake)))
        .map(|(i, k, lake)| Job {
            lake,
            id: format!("{prefix}-{i:03}-{k}"),
            task_id: format!("map-{i:03}"),
            seed: seeds.next_u64(),
        })
        .collect()
}

/// Plays `samples` rollouts on each lake with `model`, in batches of `batch` rows.
pub fn rollouts(
    model: &DecoderModel,
    sampler: &Sampler,
    lakes: &[Lake],
    samples: usize,
    seed: u64,
    batch: usize,
    prefix: &str,
) -> Result<Vec<Rollout>> {
    let jobs = jobs(lakes, samples, seed, prefix);
    let cfg = SampleConfig::for_style(sampler.style());
    let mut out = Vec::with_capacity(jobs.len());
    for chunk in jobs.chunks(batch.max(1)) {
        out.extend(rollout_batch(model, sampler, chunk, &cfg)?);
    }
    Ok(out)
}

/// The chat-template encoder of a pair's tokenizer (what `padv score --renderer
/// chat-template` builds).
fn chat_encoder(tok: &TextTokenizer) -> Result<padv_engine::tokenize::TrajectoryEncoder<'_>> {
    Ok(tok.encoder(&TokenizeOptions {
        renderer: RendererKind::ChatTemplate,
        ..TokenizeOptions::default()
    })?)
}

/// Scores trajectories through the library pipeline in strict mode (the demo's own
/// rollouts must all score, so any skip is an error, not a footnote).
pub fn score_with(
    tok: &TextTokenizer,
    policy: &dyn LogprobBackend,
    reference: &dyn LogprobBackend,
    trajectories: &[Trajectory],
) -> Result<Vec<LogprobRecord>> {
    let encoder = chat_encoder(tok)?;
    let run = pipeline::score_trajectories(
        trajectories,
        &encoder,
        policy,
        reference,
        &PipelineOptions {
            strict: true,
            batch_size: 128,
            ..PipelineOptions::default()
        },
        &mut |_| {},
    )
    .map_err(|e| AgentError::Invalid(format!("scoring the demo trajectories: {e}")))?;
    Ok(run.records)
}

fn load_engine(dir: &Path) -> Result<LocalEngine> {
    LocalEngine::load(dir, EngineOptions::default())
        .map_err(|e| AgentError::Invalid(format!("loading {}: {e}", dir.display())))
}

/// Scores trajectories with a checkpoint pair (see [`score_with`]).
pub fn score_trajectories(
    policy_dir: &Path,
    reference_dir: &Path,
    trajectories: &[Trajectory],
) -> Result<Vec<LogprobRecord>> {
    let tok = TextTokenizer::from_dir(policy_dir)?;
    let policy = load_engine(policy_dir)?;
    let reference = load_engine(reference_dir)?;
    score_with(&tok, &policy, &reference, trajectories)
}

/// A pair opened for evaluation: how it was trained, its two checkpoints and the tokenizer.
pub(crate) struct OpenedPair {
    /// The training configuration (map distribution, style, β).
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

/// Writes `items` as JSON lines, atomically.
pub(crate) fn write_jsonl<T: Serialize>(path: &Path, items: &[T]) -> Result<()> {
    let mut buf = Vec::new();
    for r in items {
        serde_json::to_writer(&mut buf, r).map_err(|source| AgentError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        buf.push(b'\n');
    }
    write_bytes(path, &buf)
}

/// Wall-clock seconds of the demo's phases.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Timings {
    /// Projecting the reference and solving the soft values, both halves of the maps
    /// together (they run in the two lanes of the rollout phase, so this is part of
    /// `rollout_s`).
    pub projection_s: f64,
    /// The projection and the three players' rollouts, in two lanes side by side (wall time
    /// of the whole phase).
    pub rollout_s: f64,
    /// Prefilling the reference on every rollout and probing every step (soft truth); the
    /// scoring reuses the reference's logits and probes.
    pub soft_truth_s: f64,
    /// Scoring every trajectory through the pipeline (the policy's engine runs, unless its
    /// weights are the reference's; the reference's and the oracle's numbers come from the
    /// soft-truth pass).
    pub score_s: f64,
    /// Evaluating.
    pub eval_s: f64,
    /// Everything.
    pub total_s: f64,
}

/// Runs the demo; returns the summary (also written to `out/summary.json`).
pub fn run(opts: &DemoOptions) -> Result<DemoSummary> {
    let started = Instant::now();
    let OpenedPair {
        train,
        manifest,
        policy_dir,
        reference_dir,
        tok,
        policy,
        reference,
    } = open_pair(&opts.pair, opts.policy.as_deref(), &opts.out)?;
    let style = train.style;
    let beta = train.beta;
    let sampler = Sampler::new(&tok, crate::tokenizer::END_OF_TURN, style)?;
    let lakes = heldout_lakes(&train, opts.seed, opts.maps)?;
    let policy_m = policy.inference_model()?;
    let reference_m = reference.inference_model()?;
    let trie = MoveTrie::new();
    let mut timings = Timings::default();

    // Two lanes of equal work run side by side (each alone leaves part of the two cores
    // idle: sampling is mostly single-threaded element-wise work). Each lane projects the
    // reference onto half of the maps and plays the oracle there (it needs the projection),
    // then plays one checkpoint on every map. Every rollout has its own seed, so how the work
    // is split changes no result.
    let n = opts.samples.max(1);
    let t = Instant::now();
    let oracle_jobs = jobs(&lakes, n, opts.seed ^ 0x0AC1E, Player::Oracle.name());
    let half = lakes.len().div_ceil(2);
    let oracle_half = |maps: std::ops::Range<usize>| -> Result<_> {
        let t = Instant::now();
        if maps.is_empty() {
            return Ok((
                Vec::new(),
                ProjectionCost::default(),
                0.0,
                (Vec::new(), Vec::new()),
            ));
        }
        let (truths, cost) = project(&reference_m, &lakes[maps.clone()], style, beta, &trie)?;
        let projection_s = t.elapsed().as_secs_f64();
        let job_maps: Vec<&MapTruth> = (0..maps.len() * n).map(|j| &truths[j / n]).collect();
        let (mut rolls, mut steps) = (Vec::new(), Vec::new());
        let half_jobs = &oracle_jobs[maps.start * n..maps.end * n];
        for (chunk, chunk_maps) in half_jobs
            .chunks(opts.batch.max(1))
            .zip(job_maps.chunks(opts.batch.max(1)))
        {
            let (r, s) = oracle_rollouts(
                &reference_m,
                &sampler,
                chunk,
                chunk_maps,
                beta,
                &trie,
                &SampleConfig::for_style(style),
            )?;
            rolls.extend(r);
            steps.extend(s);
        }
        Ok((truths, cost, projection_s, (rolls, steps)))
    };
    let (lane_a, lane_b) = rayon::join(
        || -> Result<_> {
            let orc = oracle_half(0..half)?;
            let pol = rollouts(
                &policy_m, &sampler, &lakes, n, opts.seed, opts.batch, "policy",
            )?;
            Ok((orc, pol))
        },
        || -> Result<_> {
            let orc = oracle_half(half..lakes.len())?;
            let refr = rollouts(
                &reference_m,
                &sampler,
                &lakes,
                n,
                opts.seed ^ 0xF00D,
                opts.batch,
                "reference",
            )?;
            Ok((orc, refr))
        },
    );
    let ((oa, mut pol), (ob, mut refr)) = (lane_a?, lane_b?);
    let (mut maps, mut cost, mut projection_s, (mut orc, mut oracle_steps)) = oa;
    let (maps_b, cost_b, projection_b, (orc_b, steps_b)) = ob;
    maps.extend(maps_b);
    cost.add(&cost_b);
    projection_s += projection_b;
    orc.extend(orc_b);
    oracle_steps.extend(steps_b);
    let job_maps: Vec<&MapTruth> = (0..lakes.len() * n).map(|j| &maps[j / n]).collect();
    timings.projection_s = projection_s;
    timings.rollout_s = t.elapsed().as_secs_f64();

    // Hard truth, then the soft truth of every step (one probing pass over all rollouts).
    let mut labeled: Vec<Vec<Labeled>> = Vec::with_capacity(3);
    for r in [&mut orc, &mut pol, &mut refr] {
        labeled.push(eval::label(&lakes, r, n)?);
    }
    // The soft truth prefills the reference on every rollout and probes every decision
    // point; the reference's records and the oracle's need exactly those numbers, so they
    // come from that pass ([`PrefilledBackend`], [`OracleBackend::with_prefilled`]) and the
    // reference runs over the rollouts once. Both phases run in two lanes (each alone
    // leaves part of the two cores idle).
    let trajs = |ls: &[Labeled]| -> Vec<Trajectory> {
        ls.iter().map(|l| l.rollout.trajectory.clone()).collect()
    };
    let all: Vec<Rollout> = labeled
        .iter()
        .flatten()
        .map(|l| l.rollout.clone())
        .collect();
    let all_maps: Vec<&MapTruth> = (0..3).flat_map(|_| job_maps.iter().copied()).collect();
    let t = Instant::now();
    let half = all.len() / 2;
    let truth_of = |range: std::ops::Range<usize>| {
        rollout_truth_prefilled(
            &reference_m,
            &all[range.clone()],
            &all_maps[range],
            &sampler,
            &trie,
        )
    };
    let (first, second) = rayon::join(|| truth_of(0..half), || truth_of(half..all.len()));
    let ((soft, mut prefilled), (soft_b, prefilled_b)) = (first?, second?);
    prefilled.merge(prefilled_b);
    timings.soft_truth_s = t.elapsed().as_secs_f64();
    let mut soft = soft.into_iter().chain(soft_b);
    for l in labeled.iter_mut().flatten() {
        l.truth.soft = soft.next().unwrap_or_default();
    }

    // Scoring, in two lanes: the policy's rollouts; the reference's and the oracle's.
    let t = Instant::now();
    let ref_engine = load_engine(&reference_dir)?;
    let pol_engine = load_engine(&policy_dir)?;
    let ref_backend = PrefilledBackend::new(&prefilled, ref_engine.fingerprint());
    let map_refs: Vec<&MapTruth> = maps.iter().collect();
    let oracle_backend = OracleBackend::new(
        &reference_m,
        &ref_engine.fingerprint(),
        style,
        beta,
        &lakes,
        &map_refs,
    )
    .map_err(AgentError::Invalid)?
    .with_prefilled(&prefilled);
    // A policy whose weights are the reference's, byte for byte, with the same config,
    // dtype and device (the engines' fingerprints; a pair whose RL kept no iterate) is the
    // same function: its numbers are the reference's, taken from the same pass, so PA is
    // exactly 0 on every action (two passes would round apart by ~1e-6 where their attention
    // takes different kernel paths) and the policy's pass is not run.
    let same_function = pol_engine.fingerprint() == ref_engine.fingerprint()
        && eval::same_weights(&policy_dir, &reference_dir);
    let pol_backend: &(dyn LogprobBackend + Sync) = if same_function {
        &ref_backend
    } else {
        &pol_engine
    };
    let (pair_records, others) = rayon::join(
        || score_with(&tok, pol_backend, &ref_backend, &trajs(&labeled[1])),
        || -> Result<_> {
            Ok((
                score_with(&tok, pol_backend, &ref_backend, &trajs(&labeled[2]))?,
                score_with(&tok, &oracle_backend, &ref_backend, &trajs(&labeled[0]))?,
            ))
        },
    );
    let (pair_records, (ref_records, oracle_records)) = (pair_records?, others?);
    timings.score_s = t.elapsed().as_secs_f64();

    let mut labeled = labeled.into_iter();
    let mut next = || labeled.next().unwrap_or_default();
    let runs = vec![
        PlayerRun {
            player: Player::Oracle,
            labeled: next(),
            records: oracle_records,
            oracle_steps: Some(oracle_steps),
        },
        PlayerRun {
            player: Player::Policy,
            labeled: next(),
            records: pair_records,
            oracle_steps: None,
        },
        PlayerRun {
            player: Player::Reference,
            labeled: next(),
            records: ref_records,
            oracle_steps: None,
        },
    ];
    let t = Instant::now();
    let mut truths = Vec::new();
    for run in &runs {
        let dir = opts.out.join(run.player.name());
        std::fs::create_dir_all(&dir).map_err(|source| AgentError::Io {
            path: dir.clone(),
            source,
        })?;
        let trajectories: Vec<Trajectory> = trajs(&run.labeled);
        crate::episode::write_chat_jsonl(&dir.join("trajectories.jsonl"), &trajectories)?;
        write_jsonl(&dir.join("records.jsonl"), &run.records)?;
        truths.extend(run.labeled.iter().map(|l| l.truth.clone()));
    }
    crate::episode::write_truth_jsonl(&opts.out.join("ground_truth.jsonl"), &truths)?;
    let cx = eval::EvalContext {
        opts,
        train: &train,
        manifest: &manifest,
        policy_dir: &policy_dir,
        projection: cost,
        maps: &maps,
        policy_scored_by_reference: same_function,
    };
    let mut summary = eval::summarise(&cx, &runs)?;
    timings.eval_s = t.elapsed().as_secs_f64();
    timings.total_s = started.elapsed().as_secs_f64();
    summary.timings = timings;
    crate::agent::write_json(
        &opts.out.join("summary.json"),
        &serde_json::to_value(&summary).map_err(|source| AgentError::Json {
            path: opts.out.join("summary.json"),
            source,
        })?,
    )?;
    Ok(summary)
}
