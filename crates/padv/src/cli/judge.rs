//! `padv judge`: the reward-model and judge baselines.
//!
//! - `--kind outcome-rm --model DIR`: a local sequence-classification reward model
//!   (WildReward-style), one score per trajectory (`padv_engine::classify`);
//! - `--kind prm --endpoint URL --model NAME`: a generative PRM (ThinkPRM-style) over an
//!   OpenAI-compatible API, P(correct) per step (`padv_remote::judge`);
//! - `--kind llm-judge --endpoint URL --model NAME`: a success probability per trajectory;
//! - `padv judge import --scores FILE --name NAME --attach RECORDS`: scores made elsewhere.
//!
//! Scores are written to OUT/scores.jsonl (trajectory id, message index, score) and, with
//! `--attach`, put into log-prob records under the judge's name, where every `padv eval`
//! shows them beside PA.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use padv_core::judge::attach::{attach, read_score_lines, write_score_lines, AttachSummary};
use padv_core::judge::cache::JudgeCache;
use padv_core::judge::prompts::PrmTemplate;
use padv_core::judge::{JudgeName, JudgeScores};
use padv_core::record::{detect_format, read_records, write_records_as, RecordFormat};
use padv_engine::checkpoint::resolve_model_path;
use padv_engine::classify::{run_outcome_rm, SequenceClassifier};
use padv_engine::tokenize::{ChatOptions, TextTokenizer};
use padv_remote::judge::{
    run_judge, HttpJudgeKind, JudgeApi, JudgeClient, JudgeCounts, JudgeOptions,
};
use serde::Serialize;

use super::engine_opts::EngineArgs;
use super::inputs::read_trajectories;
use super::run_info::argv;
use super::TrajectoryInput;

/// Which judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JudgeKind {
    /// A local sequence-classification reward model (`--model DIR`): 1 + Σ sigmoid(logits).
    OutcomeRm,
    /// A generative process reward model over HTTP: P(correct) per step.
    Prm,
    /// An LLM over HTTP asked for the probability of success.
    LlmJudge,
}

impl JudgeKind {
    fn default_name(self) -> &'static str {
        match self {
            JudgeKind::OutcomeRm => "outcome_rm",
            JudgeKind::Prm => "prm",
            JudgeKind::LlmJudge => "llm_judge",
        }
    }
}

/// The ThinkPRM template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PrmTemplateArg {
    /// Per trajectory: failure attribution for Who&When logs, the agent template otherwise.
    Auto,
    /// The agent template (each action a step, observations appended).
    Agent,
    /// The failure-attribution template (every message a step).
    Fa,
}

/// The route of an OpenAI-compatible server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApiArg {
    /// POST /v1/chat/completions (the server applies the chat template).
    Chat,
    /// POST /v1/completions (the prompt as text; see --chat-template-from).
    Completions,
}

/// Arguments of `padv judge`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct JudgeArgs {
    #[command(subcommand)]
    command: Option<JudgeCommand>,
    #[command(flatten)]
    run: JudgeRunArgs,
}

/// `padv judge` subcommands.
#[derive(Debug, Subcommand)]
enum JudgeCommand {
    /// Attach judge scores made elsewhere (JSONL: {"id", "score"} or {"id", "message_index",
    /// "score"} per line) to log-prob records.
    Import(ImportArgs),
}

