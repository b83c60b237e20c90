"""How a batch's workers share its concurrency and hand over (issue #12's throughput work)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from prompts_app.models import BatchCell, BatchComparison, BatchWorker, Run, TestCase, TestSet
from prompts_app.services import batch_liveness, batch_worker, batches
from prompts_app.services.batches import ColumnChoice
from tests.conftest import seed_fake


def start(workspace, test_set, versions, user, **extra):
    return batches.start_batch(
        workspace=workspace, test_set=test_set, columns=[ColumnChoice(v) for v in versions], user=user, **extra
    )


def claim_as(plan: batch_worker.Plan, wanted: int) -> list[BatchCell]:
    with transaction.atomic():
        return batch_worker._claim(plan, wanted)


@pytest.mark.usefixtures("batch_inline")
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


@pytest.mark.usefixtures("batch_inline")
def test_three_drives_shares_add_up_to_the_limit_not_over_it(
    echo_maxim, workspace, batch_test_set, two_versions, editor
):
    """Hostile trial: three workers of a batch of 32 each had 11 cells with Maxim, 33 at once: each
    share was rounded up. Now 11, 11 and 10."""
    batch = start(workspace, batch_test_set, two_versions, editor, concurrency=32)
    plans = [batch_worker.plan_for(batch.pk) for _ in range(3)]
    for plan in plans:
        plan.worker = batch_liveness.Heartbeat(batch.pk).row
    shares = [batch_worker._fair_share(plan, 32, timezone.now(), {}) for plan in plans]
    assert shares == [11, 11, 10] and sum(plan.share for plan in plans) == 32
    # 429s halved the limit to 2: the third drive has no part of it, and claims nothing, not even ahead.
    BatchComparison.objects.filter(pk=batch.pk).update(current_limit=2, last_throttled_at=timezone.now())
    claimed = [len(claim_as(plan, 4)) for plan in plans]
    assert [plan.share for plan in plans] == [1, 1, 0] and claimed[2] == 0


def test_a_drive_joining_beside_one_with_the_whole_limit_and_one_with_nothing_sends_nothing_yet(
    db, settings, fake_maxim, workspace, editor
):
    """Hostile re-check: at a batch's start the first drive, alone when it claimed, had all 32 with Maxim
    and 4 armed; a third joining counted 4 armed for the second too, which had none, and sent 4 more: 36."""
    settings.MAXIMUI_BATCH_TASK_BACKEND = "database"  # queued, claimed below by hand
    batch = batch_of(fake_maxim, workspace, editor, "gpt-4o", cases=40, concurrency=32)
    first, second, third = (batch_worker.plan_for(batch.pk) for _ in range(3))
    first.worker = batch_liveness.Heartbeat(batch.pk).row
    with transaction.atomic():
        taken = batch_worker._claim(first, 36, reserve=4)  # alone when it claimed: 32 and 4 ahead
    assert len(taken) == 36 and fake_maxim.requests == []
    second.worker, third.worker = (batch_liveness.Heartbeat(batch.pk).row for _ in range(2))
    batch_worker._fair_share(second, 32, timezone.now(), {})  # the second knows the three; holds nothing yet
    with transaction.atomic():
        batch_worker._claim(third, 4, reserve=4)
    assert third.cap == 0  # 32 of the first's 36 may be with Maxim: no room


@pytest.mark.usefixtures("batch_inline")
def test_a_drive_alone_or_beside_a_dead_one_takes_the_whole_limit(
    echo_maxim, workspace, batch_test_set, two_versions, editor
):
    batch = start(workspace, batch_test_set, two_versions, editor, concurrency=4)
    BatchWorker.objects.create(name="killed", batch=batch, beat_at=timezone.now() - timedelta(seconds=60))
    BatchWorker.objects.create(name="another batch's")  # a drive of no batch (or another) is not counted
    plan = batch_worker.plan_for(batch.pk)
    plan.worker = batch_liveness.Heartbeat(batch.pk).row

    assert len(claim_as(plan, 6)) == 4


def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def batch_of(fake, workspace, user, model: str, cases: int, concurrency: int = 2) -> BatchComparison:
    [version] = seed_fake(fake, workspace, [model])
    test_set = TestSet.objects.create(workspace=workspace, name="Cases", variable_names=["company"])
    TestCase.objects.bulk_create(
        TestCase(test_set=test_set, position=n, variables={"company": f"{model}-{n}"}) for n in range(cases)
    )
    return start(workspace, test_set, [version], user, concurrency=concurrency)


def test_a_slow_maxim_does_not_hold_the_worker_when_it_hands_over(
    transactional_db, settings, monkeypatch, fake_maxim, workspace, make_workspace, owner, editor
):
    """At a fair-slice boundary the drive hands over at once: the calls still with Maxim are
    stored by a thread of their own (their cells kept by the drive's heartbeat), not waited for
    before the next batch's task can start. Before, drive() waited up to the 90 s a call may last."""
    settings.MAXIMUI_BATCH_TASK_BACKEND = "database"  # queued, driven below by hand
    fake_maxim.hang_seconds = 8.0
    slow = batch_of(fake_maxim, workspace, editor, "hang", cases=2)
    other = make_workspace(owner=owner, name="Other", maxim_id="ws-2")
    waiting = batch_of(fake_maxim, other, owner, "gpt-4o", cases=1)
    monkeypatch.setattr(batch_worker, "FAIR_SLICE_SECONDS", 0.0)
    monkeypatch.setattr(batch_worker, "SETTLE_EVERY", 0.5)
    waits = batch_liveness.another_batch_waits  # the hand-over once both slow calls are out, however busy the machine
    sending = slow.cells.filter(state=BatchCell.State.RUNNING)
    monkeypatch.setattr(batch_liveness, "another_batch_waits", lambda pk: sending.count() == 2 and waits(pk))

    began = time.monotonic()
    assert batch_worker.drive(slow.pk, slice_seconds=60) is True  # the other batch waits: hand over
    assert time.monotonic() - began < 5.0  # long before Maxim answers (8 s)
    in_flight = slow.cells.filter(state=BatchCell.State.RUNNING)
    assert in_flight.count() == 2 and not in_flight.filter(run__started_at__isnull=True).exists()
    assert not BatchWorker.objects.filter(batch=slow).exists()  # it takes no share of the limit now

    assert batch_worker.drive(waiting.pk, slice_seconds=60) is False  # the next task runs meanwhile
    assert BatchComparison.objects.get(pk=waiting.pk).status == BatchComparison.Status.DONE
    assert slow.cells.filter(state=BatchCell.State.RUNNING).count() == 2  # still with Maxim, not settled

    wait_for(lambda: slow.cells.filter(state=BatchCell.State.SUCCESS).count() == 2)  # stored when they came
    wait_for(lambda: not any(t.name.endswith("-finish") for t in threading.enumerate()))
    assert not BatchWorker.objects.exists()  # the heartbeat ended once they were stored
    assert Run.objects.filter(batch_comparison=slow, status=Run.Status.SUCCESS).count() == 2
    sent = [r.body["messages"][0]["content"] for r in fake_maxim.requests_to("/v1/prompts/run")]
    assert len(sent) == len(set(sent)) == 3  # each cell sent once


def test_each_thread_keeps_to_one_small_pool_and_reuses_its_connection(fake_maxim):
    """httpcore walks every connection of a pool (and, for each idle one, all of them again) per
    request: a batch's 32 threads share an origin's pool as SHARDS small ones, a thread always on
    the same one, and every connection is kept for the next call instead of every other one closed."""
    from prompts_app.maxim import client as maxim_client
    from prompts_app.maxim import outbound

    http = outbound.new_http(timeout=maxim_client.TIMEOUT, limits=maxim_client.LIMITS, user_agent="test")
    start = threading.Barrier(4)

    def calls() -> None:
        start.wait()  # four threads at once
        for _ in range(3):
            assert http.get(f"{fake_maxim.base_url}/v1/workspaces", headers={"x-maxim-api-key": "k"}).status_code

    threads = [threading.Thread(target=calls) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pools = [len(shard._pool.connections) for shard in http._transport._shards]
    http.close()
    assert sorted(pools, reverse=True)[:5] == [1, 1, 1, 1, 0]  # one kept connection per thread, one shard each


def test_a_drive_of_a_killed_process_on_this_machine_is_not_counted_live(db, workspace, prompt, editor):
    # Hostile trial: a worker killed and restarted at once still counted as a live drive for 30 s,
    # so the new drive took half the batch's limit.
    import os

    from django.utils import timezone

    from prompts_app.models import BatchWorker
    from prompts_app.services import batch_liveness
    from tests.batch_seed import seed

    batch = seed(workspace, prompt, editor, cases=1, failing={}, status="running")
    gone = next(pid for pid in range(999_999, 0, -1) if not os.path.exists(f"/proc/{pid}"))
    BatchWorker.objects.create(name=f"{batch_liveness._this_machine()}:{gone}:dead", batch=batch)
    alive = BatchWorker.objects.create(name=f"{batch_liveness._this_machine()}:{os.getpid()}:alive", batch=batch)
    assert batch_liveness.live_drives(batch.pk, timezone.now()) == [alive.pk]


def test_an_origins_pools_share_one_tls_context_made_before_the_first_run():
    """Each httpx transport loaded certifi's CA bundle into a TLS context of its own (about 50 ms of
    CPU): a server process's first run waited 0.4 s for its origin's eight shards. They share one,
    which the server makes at start (runner.start -> maxim.warm_up), with the price data."""
    from prompts_app.maxim import client as maxim_client
    from prompts_app.maxim import outbound

    http = outbound.new_http(timeout=maxim_client.TIMEOUT, limits=maxim_client.LIMITS, user_agent="test")
    contexts = {id(shard._pool._ssl_context) for shard in http._transport._shards}
    http.close()
    assert contexts == {id(outbound.tls_context())}


@pytest.mark.usefixtures("batch_inline")
def test_answered_cells_free_their_slots_before_they_are_stored(
    echo_maxim, workspace, batch_test_set, two_versions, editor
):
    """A drive claims new cells before it stores the answered ones (the claim is the short
    transaction the free slots wait for): the answered cells, still "running" in the table,
    must not count against the limit."""
    batch = start(workspace, batch_test_set, two_versions, editor, concurrency=4)
    plan = batch_worker.plan_for(batch.pk)
    plan.worker = batch_liveness.Heartbeat(batch.pk).row
    assert len(claim_as(plan, 4)) == 4
    with transaction.atomic():
        assert batch_worker._claim(plan, 4) == []  # all four still with Maxim
        assert len(batch_worker._claim(plan, 4, freeing=2)) == 2  # two of them answered, not stored yet
    assert batch.cells.filter(state=BatchCell.State.RUNNING).count() == 6


def test_a_429_slows_the_batch_before_the_next_claim(transactional_db, settings, fake_maxim, workspace, editor):
    """The answers are stored after the next claim, except a refusal: it is stored first, so the
    claim already waits for Retry-After instead of sending more into a Maxim that said slow down."""
    settings.MAXIMUI_BATCH_TASK_BACKEND = "database"  # queued, driven below by hand
    batch = batch_of(fake_maxim, workspace, editor, "gpt-4o", cases=8)  # concurrency 2
    fake_maxim.fail_next("/v1/prompts/run", 429, {"message": "slow down"}, headers={"Retry-After": "2"})
    # The refusal comes at once, the other answer 0.5 s later: a cell armed ahead would leave
    # with that answer unless the refusal stopped it (with both at once, an answer read before
    # the refusal sends the armed cell, as it should: CI on d90d3e3 saw 3 requests).
    fake_maxim.run_delay = 0.5
    assert batch_worker.drive(batch.pk, slice_seconds=1.0) is True  # out of time while Maxim wants a wait
    assert len(fake_maxim.requests_to("/v1/prompts/run")) == 2  # the first two; nothing after the 429
    assert Run.objects.filter(batch_comparison=batch, error_status=429).count() == 1
