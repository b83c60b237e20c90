"""JSON typed into the builder: bad or deeply nested JSON is a message next to the field, never a 500."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from prompts_app.forms.fields import JSONTextField
from prompts_app.forms.versions import ToolCallForm
from prompts_app.jsontext import MAX_DEPTH, JSONTextError, load_json

DEEP = "[" * 100_000 + "]" * 100_000  # RecursionError in Python's own parser


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def test_it_reads_json_up_to_the_depth_limit():
    assert load_json('{"a": [1, {"b": null}]}') == {"a": [1, {"b": None}]}
    assert load_json(nested(MAX_DEPTH)) is not None


@pytest.mark.parametrize("text", [DEEP, nested(MAX_DEPTH + 1), '{"a": ' + nested(MAX_DEPTH) + "}"])
def test_it_refuses_json_nested_too_deeply(text):
    with pytest.raises(JSONTextError, match="nested too deeply"):
        load_json(text)


def test_a_tool_schema_nested_too_deeply_is_a_field_error():
    with pytest.raises(ValidationError, match="This is nested too deeply"):
        JSONTextField(expect_object=True).clean('{"type": "object", "properties": ' + DEEP + "}")


def test_tool_call_arguments_nested_too_deeply_are_an_error_next_to_the_call():
    form = ToolCallForm({"id": "call_1", "name": "lookup", "arguments": DEEP})
    assert not form.is_valid()
    assert any("the arguments are nested too deeply" in e for e in form.errors["arguments"])
