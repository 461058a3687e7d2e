"""Trainer recipes: PA records straight from an RL trainer's batch.

Written against the trainers' documented tensor names; neither trainer is imported (these
functions only read the tensors), so they work inside a training loop or on a saved batch.

verl (PPO/GRPO, ``DataProto`` after ``compute_log_prob`` and ``compute_ref_log_prob``)::

    records = padv.recipes.from_verl(batch)              # steps = agent turns of response_mask
    padv.evaluate(records, "uq", grid=True).table()

TRL (``GRPOTrainer``: the dict ``_generate_and_score_completions`` returns)::

    records = padv.recipes.from_trl_grpo(inputs, rewards=rewards, num_generations=8)
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from ._padv import PadvError, Records
from .arrays import records_from_logprobs

__all__ = ["from_trl_grpo", "from_verl"]


def _get(tensors: Any, key: str) -> Any:
    try:
        return tensors[key]
    except (KeyError, IndexError, TypeError):
        return None


def _full_spans(mask: Any) -> list[Optional[list[tuple[int, int]]]]:
    n, t = mask.shape[0], mask.shape[1]
    return [[(0, int(t))] for _ in range(n)]


def from_verl(
    batch: Any,
    *,
    steps: str = "turns",
    labels: Any = None,
    task_ids: Optional[Sequence[Any]] = None,
    ids: Optional[Sequence[Any]] = None,
) -> Records:
    """Records from a verl batch: ``batch.batch["old_log_probs"]`` (π_θ),
    ``["ref_log_prob"]`` (π_ref) and ``["response_mask"]`` over the response tokens.

    - ``steps="turns"``: each run of ``response_mask`` 1s is one agent turn (verl's multi-turn
      rollouts set the mask to 0 on tool/environment tokens); ``"response"``: the whole
      response is one step (single-turn).
    - ``labels``: default the outcome reward, ``token_level_scores`` summed over tokens.
    - ``task_ids``: default ``non_tensor_batch["uid"]`` (verl's id of the prompt a rollout
      answers; GRPO's group), so best-of-N groups rollouts of one prompt.
    """
    tensors = getattr(batch, "batch", batch)
    non_tensor: Mapping[str, Any] = getattr(batch, "non_tensor_batch", None) or {}
    policy = _get(tensors, "old_log_probs")
    if policy is None:
        raise PadvError(
            'verl batch: no "old_log_probs" (run compute_log_prob on the batch first)'
        )
    reference = _get(tensors, "ref_log_prob")
    mask = _get(tensors, "response_mask")
    if mask is None:
        attention = _get(tensors, "attention_mask")
        if attention is None:
            raise PadvError('verl batch: neither "response_mask" nor "attention_mask"')
        mask = attention[:, -policy.shape[-1] :]
    if labels is None:
        scores = _get(tensors, "token_level_scores")
        if scores is not None:
            labels = scores.sum(-1)
    if task_ids is None and "uid" in non_tensor:
        task_ids = [str(u) for u in non_tensor["uid"]]
    if steps == "turns":
        spans = None
    elif steps == "response":
        spans = _full_spans(mask)
    else:
        raise PadvError(f'steps={steps!r}: expected "turns" or "response"')
    return records_from_logprobs(
        policy, reference, spans, mask=mask, labels=labels, task_ids=task_ids, ids=ids
    )


def from_trl_grpo(
    inputs: Mapping[str, Any],
    *,
    rewards: Any,
    num_generations: Optional[int] = None,
    policy_logprobs: Any = None,
    steps: str = "response",
    task_ids: Optional[Sequence[Any]] = None,
    ids: Optional[Sequence[Any]] = None,
) -> Records:
    """Records from TRL's ``GRPOTrainer`` inputs: ``old_per_token_logps`` (π_θ),
    ``ref_per_token_logps`` (π_ref) and ``completion_mask``.

    - ``rewards``: the per-completion rewards (TRL keeps only the advantages in ``inputs``).
    - ``num_generations``: completions per prompt, consecutive in the batch as GRPO lays them
      out; sets ``task_ids`` (best-of-N groups) unless given.
    - ``policy_logprobs``: TRL leaves ``old_per_token_logps`` as ``None`` when it runs one
      iteration per generation (``num_iterations=1``); pass the per-token log-probs
      ``compute_loss`` computes (detached) instead.
    - ``steps="response"``: the completion is one step; ``"turns"``: each run of
      ``completion_mask`` 1s is one (for multi-turn rollouts that mask tool output).
    """
    policy = policy_logprobs if policy_logprobs is not None else inputs.get("old_per_token_logps")
    if policy is None:
        raise PadvError(
            "TRL inputs: old_per_token_logps is None (TRL skips it when num_iterations=1): "
            "pass policy_logprobs= with the per-token log-probs of the policy"
        )
    reference = inputs.get("ref_per_token_logps")
    if reference is None:
        raise PadvError(
            "TRL inputs: ref_per_token_logps is None (TRL skips the reference when beta=0): "
            "PA needs the reference's log-probs"
        )
    mask = inputs.get("completion_mask")
    if mask is None:
        raise PadvError('TRL inputs: no "completion_mask"')
    n = policy.shape[0]
    if task_ids is None and num_generations is not None:
        if num_generations < 1 or n % num_generations:
            raise PadvError(
                f"num_generations={num_generations} does not divide the batch of {n} completions"
            )
        task_ids = [str(i // num_generations) for i in range(n)]
    if steps == "response":
        spans = _full_spans(mask)
    elif steps == "turns":
        spans = None
    else:
        raise PadvError(f'steps={steps!r}: expected "response" or "turns"')
    return records_from_logprobs(
        policy, reference, spans, mask=mask, labels=rewards, task_ids=task_ids, ids=ids
    )
