//! Printing results: JSON to stdout, and atomically to `--out` when given.

use std::path::Path;

use anyhow::Context;
use serde::Serialize;

/// Print `value` as pretty JSON, and write it to `out` (atomically) when given.
pub fn emit<T: Serialize>(value: &T, out: Option<&Path>) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("serialising the result")?;
    if let Some(path) = out {
        padv_core::atomic::write_bytes_atomic(path, format!("{text}\n").as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    println!("{text}");
    Ok(())
}