/// Arguments of a judge run.
#[derive(Debug, Args)]
pub struct JudgeRunArgs {
    /// Which judge.
    #[arg(long, value_enum, required = true)]
    kind: Option<JudgeKind>,
    /// outcome-rm: the classifier checkpoint folder (or `org/name` in the local HF cache);
    /// prm / llm-judge: the served model name sent with every request.
    #[arg(long, required = true)]
    model: Option<String>,
    /// prm / llm-judge: base URL of an OpenAI-compatible server (http://; repeat or
    /// comma-separate for several servers of the same model).
    #[arg(long, value_name = "URL", value_delimiter = ',')]
    endpoint: Vec<String>,
    /// The route to use.
    #[arg(long, value_enum, default_value_t = ApiArg::Chat)]
    api: ApiArg,
    /// Name of the environment variable holding the API key (sent as a bearer token; never
    /// written anywhere).
    #[arg(long, value_name = "NAME")]
    api_key_env: Option<String>,
    /// With --api completions: a folder whose chat template renders the prompt (the judge's
    /// tokenizer folder), as the reference does; without it the prompt is sent as plain text.
    #[arg(long, value_name = "DIR")]
    chat_template_from: Option<PathBuf>,
    /// prm: the ThinkPRM template.
    #[arg(long, value_enum, default_value_t = PrmTemplateArg::Auto)]
    prm_template: PrmTemplateArg,
    /// prm: do not start the answer with "\nLet's verify step by step:" (for servers that
    /// reject vLLM's continue_final_message, e.g. hosted APIs).
    #[arg(long)]
    no_answer_prefix: bool,
    /// New tokens per answer.
    #[arg(long, default_value_t = 4096)]
    max_tokens: u32,
    /// Sampling temperature (0: greedy, as the reference runs ThinkPRM).
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    /// Top log-probs asked per generated token (0: none; the PRM then reads verdict text).
    #[arg(long, default_value_t = 20)]
    top_logprobs: usize,
    /// Requests in flight per server.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Seconds allowed for one request.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Retries of a request after a transport error, 429 or 5xx.
    #[arg(long, default_value_t = 5)]
    retries: usize,
    #[command(flatten)]
    input: Option<TrajectoryInput>,
    /// Output folder: scores.jsonl, judge.json, cache/.
    #[arg(long, value_name = "DIR", required = true)]
    out: Option<PathBuf>,
    /// The judge's name in the records (default: the kind, e.g. `prm`).
    #[arg(long)]
    name: Option<String>,
    /// Log-prob record files (or `padv score` output folders) to put the scores into.
    #[arg(long, value_name = "RECORDS", num_args = 1..)]
    attach: Vec<PathBuf>,
    /// Replace scores the records already have under this name.
    #[arg(long)]
    replace: bool,
    /// Trajectories per batch of requests.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Do not read or write OUT/cache.
    #[arg(long)]
    no_cache: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

/// Arguments of `padv judge import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The scores (JSONL, one value per line, keyed by trajectory id and message index).
    #[arg(long, value_name = "FILE")]
    scores: PathBuf,
    /// The judge's name in the records.
    #[arg(long)]
    name: String,
    /// Log-prob record files (or `padv score` output folders) to put the scores into.
    #[arg(long, value_name = "RECORDS", num_args = 1.., required = true)]
    attach: Vec<PathBuf>,
    /// Replace scores the records already have under this name.
    #[arg(long)]
    replace: bool,
}

/// judge.json.
#[derive(Debug, Serialize)]
struct JudgeRunInfo {
    padv_version: &'static str,
    argv: Vec<String>,
    kind: JudgeKind,
    name: String,
    model: String,
    /// What determines the answers besides the prompts (model content or served model and
    /// generation settings; no URL, no key).
    fingerprint: String,
    trajectories: usize,
    scored: usize,
    failed: usize,
    /// The first failures, with why.
    failures: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    counts: Option<JudgeCounts>,
    attached: Vec<(String, AttachSummary)>,
}

/// Run `padv judge`.
pub fn run(args: JudgeArgs) -> anyhow::Result<()> {
    match args.command {
        Some(JudgeCommand::Import(a)) => import(a),
        None => judge(args.run),
    }
}

fn import(a: ImportArgs) -> anyhow::Result<()> {
    let name = JudgeName::new(&a.name)?;
    let lines = read_score_lines(&a.scores)?;
    for (path, s) in attach_all(&a.attach, name, &lines, &a.scores, a.replace)? {
        report_attach(&path, name, &s);
    }
    Ok(())
}

/// The records file of `path` (a `padv score` output folder means its records.parquet when
/// it has one, else its records.jsonl).
fn records_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        let parquet = path.join(RecordFormat::Parquet.records_file_name());
        if parquet.is_file() {
            parquet
        } else {
            path.join(RecordFormat::Jsonl.records_file_name())
        }
    } else {
        path.to_path_buf()
    }
}

