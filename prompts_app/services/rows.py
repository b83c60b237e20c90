"""Writing many rows' fields by primary key in one prepared statement (a batch worker's hot path)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db import connections, models, router

# Fields whose get_db_prep_save returns a value of the right Python type unchanged: their values
# are passed as they are (exact classes only; a subclass may convert). The rest go through
# get_db_prep_save. Preparing every field of every row cost more than the statements themselves.
_AS_IS = frozenset(
    {
        models.BooleanField,
        models.CharField,
        models.TextField,
        models.FloatField,
        models.IntegerField,
        models.SmallIntegerField,
        models.BigIntegerField,
        models.PositiveIntegerField,
        models.PositiveSmallIntegerField,
        models.PositiveBigIntegerField,
    }
)
_AUTO_KEYS = (models.AutoField, models.BigAutoField, models.SmallAutoField)


def _as_is(field: models.Field) -> bool:
    if isinstance(field, models.ForeignKey):  # an integer key of another table
        return type(field.target_field) in _AUTO_KEYS
    return type(field) in _AS_IS


def preparer(field: models.Field, connection: Any) -> Callable[[Any], Any] | None:
    """None when a value of `field` goes to the database as it is; else what prepares it."""
    if _as_is(field):
        return None
    return lambda value: field.get_db_prep_save(value, connection=connection)


def _prepared(values: list[Any], preparers: list[Callable[[Any], Any] | None]) -> list[Any]:
    return [value if prepare is None else prepare(value) for value, prepare in zip(values, preparers, strict=True)]


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
    preparers = [preparer(field, connection) for field in columns]
    names = [field.attname for field in columns]
    params = [[*_prepared([getattr(obj, name) for name in names], preparers), obj.pk] for obj in objs]
    if connection.vendor == "postgresql" and len(objs) > 1:
        return _update_from_values(connection, model, columns, params, unless)
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
        return cursor.rowcount  # the sum over every row


UPDATE_CHUNK = 500  # rows per statement: well under PostgreSQL's 65,535 parameters


def _update_from_values(connection: Any, model: type[models.Model], columns: list, params: list, unless: str) -> int:
    """PostgreSQL: one UPDATE ... FROM (VALUES ...) for many rows. PostgreSQL plans each statement
    it is sent (Django binds on the client): a row at a time, the worker's three per-cell UPDATEs
    took about 0.3 ms of the server's time each, a third of it planning (pg_stat_statements on
    bench_batch). The casts give the VALUES their columns' types."""
    quote = connection.ops.quote_name
    key = model._meta.pk.cast_db_type(connection)
    row = "(" + ", ".join(f"%s::{field.cast_db_type(connection)}" for field in columns) + f", %s::{key})"
    sets = ", ".join(f"{quote(field.column)} = v.c{n}" for n, field in enumerate(columns))
    names = ", ".join([*(f"c{n}" for n in range(len(columns))), "key"])
    head = f"UPDATE {quote(model._meta.db_table)} AS t SET {sets} FROM (VALUES "
    tail = f") AS v({names}) WHERE t.{quote(model._meta.pk.column)} = v.key"
    if unless:
        tail += f" AND NOT t.{quote(model._meta.get_field(unless).column)}"
    changed = 0
    with connection.cursor() as cursor:
        for start in range(0, len(params), UPDATE_CHUNK):
            chunk = params[start : start + UPDATE_CHUNK]
            cursor.execute(head + ", ".join([row] * len(chunk)) + tail, [value for values in chunk for value in values])
            changed += cursor.rowcount
    return changed


INSERT_CHUNK = 100  # rows per INSERT: a Run has 36 columns, well under SQLite's parameter limit


def insert_rows(objs: Sequence[models.Model]) -> None:
    """INSERT new `objs` (one model, auto-incremented keys) and set their keys: bulk_create without its
    compiler, which cost more per row than the insert itself (a batch worker's claim).

    Values go through each field's pre_save (add=True) and get_db_prep_save, as save() does
    (skipped where they change nothing: plain pre_save, fields taken as they are).
    """
    if not objs:
        return
    model = type(objs[0])
    alias = router.db_for_write(model)
    connection = connections[alias]
    quote = connection.ops.quote_name
    pk = model._meta.pk
    fields = [field for field in model._meta.concrete_fields if field is not pk]
    row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    preparers = [preparer(field, connection) for field in fields]
    plain = [_plain_pre_save(field) for field in fields]
    head = f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) VALUES "
    with connection.cursor() as cursor:
        for start in range(0, len(objs), INSERT_CHUNK):
            chunk = objs[start : start + INSERT_CHUNK]
            params = []
            for obj in chunk:
                values = [
                    getattr(obj, f.attname) if simple else f.pre_save(obj, add=True) for f, simple in zip(fields, plain)
                ]
                params += _prepared(values, preparers)
            cursor.execute(head + ", ".join([row_sql] * len(chunk)) + f" RETURNING {quote(pk.column)}", params)
            # Keys are handed out in the order of the VALUES; RETURNING's own order is not promised.
            for obj, key in zip(chunk, sorted(key for (key,) in cursor.fetchall()), strict=True):
                obj.pk = key
                obj._state.adding, obj._state.db = False, alias


def _plain_pre_save(field: models.Field) -> bool:
    """pre_save only reads the attribute (no auto_now, no file to save)."""
    if isinstance(field, models.DateField):
        return not (field.auto_now or field.auto_now_add)
    return type(field).pre_save is models.Field.pre_save
