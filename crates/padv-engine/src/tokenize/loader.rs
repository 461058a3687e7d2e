//! Loading a Hugging Face tokenizer directory: `tokenizer.json`, the special tokens from
//! `tokenizer_config.json` (or `special_tokens_map.json`) and every chat template.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::error::{Result, TokenizeError};

/// Name given to the unnamed template (`chat_template.jinja`, or a plain string in
/// `tokenizer_config.json`), as transformers does.
pub const DEFAULT_TEMPLATE: &str = "default";

/// The special-token strings a checkpoint declares; chat templates receive them as variables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecialTokens {
    /// `bos_token`.
    pub bos_token: Option<String>,
    /// `eos_token`.
    pub eos_token: Option<String>,
    /// `unk_token`.
    pub unk_token: Option<String>,
    /// `pad_token`.
    pub pad_token: Option<String>,
}

/// One chat template's source and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSource {
    /// `default` or the template's own name (file stem, or `name` in a list).
    pub name: String,
    /// The Jinja source.
    pub source: String,
    /// The file (and field) it came from, for error messages.
    pub origin: String,
}

/// A tokenizer loaded from a checkpoint directory, with its special tokens, chat templates and a
/// fingerprint for caches.
#[derive(Debug, Clone)]
pub struct TextTokenizer {
    pub(crate) dir: PathBuf,
    pub(crate) tokenizer: tokenizers::Tokenizer,
    pub(crate) special: SpecialTokens,
    pub(crate) bos_id: Option<u32>,
    pub(crate) add_bos_token: Option<bool>,
    pub(crate) templates: Vec<TemplateSource>,
    pub(crate) fingerprint: String,
}

impl TextTokenizer {
    /// Loads `dir/tokenizer.json` (required), `dir/tokenizer_config.json` and
    /// `dir/special_tokens_map.json` (optional), and the chat templates, searched in this order
    /// (an earlier source wins for the same name):
    /// 1. `chat_template.jinja` (name `default`);
    /// 2. `additional_chat_templates/*.jinja` (where transformers 5 saves named templates),
    ///    then `chat_templates/*.jinja`, each named by file stem, in file-name order;
    /// 3. `tokenizer_config.json` `chat_template`: a string (`default`) or a list of
    ///    `{"name", "template"}`;
    /// 4. `chat_template.json` `{"chat_template": ...}` (`default`).
    ///
    /// Special tokens may be strings or `{"content": ...}` objects; `tokenizer_config.json`
    /// wins over `special_tokens_map.json`. The BOS id is the vocabulary id of `bos_token`;
    /// a `bos_token` that is not in the vocabulary is treated as absent (with a warning).
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let tok_path = dir.join("tokenizer.json");
        let bytes = fs::read(&tok_path).map_err(|source| TokenizeError::Io {
            path: tok_path.clone(),
            source,
        })?;
        let tokenizer =
            tokenizers::Tokenizer::from_bytes(&bytes).map_err(|e| TokenizeError::Parse {
                path: tok_path.clone(),
                message: e.to_string(),
            })?;

        let config_path = dir.join("tokenizer_config.json");
        let config = read_json_if_exists(&config_path)?;
        let map_path = dir.join("special_tokens_map.json");
        let map = read_json_if_exists(&map_path)?;

