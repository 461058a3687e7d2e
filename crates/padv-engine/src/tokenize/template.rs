//! Hugging Face chat templates on minijinja, set up to render what
//! `transformers.apply_chat_template` renders.
//!
//! What HF's Jinja environment does and how it is mirrored here:
//! - `trim_blocks` + `lstrip_blocks`, loop controls (`break`/`continue`);
//! - Python string/dict methods (`.strip()`, `.items()`, …) via minijinja-contrib `pycompat`;
//! - `raise_exception(msg)` fails the render with `msg`;
//! - `strftime_now(fmt)` formats a fixed [`FixedDate`] (deterministic, unlike HF's clock);
//! - `tojson` is `json.dumps(x, ensure_ascii=False)` (no HTML escaping, insertion order,
//!   `indent` / `separators` / `sort_keys` / `ensure_ascii` keyword arguments);
//! - `{{ value }}` prints booleans, `None`, floats, lists and dicts the way Python's `str()`
//!   does (`True`, `None`, `1e-07`, `{'a': 1}`) rather than minijinja's JSON-like spelling;
//! - `{% generation %}…{% endgeneration %}` (HF's `AssistantTracker`) is rewritten into a
//!   filter block that brackets its output with two private-use sentinels; after rendering,
//!   the sentinels are removed and their positions returned as [`RenderedChat::generation_spans`].
//!
//! Known gaps: string concatenation (`~`, `+`) and the `string` filter still use minijinja's
//! spelling of non-string values (`true`, `none`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Range;

use minijinja::value::{Kwargs, Value as JValue, ValueKind};
use minijinja::{Environment, Error as JError, ErrorKind, State};
use padv_core::render::{py_float_repr, py_repr};

use super::error::{Result, TokenizeError};
use super::loader::{SpecialTokens, TemplateSource};
use super::pyjson::{dumps, DumpStyle};
use super::strftime::FixedDate;

/// Opens a `{% generation %}` block in the raw render (plane-16 private use, never in real text).
const GEN_OPEN: char = '\u{10FFFC}';
/// Closes a `{% generation %}` block in the raw render.
const GEN_CLOSE: char = '\u{10FFFD}';
/// The filter `{% generation %}` blocks are rewritten into.
const GEN_FILTER: &str = "__padv_generation";
/// Name under which the template is registered in its environment.
const TEMPLATE_KEY: &str = "chat";

/// Options for rendering with a chat template.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatOptions {
    /// Template name; `None` means `default` (see [`super::TextTokenizer::from_dir`]).
    pub template: Option<String>,
    /// Tool schemas passed as `tools` (HF passes `None` when there are none).
    pub tools: Option<serde_json::Value>,
    /// Extra template variables, such as `enable_thinking`; they override special tokens but
    /// not `messages`, `tools`, `documents` or `add_generation_prompt`.
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// The date `strftime_now` reports.
    pub date: FixedDate,
}

impl ChatOptions {
    /// The options from what a user gives (`padv score`'s `--chat-*` flags, the Python
    /// package's keywords), checked: `tools` must be a list of schemas, `vars` are extra
    /// template variables, `enable_thinking` sets that variable, `date` is what
    /// `strftime_now` reports (default [`super::FixedDate::default`]; parse it with
    /// [`super::FixedDate::parse`]).
    pub fn from_parts(
        template: Option<String>,
        tools: Option<serde_json::Value>,
        vars: serde_json::Map<String, serde_json::Value>,
        enable_thinking: Option<bool>,
        date: Option<super::FixedDate>,
    ) -> std::result::Result<ChatOptions, String> {
        if tools.as_ref().is_some_and(|t| !t.is_array()) {
            return Err("chat tools: expected a JSON list of tool schemas".into());
        }
        if let Some(key) = vars.keys().find(|k| k.trim().is_empty()) {
            return Err(format!("chat variable {key:?}: empty variable name"));
        }
        let mut extra = vars;
        if let Some(b) = enable_thinking {
            extra.insert("enable_thinking".into(), serde_json::Value::Bool(b));
        }
        Ok(ChatOptions {
            template,
            tools,
            extra,
            date: date.unwrap_or_default(),
        })
    }
}

