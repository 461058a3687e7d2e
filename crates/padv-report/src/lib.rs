//! # padv-report
//!
//! One self-contained HTML page of an evaluation: what a table cannot show. ROC curves of PA
//! and every baseline, score distributions and reliability diagrams (UQ); best-of-k curves
//! against the random pick and the oracle (best-of-N); the step-score trace of each
//! trajectory with the predicted and the annotated mistake (failure attribution); and the
//! aggregation grid as heat maps with the cross-validated choice marked.
//!
//! The page needs no network: SVG (drawn by plotters), CSS and a few lines of JavaScript
//! (sorting tables, switching the heat maps' metric) are inline. Markup is built with maud,
//! which escapes every interpolated value; text from trajectories is also stripped of
//! control characters. Large inputs get traces for a seeded sample only (the page says
//! so), so the file stays small.
//!
//! Every front end calls the same function: `padv report`, `padv score --eval … --report`,
//! and (through [`write_report`]) the gym demo.
//!
//! ```
//! use padv_core::eval::EvalConfig;
//! use padv_core::score::synthetic_records;
//! use padv_report::{evaluate_all, render_html, ReportInput, ReportOptions};
//!
//! let records = synthetic_records(64, 4, 3, 7);
//! let reports = evaluate_all(&records, &EvalConfig { bootstrap: 20, ..EvalConfig::default() })?;
//! let input = ReportInput::new("synthetic", &records, reports.iter().collect());
//! let html = render_html(&input, &ReportOptions::default())?;
//! assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<svg"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod bon;
mod colors;
mod fa;
mod grid;
mod header;
mod inputs;
mod page;
mod plots;
mod text;
mod uq;

use std::path::{Path, PathBuf};

use padv_core::eval::report::{BonReport, FaReport, ReportBody, UqReport};
use padv_core::eval::{evaluate, EvalConfig, EvalError, EvalKind, EvalReport};
use padv_core::score::{Method, ScoreError, ScoreTable};
use padv_core::{LogprobRecord, Trajectory};

pub use inputs::{ModelInfo, RunInfo, SourceFile};

/// The file [`write_report`] writes into its folder.
pub const REPORT_FILE: &str = "report.html";

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The inputs do not fit together (names what and why).
    #[error("{0}")]
    Input(String),
    /// Records could not be scored for a plot.
    #[error(transparent)]
    Score(#[from] ScoreError),
    /// An evaluation failed.
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// A chart could not be drawn.
    #[error("drawing a chart: {0}")]
    Plot(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// What a page is made from. Build with [`ReportInput::new`], then set the optional parts.
#[derive(Debug, Clone)]
pub struct ReportInput<'a> {
    /// The page's title (e.g. the records' folder).
    pub title: String,
    /// The log-prob records the reports were computed on, in the same order.
    pub records: &'a [LogprobRecord],
    /// Evaluation reports of `records` (any of UQ, best-of-N, FA; at most one of each).
    /// Heat maps need grid reports.
    pub reports: Vec<&'a EvalReport>,
    /// The trajectories the records were scored from (optional): their step texts are shown
    /// under each trace, matched by id.
    pub trajectories: &'a [Trajectory],
    /// The input files, with content hashes, for the header.
    pub sources: Vec<SourceFile>,
    /// The `padv score` run that made the records (models, renderer), when known.
    pub run: Option<RunInfo>,
}

impl<'a> ReportInput<'a> {
    /// Input with a title, the records and their reports; no trajectories, sources or run.
    pub fn new(title: &str, records: &'a [LogprobRecord], reports: Vec<&'a EvalReport>) -> Self {
        ReportInput {
            title: title.to_string(),
            records,
            reports,
            trajectories: &[],
            sources: Vec::new(),
            run: None,
        }
    }
}

/// Page options.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOptions {
    /// Most trajectories with a step trace (default 150); beyond it a seeded random sample
    /// is shown, and the page says so.
    pub max_traces: usize,
    /// Characters of each step's text shown under a trace (default 400).
    pub max_step_chars: usize,
    /// Seed of the trace sample (default 0).
    pub seed: u64,
    /// Size the page should stay under, in bytes (default 4.8 MB): when it would not, fewer
    /// traces are drawn (the page says how many of how many).
    pub max_bytes: usize,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            max_traces: 150,
            max_step_chars: 400,
            seed: 0,
            max_bytes: 4_800_000,
        }
    }
}

