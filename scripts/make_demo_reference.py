"""Make the built-in demo reference: a perturbed copy of the tiny qwen2 fixture.

The README's main job scores trajectories with a policy/reference pair. Until the gym issue
post-trains a real tiny pair, the pair is the random-weight `models/qwen2` fixture (policy) and
this copy of it with seeded Gaussian noise added to every weight (reference), so the log-ratio
is non-zero. Its scores carry no information about the trajectories.

Usage: /work/pyenv/bin/python scripts/make_demo_reference.py
"""
import json
import shutil
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "crates/padv-engine/tests/fixtures/models/qwen2"
DST = ROOT / "crates/padv-engine/tests/fixtures/models/qwen2_ref"


def main():
    if DST.exists():
        shutil.rmtree(DST)
    DST.mkdir(parents=True)
    for f in SRC.iterdir():
        if f.name not in ("model.safetensors", "expected.json"):
            shutil.copy(f, DST / f.name)
    rng = np.random.default_rng(20261128)
    tensors = load_file(str(SRC / "model.safetensors"))
    out = {}
    for name in sorted(tensors):
        w = tensors[name]
        scale = 0.1 * float(w.std()) if w.size > 1 and w.std() > 0 else 0.01
        out[name] = (w + rng.normal(0.0, scale, size=w.shape)).astype(w.dtype)
    save_file(out, str(DST / "model.safetensors"), metadata={"format": "pt"})
    (DST / "README.md").write_text(
        "Demo reference: models/qwen2 plus seeded Gaussian noise (10% of each tensor's std).\n"
        "Made by scripts/make_demo_reference.py. Not a parity fixture.\n"
    )
    print("wrote", DST)


if __name__ == "__main__":
    main()
