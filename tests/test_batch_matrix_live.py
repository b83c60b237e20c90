"""While a batch runs, its matrix's visible cells fill in: the page sends the cells it shows
unfinished with its one held request, and the answer carries, out of band, those that moved on."""

from __future__ import annotations

import pytest
from django.urls import reverse

from prompts_app.models import BatchCell
from prompts_app.selectors import batches as read
from prompts_app.selectors.batch_watch import Shown, changed_cells, shown_cells
from prompts_app.services import run_watch
from tests.batch_seed import seed
from tests.test_batch_matrix_watch import store


@pytest.fixture
def running(workspace, prompt, editor):
    """Two cases x two columns; case 2 of column 2 is still being sent."""
    return seed(workspace, prompt, editor, cases=2, failing={}, status="running", running={(2, 2)})


@pytest.fixture
def short_hold(monkeypatch):
    monkeypatch.setattr(run_watch, "HOLD_SECONDS", 0.4)  # a stale page is answered at once anyway


def _watch(client, batch, *cells: str, baseline: int = 1):
    query = Shown.of(batch).query() + "".join(f"&c={c}" for c in cells) + f"&baseline={baseline}"
    return client.get(reverse("batch_watch", args=[batch.pk]) + "?" + query).content.decode()


def test_the_page_marks_its_unfinished_cells_and_its_watch_sends_them(client_for, viewer, running):
    cell = running.cells.get(state="running")
    html = client_for(viewer).get(reverse("batch_detail", args=[running.pk])).content.decode()
    assert f'<input type="hidden" name="c" value="{cell.pk}r">' in html
    assert html.count('name="c"') == 1  # finished cells are never sent again
    assert 'hx-include="#batch-results input[name=c], #batch-baseline"' in html


def test_a_stored_cell_is_pushed_out_of_band_as_the_matrix_draws_it(client_for, viewer, running, short_hold):
    cell = running.cells.get(state="running")
    store(cell.run)
    html = _watch(client_for(viewer), running, f"{cell.pk}r", baseline=1)
    assert f'<div id="cell-{cell.pk}" class="cell cell-success" hx-swap-oob="true">' in html
    assert "Answer 2 from column 2" in html and 'name="c"' not in html
    assert "Diff case #2, column 2 against the baseline" in html  # its links, as on the page


def test_an_unchanged_cell_is_not_sent_back(client_for, viewer, running, short_hold):
    cell = running.cells.get(state="running")
    assert f'id="cell-{cell.pk}"' not in _watch(client_for(viewer), running, f"{cell.pk}r")


def test_a_claimed_cell_is_pushed_and_still_watched(client_for, viewer, running, short_hold):
    queued = running.cells.filter(state="success").first()
    BatchCell.objects.filter(pk=queued.pk).update(state=BatchCell.State.RUNNING)
    html = _watch(client_for(viewer), running, f"{queued.pk}q")
    assert f'id="cell-{queued.pk}" class="cell cell-running" hx-swap-oob="true"' in html
    assert f'value="{queued.pk}r"' in html  # the next push watches it as running


def test_only_the_batchs_own_cells_and_at_most_a_page_of_them(workspace, prompt, editor, running):
    other = seed(workspace, prompt, editor, cases=1, failing={}, status="running")
    foreign = other.cells.first()
    columns = list(running.columns.all())
    assert changed_cells(running, columns, {foreign.pk: "q"}) == []
    from django.http import QueryDict

    many = QueryDict("&".join(f"c={n}q" for n in range(1, 1000)) + "&c=x&c=")
    assert len(shown_cells(many)) == read.MAX_LIVE_CELLS


def test_the_first_cells_of_a_big_page_are_watched(workspace, prompt, editor):
    batch = seed(workspace, prompt, editor, cases=3, failing={}, status="running", running={(1, 1), (2, 3)})
    columns = list(batch.columns.all())
    _, rows = read.matrix_page(batch, columns, read.MatrixQuery())
    live = [cell.case_id for row in rows for repeats in row.cells for cell in repeats if cell.live]
    assert len(live) == 2


def test_a_pushed_summary_is_recomputed_at_most_once_a_second(running, monkeypatch, django_assert_num_queries):
    columns = list(running.columns.all())
    first = read.progress_and_summary(running, columns, pushed=True)[1]
    assert first[1].checked == 1
    BatchCell.objects.filter(state="running").update(state="success", passed=False)
    with django_assert_num_queries(1):  # the progress only: the summary is a moment old
        progress, summary = read.progress_and_summary(running, columns, pushed=True)
    assert summary is first and progress.finished == 4
    monkeypatch.setattr(read, "SUMMARY_EVERY_SECONDS", 0.0)
    assert read.progress_and_summary(running, columns, pushed=True)[1][1].checked == 2
    assert read.progress_and_summary(running, columns)[1][1].checked == 2  # a page load reads anew
