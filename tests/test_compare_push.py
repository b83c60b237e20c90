"""Results pushed to the page: the comparison page's watch (a stream of server-sent events) and a
pending run's result are held open until a run is stored, bounded per process, and a plain reload
shows the same state."""

from __future__ import annotations

import re
import threading
import time
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from prompts_app import runner
from prompts_app.models import Run
from prompts_app.services import compare, run_watch
from prompts_app.services.compare import ColumnSpec
from tests.conftest import seed_fake
from tests.sse import EventStream, read_events

INPUT = {"turns": [{"role": "user", "content": "Where is my parcel?"}], "variables": {"company": "Acme"}}


@pytest.fixture
def unsent(monkeypatch):
    """Runs are recorded pending but never sent: the test decides when each one is stored."""
    monkeypatch.setattr(runner, "submit", lambda run, **kwargs: None)
    monkeypatch.setattr(runner, "submit_all", lambda runs, **kwargs: [])


def pending_comparison(fake_maxim, workspace, user, models=("gpt-4o", "gpt-4o-mini")):
    versions = seed_fake(fake_maxim, workspace, list(models))
    comparison, _ = compare.create_comparison(
        workspace=workspace, user=user, columns=[ColumnSpec(v) for v in versions], shared_input=True, input=INPUT
    )
    compare.run_comparison(comparison, user=user)
    return comparison, list(Run.objects.filter(comparison=comparison).order_by("column__position"))


def watch_url(comparison, runs) -> str:
    ids = ",".join(str(r.pk) for r in runs)
    return reverse("comparison_watch", args=[comparison.pk]) + f"?batch={comparison.batch}&pending={ids}"


def store_later(run: Run, *, delay: float, notify: bool) -> threading.Thread:
    """Store `run`'s answer from another thread, as a pool worker (notify) or another process would."""

    def store():
        time.sleep(delay)
        Run.objects.filter(pk=run.pk).update(status=Run.Status.SUCCESS, output_text="Stored answer")
        if notify:
            run_watch.run_stored()
        else:  # what run_stored() does in another process: only the stamp beside the database
            run_watch._touch_stamp()
        connection.close()

    thread = threading.Thread(target=store)
    thread.start()
    return thread


@pytest.mark.usefixtures("unsent")
@pytest.mark.parametrize("notify", [True, False], ids=["this-process", "other-process"])
@pytest.mark.django_db(transaction=True)
def test_the_watch_answers_as_soon_as_a_run_is_stored(file_db, fake_maxim, workspace, editor, client_for, notify):
    comparison, (first, second) = pending_comparison(fake_maxim, workspace, editor)
    client = client_for(editor)
    thread = store_later(first, delay=0.3, notify=notify)
    started = time.monotonic()
    response = client.get(watch_url(comparison, [first, second]))
    assert response["Content-Type"] == "text/event-stream"
    [(name, html)] = read_events(response, count=1)
    waited = time.monotonic() - started
    thread.join()
    assert name == "update" and waited < run_watch.HOLD_SECONDS / 2  # on the store, not at the timeout
    # The stored column comes out of band in the event; the other is still watched, on the same stream.
    assert f'id="column-{first.column_id}"' in html and 'hx-swap-oob="true"' in html and "Stored answer" in html
    assert f'id="column-{second.column_id}"' not in html and "compare-watch" not in html


@pytest.mark.usefixtures("unsent")
@pytest.mark.django_db(transaction=True)
def test_one_stream_brings_each_column_as_it_is_stored_then_ends(file_db, fake_maxim, workspace, editor, client_for):
    comparison, (first, second) = pending_comparison(fake_maxim, workspace, editor)
    threads = [store_later(first, delay=0.2, notify=True), store_later(second, delay=0.5, notify=True)]
    started = time.monotonic()
    events = read_events(client_for(editor).get(watch_url(comparison, [first, second])))
    for thread in threads:
        thread.join()
    assert time.monotonic() - started < run_watch.HOLD_SECONDS / 2  # ended when nothing was left pending
    assert [name for name, _ in events] == ["update", "update", "done"]
    assert f'id="column-{first.column_id}"' in events[0][1] and f'id="column-{second.column_id}"' in events[1][1]
    # "done" removes the watch from the page: no stream to open again.
    assert (
        '<div id="compare-watch" hidden hx-swap-oob="true"></div>' in events[2][1] and "sse-connect" not in events[2][1]
    )


