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
from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from prompts_app.models import BatchCell, BatchComparison, BatchWorker

BEAT_SECONDS = 2.0
# Above the longest pause between beats of a live worker: a write waiting for SQLite's writer
# lock (the database timeout, 20 s) or an idle wait (up to 5 s). A live worker taken for dead
# loses nothing (its late answers replace the "interrupted"), but its slots would be given twice.
STALE_SECONDS = 30.0
FORGET_AFTER = timedelta(hours=1)  # rows of dead workers, long settled by then


class Heartbeat:
    """This drive's BatchWorker row, kept fresh while it sends and deleted when it ends."""

    def __init__(self) -> None:
        name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.row = BatchWorker.objects.create(name=name[:100])
        self._next = time.monotonic() + BEAT_SECONDS

    def beat(self) -> None:
        if time.monotonic() < self._next:
            return
        BatchWorker.objects.filter(pk=self.row.pk).update(beat_at=timezone.now())
        self._next = time.monotonic() + BEAT_SECONDS

    def stop(self) -> None:
        # Its cells are all stored by now; their `worker` becomes NULL (SET_NULL).
        BatchWorker.objects.filter(pk=self.row.pk).delete()


def is_dead(worker: BatchWorker | None, now: datetime) -> bool:
    """True for a worker whose heartbeat stopped. None (a cell claimed outside a drive, or before
    heartbeats existed) is not known dead: the time rules of settle() apply to it."""
    return worker is not None and worker.beat_at < now - timedelta(seconds=STALE_SECONDS)


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