        let mut special = SpecialTokens::default();
        for (field, slot) in [
            ("bos_token", &mut special.bos_token),
            ("eos_token", &mut special.eos_token),
            ("unk_token", &mut special.unk_token),
            ("pad_token", &mut special.pad_token),
        ] {
            let from_config = match &config {
                Some(c) => token_field(c, field, &config_path)?,
                None => None,
            };
            *slot = match (from_config, &map) {
                (Some(t), _) => Some(t),
                (None, Some(m)) => token_field(m, field, &map_path)?,
                (None, None) => None,
            };
        }
        let bos_id = special.bos_token.as_deref().and_then(|t| {
            let id = tokenizer.token_to_id(t);
            if id.is_none() {
                tracing::warn!(
                    "{}: bos_token {t:?} is not in the vocabulary; no BOS will be added",
                    config_path.display()
                );
            }
            id
        });
        let add_bos_token = match config.as_ref().and_then(|c| c.get("add_bos_token")) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => {
                return Err(TokenizeError::Field {
                    path: config_path,
                    field: "add_bos_token".into(),
                    message: format!("expected a boolean, found {other}"),
                })
            }
        };

        let templates = find_templates(dir, config.as_ref(), &config_path)?;
        let fingerprint = fingerprint_of(&bytes, &special);
        Ok(TextTokenizer {
            dir: dir.to_path_buf(),
            tokenizer,
            special,
            bos_id,
            add_bos_token,
            templates,
            fingerprint,
        })
    }

    /// The directory this tokenizer was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of token ids, added tokens included (Python's `len(tokenizer)`). The model's
    /// embedding matrix may be larger (padded); it is never smaller for a matching pair.
    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// The BOS id, when `bos_token` is declared and in the vocabulary. The `paper` renderer
    /// prepends it, as the reference implementation does.
    pub fn bos_token_id(&self) -> Option<u32> {
        self.bos_id
    }

    /// `add_bos_token` from `tokenizer_config.json`, when set. Informational: neither renderer
    /// uses it (the paper renderer follows the reference, chat templates carry their own BOS).
    pub fn add_bos_token(&self) -> Option<bool> {
        self.add_bos_token
    }

    /// The declared special tokens.
    pub fn special_tokens(&self) -> &SpecialTokens {
        &self.special
    }

    /// A stable 16-hex-digit FNV-1a 64 hash of the `tokenizer.json` bytes and the special
    /// tokens: equal fingerprints mean the same text gives the same ids.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.tokenizer
    }

    /// Every chat template found, in search order.
    pub fn templates(&self) -> &[TemplateSource] {
        &self.templates
    }

    /// The chat template with this name (`None` means [`DEFAULT_TEMPLATE`]).
    pub fn template_source(&self, name: Option<&str>) -> Result<&TemplateSource> {
        let want = name.unwrap_or(DEFAULT_TEMPLATE);
        self.templates
            .iter()
            .find(|t| t.name == want)
            .ok_or_else(|| TokenizeError::NoTemplate {
                dir: self.dir.clone(),
                name: want.to_string(),
                available: if self.templates.is_empty() {
                    "none".to_string()
                } else {
                    self.templates
                        .iter()
                        .map(|t| t.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            })
    }

    /// Token ids of `text` with the tokenizer's special tokens added, as a plain
    /// `tokenizer(text)` call in transformers does (`add_special_tokens=True`: e.g. BOS).
    pub fn encode_with_special_tokens(&self, text: &str) -> std::result::Result<Vec<u32>, String> {
        self.tokenizer
            .encode_fast(text, true)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| e.to_string())
    }

    /// Token ids of `text` without special tokens added (`add_special_tokens=False`).
    pub fn encode(&self, text: &str) -> std::result::Result<Vec<u32>, String> {
        self.tokenizer
            .encode_fast(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| e.to_string())
    }
}

fn read_json_if_exists(path: &Path) -> Result<Option<Value>> {
    match fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| TokenizeError::Parse {
                path: path.to_path_buf(),
                message: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TokenizeError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// A special-token field: a string, an AddedToken object `{"content": ...}`, or null/absent.
fn token_field(obj: &Value, field: &str, path: &Path) -> Result<Option<String>> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Object(o)) => match o.get("content") {
            Some(Value::String(s)) => Ok(Some(s.clone())),
            _ => Err(TokenizeError::Field {
                path: path.to_path_buf(),
                field: field.to_string(),
                message: "object without a string \"content\"".into(),
            }),
        },
        Some(other) => Err(TokenizeError::Field {
            path: path.to_path_buf(),
            field: field.to_string(),
            message: format!("expected a string or {{\"content\": ...}}, found {other}"),
        }),
    }
}

