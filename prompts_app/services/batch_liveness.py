"""Which batch workers are alive, and whether another batch waits for a worker.

A worker's drive of a batch (services/batch_worker.drive) has a BatchWorker row whose `beat_at`
it refreshes every BEAT_SECONDS, and each cell it claims points to that row. A row not refreshed
for STALE_SECONDS belongs to a worker that died (killed, machine gone): settle() reclaims its
cells at once instead of waiting for the 180 s that any call to Maxim may last, following the
same exactly-once rules (a run never started goes back to the queue, one started is settled
"interrupted" and never sent again).
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.db.models import Exists, Max, OuterRef, Q
from django.utils import timezone

from prompts_app.models import BatchCell, BatchComparison, BatchWorker, Run

BEAT_SECONDS = 2.0
# Above the longest pause between beats of a live worker: a write waiting for SQLite's writer
# lock (the database timeout, 20 s) or an idle wait (up to 5 s). A live worker taken for dead
# loses nothing (its late answers replace the "interrupted"), but its slots would be given twice.
STALE_SECONDS = 30.0
FORGET_AFTER = timedelta(hours=1)  # rows of dead workers, long settled by then


def _this_machine() -> str:
    """The host and the process-id namespace: two processes with the same pid in two containers
    of one host are told apart, and a name from another machine never matches."""
    try:
        space = os.stat("/proc/self/ns/pid").st_ino
    except OSError:  # no /proc (not Linux): process ids are never compared
        return f"{socket.gethostname()}|?"
    return f"{socket.gethostname()}|{space}"


class Heartbeat:
    """This drive's BatchWorker row, kept fresh while it sends and deleted when it ends."""

    def __init__(self, batch_id: int | None = None) -> None:
        name = f"{_this_machine()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.row = BatchWorker.objects.create(name=name[:100], batch_id=batch_id)
        self._next = time.monotonic() + BEAT_SECONDS

    def beat(self) -> None:
        if time.monotonic() < self._next:
            return
        BatchWorker.objects.filter(pk=self.row.pk).update(beat_at=timezone.now())
        self._next = time.monotonic() + BEAT_SECONDS

    def claims_no_more(self) -> None:
        """Its drive has handed over and only stores the answers still coming: it no longer takes
        a share of its batch's limit (batch_worker._fair_share), while its beat keeps its cells."""
        BatchWorker.objects.filter(pk=self.row.pk).update(batch=None)

    def died(self) -> None:
        """Its drive failed before storing its cells: they are a dead worker's cells now, which
        settle() takes at once, instead of cells of no known worker after STALE_SECONDS (hostile
        trial: a crashed drive's cells filled the batch's limit for three minutes)."""
        BatchWorker.objects.filter(pk=self.row.pk).update(beat_at=timezone.now() - timedelta(days=1))

    def stop(self) -> None:
        # Its cells are all stored by now; their `worker` becomes NULL (SET_NULL).
        BatchWorker.objects.filter(pk=self.row.pk).delete()


# How long a running batch may go unsent before its page warns. While another batch's drive is alive,
# the workers may all be busy with other batches (each hands over after a slice, FAIR_SLICE_SECONDS to
# MAXIMUI_BATCH_SLICE_SECONDS): more than a slice. With no live drive of any batch, no worker is sending
# anything: only a hand-over between two slices (a worker's polling interval, 1 s by default) explains
# that, and the person learns in seconds that no worker runs (new-user trial: the page said "Running"
# for 40 s after the only worker was killed).
UNATTENDED_NOTICE = timedelta(seconds=15)
NOBODY_SENDS_NOTICE = timedelta(seconds=5)


@dataclass(frozen=True)
class Unattended:
    seconds: int | None = None  # nobody has sent the batch for this long: the page warns
    due_in: float | None = None  # else, with no live drive of it: the warning is due in this many seconds


def unattended(batch: BatchComparison, now: datetime | None = None) -> Unattended:
    """Whether nobody has been sending this running batch for long (no live drive of it, and no cell
    stored since), for the batch's page, which said "Running · 0.7 calls/s" for as long as no worker
    ran (new-user trial). Nothing while a worker drives it."""
    now = now or timezone.now()
    live = {batch_id for _, batch_id in _live(now, batch__isnull=False)}
    if batch.pk in live:
        return Unattended()
    last_stored = Run.objects.filter(batch_comparison=batch).aggregate(last=Max("finished_at"))["last"]
    since = max(moment for moment in (last_stored, batch.resumed_at, batch.created_at) if moment is not None)
    idle = now - since
    notice = UNATTENDED_NOTICE if live else NOBODY_SENDS_NOTICE
    if idle > notice:
        return Unattended(seconds=int(idle.total_seconds()))
    return Unattended(due_in=(notice - idle).total_seconds())


