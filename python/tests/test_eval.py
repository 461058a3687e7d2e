"""`padv.evaluate` is `padv eval`: the same report on the same records, for every kind."""

from __future__ import annotations

import json

import numpy as np
import pytest

import padv
from conftest import synthetic_batch


@pytest.fixture(scope="module")
def records_file(tmp_path_factory):
    pol, ref, mask, labels, task_ids = synthetic_batch(11, n=40)
    rng = np.random.default_rng(3)
    recs = padv.records_from_logprobs(pol, ref, mask=mask, labels=labels, task_ids=task_ids)
    # Failure attribution needs annotated mistakes: one of each failed record's steps.
    rows = recs.to_list()
    for r in rows:
        if r["label"] == 0.0 and r["steps"]:
            r["mistake_step"] = int(rng.choice([s["message_index"] for s in r["steps"]]))
    path = tmp_path_factory.mktemp("eval") / "records.jsonl"
    padv.Records(rows).write_jsonl(str(path))
    return path


@pytest.mark.parametrize("kind", ["uq", "bon", "fa"])
@pytest.mark.parametrize("grid", [False, True])
def test_evaluate_equals_padv_eval(records_file, cli, kind, grid):
    args = ["eval", kind, "--input", records_file, "--bootstrap", "200", "--seed", "5"]
    opts = dict(bootstrap=200, seed=5)
    if grid:
        args.append("--grid")
    else:
        args += ["--method", "policy_logprob", "--token-agg", "sum"]
        opts.update(method="policy_logprob", token_agg="sum")
    expected_json = json.loads(cli(*args, "--json").stdout)
    expected_table = cli(*args).stdout
    report = padv.evaluate(padv.read_records(records_file), kind, grid=grid, **opts)
    assert report.to_dict() == expected_json
    assert json.loads(report.to_json()) == expected_json
    assert report.table().rstrip("\n") == expected_table.rstrip("\n")
    assert report.kind == kind


def test_tables_and_dicts_are_accepted(records_file):
    import pandas as pd
    import pyarrow as pa

    records = padv.read_records(records_file)
    want = padv.evaluate(records, "uq", grid=True, bootstrap=0).to_dict()
    rows = records.to_list()
    assert padv.evaluate(rows, "uq", grid=True, bootstrap=0).to_dict() == want
    frame = pd.DataFrame(rows)  # gaps in mistake_step become NaN floats in pandas
    assert padv.evaluate(frame, "uq", grid=True, bootstrap=0).to_dict() == want
    assert padv.evaluate(pa.Table.from_pylist(rows), "uq", grid=True, bootstrap=0).to_dict() == want
    assert padv.evaluate(str(records_file), "uq", grid=True, bootstrap=0).to_dict() == want
    # Parquet written here, read by the Rust reader, and by pyarrow as a table.
    parquet = records_file.parent / "records.parquet"
    records.write_parquet(str(parquet))
    assert padv.evaluate(str(parquet), "uq", grid=True, bootstrap=0).to_dict() == want
    # A file over the table budget is read again per group of cells: the same report.
    for path in (str(records_file), parquet):
        got = padv.evaluate(path, "uq", grid=True, bootstrap=0, table_budget_mib=0)
        assert got.to_dict() == want
    import pyarrow.parquet as pq

    table = pq.read_table(parquet)
    assert padv.evaluate(table, "uq", grid=True, bootstrap=0).to_dict() == want
    assert padv.evaluate(table.to_pandas(), "uq", grid=True, bootstrap=0).to_dict() == want


def test_report_as_a_dataframe(records_file):
    report = padv.evaluate(padv.read_records(records_file), "uq", grid=True, bootstrap=0)
    methods = report.to_pandas()
    names = [m["method"] for m in report.to_dict()["results"]["methods"]]
    assert list(methods["method"]) == names
    assert len(report.to_pandas("cells")) == report.to_dict()["cells"]
    with pytest.raises(padv.PadvError, match="has no"):
        report.to_pandas("nothing")


def test_nothing_to_evaluate_is_said_not_zero():
    rec = {"id": "a", "task_id": "a", "label": 1.0, "steps": [{"message_index": 0, "policy": [-1.0], "reference": [-0.5]}]}
    report = padv.evaluate([rec], "uq")
    assert report.note is not None and "nothing to evaluate" in report.note
    assert "null" in report.table() or "n/a" in report.table() or "nothing" in report.table()


@pytest.mark.parametrize(
    "opts, message",
    [
        (dict(grid=True, method="pa"), "grid"),
        (dict(method="no_such_method"), "method"),
        (dict(beta=float("nan")), "beta must be finite"),
        (dict(grid=True, folds=1), "folds 1"),
        (dict(method="judge"), "judge name"),
    ],
)
def test_bad_options_raise(records_file, opts, message):
    with pytest.raises(padv.PadvError, match=message):
        padv.evaluate(padv.read_records(records_file), "uq", **opts)


def test_bad_record_files_name_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a", "task_id": "a", "steps": [{"message_index": 0, "policy": [0.5]}]}\n')
    with pytest.raises(padv.PadvError, match=r"bad.jsonl: record 1.*positive"):
        padv.read_records(path)
    with pytest.raises(padv.PadvError, match="record 0"):
        padv.Records([{"id": "a"}])
