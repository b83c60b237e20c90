"""Batch comparisons: 1-8 columns (versions or draft snapshots) over a test set, x1-5 repeats.

What a batch is: one BatchComparison row, its BatchColumns, and one BatchCell per
(column, case, repeat), created when the batch starts (in chunks, at most MAX_CELLS; the batch is
PREPARING, which no worker claims, until the last chunk is in). Each cell becomes one
ordinary Run when a worker claims it (services/batch_worker.py), so recording, pricing,
history totals and the exactly-once rules of services/runs.py apply to every cell.

This module starts, pauses, resumes and cancels; batch_preview.py estimates; the worker sends.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone
from django.utils.timesince import timesince

from prompts_app import checks as checks_module
from prompts_app.models import (
    BatchCell,
    BatchColumn,
    BatchComparison,
    BatchSettings,
    Run,
    TestCase,
    TestSet,
    Workspace,
)
from prompts_app.services import audit

# case_inputs and estimate are read from here too (the worker, the tests): they live with the estimate.
from prompts_app.services.batch_preview import (  # noqa: F401
    MAX_CELLS,
    ColumnChoice,
    Estimate,
    Preview,
    case_inputs,
    cases_for,
    column_label,
    confirmation_problem,
    confirmation_token,
    estimate,
    preview,
    settings_key,
    started_twin,
)
from prompts_app.services.once import create_once

log = logging.getLogger(__name__)

MAX_COLUMNS, MAX_REPEATS, MAX_CONCURRENCY = 8, 5, 64
# Cells inserted per transaction: SQLite has one writer, and one 100,000-cell transaction held it
# for 29 s (every run, comparison and other batch of the server waited).
CELL_CHUNK = 5_000
EXPORT_NAMES = {"csv": "CSV", "json": "JSON", "md": "Markdown"}


class BatchError(Exception):
    """A batch that cannot start or change as asked; the message is for the person."""


class NeedsConfirmation(BatchError):
    """Nothing was created: the person must see `preview` (cost, missing variables) and confirm by
    sending `token` back; `changed` says why an earlier confirmation no longer holds ("" if none)."""

    def __init__(self, preview: Preview, token: str = "", changed: str = "") -> None:
        super().__init__(changed or "Confirm to start this batch: " + preview.reasons())
        self.preview, self.token, self.changed = preview, token, changed
        self.estimate, self.budget_nano, self.missing = preview.estimate, preview.budget_nano, preview.missing


class OverBudget(NeedsConfirmation):
    """The estimate is above the workspace's soft budget (or unpriced while there is one)."""


class AlreadyStarted(BatchError):
    """Nothing was created: this person started the same batch a moment ago (or it still runs),
    most likely from another tab; `batch` is that one. Starting it again needs `again`."""

    def __init__(self, batch: BatchComparison) -> None:
        seconds = (timezone.now() - batch.created_at).total_seconds()
        ago = "less than a minute" if seconds < 60 else timesince(batch.created_at)
        super().__init__(f"You already started this batch {ago} ago.")
        self.batch = batch


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
    confirmation: str = "",
    submit_token: str = "",
    again: bool = False,
) -> BatchComparison:
    """Create the batch and all its cells, then hand it to a worker.

    Raises BatchError for a batch that cannot run; NeedsConfirmation (OverBudget when the estimate
    is above the workspace's soft budget) when the person has something to see first and
    `confirmation` is not the token of exactly these figures (nothing is created then). The same
    form posted again (same `submit_token`) returns the batch the first post started; the same
    batch posted from another form (another tab: another token) raises AlreadyStarted unless `again`.
    """
    checks = checks or []
    _validate(workspace, test_set, columns, repeats, concurrency)
    checks_module.build_checks(checks)  # raises CheckConfigError with every problem

    def create() -> BatchComparison:
        # A form's post (it has a submit token) from a second tab; code starting batches gets what it asks.
        twin = started_twin(user, test_set, columns, case_filter, repeats, checks) if submit_token else None
        if twin is not None and not again:
            raise AlreadyStarted(twin)
        seen = preview(
            workspace=workspace, columns=columns, test_set=test_set, case_filter=case_filter, repeats=repeats
        )
        _check_size(seen.estimate)
        if seen.over_budget or seen.missing:
            key = settings_key(test_set, columns, case_filter, repeats, checks, concurrency)
            _confirmed_or_raise(seen, confirmation, settings=key, user_id=user.pk)
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


