"""Comparing versions side by side: save a comparison, and run every column at once on a
bounded pool of server threads. Reading the results is in compare_report.py."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from prompts_app.models import Comparison, ComparisonColumn, Draft, PromptVersion, Run, Workspace
from prompts_app.services.once import create_once
from prompts_app.services.runs import execute_run, mark_started, start_run

log = logging.getLogger(__name__)

MIN_COLUMNS, MAX_COLUMNS = 2, 8
MAX_REPEATS = 10

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_futures: set[Future] = set()  # in flight, so tests and the benchmark can wait for them


@dataclass(frozen=True)
class ColumnSpec:
    """One column as chosen in the form: a version, or a draft run against its base version."""

    version: PromptVersion
    draft: Draft | None = None
    input: dict[str, Any] | None = None  # per-column input when the input is not shared


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            # Bounded: eight columns times ten repeats must not open eighty connections at once.
            workers = getattr(settings, "MAXIMUI_COMPARE_WORKERS", 16)
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="compare")
        return _pool


def draft_base_version(draft: Draft) -> PromptVersion | None:
    """The version a draft runs against: its base, else the prompt's newest version."""
    return draft.base_version or draft.prompt.versions.order_by("-number", "-created_at").first()


def create_comparison(
    *,
    workspace: Workspace,
    user: AbstractBaseUser,
    columns: list[ColumnSpec],
    shared_input: bool,
    input: dict[str, Any],
    title: str = "",
    submit_token: str = "",
) -> tuple[Comparison, bool]:
    """Save a comparison and its columns. Returns (comparison, created).

    The same form posted twice (same `submit_token`) returns the first comparison and
    created=False: the caller must not run it again.
    """
    def create() -> Comparison:
        comparison = Comparison.objects.create(
            workspace=workspace, title=title, shared_input=shared_input, input=input,
            created_by=user, submit_token=submit_token,
        )
        for position, spec in enumerate(columns):
            ComparisonColumn.objects.create(
                comparison=comparison,
                position=position,
                version=spec.version,
                draft_content=spec.draft.content() if spec.draft is not None else None,
                input=None if shared_input else spec.input,
            )
        return comparison

    return create_once(Comparison, submit_token, {"created_by": user, "submit_token": submit_token}, create)


def batch_key_prefix(comparison: Comparison, batch: int, column: ComparisonColumn | None = None) -> str:
    prefix = f"cmp-{comparison.pk}-{batch}-"
    return prefix + f"{column.pk}-" if column is not None else prefix


def column_input(comparison: Comparison, column: ComparisonColumn) -> dict[str, Any]:
    return column.input if not comparison.shared_input and column.input else comparison.input


def run_comparison(
    comparison: Comparison, *, user: AbstractBaseUser, repeats: int = 1, batch: int | None = None
) -> list[Future]:
    """Start a new batch: `repeats` runs per column, all sent at once from server threads.

    Every pending run is recorded here, in the request, before anything is sent; the
    pool then sends each exactly once, so runs finish (and are recorded) even if the
    user leaves the page. `batch` is the number the form expected; when another post
    already claimed it (a double click), nothing new is started.
    """
    repeats = max(1, min(MAX_REPEATS, repeats))
    batch = comparison.batch + 1 if batch is None else batch
    runs: list[Run] = []
    # One transaction for the whole batch (one commit, not one per run); the workers
    # get the runs only after it commits, so they always find them.
    with transaction.atomic():
        claimed = Comparison.objects.filter(pk=comparison.pk, batch=batch - 1).update(
            batch=batch, repeats=repeats, updated_at=timezone.now()
        )
        if not claimed:
            comparison.refresh_from_db()
            return []
        comparison.batch, comparison.repeats = batch, repeats
        for column in comparison.columns.select_related("version__prompt__workspace"):
            for n in range(repeats):
                run, created = start_run(
                    version=column.version,
                    inputs=column_input(comparison, column),
                    user=user,
                    content=column.draft_content,
                    comparison=comparison,
                    column=column,
                    idempotency_key=batch_key_prefix(comparison, batch, column) + str(n),
                )
                if created:
                    runs.append(run)
    return [_submit(run) for run in runs]


def _submit(run: Run) -> Future:
    if getattr(settings, "MAXIMUI_COMPARE_INLINE", False):
        # Tests on the transactional test DB: same thread, same connection.
        future: Future = Future()
        future.set_result(_execute(run))
        return future
    future = _executor().submit(_execute_in_worker, run)
    _futures.add(future)
    future.add_done_callback(_futures.discard)
    return future


def _execute(run: Run) -> Run:
    try:
        return execute_run(run)
    except DatabaseError:
        # The call was made and its result is on `run`; only the write failed (a locked
        # SQLite file under load). Retry the write alone: re-sending would pay twice.
        log.warning("run %s: storing the result failed, retrying", run.pk, exc_info=True)
        for delay in (0.2, 0.5, 1.0, 2.0):
            _release_writer()  # let the others store theirs meanwhile
            time.sleep(delay)
            try:
                run.save()
                return run
            except DatabaseError:
                continue
        raise


_sqlite_writes = threading.Lock()
_writer = threading.local()


def _one_writer_at_a_time(execute, sql, params, many, context):
    # SQLite takes one writer at a time, and a writer that finds the file locked sleeps
    # in 1, 2, 5 ... 100 ms steps: eight columns finishing together would wait up to
    # ~0.1 s for one another. Instead, a worker's first write takes this process-wide
    # lock and keeps it until the worker is done (the run's writes are a few ms at the
    # very end, after Maxim answered), so writers hand over at once. Holding it across
    # the run's transactions means no worker ever waits for it while holding SQLite's lock.
    if not getattr(_writer, "holds", False) and sql.lstrip()[:6].upper() not in ("SELECT", "PRAGMA"):
        _sqlite_writes.acquire()
        _writer.holds = True
    return execute(sql, params, many, context)


def _release_writer() -> None:
    if getattr(_writer, "holds", False):
        _writer.holds = False
        _sqlite_writes.release()


def _execute_in_worker(run: Run) -> Run:
    try:
        # Before the SQLite writer lock below, which is held until the worker is done.
        if not mark_started(run):  # settled as "not sent" while it waited in the pool
            return run
        if connection.vendor == "sqlite":
            with connection.execute_wrapper(_one_writer_at_a_time):
                return _execute(run)
        return _execute(run)
    except Exception:
        log.exception("comparison run %s failed unexpectedly", run.pk)
        Run.objects.filter(pk=run.pk, status=Run.Status.PENDING).update(
            status=Run.Status.FAILED, error="The dashboard failed while storing this run; see the server log."
        )
        raise
    finally:
        _release_writer()
        # Each worker thread has its own connection; a pool thread may idle for hours.
        connection.close()


def wait_for_background_runs(timeout: float = 30.0) -> bool:
    """Wait until every comparison run started in this process is done (tests, benchmark)."""
    done, not_done = wait_futures(list(_futures), timeout=timeout)
    return not not_done
