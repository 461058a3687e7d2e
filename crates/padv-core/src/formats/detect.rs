//! Format detection from file content (never from the extension alone: Who&When and tau2
//! files are both `.json`, and chat logs are sometimes saved as `.json` too).
//!
//! Rules, in order:
//! 1. the whole text is one JSON object: key `simulations` → tau2, `history` → Who&When,
//!    `messages` → chat (a single conversation);
//! 2. otherwise the first non-blank line is a JSON object with `messages` → chat JSONL (when
//!    that line is not valid JSON, the first line that is decides, so one broken line does not
//!    make a chat log unreadable);
//! 3. anything else is [`FormatError::UnknownFormat`] (or [`FormatError::Json`] when the text is
//!    not JSON at all), saying what was looked for.

use std::path::Path;

use serde_json::{Map, Value};

use super::fields::kind;
use super::{Format, FormatError};

/// What detection looked for, repeated in every "unknown format" message.
const LOOKED_FOR: &str = "expected a JSON object with `simulations` (tau2 results), a JSON object \
     with `history` (Who&When), or JSONL whose first non-blank line is an object with \
     `messages` (chat)";

/// A detected format, with the parsed document when the whole text was one JSON value (so
/// that it is parsed only once).
pub(crate) struct Detection {
    /// The format.
    pub format: Format,
    /// The whole text parsed, when it is a single JSON object.
    pub document: Option<Value>,
}

/// Detect the format of `text` (the content of `path`, used in error messages).
pub(crate) fn detect(path: &Path, text: &str) -> Result<Detection, FormatError> {
    let unknown = |reason: String| FormatError::UnknownFormat {
        path: path.to_path_buf(),
        reason,
    };
    if text.trim().is_empty() {
        return Err(unknown(format!("the file is empty; {LOOKED_FOR}")));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => match format_of_object(&map) {
            Some(format) => Ok(Detection {
                format,
                document: Some(Value::Object(map)),
            }),
            None => Err(unknown(format!(
                "the file is a JSON object with keys {}; {LOOKED_FOR}",
                key_list(&map)
            ))),
        },
        Ok(other) => Err(unknown(format!(
            "the file is {}, not an object; {LOOKED_FOR}",
            kind(&other)
        ))),
        Err(whole) => {
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            match serde_json::from_str::<Value>(first) {
                Ok(Value::Object(map)) if map.contains_key("messages") => Ok(Detection {
                    format: Format::ChatJsonl,
                    document: None,
                }),
                Ok(Value::Object(map)) => Err(unknown(format!(
                    "the first line is a JSON object with keys {}; {LOOKED_FOR}",
                    key_list(&map)
                ))),
                Ok(other) => Err(unknown(format!(
                    "the first line is {}, not an object; {LOOKED_FOR}",
                    kind(&other)
                ))),
                // A broken first line (e.g. cut by a crash) must not hide a chat log: the
                // first line that parses decides, and the chat reader skips the broken ones.
                Err(_) if first_parsed_line_is_chat(text) => Ok(Detection {
                    format: Format::ChatJsonl,
                    document: None,
                }),
                // Neither one JSON document nor JSONL: report where the JSON breaks.
                Err(_) => Err(FormatError::json(path, &whole, 0)),
            }
        }
    }
}

/// Whether the first non-blank line that is valid JSON is an object with `messages`.
fn first_parsed_line_is_chat(text: &str) -> bool {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
        .is_some_and(|v| v.get("messages").is_some())
}

/// Detect the format of `text`, the content of `path` (named in errors). See the module docs
/// for the rules.
pub fn detect_format(path: &Path, text: &str) -> Result<Format, FormatError> {
    detect(path, text).map(|d| d.format)
}

fn format_of_object(map: &Map<String, Value>) -> Option<Format> {
    if map.contains_key("simulations") {
        Some(Format::Tau2)
    } else if map.contains_key("history") {
        Some(Format::WhoAndWhen)
    } else if map.contains_key("messages") {
        Some(Format::ChatJsonl)
    } else {
        None
    }
}

/// The first few keys of an object, for error messages.
fn key_list(map: &Map<String, Value>) -> String {
    const SHOWN: usize = 8;
    if map.is_empty() {
        return "(none)".into();
    }
    let mut keys: Vec<String> = map.keys().take(SHOWN).map(|k| format!("`{k}`")).collect();
    if map.len() > SHOWN {
        keys.push(format!("… ({} more)", map.len() - SHOWN));
    }
    keys.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect_str(text: &str) -> Result<Format, FormatError> {
        detect_format(Path::new("x.json"), text)
    }

    #[test]
    fn detects_each_format_by_content() {
        assert_eq!(
            detect_str(r#"{"info": {}, "simulations": []}"#).unwrap(),
            Format::Tau2
        );
        assert_eq!(
            detect_str("{\n \"history\": [],\n \"mistake_step\": \"1\"\n}").unwrap(),
            Format::WhoAndWhen
        );
        let jsonl = "\n{\"id\": 1, \"messages\": []}\n{\"id\": 2, \"messages\": []}\n";
        assert_eq!(detect_str(jsonl).unwrap(), Format::ChatJsonl);
        // A single conversation object is chat too.
        assert_eq!(
            detect_str(r#"{"messages": []}"#).unwrap(),
            Format::ChatJsonl
        );
        // `simulations` wins over the others when several keys are present.
        assert_eq!(
            detect_str(r#"{"messages": [], "simulations": []}"#).unwrap(),
            Format::Tau2
        );
    }

    #[test]
    fn detection_keeps_the_parsed_document_only_for_whole_json() {
        let d = detect(Path::new("x"), r#"{"simulations": []}"#).unwrap();
        assert!(d.document.is_some());
        let d = detect(Path::new("x"), "{\"messages\": []}\n{\"messages\": []}").unwrap();
        assert!(d.document.is_none());
    }

    #[test]
    fn unknown_formats_say_what_was_looked_for() {
        for (text, found) in [
            (r#"{"foo": 1, "bar": 2}"#, "keys `foo`, `bar`"),
            ("[1, 2]", "the file is an array"),
            ("", "the file is empty"),
            (
                "{\"a\": 1}\n{\"a\": 2}",
                "first line is a JSON object with keys `a`",
            ),
            ("3\n4", "first line is a number"),
        ] {
            match detect_str(text) {
                Err(FormatError::UnknownFormat { reason, .. }) => {
                    assert!(reason.contains(found), "{reason}");
                    assert!(reason.contains("`simulations`") && reason.contains("`history`"));
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn broken_json_reports_its_position() {
        let err = detect_str("{\n  \"simulations\": [\n    {\"id\": }\n").unwrap_err();
        match err {
            FormatError::Json {
                line,
                column,
                ref message,
                ..
            } => {
                assert_eq!(line, 3);
                assert!(column > 0);
                assert!(!message.contains("at line"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
}
