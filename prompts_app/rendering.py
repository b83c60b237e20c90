"""How a run is shown: the preview of what will be sent, and the output (text, tool calls
with pretty arguments, or pretty JSON)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from prompts_app.run_input import content_length, filled_prefix, has_content


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
        views.append(
            ToolCallView(
                name=str(function.get("name") or "(no name)"), id=str(call.get("id") or ""), arguments=arguments
            )
        )
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


PREVIEW_CHARS = 2_000  # of each message; the rest is counted, not shown (nor built)


@dataclass(frozen=True)
class PreviewMessage:
    role: str
    text: str  # the start of the message with the variables filled in
    hidden_chars: int  # how much of it is not shown
    is_turn: bool


def run_preview(
    messages: list[dict[str, Any]], turns: list[dict[str, Any]], variables: dict[str, str]
) -> list[PreviewMessage]:
    """The messages a run would send, variables filled in, each cut to PREVIEW_CHARS; cheap
    for any input, so it can follow the user's typing."""
    preview = []
    for is_turn, message in [*((False, m) for m in messages), *((True, t) for t in turns)]:
        if not has_content(message):
            continue
        content = message.get("content")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        pieces = []
        for part in parts if isinstance(parts, list) else []:
            if isinstance(part, dict) and part.get("type") == "text":
                pieces.append(filled_prefix(str(part.get("text") or ""), variables, PREVIEW_CHARS))
            else:
                pieces.append(f"[{part.get('type', 'part') if isinstance(part, dict) else 'part'}]")
        if message.get("tool_calls"):
            pieces.append(f"[{len(message['tool_calls'])} tool call(s)]")
        text = "\n".join(pieces)[:PREVIEW_CHARS]
        hidden = max(0, content_length(content, variables) - len(text))
        preview.append(PreviewMessage(str(message.get("role") or ""), text, hidden, is_turn))
    return preview
