"""While a batch runs, its matrix's visible cells fill in: the page sends the cells it shows
unfinished with its one held request, and the answer carries, out of band, those that moved on."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import urlencode

import pytest
from django.urls import reverse
from django.utils import timezone

from prompts_app.models import BatchCell, BatchColumn, BatchComparison, Run, TestCase, TestSet
from prompts_app.selectors import batches as read
from prompts_app.selectors.batch_watch import Shown, changed_cells, shown_rows
from prompts_app.services import run_watch
from tests.batch_seed import seed
from tests.conftest import make_version
from tests.test_batch_matrix_watch import store


@pytest.fixture
def running(workspace, prompt, editor):
    """Two cases x two columns; case 2 of column 2 is still being sent."""
    return seed(workspace, prompt, editor, cases=2, failing={}, status="running", running={(2, 2)})


@pytest.fixture
def short_hold(monkeypatch):
    monkeypatch.setattr(run_watch, "HOLD_SECONDS", 0.4)  # a stale page is answered at once anyway


def _watch(client, batch, *rows: str, baseline: int = 1):
    query = Shown.of(batch).query() + "".join(f"&r={r}" for r in rows) + f"&baseline={baseline}"
    return client.get(reverse("batch_watch", args=[batch.pk]) + "?" + query).content.decode()


def _row(batch, position: int) -> str:
    """The row as the page shows it now: its case and its cells' states (columns, then repeats)."""
    states = batch.cells.filter(case__position=position).order_by("column__position", "repeat")
    return f"{states.first().case_id}." + "".join(s[:1] for s in states.values_list("state", flat=True))


def test_the_page_marks_its_rows_with_unfinished_cells_and_its_watch_sends_them(client_for, viewer, running):
    cell = running.cells.get(state="running")
    html = client_for(viewer).get(reverse("batch_detail", args=[running.pk])).content.decode()
    assert f'<input type="hidden" name="r" id="shown-{cell.case_id}" value="{cell.case_id}.sr">' in html
    assert html.count('name="r"') == 1  # a finished row is never sent
    assert 'hx-include="#batch-results input[name=r], #batch-baseline"' in html


def test_a_stored_cell_is_pushed_out_of_band_as_the_matrix_draws_it(client_for, viewer, running, short_hold):
    cell = running.cells.get(state="running")
    shown = _row(running, 2)
    store(cell.run)
    html = _watch(client_for(viewer), running, shown, baseline=1)
    assert f'<div id="cell-{cell.pk}" class="cell cell-success" hx-swap-oob="true">' in html
    assert "Answer 2 from column 2" in html and html.count('class="cell ') == 1  # only the cell that moved
    assert f'<input type="hidden" name="r" id="shown-{cell.case_id}" value="" hx-swap-oob="true">' in html
    assert "Diff case #2, column 2 against the baseline" in html  # its links, as on the page


def test_an_unchanged_cell_is_not_sent_back(client_for, viewer, running, short_hold):
    cell = running.cells.get(state="running")
    html = _watch(client_for(viewer), running, _row(running, 2))
    assert f'id="cell-{cell.pk}"' not in html and 'name="r"' not in html


def test_a_claimed_cell_is_pushed_and_still_watched(client_for, viewer, running, short_hold):
    queued = running.cells.get(case__position=1, column__position=1)
    BatchCell.objects.filter(pk=queued.pk).update(state=BatchCell.State.QUEUED)
    shown = _row(running, 1)
    BatchCell.objects.filter(pk=queued.pk).update(state=BatchCell.State.RUNNING)
    html = _watch(client_for(viewer), running, shown)
    assert f'id="cell-{queued.pk}" class="cell cell-running" hx-swap-oob="true"' in html
    assert f'value="{queued.case_id}.rs" hx-swap-oob="true"' in html  # the next push watches it as running


def test_only_the_batchs_own_rows_and_at_most_a_page_of_them(workspace, prompt, editor, running):
    other = seed(workspace, prompt, editor, cases=1, failing={}, status="running")
    foreign = other.cells.first()
    columns = list(running.columns.all())
    assert changed_cells(running, columns, {foreign.case_id: "qq"}) == ([], [])
    from django.http import QueryDict

    many = QueryDict("&".join(f"r={n}.qq" for n in range(1, 1000)) + "&r=x.q&r=&r=5&r=²." + "q" * 10_000)
    assert len(shown_rows(many)) == read.PER_PAGE
    assert shown_rows(QueryDict("r=7." + "q" * 10_000)) == {7: "q" * 64}


def test_hostile_rows_are_read_without_an_error(client_for, viewer, running, short_hold):
    for row in ("²." + "q", "9" * 30 + ".q", "1.", ".", "1.qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq", "-1.r"):
        assert 'id="batch-progress"' in _watch(client_for(viewer), running, row)


