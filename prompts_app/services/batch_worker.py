"""Sending a batch's cells: what a background worker does (called by prompts_app/tasks.py).

Exactly once, whatever dies when:
* A cell is claimed in one transaction that locks its batch row: the cell gets a pending Run
  (not yet started) and state "running". Workers on many machines share the batch's
  concurrency limit, counted from the cells in that state.
* The Run is sent by services.runs.execute_run, whose mark_started() is a conditional update:
  a run settled as "not sent" can never be sent afterwards.
* A worker that dies leaves runs pending. settle() finds them: one never started is settled
  "not sent" (by the same conditional update) and its cell goes back to the queue; one started
  may have reached Maxim, so it is settled "interrupted" and its cell fails: never re-sent.
* A 429 means Maxim did not process the request: the run is taken back (deleted, with its
  share of the history totals) and the cell is queued again, not before Retry-After. The
  wait is stored on the workspace (BatchSettings.throttled_until) so every worker honours it,
  and the batch's limit is halved, then raised one at a time once Maxim stops refusing.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from datetime import timedelta

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Q
from django.utils import timezone

from prompts_app import checks as checks_module
from prompts_app.models import BatchCell, BatchComparison, BatchSettings, Run
from prompts_app.run_input import InputTooLarge
from prompts_app.services import rollups, runs
from prompts_app.services.batches import case_inputs

log = logging.getLogger(__name__)

CLAIM_GRACE_SECONDS = 30  # a claimed run not started after this was claimed by a worker that died
DEFAULT_RETRY_AFTER = 2.0  # a 429 without Retry-After
RAISE_LIMIT_AFTER = timedelta(seconds=5)  # quiet time after a 429 before the limit goes up again
IDLE_WAIT = 0.2


def drive(batch_id: int, *, slice_seconds: float) -> bool:
    """Send cells of one batch for about `slice_seconds`. True when the batch has work left and
    the caller should hand over to a fresh task (a bounded task lets a stopping worker stop)."""
    deadline = time.monotonic() + slice_seconds
    inline = getattr(settings, "MAXIMUI_BATCH_INLINE", False)
    batch = BatchComparison.objects.get(pk=batch_id)
    pool = None if inline else ThreadPoolExecutor(max_workers=batch.concurrency, thread_name_prefix="batch")
    in_flight: set[Future] = set()
    more = False
    try:
        settle(batch_id)
        while True:
            if time.monotonic() > deadline:
                more = True
                break
            free = batch.concurrency - len(in_flight)
            # Claims take the database's write lock: gather a few free slots per claim rather
            # than one claim per finished cell (on SQLite that serialised every worker thread).
            claimed = claim(batch_id, free) if free >= _claim_step(batch) or not in_flight else []
            for cell_id in claimed:
                if pool is None:
                    send_cell(cell_id)
                else:
                    in_flight.add(pool.submit(_in_thread, cell_id))
            if in_flight:
                done, in_flight = wait_futures(in_flight, timeout=1.0, return_when=FIRST_COMPLETED)
                for future in done:
                    future.result()  # a bug in send_cell surfaces in the task's result
                continue
            if claimed:
                continue
            state = _finish_if_done(batch_id)
            if state != BatchComparison.Status.RUNNING:
                break
            time.sleep(_idle_seconds(batch_id))
    finally:
        if pool is not None:
            wait_futures(in_flight)
            pool.shutdown()
    return more


def _claim_step(batch: BatchComparison) -> int:
    return max(1, batch.concurrency // 8)


def _in_thread(cell_id: int) -> None:
    try:
        send_cell(cell_id)
    finally:
        connections.close_all()  # this thread's own connections; the pool outlives no task


def _idle_seconds(batch_id: int) -> float:
    """Until the next cell can be claimed: the end of a 429 wait, else a short poll for
    cells another worker is still sending."""
    now = timezone.now()
    waits = [IDLE_WAIT]
    batch = BatchComparison.objects.select_related("workspace__batch_settings").get(pk=batch_id)
    until = getattr(getattr(batch.workspace, "batch_settings", None), "throttled_until", None)
    if until and until > now:
        waits.append((until - now).total_seconds())
    return min(max(waits), 5.0)


def claim(batch_id: int, wanted: int) -> list[int]:
    """Give up to `wanted` queued cells a pending Run each, within the batch's shared limit."""
    if wanted <= 0:
        return []
    now = timezone.now()
    with transaction.atomic():
        batch = BatchComparison.objects.select_for_update().select_related("created_by").get(pk=batch_id)
        if batch.status != BatchComparison.Status.RUNNING:
            return []
        throttle = BatchSettings.objects.filter(workspace_id=batch.workspace_id).first()
        if throttle and throttle.throttled_until and throttle.throttled_until > now:
            return []
        _raise_limit(batch, now)
        running = batch.cells.filter(state=BatchCell.State.RUNNING).count()
        free = min(wanted, batch.current_limit - running)
        if free <= 0:
            return []
        ready = Q(not_before__isnull=True) | Q(not_before__lte=now)
        cells = list(
            batch.cells.filter(ready, state=BatchCell.State.QUEUED)
            .select_related("column__version__prompt__workspace", "case")
            .order_by("id")[:free]
        )
        claimed = [cell for cell in cells if _give_run(batch, cell)]
        BatchCell.objects.bulk_update(claimed, ["run", "state"])
    return [cell.pk for cell in claimed]


