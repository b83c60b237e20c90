"""Prompts and versions: sync from Maxim, import versions, drafts, create and deploy.

Each function that calls Maxim raises `MaximCallFailed` (never the client's own error)
after recording what it must (a draft's last error, a failed deployment), so views only
show `exc.message`. What is sent and how Maxim's answers are read: prompts_app/maxim/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from prompts_app import maxim
from prompts_app.maxim import client_for, shapes
from prompts_app.models import Deployment, Draft, Prompt, PromptVersion, Run, Workspace
from prompts_app.services.compare import draft_base_version
from prompts_app.services import audit
from prompts_app.services.runs import run_version


class MaximCallFailed(Exception):
    """A call to Maxim failed; `message` is the client's sentence, safe to show."""

    def __init__(self, error: maxim.MaximError) -> None:
        super().__init__(error.message)
        self.message = error.message
        self.status = error.status


@contextmanager
def _calling_maxim() -> Iterator[None]:
    try:
        yield
    except maxim.MaximError as exc:  # crypto.DecryptionError included
        raise MaximCallFailed(exc) from None


def _when(text: str) -> Any:
    try:
        return parse_datetime(text) if text else None
    except ValueError:
        return None


# -- prompts ------------------------------------------------------------------------------


def sync_prompts(workspace: Workspace) -> tuple[int, int]:
    """Upsert every prompt of the workspace from Maxim; returns (created, updated)."""
    with _calling_maxim():
        infos = client_for(workspace).list_prompts(workspace.maxim_id)
    created = updated = 0
    now = timezone.now()
    with transaction.atomic():
        for info in infos:
            _, was_created = Prompt.objects.update_or_create(
                workspace=workspace,
                maxim_id=info.id,
                defaults={
                    "name": info.name or info.id,
                    "description": info.description,
                    "folder_id": info.folder_id or "",
                    "raw": info.raw,
                    "synced_at": now,
                },
            )
            created, updated = created + was_created, updated + (not was_created)
    return created, updated


def create_prompt(*, workspace: Workspace, name: str, description: str = "") -> Prompt:
    request = maxim.NewPrompt(workspace_id=workspace.maxim_id, name=name, description=description)
    with _calling_maxim():
        info = client_for(workspace).create_prompt(request)
    prompt, _ = Prompt.objects.update_or_create(
        workspace=workspace,
        maxim_id=info.id,
        defaults={
            "name": info.name or name,
            "description": info.description or description,
            "folder_id": info.folder_id or "",
            "raw": info.raw,
            "synced_at": timezone.now(),
        },
    )
    return prompt


# -- importing versions -----------------------------------------------------------------------


def import_versions(prompt: Prompt) -> tuple[int, int]:
    """Upsert every version of the prompt by Maxim id; importing again updates, never duplicates."""
    with _calling_maxim():
        infos = client_for(prompt.workspace).list_versions(prompt.maxim_id)
    created = updated = 0
    with transaction.atomic():
        for info in infos:
            defaults = {
                **shapes.version_content(info),
                "number": info.version,
                "author_name": info.author_name,
                "maxim_created_at": _when(info.created_at),
                "raw": info.raw,
            }
            version = PromptVersion.objects.filter(prompt=prompt, maxim_id=info.id).first()
            if version is None:
                PromptVersion.objects.create(
                    prompt=prompt, maxim_id=info.id, source=PromptVersion.Source.IMPORTED, **defaults
                )
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


def _link(url: Any) -> str | None:
    # Imported content is not validated like the builder's: only http(s) becomes a link,
    # so a javascript: URL can never be clicked from the version page.
    return url if isinstance(url, str) and url.lower().startswith(("http://", "https://")) else None


def message_rows(version: PromptVersion) -> list[dict[str, Any]]:
    """The version's messages prepared for reading: text or parts, safe image links, recorded raw."""
    recorded = shapes.recorded_payloads(version.raw)
    rows = []
    for index, message in enumerate(version.messages):
        content = message.get("content")
        parts = []
        if isinstance(content, list):
            for part in content:
                part = part if isinstance(part, dict) else {"type": "text", "text": str(part)}
                image = part.get("image_url") if isinstance(part.get("image_url"), dict) else {}
                parts.append(
                    {
                        **part,
                        "url": image.get("url", ""),
                        "link": _link(image.get("url")),
                        "detail": image.get("detail", ""),
                    }
                )
        rows.append(
            {
                "message": message,
                "text": content if isinstance(content, str) else None,
                "parts": parts,
                "recorded": json.dumps(recorded[index], indent=2) if index in recorded else None,
            }
        )
    return rows


