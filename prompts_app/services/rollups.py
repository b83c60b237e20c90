"""Per-day and per-month run totals (RunRollup), so totals over a million runs stay fast.

A finished run is added once: `record(run)` flips `Run.rolled_up` and adds the run's
figures in the same transaction, so a repeated call never counts twice. Runs not yet
rolled up (pending ones, or finished ones whose `record` never happened) are summed
live by the readers, which keeps every total exact at any moment.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate, TruncMonth

from prompts_app.models import Run, RunRollup

UTC = dt.timezone.utc
KEY_FIELDS = ("workspace_id", "prompt_id", "version_id", "user_id", "provider", "model_name", "status", "is_draft")
SUM_FIELDS = (
    "runs", "prompt_tokens", "completion_tokens", "total_tokens", "cost_nano",
    "priced_runs", "unpriced_runs", "latency_sum", "latency_runs",
)  # fmt: skip
# Only what a rollup needs, so rolling up never loads the big JSON columns.
RUN_FIELDS = ("id", "created_at", "cost_nano", "prompt_tokens", "completion_tokens", "total_tokens",
              "latency_ms", *KEY_FIELDS)  # fmt: skip
# The unique key of RunRollup ("one_rollup_per_key_v2" in models.py), as the upsert names it.
CONFLICT_TARGET = ('"grain", "day", "workspace_id", "prompt_id", "version_id", COALESCE("user_id", 0), '
                   '"provider", "model_name", "status", "is_draft"')  # fmt: skip
UPSERT_CHUNK = 200  # rows per INSERT: 19 parameters each, well under SQLite's limit


def utc_day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(UTC).date()


def contribution(run: Run) -> dict[str, int | float]:
    """What one run adds to its rollup rows. Unpriced = succeeded with no known price."""
    priced = run.cost_nano is not None
    return {
        "runs": 1,
        "prompt_tokens": run.prompt_tokens,
        "completion_tokens": run.completion_tokens,
        "total_tokens": run.total_tokens,
        "cost_nano": run.cost_nano or 0,
        "priced_runs": int(priced),
        "unpriced_runs": int(not priced and run.status == Run.Status.SUCCESS),
        "latency_sum": run.latency_ms or 0.0,
        "latency_runs": int(run.latency_ms is not None),
    }


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
    return [(RunRollup.Grain.DAY, day, *key), (RunRollup.Grain.MONTH, day.replace(day=1), *key),
            (RunRollup.Grain.VERSION_DAY, day, *coarse)]  # fmt: skip


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
        _upsert(items[start:start + UPSERT_CHUNK])


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
    sql = (f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([row_sql] * len(items))} "
           f"ON CONFLICT ({CONFLICT_TARGET}) DO UPDATE SET {sets}")  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


AGGREGATES = {
    "runs": Count("id"),
    "prompt_tokens": Sum("prompt_tokens"),
    "completion_tokens": Sum("completion_tokens"),
    "total_tokens": Sum("total_tokens"),
    "cost_nano": Sum("cost_nano", default=0),
    "priced_runs": Count("id", filter=Q(cost_nano__isnull=False)),
    "unpriced_runs": Count("id", filter=Q(cost_nano__isnull=True, status=Run.Status.SUCCESS)),
    "latency_sum": Sum("latency_ms", default=0.0),
    "latency_runs": Count("latency_ms"),
}


def computed_rows(runs, rollup_model=RunRollup) -> Iterator[RunRollup]:
    """The rollup rows `runs` (finished ones) add up to, computed by the database."""
    coarse_keys = [name for name in KEY_FIELDS if name not in ("user_id", "status")]
    for grain, trunc, keys in ((RunRollup.Grain.DAY, TruncDate, KEY_FIELDS),
                               (RunRollup.Grain.MONTH, TruncMonth, KEY_FIELDS),
                               (RunRollup.Grain.VERSION_DAY, TruncDate, coarse_keys)):  # fmt: skip
        rows = (runs.order_by().annotate(period=trunc("created_at", tzinfo=UTC))
                .values("period", *keys).annotate(**_prefixed(AGGREGATES)))  # fmt: skip
        for row in rows.iterator(chunk_size=5000):
            row = {"status": "", "user_id": None, **_unprefixed(row)}
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


# --- reading -------------------------------------------------------------------------------


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


ROLLUP_SUMS = {name: Sum(name) for name in SUM_FIELDS}
LIVE_SUMS = {
    "runs": Count("id"),
    "prompt_tokens": Sum("prompt_tokens"),
    "completion_tokens": Sum("completion_tokens"),
    "total_tokens": Sum("total_tokens"),
    "cost_nano": Sum("cost_nano"),
    "priced_runs": Count("id", filter=Q(cost_nano__isnull=False)),
    "unpriced_runs": Count("id", filter=Q(cost_nano__isnull=True, status=Run.Status.SUCCESS)),
    "latency_sum": Sum("latency_ms"),
    "latency_runs": Count("latency_ms"),
}


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


def _prefixed(spec: dict) -> dict:
    # Aliases must not share a name with a model field (cost_nano is both), so they get a prefix.
    return {f"sum_{name}": expression for name, expression in spec.items()}


def _unprefixed(row: dict) -> dict:
    return {name.removeprefix("sum_"): value for name, value in row.items()}


def aggregate(queryset, spec: dict) -> dict:
    return _unprefixed(queryset.order_by().aggregate(**_prefixed(spec)))


def rollup_totals(rollup_filter: Q) -> dict:
    return aggregate(RunRollup.objects.filter(rollup_filter), ROLLUP_SUMS)


def live_totals(run_queryset) -> dict:
    """Sums over the runs the rollups do not hold yet (pending, or not recorded yet)."""
    return aggregate(run_queryset.filter(not_rolled_up_q()), LIVE_SUMS)


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
    by_version: list[tuple[tuple[int, bool], Totals]]  # (version id, is_draft): drafts apart
    by_model: list[tuple[tuple[str, str], Totals]]
    total: Totals


def cost_review(*, workspace_ids: list[int], start: dt.date, end: dt.date) -> CostReview:
    """Runs, tokens and cost per day, prompt, version and model over whole UTC days start..end.

    Two grouped reads of the per-version day rollups (per day; per version and model, which
    also gives prompts) plus the runs not rolled up yet; money stays in integer nano-USD throughout.
    """
    rows = RunRollup.objects.filter(grain=RunRollup.Grain.VERSION_DAY, day__gte=start, day__lte=end,
                                    workspace_id__in=workspace_ids).order_by()  # fmt: skip
    per_day = [(row.pop("day"), _unprefixed(row)) for row in rows.values("day").annotate(**_prefixed(ROLLUP_SUMS))]
    key_names = ("prompt_id", "version_id", "is_draft", "provider", "model_name")
    per_version = [
        (tuple(row.pop(name) for name in key_names), _unprefixed(row))
        for row in rows.values(*key_names).annotate(**_prefixed(ROLLUP_SUMS))
    ]
    since = dt.datetime.combine(start, dt.time.min, tzinfo=UTC)
    until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=UTC)
    live = Run.objects.filter(not_rolled_up_q(), workspace_id__in=workspace_ids, created_at__gte=since,
                              created_at__lt=until).only(*RUN_FIELDS, "status")  # fmt: skip
    for run in live:
        sums = contribution(run)
        per_day.append((utc_day(run.created_at), sums))
        per_version.append(((run.prompt_id, run.version_id, run.is_draft, run.provider, run.model_name), sums))

    days = {start + dt.timedelta(days=n): Totals() for n in range((end - start).days + 1)}
    prompts: dict[int, Totals] = defaultdict(Totals)
    versions: dict[tuple[int, bool], Totals] = defaultdict(Totals)
    models: dict[tuple[str, str], Totals] = defaultdict(Totals)
    total = Totals()
    for day, sums in per_day:
        days[day].add(sums)
        total.add(sums)
    for (prompt_id, version_id, is_draft, provider, model_name), sums in per_version:
        for bucket in (prompts[prompt_id], versions[(version_id, is_draft)], models[(provider, model_name)]):
            bucket.add(sums)

    def by_cost(item: tuple) -> tuple:
        return (-item[1].cost_nano, -item[1].runs)

    return CostReview(
        start=start,
        end=end,
        days=list(days.items()),
        by_prompt=sorted(prompts.items(), key=by_cost),
        by_version=sorted(versions.items(), key=by_cost),
        by_model=sorted(models.items(), key=by_cost),
        total=total,
    )
