//! Reading `--input` for `padv score`: trajectory files minus the `--out` folder, with every
//! malformed record turned into a skip reason, and a description of each file (size and hash)
//! for run.json so that a result can be traced back to the bytes it came from.

use std::path::{Path, PathBuf};

use anyhow::Context;
use padv_core::fingerprint::Fnv64;
use padv_core::formats::{expand_inputs, read_file};
use padv_core::Trajectory;
use padv_engine::pipeline::{SkipReason, SkipReport};
use serde::Serialize;

use super::TrajectoryInput;

/// One input file as run.json records it.
#[derive(Debug, Clone, Serialize)]
pub struct InputFile {
    /// The path as found (given, or below a given folder).
    pub path: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// FNV-1a 64 of its content, hex: changes whenever the content does.
    pub fnv1a64: String,
}

/// What reading the inputs produced.
pub struct Inputs {
    /// Every trajectory, in file order.
    pub trajectories: Vec<Trajectory>,
    /// The files read.
    pub files: Vec<InputFile>,
    /// Malformed records that were skipped.
    pub skips: SkipReport,
}

/// Reads every trajectory file of `input`, leaving out files inside `exclude` (the `--out`
/// folder: when it sits inside an input folder, its records and reports are not trajectories).
pub fn read_trajectories(input: &TrajectoryInput, exclude: &Path) -> anyhow::Result<Inputs> {
    let paths = expand_inputs(&input.input).context("reading trajectories")?;
    let paths = without_folder(paths, exclude);
    if paths.is_empty() {
        anyhow::bail!(
            "no trajectory file in the input (files inside the output folder {} are not read)",
            exclude.display()
        );
    }
    let opts = input.options();
    let mut out = Inputs {
        trajectories: Vec::new(),
        files: Vec::with_capacity(paths.len()),
        skips: SkipReport::default(),
    };
    for path in &paths {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        out.files.push(InputFile {
            path: path.display().to_string(),
            bytes: bytes.len() as u64,
            fnv1a64: Fnv64::new().write(&bytes).hex(),
        });
        let report = read_file(path, &opts).context("reading trajectories")?;
        for e in &report.skipped {
            out.skips.add(
                SkipReason::MalformedInput,
                path.display().to_string(),
                e.to_string(),
            );
        }
        out.trajectories.extend(report.trajectories);
    }
    Ok(out)
}

/// `paths` minus those inside `folder` (compared after resolving links and `..`; a folder
/// that does not exist yet holds nothing).
fn without_folder(paths: Vec<PathBuf>, folder: &Path) -> Vec<PathBuf> {
    let Ok(folder) = folder.canonicalize() else {
        return paths;
    };
    paths
        .into_iter()
        .filter(|p| {
            let inside = p.canonicalize().is_ok_and(|c| c.starts_with(&folder));
            if inside {
                tracing::info!(
                    "not reading {}: it is inside the output folder",
                    p.display()
                );
            }
            !inside
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_in_the_output_folder_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        let a = dir.path().join("a.jsonl");
        let b = out.join("records.jsonl");
        let paths = vec![a.clone(), b];
        std::fs::write(&a, "").unwrap();
        std::fs::write(&paths[1], "").unwrap();
        assert_eq!(without_folder(paths.clone(), &out), vec![a]);
        // A folder that does not exist excludes nothing.
        assert_eq!(
            without_folder(paths.clone(), &dir.path().join("nope")),
            paths
        );
    }
}
