"""The pending sweep settles runs by when they were sent, not when they were queued (issue 9.7):
a comparison run still waiting in the thread pool is neither interrupted nor sent twice. The
runner sweeps (prompts_app/runner.py); pages only show a stale run as settled (issue #10)."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from prompts_app import runner
from prompts_app.models import Run, RunRollup
from prompts_app.services.runs import NOT_SENT_ERROR, execute_run, mark_interrupted_runs, mark_started


def pending_run(version, user, *, age: dt.timedelta, started_ago: dt.timedelta | None = None) -> Run:
    now = timezone.now()
    return Run.objects.create(
        workspace=version.prompt.workspace,
        prompt=version.prompt,
        version=version,
        user=user,
        provider="openai",
        model_name="gpt-4o",
        created_at=now - age,
        started_at=None if started_ago is None else now - started_ago,
        request_body={"promptId": "p", "versionId": "v", "workspaceId": "w", "messages": []},
    )


def test_a_run_queued_for_minutes_is_still_pending_not_interrupted(version, editor, workspace):
    queued = pending_run(version, editor, age=dt.timedelta(minutes=6))  # behind 80 runs on 16 threads
    assert mark_interrupted_runs() == 0
    queued.refresh_from_db()
    assert queued.status == Run.Status.PENDING and queued.error == ""


def test_a_started_run_past_the_deadline_is_interrupted(version, editor, workspace):
    sent = pending_run(version, editor, age=dt.timedelta(minutes=10), started_ago=dt.timedelta(minutes=4))
    recent = pending_run(version, editor, age=dt.timedelta(minutes=10), started_ago=dt.timedelta(seconds=30))
    assert mark_interrupted_runs() == 1
    sent.refresh_from_db(), recent.refresh_from_db()
    assert sent.status == Run.Status.INTERRUPTED and "may or may not have reached Maxim" in sent.error
    assert recent.status == Run.Status.PENDING


def test_a_very_old_run_that_never_started_is_not_sent_and_says_so(version, editor, workspace):
    lost = pending_run(version, editor, age=dt.timedelta(hours=2))
    assert mark_interrupted_runs() == 1
    lost.refresh_from_db()
    assert lost.status == Run.Status.NOT_SENT and lost.error == NOT_SENT_ERROR
    assert "never reached Maxim" in lost.error and "may" not in lost.error
    assert lost.rolled_up and RunRollup.objects.get(grain="day").status == "not_sent"


def test_after_a_restart_queued_runs_are_not_sent_and_started_ones_interrupted(version, editor, workspace):
    queued = pending_run(version, editor, age=dt.timedelta(seconds=5))
    sent = pending_run(version, editor, age=dt.timedelta(seconds=5), started_ago=dt.timedelta(seconds=2))
    call_command("mark_interrupted_runs", "--all")
    queued.refresh_from_db(), sent.refresh_from_db()
    assert (queued.status, sent.status) == (Run.Status.NOT_SENT, Run.Status.INTERRUPTED)


def test_a_run_settled_as_not_sent_is_never_sent_afterwards(version, editor, workspace):
    run = pending_run(version, editor, age=dt.timedelta(hours=2))
    mark_interrupted_runs()
    assert mark_started(run) is False
    run.started_at = None
    assert execute_run(run).status == Run.Status.NOT_SENT  # sending (to an unreachable host) would fail it


def test_execute_run_records_when_the_request_left(version, editor, workspace):
    run = pending_run(version, editor, age=dt.timedelta(seconds=1))
    before = timezone.now()
    assert mark_started(run) and mark_started(run) is False  # started once
    run.refresh_from_db()
    assert run.started_at >= before and run.status == Run.Status.PENDING


@pytest.mark.parametrize("page", ["run_history", "run_detail"])
def test_pages_write_nothing_and_leave_a_queued_comparison_run_alone(client_for, editor, version, workspace, page):
    pending_run(version, editor, age=dt.timedelta(minutes=5))  # queued behind other runs: left alone
    stale = pending_run(version, editor, age=dt.timedelta(hours=2))  # shown as not sent, still not written
    html = client_for(editor).get(reverse(page, args=[stale.pk] if page == "run_detail" else [])).content.decode()
    assert "badge not_sent" in html
    assert set(Run.objects.values_list("status", flat=True)) == {Run.Status.PENDING}


def test_the_command_settles_only_stale_runs_so_servers_can_share_the_database(version, editor, workspace):
    sending = pending_run(version, editor, age=dt.timedelta(seconds=5), started_ago=dt.timedelta(seconds=2))
    lost = pending_run(version, editor, age=dt.timedelta(minutes=10), started_ago=dt.timedelta(minutes=5))
    call_command("mark_interrupted_runs")
    sending.refresh_from_db(), lost.refresh_from_db()
    assert (sending.status, lost.status) == (Run.Status.PENDING, Run.Status.INTERRUPTED)


def test_the_runner_sweeps_when_it_starts_and_then_periodically(monkeypatch):
    stop = threading.Event()
    calls = []

    def sweep() -> int:
        calls.append(threading.current_thread().name)
        if len(calls) == 2:
            stop.set()  # the sweeper ends after this one
        return 0

    monkeypatch.setattr(runner, "sweep", sweep)
    monkeypatch.setattr(runner, "SWEEP_SECONDS", 0.01)
    monkeypatch.setattr(runner, "_sweeper", None)
    monkeypatch.setattr(runner, "_stop", stop)
    runner.start()
    runner.start()  # once per process
    runner._sweeper.join(timeout=5)
    assert calls == ["runner-sweep", "runner-sweep"]


def test_the_runner_sweep_applies_the_stale_rule(version, editor, workspace):
    sending = pending_run(version, editor, age=dt.timedelta(seconds=5), started_ago=dt.timedelta(seconds=2))
    lost = pending_run(version, editor, age=dt.timedelta(hours=2))
    assert runner.sweep() == 1
    sending.refresh_from_db(), lost.refresh_from_db()
    assert (sending.status, lost.status) == (Run.Status.PENDING, Run.Status.NOT_SENT)


def test_the_runner_loads_the_token_encodings_beside_the_first_requests(monkeypatch):
    """A process's first estimate (a run page's, a batch start's) must not wait 1.3 s of CPU per
    encoding: runner.start (wsgi.py) loads them in a thread of their own."""
    from prompts_app import pricing

    monkeypatch.setattr(runner, "_sweeper", None)
    monkeypatch.setattr(runner, "_stop", threading.Event())
    monkeypatch.setattr(runner, "sweep", lambda: 0)
    pricing._encoder.cache_clear()
    runner.start()
    deadline = time.monotonic() + 60
    while pricing._encoder.cache_info().currsize < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    runner._stop.set()
    assert pricing._encoder.cache_info().currsize == 2
