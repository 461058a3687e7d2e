//! Python's `json.dumps`, for the chat-template `tojson` filter.
//!
//! Hugging Face replaces Jinja's `tojson` with
//! `json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)`.
//! minijinja's own `tojson` HTML-escapes `<`, `>`, `&` and `'` and differs in indentation, so
//! tool schemas and tool-call arguments would tokenise differently. This writer reproduces
//! `json.dumps` byte for byte, including its float formatting (Python `repr`).

use padv_core::render::py_number_repr;
use serde_json::Value;

/// The `json.dumps` keyword arguments the filter honours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DumpStyle {
    /// `indent`: `None` writes everything on one line; `Some(s)` puts each item on its own
    /// line prefixed by `s` repeated per nesting level (`indent=2` is `"  "`).
    pub indent: Option<String>,
    /// Between items; Python's default is `", "` without indent and `","` with it.
    pub item_sep: String,
    /// Between a key and its value; Python's default is `": "`.
    pub key_sep: String,
    /// Escape every non-ASCII character as `\uXXXX` (HF passes `False`).
    pub ensure_ascii: bool,
    /// Sort object keys (HF passes `False`: insertion order).
    pub sort_keys: bool,
}

impl Default for DumpStyle {
    fn default() -> Self {
        DumpStyle::new(None, None, false, false)
    }
}

impl DumpStyle {
    /// Resolves Python's defaults: without an explicit `separators`, the item separator is
    /// `", "` when `indent` is None and `","` otherwise.
    pub fn new(
        indent: Option<String>,
        separators: Option<(String, String)>,
        ensure_ascii: bool,
        sort_keys: bool,
    ) -> Self {
        let (item_sep, key_sep) = separators.unwrap_or_else(|| {
            let item = if indent.is_some() { "," } else { ", " };
            (item.to_string(), ": ".to_string())
        });
        DumpStyle {
            indent,
            item_sep,
            key_sep,
            ensure_ascii,
            sort_keys,
        }
    }
}

/// `json.dumps(value, **style)`.
pub(crate) fn dumps(value: &Value, style: &DumpStyle) -> String {
    let mut out = String::new();
    write_value(value, style, 0, &mut out);
    out
}

fn newline(style: &DumpStyle, level: usize, out: &mut String) {
    if let Some(ind) = &style.indent {
        out.push('\n');
        for _ in 0..level {
            out.push_str(ind);
        }
    }
}

fn write_value(value: &Value, style: &DumpStyle, level: usize, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&py_number_repr(n)),
        Value::String(s) => write_string(s, style.ensure_ascii, out),
        Value::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&style.item_sep);
                }
                newline(style, level + 1, out);
                write_value(item, style, level + 1, out);
            }
            newline(style, level, out);
            out.push(']');
        }
        Value::Object(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return;
            }
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            if style.sort_keys {
                entries.sort_by(|a, b| a.0.cmp(b.0));
            }
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(&style.item_sep);
                }
                newline(style, level + 1, out);
                write_string(k, style.ensure_ascii, out);
                out.push_str(&style.key_sep);
                write_value(v, style, level + 1, out);
            }
            newline(style, level, out);
            out.push('}');
        }
    }
}

/// A JSON string literal as Python writes it: `\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`, other
/// controls as `\u00XX` (lowercase hex); with `ensure_ascii` also everything outside
/// U+0020..U+007E, astral characters as surrogate pairs.
fn write_string(s: &str, ensure_ascii: bool, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if ensure_ascii && !(' '..='~').contains(&c) => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Expected strings were printed by CPython 3.11's json.dumps with the same arguments.

    #[test]
    fn default_style_matches_hf_tojson() {
        // json.dumps({"q": "<a & 'b'>", "n": [1, 2.5, 1e-07, True, None], "é": {}},
        //            ensure_ascii=False)
        let v: Value =
            serde_json::from_str(r#"{"q": "<a & 'b'>", "n": [1, 2.5, 1e-7, true, null], "é": {}}"#)
                .unwrap();
        assert_eq!(
            dumps(&v, &DumpStyle::default()),
            r#"{"q": "<a & 'b'>", "n": [1, 2.5, 1e-07, true, null], "é": {}}"#
        );
    }

    #[test]
    fn escapes_controls_like_python() {
        // json.dumps("a\"b\\c\n\r\t\b\f\x01\x7f", ensure_ascii=False)
        let v = json!("a\"b\\c\n\r\t\u{8}\u{c}\u{1}\u{7f}");
        assert_eq!(
            dumps(&v, &DumpStyle::default()),
            "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\u{7f}\""
        );
        // json.dumps("é😀\x7f") with ensure_ascii=True -> "\u00e9\ud83d\ude00\u007f"
        let style = DumpStyle::new(None, None, true, false);
        assert_eq!(
            dumps(&json!("é😀\u{7f}"), &style),
            r#""\u00e9\ud83d\ude00\u007f""#
        );
    }

    #[test]
    fn indent_and_separators_follow_python() {
        // json.dumps({"a": [1, {}], "b": {"c": []}}, indent=2)
        let v: Value = serde_json::from_str(r#"{"a": [1, {}], "b": {"c": []}}"#).unwrap();
        let style = DumpStyle::new(Some("  ".into()), None, false, false);
        assert_eq!(
            dumps(&v, &style),
            "{\n  \"a\": [\n    1,\n    {}\n  ],\n  \"b\": {\n    \"c\": []\n  }\n}"
        );
        // json.dumps({"b": 1, "a": 2}, separators=(",", ":"), sort_keys=True)
        let v: Value = serde_json::from_str(r#"{"b": 1, "a": 2}"#).unwrap();
        let style = DumpStyle::new(None, Some((",".into(), ":".into())), false, true);
        assert_eq!(dumps(&v, &style), r#"{"a":2,"b":1}"#);
        // indent=0: newlines, no indentation.
        let style = DumpStyle::new(Some(String::new()), None, false, false);
        assert_eq!(dumps(&json!([1, 2]), &style), "[\n1,\n2\n]");
    }
}