def _confirmed_or_raise(seen: Preview, confirmation: str, *, settings: str, user_id: int) -> None:
    problem = confirmation_problem(confirmation, seen, settings=settings, user_id=user_id)
    if problem is not None:
        token = confirmation_token(seen, settings=settings, user_id=user_id)
        raise (OverBudget if seen.over_budget else NeedsConfirmation)(seen, token, problem)


PREPARING_GIVE_UP = dt.timedelta(minutes=10)  # the largest batch takes seconds to prepare


def discard_abandoned(now: dt.datetime | None = None) -> int:
    """Delete batches still PREPARING long after they were started: the process making their cells
    died. Nothing of theirs was sent (workers claim no cell of a PREPARING batch), so nothing is lost
    but the half-made cells; the person starts the batch again."""
    cutoff = (now or timezone.now()) - PREPARING_GIVE_UP
    stale = BatchComparison.objects.filter(status=BatchComparison.Status.PREPARING, created_at__lt=cutoff)
    deleted = 0
    for batch in stale.only("pk"):
        log.warning("batch %s was never finished preparing: deleted", batch.pk)
        batch.delete()
        deleted += 1
    return deleted


def _check_size(guess: Estimate) -> None:
    if not guess.cases:
        raise BatchError("No test cases match: add cases or change the filter.")
    if guess.calls > MAX_CELLS:
        raise BatchError(
            f"This batch would have {guess.calls:,} cells; one batch may have at most {MAX_CELLS:,}. "
            "Choose fewer versions or repeats, or only cases containing some text."
        )


