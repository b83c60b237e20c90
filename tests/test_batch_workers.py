"""Real workers: `manage.py db_worker` processes on the test database, one killed mid-batch.

Every cell reaches the fake Maxim at most once (counted on the server), and after a restart
(make run's `resume_batches --all`, then a new worker) the batch finishes."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from django.core.management import call_command

from prompts_app.models import BatchCell, BatchComparison, Run, TestCase, TestSet
from prompts_app.services import batches
from prompts_app.services.batches import ColumnChoice
from tests.conftest import seed_fake, start_worker

ROOT = Path(__file__).resolve().parent.parent
CASES = 24


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.fixture
def batch_on_workers(transactional_db, settings, fake_maxim, workspace, editor):
    settings.MAXIMUI_BATCH_TASK_BACKEND = "database"
    fake_maxim.run_delay = 0.4
    return start_on(fake_maxim, workspace, editor, cases=CASES, concurrency=4)


def sent_per_case(fake_maxim) -> Counter:
    return Counter(r.body["messages"][0]["content"] for r in fake_maxim.requests_to("/v1/prompts/run"))


def sent_before_the_kill(fake_maxim) -> Counter:
    """The cases sent so far, and a fresh log. A request the kill tore (headers out, body cut short)
    is left out with the spec violation it caused: Maxim refuses such a request unread."""
    requests = fake_maxim.requests_to("/v1/prompts/run")
    whole = [r for r in requests if isinstance(r.body, dict)]
    torn = len(requests) - len(whole)
    assert len(fake_maxim.violations) <= 2 * torn, fake_maxim.violations  # nothing else broke the spec
    fake_maxim.reset_log()
    return Counter(r.body["messages"][0]["content"] for r in whole)


def test_a_worker_killed_mid_batch_sends_nothing_twice_and_a_restart_finishes(batch_on_workers, fake_maxim):
    batch = batch_on_workers
    worker = start_worker()
    try:
        wait_for(lambda: batch.cells.filter(state=BatchCell.State.SUCCESS).count() >= 6)
        worker.send_signal(signal.SIGKILL)  # no goodbye: cells are claimed and in flight
        worker.wait()
        assert batch.cells.filter(state=BatchCell.State.RUNNING).exists()
        before = sent_before_the_kill(fake_maxim)

        call_command("mark_interrupted_runs", "--all")  # make run, before the workers start again
        call_command("resume_batches", "--all")
        worker = start_worker()
        wait_for(lambda: BatchComparison.objects.get(pk=batch.pk).status == BatchComparison.Status.DONE)
    finally:
        worker.kill()
        worker.wait()

    counts = before + sent_per_case(fake_maxim)
    assert max(counts.values()) == 1, counts  # no cell reached Maxim twice
    assert sum(counts.values()) > sum(before.values())  # the restarted worker went on
    states = Counter(batch.cells.values_list("state", flat=True))
    interrupted = Run.objects.filter(batch_cell__batch=batch, status=Run.Status.INTERRUPTED).count()
    assert states[BatchCell.State.SUCCESS] + interrupted == CASES
    assert states[BatchCell.State.FAILED] == interrupted  # in flight at the kill: settled, never re-sent
    # An interrupted cell was marked started, so it may or may not have reached Maxim (killed
    # between the mark and the request): at most once either way, never re-sent.
    assert states[BatchCell.State.SUCCESS] <= sum(counts.values()) <= CASES


def test_a_worker_restarted_by_hand_finishes_the_batch_soon_and_sends_nothing_twice(batch_on_workers, fake_maxim):
    """No `make run` (so no resume_batches --all): the new worker's own resume hands it the batch,
    and the cells the dead worker held are reclaimed once its heartbeat is stale, not after the
    180 s any call to Maxim may last (they held the batch's every slot until then)."""
    batch = batch_on_workers
    worker = start_worker()
    try:
        wait_for(lambda: batch.cells.filter(state=BatchCell.State.SUCCESS).count() >= 6)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        assert batch.cells.filter(state=BatchCell.State.RUNNING).exists()
        before = sent_before_the_kill(fake_maxim)
        worker = start_worker()
        # The heartbeat's 30 s and the rest of the batch, on a busy machine (it was 180 s and more).
        wait_for(lambda: BatchComparison.objects.get(pk=batch.pk).status == BatchComparison.Status.DONE, timeout=90)
    finally:
        worker.kill()
        worker.wait()
    counts = before + sent_per_case(fake_maxim)
    assert len(counts) <= CASES and max(counts.values()) == 1  # nothing sent twice
    interrupted = Run.objects.filter(batch_cell__batch=batch, status=Run.Status.INTERRUPTED).count()
    assert batch.cells.filter(state=BatchCell.State.FAILED).count() == interrupted  # in flight at the kill
    assert batch.cells.filter(state=BatchCell.State.SUCCESS).count() + interrupted == CASES


def test_two_workers_share_one_batch_and_no_cell_is_sent_twice(batch_on_workers, fake_maxim):
    batch = batch_on_workers
    batches.enqueue(batch)  # a second driver task: both workers work on the batch
    workers = [start_worker(), start_worker()]
    try:
        wait_for(lambda: BatchComparison.objects.get(pk=batch.pk).status == BatchComparison.Status.DONE)
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    counts = sent_per_case(fake_maxim)
    assert len(counts) == CASES and max(counts.values()) == 1
    assert batch.cells.filter(state=BatchCell.State.SUCCESS).count() == CASES


def test_one_worker_takes_turns_so_a_small_batch_is_not_starved_by_a_large_one(
    transactional_db, settings, fake_maxim, workspace, make_workspace, owner, editor
):
    """One worker, slices far longer than the whole test: before it took turns, the small batch
    in another workspace waited behind every cell of the large one."""
    settings.MAXIMUI_BATCH_TASK_BACKEND = "database"
    fake_maxim.run_delay = 0.2
    large = start_on(fake_maxim, workspace, editor, cases=100, concurrency=2)  # 10 s of calls at best
    worker = start_worker(slice_seconds=300)
    try:
        wait_for(lambda: large.cells.filter(state=BatchCell.State.SUCCESS).exists())
        other = make_workspace(owner=owner, name="Other", maxim_id="ws-2")
        small = start_on(fake_maxim, other, owner, cases=2, concurrency=2)
        wait_for(lambda: BatchComparison.objects.get(pk=small.pk).status == BatchComparison.Status.DONE)
        left = large.cells.filter(state__in=[BatchCell.State.QUEUED, BatchCell.State.RUNNING]).count()
        wait_for(lambda: BatchComparison.objects.get(pk=large.pk).status == BatchComparison.Status.DONE)
    finally:
        worker.kill()
        worker.wait()
    assert left >= 30, left  # the small batch finished while most of the large one was still to run
    assert max(sent_per_case(fake_maxim).values()) == 1


def start_on(fake_maxim, workspace, user, *, cases: int, concurrency: int) -> BatchComparison:
    [version] = seed_fake(fake_maxim, workspace, ["gpt-4o"])
    test_set = TestSet.objects.create(workspace=workspace, name="Companies", variable_names=["company"])
    TestCase.objects.bulk_create(
        TestCase(test_set=test_set, position=n, variables={"company": f"{workspace.maxim_id}-{n}"})
        for n in range(cases)
    )
    return batches.start_batch(
        workspace=workspace, test_set=test_set, columns=[ColumnChoice(version)], user=user, concurrency=concurrency
    )
