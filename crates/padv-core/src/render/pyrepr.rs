//! Python's `repr()` of JSON values and Python's `str.strip()`.
//!
//! The reference implementation renders a tool call as an f-string over the Python dict that
//! `json.loads` produced, so the text a model scores contains Python literal syntax
//! (`{'city': 'Paris', 'ok': True}`), not JSON. Token boundaries depend on every character,
//! so these functions follow CPython's rules exactly rather than approximately.

use serde_json::Value;
use unicode_general_category::{get_general_category, GeneralCategory};

/// Python's `repr(x)` (equal to `str(x)` for these types) of the object `json.loads` would build
/// from `value`.
///
/// - objects become dicts `{'k': v, 'k2': v2}` in insertion order (serde_json `preserve_order`);
/// - arrays become lists `[a, b]`;
/// - strings use [`py_str_repr`];
/// - `true`/`false`/`null` become `True`/`False`/`None`;
/// - integers stored as `i64`/`u64` print as integers, every other number as a Python float
///   ([`py_float_repr`]).
///
/// Approximation: `json.loads` keeps integers of any size, while serde_json (without
/// `arbitrary_precision`) turns integers beyond the `u64`/`i64` range into `f64`, so such an
/// integer prints here as a float (`1e+20` where Python prints `100000000000000000000`).
pub fn py_repr(value: &Value) -> String {
    let mut out = String::new();
    write_repr(value, &mut out);
    out
}

/// A JSON number as Python prints what `json.loads` made of it: ints as ints, other numbers
/// as `repr(float)`. Python's `repr` and `json.dumps` agree here, because a JSON number is
/// always finite (serde_json cannot hold NaN or infinity).
pub fn py_number_repr(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        // serde_json (without arbitrary_precision) always has an f64 here.
        py_float_repr(n.as_f64().unwrap_or(f64::NAN))
    }
}

fn write_repr(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => out.push_str(&py_number_repr(n)),
        Value::String(s) => out.push_str(&py_str_repr(s)),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&py_str_repr(k));
                out.push_str(": ");
                write_repr(v, out);
            }
            out.push('}');
        }
    }
}

/// Python's `repr(s)` for a `str`.
///
/// CPython picks single quotes unless the string contains `'` and no `"`; escapes the backslash
/// and the chosen quote; writes `\t`, `\n`, `\r`; writes other ASCII controls and DEL as `\xNN`;
/// keeps printable non-ASCII characters verbatim and escapes the rest as `\xNN`, `\uNNNN` or
/// `\UNNNNNNNN` (lowercase hex). "Printable" is decided by [`py_isprintable`].
pub fn py_str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if (c as u32) < 0x7f => out.push(c),
            c if py_isprintable(c) => out.push(c),
            c => {
                let cp = c as u32;
                if cp <= 0xff {
                    out.push_str(&format!("\\x{cp:02x}"));
                } else if cp <= 0xffff {
                    out.push_str(&format!("\\u{cp:04x}"));
                } else {
                    out.push_str(&format!("\\U{cp:08x}"));
                }
            }
        }
    }
    out.push(quote);
    out
}

/// Python's `str.isprintable()` for one character: false for the general categories Cc, Cf,
/// Cs, Co, Cn, Zl, Zp and Zs (except the ASCII space).
///
/// The category table is Unicode 16 (crate `unicode-general-category`); CPython 3.11 uses
/// Unicode 14, so characters assigned between those versions count as printable here but would
/// be escaped by an old Python. That only affects very recent code points.
pub fn py_isprintable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    !matches!(
        get_general_category(c),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::Surrogate
            | GeneralCategory::PrivateUse
            | GeneralCategory::Unassigned
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::SpaceSeparator
    )
}

/// Python's `repr(float)`: the shortest digits that round-trip, in fixed notation when the
/// decimal exponent `e` (value = d.ddd × 10^e) satisfies -4 ≤ e < 16, otherwise in scientific
/// notation with a signed, at least two-digit exponent (`1e-05`, `1.5e+16`). Integral values in
/// fixed notation keep a `.0`. `inf`, `-inf` and `nan` print as Python does, although JSON
/// cannot produce them.
pub fn py_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_string();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    let sign = if x.is_sign_negative() { "-" } else { "" };
    // Rust's `{:e}` prints the shortest round-trip digits, like Python's repr, as `d.ddde<exp>`.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (sci.as_str(), 0),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let mut out = String::from(sign);
    if (-4..16).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.push_str(&"0".repeat(int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.push_str(&"0".repeat((-exp - 1) as usize));
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.unsigned_abs()));
    }
    out
}

