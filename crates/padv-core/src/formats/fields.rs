//! Typed access to the fields of a parsed JSON record, with errors that name the file, the
//! record and the full field path. The readers keep records as `serde_json::Value` (instead of
//! big typed structs) so they read only what they use, and these helpers keep the validation
//! of what they use precise.

use std::path::Path;

use serde_json::{Map, Value};

use super::FormatError;

/// Shorthand for a JSON object.
pub(crate) type Obj = Map<String, Value>;

/// Where a record sits: its file and a human-readable record label.
pub(crate) struct Ctx<'p> {
    /// File being read.
    pub path: &'p Path,
    /// Record label, e.g. `simulations[3] (id "abc")`.
    pub record: String,
}

impl Ctx<'_> {
    /// A [`FormatError::Field`] for this record.
    pub fn error(&self, field: impl Into<String>, message: impl Into<String>) -> FormatError {
        FormatError::Field {
            path: self.path.to_path_buf(),
            record: self.record.clone(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// The error for a value of the wrong JSON type.
    pub fn wrong_type(
        &self,
        field: impl Into<String>,
        expected: &str,
        found: &Value,
    ) -> FormatError {
        self.error(field, format!("expected {expected}, found {}", kind(found)))
    }

    /// `value` as an object, or a wrong-type error naming `field`.
    pub fn object<'v>(&self, value: &'v Value, field: &str) -> Result<&'v Obj, FormatError> {
        value
            .as_object()
            .ok_or_else(|| self.wrong_type(field, "an object", value))
    }

    /// A required string field.
    pub fn req_str<'v>(
        &self,
        obj: &'v Obj,
        prefix: &str,
        key: &str,
    ) -> Result<&'v str, FormatError> {
        self.opt_str(obj, prefix, key)?
            .ok_or_else(|| self.error(join(prefix, key), "required string is missing"))
    }

    /// An optional string field: absent or `null` gives `None`.
    pub fn opt_str<'v>(
        &self,
        obj: &'v Obj,
        prefix: &str,
        key: &str,
    ) -> Result<Option<&'v str>, FormatError> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong_type(join(prefix, key), "a string", other)),
        }
    }

    /// An optional identifier: a string, or a JSON number written as its decimal string
    /// (some logs store task ids as numbers). Absent or `null` gives `None`.
    pub fn opt_id(
        &self,
        obj: &Obj,
        prefix: &str,
        key: &str,
    ) -> Result<Option<String>, FormatError> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => id_text(v)
                .map(Some)
                .ok_or_else(|| self.wrong_type(join(prefix, key), "a string or a number", v)),
        }
    }

    /// An optional number field: absent or `null` gives `None`.
    pub fn opt_f64(&self, obj: &Obj, prefix: &str, key: &str) -> Result<Option<f64>, FormatError> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.error(join(prefix, key), "number is out of range")),
            Some(other) => Err(self.wrong_type(join(prefix, key), "a number", other)),
        }
    }

    /// An optional boolean field: absent or `null` gives `None`.
    pub fn opt_bool(
        &self,
        obj: &Obj,
        prefix: &str,
        key: &str,
    ) -> Result<Option<bool>, FormatError> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.wrong_type(join(prefix, key), "a boolean", other)),
        }
    }

    /// A required array field.
    pub fn req_array<'v>(
        &self,
        obj: &'v Obj,
        prefix: &str,
        key: &str,
    ) -> Result<&'v [Value], FormatError> {
        self.opt_array(obj, prefix, key)?
            .ok_or_else(|| self.error(join(prefix, key), "required array is missing"))
    }

    /// An optional array field: absent or `null` gives `None`.
    pub fn opt_array<'v>(
        &self,
        obj: &'v Obj,
        prefix: &str,
        key: &str,
    ) -> Result<Option<&'v [Value]>, FormatError> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(other) => Err(self.wrong_type(join(prefix, key), "an array", other)),
        }
    }

    /// An optional message index (`mistake_step`): a non-negative JSON integer or a string
    /// holding one (Who&When stores it as a string). It must index into a conversation of
    /// `len` messages. Absent or `null` gives `None`.
    pub fn opt_step(
        &self,
        obj: &Obj,
        prefix: &str,
        key: &str,
        len: usize,
    ) -> Result<Option<usize>, FormatError> {
        let field = || join(prefix, key);
        let step = match obj.get(key) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Number(n)) => n.as_u64().ok_or_else(|| {
                self.error(
                    field(),
                    format!("expected a non-negative integer, found {n}"),
                )
            })?,
            Some(Value::String(s)) => s.trim().parse::<u64>().map_err(|_| {
                self.error(
                    field(),
                    format!(
                        "expected a non-negative integer (or a string holding one), found {s:?}"
                    ),
                )
            })?,
            Some(other) => {
                return Err(self.wrong_type(field(), "an integer or a string holding one", other))
            }
        };
        match usize::try_from(step) {
            Ok(i) if i < len => Ok(Some(i)),
            _ if len == 0 => Err(self.error(
                field(),
                format!("step {step} is out of range: the conversation is empty"),
            )),
            _ => Err(self.error(
                field(),
                format!(
                    "step {step} is out of range: the conversation has {len} messages \
                     (indices 0 to {})",
                    len - 1
                ),
            )),
        }
    }
}

