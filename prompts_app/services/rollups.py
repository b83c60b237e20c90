"""Per-day and per-month run totals (RunRollup), so totals over a million runs stay fast.

A finished run is added once: `record(run)` flips `Run.rolled_up` and adds the run's
figures in the same transaction, so a repeated call never counts twice. Runs not yet
rolled up (pending ones, or finished ones whose `record` never happened) are summed
live by the readers (selectors/costs.py), which keeps every total exact at any moment.
This module writes; it also holds FIGURES, the one definition of what is summed.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Aggregate, Count, Q, Sum
from django.db.models.functions import TruncDate, TruncMonth

from prompts_app.models import Run, RunRollup

UTC = dt.timezone.utc
KEY_FIELDS = ("workspace_id", "prompt_id", "version_id", "user_id", "provider", "model_name", "status", "is_draft")
# Only what a rollup needs, so rolling up never loads the big JSON columns.
RUN_FIELDS = (
    "id",
    "created_at",
    "cost_nano",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "latency_ms",
    *KEY_FIELDS,
)
# The unique key of RunRollup ("one_rollup_per_key_v2" in models.py), as the upsert names it.
CONFLICT_TARGET = (
    '"grain", "day", "workspace_id", "prompt_id", "version_id", COALESCE("user_id", 0), '
    '"provider", "model_name", "status", "is_draft"'
)
UPSERT_CHUNK = 200  # rows per INSERT: 19 parameters each, well under SQLite's limit


def utc_day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(UTC).date()


# Each figure a run adds to its rollup rows: its value for one run, and the SQL that sums it
# over many. `contribution` (a finishing run), `rebuild` and the live totals of runs not
# rolled up yet all read this one table, so they cannot disagree. Unpriced = succeeded
# with no known price (never $0); failed runs are neither priced nor unpriced.
PRICED = Q(cost_nano__isnull=False)
UNPRICED = Q(cost_nano__isnull=True, status=Run.Status.SUCCESS)
FIGURES: dict[str, tuple[Callable[[Run], int | float], Aggregate]] = {
    "runs": (lambda run: 1, Count("id")),
    "prompt_tokens": (lambda run: run.prompt_tokens, Sum("prompt_tokens", default=0)),
    "completion_tokens": (lambda run: run.completion_tokens, Sum("completion_tokens", default=0)),
    "total_tokens": (lambda run: run.total_tokens, Sum("total_tokens", default=0)),
    "cost_nano": (lambda run: run.cost_nano or 0, Sum("cost_nano", default=0)),
    "priced_runs": (lambda run: int(run.cost_nano is not None), Count("id", filter=PRICED)),
    "unpriced_runs": (
        lambda run: int(run.cost_nano is None and run.status == Run.Status.SUCCESS),
        Count("id", filter=UNPRICED),
    ),
    "latency_sum": (lambda run: run.latency_ms or 0.0, Sum("latency_ms", default=0.0)),
    "latency_runs": (lambda run: int(run.latency_ms is not None), Count("latency_ms")),
}
SUM_FIELDS = tuple(FIGURES)  # also the RunRollup columns that hold them
RUN_SUMS = {name: total for name, (_one, total) in FIGURES.items()}  # over Run rows
ROLLUP_SUMS = {name: Sum(name) for name in SUM_FIELDS}  # over RunRollup rows


def contribution(run: Run) -> dict[str, int | float]:
    """What one run adds to its rollup rows."""
    return {name: one(run) for name, (one, _total) in FIGURES.items()}


def record(run: Run) -> bool:
    """Add a finished run to the rollups, once. Returns False if it was already counted or is pending."""
    if run.status == Run.Status.PENDING:
        return False
    with transaction.atomic():
        claimed = Run.objects.filter(pk=run.pk, rolled_up=False).exclude(status=Run.Status.PENDING)
        if not claimed.update(rolled_up=True):
            return False
        _add([run])
    run.rolled_up = True
    return True


def record_many(runs: list[Run]) -> int:
    """record() for many finished runs in one UPDATE and one upsert (a batch worker's group).
    Call inside the transaction that stored them; returns how many were added."""
    ids = [run.pk for run in runs if run.status != Run.Status.PENDING]
    with transaction.atomic():
        claimed = set(Run.objects.filter(pk__in=ids, rolled_up=False).values_list("pk", flat=True))
        if not claimed:
            return 0
        Run.objects.filter(pk__in=claimed).update(rolled_up=True)
        counted = [run for run in runs if run.pk in claimed]
        _add(counted)
    for run in counted:
        run.rolled_up = True
    return len(counted)


def add_counted(runs: list[Run]) -> None:
    """Add the runs the caller has just marked rolled_up in this transaction, with the same
    UPDATE that stored them (services/runs.py store_finished); the others are left out."""
    _add([run for run in runs if run.rolled_up])


def catch_up(batch_size: int = 500) -> int:
    """Roll up every finished run not yet counted (after a bulk update, or a crash before `record`)."""
    done = 0
    while True:
        with transaction.atomic():
            waiting = Run.objects.filter(rolled_up=False).exclude(status=Run.Status.PENDING)
            # Locked rows are being rolled up by another process (PostgreSQL); SQLite writers
            # are serialised by its IMMEDIATE transactions anyway.
            waiting = waiting.select_for_update(skip_locked=True)
            runs = list(waiting.only(*RUN_FIELDS, "status").order_by("pk")[:batch_size])
            if not runs:
                return done
            Run.objects.filter(pk__in=[r.pk for r in runs], rolled_up=False).update(rolled_up=True)
            _add(runs)
        done += len(runs)


def retract(run: Run) -> None:
    """Take back a counted run (call inside the transaction that is about to change it)."""
    _add([run], sign=-1)
    Run.objects.filter(pk=run.pk).update(rolled_up=False)


def rollup_keys(run: Run) -> list[tuple]:
    """(grain, day, *KEY_FIELDS) of the three rows a run adds to: its day, its month, its version's day."""
    day = utc_day(run.created_at)
    key = tuple(getattr(run, name) for name in KEY_FIELDS)
    coarse = (run.workspace_id, run.prompt_id, run.version_id, None, run.provider, run.model_name, "", run.is_draft)
    return [
        (RunRollup.Grain.DAY, day, *key),
        (RunRollup.Grain.MONTH, day.replace(day=1), *key),
        (RunRollup.Grain.VERSION_DAY, day, *coarse),
    ]


def _add(runs: Iterable[Run], sign: int = 1) -> None:
    buckets: dict[tuple, dict[str, int | float]] = defaultdict(lambda: dict.fromkeys(SUM_FIELDS, 0))
    for run in runs:
        adds = {name: value * sign for name, value in contribution(run).items()}
        for full_key in rollup_keys(run):
            sums = buckets[full_key]
            for name, value in adds.items():
                sums[name] += value
    items = list(buckets.items())
    for start in range(0, len(items), UPSERT_CHUNK):
        _upsert(items[start : start + UPSERT_CHUNK])


def _upsert(items: list[tuple[tuple, dict]]) -> None:
    """INSERT ... ON CONFLICT (the rollup key) DO UPDATE SET runs = runs + excluded.runs, ...

    One statement that either creates the row or adds to it, atomically on both SQLite
    and PostgreSQL: two first runs of a version on a day can no longer create two rows
    (the old update-else-create did, on PostgreSQL, where a NULL user never conflicts).
    """
    table = connection.ops.quote_name(RunRollup._meta.db_table)
    columns = ("grain", "day", *KEY_FIELDS, *SUM_FIELDS)
    row_sql = "(" + ", ".join(["%s"] * len(columns)) + ")"
    sets = ", ".join(f"{name} = {table}.{name} + excluded.{name}" for name in SUM_FIELDS)
    params: list = []
    for key, sums in items:
        params += [*key, *(sums[name] for name in SUM_FIELDS)]
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([row_sql] * len(items))} "
        f"ON CONFLICT ({CONFLICT_TARGET}) DO UPDATE SET {sets}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def computed_rows(runs, rollup_model=RunRollup) -> Iterator[RunRollup]:
    """The rollup rows `runs` (finished ones) add up to, computed by the database."""
    coarse_keys = [name for name in KEY_FIELDS if name not in ("user_id", "status")]
    for grain, trunc, keys in (
        (RunRollup.Grain.DAY, TruncDate, KEY_FIELDS),
        (RunRollup.Grain.MONTH, TruncMonth, KEY_FIELDS),
        (RunRollup.Grain.VERSION_DAY, TruncDate, coarse_keys),
    ):
        rows = (
            runs.order_by()
            .annotate(period=trunc("created_at", tzinfo=UTC))
            .values("period", *keys)
            .annotate(**prefixed(RUN_SUMS))
        )
        for row in rows.iterator(chunk_size=5000):
            row = {"status": "", "user_id": None, **unprefixed(row)}
            period_value = row.pop("period")
            day = period_value.date() if isinstance(period_value, dt.datetime) else period_value
            yield rollup_model(grain=grain, day=day, **row)


