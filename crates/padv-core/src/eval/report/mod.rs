//! The typed evaluation report: one call from records to a complete, honest result.
//!
//! [`evaluate`] validates the inputs (every record, every spec, unique ids), runs one
//! evaluation for one score ([`EvalConfig::grid`] off) or for the whole grid of methods ×
//! aggregations, and returns an [`EvalReport`] that serializes to one JSON document and
//! renders as a plain-text table ([`EvalReport::to_table`]).
//!
//! Why a library type rather than CLI code: every front end (`padv eval`, `padv score
//! --eval`, `padv demo`) must state the same things — the chance level, which direction is
//! better, confidence intervals, `n`, and "nothing to evaluate" in words rather than a 0.0 —
//! and must choose a grid's headline aggregation the same honest way: by k-fold
//! cross-validation, never by the best cell on the evaluation data itself (which is still
//! shown, labelled optimistic).

mod bon;
mod common;
mod fa;
mod request;
mod table;
#[cfg(test)]
mod tests;
mod uq;

use std::collections::{BTreeMap, HashMap};

use rayon::slice::ParallelSliceMut;

use serde::{Deserialize, Serialize};

pub use bon::{BonCell, BonHeadline, BonMethod, BonReport, KBand, KValue};
pub use common::{Better, Chance, Direction, Selection};
pub use fa::{FaCell, FaHeadline, FaMethod, FaPrior, FaReport};
pub use request::EvalRequest;
pub use uq::{CalibrationSettings, UqHeadline, UqMethod, UqReport};

use super::source::{self, RecordScan, ScoreSource};
use super::EvalError;
use crate::record::validate;
use crate::score::names::named_enum;
use crate::score::{grid, judge_grid, JudgeLevel, Method, ScoreSpec, ScoreTable};
use crate::LogprobRecord;

named_enum! {
    /// Which evaluation.
    #[serde(rename_all = "snake_case")]
    pub enum EvalKind ("evaluation") {
        /// Uncertainty quantification: does the trajectory score predict success?
        Uq = "uq",
        /// Best-of-N: pick the highest-scored rollout of each task.
        Bon = "bon",
        /// Failure attribution: locate the decisive mistake step.
        Fa = "fa",
    }
}

/// What to evaluate and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalConfig {
    /// The score of a single evaluation; with `grid`, only its β is used (every cell gets it).
    pub spec: ScoreSpec,
    /// Evaluate every method × aggregation the records support, side by side.
    pub grid: bool,
    /// Methods of the grid (empty: all methods). `judge` stands for every judge the records
    /// carry.
    pub methods: Vec<Method>,
    /// Bootstrap resamples for confidence intervals (0 disables them).
    pub bootstrap: usize,
    /// Folds of the cross-validated choice of aggregation (grid; at least 2) and of the UQ
    /// report's held-out calibration (with or without a grid).
    pub folds: usize,
    /// Seed of the bootstrap and of the fold assignment.
    pub seed: u64,
    /// Bootstrap intervals for every cell of a grid (default true). False computes them for
    /// each method's headline cell only — what the HTML report shows — which makes a full
    /// grid several times faster; the headline intervals are the same either way.
    #[serde(default = "every_cell")]
    pub cell_intervals: bool,
}

fn every_cell() -> bool {
    true
}

impl EvalConfig {
    /// The methods this configuration evaluates: the grid's (every method when the list is
    /// empty: an empty result) or the one spec's. What
    /// [`crate::score::ScoreTableBuilder::for_methods`] needs to keep.
    pub fn methods_evaluated(&self) -> Vec<Method> {
        if self.grid {
            self.methods.clone()
        } else {
            vec![self.spec.method]
        }
    }
}

impl Default for EvalConfig {
    /// PA with mean/mean aggregation, no grid, all methods, 1000 resamples, 5 folds, seed 0,
    /// intervals for every cell.
    fn default() -> Self {
        EvalConfig {
            spec: ScoreSpec::default(),
            grid: false,
            methods: Vec::new(),
            bootstrap: 1000,
            folds: 5,
            seed: 0,
            cell_intervals: true,
        }
    }
}

