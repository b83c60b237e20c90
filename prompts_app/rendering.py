"""How a run's output is shown: text, tool calls with pretty arguments, or pretty JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


@dataclass(frozen=True)
class ToolCallView:
    name: str
    id: str
    arguments: str  # pretty JSON when the arguments parse, else as sent


def tool_call_views(tool_calls: list[Any]) -> list[ToolCallView]:
    views = []
    for call in tool_calls or []:
        if not isinstance(call, dict):
            continue
        function = call.get("function") if isinstance(call.get("function"), dict) else call
        arguments = function.get("arguments", "")
        if isinstance(arguments, str):
            try:
                arguments = pretty_json(json.loads(arguments)) if arguments.strip() else ""
            except json.JSONDecodeError:
                pass  # shown exactly as the model wrote it
        else:
            arguments = pretty_json(arguments)
        views.append(ToolCallView(name=str(function.get("name") or "(no name)"), id=str(call.get("id") or ""),
                                  arguments=arguments))
    return views


@dataclass(frozen=True)
class OutputView:
    text: str
    tool_calls: list[ToolCallView]
    other_json: str  # set when the output has neither text nor tool calls: show its JSON


def output_view(*, output: Any, text: str, tool_calls: list[Any]) -> OutputView:
    calls = tool_call_views(tool_calls)
    other = ""
    if not text and not calls and output not in (None, "", {}, []):
        other = output if isinstance(output, str) else pretty_json(output)
    return OutputView(text=text, tool_calls=calls, other_json=other)
