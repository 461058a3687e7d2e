//! [`ScoreTable`]: every step's token aggregates, precomputed once, struct-of-arrays.
//!
//! A full grid evaluation scores the same records under hundreds of (method, token agg,
//! step agg, PA mode) cells. Rescanning tokens per cell would cost `cells × tokens`; instead
//! one parallel pass computes all five token aggregates of every array of every step
//! (and of the policy − reference difference), and each cell then only reads one `f64`
//! column per step. Columns are contiguous per (array, aggregate), so a cell streams through
//! 8 bytes per step.

use std::collections::{BTreeSet, HashMap};

use rayon::prelude::*;

use super::aggregate::{TokenAgg, TokenStats};
use super::{Method, ScoreError};
use crate::judge::JudgeName;
use crate::record::{LogprobRecord, StepLogprobs};

/// The per-token arrays a table caches aggregates of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Policy = 0,
    Reference = 1,
    /// `policy − reference`, per token (PA agg-of-diff).
    Diff = 2,
    VocabMean = 3,
    TopkMean = 4,
    Entropy = 5,
}

pub(crate) const N_SOURCES: usize = 6;
const N_AGGS: usize = 5;
const ALL_SOURCES: [Source; N_SOURCES] = [
    Source::Policy,
    Source::Reference,
    Source::Diff,
    Source::VocabMean,
    Source::TopkMean,
    Source::Entropy,
];

impl Source {
    /// The record field this source is read from (what errors name).
    pub(crate) fn field(self) -> &'static str {
        match self {
            Source::Policy => "policy",
            Source::Reference | Source::Diff => "reference",
            Source::VocabMean => "policy_vocab_mean",
            Source::TopkMean => "policy_topk_mean",
            Source::Entropy => "policy_entropy",
        }
    }
}

/// Records per parallel work unit in [`ScoreTable::precompute`]: large enough that the
/// per-block bookkeeping is negligible, small enough to balance 100k records over cores.
const BLOCK_RECORDS: usize = 512;

/// Column storage shared by a block under construction and the final table.
#[derive(Debug, Clone, Default, PartialEq)]
struct Columns {
    message_index: Vec<usize>,
    n_tokens: Vec<u32>,
    /// `values[source * 5 + agg]`: one entry per step.
    values: Vec<Vec<f64>>,
    /// `present[source]`: whether the step carries the array (always true for empty steps,
    /// which need nothing).
    present: Vec<Vec<bool>>,
}

/// Every source kept (what [`ScoreTable::precompute`] builds).
const ALL_KEPT: [bool; N_SOURCES] = [true; N_SOURCES];

/// The sources the scores of `methods` read (all of them for an empty list).
pub(crate) fn sources_read_by(methods: &[Method]) -> [bool; N_SOURCES] {
    if methods.is_empty() {
        return ALL_KEPT;
    }
    let mut kept = [false; N_SOURCES];
    for m in methods {
        let read: &[Source] = match m {
            Method::Pa => &[Source::Policy, Source::Reference, Source::Diff],
            Method::PolicyLogprob => &[Source::Policy],
            Method::ReferenceLogprob => &[Source::Reference],
            Method::SelfCertainty => &[Source::VocabMean],
            Method::Deepconf
            | Method::DeepconfTail
            | Method::DeepconfBottom10
            | Method::SelfCertaintyRefimpl
            | Method::DeepconfTailRefimpl
            | Method::DeepconfBottom10Refimpl => &[Source::TopkMean],
            Method::NegEntropy => &[Source::Entropy],
            Method::Judge => &[],
        };
        for s in read {
            kept[*s as usize] = true;
        }
    }
    kept
}

