"""A running batch's page is pushed its progress: one held request (services.run_watch.hold),
answered when a cell is claimed or stored or the status changes, with the progress and the
summary; bounded like the comparison page's watch; no timer polling."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction
from django.urls import reverse

from prompts_app.models import BatchCell, BatchComparison, Run
from prompts_app.selectors.batch_watch import Shown, changed_since
from prompts_app.services import run_watch
from tests.batch_seed import seed


@pytest.fixture
def running(workspace, prompt, editor):
    """Two cases x two columns; case 2 of column 2 is still being sent."""
    return seed(workspace, prompt, editor, cases=2, failing={}, status="running", running={(2, 2)})


@pytest.fixture
def short_hold(monkeypatch):
    monkeypatch.setattr(run_watch, "HOLD_SECONDS", 0.4)


def watch(client, batch, shown: Shown):
    return client.get(reverse("batch_watch", args=[batch.pk]) + "?" + shown.query())


def store(run: Run) -> None:
    """What a worker does when a cell's answer is in (cell and run in one transaction)."""
    Run.objects.filter(pk=run.pk).update(status=Run.Status.SUCCESS)
    BatchCell.objects.filter(run=run).update(state=BatchCell.State.SUCCESS, passed=True)


def test_the_page_of_a_running_batch_holds_one_request_and_never_polls_on_a_timer(client_for, viewer, running):
    html = client_for(viewer).get(reverse("batch_detail", args=[running.pk])).content.decode()
    run = running.cells.get(state="running").run
    assert "every 1s" not in html and 'hx-trigger="every' not in html
    assert (
        f"/watch/?status=running&amp;running=1&amp;runs={run.pk}" in html and 'hx-trigger="load, watch-retry"' in html
    )
    # "Running" may exceed the limit by the cells claimed ahead (trial: 6 running under "4 at once").
    assert "Running: the cells with Maxim (" in html and "claimed to send next" in html


def test_a_finished_batch_has_no_watch(client_for, viewer, workspace, prompt, editor):
    batch = seed(workspace, prompt, editor, cases=1, failing={})
    assert 'id="batch-watch"' not in client_for(viewer).get(reverse("batch_detail", args=[batch.pk])).content.decode()


def test_the_check_sees_a_stored_cell_a_claimed_cell_and_a_new_status(running):
    shown = Shown.of(running)
    changed = changed_since(running, shown)
    assert shown.running == 1 and not changed()
    cell = running.cells.get(state="running")
    store(cell.run)
    assert changed()  # stored
    newest = shown.newest
    assert changed_since(running, Shown("running", 0, (), newest)).__call__() is False
    running.cells.filter(pk=running.cells.first().pk).update(state=BatchCell.State.RUNNING)
    assert changed_since(running, Shown("running", 0, (), newest))()  # claimed
    BatchComparison.objects.filter(pk=running.pk).update(status="paused")
    assert changed_since(running, Shown("running", 1, (), newest))()  # paused by someone else


def test_the_check_sees_a_cell_claimed_and_stored_between_two_checks(running):
    """The number running is as it was (one claimed, one stored): the batch's newer run gives it away."""
    queued = running.cells.filter(state=BatchCell.State.SUCCESS).first()
    BatchCell.objects.filter(pk=queued.pk).update(run=None, state=BatchCell.State.QUEUED)  # left, as drawn
    shown = Shown.of(running)
    changed = changed_since(running, shown)
    assert not changed()
    run = Run.objects.create(workspace=running.workspace, prompt=queued.column.version.prompt,
                             version=queued.column.version, batch_comparison=running, status="success")  # fmt: skip
    BatchCell.objects.filter(pk=queued.pk).update(run=run, state=BatchCell.State.SUCCESS)
    assert Shown.of(running).running == shown.running and changed()


def test_the_check_is_one_query(running, django_assert_num_queries):
    changed = changed_since(running, Shown.of(running))
    with django_assert_num_queries(1):
        changed()


def test_the_watch_answers_at_once_when_the_page_is_out_of_date(client_for, viewer, running, monkeypatch):
    monkeypatch.setattr(run_watch, "HOLD_SECONDS", 6.0)  # long: the answer's time is not a busy machine's
    stale = Shown("running", 0, ())  # drawn before the cell was claimed
    started = time.monotonic()
    response = watch(client_for(viewer), running, stale)
    assert time.monotonic() - started < run_watch.HOLD_SECONDS / 2
    html = response.content.decode()
    assert 'id="batch-progress"' in html and 'id="batch-summary" aria-label="Summary" hx-swap-oob="true"' in html
    assert "3 of 4 cells" in html and "running=1" in html  # the next watch, from what it drew


def test_the_watch_holds_while_nothing_changes(client_for, viewer, running, short_hold):
    started = time.monotonic()
    response = watch(client_for(viewer), running, Shown.of(running))
    assert time.monotonic() - started >= run_watch.HOLD_SECONDS and response.status_code == 200


