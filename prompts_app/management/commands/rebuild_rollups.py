from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from prompts_app.services import rollups

SHOWN = 50  # differences printed in full; the rest are counted


class Command(BaseCommand):
    help = (
        "Compare the history rollups with the runs, print every difference, then rebuild them "
        "from the runs. With --check, only report, and exit non-zero if they drifted."
    )

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="report drift without changing anything")

    def handle(self, *args, **options):
        found = rollups.drift()
        for item in found[:SHOWN]:
            grain, day, *key = item.key
            names = ", ".join(f"{name}={value}" for name, value in zip(rollups.KEY_FIELDS, key))
            self.stdout.write(f"{grain} {day} {names}: {item.field} stored {item.stored}, runs say {item.expected}")
        if len(found) > SHOWN:
            self.stdout.write(f"... and {len(found) - SHOWN} more difference(s).")
        if options["check"]:
            if found:
                raise CommandError(f"The rollups drifted from the runs: {len(found)} difference(s).")
            self.stdout.write("The rollups match the runs.")
            return
        rows = rollups.rebuild()
        verdict = f"fixed {len(found)} difference(s)" if found else "no drift found"
        self.stdout.write(f"Rebuilt {rows} rollup row(s) from the runs; {verdict}.")
