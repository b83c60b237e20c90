"""The builder as one form, and the structural actions on it (add/remove/move rows...).

Every builder POST carries the whole form. It is read into a plain *state* (nested
lists of the strings as typed), the action is applied to the lists, and the state is
written back to form data with fresh row numbers. So a row can be added, removed or
moved without losing anything typed in any row, with or without JavaScript.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.forms import BoundField
from django.forms.utils import ErrorDict

from prompts_app.forms.versions import (
    MAX_MESSAGES,
    MAX_PARTS,
    MAX_TOOL_CALLS,
    MAX_TOOLS,
    MessageForm,
    MessageFormSetClass,
    PartForm,
    SettingsForm,
    ToolCallForm,
    ToolForm,
    ToolFormSetClass,
)
from prompts_app.forms.runs import VARIABLE_PREFIX
from prompts_app.run_input import input_problem, missing_variables
from prompts_app.models import variable_names

_ROW_CAP = 1000  # rows read from a POST at most; the forms report the real limits
NEW_TOOL_SCHEMA = '{\n  "type": "object",\n  "properties": {}\n}'
State = dict[str, Any]
# Who usually speaks after the last message: a model answers a person or a tool result.
NEXT_SPEAKER = {
    "": "system",
    "system": "user",
    "user": "assistant",
    "assistant": "user",
    "tool": "assistant",
    "model": "user",
    "chatbot": "user",
}


# -- POST data <-> state ------------------------------------------------------------


def _read(data: Mapping[str, Any], prefix: str, names: Any) -> dict[str, str]:
    out = {}
    for name in names:
        value = data.get(f"{prefix}-{name}" if prefix else name, "")
        out[name] = value if isinstance(value, str) else ""
    return out


class _Rows:
    """How many rows of each list a post gets read: at most one past the list's own limit (so its
    "at most N" error still shows) and _ROW_CAP in all. Nested lists multiply: 1,000 parts in
    each of 50 messages took 83 s to build, store and check (hostile trial)."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.left = _ROW_CAP

    def count(self, prefix: str, limit: int) -> int:
        try:
            wanted = int(self.data.get(f"{prefix}-TOTAL_FORMS", 0))
        except (TypeError, ValueError):
            return 0
        count = max(0, min(wanted, limit + 1, self.left))
        self.left -= count
        return count


def state_from_data(data: Mapping[str, Any]) -> State:
    rows = _Rows(data)
    messages = []
    tools = range(rows.count("t", MAX_TOOLS))  # first: a long message list must not leave no tools
    for i in range(rows.count("m", MAX_MESSAGES)):
        row = _read(data, f"m-{i}", MessageForm.base_fields)
        parts = range(rows.count(f"m-{i}-parts", MAX_PARTS))
        row["parts"] = [_read(data, f"m-{i}-parts-{j}", PartForm.base_fields) for j in parts]
        calls = range(rows.count(f"m-{i}-calls", MAX_TOOL_CALLS))
        row["calls"] = [_read(data, f"m-{i}-calls-{k}", ToolCallForm.base_fields) for k in calls]
        messages.append(row)
    return {
        "settings": _read(data, "", SettingsForm.base_fields),
        "messages": messages,
        "tools": [_read(data, f"t-{i}", ToolForm.base_fields) for i in tools],
    }


def _management(data: dict[str, str], prefix: str, total: int) -> None:
    # INITIAL = TOTAL: every row is a real row, so Django never skips a blank one as "extra".
    data.update(
        {
            f"{prefix}-TOTAL_FORMS": str(total),
            f"{prefix}-INITIAL_FORMS": str(total),
            f"{prefix}-MIN_NUM_FORMS": "0",
            f"{prefix}-MAX_NUM_FORMS": str(_ROW_CAP),
        }
    )


def state_to_data(state: State) -> dict[str, str]:
    data: dict[str, str] = dict(state["settings"])
    _management(data, "m", len(state["messages"]))
    for i, message in enumerate(state["messages"]):
        for name, value in message.items():
            if name not in ("parts", "calls"):
                data[f"m-{i}-{name}"] = value
        for sub in ("parts", "calls"):
            _management(data, f"m-{i}-{sub}", len(message[sub]))
            for j, row in enumerate(message[sub]):
                data.update({f"m-{i}-{sub}-{j}-{k}": v for k, v in row.items()})
    _management(data, "t", len(state["tools"]))
    for i, tool in enumerate(state["tools"]):
        data.update({f"t-{i}-{k}": v for k, v in tool.items()})
    return data


# -- version content -> state -----------------------------------------------------------


def _num(value: Any) -> str:
    return "" if value is None else json.dumps(value) if not isinstance(value, str) else value


