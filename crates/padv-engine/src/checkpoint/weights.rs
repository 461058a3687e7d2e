//! Safetensors weights, single-file or sharded, served to candle's `VarBuilder`.
//!
//! Tensors are read with plain file reads into freshly allocated buffers rather than mmapped:
//! an mmapped file's touched pages count towards the process's resident set, so mmap + copy
//! (what candle's loader does when converting) peaks at twice the weights. Reading tensor by
//! tensor peaks at the weights plus one tensor.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;

use super::error::{CheckpointError, Result};

/// Where one tensor lives.
#[derive(Debug, Clone)]
struct TensorEntry {
    file: usize,
    dtype: DType,
    shape: Vec<usize>,
    /// Absolute byte offset in the file.
    start: u64,
    len: u64,
}

/// One opened safetensors file.
#[derive(Debug)]
struct WeightFile {
    path: PathBuf,
    file: Mutex<File>,
    size: u64,
    header: Vec<u8>,
}

/// The tensors of a checkpoint, by name, across all its safetensors files.
#[derive(Debug)]
pub struct Weights {
    dir: PathBuf,
    files: Vec<WeightFile>,
    tensors: HashMap<String, TensorEntry>,
}

fn io_err(path: &Path, source: std::io::Error) -> CheckpointError {
    CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The safetensors files of `dir`: the shards listed by `model.safetensors.index.json`, else
/// `model.safetensors`, else every `*.safetensors` file (sorted).
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|e| io_err(&index, e))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| CheckpointError::Json {
                path: index.clone(),
                source,
            })?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| CheckpointError::MissingField {
                path: index.clone(),
                field: "weight_map".into(),
            })?;
        let mut files: Vec<String> = Vec::new();
        for (name, f) in map {
            let f = f.as_str().ok_or_else(|| CheckpointError::InvalidField {
                path: index.clone(),
                field: format!("weight_map.{name}"),
                reason: "must be a file name".into(),
            })?;
            if Path::new(f).components().count() != 1 || f.starts_with('.') {
                return Err(CheckpointError::InvalidField {
                    path: index.clone(),
                    field: format!("weight_map.{name}"),
                    reason: format!("{f:?} is not a plain file name"),
                });
            }
            if !files.iter().any(|x| x == f) {
                files.push(f.to_string());
            }
        }
        files.sort();
        return Ok(files.into_iter().map(|f| dir.join(f)).collect());
    }
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let mut all: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io_err(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors") && p.is_file())
        .collect();
    all.sort();
    if all.is_empty() {
        return Err(io_err(
            &single,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no safetensors weights in the directory",
            ),
        ));
    }
    Ok(all)
}

/// Opens a safetensors file and reads its header: the file (positioned after the header),
/// its size, the raw JSON header and the offset where the data starts.
pub(crate) fn open_safetensors(path: &Path) -> Result<(File, u64, Vec<u8>, u64)> {
    let bad = |reason: String| CheckpointError::Safetensors {
        path: path.to_path_buf(),
        reason,
    };
    let mut file = File::open(path).map_err(|e| io_err(path, e))?;
    let size = file.metadata().map_err(|e| io_err(path, e))?.len();
    let mut len8 = [0u8; 8];
    file.read_exact(&mut len8)
        .map_err(|_| bad("shorter than the 8-byte header length".into()))?;
    let n = u64::from_le_bytes(len8);
    if n > 100_000_000 || 8 + n > size {
        return Err(bad(format!(
            "header length {n} exceeds the file size {size}"
        )));
    }
    let mut header = vec![0u8; n as usize];
    file.read_exact(&mut header).map_err(|e| io_err(path, e))?;
    Ok((file, size, header, 8 + n))
}

fn parse_dtype(s: &str) -> Option<DType> {
    Some(match s {
        "F32" => DType::F32,
        "F16" => DType::F16,
        "BF16" => DType::BF16,
        "F64" => DType::F64,
        _ => return None,
    })
}

