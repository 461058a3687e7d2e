//! The gym's character-level tokenizer and chat template, written as an ordinary Hugging Face
//! tokenizer directory (`tokenizer.json`, `tokenizer_config.json`, `chat_template.jinja`).
//!
//! Why character-level: the trajectories the agent samples are written as chat JSONL and
//! re-scored by `padv score --renderer chat-template`, which re-renders and re-encodes the
//! text. With one token per character (and no normalizer, no merges) decoding then encoding
//! is the identity on ids, so scoring sees exactly the ids the agent sampled.
//!
//! Vocabulary: the special tokens of [`SPECIAL_TOKENS`] (ids 0..8), then `\n`, then the
//! printable ASCII characters except `<` and `>`. Leaving out the angle brackets means no run
//! of ordinary characters can spell a special token, so sampled text can never re-encode
//! differently. The template renders
//! `<|bos|>` + for each message `<|role|>content<|end|>` + (generation prompt) `<|assistant|>`,
//! so an action's tokens are its characters followed by `<|end|>` (the EOS token).

use std::collections::HashMap;
use std::path::Path;

use tokenizers::decoders::fuse::Fuse;
use tokenizers::models::wordlevel::WordLevel;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

use crate::error::GymError;

/// Padding (never rendered).
pub const PAD: &str = "<|pad|>";
/// Unknown character (never rendered by the gym).
pub const UNK: &str = "<|unk|>";
/// Beginning of a conversation.
pub const BOS: &str = "<|bos|>";
/// End of a turn; the EOS token that ends every action.
pub const END: &str = "<|end|>";

/// The end-of-turn token (alias of [`END`]), `eos_token` in `tokenizer_config.json`.
pub const END_OF_TURN: &str = END;

/// Special tokens in id order; the four role headers follow the control tokens.
pub const SPECIAL_TOKENS: [&str; 8] = [
    PAD,
    UNK,
    BOS,
    END,
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|tool|>",
];

/// Id of [`PAD`].
pub const PAD_ID: u32 = 0;
/// Id of [`UNK`].
pub const UNK_ID: u32 = 1;
/// Id of [`BOS`].
pub const BOS_ID: u32 = 2;
/// Id of [`END`].
pub const END_ID: u32 = 3;
/// Id of `<|system|>`.
pub const SYSTEM_ID: u32 = 4;
/// Id of `<|user|>`.
pub const USER_ID: u32 = 5;
/// Id of `<|assistant|>`.
pub const ASSISTANT_ID: u32 = 6;
/// Id of `<|tool|>`.
pub const TOOL_ID: u32 = 7;

/// The chat template (`chat_template.jinja`): verbatim content, no trimming, unknown roles
/// rejected.
pub const CHAT_TEMPLATE: &str = "{{ bos_token }}{% for message in messages %}\
{% if message['role'] not in ['system', 'user', 'assistant', 'tool'] %}\
{{ raise_exception('unknown role ' ~ message['role']) }}{% endif %}\
{{ '<|' ~ message['role'] ~ '|>' }}\
{% if message['content'] is string %}{{ message['content'] }}{% endif %}\
{{ '<|end|>' }}{% endfor %}\
{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}";

/// The ordinary characters, in id order after the specials.
fn alphabet() -> impl Iterator<Item = char> {
    std::iter::once('\n').chain((' '..='~').filter(|c| *c != '<' && *c != '>'))
}

/// Number of token ids.
pub fn vocab_size() -> usize {
    SPECIAL_TOKENS.len() + alphabet().count()
}

/// A fast in-process view of the same vocabulary, for sampling loops that build ids turn by
/// turn without going through the `tokenizers` pipeline. Equality with the real tokenizer
/// plus chat template is tested.
#[derive(Debug, Clone)]
pub struct GymTokenizer {
    char_ids: HashMap<char, u32>,
    id_chars: Vec<Option<char>>,
}

impl Default for GymTokenizer {
    fn default() -> Self {
        GymTokenizer::new()
    }
}

impl GymTokenizer {
    /// The gym vocabulary.
    pub fn new() -> GymTokenizer {
        let mut char_ids = HashMap::new();
        let mut id_chars = vec![None; SPECIAL_TOKENS.len()];
        for (i, c) in alphabet().enumerate() {
            let id = (SPECIAL_TOKENS.len() + i) as u32;
            char_ids.insert(c, id);
            id_chars.push(Some(c));
        }
        GymTokenizer { char_ids, id_chars }
    }

    /// Number of token ids.
    pub fn vocab_size(&self) -> usize {
        self.id_chars.len()
    }

