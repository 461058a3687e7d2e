//! Where an evaluation gets its trajectory scores from: a [`ScoreTable`] in memory, or record
//! files read again for each group of cells.
//!
//! Why two: the table keeps five aggregates of every array of every step, which is what makes
//! a grid fast, but at 10⁷ trajectories it is several GB. A UQ grid only ever needs, per
//! cell, one score per record; [`FileScores`] keeps per record its label and nothing else,
//! and computes a group of cells' scores in one pass over the files (each batch's records
//! go through the same table code, so every score is the table's to the last bit). Memory is
//! then the evaluation's own: the group's score vectors and one cell's ranking.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rayon::prelude::*;

use super::EvalError;
use crate::judge::JudgeName;
use crate::record::RecordBatches;
use crate::score::table::{sources_read_by, N_SOURCES};
use crate::score::{check_judge_spec, Method, ScoreError, ScoreSpec, ScoreTable};

/// The trajectory scores behind an evaluation.
#[derive(Clone, Copy)]
pub(crate) enum ScoreSource<'a> {
    /// Everything precomputed in memory.
    Table(&'a ScoreTable),
    /// Record files, re-read per group of cells.
    Files(&'a FileScores),
}

impl<'a> ScoreSource<'a> {
    /// Records, in input order.
    pub(crate) fn len(self) -> usize {
        self.labels().len()
    }

    /// Outcome rewards, in input order.
    pub(crate) fn labels(self) -> &'a [Option<f64>] {
        match self {
            ScoreSource::Table(t) => t.labels(),
            ScoreSource::Files(f) => &f.labels,
        }
    }

    /// The judges the records carry (see [`ScoreTable::judges`]).
    pub(crate) fn judges(&self) -> Vec<(JudgeName, bool, bool)> {
        match self {
            ScoreSource::Table(t) => t.judges(),
            ScoreSource::Files(f) => f.judges.clone(),
        }
    }

    /// Whether `spec` can score every record; the error is the table's scorer's.
    pub(crate) fn check(&self, spec: &ScoreSpec) -> Result<(), ScoreError> {
        match self {
            ScoreSource::Table(t) => t.scorer(spec).map(|_| ()),
            ScoreSource::Files(f) => f.check(spec),
        }
    }

    /// How many cells' score vectors to compute at once: one per parallel task for a table,
    /// as many as the memory budget allows per pass over record files.
    pub(crate) fn cells_per_pass(&self) -> usize {
        match self {
            ScoreSource::Table(_) => 1,
            ScoreSource::Files(f) => f.cells_per_pass,
        }
    }

    /// `f(g, scores)` for each group `g` of specs, `scores[j]` being the trajectory scores of
    /// `groups[g][j]`, NaN for none ([`crate::eval::ScoreSlot`]: 8 bytes per record and cell).
    /// A table runs the groups in parallel; files are read once per group, groups one after
    /// the other. Results in group order; the first error in group order.
    pub(crate) fn with_scores<T: Send>(
        &self,
        groups: &[Vec<ScoreSpec>],
        f: impl Fn(usize, Vec<Vec<f64>>) -> Result<T, EvalError> + Sync,
    ) -> Result<Vec<T>, EvalError> {
        match self {
            ScoreSource::Table(table) => {
                let out: Vec<Result<T, EvalError>> = groups
                    .par_iter()
                    .enumerate()
                    .map(|(g, specs)| {
                        let scores = specs
                            .iter()
                            .map(|s| Ok(table.scorer(s)?.trajectory_scores_nan()))
                            .collect::<Result<Vec<_>, ScoreError>>()?;
                        f(g, scores)
                    })
                    .collect();
                out.into_iter().collect()
            }
            ScoreSource::Files(files) => groups
                .iter()
                .enumerate()
                .map(|(g, specs)| f(g, files.scores(specs)?))
                .collect(),
        }
    }
}

/// Record files read once for an evaluation ([`super::scan_record_files`]): their score
/// table when it stayed within the memory budget, else what a UQ evaluation needs to score
/// them pass by pass. Evaluate with [`RecordScan::evaluate`].
pub struct RecordScan {
    pub(crate) scan: Scan,
    /// Every record's id, for the uniqueness check of a streamed evaluation (empty once the
    /// table is kept: it holds the ids).
    pub(crate) ids: IdArena,
}

/// What [`scan`] found.
pub(crate) enum Scan {
    /// The records' table (the same as [`super::table_from_files`]).
    Table(ScoreTable),
    /// The records' labels and checks, for [`ScoreSource::Files`].
    Files(FileScores),
}

