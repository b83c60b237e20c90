"""Reading a batch comparison: progress per column, the summary row, the results matrix, export rows.

The page's first load stays within a few queries whatever the batch's size: progress and the
summary are one GROUP BY each, latency percentiles one ordered read of a float column, and the
matrix one page of case ids plus the cells of those cases.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.db.models import (
    Avg,
    Case,
    Count,
    Exists,
    F,
    FloatField,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Length, NullIf, Substr
from django.utils import timezone

from prompts_app import pricing
from prompts_app.models import BatchCell, BatchColumn, BatchComparison, BatchSettings, Run, Workspace
from prompts_app.plain_int import plain_int

PER_PAGE = 25
SUMMARY_CACHE_SECONDS = 7 * 24 * 3600


def soft_budget(workspace: Workspace) -> int | None:
    return BatchSettings.objects.filter(workspace=workspace).values_list("soft_budget_nano", flat=True).first()


@dataclass
class ColumnProgress:
    column: BatchColumn
    done: int = 0
    failed: int = 0
    running: int = 0
    left: int = 0

    @property
    def total(self) -> int:
        return self.done + self.failed + self.running + self.left

    @property
    def percent(self) -> int:
        return round(100 * (self.done + self.failed) / self.total) if self.total else 0


@dataclass
class Progress:
    columns: list[ColumnProgress]
    elapsed_seconds: float
    finished: int
    total: int

    @property
    def calls_per_second(self) -> float:
        return self.finished / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    @property
    def failed(self) -> int:
        return sum(i.failed for i in self.columns)

    @property
    def running(self) -> int:
        return sum(i.running for i in self.columns)

    @property
    def left(self) -> int:
        return sum(i.left for i in self.columns)

    def failed_to_run_again(self, status: str) -> int:
        """The failed cells a person may queue again (services.batches.run_failed_again): on a
        finished or cancelled batch with nothing in flight."""
        ended = status in (BatchComparison.Status.DONE, BatchComparison.Status.CANCELLED)
        return self.failed if ended and not self.running else 0

    def unsent_to_send(self, status: str) -> int:
        """The cells a cancelled batch never sent, which run_failed_again sends too (each once)."""
        return self.left if status == BatchComparison.Status.CANCELLED and not self.running else 0


def batch_list(user, limit: int = 100) -> QuerySet[BatchComparison]:
    """The newest batches of the user's workspaces, each with its failed cells counted (`failed_cells`,
    None for none: "Done" alone hid them, new-user trial), through the cells' (batch, state) index."""
    failed = BatchCell.objects.filter(batch=OuterRef("pk"), state=BatchCell.State.FAILED).values("batch")
    failed = failed.annotate(n=Count("pk")).values("n")
    return (
        BatchComparison.objects.filter(workspace__memberships__user=user)
        .select_related("workspace", "test_set")
        .annotate(failed_cells=Subquery(failed, output_field=IntegerField()))[:limit]
    )


def batches_per_case(case_ids: list[int]) -> dict[int, int]:
    """How many batch comparisons ran each of these test cases (one query): deleting one changes them."""
    rows = (
        BatchCell.objects.filter(case_id__in=case_ids)
        .values("case_id")
        .annotate(n=Count("batch_id", distinct=True))
        .values_list("case_id", "n")
        .order_by()
    )
    return dict(rows)


def interrupted(batch: BatchComparison) -> int:
    """Failed cells whose run was interrupted: sent, or about to be, when its worker stopped, so
    Maxim may have answered (and charged) it; running it again may cost a second time."""
    return batch.cells.filter(state=BatchCell.State.FAILED, run__status=Run.Status.INTERRUPTED).count()


def progress(batch: BatchComparison, columns: list[BatchColumn]) -> Progress:
    counts = batch.cells.values_list("column_id", "state").annotate(n=Count("id")).order_by()
    return _progress(batch, columns, counts)


def _progress(batch: BatchComparison, columns: list[BatchColumn], counts) -> Progress:
    by_id = {c.pk: ColumnProgress(c) for c in columns}
    names = {
        BatchCell.State.SUCCESS: "done",
        BatchCell.State.FAILED: "failed",
        BatchCell.State.RUNNING: "running",
        BatchCell.State.QUEUED: "left",
    }
    for column_id, state, n in counts:
        item = by_id[column_id]
        setattr(item, names[state], getattr(item, names[state]) + n)
    items = list(by_id.values())
    finished = sum(i.done + i.failed for i in items)
    return Progress(items, batch.elapsed_seconds(timezone.now()), finished, sum(i.total for i in items))


