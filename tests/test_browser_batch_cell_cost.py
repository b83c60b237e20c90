"""In a real browser: a matrix cell's cost is shown rounded, and its exact value is there on hover and
on keyboard focus, and for a screen reader (new-user trial: "$0.00123, but what exactly?")."""

from __future__ import annotations

import pytest

from prompts_app.models import Run
from tests.batch_seed import seed

pytestmark = pytest.mark.browser


def test_a_person_reads_a_cells_exact_cost_by_hovering_or_tabbing_to_it(
    page, browser_login, viewer, workspace, prompt, editor
):
    batch = seed(workspace, prompt, editor, cases=1, failing={})
    Run.objects.filter(batch_comparison=batch, version__number=1).update(cost_nano=1_234_567)
    browser_login(viewer)
    page.goto(f"/batches/{batch.pk}/")
    matrix = page.get_by_role("table", name="Results matrix")
    cost = matrix.locator("data.cell-cost", has_text="$0.00123").first
    exact = cost.locator(".visually-hidden")
    assert cost.is_visible() and exact.bounding_box()["width"] <= 1  # rounded on the page, exact read out
    assert cost.get_attribute("title") == "Exactly $0.001234567"
    assert cost.get_attribute("value") == "0.001234567"

    cost.hover()
    page.wait_for_timeout(300)
    assert cost.inner_text() == "$0.00123 (exactly $0.001234567)" and exact.bounding_box()["width"] > 20
    page.mouse.move(0, 0)
    page.wait_for_timeout(300)
    assert exact.bounding_box()["width"] <= 1

    page.get_by_label("Search").focus()
    for _ in range(40):  # a keyboard user tabs on into the matrix, to the cell's cost
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('cell-cost')"):
            break
    focused = page.locator("data.cell-cost:focus")
    assert focused.inner_text() == "$0.00123 (exactly $0.001234567)"
    assert focused.locator(".visually-hidden").bounding_box()["width"] > 20
