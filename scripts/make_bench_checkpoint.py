"""Writes a random-weight checkpoint with a real model's shape, for speed/memory benchmarks.

Run:  PYTHON scripts/make_bench_checkpoint.py --out DIR [--shape qwen2.5-0.5b] [--seed 0]
      (scripts/bench/engine_vs_pytorch.sh runs it with the venv it makes, bench-out/venv)

Developer-side only (CI never runs it); needs numpy + safetensors, not torch. The output
(about 2 GB of float32 for qwen2.5-0.5b) does not belong in git: bench-out/ is ignored.

Contents of DIR:
  config.json        Qwen2 config in the Hub's style (rope_theta / torch_dtype keys) with the
                     chosen shape; qwen2.5-0.5b = hidden 896, 24 layers, 14 query / 2 KV heads,
                     intermediate 4864, vocab 151936, tied embeddings, q/k/v bias,
                     rope_theta 1e6, max_position_embeddings 32768.
  model.safetensors  float32 weights with the Hugging Face tensor names; written with numpy.
  tokenizer files    copied from crates/padv-engine/tests/fixtures/tokenizer/ (the tiny
                     512-id byte-level BPE). Its ids all lie below 512, inside the 151936-row
                     embedding, so every id is valid; the model simply never sees ids >= 512.
                     Throughput depends on the sequence length and the vocabulary size of the
                     output layer (151936 here), not on which ids occur.

Weights: deterministic (numpy default_rng(seed)); matrices ~ N(0, 1/fan_in), embeddings
~ N(0, 0.05^2), biases ~ N(0, 0.01^2), norm weights 1, so logits spread over a few nats
instead of the near-uniform output of a 0.02-std init.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

import fixture_lib as fl

SHAPES = {
    "qwen2.5-0.5b": dict(hidden=896, layers=24, heads=14, kv_heads=2, intermediate=4864, vocab=151936),
    "qwen2.5-1.5b": dict(hidden=1536, layers=28, heads=12, kv_heads=2, intermediate=8960, vocab=151936),
}


def config(shape):
    return {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "attention_dropout": 0.0,
        "bos_token_id": None,
        "eos_token_id": 2,
        "pad_token_id": 0,
        "hidden_act": "silu",
        "hidden_size": shape["hidden"],
        "initializer_range": 0.02,
        "intermediate_size": shape["intermediate"],
        "max_position_embeddings": 32768,
        "max_window_layers": shape["layers"],
        "num_attention_heads": shape["heads"],
        "num_hidden_layers": shape["layers"],
        "num_key_value_heads": shape["kv_heads"],
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "sliding_window": None,
        "use_sliding_window": False,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
        "use_cache": True,
        "vocab_size": shape["vocab"],
    }


def weights(shape, seed):
    """Hugging Face Qwen2 tensor names -> float32 arrays."""
    rng = np.random.default_rng(seed)
    h, inter, v = shape["hidden"], shape["intermediate"], shape["vocab"]
    head_dim = h // shape["heads"]
    kv = shape["kv_heads"] * head_dim

    def mat(rows, cols):
        return (rng.standard_normal((rows, cols), dtype=np.float32) / np.float32(np.sqrt(cols))).astype(np.float32)

    def vec(n, std):
        return (rng.standard_normal(n, dtype=np.float32) * np.float32(std)).astype(np.float32)

    out = {"model.embed_tokens.weight": rng.standard_normal((v, h), dtype=np.float32) * np.float32(0.05)}
    for i in range(shape["layers"]):
        p = f"model.layers.{i}."
        out[p + "input_layernorm.weight"] = np.ones(h, dtype=np.float32)
        out[p + "post_attention_layernorm.weight"] = np.ones(h, dtype=np.float32)
        out[p + "self_attn.q_proj.weight"] = mat(h, h)
        out[p + "self_attn.q_proj.bias"] = vec(h, 0.01)
        out[p + "self_attn.k_proj.weight"] = mat(kv, h)
        out[p + "self_attn.k_proj.bias"] = vec(kv, 0.01)
        out[p + "self_attn.v_proj.weight"] = mat(kv, h)
        out[p + "self_attn.v_proj.bias"] = vec(kv, 0.01)
        out[p + "self_attn.o_proj.weight"] = mat(h, h)
        out[p + "mlp.gate_proj.weight"] = mat(inter, h)
        out[p + "mlp.up_proj.weight"] = mat(inter, h)
        out[p + "mlp.down_proj.weight"] = mat(h, inter)
    out["model.norm.weight"] = np.ones(h, dtype=np.float32)
    return out


def main():
    ap = argparse.ArgumentParser(description="random-weight benchmark checkpoint (Qwen2 architecture)")
    ap.add_argument("--out", required=True, type=Path, help="output folder (created)")
    ap.add_argument("--shape", default="qwen2.5-0.5b", choices=sorted(SHAPES))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    shape = SHAPES[args.shape]
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    tensors = weights(shape, args.seed)
    n_params = sum(a.size for a in tensors.values())
    save_file(tensors, str(args.out / "model.safetensors"), metadata={"format": "pt"})
    cfg = {k: v for k, v in config(shape).items() if v is not None or k == "sliding_window"}
    (args.out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copy(fl.TOKENIZER_DIR / name, args.out / name)
    size = (args.out / "model.safetensors").stat().st_size
    print(f"{args.shape}: {n_params / 1e6:.1f} M parameters, {size / 2**30:.2f} GiB, {time.time() - t0:.1f} s -> {args.out}")


if __name__ == "__main__":
    main()
