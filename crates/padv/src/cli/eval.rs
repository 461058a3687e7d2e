//! `padv eval uq|bon|fa`: evaluate log-prob records with one score or a grid of scores.
//!
//! The evaluation itself is `padv_core::eval::evaluate`; this file turns flags into an
//! [`EvalConfig`], reads records (JSONL or Parquet) a batch at a time into the evaluation's
//! score table, and prints: a table for a person by default, or exactly one JSON document
//! with `--json`; `--out DIR` writes that document to `DIR/eval-<kind>.json`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use padv_core::eval::calibration::{fit_headline_scan, CalibrationKind};
use padv_core::eval::{
    evaluate, scan_record_files, EvalConfig, EvalKind, EvalReport, EvalRequest,
    DEFAULT_TABLE_BUDGET,
};
use padv_core::judge::JudgeName;
use padv_core::score::{JudgeLevel, Method, PaMode, StepAgg, TokenAgg};
use padv_core::LogprobRecord;

use super::names::named;

const EXAMPLES: &str = "Examples:\n  \
    padv eval uq --input out/                     # out/records.jsonl from padv score\n  \
    padv eval uq --input out/ --grid --json > uq.json\n  \
    padv eval uq --input out/ --grid --calibrate-out pa-calibration.json\n  \
    padv eval bon --input a.jsonl b.jsonl --method policy_logprob --out results/";

/// `padv eval` subcommands.
#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Uncertainty quantification: AUROC (bootstrap CI), AUPRC, Spearman; with --grid the
    /// aggregation per method is chosen by cross-validation.
    #[command(after_help = EXAMPLES)]
    Uq(EvalArgs),
    /// Best-of-N per task: success rate of the top-scored rollout vs random and oracle picks.
    #[command(after_help = EXAMPLES)]
    Bon(EvalArgs),
    /// Failure attribution: which step is the decisive mistake, vs trivial priors.
    #[command(after_help = EXAMPLES)]
    Fa(EvalArgs),
}

/// Arguments of every `padv eval` subcommand.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Log-prob record files (JSONL or Parquet, as written by `padv score`; told apart by
    /// content), or folders: a folder stands for the *.jsonl and *.parquet files directly
    /// inside it (a `padv score --out` folder: its records.jsonl or records.parquet).
    #[arg(long = "input", short = 'i', required = true, num_args = 1..)]
    input: Vec<PathBuf>,
    #[command(flatten)]
    opts: EvalOptions,
    /// Print the result as one JSON document instead of a table.
    #[arg(long)]
    json: bool,
    /// Folder to write the JSON result into, as eval-<kind>.json (created if missing).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// (uq) Fit the score -> P(success) map of --method's headline cell (the cross-validated
    /// choice with --grid) on all records and save it as JSON, for `padv serve --calibration`.
    #[arg(long, value_name = "FILE")]
    calibrate_out: Option<PathBuf>,
    /// (uq) The map --calibrate-out fits: platt (logistic, smooth) or isotonic (step-shaped).
    #[arg(long, value_parser = named::<CalibrationKind>(), default_value = "platt")]
    calibration_kind: CalibrationKind,
    /// (uq) Memory for the per-step score table, in MiB. Records are read a batch at a time
    /// into the table; past this size UQ drops it and re-reads the files once per group of
    /// grid cells, keeping per record only its label and the group's scores (this many MiB
    /// of them). The report is the same either way; only time and memory change.
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_TABLE_BUDGET >> 20)]
    table_budget_mib: usize,
}

