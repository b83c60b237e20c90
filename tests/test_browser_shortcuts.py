"""The keyboard: `?` lists every shortcut, `g` then a letter moves between the main pages."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_question_mark_lists_the_shortcuts_and_g_h_opens_history(page, browser_login, editor, workspace):
    browser_login(editor)
    page.goto("/")
    page.keyboard.press("?")
    dialog = page.locator("dialog#shortcuts")
    dialog.wait_for(state="visible")
    text = dialog.inner_text()
    for shortcut in ("Show this list", "Go to run history", "Go to costs", "diff baseline", "create the version"):
        assert shortcut in text
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")

    page.keyboard.press("g")
    page.keyboard.press("h")
    page.wait_for_url("**/runs/")
    page.keyboard.press("g")
    page.keyboard.press("c")
    page.wait_for_url("**/costs/")


def test_typing_a_question_mark_in_a_field_does_not_open_the_list(page, browser_login, editor, workspace):
    browser_login(editor)
    page.goto("/runs/")
    page.fill("input[name=q]", "")
    page.locator("input[name=q]").type("why?")
    assert page.input_value("input[name=q]") == "why?"
    assert not page.locator("dialog#shortcuts").is_visible()


def test_each_shortcuts_keys_read_on_one_line(page, browser_login, editor, workspace):
    """New-user trial: "g then w" and "Ctrl / ⌘ + Enter" broke over two lines in the list."""
    browser_login(editor)
    page.goto("/")
    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    dialog.wait_for(state="visible")
    rows = dialog.locator("tr")
    lines = {}
    for n in range(rows.count()):
        tops = [round(key.bounding_box()["y"]) for key in rows.nth(n).locator("td:first-child kbd").all()]
        lines[rows.nth(n).locator("td").first.inner_text()] = max(tops) - min(tops)
    assert len(lines) == 7 and all(drop < 5 for drop in lines.values()), lines  # every key of a row at one height
