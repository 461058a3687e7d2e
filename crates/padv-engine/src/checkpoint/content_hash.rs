//! A digest of every byte of the weight files, for the checkpoint fingerprint.
//!
//! Headers and file sizes are not enough: two RL checkpoints of different steps (or any two
//! same-shape models) have identical headers, and a cache keyed on them would hand one
//! model's log-probs to the other. So each file is hashed in full with xxh3-128 (non-
//! cryptographic, ~10 GB/s per core from memory: the fingerprint guards against accidents,
//! not adversaries). Files are cut into fixed chunks hashed in parallel; a file's digest is
//! the xxh3-128 of its length and its chunks' digests in order, so the value depends only on
//! the bytes and the chunk size, never on the thread count or scheduling.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use xxhash_rust::xxh3::{xxh3_128, Xxh3};

use super::error::{CheckpointError, Result};

/// Bytes per parallel task. Part of the digest's definition: changing it changes every
/// fingerprint (bump `NUMERICS_VERSION`-style caches accordingly).
const CHUNK: u64 = 16 << 20;

/// Read buffer within a chunk (keeps per-thread memory small).
const BUF: usize = 1 << 20;

fn io_err(path: &Path, source: std::io::Error) -> CheckpointError {
    CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// xxh3-128 of bytes `start..start+len` of `path`.
fn hash_range(path: &Path, start: u64, len: u64) -> Result<u128> {
    let mut file = File::open(path).map_err(|e| io_err(path, e))?;
    file.seek(SeekFrom::Start(start))
        .map_err(|e| io_err(path, e))?;
    let mut hasher = Xxh3::new();
    let mut buf = vec![0u8; BUF.min(len as usize)];
    let mut left = len;
    while left > 0 {
        let n = (left as usize).min(buf.len());
        file.read_exact(&mut buf[..n])
            .map_err(|e| io_err(path, e))?;
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(hasher.digest128())
}

/// The content digest of each file (same order as `files`, which pairs paths with the sizes
/// seen when the headers were read). A file that changed size since is an error rather than
/// a digest of something else.
pub(crate) fn file_digests(files: &[(PathBuf, u64)]) -> Result<Vec<u128>> {
    file_digests_in_chunks(files, CHUNK)
}

fn file_digests_in_chunks(files: &[(PathBuf, u64)], chunk: u64) -> Result<Vec<u128>> {
    let tasks: Vec<(usize, u64)> = files
        .iter()
        .enumerate()
        .flat_map(|(i, (_, size))| {
            let n = size.div_ceil(chunk).max(1);
            (0..n).map(move |c| (i, c * chunk))
        })
        .collect();
    let chunk_digests: Vec<u128> = tasks
        .par_iter()
        .map(|&(i, start)| {
            let (path, size) = &files[i];
            hash_range(path, start, chunk.min(size.saturating_sub(start)))
        })
        .collect::<Result<_>>()?;
    let mut out = Vec::with_capacity(files.len());
    let mut next = 0;
    for (i, (path, size)) in files.iter().enumerate() {
        let now = std::fs::metadata(path).map_err(|e| io_err(path, e))?.len();
        if now != *size {
            return Err(CheckpointError::Safetensors {
                path: path.clone(),
                reason: format!("file changed size while open ({size} -> {now} bytes)"),
            });
        }
        let mut summary = Vec::new();
        summary.extend_from_slice(&size.to_le_bytes());
        while next < tasks.len() && tasks[next].0 == i {
            summary.extend_from_slice(&chunk_digests[next].to_le_bytes());
            next += 1;
        }
        out.push(xxh3_128(&summary));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_CHUNK: u64 = 64;

    fn digest_of(bytes: &[u8]) -> u128 {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.bin");
        std::fs::write(&p, bytes).unwrap();
        file_digests_in_chunks(&[(p, bytes.len() as u64)], TEST_CHUNK).unwrap()[0]
    }

    #[test]
    fn every_byte_counts_across_chunks() {
        // Three chunks plus a partial one; flip a byte in the first, a middle and the last.
        let n = 3 * TEST_CHUNK as usize + 45;
        let base: Vec<u8> = (0..n).map(|i| (i * 31 % 251) as u8).collect();
        let d0 = digest_of(&base);
        assert_eq!(d0, digest_of(&base), "not deterministic");
        for pos in [0, TEST_CHUNK as usize + 7, n - 1] {
            let mut b = base.clone();
            b[pos] ^= 1;
            assert_ne!(d0, digest_of(&b), "byte {pos} ignored");
        }
        // An empty file and a file of one zero byte differ (the length is hashed).
        assert_ne!(digest_of(&[]), digest_of(&[0]));
        // The production chunking agrees with itself across calls on a multi-chunk file.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.bin");
        std::fs::write(&p, &base).unwrap();
        let files = [(p, n as u64)];
        assert_eq!(file_digests(&files).unwrap(), file_digests(&files).unwrap());
    }

    #[test]
    fn size_change_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.bin");
        std::fs::write(&p, [1u8; 10]).unwrap();
        let e = file_digests(&[(p.clone(), 11)]).unwrap_err();
        assert!(e.to_string().contains("w.bin"), "{e}");
    }
}