@pytest.mark.usefixtures("unsent")
def test_the_watch_holds_until_its_timeout_when_nothing_is_stored(
    fake_maxim, workspace, editor, client_for, monkeypatch
):
    monkeypatch.setattr(run_watch, "HOLD_SECONDS", 0.3)
    comparison, runs = pending_comparison(fake_maxim, workspace, editor)
    started = time.monotonic()
    [(name, html)] = read_events(client_for(editor).get(watch_url(comparison, runs)))
    assert time.monotonic() - started >= 0.3
    assert name == "done" and "compare-column" not in html  # nothing changed: only the next watch
    assert f'pending={runs[0].pk},{runs[1].pk}"' in html and 'sse-connect="' in html


@pytest.mark.usefixtures("unsent")
def test_when_every_slot_is_held_the_watch_answers_at_once_and_retries(fake_maxim, workspace, editor, client_for):
    comparison, runs = pending_comparison(fake_maxim, workspace, editor)
    others = range(100, 110)  # other people's pages, each holding a slot
    taken = sum(run_watch.SLOTS.take(person) for person in others)
    try:
        started = time.monotonic()
        events = read_events(client_for(editor).get(watch_url(comparison, runs)))
        assert time.monotonic() - started < run_watch.HOLD_SECONDS / 2
    finally:
        for person in others[:taken]:
            run_watch.SLOTS.give_back(person)
    assert taken == 4  # MAXIMUI_HELD_REQUESTS: half of the 8 threads per process `make run` starts
    # The stream ends at once asking the browser to open it again (the same address) a little later.
    assert events == [("retry", str(run_watch.BUSY_RETRY_MS))]


@pytest.mark.usefixtures("unsent")
def test_an_outsider_cannot_watch_and_another_comparisons_runs_are_ignored(
    fake_maxim, workspace, editor, outsider, client_for
):
    comparison, runs = pending_comparison(fake_maxim, workspace, editor)
    assert client_for(outsider).get(watch_url(comparison, runs)).status_code == 404
    other, other_runs = pending_comparison(fake_maxim, workspace, editor, models=("gpt-4.1", "o3"))
    Run.objects.filter(pk=other_runs[0].pk).update(status=Run.Status.SUCCESS, output_text="Not yours")
    [(name, html)] = read_events(client_for(editor).get(watch_url(comparison, other_runs)))
    assert name == "done" and "Not yours" not in html and "sse-connect" not in html  # nothing of this one to watch


@pytest.mark.usefixtures("unsent")
def test_without_javascript_a_reload_shows_the_current_state(fake_maxim, workspace, editor, client_for):
    comparison, (first, second) = pending_comparison(fake_maxim, workspace, editor)
    url = reverse("comparison_detail", args=[comparison.pk])
    page = client_for(editor).get(url).content.decode()
    assert page.count("Waiting for Maxim") == 2 and f'pending={first.pk},{second.pk}"' in page
    Run.objects.filter(pk=first.pk).update(status=Run.Status.SUCCESS, output_text="First answer")
    page = client_for(editor).get(url).content.decode()
    assert "First answer" in page and page.count("Waiting for Maxim") == 1
    Run.objects.filter(pk=second.pk).update(status=Run.Status.SUCCESS, output_text="Second answer")
    page = client_for(editor).get(url).content.decode()
    assert "Second answer" in page and "comparison_watch" not in page and "/watch/" not in page


