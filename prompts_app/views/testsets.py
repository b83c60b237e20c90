"""Test sets: lists of inputs with expected outputs, edited here or imported from CSV/JSONL."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import path, reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from prompts_app import testset_files as files
from prompts_app.forms.testsets import CaseForm, TestSetForm, UploadForm
from prompts_app.models import Membership, Role, TestCase, TestSet, TestSetUpload
from prompts_app.selectors.batches import batches_per_case
from prompts_app.services import testsets as services
from prompts_app.streaming import in_chunks
from prompts_app.views.access import get_case_for_user, get_test_set_for_user, get_workspace_for_user

PAGE = "prompts_app/testsets/detail.html"
PER_PAGE = 50


def _with_cells(case: TestCase, names: list[str], batches: dict[int, int] | None = None) -> TestCase:
    case.cells = [case.variables.get(name) for name in names]
    # Its delete button says which batches lose the row (new-user re-trial: a finished batch's matrix
    # lost case 48 without a word).
    case.batches = (batches if batches is not None else batches_per_case([case.pk])).get(case.pk, 0)
    return case


def _case_context(request: HttpRequest, case: TestCase, form: CaseForm | None = None) -> dict:
    test_set = case.test_set
    return {
        "case": _with_cells(case, test_set.variable_names),
        "test_set": test_set,
        "form": form,
        "can_edit": request.membership.allows(Role.EDITOR),
        "span": len(test_set.variable_names) + 4,
    }


def _page_of(case: TestCase) -> int:
    before = case.test_set.cases.filter(position__lt=case.position).count()
    return before // PER_PAGE + 1


def _detail_url(test_set: TestSet, page: int | None = None, anchor: str = "") -> str:
    url = reverse("testset_detail", args=[test_set.pk])
    return f"{url}{f'?page={page}' if page else ''}{f'#{anchor}' if anchor else ''}"


def _render_detail(request: HttpRequest, test_set: TestSet, **forms) -> HttpResponse:
    page = Paginator(test_set.cases.all(), PER_PAGE).get_page(request.GET.get("page"))
    names = test_set.variable_names
    can_edit = request.membership.allows(Role.EDITOR)
    used = batches_per_case([case.pk for case in page])
    context = {
        "test_set": test_set,
        "workspace": test_set.workspace,
        "page": page,
        "can_edit": can_edit,
        "cases": [_with_cells(case, names, used) for case in page],
        "span": len(names) + 4,
        "nav": "testsets",
        "add_form": forms.get("add_form") or CaseForm(variable_names=names, auto_id="add-%s"),
        "settings_form": forms.get("settings_form")
        or TestSetForm(initial={"name": test_set.name, "description": test_set.description}),
    }
    return render(request, PAGE, context)


@login_required
@require_GET
def testset_index(request: HttpRequest) -> HttpResponse:
    memberships = Membership.objects.filter(user=request.user).select_related("workspace").order_by("workspace__name")
    sets = TestSet.objects.filter(workspace__memberships__user=request.user).select_related("workspace")
    context = {"memberships": memberships, "test_sets": sets, "nav": "testsets"}
    return render(request, "prompts_app/testsets/index.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def testset_list(request: HttpRequest, workspace_id: int) -> HttpResponse:
    needed = Role.EDITOR if request.method == "POST" else Role.VIEWER
    workspace = get_workspace_for_user(request, workspace_id, needed)
    form = TestSetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        test_set = services.create_test_set(workspace=workspace, user=request.user, **form.cleaned_data)
        messages.success(request, f"Created the test set “{test_set.name}”. Add cases or import a file.")
        return redirect("testset_detail", test_set.pk)
    context = {
        "workspace": workspace,
        "form": form,
        "test_sets": workspace.test_sets.all(),
        "nav": "testsets",
        "can_edit": request.membership.allows(Role.EDITOR),
    }
    return render(request, "prompts_app/testsets/list.html", context)


@login_required
@require_GET
def testset_detail(request: HttpRequest, test_set_id: int) -> HttpResponse:
    test_set = get_test_set_for_user(request, test_set_id)
    return _render_detail(request, test_set)


@login_required
@require_POST
def testset_update(request: HttpRequest, test_set_id: int) -> HttpResponse:
    test_set = get_test_set_for_user(request, test_set_id, Role.EDITOR)
    form = TestSetForm(request.POST)
    if not form.is_valid():
        return _render_detail(request, test_set, settings_form=form)
    services.rename_test_set(test_set, **form.cleaned_data)
    messages.success(request, "Saved the test set's name and description.")
    return redirect("testset_detail", test_set.pk)


@login_required
@require_http_methods(["GET", "POST"])
def testset_delete(request: HttpRequest, test_set_id: int) -> HttpResponse:
    test_set = get_test_set_for_user(request, test_set_id, Role.EDITOR)
    if request.method == "POST":
        workspace_id = test_set.workspace_id
        services.delete_test_set(test_set)
        messages.success(request, f"Deleted the test set “{test_set.name}”.")
        return redirect("testset_list", workspace_id)
    context = {
        "test_set": test_set,
        "workspace": test_set.workspace,
        "cases": test_set.cases.count(),
        "nav": "testsets",
    }
    return render(request, "prompts_app/testsets/delete.html", context)


@login_required
@require_POST
def case_add(request: HttpRequest, test_set_id: int) -> HttpResponse:
    test_set = get_test_set_for_user(request, test_set_id, Role.EDITOR)
    form = CaseForm(request.POST, variable_names=test_set.variable_names, auto_id="add-%s")
    if not form.is_valid():
        return _render_detail(request, test_set, add_form=form)
    data = form.cleaned_data
    case = services.add_case(
        test_set, variables=data["variables"], turns=data["turns"], expected_output=data["expected_output"]
    )
    messages.success(request, f"Added case {case.position}.")
    return redirect(_detail_url(test_set, _page_of(case), f"case-{case.pk}"))


@login_required
@require_GET
def case_row(request: HttpRequest, case_id: int) -> HttpResponse:
    """The case's row as shown in the table (htmx: "Cancel" on an inline edit)."""
    case = get_case_for_user(request, case_id)
    if not request.htmx:
        return redirect(_detail_url(case.test_set, _page_of(case), f"case-{case.pk}"))
    return render(request, PAGE + "#case-row", _case_context(request, case))


