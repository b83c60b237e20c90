"""The fake Maxim server, driven through the real client."""

from __future__ import annotations

import dataclasses
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from prompts_app import maxim
from prompts_app.maxim import MaximClient, MaximError, ModelChoice, NewDeployment, NewPrompt, NewVersion
from devtools.maxim_server import FakeMaxim

CONDITIONS = [{"variable": "env", "operator": "=", "value": "prod"}]


@pytest.fixture
def server():
    with FakeMaxim() as fake:
        yield fake


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(server, sleeps):
    with httpx.Client(timeout=5.0) as http:
        yield MaximClient(server.base_url, server.api_key, http=http, sleep=sleeps.append)


def new_version(client: MaximClient, model: str = "gpt-4o", text: str = "Hello {{name}}") -> tuple[str, str]:
    prompt = client.create_prompt(NewPrompt(workspace_id="ws_default", name=f"Prompt for {model}"))
    version = client.create_version(
        NewVersion(
            prompt_id=prompt.id,
            description="first",
            model=ModelChoice(model, "openai", {"temperature": 0.1}, []),
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}],
        )
    )
    return prompt.id, version.id


def run_body(prompt_id: str, version_id: str, text: str = "Hello Ada", **extra: object) -> dict:
    return {
        "promptId": prompt_id,
        "versionId": version_id,
        "workspaceId": "ws_default",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}],
        **extra,
    }


def test_workspaces_are_paginated(server, client):
    server.max_page_size = 1
    server.add_workspace("Third")
    assert [w.name for w in client.list_workspaces()] == ["Default workspace", "Staging", "Third"]
    assert [r.query.get("cursor") for r in server.requests_to("/v1/workspaces")] == [None, "1", "2"]
    assert server.violations == []


def test_the_whole_journey(server, client):
    prompt = client.create_prompt(NewPrompt(workspace_id="ws_default", name="Greeter", description="says hi"))
    assert [p.id for p in client.list_prompts("ws_default")] == [prompt.id]
    assert client.list_prompts("ws_staging") == []

    request = NewVersion(
        prompt_id=prompt.id,
        description="first",
        model=ModelChoice("gpt-4o", "openai", {"temperature": 0.1}, []),
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi {{name}}"}],
    )
    version = client.create_version(request)
    again = client.create_version(dataclasses.replace(request, description="second"))
    assert [v.version for v in client.list_versions(prompt.id)] == [1, 2]
    assert [m["payload"]["content"] for m in version.messages] == ["Be brief.", "Hi {{name}}"]
    assert (version.model, version.provider, version.author_name) == ("gpt-4o", "openai", "Fake Author")

    result = client.run(run_body(prompt.id, again.id, "Hi Ada", modelName="gpt-4o", modelProvider="openai"))
    assert result.text == "Echo: Hi Ada"
    assert (result.prompt_tokens, result.completion_tokens, result.total_tokens) == (4, 3, 7)

    deployed = client.deploy(
        NewDeployment(prompt_id=prompt.id, version_id=again.id, workspace_id="ws_default", conditions=CONDITIONS)
    )
    assert (deployed.version_id, deployed.status) == (again.id, "active")
    assert server.violations == []
    assert all(r.headers["x-maxim-api-key"] == server.api_key for r in server.requests)


