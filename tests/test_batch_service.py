"""Batch comparisons as a service: cells become runs, checks are applied, the estimate, the
soft budget, pause / resume / cancel, and a 429 that slows the batch down instead of failing it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
import respx
from django.utils import timezone

from prompts_app.models import (
    BatchCell,
    BatchComparison,
    BatchSettings,
    BatchWorker,
    Prompt,
    Run,
    RunRollup,
    TestCase,
    TestSet,
)
from prompts_app.selectors import batches as batch_reads
from prompts_app.services import batch_liveness, batch_settle, batch_worker, batches, rollups, testsets
from prompts_app.services.batches import ColumnChoice
from tests.conftest import BASE_URL, make_version
from tests.conftest import drive_batch as drive
from tests.maxim_spec import validate_request


@pytest.fixture(autouse=True)
def inline(batch_inline):
    pass


@pytest.fixture
def test_set(batch_test_set):
    return batch_test_set


CHECKS = [{"type": "contains", "value": "Ada"}, {"type": "length", "max": 40}]


def start(workspace, test_set, versions, user, **extra):
    return batches.start_batch(
        workspace=workspace, test_set=test_set, columns=[ColumnChoice(v) for v in versions], user=user, **extra
    )


def test_each_cell_is_one_run_sent_once_with_its_checks(echo_maxim, workspace, test_set, two_versions, editor):
    batch = start(workspace, test_set, two_versions, editor, repeats=2, checks=CHECKS)
    assert batch.total_cells == 12 and batch.cells.count() == 12
    drive(batch)

    batch.refresh_from_db()
    assert batch.status == BatchComparison.Status.DONE
    assert len(echo_maxim.sent) == 12
    assert Run.objects.filter(batch_cell__batch=batch, status=Run.Status.SUCCESS).count() == 12
    ada = batch.cells.get(case__position=1, column__position=1, repeat=1)
    assert ada.run.user == editor and ada.run.cost_nano is not None  # priced like any run
    assert ada.check_results == [
        {"name": "Contains", "passed": True, "reason": "contains 'Ada'"},
        {"name": "Length", "passed": True, "reason": "29 characters"},
    ]
    assert ada.passed is True
    grace = batch.cells.get(case__position=2, column__position=2, repeat=1)
    assert grace.passed is False and grace.check_results[0]["reason"] == "does not contain 'Ada'"
    assert {body["messages"][-1]["content"] for body in echo_maxim.sent} == {
        "Hello, I am Ada.",
        "Hello, I am Grace.",
        "Hello, I am Linus.",
    }


ALL_CHECKS = [
    {"type": "contains", "value": "Echo"},
    {"type": "not_contains", "value": "sorry"},
    {"type": "equals_expected"},
    {"type": "regex", "pattern": r"I am \w+"},
    {"type": "valid_json"},
    {"type": "json_schema", "schema": {"type": "object"}},
    {"type": "tool_call", "tool": "lookup"},
    {"type": "length", "min": 1, "max": 100},
    {"type": "cost", "max_usd": "1"},
    {"type": "latency", "max_ms": 60000},
    {"type": "tokens", "max": 1000},
]


def test_every_check_type_is_applied_to_each_cell_with_its_reason(echo_maxim, workspace, test_set, prompt, editor):
    batch = start(workspace, test_set, [make_version(prompt, 1)], editor, checks=ALL_CHECKS)
    drive(batch)
    cell = batch.cells.select_related("run").get(case__position=1)
    outcome = {r["name"]: r["passed"] for r in cell.check_results}
    assert outcome == {
        "Contains": True,
        "Does not contain": True,
        "Equals the expected output": True,
        "Matches a regular expression": True,
        "Is valid JSON": False,
        "JSON matching a schema": False,
        "Calls a tool": False,
        "Length": True,
        "Cost at most": True,
        "Latency at most": True,
        "Tokens at most": True,
    }
    reasons = {r["name"]: r["reason"] for r in cell.check_results}
    assert reasons["Calls a tool"] == "no tool calls in the output; expected a call to lookup"
    assert cell.passed is False


def test_a_bad_check_starts_nothing(workspace, test_set, two_versions, editor):
    with pytest.raises(batches.checks_module.CheckConfigError):
        start(workspace, test_set, two_versions, editor, checks=[{"type": "regex", "pattern": "(?:a?){25}a{25}"}])
    assert not BatchComparison.objects.exists()


def test_the_estimate_counts_calls_and_prices_the_input(workspace, test_set, two_versions):
    guess = batches.estimate(columns=[ColumnChoice(v) for v in two_versions], test_set=test_set, repeats=3)
    assert guess.calls == 3 * 2 * 3
    assert guess.input_tokens > 0 and guess.cost_nano and guess.cost_nano > 0
    unpriced = make_version(two_versions[0].prompt, 3, model="no-such-model-xyz")
    assert batches.estimate(columns=[ColumnChoice(unpriced)], test_set=test_set).cost_nano is None


def test_above_the_soft_budget_it_asks_to_confirm_and_starts_when_confirmed(workspace, test_set, two_versions, editor):
    batches.set_soft_budget(workspace=workspace, budget_nano=1)
    with pytest.raises(batches.OverBudget) as caught:
        start(workspace, test_set, two_versions, editor)
    assert caught.value.estimate.calls == 6
    assert not BatchComparison.objects.exists()
    batch = start(workspace, test_set, two_versions, editor, confirmation=caught.value.token)
    assert batch.cells.count() == 6


def test_pause_sends_nothing_more_and_resume_finishes(
    echo_maxim, workspace, test_set, two_versions, editor, django_capture_on_commit_callbacks
):
    batch = start(workspace, test_set, two_versions, editor)
    batches.pause(batch)
    drive(batch)
    assert echo_maxim.sent == []
    with django_capture_on_commit_callbacks(execute=True):
        batches.resume(batch)  # hands the batch to the (immediate) task backend
    batch.refresh_from_db()
    assert batch.status == BatchComparison.Status.DONE and len(echo_maxim.sent) == 6


def test_cancel_keeps_what_finished_and_never_sends_the_rest(echo_maxim, workspace, test_set, two_versions, editor):
    batch = start(workspace, test_set, two_versions, editor, concurrency=2)
    cell_ids = batch_worker.claim(batch.pk, 2)
    for cell_id in cell_ids:
        batch_worker.send_cell(cell_id)
    batches.cancel(batch)
    drive(batch)
    assert len(echo_maxim.sent) == 2
    assert batch.cells.filter(state=BatchCell.State.SUCCESS).count() == 2
    assert batch.cells.filter(state=BatchCell.State.QUEUED, run=None).count() == 4
    with pytest.raises(batches.BatchError):
        batches.resume(batch)


def answered_ok(prompt_tokens: object = 5) -> httpx.Response:
    """Maxim's answer "ok" to a run, with its usage."""
    output = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}]}
    usage = {"promptTokens": prompt_tokens, "completionTokens": 1, "totalTokens": 6}
    return httpx.Response(200, json={"data": {"output": output, "usage": usage}})


