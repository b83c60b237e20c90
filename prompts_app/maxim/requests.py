"""What we send Maxim: one frozen dataclass per request, its `body()` the exact JSON.

Built from plain values (content dicts, ids), never from models, so this file alone
answers "what exactly do we send?". The specs these bodies are checked against are
in spec/maxim/ (tests/maxim_spec.py).

Content dicts are our own shape, the one `VersionContent.content()` returns:
{description, provider, model_name, model_parameters, messages, tools}, where
`messages` are already in the API's shape ({role, content (str | parts | None),
tool_calls?, tool_call_id?}) and `tools` are {name, description, parameters}.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Content = Mapping[str, Any]
# Fills `{{name}}` placeholders in a message content (prompts_app.run_input.fill_variables);
# passed in so the client needs nothing from the models.
Fill = Callable[[Any, dict[str, Any]], Any]


def empty_parameters_schema() -> dict[str, Any]:
    """A tool's parameters when none are given (a new dict each time: bodies are stored and edited)."""
    return {"type": "object", "properties": {}}


@dataclass(frozen=True)
class ModelChoice:
    """Model, provider and parameters as Maxim takes them on a run and on a new version."""

    name: str
    provider: str
    parameters: dict[str, Any]  # every parameter except tools
    tools: list[dict[str, Any]]  # ours: {name, description, parameters}

    @classmethod
    def of(cls, content: Content, overrides: Mapping[str, Any] | None = None) -> ModelChoice:
        """The content's model; a run's overrides (model_name, provider, model_parameters) win."""
        overrides = overrides or {}
        return cls(
            name=overrides.get("model_name") or content.get("model_name", ""),
            provider=overrides.get("provider") or content.get("provider", "openai"),
            parameters={**content.get("model_parameters", {}), **(overrides.get("model_parameters") or {})},
            tools=list(content.get("tools") or []),
        )

    def api_parameters(self) -> dict[str, Any]:
        params = dict(self.parameters)
        if self.tools:
            # Maxim's run contract carries tools in modelParameters.tools (OpenAI shape);
            # the create-version contract leaves modelParameters open, so the same shape
            # is sent there and read back on import (shapes.version_content).
            params["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": tool["name"],
                        "description": tool.get("description", ""),
                        "parameters": tool.get("parameters") or empty_parameters_schema(),
                    },
                }
                for tool in self.tools
            ]
        return params


@dataclass(frozen=True)
class RunRequest:
    """POST /v1/prompts/run: run a stored version once."""

    prompt_id: str
    version_id: str
    workspace_id: str
    messages: list[dict[str, Any]]
    model: ModelChoice

    @classmethod
    def for_version(
        cls,
        *,
        prompt_id: str,
        version_id: str,
        workspace_id: str,
        content: Content,
        inputs: Mapping[str, Any],
        fill: Fill,
    ) -> RunRequest:
        """A run of `content` (a version's, or a draft's run against that version) with `inputs`:
        {variables: {name: value}, turns: [message], overrides: {model_name, provider, model_parameters}}.

        Maxim's docs do not say how a version's stored messages combine with the
        `messages` of a run, so we send the content's messages with variables filled
        in, then the input turns, and the content's model, provider and parameters.
        """
        variables = inputs.get("variables") or {}
        messages = [
            {**message, "content": fill(message.get("content"), variables)} for message in content.get("messages", [])
        ]
        # Turns are filled in too: Maxim never fills placeholders, so a `{{name}}` typed
        # into a turn would otherwise reach the model as literal braces.
        messages += [{**turn, "content": fill(turn.get("content"), variables)} for turn in inputs.get("turns") or []]
        return cls(
            prompt_id=prompt_id,
            version_id=version_id,
            workspace_id=workspace_id,
            messages=messages,
            model=ModelChoice.of(content, inputs.get("overrides")),
        )

    def body(self) -> dict[str, Any]:
        return {
            "promptId": self.prompt_id,
            "versionId": self.version_id,
            "workspaceId": self.workspace_id,
            "messages": list(self.messages),
            "modelName": self.model.name,
            "modelProvider": self.model.provider,
            "modelParameters": self.model.api_parameters(),
        }


@dataclass(frozen=True)
class NewVersion:
    """POST /v1/prompts/versions: a new version of a prompt with this content."""

    prompt_id: str
    description: str
    messages: list[dict[str, Any]]
    model: ModelChoice

    @classmethod
    def from_content(cls, *, prompt_id: str, content: Content) -> NewVersion:
        return cls(
            prompt_id=prompt_id,
            description=content.get("description", ""),
            messages=list(content.get("messages", [])),
            model=ModelChoice.of(content),
        )

    def body(self) -> dict[str, Any]:
        return {
            "promptId": self.prompt_id,
            "description": self.description,
            "modelName": self.model.name,
            "modelProvider": self.model.provider,
            "messages": list(self.messages),
            "modelParameters": self.model.api_parameters(),
        }


@dataclass(frozen=True)
class NewPrompt:
    """POST /v1/prompts: a new, empty prompt in a workspace."""

    workspace_id: str
    name: str
    description: str = ""
    folder_id: str | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"workspaceId": self.workspace_id, "name": self.name, "description": self.description}
        if self.folder_id:
            body["folderId"] = self.folder_id
        return body


@dataclass(frozen=True)
class NewDeployment:
    """POST /v1/prompts/deploy: serve a version to requests matching the conditions."""

    prompt_id: str
    version_id: str
    workspace_id: str
    conditions: list[dict[str, str]]  # {variable, operator, value}

    def body(self) -> dict[str, Any]:
        return {
            "promptId": self.prompt_id,
            "versionId": self.version_id,
            "workspaceId": self.workspace_id,
            "deploymentConditions": list(self.conditions),
        }
