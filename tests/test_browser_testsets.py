"""In a real browser: create a test set, import a CSV through the file chooser, read the preview,
confirm, edit a case in its row, and export the set."""

from __future__ import annotations

import pytest

from prompts_app.models import TestSet

pytestmark = pytest.mark.browser

CSV = (
    "name,company,expected_output,input\n"
    "Ada,Acme,Hello Ada from Acme,Where is my order?\n"
    "Bob,Initech,Hello Bob from Initech,\n"
    "Cy,Globex,Hello Cy from Globex " + "x" * 400 + ",Can I get a refund?\n"
)
TYPING_DELAY_MS = 60


def test_a_person_builds_a_test_set_from_a_csv_edits_a_case_and_exports(page, browser_login, editor, version, tmp_path):
    upload = tmp_path / "greetings.csv"
    upload.write_text(CSV, encoding="utf-8")
    browser_login(editor)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Test sets").click()
    page.get_by_role("link", name="Open test sets").click()
    page.get_by_label("Name").press_sequentially("Greetings", delay=TYPING_DELAY_MS)
    page.get_by_label("Description").press_sequentially("First contact", delay=TYPING_DELAY_MS)
    page.get_by_role("button", name="Create test set").click()
    page.get_by_role("heading", name="Greetings").wait_for()
    assert page.get_by_text("No cases yet.").is_visible()

    page.get_by_role("link", name="Import CSV or JSONL").click()
    with page.expect_file_chooser() as chooser:
        page.get_by_label("CSV or JSONL file").click()
    chooser.value.set_files(str(upload))
    page.get_by_label("Check columns against a prompt version").select_option(label=str(version))
    page.get_by_role("button", name="Upload and preview").click()

    preview = page.get_by_role("table", name="First cases of the file")
    preview.wait_for()
    assert preview.locator("tbody tr").count() == 3
    assert "Where is my order?" in preview.inner_text() and "Hello Cy from Globex" in preview.inner_text()
    assert page.get_by_text("CSV: 3 cases, variables name, company.").is_visible()
    assert TestSet.objects.get(name="Greetings").cases.count() == 0  # nothing saved before confirming
    page.screenshot(path="/tmp/shots/testset_preview.png", full_page=True)
    page.get_by_role("button", name="Import 3 cases").click()

    cases = page.get_by_role("table", name="Cases in Greetings")
    cases.wait_for()
    assert page.get_by_role("status").filter(has_text="Imported 3 cases from greetings.csv.").is_visible()
    assert cases.locator("tbody tr").count() == 3
    assert [h.strip() for h in cases.locator("thead th").all_inner_texts()][:3] == [
        "#",
        "name",
        "company",
    ]  # variable names as typed
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # long text wraps

    page.evaluate("window.stillTheSamePage = true")  # an inline edit must not reload the page
    page.get_by_role("link", name="Edit case 2").click()
    form = page.get_by_role("form", name="Edit case 2")
    company = form.get_by_label("company", exact=True)
    company.wait_for()
    company.fill("")
    company.press_sequentially("Initrode", delay=TYPING_DELAY_MS)
    expected = form.get_by_label("Expected output")
    expected.fill("")
    expected.press_sequentially("Hello Bob from Initrode", delay=TYPING_DELAY_MS)
    page.wait_for_timeout(400)
    page.screenshot(path="/tmp/shots/testset_edit.png", full_page=True)
    expected.press("Control+Enter")
    form.wait_for(state="detached")
    row = cases.get_by_role("row").filter(has_text="Bob")
    assert "Initrode" in row.inner_text() and "Hello Bob from Initrode" in row.inner_text()
    assert page.evaluate("window.stillTheSamePage") is True
    assert TestSet.objects.get(name="Greetings").cases.get(position=2).variables == {
        "name": "Bob",
        "company": "Initrode",
    }

    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    exported = download.value.path().read_text(encoding="utf-8")
    assert exported.splitlines()[0] == "name,company,expected_output,turns"
    assert "Bob,Initrode,Hello Bob from Initrode," in exported
    assert "Ada,Acme,Hello Ada from Acme,Where is my order?" in exported
    page.screenshot(path="/tmp/shots/testset_detail.png", full_page=True)
