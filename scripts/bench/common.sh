# Sourced by scripts/bench/*.sh (not run on its own). Sets the repository root as the working
# directory and provides: PADV / EXAMPLES (release binaries), OUT (bench-out), timed_build,
# machine_note, python_venv. Benchmarks never run in CI; they need only Rust and python3.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
PADV="$TARGET/release/padv"
EXAMPLES="$TARGET/release/examples"
OUT="bench-out"
# Two threads, as on the project's 2-core machine (override with RAYON_NUM_THREADS).
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-2}"
mkdir -p "$OUT"

now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }

# timed_build NAME cargo ARGS...: runs the build and writes its wall time to $OUT/NAME.build.json.
timed_build() {
  local name="$1"; shift
  local t0; t0="$(now)"
  "$@"
  local s; s="$(elapsed "$t0")"
  echo "build: $s s ($*)"
  printf '{"command": "%s", "seconds": %s}\n' "$*" "$s" >"$OUT/$name.build.json"
}

# The padv binary, release.
build_padv() { timed_build "$1" cargo build --release -p padv; }
# The padv binary and padv-engine's examples, release, in one build (one feature set).
build_padv_and_examples() {
  timed_build "$1" cargo build --release -p padv -p padv-engine --bins --examples
}

# machine_note NAME WHEN: cores and load average, appended to $OUT/NAME.machine.txt and printed.
machine_note() {
  local line
  line="$2: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
  echo "$line" | tee -a "$OUT/$1.machine.txt"
}

# python_venv PACKAGES...: $OUT/venv with the packages (plain PyPI); sets PY.
python_venv() {
  if [ ! -x "$OUT/venv/bin/python" ]; then
    python3 -m venv "$OUT/venv"
  fi
  "$OUT/venv/bin/python" -m pip install --quiet --upgrade pip
  "$OUT/venv/bin/python" -m pip install --quiet "$@"
  PY="$ROOT/$OUT/venv/bin/python"
}
