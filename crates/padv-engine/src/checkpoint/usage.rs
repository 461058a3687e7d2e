//! Checks that the stored tensors are exactly the ones the config describes.
//!
//! Loading reads tensors by the names the decoder asks for, so a checkpoint with more tensors
//! than its config uses (2 layers stored, `num_hidden_layers: 1`) would load silently and
//! compute a truncated model. Before anything is read, the decoder is built once against a
//! *probe* backend that records every name it asks for and hands back zero-sized stand-ins
//! (a broadcast scalar: no weight bytes are read or allocated). The names come from the
//! decoder's own construction code, so they cannot drift from what loading really reads.
//!
//! Stored tensors that are legitimately not read (documented choices):
//! - `*rotary_emb.inv_freq` (and `original_inv_freq`): RoPE buffers that older transformers
//!   versions saved; they are a function of the config, and transformers drops unexpected
//!   keys that are buffers of the model.
//! - Everything outside the language model of a multimodal checkpoint (`vision_tower.*`,
//!   `multi_modal_projector.*` next to `model.language_model.*`): padv scores text only.
//! - `lm_head.weight` when the config ties the embeddings, *only if* its bytes equal the
//!   embedding's (some exporters write the tied matrix twice). A different matrix is an error:
//!   transformers would tie (ignore it) while the checkpoint's author may have meant it.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;

use super::error::{CheckpointError, Result};
use super::weights::Weights;
use super::Checkpoint;
use crate::decoder::{DecoderModel, ModelOptions};

/// Tensor names requested by the decoder, with the shapes it expects.
type Requests = Arc<Mutex<Vec<(String, Vec<usize>)>>>;

/// Records requested names and shapes; never reads weights.
#[derive(Clone)]
struct Probe {
    requested: Requests,
}

impl SimpleBackend for Probe {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _h: candle_nn::Init,
        dtype: DType,
        _dev: &Device,
    ) -> candle_core::Result<Tensor> {
        if let Ok(mut r) = self.requested.lock() {
            r.push((name.to_string(), s.dims().to_vec()));
        }
        Tensor::zeros((), dtype, &Device::Cpu)?.broadcast_as(s)
    }

    fn get_unchecked(
        &self,
        name: &str,
        _dtype: DType,
        _dev: &Device,
    ) -> candle_core::Result<Tensor> {
        candle_core::bail!("probe: `{name}` requested without a shape")
    }

    fn contains_tensor(&self, _name: &str) -> bool {
        true
    }
}

/// Whether a stored tensor may go unread (see the module docs).
fn ignorable(name: &str, ckpt: &Checkpoint) -> bool {
    if name.ends_with("rotary_emb.inv_freq") || name.ends_with("rotary_emb.original_inv_freq") {
        return true;
    }
    let multimodal = ckpt.body_prefix != "model";
    let in_lm = name.starts_with(&format!("{}.", ckpt.body_prefix))
        || ckpt
            .head_prefix
            .as_deref()
            .is_some_and(|h| name.starts_with(&format!("{h}.")));
    multimodal && !in_lm
}

/// The names the decoder reads from `ckpt` (with the shapes it expects), in request order.
fn requested_tensors(ckpt: &Checkpoint) -> Result<Vec<(String, Vec<usize>)>> {
    let probe = Probe {
        requested: Arc::new(Mutex::new(Vec::new())),
    };
    let vb = VarBuilder::from_backend(Box::new(probe.clone()), DType::F32, Device::Cpu);
    let head = ckpt.model_head_prefix().map(|p| vb.pp(p));
    // `trainable`: builds without fusing, so no stand-in is ever materialised.
    let opts = ModelOptions {
        trainable: true,
        ..ModelOptions::default()
    };
    DecoderModel::with_prefixes(&ckpt.config, vb.pp(&ckpt.body_prefix), head, opts).map_err(
        |e| CheckpointError::Safetensors {
            path: ckpt.dir.clone(),
            reason: format!("building the model from config.json: {e}"),
        },
    )?;
    let requested = probe
        .requested
        .lock()
        .map(|r| r.clone())
        .unwrap_or_default();
    Ok(requested)
}

/// Errors unless the stored tensors are exactly those the model reads, up to the ignorable
/// ones; also checks each shape. Reads no weight bytes except in the tied-head case.
/// `extra` are tensors read besides the decoder's (a classifier's score head), with their
/// shapes.
pub(super) fn check_tensor_set(ckpt: &Checkpoint, extra: &[(String, Vec<usize>)]) -> Result<()> {
    let weights: &Weights = &ckpt.weights;
    let mut requested = requested_tensors(ckpt)?;
    requested.extend(extra.iter().cloned());
    let mut missing = BTreeSet::new();
    for (name, shape) in &requested {
        match weights.shape(name) {
            None => {
                missing.insert(name.clone());
            }
            Some(found) if found != shape.as_slice() => {
                return Err(CheckpointError::ShapeMismatch {
                    path: weights.file_of(name).unwrap_or(&ckpt.dir).to_path_buf(),
                    name: name.clone(),
                    found: found.to_vec(),
                    expected: shape.clone(),
                });
            }
            Some(_) => {}
        }
    }
    let read: BTreeSet<&str> = requested.iter().map(|(n, _)| n.as_str()).collect();
    let mut unused = BTreeSet::new();
    let mut ignored = 0usize;
    for name in weights.names() {
        if read.contains(name) {
            continue;
        }
        if ignorable(name, ckpt) {
            ignored += 1;
        } else {
            unused.insert(name.to_string());
        }
    }
    if let (true, Some(h)) = (ckpt.config.tie_embeddings, ckpt.head_prefix.as_deref()) {
        let head = format!("{h}.weight");
        let embed = format!("{}.embed_tokens.weight", ckpt.body_prefix);
        if unused.remove(&head) {
            if !weights.same_bytes(&head, &embed)? {
                return Err(CheckpointError::TiedHeadDiffers {
                    dir: ckpt.dir.clone(),
                    head,
                    embed,
                });
            }
            ignored += 1;
        }
    }
    if ignored > 0 {
        tracing::debug!(
            "{}: {ignored} stored tensors not used (RoPE buffers, non-text towers, tied head)",
            ckpt.dir.display()
        );
    }
    if missing.is_empty() && unused.is_empty() {
        return Ok(());
    }
    Err(CheckpointError::TensorSetMismatch {
        dir: ckpt.dir.clone(),
        missing: missing.into_iter().collect(),
        unused: unused.into_iter().collect(),
    })
}