    /// Ids of plain text (no special tokens); fails on a character outside the alphabet.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, GymError> {
        text.chars()
            .enumerate()
            .map(|(i, c)| {
                self.char_ids.get(&c).copied().ok_or_else(|| {
                    GymError::Token(format!(
                        "character {c:?} at position {i} of {text:?} is not in the gym alphabet"
                    ))
                })
            })
            .collect()
    }

    /// Text of ordinary-character ids; fails on a special or out-of-range id.
    pub fn decode(&self, ids: &[u32]) -> Result<String, GymError> {
        ids.iter()
            .map(|&id| {
                self.id_chars
                    .get(id as usize)
                    .copied()
                    .flatten()
                    .ok_or_else(|| GymError::Token(format!("id {id} is not an ordinary character")))
            })
            .collect()
    }

    /// Whether `id` may appear inside generated action text: ordinary characters only.
    /// A sampler masks every other id except [`END_ID`], which ends the turn.
    pub fn is_text(&self, id: u32) -> bool {
        matches!(self.id_chars.get(id as usize), Some(Some(_)))
    }

    /// The header id of a chat role (`system`, `user`, `assistant`, `tool`).
    pub fn role_id(role: &str) -> Result<u32, GymError> {
        match role {
            "system" => Ok(SYSTEM_ID),
            "user" => Ok(USER_ID),
            "assistant" => Ok(ASSISTANT_ID),
            "tool" => Ok(TOOL_ID),
            other => Err(GymError::Token(format!("unknown chat role {other:?}"))),
        }
    }

    /// The ids the chat template renders for one message: header, content, `<|end|>`.
    pub fn turn(&self, role: &str, content: &str) -> Result<Vec<u32>, GymError> {
        let mut ids = vec![GymTokenizer::role_id(role)?];
        ids.extend(self.encode(content)?);
        ids.push(END_ID);
        Ok(ids)
    }

    /// The ids of a conversation as the template renders it, BOS first, optionally followed
    /// by the generation prompt `<|assistant|>`.
    pub fn conversation<'a>(
        &self,
        messages: impl IntoIterator<Item = (&'a str, &'a str)>,
        add_generation_prompt: bool,
    ) -> Result<Vec<u32>, GymError> {
        let mut ids = vec![BOS_ID];
        for (role, content) in messages {
            ids.extend(self.turn(role, content)?);
        }
        if add_generation_prompt {
            ids.push(ASSISTANT_ID);
        }
        Ok(ids)
    }
}

/// The pre-tokenizer's pattern: any one character, newlines included, written without
/// inline flags so that every regex engine `tokenizers` builds on accepts it.
pub const SINGLE_CHARACTER: &str = r"[\s\S]";

