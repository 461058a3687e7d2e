//! Scoring errors. Each names the record (by id), the step and the field involved.

use super::Method;

/// Why a record cannot be scored by a method.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScoreError {
    /// A method needs an array the record does not carry (e.g. `pa` without `reference`).
    #[error(
        "record {record:?}, step {step} (message {message_index}): method `{method}` needs field \
         `{field}`, which is missing"
    )]
    MissingField {
        /// Record id.
        record: String,
        /// 0-based position of the step within the record's `steps`.
        step: usize,
        /// The step's `message_index`.
        message_index: usize,
        /// The method that needs the field.
        method: Method,
        /// JSON name of the missing field.
        field: &'static str,
    },
    /// An array's length differs from `policy`'s (records read from files are validated
    /// already; this guards records built in memory).
    #[error(
        "record {record:?}, step {step} (message {message_index}): field `{field}` has {found} \
         values but `policy` has {expected}"
    )]
    LengthMismatch {
        /// Record id.
        record: String,
        /// 0-based step position.
        step: usize,
        /// The step's `message_index`.
        message_index: usize,
        /// JSON name of the offending field.
        field: &'static str,
        /// `policy`'s length.
        expected: usize,
        /// The field's length.
        found: usize,
    },
    /// A record index past the end of a [`super::ScoreTable`].
    #[error("record index {index} is out of range: the table holds {len} records")]
    RecordOutOfRange {
        /// The requested index.
        index: usize,
        /// Number of records.
        len: usize,
    },
    /// An invalid [`super::ScoreSpec`] (e.g. β ≤ 0).
    #[error("invalid score spec: {0}")]
    InvalidSpec(String),
    /// A judge cell names a judge (or a level of it) that no record carries.
    #[error("no record has {what} of judge {judge:?} (judges in these records: {available})")]
    UnknownJudge {
        /// The judge asked for.
        judge: String,
        /// `trajectory values` or `step values`.
        what: &'static str,
        /// The judges present, comma-separated (or `none`).
        available: String,
    },
    /// A record's `judges` has an invalid name (records read from files are validated
    /// already; this guards records built in memory).
    #[error("record {record:?}: field judges: {message}")]
    InvalidJudge {
        /// Record id.
        record: String,
        /// What is wrong.
        message: String,
    },
}
