//! A resumable on-disk cache of judge answers: one JSON file per request, keyed by a hash of
//! everything that determines the answer (the judge's fingerprint and the exact request).
//!
//! Raw answers are cached, not the scores read from them, so a change in how answers are
//! read never needs the judge again. Entries are written atomically; an interrupted run
//! resumes with the finished requests.

use crate::fingerprint::Fnv64;

/// A folder of cached judge answers (the log-prob cache's folder mechanics; keys from
/// [`cache_key`]).
pub use crate::record::cache::JsonCache as JudgeCache;

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
        std::fs::write(dir.path().join(format!("{k}.json")), "{broken").unwrap();
        assert!(c.get::<String>(&k).is_none());
    }
}
