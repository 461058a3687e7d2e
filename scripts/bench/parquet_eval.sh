#!/usr/bin/env bash
# Evaluation from Parquet vs JSONL records, in one call: N synthetic trajectories (default
# 10,000,000) x STEPS steps (2) x TOKENS tokens (4), policy and reference arrays only; the UQ
# grid of METHODS (pa: 60 cells) with --folds 5 and no bootstrap, read a batch at a time into
# the score table (what `padv eval` does). Reports wall time and peak RSS (/usr/bin/time -v) of
# each evaluation, the file sizes, and whether the two reports are byte-identical.
# Writes bench-out/parquet_eval/{uq-*.json,summary.json} (and records.{parquet,jsonl} with
# KEEP=1). Needs ~3.5 GB of free disk at 10^7 trajectories (the JSONL, written after the
# Parquet file is evaluated and removed).
set -euo pipefail
source "$(dirname "$0")/common.sh"

N="${N:-10000000}"
STEPS="${STEPS:-2}"
TOKENS="${TOKENS:-4}"
METHODS="${METHODS:-pa}"
BUDGET_MIB="${BUDGET_MIB:-512}"
DIR="$OUT/parquet_eval"
mkdir -p "$DIR"
BIN="$EXAMPLES/records_bench"

machine_note parquet_eval start
timed_build parquet_eval cargo build --release -p padv-core --example records_bench

# One format at a time (write, evaluate, then remove the file unless KEEP=1), so the disk
# holds one records file at once.
evaluate() { # evaluate FILE NAME BUDGET_MIB
  /usr/bin/time -v -o "$DIR/time-$2.txt" \
    "$BIN" eval --input "$1" --kind uq --methods "$METHODS" --bootstrap 0 \
    --folds 5 --table-budget-mib "$3" --out "$DIR/uq-$2.json" | tee "$DIR/eval-$2.json"
}
rm -f "$DIR"/time-*.txt "$DIR"/eval-*.json "$DIR"/uq-*.json
for fmt in parquet jsonl; do
  "$BIN" write --trajectories "$N" --steps "$STEPS" --tokens "$TOKENS" --arrays policy,reference \
    "--$fmt" "$DIR/records.$fmt" | tee "$DIR/write-$fmt.json"
  stat -c %s "$DIR/records.$fmt" >"$DIR/size-$fmt.txt"
  evaluate "$DIR/records.$fmt" "$fmt" "$BUDGET_MIB"
  if [ "$fmt" = parquet ] && [ "${TABLE:-0}" = 1 ]; then
    evaluate "$DIR/records.$fmt" parquet-table 1000000000
  fi
  if [ "${KEEP:-0}" != 1 ]; then rm -f "$DIR/records.$fmt"; fi
done
machine_note parquet_eval end

python3 - "$DIR" "$N" "$STEPS" "$TOKENS" "$METHODS" "$BUDGET_MIB" <<'PY'
import json, os, re, sys
d, n, steps, tokens, methods, budget = sys.argv[1:]
out = {"trajectories": int(n), "steps": int(steps), "tokens": int(tokens), "methods": methods,
       "budget_mib": int(budget)}
runs = [r for r in ("parquet", "parquet-table", "jsonl") if os.path.exists(f"{d}/time-{r}.txt")]
for run in runs:
    fmt = run.split("-")[0]
    t = open(f"{d}/time-{run}.txt").read()
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", t).group(1)
    parts = [float(p) for p in wall.split(":")]
    secs = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    e = json.loads(open(f"{d}/eval-{run}.json").read())
    w = json.loads(open(f"{d}/write-{fmt}.json").read())
    out[run] = {"file_bytes": int(open(f"{d}/size-{fmt}.txt").read()), "write_s": w["seconds"],
                "wall_s": secs, "peak_rss_gib": rss_kb / 2**20, **e}
reports = {run: open(f"{d}/uq-{run}.json", "rb").read() for run in runs}
out["reports_identical"] = len(set(reports.values())) == 1
json.dump(out, open(f"{d}/summary.json", "w"), indent=1)
for run in runs:
    r = out[run]
    how = "table kept" if r["table_kept"] else "passes over the file"
    print(f"{run:14} {r['file_bytes'] / 2**30:6.2f} GiB file (written in {r['write_s']:.1f} s): "
          f"scan {r['scan_s']:.1f} s, evaluate {r['evaluate_s']:.1f} s ({r['cells']} cells, {how}), "
          f"{r['wall_s']:.1f} s wall, peak RSS {r['peak_rss_gib']:.2f} GiB")
print(f"reports identical ({', '.join(runs)}): {out['reports_identical']}")
PY
