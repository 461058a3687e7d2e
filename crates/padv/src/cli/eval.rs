//! `padv eval uq|bon|fa`: evaluate log-prob records with one score or a grid of scores.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use padv_core::eval::{
    attribution, best_of_n, bon_grid, cross_validate_by_method, fa_grid, uq, uq_grid, UqOptions,
};
use padv_core::record::read_records;
use padv_core::score::{grid, Method, PaMode, ScoreSpec, ScoreTable, StepAgg, TokenAgg};
use padv_core::LogprobRecord;
use serde::Serialize;

/// Which evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalKind {
    /// Uncertainty quantification: does the score predict success?
    Uq,
    /// Best-of-N: pick the highest-scored rollout per task.
    Bon,
    /// Failure attribution: find the decisive mistake step.
    Fa,
}

impl std::fmt::Display for EvalKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EvalKind::Uq => "uq",
            EvalKind::Bon => "bon",
            EvalKind::Fa => "fa",
        })
    }
}

/// `padv eval` subcommands.
#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Uncertainty quantification: AUROC (bootstrap CI), AUPRC, Spearman; with --grid also the
    /// cross-validated choice of aggregation.
    Uq(EvalArgs),
    /// Best-of-N per task: success rate, mean reward, oracle pass@N, mean@N, expected BoN@k.
    Bon(EvalArgs),
    /// Failure attribution: min_cumulative / sharpest_drop / sharpest_abs_drop vs trivial priors.
    Fa(EvalArgs),
}

/// Arguments of every `padv eval` subcommand.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Log-prob record files (JSONL, as written by `padv score`).
    #[arg(long = "input", short = 'i', required = true, num_args = 1..)]
    input: Vec<PathBuf>,
    #[command(flatten)]
    opts: EvalOptions,
    /// Also write the JSON result to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Score selection and evaluation options, shared with `padv score --eval`.
#[derive(Debug, Clone, Args)]
pub struct EvalOptions {
    /// Scoring method.
    #[arg(long, value_enum, default_value_t = Method::Pa)]
    method: Method,
    /// Token aggregation within a step.
    #[arg(long, value_enum, default_value_t = TokenAgg::Mean)]
    token_agg: TokenAgg,
    /// Step aggregation within a trajectory (ignored by methods with a fixed one, e.g. deepconf_tail).
    #[arg(long, value_enum, default_value_t = StepAgg::Mean)]
    step_agg: StepAgg,
    /// PA mode: aggregate each model then subtract (reference implementation) or aggregate the log-ratios.
    #[arg(long, value_enum, default_value_t = PaMode::DiffOfAgg)]
    pa_mode: PaMode,
    /// β, the KL coefficient (scales scores; rankings do not depend on it).
    #[arg(long, default_value_t = 1.0)]
    beta: f64,
    /// Evaluate the grid of methods × token aggregations × step aggregations (× PA modes).
    #[arg(long)]
    grid: bool,
    /// Methods in the grid (default: all methods the records support).
    #[arg(long, value_enum, value_delimiter = ',')]
    methods: Vec<Method>,
    /// Bootstrap resamples for the AUROC confidence interval (0 disables it).
    #[arg(long, default_value_t = 1000)]
    bootstrap: usize,
    /// Folds for the cross-validated choice of aggregation (uq --grid).
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Seed for bootstrap and folds.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

impl EvalOptions {
    fn spec(&self) -> anyhow::Result<ScoreSpec> {
        ScoreSpec::builder()
            .method(self.method)
            .token_agg(self.token_agg)
            .step_agg(self.step_agg)
            .pa_mode(self.pa_mode)
            .beta(self.beta)
            .build()
            .context("invalid score specification")
    }

    fn uq_options(&self) -> UqOptions {
        UqOptions {
            n_boot: self.bootstrap,
            seed: self.seed,
            folds: self.folds,
            ..UqOptions::default()
        }
    }
}

#[derive(Serialize)]
struct Single {
    evaluation: EvalKind,
    records: usize,
    label: String,
    spec: ScoreSpec,
    #[serde(flatten)]
    result: serde_json::Value,
}

#[derive(Serialize)]
struct Grid {
    evaluation: EvalKind,
    records: usize,
    cells: usize,
    /// Methods left out because the records lack a field they need.
    skipped_methods: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cross_validated: Option<serde_json::Value>,
    rows: serde_json::Value,
}

/// Run `padv eval …`.
pub fn run(cmd: EvalCommand) -> anyhow::Result<()> {
    let (kind, args) = match cmd {
        EvalCommand::Uq(a) => (EvalKind::Uq, a),
        EvalCommand::Bon(a) => (EvalKind::Bon, a),
        EvalCommand::Fa(a) => (EvalKind::Fa, a),
    };
    let mut records = Vec::new();
    for path in &args.input {
        records.extend(read_records(path).with_context(|| format!("reading {}", path.display()))?);
    }
    evaluate_records(&records, kind, &args.opts, args.out.as_deref())
}

/// Evaluate records and print (and optionally write) the JSON result.
pub fn evaluate_records(
    records: &[LogprobRecord],
    kind: EvalKind,
    opts: &EvalOptions,
    out: Option<&Path>,
) -> anyhow::Result<()> {
    if records.is_empty() {
        anyhow::bail!("no records to evaluate");
    }
    let table = ScoreTable::precompute(records).context("preparing scores")?;
    if !opts.grid {
        let spec = opts.spec()?;
        let label = spec.label();
        let scorer = table.scorer(&spec).context("scoring")?;
        let n = records.len();
        let result = match kind {
            EvalKind::Uq => serde_json::to_value(uq(
                &scorer.trajectory_scores(),
                table.labels(),
                &opts.uq_options(),
            )?)?,
            EvalKind::Bon => serde_json::to_value(best_of_n(
                table.task_ids(),
                &scorer.trajectory_scores(),
                table.labels(),
            )?)?,
            EvalKind::Fa => {
                let steps: Vec<Vec<(usize, f64)>> = (0..n).map(|r| scorer.step_scores(r)).collect();
                serde_json::to_value(attribution(&steps, table.mistake_steps())?)?
            }
        };
        let single = Single {
            evaluation: kind,
            records: n,
            label,
            spec,
            result,
        };
        return super::output::emit(&single, out);
    }

    let methods = if opts.methods.is_empty() {
        Method::ALL.to_vec()
    } else {
        opts.methods.clone()
    };
    let mut skipped = BTreeMap::new();
    let mut specs = Vec::new();
    for spec in grid(&methods) {
        let spec = ScoreSpec {
            beta: opts.beta,
            ..spec
        };
        match table.scorer(&spec) {
            Ok(_) => specs.push(spec),
            Err(e) => {
                skipped
                    .entry(spec.method.to_string())
                    .or_insert_with(|| e.to_string());
            }
        }
    }
    if specs.is_empty() {
        anyhow::bail!("no method in the grid can score these records: {skipped:?}");
    }
    let (rows, cross_validated) = match kind {
        EvalKind::Uq => {
            let rows = uq_grid(&table, &specs, &opts.uq_options())?;
            let cv = cross_validate_by_method(&rows);
            (serde_json::to_value(rows)?, Some(serde_json::to_value(cv)?))
        }
        EvalKind::Bon => (serde_json::to_value(bon_grid(&table, &specs)?)?, None),
        EvalKind::Fa => (serde_json::to_value(fa_grid(&table, &specs)?)?, None),
    };
    let grid = Grid {
        evaluation: kind,
        records: records.len(),
        cells: specs.len(),
        skipped_methods: skipped,
        cross_validated,
        rows,
    };
    super::output::emit(&grid, out)
}
