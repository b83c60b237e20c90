"""Batch comparisons: start one, watch its progress, pause / resume / cancel, read and export the matrix."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from prompts_app.batch_chart import cost_pass_chart, not_drawn
from prompts_app.batch_export import EXPORTERS
from prompts_app.checks import CheckConfigError
from prompts_app.diffing import word_diff  # the comparison page's word diff, shared
from prompts_app.forms.batches import BatchForm, BudgetForm
from prompts_app.models import BatchComparison, Membership, Role
from prompts_app.selectors import batch_changes as changes_read
from prompts_app.selectors import batch_watch as batch_watch_read
from prompts_app.selectors import batches as read
from prompts_app.selectors.batch_watch import Shown
from prompts_app.services import batch_liveness, run_watch
from prompts_app.services import batches as services
from prompts_app.streaming import download
from prompts_app.views.access import get_workspace_for_user, membership_for

PAGE = "prompts_app/batches/page.html"
NEW = "prompts_app/batches/new.html"


def _get_batch_for_user(request: HttpRequest, batch_id: int, role: str = Role.VIEWER) -> BatchComparison:
    batch = get_object_or_404(BatchComparison.objects.select_related("workspace", "test_set"), pk=batch_id)
    request.membership = membership_for(request, batch.workspace, role)
    return batch


@login_required
@require_GET
def batch_index(request: HttpRequest) -> HttpResponse:
    memberships = Membership.objects.filter(user=request.user).select_related("workspace__batch_settings")
    batches = read.batch_list(request.user)
    forms = {m.workspace_id: BudgetForm(initial={"soft_budget_usd": _budget_usd(m.workspace)}) for m in memberships}
    rows = [(m, forms[m.workspace_id]) for m in memberships.order_by("workspace__name")]
    return render(request, PAGE, {"memberships": rows, "batches": batches, "nav": "batches", "view": "index"})


def _budget_usd(workspace):
    found = getattr(workspace, "batch_settings", None)
    return None if found is None or found.soft_budget_nano is None else found.soft_budget_nano / 10**9


@login_required
@require_POST
def batch_budget(request: HttpRequest, workspace_id: int) -> HttpResponse:
    workspace = get_workspace_for_user(request, workspace_id, Role.OWNER)
    form = BudgetForm(request.POST)
    if form.is_valid():
        services.set_soft_budget(workspace=workspace, budget_nano=form.budget_nano())
        messages.success(request, f"Soft budget saved for {workspace.name}.")
    else:
        messages.error(request, "The soft budget must be an amount in dollars, 0 or more.")
    return redirect("batch_index")


@login_required
@require_http_methods(["GET", "POST"])
def batch_new(request: HttpRequest, workspace_id: int) -> HttpResponse:
    workspace = get_workspace_for_user(request, workspace_id, Role.EDITOR)
    initial = {"test_set": request.GET.get("test_set")}
    form = BatchForm(request.POST or None, workspace=workspace, user=request.user, initial=initial)
    context = {"form": form, "workspace": workspace, "nav": "batches"}
    # "Change the batch" on the confirmation step: the form again, as it was filled in.
    if request.method == "POST" and request.POST.get("step") != "edit" and form.is_valid():
        try:
            return redirect("batch_detail", _start(workspace, form, request.user).pk)
        except services.NeedsConfirmation as exc:  # the second step: calls, cost, what cases lack
            context.update(preview=exc.preview, confirmation=exc.token, changed=exc.changed)
        except services.AlreadyStarted as exc:  # from another tab, most likely: open it or start again
            context.update(twin=exc.batch, twin_said=str(exc))
        except (services.BatchError, CheckConfigError) as exc:
            form.add_error(None, str(exc))
    if request.method == "POST" and not ("preview" in context or "twin" in context):
        context["estimate"] = _estimate(workspace, form)  # the form again: with the estimate of its choice
    return render(request, NEW, context)


def _estimate(workspace, form: BatchForm) -> services.Preview | None:
    """The calls and cost of what the form has chosen, or None until its columns, test set,
    case filter and repeats are valid (an error in another field does not hide it)."""
    counted = form.estimate_inputs()
    return None if counted is None else services.preview(workspace=workspace, **counted)


def _start(workspace, form: BatchForm, user) -> BatchComparison:
    data = form.cleaned_data
    return services.start_batch(
        workspace=workspace,
        test_set=data["test_set"],
        columns=data["columns"],
        user=user,
        repeats=data["repeats"],
        concurrency=data["concurrency"],
        checks=data["checks"],
        case_filter=data["case_filter"],
        title=data["title"],
        confirmation=data["confirmation"],
        submit_token=data["submit_token"],
        again=data["again"],
    )


@login_required
@require_GET
def batch_estimate(request: HttpRequest, workspace_id: int) -> HttpResponse:
    workspace = get_workspace_for_user(request, workspace_id, Role.EDITOR)
    form = BatchForm(request.GET, workspace=workspace, user=request.user)
    seen = _estimate(workspace, form)
    # Chosen columns can be judged now: their error (or none) replaces the one of an earlier submit.
    judged = any(request.GET.getlist("columns"))
    context = {"preview": seen, "form": form, "columns_judged": judged}
    return render(request, NEW + "#estimate", context)


def _page_context(request: HttpRequest, batch: BatchComparison) -> dict:
    columns = list(batch.columns.all())
    query = read.MatrixQuery.from_query(request.GET, len(columns))
    page, rows = read.matrix_page(batch, columns, query, page=request.GET.get("page"))
    others = request.GET.copy()
    others.pop("page", None)
    return {
        **_live_context(request, batch, columns),
        "workspace": batch.workspace,
        "page": page,
        "rows": rows,
        "filters": query,
        "baseline": columns[query.baseline - 1] if columns else None,
        **_cell_links(batch, query.baseline),
        "query": others.urlencode(),
        "metrics": read.METRICS,
        "nav": "batches",
    }


def _live_context(
    request: HttpRequest, batch: BatchComparison, columns: list | None = None, busy: bool = False, pushed: bool = False
) -> dict:
    """Progress, the summary and the chart, and what the page's held request watches next. What
    is watched is read before the figures: a cell stored in between is drawn twice, never missed."""
    columns = list(batch.columns.all()) if columns is None else columns
    running = batch.status == BatchComparison.Status.RUNNING
    watch = Shown.to_watch(batch)
    progress, summary = read.progress_and_summary(batch, columns, pushed=pushed)
    points = [(n, s.column.label, s.cost_per_1000_nano, s.pass_rate) for n, s in enumerate(summary, 1)]
    return {
        "batch": batch,
        "columns": columns,
        "progress": progress,
        "summary": summary,
        # Without checks no column has a pass rate: the page says so instead of drawing empty axes.
        "chart": cost_pass_chart(points) if batch.checks else None,
        "chart_left_out": not_drawn(points),
        "watch": watch,
        "retry_ms": run_watch.BUSY_RETRY_MS if busy else 0,
        "can_edit": request.membership.allows(Role.EDITOR),
        "failed_again": (failed_again := progress.failed_to_run_again(batch.status)),
        "interrupted_again": read.interrupted(batch) if failed_again else 0,
        "unsent_again": progress.unsent_to_send(batch.status),
        "unattended": batch_liveness.unattended(batch).seconds if running else None,
    }


@login_required
@require_GET
def batch_detail(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = _get_batch_for_user(request, batch_id)
    return render(request, PAGE + "#results" if request.htmx else PAGE, _page_context(request, batch))


@login_required
@require_GET
def batch_progress(request: HttpRequest, batch_id: int) -> HttpResponse:
    return _render_live(request, _get_batch_for_user(request, batch_id))


@login_required
@require_GET
def batch_watch(request: HttpRequest, batch_id: int) -> HttpResponse:
    """Held open until the page is out of date (a cell claimed or stored, the status changed) or a
    timeout passes, then the progress and, out of band, the summary, chart and the cells of the
    matrix rows the page shows (its filter, sort and page) that changed since."""
    batch = _get_batch_for_user(request, batch_id)
    changed = batch_watch_read.changed_since(batch, Shown.from_query(request.GET))
    # No worker sends it: answer when the page's warning is due, not after a whole hold. While one
    # does, hold no longer than that warning's delay: a worker killed during the hold is told about in
    # seconds, not after the rest of it (hostile trial of #12: 18 s on a page left open).
    timeout = None
    if batch.status == BatchComparison.Status.RUNNING:
        due_in = batch_liveness.unattended(batch).due_in
        notice = batch_liveness.NOBODY_SENDS_NOTICE.total_seconds()
        timeout = min(run_watch.HOLD_SECONDS, notice if due_in is None else due_in + 0.25)
    held = run_watch.hold(changed, user_id=request.user.pk, timeout=timeout)
    return _render_live(request, batch, busy=not held, rows=batch_watch_read.shown_rows(request.GET))


def _render_live(
    request: HttpRequest, batch: BatchComparison, busy: bool = False, rows: dict[int, str] | None = None
) -> HttpResponse:
    try:
        batch.refresh_from_db(fields=["status", "active_seconds", "resumed_at", "finished_at"])
    except BatchComparison.DoesNotExist:  # deleted while the page waited (its test set or workspace went)
        return render(request, PAGE + "#gone", {})
    context = _live_context(request, batch, busy=busy, pushed=rows is not None)
    context["swapped"] = True  # into a page drawn before: "Show the latest results" means something
    if rows:  # read after the figures: a cell stored in between is drawn now and counted next push
        columns = context["columns"]
        baseline = read.MatrixQuery.from_query(request.GET, len(columns)).baseline
        context.update(_cell_links(batch, baseline), baseline=columns[baseline - 1])
        context["live_cells"], context["live_rows"] = batch_watch_read.changed_cells(batch, columns, rows)
    return render(request, PAGE + "#live", context)


def _get_cell(request: HttpRequest, batch_id: int, cell_id: int):
    batch = _get_batch_for_user(request, batch_id)
    return batch, get_object_or_404(read.cells(batch).select_related("column", "case"), pk=cell_id)


def _cell_links(batch: BatchComparison, baseline: int) -> dict:
    """A cell's address is this prefix and its id: one reverse() a page, not one a cell."""
    return {
        "cells_url": reverse("batch_cell", args=[batch.pk, 0])[: -len("0/")],
        "baseline_query": f"baseline={baseline}",
    }


