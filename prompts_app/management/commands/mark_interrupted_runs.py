from __future__ import annotations

from django.core.management.base import BaseCommand

from prompts_app.services.runs import mark_interrupted_runs


class Command(BaseCommand):
    help = (
        "Settle runs left pending by a stopped process (the rule the runner's sweep uses: only runs "
        "no live server could still be sending). Several servers may share the database."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--all",
            action="store_true",
            help="every pending run, however recent: only when no server uses the database",
        )

    def handle(self, *args, **options):
        count = mark_interrupted_runs(all_pending=options["all"])
        if count:
            self.stdout.write(f"Marked {count} run(s) left pending as interrupted or not sent.")
