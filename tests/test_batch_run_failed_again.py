"""Run failed cells again (new-user trial, issue #12): on a finished or cancelled batch, the cells that
failed (a Maxim error, 429s given up) or were interrupted (their worker died after marking the run
started) are queued again and each is sent exactly once more by the workers. The failed runs stay in
history with their batch; a cell shows its newest run; the counts and the summary add up."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import httpx
import pytest
import respx
from django.urls import reverse
from django.utils import timezone

from prompts_app.models import BatchCell, BatchComparison, BatchWorker, Run
from prompts_app.selectors import batches as read
from prompts_app.services import batch_worker, batches
from prompts_app.services.batches import ColumnChoice
from tests.conftest import BASE_URL
from tests.conftest import drive_batch as drive
from tests.maxim_spec import validate_request

pytestmark = pytest.mark.usefixtures("batch_inline")
BUTTON = "Run failed cells again"


@pytest.fixture
def maxim():
    """Echoes the last turn; refuses (400) Grace's case on gpt-4o-mini the first time only."""
    sent: Counter = Counter()

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        validate_request("POST", "/v1/prompts/run", body)
        key = (body["modelName"], body["messages"][-1]["content"])
        sent[key] += 1
        if key == ("gpt-4o-mini", "Hello, I am Grace.") and sent[key] == 1:
            return httpx.Response(400, json={"error": {"message": "model overloaded"}})
        text = f"Echo {body['modelName']}: {body['messages'][-1]['content']}"
        usage = {"promptTokens": 10, "completionTokens": 4, "totalTokens": 14}
        output = {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}
        return httpx.Response(200, json={"data": {"output": output, "usage": usage}})

    with respx.mock(base_url=BASE_URL, assert_all_called=False) as router:
        router.post("/v1/prompts/run").mock(side_effect=answer)
        yield sent


@pytest.fixture
def failed_batch(maxim, workspace, batch_test_set, two_versions, editor):
    """Done with two failed cells: one interrupted (killed between the claim's commit and the send,
    so Maxim never saw it), one Maxim refused."""
    batch = batches.start_batch(
        workspace=workspace, test_set=batch_test_set, columns=[ColumnChoice(v) for v in two_versions], user=editor
    )
    (claimed,) = batch_worker.claim(batch.pk, 1)
    dead = BatchWorker.objects.create(name="killed", beat_at=timezone.now() - timedelta(seconds=60))
    BatchCell.objects.filter(pk=claimed).update(worker=dead)
    Run.objects.filter(batch_cell=claimed).update(started_at=timezone.now())
    drive(batch)  # settles the dead worker's cell "interrupted", sends the rest
    batch.refresh_from_db()
    assert batch.status == BatchComparison.Status.DONE
    assert Run.objects.get(batch_cell=claimed).status == Run.Status.INTERRUPTED
    assert batch.cells.filter(state=BatchCell.State.FAILED).count() == 2
    return batch


def page_of(client, batch) -> str:
    return client.get(reverse("batch_detail", args=[batch.pk])).content.decode()


