"""Tiny random-weight checkpoint definitions for the padv model parity fixtures.

One entry per family: the config.json dict to commit (hub style: most use the legacy
`rope_theta` / `rope_scaling` keys that real checkpoints on the Hub carry; qwen3 and olmo2
keep the transformers-5 `rope_parameters` form so both spellings are covered), the
tokenizer folder to ship, how to randomise norm weights, and "sensitivity" variants: config
edits that MUST change the log-probs, proving the fixture exercises that feature.
Imported by make_model_fixtures.py.
"""

from __future__ import annotations

VOCAB = 512
PAD, EOS_CHATML, BOS, EOT = 0, 2, 3, 6  # ids in the fixture tokenizer

COMMON = {
    "vocab_size": VOCAB,
    "max_position_embeddings": 256,
    "rms_norm_eps": 1e-6,
    "pad_token_id": PAD,
    "torch_dtype": "float32",
}


def _no_bos():
    return {"bos_token_id": None, "eos_token_id": EOS_CHATML}


def _bos():
    return {"bos_token_id": BOS, "eos_token_id": EOT}


FAMILIES = {
    "llama": {
        "tokenizer": "tokenizer_bos",
        "seed": 11,
        "norm_offset": 1.0,
        "config_style": "legacy",
        "config": {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            **COMMON,
            **_bos(),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "hidden_act": "silu",
            "attention_bias": False,
            "mlp_bias": False,
            "rope_theta": 10000.0,
            # head_dim 8 -> wavelengths 6.3, 63, 628, 6283: one band unscaled (< 64/4),
            # one smoothed, two divided by 8 (> 64).
            "rope_scaling": {
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 64,
            },
            "tie_word_embeddings": False,
        },
        "sensitivity": {"rope_scaling removed": {"rope_scaling": None}},
        "sharded": True,
    },
    "qwen2": {
        "tokenizer": "tokenizer",
        "seed": 12,
        "norm_offset": 1.0,
        "config_style": "legacy",
        "config": {
            "architectures": ["Qwen2ForCausalLM"],
            "model_type": "qwen2",
            **COMMON,
            **_no_bos(),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "hidden_act": "silu",
            "rope_theta": 1000000.0,
            "use_sliding_window": False,
            "sliding_window": None,
            "max_window_layers": 2,
            "tie_word_embeddings": True,
        },
        "sensitivity": {"rope_theta 10000": {"rope_theta": 10000.0}},
    },
    "qwen3": {
        "tokenizer": "tokenizer",
        "seed": 13,
        "norm_offset": 1.0,
        "config_style": "transformers5",
        "config": {
            "architectures": ["Qwen3ForCausalLM"],
            "model_type": "qwen3",
            **COMMON,
            **_no_bos(),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 16,  # != hidden / heads = 8
            "hidden_act": "silu",
            "attention_bias": False,
            "rope_theta": 10000.0,
            "use_sliding_window": False,
            "sliding_window": None,
            "tie_word_embeddings": False,
        },
        "sensitivity": {},
    },
    "mistral": {
        "tokenizer": "tokenizer",
        "seed": 14,
        "norm_offset": 1.0,
        "config_style": "legacy",
        "config": {
            "architectures": ["MistralForCausalLM"],
            "model_type": "mistral",
            **COMMON,
            **_no_bos(),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 16,  # != hidden / heads = 8
            "hidden_act": "silu",
            "rope_theta": 10000.0,
            "sliding_window": 24,
            "tie_word_embeddings": False,
        },
        "sensitivity": {"sliding_window removed": {"sliding_window": None}},
    },
    "gemma2": {
        "tokenizer": "tokenizer_bos",
        "seed": 15,
        "norm_offset": 0.0,  # Gemma RMSNorm scales by (1 + w)
        "config_style": "legacy",
        "config": {
            "architectures": ["Gemma2ForCausalLM"],
            "model_type": "gemma2",
            **COMMON,
            **_bos(),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 3,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "hidden_activation": "gelu_pytorch_tanh",
            "hidden_act": "gelu_pytorch_tanh",
            "rope_theta": 10000.0,
            "attention_bias": False,
            "query_pre_attn_scalar": 8,  # != head_dim
            "attn_logit_softcapping": 3.0,
            "final_logit_softcapping": 5.0,
            "sliding_window": 16,  # layers 0 and 2 local, layer 1 global
            "cache_implementation": "hybrid",
            "tie_word_embeddings": True,
        },
        "sensitivity": {
            "sliding_window 4096": {"sliding_window": 4096},
            "attn softcap removed": {"attn_logit_softcapping": None},
            "final softcap removed": {"final_logit_softcapping": None},
            "query_pre_attn_scalar = head_dim": {"query_pre_attn_scalar": 16},
        },
    },
    "gemma3": {
        "tokenizer": "tokenizer_bos",
        "seed": 16,
        "norm_offset": 0.0,
        "config_style": "legacy",
        "config": {
            "architectures": ["Gemma3ForCausalLM"],
            "model_type": "gemma3_text",
            **COMMON,
            **_bos(),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 3,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "hidden_activation": "gelu_pytorch_tanh",
            "rope_theta": 10000.0,
            "rope_local_base_freq": 100.0,
            "rope_scaling": {"rope_type": "linear", "factor": 2.0},
            "attention_bias": False,
            "query_pre_attn_scalar": 24,
            "attn_logit_softcapping": None,
            "final_logit_softcapping": None,
            "sliding_window": 16,
            "sliding_window_pattern": 2,
            "layer_types": ["sliding_attention", "full_attention", "sliding_attention"],
            "tie_word_embeddings": True,
        },
        "sensitivity": {
            "sliding_window 4096": {"sliding_window": 4096},
            "rope_scaling removed": {"rope_scaling": None},
            "rope_local_base_freq = rope_theta": {"rope_local_base_freq": 10000.0},
        },
    },
    "olmo2": {
        "tokenizer": "tokenizer",
        "seed": 17,
        "norm_offset": 1.0,
        "config_style": "transformers5",
        "config": {
            "architectures": ["Olmo2ForCausalLM"],
            "model_type": "olmo2",
            **COMMON,
            **_no_bos(),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "hidden_act": "silu",
            "attention_bias": False,
            "rope_theta": 10000.0,
            "tie_word_embeddings": False,
        },
        "sensitivity": {},
    },
    "phi3": {
        "tokenizer": "tokenizer",
        "seed": 18,
        "norm_offset": 1.0,
        "config_style": "legacy",
        "config": {
            "architectures": ["Phi3ForCausalLM"],
            "model_type": "phi3",
            **COMMON,
            **_no_bos(),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "hidden_act": "silu",
            "rope_theta": 10000.0,
            "partial_rotary_factor": 0.5,  # head_dim 16 -> 8 rotary dims -> 4 factors
            "original_max_position_embeddings": 64,  # factor 256/64 = 4 -> attention factor sqrt(1+ln4/ln64)
            "rope_scaling": {
                "type": "longrope",
                "short_factor": [1.0, 1.25, 1.5, 2.0],
                "long_factor": [1.0, 2.0, 4.0, 8.0],
            },
            "sliding_window": None,
            "tie_word_embeddings": True,
        },
        "sensitivity": {},  # long vs short factors checked per case in make_model_fixtures.py
    },
}
