"""In a real browser: the batch page left open while its only worker is killed says, within seconds,
that no worker is sending, and a new worker carries the batch on (new-user trials of #12: 40 s, then
20 s on a page left open, of "Running" with nobody sending)."""

from __future__ import annotations

import time

import pytest

from prompts_app.models import BatchCell, BatchComparison, Run, TestCase, TestSet
from prompts_app.services import batches
from prompts_app.services.batches import ColumnChoice
from tests.conftest import seed_fake, start_worker

pytestmark = pytest.mark.browser
WARNING = "No worker has sent this batch"


def test_an_open_batch_page_warns_soon_after_its_only_worker_is_killed(
    page, browser_login, editor, workspace, fake_maxim, settings
):
    settings.MAXIMUI_BATCH_TASK_BACKEND = "database"  # sent by the real workers below
    fake_maxim.run_delay = 0.4
    [version] = seed_fake(fake_maxim, workspace, ["gpt-4o"])
    test_set = TestSet.objects.create(workspace=workspace, name="Cases", variable_names=["company"])
    TestCase.objects.bulk_create(
        TestCase(test_set=test_set, position=n, variables={"company": f"Co{n}"}) for n in range(40)
    )
    batch = batches.start_batch(
        workspace=workspace, test_set=test_set, columns=[ColumnChoice(version)], user=editor, concurrency=1
    )
    worker = start_worker(slice_seconds=120)
    browser_login(editor)
    page.goto(f"/batches/{batch.pk}/")
    progress = page.get_by_role("region", name="Progress")
    try:
        stored = batch.cells.filter(state=BatchCell.State.SUCCESS)
        deadline = time.monotonic() + 30
        while stored.count() < 3:  # the worker sends, the page follows it
            assert time.monotonic() < deadline, "the worker sent nothing"
            time.sleep(0.1)
        page.wait_for_timeout(1500)  # the page's held request is under way, as on a page left open
        assert WARNING not in progress.inner_text()
        worker.kill()  # SIGKILL; not reaped until wait() below, as under a stopped supervisor
        killed = time.monotonic()
        progress.get_by_role("alert").filter(has_text=WARNING).wait_for(timeout=20_000)
        took = time.monotonic() - killed
        assert took < 12, took  # the warning's 5 s, and at most one held request's 5 s before it
    finally:
        worker.kill()
        worker.wait()

    again = start_worker(slice_seconds=120)  # a worker carries on where the batch stopped
    try:
        page.locator("#batch-status", has_text="Done").wait_for(timeout=60_000)
    finally:
        again.kill()
        again.wait()
    assert WARNING not in progress.inner_text()
    finished = BatchComparison.objects.get(pk=batch.pk)
    lost = finished.cells.exclude(state=BatchCell.State.SUCCESS)
    # The kill loses at most three cells at a limit of 1 (batch_worker: an answer not yet stored,
    # the cell sent after it, and the one armed ahead), each failed "interrupted", never sent again.
    assert lost.count() <= 3, [(c.state, c.run and c.run.status) for c in lost]
    assert all(c.state == BatchCell.State.FAILED and c.run.status == Run.Status.INTERRUPTED for c in lost)
    sent = [r.body["messages"][-1]["content"] for r in fake_maxim.requests_to("/v1/prompts/run")]
    assert len(sent) == len(set(sent))  # nothing sent twice
