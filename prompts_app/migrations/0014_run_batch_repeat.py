"""A comparison's batch becomes two fields of Run, `batch` and `repeat` (issue #10).

Until now both were packed into the run's idempotency key, "cmp-<comparison>-<batch>-<column>-<repeat>".
The data migration reads them back out in SQL, one UPDATE per range of CHUNK primary keys (the
comparison and column ids are on the row, so each part is found by its position, the same way
on SQLite and PostgreSQL), and clears the keys: the unique (column, batch, repeat) constraint now
guards a double-posted batch. A run whose comparison was deleted belongs to no batch and keeps
its key. Backwards, the keys are written again from the fields.
"""

from __future__ import annotations

from django.db import migrations, models
from django.db.models import CharField, IntegerField, Max, Min, Value
from django.db.models.functions import Cast, Concat, Length, StrIndex, Substr

CHUNK = 20_000
TEXT = CharField()


def _text(field: str) -> Cast:
    return Cast(field, TEXT)


def keys_to_fields(apps, schema_editor) -> None:
    Run = apps.get_model("prompts_app", "Run")
    runs = Run.objects.filter(idempotency_key__startswith="cmp-", comparison__isnull=False, column__isnull=False)
    bounds = runs.aggregate(low=Min("pk"), high=Max("pk"))
    if bounds["low"] is None:
        return
    prefix = Concat(Value("cmp-"), _text("comparison_id"), Value("-"), output_field=TEXT)
    rest = Substr("idempotency_key", Length(prefix) + 1)  # "<batch>-<column>-<repeat>"
    dash = StrIndex(rest, Value("-"))
    batch = Substr(rest, 1, dash - 1)
    repeat = Substr(Substr(rest, dash + 1), Length(_text("column_id")) + 2)  # after "<column>-"
    for low in range(bounds["low"], bounds["high"] + 1, CHUNK):
        runs.filter(pk__gte=low, pk__lt=low + CHUNK).update(
            batch=Cast(batch, IntegerField()), repeat=Cast(repeat, IntegerField()), idempotency_key=""
        )


def fields_to_keys(apps, schema_editor) -> None:
    Run = apps.get_model("prompts_app", "Run")
    Run.objects.filter(batch__isnull=False, comparison__isnull=False, column__isnull=False).update(
        idempotency_key=Concat(
            Value("cmp-"),
            _text("comparison_id"),
            Value("-"),
            _text("batch"),
            Value("-"),
            _text("column_id"),
            Value("-"),
            _text("repeat"),
            output_field=TEXT,
        )
    )


class Migration(migrations.Migration):
    dependencies = [("prompts_app", "0013_history_run_search_errors")]

    operations = [
        migrations.AddField(model_name="run", name="batch", field=models.PositiveIntegerField(blank=True, null=True)),
        migrations.AddField(
            model_name="run", name="repeat", field=models.PositiveSmallIntegerField(blank=True, null=True)
        ),
        migrations.RunPython(keys_to_fields, fields_to_keys),
        migrations.AddConstraint(
            model_name="run",
            constraint=models.UniqueConstraint(
                condition=models.Q(column__isnull=False),
                fields=("column", "batch", "repeat"),
                name="one_run_per_batch_place",
            ),
        ),
    ]