@pytest.mark.usefixtures("unsent")
@pytest.mark.django_db(transaction=True)
def test_a_pending_run_result_is_held_until_the_run_is_stored(file_db, fake_maxim, workspace, editor, client_for):
    _, (run, _) = pending_comparison(fake_maxim, workspace, editor)
    url = reverse("run_result", args=[run.pk])
    assert 'hx-trigger="load"' in client_for(editor).get(reverse("run_detail", args=[run.pk])).content.decode()
    thread = store_later(run, delay=0.3, notify=True)
    started = time.monotonic()
    html = client_for(editor).get(url, {"wait": "1"}).content.decode()
    assert time.monotonic() - started < run_watch.HOLD_SECONDS / 2
    thread.join()
    assert "Stored answer" in html and "hx-get" not in html


def test_one_person_holds_at_most_two_requests_so_their_tabs_cannot_take_every_slot(editor, viewer):
    # Two of the viewer's requests are held; the third answers at once (busy), someone else still waits.
    release = threading.Event()
    results: list[bool] = []

    def hold() -> None:
        results.append(run_watch.wait_for_runs([1], user_id=viewer.pk, timeout=5))
        connection.close()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run_watch, "_pending_counter", lambda ids: lambda: 0 if release.is_set() else 1)
        threads = [threading.Thread(target=hold) for _ in range(2)]
        for thread in threads:
            thread.start()
        time.sleep(0.2)
        started = time.monotonic()
        assert run_watch.wait_for_runs([1], user_id=viewer.pk, timeout=5) is False  # busy for this person
        assert time.monotonic() - started < 1
        assert run_watch.wait_for_runs([1], user_id=editor.pk, timeout=0.1) is True  # not for others
        release.set()
        run_watch.run_stored()
        for thread in threads:
            thread.join()
    assert results == [True, True] and run_watch.SLOTS.holders() == {}


def test_a_run_id_too_large_for_the_database_is_ignored_not_a_500(fake_maxim, workspace, editor, client_for):
    comparison, runs = pending_comparison(fake_maxim, workspace, editor)
    url = reverse("comparison_watch", args=[comparison.pk]) + f"?batch=1&pending={'9' * 40},{runs[0].pk}"
    response = client_for(editor).get(url)
    assert response.status_code == 200
    response.close()


@pytest.mark.usefixtures("unsent")
def test_the_default_baseline_stays_on_a_running_first_column_instead_of_jumping_when_it_finishes(
    fake_maxim, workspace, editor
):
    from prompts_app.services import compare_report

    comparison, runs = pending_comparison(fake_maxim, workspace, editor)
    Run.objects.filter(pk=runs[1].pk).update(status=Run.Status.SUCCESS, output_text="Second first")
    columns = list(comparison.columns.order_by("position"))
    assert compare_report.default_baseline(comparison, columns) == columns[0]
    Run.objects.filter(pk=runs[0].pk).update(status=Run.Status.FAILED, error="boom")
    assert compare_report.default_baseline(comparison, columns) == columns[1]  # a failed one is skipped


@pytest.mark.usefixtures("unsent")
@pytest.mark.skipif(
    connection.vendor != "sqlite", reason="the stamp file is SQLite's; elsewhere every re-check counts (run_watch)"
)
def test_a_held_request_counts_its_runs_again_only_after_a_commit(fake_maxim, workspace, editor):
    # Ten re-checks in half a second with nothing committed: the pending runs are counted once
    # (the probe is a stat of a stamp file, not a query).
    _comparison, runs = pending_comparison(fake_maxim, workspace, editor)
    with CaptureQueriesContext(connection) as queries:
        assert run_watch.wait_for_runs([r.pk for r in runs], timeout=0.5) is True
    # Once; a second time at most when the process's stamp watcher, left running by an earlier test
    # on another database file, sees that file's stamp change and wakes every held request (a
    # recount by design). Re-counting on each of the ten re-checks would be 10 or more.
    assert 1 <= sum("COUNT" in q["sql"].upper() for q in queries.captured_queries) <= 2


