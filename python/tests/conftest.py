"""Shared fixtures: the `padv` CLI (the independent side of every comparison) and data."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAIR = ROOT / "crates" / "padv-gym" / "pair"


def padv_bin() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("PADV_BIN", ROOT / "target" / "debug" / "padv"))
    if not path.is_file():
        pytest.fail(f"padv CLI not found at {path}: run `cargo build -p padv` or set PADV_BIN")
    return path


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [str(padv_bin()), *map(str, args)], capture_output=True, text=True, timeout=600
    )
    if check and out.returncode != 0:
        raise AssertionError(f"padv {' '.join(map(str, args))} failed:\n{out.stderr}")
    return out


@pytest.fixture(scope="session")
def cli():
    return run_cli


def synthetic_batch(seed: int, n: int = 24, t: int = 40, groups: int = 6):
    """A trainer-like padded batch: log-probs of both models, a response mask with two or
    three agent turns separated by masked-out tool output and right padding, and 0/1
    rewards that depend on the PA of the last turn (so scores carry signal)."""
    rng = np.random.default_rng(seed)
    ref = np.log(rng.uniform(0.05, 1.0, size=(n, t))).astype(np.float32)
    shift = rng.normal(0.0, 0.4, size=(n, t)).astype(np.float32)
    pol = np.minimum(ref + shift, 0.0).astype(np.float32)
    mask = np.zeros((n, t), dtype=np.int64)
    for i in range(n):
        length = int(rng.integers(t // 2, t + 1))
        pos, turns = 0, int(rng.integers(2, 4))
        for _ in range(turns):
            k = int(rng.integers(3, 8))
            mask[i, pos : min(pos + k, length)] = 1
            pos += k + int(rng.integers(1, 4))  # tool output between turns
            if pos >= length:
                break
    pa_last = np.array([(pol[i] - ref[i])[mask[i] == 1][-3:].mean() for i in range(n)])
    labels = (pa_last + rng.normal(0, 0.2, n) > np.median(pa_last)).astype(np.float64)
    task_ids = [str(i % groups) for i in range(n)]
    return pol, ref, mask, labels, task_ids


@pytest.fixture
def batch():
    return synthetic_batch(7)


def records_jsonl_by_hand(pol, ref, mask, labels, task_ids, path, mistake_steps=None):
    """The records file the record format defines, written with plain Python (the
    independent computation the package's records are compared with)."""
    with open(path, "w") as f:
        for i in range(pol.shape[0]):
            steps, k, j = [], 0, 0
            row = [bool(m) for m in mask[i]]
            while j < len(row):
                if row[j]:
                    start = j
                    while j < len(row) and row[j]:
                        j += 1
                    steps.append(
                        {
                            "message_index": k,
                            "policy": [float(x) for x in pol[i, start:j]],
                            "reference": [float(x) for x in ref[i, start:j]],
                        }
                    )
                    k += 1
                else:
                    j += 1
            rec = {
                "id": str(i),
                "task_id": task_ids[i],
                "label": float(labels[i]),
                # As padv writes it: null when there is no annotation.
                "mistake_step": None if mistake_steps is None else mistake_steps[i],
                "steps": steps,
            }
            f.write(json.dumps(rec) + "\n")