/// Attaches `lines` to every records file; each is checked completely before it is
/// rewritten (atomically).
fn attach_all(
    targets: &[PathBuf],
    name: JudgeName,
    lines: &[padv_core::judge::attach::JudgeScoreLine],
    source: &Path,
    replace: bool,
) -> anyhow::Result<Vec<(String, AttachSummary)>> {
    let mut out = Vec::new();
    for t in targets {
        let path = records_file(t);
        // Written back in the format it was read in (a Parquet file stays Parquet).
        let format = detect_format(&path)?;
        let mut records = read_records(&path)?;
        let summary = attach(&mut records, name, lines, source, replace)
            .with_context(|| format!("attaching to {}", path.display()))?;
        write_records_as(&path, &records, format)
            .with_context(|| format!("writing {}", path.display()))?;
        out.push((path.display().to_string(), summary));
    }
    Ok(out)
}

fn report_attach(path: &str, name: JudgeName, s: &AttachSummary) {
    eprintln!(
        "padv: judge {name} attached to {path}: {} records scored ({} trajectory values, {} step values), {} without",
        s.records_scored, s.trajectory_values, s.step_values, s.records_without
    );
}

fn judge(a: JudgeRunArgs) -> anyhow::Result<()> {
    let (Some(kind), Some(model), Some(out), Some(input)) =
        (a.kind, a.model.clone(), a.out.clone(), a.input.clone())
    else {
        anyhow::bail!("padv judge needs --kind, --model, --input and --out");
    };
    let name = JudgeName::new(a.name.as_deref().unwrap_or(kind.default_name()))?;
    let inputs = read_trajectories(&input, &out)?;
    if inputs.trajectories.is_empty() {
        anyhow::bail!("no trajectories in the input\n{}", inputs.skips);
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let cache = if a.no_cache {
        None
    } else {
        let dir = out.join("cache");
        Some(
            JudgeCache::open(&dir)
                .with_context(|| format!("opening the cache {}", dir.display()))?,
        )
    };
    let ts = &inputs.trajectories;
    let mut bar = super::progress::Counter::new(ts.len(), "judged");
    let (results, fingerprint, counts): (
        Vec<Result<JudgeScores, String>>,
        String,
        Option<JudgeCounts>,
    ) = match kind {
        JudgeKind::OutcomeRm => {
            if !a.endpoint.is_empty() {
                anyhow::bail!("--kind outcome-rm runs a local checkpoint (--model DIR); --endpoint is for prm and llm-judge");
            }
            let dir = resolve_model_path(&model)
                .with_context(|| format!("finding checkpoint {model:?}"))?;
            let clf = SequenceClassifier::load(&dir, a.engine.options()?)
                .with_context(|| format!("loading the reward model {}", dir.display()))?;
            let tok = TextTokenizer::from_dir(&dir)
                .with_context(|| format!("loading the tokenizer from {}", dir.display()))?;
            let r = run_outcome_rm(&clf, &tok, ts, cache.as_ref(), &mut |d, t| bar.update(d, t));
            (
                r.into_iter().map(|x| x.map(|(s, _)| s)).collect(),
                clf.fingerprint().to_string(),
                None,
            )
        }
        JudgeKind::Prm | JudgeKind::LlmJudge => {
            if a.endpoint.is_empty() {
                anyhow::bail!(
                    "--kind {} needs --endpoint URL (an OpenAI-compatible server)",
                    kind.default_name().replace('_', "-")
                );
            }
            let api_key = match &a.api_key_env {
                None => None,
                Some(var) => Some(std::env::var(var).map_err(|_| {
                    anyhow::anyhow!("--api-key-env {var}: the environment variable {var} is not set (or not UTF-8)")
                })?),
            };
            let api = match a.api {
                ApiArg::Chat => JudgeApi::Chat,
                ApiArg::Completions => JudgeApi::Completions,
            };
            if a.chat_template_from.is_some() && api == JudgeApi::Chat {
                anyhow::bail!("--chat-template-from applies to --api completions (with --api chat the server applies its template)");
            }
            let client = JudgeClient::connect(
                &a.endpoint,
                JudgeOptions {
                    api,
                    model: model.clone(),
                    concurrency: a.concurrency,
                    timeout: std::time::Duration::from_secs(a.timeout.max(1)),
                    retries: a.retries,
                    max_tokens: a.max_tokens,
                    temperature: a.temperature,
                    top_logprobs: a.top_logprobs,
                    api_key,
                    ..JudgeOptions::default()
                },
            )?;
            let judge_kind = match kind {
                JudgeKind::Prm => HttpJudgeKind::Prm {
                    template: match a.prm_template {
                        PrmTemplateArg::Auto => None,
                        PrmTemplateArg::Agent => Some(PrmTemplate::Agent),
                        PrmTemplateArg::Fa => Some(PrmTemplate::FailureAttribution),
                    },
                    answer_prefix: !a.no_answer_prefix,
                },
                _ => HttpJudgeKind::LlmJudge,
            };
            let template = match &a.chat_template_from {
                None => None,
                Some(dir) => {
                    let tok = TextTokenizer::from_dir(dir).with_context(|| {
                        format!("loading the chat template from {}", dir.display())
                    })?;
                    Some(
                        tok.chat_template(&ChatOptions::default())
                            .context("compiling the chat template")?,
                    )
                }
            };
            let render = |user: &str| -> Result<String, String> {
                let Some(t) = &template else {
                    return Ok(user.to_string());
                };
                t.render_json(
                    &serde_json::json!([{"role": "user", "content": user}]),
                    true,
                )
                .map(|r| r.text)
            };
            let templater: Option<padv_remote::judge::Templater<'_>> =
                template.as_ref().map(|_| &render as _);
            let (items, counts) = run_judge(
                &client,
                judge_kind,
                ts,
                templater,
                cache.as_ref(),
                a.batch_size,
                &mut |d, t| bar.update(d, t),
            );
            let results = items
                .into_iter()
                .map(|i| {
                    i.scores
                        .ok_or_else(|| i.error.unwrap_or_else(|| "no score".into()))
                })
                .collect();
            (results, client.fingerprint(), Some(counts))
        }
    };
    bar.finish();
    let mut scored: Vec<(String, JudgeScores)> = Vec::new();
    let mut failures = Vec::new();
    for (t, r) in ts.iter().zip(results) {
        match r {
            Ok(s) => scored.push((t.id.clone(), s)),
            Err(e) if input.strict => anyhow::bail!("trajectory {:?}: {e}", t.id),
            Err(e) => failures.push((t.id.clone(), e)),
        }
    }
    let scores_path = out.join("scores.jsonl");
    write_score_lines(&scores_path, &scored)
        .with_context(|| format!("writing {}", scores_path.display()))?;
    let lines = read_score_lines(&scores_path)?;
    let attached = if a.attach.is_empty() {
        Vec::new()
    } else {
        attach_all(&a.attach, name, &lines, &scores_path, a.replace)?
    };
    let n_failed = failures.len();
    let info = JudgeRunInfo {
        padv_version: env!("CARGO_PKG_VERSION"),
        argv: argv(),
        kind,
        name: name.to_string(),
        model,
        fingerprint,
        trajectories: ts.len(),
        scored: scored.len(),
        failed: n_failed,
        failures: failures.into_iter().take(20).collect(),
        counts,
        attached,
    };
    super::output::write_json(&out.join("judge.json"), &info)?;
    eprintln!(
        "padv: judge {name}: scored {} of {} trajectories; wrote {}",
        info.scored,
        info.trajectories,
        scores_path.display()
    );
    if let Some(c) = &info.counts {
        if kind == JudgeKind::Prm {
            eprintln!(
                "padv: PRM steps: {} from log-probs, {} from verdict text (fallback), {} without a verdict (0.5); {} malformed verdicts",
                c.prm_steps_from_logprobs, c.prm_steps_from_text, c.prm_steps_missing, c.prm_malformed_verdicts
            );
        } else if c.llm_unparsable > 0 {
            eprintln!(
                "padv: {} answers had no readable PROBABILITY line",
                c.llm_unparsable
            );
        }
    }
    for (id, why) in info.failures.iter().take(5) {
        eprintln!("padv: not scored: {id:?}: {why}");
    }
    for (path, s) in &info.attached {
        report_attach(path, name, s);
    }
    if info.scored == 0 {
        anyhow::bail!(
            "the judge scored none of the {} trajectories (see {})",
            info.trajectories,
            out.join("judge.json").display()
        );
    }
    Ok(())
}
