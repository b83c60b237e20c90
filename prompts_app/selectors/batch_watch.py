"""What a running batch's page shows, and the one cheap query that says it is out of date.

The page's held request (views.batches.batch_watch, held by services.run_watch.hold) carries
what the page shows: the batch's status, how many cells were running, the pending runs of
those cells and the batch's newest run. The page is out of date when the status changed, when a
cell was claimed or finished (the number running changed, or a run newer than the page's exists:
a cell claimed and stored between two checks leaves the number running as it was), or when one
of those runs was stored. Each check is index lookups only (a batch's running cells are at most
its concurrency, the runs by primary key, the newest by run_batch_newest), so it can run on every
store, or every few milliseconds on PostgreSQL, for any size of batch.

The page also sends what its matrix shows, whatever its filter, sort and page: for each row with
a cell still unfinished, the case and each cell's state's first letter (MatrixRow.shown: about
50 characters for 40 cells, so a page's 25 rows x 8 columns x 5 repeats fit a short request line;
one input a cell was 11 KB, so only the first 200 cells of a page were watched). The answer carries,
out of band, the page's cells whose state moved on, drawn as the matrix draws them, and the rows'
new letters. Finished cells are never sent again, so an open diff or whole output is never replaced,
and the person's filters, sort and page are the page's own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection
from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce

from prompts_app.models import BatchCell, BatchColumn, BatchComparison, Run
from prompts_app.plain_int import plain_int
from prompts_app.selectors.batches import PER_PAGE, MatrixCell, cells, shown_states
from prompts_app.services.run_watch import MAX_WATCHED

MAX_ROW_CELLS = 64  # a row has at most 8 columns x 5 repeats
UNFINISHED_LETTERS = {state[:1] for state in MatrixCell.UNFINISHED}


@dataclass(frozen=True)
class Shown:
    status: str
    running: int
    run_ids: tuple[int, ...]
    newest: int = 0  # the batch's newest run's id (0: none)

    @classmethod
    def of(cls, batch: BatchComparison) -> Shown:
        """What the page draws now: one query for the running cells' runs, one for the newest run."""
        running = batch.cells.filter(state=BatchCell.State.RUNNING).order_by("id").values_list("run_id", flat=True)
        found = list(running)
        newest = Run.objects.filter(batch_comparison=batch).order_by("-id").values_list("id", flat=True).first()
        return cls(batch.status, len(found), tuple(pk for pk in found[:MAX_WATCHED] if pk is not None), newest or 0)

    @classmethod
    def to_watch(cls, batch: BatchComparison) -> Shown | None:
        """What the page watches, or None once nothing can change: while the batch runs, and after
        a pause or cancel while cells sent before it are still with Maxim (they are stored after;
        the page stopped at "Pause" with stale "running" counts, new-user trial)."""
        if batch.status == BatchComparison.Status.RUNNING:
            return cls.of(batch)
        if batch.status not in (BatchComparison.Status.PAUSED, BatchComparison.Status.CANCELLED):
            return None
        shown = cls.of(batch)
        return shown if shown.running else None

    @classmethod
    def from_query(cls, get) -> Shown:
        ids = [pk for pk in map(plain_int, get.get("runs", "").split(",")[:MAX_WATCHED]) if pk is not None]
        running = get.get("running", "")
        count, newest = plain_int(running), plain_int(get.get("newest", ""))
        return cls(
            get.get("status", "")[:10], -1 if count is None else count, tuple(ids), -1 if newest is None else newest
        )

    def query(self) -> str:
        runs = ",".join(map(str, self.run_ids))
        return f"status={self.status}&running={self.running}&runs={runs}&newest={self.newest}"


def changed_since(batch: BatchComparison, shown: Shown) -> Callable[[], bool]:
    """A check that is true once the page showing `shown` is out of date: the SQL is built once,
    each check is one query (the ORM's compiling would be most of a held request's CPU)."""
    cells = BatchCell.objects.filter(batch_id=OuterRef("pk"), state=BatchCell.State.RUNNING)
    runs = Run.objects.filter(
        pk__in=shown.run_ids or [0], status=Run.Status.PENDING, batch_comparison_id=OuterRef("pk")
    )
    newest = Run.objects.filter(batch_comparison_id=OuterRef("pk")).order_by("-id").values("id")[:1]
    state = BatchComparison.objects.filter(pk=batch.pk).annotate(
        running=_count(cells.values("batch_id")),
        pending=_count(runs.values("batch_comparison_id")),
        newest=Coalesce(Subquery(newest, output_field=IntegerField()), Value(0)),
    )
    sql, params = state.values_list("status", "running", "pending", "newest").query.sql_with_params()

    def changed() -> bool:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        if row is None:  # the batch was deleted: the page's answer says so
            return True
        status, running, pending, newest = row
        moved = status != shown.status or running != shown.running or newest != shown.newest
        return moved or pending < len(shown.run_ids)

    return changed


def _count(grouped):
    counted = grouped.order_by().annotate(n=Count("*")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


@dataclass(frozen=True)
class ShownRow:
    case_id: int
    shown: str  # as MatrixRow.shown


def shown_rows(get) -> dict[int, str]:
    """The rows the page shows with an unfinished cell: {case id: its cells' state letters}."""
    found = {}
    for value in get.getlist("r")[:PER_PAGE]:
        case, _, letters = value.partition(".")
        if (pk := plain_int(case)) is not None and letters:
            found[pk] = letters[:MAX_ROW_CELLS]
    return found


def changed_cells(
    batch: BatchComparison, columns: list[BatchColumn], shown: dict[int, str]
) -> tuple[list[MatrixCell], list[ShownRow]]:
    """Of the rows the page shows, the cells whose state moved on and the rows' letters now: one
    query for the rows' states (by the batch-and-case index), one for the cells to draw."""
    watched = [pk for pk, letters in shown.items() if set(letters) & UNFINISHED_LETTERS]
    if not watched:
        return [], []
    number = {c.pk: n for n, c in enumerate(columns, 1)}
    by_case: dict[int, list[tuple[int, int, int, str]]] = defaultdict(list)
    states = BatchCell.objects.filter(batch=batch, case_id__in=watched).order_by()
    for pk, case_id, column_id, repeat, state in states.values_list("pk", "case_id", "column_id", "repeat", "state"):
        by_case[case_id].append((number[column_id], repeat, pk, state))
    moved: list[int] = []
    rows = []
    for case_id, found in by_case.items():
        found.sort()  # the matrix's order: columns, then repeats
        letters, before = "".join(state[:1] for *_, state in found), shown[case_id]
        if letters != before:
            moved += [pk for n, (*_, pk, state) in enumerate(found) if before[n : n + 1] != state[:1]]
            rows.append(ShownRow(case_id, shown_states(case_id, [state for *_, state in found])))
    drawn = cells(batch).filter(pk__in=moved).values_list(*MatrixCell.FIELDS, "case__position")
    changed = []
    for *values, case_position in drawn:
        cell = MatrixCell(*values)
        cell.label(case_position or 0, number[cell.column_id])
        changed.append(cell)
    return changed, rows
