"""Running a version: record the run, call Maxim once, store output, tokens and cost."""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from prompts_app import pricing
from prompts_app.maxim import MaximClient, MaximError, RunRequest, RunResult, Use, client_for
from prompts_app.models import ComparisonColumn, Comparison, PromptVersion, Run, Workspace
from prompts_app.crypto import DecryptionError
from prompts_app.run_input import InputTooLarge, fill_variables, input_problem, sent_size_problem
from prompts_app.services import rollups, rows, run_watch
from prompts_app.services.once import create_once

log = logging.getLogger(__name__)


def build_run_body(*, version: PromptVersion, content: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    """The body of POST /v1/prompts/run for `content` run against `version` (maxim/requests.py says what it holds)."""
    return RunRequest.for_version(
        prompt_id=version.prompt.maxim_id,
        version_id=version.maxim_id,
        workspace_id=version.prompt.workspace.maxim_id,
        content=content,
        inputs=inputs,
        fill=fill_variables,
    ).body()


def input_search_text(inputs: dict[str, Any]) -> str:
    parts = [str(v) for v in (inputs.get("variables") or {}).values()]
    for turn in inputs.get("turns") or []:
        content = turn.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [p.get("text", "") for p in content if isinstance(p, dict)]
    return "\n".join(p for p in parts if p)


def custom_price_rules(workspace: Workspace) -> list[pricing.CustomPriceRule]:
    return [
        pricing.CustomPriceRule(
            pattern=price.model_pattern,
            input_usd_per_mtok=price.input_usd_per_mtok,
            output_usd_per_mtok=price.output_usd_per_mtok,
            updated_on=price.updated_at.date(),
        )
        for price in workspace.custom_prices.all()
    ]


def start_run(
    *,
    version: PromptVersion,
    inputs: dict[str, Any],
    user: AbstractBaseUser,
    content: dict[str, Any] | None = None,
    idempotency_key: str = "",
) -> tuple[Run, bool]:
    """Record a pending run before anything is sent. Returns (run, created).

    A repeated idempotency key returns the first run and created=False, so the
    caller must not send it again. (A comparison's runs are recorded a batch at a time,
    identified by their place: services/compare.py.) Raises InputTooLarge for an input
    over the limits.
    """
    run = new_run(version=version, inputs=inputs, user=user, content=content, idempotency_key=idempotency_key)
    lookup = {"user": user, "idempotency_key": idempotency_key}
    return create_once(Run, idempotency_key, lookup, lambda: _inserted(run))


def _inserted(run: Run) -> Run:
    run.save(force_insert=True)
    return run


def new_run(
    *,
    version: PromptVersion,
    inputs: dict[str, Any],
    user: AbstractBaseUser,
    content: dict[str, Any] | None = None,
    comparison: Comparison | None = None,
    column: ComparisonColumn | None = None,
    batch: int | None = None,
    repeat: int | None = None,
    idempotency_key: str = "",
) -> Run:
    """The pending run start_run() records, not saved yet (a comparison's batch saves its runs
    in one insert). Raises InputTooLarge for an input over the limits."""
    is_draft = content is not None
    content = content if content is not None else version.content()
    problem = input_problem(content.get("messages", []), inputs)
    if problem:
        raise InputTooLarge(problem)
    run = pending_run(version=version, content=content, inputs=inputs, user=user, is_draft=is_draft)
    run.comparison, run.column, run.batch, run.repeat = comparison, column, batch, repeat
    run.idempotency_key = idempotency_key
    return run


def pending_run(
    *, version: PromptVersion, content: dict[str, Any], inputs: dict[str, Any], user: Any, is_draft: bool
) -> Run:
    """The unsaved pending run of `content` on `inputs` (checked with input_problem by the caller);
    a batch worker saves many at once with bulk_create."""
    body = build_run_body(version=version, content=content, inputs=inputs)
    return Run(
        workspace=version.prompt.workspace,
        prompt=version.prompt,
        version=version,
        user=user,
        is_draft=is_draft,
        provider=body["modelProvider"],
        model_name=body["modelName"],
        input=inputs,
        input_text=input_search_text(inputs),
        request_body=body,
    )


def execute_run(run: Run, *, price_rules: list[pricing.CustomPriceRule] | None = None) -> Run:
    """Send a pending run to Maxim exactly once and store what came back.

    `price_rules`: the workspace's custom prices, when the caller read them once for many runs.
    """
    if run.started_at is None and not mark_started(run):  # settled as "not sent" while queued
        run.refresh_from_db()
        return run
    call_maxim(run, price_rules)
    store_finished([run])
    run_watch.run_stored()  # committed: pages held open on this run answer now
    log.info("run %s %s in %s ms", run.pk, run.status, run.latency_ms)
    return run


def call_maxim(
    run: Run, price_rules: list[pricing.CustomPriceRule] | None = None, *, client: MaximClient | None = None
) -> Run:
    """Send a started run (mark_started returned True) and fill in what came back; writes nothing
    (store_finished does), so a batch worker stores many answers in one transaction.
    `client`: one made for many runs of the workspace (a batch worker's)."""
    started = time.perf_counter()
    try:
        # No automatic re-send, not even after a 429: the person sees why and decides,
        # and a request to Maxim for one run is made exactly once.
        client = client or client_for(run.workspace, Use.RUN)
        result = client.run(run.request_body)
    except MaximError as exc:
        run.status = Run.Status.FAILED
        run.error = _without_nul(exc.message)
        run.error_status = exc.status
        run.retry_after = exc.retry_after  # not stored: a batch (services/batch_worker.py) waits this long after a 429
        run.not_sent = exc.not_sent  # not stored: a batch sends the cell again (services/batch_settle.py)
        run.latency_ms = (time.perf_counter() - started) * 1000  # how long the failure took
    except DecryptionError as exc:
        run.status = Run.Status.FAILED
        run.error = f"{exc} Save the workspace's API key again."
    else:
        try:
            _store_result(run, result, price_rules)
        except Exception:
            # A fault of ours after Maxim answered: the run must not stay pending for ever.
            log.exception("run %s: storing Maxim's answer failed", run.pk)
            run.status = Run.Status.FAILED
            run.error = (
                "Maxim answered, but maximui could not store the answer (an internal error, logged). "
                "Maxim processed the run; check before running it again."
            )
    run.finished_at = timezone.now()
    return run


# What call_maxim() fills in: all that store_finished() writes (the request stays as recorded).
RESULT_FIELDS = (
    "status",
    "output",
    "output_text",
    "tool_calls",
    "error",
    "error_status",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "latency_ms",
    "cost_nano",
    "input_usd_per_mtok",
    "output_usd_per_mtok",
    "price_source",
    "price_as_of",
    "started_at",
    "finished_at",
    "rolled_up",
)


class _CountedMeanwhile(Exception):
    """A run of the group was counted in the totals while Maxim was answering it."""


def store_finished(finished: list[Run]) -> None:
    """One transaction (one commit) for the results and their share of the history totals.

    The usual case costs two statements for the whole group (a batch worker's hot path): an
    UPDATE per run, executed as one, that writes the result and marks the run counted on the
    condition that it was not counted yet, and one upsert of the totals. A run that was counted
    meanwhile fails that condition; the group is then undone and stored the careful way.
    """
    try:
        with transaction.atomic():
            for run in finished:
                run.rolled_up = run.status != Run.Status.PENDING
            if rows.update_rows(finished, RESULT_FIELDS, unless="rolled_up") != len(finished):
                raise _CountedMeanwhile
            rollups.add_counted(finished)
    except _CountedMeanwhile:
        _store_recounting(finished)


def _store_recounting(finished: list[Run]) -> None:
    with transaction.atomic():
        ids = [run.pk for run in finished]
        for stored in (
            Run.objects.select_for_update()
            .only(*rollups.RUN_FIELDS, "status", "rolled_up")
            .filter(pk__in=ids, rolled_up=True)
        ):
            # Marked interrupted (and counted) while Maxim was still answering: the answer
            # is what happened, so it replaces the interruption in the totals too.
            rollups.retract(stored)
        for run in finished:
            run.rolled_up = False
        rows.update_rows(finished, RESULT_FIELDS)
        rollups.record_many(finished)  # history totals; idempotent, and catch_up() repairs a missed call


def _store_result(run: Run, result: RunResult, price_rules: list[pricing.CustomPriceRule] | None) -> None:
    run.status = Run.Status.SUCCESS
    run.output = _without_nul(result.output)
    run.output_text = _without_nul(result.text)
    run.tool_calls = _without_nul(result.tool_calls)
    run.prompt_tokens = result.prompt_tokens
    run.completion_tokens = result.completion_tokens
    run.total_tokens = result.total_tokens
    run.latency_ms = result.latency_ms
    _apply_price(run, custom_price_rules(run.workspace) if price_rules is None else price_rules)


def _without_nul(value: Any) -> Any:
    """`value` with NUL characters shown as U+FFFD: PostgreSQL's text and jsonb cannot hold them,
    and a model can answer with one. (The client bounds how deeply an answer nests.)"""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    return value


def _apply_price(run: Run, price_rules: list[pricing.CustomPriceRule]) -> None:
    price = pricing.price_tokens(
        provider=run.provider,
        model=run.model_name,
        prompt_tokens=run.prompt_tokens,
        completion_tokens=run.completion_tokens,
        custom_rules=price_rules,
        at=run.created_at,
    )
    run.cost_nano = price.cost_nano
    run.input_usd_per_mtok = price.input_usd_per_mtok
    run.output_usd_per_mtok = price.output_usd_per_mtok
    run.price_source = price.source[:200]
    run.price_as_of = price.as_of


def scoped_key(scope: str, key: str) -> str:
    """An idempotency key that can only match runs started from `scope` (fits the 64-char column)."""
    if not key:
        return ""
    scoped = f"{scope}:{key}"
    return scoped if len(scoped) <= 64 else f"{scope}:{hashlib.sha256(key.encode()).hexdigest()[:48]}"


def run_version(
    *,
    version: PromptVersion,
    inputs: dict[str, Any],
    user: AbstractBaseUser,
    content: dict[str, Any] | None = None,
    idempotency_key: str = "",
) -> Run:
    """Record a run, send it once, and return it completed (or failed with its reason).

    The form's key only stands for a run of this version: a key last used elsewhere (another
    version, another workspace) starts a new run here rather than returning that one.
    """
    run, created = start_run(
        version=version,
        inputs=inputs,
        user=user,
        content=content,
        idempotency_key=scoped_key(f"v{version.pk}", idempotency_key),
    )
    if not created:
        return run
    return execute_run(run)


def rerun(*, run: Run, user: AbstractBaseUser, idempotency_key: str = "") -> Run:
    """Send exactly the body of an earlier run again, as a new run by `user`.

    Raises InputTooLarge for a body over today's limits (stored before they existed).
    """
    problem = sent_size_problem(run.request_body.get("messages") or [], {})
    if problem:
        raise InputTooLarge(problem)
    idempotency_key = scoped_key(f"r{run.pk}", idempotency_key)
    again, created = create_once(
        Run,
        idempotency_key,
        {"user": user, "idempotency_key": idempotency_key},
        lambda: Run.objects.create(
            workspace=run.workspace,
            prompt=run.prompt,
            version=run.version,
            user=user,
            is_draft=run.is_draft,
            idempotency_key=idempotency_key,
            provider=run.provider,
            model_name=run.model_name,
            input=run.input,
            input_text=run.input_text,
            request_body=run.request_body,
        ),
    )
    return execute_run(again) if created else again


def estimate(
    *, version: PromptVersion, inputs: dict[str, Any], custom_rules: list[pricing.CustomPriceRule] | None = None
) -> tuple[int, pricing.Price]:
    """Approximate input tokens and their cost for a run not yet sent. Raises InputTooLarge.
    `custom_rules`: the workspace's price rules, when the caller estimates many runs of it."""
    problem = input_problem(version.messages, inputs)
    if problem:
        raise InputTooLarge(problem)
    body = build_run_body(version=version, content=version.content(), inputs=inputs)
    tools = body["modelParameters"].get("tools")
    tokens = pricing.estimate_input_tokens(body["messages"], tools, model=body["modelName"])
    price = pricing.estimate_cost(
        provider=body["modelProvider"],
        model=body["modelName"],
        prompt_tokens=tokens,
        custom_rules=custom_price_rules(version.prompt.workspace) if custom_rules is None else custom_rules,
    )
    return tokens, price


# Longer than the client's read timeout, so a run still waiting on Maxim is never cut short.
PENDING_GRACE_SECONDS = 180
# A run not yet started waits in a comparison's thread pool (eight columns times ten
# repeats on sixteen threads is several rounds of calls); only far past that has the
# process that queued it died.
QUEUED_LIMIT_SECONDS = 3600
INTERRUPTED_ERROR = (
    "Interrupted: the dashboard stopped before it recorded Maxim's answer. The run may or may not have reached Maxim."
)
NOT_SENT_ERROR = (
    "Not sent: the dashboard stopped while this run was still queued. It never reached Maxim "
    "and cost nothing; run it again."
)


def mark_started(run: Run) -> bool:
    """Record that the run is being sent now. False if the sweep already settled it as not
    sent while it was queued: then it must not be sent, or "never reached Maxim" would be a lie."""
    run.started_at = timezone.now()
    claimed = Run.objects.filter(pk=run.pk, status=Run.Status.PENDING, started_at__isnull=True)
    return bool(claimed.update(started_at=run.started_at))


def mark_all_started(runs: list[Run]) -> list[Run]:
    """mark_started() for many runs in one conditional UPDATE; returns those now started (a run
    the sweep settled meanwhile is left out: it must not be sent)."""
    if not runs:
        return []
    now = timezone.now()
    ids = [run.pk for run in runs]
    Run.objects.filter(pk__in=ids, status=Run.Status.PENDING, started_at__isnull=True).update(started_at=now)
    started = set(Run.objects.filter(pk__in=ids, started_at=now).values_list("pk", flat=True))
    for run in runs:
        if run.pk in started:
            run.started_at = now
    return [run for run in runs if run.pk in started]


def is_stale(started_at, created_at, *, now=None) -> bool:
    """A pending run its process can no longer finish: sent longer ago than any call
    lasts, or queued (never started) for far longer than any queue drains."""
    now = now or timezone.now()
    if started_at is not None:
        return started_at < now - timedelta(seconds=PENDING_GRACE_SECONDS)
    return created_at < now - timedelta(seconds=QUEUED_LIMIT_SECONDS)


def mark_interrupted_runs(*, all_pending: bool = False) -> int:
    """Settle runs left pending by a process that died: a started run is "interrupted" (it
    may have reached Maxim), one still queued is "not sent" (it never did).

    Called by the runner's sweep (prompts_app/runner.py) and the management command, never by
    a page: pages show a stale run as settled without writing (shown_as_settled). Cheap when
    there is nothing to do (one read through the partial index of runs not yet rolled up,
    which every pending run is). `all_pending` settles every pending run however recent
    (only when no server is running).
    """
    # No created_at condition in SQL: the planner would take the created_at index and walk
    # every older run instead of the few not yet rolled up.
    pending = Run.objects.filter(rolled_up=False, status=Run.Status.PENDING)
    now = timezone.now()
    started, queued = [], []
    for pk, created_at, started_at in pending.values_list("pk", "created_at", "started_at"):
        if all_pending or is_stale(started_at, created_at, now=now):
            (started if started_at is not None else queued).append(pk)
    if not started and not queued:
        return 0
    still = Run.objects.filter(status=Run.Status.PENDING)
    # started_at is in the condition: a queued run that starts right now is left alone.
    count = still.filter(pk__in=started, started_at__isnull=False).update(
        status=Run.Status.INTERRUPTED, error=INTERRUPTED_ERROR, finished_at=now
    )
    count += still.filter(pk__in=queued, started_at__isnull=True).update(
        status=Run.Status.NOT_SENT, error=NOT_SENT_ERROR, finished_at=now
    )
    rollups.catch_up()  # the bulk update skipped record(); add the settled runs to history totals
    return count


def shown_as_settled(run: Run, *, now=None) -> Run:
    """`run` as the sweep will settle it if its process can no longer finish it: for pages,
    which write nothing. Changes this object only, never the database."""
    if run.status == Run.Status.PENDING and is_stale(run.started_at, run.created_at, now=now):
        sent = run.started_at is not None
        run.status = Run.Status.INTERRUPTED if sent else Run.Status.NOT_SENT
        run.error = INTERRUPTED_ERROR if sent else NOT_SENT_ERROR
    return run


def waiting_run(*, version: PromptVersion, user: Any) -> Run | None:
    """This person's newest run of the version still waiting for Maxim (a single run, not a
    comparison's), so the version page can say so after a reload instead of inviting a second run."""
    return (
        Run.objects.filter(version=version, user=user, status=Run.Status.PENDING, comparison=None, is_draft=False)
        .order_by("-created_at")
        .only("pk", "created_at")
        .first()
    )