/// A rendered conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedChat {
    /// The text, with generation sentinels removed.
    pub text: String,
    /// Byte ranges of `text` inside `{% generation %}` blocks, in order (empty when the
    /// template has none).
    pub generation_spans: Vec<Range<usize>>,
}

/// A compiled chat template with its fixed context (special tokens, tools, extra variables).
#[derive(Debug)]
pub struct ChatTemplate {
    name: String,
    origin: String,
    env: Environment<'static>,
    has_generation: bool,
    base_ctx: BTreeMap<String, JValue>,
}

impl ChatTemplate {
    /// Compiles `src` with the HF-compatible environment; `special` become the `bos_token`,
    /// `eos_token`, `unk_token`, `pad_token` variables (absent ones stay undefined, as in HF).
    pub fn compile(
        src: &TemplateSource,
        special: &SpecialTokens,
        opts: &ChatOptions,
    ) -> Result<Self> {
        let template_err = |message: String| TokenizeError::Template {
            name: src.name.clone(),
            origin: src.origin.clone(),
            message,
        };
        opts.date
            .validate()
            .map_err(|e| template_err(format!("invalid date {}: {e}", opts.date)))?;
        let (source, has_generation) = rewrite_generation_tags(&src.source);

        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| template_err(e.to_string()))?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.set_formatter(python_formatter);
        env.add_filter("tojson", tojson);
        env.add_filter(GEN_FILTER, |s: String| format!("{GEN_OPEN}{s}{GEN_CLOSE}"));
        env.add_function(
            "raise_exception",
            |msg: String| -> std::result::Result<JValue, JError> {
                Err(JError::new(ErrorKind::InvalidOperation, msg))
            },
        );
        let date = opts.date;
        env.add_function("strftime_now", move |fmt: String| {
            date.strftime(&fmt)
                .map_err(|e| JError::new(ErrorKind::InvalidOperation, e))
        });
        env.add_template_owned(TEMPLATE_KEY, source)
            .map_err(|e| template_err(format!("{e:#}")))?;

        let mut base_ctx = BTreeMap::new();
        for (key, value) in [
            ("bos_token", &special.bos_token),
            ("eos_token", &special.eos_token),
            ("unk_token", &special.unk_token),
            ("pad_token", &special.pad_token),
        ] {
            if let Some(v) = value {
                base_ctx.insert(key.to_string(), JValue::from(v.as_str()));
            }
        }
        for (k, v) in &opts.extra {
            base_ctx.insert(k.clone(), to_jvalue(v));
        }
        base_ctx.insert(
            "tools".into(),
            opts.tools.as_ref().map_or(JValue::from(()), to_jvalue),
        );
        base_ctx.insert("documents".into(), JValue::from(()));
        Ok(ChatTemplate {
            name: src.name.clone(),
            origin: src.origin.clone(),
            env,
            has_generation,
            base_ctx,
        })
    }

    /// The template's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the template came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Whether the template marks assistant output with `{% generation %}` blocks.
    pub fn has_generation_blocks(&self) -> bool {
        self.has_generation
    }

    /// Renders a JSON message list (as built by `padv_core::render::chat_messages`).
    /// Like transformers 5, top-level message keys whose value is `null` are dropped first
    /// (`content: null` becomes a missing `content`), since templates test `is defined`.
    /// The error string is the renderer's message, including `raise_exception` text.
    pub fn render_json(
        &self,
        messages: &serde_json::Value,
        add_generation_prompt: bool,
    ) -> std::result::Result<RenderedChat, String> {
        let msgs: Vec<JValue> = match messages {
            serde_json::Value::Array(items) => items.iter().map(template_message).collect(),
            other => vec![template_message(other)],
        };
        self.render_values(&msgs, add_generation_prompt)
    }

    /// Renders already-converted messages (cheap to slice for prefix renders).
    pub(crate) fn render_values(
        &self,
        messages: &[JValue],
        add_generation_prompt: bool,
    ) -> std::result::Result<RenderedChat, String> {
        let mut ctx = self.base_ctx.clone();
        ctx.insert("messages".into(), JValue::from(messages.to_vec()));
        ctx.insert(
            "add_generation_prompt".into(),
            JValue::from(add_generation_prompt),
        );
        let tmpl = self
            .env
            .get_template(TEMPLATE_KEY)
            .map_err(|e| e.to_string())?;
        let raw = tmpl
            .render(JValue::from(ctx))
            .map_err(|e| render_message(&e))?;
        if self.has_generation {
            split_generation(&raw)
        } else {
            Ok(RenderedChat {
                text: raw,
                generation_spans: Vec::new(),
            })
        }
    }
}

