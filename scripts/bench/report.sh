#!/usr/bin/env bash
# padv report on 10,000 synthetic records x 20 steps x 50 tokens: the three grid evaluations
# (260 cells, 1000-resample headline intervals) then the HTML page; 2 threads; RUNS runs
# (default 4). Writes bench-out/report/report.html and bench-out/report/run-N.json.
set -euo pipefail
source "$(dirname "$0")/common.sh"

RUNS="${RUNS:-4}"
machine_note report start
build_padv report
mkdir -p "$OUT/report"
for i in $(seq 1 "$RUNS"); do
  t0="$(now)"
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f "%M" -o "$OUT/report/run-$i.rss-kib" \
      "$PADV" bench report --trajectories 10000 --out "$OUT/report" >"$OUT/report/run-$i.json"
  else
    "$PADV" bench report --trajectories 10000 --out "$OUT/report" >"$OUT/report/run-$i.json"
  fi
  echo "run $i: $(elapsed "$t0") s wall for the process (with generating the records)"
done
machine_note report end
python3 - "$OUT"/report/run-*.json <<'PY'
import json, os, sys
for path in sys.argv[1:]:
    r = json.load(open(path))
    rss = path[:-len(".json")] + ".rss-kib"
    rss = f", peak RSS {int(open(rss).read().split()[-1]) / 2**20:.2f} GiB" if os.path.exists(rss) else ""
    print(f"{path}: evaluations {r['evaluate_seconds']:.2f} s, page {r['page_seconds']:.2f} s -> "
          f"{r['total_seconds']:.2f} s in all, {r['bytes'] / 1e6:.2f} MB ({r['records']} records, "
          f"{r['threads']} threads){rss}")
PY
