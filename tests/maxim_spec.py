"""Check requests against Maxim's published contract (the copies in `spec/maxim/`).

`validate_request(method, path, body, query, headers=...)` raises AssertionError with a
readable list of problems. Used by the client tests and by the fake server, so what we
send is checked against the spec rather than against our own idea of it.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

RUN_SPEC = "maxim-prompts-run.openapi.yaml"
PROMPTS_SPEC = "maxim-prompts.openapi.json"
FOLDERS_SPEC = "maxim-folders.openapi.json"


def spec_dir() -> Path:
    override = os.environ.get("MAXIM_SPEC_DIR")
    return Path(override) if override else Path(__file__).resolve().parents[1] / "spec" / "maxim"


@cache
def _document(name: str) -> dict:
    text = (spec_dir() / name).read_text(encoding="utf-8")
    doc = yaml.safe_load(text) if name.endswith((".yaml", ".yml")) else json.loads(text)
    return _resolve_refs(doc, doc)


def _resolve_refs(node: Any, doc: dict, depth: int = 0) -> Any:
    """Inline local `$ref`s (`#/components/...`); the specs are small and not recursive."""
    if depth > 50:
        raise ValueError("spec $ref nesting too deep (recursive schema?)")
    if isinstance(node, list):
        return [_resolve_refs(n, doc, depth) for n in node]
    if not isinstance(node, dict):
        return node
    if isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
        target: Any = doc
        for part in node["$ref"][2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return _resolve_refs({**target, **siblings}, doc, depth + 1)
    return {k: _resolve_refs(v, doc, depth) for k, v in node.items()}


def to_json_schema(node: Any, *, in_union: bool = False) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema: rewrite `nullable: true`.

    A bare `{nullable: true}` (no type) is how the specs spell "any value" (`output`,
    `additionalProperties`), except as a member of anyOf/oneOf, where it can only mean
    "or null" (message `content`); treating it as "any" there would make the union
    accept anything.
    """
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("anyOf", "oneOf"):
            out[key] = [to_json_schema(v, in_union=True) for v in value]
        elif key in ("allOf", "items", "not", "additionalProperties"):
            out[key] = to_json_schema(value)
        elif key == "properties":
            out[key] = {name: to_json_schema(schema) for name, schema in value.items()}
        elif key not in ("nullable", "example", "xml", "externalDocs", "discriminator"):
            out[key] = value
    if node.get("nullable") is not True:
        return out
    if "type" in out:
        out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        return out
    if any(k in out for k in ("anyOf", "oneOf", "allOf", "enum", "properties")):
        return {"anyOf": [out, {"type": "null"}]}
    return {**out, "type": "null"} if in_union else out


def _operation(doc_name: str, method: str, path: str) -> dict | None:
    return _document(doc_name).get("paths", {}).get(path, {}).get(method.lower())


def _body_schema(operation: dict) -> dict | None:
    content = (operation.get("requestBody") or {}).get("content", {})
    schema = content.get("application/json", {}).get("schema")
    return copy.deepcopy(schema) if schema else None


@cache
def body_schema(method: str, path: str) -> dict | None:
    """The JSON Schema of the request body of an endpoint, newest contract first."""
    method = method.upper()
    if (method, path) == ("POST", "/v1/prompts/run"):
        return to_json_schema(_body_schema(_operation(RUN_SPEC, method, path)))
    if (method, path) == ("POST", "/v1/prompts/versions"):
        return to_json_schema(_create_version_schema())
    for doc in (PROMPTS_SPEC, FOLDERS_SPEC):
        operation = _operation(doc, method, path)
        if operation is not None:
            schema = _body_schema(operation)
            return to_json_schema(schema) if schema else None
    return None


def _create_version_schema() -> dict:
    # create-prompt-version.txt (newest) shows the May 2025 body plus tool_calls and
    # tool_call_id on messages and more providers; the run yaml has both in full.
    schema = _body_schema(_operation(PROMPTS_SPEC, "POST", "/v1/prompts/versions"))
    run = _body_schema(_operation(RUN_SPEC, "POST", "/v1/prompts/run"))["properties"]
    schema["properties"]["modelProvider"]["enum"] = list(run["modelProvider"]["enum"])
    message = schema["properties"]["messages"]["items"]["properties"]
    run_message = run["messages"]["items"]["properties"]
    message["tool_calls"] = run_message["tool_calls"]
    message["tool_call_id"] = run_message["tool_call_id"]
    # `content` stays required and non-null, as in the json spec: an assistant message that
    # only calls tools must still send "" (the txt marks no requirement either way).
    return schema


