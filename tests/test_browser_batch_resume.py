"""In a real browser: a person resumes a batch paused with nothing in flight, and its cells fill in
as the workers send them, without a reload (batch UX helper: they stayed "left" until a reload,
because a paused page's matrix rows carry no cell states for its held request to fill in)."""

from __future__ import annotations

import pytest

from prompts_app.models import BatchComparison
from prompts_app.services import run_watch
from tests.test_batch_matrix_live import big_running_batch, claim, store_run

pytestmark = pytest.mark.browser


def test_after_resume_the_left_cells_fill_in_as_the_workers_send_them(
    page, browser_login, editor, workspace, prompt, settings
):
    settings.MAXIMUI_BATCH_TASK_BACKEND = "database"  # queued for a worker; this test plays the worker
    batch = big_running_batch(workspace, prompt, editor, cases=2, repeats=1)
    BatchComparison.objects.filter(pk=batch.pk).update(status="paused")
    browser_login(editor)
    page.goto(f"/batches/{batch.pk}/")
    page.locator("#batch-status", has_text="Paused").wait_for()
    page.wait_for_timeout(1_500)  # a person reads the page before resuming

    page.get_by_role("button", name="Resume").click()
    page.locator("#batch-status", has_text="Running").wait_for()
    page.wait_for_timeout(500)
    matrix = page.get_by_role("table", name="Results matrix")
    for number, cell in enumerate(batch.cells.order_by("column__position", "case__position"), 1):
        run = claim(cell)  # what a worker does, as the page waits
        run_watch.run_stored()
        store_run(cell, run, f"Sent after resume {number}")
        run_watch.run_stored()
        matrix.get_by_text(f"Sent after resume {number}").wait_for(timeout=10_000)  # no reload
