//! `Records`: log-prob records held in Rust memory (the evaluations read them there, with
//! no conversion), built from files, from Python dicts or from a trainer's arrays.

use std::borrow::Cow;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use numpy::{Element, PyReadonlyArray1};
use padv_core::record::arrays::{record_from_arrays, steps_from_mask, TokenArrays};
use padv_core::record::{
    read_records as read_any, read_records_parquet_bytes, validate, write_records_atomic,
    write_records_parquet_atomic,
};
use padv_core::LogprobRecord;
use pyo3::exceptions::PyIndexError;
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::errors::{padv_err, padv_msg};

/// Log-prob records (one per trajectory): what `padv score` writes and every evaluation
/// reads. Index it for a record as a dict; `to_list()` for all of them.
#[pyclass(module = "padv._padv", name = "Records", frozen, sequence)]
pub struct Records {
    pub(crate) inner: Arc<Vec<LogprobRecord>>,
}

impl Records {
    pub(crate) fn new(records: Vec<LogprobRecord>) -> Self {
        Records {
            inner: Arc::new(records),
        }
    }
}

#[pymethods]
impl Records {
    /// Records from a list of dicts in the record format (as `to_list()` returns them),
    /// each checked as a record file's line is.
    #[new]
    fn from_dicts(items: &Bound<'_, PyList>) -> PyResult<Self> {
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let rec: LogprobRecord =
                pythonize::depythonize(&item).map_err(|e| padv_msg(format!("record {i}: {e}")))?;
            validate(&rec).map_err(|e| padv_msg(format!("record {i} (id {:?}): {e}", rec.id)))?;
            out.push(rec);
        }
        Ok(Records::new(out))
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __getitem__<'py>(&self, py: Python<'py>, index: isize) -> PyResult<Bound<'py, PyAny>> {
        let n = self.inner.len() as isize;
        let i = if index < 0 { index + n } else { index };
        if !(0..n).contains(&i) {
            return Err(PyIndexError::new_err(format!(
                "record index {index} out of range for {n} records"
            )));
        }
        Ok(pythonize::pythonize(py, &self.inner[i as usize])?)
    }

    /// Every record as a dict (the JSONL format's fields).
    fn to_list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(pythonize::pythonize(py, &*self.inner)?)
    }

    /// The records' ids, in order.
    #[getter]
    fn ids(&self) -> Vec<String> {
        self.inner.iter().map(|r| r.id.clone()).collect()
    }

    /// Writes the records as JSONL (what `padv eval` reads), atomically.
    fn write_jsonl(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let records = Arc::clone(&self.inner);
        py.detach(move || write_records_atomic(&path, &records))
            .map_err(|e| padv_err(&e))
    }

    /// Writes the records as Parquet (the documented schema: one row per trajectory, list
    /// columns per step), atomically. `padv eval` and `padv.read_records` read it back.
    fn write_parquet(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let records = Arc::clone(&self.inner);
        py.detach(move || write_records_parquet_atomic(&path, &records))
            .map_err(|e| padv_err(&e))
    }

    fn __repr__(&self) -> String {
        let steps: usize = self.inner.iter().map(|r| r.steps.len()).sum();
        let labelled = self.inner.iter().filter(|r| r.label.is_some()).count();
        format!(
            "Records({} trajectories, {steps} steps, {labelled} labelled)",
            self.inner.len()
        )
    }
}

/// Reads record files (JSONL or Parquet, told apart by content, as `padv eval` does), in
/// order.
#[pyfunction]
pub fn read_records(py: Python<'_>, paths: Vec<PathBuf>) -> PyResult<Records> {
    py.detach(move || {
        let mut out = Vec::new();
        for p in &paths {
            out.extend(read_any(p)?);
        }
        Ok::<_, padv_core::record::RecordError>(out)
    })
    .map(Records::new)
    .map_err(|e| padv_err(&e))
}

/// Records from an in-memory Parquet file in the documented schema (what the Python layer
/// makes of a pyarrow/pandas/polars table in that schema); `name` names it in errors.
#[pyfunction]
pub fn records_from_parquet_bytes(py: Python<'_>, data: Vec<u8>, name: &str) -> PyResult<Records> {
    let name = PathBuf::from(name);
    py.detach(move || read_records_parquet_bytes(&name, bytes::Bytes::from(data)))
        .map(Records::new)
        .map_err(|e| padv_err(&e))
}