# -- drafts and creating versions ----------------------------------------------------------


def find_draft(*, prompt: Prompt, user: Any, base_version: PromptVersion | None) -> Draft | None:
    return Draft.objects.filter(
        prompt=prompt, user=user, base_version=base_version, created_version__isnull=True
    ).first()


class DraftConflict(Exception):
    """The draft was saved from somewhere else (another tab) since this form was loaded."""

    message = "This draft changed in another tab; reload to see it. Nothing here was saved."


def save_draft(
    *,
    prompt: Prompt,
    user: Any,
    base_version: PromptVersion | None,
    form_data: dict[str, str],
    content: dict[str, Any] | None,
    revision: int | None = None,
) -> Draft:
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


def run_draft(
    *,
    prompt: Prompt,
    user: Any,
    base_version: PromptVersion | None,
    content: dict[str, Any],
    variables: dict[str, str],
    idempotency_key: str = "",
) -> Run:
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


def recent_twin(
    *, prompt: Prompt, user: Any, base_version: PromptVersion | None, content: dict[str, Any]
) -> PromptVersion | None:
    """The version this user just created from exactly this content: a resubmitted form."""
    recent = (
        Draft.objects.filter(
            prompt=prompt,
            user=user,
            base_version=base_version,
            created_version__isnull=False,
            updated_at__gte=timezone.now() - CREATING_GRACE,
        )
        .select_related("created_version")
        .order_by("-updated_at")
        .first()
    )
    if recent and recent.created_version.content() == content:
        return recent.created_version
    return None


def create_version(*, draft: Draft, content: dict[str, Any], user: Any) -> PromptVersion:
    """Send the content to Maxim as a new version and store it; the draft keeps any error.

    Raises AlreadyCreating when another request is creating this draft at this moment.
    """
    now = timezone.now()
    claimed = (
        Draft.objects.filter(pk=draft.pk, created_version__isnull=True)
        .filter(Q(creating_since__isnull=True) | Q(creating_since__lt=now - CREATING_GRACE))
        .update(creating_since=now)
    )
    if not claimed:
        raise AlreadyCreating("This version is already being created; it will open when Maxim answers.")
    try:
        return _create_version(draft=draft, content=content, user=user)
    finally:
        Draft.objects.filter(pk=draft.pk).update(creating_since=None)


def _create_version(*, draft: Draft, content: dict[str, Any], user: Any) -> PromptVersion:
    prompt = draft.prompt
    version = PromptVersion(prompt=prompt, source=PromptVersion.Source.CREATED, created_by=user, **content)
    request = maxim.NewVersion.from_content(prompt_id=prompt.maxim_id, content=version.content())
    try:
        info = client_for(prompt.workspace).create_version(request)
    except maxim.MaximError as exc:
        draft.last_error = exc.message
        draft.save(update_fields=["last_error", "updated_at"])
        raise MaximCallFailed(exc) from None
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
        audit.record(
            prompt.workspace, actor=user, action=audit.Action.VERSION_CREATED, target=f"{prompt.name} v{version.number}"
        )
    return version


# -- deploying ---------------------------------------------------------------------------------


def deploy_version(*, version: PromptVersion, conditions: list[dict[str, str]], user: Any) -> Deployment:
    """Deploy on Maxim and record the outcome either way; raises MaximCallFailed after recording a failure."""
    workspace = version.prompt.workspace
    request = maxim.NewDeployment(
        prompt_id=version.prompt.maxim_id,
        version_id=version.maxim_id,
        workspace_id=workspace.maxim_id,
        conditions=conditions,
    )
    deployment = Deployment(version=version, conditions=conditions, created_by=user)
    try:
        result = client_for(workspace).deploy(request)
    except maxim.MaximError as exc:
        deployment.status, deployment.error = "failed", exc.message
        deployment.save()
        raise MaximCallFailed(exc) from None
    deployment.status, deployment.response = result.status or "deployed", result.raw
    deployment.save()
    audit.record(
        workspace,
        actor=user,
        action=audit.Action.VERSION_DEPLOYED,
        target=f"{version.prompt.name} v{version.number}",
        detail={"conditions": conditions},
    )
    return deployment