def _add_cells(batch: BatchComparison) -> None:
    """Insert every cell, about CELL_CHUNK per transaction, then let workers claim them (RUNNING).

    Case by case, so the first rows of the matrix fill first. A failure removes the batch: a
    half-made one must not run. (A process killed here leaves a PREPARING batch no worker runs.)
    """
    case_ids = list(
        cases_for(batch.test_set, batch.case_filter).order_by("position", "id").values_list("pk", flat=True)
    )
    per_case = batch.columns.count() * batch.repeats
    # The case ids go in the statement: within the database's limit on parameters.
    step = max(1, min(CELL_CHUNK // per_case, (connection.features.max_query_params or 1000) - 10))
    try:
        for start in range(0, len(case_ids), step):
            _insert_cells(batch, case_ids[start : start + step])
        with transaction.atomic():
            now = timezone.now()
            BatchComparison.objects.filter(pk=batch.pk).update(
                status=BatchComparison.Status.RUNNING, resumed_at=now, total_cells=len(case_ids) * per_case
            )
            transaction.on_commit(lambda: enqueue(batch, chains=chains_per_batch()))
    except Exception:
        batch.delete()
        raise
    batch.status, batch.resumed_at, batch.total_cells = BatchComparison.Status.RUNNING, now, len(case_ids) * per_case


def _insert_cells(batch: BatchComparison, case_ids: list[int]) -> None:
    """Every cell of these cases, in one INSERT ... SELECT: the database makes the rows.

    bulk_create spent ~150 us of CPU per cell on model instances (7 s for 10,000 x 4), and
    sending each row's values cost psycopg about as much again in parsing parameters.
    """
    quote = connection.ops.quote_name
    cell, column, case = (quote(m._meta.db_table) for m in (BatchCell, BatchColumn, TestCase))
    fields = {f.column: f for f in BatchCell._meta.concrete_fields}
    constants = {"state": BatchCell.State.QUEUED, "attempts": 0, "error": "", "check_results": []}
    repeats = " UNION ALL ".join(f"SELECT {n} AS n" for n in range(1, batch.repeats + 1))
    sql = (
        f"INSERT INTO {cell} (batch_id, column_id, case_id, {quote('repeat')}, {', '.join(map(quote, constants))}, passed)"
        f" SELECT %s, col.id, tc.id, r.n, {', '.join(['%s'] * len(constants))}, NULL"
        f" FROM {case} tc CROSS JOIN {column} col CROSS JOIN ({repeats}) r"
        f" WHERE col.batch_id = %s AND tc.id IN ({', '.join(['%s'] * len(case_ids))})"
        " ORDER BY tc.position, tc.id, r.n, col.position"
    )
    prepared = [fields[name].get_db_prep_save(value, connection) for name, value in constants.items()]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [batch.pk, *prepared, batch.pk, *case_ids])


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


def enqueue(batch: BatchComparison, *, chains: int = 1) -> None:
    """Hand the batch to `chains` task chains: as many free workers may drive it at once."""
    from django.conf import settings

    from prompts_app.tasks import run_batch  # tasks import this module

    for _ in range(chains):
        run_batch.using(backend=getattr(settings, "MAXIMUI_BATCH_TASK_BACKEND", "default")).enqueue(batch.pk)


def chains_per_batch() -> int:
    """Task chains a batch starts (and resumes) with: how many workers may drive it at once. One chain
    is one worker at a time: a second worker beside `make run`'s joined a batch started from the page
    only through another chain (hostile re-check of #12). MAXIMUI_BATCH_CHAINS, 1 by default: with more
    chains than free workers, the extra ones wait in the queue, and after QUEUE_GRACE the chain that
    sees one waiting ends and leaves the batch to it (batch_liveness.surplus_chain), which also put a
    waiting small batch's task behind a large one's (tests/test_batch_workers.py). A team that runs N
    workers for one batch at a time sets N."""
    from django.conf import settings

    return getattr(settings, "MAXIMUI_BATCH_CHAINS", None) or 1


def pause(batch: BatchComparison) -> BatchComparison:
    """Stop claiming cells; the ones already with Maxim finish and are stored."""
    return _change(batch, BatchComparison.Status.PAUSED, allowed={BatchComparison.Status.RUNNING})


def cancel(batch: BatchComparison) -> BatchComparison:
    """Never send the cells left; finished cells stay, results and costs included. Cells a dead
    worker left "running" are settled now: no drive looks at a cancelled batch again (hostile re-check
    of #12: a killed worker's cells read "Running" on the cancelled batch's page for good)."""
    from prompts_app.services.batch_settle import settle  # it imports this module's neighbours

    statuses = BatchComparison.Status
    cancelled = _change(batch, statuses.CANCELLED, allowed={statuses.RUNNING, statuses.PAUSED})
    settle(cancelled.pk)
    return cancelled


def resume(batch: BatchComparison) -> BatchComparison:
    batch = _change(batch, BatchComparison.Status.RUNNING, allowed={BatchComparison.Status.PAUSED})
    transaction.on_commit(lambda: enqueue(batch, chains=chains_per_batch()))
    return batch


def run_failed_again(batch: BatchComparison) -> int:
    """Queue the failed cells of a finished or cancelled batch again (Maxim errors, 429s given up,
    and "interrupted" ones: their worker died after marking the run started), and run a cancelled
    batch's cells it never sent. Returns how many cells will be sent.

    Only the cells change: each failed one goes back to "left" without a run (the never-sent ones
    are "left" already), and the workers claim and send each once, as any queued cell
    (services/batch_worker.py). The failed runs stay in history, labelled with their batch
    (Run.batch_comparison); the cell shows its newest run. Cells whose test case was deleted stay
    failed: there is nothing to send. A second post (a double click, another tab) finds the batch
    running, or nothing left to send, and changes nothing.
    """
    statuses, state = BatchComparison.Status, BatchCell.State
    with transaction.atomic():
        locked = BatchComparison.objects.select_for_update().get(pk=batch.pk)
        if locked.status not in (statuses.DONE, statuses.CANCELLED):
            raise BatchError("Failed cells can be run again once the batch is finished or cancelled.")
        if locked.cells.filter(state=state.RUNNING).exists():  # settled first (a dead worker's)
            raise BatchError("Some cells of this batch are still with Maxim; try again in a moment.")
        unsent = locked.cells.filter(state=state.QUEUED).count()  # only a cancelled batch has any
        failed = locked.cells.filter(state=state.FAILED, case__isnull=False)
        # Each cell gets its full MAX_REFUSALS again: the refusals are counted from the refused runs
        # linked to the cell (services/batch_settle.py), so the earlier round's are unlinked (they
        # stay in history with their batch and their reason). Kept, a cell given up after repeated
        # 429s was given up again at the first 429 of the re-run (new-user trial).
        Run.objects.filter(retried_cell__in=failed.values("pk")).update(retried_cell=None)
        again = failed.update(
            state=state.QUEUED,
            run=None,
            worker=None,
            error="",
            check_results=[],
            passed=None,
            not_before=None,
            attempts=0,
        )
        if not again and not unsent:
            raise BatchError("This batch has no failed or unsent cells to run.")
        locked.status, locked.resumed_at, locked.finished_at = statuses.RUNNING, timezone.now(), None
        locked.save(update_fields=["status", "resumed_at", "finished_at"])
        transaction.on_commit(lambda: enqueue(locked, chains=chains_per_batch()))
    batch.status, batch.resumed_at, batch.finished_at = locked.status, locked.resumed_at, None
    return again + unsent


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
