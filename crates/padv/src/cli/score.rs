//! `padv score`: trajectories + a policy/reference pair of local checkpoints -> log-prob
//! records, through `padv_engine::pipeline` (the same path the demo and the server use).
//!
//! With `--reference-merge METHOD:ALPHA[,…]` the reference is replaced by merged references
//! π_α computed in memory (`padv_engine::merge`), one run per α, each in its own folder
//! `OUT/ref-<label>/` (records.jsonl, run.json, eval-*.json), sharing `OUT/cache/` (the
//! policy is computed once; each merged reference is cached under its own fingerprint), and
//! `OUT/sweep.json` summarises them.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use padv_core::eval::EvalKind;
use padv_core::record::cache::LogprobCache;
use padv_core::record::{write_records_as, RecordFormat};
use padv_core::render::RendererKind;
use padv_core::LogprobBackend;
use padv_engine::pipeline::{
    score_trajectories, PipelineError, PipelineOptions, SkipReport, DEFAULT_BATCH_SIZE,
};
use padv_engine::tokenize::{TextTokenizer, TokenizeOptions, DEFAULT_MAX_LENGTH};

use padv_core::eval::report::ReportBody;
use padv_core::eval::EvalReport;
use padv_core::score::Method;
use padv_engine::merge::{load_merged, DareRescale, MergeSpec};
use serde::Serialize;

use super::engine_opts::{load_engine, EngineArgs};
use super::eval::{evaluate_records, EvalOptions};
use super::inputs::{read_trajectories, Inputs};
use super::merge::RescaleArg;
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
    /// Output folder (created if missing): records.jsonl (or records.parquet), run.json, cache/,
    /// and eval-<kind>.json. Files inside it are never read as input, and eval-*.json of an
    /// earlier run are removed.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Format of the records file: jsonl (records.jsonl, one JSON object per trajectory) or
    /// parquet (records.parquet, one row per trajectory with list columns per step; see the
    /// README). A records file of the other format left by an earlier run is removed, so the
    /// folder always holds one.
    #[arg(long, value_parser = named::<RecordFormat>(), default_value = "jsonl")]
    records_format: RecordFormat,
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
    #[command(flatten)]
    merge: ReferenceMergeArgs,
}

/// `--reference-merge` and its parameters.
#[derive(Debug, Clone, Args)]
pub struct ReferenceMergeArgs {
    /// Score against merged references π_α = θ_ref + α·Δ computed in memory (no checkpoint
    /// written), one run per α: METHOD:ALPHA[,ALPHA...], repeatable, e.g.
    /// `linear:0,0.25,0.5,0.75` or `ties:0.5`. Methods: linear, task_arithmetic, ties,
    /// dare_linear, dare_ties, emr (see `padv merge --help`). Results go to OUT/ref-<label>/.
    #[arg(
        long = "reference-merge",
        value_name = "METHOD:ALPHAS",
        conflicts_with = "reference_endpoint"
    )]
    pub reference_merge: Vec<String>,
    /// Density of ties / dare merges (default 0.2, the reference code's).
    #[arg(long = "merge-density", value_name = "D")]
    pub merge_density: Option<f64>,
    /// Seed of DARE's masks.
    #[arg(long = "merge-seed", default_value_t = 0)]
    pub merge_seed: u64,
    /// DARE's rescaling.
    #[arg(long = "merge-dare-rescale", value_enum, default_value_t = RescaleArg::InvDensity)]
    pub merge_dare_rescale: RescaleArg,
    /// Further policies whose task vectors join the merge (repeatable).
    #[arg(long = "merge-extra-policy", value_name = "DIR")]
    pub merge_extra_policy: Vec<String>,
}

impl ReferenceMergeArgs {
    /// Every merge asked for, in order.
    fn specs(&self) -> anyhow::Result<Vec<MergeSpec>> {
        let mut out = Vec::new();
        for text in &self.reference_merge {
            out.extend(MergeSpec::parse_sweep(
                text,
                self.merge_density,
                self.merge_seed,
                DareRescale::from(self.merge_dare_rescale),
            )?);
        }
        let mut labels: Vec<String> = out.iter().map(MergeSpec::label).collect();
        labels.sort();
        if let Some(w) = labels.windows(2).find(|w| w[0] == w[1]) {
            anyhow::bail!("--reference-merge asks for {} twice", w[0]);
        }
        Ok(out)
    }
}

