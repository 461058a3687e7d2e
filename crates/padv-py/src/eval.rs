//! `padv.evaluate`: the CLI's `padv eval` on records in memory or on record files, returning
//! its report.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use padv_core::eval::{
    evaluate as run_evaluation, scan_record_files, EvalKind, EvalReport, EvalRequest,
    DEFAULT_TABLE_BUDGET,
};
use padv_core::score::{JudgeLevel, Method, PaMode, StepAgg, TokenAgg};
use pyo3::prelude::*;

use crate::errors::{padv_err, padv_msg};
use crate::records::Records;

/// An evaluation's report: `table()` is what `padv eval` prints, `to_dict()` what
/// `padv eval --json` prints.
#[pyclass(module = "padv._padv", name = "Report", frozen)]
pub struct Report {
    inner: EvalReport,
}

#[pymethods]
impl Report {
    /// The report as `padv eval` prints it: which number is better, what chance is.
    fn table(&self) -> String {
        self.inner.to_table()
    }

    /// The report as `padv eval --json` prints it, as Python objects.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(pythonize::pythonize(py, &self.inner)?)
    }

    /// The report as JSON text (byte for byte `padv eval --json`).
    fn to_json(&self) -> PyResult<String> {
        serde_json::to_string_pretty(&self.inner).map_err(|e| padv_err(&e))
    }

    /// A pandas DataFrame: `what="methods"` (default) has one row per method with its
    /// headline; `"cells"` one row per grid cell (UQ and FA). Needs pandas.
    #[pyo3(signature = (what="methods"))]
    fn to_pandas<'py>(&self, py: Python<'py>, what: &str) -> PyResult<Bound<'py, PyAny>> {
        let results = serde_json::to_value(&self.inner.results).map_err(|e| padv_err(&e))?;
        let Some(rows) = results.get(what) else {
            let keys: Vec<&str> = results
                .as_object()
                .map(|o| o.keys().map(String::as_str).collect())
                .unwrap_or_default();
            return Err(padv_msg(format!(
                "to_pandas({what:?}): this {} report has no {what:?}; it has {keys:?}",
                self.inner.evaluation.name()
            )));
        };
        let rows = pythonize::pythonize(py, rows)?;
        py.import("pandas")?
            .getattr("json_normalize")?
            .call1((rows,))
    }

    /// `uq`, `bon` or `fa`.
    #[getter]
    fn kind(&self) -> &'static str {
        self.inner.evaluation.name()
    }

    /// Why there was nothing (or not enough) to evaluate, if so.
    #[getter]
    fn note(&self) -> Option<String> {
        self.inner.note.clone()
    }

    fn __repr__(&self) -> String {
        self.inner.to_table()
    }
}

fn parse<T: FromStr>(what: &str, v: &str) -> PyResult<T>
where
    T::Err: std::fmt::Display,
{
    v.parse()
        .map_err(|e: T::Err| padv_msg(format!("{what}={v:?}: {e}")))
}

/// Evaluates records (a `Records`, or a list of record file paths, read as `padv eval` reads
/// them: a batch at a time, within `table_budget_mib`): `kind` is `uq`, `bon` or `fa`; the
/// keywords are `padv eval`'s flags.
#[pyfunction]
#[pyo3(signature = (records, kind, *, grid=false, method=None, token_agg="mean", step_agg="mean", pa_mode="diff_of_agg", beta=1.0, methods=None, bootstrap=1000, folds=5, seed=0, judge=None, judge_level=None, table_budget_mib=DEFAULT_TABLE_BUDGET >> 20))]
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    py: Python<'_>,
    records: &Bound<'_, PyAny>,
    kind: &str,
    grid: bool,
    method: Option<&str>,
    token_agg: &str,
    step_agg: &str,
    pa_mode: &str,
    beta: f64,
    methods: Option<Vec<String>>,
    bootstrap: usize,
    folds: usize,
    seed: u64,
    judge: Option<String>,
    judge_level: Option<&str>,
    table_budget_mib: usize,
) -> PyResult<Report> {
    let kind: EvalKind = parse("kind", kind)?;
    let request = EvalRequest {
        method: method.map(|m| parse::<Method>("method", m)).transpose()?,
        token_agg: parse::<TokenAgg>("token_agg", token_agg)?,
        step_agg: parse::<StepAgg>("step_agg", step_agg)?,
        pa_mode: parse::<PaMode>("pa_mode", pa_mode)?,
        beta,
        judge,
        judge_level: judge_level
            .map(|l| parse::<JudgeLevel>("judge_level", l))
            .transpose()?,
        grid,
        methods: methods
            .unwrap_or_default()
            .iter()
            .map(|m| parse::<Method>("methods", m))
            .collect::<PyResult<_>>()?,
        bootstrap,
        folds,
        seed,
    };
    if let Ok(records) = records.extract::<PyRef<'_, Records>>() {
        let records = Arc::clone(&records.inner);
        let has = |name: &str| {
            records
                .iter()
                .any(|r| r.judges.get(name).is_some_and(|j| j.trajectory.is_some()))
        };
        let cfg = request.config(Some(&has)).map_err(|e| padv_err(&e))?;
        let report = py
            .detach(move || run_evaluation(&records, kind, &cfg))
            .map_err(|e| padv_err(&e))?;
        return Ok(Report { inner: report });
    }
    let paths: Vec<PathBuf> = records.extract().map_err(|_| {
        padv_msg("records: expected padv.Records or a list of record file paths".to_string())
    })?;
    // As `padv eval`: the non-judge configuration steers the scan, the judge level is then
    // resolved on the judges the files carry.
    let first = request.config(None).map_err(|e| padv_err(&e))?;
    let budget = table_budget_mib.saturating_mul(1 << 20);
    let report = py
        .detach(move || {
            let scan = scan_record_files(&paths, kind, &first, budget)?;
            let judges = scan.judges();
            let has = |name: &str| judges.iter().any(|j| j.0.as_str() == name && j.1);
            scan.evaluate(kind, &request.config(Some(&has))?)
        })
        .map_err(|e| padv_err(&e))?;
    Ok(Report { inner: report })
}
