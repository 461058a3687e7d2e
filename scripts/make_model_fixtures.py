"""Model parity fixtures for padv-engine: tiny random checkpoints + HF log-prob references.

Run:  /work/pyenv/bin/python scripts/make_model_fixtures.py [--family NAME ...]
Needs torch + transformers (CPU is enough, ~1 min) and the tokenizer fixtures written by
make_render_fixtures.py (run that first, or run make_parity_fixtures.py for both).

For each family in model_families.py it writes crates/padv-engine/tests/fixtures/models/<family>/:
  config.json             hub-style config (see model_families.py for legacy vs transformers-5 keys)
  model.safetensors       float32 random weights (llama: model-0000{1,2}-of-00002.safetensors +
                          model.safetensors.index.json instead); qwen2 again in bfloat16 as qwen2_bf16/
  generation_config.json  as transformers writes it
  tokenizer files         copied from tests/fixtures/tokenizer or tokenizer_bos
  expected.json           {family, hf_version, torch_version, dtype_reference: "float64", weights_dtype,
                           config_style, hf_float32_max_abs_diff, sensitivity {edit: max |delta logprob|}, cases: [{name, source, ids,
                           logprob, topk_mean, entropy, vocab_mean}]}
Per case, position j = 0..T-2 describes the distribution p(. | ids[:j+1]) that predicts ids[j+1]:
  logprob[j]    = log p(ids[j+1])
  topk_mean[j]  = mean of the 20 largest log-probs
  entropy[j]    = -sum_v p(v) log p(v)
  vocab_mean[j] = mean over the whole vocabulary of log p(v)
The reference is the checkpoint reloaded from disk with AutoModelForCausalLM
(attn_implementation="eager"), converted with .double(); note that transformers builds the
RoPE inverse frequencies and cos/sin tables in float32 even then. hf_float32_max_abs_diff is
the largest |logprob f32 - logprob f64| of the HF model itself: a tolerance guide.

Weights are random but deterministic (torch.manual_seed per family): matrices ~ N(0, 1/fan_in),
embeddings ~ N(0, 0.25), an untied lm_head ~ N(0, 9/fan_in), biases ~ N(0, 0.01), norm weights = offset + N(0, 0.04) (offset 0 for
Gemma's (1 + w) norms), so logits have a spread of a few nats and every parameter matters.
Each family's "sensitivity" config edits must change the log-probs (asserted), which shows
that the fixture really exercises sliding windows, softcapping, RoPE scaling, ...
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM

import fixture_lib as fl
from model_families import FAMILIES, VOCAB

MODELS = fl.FIXTURES / "models"
TOPK = 20
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"]


def sequences(bos):
    """The 4 id sequences every family is scored on (BOS families get [bos] + paper ids)."""
    cases = {c["name"]: c for c in json.loads((fl.FIXTURES / "render_cases.json").read_text())}

    def paper(name, n):
        ids = cases[name]["paper"]["ids_bos" if bos else "ids"]
        return ids[:n]

    rng = np.random.default_rng(20240601)
    out = [
        ("edge_empty", "render case edge_empty, paper ids" + (" with BOS" if bos else ""), paper("edge_empty", 10_000)),
        ("tau2_prefix120", "render case tau2_airline_tool_calls, first 120 paper ids" + (" (BOS first)" if bos else ""),
         paper("tau2_airline_tool_calls", 120)),
        ("whowhen_ag_prefix48", "render case whowhen_algorithm_generated, first 48 paper ids" + (" (BOS first)" if bos else ""),
         paper("whowhen_algorithm_generated", 48)),
        ("random100", "100 ids uniform in [0, 512), numpy default_rng(20240601)",
         [int(x) for x in rng.integers(0, VOCAB, size=100)]),
    ]
    for _, _, ids in out:
        assert 40 <= len(ids) <= 120, len(ids)
    return out


def randomise(model, seed, norm_offset):
    """Deterministic random weights with a useful spread (see module doc)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda x: x[0]):
            if p.ndim == 1 and "norm" in name:
                p.copy_(norm_offset + 0.2 * torch.randn(p.shape, generator=gen))
            elif p.ndim == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif "embed_tokens" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            elif name == "lm_head.weight":
                p.copy_(3.0 * torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1]))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1]))


