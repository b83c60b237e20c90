"""Reading the run totals: rollup rows plus the runs not rolled up yet, and the cost review.

What is summed is defined once, in services/rollups.py (FIGURES); that module also writes
the rollups. Money stays in integer nano-USD here; pricing.format_usd shows it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db import connection
from django.db.models import Q

from prompts_app.models import Run, RunRollup
from prompts_app.services.rollups import (
    ROLLUP_SUMS,
    RUN_FIELDS,
    RUN_SUMS,
    SUM_FIELDS,
    UTC,
    contribution,
    prefixed,
    unprefixed,
    utc_day,
)


@dataclass
class Totals:
    runs: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_nano: int = 0  # over priced runs only
    priced_runs: int = 0
    unpriced_runs: int = 0
    latency_sum: float = 0.0
    latency_runs: int = 0

    def add(self, other: dict) -> None:
        for name in SUM_FIELDS:
            setattr(self, name, getattr(self, name) + (other.get(name) or 0))

    @property
    def avg_latency_ms(self) -> float | None:
        return self.latency_sum / self.latency_runs if self.latency_runs else None

    @property
    def cost_per_1000_runs_nano(self) -> int | None:
        """Mean cost of 1,000 priced runs, rounded half up; None when nothing is priced."""
        if not self.priced_runs:
            return None
        return (self.cost_nano * 1000 * 2 + self.priced_runs) // (2 * self.priced_runs)


def period_q(date_from: dt.date | None, date_to: dt.date | None) -> Q:
    """Rollup rows covering whole UTC days date_from..date_to (inclusive): whole months
    from month rows, the ragged ends from day rows."""
    day_q = Q(grain=RunRollup.Grain.DAY)
    if date_from is None and date_to is None:
        return Q(grain=RunRollup.Grain.MONTH)
    first_full = None if date_from is None else (date_from if date_from.day == 1 else _next_month(date_from))
    end_full = None if date_to is None else (_next_month(date_to) if _is_month_end(date_to) else date_to.replace(day=1))
    if first_full is not None and end_full is not None and first_full >= end_full:
        return day_q & _range_q(date_from, date_to)
    month_q = Q(grain=RunRollup.Grain.MONTH)
    if first_full is not None:
        month_q &= Q(day__gte=first_full)
    if end_full is not None:
        month_q &= Q(day__lt=end_full)
    result = month_q
    if date_from is not None and date_from < first_full:
        result |= day_q & Q(day__gte=date_from, day__lt=first_full)
    if date_to is not None and end_full <= date_to:
        result |= day_q & Q(day__gte=end_full, day__lte=date_to)
    return result


def _range_q(date_from: dt.date | None, date_to: dt.date | None) -> Q:
    q = Q()
    if date_from is not None:
        q &= Q(day__gte=date_from)
    if date_to is not None:
        q &= Q(day__lte=date_to)
    return q


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _is_month_end(day: dt.date) -> bool:
    return (day + dt.timedelta(days=1)).day == 1


def aggregate(queryset, spec: dict) -> dict:
    """One row of sums of `spec` (RUN_SUMS over runs, ROLLUP_SUMS over rollup rows)."""
    return unprefixed(queryset.order_by().aggregate(**prefixed(spec)))


# The sums of every rollup figure, written once: compiling aggregate(ROLLUP_SUMS) each time was
# 60% of rollup_totals (bench/bench_history.py's first page); only the filter is compiled now.
_ROLLUP_SELECT = "SELECT {} FROM {}".format(
    ", ".join(f"SUM({connection.ops.quote_name(name)})" for name in SUM_FIELDS),
    connection.ops.quote_name(RunRollup._meta.db_table),
)


def rollup_totals(rollup_filter: Q) -> dict:
    """The sums of the rollup rows matching `rollup_filter`, as aggregate(ROLLUP_SUMS) gives them."""
    query = RunRollup.objects.filter(rollup_filter).query
    try:
        where, params = query.get_compiler(connection=connection).compile(query.where)
    except EmptyResultSet:  # e.g. no workspace at all: nothing matches
        return dict.fromkeys(SUM_FIELDS)
    except FullResultSet:
        where, params = "", []
    with connection.cursor() as cursor:
        cursor.execute(f"{_ROLLUP_SELECT} WHERE {where}" if where else _ROLLUP_SELECT, params)
        row = cursor.fetchone()
    # PostgreSQL sums integers as numeric (Decimal): back to each column's own type, as the ORM does.
    return {
        name: None if value is None else _AS_COLUMN[name](value) for name, value in zip(SUM_FIELDS, row, strict=True)
    }


_AS_COLUMN = {
    name: float if RunRollup._meta.get_field(name).get_internal_type() == "FloatField" else int for name in SUM_FIELDS
}


def run_totals(run_queryset) -> dict:
    """Sums over the runs themselves (a text filter cannot use the rollups)."""
    return aggregate(run_queryset, RUN_SUMS)


def live_totals(run_queryset) -> dict:
    """Sums over the runs the rollups do not hold yet (pending, or being recorded): a few, so they
    are added up here with the rollups' own figure per run (contribution). Compiling the SQL
    aggregate of RUN_SUMS cost each history page and home page about 4.5 ms, for a handful of runs."""
    sums = dict.fromkeys(SUM_FIELDS, 0)
    for run in run_queryset.filter(not_rolled_up_q()).only(*RUN_FIELDS, "status").order_by():
        for name, value in contribution(run).items():
            sums[name] += value
    return sums


def not_rolled_up_q() -> Q:
    # As a subquery the few waiting runs are found through the partial index first;
    # a plain `rolled_up=False` lets SQLite walk a workspace index over every run instead.
    return Q(pk__in=Run.objects.filter(rolled_up=False).values("pk"))


@dataclass
class CostReview:
    start: dt.date
    end: dt.date
    days: list[tuple[dt.date, Totals]]  # every day of the period, zero where nothing ran
    by_prompt: list[tuple[int, Totals]]
    by_version: list[tuple[int, Totals]]  # runs of saved versions, per version id
    # Runs of unsaved drafts, per prompt id: a draft is no version (one begun blank is stored
    # against the prompt's newest version, which it did not start from), so it is not named after one.
    by_draft: list[tuple[int, Totals]]
    by_model: list[tuple[tuple[str, str], Totals]]
    total: Totals


def cost_review(*, workspace_ids: list[int], start: dt.date, end: dt.date) -> CostReview:
    """Runs, tokens and cost per day, prompt, version and model over whole UTC days start..end.

    Two grouped reads of the per-version day rollups (per day; per version and model, which
    also gives prompts) plus the runs not rolled up yet; money stays in integer nano-USD throughout.
    """
    rows = RunRollup.objects.filter(
        grain=RunRollup.Grain.VERSION_DAY, day__gte=start, day__lte=end, workspace_id__in=workspace_ids
    ).order_by()
    per_day = [(row.pop("day"), unprefixed(row)) for row in rows.values("day").annotate(**prefixed(ROLLUP_SUMS))]
    key_names = ("prompt_id", "version_id", "is_draft", "provider", "model_name")
    per_version = [
        (tuple(row.pop(name) for name in key_names), unprefixed(row))
        for row in rows.values(*key_names).annotate(**prefixed(ROLLUP_SUMS))
    ]
    since = dt.datetime.combine(start, dt.time.min, tzinfo=UTC)
    until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=UTC)
    live = Run.objects.filter(
        not_rolled_up_q(), workspace_id__in=workspace_ids, created_at__gte=since, created_at__lt=until
    ).only(*RUN_FIELDS, "status")
    for run in live:
        sums = contribution(run)
        per_day.append((utc_day(run.created_at), sums))
        per_version.append(((run.prompt_id, run.version_id, run.is_draft, run.provider, run.model_name), sums))

    days = {start + dt.timedelta(days=n): Totals() for n in range((end - start).days + 1)}
    prompts: dict[int, Totals] = defaultdict(Totals)
    versions: dict[int, Totals] = defaultdict(Totals)
    drafts: dict[int, Totals] = defaultdict(Totals)
    models: dict[tuple[str, str], Totals] = defaultdict(Totals)
    total = Totals()
    for day, sums in per_day:
        days[day].add(sums)
        total.add(sums)
    for (prompt_id, version_id, is_draft, provider, model_name), sums in per_version:
        mine = drafts[prompt_id] if is_draft else versions[version_id]
        for bucket in (prompts[prompt_id], mine, models[(provider, model_name)]):
            bucket.add(sums)

    def by_cost(item: tuple) -> tuple:
        return (-item[1].cost_nano, -item[1].runs)

    return CostReview(
        start=start,
        end=end,
        days=list(days.items()),
        by_prompt=sorted(prompts.items(), key=by_cost),
        by_version=sorted(versions.items(), key=by_cost),
        by_draft=sorted(drafts.items(), key=by_cost),
        by_model=sorted(models.items(), key=by_cost),
        total=total,
    )