def rebuild(run_model=Run, rollup_model=RunRollup) -> int:
    """Recompute every rollup from the runs, in the database. Run it while no runs are finishing.

    The models are parameters so that a migration can pass its historical ones."""
    finished = run_model.objects.exclude(status=Run.Status.PENDING)
    created = 0
    with transaction.atomic():
        rollup_model.objects.all().delete()
        batch = []
        for row in computed_rows(finished, rollup_model):
            batch.append(row)
            if len(batch) >= 5000:
                created += len(rollup_model.objects.bulk_create(batch))
                batch = []
        created += len(rollup_model.objects.bulk_create(batch))
        finished.filter(rolled_up=False).update(rolled_up=True)
        run_model.objects.filter(status=Run.Status.PENDING, rolled_up=True).update(rolled_up=False)
    return created


@dataclass(frozen=True)
class Drift:
    key: tuple  # (grain, day, *KEY_FIELDS)
    field: str
    stored: int | float
    expected: int | float


def drift() -> list[Drift]:
    """Every difference between the stored rollups and the runs they claim to hold
    (finished runs with rolled_up set; the others are summed live and cannot drift).
    Duplicate rows of one key show up as their sum being off."""
    expected: dict[tuple, dict] = {}
    for row in computed_rows(Run.objects.filter(rolled_up=True).exclude(status=Run.Status.PENDING)):
        expected[_row_key(row)] = {name: getattr(row, name) or 0 for name in SUM_FIELDS}
    stored: dict[tuple, dict] = defaultdict(lambda: dict.fromkeys(SUM_FIELDS, 0))
    for row in RunRollup.objects.order_by().iterator(chunk_size=5000):
        sums = stored[_row_key(row)]
        for name in SUM_FIELDS:
            sums[name] += getattr(row, name)
    found = []
    for key in sorted(set(expected) | set(stored), key=repr):
        have, want = stored.get(key, {}), expected.get(key, {})
        for name in SUM_FIELDS:
            a, b = have.get(name, 0), want.get(name, 0)
            if (abs(a - b) > 1e-6 * max(1.0, abs(b))) if isinstance(a, float) or isinstance(b, float) else a != b:
                found.append(Drift(key, name, a, b))
    return found


def _row_key(row: RunRollup) -> tuple:
    return (row.grain, row.day, *(getattr(row, name) for name in KEY_FIELDS))


def prefixed(spec: dict) -> dict:
    # Aliases must not share a name with a model field (cost_nano is both), so they get a prefix.
    return {f"sum_{name}": expression for name, expression in spec.items()}


def unprefixed(row: dict) -> dict:
    return {name.removeprefix("sum_"): value for name, value in row.items()}
