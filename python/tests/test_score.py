"""`padv.score`, `padv.read_trajectories`, `padv.render` and `padv.Client` against the CLI
and `padv serve`, on the gym's committed model pair."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time

import pytest

import padv
from conftest import PAIR, padv_bin


@pytest.fixture(scope="module")
def rollouts(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    from conftest import run_cli

    # Eight real rollouts of the pair on one held-out map.
    run_cli("demo", "--quick", "--maps", "1", "--seed", "5", "--out", out / "demo")
    return out / "demo" / "policy" / "trajectories.jsonl"


def test_read_trajectories_and_render(rollouts, cli):
    trajs = padv.read_trajectories(rollouts)
    assert len(trajs) == len(rollouts.read_text().splitlines())
    # The same shape and values as `padv render --json`, tokenised and as paper text spans.
    for model, renderer in ((PAIR / "policy", "chat-template"), (None, "paper")):
        args = ["render", "--input", rollouts, "--limit", "2", "--json", "--renderer", renderer]
        if model is not None:
            args += ["--model", model]
        shown = json.loads(cli(*args).stdout)
        shown = shown if isinstance(shown, list) else [shown]
        rendered = padv.render(trajs[:2], model, renderer=renderer)
        assert rendered == shown
    assert rendered[0]["spans"][0]["message_index"] == 0
    assert "ids" in padv.render(trajs[:1], PAIR / "policy", renderer="chat-template")[0]


def test_score_equals_padv_score(rollouts, tmp_path, cli):
    out = tmp_path / "cli"
    cli("score", "--policy", PAIR / "policy", "--reference", PAIR / "reference",
        "--input", rollouts, "--out", out, "--batch-size", "4", "--no-cache")
    # Read back by the Rust reader: JSON holds f32 values in their shortest decimal form.
    expected = padv.read_records(out / "records.jsonl").to_list()
    seen = []
    records = padv.score(
        PAIR / "policy", PAIR / "reference", rollouts, batch_size=4,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert records.to_list() == expected
    assert seen and seen[-1][0] == seen[-1][1] == len(expected)


def test_score_errors_are_exceptions(rollouts, tmp_path):
    with pytest.raises(padv.PadvError, match="no_such_dir"):
        padv.score(tmp_path / "no_such_dir", PAIR / "reference", rollouts, progress=False)
    with pytest.raises(padv.PadvError, match="max_length=0"):
        padv.score(PAIR / "policy", PAIR / "reference", rollouts, max_length=0, progress=False)
    with pytest.raises(padv.PadvError, match="renderer"):
        padv.score(PAIR / "policy", PAIR / "reference", rollouts, renderer="nope", progress=False)
    with pytest.raises(padv.PadvError, match="chat_date"):
        padv.render(padv.read_trajectories(rollouts)[:1], PAIR / "policy",
                    renderer="chat-template", chat_date="2023-02-30")


@pytest.fixture(scope="module")
def server():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PADV_API_KEY="python-test-key")
    proc = subprocess.Popen(
        [str(padv_bin()), "serve", "--port", str(port), "--policy", str(PAIR / "policy"),
         "--reference", str(PAIR / "reference")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail(f"padv serve did not listen on port {port} within 60 s")
            time.sleep(0.1)
    yield url
    proc.kill()
    proc.wait()


def test_client_matches_the_library(server, rollouts):
    trajs = padv.read_trajectories(rollouts)
    with pytest.raises(padv.client.ServerError) as e:
        padv.Client(server).score(trajs[0])
    assert e.value.status == 401
    client = padv.Client(server, api_key="python-test-key")
    answer = client.score(trajs[0])
    # /v1/score's record is `padv score --batch-size 1`'s (the server's one-path promise).
    local = padv.score(PAIR / "policy", PAIR / "reference", trajs[:1], batch_size=1, progress=False)
    assert padv.Records([answer["record"]])[0] == local[0]
    history = trajs[0]["messages"][:2]
    cands = [m for m in trajs[0]["messages"] if m["role"] == "assistant"][:3]
    ranked = client.candidates(history, cands)
    assert 0 <= ranked["best"] < len(cands)
    with client.session(history) as s:
        step = s.append(trajs[0]["messages"][2:4])
        assert "trajectory" in step
    with pytest.raises(padv.client.ServerError) as e:
        client.candidates(history, [])
    assert 400 <= e.value.status < 500


def test_score_on_servers_equals_padv_score_on_servers(server, rollouts, tmp_path, cli, monkeypatch):
    # The key travels by its variable's name, as with the CLI's --api-key-env.
    monkeypatch.setenv("PADV_PY_TEST_KEY", "python-test-key")
    remote = dict(policy_model="policy", reference_model="reference", api_key_env="PADV_PY_TEST_KEY")
    out = tmp_path / "remote"
    cli("score", "--policy-endpoint", server, "--reference-endpoint", server,
        "--policy-model", "policy", "--reference-model", "reference",
        "--api-key-env", "PADV_PY_TEST_KEY", "--tokenizer", PAIR / "policy",
        "--input", rollouts, "--out", out, "--batch-size", "4", "--no-cache")
    expected = padv.read_records(out / "records.jsonl").to_list()
    records = padv.score(None, None, rollouts, policy_endpoint=server, reference_endpoint=[server],
                         tokenizer=PAIR / "policy", batch_size=4, progress=False, **remote)
    assert records.to_list() == expected
    # The tokenizer may come from a local copy of the policy, as with `--policy`.
    again = padv.score(PAIR / "policy", None, rollouts, policy_endpoint=server,
                       reference_endpoint=server, batch_size=4, progress=False, **remote)
    assert again.to_list() == expected
    # What is missing or wrong is named as a keyword.
    def fails(match, **kw):
        with pytest.raises(padv.PadvError, match=match):
            padv.score(None, None, rollouts, progress=False, **{**remote, **kw})
    fails("reference_endpoint=", policy_endpoint=server)
    fails("tokenizer=", policy_endpoint=server, reference_endpoint=server)
    fails("timeout=", policy_endpoint=server, reference_endpoint=server, timeout=0)
    fails("engine_kind", policy_endpoint=server, reference_endpoint=server, engine_kind="tgi")
    fails("PADV_PY_NO_SUCH_VAR", policy_endpoint=server, reference_endpoint=server,
          tokenizer=PAIR / "policy", api_key_env="PADV_PY_NO_SUCH_VAR")
    with pytest.raises(padv.PadvError, match="local scoring needs"):
        padv.score(PAIR / "policy", None, rollouts, progress=False)
