"""Prompts and versions: sync from Maxim, import versions, drafts, create and deploy.

Each function that calls Maxim lets `MaximError` through after recording what it
must (a draft's last error, a failed deployment), so views only show `exc.message`.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from prompts_app import maxim
from prompts_app.models import Deployment, Draft, Prompt, PromptVersion, Run, Workspace
from prompts_app.services.compare import draft_base_version
from prompts_app.services import audit
from prompts_app.services.runs import run_version

def client_for(workspace: Workspace) -> maxim.MaximClient:
    return maxim.get_client(workspace.base_url, workspace.get_api_key())


def _when(text: str) -> Any:
    try:
        return parse_datetime(text) if text else None
    except ValueError:
        return None


# -- prompts ------------------------------------------------------------------------------


def sync_prompts(workspace: Workspace) -> tuple[int, int]:
    """Upsert every prompt of the workspace from Maxim; returns (created, updated)."""
    infos = client_for(workspace).list_prompts(workspace.maxim_id)
    created = updated = 0
    now = timezone.now()
    with transaction.atomic():
        for info in infos:
            _, was_created = Prompt.objects.update_or_create(
                workspace=workspace, maxim_id=info.id,
                defaults={"name": info.name or info.id, "description": info.description,
                          "folder_id": info.folder_id or "", "raw": info.raw, "synced_at": now},
            )
            created, updated = created + was_created, updated + (not was_created)
    return created, updated


def create_prompt(*, workspace: Workspace, name: str, description: str = "") -> Prompt:
    info = client_for(workspace).create_prompt(workspace_id=workspace.maxim_id, name=name, description=description)
    prompt, _ = Prompt.objects.update_or_create(
        workspace=workspace, maxim_id=info.id,
        defaults={"name": info.name or name, "description": info.description or description,
                  "folder_id": info.folder_id or "", "raw": info.raw, "synced_at": timezone.now()},
    )
    return prompt


# -- importing versions -----------------------------------------------------------------------


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
        out.append({"id": str(call.get("id") or ""), "type": "function",
                    "function": {"name": str(function.get("name") or ""),
                                 "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments)}})
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


def content_from_info(info: maxim.VersionInfo) -> dict[str, Any]:
    params = dict(info.model_parameters)
    api_tools = params.pop("tools", None)
    tools = []
    for tool in api_tools if isinstance(api_tools, list) else []:
        function = tool.get("function") if isinstance(tool, dict) and isinstance(tool.get("function"), dict) else tool
        if isinstance(function, dict) and function.get("name"):
            tools.append({"name": str(function["name"]), "description": str(function.get("description") or ""),
                          "parameters": function.get("parameters") or {"type": "object", "properties": {}}})
    return {
        "description": info.description,
        "provider": info.provider or "openai",
        "model_name": info.model,
        "model_parameters": params,
        "messages": [message_from_wrapper(w) for w in info.messages],
        "tools": tools,
    }


def import_versions(prompt: Prompt) -> tuple[int, int]:
    """Upsert every version of the prompt by Maxim id; importing again updates, never duplicates."""
    infos = client_for(prompt.workspace).list_versions(prompt.maxim_id)
    created = updated = 0
    with transaction.atomic():
        for info in infos:
            defaults = {**content_from_info(info), "number": info.version, "author_name": info.author_name,
                        "maxim_created_at": _when(info.created_at), "raw": info.raw}
            version = PromptVersion.objects.filter(prompt=prompt, maxim_id=info.id).first()
            if version is None:
                PromptVersion.objects.create(prompt=prompt, maxim_id=info.id, source=PromptVersion.Source.IMPORTED, **defaults)
                created += 1
            else:
                # A version created here keeps its source and author; Maxim's copy refreshes the rest.
                for key, value in defaults.items():
                    setattr(version, key, value)
                version.save()
                updated += 1
        prompt.synced_at = timezone.now()
        prompt.save(update_fields=["synced_at"])
    return created, updated


def _recorded_payloads(version: PromptVersion) -> dict[int, dict[str, Any]]:
    """Raw payloads of messages that Maxim holds as recorded completions, by position."""
    config = version.raw.get("config") if isinstance(version.raw, dict) else None
    wrappers = config.get("messages") if isinstance(config, dict) else None
    if not isinstance(wrappers, list):
        return {}
    ordered = sorted((w for w in wrappers if isinstance(w, dict)), key=lambda w: w.get("index") or 0)
    return {i: w["payload"] for i, w in enumerate(ordered) if is_recorded_completion(w)}


def _link(url: Any) -> str | None:
    # Imported content is not validated like the builder's: only http(s) becomes a link,
    # so a javascript: URL can never be clicked from the version page.
    return url if isinstance(url, str) and url.lower().startswith(("http://", "https://")) else None


def message_rows(version: PromptVersion) -> list[dict[str, Any]]:
    """The version's messages prepared for reading: text or parts, safe image links, recorded raw."""
    recorded = _recorded_payloads(version)
    rows = []
    for index, message in enumerate(version.messages):
        content = message.get("content")
        parts = []
        if isinstance(content, list):
            for part in content:
                part = part if isinstance(part, dict) else {"type": "text", "text": str(part)}
                image = part.get("image_url") if isinstance(part.get("image_url"), dict) else {}
                parts.append({**part, "url": image.get("url", ""), "link": _link(image.get("url")),
                              "detail": image.get("detail", "")})
        rows.append({"message": message, "text": content if isinstance(content, str) else None, "parts": parts,
                     "recorded": json.dumps(recorded[index], indent=2) if index in recorded else None})
    return rows


