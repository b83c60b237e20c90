"""Storing and settling a batch's cells: answers stored with their checks, a 429 turned into a wait
and a retry (or a refusal), and the cells of dead workers settled. The rules are in the docstring
of services/batch_worker.py, which sends the cells and calls these.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Min, Q
from django.utils import timezone

from prompts_app import checks as checks_module
from prompts_app.models import BatchCell, BatchComparison, BatchSettings, BatchWorker, Run
from prompts_app.services import batch_liveness, rollups, rows, runs

log = logging.getLogger(__name__)

CLAIM_GRACE_SECONDS = 30  # a claimed run not started after this was claimed by a worker that died
DEFAULT_RETRY_AFTER = 2.0  # a 429 without Retry-After
MAX_RETRY_AFTER = 300.0  # a longer Retry-After is not waited out in one go
MAX_REFUSALS = 6  # 429s for one cell (its first send and five more) before it fails
REFUSED_ERROR = (
    "Maxim refused this run with 429 (too many requests): it was not processed and cost nothing. "
    "The batch waited and sent the cell again."
)
REFUSED_PREFIX = "Maxim answered 429 (rate limit)"
DELETED_WHILE_SENT_ERROR = (
    "The test case was deleted while this cell was with Maxim: its run is kept in history, without checks."
)


def refused_error(refusals: int) -> str:
    return (
        f"{REFUSED_PREFIX} {refusals} times; the batch stopped sending this cell. "
        "None of those requests was processed or charged."
    )


COLUMN_REFUSED_ERROR = (
    f"Not sent: {REFUSED_PREFIX} to every request of this column ({MAX_REFUSALS} times in a row for "
    "one cell, none of the column got through meanwhile), so the batch stopped sending the column."
)
# The same, when the requests never reached Maxim (refused connections, no free connection): the
# new-user trial stopped Maxim mid-batch and read "Maxim answered 429" for an outage.
COLUMN_UNREACHED_ERROR = (
    f"Not sent: Maxim could not be reached for this column ({MAX_REFUSALS} tries in a row for one cell, "
    "none of the column got through meanwhile), so the batch stopped sending the column. "
    "Once Maxim is back, use “Run failed cells again”."
)
COLUMN_GIVEN_UP = (COLUMN_REFUSED_ERROR, COLUMN_UNREACHED_ERROR)


def column_error(run: Run) -> str:
    """Why a column was given up, from the last attempt of the cell that gave it up."""
    return COLUMN_REFUSED_ERROR if run.error_status == 429 else COLUMN_UNREACHED_ERROR


def store(finished: list[BatchCell], checks: list[checks_module.Check]) -> None:
    """Within the caller's transaction: the finished runs, their history totals and their cells."""
    refused = [cell for cell in finished if cell.run.status == Run.Status.FAILED and unprocessed(cell.run)]
    for cell in refused:
        # This refusal and the cell's earlier ones, each kept as a run linked to the cell.
        cell.refusals = Run.objects.filter(retried_cell=cell.pk).count() + 1
        if cell.run.error_status == 429:
            cell.run.error = REFUSED_ERROR if cell.refusals < MAX_REFUSALS else refused_error(cell.refusals)
        elif cell.refusals < MAX_REFUSALS:  # never left (no free connection, or none could be made)
            cell.run.error = f"Not sent: {cell.run.error} The batch waited and sent the cell again."
    answered = [cell for cell in finished if cell not in refused]
    for cell in answered:
        judge(cell, cell.run, checks)
    rows.update_rows(answered, ["state", "check_results", "passed", "error"])
    if finished:
        # A refused run stays in history as a failed call with its reason (it cost nothing).
        # Last: its history totals' upsert locks rows every worker of the batch writes, held
        # until the commit, so no check or cell write waits behind it (bench_batch on PostgreSQL).
        runs.store_finished([cell.run for cell in finished])
    for cell in refused:
        _after_429(cell, cell.run)


def unprocessed(run: Run) -> bool:
    """Maxim refused it (429), or it never left: sent again, slowed down like a 429 (hostile trial:
    a full connection pool failed 391 cells that had never been sent)."""
    return run.error_status == 429 or getattr(run, "not_sent", False)


