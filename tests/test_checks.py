"""Checks on a run's output: each check's pass and fail with its reason, the regex guard, the registry."""

from __future__ import annotations

import json
import time

import pytest

from prompts_app import checks, safe_regex
from prompts_app.checks import CheckConfigError, CheckInput, CheckResult, build_check, build_checks, parse_checks


def run(spec: dict, text: str = "", **inputs) -> CheckResult:
    return build_check(spec).evaluate(CheckInput(output_text=text, **inputs))


def tool_output(*calls: tuple[str, object]) -> dict:
    tool_calls = [
        {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": args}}
        for i, (name, args) in enumerate(calls)
    ]
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": tool_calls}}]}


def test_contains_is_case_insensitive_by_default():
    assert run({"type": "contains", "value": "Refund"}, "we will REFUND you") == CheckResult(True, "contains 'Refund'")
    assert run({"type": "contains", "value": "refund"}, "no money back") == CheckResult(
        False, "does not contain 'refund'"
    )


def test_contains_can_be_case_sensitive():
    spec = {"type": "contains", "value": "Refund", "case_sensitive": True}
    assert run(spec, "Refund issued").passed
    assert run(spec, "refund issued") == CheckResult(False, "does not contain 'Refund'")


def test_not_contains():
    spec = {"type": "not_contains", "value": "as an AI"}
    assert run(spec, "Sure, here it is") == CheckResult(True, "does not contain 'as an AI'")
    assert run(spec, "As an AI, I cannot") == CheckResult(False, "contains 'as an AI'")
    assert run({**spec, "case_sensitive": True}, "As an AI, I cannot").passed


def test_equals_expected_trims_unless_exact():
    assert run({"type": "equals_expected"}, "  Paris\n", expected_output="Paris") == CheckResult(
        True, "equals the expected output"
    )
    exact = run({"type": "equals_expected", "exact": True}, "Paris\n", expected_output="Paris")
    assert exact == CheckResult(False, "differs from the expected output from character 6")
    assert (
        run({"type": "equals_expected", "exact": True}, "Paris", expected_output="Paris").reason
        == "equals the expected output exactly"
    )
    assert run({"type": "equals_expected"}, "Lyon", expected_output="Paris") == CheckResult(
        False, "differs from the expected output from character 1"
    )


def test_equals_expected_fails_when_the_case_has_no_expected_output():
    assert run({"type": "equals_expected"}, "Paris") == CheckResult(False, "this case has no expected output")


def test_regex_matches_and_reports_a_miss():
    assert run({"type": "regex", "pattern": r"order #\d{4}"}, "Your order #1234 shipped") == CheckResult(
        True, r"matches 'order #\\d{4}'"
    )
    assert run({"type": "regex", "pattern": r"^\d+$"}, "12a") == CheckResult(False, r"does not match '^\\d+$'")
    assert run({"type": "regex", "pattern": "hello", "ignore_case": True}, "HELLO").passed
    assert run({"type": "regex", "pattern": "^b", "multiline": True}, "a\nb").passed
    assert not run({"type": "regex", "pattern": "^b"}, "a\nb").passed
    assert run({"type": "regex", "pattern": "a.b", "dotall": True}, "a\nb").passed


def test_regex_compile_errors_are_reported_at_configuration():
    with pytest.raises(CheckConfigError) as caught:
        build_check({"type": "regex", "pattern": "order (#"})
    assert caught.value.errors == ["pattern does not compile at position 6: missing ), unterminated subpattern"]


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("(a+)+$", "nested repeats"),
        (r"(\w+\s?)*$", "nested repeats"),
        ("(a|ab)*c", "alternatives inside a repeated group"),
        (r"(a)\1", "back-references"),
        # The known bypass: no nested unbounded repeat, yet 2^25 ways to split the text.
        ("(?:a?){25}a{25}", "optional part inside a repeated group"),
        ("(?:ab?){30}", "optional part inside a repeated group"),
        ("(?:a{1,2}){30}$", "exponential time"),
        ("x" * 501, "longer than 500 characters"),
    ],
)
def test_regex_refuses_patterns_that_can_backtrack_for_ever(pattern, why):
    with pytest.raises(CheckConfigError) as caught:
        build_check({"type": "regex", "pattern": pattern})
    assert why in caught.value.errors[0]


