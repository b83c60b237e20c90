"""One journey in headless Chromium: pick three versions, type a two-turn input, run them at
once, and watch the two outputs and the failing column's error arrive without a page reload."""

from __future__ import annotations

import os
import re
import time

import pytest
from playwright.sync_api import expect

from prompts_app.models import Comparison, Run
from prompts_app.services import compare
from tests.conftest import seed_fake

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def wait_until(page, condition, seconds: float = 5.0) -> None:
    """Let the page work until `condition()` holds (a route recorded a request), at most `seconds`."""
    for _ in range(int(seconds * 10)):
        if condition():
            return
        page.wait_for_timeout(100)


@pytest.fixture
def live_server_on_file_db(live_server, file_db):
    return live_server


def option_label(version) -> str:
    return f"{version.prompt.name} v{version.number} — {version.model_name} · {version.provider}"


def add_column(page, version, number: int) -> None:
    """Pick a version in "Add column" and press the button, as a person would."""
    page.get_by_label("Add column").select_option(label=option_label(version))
    page.get_by_role("button", name="Add column", exact=True).click()
    rows = page.get_by_role("list", name="Chosen columns, in order").get_by_role("listitem")
    rows.nth(number - 1).wait_for()


def test_three_columns_run_together_and_one_failure_stays_in_its_column(
    live_server_on_file_db, page, browser_login, fake_maxim, workspace, editor
):
    # file_db: pool threads write runs while the live server reads them (see its docstring).
    # Long enough that the failed column is surely shown before the others, even on a busy machine.
    fake_maxim.run_delay = 4.0
    good, mini, bad = seed_fake(fake_maxim, workspace, ["gpt-4o", "gpt-4o-mini", "fail-401"])
    browser_login(editor)
    page.goto(f"/compare/new/?workspace={workspace.pk}")
    for number, version in enumerate((good, mini, bad), 1):
        add_column(page, version, number)
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
    page.wait_for_selector("#compare-diff h3:has-text('vs 2. Support reply v2')")  # column 2 is now the baseline
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


def chosen_columns(page) -> list[str]:
    rows = page.get_by_role("list", name="Chosen columns, in order").get_by_role("listitem")
    return [" ".join(text.split()) for text in rows.locator(".column-name strong").all_inner_texts()]


