//! Reading and writing log-prob record files as JSONL (Parquet: [`super::parquet`]; either,
//! by content: [`super::source`]).

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::LogprobRecord;
#[cfg(test)]
use super::StepLogprobs;

/// A record file that cannot be read, naming the file, the line and the field.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A line is not a valid record.
    #[error("{path}: record {line} (line {line}){id}: {message}", id = .id.as_ref().map(|i| format!(" id {i:?}")).unwrap_or_default())]
    Invalid {
        /// File.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Record id if it could be read.
        id: Option<String>,
        /// What is wrong, naming the field.
        message: String,
    },
    /// A Parquet file that cannot be read as records: not Parquet, truncated, a column
    /// missing or of the wrong type, an unsupported codec.
    #[error("{path}: {message}")]
    Parquet {
        /// File.
        path: PathBuf,
        /// What is wrong, naming the column.
        message: String,
    },
    /// A Parquet row that is not a valid record.
    #[error("{path}: record {row} (row {row}){id}: {message}", id = .id.as_ref().map(|i| format!(" id {i:?}")).unwrap_or_default())]
    InvalidRow {
        /// File.
        path: PathBuf,
        /// 1-based row number over the whole file.
        row: usize,
        /// Record id if it could be read.
        id: Option<String>,
        /// What is wrong, naming the field.
        message: String,
    },
}

/// Read every record of a JSONL file (whatever the format: [`super::read_records`]). Blank
/// lines are ignored. Any bad record is an error
/// naming the file, line, id and field (records are machine-written; a bad one means a bug
/// or a truncated file, which must not be scored silently).
pub fn read_records_jsonl(path: &Path) -> Result<Vec<LogprobRecord>, RecordError> {
    let mut out = Vec::new();
    for batch in JsonlRecords::open(path)? {
        out.extend(batch?);
    }
    Ok(out)
}

/// Records per batch of [`JsonlRecords`].
const JSONL_BATCH: usize = 8_192;

/// The records of a JSONL file, a batch at a time (an iterator of `Vec<LogprobRecord>` of
/// at most 8192 records, each validated): only the batch being parsed is in memory.
pub struct JsonlRecords {
    lines: std::io::Lines<BufReader<fs::File>>,
    path: PathBuf,
    /// Lines read so far.
    line: usize,
    failed: bool,
}

impl JsonlRecords {
    /// Open a JSONL record file.
    pub fn open(path: &Path) -> Result<Self, RecordError> {
        let file = fs::File::open(path).map_err(|source| RecordError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(JsonlRecords {
            lines: BufReader::with_capacity(1 << 20, file).lines(),
            path: path.to_path_buf(),
            line: 0,
            failed: false,
        })
    }

    fn next_batch(&mut self) -> Result<Vec<LogprobRecord>, RecordError> {
        let mut out = Vec::new();
        while out.len() < JSONL_BATCH {
            let Some(line) = self.lines.next() else {
                break;
            };
            let line = line.map_err(|source| RecordError::Io {
                path: self.path.clone(),
                source,
            })?;
            self.line += 1;
            // A UTF-8 byte-order mark (as some Windows editors write) starts the first line only.
            let text = if self.line == 1 {
                line.strip_prefix('\u{feff}').unwrap_or(&line)
            } else {
                &line
            };
            if text.trim().is_empty() {
                continue;
            }
            out.push(parse_line(&self.path, self.line, text)?);
        }
        Ok(out)
    }
}

impl Iterator for JsonlRecords {
    type Item = Result<Vec<LogprobRecord>, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let batch = self.next_batch();
        self.failed = batch.is_err();
        match batch {
            Ok(b) if b.is_empty() => None,
            other => Some(other),
        }
    }
}

/// Read records from an in-memory JSONL string; `path` is only used in error messages.
pub fn read_records_from_str(path: &Path, text: &str) -> Result<Vec<LogprobRecord>, RecordError> {
    text.strip_prefix('\u{feff}')
        .unwrap_or(text)
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| parse_line(path, i + 1, l))
        .collect()
}

fn parse_line(path: &Path, line: usize, text: &str) -> Result<LogprobRecord, RecordError> {
    let invalid = |id: Option<String>, message: String| RecordError::Invalid {
        path: path.to_path_buf(),
        line,
        id,
        message,
    };
    let record: LogprobRecord = serde_json::from_str(text).map_err(|e| {
        // Recover the id for the message when the JSON itself is fine.
        let id = serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| v.get("id").and_then(|x| x.as_str()).map(str::to_owned));
        invalid(id, format!("{e}"))
    })?;
    validate(&record).map_err(|m| invalid(Some(record.id.clone()), m))?;
    Ok(record)
}

