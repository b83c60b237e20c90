"""In a real browser, what the new-user trial of issue #12 found: history names a run's batch and filters
to one batch; the batch's chart keeps "0%" and "$0.00" apart. (The new-batch form's estimate after a
submit with a mistake: tests/test_batch_start_browser.py.)"""

from __future__ import annotations

import os

import pytest
from django.urls import reverse

from prompts_app.models import BatchComparison
from tests.batch_seed import seed
from tests.conftest import make_run

pytestmark = pytest.mark.browser
NAME = "Tone of the spring support replies, second try"
SHOTS = os.environ.get("MAXIMUI_SCREENSHOTS", "")  # a folder: the tests save what they looked at there


def titled(batch: BatchComparison, title: str) -> BatchComparison:
    batch.title = title
    batch.save(update_fields=["title"])
    return batch


def test_a_person_finds_a_batchs_runs_in_history_and_clears_the_filter(page, browser_login, editor, workspace, prompt):
    batch = titled(seed(workspace, prompt, editor, cases=2, failing={}), NAME)
    other = titled(seed(workspace, prompt, editor, cases=1, failing={}), "Short one")
    make_run(prompt.versions.get(number=1), editor)  # a run of no batch
    browser_login(editor)
    page.goto(reverse("batch_detail", args=[batch.pk]))
    page.get_by_role("link", name="See these runs in History").click()

    runs = page.get_by_role("table", name="Runs matching the filters")
    runs.wait_for()
    assert runs.locator("tbody tr").count() == 4  # the batch's 4 runs only
    filters = page.locator("#history-filters")
    assert f"Only the runs of batch {NAME}." in filters.inner_text()
    label = runs.get_by_role("link", name=f"Batch {NAME}: show only its runs").first
    assert label.inner_text() == "Tone of the spring support…" and label.get_attribute("title") == f"Batch: {NAME}"
    assert "4 runs" in page.locator("#history-totals").inner_text()

    page.get_by_label("Status:").select_option(label="Succeeded")  # another filter keeps the batch's
    page.wait_for_timeout(900)
    assert "status=success" in page.url and f"batch={batch.pk}" in page.url
    assert page.get_by_role("table", name="Runs matching the filters").locator("tbody tr").count() == 4

    page.get_by_label("Text:").press_sequentially("Answer", delay=80)  # typed filters swap the table, not the link
    page.wait_for_timeout(1_200)  # longer than the text box's 500 ms pause
    page.get_by_role("link", name="Remove the batch filter").click()
    page.wait_for_url(lambda url: "batch=" not in url)
    # The trial: once the filters had changed, the link (drawn with the page) dropped all of them.
    assert "status=success" in page.url and "q=Answer" in page.url
    runs = page.get_by_role("table", name="Runs matching the filters")
    # Both batches' 6 runs answered "Answer…"; the run of no batch did not.
    assert runs.locator("tbody tr").count() == 6 and "Only the runs of batch" not in page.content()
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, "history-all.png"), full_page=True)
    runs.get_by_role("link", name="Batch Short one: show only its runs").first.click()
    page.wait_for_url(lambda url: f"batch={other.pk}" in url)
    assert page.get_by_role("table", name="Runs matching the filters").locator("tbody tr").count() == 2
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, "history-batch.png"), full_page=True)


def boxes_apart(page, first: str, second: str, margin: float = 3) -> bool:
    """Whether the two chart labels' drawn boxes stay `margin` px apart."""
    return page.evaluate(
        """([first, second, margin]) => {
            const box = (text) => [...document.querySelectorAll("#batch-summary svg text")]
                .find((t) => t.textContent === text).getBoundingClientRect();
            const a = box(first), b = box(second);
            return a.right + margin <= b.left || b.right + margin <= a.left
                || a.bottom + margin <= b.top || b.bottom + margin <= a.top;
        }""",
        [first, second, margin],
    )


def test_the_charts_origin_labels_do_not_touch(page, browser_login, viewer, workspace, prompt, editor):
    batch = seed(workspace, prompt, editor, cases=4, failing={1: {1}, 2: {1, 2}})
    batch.checks = [{"type": "contains", "value": "Answer"}]
    batch.save(update_fields=["checks"])
    browser_login(viewer)
    page.goto(reverse("batch_detail", args=[batch.pk]))
    chart = page.get_by_role("img", name="Cost per 1,000 runs against pass rate: 1. Reply v1")
    chart.wait_for()
    if SHOTS:
        chart.screenshot(path=os.path.join(SHOTS, "batch-chart.png"))
    assert boxes_apart(page, "0%", "$0.00")