/// Builds the `tokenizers` tokenizer: WordLevel over single characters, a split
/// pre-tokenizer isolating every character, the special tokens as added tokens, a `Fuse`
/// decoder, no normalizer and no post-processor (the template writes BOS itself).
pub fn build_tokenizer() -> Result<Tokenizer, GymError> {
    let err = |e: tokenizers::Error| GymError::Token(e.to_string());
    let mut vocab: HashMap<String, u32> = HashMap::new();
    for (i, s) in SPECIAL_TOKENS.iter().enumerate() {
        vocab.insert((*s).to_string(), i as u32);
    }
    for (i, c) in alphabet().enumerate() {
        vocab.insert(c.to_string(), (SPECIAL_TOKENS.len() + i) as u32);
    }
    let model = WordLevel::builder()
        .vocab(vocab.into_iter().collect())
        .unk_token(UNK.to_string())
        .build()
        .map_err(err)?;
    let mut tok = Tokenizer::new(model);
    let split = Split::new(
        // `[\s\S]`, not `(?s).`: the Oniguruma engine of Python's `tokenizers` rejects
        // inline flag groups ("undefined group option"), and the pair must load there too.
        SplitPattern::Regex(SINGLE_CHARACTER.to_string()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .map_err(err)?;
    tok.with_pre_tokenizer(Some(split));
    tok.with_decoder(Some(Fuse::new()));
    let specials = SPECIAL_TOKENS.iter().map(|s| AddedToken::from(*s, true));
    tok.add_special_tokens(specials).map_err(err)?;
    Ok(tok)
}

/// Writes `tokenizer.json`, `tokenizer_config.json` and `chat_template.jinja` into `dir`
/// (created if missing), each atomically.
pub fn write_tokenizer_files(dir: &Path) -> Result<(), GymError> {
    std::fs::create_dir_all(dir).map_err(|source| GymError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let tok = build_tokenizer()?;
    let json = tok
        .to_string(true)
        .map_err(|e| GymError::Token(e.to_string()))?;
    write(&dir.join("tokenizer.json"), json.as_bytes())?;

    let added: serde_json::Map<String, serde_json::Value> = SPECIAL_TOKENS
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (
                i.to_string(),
                serde_json::json!({"content": s, "lstrip": false, "normalized": false,
                    "rstrip": false, "single_word": false, "special": true}),
            )
        })
        .collect();
    let config = serde_json::json!({
        "added_tokens_decoder": added,
        "bos_token": BOS,
        "eos_token": END,
        "pad_token": PAD,
        "unk_token": UNK,
        "add_bos_token": false,
        "add_eos_token": false,
        "clean_up_tokenization_spaces": false,
        "model_max_length": 4096,
        "tokenizer_class": "PreTrainedTokenizerFast",
    });
    let text = serde_json::to_string_pretty(&config).map_err(|source| GymError::Json {
        path: dir.join("tokenizer_config.json"),
        source,
    })?;
    write(&dir.join("tokenizer_config.json"), text.as_bytes())?;
    write(&dir.join("chat_template.jinja"), CHAT_TEMPLATE.as_bytes())
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), GymError> {
    padv_core::atomic::write_bytes_atomic(path, bytes).map_err(|source| GymError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_is_consistent() {
        let g = GymTokenizer::new();
        assert_eq!(g.vocab_size(), vocab_size());
        // 8 specials + newline + 95 printable ASCII − 2 angle brackets.
        assert_eq!(vocab_size(), 8 + 1 + 93);
        let tok = build_tokenizer().unwrap();
        assert_eq!(tok.get_vocab_size(true), vocab_size());
        for (i, s) in SPECIAL_TOKENS.iter().enumerate() {
            assert_eq!(tok.token_to_id(s), Some(i as u32));
        }
        let text = "go down | at 1,0\n~!";
        let ids = g.encode(text).unwrap();
        assert_eq!(ids.len(), text.len());
        assert_eq!(g.decode(&ids).unwrap(), text);
        let enc = tok.encode(text, false).unwrap();
        assert_eq!(enc.get_ids(), ids.as_slice());
        assert_eq!(tok.decode(&ids, false).unwrap(), text);
        assert!(g.encode("a<b").is_err());
        assert!(g.decode(&[END_ID]).is_err());
        assert!(!g.is_text(END_ID) && g.is_text(ids[0]));
    }

    /// Every `Regex` pattern in a tokenizer.json.
    fn regexes(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    match (k.as_str(), x) {
                        ("Regex", serde_json::Value::String(r)) => out.push(r.clone()),
                        _ => regexes(x, out),
                    }
                }
            }
            serde_json::Value::Array(xs) => xs.iter().for_each(|x| regexes(x, out)),
            _ => {}
        }
    }

    /// Inline flag groups (`(?s)`, `(?i)`, `(?-u)`, …) that Oniguruma, the regex engine of
    /// Python's `tokenizers`, rejects; `(?:`, `(?=`, `(?!`, `(?<` are fine.
    fn inline_flags(pattern: &str) -> bool {
        pattern
            .match_indices("(?")
            .any(|(i, _)| matches!(pattern[i + 2..].chars().next(), Some(c) if c.is_ascii_alphabetic() || c == '-'))
    }

    #[test]
    fn tokenizer_patterns_load_in_every_engine() {
        assert!(inline_flags("(?s)."));
        assert!(inline_flags("a(?i:b)"));
        assert!(!inline_flags("(?:ab)|(?=c)"));
        assert!(!inline_flags(SINGLE_CHARACTER));
        let dir = tempfile::tempdir().unwrap();
        write_tokenizer_files(dir.path()).unwrap();
        let mut files = vec![dir.path().join("tokenizer.json")];
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for pair in ["pair", "pair-verbose"] {
            let Ok(entries) = std::fs::read_dir(root.join(pair)) else {
                continue;
            };
            for e in entries.flatten() {
                let f = e.path().join("tokenizer.json");
                if f.exists() {
                    files.push(f);
                }
            }
        }
        assert!(files.len() > 1, "no committed tokenizer.json found");
        for f in files {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
            let mut pats = Vec::new();
            regexes(&v, &mut pats);
            assert!(!pats.is_empty(), "{}: no pattern", f.display());
            for p in pats {
                assert!(
                    !inline_flags(&p),
                    "{}: pattern {p:?} has an inline flag group",
                    f.display()
                );
            }
        }
    }
}
