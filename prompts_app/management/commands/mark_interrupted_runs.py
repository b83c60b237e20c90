from __future__ import annotations

from django.core.management.base import BaseCommand

from prompts_app.services.runs import mark_interrupted_runs


class Command(BaseCommand):
    help = "Mark runs left pending by a crash or restart as interrupted."

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="every pending run, however recent (use when no server is running)")

    def handle(self, *args, **options):
        count = mark_interrupted_runs(all_pending=options["all"])
        if count:
            self.stdout.write(f"Marked {count} run(s) left pending as interrupted.")
