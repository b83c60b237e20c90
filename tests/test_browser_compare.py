"""One journey in headless Chromium: pick three versions, type a two-turn input, run them at
once, and watch the two outputs and the failing column's error arrive without a page reload."""

from __future__ import annotations

import os

import pytest

from prompts_app.models import Comparison, Run
from tests.test_compare_support import file_db, seed_fake  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def live_server_on_file_db(live_server, file_db):
    return live_server


def test_three_columns_run_together_and_one_failure_stays_in_its_column(
    live_server_on_file_db, page, browser_login, fake_maxim, workspace, editor
):
    # file_db: pool threads write runs while the live server reads them (see its docstring).
    fake_maxim.run_delay = 1.5  # long enough to see the failed column finish first
    good, mini, bad = seed_fake(fake_maxim, workspace, ["gpt-4o", "gpt-4o-mini", "fail-401"])
    browser_login(editor)
    page.goto(f"/compare/new/?workspace={workspace.pk}")
    for version in (good, mini, bad):
        page.check(f"input[name=columns][value=v{version.pk}]")
    page.wait_for_selector("#compare-inputs input[name=var__company]")  # the inputs follow the columns
    page.wait_for_load_state("networkidle")
    page.fill("#id_turn-0-content", "Where is my order?")
    page.fill("#compare-inputs input[name=var__company]", "Acme")
    page.click("#compare-inputs button[value='turn:add-turn']")  # redraws the inputs, keeping them
    page.wait_for_selector("#id_turn-1-content")
    assert page.input_value("#id_turn-0-content") == "Where is my order?"
    assert page.input_value("#compare-inputs input[name=var__company]") == "Acme"
    assert page.input_value("#id_turn-1-role") == "assistant"  # turns alternate by default
    page.fill("#id_turn-1-content", "It shipped on Monday.")
    page.click("#compare-inputs button[value='turn:add-turn']")
    page.wait_for_selector("#id_turn-2-content")
    assert page.input_value("#id_turn-2-role") == "user"
    page.fill("#id_turn-2-content", "Where is my parcel?")
    page.click("#compare-inputs button[value='turn:remove-turn-0']")  # the first turn goes, the rest stay
    page.wait_for_selector("#id_turn-2-content", state="detached")
    assert page.input_value("#id_turn-0-content") == "It shipped on Monday."
    assert page.input_value("#id_turn-0-role") == "assistant"
    assert page.input_value("#id_turn-1-content") == "Where is my parcel?"
    assert page.input_value("#compare-inputs input[name=var__company]") == "Acme"
    os.makedirs("/tmp/shots", exist_ok=True)
    page.screenshot(path="/tmp/shots/compare-new.png", full_page=True)
    page.screenshot(path="/tmp/shots/compare-turns.png", full_page=True)
    page.press("#id_turn-1-content", "Control+Enter")

    page.wait_for_url("**/compare/*/")
    page.evaluate("window.__samePage = true")
    comparison = Comparison.objects.get()
    by_version = {c.version_id: c for c in comparison.columns.all()}
    columns = [by_version[v.pk] for v in (good, mini, bad)]
    assert page.locator(".compare-column").count() == 3
    page.wait_for_selector(f"#column-{columns[2].pk} .alert.error")
    # Each card shows its own result as soon as it is in, without waiting for the others.
    assert page.locator(f"#column-{columns[0].pk}.is-pending").count() == 1
    assert page.locator(f"#column-{columns[1].pk}.is-pending").count() == 1
    page.wait_for_selector(f"#column-{columns[0].pk} pre.output", timeout=10_000)
    page.wait_for_selector(f"#column-{columns[1].pk} pre.output")

    assert page.locator(f"#column-{columns[0].pk} pre.output").inner_text() == "Echo: Where is my parcel?"
    assert "rejected the API key" in page.locator(f"#column-{columns[2].pk} .alert.error").inner_text()
    assert page.locator(f"#column-{columns[1].pk} .badge.success").count() == 1
    assert page.evaluate("window.__samePage") is True  # the results came in without a reload
    page.wait_for_selector("#compare-diff pre.diff")  # once all are done, outputs diffed against v1
    assert "Echo: Where is my parcel?" in page.locator("#compare-diff").inner_text()
    assert page.locator(f'#compare-diff [data-column="{columns[1].pk}"] .badge.ok').inner_text() == "same output"
    page.keyboard.press("b")  # "b" then a column number picks the baseline (static/js/compare.js)
    page.keyboard.press("2")
    page.wait_for_selector("#compare-diff h3:has-text('vs Support reply v2')")
    assert page.evaluate("window.__samePage") is True
    page.screenshot(path="/tmp/shots/compare.png", full_page=True)

    page.click("nav.mainnav a:has-text('Compare')")
    page.wait_for_selector("#comparison-list")
    page.screenshot(path="/tmp/shots/compare-list.png")

    statuses = sorted(Run.objects.filter(comparison=comparison).values_list("status", flat=True))
    assert statuses == [Run.Status.FAILED, Run.Status.SUCCESS, Run.Status.SUCCESS]
    sent = fake_maxim.requests_to("/v1/prompts/run")
    assert len(sent) == 3
    assert all(
        [(m["role"], m["content"]) for m in request.body["messages"][1:]]
        == [("assistant", "It shipped on Monday."), ("user", "Where is my parcel?")]
        for request in sent
    )
