"""In a real browser: an editor opens a finished batch with failed cells, runs them again, and watches
them fill in until the batch is done again (that a viewer is not offered it: test_batch_run_failed_again)."""

from __future__ import annotations

import pytest

from prompts_app.models import BatchCell, BatchComparison, Run
from prompts_app.services import run_watch
from tests.batch_seed import seed
from tests.test_batch_matrix_live import claim, store_run

pytestmark = pytest.mark.browser


def test_an_editor_runs_the_failed_cells_again_and_sees_them_fill_in(
    page, browser_login, editor, workspace, prompt, settings
):
    settings.MAXIMUI_BATCH_TASK_BACKEND = "database"  # queued for a worker; this test plays the worker
    batch = seed(workspace, prompt, editor, cases=3, failing={})
    failed = list(batch.cells.filter(column__position=2, case__position__in=[1, 3]))
    for cell in failed:
        Run.objects.filter(pk=cell.run_id).update(status="interrupted", error="Interrupted: the worker stopped.")
        BatchCell.objects.filter(pk=cell.pk).update(state=BatchCell.State.FAILED, passed=None, check_results=[])

    browser_login(editor)
    page.goto(f"/batches/{batch.pk}/")
    button = page.get_by_role("button", name="Run failed cells again")
    assert "2 failed cells, each sent once more" in page.get_by_role("region", name="Progress").inner_text()
    button.click()
    page.locator("#batch-status", has_text="Running").wait_for()
    page.wait_for_timeout(500)
    assert page.get_by_role("button", name="Run failed cells again").count() == 0

    for cell, text in zip(failed, ("Sent again: case 1", "Sent again: case 3"), strict=True):
        cell.refresh_from_db()
        assert cell.state == BatchCell.State.QUEUED and cell.run_id is None
        run = claim(cell)  # what the worker does, as the page waits
        run_watch.run_stored()
        page.locator(f"#cell-{cell.pk}", has_text="Running").wait_for(timeout=10_000)
        store_run(cell, run, text)
        run_watch.run_stored()
        page.get_by_role("table", name="Results matrix").get_by_text(text).wait_for(timeout=10_000)  # no reload
    BatchComparison.objects.filter(pk=batch.pk).update(status="done")  # nothing else left: the worker ends it
    run_watch.run_stored()
    page.locator("#batch-status", has_text="Done").wait_for(timeout=10_000)
    page.goto(f"/batches/{batch.pk}/")
    matrix = page.get_by_role("table", name="Results matrix").inner_text()
    assert "Sent again: case 1" in matrix and "Sent again: case 3" in matrix and "Interrupted" not in matrix
    assert "6 of 6 cells" in page.get_by_role("region", name="Progress").inner_text()
