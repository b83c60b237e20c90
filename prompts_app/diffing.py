"""Side-by-side differences between two versions: messages by position, tools by name,
parameters by key, with changed words marked `<del>`/`<ins>` (escaped first)."""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from prompts_app import pricing
from prompts_app.models import PromptVersion

_TOKENS = re.compile(r"\s+|[^\s]+")


def word_diff(old: str, new: str) -> SafeString:
    """One HTML string with removed words in <del> and added words in <ins>.

    A run of changes joined only by spaces reads as one change ("<del>a b</del><ins>c d</ins>"),
    not as words interleaved with their replacements.
    """
    a, b = _TOKENS.findall(old or ""), _TOKENS.findall(new or "")
    opcodes = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    out: list[str] = []
    removed: list[str] = []
    added: list[str] = []

    def flush() -> None:
        if removed:
            out.append(f"<del>{escape(''.join(removed))}</del>")
        if added:
            out.append(f"<ins>{escape(''.join(added))}</ins>")
        removed.clear()
        added.clear()

    for index, (op, i1, i2, j1, j2) in enumerate(opcodes):
        same = "".join(a[i1:i2])
        between_changes = 0 < index < len(opcodes) - 1 and (removed or added)
        if op == "equal" and not (between_changes and same.isspace()):
            flush()
            out.append(escape(same))
            continue
        removed.extend(a[i1:i2])
        added.extend(b[j1:j2])
    flush()
    return mark_safe("".join(out))  # noqa: S308 - every piece above is escaped


def message_text(message: dict[str, Any] | None) -> str:
    """A message as readable text: content (parts one per line), then tool calls / tool call id."""
    if not message:
        return ""
    content = message.get("content")
    lines: list[str] = []
    if isinstance(content, str):
        lines.append(content)
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and part.get("type") == "image_url":
                image = part.get("image_url") or {}
                lines.append(f"[image {image.get('url', '')}{' ' + image['detail'] if image.get('detail') else ''}]")
            elif isinstance(part, dict):
                lines.append(str(part.get("text", "")))
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        lines.append(f"→ {function.get('name', '')}({function.get('arguments', '')}) [{call.get('id', '')}]")
    if message.get("tool_call_id"):
        lines.append(f"(answers {message['tool_call_id']})")
    return "\n".join(lines)


def pretty(value: Any, *, sort_keys: bool = False) -> str:
    """JSON for people: indented, non-ASCII kept; a bare string stays as is.

    Diffs sort keys so that a reordered schema does not show up as a change."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, indent=2, sort_keys=sort_keys, ensure_ascii=False)


@dataclass
class Row:
    label: str
    old: str
    new: str
    html: SafeString
    changed: bool
    token_delta: int | None = None


def _row(label: str, old: str, new: str, token_delta: int | None = None) -> Row:
    return Row(label, old, new, word_diff(old, new), old != new, token_delta)


def diff_versions(a: PromptVersion, b: PromptVersion) -> dict[str, Any]:
    """Rows for the diff page: settings, messages (by index), tools (by name), parameters (by key)."""
    settings = [
        _row("Description", a.description, b.description),
        _row("Provider", a.provider, b.provider),
        _row("Model", a.model_name, b.model_name),
    ]
    messages = []
    for i in range(max(len(a.messages), len(b.messages))):
        old = a.messages[i] if i < len(a.messages) else None
        new = b.messages[i] if i < len(b.messages) else None
        roles = " → ".join(dict.fromkeys(m.get("role", "?") for m in (old, new) if m))
        delta = _tokens(new, b.model_name) - _tokens(old, a.model_name)
        messages.append(_row(f"Message {i + 1} ({roles})", message_text(old), message_text(new), delta))
    old_tools = {t["name"]: t for t in a.tools}
    new_tools = {t["name"]: t for t in b.tools}
    tools = [
        _row(name, pretty(old_tools.get(name), sort_keys=True), pretty(new_tools.get(name), sort_keys=True))
        for name in [*old_tools, *(n for n in new_tools if n not in old_tools)]
    ]
    old_params, new_params = a.model_parameters, b.model_parameters
    params = [
        _row(key, pretty(old_params.get(key), sort_keys=True), pretty(new_params.get(key), sort_keys=True))
        for key in sorted(set(old_params) | set(new_params))
    ]
    total = pricing.estimate_input_tokens(b.messages, b.tools, b.model_name) - pricing.estimate_input_tokens(
        a.messages, a.tools, a.model_name
    )
    return {
        "sections": [("Settings", settings, False), ("Messages", messages, True), ("Tools", tools, False),
                     ("Parameters", params, False)],
        "token_delta": total,
    }


def _tokens(message: dict[str, Any] | None, model: str) -> int:
    return pricing.estimate_input_tokens([message], model=model) if message else 0