/// The three evaluations a page shows, over the grid of every method × aggregation (whatever
/// `cfg.grid` says: the page maps the grid), in the order UQ, best-of-N, FA. Bootstrap
/// intervals are computed for the headline cells only (the page shows no other), which are
/// the same intervals a full computation gives them.
pub fn evaluate_all(
    records: &[LogprobRecord],
    cfg: &EvalConfig,
) -> Result<Vec<EvalReport>, ReportError> {
    // The page keys its charts and tables by method, and every judge's row is
    // `Method::Judge` (told apart by name): until the page keys rows by judge too, judges are
    // left to `padv eval`, whose tables show them beside PA.
    let methods: Vec<Method> = if cfg.methods.is_empty() {
        Method::ALL.to_vec()
    } else {
        cfg.methods.clone()
    }
    .into_iter()
    .filter(|m| *m != Method::Judge)
    .collect();
    let cfg = EvalConfig {
        grid: true,
        cell_intervals: false,
        methods,
        ..cfg.clone()
    };
    Ok(EvalKind::ALL
        .iter()
        .map(|kind| evaluate(records, *kind, &cfg))
        .collect::<Result<_, _>>()?)
}

/// The HTML page (a complete document) for `input`.
pub fn render_html(input: &ReportInput<'_>, opts: &ReportOptions) -> Result<String, ReportError> {
    let ctx = Ctx::new(input, opts)?;
    page::render(&ctx)
}

/// Renders the page and writes it atomically to `dir/report.html` (the folder is created if
/// missing); returns the file's path.
pub fn write_report(
    dir: &Path,
    input: &ReportInput<'_>,
    opts: &ReportOptions,
) -> Result<PathBuf, ReportError> {
    let html = render_html(input, opts)?;
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join(REPORT_FILE);
    padv_core::atomic::write_bytes_atomic(&path, html.as_bytes()).map_err(|source| {
        ReportError::Io {
            path: path.clone(),
            source,
        }
    })?;
    Ok(path)
}

/// Everything the sections share, computed once.
pub(crate) struct Ctx<'a> {
    pub input: &'a ReportInput<'a>,
    pub opts: &'a ReportOptions,
    pub table: ScoreTable,
    pub uq: Option<(&'a EvalReport, &'a UqReport)>,
    pub bon: Option<(&'a EvalReport, &'a BonReport)>,
    pub fa: Option<(&'a EvalReport, &'a FaReport)>,
}

impl<'a> Ctx<'a> {
    fn new(input: &'a ReportInput<'a>, opts: &'a ReportOptions) -> Result<Ctx<'a>, ReportError> {
        if input.records.is_empty() {
            return Err(ReportError::Input("no records to report on".into()));
        }
        let mut ctx = Ctx {
            input,
            opts,
            table: ScoreTable::precompute(input.records)?,
            uq: None,
            bon: None,
            fa: None,
        };
        for r in &input.reports {
            if r.records != input.records.len() {
                return Err(ReportError::Input(format!(
                    "the {} report was computed on {} records, but {} records were given: a \
                     report must describe the records it is shown with",
                    r.evaluation,
                    r.records,
                    input.records.len()
                )));
            }
            let twice = |k: &str| ReportError::Input(format!("two {k} reports given"));
            match &r.results {
                ReportBody::Uq(u) if ctx.uq.is_none() => ctx.uq = Some((r, u)),
                ReportBody::Bon(b) if ctx.bon.is_none() => ctx.bon = Some((r, b)),
                ReportBody::Fa(f) if ctx.fa.is_none() => ctx.fa = Some((r, f)),
                _ => return Err(twice(r.evaluation.name())),
            }
        }
        Ok(ctx)
    }

    /// β of the reports (they share it when made from one configuration).
    pub fn beta(&self) -> Option<f64> {
        self.input.reports.first().map(|r| r.config.spec.beta)
    }
}
