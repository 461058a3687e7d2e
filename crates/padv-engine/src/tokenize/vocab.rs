//! Checking that a policy and a reference tokenise text identically.
//!
//! Progress advantage compares log p_θ(token) with log p_ref(token) on ONE id sequence, so both
//! models must read the same ids as the same strings. The pairs the method targets (an
//! instruct model and its base) normally share a tokenizer; this check turns a silent mismatch
//! into an error that says what differs.

use std::fmt;
use std::path::PathBuf;

use serde_json::Value;

use super::loader::TextTokenizer;

/// How two tokenizers differ, one human-readable line per difference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct VocabMismatch {
    /// Directory of the first tokenizer (the policy).
    pub a: PathBuf,
    /// Directory of the second tokenizer (the reference).
    pub b: PathBuf,
    /// Each difference, e.g. `vocab size 512 vs 513`.
    pub differences: Vec<String>,
}

impl fmt::Display for VocabMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tokenizers {} and {} differ: {}",
            self.a.display(),
            self.b.display(),
            self.differences.join("; ")
        )
    }
}

/// Why a pair's tokenizer could not be had.
#[derive(Debug, thiserror::Error)]
pub enum PairTokenizerError {
    /// A tokenizer could not be loaded.
    #[error("loading the {which} tokenizer from {dir}: {source}")]
    Load {
        /// `policy` or `reference`.
        which: &'static str,
        /// Its folder.
        dir: std::path::PathBuf,
        /// Cause (boxed: the error is large and this path is cold).
        source: Box<super::TokenizeError>,
    },
    /// The two vocabularies differ.
    #[error(
        "policy and reference tokenizers differ: {0}. PA compares the two models token by \
         token, so both must score the same token ids"
    )]
    Differ(VocabMismatch),
}

/// The policy's tokenizer, after checking that the reference's (when it is another folder)
/// has the same vocabulary: what every scoring front end (`padv score`, the Python package)
/// encodes with.
pub fn pair_tokenizer(
    policy_dir: &std::path::Path,
    reference_dir: &std::path::Path,
) -> Result<TextTokenizer, PairTokenizerError> {
    let load = |which, dir: &std::path::Path| {
        TextTokenizer::from_dir(dir).map_err(|source| PairTokenizerError::Load {
            which,
            dir: dir.to_path_buf(),
            source: Box::new(source),
        })
    };
    let tok = load("policy", policy_dir)?;
    if reference_dir != policy_dir {
        let reference = load("reference", reference_dir)?;
        check_same_vocabulary(&tok, &reference).map_err(PairTokenizerError::Differ)?;
    }
    Ok(tok)
}