/// Python's `str.strip()` with no argument: removes leading and trailing characters that Python
/// considers whitespace. That is Rust's Unicode `White_Space` set plus the ASCII separators
/// U+001C..U+001F, which Python treats as whitespace and Rust's `trim` does not.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Every expected string below was printed by CPython 3.11 (`python3 -c "print(repr(...))"`).

    #[test]
    fn floats_match_python_repr() {
        let cases = [
            (0.1, "0.1"),
            (1e-7, "1e-07"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789.0, "123456789.0"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (1.0, "1.0"),
            (1e-4, "0.0001"),
            (1e-5, "1e-05"),
            (1e15, "1000000000000000.0"),
            (9999999999999998.0, "9999999999999998.0"),
            (0.000123, "0.000123"),
            (1.5e-7, "1.5e-07"),
            (1e100, "1e+100"),
            (2.5e-300, "2.5e-300"),
            (-12.75, "-12.75"),
            (0.30000000000000004, "0.30000000000000004"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
        ];
        for (x, want) in cases {
            assert_eq!(py_float_repr(x), want, "repr({x:?})");
        }
    }

    #[test]
    fn string_quoting_follows_python() {
        // repr("it's") -> "it's" in double quotes; repr('say "hi"') -> single quotes.
        assert_eq!(py_str_repr("it's"), "\"it's\"");
        assert_eq!(py_str_repr("say \"hi\""), "'say \"hi\"'");
        // Both quotes: single quotes, the single one escaped.
        assert_eq!(py_str_repr("it's \"x\""), "'it\\'s \"x\"'");
        assert_eq!(py_str_repr("a\\b"), "'a\\\\b'");
        assert_eq!(py_str_repr("l1\nl2\tt\rr"), "'l1\\nl2\\tt\\rr'");
        assert_eq!(py_str_repr("\u{0}\u{1b}\u{7f}"), "'\\x00\\x1b\\x7f'");
        assert_eq!(py_str_repr(""), "''");
    }

    #[test]
    fn string_unicode_printability_follows_python() {
        // Printable: accented letters, CJK, emoji stay verbatim.
        assert_eq!(py_str_repr("café 東京 😀"), "'café 東京 😀'");
        // U+0085 (Cc) and U+00A0 (Zs) -> \x85, \xa0; U+200B (Cf) -> \u200b; U+2028 (Zl) ->
        // \u2028; U+E000 (Co) -> \ue000; U+0378 (Cn) -> \u0378; U+F0000 (Co) -> \U000f0000.
        assert_eq!(
            py_str_repr("\u{85}\u{a0}\u{200b}\u{2028}\u{e000}\u{378}\u{f0000}"),
            "'\\x85\\xa0\\u200b\\u2028\\ue000\\u0378\\U000f0000'"
        );
        // U+3000 ideographic space is Zs -> escaped.
        assert_eq!(py_str_repr("a\u{3000}b"), "'a\\u3000b'");
    }

    #[test]
    fn nested_values_match_python_str_of_json_loads() {
        // python3 -c 'import json; print(json.loads(r"""{"user_id": "sara_1", "n": 3,
        //   "f": 2.0, "ok": true, "no": false, "x": null, "l": [1, "a", {"k": []}], "e": {}}"""))'
        let v = json!({"user_id": "sara_1", "n": 3, "f": 2.0, "ok": true, "no": false,
                       "x": null, "l": [1, "a", {"k": []}], "e": {}});
        assert_eq!(
            py_repr(&v),
            "{'user_id': 'sara_1', 'n': 3, 'f': 2.0, 'ok': True, 'no': False, 'x': None, \
             'l': [1, 'a', {'k': []}], 'e': {}}"
        );
        // Insertion order is kept, not sorted: {"b": 1, "a": 2} -> {'b': 1, 'a': 2}.
        let v: Value = serde_json::from_str(r#"{"b": 1, "a": 2}"#).unwrap();
        assert_eq!(py_repr(&v), "{'b': 1, 'a': 2}");
        // Keys use repr quoting too: {"it's": "x"} -> {"it's": 'x'}.
        assert_eq!(py_repr(&json!({"it's": "x"})), "{\"it's\": 'x'}");
    }

    #[test]
    fn big_and_negative_ints_stay_ints() {
        let v: Value =
            serde_json::from_str("[18446744073709551615, -9223372036854775808, 0, -5]").unwrap();
        assert_eq!(
            py_repr(&v),
            "[18446744073709551615, -9223372036854775808, 0, -5]"
        );
        // JSON 1e5 is a float in Python: 100000.0; 1E400 would be inf, not reachable here.
        let v: Value = serde_json::from_str("[1e5, 1.0, 1e-7]").unwrap();
        assert_eq!(py_repr(&v), "[100000.0, 1.0, 1e-07]");
    }

    #[test]
    fn strip_matches_python_whitespace_set() {
        // ' \t\n\x1c\x1f\x85\xa0\u3000x y\u2029 '.strip() == 'x y'
        assert_eq!(
            py_strip(" \t\n\u{1c}\u{1f}\u{85}\u{a0}\u{3000}x y\u{2029} "),
            "x y"
        );
        // U+200B (zero width space) is not whitespace in Python.
        assert_eq!(py_strip("\u{200b}x"), "\u{200b}x");
        assert_eq!(py_strip("   "), "");
    }
}