def stats(model, ids):
    """float64 statistics per predicted position (see module doc)."""
    with torch.inference_mode():
        logits = model(torch.tensor([ids])).logits[0].to(torch.float64)
    lp = torch.log_softmax(logits, dim=-1)[:-1]
    target = torch.tensor(ids[1:])
    return {
        "logprob": lp.gather(1, target[:, None])[:, 0],
        "topk_mean": lp.topk(TOPK, dim=-1).values.mean(dim=-1),
        "entropy": -(lp.exp() * lp).sum(dim=-1),
        "vocab_mean": lp.mean(dim=-1),
    }


def load(path, dtype):
    return AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager", dtype=dtype).eval()


def variant_logprobs(folder, edits, ids_list):
    """Log-probs of the same weights under an edited config.json (float64)."""
    with tempfile.TemporaryDirectory() as tmp:
        for f in folder.iterdir():
            if f.suffix in (".safetensors",) or f.name.endswith(".index.json"):
                (Path(tmp) / f.name).symlink_to(f)
        cfg = json.loads((folder / "config.json").read_text())
        for k, v in edits.items():
            if k == "long_factor":
                cfg["rope_scaling"]["long_factor"] = v
            else:
                cfg[k] = v
        (Path(tmp) / "config.json").write_text(json.dumps(cfg))
        model = load(tmp, torch.float64)
        return [stats(model, ids)["logprob"] for ids in ids_list]


