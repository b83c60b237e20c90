"""A batch has a bounded number of task chains: pausing and resuming, and every worker's start,
enqueue a task each, and their chains must not all go on driving it (issue #12: 25 chains of one
batch held another batch's task 116 s in the queue)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from prompts_app.models import BatchComparison, TestCase, TestSet
from prompts_app.services import batch_worker, batches
from prompts_app.services.batches import ColumnChoice
from tests.conftest import seed_fake


def queued_batch(fake, workspace, user, cases: int) -> BatchComparison:
    [version] = seed_fake(fake, workspace, ["gpt-4o"])
    test_set = TestSet.objects.create(workspace=workspace, name="Cases", variable_names=["company"])
    for n in range(cases):
        TestCase.objects.create(test_set=test_set, position=n, variables={"company": f"Co{n}"})
    return batches.start_batch(
        workspace=workspace, test_set=test_set, columns=[ColumnChoice(version)], user=user, concurrency=2
    )


def tasks_in_queue() -> list[DBTaskResult]:
    return list(DBTaskResult.objects.filter(status=TaskResultStatus.READY).order_by("enqueued_at"))


def run_as_the_worker(task: DBTaskResult, batch: BatchComparison) -> bool:
    """What db_worker does with a task: take it out of the queue, then drive the batch."""
    task.status = TaskResultStatus.RUNNING
    task.save(update_fields=["status"])
    return batch_worker.drive(batch.pk, slice_seconds=60)


def test_chains_beyond_one_waiting_in_the_queue_end_at_once(transactional_db, settings, fake_maxim, workspace, editor):
    settings.MAXIMUI_BATCH_TASK_BACKEND = "database"
    settings.MAXIMUI_BATCH_CHAINS = 1
    batch = queued_batch(fake_maxim, workspace, editor, cases=2)  # its first task
    for _ in range(3):
        batches.enqueue(batch)  # resumed, and two workers started: a task each
    assert len(tasks_in_queue()) == 4
    # No free worker took them: they have waited longer than a worker takes to pick a task up.
    DBTaskResult.objects.update(enqueued_at=timezone.now() - timedelta(seconds=30))

    for task in tasks_in_queue()[:3]:
        assert run_as_the_worker(task, batch) is False  # ends at once: a later task carries the batch on
        assert fake_maxim.requests_to("/v1/prompts/run") == []
    [last] = tasks_in_queue()
    assert run_as_the_worker(last, batch) is False  # the last one drives the batch to its end
    assert BatchComparison.objects.get(pk=batch.pk).status == BatchComparison.Status.DONE
    assert len(fake_maxim.requests_to("/v1/prompts/run")) == 2


def test_a_task_a_free_worker_takes_at_once_is_a_second_worker_not_a_surplus_chain(
    transactional_db, settings, fake_maxim, workspace, editor
):
    settings.MAXIMUI_BATCH_TASK_BACKEND = "database"
    settings.MAXIMUI_BATCH_CHAINS = 1
    batch = queued_batch(fake_maxim, workspace, editor, cases=2)
    batches.enqueue(batch)  # for a second worker (bench_batch on PostgreSQL): just queued, not stale
    first, _second = tasks_in_queue()

    assert run_as_the_worker(first, batch) is False
    assert BatchComparison.objects.get(pk=batch.pk).status == BatchComparison.Status.DONE
    assert len(fake_maxim.requests_to("/v1/prompts/run")) == 2


def test_a_batch_starts_and_resumes_with_the_chains_its_workers_need(
    transactional_db, settings, fake_maxim, workspace, editor
):
    """Hostile re-check: with one chain, a second worker beside make run's never joined a batch started
    from the page. A team running two workers for a batch sets MAXIMUI_BATCH_CHAINS=2."""
    settings.MAXIMUI_BATCH_TASK_BACKEND = "database"
    batch = queued_batch(fake_maxim, workspace, editor, cases=2)
    assert [t.args_kwargs["args"] for t in tasks_in_queue()] == [[batch.pk]]  # one by default
    settings.MAXIMUI_BATCH_CHAINS = 2
    batches.pause(batch)
    DBTaskResult.objects.all().delete()
    batches.resume(BatchComparison.objects.get(pk=batch.pk))
    assert [t.args_kwargs["args"] for t in tasks_in_queue()] == [[batch.pk]] * 2
    second = queued_batch(fake_maxim, workspace, editor, cases=1)
    assert [t.args_kwargs["args"] for t in tasks_in_queue()][2:] == [[second.pk]] * 2


def test_a_task_that_failed_hands_its_batch_over_to_a_fresh_task_a_little_later(
    transactional_db, settings, fake_maxim, workspace, editor, monkeypatch
):
    """Hostile trial: a drive that raised ended its batch's only chain, and the batch waited for a
    worker's restart. The failed task is recorded as failed, and a fresh one carries the batch on."""
    import pytest

    from prompts_app import tasks

    settings.MAXIMUI_BATCH_TASK_BACKEND = "database"
    settings.MAXIMUI_BATCH_CHAINS = 1
    batch = queued_batch(fake_maxim, workspace, editor, cases=2)
    [task] = tasks_in_queue()

    def broken(batch_id, *, slice_seconds):
        raise RuntimeError("a fault of ours")

    monkeypatch.setattr(batch_worker, "drive", broken)
    context = type("Context", (), {"task_result": type("Result", (), {"backend": "database"})()})()
    with pytest.raises(RuntimeError):
        tasks.run_batch.func(context, batch.pk)
    later = [t for t in tasks_in_queue() if t.pk != task.pk]
    assert len(later) == 1 and later[0].run_after >= timezone.now() + timedelta(seconds=3)
    BatchComparison.objects.filter(pk=batch.pk).update(status=BatchComparison.Status.CANCELLED)
    with pytest.raises(RuntimeError):
        tasks.run_batch.func(context, batch.pk)
    assert len(tasks_in_queue()) == 2  # a batch no longer running is not carried on
