//! Checkpoint trust: the fingerprint covers every weight byte, and the stored tensors must be
//! exactly those the config describes. Each test edits a copy of a committed fixture.
#![cfg(feature = "decoder")]

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use padv_engine::checkpoint::{Checkpoint, CheckpointError};
use serde_json::{Map, Value};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

/// Copies fixture `name` into a fresh temporary directory.
fn copy_fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join(name);
    std::fs::create_dir_all(&dst).unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), dst.join(entry.file_name())).unwrap();
        }
    }
    (tmp, dst)
}

fn fingerprint(dir: &Path) -> String {
    Checkpoint::open(dir)
        .unwrap()
        .fingerprint(DType::F32, &Device::Cpu)
        .unwrap()
}

/// A safetensors file as (header without `__metadata__`, data section).
struct St {
    header: Map<String, Value>,
    data: Vec<u8>,
}

fn read_st(path: &Path) -> St {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: Map<String, Value> = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    header.remove("__metadata__");
    St {
        header,
        data: bytes[8 + n..].to_vec(),
    }
}

impl St {
    fn bytes_of(&self, name: &str) -> Vec<u8> {
        let o = &self.header[name]["data_offsets"];
        let (a, b) = (o[0].as_u64().unwrap(), o[1].as_u64().unwrap());
        self.data[a as usize..b as usize].to_vec()
    }

    /// Writes a well-formed file holding `tensors` (name, dtype, shape, bytes).
    fn write(path: &Path, tensors: &[(String, Value, Value, Vec<u8>)]) {
        let mut header = Map::new();
        let mut data = Vec::new();
        for (name, dtype, shape, bytes) in tensors {
            let start = data.len();
            data.extend_from_slice(bytes);
            header.insert(
                name.clone(),
                serde_json::json!({"dtype": dtype, "shape": shape,
                                   "data_offsets": [start, data.len()]}),
            );
        }
        let h = serde_json::to_vec(&Value::Object(header)).unwrap();
        let mut out = (h.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&h);
        out.extend_from_slice(&data);
        std::fs::write(path, out).unwrap();
    }

    /// All tensors, with `edit` applied to the list before writing it back to `path`.
    fn rewrite(&self, path: &Path, edit: impl FnOnce(&mut Vec<(String, Value, Value, Vec<u8>)>)) {
        let mut tensors: Vec<(String, Value, Value, Vec<u8>)> = self
            .header
            .iter()
            .map(|(name, info)| {
                (
                    name.clone(),
                    info["dtype"].clone(),
                    info["shape"].clone(),
                    self.bytes_of(name),
                )
            })
            .collect();
        edit(&mut tensors);
        Self::write(path, &tensors);
    }
}