@login_required
@require_http_methods(["GET", "POST"])
def case_edit(request: HttpRequest, case_id: int) -> HttpResponse:
    case = get_case_for_user(request, case_id, Role.EDITOR)
    names = case.test_set.variable_names
    form = CaseForm(request.POST or None, variable_names=names, case=case, auto_id=f"case{case.pk}-%s")
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        services.update_case(
            case, variables=data["variables"], turns=data["turns"], expected_output=data["expected_output"]
        )
        if not request.htmx:
            messages.success(request, f"Saved case {case.position}.")
            return redirect(_detail_url(case.test_set, _page_of(case), f"case-{case.pk}"))
        form = None  # saved: show the row again
    piece = "#case-row" if form is None else "#case-edit-row"
    template = PAGE + piece if request.htmx else "prompts_app/testsets/case.html"
    return render(request, template, _case_context(request, case, form))


@login_required
@require_POST
def case_delete(request: HttpRequest, case_id: int) -> HttpResponse:
    case = get_case_for_user(request, case_id, Role.EDITOR)
    test_set, page = case.test_set, _page_of(case)
    services.delete_case(case)
    if request.htmx:  # the row swaps out; the count above the table follows (it kept the old one: trial)
        count = test_set.cases.count()
        return render(request, PAGE + "#case-count", {"count": count, "oob": True})
    messages.success(request, f"Deleted case {case.position}.")
    return redirect(_detail_url(test_set, page))


class UploadLimit(FileUploadHandler):
    """Stops reading an uploaded file past the limit: Django would spool any size to disk."""

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        if start + len(raw_data) > files.MAX_FILE_BYTES:
            self.request.upload_too_big = True
            raise StopUpload(connection_reset=False)  # the rest of the body is read and dropped
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler keeps the file


@csrf_exempt  # only so the limit is in place before the CSRF check reads the body; checked just below
@login_required
@require_http_methods(["GET", "POST"])
def testset_import(request: HttpRequest, test_set_id: int) -> HttpResponse:
    request.upload_handlers.insert(0, UploadLimit(request))
    return _testset_import(request, test_set_id)