def failing_first(times: int, failure: Callable[[httpx.Request], httpx.Response]):
    """A Maxim whose first `times` requests meet `failure` (which raises for one that never left),
    then each answers "ok"; and the list of the bodies that reached it."""
    left, sent = [times], []

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        validate_request("POST", "/v1/prompts/run", body)
        response = None
        if left[0]:
            left[0] -= 1
            response = failure(request)
        sent.append(body)
        return response or answered_ok()

    return answer, sent


def test_a_429_slows_the_workspace_down_and_the_cell_is_sent_again_later(workspace, test_set, prompt, editor):
    answer, sent = failing_first(  # the first two requests are refused, unprocessed
        2, lambda request: httpx.Response(429, headers={"Retry-After": "1"}, json={"message": "slow down"})
    )
    batch = start(workspace, test_set, [make_version(prompt, 1)], editor, concurrency=4)
    with respx.mock(base_url=BASE_URL) as router:
        router.post("/v1/prompts/run").mock(side_effect=answer)
        first = batch_worker.claim(batch.pk, 1)
        batch_worker.send_cell(first[0])
        throttle = BatchSettings.objects.get(workspace=workspace)
        batch.refresh_from_db()
        assert throttle.throttled_until is not None  # shared by every worker through the database
        assert batch.current_limit == 2
        assert batch_worker.claim(batch.pk, 4) == []  # nothing is sent before Retry-After
        refused = BatchCell.objects.get(pk=first[0])
        assert refused.state == BatchCell.State.QUEUED and refused.run is None and refused.attempts == 1
        drive(batch)
    batch.refresh_from_db()
    assert batch.status == BatchComparison.Status.DONE
    assert batch.cells.filter(state=BatchCell.State.SUCCESS).count() == 3
    assert len(sent) == 3 + 2  # every cell once, plus the two refusals
    # A refusal stays in history as a failed call with its reason, cost nothing, linked to its
    # cell, whose run is the newest attempt.
    refusals = Run.objects.filter(error_status=429)
    assert refusals.count() == 2
    for run in refusals:
        assert run.status == Run.Status.FAILED and run.cost_nano is None
        assert "refused this run with 429" in run.error and "sent the cell again" in run.error
        assert run.retried_cell.run.status == Run.Status.SUCCESS
    assert Run.objects.count() == 5
    assert rollups.drift() == []  # history totals count the refusals as failed runs
    assert sum(RunRollup.objects.filter(grain=RunRollup.Grain.DAY).values_list("runs", flat=True)) == 5