@cache
def query_schema(method: str, path: str) -> dict | None:
    """JSON Schema for the query parameters, or None when the endpoint is not in the spec."""
    if (method.upper(), path) == ("GET", "/v1/workspaces"):
        # No spec file; NOTES.md: query id, name, cursor, limit 1-100.
        return {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "cursor": {"type": "string"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 100},
            },
        }
    for doc in (PROMPTS_SPEC, FOLDERS_SPEC, RUN_SPEC):
        operation = _operation(doc, method, path)
        if operation is not None:
            params = [p for p in operation.get("parameters", []) if p.get("in") == "query"]
            return {
                "type": "object",
                "properties": {p["name"]: to_json_schema(p.get("schema", {})) for p in params},
                "required": [p["name"] for p in params if p.get("required")],
            }
    return None


def _coerce(value: str, schema: dict) -> Any:
    """A query string value as the type its schema asks for (left as is when it does not parse)."""
    types = schema.get("type")
    types = [types] if isinstance(types, str) else types or []
    if "integer" in types and re.fullmatch(r"-?\d+", value):
        return int(value)
    if "number" in types:
        try:
            return float(value)
        except ValueError:
            return value
    if "boolean" in types and value in ("true", "false"):
        return value == "true"
    return value


def _query_problems(method: str, path: str, query: Mapping[str, Any] | None) -> list[str]:
    schema = query_schema(method, path)
    if schema is None:
        return []
    problems = []
    values: dict[str, Any] = {}
    for name, value in (query or {}).items():
        if isinstance(value, (list, tuple)):
            if len(value) != 1:
                problems.append(f"query {name!r} given {len(value)} times")
                continue
            value = value[0]
        # A server-given cursor is echoed back even where the spec lists none (defensive pagination).
        if name not in schema["properties"] and name != "cursor":
            problems.append(f"query {name!r} is not a parameter of {method} {path}")
            continue
        values[name] = _coerce(str(value), schema["properties"].get(name, {}))
    problems += _schema_problems(schema, values, "query")
    return problems


def _schema_problems(schema: dict, instance: Any, where: str) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path)):
        best = jsonschema.exceptions.best_match(error.context) if error.context else error
        location = where + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in best.absolute_path)
        message = best.message if len(best.message) <= 300 else best.message[:297] + "..."
        problems.append(f"{location}: {message}")
    return problems


def validate_request(
    method: str,
    path: str,
    body: dict | None,
    query: Mapping[str, Any] | None = None,
    *,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Raise AssertionError listing every way the request breaks Maxim's contract.

    `headers`, when given, must carry a non-empty `x-maxim-api-key` (and a JSON
    content type when there is a body). Unknown top-level body fields are reported too:
    Maxim would silently drop them (e.g. a `variables` field on run).
    """
    method = method.upper()
    problems: list[str] = []
    known = body_schema(method, path) is not None or query_schema(method, path) is not None
    if not known and _operation(PROMPTS_SPEC, method, path) is None:
        problems.append("no such endpoint in the Maxim spec")
    if headers is not None:
        lower = {k.lower(): v for k, v in headers.items()}
        if not (lower.get("x-maxim-api-key") or "").strip():
            problems.append("header x-maxim-api-key is missing")
        if body is not None and "application/json" not in lower.get("content-type", ""):
            problems.append("a JSON body needs Content-Type: application/json")
    problems += _query_problems(method, path, query)
    schema = body_schema(method, path)
    if schema is None and body is not None and known:
        problems.append(f"{method} {path} takes no body")
    elif schema is not None:
        if body is None:
            problems.append("body is missing")
        else:
            problems += _schema_problems(schema, body, "body")
            if isinstance(body, dict):
                problems += [
                    f"body.{name}: not a field of {method} {path}"
                    for name in body
                    if name not in schema.get("properties", {})
                ]
    if problems:
        raise AssertionError(f"{method} {path} breaks the Maxim spec:\n  " + "\n  ".join(problems))


def validate_httpx_request(request: Any) -> None:
    """validate_request for an httpx.Request (duck-typed, so this module needs no httpx)."""
    query: dict[str, list[str]] = {}
    for name, value in request.url.params.multi_items():
        query.setdefault(name, []).append(value)
    body = json.loads(request.content) if request.content else None
    validate_request(request.method, request.url.path, body, query, headers=dict(request.headers))