def test_the_optional_group_attack_is_refused_and_would_not_run_in_process(monkeypatch):
    attack = "(?:a?){25}a{25}"
    assert "exponential" in safe_regex.regex_problem(attack)
    # Even past the guard, the bound counts the 2^25 splits, so the match goes to the child
    # process with its time limit instead of hanging the worker.
    monkeypatch.setattr(safe_regex, "REGEX_TIMEOUT_SECONDS", 0.5)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        safe_regex.regex_search(attack, "a" * 25, 0)
    assert time.monotonic() - started < 5


def test_a_fixed_group_repeated_is_still_allowed():
    assert safe_regex.regex_problem(r"(?:\d-){3}x") is None
    assert run({"type": "regex", "pattern": r"(?:\d-){3}x"}, "code 1-2-3-x").passed


def test_regex_scans_only_the_first_ten_thousand_characters():
    text = "x" * 10_000 + "needle"
    assert run({"type": "regex", "pattern": "needle"}, text) == CheckResult(
        False, "does not match 'needle' (in the first 10,000 characters)"
    )
    assert run({"type": "regex", "pattern": "x"}, text).reason == "matches 'x' (in the first 10,000 characters)"


def test_a_slow_polynomial_pattern_is_stopped_by_the_time_limit(monkeypatch):
    monkeypatch.setattr(safe_regex, "REGEX_TIMEOUT_SECONDS", 0.5)
    started = time.monotonic()
    result = run({"type": "regex", "pattern": "a*a*a*c"}, "a" * 10_000)
    assert time.monotonic() - started < 5
    assert result == CheckResult(False, "matching 'a*a*a*c' took too long (over 0.5 s); simplify the pattern")


def test_a_pattern_with_a_large_worst_case_still_matches_in_the_child_process(monkeypatch):
    children = []
    real_run = safe_regex.subprocess.run
    monkeypatch.setattr(safe_regex.subprocess, "run", lambda *a, **kw: children.append(a) or real_run(*a, **kw))
    text = "1" * 3_000 + " 3.14"  # a worst case of ~10^10 steps: too many to risk in-process
    assert run({"type": "regex", "pattern": r"\d+\.\d+"}, text).passed
    assert not run({"type": "regex", "pattern": r"\d+\.\d+x"}, text).passed
    assert len(children) == 2
    assert run({"type": "regex", "pattern": r"\d+\.\d+"}, "pi is 3.14").passed  # short: in-process
    assert len(children) == 2


def test_valid_json():
    assert run({"type": "valid_json"}, ' {"a": 1} ') == CheckResult(True, "the output is valid JSON")
    assert run({"type": "valid_json"}, '{"a": 1,}') == CheckResult(
        False, "the output is not valid JSON at line 1, column 9: Expecting property name enclosed in double quotes"
    )
    assert run({"type": "valid_json"}, "  ") == CheckResult(False, "the output is empty, not JSON")


SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city"],
}


def test_json_schema_pass_and_fail():
    spec = {"type": "json_schema", "schema": SCHEMA}
    assert run(spec, '{"city": "Oslo", "days": 3}') == CheckResult(True, "matches the schema")
    assert run(spec, '{"city": "Oslo", "days": "three"}') == CheckResult(
        False, "does not match the schema at days: 'three' is not of type 'integer'"
    )
    assert run(spec, '{"days": 3}') == CheckResult(
        False, "does not match the schema at the top level: 'city' is a required property"
    )
    assert run(spec, "Oslo").reason.startswith("the output is not valid JSON at line 1, column 1")


def test_json_schema_config_must_be_a_valid_schema_without_dangerous_patterns():
    with pytest.raises(CheckConfigError, match="not a valid JSON Schema"):
        build_check({"type": "json_schema", "schema": {"type": "nope"}})
    with pytest.raises(CheckConfigError, match="must be a JSON Schema object"):
        build_check({"type": "json_schema"})
    with pytest.raises(CheckConfigError, match="nested repeats"):
        build_check({"type": "json_schema", "schema": {"type": "string", "pattern": "^(a+)+$"}})


