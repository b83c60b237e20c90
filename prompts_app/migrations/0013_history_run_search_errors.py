"""Full-text search over runs' error messages too (issue 8.8; history area).

SQLite only, like 0004: the FTS5 table gains an `error` column, so its triggers and
contents are made again. Prompt names are matched apart (services/history.py), since a
rename would otherwise mean re-indexing every run of the prompt.
"""

from __future__ import annotations

from django.db import migrations

FTS_TABLE = "prompts_app_run_fts"
COLUMNS = "input_text, output_text, error"
NEW = "new.input_text, new.output_text, new.error"
OLD = "old.input_text, old.output_text, old.error"

DROP = [
    "DROP TRIGGER IF EXISTS prompts_app_run_fts_ai",
    "DROP TRIGGER IF EXISTS prompts_app_run_fts_ad",
    "DROP TRIGGER IF EXISTS prompts_app_run_fts_au",
    f"DROP TABLE IF EXISTS {FTS_TABLE}",
]


def create(columns: str, new: str, old: str) -> list[str]:
    return [
        f"""CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(
            {columns}, content='prompts_app_run', content_rowid='id', tokenize='unicode61 remove_diacritics 2')""",
        f"""CREATE TRIGGER prompts_app_run_fts_ai AFTER INSERT ON prompts_app_run BEGIN
            INSERT INTO {FTS_TABLE}(rowid, {columns}) VALUES (new.id, {new});
        END""",
        f"""CREATE TRIGGER prompts_app_run_fts_ad AFTER DELETE ON prompts_app_run BEGIN
            INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, {columns}) VALUES ('delete', old.id, {old});
        END""",
        f"""CREATE TRIGGER prompts_app_run_fts_au AFTER UPDATE OF {columns} ON prompts_app_run BEGIN
            INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, {columns}) VALUES ('delete', old.id, {old});
            INSERT INTO {FTS_TABLE}(rowid, {columns}) VALUES (new.id, {new});
        END""",
        f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')",
    ]


def _run_on_sqlite(statements: list[str]):
    def apply(apps, schema_editor) -> None:
        if schema_editor.connection.vendor != "sqlite":
            return
        for sql in statements:
            schema_editor.execute(sql)

    return apply


FORWARD = DROP + create(COLUMNS, NEW, OLD)
BACKWARD = DROP + create(
    "input_text, output_text", "new.input_text, new.output_text", "old.input_text, old.output_text"
)


class Migration(migrations.Migration):
    dependencies = [("prompts_app", "0012_rollup_unique_key")]

    operations = [migrations.RunPython(_run_on_sqlite(FORWARD), _run_on_sqlite(BACKWARD))]
