"""In a real browser: a batch above the soft budget asks a second time, stating the calls and the
cost, and the person confirms with the keyboard; Enter in a field never confirms by itself."""

from __future__ import annotations

import os
import re

import pytest
from django.urls import reverse

from prompts_app.models import BatchComparison
from prompts_app.services import batches

pytestmark = pytest.mark.browser
SHOTS = os.environ.get("MAXIMUI_SCREENSHOTS", "")  # a folder: tests save what they looked at there


def choose_two_versions(page, workspace) -> None:
    """Open the new-batch form and pick v1 and v2 as its columns, waiting for their estimate."""
    page.goto(reverse("batch_new", args=[workspace.pk]))
    page.get_by_label("Column 1 (baseline)").select_option(label="Support reply v1 · gpt-4o")
    page.get_by_label("Column 2", exact=True).select_option(label="Support reply v2 · gpt-4o-mini")
    page.wait_for_timeout(700)  # longer than the estimate's 400 ms debounce
    page.locator("#batch-estimate", has_text="6 calls: 3 cases × 2 versions").wait_for()


def test_a_person_confirms_a_batch_above_the_budget_with_the_keyboard(
    page, browser_login, editor, workspace, batch_test_set, two_versions, settings
):
    settings.MAXIMUI_BATCH_TASK_BACKEND = "database"  # queued for a worker; none runs in this test
    batches.set_soft_budget(workspace=workspace, budget_nano=1)
    browser_login(editor)
    choose_two_versions(page, workspace)
    page.get_by_label("Title").press_sequentially("Tone", delay=40)
    page.keyboard.press("Enter")  # submits the first step only

    page.get_by_role("heading", name="Check before it starts").wait_for()
    assert "soft budget" in page.get_by_role("alert").inner_text()
    assert "6 calls" in page.get_by_role("region", name="Check before it starts").inner_text()
    assert not BatchComparison.objects.exists()
    page.get_by_role("button", name="Change the batch").focus()
    page.keyboard.press("Shift+Tab")  # the confirmation comes first in the tab order
    start = page.get_by_role("button", name=re.compile(r"^Start anyway — \$\d"))
    assert start.evaluate("button => button === document.activeElement")
    page.keyboard.press("Enter")

    page.get_by_role("table", name="Progress per column").wait_for()
    batch = BatchComparison.objects.get()
    assert batch.title == "Tone" and batch.cells.count() == 6
    assert [c.label for c in batch.columns.all()] == ["Support reply v1", "Support reply v2"]


def test_columns_picked_after_an_empty_submit_replace_its_error_while_choosing(
    page, browser_login, editor, workspace, batch_test_set, two_versions
):
    browser_login(editor)
    page.goto(reverse("batch_new", args=[workspace.pk]))
    page.get_by_role("button", name="Start batch").click()
    page.get_by_role("alert").filter(has_text="Choose 1 to 8 versions or drafts.").wait_for()
    page.get_by_label("Column 1 (baseline)").select_option(label="Support reply v1 · gpt-4o")
    page.get_by_label("Column 2", exact=True).select_option(label="Support reply v1 · gpt-4o")
    page.wait_for_timeout(700)  # longer than the estimate's 400 ms debounce
    twice = "Choose each version or draft once; use repeats to run one several times."
    page.get_by_role("status").filter(has_text=twice).wait_for()
    assert "Choose 1 to 8" not in page.locator("#batch-form").inner_text()
    page.get_by_label("Column 2", exact=True).select_option(label="Support reply v2 · gpt-4o-mini")
    page.wait_for_timeout(700)
    page.locator("#batch-estimate", has_text="6 calls: 3 cases × 2 versions").wait_for()
    assert twice not in page.locator("#batch-form").inner_text()


