//! Tokenising very long texts in bounded memory, with exactly the ids of one `encode` call.
//!
//! HF `tokenizers` builds an `Encoding` (ids, offsets, token strings, masks ...) of roughly
//! 200 bytes per input byte, so one 50 MB tool output costs ~10 GB before left truncation
//! throws almost all of it away. Here a long text is cut into pieces of about [`PIECE`] bytes
//! at points where the tokenizer provably cannot join tokens across the cut, the pieces are
//! encoded separately (in parallel), and only the ids that can survive truncation are kept,
//! together with the total count (which the truncation report needs).
//!
//! Why a cut at byte `p` is safe. The cut needs `text[p] == ' '`, `text[p+1]` an ASCII
//! letter, `text[p-1]` printable non-space ASCII, and no added token within
//! `max_added_len + 1` bytes of `p`. Then, for the supported pipelines only:
//! - added tokens: none overlaps the cut, and their `lstrip`/`rstrip`/`single_word` rules
//!   look at most up to the nearest non-space character, which is on their own side;
//! - normalizer: none, or NFC (composition never joins across an ASCII space);
//! - pre-tokenizer: ByteLevel with its GPT-2 regex, or Split(Qwen2 / Llama 3 regex, Isolated)
//!   then ByteLevel without regex. In all three regexes no alternative matching a non-space
//!   character continues into a following space, so in the full text a match ends at `p`
//!   and the next starts at `p` (the patterns have no look-behind). The only look-ahead,
//!   `\s+(?!\S)`, matches whitespace, and the prefix ends with a non-space, so the prefix
//!   alone pre-tokenises identically. ByteLevel's `add_prefix_space` never fires on a piece
//!   that starts with a space;
//! - model: BPE without dropout merges within a pre-token only.
//!
//! Anything else (another normalizer, Metaspace/SentencePiece models that merge across
//! spaces, an unknown split regex, tokenizer-level truncation or padding) falls back to one
//! plain `encode`: correct, not bounded.

use rayon::prelude::*;
use serde_json::Value;

use super::loader::TextTokenizer;

/// Target piece length in bytes (the `Encoding` of one piece is ~200× this).
const PIECE: usize = 256 << 10;

/// The GPT-2 / Qwen2 / Llama 3 pre-tokenizer split patterns the cut rule was checked against.
const KNOWN_SPLIT_PATTERNS: [&str; 2] = [
    // Qwen2 / Qwen2.5 / Qwen3.
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    // Llama 3.x.
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
];

/// The last ids of a text's encoding and how many ids the whole encoding has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailIds {
    /// The last `min(total, keep)` ids, in order.
    pub ids: Vec<u32>,
    /// Length of the full encoding.
    pub total: usize,
}

/// Added-token contents, when the tokenizer's pipeline admits safe cuts (see module docs).
pub(crate) fn cut_guard(tok: &tokenizers::Tokenizer) -> Option<Vec<String>> {
    if tok.get_truncation().is_some() || tok.get_padding().is_some() {
        return None;
    }
    let normalizer_ok = match tok.get_normalizer() {
        None => true,
        Some(n) => serde_json::to_value(n).ok()?.get("type")? == "NFC",
    };
    let pre = serde_json::to_value(tok.get_pre_tokenizer()?).ok()?;
    let byte_level = |v: &Value, regex: bool| {
        v.get("type").and_then(Value::as_str) == Some("ByteLevel")
            && v.get("use_regex").and_then(Value::as_bool) == Some(regex)
    };
    let pre_ok = byte_level(&pre, true)
        || (pre.get("type").and_then(Value::as_str) == Some("Sequence")
            && match pre.get("pretokenizers").and_then(Value::as_array) {
                Some(parts) if parts.len() == 2 => {
                    let split = &parts[0];
                    split.get("type").and_then(Value::as_str) == Some("Split")
                        && split.get("behavior").and_then(Value::as_str) == Some("Isolated")
                        && split.get("invert").and_then(Value::as_bool) == Some(false)
                        && split
                            .pointer("/pattern/Regex")
                            .and_then(Value::as_str)
                            .is_some_and(|p| KNOWN_SPLIT_PATTERNS.contains(&p))
                        && byte_level(&parts[1], false)
                }
                _ => false,
            });
    let model = serde_json::to_value(tok.get_model()).ok()?;
    let model_ok = model.get("type").and_then(Value::as_str) == Some("BPE")
        && model.get("dropout").is_none_or(Value::is_null);
    (normalizer_ok && pre_ok && model_ok).then(|| {
        tok.get_added_tokens_decoder()
            .into_values()
            .map(|t| t.content)
            .filter(|c| !c.is_empty())
            .collect()
    })
}

