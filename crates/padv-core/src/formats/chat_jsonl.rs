//! OpenAI-style chat logs, one trajectory per JSONL line:
//! `{"id", "task_id"?, "messages": [...], "reward"?, "mistake_step"?, "mistake_agent"?}`.
//!
//! Messages are OpenAI chat messages (`role`, `content` as a string, `null` or content parts,
//! `name`, `tool_call_id`, `tool_calls`); tau2's flat tool-call form is accepted too. Every
//! `assistant` message is an action. A missing `id` becomes `line-<n>` and a missing
//! `task_id` defaults to the id, so plain chat logs need no extra bookkeeping.

use std::path::Path;

use serde_json::Value;

use super::fields::{record_label, Ctx, Obj};
use super::{message, Collector, FormatError, ROOT_FIELD};
use crate::{Message, Trajectory};

/// Read chat JSONL text into `out`. Blank lines are ignored; a line that is not valid JSON or
/// not a valid record is one bad record. A whole text that is one JSON object (e.g. a single
/// pretty-printed conversation) is one record, numbered by its first non-blank line; `parsed`
/// is that object when the caller has already parsed the text.
pub(crate) fn read(
    path: &Path,
    text: &str,
    parsed: Option<&Value>,
    out: &mut Collector,
) -> Result<(), FormatError> {
    let first_line = text
        .lines()
        .position(|l| !l.trim().is_empty())
        .map_or(1, |i| i + 1);
    match parsed {
        Some(doc) => return out.add(record(path, first_line, doc)),
        None => {
            if let Ok(doc @ Value::Object(_)) = serde_json::from_str::<Value>(text) {
                return out.add(record(path, first_line, &doc));
            }
        }
    }
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str::<Value>(line)
            .map_err(|e| FormatError::json(path, &e, i))
            .and_then(|v| record(path, i + 1, &v));
        out.add(record)?;
    }
    Ok(())
}