/// One message as the template sees it: HF (`_normalize_chat_messages`) drops the top-level
/// keys whose value is `None`, so `content: null` arrives as an undefined `content`.
pub(crate) fn template_message(m: &serde_json::Value) -> JValue {
    match m {
        serde_json::Value::Object(map) => {
            let kept: serde_json::Map<String, serde_json::Value> = map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            to_jvalue(&serde_json::Value::Object(kept))
        }
        other => to_jvalue(other),
    }
}

/// A JSON value as a template value (maps keep their order with `preserve_order`).
pub(crate) fn to_jvalue(v: &serde_json::Value) -> JValue {
    JValue::from(minijinja::value::Serde(v))
}

fn render_message(e: &JError) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let _ = write!(msg, ": {s}");
        source = s.source();
    }
    msg
}

/// Rewrites `{% generation %}` / `{% endgeneration %}` (with any `-`/`+` whitespace markers)
/// into `{% filter __padv_generation %}` / `{% endfilter %}`. Both are block tags, so
/// `trim_blocks` / `lstrip_blocks` treat them exactly as Jinja treats HF's extension tags.
/// Returns the new source and whether any tag was found.
pub(crate) fn rewrite_generation_tags(src: &str) -> (String, bool) {
    let mut out = String::with_capacity(src.len());
    let mut found = false;
    let mut rest = src;
    while let Some(pos) = rest.find("{%") {
        out.push_str(&rest[..pos]);
        let tag = &rest[pos..];
        match parse_simple_tag(tag) {
            Some((len, open_mod, word, close_mod))
                if word == "generation" || word == "endgeneration" =>
            {
                found = true;
                let body = if word == "generation" {
                    format!("filter {GEN_FILTER}")
                } else {
                    "endfilter".to_string()
                };
                out.push_str(&format!("{{%{open_mod} {body} {close_mod}%}}"));
                rest = &tag[len..];
            }
            _ => {
                out.push_str("{%");
                rest = &tag[2..];
            }
        }
    }
    out.push_str(rest);
    (out, found)
}

/// Parses `{%[-+]? word [-+]?%}` at the start of `s`: (length, open marker, word, close marker).
fn parse_simple_tag(s: &str) -> Option<(usize, &str, &str, &str)> {
    let inner_start = 2;
    let bytes = s.as_bytes();
    let mut i = inner_start;
    let open_mod = match bytes.get(i) {
        Some(b'-') | Some(b'+') => {
            i += 1;
            &s[i - 1..i]
        }
        _ => "",
    };
    while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    let word_start = i;
    while bytes
        .get(i)
        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
    {
        i += 1;
    }
    let word = &s[word_start..i];
    while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    let close_mod = match bytes.get(i) {
        Some(b'-') | Some(b'+') => {
            i += 1;
            &s[i - 1..i]
        }
        _ => "",
    };
    if s.get(i..i + 2) == Some("%}") {
        Some((i + 2, open_mod, word, close_mod))
    } else {
        None
    }
}

