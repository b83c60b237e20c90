import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("prompts_app", "0015_batch_comparisons"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="retried_cell",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="retried_runs",
                to="prompts_app.batchcell",
            ),
        ),
    ]