def test_unique_items_is_checked_in_one_pass_with_json_equality():
    """Hostile trial: jsonschema compared every pair, 8 s of CPU per cell for 3,000 objects."""
    spec = {"type": "json_schema", "schema": {"type": "array", "uniqueItems": True}}
    many = [{"id": n, "tags": ["a", n]} for n in range(5_000)]
    started = time.process_time()
    assert run(spec, json.dumps(many)) == CheckResult(True, "matches the schema")
    assert time.process_time() - started < 2  # 20 s and more, pair by pair
    repeated = json.dumps([*many, {"tags": ["a", 7], "id": 7.0}])  # another key order, 7.0 == 7
    assert run(spec, repeated) == CheckResult(
        False, "does not match the schema at the top level: has non-unique elements: item 5000 repeats an earlier one"
    )
    assert run(spec, '[1, true, 1.5, [1], {"a": 1}, {"a": true}, null, false, 0]').passed  # true is not 1


def test_a_schema_that_takes_exponential_time_gives_up_within_its_budget(monkeypatch):
    """A chain of $refs each trying its next one twice (anyOf, none passing) doubles the work at each
    link: 2^17 tries (over 10 s) for a 17-link schema of a few kilobytes."""
    monkeypatch.setattr(checks, "SCHEMA_BUDGET_SECONDS", 0.5)
    links = {f"l{n}": {"anyOf": [{"$ref": f"#/$defs/l{n + 1}"}, {"$ref": f"#/$defs/l{n + 1}"}]} for n in range(17)}
    schema = {"$defs": {**links, "l17": {"type": "string"}}, "$ref": "#/$defs/l0"}
    nested = "1"
    started = time.monotonic()
    result = run({"type": "json_schema", "schema": schema}, nested)
    assert time.monotonic() - started < 3
    assert result == CheckResult(False, "could not be checked against the schema: checking the schema took over 0.5 s")


def test_tool_call_named_with_valid_arguments():
    spec = {"type": "tool_call", "tool": "get_weather", "schema": SCHEMA}
    output = tool_output(("lookup", "{}"), ("get_weather", '{"city": "Oslo"}'))
    assert run(spec, output=output) == CheckResult(True, "calls get_weather with arguments matching its schema")
    assert run({"type": "tool_call", "tool": "get_weather"}, output=output) == CheckResult(True, "calls get_weather")
    dict_arguments = tool_output(("get_weather", {"city": "Oslo"}))
    assert run(spec, output=dict_arguments).passed


def test_tool_call_failures_say_why():
    spec = {"type": "tool_call", "tool": "get_weather", "schema": SCHEMA}
    assert run(spec, "It is sunny", output={"choices": [{"message": {"content": "It is sunny"}}]}) == CheckResult(
        False, "no tool calls in the output; expected a call to get_weather"
    )
    assert run(spec, output=tool_output(("search", "{}"), ("lookup", "{}"))) == CheckResult(
        False, "no call to get_weather (called: lookup, search)"
    )
    assert run(spec, output=tool_output(("get_weather", '{"city": 3}'))) == CheckResult(
        False, "the arguments of get_weather do not match the schema at city: 3 is not of type 'string'"
    )
    assert run(spec, output=tool_output(("get_weather", "{city"))).reason.startswith(
        "the arguments of get_weather are not valid JSON at line 1, column 2"
    )
    assert run(spec, output="plain text output").reason == "no tool calls in the output; expected a call to get_weather"


def test_length_limits():
    spec = {"type": "length", "min": 3, "max": 5}
    assert run(spec, "abcd") == CheckResult(True, "4 characters")
    assert run(spec, "ab") == CheckResult(False, "2 characters, fewer than the minimum 3")
    assert run(spec, "abcdef") == CheckResult(False, "6 characters, more than the maximum 5")
    assert run({"type": "length", "max": 0}, "").passed


def test_cost_limit_counts_exactly_and_fails_an_unpriced_run():
    spec = {"type": "cost", "max_usd": "0.002"}
    assert run(spec, cost_nano=2_000_000) == CheckResult(True, "cost $0.002000000")
    assert run(spec, cost_nano=2_000_001) == CheckResult(False, "cost $0.002000001, over the limit of $0.002")
    assert run(spec, cost_nano=None) == CheckResult(False, "unpriced")
    assert run({"type": "cost", "max_usd": 0}, cost_nano=0).passed
    assert not run({"type": "cost", "max_usd": 0}, cost_nano=None).passed  # unpriced is not $0


