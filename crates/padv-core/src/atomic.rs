//! Atomic file output: write to a temporary file in the destination folder, flush, then rename.
//! A reader (or a resumed run) therefore sees either the old file or the complete new one.
//!
//! The temporary is `.NAME.tmp-PID`. A writer killed outright (`kill -9`, power loss) leaves
//! it behind; the next write of the same target, and [`crate::record::cache::LogprobCache::open`]
//! for a cache folder, remove such leftovers — only those whose writing process is gone, so a
//! concurrent writer's file is never pulled from under it.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// Write a file atomically. `fill` writes the content; on any error the temporary file is
/// removed and the destination is untouched.
pub fn write_atomic<F>(path: &Path, fill: F) -> io::Result<()>
where
    F: FnOnce(&mut (dyn Write + Send)) -> io::Result<()>,
{
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    fs::create_dir_all(&dir)?;
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "output path has no file name")
    })?;
    let target = name.to_string_lossy().into_owned();
    if let Err(e) = remove_stale(&dir, |n| n == target) {
        tracing::debug!(
            "could not clean stale temporaries of {}: {e}",
            path.display()
        );
    }
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let file = fs::File::create(&tmp)?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        fill(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Write bytes atomically.
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic(path, |w| w.write_all(bytes))
}

/// The target name and writer PID of a temporary file name `.NAME.tmp-PID`.
fn parse_temporary(file_name: &str) -> Option<(&str, u32)> {
    let rest = file_name.strip_prefix('.')?;
    let (target, pid) = rest.rsplit_once(".tmp-")?;
    if target.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((target, pid.parse().ok()?))
}

/// Whether the process that wrote a temporary can no longer be writing it. On systems with
/// `/proc` the PID must be gone; elsewhere the file must be a day old (no write takes that
/// long). The current process's own temporaries are left alone: it overwrites them itself.
fn writer_is_gone(pid: u32, meta: &fs::Metadata) -> bool {
    if pid == std::process::id() {
        return false;
    }
    if Path::new("/proc/self").exists() {
        return !Path::new(&format!("/proc/{pid}")).exists();
    }
    meta.modified()
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > std::time::Duration::from_secs(24 * 3600))
}

/// Remove the stale temporaries in `dir` whose target name satisfies `wanted`; returns how
/// many were removed.
fn remove_stale(dir: &Path, wanted: impl Fn(&str) -> bool) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some((target, pid)) = name.to_str().and_then(parse_temporary) else {
            continue;
        };
        let meta = entry.metadata()?;
        if wanted(target) && meta.is_file() && writer_is_gone(pid, &meta) {
            match fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                // Another cleaner got there first.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    if removed > 0 {
        tracing::info!(
            "removed {removed} stale temporary file(s) in {}",
            dir.display()
        );
    }
    Ok(removed)
}

/// Remove every stale temporary (`.NAME.tmp-PID` whose writer is gone) in `dir`, e.g. a
/// cache folder on open. Returns how many were removed.
pub fn remove_stale_temporaries(dir: &Path) -> io::Result<usize> {
    remove_stale(dir, |_| true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Above Linux's largest possible PID (2^22): never a live process.
    const DEAD_PID: u32 = 999_999_999;

    #[test]
    fn temporary_names_parse() {
        assert_eq!(
            parse_temporary(".out.jsonl.tmp-42"),
            Some(("out.jsonl", 42))
        );
        assert_eq!(parse_temporary(".a.tmp-b.tmp-7"), Some(("a.tmp-b", 7)));
        for bad in [
            "out.jsonl.tmp-42",
            ".out.jsonl.tmp-",
            ".out.jsonl.tmp-4x",
            "..tmp-1",
        ] {
            assert_eq!(parse_temporary(bad), None, "{bad}");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_next_write_removes_a_killed_writers_temporary_only() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.jsonl");
        let dead = dir.path().join(format!(".out.jsonl.tmp-{DEAD_PID}"));
        // PID 1 (init) is alive: its file may be a write in progress.
        let live = dir.path().join(".out.jsonl.tmp-1");
        let other = dir.path().join(format!(".other.jsonl.tmp-{DEAD_PID}"));
        for p in [&dead, &live, &other] {
            fs::write(p, "partial").unwrap();
        }
        write_bytes_atomic(&target, b"done").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"done");
        assert!(!dead.exists(), "the killed writer's temporary must go");
        assert!(live.exists(), "a live writer's temporary must stay");
        assert!(
            other.exists(),
            "another target's temporary is not this write's business"
        );
        // The folder-wide clean (cache open) takes the other target's leftover too.
        assert_eq!(remove_stale_temporaries(dir.path()).unwrap(), 1);
        assert!(!other.exists() && live.exists());
    }
}
