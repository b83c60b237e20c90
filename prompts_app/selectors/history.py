"""Run history reads: which runs a user may see, filters -> rows, totals and keyset pages.

Everything starts from a `Scope`: the workspaces the user is a member of. No query
here ever reads a run outside `scope.workspace_ids`.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass, replace
from functools import cached_property
from types import SimpleNamespace

from django.contrib.auth import get_user_model
from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db import connection
from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL

from prompts_app.models import BatchComparison, Membership, Prompt, PromptVersion, Run, RunRollup
from prompts_app.selectors import costs
from prompts_app.services.rollups import RUN_SUMS

UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
PAGE_SIZE = 50
FTS_TABLE = "prompts_app_run_fts"
# A text search's totals are summed in steps of about this many seconds of this thread's CPU
# time (totals_step): CPU, not wall-clock time, so a busy machine does not split the totals
# into more steps (each one costs a request). The first step starts with FIRST_SPAN run ids;
# the others with as many ids as fitted the budget at the pace measured so far.
TOTALS_BUDGET = 0.15
FIRST_SPAN = 50_000
USERNAME = get_user_model().USERNAME_FIELD


@dataclass
class Scope:
    """What a user may see: their workspaces, and the prompts, versions and people in them."""

    user: object
    memberships: list[Membership]

    @cached_property
    def workspaces(self) -> list:
        return [m.workspace for m in self.memberships if m.user_id == self.user.pk]

    @cached_property
    def workspace_ids(self) -> list[int]:
        return [w.pk for w in self.workspaces]

    @cached_property
    def users(self) -> list:
        people = {m.user_id: m.user for m in self.memberships if m.workspace_id in self.workspace_ids}
        return sorted(people.values(), key=lambda u: u.get_username().lower())

    @cached_property
    def versions(self) -> list[PromptVersion]:
        return list(
            PromptVersion.objects.filter(prompt__workspace_id__in=self.workspace_ids)
            .select_related("prompt")
            .only("id", "number", "maxim_id", "prompt__id", "prompt__name", "prompt__workspace_id")
            .order_by("prompt__name", "-number")
        )

    @cached_property
    def version_by_id(self) -> dict[int, PromptVersion]:
        return {v.pk: v for v in self.versions}

    @cached_property
    def prompts(self) -> list:
        return list({v.prompt_id: v.prompt for v in self.versions}.values())

    def batch_label(self, pk: int) -> str | None:
        """The batch's name if it is in the user's workspaces; None for any other id (nothing leaks)."""
        found = BatchComparison.objects.filter(pk=pk, workspace_id__in=self.workspace_ids).values_list("title").first()
        return None if found is None else BatchComparison.label_of(pk, found[0])

    def model_names(self) -> list[str]:
        """Models seen in the user's workspaces (month rollups are small), for suggestions."""
        rows = RunRollup.objects.filter(grain=RunRollup.Grain.MONTH, workspace_id__in=self.workspace_ids)
        return sorted(set(rows.values_list("model_name", flat=True).distinct()))


def scope_for_user(user) -> Scope:
    """The access check for history, costs and export: only workspaces the user belongs to."""
    memberships = Membership.objects.filter(workspace__memberships__user=user).select_related("workspace", "user")
    return Scope(user=user, memberships=list(memberships))


@dataclass(frozen=True)
class Cursor:
    """A position in (created_at, id) order; pages are found from it, never by OFFSET."""

    created_at: dt.datetime
    id: int

    def encode(self) -> str:
        return f"{(self.created_at - EPOCH) // dt.timedelta(microseconds=1)}-{self.id}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Raises ValueError for anything that is not a cursor we made."""
        match = re.fullmatch(r"(-?\d{1,17})-(\d{1,19})", text.strip())
        if not match:
            raise ValueError(text)
        try:
            return cls(EPOCH + dt.timedelta(microseconds=int(match[1])), int(match[2]))
        except OverflowError:  # a date past year 9999
            raise ValueError(text) from None

    @classmethod
    def of(cls, run) -> Cursor:
        created_at = run["created_at"] if isinstance(run, dict) else run.created_at
        return cls(created_at, run["id"] if isinstance(run, dict) else run.id)


