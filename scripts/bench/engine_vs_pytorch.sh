#!/usr/bin/env bash
# Engine speed vs the reference implementation's PyTorch path (one transformers forward pass,
# full-vocabulary log_softmax, gather, top-20), on the same ids: real tau2 airline trajectories,
# paper-rendered and concatenated to each length, through a Qwen2.5-0.5B-shape random-weight
# checkpoint (1.84 GiB f32). 2 threads each, one run per length, each in its own process.
#
#   scripts/bench/engine_vs_pytorch.sh [LENGTH...]        (default: 512 2048 8192)
#
# Needs python3 (a venv with torch, transformers, safetensors, numpy from PyPI is made under
# bench-out/venv; the PyPI torch wheel brings its CUDA libraries, unused here: 5.6 GB installed, 7 min here)
# and the tau2 data: $PADV_DATA_DIR, else shared/data beside the repository.
# Writes bench-out/engine_vs_pytorch/{pytorch.json,pytorch.ids.json,bench-engine.json}.
set -euo pipefail
source "$(dirname "$0")/common.sh"

LENGTHS=("$@")
[ ${#LENGTHS[@]} -gt 0 ] || LENGTHS=(512 2048 8192)
DATA="${PADV_DATA_DIR:-$ROOT/../shared/data}"
INPUT="$DATA/tau2_bench_leaderboard/airline__gpt-5.4__ironshell__1trial.json"
[ -f "$INPUT" ] || { echo "missing $INPUT (set PADV_DATA_DIR to the shared data folder)" >&2; exit 1; }
RUN="$OUT/engine_vs_pytorch"
MODEL="$OUT/qwen2.5-0.5b"
mkdir -p "$RUN"

machine_note engine_vs_pytorch start
build_padv engine_vs_pytorch
t0="$(now)"
python_venv "torch==2.15.0" "transformers==5.24.0" "safetensors==0.8.0" "numpy==2.4.6"
echo "venv: $(elapsed "$t0") s"
if [ ! -f "$MODEL/model.safetensors" ]; then
  "$PY" scripts/make_bench_checkpoint.py --out "$MODEL"
fi
machine_note engine_vs_pytorch "pytorch start"
"$PY" scripts/bench_pytorch.py --model "$MODEL" --input "$INPUT" --lengths "${LENGTHS[@]}" \
  --threads "$RAYON_NUM_THREADS" --out "$RUN/pytorch.json"
machine_note engine_vs_pytorch "padv start"
joined="$(IFS=,; echo "${LENGTHS[*]}")"
"$PADV" bench engine --model "$MODEL" --ids "$RUN/pytorch.ids.json" --pytorch "$RUN/pytorch.json" \
  --lengths "$joined" --out "$RUN" >/dev/null
machine_note engine_vs_pytorch end
python3 - "$RUN/bench-engine.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))["results"]
print("| T | PyTorch | padv | padv / PyTorch | PyTorch peak RSS | padv peak RSS | action log-prob sum padv / PyTorch |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['tokens']} | {r['pytorch_score_s']:.2f} s | {r['score_s']:.2f} s | **{r['ratio_padv_over_pytorch']:.2f}** "
          f"| {r['pytorch_peak_rss_mib'] / 1024:.2f} GiB | {r['peak_rss_mib'] / 1024:.2f} GiB "
          f"| {r['action_logprob_sum']:.4f} / {r['pytorch_action_logprob_sum']:.4f} |")
PY
