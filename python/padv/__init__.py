"""padv: progress advantage as a step-level judge of LLM agents.

After KL-regularised RL, ``β · log π_θ(a|s) / π_ref(a|s)`` is the soft optimal advantage of
an action: a process reward model for free. This package is the ``padv`` CLI's library, from
Python::

    import padv

    # From the log-probs a GRPO/PPO trainer already computed (numpy or torch, padded + mask):
    records = padv.records_from_logprobs(old_log_probs, ref_log_probs, mask=response_mask,
                                         labels=rewards, task_ids=prompt_ids)
    report = padv.evaluate(records, "uq", grid=True)
    print(report.table())          # what `padv eval uq --grid` prints
    df = report.to_pandas()        # one row per method

    # Or from agent logs and two checkpoints, as `padv score` does:
    trajectories = padv.read_trajectories("tau2_results.json")
    records = padv.score("policy/", "reference/", trajectories)

Every function raises :class:`PadvError` (a ``ValueError``) with padv's message, naming the
file, record and field at fault.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

from . import _padv
from ._padv import PadvError, Records, Report, __version__
from .arrays import records_from_logprobs, steps_from_mask
from . import recipes
from .client import Client

__all__ = [
    "Client",
    "PadvError",
    "Records",
    "Report",
    "__version__",
    "evaluate",
    "read_records",
    "read_trajectories",
    "recipes",
    "records_from_logprobs",
    "render",
    "score",
    "steps_from_mask",
]

PathLike = Union[str, "os.PathLike[str]"]


def _paths(paths: Union[PathLike, Iterable[PathLike]]) -> list[str]:
    if isinstance(paths, (str, os.PathLike)):
        return [os.fspath(paths)]
    return [os.fspath(p) for p in paths]


def read_trajectories(
    paths: Union[PathLike, Iterable[PathLike]],
    *,
    format: Optional[str] = None,
    strict: bool = False,
) -> list[dict[str, Any]]:
    """Read agent trajectories (tau2-bench results, Who&When logs, chat JSONL; folders are
    searched) as ``padv score`` does, as a list of dicts.

    Malformed records are skipped with a warning (``strict=True`` raises on the first).

    >>> trajs = padv.read_trajectories("../shared/data/tau2/")      # doctest: +SKIP
    >>> trajs[0]["id"], len(trajs[0]["messages"])                   # doctest: +SKIP
    """
    trajectories, skipped = _padv.read_trajectories(_paths(paths), format=format, strict=strict)
    if skipped:
        warnings.warn(
            f"padv skipped {len(skipped)} malformed record(s); the first: {skipped[0]}",
            stacklevel=2,
        )
    return trajectories


def read_records(paths: Union[PathLike, Iterable[PathLike]]) -> Records:
    """Read log-prob record files (``records.jsonl`` or ``records.parquet`` from ``padv
    score``; the format is told by content)."""
    return _padv.read_records(_paths(paths))


def _trajectories(trajectories: Any) -> list[dict[str, Any]]:
    if isinstance(trajectories, (str, os.PathLike)):
        return read_trajectories(trajectories)
    if isinstance(trajectories, Mapping):
        return [dict(trajectories)]
    return list(trajectories)


def render(
    trajectories: Any,
    model: Optional[PathLike] = None,
    *,
    renderer: str = "paper",
    **options: Any,
) -> list[dict[str, Any]]:
    """What the model sees, one dict per trajectory, exactly as ``padv render --json`` prints
    it: ``id``, ``task_id`` and ``spans`` (``message_index``, ``is_action``, ``text``); with
    ``model`` (a checkpoint or tokenizer folder) also the token ids ``padv score`` scores
    (``ids``, or per-turn ``segments`` when the template rewrites history), each span's
    ``tokens`` and the truncation counts.

    Options are ``padv render``'s flags: ``max_length``, ``chat_template``, ``chat_tools``,
    ``enable_thinking``, ``chat_vars`` (dict), ``chat_date`` ("YYYY-MM-DD").

    >>> trajs = padv.read_trajectories("rollouts.jsonl")                # doctest: +SKIP
    >>> shown = padv.render(trajs[:1], "pair/policy", renderer="chat-template")  # doctest: +SKIP
    >>> [s["tokens"] for s in shown[0]["spans"] if s["is_action"]]      # doctest: +SKIP
    """
    return _padv.render(
        _trajectories(trajectories),
        None if model is None else os.fspath(model),
        renderer=renderer,
        **options,
    )


def _progress_callback(progress: Union[bool, Callable[[int, int], None]]):
    if callable(progress):
        return progress
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm  # notebook-aware when running in Jupyter
    except ImportError:
        tqdm = None
    if tqdm is None:
        import sys

        def report(done: int, total: int) -> None:
            end = "\n" if done >= total else "\r"
            print(f"padv: scored {done}/{total} trajectories", end=end, file=sys.stderr)

        return report
    bar: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, desc="padv score", unit="traj")
        b = bar["bar"]
        b.update(done - b.n)
        if done >= total:
            b.close()

    return update


def score(
    policy: Optional[PathLike],
    reference: Optional[PathLike],
    trajectories: Any,
    *,
    renderer: str = "paper",
    progress: Union[bool, Callable[[int, int], None]] = True,
    policy_endpoint: Union[None, str, Sequence[str]] = None,
    reference_endpoint: Union[None, str, Sequence[str]] = None,
    tokenizer: Optional[PathLike] = None,
    **options: Any,
) -> Records:
    """Score trajectories with a policy/reference pair — ``padv score``'s pipeline.

    ``policy`` and ``reference`` are checkpoint folders (or ``org/name`` in the local Hugging
    Face cache; nothing is downloaded). ``trajectories`` is a path, or the dicts
    :func:`read_trajectories` returns. Options are ``padv score``'s flags: ``max_length``,
    ``batch_size``, ``strict``, ``cache_dir``, ``chat_template``, ``chat_tools``,
    ``enable_thinking``, ``chat_vars``, ``chat_date``. ``progress`` shows a bar (tqdm when
    installed, so it renders in notebooks), or is called as ``progress(done, total)``.

    On vLLM / SGLang servers (or ``padv serve``) instead: ``policy_endpoint`` and
    ``reference_endpoint`` (a URL or a list of URLs, a fleet), the tokenizer from
    ``tokenizer`` or a local ``policy`` folder (``reference`` may be ``None``), and the
    remote flags of ``padv score`` as keywords: ``policy_model``, ``reference_model``,
    ``engine_kind``, ``concurrency``, ``timeout``, ``retries``, ``top_k``, ``error_budget``,
    ``max_model_len``, ``api_key_env``, ``policy_api_key_env``, ``reference_api_key_env``.

    Skipped trajectories (too long, non-finite values…) are reported as a warning; the run
    fails only when none could be scored.

    >>> records = padv.score("gym/pair/policy", "gym/pair/reference", "runs.jsonl")  # doctest: +SKIP
    >>> padv.evaluate(records, "uq").table()                                         # doctest: +SKIP
    >>> records = padv.score(None, None, "runs.jsonl", tokenizer="ckpt/policy",     # doctest: +SKIP
    ...                      policy_endpoint="http://gpu1:8000", reference_endpoint="http://gpu2:8000")
    """

    def urls(v: Union[None, str, Sequence[str]]) -> Optional[list[str]]:
        return None if v is None else [v] if isinstance(v, str) else list(v)

    records, info = _padv.score(
        None if policy is None else os.fspath(policy),
        None if reference is None else os.fspath(reference),
        _trajectories(trajectories),
        renderer=renderer,
        progress=_progress_callback(progress),
        policy_endpoint=urls(policy_endpoint),
        reference_endpoint=urls(reference_endpoint),
        tokenizer=None if tokenizer is None else os.fspath(tokenizer),
        **options,
    )
    skipped = info.get("stats", {}).get("skipped", 0)
    if skipped:
        warnings.warn(
            f"padv skipped {skipped} trajectory(ies): {info.get('skips')}", stacklevel=2
        )
    return records


def _records(records: Any) -> Records:
    if isinstance(records, Records):
        return records
    if isinstance(records, (str, os.PathLike)):
        return read_records(records)
    columns = _columns(records)
    if columns is not None and "message_index" in columns:
        # A table in the Parquet record schema (list columns per step): handed to the Rust
        # Parquet reader, which checks it exactly as it checks a file.
        return _padv.records_from_parquet_bytes(_parquet_bytes(records), "<table>")
    if hasattr(records, "to_pylist"):  # a pyarrow Table of record dicts
        rows = records.to_pylist()
    elif hasattr(records, "to_dicts"):  # a polars DataFrame
        rows = records.to_dicts()
    elif hasattr(records, "to_dict") and columns is not None:  # a pandas DataFrame
        rows = records.to_dict(orient="records")
    else:
        return Records(list(records))
    return Records([_clean_row(r) for r in rows])


def _columns(table: Any) -> Optional[list[str]]:
    names = getattr(table, "column_names", None)  # pyarrow
    if names is None:
        names = getattr(table, "columns", None)  # pandas, polars
    return None if names is None else [str(c) for c in names]


def _parquet_bytes(table: Any) -> bytes:
    """The table as an in-memory Parquet file (pyarrow; snappy, as padv writes)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    if hasattr(table, "to_arrow"):  # polars
        table = table.to_arrow()
    elif not isinstance(table, pa.Table):  # pandas
        table = pa.Table.from_pandas(table, preserve_index=False)
    # A column pandas filled with None only (an optional array no record has) comes back as
    # Arrow's null type; the schema lets optional columns be absent, so it is left out.
    nulls = [f.name for f in table.schema if pa.types.is_null(f.type)]
    if nulls:
        table = table.drop_columns(nulls)
    # pandas stores an integer column with gaps as floats: cast back (refusing 2.5).
    for name in _INTEGER_FIELDS:
        if name in table.column_names and pa.types.is_floating(table.schema.field(name).type):
            i = table.column_names.index(name)
            try:
                table = table.set_column(i, name, table.column(name).cast(pa.int64()))
            except pa.ArrowInvalid as e:
                raise PadvError(f"<table>: column {name}: {e}") from None
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy")
    return sink.getvalue()


