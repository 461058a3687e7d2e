//! A local engine on a merged reference computed in memory: `padv score --reference-merge`
//! scores against π_α without writing a checkpoint.
//!
//! The decoder is built from the reference's `config.json` and tensor names; every tensor it
//! asks for is merged on the spot by [`Merger::tensor_bytes`] — the same bytes
//! [`super::write_merged`] would write — and converted to the compute dtype exactly as a
//! stored checkpoint's tensors are, so scoring the written folder gives the same numbers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use padv_core::fingerprint::Fnv64;

use super::{content_digest, MergeError, MergeSpec, Merger};
use crate::checkpoint::{candle_dtype, device_label, Checkpoint};
use crate::logprobs::{EngineError, EngineOptions, LocalEngine};

/// Bumped when the merge arithmetic changes, so cached log-probs of an older merge of the
/// same parents are not reused.
const MERGE_VERSION: u32 = 1;

/// The merged tensors as a candle `VarBuilder` backend.
struct MergedBackend(Arc<Merger>);

impl MergedBackend {
    fn load(
        &self,
        name: &str,
        expected: Option<&Shape>,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let m = &self.0;
        let shape = m
            .shape(name)
            .ok_or_else(|| {
                candle_core::Error::Msg(format!("merged reference: tensor `{name}` not found"))
            })?
            .to_vec();
        if let Some(exp) = expected {
            if exp.dims() != shape.as_slice() {
                candle_core::bail!(
                    "merged reference: tensor `{name}` has shape {shape:?}, the config implies {:?}",
                    exp.dims()
                );
            }
        }
        let stored = m.dtype(name).and_then(candle_dtype).ok_or_else(|| {
            candle_core::Error::Msg(format!(
                "merged reference: tensor `{name}` is not a float tensor"
            ))
        })?;
        let bytes = m.tensor_bytes(name).map_err(candle_core::Error::wrap)?;
        let t = Tensor::from_raw_buffer(&bytes, stored, &shape, &Device::Cpu)?;
        let t = if stored == dtype {
            t
        } else {
            t.to_dtype(dtype)?
        };
        if dev.is_cpu() {
            Ok(t)
        } else {
            t.to_device(dev)
        }
    }
}

impl SimpleBackend for MergedBackend {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _h: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        self.load(name, Some(&s), dtype, dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.load(name, None, dtype, dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.0.contains(name)
    }
}

/// The cache fingerprint of a merged reference: it changes with the method, α, density,
/// seed, rescaling, the reference (config and every weight byte, via its own fingerprint),
/// every task model's config and weight bytes, the compute dtype and the device.
pub fn merged_fingerprint(
    reference: &Checkpoint,
    tasks: &[PathBuf],
    spec: &MergeSpec,
    dtype: DType,
    device: &Device,
) -> Result<String, EngineError> {
    let mut h = Fnv64::new();
    h.write_part(&MERGE_VERSION.to_le_bytes());
    h.write_str(spec.method.name())
        .write_part(&spec.alpha.to_bits().to_le_bytes())
        .write_part(&spec.density.to_bits().to_le_bytes())
        .write_part(&spec.seed.to_le_bytes())
        .write_str(spec.rescale.name());
    h.write_str(&reference.fingerprint(dtype, device)?);
    for t in tasks {
        let d = content_digest(t).map_err(|e| EngineError::Invalid(e.to_string()))?;
        h.write_str(&d);
    }
    Ok(format!(
        "padv-merged/{}/{}/{}/{}/{}",
        reference.config.family.model_type(),
        spec.label(),
        dtype.as_str(),
        device_label(device),
        h.hex()
    ))
}

/// A local engine on the merge `spec` of `reference` with `tasks` (the policy first),
/// computed in memory. The reference must be a checkpoint the decoder supports (its config
/// and tensor set are checked as for [`LocalEngine::load`]).
pub fn load_merged(
    reference: &Path,
    tasks: &[PathBuf],
    spec: MergeSpec,
    opts: EngineOptions,
) -> Result<LocalEngine, EngineError> {
    let ckpt = Checkpoint::open(reference)?;
    let merger = Merger::open(reference, tasks, spec)
        .map_err(|e: MergeError| EngineError::Invalid(e.to_string()))?;
    LocalEngine::load_from_backend(
        &ckpt,
        Box::new(MergedBackend(Arc::new(merger))),
        opts,
        &format!(
            "building the merged reference {} ({})",
            reference.display(),
            spec.label()
        ),
        |dtype, device| merged_fingerprint(&ckpt, tasks, &spec, dtype, device),
    )
}
