"""Writing many rows' fields by primary key in one prepared statement (a batch worker's hot path)."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connections, models, router


def update_rows(objs: Sequence[models.Model], fields: Sequence[str], *, unless: str = "") -> int:
    """UPDATE `fields` of each of `objs` (one model) by primary key, with executemany; returns
    how many rows changed. `unless` names a boolean field: rows where it is already true are left alone.

    Django's bulk_update builds a CASE WHEN per field and row: compiling it cost more than
    running it (py-spy on bench_batch). Values go through each field's get_db_prep_save,
    as save() does, so JSON, dates and decimals are stored the same way on SQLite and PostgreSQL.
    """
    if not objs:
        return 0
    model = type(objs[0])
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    columns = [model._meta.get_field(name) for name in fields]
    sets = ", ".join(f"{quote(field.column)} = %s" for field in columns)
    sql = f"UPDATE {quote(model._meta.db_table)} SET {sets} WHERE {quote(model._meta.pk.column)} = %s"
    if unless:
        sql += f" AND NOT {quote(model._meta.get_field(unless).column)}"
    params = [
        [field.get_db_prep_save(getattr(obj, field.attname), connection=connection) for field in columns] + [obj.pk]
        for obj in objs
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
        # The sum over every row on SQLite and on PostgreSQL (psycopg 3) alike.
        return cursor.rowcount
