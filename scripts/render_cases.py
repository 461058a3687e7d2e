"""The trajectories behind the padv render fixtures, and the tokenizer training corpus.

Real cases are cut from /work/shared/data (contents cut to 300 chars); hand-made cases
cover what the real data lacks: float / bool / null / nested / quote / backslash /
non-printable arguments (the real tau2 arguments are only strings, ints, lists and dicts),
empty and whitespace-only assistant turns, None content with and without tool calls,
and non-ASCII text. Imported by make_render_fixtures.py; nothing random.
"""

from __future__ import annotations

import fixture_lib as fl

# Tool signatures for the hand-made case: '<', '&', "'" and non-ASCII catch a tojson that
# HTML-escapes or ASCII-escapes (Python's tojson does neither).
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "search_flights",
            "description": "Search flights; price in € must be < 2000 & dates 'flexible'.",
            "parameters": {
                "type": "object",
                "properties": {
                    "origin": {"type": "string", "description": "IATA code"},
                    "max_price": {"type": "number"},
                    "flexible": {"type": "boolean"},
                },
                "required": ["origin"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "book",
            "description": "Book a flight.",
            "parameters": {"type": "object", "properties": {"flight": {"type": "string"}}, "required": ["flight"]},
        },
    },
]

# Arguments whose Python str() and json.dumps() both need care: quotes of both kinds,
# escapes, a non-printable NBSP (repr writes '\xa0'), floats in exponent form, bools, None,
# an int above 2**53, empty containers, nesting.
EDGE_ARGS = {
    "origin": "NRT",
    "destination": "CDG",
    "max_price": 1250.5,
    "flexible": True,
    "cabin": None,
    "passengers": [{"name": "Zoë O'Brien", "age": 34}, {"name": 'Li "Leo" Wei', "age": 7}],
    "filters": {
        "stops": [0, 1],
        "ratio": 0.1,
        "tiny": 1e-07,
        "huge": 1e16,
        "whole": 100.0,
        "neg": -3,
        "neg_float": -2.5,
        "big": 9007199254740993,
        "both_quotes": "it's \"x\"",
    },
    "note": "line1\nline2\ttab \\ backslash",
    "nbsp": "a\u00a0b",
    "empty_obj": {},
    "empty_list": [],
    "html": "<b>&'",
    "unicode": "東京 → Paris 🙂",
}


def msg(role, content, is_action, **extra):
    m = {"role": role, "content": content}
    m.update(extra)
    m["is_action"] = is_action
    return m


def call(name, arguments, call_id=None):
    c = {}
    if call_id is not None:
        c["id"] = call_id
    c["name"] = name
    c["arguments"] = arguments
    return c


def edge_args_case():
    messages = [
        msg("system", "You are an airline agent.\nFollow the policy.", False),
        msg("user", "Bonjour ! J’ai réservé un vol 東京→Paris 🙂 — pouvez-vous vérifier ?", False),
        msg("assistant", None, True, tool_calls=[call("search_flights", EDGE_ARGS, "call_1")]),
        msg("tool", '{"flights": [{"number": "HAT001", "price": 1200.0}]}', False, tool_call_id="call_1"),
        msg(
            "assistant",
            "I found one flight.",
            True,
            tool_calls=[
                call("book", {"flight": "HAT001", "insurance": False}, "call_2"),
                call("notify", {"msg": "Réservé ✓", "channels": ["sms", "e-mail"]}, "call_3"),
            ],
        ),
        msg("tool", "ok", False, tool_call_id="call_2"),
        msg("tool", "sent", False, tool_call_id="call_3"),
        msg("assistant", "Done! Your flight is booked. ✈️", True),
    ]
    return {"id": "edge-args", "task_id": "edge", "messages": messages, "reward": 0.5}


def edge_empty_case():
    messages = [
        msg("user", "hi", False),
        msg("assistant", "", True),
        msg("user", "", False),
        msg("assistant", None, True),
        msg("user", "   leading and trailing   ", False),
        msg("assistant", "Sure thing.  \n\n", True),
        msg("assistant", "   \n\t ", True),
        msg("user", "ok", False),
        msg("assistant", None, True, tool_calls=[call("end_conversation", {})]),
    ]
    return {"id": "edge-empty", "task_id": "edge", "messages": messages, "reward": 0.0}


