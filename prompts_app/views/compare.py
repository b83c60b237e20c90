"""Compare versions side by side: choose columns, run them all at once, see what differs."""

from __future__ import annotations

import re
import secrets
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from prompts_app import pricing
from prompts_app.forms.compare import CompareForm, RunAgainForm
from prompts_app.models import Comparison, ComparisonColumn, Draft, Membership, PromptVersion, Role, Run
from prompts_app.plain_int import plain_int
from prompts_app.selectors.compare import batch_runs, by_column, still_pending
from prompts_app.services import compare as services
from prompts_app.services import compare_report as report
from prompts_app.views.access import (
    get_comparison_for_user,
    get_version_for_user,
    get_workspace_for_user,
    user_workspaces,
)

# A run id as a page may send it: ASCII digits that fit a database integer.
_TOKEN = re.compile(r"[0-9a-f]{8}")  # a diff section's token (_diff_context)


@login_required
@require_GET
def comparison_list(request: HttpRequest) -> HttpResponse:
    workspaces = user_workspaces(request.user)
    comparisons = (
        Comparison.objects.filter(workspace__in=workspaces)
        .select_related("workspace", "created_by")
        .prefetch_related("columns__version__prompt")[:200]
    )
    editable = Membership.objects.filter(user=request.user, role__in=[Role.OWNER, Role.EDITOR])
    context = {"comparisons": comparisons, "editable": editable.select_related("workspace"), "nav": "compare"}
    return render(request, "prompts_app/compare/list.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def comparison_new(request: HttpRequest) -> HttpResponse:
    workspace = _workspace_from_query(request)
    if workspace is None:
        return redirect("comparison_list")
    if request.method == "GET" and "columns" in request.GET:
        # Links from a prompt or version page pick their columns; the input starts shared.
        picked = request.GET.copy()
        picked.setdefault("shared_input", "on")
        form = CompareForm(picked, workspace=workspace, user=request.user, refresh=True)
    elif request.POST.get("action", "run") != "run":
        # "+ Add turn" or "Remove" without JavaScript: the page again, everything typed kept.
        action = request.POST["action"]
        form = CompareForm(request.POST, workspace=workspace, user=request.user, refresh=True, action=action)
    else:
        form = CompareForm(request.POST or None, workspace=workspace, user=request.user)
    if request.method == "POST":
        _check_posted_columns(request)
        if form.is_valid():
            comparison, created = services.create_comparison(
                workspace=workspace,
                user=request.user,
                columns=form.cleaned_data["column_specs"],
                shared_input=form.shared,
                input=form.cleaned_data["input"],
                title=form.cleaned_data["title"],
                submit_token=form.cleaned_data["submit_token"],
            )
            if created:
                services.run_comparison(comparison, user=request.user, repeats=form.cleaned_data["repeats"])
            return redirect("comparison_detail", comparison.pk)
    context = {"form": form, "workspace": workspace, "nav": "compare"}
    return render(request, "prompts_app/compare/new.html", context)


@login_required
@require_POST
def comparison_inputs(request: HttpRequest) -> HttpResponse:
    """The input fields for the columns ticked so far (htmx, as columns are picked and turns
    added or removed)."""
    workspace = _workspace_from_query(request)
    if workspace is None:
        raise Http404("No workspace")
    action = request.POST.get("action", "")
    form = CompareForm(request.POST, workspace=workspace, user=request.user, refresh=True, action=action)
    # A turn added or removed redraws only its own input: the others may be being typed in.
    prefix = action.partition(":")[0]
    group = next((g for g in form.input_groups() if action and g.prefix == prefix), None)
    if group is not None:
        return render(request, "prompts_app/compare/new.html#input-group", {"group": group, "workspace": workspace})
    return render(request, "prompts_app/compare/new.html#inputs", {"form": form, "workspace": workspace})


@login_required
@require_POST
def comparison_columns(request: HttpRequest) -> HttpResponse:
    """The chosen columns after one is added, moved or removed (htmx). Only this list is redrawn
    (and a new column's own input added), so nothing being typed in the inputs is touched."""
    workspace = _workspace_from_query(request)
    if workspace is None:
        raise Http404("No workspace")
    _check_posted_columns(request)
    action = request.POST.get("action", "")
    form = CompareForm(request.POST, workspace=workspace, user=request.user, refresh=True, action=action)
    response = render(
        request, "prompts_app/compare/new.html#columns", {"form": form, "workspace": workspace, "oob": True}
    )
    # The chosen columns, in order, in the address: a reload or a shared link opens the same choice.
    query = urlencode([("workspace", workspace.pk), *(("columns", key) for _uid, key in form.rows)])
    response["HX-Replace-Url"] = f"{reverse('comparison_new')}?{query}"
    return response


@login_required
@require_GET
def comparison_detail(request: HttpRequest, comparison_id: int) -> HttpResponse:
    comparison = get_comparison_for_user(request, comparison_id)
    columns = columns_of(comparison)
    runs = batch_runs(comparison)  # one snapshot of the batch for the columns and the diffs
    grouped = by_column(runs)
    context = {
        "comparison": comparison,
        "columns": [_column_context(comparison, c, grouped.get(c.pk, [])) for c in columns],
        "can_run": request.membership.allows(Role.EDITOR),
        **_config_context(columns, request.GET.get("highlight") != "0"),
        **_diff_context(comparison, columns, request.GET.get("baseline"), runs),
        "nav": "compare",
    }
    context["watch"] = watch_context(comparison, still_pending(runs), _diff_state(context))
    context["run_form"] = RunAgainForm(
        initial={"repeats": comparison.repeats, "batch": comparison.batch + 1, "baseline": context["baseline_number"]}
    )
    return render(request, "prompts_app/compare/detail.html", context)


@login_required
@require_GET
def comparison_column(request: HttpRequest, comparison_id: int, column_id: int) -> HttpResponse:
    """One column's card; polled by the page until its runs are done."""
    comparison = get_comparison_for_user(request, comparison_id)
    column = get_object_or_404(comparison.columns.select_related("version__prompt"), pk=column_id)
    batch = plain_int(request.GET.get("batch"))
    runs = batch_runs(comparison, batch=batch, column=column)
    context = {"comparison": comparison, "col": _column_context(comparison, column, runs, batch)}
    return render(request, "prompts_app/compare/detail.html#column", context)


@login_required
@require_GET
def comparison_config(request: HttpRequest, comparison_id: int) -> HttpResponse:
    comparison = get_comparison_for_user(request, comparison_id)
    context = {"comparison": comparison, **_config_context(columns_of(comparison), request.GET.get("highlight") != "0")}
    return render(request, "prompts_app/compare/detail.html#config", context)


@login_required
@require_GET
def comparison_diff(request: HttpRequest, comparison_id: int) -> HttpResponse:
    comparison = get_comparison_for_user(request, comparison_id)
    baseline = request.GET.get("baseline")
    runs = batch_runs(comparison)
    context = {"comparison": comparison, **_diff_context(comparison, columns_of(comparison), baseline, runs)}
    # A new watch for this section: the one in flight answers for the section this one replaces.
    context["watch"] = watch_context(comparison, still_pending(runs), _diff_state(context))
    # The "Run again" form keeps the baseline just picked (swapped in out of band).
    context["oob_baseline"] = request.membership.allows(Role.EDITOR)
    return render(request, "prompts_app/compare/detail.html#diff", context)


@login_required
@require_POST
def comparison_run_again(request: HttpRequest, comparison_id: int) -> HttpResponse:
    comparison = get_comparison_for_user(request, comparison_id, role=Role.EDITOR)
    form = RunAgainForm(request.POST)
    if form.is_valid():
        services.run_comparison(
            comparison, user=request.user, repeats=form.cleaned_data["repeats"], batch=form.cleaned_data["batch"]
        )
    # An invalid count can only come from a hand-made post; the page shows the last batch.
    baseline = form.cleaned_data.get("baseline") if form.is_valid() else None
    url = reverse("comparison_detail", args=[comparison.pk])
    return redirect(f"{url}?baseline={baseline}" if baseline else url)


@login_required
@require_GET
def comparison_export(request: HttpRequest, comparison_id: int) -> HttpResponse:
    comparison = get_comparison_for_user(request, comparison_id)
    response = HttpResponse(report.export_markdown(comparison), content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="comparison-{comparison.pk}.md"'
    return response


# -- helpers -------------------------------------------------------------------------------------


def _workspace_from_query(request: HttpRequest):
    workspace_id = plain_int(request.GET.get("workspace"))
    if workspace_id is not None:
        return get_workspace_for_user(request, workspace_id, role=Role.EDITOR)
    editable = Membership.objects.filter(user=request.user, role__in=[Role.OWNER, Role.EDITOR])
    if editable.count() == 1:
        return editable.get().workspace
    return None  # several (or none): the list page lets the user pick


def _check_posted_columns(request: HttpRequest) -> None:
    """A version or draft the user cannot see is a 404, like opening it directly would be. The
    versions are looked up in one query (one each was 40% of the view's time under load); one
    not among the user's goes through the access helper, which answers 404."""
    keys = request.POST.getlist("columns")
    ids = {pk for key in keys if key[:1] == "v" and (pk := plain_int(key[1:])) is not None}
    seen = PromptVersion.objects.filter(pk__in=ids, prompt__workspace__in=user_workspaces(request.user))
    visible = set(seen.values_list("pk", flat=True))
    for key in keys:
        kind, number = key[:1], plain_int(key[1:])
        if number is None:
            continue  # the form reports it as not a choice
        if kind == "v" and number not in visible:
            get_version_for_user(request, number)
        elif kind == "d":
            get_object_or_404(Draft, pk=number, user=request.user)


def columns_of(comparison: Comparison) -> list[ComparisonColumn]:
    return list(comparison.columns.select_related("version__prompt"))


def _column_context(
    comparison: Comparison, column: ComparisonColumn, runs: list[Run], batch: int | None = None
) -> dict[str, Any]:
    """One column's card from its runs of the batch (loaded once per request: batch_runs)."""
    pending = still_pending(runs)
    for run in runs:
        run.cost_display = pricing.format_usd(run.cost_nano)
    stats = report.column_stats(runs)
    label = report.column_label(column)
    return {
        "column": column,
        "label": label,
        "name": _column_name(column, label),
        "content": report.column_content(column),
        "runs": runs,
        "batch": comparison.batch if batch is None else batch,
        "pending": bool(pending),
        "pending_runs": pending,
        "stats": stats,
        "cost_per_run": stats.cost_text(stats.cost_per_run_nano),
        "cost_per_1000": stats.cost_text(stats.cost_per_1000_nano),
        "input": services.column_input(comparison, column),
    }


def changes_context(
    comparison: Comparison,
    changed: set[int],
    batch: int | None,
    shown: QueryDict,
    columns: list[ComparisonColumn] | None = None,
) -> dict[str, Any]:
    """A watch answer's columns that got a result, and what the diff section shown with the
    token `shown["token"]` needs to catch up: their rows, or its whole body (_diff_context).
    `columns`: the comparison's, when the caller keeps them (a stream draws many answers)."""
    runs = batch_runs(comparison, batch=batch, shown_only=True)
    grouped = by_column(runs)
    columns = columns_of(comparison) if columns is None else columns
    token = shown.get("token", "")
    diff = _diff_context(
        comparison,
        columns,
        shown.get("baseline"),
        runs,
        token=token if _TOKEN.fullmatch(token) else None,
        changed=changed,
        shown=plain_int(shown.get("shown")),
    )
    cards = [_column_context(comparison, c, grouped.get(c.pk, []), batch) for c in columns if c.pk in changed]
    return {**diff, "changed_columns": cards, "diff_state": _diff_state(diff)}


def _diff_state(diff: dict[str, Any]) -> dict[str, Any]:
    """The diff section a watch answers for: its token, and its baseline as picked and as shown."""
    return {
        "baseline": diff["baseline_number"] or "",
        "shown": diff["baseline"].pk if diff["baseline"] else "",
        "token": diff["diff_token"],
    }


def shown_diff(query: QueryDict) -> dict[str, Any]:
    """The diff section's state as the watch carried it, for a watch answer that redraws nothing."""
    state = {name: query.get(name, "") for name in ("baseline", "shown", "token")}
    valid = plain_int(state["shown"]) is not None and _TOKEN.fullmatch(state["token"])
    valid = valid and (not state["baseline"] or plain_int(state["baseline"]) is not None)
    return {"diff_state": state if valid else {}}


def watch_context(
    comparison: Comparison,
    pending: list[Run] | list[int],
    diff_state: dict[str, Any],
    *,
    batch: int | None = None,
) -> dict[str, Any]:
    """What the page's watcher asks for next: the diff section it answers for (_diff_state) and
    the runs the page still shows as pending (last in the address)."""
    if not pending:
        return {"url": ""}
    ids = ",".join(str(run.pk if isinstance(run, Run) else run) for run in pending)
    query = {"batch": comparison.batch if batch is None else batch, **diff_state, "pending": ids}
    url = reverse("comparison_watch", args=[comparison.pk])
    return {"url": f"{url}?{urlencode(query, safe=',')}"}


def _config_context(columns: list[ComparisonColumn], highlight: bool) -> dict[str, Any]:
    rows = report.config_rows(columns)
    labels = [report.column_label(c) for c in columns]
    return {
        "config_rows": rows,
        "config_labels": labels,
        "highlight": highlight,
        "differences": sum(1 for r in rows if r.different),
    }


def _column_name(column: ComparisonColumn, label: str) -> str:
    """The column's accessible name: "Column 2: Support reply v3 (gpt-4o)"."""
    model = report.column_content(column).get("model_name") or "no model"
    return f"Column {column.position + 1}: {label} ({model})"


def _diff_context(
    comparison: Comparison,
    columns: list[ComparisonColumn],
    baseline_param: str | None,
    runs: list[Run],
    *,
    token: str | None = None,
    changed: set[int] | None = None,
    shown: int | None = None,
) -> dict[str, Any]:
    """The diff section against the baseline picked (a column number) or the default one. For a
    watch answer (`changed`: the columns that got a result, `shown`: the baseline the section
    shows), `diff_oob` says what to swap: only the changed columns' rows, or the whole body when
    every row moved (the baseline's own result, a default baseline that moved on, the last run in)."""
    # One snapshot of the batch, and "pending" read from it: a run that finishes while the
    # diffs are built is still pending here, so the watch asks once more instead of leaving
    # the section on "No finished run yet".
    pending = bool(still_pending(runs))
    number = plain_int(baseline_param)  # the column's 1-based number, as in "?baseline=2"
    chosen = columns[number - 1] if number is not None and 0 < number <= len(columns) else None
    baseline = chosen or report.default_baseline(comparison, columns, runs)
    whole = changed is None or baseline is None or baseline.pk in changed or baseline.pk != shown or not pending
    diffed = columns if whole else [c for c in columns if c.pk in changed]
    diffs = report.output_diffs(comparison, diffed, baseline, runs) if baseline else []
    for d in diffs:
        d.cost_display = _signed_usd(d.cost_delta_nano)
        d.label = report.column_label(d.column)
        d.name = _column_name(d.column, d.label)
    return {
        "baseline": baseline,
        "baseline_number": number if chosen else None,
        "baseline_label": report.column_label(baseline) if baseline else "",
        "baseline_name": _column_name(baseline, report.column_label(baseline)) if baseline else "",
        "baseline_choices": [(n, c, report.column_label(c)) for n, c in enumerate(columns, 1)],
        "diffs": diffs,
        "diff_pending": pending,
        # Names this drawing of the section: its rows' ids carry it, so the answer of a watch
        # started for a section since replaced (another baseline picked) overwrites nothing.
        "diff_token": token or secrets.token_hex(4),
        "diff_oob": None if changed is None or token is None else ("body" if whole else "rows"),
    }


def _signed_usd(nano: int | None) -> str:
    if nano is None:
        return "unpriced"
    return ("+" if nano > 0 else "") + pricing.format_usd(nano) if nano else "±$0.00"


urlpatterns = [
    path("compare/", comparison_list, name="comparison_list"),
    path("compare/new/", comparison_new, name="comparison_new"),
    path("compare/new/inputs/", comparison_inputs, name="comparison_inputs"),
    path("compare/new/columns/", comparison_columns, name="comparison_columns"),
    path("compare/<int:comparison_id>/", comparison_detail, name="comparison_detail"),
    path("compare/<int:comparison_id>/columns/<int:column_id>/", comparison_column, name="comparison_column"),
    path("compare/<int:comparison_id>/config/", comparison_config, name="comparison_config"),
    path("compare/<int:comparison_id>/diff/", comparison_diff, name="comparison_diff"),
    path("compare/<int:comparison_id>/run/", comparison_run_again, name="comparison_run_again"),
    path("compare/<int:comparison_id>/export.md", comparison_export, name="comparison_export"),
]
