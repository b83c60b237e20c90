"""In a real browser, with a real task worker: import a CSV test set, start a 2-version batch
with two checks, watch its progress, open the matrix, filter to failures, export."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from prompts_app.models import BatchComparison
from tests.conftest import seed_fake, start_worker

pytestmark = pytest.mark.browser

CSV = "company,input\n" + "".join(
    f"{company},{question}\n"
    for company, question in [
        ("Acme", "Can I get a refund?"),
        ("Initech", "Where is my order?"),
        ("Globex", "I want a refund now"),
        ("Umbrella", "Hello"),
        ("Hooli", "Refund please"),
        ("Stark", "What are your opening hours?"),
    ]
)
TYPING_DELAY_MS = 40


def test_a_person_compares_two_versions_on_an_imported_test_set(
    page, browser_login, editor, workspace, fake_maxim, settings, tmp_path
):
    settings.MAXIMUI_BATCH_TASK_BACKEND = "database"  # the batch goes to the worker below, not the request
    fake_maxim.run_delay = 0.5
    seed_fake(fake_maxim, workspace, ["gpt-4o", "gpt-4o-mini"])
    upload = tmp_path / "support.csv"
    upload.write_text(CSV, encoding="utf-8")
    worker = start_worker()
    try:
        browser_login(editor)
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Test sets").click()
        page.get_by_role("link", name="Open test sets").click()
        page.get_by_label("Name").press_sequentially("Support", delay=TYPING_DELAY_MS)
        page.get_by_role("button", name="Create test set").click()
        page.get_by_role("link", name="Import CSV or JSONL").click()
        with page.expect_file_chooser() as chooser:
            page.get_by_label("CSV or JSONL file").click()
        chooser.value.set_files(str(upload))
        page.get_by_role("button", name="Upload and preview").click()
        page.get_by_role("button", name="Import 6 cases").click()
        page.get_by_role("table", name="Cases in Support").wait_for()

        page.get_by_role("link", name="Compare versions on this set").click()
        page.get_by_label("Column 1 (baseline)").select_option(label="Support reply v1 · gpt-4o")
        page.get_by_label("Column 2", exact=True).select_option(label="Support reply v2 · gpt-4o-mini")
        page.get_by_label("Output contains").press_sequentially("refund", delay=TYPING_DELAY_MS)
        page.get_by_label("At most this many characters").press_sequentially("30", delay=TYPING_DELAY_MS)
        page.keyboard.press("Tab")  # leaving the field is a change: the estimate follows
        page.wait_for_timeout(700)  # longer than the estimate's 400 ms debounce
        page.locator("#batch-estimate", has_text="12 calls").wait_for()
        page.get_by_role("button", name="Start batch").click()

        progress = page.get_by_role("table", name="Progress per column")
        progress.wait_for()
        assert "Running" in page.locator("#batch-status").inner_text()  # the worker is still sending
        page.locator("#batch-status", has_text="Done").wait_for(timeout=30_000)
        assert "12 of 12 cells" in page.get_by_role("region", name="Progress").inner_text()
        # Pushed with the progress (one held request, no timer), without "Show the latest results".
        summary = page.get_by_role("table", name="Summary per column").inner_text()
        assert summary.count("3/6") == 2  # "refund" (any case) is in three of the six echoed questions
    finally:
        worker.kill()
        worker.wait()

    # Unfiltered and unsorted, the matrix kept up as the cells came in: nothing to show again (new-user
    # re-trial: "Show the latest results" there changed nothing).
    assert not page.get_by_role("link", name="Show the latest results").is_visible()
    matrix = page.get_by_role("table", name="Results matrix")
    assert matrix.locator("tbody tr").count() == 6

    page.get_by_label("Failed checks only").check()
    page.wait_for_timeout(500)
    page.locator("#matrix-count", has_text="3 cases").wait_for()
    assert "failed=1" in page.url
    assert "Can I get a refund?" not in matrix.inner_text()

    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert len(rows) == 12 and [row["label"] for row in rows[:2]] == ["Support reply v1", "Support reply v2"]
    assert BatchComparison.objects.get().status == BatchComparison.Status.DONE
