"""Checks: does a run's output pass? Pure Python: no ORM, no network, no Django.

A check is built from a JSON config and judges one output:

    check = build_check({"type": "contains", "value": "refund", "case_sensitive": False})
    check.evaluate(CheckInput(output_text="We will refund you")) -> CheckResult(passed=True, reason=...)

`CheckInput` carries everything a check may look at: the output text, the raw output object
(tool calls live there), the case's expected output, tokens, cost in nano-USD (None when the
run is unpriced: a cost limit then fails with "unpriced", it never counts as $0) and latency.
`build_checks(list)` turns a test set's config list into checks, or raises `CheckConfigError`
whose `errors` a form shows as they are ("Check 2 (regex): …").

Regular expressions go through prompts_app/safe_regex.py: patterns that can backtrack
exponentially are refused when the check is configured, at most the first 10,000 characters
of an output are scanned, and a match whose worst case is large runs in a child process with
a time limit (the check then fails with "took too long"). JSON Schema `pattern`s go through
the same configuration guard.

Adding an LLM judge later: a judge check sets `needs_model = True`. This module still does no
I/O: the service that runs checks (which owns the Maxim client) asks the check for its judge
request, calls the model, and hands the reply back in `CheckInput.judgement`; `evaluate()`
then only reads that text. Checks without `needs_model` never look at `judgement`.
"""

from __future__ import annotations

import abc
import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import jsonschema
import referencing
from jsonschema import validators

from prompts_app import safe_regex
from prompts_app.jsontext import _depth as json_depth  # the same walk that bounds typed JSON
from prompts_app.jsontext import load_json
from prompts_app.plain_int import plain_int
from prompts_app.safe_regex import MAX_PATTERN_CHARS, regex_problem, regex_search

MAX_SCANNED_CHARS = 10_000
MAX_CHECKS = 12  # one of each type, and a little room
MAX_PATTERN_CHECKS = 3  # a check matching regexes may cost seconds of CPU per cell: 3 bounds a cell's worst case
MAX_JSON_DEPTH = 64  # outputs and schemas nested deeper are refused (recursion in parsers and validators)
MAX_USD = 10**6  # no check limit is above a million dollars; larger values overflow Decimal arithmetic
SCHEMA_BUDGET_SECONDS = 5.0  # one schema check on one output, its pattern matching included
NANO_PER_USD = 10**9


@dataclass(frozen=True)
class CheckInput:
    output_text: str
    output: Any = None  # the raw output object as the provider returned it
    expected_output: str | None = None  # None: the case has none
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cost_nano: int | None = None  # None: unpriced
    latency_ms: float | None = None
    judgement: str | None = None  # for checks that need a model (see the module docstring)


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    reason: str


class CheckConfigError(ValueError):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


class Check(abc.ABC):
    type: ClassVar[str]
    label: ClassVar[str]
    keys: ClassVar[frozenset[str]] = frozenset()  # the config keys it accepts
    needs_model: ClassVar[bool] = False

    def __init__(self, config: dict[str, Any] | None = None, *, name: str = "") -> None:
        config = dict(config or {})
        unknown = sorted(set(config) - self.keys)
        if unknown:
            raise CheckConfigError([f"unknown setting {', '.join(unknown)}"])
        self.config = self.clean(config)
        self.name = name or self.label

    def clean(self, config: dict[str, Any]) -> dict[str, Any]:
        """Validate and normalise the config; raise CheckConfigError with what is wrong."""
        return config

    @property
    def matches_patterns(self) -> bool:
        """Does judging run regular expressions (the costly kind, see MAX_PATTERN_CHECKS)?"""
        if isinstance(self, Regex):
            return True
        schema = self.config.get("schema")
        return schema is not None and any("pattern" in node or "patternProperties" in node for node in _walk(schema))

    def evaluate(self, output: CheckInput) -> CheckResult:
        """Judge one output; never raises: a check that breaks fails with why, the batch goes on."""
        try:
            return self.judge(output)
        except Exception as exc:  # noqa: BLE001 - one bad output must not kill the worker's task
            detail = _short(str(exc), 200) or type(exc).__name__
            return _fail(f"the check could not be evaluated: {detail}")

    @abc.abstractmethod
    def judge(self, output: CheckInput) -> CheckResult: ...

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.config!r}>"