impl Columns {
    /// Zero-filled columns. `vec![0; n]` is a zeroed allocation, so pages are first touched
    /// by the parallel fill itself (no separate zeroing pass, no second copy).
    /// A source not `kept` gets empty columns.
    fn zeroed(steps: usize, kept: [bool; N_SOURCES]) -> Columns {
        let len = |k: usize| if kept[k] { steps } else { 0 };
        Columns {
            message_index: vec![0; steps],
            n_tokens: vec![0; steps],
            values: (0..N_SOURCES * N_AGGS)
                .map(|k| vec![0.0; len(k / N_AGGS)])
                .collect(),
            present: (0..N_SOURCES).map(|k| vec![false; len(k)]).collect(),
        }
    }

    fn view(&mut self, kept: [bool; N_SOURCES]) -> ColumnsMut<'_> {
        ColumnsMut {
            kept,
            message_index: &mut self.message_index,
            n_tokens: &mut self.n_tokens,
            values: self.values.iter_mut().map(Vec::as_mut_slice).collect(),
            present: self.present.iter_mut().map(Vec::as_mut_slice).collect(),
        }
    }
}

/// A mutable window of every column over a range of steps: one per block of records, so
/// blocks fill disjoint parts of the final table in parallel, in safe Rust.
struct ColumnsMut<'a> {
    kept: [bool; N_SOURCES],
    message_index: &'a mut [usize],
    n_tokens: &'a mut [u32],
    values: Vec<&'a mut [f64]>,
    present: Vec<&'a mut [bool]>,
}

impl<'a> ColumnsMut<'a> {
    /// Split into the first `n` steps and the rest.
    fn split_at(self, n: usize) -> (ColumnsMut<'a>, ColumnsMut<'a>) {
        let (mi_a, mi_b) = self.message_index.split_at_mut(n);
        let (nt_a, nt_b) = self.n_tokens.split_at_mut(n);
        // A source not kept has empty columns: both halves stay empty.
        let (mut va, mut vb) = (Vec::new(), Vec::new());
        for v in self.values {
            let (a, b) = v.split_at_mut(n.min(v.len()));
            va.push(a);
            vb.push(b);
        }
        let (mut pa, mut pb) = (Vec::new(), Vec::new());
        for p in self.present {
            let (a, b) = p.split_at_mut(n.min(p.len()));
            pa.push(a);
            pb.push(b);
        }
        (
            ColumnsMut {
                kept: self.kept,
                message_index: mi_a,
                n_tokens: nt_a,
                values: va,
                present: pa,
            },
            ColumnsMut {
                kept: self.kept,
                message_index: mi_b,
                n_tokens: nt_b,
                values: vb,
                present: pb,
            },
        )
    }

    fn set_source(&mut self, i: usize, source: Source, stats: TokenStats, present: bool) {
        if !self.kept[source as usize] {
            return;
        }
        let base = source as usize * N_AGGS;
        for (k, v) in stats.0.iter().enumerate() {
            self.values[base + k][i] = *v;
        }
        self.present[source as usize][i] = present;
    }
}

/// Precomputed token aggregates of a set of records, plus what the evaluations need from
/// each record (id, task, label, mistake step). Build with [`ScoreTable::precompute`], then
/// score any number of specs with [`ScoreTable::scorer`].
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreTable {
    ids: Vec<String>,
    task_ids: Vec<String>,
    task_index: Vec<usize>,
    n_tasks: usize,
    labels: Vec<Option<f64>>,
    mistake_steps: Vec<Option<usize>>,
    /// `ln V` per record (0 when `vocab_size` is absent), for self-certainty.
    log_vocab: Vec<f64>,
    /// Steps of record `r` are `offsets[r]..offsets[r + 1]`.
    offsets: Vec<usize>,
    cols: Columns,
    /// Per source: every non-empty step carries the array (lets scoring skip the check).
    all_present: [bool; N_SOURCES],
    /// Per source: whether its columns were kept ([`ScoreTableBuilder::for_methods`]); the
    /// columns of a source not kept are empty and no scorer reads them.
    kept: [bool; N_SOURCES],
    /// The judges found in the records, by name.
    judges: Vec<JudgeColumns>,
}

