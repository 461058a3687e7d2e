//! Post-training of the gym pair (`padv gym train`): SFT of the reference on an imperfect
//! expert's demonstrations ([`sft`]), then KL-regularised on-policy RL of the policy from the
//! reference ([`rl`]). Everything is deterministic for [`TrainConfig::seed`].
//!
//! Output directory:
//! - `tokenizer/`: the gym tokenizer files;
//! - `reference/`, `policy/`: Hugging Face checkpoint directories;
//! - `policy-iter-NNNN/`: intermediate policies (the iterations in [`TrainConfig::save_at`]);
//! - `policy-last/`: the last RL iterate, when `keep_best` kept an earlier one as `policy/`;
//! - `train_log.jsonl`: one [`LogEntry`] per SFT step / RL iteration;
//! - `manifest.json`: the configuration, provenance, wall time and final statistics.

pub mod batch;
pub mod log;
pub mod monitor;
pub mod rl;
pub mod sft;

use std::path::{Path, PathBuf};
use std::time::Instant;

use padv_core::eval::SplitMix64;
use padv_engine::tokenize::{Segment, TextTokenizer};
use serde::{Deserialize, Serialize};

pub use log::{LogEntry, TrainLog};
pub use monitor::{validation_map_seed, KlMeasurement, KlMonitor, MonitorConfig};
pub use rl::{heldout_map_seed, train_map_seed, LrSchedule, RlConfig, RlOutcome};
pub use sft::SftConfig;

use crate::agent::{write_json, Agent, AgentConfig, AgentError, Result};
use crate::lake::{Lake, LakeConfig};
use crate::protocol::ActionStyle;
use crate::sample::Sampler;

/// Shape of the agent's decoder (the vocabulary comes from the tokenizer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelShape {
    /// Width.
    pub hidden_size: usize,
    /// Blocks.
    pub num_layers: usize,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads.
    pub num_kv_heads: usize,
    /// MLP width.
    pub intermediate_size: usize,
}

impl Default for ModelShape {
    fn default() -> Self {
        let t = AgentConfig::tiny(0);
        ModelShape {
            hidden_size: t.hidden_size,
            num_layers: t.num_layers,
            num_heads: t.num_heads,
            num_kv_heads: t.num_kv_heads,
            intermediate_size: t.intermediate_size,
        }
    }
}

/// Everything that determines a trained pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Master seed (initialisation, maps, expert, sampling, slips).
    pub seed: u64,
    /// Map distribution and dynamics.
    pub lake: LakeConfig,
    /// KL coefficient β of the RL objective (and of PA).
    pub beta: f64,
    /// How actions are written (pairs trained before styles existed are terse).
    #[serde(default)]
    pub style: ActionStyle,
    /// Decoder shape.
    pub model: ModelShape,
    /// SFT of the reference.
    pub sft: SftConfig,
    /// RL of the policy.
    pub rl: RlConfig,
    /// RL iterations after which the policy is saved as `policy-iter-NNNN`.
    pub save_at: Vec<usize>,
    /// Distance to the optimum measured during RL (off for pairs trained before it existed).
    #[serde(default)]
    pub monitor: MonitorConfig,
}

impl TrainConfig {
    /// The committed pairs' recipe with `lake` and `style`: 150 RL iterations of 6 maps ×
    /// 8 rollouts, cosine learning-rate decay, `KL(π_θ ‖ π_o)` measured every 10 iterations
    /// on 32 validation maps × 4 rollouts and the closest policy kept; the early (10 %) and
    /// middle (50 %) policies are saved too.
    pub fn new(seed: u64, lake: LakeConfig, beta: f64, style: ActionStyle) -> Self {
        let rl = RlConfig {
            iterations: 150,
            maps_per_iteration: 6,
            max_action_tokens: style.max_action_tokens(),
            schedule: LrSchedule::Cosine,
            keep_best: true,
            ..RlConfig::default()
        };
        let save_at = vec![(rl.iterations / 10).max(1), (rl.iterations / 2).max(1)];
        TrainConfig {
            seed,
            lake,
            beta,
            style,
            model: ModelShape::default(),
            sft: SftConfig::default(),
            rl,
            save_at,
            monitor: MonitorConfig {
                maps: 32,
                rollouts: 4,
                every: 10,
            },
        }
    }
}