/// One merged reference of a sweep, as OUT/sweep.json lists it.
#[derive(Debug, Serialize)]
struct SweepEntry {
    label: String,
    spec: MergeSpec,
    /// The folder holding its records.jsonl, run.json and eval-*.json.
    dir: String,
    fingerprint: String,
    records: usize,
    /// The `pa` headline of each evaluation run (`--eval`).
    pa: Vec<PaHeadline>,
}

/// PA's headline in one evaluation.
#[derive(Debug, Serialize)]
struct PaHeadline {
    evaluation: String,
    metric: &'static str,
    value: Option<f64>,
    /// The cross-validated estimate (grids).
    cv: Option<f64>,
    cell: String,
}

fn pa_headline(report: &EvalReport) -> Option<PaHeadline> {
    let evaluation = report.evaluation.to_string();
    match &report.results {
        ReportBody::Uq(r) => {
            r.methods
                .iter()
                .find(|m| m.method == Method::Pa)
                .map(|m| PaHeadline {
                    evaluation,
                    metric: "AUROC",
                    value: m.headline.result.auroc,
                    cv: m.headline.cv_auroc,
                    cell: m.headline.label.clone(),
                })
        }
        ReportBody::Bon(r) => {
            r.methods
                .iter()
                .find(|m| m.method == Method::Pa)
                .map(|m| PaHeadline {
                    evaluation,
                    metric: "success",
                    value: m.headline.cell.success_rate,
                    cv: m.headline.cv_success_rate,
                    cell: m.headline.cell.label.clone(),
                })
        }
        ReportBody::Fa(r) => {
            r.methods
                .iter()
                .find(|m| m.method == Method::Pa)
                .map(|m| PaHeadline {
                    evaluation,
                    metric: "accuracy",
                    value: m.headline.metrics.accuracy,
                    cv: m.headline.cv_accuracy,
                    cell: format!("{} {}", m.headline.label, m.headline.metrics.predictor),
                })
        }
    }
}

/// Run `padv score`.
pub fn run(args: ScoreArgs) -> anyhow::Result<()> {
    // Flags first: a bad β or merge spec should not cost two model loads.
    if args.max_length == 0 {
        anyhow::bail!("--max-length 0 keeps no token of any trajectory: give a positive length");
    }
    let eval_cfg = if args.eval.is_empty() {
        None
    } else {
        Some(args.eval_opts.config()?)
    };
    let merges = args.merge.specs()?;
    let inputs = read_trajectories(&args.input, &args.out)?;
    if inputs.trajectories.is_empty() {
        anyhow::bail!("no trajectories in the input\n{}", inputs.skips);
    }
    if !merges.is_empty() {
        return run_sweep(&args, &merges, inputs, eval_cfg.as_ref());
    }

    let (policy_spec, reference_spec, policy_dir, reference_dir, mut policy, mut reference, cap) =
        load_pair(&args)?;
    // Remote servers refuse sequences longer than their context: truncate to what they take,
    // as local scoring does with --max-length, instead of skipping those trajectories.
    let max_length = cap.map_or(args.max_length, |cap| {
        padv_remote::capped_max_length(args.max_length, cap)
    });
    let tok = load_tokenizers(&policy_dir, &reference_dir)?;
    let cache = prepare_out(&args)?;
    let run = Run {
        args: &args,
        inputs: &inputs,
        tok: &tok,
        max_length,
        cache: cache.as_ref(),
        policy: (policy_spec.as_str(), policy_dir.as_path()),
        eval_cfg: eval_cfg.as_ref(),
    };
    run.score_into(
        &args.out,
        policy.as_mut(),
        reference.as_mut(),
        (&reference_spec, &reference_dir),
    )?;
    Ok(())
}

/// The policy's tokenizer, after checking that the reference's has the same vocabulary.
fn load_tokenizers(policy_dir: &Path, reference_dir: &Path) -> anyhow::Result<TextTokenizer> {
    Ok(padv_engine::tokenize::pair_tokenizer(
        policy_dir,
        reference_dir,
    )?)
}

