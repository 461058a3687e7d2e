#!/usr/bin/env python3
"""Loads a gym pair in Hugging Face transformers and checks it against padv.

Developer-side (needs torch and transformers; CI never runs it). For the first N
trajectories a `padv demo` wrote for the policy player:

1. the chat template applied by transformers gives the same token counts per message as
   `padv render --renderer chat-template` (and the ids decode back to the same text);
2. a float64 transformers forward pass of the policy and the reference gives the action
   tokens' log-probs that padv wrote into records.jsonl (reports the largest difference).

    python scripts/check_gym_pair_transformers.py --pair crates/padv-gym/pair \\
        --demo padv-demo --padv target/debug/padv --n 30
"""
import argparse
import json
import subprocess
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def read_jsonl(path, n):
    out = []
    with open(path) as f:
        for line in f:
            if line.strip():
                out.append(json.loads(line))
            if len(out) == n:
                break
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pair", required=True)
    ap.add_argument("--demo", required=True, help="a padv demo output directory")
    ap.add_argument("--padv", default="target/debug/padv")
    ap.add_argument("--n", type=int, default=30)
    a = ap.parse_args()

    tok = AutoTokenizer.from_pretrained(f"{a.pair}/policy")
    models = {
        name: AutoModelForCausalLM.from_pretrained(f"{a.pair}/{name}", dtype=torch.float64).eval()
        for name in ["policy", "reference"]
    }
    trajs = read_jsonl(f"{a.demo}/policy/trajectories.jsonl", a.n)
    records = read_jsonl(f"{a.demo}/policy/records.jsonl", a.n)
    path = "/tmp/check_gym_pair.jsonl"
    with open(path, "w") as f:
        for t in trajs:
            f.write(json.dumps(t) + "\n")
    rendered = json.loads(
        subprocess.check_output(
            [a.padv, "render", "--input", path, "--renderer", "chat-template",
             "--model", f"{a.pair}/policy", "--json", "--limit", str(len(trajs))]
        )
    )
    assert len(rendered) == len(trajs), (len(rendered), len(trajs))
    assistant = tok.convert_tokens_to_ids("<|assistant|>")
    end = tok.convert_tokens_to_ids("<|end|>")
    same_ids = 0
    worst = {"policy": 0.0, "reference": 0.0}
    for t, rec, r in zip(trajs, records, rendered):
        assert rec["id"] == t["id"] == r["id"], (rec["id"], t["id"], r["id"])
        ids = tok.apply_chat_template(t["messages"], tokenize=True, return_dict=False)
        if isinstance(ids, dict):
            ids = ids["input_ids"]
        # padv's spans cover every token but the generation prompt (the <|assistant|> header)
        # before each action: encoded span by span they must give transformers' ids with
        # those headers left out, with padv's token count per span.
        pieces = [tok.encode(s["text"], add_special_tokens=False) for s in r["spans"]]
        counts_ok = all(len(p) == s["tokens"] for p, s in zip(pieces, r["spans"]))
        flat = [i for p in pieces for i in p]
        if counts_ok and flat == [i for i in ids if i != assistant]:
            same_ids += 1
        # Action tokens: after each <|assistant|> header up to and including <|end|>.
        targets, inside = [], False
        for p, i in enumerate(ids):
            if inside:
                targets.append(p)
                if i == end:
                    inside = False
            elif i == assistant:
                inside = True
        x = torch.tensor([ids])
        for name, m in models.items():
            with torch.no_grad():
                lp = torch.log_softmax(m(x).logits[0].double(), dim=-1)
            got = [float(lp[p - 1, ids[p]]) for p in targets]
            key = "policy" if name == "policy" else "reference"
            want = [v for s in rec["steps"] for v in s[key]]
            assert len(got) == len(want), (t["id"], len(got), len(want))
            worst[name] = max(worst[name], max(abs(g - w) for g, w in zip(got, want)))
    print(
        f"{a.pair}: {same_ids}/{len(trajs)} trajectories with identical token ids; "
        f"max |log-prob difference| vs padv records: policy {worst['policy']:.2e}, "
        f"reference {worst['reference']:.2e} (padv f32 vs transformers f64)"
    )
    return 0 if same_ids == len(trajs) and max(worst.values()) < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
