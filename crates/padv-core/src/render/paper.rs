//! The `paper` rendering: the plain-text transcript the reference implementation scores.

use super::pyrepr::{py_repr, py_strip};
use super::TextSpan;
use crate::trajectory::{ActionText, Message, Trajectory};

/// Body used when an action message has neither content nor tool calls.
pub const EMPTY_ACTION_BODY: &str = "[assistant action]";

/// Renders a trajectory the way the reference implementation does, one [`TextSpan`] per message.
///
/// Message `i` becomes `"[" + role + "]: " + body`, with `"\n"` prepended for every `i > 0`, so
/// the separator belongs to the span of the message it introduces (and so do its tokens).
/// `role` is the message's role string verbatim.
///
/// - A non-action message's body is its content (`None` renders as the empty string).
/// - An action message's body is Python's
///   `(content + "\n" + "\n".join(f"tool_call({name}, {arguments})")).strip()`, where
///   `arguments` prints as the Python dict `json.loads` made (see [`super::py_repr`]).
///   If that is empty the body is [`EMPTY_ACTION_BODY`].
///
/// Reading of the reference notes (paper-notes §6.2): the text of an assistant message is
/// `"[assistant]: " + (...).strip()`, "or `[assistant action]` if empty". The placeholder
/// stands for the stripped body only, so the `"[assistant]: "` prefix is kept and an empty
/// action renders as `"[assistant]: [assistant action]"`: every message keeps the
/// `"[role]: "` shape that §6.2 gives first.
///
/// Who&When logs ([`ActionText::Verbatim`], set by the reader) are rendered as the reference's failure-attribution
/// path does: every message is `"[role]: content"` verbatim, actions included (paper-notes §6.2),
/// with no stripping and no placeholder.
pub fn render_paper(t: &Trajectory) -> Vec<TextSpan> {
    let verbatim = t.action_text == ActionText::Verbatim;
    t.messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let sep = if i > 0 { "\n" } else { "" };
            TextSpan {
                message_index: i,
                text: if verbatim {
                    format!("{sep}[{}]: {}", m.role, m.content.as_deref().unwrap_or(""))
                } else {
                    format!("{sep}[{}]: {}", m.role, paper_body(m))
                },
                is_action: m.is_action,
            }
        })
        .collect()
}

/// The body of one message in the `paper` rendering (the text after `"[role]: "`).
pub fn paper_body(m: &Message) -> String {
    let content = m.content.as_deref().unwrap_or("");
    if !m.is_action {
        return content.to_string();
    }
    let calls: Vec<String> = m
        .tool_calls
        .iter()
        .map(|c| format!("tool_call({}, {})", c.name, py_repr(&c.arguments)))
        .collect();
    let joined = format!("{content}\n{}", calls.join("\n"));
    let body = py_strip(&joined);
    if body.is_empty() {
        EMPTY_ACTION_BODY.to_string()
    } else {
        body.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trajectory::ToolCall;
    use serde_json::json;

    fn msg(role: &str, content: Option<&str>, is_action: bool) -> Message {
        Message {
            role: role.to_string(),
            name: None,
            content: content.map(str::to_string),
            tool_call_id: None,
            tool_calls: vec![],
            is_action,
        }
    }

    fn traj(messages: Vec<Message>) -> Trajectory {
        Trajectory {
            id: "t".into(),
            task_id: "task".into(),
            messages,
            reward: None,
            mistake_step: None,
            mistake_agent: None,
            action_text: ActionText::default(),
        }
    }

    #[test]
    fn who_and_when_renders_verbatim() {
        // The reference's Who&When path prints "[role]: content" with no stripping or
        // placeholder; tau2/chat actions are stripped.
        let mut t = traj(vec![
            msg("human", Some("Q?"), false),
            msg("WebSurfer", Some("  looked \n"), true),
        ]);
        let stripped = render_paper(&t);
        assert_eq!(stripped[1].text, "\n[WebSurfer]: looked");
        t.action_text = ActionText::Verbatim;
        let verbatim = render_paper(&t);
        assert_eq!(verbatim[0].text, "[human]: Q?");
        assert_eq!(verbatim[1].text, "\n[WebSurfer]:   looked \n");
    }

    #[test]
    fn separators_belong_to_the_following_message() {
        let t = traj(vec![
            msg("system", Some("Be nice."), false),
            msg("user", Some("hi"), false),
            msg("assistant", Some("Hello!"), true),
        ]);
        let spans = render_paper(&t);
        let texts: Vec<&str> = spans.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "[system]: Be nice.",
                "\n[user]: hi",
                "\n[assistant]: Hello!"
            ]
        );
        assert_eq!(
            spans.iter().map(|s| s.is_action).collect::<Vec<_>>(),
            [false, false, true]
        );
        assert_eq!(spans[2].message_index, 2);
    }

    #[test]
    fn tool_calls_render_as_python_calls() {
        let mut a = msg("assistant", None, true);
        a.tool_calls = vec![
            ToolCall {
                id: Some("c1".into()),
                name: "get_user".into(),
                arguments: json!({"user_id": "sara's", "n": 2, "f": 0.5}),
            },
            ToolCall {
                id: None,
                name: "noop".into(),
                arguments: json!({}),
            },
        ];
        // content None -> "" ; ("" + "\n" + "tool_call(...)\ntool_call(noop, {})").strip()
        let spans = render_paper(&traj(vec![msg("user", Some("x"), false), a]));
        assert_eq!(
            spans[1].text,
            "\n[assistant]: tool_call(get_user, {'user_id': \"sara's\", 'n': 2, 'f': 0.5})\n\
             tool_call(noop, {})"
        );
    }

    #[test]
    fn content_and_tool_call_are_joined_then_stripped() {
        let mut a = msg("assistant", Some("  Let me check.  "), true);
        a.tool_calls = vec![ToolCall {
            id: None,
            name: "f".into(),
            arguments: json!({"a": [true, null]}),
        }];
        // ("  Let me check.  " + "\n" + "tool_call(f, {'a': [True, None]})").strip()
        assert_eq!(
            paper_body(&a),
            "Let me check.  \ntool_call(f, {'a': [True, None]})"
        );
    }

    #[test]
    fn empty_action_keeps_role_prefix() {
        let spans = render_paper(&traj(vec![
            msg("assistant", Some(" \n "), true),
            msg("assistant", None, true),
        ]));
        assert_eq!(spans[0].text, "[assistant]: [assistant action]");
        assert_eq!(spans[1].text, "\n[assistant]: [assistant action]");
    }

    #[test]
    fn observations_are_verbatim_and_actions_stripped() {
        let spans = render_paper(&traj(vec![
            msg("human", Some("  question \n"), false),
            msg("Orchestrator (thought)", Some(" plan\n"), true),
            msg("tool", None, false),
        ]));
        assert_eq!(spans[0].text, "[human]:   question \n");
        assert_eq!(spans[1].text, "\n[Orchestrator (thought)]: plan");
        assert_eq!(spans[2].text, "\n[tool]: ");
    }
}
