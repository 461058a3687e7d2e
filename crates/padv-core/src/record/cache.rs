//! A resumable on-disk cache of backend outputs.
//!
//! Each entry holds one model's [`PositionLogprobs`] for one token sequence and target set, keyed
//! by the model fingerprint, the token ids, the targets and the statistics requested. Policy and
//! reference are cached separately, so swapping only the reference recomputes only the reference.
//! Entries are written atomically, so an interrupted run leaves only complete entries and a
//! rerun resumes where it stopped. The folder mechanics are [`JsonCache`]'s, which the judge
//! answers' cache shares.
//!
//! Every entry carries a checksum of its key and of the bit patterns of its values: an entry
//! that is still valid JSON but whose numbers changed (a disk error, a hand edit, a file
//! copied under another key) is found on read, reported as [`Lookup::Corrupt`], re-scored
//! and counted, never used. (JSON keeps every f32 exactly, so the checksum survives the
//! round trip.)

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

/// What a [`LogprobCache`] lookup found.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// A verified entry.
    Hit(PositionLogprobs),
    /// No entry.
    Miss,
    /// An entry that failed verification (checksum, length or format): the caller re-scores
    /// it and counts it.
    Corrupt(String),
}

/// One stored entry: the checksum and the values.
#[derive(Debug, Serialize, serde::Deserialize)]
struct Entry {
    /// [`checksum`] of the key and the values, hex.
    checksum: String,
    /// The values.
    value: PositionLogprobs,
}

/// FNV-1a over the key and every array's presence, length and f32 bit patterns.
fn checksum(key: CacheKey, v: &PositionLogprobs) -> String {
    let mut h = Fnv64::new();
    h.write_str("padv-cache-entry-v2")
        .write(&key.0.to_le_bytes());
    for arr in [
        Some(&v.logprob),
        v.topk_mean.as_ref(),
        v.entropy.as_ref(),
        v.vocab_mean.as_ref(),
    ] {
        match arr {
            None => {
                h.write(&[0]);
            }
            Some(a) => {
                h.write(&[1]).write(&(a.len() as u64).to_le_bytes());
                for x in a {
                    h.write(&x.to_bits().to_le_bytes());
                }
            }
        }
    }
    format!("{:016x}", h.finish())
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

    /// The entry of `key`, verified: its checksum must match its key and values and it must
    /// hold `expected_len` targets; anything else is [`Lookup::Corrupt`] (with a warning).
    pub fn get(&self, key: CacheKey, expected_len: usize) -> Lookup {
        let path = self.dir().join(format!("{}.json", key.stem()));
        if !path.exists() {
            return Lookup::Miss;
        }
        let corrupt = |why: String| {
            tracing::warn!("cache entry {}: {why}; re-scoring", path.display());
            Lookup::Corrupt(why)
        };
        let Some(raw) = self.files.get::<serde_json::Value>(&key.stem()) else {
            return corrupt("not readable JSON".into());
        };
        let entry: Entry = match serde_json::from_value(raw) {
            Ok(e) => e,
            Err(e) => return corrupt(format!("not a checksummed entry ({e})")),
        };
        if entry.checksum != checksum(key, &entry.value) {
            return corrupt("its checksum does not match its contents".into());
        }
        if entry.value.logprob.len() != expected_len {
            return corrupt(format!(
                "it holds {} values for {expected_len} targets",
                entry.value.logprob.len()
            ));
        }
        Lookup::Hit(entry.value)
    }

    /// Store an entry atomically, with its checksum.
    pub fn put(&self, key: CacheKey, value: &PositionLogprobs) -> std::io::Result<()> {
        #[derive(Serialize)]
        struct EntryRef<'a> {
            checksum: String,
            value: &'a PositionLogprobs,
        }
        self.files.put(
            &key.stem(),
            &EntryRef {
                checksum: checksum(key, value),
                value,
            },
        )
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
        assert_eq!(cache.get(key, 2), Lookup::Miss);
        let v = PositionLogprobs {
            logprob: vec![-1.0, -2.0],
            ..Default::default()
        };
        cache.put(key, &v).unwrap();
        assert_eq!(cache.get(key, 2), Lookup::Hit(v));
        // A different model, ids, targets or stats request is a different entry.
        assert_ne!(key, CacheKey::new("m2", &[1, 2, 3], &[1, 2], stats));
        assert_ne!(key, CacheKey::new("m1", &[1, 2, 4], &[1, 2], stats));
        assert_ne!(key, CacheKey::new("m1", &[1, 2, 3], &[2], stats));
        let with_stats = StatsRequest {
            distribution_stats: true,
        };
        assert_ne!(key, CacheKey::new("m1", &[1, 2, 3], &[1, 2], with_stats));
        // Wrong expected length is refused.
        assert!(matches!(cache.get(key, 3), Lookup::Corrupt(_)));
    }

    #[test]
    fn an_entry_whose_numbers_changed_is_found_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LogprobCache::open(dir.path()).unwrap();
        let key = CacheKey::new("m1", &[1, 2, 3], &[1, 2], StatsRequest::default());
        let v = PositionLogprobs {
            logprob: vec![-1.25, -2.5],
            entropy: Some(vec![0.5, 0.75]),
            ..Default::default()
        };
        cache.put(key, &v).unwrap();
        let path = dir.path().join(format!("{}.json", key.stem()));
        let text = std::fs::read_to_string(&path).unwrap();
        // Still valid JSON, one number changed.
        std::fs::write(&path, text.replace("-2.5", "-2.4")).unwrap();
        match cache.get(key, 2) {
            Lookup::Corrupt(why) => assert!(why.contains("checksum"), "{why}"),
            other => panic!("expected Corrupt, got {other:?}"),
        }
        // An entry copied under another key is caught too.
        cache.put(key, &v).unwrap();
        let other = CacheKey::new("m1", &[1, 2, 4], &[1, 2], StatsRequest::default());
        std::fs::copy(&path, dir.path().join(format!("{}.json", other.stem()))).unwrap();
        assert!(matches!(cache.get(other, 2), Lookup::Corrupt(_)));
        // An entry without a checksum (an older padv's) is not trusted.
        std::fs::write(&path, r#"{"logprob":[-1.25,-2.5]}"#).unwrap();
        assert!(matches!(cache.get(key, 2), Lookup::Corrupt(_)));
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
