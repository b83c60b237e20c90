from django.db import migrations, models
import django.db.models.deletion


class Migration(migrations.Migration):
    dependencies = [
        ("prompts_app", "0022_batch_summary_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="batchworker",
            name="batch",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="prompts_app.batchcomparison",
            ),
        ),
    ]
