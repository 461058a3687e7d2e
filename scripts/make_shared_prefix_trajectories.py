#!/usr/bin/env python3
"""Writes N chat-JSONL trajectories that share one long system prompt (the rollouts of one
task), for measuring prefix sharing in `padv score` (see README, Benchmarks).

    python3 scripts/make_shared_prefix_trajectories.py OUT.jsonl [N] [PREFIX_WORDS] [TURN_WORDS]

Standard library only; deterministic. Token counts depend on the tokenizer: check them with
`padv render --model DIR --renderer chat-template --input OUT.jsonl --json`.
"""
import json
import random
import sys

WORDS = ("the agent checks the order status and calls the refund tool before it answers the "
         "customer about flight seat baggage policy cancel change date payment card user id "
         "reservation airline retail item exchange return address confirm").split()


def text(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    prefix_words = int(sys.argv[3]) if len(sys.argv) > 3 else 1500
    turn_words = int(sys.argv[4]) if len(sys.argv) > 4 else 40
    system = text(random.Random(0), prefix_words)
    with open(out, "w") as f:
        for i in range(n):
            rng = random.Random(1000 + i)
            messages = [{"role": "system", "content": system}]
            for _ in range(2):
                messages.append({"role": "user", "content": text(rng, turn_words)})
                messages.append({"role": "assistant", "content": text(rng, turn_words)})
            f.write(json.dumps({"id": f"rollout-{i}", "task_id": "task-0",
                                "messages": messages, "reward": i % 2}) + "\n")


if __name__ == "__main__":
    main()