def _pass(reason: str) -> CheckResult:
    return CheckResult(True, reason)


def _fail(reason: str) -> CheckResult:
    return CheckResult(False, reason)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- config helpers ---------------------------------------------------------------------------


def _text(config: dict, key: str, *, required: bool = True, limit: int = 10_000) -> str:
    value = config.get(key, "")
    if not isinstance(value, str):
        raise CheckConfigError([f"{key} must be text"])
    if required and not value:
        raise CheckConfigError([f"{key} is required"])
    if len(value) > limit:
        raise CheckConfigError([f"{key} is longer than {limit:,} characters"])
    return value


def _flag(config: dict, key: str, default: bool = False) -> bool:
    value = config.get(key, default)
    if not isinstance(value, bool):
        raise CheckConfigError([f"{key} must be true or false"])
    return value


def _count(config: dict, key: str) -> int | None:
    value = config.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 10**15:
        raise CheckConfigError([f"{key} must be a whole number, 0 or more"])
    return value


def _schema(config: dict, key: str, *, required: bool = True) -> dict | None:
    schema = config.get(key)
    if schema is None and not required:
        return None
    if not isinstance(schema, dict):
        raise CheckConfigError([f"{key} must be a JSON Schema object"])
    if json_depth(schema) > MAX_JSON_DEPTH:  # check_schema itself recurses: bound it first
        raise CheckConfigError([f"{key} is nested too deeply; at most {MAX_JSON_DEPTH} levels"])
    try:
        SafeValidator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise CheckConfigError([f"{key} is not a valid JSON Schema: {_short(exc.message, 200)}"]) from None
    problem = _ref_problem(schema) or _pattern_problem(schema)
    if problem:
        raise CheckConfigError([f"{key} {problem}"])
    return schema


def _walk(node: Any):
    """Every object in a schema (depth already bounded by _schema)."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _pattern_problem(schema: dict) -> str | None:
    for node in _walk(schema):
        patterns = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        if isinstance(node.get("patternProperties"), dict):
            patterns.extend(node["patternProperties"])
            if "unevaluatedProperties" in node or "additionalProperties" in node:
                # jsonschema matches these keys with plain re.search, outside our time limit.
                return "cannot combine patternProperties with additionalProperties or unevaluatedProperties"
        for pattern in patterns:
            problem = regex_problem(pattern)
            if problem:
                return f"has a pattern {_short(pattern)!r} that is refused: {problem}"
    return None


def _ref_problem(schema: dict) -> str | None:
    """Only local refs ("#/...") that do not lead back to themselves: no network, no endless recursion."""
    for node in _walk(schema):
        if "$dynamicRef" in node or "$recursiveRef" in node:
            return "uses $dynamicRef or $recursiveRef, which are not supported"
        if "$ref" in node and _resolve(schema, node["$ref"]) is None:
            return f'has a $ref {_short(str(node["$ref"]))!r} that is not a pointer inside this schema ("#/...")'
    for node in _walk(schema):
        if "$ref" in node and _ref_cycle(schema, node):
            return (
                f"has a $ref {_short(node['$ref'])!r} that refers back to itself; recursive schemas are not supported"
            )
    return None


def _resolve(schema: dict, ref: Any) -> Any:
    if not isinstance(ref, str) or not (ref == "#" or ref.startswith("#/")):
        return None
    node: Any = schema
    for part in ref[2:].split("/") if ref != "#" else []:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and plain_int(part) is not None and plain_int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _ref_cycle(schema: dict, start: dict) -> bool:
    """Does following $refs from `start` lead back to it? (walked without recursion)"""
    stack, seen = [start], set()
    while stack:
        for inner in _walk(_resolve(schema, stack.pop()["$ref"])):
            if "$ref" not in inner:
                continue
            if inner is start:
                return True
            if id(inner) not in seen:
                seen.add(id(inner))
                stack.append(inner)
    return False


# --- JSON Schema keywords whose regexes go through safe_regex ---------------------------------

_deadline = threading.local()  # the running schema check's deadline, per thread (jsonschema keywords get no context)


def _check_budget(doing: str) -> None:
    """Raise TimeoutError once the running schema check's time budget is spent."""
    if time.monotonic() > (getattr(_deadline, "at", None) or float("inf")):
        raise TimeoutError(f"{doing} took over {SCHEMA_BUDGET_SECONDS:g} s")


