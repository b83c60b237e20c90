import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def label_batch_runs(apps, schema_editor):
    """Runs of batches started before this migration: their batch, from their cell."""
    Run = apps.get_model("prompts_app", "Run")
    BatchCell = apps.get_model("prompts_app", "BatchCell")
    cell_batch = BatchCell.objects.filter(run=OuterRef("pk")).values("batch_id")[:1]
    Run.objects.filter(batch_cell__isnull=False).update(batch_comparison=Subquery(cell_batch))


class Migration(migrations.Migration):
    dependencies = [
        ("prompts_app", "0017_run_retried_cell"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="batch_comparison",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="runs",
                to="prompts_app.batchcomparison",
            ),
        ),
        migrations.RunPython(label_batch_runs, migrations.RunPython.noop),
    ]