def test_a_bad_regular_expression_is_explained_beside_its_field_keeping_what_was_typed(
    page, browser_login, editor, workspace, batch_test_set, two_versions
):
    """New-user trial: the reason was shown at the top of the page, far from the field to fix."""
    browser_login(editor)
    page.goto(reverse("batch_new", args=[workspace.pk]))
    page.get_by_label("Column 1 (baseline)").select_option(label="Support reply v1 · gpt-4o")
    page.wait_for_timeout(700)  # longer than the estimate's 400 ms debounce
    regex = page.get_by_label("Output matches the regular expression")
    regex.press_sequentially("(unclosed", delay=40)
    page.get_by_label("Output contains").press_sequentially("Ada", delay=40)
    page.get_by_role("button", name="Start batch").click()

    regex = page.get_by_label("Output matches the regular expression")
    regex.wait_for()
    said = "Pattern does not compile at position 0: missing ), unterminated subpattern."
    assert regex.input_value() == "(unclosed" and page.get_by_label("Output contains").input_value() == "Ada"
    assert regex.get_attribute("aria-invalid") == "true"
    described = page.locator(f"#{regex.get_attribute('aria-describedby')}")
    assert described.inner_text() == said  # a screen reader reads the reason with the field
    alert = page.get_by_role("alert").filter(has_text=said)
    assert alert.count() == 1
    field = page.locator(".field", has=regex)
    assert field.get_by_role("alert").inner_text() == said  # beside it, not at the top of the form
    assert page.locator("#batch-form > .alert.error").count() == 0
    assert not BatchComparison.objects.exists()


def test_ctrl_enter_starts_a_batch_from_any_field(
    page, browser_login, editor, workspace, batch_test_set, two_versions, settings
):
    """New-user trial: Ctrl+Enter did nothing on the new-batch form (the `?` list promises it on forms)."""
    settings.MAXIMUI_BATCH_TASK_BACKEND = "database"  # queued for a worker; none runs in this test
    browser_login(editor)
    page.goto(reverse("batch_new", args=[workspace.pk]))
    page.get_by_label("Column 1 (baseline)").select_option(label="Support reply v1 · gpt-4o")
    page.wait_for_timeout(700)  # longer than the estimate's 400 ms debounce
    page.get_by_label("Title").press_sequentially("Shortcut", delay=60)
    page.wait_for_timeout(1_000)
    page.keyboard.press("Control+Enter")
    page.get_by_role("table", name="Progress per column").wait_for()
    assert BatchComparison.objects.get().title == "Shortcut"


def test_after_a_submit_with_a_mistake_the_estimate_counts_the_versions_chosen(
    page, browser_login, editor, workspace, batch_test_set, two_versions
):
    """New-user trial of #12: after a submit with a bad regex the estimate read "Choose versions…"."""
    browser_login(editor)
    choose_two_versions(page, workspace)
    page.get_by_label("Output matches the regular expression").press_sequentially("(unclosed", delay=40)
    page.get_by_role("button", name="Start batch").click()

    page.get_by_role("alert").filter(has_text="Pattern does not compile").wait_for()
    page.wait_for_timeout(700)  # anything the page would still fetch for the estimate has come
    estimate = page.locator("#batch-estimate").get_by_role("status")
    assert "6 calls: 3 cases × 2 versions" in estimate.inner_text()
    assert "Choose versions" not in estimate.inner_text()
    if SHOTS:
        page.locator("#batch-form").screenshot(path=os.path.join(SHOTS, "batch-new-estimate.png"))
    assert not BatchComparison.objects.exists()


def test_the_estimate_follows_the_versions_while_calls_at_once_is_out_of_range(
    page, browser_login, editor, workspace, batch_test_set, two_versions
):
    """New-user trial: with 0 or 99 in "Calls at once" the browser's own check of that field stopped
    every estimate, and the form kept "Choose versions…" with three versions chosen."""
    browser_login(editor)
    page.goto(reverse("batch_new", args=[workspace.pk]))
    calls = page.get_by_label("Calls at once")
    calls.fill("")
    calls.press_sequentially("99", delay=60)
    page.get_by_label("Column 1 (baseline)").select_option(label="Support reply v1 · gpt-4o")
    page.get_by_label("Column 2", exact=True).select_option(label="Support reply v2 · gpt-4o-mini")
    page.wait_for_timeout(700)  # longer than the estimate's 400 ms debounce
    page.locator("#batch-estimate", has_text="6 calls: 3 cases × 2 versions").wait_for(timeout=5000)
    assert calls.input_value() == "99"