def _safe_match(pattern: str, text: str) -> bool:
    _check_budget("matching the schema's patterns")  # patternProperties matches many keys in one keyword
    try:
        return regex_search(pattern, text[:MAX_SCANNED_CHARS], 0)
    except TimeoutError:
        raise TimeoutError(f"matching {_short(pattern)!r} took too long") from None


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not _safe_match(pattern, instance):
        yield jsonschema.ValidationError(f"{_short(instance)!r} does not match {_short(pattern)!r}")


def _pattern_properties(validator, pattern_properties, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in pattern_properties.items():
        for key, value in instance.items():
            if _safe_match(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _json_key(value: Any) -> Any:
    """A hashable key equal for JSON values JSON Schema calls equal: 1 and 1.0 alike, true not 1,
    objects whatever their key order."""
    if isinstance(value, bool) or value is None:
        return ("literal", value)
    if isinstance(value, (int, float)):
        return ("number", int(value) if isinstance(value, float) and value.is_integer() else value)
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, list):
        return ("array", tuple(_json_key(item) for item in value))
    return ("object", frozenset((key, _json_key(item)) for key, item in value.items()))


def _unique_items(validator, unique, instance, schema):
    """uniqueItems in one pass: jsonschema compares every pair of items, 8 s for 3,000 objects on
    one output (hostile trial), which no budget can stop in the middle of."""
    if not unique or not validator.is_type(instance, "array"):
        return
    seen = set()
    for index, item in enumerate(instance):
        key = _json_key(item)
        if key in seen:
            yield jsonschema.ValidationError(f"has non-unique elements: item {index} repeats an earlier one")
            return
        seen.add(key)


def _within_budget(keyword):
    """A keyword that gives up once the check's time budget is spent: nested anyOf over a recursive
    $ref can take exponential time, and only each keyword's start can stop it."""

    def check(validator, value, instance, schema):
        _check_budget("checking the schema")
        errors = keyword(validator, value, instance, schema)
        if errors is not None:
            yield from errors

    return check


_KEYWORDS = {
    **jsonschema.Draft202012Validator.VALIDATORS,
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "uniqueItems": _unique_items,
}
SafeValidator = validators.extend(
    jsonschema.Draft202012Validator, {name: _within_budget(keyword) for name, keyword in _KEYWORDS.items()}
)
_NO_REMOTE = referencing.Registry()  # never fetch a $ref over the network


@contextlib.contextmanager
def _pattern_budget() -> Iterator[None]:
    """One time budget for every pattern a check matches on one output (a tool call check may
    validate many calls): the outermost budget wins."""
    if getattr(_deadline, "at", None) is not None:
        yield
        return
    _deadline.at = time.monotonic() + SCHEMA_BUDGET_SECONDS
    try:
        yield
    finally:
        _deadline.at = None


def _schema_error(schema: dict, value: Any) -> str | None:
    """Where and how `value` breaks the schema ("at days: ..."), or None. Raises TimeoutError once the
    check's time budget is spent: the caller says the output could not be checked (a failure too)."""
    with _pattern_budget():
        error = jsonschema.exceptions.best_match(SafeValidator(schema, registry=_NO_REMOTE).iter_errors(value))
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path) or "the top level"
    return f"at {where}: {_short(error.message, 200)}"


# --- text checks ---------------------------------------------------------------------------


class Contains(Check):
    type, label = "contains", "Contains"
    keys = frozenset({"value", "case_sensitive"})
    wanted: ClassVar[bool] = True  # NotContains passes when the value is absent

    def clean(self, config):
        return {"value": _text(config, "value"), "case_sensitive": _flag(config, "case_sensitive")}

    def judge(self, output):
        value, text = self.config["value"], output.output_text
        found = value in text if self.config["case_sensitive"] else value.casefold() in text.casefold()
        return CheckResult(found == self.wanted, f"{'contains' if found else 'does not contain'} {_short(value)!r}")


