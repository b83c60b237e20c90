"""The tools formset: add/remove keep data; names, schemas and limits each have their own message."""

from __future__ import annotations

import json

import pytest

from prompts_app.forms.builder import (
    NEW_TOOL_SCHEMA,
    BuilderForm,
    apply_action,
    state_from_content,
    state_from_data,
    state_to_data,
)
from prompts_app.forms.versions import MAX_SCHEMA_CHARS, MAX_TOOLS

OBJECT = {"type": "object", "properties": {"q": {"type": "string"}}}


def content_with(tools):
    return {
        "description": "",
        "provider": "openai",
        "model_name": "gpt-4o",
        "model_parameters": {},
        "messages": [{"role": "user", "content": "hi"}],
        "tools": tools,
    }


def form_for(tools, *actions, edit=None):
    data = state_to_data(state_from_content(content_with(tools)))
    for action in actions:
        data = state_to_data(apply_action(state_from_data(data), action))
    data.update(edit or {})
    return BuilderForm(data)


def tool_errors(form):
    found = list(form.tools.non_form_errors())
    for tool in form.tools:
        found += [e for errors in tool.errors.values() for e in errors]
    return found


def tool(name, parameters=OBJECT, description=""):
    return {"name": name, "description": description, "parameters": parameters}


def test_add_tool_appends_a_row_with_an_empty_object_schema_and_keeps_the_others():
    form = form_for([tool("a", description="first")], "add_tool")
    assert [t["name"].value() for t in form.tools] == ["a", ""]
    assert form.tools.forms[0]["description"].value() == "first"
    assert form.tools.forms[1]["parameters"].value() == NEW_TOOL_SCHEMA


def test_remove_tool_drops_only_that_row():
    form = form_for([tool("a"), tool("b"), tool("c")], "remove_tool:1")
    assert form.is_valid()
    assert [t["name"] for t in form.content()["tools"]] == ["a", "c"]


def test_parameters_are_parsed_into_python_objects():
    form = form_for([tool("lookup")])
    assert form.is_valid()
    assert form.tools.forms[0].cleaned_data["parameters"] == OBJECT


@pytest.mark.parametrize("name", ["has space", "dot.ted", "x" * 65, "émoji"])
def test_a_tool_name_outside_the_allowed_pattern_is_rejected(name):
    form = form_for([tool(name)])
    assert not form.is_valid()
    assert "Tool 1: the name must be 1-64 letters, digits, _ or - (no spaces or dots)." in tool_errors(form)


def test_a_tool_without_a_name_is_rejected():
    form = form_for([tool("")])
    assert not form.is_valid()
    assert "Tool 1: This field is required." in tool_errors(form)


def test_tool_names_must_be_unique():
    form = form_for([tool("a"), tool("b"), tool("a")])
    assert not form.is_valid()
    assert "Tool 3: the name “a” is already used by tool 1." in tool_errors(form)


def test_parameters_that_are_not_json_say_where_the_error_is():
    form = form_for([tool("a")], edit={"t-0-parameters": '{"type": "object",\n  "properties": }'})
    assert not form.is_valid()
    assert "Tool 1: This is not valid JSON: Expecting value (line 2, column 17)." in tool_errors(form)


def test_parameters_must_be_a_valid_json_schema():
    form = form_for([tool("a", {"type": "object", "properties": {"q": {"type": "strng"}}})])
    assert not form.is_valid()
    assert any(e.startswith("Tool 1: this is not a valid JSON Schema at properties/q/type:") for e in tool_errors(form))


@pytest.mark.parametrize("schema", [{"type": "string"}, {"properties": {}}])
def test_parameters_must_describe_an_object(schema):
    form = form_for([tool("a", schema)])
    assert not form.is_valid()
    assert 'Tool 1: the parameters schema must describe an object: "type": "object".' in tool_errors(form)


def test_parameters_must_be_a_json_object_not_a_list():
    form = form_for([tool("a")], edit={"t-0-parameters": "[1, 2]"})
    assert not form.is_valid()
    assert 'Tool 1: This must be a JSON object, like {"key": "value"}.' in tool_errors(form)


def test_a_schema_over_20000_characters_is_rejected():
    big = {"type": "object", "description": "x" * MAX_SCHEMA_CHARS, "properties": {}}
    form = form_for([tool("a")], edit={"t-0-parameters": json.dumps(big)})
    assert not form.is_valid()
    assert any(e.startswith("Tool 1: This is 20,0") and e.endswith("the limit is 20,000.") for e in tool_errors(form))


def test_empty_parameters_are_rejected_with_an_example():
    form = form_for([tool("a")], edit={"t-0-parameters": "  "})
    assert not form.is_valid()
    assert any("give the parameters as a JSON Schema" in e for e in tool_errors(form))


def test_at_most_64_tools():
    form = form_for([tool(f"t{i}") for i in range(MAX_TOOLS + 1)])
    assert not form.is_valid()
    assert "A version can have at most 64 tools; this one has 65." in tool_errors(form)