/// `(stem, path)` of every `*.jinja` file in `dir`, sorted by path; none if `dir` is absent.
fn jinja_files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let io_err = |source| TokenizeError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err)? {
        let path = entry.map_err(io_err)?.path();
        if path.extension().is_some_and(|e| e == "jinja") {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            files.push((stem, path));
        }
    }
    files.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(files)
}

fn read_text(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|source| TokenizeError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn find_templates(
    dir: &Path,
    config: Option<&Value>,
    config_path: &Path,
) -> Result<Vec<TemplateSource>> {
    let mut out: Vec<TemplateSource> = Vec::new();
    let mut push = |t: TemplateSource| {
        if !out.iter().any(|o| o.name == t.name) {
            out.push(t);
        }
    };

    let single = dir.join("chat_template.jinja");
    if single.is_file() {
        push(TemplateSource {
            name: DEFAULT_TEMPLATE.into(),
            source: read_text(&single)?,
            origin: single.display().to_string(),
        });
    }

    for sub in ["additional_chat_templates", "chat_templates"] {
        for (name, path) in jinja_files(&dir.join(sub))? {
            push(TemplateSource {
                name,
                source: read_text(&path)?,
                origin: path.display().to_string(),
            });
        }
    }

    if let Some(field) = config.and_then(|c| c.get("chat_template")) {
        let origin = format!("{}#chat_template", config_path.display());
        match field {
            Value::Null => {}
            Value::String(s) => push(TemplateSource {
                name: DEFAULT_TEMPLATE.into(),
                source: s.clone(),
                origin,
            }),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let name = item.get("name").and_then(Value::as_str);
                    let source = item.get("template").and_then(Value::as_str);
                    match (name, source) {
                        (Some(name), Some(source)) => push(TemplateSource {
                            name: name.to_string(),
                            source: source.to_string(),
                            origin: format!("{origin}[{i}]"),
                        }),
                        _ => {
                            return Err(TokenizeError::Field {
                                path: config_path.to_path_buf(),
                                field: format!("chat_template[{i}]"),
                                message: "expected {\"name\": string, \"template\": string}".into(),
                            })
                        }
                    }
                }
            }
            other => {
                return Err(TokenizeError::Field {
                    path: config_path.to_path_buf(),
                    field: "chat_template".into(),
                    message: format!("expected a string or a list, found {other}"),
                })
            }
        }
    }

    let legacy = dir.join("chat_template.json");
    if let Some(v) = read_json_if_exists(&legacy)? {
        match v.get("chat_template") {
            Some(Value::String(s)) => push(TemplateSource {
                name: DEFAULT_TEMPLATE.into(),
                source: s.clone(),
                origin: format!("{}#chat_template", legacy.display()),
            }),
            _ => {
                return Err(TokenizeError::Field {
                    path: legacy,
                    field: "chat_template".into(),
                    message: "expected a string".into(),
                })
            }
        }
    }
    Ok(out)
}

fn fingerprint_of(tokenizer_json: &[u8], special: &SpecialTokens) -> String {
    let tokens = format!(
        "\0bos={:?}\0eos={:?}\0unk={:?}\0pad={:?}",
        special.bos_token, special.eos_token, special.unk_token, special.pad_token
    );
    padv_core::fingerprint::Fnv64::new()
        .write(tokenizer_json)
        .write(tokens.as_bytes())
        .hex()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_fields_accept_strings_and_added_token_objects() {
        let v: Value = serde_json::from_str(
            r#"{"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>",
                "pad_token": null, "unk_token": 3}"#,
        )
        .unwrap();
        let p = Path::new("tokenizer_config.json");
        assert_eq!(
            token_field(&v, "bos_token", p).unwrap().as_deref(),
            Some("<s>")
        );
        assert_eq!(
            token_field(&v, "eos_token", p).unwrap().as_deref(),
            Some("</s>")
        );
        assert_eq!(token_field(&v, "pad_token", p).unwrap(), None);
        assert_eq!(token_field(&v, "missing", p).unwrap(), None);
        let err = token_field(&v, "unk_token", p).unwrap_err().to_string();
        assert!(
            err.contains("tokenizer_config.json") && err.contains("unk_token"),
            "{err}"
        );
    }
}
