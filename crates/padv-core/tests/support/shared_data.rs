//! Where real-data tests find `shared/data`, shared by every crate's tests (included with
//! `#[path = ".../padv-core/tests/support/shared_data.rs"] mod shared_data;`).
//!
//! The folder is `$PADV_DATA_DIR`, else `shared/data` beside the repository root. When it is
//! missing a test skips with a printed reason — unless `PADV_REQUIRE_DATA=1` (CI sets it),
//! where a missing folder fails the test instead of letting it pass without running.

use std::path::{Path, PathBuf};

/// The data folder, `None` (with a printed note) when it is missing and not required.
///
/// # Panics
/// When the folder is missing and `PADV_REQUIRE_DATA=1`.
#[allow(dead_code)]
pub fn shared_data(manifest_dir: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("PADV_DATA_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(manifest_dir).join("../../../shared/data"),
    };
    if dir.is_dir() {
        return Some(dir);
    }
    let required = std::env::var("PADV_REQUIRE_DATA").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{} is missing and PADV_REQUIRE_DATA=1: this real-data test cannot run \
         (set PADV_DATA_DIR to the shared data folder)",
        dir.display()
    );
    eprintln!(
        "note: {} not found; skipping a real-data test (PADV_REQUIRE_DATA=1 makes this a failure)",
        dir.display()
    );
    None
}
