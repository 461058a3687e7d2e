"""PA records from the arrays an RL trainer already holds.

A GRPO/PPO trainer computes log π_θ and log π_ref of every generated token for its KL
penalty. With the step boundaries, those arrays are padv records: no extra forward pass.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from . import _padv
from ._padv import PadvError, Records

__all__ = ["records_from_logprobs", "steps_from_mask"]


def _to_numpy(x: Any, what: str, dtype: Any) -> Any:
    """A torch tensor or array-like as numpy with `dtype`, without copying when the memory
    already has that layout (a contiguous CPU float32 tensor is shared, not copied)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor, without importing torch
        t = x.detach()
        if dtype is np.float32 and str(t.dtype) != "torch.float32":
            t = t.float()  # bf16/fp16/fp64 logits -> float32 (a copy; numpy has no bf16)
        if dtype is np.bool_ and str(t.dtype) != "torch.bool":
            t = t != 0
        x = t.cpu().numpy()
    try:
        a = np.asarray(x)
    except (TypeError, ValueError) as e:
        raise PadvError(f"{what}: not an array ({e})") from None
    if dtype is np.bool_ and a.dtype != np.bool_:
        if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
            raise PadvError(f"{what}: a mask must hold 0/1 or booleans, got dtype {a.dtype}")
        a = a != 0
    elif dtype is np.float32 and a.dtype != np.float32:
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            raise PadvError(f"{what}: expected numbers, got dtype {a.dtype}")
        a = a.astype(np.float32)
    return np.ascontiguousarray(a)


def _rows(x: Any, what: str, dtype: Any) -> list[Any]:
    """One 1-D array per trajectory: from a padded 2-D array/tensor (rows are views, not
    copies) or from a sequence of 1-D arrays (ragged)."""
    if hasattr(x, "ndim") or hasattr(x, "shape"):
        a = _to_numpy(x, what, dtype)
        if a.ndim != 2:
            raise PadvError(
                f"{what}: expected a 2-D (trajectories × tokens) array or a list of 1-D arrays, "
                f"got shape {tuple(a.shape)}"
            )
        return [a[i] for i in range(a.shape[0])]
    if isinstance(x, (str, bytes)) or not isinstance(x, Sequence):
        raise PadvError(f"{what}: expected an array or a list of arrays, got {type(x).__name__}")
    rows = []
    for i, row in enumerate(x):
        a = _to_numpy(row, f"{what}[{i}]", dtype)
        if a.ndim != 1:
            raise PadvError(f"{what}[{i}]: expected a 1-D array, got shape {tuple(a.shape)}")
        rows.append(a)
    return rows


def _column(x: Any, n: int, what: str, convert: Any) -> list[Any]:
    if x is None:
        return [None] * n
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    if hasattr(x, "tolist") and not isinstance(x, list):
        x = x.tolist()
    x = list(x)
    if len(x) != n:
        raise PadvError(f"{what} has {len(x)} entries for {n} trajectories (policy_logprobs)")
    out = []
    for i, v in enumerate(x):
        if v is None:
            out.append(None)
            continue
        try:
            out.append(convert(v))
        except (TypeError, ValueError) as e:
            raise PadvError(f"{what}[{i}]: {v!r} ({e})") from None
    return out


def _index(v: Any) -> int:
    if isinstance(v, float) and not v.is_integer():
        raise ValueError("not an integer")
    i = int(v)
    if i < 0:
        raise ValueError("negative")
    return i


def steps_from_mask(mask: Any) -> list[list[tuple[int, int]]]:
    """Step token ranges from a response/loss mask: each run of 1s is one agent turn (how
    multi-turn trainers leave environment output out of the loss). Accepts a 2-D array or a
    list of 1-D arrays; returns ``[(start, end), ...]`` per trajectory."""
    out = []
    for row in _rows(mask, "mask", np.bool_):
        edges = np.flatnonzero(np.diff(np.concatenate(([False], row, [False])).astype(np.int8)))
        out.append([(int(a), int(b)) for a, b in zip(edges[0::2], edges[1::2])])
    return out


