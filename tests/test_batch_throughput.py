"""How a batch's workers share its concurrency and hand over (issue #12's throughput work)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from prompts_app.models import BatchCell, BatchWorker
from prompts_app.services import batch_liveness, batch_worker, batches
from prompts_app.services.batches import ColumnChoice


@pytest.fixture(autouse=True)
def inline(batch_inline):
    pass


def start(workspace, test_set, versions, user, **extra):
    return batches.start_batch(
        workspace=workspace, test_set=test_set, columns=[ColumnChoice(v) for v in versions], user=user, **extra
    )


def claim_as(plan: batch_worker.Plan, wanted: int) -> list[BatchCell]:
    with transaction.atomic():
        return batch_worker._claim(plan, wanted)


def test_two_live_drives_of_a_batch_share_its_limit(echo_maxim, workspace, batch_test_set, two_versions, editor):
    """The first drive must leave half the slots to a second live drive of the same batch, or that
    worker idles while the first refills every freed slot (bench_batch on PostgreSQL)."""
    batch = start(workspace, batch_test_set, two_versions, editor, concurrency=4)
    first, second = batch_worker.plan_for(batch.pk), batch_worker.plan_for(batch.pk)
    first.worker = batch_liveness.Heartbeat(batch.pk).row
    second.worker = batch_liveness.Heartbeat(batch.pk).row

    assert len(claim_as(first, 4)) == 2  # its fair share of 4 between two drives
    assert len(claim_as(second, 4)) == 2
    assert batch.cells.filter(state=BatchCell.State.RUNNING).count() == 4
    assert echo_maxim.sent == []


def test_a_drive_alone_or_beside_a_dead_one_takes_the_whole_limit(
    echo_maxim, workspace, batch_test_set, two_versions, editor
):
    batch = start(workspace, batch_test_set, two_versions, editor, concurrency=4)
    BatchWorker.objects.create(name="killed", batch=batch, beat_at=timezone.now() - timedelta(seconds=60))
    BatchWorker.objects.create(name="another batch's")  # a drive of no batch (or another) is not counted
    plan = batch_worker.plan_for(batch.pk)
    plan.worker = batch_liveness.Heartbeat(batch.pk).row

    assert len(claim_as(plan, 6)) == 4
