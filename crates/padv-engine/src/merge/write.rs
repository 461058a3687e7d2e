//! Writing a merged checkpoint folder: the reference's shards with merged tensors (streamed
//! tensor by tensor through the `safetensors` crate's writer), its index, the other files of
//! one parent (config, tokenizer, chat template) and a provenance note. The folder is built
//! beside the destination and renamed into place, so a failed or interrupted merge never
//! leaves a partial checkpoint under the requested name.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::View;
use safetensors::Dtype;
use serde::Serialize;

use super::{content_digest, AlignedTensor, MergeError, MergeSpec, Merger};

/// The provenance note written into the merged folder.
pub const PROVENANCE_FILE: &str = "padv_merge.json";

/// Which parent's non-weight files (config, tokenizer, templates) the merged folder gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FilesFrom {
    /// The reference's (its config matches the merged tensors' shapes; mergekit's default,
    /// the base model's tokenizer).
    #[default]
    Reference,
    /// The policy's (e.g. to keep its chat template).
    Policy,
}

/// What a merge wrote.
#[derive(Debug, Clone, Serialize)]
pub struct MergeReport {
    /// The merge.
    pub spec: MergeSpec,
    /// `spec.label()`.
    pub label: String,
    /// The reference folder and its content digest.
    pub reference: Parent,
    /// The task models, the policy first.
    pub tasks: Vec<Parent>,
    /// Weight files written (the reference's names).
    pub weight_files: Vec<String>,
    /// Tensors written.
    pub tensors: usize,
    /// Tensors copied from the reference (dtype not merged).
    pub copied_from_reference: Vec<String>,
    /// Task tensors whose vocabulary rows were aligned.
    pub aligned: Vec<AlignedTensor>,
    /// EMR's λ per task model (EMR only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub emr_lambda: Vec<f64>,
    /// Other files copied, and from which parent.
    pub files_from: FilesFrom,
    /// Those files.
    pub copied_files: Vec<String>,
    /// padv's version.
    pub padv_version: &'static str,
}

/// A parent checkpoint in the report.
#[derive(Debug, Clone, Serialize)]
pub struct Parent {
    /// Its folder.
    pub dir: String,
    /// Digest of its config and every weight byte.
    pub content_digest: String,
}

/// One tensor, computed when the writer asks for its bytes.
struct Lazy<'a> {
    merger: &'a Merger,
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    len: usize,
    failed: &'a RefCell<Option<MergeError>>,
    done: &'a dyn Fn(usize),
}

