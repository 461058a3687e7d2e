//! The message list a Hugging Face chat template receives.

use serde_json::{json, Map, Value};

use crate::trajectory::{Message, Trajectory};

/// The role a chat template sees for a message.
///
/// An action is always `assistant`: it is what the judged agent generated, and only an
/// assistant turn is opened by the template's generation prompt, which is how
/// `tokenize_chat` finds the generated tokens. This matters for Who&When logs, where agents
/// often speak with role `user` (Algorithm-Generated) or under their own names (Hand-Crafted).
/// Other messages keep `system`, `user`, `assistant` or `tool`; any other role becomes `user`
/// (context the agent reads).
pub fn chat_role(m: &Message) -> &str {
    match m.role.as_str() {
        _ if m.is_action => "assistant",
        r @ ("system" | "user" | "assistant" | "tool") => r,
        _ => "user",
    }
}

/// The Hugging Face style message list for `apply_chat_template`, one object per message in
/// order, with keys in this order and absent keys omitted:
///
/// - `role`: [`chat_role`];
/// - `content`: the content, or `null` when the trajectory has none (templates test it);
/// - `name`: the speaker name, when known;
/// - `tool_call_id`: for tool results, when known;
/// - `tool_calls`: when the message makes calls, a list of
///   `{"type": "function", "id"?: id, "function": {"name": name, "arguments": arguments}}`,
///   with `arguments` kept as the JSON object itself (templates `tojson` it), not a string.
///
/// Message indices are preserved one-to-one, so index `i` of the result is message `i`.
pub fn chat_messages(t: &Trajectory) -> Value {
    Value::Array(t.messages.iter().map(chat_message).collect())
}

fn chat_message(m: &Message) -> Value {
    let mut obj = Map::new();
    obj.insert("role".into(), Value::String(chat_role(m).to_string()));
    obj.insert(
        "content".into(),
        m.content.clone().map_or(Value::Null, Value::String),
    );
    if let Some(name) = &m.name {
        obj.insert("name".into(), Value::String(name.clone()));
    }
    if let Some(id) = &m.tool_call_id {
        obj.insert("tool_call_id".into(), Value::String(id.clone()));
    }
    if !m.tool_calls.is_empty() {
        let calls = m
            .tool_calls
            .iter()
            .map(|c| {
                let mut call = Map::new();
                call.insert("type".into(), Value::String("function".into()));
                if let Some(id) = &c.id {
                    call.insert("id".into(), Value::String(id.clone()));
                }
                call.insert(
                    "function".into(),
                    json!({"name": c.name, "arguments": c.arguments}),
                );
                Value::Object(call)
            })
            .collect();
        obj.insert("tool_calls".into(), Value::Array(calls));
    }
    Value::Object(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trajectory::ToolCall;

    fn msg(role: &str, is_action: bool) -> Message {
        Message {
            role: role.into(),
            name: None,
            content: Some("c".into()),
            tool_call_id: None,
            tool_calls: vec![],
            is_action,
        }
    }

    #[test]
    fn roles_map_to_template_roles() {
        for r in ["system", "user", "assistant", "tool"] {
            assert_eq!(chat_role(&msg(r, false)), r);
            assert_eq!(chat_role(&msg(r, true)), "assistant");
        }
        assert_eq!(chat_role(&msg("WebSurfer", true)), "assistant");
        assert_eq!(chat_role(&msg("WebSurfer", false)), "user");
        assert_eq!(chat_role(&msg("human", false)), "user");
    }

    #[test]
    fn messages_have_hf_shape_and_key_order() {
        let mut a = msg("assistant", true);
        a.content = None;
        a.tool_calls = vec![ToolCall {
            id: Some("call_1".into()),
            name: "lookup".into(),
            arguments: json!({"z": 1, "a": "x"}),
        }];
        let mut tool = msg("tool", false);
        tool.tool_call_id = Some("call_1".into());
        let mut named = msg("Assistant", true);
        named.name = Some("Coder".into());
        let t = Trajectory {
            id: "t".into(),
            task_id: "k".into(),
            messages: vec![a, tool, named],
            reward: None,
            mistake_step: None,
            mistake_agent: None,
            ..Default::default()
        };
        let got = serde_json::to_string(&chat_messages(&t)).unwrap();
        let want = concat!(
            r#"[{"role":"assistant","content":null,"tool_calls":[{"type":"function","id":"call_1","#,
            r#""function":{"name":"lookup","arguments":{"z":1,"a":"x"}}}]},"#,
            r#"{"role":"tool","content":"c","tool_call_id":"call_1"},"#,
            r#"{"role":"assistant","content":"c","name":"Coder"}]"#
        );
        assert_eq!(got, want);
    }
}