def build(family, spec, out_dir, weights_dtype=torch.float32, seed_model=None):
    """Writes one checkpoint folder; returns the model (float32, random weights)."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    legacy = {k: v for k, v in spec["config"].items() if v is not None or k in ("rope_scaling", "sliding_window")}
    (out_dir / "config.json").write_text(json.dumps(legacy, indent=2) + "\n")
    if seed_model is None:
        cfg = AutoConfig.from_pretrained(out_dir)
        model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager", dtype=torch.float32)
        randomise(model, spec["seed"], spec["norm_offset"])
        if cfg.tie_word_embeddings:
            assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    else:
        model = seed_model
    to_save = copy.deepcopy(model).to(weights_dtype)
    kwargs = {}
    if spec.get("sharded") and weights_dtype == torch.float32:
        total = sum(p.numel() * 4 for p in model.parameters())
        kwargs["max_shard_size"] = int(total * 0.6)
    to_save.save_pretrained(out_dir, **kwargs)
    if spec["config_style"] == "legacy":
        legacy["torch_dtype"] = "bfloat16" if weights_dtype == torch.bfloat16 else "float32"
        (out_dir / "config.json").write_text(json.dumps(legacy, indent=2) + "\n")
    tok_dir = fl.FIXTURES / spec["tokenizer"]
    for name in TOKENIZER_FILES:
        shutil.copy(tok_dir / name, out_dir / name)
    return model


def check_reload(model, out_dir, weights_dtype):
    """The files on disk hold exactly the weights we generated (rounded to weights_dtype)."""
    reloaded = load(out_dir, weights_dtype)
    ref = {k: v.to(weights_dtype) for k, v in model.state_dict().items()}
    got = reloaded.state_dict()
    assert set(ref) == set(got), set(ref) ^ set(got)
    for k in ref:
        assert torch.equal(ref[k], got[k]), f"{out_dir.name}: {k} differs after reload"
    assert reloaded.config.to_dict()["rope_parameters"] == model.config.to_dict()["rope_parameters"]


def to_list(t):
    return [float(x) for x in t.tolist()]


def reference(family, spec, out_dir, weights_dtype):
    """expected.json for one folder; runs the sensitivity checks."""
    seqs = sequences(spec["tokenizer"] == "tokenizer_bos")
    m64 = load(out_dir, torch.float64)
    m32 = load(out_dir, torch.float32)
    cases, worst32 = [], 0.0
    for name, source, ids in seqs:
        s = stats(m64, ids)
        s32 = stats(m32, ids)
        worst32 = max(worst32, float((s["logprob"] - s32["logprob"]).abs().max()))
        case = {"name": name, "source": source, "ids": ids}
        case.update({k: to_list(v) for k, v in s.items()})
        assert len(case["logprob"]) == len(ids) - 1
        cases.append(case)
    expected = {
        "family": family,
        "model_type": spec["config"]["model_type"],
        "hf_version": transformers.__version__,
        "torch_version": torch.__version__,
        "dtype_reference": "float64",
        "weights_dtype": "bfloat16" if weights_dtype == torch.bfloat16 else "float32",
        "config_style": spec["config_style"],
        "tokenizer": spec["tokenizer"],
        "topk": TOPK,
        "hf_float32_max_abs_diff": worst32,
        "cases": cases,
    }
    if weights_dtype == torch.bfloat16:
        mbf = load(out_dir, torch.bfloat16)
        worst = 0.0
        for (name, _, ids), case in zip(seqs, cases):
            with torch.inference_mode():
                logits = mbf(torch.tensor([ids])).logits[0].float()
            lp = torch.log_softmax(logits, -1)[:-1].gather(1, torch.tensor(ids[1:])[:, None])[:, 0]
            worst = max(worst, max(abs(a - b) for a, b in zip(lp.tolist(), case["logprob"])))
        expected["hf_bfloat16_compute_max_abs_diff"] = worst
    # Sensitivity: every listed config edit must move the log-probs.
    ids_list = [ids for _, _, ids in seqs]
    expected["sensitivity"] = {}
    base = [torch.tensor(c["logprob"], dtype=torch.float64) for c in cases]
    for label, edits in spec["sensitivity"].items():
        alt = variant_logprobs(out_dir, edits, ids_list)
        delta = max(float((a - b).abs().max()) for a, b in zip(alt, base))
        assert delta > 1e-3, f"{family}: '{label}' does not change the log-probs ({delta})"
        print(f"  sensitivity {label!r}: max |delta logprob| = {delta:.3g}")
        expected["sensitivity"][label] = delta
    if family == "phi3":
        # Long factors apply only when the sequence is longer than original_max_position_embeddings.
        cfg = json.loads((out_dir / "config.json").read_text())
        alt = variant_logprobs(out_dir, {"long_factor": cfg["rope_scaling"]["short_factor"]}, ids_list)
        for (name, _, ids), a, b in zip(seqs, alt, base):
            delta = float((a - b).abs().max())
            if len(ids) > cfg["original_max_position_embeddings"]:
                assert delta > 1e-3, f"phi3 {name}: long factors unused ({delta})"
            else:
                assert delta == 0.0, f"phi3 {name}: long factors used on a short sequence ({delta})"
            print(f"  phi3 {name} (T={len(ids)}): long->short factors max |delta| = {delta:.3g}")
            expected["sensitivity"][f"long_factor := short_factor, case {name}"] = delta
    fl.write_json(out_dir / "expected.json", expected)
    return expected


def folder_size(path):
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", nargs="*", help="only these families (default: all)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    families = args.family or list(FAMILIES)
    for family in families:
        spec = FAMILIES[family]
        out_dir = MODELS / family
        model = build(family, spec, out_dir)
        check_reload(model, out_dir, torch.float32)
        exp = reference(family, spec, out_dir, torch.float32)
        print(f"{family:<10} {folder_size(out_dir) / 1024:7.1f} KiB  f32-vs-f64 {exp['hf_float32_max_abs_diff']:.2e}")
        if family == "qwen2":
            bf_dir = MODELS / "qwen2_bf16"
            build(family, spec, bf_dir, weights_dtype=torch.bfloat16, seed_model=model)
            check_reload(model, bf_dir, torch.bfloat16)
            exp = reference(family, spec, bf_dir, torch.bfloat16)
            print(f"qwen2_bf16 {folder_size(bf_dir) / 1024:7.1f} KiB  bf16-compute-vs-f64 {exp['hf_bfloat16_compute_max_abs_diff']:.2e}")
    total = folder_size(fl.FIXTURES)
    print(f"fixtures total {total / 1024:.1f} KiB")
    assert total < 8 * 1024 * 1024


if __name__ == "__main__":
    main()
