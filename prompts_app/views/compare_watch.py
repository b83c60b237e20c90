"""The comparison page's watch: one stream of server-sent events per page while runs are pending.

Each column is drawn the moment its run is stored: the stream's held slot (services/run_watch)
wakes on the store, and an "update" event carries that column's card and its diff rows, swapped
in by id through htmx's SSE extension (served by the app). A held request answered per change
cost the page a round trip per change (answer, swap, ask again): with 8 columns finishing within
tens of ms, the last ones waited for it. "done" ends the stream with the next watch element (a
new stream for the section as now drawn, or none when nothing is pending), after HOLD_SECONDS at
most, so a stream never holds its thread for long; while nothing is stored it writes a comment
every PING_SECONDS, so a stream whose page has gone ends (and frees its slot) within seconds.
When every slot is taken the stream sends what is stored already, says `retry` and ends: the
browser's EventSource asks again after BUSY_RETRY_MS.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, QueryDict, StreamingHttpResponse
from django.template.loader import render_to_string
from django.urls import path
from django.views.decorators.http import require_GET

from prompts_app.models import Comparison, Run
from prompts_app.plain_int import plain_int
from prompts_app.services import run_watch
from prompts_app.views.access import get_comparison_for_user
from prompts_app.views.compare import changes_context, columns_of, shown_diff, watch_context

PAGE = "prompts_app/compare/detail.html"
PING_SECONDS = 2.0  # between comments while nothing is stored: a client that left is noticed this soon


@login_required
@require_GET
def comparison_watch(request: HttpRequest, comparison_id: int) -> StreamingHttpResponse:
    comparison = get_comparison_for_user(request, comparison_id)  # before the stream: 404 for outsiders
    pending = request.GET.get("pending", "").split(",")[: run_watch.MAX_WATCHED]
    shown = [pk for pk in map(plain_int, pending) if pk is not None]
    # Only this comparison's runs: ids of another one are dropped, never watched.
    ids = list(comparison.runs.filter(pk__in=shown).order_by("pk").values_list("pk", flat=True))
    response = StreamingHttpResponse(_events(request, comparison, ids), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # a proxy in front (nginx) must pass each event at once
    return response


def _events(request: HttpRequest, comparison: Comparison, ids: list[int]) -> Iterator[str]:
    changes = _Changes(request, comparison, ids)
    with run_watch.holding(request.user.pk) as place:
        if place is None:
            # Every slot taken: what is stored already, and the browser opens the stream again soon.
            yield f"retry: {run_watch.BUSY_RETRY_MS}\n\n"
            yield from changes.drawn()
            return
        deadline = time.monotonic() + run_watch.HOLD_SECONDS
        while changes.ids and time.monotonic() < deadline:
            if place.until_stored(changes.ids, min(deadline, time.monotonic() + PING_SECONDS)):
                if changes.drawn_any:  # the first result is drawn at once; the rest of a burst in one draw
                    run_watch.settled_here(time.monotonic() + run_watch.SETTLE_SECONDS)
                yield from changes.drawn()
            elif time.monotonic() < deadline:
                # A comment the browser ignores: writing it to a client that has gone fails, and
                # the stream (its slot) ends now instead of at the deadline.
                yield ": waiting\n\n"
    yield _event("done", render_to_string(f"{PAGE}#watch", {"watch": changes.next_watch(), "watch_oob": True}, request))


class _Changes:
    """What the page shows as pending, and the diff section as it is drawn there, kept up to date
    as the stream draws the columns that got their result."""

    def __init__(self, request: HttpRequest, comparison: Comparison, ids: list[int]) -> None:
        self.request, self.comparison, self.ids = request, comparison, ids
        self.query = request.GET
        self.batch = plain_int(self.query.get("batch"))
        self.state = shown_diff(self.query)["diff_state"]  # the section the page shows, if the address is ours
        self.columns = columns_of(comparison)  # read once: a comparison's columns never change
        self.drawn_any = False

    def drawn(self) -> Iterator[str]:
        """An "update" with the columns whose runs were stored since the last one, if any."""
        states = self.comparison.runs.filter(pk__in=self.ids).order_by("pk").values_list("pk", "column", "status")
        states = list(states)
        self.ids = [pk for pk, _column, status in states if status == Run.Status.PENDING]
        changed = {column for _pk, column, status in states if status != Run.Status.PENDING}
        if not changed:
            return
        # Read what is still pending before drawing the changed columns: a run stored in
        # between is drawn once more on the next wake (a redundant redraw), never missed.
        context = changes_context(self.comparison, changed, self.batch, self.query, self.columns)
        self.state = context["diff_state"]  # the section as the page now shows it
        self.query = _as_query(self.query, self.state)
        context["comparison"] = self.comparison
        self.drawn_any = True
        yield _event("update", render_to_string(f"{PAGE}#watch-changes", context, self.request))

    def next_watch(self) -> dict[str, Any]:
        return watch_context(self.comparison, self.ids, self.state, batch=self.batch)


def _as_query(query: QueryDict, state: dict[str, Any]) -> QueryDict:
    shown = query.copy()
    for name in ("baseline", "shown", "token"):
        shown[name] = str(state.get(name, ""))
    return shown


def _event(name: str, html: str) -> str:
    """One server-sent event: every line of the HTML after "data: " (the browser joins them)."""
    lines = "".join(f"data: {line}\n" for line in html.strip().splitlines())
    return f"event: {name}\n{lines}\n"


urlpatterns = [
    path("compare/<int:comparison_id>/watch/", comparison_watch, name="comparison_watch"),
]