/// The result of [`evaluate`]: serializes to one JSON document; [`EvalReport::to_table`]
/// renders it for people.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    /// Which evaluation.
    pub evaluation: EvalKind,
    /// Records given.
    pub records: usize,
    /// The configuration it ran with (specs as validated).
    pub config: EvalConfig,
    /// Grid cells evaluated (1 without a grid).
    pub cells: usize,
    /// Which direction is better, per metric.
    pub better: Vec<Direction>,
    /// What a score-free predictor achieves on these records, per metric.
    pub chance: Vec<Chance>,
    /// Methods left out of the grid because the records lack a field they need, with why.
    pub skipped_methods: BTreeMap<String, String>,
    /// Set when there is nothing (or not enough) to evaluate: says what and why. The
    /// metrics it concerns are then `null`, never 0.
    pub note: Option<String>,
    /// The evaluation's results.
    pub results: ReportBody,
}

/// The per-evaluation part of an [`EvalReport`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ReportBody {
    /// Uncertainty quantification.
    Uq(UqReport),
    /// Best-of-N.
    Bon(BonReport),
    /// Failure attribution.
    Fa(FaReport),
}

/// Evaluate `records` with one score or a grid of scores.
///
/// Fails when there is no record, a record is invalid (non-finite value, `mistake_step`
/// outside the trajectory, ...), two records share an id (best-of-N would count one rollout
/// twice), β is not finite and positive, a grid is asked for with fewer than 2 folds, or no
/// requested method can score the records. "Nothing to evaluate" (one class only, no
/// annotated mistake, no labelled rollout) is not an error: the report says so in `note`.
pub fn evaluate(
    records: &[LogprobRecord],
    kind: EvalKind,
    cfg: &EvalConfig,
) -> Result<EvalReport, EvalError> {
    check_records(records)?;
    let spec = cfg.spec.validated()?;
    check_grid_folds(cfg)?;
    let table = ScoreTable::precompute(records)?;
    evaluate_checked(ScoreSource::Table(&table), kind, cfg, spec)
}

/// [`evaluate`] of a [`ScoreTable`], e.g. one built batch by batch from a record file with
/// [`crate::score::ScoreTableBuilder`] (`padv eval` does so, so its memory is the table's,
/// not the file's): the same report as [`evaluate`] on the records the table was built from.
///
/// The records must have been validated ([`validate`]); the readers
/// ([`crate::record::RecordBatches`], [`crate::record::read_records`]) validate every record.
/// Ids are checked for uniqueness here, with the same error as [`evaluate`].
pub fn evaluate_table(
    table: &ScoreTable,
    kind: EvalKind,
    cfg: &EvalConfig,
) -> Result<EvalReport, EvalError> {
    if table.is_empty() {
        return Err(EvalError::NoRecords);
    }
    check_unique_ids(table.len(), |i| table.ids()[i].as_str())?;
    let spec = cfg.spec.validated()?;
    check_grid_folds(cfg)?;
    evaluate_checked(ScoreSource::Table(table), kind, cfg, spec)
}

/// The default `table_budget` of [`scan_record_files`] (`padv eval --table-budget-mib`):
/// 512 MiB, a table of about 1.3·10⁶ two-step PA records. Past it, a UQ grid over 10⁷ records
/// peaked at 1.56 GiB in all (measured; see the README's benchmark).
pub const DEFAULT_TABLE_BUDGET: usize = 512 << 20;

/// [`evaluate_table`] of record files (JSONL or Parquet) with memory bounded by the
/// evaluation rather than the input: [`scan_record_files`], then [`RecordScan::evaluate`].
pub fn evaluate_files(
    paths: &[std::path::PathBuf],
    kind: EvalKind,
    cfg: &EvalConfig,
    table_budget: usize,
) -> Result<EvalReport, EvalError> {
    scan_record_files(paths, kind, cfg, table_budget)?.evaluate(kind, cfg)
}