/// One judge's values over a table's records (a record without them has none).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JudgeColumns {
    pub name: JudgeName,
    /// Per record, the trajectory value.
    pub trajectory: Vec<Option<f64>>,
    /// Step values of record `r` are `offsets[r]..offsets[r + 1]`.
    pub offsets: Vec<usize>,
    pub message_index: Vec<usize>,
    pub score: Vec<f64>,
}

impl JudgeColumns {
    fn build(name: JudgeName, records: &[LogprobRecord]) -> JudgeColumns {
        let mut cols = JudgeColumns {
            name,
            trajectory: Vec::with_capacity(records.len()),
            offsets: Vec::with_capacity(records.len() + 1),
            message_index: Vec::new(),
            score: Vec::new(),
        };
        cols.offsets.push(0);
        for r in records {
            let scores = r.judges.get(name.as_str());
            cols.trajectory.push(scores.and_then(|s| s.trajectory));
            for step in scores.map_or(&[][..], |s| s.steps.as_slice()) {
                cols.message_index.push(step.message_index);
                cols.score.push(step.score);
            }
            cols.offsets.push(cols.score.len());
        }
        cols
    }

    /// Whether any record has a trajectory value.
    pub fn has_trajectory(&self) -> bool {
        self.trajectory.iter().any(Option::is_some)
    }

    /// Whether any record has step values.
    pub fn has_steps(&self) -> bool {
        !self.score.is_empty()
    }

    /// Step-value indices of record `r` (empty past the end).
    pub fn steps_of(&self, r: usize) -> std::ops::Range<usize> {
        match (self.offsets.get(r), self.offsets.get(r + 1)) {
            (Some(&a), Some(&b)) => a..b,
            _ => 0..0,
        }
    }
}

impl ScoreTable {
    /// Aggregate every array of every step of `records`, in parallel.
    ///
    /// Fails only on malformed records (an array whose length differs from `policy`'s);
    /// a missing optional array is not an error here, only when a method needs it.
    pub fn precompute(records: &[LogprobRecord]) -> Result<ScoreTable, ScoreError> {
        Self::precompute_kept(records, ALL_KEPT)
    }

    /// [`ScoreTable::precompute`] keeping only the columns of the sources marked in `kept`
    /// ([`sources_read_by`]).
    pub(crate) fn precompute_kept(
        records: &[LogprobRecord],
        kept: [bool; N_SOURCES],
    ) -> Result<ScoreTable, ScoreError> {
        let total_steps: usize = records.iter().map(|r| r.steps.len()).sum();
        let mut cols = Columns::zeroed(total_steps, kept);
        let mut blocks = Vec::new();
        let mut rest = cols.view(kept);
        for chunk in records.chunks(BLOCK_RECORDS) {
            let n: usize = chunk.iter().map(|r| r.steps.len()).sum();
            let (head, tail) = rest.split_at(n);
            blocks.push((chunk, head));
            rest = tail;
        }
        let results: Vec<Result<(), ScoreError>> = blocks
            .into_par_iter()
            .map(|(chunk, view)| fill_block(chunk, view))
            .collect();
        // Report the first bad record in input order, whatever the thread schedule.
        results.into_iter().collect::<Result<(), ScoreError>>()?;

        let mut offsets = Vec::with_capacity(records.len() + 1);
        offsets.push(0);
        let mut task_of: HashMap<&str, usize> = HashMap::new();
        let mut task_index = Vec::with_capacity(records.len());
        for r in records {
            let last = offsets.last().copied().unwrap_or(0);
            offsets.push(last + r.steps.len());
            let next = task_of.len();
            task_index.push(*task_of.entry(r.task_id.as_str()).or_insert(next));
        }
        let mut all_present = [true; N_SOURCES];
        for s in ALL_SOURCES {
            all_present[s as usize] = cols.present[s as usize].iter().all(|&p| p);
        }
        let mut names: BTreeSet<&str> = BTreeSet::new();
        for r in records {
            for name in r.judges.keys() {
                if names.insert(name) {
                    JudgeName::check(name).map_err(|e| ScoreError::InvalidJudge {
                        record: r.id.clone(),
                        message: e.to_string(),
                    })?;
                }
            }
        }
        let judges = names
            .into_iter()
            .filter_map(|n| JudgeName::new(n).ok())
            .map(|n| JudgeColumns::build(n, records))
            .collect();
        Ok(ScoreTable {
            ids: records.iter().map(|r| r.id.clone()).collect(),
            task_ids: records.iter().map(|r| r.task_id.clone()).collect(),
            n_tasks: task_of.len(),
            task_index,
            labels: records.iter().map(|r| r.label).collect(),
            mistake_steps: records.iter().map(|r| r.mistake_step).collect(),
            log_vocab: records
                .iter()
                .map(|r| match r.vocab_size {
                    Some(v) if v > 0 => (v as f64).ln(),
                    _ => 0.0,
                })
                .collect(),
            offsets,
            cols,
            all_present,
            kept,
            judges,
        })
    }

