#!/usr/bin/env bash
# The gym α sweep: PA against references merged between the pair's reference (α = 0) and its
# policy (α = 1), on the policy rollouts of a demo run, judged against that run's soft truth.
#   scripts/gym_alpha_sweep.sh DEMO_DIR [OUT] [ALPHAS]
# DEMO_DIR: a `padv demo` output of any pair (one seed: DEMO_DIR/policy/trajectories.jsonl and
# DEMO_DIR/ground_truth.jsonl). ALPHAS defaults to 0,0.25,0.5,0.75 (α = 1 makes PA ≡ 0).
# PADV=path/to/padv uses that binary instead of `cargo run`.
# Prints padv's evaluation per α (uq, bon, fa: cross-validated headlines) and one JSON line
# per α with Spearman(step PA, A_soft) and Spearman(step PA, A*).
set -euo pipefail
DEMO=${1:?usage: scripts/gym_alpha_sweep.sh DEMO_DIR [OUT] [ALPHAS]}
OUT=${2:-$DEMO/alpha-sweep}
ALPHAS=${3:-0,0.25,0.5,0.75}
cd "$(dirname "$0")/.."
# The demo's own pair, policy and β (summary.json's setup).
setup() { python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['setup'][sys.argv[2]])" "$DEMO/summary.json" "$1"; }
PAIR=$(setup pair)
POLICY=$(setup policy)
BETA=$(setup beta)
${PADV:-cargo run -q -p padv --} score --policy "$POLICY" --reference "$PAIR/reference" \
    --reference-merge "linear:$ALPHAS" --renderer chat-template \
    --input "$DEMO/policy/trajectories.jsonl" --out "$OUT" \
    --eval uq,bon,fa --grid --methods pa,policy_logprob
for a in ${ALPHAS//,/ }; do
    printf 'alpha %s ' "$a"
    python3 scripts/gym_step_rho.py --beta "$BETA" --truth "$DEMO/ground_truth.jsonl" \
        --records "$OUT/ref-linear-a$a/records.jsonl"
done
