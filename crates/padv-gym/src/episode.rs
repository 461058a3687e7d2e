//! Episodes as ordinary agent trajectories, and the files they are written to.
//!
//! Layout of a trajectory (what every padv reader, renderer and evaluation sees):
//! message 0 is the `user` task ([`crate::protocol::task_message`]), then for each step an
//! `assistant` action (the agent's text, `is_action`) followed by the environment's `user`
//! answer. Step `k`'s action is message `1 + 2k` ([`action_message_index`]); `reward` is 1 on
//! success and 0 otherwise; `mistake_step` is the decisive mistake's message index.
//!
//! Files: [`write_chat_jsonl`] writes what `padv inspect` / `padv score` read as chat JSONL;
//! [`write_truth_jsonl`] writes the side file of ground truth (one [`TruthRecord`] per
//! trajectory id), read back by [`read_truth_jsonl`].

use std::path::Path;

use serde::{Deserialize, Serialize};

use padv_core::eval::SplitMix64;
use padv_core::{Message, Trajectory};

use crate::error::GymError;
use crate::expert::Expert;
use crate::lake::{Action, Lake, State, Status, Step};
use crate::protocol::{task_message, ActionStyle};
use crate::solver::Values;
use crate::truth::EpisodeTruth;

/// The message index of action step `step` (0-based).
pub fn action_message_index(step: usize) -> usize {
    1 + 2 * step
}

/// One action turn: the agent's text and what it led to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// The assistant message exactly as generated.
    pub text: String,
    /// The transition it caused (its `observation` is the next user message).
    pub step: Step,
}

/// A finished (or abandoned) episode on one lake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    /// Trajectory id.
    pub id: String,
    /// Task id: rollouts of one map share it (best-of-N groups by it).
    pub task_id: String,
    /// The seed of the lake.
    pub lake_seed: u64,
    /// The first user message.
    pub task: String,
    /// The action turns in order.
    pub turns: Vec<Turn>,
}

impl Episode {
    /// How the episode ended (`Running` if it was abandoned before the end).
    pub fn status(&self) -> Status {
        self.turns.last().map_or(Status::Running, |t| t.step.status)
    }

    /// Whether it reached the goal.
    pub fn success(&self) -> bool {
        self.status() == Status::Goal
    }

    /// 1 on success, else 0.
    pub fn reward(&self) -> f64 {
        self.turns.iter().map(|t| t.step.reward).sum()
    }

    /// `(state, parsed action)` of every step, for [`EpisodeTruth::new`].
    pub fn state_actions(&self) -> Vec<(State, Action)> {
        self.turns
            .iter()
            .map(|t| (t.step.from, t.step.action))
            .collect()
    }

    /// Ground truth from the lake's exact values.
    pub fn truth(&self, values: &Values, threshold: f64) -> EpisodeTruth {
        EpisodeTruth::new(values, &self.state_actions(), self.success(), threshold)
    }

    /// The trajectory, with `mistake_step` set from `truth` when given (message index).
    pub fn to_trajectory(&self, truth: Option<&EpisodeTruth>) -> Trajectory {
        let msg = |role: &str, content: &str, is_action: bool| Message {
            role: role.to_string(),
            name: None,
            content: Some(content.to_string()),
            tool_call_id: None,
            tool_calls: Vec::new(),
            is_action,
        };
        let mut messages = Vec::with_capacity(1 + 2 * self.turns.len());
        messages.push(msg("user", &self.task, false));
        for turn in &self.turns {
            messages.push(msg("assistant", &turn.text, true));
            messages.push(msg("user", &turn.step.observation, false));
        }
        Trajectory {
            id: self.id.clone(),
            task_id: self.task_id.clone(),
            messages,
            reward: Some(self.reward()),
            mistake_step: truth
                .and_then(|t| t.decisive_mistake)
                .map(action_message_index),
            mistake_agent: None,
            action_text: Default::default(),
        }
    }
}

/// Runs an episode turn by turn, for samplers that produce one action text at a time
/// (possibly many episodes in lock-step).
#[derive(Debug, Clone)]
pub struct EpisodeBuilder<'a> {
    lake: &'a Lake,
    style: ActionStyle,
    state: State,
    episode: Episode,
}

