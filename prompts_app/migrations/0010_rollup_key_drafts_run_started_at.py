"""History area: one rollup row per key on every database, drafts apart in the rollups,
and Run.started_at for the pending sweep (issues 9.6, 8.5, 9.7).

The old key let PostgreSQL hold several rows for one key (a NULL user never conflicts),
and did not tell drafts from versions, so the rollups are recomputed from the runs
before the new key is enforced: 0007 changes the columns, 0008 recounts, 0009 adds the
key (three migrations, so three transactions: PostgreSQL refuses to index a table with
rows written earlier in the same transaction).
"""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("prompts_app", "0009_test_sets"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="runrollup",
            name="one_rollup_per_key",
        ),
        migrations.AddField(
            model_name="run",
            name="started_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="runrollup",
            name="is_draft",
            field=models.BooleanField(default=False),
        ),
        migrations.AlterField(
            model_name="run",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("success", "Succeeded"),
                    ("failed", "Failed"),
                    ("interrupted", "Interrupted"),
                    ("not_sent", "Not sent"),
                ],
                default="pending",
                max_length=12,
            ),
        ),
    ]
