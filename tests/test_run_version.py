"""services.runs: what is sent to Maxim for a run, and what is recorded before and after."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from prompts_app import rendering
from prompts_app.models import PromptVersion, Run
from prompts_app.services.runs import execute_run, run_version, start_run
from tests.maxim_spec import validate_request

RUN_URL = "https://maxim.test/v1/prompts/run"
INPUTS = {
    "turns": [{"role": "user", "content": "Where is my order, {{name}}?"}],
    "variables": {"company": "Acme", "name": "Ann"},
    "overrides": {},
}


def answer(output, prompt_tokens=12, completion_tokens=5) -> httpx.Response:
    usage = {
        "promptTokens": prompt_tokens,
        "completionTokens": completion_tokens,
        "totalTokens": prompt_tokens + completion_tokens,
    }
    return httpx.Response(200, json={"data": {"output": output, "usage": usage}})


def chat(content, tool_calls=None) -> dict:
    message = {"role": "assistant", "content": content}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    return {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}


def the_body(route) -> dict:
    assert route.call_count == 1
    body = json.loads(route.calls.last.request.content)
    validate_request("POST", "/v1/prompts/run", body, headers=dict(route.calls.last.request.headers))
    return body


@respx.mock
def test_variables_are_filled_into_the_version_messages_and_the_turns(version, editor):
    route = respx.post(RUN_URL).mock(return_value=answer(chat("ok")))
    run_version(version=version, inputs=INPUTS, user=editor)
    body = the_body(route)
    assert body["messages"] == [
        {"role": "system", "content": "You are a helpful support agent for Acme."},
        {"role": "user", "content": "Hello, I am Ann."},
        {"role": "user", "content": "Where is my order, Ann?"},
    ]
    assert body["promptId"] == "prompt-1" and body["versionId"] == "version-1" and body["workspaceId"] == "ws-1"
    assert body["modelName"] == "gpt-4o" and body["modelProvider"] == "openai"
    assert body["modelParameters"] == {"temperature": 0.2, "max_tokens": 256}
    assert "variables" not in body


@respx.mock
def test_overrides_replace_model_provider_and_parameters(version, editor):
    route = respx.post(RUN_URL).mock(return_value=answer(chat("ok")))
    overrides = {
        "model_name": "claude-3-5-haiku-latest",
        "provider": "anthropic",
        "model_parameters": {"temperature": 0.9, "top_p": 0.5},
    }
    run = run_version(version=version, inputs={**INPUTS, "overrides": overrides}, user=editor)
    body = the_body(route)
    assert body["modelName"] == "claude-3-5-haiku-latest" and body["modelProvider"] == "anthropic"
    assert body["modelParameters"] == {"temperature": 0.9, "max_tokens": 256, "top_p": 0.5}
    assert run.model_name == "claude-3-5-haiku-latest" and run.provider == "anthropic"
    assert run.input["overrides"] == overrides


@respx.mock
def test_version_tools_go_into_model_parameters(prompt, editor):
    version = PromptVersion.objects.create(
        prompt=prompt,
        maxim_id="v-tools",
        provider="openai",
        model_name="gpt-4o",
        messages=[{"role": "system", "content": "Use tools."}],
        tools=[
            {
                "name": "lookup_order",
                "description": "Find an order",
                "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
            }
        ],
    )
    route = respx.post(RUN_URL).mock(return_value=answer(chat("ok")))
    run_version(version=version, inputs={"turns": [{"role": "user", "content": "hi"}]}, user=editor)
    [tool] = the_body(route)["modelParameters"]["tools"]
    assert tool["type"] == "function" and tool["function"]["name"] == "lookup_order"


@respx.mock
def test_a_run_is_recorded_as_pending_before_anything_is_sent(version, editor):
    seen = {}

    def reply(request):
        seen["runs"] = list(Run.objects.values_list("status", "request_body"))
        return answer(chat("ok"))

    respx.post(RUN_URL).mock(side_effect=reply)
    run = run_version(version=version, inputs=INPUTS, user=editor)
    [(status, body)] = seen["runs"]
    assert status == Run.Status.PENDING
    assert body == run.request_body


@respx.mock
def test_a_successful_run_stores_output_tokens_latency_and_who(version, editor):
    output = chat("Your order ships today.")
    respx.post(RUN_URL).mock(return_value=answer(output, prompt_tokens=40, completion_tokens=6))
    run = run_version(version=version, inputs=INPUTS, user=editor)
    run.refresh_from_db()
    assert run.status == Run.Status.SUCCESS
    assert run.output == output  # raw, kept as returned
    assert run.output_text == "Your order ships today."
    assert (run.prompt_tokens, run.completion_tokens, run.total_tokens) == (40, 6, 46)
    assert run.latency_ms is not None and run.latency_ms >= 0
    assert run.user == editor and run.finished_at >= run.created_at
    assert run.input_text == "Acme\nAnn\nWhere is my order, {{name}}?"
    assert run.error == "" and run.error_status is None


@respx.mock
def test_the_key_is_a_header_and_never_stored(version, editor):
    route = respx.post(RUN_URL).mock(return_value=answer(chat("ok")))
    run = run_version(version=version, inputs=INPUTS, user=editor)
    assert route.calls.last.request.headers["x-maxim-api-key"] == "test-key-1234"
    stored = json.dumps([run.request_body, run.input, run.output, run.error])
    assert "test-key-1234" not in stored


@respx.mock
def test_tool_calls_are_kept_and_rendered_with_pretty_arguments(version, editor):
    calls = [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "lookup_order", "arguments": '{"id":"A-17","full":true}'},
        }
    ]
    respx.post(RUN_URL).mock(return_value=answer(chat(None, calls)))
    run = run_version(version=version, inputs=INPUTS, user=editor)
    assert run.tool_calls == calls
    view = rendering.output_view(output=run.output, text=run.output_text, tool_calls=run.tool_calls)
    [call] = view.tool_calls
    assert call.name == "lookup_order"
    assert call.arguments == '{\n  "id": "A-17",\n  "full": true\n}'
    assert view.other_json == ""


def test_tool_call_arguments_that_are_not_json_are_shown_as_sent():
    [call] = rendering.tool_call_views([{"function": {"name": "f", "arguments": "{oops"}}])
    assert call.arguments == "{oops"


@respx.mock
def test_a_bare_string_output_is_the_text(version, editor):
    respx.post(RUN_URL).mock(return_value=answer("plain words"))
    run = run_version(version=version, inputs=INPUTS, user=editor)
    assert run.output == "plain words" and run.output_text == "plain words"


@respx.mock
def test_an_unknown_output_shape_is_shown_as_pretty_json(version, editor):
    respx.post(RUN_URL).mock(return_value=answer({"result": {"score": 3}}))
    run = run_version(version=version, inputs=INPUTS, user=editor)
    assert run.status == Run.Status.SUCCESS
    view = rendering.output_view(output=run.output, text=run.output_text, tool_calls=run.tool_calls)
    assert view.other_json == '{\n  "result": {\n    "score": 3\n  }\n}'


@respx.mock
def test_a_draft_content_is_run_against_its_version(version, editor):
    route = respx.post(RUN_URL).mock(return_value=answer(chat("ok")))
    content = {**version.content(), "model_name": "gpt-4o-mini", "messages": [{"role": "system", "content": "Draft"}]}
    run, created = start_run(
        version=version, inputs={"turns": [{"role": "user", "content": "x"}]}, user=editor, content=content
    )
    assert created and run.is_draft
    execute_run(run)
    body = the_body(route)
    assert body["modelName"] == "gpt-4o-mini" and body["messages"][0] == {"role": "system", "content": "Draft"}


@respx.mock
def test_the_same_idempotency_key_returns_the_first_run_without_sending(version, editor):
    route = respx.post(RUN_URL).mock(return_value=answer(chat("ok")))
    first = run_version(version=version, inputs=INPUTS, user=editor, idempotency_key="k1")
    again = run_version(version=version, inputs=INPUTS, user=editor, idempotency_key="k1")
    assert again.pk == first.pk
    assert route.call_count == 1 and Run.objects.count() == 1


@pytest.mark.parametrize("content", ["I am {{ name }}", [{"type": "text", "text": "I am {{name}}"}]])
@respx.mock
def test_placeholders_with_spaces_and_in_text_parts_are_filled(version, editor, content):
    route = respx.post(RUN_URL).mock(return_value=answer(chat("ok")))
    inputs = {"turns": [{"role": "user", "content": content}], "variables": {"company": "A", "name": "Ann"}}
    run_version(version=version, inputs=inputs, user=editor)
    last = the_body(route)["messages"][-1]["content"]
    assert (last if isinstance(last, str) else last[0]["text"]) == "I am Ann"