def _raise_limit(batch: BatchComparison, now) -> None:
    quiet = batch.last_throttled_at is None or batch.last_throttled_at < now - RAISE_LIMIT_AFTER
    if batch.current_limit < batch.concurrency and quiet:
        batch.current_limit += 1
        batch.save(update_fields=["current_limit"])


def _give_run(batch: BatchComparison, cell: BatchCell) -> bool:
    column = cell.column
    try:
        # No idempotency key: the batch row's lock already makes this claim the only one.
        run, _ = runs.start_run(
            version=column.version, inputs=case_inputs(cell.case), user=batch.created_by,
            content=column.draft_content,
        )  # fmt: skip
    except InputTooLarge as exc:
        cell.state, cell.error = BatchCell.State.FAILED, str(exc)
        cell.save(update_fields=["state", "error"])
        return False
    cell.run, cell.state = run, BatchCell.State.RUNNING
    return True


def send_cell(cell_id: int) -> None:
    """Send a claimed cell's run (at most once, services.runs decides) and record the outcome."""
    cell = BatchCell.objects.select_related("run__workspace", "run__version__prompt", "batch", "case").get(pk=cell_id)
    if cell.run is None or cell.run.status != Run.Status.PENDING:
        return
    run = runs.execute_run(cell.run)
    if run.status == Run.Status.FAILED and run.error_status == 429:
        _requeue_after_429(cell, run)
    elif run.status == Run.Status.NOT_SENT:  # settled by another worker before it started
        with transaction.atomic():
            _take_back(cell, run)
    else:
        finish_cell(cell, run)


def finish_cell(cell: BatchCell, run: Run) -> None:
    """The cell's state and its checks, from its finished run."""
    if run.status == Run.Status.SUCCESS:
        cell.check_results = evaluate_checks(cell.batch.checks, run, cell.case.expected_output)
        cell.passed = all(r["passed"] for r in cell.check_results) if cell.check_results else None
        cell.state = BatchCell.State.SUCCESS
    else:
        cell.state = BatchCell.State.FAILED
    cell.save(update_fields=["state", "check_results", "passed"])


def evaluate_checks(specs: list[dict], run: Run, expected: str) -> list[dict]:
    found = checks_module.CheckInput(
        output_text=run.output_text, output=run.output, expected_output=expected or None,
        prompt_tokens=run.prompt_tokens, completion_tokens=run.completion_tokens,
        total_tokens=run.total_tokens, cost_nano=run.cost_nano, latency_ms=run.latency_ms,
    )  # fmt: skip
    results = []
    for check in checks_module.build_checks(specs):
        result = check.evaluate(found)
        results.append({"name": check.name, "passed": result.passed, "reason": result.reason})
    return results


