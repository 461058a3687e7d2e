//! What `padv inspect` reports about trajectory files: the first thing a newcomer runs.

use std::collections::HashMap;

use serde::Serialize;

use crate::trajectory::{is_success_reward, Trajectory};

/// Minimum / median / maximum / mean of a count.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Spread {
    /// Smallest.
    pub min: usize,
    /// Median (lower middle for even counts).
    pub median: usize,
    /// Largest.
    pub max: usize,
    /// Mean.
    pub mean: f64,
}

impl Spread {
    /// Spread of `values`; `None` when empty.
    pub fn of(values: &[usize]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_unstable();
        Some(Self {
            min: v[0],
            median: v[(v.len() - 1) / 2],
            max: v[v.len() - 1],
            mean: v.iter().sum::<usize>() as f64 / v.len() as f64,
        })
    }
}

/// Labels and their balance.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LabelSummary {
    /// Trajectories with a reward.
    pub labelled: usize,
    /// Trajectories without one.
    pub unlabelled: usize,
    /// Successes (reward ≥ 1 − 1e-6).
    pub successes: usize,
    /// Failures.
    pub failures: usize,
    /// successes / labelled.
    pub success_rate: Option<f64>,
    /// Whether both classes are present (needed for AUROC).
    pub both_classes: bool,
}

/// Summary of a set of trajectories.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    /// Number of trajectories.
    pub trajectories: usize,
    /// Total messages.
    pub messages: usize,
    /// Total action steps.
    pub action_steps: usize,
    /// Messages per trajectory.
    pub messages_per_trajectory: Option<Spread>,
    /// Action steps per trajectory.
    pub actions_per_trajectory: Option<Spread>,
    /// Labels.
    pub labels: LabelSummary,
    /// Distinct task ids.
    pub tasks: usize,
    /// Rollouts per task (best-of-N group sizes).
    pub rollouts_per_task: Option<Spread>,
    /// Tasks whose rollouts have both outcomes (where best-of-N selection can matter).
    pub tasks_with_mixed_outcomes: usize,
    /// Trajectories with an annotated mistake step.
    pub with_mistake_step: usize,
    /// Problems that would silently change an evaluation.
    pub problems: Vec<String>,
}

/// Summarise trajectories.
pub fn summarize(trajectories: &[Trajectory]) -> Summary {
    let messages: Vec<usize> = trajectories.iter().map(|t| t.messages.len()).collect();
    let actions: Vec<usize> = trajectories.iter().map(Trajectory::num_actions).collect();
    let labelled: Vec<bool> = trajectories
        .iter()
        .filter_map(|t| t.reward.map(is_success_reward))
        .collect();
    let successes = labelled.iter().filter(|s| **s).count();
    let failures = labelled.len() - successes;

    let mut order: Vec<&str> = Vec::new();
    let mut groups: HashMap<&str, Vec<&Trajectory>> = HashMap::new();
    for t in trajectories {
        let g = groups.entry(t.task_id.as_str()).or_default();
        if g.is_empty() {
            order.push(t.task_id.as_str());
        }
        g.push(t);
    }
    let sizes: Vec<usize> = order.iter().map(|k| groups[k].len()).collect();
    let mixed = order
        .iter()
        .filter(|k| {
            let outcomes: Vec<bool> = groups[*k].iter().filter_map(|t| t.is_success()).collect();
            outcomes.iter().any(|s| *s) && outcomes.iter().any(|s| !*s)
        })
        .count();

    let mut problems = Vec::new();
    let no_action: Vec<&str> = trajectories
        .iter()
        .filter(|t| t.num_actions() == 0)
        .map(|t| t.id.as_str())
        .collect();
    if !no_action.is_empty() {
        problems.push(format!(
            "{} trajectories have no action step (dropped from UQ, score -inf in best-of-N): {}",
            no_action.len(),
            preview(&no_action)
        ));
    }
    let mut seen = HashMap::new();
    let dups: Vec<&str> = trajectories
        .iter()
        .filter(|t| seen.insert(t.id.as_str(), ()).is_some())
        .map(|t| t.id.as_str())
        .collect();
    if !dups.is_empty() {
        problems.push(format!(
            "{} duplicate trajectory ids: {}",
            dups.len(),
            preview(&dups)
        ));
    }
    let off_action: Vec<String> = trajectories
        .iter()
        .filter_map(|t| {
            let step = t.mistake_step?;
            match t.messages.get(step) {
                Some(m) if m.is_action => None,
                Some(m) => Some(format!("{} (step {step}, role {:?})", t.id, m.role)),
                None => Some(format!("{} (step {step} out of range)", t.id)),
            }
        })
        .collect();
    if !off_action.is_empty() {
        let refs: Vec<&str> = off_action.iter().map(String::as_str).collect();
        problems.push(format!(
            "{} annotated mistake steps are not action steps (no predictor can hit them): {}",
            off_action.len(),
            preview(&refs)
        ));
    }
    if !labelled.is_empty() && (successes == 0 || failures == 0) {
        problems.push("labels have a single class: AUROC is undefined".to_string());
    }

    Summary {
        trajectories: trajectories.len(),
        messages: messages.iter().sum(),
        action_steps: actions.iter().sum(),
        messages_per_trajectory: Spread::of(&messages),
        actions_per_trajectory: Spread::of(&actions),
        labels: LabelSummary {
            labelled: labelled.len(),
            unlabelled: trajectories.len() - labelled.len(),
            successes,
            failures,
            success_rate: (!labelled.is_empty()).then(|| successes as f64 / labelled.len() as f64),
            both_classes: successes > 0 && failures > 0,
        },
        tasks: order.len(),
        rollouts_per_task: Spread::of(&sizes),
        tasks_with_mixed_outcomes: mixed,
        with_mistake_step: trajectories
            .iter()
            .filter(|t| t.mistake_step.is_some())
            .count(),
        problems,
    }
}