def test_latency_limit():
    spec = {"type": "latency", "max_ms": 1500}
    assert run(spec, latency_ms=1499.6) == CheckResult(True, "took 1,500 ms")
    assert run(spec, latency_ms=2500) == CheckResult(False, "took 2,500 ms, over the limit of 1,500 ms")
    assert run(spec) == CheckResult(False, "no latency was recorded")


def test_token_limits():
    assert run({"type": "tokens", "max": 100}, total_tokens=100) == CheckResult(True, "100 total tokens")
    assert run({"type": "tokens", "max": 100, "count": "completion"}, completion_tokens=101) == CheckResult(
        False, "101 completion tokens, over the limit of 100"
    )
    assert run({"type": "tokens", "max": 10, "count": "prompt"}) == CheckResult(
        False, "no prompt token count was recorded"
    )


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({"type": "contains"}, "value is required"),
        ({"type": "contains", "value": 3}, "value must be text"),
        ({"type": "contains", "value": "x", "case_sensitive": "yes"}, "case_sensitive must be true or false"),
        ({"type": "contains", "value": "x", "colour": "red"}, "unknown setting colour"),
        ({"type": "length"}, "give min, max or both"),
        ({"type": "length", "min": 5, "max": 2}, "min (5) is more than max (2)"),
        ({"type": "length", "max": -1}, "max must be a whole number"),
        ({"type": "cost", "max_usd": "cheap"}, "max_usd must be an amount in dollars"),
        ({"type": "cost", "max_usd": "0.0000000001"}, "more than 9 decimal places"),
        ({"type": "latency", "max_ms": "fast"}, "max_ms must be a number"),
        ({"type": "tokens", "max": 5, "count": "all"}, "count must be one of total, prompt, completion"),
        ({"type": "tokens"}, "max is required"),
        ({"type": "tool_call"}, "tool is required"),
        ({"type": "llm_judge"}, "unknown type 'llm_judge'"),
    ],
)
def test_bad_configs_are_refused_with_a_message(spec, error):
    with pytest.raises(CheckConfigError) as caught:
        build_check(spec)
    assert error in caught.value.errors[0]


def test_the_registry_builds_every_check_and_names_them():
    built = build_checks(
        [
            {"type": "contains", "value": "hi", "name": "Greets"},
            {"type": "valid_json"},
            {"type": "cost", "max_usd": "1"},
        ]
    )
    assert [c.name for c in built] == ["Greets", "Is valid JSON", "Cost at most"]
    assert [c.config for c in built][2] == {"max_usd": "1", "max_nano": 1_000_000_000}
    assert set(checks.CHECK_TYPES) == {
        "contains",
        "not_contains",
        "equals_expected",
        "regex",
        "valid_json",
        "json_schema",
        "tool_call",
        "length",
        "cost",
        "latency",
        "tokens",
    }
    assert not any(cls.needs_model for cls in checks.CHECK_TYPES.values())


def test_the_registry_collects_every_error_with_where_it_is():
    with pytest.raises(CheckConfigError) as caught:
        build_checks([{"type": "contains"}, {"type": "valid_json"}, "regex", {"type": "regex", "pattern": "(a*)*"}])
    assert caught.value.errors[0] == "Check 1 (contains): value is required."
    assert caught.value.errors[1] == "Check 3: must be an object with a type."
    assert caught.value.errors[2].startswith("Check 4 (regex): pattern nested repeats")
    assert len(caught.value.errors) == 3


def test_parse_checks_reads_json_text_and_reports_bad_json():
    assert len(parse_checks(json.dumps([{"type": "valid_json"}]))) == 1
    with pytest.raises(CheckConfigError, match=r"not valid JSON: .*\(line 1, column 3\)"):
        parse_checks("[{")
    with pytest.raises(CheckConfigError, match="must be a JSON list"):
        parse_checks('{"type": "valid_json"}')