def test_columns_in_the_chosen_order_with_a_version_twice_and_the_baseline_kept(
    live_server_on_file_db, page, browser_login, fake_maxim, workspace, editor, monkeypatch
):
    from prompts_app.views import compare as compare_views

    first, second = seed_fake(fake_maxim, workspace, ["gpt-4o", "gpt-4o-mini"])
    check_columns = compare_views._check_posted_columns

    def slow_check(request):  # a slow server: each column change stays in flight while the person types on
        if "/columns/" in request.path:
            time.sleep(0.6)
        check_columns(request)

    monkeypatch.setattr(compare_views, "_check_posted_columns", slow_check)
    browser_login(editor)
    page.goto(f"/compare/new/?workspace={workspace.pk}")
    message = page.get_by_label("Turn 1", exact=True)
    add_column(page, first, 1)
    message.click()
    message.press_sequentially("Where is ", delay=60)

    # Each change of the columns goes out while the typing goes on: nothing typed may be lost.
    page.get_by_label("Add column").select_option(label=option_label(second))
    page.get_by_role("button", name="Add column", exact=True).click()
    message.press_sequentially("my parcel", delay=70)
    page.get_by_role("button", name="Add column", exact=True).click()  # the same version again
    company = page.get_by_label("{{company}}")
    company.press_sequentially("Acme Ltd", delay=70)
    page.get_by_role("button", name="Move column 1 (Support reply v1) down").click()
    message.press_sequentially("?", delay=70)
    page.wait_for_timeout(1500)  # longer than any request above takes

    assert chosen_columns(page) == ["Support reply v2", "Support reply v1", "Support reply v2"]
    assert message.input_value() == "Where is my parcel?"
    assert company.input_value() == "Acme Ltd"
    page.get_by_label("Title").press_sequentially("Variance check", delay=40)
    page.screenshot(path="/tmp/shots/compare-order.png", full_page=True)
    page.keyboard.press("Control+Enter")

    page.wait_for_url("**/compare/*/")
    names = [
        "Column 1: Support reply v2 (gpt-4o-mini)",
        "Column 2: Support reply v1 (gpt-4o)",
        "Column 3: Support reply v2 (gpt-4o-mini)",
    ]
    regions = page.locator(".compare-columns > [role=region]")
    assert [regions.nth(i).get_attribute("aria-label") for i in range(3)] == names
    for name in names:
        page.get_by_role("region", name=name, exact=True).locator("pre.output").wait_for(timeout=15_000)
        assert page.get_by_role("region", name=name, exact=True).locator("pre.output").inner_text() == (
            "Echo: Where is my parcel?"
        )
    page.locator("#compare-diff pre.diff").first.wait_for()

    page.get_by_role("navigation", name="Baseline column").get_by_role(
        "link", name="Column 2: Support reply v1"
    ).click()
    page.wait_for_url("**/compare/*/?baseline=2")
    page.get_by_role(
        "region",
        name="Column 1: Support reply v2 (gpt-4o-mini) against the baseline, Column 2: Support reply v1 (gpt-4o)",
    ).wait_for()
    assert page.locator(".baseline-picker a[aria-current=true]").inner_text().endswith("Support reply v1")

    page.get_by_role("button", name="Run again").click()
    page.wait_for_url("**/compare/*/?baseline=2")
    assert page.locator(".baseline-picker a[aria-current=true]").inner_text().endswith("Support reply v1")
    page.get_by_role("region", name=names[2], exact=True).locator("pre.output").wait_for(timeout=15_000)
    sent = fake_maxim.requests_to("/v1/prompts/run")
    assert len(sent) == 6
    # Sent at once, so they arrive in any order: the page above showed the columns' order.
    assert sorted(r.body["modelName"] for r in sent[:3]) == ["gpt-4o", "gpt-4o-mini", "gpt-4o-mini"]
    assert all(r.body["messages"][-1]["content"] == "Where is my parcel?" for r in sent)
    assert all(r.body["messages"][0]["content"] == "You answer for Acme Ltd." for r in sent)


def test_a_300_character_name_and_output_never_widen_the_page(
    live_server_on_file_db, page, browser_login, fake_maxim, workspace, editor
):
    long_name = "N" * 300
    versions = seed_fake(fake_maxim, workspace, ["gpt-4o", "gpt-4o-mini"], name=long_name)
    page.set_viewport_size({"width": 800, "height": 900})
    browser_login(editor)
    page.goto(f"/compare/new/?workspace={workspace.pk}&columns=v{versions[0].pk}&columns=v{versions[1].pk}")
    assert page_fits(page)
    page.get_by_label("Turn 1", exact=True).fill("W" * 300)
    page.get_by_label("{{company}}").fill("C" * 300)
    page.get_by_label("Title").fill("T" * 300)
    page.keyboard.press("Control+Enter")
    page.wait_for_url("**/compare/*/")
    page.locator("#compare-diff pre.diff").first.wait_for(timeout=15_000)
    page.screenshot(path="/tmp/shots/compare-long.png", full_page=True)
    assert page_fits(page)
    page.goto("/compare/")
    assert page_fits(page)


def open_running_comparison(page, workspace, editor, versions) -> Comparison:
    """A comparison of `versions` on one input, sent, and its page opened while Maxim answers."""
    comparison, _ = compare.create_comparison(
        workspace=workspace,
        user=editor,
        columns=[compare.ColumnSpec(v) for v in versions],
        shared_input=True,
        input={"turns": [{"role": "user", "content": "Where is my parcel?"}], "variables": {"company": "Acme"}},
    )
    compare.run_comparison(comparison, user=editor)
    page.goto(f"/compare/{comparison.pk}/")
    return comparison


