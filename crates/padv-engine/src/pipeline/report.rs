//! What a scoring run reports besides its records: counts and throughput ([`RunStats`]) and
//! why trajectories were left out ([`SkipReport`]).
//!
//! A skipped trajectory is silent data loss unless someone says why, so every skip is counted
//! under a reason, and the first few of each reason keep their trajectory id and message for
//! the person who has to fix the input.

use std::collections::BTreeMap;

use serde::Serialize;

/// How many examples a [`SkipReport`] keeps per reason. Enough to see a pattern, few enough
/// to print: a broken template can skip every one of thousands of trajectories.
pub const SKIP_EXAMPLES: usize = 5;

/// Why a trajectory (or an input record) produced no log-prob record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The input file had a malformed record (counted by the caller that read the files).
    MalformedInput,
    /// Rendering or tokenising the trajectory failed (chat template error, history rewrite).
    Tokenize,
    /// A backend failed on the trajectory.
    Backend,
    /// A backend returned arrays of the wrong length.
    Shape,
    /// A backend returned NaN or an infinite value (nothing is written for the trajectory).
    NonFinite,
}

impl SkipReason {
    /// The name used in JSON and in messages.
    pub fn name(self) -> &'static str {
        match self {
            SkipReason::MalformedInput => "malformed_input",
            SkipReason::Tokenize => "tokenize",
            SkipReason::Backend => "backend",
            SkipReason::Shape => "shape",
            SkipReason::NonFinite => "non_finite",
        }
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One distinct error message of a reason, with the first item that had it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkipExample {
    /// Trajectory id (or `file:line` for a malformed input record) of the first item.
    pub id: String,
    /// The error message.
    pub message: String,
    /// How many items were skipped with exactly this message (the same error is counted,
    /// not repeated).
    pub count: usize,
}

/// Skips of one reason: the total and the first [`SKIP_EXAMPLES`] distinct messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SkipGroup {
    /// How many items were skipped for this reason.
    pub count: usize,
    /// The first few, in the order they were met.
    pub examples: Vec<SkipExample>,
}

/// Skips by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct SkipReport {
    groups: BTreeMap<SkipReason, SkipGroup>,
}

impl SkipReport {
    /// Counts one skip. A message met before counts towards its example; a new one is kept
    /// while fewer than [`SKIP_EXAMPLES`] are.
    pub fn add(&mut self, reason: SkipReason, id: impl Into<String>, message: impl Into<String>) {
        let group = self.groups.entry(reason).or_default();
        group.count += 1;
        let message = message.into();
        if let Some(ex) = group.examples.iter_mut().find(|e| e.message == message) {
            ex.count += 1;
        } else if group.examples.len() < SKIP_EXAMPLES {
            group.examples.push(SkipExample {
                id: id.into(),
                message,
                count: 1,
            });
        }
    }

    /// Adds every skip of `other` (examples beyond the limit are dropped).
    pub fn merge(&mut self, other: SkipReport) {
        for (reason, group) in other.groups {
            let mine = self.groups.entry(reason).or_default();
            mine.count += group.count;
            for ex in group.examples {
                if let Some(e) = mine.examples.iter_mut().find(|e| e.message == ex.message) {
                    e.count += ex.count;
                } else if mine.examples.len() < SKIP_EXAMPLES {
                    mine.examples.push(ex);
                }
            }
        }
    }

    /// Total skips over all reasons.
    pub fn total(&self) -> usize {
        self.groups.values().map(|g| g.count).sum()
    }

    /// True when nothing was skipped.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Skips of one reason.
    pub fn get(&self, reason: SkipReason) -> Option<&SkipGroup> {
        self.groups.get(&reason)
    }

    /// Reasons with their skips, in a fixed order.
    pub fn iter(&self) -> impl Iterator<Item = (SkipReason, &SkipGroup)> + '_ {
        self.groups.iter().map(|(r, g)| (*r, g))
    }
}

/// Several lines for a person: one per reason with its count, then its examples indented.
impl std::fmt::Display for SkipReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for (reason, group) in &self.groups {
            if !first {
                writeln!(f)?;
            }
            first = false;
            write!(f, "{reason}: {} skipped", group.count)?;
            for ex in &group.examples {
                match ex.count {
                    1 => write!(f, "\n  {}: {}", ex.id, ex.message)?,
                    n => write!(
                        f,
                        "\n  {} and {} more with the same error: {}",
                        ex.id,
                        n - 1,
                        ex.message
                    )?,
                }
            }
            let shown: usize = group.examples.iter().map(|e| e.count).sum();
            if group.count > shown {
                write!(f, "\n  … and {} more", group.count - shown)?;
            }
        }
        Ok(())
    }
}