/// Where the last RL iterate goes when `keep_best` kept an earlier one as `policy/`.
pub const LAST_POLICY_DIR: &str = "policy-last";

/// The directory of the intermediate policy saved after RL iteration `it`.
pub fn intermediate_dir(out: &Path, it: usize) -> PathBuf {
    out.join(format!("policy-iter-{it:04}"))
}

/// What [`train_pair`] produced.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The log.
    pub log: Vec<LogEntry>,
    /// Wall time in seconds.
    pub wall_s: f64,
    /// Mean reward of the expert demonstrations.
    pub expert_success: f64,
}

/// Expert demonstrations on training maps, tokenised with the scorer's chat tokenisation.
pub fn demonstrations(
    cfg: &TrainConfig,
    tok: &TextTokenizer,
    sampler: &Sampler,
) -> Result<(Vec<Segment>, f64)> {
    let expert = crate::expert::Expert::default();
    let mut out = Vec::with_capacity(cfg.sft.episodes);
    let mut success = 0.0;
    let mut rng = SplitMix64::new(cfg.seed ^ 0x5F7_0000);
    for m in 0..cfg.sft.episodes {
        let s = train_map_seed(cfg.seed, 0, m);
        let lake = Lake::generate(&cfg.lake, s)?;
        let values = crate::solver::solve(&lake);
        let traj = sft::play_scripted(
            &lake,
            cfg.style,
            format!("sft-{m}"),
            format!("{s:x}"),
            &mut rng,
            |l, st, r| expert.action_text(l, &values, st, cfg.style, r),
        );
        success += traj.reward.unwrap_or(0.0);
        let tokens = tok.tokenize_chat(sampler.template(), &traj, usize::MAX)?;
        let Some(seq) = tokens.single().cloned() else {
            return Err(crate::agent::AgentError::Invalid(format!(
                "demonstration {}: the chat template rendered it as per-turn segments",
                traj.id
            )));
        };
        out.push(seq);
    }
    Ok((out, success / cfg.sft.episodes.max(1) as f64))
}

/// CPU time (user + system) this process has used, from `/proc/self/stat`; `None` where
/// that file does not exist. Recorded next to the wall time because a shared machine can
/// stretch the wall time while the work stays the same.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Reads `manifest.json` of a pair: the training configuration.
pub fn read_manifest(pair: &Path) -> Result<(TrainConfig, serde_json::Value)> {
    let path = pair.join("manifest.json");
    if !path.exists() {
        return Err(AgentError::Invalid(format!(
            "no trained pair at {} (no manifest.json): train one with `padv gym train --out {}` \
             or point --pair at one",
            pair.display(),
            pair.display()
        )));
    }
    let bytes = std::fs::read(&path).map_err(|source| AgentError::Io {
        path: path.clone(),
        source,
    })?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|source| AgentError::Json {
            path: path.clone(),
            source,
        })?;
    let cfg = serde_json::from_value(value.get("config").cloned().unwrap_or_default())
        .map_err(|source| AgentError::Json { path, source })?;
    Ok((cfg, value))
}

/// The first setting besides SFT and RL in which an earlier run's configuration differs
/// from `cfg` (the ones that decide what a reference is a model of).
fn first_difference(cfg: &TrainConfig, theirs: &TrainConfig) -> Option<&'static str> {
    if theirs.seed != cfg.seed {
        Some("seed")
    } else if theirs.lake != cfg.lake {
        Some("lake")
    } else if theirs.style != cfg.style {
        Some("style")
    } else if theirs.model != cfg.model {
        Some("model")
    } else {
        None
    }
}

