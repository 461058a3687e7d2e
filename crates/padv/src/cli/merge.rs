//! `padv merge`: a policy merged into its reference, written as a checkpoint folder any tool
//! loads (`padv_engine::merge`).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use padv_engine::checkpoint::resolve_model_path;
use padv_engine::merge::{write_merged, DareRescale, FilesFrom, MergeMethod, MergeSpec, Merger};

use super::progress::human_duration;

/// The merge method on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodArg {
    /// θ_ref + α·mean τ: (1 − α)·π_ref + α·π_θ with one policy.
    Linear,
    /// θ_ref + α·Σ τ.
    #[value(name = "task_arithmetic", alias = "task-arithmetic")]
    TaskArithmetic,
    /// Trim to the top-d magnitudes, elect signs, disjoint mean.
    Ties,
    /// Random drop (keep d), rescale, sum.
    #[value(name = "dare_linear", alias = "dare-linear")]
    DareLinear,
    /// Random drop, rescale, sign election, sum.
    #[value(name = "dare_ties", alias = "dare-ties")]
    DareTies,
    /// EMR-Merging: elect, mask, rescale (the policy's task-specific model).
    Emr,
}

impl From<MethodArg> for MergeMethod {
    fn from(m: MethodArg) -> Self {
        match m {
            MethodArg::Linear => MergeMethod::Linear,
            MethodArg::TaskArithmetic => MergeMethod::TaskArithmetic,
            MethodArg::Ties => MergeMethod::Ties,
            MethodArg::DareLinear => MergeMethod::DareLinear,
            MethodArg::DareTies => MergeMethod::DareTies,
            MethodArg::Emr => MergeMethod::Emr,
        }
    }
}

/// DARE's rescaling on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RescaleArg {
    /// τ̂ / d (the DARE paper and the reference implementation).
    #[value(name = "inv_density", alias = "inv-density")]
    InvDensity,
    /// τ̂ · ‖τ‖₁ / ‖τ̂‖₁ per tensor (current mergekit).
    L1,
}

impl From<RescaleArg> for DareRescale {
    fn from(r: RescaleArg) -> Self {
        match r {
            RescaleArg::InvDensity => DareRescale::InvDensity,
            RescaleArg::L1 => DareRescale::L1,
        }
    }
}

/// Which parent's config, tokenizer and templates the merged folder gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FilesFromArg {
    /// The reference's (its config describes the merged shapes).
    Reference,
    /// The policy's.
    Policy,
}

/// The merge parameters shared by `padv merge` and `padv score --reference-merge`.
#[derive(Debug, Clone, Args)]
pub struct MergeParams {
    /// Fraction of each task vector kept by ties, dare_linear and dare_ties (default 0.2, the
    /// reference code's); ignored by the other methods.
    #[arg(long, value_name = "D")]
    pub density: Option<f64>,
    /// Seed of DARE's random masks (the same seed gives the same merge).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// DARE's rescaling of the kept entries.
    #[arg(long, value_enum, default_value_t = RescaleArg::InvDensity)]
    pub dare_rescale: RescaleArg,
    /// Further policies whose task vectors join the policy's (TIES/DARE/EMR sign election, the
    /// linear mean); repeatable.
    #[arg(long = "extra-policy", value_name = "DIR")]
    pub extra_policy: Vec<String>,
}

/// Arguments of `padv merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The policy (π_θ): a local folder or `org/name` in the local Hugging Face cache.
    #[arg(long)]
    policy: String,
    /// The reference (π_ref): the merge's base; its tensor names, dtypes and shards are kept.
    #[arg(long)]
    reference: String,
    /// Merge method.
    #[arg(long, value_enum)]
    method: MethodArg,
    /// θ = θ_ref + α·Δ: 0 gives the reference, 1 (linear) the policy, bit for bit.
    #[arg(long, allow_negative_numbers = true)]
    alpha: f64,
    #[command(flatten)]
    params: MergeParams,
    /// Which parent's config, tokenizer and chat templates to copy.
    #[arg(long, value_enum, default_value_t = FilesFromArg::Reference)]
    files_from: FilesFromArg,
    /// The new checkpoint folder (must not exist, or be empty; written atomically).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// The task model folders: the policy, then every extra policy.
pub fn task_dirs(policy: &str, params: &MergeParams) -> anyhow::Result<Vec<PathBuf>> {
    std::iter::once(policy)
        .chain(params.extra_policy.iter().map(String::as_str))
        .map(|s| resolve_model_path(s).with_context(|| format!("finding checkpoint {s:?}")))
        .collect()
}

/// Run `padv merge`.
pub fn run(args: MergeArgs) -> anyhow::Result<()> {
    let spec = MergeSpec::new(
        args.method.into(),
        args.alpha,
        args.params.density,
        args.params.seed,
        args.params.dare_rescale.into(),
    )?;
    let reference = resolve_model_path(&args.reference)
        .with_context(|| format!("finding checkpoint {:?}", args.reference))?;
    let tasks = task_dirs(&args.policy, &args.params)?;
    let started = Instant::now();
    let merger = Merger::open(&reference, &tasks, spec)?;
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = ProgressBar::new(0);
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {bytes}/{total_bytes} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    });
    let progress = |done: u64, total: u64| {
        if let Some(b) = &bar {
            b.set_length(total);
            b.set_position(done);
        }
    };
    let files_from = match args.files_from {
        FilesFromArg::Reference => FilesFrom::Reference,
        FilesFromArg::Policy => FilesFrom::Policy,
    };
    let report = write_merged(&merger, &args.out, files_from, &progress);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let report = report?;
    eprintln!(
        "padv: merged {} tensors ({}) into {} in {}",
        report.tensors,
        report.label,
        args.out.display(),
        human_duration(started.elapsed())
    );
    for a in &report.aligned {
        eprintln!(
            "padv: {} of task model {}: {} rows {} to the reference's {}",
            a.name, a.task, a.from_rows, a.how, a.to_rows
        );
    }
    if !report.copied_from_reference.is_empty() {
        eprintln!(
            "padv: {} non-float tensors copied from the reference",
            report.copied_from_reference.len()
        );
    }
    if spec.method != MergeMethod::Linear
        && spec.method != MergeMethod::TaskArithmetic
        && tasks.len() == 1
    {
        let note = match spec.method {
            MergeMethod::Ties => "with one task vector TIES' sign election is the identity: this is θ_ref + α·(the top-d magnitudes of τ)",
            MergeMethod::DareTies => "with one task vector dare_ties equals dare_linear (same masks)",
            MergeMethod::Emr => "with one task vector EMR equals linear (λ = 1, τ_uni = τ)",
            _ => "",
        };
        if !note.is_empty() {
            eprintln!("padv: note: {note}");
        }
    }
    Ok(())
}
