#!/usr/bin/env bash
# The gym's slip × β sweep: how PA's results move with the environment's noise and the KL
# coefficient of RL. Runs the full `padv demo` on the committed pair's early and middle RL
# policies (PA along training), then trains the pairs the committed one is compared with and
# runs the full demo on each (tables on stdout, OUT_DIR/demo-*/summary.json).
#
#   scripts/gym_sweep.sh [OUT_DIR]        (default gym-sweep/; three trainings of the 150-iteration recipe: about 5 h on 2 cores)
#
# Cells: slip ∈ {0.2, 0.1} × β ∈ {0.1, 0.3}, seed 1, every other setting at its default.
# (slip 0.2, β 0.1) is the committed pair itself (crates/padv-gym/pair). The β = 0.3 pairs
# reuse the β = 0.1 reference of the same slip (`--reuse-reference`): SFT does not depend
# on β, so that is exactly the reference they would train.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-gym-sweep}
mkdir -p "$OUT"
cargo build -q -p padv
PADV=target/debug/padv

train() { # DIR SLIP BETA [REFERENCE_DIR]
  local dir=$1 slip=$2 beta=$3 reuse=${4:-}
  if [[ -f $dir/manifest.json ]]; then
    echo "$dir: already trained"
    return
  fi
  rm -rf "$dir"
  if [[ -n $reuse ]]; then
    $PADV gym train --out "$dir" --slip "$slip" --beta "$beta" --reuse-reference "$reuse"
  else
    $PADV gym train --out "$dir" --slip "$slip" --beta "$beta"
  fi
}

PAIR=crates/padv-gym/pair
for it in 0015 0075; do
  echo "== committed pair, policy after RL iteration $it"
  $PADV demo --pair "$PAIR" --policy "$PAIR/policy-iter-$it" --out "$OUT/demo-iter-$it"
done
train "$OUT/slip0.2-beta0.3" 0.2 0.3 "$PAIR"
train "$OUT/slip0.1-beta0.1" 0.1 0.1
train "$OUT/slip0.1-beta0.3" 0.1 0.3 "$OUT/slip0.1-beta0.1"

for dir in "$PAIR" "$OUT/slip0.2-beta0.3" "$OUT/slip0.1-beta0.1" "$OUT/slip0.1-beta0.3"; do
  name=$(basename "$dir")
  [[ $name == pair ]] && name=slip0.2-beta0.1
  echo "== $name"
  $PADV demo --pair "$dir" --out "$OUT/demo-$name"
done
