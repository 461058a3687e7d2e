//! Readers that turn agent logs into [`Trajectory`] values.
//!
//! Three formats are understood (see [`Format`]): tau2-bench results JSON, Who&When
//! failure-attribution logs, and OpenAI-style chat JSONL. Each reader decides which messages
//! are action steps, so nothing downstream needs to know where a trajectory came from.
//!
//! - [`read_file`] reads one file, detecting its format from the content unless
//!   [`ReadOptions::format`] forces one;
//! - [`read_inputs`] reads files and directories (expanded by [`expand_inputs`]).
//!
//! A malformed record (a tau2 simulation, a chat line, a Who&When file) is skipped and kept in
//! [`ReadReport::skipped`] so that one bad log does not stop a run; with
//! [`ReadOptions::strict`] it is returned as the error instead. Problems with one file as a
//! whole (unreadable, not JSON, unknown format, no `simulations` array) are errors of
//! [`read_file`]; [`read_inputs`] skips such a file (reporting it) unless strict. Repeated
//! trajectory ids are skipped (or, strict, an error) the same way.

mod chat_jsonl;
mod detect;
mod error;
mod fields;
mod inputs;
mod message;
mod tau2;
mod who_and_when;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use detect::detect_format;
pub use error::{FormatError, ParseFormatError};
pub use inputs::{expand_inputs, expand_inputs_excluding};

use crate::Trajectory;

/// Field name used in errors about a record (or file) that is not a JSON object at all.
pub(crate) const ROOT_FIELD: &str = "(root)";

/// A supported input format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// tau2-bench results JSON (`{"simulations": [...]}`): one trajectory per simulation.
    #[cfg_attr(feature = "clap", value(name = "tau2"))]
    Tau2,
    /// Who&When log (`{"history": [...], "mistake_step": "3", ...}`): one trajectory per file.
    #[cfg_attr(feature = "clap", value(name = "who_and_when", alias = "who-and-when"))]
    WhoAndWhen,
    /// OpenAI-style chat JSONL (`{"id", "messages": [...], "reward"?}` per line).
    #[cfg_attr(feature = "clap", value(name = "chat_jsonl", alias = "chat-jsonl"))]
    ChatJsonl,
}

impl Format {
    /// Every format, in documentation order.
    pub const ALL: [Format; 3] = [Format::Tau2, Format::WhoAndWhen, Format::ChatJsonl];

    /// The name used on the command line and in serialized output.
    pub fn name(self) -> &'static str {
        match self {
            Format::Tau2 => "tau2",
            Format::WhoAndWhen => "who_and_when",
            Format::ChatJsonl => "chat_jsonl",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = ParseFormatError;

    /// Accepts the snake_case names, case-insensitively, with `-` allowed for `_`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('-', "_");
        Format::ALL
            .into_iter()
            .find(|f| f.name() == wanted)
            .ok_or_else(|| ParseFormatError(s.to_owned()))
    }
}

/// How to read inputs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Force a format instead of detecting it from each file's content (default: detect).
    pub format: Option<Format>,
    /// Fail on the first malformed record, unreadable file or duplicate trajectory id instead
    /// of skipping it (default: skip and report).
    pub strict: bool,
    /// Files or folders that directory expansion must not read, e.g. the command's own
    /// output folder when it lies inside an input folder (its records would otherwise be read
    /// back as trajectories on the next run).
    pub exclude: Vec<PathBuf>,
}

/// The trajectories read from one file.
#[derive(Debug)]
pub struct ReadReport {
    /// The file.
    pub path: PathBuf,
    /// Its format (detected or forced); `None` when the file as a whole could not be read
    /// and was skipped (its error is in `skipped`).
    pub format: Option<Format>,
    /// Trajectories in file order.
    pub trajectories: Vec<Trajectory>,
    /// Malformed records, repeated trajectory ids and, for a file skipped as a whole, the
    /// file's error (always empty in strict mode).
    pub skipped: Vec<FormatError>,
}

