"""Settle what dead workers left of running batches and hand those batches to a worker again."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from prompts_app.services.batch_worker import resume_all


class Command(BaseCommand):
    help = "Resume running batch comparisons after a restart (make run calls it before starting the workers)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--all", action="store_true",
            help="Settle every cell still marked running, however recent: no worker is running now.",
        )  # fmt: skip

    def handle(self, *args, all: bool = False, **options) -> None:
        ids = resume_all(all_pending=all)
        if ids:
            self.stdout.write(f"Resumed {len(ids)} batch comparison(s): {', '.join(map(str, ids))}")
