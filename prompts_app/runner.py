"""One runner for work done outside the request: a comparison's runs, and the sweep of runs
left pending by a process that died.

`submit(run)` hands a recorded pending run over to be sent to Maxim exactly once; the backend
is settings.MAXIMUI_RUNNER:

- "thread" (servers): a bounded pool of threads in this process sends the runs of a batch
  at once, so they finish (and are stored) even when the person leaves the page. Runs wait
  in their workspace's queue and workspaces take turns for threads (_dispatch), so one
  workspace's slow Maxim cannot hold every other workspace's comparisons back. On SQLite
  the workers store their results one at a time (see _one_writer_at_a_time), and a result
  whose write failed is written again, never sent again.
- "immediate" (tests): the run is sent in the caller's thread, on the caller's connection,
  so a test's data, uncommitted in its transaction, is seen.

`start()` is called once per server process (maximui/wsgi.py): it sweeps at once and then
every SWEEP_SECONDS in a daemon thread, settling runs whose process can no longer finish
them (services/runs.is_stale; several servers may share one database, so a run is only
settled once no live process could still be sending it). Pages never sweep: they show such
a run as settled without writing (services/runs.shown_as_settled). The management command
`mark_interrupted_runs` sweeps by the same rule.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.db import OperationalError, connection
from django.utils import timezone

from prompts_app import maxim, pricing
from prompts_app.models import Run
from prompts_app.pricing import CustomPriceRule
from prompts_app.services import run_watch
from prompts_app.services.runs import call_maxim, execute_run, mark_all_started, mark_interrupted_runs, store_finished

log = logging.getLogger(__name__)

# Well under PENDING_GRACE_SECONDS: a stale run shows as settled on pages anyway, and is
# settled in the database (history totals included) within a minute.
SWEEP_SECONDS = 60

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_futures: set[Future] = set()  # in flight, so tests and the benchmark can wait for them
_sweeper: threading.Thread | None = None
_stop = threading.Event()  # ends the sweeper; only tests set it


def submit(run: Run, *, price_rules: list[CustomPriceRule] | None = None) -> Future:
    """Send the pending `run` outside the request (or now, with the "immediate" backend).

    `price_rules`: the workspace's custom prices, read once for a whole batch. The future's
    result is the stored run.
    """
    return submit_all([run], price_rules=price_rules)[0]


def submit_all(runs: list[Run], *, price_rules: list[CustomPriceRule] | None = None) -> list[Future]:
    """submit() for a comparison's runs, which should leave together.

    They wait in their workspace's queue; the dispatcher hands them to free threads, taking
    workspaces in turn (the one with the fewest runs out goes first) and keeping the last
    threads (RESERVED_PER) for a workspace with nothing out: another workspace's slow Maxim, or
    its 160 queued runs, held a comparison in the queue for minutes (hostile trial). The runs given
    threads at one go are marked started by one statement (each thread marking its own took
    turns at the database: the eighth request left tens of ms after the first), and only those:
    a run still queued when the process dies is "not sent", never "interrupted"."""
    if settings.MAXIMUI_RUNNER == "immediate":
        futures = []
        for run in runs:
            future: Future = Future()
            future.set_result(_execute(run, price_rules))
            futures.append(future)
        return futures
    jobs = [_Job(run, price_rules, Future()) for run in runs]
    with _queue_lock:
        for job in jobs:
            _waiting.setdefault(job.run.workspace_id, deque()).append(job)
            _futures.add(job.future)
            job.future.add_done_callback(_futures.discard)
    _dispatch()
    return [job.future for job in jobs]


@dataclass
class _Job:
    run: Run
    price_rules: list[CustomPriceRule] | None
    future: Future


_queue_lock = threading.Lock()
_waiting: dict[int, deque[_Job]] = {}  # workspace id -> its runs not given a thread yet, oldest first
_out: Counter[int] = Counter()  # workspace id -> its runs given a thread and not done
# One thread in RESERVED_PER (2 of `make run`'s 16) only goes to a workspace with no run out, so a
# workspace (or two) with many slow runs never keeps another's comparison waiting for a slow call
# (hostile trials: 8.5 minutes, then 20 s); one workspace alone still uses the other 14.
RESERVED_PER = 8


def _dispatch() -> None:
    """Give free threads to waiting runs, workspaces in turn; mark them started together."""
    threads = settings.MAXIMUI_RUNNER_THREADS
    reserved = threads // RESERVED_PER
    taken: list[_Job] = []
    with _queue_lock:
        while (busy := sum(_out.values())) < threads:
            ready = [ws for ws, queue in _waiting.items() if queue and (_out[ws] == 0 or busy < threads - reserved)]
            if not ready:
                break
            workspace = min(ready, key=lambda ws: _out[ws])
            taken.append(_waiting[workspace].popleft())
            _out[workspace] += 1  # its thread is reserved now: no other dispatch counts it free
        for workspace in [ws for ws, queue in _waiting.items() if not queue]:
            del _waiting[workspace]
    if not taken:
        return
    try:
        started = {run.pk for run in _mark_started([job.run for job in taken])}
    except BaseException:
        for job in taken:  # not sent: the sweep settles them "not sent" (never started)
            _done(job)
            job.future.set_exception(RuntimeError("the runs could not be marked started"))
        raise
    for job in taken:
        if job.run.pk in started:
            _executor().submit(_run_job, job)
        else:  # the sweep settled it "not sent" while it waited: it must not be sent now
            _done(job)
            job.future.set_result(job.run)


def _mark_started(runs: list[Run]) -> list[Run]:
    if connection.vendor != "sqlite":
        return mark_all_started(runs)
    with _sqlite_writes:  # SQLite's own wait for its lock sleeps in 1, 2, 5 ... ms steps
        return mark_all_started(runs)


def _run_job(job: _Job) -> None:
    try:
        job.future.set_result(_execute_in_worker(job.run, job.price_rules))
    except Exception as exc:  # noqa: BLE001 - logged by _execute_in_worker; the caller's future says it too
        job.future.set_exception(exc)
    finally:
        _done(job)
    try:
        _dispatch()  # this thread is free: the next waiting run, from whichever workspace's turn it is
    except Exception:
        log.exception("handing queued runs to threads failed; the next finished run tries again")
    finally:
        connection.close()  # a pool thread may idle for hours


def _done(job: _Job) -> None:
    with _queue_lock:
        _out[job.run.workspace_id] -= 1
        if _out[job.run.workspace_id] <= 0:
            del _out[job.run.workspace_id]


def wait(timeout: float = 30.0) -> bool:
    """Wait until every run submitted in this process is done (tests, benchmark)."""
    _done, not_done = wait_futures(list(_futures), timeout=timeout)
    return not not_done


def sweep() -> int:
    """Settle the runs left pending by a process that died; returns how many."""
    return mark_interrupted_runs()


def start() -> None:
    """Start this process's sweeper (once): a sweep now, then every SWEEP_SECONDS. First, load what
    a process's first run needs, so the first person to run something does not wait for it: the
    TLS context of the Maxim pools and the price data (0.6 s of CPU together, bench_browser_compare)."""
    global _sweeper
    with _pool_lock:
        if _sweeper is not None:
            return
        _sweeper = threading.Thread(target=_sweep_forever, name="runner-sweep", daemon=True)
    maxim.warm_up()
    pricing.warm_up()
    # The encodings take seconds of CPU: loaded beside the first requests, not before them.
    threading.Thread(target=pricing.warm_up_tokenizers, name="tokenizers", daemon=True).start()
    _sweeper.start()


def _sweep_forever() -> None:
    while True:
        try:
            count = sweep()
            if count:
                log.info("settled %s run(s) left pending by a stopped process", count)
        except Exception:  # a locked or unreachable database now is no reason to stop sweeping
            log.exception("sweeping runs left pending failed")
        finally:
            connection.close()
        if _stop.wait(SWEEP_SECONDS):
            return


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=settings.MAXIMUI_RUNNER_THREADS, thread_name_prefix="runner")
        return _pool


def _execute(run: Run, price_rules: list[CustomPriceRule] | None) -> Run:
    """The immediate backend's send and store (services/runs.execute_run)."""
    return execute_run(run, price_rules=price_rules)


