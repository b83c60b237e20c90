"""Which versions are deployed now, read from the deployments recorded here."""

from __future__ import annotations

import json
from collections.abc import Iterable

from prompts_app.models import Deployment, Prompt, Workspace


def conditions_key(conditions: list[dict[str, str]]) -> str:
    rows = sorted((str(c.get("variable", "")), str(c.get("operator", "")), str(c.get("value", ""))) for c in conditions)
    return json.dumps(rows)


def _live(deployments: Iterable[Deployment]) -> list[Deployment]:
    # Maxim serves one version of a prompt per set of deployment conditions, so a later successful
    # deploy with the same conditions replaces an earlier one; failed deploys never served anything.
    seen: set[tuple[int, str]] = set()
    live = []
    for deployment in deployments:
        key = (deployment.version.prompt_id, conditions_key(deployment.conditions))
        if key not in seen:
            seen.add(key)
            live.append(deployment)
    return live


def _successful() -> Iterable[Deployment]:
    return Deployment.objects.filter(error="").select_related("version").order_by("-created_at", "-pk")


def live_deployments(prompt: Prompt) -> dict[int, list[Deployment]]:
    """Version id -> its deployments that still serve requests."""
    by_version: dict[int, list[Deployment]] = {}
    for deployment in _live(_successful().filter(version__prompt=prompt)):
        by_version.setdefault(deployment.version_id, []).append(deployment)
    return by_version


def live_deployments_by_prompt(workspace: Workspace) -> dict[int, list[Deployment]]:
    """Prompt id -> the deployments of its versions that still serve requests, newest first."""
    by_prompt: dict[int, list[Deployment]] = {}
    for deployment in _live(_successful().filter(version__prompt__workspace=workspace)):
        by_prompt.setdefault(deployment.version.prompt_id, []).append(deployment)
    return by_prompt