@login_required
@require_GET
def batch_cell(request: HttpRequest, batch_id: int, cell_id: int) -> HttpResponse:
    """One cell's output: its head, its whole text, or its word diff against the baseline column."""
    batch, cell = _get_cell(request, batch_id, cell_id)
    columns = list(batch.columns.all())
    baseline = columns[read.MatrixQuery.from_query(request.GET, len(columns)).baseline - 1]
    show = request.GET.get("show") if request.GET.get("show") in ("full", "diff") else "preview"
    read.label_cell(cell, cell.case.position, cell.column.position)
    context = {
        "batch": batch,
        "cell": cell,
        "show": show,
        "baseline": baseline,
        **_cell_links(batch, baseline.position),
    }
    if show == "full":
        context["full_output"] = read.cell_output(cell)
    elif show == "diff":
        other = read.baseline_cell(cell, baseline)
        context["diff"] = word_diff(read.cell_output(other) if other else "", read.cell_output(cell))
    context.update(nav="batches", view="cell", workspace=batch.workspace)
    return render(request, PAGE + "#cell-output" if request.htmx else PAGE, context)


@login_required
@require_GET
def batch_changes(request: HttpRequest, batch_id: int) -> HttpResponse:
    """Two batches of one test set: the cases that went from pass to fail, and back, per version."""
    batch = _get_batch_for_user(request, batch_id)
    others = list(changes_read.comparable_batches(batch))
    other = next((b for b in others if str(b.pk) == request.GET.get("against")), None)
    before, after = changes_read.in_order(batch, other) if other else (None, None)
    context = {"batch": batch, "others": others, "other": other, "before": before, "after": after}
    context.update(changes=changes_read.changes(before, after) if other else [], nav="batches", view="changes")
    return render(request, PAGE, context)