@csrf_protect
def _testset_import(request: HttpRequest, test_set_id: int) -> HttpResponse:
    test_set = get_test_set_for_user(request, test_set_id, Role.EDITOR)
    bound = request.method == "POST" and not getattr(request, "upload_too_big", False)
    form = (
        UploadForm(request.POST, request.FILES, workspace=test_set.workspace)
        if bound
        else UploadForm(workspace=test_set.workspace)
    )
    if bound and form.is_valid():
        upload = form.cleaned_data["file"]
        preview = services.stage_upload(
            test_set,
            user=request.user,
            filename=upload.name,
            content=upload.read(),
            check_version=form.cleaned_data["check_version"],
        )
        return redirect("testset_import_preview", test_set.pk, preview.upload.pk)
    context = {"test_set": test_set, "workspace": test_set.workspace, "form": form, "nav": "testsets"}
    if getattr(request, "upload_too_big", False):
        context["error"] = f"The file is over {files.MAX_FILE_BYTES // (1024 * 1024)} MB; split it into smaller files."
    return render(request, "prompts_app/testsets/import.html", context)


def _get_upload(request: HttpRequest, test_set: TestSet, upload_id: int) -> TestSetUpload | None:
    # Only the person who uploaded a file sees or imports it, and only into its own set.
    upload = TestSetUpload.objects.filter(pk=upload_id, test_set=test_set, user=request.user)
    return upload.select_related("check_version__prompt").first()


@login_required
@require_GET
def import_preview(request: HttpRequest, test_set_id: int, upload_id: int) -> HttpResponse:
    test_set = get_test_set_for_user(request, test_set_id, Role.EDITOR)
    upload = _get_upload(request, test_set, upload_id)
    if upload is None:
        messages.warning(request, "That upload is gone (imported already, or over a day old). Upload the file again.")
        return redirect("testset_import", test_set.pk)
    context = {
        "test_set": test_set,
        "workspace": test_set.workspace,
        "nav": "testsets",
        "form": UploadForm(workspace=test_set.workspace),
        "preview": services.preview(upload),
    }
    return render(request, "prompts_app/testsets/import.html", context)


@login_required
@require_POST
def import_confirm(request: HttpRequest, test_set_id: int, upload_id: int) -> HttpResponse:
    test_set = get_test_set_for_user(request, test_set_id, Role.EDITOR)
    upload = _get_upload(request, test_set, upload_id)
    if upload is None:
        messages.warning(request, "That upload is gone (imported already, or over a day old).")
        return redirect("testset_detail", test_set.pk)
    good_only = request.POST.get("good_only") == "1"  # the "Import the N good rows" button
    complete_only = request.POST.get("complete_only") == "1"  # "Import only the N complete rows"
    try:
        done = services.confirm_upload(upload, good_only=good_only, complete_only=complete_only)
    except services.ImportRefused as exc:
        messages.error(request, str(exc))
        return redirect("testset_import_preview", test_set.pk, upload.pk)
    why = " or ".join(w for w, on in (("errors", good_only), ("an empty variable", complete_only)) if on)
    skipped = f"; skipped {done.skipped:,} row{pluralize(done.skipped)} with {why}" if done.skipped else ""
    name = upload.filename or "the file"
    messages.success(request, f"Imported {done.cases:,} case{pluralize(done.cases)} from {name}{skipped}.")
    return redirect("testset_detail", test_set.pk)


@login_required
@require_GET
def testset_export(request: HttpRequest, test_set_id: int, fmt: str) -> HttpResponse:
    test_set = get_test_set_for_user(request, test_set_id)
    content_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson; charset=utf-8"
    response = StreamingHttpResponse(in_chunks(services.export_lines(test_set, fmt)), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="test-set-{test_set.pk}.{fmt}"'
    return response


ts = "testsets/<int:test_set_id>/"
urlpatterns = [
    path("testsets/", testset_index, name="testset_index"),
    path("workspaces/<int:workspace_id>/testsets/", testset_list, name="testset_list"),
    path(ts, testset_detail, name="testset_detail"),
    path(ts + "settings/", testset_update, name="testset_update"),
    path(ts + "delete/", testset_delete, name="testset_delete"),
    path(ts + "cases/add/", case_add, name="testcase_add"),
    path(ts + "import/", testset_import, name="testset_import"),
    path(ts + "import/<int:upload_id>/", import_preview, name="testset_import_preview"),
    path(ts + "import/<int:upload_id>/confirm/", import_confirm, name="testset_import_confirm"),
    path(ts + "export.csv", testset_export, {"fmt": "csv"}, name="testset_export_csv"),
    path(ts + "export.jsonl", testset_export, {"fmt": "jsonl"}, name="testset_export_jsonl"),
    path("testcases/<int:case_id>/", case_row, name="testcase_row"),
    path("testcases/<int:case_id>/edit/", case_edit, name="testcase_edit"),
    path("testcases/<int:case_id>/delete/", case_delete, name="testcase_delete"),
]
