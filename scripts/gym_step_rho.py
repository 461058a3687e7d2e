#!/usr/bin/env python3
"""Spearman of step PA with the gym's soft (and hard) advantage, for any records of demo rollouts.

The demo writes `ground_truth.jsonl` (A_soft and A* of every step) next to each player's
`trajectories.jsonl`; `padv score` over those trajectories with another reference (e.g.
`--reference-merge linear:0.25,0.5`) writes records whose step PA this script pairs with the
truth, step by step (the k-th action message of a trajectory is its k-th truth step).

    scripts/gym_step_rho.py --truth DEMO/ground_truth.jsonl --records OUT/ref-linear-a0.5/records.jsonl [--beta 0.1]

Prints one JSON line: steps paired, Spearman(step PA, A_soft) and Spearman(step PA, A*), both
pooled over all steps (average ranks for ties). Run on the demo's own records
(DEMO/policy/records.jsonl) it reproduces summary.json's `step_pa_vs_soft.spearman_pooled`:
the check that this script and the demo pair steps alike. Standard library only.
"""
import argparse
import json
import math
import sys


def ranks(xs):
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    r = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        avg = (i + j) / 2.0 + 1.0
        for k in range(i, j + 1):
            r[order[k]] = avg
        i = j + 1
    return r


def pearson(a, b):
    n = len(a)
    ma, mb = sum(a) / n, sum(b) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    va = sum((x - ma) ** 2 for x in a)
    vb = sum((y - mb) ** 2 for y in b)
    return cov / math.sqrt(va * vb) if va > 0 and vb > 0 else float("nan")


def spearman(a, b):
    return pearson(ranks(a), ranks(b))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--truth", required=True)
    ap.add_argument("--records", required=True)
    ap.add_argument("--beta", type=float, default=0.1)
    args = ap.parse_args()
    truth = {}
    with open(args.truth) as f:
        for n, line in enumerate(f, 1):
            t = json.loads(line)
            if t.get("soft") is None:
                sys.exit(f"{args.truth}:{n}: no soft truth")
            truth[t["id"]] = t
    pa, soft, hard = [], [], []
    with open(args.records) as f:
        for n, line in enumerate(f, 1):
            r = json.loads(line)
            t = truth.get(r["id"])
            if t is None:
                sys.exit(f"{args.records}:{n}: id {r['id']!r} not in {args.truth}")
            by_msg = {s["message_index"]: s for s in r["steps"]}
            for k, m in enumerate(t["action_messages"]):
                s = by_msg.get(m)
                if s is None:
                    sys.exit(f"{args.records}:{n}: {r['id']} has no step at message {m}")
                v = args.beta * sum(p - q for p, q in zip(s["policy"], s["reference"]))
                if not math.isfinite(v):
                    sys.exit(f"{args.records}:{n}: {r['id']} message {m}: non-finite PA")
                pa.append(v)
                soft.append(t["soft"][k]["advantage"])
                hard.append(t["truth"]["steps"][k]["advantage"])
    if not pa:
        sys.exit("nothing to evaluate: no steps paired")
    print(json.dumps({"steps": len(pa), "rho_step_pa_soft": spearman(pa, soft),
                      "rho_step_pa_hard": spearman(pa, hard)}))


if __name__ == "__main__":
    main()