def is_dead(worker: BatchWorker | None, now: datetime) -> bool:
    """True for a worker whose heartbeat stopped, or at once for one of this machine whose process
    is gone (a worker killed and restarted by `make run`'s supervisor resumes its cells in seconds,
    not after STALE_SECONDS). None (a cell claimed outside a drive, or before heartbeats existed) is
    not known dead: the time rules of settle() apply to it."""
    if worker is None:
        return False
    return worker.beat_at < now - timedelta(seconds=STALE_SECONDS) or _process_gone(worker.name)


def _process_gone(name: str) -> bool:
    if len(name) >= BatchWorker._meta.get_field("name").max_length:
        return False  # cut short: the process id may be too
    machine, _, rest = name.rpartition(":")[0].rpartition(":")
    if machine != _this_machine() or machine.endswith("|?") or not rest.isdigit():
        return False  # another machine's worker: only its heartbeat tells
    try:
        os.kill(int(rest), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by someone else
        return _zombie(int(rest))
    return _zombie(int(rest))  # else alive (or its pid reused: then the heartbeat rule still applies)


def _zombie(pid: int) -> bool:
    """Killed, not reaped yet: its parent (make run's supervisor, stopped or busy) has not waited for
    it. Its pid answers a signal, but nothing runs (new-user trial: with the supervisor paused, a
    SIGKILLed worker read as alive until its heartbeat was stale, and the page's warning took 70 s)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):  # no /proc (not Linux), or gone in between
        return False
    return state in ("Z", "X")


def live_drives(batch_id: int, now: datetime) -> list[int]:
    """The ids of the batch's drives (BatchWorker rows) with a fresh heartbeat and, on this machine, a
    live process (the caller's own included), lowest first: a worker killed and restarted at once no
    longer halves the new drive's share for STALE_SECONDS (hostile trial)."""
    return [pk for pk, _ in _live(now, batch_id=batch_id)]


def _live(now: datetime, **which) -> list[tuple[int, int | None]]:
    """(id, batch id) of the drives `which` picks that have a fresh heartbeat, lowest id first. A
    worker of this machine whose process is gone is not alive, however fresh its last beat (trial: a
    SIGKILLed worker's batch read "Running" for 30 s without a word)."""
    fresh = BatchWorker.objects.filter(beat_at__gte=now - timedelta(seconds=STALE_SECONDS), **which)
    rows = fresh.order_by("pk").values_list("pk", "batch_id", "name")
    return [(pk, batch_id) for pk, batch_id, name in rows if not _process_gone(name)]


def forget_dead() -> None:
    BatchWorker.objects.filter(beat_at__lt=timezone.now() - FORGET_AFTER).delete()


def another_batch_waits(batch_id: int) -> bool:
    """True when another running batch has cells it could send now and none in flight: nobody is
    driving it, most likely because its task waits behind this one in the queue."""
    now = timezone.now()
    ready = Q(not_before__isnull=True) | Q(not_before__lte=now)
    queued = BatchCell.objects.filter(ready, batch=OuterRef("pk"), state=BatchCell.State.QUEUED)
    running = BatchCell.objects.filter(batch=OuterRef("pk"), state=BatchCell.State.RUNNING)
    return (
        BatchComparison.objects.filter(status=BatchComparison.Status.RUNNING)
        .exclude(pk=batch_id)
        .exclude(workspace__batch_settings__throttled_until__gt=now)  # waiting out a 429, not for us
        .filter(Exists(queued))
        .exclude(Exists(running))
        .exists()
    )


# Longer than a free worker takes to pick a task up (db_worker polls every second by default).
QUEUE_GRACE = timedelta(seconds=5)
TASK_PATH = "prompts_app.tasks.run_batch"


def surplus_chain(batch_id: int, now: datetime | None = None) -> bool:
    """True when another task of this batch has waited in the task queue longer than QUEUE_GRACE:
    no free worker took it, so the batch already has a task waiting to carry it on, and the drive
    asking is a chain too many. Pausing and resuming, and every worker's start (resume_all),
    enqueue a task each: their chains never ended (25 of one batch once held another batch's task
    116 s in the queue). A task that a free worker takes at once is not counted: that is a second
    worker sharing the batch (bench_batch enqueues one per extra worker)."""
    from django_tasks import TaskResultStatus
    from django_tasks_db.models import DBTaskResult  # the database backend (none in tests: nothing queued)

    waited = (now or timezone.now()) - QUEUE_GRACE
    queued = DBTaskResult.objects.filter(status=TaskResultStatus.READY, task_path=TASK_PATH, enqueued_at__lt=waited)
    return any(args.get("args") == [batch_id] for args in queued.values_list("args_kwargs", flat=True))
