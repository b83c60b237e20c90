"""How the history table shows a run (`{% load history %}`).

The table's rows are formatted and written here, in plain Python: with a template filter
per cell (intcomma, floatformat, date, url) the 50 rows cost ~70% of the page's time, and
even with the cells formatted here, looking up ~20 variables and tags per row in a template
loop still cost ~10 ms of the page's 50 ms budget at a million runs (bench/bench_history.py).
Every text is escaped, as the template would have.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from html import escape

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from prompts_app.models import Run
from prompts_app.pricing import format_usd, usd_text
from prompts_app.selectors.history import RunRow

register = template.Library()
STATUS_LABELS = dict(Run.Status.choices)
_PK = 2_147_483_647  # stands in for the id while the URL is reversed once per page
BATCH_SHOWN = 28  # characters of a batch's name in its label; the whole name is its title
_DASH = mark_safe('<span class="muted">—</span>')
_DRAFT = mark_safe(' <span class="badge draft">draft</span>')
_NO_USAGE = mark_safe('<td class="num"><span class="muted" title="No usage reported">—</span></td>')
_ROW = """<tr>
  <td class="nowrap"><a href="{url}">{when}</a></td>
  <td><span class="badge {status}">{status_label}</span>{draft}{batch}</td>
  <td><span class="clip" title="{workspace}">{workspace}</span></td>
  <td><a class="clip" href="{prompt_url}" title="{prompt}">{prompt}</a> · {version}</td>
  <td><span class="muted small">{provider}</span> <span class="clip" title="{model}">{model}</span></td>
  {tokens_cell}
  <td class="num"{cost_title}>{cost}</td>
  <td class="num">{latency}</td>
  <td><span class="clip" title="{user}">{user_shown}</span></td>
</tr>
"""


def _url_format(name: str) -> str:
    return reverse(name, args=[_PK]).replace(str(_PK), "{}")


@register.filter
def short_name(name: str, size: int = BATCH_SHOWN) -> str:
    """`name`, cut to `size` characters with an ellipsis when longer."""
    return name if len(name) <= size else name[: size - 1].rstrip() + "…"


def _batch_label(e: dict) -> str:
    """The run's batch, named: a link to the history of that batch's runs only (the batch's page
    is linked from there). Its accessible name and title carry the whole name."""
    return (
        f' <a class="badge batch" href="{e["batch_url"]}" title="Batch: {e["batch_name"]}"'
        f' aria-label="Batch {e["batch_name"]}: show only its runs"><bdi>{e["batch_short"]}</bdi></a>'
    )


def thousands(value: int | Decimal) -> str:
    """1,234,567: what humanize's intcomma shows for an integer under en-us."""
    return f"{value:,}"


def whole_ms(latency_ms: float) -> str:
    """'1,235': floatformat:0 (half up, on the decimal text of the float) then intcomma."""
    return thousands(Decimal(str(latency_ms)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@register.filter
def exact_usd(nano: int | None) -> str:
    """$0.0002025: every digit of a stored cost, for a title beside its rounded text (rows
    rounded to 3 digits need not add up to their rounded total)."""
    if nano is None:
        return "unpriced"
    whole, _, frac = usd_text(nano).partition(".")
    return f"${whole}.{frac.rstrip('0').ljust(2, '0')}"


@register.filter
def history_rows(runs: list[RunRow], filters: str = "") -> list[dict]:
    """One dict of display text per run (dict lookups are the cheapest a template does).
    `filters`: the page's other filters as a query string, kept by a run's batch link (which
    dropped them: new-user trial of #12)."""
    run_url, prompt_url = _url_format("run_detail"), _url_format("prompt_detail")
    batch_url = reverse("run_history") + "?" + (f"{filters}&" if filters else "") + "batch={}"
    rows = []
    for run in runs:
        no_usage = run.status != Run.Status.SUCCESS and not run.total_tokens
        rows.append(
            {
                "url": run_url.format(run.pk),
                "when": timezone.localtime(run.created_at).strftime("%Y-%m-%d %H:%M:%S"),
                "status": run.status,
                "status_label": STATUS_LABELS.get(run.status, run.status),
                "is_draft": run.is_draft,
                "workspace": run.workspace_name,
                "prompt": run.prompt_name,
                "prompt_url": prompt_url.format(run.prompt_id),
                # A draft is no version: one begun blank is stored against the prompt's newest.
                "version": "unsaved draft" if run.is_draft else f"v{run.version_number or run.version_maxim_id}",
                "provider": run.provider,
                "model": run.model_name,
                "tokens": None if no_usage else thousands(run.total_tokens),
                "tokens_title": f"{thousands(run.prompt_tokens)} in, {thousands(run.completion_tokens)} out",
                "cost": format_usd(run.cost_nano) if run.status == Run.Status.SUCCESS else None,
                "cost_nano": run.cost_nano,
                "latency": None if run.latency_ms is None else f"{whole_ms(run.latency_ms)} ms",
                "user": run.username or "",
                "batch_url": batch_url.format(run.batch_comparison_id) if run.batch_comparison_id else "",
                "batch_name": run.batch_name,
                "batch_short": short_name(run.batch_name),
            }
        )
    return rows


@register.simple_tag
def history_tbody(runs: list[RunRow], filters: str = "") -> SafeString:
    """The table's <tr> rows for `runs` (the markup the template loop wrote before); `filters` as
    for history_rows.

    Every text is escaped with the standard library's html.escape (what Django's escape
    calls, without its lazy-string wrapper, which cost more than the escaping)."""
    html = []
    for row in history_rows(runs, filters):
        e = {name: escape(str(value)) for name, value in row.items() if value is not None}
        html.append(
            _ROW.format_map(
                {
                    **e,
                    "draft": _DRAFT if row["is_draft"] else "",
                    "batch": _batch_label(e) if row["batch_url"] else "",
                    "tokens_cell": _NO_USAGE
                    if row["tokens"] is None
                    else f'<td class="num" title="{e["tokens_title"]}">{e["tokens"]}</td>',
                    "cost": _DASH if row["cost"] is None else e["cost"],
                    "cost_title": f' title="{exact_usd(row["cost_nano"])} exactly"' if row["cost"] is not None else "",
                    "latency": _DASH if row["latency"] is None else e["latency"],
                    "user_shown": e["user"] or "—",
                }
            )
        )
    return mark_safe("".join(html))  # every text in it went through escape()