class NotContains(Contains):
    type, label = "not_contains", "Does not contain"
    wanted = False


class EqualsExpected(Check):
    type, label = "equals_expected", "Equals the expected output"
    keys = frozenset({"exact"})

    def clean(self, config):
        return {"exact": _flag(config, "exact")}

    def judge(self, output):
        if output.expected_output is None:
            return _fail("this case has no expected output")
        got, expected = output.output_text, output.expected_output
        if not self.config["exact"]:
            got, expected = got.strip(), expected.strip()
        if got == expected:
            return _pass("equals the expected output" + (" exactly" if self.config["exact"] else ""))
        return _fail(f"differs from the expected output from character {_first_difference(got, expected) + 1}")


def _first_difference(a: str, b: str) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


class Length(Check):
    type, label = "length", "Length"
    keys = frozenset({"min", "max"})

    def clean(self, config):
        low, high = _count(config, "min"), _count(config, "max")
        if low is None and high is None:
            raise CheckConfigError(["give min, max or both (characters)"])
        if low is not None and high is not None and low > high:
            raise CheckConfigError([f"min ({low}) is more than max ({high})"])
        return {"min": low, "max": high}

    def judge(self, output):
        size, low, high = len(output.output_text), self.config["min"], self.config["max"]
        if low is not None and size < low:
            return _fail(f"{size:,} characters, fewer than the minimum {low:,}")
        if high is not None and size > high:
            return _fail(f"{size:,} characters, more than the maximum {high:,}")
        return _pass(f"{size:,} characters")


# --- regular expressions ------------------------------------------------------------------------


class Regex(Check):
    type, label = "regex", "Matches a regular expression"
    keys = frozenset({"pattern", "ignore_case", "multiline", "dotall"})

    def clean(self, config):
        pattern = _text(config, "pattern", limit=MAX_PATTERN_CHARS + 1)
        problem = regex_problem(pattern)
        if problem:
            raise CheckConfigError([f"pattern {problem}"])
        return {"pattern": pattern, **{key: _flag(config, key) for key in ("ignore_case", "multiline", "dotall")}}

    @property
    def flags(self) -> int:
        chosen = {"ignore_case": re.IGNORECASE, "multiline": re.MULTILINE, "dotall": re.DOTALL}
        flags = 0
        for key, flag in chosen.items():
            if self.config[key]:
                flags |= flag
        return flags

    def judge(self, output):
        text = output.output_text[:MAX_SCANNED_CHARS]
        note = (
            f" (in the first {MAX_SCANNED_CHARS:,} characters)" if len(output.output_text) > MAX_SCANNED_CHARS else ""
        )
        pattern = _short(self.config["pattern"])
        try:
            found = regex_search(self.config["pattern"], text, self.flags)
        except TimeoutError:
            return _fail(
                f"matching {pattern!r} took too long (over {safe_regex.REGEX_TIMEOUT_SECONDS:g} s); simplify the pattern"
            )
        if found:
            return _pass(f"matches {pattern!r}{note}")
        return _fail(f"does not match {pattern!r}{note}")


# --- JSON and tool calls -----------------------------------------------------------------------


def _json_of(text: str) -> tuple[Any, str | None]:
    too_deep = f"nested too deeply (at most {MAX_JSON_DEPTH} levels of objects and lists)"
    try:
        value = json.loads(text)
    except RecursionError:
        return None, too_deep
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        return None, f"not valid JSON: {_short(str(exc), 120)}"
    if json_depth(value) > MAX_JSON_DEPTH:
        return None, too_deep
    return value, None


class ValidJson(Check):
    type, label = "valid_json", "Is valid JSON"

    def judge(self, output):
        text = output.output_text.strip()
        if not text:
            return _fail("the output is empty, not JSON")
        _, error = _json_of(text)
        return _fail(f"the output is {error}") if error else _pass("the output is valid JSON")