@dataclass
class RunFilter:
    workspace_ids: list[int]  # always a subset of the user's scope
    prompt_id: int | None = None
    version_id: int | None = None
    model: str = ""
    provider: str = ""
    status: str = ""
    user_id: int | None = None
    draft: bool | None = None  # True: runs of unsaved drafts only; False: saved versions only
    date_from: dt.date | None = None  # whole UTC days, inclusive
    date_to: dt.date | None = None
    q: str = ""
    # Runs of one batch comparison (in scope: checked by the form). The rollups do not know
    # batches, so its totals are summed over its runs (thousands at most, not millions).
    batch_id: int | None = None

    def key_q(self) -> Q:
        """Conditions shared by runs and rollup rows (same column names in both)."""
        q = Q(workspace_id__in=self.workspace_ids)
        for name, value in (
            ("prompt_id", self.prompt_id),
            ("version_id", self.version_id),
            ("model_name", self.model),
            ("provider", self.provider),
            ("status", self.status),
            ("user_id", self.user_id),
            ("is_draft", self.draft),
        ):
            if value not in (None, ""):
                q &= Q(**{name: value})
        return q


def day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=UTC)


def filter_runs(f: RunFilter, *, newest_first: bool = True, prompt_names: bool = True) -> QuerySet[Run]:
    runs = Run.objects.filter(f.key_q())
    if f.batch_id is not None:
        # A subquery, as in costs.not_rolled_up_q: the batch's runs are found through its index
        # and then sorted. With `batch_comparison_id = x` SQLite walked the created_at index over
        # every run (its statistics count the runs of no batch, nearly all, as one value).
        runs = runs.filter(pk__in=Run.objects.filter(batch_comparison_id=f.batch_id).values("pk"))
    if f.date_from:
        runs = runs.filter(created_at__gte=day_start(f.date_from))
    if f.date_to:
        runs = runs.filter(created_at__lt=day_start(f.date_to + dt.timedelta(days=1)))
    if f.q.strip():
        names_in = f.workspace_ids if prompt_names else None
        runs = runs.filter(text_q(f.q, newest_first=newest_first, workspace_ids=names_in))
    return runs


def text_q(text: str, *, newest_first: bool = True, workspace_ids: list[int] | None = None) -> Q:
    """Runs whose input, output or error has words starting with each typed word, or whose
    prompt's name has every typed word.

    SQLite uses the FTS5 index (migrations 0004 and 0008); other databases (and input with no
    word characters) fall back to a substring match on the three columns. Prompt names are
    matched in the small prompt table and become a prompt_id condition.
    """
    words = re.findall(r"\w+", text)
    named = _prompts_named(words or [text.strip()], workspace_ids)
    if connection.vendor == "sqlite" and words:
        matches = f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s"
        params: list[object] = [fts_match(words)]
        if named:
            # One set of ids (a UNION), not "IN (...) OR prompt_id IN (...)": SQLite cannot use
            # the match set for an OR and would scan every run.
            matches += f" UNION SELECT id FROM prompts_app_run WHERE prompt_id IN ({', '.join(['%s'] * len(named))})"
            params += named
        if not newest_first:  # totals: look each match up by rowid
            return Q(pk__in=RawSQL(matches, params))
        # For pages, the unary + keeps SQLite walking runs newest-first and probing the match
        # set, which stops after one page; a lookup per match would sort every match (~36% of
        # runs for a common word) before returning 50 of them.
        return Q(RawSQL(f'+"prompts_app_run"."id" IN ({matches})', params, output_field=BooleanField()))
    q = Q()
    for word in words or [text.strip()]:
        q &= Q(input_text__icontains=word) | Q(output_text__icontains=word) | Q(error__icontains=word)
    return q | Q(prompt_id__in=named) if named else q


def fts_match(words: list[str]) -> str:
    """The FTS5 query: every word, as a prefix, in any of the three columns."""
    return " AND ".join(f'"{word}"*' for word in words)


def _prompts_named(words: list[str], workspace_ids: list[int] | None) -> list[int]:
    if workspace_ids is None:
        return []
    prompts = Prompt.objects.filter(workspace_id__in=workspace_ids)
    for word in words:
        prompts = prompts.filter(name__icontains=word)
    return list(prompts.values_list("pk", flat=True)[:1000])


def totals(f: RunFilter) -> costs.Totals:
    """Exact totals for the filter: rollup rows plus the runs not rolled up yet.

    A text filter sums the runs its words match; the runs of prompts its words name come
    from the rollups, as a prompt filter's do.
    """
    return totals_step(f, None, budget=None).totals


@dataclass
class Progress:
    """Totals added up so far, and where the next step goes on."""

    totals: costs.Totals
    below: int | None = None  # the runs with ids below this are not added up yet; None: all are
    span: int = 0  # how many ids the next step sums first: what fitted the budget at this step's pace