impl RecordScan {
    /// The score table, when the records' fitted the budget.
    pub fn table(&self) -> Option<&ScoreTable> {
        match &self.scan {
            Scan::Table(t) => Some(t),
            Scan::Files(_) => None,
        }
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.source().len()
    }

    /// Whether there is no record (never true: a scan of no record is an error).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The judges the records carry (see [`ScoreTable::judges`]).
    pub fn judges(&self) -> Vec<(JudgeName, bool, bool)> {
        self.source().judges()
    }

    /// Outcome rewards (`label`), in input order.
    pub fn labels(&self) -> &[Option<f64>] {
        self.source().labels()
    }

    /// The trajectory scores of one cell (one more pass over the files when the table was
    /// not kept).
    pub fn trajectory_scores(&self, spec: &ScoreSpec) -> Result<Vec<Option<f64>>, EvalError> {
        if let Scan::Table(t) = &self.scan {
            return Ok(t.trajectory_scores(spec)?);
        }
        let scores = self
            .source()
            .with_scores(&[vec![*spec]], |_, mut s| Ok(s.pop().unwrap_or_default()))?
            .pop()
            .ok_or(EvalError::NoRecords)?;
        Ok(scores
            .into_iter()
            .map(|s| (!s.is_nan()).then_some(s))
            .collect())
    }

    pub(crate) fn source(&self) -> ScoreSource<'_> {
        match &self.scan {
            Scan::Table(t) => ScoreSource::Table(t),
            Scan::Files(f) => ScoreSource::Files(f),
        }
    }
}

/// Record files to be scored pass by pass (see the module doc).
pub(crate) struct FileScores {
    paths: Vec<PathBuf>,
    /// Length and modification time of each file when scanned: a file changed between passes
    /// is an error, never scores of other records.
    stamps: Vec<(u64, Option<SystemTime>)>,
    kept: [bool; N_SOURCES],
    labels: Vec<Option<f64>>,
    judges: Vec<(JudgeName, bool, bool)>,
    /// Each candidate cell with the table's verdict on it (the first batch's error in
    /// input order is the whole table's first error).
    checks: Vec<(ScoreSpec, Result<(), ScoreError>)>,
    cells_per_pass: usize,
}

/// Ids of every record in one buffer (a heap string per record would cost ~56 B at 10⁷).
#[derive(Default)]
pub(crate) struct IdArena {
    bytes: String,
    ends: Vec<usize>,
}

impl IdArena {
    fn push(&mut self, id: &str) {
        self.bytes.push_str(id);
        self.ends.push(self.bytes.len());
    }

    /// Number of ids.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Id `i` (empty past the end).
    pub(crate) fn get(&self, i: usize) -> &str {
        let start = if i == 0 {
            0
        } else {
            self.ends.get(i - 1).copied().unwrap_or(0)
        };
        let end = self.ends.get(i).copied().unwrap_or(start);
        self.bytes.get(start..end).unwrap_or("")
    }
}

fn stamp(path: &Path) -> Result<(u64, Option<SystemTime>), EvalError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| EvalError::Records(format!("{}: {e}", path.display())))?;
    Ok((meta.len(), meta.modified().ok()))
}

/// Read `paths` once, a batch at a time: build the score table of `methods` while it stays
/// within `budget` bytes; past that, drop it and collect per record its id and label, the
/// judges, and the verdict on each of `candidates` (what [`FileScores`] needs).
pub(crate) fn scan(
    paths: &[PathBuf],
    methods: &[Method],
    candidates: &[ScoreSpec],
    budget: usize,
) -> Result<RecordScan, EvalError> {
    let mut builder = Some(crate::score::ScoreTableBuilder::for_methods(methods));
    let kept = sources_read_by(methods);
    // What the passes need, collected only once the table is dropped (seeded from the
    // records the table held until then).
    let mut streamed = Streamed::new(candidates);
    let mut stamps = Vec::with_capacity(paths.len());
    // The kept table's size, summed over its batches (recounting the whole table after each
    // batch would cost O(records²)).
    let mut table_bytes = 0usize;
    for path in paths {
        stamps.push(stamp(path)?);
        for batch in RecordBatches::open(path)? {
            let batch = batch?;
            let part = ScoreTable::precompute_kept(&batch, kept)?;
            drop(batch);
            if let Some(b) = builder.as_mut() {
                table_bytes = table_bytes.saturating_add(part.approx_bytes());
                if table_bytes <= budget {
                    b.push_part(part);
                    continue;
                }
                if let Some(table) = builder.take().and_then(|b| b.finish()) {
                    streamed.absorb(&table);
                }
            }
            streamed.absorb(&part);
        }
    }
    if let Some(b) = builder {
        let table = b.finish().ok_or(EvalError::NoRecords)?;
        return Ok(RecordScan {
            scan: Scan::Table(table),
            ids: IdArena::default(),
        });
    }
    // Score vectors of a pass: an `f64` per record per cell, within the budget.
    let per_cell = streamed.labels.len().max(1) * std::mem::size_of::<f64>();
    let files = FileScores {
        paths: paths.to_vec(),
        stamps,
        kept,
        labels: streamed.labels,
        judges: streamed.judges.into_values().collect(),
        checks: streamed.checks,
        cells_per_pass: (budget / per_cell).max(1),
    };
    Ok(RecordScan {
        scan: Scan::Files(files),
        ids: streamed.ids,
    })
}

