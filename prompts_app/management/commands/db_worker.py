"""django-tasks-db's `db_worker`, which first hands every running batch comparison to a worker again.

A worker that died leaves its task marked running in the task table, and nothing runs it again:
without this, a worker restarted by hand (rather than through `make run`, which calls
`resume_batches`) would sit idle beside a batch stuck half-way. Settling what the dead worker
left follows the stale rule (services/batch_worker.settle), so workers that are still alive
elsewhere lose nothing; a second driver of a batch is harmless (cells are claimed one by one).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django_tasks_db.management.commands.db_worker import Command as DBWorker

from prompts_app import maxim, pricing
from prompts_app.services.batch_worker import resume_all

log = logging.getLogger(__name__)


class Command(DBWorker):
    help = DBWorker.help + " Running batch comparisons are resumed first."

    def handle(self, *args, **options) -> None:
        # Batches go back onto the backend this worker serves (the task backend's alias).
        settings.MAXIMUI_BATCH_TASK_BACKEND = options["backend_name"]
        # What the first cell needs (the Maxim pools' TLS context, the price data: about 80 ms), loaded
        # now as the web server loads it (runner.start), not after the first batch's click.
        maxim.warm_up()
        pricing.warm_up()
        try:
            resumed = resume_all(seconds=60).resumed
        except Exception:  # never keep the worker from starting (even listing batches may fail)
            log.exception("resuming batch comparisons failed; starting the worker anyway")
        else:
            if resumed:
                self.stdout.write(f"Resumed {len(resumed)} batch comparison(s): {', '.join(map(str, resumed))}")
        super().handle(*args, **options)
