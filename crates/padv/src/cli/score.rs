//! `padv score`: trajectories + a policy/reference pair of local checkpoints -> log-prob
//! records, through `padv_engine::pipeline` (the same path the demo and the server use).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use padv_core::eval::EvalKind;
use padv_core::record::cache::LogprobCache;
use padv_core::record::write_records_atomic;
use padv_core::render::RendererKind;
use padv_core::LogprobBackend;
use padv_engine::pipeline::{
    score_trajectories, PipelineError, PipelineOptions, SkipReport, DEFAULT_BATCH_SIZE,
};
use padv_engine::tokenize::{
    check_same_vocabulary, TextTokenizer, TokenizeOptions, DEFAULT_MAX_LENGTH,
};

use super::engine_opts::{load_engine, EngineArgs};
use super::eval::{evaluate_records, EvalOptions};
use super::inputs::read_trajectories;
use super::names::named;
use super::progress::{human_duration, Reporter};
use super::run_info::{argv, ModelInfo, RunInfo};
use super::TrajectoryInput;

/// Arguments of `padv score`.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Policy checkpoint: a local Hugging Face folder, or `org/name` in the local HF cache.
    /// With `--policy-endpoint` (remote scoring) it is optional and only supplies the tokenizer.
    #[arg(long, required_unless_present = "policy_endpoint")]
    policy: Option<String>,
    /// Reference checkpoint (the model the policy was regularised towards).
    #[arg(long, required_unless_present = "reference_endpoint")]
    reference: Option<String>,
    #[command(flatten)]
    remote: super::remote_opts::RemoteArgs,
    #[command(flatten)]
    input: TrajectoryInput,
    /// Output folder (created if missing): records.jsonl, run.json, cache/, and eval-<kind>.json.
    /// Files inside it are never read as input, and eval-*.json of an earlier run are removed.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// How trajectories become tokens.
    #[arg(long, value_enum, default_value_t = RendererKind::Paper)]
    renderer: RendererKind,
    /// Keep only the last N tokens of each trajectory (as the reference implementation does).
    #[arg(long, default_value_t = DEFAULT_MAX_LENGTH)]
    max_length: usize,
    /// Trajectories per backend batch (a remote backend sends a batch concurrently).
    #[arg(long, default_value_t = DEFAULT_BATCH_SIZE)]
    batch_size: usize,
    #[command(flatten)]
    chat: super::chat_opts::ChatArgs,
    #[command(flatten)]
    engine: EngineArgs,
    /// Evaluations to run on the records afterwards: their tables are printed and their JSON
    /// written to OUT/eval-<kind>.json.
    #[arg(long, value_parser = named::<EvalKind>(), value_delimiter = ',')]
    eval: Vec<EvalKind>,
    #[command(flatten)]
    eval_opts: EvalOptions,
    /// Do not read or write the cache in OUT/cache.
    #[arg(long)]
    no_cache: bool,
    /// Also write OUT/report.html: the evaluations of --eval as one HTML page (plots, step
    /// traces with each step's text; heat maps with --grid).
    #[arg(long, requires = "eval")]
    report: bool,
}

/// Run `padv score`.
pub fn run(args: ScoreArgs) -> anyhow::Result<()> {
    // Flags first: a bad β should not cost two model loads.
    let eval_cfg = if args.eval.is_empty() {
        None
    } else {
        Some(args.eval_opts.config()?)
    };
    let inputs = read_trajectories(&args.input, &args.out)?;
    if inputs.trajectories.is_empty() {
        anyhow::bail!("no trajectories in the input\n{}", inputs.skips);
    }

    let (policy_spec, reference_spec, policy_dir, reference_dir, mut policy, mut reference, cap) =
        load_pair(&args)?;
    // Remote servers refuse sequences longer than their context: truncate to what they take,
    // as local scoring does with --max-length, instead of skipping those trajectories.
    let max_length = match cap {
        Some(cap) if cap < args.max_length => {
            tracing::warn!(
                "--max-length {} is longer than the servers accept; truncating to {cap} tokens",
                args.max_length
            );
            cap
        }
        _ => args.max_length,
    };
    let tok = TextTokenizer::from_dir(&policy_dir)
        .with_context(|| format!("loading the tokenizer from {}", policy_dir.display()))?;
    if reference_dir != policy_dir {
        let ref_tok = TextTokenizer::from_dir(&reference_dir).with_context(|| {
            format!(
                "loading the reference tokenizer from {}",
                reference_dir.display()
            )
        })?;
        check_same_vocabulary(&tok, &ref_tok).map_err(|e| {
            anyhow::anyhow!(
                "policy and reference tokenizers differ: {e}. PA compares the two models token by \
                 token, so both must score the same token ids"
            )
        })?;
    }

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    remove_stale_evaluations(&args.out)?;
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
            max_length,
            chat: args.chat.options()?,
        })
        .context("preparing the renderer")?;

    let mut reporter = Reporter::new(inputs.trajectories.len());
    let result = score_trajectories(
        &inputs.trajectories,
        &encoder,
        policy.as_mut(),
        reference.as_mut(),
        &PipelineOptions {
            strict: args.input.strict,
            cache: cache.as_ref(),
            batch_size: args.batch_size,
        },
        &mut |p| reporter.update(p),
    );
    reporter.finish();
    let run = match result {
        Ok(run) => run,
        Err(PipelineError::NothingScored { total, skips }) => {
            let mut all = inputs.skips;
            all.merge(skips);
            anyhow::bail!("none of the {total} trajectories could be scored:\n{all}");
        }
        Err(e) => return Err(e.into()),
    };
    let mut skips = inputs.skips;
    skips.merge(run.skips);

    let records_path = args.out.join("records.jsonl");
    write_records_atomic(&records_path, &run.records)
        .with_context(|| format!("writing {}", records_path.display()))?;
    let info = RunInfo {
        padv_version: env!("CARGO_PKG_VERSION"),
        argv: argv(),
        inputs: inputs.files,
        policy: model_info(&policy_spec, &policy_dir, policy.as_ref()),
        reference: model_info(&reference_spec, &reference_dir, reference.as_ref()),
        renderer: args.renderer.to_string(),
        max_length,
        batch_size: args.batch_size,
        cache: cache.is_some(),
        stats: run.stats,
        skips,
    };
    super::output::write_json(&args.out.join("run.json"), &info)?;
    report_on_stderr(&info, &records_path);

    if let Some(cfg) = eval_cfg {
        let mut reports = Vec::with_capacity(args.eval.len());
        for (i, kind) in args.eval.iter().enumerate() {
            let report = evaluate_records(&run.records, *kind, &cfg, Some(&args.out))?;
            let sep = if i == 0 { "" } else { "\n" };
            super::output::print_text(&format!("{sep}{}", report.to_table()))?;
            reports.push(report);
        }
        if args.report {
            let files: Vec<PathBuf> = info.inputs.iter().map(|f| PathBuf::from(&f.path)).collect();
            super::report::score_report(
                &args.out,
                &run.records,
                &reports,
                &inputs.trajectories,
                &files,
            )?;
        }
    }
    Ok(())
}

