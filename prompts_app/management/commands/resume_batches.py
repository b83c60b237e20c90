"""Settle what dead workers left of running batches and hand those batches to a worker again.

`make run` calls this before starting the web server, so it must never block start-up: a batch
that fails to resume is logged and skipped (it stays "running" and the next start tries again),
the command stops taking new batches after --seconds, and it always exits 0. A database that
stays locked is bounded by SQLite's busy timeout, which raises, and is caught like any failure.
"""

from __future__ import annotations

import logging

from django.core.management.base import BaseCommand

from prompts_app.services import batch_worker

logger = logging.getLogger(__name__)
DEFAULT_SECONDS = 60.0


class Command(BaseCommand):
    help = "Resume running batch comparisons after a restart (make run calls it before starting the workers)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--all",
            action="store_true",
            help=(
                "Settle every cell still marked running, however recent, but those of live workers "
                "(make worker, other machines): this server's own worker is not running yet."
            ),
        )
        parser.add_argument(
            "--seconds",
            type=float,
            default=DEFAULT_SECONDS,
            help="Stop resuming after this long; the rest is resumed at the next start.",
        )

    def handle(self, *args, all: bool = False, seconds: float = DEFAULT_SECONDS, **options) -> None:
        try:
            outcome = batch_worker.resume_all(all_pending=all, seconds=seconds)
        except Exception as exc:  # even listing batches may fail (locked database)
            logger.exception("resume_batches: could not list running batches")
            self.stderr.write(f"Could not resume batch comparisons ({type(exc).__name__}: {exc}); starting anyway.")
            return
        if outcome.resumed:
            self.stdout.write(
                f"Resumed {len(outcome.resumed)} batch comparison(s): {', '.join(map(str, outcome.resumed))}"
            )
        if outcome.failed:
            self.stderr.write(
                f"Could not resume batch comparison(s) {', '.join(map(str, outcome.failed))}; see the log."
            )
        if outcome.left:
            self.stderr.write(
                f"Out of time: {len(outcome.left)} batch comparison(s) left for the next start: "
                f"{', '.join(map(str, outcome.left))}"
            )
