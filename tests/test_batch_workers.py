"""Real workers: `manage.py db_worker` processes on the test database, one killed mid-batch.

Every cell reaches the fake Maxim at most once (counted on the server), and after a restart
(make run's `resume_batches --all`, then a new worker) the batch finishes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from prompts_app.models import BatchCell, BatchComparison, Run, TestCase, TestSet
from prompts_app.services import batches
from prompts_app.services.batches import ColumnChoice
from tests.conftest import seed_fake

ROOT = Path(__file__).resolve().parent.parent
CASES = 24


def start_worker() -> subprocess.Popen:
    env = {**os.environ, "MAXIMUI_TESTING": "1", "DATABASE_URL": f"sqlite:///{connection.settings_dict['NAME']}",
           "MAXIMUI_BATCH_SLICE_SECONDS": "5"}  # fmt: skip
    command = [sys.executable, "manage.py", "db_worker", "--backend", "database", "--no-startup-delay", "--interval", "0.1"]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


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
    TestCase.objects.bulk_create(TestCase(test_set=test_set, position=n, variables={"company": f"Co{n}"}) for n in range(CASES))
    return batches.start_batch(workspace=workspace, test_set=test_set, columns=[ColumnChoice(version)], user=editor, concurrency=4)


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
