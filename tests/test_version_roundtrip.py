"""Version content -> builder form -> POST -> cleaned content is the same content, for every field."""

from __future__ import annotations

import copy

import pytest

from prompts_app.forms.builder import BuilderForm, state_from_content, state_from_data, state_to_data
from prompts_app.maxim import NewVersion
from prompts_app.models import PromptVersion

EVERYTHING = {
    "description": "Uses every field  \n(trailing spaces kept)",
    "provider": "anthropic",
    "model_name": "claude-3-5-sonnet-latest",
    "model_parameters": {
        "temperature": 0.7,
        "max_tokens": 1024,
        "top_p": 0.95,
        "frequency_penalty": -0.5,
        "presence_penalty": 1.25,
        "stop": ["END", "  ###"],
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "reply",
                "strict": True,
                "schema": {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]},
            },
        },
        "seed": 42,
        "tool_choice": {"type": "function", "function": {"name": "lookup_order"}},
        "logit_bias": {"50256": -100},
    },
    "messages": [
        {"role": "system", "content": "You help {{company}} customers.\n\n  Indented line kept.  "},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this picture, {{name}}?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "high"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "text", "text": ""},
            ],
        },
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "call_abc",
                    "type": "function",
                    "function": {"name": "lookup_order", "arguments": '{"id": "A-1"}'},
                },
                {
                    "id": "call_def",
                    "type": "function",
                    "function": {"name": "refund", "arguments": '{ "amount" : 3.50 }'},
                },
            ],
        },
        {"role": "tool", "content": '{"status": "shipped"}', "tool_call_id": "call_abc"},
        {"role": "tool", "content": [{"type": "text", "text": "refunded"}], "tool_call_id": "call_def"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "call_x", "type": "function", "function": {"name": "lookup_order", "arguments": "{}"}}
            ],
        },
        {"role": "model", "content": "model says"},
        {"role": "chatbot", "content": "chatbot says"},
    ],
    "tools": [
        {
            "name": "lookup_order",
            "description": "Find an order by id",
            "parameters": {
                "type": "object",
                "properties": {"id": {"type": "string", "pattern": "^[A-Z]-\\d+$"}},
                "required": ["id"],
                "additionalProperties": False,
            },
        },
        {
            "name": "refund",
            "description": "",
            "parameters": {"type": "object", "properties": {"amount": {"type": "number", "minimum": 0}}},
        },
    ],
}


def round_trip(content):
    data = state_to_data(state_from_content(content))
    # The browser posts every value back as text; re-reading that POST must not change anything.
    form = BuilderForm(state_to_data(state_from_data(data)))
    assert form.is_valid(), (form.settings.errors, [m.errors for m in form.messages], [t.errors for t in form.tools])
    return form.content()


def test_a_version_using_every_field_survives_the_round_trip_exactly():
    assert round_trip(EVERYTHING) == EVERYTHING


def test_the_round_trip_works_from_a_stored_version(prompt):
    version = PromptVersion.objects.create(prompt=prompt, maxim_id="v-all", number=9, **copy.deepcopy(EVERYTHING))
    version.refresh_from_db()
    assert round_trip(version.content()) == version.content()


@pytest.mark.parametrize("fmt", [{"type": "text"}, {"type": "json_object"}])
def test_simple_response_formats_survive(fmt):
    content = {**EVERYTHING, "model_parameters": {"response_format": fmt}}
    assert round_trip(content) == content


def test_no_parameters_stays_no_parameters():
    content = {**EVERYTHING, "model_parameters": {}, "tools": []}
    assert round_trip(content) == content


def test_the_api_payload_of_the_round_tripped_content_matches_the_original(prompt):
    original = PromptVersion(prompt=prompt, **copy.deepcopy(EVERYTHING))
    again = PromptVersion(prompt=prompt, **round_trip(EVERYTHING))

    def body(version: PromptVersion) -> dict:
        return NewVersion.from_content(prompt_id=prompt.maxim_id, content=version.content()).body()

    assert body(again) == body(original)
