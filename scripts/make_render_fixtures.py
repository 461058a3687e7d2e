"""Tokenizer and rendering parity fixtures for padv-engine (developer-side; needs no torch).

Run:  /work/pyenv/bin/python scripts/make_render_fixtures.py
(or scripts/make_parity_fixtures.py, which runs this and then the model fixtures).
      /work/pyenv/bin/python scripts/make_render_fixtures.py --turns-only
writes only turn_cases.json (and the per-turn templates) from the committed tokenizer.

Writes, under crates/padv-engine/tests/fixtures/:
  tokenizer/       a tiny byte-level BPE (512 ids) trained with `tokenizers.BpeTrainer` on
                   paper-rendered text from /work/shared/data, saved by transformers
                   (`save_pretrained`): tokenizer.json, tokenizer_config.json,
                   chat_template.jinja (Qwen2.5 style) and additional_chat_templates/{llama3,generation,gemma}.jinja
                   (transformers 5.24 names that folder additional_chat_templates/).
                   No BOS token.
  tokenizer_bos/   the same vocabulary with bos_token `<|bos|>` and a post-processor that
                   prepends it when special tokens are requested.
  turn_cases.json  per-turn cases for history-rewriting templates (qwen3.jinja, saved as
                   tokenizer/additional_chat_templates/qwen3.jinja): per action, the
                   expected segment ids (apply_chat_template(msgs[:i], add_generation_prompt=True,
                   tokenize=True) + the generated text encoded alone), the full ids, whether
                   the template rewrites history; plus how each template renders content
                   None vs omitted vs "" on a tool-call-only turn.
  render_cases.json  a list of cases; each holds a padv Trajectory and what Python
                   computes for it independently:
     paper:  spans [{message_index, text, is_action}], ids (texts tokenised one by one with
             add_special_tokens=False, concatenated), ids_bos ([bos] + ids),
             token_spans / token_spans_bos [[start, end, message_index, is_action]];
     chat:   per template {template_file, tokenizer, text, ids, char_spans, action_spans
             [[start, end, message_index]], assistant_masks (generation only)}; an action
             span is start = len(render(msgs[:i], add_generation_prompt=True)),
             end = len(render(msgs[:i+1])) in characters, mapped to the tokens whose start
             char offset lies in [start, end);
     truncated (one case, with max_length): the last max_length ids and the spans
             shifted/clipped as (max(0, s - excess), max(0, e - excess)).

Deterministic: fixed corpus (sorted, fixed files), no randomness; rerunning rewrites
identical files (checked by comparing hashes between two runs).
"""

from __future__ import annotations

import shutil
import sys

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast
from transformers.utils.chat_template_utils import _normalize_chat_messages, render_jinja_template

import fixture_lib as fl
from render_cases import build_cases, build_turn_cases, corpus_trajectories

# Templates saved with the tokenizer but not part of render_cases.json: they rewrite history,
# so they are checked per turn (turn_cases.json). Name -> file under scripts/chat_templates.
TURN_TEMPLATES = {"qwen3": "qwen3.jinja"}

VOCAB_SIZE = 512
# Control tokens: special (skipped by decode(skip_special_tokens=True)), ids 0..8.
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|bos|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<start_of_turn>",
    "<end_of_turn>",
]
# Tag tokens added after training as non-special added tokens (as Qwen does for <tool_call>).
TAG_TOKENS = ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<tools>", "</tools>"]
BOS = "<|bos|>"


