"""A hostile teammate against batch checks: outputs and check configs built to crash or hang the worker,
or to turn the start form into a 500. Each test performs the attack."""

from __future__ import annotations

import html
import json
import time

import pytest
from django.urls import reverse

from prompts_app.checks import CheckConfigError, CheckInput, build_check, build_checks
from prompts_app.models import BatchComparison
from tests.test_batch_views import form_data


def evaluate(spec: dict, text: str, **inputs):
    return build_check(spec).evaluate(CheckInput(output_text=text, **inputs))


# --- a check never raises -----------------------------------------------------------------------


def test_valid_json_on_50000_nested_brackets_fails_instead_of_raising():
    result = evaluate({"type": "valid_json"}, "[" * 50_000 + "]" * 50_000)
    assert not result.passed and "nested too deeply" in result.reason


def test_a_schema_check_on_deep_json_fails_instead_of_raising():
    result = evaluate({"type": "json_schema", "schema": {"type": "array"}}, "[" * 50_000 + "]" * 50_000)
    assert not result.passed and "nested too deeply" in result.reason


def test_a_check_stored_before_the_guards_fails_with_a_reason_instead_of_raising():
    check = build_check({"type": "json_schema", "schema": {"type": "object"}})
    check.config["schema"] = {"$ref": "#"}  # endless recursion inside jsonschema
    result = check.evaluate(CheckInput(output_text="{}"))
    assert not result.passed and result.reason.startswith("the check could not be evaluated: ")


@pytest.mark.parametrize(
    "schema, words",
    [
        ({"$ref": "#"}, "refers back to itself"),
        (
            {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"not": {"$ref": "#/$defs/a"}}}, "$ref": "#/$defs/a"},
            "refers back",
        ),
        ({"$ref": "https://example.com/schema.json"}, "not a pointer inside this schema"),
        ({"$ref": "#/$defs/missing"}, "not a pointer inside this schema"),
        ({"$dynamicRef": "#meta"}, "not supported"),
    ],
)
def test_schemas_with_ref_cycles_or_remote_refs_are_refused_when_configured(schema, words):
    with pytest.raises(CheckConfigError, match=words):
        build_check({"type": "json_schema", "schema": schema})


def test_a_local_ref_without_a_cycle_still_works():
    schema = {"$defs": {"name": {"type": "string"}}, "properties": {"a": {"$ref": "#/$defs/name"}}}
    assert evaluate({"type": "json_schema", "schema": schema}, '{"a": "x"}').passed
    assert not evaluate({"type": "json_schema", "schema": schema}, '{"a": 1}').passed


# --- patterns inside schemas are time-limited ----------------------------------------------------


def test_a_polynomial_schema_pattern_on_5000_as_finishes_quickly_and_fails():
    schema = {"type": "string", "pattern": "^a*a*a*a*a*a*b"}
    started = time.monotonic()
    result = evaluate({"type": "json_schema", "schema": schema}, json.dumps("a" * 5000))
    assert time.monotonic() - started < 8
    assert not result.passed and "took too long" in result.reason


def test_a_polynomial_pattern_property_on_a_long_key_finishes_quickly():
    schema = {"type": "object", "patternProperties": {"^a*a*a*a*a*a*b": {"type": "integer"}}}
    started = time.monotonic()
    result = evaluate({"type": "json_schema", "schema": schema}, json.dumps({"a" * 5000: "x"}))
    assert time.monotonic() - started < 8
    assert not result.passed and "took too long" in result.reason


def test_many_slow_strings_share_one_time_budget():
    schema = {"type": "array", "items": {"type": "string", "pattern": "^a*a*a*a*a*a*b"}}
    started = time.monotonic()
    result = evaluate({"type": "json_schema", "schema": schema}, json.dumps(["a" * 5000] * 20))
    assert time.monotonic() - started < 12  # not 20 x 2 s
    assert not result.passed


def test_many_tool_calls_share_one_time_budget():
    schema = {"type": "object", "properties": {"q": {"type": "string", "pattern": "^a*a*a*a*a*a*b"}}}
    calls = [{"function": {"name": "f", "arguments": json.dumps({"q": "a" * 5000})}} for _ in range(20)]
    output = {"choices": [{"message": {"tool_calls": calls}}]}
    started = time.monotonic()
    result = evaluate({"type": "tool_call", "tool": "f", "schema": schema}, "", output=output)
    assert time.monotonic() - started < 12  # not 20 x 5 s
    assert not result.passed and "took" in result.reason


def test_schema_patterns_still_match_normally():
    schema = {"type": "string", "pattern": "^[A-Z][a-z]+$"}
    assert evaluate({"type": "json_schema", "schema": schema}, '"Oslo"').passed
    result = evaluate({"type": "json_schema", "schema": schema}, '"oslo"')
    assert not result.passed and "does not match" in result.reason


def test_an_exponential_schema_pattern_is_refused_when_configured():
    with pytest.raises(CheckConfigError, match="refused"):
        build_check({"type": "json_schema", "schema": {"type": "string", "pattern": "(a+)+$"}})


# --- bad check input is a form error ---------------------------------------------------------------


def test_at_most_12_checks_and_3_with_regular_expressions():
    assert len(build_checks([{"type": "valid_json"}] * 12)) == 12
    with pytest.raises(CheckConfigError, match="At most 12 checks"):
        build_checks([{"type": "valid_json"}] * 13)
    regexes = [{"type": "regex", "pattern": "a"}] * 3
    patterned = {"type": "json_schema", "schema": {"items": {"pattern": "b"}}}
    assert len(build_checks([*regexes, {"type": "json_schema", "schema": {"type": "array"}}])) == 4
    with pytest.raises(CheckConfigError, match="At most 3 checks with regular expressions"):
        build_checks([*regexes, patterned])


def deep_not(levels: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(levels):
        schema = {"not": schema}
    return schema


@pytest.mark.parametrize(
    "check_json, words",
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        (json.dumps([{"type": "json_schema", "schema": deep_not(900)}]), "nested too deeply"),
        ('[{"type": "length", "max": ' + "9" * 5000 + "}]", "The checks are"),
        ('[{"type": ["x"]}]', "unknown type"),
        ('[{"type": {}}]', "unknown type"),
        ('[{"type": "cost", "max_usd": "1E+100000000"}]', "max_usd must be"),
        ('[{"type": "length", "max": 1e400}]', "max must be"),
        (json.dumps([{"type": "regex", "pattern": "a"}] * 4), "At most 3 checks with regular expressions"),
    ],
)
def test_bad_check_json_re_renders_the_form_keeping_the_input(
    client_for, editor, workspace, batch_test_set, two_versions, check_json, words
):
    data = form_data(two_versions, batch_test_set, check_json=check_json, title="Hostile")
    response = client_for(editor).post(reverse("batch_new", args=[workspace.pk]), data)
    text = html.unescape(response.content.decode())
    assert response.status_code == 200 and 'role="alert"' in text and words in text
    assert 'value="Hostile"' in text
    assert not BatchComparison.objects.exists()


def test_stored_checks_that_no_longer_build_fail_each_output_with_the_reason():
    from prompts_app import checks

    built = checks.stored_checks([{"type": "json_schema", "schema": {"$ref": "#"}}])
    result = built[0].evaluate(checks.CheckInput(output_text="{}"))
    assert result.passed is False and "cannot run" in result.reason
    assert (
        checks.stored_checks([{"type": "contains", "value": "a"}])[0]
        .evaluate(checks.CheckInput(output_text="a"))
        .passed
    )
