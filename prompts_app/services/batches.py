"""Batch comparisons: 1-8 columns (versions or draft snapshots) over a test set, x1-5 repeats.

What a batch is: one BatchComparison row, its BatchColumns, and one BatchCell per
(column, case, repeat), created when the batch starts (in chunks, at most MAX_CELLS; the batch is
PREPARING, which no worker claims, until the last chunk is in). Each cell becomes one
ordinary Run when a worker claims it (services/batch_worker.py), so recording, pricing,
history totals and the exactly-once rules of services/runs.py apply to every cell.

This module starts, estimates, pauses, resumes and cancels; the worker sends.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import islice
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from prompts_app import checks as checks_module
from prompts_app.models import (
    BatchCell,
    BatchColumn,
    BatchComparison,
    BatchSettings,
    PromptVersion,
    TestCase,
    TestSet,
    Workspace,
)
from prompts_app.run_input import InputTooLarge
from prompts_app.selectors.batches import soft_budget
from prompts_app.services import audit, runs
from prompts_app.services.once import create_once

MAX_COLUMNS, MAX_REPEATS, MAX_CONCURRENCY = 8, 5, 64
# The most cells one batch may have: 10,000 cases x 5 columns. Its matrix, summary and exports
# stay within their targets there; a larger comparison is a filtered part of the test set.
MAX_CELLS = 50_000
# Cells inserted per transaction: SQLite has one writer, and one 100,000-cell transaction held it
# for 29 s (every run, comparison and other batch of the server waited).
CELL_CHUNK = 5_000
ESTIMATE_SAMPLE = 20  # cases tokenised per column; the rest are extrapolated from them
EXPORT_NAMES = {"csv": "CSV", "json": "JSON", "md": "Markdown"}


class BatchError(Exception):
    """A batch that cannot start or change as asked; the message is for the person."""


class NeedsConfirmation(BatchError):
    """Nothing was created: the person must see `preview` (cost, missing variables) and confirm."""

    def __init__(self, preview: Preview) -> None:
        super().__init__("Confirm to start this batch: " + preview.reasons())
        self.preview = preview
        self.estimate, self.budget_nano, self.missing = preview.estimate, preview.budget_nano, preview.missing


class OverBudget(NeedsConfirmation):
    """The estimate is above the workspace's soft budget (or unpriced while there is one)."""


@dataclass(frozen=True)
class ColumnChoice:
    version: PromptVersion
    draft_content: dict[str, Any] | None = None
    label: str = ""


@dataclass(frozen=True)
class Estimate:
    calls: int
    cost_nano: int | None  # input tokens only; None when a column's model has no known price
    unpriced_columns: int
    input_tokens: int
    priced_cost_nano: int = 0  # the priced columns' part, shown beside the unpriced ones, never as $0
    cases: int = 0
    columns: int = 0
    repeats: int = 1


@dataclass(frozen=True)
class MissingVariable:
    """A `{{variable}}` a column's messages use that some cases have no value for (sent as typed)."""

    label: str
    variable: str
    cases: int
    total: int


@dataclass(frozen=True)
class Preview:
    """What a person sees before starting: calls and cost, the budget, the variables cases lack."""

    estimate: Estimate
    budget_nano: int | None
    missing: list[MissingVariable]

    @property
    def over_budget(self) -> bool:
        cost = self.estimate.cost_nano
        return self.budget_nano is not None and (cost is None or cost > self.budget_nano)

    @property
    def too_many(self) -> bool:
        return self.estimate.calls > MAX_CELLS

    @property
    def max_cells(self) -> int:
        return MAX_CELLS

    def reasons(self) -> str:
        said = ["it may cost more than the soft budget"] if self.over_budget else []
        said += [f"{m.label} uses {{{{{m.variable}}}}}, missing in {m.cases} of {m.total}" for m in self.missing]
        return "; ".join(said) + "."


def column_label(choice: ColumnChoice) -> str:
    return (choice.label or str(choice.version))[:300]


def cases_for(test_set: TestSet, case_filter: str = ""):
    cases = test_set.cases.all()
    if case_filter:
        cases = cases.filter(Q(variables__icontains=case_filter) | Q(expected_output__icontains=case_filter))
    return cases


def case_inputs(case: TestCase) -> dict[str, Any]:
    return {"turns": case.turns or [], "variables": case.variables or {}}


def estimate(*, columns: list[ColumnChoice], test_set: TestSet, case_filter: str = "", repeats: int = 1) -> Estimate:
    """Number of calls and the input cost, from a sample of cases per column (output tokens are
    not known before the run, so the real cost is higher; the page says so)."""
    cases = cases_for(test_set, case_filter).order_by("position", "id")
    count = cases.count()  # not the cases themselves: 10,000 of them took a second to load
    sample = list(cases[:ESTIMATE_SAMPLE])
    total_cost, total_tokens, unpriced = 0, 0, 0
    for choice in columns:
        version = _as_version(choice)
        tokens, cost, priced = 0, 0, True
        for case in sample:
            try:
                case_tokens, price = runs.estimate(version=version, inputs=case_inputs(case))
            except InputTooLarge:
                continue
            tokens += case_tokens
            if price.cost_nano is None:
                priced = False
            else:
                cost += price.cost_nano
        scale = count / len(sample) if sample else 0
        total_tokens += round(tokens * scale) * repeats
        if priced:
            total_cost += round(cost * scale) * repeats
        else:
            unpriced += 1
    calls = count * len(columns) * repeats
    cost = None if unpriced else total_cost
    return Estimate(calls, cost, unpriced, total_tokens, total_cost, count, len(columns), repeats)