def _send_and_store(run: Run, price_rules: list[CustomPriceRule] | None) -> Run:
    """A pool thread's run, marked started by _dispatch: sent once, then stored with whatever
    other threads' runs are waiting to be (_store_answered)."""
    call_maxim(run, price_rules)
    run_watch.answered(1)
    try:
        _store_answered(run)
    finally:
        run_watch.answered(-1)
    run_watch.run_stored()  # committed: pages held open on this run answer now
    log.info("run %s %s in %s ms", run.pk, run.status, run.latency_ms)
    return run


_answered: list[Run] = []  # runs Maxim answered, waiting for their turn to be stored
_answered_lock = threading.Lock()
_store_turn = threading.Lock()  # one group stored at a time (on SQLite: _sqlite_writes)
STORE_RETRIES = (0.2, 0.5, 1.0, 2.0)  # seconds before each new try of a store that failed


def _store_answered(run: Run) -> None:
    """Store `run`'s result, and those of every run answered meanwhile, in one transaction
    (group commit). A comparison's eight answers come within milliseconds: stored one by one,
    they took turns at the one writer, each a transaction, and each woke the page's stream to
    draw again, all on one process's GIL (bench_browser_compare: the last column showed 0.15 s
    after its answer). The thread whose turn comes stores what is waiting, its own run included
    unless an earlier turn already stored it; a store that failed is tried again run by run,
    never sent again (the call was made: re-sending would pay twice)."""
    with _answered_lock:
        _answered.append(run)
    with _writing():
        with _answered_lock:
            group = _answered[:]
            _answered.clear()
        if group:
            try:
                _store_group(group)
            except Exception as exc:  # noqa: BLE001 - a fault of ours: each run of the group says so in its thread
                for answered in group:
                    answered.store_failure = exc
    failure = getattr(run, "store_failure", None)
    if failure is not None:
        raise failure