def totals_step(f: RunFilter, so_far: Progress | None, *, budget: float | None) -> Progress:
    """`so_far` plus the next step of the totals; the whole totals in one step unless SQLite
    sums a text search's matches and `budget` (seconds of CPU) is spent first.

    A common word matches a third of the runs, and summing 360,000 of them at 1M runs takes
    about 0.6 s of CPU (bench/bench_history.py), so the matches are summed newest ids first, a
    slice of ids at a time, until the budget is spent; the next step (the next request) adds
    the older slices. Every step is exact for the runs it covered: nothing is estimated.
    """
    if not f.q.strip():
        return Progress(_keyed_totals(f, Q()))
    # Every run of a prompt whose name matches is in: those prompts are a key filter, summed
    # from the rollups (in the first step). Only the text matches of the other prompts are
    # summed run by run, so no UNION of the two id sets is built (it held every run of a
    # matching prompt).
    words = re.findall(r"\w+", f.q)
    named = _prompts_named(words or [f.q.strip()], f.workspace_ids)
    if so_far is None:
        result = _keyed_totals(replace(f, q=""), Q(prompt_id__in=named)) if named else costs.Totals()
    else:
        result = replace(so_far.totals)
    if connection.vendor != "sqlite" or not words:
        text_runs = filter_runs(f, newest_first=False, prompt_names=False).exclude(prompt_id__in=named)
        result.add(costs.run_totals(text_runs))
        return Progress(result)
    keyed_runs = filter_runs(replace(f, q="")).exclude(prompt_id__in=named)
    if budget is None:
        result.add(_matched_totals(keyed_runs, fts_match(words)))
        return Progress(result)
    below = _id_after_last_run() if so_far is None else so_far.below
    started, span, step_span = time.thread_time(), max(FIRST_SPAN, so_far.span if so_far else 0), FIRST_SPAN
    while below > 0:
        slice_started, low = time.thread_time(), max(0, below - span)
        result.add(_matched_totals(keyed_runs, fts_match(words), ids=(low, below)))
        per_id = (time.thread_time() - slice_started) / (below - low)
        below, left = low, budget - (time.thread_time() - started)
        # Each slice pays the FTS set-up again (a prefix's lists merged: ~20-40 ms for a common
        # word at 1M runs), so a step is one or two slices sized at the pace measured so far,
        # and the next step starts with a slice of a whole budget.
        step_span = max(FIRST_SPAN, int(0.9 * budget / per_id)) if per_id else below
        if left < budget / 3:
            break
        span = max(FIRST_SPAN, int(0.9 * left / per_id)) if per_id else below
    return Progress(result, below or None, step_span)