/// Creates OUT, removes stale evaluations, opens the cache (unless --no-cache).
fn prepare_out(args: &ScoreArgs) -> anyhow::Result<Option<LogprobCache>> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    remove_stale_evaluations(&args.out)?;
    if args.no_cache {
        return Ok(None);
    }
    let dir = args.out.join("cache");
    Ok(Some(LogprobCache::open(&dir).with_context(|| {
        format!("opening the cache {}", dir.display())
    })?))
}

/// What every scoring run of one command shares.
struct Run<'a> {
    args: &'a ScoreArgs,
    inputs: &'a Inputs,
    tok: &'a TextTokenizer,
    max_length: usize,
    cache: Option<&'a LogprobCache>,
    policy: (&'a str, &'a Path),
    eval_cfg: Option<&'a padv_core::eval::EvalConfig>,
}

impl Run<'_> {
    /// Scores every trajectory with the pair and writes records.jsonl, run.json and the
    /// evaluations into `out`; returns the records and the evaluation reports.
    fn score_into(
        &self,
        out: &Path,
        policy: &dyn LogprobBackend,
        reference: &dyn LogprobBackend,
        reference_id: (&str, &Path),
    ) -> anyhow::Result<(usize, Vec<EvalReport>)> {
        let args = self.args;
        let encoder = self
            .tok
            .encoder(&TokenizeOptions {
                renderer: args.renderer,
                max_length: self.max_length,
                chat: args.chat.options()?,
            })
            .context("preparing the renderer")?;
        let mut reporter = Reporter::new(self.inputs.trajectories.len());
        let result = score_trajectories(
            &self.inputs.trajectories,
            &encoder,
            policy,
            reference,
            &PipelineOptions {
                strict: args.input.strict,
                cache: self.cache,
                batch_size: args.batch_size,
            },
            &mut |p| reporter.update(p),
        );
        reporter.finish();
        let run = match result {
            Ok(run) => run,
            Err(PipelineError::NothingScored { total, skips }) => {
                let mut all = self.inputs.skips.clone();
                all.merge(skips);
                anyhow::bail!("none of the {total} trajectories could be scored:\n{all}");
            }
            Err(e) => return Err(e.into()),
        };
        let mut skips = self.inputs.skips.clone();
        skips.merge(run.skips);
        // run.json's `skipped` counts every skip its `skips` lists, malformed input records
        // included, so the two can never disagree.
        let mut stats = run.stats;
        stats.skipped = skips.total();

        let format = args.records_format;
        let records_path = out.join(format.records_file_name());
        write_records_as(&records_path, &run.records, format)
            .with_context(|| format!("writing {}", records_path.display()))?;
        remove_other_records(out, format)?;
        let info = RunInfo {
            padv_version: env!("CARGO_PKG_VERSION"),
            argv: argv(),
            inputs: self.inputs.files.clone(),
            policy: model_info(self.policy.0, self.policy.1, policy),
            reference: model_info(reference_id.0, reference_id.1, reference),
            renderer: args.renderer.to_string(),
            max_length: self.max_length,
            batch_size: args.batch_size,
            cache: self.cache.is_some(),
            records_file: format.records_file_name(),
            stats,
            skips,
        };
        super::output::write_json(&out.join("run.json"), &info)?;
        report_on_stderr(&info, &records_path);

        let mut reports = Vec::new();
        if let Some(cfg) = self.eval_cfg {
            for (i, kind) in args.eval.iter().enumerate() {
                let report = evaluate_records(&run.records, *kind, cfg, Some(out))?;
                let sep = if i == 0 { "" } else { "\n" };
                super::output::print_text(&format!("{sep}{}", report.to_table()))?;
                reports.push(report);
            }
            if args.report {
                let files: Vec<PathBuf> =
                    info.inputs.iter().map(|f| PathBuf::from(&f.path)).collect();
                super::report::score_report(
                    out,
                    &records_path,
                    &run.records,
                    &reports,
                    &self.inputs.trajectories,
                    &files,
                )?;
            }
        }
        Ok((run.records.len(), reports))
    }
}