def _store_group(group: list[Run]) -> None:
    try:
        store_finished(group)
        return
    except Exception:
        log.warning("storing %s answered run(s) failed; storing each again", len(group), exc_info=True)
    # One run's value that no column holds must not fail the others of its group, which may be
    # another workspace's (hostile trial: 1e19 tokens lost three of another workspace's answers).
    for run in group:
        run.store_failure = _store_alone(run)


def _store_alone(run: Run) -> Exception | None:
    """None once `run` is stored; else why not. Only a locked database is worth another try."""
    failure: Exception | None = None
    for delay in (0.0, *STORE_RETRIES):
        time.sleep(delay)
        try:
            store_finished([run])
            return None
        except OperationalError as exc:
            failure = exc
        except Exception as exc:  # noqa: BLE001 - raised in the run's own thread, which fails the run
            return exc
    return failure


@contextmanager
def _writing() -> Iterator[None]:
    """This thread's turn to store: on SQLite the process's one writer (_sqlite_writes, which
    _one_writer_at_a_time would otherwise take at the first write), elsewhere _store_turn."""
    if connection.vendor != "sqlite":
        with _store_turn:
            yield
        return
    if getattr(_writer, "holds", False):
        yield
        return
    with _sqlite_writes:
        _writer.holds = True
        try:
            yield
        finally:
            _writer.holds = False


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


def _execute_in_worker(run: Run, price_rules: list[CustomPriceRule] | None) -> Run:
    """Send a run already marked started (_dispatch) and store what came back."""
    try:
        if connection.vendor == "sqlite":
            with connection.execute_wrapper(_one_writer_at_a_time):
                return _send_and_store(run, price_rules)
        return _send_and_store(run, price_rules)
    except Exception:
        log.exception("run %s failed unexpectedly in the runner", run.pk)
        Run.objects.filter(pk=run.pk, status=Run.Status.PENDING).update(
            status=Run.Status.FAILED,
            error="The dashboard failed while storing this run; see the server log.",
            finished_at=timezone.now(),
        )
        raise
    finally:
        _release_writer()
        # Each worker thread has its own connection; a pool thread may idle for hours.
        connection.close()