def test_runs_overlap(server):
    server.run_delay = 0.5
    client = MaximClient(server.base_url, server.api_key)  # the shared pool, as the app uses it
    try:
        prompt_id, version_id = new_version(client)
        results: list[str] = []
        threads = [
            threading.Thread(
                target=lambda n=n: results.append(client.run(run_body(prompt_id, version_id, f"run {n}")).text)
            )
            for n in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        maxim.close_pools()
    runs = server.requests_to("/v1/prompts/run")
    assert sorted(results) == [f"Echo: run {n}" for n in range(4)]
    assert max(r.arrived for r in runs) < min(r.finished for r in runs)  # they overlapped


def test_a_valid_request_makes_no_violation_and_an_invalid_one_does(server, client):
    prompt_id, version_id = new_version(client)
    client.run(run_body(prompt_id, version_id))
    assert server.violations == []
    with pytest.raises(MaximError):
        client.run({"promptId": prompt_id, "variables": {"name": "Ada"}})
    [violation] = server.violations
    assert "'versionId' is a required property" in violation
    assert "body.variables: not a field of POST /v1/prompts/run" in violation


def test_a_placeholder_left_in_a_run_is_a_violation(server, client):
    prompt_id, version_id = new_version(client)
    client.run(run_body(prompt_id, version_id, "Hello {{name}}"))
    assert any("{{name}}" in v for v in server.violations)


def test_a_wrong_key_is_refused(server):
    with httpx.Client() as http:
        client = MaximClient(server.base_url, "wrong-key-999", http=http)
        with pytest.raises(MaximError, match="rejected the API key"):
            client.list_workspaces()


def test_fail_next_injects_failures(server, client, sleeps):
    server.fail_next("/v1/workspaces", 503, times=2)
    assert len(client.list_workspaces()) == 2
    assert [r.status for r in server.requests_to("/v1/workspaces")] == [503, 503, 200]
    assert sleeps == [0.5, 1.0]


def test_fail_next_can_serve_a_body_that_is_not_json(server, client):
    server.fail_next("/v1/prompts", 200, body=b"<html>login</html>", headers={"Content-Type": "text/html"})
    with pytest.raises(MaximError, match="not JSON"):
        client.list_prompts("ws_default")


@pytest.mark.parametrize(
    "model, status, message",
    [
        ("fail-401", 401, "rejected the API key"),
        ("fail-500", 500, r"server error \(500\)"),
    ],
)
def test_runs_fail_by_model_name_and_are_sent_once(server, client, model, status, message):
    prompt_id, version_id = new_version(client, model)
    with pytest.raises(MaximError, match=message) as caught:
        client.run(run_body(prompt_id, version_id))
    assert caught.value.status == status
    assert len(server.requests_to("/v1/prompts/run")) == 1


def test_a_rate_limited_run_is_retried_with_retry_after(server, client, sleeps):
    prompt_id, version_id = new_version(client, "fail-429")
    with pytest.raises(MaximError, match="rate limiting"):
        client.run(run_body(prompt_id, version_id))
    assert sleeps == [1.0, 1.0, 1.0]
    assert len(server.requests_to("/v1/prompts/run")) == 4


def test_a_hanging_run_times_out_once(server):
    server.hang_seconds = 3
    with httpx.Client(timeout=httpx.Timeout(5.0, read=0.3)) as http:
        client = MaximClient(server.base_url, server.api_key, http=http)
        prompt_id, version_id = new_version(client, "hang")
        started = time.monotonic()
        with pytest.raises(MaximError, match="did not answer within 1 second"):
            client.run(run_body(prompt_id, version_id))
    assert time.monotonic() - started < 2.9  # given up well before the server's 3 s hang
    assert len(server.requests_to("/v1/prompts/run")) == 1


def test_tool_calls_and_string_outputs(server, client):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "Weather",
                "parameters": {"type": "object", "properties": {}},
            },
        }
    ]
    prompt_id, version_id = new_version(client, "tool-call")
    result = client.run(run_body(prompt_id, version_id, "Oslo", modelParameters={"tools": tools}))
    [call] = result.tool_calls
    assert call["function"]["name"] == "weather" and result.text == ""

    prompt_id, version_id = new_version(client, "string-output")
    result = client.run(run_body(prompt_id, version_id, "plain"))
    assert (result.output, result.text) == ("Echo: plain", "Echo: plain")
    assert server.violations == []


def test_it_runs_as_a_script():  # as `make fake-maxim` runs it, from the repository's root
    root = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-m", "devtools.maxim_server", "--port", "0"]
    process = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        base_url, key = re.search(r"(http://\S+)\s+API key: (\S+)", line).groups()
        with httpx.Client() as http:
            assert len(MaximClient(base_url, key, http=http).list_workspaces()) == 2
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=5)
