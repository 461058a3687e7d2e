//! Everything padv prints or writes as a result: text and JSON on stdout, and JSON files in
//! the `--out` folder.
//!
//! Stdout is written through one locked handle and a closed pipe (`padv inspect … | head`)
//! is not an error: [`BrokenPipe`] travels up as an error value and `main` exits quietly with
//! success, as `cat` and `grep` do, instead of panicking inside `println!`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

/// Stdout was closed by its reader. Not a failure: the reader has what it wanted.
#[derive(Debug, thiserror::Error)]
#[error("stdout closed by the reader")]
pub struct BrokenPipe;

/// True when `e` (or anything in its chain) is a closed stdout.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.is::<BrokenPipe>()
            || c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Writes `text` (and a newline if it lacks one) to stdout.
pub fn print_text(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let result = out
        .write_all(text.as_bytes())
        .and_then(|()| {
            if text.ends_with('\n') {
                Ok(())
            } else {
                out.write_all(b"\n")
            }
        })
        .and_then(|()| out.flush());
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(BrokenPipe.into()),
        Err(e) => Err(e).context("writing to stdout"),
    }
}

/// Pretty JSON of `value`, newline-terminated: the one serialisation every output uses.
pub fn to_json<T: Serialize>(value: &T) -> anyhow::Result<String> {
    let mut text = serde_json::to_string_pretty(value).context("serialising the result")?;
    text.push('\n');
    Ok(text)
}

/// Writes `value` as JSON to `path`, atomically (a reader never sees half a file).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let text = to_json(value)?;
    padv_core::atomic::write_bytes_atomic(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Creates the `--out` folder (and its parents) and returns the path of `name` inside it.
pub fn out_file(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir.join(name))
}

/// Prints `value` as one JSON document on stdout, and writes the same document to `out` when
/// given (a file path, for callers that chose it).
pub fn emit<T: Serialize>(value: &T, out: Option<&Path>) -> anyhow::Result<()> {
    let text = to_json(value)?;
    if let Some(path) = out {
        padv_core::atomic::write_bytes_atomic(path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    print_text(&text)
}