/// Score selection and evaluation options, shared with `padv score --eval`.
#[derive(Debug, Clone, Args)]
pub struct EvalOptions {
    /// Scoring method (default pa). Not with --grid, which evaluates every method (restrict
    /// it with --methods).
    #[arg(long, value_parser = named::<Method>())]
    method: Option<Method>,
    /// Token aggregation within a step.
    #[arg(long, value_parser = named::<TokenAgg>(), default_value = "mean")]
    token_agg: TokenAgg,
    /// Step aggregation within a trajectory (ignored by methods with a fixed one, e.g. deepconf_tail).
    #[arg(long, value_parser = named::<StepAgg>(), default_value = "mean")]
    step_agg: StepAgg,
    /// PA mode: aggregate each model then subtract (the reference implementation) or aggregate
    /// the per-token log-ratios.
    #[arg(long, value_parser = named::<PaMode>(), default_value = "diff_of_agg")]
    pa_mode: PaMode,
    /// β, the KL coefficient (scales scores; rankings do not depend on it). Must be > 0.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    beta: f64,
    /// With --method judge: the judge to evaluate (its name in the records' `judges`, e.g.
    /// as attached by `padv judge --name`).
    #[arg(long, value_name = "NAME")]
    judge: Option<String>,
    /// With --method judge: its trajectory value, or its step values aggregated with
    /// --step-agg (default: trajectory when the records carry trajectory values, else steps).
    #[arg(long, value_parser = named::<JudgeLevel>())]
    judge_level: Option<JudgeLevel>,
    /// Evaluate the grid of methods × token aggregations × step aggregations (× PA modes).
    #[arg(long)]
    grid: bool,
    /// Methods in the grid (default: all methods the records support; needs --grid).
    #[arg(long, value_parser = named::<Method>(), value_delimiter = ',')]
    methods: Vec<Method>,
    /// Bootstrap resamples for confidence intervals (0 disables them).
    #[arg(long, default_value_t = 1000)]
    bootstrap: usize,
    /// Folds of the cross-validated choice of aggregation (--grid; at least 2) and of the
    /// held-out calibration of `uq` (with or without --grid).
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Seed for the bootstrap and the folds.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

impl EvalOptions {
    /// The configuration, validated here (β, folds) so that a bad flag fails before any
    /// expensive work, such as loading two models in `padv score --eval`.
    pub fn config(&self) -> anyhow::Result<EvalConfig> {
        self.config_with(self.grid)
    }

    /// [`EvalOptions::config`] with the judge level resolved on the records' judges (name,
    /// has trajectory values, has step values) when --judge-level is not given: the
    /// trajectory value when the records carry one.
    pub fn config_for(&self, judges: &[(JudgeName, bool, bool)]) -> anyhow::Result<EvalConfig> {
        let has = |name: &str| {
            judges
                .iter()
                .any(|(j, has_trajectory, _)| j.as_str() == name && *has_trajectory)
        };
        self.config_full(self.grid, Some(&has))
    }

    /// The configuration with the grid on or off whatever `--grid` says (`padv report`
    /// always evaluates the grid).
    pub fn config_with(&self, grid: bool) -> anyhow::Result<EvalConfig> {
        self.config_full(grid, None)
    }

