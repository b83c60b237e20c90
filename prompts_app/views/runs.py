"""Running a version: the run form, the estimate, a run's page and "Run again"."""

from __future__ import annotations

import uuid

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import reswap, retarget

from prompts_app import rendering
from prompts_app.forms.runs import RunForm, estimate_inputs
from prompts_app.models import PromptVersion, Role, Run
from prompts_app.run_input import InputTooLarge, missing_variables
from prompts_app.services import run_watch
from prompts_app.services import runs as run_service
from prompts_app.views.access import get_run_for_user, get_version_for_user

PAGE = "prompts_app/runs/run_page.html"
DETAIL = "prompts_app/runs/detail.html"


@login_required
@require_http_methods(["GET", "POST"])
def version_run(request: HttpRequest, version_id: int) -> HttpResponse:
    if request.method == "GET":
        version = get_version_for_user(request, version_id)
        return _run_page(request, version, RunForm.blank(version))
    version = get_version_for_user(request, version_id, Role.EDITOR)
    action = request.POST.get("action", "run")
    if action != "run":  # add or remove a turn: re-render with everything typed kept
        return _run_page(request, version, RunForm.rearranged(request.POST, version=version, action=action))
    form = RunForm(request.POST, version=version)
    if not form.is_valid():
        return _run_page(request, version, form)
    run = run_service.run_version(
        version=version,
        inputs=form.inputs(),
        user=request.user,
        idempotency_key=form.cleaned_data["idempotency_key"],
    )
    if request.htmx:
        # The outcome replaces any error left from a refused run; a fresh key goes back with it,
        # so the next run is a new run, not this one again.
        return render(request, PAGE + "#run-outcome", {"run": run, "next_key": uuid.uuid4().hex})
    return redirect("run_detail", run_id=run.pk)


def _run_page(request: HttpRequest, version: PromptVersion, form: RunForm) -> HttpResponse:
    context = {"version": version, "run_form": form, "nav": "workspaces"}
    if request.htmx:
        # The form may have been posted aiming at the result area; the panel replaces itself.
        return reswap(retarget(render(request, PAGE + "#run-panel", context), "#run-panel"), "outerHTML")
    return render(request, PAGE, context)


@login_required
@require_POST
def version_estimate(request: HttpRequest, version_id: int) -> HttpResponse:
    """What a run would send, as typed so far, and its approximate input tokens and cost."""
    version = get_version_for_user(request, version_id)
    inputs = estimate_inputs(request.POST, version)
    context: dict = {
        "preview": rendering.run_preview(version.messages, inputs["turns"], inputs["variables"]),
        "missing": missing_variables(version.variables(), inputs["variables"]),
    }
    try:
        context["tokens"], context["price"] = run_service.estimate(version=version, inputs=inputs)
    except InputTooLarge as exc:
        context["too_large"] = exc.message
    return render(request, PAGE + "#estimate", context)


@login_required
@require_GET
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = _fresh(get_run_for_user(request, run_id))
    context = {"run": run, "again_key": uuid.uuid4().hex, "nav": "history"}
    return render(request, DETAIL, context)


@login_required
@require_GET
def run_result(request: HttpRequest, run_id: int) -> HttpResponse:
    """The result fragment alone. A pending result asks with ?wait=1: held open until the run
    is stored (or a timeout passes), so it shows the moment it exists."""
    run = _fresh(get_run_for_user(request, run_id))
    held = True
    if run.status == Run.Status.PENDING and request.GET.get("wait"):
        held = run_watch.wait_for_runs([run.pk], user_id=request.user.pk)
        run = _fresh(get_run_for_user(request, run_id))
    return render(request, DETAIL + "#run-result", {"run": run, "retry_ms": 0 if held else run_watch.BUSY_RETRY_MS})


@login_required
@require_POST
def run_again(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_run_for_user(request, run_id, Role.EDITOR)
    key = request.POST.get("idempotency_key", "")[:64]
    try:
        again = run_service.rerun(run=run, user=request.user, idempotency_key=key)
    except InputTooLarge as exc:
        context = {"run": run, "again_key": uuid.uuid4().hex, "again_error": exc.message, "nav": "history"}
        return render(request, DETAIL, context)
    return redirect("run_detail", run_id=again.pk)


def _fresh(run: Run) -> Run:
    # A run its process can no longer finish shows as settled; the runner's sweep writes that
    # (prompts_app/runner.py), never a page.
    return run_service.shown_as_settled(run)


urlpatterns = [
    path("versions/<int:version_id>/run/", version_run, name="version_run"),
    path("versions/<int:version_id>/estimate/", version_estimate, name="version_estimate"),
    path("runs/<int:run_id>/", run_detail, name="run_detail"),
    path("runs/<int:run_id>/result/", run_result, name="run_result"),
    path("runs/<int:run_id>/again/", run_again, name="run_again"),
]