def _settings(content: Mapping[str, Any]) -> dict[str, str]:
    params = dict(content.get("model_parameters") or {})
    settings = {name: "" for name in SettingsForm.base_fields}
    settings.update(
        description=content.get("description") or "",
        provider=content.get("provider") or "openai",
        model_name=content.get("model_name") or "",
    )
    for key in ("temperature", "max_tokens", "top_p", "frequency_penalty", "presence_penalty"):
        if key in params:
            settings[key] = _num(params.pop(key))
    if "stop" in params:
        stop = params.pop("stop")
        settings["stop"] = "\n".join(stop) if isinstance(stop, list) else _num(stop)
    fmt = params.get("response_format")
    if (
        isinstance(fmt, dict)
        and fmt.get("type") in ("text", "json_object", "json_schema")
        and (fmt["type"] != "json_schema" or isinstance(fmt.get("json_schema"), dict))
    ):
        params.pop("response_format")
        settings["response_format"] = fmt["type"]
        if fmt["type"] == "json_schema":
            settings["response_schema"] = json.dumps(fmt["json_schema"], indent=2)
    # Anything else, including a response_format the typed field cannot show, goes to the
    # JSON box, where the form points out what it cannot accept.
    settings["extra"] = json.dumps(params, indent=2) if params else ""
    return settings


def _part(part: Any) -> dict[str, str]:
    if isinstance(part, dict) and part.get("type") == "image_url":
        image = part.get("image_url") if isinstance(part.get("image_url"), dict) else {}
        return {
            "type": "image_url",
            "text": "",
            "url": str(image.get("url") or ""),
            "detail": str(image.get("detail") or ""),
        }
    if isinstance(part, dict) and part.get("type") == "text":
        return {"type": "text", "text": str(part.get("text") or ""), "url": "", "detail": ""}
    return {"type": "text", "text": part if isinstance(part, str) else json.dumps(part), "url": "", "detail": ""}


def _call(call: Any) -> dict[str, str]:
    call = call if isinstance(call, dict) else {}
    function = call.get("function") if isinstance(call.get("function"), dict) else {}
    arguments = function.get("arguments", "")
    return {
        "id": str(call.get("id") or ""),
        "name": str(function.get("name") or ""),
        "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
    }