def judge(cell: BatchCell, run: Run, checks: list[checks_module.Check]) -> None:
    """The cell's state and its checks, from its finished run (the caller saves the cell)."""
    if cell.case is None:  # deleted while its run was out: nothing to judge against
        cell.state, cell.error = BatchCell.State.FAILED, DELETED_WHILE_SENT_ERROR
    elif run.status == Run.Status.SUCCESS:
        # Checked already by the thread that sent it (batch_worker._call), off the thread that beats.
        judged = getattr(cell, "judged", None)
        cell.check_results = judged if judged is not None else evaluate_checks(checks, run, cell.case.expected_output)
        cell.passed = all(r["passed"] for r in cell.check_results) if cell.check_results else None
        cell.state = BatchCell.State.SUCCESS
    else:
        cell.state = BatchCell.State.FAILED


def finish_cell(cell: BatchCell, run: Run) -> None:
    judge(cell, run, checks_module.stored_checks(cell.batch.checks))
    # An UPDATE, not save(): a cell deleted meanwhile (its batch deleted) is no error.
    fields = {"state": cell.state, "check_results": cell.check_results, "passed": cell.passed, "error": cell.error}
    BatchCell.objects.filter(pk=cell.pk).update(**fields)


def evaluate_checks(checks: list[checks_module.Check], run: Run, expected: str) -> list[dict]:
    found = checks_module.CheckInput(
        output_text=run.output_text,
        output=run.output,
        expected_output=expected or None,
        prompt_tokens=run.prompt_tokens,
        completion_tokens=run.completion_tokens,
        total_tokens=run.total_tokens,
        cost_nano=run.cost_nano,
        latency_ms=run.latency_ms,
    )
    results = []
    for check in checks:
        result = check.evaluate(found)
        results.append({"name": check.name, "passed": result.passed, "reason": result.reason})
    return results