/// Removes the generation sentinels and returns their byte spans in the cleaned text.
fn split_generation(raw: &str) -> std::result::Result<RenderedChat, String> {
    let mut text = String::with_capacity(raw.len());
    let mut spans = Vec::new();
    let mut open: Option<usize> = None;
    for c in raw.chars() {
        match c {
            GEN_OPEN => {
                if open.is_some() {
                    return Err("nested {% generation %} blocks (or a message contains \
                                U+10FFFC)"
                        .into());
                }
                open = Some(text.len());
            }
            GEN_CLOSE => match open.take() {
                Some(start) => spans.push(start..text.len()),
                None => {
                    return Err("unbalanced {% endgeneration %} (or a message contains \
                                    U+10FFFD)"
                        .into())
                }
            },
            c => text.push(c),
        }
    }
    if open.is_some() {
        return Err("unclosed {% generation %} block".into());
    }
    Ok(RenderedChat {
        text,
        generation_spans: spans,
    })
}

/// HF's `tojson`: `json.dumps(x, ensure_ascii=False, indent=None, separators=None,
/// sort_keys=False)`, each overridable by keyword.
fn tojson(value: &JValue, kwargs: Kwargs) -> std::result::Result<String, JError> {
    let bad = |msg: String| JError::new(ErrorKind::InvalidOperation, msg);
    if value.is_undefined() {
        return Err(bad("tojson: value is undefined".into()));
    }
    let indent = match kwargs.get::<Option<JValue>>("indent")? {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) => match (v.as_i64(), v.as_str()) {
            (Some(n), _) => Some(" ".repeat(usize::try_from(n).unwrap_or(0))),
            (None, Some(s)) => Some(s.to_string()),
            _ => return Err(bad(format!("tojson: bad indent {v}"))),
        },
    };
    let separators = match kwargs.get::<Option<JValue>>("separators")? {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) => {
            let parts: Vec<String> = v
                .try_iter()?
                .map(|p| p.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| bad("tojson: separators must be two strings".into()))?;
            match <[String; 2]>::try_from(parts) {
                Ok([item, key]) => Some((item, key)),
                Err(_) => return Err(bad("tojson: separators must be two strings".into())),
            }
        }
    };
    let ensure_ascii = kwargs.get::<Option<bool>>("ensure_ascii")?.unwrap_or(false);
    let sort_keys = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    let json = serde_json::to_value(value)
        .map_err(|e| bad(format!("tojson: value is not JSON serialisable: {e}")))?;
    Ok(dumps(
        &json,
        &DumpStyle::new(indent, separators, ensure_ascii, sort_keys),
    ))
}

