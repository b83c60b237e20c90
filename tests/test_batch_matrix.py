"""The batch matrix beyond its first page: sorting by a column's metric, "fails here, passes in
the baseline", outputs cut in SQL with the whole text and the word diff one click away, two
batches of one test set compared, and exports that stream."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.db.models.query import QuerySet
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from prompts_app import pricing
from prompts_app.models import BatchCell, Run
from prompts_app.selectors import batches as read
from tests.batch_seed import seed

LONG = "word " * 20_000  # 100 KB


@pytest.fixture
def seeded(workspace, prompt, editor):
    """A finished 2-column batch over 30 cases, built in code: column 1 passes every case, column 2
    fails cases 3 and 7; cost, latency and tokens grow with the case in column 1, shrink in 2."""
    return seed(workspace, prompt, editor, cases=30, failing={2: {3, 7}})


def case_numbers(client, batch, **query) -> list[int]:
    page = client.get(reverse("batch_detail", args=[batch.pk]), query, HTTP_HX_REQUEST="true")
    return [int(n) for n in re.findall(r'<th scope="row">#(\d+)', page.content.decode())]


def test_sorting_by_a_columns_cost_orders_every_page(client_for, viewer, seeded):
    client = client_for(viewer)
    assert case_numbers(client, seeded, sort="1.cost")[:3] == [1, 2, 3]
    assert case_numbers(client, seeded, sort="2.cost")[:3] == [30, 29, 28]
    assert case_numbers(client, seeded, sort="1.latency", order="desc")[:3] == [30, 29, 28]
    second = case_numbers(client, seeded, sort="2.tokens", page="2")
    assert second == [5, 4, 3, 2, 1]  # the last 5 of 30, still in order across the page break


def test_sorting_by_pass_rate_puts_failures_first_and_keeps_ties_in_case_order(client_for, viewer, seeded):
    numbers = case_numbers(client_for(viewer), seeded, sort="2.pass")
    assert numbers[:4] == [3, 7, 1, 2]


def test_the_sort_is_in_the_url_and_the_page_links_keep_it(client_for, viewer, seeded):
    text = client_for(viewer).get(reverse("batch_detail", args=[seeded.pk]), {"sort": "2.cost", "order": "desc"})
    html = text.content.decode()
    assert 'href="?page=2&amp;sort=2.cost&amp;order=desc"' in html
    assert '<option value="2.cost" selected>' in html


def test_a_sort_the_batch_does_not_have_is_ignored(client_for, viewer, seeded):
    assert case_numbers(client_for(viewer), seeded, sort="9.cost")[:2] == [1, 2]
    assert case_numbers(client_for(viewer), seeded, sort="1.drop table")[:2] == [1, 2]


def test_fails_here_passes_in_the_baseline(client_for, viewer, seeded):
    client = client_for(viewer)
    assert case_numbers(client, seeded, regressed="2") == [3, 7]
    assert case_numbers(client, seeded, regressed="0") == [3, 7]  # any column but the baseline
    # With column 2 as the baseline nothing regressed in column 1: it passes everywhere.
    assert case_numbers(client, seeded, regressed="1", baseline="2") == []


def test_checking_the_baseline_column_against_itself_says_why_nothing_matches(client_for, viewer, seeded):
    """New-user trial: `b` then the number of the column being checked left "No cases match." and no hint."""
    url = reverse("batch_detail", args=[seeded.pk])
    same = client_for(viewer).get(url, {"regressed": "2", "baseline": "2"}).content.decode()
    assert "Column 2 is the baseline too: no case can fail in it and pass in it." in same
    other = client_for(viewer).get(url, {"regressed": "1", "baseline": "2"}).content.decode()
    assert "No cases match." in other and "is the baseline too" not in other


def test_a_case_failing_in_the_baseline_too_is_no_regression(client_for, viewer, workspace, prompt, editor):
    batch = seed(workspace, prompt, editor, cases=4, failing={1: {2}, 2: {2, 3}})
    assert case_numbers(client_for(viewer), batch, regressed="2") == [3]


def test_the_matrix_reads_only_the_head_of_each_output(client_for, viewer, workspace, prompt, editor):
    batch = seed(workspace, prompt, editor, cases=2, failing={}, outputs={(1, 1): LONG})
    cell = read.cells(batch).get(column__position=1, case__position=1)
    assert {"output_text", "request_body", "output"} <= cell.run.get_deferred_fields()
    assert len(cell.output_head) == read.PREVIEW_CHARS and cell.output_chars == len(LONG)
    html = client_for(viewer).get(reverse("batch_detail", args=[batch.pk])).content.decode()
    assert len(html) < len(LONG) and "Full output (100,000 characters)" in html


def test_the_whole_output_is_one_click_away(client_for, viewer, workspace, prompt, editor):
    batch = seed(workspace, prompt, editor, cases=1, failing={}, outputs={(1, 1): LONG})
    cell = batch.cells.get(column__position=1)
    url = reverse("batch_cell", args=[batch.pk, cell.pk])
    part = client_for(viewer).get(url, {"show": "full"}, HTTP_HX_REQUEST="true").content.decode()
    assert part.count("word") == 20_000 and "<html" not in part and f'id="cell-{cell.pk}-output"' in part
    page = client_for(viewer).get(url, {"show": "full"}).content.decode()  # the link's real href
    assert "<html" in page and page.count("word") == 20_000


def test_the_word_diff_against_the_baseline_is_loaded_on_demand(client_for, viewer, workspace, prompt, editor):
    outputs = {(1, 1): "The parcel left on Monday.", (2, 1): "The parcel left on Friday."}
    batch = seed(workspace, prompt, editor, cases=1, failing={}, outputs=outputs)
    matrix = client_for(viewer).get(reverse("batch_detail", args=[batch.pk])).content.decode()
    assert "<del>" not in matrix and matrix.count("Diff with baseline") == 1  # not on the baseline's own cell
    cell = batch.cells.get(column__position=2)
    diff = client_for(viewer).get(
        reverse("batch_cell", args=[batch.pk, cell.pk]), {"show": "diff"}, HTTP_HX_REQUEST="true"
    )
    assert "The parcel left on <del>Monday.</del><ins>Friday.</ins>" in diff.content.decode()
    assert 'aria-label="Case #1, column 2 against the baseline, column 1"' in diff.content.decode()
    swapped = client_for(viewer).get(
        reverse("batch_cell", args=[batch.pk, batch.cells.get(column__position=1).pk]),
        {"show": "diff", "baseline": "2"},
        HTTP_HX_REQUEST="true",
    )
    assert "<del>Friday.</del><ins>Monday.</ins>" in swapped.content.decode()


def test_a_cell_of_another_batch_or_workspace_is_404(client_for, viewer, outsider, seeded, workspace, prompt, editor):
    other = seed(workspace, prompt, editor, cases=1, failing={})
    cell = other.cells.first()
    assert client_for(viewer).get(reverse("batch_cell", args=[seeded.pk, cell.pk])).status_code == 404
    client = client_for(outsider)
    assert client.get(reverse("batch_cell", args=[other.pk, cell.pk])).status_code == 404
    assert client.get(reverse("batch_changes", args=[other.pk])).status_code == 404
    assert client.get(reverse("batch_watch", args=[other.pk])).status_code == 404


def test_two_batches_of_one_test_set_show_what_changed(client_for, viewer, workspace, prompt, editor):
    before = seed(workspace, prompt, editor, cases=6, failing={1: {4}, 2: {5}})
    versions = [c.version for c in before.columns.all()]
    after = seed(
        workspace, prompt, editor, cases=6, failing={1: {2}, 2: {5}}, test_set=before.test_set, versions=versions
    )
    # Opened from either batch, the earlier one is "before".
    response = client_for(viewer).get(reverse("batch_changes", args=[before.pk]), {"against": after.pk})
    changes = response.context["changes"]
    assert [(c.after.label, [x.position for x in c.broke], [x.position for x in c.fixed]) for c in changes] == [
        ("Reply v1", [2], [4]),
        ("Reply v2", [], []),
    ]
    html = response.content.decode()
    assert (
        "1 case from pass to fail · 1 from fail to pass" in html and 'aria-label="Reply v1: from pass to fail"' in html
    )


def test_a_batch_of_another_test_set_is_not_offered(client_for, viewer, workspace, prompt, editor, seeded):
    other = seed(workspace, prompt, editor, cases=2, failing={})
    response = client_for(viewer).get(reverse("batch_changes", args=[seeded.pk]), {"against": other.pk})
    assert response.status_code == 200 and response.context["other"] is None and response.context["others"] == []


def test_exports_read_cells_in_chunks_not_all_at_once(client_for, viewer, seeded, monkeypatch):
    fetch_all = QuerySet._fetch_all

    def materialised(self):
        assert self.model is not BatchCell, "the export loaded every cell at once"
        return fetch_all(self)  # the batch's few columns may be a list

    monkeypatch.setattr(QuerySet, "_fetch_all", materialised)  # iterator() never calls it
    rows = read.export_rows(seeded)
    assert next(rows)["case"] == 1
    assert sum(1 for _ in rows) == 59


def test_the_first_page_sorted_stays_within_ten_queries(client_for, viewer, seeded):
    client = client_for(viewer)
    url = reverse("batch_detail", args=[seeded.pk])
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url, {"sort": "2.latency", "regressed": "0"}).status_code == 200
    assert len(queries) <= 10, [q["sql"][:120] for q in queries]


def test_a_finished_batchs_summary_is_computed_once(client_for, viewer, seeded):
    seeded.finished_at = timezone.now()
    seeded.save()
    client = client_for(viewer)
    url = reverse("batch_detail", args=[seeded.pk])
    first = client.get(url).content.decode()
    with CaptureQueriesContext(connection) as queries:
        again = client.get(url).content.decode()
    assert not [q for q in queries if "GROUP BY" in q["sql"] or '"prompts_app_run"."latency_ms" ASC' in q["sql"]]
    assert 'aria-label="Summary per column"' in again
    summary = re.search(r'<section id="batch-summary".*?</section>', first, re.DOTALL).group()
    assert summary == re.search(r'<section id="batch-summary".*?</section>', again, re.DOTALL).group()


def test_a_running_batchs_summary_is_always_read_anew(client_for, viewer, workspace, prompt, editor):
    batch = seed(workspace, prompt, editor, cases=2, failing={}, status="running", running={(2, 2)})
    client = client_for(viewer)
    url = reverse("batch_detail", args=[batch.pk])
    assert "100% (1/1)" in client.get(url).content.decode()
    BatchCell.objects.filter(state="running").update(state="success", passed=False)
    assert "50% (1/2)" in client.get(url).content.decode()


def interrupt(
    batch, column: int, case: int, error: str = "Interrupted: the dashboard stopped before Maxim answered."
) -> None:
    cell = batch.cells.get(column__position=column, case__position=case)
    Run.objects.filter(pk=cell.run_id).update(status=Run.Status.INTERRUPTED, output_text="", error=error)
    BatchCell.objects.filter(pk=cell.pk).update(
        state=BatchCell.State.FAILED, passed=None, check_results=[], error=error
    )


def test_a_run_the_dashboard_interrupted_is_no_failure_of_the_version(client_for, viewer, workspace, prompt, editor):
    """Killed workers interrupt runs: that says nothing of the version, so such a cell is neither a
    regression, nor a failure in the filter, nor a change between batches (found by the new-user trial:
    the interrupted case counted as 'fails here' and as 'from fail to pass')."""
    before = seed(workspace, prompt, editor, cases=6, failing={2: {5}})
    interrupt(before, 2, 3)
    versions = [c.version for c in before.columns.all()]
    after = seed(workspace, prompt, editor, cases=6, failing={2: {5}}, test_set=before.test_set, versions=versions)
    client = client_for(viewer)
    assert case_numbers(client, before, regressed="2") == [5]
    assert case_numbers(client, before, failed="1") == [5]
    changes = client.get(reverse("batch_changes", args=[before.pk]), {"against": after.pk}).context["changes"]
    assert [(c.after.label, c.broke_count, c.fixed_count) for c in changes] == [("Reply v1", 0, 0), ("Reply v2", 0, 0)]
    html = client.get(reverse("batch_detail", args=[before.pk])).content.decode()
    assert "Interrupted: the dashboard stopped" in html  # the cell says what happened


def test_the_matrix_search_finds_error_text(client_for, viewer, workspace, prompt, editor):
    batch = seed(workspace, prompt, editor, cases=4, failing={})
    interrupt(batch, 1, 2, error="Maxim answered 429 (rate limit) 6 times")
    assert case_numbers(client_for(viewer), batch, q="rate limit") == [2]


def test_a_cell_still_being_sent_shows_that_not_empty_figures(client_for, viewer, workspace, prompt, editor):
    batch = seed(workspace, prompt, editor, cases=2, failing={}, status="running", running={(1, 1), (2, 1)})
    BatchCell.objects.filter(batch=batch, column__position=2).update(state=BatchCell.State.RUNNING, passed=None)
    html = client_for(viewer).get(reverse("batch_detail", args=[batch.pk])).content.decode()
    cell = re.search(r'<div id="cell-(\d+)" class="cell cell-running.*?</div>\s*</div>', html, re.S)
    assert cell and "Running" in cell.group(0) and "tokens" not in cell.group(0) and "Diff with" not in cell.group(0)
    summary = html.split('aria-label="Summary"')[1].split("</table>")[0] if 'aria-label="Summary"' in html else html
    row = re.search(r"2\. Reply v2</th>(.*?)</tr>", summary, re.S).group(1)
    assert "unpriced" not in row  # no run of column 2 has finished: nothing to price yet


def test_every_export_writes_a_cells_cost_exactly(client_for, viewer, workspace, prompt, editor):
    """123456789012345678 nano through a float reads 123456789.012345687: money is text from Decimal."""
    batch = seed(workspace, prompt, editor, cases=1, failing={})
    Run.objects.filter(batch_comparison=batch).update(cost_nano=123456789012345678)
    assert {row["cost_usd"] for row in read.export_rows(batch)} == {"123456789.012345678"}
    assert pricing.usd_text(123456789012345678) == "123456789.012345678" and pricing.usd_text(-5) == "-0.000000005"
    client = client_for(viewer)
    for fmt in ("csv", "json", "md"):
        body = b"".join(client.get(reverse(f"batch_export_{fmt}", args=[batch.pk])).streaming_content).decode()
        assert "123456789.012345678" in body and "123456789.01234568" not in body, fmt


def test_cells_a_cancelled_batch_never_sent_say_so_not_left(client_for, viewer, workspace, prompt, editor):
    """New-user trial: after Cancel, the cells that never ran read "Left", as if they would still run."""
    from tests.test_batch_matrix_live import big_running_batch

    batch = big_running_batch(workspace, prompt, editor, cases=2, repeats=1)
    type(batch).objects.filter(pk=batch.pk).update(status="cancelled")
    matrix = re.search(
        r'aria-label="Results matrix".*?</table>',
        client_for(viewer).get(reverse("batch_detail", args=[batch.pk])).content.decode(),
        re.DOTALL,
    )
    assert matrix and matrix.group(0).count("Not sent: the batch was cancelled") == 4
    assert ">Left<" not in matrix.group(0)
