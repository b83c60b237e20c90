"""A request htmx sends to restore a page from history is a request for the whole page."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django_htmx.middleware import HtmxDetails


class _WholePage(HtmxDetails):
    """htmx's details, but false: every `if request.htmx` renders the whole page."""

    def __bool__(self) -> bool:
        return False


class HistoryRestoreMiddleware:
    """After HtmxMiddleware. Back or Forward to a URL htmx pushed (a filtered matrix, a history
    page) asks the server for it with HX-Request when its snapshot is not cached (our
    historyCacheSize is 0): views that answer htmx with a fragment drew only that fragment as the
    whole page (new-user trial: Back after filtering a batch's matrix showed the table alone)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.htmx and request.htmx.history_restore_request:
            request.htmx = _WholePage(request)
        return self.get_response(request)
