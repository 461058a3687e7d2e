//! Judges: scores from models other than the policy/reference pair — outcome reward models
//! (one value per trajectory), process reward models (one value per step) and LLM judges —
//! stored in the log-prob record next to the log-probs so every evaluation shows them beside
//! PA and the confidence baselines.
//!
//! In a record, `judges` maps a judge name to its [`JudgeScores`]:
//!
//! ```json
//! "judges": {"wildreward": {"trajectory": 3.71},
//!            "thinkprm": {"steps": [{"message_index": 1, "score": 0.93},
//!                                   {"message_index": 3, "score": 0.12}]}}
//! ```
//!
//! Every value is oriented like the other scores: **higher means more likely to succeed**
//! (a reward, a probability of being correct). A judge may give a trajectory value, step
//! values, or both. The shape is deliberately flat (a map from name to an optional number
//! and a list of `(message_index, score)` pairs) so columnar formats can hold it as a
//! map of structs.
//!
//! - [`prompts`]: the reference implementation's WildReward and ThinkPRM prompts and
//!   renderings, and padv's LLM-judge prompt;
//! - [`verdict`]: reading a PRM's P(correct) per step (top log-probs after `\boxed{`, or the
//!   verdict lines) and an LLM judge's probability;
//! - [`attach`]: putting scores into records (from `padv judge` or a JSONL file keyed by
//!   trajectory id and message index), with errors for unknown and repeated ids.

pub mod attach;
pub mod cache;
mod name;
pub mod prompts;
pub mod verdict;

use serde::{Deserialize, Serialize};

pub use name::{InvalidJudgeName, JudgeName, MAX_LEN as MAX_JUDGE_NAME_LEN};

/// One judge's scores of one trajectory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeScores {
    /// One value for the whole trajectory (an outcome reward model, an LLM judge's success
    /// probability).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trajectory: Option<f64>,
    /// Per-step values (a process reward model), in strictly increasing message order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<JudgeStep>,
}

/// A judge's value for one message of the trajectory.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeStep {
    /// The message's index in the trajectory (0-based, as `steps[].message_index`).
    pub message_index: usize,
    /// The value (higher = more likely correct / successful).
    pub score: f64,
}

impl JudgeScores {
    /// Whether the judge gave nothing for this trajectory.
    pub fn is_empty(&self) -> bool {
        self.trajectory.is_none() && self.steps.is_empty()
    }
}

/// The reference implementation's outcome-RM score of a sequence classifier's logits:
/// `1 + Σ sigmoid(logit)` (WildReward-8B's head maps to a 1–5 satisfaction scale).
///
/// ```
/// assert_eq!(padv_core::judge::outcome_rm_score(&[0.0, 0.0]), 2.0);
/// ```
pub fn outcome_rm_score(logits: &[f32]) -> f64 {
    1.0 + logits
        .iter()
        .map(|&x| 1.0 / (1.0 + (-f64::from(x)).exp()))
        .sum::<f64>()
}

/// Checks one record's `judges` field: valid names, finite values, steps in strictly
/// increasing message order, and (when `num_messages` is known) message indices inside the
/// trajectory. The message names the judge and the field.
pub fn validate_judges(
    judges: &std::collections::BTreeMap<String, JudgeScores>,
    num_messages: Option<usize>,
) -> Result<(), String> {
    for (name, scores) in judges {
        JudgeName::check(name).map_err(|e| format!("field judges: {e}"))?;
        if let Some(v) = scores.trajectory {
            if !v.is_finite() {
                return Err(format!(
                    "field judges.{name}.trajectory: {v} is not a finite number"
                ));
            }
        }
        let mut last: Option<usize> = None;
        for (k, s) in scores.steps.iter().enumerate() {
            if !s.score.is_finite() {
                return Err(format!(
                    "field judges.{name}.steps[{k}].score: {} is not a finite number",
                    s.score
                ));
            }
            if let Some(prev) = last {
                if s.message_index <= prev {
                    return Err(format!(
                        "field judges.{name}.steps[{k}].message_index: {} is not after the \
                         previous step's {prev}",
                        s.message_index
                    ));
                }
            }
            if let Some(n) = num_messages.filter(|&n| s.message_index >= n) {
                return Err(format!(
                    "field judges.{name}.steps[{k}].message_index: {} is not a message of the \
                     trajectory (num_messages = {n})",
                    s.message_index
                ));
            }
            last = Some(s.message_index);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn judges(json: &str) -> BTreeMap<String, JudgeScores> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn validation_names_the_field() {
        let ok = judges(
            r#"{"rm": {"trajectory": 3.5}, "prm": {"steps": [{"message_index": 1, "score": 0.9},
               {"message_index": 3, "score": 0.1}]}}"#,
        );
        assert!(validate_judges(&ok, Some(4)).is_ok());
        let e = validate_judges(&ok, Some(3)).unwrap_err();
        assert!(e.contains("judges.prm.steps[1].message_index"), "{e}");
        let e = validate_judges(
            &judges(r#"{"prm": {"steps": [{"message_index": 3, "score": 0.9}, {"message_index": 3, "score": 0.1}]}}"#),
            None,
        )
        .unwrap_err();
        assert!(e.contains("judges.prm.steps[1].message_index"), "{e}");
        let e = validate_judges(&judges(r#"{"a b": {"trajectory": 1}}"#), None).unwrap_err();
        assert!(e.contains("invalid judge name"), "{e}");
        let mut bad = ok.clone();
        bad.get_mut("rm").unwrap().trajectory = Some(f64::NAN);
        let e = validate_judges(&bad, None).unwrap_err();
        assert!(e.contains("judges.rm.trajectory"), "{e}");
        // Unknown fields are refused (a typo would otherwise drop the value silently).
        assert!(serde_json::from_str::<JudgeScores>(r#"{"trajectry": 1}"#).is_err());
    }
}