/// Read one file. See the module docs for what is skipped and what fails.
pub fn read_file(path: &Path, opts: &ReadOptions) -> Result<ReadReport, FormatError> {
    let text = std::fs::read_to_string(path).map_err(|source| FormatError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read_str(path, &text, opts)
}

/// Read already loaded file content. `path` names the file in errors, and gives Who&When
/// trajectories their `<folder>/<stem>` id.
pub fn read_str(path: &Path, text: &str, opts: &ReadOptions) -> Result<ReadReport, FormatError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (format, document) = match opts.format {
        Some(format) => (format, None),
        None => {
            let detected = detect::detect(path, text)?;
            (detected.format, detected.document)
        }
    };
    let mut out = Collector::new(opts.strict);
    match format {
        Format::ChatJsonl => chat_jsonl::read(path, text, document.as_ref(), &mut out)?,
        Format::Tau2 | Format::WhoAndWhen => {
            let document = match document {
                Some(doc) => doc,
                None => serde_json::from_str(text).map_err(|e| FormatError::json(path, &e, 0))?,
            };
            if format == Format::Tau2 {
                tau2::read(path, &document, &mut out)?;
            } else {
                who_and_when::read(path, &document, &mut out)?;
            }
        }
    }
    let mut report = ReadReport {
        path: path.to_path_buf(),
        format: Some(format),
        trajectories: out.trajectories,
        skipped: out.skipped,
    };
    drop_duplicates(&mut report, &mut HashMap::new(), opts.strict)?;
    Ok(report)
}

/// Read every input: files as given, directories expanded by [`expand_inputs_excluding`]
/// (leaving out [`ReadOptions::exclude`]). One report per file, in input order.
///
/// Without [`ReadOptions::strict`], a file that cannot be read as a whole (truncated JSON,
/// unknown format, unreadable) is skipped: its report has no format, no trajectory, and the
/// error in `skipped`, so one broken log does not stop a folder. A trajectory id already read
/// (in this file or an earlier one) is skipped too and reported as
/// [`FormatError::DuplicateId`]: best-of-N would otherwise count the rollout twice. With
/// `strict`, the first such problem is the error. Bad input paths are always errors.
pub fn read_inputs(paths: &[PathBuf], opts: &ReadOptions) -> Result<Vec<ReadReport>, FormatError> {
    let mut seen = HashMap::new();
    let mut reports = Vec::new();
    for path in expand_inputs_excluding(paths, &opts.exclude)? {
        let mut report = match read_file(&path, opts) {
            Ok(r) => r,
            Err(e) if opts.strict => return Err(e),
            Err(e) => {
                tracing::warn!("skipping {}: {e}", path.display());
                ReadReport {
                    path,
                    format: None,
                    trajectories: Vec::new(),
                    skipped: vec![e],
                }
            }
        };
        drop_duplicates(&mut report, &mut seen, opts.strict)?;
        reports.push(report);
    }
    Ok(reports)
}

/// Move trajectories whose id is in `seen` (id → file and position of its first copy) to
/// `skipped`, or fail on the first one when `strict`; record the others in `seen`.
fn drop_duplicates(
    report: &mut ReadReport,
    seen: &mut HashMap<String, (PathBuf, usize)>,
    strict: bool,
) -> Result<(), FormatError> {
    let trajectories = std::mem::take(&mut report.trajectories);
    for (i, t) in trajectories.into_iter().enumerate() {
        if let Some((first_path, first)) = seen.get(&t.id) {
            let e = FormatError::DuplicateId {
                id: t.id.clone(),
                path: report.path.clone(),
                position: i,
                first_path: first_path.clone(),
                first_position: *first,
            };
            if strict {
                return Err(e);
            }
            report.skipped.push(e);
        } else {
            seen.insert(t.id.clone(), (report.path.clone(), i));
            report.trajectories.push(t);
        }
    }
    Ok(())
}

/// Gathers a reader's records, applying the skip-or-fail policy in one place.
#[derive(Debug)]
pub(crate) struct Collector {
    strict: bool,
    trajectories: Vec<Trajectory>,
    skipped: Vec<FormatError>,
}

impl Collector {
    pub(crate) fn new(strict: bool) -> Self {
        Collector {
            strict,
            trajectories: Vec::new(),
            skipped: Vec::new(),
        }
    }

    pub(crate) fn reserve(&mut self, n: usize) {
        self.trajectories.reserve(n);
    }

    /// Keep a good record; skip a bad one, or return it as the error when strict.
    pub(crate) fn add(
        &mut self,
        record: Result<Trajectory, FormatError>,
    ) -> Result<(), FormatError> {
        match record {
            Ok(t) => self.trajectories.push(t),
            Err(e) if self.strict => return Err(e),
            Err(e) => self.skipped.push(e),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
