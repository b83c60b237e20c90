"""All columns at once against the FakeMaxim server: runs overlap, and one failing column
disturbs no other."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse

from prompts_app import runner
from prompts_app.models import Run
from prompts_app.services import compare
from prompts_app.services.compare import ColumnSpec
from tests.conftest import seed_fake
from tests.maxim_spec import validate_request

INPUT = {"turns": [{"role": "user", "content": "Where is my parcel?"}], "variables": {"company": "Acme"}}


def start(workspace, user, versions, repeats: int = 1):
    comparison, _ = compare.create_comparison(
        workspace=workspace, user=user, columns=[ColumnSpec(v) for v in versions], shared_input=True, input=INPUT
    )
    return comparison, compare.run_comparison(comparison, user=user, repeats=repeats)


@pytest.mark.usefixtures("inline_runs")
def test_a_failing_column_shows_its_error_and_the_others_succeed(fake_maxim, workspace, editor):
    fake_maxim.hang_seconds = 0.3
    versions = seed_fake(fake_maxim, workspace, ["gpt-4o", "fail-401", "fail-500", "hang", "gpt-4o-mini"])
    comparison, futures = start(workspace, editor, versions)
    runs = {r.model_name: r for r in (f.result() for f in futures)}
    assert runs["gpt-4o"].status == runs["gpt-4o-mini"].status == runs["hang"].status == Run.Status.SUCCESS
    assert runs["gpt-4o"].output_text == "Echo: Where is my parcel?"
    assert runs["fail-401"].status == Run.Status.FAILED and runs["fail-401"].error_status == 401
    assert runs["fail-500"].status == Run.Status.FAILED and runs["fail-500"].error_status == 500
    assert "test-key-1234" not in runs["fail-401"].error
    sent = fake_maxim.requests_to("/v1/prompts/run")
    assert len(sent) == 5  # a 500 on a run is never re-sent: it may have been billed
    for request in sent:
        validate_request("POST", "/v1/prompts/run", request.body)
        assert request.body["messages"][0]["content"] == "You answer for Acme."
    stored = Run.objects.filter(comparison=comparison)
    assert {r.column.version.model_name: r.status for r in stored} == {m: r.status for m, r in runs.items()}


@pytest.mark.usefixtures("inline_runs")
def test_a_rate_limited_column_fails_with_its_reason_and_is_sent_only_once(fake_maxim, workspace, editor):
    versions = seed_fake(fake_maxim, workspace, ["gpt-4o", "fail-429"])
    _, futures = start(workspace, editor, versions)
    runs = {r.model_name: r for r in (f.result() for f in futures)}
    assert runs["gpt-4o"].status == Run.Status.SUCCESS
    assert runs["fail-429"].status == Run.Status.FAILED and runs["fail-429"].error_status == 429
    assert runs["fail-429"].error
    limited = [r for r in fake_maxim.requests_to("/v1/prompts/run") if r.body["modelName"] == "fail-429"]
    assert len(limited) == 1  # a run is never re-sent behind the user's back


@pytest.mark.django_db(transaction=True)
def test_columns_run_concurrently_on_the_real_pool(file_db, fake_maxim, workspace, editor):
    fake_maxim.run_delay = 0.5
    versions = seed_fake(fake_maxim, workspace, [f"model-{n}" for n in range(8)])
    comparison, futures = start(workspace, editor, versions)
    assert len(futures) == 8
    assert runner.wait(timeout=20)
    requests = fake_maxim.requests_to("/v1/prompts/run")
    assert len(requests) == 8
    # Every request arrived before the first one was answered: they overlapped.
    first_answer = min(r.finished for r in requests if r.finished)
    assert max(r.arrived for r in requests) < first_answer
    runs = Run.objects.filter(comparison=comparison)
    assert [r.status for r in runs] == [Run.Status.SUCCESS] * 8


@pytest.mark.django_db(transaction=True)
def test_a_hanging_column_does_not_hold_back_the_others(file_db, fake_maxim, workspace, editor, client_for):
    fake_maxim.hang_seconds = 2.0
    good, hanging = seed_fake(fake_maxim, workspace, ["gpt-4o", "hang"])
    comparison, futures = start(workspace, editor, [good, hanging])
    done = futures[0].result(timeout=5)  # columns are submitted in order
    assert done.model_name == "gpt-4o" and done.status == Run.Status.SUCCESS
    assert Run.objects.get(comparison=comparison, version=hanging).status == Run.Status.PENDING
    client = client_for(editor)
    good_column, hanging_column = comparison.columns.all()
    finished = client.get(reverse("comparison_column", args=[comparison.pk, good_column.pk])).content.decode()
    waiting = client.get(reverse("comparison_column", args=[comparison.pk, hanging_column.pk])).content.decode()
    assert "Echo: Where is my parcel?" in finished and "Waiting for Maxim" in waiting
    page = client.get(reverse("comparison_detail", args=[comparison.pk])).content.decode()
    hanging_run = Run.objects.get(comparison=comparison, version=hanging)
    assert f'pending={hanging_run.pk}"' in page  # the page still watches the hanging run, only it
    assert "test-key-1234" not in finished + waiting + page
    assert runner.wait(timeout=10)
    assert Run.objects.get(comparison=comparison, version=hanging).status == Run.Status.SUCCESS


@pytest.mark.django_db(transaction=True)
def test_a_comparisons_runs_are_marked_started_together_when_the_pool_has_a_thread_for_each(
    file_db, fake_maxim, workspace, editor
):
    # One statement marks them all started (the same instant), so they leave together instead
    # of each thread waiting its turn at the database before its request leaves.
    fake_maxim.run_delay = 0.2
    versions = seed_fake(fake_maxim, workspace, [f"model-{n}" for n in range(8)])
    comparison, futures = start(workspace, editor, versions)
    assert runner.wait(timeout=20) and len(futures) == 8
    runs = list(Run.objects.filter(comparison=comparison))
    assert len({run.started_at for run in runs}) == 1
    assert [r.status for r in runs] == [Run.Status.SUCCESS] * 8
    assert len(fake_maxim.requests_to("/v1/prompts/run")) == 8  # each sent once


@pytest.mark.django_db(transaction=True)
def test_runs_that_would_wait_for_a_thread_are_marked_started_only_when_one_takes_them(
    file_db, fake_maxim, workspace, editor, settings, monkeypatch
):
    # More runs than free threads: a run still queued when the process dies must be "not sent",
    # so each is marked started by the thread that sends it.
    settings.MAXIMUI_RUNNER_THREADS = 4
    monkeypatch.setattr(runner, "_pool", None)  # a pool of 4 threads for this test
    fake_maxim.run_delay = 0.2
    versions = seed_fake(fake_maxim, workspace, [f"model-{n}" for n in range(8)])
    comparison, futures = start(workspace, editor, versions)
    assert runner.wait(timeout=20) and len(futures) == 8
    runner._pool.shutdown()
    runs = list(Run.objects.filter(comparison=comparison).order_by("started_at"))
    assert [r.status for r in runs] == [Run.Status.SUCCESS] * 8
    assert runs[-1].started_at - runs[0].started_at >= timedelta(seconds=0.15)  # the last four waited
    assert len(fake_maxim.requests_to("/v1/prompts/run")) == 8


@pytest.mark.django_db(transaction=True)
def test_another_workspaces_slow_runs_do_not_hold_a_comparison_in_the_queue(
    file_db, fake_maxim, workspace, editor, make_workspace, outsider
):
    # Found by the hostile trial: one workspace's 160 runs against a slow Maxim held another
    # workspace's comparison in the queue for 8.5 minutes. Workspaces now take turns for threads.
    fake_maxim.hang_seconds = 1.5
    slow_workspace = make_workspace(owner=outsider, name="Slow", maxim_id="ws-slow")
    slow = seed_fake(fake_maxim, slow_workspace, ["hang"], name="Slow reply")
    _slow_comparison, slow_futures = start(slow_workspace, outsider, slow * 2, repeats=10)  # 40 runs
    quick = seed_fake(fake_maxim, workspace, ["gpt-4o", "gpt-4o-mini"])
    started = time.monotonic()
    _comparison, futures = start(workspace, editor, quick)
    done = [future.result(timeout=10) for future in futures]
    assert time.monotonic() - started < 1.0  # not behind the slow runs (1.5 s each, 40 of them)
    assert [run.status for run in done] == [Run.Status.SUCCESS] * 2
    assert runner.wait(timeout=30) and all(f.result().status == Run.Status.SUCCESS for f in slow_futures)


@pytest.mark.django_db(transaction=True)
def test_runs_posted_at_once_are_marked_started_only_as_threads_take_them(
    file_db, fake_maxim, workspace, editor, settings
):
    # Found by the hostile trial: posts that arrived together each saw every thread free, and
    # more runs were marked started than threads could send (a queued run would then read
    # "interrupted" after a crash, or be sent after the sweep gave it up).
    fake_maxim.hang_seconds = 1.0
    versions = seed_fake(fake_maxim, workspace, ["hang"])
    gate = threading.Barrier(3)

    def post() -> None:
        gate.wait()
        start(workspace, editor, versions * 2, repeats=4)  # 8 runs
        connection.close()

    posts = [threading.Thread(target=post) for _ in range(3)]
    for thread in posts:
        thread.start()
    for thread in posts:
        thread.join()
    time.sleep(0.3)
    started = Run.objects.filter(started_at__isnull=False, status=Run.Status.PENDING).count()
    limit = settings.MAXIMUI_RUNNER_THREADS - settings.MAXIMUI_RUNNER_THREADS // runner.RESERVED_PER
    assert 0 < started <= limit  # never more than the threads this workspace may use
    assert runner.wait(timeout=30)
    assert len(fake_maxim.requests_to("/v1/prompts/run")) == Run.objects.count() == 24


@pytest.mark.django_db(transaction=True)
def test_two_workspaces_slow_runs_still_leave_a_thread_for_a_third(
    file_db, fake_maxim, workspace, editor, make_workspace, outsider, owner
):
    # Hostile trial: two busy workspaces took 8 threads each and a third's comparison waited 20 s.
    fake_maxim.hang_seconds = 1.5
    for n, person in enumerate((outsider, owner)):
        slow_workspace = make_workspace(owner=person, name=f"Slow {n}", maxim_id=f"ws-slow-{n}")
        slow = seed_fake(fake_maxim, slow_workspace, ["hang"], name=f"Slow reply {n}")
        start(slow_workspace, person, slow * 2, repeats=10)  # 40 runs each
    quick = seed_fake(fake_maxim, workspace, ["gpt-4o", "gpt-4o-mini"])
    started = time.monotonic()
    _comparison, futures = start(workspace, editor, quick)
    done = [future.result(timeout=10) for future in futures]
    assert time.monotonic() - started < 1.0 and [run.status for run in done] == [Run.Status.SUCCESS] * 2
    assert runner.wait(timeout=60)


def _writer_turn():
    """The lock a store takes its turn with (runner._writing): another store holding it keeps answers waiting."""
    return runner._sqlite_writes if connection.vendor == "sqlite" else runner._store_turn


def _answered_waiting(count: int) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with runner._answered_lock:
            if len(runner._answered) >= count:
                return True
        time.sleep(0.01)
    return False


@pytest.mark.django_db(transaction=True)
def test_runs_answered_together_are_stored_in_one_transaction_and_wake_the_page_once(
    file_db, fake_maxim, workspace, editor, monkeypatch
):
    """Group commit: the comparison's answers that wait while another store holds the writer are
    stored together (one transaction, one wake of the pages held on them), not one by one."""
    from prompts_app.services import run_watch

    versions = seed_fake(fake_maxim, workspace, [f"model-{n}" for n in range(4)])
    groups: list[int] = []
    wakes: list[int] = []
    store, wake = runner.store_finished, run_watch.run_stored
    monkeypatch.setattr(runner, "store_finished", lambda runs: (groups.append(len(runs)), store(runs))[1])
    monkeypatch.setattr(run_watch, "run_stored", lambda: (wakes.append(1), wake())[1])
    fake_maxim.run_delay = 0.3  # the runs are marked started (a write) before the turn is taken below
    comparison, _ = start(workspace, editor, versions)
    _writer_turn().acquire()  # another store in progress: every answer has to wait its turn
    try:
        assert _answered_waiting(4)
    finally:
        _writer_turn().release()
    assert runner.wait(timeout=20)
    assert groups == [4]
    assert len(wakes) == 4  # each thread says its run is stored; the page's stream draws what it finds
    runs = Run.objects.filter(comparison=comparison)
    assert [r.status for r in runs] == [Run.Status.SUCCESS] * 4
    assert len(fake_maxim.requests_to("/v1/prompts/run")) == 4  # stored together, each sent once


@pytest.mark.django_db(transaction=True)
def test_a_store_that_failed_is_stored_again_and_counted_in_the_totals(
    file_db, fake_maxim, workspace, editor, monkeypatch
):
    """A locked database on the first store: the answer is stored on the next try, never sent again,
    and it is counted in the history totals at once (the retry used to save the row without adding
    it to the rollups: its cost was missing from every total until a sweep caught up)."""
    from django.db import OperationalError
    from django.db.models import Q

    from prompts_app.selectors import costs

    monkeypatch.setattr(runner, "STORE_RETRIES", (0.01, 0.01))
    versions = seed_fake(fake_maxim, workspace, ["gpt-4o", "gpt-4o-mini"])
    store = runner.store_finished
    failures = []

    def locked_once(runs):
        if not failures:
            failures.append(len(runs))
            raise OperationalError("database is locked")
        return store(runs)

    monkeypatch.setattr(runner, "store_finished", locked_once)
    comparison, futures = start(workspace, editor, versions)
    assert runner.wait(timeout=20)
    assert failures and all(f.exception() is None for f in futures)
    runs = list(Run.objects.filter(comparison=comparison))
    assert [r.status for r in runs] == [Run.Status.SUCCESS] * 2 and all(r.rolled_up for r in runs)
    assert len(fake_maxim.requests_to("/v1/prompts/run")) == 2
    totals = costs.rollup_totals(Q(workspace_id__in=[workspace.pk], grain="month"))
    assert totals["runs"] == 2 and totals["cost_nano"] == sum(r.cost_nano for r in runs)


@pytest.mark.django_db(transaction=True)
def test_a_fault_while_storing_a_group_fails_every_run_of_it_with_the_reason(
    file_db, fake_maxim, workspace, editor, monkeypatch
):
    """Not a locked database but a fault of ours: no run of the group stays pending as if stored."""
    versions = seed_fake(fake_maxim, workspace, [f"model-{n}" for n in range(3)])
    fake_maxim.run_delay = 0.3
    comparison, futures = start(workspace, editor, versions)
    monkeypatch.setattr(runner, "store_finished", lambda runs: 1 / 0)
    _writer_turn().acquire()  # the three answers wait, then go as one group
    try:
        assert _answered_waiting(3)
    finally:
        _writer_turn().release()
    assert runner.wait(timeout=20)
    assert all(isinstance(f.exception(), ZeroDivisionError) for f in futures)
    runs = list(Run.objects.filter(comparison=comparison))
    assert [r.status for r in runs] == [Run.Status.FAILED] * 3
    assert all("failed while storing" in r.error for r in runs)
    assert len(fake_maxim.requests_to("/v1/prompts/run")) == 3


@pytest.mark.django_db(transaction=True)
def test_one_answer_that_cannot_be_stored_does_not_fail_the_others_of_its_group(
    file_db, fake_maxim, workspace, editor, monkeypatch
):
    """Hostile trial: another workspace's answer that no column could hold (OverflowError, not a
    DatabaseError) lost the other answers stored with it. Each run is stored alone then."""
    versions = seed_fake(fake_maxim, workspace, [f"model-{n}" for n in range(3)])
    fake_maxim.run_delay = 0.3
    comparison, futures = start(workspace, editor, versions)
    bad = Run.objects.filter(comparison=comparison).order_by("pk").first().pk
    store = runner.store_finished

    def overflowing(runs):
        if any(run.pk == bad for run in runs):
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        return store(runs)

    monkeypatch.setattr(runner, "store_finished", overflowing)
    _writer_turn().acquire()  # the three answers go as one group
    try:
        assert _answered_waiting(3)
    finally:
        _writer_turn().release()
    assert runner.wait(timeout=20)
    statuses = dict(Run.objects.filter(comparison=comparison).values_list("pk", "status"))
    assert statuses.pop(bad) == Run.Status.FAILED
    assert list(statuses.values()) == [Run.Status.SUCCESS] * 2
    failed = Run.objects.get(pk=bad)
    assert "failed while storing" in failed.error and failed.finished_at is not None
    assert len(fake_maxim.requests_to("/v1/prompts/run")) == 3
