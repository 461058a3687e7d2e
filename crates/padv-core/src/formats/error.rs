//! Errors of the trajectory readers. Every variant names the file; record-level errors also
//! name the record (simulation, line, or the whole file) and the field path, so a user can jump
//! straight to the offending JSON.

use std::path::PathBuf;

/// Why an input file, or one record in it, could not be read.
///
/// [`FormatError::Json`] and [`FormatError::Field`] can describe a single bad record; those are
/// collected in [`super::ReadReport::skipped`] unless strict reading was asked for.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The file or directory could not be opened or read (including non-UTF-8 text).
    #[error("{path}: {source}", path = .path.display())]
    Io {
        /// File or directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The text is not valid JSON: the whole file (tau2, Who&When) or one JSONL line.
    #[error("{path}:{line}:{column}: invalid JSON: {message}", path = .path.display())]
    Json {
        /// File.
        path: PathBuf,
        /// 1-based line in the file.
        line: usize,
        /// 1-based column in that line (0 when the parser gave none, e.g. at end of input).
        column: usize,
        /// The parser's message, without its position.
        message: String,
    },
    /// The content matches none of the known formats.
    #[error("{path}: unknown trajectory format: {reason}", path = .path.display())]
    UnknownFormat {
        /// File.
        path: PathBuf,
        /// What was looked for and what was found instead.
        reason: String,
    },
    /// A field is missing, has the wrong type, or has an impossible value.
    #[error("{path}: {record}: field `{field}`: {message}", path = .path.display())]
    Field {
        /// File.
        path: PathBuf,
        /// Which record: e.g. `simulations[3] (id "abc")`, `line 7 (id "x")`, or `file`.
        record: String,
        /// Path of the field inside the record, e.g. `messages[4].tool_calls[0].name`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A trajectory id that an earlier trajectory already has (in this file or an earlier
    /// one): the later copy is skipped.
    #[error(
        "{path}: trajectory {position}: id {id:?} repeats trajectory {first_position} of \
         {first_path}",
        path = .path.display(),
        first_path = .first_path.display()
    )]
    DuplicateId {
        /// The repeated id.
        id: String,
        /// File of the repeat.
        path: PathBuf,
        /// 0-based position of the repeat among the file's trajectories.
        position: usize,
        /// File of the first copy.
        first_path: PathBuf,
        /// 0-based position of the first copy among that file's trajectories.
        first_position: usize,
    },
    /// A directory given as input holds no `*.json` / `*.jsonl` file.
    #[error("{path}: directory contains no *.json or *.jsonl files", path = .path.display())]
    EmptyDirectory {
        /// Directory.
        path: PathBuf,
    },
}

impl FormatError {
    /// Build a [`FormatError::Json`] from a serde_json error. `line_offset` is added to the
    /// parser's line, so that a JSONL line parsed on its own reports its line in the file.
    pub(crate) fn json(
        path: &std::path::Path,
        err: &serde_json::Error,
        line_offset: usize,
    ) -> Self {
        let (line, column) = (err.line(), err.column());
        let full = err.to_string();
        // serde_json appends " at line L column C" when it knows a position; the variant
        // carries the position itself, so keep only the description.
        let suffix = format!(" at line {line} column {column}");
        let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
        FormatError::Json {
            path: path.to_path_buf(),
            line: line + line_offset,
            column,
            message,
        }
    }
}

/// A `--format` name that is not one of the known formats.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format {0:?}: expected one of tau2, who_and_when, chat_jsonl")]
pub struct ParseFormatError(pub String);
