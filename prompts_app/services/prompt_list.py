"""The prompt list of a workspace: search by name, version counts and the deployed versions."""

from __future__ import annotations

from django.db.models import Count

from prompts_app.models import Prompt, Workspace
from prompts_app.services.deployments import live_deployments_by_prompt

QUERY_MAX = 200  # a search longer than any sensible name is cut, not refused
QUERY_WORDS = 8


def clean_query(raw: str) -> str:
    # NUL cannot be stored or compared in PostgreSQL text (a 500 there); it is never part of a name.
    return raw.replace("\x00", "").strip()[:QUERY_MAX]


def search_prompts(workspace: Workspace, query: str) -> list[Prompt]:
    """Prompts whose name holds every word of `query` (any order, any case), by name, each with
    `version_count` and `live_deployments` (the deployments of its versions that serve requests)."""
    # Meta.ordering does not apply to a grouped query: order by name here.
    prompts = workspace.prompts.annotate(version_count=Count("versions")).order_by("name", "pk")
    for word in query.split()[:QUERY_WORDS]:
        prompts = prompts.filter(name__icontains=word)
    live = live_deployments_by_prompt(workspace)
    found = list(prompts)
    for prompt in found:
        prompt.live_deployments = live.get(prompt.pk, [])
    return found