/// Read record files (JSONL or Parquet, told apart by content) once, a batch at a time, for
/// a `kind` evaluation configured like `cfg`: into the score table of the methods evaluated
/// while its estimated size stays within `table_budget` bytes. Past that, a UQ evaluation
/// drops the table and keeps per record only its id and label; [`RecordScan::evaluate`]
/// then re-reads the files once per group of grid cells, holding the group's trajectory
/// scores (`table_budget` bytes of them) and one cell's ranking. Best-of-N and failure
/// attribution always keep the table ([`table_from_files`]).
///
/// The report is the same to the last bit either way (every score comes from the same
/// table code, a batch at a time). A file that changes between passes is an error. The
/// configuration given to [`RecordScan::evaluate`] may differ from `cfg` in its judge only
/// (e.g. a judge level resolved from [`RecordScan::judges`]).
pub fn scan_record_files(
    paths: &[std::path::PathBuf],
    kind: EvalKind,
    cfg: &EvalConfig,
    table_budget: usize,
) -> Result<RecordScan, EvalError> {
    let budget = if kind == EvalKind::Uq {
        table_budget
    } else {
        usize::MAX
    };
    // The cells to check while scanning (an invalid β is refused by `evaluate`).
    let candidates = match cfg.spec.validated() {
        Ok(spec) if cfg.grid => grid_cells(&grid_methods(cfg), spec.beta).unwrap_or_default(),
        Ok(spec) => vec![spec],
        Err(_) => Vec::new(),
    };
    source::scan(paths, &cfg.methods_evaluated(), &candidates, budget)
}

impl RecordScan {
    /// Evaluate the scanned records: the report [`evaluate_table`] gives on their table.
    pub fn evaluate(&self, kind: EvalKind, cfg: &EvalConfig) -> Result<EvalReport, EvalError> {
        match &self.scan {
            source::Scan::Table(table) => evaluate_table(table, kind, cfg),
            source::Scan::Files(_) => {
                check_unique_ids(self.ids.len(), |i| self.ids.get(i))?;
                let spec = cfg.spec.validated()?;
                check_grid_folds(cfg)?;
                evaluate_checked(self.source(), kind, cfg, spec)
            }
        }
    }
}

/// The methods of a grid: the configured ones, or every method.
fn grid_methods(cfg: &EvalConfig) -> Vec<Method> {
    if cfg.methods.is_empty() {
        Method::ALL.to_vec()
    } else {
        cfg.methods.clone()
    }
}

/// Every non-judge cell of `methods`' grid, with β set.
fn grid_cells(methods: &[Method], beta: f64) -> Result<Vec<ScoreSpec>, EvalError> {
    grid(methods)
        .into_iter()
        .map(|cell| {
            ScoreSpec::builder()
                .method(cell.method)
                .token_agg(cell.token_agg)
                .step_agg(cell.step_agg)
                .pa_mode(cell.pa_mode)
                .beta(beta)
                .build()
                .map_err(EvalError::from)
        })
        .collect()
}

fn check_grid_folds(cfg: &EvalConfig) -> Result<(), EvalError> {
    if cfg.grid && cfg.folds < 2 {
        return Err(EvalError::InvalidConfig(format!(
            "a grid needs at least 2 cross-validation folds to choose its headline \
             aggregation honestly, got {}",
            cfg.folds
        )));
    }
    Ok(())
}

