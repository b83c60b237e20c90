"""Recount the history rollups from the runs (see 0007), and give pending runs from before
Run.started_at existed a start time, so the sweep never calls them "not sent"."""

from django.db import migrations, models


def runs_in_flight_may_have_been_sent(apps, schema_editor) -> None:
    # Pending runs from before started_at existed may be with Maxim: never call them "not sent".
    Run = apps.get_model("prompts_app", "Run")
    Run.objects.filter(status="pending").update(started_at=models.F("created_at"))


def recount_rollups(apps, schema_editor) -> None:
    from prompts_app.services import rollups

    Run, RunRollup = apps.get_model("prompts_app", "Run"), apps.get_model("prompts_app", "RunRollup")
    if Run.objects.exists() or RunRollup.objects.exists():
        rollups.rebuild(Run, RunRollup)


class Migration(migrations.Migration):
    dependencies = [("prompts_app", "0010_rollup_key_drafts_run_started_at")]

    operations = [
        migrations.RunPython(runs_in_flight_may_have_been_sent, migrations.RunPython.noop),
        migrations.RunPython(recount_rollups, migrations.RunPython.noop),
    ]
