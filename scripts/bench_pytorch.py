"""PyTorch baseline for padv's scoring benchmark: one forward pass, the reference way.

Run (scripts/bench/engine_vs_pytorch.sh does, with the venv it makes: torch, transformers):
  bench-out/venv/bin/python scripts/bench_pytorch.py --model bench-out/qwen2.5-0.5b \\
      --input ../shared/data/tau2_bench_leaderboard/airline__gpt-5.4__ironshell__1trial.json \\
      --lengths 512 2048 8192 --threads 2 --out bench-out/results.json [--ids-out FILE]

Developer-side only (CI never runs it). For each length T:
  1. Input: tau2 simulations from --input, in file order, each rendered the paper way
     (one text per message, tokenised separately without special tokens, concatenated;
     BOS first when the tokenizer has one) and appended one after another until there are
     at least T tokens; the sequence is then cut to exactly T (the last trajectory loses its
     tail). The ids, the per-token action mask (1 = token of an assistant message) and the
     message spans [start, end, simulation_index, message_index, is_action] are written to
     --ids-out (default: <out>.ids.json) so the Rust benchmark can score the same ids.
  2. Measurement, in a fresh subprocess per length so that peak RSS is per length:
     AutoModelForCausalLM.from_pretrained (float32, attn_implementation = --attn, default sdpa),
     torch.set_num_threads(threads), then under torch.inference_mode(): one forward pass over
     the T ids, log_softmax over the full vocabulary in float32, gather of the next-token
     log-probs, and the mean of the top-20 log-probs per position (what the confidence
     baselines need). Wall clock of that whole step is reported (best of 1), with the
     forward and post-processing parts and the model load time separately.
     Peak RSS = resource.getrusage(RUSAGE_SELF).ru_maxrss, once after loading and once at the end.
  3. --out gets {"config": ..., "results": [{T, load_s, forward_s, postprocess_s, score_s,
     tokens_per_s, rss_after_load_mib, peak_rss_mib, logprob_sum, action_logprob_sum,
     topk_mean_sum, logprob_head}]}; the sums and the first 16 log-probs let the Rust side
     spot-check its numbers on the same ids.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import fixture_lib as fl

TOPK = 20


def build_ids(tokenizer, input_file, length):
    """Paper-rendered tau2 trajectories concatenated to exactly `length` ids."""
    sims = json.loads(Path(input_file).read_text())["simulations"]
    bos = tokenizer.bos_token_id
    ids, spans = [], []
    for si, sim in enumerate(sims):
        traj = fl.tau2_trajectory_from_sim(sim, limit=None)
        if bos is not None:
            ids.append(bos)
        for mi, (text, msg) in enumerate(zip(fl.paper_texts(traj), traj["messages"])):
            piece = tokenizer(text, add_special_tokens=False).input_ids
            spans.append([len(ids), len(ids) + len(piece), si, mi, msg["is_action"]])
            ids.extend(piece)
        if len(ids) >= length:
            break
    if len(ids) < length:
        sys.exit(f"{input_file}: only {len(ids)} tokens in all simulations, {length} requested")
    ids = ids[:length]
    spans = [[s, min(e, length), si, mi, a] for s, e, si, mi, a in spans if s < length]
    mask = [0] * length
    for s, e, _, _, a in spans:
        if a:
            for t in range(s, e):
                mask[t] = 1
    return {"T": length, "ids": ids, "action_mask": mask, "spans": spans}


def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def worker(args):
    """Runs in its own process: load, score one sequence, print one JSON line."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(args.threads)
    entry = next(e for e in json.loads(Path(args.ids_out).read_text())["sequences"] if e["T"] == args.length)
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32, attn_implementation=args.attn)
    model.eval().to(args.device)
    load_s = time.perf_counter() - t0
    rss_load = rss_mib()
    ids = torch.tensor([entry["ids"]], device=args.device)
    mask = torch.tensor(entry["action_mask"][1:], dtype=torch.bool, device=args.device)

    def sync():
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    with torch.inference_mode():
        sync()
        t1 = time.perf_counter()
        logits = model(ids).logits[0].float()
        sync()
        t2 = time.perf_counter()
        logp = torch.log_softmax(logits, dim=-1)[:-1]
        del logits
        lp = logp.gather(1, ids[0, 1:, None])[:, 0]
        topk_mean = logp.topk(TOPK, dim=-1).values.mean(dim=-1)
        del logp
        sync()
        t3 = time.perf_counter()
    out = {
        "T": args.length,
        "load_s": load_s,
        "forward_s": t2 - t1,
        "postprocess_s": t3 - t2,
        "score_s": t3 - t1,
        "tokens_per_s": args.length / (t3 - t1),
        "rss_after_load_mib": rss_load,
        "peak_rss_mib": rss_mib(),
        "logprob_sum": float(lp.double().sum()),
        "action_logprob_sum": float(lp.double()[mask].sum()),
        "topk_mean_sum": float(topk_mean.double().sum()),
        "logprob_head": [float(x) for x in lp[:16].tolist()],
    }
    if args.device.startswith("cuda"):
        out["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    print("RESULT " + json.dumps(out), flush=True)


def main():
    ap = argparse.ArgumentParser(description="PyTorch scoring baseline (one forward pass per length)")
    ap.add_argument("--model", required=True)
    ap.add_argument("--input", required=True, help="a tau2 results JSON file")
    ap.add_argument("--lengths", type=int, nargs="+", default=[512, 2048, 8192])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--ids-out", type=Path, help="token ids used (default: <out>.ids.json)")
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--length", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.ids_out is None:
        args.ids_out = args.out.with_suffix(".ids.json")
    if args.worker:
        worker(args)
        return

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    seqs = [build_ids(tokenizer, args.input, t) for t in args.lengths]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fl.write_json(args.ids_out, {"model": str(args.model), "input": str(args.input), "sequences": seqs})
    results = []
    for t in args.lengths:
        cmd = [sys.executable, __file__, "--worker", "--model", str(args.model), "--input", args.input,
               "--threads", str(args.threads), "--out", str(args.out), "--ids-out", str(args.ids_out),
               "--attn", args.attn, "--device", args.device, "--length", str(t)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if proc.returncode != 0 or line is None:
            sys.exit(f"T={t}: worker failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        res = json.loads(line[len("RESULT "):])
        results.append(res)
        print(f"T={t:>6}: score {res['score_s']:.2f} s (forward {res['forward_s']:.2f} s), load {res['load_s']:.2f} s, "
              f"peak RSS {res['peak_rss_mib']:.0f} MiB", flush=True)
    import torch
    import transformers

    report = {
        "config": {
            "model": str(args.model),
            "input": str(args.input),
            "threads": args.threads,
            "attn_implementation": args.attn,
            "device": args.device,
            "dtype": "float32",
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "ids_file": str(args.ids_out),
        },
        "results": results,
    }
    fl.write_json(args.out, report)


if __name__ == "__main__":
    main()
