//! The vocabulary every padv crate shares: a [`Trajectory`] is an agent episode as a list of
//! [`Message`]s, some of which are action steps.
//!
//! Readers in [`crate::formats`] decide which messages are actions (tau2 / chat logs: every
//! assistant message; Who&When: every agent message with content, except the Hand-Crafted
//! opening question), so that rendering and scoring never need to know the source format.

use serde::{Deserialize, Serialize};

/// One agent episode.
///
/// Other crates build one with `Trajectory { id, task_id, messages, reward,
/// ..Default::default() }`, so new optional fields never break them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Trajectory {
    /// Unique id within the input (tau2 simulation id, Who&When `<split>/<file stem>`, chat `id`).
    pub id: String,
    /// The task this episode attempts; rollouts of one task share it (best-of-N groups by it).
    pub task_id: String,
    /// The conversation in order. Indices into this vector are the "message index" / "step"
    /// that every other padv type refers to (Who&When `mistake_step` indexes it from 0).
    pub messages: Vec<Message>,
    /// Outcome reward, when known (tau2 `reward_info.reward`, chat `reward`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward: Option<f64>,
    /// Annotated decisive-mistake message index (Who&When), 0-based into `messages`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mistake_step: Option<usize>,
    /// Annotated agent responsible for the mistake (Who&When).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mistake_agent: Option<String>,
    /// How action messages are rendered as text. A rendering hint set by the reader (the
    /// reference implementation renders Who&When messages verbatim but tau2 / chat assistant
    /// turns as stripped content plus tool calls); kept here, not as the source format, so
    /// the core vocabulary does not depend on the readers.
    #[serde(default)]
    pub action_text: ActionText,
}

/// How the paper rendering writes a trajectory's messages ([`crate::render::render_paper`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionText {
    /// Assistant turns as stripped content plus their tool calls, `[assistant action]` when
    /// empty (tau2-bench and chat logs).
    #[default]
    ContentAndToolCalls,
    /// Every message as `"[role]: content"` verbatim, actions included (Who&When).
    Verbatim,
}

/// One message of a trajectory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The role as the source wrote it: `assistant`, `user`, `tool`, `system`, or a Who&When
    /// speaker label such as `Orchestrator (thought)`. Rendered verbatim as `[role]`.
    pub role: String,
    /// The speaking agent's name where the source gives one (Who&When Algorithm-Generated
    /// `name`; OpenAI `name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Text content; `None` when the source had `null` (e.g. tau2 pure tool-call turns).
    #[serde(default)]
    pub content: Option<String>,
    /// For a tool-result message, the id of the call it answers (tau2 `id`, OpenAI
    /// `tool_call_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// Tool calls made in this message, flattened to name + arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// Whether this message is an action step of the agent being judged.
    pub is_action: bool,
}

/// A tool call, in tau2's flat form. OpenAI's nested `{"function": {...}}` form is flattened
/// by the chat reader, and a JSON-string `arguments` is parsed into a JSON value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The call id, when the source has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Tool name.
    pub name: String,
    /// Arguments, normally a JSON object (key order preserved as written).
    pub arguments: serde_json::Value,
}

impl Trajectory {
    /// Indices of the action messages, in order.
    pub fn action_indices(&self) -> Vec<usize> {
        self.messages
            .iter()
            .enumerate()
            .filter(|(_, m)| m.is_action)
            .map(|(i, _)| i)
            .collect()
    }

    /// Number of action steps.
    pub fn num_actions(&self) -> usize {
        self.messages.iter().filter(|m| m.is_action).count()
    }

    /// Whether the outcome counts as a success: reward ≥ 1 − 1e-6 (tau2's convention).
    pub fn is_success(&self) -> Option<bool> {
        self.reward.map(is_success_reward)
    }
}

/// Success threshold shared by UQ labels and best-of-N: reward ≥ 1 − 1e-6.
pub const SUCCESS_EPS: f64 = 1e-6;

/// Whether a reward counts as success (reward ≥ 1 − [`SUCCESS_EPS`]).
pub fn is_success_reward(reward: f64) -> bool {
    reward >= 1.0 - SUCCESS_EPS
}
