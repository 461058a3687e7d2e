//! Runs the Python package's pytest suite (`python/tests`) against the module this build just
//! compiled, so that `cargo test --workspace` — the README's one test command — covers the
//! Python package too.
//!
//! The suite needs a Python with numpy, pytest, pandas, pyarrow and torch: `PADV_PYTHON`
//! names it (`.ci/run` creates one in `target/ci-python`). Without it the test prints why and
//! passes, except under `PADV_REQUIRE_PYTHON=1` (which `.ci/run` sets), where a missing
//! Python fails it: CI must never go green without running the suite.

use std::path::{Path, PathBuf};
use std::process::Command;

fn target_dir() -> PathBuf {
    // This test binary lives in <target>/<profile>/deps/.
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target profile folder")
        .to_path_buf()
}

#[test]
fn python_package_suite() {
    let required = std::env::var("PADV_REQUIRE_PYTHON").is_ok_and(|v| v == "1");
    let Some(python) = std::env::var_os("PADV_PYTHON").map(PathBuf::from) else {
        assert!(
            !required,
            "PADV_REQUIRE_PYTHON=1 but PADV_PYTHON is not set: the Python suite cannot run"
        );
        eprintln!(
            "skipping the Python suite: set PADV_PYTHON to a Python with numpy, pytest, pandas, \
             pyarrow and torch (as .ci/run does) to run it"
        );
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let profile = target_dir();
    // Built beside this test (deps/) by `cargo test`; `cargo build` also copies it up.
    let module = [
        profile.join("deps/lib_padv.so"),
        profile.join("lib_padv.so"),
    ]
    .into_iter()
    .find(|p| p.is_file())
    .unwrap_or_else(|| {
        panic!(
            "lib_padv.so is not in {}: cargo builds padv-py's cdylib with this test",
            profile.display()
        )
    });
    // The package as an installed wheel lays it out: the Python half plus the native module.
    let site = tempfile::tempdir().expect("temp dir");
    let pkg = site.path().join("padv");
    std::fs::create_dir(&pkg).expect("mkdir");
    for entry in std::fs::read_dir(root.join("python/padv")).expect("python/padv") {
        let path = entry.expect("entry").path();
        if path
            .extension()
            .is_some_and(|e| e == "py" || e == "pyi" || e == "typed")
        {
            std::fs::copy(&path, pkg.join(path.file_name().expect("name"))).expect("copy");
        }
    }
    std::fs::copy(&module, pkg.join("_padv.abi3.so")).expect("copy the module");
    let padv = profile.join("padv");
    let status = Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(root.join("python/tests"))
        .env("PYTHONPATH", site.path())
        .env("PADV_BIN", &padv)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .status()
        .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
    assert!(
        status.success(),
        "the Python suite failed (pytest output above)"
    );
}