impl View for Lazy<'_> {
    fn dtype(&self) -> Dtype {
        self.dtype
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        // After a failure the remaining tensors are written as zeros of the right length, so
        // the writer's bookkeeping stays consistent; the whole folder is then discarded.
        if self.failed.borrow().is_some() {
            return Cow::Owned(vec![0u8; self.len]);
        }
        let bytes = match self.merger.tensor_bytes(&self.name) {
            Ok(b) if b.len() == self.len => b,
            Ok(b) => {
                *self.failed.borrow_mut() = Some(MergeError::Tensor {
                    name: self.name.clone(),
                    reason: format!("{} bytes computed for {} expected", b.len(), self.len),
                });
                vec![0u8; self.len]
            }
            Err(e) => {
                *self.failed.borrow_mut() = Some(e);
                vec![0u8; self.len]
            }
        };
        (self.done)(self.len);
        Cow::Owned(bytes)
    }

    fn data_len(&self) -> usize {
        self.len
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> MergeError + '_ {
    move |source| MergeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn is_weight_file(name: &str) -> bool {
    name.ends_with(".safetensors") || name == "model.safetensors.index.json"
}

/// Copies every regular file below `from` except weight files and hidden entries into `to`
/// (keeping sub-folders such as `additional_chat_templates/`); returns the relative paths.
fn copy_side_files(
    from: &Path,
    to: &Path,
    rel: &Path,
    out: &mut Vec<String>,
) -> Result<(), MergeError> {
    let dir = from.join(rel);
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(io(&dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        if name.starts_with('.') || name == PROVENANCE_FILE {
            continue;
        }
        let rel_path = rel.join(&name);
        if path.is_dir() {
            std::fs::create_dir_all(to.join(&rel_path)).map_err(io(&to.join(&rel_path)))?;
            copy_side_files(from, to, &rel_path, out)?;
        } else if path.is_file() && !(rel.as_os_str().is_empty() && is_weight_file(&name)) {
            std::fs::copy(&path, to.join(&rel_path)).map_err(io(&path))?;
            out.push(rel_path.display().to_string());
        }
    }
    Ok(())
}

/// Writes the merge of `merger` as a checkpoint folder `out` (which must not exist, or be
/// an empty folder). `progress(bytes_done, bytes_total)` is called after each tensor.
pub fn write_merged(
    merger: &Merger,
    out: &Path,
    files_from: FilesFrom,
    progress: &dyn Fn(u64, u64),
) -> Result<MergeReport, MergeError> {
    if out.exists() {
        let empty = std::fs::read_dir(out).map_err(io(out))?.next().is_none();
        if !empty {
            return Err(MergeError::Write {
                path: out.to_path_buf(),
                reason: "the folder exists and is not empty; choose a new --out".into(),
            });
        }
    }
    let name = out
        .file_name()
        .ok_or_else(|| MergeError::Write {
            path: out.to_path_buf(),
            reason: "no folder name".into(),
        })?
        .to_string_lossy()
        .into_owned();
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let result = write_into(merger, &tmp, files_from, progress);
    match result {
        Ok(report) => {
            if out.exists() {
                std::fs::remove_dir(out).map_err(io(out))?;
            }
            std::fs::rename(&tmp, out).map_err(io(out))?;
            Ok(report)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

fn write_into(
    merger: &Merger,
    dir: &Path,
    files_from: FilesFrom,
    progress: &dyn Fn(u64, u64),
) -> Result<MergeReport, MergeError> {
    let base = merger.base();
    let total: u64 = base.tensors.values().map(|e| e.len).sum();
    let done = std::cell::Cell::new(0u64);
    let tick = |n: usize| {
        done.set(done.get() + n as u64);
        progress(done.get(), total);
    };
    let failed: RefCell<Option<MergeError>> = RefCell::new(None);
    let mut weight_files = Vec::new();
    let mut tensors = 0;
    for shard in &base.files {
        let file_name = shard
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model.safetensors".into());
        let views: Vec<(String, Lazy<'_>)> = shard
            .names
            .iter()
            .filter_map(|n| {
                let e = base.tensors.get(n)?;
                Some((
                    n.clone(),
                    Lazy {
                        merger,
                        name: n.clone(),
                        dtype: e.dtype,
                        shape: e.shape.clone(),
                        len: e.len as usize,
                        failed: &failed,
                        done: &tick,
                    },
                ))
            })
            .collect();
        tensors += views.len();
        let path = dir.join(&file_name);
        let meta: Option<HashMap<String, String>> = shard.metadata.clone();
        safetensors::serialize_to_file(views, meta, &path).map_err(|e| MergeError::Write {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if let Some(e) = failed.borrow_mut().take() {
            return Err(e);
        }
        weight_files.push(file_name);
    }
    // The index: the reference's, with the total size of what was written.
    let index = base.dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(io(&index))?;
        let mut v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| MergeError::Input(format!("{}: {e}", index.display())))?;
        if let Some(meta) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            meta.insert("total_size".into(), serde_json::json!(total));
        }
        let out = dir.join("model.safetensors.index.json");
        let bytes = serde_json::to_vec_pretty(&v).map_err(|e| MergeError::Write {
            path: out.clone(),
            reason: e.to_string(),
        })?;
        std::fs::write(&out, bytes).map_err(io(&out))?;
    }
    let from = match files_from {
        FilesFrom::Reference => merger.reference_dir().to_path_buf(),
        FilesFrom::Policy => merger.task_dirs()[0].to_path_buf(),
    };
    let mut copied_files = Vec::new();
    copy_side_files(&from, dir, Path::new(""), &mut copied_files)?;
    let parent = |d: &Path| -> Result<Parent, MergeError> {
        Ok(Parent {
            dir: d.display().to_string(),
            content_digest: content_digest(d)?,
        })
    };
    let report = MergeReport {
        spec: *merger.spec(),
        label: merger.spec().label(),
        reference: parent(merger.reference_dir())?,
        tasks: merger
            .task_dirs()
            .into_iter()
            .map(parent)
            .collect::<Result<_, _>>()?,
        weight_files,
        tensors,
        copied_from_reference: merger.copied().to_vec(),
        aligned: merger.aligned().to_vec(),
        emr_lambda: merger.emr_lambdas_used().to_vec(),
        files_from,
        copied_files,
        padv_version: env!("CARGO_PKG_VERSION"),
    };
    let note = dir.join(super::PROVENANCE_FILE);
    let bytes = serde_json::to_vec_pretty(&report).map_err(|e| MergeError::Write {
        path: note.clone(),
        reason: e.to_string(),
    })?;
    std::fs::write(&note, bytes).map_err(io(&note))?;
    Ok(report)
}