    /// Approximate heap bytes of the table: its columns and per-record vectors, strings
    /// included, not the allocator's slack (what a memory budget counts).
    pub(crate) fn approx_bytes(&self) -> usize {
        let strings: usize = self
            .ids
            .iter()
            .chain(&self.task_ids)
            .map(|s| s.capacity() + std::mem::size_of::<String>())
            .sum();
        let per_record = std::mem::size_of::<usize>() * 2 // task index, offset
            + std::mem::size_of::<Option<f64>>()
            + std::mem::size_of::<Option<usize>>()
            + std::mem::size_of::<f64>();
        let cols = &self.cols;
        let values: usize = cols.values.iter().map(|v| v.capacity() * 8).sum();
        let present: usize = cols.present.iter().map(Vec::capacity).sum();
        let judges: usize = self
            .judges
            .iter()
            .map(|j| j.trajectory.len() * 16 + j.offsets.len() * 8 + j.score.len() * 16)
            .sum();
        strings
            + per_record * self.len()
            + cols.message_index.capacity() * 8
            + cols.n_tokens.capacity() * 4
            + values
            + present
            + judges
    }

    /// The judges the records carry, in name order, with whether any record has a trajectory
    /// value and whether any has step values.
    pub fn judges(&self) -> Vec<(JudgeName, bool, bool)> {
        self.judges
            .iter()
            .map(|j| (j.name, j.has_trajectory(), j.has_steps()))
            .collect()
    }