impl Weights {
    /// Opens the weights of checkpoint directory `dir` and reads every header.
    pub fn open(dir: &Path) -> Result<Self> {
        let paths = weight_files(dir)?;
        let mut files = Vec::with_capacity(paths.len());
        let mut tensors = HashMap::new();
        for (idx, path) in paths.into_iter().enumerate() {
            let bad = |reason: String| CheckpointError::Safetensors {
                path: path.clone(),
                reason,
            };
            let (file, size, header, data_start) = open_safetensors(&path)?;
            let v: serde_json::Value = serde_json::from_slice(&header)
                .map_err(|e| bad(format!("header is not JSON: {e}")))?;
            let obj = v
                .as_object()
                .ok_or_else(|| bad("header is not a JSON object".into()))?;
            for (name, info) in obj {
                if name == "__metadata__" {
                    continue;
                }
                let dtype_s = info.get("dtype").and_then(|d| d.as_str()).unwrap_or("?");
                let shape: Option<Vec<usize>> = info.get("shape").and_then(|s| {
                    s.as_array()?
                        .iter()
                        .map(|d| d.as_u64().map(|d| d as usize))
                        .collect()
                });
                let offsets: Option<Vec<u64>> = info
                    .get("data_offsets")
                    .and_then(|s| s.as_array()?.iter().map(|d| d.as_u64()).collect());
                let (Some(shape), Some(offsets)) = (shape, offsets) else {
                    return Err(bad(format!("tensor `{name}` lacks shape or data_offsets")));
                };
                if offsets.len() != 2 || offsets[0] > offsets[1] || data_start + offsets[1] > size {
                    return Err(bad(format!(
                        "tensor `{name}` has data_offsets out of range"
                    )));
                }
                let Some(dtype) = parse_dtype(dtype_s) else {
                    // Non-float tensors (e.g. quantisation metadata) are ignored; asking for
                    // one later reports it missing.
                    tracing::debug!(
                        "{}: skipping tensor {name} of dtype {dtype_s}",
                        path.display()
                    );
                    continue;
                };
                let numel: usize = shape.iter().product();
                let len = offsets[1] - offsets[0];
                if len != (numel * dtype.size_in_bytes()) as u64 {
                    return Err(bad(format!(
                        "tensor `{name}`: {len} bytes for shape {shape:?} of {dtype_s}"
                    )));
                }
                tensors.insert(
                    name.clone(),
                    TensorEntry {
                        file: idx,
                        dtype,
                        shape,
                        start: data_start + offsets[0],
                        len,
                    },
                );
            }
            files.push(WeightFile {
                path,
                file: Mutex::new(file),
                size,
                header,
            });
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            files,
            tensors,
        })
    }

    /// Whether a tensor of that name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// The shape stored for `name`.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|e| e.shape.as_slice())
    }

    /// Names of all stored (float) tensors, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// The file that stores `name`.
    pub fn file_of(&self, name: &str) -> Option<&Path> {
        self.tensors
            .get(name)
            .map(|e| self.files[e.file].path.as_path())
    }

    /// Whether tensors `a` and `b` are stored with the same dtype, shape and bytes (false
    /// when either is absent).
    pub fn same_bytes(&self, a: &str, b: &str) -> Result<bool> {
        let (Some(ea), Some(eb)) = (self.tensors.get(a), self.tensors.get(b)) else {
            return Ok(false);
        };
        if ea.dtype != eb.dtype || ea.shape != eb.shape {
            return Ok(false);
        }
        Ok(self.raw_bytes(ea)? == self.raw_bytes(eb)?)
    }

    fn raw_bytes(&self, e: &TensorEntry) -> Result<Vec<u8>> {
        let wf = &self.files[e.file];
        let mut file = wf.file.lock().map_err(|_| {
            io_err(
                &wf.path,
                std::io::Error::other("weights file lock poisoned"),
            )
        })?;
        file.seek(SeekFrom::Start(e.start))
            .map_err(|err| io_err(&wf.path, err))?;
        let mut v = vec![0u8; e.len as usize];
        file.read_exact(&mut v)
            .map_err(|err| io_err(&wf.path, err))?;
        Ok(v)
    }

    /// The dtypes stored in the files (for reporting).
    pub fn stored_dtypes(&self) -> Vec<DType> {
        let mut v: Vec<DType> = Vec::new();
        for e in self.tensors.values() {
            if !v.contains(&e.dtype) {
                v.push(e.dtype);
            }
        }
        v.sort_by_key(|d| d.as_str());
        v
    }

    /// The weight files, with their sizes and raw headers (fingerprinting).
    pub fn file_summaries(&self) -> impl Iterator<Item = (&Path, u64, &[u8])> {
        self.files
            .iter()
            .map(|f| (f.path.as_path(), f.size, f.header.as_slice()))
    }

    /// Reads tensor `name` onto the CPU in its stored dtype.
    pub fn read(&self, name: &str) -> Result<Tensor> {
        let e = self
            .tensors
            .get(name)
            .ok_or_else(|| CheckpointError::MissingTensor {
                dir: self.dir.clone(),
                name: name.to_string(),
            })?;
        let wf = &self.files[e.file];
        if cfg!(target_endian = "big") {
            return Err(CheckpointError::Safetensors {
                path: wf.path.clone(),
                reason: "big-endian hosts are not supported".into(),
            });
        }
        let numel: usize = e.shape.iter().product();
        let mut file = wf.file.lock().map_err(|_| {
            io_err(
                &wf.path,
                std::io::Error::other("weights file lock poisoned"),
            )
        })?;
        file.seek(SeekFrom::Start(e.start))
            .map_err(|err| io_err(&wf.path, err))?;
        let shape = Shape::from_dims(&e.shape);
        let to_candle = |err: candle_core::Error| CheckpointError::Safetensors {
            path: wf.path.clone(),
            reason: format!("tensor `{name}`: {err}"),
        };
        macro_rules! read_as {
            ($t:ty, $zero:expr) => {{
                let mut v: Vec<$t> = vec![$zero; numel];
                // A byte view of the vector: safetensors stores little-endian data and this
                // host is little-endian (checked above).
                let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut v);
                debug_assert_eq!(bytes.len() as u64, e.len);
                file.read_exact(bytes)
                    .map_err(|err| io_err(&wf.path, err))?;
                Tensor::from_vec(v, shape, &Device::Cpu).map_err(to_candle)?
            }};
        }
        let t = match e.dtype {
            DType::F32 => read_as!(f32, 0f32),
            DType::F64 => read_as!(f64, 0f64),
            DType::F16 => read_as!(half::f16, half::f16::ZERO),
            DType::BF16 => read_as!(half::bf16, half::bf16::ZERO),
            other => {
                return Err(CheckpointError::Safetensors {
                    path: wf.path.clone(),
                    reason: format!("tensor `{name}` has unsupported dtype {other:?}"),
                })
            }
        };
        Ok(t)
    }

    /// Reads `name`, checks its shape, converts to `dtype` and moves it to `device`.
    pub fn load(
        &self,
        name: &str,
        expected: Option<&Shape>,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        if let (Some(expected), Some(e)) = (expected, self.tensors.get(name)) {
            if e.shape.as_slice() != expected.dims() {
                return Err(CheckpointError::ShapeMismatch {
                    path: self.files[e.file].path.clone(),
                    name: name.to_string(),
                    found: e.shape.clone(),
                    expected: expected.dims().to_vec(),
                });
            }
        }
        let t = self.read(name)?;
        let wrap = |err: candle_core::Error| CheckpointError::Safetensors {
            path: self.dir.clone(),
            reason: format!("tensor `{name}`: {err}"),
        };
        let t = if t.dtype() == dtype {
            t
        } else {
            t.to_dtype(dtype).map_err(wrap)?
        };
        if device.is_cpu() {
            Ok(t)
        } else {
            t.to_device(device).map_err(wrap)
        }
    }
}

/// `Arc<Weights>` as a candle `VarBuilder` backend.
#[derive(Debug, Clone)]
pub struct SharedWeights(pub Arc<Weights>);

impl SimpleBackend for SharedWeights {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _h: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        self.0
            .load(name, Some(&s), dtype, dev)
            .map_err(candle_core::Error::wrap)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.0
            .load(name, None, dtype, dev)
            .map_err(candle_core::Error::wrap)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.0.contains(name)
    }
}