class JsonSchema(Check):
    type, label = "json_schema", "JSON matching a schema"
    keys = frozenset({"schema"})

    def clean(self, config):
        return {"schema": _schema(config, "schema")}

    def judge(self, output):
        value, error = _json_of(output.output_text.strip())
        if error:
            return _fail(f"the output is {error}")
        try:
            problem = _schema_error(self.config["schema"], value)
        except TimeoutError as exc:
            return _fail(f"could not be checked against the schema: {exc}")
        return _fail(f"does not match the schema {problem}") if problem else _pass("matches the schema")


def tool_calls_of(output: Any) -> list[dict[str, Any]]:
    """[{name, arguments}] from an OpenAI-style output: choices[0].message.tool_calls[].function."""
    choices = output.get("choices") if isinstance(output, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return []
    message = choices[0].get("message")
    calls = message.get("tool_calls") if isinstance(message, dict) else None
    found = []
    for call in calls if isinstance(calls, list) else []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            found.append({"name": function["name"], "arguments": function.get("arguments")})
    return found


class ToolCall(Check):
    type, label = "tool_call", "Calls a tool"
    keys = frozenset({"tool", "schema"})  # "name" is every check's display name

    def clean(self, config):
        return {"tool": _text(config, "tool", limit=200), "schema": _schema(config, "schema", required=False)}

    def judge(self, output):
        name, calls = self.config["tool"], tool_calls_of(output.output)
        if not calls:
            return _fail(f"no tool calls in the output; expected a call to {name}")
        matching = [call for call in calls if call["name"] == name]
        if not matching:
            called = ", ".join(sorted({_short(call["name"], 40) for call in calls}))
            return _fail(f"no call to {name} (called: {called})")
        if self.config["schema"] is None:
            return _pass(f"calls {name}")
        with _pattern_budget():
            problems = [self._arguments_problem(call["arguments"]) for call in matching]
        if None in problems:
            return _pass(f"calls {name} with arguments matching its schema")
        return _fail(f"the arguments of {name} {problems[0]}")

    def _arguments_problem(self, arguments: Any) -> str | None:
        if isinstance(arguments, str):
            arguments, error = _json_of(arguments)
            if error:
                return f"are {error}"
        try:
            problem = _schema_error(self.config["schema"], arguments)
        except TimeoutError as exc:
            return f"could not be checked against the schema: {exc}"
        return f"do not match the schema {problem}" if problem else None


# --- cost, latency, tokens ---------------------------------------------------------------------


class CostLimit(Check):
    type, label = "cost", "Cost at most"
    keys = frozenset({"max_usd"})

    def clean(self, config):
        raw = config.get("max_usd")
        try:
            limit = Decimal(str(raw)) if isinstance(raw, (str, int, float)) and not isinstance(raw, bool) else None
        except InvalidOperation:
            limit = None
        if limit is None or not limit.is_finite() or not 0 <= limit <= MAX_USD:
            raise CheckConfigError([f'max_usd must be an amount in dollars from 0 to {MAX_USD:,}, like "0.002"'])
        nano = limit * NANO_PER_USD
        if nano != nano.to_integral_value():
            raise CheckConfigError(["max_usd has more than 9 decimal places"])
        return {"max_usd": str(limit), "max_nano": int(nano)}

    def judge(self, output):
        if output.cost_nano is None:
            return _fail("unpriced")  # never $0: an unknown price passes no cost limit
        spent = f"${Decimal(output.cost_nano).scaleb(-9):f}"
        if output.cost_nano > self.config["max_nano"]:
            return _fail(f"cost {spent}, over the limit of ${self.config['max_usd']}")
        return _pass(f"cost {spent}")


class LatencyLimit(Check):
    type, label = "latency", "Latency at most"
    keys = frozenset({"max_ms"})

    def clean(self, config):
        value = config.get("max_ms")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 10**9:
            raise CheckConfigError(["max_ms must be a number of milliseconds"])
        return {"max_ms": value}

    def judge(self, output):
        if output.latency_ms is None:
            return _fail("no latency was recorded")
        if output.latency_ms > self.config["max_ms"]:
            return _fail(f"took {output.latency_ms:,.0f} ms, over the limit of {self.config['max_ms']:,} ms")
        return _pass(f"took {output.latency_ms:,.0f} ms")


class TokenLimit(Check):
    type, label = "tokens", "Tokens at most"
    keys = frozenset({"max", "count"})
    COUNTS = ("total", "prompt", "completion")

    def clean(self, config):
        limit, count = _count(config, "max"), config.get("count", "total")
        if limit is None:
            raise CheckConfigError(["max is required (tokens)"])
        if count not in self.COUNTS:
            raise CheckConfigError([f"count must be one of {', '.join(self.COUNTS)}"])
        return {"max": limit, "count": count}

    def judge(self, output):
        count = self.config["count"]
        used = getattr(output, f"{count}_tokens")
        if used is None:
            return _fail(f"no {count} token count was recorded")
        if used > self.config["max"]:
            return _fail(f"{used:,} {count} tokens, over the limit of {self.config['max']:,}")
        return _pass(f"{used:,} {count} tokens")


# --- registry ----------------------------------------------------------------------------------

CHECK_TYPES: dict[str, type[Check]] = {
    cls.type: cls
    for cls in (
        Contains,
        NotContains,
        EqualsExpected,
        Regex,
        ValidJson,
        JsonSchema,
        ToolCall,
        Length,
        CostLimit,
        LatencyLimit,
        TokenLimit,
    )
}


def build_check(spec: Any) -> Check:
    """One check from {"type": ..., "name"?: ..., **config}."""
    if not isinstance(spec, dict):
        raise CheckConfigError(["must be an object with a type"])
    spec = dict(spec)
    kind, name = spec.pop("type", None), spec.pop("name", "")
    if not isinstance(kind, str) or kind not in CHECK_TYPES:
        known = ", ".join(CHECK_TYPES)
        raise CheckConfigError([f"unknown type {_short(str(kind), 40)!r}; use one of {known}"])
    if not isinstance(name, str) or len(name) > 200:
        raise CheckConfigError(["name must be text of at most 200 characters"])
    return CHECK_TYPES[kind](spec, name=name)


def build_checks(specs: Any) -> list[Check]:
    """Checks from a config list; every problem is collected, each prefixed with where it is."""
    if not isinstance(specs, list):
        raise CheckConfigError(["Checks must be a JSON list of objects."])
    if len(specs) > MAX_CHECKS:
        raise CheckConfigError([f"At most {MAX_CHECKS} checks."])
    checks, errors = [], []
    for number, spec in enumerate(specs, 1):
        kind = spec.get("type") if isinstance(spec, dict) else None
        where = f"Check {number}" + (f" ({_short(kind, 40)})" if isinstance(kind, str) else "")
        try:
            checks.append(build_check(spec))
        except CheckConfigError as exc:
            errors.extend(f"{where}: {error}." for error in exc.errors)
    if not errors and sum(check.matches_patterns for check in checks) > MAX_PATTERN_CHECKS:
        errors.append(
            f"At most {MAX_PATTERN_CHECKS} checks with regular expressions (regex, or schemas with patterns)."
        )
    if errors:
        raise CheckConfigError(errors)
    return checks


class Unusable(Check):
    """Stands for checks stored before today's limits that no longer build: each output fails
    with the reason, so the batch goes on (and says why) instead of its task dying."""

    type, label = "unusable", "Checks that cannot run"

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason

    def judge(self, output):
        return _fail(f"the checks cannot run: {self.reason}")


def stored_checks(specs: Any) -> list[Check]:
    """The checks of a batch already started (build_checks validated them then)."""
    try:
        return build_checks(specs)
    except CheckConfigError as exc:
        return [Unusable(_short(str(exc), 300))]


def parse_checks(text: str) -> list[Check]:
    """Checks from JSON text, as a form field receives them."""
    if len(text) > 200_000:
        raise CheckConfigError(["The checks are longer than 200,000 characters."])
    try:
        specs = load_json(text, max_depth=MAX_JSON_DEPTH)
    except ValueError as exc:  # JSONTextError, or e.g. an integer of more than 4,300 digits
        raise CheckConfigError([f"The checks are {_short(str(exc), 200)}."]) from None
    return build_checks(specs)
