"""What we send Maxim (prompts_app/maxim/requests.py), checked against the spec, and the one way to a client."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import respx

from prompts_app.maxim import (
    MaximError,
    ModelChoice,
    NewDeployment,
    NewPrompt,
    NewVersion,
    RunRequest,
    Use,
    client_for,
)
from prompts_app.maxim.client import CHECK_DEADLINE
from prompts_app.run_input import fill_variables
from prompts_app.services import versions as version_services
from prompts_app.services.runs import build_run_body
from tests.maxim_spec import validate_request

IDS = {"prompt_id": "prm_1", "version_id": "ver_1", "workspace_id": "ws_1"}
TOOL = {
    "name": "lookup_order",
    "description": "Find an order",
    "parameters": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
}
TOOL_CALL = {"id": "call_1", "type": "function", "function": {"name": "lookup_order", "arguments": '{"id": "A-1"}'}}


def run_request(messages: list[dict], *, tools: list[dict] = (), turns: list[dict] = (), **inputs) -> RunRequest:
    content = {
        "provider": "openai",
        "model_name": "gpt-4o",
        "model_parameters": {"temperature": 0.2},
        "messages": messages,
        "tools": list(tools),
    }
    return RunRequest.for_version(**IDS, content=content, inputs={"turns": list(turns), **inputs}, fill=fill_variables)


def test_a_text_run_body_is_exactly_what_we_have_always_sent():
    request = run_request(
        [{"role": "system", "content": "You help {{company}}."}],
        turns=[{"role": "user", "content": "Hi from {{company}}"}],
        variables={"company": "Acme"},
    )
    body = request.body()
    # The same JSON, key order included: stored on Run.request_body and re-sent by "run again".
    assert json.dumps(body) == json.dumps(
        {
            "promptId": "prm_1",
            "versionId": "ver_1",
            "workspaceId": "ws_1",
            "messages": [{"role": "system", "content": "You help Acme."}, {"role": "user", "content": "Hi from Acme"}],
            "modelName": "gpt-4o",
            "modelProvider": "openai",
            "modelParameters": {"temperature": 0.2},
        }
    )
    validate_request("POST", "/v1/prompts/run", body)


def test_image_parts_are_sent_as_parts_with_their_text_filled_in():
    parts = [
        {"type": "text", "text": "What is this, {{name}}?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "high"}},
    ]
    body = run_request([{"role": "user", "content": parts}], variables={"name": "Ada"}).body()
    assert body["messages"][0]["content"] == [{"type": "text", "text": "What is this, Ada?"}, parts[1]]
    validate_request("POST", "/v1/prompts/run", body)


def test_tool_calls_tool_results_and_tools_match_the_run_contract():
    messages = [
        {"role": "user", "content": "Where is A-1?"},
        {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]},
        {"role": "tool", "content": '{"status": "shipped"}', "tool_call_id": "call_1"},
    ]
    body = run_request(messages, tools=[TOOL, {"name": "bare"}]).body()
    assert body["messages"] == messages
    assert body["modelParameters"]["tools"] == [
        {"type": "function", "function": TOOL},
        {
            "type": "function",
            "function": {"name": "bare", "description": "", "parameters": {"type": "object", "properties": {}}},
        },
    ]
    validate_request("POST", "/v1/prompts/run", body)


def test_the_spec_check_catches_a_broken_run_body():
    body = run_request([{"role": "user", "content": "Hi"}]).body()
    with pytest.raises(AssertionError):
        validate_request("POST", "/v1/prompts/run", {**body, "messages": [{"role": "user", "content": 5}]})


def test_a_runs_overrides_win_over_the_versions_model():
    overrides = {"model_name": "gpt-4o-mini", "provider": "azure", "model_parameters": {"temperature": 0.9}}
    body = run_request([{"role": "user", "content": "Hi"}], overrides=overrides).body()
    assert (body["modelName"], body["modelProvider"], body["modelParameters"]) == (
        "gpt-4o-mini",
        "azure",
        {"temperature": 0.9},
    )


def test_the_service_builds_the_run_body_from_the_version(version):
    body = build_run_body(version=version, content=version.content(), inputs={"turns": [], "variables": {}})
    assert (body["promptId"], body["versionId"], body["workspaceId"]) == (
        version.prompt.maxim_id,
        version.maxim_id,
        version.prompt.workspace.maxim_id,
    )
    validate_request("POST", "/v1/prompts/run", body)


def test_version_prompt_and_deployment_bodies_match_the_spec():
    model = ModelChoice(name="gpt-4o", provider="openai", parameters={"temperature": 0.5}, tools=[TOOL])
    new_version = NewVersion(
        prompt_id="prm_1",
        description="d",
        model=model,
        messages=[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "", "tool_calls": [TOOL_CALL]}],
    )
    validate_request("POST", "/v1/prompts/versions", new_version.body())
    assert new_version.body()["modelParameters"]["tools"] == [{"type": "function", "function": TOOL}]
    validate_request("POST", "/v1/prompts", NewPrompt(workspace_id="ws_1", name="Greeter", folder_id="f1").body())
    conditions = [{"variable": "env", "operator": "=", "value": "prod"}]
    deploy = NewDeployment(prompt_id="prm_1", version_id="ver_1", workspace_id="ws_1", conditions=conditions)
    assert deploy.body() == {
        "promptId": "prm_1",
        "versionId": "ver_1",
        "workspaceId": "ws_1",
        "deploymentConditions": conditions,
    }
    validate_request("POST", "/v1/prompts/deploy", deploy.body())


def test_a_default_tool_schema_is_never_shared_between_bodies():
    model = ModelChoice(name="m", provider="openai", parameters={}, tools=[{"name": "a"}])
    first = model.api_parameters()["tools"][0]["function"]["parameters"]
    first["properties"]["x"] = {"type": "string"}
    assert model.api_parameters()["tools"][0]["function"]["parameters"] == {"type": "object", "properties": {}}


# -- client_for ---------------------------------------------------------------------------------


@respx.mock(assert_all_called=False)
def test_client_for_refuses_a_workspace_whose_origin_is_outside_the_outbound_policy(respx_mock, make_workspace, owner):
    route = respx_mock.route(host="evil.example.test")
    workspace = make_workspace(owner=owner, base_url="https://evil.example.test")
    with pytest.raises(MaximError, match="outbound policy"):
        client_for(workspace).list_prompts(workspace.maxim_id)
    assert not route.called


def test_client_for_fits_the_use(workspace):
    assert client_for(workspace).max_retries == 3
    assert client_for(workspace, Use.RUN).max_retries == 0
    checking = client_for(workspace, Use.CHECK)
    assert (checking.max_retries, checking.deadline) == (0, CHECK_DEADLINE)


def test_services_hand_views_their_own_error_not_the_clients(make_workspace, owner):
    workspace = make_workspace(owner=owner, base_url="https://evil.example.test")
    with pytest.raises(version_services.MaximCallFailed) as caught:
        version_services.sync_prompts(workspace)
    assert not isinstance(caught.value, MaximError) and "outbound policy" in caught.value.message


@pytest.mark.parametrize("package", ["views", "forms"])
def test_views_and_forms_never_import_the_client(package):
    root = Path(__file__).resolve().parents[1] / "prompts_app" / package
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                modules = [node.module or ""] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            assert not any(m == "prompts_app.maxim" or m.startswith("prompts_app.maxim.") for m in modules), path
