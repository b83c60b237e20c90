"""Comparing versions side by side: save a comparison, and run every column of a new batch
at once through the runner. What a batch is: prompts_app/selectors/compare.py. Reading the
results is in compare_report.py."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from prompts_app import runner
from prompts_app.models import (
    Comparison,
    ComparisonColumn,
    Draft,
    PromptVersion,
    Run,
    Workspace,
    message_texts,
    variable_names,
)
from prompts_app.services import rows
from prompts_app.services.once import create_once
from prompts_app.services.runs import custom_price_rules, new_run

MIN_COLUMNS, MAX_COLUMNS = 2, 8
MAX_REPEATS = 10


@dataclass(frozen=True)
class ColumnSpec:
    """One column as chosen in the form: a version, or a draft run against its base version."""

    version: PromptVersion
    draft: Draft | None = None
    input: dict[str, Any] | None = None  # per-column input when the input is not shared


def draft_base_version(draft: Draft) -> PromptVersion | None:
    """The version a draft runs against: its base, else the prompt's newest version."""
    return draft.base_version or draft.prompt.versions.order_by("-number", "-created_at").first()


def create_comparison(
    *,
    workspace: Workspace,
    user: AbstractBaseUser,
    columns: list[ColumnSpec],
    shared_input: bool,
    input: dict[str, Any],
    title: str = "",
    submit_token: str = "",
) -> tuple[Comparison, bool]:
    """Save a comparison and its columns. Returns (comparison, created).

    The same form posted twice (same `submit_token`) returns the first comparison and
    created=False: the caller must not run it again.
    """

    def create() -> Comparison:
        comparison = Comparison.objects.create(
            workspace=workspace,
            title=title,
            shared_input=shared_input,
            input=input,
            created_by=user,
            submit_token=submit_token,
        )
        # One statement: SQLite has one writer, and 16 comparisons started at once each held it
        # for 8 inserts (bench/bench_load.py).
        columns_made = [
            ComparisonColumn(
                comparison=comparison,
                position=position,
                version=spec.version,
                draft_content=spec.draft.content() if spec.draft is not None else None,
                input=None if shared_input else spec.input,
                label=f"Draft of {spec.draft.prompt.name} ({spec.draft.origin})"[:300] if spec.draft else "",
            )
            for position, spec in enumerate(columns)
        ]
        rows.insert_rows(columns_made)
        return comparison

    return create_once(Comparison, submit_token, {"created_by": user, "submit_token": submit_token}, create)


def column_input(comparison: Comparison, column: ComparisonColumn) -> dict[str, Any]:
    return column.input if not comparison.shared_input and column.input else comparison.input


def _sent_input(comparison: Comparison, column: ComparisonColumn) -> dict[str, Any]:
    """The column's input with only the variables its messages use: a run records what it was
    sent (re-trial: every run of a comparison held every column's variables, so a word of one
    version's input found the runs of all)."""
    inputs = column_input(comparison, column)
    messages = (column.draft_content or {}).get("messages", []) if column.is_draft else column.version.messages
    used = set(variable_names(text for message in messages for text in message_texts(message)))
    variables = {name: value for name, value in (inputs.get("variables") or {}).items() if name in used}
    return {**inputs, "variables": variables}


def run_comparison(
    comparison: Comparison, *, user: AbstractBaseUser, repeats: int = 1, batch: int | None = None
) -> list[Future]:
    """Start a new batch: `repeats` runs per column, all sent at once by the runner.

    Every pending run is recorded here, in the request, before anything is sent; the
    runner then sends each exactly once, so runs finish (and are recorded) even if the
    user leaves the page. `batch` is the number the form expected; when another post
    already claimed it (a double click), nothing new is started.
    """
    repeats = max(1, min(MAX_REPEATS, repeats))
    batch = comparison.batch + 1 if batch is None else batch
    runs = _record_batch(comparison, user=user, repeats=repeats, batch=batch)
    if not runs:  # another post (a double click) claimed this batch first
        comparison.refresh_from_db()
        return []
    comparison.batch, comparison.repeats = batch, repeats
    price_rules = custom_price_rules(comparison.workspace)  # once for the batch, not per run
    return runner.submit_all(runs, price_rules=price_rules)


def _record_batch(comparison: Comparison, *, user: AbstractBaseUser, repeats: int, batch: int) -> list[Run]:
    # The runs are built (bodies rendered, inputs checked) before the transaction, which then
    # only claims the batch and inserts them all in one statement: SQLite has one writer, and
    # under bench_load 16 posts at once each held it for 8 savepointed inserts (the largest
    # piece of the new-comparison view in a py-spy --gil profile). One commit; the runner gets
    # the runs only after it, so its threads always find them.
    columns = comparison.columns.select_related("version__prompt__workspace")
    runs = [
        new_run(
            version=column.version,
            inputs=_sent_input(comparison, column),
            user=user,
            content=column.draft_content,
            comparison=comparison,
            column=column,
            batch=batch,
            repeat=repeat,
        )
        for column in columns
        for repeat in range(repeats)
    ]
    with transaction.atomic():
        claimed = Comparison.objects.filter(pk=comparison.pk, batch=batch - 1).update(
            batch=batch, repeats=repeats, updated_at=timezone.now()
        )
        if not claimed:
            return []
        # The claim makes these places new: no other post can have recorded runs for them.
        # insert_rows, not bulk_create: its compiling was a third of the post's CPU before the
        # first request left (cProfile of the new-comparison view).
        rows.insert_rows(runs)
        return runs
