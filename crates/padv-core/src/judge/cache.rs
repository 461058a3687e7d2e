//! A resumable on-disk cache of judge answers: one JSON file per request, keyed by a hash of
//! everything that determines the answer (the judge's fingerprint and the exact request).
//!
//! Raw answers are cached, not the scores read from them, so a change in how answers are
//! read never needs the judge again. Entries are written atomically; an interrupted run
//! resumes with the finished requests.

use std::fs;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::atomic::write_bytes_atomic;
use crate::fingerprint::Fnv64;

/// A folder of cached judge answers.
#[derive(Debug, Clone)]
pub struct JudgeCache {
    dir: PathBuf,
}

/// The cache key of a request: a hash of its parts, in order (e.g. the judge's fingerprint,
/// the prompt version and the request body).
pub fn cache_key(parts: &[&str]) -> String {
    let mut h = Fnv64::new();
    h.write_str("padv-judge-cache-v1");
    for p in parts {
        h.write_part(p.as_bytes());
    }
    h.hex()
}

impl JudgeCache {
    /// Opens (creating) a cache folder, removing temporaries left by killed writers.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        fs::create_dir_all(dir)?;
        crate::atomic::remove_stale_temporaries(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// The cached answer, if present and readable (an unreadable entry is treated as absent,
    /// with a warning, and recomputed).
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let path = self.path(key);
        let bytes = fs::read(&path).ok()?;
        match serde_json::from_slice(&bytes) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(
                    "cache entry {} unreadable ({e}); asking again",
                    path.display()
                );
                None
            }
        }
    }

    /// Stores an answer atomically.
    pub fn put<T: Serialize>(&self, key: &str, value: &T) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
        write_bytes_atomic(&self.path(key), &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_and_keys() {
        let dir = tempfile::tempdir().unwrap();
        let c = JudgeCache::open(dir.path()).unwrap();
        let k = cache_key(&["judge", "prompt"]);
        assert_ne!(k, cache_key(&["judgep", "rompt"]));
        assert!(c.get::<String>(&k).is_none());
        c.put(&k, &"answer".to_string()).unwrap();
        assert_eq!(c.get::<String>(&k).as_deref(), Some("answer"));
        std::fs::write(c.path(&k), "{broken").unwrap();
        assert!(c.get::<String>(&k).is_none());
    }
}