def test_the_failed_and_interrupted_cells_are_sent_exactly_once_more_and_everything_adds_up(
    client_for, editor, failed_batch, maxim, django_capture_on_commit_callbacks
):
    batch = failed_batch
    before = dict(maxim)
    assert sum(before.values()) == 5  # six cells, the interrupted one never reached Maxim
    old_failed = set(batch.cells.filter(state=BatchCell.State.FAILED).values_list("run_id", flat=True))
    client = client_for(editor)
    page = page_of(client, batch)
    assert BUTTON in page and "2 failed cells, each sent once more" in page
    # The person is told which may cost twice (trial: interrupted cells were counted as any failure).
    assert (
        "1 of them was interrupted: its worker stopped while sending it or about to (a worker claims a few cells ahead), so Maxim may have answered"
        in page
    )

    with django_capture_on_commit_callbacks(execute=True):  # the worker's task, as the page enqueued it
        response = client.post(reverse("batch_run_failed_again", args=[batch.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200

    batch.refresh_from_db()
    assert batch.status == BatchComparison.Status.DONE and batch.finished_at is not None
    sent_again = {key: n - before.get(key, 0) for key, n in maxim.items() if n != before.get(key, 0)}
    assert sent_again == {("gpt-4o-mini", "Hello, I am Grace."): 1, next(k for k in maxim if k not in before): 1}
    assert sum(maxim.values()) == 7  # nothing else was sent again

    cells = list(batch.cells.select_related("run"))
    assert {c.state for c in cells} == {BatchCell.State.SUCCESS} and len(cells) == 6
    assert all(c.run.status == Run.Status.SUCCESS and c.run_id not in old_failed for c in cells)  # the newest run
    history = Run.objects.filter(batch_comparison=batch)  # history labels every run with its batch
    assert history.count() == 8
    assert sorted(history.filter(pk__in=old_failed).values_list("status", flat=True)) == ["failed", "interrupted"]

    progress, summary = read.progress_and_summary(batch, list(batch.columns.all()))
    assert (progress.finished, progress.total, progress.failed, progress.left) == (6, 6, 0, 0)
    assert [(s.runs, s.failures) for s in summary] == [(3, 0), (3, 0)]
    page = page_of(client, batch)
    assert "6 of 6 cells" in page and BUTTON not in page  # nothing failed any more


def test_a_viewer_neither_sees_nor_may_post_it(client_for, viewer, failed_batch, maxim):
    client = client_for(viewer)
    assert BUTTON not in page_of(client, failed_batch)
    assert client.post(reverse("batch_run_failed_again", args=[failed_batch.pk])).status_code == 403
    assert failed_batch.cells.filter(state=BatchCell.State.FAILED).count() == 2 and sum(maxim.values()) == 5


def test_an_outsider_gets_404(client_for, outsider, failed_batch):
    assert client_for(outsider).post(reverse("batch_run_failed_again", args=[failed_batch.pk])).status_code == 404


def test_a_running_batch_is_refused_with_the_reason(client_for, editor, workspace, batch_test_set, two_versions, maxim):
    batch = batches.start_batch(
        workspace=workspace, test_set=batch_test_set, columns=[ColumnChoice(v) for v in two_versions], user=editor
    )
    assert BUTTON not in page_of(client_for(editor), batch)
    with pytest.raises(batches.BatchError, match="once the batch is finished or cancelled"):
        batches.run_failed_again(batch)
    batch.refresh_from_db()
    assert batch.status == BatchComparison.Status.RUNNING and sum(maxim.values()) == 0


def test_a_cancelled_batch_sends_its_unsent_and_failed_cells_each_once(
    client_for, editor, workspace, batch_test_set, two_versions, maxim, django_capture_on_commit_callbacks
):
    """New-user trial: a cancelled batch whose cells said "Not sent: the batch was cancelled" could
    not be run again; the button refused it. Now it sends the unsent cells once and the failed ones
    once more, and says so before the click."""
    batch = batches.start_batch(
        workspace=workspace, test_set=batch_test_set, columns=[ColumnChoice(v) for v in two_versions], user=editor
    )
    while not batch.cells.filter(state=BatchCell.State.FAILED).exists():  # until Grace on gpt-4o-mini failed
        batch_worker.send_cell(batch_worker.claim(batch.pk, 1)[0])
    unsent = batch.cells.filter(state=BatchCell.State.QUEUED).count()
    assert unsent >= 1
    client = client_for(editor)
    client.post(reverse("batch_cancel", args=[batch.pk]))
    page = page_of(client, batch)
    assert page.count("Not sent: the batch was cancelled") == unsent
    assert "Run the unsent and failed cells" in page
    said = f"{unsent} cell{'s' if unsent > 1 else ''} the cancelled batch never sent, each sent once; 1 failed cell"
    assert said in page
    before = sum(maxim.values())

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("batch_run_failed_again", args=[batch.pk]))
    assert response.status_code == 302

    batch.refresh_from_db()
    assert batch.status == BatchComparison.Status.DONE
    assert sum(maxim.values()) - before == unsent + 1  # each never sent once, the failed one once more
    assert all(n == 1 for key, n in maxim.items() if key != ("gpt-4o-mini", "Hello, I am Grace."))
    assert {c.state for c in batch.cells.all()} == {BatchCell.State.SUCCESS}
    page = page_of(client, batch)
    assert "6 of 6 cells" in page and "Not sent" not in page and "Run the unsent" not in page
    with django_capture_on_commit_callbacks(execute=True):  # a second post (another tab) sends nothing
        page = client.post(reverse("batch_run_failed_again", args=[batch.pk]), follow=True).content.decode()
    assert "no failed or unsent cells" in page
    assert sum(maxim.values()) - before == unsent + 1


def test_cells_given_up_after_repeated_429s_get_every_retry_again_when_run_again(
    client_for, editor, workspace, batch_test_set, two_versions, django_capture_on_commit_callbacks
):
    """New-user trial: after "Maxim kept refusing…", "Run failed cells again" gave the capped cell
    up again at the very first 429 of the re-run: its earlier refusals were still counted."""
    refusing = {"gpt-4o": float("inf")}  # 429s left before gpt-4o answers again
    sent: Counter = Counter()

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        validate_request("POST", "/v1/prompts/run", body)
        sent[body["modelName"]] += 1
        if refusing.get(body["modelName"], 0) > 0:
            refusing[body["modelName"]] -= 1
            return httpx.Response(429, headers={"Retry-After": "0"}, json={"message": "slow down"})
        text = f"Echo {body['modelName']}: {body['messages'][-1]['content']}"
        usage = {"promptTokens": 10, "completionTokens": 4, "totalTokens": 14}
        output = {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}
        return httpx.Response(200, json={"data": {"output": output, "usage": usage}})

    batch = batches.start_batch(
        workspace=workspace,
        test_set=batch_test_set,
        columns=[ColumnChoice(v) for v in two_versions],
        user=editor,
        concurrency=1,  # one cell at a time: the capped cell is the one whose run is refused next
    )
    client = client_for(editor)
    with respx.mock(base_url=BASE_URL) as router:
        router.post("/v1/prompts/run").mock(side_effect=answer)
        drive(batch)
        batch.refresh_from_db()
        assert batch.status == BatchComparison.Status.DONE
        column = batch.cells.filter(column__position=1)
        assert {c.state for c in column} == {BatchCell.State.FAILED}
        assert column.filter(error=batch_worker.refused_error(batch_worker.MAX_REFUSALS)).count() == 1
        assert "answered 429 (rate limit)" in page_of(client, batch)

        refusing["gpt-4o"] = batch_worker.MAX_REFUSALS - 1  # Maxim is busy a while longer, then answers
        before = sent["gpt-4o"]
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse("batch_run_failed_again", args=[batch.pk]), HTTP_HX_REQUEST="true")
        assert response.status_code == 200
        drive(batch)

    batch.refresh_from_db()
    assert batch.status == BatchComparison.Status.DONE
    assert {c.state for c in batch.cells.all()} == {BatchCell.State.SUCCESS}
    assert sent["gpt-4o"] - before == batch_worker.MAX_REFUSALS - 1 + 3  # the refusals, then each cell once
    assert "answered 429 (rate limit)" not in page_of(client, batch)


def test_failed_and_interrupted_runs_are_not_counted_as_unpriced(client_for, viewer, failed_batch):
    """Trial: the summary read "$0.00105 + 2 unpriced" for two interrupted runs, where Costs said 0
    unpriced. A run that failed is neither priced nor unpriced; the failures column counts it."""
    summary = read.progress_and_summary(failed_batch, list(failed_batch.columns.all()))[1]
    assert [(s.failures, s.unpriced, s.priced_runs) for s in summary] == [(1, 0, 2), (1, 0, 2)]
    page = page_of(client_for(viewer), failed_batch)
    assert "unpriced" not in page.split('id="batch-summary"')[1].split("</table>")[0]
