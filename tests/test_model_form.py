"""The model settings: provider, model, typed parameters and the extra-parameters JSON box."""

from __future__ import annotations

import pytest

from prompts_app.forms.versions import SettingsForm
from prompts_app.models import PROVIDERS


def settings(**fields):
    return SettingsForm({"provider": "openai", "model_name": "gpt-4o", **fields})


def errors(form, field):
    form.is_valid()
    return list(form.errors.get(field, []))


def test_every_provider_of_the_spec_is_offered():
    assert [value for value, _ in SettingsForm().fields["provider"].choices] == PROVIDERS
    assert len(PROVIDERS) == 16
    for provider in PROVIDERS:
        assert settings(provider=provider).is_valid()


def test_an_unknown_provider_is_rejected():
    assert errors(settings(provider="skynet"), "provider")


def test_a_model_name_is_required():
    assert errors(settings(model_name=" "), "model_name") == ["Choose a model, e.g. gpt-4o."]


def test_empty_typed_parameters_are_omitted_not_sent_as_null():
    form = settings(temperature="", max_tokens="", top_p="", stop="", response_format="", extra="")
    assert form.is_valid()
    assert form.model_parameters() == {}


def test_typed_parameters_become_numbers_and_lists():
    form = settings(
        temperature="0.3",
        max_tokens="200",
        top_p="1",
        frequency_penalty="-2",
        presence_penalty="2",
        stop="END\r\n###\n\n",
    )
    assert form.is_valid(), form.errors
    assert form.model_parameters() == {
        "temperature": 0.3,
        "max_tokens": 200,
        "top_p": 1.0,
        "frequency_penalty": -2.0,
        "presence_penalty": 2.0,
        "stop": ["END", "###"],
    }


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("temperature", "2.1", "Ensure this value is less than or equal to 2."),
        ("temperature", "-0.1", "Ensure this value is greater than or equal to 0."),
        ("max_tokens", "0", "Ensure this value is greater than or equal to 1."),
        ("max_tokens", "1.5", "Enter a whole number."),
        ("top_p", "1.01", "Ensure this value is less than or equal to 1."),
        ("frequency_penalty", "-2.5", "Ensure this value is greater than or equal to -2."),
        ("presence_penalty", "3", "Ensure this value is less than or equal to 2."),
        ("temperature", "warm", "Enter a number."),
    ],
)
def test_typed_parameters_outside_their_range_are_rejected(field, value, message):
    assert errors(settings(**{field: value}), field) == [message]


def test_at_most_four_stop_sequences():
    assert errors(settings(stop="a\nb\nc\nd\ne"), "stop") == ["At most 4 stop sequences; you gave 5."]


@pytest.mark.parametrize(("fmt", "expected"), [("text", {"type": "text"}), ("json_object", {"type": "json_object"})])
def test_simple_response_formats(fmt, expected):
    form = settings(response_format=fmt)
    assert form.is_valid()
    assert form.model_parameters() == {"response_format": expected}


def test_json_schema_response_format_carries_the_schema():
    form = settings(response_format="json_schema", response_schema='{"name": "answer", "schema": {"type": "object"}}')
    assert form.is_valid()
    assert form.model_parameters() == {
        "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}
    }


def test_json_schema_response_format_needs_a_schema():
    assert errors(settings(response_format="json_schema"), "response_schema") == [
        "Give the JSON schema the response must follow."
    ]


def test_a_response_schema_without_the_json_schema_format_is_rejected():
    assert errors(settings(response_format="text", response_schema="{}"), "response_schema") == [
        "A schema is only used with the “JSON schema” response format."
    ]


def test_an_unknown_response_format_is_rejected():
    assert errors(settings(response_format="xml"), "response_format")


def test_extra_parameters_are_merged_in():
    form = settings(temperature="1", extra='{"seed": 7, "tool_choice": "auto"}')
    assert form.is_valid()
    assert form.model_parameters() == {"temperature": 1.0, "seed": 7, "tool_choice": "auto"}


def test_extra_parameters_must_be_a_json_object():
    assert errors(settings(extra="[1]"), "extra") == ['This must be a JSON object, like {"key": "value"}.']


def test_extra_parameters_that_are_not_json_say_where():
    assert errors(settings(extra='{"seed": 7,}'), "extra") == [
        "This is not valid JSON: Expecting property name enclosed in double quotes (line 1, column 12)."
    ]


@pytest.mark.parametrize("key", ["temperature", "max_tokens", "stop", "response_format"])
def test_extra_parameters_may_not_repeat_a_typed_one(key):
    assert errors(settings(extra=f'{{"{key}": 1}}'), "extra") == [
        f"“{key}” has its own field above; set it there instead."
    ]


def test_extra_parameters_may_not_carry_tools():
    assert errors(settings(extra='{"tools": []}'), "extra") == ["Tools have their own section below; add them there."]