/// `prefix.key`, or just `key` at the top of a record.
pub(crate) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// A string or number as identifier text; `None` for any other JSON type.
pub(crate) fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The JSON type of a value, as used in error messages.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A record label with its id when one is readable, e.g. `line 7 (id "x")`.
pub(crate) fn record_label(base: String, id: Option<&Value>) -> String {
    match id.and_then(id_text) {
        Some(id) => format!("{base} (id {id:?})"),
        None => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Ctx<'static> {
        Ctx {
            path: Path::new("f.json"),
            record: "file".into(),
        }
    }

    fn obj(v: Value) -> Obj {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn step_accepts_int_and_string_and_checks_range() {
        let o = obj(json!({"a": 2, "b": "3", "c": " 4 ", "n": null}));
        assert_eq!(ctx().opt_step(&o, "", "a", 5).unwrap(), Some(2));
        assert_eq!(ctx().opt_step(&o, "", "b", 5).unwrap(), Some(3));
        assert_eq!(ctx().opt_step(&o, "", "c", 5).unwrap(), Some(4));
        assert_eq!(ctx().opt_step(&o, "", "n", 5).unwrap(), None);
        assert_eq!(ctx().opt_step(&o, "", "missing", 5).unwrap(), None);
        // 4 is the last valid index of 5 messages; with 4 messages it is out of range.
        let err = ctx().opt_step(&o, "", "c", 4).unwrap_err().to_string();
        assert!(err.contains("out of range"), "{err}");
    }

    #[test]
    fn step_rejects_non_integers() {
        let o = obj(json!({"neg": -1, "frac": 1.5, "word": "three", "arr": [1]}));
        for key in ["neg", "frac", "word", "arr"] {
            let err = ctx().opt_step(&o, "p", key, 10).unwrap_err();
            match err {
                FormatError::Field { field, .. } => assert_eq!(field, format!("p.{key}")),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn id_accepts_numbers_as_decimal_text() {
        let o = obj(json!({"s": "abc", "i": 17, "f": 2.5, "b": true}));
        assert_eq!(ctx().opt_id(&o, "", "s").unwrap().as_deref(), Some("abc"));
        assert_eq!(ctx().opt_id(&o, "", "i").unwrap().as_deref(), Some("17"));
        assert_eq!(ctx().opt_id(&o, "", "f").unwrap().as_deref(), Some("2.5"));
        assert!(ctx().opt_id(&o, "", "b").is_err());
    }

    #[test]
    fn wrong_type_message_names_both_types() {
        let o = obj(json!({"x": [1]}));
        let err = ctx()
            .req_str(&o, "messages[2]", "x")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "f.json: file: field `messages[2].x`: expected a string, found an array"
        );
        let err = ctx().req_str(&o, "", "y").unwrap_err().to_string();
        assert_eq!(err, "f.json: file: field `y`: required string is missing");
    }
}
