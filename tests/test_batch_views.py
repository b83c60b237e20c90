"""Batch comparison pages: start (with the estimate and the budget confirmation), progress,
pause / resume / cancel, the matrix with its filters and summary, exports, and who may do what."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from prompts_app.models import BatchCell, BatchComparison
from prompts_app.services import batch_worker, batches
from prompts_app.services.batches import ColumnChoice
from tests.conftest import drive_batch as drive
from tests.conftest import make_version


@pytest.fixture(autouse=True)
def inline(batch_inline):
    pass


@pytest.fixture
def test_set(batch_test_set):
    return batch_test_set


def form_data(versions, test_set, **extra) -> dict:
    return {
        "columns": [f"v{v.pk}" for v in versions],
        "test_set": str(test_set.pk),
        "repeats": "1",
        "concurrency": "4",
        "check_contains": "Ada",
        "check_max_chars": "40",
        **extra,
    }


def confirmation_of(page: str) -> str:
    """The signed token the confirm page's "Start anyway" button sends."""
    found = re.search(r'<button type="submit" name="confirmation" value="([^"]+)"', page)
    assert found, "the confirm page has a Start anyway button with its token"
    return found.group(1)


@pytest.fixture
def finished_batch(echo_maxim, workspace, test_set, two_versions, editor):
    batch = batches.start_batch(
        workspace=workspace,
        test_set=test_set,
        columns=[ColumnChoice(v) for v in two_versions],
        user=editor,
        checks=[{"type": "contains", "value": "Ada"}],
    )
    drive(batch)
    return batch


def test_an_editor_starts_a_batch_with_two_checks(client_for, editor, workspace, test_set, two_versions, echo_maxim):
    response = client_for(editor).post(reverse("batch_new", args=[workspace.pk]), form_data(two_versions, test_set))
    batch = BatchComparison.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("batch_detail", args=[batch.pk])
    assert [c["type"] for c in batch.checks] == ["contains", "length"]
    assert batch.total_cells == 6 and batch.created_by == editor


def test_the_estimate_shows_calls_and_cost_before_starting(client_for, editor, workspace, test_set, two_versions):
    query = form_data(two_versions, test_set, repeats="2")
    response = client_for(editor).get(reverse("batch_estimate", args=[workspace.pk]), query)
    text = response.content.decode()
    assert "12 calls" in text and "for the input" in text
    assert not BatchComparison.objects.exists()  # a GET writes nothing


def test_above_the_budget_the_form_asks_to_confirm_and_keeps_the_input(
    client_for, editor, workspace, test_set, two_versions
):
    batches.set_soft_budget(workspace=workspace, budget_nano=1)
    client = client_for(editor)
    response = client.post(reverse("batch_new", args=[workspace.pk]), form_data(two_versions, test_set, title="Tone"))
    text = response.content.decode()
    assert response.status_code == 200 and 'role="alert"' in text and "soft budget" in text
    assert 'name="confirmation"' in text and 'value="Tone"' in text
    assert not BatchComparison.objects.exists()
    confirmed = form_data(two_versions, test_set, title="Tone", confirmation=confirmation_of(text))
    assert client.post(reverse("batch_new", args=[workspace.pk]), confirmed).status_code == 302
    assert BatchComparison.objects.count() == 1


def test_an_invalid_check_re_renders_the_form_with_the_reason(client_for, editor, workspace, test_set, two_versions):
    data = form_data(two_versions, test_set, check_regex="(?:a?){25}a{25}")
    response = client_for(editor).post(reverse("batch_new", args=[workspace.pk]), data)
    assert response.status_code == 200 and "exponential time" in response.content.decode()
    assert not BatchComparison.objects.exists()


def test_a_viewer_reads_but_cannot_start_pause_resume_or_cancel(
    client_for, viewer, workspace, finished_batch, test_set, two_versions
):
    client = client_for(viewer)
    assert client.get(reverse("batch_detail", args=[finished_batch.pk])).status_code == 200
    assert client.get(reverse("batch_new", args=[workspace.pk])).status_code == 403
    assert client.post(reverse("batch_new", args=[workspace.pk]), form_data(two_versions, test_set)).status_code == 403
    for name in ("batch_pause", "batch_resume", "batch_cancel"):
        assert client.post(reverse(name, args=[finished_batch.pk])).status_code == 403
    assert BatchComparison.objects.count() == 1