def drive_for(batch, seconds: float) -> None:
    """drive() slice after slice, for at most `seconds`: a batch that never ends fails the test."""
    deadline = time.monotonic() + seconds
    while batch_worker.drive(batch.pk, slice_seconds=2) and time.monotonic() < deadline:
        pass


def refuse_gpt_4o(sent: list[dict]):
    """A Maxim that answers 429 (Retry-After: 0) to every gpt-4o run and "ok" to the others."""

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        validate_request("POST", "/v1/prompts/run", body)
        sent.append(body)
        if body["modelName"] == "gpt-4o":
            return httpx.Response(429, headers={"Retry-After": "0"}, json={"message": "slow down"})
        return answered_ok()

    return answer


def test_a_column_maxim_keeps_refusing_fails_with_the_reason_and_the_batch_finishes(
    workspace, test_set, two_versions, editor
):
    sent: list[dict] = []
    batch = start(workspace, test_set, two_versions, editor, concurrency=4)  # column 1 is gpt-4o
    with respx.mock(base_url=BASE_URL) as router:
        router.post("/v1/prompts/run").mock(side_effect=refuse_gpt_4o(sent))
        drive_for(batch, 30)
    batch.refresh_from_db()
    assert batch.status == BatchComparison.Status.DONE
    refused = Counter(body["messages"][-1]["content"] for body in sent if body["modelName"] == "gpt-4o")
    cap = batch_worker.MAX_REFUSALS
    assert max(refused.values()) == cap  # one cell hit the cap, no cell went past it
    assert sum(refused.values()) < 2 * cap  # then the column was given up, not retried cell by cell
    column = list(batch.cells.filter(column__position=1).select_related("run"))
    assert {cell.state for cell in column} == {BatchCell.State.FAILED}
    capped = [cell for cell in column if cell.error == batch_worker.refused_error(cap)]
    assert len(capped) == 1 and capped[0].run.error == batch_worker.refused_error(cap)
    assert capped[0].error.startswith(f"Maxim answered 429 (rate limit) {cap} times;")
    assert capped[0].retried_runs.count() == cap - 1  # each refusal stays in history, linked to its cell
    assert {cell.error for cell in column if cell not in capped} == {batch_worker.COLUMN_REFUSED_ERROR}
    # The other column went on as usual, each cell sent once.
    assert batch.cells.filter(column__position=2, state=BatchCell.State.SUCCESS).count() == 3
    assert len([body for body in sent if body["modelName"] == "gpt-4o-mini"]) == 3
    assert not Run.objects.filter(status=Run.Status.PENDING).exists()
    assert set(Run.objects.filter(error_status=429).values_list("status", "cost_nano")) == {(Run.Status.FAILED, None)}
    for run in Run.objects.filter(error_status=429):  # only a refusal that was sent again says so
        assert ("sent the cell again" in run.error) == (run.retried_cell_id is not None), run.error
    assert rollups.drift() == []