/// The two backends: local checkpoints, or vLLM/SGLang endpoints (`--policy-endpoint`,
/// `--reference-endpoint`) with the tokenizer from `--tokenizer` or the local `--policy` folder.
/// Returns what was given for each model, the folders holding their tokenizers, the backends,
/// and (remote) the longest sequence the servers accept.
#[allow(clippy::type_complexity)]
fn load_pair(
    args: &ScoreArgs,
) -> anyhow::Result<(
    String,
    String,
    PathBuf,
    PathBuf,
    Box<dyn LogprobBackend>,
    Box<dyn LogprobBackend>,
    Option<usize>,
)> {
    if args.remote.is_remote() {
        let policy_dir = match &args.policy {
            Some(spec) => Some(
                padv_engine::checkpoint::resolve_model_path(spec)
                    .with_context(|| format!("finding checkpoint {spec:?}"))?,
            ),
            None => None,
        };
        let (tok_dir, policy, reference, cap) = args
            .remote
            .build_with_policy_dir(policy_dir.as_deref())
            .context("connecting to the remote engines")?;
        return Ok((
            args.remote.policy_endpoint.join(","),
            args.remote.reference_endpoint.join(","),
            tok_dir.clone(),
            tok_dir,
            policy,
            reference,
            Some(cap),
        ));
    }
    let (Some(policy_spec), Some(reference_spec)) = (&args.policy, &args.reference) else {
        anyhow::bail!("local scoring needs --policy and --reference (or use --policy-endpoint and --reference-endpoint)");
    };
    let (policy_dir, policy) =
        load_engine(policy_spec, &args.engine).context("loading the policy")?;
    let (reference_dir, reference) =
        load_engine(reference_spec, &args.engine).context("loading the reference")?;
    Ok((
        policy_spec.clone(),
        reference_spec.clone(),
        policy_dir,
        reference_dir,
        policy,
        reference,
        None,
    ))
}

fn model_info(spec: &str, dir: &Path, backend: &dyn LogprobBackend) -> ModelInfo {
    ModelInfo {
        spec: spec.to_string(),
        dir: dir.display().to_string(),
        fingerprint: backend.fingerprint(),
    }
}

/// Removes `eval-*.json` and `report.html` left by an earlier run in `dir`: they describe
/// records this run replaces, and a file that looks current but is not is worse than no file.
fn remove_stale_evaluations(dir: &Path) -> anyhow::Result<()> {
    let stale: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                (n.starts_with("eval-") && n.ends_with(".json")) || n == padv_report::REPORT_FILE
            })
        })
        .collect();
    for path in stale {
        std::fs::remove_file(&path)
            .with_context(|| format!("removing the stale {}", path.display()))?;
        tracing::info!("removed {} from an earlier run", path.display());
    }
    Ok(())
}

/// A summary for the person at the terminal: what was written, and why anything was skipped.
fn report_on_stderr(info: &RunInfo, records_path: &Path) {
    let s = &info.stats;
    eprintln!(
        "padv: scored {} of {} trajectories ({} tokens, {} action tokens, {} from cache) in {}, \
         {:.0} tok/s",
        s.records,
        s.trajectories,
        s.tokens,
        s.action_tokens,
        s.cache_hits,
        human_duration(std::time::Duration::from_secs_f64(s.seconds)),
        s.tokens_per_second
    );
    if !info.skips.is_empty() {
        eprintln!(
            "padv: skipped {}:\n{}",
            info.skips.total(),
            indent(&info.skips)
        );
    }
    if s.action_steps_cut_by_truncation > 0 {
        eprintln!(
            "padv: {} action steps were cut entirely by --max-length {} (they score 0)",
            s.action_steps_cut_by_truncation, info.max_length
        );
    }
    eprintln!("padv: wrote {}", records_path.display());
}

fn indent(skips: &SkipReport) -> String {
    skips
        .to_string()
        .lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