@dataclass
class ColumnSummary:
    column: BatchColumn
    runs: int = 0
    passed: int = 0
    checked: int = 0
    failures: int = 0
    cost_nano: int = 0
    priced_runs: int = 0
    # Answered runs with no known price: "unpriced", never $0. A run that failed (Maxim refused it,
    # or it was interrupted) is neither priced nor unpriced, as in Costs (services/rollups.py).
    unpriced: int = 0
    tokens: int = 0
    latencies: list[float] = field(default_factory=list)

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.checked if self.checked else None

    @property
    def cost_per_1000_nano(self) -> int | None:
        return round(self.cost_nano * 1000 / self.priced_runs) if self.priced_runs else None

    def percentile(self, share: float) -> float | None:
        if not self.latencies:
            return None
        return self.latencies[min(len(self.latencies) - 1, math.ceil(share * len(self.latencies)) - 1)]

    @property
    def p50(self) -> float | None:
        return self.percentile(0.5)

    @property
    def p95(self) -> float | None:
        return self.percentile(0.95)


def progress_and_summary(
    batch: BatchComparison, columns: list[BatchColumn], *, pushed: bool = False
) -> tuple[Progress, list[ColumnSummary]]:
    """Both from one GROUP BY (column, state), plus one ordered read of latencies. A finished
    batch's figures never change: they are computed once and kept (bench/bench_matrix.py: the
    two reads took ~250 ms of CPU at 10,000 x 4 cells, most of a first page's budget)."""
    if pushed and batch.status == BatchComparison.Status.RUNNING:
        return _running(batch, columns)
    if batch.status != BatchComparison.Status.DONE or batch.finished_at is None:
        return _progress_and_summary(batch, columns)
    # Ids are not reused, but a test database's are (rolled back): the times make the key unique.
    key = f"batch-summary:v1:{batch.pk}:{batch.created_at.timestamp()}:{batch.finished_at.timestamp()}"
    found = cache.get(key)
    if found is None or [s.column.pk for s in found[1]] != [c.pk for c in columns]:
        found = _progress_and_summary(batch, columns)
        cache.set(key, (found[0], found[1]), SUMMARY_CACHE_SECONDS)
    progress, summary = found
    for item, column in zip(summary, columns, strict=True):
        item.column = column
    progress.columns = [replace(p, column=c) for p, c in zip(progress.columns, columns, strict=True)]
    return progress, summary


# A running batch's page is pushed on every stored cell, by each page watching it: the pushed
# summary is recomputed at most this often per process (a page load always reads it anew) (~110-190 ms CPU at 10,000 x 4 cells), its progress
# (one GROUP BY on an index, no runs) every time. The summary is reused as is while the progress
# counters are those it was computed with: no cell finished since.
SUMMARY_EVERY_SECONDS = 1.0
_running_summaries: dict[tuple, tuple[float, list, list[ColumnSummary]]] = {}
_running_lock = threading.Lock()


def _running(batch: BatchComparison, columns: list[BatchColumn]) -> tuple[Progress, list[ColumnSummary]]:
    counts = list(batch.cells.values_list("column_id", "state").annotate(n=Count("id")).order_by("column_id", "state"))
    with _running_lock:
        at, seen, summary = _running_summaries.get(key := (batch.pk, batch.created_at), (0.0, None, []))
    fresh = time.monotonic() - at < SUMMARY_EVERY_SECONDS
    if (seen == counts or fresh) and [s.column.pk for s in summary] == [c.pk for c in columns]:
        return _progress(batch, columns, counts), summary
    progress, summary = _progress_and_summary(batch, columns)
    with _running_lock:
        if len(_running_summaries) > 100:  # batches that stopped running: forget them
            _running_summaries.clear()
        _running_summaries[key] = (time.monotonic(), counts, summary)
    return progress, summary