def _control(action):
    @login_required
    @require_POST
    def view(request: HttpRequest, batch_id: int) -> HttpResponse:
        batch = _get_batch_for_user(request, batch_id, Role.EDITOR)
        try:
            action(batch)
        except services.BatchError as exc:
            messages.error(request, str(exc))
        if request.htmx:
            return _render_live(request, batch)
        return redirect("batch_detail", batch.pk)

    view.__name__ = f"batch_{action.__name__}"
    return view


batch_pause, batch_resume, batch_cancel = (_control(a) for a in (services.pause, services.resume, services.cancel))
batch_run_failed_again = _control(services.run_failed_again)


@login_required
@require_GET
def batch_export(request: HttpRequest, batch_id: int, fmt: str) -> HttpResponse:
    batch = _get_batch_for_user(request, batch_id)
    content_type, render_rows = EXPORTERS[fmt]
    lines = render_rows(batch, read.export_rows(batch))
    return download(
        request.user.pk,
        lines,
        content_type=content_type,
        filename=f"batch-{batch.pk}.{fmt}",
        on_start=lambda: services.record_export(batch, user=request.user, fmt=fmt),
    )


urlpatterns = [
    path("batches/", batch_index, name="batch_index"),
    path("workspaces/<int:workspace_id>/batches/new/", batch_new, name="batch_new"),
    path("workspaces/<int:workspace_id>/batches/estimate/", batch_estimate, name="batch_estimate"),
    path("workspaces/<int:workspace_id>/batches/budget/", batch_budget, name="batch_budget"),
    path("batches/<int:batch_id>/", batch_detail, name="batch_detail"),
    path("batches/<int:batch_id>/progress/", batch_progress, name="batch_progress"),
    path("batches/<int:batch_id>/watch/", batch_watch, name="batch_watch"),
    path("batches/<int:batch_id>/cells/<int:cell_id>/", batch_cell, name="batch_cell"),
    path("batches/<int:batch_id>/changes/", batch_changes, name="batch_changes"),
    path("batches/<int:batch_id>/pause/", batch_pause, name="batch_pause"),
    path("batches/<int:batch_id>/resume/", batch_resume, name="batch_resume"),
    path("batches/<int:batch_id>/cancel/", batch_cancel, name="batch_cancel"),
    path("batches/<int:batch_id>/run-failed-again/", batch_run_failed_again, name="batch_run_failed_again"),
    *(
        path(f"batches/<int:batch_id>/export.{fmt}", batch_export, {"fmt": fmt}, name=f"batch_export_{fmt}")
        for fmt in ("csv", "json", "md")
    ),
]
