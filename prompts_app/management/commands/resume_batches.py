"""Settle what dead workers left of running batches and hand those batches to a worker again.

`make run` calls this before starting the web server, so it must never block start-up: a batch
that fails to resume is logged and skipped (it stays "running" and the next start tries again),
the command stops taking new batches after --seconds, and it always exits 0. A database that
stays locked is bounded by SQLite's busy timeout, which raises, and is caught like any failure.
"""

from __future__ import annotations

import logging
import time

from django.core.management.base import BaseCommand

from prompts_app.models import BatchComparison
from prompts_app.services import batch_worker, batches

logger = logging.getLogger(__name__)
DEFAULT_SECONDS = 60.0


class Command(BaseCommand):
    help = "Resume running batch comparisons after a restart (make run calls it before starting the workers)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--all",
            action="store_true",
            help="Settle every cell still marked running, however recent: no worker is running now.",
        )
        parser.add_argument(
            "--seconds",
            type=float,
            default=DEFAULT_SECONDS,
            help="Stop resuming after this long; the rest is resumed at the next start.",
        )

    def handle(self, *args, all: bool = False, seconds: float = DEFAULT_SECONDS, **options) -> None:
        try:
            resumed, failed, left = self._resume(all_pending=all, deadline=time.monotonic() + seconds)
        except Exception as exc:  # even listing batches may fail (locked database)
            logger.exception("resume_batches: could not list running batches")
            self.stderr.write(f"Could not resume batch comparisons ({type(exc).__name__}: {exc}); starting anyway.")
            return
        if resumed:
            self.stdout.write(f"Resumed {len(resumed)} batch comparison(s): {', '.join(map(str, resumed))}")
        if failed:
            self.stderr.write(f"Could not resume batch comparison(s) {', '.join(map(str, failed))}; see the log.")
        if left:
            self.stderr.write(
                f"Out of time: {len(left)} batch comparison(s) left for the next start: {', '.join(map(str, left))}"
            )

    def _resume(self, *, all_pending: bool, deadline: float) -> tuple[list[int], list[int], list[int]]:
        # The same steps as batch_worker.resume_all, one batch at a time so one failure skips only it.
        running = BatchComparison.objects.filter(status=BatchComparison.Status.RUNNING)
        ids = list(running.order_by("pk").values_list("pk", flat=True))
        resumed: list[int] = []
        failed: list[int] = []
        for position, batch_id in enumerate(ids):
            if time.monotonic() > deadline:
                return resumed, failed, ids[position:]
            try:
                batch_worker.settle(batch_id, all_pending=all_pending)
                batches.enqueue(BatchComparison(pk=batch_id))
            except Exception:  # log it and go on with the next batch
                logger.exception("resume_batches: batch %s could not be resumed", batch_id)
                failed.append(batch_id)
            else:
                resumed.append(batch_id)
        return resumed, failed, []
