"""Batch comparisons: 1-8 columns (versions or draft snapshots) over a test set, x1-5 repeats.

What a batch is: one BatchComparison row, its BatchColumns, and one BatchCell per
(column, case, repeat), created all at once when the batch starts. Each cell becomes one
ordinary Run when a worker claims it (services/batch_worker.py), so recording, pricing,
history totals and the exactly-once rules of services/runs.py apply to every cell.

This module starts, estimates, pauses, resumes and cancels; the worker sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from prompts_app import checks as checks_module
from prompts_app.models import (
    BatchCell,
    BatchColumn,
    BatchComparison,
    BatchSettings,
    PromptVersion,
    TestCase,
    TestSet,
    Workspace,
)
from prompts_app.run_input import InputTooLarge
from prompts_app.services import runs

MAX_COLUMNS, MAX_REPEATS, MAX_CONCURRENCY = 8, 5, 64
ESTIMATE_SAMPLE = 20  # cases tokenised per column; the rest are extrapolated from them


class BatchError(Exception):
    """A batch that cannot start or change as asked; the message is for the person."""


class OverBudget(BatchError):
    def __init__(self, estimate: Estimate, budget_nano: int) -> None:
        super().__init__("This batch may cost more than the workspace's soft budget. Confirm to start it anyway.")
        self.estimate = estimate
        self.budget_nano = budget_nano


@dataclass(frozen=True)
class ColumnChoice:
    version: PromptVersion
    draft_content: dict[str, Any] | None = None
    label: str = ""


@dataclass(frozen=True)
class Estimate:
    calls: int
    cost_nano: int | None  # input tokens only; None when a column's model has no known price
    unpriced_columns: int
    input_tokens: int


def cases_for(test_set: TestSet, case_filter: str = ""):
    cases = test_set.cases.all()
    if case_filter:
        cases = cases.filter(Q(variables__icontains=case_filter) | Q(expected_output__icontains=case_filter))
    return cases


def case_inputs(case: TestCase) -> dict[str, Any]:
    return {"turns": case.turns or [], "variables": case.variables or {}}


def estimate(*, columns: list[ColumnChoice], test_set: TestSet, case_filter: str = "", repeats: int = 1) -> Estimate:
    """Number of calls and the input cost, from a sample of cases per column (output tokens are
    not known before the run, so the real cost is higher; the page says so)."""
    cases = list(cases_for(test_set, case_filter).order_by("position", "id"))
    sample = cases[:ESTIMATE_SAMPLE]
    total_cost, total_tokens, unpriced = 0, 0, 0
    for choice in columns:
        version = _as_version(choice)
        tokens, cost, priced = 0, 0, True
        for case in sample:
            try:
                case_tokens, price = runs.estimate(version=version, inputs=case_inputs(case))
            except InputTooLarge:
                continue
            tokens += case_tokens
            if price.cost_nano is None:
                priced = False
            else:
                cost += price.cost_nano
        scale = len(cases) / len(sample) if sample else 0
        total_tokens += round(tokens * scale) * repeats
        if priced:
            total_cost += round(cost * scale) * repeats
        else:
            unpriced += 1
    calls = len(cases) * len(columns) * repeats
    return Estimate(calls, None if unpriced else total_cost, unpriced, total_tokens)


def _as_version(choice: ColumnChoice) -> PromptVersion:
    """A draft snapshot estimated as if it were its base version's content (never saved)."""
    if choice.draft_content is None:
        return choice.version
    base = choice.version
    fields = {
        key: choice.draft_content.get(key, getattr(base, key))
        for key in ("provider", "model_name", "model_parameters", "messages", "tools")
    }
    return PromptVersion(prompt=base.prompt, maxim_id=base.maxim_id, number=base.number, **fields)


def settings_for(workspace: Workspace) -> BatchSettings:
    found, _ = BatchSettings.objects.get_or_create(workspace=workspace)
    return found


def set_soft_budget(*, workspace: Workspace, budget_nano: int | None) -> BatchSettings:
    found = settings_for(workspace)
    found.soft_budget_nano = budget_nano
    found.save(update_fields=["soft_budget_nano"])
    return found