def test_a_retry_after_is_shared_and_capped(workspace, test_set, prompt, editor):
    batch = start(workspace, test_set, [make_version(prompt, 1)], editor)
    with respx.mock(base_url=BASE_URL) as router:
        router.post("/v1/prompts/run").mock(return_value=httpx.Response(429, headers={"Retry-After": "86400"}))
        [cell_id] = batch_worker.claim(batch.pk, 1)
        batch_worker.send_cell(cell_id)
    until = BatchSettings.objects.get(workspace=workspace).throttled_until
    waited = (until - timezone.now()).total_seconds()
    assert batch_worker.MAX_RETRY_AFTER - 30 < waited <= batch_worker.MAX_RETRY_AFTER  # not a day
    assert BatchCell.objects.get(pk=cell_id).not_before == until
    assert batch_worker.claim(batch.pk, 4) == []  # every worker waits: it is in the database


def test_make_run_s_start_settles_cells_of_no_known_worker_but_not_those_of_a_live_one(
    echo_maxim, workspace, test_set, two_versions, editor
):
    """Hostile trial: restarting `make run` (resume_batches --all) while `make worker` processes sent
    the batch settled their cells "interrupted" while they were with Maxim."""
    batch = start(workspace, test_set, two_versions, editor)
    alive = batch_liveness.Heartbeat(batch.pk).row  # this process: a live drive
    live, unknown = batch_worker.claim(batch.pk, 2)
    BatchCell.objects.filter(pk=live).update(worker=alive)
    Run.objects.filter(batch_cell__in=[live, unknown]).update(started_at=timezone.now())

    assert batch_worker.settle(batch.pk, all_pending=True) == 1
    assert BatchCell.objects.get(pk=live).state == BatchCell.State.RUNNING  # still with Maxim: its own
    assert Run.objects.get(batch_cell=unknown).status == Run.Status.INTERRUPTED
    assert echo_maxim.sent == []


def test_a_dead_worker_s_cells_are_settled_when_its_batch_is_cancelled_or_at_the_next_worker_start(
    echo_maxim, workspace, test_set, two_versions, editor
):
    """Hostile re-check: a killed worker's cells read "Running" for good on the cancelled batch's page:
    no drive looks at a cancelled batch again."""
    batch = start(workspace, test_set, two_versions, editor)
    dead = BatchWorker.objects.create(name="killed", beat_at=timezone.now() - timedelta(minutes=5), batch=batch)
    first, second = batch_worker.claim(batch.pk, 2)
    BatchCell.objects.filter(pk__in=[first, second]).update(worker=dead)
    Run.objects.filter(batch_cell__in=[first, second]).update(started_at=timezone.now())
    batches.cancel(batch)
    assert BatchCell.objects.get(pk=first).state == BatchCell.State.FAILED
    assert not BatchCell.objects.filter(batch=batch, state=BatchCell.State.RUNNING).exists()

    paused = start(workspace, test_set, two_versions, editor, again=True)
    [third] = batch_worker.claim(paused.pk, 1)
    batches.pause(paused)
    BatchCell.objects.filter(pk=third).update(worker=dead)  # killed after the pause
    Run.objects.filter(batch_cell=third).update(started_at=timezone.now())
    batch_worker.resume_all()  # a worker starts
    assert BatchCell.objects.get(pk=third).state == BatchCell.State.FAILED
    assert echo_maxim.sent == []