fn evaluate_checked(
    source: ScoreSource<'_>,
    kind: EvalKind,
    cfg: &EvalConfig,
    spec: ScoreSpec,
) -> Result<EvalReport, EvalError> {
    let mut skipped = BTreeMap::new();
    let specs = if cfg.grid {
        let methods = grid_methods(cfg);
        let mut specs = Vec::new();
        for cell in grid_cells(&methods, spec.beta)? {
            match source.check(&cell) {
                Ok(()) => specs.push(cell),
                Err(e) => {
                    skipped
                        .entry(cell.method.to_string())
                        .or_insert_with(|| e.to_string());
                }
            }
        }
        if methods.contains(&Method::Judge) {
            specs.extend(judge_cells(&source.judges(), kind, spec.beta));
        }
        if specs.is_empty() {
            return Err(EvalError::NoMethod(
                skipped
                    .iter()
                    .map(|(m, why)| format!("{m}: {why}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            ));
        }
        specs
    } else {
        source.check(&spec)?;
        vec![spec]
    };
    let config = EvalConfig {
        spec,
        ..cfg.clone()
    };
    let opts = common::Opts {
        bootstrap: cfg.bootstrap,
        folds: if cfg.grid { cfg.folds } else { 0 },
        calibration_folds: cfg.folds,
        seed: cfg.seed,
        cell_intervals: cfg.cell_intervals,
    };
    let (results, chance, better, note) = match kind {
        EvalKind::Uq => {
            let r = uq::report(source, &specs, &opts)?;
            let (chance, note) = (r.chance(), r.note());
            (ReportBody::Uq(r), chance, uq::directions(), note)
        }
        EvalKind::Bon => {
            let r = bon::report(needs_table(source)?, &specs, &opts)?;
            let (chance, note) = (r.chance(), r.note());
            (ReportBody::Bon(r), chance, bon::directions(), note)
        }
        EvalKind::Fa => {
            let r = fa::report(needs_table(source)?, &specs, &opts)?;
            let (chance, note) = (r.chance(), r.note());
            (ReportBody::Fa(r), chance, fa::directions(), note)
        }
    };
    Ok(EvalReport {
        evaluation: kind,
        records: source.len(),
        config,
        cells: specs.len(),
        better,
        chance,
        skipped_methods: skipped,
        note,
        results,
    })
}

/// The table of an evaluation that reads steps (best-of-N by task, failure attribution):
/// [`evaluate_files`] streams UQ only.
fn needs_table(source: ScoreSource<'_>) -> Result<&ScoreTable, EvalError> {
    match source {
        ScoreSource::Table(t) => Ok(t),
        ScoreSource::Files(_) => Err(EvalError::InvalidConfig(
            "best-of-N and failure attribution need the score table in memory".to_string(),
        )),
    }
}

/// The cells of every judge the records carry, with β set (it does not apply to judges but
/// is part of every cell). Failure attribution reads step values only, so a judge's
/// trajectory value is left out there.
fn judge_cells(
    judges: &[(crate::judge::JudgeName, bool, bool)],
    kind: EvalKind,
    beta: f64,
) -> Vec<ScoreSpec> {
    judges
        .iter()
        .flat_map(|&(name, has_traj, has_steps)| {
            judge_grid(name, has_traj && kind != EvalKind::Fa, has_steps)
        })
        .map(|cell| ScoreSpec { beta, ..cell })
        .filter(|cell| {
            kind != EvalKind::Fa || cell.judge.is_some_and(|j| j.level == JudgeLevel::Steps)
        })
        .collect()
}

/// Every record valid (see [`validate`]) and every id unique.
fn check_records(records: &[LogprobRecord]) -> Result<(), EvalError> {
    if records.is_empty() {
        return Err(EvalError::NoRecords);
    }
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        validate(r).map_err(|message| EvalError::InvalidRecord {
            id: r.id.clone(),
            position: i,
            message,
        })?;
        if let Some(&first) = seen.get(r.id.as_str()) {
            return Err(EvalError::DuplicateId {
                id: r.id.clone(),
                first,
                second: i,
            });
        }
        seen.insert(&r.id, i);
    }
    Ok(())
}

/// The first repeated id in input order, as [`check_records`] finds it, without a map of
/// every id: positions sorted by (id, position), then the group whose second occurrence
/// comes first. 8 bytes per record instead of a hash map of strings.
fn check_unique_ids<'a>(n: usize, id: impl Fn(usize) -> &'a str + Sync) -> Result<(), EvalError> {
    let mut order: Vec<usize> = (0..n).collect();
    order.par_sort_unstable_by(|&a, &b| id(a).cmp(id(b)).then(a.cmp(&b)));
    // The first two positions of each group of equal ids: (second, first).
    let repeat = (1..order.len())
        .filter(|&i| id(order[i]) == id(order[i - 1]))
        .filter(|&i| i < 2 || id(order[i - 1]) != id(order[i - 2]))
        .map(|i| (order[i], order[i - 1]))
        .min();
    match repeat {
        Some((second, first)) => Err(EvalError::DuplicateId {
            id: id(first).to_string(),
            first,
            second,
        }),
        None => Ok(()),
    }
}

/// The [`ScoreTable`] of record files (JSONL or Parquet, told apart by content) for
/// `methods` (all when empty; [`EvalConfig::methods_evaluated`]), built a batch of records at
/// a time: memory holds the table and one batch, never a file's token arrays. Records keep
/// file order, then record order; every record is validated as it is read. Fails with
/// [`EvalError::NoRecords`] when the files hold no record.
pub fn table_from_files(
    paths: &[std::path::PathBuf],
    methods: &[Method],
) -> Result<ScoreTable, EvalError> {
    let mut builder = crate::score::ScoreTableBuilder::for_methods(methods);
    for path in paths {
        for batch in crate::record::RecordBatches::open(path)? {
            builder.push(&batch?)?;
        }
    }
    builder.finish().ok_or(EvalError::NoRecords)
}