/// Check the invariants documented in [`crate::record`]: arrays of a step have equal lengths,
/// values are finite (a value beyond f32's range, e.g. `-1e39`, parses to infinity and would
/// rank as an extreme score), log-probs are ≤ 0 (up to rounding), steps are in message
/// order, and, when `num_messages` is given, `mistake_step` and every `message_index` are
/// messages of the trajectory (without it, `mistake_step` may not lie after the last message
/// the steps or judge steps hold: FA could never find such a step); judge scores are finite, with valid names and steps in
/// message order ([`crate::judge::validate_judges`]).
pub fn validate(record: &LogprobRecord) -> Result<(), String> {
    if let Some(n) = record.num_messages {
        if let Some(m) = record.mistake_step.filter(|&m| m >= n) {
            return Err(format!(
                "field mistake_step: {m} is not a message of the trajectory (num_messages = {n})"
            ));
        }
        if let Some((k, step)) = record
            .steps
            .iter()
            .enumerate()
            .find(|(_, s)| s.message_index >= n)
        {
            return Err(format!(
                "field steps[{k}].message_index: {} is not a message of the trajectory \
                 (num_messages = {n})",
                step.message_index
            ));
        }
    } else if let (Some(m), Some(last)) = (
        record.mistake_step,
        record
            .steps
            .iter()
            .map(|s| s.message_index)
            .chain(
                record
                    .judges
                    .values()
                    .flat_map(|j| j.steps.iter().map(|s| s.message_index)),
            )
            .max(),
    ) {
        if m > last {
            return Err(format!(
                "field mistake_step: {m} lies after the last message the record holds ({last}); \
                 the record has no num_messages to say the trajectory is longer"
            ));
        }
    }
    let mut last: Option<usize> = None;
    for (k, step) in record.steps.iter().enumerate() {
        if let Some(prev) = last {
            if step.message_index <= prev {
                return Err(format!(
                    "field steps[{k}].message_index: {} is not after the previous step's {prev}",
                    step.message_index
                ));
            }
        }
        last = Some(step.message_index);
        check_array(k, "policy", &step.policy, step.len(), true)?;
        let optional: [(&str, &Option<Vec<f32>>, bool); 4] = [
            ("reference", &step.reference, true),
            ("policy_topk_mean", &step.policy_topk_mean, true),
            ("policy_entropy", &step.policy_entropy, false),
            ("policy_vocab_mean", &step.policy_vocab_mean, true),
        ];
        for (name, arr, is_logprob) in optional {
            if let Some(a) = arr {
                check_array(k, name, a, step.len(), is_logprob)?;
            }
        }
    }
    crate::judge::validate_judges(&record.judges, record.num_messages)?;
    if let Some(label) = record.label {
        if !label.is_finite() {
            return Err(format!("field label: {label} is not a finite number"));
        }
    }
    Ok(())
}

fn check_array(
    step: usize,
    name: &str,
    values: &[f32],
    expected_len: usize,
    is_logprob: bool,
) -> Result<(), String> {
    if values.len() != expected_len {
        return Err(format!(
            "field steps[{step}].{name}: {} values, but policy has {expected_len}",
            values.len()
        ));
    }
    for (t, v) in values.iter().enumerate() {
        if !v.is_finite() {
            return Err(format!(
                "field steps[{step}].{name}[{t}]: {v} is not a finite number (NaN, or beyond \
                 the f32 range)"
            ));
        }
        // Small positive rounding (e.g. -0.0 written as 1e-7) is tolerated.
        if is_logprob && *v > 1e-3 {
            return Err(format!(
                "field steps[{step}].{name}[{t}]: {v} is a positive log-probability"
            ));
        }
        if !is_logprob && *v < -1e-3 {
            return Err(format!(
                "field steps[{step}].{name}[{t}]: {v} is a negative entropy"
            ));
        }
    }
    Ok(())
}

