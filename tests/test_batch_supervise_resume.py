"""`make run`'s `resume_batches --all`: one failing batch never stops start-up, and it is bounded in time."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import OperationalError

from prompts_app.models import BatchComparison
from prompts_app.services import batch_worker, batches
from prompts_app.services.batches import ColumnChoice


@pytest.fixture
def running(monkeypatch, workspace, batch_test_set, two_versions, editor) -> tuple[list[int], list[int]]:
    enqueued: list[int] = []
    monkeypatch.setattr(batches, "enqueue", lambda batch: enqueued.append(batch.pk))
    ids = [
        batches.start_batch(
            workspace=workspace, test_set=batch_test_set, columns=[ColumnChoice(two_versions[0])], user=editor
        ).pk
        for _ in range(3)
    ]
    assert BatchComparison.objects.filter(pk__in=ids, status=BatchComparison.Status.RUNNING).count() == 3
    enqueued.clear()
    return ids, enqueued


def test_a_batch_that_fails_to_resume_is_logged_and_the_others_go_on(running, monkeypatch, capsys):
    ids, enqueued = running
    real_settle = batch_worker.settle

    def settle(batch_id, **kwargs):
        if batch_id == ids[0]:
            raise OperationalError("database is locked")
        return real_settle(batch_id, **kwargs)

    monkeypatch.setattr(batch_worker, "settle", settle)
    call_command("resume_batches", "--all")  # returns: make run goes on to start the servers
    assert enqueued == ids[1:]
    out = capsys.readouterr()
    assert f"Could not resume batch comparison(s) {ids[0]}" in out.err and "Resumed 2" in out.out


def test_resuming_stops_taking_batches_when_out_of_time(running, monkeypatch, capsys):
    ids, enqueued = running
    call_command("resume_batches", "--all", "--seconds", "-1")
    assert enqueued == [] and f"left for the next start: {', '.join(map(str, ids))}" in capsys.readouterr().err


def test_a_database_that_cannot_even_be_read_does_not_stop_start_up(monkeypatch, capsys, db):
    def locked(*args, **kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(BatchComparison.objects, "filter", locked)
    call_command("resume_batches", "--all")
    assert "starting anyway" in capsys.readouterr().err
