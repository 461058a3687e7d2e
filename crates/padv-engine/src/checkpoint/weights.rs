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
use safetensors::tensor::Metadata;
use safetensors::Dtype;

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

/// The `safetensors` crate's limit on the JSON header (its `MAX_HEADER_SIZE`, private there).
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// One safetensors file with its header read and validated; the data is not read.
#[derive(Debug)]
pub(crate) struct SafetensorsFile {
    pub file: File,
    /// File size in bytes.
    pub size: u64,
    /// The raw JSON header (the fingerprint hashes it).
    pub header: Vec<u8>,
    /// Absolute offset of the data section (8 + header length).
    pub data_start: u64,
    /// The header as the `safetensors` crate parses it.
    pub meta: Metadata,
}

/// Opens a safetensors file and parses its header with the `safetensors` crate.
///
/// Only the 8-byte length prefix is read by hand: `SafeTensors::read_metadata` wants the whole
/// file as one buffer (it checks the data section against the buffer length), which means a
/// memory map or a full read, and both count the weights towards the resident set (see the
/// module doc). Deserialising the header bytes into [`Metadata`] runs the same validation
/// `read_metadata` does (dtypes, shapes, contiguous in-order offsets, byte lengths that match
/// shape × dtype, no arithmetic overflow); the data section is then checked against the file
/// size here. Every failure is [`CheckpointError::Safetensors`] naming the file.
pub(crate) fn open_safetensors(path: &Path) -> Result<SafetensorsFile> {
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
    if n > MAX_HEADER_BYTES {
        return Err(bad(format!(
            "header length {n} exceeds the safetensors limit of {MAX_HEADER_BYTES} bytes"
        )));
    }
    if 8 + n > size {
        return Err(bad(format!(
            "header length {n} exceeds the file size {size}"
        )));
    }
    let mut header = vec![0u8; n as usize];
    file.read_exact(&mut header).map_err(|e| io_err(path, e))?;
    let meta: Metadata =
        serde_json::from_slice(&header).map_err(|e| bad(format!("header: {e}")))?;
    let data_start = 8 + n;
    let data_len = meta.data_len() as u64;
    if data_len > size - data_start {
        return Err(bad(format!(
            "the header describes {data_len} bytes of data but the file has {}",
            size - data_start
        )));
    }
    Ok(SafetensorsFile {
        file,
        size,
        header,
        data_start,
        meta,
    })
}

/// candle's dtype of a stored float dtype; `None` for the others.
pub(crate) fn candle_dtype(d: Dtype) -> Option<DType> {
    Some(match d {
        Dtype::F32 => DType::F32,
        Dtype::F64 => DType::F64,
        Dtype::BF16 => DType::BF16,
        Dtype::F16 => DType::F16,
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
            let SafetensorsFile {
                file,
                size,
                header,
                data_start,
                meta,
            } = open_safetensors(&path)?;
            for name in meta.offset_keys() {
                let Some(info) = meta.info(&name) else {
                    continue;
                };
                let Some(dtype) = candle_dtype(info.dtype) else {
                    // Non-float tensors (e.g. quantisation metadata) are ignored; asking for
                    // one later reports it missing.
                    tracing::debug!(
                        "{}: skipping tensor {name} of dtype {:?}",
                        path.display(),
                        info.dtype
                    );
                    continue;
                };
                // `open_safetensors` checked that the offsets lie in the file and match the
                // shape and dtype.
                let (a, b) = info.data_offsets;
                tensors.insert(
                    name,
                    TensorEntry {
                        file: idx,
                        dtype,
                        shape: info.shape.clone(),
                        start: data_start + a as u64,
                        len: (b - a) as u64,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of an 8-byte little-endian length `n`, then `header`, then `data` bytes.
    fn raw_file(dir: &Path, n: u64, header: &[u8], data: usize) -> PathBuf {
        let path = dir.join("model.safetensors");
        let mut bytes = n.to_le_bytes().to_vec();
        bytes.extend_from_slice(header);
        bytes.resize(bytes.len() + data, 0);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// A file whose length prefix is right for `header`.
    fn file_with(dir: &Path, header: &str, data: usize) -> PathBuf {
        raw_file(dir, header.len() as u64, header.as_bytes(), data)
    }

    /// `Weights::open` of the file fails with a `Safetensors` error naming it and saying
    /// `what`.
    fn rejects(path: &Path, what: &str) {
        let dir = path.parent().unwrap();
        match Weights::open(dir) {
            Err(CheckpointError::Safetensors { path: p, reason }) => {
                assert_eq!(p, path);
                assert!(reason.contains(what), "{reason:?} lacks {what:?}");
            }
            other => panic!("expected a safetensors error about {what:?}, got {other:?}"),
        }
    }

    const ONE: &str = r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;

    #[test]
    fn reads_float_tensors_and_skips_the_others() {
        let tmp = tempfile::tempdir().unwrap();
        let header = r#"{"__metadata__":{"format":"pt"},
            "w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},
            "ids":{"dtype":"I64","shape":[1],"data_offsets":[8,16]}}"#;
        file_with(tmp.path(), header, 16);
        let w = Weights::open(tmp.path()).unwrap();
        assert_eq!(w.shape("w"), Some(&[2usize][..]));
        assert!(!w.contains("ids"));
        let t = w.read("w").unwrap();
        assert_eq!(t.to_vec1::<f32>().unwrap(), vec![0.0, 0.0]);
    }

    #[test]
    fn hostile_length_prefixes_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("model.safetensors");
        std::fs::write(&path, [1u8, 2, 3]).unwrap();
        rejects(&path, "8-byte header length");
        // Longer than the file, and beyond any header: neither is allocated.
        rejects(
            &raw_file(tmp.path(), 1000, b"{}", 0),
            "exceeds the file size",
        );
        rejects(
            &raw_file(tmp.path(), u64::MAX, b"{}", 0),
            "exceeds the safetensors limit",
        );
    }

    #[test]
    fn hostile_headers_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        rejects(&file_with(d, "not json", 0), "header");
        rejects(&file_with(d, "[1, 2]", 0), "header");
        rejects(&raw_file(d, 4, &[0xff, 0xfe, b'{', b'}'], 0), "header");
        // Data the file does not have.
        rejects(
            &file_with(d, ONE, 4),
            "describes 8 bytes of data but the file has 4",
        );
        // Offsets that do not match the shape and dtype.
        let short = r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#;
        rejects(
            &file_with(d, short, 8),
            "invalid shape, data type, or offset",
        );
        // A gap before the first tensor, and offsets running backwards.
        let gap = r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#;
        rejects(&file_with(d, gap, 12), "invalid offset for tensor `w`");
        let back = r#"{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}"#;
        rejects(&file_with(d, back, 8), "invalid offset");
        // Fields missing or of the wrong type, an unknown dtype, a shape whose size overflows.
        let no_shape = r#"{"w":{"dtype":"F32","data_offsets":[0,8]}}"#;
        rejects(&file_with(d, no_shape, 8), "shape");
        let neg = r#"{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#;
        rejects(&file_with(d, neg, 8), "header");
        let dtype = r#"{"w":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}}"#;
        rejects(&file_with(d, dtype, 8), "F33");
        let huge = format!(
            r#"{{"w":{{"dtype":"F32","shape":[{0},{0}],"data_offsets":[0,8]}}}}"#,
            u64::MAX
        );
        rejects(&file_with(d, &huge, 8), "header");
    }
}