/// Write records as JSONL (whatever the format: [`super::write_records_as`]) atomically: to a temporary file beside `path`, then renamed, so a
/// crash never leaves a partially written output.
pub fn write_records_atomic(path: &Path, records: &[LogprobRecord]) -> Result<(), RecordError> {
    crate::atomic::write_atomic(path, |w| {
        for r in records {
            serde_json::to_writer(&mut *w, r).map_err(std::io::Error::other)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })
    .map_err(|source| RecordError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(json: &str) -> Result<LogprobRecord, RecordError> {
        parse_line(Path::new("r.jsonl"), 3, json)
    }

    #[test]
    fn reads_minimal_record() {
        let r =
            line(r#"{"id":"a","task_id":"t","steps":[{"message_index":1,"policy":[-1.0,-0.5]}]}"#)
                .unwrap();
        assert_eq!(r.steps[0].policy, vec![-1.0, -0.5]);
        assert_eq!(r.label, None);
        assert!(r.steps[0].reference.is_none());
    }

    #[test]
    fn length_mismatch_names_field_and_line() {
        let e = line(r#"{"id":"a","task_id":"t","steps":[{"message_index":1,"policy":[-1.0],"reference":[-1.0,-2.0]}]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("r.jsonl"), "{e}");
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("steps[0].reference"), "{e}");
        assert!(e.contains("\"a\""), "{e}");
    }

    #[test]
    fn missing_field_is_named() {
        let e = line(r#"{"id":"a","steps":[]}"#).unwrap_err().to_string();
        assert!(e.contains("task_id"), "{e}");
        assert!(e.contains("\"a\""), "{e}");
    }

    #[test]
    fn positive_logprob_rejected() {
        let e = line(r#"{"id":"a","task_id":"t","steps":[{"message_index":1,"policy":[0.5]}]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("steps[0].policy[0]"), "{e}");
    }

    #[test]
    fn out_of_order_steps_rejected() {
        let e = line(r#"{"id":"a","task_id":"t","steps":[{"message_index":3,"policy":[]},{"message_index":1,"policy":[]}]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("steps[1].message_index"), "{e}");
    }

    #[test]
    fn values_beyond_f32_and_nan_are_rejected_with_their_position() {
        // -1e39 overflows f32 to -inf; it must not be ranked as a score.
        let e =
            line(r#"{"id":"a","task_id":"t","steps":[{"message_index":1,"policy":[-0.5,-1e39]}]}"#)
                .unwrap_err()
                .to_string();
        assert!(
            e.contains("steps[0].policy[1]") && e.contains("id \"a\""),
            "{e}"
        );
        assert!(
            e.contains("inf") && e.contains("line 3") && e.contains("r.jsonl"),
            "{e}"
        );
        let e = line(r#"{"id":"b","task_id":"t","steps":[{"message_index":1,"policy":[-0.5],"policy_entropy":[1e39]}]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("steps[0].policy_entropy[0]"), "{e}");
        // JSON has no NaN literal; an in-memory NaN is rejected by `validate`.
        let mut r =
            line(r#"{"id":"c","task_id":"t","steps":[{"message_index":1,"policy":[-0.5]}]}"#)
                .unwrap();
        r.steps[0].policy[0] = f32::NAN;
        assert!(validate(&r).unwrap_err().contains("steps[0].policy[0]"));
    }

    #[test]
    fn mistake_step_and_message_index_must_be_messages_when_num_messages_is_known() {
        let ok = r#"{"id":"a","task_id":"t","mistake_step":3,"num_messages":4,"steps":[{"message_index":3,"policy":[]}]}"#;
        assert_eq!(line(ok).unwrap().num_messages, Some(4));
        let e = line(r#"{"id":"a","task_id":"t","mistake_step":4,"num_messages":4,"steps":[]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("field mistake_step: 4") && e.contains("num_messages = 4"),
            "{e}"
        );
        let e = line(r#"{"id":"a","task_id":"t","num_messages":2,"steps":[{"message_index":2,"policy":[]}]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("steps[0].message_index"), "{e}");
        // Without num_messages (older writers) the messages present bound it: the steps'.
        assert!(line(r#"{"id":"a","task_id":"t","mistake_step":40,"steps":[]}"#).is_ok());
        let e = line(r#"{"id":"a","task_id":"t","mistake_step":999999,"steps":[{"message_index":3,"policy":[]}]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("mistake_step: 999999"), "{e}");
        assert!(line(
            r#"{"id":"a","task_id":"t","mistake_step":3,"steps":[{"message_index":3,"policy":[]}]}"#
        )
        .is_ok());
    }

    #[test]
    fn a_byte_order_mark_is_accepted() {
        let text = "\u{feff}{\"id\":\"a\",\"task_id\":\"t\",\"steps\":[]}\n";
        let got = read_records_from_str(Path::new("bom.jsonl"), text).unwrap();
        assert_eq!(got[0].id, "a");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bom.jsonl");
        std::fs::write(&path, text).unwrap();
        assert_eq!(read_records_jsonl(&path).unwrap()[0].id, "a");
    }

    #[test]
    fn round_trip_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let rec = LogprobRecord {
            num_messages: None,
            judges: Default::default(),
            id: "x".into(),
            task_id: "t".into(),
            label: Some(1.0),
            mistake_step: Some(2),
            vocab_size: Some(10),
            steps: vec![StepLogprobs {
                message_index: 2,
                policy: vec![-0.25, -1.5],
                reference: Some(vec![-0.5, -1.0]),
                ..Default::default()
            }],
        };
        write_records_atomic(&path, std::slice::from_ref(&rec)).unwrap();
        assert_eq!(read_records_jsonl(&path).unwrap(), vec![rec]);
        // No temporary files left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
