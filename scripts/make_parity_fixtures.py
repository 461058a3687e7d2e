"""Regenerates every padv-engine parity fixture (developer-side; CI never runs it).

Run:  /work/pyenv/bin/python scripts/make_parity_fixtures.py [--skip-models]

1. make_render_fixtures.py: tiny BPE tokenizers (tokenizer/, tokenizer_bos/) with chat
   templates, and render_cases.json (paper and chat-template renderings). No torch needed.
2. make_model_fixtures.py: tiny random checkpoints per architecture under models/ with
   float64 Hugging Face log-prob references (expected.json). Needs torch.

Both steps are deterministic (fixed corpus, fixed seeds): rerunning rewrites identical files.
Outputs go to crates/padv-engine/tests/fixtures/ (kept under 8 MB in total).
"""

from __future__ import annotations

import sys

import make_render_fixtures


def main():
    make_render_fixtures.main()
    if "--skip-models" in sys.argv[1:]:
        return
    sys.argv = [sys.argv[0]]
    import make_model_fixtures  # imports torch: only when the model step runs

    make_model_fixtures.main()


if __name__ == "__main__":
    main()