def missing_variables(
    *, columns: list[ColumnChoice], test_set: TestSet, case_filter: str = ""
) -> list[MissingVariable]:
    """Per column, each `{{variable}}` of its messages that some cases have no value for."""
    used = [(column_label(choice), _as_version(choice).variables()) for choice in columns]
    names = {name for _, found in used for name in found}
    lacking: Counter[str] = Counter()
    total = 0
    if names:
        for variables in cases_for(test_set, case_filter).values_list("variables", flat=True).iterator(2000):
            total += 1
            lacking.update(name for name in names if (variables or {}).get(name) is None)
    return [
        MissingVariable(label, name, lacking[name], total) for label, found in used for name in found if lacking[name]
    ]


def preview(
    *, workspace: Workspace, columns: list[ColumnChoice], test_set: TestSet, case_filter: str = "", repeats: int = 1
) -> Preview:
    return Preview(
        estimate(columns=columns, test_set=test_set, case_filter=case_filter, repeats=repeats),
        soft_budget(workspace),  # a read: the estimate is a GET
        missing_variables(columns=columns, test_set=test_set, case_filter=case_filter),
    )


def _as_version(choice: ColumnChoice) -> PromptVersion:
    """A draft snapshot estimated as if it were its base version's content (never saved)."""
    if choice.draft_content is None:
        return choice.version
    base = choice.version
    fields = {
        key: choice.draft_content.get(key, getattr(base, key))
        for key in ("provider", "model_name", "model_parameters", "messages", "tools")
    }
    return PromptVersion(prompt=base.prompt, maxim_id=base.maxim_id, number=base.number, **fields)


def settings_for(workspace: Workspace) -> BatchSettings:
    found, _ = BatchSettings.objects.get_or_create(workspace=workspace)
    return found


def set_soft_budget(*, workspace: Workspace, budget_nano: int | None) -> BatchSettings:
    found = settings_for(workspace)
    found.soft_budget_nano = budget_nano
    found.save(update_fields=["soft_budget_nano"])
    return found


def start_batch(
    *,
    workspace: Workspace,
    test_set: TestSet,
    columns: list[ColumnChoice],
    user: AbstractBaseUser,
    repeats: int = 1,
    concurrency: int = 4,
    checks: list[dict[str, Any]] | None = None,
    case_filter: str = "",
    title: str = "",
    confirmed: bool = False,
    submit_token: str = "",
) -> BatchComparison:
    """Create the batch and all its cells, then hand it to a worker.

    Raises BatchError for a batch that cannot run; NeedsConfirmation (OverBudget when the estimate
    is above the workspace's soft budget) when `confirmed` is False and the person has something
    to see first (nothing is created then). The same form posted again (same `submit_token`)
    returns the batch the first post started.
    """
    checks = checks or []
    _validate(workspace, test_set, columns, repeats, concurrency)
    checks_module.build_checks(checks)  # raises CheckConfigError with every problem

    def create() -> BatchComparison:
        seen = preview(
            workspace=workspace, columns=columns, test_set=test_set, case_filter=case_filter, repeats=repeats
        )
        _check_size(seen.estimate)
        if not confirmed and seen.over_budget:
            raise OverBudget(seen)
        if not confirmed and seen.missing:
            raise NeedsConfirmation(seen)
        batch = BatchComparison.objects.create(
            workspace=workspace,
            test_set=test_set,
            title=title[:300],
            case_filter=case_filter,
            repeats=repeats,
            concurrency=concurrency,
            current_limit=concurrency,
            checks=checks,
            created_by=user,
            status=BatchComparison.Status.PREPARING,
            total_cells=seen.estimate.calls,
            estimated_cost_nano=seen.estimate.cost_nano,
            submit_token=submit_token,
        )
        BatchColumn.objects.bulk_create(
            BatchColumn(
                batch=batch, position=n, version=c.version, draft_content=c.draft_content, label=column_label(c)
            )
            for n, c in enumerate(columns, 1)
        )
        return batch

    lookup = {"created_by": user, "submit_token": submit_token}
    batch, created = create_once(BatchComparison, submit_token, lookup, create)
    if created:
        _add_cells(batch)
    return batch


def _check_size(guess: Estimate) -> None:
    if not guess.cases:
        raise BatchError("No test cases match: add cases or change the filter.")
    if guess.calls > MAX_CELLS:
        raise BatchError(
            f"This batch would have {guess.calls:,} cells; one batch may have at most {MAX_CELLS:,}. "
            "Choose fewer versions or repeats, or only cases containing some text."
        )