/// Prints values as Python's `str()` would, since HF renders with Jinja2 on Python objects.
fn python_formatter(
    out: &mut minijinja::Output,
    state: &mut State,
    value: &JValue,
) -> std::result::Result<(), JError> {
    let write_err = |_| JError::new(ErrorKind::WriteFailure, "formatter write failed");
    match value.kind() {
        ValueKind::Bool => out
            .write_str(if value.is_true() { "True" } else { "False" })
            .map_err(write_err),
        ValueKind::None => out.write_str("None").map_err(write_err),
        ValueKind::Number if !value.is_integer() => {
            let f = f64::try_from(value.clone())?;
            out.write_str(&py_float_repr(f)).map_err(write_err)
        }
        ValueKind::Seq | ValueKind::Map if !value.is_kwargs() => {
            match serde_json::to_value(value) {
                Ok(json) => out.write_str(&py_repr(&json)).map_err(write_err),
                Err(_) => minijinja::escape_formatter(out, state, value),
            }
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn compile(src: &str) -> ChatTemplate {
        let source = TemplateSource {
            name: "t".into(),
            source: src.into(),
            origin: "test".into(),
        };
        let special = SpecialTokens {
            bos_token: Some("<s>".into()),
            eos_token: Some("</s>".into()),
            ..Default::default()
        };
        ChatTemplate::compile(&source, &special, &ChatOptions::default()).unwrap()
    }

    #[test]
    fn rewrites_generation_tags_keeping_whitespace_markers() {
        let (out, found) =
            rewrite_generation_tags("a{% generation %}b{%- endgeneration -%}c{% if x %}");
        assert!(found);
        assert_eq!(
            out,
            "a{% filter __padv_generation %}b{%- endfilter -%}c{% if x %}"
        );
        let (out, found) = rewrite_generation_tags("{{ x }}{% for a in b %}{%");
        assert!(!found);
        assert_eq!(out, "{{ x }}{% for a in b %}{%");
    }

    #[test]
    fn generation_spans_are_byte_ranges_of_clean_text() {
        let t = compile(
            "{% for m in messages %}[{{ m.role }}]\n{% if m.role == 'assistant' %}\
             {% generation %}{{ m.content }}!{% endgeneration %}\n{% else %}{{ m.content }}\n\
             {% endif %}{% endfor %}",
        );
        assert!(t.has_generation_blocks());
        let r = t
            .render_json(
                &json!([{"role": "user", "content": "hé"},
                                 {"role": "assistant", "content": "ok"}]),
                false,
            )
            .unwrap();
        // trim_blocks eats the "\n" after {% endgeneration %} (checked with HF's jinja2 env).
        // "[user]\nhé\n" is 11 bytes (é = 2), "[assistant]\n" 12 more -> content at 23..26.
        assert_eq!(r.text, "[user]\nhé\n[assistant]\nok!");
        assert_eq!(r.generation_spans, vec![23..26]);
        assert_eq!(&r.text[23..26], "ok!");
    }

    #[test]
    fn trim_and_lstrip_blocks_apply() {
        let t = compile("{% for m in messages %}\n    {% if true %}\n{{ m.content }}\n    {% endif %}\n{% endfor %}");
        let r = t
            .render_json(&json!([{"content": "x"}, {"content": "y"}]), false)
            .unwrap();
        assert_eq!(r.text, "x\ny\n");
    }

    #[test]
    fn tojson_matches_python_json_dumps() {
        let t = compile("{{ messages[0].m | tojson }}|{{ messages[0].m.a | tojson(indent=2) }}");
        let r = t
            .render_json(
                &json!([{"m": {"z": "<&'>", "a": [1, 0.5], "é": null}}]),
                false,
            )
            .unwrap();
        assert_eq!(
            r.text,
            "{\"z\": \"<&'>\", \"a\": [1, 0.5], \"é\": null}|[\n  1,\n  0.5\n]"
        );
    }

    #[test]
    fn python_printing_and_helpers() {
        let t = compile(
            "{{ bos_token }}{{ messages[0].b }} {{ messages[0].d.n }} {{ messages[0].f }} \
             {{ messages[0].d }} {{ tools }}|{{ '  x '.strip() }}|{{ strftime_now('%d %b %Y') }}\
             |{{ add_generation_prompt }}",
        );
        let r = t
            .render_json(
                &json!([{"b": true, "f": 1e-7, "d": {"k": [1, "v"], "n": null}}]),
                true,
            )
            .unwrap();
        assert_eq!(
            r.text,
            "<s>True None 1e-07 {'k': [1, 'v'], 'n': None} None|x|01 Jan 2026|True"
        );
    }

    #[test]
    fn null_message_keys_are_dropped_like_hf() {
        // transformers 5 removes top-level None values: `content` is then undefined.
        let t =
            compile("{% for m in messages %}{{ m.content is defined }}/{{ m.x.y }};{% endfor %}");
        let r = t
            .render_json(
                &json!([{"content": null, "x": {"y": null}}, {"content": "", "x": {"y": 1}}]),
                false,
            )
            .unwrap();
        assert_eq!(r.text, "False/None;True/1;");
    }

    #[test]
    fn raise_exception_fails_with_message() {
        let t = compile(
            "{% if messages|length == 0 %}{{ raise_exception('need messages') }}{% endif %}",
        );
        let err = t.render_json(&json!([]), false).unwrap_err();
        assert!(err.contains("need messages"), "{err}");
    }

    #[test]
    fn loop_controls_work() {
        let t = compile("{% for m in messages %}{% if m == 2 %}{% continue %}{% endif %}{% if m == 4 %}{% break %}{% endif %}{{ m }}{% endfor %}");
        let r = t.render_json(&json!([1, 2, 3, 4, 5]), false).unwrap();
        assert_eq!(r.text, "13");
    }
}