/// Checks that `a` and `b` map every text to the same ids and agree on BOS.
///
/// Compared, each reported separately: vocabulary size (added tokens included); the id of
/// every token string (count of disagreements plus one example, in id order); the added
/// tokens and their matching flags; the normalizer, pre-tokenizer and model settings (BPE
/// merges, byte fallback, …) as serialised in `tokenizer.json`; and the BOS id, which the
/// `paper` renderer prepends.
///
/// `eos_token`, `unk_token` and `pad_token` do not change ids for a given text (a chat
/// template is always taken from one side), so differences there only log a warning: base and
/// instruct checkpoints routinely disagree on EOS.
pub fn check_same_vocabulary(a: &TextTokenizer, b: &TextTokenizer) -> Result<(), VocabMismatch> {
    let mut diffs = Vec::new();
    if a.fingerprint() != b.fingerprint() {
        compare_vocab(a, b, &mut diffs);
        compare_added(a, b, &mut diffs);
        for (what, va, vb) in [
            (
                "normalizer",
                to_json(a.inner().get_normalizer()),
                to_json(b.inner().get_normalizer()),
            ),
            (
                "pre-tokenizer",
                to_json(a.inner().get_pre_tokenizer()),
                to_json(b.inner().get_pre_tokenizer()),
            ),
            ("model settings", model_settings(a), model_settings(b)),
        ] {
            if va != vb {
                diffs.push(format!("{what} differs: {} vs {}", brief(&va), brief(&vb)));
            }
        }
    }
    if a.bos_token_id() != b.bos_token_id() {
        diffs.push(format!(
            "BOS id {} vs {} (bos_token {:?} vs {:?})",
            opt(a.bos_token_id()),
            opt(b.bos_token_id()),
            a.special_tokens().bos_token,
            b.special_tokens().bos_token
        ));
    }
    let (sa, sb) = (a.special_tokens(), b.special_tokens());
    for (name, x, y) in [
        ("eos_token", &sa.eos_token, &sb.eos_token),
        ("unk_token", &sa.unk_token, &sb.unk_token),
        ("pad_token", &sa.pad_token, &sb.pad_token),
    ] {
        if x != y {
            tracing::warn!(
                "{name} differs between {} ({x:?}) and {} ({y:?}); ids are unaffected",
                a.dir().display(),
                b.dir().display()
            );
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(VocabMismatch {
            a: a.dir().to_path_buf(),
            b: b.dir().to_path_buf(),
            differences: diffs,
        })
    }
}

fn opt(id: Option<u32>) -> String {
    id.map_or("none".to_string(), |i| i.to_string())
}

fn compare_vocab(a: &TextTokenizer, b: &TextTokenizer, diffs: &mut Vec<String>) {
    if a.vocab_size() != b.vocab_size() {
        diffs.push(format!(
            "vocab size {} vs {}",
            a.vocab_size(),
            b.vocab_size()
        ));
    }
    let va = a.inner().get_vocab(true);
    let vb = b.inner().get_vocab(true);
    let mut remapped: Vec<(u32, &str, Option<u32>)> = va
        .iter()
        .filter_map(|(tok, &ia)| {
            let ib = vb.get(tok).copied();
            (ib != Some(ia)).then_some((ia, tok.as_str(), ib))
        })
        .collect();
    remapped.sort();
    if let Some(&(ia, tok, ib)) = remapped.first() {
        diffs.push(format!(
            "{} token(s) of the first map to another id or are missing in the second, \
             e.g. {tok:?}: {ia} vs {}",
            remapped.len(),
            opt(ib)
        ));
    }
    let mut extra: Vec<(u32, &str)> = vb
        .iter()
        .filter(|(tok, _)| !va.contains_key(*tok))
        .map(|(tok, &ib)| (ib, tok.as_str()))
        .collect();
    extra.sort();
    if let Some(&(ib, tok)) = extra.first() {
        diffs.push(format!(
            "{} token(s) of the second are not in the first, e.g. {tok:?} (id {ib})",
            extra.len()
        ));
    }
}

fn compare_added(a: &TextTokenizer, b: &TextTokenizer, diffs: &mut Vec<String>) {
    let da = a.inner().get_added_tokens_decoder();
    let db = b.inner().get_added_tokens_decoder();
    let mut ids: Vec<u32> = da.keys().chain(db.keys()).copied().collect();
    ids.sort_unstable();
    ids.dedup();
    let differing: Vec<u32> = ids
        .into_iter()
        .filter(|id| da.get(id) != db.get(id))
        .collect();
    if let Some(id) = differing.first() {
        let show = |t: Option<&tokenizers::AddedToken>| {
            t.map_or("none".to_string(), |t| {
                format!(
                    "{:?} (special={}, normalized={}, lstrip={}, rstrip={}, single_word={})",
                    t.content, t.special, t.normalized, t.lstrip, t.rstrip, t.single_word
                )
            })
        };
        diffs.push(format!(
            "{} added token(s) differ, e.g. id {id}: {} vs {}",
            differing.len(),
            show(da.get(id)),
            show(db.get(id))
        ));
    }
}

fn to_json<T: serde::Serialize>(x: T) -> Value {
    serde_json::to_value(x).unwrap_or_else(|e| Value::String(format!("<unserialisable: {e}>")))
}

/// The model section of `tokenizer.json` without the vocabulary (compared token by token).
fn model_settings(t: &TextTokenizer) -> Value {
    let mut v = to_json(t.inner().get_model());
    if let Value::Object(map) = &mut v {
        map.remove("vocab");
    }
    v
}

fn brief(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 120 {
        format!("{}…", s.chars().take(120).collect::<String>())
    } else {
        s
    }
}

/// A served model's vocabulary size, from its checkpoint or tokenizer folder `dir`:
/// `vocab_size` of `dir/config.json` (top level or `text_config`), else the tokenizer's own
/// count (which can be smaller than a padded embedding; it only bounds the ids sent to a
/// remote server, which checks them again).
pub fn model_vocab_size(dir: &std::path::Path) -> super::Result<usize> {
    let config = dir.join("config.json");
    if let Ok(text) = std::fs::read_to_string(&config) {
        let v: Value = serde_json::from_str(&text).map_err(|e| super::TokenizeError::Parse {
            path: config.clone(),
            message: format!("not JSON: {e}"),
        })?;
        let n = v
            .get("vocab_size")
            .or_else(|| v.get("text_config").and_then(|t| t.get("vocab_size")))
            .and_then(Value::as_u64);
        if let Some(n) = n {
            return usize::try_from(n).map_err(|_| super::TokenizeError::Field {
                path: config,
                field: "vocab_size".into(),
                message: format!("{n} does not fit this machine's address size"),
            });
        }
    }
    Ok(TextTokenizer::from_dir(dir)?.vocab_size())
}