def _progress_and_summary(batch: BatchComparison, columns: list[BatchColumn]) -> tuple[Progress, list[ColumnSummary]]:
    by_id = {c.pk: ColumnSummary(c) for c in columns}
    rows = (
        batch.cells.values("column_id", "state")
        .order_by()
        .annotate(
            n_cells=Count("id"),
            n_passed=Count("id", filter=Q(passed=True)),
            n_checked=Count("id", filter=Q(passed__isnull=False)),
            cost_sum=Sum("run__cost_nano"),
            n_priced=Count("id", filter=Q(run__cost_nano__isnull=False)),
            tokens_sum=Sum("run__total_tokens"),
        )
    )
    counts = []
    for row in rows:
        counts.append((row["column_id"], row["state"], row["n_cells"]))
        if row["state"] not in (BatchCell.State.SUCCESS, BatchCell.State.FAILED):
            continue
        item = by_id[row["column_id"]]
        item.runs += row["n_cells"]
        item.failures += row["n_cells"] if row["state"] == BatchCell.State.FAILED else 0
        item.passed += row["n_passed"]
        item.checked += row["n_checked"]
        item.cost_nano += row["cost_sum"] or 0
        item.priced_runs += row["n_priced"]
        if row["state"] == BatchCell.State.SUCCESS:
            item.unpriced += row["n_cells"] - row["n_priced"]
        item.tokens += row["tokens_sum"] or 0
    finished = batch.cells.filter(state__in=[BatchCell.State.SUCCESS, BatchCell.State.FAILED])
    latencies = (
        finished.filter(state=BatchCell.State.SUCCESS, run__latency_ms__isnull=False)
        .order_by("column_id", "run__latency_ms")
        .values_list("column_id", "run__latency_ms")
    )
    for column_id, latency in latencies:
        by_id[column_id].latencies.append(latency)
    return _progress(batch, columns, counts), list(by_id.values())


# A cell shows this much of its output, cut in SQL: outputs can be 100 KB each, and a page
# has 25 cases x 8 columns x 5 repeats of them. The full text is one click away (cell_output).
PREVIEW_CHARS = 600
METRICS = {"cost": "cost", "latency": "latency", "tokens": "tokens", "pass": "pass rate"}
# What the version failed: a check, or a run Maxim answered with an error. A run interrupted by
# the dashboard (a worker killed while it was in flight) says nothing about the version: it is
# neither failing here nor passing (the pass rate leaves it out too).
FAILING = Q(passed=False) | (Q(state=BatchCell.State.FAILED) & ~Q(run__status=Run.Status.INTERRUPTED))


@dataclass(frozen=True)
class MatrixQuery:
    """What the person asked the matrix for, as it is in the URL (column numbers are 1-based)."""

    failed_only: bool = False
    differ: bool = False
    search: str = ""
    regressed: int | None = None  # fails in this column (0: any) and passes in the baseline
    baseline: int = 1
    sort_column: int | None = None
    sort_metric: str = ""
    descending: bool = False

    @classmethod
    def from_query(cls, get, n_columns: int) -> MatrixQuery:
        def number(name: str, low: int) -> int | None:
            value = get.get(name, "")
            number = plain_int(value, max_digits=2)
            return number if number is not None and low <= number <= n_columns else None

        column, _, metric = get.get("sort", "").partition(".")
        sort_column = plain_int(column, max_digits=2)
        sort_column = sort_column if sort_column is not None and 1 <= sort_column <= n_columns else None
        return cls(
            failed_only=get.get("failed") == "1",
            differ=get.get("differ") == "1",
            search=get.get("q", "").strip()[:200],
            regressed=number("regressed", 0),
            baseline=number("baseline", 1) or 1,
            sort_column=sort_column if metric in METRICS else None,
            sort_metric=metric if metric in METRICS and sort_column else "",
            descending=get.get("order") == "desc",
        )

    @property
    def sort(self) -> str:
        return f"{self.sort_column}.{self.sort_metric}" if self.sort_column else ""


@dataclass
class MatrixRow:
    case_id: int
    position: int
    variables: dict
    expected: str
    cells: list[list[MatrixCell]]  # per column, its repeats
    # While a cell is unfinished, "<case id>.<each cell's state's first letter>" (columns, then
    # repeats): the page's held request sends it (selectors.batch_watch), "" once all are finished.
    shown: str = ""


def _metric(batch: BatchComparison, column: BatchColumn, metric: str):
    """One case's value of `metric` in `column` (the mean over its repeats), as a subquery."""
    cells = batch.cells.filter(column=column, case_id=OuterRef("pk")).values("case_id").order_by()
    value = {
        "cost": Avg("run__cost_nano"),
        "latency": Avg("run__latency_ms"),
        "tokens": Avg("run__total_tokens"),
        "pass": Avg(
            Case(When(passed=True, then=1.0), When(FAILING, then=0.0), default=None, output_field=FloatField())
        ),
    }[metric]
    return Subquery(cells.annotate(v=value).values("v")[:1])