def test_an_outsider_gets_404_everywhere(client_for, outsider, workspace, finished_batch):
    client = client_for(outsider)
    for name in ("batch_detail", "batch_progress", "batch_export_csv"):
        assert client.get(reverse(name, args=[finished_batch.pk])).status_code == 404
    for name in ("batch_pause", "batch_cancel"):
        assert client.post(reverse(name, args=[finished_batch.pk])).status_code == 404
    assert client.get(reverse("batch_new", args=[workspace.pk])).status_code == 404


def test_pause_resume_and_cancel_from_the_page(
    client_for, editor, workspace, test_set, two_versions, echo_maxim, django_capture_on_commit_callbacks
):
    batch = batches.start_batch(
        workspace=workspace, test_set=test_set, columns=[ColumnChoice(two_versions[0])], user=editor
    )
    client = client_for(editor)
    response = client.post(reverse("batch_pause", args=[batch.pk]), HTTP_HX_REQUEST="true")
    assert "Resume" in response.content.decode()
    batch.refresh_from_db()
    assert batch.status == BatchComparison.Status.PAUSED
    client.get(reverse("batch_detail", args=[batch.pk]))  # a reload changes nothing
    batch.refresh_from_db()
    assert batch.status == BatchComparison.Status.PAUSED and echo_maxim.sent == []
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("batch_resume", args=[batch.pk]))
    batch.refresh_from_db()
    assert batch.status == BatchComparison.Status.DONE and len(echo_maxim.sent) == 3
    client.post(reverse("batch_cancel", args=[batch.pk]))  # too late: done stays done
    batch.refresh_from_db()
    assert batch.status == BatchComparison.Status.DONE