impl<'a> EpisodeBuilder<'a> {
    /// Starts an episode on `lake` in its initial state; actions are parsed as `style`.
    pub fn new(
        lake: &'a Lake,
        style: ActionStyle,
        id: impl Into<String>,
        task_id: impl Into<String>,
    ) -> Self {
        EpisodeBuilder {
            lake,
            style,
            state: lake.initial(),
            episode: Episode {
                id: id.into(),
                task_id: task_id.into(),
                lake_seed: lake.seed(),
                task: task_message(lake),
                turns: Vec::new(),
            },
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether the episode has ended.
    pub fn is_done(&self) -> bool {
        self.lake.status(self.state).is_done()
    }

    /// The messages so far as `(role, content)`, task first (what the agent conditions on).
    pub fn messages(&self) -> Vec<(&str, &str)> {
        let mut out = vec![("user", self.episode.task.as_str())];
        for t in &self.episode.turns {
            out.push(("assistant", t.text.as_str()));
            out.push(("user", t.step.observation.as_str()));
        }
        out
    }

    /// Applies the agent's text: parses it, samples the transition, records the turn.
    /// Fails if the episode has already ended.
    pub fn act(&mut self, text: &str, rng: &mut SplitMix64) -> Result<&Step, GymError> {
        if self.is_done() {
            return Err(GymError::EpisodeOver {
                id: self.episode.id.clone(),
            });
        }
        let step =
            crate::lake::Environment::step_text(self.lake, self.state, text, self.style, rng);
        self.state = step.state;
        self.episode.turns.push(Turn {
            text: text.to_string(),
            step,
        });
        let last = self.episode.turns.len() - 1;
        Ok(&self.episode.turns[last].step)
    }

    /// The episode so far.
    pub fn finish(self) -> Episode {
        self.episode
    }
}

/// One full episode of the imperfect expert (its demonstrations for SFT).
pub fn expert_episode(
    lake: &Lake,
    values: &Values,
    expert: &Expert,
    style: ActionStyle,
    id: impl Into<String>,
    task_id: impl Into<String>,
    rng: &mut SplitMix64,
) -> Episode {
    let mut b = EpisodeBuilder::new(lake, style, id, task_id);
    while !b.is_done() {
        let text = expert.action_text(lake, values, b.state(), style, rng);
        // Cannot fail: the loop only runs while the episode is running.
        if b.act(&text, rng).is_err() {
            break;
        }
    }
    b.finish()
}

/// Writes trajectories as chat JSONL (`{"id", "task_id", "messages", "reward",
/// "mistake_step"?}` per line, messages as `{"role", "content"}`), atomically.
pub fn write_chat_jsonl(path: &Path, trajectories: &[Trajectory]) -> Result<(), GymError> {
    let mut out = String::new();
    for t in trajectories {
        let messages: Vec<serde_json::Value> = t
            .messages
            .iter()
            .map(|m| serde_json::json!({"role": m.role, "content": m.content}))
            .collect();
        let mut line = serde_json::json!({
            "id": t.id,
            "task_id": t.task_id,
            "messages": messages,
            "reward": t.reward,
        });
        if let (Some(step), Some(obj)) = (t.mistake_step, line.as_object_mut()) {
            obj.insert("mistake_step".into(), step.into());
        }
        out.push_str(&line.to_string());
        out.push('\n');
    }
    write_atomic(path, &out)
}

/// The ground truth of one trajectory, as a line of the side file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthRecord {
    /// Trajectory id (joins with the chat JSONL and with log-prob records).
    pub id: String,
    /// Task id.
    pub task_id: String,
    /// The lake's seed.
    pub lake_seed: u64,
    /// How the episode ended.
    pub status: Status,
    /// The solver's verdict.
    pub truth: EpisodeTruth,
    /// Message index of each step's action (`1 + 2k`).
    pub action_messages: Vec<usize>,
    /// The decisive mistake's message index, if any.
    pub mistake_message: Option<usize>,
    /// The soft ground truth of each step (`A_h` at its own history, relative to the
    /// reference at the pair's β), when measured ([`crate::oracle::rollout_truth`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub soft: Vec<crate::oracle::StepSoft>,
}

impl TruthRecord {
    /// The record of `episode` judged by `truth`.
    pub fn new(episode: &Episode, truth: EpisodeTruth) -> TruthRecord {
        TruthRecord {
            id: episode.id.clone(),
            task_id: episode.task_id.clone(),
            lake_seed: episode.lake_seed,
            status: episode.status(),
            action_messages: (0..truth.steps.len()).map(action_message_index).collect(),
            mistake_message: truth.decisive_mistake.map(action_message_index),
            truth,
            soft: Vec::new(),
        }
    }
}

/// Writes the ground-truth side file (one JSON [`TruthRecord`] per line), atomically.
pub fn write_truth_jsonl(path: &Path, records: &[TruthRecord]) -> Result<(), GymError> {
    let mut out = String::new();
    for r in records {
        let line = serde_json::to_string(r).map_err(|source| GymError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        out.push_str(&line);
        out.push('\n');
    }
    write_atomic(path, &out)
}

/// Reads a side file written by [`write_truth_jsonl`]; errors name the line.
pub fn read_truth_jsonl(path: &Path) -> Result<Vec<TruthRecord>, GymError> {
    let text = std::fs::read_to_string(path).map_err(|source| GymError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|source| GymError::Record {
                path: path.to_path_buf(),
                line: i + 1,
                source,
            })
        })
        .collect()
}

