"""Sending a batch's cells: what a background worker does (called by prompts_app/tasks.py).

Exactly once, whatever dies when:
* Cells are claimed in one transaction that locks their batch row: each gets a pending Run
  (one INSERT for all of them) and state "running". Workers on many machines share the batch's
  concurrency limit, counted from the cells in that state; live drives of one batch each take
  at most their fair share of it (rounded up), so a second worker is not left idle.
* A drive inserts the runs of the cells it claims already marked started (in the claim's
  transaction, committed before any request leaves): a worker that dies after that commit leaves
  them "interrupted", never re-sent, even if its request had not left yet. Runs claimed by
  claim() are pending and not started; send_cell() marks them started by one conditional UPDATE
  (services.runs.mark_started for many): a run settled as "not sent" can never be sent afterwards.
* A worker that dies leaves runs pending. settle() finds them: one never started is settled
  "not sent" (by the same conditional update) and its cell goes back to the queue; one started
  may have reached Maxim, so it is settled "interrupted" and its cell fails: never re-sent.
* A 429 means Maxim did not process the request: the run stays in history as a failed run
  that says so (it cost nothing; Run.retried_cell links it to its cell, whose `run` is the
  newest attempt) and the cell is queued again, not before Retry-After. The wait is stored on
  the workspace (BatchSettings.throttled_until) so every worker honours it (at most
  MAX_RETRY_AFTER), and the batch's limit is halved, then raised one at a time once Maxim stops
  refusing. A cell refused MAX_REFUSALS times fails with that reason, and so does the rest of its
  column when no cell of it got through meanwhile: a column Maxim keeps refusing ends.
* A worker's drive has a heartbeat (services/batch_liveness.py): the cells of a worker whose
  heartbeat stopped are settled by the rules above at once, not after the 180 s a call may last.
* A cell whose test case was deleted stays (its case NULL) and fails with the reason, never
  sent afterwards: the batch's counts still add up.
* Fairness: a drive hands over to the task queue after FAIR_SLICE_SECONDS when another running
  batch has cells ready and nobody sending them, so one worker takes running batches in turn.
  It hands over at once: the calls still with Maxim are stored by a thread of their own, the
  drive's heartbeat beating until they are, so a slow Maxim does not hold the worker.
* Chains: each task of a batch enqueues the next. Pausing and resuming, and every worker's start,
  enqueue one more; a drive whose batch has another task waiting in the queue that no free
  worker took (batch_liveness.surplus_chain) ends at once, so chains stay as many as the
  workers sharing the batch.

Fast on SQLite's single writer: the main thread does every write; the sending threads talk to
Maxim and check the answers (never the main thread, which beats the heartbeat). Freed slots wait
for no claim: the drive claims a few cells ahead (services/batch_sender: "armed", their runs
marked started, at most 4 a drive, counted as running beyond the limit), and a thread that has
an answer sends the next armed cell at once, keeping to the drive's part of the limit; a worker
that dies leaves its armed cells "interrupted" like those in flight, never sent again. A pause,
a cancel, a 429 or the end of the drive queues the armed cells again (no run). New cells are
claimed in a short transaction of their own (the drive's answered, unstored cells count as free)
and the answers are stored after, except a 429, stored before the claim so that it already
honours Retry-After.
Storing, the 429 rules and settling live in services/batch_settle.py; this module sends.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, connections, transaction
from django.utils import timezone

from prompts_app import checks as checks_module
from prompts_app import pricing
from prompts_app.maxim import MaximClient, MaximError, Use, client_for
from prompts_app.models import BatchCell, BatchColumn, BatchComparison, BatchSettings, BatchWorker, Run, TestCase
from prompts_app.run_input import input_problem
from prompts_app.services import batch_liveness, rows, run_watch, runs
from prompts_app.services.batch_sender import Sender, disarm
from prompts_app.services.batch_settle import (  # noqa: F401  (the batch's rules, read here by tests and callers)
    COLUMN_REFUSED_ERROR,
    DELETED_WHILE_SENT_ERROR,
    MAX_REFUSALS,
    MAX_RETRY_AFTER,
    evaluate_checks,
    refused_error,
    settle,
    store,
    unprocessed,
)
from prompts_app.services.batches import case_inputs

log = logging.getLogger(__name__)

SETTLE_EVERY = 3.0  # seconds between looks for cells of dead workers while sending
FAIR_SLICE_SECONDS = 2.0  # the least a drive sends before it lets a waiting batch go first
RAISE_LIMIT_AFTER = timedelta(seconds=5)  # quiet time after a 429 before the limit goes up again
IDLE_WAIT = 0.2
DELETED_CASE_ERROR = "Not sent: the test case was deleted while the batch ran."


@dataclass(frozen=True)
class Cost:
    """Milliseconds the dashboard spent on one cell: CPU, and wall time (CPU plus waiting for it)."""

    cpu: float = 0.0
    wall: float = 0.0

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.cpu + other.cpu, self.wall + other.wall)


@dataclass
class Plan:
    """What every cell of a batch shares, read once per task instead of once per cell."""

    batch: BatchComparison
    columns: dict[int, tuple[BatchColumn, dict[str, Any]]]  # column id -> (column, the content it runs)
    checks: list[checks_module.Check]
    price_rules: list[pricing.CustomPriceRule]
    client: MaximClient | None = None  # one client for the task's runs (None: each run reports why not)
    worker: BatchWorker | None = None  # the drive's heartbeat row, set on the cells it claims
    costs: list[Cost] = field(default_factory=list)  # the dashboard's own time per cell
    drives: int = 1  # live drives of the batch, this one included (see _fair_share)
    rank: int = 0  # this drive's place among them, by id: which drives' shares are rounded up
    drives_until: datetime | None = None  # when to count them again
    share: int = 10**6  # this drive's part of the limit while other drives work on the batch
    cap: int = 0  # at most this many of the drive's cells with Maxim at once (set by each claim)
    may_send: bool = True  # the last claim found the batch running and not waiting out a 429


def plan_for(batch_id: int) -> Plan:
    batch = BatchComparison.objects.select_related("workspace", "created_by").get(pk=batch_id)
    columns = {}
    for column in batch.columns.select_related("version__prompt__workspace"):
        column.version.prompt.workspace = batch.workspace  # one workspace object for every run
        content = column.draft_content if column.draft_content is not None else column.version.content()
        columns[column.pk] = (column, content)
    rules = runs.custom_price_rules(batch.workspace)
    try:
        client = client_for(batch.workspace, Use.RUN)
    except MaximError:
        client = None  # no key, or one that cannot be read: call_maxim records it on each run
    return Plan(batch, columns, checks_module.stored_checks(batch.checks), rules, client)


def drive(batch_id: int, *, slice_seconds: float) -> bool:
    """Send cells of one batch for about `slice_seconds`. True when the batch has work left and
    the caller should hand over to a fresh task (a bounded task lets a stopping worker stop).

    The main thread does every write, in few transactions (SQLite has one writer): it stores
    the cells that finished and claims as many new ones in one transaction, then marks the
    new runs started in the same one; the pool's threads talk to Maxim and check the answers."""
    if batch_liveness.surplus_chain(batch_id):
        return False  # another task of this batch waits in the queue to carry it on: end this chain
    started = time.monotonic()
    deadline = started + slice_seconds
    inline = getattr(settings, "MAXIMUI_BATCH_INLINE", False)
    plan = plan_for(batch_id)
    limit = plan.batch.concurrency
    heartbeat = batch_liveness.Heartbeat(batch_id)
    plan.worker = heartbeat.row
    sender = None if inline else Sender(lambda cell: _call(plan, cell), unprocessed_cell, threads=limit)
    reserve = 0 if inline else _reserve(limit)
    finished: list[BatchCell] = []
    more = False
    handed_over = False
    next_look = started  # the next look for dead workers' cells and for batches waiting on us
    try:
        while True:
            heartbeat.beat()
            now = time.monotonic()
            if now > deadline:
                more = True
                break
            if now >= next_look:
                next_look = now + SETTLE_EVERY
                settle(batch_id)
                if batch_liveness.surplus_chain(batch_id):
                    break  # more=False: the task waiting in the queue carries the batch on
                if now - started >= FAIR_SLICE_SECONDS and batch_liveness.another_batch_waits(batch_id):
                    more = True  # our next task goes to the back of the queue, behind the waiting batch
                    break
            outstanding = sender.outstanding if sender else 0  # armed, or with Maxim
            # A claim beyond our share (and the few armed ahead) would find nothing.
            free = min(limit, plan.share) + reserve - outstanding
            claimed: list[BatchCell] = []
            # Gather a few free slots per claim rather than one transaction per finished cell.
            # Nothing with Maxim: claim now, whatever is free (a limit halved by 429s down to 1 left
            # free below the step, and the armed cells waited for the slice's end: hostile trial).
            turn = free >= _claim_step(plan.batch) or not (sender.sending if sender else outstanding)
            if any(unprocessed(cell.run) for cell in finished):
                # A 429 is stored at once, turn or not (other workers read its Retry-After), and
                # before a claim, which then honours it.
                _store_cells(plan, finished)
                finished = []
            if turn:
                # New cells first, their own short transaction, so they leave while the
                # answers are stored: freed slots wait for a claim, not for a claim and a store.
                claimed = _claim_started(plan, free, freeing=len(finished), reserve=reserve)
                if sender is not None:
                    _arm(sender, plan, claimed)
            if sender is None:
                for cell in claimed:
                    _call(plan, cell)
                    finished.append(cell)
            if turn:
                _store_cells(plan, finished)
                finished = []
            elif sender is not None and sender.wants_a_look:
                _look(plan, sender)  # no claim due: armed cells still need a fresh look to leave
            if sender is not None and sender.outstanding:
                for cell, failure in sender.answers(timeout=1.0):
                    if failure is not None:
                        raise failure  # a bug surfaces in the task's result
                    finished.append(cell)
                continue
            if claimed:
                continue
            state = _finish_if_done(batch_id)
            if state != BatchComparison.Status.RUNNING:
                break
            time.sleep(_idle_seconds(batch_id))
        if sender is not None and sender.outstanding:  # only when handing over: else nothing is out
            disarm(sender.halt())
            heartbeat.claims_no_more()
            _finish_later(plan, sender, finished, heartbeat)
            handed_over = True
    finally:
        if not handed_over:
            _finish(plan, sender, finished, heartbeat)
    return more


