"""In a real browser, with a real task worker and a slow Maxim: a person watching a running batch
sees its matrix's cells fill in without reloading, with the baseline they chose kept."""

from __future__ import annotations

import pytest

from prompts_app.models import TestCase, TestSet
from prompts_app.services import batches, run_watch
from prompts_app.services.batches import ColumnChoice
from tests.conftest import seed_fake, start_worker
from tests.test_batch_matrix_live import big_running_batch, claim, store_run

pytestmark = pytest.mark.browser


def test_a_person_sees_the_matrix_fill_in_while_the_batch_runs(
    page, browser_login, viewer, editor, workspace, fake_maxim, settings
):
    settings.MAXIMUI_BATCH_TASK_BACKEND = "database"  # the batch goes to the worker below, not the request
    fake_maxim.run_delay = 0.6
    versions = seed_fake(fake_maxim, workspace, ["gpt-4o", "gpt-4o-mini"])
    test_set = TestSet.objects.create(workspace=workspace, name="Questions", variable_names=["company"])
    for n in range(1, 5):
        turns = [{"role": "user", "content": f"Question {n}"}]
        TestCase.objects.create(test_set=test_set, position=n, variables={"company": "Acme"}, turns=turns)
    batch = batches.start_batch(
        workspace=workspace, test_set=test_set, columns=[ColumnChoice(v) for v in versions], user=editor, concurrency=2
    )
    browser_login(viewer)
    page.goto(f"/batches/{batch.pk}/")
    matrix = page.get_by_role("table", name="Results matrix")
    assert "Echo" not in matrix.inner_text()  # nothing sent yet: no worker
    page.get_by_label("Baseline column").select_option(label="2. Support reply v2")
    page.wait_for_url("**baseline=2**")
    page.evaluate("window.stillTheSamePage = true")  # gone if anything reloads the page
    worker = start_worker()
    try:
        page.wait_for_timeout(1500)  # longer than any debounce: nothing here waits on the person
        # Column 1's cells get a diff against the chosen baseline, column 2: drawn as they are stored.
        diff = page.get_by_role("link", name="Diff case #4, column 1 against the baseline")
        diff.wait_for(timeout=40_000)
        page.locator("#batch-status", has_text="Done").wait_for(timeout=30_000)
        page.wait_for_timeout(500)  # the last push's cells are swapped in with the status
        text = matrix.inner_text()
        assert all(f"Echo: Question {n}" in text for n in range(1, 5)) and "Running" not in text
    finally:
        worker.kill()
        worker.wait()
    assert page.evaluate("window.stillTheSamePage") is True and "baseline=2" in page.url
    assert page.get_by_label("Baseline column").input_value() == "2"
    diff.click()  # an open diff of a finished cell, as on a finished batch's page
    page.get_by_label("Case #4, column 1 against the baseline, column 2").wait_for()


def test_a_person_on_page_3_sees_every_cell_of_it_fill_in(page, browser_login, viewer, editor, workspace, prompt):
    """250 unfinished cells a page (25 cases x 2 columns x 5 repeats), more than the 200 a page once
    watched: the last one of page 3, sorted, fills in, and so does the next one of its row."""
    batch = big_running_batch(workspace, prompt, editor, cases=75)
    browser_login(viewer)
    page.goto(f"/batches/{batch.pk}/")
    page.get_by_label("Sort by").select_option(label="1. v1: latency")
    page.wait_for_url("**sort=1.latency**")
    for _ in range(2):
        page.get_by_role("link", name="Next →").click()
        page.wait_for_timeout(300)
    page.get_by_text("Page 3 of 3").wait_for()
    page.evaluate("window.stillTheSamePage = true")
    row = page.get_by_role("row", name="#75")
    last, before = (batch.cells.get(case__position=75, column__position=2, repeat=r) for r in (5, 4))
    for cell, text in ((last, "The last answer of page 3"), (before, "The one before it")):
        run = claim(cell)
        run_watch.run_stored()  # what a worker does once its transaction is in
        row.locator(f"#cell-{cell.pk}", has_text="Running").wait_for(timeout=10_000)
        store_run(cell, run, text)
        run_watch.run_stored()
        row.get_by_text(text).wait_for(timeout=10_000)
    assert page.locator(f"#shown-{last.case_id}").get_attribute("value").endswith("qqqss")
    assert page.evaluate("window.stillTheSamePage") is True and "page=3" in page.url


def test_a_lost_connection_pauses_the_live_updates_and_they_come_back(
    page, browser_login, viewer, editor, workspace, prompt
):
    """The page's held request fails (a server restarting, a network blip): the page says so and
    asks again, instead of showing a running batch that never moves (a failed answer ended the
    chain of held requests without a word)."""
    batch = big_running_batch(workspace, prompt, editor, cases=3, repeats=1)
    browser_login(viewer)
    lost = []

    def blip(route):
        if lost:
            route.continue_()
        else:
            lost.append(route.request.url)
            route.abort("connectionreset")

    page.route("**/watch/**", blip)
    page.goto(f"/batches/{batch.pk}/")
    note = page.get_by_role("status").filter(has_text="trying again")
    note.wait_for()
    page.wait_for_timeout(1500)  # longer than the first pause: asked again, and now held
    cell = batch.cells.get(case__position=2, column__position=1)
    run = claim(cell)
    store_run(cell, run, "Stored after the blip")
    run_watch.run_stored()
    page.get_by_role("table", name="Results matrix").get_by_text("Stored after the blip").wait_for()
    assert len(lost) == 1 and not note.is_visible()