def page_fits(page) -> bool:
    """No horizontal scrolling: nothing, not even overflowing text, is wider than the viewport."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_columns_are_pushed_when_stored_without_a_polling_timer(
    live_server_on_file_db, page, browser_login, fake_maxim, workspace, editor
):
    fake_maxim.run_delay = 1.5
    versions = seed_fake(fake_maxim, workspace, ["gpt-4o", "gpt-4o-mini", "gpt-4.1"])
    browser_login(editor)
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    open_running_comparison(page, workspace, editor, versions)
    assert page.locator(".compare-column.is-pending").count() == 3  # opened at once, still waiting
    page.locator(".compare-column pre.output").nth(2).wait_for(timeout=15_000)
    page.wait_for_selector("#compare-diff pre.diff")  # the diff section follows the columns
    assert page.locator(".compare-column.is-pending").count() == 0
    # One held request per change, not a request every few hundred ms per column.
    watches = [url for url in asked if "/watch/" in url]
    assert 1 <= len(watches) <= 4 and not [url for url in asked if "/columns/" in url or "/diff/" in url]


def test_the_diff_catches_up_when_a_column_is_stored_while_a_picked_baseline_is_being_drawn(
    live_server_on_file_db, page, browser_login, fake_maxim, workspace, editor
):
    """A run stored while the section for a newly picked baseline is on its way must still reach
    that section: the section is drawn before the second column is stored and delivered after.
    (The watch answers in between are for the section it replaces and must not land in it.)"""
    fake_maxim.run_delay, fake_maxim.hang_seconds = 0.3, 2.5
    versions = seed_fake(fake_maxim, workspace, ["gpt-4o", "hang"])
    browser_login(editor)
    held: list = []

    def hold_the_picked_baseline(route):
        held.append((route, route.fetch()))  # answered by the server now, delivered to the page later

    open_running_comparison(page, workspace, editor, versions)
    pending = page.get_by_text("Waiting for Maxim…")
    expect(pending).to_have_count(1, timeout=10_000)  # the first column is in, the second still running
    page.route("**/diff/**", hold_the_picked_baseline)
    page.get_by_role("navigation", name="Baseline column").get_by_role("link", name=re.compile("^Column 2")).click()
    wait_until(page, lambda: held)  # the page asks for it (slower than 300 ms on a busy CI machine)
    assert held, "the section for the picked baseline was not asked for"
    expect(pending).to_have_count(0, timeout=10_000)  # the second column is stored while it is held
    page.wait_for_timeout(300)
    held[0][0].fulfill(response=held[0][1])
    diff = page.get_by_role("region", name=re.compile("against the baseline, Column 2"))
    expect(diff.locator("pre.diff")).to_be_visible(timeout=10_000)
    page.wait_for_timeout(1_000)  # longer than any late swap
    expect(page.get_by_text("Waiting for every column to finish")).to_have_count(0)
    expect(page.get_by_role("region", name=re.compile("against the baseline")).locator("pre.diff")).to_have_count(1)
    expect(diff).to_have_count(1)


def test_a_baseline_picked_with_the_keyboard_while_columns_arrive_survives_run_again(
    live_server_on_file_db, page, browser_login, fake_maxim, workspace, editor
):
    fake_maxim.run_delay = 1.5
    versions = seed_fake(fake_maxim, workspace, ["gpt-4o", "gpt-4o-mini", "gpt-4.1"])
    browser_login(editor)
    open_running_comparison(page, workspace, editor, versions)
    expect(page.get_by_text("Waiting for Maxim…")).to_have_count(3)
    held: list = []
    page.route("**/diff/**", lambda route: held.append(route))  # the picked section is slow to come
    page.keyboard.press("b")
    page.keyboard.press("2")
    wait_until(page, lambda: held)
    assert held, "picking a baseline asks for its section"
    page.get_by_role("button", name="Run again").click()  # before the section (and its URL) is drawn
    page.wait_for_url("**/compare/*/?baseline=2")
    page.unroute("**/diff/**")
    expect(page.get_by_role("link", name=re.compile("Column 2:"))).to_have_attribute("aria-current", "true")
    expect(page.get_by_text("Waiting for Maxim…")).to_have_count(0, timeout=15_000)
    page.wait_for_timeout(1_000)
    page.get_by_role("button", name="Run again").click()  # after everything came in
    page.wait_for_url("**/compare/*/?baseline=2")