def start_batch(
    *,
    workspace: Workspace,
    test_set: TestSet,
    columns: list[ColumnChoice],
    user: AbstractBaseUser,
    repeats: int = 1,
    concurrency: int = 4,
    checks: list[dict[str, Any]] | None = None,
    case_filter: str = "",
    title: str = "",
    confirmed: bool = False,
) -> BatchComparison:
    """Create the batch and all its cells, then hand it to a worker.

    Raises BatchError for a batch that cannot run, OverBudget when the estimate is above the
    workspace's soft budget and `confirmed` is False (nothing is created then).
    """
    checks = checks or []
    _validate(workspace, test_set, columns, repeats, concurrency)
    checks_module.build_checks(checks)  # raises CheckConfigError with every problem
    cases = list(cases_for(test_set, case_filter).order_by("position", "id").values_list("pk", flat=True))
    if not cases:
        raise BatchError("No test cases match: add cases or change the filter.")
    guess = estimate(columns=columns, test_set=test_set, case_filter=case_filter, repeats=repeats)
    budget = settings_for(workspace).soft_budget_nano
    if budget is not None and not confirmed and (guess.cost_nano is None or guess.cost_nano > budget):
        raise OverBudget(guess, budget)
    with transaction.atomic():
        batch = BatchComparison.objects.create(
            workspace=workspace,
            test_set=test_set,
            title=title[:300],
            case_filter=case_filter,
            repeats=repeats,
            concurrency=concurrency,
            current_limit=concurrency,
            checks=checks,
            created_by=user,
            total_cells=len(cases) * len(columns) * repeats,
            estimated_cost_nano=guess.cost_nano,
            resumed_at=timezone.now(),
        )
        made = BatchColumn.objects.bulk_create(
            BatchColumn(
                batch=batch,
                position=n,
                version=c.version,
                draft_content=c.draft_content,
                label=(c.label or str(c.version))[:300],
            )
            for n, c in enumerate(columns, 1)
        )
        # Case by case, so the first rows of the matrix fill first.
        BatchCell.objects.bulk_create(
            (
                BatchCell(batch=batch, column=column, case_id=case, repeat=repeat)
                for case in cases
                for repeat in range(1, repeats + 1)
                for column in made
            ),
            batch_size=2000,
        )
        transaction.on_commit(lambda: enqueue(batch))
    return batch


def _validate(workspace, test_set, columns, repeats, concurrency) -> None:
    if test_set.workspace_id != workspace.pk:
        raise BatchError("That test set is not in this workspace.")
    if not 1 <= len(columns) <= MAX_COLUMNS:
        raise BatchError(f"Choose 1 to {MAX_COLUMNS} versions or drafts.")
    if any(choice.version.prompt.workspace_id != workspace.pk for choice in columns):
        raise BatchError("Every version must be in this workspace.")
    if not 1 <= repeats <= MAX_REPEATS:
        raise BatchError(f"Repeats must be 1 to {MAX_REPEATS}.")
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise BatchError(f"Concurrency must be 1 to {MAX_CONCURRENCY}.")


def enqueue(batch: BatchComparison) -> None:
    from django.conf import settings

    from prompts_app.tasks import run_batch  # tasks import this module

    run_batch.using(backend=getattr(settings, "MAXIMUI_BATCH_TASK_BACKEND", "default")).enqueue(batch.pk)


def pause(batch: BatchComparison) -> BatchComparison:
    """Stop claiming cells; the ones already with Maxim finish and are stored."""
    return _change(batch, BatchComparison.Status.PAUSED, allowed={BatchComparison.Status.RUNNING})


def cancel(batch: BatchComparison) -> BatchComparison:
    """Never send the cells left; finished cells stay, results and costs included."""
    statuses = BatchComparison.Status
    return _change(batch, statuses.CANCELLED, allowed={statuses.RUNNING, statuses.PAUSED})


def resume(batch: BatchComparison) -> BatchComparison:
    batch = _change(batch, BatchComparison.Status.RUNNING, allowed={BatchComparison.Status.PAUSED})
    transaction.on_commit(lambda: enqueue(batch))
    return batch


def _change(batch: BatchComparison, status: str, *, allowed: set[str]) -> BatchComparison:
    with transaction.atomic():
        locked = BatchComparison.objects.select_for_update().get(pk=batch.pk)
        if locked.status not in allowed:
            raise BatchError(f"This batch is {locked.get_status_display().lower()}; it cannot be changed that way.")
        now = timezone.now()
        if locked.status == BatchComparison.Status.RUNNING:
            locked.active_seconds = locked.elapsed_seconds(now)
        locked.resumed_at = now if status == BatchComparison.Status.RUNNING else None
        locked.status = status
        if status == BatchComparison.Status.CANCELLED:
            locked.finished_at = now
        locked.save(update_fields=["status", "active_seconds", "resumed_at", "finished_at"])
    return locked