fn record(path: &Path, line: usize, value: &Value) -> Result<Trajectory, FormatError> {
    let ctx = Ctx {
        path,
        record: record_label(format!("line {line}"), value.get("id")),
    };
    let root = ctx.object(value, ROOT_FIELD)?;
    let id = ctx
        .opt_id(root, "", "id")?
        .unwrap_or_else(|| format!("line-{line}"));
    let task_id = ctx
        .opt_id(root, "", "task_id")?
        .unwrap_or_else(|| id.clone());
    let messages = ctx
        .req_array(root, "", "messages")?
        .iter()
        .enumerate()
        .map(|(i, m)| chat_message(&ctx, m, &format!("messages[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let reward = ctx.opt_f64(root, "", "reward")?;
    let mistake_step = ctx.opt_step(root, "", "mistake_step", messages.len())?;
    let mistake_agent = ctx.opt_str(root, "", "mistake_agent")?.map(str::to_owned);
    Ok(Trajectory {
        id,
        task_id,
        messages,
        reward,
        mistake_step,
        mistake_agent,
        action_text: crate::trajectory::ActionText::ContentAndToolCalls,
    })
}

fn chat_message(ctx: &Ctx<'_>, value: &Value, prefix: &str) -> Result<Message, FormatError> {
    let msg: &Obj = ctx.object(value, prefix)?;
    let role = ctx.req_str(msg, prefix, "role")?.to_owned();
    let name = ctx.opt_str(msg, prefix, "name")?.map(str::to_owned);
    let content = message::content(ctx, msg, prefix)?;
    let tool_call_id = ctx.opt_id(msg, prefix, "tool_call_id")?;
    let tool_calls = message::tool_calls(ctx, msg, prefix)?;
    let is_action = role == "assistant";
    Ok(Message {
        role,
        name,
        content,
        tool_call_id,
        tool_calls,
        is_action,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read_text(text: &str, strict: bool) -> Result<Collector, FormatError> {
        let mut out = Collector::new(strict);
        read(Path::new("c.jsonl"), text, None, &mut out)?;
        Ok(out)
    }

    fn line(v: Value) -> String {
        serde_json::to_string(&v).unwrap()
    }

    fn conversation() -> Value {
        json!({
            "id": "conv-1", "task_id": 4, "reward": 0.5, "mistake_step": "3",
            "messages": [
                {"role": "system", "content": "You are helpful."},
                {"role": "user", "content": [{"type": "text", "text": "Weather in "}, {"type": "text", "text": "Oslo?"}]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_9", "type": "function",
                     "function": {"name": "weather", "arguments": "{\"city\": \"Oslo\", \"unit\": \"C\"}"}}]},
                {"role": "tool", "tool_call_id": "call_9", "name": "weather", "content": "-3"},
                {"role": "assistant", "content": "It is -3 C."}
            ]
        })
    }

    #[test]
    fn reads_openai_messages() {
        let out = read_text(&line(conversation()), true).unwrap();
        let t = &out.trajectories[0];
        assert_eq!((t.id.as_str(), t.task_id.as_str()), ("conv-1", "4"));
        assert_eq!(t.reward, Some(0.5));
        assert_eq!(t.mistake_step, Some(3));
        assert_eq!(t.action_indices(), vec![2, 4]);
        assert_eq!(t.messages[1].content.as_deref(), Some("Weather in Oslo?"));
        let call = &t.messages[2].tool_calls[0];
        assert_eq!(call.name, "weather");
        assert_eq!(call.arguments, json!({"city": "Oslo", "unit": "C"}));
        assert_eq!(t.messages[3].tool_call_id.as_deref(), Some("call_9"));
        assert_eq!(t.messages[3].name.as_deref(), Some("weather"));
    }

    #[test]
    fn ids_default_to_line_numbers_and_task_to_id() {
        // Line 1 is blank, so the record sits on line 2.
        let text = format!(
            "\n{}\n",
            line(json!({"messages": [{"role": "user", "content": "hi"}]}))
        );
        let out = read_text(&text, true).unwrap();
        assert_eq!(out.trajectories[0].id, "line-2");
        let text = format!(
            "{}\n\n{}\n",
            line(json!({"id": "a", "messages": []})),
            line(json!({"messages": [{"role": "assistant", "content": "x"}]}))
        );
        let out = read_text(&text, true).unwrap();
        assert_eq!(out.trajectories[1].id, "line-3");
        assert_eq!(out.trajectories[1].task_id, "line-3");
        assert_eq!(out.trajectories[0].task_id, "a");
        assert_eq!(out.trajectories[1].reward, None);
    }

    #[test]
    fn bad_json_line_is_skipped_or_fatal_when_strict() {
        let text = format!(
            "{}\n{{\"id\": \"x\", \"messages\": [\n{}\n",
            line(json!({"id": "a", "messages": []})),
            line(json!({"id": "c", "messages": []}))
        );
        let out = read_text(&text, false).unwrap();
        let ids: Vec<&str> = out.trajectories.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["a", "c"]);
        assert!(
            matches!(&out.skipped[..], [FormatError::Json { line: 2, .. }]),
            "{:?}",
            out.skipped
        );
        let err = read_text(&text, true).unwrap_err();
        assert!(matches!(err, FormatError::Json { line: 2, .. }));
        assert!(err.to_string().starts_with("c.jsonl:2:"), "{err}");
    }

    #[test]
    fn bad_records_name_line_id_and_field() {
        let with = |f: &dyn Fn(&mut Value)| {
            let mut c = conversation();
            f(&mut c);
            c
        };
        let cases = [
            (
                with(&|c| drop(c.as_object_mut().unwrap().remove("messages"))),
                "messages",
            ),
            (with(&|c| c["reward"] = json!("high")), "reward"),
            (with(&|c| c["mistake_step"] = json!("x")), "mistake_step"),
            // 5 messages: index 5 is one past the end.
            (with(&|c| c["mistake_step"] = json!(5)), "mistake_step"),
            (
                with(&|c| c["messages"][3]["tool_call_id"] = json!(true)),
                "messages[3].tool_call_id",
            ),
            (
                with(&|c| c["messages"][0]["name"] = json!(1)),
                "messages[0].name",
            ),
            (
                with(&|c| c["messages"][4]["role"] = json!(null)),
                "messages[4].role",
            ),
            (
                with(&|c| {
                    drop(
                        c["messages"][2]["tool_calls"][0]["function"]
                            .as_object_mut()
                            .unwrap()
                            .remove("name"),
                    )
                }),
                "messages[2].tool_calls[0].function.name",
            ),
            (json!(["not", "an", "object"]), ROOT_FIELD),
        ];
        for (bad, want) in cases {
            let text = format!(
                "{}\n{}\n",
                line(json!({"id": "ok", "messages": []})),
                line(bad)
            );
            let out = read_text(&text, false).unwrap();
            assert_eq!(out.trajectories.len(), 1, "{want}");
            match &out.skipped[..] {
                [FormatError::Field { record, field, .. }] => {
                    assert_eq!(field, want);
                    let want_record = if want == ROOT_FIELD {
                        "line 2"
                    } else {
                        "line 2 (id \"conv-1\")"
                    };
                    assert_eq!(record, want_record);
                }
                other => panic!("{want}: {other:?}"),
            }
            assert!(read_text(&text, true).is_err(), "{want}");
        }
    }

    #[test]
    fn pretty_printed_single_object_is_one_record() {
        let text = serde_json::to_string_pretty(&conversation()).unwrap();
        let out = read_text(&text, true).unwrap();
        assert_eq!(out.trajectories.len(), 1);
        assert_eq!(out.trajectories[0].id, "conv-1");
    }
}
