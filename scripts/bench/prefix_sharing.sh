#!/usr/bin/env bash
# Prefix sharing: requests continuing one prefix, scored as one shared batch vs one pass each.
#   1. K = 8 continuations of 32 tokens after a 2,000-token history (examples/prefix_sharing.rs),
#      best of --repeats 2 on the Qwen2.5-0.5B shape, best of --repeats 10 on the gym pair.
#   2. padv score on 8 rollouts sharing one long system prompt, --batch-size 8 (one backend
#      batch) vs --batch-size 1 (each alone), both --no-cache, scoring time from run.json:
#      one run each on the 0.5B shape, median of 10 interleaved runs on the gym pair.
#
#   scripts/bench/prefix_sharing.sh [all|gym]     (gym: only the gym pair rows, seconds)
#
# The 0.5B shape is a random-weight f32 checkpoint (1.84 GiB) made by examples/bench_load.rs
# with the test fixture's tokenizer. Release build. Writes bench-out/prefix_sharing/*.json.
set -euo pipefail
source "$(dirname "$0")/common.sh"

WHAT="${1:-all}"
RUN="$OUT/prefix_sharing"
Q05="$OUT/q05"
GYM=crates/padv-gym/pair
mkdir -p "$RUN"

machine_note prefix_sharing start
build_padv_and_examples prefix_sharing

median_seconds() {  # median of the scoring seconds in the run.json files given
  python3 - "$@" <<'PY'
import json, statistics, sys
print(f"{statistics.median(json.load(open(p))['seconds'] for p in sys.argv[1:]):.3f}")
PY
}

# 1. K candidates.
if [ "$WHAT" = all ]; then
  if [ ! -f "$Q05/model.safetensors" ]; then
    "$EXAMPLES/bench_load" --make "$Q05"
    cp crates/padv-engine/tests/fixtures/models/qwen2/{tokenizer.json,tokenizer_config.json,chat_template.jinja} "$Q05/"
  fi
  "$EXAMPLES/prefix_sharing" --model "$Q05" --prefix 2000 --k 8 --suffix 32 --repeats 2 \
    --out "$RUN/candidates-q05.json"
fi
"$EXAMPLES/prefix_sharing" --model "$GYM/policy" --prefix 2000 --k 8 --suffix 32 --repeats 10 \
  --out "$RUN/candidates-gym.json"

# 2. padv score, 8 rollouts sharing a system prompt.
if [ "$WHAT" = all ]; then
  python3 scripts/make_shared_prefix_trajectories.py "$RUN/shared-q05.jsonl" 8 700 30
  for b in 8 1; do
    "$PADV" score --policy "$Q05" --reference "$Q05" --renderer chat-template \
      --input "$RUN/shared-q05.jsonl" --out "$RUN/score-q05-b$b" --no-cache --batch-size "$b" >/dev/null
  done
  s8="$(median_seconds "$RUN/score-q05-b8/run.json")"
  s1="$(median_seconds "$RUN/score-q05-b1/run.json")"
  echo "padv score, 0.5B shape: batch 8 $s8 s, batch 1 $s1 s"
fi
python3 scripts/make_shared_prefix_trajectories.py "$RUN/shared-gym.jsonl" 8 295 6
for i in $(seq 1 10); do
  for b in 8 1; do
    "$PADV" score --policy "$GYM/policy" --reference "$GYM/reference" --renderer chat-template \
      --input "$RUN/shared-gym.jsonl" --out "$RUN/score-gym-b$b-$i" --no-cache --batch-size "$b" >/dev/null
  done
done
s8="$(median_seconds "$RUN"/score-gym-b8-*/run.json)"
s1="$(median_seconds "$RUN"/score-gym-b1-*/run.json)"
echo "padv score, gym pair: batch 8 $s8 s, batch 1 $s1 s (medians of 10)"
machine_note prefix_sharing end

python3 - "$RUN" <<'PY'
import glob, json, os, statistics, sys
run = sys.argv[1]
def secs(pattern):
    return statistics.median(json.load(open(p))["seconds"] for p in glob.glob(os.path.join(run, pattern)))
def max_diff(a, b):  # largest log-prob difference between two records.jsonl files
    d = 0.0
    for la, lb in zip(open(a), open(b)):
        for sa, sb in zip(json.loads(la)["steps"], json.loads(lb)["steps"]):
            for key in ("policy", "reference"):
                d = max([d] + [abs(x - y) for x, y in zip(sa[key], sb[key])])
    return d
def tokens(pattern):
    p = sorted(glob.glob(os.path.join(run, pattern)))[0]
    s = json.load(open(p))
    return s["tokens"] // max(s["trajectories"], 1)
rows = []
for name, label in (("q05", "Qwen2.5-0.5B shape"), ("gym", "gym pair (policy)")):
    path = os.path.join(run, f"candidates-{name}.json")
    if os.path.exists(path):
        c = json.load(open(path))
        rows.append((f"K = {c['k']} continuations of {c['suffix_tokens']} tokens after a {c['prefix_tokens']}-token "
                     f"history (best of {c['repeats']}; positions {c['positions_shared']} vs {c['positions_independent']}, "
                     f"largest log-prob difference {c['max_abs_logprob_diff']:.1e})", label, c["shared_s"], c["independent_s"]))
for name, label, b8, b1 in (("q05", "Qwen2.5-0.5B shape", "score-q05-b8/run.json", "score-q05-b1/run.json"),
                            ("gym", "gym pair", "score-gym-b8-*/run.json", "score-gym-b1-*/run.json")):
    if glob.glob(os.path.join(run, b8)):
        n = len(glob.glob(os.path.join(run, b8)))
        how = "one run" if n == 1 else f"median of {n}"
        first = lambda pattern: sorted(glob.glob(os.path.join(run, pattern)))[0].replace("run.json", "records.jsonl")
        rows.append((f"`padv score`, 8 rollouts sharing a system prompt ({tokens(b8)} tokens each; {how}; "
                     f"largest log-prob difference {max_diff(first(b8), first(b1)):.1e})",
                     label, secs(b8), secs(b1)))
summary = [dict(what=w, checkpoint=c, shared_s=s, independent_s=i, ratio_shared_over_independent=s / i)
           for w, c, s, i in rows]
json.dump(summary, open(os.path.join(run, "summary.json"), "w"), indent=1)
print("| what | checkpoint | shared | independent | shared / independent |")
print("|---|---|---|---|---|")
for w, c, s, i in rows:
    print(f"| {w} | {c} | {s:.3f} s | {i:.3f} s | **{s / i:.2f}×** |")
PY