/// Per record its id and label, the judges, and the verdict on each candidate cell, gathered
/// table by table in input order.
struct Streamed {
    labels: Vec<Option<f64>>,
    ids: IdArena,
    judges: BTreeMap<String, (JudgeName, bool, bool)>,
    checks: Vec<(ScoreSpec, Result<(), ScoreError>)>,
}

impl Streamed {
    fn new(candidates: &[ScoreSpec]) -> Self {
        Streamed {
            labels: Vec::new(),
            ids: IdArena::default(),
            judges: BTreeMap::new(),
            checks: candidates
                .iter()
                .filter(|s| s.method != Method::Judge)
                .map(|s| (*s, Ok(())))
                .collect(),
        }
    }

    /// Add the records of `table`, which come after those added before.
    fn absorb(&mut self, table: &ScoreTable) {
        self.labels.extend_from_slice(table.labels());
        for id in table.ids() {
            self.ids.push(id);
        }
        for (name, traj, steps) in table.judges() {
            let e = self
                .judges
                .entry(name.to_string())
                .or_insert((name, false, false));
            e.1 |= traj;
            e.2 |= steps;
        }
        // A cell's first error over the records so far is the whole table's first error.
        for (spec, verdict) in self.checks.iter_mut().filter(|c| c.1.is_ok()) {
            if let Err(e) = table.scorer(spec) {
                *verdict = Err(e);
            }
        }
    }
}

impl FileScores {
    fn check(&self, spec: &ScoreSpec) -> Result<(), ScoreError> {
        if spec.method == Method::Judge {
            return check_judge_spec(spec, &self.judges);
        }
        match self.checks.iter().find(|c| c.0 == *spec) {
            Some((_, verdict)) => verdict.clone(),
            None => Err(ScoreError::InvalidSpec(format!(
                "cell {} was not checked when the record files were scanned",
                spec.label()
            ))),
        }
    }

    /// The trajectory scores of `specs`, from one pass over the files.
    fn scores(&self, specs: &[ScoreSpec]) -> Result<Vec<Vec<f64>>, EvalError> {
        let n = self.labels.len();
        let mut out: Vec<Vec<f64>> = specs.iter().map(|_| Vec::with_capacity(n)).collect();
        let mut seen = 0;
        for (path, &was) in self.paths.iter().zip(&self.stamps) {
            let changed = || {
                EvalError::Records(format!(
                    "{}: the file changed while it was being evaluated (it is read once per \
                     group of grid cells); evaluate a copy that stays put",
                    path.display()
                ))
            };
            if stamp(path)? != was {
                return Err(changed());
            }
            for batch in RecordBatches::open(path)? {
                let batch = batch?;
                let part = ScoreTable::precompute_kept(&batch, self.kept)?;
                drop(batch);
                let end = seen + part.len();
                if self.labels.get(seen..end) != Some(part.labels()) {
                    return Err(changed());
                }
                seen = end;
                for (spec, scores) in specs.iter().zip(out.iter_mut()) {
                    match part.scorer(spec) {
                        Ok(s) => scores.extend(s.trajectory_scores_nan()),
                        // A batch without any of this judge's values: its records have none,
                        // as in the whole table.
                        Err(ScoreError::UnknownJudge { .. }) if spec.method == Method::Judge => {
                            scores.extend(std::iter::repeat_n(f64::NAN, part.len()))
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            if stamp(path)? != was {
                return Err(changed());
            }
        }
        if seen != n {
            return Err(EvalError::Records(format!(
                "the record files held {n} records when scanned and {seen} now; evaluate copies \
                 that stay put"
            )));
        }
        Ok(out)
    }
}