def _id_after_last_run() -> int:
    return (Run.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1


def _matched_totals(runs: QuerySet[Run], match: str, ids: tuple[int, int] | None = None) -> dict:
    """SQLite: the sums of costs.run_totals over the `runs` that `match` finds, read in id order
    (only ids[0] <= id < ids[1], if given).

    The ORM's `id IN (matches)` first copies every match (a third of a million for a common
    word at 1M runs) into a temporary b-tree, then looks each one up; here the CROSS JOIN
    keeps the FTS index outside, and its ids, already in order, are looked up as they come.
    Same sums (RUN_SUMS, compiled by Django) and the same conditions (the queryset's WHERE).
    """
    query = runs.query.chain()
    compiler = query.get_compiler(connection=connection)
    sums, params = [], []
    for name, total in RUN_SUMS.items():
        sql, sum_params = compiler.compile(
            total.resolve_expression(query, allow_joins=True, reuse=None, summarize=True)
        )
        sums.append(f"{sql} AS {name}")
        params += sum_params
    try:
        where, where_params = compiler.compile(query.where)
    except EmptyResultSet:
        return {}
    except FullResultSet:
        where, where_params = "1", []
    table = connection.ops.quote_name(Run._meta.db_table)
    # The rowid range goes to the FTS index, which skips to it in its lists of ids.
    within, within_params = (f" AND {FTS_TABLE}.rowid >= %s AND {FTS_TABLE}.rowid < %s", ids) if ids else ("", ())
    sql = (
        f"SELECT {', '.join(sums)} FROM {FTS_TABLE} CROSS JOIN {table} "
        f"ON {table}.id = {FTS_TABLE}.rowid WHERE {FTS_TABLE} MATCH %s{within} AND ({where})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, match, *within_params, *where_params])
        return dict(zip(RUN_SUMS, cursor.fetchone(), strict=True))


def _keyed_totals(f: RunFilter, extra: Q) -> costs.Totals:
    """Totals of a filter with no text: rollup rows plus the runs not rolled up yet."""
    result = costs.Totals()
    if f.batch_id is not None:
        result.add(costs.run_totals(filter_runs(f).filter(extra)))
        return result
    result.add(costs.rollup_totals(f.key_q() & extra & costs.period_q(f.date_from, f.date_to)))
    result.add(costs.live_totals(filter_runs(f).filter(extra)))
    return result


@dataclass
class RunRow:
    """A run as the history table and the home page's recent runs show it, read with values_list:
    building 51 Run objects, each with its workspace, prompt, version and user, was a fifth of the
    history page's time. Reads like a Run where the pages use it (run.prompt.name, ...)."""

    pk: int
    created_at: dt.datetime
    status: str
    provider: str
    model_name: str
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    cost_nano: int | None
    latency_ms: float | None
    started_at: dt.datetime | None
    is_draft: bool
    workspace_id: int
    workspace_name: str
    prompt_id: int
    prompt_name: str
    version_number: int | None
    version_maxim_id: str
    username: str | None
    batch_comparison_id: int | None
    error: str = ""  # set by services.runs.shown_as_settled for a run its process left behind
    batch_name: str = ""  # set by page(): the batch's label, read once for the page's runs

    @property
    def id(self) -> int:
        return self.pk

    @property
    def prompt(self) -> SimpleNamespace:
        return SimpleNamespace(name=self.prompt_name)

    @property
    def version(self) -> SimpleNamespace:
        return SimpleNamespace(number=self.version_number, maxim_id=self.version_maxim_id)

    @property
    def workspace(self) -> SimpleNamespace:
        return SimpleNamespace(name=self.workspace_name)

    @property
    def user(self) -> SimpleNamespace | None:
        return None if self.username is None else SimpleNamespace(get_username=lambda: self.username)

    def get_status_display(self) -> str:
        return str(Run.Status(self.status).label)


# RunRow's fields in order, as values_list reads them.
ROW_COLUMNS = (
    "id",
    "created_at",
    "status",
    "provider",
    "model_name",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost_nano",
    "latency_ms",
    "started_at",
    "is_draft",
    "workspace_id",
    "workspace__name",
    "prompt_id",
    "prompt__name",
    "version__number",
    "version__maxim_id",
    f"user__{USERNAME}",
    "batch_comparison_id",
)


@dataclass
class Page:
    runs: list[RunRow]
    newer: Cursor | None = None  # link to the page of newer runs, if any
    older: Cursor | None = None
    is_first: bool = True


def older_than_q(cursor: Cursor) -> Q:
    """Strictly older than the cursor; written so an index range on created_at applies."""
    return Q(created_at__lte=cursor.created_at) & ~Q(created_at=cursor.created_at, id__gte=cursor.id)


def newer_than_q(cursor: Cursor) -> Q:
    return Q(created_at__gte=cursor.created_at) & ~Q(created_at=cursor.created_at, id__lte=cursor.id)


def page(
    f: RunFilter, *, older_than: Cursor | None = None, newer_than: Cursor | None = None, size: int = PAGE_SIZE
) -> Page:
    runs = filter_runs(f)
    if newer_than is not None:
        rows = _rows(runs.filter(newer_than_q(newer_than)).order_by("created_at", "id")[: size + 1])
        if not rows:  # nothing newer any more (runs were deleted): show the newest page
            return page(f, size=size)
        more, rows = len(rows) > size, rows[:size][::-1]
        return Page(rows, newer=Cursor.of(rows[0]) if more else None, older=Cursor.of(rows[-1]), is_first=not more)
    if older_than is not None:
        runs = runs.filter(older_than_q(older_than))
    rows = _rows(runs.order_by("-created_at", "-id")[: size + 1])
    more, rows = len(rows) > size, rows[:size]
    return Page(
        rows,
        newer=Cursor.of(rows[0]) if older_than is not None and rows else None,
        older=Cursor.of(rows[-1]) if more else None,
        is_first=older_than is None,
    )


def _rows(runs: QuerySet[Run]) -> list[RunRow]:
    rows = [RunRow(*values) for values in runs.values_list(*ROW_COLUMNS)]
    # One query for the page's batches, and none without any: not a join, which would change
    # how SQLite walks a million runs for the page, and not a query per row.
    batch_ids = {row.batch_comparison_id for row in rows if row.batch_comparison_id is not None}
    if batch_ids:
        titles = dict(BatchComparison.objects.filter(pk__in=batch_ids).values_list("pk", "title"))
        for row in rows:
            if row.batch_comparison_id is not None:
                row.batch_name = BatchComparison.label_of(
                    row.batch_comparison_id, titles.get(row.batch_comparison_id, "")
                )
    return rows


def overview(user, *, days: int = 7, recent: int = 6) -> dict:
    """For the home page: the last `days` whole UTC days' totals and the newest runs."""
    ids = [m.workspace_id for m in Membership.objects.filter(user=user)]
    if not ids:
        return {"days": days, "totals": None, "recent": []}
    today = dt.datetime.now(dt.timezone.utc).date()
    week = RunFilter(ids, date_from=today - dt.timedelta(days=days - 1))
    return {"days": days, "totals": totals(week), "recent": page(RunFilter(ids), size=recent).runs}
