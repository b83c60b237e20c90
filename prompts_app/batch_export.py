"""What is in a batch's export: one line per cell (case, column, repeat), as CSV, JSON or Markdown.
The columns are selectors.batches.EXPORT_FIELDS; each renderer yields text to stream."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from decimal import ROUND_HALF_UP, Decimal

from prompts_app.markdown_text import md_cell
from prompts_app.models import BatchComparison
from prompts_app.pricing import format_usd, usd_text
from prompts_app.selectors.batches import EXPORT_FIELDS, ColumnSummary, progress_and_summary


def _flat(value) -> str:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else str(value)


def csv_lines(batch: BatchComparison, rows: Iterable[dict]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_FIELDS)
    for row in rows:
        # A leading = + - @ would be a formula in a spreadsheet: quote it as text.
        writer.writerow(
            ["'" + v if v[:1] in ("=", "+", "-", "@") else v for v in (_flat(row[f]) for f in EXPORT_FIELDS)]
        )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def summary_rows(batch: BatchComparison) -> list[dict]:
    """One row per column, as the page's summary shows it (money as exact USD strings, unpriced
    runs counted apart, never $0)."""
    columns = list(batch.columns.order_by("position"))
    _progress, summary = progress_and_summary(batch, columns)
    return [
        {
            "column": s.column.position,
            "label": s.column.label,
            "runs": s.runs,
            "checked": s.checked,
            "passed": s.passed,
            "pass_rate": None if s.pass_rate is None else round(s.pass_rate, 4),
            "failures": s.failures,
            "tokens": s.tokens,
            "cost_usd": usd_text(s.cost_nano) if s.priced_runs else None,
            "cost_per_1000_runs_usd": None if s.cost_per_1000_nano is None else usd_text(s.cost_per_1000_nano),
            "unpriced_runs": s.unpriced,
            "latency_p50_ms": s.p50,
            "latency_p95_ms": s.p95,
        }
        for s in summary
    ]


def json_lines(batch: BatchComparison, rows: Iterable[dict]) -> Iterator[str]:
    head = {
        "batch": batch.pk,
        "title": str(batch),
        "test_set": batch.test_set.name,
        "status": batch.status,
        "summary": summary_rows(batch),
    }
    yield json.dumps(head, ensure_ascii=False)[:-1] + ', "cells": ['
    for n, row in enumerate(rows):
        yield ("," if n else "") + "\n" + json.dumps(row, ensure_ascii=False)
    yield "\n]}\n"


def _md(value) -> str:
    return md_cell(_flat(value))


SUMMARY_HEADS = ["column", "pass rate", "cost", "per 1,000 runs", "tokens", "latency p50", "p95", "failures"]


def _ms(latency: float | None) -> str:
    """As the page's floatformat:0 shows it: whole ms, half up."""
    return "—" if latency is None else f"{Decimal(str(latency)).quantize(Decimal(1), rounding=ROUND_HALF_UP)} ms"


def summary_cells(n: int, s: ColumnSummary) -> list[str]:
    """A column's summary as the page's summary row says it: unpriced runs are "unpriced", never $0."""
    # widthratio on the page: round(passed / checked * 100), Python's rounding
    rate = "—" if s.pass_rate is None else f"{round(s.passed / s.checked * 100)}% ({s.passed}/{s.checked})"
    if s.priced_runs:
        cost = format_usd(s.cost_nano) + (f" + {s.unpriced} unpriced" if s.unpriced else "")
        per_1000 = format_usd(s.cost_per_1000_nano)
    else:
        cost = per_1000 = "unpriced" if s.unpriced else "—"
    return [f"{n}. {s.column.label}", rate, cost, per_1000, f"{s.tokens:,}", _ms(s.p50), _ms(s.p95), str(s.failures)]


def _md_table(heads: list[str], rows: Iterable[list]) -> Iterator[str]:
    yield "| " + " | ".join(heads) + " |\n|" + "---|" * len(heads) + "\n"
    for row in rows:
        yield "| " + " | ".join(_md(value) for value in row) + " |\n"


def markdown_lines(batch: BatchComparison, rows: Iterable[dict]) -> Iterator[str]:
    fields = ["case", "label", "repeat", "state", "passed", "output", "checks", "cost_usd", "latency_ms", "error"]
    yield f"# {_md(str(batch))}\n\nTest set: {_md(batch.test_set.name)}\n\n"
    _progress, summary = progress_and_summary(batch, list(batch.columns.order_by("position")))
    yield "## Summary per column\n\n"
    yield from _md_table(SUMMARY_HEADS, (summary_cells(n, s) for n, s in enumerate(summary, 1)))
    yield "\n## Cells\n\n"
    yield from _md_table(fields, ([row[f] for f in fields] for row in rows))


EXPORTERS: dict[str, tuple[str, Callable[[BatchComparison, Iterable[dict]], Iterator[str]]]] = {
    "csv": ("text/csv; charset=utf-8", csv_lines),
    "json": ("application/json", json_lines),
    "md": ("text/markdown; charset=utf-8", markdown_lines),
}