    fn config_full(
        &self,
        grid: bool,
        has_trajectory_values: Option<&dyn Fn(&str) -> bool>,
    ) -> anyhow::Result<EvalConfig> {
        // The checks live in the library (one set for the CLI and the Python package); the
        // flags' names are added here, where the user typed them.
        let request = EvalRequest {
            // A grid asked for by the command (`padv report`) rather than by --grid ignores
            // --method (the grid has every method); --grid with --method is refused below.
            method: if grid && !self.grid {
                None
            } else {
                self.method
            },
            token_agg: self.token_agg,
            step_agg: self.step_agg,
            pa_mode: self.pa_mode,
            beta: self.beta,
            judge: self.judge.clone(),
            judge_level: self.judge_level,
            grid,
            methods: self.methods.clone(),
            bootstrap: self.bootstrap,
            folds: self.folds,
            seed: self.seed,
        };
        if self.grid && self.method.is_some() {
            // The library refuses this too; here the message names the flags the user typed.
            anyhow::bail!(
                "--method {m} picks one cell, but --grid evaluates every method: drop \
                 --method, or restrict the grid with --methods {m}",
                m = self.method.map(Method::name).unwrap_or_default()
            );
        }
        request
            .config(has_trajectory_values)
            .context("invalid evaluation options (--method, --judge, --grid, --folds, --beta)")
    }
}

/// Run `padv eval …`.
pub fn run(cmd: EvalCommand) -> anyhow::Result<()> {
    let (kind, args) = match cmd {
        EvalCommand::Uq(a) => (EvalKind::Uq, a),
        EvalCommand::Bon(a) => (EvalKind::Bon, a),
        EvalCommand::Fa(a) => (EvalKind::Fa, a),
    };
    // Flags are checked before any file is read.
    args.opts.config()?;
    if args.calibrate_out.is_some() && kind != EvalKind::Uq {
        anyhow::bail!("--calibrate-out fits a calibration map: use it with `padv eval uq`");
    }
    // Read a batch at a time into the score table: memory holds the table (per-step
    // aggregates, per-record ids and labels) and one batch, never the files' token arrays;
    // only the columns of the methods evaluated are kept. A UQ table over the budget is
    // dropped for passes over the files (`scan_record_files`). Errors name the file, record
    // and field already; a context would repeat the file.
    let budget = args.table_budget_mib.saturating_mul(1 << 20);
    let scan = scan_record_files(
        &record_files(&args.input)?,
        kind,
        &args.opts.config()?,
        budget,
    )?;
    let cfg = args.opts.config_for(&scan.judges())?;
    let report = scan
        .evaluate(kind, &cfg)
        .with_context(|| format!("evaluating {kind}"))?;
    write_report_json(&report, kind, args.out.as_deref())?;
    if let Some(path) = &args.calibrate_out {
        let cal = fit_headline_scan(&scan, &report, cfg.spec.method, args.calibration_kind)
            .context("--calibrate-out")?;
        cal.save(path)?;
        eprintln!(
            "padv: wrote the {} calibration of {} ({} records, {} successes) to {}",
            args.calibration_kind,
            cal.label,
            cal.fitted.n,
            cal.fitted.n_pos,
            path.display()
        );
    }
    if args.json {
        super::output::print_text(&super::output::to_json(&report)?)
    } else {
        super::output::print_text(&report.to_table())
    }
}

/// Evaluates `records` and writes the report to `out_dir/eval-<kind>.json` when given.
pub fn evaluate_records(
    records: &[LogprobRecord],
    kind: EvalKind,
    cfg: &EvalConfig,
    out_dir: Option<&Path>,
) -> anyhow::Result<EvalReport> {
    let report = evaluate(records, kind, cfg).with_context(|| format!("evaluating {kind}"))?;
    write_report_json(&report, kind, out_dir)?;
    Ok(report)
}

/// Writes the report to `out_dir/eval-<kind>.json` when given.
fn write_report_json(
    report: &EvalReport,
    kind: EvalKind,
    out_dir: Option<&Path>,
) -> anyhow::Result<()> {
    if let Some(dir) = out_dir {
        let path = super::output::out_file(dir, &eval_file_name(kind))?;
        super::output::write_json(&path, report)?;
    }
    Ok(())
}

/// `eval-<kind>.json`.
pub fn eval_file_name(kind: EvalKind) -> String {
    format!("eval-{kind}.json")
}

/// Files as given; a folder becomes the record files (*.jsonl, *.parquet) directly inside
/// it, in name order.
pub fn record_files(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in inputs {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let mut found = Vec::new();
        for entry in
            std::fs::read_dir(path).with_context(|| format!("reading {}", path.display()))?
        {
            let p = entry
                .with_context(|| format!("reading {}", path.display()))?
                .path();
            if p.is_file()
                && p.extension()
                    .is_some_and(|e| e == "jsonl" || e == "parquet")
            {
                found.push(p);
            }
        }
        if found.is_empty() {
            anyhow::bail!(
                "{}: no *.jsonl or *.parquet record file in this folder (expected e.g. \
                 records.jsonl from padv score)",
                path.display()
            );
        }
        found.sort();
        files.extend(found);
    }
    Ok(files)
}