    pub(crate) fn judge_columns(&self, name: JudgeName) -> Option<&JudgeColumns> {
        self.judges.iter().find(|j| j.name == name)
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the table holds no record.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Total number of steps over all records.
    pub fn n_steps(&self) -> usize {
        self.cols.message_index.len()
    }

    /// Record ids, in input order.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// Task ids, in input order.
    pub fn task_ids(&self) -> &[String] {
        &self.task_ids
    }

    /// Per record, the index of its task in first-appearance order (`0..n_tasks()`).
    pub fn task_index(&self) -> &[usize] {
        &self.task_index
    }

    /// Number of distinct task ids.
    pub fn n_tasks(&self) -> usize {
        self.n_tasks
    }

    /// Outcome rewards (`label` field), in input order.
    pub fn labels(&self) -> &[Option<f64>] {
        &self.labels
    }

    /// Annotated mistake steps, in input order.
    pub fn mistake_steps(&self) -> &[Option<usize>] {
        &self.mistake_steps
    }

    /// Global step indices of `record`; empty for an index past the end.
    pub(crate) fn steps_of(&self, record: usize) -> std::ops::Range<usize> {
        match (self.offsets.get(record), self.offsets.get(record + 1)) {
            (Some(&a), Some(&b)) => a..b,
            _ => 0..0,
        }
    }

    pub(crate) fn column(&self, source: Source, agg: TokenAgg) -> &[f64] {
        &self.cols.values[source as usize * N_AGGS + agg.index()]
    }

    pub(crate) fn message_index(&self) -> &[usize] {
        &self.cols.message_index
    }

    pub(crate) fn n_tokens(&self) -> &[u32] {
        &self.cols.n_tokens
    }

    pub(crate) fn log_vocab(&self) -> &[f64] {
        &self.log_vocab
    }

    /// The first `(record, step position)` in `records` whose non-empty step lacks `source`.
    pub(crate) fn first_missing(
        &self,
        source: Source,
        records: std::ops::Range<usize>,
    ) -> Option<(usize, usize)> {
        if self.all_present[source as usize] {
            return None;
        }
        let present = &self.cols.present[source as usize];
        records.into_iter().find_map(|r| {
            self.steps_of(r)
                .position(|s| !present[s])
                .map(|pos| (r, pos))
        })
    }

    /// Whether `source`'s columns were kept (see [`ScoreTableBuilder::for_methods`]).
    pub(crate) fn kept(&self, source: Source) -> bool {
        self.kept[source as usize]
    }

    pub(crate) fn record_id(&self, record: usize) -> &str {
        self.ids.get(record).map(String::as_str).unwrap_or("")
    }
}

/// Builds a [`ScoreTable`] from records handed over a batch at a time (e.g. the batches of
/// [`crate::record::RecordBatches`]), so the token arrays of only one batch are ever in
/// memory: the table keeps each step's aggregates and each record's id, task, label and
/// mistake step, nothing per token.
///
/// The result equals [`ScoreTable::precompute`] on all the records at once (same columns,
/// same task order, same judges), so every evaluation of it is the same to the last bit.
#[derive(Debug)]
pub struct ScoreTableBuilder {
    table: Option<ScoreTable>,
    task_of: HashMap<String, usize>,
    kept: [bool; N_SOURCES],
}

impl Default for ScoreTableBuilder {
    fn default() -> Self {
        ScoreTableBuilder {
            table: None,
            task_of: HashMap::new(),
            kept: ALL_KEPT,
        }
    }
}

impl ScoreTableBuilder {
    /// An empty builder of a table for every method.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty builder of a table for `methods` only (every method when empty): the
    /// aggregates of the arrays no method of the list reads are not kept (PA alone needs 3
    /// of the 6 arrays' columns). Scoring another method with the table is an error, never
    /// a wrong number; the methods' own scores are those of the full table.
    pub fn for_methods(methods: &[Method]) -> Self {
        ScoreTableBuilder {
            kept: sources_read_by(methods),
            ..Self::default()
        }
    }

    /// Records added so far.
    pub fn len(&self) -> usize {
        self.table.as_ref().map_or(0, ScoreTable::len)
    }

    /// Whether no record was added yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Aggregate `records` (in parallel) and append them after the records added before.
    pub fn push(&mut self, records: &[LogprobRecord]) -> Result<(), ScoreError> {
        self.push_part(ScoreTable::precompute_kept(records, self.kept)?);
        Ok(())
    }

    /// Append a batch's table, precomputed with this builder's sources
    /// ([`sources_read_by`] of its methods).
    pub(crate) fn push_part(&mut self, part: ScoreTable) {
        // Task indices are first-appearance order over everything added so far.
        let task_index: Vec<usize> = part
            .task_ids
            .iter()
            .map(|t| {
                let next = self.task_of.len();
                match self.task_of.get(t.as_str()) {
                    Some(&i) => i,
                    None => {
                        self.task_of.insert(t.clone(), next);
                        next
                    }
                }
            })
            .collect();
        let n_tasks = self.task_of.len();
        let Some(table) = self.table.as_mut() else {
            self.table = Some(ScoreTable {
                task_index,
                n_tasks,
                ..part
            });
            return;
        };
        let (n_before, steps_before) = (table.len(), table.n_steps());
        table.ids.extend(part.ids);
        table.task_ids.extend(part.task_ids);
        table.task_index.extend(task_index);
        table.n_tasks = n_tasks;
        table.labels.extend(part.labels);
        table.mistake_steps.extend(part.mistake_steps);
        table.log_vocab.extend(part.log_vocab);
        table
            .offsets
            .extend(part.offsets.iter().skip(1).map(|o| o + steps_before));
        let cols = &mut table.cols;
        cols.message_index.extend(part.cols.message_index);
        cols.n_tokens.extend(part.cols.n_tokens);
        for (a, b) in cols.values.iter_mut().zip(part.cols.values) {
            a.extend(b);
        }
        for (a, b) in cols.present.iter_mut().zip(part.cols.present) {
            a.extend(b);
        }
        for (a, b) in table.all_present.iter_mut().zip(part.all_present) {
            *a &= b;
        }
        let n_part = task_index_len(&table.offsets, n_before);
        let mut incoming = part.judges;
        for j in &mut table.judges {
            match incoming.iter().position(|p| p.name == j.name) {
                Some(k) => j.append(incoming.swap_remove(k)),
                None => j.append(JudgeColumns::none(j.name, n_part)),
            }
        }
        for p in incoming {
            let mut j = JudgeColumns::none(p.name, n_before);
            j.append(p);
            table.judges.push(j);
        }
        // precompute lists judges in name order.
        table
            .judges
            .sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
    }

