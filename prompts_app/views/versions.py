"""Prompts of a workspace, versions, the version builder, diffs and deploys."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.forms.utils import ErrorDict
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.urls import path, reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from prompts_app import diffing, pricing
from prompts_app.forms import builder
from prompts_app.forms.versions import ConditionFormSetClass, PromptForm, condition_data
from prompts_app.models import Prompt, PromptVersion, Role
from prompts_app.plain_int import plain_int
from prompts_app.services import deployments
from prompts_app.services import prompt_list as prompt_list_service
from prompts_app.services import runs as run_services
from prompts_app.services import versions as services
from prompts_app.views.access import get_prompt_for_user, get_version_for_user, get_workspace_for_user

T = "prompts_app/versions/"


# -- prompts -------------------------------------------------------------------------------


@login_required
@require_GET
def prompt_list(request: HttpRequest, workspace_id: int) -> HttpResponse:
    workspace = get_workspace_for_user(request, workspace_id)
    return _prompt_list_page(request, workspace, PromptForm())


def _prompt_list_page(request: HttpRequest, workspace: Any, form: PromptForm, error: str = "") -> HttpResponse:
    query = prompt_list_service.clean_query(request.GET.get("q", ""))
    context = {
        "workspace": workspace,
        "prompts": prompt_list_service.search_prompts(workspace, query),
        "query": query,
        "form": form,
        "error": error,
        "can_edit": request.membership.allows(Role.EDITOR),
        "nav": "workspaces",
    }
    # The search box asks for the results only; a reload or history restore gets the whole page.
    partial = request.htmx and not request.htmx.history_restore_request and request.method == "GET"
    response = render(request, T + ("prompt_list.html#prompt-results" if partial else "prompt_list.html"), context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
@require_POST
def prompt_sync(request: HttpRequest, workspace_id: int) -> HttpResponse:
    workspace = get_workspace_for_user(request, workspace_id, Role.EDITOR)
    try:
        created, updated = services.sync_prompts(workspace)
    except services.MaximCallFailed as exc:
        messages.error(request, f"Could not sync prompts: {exc.message}")
    else:
        messages.success(request, f"Synced from Maxim: {created} new, {updated} updated.")
    return redirect("prompt_list", workspace_id=workspace.pk)


@login_required
@require_POST
def prompt_create(request: HttpRequest, workspace_id: int) -> HttpResponse:
    workspace = get_workspace_for_user(request, workspace_id, Role.EDITOR)
    form = PromptForm(request.POST)
    if not form.is_valid():
        return _prompt_list_page(request, workspace, form)
    try:
        prompt = services.create_prompt(workspace=workspace, **form.cleaned_data)
    except services.MaximCallFailed as exc:
        return _prompt_list_page(request, workspace, form, error=f"Maxim did not create the prompt: {exc.message}")
    messages.success(request, f"Created prompt “{prompt.name}”.")
    return redirect("prompt_detail", prompt_id=prompt.pk)


@login_required
@require_GET
def prompt_detail(request: HttpRequest, prompt_id: int) -> HttpResponse:
    prompt = get_prompt_for_user(request, prompt_id)
    versions = list(prompt.versions.all())
    live = deployments.live_deployments(prompt)
    for v in versions:
        v.live_deployments = live.get(v.pk, [])
    context = {
        "prompt": prompt,
        "workspace": prompt.workspace,
        "versions": versions,
        "latest": versions[0] if versions else None,
        "can_edit": request.membership.allows(Role.EDITOR),
        "nav": "workspaces",
    }
    return render(request, T + "prompt_detail.html", context)


@login_required
@require_POST
def prompt_import(request: HttpRequest, prompt_id: int) -> HttpResponse:
    prompt = get_prompt_for_user(request, prompt_id, Role.EDITOR)
    try:
        created, updated = services.import_versions(prompt)
    except services.MaximCallFailed as exc:
        messages.error(request, f"Could not import versions: {exc.message}")
    else:
        messages.success(request, f"Imported from Maxim: {created} new versions, {updated} updated.")
    return redirect("prompt_detail", prompt_id=prompt.pk)


# -- the builder ------------------------------------------------------------------------------


def _base_version(prompt: Prompt, raw: str | None) -> PromptVersion | None:
    if not raw:
        return None
    pk = plain_int(raw)
    if pk is None:
        raise Http404("No such version")
    return get_object_or_404(PromptVersion, pk=pk, prompt=prompt)


def _builder_url(prompt: Prompt, base: PromptVersion | None, name: str = "version_builder") -> str:
    url = reverse(name, kwargs={"prompt_id": prompt.pk})
    return f"{url}?from={base.pk}" if base else url


def _render_builder(
    request: HttpRequest, prompt: Prompt, base: PromptVersion | None, form: builder.BuilderForm, **extra: Any
) -> HttpResponse:
    draft = extra.get("draft")
    if not extra.get("show_errors"):
        form.hide_errors()
    context = {
        "prompt": prompt,
        "workspace": prompt.workspace,
        "base": base,
        "form": form,
        "builder_url": _builder_url(prompt, base),
        "discard_url": _builder_url(prompt, base, "draft_discard"),
        "revision": draft.revision if draft else 0,
        "suggestions": pricing.provider_model_suggestions(form.settings["provider"].value() or ""),
        "nav": "workspaces",
        **extra,
    }
    if request.htmx:  # the playground sits beside the form; htmx swaps of the form leave it alone
        return render(request, T + "builder.html#builder", context)
    return render(request, T + "builder.html", {**_playground_context(prompt, base, form, request.POST), **context})


def _playground_context(
    prompt: Prompt, base: PromptVersion | None, form: builder.BuilderForm, data: Any
) -> dict[str, Any]:
    values = builder.playground_values(data, form.variables())
    return {
        "run_url": _builder_url(prompt, base, "draft_run"),
        "run_key": uuid.uuid4().hex,
        "run_values": values,
    }


@login_required
@require_http_methods(["GET", "POST"])
def version_builder(request: HttpRequest, prompt_id: int) -> HttpResponse:
    # Editors only: viewers cannot create versions, so the builder is not theirs (403).
    prompt = get_prompt_for_user(request, prompt_id, Role.EDITOR)
    base = _base_version(prompt, request.GET.get("from"))
    if request.method == "POST":
        return _builder_post(request, prompt, base)
    draft = services.find_draft(prompt=prompt, user=request.user, base_version=base)
    state = builder.state_from_content(base.content()) if base else builder.empty_state()
    form = builder.BuilderForm(draft.form_data if draft else builder.state_to_data(state))
    return _render_builder(request, prompt, base, form, draft=draft, restored=draft is not None)


def _posted_revision(request: HttpRequest) -> int | None:
    """The draft revision the page holds; None from a form without one. One that is not a
    number is no revision the page was given: it loses to any stored draft (hostile trial:
    "garbage" skipped the other-tab check and overwrote the draft)."""
    raw = request.POST.get("draft_revision")
    if raw is None:
        return None
    revision = plain_int(raw, max_digits=9)
    return -1 if revision is None else revision


def _builder_post(request: HttpRequest, prompt: Prompt, base: PromptVersion | None) -> HttpResponse:
    action = request.POST.get("action") or "save"
    state = builder.apply_action(builder.state_from_data(request.POST), action)
    form = builder.BuilderForm(builder.state_to_data(state))
    valid = form.is_valid()
    if action == "create" and valid:
        twin = services.recent_twin(prompt=prompt, user=request.user, base_version=base, content=form.content())
        if twin is not None:  # the same form sent again: show what the first one created
            return _to_version(request, twin)
    revision = _posted_revision(request)
    try:
        draft = services.save_draft(
            prompt=prompt,
            user=request.user,
            base_version=base,
            form_data=dict(form.data),
            content=form.content() if valid else None,
            revision=revision,
        )
    except services.DraftConflict as exc:  # keep what was typed on the page, unsaved, and say why
        return _builder_reply(request, prompt, base, form, action, conflict=exc.message, revision=max(revision or 0, 0))
    if action == "changes" and base is not None:  # saved above, so the diff shows what was just typed
        url = _builder_url(prompt, base, "draft_changes")
        return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    error = ""
    if action == "create" and valid:
        try:
            version = services.create_version(draft=draft, content=form.content(), user=request.user)
        except (services.MaximCallFailed, services.AlreadyCreating) as exc:
            error = exc.message if isinstance(exc, services.MaximCallFailed) else str(exc)
        else:
            messages.success(request, f"Created version {version.number} on Maxim.")
            return _to_version(request, version)
    return trigger_client_event(
        _builder_reply(request, prompt, base, form, action, draft=draft, error=error), "builder-saved"
    )


def _builder_reply(
    request: HttpRequest,
    prompt: Prompt,
    base: PromptVersion | None,
    form: builder.BuilderForm,
    action: str,
    **extra: Any,
) -> HttpResponse:
    if action == "save" and request.htmx:  # the autosave: only the status line changes, never the form
        draft = extra.get("draft")
        context = {
            "form": form,
            "revision": draft.revision if draft else 0,
            "builder_url": _builder_url(prompt, base),
            # The page shows errors from Create or Check: say which are fixed now, as the user types.
            "recheck": request.POST.get("errors_shown") == "1" and not extra.get("conflict"),
            **extra,
        }
        return render(request, T + "builder.html#builder-status", context)
    return _render_builder(
        request, prompt, base, form, show_errors=action in ("create", "check"), checked=action == "check", **extra
    )


def _to_version(request: HttpRequest, version: PromptVersion) -> HttpResponse:
    url = reverse("version_detail", kwargs={"version_id": version.pk})
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@login_required
@require_POST
def draft_run(request: HttpRequest, prompt_id: int) -> HttpResponse:
    """The playground: run what the builder holds now, beside it, without creating a version."""
    prompt = get_prompt_for_user(request, prompt_id, Role.EDITOR)
    base = _base_version(prompt, request.GET.get("from"))
    draft = services.find_draft(prompt=prompt, user=request.user, base_version=base)
    # htmx sends the builder's fields along; a plain POST runs the draft as last saved.
    data = (
        request.POST
        if "m-TOTAL_FORMS" in request.POST
        else {**(draft.form_data if draft else {}), **request.POST.dict()}
    )
    form = builder.BuilderForm(builder.state_to_data(builder.state_from_data(data)))
    context = _playground_context(prompt, base, form, data)
    if request.POST.get("action") == "variables":  # the builder saved: refresh the variable fields only
        return render(request, T + "builder.html#playground-vars", context)
    context.update(_try_draft(request, prompt, base, form, context["run_values"]))
    if request.htmx:  # the playground alone: its note names the prompt (re-trial: "an unsaved draft of .")
        return render(request, T + "builder.html#playground", {**context, "prompt": prompt})
    return _render_builder(request, prompt, base, form, draft=draft, **context)


def _try_draft(
    request: HttpRequest, prompt: Prompt, base: PromptVersion | None, form: builder.BuilderForm, values: dict[str, str]
) -> dict[str, Any]:
    if not form.is_valid():
        count = form.error_count()
        return {"problem": f"The draft has {count} problem{pluralize(count)}: press Check in the builder to see where."}
    if services.draft_run_version(prompt=prompt, base_version=base) is None:
        return {"problem": services.NothingToRunAgainst.message}
    if problem := builder.playground_problem(values, form.content()["messages"]):
        return {"problem": problem}
    try:
        run = services.run_draft(
            prompt=prompt,
            user=request.user,
            base_version=base,
            content=form.content(),
            variables=values,
            idempotency_key=request.POST.get("run_key", "")[:64],
        )
    except services.NothingToRunAgainst as exc:
        return {"problem": exc.message}
    return {"run": run}


@login_required
def draft_changes(request: HttpRequest, prompt_id: int) -> HttpResponse:
    prompt = get_prompt_for_user(request, prompt_id, Role.EDITOR)
    base = _base_version(prompt, request.GET.get("from"))
    if base is None:
        return redirect(_builder_url(prompt, None))
    draft = services.find_draft(prompt=prompt, user=request.user, base_version=base)
    diff = diffing.diff_versions(base, draft) if draft else None
    context = {
        "prompt": prompt,
        "workspace": prompt.workspace,
        "base": base,
        "draft": draft,
        "diff": diff,
        "builder_url": _builder_url(prompt, base),
        "nav": "workspaces",
    }
    return render(request, T + "draft_changes.html", context)


@login_required
@require_POST
def draft_discard(request: HttpRequest, prompt_id: int) -> HttpResponse:
    prompt = get_prompt_for_user(request, prompt_id, Role.EDITOR)
    base = _base_version(prompt, request.GET.get("from"))
    if request.POST.get("confirm") != "yes":  # only the confirmation's own button throws the draft away
        messages.warning(request, "Nothing was discarded: confirm with the Discard button.")
    else:
        services.discard_draft(prompt=prompt, user=request.user, base_version=base)
        messages.success(request, "Draft discarded.")
    return redirect(_builder_url(prompt, base))


@login_required
@require_GET
def model_suggestions(request: HttpRequest, prompt_id: int) -> HttpResponse:
    get_prompt_for_user(request, prompt_id)
    suggestions = pricing.provider_model_suggestions(request.GET.get("provider", ""))
    return render(request, T + "builder.html#model-datalist", {"suggestions": suggestions})


# -- versions -----------------------------------------------------------------------------------


@login_required
@require_GET
def version_detail(request: HttpRequest, version_id: int) -> HttpResponse:
    version = get_version_for_user(request, version_id)
    context = {
        "version": version,
        "prompt": version.prompt,
        "workspace": version.prompt.workspace,
        "rows": services.message_rows(version),
        "tools": [{**tool, "schema": diffing.pretty(tool.get("parameters"))} for tool in version.tools],
        "parameters": [(key, diffing.pretty(value)) for key, value in sorted(version.model_parameters.items())],
        "deployments": version.deployments.all()[:10],
        "others": version.prompt.versions.exclude(pk=version.pk),
        "can_edit": request.membership.allows(Role.EDITOR),
        "nav": "workspaces",
        "waiting_run": run_services.waiting_run(version=version, user=request.user),
    }
    return render(request, T + "version_detail.html", context)


@login_required
@require_GET
def version_diff(request: HttpRequest, prompt_id: int) -> HttpResponse:
    prompt = get_prompt_for_user(request, prompt_id)
    a = _base_version(prompt, request.GET.get("a"))
    b = _base_version(prompt, request.GET.get("b"))
    diff = diffing.diff_versions(a, b) if a and b else None
    context = {
        "prompt": prompt,
        "workspace": prompt.workspace,
        "a": a,
        "b": b,
        "diff": diff,
        "versions": prompt.versions.all(),
        "nav": "workspaces",
    }
    return render(request, T + "diff.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def version_deploy(request: HttpRequest, version_id: int) -> HttpResponse:
    version = get_version_for_user(request, version_id, Role.EDITOR)
    action = request.POST.get("action", "deploy") if request.method == "POST" else "add_condition"
    formset = ConditionFormSetClass(condition_data(request.POST, action), prefix="c")
    error = ""
    if action == "deploy" and formset.is_valid():
        try:
            deployment = services.deploy_version(version=version, conditions=formset.conditions(), user=request.user)
        except services.MaximCallFailed as exc:
            error = exc.message
        else:
            messages.success(request, f"Deployed version {version.number}: Maxim says “{deployment.status}”.")
            return redirect("version_deploy", version_id=version.pk)
    if action != "deploy":  # a row added or removed is no submit: no field is marked wrong yet (nor aria-invalid)
        for form in formset:
            form._errors = ErrorDict()
    context = {
        "version": version,
        "prompt": version.prompt,
        "workspace": version.prompt.workspace,
        "formset": formset,
        "show_errors": action == "deploy",
        "error": error,
        "deployments": version.deployments.all()[:10],
        "nav": "workspaces",
    }
    return render(request, T + "deploy.html", context)


urlpatterns = [
    path("workspaces/<int:workspace_id>/prompts/", prompt_list, name="prompt_list"),
    path("workspaces/<int:workspace_id>/prompts/sync/", prompt_sync, name="prompt_sync"),
    path("workspaces/<int:workspace_id>/prompts/new/", prompt_create, name="prompt_create"),
    path("prompts/<int:prompt_id>/", prompt_detail, name="prompt_detail"),
    path("prompts/<int:prompt_id>/import/", prompt_import, name="prompt_import"),
    path("prompts/<int:prompt_id>/build/", version_builder, name="version_builder"),
    path("prompts/<int:prompt_id>/build/changes/", draft_changes, name="draft_changes"),
    path("prompts/<int:prompt_id>/build/discard/", draft_discard, name="draft_discard"),
    path("prompts/<int:prompt_id>/build/run/", draft_run, name="draft_run"),
    path("prompts/<int:prompt_id>/build/models/", model_suggestions, name="model_suggestions"),
    path("prompts/<int:prompt_id>/diff/", version_diff, name="version_diff"),
    path("versions/<int:version_id>/", version_detail, name="version_detail"),
    path("versions/<int:version_id>/deploy/", version_deploy, name="version_deploy"),
]