# -- drafts and creating versions ----------------------------------------------------------


def find_draft(*, prompt: Prompt, user: Any, base_version: PromptVersion | None) -> Draft | None:
    return Draft.objects.filter(prompt=prompt, user=user, base_version=base_version, created_version__isnull=True).first()


class DraftConflict(Exception):
    """The draft was saved from somewhere else (another tab) since this form was loaded."""

    message = "This draft changed in another tab; reload to see it. Nothing here was saved."


def save_draft(*, prompt: Prompt, user: Any, base_version: PromptVersion | None, form_data: dict[str, str],
               content: dict[str, Any] | None, revision: int | None = None) -> Draft:
    """Keep the builder's state server-side: the form data always, the content when valid.

    `revision` is the draft revision the form was loaded with; a save based on an older
    revision than the stored one raises DraftConflict instead of overwriting it.
    """
    fields = {"form_data": form_data, **(content or {})}
    for _ in range(2):
        draft = find_draft(prompt=prompt, user=user, base_version=base_version)
        if draft is None:
            draft = Draft(prompt=prompt, user=user, base_version=base_version, revision=1, **fields)
            try:
                with transaction.atomic():
                    draft.save()
            except IntegrityError:  # another request opened the same draft a moment ago: save into that one
                continue
            return draft
        stored = Draft.objects.filter(pk=draft.pk)
        if revision is not None:
            stored = stored.filter(revision__lte=revision)
        # One conditional UPDATE, so two saves at once cannot both pass the revision check.
        if not stored.update(revision=F("revision") + 1, updated_at=timezone.now(), **fields):
            raise DraftConflict()
        draft.refresh_from_db()
        return draft
    raise DraftConflict()


def discard_draft(*, prompt: Prompt, user: Any, base_version: PromptVersion | None) -> None:
    Draft.objects.filter(prompt=prompt, user=user, base_version=base_version, created_version__isnull=True).delete()


# -- trying a draft ---------------------------------------------------------------------------


class NothingToRunAgainst(Exception):
    """Maxim runs a draft against a stored version, and the prompt has none yet."""

    message = "Create a first version of this prompt before trying drafts: Maxim runs a draft against a stored version."


def draft_run_version(*, prompt: Prompt, base_version: PromptVersion | None) -> PromptVersion | None:
    """The version a draft of `prompt` started from `base_version` runs against."""
    return draft_base_version(Draft(prompt=prompt, base_version=base_version))