def _message(message: Mapping[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    parts = isinstance(content, list)
    return {
        "role": str(message.get("role") or "user"),
        "mode": "parts" if parts else "text",
        "text": "" if parts or content is None else str(content),
        "tool_call_id": str(message.get("tool_call_id") or ""),
        "parts": [_part(p) for p in content] if parts else [],
        "calls": [_call(c) for c in message.get("tool_calls") or []],
    }


def _tool(tool: Mapping[str, Any]) -> dict[str, str]:
    return {
        "name": str(tool.get("name") or ""),
        "description": str(tool.get("description") or ""),
        "parameters": json.dumps(tool.get("parameters") or {"type": "object", "properties": {}}, indent=2),
    }


def state_from_content(content: Mapping[str, Any]) -> State:
    return {
        "settings": _settings(content),
        "messages": [_message(m) for m in content.get("messages") or [] if isinstance(m, dict)],
        "tools": [_tool(t) for t in content.get("tools") or [] if isinstance(t, dict)],
    }


def empty_state() -> State:
    return state_from_content(
        {
            "provider": "openai",
            "messages": [{"role": "system", "content": ""}, {"role": "user", "content": ""}],
        }
    )


# -- structural actions -----------------------------------------------------------------


def _new_message(speaker: str = "user") -> dict[str, Any]:
    return {"role": speaker, "mode": "text", "text": "", "tool_call_id": "", "parts": [], "calls": []}


def _new_part() -> dict[str, str]:
    return {"type": "text", "text": "", "url": "", "detail": ""}


def _swap(rows: list, i: int, j: int) -> None:
    if 0 <= i < len(rows) and 0 <= j < len(rows):
        rows[i], rows[j] = rows[j], rows[i]


def apply_action(state: State, action: str) -> State:
    """Apply one builder action, e.g. `add_message`, `move_up:2`, `remove_part:1:0`.

    Unknown actions and out-of-range rows change nothing: a stale button press must
    never throw away what was typed.
    """
    name, *args = (action or "").split(":")
    try:
        i, j = ([int(a) for a in args] + [0, 0])[:2]
    except ValueError:
        return state
    messages, tools = state["messages"], state["tools"]
    message = messages[i] if 0 <= i < len(messages) else None
    if name == "add_message" and len(messages) < MAX_MESSAGES:
        last = messages[-1]["role"] if messages else ""
        messages.append(_new_message(NEXT_SPEAKER.get(last, "user")))
    elif name == "add_tool":
        tools.append({"name": "", "description": "", "parameters": NEW_TOOL_SCHEMA})
    elif name == "remove_tool" and 0 <= i < len(tools):
        tools.pop(i)
    elif message is None:
        return state
    elif name == "remove_message":
        messages.pop(i)
    elif name == "duplicate_message" and len(messages) < MAX_MESSAGES:
        messages.insert(i + 1, json.loads(json.dumps(message)))
    elif name == "move_up":
        _swap(messages, i, i - 1)
    elif name == "move_down":
        _swap(messages, i, i + 1)
    elif name == "add_part":
        if message["mode"] == "text":
            message["parts"] = [{**_new_part(), "text": message["text"]}] if message["text"] else []
            message["mode"], message["text"] = "parts", ""
        message["parts"].append(_new_part())
    elif name == "to_parts" and message["mode"] == "text":
        message["parts"] = [{**_new_part(), "text": message["text"]}]
        message["mode"], message["text"] = "parts", ""
    elif name == "to_text" and all(p["type"] == "text" for p in message["parts"]):
        # Only text parts can fold into plain text; an image part keeps the message in parts.
        message["text"] = "\n\n".join(p["text"] for p in message["parts"] if p["text"])
        message["mode"], message["parts"] = "text", []
    elif name == "remove_part" and 0 <= j < len(message["parts"]):
        message["parts"].pop(j)
    elif name == "add_tool_call":
        message["calls"].append({"id": f"call_{len(message['calls']) + 1}", "name": "", "arguments": "{}"})
    elif name == "remove_tool_call" and 0 <= j < len(message["calls"]):
        message["calls"].pop(j)
    return state


# -- the whole builder ----------------------------------------------------------------------


class BuilderForm:
    """Settings form + messages formset + tools formset, validated together."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.settings = SettingsForm(data)
        self.messages = MessageFormSetClass(data, prefix="m")
        self.tools = ToolFormSetClass(data, prefix="t")

    def is_valid(self) -> bool:
        return all([self.settings.is_valid(), self.messages.is_valid(), self.tools.is_valid()])

    def content(self) -> dict[str, Any]:
        """The version content; only after is_valid() returned True."""
        settings = self.settings.cleaned_data
        return {
            "description": settings["description"],
            "provider": settings["provider"],
            "model_name": settings["model_name"].strip(),
            "model_parameters": self.settings.model_parameters(),
            "messages": [f.message() for f in self.messages],
            "tools": [f.tool() for f in self.tools],
        }

    def variables(self) -> list[str]:
        """`{{variable}}` names in the message text as typed, valid or not."""
        return variable_names(text for form in self.messages for text in form.texts())

    def hide_errors(self) -> None:
        """Forget the errors after validating, for renders that do not show them.

        Django marks a field with errors aria-invalid and points aria-describedby at its
        error list; with the list not shown, both would tell screen readers something false.
        """
        self.is_valid()  # clean first, so nothing validates again later and finds the errors anew
        for form in [self.settings, *self.messages, *self.tools]:
            form._errors = ErrorDict()
            for sub in getattr(form, "parts", []), getattr(form, "tool_calls", []):
                for row in sub:
                    row._errors = ErrorDict()

    def _all_forms(self) -> list[Any]:
        forms = [self.settings, *self.tools]
        for form in self.messages:
            forms += [form, *form.parts, *form.tool_calls]
        return forms

    def invalid_fields(self) -> list[BoundField]:
        """The fields that have errors (their error lists are "<auto_id>_error")."""
        return [form[name] for form in self._all_forms() for name in form.errors if name != NON_FIELD_ERRORS]

    def has_whole_form_errors(self) -> bool:
        """Errors of no one field: "add at least one message", "at most 64 tools", a row's own."""
        return bool(
            self.messages.non_form_errors()
            or self.tools.non_form_errors()
            or any(NON_FIELD_ERRORS in form.errors for form in self._all_forms())
        )

    def error_count(self) -> int:
        count = len(self.settings.errors) + len(self.messages.non_form_errors()) + len(self.tools.non_form_errors())
        for form in self.messages:
            count += len(form.errors) + sum(len(f.errors) for f in [*form.parts, *form.tool_calls])
        return count + sum(len(f.errors) for f in self.tools)


# -- trying the draft ---------------------------------------------------------------------


def playground_values(data: Mapping[str, Any], names: list[str]) -> dict[str, str]:
    """The value typed for each `{{variable}}` of the draft (empty when not given)."""
    values = {name: data.get(VARIABLE_PREFIX + name, "") for name in names}
    return {name: value if isinstance(value, str) else "" for name, value in values.items()}


def playground_problem(values: dict[str, str], messages: list[dict[str, Any]]) -> str:
    """Why the draft cannot be tried with these values, as the run form would say it; "" if it can."""
    missing = missing_variables(values, values)
    if missing:
        them = "it" if len(missing) == 1 else "them"
        return f"Fill in {', '.join(f'{{{{{name}}}}}' for name in missing)}: the draft's messages use {them}."
    return input_problem(messages, {"turns": [], "variables": values}) or ""