def _regressed(batch: BatchComparison, columns: list[BatchColumn], query: MatrixQuery):
    """Cases failing in the chosen column (any column but the baseline for 0) whose baseline
    cells all finished passing: what a new version broke."""
    baseline = columns[query.baseline - 1]
    here = batch.cells.filter(case_id=OuterRef("pk")).filter(FAILING)
    here = here.exclude(column=baseline) if query.regressed == 0 else here.filter(column=columns[query.regressed - 1])
    base = batch.cells.filter(case_id=OuterRef("pk"), column=baseline)
    return Exists(here) & Exists(base.filter(passed=True)) & ~Exists(base.filter(FAILING))


def matrix_page(
    batch: BatchComparison, columns: list[BatchColumn], query: MatrixQuery, *, page: str | int | None = 1
) -> tuple[Page, list[MatrixRow]]:
    """One page of cases (rows), filtered and sorted, with every column's cells (outputs cut to
    PREVIEW_CHARS in SQL)."""
    # EXISTS per case, not IN (all the batch's case ids): page 1 checks 25 cases, not 10,000.
    cases = batch.test_set.cases.filter(Exists(batch.cells.filter(case_id=OuterRef("pk"))))
    filtered = query.failed_only or query.regressed is not None or query.differ or query.search
    if query.failed_only:
        cases = cases.filter(Exists(batch.cells.filter(case_id=OuterRef("pk")).filter(FAILING)))
    if query.regressed is not None:
        cases = cases.filter(_regressed(batch, columns, query))
    if query.differ:
        differing = (
            batch.cells.filter(state=BatchCell.State.SUCCESS)
            .values("case_id")
            .order_by()
            .annotate(outputs=Count("run__output_text", distinct=True))
            .filter(outputs__gt=1)
            .values("case_id")
        )
        cases = cases.filter(pk__in=differing)
    if query.search:
        found = Q(run__output_text__icontains=query.search) | Q(run__error__icontains=query.search)
        matching = batch.cells.filter(found | Q(error__icontains=query.search)).values("case_id")
        search = query.search
        cases = cases.filter(Q(pk__in=matching) | Q(variables__icontains=search) | Q(expected_output__icontains=search))
    order = ["position", "id"]  # ties keep the test set's order, so pages never overlap
    if query.sort_column:
        cases = cases.annotate(metric=_metric(batch, columns[query.sort_column - 1], query.sort_metric))
        by = F("metric").desc(nulls_last=True) if query.descending else F("metric").asc(nulls_last=True)
        order = [by, *order]
    cases = cases.order_by(*order).only("pk", "test_set_id", "position", "variables", "expected_output")
    paginator = Paginator(cases, PER_PAGE)
    if not filtered and columns:  # every case of the batch has a cell per column and repeat
        paginator.count = batch.total_cells // (len(columns) * batch.repeats)
    page_obj = paginator.get_page(page)
    case_list = list(page_obj.object_list)
    position = {c.pk: n for n, c in enumerate(columns)}
    numbers = {c.pk: c.position for c in case_list}
    grid: dict[int, list[list[MatrixCell]]] = defaultdict(lambda: [[] for _ in columns])
    found = cells(batch).filter(case_id__in=list(numbers)).order_by("repeat").values_list(*MatrixCell.FIELDS)
    for values in found:
        cell = MatrixCell(*values)
        cell.label(numbers[cell.case_id], position[cell.column_id] + 1)
        grid[cell.case_id][position[cell.column_id]].append(cell)
    rows = [MatrixRow(c.pk, c.position, c.variables, c.expected_output, grid[c.pk]) for c in case_list]
    for row in rows:
        row.shown = shown_states(row.case_id, [cell.state for repeats in row.cells for cell in repeats])
    return page_obj, rows


def shown_states(case_id: int, states: list[str]) -> str:
    """What a row tells the page's held request: its case and its cells' states, one letter each
    (about 50 characters for 40 cells, so a page's 25 rows stay within a short request line)."""
    letters = "".join(state[:1] for state in states)
    return f"{case_id}.{letters}" if any(state in MatrixCell.UNFINISHED for state in states) else ""


def cells(batch: BatchComparison):
    """A batch's cells with their runs' figures and the head of their outputs: never a whole output."""
    return (
        BatchCell.objects.filter(batch=batch)
        .select_related("run")
        .defer("run__request_body", "run__input", "run__input_text", "run__output", "run__output_text", "run__error")
        .annotate(
            output_head=Substr(Coalesce(NullIf("run__output_text", Value("")), "run__error"), 1, PREVIEW_CHARS),
            output_chars=Length(Coalesce(NullIf("run__output_text", Value("")), "run__error")),
        )
    )


