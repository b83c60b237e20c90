"""Full-text search over runs' input and output (history area).

SQLite only: an FTS5 external-content table kept in step by triggers. Other
databases have nothing to create; services/history.py falls back to icontains.
"""

from __future__ import annotations

from django.db import migrations

FTS_TABLE = "prompts_app_run_fts"

CREATE = [
    f"""CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5(
        input_text, output_text, content='prompts_app_run', content_rowid='id',
        tokenize='unicode61 remove_diacritics 2')""",
    f"""CREATE TRIGGER IF NOT EXISTS prompts_app_run_fts_ai AFTER INSERT ON prompts_app_run BEGIN
        INSERT INTO {FTS_TABLE}(rowid, input_text, output_text) VALUES (new.id, new.input_text, new.output_text);
    END""",
    f"""CREATE TRIGGER IF NOT EXISTS prompts_app_run_fts_ad AFTER DELETE ON prompts_app_run BEGIN
        INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, input_text, output_text)
        VALUES ('delete', old.id, old.input_text, old.output_text);
    END""",
    f"""CREATE TRIGGER IF NOT EXISTS prompts_app_run_fts_au AFTER UPDATE OF input_text, output_text ON prompts_app_run
    BEGIN
        INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, input_text, output_text)
        VALUES ('delete', old.id, old.input_text, old.output_text);
        INSERT INTO {FTS_TABLE}(rowid, input_text, output_text) VALUES (new.id, new.input_text, new.output_text);
    END""",
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')",
]
DROP = [
    "DROP TRIGGER IF EXISTS prompts_app_run_fts_ai",
    "DROP TRIGGER IF EXISTS prompts_app_run_fts_ad",
    "DROP TRIGGER IF EXISTS prompts_app_run_fts_au",
    f"DROP TABLE IF EXISTS {FTS_TABLE}",
]


def _run_on_sqlite(statements: list[str]):
    def apply(apps, schema_editor) -> None:
        if schema_editor.connection.vendor != "sqlite":
            return
        for sql in statements:
            schema_editor.execute(sql)

    return apply


class Migration(migrations.Migration):
    dependencies = [("prompts_app", "0003_history_rollups")]

    operations = [migrations.RunPython(_run_on_sqlite(CREATE), _run_on_sqlite(DROP))]