def test_deleting_cases_while_their_batch_runs_fails_their_cells_with_the_reason(
    echo_maxim, workspace, test_set, two_versions, editor
):
    batch = start(workspace, test_set, two_versions, editor, checks=CHECKS)
    claimed = batch_worker.claim(batch.pk, 2)  # Ada's two cells: their runs are pending
    Run.objects.filter(batch_cell=claimed[0]).update(started_at=timezone.now())  # one was being sent
    ada, grace, _ = TestCase.objects.filter(test_set=test_set).order_by("position")
    testsets.delete_case(ada)
    testsets.delete_case(grace)  # Grace's cells are still queued
    batch_worker.settle(batch.pk, all_pending=True)  # its worker died meanwhile: make run's start
    drive(batch)

    batch.refresh_from_db()
    assert batch.status == BatchComparison.Status.DONE
    assert batch.cells.count() == batch.total_cells == 6  # the cells stay: the counts add up
    deleted = batch.cells.filter(case=None)
    assert deleted.count() == 4 and set(deleted.values_list("state", flat=True)) == {BatchCell.State.FAILED}
    assert deleted.get(pk=claimed[0]).error == batch_worker.DELETED_WHILE_SENT_ERROR
    assert set(deleted.exclude(pk=claimed[0]).values_list("error", flat=True)) == {batch_worker.DELETED_CASE_ERROR}
    assert {body["messages"][-1]["content"] for body in echo_maxim.sent} == {"Hello, I am Linus."}
    assert len(echo_maxim.sent) == 2  # nothing of the deleted cases was sent
    # The run that was being sent may have reached Maxim: interrupted, never sent again.
    assert Run.objects.get(batch_cell=claimed[0]).status == Run.Status.INTERRUPTED
    assert not Run.objects.filter(status=Run.Status.PENDING).exists()
    columns = list(batch.columns.all())
    progress, summary = batch_reads.progress_and_summary(batch, columns)
    assert progress.total == progress.finished == 6
    assert [(s.runs, s.failures) for s in summary] == [(3, 2), (3, 2)]
    exported = list(batch_reads.export_rows(batch))
    assert len(exported) == 6 and sum(1 for row in exported if row["case"] == "") == 4


def test_cells_of_a_worker_whose_heartbeat_stopped_are_settled_at_once(
    echo_maxim, workspace, test_set, two_versions, editor
):
    batch = start(workspace, test_set, two_versions, editor)
    dead = BatchWorker.objects.create(name="killed", beat_at=timezone.now() - timedelta(seconds=60))
    alive = BatchWorker.objects.create(name="sending")
    sent_dead, queued_dead, sent_alive, queued_alive = batch_worker.claim(batch.pk, 4)
    BatchCell.objects.filter(pk__in=[sent_dead, queued_dead]).update(worker=dead)
    BatchCell.objects.filter(pk__in=[sent_alive, queued_alive]).update(worker=alive)
    Run.objects.filter(batch_cell__in=[sent_dead, sent_alive]).update(started_at=timezone.now())

    assert batch_worker.settle(batch.pk) == 2  # seconds after the claim: no time rule would say so

    cells = {cell.pk: cell for cell in BatchCell.objects.select_related("run")}
    assert cells[sent_dead].state == BatchCell.State.FAILED  # may have reached Maxim: never re-sent
    assert cells[sent_dead].run.status == Run.Status.INTERRUPTED
    assert cells[queued_dead].state == BatchCell.State.QUEUED and cells[queued_dead].run is None  # not sent
    assert cells[sent_alive].state == cells[queued_alive].state == BatchCell.State.RUNNING  # left alone
    assert echo_maxim.sent == []