def _after_429(cell: BatchCell, run: Run) -> None:
    """Slow the workspace down, then queue the cell again, or fail it once Maxim refused it
    MAX_REFUSALS times (and the rest of its column if none of it got through meanwhile)."""
    wait = getattr(run, "retry_after", None)
    wait = min(DEFAULT_RETRY_AFTER if wait is None else wait, MAX_RETRY_AFTER)
    with transaction.atomic():
        batch = BatchComparison.objects.select_for_update().get(pk=cell.batch_id)
        now = timezone.now()  # once the batch is ours: the wait is not shortened by waiting for the lock
        until = now + timedelta(seconds=wait)
        batch.current_limit = max(1, batch.current_limit // 2)
        batch.last_throttled_at = now
        batch.save(update_fields=["current_limit", "last_throttled_at"])
        BatchSettings.objects.get_or_create(workspace_id=batch.workspace_id)
        BatchSettings.objects.filter(workspace_id=batch.workspace_id).filter(
            Q(throttled_until__isnull=True) | Q(throttled_until__lt=until)
        ).update(throttled_until=until)
        if cell.refusals >= MAX_REFUSALS:
            _fail_refused(cell, run)
        elif _column_refused(cell):  # given up while this cell was with Maxim: not sent again either
            Run.objects.filter(pk=run.pk).update(error=refused_error(cell.refusals))
            BatchCell.objects.filter(pk=cell.pk).update(state=BatchCell.State.FAILED, error=_given_up_error(cell))
        else:
            Run.objects.filter(pk=run.pk).update(retried_cell=cell.pk)  # the cell's earlier attempt
            _requeue(cell, not_before=until)
    log.info("batch %s: 429 from Maxim, waiting %.1f s, limit %s", batch.pk, wait, batch.current_limit)


def _fail_refused(cell: BatchCell, run: Run) -> None:
    """The cell fails with its last refusal as its run; the column's queued cells fail too unless
    one of its cells got through since this cell's first refusal (then it was only this cell)."""
    BatchCell.objects.filter(pk=cell.pk).update(state=BatchCell.State.FAILED, error=run.error, not_before=None)
    first = Run.objects.filter(retried_cell=cell.pk).aggregate(first=Min("created_at"))["first"] or run.created_at
    column = BatchCell.objects.filter(column_id=cell.column_id)
    if not column.filter(state=BatchCell.State.SUCCESS, run__finished_at__gte=first).exists():
        column.filter(state=BatchCell.State.QUEUED).update(
            state=BatchCell.State.FAILED, error=column_error(run), not_before=None
        )


def _column_refused(cell: BatchCell) -> bool:
    given_up = BatchCell.objects.filter(column_id=cell.column_id, state=BatchCell.State.FAILED)
    return given_up.filter(error__in=COLUMN_GIVEN_UP).exists()


def _given_up_error(cell: BatchCell) -> str:
    given_up = BatchCell.objects.filter(column_id=cell.column_id, error__in=COLUMN_GIVEN_UP)
    return given_up.values_list("error", flat=True).first() or COLUMN_REFUSED_ERROR


def _take_back(cell: BatchCell, run: Run) -> None:
    """Queue a cell again whose run was never sent (settled "not sent": nothing to show in history)."""
    stored = Run.objects.select_for_update().get(pk=run.pk)
    if stored.rolled_up:
        rollups.retract(stored)
    stored.delete()
    _requeue(cell)


def _requeue(cell: BatchCell, *, not_before=None) -> None:
    BatchCell.objects.filter(pk=cell.pk).update(
        run=None, state=BatchCell.State.QUEUED, attempts=cell.attempts + 1, not_before=not_before
    )


def settle(batch_id: int, *, all_pending: bool = False) -> int:
    """Settle the cells a dead worker left "running" (see the module docstring). Returns how many.

    `all_pending` (make run's start) settles every such cell however recent, but those of live drives.
    """
    now = timezone.now()
    settled = 0
    running = BatchCell.objects.filter(pk__in=_to_settle(batch_id, now, all_pending=all_pending))
    for cell in running.select_related("run", "batch", "case", "worker"):
        run = cell.run
        if run is None:
            BatchCell.objects.filter(pk=cell.pk).update(state=BatchCell.State.QUEUED)
            continue
        dead = _dead(cell.worker, now, all_pending=all_pending)
        if run.status == Run.Status.PENDING:
            if run.started_at is None and (dead or run.created_at < now - timedelta(seconds=CLAIM_GRACE_SECONDS)):
                Run.objects.filter(pk=run.pk, status=Run.Status.PENDING, started_at__isnull=True).update(
                    status=Run.Status.NOT_SENT, error=runs.NOT_SENT_ERROR, finished_at=now
                )
            elif run.started_at is not None and (dead or runs.is_stale(run.started_at, run.created_at, now=now)):
                Run.objects.filter(pk=run.pk, status=Run.Status.PENDING, started_at__isnull=False).update(
                    status=Run.Status.INTERRUPTED, error=runs.INTERRUPTED_ERROR, finished_at=now
                )
            run.refresh_from_db()
        if run.status == Run.Status.PENDING:
            continue
        with transaction.atomic():
            if run.status == Run.Status.NOT_SENT:
                _take_back(cell, run)
            else:
                finish_cell(cell, run)
        settled += 1
    if settled:
        rollups.catch_up()
    return settled


def _dead(worker: BatchWorker | None, now, *, all_pending: bool) -> bool:
    """Whether the worker that claimed a cell is gone. `all_pending` (make run's start) takes a cell of
    no known worker for dead too, but never one of a live drive: `make worker` processes, or workers on
    other machines, may be sending beside the server that starts (hostile trial of #12: restarting
    make run settled their cells "interrupted" while they were with Maxim)."""
    return batch_liveness.is_dead(worker, now) or (all_pending and worker is None)


def _to_settle(batch_id: int, now, *, all_pending: bool) -> list[int]:
    """The running cells settle() has something to do for, read in one light query: a live
    worker's cells in flight (all of them, usually) are left without loading their runs."""
    found = []
    running = BatchCell.objects.filter(batch_id=batch_id, state=BatchCell.State.RUNNING).values_list(
        "pk",
        "run_id",
        "run__status",
        "run__started_at",
        "run__created_at",
        "worker_id",
        "worker__beat_at",
        "worker__name",
    )
    for pk, run_id, status, started_at, created_at, worker_id, beat_at, name in running:
        if run_id is None or status != Run.Status.PENDING:
            found.append(pk)
            continue
        worker = None if worker_id is None else BatchWorker(pk=worker_id, beat_at=beat_at, name=name)
        dead = _dead(worker, now, all_pending=all_pending)
        if started_at is None:
            due = dead or created_at < now - timedelta(seconds=CLAIM_GRACE_SECONDS)
        else:
            due = dead or runs.is_stale(started_at, created_at, now=now)
        if due:
            found.append(pk)
    return found