def _requeue_after_429(cell: BatchCell, run: Run) -> None:
    now = timezone.now()
    wait = getattr(run, "retry_after", None) or DEFAULT_RETRY_AFTER
    until = now + timedelta(seconds=min(wait, 300))
    with transaction.atomic():
        batch = BatchComparison.objects.select_for_update().get(pk=cell.batch_id)
        batch.current_limit = max(1, batch.current_limit // 2)
        batch.last_throttled_at = now
        batch.save(update_fields=["current_limit", "last_throttled_at"])
        BatchSettings.objects.get_or_create(workspace_id=batch.workspace_id)
        BatchSettings.objects.filter(workspace_id=batch.workspace_id).filter(
            Q(throttled_until__isnull=True) | Q(throttled_until__lt=until)
        ).update(throttled_until=until)
        _take_back(cell, run, not_before=until)
    log.info("batch %s: 429 from Maxim, waiting %.1f s, limit %s", batch.pk, wait, batch.current_limit)


def _take_back(cell: BatchCell, run: Run, *, not_before=None) -> None:
    """Queue a cell again whose run Maxim never processed (429) or that was never sent."""
    stored = Run.objects.select_for_update().get(pk=run.pk)
    if stored.rolled_up:
        rollups.retract(stored)
    stored.delete()
    BatchCell.objects.filter(pk=cell.pk).update(
        run=None, state=BatchCell.State.QUEUED, attempts=cell.attempts + 1, not_before=not_before
    )


def settle(batch_id: int, *, all_pending: bool = False) -> int:
    """Settle the cells a dead worker left "running" (see the module docstring). Returns how many.

    `all_pending` settles every such cell however recent: no worker is running (make run's start).
    """
    now = timezone.now()
    settled = 0
    running = BatchCell.objects.filter(batch_id=batch_id, state=BatchCell.State.RUNNING)
    for cell in running.select_related("run", "batch", "case"):
        run = cell.run
        if run is None:
            BatchCell.objects.filter(pk=cell.pk).update(state=BatchCell.State.QUEUED)
            continue
        if run.status == Run.Status.PENDING:
            if run.started_at is None and (all_pending or run.created_at < now - timedelta(seconds=CLAIM_GRACE_SECONDS)):
                Run.objects.filter(pk=run.pk, status=Run.Status.PENDING, started_at__isnull=True).update(
                    status=Run.Status.NOT_SENT, error=runs.NOT_SENT_ERROR, finished_at=now
                )
            elif run.started_at is not None and (all_pending or runs.is_stale(run.started_at, run.created_at, now=now)):
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


def _finish_if_done(batch_id: int) -> str:
    """Mark the batch done once no cell is queued or running; returns its status."""
    settle(batch_id)
    with transaction.atomic():
        batch = BatchComparison.objects.select_for_update().get(pk=batch_id)
        if batch.status != BatchComparison.Status.RUNNING:
            return batch.status
        left = batch.cells.filter(state__in=[BatchCell.State.QUEUED, BatchCell.State.RUNNING])
        if left.exists():
            return batch.status
        now = timezone.now()
        batch.active_seconds = batch.elapsed_seconds(now)
        batch.status, batch.finished_at, batch.resumed_at = BatchComparison.Status.DONE, now, None
        batch.save(update_fields=["status", "finished_at", "active_seconds", "resumed_at"])
        return batch.status


def resume_all(*, all_pending: bool = False) -> list[int]:
    """Settle what dead workers left and hand every running batch to a worker again."""
    from prompts_app.services.batches import enqueue

    ids = list(BatchComparison.objects.filter(status=BatchComparison.Status.RUNNING).values_list("pk", flat=True))
    for batch_id in ids:
        settle(batch_id, all_pending=all_pending)
        enqueue(BatchComparison(pk=batch_id))
    return ids
