"""Does `padv.score` show its progress bar in a Jupyter notebook? Runs a real kernel.

Writes a two-cell notebook that scores gym rollouts with the committed pair, executes it with
nbconvert (a real IPython kernel, as Jupyter runs it), and checks the saved outputs: the bar
must be a tqdm notebook widget (`application/vnd.jupyter.widget-view+json`, not text on
stderr) that ended at total/total. Needs a Python with nbconvert, ipykernel, ipywidgets and
tqdm, and the package importable (PYTHONPATH pointing at a folder holding `padv/`, laid out
as `crates/padv-py/tests/pytest.rs` does, or `pip install ./python`). Not run by CI.

    python scripts/notebook_progress.py ROLLOUTS.jsonl

Prints what it found and exits non-zero when the bar is missing or incomplete.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAIR = ROOT / "crates" / "padv-gym" / "pair"


def main() -> int:
    rollouts = pathlib.Path(sys.argv[1]).resolve()
    cells = [
        "import padv, tqdm, ipywidgets\nprint(padv.__file__, tqdm.__version__, ipywidgets.__version__)",
        f"records = padv.score({str(PAIR / 'policy')!r}, {str(PAIR / 'reference')!r}, "
        f"{str(rollouts)!r}, batch_size=2)\nprint(len(records), 'records')",
    ]
    nb = {
        "cells": [
            {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
             "source": c}
            for c in cells
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    with tempfile.TemporaryDirectory() as d:
        path = pathlib.Path(d) / "progress.ipynb"
        path.write_text(json.dumps(nb))
        subprocess.run(
            [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
             "--inplace", str(path)],
            check=True,
        )
        done = json.loads(path.read_text())
    outputs = done["cells"][1]["outputs"]
    widgets = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    def text(o: dict) -> str:
        t = o.get("text", "")
        return "".join(t) if isinstance(t, list) else t

    texts = "".join(text(o) for o in outputs)
    states = done.get("metadata", {}).get("widgets", {}).get(
        "application/vnd.jupyter.widget-state+json", {}).get("state", {})
    bars = [s["state"] for s in states.values()
            if s.get("model_name") == "FloatProgressModel"]
    labels = [s["state"].get("value", "") for s in states.values()
              if s.get("model_name") == "HTMLModel"]
    print(f"cell output text: {texts.strip()!r}")
    print(f"widget outputs: {len(widgets)}; progress bars saved: "
          f"{[(b.get('value'), b.get('max')) for b in bars]}; labels: {labels}")
    ok = widgets and bars and all(b.get("value") == b.get("max") for b in bars)
    print("notebook progress bar:", "OK" if ok else "MISSING or incomplete")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
