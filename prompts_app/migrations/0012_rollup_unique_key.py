"""The rollup key, unique on every database (see 0007 and models.RunRollup)."""

import django.db.models.functions.comparison
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("prompts_app", "0011_recount_rollups")]

    operations = [
        migrations.AddConstraint(
            model_name="runrollup",
            constraint=models.UniqueConstraint(
                models.F("grain"),
                models.F("day"),
                models.F("workspace"),
                models.F("prompt"),
                models.F("version"),
                django.db.models.functions.comparison.Coalesce("user", models.Value(0)),
                models.F("provider"),
                models.F("model_name"),
                models.F("status"),
                models.F("is_draft"),
                name="one_rollup_per_key_v2",
            ),
        ),
    ]
