"""In a real browser: the results matrix shows what people typed as they typed it (new-user trial: every
`th` of a data table was in capitals, so a case's variables and a version's label read "Q=QUESTION 1",
"1. V1"). Fixed column titles keep their small capitals."""

from __future__ import annotations

import pytest

from prompts_app.models import BatchColumn
from tests.test_batch_matrix_live import big_running_batch

pytestmark = pytest.mark.browser


def test_case_values_and_version_labels_appear_as_typed(page, browser_login, editor, workspace, prompt):
    batch = big_running_batch(workspace, prompt, editor, cases=2, repeats=1)
    BatchColumn.objects.filter(batch=batch, position=1).update(label="Reply v1 (McDonald's tone)")
    browser_login(editor)
    page.goto(f"/batches/{batch.pk}/")
    matrix = page.get_by_role("table", name="Results matrix")

    assert (
        matrix.get_by_role("columnheader", name="1. Reply v1 (McDonald's tone)")
        .inner_text()
        .startswith("1. Reply v1 (McDonald's tone)")
    )
    assert "q=question 1" in matrix.get_by_role("rowheader").first.inner_text()
    assert matrix.get_by_role("columnheader", name="Case").inner_text() == "CASE"  # a fixed title
    progress = page.get_by_role("table", name="Progress per column")
    assert progress.get_by_role("rowheader").first.inner_text() == "1. Reply v1 (McDonald's tone)"
