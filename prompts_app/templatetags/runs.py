"""Template helpers for the run form and run pages (`{% load runs %}`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import template

from prompts_app import pricing, rendering
from prompts_app.forms.runs import RunForm
from prompts_app.models import Membership, PromptVersion, Role, Run

register = template.Library()


@register.filter
def pretty_json(value: Any) -> str:
    return rendering.pretty_json(value)


# Money is shown by pricing.format_usd / format_rate only; these filters are their names in templates.
@register.filter
def usd(nano: int | None) -> str:
    return pricing.format_usd(nano)


@register.filter
def thousands(value: Any) -> Any:
    """An integer count with thousands separators, as humanize's intcomma writes it in English
    ("1,234,567"), without its locale machinery: the cost review's ~100 counts through intcomma
    were a tenth of the page's CPU (bench/bench_history.py, costs_30d). Anything else unchanged."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return value


@register.filter
def rate(usd: Decimal | None) -> str:
    return pricing.format_rate(usd)


@register.filter
def has_usage(run: Run) -> bool:
    """Whether Maxim reported token usage. Failed runs report none; a real run always
    counts some prompt tokens, so all zeros means "no usage came back", not zero usage."""
    return bool(run.prompt_tokens or run.completion_tokens or run.total_tokens)


@register.simple_tag
def run_output(run: Run) -> rendering.OutputView:
    return rendering.output_view(output=run.output, text=run.output_text, tool_calls=run.tool_calls)


@register.simple_tag
def new_run_form(version: PromptVersion) -> RunForm:
    """A blank form for pages that include the run panel with only `version` in context."""
    return RunForm.blank(version)


@register.simple_tag(takes_context=True)
def can_run(context: template.Context, version: PromptVersion) -> bool:
    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return False
    # The access helper already looked the membership up for this request.
    membership = getattr(request, "membership", None)
    if membership is None or membership.workspace_id != version.prompt.workspace_id:
        membership = Membership.objects.filter(workspace_id=version.prompt.workspace_id, user=request.user).first()
    return bool(membership and membership.allows(Role.EDITOR))


@register.filter
def unpriced_reason(source: str) -> str:
    reason = (source or "").removeprefix("unpriced: ")
    return reason or "no price is known for this model; add a custom price for it"