@pytest.mark.usefixtures("unsent")
def test_a_watch_answer_reads_the_watched_runs_once_after_holding(fake_maxim, workspace, editor, client_for):
    # What is still pending and which columns changed come from one read of the watched runs.
    comparison, (first, second) = pending_comparison(fake_maxim, workspace, editor)
    Run.objects.filter(pk=first.pk).update(status=Run.Status.SUCCESS, output_text="Stored answer")
    client = client_for(editor)
    with CaptureQueriesContext(connection) as queries:
        [(name, html)] = read_events(client.get(watch_url(comparison, [first, second])), count=1)
    assert name == "update" and "Stored answer" in html
    run_reads = [q["sql"] for q in queries.captured_queries if 'FROM "prompts_app_run"' in q["sql"]]
    # The watched ids, the held count, one read of their states, the changed column's runs.
    assert len(run_reads) == 4, run_reads


def watch_in(html: str) -> str:
    """The watch's address in a page or a "done" event, as htmx's SSE extension would open it."""
    match = re.search(r'id="compare-watch" hidden hx-ext="sse" sse-connect="([^"]+)"', html)
    return unescape(match.group(1)) if match else ""


@pytest.mark.usefixtures("unsent")
def test_a_watch_answer_redraws_only_the_diff_rows_of_the_columns_that_changed(
    fake_maxim, workspace, editor, client_for
):
    comparison, runs = pending_comparison(fake_maxim, workspace, editor, models=("gpt-4o", "gpt-4o-mini", "gpt-4.1"))
    client = client_for(editor)
    page = client.get(reverse("comparison_detail", args=[comparison.pk])).content.decode()
    token = re.search(r'id="diff-body-([0-9a-f]+)"', page).group(1)
    columns = [run.column_id for run in runs]
    stream = EventStream(client.get(watch_in(page)))  # one stream for the three results

    def store(run: Run) -> str:
        Run.objects.filter(pk=run.pk).update(status=Run.Status.SUCCESS, output_text=f"Answer {run.pk}")
        name, data = stream.next()
        assert name == "update"
        return data

    # The third column: only its own row, against the baseline the section shows.
    answer = store(runs[2])
    assert f'id="diff-{token}-{columns[2]}"' in answer and f'id="diff-{token}-{columns[1]}"' not in answer
    assert 'id="diff-body-' not in answer and answer.count('hx-swap-oob="true"') == 2  # its card and its row
    # The baseline's own result moves every row: the whole body, under the same token.
    answer = store(runs[0])
    assert f'<div id="diff-body-{token}" hx-swap-oob="true">' in answer
    assert f'id="diff-{token}-{columns[2]}"' in answer and "Waiting for every column" in answer
    assert answer.count("No finished run yet") == 1  # the second column's
    # The last run in: the whole body again (the waiting note goes), and no next watch.
    answer = store(runs[1])
    assert f'<div id="diff-body-{token}" hx-swap-oob="true">' in answer
    assert "Waiting for every column" not in answer
    name, done = stream.next()
    assert name == "done" and watch_in(done) == "" and stream.next() is None


@pytest.mark.usefixtures("unsent")
def test_a_watch_answers_for_the_baseline_its_section_was_drawn_with(fake_maxim, workspace, editor, client_for):
    comparison, runs = pending_comparison(fake_maxim, workspace, editor, models=("gpt-4o", "gpt-4o-mini", "gpt-4.1"))
    client = client_for(editor)
    section = client.get(reverse("comparison_diff", args=[comparison.pk]), {"baseline": 2}).content.decode()
    token = re.search(r'id="diff-body-([0-9a-f]+)"', section).group(1)
    assert "baseline=2&" in watch_in(section)
    Run.objects.filter(pk=runs[2].pk).update(status=Run.Status.SUCCESS, output_text="Third answer")
    [(_name, answer)] = read_events(client.get(watch_in(section)), count=1)
    row = answer.split(f'id="diff-{token}-{runs[2].column_id}"')[1]
    assert "against the baseline, Column 2" in row and 'id="diff-body-' not in answer  # only that row
    # A watch whose section is gone (another baseline picked) still answers, under its own token.
    other = client.get(reverse("comparison_detail", args=[comparison.pk])).content.decode()
    assert re.search(r'id="diff-body-([0-9a-f]+)"', other).group(1) != token