def run_draft(*, prompt: Prompt, user: Any, base_version: PromptVersion | None, content: dict[str, Any],
              variables: dict[str, str], idempotency_key: str = "") -> Run:
    """Run the builder's content once, recorded as a draft run (`Run.is_draft`) of the version it
    runs against; no version is created. Raises NothingToRunAgainst."""
    against = draft_run_version(prompt=prompt, base_version=base_version)
    if against is None:
        raise NothingToRunAgainst()
    inputs = {"turns": [], "variables": variables, "overrides": {}}
    return run_version(version=against, inputs=inputs, user=user, content=content, idempotency_key=idempotency_key)


class AlreadyCreating(Exception):
    """The same draft is being created by another request right now (a double submit)."""


# Longer than the client's longest wait for Maxim; a claim older than this died with its process.
CREATING_GRACE = timedelta(minutes=3)


def recent_twin(*, prompt: Prompt, user: Any, base_version: PromptVersion | None,
                content: dict[str, Any]) -> PromptVersion | None:
    """The version this user just created from exactly this content: a resubmitted form."""
    recent = (Draft.objects.filter(prompt=prompt, user=user, base_version=base_version, created_version__isnull=False,
                                   updated_at__gte=timezone.now() - CREATING_GRACE)
              .select_related("created_version").order_by("-updated_at").first())  # fmt: skip
    if recent and recent.created_version.content() == content:
        return recent.created_version
    return None


def create_version(*, draft: Draft, content: dict[str, Any], user: Any) -> PromptVersion:
    """Send the content to Maxim as a new version and store it; the draft keeps any error.

    Raises AlreadyCreating when another request is creating this draft at this moment.
    """
    now = timezone.now()
    claimed = (Draft.objects.filter(pk=draft.pk, created_version__isnull=True)
               .filter(Q(creating_since__isnull=True) | Q(creating_since__lt=now - CREATING_GRACE))
               .update(creating_since=now))  # fmt: skip
    if not claimed:
        raise AlreadyCreating("This version is already being created; it will open when Maxim answers.")
    try:
        return _create_version(draft=draft, content=content, user=user)
    finally:
        Draft.objects.filter(pk=draft.pk).update(creating_since=None)


def _create_version(*, draft: Draft, content: dict[str, Any], user: Any) -> PromptVersion:
    prompt = draft.prompt
    version = PromptVersion(prompt=prompt, source=PromptVersion.Source.CREATED, created_by=user, **content)
    try:
        info = client_for(prompt.workspace).create_version(version.to_api_payload())
    except maxim.MaximError as exc:
        draft.last_error = exc.message
        draft.save(update_fields=["last_error", "updated_at"])
        raise
    version.maxim_id = info.id
    version.number = info.version
    version.author_name = info.author_name or user.get_username()
    version.maxim_created_at = _when(info.created_at)
    version.raw = info.raw
    with transaction.atomic():
        version.save()
        draft.created_version = version
        draft.last_error = ""
        draft.save(update_fields=["created_version", "last_error", "updated_at"])
        audit.record(prompt.workspace, actor=user, action=audit.Action.VERSION_CREATED,
                     target=f"{prompt.name} v{version.number}")  # fmt: skip
    return version


# -- deploying ---------------------------------------------------------------------------------


def deploy_version(*, version: PromptVersion, conditions: list[dict[str, str]], user: Any) -> Deployment:
    """Deploy on Maxim and record the outcome either way; raises MaximError after recording a failure."""
    workspace = version.prompt.workspace
    payload = {"promptId": version.prompt.maxim_id, "versionId": version.maxim_id,
               "workspaceId": workspace.maxim_id, "deploymentConditions": conditions}
    deployment = Deployment(version=version, conditions=conditions, created_by=user)
    try:
        result = client_for(workspace).deploy(payload)
    except maxim.MaximError as exc:
        deployment.status, deployment.error = "failed", exc.message
        deployment.save()
        raise
    deployment.status, deployment.response = result.status or "deployed", result.raw
    deployment.save()
    audit.record(workspace, actor=user, action=audit.Action.VERSION_DEPLOYED,
                 target=f"{version.prompt.name} v{version.number}", detail={"conditions": conditions})  # fmt: skip
    return deployment