def _reserve(limit: int) -> int:
    """Cells a drive claims ahead of its free slots (batch_sender): one per 8 of the limit, 1 to 4."""
    return max(1, min(4, limit // 8))


def _arm(sender: Sender, plan: Plan, claimed: list[BatchCell]) -> None:
    """Hand the claimed cells to the sending threads, or, when the claim found the batch paused,
    cancelled or waiting out a 429, or left this drive no part of the limit, stop sending and queue
    the armed cells again."""
    if not plan.may_send or plan.share == 0:  # (no part of the limit: the other drives send them)
        disarm(sender.halt())
        return
    sender.resume()
    sender.offer(claimed, cap=plan.cap)


def _look(plan: Plan, sender: Sender) -> None:
    """Is the batch still running and its workspace not waiting out a 429 (another worker may have
    stored one)? Lets the armed cells leave for a while longer, or takes them back."""
    with connection.cursor() as cursor:
        cursor.execute(_claim_sql().look, [_db_time(timezone.now()), plan.batch.pk])
        status, throttled = cursor.fetchone()
    plan.may_send = status == BatchComparison.Status.RUNNING and not throttled
    _arm(sender, plan, [])  # as after a claim that found nothing new


def unprocessed_cell(cell: BatchCell) -> bool:
    return unprocessed(cell.run)


def _finish(plan: Plan, sender: Sender | None, finished: list[BatchCell], heartbeat: batch_liveness.Heartbeat) -> None:
    """Queue the armed cells again, wait for the calls still with Maxim, store them and the cells
    not stored yet, end the heartbeat."""
    try:
        if sender is not None:
            disarm(sender.halt())
            while sender.sending or sender.has_answers:
                finished += [cell for cell, failure in sender.answers(timeout=1.0) if failure is None]
                heartbeat.beat()  # still alive while the last answers come in
            sender.shutdown()
    except Exception:
        heartbeat.died()  # its cells are settled at once by the usual rules
        raise
    try:
        if finished:
            _store_cells(plan, finished)
    except Exception:
        heartbeat.died()
        try:
            settle(plan.batch.pk)  # this drive's cells, now: failed with the reason, never sent again
        except Exception:
            log.exception("batch %s: settling a failed drive's cells failed", plan.batch.pk)
        raise
    finally:
        heartbeat.stop()
    _log_costs(plan.batch.pk, plan.costs)


def goes_on(batch_id: int) -> bool:
    """The batch exists and runs: a task that failed hands it over to a fresh one (tasks.py)."""
    return BatchComparison.objects.filter(pk=batch_id, status=BatchComparison.Status.RUNNING).exists()


def _finish_later(plan: Plan, *args: Any) -> threading.Thread:
    """_finish() in a thread of its own, so the worker's next task starts now instead of after the
    slowest call in flight (up to RUN_DEADLINE): those cells stay claimed by this drive, whose
    heartbeat goes on beating until they are stored, so nothing is sent again or settled early.
    Not a daemon: a worker stopping gracefully still stores them before it exits."""

    def finish() -> None:
        try:
            _finish(plan, *args)
        except Exception:  # its cells are settled by the usual rules once the heartbeat is stale
            log.exception("batch %s: storing the last answers of a drive failed", plan.batch.pk)
        finally:
            connections.close_all()  # this thread's own connections

    thread = threading.Thread(target=finish, name=f"batch-{plan.batch.pk}-finish")
    thread.start()
    return thread


def _log_costs(batch_id: int, costs: list[Cost]) -> None:
    if costs:
        cpu, wall = statistics.median(c.cpu for c in costs), statistics.median(c.wall for c in costs)
        log.info(
            "batch %s: %d cells, dashboard cost per cell median %.2f ms CPU, %.2f ms wall",
            batch_id,
            len(costs),
            cpu,
            wall,
        )


def _claim_step(batch: BatchComparison) -> int:
    return max(1, batch.concurrency // 16)


def _call(plan: Plan, cell: BatchCell) -> None:
    """Send the started run, read the answer (priced) and check it; stores nothing.

    The checks run here, in the sending thread, not in the main thread's store: a regex check may
    wait 2 s for its child process and a schema check may take its 5 s budget, per cell, and the
    main thread beats the drive's heartbeat. Run there, they stopped it for over STALE_SECONDS and
    another worker settled this live drive's cells "interrupted" (hostile trial of #12)."""
    wall, cpu = time.perf_counter(), time.thread_time()
    runs.call_maxim(cell.run, plan.price_rules, client=plan.client)
    if cell.run.status == Run.Status.SUCCESS and cell.case is not None:
        cell.judged = evaluate_checks(plan.checks, cell.run, cell.case.expected_output)
    # The dashboard's part: this thread's CPU (building, sending, parsing, pricing), and the
    # call's wall time beyond Maxim's own latency (that also counts waiting for the CPU).
    cell.cost = getattr(cell, "cost", Cost()) + Cost(
        cpu=(time.thread_time() - cpu) * 1000,
        wall=max(0.0, (time.perf_counter() - wall) * 1000 - (cell.run.latency_ms or 0.0)),
    )


def _claim_started(plan: Plan, wanted: int, *, freeing: int, reserve: int = 0) -> list[BatchCell]:
    """Claim up to `wanted` cells, their runs marked started, in one transaction; they may be sent
    once it returns. `freeing`: this drive's cells answered but not stored yet (still "running"
    in the table), whose slots are free: Maxim has answered them."""
    if wanted <= 0:
        return []
    wall, cpu = time.perf_counter(), time.thread_time()
    with transaction.atomic():
        claimed = _claim(plan, wanted, started=True, freeing=freeing, reserve=reserve)
    if claimed:  # each cell's share of the claim, added to its cost when it is stored
        share = Cost(cpu=(time.thread_time() - cpu) * 1000, wall=(time.perf_counter() - wall) * 1000)
        for cell in claimed:
            cell.cost = Cost(share.cpu / len(claimed), share.wall / len(claimed))
    return claimed


def _store_cells(plan: Plan, finished: list[BatchCell]) -> None:
    """Store the answered cells (runs, checks, history totals) in one transaction."""
    if not finished:
        return
    wall, cpu = time.perf_counter(), time.thread_time()
    with transaction.atomic():
        store(finished, plan.checks)
    run_watch.run_stored()
    share = Cost(cpu=(time.thread_time() - cpu) * 1000, wall=(time.perf_counter() - wall) * 1000)
    share = Cost(share.cpu / len(finished), share.wall / len(finished))
    plan.costs += [share + getattr(cell, "cost", Cost()) for cell in finished]


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
    with transaction.atomic():
        return [cell.pk for cell in _claim(plan_for(batch_id), wanted)]


def _claim(plan: Plan, wanted: int, *, started: bool = False, freeing: int = 0, reserve: int = 0) -> list[BatchCell]:
    """Within the caller's transaction: lock the batch row, then create the pending runs of up
    to `wanted` queued cells with one insert (a run row exists before its request leaves),
    `started` ones marked started (a drive sends them as soon as the transaction commits).

    Plain statements (_ClaimSql): the ORM's compiling of the four
    reads and loading of the cells cost about 9 ms of CPU per claim (bench_batch)."""
    if wanted <= 0:
        return []
    now = timezone.now()
    sql = _claim_sql()
    with connection.cursor() as cursor:
        at = _db_time(now)
        cursor.execute(sql.batch, [at, _db_time(now - RAISE_LIMIT_AFTER), plan.batch.pk])
        status, limit, concurrency, throttled, quiet = cursor.fetchone()
        plan.may_send = status == BatchComparison.Status.RUNNING and not throttled
        if not plan.may_send:
            return []
        if limit < concurrency and quiet:
            limit += 1  # Maxim stopped refusing: the limit goes up again, one at a time
            cursor.execute(sql.raise_limit, [limit, plan.batch.pk])
        cursor.execute(sql.running, [plan.batch.pk, BatchCell.State.RUNNING])
        running = dict(cursor.fetchall())
        if freeing and plan.worker is not None:  # answered, not stored yet: their slots are free
            running[plan.worker.pk] = running.get(plan.worker.pk, 0) - freeing
        fair = _fair_share(plan, limit, now, running)
        # With Maxim at once: our share, within what the other drives may have with Maxim (their
        # running cells but the `reserve` each claims ahead, armed: batch_sender). Counting their
        # armed cells too left each of two drives 12 of 32 (bench_batch on PostgreSQL).
        # Each other drive holds at most `reserve` of its running cells armed, and no more than it has:
        # one that has just started, with none, has none armed (hostile re-check: counting `reserve` for
        # each let a drive joining at the start send 4 beyond the limit per such drive: 36 of 32).
        me = plan.worker.pk if plan.worker is not None else None
        others = sum(
            max(0, n - (reserve if worker is not None else 0)) for worker, n in running.items() if worker != me
        )
        plan.cap = max(0, min(plan.share, limit - others))
        if plan.share == 0:  # more drives than the limit (429s halved it): none for us, nor ahead
            return []
        free = min(wanted, limit + reserve * plan.drives - sum(running.values()), fair + reserve)
        if free <= 0:
            return []
        cursor.execute(sql.queued, [plan.batch.pk, BatchCell.State.QUEUED, at, free])
        found = cursor.fetchall()
    claimed, refused = [], []
    for cell in _cells(plan, found):
        column, content = plan.columns[cell.column_id]
        if cell.case is None:
            cell.state, cell.error = BatchCell.State.FAILED, DELETED_CASE_ERROR
            refused.append(cell)
            continue
        inputs = case_inputs(cell.case)
        problem = input_problem(content.get("messages", []), inputs)
        if problem:
            cell.state, cell.error = BatchCell.State.FAILED, problem
            refused.append(cell)
            continue
        cell.run = runs.pending_run(
            version=column.version, content=content, inputs=inputs, user=plan.batch.created_by, is_draft=column.is_draft
        )
        cell.run.batch_comparison_id = plan.batch.pk  # history labels the run with its batch
        cell.run.started_at = now if started else None
        cell.state = BatchCell.State.RUNNING
        cell.worker = plan.worker  # settle() reclaims the cell at once if this worker's heartbeat stops
        claimed.append(cell)
    rows.insert_rows([cell.run for cell in claimed])  # bulk_create without its per-field compiling
    for cell in claimed:
        cell.run = cell.run  # again, now that the run has its key (sets run_id, keeps the object)
    rows.update_rows(claimed, ["run", "state", "worker"])
    rows.update_rows(refused, ["state", "error"])
    return claimed


@dataclass(frozen=True)
class _ClaimSql:
    batch: str  # status, limit, concurrency, throttled now?, quiet since RAISE_LIMIT_AFTER? (row locked)
    raise_limit: str
    look: str  # status, throttled now? (no lock)
    running: str  # running cells per worker
    queued: str  # queued cells ready now, with their case


_claim_sqls: dict[str, _ClaimSql] = {}


def _claim_sql() -> _ClaimSql:
    found = _claim_sqls.get(connection.vendor)
    if found is None:
        q = connection.ops.quote_name
        batch, cell, case = (q(m._meta.db_table) for m in (BatchComparison, BatchCell, TestCase))
        throttle = q(BatchSettings._meta.db_table)
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""  # SQLite: IMMEDIATE
        throttled = (
            f"EXISTS (SELECT 1 FROM {throttle} s WHERE s.workspace_id = b.workspace_id AND s.throttled_until > %s)"
        )
        found = _claim_sqls[connection.vendor] = _ClaimSql(
            batch=(
                f"SELECT b.status, b.current_limit, b.concurrency, {throttled}, "
                "(b.last_throttled_at IS NULL OR b.last_throttled_at < %s) "
                f"FROM {batch} b WHERE b.id = %s{lock}"
            ),
            raise_limit=f"UPDATE {batch} SET current_limit = %s WHERE id = %s",
            look=f"SELECT b.status, {throttled} FROM {batch} b WHERE b.id = %s",
            running=f"SELECT worker_id, COUNT(*) FROM {cell} WHERE batch_id = %s AND state = %s GROUP BY worker_id",
            queued=(
                "SELECT c.id, c.column_id, c.case_id, c.attempts, tc.variables, tc.turns, tc.expected_output "
                f"FROM {cell} c LEFT JOIN {case} tc ON tc.id = c.case_id "
                "WHERE c.batch_id = %s AND c.state = %s AND (c.not_before IS NULL OR c.not_before <= %s) "
                "ORDER BY c.id LIMIT %s"
            ),
        )
    return found


def _db_time(moment: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(moment)


def _cells(plan: Plan, found: list[tuple]) -> list[BatchCell]:
    """The queued cells read by _ClaimSql.queued, with their cases (None once deleted)."""
    variables, turns = TestCase._meta.get_field("variables"), TestCase._meta.get_field("turns")
    cells = []
    for pk, column_id, case_id, attempts, case_variables, case_turns, expected in found:
        cell = BatchCell(id=pk, batch_id=plan.batch.pk, column_id=column_id, case_id=case_id, attempts=attempts)
        cell._state.adding, cell._state.db = False, connection.alias
        if case_id is not None:
            cell.case = TestCase(
                id=case_id,
                variables=variables.from_db_value(case_variables, None, connection),
                turns=turns.from_db_value(case_turns, None, connection),
                expected_output=expected,
            )
        else:
            cell.case = None
        cells.append(cell)
    return cells


def _fair_share(plan: Plan, limit: int, now, running: dict[int | None, int]) -> int:
    """How many more cells this drive may claim when other live drives work on the batch: the
    limit is shared (rounded up) so a second worker gets slots instead of waiting while the
    first refills every freed one. Live drives are counted once per heartbeat, not per claim."""
    if plan.worker is None:
        return limit
    if plan.drives_until is None or now >= plan.drives_until:
        live = batch_liveness.live_drives(plan.batch.pk, now)
        if plan.worker.pk not in live:
            live.append(plan.worker.pk)
        plan.drives, plan.rank = len(live), live.index(plan.worker.pk)
        plan.drives_until = now + timedelta(seconds=batch_liveness.BEAT_SECONDS)
    # Shares that add up to the limit exactly: the first (limit % drives) drives get one more. Each
    # rounded up, three drives of 32 had 11 each with Maxim: 33 (hostile trial of #12).
    plan.share = limit // plan.drives + (1 if plan.rank < limit % plan.drives else 0)
    return plan.share - running.get(plan.worker.pk, 0)


def send_cell(cell_id: int) -> None:
    """Send one claimed cell's run (at most once) and record the outcome (tests, one cell at a time)."""
    cell = BatchCell.objects.select_related("run", "case").get(pk=cell_id)
    if cell.run is None or cell.run.status != Run.Status.PENDING:
        return
    plan = plan_for(cell.batch_id)
    cell.run.workspace = plan.batch.workspace
    if not runs.mark_started(cell.run):
        return  # settled "not sent" by another worker, which queues the cell again
    _call(plan, cell)
    with transaction.atomic():
        store([cell], plan.checks)


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


@dataclass(frozen=True)
class Resumed:
    resumed: list[int]
    failed: list[int]  # logged; they stay "running" and the next start tries again
    left: list[int]  # out of time: left for the next start


def resume_all(*, all_pending: bool = False, seconds: float | None = None) -> Resumed:
    """Settle what dead workers left and hand every running batch to a worker again.

    One batch at a time: one that fails is logged and skipped, and after `seconds` the rest is
    left for the next start, so a worker or `make run` starting up is never blocked by it.
    """
    from prompts_app.services.batches import discard_abandoned, enqueue

    discard_abandoned()

    deadline = None if seconds is None else time.monotonic() + seconds
    ids = list(
        BatchComparison.objects.filter(status=BatchComparison.Status.RUNNING)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    resumed: list[int] = []
    failed: list[int] = []
    # Paused or cancelled batches whose cells a dead worker left "running": no drive settles them.
    stopped = BatchCell.objects.filter(state=BatchCell.State.RUNNING).exclude(
        batch__status=BatchComparison.Status.RUNNING
    )
    for batch_id in stopped.values_list("batch_id", flat=True).distinct():
        try:
            settle(batch_id)
        except Exception:  # log it and go on
            log.exception("batch %s: settling a dead worker's cells failed", batch_id)
    batch_liveness.forget_dead()
    for position, batch_id in enumerate(ids):
        if deadline is not None and time.monotonic() > deadline:
            return Resumed(resumed, failed, ids[position:])
        try:
            settle(batch_id, all_pending=all_pending)
            enqueue(BatchComparison(pk=batch_id))
        except Exception:  # log it and go on with the next batch
            log.exception("batch %s could not be resumed", batch_id)
            failed.append(batch_id)
        else:
            resumed.append(batch_id)
    return Resumed(resumed, failed, [])
