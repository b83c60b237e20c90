"""In a real browser: a person pauses (or cancels) a batch while cells are with Maxim. Those cells are
stored afterwards, and the page keeps showing them until nothing is in flight, then the final counts
(new-user trial: the page froze at "Pause" with stale "running" counts)."""

from __future__ import annotations

import pytest

from prompts_app.models import BatchCell
from prompts_app.services import run_watch
from tests.test_batch_matrix_live import big_running_batch, claim, store_run

pytestmark = pytest.mark.browser


def counts(columns) -> list[str]:
    return columns.get_by_role("row", name="1. v1").inner_text().split()[2:6]


@pytest.mark.parametrize("button", ["Pause", "Cancel"])
def test_after_pause_or_cancel_the_cells_in_flight_still_fill_in_and_the_counts_end_right(
    page, browser_login, editor, workspace, prompt, button
):
    batch = big_running_batch(workspace, prompt, editor, cases=3, repeats=1)
    first, second = batch.cells.filter(column__position=1).order_by("case__position")[:2]
    runs = {cell.pk: claim(cell) for cell in (first, second)}  # a worker sent these two
    browser_login(editor)
    page.goto(f"/batches/{batch.pk}/")
    progress = page.get_by_role("region", name="Progress")
    columns = page.get_by_role("table", name="Progress per column")
    assert counts(columns) == ["0", "0", "2", "1"]  # done, failed, running, left
    page.evaluate("window.stillTheSamePage = true")

    page.get_by_role("button", name=button).click()
    progress.locator("#batch-status", has_text=button == "Pause" and "Paused" or "Cancelled").wait_for()
    page.wait_for_timeout(500)  # the page has settled on the new status

    for cell, text in ((first, "Stored after the click"), (second, "The last one in flight")):
        store_run(cell, runs[cell.pk], text)
        run_watch.run_stored()  # what the worker does once its transaction is in
        page.get_by_role("table", name="Results matrix").get_by_text(text).wait_for(timeout=10_000)

    progress.get_by_text("2 of 6 cells").wait_for(timeout=10_000)
    assert counts(columns) == ["2", "0", "0", "1"]  # nothing in flight
    page.wait_for_timeout(500)
    assert page.locator("#batch-watch").count() == 0  # nothing left to wait for: the page stops asking
    assert page.evaluate("window.stillTheSamePage") is True
    assert set(batch.cells.values_list("state", flat=True)) == {BatchCell.State.SUCCESS, BatchCell.State.QUEUED}


@pytest.mark.parametrize("button", ["Pause", "Cancel"])
def test_pausing_or_cancelling_a_running_batch_swaps_every_piece_into_its_place(
    page, browser_login, editor, workspace, prompt, button
):
    """New-user trial: htmx logged oobErrorNoTarget for a few cells on Pause/Cancel of a running batch:
    an answer carried a piece out of band that the page had no place for."""
    batch = big_running_batch(workspace, prompt, editor, cases=3, repeats=1)
    first, second = batch.cells.filter(column__position=1).order_by("case__position")[:2]
    runs = {cell.pk: claim(cell) for cell in (first, second)}
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    browser_login(editor)
    page.goto(f"/batches/{batch.pk}/")
    page.evaluate(  # what was carried out of band without a place on the page
        "document.body.addEventListener('htmx:oobErrorNoTarget', e =>"
        " window.noTarget = (window.noTarget || []).concat([e.detail.content.outerHTML.slice(0, 120)]))"
    )
    progress = page.get_by_role("region", name="Progress")

    page.get_by_role("button", name=button).click()
    progress.locator("#batch-status", has_text=button == "Pause" and "Paused" or "Cancelled").wait_for()
    page.wait_for_timeout(500)
    for cell, text in ((first, "Stored after the click"), (second, "The last one in flight")):
        store_run(cell, runs[cell.pk], text)
        run_watch.run_stored()
        page.get_by_role("table", name="Results matrix").get_by_text(text).wait_for(timeout=10_000)
    progress.get_by_text("2 of 6 cells").wait_for(timeout=10_000)
    page.wait_for_timeout(500)

    assert page.evaluate("window.noTarget || []") == []
    # (The held request the click aborts is logged by htmx as htmx:sendAbort: that is not a fault.)
    assert not [text for text in errors if "oob" in text.lower()], errors
