"""Shared helpers for the padv developer-side fixture scripts (never run by CI).

What lives here:
  * paths (repo root, fixture folder, the read-only shared data folder);
  * loading real trajectories from /work/shared/data as padv `Trajectory` JSON dicts
    (the field names of crates/padv-core/src/trajectory.rs);
  * the paper rendering (reference implementation semantics, paper-notes 6.2 / 12):
    one text per message, tokenised separately and concatenated;
  * the mapping of a padv trajectory to Hugging Face chat messages.

Everything is deterministic: no randomness here, and files are read in sorted order.
"""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "crates" / "padv-engine" / "tests" / "fixtures"
TOKENIZER_DIR = FIXTURES / "tokenizer"
TOKENIZER_BOS_DIR = FIXTURES / "tokenizer_bos"
TEMPLATE_SRC = Path(__file__).resolve().parent / "chat_templates"
# The repository root sits beside `shared/` (the worktree's ../shared is /work/shared).
DATA = (REPO.parent / "shared" / "data") if (REPO.parent / "shared" / "data").is_dir() else Path("/work/shared/data")
TAU2 = DATA / "tau2_bench_leaderboard"
WHO = DATA / "who_and_when"

# Template name -> (file under scripts/chat_templates, tokenizer folder used to render it).
# llama3 and gemma start with bos_token, so they are rendered with the BOS tokenizer.
TEMPLATES = {
    "qwen2_5": ("qwen2_5.jinja", "tokenizer"),
    "llama3": ("llama3.jinja", "tokenizer_bos"),
    "generation": ("generation.jinja", "tokenizer"),
    "gemma": ("gemma.jinja", "tokenizer_bos"),
}

HF_ROLES = ("system", "user", "assistant", "tool")


def cut(text, limit):
    """Cuts a string to `limit` code points (None text stays None; None limit keeps all)."""
    if text is None or limit is None:
        return text
    return text[:limit]


def tau2_trajectory(file_name, sim_index, n_messages, limit=300):
    """The first `n_messages` of one tau2 simulation as a padv Trajectory dict.

    Every assistant message is an action (tau2 rule); contents are cut to `limit` chars.
    """
    data = json.loads((TAU2 / file_name).read_text())
    return tau2_trajectory_from_sim(data["simulations"][sim_index], limit, n_messages)


def tau2_trajectory_from_sim(sim, limit=None, n_messages=None):
    """One tau2 simulation dict -> padv Trajectory dict (limit None: contents uncut)."""
    messages = []
    for m in sim["messages"][:n_messages]:
        msg = {"role": m["role"], "content": cut(m.get("content"), limit)}
        if m["role"] == "tool" and m.get("id") is not None:
            msg["tool_call_id"] = m["id"]
        calls = []
        for tc in m.get("tool_calls") or []:
            call = {}
            if tc.get("id") is not None:
                call["id"] = tc["id"]
            call["name"] = tc["name"]
            call["arguments"] = tc["arguments"]
            calls.append(call)
        if calls:
            msg["tool_calls"] = calls
        msg["is_action"] = m["role"] == "assistant"
        messages.append(msg)
    return {
        "id": sim["id"],
        "task_id": str(sim["task_id"]),
        "messages": messages,
        "reward": sim["reward_info"]["reward"],
    }


def who_when_trajectory(split, number, n_messages, limit=300):
    """The first `n_messages` of a Who&When log as a padv Trajectory dict.

    Action rule (paper-notes 6.2): content non-empty, except the Hand-Crafted opening
    `human` message. mistake_step is kept only if it falls inside the cut.
    """
    data = json.loads((WHO / split / f"{number}.json").read_text())
    messages = []
    for i, m in enumerate(data["history"][:n_messages]):
        content = m.get("content")
        msg = {"role": m["role"]}
        if m.get("name") is not None:
            msg["name"] = m["name"]
        msg["content"] = cut(content, limit)
        is_action = bool(content)
        if split == "Hand-Crafted" and i == 0 and m["role"] == "human":
            is_action = False
        msg["is_action"] = is_action
        messages.append(msg)
    traj = {
        "id": f"{split}/{number}",
        "task_id": data["question_ID"],
        "messages": messages,
        "source_format": "who_and_when",
    }
    step = int(data["mistake_step"])
    if step < len(messages):
        traj["mistake_step"] = step
    if data.get("mistake_agent"):
        traj["mistake_agent"] = data["mistake_agent"]
    return traj


def paper_body(msg):
    """Body text of one message under the reference rendering.

    Action: (content + "\\n" + "\\n".join("tool_call(name, <python str of args>)")).strip(),
    or "[assistant action]" when that is empty. Others: content or "".
    """
    content = msg.get("content") or ""
    if msg["is_action"]:
        calls = "\n".join(f"tool_call({tc['name']}, {tc['arguments']})" for tc in msg.get("tool_calls", []))
        body = (content + "\n" + calls).strip()
        return body if body else "[assistant action]"
    return content


def paper_texts(traj):
    """One text per message: ("\\n" if i > 0) + "[role]: " + body.

    Who&When logs follow the reference's failure-attribution path: "[role]: content" verbatim
    for every message (no stripping, no tool-call lines, no placeholder).
    """
    if traj.get("source_format") == "who_and_when":
        return [("\n" if i > 0 else "") + "[" + m["role"] + "]: " + (m.get("content") or "") for i, m in enumerate(traj["messages"])]
    return [("\n" if i > 0 else "") + "[" + m["role"] + "]: " + paper_body(m) for i, m in enumerate(traj["messages"])]


def hf_messages(traj):
    """padv messages -> Hugging Face chat messages.

    Every action becomes an "assistant" turn (the judged model produced it, whatever the
    log called its speaker, e.g. Who&When's AG2 "user" role); other messages keep the roles
    system/user/assistant/tool, and any other role becomes "user". content is kept as is (None stays None; HF itself drops
    None-valued keys before rendering). tool_calls become the OpenAI nested form.
    """
    out = []
    for m in traj["messages"]:
        role = "assistant" if m["is_action"] else (m["role"] if m["role"] in HF_ROLES else "user")
        msg = {"role": role, "content": m.get("content")}
        if m.get("name") is not None:
            msg["name"] = m["name"]
        if m.get("tool_call_id") is not None:
            msg["tool_call_id"] = m["tool_call_id"]
        if m.get("tool_calls"):
            calls = []
            for tc in m["tool_calls"]:
                call = {"type": "function"}
                if tc.get("id") is not None:
                    call["id"] = tc["id"]
                call["function"] = {"name": tc["name"], "arguments": tc["arguments"]}
                calls.append(call)
            msg["tool_calls"] = calls
        out.append(msg)
    return out


def _compact(value, depth):
    """JSON text: objects and lists of containers indented, lists of scalars on one line."""
    pad = " " * depth
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{pad} {json.dumps(k, ensure_ascii=False)}: {_compact(v, depth + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        if all(isinstance(v, list) and not any(isinstance(x, (dict, list)) for x in v) for v in value):
            return "[" + ", ".join(json.dumps(v, ensure_ascii=False) for v in value) + "]"
        items = [pad + " " + _compact(v, depth + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(value, ensure_ascii=False)


def write_json(path, value):
    """Writes compact-but-readable JSON (non-ASCII kept as is) with a trailing newline.

    Trajectory objects are embedded with their key order, which the Rust side keeps too.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    text = _compact(value, 0)
    assert json.loads(text) == value
    path.write_text(text + "\n")
