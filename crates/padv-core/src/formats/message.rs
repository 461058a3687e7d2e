//! Message fields shared by the tau2 and chat readers: text content (a string, `null`, or
//! OpenAI content parts) and tool calls (tau2's flat form or OpenAI's nested form).

use serde_json::Value;

use super::fields::{join, Ctx, Obj};
use super::FormatError;
use crate::ToolCall;

/// The `content` of a message.
///
/// A string is kept as is; absent or `null` gives `None`. A list of OpenAI content parts gives
/// the concatenation of its `{"type": "text", "text": ...}` parts; other part types (images,
/// audio) carry no text a language model could score, so they are left out, and a list with
/// no text part gives `None`.
pub(crate) fn content(
    ctx: &Ctx<'_>,
    msg: &Obj,
    prefix: &str,
) -> Result<Option<String>, FormatError> {
    match msg.get("content") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Array(parts)) => {
            let mut text: Option<String> = None;
            for (i, part) in parts.iter().enumerate() {
                let part_prefix = format!("{}[{i}]", join(prefix, "content"));
                let part = ctx.object(part, &part_prefix)?;
                if ctx.opt_str(part, &part_prefix, "type")? == Some("text") {
                    let piece = ctx.req_str(part, &part_prefix, "text")?;
                    text.get_or_insert_with(String::new).push_str(piece);
                }
            }
            Ok(text)
        }
        Some(other) => Err(ctx.wrong_type(
            join(prefix, "content"),
            "a string, null or a list of content parts",
            other,
        )),
    }
}

/// The `tool_calls` of a message: absent or `null` gives no calls.
pub(crate) fn tool_calls(
    ctx: &Ctx<'_>,
    msg: &Obj,
    prefix: &str,
) -> Result<Vec<ToolCall>, FormatError> {
    let Some(calls) = ctx.opt_array(msg, prefix, "tool_calls")? else {
        return Ok(Vec::new());
    };
    calls
        .iter()
        .enumerate()
        .map(|(i, call)| tool_call(ctx, call, &format!("{}[{i}]", join(prefix, "tool_calls"))))
        .collect()
}

/// One tool call, flat (`{id, name, arguments}`, tau2) or nested
/// (`{id, type: "function", function: {name, arguments}}`, OpenAI).
fn tool_call(ctx: &Ctx<'_>, call: &Value, prefix: &str) -> Result<ToolCall, FormatError> {
    let call = ctx.object(call, prefix)?;
    let id = ctx.opt_id(call, prefix, "id")?;
    let (body, body_prefix) = match call.get("function") {
        Some(function) => {
            let body_prefix = join(prefix, "function");
            (ctx.object(function, &body_prefix)?, body_prefix)
        }
        None => (call, prefix.to_owned()),
    };
    let name = ctx.req_str(body, &body_prefix, "name")?.to_owned();
    let arguments = match body.get("arguments") {
        None => return Err(ctx.error(join(&body_prefix, "arguments"), "required field is missing")),
        Some(v) => arguments(v),
    };
    Ok(ToolCall {
        id,
        name,
        arguments,
    })
}

/// OpenAI sends `arguments` as JSON text: parse it so that every source yields the same JSON
/// value (key order kept). Text that is not JSON (a truncated or hand-written call) stays a
/// JSON string rather than failing the record, because it is still what the model emitted.
fn arguments(v: &Value) -> Value {
    match v {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| v.clone()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::Path;

    fn ctx() -> Ctx<'static> {
        Ctx {
            path: Path::new("t.jsonl"),
            record: "line 1".into(),
        }
    }

    fn field_of(err: FormatError) -> String {
        match err {
            FormatError::Field { field, .. } => field,
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn content_parts_concatenate_text_and_skip_images() {
        let msg = json!({"content": [
            {"type": "text", "text": "Hello, "},
            {"type": "image_url", "image_url": {"url": "x"}},
            {"type": "text", "text": "world"}
        ]});
        let got = content(&ctx(), msg.as_object().unwrap(), "messages[0]").unwrap();
        assert_eq!(got.as_deref(), Some("Hello, world"));
        let only_image = json!({"content": [{"type": "image_url"}]});
        assert_eq!(
            content(&ctx(), only_image.as_object().unwrap(), "").unwrap(),
            None
        );
    }

    #[test]
    fn content_errors_name_the_part() {
        let msg = json!({"content": [{"type": "text", "text": 5}]});
        let err = content(&ctx(), msg.as_object().unwrap(), "messages[2]").unwrap_err();
        assert_eq!(field_of(err), "messages[2].content[0].text");
        let msg = json!({"content": ["bare"]});
        let err = content(&ctx(), msg.as_object().unwrap(), "messages[2]").unwrap_err();
        assert_eq!(field_of(err), "messages[2].content[0]");
        let msg = json!({"content": 3});
        let err = content(&ctx(), msg.as_object().unwrap(), "messages[2]").unwrap_err();
        assert_eq!(field_of(err), "messages[2].content");
    }

    #[test]
    fn nested_and_flat_tool_calls_flatten_alike() {
        let msg = json!({"tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "get_user", "arguments": "{\"b\": 1, \"a\": [2]}"}},
            {"id": "c2", "name": "cancel", "arguments": {"z": true, "y": null}, "requestor": "assistant"},
            {"type": "function", "function": {"name": "broken", "arguments": "{\"a\": "}}
        ]});
        let calls = tool_calls(&ctx(), msg.as_object().unwrap(), "messages[0]").unwrap();
        assert_eq!(calls.len(), 3);
        assert_eq!(calls[0].id.as_deref(), Some("c1"));
        assert_eq!(calls[0].name, "get_user");
        assert_eq!(calls[0].arguments, json!({"b": 1, "a": [2]}));
        // Key order as written, not sorted: "b" before "a", "z" before "y".
        let keys: Vec<&String> = calls[0].arguments.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["b", "a"]);
        let keys: Vec<&String> = calls[1].arguments.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["z", "y"]);
        assert_eq!(calls[1].name, "cancel");
        // Unparseable JSON text is kept verbatim as a string.
        assert_eq!(calls[2].id, None);
        assert_eq!(calls[2].arguments, json!("{\"a\": "));
    }

    #[test]
    fn tool_call_errors_name_the_field() {
        let cases = [
            (
                json!({"tool_calls": [{"arguments": {}}]}),
                "m.tool_calls[0].name",
            ),
            (
                json!({"tool_calls": [{"name": "f"}]}),
                "m.tool_calls[0].arguments",
            ),
            (
                json!({"tool_calls": [{"function": {"name": 7, "arguments": "{}"}}]}),
                "m.tool_calls[0].function.name",
            ),
            (
                json!({"tool_calls": [{"function": "f"}]}),
                "m.tool_calls[0].function",
            ),
            (
                json!({"tool_calls": [{"id": [], "name": "f", "arguments": {}}]}),
                "m.tool_calls[0].id",
            ),
            (json!({"tool_calls": [1]}), "m.tool_calls[0]"),
            (json!({"tool_calls": {}}), "m.tool_calls"),
        ];
        for (msg, want) in cases {
            let err = tool_calls(&ctx(), msg.as_object().unwrap(), "m").unwrap_err();
            assert_eq!(field_of(err), want, "{msg}");
        }
    }

    #[test]
    fn absent_or_null_tool_calls_are_empty() {
        for msg in [
            json!({}),
            json!({"tool_calls": null}),
            json!({"tool_calls": []}),
        ] {
            assert!(tool_calls(&ctx(), msg.as_object().unwrap(), "")
                .unwrap()
                .is_empty());
        }
    }
}