/// `--reference-merge`: one scoring run per merged reference, each into OUT/ref-<label>/.
fn run_sweep(
    args: &ScoreArgs,
    merges: &[MergeSpec],
    inputs: Inputs,
    eval_cfg: Option<&padv_core::eval::EvalConfig>,
) -> anyhow::Result<()> {
    let (Some(policy_spec), Some(reference_spec)) = (&args.policy, &args.reference) else {
        anyhow::bail!("--reference-merge needs local --policy and --reference checkpoints");
    };
    let (policy_dir, mut policy) =
        load_engine(policy_spec, &args.engine).context("loading the policy")?;
    let reference_dir = padv_engine::checkpoint::resolve_model_path(reference_spec)
        .with_context(|| format!("finding checkpoint {reference_spec:?}"))?;
    let mut tasks = vec![policy_dir.clone()];
    for p in &args.merge.merge_extra_policy {
        tasks.push(
            padv_engine::checkpoint::resolve_model_path(p)
                .with_context(|| format!("finding checkpoint {p:?}"))?,
        );
    }
    let tok = load_tokenizers(&policy_dir, &reference_dir)?;
    let cache = prepare_out(args)?;
    if cache.is_none() {
        tracing::warn!(
            "--no-cache with --reference-merge: the policy is recomputed for every merge"
        );
    }
    let run = Run {
        args,
        inputs: &inputs,
        tok: &tok,
        max_length: args.max_length,
        cache: cache.as_ref(),
        policy: (policy_spec.as_str(), policy_dir.as_path()),
        eval_cfg,
    };
    let mut entries = Vec::new();
    for spec in merges {
        let label = spec.label();
        eprintln!("padv: reference merge {label}");
        let reference = load_merged(&reference_dir, &tasks, *spec, args.engine.options()?)
            .with_context(|| format!("building the merged reference {label}"))?;
        let dir = args.out.join(format!("ref-{label}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        remove_stale_evaluations(&dir)?;
        if eval_cfg.is_some() {
            super::output::print_text(&format!("== reference {label} ==\n"))?;
        }
        let fingerprint = reference.fingerprint();
        let (records, reports) = run.score_into(
            &dir,
            policy.as_mut(),
            &reference,
            (&format!("{reference_spec} merged: {label}"), &reference_dir),
        )?;
        entries.push(SweepEntry {
            label,
            spec: *spec,
            dir: dir.display().to_string(),
            fingerprint,
            records,
            pa: reports.iter().filter_map(pa_headline).collect(),
        });
    }
    super::output::write_json(&args.out.join("sweep.json"), &entries)?;
    if eval_cfg.is_some() {
        super::output::print_text(&sweep_table(&entries))?;
    }
    eprintln!("padv: wrote {}", args.out.join("sweep.json").display());
    Ok(())
}

/// The PA headline of every merge, one row each.
fn sweep_table(entries: &[SweepEntry]) -> String {
    let mut out = String::from(
        "\nreference sweep: PA headline per merged reference (CV = cross-validated, grids only)\n",
    );
    for e in entries {
        let cells: Vec<String> =
            e.pa.iter()
                .map(|h| {
                    let v = h.value.map_or("–".to_string(), |v| format!("{v:.3}"));
                    let cv = h.cv.map(|c| format!(" (CV {c:.3})")).unwrap_or_default();
                    format!("{} {} {v}{cv}", h.evaluation, h.metric)
                })
                .collect();
        out.push_str(&format!("{:<28} {}\n", e.label, cells.join(" | ")));
    }
    out
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

/// Removes the records file of the other format an earlier run left in `dir` (e.g.
/// records.jsonl after a run with --records-format parquet), so `padv eval -i DIR` never
/// reads stale records beside the new ones.
fn remove_other_records(dir: &Path, written: RecordFormat) -> anyhow::Result<()> {
    for other in RecordFormat::ALL.iter().filter(|&&f| f != written) {
        let path = dir.join(other.records_file_name());
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::info!("removed {} from an earlier run", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("removing the stale {}", path.display()))
            }
        }
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
    if s.cache_corrupt > 0 {
        eprintln!(
            "padv: {} cache entries failed their checksum (changed on disk) and were re-scored",
            s.cache_corrupt
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
