"""What a run export holds: the columns, read from which fields, and how CSV and JSON write them.

The rows are the history filter's runs (selectors/history.py), newest first, read in keyset
chunks so a million-run export keeps memory flat.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator

from prompts_app.models import BatchComparison
from prompts_app.pricing import usd_text
from prompts_app.selectors.history import (
    USERNAME,
    Cursor,
    RunFilter,
    filter_runs,
    older_than_q,
)

EXPORT_FIELDS = (
    "id",
    "created_at",
    "workspace__name",
    "prompt__name",
    "version__number",
    "provider",
    "model_name",
    "status",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost_nano",
    "price_source",
    "latency_ms",
    f"user__{USERNAME}",
    "is_draft",
    "batch_comparison_id",
    "batch_comparison__title",
    "input__variables",
    "input_text",
    "output_text",
    "error",
)


def export_rows(f: RunFilter, chunk_size: int = 2000) -> Iterator[dict]:
    """Every run of the filter, newest first, read in keyset chunks so memory stays flat."""
    runs = filter_runs(f).values(*EXPORT_FIELDS).order_by("-created_at", "-id")
    cursor: Cursor | None = None
    while True:
        chunk = runs.filter(older_than_q(cursor)) if cursor else runs
        count = 0
        for row in chunk[:chunk_size]:
            count += 1
            cursor = Cursor.of(row)
            yield row
        if count < chunk_size:
            return


EXPORT_COLUMNS = [
    "id",
    "created_at",
    "workspace",
    "prompt",
    "version",
    "provider",
    "model",
    "status",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost_usd",
    "price_source",
    "latency_ms",
    "user",
    "draft",
    "batch_id",
    "batch",
    "variables",
    "input_text",
    "output_text",
    "error",
]


def export_record(row: dict) -> dict:
    cost = row["cost_nano"]
    return {
        "id": row["id"],
        "created_at": row["created_at"].isoformat(),
        "workspace": row["workspace__name"],
        "prompt": row["prompt__name"],
        # A draft is no version (one begun blank is stored against the newest, which it did not start from).
        "version": None if row["is_draft"] else row["version__number"],
        "provider": row["provider"],
        "model": row["model_name"],
        "status": row["status"],
        "prompt_tokens": row["prompt_tokens"],
        "completion_tokens": row["completion_tokens"],
        "total_tokens": row["total_tokens"],
        # Exact decimal string from integer nano-USD; empty (CSV) / null (JSON) when unpriced.
        "cost_usd": None if cost is None else usd_text(cost),
        "price_source": row["price_source"],
        "latency_ms": None if row["latency_ms"] is None else round(row["latency_ms"], 1),
        "user": row[f"user__{USERNAME}"],
        "draft": row["is_draft"],  # run of an unsaved draft, counted apart from `version`
        # A batch comparison's run: its batch, named as its page names it (empty / null otherwise).
        "batch_id": row["batch_comparison_id"],
        "batch": _batch_label(row),
        "variables": row["input__variables"] or {},  # names and values; input_text has the values only
        "input_text": row["input_text"],
        "output_text": row["output_text"],
        "error": row["error"],
    }


def _batch_label(row: dict) -> str | None:
    pk = row["batch_comparison_id"]
    return None if pk is None else BatchComparison.label_of(pk, row["batch_comparison__title"])


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_safe(value: object) -> object:
    """Spreadsheets run cells starting with = + - @ (or tab/CR) as formulas; a leading ' stops that."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def csv_lines(rows: Iterable[dict]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        record = export_record(row)
        record["variables"] = json.dumps(record["variables"], ensure_ascii=False, sort_keys=True)
        yield writer.writerow([csv_safe(record[name]) for name in EXPORT_COLUMNS])


def json_lines(rows: Iterable[dict]) -> Iterator[str]:
    yield "["
    separator = "\n"
    for row in rows:
        yield separator + json.dumps(export_record(row), ensure_ascii=False)
        separator = ",\n"
    yield "\n]\n"