fn preview(items: &[&str]) -> String {
    let shown: Vec<&str> = items.iter().take(5).copied().collect();
    let more = items.len().saturating_sub(5);
    if more > 0 {
        format!("{} … and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trajectory::Message;

    fn traj(id: &str, task: &str, reward: Option<f64>, actions: usize) -> Trajectory {
        let mut messages = vec![Message {
            role: "user".into(),
            name: None,
            content: Some("hi".into()),
            tool_call_id: None,
            tool_calls: vec![],
            is_action: false,
        }];
        for _ in 0..actions {
            messages.push(Message {
                role: "assistant".into(),
                name: None,
                content: Some("ok".into()),
                tool_call_id: None,
                tool_calls: vec![],
                is_action: true,
            });
        }
        Trajectory {
            id: id.into(),
            task_id: task.into(),
            messages,
            reward,
            mistake_step: None,
            mistake_agent: None,
            ..Default::default()
        }
    }

    #[test]
    fn counts_and_balance() {
        let ts = vec![
            traj("a", "t1", Some(1.0), 2),
            traj("b", "t1", Some(0.0), 1),
            traj("c", "t2", Some(0.999_999_5), 3),
            traj("d", "t3", None, 0),
        ];
        let s = summarize(&ts);
        assert_eq!(s.trajectories, 4);
        assert_eq!(s.action_steps, 6);
        assert_eq!(s.messages, 4 + 6);
        assert_eq!(s.labels.labelled, 3);
        // 0.9999995 ≥ 1 − 1e-6 counts as success.
        assert_eq!(s.labels.successes, 2);
        assert_eq!(s.tasks, 3);
        assert_eq!(s.tasks_with_mixed_outcomes, 1);
        assert_eq!(s.rollouts_per_task.as_ref().unwrap().max, 2);
        // actions per trajectory: [2,1,3,0] sorted [0,1,2,3]: lower median 1, mean 1.5.
        let a = s.actions_per_trajectory.unwrap();
        assert_eq!((a.min, a.median, a.max), (0, 1, 3));
        assert!((a.mean - 1.5).abs() < 1e-12);
        assert_eq!(s.problems.len(), 1, "{:?}", s.problems);
        assert!(s.problems[0].contains("d"));
    }
}