def test_only_rows_with_unfinished_cells_are_marked(workspace, prompt, editor):
    batch = seed(workspace, prompt, editor, cases=3, failing={}, status="running", running={(1, 1), (2, 3)})
    columns = list(batch.columns.all())
    _, rows = read.matrix_page(batch, columns, read.MatrixQuery())
    assert [row.shown.partition(".")[2] for row in rows] == ["rs", "", "sr"]


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


def big_running_batch(workspace, prompt, editor, *, cases: int, repeats: int = 5):
    """`cases` x 2 columns x `repeats` queued cells, as a batch just started has them (no runs yet)."""
    test_set = TestSet.objects.create(workspace=workspace, name="Many", variable_names=["q"])
    TestCase.objects.bulk_create(
        TestCase(test_set=test_set, position=n, variables={"q": f"question {n}"}) for n in range(1, cases + 1)
    )
    versions = [make_version(prompt, 1), make_version(prompt, 2, model="gpt-4o-mini")]
    batch = BatchComparison.objects.create(
        workspace=workspace, test_set=test_set, status="running", resumed_at=timezone.now(), created_by=editor,
        repeats=repeats, total_cells=cases * 2 * repeats,
    )  # fmt: skip
    columns = [
        BatchColumn.objects.create(batch=batch, position=n, version=v, label=f"v{n}") for n, v in enumerate(versions, 1)
    ]
    BatchCell.objects.bulk_create(
        BatchCell(batch=batch, column=column, case=case, repeat=r)
        for case in test_set.cases.all()
        for column in columns
        for r in range(1, repeats + 1)
    )
    return batch


def what_the_watch_sends(html: str) -> str:
    """The page's held request as htmx sends it: its URL plus the inputs its hx-include selects."""
    watch = re.search(r'<div id="batch-watch" hidden hx-get="([^"]+)"\s+hx-include="([^"]+)"', html)
    url, include = (unescape(part) for part in watch.groups())
    names = re.findall(r"input\[name=(\w+)\]", include)
    inputs = re.findall(r'<input type="hidden" name="(\w+)"[^>]* value="([^"]*)"', html)
    sent = [(name, unescape(value)) for name, value in inputs if name in names]
    selected = r'<select id="batch-baseline" name="baseline">.*?<option value="(\d+)" selected'
    baseline = re.search(selected, html, re.DOTALL)
    return url + "&" + urlencode([*sent, ("baseline", baseline.group(1))])


def claim(cell: BatchCell) -> Run:
    """What a worker does first: the cell is running, its run is pending."""
    column = cell.column
    run = Run.objects.create(
        workspace=column.batch.workspace, prompt=column.version.prompt, version=column.version,
        batch_comparison=column.batch, status="pending", provider="openai", model_name=column.version.model_name,
    )  # fmt: skip
    BatchCell.objects.filter(pk=cell.pk).update(run=run, state=BatchCell.State.RUNNING)
    return run


def store_run(cell: BatchCell, run: Run, text: str) -> None:
    """Then its answer is stored and the cell is done (one transaction)."""
    Run.objects.filter(pk=run.pk).update(
        status="success", output_text=text, total_tokens=3, cost_nano=1000, latency_ms=5.0, finished_at=timezone.now()
    )
    BatchCell.objects.filter(pk=cell.pk).update(state=BatchCell.State.SUCCESS, passed=True)


def finish(cell: BatchCell, text: str) -> None:
    store_run(cell, claim(cell), text)


@pytest.mark.parametrize("page", [1, 3])
def test_every_cell_of_the_page_shown_fills_in_beyond_the_first_200(
    client_for, viewer, workspace, prompt, editor, short_hold, page
):
    """25 cases x 2 columns x 5 repeats = 250 unfinished cells a page; a person on page 3, sorted,
    sees its last cell (the 250th) fill in, and none of another page's."""
    batch = big_running_batch(workspace, prompt, editor, cases=75)
    client = client_for(viewer)
    html = client.get(reverse("batch_detail", args=[batch.pk]), {"page": page, "sort": "1.latency"}).content.decode()
    shown = [int(n) for n in re.findall(r'<th scope="row">#(\d+)', html)]
    assert len(shown) == read.PER_PAGE and shown[0] == (page - 1) * read.PER_PAGE + 1
    last = batch.cells.filter(case__position=shown[-1], column__position=2, repeat=5).get()
    elsewhere = batch.cells.exclude(case__position__in=shown).first()
    finish(last, "The last answer of the page")
    finish(elsewhere, "An answer of another page")
    pushed = client.get(what_the_watch_sends(html)).content.decode()
    assert f'<div id="cell-{last.pk}" class="cell cell-success" hx-swap-oob="true">' in pushed
    assert "The last answer of the page" in pushed and "An answer of another page" not in pushed
    assert len(what_the_watch_sends(html)) < 2048  # the request line stays small whatever the page