/// Counts and throughput of one scoring run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunStats {
    /// Trajectories given to the run.
    pub trajectories: usize,
    /// Log-prob records produced.
    pub records: usize,
    /// Trajectories skipped (see the [`SkipReport`]).
    pub skipped: usize,
    /// Tokens of the scored sequences (after truncation).
    pub tokens: usize,
    /// Action tokens scored (the targets).
    pub action_tokens: usize,
    /// Action steps in the records.
    pub action_steps: usize,
    /// Action steps that truncation removed entirely (they score 0).
    pub action_steps_cut_by_truncation: usize,
    /// Action steps that truncation shortened.
    pub action_steps_clipped_by_truncation: usize,
    /// Trajectories longer than `max_length`, left-truncated.
    pub trajectories_truncated: usize,
    /// Model results read from the cache (0, 1 or 2 per trajectory).
    pub cache_hits: usize,
    /// Cache entries that failed verification (a checksum that does not match the numbers,
    /// a wrong length, an unreadable file) and were re-scored instead of used.
    pub cache_corrupt: usize,
    /// Tokens of the trajectories for which at least one model ran (not fully cached): the
    /// work actually done, so that a resumed run does not report a cache read as speed.
    pub computed_tokens: usize,
    /// Wall-clock seconds of the run (tokenising and scoring).
    pub seconds: f64,
    /// `computed_tokens / seconds`.
    pub tokens_per_second: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_skip_but_keeps_few_examples() {
        let mut r = SkipReport::default();
        for i in 0..8 {
            r.add(
                SkipReason::Tokenize,
                format!("t{i}"),
                format!("bad template {i}"),
            );
        }
        r.add(SkipReason::Backend, "b", "server down");
        assert_eq!(r.total(), 9);
        let tok = r.get(SkipReason::Tokenize).unwrap();
        assert_eq!(tok.count, 8);
        assert_eq!(tok.examples.len(), SKIP_EXAMPLES);
        assert_eq!(tok.examples[0].id, "t0");
        let text = r.to_string();
        assert!(text.contains("tokenize: 8 skipped"), "{text}");
        assert!(text.contains("backend: 1 skipped"), "{text}");
        assert!(text.contains("and 3 more"), "{text}");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["tokenize"]["count"], 8);
        assert_eq!(json["backend"]["examples"][0]["message"], "server down");
    }

    #[test]
    fn a_repeated_message_is_counted_once() {
        let mut r = SkipReport::default();
        for i in 0..7 {
            r.add(
                SkipReason::Backend,
                format!("t{i}"),
                "policy model: server down",
            );
        }
        r.add(SkipReason::Backend, "u", "reference model: HTTP 500");
        let g = r.get(SkipReason::Backend).unwrap();
        assert_eq!(g.count, 8);
        assert_eq!(g.examples.len(), 2);
        assert_eq!((g.examples[0].id.as_str(), g.examples[0].count), ("t0", 7));
        let text = r.to_string();
        assert_eq!(text.matches("server down").count(), 1, "{text}");
        assert!(text.contains("t0 and 6 more with the same error"), "{text}");
        assert!(!text.contains("… and"), "{text}");
    }

    #[test]
    fn merge_adds_counts_and_caps_examples() {
        let mut a = SkipReport::default();
        let mut b = SkipReport::default();
        for i in 0..4 {
            a.add(SkipReason::Shape, format!("a{i}"), format!("x{i}"));
            b.add(SkipReason::Shape, format!("b{i}"), format!("y{i}"));
        }
        b.add(SkipReason::MalformedInput, "f:3", "z");
        a.merge(b);
        let shape = a.get(SkipReason::Shape).unwrap();
        assert_eq!(shape.count, 8);
        assert_eq!(shape.examples.len(), SKIP_EXAMPLES);
        assert_eq!(shape.examples[4].id, "b0");
        assert_eq!(a.get(SkipReason::MalformedInput).unwrap().count, 1);
    }
}
