//! Reading safetensors checkpoints for merging: headers through the `safetensors` crate (via
//! `checkpoint::open_safetensors`), tensor data through positioned reads of element ranges,
//! converted to f64.
//!
//! Positioned reads rather than a memory map: the merge visits each tensor in chunks, and
//! mapped pages that were touched count towards the resident set until the kernel reclaims
//! them, which would make the peak memory of a merge look like the size of the inputs.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use safetensors::Dtype;

use super::MergeError;
use crate::checkpoint::{open_safetensors, weight_files, CheckpointError, SafetensorsFile};

/// Where one tensor's bytes are.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Index of the shard file in [`StCheckpoint::files`].
    pub file: usize,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    /// Absolute byte offset of the data in the file.
    pub start: u64,
    /// Bytes of data.
    pub len: u64,
}

impl Entry {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// One shard.
#[derive(Debug)]
pub(crate) struct Shard {
    pub path: PathBuf,
    pub file: File,
    /// Its `__metadata__`.
    pub metadata: Option<HashMap<String, String>>,
    /// Tensor names in the order of their data in the file.
    pub names: Vec<String>,
}

/// The safetensors files of a checkpoint directory, any dtype (non-float tensors included).
#[derive(Debug)]
pub(crate) struct StCheckpoint {
    pub dir: PathBuf,
    pub files: Vec<Shard>,
    pub tensors: HashMap<String, Entry>,
}

/// Whether merging treats this dtype as a weight (the others are copied from the reference).
pub(crate) fn is_mergeable(d: Dtype) -> bool {
    matches!(d, Dtype::F16 | Dtype::BF16 | Dtype::F32 | Dtype::F64)
}

/// Bytes per element of a mergeable dtype.
pub(crate) fn elem_size(d: Dtype) -> usize {
    d.bitsize() / 8
}

impl StCheckpoint {
    /// Reads the headers of every weight file of `dir` (`model.safetensors`, the shards of
    /// `model.safetensors.index.json`, or every `*.safetensors`).
    pub fn open(dir: &Path) -> Result<StCheckpoint, MergeError> {
        let paths = weight_files(dir).map_err(|e| MergeError::Input(e.to_string()))?;
        let mut files = Vec::with_capacity(paths.len());
        let mut tensors = HashMap::new();
        for (idx, path) in paths.into_iter().enumerate() {
            let bad = |reason: String| MergeError::Safetensors {
                path: path.clone(),
                reason,
            };
            let SafetensorsFile {
                file,
                meta,
                data_start,
                ..
            } = open_safetensors(&path).map_err(|e| match e {
                CheckpointError::Safetensors { path, reason } => {
                    MergeError::Safetensors { path, reason }
                }
                other => MergeError::Input(other.to_string()),
            })?;
            let names = meta.offset_keys();
            for name in &names {
                let Some(info) = meta.info(name) else {
                    continue;
                };
                let (a, b) = info.data_offsets;
                if tensors.contains_key(name) {
                    return Err(bad(format!("tensor `{name}` is stored in two files")));
                }
                tensors.insert(
                    name.clone(),
                    Entry {
                        file: idx,
                        dtype: info.dtype,
                        shape: info.shape.clone(),
                        start: data_start + a as u64,
                        len: (b - a) as u64,
                    },
                );
            }
            files.push(Shard {
                path,
                file,
                metadata: meta.metadata().clone(),
                names,
            });
        }
        Ok(StCheckpoint {
            dir: dir.to_path_buf(),
            files,
            tensors,
        })
    }

    /// The raw bytes of a whole tensor.
    pub fn raw(&self, e: &Entry) -> Result<Vec<u8>, MergeError> {
        let mut buf = vec![0u8; e.len as usize];
        self.read_at(e, e.start, &mut buf)?;
        Ok(buf)
    }

    fn read_at(&self, e: &Entry, offset: u64, buf: &mut [u8]) -> Result<(), MergeError> {
        let shard = &self.files[e.file];
        shard
            .file
            .read_exact_at(buf, offset)
            .map_err(|source| MergeError::Io {
                path: shard.path.clone(),
                source,
            })
    }

    /// Elements `first..first + out.len()` of a mergeable tensor, as f64 (exact for every
    /// float dtype). `scratch` is a reused byte buffer.
    pub fn read_f64(
        &self,
        e: &Entry,
        first: usize,
        out: &mut [f64],
        scratch: &mut Vec<u8>,
    ) -> Result<(), MergeError> {
        let size = elem_size(e.dtype);
        scratch.resize(out.len() * size, 0);
        self.read_at(e, e.start + (first * size) as u64, scratch)?;
        decode(e.dtype, scratch, out);
        Ok(())
    }
}

/// Little-endian bytes of `dtype` → f64.
pub(crate) fn decode(dtype: Dtype, bytes: &[u8], out: &mut [f64]) {
    match dtype {
        Dtype::F32 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
            }
        }
        Dtype::F64 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(8)) {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                *o = f64::from_le_bytes(b);
            }
        }
        Dtype::BF16 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = half::bf16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f64();
            }
        }
        Dtype::F16 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = half::f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f64();
            }
        }
        _ => out.fill(f64::NAN),
    }
}

/// f64 → little-endian bytes of `dtype`, rounding to nearest (ties to even), appended to
/// `out`.
pub(crate) fn encode(dtype: Dtype, values: &[f64], out: &mut Vec<u8>) {
    match dtype {
        Dtype::F32 => {
            for &v in values {
                out.extend_from_slice(&(v as f32).to_le_bytes());
            }
        }
        Dtype::F64 => {
            for &v in values {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        Dtype::BF16 => {
            for &v in values {
                out.extend_from_slice(&half::bf16::from_f64(v).to_bits().to_le_bytes());
            }
        }
        Dtype::F16 => {
            for &v in values {
                out.extend_from_slice(&half::f16::from_f64(v).to_bits().to_le_bytes());
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_encode_round_trip_is_exact() {
        let vals = [0.0, -0.0, 1.5, -3.25, 1e-3, 65504.0, 1.0 / 3.0];
        for dtype in [Dtype::F32, Dtype::F64, Dtype::BF16, Dtype::F16] {
            let mut bytes = Vec::new();
            encode(dtype, &vals, &mut bytes);
            let mut back = vec![0.0; vals.len()];
            decode(dtype, &bytes, &mut back);
            let mut again = Vec::new();
            encode(dtype, &back, &mut again);
            assert_eq!(bytes, again, "{dtype:?}: value -> bytes -> value -> bytes");
        }
        // Rounding to nearest even: 1 + 2^-8 is halfway between two bf16 values.
        let mut b = Vec::new();
        encode(Dtype::BF16, &[1.0 + 2f64.powi(-8)], &mut b);
        let mut back = [0.0];
        decode(Dtype::BF16, &b, &mut back);
        assert_eq!(back[0], 1.0);
    }
}
