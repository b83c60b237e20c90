"""A workspace's audit trail, for its owners: a page, newest first, and a CSV export."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

from prompts_app.models import Role
from prompts_app.selectors.export import csv_safe  # the runs export's formula guard
from prompts_app.services import audit
from prompts_app.views.access import get_workspace_for_user

PAGE_SIZE = 50


@login_required
@require_GET
def audit_log(request: HttpRequest, workspace_id: int) -> HttpResponse:
    workspace = get_workspace_for_user(request, workspace_id, Role.OWNER)
    page = Paginator(audit.events(workspace), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"workspace": workspace, "page": page, "nav": "workspaces"}
    return render(request, "prompts_app/audit/page.html", context)


@login_required
@require_GET
def audit_export(request: HttpRequest, workspace_id: int) -> HttpResponse:
    workspace = get_workspace_for_user(request, workspace_id, Role.OWNER)
    response = StreamingHttpResponse(_csv_lines(audit.export_rows(workspace)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="maximui-audit-{workspace.pk}.csv"'
    return response


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_lines(rows: Iterable[list[str]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(audit.CSV_HEADER)
    for row in rows:
        yield writer.writerow([csv_safe(value) for value in row])


ws = "workspaces/<int:workspace_id>/"
urlpatterns = [
    path(ws + "audit/", audit_log, name="audit_log"),
    path(ws + "audit.csv", audit_export, name="audit_export"),
]
