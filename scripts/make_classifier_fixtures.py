"""Sequence-classification (reward model) parity fixtures for padv-engine.

Run:  python scripts/make_classifier_fixtures.py      (needs torch + transformers; ~1 min CPU)

For each family in FAMILIES it writes crates/padv-engine/tests/fixtures/models/<family>_cls/:
  config.json            the family's config from model_families.py with
                         architectures = [<Arch>ForSequenceClassification], num_labels 4
                         (id2label), pad_token_id 0
  model.safetensors      float32 random weights (the decoder body as in make_model_fixtures.py,
                         plus the score head `score.weight` [4, hidden], no lm_head)
  tokenizer files        copied from tests/fixtures/tokenizer or tokenizer_bos
  expected.json          {family, hf_version, torch_version, dtype_reference: "float64",
                          hf_float32_max_abs_diff, cases: [{name, ids, pooled_index, logits, score}],
                          wildreward: {case, prompt, ids, logits, score}}
Per case, `logits` are transformers' float64 logits of the model reloaded from disk
(AutoModelForSequenceClassification, eager attention, .double()) for a batch of one
sequence: the score head applied at the last non-pad token (`pooled_index`, HF's rule:
argmax of position * [id != pad_token_id], i.e. 0 when every token is pad). `score` is the
reference implementation's WildReward score 1 + sum(sigmoid(logits)).

`wildreward` (qwen2_cls and llama_cls) is an end-to-end case: the WildReward prompt of the
render case tau2_airline_tool_calls, rendered HERE in Python from the template in the
reference notes (paper-notes section 8: history "", query = first non-blank user message,
response = "[role]: content" lines with "tool_call: name(args)" lines, args as Python
str(dict), last 24000 characters), tokenized with the checkpoint's tokenizer.json
through the `tokenizers` library (add_special_tokens=True, then the first 4096 ids, as
transformers' right truncation keeps them) and scored. (Not AutoTokenizer: transformers 5
maps a qwen2-typed folder to Qwen2Tokenizer, which swaps in Qwen2's own pre-tokenizer regex
and would not be the tokenizer.json this toy BPE fixture ships; for a real checkpoint the
two agree.) The Rust test renders and
tokenizes the same trajectory with padv's own code and must reach the same ids and score.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
from pathlib import Path

import torch
import transformers
from tokenizers import Tokenizer
from transformers import AutoConfig, AutoModelForSequenceClassification

import fixture_lib as fl
from make_model_fixtures import randomise
from model_families import FAMILIES, PAD

MODELS = fl.FIXTURES / "models"
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"]
NUM_LABELS = 4
# Families whose transformers classes have a sequence-classification head the engine supports.
CLS_FAMILIES = {
    "qwen2": "Qwen2ForSequenceClassification",
    "llama": "LlamaForSequenceClassification",
    "qwen3": "Qwen3ForSequenceClassification",
    "gemma2": "Gemma2ForSequenceClassification",
}
WILDREWARD_FAMILIES = ("qwen2", "llama")

WILDREWARD_TEMPLATE = """# Task Description
You are an expert conversation evaluator. Your task is to judge the **User's Satisfaction** with the Assistant's response based on the conversation context.
Please rate the response on a scale of 1 to 5 integers.

# Scoring Criteria
[1] CLEARLY NEGATIVE / REJECTION
[2] CORRECTION / ERROR POINTER (Negative)
[3] NEUTRAL
[4] POSITIVE ENGAGEMENT
[5] CLEAR SATISFACTION

# Input Data
## Context (History)
{history}

## User Query
{query}

## Assistant Response
{response}