    /// The table of every record added; `None` when none was.
    pub fn finish(self) -> Option<ScoreTable> {
        self.table
    }
}

/// Records appended after the first `n_before` (from the offsets, one per record + 1).
fn task_index_len(offsets: &[usize], n_before: usize) -> usize {
    offsets.len().saturating_sub(1 + n_before)
}

impl JudgeColumns {
    /// `n` records without values of this judge.
    fn none(name: JudgeName, n: usize) -> JudgeColumns {
        JudgeColumns {
            name,
            trajectory: vec![None; n],
            offsets: vec![0; n + 1],
            message_index: Vec::new(),
            score: Vec::new(),
        }
    }

    /// Append another part's records after these.
    fn append(&mut self, other: JudgeColumns) {
        let base = self.score.len();
        self.trajectory.extend(other.trajectory);
        self.offsets
            .extend(other.offsets.iter().skip(1).map(|o| o + base));
        self.message_index.extend(other.message_index);
        self.score.extend(other.score);
    }
}

fn fill_block(records: &[LogprobRecord], mut cols: ColumnsMut<'_>) -> Result<(), ScoreError> {
    let mut i = 0;
    for record in records {
        for (pos, step) in record.steps.iter().enumerate() {
            fill_step(&mut cols, i, record, pos, step)?;
            i += 1;
        }
    }
    Ok(())
}

fn fill_step(
    cols: &mut ColumnsMut<'_>,
    i: usize,
    record: &LogprobRecord,
    pos: usize,
    step: &StepLogprobs,
) -> Result<(), ScoreError> {
    let n = step.policy.len();
    let checked = |field: &'static str, arr: &Option<Vec<f32>>| -> Result<(), ScoreError> {
        match arr {
            Some(a) if a.len() != n => Err(ScoreError::LengthMismatch {
                record: record.id.clone(),
                step: pos,
                message_index: step.message_index,
                field,
                expected: n,
                found: a.len(),
            }),
            _ => Ok(()),
        }
    };
    checked("reference", &step.reference)?;
    checked("policy_vocab_mean", &step.policy_vocab_mean)?;
    checked("policy_topk_mean", &step.policy_topk_mean)?;
    checked("policy_entropy", &step.policy_entropy)?;