fn write_atomic(path: &Path, text: &str) -> Result<(), GymError> {
    padv_core::atomic::write_bytes_atomic(path, text.as_bytes()).map_err(|source| GymError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::LakeConfig;
    use crate::solver::solve;
    use crate::truth::DEFAULT_MISTAKE_THRESHOLD;

    #[test]
    fn trajectory_layout_and_builder() {
        let lake = Lake::from_rows(&["S.H", "...", "H.G"], 0.0, 6).unwrap();
        let mut b = EpisodeBuilder::new(&lake, ActionStyle::Terse, "e0", "map0");
        let mut rng = SplitMix64::new(0);
        assert_eq!(b.act("go right", &mut rng).unwrap().state.pos, 1);
        assert_eq!(b.act("hmm", &mut rng).unwrap().action, Action::Invalid);
        assert_eq!(b.act("go right", &mut rng).unwrap().status, Status::Hole);
        assert!(b.is_done());
        assert!(b.act("go down", &mut rng).is_err());
        assert_eq!(b.messages().len(), 7);
        let ep = b.finish();
        let values = solve(&lake);
        let truth = ep.truth(&values, DEFAULT_MISTAKE_THRESHOLD);
        // Step 2 (right into the hole from (0,1) with V* = 1) is the decisive mistake.
        assert_eq!(truth.decisive_mistake, Some(2));
        let t = ep.to_trajectory(Some(&truth));
        assert_eq!(t.messages.len(), 7);
        assert_eq!(t.action_indices(), vec![1, 3, 5]);
        assert_eq!(t.mistake_step, Some(5));
        assert_eq!(t.reward, Some(0.0));
        assert_eq!(t.messages[3].content.as_deref(), Some("hmm"));
        assert_eq!(t.messages[6].content.as_deref(), Some("right hole 0,2"));
    }

    #[test]
    fn expert_episodes_end_and_are_deterministic() {
        let config = LakeConfig::default();
        let expert = Expert::default();
        for (seed, style) in (0..20).zip(ActionStyle::ALL.into_iter().cycle()) {
            let lake = Lake::generate(&config, seed).unwrap();
            let values = solve(&lake);
            let a = expert_episode(
                &lake,
                &values,
                &expert,
                style,
                "a",
                "m",
                &mut SplitMix64::new(seed),
            );
            let b = expert_episode(
                &lake,
                &values,
                &expert,
                style,
                "a",
                "m",
                &mut SplitMix64::new(seed),
            );
            assert_eq!(a, b);
            assert!(a.status().is_done());
            assert!(a.turns.len() <= config.max_steps);
            assert_eq!(a.reward(), if a.success() { 1.0 } else { 0.0 });
        }
    }
}
