"""Which versions of a prompt are deployed now, read from the deployments recorded here."""

from __future__ import annotations

import json

from prompts_app.models import Deployment, Prompt


def conditions_key(conditions: list[dict[str, str]]) -> str:
    rows = sorted((str(c.get("variable", "")), str(c.get("operator", "")), str(c.get("value", ""))) for c in conditions)
    return json.dumps(rows)


def live_deployments(prompt: Prompt) -> dict[int, list[Deployment]]:
    """Version id -> its deployments that still serve requests.

    Maxim serves one version per set of deployment conditions, so a later successful deploy with
    the same conditions replaces an earlier one; failed deploys never served anything.
    """
    seen: set[str] = set()
    live: dict[int, list[Deployment]] = {}
    for deployment in Deployment.objects.filter(version__prompt=prompt, error="").order_by("-created_at", "-pk"):
        key = conditions_key(deployment.conditions)
        if key not in seen:
            seen.add(key)
            live.setdefault(deployment.version_id, []).append(deployment)
    return live