/// The reference of an earlier run that continued SFT starts from, and that run's SFT
/// settings; an error naming the first differing setting otherwise.
fn initial_reference(
    cfg: &TrainConfig,
    earlier: &Path,
    tok: &TextTokenizer,
) -> Result<(Agent, SftConfig)> {
    let (theirs, _) = read_manifest(earlier)?;
    if let Some(field) = first_difference(cfg, &theirs) {
        return Err(AgentError::Invalid(format!(
            "{}: config.{field} differs from this run's, so SFT cannot continue from its \
             reference",
            earlier.join("manifest.json").display()
        )));
    }
    Ok((Agent::load(&earlier.join("reference"), tok)?, theirs.sft))
}

/// The expert success recorded by an earlier run whose reference can stand in for this
/// run's SFT, and the SFT settings of the run that run's SFT continued (if any); an error
/// naming the first differing setting otherwise.
fn check_reusable(cfg: &TrainConfig, earlier: &Path) -> Result<(f64, Option<SftConfig>)> {
    let (theirs, manifest) = read_manifest(earlier)?;
    let path = earlier.join("manifest.json");
    let differs = first_difference(cfg, &theirs).or((theirs.sft != cfg.sft).then_some("sft"));
    if let Some(field) = differs {
        return Err(AgentError::Invalid(format!(
            "{}: config.{field} differs from this run's, so its reference is not the one SFT \
             would train here",
            path.display()
        )));
    }
    let success = manifest["expert_success_on_demonstrations"]
        .as_f64()
        .ok_or_else(|| {
            AgentError::Invalid(format!(
                "{}: no expert_success_on_demonstrations",
                path.display()
            ))
        })?;
    let continued =
        serde_json::from_value(manifest["reference_initialised_from"]["its_sft"].clone()).ok();
    Ok((success, continued))
}

