//! A copy of the tiny `qwen2` fixture whose input embedding row of one token id is NaN, with
//! an untied output head (the original embedding), so a sequence is poisoned exactly when it
//! contains that token: the case "some sequences of a batch hit a NaN weight row".
//!
//! Shared by the engine, server and CLI tests through `#[path]`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The engine's fixture models folder.
pub fn models_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../padv-engine/tests/fixtures/models")
}

/// Writes `qwen2` (or `base`, a qwen2-family fixture with tied embeddings) into `dir` with
/// row `token` of `model.embed_tokens.weight` set to NaN and `lm_head.weight` holding the
/// original embedding; returns `dir`.
pub fn nan_embedding_model(base: &str, dir: &Path, token: u32) -> PathBuf {
    let src = models_dir().join(base);
    std::fs::create_dir_all(dir).expect("fixture dir");
    for entry in std::fs::read_dir(&src).expect("fixture exists") {
        let entry = entry.expect("dir entry");
        let name = entry.file_name();
        if name != "model.safetensors" && name != "config.json" && name != "expected.json" {
            std::fs::copy(entry.path(), dir.join(&name)).expect("copy fixture file");
        }
    }
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.join("config.json")).expect("config"))
            .expect("config json");
    config["tie_word_embeddings"] = serde_json::Value::Bool(false);
    std::fs::write(dir.join("config.json"), config.to_string()).expect("write config");

    let bytes = std::fs::read(src.join("model.safetensors")).expect("weights");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let mut owned: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, view) in st.tensors() {
        owned.push((
            name.clone(),
            view.dtype(),
            view.shape().to_vec(),
            view.data().to_vec(),
        ));
    }
    let embed = owned
        .iter()
        .find(|(n, ..)| n == "model.embed_tokens.weight")
        .cloned()
        .expect("embedding tensor");
    assert_eq!(embed.1, safetensors::Dtype::F32, "the fixture is f32");
    if !owned.iter().any(|(n, ..)| n == "lm_head.weight") {
        let mut head = embed.clone();
        head.0 = "lm_head.weight".into();
        owned.push(head);
    }
    let hidden = embed.2[1];
    for (name, _, _, data) in owned.iter_mut() {
        if name == "model.embed_tokens.weight" {
            let row = token as usize * hidden * 4;
            for k in 0..hidden {
                data[row + 4 * k..row + 4 * k + 4].copy_from_slice(&f32::NAN.to_le_bytes());
            }
        }
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = owned
        .iter()
        .map(|(n, dt, shape, data)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*dt, shape.clone(), data).expect("view"),
            )
        })
        .collect();
    let meta: Option<HashMap<String, String>> = None;
    safetensors::serialize_to_file(views, meta, &dir.join("model.safetensors"))
        .expect("write weights");
    dir.to_path_buf()
}