@dataclass(slots=True)
class MatrixCell:
    """A cell as the matrix draws it: read as plain values (model instances with a related run
    took a third of the page's time), with its name, size and figures formatted once."""

    FIELDS = ("pk", "column_id", "case_id", "run_id", "state", "passed", "error", "check_results")
    FIELDS += ("output_head", "output_chars", "run__total_tokens", "run__cost_nano", "run__latency_ms")
    UNFINISHED = (BatchCell.State.QUEUED, BatchCell.State.RUNNING)

    pk: int
    column_id: int
    case_id: int
    run_id: int | None
    state: str
    passed: bool | None
    error: str
    check_results: list
    output_head: str | None
    output_chars: int | None
    tokens: int | None
    cost_nano: int | None
    latency_ms: float | None
    name: str = ""
    long: bool = False
    chars: str = ""
    figures: str = ""  # tokens; the cost and latency follow in the template
    cost_shown: str = ""  # rounded, as every page shows money
    cost_exact: str = ""  # every nano-dollar, on hover and focus and for screen readers ("" if unpriced)
    latency: str = ""
    state_label: str = ""

    def label(self, case_position: int, column_number: int) -> None:
        label_cell(self, case_position, column_number)
        self.state_label = BatchCell.State(self.state).label
        if self.run_id is not None:
            self.figures = f"{self.tokens or 0:,} tokens"
            self.cost_shown = pricing.format_usd(self.cost_nano)
            self.cost_exact = "" if self.cost_nano is None else pricing.usd_text(self.cost_nano)
            self.latency = "" if self.latency_ms is None else f" · {self.latency_ms:.0f} ms"


def label_cell(cell, case_position: int, column_number: int) -> None:
    """What the page writes about a cell (a MatrixCell, or a BatchCell from cells()), formatted
    here once, not by template filters: its name and its output's size."""
    cell.name = f"case #{case_position}, column {column_number}"
    cell.long = (cell.output_chars or 0) > PREVIEW_CHARS
    cell.chars = f"{cell.output_chars or 0:,}"


def cell_output(cell: BatchCell) -> str:
    """A cell's whole output (or its run's error), read when a person asks for it."""
    if cell.run_id is None:
        return cell.error
    text, error = Run.objects.filter(pk=cell.run_id).values_list("output_text", "error").get()
    return text or error


def baseline_cell(cell: BatchCell, baseline: BatchColumn) -> BatchCell | None:
    """The baseline column's cell for the same case and repeat."""
    return BatchCell.objects.filter(
        batch_id=cell.batch_id, column=baseline, case_id=cell.case_id, repeat=cell.repeat
    ).first()


EXPORT_FIELDS = [
    "case",
    "column",
    "label",
    "repeat",
    "state",
    "output",
    "passed",
    "checks",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "latency_ms",
    "error",
    "variables",
    "expected_output",
]


def export_rows(batch: BatchComparison) -> Iterator[dict]:
    """Every cell as a flat dict, case by case; read in chunks so a large batch streams."""
    labels = {c.pk: (c.position, c.label) for c in batch.columns.all()}
    cells = (
        batch.cells.select_related("run", "case")
        .defer("run__request_body", "run__input", "run__output")
        .order_by("case__position", "case_id", "column__position", "repeat")
    )
    for cell in cells.iterator(chunk_size=1000):
        run: Run | None = cell.run
        position, label = labels[cell.column_id]
        yield {
            "case": cell.case.position if cell.case else "",  # "": the case was deleted
            "column": position,
            "label": label,
            "repeat": cell.repeat,
            "state": cell.state,
            "output": run.output_text if run else "",
            "passed": "" if cell.passed is None else ("yes" if cell.passed else "no"),
            "checks": "; ".join(
                f"{'pass' if r['passed'] else 'FAIL'} {r['name']}: {r['reason']}" for r in cell.check_results
            ),
            "prompt_tokens": run.prompt_tokens if run else "",
            "completion_tokens": run.completion_tokens if run else "",
            "cost_usd": "" if not run or run.cost_nano is None else pricing.usd_text(run.cost_nano),
            "latency_ms": "" if not run or run.latency_ms is None else round(run.latency_ms),
            "error": (run.error if run else cell.error),
            "variables": cell.case.variables if cell.case else {},
            "expected_output": cell.case.expected_output if cell.case else "",
        }