/// Whether the tokenizer cannot join tokens across byte `p` of `text` (see module docs).
fn safe_cut(text: &str, p: usize, added: &[String], max_added: usize) -> bool {
    let b = text.as_bytes();
    if p == 0 || p + 1 >= b.len() {
        return false;
    }
    if !(b[p] == b' ' && b[p + 1].is_ascii_alphabetic() && b[p - 1].is_ascii_graphic()) {
        return false;
    }
    let mut lo = p.saturating_sub(max_added + 1);
    while !text.is_char_boundary(lo) {
        lo -= 1;
    }
    let mut hi = (p + max_added + 2).min(b.len());
    while !text.is_char_boundary(hi) {
        hi += 1;
    }
    let window = &text[lo..hi];
    !added.iter().any(|a| window.contains(a.as_str()))
}

/// Byte ranges of `text` at safe cuts, each about `piece` bytes (one range when none).
fn pieces(text: &str, piece: usize, added: &[String]) -> Vec<(usize, usize)> {
    let max_added = added.iter().map(String::len).max().unwrap_or(0);
    let mut out = Vec::new();
    let mut start = 0;
    while text.len() - start > piece {
        let cut = (start + piece..text.len()).find(|&p| safe_cut(text, p, added, max_added));
        match cut {
            Some(p) => {
                out.push((start, p));
                start = p;
            }
            None => break,
        }
    }
    out.push((start, text.len()));
    out
}

impl TextTokenizer {
    /// The last `keep` ids of `encode(text)` and the full count, without ever holding the
    /// encoding of more than a few pieces of the text (see the module docs). Equal to
    /// `encode(text)` followed by keeping the tail, for every tokenizer: pipelines where a
    /// safe cut cannot be proven are encoded in one call.
    pub fn encode_tail(&self, text: &str, keep: usize) -> std::result::Result<TailIds, String> {
        self.encode_tail_in(text, keep, PIECE)
    }

