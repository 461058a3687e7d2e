//! Judge scores in and out of records.
//!
//! The exchange format is JSONL, one value per line, keyed by trajectory id and, for a step
//! value, by message index:
//!
//! ```json
//! {"id": "sim-17", "score": 3.71}
//! {"id": "sim-17", "message_index": 3, "score": 0.12}
//! ```
//!
//! `padv judge` writes its scores in this format and attaches them with the same code that
//! imports a file made elsewhere ([`read_score_lines`] + [`attach`]). Every problem is an
//! error naming the file and line: a line that is not such an object (unknown fields
//! included, so a misspelt `message_index` is not read as a trajectory value), an id no
//! record has, a second value for the same (id, message index), a message index outside the
//! trajectory, a non-finite score.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{JudgeName, JudgeScores, JudgeStep};
use crate::record::LogprobRecord;

/// Why judge scores could not be read or attached.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A line is not a judge-score object.
    #[error("{path}: line {line}: {message}")]
    Invalid {
        /// File.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong, naming the field.
        message: String,
    },
    /// A line names a trajectory no record has.
    #[error("{path}: line {line}: unknown trajectory id {id:?} (no record has it)")]
    UnknownId {
        /// File.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The id.
        id: String,
    },
    /// Two lines give a value for the same trajectory (and message).
    #[error(
        "{path}: line {line}: duplicate score for trajectory {id:?}{at} (first given on line \
         {first_line})",
        at = .message_index.map(|m| format!(", message {m}")).unwrap_or_default()
    )]
    Duplicate {
        /// File.
        path: PathBuf,
        /// 1-based line of the repeat.
        line: usize,
        /// 1-based line of the first value.
        first_line: usize,
        /// Trajectory id.
        id: String,
        /// Message index of a step value.
        message_index: Option<usize>,
    },
    /// A step value's message index is not a message of the trajectory.
    #[error(
        "{path}: line {line}: field message_index: {message_index} is not a message of \
         trajectory {id:?} ({num_messages} messages)"
    )]
    OutsideTrajectory {
        /// File.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Trajectory id.
        id: String,
        /// The index given.
        message_index: usize,
        /// Messages of the trajectory.
        num_messages: usize,
    },
    /// A record already carries scores of this judge and replacing was not asked for.
    #[error(
        "record {id:?} already has scores of judge {judge:?}; choose another --name or pass \
         --replace"
    )]
    AlreadyPresent {
        /// The judge.
        judge: String,
        /// The first record that has them.
        id: String,
    },
}

/// One value read from a judge-score file.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgeScoreLine {
    /// 1-based line in the file.
    pub line: usize,
    /// Trajectory id.
    pub id: String,
    /// Message index of a step value; `None` for a trajectory value.
    pub message_index: Option<usize>,
    /// The value (finite).
    pub score: f64,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum IdValue {
    Text(String),
    Int(i64),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLine {
    id: IdValue,
    #[serde(default)]
    message_index: Option<usize>,
    score: f64,
}

#[derive(Serialize)]
struct OutLine<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_index: Option<usize>,
    score: f64,
}

/// Reads every value of a judge-score JSONL file (blank lines ignored; a UTF-8 byte-order
/// mark accepted).
pub fn read_score_lines(path: &Path) -> Result<Vec<JudgeScoreLine>, AttachError> {
    let io = |source| AttachError::Io {
        path: path.to_path_buf(),
        source,
    };
    let reader = BufReader::new(std::fs::File::open(path).map_err(io)?);
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(io)?;
        let text = if i == 0 {
            line.strip_prefix('\u{feff}').unwrap_or(&line)
        } else {
            &line
        };
        if text.trim().is_empty() {
            continue;
        }
        let invalid = |message: String| AttachError::Invalid {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let raw: RawLine = serde_json::from_str(text).map_err(|e| {
            invalid(format!(
                "{e} (expected {{\"id\", \"score\"}} or {{\"id\", \"message_index\", \"score\"}})"
            ))
        })?;
        if !raw.score.is_finite() {
            return Err(invalid(format!(
                "field score: {} is not a finite number",
                raw.score
            )));
        }
        out.push(JudgeScoreLine {
            line: i + 1,
            id: match raw.id {
                IdValue::Text(s) => s,
                IdValue::Int(n) => n.to_string(),
            },
            message_index: raw.message_index,
            score: raw.score,
        });
    }
    Ok(out)
}

