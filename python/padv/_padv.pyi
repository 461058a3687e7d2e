"""Type stubs of padv's native module (crates/padv-py)."""

from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt

__version__: str

class PadvError(ValueError):
    """padv refused an input or failed a job; the message names the file, record and field."""

class Records:
    """Log-prob records, one per trajectory, held in Rust memory."""

    def __init__(self, items: list[dict[str, Any]]) -> None: ...
    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    def to_list(self) -> list[dict[str, Any]]: ...
    @property
    def ids(self) -> list[str]: ...
    def write_jsonl(self, path: str) -> None: ...
    def write_parquet(self, path: str) -> None: ...

class Report:
    """An evaluation report."""

    def table(self) -> str: ...
    def to_dict(self) -> dict[str, Any]: ...
    def to_json(self) -> str: ...
    def to_pandas(self, what: str = "methods") -> Any: ...
    @property
    def kind(self) -> str: ...
    @property
    def note(self) -> Optional[str]: ...

def read_records(paths: list[str]) -> Records: ...
def records_from_parquet_bytes(data: bytes, name: str) -> Records: ...
def records_from_arrays(
    policy: list[npt.NDArray[np.float32]],
    reference: Optional[list[npt.NDArray[np.float32]]],
    masks: Optional[list[npt.NDArray[np.bool_]]],
    steps: Optional[list[Optional[list[tuple[int, int]]]]],
    ids: list[str],
    task_ids: list[Optional[str]],
    labels: list[Optional[float]],
    mistake_steps: list[Optional[int]],
    message_indices: Optional[list[Optional[list[int]]]],
    vocab_size: Optional[int] = None,
) -> Records: ...
def evaluate(
    records: Union[Records, list[str]],
    kind: str,
    *,
    grid: bool = False,
    method: Optional[str] = None,
    token_agg: str = "mean",
    step_agg: str = "mean",
    pa_mode: str = "diff_of_agg",
    beta: float = 1.0,
    methods: Optional[Sequence[str]] = None,
    bootstrap: int = 1000,
    folds: int = 5,
    seed: int = 0,
    judge: Optional[str] = None,
    judge_level: Optional[str] = None,
    table_budget_mib: int = 512,
) -> Report: ...
def read_trajectories(
    paths: list[str], *, format: Optional[str] = None, strict: bool = False
) -> tuple[list[dict[str, Any]], list[str]]: ...
def render(
    trajectories: list[dict[str, Any]],
    model: Optional[str] = None,
    *,
    renderer: str = "paper",
    max_length: int = ...,
    chat_template: Optional[str] = None,
    chat_tools: Optional[list[Any]] = None,
    enable_thinking: Optional[bool] = None,
    chat_vars: Optional[dict[str, Any]] = None,
    chat_date: Optional[str] = None,
) -> list[dict[str, Any]]: ...
def score(
    policy: Optional[str],
    reference: Optional[str],
    trajectories: list[dict[str, Any]],
    *,
    renderer: str = "paper",
    max_length: int = ...,
    batch_size: int = ...,
    strict: bool = False,
    cache_dir: Optional[str] = None,
    chat_template: Optional[str] = None,
    chat_tools: Optional[list[Any]] = None,
    enable_thinking: Optional[bool] = None,
    chat_vars: Optional[dict[str, Any]] = None,
    chat_date: Optional[str] = None,
    progress: Optional[Callable[[int, int], None]] = None,
    policy_endpoint: Optional[list[str]] = None,
    reference_endpoint: Optional[list[str]] = None,
    policy_model: Optional[str] = None,
    reference_model: Optional[str] = None,
    tokenizer: Optional[str] = None,
    engine_kind: Optional[str] = None,
    concurrency: int = 8,
    timeout: float = 600.0,
    retries: int = 5,
    top_k: int = 20,
    error_budget: int = 20,
    max_model_len: Optional[int] = None,
    api_key_env: Optional[str] = None,
    policy_api_key_env: Optional[str] = None,
    reference_api_key_env: Optional[str] = None,
) -> tuple[Records, dict[str, Any]]: ...