    pub(crate) fn encode_tail_in(
        &self,
        text: &str,
        keep: usize,
        piece: usize,
    ) -> std::result::Result<TailIds, String> {
        let guard = if text.len() > 2 * piece {
            cut_guard(&self.tokenizer)
        } else {
            None
        };
        let Some(added) = guard else {
            let ids = self.encode(text)?;
            let total = ids.len();
            return Ok(TailIds {
                ids: ids[total.saturating_sub(keep)..].to_vec(),
                total,
            });
        };
        let ranges = pieces(text, piece, &added);
        let batch = rayon::current_num_threads().max(1);
        let mut tail: Vec<u32> = Vec::new();
        let mut total = 0usize;
        for group in ranges.chunks(batch) {
            let encoded: Vec<Vec<u32>> = group
                .par_iter()
                .map(|&(a, b)| self.encode(&text[a..b]))
                .collect::<std::result::Result<_, _>>()?;
            for ids in encoded {
                total += ids.len();
                tail.extend_from_slice(&ids);
            }
            if tail.len() > keep.saturating_mul(2).max(1 << 16) {
                tail.drain(..tail.len() - keep.min(tail.len()));
            }
        }
        tail.drain(..tail.len().saturating_sub(keep));
        Ok(TailIds { ids: tail, total })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn fixture_dir(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    /// The fixture tokenizer with its pre-tokenizer replaced by `pre` (in a temp dir).
    fn variant(pre: Value, normalizer: Value) -> (tempfile::TempDir, TextTokenizer) {
        let src = fixture_dir("tokenizer");
        let tmp = tempfile::tempdir().unwrap();
        let mut j: Value =
            serde_json::from_slice(&std::fs::read(src.join("tokenizer.json")).unwrap()).unwrap();
        j["pre_tokenizer"] = pre;
        j["normalizer"] = normalizer;
        std::fs::write(tmp.path().join("tokenizer.json"), j.to_string()).unwrap();
        std::fs::copy(
            src.join("tokenizer_config.json"),
            tmp.path().join("tokenizer_config.json"),
        )
        .unwrap();
        let tok = TextTokenizer::from_dir(tmp.path()).unwrap();
        (tmp, tok)
    }

    fn qwen_split() -> Value {
        serde_json::json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": KNOWN_SPLIT_PATTERNS[0]},
             "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false,
             "use_regex": false}]})
    }

    /// Text that exercises every regex branch near cuts: contractions, digits, punctuation,
    /// multi-byte letters and symbols, newlines, runs of spaces, added tokens (special and
    /// not), JSON.
    fn long_text() -> String {
        let unit = "It's 12345 apples, don't they? naïve café — 東京 is big.\n\n  Indent  x \
                    <tool_call>{\"name\": \"f\", \"arguments\": {\"a\": 1e-07}}</tool_call> \
                    <|im_end|> end\tTab a'll b'VE 😀 emoji word word. ";
        let mut s = String::new();
        for i in 0..60 {
            s.push_str(unit);
            s.push_str(&format!("item{i} {} ", "z".repeat(i % 7)));
        }
        s
    }

    fn check(tok: &TextTokenizer, text: &str) {
        let full = tok.encode(text).unwrap();
        for keep in [0, 1, 2, 7, 100, full.len() - 1, full.len(), full.len() + 5] {
            for piece in [16, 64, 1000] {
                let got = tok.encode_tail_in(text, keep, piece).unwrap();
                assert_eq!(got.total, full.len(), "keep {keep} piece {piece}");
                assert_eq!(
                    got.ids,
                    full[full.len().saturating_sub(keep)..],
                    "keep {keep} piece {piece}"
                );
            }
        }
    }

    #[test]
    fn pieces_give_exactly_the_full_encoding() {
        let text = long_text();
        for name in ["tokenizer", "tokenizer_bos"] {
            let tok = TextTokenizer::from_dir(&fixture_dir(name)).unwrap();
            let guard = cut_guard(&tok.tokenizer).expect("fixture pipeline admits cuts");
            assert!(guard.iter().any(|a| a == "<tool_call>"));
            assert!(pieces(&text, 64, &guard).len() > 50, "too few cuts to test");
            check(&tok, &text);
        }
        // Qwen2-style Split + ByteLevel pipeline, and with an NFC normalizer.
        let (_t, tok) = variant(qwen_split(), Value::Null);
        assert!(cut_guard(&tok.tokenizer).is_some());
        check(&tok, &text);
        let (_t, tok) = variant(qwen_split(), serde_json::json!({"type": "NFC"}));
        assert!(cut_guard(&tok.tokenizer).is_some());
        check(&tok, &text);
    }

    #[test]
    fn unproven_pipelines_fall_back_to_one_call() {
        let mut split = qwen_split();
        split["pretokenizers"][0]["pattern"]["Regex"] = Value::from(r"\w+|\s+");
        let (_t, tok) = variant(split, Value::Null);
        assert!(cut_guard(&tok.tokenizer).is_none());
        check(&tok, &long_text());
        let (_t, tok) = variant(
            serde_json::json!({"type": "ByteLevel", "add_prefix_space": false,
                               "trim_offsets": true, "use_regex": true}),
            serde_json::json!({"type": "Lowercase"}),
        );
        assert!(cut_guard(&tok.tokenizer).is_none());
        check(&tok, &long_text());
    }

    #[test]
    fn cut_rule() {
        let added = vec!["<tool_call>".to_string()];
        let m = 11;
        let t = "ab. cd  ef\ngh é ij";
        // "." + " c": safe.
        assert!(safe_cut(t, 3, &added, m));
        // Double space, newline, non-ASCII before the space: not taken.
        assert!(!safe_cut(t, 6, &added, m));
        assert!(!safe_cut(t, 7, &added, m));
        assert!(!safe_cut(t, 13, &added, m));
        assert!(!safe_cut(t, 16, &added, m));
        // An added token nearby forbids the cut.
        assert!(!safe_cut("x<tool_call> y", 12, &added, m));
        assert!(safe_cut("x<tool_call>aaaaaaaaaaaaa y", 25, &added, m));
    }

    #[test]
    fn pieces_cover_the_text() {
        let text = "word ".repeat(1000);
        let r = pieces(&text, 64, &[]);
        assert!(r.len() > 10);
        assert_eq!(r[0].0, 0);
        assert_eq!(r.last().map(|x| x.1), Some(text.len()));
        assert!(r.windows(2).all(|w| w[0].1 == w[1].0));
        // No safe cut: one piece.
        assert_eq!(pieces(&"x".repeat(500), 64, &[]), vec![(0, 500)]);
    }
}