def _add_cells(batch: BatchComparison) -> None:
    """Insert every cell, CELL_CHUNK per transaction, then let workers claim them (RUNNING).

    Case by case, so the first rows of the matrix fill first. A failure removes the batch: a
    half-made one must not run. (A process killed here leaves a PREPARING batch no worker runs.)
    """
    column_ids = list(batch.columns.values_list("pk", flat=True))  # in position order
    case_ids = list(
        cases_for(batch.test_set, batch.case_filter).order_by("position", "id").values_list("pk", flat=True)
    )
    keys = (
        (batch.pk, column, case, repeat)
        for case in case_ids
        for repeat in range(1, batch.repeats + 1)
        for column in column_ids
    )
    made = 0
    try:
        while chunk := list(islice(keys, CELL_CHUNK)):
            _insert_cells(batch, chunk)
            made += len(chunk)
        with transaction.atomic():
            now = timezone.now()
            BatchComparison.objects.filter(pk=batch.pk).update(
                status=BatchComparison.Status.RUNNING, resumed_at=now, total_cells=made
            )
            transaction.on_commit(lambda: enqueue(batch))
    except Exception:
        batch.delete()
        raise
    batch.status, batch.resumed_at, batch.total_cells = BatchComparison.Status.RUNNING, now, made


_CELL_COLUMNS = ("batch_id", "column_id", "case_id", "repeat", "state", "attempts", "error", "check_results", "passed")


def _insert_cells(batch: BatchComparison, keys: list[tuple[int, int, int, int]]) -> None:
    # One executemany of plain tuples: bulk_create spent ~150 us of CPU per cell building and
    # preparing 11 fields of a model instance (7 s for 10,000 x 4); the values here are constant
    # but for the key, prepared once by their fields (the JSON list as this database wants it).
    fields = {f.column: f for f in BatchCell._meta.concrete_fields}
    constant = [BatchCell.State.QUEUED, 0, "", [], None]
    prepared = tuple(fields[c].get_db_prep_save(v, connection) for c, v in zip(_CELL_COLUMNS[4:], constant))
    quote = connection.ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES ({})".format(
        quote(BatchCell._meta.db_table), ", ".join(map(quote, _CELL_COLUMNS)), ", ".join(["%s"] * len(_CELL_COLUMNS))
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(sql, [key + prepared for key in keys])


def record_export(batch: BatchComparison, *, user: AbstractBaseUser, fmt: str) -> None:
    """An export of a batch's cells, in the audit trail like an export of run history."""
    audit.record(
        batch.workspace,
        actor=user,
        action=audit.Action.BATCH_EXPORTED,
        target=f"{batch} as {EXPORT_NAMES[fmt]}",
        detail={"batch": batch.pk},
    )


def _validate(workspace, test_set, columns, repeats, concurrency) -> None:
    if test_set.workspace_id != workspace.pk:
        raise BatchError("That test set is not in this workspace.")
    if not 1 <= len(columns) <= MAX_COLUMNS:
        raise BatchError(f"Choose 1 to {MAX_COLUMNS} versions or drafts.")
    if any(choice.version.prompt.workspace_id != workspace.pk for choice in columns):
        raise BatchError("Every version must be in this workspace.")
    if not 1 <= repeats <= MAX_REPEATS:
        raise BatchError(f"Repeats must be 1 to {MAX_REPEATS}.")
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise BatchError(f"Concurrency must be 1 to {MAX_CONCURRENCY}.")


def enqueue(batch: BatchComparison) -> None:
    from django.conf import settings

    from prompts_app.tasks import run_batch  # tasks import this module

    run_batch.using(backend=getattr(settings, "MAXIMUI_BATCH_TASK_BACKEND", "default")).enqueue(batch.pk)


def pause(batch: BatchComparison) -> BatchComparison:
    """Stop claiming cells; the ones already with Maxim finish and are stored."""
    return _change(batch, BatchComparison.Status.PAUSED, allowed={BatchComparison.Status.RUNNING})


def cancel(batch: BatchComparison) -> BatchComparison:
    """Never send the cells left; finished cells stay, results and costs included."""
    statuses = BatchComparison.Status
    return _change(batch, statuses.CANCELLED, allowed={statuses.RUNNING, statuses.PAUSED})


def resume(batch: BatchComparison) -> BatchComparison:
    batch = _change(batch, BatchComparison.Status.RUNNING, allowed={BatchComparison.Status.PAUSED})
    transaction.on_commit(lambda: enqueue(batch))
    return batch


def _change(batch: BatchComparison, status: str, *, allowed: set[str]) -> BatchComparison:
    with transaction.atomic():
        locked = BatchComparison.objects.select_for_update().get(pk=batch.pk)
        if locked.status not in allowed:
            raise BatchError(f"This batch is {locked.get_status_display().lower()}; it cannot be changed that way.")
        now = timezone.now()
        if locked.status == BatchComparison.Status.RUNNING:
            locked.active_seconds = locked.elapsed_seconds(now)
        locked.resumed_at = now if status == BatchComparison.Status.RUNNING else None
        locked.status = status
        if status == BatchComparison.Status.CANCELLED:
            locked.finished_at = now
        locked.save(update_fields=["status", "active_seconds", "resumed_at", "finished_at"])
    return locked
