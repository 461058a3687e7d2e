//! Records from the per-token arrays an RL trainer already holds.
//!
//! During GRPO/PPO training the trainer computes, for every rollout, log π_θ and log π_ref of
//! each generated token (for the KL penalty). With the step boundaries (which tokens belong to
//! which agent turn) those arrays are a [`LogprobRecord`]: this module builds it, with the
//! same checks as a record read from a file, so PA comes with no extra forward pass.

use std::ops::Range;

use super::{validate, LogprobRecord, StepLogprobs};

/// One trajectory's arrays, as borrowed views (a Python caller hands numpy memory directly).
#[derive(Debug, Clone, Copy)]
pub struct TokenArrays<'a> {
    /// log π_θ of every token of the sequence (response tokens, or the whole sequence).
    pub policy: &'a [f32],
    /// log π_ref of the same tokens, when known.
    pub reference: Option<&'a [f32]>,
    /// Which tokens count (a trainer's response/loss mask); masked-out tokens inside a step
    /// (tool output a multi-turn trainer appends into the response) are left out of it.
    pub mask: Option<&'a [bool]>,
    /// Each step's token range into the arrays, in order, not overlapping.
    pub steps: &'a [Range<usize>],
    /// Message index of each step (default: 0, 1, 2, … — the step's position).
    pub message_indices: Option<&'a [usize]>,
}

/// Step ranges from a mask: each maximal run of kept tokens is one step (how multi-turn RL
/// trainers mark agent turns between environment outputs).
pub fn steps_from_mask(mask: &[bool]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &m) in mask.iter().enumerate() {
        match (m, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(s..mask.len());
    }
    out
}

/// Builds the steps of a record from `a`, then checks the whole record as a file's record is
/// checked ([`validate`]: finite log-probs ≤ 0, steps in message order, `mistake_step` among
/// the messages). `record` supplies the other fields (id, task id, label, mistake step…);
/// its `steps` are replaced. Errors name the field, step and token position.
pub fn record_from_arrays(
    mut record: LogprobRecord,
    a: &TokenArrays<'_>,
) -> Result<LogprobRecord, String> {
    let n = a.policy.len();
    if let Some(r) = a.reference {
        if r.len() != n {
            return Err(format!(
                "reference_logprobs has {} tokens but policy_logprobs has {n}",
                r.len()
            ));
        }
    }
    if let Some(m) = a.mask {
        if m.len() != n {
            return Err(format!(
                "mask has {} tokens but policy_logprobs has {n}",
                m.len()
            ));
        }
    }
    if let Some(ix) = a.message_indices {
        if ix.len() != a.steps.len() {
            return Err(format!(
                "message_indices has {} entries for {} steps",
                ix.len(),
                a.steps.len()
            ));
        }
    }
    let mut steps = Vec::with_capacity(a.steps.len());
    let mut prev_end = 0;
    for (k, span) in a.steps.iter().enumerate() {
        if span.start > span.end || span.end > n {
            return Err(format!(
                "steps[{k}]: token range {}..{} is not inside the {n} tokens of the arrays",
                span.start, span.end
            ));
        }
        if span.start < prev_end {
            return Err(format!(
                "steps[{k}]: token range {}..{} overlaps the previous step (ending at {prev_end}); \
                 steps must be in order and disjoint",
                span.start, span.end
            ));
        }
        prev_end = span.end;
        let keep = |i: &usize| a.mask.is_none_or(|m| m[*i]);
        let take = |v: &[f32]| -> Vec<f32> { span.clone().filter(keep).map(|i| v[i]).collect() };
        steps.push(StepLogprobs {
            message_index: a.message_indices.map_or(k, |ix| ix[k]),
            policy: take(a.policy),
            reference: a.reference.map(take),
            ..StepLogprobs::default()
        });
    }
    record.steps = steps;
    if record.task_id.is_empty() {
        record.task_id = record.id.clone();
    }
    validate(&record)?;
    Ok(record)
}

// One-step trajectories are written `&[0..3]`: a list of step ranges with one element, not a
// range meant as a list of indices.
#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_the_mask_are_steps() {
        let m = [false, true, true, false, false, true, false, true];
        assert_eq!(steps_from_mask(&m), vec![1..3, 5..6, 7..8]);
        assert!(steps_from_mask(&[false; 3]).is_empty());
        assert_eq!(steps_from_mask(&[true; 2]), vec![0..2]);
    }

    #[test]
    fn arrays_become_the_record_a_file_would_hold() {
        let p = [-0.5f32, -1.0, -0.25, -2.0, -0.125];
        let r = [-0.75f32, -1.5, -0.5, -1.0, -0.25];
        let mask = [true, true, false, true, true];
        let rec = record_from_arrays(
            LogprobRecord {
                id: "a".into(),
                label: Some(1.0),
                ..LogprobRecord::default()
            },
            &TokenArrays {
                policy: &p,
                reference: Some(&r),
                mask: Some(&mask),
                steps: &[0..3, 3..5],
                message_indices: Some(&[1, 3]),
            },
        )
        .unwrap();
        assert_eq!(rec.task_id, "a");
        assert_eq!(rec.steps.len(), 2);
        assert_eq!(rec.steps[0].message_index, 1);
        assert_eq!(rec.steps[0].policy, vec![-0.5, -1.0]);
        assert_eq!(rec.steps[0].reference, Some(vec![-0.75, -1.5]));
        assert_eq!(rec.steps[1].policy, vec![-2.0, -0.125]);
    }

    #[test]
    fn bad_arrays_are_refused_naming_what_is_wrong() {
        let p = [-0.5f32, -1.0, 0.5];
        let base = || LogprobRecord {
            id: "a".into(),
            ..LogprobRecord::default()
        };
        let arrays = |steps: &'static [Range<usize>]| TokenArrays {
            policy: &p[..2],
            reference: None,
            mask: None,
            steps,
            message_indices: None,
        };
        let e = record_from_arrays(base(), &arrays(&[0..3])).unwrap_err();
        assert!(e.contains("steps[0]") && e.contains("0..3"), "{e}");
        let e = record_from_arrays(base(), &arrays(&[0..2, 1..2])).unwrap_err();
        assert!(e.contains("overlaps"), "{e}");
        let e = record_from_arrays(
            base(),
            &TokenArrays {
                policy: &p,
                steps: &[0..3],
                ..arrays(&[])
            },
        )
        .unwrap_err();
        assert!(e.contains("policy"), "a positive log-prob is refused: {e}");
        let e = record_from_arrays(
            base(),
            &TokenArrays {
                reference: Some(&p),
                ..arrays(&[0..2])
            },
        )
        .unwrap_err();
        assert!(e.contains("reference_logprobs has 3"), "{e}");
    }
}