# Output
Based on the criteria above, please output ONLY the integer score (1, 2, 3, 4, or 5)."""


def wildreward_prompt(traj):
    lines = []
    for m in traj["messages"]:
        line = f"[{m['role']}]: {m.get('content') or ''}"
        for c in m.get("tool_calls", []):
            line += f"\ntool_call: {c['name']}({c['arguments']})"
        lines.append(line)
    response = "\n".join(lines)[-24000:]
    query = next(
        (m["content"] for m in traj["messages"]
         if m["role"] in ("user", "human") and m.get("content") and m["content"].strip()),
        "",
    )
    return WILDREWARD_TEMPLATE.format(history="", query=query, response=response)


def cases(bos):
    render = {c["name"]: c for c in json.loads((fl.FIXTURES / "render_cases.json").read_text())}
    ids = render["tau2_airline_tool_calls"]["paper"]["ids_bos" if bos else "ids"][:90]
    ww = render["whowhen_algorithm_generated"]["paper"]["ids_bos" if bos else "ids"][:40]
    assert PAD not in ids[1:] and PAD not in ww[1:]
    return [
        ("tau2_prefix90", ids),
        ("whowhen_prefix40", ww),
        ("right_padded", ww[:30] + [PAD] * 7),  # pooled at the last real token (29)
        ("pad_inside", ww[:10] + [PAD, PAD] + ww[10:20]),  # pads inside do not end it
        ("single_token", ww[:1]),
    ]


def pooled_index(ids):
    nonpad = [i for i, t in enumerate(ids) if t != PAD]
    return nonpad[-1] if nonpad else 0


def score(logits):
    return 1.0 + sum(1.0 / (1.0 + math.exp(-x)) for x in logits)


def build(family, arch):
    spec = FAMILIES[family]
    out = MODELS / f"{family}_cls"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    cfg_dict = {k: v for k, v in spec["config"].items() if v is not None or k in ("rope_scaling", "sliding_window")}
    cfg_dict = copy.deepcopy(cfg_dict)
    cfg_dict["architectures"] = [arch]
    cfg_dict["id2label"] = {str(i): f"LABEL_{i}" for i in range(NUM_LABELS)}
    cfg_dict["label2id"] = {f"LABEL_{i}": i for i in range(NUM_LABELS)}
    cfg_dict["pad_token_id"] = PAD
    (out / "config.json").write_text(json.dumps(cfg_dict, indent=2) + "\n")
    cfg = AutoConfig.from_pretrained(out)
    assert cfg.num_labels == NUM_LABELS
    model = AutoModelForSequenceClassification.from_config(cfg, attn_implementation="eager", dtype=torch.float32)
    randomise(model, spec["seed"] + 100, spec["norm_offset"])
    model.save_pretrained(out)
    # save_pretrained rewrites config.json in transformers' own form; keep the hub-style one.
    (out / "config.json").write_text(json.dumps(cfg_dict, indent=2) + "\n")
    for name in TOKENIZER_FILES:
        shutil.copy(fl.FIXTURES / spec["tokenizer"] / name, out / name)
    return out, spec


def logits_of(model, ids):
    with torch.inference_mode():
        return model(torch.tensor([ids])).logits[0].to(torch.float64)


def main():
    torch.set_num_threads(2)
    for family, arch in CLS_FAMILIES.items():
        out, spec = build(family, arch)
        load = lambda dt: AutoModelForSequenceClassification.from_pretrained(out, attn_implementation="eager", dtype=dt).eval()
        m64, m32 = load(torch.float64), load(torch.float32)
        names = {k for k, _ in m64.named_parameters()}
        assert "score.weight" in names and not any(k.startswith("lm_head") for k in names), names
        bos = spec["tokenizer"] == "tokenizer_bos"
        exp_cases, worst = [], 0.0
        for name, ids in cases(bos):
            l64 = logits_of(m64, ids)
            worst = max(worst, float((l64 - logits_of(m32, ids)).abs().max()))
            lg = [float(x) for x in l64.tolist()]
            exp_cases.append({"name": name, "ids": ids, "pooled_index": pooled_index(ids), "logits": lg, "score": score(lg)})
        # The head must really read the pooled position: a different position gives other logits.
        alt = logits_of(m64, exp_cases[2]["ids"][:30][:-1])
        assert float((alt - torch.tensor(exp_cases[2]["logits"])).abs().max()) > 1e-3
        expected = {
            "family": family,
            "architecture": arch,
            "hf_version": transformers.__version__,
            "torch_version": torch.__version__,
            "dtype_reference": "float64",
            "num_labels": NUM_LABELS,
            "pad_token_id": PAD,
            "hf_float32_max_abs_diff": worst,
            "cases": exp_cases,
        }
        if family in WILDREWARD_FAMILIES:
            render = {c["name"]: c for c in json.loads((fl.FIXTURES / "render_cases.json").read_text())}
            traj = render["tau2_airline_tool_calls"]["trajectory"]
            prompt = wildreward_prompt(traj)
            tok = Tokenizer.from_file(str(out / "tokenizer.json"))
            ids = tok.encode(prompt, add_special_tokens=True).ids[:4096]
            lg = [float(x) for x in logits_of(m64, ids).tolist()]
            expected["wildreward"] = {"case": "tau2_airline_tool_calls", "prompt": prompt, "ids": ids, "logits": lg, "score": score(lg)}
            print(f"  wildreward prompt: {len(prompt)} chars, {len(ids)} ids, score {score(lg):.6f}")
        fl.write_json(out / "expected.json", expected)
        size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
        print(f"{family}_cls {size / 1024:7.1f} KiB  f32-vs-f64 {worst:.2e}")


if __name__ == "__main__":
    main()
