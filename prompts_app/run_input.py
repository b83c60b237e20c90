"""A run's input on its way to Maxim: `{{variables}}` filled into the messages, and the
limits on what may be sent.

Maxim's run body has no `variables` field, so we fill placeholders in before sending.
A short input can expand enormously (a 10,000-character value used 1,000 times is
10 M characters), so sizes are computed from lengths, occurrences × value length,
before anything is expanded: an input over the limits is refused without building it.
The run form, the estimate, the comparison form and "Run again" all apply these checks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prompts_app.models import VARIABLE_RE

# Bigger inputs are almost always a paste gone wrong, and would be slow to estimate and costly to run.
MAX_MESSAGE_CHARS = 100_000  # one message once filled in, and each typed turn or variable value
MAX_BODY_CHARS = 4 * MAX_MESSAGE_CHARS  # every message of one run together, once filled in


def fill_variables(value: Any, variables: dict[str, str]) -> Any:
    """Replace `{{name}}` in message text (strings and text parts); unknown names stay as typed."""
    if isinstance(value, str):
        return VARIABLE_RE.sub(lambda m: str(variables.get(m.group(1), m.group(0))), value)
    if isinstance(value, list):
        return [
            {**part, "text": fill_variables(part.get("text", ""), variables)}
            if isinstance(part, dict) and part.get("type") == "text"
            else part
            for part in value
        ]
    return value


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [str(p.get("text") or "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
    return []


def filled_length(text: str, variables: dict[str, str]) -> int:
    """len(fill_variables(text, variables)), without building the filled text."""
    length = len(text)
    for match in VARIABLE_RE.finditer(text):
        value = variables.get(match.group(1))
        if value is not None:
            length += len(str(value)) - len(match.group(0))
    return length


def filled_prefix(text: str, variables: dict[str, str], limit: int) -> str:
    """The first `limit` characters of the filled text, without building the rest."""
    pieces: list[str] = []
    size = 0
    position = 0
    for match in VARIABLE_RE.finditer(text):
        value = variables.get(match.group(1))
        for piece in (text[position : match.start()], match.group(0) if value is None else str(value)):
            pieces.append(piece[: limit - size])
            size += len(pieces[-1])
        position = match.end()
        if size >= limit:
            return "".join(pieces)
    pieces.append(text[position:][: limit - size])
    return "".join(pieces)


def content_length(content: Any, variables: dict[str, str]) -> int:
    """Characters of text in a message's content once filled in (image parts do not count)."""
    return sum(filled_length(text, variables) for text in _texts(content))


def has_content(message: dict[str, Any]) -> bool:
    content = message.get("content")
    if isinstance(content, list):
        return any(
            not (isinstance(p, dict) and p.get("type") == "text") or str(p.get("text") or "").strip() for p in content
        )
    return bool(isinstance(content, str) and content.strip()) or bool(message.get("tool_calls"))


class InputTooLarge(ValueError):
    """Raised by the run service for an input over the limits (forms refuse it first)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def typed_size_problem(texts: Iterable[tuple[str, str]]) -> str | None:
    """`texts` are (what it is, as typed) pairs, e.g. ("Turn 2", "..."), ("{{name}}", "...")."""
    for label, text in texts:
        if len(text) > MAX_MESSAGE_CHARS:
            return f"{label} is {len(text):,} characters long; the limit is {MAX_MESSAGE_CHARS:,} characters."
    return None


def sent_size_problem(messages: list[dict[str, Any]], variables: dict[str, str], *, extra: int = 0) -> str | None:
    """Why `messages` (version messages then turns, placeholders not yet filled) are too big
    to send once `variables` are filled in, or None. `extra` counts other typed text sent along."""
    total = extra
    for number, message in enumerate(messages, 1):
        size = content_length(message.get("content"), variables)
        if size > MAX_MESSAGE_CHARS:
            return (
                f"Message {number} ({message.get('role') or 'no role'}) would be {size:,} characters long once the "
                f"variables are filled in; the limit is {MAX_MESSAGE_CHARS:,} characters per message."
            )
        total += size
    if total > MAX_BODY_CHARS:
        return (
            f"The messages would be {total:,} characters long in all once the variables are filled in; "
            f"the limit is {MAX_BODY_CHARS:,} characters."
        )
    return None


def input_problem(messages: list[dict[str, Any]], inputs: dict[str, Any]) -> str | None:
    """Why a run of a version with `messages` and `inputs` ({"turns", "variables"}) cannot be
    sent for its size, or None. Cheap for any input: nothing is expanded."""
    variables = inputs.get("variables") or {}
    turns = inputs.get("turns") or []
    typed = [(f"Turn {i}", str(t.get("content") or "")) for i, t in enumerate(turns, 1)]
    typed += [(f"The value of {{{{{name}}}}}", str(value)) for name, value in variables.items()]
    return typed_size_problem(typed) or sent_size_problem([*messages, *turns], variables)


def missing_variables(names: Iterable[str], variables: dict[str, str]) -> list[str]:
    return [name for name in names if not str(variables.get(name) or "").strip()]
