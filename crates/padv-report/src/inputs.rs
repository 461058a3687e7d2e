//! What the page says it was made from: input files with sizes and content hashes, and the
//! models of a `padv score` run when its `run.json` sits next to the records.

use std::path::Path;

use serde::Serialize;
use xxhash_rust::xxh3::Xxh3;

use crate::ReportError;

/// An input file as the page lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceFile {
    /// The path as given.
    pub path: String,
    /// What it is ("records", "trajectories").
    pub role: String,
    /// Size in bytes.
    pub bytes: u64,
    /// XXH3-64 of the content, 16 hex digits: changes whenever the content does.
    pub xxh3_64: String,
}

impl SourceFile {
    /// Reads `path` (streaming) and hashes it.
    pub fn read(path: &Path, role: &str) -> Result<SourceFile, ReportError> {
        use std::io::Read;
        let io = |source| ReportError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let mut hasher = Xxh3::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut bytes = 0u64;
        loop {
            let n = file.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            bytes += n as u64;
        }
        Ok(SourceFile {
            path: path.display().to_string(),
            role: role.to_string(),
            bytes,
            xxh3_64: format!("{:016x}", hasher.digest()),
        })
    }
}

/// A model of the pair that produced the records.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    /// `policy` or `reference`.
    pub role: String,
    /// What was given to `padv score` (folder, `org/name` or endpoint).
    pub spec: String,
    /// The backend fingerprint (weights, dtype, device), when recorded.
    pub fingerprint: Option<String>,
}

/// What a `padv score` run recorded about itself (`run.json`), as far as the page shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunInfo {
    /// Where it was read from.
    pub path: String,
    /// The models.
    pub models: Vec<ModelInfo>,
    /// The renderer (`paper`, `chat-template`).
    pub renderer: Option<String>,
    /// Left truncation in tokens.
    pub max_length: Option<u64>,
    /// padv version that scored the records.
    pub padv_version: Option<String>,
}

impl RunInfo {
    /// Reads the `run.json` in `dir`: `Ok(None)` when there is none, an error naming the file
    /// when it is not JSON or its `policy` / `reference` entries are not objects.
    pub fn from_dir(dir: &Path) -> Result<Option<RunInfo>, ReportError> {
        let path = dir.join("run.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(ReportError::Io { path, source }),
        };
        let bad = |message: String| ReportError::Input(format!("{}: {message}", path.display()));
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
        let mut models = Vec::new();
        for role in ["policy", "reference"] {
            match v.get(role) {
                None | Some(serde_json::Value::Null) => {}
                Some(serde_json::Value::Object(m)) => models.push(ModelInfo {
                    role: role.to_string(),
                    spec: m
                        .get("spec")
                        .and_then(|s| s.as_str())
                        .unwrap_or("?")
                        .to_string(),
                    fingerprint: m
                        .get("fingerprint")
                        .and_then(|s| s.as_str())
                        .map(str::to_string),
                }),
                Some(_) => return Err(bad(format!("field {role:?} is not an object"))),
            }
        }
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        Ok(Some(RunInfo {
            path: path.display().to_string(),
            models,
            renderer: s("renderer"),
            max_length: v.get("max_length").and_then(|x| x.as_u64()),
            padv_version: s("padv_version"),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_change_with_content_and_run_json_is_optional() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.jsonl");
        std::fs::write(&p, "one").unwrap();
        let a = SourceFile::read(&p, "records").unwrap();
        std::fs::write(&p, "two").unwrap();
        let b = SourceFile::read(&p, "records").unwrap();
        assert_eq!((a.bytes, a.xxh3_64.len()), (3, 16));
        assert_ne!(a.xxh3_64, b.xxh3_64);
        assert_eq!(RunInfo::from_dir(dir.path()).unwrap(), None);
        std::fs::write(dir.path().join("run.json"), r#"{"policy": 3}"#).unwrap();
        let e = RunInfo::from_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("run.json") && e.contains("policy"), "{e}");
        std::fs::write(
            dir.path().join("run.json"),
            r#"{"policy": {"spec": "p", "fingerprint": "f"}, "reference": {"spec": "r"}, "renderer": "paper"}"#,
        )
        .unwrap();
        let r = RunInfo::from_dir(dir.path()).unwrap().unwrap();
        assert_eq!(r.models.len(), 2);
        assert_eq!(r.models[1].fingerprint, None);
        assert_eq!(r.renderer.as_deref(), Some("paper"));
    }
}