    cols.message_index[i] = step.message_index;
    cols.n_tokens[i] = u32::try_from(n).unwrap_or(u32::MAX);
    let empty = n == 0;
    let stats = |arr: &Option<Vec<f32>>| match arr {
        Some(a) => (TokenStats::of(a), true),
        None => (TokenStats::EMPTY, empty),
    };
    cols.set_source(i, Source::Policy, TokenStats::of(&step.policy), true);
    let (reference, has_reference) = stats(&step.reference);
    cols.set_source(i, Source::Reference, reference, has_reference);
    let diff = match &step.reference {
        Some(r) => TokenStats::of_difference(&step.policy, r),
        None => TokenStats::EMPTY,
    };
    cols.set_source(i, Source::Diff, diff, has_reference);
    let (vocab, has_vocab) = stats(&step.policy_vocab_mean);
    cols.set_source(i, Source::VocabMean, vocab, has_vocab);
    let (topk, has_topk) = stats(&step.policy_topk_mean);
    cols.set_source(i, Source::TopkMean, topk, has_topk);
    let (entropy, has_entropy) = stats(&step.policy_entropy);
    cols.set_source(i, Source::Entropy, entropy, has_entropy);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, task: &str, steps: Vec<StepLogprobs>) -> LogprobRecord {
        LogprobRecord {
            num_messages: None,
            id: id.into(),
            task_id: task.into(),
            label: Some(1.0),
            mistake_step: None,
            vocab_size: None,
            steps,
            judges: Default::default(),
        }
    }

    #[test]
    fn offsets_tasks_and_columns() {
        let s = |mi: usize, p: Vec<f32>| StepLogprobs {
            message_index: mi,
            policy: p,
            ..Default::default()
        };
        let records = vec![
            rec("a", "t1", vec![s(1, vec![-1.0, -3.0]), s(3, vec![])]),
            rec("b", "t2", vec![s(2, vec![-2.0])]),
            rec("c", "t1", vec![]),
        ];
        let t = ScoreTable::precompute(&records).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t.n_steps(), 3);
        assert_eq!(t.steps_of(0), 0..2);
        assert_eq!(t.steps_of(1), 2..3);
        assert_eq!(t.steps_of(2), 3..3);
        assert_eq!(t.task_index(), &[0, 1, 0]);
        assert_eq!(t.n_tasks(), 2);
        // policy means: (-1 + -3) / 2 = -2, empty step 0, -2
        assert_eq!(t.column(Source::Policy, TokenAgg::Mean), &[-2.0, 0.0, -2.0]);
        assert_eq!(t.message_index(), &[1, 3, 2]);
        assert_eq!(t.n_tokens(), &[2, 0, 1]);
        // reference is absent: the non-empty step 0 of record 0 is the first missing one
        assert_eq!(t.first_missing(Source::Reference, 0..3), Some((0, 0)));
        assert_eq!(t.first_missing(Source::Reference, 2..3), None);
    }

    #[test]
    fn a_table_built_batch_by_batch_equals_the_precomputed_one() {
        use crate::judge::JudgeScores;
        let mut records = crate::synthetic::synthetic_records(300, 3, 2, 5);
        // A judge that first appears late, one that stops early, tasks spanning batches,
        // a record with no step.
        for (i, r) in records.iter_mut().enumerate() {
            let name = if i > 200 {
                "late"
            } else if i < 40 {
                "early"
            } else {
                continue;
            };
            r.judges.insert(
                name.into(),
                JudgeScores {
                    trajectory: Some(i as f64),
                    steps: vec![],
                },
            );
        }
        records[150].steps.clear();
        let whole = ScoreTable::precompute(&records).unwrap();
        for size in [1, 7, 64, 299, 300, 1000] {
            let mut b = ScoreTableBuilder::new();
            for chunk in records.chunks(size) {
                b.push(chunk).unwrap();
            }
            assert_eq!(b.len(), records.len());
            assert_eq!(b.finish().unwrap(), whole, "batches of {size}");
        }
        assert!(ScoreTableBuilder::new().finish().is_none());
    }

    #[test]
    fn length_mismatch_names_record_step_and_field() {
        let step = StepLogprobs {
            message_index: 5,
            policy: vec![-1.0, -2.0],
            policy_entropy: Some(vec![0.1]),
            ..Default::default()
        };
        let records = vec![rec("x", "t", vec![StepLogprobs::default(), step])];
        let e = ScoreTable::precompute(&records).unwrap_err();
        assert_eq!(
            e,
            ScoreError::LengthMismatch {
                record: "x".into(),
                step: 1,
                message_index: 5,
                field: "policy_entropy",
                expected: 2,
                found: 1
            }
        );
    }
}
