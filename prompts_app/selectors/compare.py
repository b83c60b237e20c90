"""A comparison batch, and reading one.

What is a comparison batch? Each time a comparison is run (on creation, then every "Run
again") it gets a new **batch**: the next number after `Comparison.batch`, which then names
the latest one. A batch holds, for every column of the comparison, the same number of runs
(1 to 10, chosen when it is started; `Comparison.repeats` keeps the latest batch's) of that
column's version (or draft snapshot) on that column's input. Each of those
runs records its place on `Run`: `column`, `batch` and `repeat` (0, 1, ... within the column),
and the database keeps one run per place (the `one_run_per_batch_place` constraint). Runs
outside any comparison have neither batch nor repeat.

How a batch comes to be (services/compare.run_comparison): in one transaction the request
claims the number (an UPDATE that only succeeds from the number before it, so a double-posted
form starts nothing), records every run as pending, then hands them to the runner
(prompts_app/runner.py), which sends each to Maxim exactly once, all columns at once. Pages
show the latest batch; older batches stay in the history.

Reading: a page loads its batch once with `batch_runs()` and passes the runs (or one column's,
via `by_column()`) to whatever draws them. A run whose process died comes back shown as the
runner's sweep will settle it (interrupted, or not sent), so no page waits for it.
"""

from __future__ import annotations

from django.utils import timezone

from prompts_app.models import Comparison, ComparisonColumn, Run
from prompts_app.services.runs import shown_as_settled


# What a comparison page never shows of a run (the request as sent, the input, Maxim's whole answer):
# a streamed page reads its batch on every result, and decoding these was a fifth of that.
NOT_SHOWN = ("request_body", "input", "input_text", "output")


def batch_runs(
    comparison: Comparison,
    *,
    batch: int | None = None,
    column: ComparisonColumn | None = None,
    shown_only: bool = False,
) -> list[Run]:
    """The runs of one batch (default: the latest) of the comparison, or of one column, in column
    then repeat order. A run its process can no longer finish shows as the sweep will settle it.
    `shown_only`: without the fields the comparison page never shows (NOT_SHOWN)."""
    runs = Run.objects.filter(comparison=comparison, batch=comparison.batch if batch is None else batch)
    if shown_only:
        runs = runs.defer(*NOT_SHOWN)
    if column is not None:
        runs = runs.filter(column=column)
    now = timezone.now()
    return [shown_as_settled(run, now=now) for run in runs.order_by("column_id", "repeat")]


def by_column(runs: list[Run]) -> dict[int, list[Run]]:
    """A batch's runs grouped by column id, in repeat order."""
    grouped: dict[int, list[Run]] = {}
    for run in runs:
        grouped.setdefault(run.column_id, []).append(run)
    return grouped


def still_pending(runs: list[Run]) -> list[Run]:
    """The runs of `batch_runs()` a page waits for. Stale ones are not among them (they already
    show as settled), or the page would wait for them for ever."""
    return [r for r in runs if r.status == Run.Status.PENDING]
