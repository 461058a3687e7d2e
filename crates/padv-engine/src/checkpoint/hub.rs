//! Finding a checkpoint on disk: a directory path, or `org/name` looked up OFFLINE in the
//! local Hugging Face hub cache (never the network).
//!
//! The cache layout (written by `huggingface_hub`) is
//! `<cache>/models--<org>--<name>/refs/<revision>` (a file holding a commit hash) and
//! `<cache>/models--<org>--<name>/snapshots/<hash>/` (the files).
//!
//! Not the `hf-hub` crate's offline `Cache`/`CacheRepo` (checked against 0.4.3 with
//! `default-features = false`, which is network-free: it adds hf-hub, dirs, dirs-sys and
//! option-ext; 1.0 pulls reqwest, tokio and xet even without default features). What it would
//! replace here is two statements (the `models--` folder name and reading `refs/<revision>`),
//! and it cannot express the rest: `CacheRepo::get` returns a file rather than the snapshot
//! directory, uses the ref file's contents untrimmed (a `refs/main` ending in a newline finds
//! nothing) and unchecked (a ref holding `../..` leaves the cache); `Cache::from_env` ignores
//! `HF_HUB_CACHE` and panics when there is no home directory; and the hash-named and
//! newest-snapshot fallbacks below are not in it. The environment lookup, the id check and the
//! fallbacks would stay ours, so the crate would add code and dependencies, not remove them.

use std::path::{Path, PathBuf};

use super::error::{CheckpointError, Result};

/// Resolves `spec` to a checkpoint directory.
///
/// `spec` is either an existing directory, or a hub id `org/name` (optionally
/// `org/name@revision`, where the revision is a ref such as `main` or a snapshot hash) that is
/// looked up in the local cache: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
/// `~/.cache/huggingface/hub`. Nothing is downloaded. The error lists every place searched.
pub fn resolve_model_path(spec: &str) -> Result<PathBuf> {
    resolve_model_path_in(spec, &hub_cache_dirs())
}

/// [`resolve_model_path`] with explicit cache directories (used by tests and by callers that
/// know their cache): the first cache holding a snapshot wins.
pub fn resolve_model_path_in(spec: &str, caches: &[PathBuf]) -> Result<PathBuf> {
    let as_path = Path::new(spec);
    if as_path.is_dir() {
        return Ok(as_path.to_path_buf());
    }
    let mut searched = vec![format!("{} (as a directory)", as_path.display())];
    let (id, revision) = match spec.split_once('@') {
        Some((id, rev)) if !rev.is_empty() => (id, rev),
        _ => (spec, "main"),
    };
    if is_hub_id(id) {
        let folder = format!("models--{}", id.replace('/', "--"));
        for cache in caches {
            let repo = cache.join(&folder);
            searched.push(repo.display().to_string());
            if let Some(snapshot) = snapshot_in(&repo, revision) {
                return Ok(snapshot);
            }
        }
    }
    Err(CheckpointError::NotFound {
        spec: spec.to_string(),
        searched: searched.join(", "),
    })
}

/// The hub cache directories to search, from the environment, in priority order.
pub fn hub_cache_dirs() -> Vec<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(c) = env("HF_HUB_CACHE") {
        return vec![c];
    }
    if let Some(h) = env("HF_HOME") {
        return vec![h.join("hub")];
    }
    match env("HOME") {
        Some(home) => vec![home.join(".cache").join("huggingface").join("hub")],
        None => Vec::new(),
    }
}

/// `org/name` or a bare `name`: path-safe characters only, at most one slash.
fn is_hub_id(id: &str) -> bool {
    let ok_part = |p: &str| {
        !p.is_empty()
            && p != "."
            && p != ".."
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    match id.split_once('/') {
        Some((org, name)) => ok_part(org) && ok_part(name),
        None => ok_part(id),
    }
}

/// The snapshot of `repo` for `revision`: the commit `refs/<revision>` points to; else a
/// snapshot named `revision` (a hash); else, for `main` only, the only or newest snapshot
/// (caches copied between machines often lose `refs/`).
fn snapshot_in(repo: &Path, revision: &str) -> Option<PathBuf> {
    let snapshots = repo.join("snapshots");
    if !snapshots.is_dir() {
        return None;
    }
    if let Ok(hash) = std::fs::read_to_string(repo.join("refs").join(revision)) {
        let dir = snapshots.join(hash.trim());
        if dir.is_dir() {
            return Some(dir);
        }
    }
    let named = snapshots.join(revision);
    if is_hub_id(revision) && named.is_dir() {
        return Some(named);
    }
    if revision != "main" {
        return None;
    }
    let mut candidates: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&snapshots)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| {
            let t = e
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (t, e.path())
        })
        .collect();
    // Newest first; ties broken by name so the choice is deterministic.
    candidates.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    candidates.into_iter().next().map(|(_, p)| p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_ids() {
        assert!(is_hub_id("Qwen/Qwen2.5-0.5B-Instruct"));
        assert!(is_hub_id("gpt2"));
        assert!(!is_hub_id("a/b/c"));
        assert!(!is_hub_id("../x"));
        assert!(!is_hub_id("org/"));
    }
}
