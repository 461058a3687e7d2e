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
//! [`ReadOptions::strict`] it is returned as the error instead. Problems with the file as a
//! whole (unreadable, not JSON, unknown format, no `simulations` array) are always errors.

mod chat_jsonl;
mod detect;
mod error;
mod fields;
mod inputs;
mod message;
mod tau2;
mod who_and_when;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use detect::detect_format;
pub use error::{FormatError, ParseFormatError};
pub use inputs::expand_inputs;

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
    /// Fail on the first malformed record instead of skipping it (default: skip and report).
    pub strict: bool,
}

/// The trajectories read from one file.
#[derive(Debug)]
pub struct ReadReport {
    /// The file.
    pub path: PathBuf,
    /// Its format (detected or forced).
    pub format: Format,
    /// Trajectories in file order.
    pub trajectories: Vec<Trajectory>,
    /// Malformed records that were skipped (always empty in strict mode).
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
    Ok(ReadReport {
        path: path.to_path_buf(),
        format,
        trajectories: out.trajectories,
        skipped: out.skipped,
    })
}

/// Read every input: files as given, directories expanded by [`expand_inputs`]. One report
/// per file, in input order. The first file-level error (or, when strict, bad record) stops
/// the read.
pub fn read_inputs(paths: &[PathBuf], opts: &ReadOptions) -> Result<Vec<ReadReport>, FormatError> {
    expand_inputs(paths)?
        .iter()
        .map(|path| read_file(path, opts))
        .collect()
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
