"""Importing a prompt's versions from Maxim: conversion, idempotence, recorded completions."""

from __future__ import annotations

import copy

import httpx
import respx

from prompts_app.models import PromptVersion
from tests.maxim_spec import validate_request

LIST_URL = "https://maxim.test/v1/prompts/versions"
TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look up",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    },
}


def wrapper(index, payload, id=None):
    return {
        "id": id or f"msg-{index}",
        "index": index,
        "payload": payload,
        "currentType": "message",
        "originalType": "message",
    }


def maxim_version(id="ver-1", number=1, description="First", messages=None, params=None, author="Ada"):
    return {
        "id": id,
        "version": number,
        "description": description,
        "promptId": "prompt-1",
        "config": {
            "model": "gpt-4o",
            "provider": "openai",
            "author": {"id": "u", "name": author},
            "messages": messages
            if messages is not None
            else [
                # Out of order on purpose: Maxim's index decides.
                wrapper(1, {"role": "user", "content": "Hi {{name}}"}),
                wrapper(0, {"role": "system", "content": "Be brief."}),
            ],
            "modelParameters": params if params is not None else {"temperature": 0.1, "tools": [TOOL]},
        },
        "createdAt": "2025-05-01T10:00:00.000Z",
        "updatedAt": "2025-05-01T10:00:00.000Z",
    }


def import_with(client, prompt, versions, status=200):
    with respx.mock() as mock:
        route = mock.get(LIST_URL).mock(
            return_value=httpx.Response(
                status, json={"data": versions} if status == 200 else {"error": {"message": "Prompt not found"}}
            )
        )
        response = client.post(f"/prompts/{prompt.pk}/import/", follow=True)
    return response, route


def test_import_converts_maxim_versions_into_our_content(client_for, editor, prompt):
    response, route = import_with(client_for(editor), prompt, [maxim_version()])
    request = route.calls.last.request
    assert request.url.params["promptId"] == "prompt-1"
    validate_request("GET", "/v1/prompts/versions", None, dict(request.url.params))
    version = PromptVersion.objects.get(prompt=prompt, maxim_id="ver-1")
    assert version.source == PromptVersion.Source.IMPORTED
    assert version.number == 1 and version.description == "First" and version.author_name == "Ada"
    assert version.maxim_created_at.isoformat() == "2025-05-01T10:00:00+00:00"
    assert version.messages == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi {{name}}"}]
    assert version.tools == [
        {
            "name": "lookup",
            "description": "Look up",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
        }
    ]
    assert version.model_parameters == {"temperature": 0.1}
    assert version.raw["id"] == "ver-1"
    assert "Imported from Maxim: 1 new versions, 0 updated." in response.content.decode()


def test_importing_twice_updates_and_never_duplicates(client_for, editor, prompt):
    client = client_for(editor)
    import_with(client, prompt, [maxim_version(), maxim_version(id="ver-2", number=2, description="Second")])
    first_ids = set(PromptVersion.objects.values_list("pk", flat=True))
    response, _ = import_with(
        client,
        prompt,
        [
            maxim_version(description="First, renamed", author="Bob"),
            maxim_version(id="ver-2", number=2, description="Second"),
        ],
    )
    assert set(PromptVersion.objects.values_list("pk", flat=True)) == first_ids
    assert PromptVersion.objects.get(maxim_id="ver-1").description == "First, renamed"
    assert PromptVersion.objects.get(maxim_id="ver-1").author_name == "Bob"
    assert "0 new versions, 2 updated" in response.content.decode()


def test_a_version_created_here_keeps_its_source_when_imported_again(client_for, editor, version):
    version.source = PromptVersion.Source.CREATED
    version.save()
    import_with(client_for(editor), version.prompt, [maxim_version(id="version-1", description="From Maxim")])
    version.refresh_from_db()
    assert version.source == PromptVersion.Source.CREATED and version.description == "From Maxim"


def test_a_recorded_completion_becomes_an_assistant_message_with_its_tool_calls(client_for, editor, prompt):
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": "Checking your order.",
                    "tool_calls": [
                        {"id": "call_9", "type": "function", "function": {"name": "lookup", "arguments": {"q": "A-1"}}}
                    ],
                },
            }
        ],
    }
    messages = [
        wrapper(0, {"role": "user", "content": "Where is A-1?"}),
        wrapper(1, completion),
        wrapper(2, {"role": "tool", "content": "shipped", "tool_call_id": "call_9"}),
    ]
    client = client_for(editor)
    import_with(client, prompt, [maxim_version(messages=messages)])
    version = PromptVersion.objects.get(maxim_id="ver-1")
    assert version.messages[1] == {
        "role": "assistant",
        "content": "Checking your order.",
        "tool_calls": [
            {"id": "call_9", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "A-1"}'}}
        ],
    }
    assert version.messages[2] == {"role": "tool", "content": "shipped", "tool_call_id": "call_9"}
    assert version.raw["config"]["messages"][1]["payload"] == completion  # the raw is kept
    html = client.get(f"/versions/{version.pk}/").content.decode()
    assert "recorded completion" in html
    assert "Recorded completion as Maxim stores it" in html and "chatcmpl-1" in html  # the raw, readable
    assert "Checking your order." in html and "call_9" in html and "{&quot;q&quot;: &quot;A-1&quot;}" in html


def test_a_completion_without_content_becomes_an_empty_string(client_for, editor, prompt):
    completion = {
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}],
                }
            }
        ]
    }
    import_with(
        client_for(editor),
        prompt,
        [maxim_version(messages=[wrapper(0, {"role": "user", "content": "x"}), wrapper(1, completion)])],
    )
    assert PromptVersion.objects.get().messages[1]["content"] == ""


def test_an_imported_version_opens_in_the_builder_unchanged(client_for, editor, prompt):
    import_with(client_for(editor), prompt, [maxim_version()])
    version = PromptVersion.objects.get()
    html = client_for(editor).get(f"/prompts/{prompt.pk}/build/?from={version.pk}").content.decode()
    assert "Be brief." in html and 'value="lookup"' in html and 'value="0.1"' in html


def test_a_maxim_error_is_shown_and_nothing_changes(client_for, editor, version):
    before = copy.deepcopy(version.content())
    response, _ = import_with(client_for(editor), version.prompt, [], status=404)
    html = response.content.decode()
    assert "Could not import versions: Maxim could not find the prompt" in html
    assert "test-key-1234" not in html
    version.refresh_from_db()
    assert version.content() == before and PromptVersion.objects.count() == 1


def test_a_viewer_cannot_import(client_for, viewer, prompt):
    with respx.mock(assert_all_called=False) as mock:
        route = mock.get(LIST_URL)
        assert client_for(viewer).post(f"/prompts/{prompt.pk}/import/").status_code == 403
    assert not route.called


def test_an_outsider_gets_404_on_import(client_for, outsider, prompt):
    assert client_for(outsider).post(f"/prompts/{prompt.pk}/import/").status_code == 404


def test_import_is_post_only(client_for, editor, prompt):
    assert client_for(editor).get(f"/prompts/{prompt.pk}/import/").status_code == 405
