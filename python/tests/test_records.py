"""`records_from_logprobs`: numpy, torch and ragged inputs give the records the record format
defines (compared with a file written by hand and read by the CLI), and bad inputs raise
clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import padv
from conftest import records_jsonl_by_hand



def _torch():
    import torch  # noqa: PLC0415  (CI installs it; a missing torch must fail, not skip)

    return torch


def test_numpy_torch_and_ragged_inputs_give_identical_records(batch):
    pol, ref, mask, labels, task_ids = batch
    a = padv.records_from_logprobs(pol, ref, mask=mask, labels=labels, task_ids=task_ids)
    t = _torch()
    b = padv.records_from_logprobs(
        t.from_numpy(pol), t.from_numpy(ref), mask=t.from_numpy(mask),
        labels=t.from_numpy(labels), task_ids=task_ids,
    )
    # bf16 is what trainers often hold: converted to float32, values as bf16 rounds them.
    c = padv.records_from_logprobs(
        [pol[i] for i in range(len(pol))], [ref[i] for i in range(len(ref))],
        mask=[mask[i] for i in range(len(mask))], labels=list(labels), task_ids=task_ids,
    )
    assert a.to_list() == b.to_list() == c.to_list()
    assert len(a) == pol.shape[0]


def test_records_equal_the_record_file_written_by_hand(batch, tmp_path, cli):
    pol, ref, mask, labels, task_ids = batch
    path = tmp_path / "hand.jsonl"
    records_jsonl_by_hand(pol, ref, mask, labels, task_ids, path)
    ours = padv.records_from_logprobs(pol, ref, mask=mask, labels=labels, task_ids=task_ids)
    by_hand = [json.loads(line) for line in path.read_text().splitlines()]
    assert ours.to_list() == by_hand
    # ... and the CLI's evaluation of that file equals the package's evaluation of ours.
    for kind in ("uq", "bon"):
        expected = json.loads(cli("eval", kind, "--input", path, "--grid", "--json").stdout)
        got = padv.evaluate(ours, kind, grid=True).to_dict()
        assert got == expected, kind


def test_explicit_spans_and_message_indices(batch):
    pol, ref, _, _, _ = batch
    recs = padv.records_from_logprobs(
        pol[:2], ref[:2], [[(0, 3), (5, 9)], [(2, 4)]], message_indices=[[1, 3], [5]],
        mistake_steps=[3, None], ids=["a", "b"],
    )
    a, b = recs.to_list()
    assert [s["message_index"] for s in a["steps"]] == [1, 3]
    assert a["steps"][1]["policy"] == [float(x) for x in pol[0, 5:9]]
    assert a["mistake_step"] == 3 and b["task_id"] == "b"


def test_verl_and_trl_recipes(batch):
    t = _torch()
    pol, ref, mask, labels, task_ids = batch
    scores = np.zeros_like(pol)
    last = mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)
    scores[np.arange(len(pol)), last] = labels  # verl puts the outcome reward on the last token

    class DataProto:  # the two attributes verl's DataProto has
        batch = {
            "old_log_probs": t.from_numpy(pol).to(t.bfloat16),
            "ref_log_prob": t.from_numpy(ref).to(t.bfloat16),
            "response_mask": t.from_numpy(mask),
            "token_level_scores": t.from_numpy(scores),
        }
        non_tensor_batch = {"uid": np.array(task_ids, dtype=object)}

    got = padv.recipes.from_verl(DataProto())
    bf = lambda x: t.from_numpy(x).to(t.bfloat16).float().numpy()  # noqa: E731
    want = padv.records_from_logprobs(bf(pol), bf(ref), mask=mask, labels=labels, task_ids=task_ids)
    assert got.to_list() == want.to_list()

    inputs = {
        "completion_mask": t.from_numpy(mask),
        "old_per_token_logps": None,
        "ref_per_token_logps": t.from_numpy(ref),
    }
    with pytest.raises(padv.PadvError, match="num_iterations=1"):
        padv.recipes.from_trl_grpo(inputs, rewards=labels)
    got = padv.recipes.from_trl_grpo(
        inputs, rewards=t.from_numpy(labels), policy_logprobs=t.from_numpy(pol), num_generations=4
    )
    spans = [[(0, pol.shape[1])]] * len(pol)
    want = padv.records_from_logprobs(
        pol, ref, spans, mask=mask, labels=labels, task_ids=[str(i // 4) for i in range(len(pol))]
    )
    assert got.to_list() == want.to_list()
    assert all(len(r["steps"]) == 1 for r in got.to_list())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(policy_logprobs=np.array([[np.nan, -1.0]], dtype=np.float32)), "trajectory 0"),
        (dict(policy_logprobs=np.array([[-0.5, 0.7]], dtype=np.float32)), "positive log-probability"),
        (dict(policy_logprobs=np.zeros((1, 2, 3), dtype=np.float32)), "shape (1, 2, 3)"),
        (dict(policy_logprobs=[[-1.0]], step_spans=[[(0, 5)]]), "0..5"),
        (dict(policy_logprobs=[[-1.0, -2.0]], step_spans=[[(0, 2), (1, 2)]]), "overlaps"),
        (dict(policy_logprobs=[[-1.0]], reference_logprobs=[[-1.0, -2.0]]), "reference_logprobs has 2"),
        (dict(policy_logprobs=[[-1.0]], labels=[1.0, 0.0]), "labels has 2 entries"),
        (dict(policy_logprobs=[[-1.0], [-2.0]], ids=["x", "x"]), "share the id"),
        (dict(policy_logprobs=[[-1.0]], mask=[["a"]]), "mask"),
        (dict(policy_logprobs=[[-1.0]], labels=[float("inf")]), "label"),
        (dict(policy_logprobs="not an array"), "policy_logprobs"),
    ],
)
def test_bad_inputs_raise_errors_that_name_the_problem(kwargs, message):
    with pytest.raises(padv.PadvError) as e:
        padv.records_from_logprobs(**kwargs)
    assert message in str(e.value)
    assert isinstance(e.value, ValueError)


def test_docstring_examples_run():
    import doctest

    import padv.arrays

    for module in (padv, padv.arrays, padv.client, padv.recipes):
        result = doctest.testmod(module, extraglobs={"padv": padv})
        assert result.failed == 0, module.__name__
    assert doctest.testmod(padv.arrays).attempted > 0
