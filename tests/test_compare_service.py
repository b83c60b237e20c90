"""The comparison services (compare, compare_report): configuration differences, output word diffs, ×N statistics, export."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps as django_apps
from django.db import IntegrityError, transaction

from prompts_app.models import Run
from prompts_app.selectors.compare import batch_runs
from prompts_app.services import compare_report as report
from tests.conftest import add_run


def test_config_rows_mark_only_the_fields_that_differ(comparison):
    rows = {row.field: row for row in report.config_rows(comparison.columns.all())}
    assert rows["provider"].different is False
    assert rows["model"].different and rows["model"].values == ["gpt-4o", "gpt-4o-mini", "gpt-4o"]
    assert rows["parameter: temperature"].different is False
    assert rows["parameter: max_tokens"].values == ["100", "—", "—"]
    assert rows["message 1"].different and rows["message 1"].values[2] == "system: Be terse."
    assert rows["message 2"].values[2] == "—"
    assert rows["tools"].different and rows["tools"].values[1].startswith("lookup:")


def test_a_draft_column_is_compared_by_its_own_content(comparison):
    column = comparison.columns.get(position=2)
    column.draft_content = {**column.version.content(), "model_name": "claude-x", "provider": "anthropic"}
    column.save()
    rows = {row.field: row for row in report.config_rows(comparison.columns.all())}
    assert rows["provider"].values == ["openai", "openai", "anthropic"]
    assert report.column_label(column) == "Draft of Support reply (on v3)"


def test_output_diffs_against_the_baseline_give_word_diff_and_signed_deltas(comparison):
    a, b, c = comparison.columns.all()
    add_run(comparison, a, 0, text="The order ships today", total_tokens=15, latency_ms=100.0, cost_nano=1000)
    add_run(comparison, b, 0, text="The order ships tomorrow", total_tokens=20, latency_ms=80.0, cost_nano=None)
    add_run(comparison, c, 0, status=Run.Status.FAILED, error="Maxim rejected the key")
    diffs = report.output_diffs(comparison, [a, b, c], baseline=a)
    assert [d.column for d in diffs] == [b, c]
    assert diffs[0].diff_html == "The order ships <del>today</del><ins>tomorrow</ins>"
    assert (diffs[0].token_delta, diffs[0].latency_delta_ms, diffs[0].cost_delta_nano) == (5, -20.0, None)
    assert diffs[0].identical is False
    assert diffs[1].diff_html == "Failed: Maxim rejected the key"
    assert diffs[1].note == "Not compared: this column's run did not succeed."
    assert diffs[1].token_delta is None and diffs[1].latency_delta_ms is None


def test_stats_count_distinct_outputs_and_latency_spread(comparison):
    column = comparison.columns.first()
    for n, (text, latency) in enumerate([("a", 100.0), ("b", 300.0), ("a", 200.0)]):
        add_run(comparison, column, n, text=text, latency_ms=latency, cost_nano=1500 + n)
    stats = report.column_stats(batch_runs(comparison, column=column))
    assert (stats.runs, stats.distinct_outputs) == (3, 2)
    assert (stats.latency_min, stats.latency_avg, stats.latency_max) == (100.0, 200.0, 300.0)
    assert (stats.cost_per_run_nano, stats.cost_per_1000_nano) == (1501, 1_501_000)


def test_stats_are_unpriced_when_any_run_is_and_failures_are_counted(comparison):
    column = comparison.columns.first()
    add_run(comparison, column, 0, text="a", cost_nano=None)
    add_run(comparison, column, 1, status=Run.Status.FAILED, error="boom")
    add_run(comparison, column, 2, status=Run.Status.PENDING)
    stats = report.column_stats(batch_runs(comparison, column=column))
    assert (stats.cost_per_run_nano, stats.cost_per_1000_nano) == (None, None)
    assert (stats.finished, stats.failures, stats.distinct_outputs) == (2, 1, 1)


def test_only_the_latest_batch_is_shown(comparison):
    column = comparison.columns.first()
    add_run(comparison, column, 0, text="old", batch=1)
    add_run(comparison, column, 0, text="new", batch=2)
    assert [r.output_text for r in batch_runs(comparison, column=column)] == ["new"]
    assert [r.output_text for r in batch_runs(comparison, column=column, batch=1)] == ["old"]


def test_markdown_export_has_a_row_per_run_and_fences_that_outputs_cannot_break(comparison):
    a, b, c = comparison.columns.all()
    add_run(comparison, a, 0, text="Use ```code``` | here", latency_ms=123.4, cost_nano=2_500)
    add_run(comparison, b, 0, status=Run.Status.FAILED, error="Maxim rate limit")
    text = report.export_markdown(comparison)
    assert "| # | Column | Model | Provider | Tokens (in/out) | Cost | Latency | Status |" in text
    assert "| 1 | Support reply v1 | gpt-4o | openai | 10/5 | $0.0000025 | 123 ms | success |" in text
    assert "| 3 | Support reply v3 | gpt-4o | openai | — | — | — | not run |" in text
    assert "````\nUse ```code``` | here\n````" in text
    assert "```\nfailed: Maxim rate limit\n```" in text
    assert "Input:\n\n- user: Hi\n" in text


def test_outputs_and_errors_with_markup_are_escaped_in_the_diff(comparison):
    a, b, c = comparison.columns.all()
    add_run(comparison, a, 0, text="<b>hi</b>")
    add_run(comparison, b, 0, text="<i>hi</i>")
    add_run(comparison, c, 0, status=Run.Status.FAILED, error="<script>x</script>")
    changed, failed = report.output_diffs(comparison, [a, b, c], baseline=a)
    assert "<b>" not in changed.diff_html and "&lt;i&gt;hi&lt;/i&gt;" in changed.diff_html
    assert failed.diff_html == "Failed: &lt;script&gt;x&lt;/script&gt;"


def test_markdown_export_of_repeated_runs_has_their_statistics(comparison):
    comparison.repeats = 3
    comparison.save()
    a, b, c = comparison.columns.all()
    for n, (text, latency) in enumerate([("yes", 100.0), ("yes", 200.0), ("no", 300.0)]):
        add_run(comparison, a, n, text=text, latency_ms=latency, cost_nano=2_000)
    add_run(comparison, b, 0, text="fine", latency_ms=50.0, cost_nano=None)
    text = report.export_markdown(comparison)
    assert "| 1 | Support reply v1 | 2 of 3 | 100 / 200 / 300 ms | $0.000002 | $0.002 | 0 |" in text
    assert "| 2 | Support reply v2 | 1 of 1 | 50 / 50 / 50 ms | unpriced | unpriced | 0 |" in text


def test_a_place_in_a_batch_holds_one_run(comparison):
    column = comparison.columns.first()
    add_run(comparison, column, 0)
    with pytest.raises(IntegrityError), transaction.atomic():
        add_run(comparison, column, 0)  # same column, batch and repeat: a double-posted batch
    add_run(comparison, column, 1)
    assert [r.repeat for r in batch_runs(comparison, column=column)] == [0, 1]


def test_the_migration_reads_batch_and_repeat_out_of_the_old_keys(comparison, monkeypatch):
    migration = importlib.import_module("prompts_app.migrations.0014_run_batch_repeat")
    monkeypatch.setattr(migration, "CHUNK", 2)  # several chunks
    a, b, _ = comparison.columns.all()
    runs = [add_run(comparison, column, n, batch=batch) for batch in (1, 2) for column in (a, b) for n in (0, 1)]
    for run in runs:
        key = f"cmp-{comparison.pk}-{run.batch}-{run.column_id}-{run.repeat}"
        Run.objects.filter(pk=run.pk).update(batch=None, repeat=None, idempotency_key=key)
    single = add_run(comparison, a, 0, batch=3)
    Run.objects.filter(pk=single.pk).update(
        comparison=None, column=None, batch=None, repeat=None, idempotency_key="v1:cmp-like-but-not-a-batch"
    )
    migration.keys_to_fields(django_apps, None)
    stored = {r.pk: (r.batch, r.repeat, r.idempotency_key) for r in Run.objects.all()}
    assert all(stored[r.pk] == (r.batch, r.repeat, "") for r in runs)
    assert stored[single.pk] == (None, None, "v1:cmp-like-but-not-a-batch")
    migration.fields_to_keys(django_apps, None)  # and back
    assert Run.objects.get(pk=runs[-1].pk).idempotency_key == f"cmp-{comparison.pk}-2-{b.pk}-1"


def test_a_column_still_running_or_only_failed_shows_a_dash_for_its_cost_not_unpriced(comparison):
    # "unpriced" means a run succeeded with no known price (README); a column with no success yet has no cost at all.
    a, b, c = comparison.columns.all()
    add_run(comparison, a, 0, status=Run.Status.PENDING)
    add_run(comparison, b, 0, status=Run.Status.FAILED, error="boom")
    add_run(comparison, c, 0, text="fine", cost_nano=None)
    stats = {column: report.column_stats(batch_runs(comparison, column=column)) for column in (a, b, c)}
    assert stats[a].cost_text(stats[a].cost_per_run_nano) == "—"
    assert stats[b].cost_text(stats[b].cost_per_1000_nano) == "—"
    assert stats[c].cost_text(stats[c].cost_per_run_nano) == "unpriced"