def test_when_every_slot_is_taken_the_watch_answers_now_and_retries_later(client_for, viewer, running, monkeypatch):
    monkeypatch.setattr(run_watch.SLOTS, "per_user", 0)
    html = watch(client_for(viewer), running, Shown.of(running)).content.decode()
    assert f'hx-trigger="load delay:{run_watch.BUSY_RETRY_MS}ms, watch-retry"' in html


@pytest.mark.django_db(transaction=True)
def test_a_cell_stored_by_a_worker_is_pushed_at_once(file_db, client_for, viewer, workspace, prompt, editor):
    batch = seed(workspace, prompt, editor, cases=2, failing={}, status="running", running={(2, 2)})
    shown = Shown.of(batch)
    run = batch.cells.get(state="running").run

    def worker():  # another process: it only touches the stamp beside the database
        time.sleep(0.3)
        with transaction.atomic():  # seen together: on a server database the watch re-checks on its own
            store(run)
            BatchComparison.objects.filter(pk=batch.pk).update(status="done")
        run_watch._touch_stamp()
        connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    started = time.monotonic()
    html = watch(client_for(viewer), batch, shown).content.decode()
    waited = time.monotonic() - started
    thread.join()
    assert waited < run_watch.HOLD_SECONDS / 2
    assert "4 of 4 cells" in html and "Done" in html and 'id="batch-watch"' not in html
    assert html.count("100% (2/2)") == 2  # the summary, fresh without a reload (column 2 was 1/1)


@pytest.mark.django_db(transaction=True)
def test_a_batch_deleted_while_its_page_waits_is_said_gone_not_a_server_error(
    file_db, client_for, viewer, workspace, prompt, editor
):
    """An editor deletes the test set (and with it the batch) while a viewer's page waits on it:
    the held request answers with a sentence in place of the progress and asks nothing more
    (it raised DoesNotExist: a 500, and the page stopped updating without a word)."""
    batch = seed(workspace, prompt, editor, cases=2, failing={}, status="running", running={(2, 2)})
    shown = Shown.of(batch)

    def editor_deletes():
        time.sleep(0.3)
        batch.test_set.delete()
        run_watch.run_stored()
        connection.close()

    thread = threading.Thread(target=editor_deletes)
    thread.start()
    response = watch(client_for(viewer), batch, shown)
    thread.join()
    html = response.content.decode()
    assert response.status_code == 200
    assert "This batch no longer exists" in html and 'id="batch-watch"' not in html


def idle_since(batch, seconds: float) -> None:
    """The batch's last cell was stored `seconds` ago, and no drive of it is alive."""
    from datetime import timedelta

    from django.utils import timezone

    moment = timezone.now() - timedelta(seconds=seconds)
    BatchComparison.objects.filter(pk=batch.pk).update(created_at=moment, resumed_at=moment)
    Run.objects.filter(batch_comparison=batch).update(finished_at=moment)


WARNING = "No worker has sent this batch"


def test_with_no_worker_sending_anything_the_page_warns_after_seconds(
    client_for, viewer, running, workspace, prompt, editor
):
    """New-user trial: the only worker killed, the page read "Running" for 40 s. With no live drive of
    any batch, only a hand-over (a worker's polling interval) explains a pause: 5 s. While another
    batch's drive is alive the workers may be busy with it: a slice and more, 15 s."""
    from prompts_app.models import BatchWorker

    page = reverse("batch_detail", args=[running.pk])
    idle_since(running, 6)
    assert WARNING in client_for(viewer).get(page).content.decode()
    other = seed(workspace, prompt, editor, cases=1, failing={}, status="running", running={(1, 1)})
    BatchWorker.objects.create(name="busy with another batch", batch=other)
    assert WARNING not in client_for(viewer).get(page).content.decode()
    idle_since(running, 16)
    assert WARNING in client_for(viewer).get(page).content.decode()


def test_the_held_request_answers_when_the_warning_is_due(client_for, viewer, running):
    """Not at the end of a 20 s hold: the page learns within a moment of the warning being due."""
    idle_since(running, 3.5)
    began = time.monotonic()
    answer = watch(client_for(viewer), running, Shown.of(running)).content.decode()
    waited = time.monotonic() - began
    assert WARNING in answer and 1.0 < waited < run_watch.HOLD_SECONDS / 2


def test_while_a_worker_sends_the_held_request_is_held_no_longer_than_the_warning_s_delay(client_for, viewer, running):
    """Hostile trial: a request held while the worker lived was held its whole 20 s after the worker was
    killed, and the open page warned 18 s late."""
    from prompts_app.models import BatchWorker
    from prompts_app.services import batch_liveness

    BatchWorker.objects.create(name="alive", batch=running)  # a live drive of it, storing nothing meanwhile
    began = time.monotonic()
    answer = watch(client_for(viewer), running, Shown.of(running)).content.decode()
    waited = time.monotonic() - began
    assert WARNING not in answer
    assert batch_liveness.NOBODY_SENDS_NOTICE.total_seconds() - 0.5 < waited < run_watch.HOLD_SECONDS / 2
