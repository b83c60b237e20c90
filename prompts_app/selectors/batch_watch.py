"""What a running batch's page shows, and the one cheap query that says it is out of date.

The page's held request (views.batches.batch_watch, held by services.run_watch.hold) carries
what the page shows: the batch's status, how many cells were running and the pending runs of
those cells. The page is out of date when the status changed, when a cell was claimed or
finished (the number running changed), or when one of those runs was stored. Each check is
index lookups only (a batch's running cells are at most its concurrency, the runs by primary
key), so it can run on every store, or every few milliseconds on PostgreSQL, for any size of batch.

The page also sends the matrix cells it shows unfinished (their id and state's first letter, from
hidden inputs in the cells, at most MAX_LIVE_CELLS a page): the answer carries, out of band, those
that changed since, drawn as the matrix draws them. Finished cells are never sent again, so an open
diff or whole output is never replaced, and the person's filters, sort and page are the page's own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection
from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce

from prompts_app.models import BatchCell, BatchColumn, BatchComparison, Run
from prompts_app.plain_int import plain_int
from prompts_app.selectors.batches import MAX_LIVE_CELLS, MatrixCell, cells
from prompts_app.services.run_watch import MAX_WATCHED


@dataclass(frozen=True)
class Shown:
    status: str
    running: int
    run_ids: tuple[int, ...]

    @classmethod
    def of(cls, batch: BatchComparison) -> Shown:
        """What the page draws now: one query for the running cells' runs."""
        running = batch.cells.filter(state=BatchCell.State.RUNNING).order_by("id").values_list("run_id", flat=True)
        found = list(running)
        return cls(batch.status, len(found), tuple(pk for pk in found[:MAX_WATCHED] if pk is not None))

    @classmethod
    def from_query(cls, get) -> Shown:
        ids = [pk for pk in map(plain_int, get.get("runs", "").split(",")[:MAX_WATCHED]) if pk is not None]
        running = get.get("running", "")
        return cls(get.get("status", "")[:10], -1 if (count := plain_int(running)) is None else count, tuple(ids))

    def query(self) -> str:
        return f"status={self.status}&running={self.running}&runs={','.join(map(str, self.run_ids))}"


def changed_since(batch: BatchComparison, shown: Shown) -> Callable[[], bool]:
    """A check that is true once the page showing `shown` is out of date: the SQL is built once,
    each check is one query (the ORM's compiling would be most of a held request's CPU)."""
    cells = BatchCell.objects.filter(batch_id=OuterRef("pk"), state=BatchCell.State.RUNNING)
    runs = Run.objects.filter(
        pk__in=shown.run_ids or [0], status=Run.Status.PENDING, batch_comparison_id=OuterRef("pk")
    )
    state = BatchComparison.objects.filter(pk=batch.pk).annotate(
        running=_count(cells.values("batch_id")), pending=_count(runs.values("batch_comparison_id"))
    )
    sql, params = state.values_list("status", "running", "pending").query.sql_with_params()

    def changed() -> bool:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        if row is None:  # the batch was deleted: the page's answer says so
            return True
        status, running, pending = row
        return status != shown.status or running != shown.running or pending < len(shown.run_ids)

    return changed


def _count(grouped):
    counted = grouped.order_by().annotate(n=Count("*")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def shown_cells(get) -> dict[int, str]:
    """The unfinished cells the page shows, {id: first letter of the state it shows}."""
    found = {}
    for value in get.getlist("c")[:MAX_LIVE_CELLS]:
        if (pk := plain_int(value[:-1])) is not None:
            found[pk] = value[-1:]
    return found


def changed_cells(batch: BatchComparison, columns: list[BatchColumn], shown: dict[int, str]) -> list[MatrixCell]:
    """Of the cells the page shows unfinished, those whose state moved on: one query by primary key."""
    if not shown:
        return []
    number = {c.pk: n for n, c in enumerate(columns, 1)}
    found = cells(batch).filter(pk__in=list(shown)).values_list(*MatrixCell.FIELDS, "case__position")
    changed = []
    for *values, case_position in found:
        cell = MatrixCell(*values)
        if cell.state[:1] != shown[cell.pk]:
            cell.label(case_position or 0, number[cell.column_id])
            cell.live = cell.state in MatrixCell.UNFINISHED
            changed.append(cell)
    return changed
