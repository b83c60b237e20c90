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

from django_tasks_db.models import DBTaskResult

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
    [version] = seed_fake(fake_maxim, workspace, ["gpt-4o"])
    test_set = TestSet.objects.create(workspace=workspace, name="Companies", variable_names=["company"])
    TestCase.objects.bulk_create(
        TestCase(test_set=test_set, position=n, variables={"company": f"Co{n}"}) for n in range(CASES)
    )
    return batches.start_batch(
        workspace=workspace, test_set=test_set, columns=[ColumnChoice(version)], user=editor, concurrency=4
    )


def sent_per_case(fake_maxim) -> Counter:
    return Counter(r.body["messages"][0]["content"] for r in fake_maxim.requests_to("/v1/prompts/run"))


def test_a_worker_killed_mid_batch_sends_nothing_twice_and_a_restart_finishes(batch_on_workers, fake_maxim):
    batch = batch_on_workers
    worker = start_worker()
    try:
        wait_for(lambda: batch.cells.filter(state=BatchCell.State.SUCCESS).count() >= 6)
        worker.send_signal(signal.SIGKILL)  # no goodbye: cells are claimed and in flight
        worker.wait()
        assert batch.cells.filter(state=BatchCell.State.RUNNING).exists()
        sent_before = sum(sent_per_case(fake_maxim).values())

        call_command("mark_interrupted_runs", "--all")  # make run, before the workers start again
        call_command("resume_batches", "--all")
        worker = start_worker()
        wait_for(lambda: BatchComparison.objects.get(pk=batch.pk).status == BatchComparison.Status.DONE)
    finally:
        worker.kill()
        worker.wait()

    counts = sent_per_case(fake_maxim)
    assert max(counts.values()) == 1, counts  # no cell reached Maxim twice
    assert sum(counts.values()) > sent_before  # the restarted worker went on
    states = Counter(batch.cells.values_list("state", flat=True))
    interrupted = Run.objects.filter(batch_cell__batch=batch, status=Run.Status.INTERRUPTED).count()
    assert states[BatchCell.State.SUCCESS] + interrupted == CASES
    assert states[BatchCell.State.FAILED] == interrupted  # in flight at the kill: settled, never re-sent
    # An interrupted cell was marked started, so it may or may not have reached Maxim (killed
    # between the mark and the request): at most once either way, never re-sent.
    assert states[BatchCell.State.SUCCESS] <= sum(counts.values()) <= CASES


def test_a_worker_restarted_by_hand_picks_the_batch_up_again(batch_on_workers, fake_maxim):
    """No `make run` (so no resume_batches): the task the dead worker held stays marked running in
    the task table, and only our db_worker's own resume hands the batch to the new worker."""
    batch = batch_on_workers
    worker = start_worker()
    try:
        wait_for(lambda: batch.cells.filter(state=BatchCell.State.SUCCESS).count() >= 6)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        tasks_before = DBTaskResult.objects.count()
        worker = start_worker()
        # A new driver task for the batch, enqueued by the new worker. (Cells the dead worker had
        # in flight still count against the batch's limit until they are stale: see settle().)
        wait_for(lambda: DBTaskResult.objects.count() > tasks_before, timeout=30)
    finally:
        worker.kill()
        worker.wait()
    assert max(sent_per_case(fake_maxim).values()) == 1  # nothing sent twice


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