@pytest.mark.usefixtures("unsent")
def test_when_every_slot_is_held_the_stream_still_brings_what_is_stored(fake_maxim, workspace, editor, client_for):
    # Found by the hostile trial: under a flood of streams, a person got 25 "retry" answers in a
    # row although their runs had finished 10 s before.
    comparison, (first, second) = pending_comparison(fake_maxim, workspace, editor)
    Run.objects.filter(pk=first.pk).update(status=Run.Status.SUCCESS, output_text="Stored answer")
    others = range(100, 110)
    taken = sum(run_watch.SLOTS.take(person) for person in others)
    try:
        events = read_events(client_for(editor).get(watch_url(comparison, [first, second])))
    finally:
        for person in others[:taken]:
            run_watch.SLOTS.give_back(person)
    assert [name for name, _ in events] == ["retry", "update"] and "Stored answer" in events[1][1]


@pytest.mark.usefixtures("unsent")
def test_a_waiting_stream_writes_a_comment_now_and_then_so_a_page_that_left_is_noticed(
    fake_maxim, workspace, editor, client_for, monkeypatch
):
    # Found by the hostile trial: a stream whose client had gone kept its slot for the whole 20 s.
    from prompts_app.views import compare_watch

    monkeypatch.setattr(run_watch, "HOLD_SECONDS", 0.5)
    monkeypatch.setattr(compare_watch, "PING_SECONDS", 0.1)
    comparison, runs = pending_comparison(fake_maxim, workspace, editor)
    body = b"".join(client_for(editor).get(watch_url(comparison, runs)).streaming_content).decode()
    assert body.count(": waiting\n\n") >= 3 and body.rstrip().endswith("</div>")  # then "done"
    assert run_watch.SLOTS.holders() == {}


@pytest.mark.usefixtures("unsent")
@pytest.mark.django_db(transaction=True)
def test_a_stream_draws_the_first_result_at_once_and_the_rest_of_a_burst_once(
    file_db, fake_maxim, workspace, editor, client_for, monkeypatch
):
    """A comparison's answers come within milliseconds: the first is drawn at once; while this process
    still stores the others, the stream waits for them (at most SETTLE_SECONDS) and draws them in one
    event, instead of an event per store, each taking the GIL from the stores it waits for."""
    monkeypatch.setattr(run_watch, "SETTLE_SECONDS", 3.0)  # long: a busy machine's timing does not decide
    comparison, (first, second, third) = pending_comparison(fake_maxim, workspace, editor, ("a", "b", "c"))

    def burst() -> None:
        time.sleep(1.0)
        run_watch.answered(3)  # all three answered, being stored by the runner
        for run, pause in ((first, 0.3), (second, 0.6), (third, 0.0)):
            Run.objects.filter(pk=run.pk).update(status=Run.Status.SUCCESS, output_text="stored")
            run_watch.answered(-1)
            run_watch.run_stored()
            time.sleep(pause)
        connection.close()

    thread = threading.Thread(target=burst)
    thread.start()
    events = read_events(client_for(editor).get(watch_url(comparison, [first, second, third])))
    thread.join()
    assert [name for name, _ in events] == ["update", "update", "done"]
    assert f'id="column-{first.column_id}"' in events[0][1] and f'id="column-{second.column_id}"' not in events[0][1]
    assert f'id="column-{second.column_id}"' in events[1][1] and f'id="column-{third.column_id}"' in events[1][1]


def test_a_stream_waits_for_stores_in_progress_no_longer_than_settle_seconds():
    run_watch.answered(1)  # an answer that is never stored (its thread died)
    try:
        started = time.monotonic()
        run_watch.settled_here(started + run_watch.SETTLE_SECONDS)
        assert run_watch.SETTLE_SECONDS <= time.monotonic() - started < run_watch.SETTLE_SECONDS + 0.5
    finally:
        run_watch.answered(-1)
    started = time.monotonic()
    run_watch.settled_here(started + 5)
    assert time.monotonic() - started < 0.5  # nothing waiting: at once