def train_tokenizer():
    """Trains the byte-level BPE; returns a `tokenizers.Tokenizer` with VOCAB_SIZE ids."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE - len(TAG_TOKENS),
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = ["".join(fl.paper_texts(t)) for t in corpus_trajectories()]
    tok.train_from_iterator(texts, trainer=trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in TAG_TOKENS])
    if tok.get_vocab_size() != VOCAB_SIZE:
        sys.exit(f"trained vocabulary has {tok.get_vocab_size()} ids, expected {VOCAB_SIZE}")
    return tok


def templates():
    """The chat templates as transformers expects a multi-template tokenizer to hold them."""
    out = {}
    for name, (file, _) in fl.TEMPLATES.items():
        out["default" if name == "qwen2_5" else name] = (fl.TEMPLATE_SRC / file).read_text()
    for name, file in TURN_TEMPLATES.items():
        out[name] = (fl.TEMPLATE_SRC / file).read_text()
    return out


def save_tokenizers(tok):
    """Saves tokenizer/ and tokenizer_bos/ via transformers and reloads them from disk."""
    for d in (fl.TOKENIZER_DIR, fl.TOKENIZER_BOS_DIR):
        if d.exists():
            shutil.rmtree(d)
    plain = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(tok.to_str()),
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=4096,
    )
    plain.chat_template = templates()
    plain.save_pretrained(fl.TOKENIZER_DIR)

    bos_tok = Tokenizer.from_str(tok.to_str())
    bos_id = bos_tok.token_to_id(BOS)
    bos_tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B:1", special_tokens=[(BOS, bos_id)]
    )
    with_bos = PreTrainedTokenizerFast(
        tokenizer_object=bos_tok,
        bos_token=BOS,
        eos_token="<|eot_id|>",
        pad_token="<|endoftext|>",
        model_max_length=4096,
    )
    with_bos.chat_template = templates()
    with_bos.save_pretrained(fl.TOKENIZER_BOS_DIR)

    plain = PreTrainedTokenizerFast.from_pretrained(fl.TOKENIZER_DIR)
    with_bos = PreTrainedTokenizerFast.from_pretrained(fl.TOKENIZER_BOS_DIR)
    assert plain.bos_token_id is None, "plain tokenizer must have no BOS"
    assert with_bos.bos_token_id == bos_id
    assert with_bos("hi").input_ids[0] == bos_id, "BOS post-processor missing"
    assert with_bos("hi", add_special_tokens=False).input_ids[0] != bos_id
    assert plain("hi").input_ids == plain("hi", add_special_tokens=False).input_ids
    return {"tokenizer": plain, "tokenizer_bos": with_bos}


def encode(tokenizer, text):
    """ids without special tokens."""
    return tokenizer(text, add_special_tokens=False).input_ids


def paper_section(traj, toks):
    """The reference rendering: separate tokenisation per message, concatenated."""
    texts = fl.paper_texts(traj)
    ids, spans = [], []
    for i, (text, msg) in enumerate(zip(texts, traj["messages"])):
        piece = encode(toks["tokenizer"], text)
        # The BOS tokenizer shares the vocabulary, so its ids must agree.
        assert piece == encode(toks["tokenizer_bos"], text)
        spans.append([len(ids), len(ids) + len(piece), i, msg["is_action"]])
        ids.extend(piece)
    bos = toks["tokenizer_bos"].bos_token_id
    return {
        "spans": [{"message_index": i, "text": t, "is_action": m["is_action"]} for i, (t, m) in enumerate(zip(texts, traj["messages"]))],
        "ids": ids,
        "ids_bos": [bos] + ids,
        "token_spans": spans,
        "token_spans_bos": [[s + 1, e + 1, i, a] for s, e, i, a in spans],
    }


def truncate(ids, spans, max_length):
    """Left truncation: keep the last max_length ids, shift and clip the spans."""
    excess = max(0, len(ids) - max_length)
    return ids[excess:], [[max(0, s - excess), max(0, e - excess)] + rest for s, e, *rest in spans]


def render(tokenizer, template, msgs, tools, add_generation_prompt):
    """Renders like apply_chat_template(tokenize=False), but also accepts an empty list."""
    conv = _normalize_chat_messages(msgs)
    text, _ = render_jinja_template(
        conversations=[conv],
        tools=tools,
        chat_template=template,
        add_generation_prompt=add_generation_prompt,
        **tokenizer.special_tokens_map,
    )
    return text[0]


def chat_section(traj, tools, toks):
    """Chat-template renderings of the trajectory for every fixture template."""
    msgs = fl.hf_messages(traj)
    out = {}
    for name, (file, tok_name) in fl.TEMPLATES.items():
        tokenizer = toks[tok_name]
        template = (fl.TEMPLATE_SRC / file).read_text()
        selector = None if name == "qwen2_5" else name
        want_mask = name == "generation"
        res = tokenizer.apply_chat_template(
            msgs,
            tools=tools,
            chat_template=selector,
            tokenize=True,
            return_dict=True,
            return_assistant_tokens_mask=want_mask,
        )
        text = tokenizer.apply_chat_template(msgs, tools=tools, chat_template=selector, tokenize=False)
        assert text == render(tokenizer, template, msgs, tools, False), f"{name}: render mismatch"
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(res["input_ids"])
        assert enc.input_ids == ids, f"{name}: ids differ between apply_chat_template and encode"
        offsets = enc.offset_mapping
        char_spans, action_spans, mismatched = [], [], []
        for i, m in enumerate(traj["messages"]):
            if not m["is_action"]:
                continue
            head = render(tokenizer, template, msgs[:i], tools, True)
            whole = render(tokenizer, template, msgs[: i + 1], tools, False)
            start, end = len(head), len(whole)
            if not whole.startswith(head):
                mismatched.append(i)
            toks_in = [t for t, (a, _) in enumerate(offsets) if start <= a < end]
            if toks_in:
                assert toks_in == list(range(toks_in[0], toks_in[-1] + 1))
                action_spans.append([toks_in[0], toks_in[-1] + 1, i])
            else:
                # No token starts inside: an empty span placed where the next token starts.
                nxt = next((t for t, (a, _) in enumerate(offsets) if a >= end), len(offsets))
                action_spans.append([nxt, nxt, i])
            char_spans.append([start, end, i])
        entry = {
            "template_file": "chat_template.jinja" if name == "qwen2_5" else f"additional_chat_templates/{name}.jinja",
            "tokenizer": tok_name,
            "text": text,
            "ids": ids,
            "char_spans": char_spans,
            "action_spans": action_spans,
        }
        if mismatched:
            # The generation-prompt render is not a prefix of the next render (e.g. an
            # action whose HF role is "user"): the rule is applied literally anyway.
            entry["gen_prompt_not_prefix"] = mismatched
        if want_mask:
            entry["assistant_masks"] = list(res["assistant_masks"])
            assert len(entry["assistant_masks"]) == len(ids)
        out[name] = entry
    return out


def turn_section(spec, tokenizer):
    """What transformers gives, turn by turn, for one per-turn case.

    For each action i: prompt_ids = apply_chat_template(msgs[:i], add_generation_prompt=True,
    tokenize=True); the generated text is render(msgs[:i+1]) after the prompt text, encoded
    on its own (add_special_tokens=False); the segment is prompt_ids + generated ids, its
    action span [len(prompt_ids), len(segment)). `rewrites` says whether some prompt or
    render-through-an-action is not a prefix of the full render.
    """
    traj, tools, extra = spec["trajectory"], spec.get("tools"), spec["extra"]
    msgs = fl.hf_messages(traj)
    selector = None if spec["template"] == "default" else spec["template"]

    def text(m, gen):
        return tokenizer.apply_chat_template(m, tools=tools, chat_template=selector, tokenize=False, add_generation_prompt=gen, **extra)

    def ids(m, gen):
        res = tokenizer.apply_chat_template(m, tools=tools, chat_template=selector, tokenize=True, return_dict=True, add_generation_prompt=gen, **extra)
        return list(res["input_ids"])

    full = text(msgs, False)
    segments, rewrites = [], False
    for i, m in enumerate(traj["messages"]):
        if not m["is_action"]:
            continue
        upto = text(msgs[: i + 1], False)
        if i > 0:
            prompt = text(msgs[:i], True)
            prompt_ids = ids(msgs[:i], True)
            assert prompt_ids == encode(tokenizer, prompt)
        else:
            # An opening action: transformers cannot render an empty conversation, so the
            # prompt is the role header, i.e. where the render of message 0 departs from the
            # same message emptied (content "", no tool calls).
            probe = {k: v for k, v in msgs[0].items() if k != "tool_calls"}
            probe["content"] = ""
            empty = text([probe], False)
            n = next((k for k, (a, b) in enumerate(zip(empty, upto)) if a != b), min(len(empty), len(upto)))
            prompt = upto[:n]
            prompt_ids = encode(tokenizer, prompt)
        assert upto.startswith(prompt), f"{spec['name']}: generation prompt of {i} is not a prefix"
        rewrites |= not (full.startswith(prompt) and full.startswith(upto))
        gen = upto[len(prompt):]
        seg = prompt_ids + encode(tokenizer, gen)
        segments.append({"message_index": i, "ids": seg, "start": len(prompt_ids), "generated_text": gen})
    return {"full_ids": ids(msgs, False), "rewrites": rewrites, "segments": segments}


def content_null_report(tokenizer):
    """How each template renders a tool-call-only assistant turn whose content is None
    (what tau2 logs hold; transformers drops None keys), omitted, or "": which agree."""
    call = {"type": "function", "function": {"name": "get_reservation", "arguments": {"reservation_id": "A"}}}
    out = {}
    for name in ["default", *(n for n in fl.TEMPLATES if n != "qwen2_5"), *TURN_TEMPLATES]:
        sel = None if name == "default" else name
        renders = {}
        for label, extra in [("none", {"content": None}), ("omitted", {}), ("empty", {"content": ""})]:
            msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": [call], **extra}]
            renders[label] = tokenizer.apply_chat_template(msgs, chat_template=sel, tokenize=False)
        out[name] = {
            "none_equals_omitted": renders["none"] == renders["omitted"],
            "none_equals_empty": renders["none"] == renders["empty"],
        }
    return out


def write_turn_cases(tokenizer):
    """turn_cases.json from the committed tokenizer (no retraining)."""
    cases = []
    for spec in build_turn_cases():
        case = {k: spec[k] for k in ("name", "source", "trajectory", "template", "extra")}
        if spec.get("tools"):
            case["tools"] = spec["tools"]
        case.update(turn_section(spec, tokenizer))
        cases.append(case)
    report = content_null_report(tokenizer)
    fl.write_json(fl.FIXTURES / "turn_cases.json", {"cases": cases, "content_null": report})
    for c in cases:
        print(f"{c['name']:<28} rewrites={c['rewrites']} segments={[len(s['ids']) for s in c['segments']]}")
    print("content None vs omitted / empty:", report)


def main():
    if "--turns-only" in sys.argv:
        # Adds the per-turn templates to the committed tokenizer folder and writes
        # turn_cases.json, without retraining (which would change every other fixture).
        for name, file in TURN_TEMPLATES.items():
            dst = fl.TOKENIZER_DIR / "additional_chat_templates" / f"{name}.jinja"
            dst.write_text((fl.TEMPLATE_SRC / file).read_text())
        write_turn_cases(PreTrainedTokenizerFast.from_pretrained(fl.TOKENIZER_DIR))
        return
    tok = train_tokenizer()
    toks = save_tokenizers(tok)
    cases = []
    for spec in build_cases():
        traj = spec["trajectory"]
        case = {"name": spec["name"], "source": spec["source"], "trajectory": traj}
        if spec.get("tools"):
            case["tools"] = spec["tools"]
        case["paper"] = paper_section(traj, toks)
        case["chat"] = chat_section(traj, spec.get("tools"), toks)
        if spec.get("max_length"):
            ml = spec["max_length"]
            p = case["paper"]
            ids, spans = truncate(p["ids"], p["token_spans"], ml)
            ids_b, spans_b = truncate(p["ids_bos"], p["token_spans_bos"], ml)
            assert len(p["ids"]) > ml, "max_length case must actually truncate"
            case["max_length"] = ml
            case["truncated"] = {"ids": ids, "token_spans": spans, "ids_bos": ids_b, "token_spans_bos": spans_b}
        cases.append(case)
    fl.write_json(fl.FIXTURES / "render_cases.json", cases)
    for c in cases:
        print(f"{c['name']:<28} messages={len(c['trajectory']['messages']):>2} paper_ids={len(c['paper']['ids']):>4} "
              + " ".join(f"{k}={len(v['ids'])}" for k, v in c["chat"].items()))
    write_turn_cases(toks["tokenizer"])


if __name__ == "__main__":
    main()