def edge_unicode_case():
    messages = [
        msg("user", "Grüße aus Köln! Ünïcödé: e\u0301 (combining), ß, Ω, 你好世界, こんにちは, 안녕하세요.", False),
        msg("assistant", "Danke! 👩‍💻 and 👍🏽 and 🇫🇷 — “smart quotes” … ok", True),
        msg("user", "مرحبا بالعالم (RTL) и немного кириллицы.\r\nWindows line end, tab\there.", False),
        msg("assistant", "Noted: naïve café, Ångström, 10 µm, 5 °C, ½ cup.", True),
    ]
    return {"id": "edge-unicode", "task_id": "edge", "messages": messages}


def build_cases():
    """The render cases, in fixture order."""
    return [
        {
            "name": "tau2_airline_tool_calls",
            "source": "tau2 airline__gpt-5.4__ironshell simulation 0, first 8 messages, contents cut to 300 chars",
            "trajectory": fl.tau2_trajectory("airline__gpt-5.4__ironshell__1trial.json", 0, 8),
        },
        {
            "name": "tau2_airline_nested_args",
            "source": "tau2 airline__claude-opus-4-6__button_distyl simulation 1, first 10 messages (nested list arguments)",
            "trajectory": fl.tau2_trajectory("airline__claude-opus-4-6__button_distyl__1trial.json", 1, 10),
        },
        {
            "name": "tau2_retail",
            "source": "tau2 retail__toolorchestra_nvidia simulation 0, first 8 messages",
            "trajectory": fl.tau2_trajectory("retail__toolorchestra_nvidia__1trial.json", 0, 8),
        },
        {
            "name": "whowhen_hand_crafted",
            "source": "Who&When Hand-Crafted/1.json, first 6 history entries (opening human message is not an action)",
            "trajectory": fl.who_when_trajectory("Hand-Crafted", 1, 6),
        },
        {
            "name": "whowhen_algorithm_generated",
            "source": "Who&When Algorithm-Generated/1.json, all 6 history entries",
            "trajectory": fl.who_when_trajectory("Algorithm-Generated", 1, 6),
        },
        {
            "name": "edge_args",
            "source": "hand-made: system turn, float/bool/null/nested/quoted/escaped arguments, parallel calls, tools",
            "trajectory": edge_args_case(),
            "tools": TOOLS,
        },
        {
            "name": "edge_empty",
            "source": "hand-made: empty / None / whitespace-only assistant turns, empty user content",
            "trajectory": edge_empty_case(),
            "max_length": 40,
        },
        {
            "name": "edge_unicode",
            "source": "hand-made: combining marks, CJK, emoji ZWJ / modifiers / flags, RTL, CRLF, tab",
            "trajectory": edge_unicode_case(),
        },
    ]


def corpus_trajectories():
    """Text for BPE training: real trajectories (a fixed selection) plus the cases."""
    out = []
    files = [
        "airline__claude-opus-4-6__button_distyl__1trial.json",
        "airline__claude-sonnet-4-5__aide-platform__1trial.json",
        "airline__gpt-5.4__ironshell__1trial.json",
        "airline__gpt-oss-120b__langchain_agent__1trial.json",
        "airline__toolorchestra_nvidia__1trial.json",
        "retail__toolorchestra_nvidia__1trial.json",
    ]
    for f in files:
        for s in range(4):
            out.append(fl.tau2_trajectory(f, s, 14, limit=600))
    for n in range(1, 5):
        out.append(fl.who_when_trajectory("Hand-Crafted", n, 8, limit=600))
    for n in range(1, 9):
        out.append(fl.who_when_trajectory("Algorithm-Generated", n, 10, limit=600))
    out.extend(c["trajectory"] for c in build_cases())
    return out