_INTEGER_FIELDS = ("mistake_step", "vocab_size", "num_messages")


def _clean_row(row: dict[str, Any]) -> dict[str, Any]:
    """A table row as the record format has it: missing values (pandas' NaN, None) dropped,
    integer fields that a table stored as floats (pandas does when a column has gaps) made
    integers again, numpy values made Python values."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if hasattr(value, "tolist"):
            value = value.tolist()
        if value is None or (isinstance(value, float) and value != value):
            continue
        if key in _INTEGER_FIELDS and isinstance(value, float) and value.is_integer():
            value = int(value)
        if key == "steps":
            value = [
                {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in s.items() if v is not None}
                for s in value
            ]
        out[key] = value
    return out


def evaluate(records: Any, kind: str = "uq", *, grid: bool = False, **options: Any) -> Report:
    """Evaluate scores — ``padv eval KIND``.

    ``kind`` is ``"uq"`` (does the score predict success? AUROC), ``"bon"`` (best-of-N) or
    ``"fa"`` (failure attribution). ``records`` is a :class:`Records`, a list of record dicts,
    a record file, or a pandas/polars/pyarrow table with the record format's columns.
    Options are ``padv eval``'s flags: ``method``, ``token_agg``, ``step_agg``, ``pa_mode``,
    ``beta``, ``methods`` (with ``grid``), ``bootstrap``, ``folds``, ``seed``, ``judge``,
    ``judge_level``, ``table_budget_mib``. A record file is read as ``padv eval`` reads it:
    a batch at a time, and past ``table_budget_mib`` (default 512) a UQ evaluation re-reads
    it by groups of grid cells instead of holding every step's aggregates — the same report
    in bounded memory.

    >>> report = padv.evaluate(records, "uq", grid=True)   # doctest: +SKIP
    >>> print(report.table())                              # doctest: +SKIP
    """
    if isinstance(records, (str, os.PathLike)):
        return _padv.evaluate([os.fspath(records)], kind, grid=grid, **options)
    return _padv.evaluate(_records(records), kind, grid=grid, **options)