def test_cells_of_a_worker_of_this_machine_whose_process_is_gone_are_settled_before_its_heartbeat_is_stale(
    echo_maxim, workspace, test_set, two_versions, editor
):
    """make run's supervisor restarts a killed worker within seconds; its resume must not wait out
    the heartbeat's STALE_SECONDS when the dead worker's process, on this machine, is plainly gone."""
    batch = start(workspace, test_set, two_versions, editor)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    machine = batch_liveness.Heartbeat().row.name.rsplit(":", 2)[0]  # this host and pid namespace
    killed = BatchWorker.objects.create(name=f"{machine}:{gone.pid}:deadbeef")  # beat just now
    living = BatchWorker.objects.create(name=f"{machine}:{os.getpid()}:cafe0123")
    elsewhere = BatchWorker.objects.create(name=f"other-host|1:{gone.pid}:0badf00d")
    cells = batch_worker.claim(batch.pk, 3)
    for cell, worker in zip(cells, (killed, living, elsewhere), strict=True):
        BatchCell.objects.filter(pk=cell).update(worker=worker)
    Run.objects.filter(batch_cell__in=cells).update(started_at=timezone.now())

    assert batch_worker.settle(batch.pk) == 1
    states = dict(BatchCell.objects.filter(pk__in=cells).values_list("pk", "state"))
    assert states[cells[0]] == BatchCell.State.FAILED  # in flight when killed: interrupted, never re-sent
    assert states[cells[1]] == states[cells[2]] == BatchCell.State.RUNNING  # alive, or only its beat tells
    assert echo_maxim.sent == []


def test_a_drive_hands_over_when_another_workspace_s_batch_waits(
    echo_maxim, monkeypatch, workspace, test_set, two_versions, editor, make_workspace, owner
):
    big = start(workspace, test_set, two_versions, editor, concurrency=1)
    other = make_workspace(owner=owner, name="Other", maxim_id="ws-2")
    small_set = TestSet.objects.create(workspace=other, name="Small", variable_names=["company", "name"])
    TestCase.objects.create(test_set=small_set, position=1, variables={"company": "B", "name": "Bea"})
    small_prompt = Prompt.objects.create(workspace=other, maxim_id="p-other", name="Other")
    small = start(other, small_set, [make_version(small_prompt, 1)], owner)

    monkeypatch.setattr(batch_worker, "FAIR_SLICE_SECONDS", 0.0)
    assert batch_worker.drive(big.pk, slice_seconds=30) is True  # handed over long before its slice ended
    assert not big.cells.exclude(state=BatchCell.State.QUEUED).exists()
    monkeypatch.setattr(batch_worker, "FAIR_SLICE_SECONDS", 60.0)
    assert batch_worker.drive(small.pk, slice_seconds=30) is False  # the waiting batch's turn: it finishes
    small.refresh_from_db()
    assert small.status == BatchComparison.Status.DONE
    drive(big)
    big.refresh_from_db()
    assert big.status == BatchComparison.Status.DONE and len(echo_maxim.sent) == 7


def test_a_cell_whose_request_never_left_is_sent_again_not_failed(workspace, test_set, prompt, editor):
    # Hostile trial: with every pooled connection busy, 391 cells failed with "Too many Maxim requests
    # are already in progress" although none was ever sent. Like a 429, such a cell is sent again.
    def no_free_connection(request: httpx.Request) -> httpx.Response:
        raise httpx.PoolTimeout("no connection free", request=request)

    answer, arrived = failing_first(2, no_free_connection)  # the first two calls find no free connection
    batch = start(workspace, test_set, [make_version(prompt, 1)], editor, concurrency=4)
    with respx.mock(base_url=BASE_URL) as router:
        router.post("/v1/prompts/run").mock(side_effect=answer)
        first = batch_worker.claim(batch.pk, 1)
        batch_worker.send_cell(first[0])
        cell = BatchCell.objects.get(pk=first[0])
        assert cell.state == BatchCell.State.QUEUED and cell.run is None and cell.attempts == 1
        BatchSettings.objects.filter(workspace=workspace).update(throttled_until=None)
        drive(batch)
    batch.refresh_from_db()
    assert batch.status == BatchComparison.Status.DONE
    assert batch.cells.filter(state=BatchCell.State.SUCCESS).count() == 3 and len(arrived) == 3
    never_left = Run.objects.filter(status=Run.Status.FAILED)
    assert never_left.count() == 2 and all(
        run.error.startswith("Not sent: Too many Maxim requests") for run in never_left
    )


