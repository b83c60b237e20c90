"""The audit trail: one `record()` that the services call where something an owner
should be able to trace happens, and the rows of its CSV export."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

from prompts_app.models import AuditEvent, Workspace

log = logging.getLogger(__name__)

Action = AuditEvent.Action

# Belt and braces: no caller passes a secret, but a detail key that looks like one is dropped.
_SECRET_KEY = re.compile(r"key|token|secret|password|authorization", re.IGNORECASE)


def record(
    workspace: Workspace, *, actor: Any, action: str, target: str = "", detail: dict | None = None
) -> AuditEvent:
    """Store one event. `detail` is small JSON for people to read, never a key, token or password."""
    clean = {k: v for k, v in (detail or {}).items() if not _SECRET_KEY.search(str(k))}
    user = actor if getattr(actor, "pk", None) else None
    event = AuditEvent.objects.create(
        workspace=workspace,
        actor=user,
        actor_name=user.get_username() if user else "",
        action=action,
        target=str(target)[:300],
        detail=clean,
    )
    log.info("audit workspace=%s action=%s actor=%s", workspace.pk, action, user.pk if user else None)
    return event


def record_price(workspace: Workspace, price: Any, *, actor: Any) -> AuditEvent:
    return record(
        workspace,
        actor=actor,
        action=Action.PRICE_SAVED,
        target=price.model_pattern,
        detail={
            "input_usd_per_mtok": str(price.input_usd_per_mtok),
            "output_usd_per_mtok": str(price.output_usd_per_mtok),
        },
    )


def record_export(actor: Any, workspace_ids: list[int], *, fmt: str, filters: str) -> None:
    """An export of run history: one event in each workspace it read from."""
    for workspace in Workspace.objects.filter(pk__in=workspace_ids):
        record(
            workspace,
            actor=actor,
            action=Action.RUNS_EXPORTED,
            target=f"runs as {fmt.upper()}",
            detail={"filters": filters} if filters else {},
        )


def events(workspace: Workspace):
    return workspace.audit_events.select_related("actor")


CSV_HEADER = ["time", "actor", "action", "target", "detail"]


def export_rows(workspace: Workspace) -> Iterator[list[str]]:
    for event in events(workspace).iterator(chunk_size=500):
        yield [
            event.created_at.isoformat(),
            event.actor_name,
            event.action,
            event.target,
            json.dumps(event.detail, ensure_ascii=False, sort_keys=True),
        ]
