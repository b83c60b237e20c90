"""What Maxim answers, read into typed results whatever shape Maxim chose.

Maxim wraps single objects as `{"data": {"data": {...}}}`, `{"data": {...}}` or not at
all, pages lists in several ways, and stores a version's messages as `{id, index,
payload}` wrappers (a payload may be a recorded completion). Everything that knows
those shapes is here; a shape we cannot read becomes a `MaximError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from prompts_app.maxim.errors import MAYBE_DONE, MaximError
from prompts_app.maxim.requests import NewDeployment, empty_parameters_schema
from prompts_app.plain_int import plain_int


@dataclass(frozen=True)
class WorkspaceInfo:
    id: str
    name: str
    raw: dict


@dataclass(frozen=True)
class PromptInfo:
    id: str
    name: str
    description: str
    workspace_id: str
    folder_id: str | None
    created_at: str
    updated_at: str
    raw: dict


@dataclass(frozen=True)
class VersionInfo:
    id: str
    version: int
    description: str
    prompt_id: str
    model: str
    provider: str
    messages: list[dict]  # Maxim's wrappers {id, index, payload, ...}, sorted by index
    model_parameters: dict
    author_name: str
    created_at: str
    updated_at: str
    raw: dict


@dataclass(frozen=True)
class RunResult:
    output: object
    text: str
    tool_calls: list[dict]
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    latency_ms: float
    raw: dict


@dataclass(frozen=True)
class DeployResult:
    id: str
    prompt_id: str
    version_id: str
    status: str
    raw: dict


def shape_error(what: str, detail: str, *, posted: bool) -> MaximError:
    return MaximError(
        f"Maxim's answer to {what} was not in the expected shape ({detail})." + (MAYBE_DONE if posted else "")
    )


def one_object(answer: Any, what: str, *, posted: bool, need_id: bool = True) -> dict:
    """The single object in `{"data": {"data": {...}}}`, `{"data": {...}}` or a bare object."""
    obj = answer.get("data", answer) if isinstance(answer, dict) else answer
    if isinstance(obj, dict) and "id" not in obj and isinstance(obj.get("data"), dict):
        obj = obj["data"]  # the documented double wrap
    if not isinstance(obj, dict):
        raise shape_error(what, "no data object", posted=posted)
    if need_id and not obj.get("id"):
        raise shape_error(what, "no id", posted=posted)
    return obj


def page_items(answer: Any, path: str) -> tuple[list[dict], str | None]:
    """Items and next cursor from a list answer in any of the forms Maxim is known to use."""
    what = f"GET {path}"
    if isinstance(answer, list):
        data: Any = answer
    elif isinstance(answer, dict) and "data" in answer:
        data = answer["data"]
        if isinstance(data, dict) and "id" not in data and isinstance(data.get("data"), (list, dict)):
            data = data["data"]
    elif isinstance(answer, dict) and "id" in answer:
        data = answer  # documented for GET /v1/prompts: one bare object
    else:
        raise shape_error(what, "no data", posted=False)
    if data is None:
        data = []
    elif isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(i, dict) and i.get("id") for i in data):
        raise shape_error(what, "items without an id", posted=False)
    cursor = None
    pagination = answer.get("pagination") if isinstance(answer, dict) else None
    if isinstance(pagination, dict) and pagination.get("hasMore", True) is not False:
        found = pagination.get("nextCursor") or pagination.get("cursor")
        cursor = str(found) if found else None
    return data, cursor


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def workspace_info(item: dict) -> WorkspaceInfo:
    return WorkspaceInfo(id=str(item["id"]), name=_text(item.get("name")), raw=item)


def prompt_info(item: dict) -> PromptInfo:
    return PromptInfo(
        id=str(item["id"]),
        name=_text(item.get("name")),
        description=_text(item.get("description")),
        workspace_id=_text(item.get("workspaceId")),
        folder_id=_text(item["folderId"]) if item.get("folderId") else None,
        created_at=_text(item.get("createdAt")),
        updated_at=_text(item.get("updatedAt")),
        raw=item,
    )


def version_info(item: dict) -> VersionInfo:
    number = item.get("version")
    if isinstance(number, str) and plain_int(number) is not None:
        number = plain_int(number)
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        raise shape_error("the version list", "a version without a number", posted=False)
    config = item.get("config") if isinstance(item.get("config"), dict) else {}
    wrappers = [m for m in config.get("messages") or [] if isinstance(m, dict)]
    # Sort by Maxim's index; position breaks ties and stands in when an index is missing.
    ordered = sorted(
        enumerate(wrappers),
        key=lambda p: (p[1]["index"] if isinstance(p[1].get("index"), (int, float)) else p[0], p[0]),
    )
    author = config.get("author") if isinstance(config.get("author"), dict) else {}
    parameters = config.get("modelParameters")
    return VersionInfo(
        id=str(item["id"]),
        version=int(number),
        description=_text(item.get("description")),
        prompt_id=_text(item.get("promptId")),
        model=_text(config.get("model")),
        provider=_text(config.get("provider")),
        messages=[m for _, m in ordered],
        model_parameters=parameters if isinstance(parameters, dict) else {},
        author_name=_text(author.get("name")),
        created_at=_text(item.get("createdAt")),
        updated_at=_text(item.get("updatedAt")),
        raw=item,
    )


def run_result(answer: Any, latency_ms: float) -> RunResult:
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, dict) or not ("output" in data or "usage" in data):
        raise shape_error("the run", "no output or usage", posted=True)
    output = data.get("output")
    usage = data.get("usage")
    if not isinstance(usage, dict):
        # Fall back to the usage block of an OpenAI-style output object.
        usage = output.get("usage") if isinstance(output, dict) else None
        usage = usage if isinstance(usage, dict) else {}
    prompt = _tokens(usage, "promptTokens", "prompt_tokens", "input_tokens") or 0
    completion = _tokens(usage, "completionTokens", "completion_tokens", "output_tokens") or 0
    total = _tokens(usage, "totalTokens", "total_tokens")
    text, tool_calls = _output_text(output)
    return RunResult(
        output=output,
        text=text,
        tool_calls=tool_calls,
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion if total is None else total,
        latency_ms=latency_ms,
        raw=answer,
    )


def deploy_result(answer: Any, request: NewDeployment) -> DeployResult:
    data = one_object(answer, "the deployment", posted=True, need_id=False)
    return DeployResult(
        id=_text(data.get("id")),
        prompt_id=_text(data.get("promptId") or request.prompt_id),
        version_id=_text(data.get("versionId") or request.version_id),
        status=_text(data.get("status")),
        raw=data,
    )


# Tokens one run can report: beyond any model's window, and well inside the columns that hold them
# (2**31 - 1 on PostgreSQL). A larger count (1e19, "1e400") is no usage at all: it failed the store
# of every answer stored with it (hostile trial), so the run fails with this reason instead.
MAX_TOKENS = 100_000_000


def _tokens(usage: dict, *names: str) -> int | None:
    for name in names:
        value = usage.get(name)
        if isinstance(value, bool) or value is None:
            continue
        try:
            count = float(value)
        except (TypeError, ValueError):
            continue
        if not count <= MAX_TOKENS:  # NaN and infinity too
            shown = str(value)[:40]
            raise shape_error("the run", f"{shown} {name}, more than any model can use", posted=True)
        return max(int(count), 0)
    return None


def _output_text(output: Any) -> tuple[str, list[dict]]:
    """Best-effort text and tool calls: a string, or an OpenAI-style completion object."""
    if isinstance(output, str):
        return output, []
    choices = output.get("choices") if isinstance(output, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return "", []
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        return (choice["text"], []) if isinstance(choice.get("text"), str) else ("", [])
    calls = message.get("tool_calls")
    tool_calls = [c for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []
    content = message.get("content")
    if isinstance(content, str):
        return content, tool_calls
    if isinstance(content, list):
        parts = [p if isinstance(p, str) else p.get("text") for p in content if isinstance(p, (str, dict))]
        return "".join(p for p in parts if isinstance(p, str)), tool_calls
    return "", tool_calls


# -- a version's content, in our own shape -------------------------------------------


def _completion_message(payload: dict[str, Any]) -> dict[str, Any] | None:
    """A recorded completion (`choices[0].message`) as an assistant message, else None."""
    choices = payload.get("choices")
    if not (isinstance(choices, list) and choices and isinstance(choices[0], dict)):
        return None
    recorded = choices[0].get("message")
    if not isinstance(recorded, dict):
        return None
    message: dict[str, Any] = {"role": recorded.get("role") or "assistant", "content": recorded.get("content")}
    if recorded.get("tool_calls"):
        message["tool_calls"] = recorded["tool_calls"]
    return message


def _tool_calls(calls: Any) -> list[dict[str, Any]]:
    out = []
    for call in calls if isinstance(calls, list) else []:
        if not isinstance(call, dict):
            continue
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        arguments = function.get("arguments", "")
        out.append(
            {
                "id": str(call.get("id") or ""),
                "type": "function",
                "function": {
                    "name": str(function.get("name") or ""),
                    "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
                },
            }
        )
    return out


def message_from_wrapper(wrapper: dict[str, Any]) -> dict[str, Any]:
    """Maxim's `{id, index, payload}` wrapper -> our message `{role, content, tool_calls?, tool_call_id?}`."""
    payload = wrapper.get("payload") if isinstance(wrapper.get("payload"), dict) else {}
    source = _completion_message(payload) or payload
    content = source.get("content")
    # The create-version contract needs a content on every message: "" stands for none.
    message: dict[str, Any] = {"role": str(source.get("role") or "user"), "content": "" if content is None else content}
    if not isinstance(message["content"], (str, list)):
        message["content"] = json.dumps(message["content"])
    calls = _tool_calls(source.get("tool_calls"))
    if calls:
        message["tool_calls"] = calls
    if source.get("tool_call_id"):
        message["tool_call_id"] = str(source["tool_call_id"])
    return message


