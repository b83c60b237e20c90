"""JSON typed by a person, parsed with limits: the one place forms turn JSON text into values.

Deeply nested JSON is refused with a message: Python's parser raises RecursionError on it (a 500),
and values nested a few hundred levels deep break whatever walks them later (schema checks,
templates, Maxim's own parser).
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64


class JSONTextError(ValueError):
    """What is wrong with the text, in words a person can act on."""


def load_json(text: str, *, max_depth: int = MAX_DEPTH) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JSONTextError(f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise JSONTextError(f"nested too deeply; at most {max_depth} levels of objects and lists") from None
    if _depth(value) > max_depth:
        raise JSONTextError(f"nested too deeply; at most {max_depth} levels of objects and lists")
    return value


def _depth(value: Any) -> int:
    """How many levels of objects and lists `value` has, walked without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest
