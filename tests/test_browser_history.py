"""In a real browser: filter the history by model and see the totals; open the cost chart."""

from __future__ import annotations

import datetime as dt

import pytest

from prompts_app.models import PromptVersion
from tests.conftest import make_run

pytestmark = pytest.mark.browser


def test_filter_history_by_model_then_see_the_cost_chart(page, browser_login, owner, editor, version):
    mini = PromptVersion.objects.create(prompt=version.prompt, maxim_id="v-2", number=2, model_name="gpt-4o-mini")
    now = dt.datetime.now(dt.timezone.utc)
    for i in range(12):
        make_run(
            mini if i % 3 == 0 else version,
            owner if i % 2 else editor,
            created_at=now - dt.timedelta(days=i * 2),
            cost_nano=(i + 1) * 25_000_000,
            prompt_tokens=400 + i * 50,
            completion_tokens=120,
            input_text=f"Customer question {i}",
            output_text=f"Answer {i}",
        )
    make_run(version, owner, status="failed", created_at=now - dt.timedelta(hours=3), error="HTTP 500")
    for i in range(40):  # older than the cost period: they only make a second history page
        make_run(version, owner, created_at=now - dt.timedelta(days=60, minutes=i), cost_nano=1)
    browser_login(owner)

    page.goto("/runs/")
    assert page.locator("#history-table tbody tr").count() == 50
    page.screenshot(path="/tmp/shots/history_all.png")
    page.click("text=Older →")  # a boosted link: the table is swapped and the URL carries the cursor
    page.wait_for_url(lambda url: "before=" in url)
    page.wait_for_function("() => document.querySelectorAll('#history-table tbody tr').length === 3")
    assert "53 runs" in page.locator("#history-totals").inner_text()
    page.fill("#id_model", "gpt-4o-mini")
    page.press("#id_model", "Enter")
    page.wait_for_url(lambda url: "model=gpt-4o-mini" in url)  # htmx pushed the filter into the URL
    page.wait_for_function("() => document.querySelectorAll('#history-table tbody tr').length === 4")
    totals = page.locator("#history-totals").inner_text()
    assert "4 runs" in totals and "$0.55" in totals  # 25M * (1 + 4 + 7 + 10) nano-USD
    assert page.locator("#id_model").input_value() == "gpt-4o-mini"  # the form kept what was typed
    page.wait_for_selector("#history-loading", state="hidden")
    page.screenshot(path="/tmp/shots/history.png", full_page=True)

    page.fill("#id_q", "question")  # a text search: rows first, then its totals in a second request
    page.wait_for_url(lambda url: "q=question" in url)
    page.wait_for_function("() => document.querySelector('#history-totals').innerText.includes('4 runs')")

    page.click("nav.mainnav >> text=Costs")
    page.wait_for_url("**/costs/")
    chart = page.locator("svg.chart[role=img]")
    assert chart.is_visible()
    assert chart.locator("g.day").count() == 30
    assert "$1.95" in page.locator("#cost-report .cost-cards").inner_text()  # 25M * (1+...+12) = $1.95
    page.screenshot(path="/tmp/shots/costs.png", full_page=True)


def test_a_300_character_prompt_name_does_not_widen_history_or_costs(page, browser_login, owner, workspace):
    from prompts_app.models import Prompt

    name = "Unbroken" + "x" * 292
    prompt = Prompt.objects.create(workspace=workspace, maxim_id="p-long", name=name)
    long_version = PromptVersion.objects.create(prompt=prompt, maxim_id="v-long", number=1, model_name="gpt-4o")
    make_run(long_version, owner, created_at=dt.datetime.now(dt.timezone.utc), cost_nano=5)
    make_run(
        long_version,
        owner,
        status="failed",
        created_at=dt.datetime.now(dt.timezone.utc),
        cost_nano=None,
        prompt_tokens=0,
        completion_tokens=0,
        error="Maxim answered 429: rate limiting",
    )
    browser_login(owner)
    page.set_viewport_size({"width": 1024, "height": 800})
    for url in ("/runs/", "/costs/"):
        page.goto(url)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, (url, overflow)
        cut = page.locator(f'a.clip[title="{name}"]').first
        assert cut.is_visible() and cut.bounding_box()["width"] < 600  # cut short, the full name in its title
    page.goto("/runs/")
    table = page.get_by_role("table", name="Runs matching the filters")
    assert table.is_visible()
    assert "—" in table.locator("tbody tr").first.inner_text()  # the failed run reported no usage
    page.locator(f'a.clip[title="{name}"]').first.click()  # one click to the full name
    page.wait_for_url(f"**/prompts/{prompt.pk}/")
    assert name in page.content()


def test_a_searchs_totals_add_up_in_steps_to_the_whole_while_the_rows_show(
    page, browser_login, owner, version, monkeypatch
):
    from prompts_app.selectors import history

    monkeypatch.setattr(history, "TOTALS_BUDGET", 0)  # a step per FIRST_SPAN run ids: a common word at 1M runs
    monkeypatch.setattr(history, "FIRST_SPAN", 4)
    now = dt.datetime.now(dt.timezone.utc)
    for i in range(20):
        make_run(version, owner, created_at=now - dt.timedelta(minutes=i), cost_nano=(i + 1) * 10_000_000,
                 input_text=f"where is my order {i}")  # fmt: skip
    make_run(version, owner, created_at=now, cost_nano=None, input_text="my order, unpriced")
    last = make_run(version, owner, created_at=now, cost_nano=7, input_text="something else")
    # Steps go down the ids to the first: about six of them, whatever ids earlier tests used up.
    monkeypatch.setattr(history, "FIRST_SPAN", max(4, -(-last.pk // 6)))
    browser_login(owner)

    page.goto("/runs/")
    page.locator("#id_q").press_sequentially("order", delay=50)
    page.wait_for_timeout(800)  # longer than the search box's 500 ms debounce
    page.wait_for_url(lambda url: "q=order" in url)
    page.wait_for_function("() => document.querySelector('#history-totals').innerText.includes('for this filter')")
    totals = page.locator("#history-totals").inner_text()
    assert "21 runs" in totals and "$2.10" in totals and "+ 1 unpriced" in totals  # 10M * (1 + ... + 20) nano-USD
    assert page.locator("#history-table tbody tr").count() == 21
