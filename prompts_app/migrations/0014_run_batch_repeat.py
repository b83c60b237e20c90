"""A comparison's batch becomes two fields of Run, `batch` and `repeat` (issue #10).

Until now both were packed into the run's idempotency key, "cmp-<comparison>-<batch>-<column>-<repeat>".
The data migration reads them back out of the keys, in chunks of primary keys, with one UPDATE
per (batch, repeat) pair in a chunk (a handful: repeats are at most 10), and clears the keys:
the unique (column, batch, repeat) constraint now guards a double-posted batch. Backwards, the
keys are written again from the fields.
"""

from __future__ import annotations

import re
from collections import defaultdict

from django.db import migrations, models
from django.db.models import CharField, Value
from django.db.models.functions import Cast, Concat

KEY = re.compile(r"cmp-\d+-(\d+)-\d+-(\d+)")
CHUNK = 5_000


def keys_to_fields(apps, schema_editor) -> None:
    Run = apps.get_model("prompts_app", "Run")
    runs = Run.objects.filter(idempotency_key__startswith="cmp-").order_by("pk")
    last = 0
    while True:
        chunk = list(runs.filter(pk__gt=last).values_list("pk", "idempotency_key")[:CHUNK])
        if not chunk:
            return
        places: dict[tuple[int, int], list[int]] = defaultdict(list)
        for pk, key in chunk:
            match = KEY.fullmatch(key)
            if match:
                places[int(match[1]), int(match[2])].append(pk)
        for (batch, repeat), pks in places.items():
            Run.objects.filter(pk__in=pks).update(batch=batch, repeat=repeat, idempotency_key="")
        last = chunk[-1][0]


def fields_to_keys(apps, schema_editor) -> None:
    Run = apps.get_model("prompts_app", "Run")
    text = CharField()
    Run.objects.filter(batch__isnull=False, comparison__isnull=False, column__isnull=False).update(
        idempotency_key=Concat(
            Value("cmp-"), Cast("comparison_id", text), Value("-"), Cast("batch", text), Value("-"),
            Cast("column_id", text), Value("-"), Cast("repeat", text), output_field=text,
        )
    )  # fmt: skip


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
