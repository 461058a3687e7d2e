#!/usr/bin/env bash
# Evaluation throughput: 100k synthetic trajectories x 20 steps x 50 tokens (10^8 tokens), full
# grid (260 cells), 1000 bootstrap resamples of one cell, 2 threads; RUNS runs (default 3).
# Writes bench-out/eval/run-N/bench-eval.json and prints one line per run.
set -euo pipefail
source "$(dirname "$0")/common.sh"

RUNS="${RUNS:-3}"
machine_note eval start
build_padv eval
for i in $(seq 1 "$RUNS"); do
  t0="$(now)"
  "$PADV" bench eval --out "$OUT/eval/run-$i" >/dev/null
  echo "run $i: $(elapsed "$t0") s wall for the process (with generating the records)"
done
machine_note eval end
python3 - "$OUT"/eval/run-*/bench-eval.json <<'PY'
import json, sys
for path in sys.argv[1:]:
    r = json.load(open(path))
    print(f"{path}: precompute {r['precompute_s']:.2f} s, UQ (all {r['n_cells']} cells) {r['uq_s']:.2f} s, "
          f"bootstrap of one cell ({r['n_boot']}) {r['bootstrap_s']:.2f} s, CV {r['cv_s']:.2f} s, "
          f"best-of-N {r['bon_s']:.2f} s, FA {r['fa_s']:.2f} s -> {r['total_eval_s']:.2f} s in all "
          f"({r['threads']} threads; generating {r['generate_s']:.2f} s)")
PY
