"""In a real browser, on a finished batch: find the cases where the new version fails and the old one
passes, sort by a column's latency, open a cell's word diff against the baseline and its whole output,
and compare the batch with an earlier one of the same test set."""

from __future__ import annotations

import pytest

from tests.batch_seed import seed

pytestmark = pytest.mark.browser
LONG = "The parcel is on its way. " * 40  # longer than the matrix shows


def test_a_person_finds_what_the_new_version_broke(page, browser_login, viewer, workspace, prompt, editor):
    outputs = {(1, 3): "Your refund was sent on Monday.", (2, 3): "Your refund was sent on Friday.", (2, 7): LONG}
    earlier = seed(workspace, prompt, editor, cases=30, failing={2: {7}})
    batch = seed(workspace, prompt, editor, cases=30, failing={2: {3, 7}}, outputs=outputs, test_set=earlier.test_set)
    browser_login(viewer)
    page.goto(f"/batches/{batch.pk}/")
    matrix = page.get_by_role("table", name="Results matrix")
    assert matrix.locator("tbody tr").count() == 25  # the first page of 30 cases

    page.get_by_label("Fails here, passes in the baseline").select_option(label="In 2. Reply v2")
    page.locator("#matrix-count", has_text="2 cases").wait_for()
    assert "regressed=2" in page.url
    assert [t.strip()[:3] for t in matrix.locator("tbody th").all_inner_texts()] == ["#3\n", "#7\n"]

    page.get_by_role("link", name="Diff case #3, column 2 against the baseline").click()
    diff = page.get_by_label("Case #3, column 2 against the baseline, column 1")
    diff.wait_for()
    assert diff.locator("del").inner_text() == "Monday." and diff.locator("ins").inner_text() == "Friday."
    page.get_by_role("link", name="Output of case #3, column 2", exact=True).click()  # hides the diff again
    page.get_by_role("link", name="Diff case #3, column 2 against the baseline").wait_for()

    page.get_by_role("link", name="Full output of case #7, column 2 (1,040 characters)").click()
    page.get_by_role("link", name="Output of case #7, column 2", exact=True).wait_for()
    assert LONG.strip() in matrix.inner_text()

    page.get_by_label("Fails here, passes in the baseline").select_option(label="Any case")
    page.get_by_label("Sort by").select_option(label="1. Reply v1: latency")
    page.get_by_label("Order").select_option(label="Highest first")
    page.locator("#matrix-count", has_text="30 cases").wait_for()
    page.wait_for_url("**order=desc**")
    assert matrix.locator("tbody th").first.inner_text().startswith("#30")
    page.get_by_role("link", name="Next →").click()
    page.wait_for_url("**page=2**")
    assert page.get_by_role("table", name="Results matrix").locator("tbody th").first.inner_text().startswith("#5")

    page.get_by_role("link", name="Compare with another batch of this test set").click()
    page.get_by_label("Compare with").select_option(str(earlier.pk))
    page.get_by_role("button", name="Compare").click()
    broke = page.get_by_role("table", name="Reply v2: from pass to fail")
    assert broke.locator("tbody th").all_inner_texts() == ["#3"]
    assert "None." in page.get_by_role("table", name="Reply v2: from fail to pass").inner_text()


def test_b_then_a_number_picks_the_baseline_column_from_the_keyboard(
    page, browser_login, viewer, workspace, prompt, editor
):
    """The shortcut the ? dialog lists for comparisons works on a batch's page too (trial: it did nothing)."""
    batch = seed(workspace, prompt, editor, cases=3, failing={})
    browser_login(viewer)
    page.goto(f"/batches/{batch.pk}/")
    page.keyboard.press("?")
    assert page.get_by_role("dialog").get_by_text("Comparison or batch: use that column as the diff baseline").is_visible()
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    page.wait_for_timeout(400)  # a pause between the two keys, as people type
    page.keyboard.press("2")
    page.wait_for_url("**baseline=2**")
    header = page.get_by_role("table", name="Results matrix").get_by_role("columnheader", name="2. Reply v2 (baseline)")
    header.wait_for()
    assert page.get_by_label("Baseline column").input_value() == "2"