/// Trains the reference and the policy into `out` (see the module doc for the layout).
/// `provenance` (e.g. the git commit and the command line) is copied into the manifest.
///
/// With `reuse_reference` (an earlier output directory), SFT is skipped and that run's
/// reference is copied, after checking that its manifest has the same seed, map family,
/// model shape and SFT settings (so the copy is exactly what SFT would produce here).
pub fn train_pair(
    cfg: &TrainConfig,
    out: &Path,
    provenance: serde_json::Value,
    reuse_reference: Option<&Path>,
) -> Result<TrainOutcome> {
    let started = Instant::now();
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| AgentError::Io { path, source }
    };
    std::fs::create_dir_all(out).map_err(io(out))?;
    let tok_dir = out.join("tokenizer");
    std::fs::create_dir_all(&tok_dir).map_err(io(&tok_dir))?;
    crate::tokenizer::write_tokenizer_files(&tok_dir)?;
    let tok = TextTokenizer::from_dir(&tok_dir)?;
    let sampler = Sampler::new(&tok, crate::tokenizer::END_OF_TURN, cfg.style)?;
    let shape = AgentConfig {
        hidden_size: cfg.model.hidden_size,
        num_layers: cfg.model.num_layers,
        num_heads: cfg.model.num_heads,
        num_kv_heads: cfg.model.num_kv_heads,
        intermediate_size: cfg.model.intermediate_size,
        ..AgentConfig::tiny(tok.vocab_size())
    };
    let mut log = TrainLog::create(&out.join("train_log.jsonl"))?;

    let ref_dir = out.join("reference");
    let mut earlier_sft = None;
    let (reference, expert_success) = match reuse_reference {
        Some(earlier) => {
            let (expert_success, continued) = check_reusable(cfg, earlier)?;
            earlier_sft = continued;
            let reference = Agent::load(&earlier.join("reference"), &tok)?;
            tracing::info!("reusing the reference of {}", earlier.display());
            (reference, expert_success)
        }
        None => {
            let reference = match &cfg.sft.init_from {
                Some(earlier) => {
                    let (agent, theirs) = initial_reference(cfg, Path::new(earlier), &tok)?;
                    tracing::info!("continuing SFT from the reference of {earlier}");
                    earlier_sft = Some(theirs);
                    agent
                }
                None => Agent::init(&shape, &tok, cfg.seed)?,
            };
            tracing::info!(
                "agent: {} parameters; generating {} expert demonstrations",
                reference.num_parameters(),
                cfg.sft.episodes
            );
            let (demos, expert_success) = demonstrations(cfg, &tok, &sampler)?;
            tracing::info!("expert success on its demonstrations: {expert_success:.3}");
            sft::sft(
                &reference,
                &demos,
                &cfg.sft,
                cfg.seed ^ 0x5F7,
                sampler.pad_id(),
                &mut log,
                started,
            )?;
            (reference, expert_success)
        }
    };
    reference.save(&ref_dir, &tok)?;
    // Written once SFT ends (so an interrupted RL run leaves a reference that
    // `--reuse-reference` accepts), then replaced when RL ends.
    let parameters = reference.num_parameters();
    let manifest = |outcome: Option<&RlOutcome>, log: Option<&TrainLog>, wall_s: f64| {
        let mut m = serde_json::json!({
            "what": "padv gym pair: reference = SFT on imperfect-expert demonstrations; policy = KL-regularised on-policy RL from the reference",
            "config": cfg,
            "agent": shape,
            "parameters": parameters,
            "expert_success_on_demonstrations": expert_success,
            "reference_reused_from": reuse_reference.map(|p| p.display().to_string()),
            "reference_initialised_from": cfg.sft.init_from.as_ref().map(|p| serde_json::json!({
                "pair": p,
                "its_sft": earlier_sft,
            })),
            "wall_time_s": wall_s,
            "cpu_time_s": cpu_seconds(),
            "rl_outcome": outcome,
            "training_log": "train_log.jsonl",
            "final": log.and_then(|l| l.entries.last()),
            "intermediate_policies": cfg.save_at.iter().map(|&it| intermediate_dir(Path::new(""), it)).collect::<Vec<_>>(),
            "map_seeds": "training maps: train_map_seed(seed, iteration, m) (bit 62 clear); held-out maps: heldout_map_seed(seed, i) (bit 62 set)",
            "provenance": provenance,
        });
        if outcome.is_none() {
            m["status"] =
                "written when SFT ended: RL has not finished (policy/ is not final)".into();
        }
        m
    };
    write_json(
        &out.join("manifest.json"),
        &manifest(None, None, started.elapsed().as_secs_f64()),
    )?;

    let policy = Agent::load(&ref_dir, &tok)?;
    let ref_model = reference.inference_model()?;
    let monitor = if cfg.monitor.maps > 0 {
        tracing::info!(
            "projecting the reference on {} validation maps",
            cfg.monitor.maps
        );
        Some(KlMonitor::new(
            &ref_model,
            &sampler,
            &cfg.lake,
            cfg.beta,
            &cfg.monitor,
            cfg.seed,
        )?)
    } else {
        None
    };
    if cfg.rl.keep_best && monitor.is_none() {
        return Err(AgentError::Invalid(
            "rl.keep_best needs the monitor (monitor.maps > 0)".into(),
        ));
    }
    let cx = rl::RlContext {
        policy: &policy,
        reference: &ref_model,
        sampler: &sampler,
        lake: &cfg.lake,
        beta: cfg.beta,
        seed: cfg.seed,
        monitor: monitor.as_ref(),
    };
    let outcome = rl::rl(
        &cx,
        &cfg.rl,
        &cfg.save_at,
        &mut log,
        started,
        |it, p| p.save(&intermediate_dir(out, it), &tok),
        |_, p| p.save(&out.join("policy"), &tok),
    )?;
    let last = outcome.stopped_at.unwrap_or(cfg.rl.iterations);
    if !cfg.rl.keep_best {
        policy.save(&out.join("policy"), &tok)?;
    } else if outcome.kept_iteration != last {
        // The last iterate is what RL produced even when an earlier one was closer to the
        // optimum: kept for runs with `--policy`, never silently discarded.
        policy.save(&out.join(LAST_POLICY_DIR), &tok)?;
    }
    let wall_s = started.elapsed().as_secs_f64();

    write_json(
        &out.join("manifest.json"),
        &manifest(Some(&outcome), Some(&log), wall_s),
    )?;
    Ok(TrainOutcome {
        log: log.entries,
        wall_s,
        expert_success,
    })
}