def records_from_logprobs(
    policy_logprobs: Any,
    reference_logprobs: Any = None,
    step_spans: Optional[Sequence[Optional[Sequence[tuple[int, int]]]]] = None,
    *,
    mask: Any = None,
    labels: Any = None,
    task_ids: Optional[Sequence[Any]] = None,
    ids: Optional[Sequence[Any]] = None,
    mistake_steps: Any = None,
    message_indices: Optional[Sequence[Optional[Sequence[int]]]] = None,
    vocab_size: Optional[int] = None,
) -> Records:
    """Build PA records from per-token log-probs that are already computed.

    Arrays are numpy arrays or torch tensors (any device and float dtype), either padded
    ``(trajectories, tokens)`` with ``mask`` marking the real tokens, or a list with one 1-D
    array per trajectory (ragged).

    - ``policy_logprobs``: log π_θ of each token (a trainer's ``old_log_probs``).
    - ``reference_logprobs``: log π_ref of the same tokens (``ref_log_prob``); without it
      only the policy-only baselines can be evaluated.
    - ``step_spans``: per trajectory, the ``(start, end)`` token range of each agent step.
      Default: each run of ``mask`` 1s is a step (multi-turn: environment tokens are 0), or
      the whole sequence is one step when there is no mask.
    - ``mask``: 0 for tokens to leave out (padding, tool output); such tokens inside a
      step are dropped from it.
    - ``labels``: outcome reward per trajectory (UQ, best-of-N); ``task_ids``: rollouts of one
      prompt share it (best-of-N groups by it; default: the id); ``ids``: default "0", "1"…;
      ``mistake_steps``: annotated decisive step (failure attribution), as a message index;
      ``message_indices``: per trajectory, each step's message index (default 0, 1, 2…).

    Every value is checked as a record file's would be: a NaN, a positive log-prob, a span
    outside the arrays raise :class:`PadvError` naming the trajectory, step and position.

    >>> import numpy as np, padv
    >>> pol = np.log(np.array([[0.9, 0.5, 1.0, 0.8], [0.6, 0.7, 0.9, 1.0]], dtype=np.float32))
    >>> ref = np.log(np.array([[0.8, 0.5, 1.0, 0.4], [0.6, 0.9, 0.9, 1.0]], dtype=np.float32))
    >>> mask = np.array([[1, 1, 0, 1], [1, 1, 1, 0]])
    >>> recs = padv.records_from_logprobs(pol, ref, mask=mask, labels=[1.0, 0.0])
    >>> [len(r["steps"]) for r in recs.to_list()]
    [2, 1]
    """
    policy = _rows(policy_logprobs, "policy_logprobs", np.float32)
    n = len(policy)
    reference = (
        None
        if reference_logprobs is None
        else _rows(reference_logprobs, "reference_logprobs", np.float32)
    )
    masks = None if mask is None else _rows(mask, "mask", np.bool_)
    if step_spans is not None:
        if len(step_spans) != n:
            raise PadvError(
                f"step_spans has {len(step_spans)} entries for {n} trajectories (policy_logprobs)"
            )
        spans = [
            None if s is None else [(_index(a), _index(b)) for a, b in s] for s in step_spans
        ]
    else:
        spans = None
    id_list = _column(ids, n, "ids", str)
    id_list = [str(i) if v is None else v for i, v in enumerate(id_list)]
    return _padv.records_from_arrays(
        policy,
        reference,
        masks,
        spans,
        id_list,
        _column(task_ids, n, "task_ids", str),
        _column(labels, n, "labels", float),
        _column(mistake_steps, n, "mistake_steps", _index),
        None
        if message_indices is None
        else [None if m is None else [_index(v) for v in m] for m in message_indices],
        vocab_size,
    )
