"""Run history with totals, its CSV/JSON export, and the cost review.

Access: every view starts from `scope_for_user`, the user's own workspaces; a workspace
id from another workspace is an invalid filter value (message, no runs), never a leak.
"""

from __future__ import annotations

from dataclasses import asdict
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

from prompts_app import charts
from prompts_app.forms.history import CostReviewForm, HistoryFilterForm
from prompts_app.selectors import costs, export, history
from prompts_app.selectors.history import scope_for_user
from prompts_app.services import audit
from prompts_app.services.runs import shown_as_settled
from prompts_app.streaming import download

PAGE = "prompts_app/runs/history.html"
TABLE = PAGE + "#history-table"
TOTALS = PAGE + "#history-totals"
PROGRESS_SALT = "history-totals-so-far"
PROGRESS_MAX_AGE = 600  # seconds: a step follows the last one at once; an old page starts again


@login_required
@require_GET
def run_history(request: HttpRequest) -> HttpResponse:
    scope = scope_for_user(request.user)
    form = HistoryFilterForm(request.GET, scope=scope)
    context = {"form": form, "nav": "history", "model_names": scope.model_names, **_results(form)}
    # Back/Forward asks for the whole page (htmx keeps no snapshots), so the filters match the results.
    partial = request.htmx and not request.htmx.history_restore_request
    return render(request, TABLE if partial else PAGE, context)


def _results(form: HistoryFilterForm) -> dict:
    if not form.is_valid():
        return {}
    run_filter = form.run_filter()
    page = history.page(run_filter, older_than=form.cleaned_data["before"], newer_than=form.cleaned_data["after"])
    for run in page.runs:  # a stale run shows as settled; the runner's sweep writes it, never a page
        shown_as_settled(run)
    # Totals of a text search sum every matching run (a common word: a third of them), so
    # they come in a second request and the rows show at once.
    totals = None if run_filter.q else history.totals(run_filter)
    return {"page": page, "totals": totals, "querystring": form.querystring()}


@login_required
@require_GET
def run_history_totals(request: HttpRequest) -> HttpResponse:
    scope = scope_for_user(request.user)
    form = HistoryFilterForm(request.GET, scope=scope)
    context = {"form": form, "nav": "history"}
    if form.is_valid():
        # A text search's totals may come in steps (history.totals_step): each answer shows the
        # exact totals so far and asks for the next step with them, signed, in `so_far`.
        querystring, run_filter = form.querystring(), form.run_filter()
        # Bound to the workspaces the user may read now too: sums carried from before a removal
        # from a workspace are dropped, not shown.
        bound_to = f"{request.user.pk}:{sorted(run_filter.workspace_ids)}:{querystring}"
        so_far = _progress_from(request.GET.get("so_far", ""), bound_to)
        progress = history.totals_step(run_filter, so_far, budget=history.TOTALS_BUDGET)
        so_far = _signed_progress(progress, bound_to) if progress.below else ""
        context.update(totals=progress.totals, so_far=so_far, querystring=querystring)
    return render(request, TOTALS if request.htmx else "prompts_app/runs/history_totals.html", context)


def _signed_progress(progress: history.Progress, bound_to: str) -> str:
    state = [bound_to, progress.below, progress.span, asdict(progress.totals)]
    return signing.dumps(state, salt=PROGRESS_SALT, compress=True)


def _progress_from(signed: str, bound_to: str) -> history.Progress | None:
    """The totals so far, if `signed` is ours, recent, and for this user and these filters;
    otherwise None, and the totals start again (a step is never added to another search's sums)."""
    try:
        owner, below, span, sums = signing.loads(signed, salt=PROGRESS_SALT, max_age=PROGRESS_MAX_AGE)
    except (signing.BadSignature, TypeError, ValueError):
        return None
    if owner != bound_to or not isinstance(below, int) or below <= 0 or not isinstance(span, int):
        return None
    return history.Progress(costs.Totals(**sums), below, span)


@login_required
@require_GET
def run_export(request: HttpRequest, fmt: str) -> HttpResponse:
    scope = scope_for_user(request.user)
    form = HistoryFilterForm(request.GET, scope=scope)
    if not form.is_valid():
        problems = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())
        return HttpResponse(f"Cannot export: {problems}", status=400, content_type="text/plain")
    rows = export.export_rows(form.run_filter())
    lines = export.csv_lines(rows) if fmt == "csv" else export.json_lines(rows)
    content_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    return download(
        request.user.pk,
        lines,
        content_type=content_type,
        filename=f"maximui-runs.{fmt}",
        on_start=lambda: audit.record_export(
            request.user, form.run_filter().workspace_ids, fmt=fmt, filters=form.querystring()
        ),
    )


@login_required
@require_GET
def cost_review(request: HttpRequest) -> HttpResponse:
    scope = scope_for_user(request.user)
    form = CostReviewForm(request.GET, scope=scope)
    context = {"form": form, "nav": "costs"}
    if form.is_valid():
        data = form.cleaned_data
        review = costs.cost_review(workspace_ids=form.workspace_ids(), start=data["start"], end=data["end"])
        points = [charts.DayPoint(day, t.cost_nano, t.total_tokens, t.runs, t.unpriced_runs) for day, t in review.days]
        context.update(review=review, chart=charts.cost_tokens_chart(points), **_cost_tables(review, scope))
    return render(request, "prompts_app/runs/costs.html", context)


def _cost_tables(review: costs.CostReview, scope: history.Scope) -> dict:
    """Rows of (label, history filter for the row, totals) for the per-prompt/version/model tables."""
    names = {p.pk: p.name for p in scope.prompts}
    versions = scope.version_by_id
    period = f"date_from={review.start.isoformat()}&date_to={review.end.isoformat()}"

    def version_label(pk: int) -> str:
        version = versions.get(pk)
        return f"{version.prompt.name} v{version.number or version.maxim_id}" if version else f"version #{pk}"

    version_rows = [(version_label(pk), f"version={pk}&draft=no&{period}", t) for pk, t in review.by_version]
    draft_rows = [
        # The name between isolate marks: a right-to-left override in it must not turn the rest around.
        (f"\u2068{names.get(pk, f'prompt #{pk}')}\u2069 · unsaved drafts", f"prompt={pk}&draft=yes&{period}", t)
        for pk, t in review.by_draft
    ]
    return {
        "prompt_rows": [(names.get(pk, f"prompt #{pk}"), f"prompt={pk}&{period}", t) for pk, t in review.by_prompt],
        "version_rows": sorted(version_rows + draft_rows, key=lambda row: (-row[2].cost_nano, -row[2].runs)),
        "model_rows": [
            (f"{provider} / {model or '(none)'}", urlencode({"provider": provider, "model": model}) + "&" + period, t)
            for (provider, model), t in review.by_model
        ],
    }


urlpatterns = [
    path("runs/", run_history, name="run_history"),
    path("runs/totals/", run_history_totals, name="run_history_totals"),
    path("runs/export.csv", run_export, {"fmt": "csv"}, name="run_export_csv"),
    path("runs/export.json", run_export, {"fmt": "json"}, name="run_export_json"),
    path("costs/", cost_review, name="cost_review"),
]