/// One trajectory's steps as `(start, end)` token ranges.
type StepSpans = Vec<(usize, usize)>;

/// The native half of `padv.records_from_logprobs`: one entry per trajectory in every list.
/// The Python layer has already turned tensors into contiguous float32/bool numpy arrays
/// (no copy when they were already so), which are read here in place.
#[pyfunction]
#[pyo3(signature = (policy, reference, masks, steps, ids, task_ids, labels, mistake_steps, message_indices, vocab_size=None))]
#[allow(clippy::too_many_arguments)]
pub fn records_from_arrays(
    policy: Vec<PyReadonlyArray1<'_, f32>>,
    reference: Option<Vec<PyReadonlyArray1<'_, f32>>>,
    masks: Option<Vec<PyReadonlyArray1<'_, bool>>>,
    steps: Option<Vec<Option<StepSpans>>>,
    ids: Vec<String>,
    task_ids: Vec<Option<String>>,
    labels: Vec<Option<f64>>,
    mistake_steps: Vec<Option<usize>>,
    message_indices: Option<Vec<Option<Vec<usize>>>>,
    vocab_size: Option<usize>,
) -> PyResult<Records> {
    let n = policy.len();
    let check = |what: &str, len: Option<usize>| match len {
        Some(l) if l != n => Err(padv_msg(format!(
            "{what} has {l} entries for {n} trajectories (policy_logprobs)"
        ))),
        _ => Ok(()),
    };
    check("reference_logprobs", reference.as_ref().map(Vec::len))?;
    check("mask", masks.as_ref().map(Vec::len))?;
    check("step_spans", steps.as_ref().map(Vec::len))?;
    check("ids", Some(ids.len()))?;
    check("task_ids", Some(task_ids.len()))?;
    check("labels", Some(labels.len()))?;
    check("mistake_steps", Some(mistake_steps.len()))?;
    check("message_indices", message_indices.as_ref().map(Vec::len))?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let at = |e: String| padv_msg(format!("trajectory {i} (id {:?}): {e}", ids[i]));
        let p = view(&policy[i]);
        let r = reference.as_ref().map(|r| view(&r[i]));
        let mask = masks.as_ref().map(|m| view(&m[i]));
        let spans: Vec<Range<usize>> = match steps.as_ref().and_then(|s| s[i].as_ref()) {
            Some(s) => s.iter().map(|&(a, b)| a..b).collect(),
            None => match &mask {
                Some(m) => steps_from_mask(m),
                // No steps and no mask: the whole sequence is one step.
                None => std::iter::once(0..p.len()).collect(),
            },
        };
        let ix = message_indices.as_ref().and_then(|m| m[i].as_deref());
        let base = LogprobRecord {
            id: ids[i].clone(),
            task_id: task_ids[i].clone().unwrap_or_default(),
            label: labels[i],
            mistake_step: mistake_steps[i],
            vocab_size,
            ..LogprobRecord::default()
        };
        let rec = record_from_arrays(
            base,
            &TokenArrays {
                policy: &p,
                reference: r.as_deref(),
                mask: mask.as_deref(),
                steps: &spans,
                message_indices: ix,
            },
        )
        .map_err(at)?;
        out.push(rec);
    }
    let mut seen = std::collections::HashMap::new();
    for (i, r) in out.iter().enumerate() {
        if let Some(j) = seen.insert(r.id.as_str(), i) {
            return Err(padv_msg(format!(
                "trajectories {j} and {i} share the id {:?}: best-of-N would count one rollout twice",
                r.id
            )));
        }
    }
    Ok(Records::new(out))
}

/// The array's memory in place when it is contiguous (the Python layer makes sure it is),
/// else a gathered copy.
fn view<'a, T: Element + Copy>(a: &'a PyReadonlyArray1<'_, T>) -> Cow<'a, [T]> {
    match a.as_slice() {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(a.as_array().iter().copied().collect()),
    }
}
