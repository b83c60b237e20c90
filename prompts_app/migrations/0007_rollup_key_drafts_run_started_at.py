"""History area: one rollup row per key on every database, drafts apart in the rollups,
and Run.started_at for the pending sweep (issues 9.6, 8.5, 9.7).

The old key let PostgreSQL hold several rows for one key (a NULL user never conflicts),
and did not tell drafts from versions, so the rollups are recomputed from the runs
before the new key is enforced.
"""

import django.db.models.functions.comparison
from django.conf import settings
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

    dependencies = [
        ('prompts_app', '0006_draft_creating_since'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='runrollup',
            name='one_rollup_per_key',
        ),
        migrations.AddField(
            model_name='run',
            name='started_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='runrollup',
            name='is_draft',
            field=models.BooleanField(default=False),
        ),
        migrations.AlterField(
            model_name='run',
            name='status',
            field=models.CharField(choices=[('pending', 'Pending'), ('success', 'Succeeded'), ('failed', 'Failed'), ('interrupted', 'Interrupted'), ('not_sent', 'Not sent')], default='pending', max_length=12),
        ),
        migrations.RunPython(runs_in_flight_may_have_been_sent, migrations.RunPython.noop),
        migrations.RunPython(recount_rollups, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name='runrollup',
            constraint=models.UniqueConstraint(models.F('grain'), models.F('day'), models.F('workspace'), models.F('prompt'), models.F('version'), django.db.models.functions.comparison.Coalesce('user', models.Value(0)), models.F('provider'), models.F('model_name'), models.F('status'), models.F('is_draft'), name='one_rollup_per_key_v2'),
        ),
    ]