def test_show_the_latest_results_is_offered_only_on_a_page_drawn_before_the_batch_stopped(
    client_for, editor, workspace, test_set, two_versions, finished_batch
):
    """New-user trial: the link stayed on a finished batch's page, where it reloads the same page."""
    client = client_for(editor)
    link = "Show the latest results"
    assert link not in client.get(reverse("batch_detail", args=[finished_batch.pk])).content.decode()
    batch = batches.start_batch(
        workspace=workspace, test_set=test_set, columns=[ColumnChoice(two_versions[0])], user=editor
    )
    assert link not in client.get(reverse("batch_detail", args=[batch.pk])).content.decode()  # running
    paused = client.post(reverse("batch_pause", args=[batch.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert link in paused  # swapped into the page drawn while it ran: its matrix is older
    assert "The matrix below was filtered and sorted while the batch ran." in paused  # what is older
    assert 'data-if-filtered="failed differ q regressed sort" hidden>' in paused  # app.js: shown on a filtered page
    assert link not in client.get(reverse("batch_detail", args=[batch.pk])).content.decode()  # reloaded


def test_the_page_shows_progress_summary_and_the_matrix(client_for, viewer, finished_batch):
    text = client_for(viewer).get(reverse("batch_detail", args=[finished_batch.pk])).content.decode()
    assert "6 of 6 cells" in text
    assert "33% (1/3)" in text  # only Ada's case contains "Ada"
    assert "Echo gpt-4o: Hello, I am Ada." in text
    assert "✗ Contains: does not contain &#x27;Ada&#x27;" in text
    assert 'aria-label="Results matrix"' in text and "<svg" in text


def test_filters_failed_only_differing_and_search(client_for, viewer, finished_batch):
    client = client_for(viewer)
    url = reverse("batch_detail", args=[finished_batch.pk])
    failed = client.get(url, {"failed": "1"}).content.decode()
    assert "2 cases" in failed and "Hello, I am Ada." not in failed
    differ = client.get(url, {"differ": "1"}).content.decode()
    assert "3 cases" in differ  # the two models echo differently on every case
    search = client.get(url, {"q": "Linus"}, HTTP_HX_REQUEST="true").content.decode()
    assert "1 case" in search and "Hello, I am Linus." in search and "<html" not in search
    # Back to a URL htmx pushed, its snapshot not cached: the whole page, not the matrix alone
    # (new-user trial: the top bar, title, progress and summary were gone).
    restored = client.get(url, {"q": "Linus"}, HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    assert "<html" in restored.content.decode() and "<main" in restored.content.decode()


def test_the_first_page_and_summary_take_at_most_ten_queries(client_for, viewer, finished_batch):
    client = client_for(viewer)
    url = reverse("batch_detail", args=[finished_batch.pk])
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    assert len(queries) <= 10, [q["sql"][:120] for q in queries]


def test_exports_have_one_line_per_cell(client_for, viewer, finished_batch):
    client = client_for(viewer)
    body = b"".join(client.get(reverse("batch_export_csv", args=[finished_batch.pk])).streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == 6 and rows[0]["output"] == "Echo gpt-4o: Hello, I am Ada." and rows[0]["passed"] == "yes"
    assert rows[1]["checks"] == "pass Contains: contains 'Ada'"
    data = json.loads(b"".join(client.get(reverse("batch_export_json", args=[finished_batch.pk])).streaming_content))
    assert len(data["cells"]) == 6 and data["test_set"] == "Greetings"
    # The page's summary rides along: per column as on the page, its money the exact sum of its cells'.
    assert [s["label"] for s in data["summary"]] == [c.label for c in finished_batch.columns.order_by("position")]
    for line in data["summary"]:
        cells = [c for c in data["cells"] if c["label"] == line["label"]]
        assert line["runs"] == 3 and line["passed"] == sum(c["passed"] == "yes" for c in cells)
        assert Decimal(line["cost_usd"]) == sum(Decimal(c["cost_usd"]) for c in cells)
    markdown = b"".join(client.get(reverse("batch_export_md", args=[finished_batch.pk])).streaming_content).decode()
    cells = markdown.split("## Cells\n\n")[1]  # after the summary per column (tests/test_batch_export_summary.py)
    assert cells.count("\n| ") == 6 and cells.split("\n")[0].rstrip().endswith("| error |")


def test_a_cell_whose_input_is_refused_fails_with_the_reason(workspace, test_set, prompt, editor, echo_maxim):
    test_set.cases.update(variables={"company": "x" * 2_000_000, "name": "Ada"})
    batch = batches.start_batch(
        workspace=workspace, test_set=test_set, columns=[ColumnChoice(make_version(prompt, 1))], user=editor
    )
    drive(batch)
    cell = batch.cells.first()
    assert cell.state == BatchCell.State.FAILED and cell.run is None and cell.error
    assert echo_maxim.sent == []
    assert batch_worker.claim(batch.pk, 4) == []


def test_history_and_the_run_page_label_a_batch_run_with_its_batch(client_for, editor, finished_batch):
    client = client_for(editor)
    batch_url = reverse("batch_detail", args=[finished_batch.pk])
    history = client.get(reverse("run_history")).content.decode()
    # every cell's run, and no other, named after its batch (tests/test_history_batch.py)
    assert history.count(f'href="/runs/?batch={finished_batch.pk}"') == 6
    assert history.count(f"<bdi>{finished_batch}</bdi>") == 6
    run = finished_batch.cells.first().run
    page = client.get(reverse("run_detail", args=[run.pk])).content.decode()
    assert f'part of batch <a href="{batch_url}">' in page


def test_the_form_offers_numbered_columns_the_first_being_the_baseline(client_for, editor, workspace, two_versions):
    page = client_for(editor).get(reverse("batch_new", args=[workspace.pk])).content.decode()
    assert '<label for="id_columns_0">Column 1 (baseline)</label>' in page
    assert '<label for="id_columns_1">Column 2</label>' in page
    assert '<select name="columns" id="id_columns_0">' in page and 'type="checkbox" name="columns"' not in page


def test_columns_keep_the_order_picked_in_matrix_summary_and_exports(
    client_for, editor, workspace, test_set, prompt, echo_maxim
):
    older, newer = make_version(prompt, 1), make_version(prompt, 2, model="gpt-4o-mini")
    client = client_for(editor)
    # Column 1 is the older version although the form lists the newer first; an unused slot posts "".
    data = form_data([older, newer], test_set)
    data["columns"] = [f"v{older.pk}", "", f"v{newer.pk}"]
    client.post(reverse("batch_new", args=[workspace.pk]), data)
    batch = BatchComparison.objects.get()
    drive(batch)
    page = client.get(reverse("batch_detail", args=[batch.pk])).content.decode()
    matrix = page[page.index('aria-label="Results matrix"') :]
    summary = page[page.index('aria-label="Summary per column"') : page.index('aria-label="Results matrix"')]
    for part in (matrix, summary):
        assert part.index("1. Support reply v1") < part.index("2. Support reply v2")
    body = b"".join(client.get(reverse("batch_export_csv", args=[batch.pk])).streaming_content).decode()
    first_case = list(csv.DictReader(io.StringIO(body)))[:2]
    assert [(r["column"], r["label"]) for r in first_case] == [("1", "Support reply v1"), ("2", "Support reply v2")]
    data = json.loads(b"".join(client.get(reverse("batch_export_json", args=[batch.pk])).streaming_content))
    assert [c["label"] for c in data["cells"][:2]] == ["Support reply v1", "Support reply v2"]
    markdown = b"".join(client.get(reverse("batch_export_md", args=[batch.pk])).streaming_content).decode()
    assert markdown.index("Support reply v1") < markdown.index("Support reply v2")


def test_a_picked_version_twice_is_refused_with_the_input_kept(client_for, editor, workspace, test_set, two_versions):
    data = form_data(two_versions[:1] * 2, test_set, title="Twice")
    response = client_for(editor).post(reverse("batch_new", args=[workspace.pk]), data)
    text = response.content.decode()
    assert response.status_code == 200 and "once" in text and 'value="Twice"' in text
    assert not BatchComparison.objects.exists()


def test_each_export_is_in_the_audit_trail(client_for, viewer, workspace, finished_batch):
    from prompts_app.models import AuditEvent

    client = client_for(viewer)
    for fmt in ("csv", "json", "md"):
        b"".join(client.get(reverse(f"batch_export_{fmt}", args=[finished_batch.pk])).streaming_content)
    events = list(AuditEvent.objects.filter(workspace=workspace).order_by("id"))
    assert [e.action for e in events] == ["batch.exported"] * 3
    assert [e.target for e in events] == [f"{finished_batch} as {f}" for f in ("CSV", "JSON", "Markdown")]
    assert events[0].actor == viewer and events[0].detail == {"batch": finished_batch.pk}


def test_a_failed_cell_links_to_its_reason(client_for, viewer, finished_batch):
    # New-user trial: a cell whose run failed (e.g. interrupted) read only "Failed", its reason out of reach.
    cell = finished_batch.cells.order_by("pk").first()
    cell.state = "failed"
    cell.save(update_fields=["state"])
    page = client_for(viewer).get(reverse("batch_detail", args=[finished_batch.pk])).content.decode()
    link = re.search(rf'<a href="([^"]*/cells/{cell.pk}/[^"]*)" aria-label="Why [^"]+ failed">Failed: why\?</a>', page)
    assert link and client_for(viewer).get(html.unescape(link[1])).status_code == 200


def test_a_soft_budget_that_is_not_an_amount_is_refused_not_saved_as_none(client_for, owner, workspace):
    # New-user trial: "abc" in a number field reached the server as "" and saved "never asks", with "saved".
    index = client_for(owner).get(reverse("batch_index")).content.decode()
    field = re.search(r'<input[^>]*name="soft_budget_usd"[^>]*>', index)[0]
    assert 'type="text"' in field and 'inputmode="decimal"' in field
    batches.set_soft_budget(workspace=workspace, budget_nano=5_000_000_000)
    response = client_for(owner).post(
        reverse("batch_budget", args=[workspace.pk]), {"soft_budget_usd": "abc"}, follow=True
    )
    assert "must be an amount in dollars" in response.content.decode()
    workspace.batch_settings.refresh_from_db()
    assert workspace.batch_settings.soft_budget_nano == 5_000_000_000


def test_a_running_batch_nobody_sends_says_so_and_how_to_start_a_worker(client_for, viewer, workspace, prompt, editor):
    # New-user trial: with no worker for 50 s the page still read "Running · 0.7 calls/s".
    from datetime import timedelta

    from django.utils import timezone

    from prompts_app.models import BatchWorker, Run
    from tests.batch_seed import seed

    batch = seed(workspace, prompt, editor, cases=2, failing={}, status="running", running={(1, 2)})
    long_ago = timezone.now() - timedelta(minutes=2)
    BatchComparison.objects.filter(pk=batch.pk).update(created_at=long_ago, resumed_at=long_ago)
    Run.objects.filter(batch_comparison=batch).update(finished_at=long_ago)
    url = reverse("batch_detail", args=[batch.pk])
    page = client_for(viewer).get(url).content.decode()
    assert "No worker has sent this batch" in page and "manage.py db_worker" in page and "make worker" in page
    BatchWorker.objects.create(name="alive", batch=batch)  # a drive of this batch, beating now
    assert "No worker has sent this batch" not in client_for(viewer).get(url).content.decode()
    # Beating a moment ago, but its process on this machine is gone (SIGKILL): nobody sends.
    import subprocess

    from prompts_app.services.batch_liveness import _this_machine

    gone = subprocess.Popen(["true"])
    gone.wait()
    BatchWorker.objects.filter(name="alive").update(name=f"{_this_machine()}:{gone.pid}:killed")
    assert "No worker has sent this batch" in client_for(viewer).get(url).content.decode()
    # Killed while its parent (make run's supervisor) is stopped: not reaped, its pid still answers a
    # signal, but nothing runs (new-user trial: the warning then waited 70 s for the heartbeat to go stale).
    zombie = subprocess.Popen(["true"])
    for _ in range(200):
        if Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            break
        time.sleep(0.01)
    BatchWorker.objects.filter(batch=batch).update(name=f"{_this_machine()}:{zombie.pid}:stopped-parent")
    assert "No worker has sent this batch" in client_for(viewer).get(url).content.decode()
    zombie.wait()


def test_a_bad_check_typed_in_its_field_is_explained_there(client_for, editor, workspace, test_set, two_versions):
    data = form_data(two_versions, test_set, check_regex="(unclosed", title="Tone")
    page = client_for(editor).post(reverse("batch_new", args=[workspace.pk]), data).content.decode()
    field = re.search(r'<div class="field has-error">(.*?)</div>\s*</div>', page, re.DOTALL).group(1)
    assert 'name="check_regex" value="(unclosed"' in field and 'aria-describedby="id_check_regex_error"' in field
    assert '<div role="alert"><ul class="errorlist" id="id_check_regex_error"><li>Pattern does not compile' in field
    assert 'class="alert error"' not in page and 'value="Tone"' in page
    assert not BatchComparison.objects.exists()


def test_a_finished_batch_with_failed_cells_says_how_many_on_its_page_and_in_the_list(
    client_for, viewer, workspace, prompt, editor
):
    """New-user trial: after a worker was killed the batch read "Done" on its page and in the list, its
    two interrupted cells only in a column of the progress table."""
    from tests.batch_seed import seed

    batch = seed(workspace, prompt, editor, cases=3, failing={})
    batch.cells.filter(case__position__in=[1, 2], column__position=1).update(state=BatchCell.State.FAILED)
    page = client_for(viewer).get(reverse("batch_detail", args=[batch.pk])).content.decode()
    assert '<strong class="fail" id="batch-failed">2 failed to run</strong>' in page
    listed = client_for(viewer).get(reverse("batch_index")).content.decode()
    assert 'Done · <strong class="fail">2 failed</strong>' in listed
    clean = seed(workspace, prompt, editor, cases=1, failing={})
    assert 'id="batch-failed"' not in client_for(viewer).get(reverse("batch_detail", args=[clean.pk])).content.decode()


def test_a_long_title_is_cut_in_the_list_and_whole_in_the_links_name(client_for, viewer, workspace, prompt, editor):
    """New-user trial: a 300-character title wrapped over many lines of the batch list. It is cut
    on one line as the other lists cut names (app.css `.truncate`), whole in its title and text."""
    from tests.batch_seed import seed

    batch = seed(workspace, prompt, editor, cases=1, failing={})
    batch.title = "Tone check " + "x" * 289
    batch.save(update_fields=["title"])
    listed = client_for(viewer).get(reverse("batch_index")).content.decode()
    url = reverse("batch_detail", args=[batch.pk])
    assert f'<a class="truncate" href="{url}" title="{batch}">{batch}</a>' in listed


def test_a_bad_regex_and_bad_json_in_more_checks_are_both_explained_at_once(
    client_for, editor, workspace, test_set, two_versions
):
    """New-user trial: the JSON's error alone came back; the regex's only after the next submit."""
    data = form_data(two_versions, test_set, check_regex="(unclosed[", check_json='[{"type": "contains"', title="Tone")
    page = client_for(editor).post(reverse("batch_new", args=[workspace.pk]), data).content.decode()
    assert "Pattern does not compile" in page and 'id="id_check_json_error"' in page
    assert 'value="(unclosed["' in page and "[{&quot;type&quot;: &quot;contains&quot;" in page  # both kept
    assert not BatchComparison.objects.exists()


def test_the_batch_page_counts_calls_at_once_in_words_that_agree(client_for, viewer, workspace, prompt, editor):
    """New-user trial: "up to 1 calls at once"."""
    from tests.batch_seed import seed

    batch = seed(workspace, prompt, editor, cases=1, failing={})
    BatchComparison.objects.filter(pk=batch.pk).update(concurrency=1)
    page = client_for(viewer).get(reverse("batch_detail", args=[batch.pk])).content.decode()
    assert "up to 1 call at once" in page
