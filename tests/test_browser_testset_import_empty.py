"""In a real browser: a person imports a CSV whose row 7 has no complaint; the preview says so by the
row and in a count, and the person chooses to import only the complete rows."""

from __future__ import annotations

import pytest
from django.urls import reverse

from prompts_app.services import testsets as services

pytestmark = pytest.mark.browser


def test_a_person_sees_the_empty_complaint_and_imports_only_the_complete_rows(
    page, browser_login, editor, workspace, tmp_path
):
    test_set = services.create_test_set(workspace=workspace, name="Complaints", description="", user=editor)
    rows = [f"Customer {n},Complaint {n}" for n in range(1, 11)]
    rows[6] = "Customer 7,"  # data row 7, line 8 of the file
    upload = tmp_path / "complaints.csv"
    upload.write_text("customer,complaint\n" + "\n".join(rows) + "\n", encoding="utf-8")
    browser_login(editor)
    page.goto(reverse("testset_import", args=[test_set.pk]))
    with page.expect_file_chooser() as chooser:
        page.get_by_label("CSV or JSONL file").click()
    chooser.value.set_files(str(upload))
    page.get_by_role("button", name="Upload and preview").click()

    warning = page.get_by_role("status").filter(has_text="leaves a variable empty")
    warning.wait_for()
    assert "1 row leaves a variable empty" in warning.inner_text()
    assert "Line 8: complaint is empty" in warning.inner_text()
    row = page.get_by_role("table", name="First cases of the file").get_by_role("row", name="Customer 7", exact=False)
    assert "complaint is empty" in row.inner_text() and "Customer 7" in row.inner_text()
    assert page.get_by_role("button", name="Import all 10 cases anyway").is_visible()
    assert test_set.cases.count() == 0

    page.get_by_role("button", name="Import only the 9 complete rows").click()
    page.get_by_role("table", name="Cases in Complaints").wait_for()
    assert page.get_by_text("Imported 9 cases from complaints.csv; skipped 1 row with an empty variable.").is_visible()
    assert "Customer 7" not in [c.variables["customer"] for c in test_set.cases.all()]
    assert test_set.cases.count() == 9