# --- Per-turn (history-rewriting) cases for the Qwen3-style template -------------------------

LOOKUP_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_reservation",
            "description": "Look up a reservation by id.",
            "parameters": {"type": "object", "properties": {"reservation_id": {"type": "string"}}, "required": ["reservation_id"]},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "cancel_reservation",
            "description": "Cancel a reservation.",
            "parameters": {"type": "object", "properties": {"reservation_id": {"type": "string"}}, "required": ["reservation_id"]},
        },
    },
]


def reasoning_tools_case():
    """Reasoning in every assistant turn, tool calls with and without content, two user
    queries: Qwen3 drops the reasoning of turns before the last query."""
    messages = [
        msg("system", "You are an airline agent.", False),
        msg("user", "Can you check reservation ABC123?", False),
        msg(
            "assistant",
            "<think>\nThe user wants a lookup. I will call the tool.\n</think>\n\nLet me check that.",
            True,
            tool_calls=[call("get_reservation", {"reservation_id": "ABC123"}, "c1")],
        ),
        msg("tool", '{"status": "confirmed", "flight": "HAT001"}', False, tool_call_id="c1"),
        msg("assistant", "<think>\nIt is confirmed.\n</think>\n\nYour reservation ABC123 is confirmed on HAT001.", True),
        msg("user", "Please cancel it.", False),
        msg(
            "assistant",
            "<think>\nCancellation requested; call cancel.\n</think>",
            True,
            tool_calls=[call("cancel_reservation", {"reservation_id": "ABC123"}, "c2")],
        ),
        msg("tool", '{"ok": true}', False, tool_call_id="c2"),
        msg("assistant", "<think>\nDone.\n</think>\n\nIt is cancelled. Anything else?", True),
    ]
    return {"id": "qwen3-reasoning-tools", "task_id": "turns", "messages": messages, "reward": 1.0}


def no_thinking_case():
    """Plain assistant turns (with a content-null pure tool call, as tau2 writes them) under
    enable_thinking=False: the generation prompt adds an empty think block that the final
    render keeps only for the last turn."""
    messages = [
        msg("user", "Cancel ABC123 please.", False),
        msg("assistant", None, True, tool_calls=[call("get_reservation", {"reservation_id": "ABC123"}, "c1")]),
        msg("tool", '{"status": "confirmed"}', False, tool_call_id="c1"),
        msg("assistant", None, True, tool_calls=[call("cancel_reservation", {"reservation_id": "ABC123"}, "c2")]),
        msg("tool", '{"ok": true}', False, tool_call_id="c2"),
        msg("assistant", "Cancelled.", True),
    ]
    return {"id": "qwen3-no-thinking", "task_id": "turns", "messages": messages, "reward": 0.0}


def build_turn_cases():
    """Per-turn cases: {name, source, trajectory, template, tools?, extra}."""
    return [
        {
            "name": "qwen3_reasoning_tools",
            "source": "hand-made: reasoning in content, tool calls, two user queries",
            "trajectory": reasoning_tools_case(),
            "template": "qwen3",
            "tools": LOOKUP_TOOLS,
            "extra": {},
        },
        {
            "name": "qwen3_no_thinking",
            "source": "hand-made: content-null tool calls, enable_thinking=False",
            "trajectory": no_thinking_case(),
            "template": "qwen3",
            "tools": LOOKUP_TOOLS,
            "extra": {"enable_thinking": False},
        },
        {
            "name": "qwen3_tau2_airline",
            "source": "tau2 airline__gpt-5.4__ironshell simulation 0, first 8 messages, contents cut to 300 chars",
            "trajectory": fl.tau2_trajectory("airline__gpt-5.4__ironshell__1trial.json", 0, 8),
            "template": "qwen3",
            "extra": {},
        },
        {
            "name": "qwen2_5_keeps_history",
            "source": "the reasoning case under the Qwen2.5-style default template, which rewrites nothing",
            "trajectory": reasoning_tools_case(),
            "template": "default",
            "tools": LOOKUP_TOOLS,
            "extra": {},
        },
    ]
