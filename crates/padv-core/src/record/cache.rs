//! A resumable on-disk cache of backend outputs.
//!
//! Each entry holds one model's [`PositionLogprobs`] for one token sequence and target set, keyed
//! by the model fingerprint, the token ids, the targets and the statistics requested. Policy and
//! reference are cached separately, so swapping only the reference recomputes only the reference.
//! Entries are written atomically, so an interrupted run leaves only complete entries and a
//! rerun resumes where it stopped. The folder mechanics are [`JsonCache`]'s, which the judge
//! answers' cache shares.

use std::fs;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::atomic::write_bytes_atomic;
use crate::backend::{PositionLogprobs, StatsRequest};
use crate::fingerprint::Fnv64;

/// Cache key: stable across runs and platforms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey(u64);

impl CacheKey {
    /// Key for `fingerprint` scoring `targets` of `ids` with `stats`.
    pub fn new(fingerprint: &str, ids: &[u32], targets: &[usize], stats: StatsRequest) -> Self {
        let mut h = Fnv64::new();
        h.write_str("padv-cache-v1")
            .write_str(fingerprint)
            .write_u32s(ids);
        for t in targets {
            h.write(&(*t as u64).to_le_bytes());
        }
        h.write(&[u8::from(stats.distribution_stats)]);
        Self(h.finish())
    }

    fn stem(self) -> String {
        format!("{:016x}", self.0)
    }
}

/// A folder of JSON entries, one file per key, written atomically.
#[derive(Debug, Clone)]
pub struct JsonCache {
    dir: PathBuf,
}

impl JsonCache {
    /// Open (creating) a cache folder, removing temporaries left by killed writers.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        fs::create_dir_all(dir)?;
        // Entries of a killed run's unfinished writes; complete entries are kept.
        crate::atomic::remove_stale_temporaries(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The cache folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// The entry `key` (a file stem), if present and readable. A corrupt entry (which atomic
    /// writes make unlikely) is treated as missing, with a warning, so it is recomputed.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let path = self.path(key);
        let bytes = fs::read(&path).ok()?;
        match serde_json::from_slice(&bytes) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(
                    "cache entry {} unreadable ({e}); recomputing",
                    path.display()
                );
                None
            }
        }
    }

    /// Stores an entry atomically.
    pub fn put<T: Serialize>(&self, key: &str, value: &T) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
        write_bytes_atomic(&self.path(key), &bytes)
    }
}

/// A folder of cache entries.
#[derive(Debug, Clone)]
pub struct LogprobCache {
    files: JsonCache,
}

impl LogprobCache {
    /// Open (creating) a cache folder, removing temporaries left by killed writers.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        Ok(Self {
            files: JsonCache::open(dir)?,
        })
    }

    /// The cache folder.
    pub fn dir(&self) -> &Path {
        self.files.dir()
    }

    /// A cached entry, if present, readable and of the expected length (otherwise it is
    /// recomputed, with a warning).
    pub fn get(&self, key: CacheKey, expected_len: usize) -> Option<PositionLogprobs> {
        let v: PositionLogprobs = self.files.get(&key.stem())?;
        if v.logprob.len() == expected_len {
            Some(v)
        } else {
            tracing::warn!(
                "cache entry {}.json in {} has the wrong length; recomputing",
                key.stem(),
                self.dir().display()
            );
            None
        }
    }

    /// Store an entry atomically.
    pub fn put(&self, key: CacheKey, value: &PositionLogprobs) -> std::io::Result<()> {
        self.files.put(&key.stem(), value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_and_key_sensitivity() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LogprobCache::open(dir.path()).unwrap();
        let stats = StatsRequest::default();
        let key = CacheKey::new("m1", &[1, 2, 3], &[1, 2], stats);
        assert!(cache.get(key, 2).is_none());
        let v = PositionLogprobs {
            logprob: vec![-1.0, -2.0],
            ..Default::default()
        };
        cache.put(key, &v).unwrap();
        assert_eq!(cache.get(key, 2), Some(v));
        // A different model, ids, targets or stats request is a different entry.
        assert_ne!(key, CacheKey::new("m2", &[1, 2, 3], &[1, 2], stats));
        assert_ne!(key, CacheKey::new("m1", &[1, 2, 4], &[1, 2], stats));
        assert_ne!(key, CacheKey::new("m1", &[1, 2, 3], &[2], stats));
        let with_stats = StatsRequest {
            distribution_stats: true,
        };
        assert_ne!(key, CacheKey::new("m1", &[1, 2, 3], &[1, 2], with_stats));
        // Wrong expected length is a miss.
        assert!(cache.get(key, 3).is_none());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn open_removes_a_killed_runs_temporaries_and_keeps_entries() {
        let dir = tempfile::tempdir().unwrap();
        let entry = dir.path().join("00000000000000aa.json");
        std::fs::write(&entry, "{}").unwrap();
        // Above Linux's largest PID: the writer is certainly gone.
        let stale = dir.path().join(".00000000000000bb.json.tmp-999999999");
        std::fs::write(&stale, "{\"logprob\": [-1.").unwrap();
        LogprobCache::open(dir.path()).unwrap();
        assert!(!stale.exists());
        assert!(entry.exists());
    }
}