@pytest.mark.parametrize("tokens", [1e19, "1e400", "nan"])
def test_an_answer_with_an_impossible_token_count_fails_its_cell_with_the_reason_and_the_batch_goes_on(
    workspace, test_set, prompt, editor, tokens
):
    """Hostile trial: 1e19 prompt tokens could not be stored (OverflowError): the worker's task crashed,
    its cells sat "running" for minutes and their answers were lost. Now only that answer fails."""
    sent: list[dict] = []

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        validate_request("POST", "/v1/prompts/run", body)
        sent.append(body)
        return answered_ok(prompt_tokens=tokens if len(sent) == 1 else 5)

    batch = start(workspace, test_set, [make_version(prompt, 1)], editor, concurrency=1)
    with respx.mock(base_url=BASE_URL) as router:
        router.post("/v1/prompts/run").mock(side_effect=answer)
        drive(batch)
    batch.refresh_from_db()
    assert batch.status == BatchComparison.Status.DONE
    cells = list(batch.cells.select_related("run").order_by("run__id"))
    assert len(sent) == len(cells)  # each cell sent once
    first = cells[0]
    assert first.state == BatchCell.State.FAILED and "more than any model can use" in first.run.error
    assert all(cell.state == BatchCell.State.SUCCESS for cell in cells[1:])


def test_a_drive_that_fails_settles_its_cells_at_once_and_the_next_drive_carries_the_batch_on(
    workspace, test_set, prompt, editor, monkeypatch
):
    """Hostile trial: a drive whose store raised left its cells "running" under no known worker for
    three minutes, filling the batch's limit. They are settled at once now (failed, never sent
    again) and the next drive sends the rest; tasks.run_batch hands over after a fault."""
    sent: list[dict] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return answered_ok()

    real_store = batch_worker.store
    faults = [2]  # in the drive, then again in its _finish

    def store_once_broken(finished, checks):
        if finished and faults[0]:
            faults[0] -= 1
            raise RuntimeError("a fault of ours")
        return real_store(finished, checks)

    monkeypatch.setattr(batch_worker, "store", store_once_broken)
    batch = start(workspace, test_set, [make_version(prompt, 1)], editor, concurrency=2)
    with respx.mock(base_url=BASE_URL) as router:
        router.post("/v1/prompts/run").mock(side_effect=answer)
        with pytest.raises(RuntimeError):
            batch_worker.drive(batch.pk, slice_seconds=30)
        assert not batch.cells.filter(state=BatchCell.State.RUNNING).exists()  # settled now, not in 3 minutes
        failed = batch.cells.filter(state=BatchCell.State.FAILED).count()
        assert failed >= 1
        drive(batch)
    batch.refresh_from_db()
    assert batch.status == BatchComparison.Status.DONE
    assert len(sent) == batch.cells.count()  # every cell sent once: the failed ones not again
    assert batch.cells.filter(state=BatchCell.State.SUCCESS).count() == batch.cells.count() - failed


def test_a_column_maxim_cannot_be_reached_for_says_so_not_429(workspace, test_set, two_versions, editor):
    """New-user trial: with Maxim stopped mid-batch, the given-up column read "Maxim answered 429
    (rate limit) to every request" although Maxim answered nothing."""

    def answer(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["modelName"] == "gpt-4o":
            raise httpx.ConnectError("connection refused", request=request)
        return answered_ok()

    batch = start(workspace, test_set, two_versions, editor, concurrency=4)  # column 1 is gpt-4o
    with respx.mock(base_url=BASE_URL) as router:
        router.post("/v1/prompts/run").mock(side_effect=answer)
        drive_for(batch, 30)
    batch.refresh_from_db()
    assert batch.status == BatchComparison.Status.DONE
    errors = set(batch.cells.filter(column__position=1).values_list("error", flat=True))
    assert batch_settle.COLUMN_UNREACHED_ERROR in errors
    assert not any("429" in error for error in errors)
    assert batch.cells.filter(column__position=2, state=BatchCell.State.SUCCESS).count() == 3