def is_recorded_completion(wrapper: dict[str, Any]) -> bool:
    payload = wrapper.get("payload")
    return isinstance(payload, dict) and _completion_message(payload) is not None


def version_content(info: VersionInfo) -> dict[str, Any]:
    """A version as our content dict (the shape `requests.NewVersion` sends back), tools taken
    out of modelParameters where `ModelChoice.api_parameters` puts them."""
    params = dict(info.model_parameters)
    api_tools = params.pop("tools", None)
    tools = []
    for tool in api_tools if isinstance(api_tools, list) else []:
        function = tool.get("function") if isinstance(tool, dict) and isinstance(tool.get("function"), dict) else tool
        if isinstance(function, dict) and function.get("name"):
            tools.append(
                {
                    "name": str(function["name"]),
                    "description": str(function.get("description") or ""),
                    "parameters": function.get("parameters") or empty_parameters_schema(),
                }
            )
    return {
        "description": info.description,
        "provider": info.provider or "openai",
        "model_name": info.model,
        "model_parameters": params,
        "messages": [message_from_wrapper(w) for w in info.messages],
        "tools": tools,
    }


def recorded_payloads(raw: Any) -> dict[int, dict[str, Any]]:
    """Raw payloads of messages that Maxim holds as recorded completions, by position,
    from a version as Maxim answered it (`VersionInfo.raw`, stored as `PromptVersion.raw`)."""
    config = raw.get("config") if isinstance(raw, dict) else None
    wrappers = config.get("messages") if isinstance(config, dict) else None
    if not isinstance(wrappers, list):
        return {}
    ordered = sorted((w for w in wrappers if isinstance(w, dict)), key=lambda w: w.get("index") or 0)
    return {i: w["payload"] for i, w in enumerate(ordered) if is_recorded_completion(w)}