fn set_config(dir: &Path, key: &str, value: Value) {
    let path = dir.join("config.json");
    let mut cfg: Map<String, Value> =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    cfg.insert(key.to_string(), value);
    std::fs::write(&path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
}

#[test]
fn fingerprint_covers_every_weight_byte_not_the_path() {
    let original = fingerprint(&fixture("qwen2"));
    let (_a, a) = copy_fixture("qwen2");
    let (_b, b) = copy_fixture("qwen2");
    // A copy elsewhere: same weights, same fingerprint.
    assert_eq!(fingerprint(&a), original);

    // Flip one low mantissa bit of one weight, deep inside the data section: the header,
    // the file size and the config stay identical.
    let file = b.join("model.safetensors");
    let mut bytes = std::fs::read(&file).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let pos = 8 + header_len + (bytes.len() - 8 - header_len) / 2;
    bytes[pos] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    assert_ne!(fingerprint(&b), original);

    // The last byte of the file counts too.
    let (_c, c) = copy_fixture("qwen2");
    let file = c.join("model.safetensors");
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    assert_ne!(fingerprint(&c), original);
}

#[test]
fn sharded_fingerprint_covers_every_shard() {
    let original = fingerprint(&fixture("llama"));
    let (_a, a) = copy_fixture("llama");
    let file = a.join("model-00002-of-00002.safetensors");
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    assert_ne!(fingerprint(&a), original);
}

#[test]
fn fewer_layers_configured_than_stored_is_an_error() {
    let (_t, dir) = copy_fixture("qwen2");
    let stored = read_st(&dir.join("model.safetensors"));
    let layer1: Vec<&String> = stored
        .header
        .keys()
        .filter(|k| k.starts_with("model.layers.1."))
        .collect();
    assert!(!layer1.is_empty());
    set_config(&dir, "num_hidden_layers", 1.into());
    let err = Checkpoint::open(&dir).unwrap_err();
    let CheckpointError::TensorSetMismatch {
        missing, unused, ..
    } = &err
    else {
        panic!("unexpected error {err}");
    };
    assert!(missing.is_empty(), "{missing:?}");
    let mut want: Vec<String> = layer1.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(unused, &want);
    let msg = err.to_string();
    assert!(msg.contains(&format!("{} unused", want.len())), "{msg}");
    assert!(msg.contains("model.layers.1."), "{msg}");
    assert!(msg.contains(&dir.display().to_string()), "{msg}");
}

#[test]
fn missing_tensor_is_named_before_loading() {
    let (_t, dir) = copy_fixture("qwen2");
    let file = dir.join("model.safetensors");
    let gone = "model.layers.0.mlp.down_proj.weight";
    read_st(&file).rewrite(&file, |t| t.retain(|(n, ..)| n != gone));
    let err = Checkpoint::open(&dir).unwrap_err();
    let CheckpointError::TensorSetMismatch {
        missing, unused, ..
    } = &err
    else {
        panic!("unexpected error {err}");
    };
    assert_eq!(missing, &vec![gone.to_string()]);
    assert!(unused.is_empty());
    assert!(err.to_string().contains(gone), "{err}");
}

#[test]
fn unknown_extra_tensor_is_an_error_rope_buffers_are_not() {
    let (_t, dir) = copy_fixture("qwen2");
    let file = dir.join("model.safetensors");
    let st = read_st(&file);
    let f32s = |n: usize| vec![0u8; 4 * n];
    st.rewrite(&file, |t| {
        t.push((
            "model.layers.0.self_attn.rotary_emb.inv_freq".into(),
            "F32".into(),
            serde_json::json!([4]),
            f32s(4),
        ))
    });
    Checkpoint::open(&dir).unwrap();
    st.rewrite(&file, |t| {
        t.push((
            "model.extra_proj.weight".into(),
            "F32".into(),
            serde_json::json!([2, 2]),
            f32s(4),
        ))
    });
    let err = Checkpoint::open(&dir).unwrap_err();
    assert!(
        matches!(&err, CheckpointError::TensorSetMismatch { unused, .. }
            if unused == &vec!["model.extra_proj.weight".to_string()]),
        "{err}"
    );
}

#[test]
fn tied_head_stored_twice_must_equal_the_embedding() {
    let (_t, dir) = copy_fixture("qwen2");
    let file = dir.join("model.safetensors");
    let st = read_st(&file);
    let embed = "model.embed_tokens.weight";
    let info = st.header[embed].clone();
    let bytes = st.bytes_of(embed);
    let with_head = |head: Vec<u8>| {
        let (dtype, shape) = (info["dtype"].clone(), info["shape"].clone());
        move |t: &mut Vec<(String, Value, Value, Vec<u8>)>| {
            t.push(("lm_head.weight".into(), dtype, shape, head))
        }
    };
    // The same matrix written twice: accepted, and scored as tied.
    st.rewrite(&file, with_head(bytes.clone()));
    let ck = Checkpoint::open(&dir).unwrap();
    assert!(ck.config.tie_embeddings);
    assert_eq!(ck.model_head_prefix(), None);
    // A different matrix: which one is meant is ambiguous.
    let mut other = bytes;
    other[0] ^= 1;
    st.rewrite(&file, with_head(other));
    let err = Checkpoint::open(&dir).unwrap_err();
    assert!(
        matches!(err, CheckpointError::TiedHeadDiffers { .. }),
        "{err}"
    );
    // Untied in the config: the stored head is used, nothing is left over.
    set_config(&dir, "tie_word_embeddings", false.into());
    let ck = Checkpoint::open(&dir).unwrap();
    assert_eq!(ck.model_head_prefix(), Some("lm_head"));
}

#[test]
fn every_fixture_uses_exactly_its_tensors() {
    for name in [
        "llama",
        "qwen2",
        "qwen2_bf16",
        "qwen3",
        "mistral",
        "gemma2",
        "gemma3",
        "olmo2",
        "phi3",
    ] {
        if let Err(e) = Checkpoint::open(&fixture(name)) {
            panic!("{name}: {e}");
        }
    }
}