/// Writes `scores` (trajectory id → a judge's scores) in the exchange format, atomically:
/// per id in the given order, the trajectory value first, then the step values.
pub fn write_score_lines(path: &Path, scores: &[(String, JudgeScores)]) -> std::io::Result<()> {
    crate::atomic::write_atomic(path, |w| {
        for (id, s) in scores {
            if let Some(v) = s.trajectory {
                line(w, id, None, v)?;
            }
            for step in &s.steps {
                line(w, id, Some(step.message_index), step.score)?;
            }
        }
        Ok(())
    })
}

fn line(
    w: &mut dyn Write,
    id: &str,
    message_index: Option<usize>,
    score: f64,
) -> std::io::Result<()> {
    let l = OutLine {
        id,
        message_index,
        score,
    };
    serde_json::to_writer(&mut *w, &l).map_err(std::io::Error::other)?;
    w.write_all(b"\n")
}

/// What [`attach`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AttachSummary {
    /// Records that received at least one value.
    pub records_scored: usize,
    /// Records the file gave nothing for (they evaluate as "no score" for this judge).
    pub records_without: usize,
    /// Trajectory values attached.
    pub trajectory_values: usize,
    /// Step values attached.
    pub step_values: usize,
}

/// Attaches the values of `lines` (read from `source`, named in errors) to `records` as
/// judge `judge`. All lines are checked before any record changes, so on error the records
/// are as they were. Without `replace`, a record that already has scores of this judge is an
/// error; with it, those scores are replaced (records the file does not mention lose them).
pub fn attach(
    records: &mut [LogprobRecord],
    judge: JudgeName,
    lines: &[JudgeScoreLine],
    source: &Path,
    replace: bool,
) -> Result<AttachSummary, AttachError> {
    let index: HashMap<&str, usize> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i))
        .collect();
    let mut seen: HashMap<(&str, Option<usize>), usize> = HashMap::new();
    let mut new: BTreeMap<usize, JudgeScores> = BTreeMap::new();
    for l in lines {
        let Some(&r) = index.get(l.id.as_str()) else {
            return Err(AttachError::UnknownId {
                path: source.to_path_buf(),
                line: l.line,
                id: l.id.clone(),
            });
        };
        if let Some(&first_line) = seen.get(&(l.id.as_str(), l.message_index)) {
            return Err(AttachError::Duplicate {
                path: source.to_path_buf(),
                line: l.line,
                first_line,
                id: l.id.clone(),
                message_index: l.message_index,
            });
        }
        seen.insert((l.id.as_str(), l.message_index), l.line);
        let entry = new.entry(r).or_default();
        match l.message_index {
            None => entry.trajectory = Some(l.score),
            Some(m) => {
                if let Some(n) = records[r].num_messages.filter(|&n| m >= n) {
                    return Err(AttachError::OutsideTrajectory {
                        path: source.to_path_buf(),
                        line: l.line,
                        id: l.id.clone(),
                        message_index: m,
                        num_messages: n,
                    });
                }
                entry.steps.push(JudgeStep {
                    message_index: m,
                    score: l.score,
                });
            }
        }
    }
    if !replace {
        if let Some(r) = records
            .iter()
            .find(|r| r.judges.contains_key(judge.as_str()))
        {
            return Err(AttachError::AlreadyPresent {
                judge: judge.to_string(),
                id: r.id.clone(),
            });
        }
    }
    let mut summary = AttachSummary::default();
    for (i, record) in records.iter_mut().enumerate() {
        match new.remove(&i) {
            Some(mut scores) => {
                scores.steps.sort_by_key(|s| s.message_index);
                summary.records_scored += 1;
                summary.trajectory_values += usize::from(scores.trajectory.is_some());
                summary.step_values += scores.steps.len();
                record.judges.insert(judge.to_string(), scores);
            }
            None => {
                summary.records_without += 1;
                record.judges.remove(judge.as_str());
            }
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, n: Option<usize>) -> LogprobRecord {
        LogprobRecord {
            id: id.into(),
            task_id: "t".into(),
            num_messages: n,
            ..Default::default()
        }
    }

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("scores.jsonl");
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    #[test]
    fn round_trip_and_attach() {
        let scores = vec![
            (
                "a".to_string(),
                JudgeScores {
                    trajectory: Some(3.5),
                    steps: vec![JudgeStep {
                        message_index: 1,
                        score: 0.25,
                    }],
                },
            ),
            (
                "b".to_string(),
                JudgeScores {
                    trajectory: None,
                    steps: vec![
                        JudgeStep {
                            message_index: 1,
                            score: 0.5,
                        },
                        JudgeStep {
                            message_index: 3,
                            score: 0.125,
                        },
                    ],
                },
            ),
        ];
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.jsonl");
        write_score_lines(&p, &scores).unwrap();
        let lines = read_score_lines(&p).unwrap();
        assert_eq!(lines.len(), 4);
        let mut records = vec![rec("a", Some(2)), rec("b", Some(4)), rec("c", None)];
        let judge = JudgeName::new("prm").unwrap();
        let s = attach(&mut records, judge, &lines, &p, false).unwrap();
        assert_eq!(
            s,
            AttachSummary {
                records_scored: 2,
                records_without: 1,
                trajectory_values: 1,
                step_values: 3
            }
        );
        assert_eq!(records[0].judges["prm"], scores[0].1);
        assert_eq!(records[1].judges["prm"], scores[1].1);
        assert!(records[2].judges.is_empty());
        // A second attach under the same name needs --replace.
        let e = attach(&mut records, judge, &lines, &p, false).unwrap_err();
        assert!(matches!(e, AttachError::AlreadyPresent { .. }), "{e}");
        assert!(attach(&mut records, judge, &lines[..1], &p, true).is_ok());
        assert_eq!(records[0].judges["prm"].steps, vec![]);
        assert!(!records[1].judges.contains_key("prm"));
    }

    #[test]
    fn errors_name_file_line_and_id() {
        let judge = JudgeName::new("j").unwrap();
        let mut records = vec![rec("a", Some(3)), rec("7", None)];
        let check = |text: &str, want: &[&str]| {
            let (_d, p) = file(text);
            let err = match read_score_lines(&p) {
                Err(e) => e,
                Ok(lines) => attach(&mut records.clone(), judge, &lines, &p, false).unwrap_err(),
            };
            let msg = err.to_string();
            assert!(msg.contains("scores.jsonl"), "{msg}");
            for w in want {
                assert!(msg.contains(w), "{msg} lacks {w}");
            }
        };
        check(
            "{\"id\": \"a\", \"score\": 1}\n{\"id\": \"zz\", \"score\": 1}\n",
            &["line 2", "unknown trajectory id \"zz\""],
        );
        check(
            "{\"id\": \"a\", \"message_index\": 1, \"score\": 1}\n\n{\"id\": \"a\", \"message_index\": 1, \"score\": 0}\n",
            &["line 3", "duplicate", "message 1", "line 1"],
        );
        check(
            "{\"id\": \"a\", \"message_index\": 3, \"score\": 1}\n",
            &["line 1", "message_index: 3", "3 messages"],
        );
        check(
            "{\"id\": \"a\", \"messsage_index\": 3, \"score\": 1}\n",
            &["line 1", "messsage_index"],
        );
        check("{\"id\": \"a\"}\n", &["line 1", "score"]);
        check("{\"id\": \"a\", \"score\": 1e999}\n", &["line 1"]);
        // Integer ids match string ids.
        let (_d, p) = file("{\"id\": 7, \"score\": 0.5}\n");
        let lines = read_score_lines(&p).unwrap();
        attach(&mut records, judge, &lines, &p, false).unwrap();
        assert_eq!(records[1].judges["j"].trajectory, Some(0.5));
    }
}
