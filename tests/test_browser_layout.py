"""Long text never widens a page: every page, in real Chromium, with names and text no one could wrap.

Issue 8.6: a 300-character prompt name made a page 5,752 px wide, a 100 KB description without
spaces 1,093,602 px. Each page here holds such text in every name, description, message and output
it shows, and must still fit the window (the full text stays one click or hover away).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

import pytest
from django.urls import reverse

from prompts_app.models import Comparison, ComparisonColumn, Deployment, Prompt, PromptVersion, Run
from tests.conftest import make_run

pytestmark = pytest.mark.browser

LONG_NAME = "N" * 300  # a 300-character name without a single place to break it
HUGE = "D" * 100_000  # a 100 KB description without spaces
LONG_TEXT = "M" * 2_000  # a message, an input or an output without spaces
NOW = dt.datetime.now(dt.timezone.utc)


@dataclass
class Data:
    workspace: object
    prompt: Prompt
    old: PromptVersion
    new: PromptVersion
    run: Run
    comparison: Comparison


@pytest.fixture
def long_data(make_workspace, owner, editor):
    from prompts_app.models import Role

    workspace = make_workspace(owner=owner, name="W" * 200, maxim_id="ws-" + "i" * 190, members=[(editor, Role.EDITOR)])
    prompt = Prompt.objects.create(workspace=workspace, maxim_id="p-" + "x" * 190, name=LONG_NAME, description=HUGE)
    messages = [{"role": "system", "content": LONG_TEXT + " {{company}}"}, {"role": "user", "content": LONG_TEXT}]
    common = dict(
        prompt=prompt,
        provider="openai",
        model_name="gpt-4o",
        messages=messages,
        model_parameters={"temperature": 0.2, "stop": ["S" * 400]},
    )
    old = PromptVersion.objects.create(maxim_id="v-" + "o" * 190, number=1, description=HUGE, **common)
    new = PromptVersion.objects.create(
        maxim_id="v-" + "n" * 190,
        number=2,
        description=HUGE + "X",
        **{**common, "messages": [*messages, {"role": "assistant", "content": "A" * 3000}]},
    )
    Deployment.objects.create(
        version=new,
        status="deployed",
        created_by=owner,
        conditions=[{"variable": "V" * 300, "operator": "=", "value": "Z" * 500}],
    )
    run = make_run(new, owner, created_at=NOW, input_text=LONG_TEXT, output_text=LONG_TEXT, cost_nano=12_345)
    Run.objects.filter(pk=run.pk).update(
        input={"turns": [{"role": "user", "content": LONG_TEXT}], "variables": {"company": "C" * 500}},
        output={"choices": [{"message": {"role": "assistant", "content": LONG_TEXT}}]},
    )
    make_run(new, owner, status="failed", created_at=NOW - dt.timedelta(minutes=1), error="E" * 2_000)
    comparison = Comparison.objects.create(
        workspace=workspace,
        title="T" * 300,
        created_by=owner,
        batch=1,
        input={"turns": [{"role": "user", "content": LONG_TEXT}], "variables": {}},
    )
    for position, version in enumerate([old, new]):
        column = ComparisonColumn.objects.create(comparison=comparison, position=position, version=version)
        cmp_run = make_run(version, owner, created_at=NOW, input_text=LONG_TEXT, output_text=LONG_TEXT + str(position))
        Run.objects.filter(pk=cmp_run.pk).update(comparison=comparison, column=column, batch=1, repeat=0)
    return Data(workspace, prompt, old, new, run, comparison)


def urls(d: Data) -> dict[str, str]:
    return {
        "home": reverse("home"),  # the home page is the workspaces list
        "workspace settings": reverse("workspace_settings", args=[d.workspace.pk]),
        "prompts list": reverse("prompt_list", args=[d.workspace.pk]),
        "prompt detail": reverse("prompt_detail", args=[d.prompt.pk]),
        "version detail": reverse("version_detail", args=[d.new.pk]),
        "version diff": reverse("version_diff", args=[d.prompt.pk]) + f"?a={d.old.pk}&b={d.new.pk}",
        "deploy": reverse("version_deploy", args=[d.new.pk]),
        "builder": reverse("version_builder", args=[d.prompt.pk]) + f"?from={d.new.pk}",
        "run page": reverse("run_detail", args=[d.run.pk]),
        "history": reverse("run_history"),
        "costs": reverse("cost_review"),
        "compare list": reverse("comparison_list"),
        "compare new": reverse("comparison_new")
        + f"?workspace={d.workspace.pk}&columns=v{d.old.pk}&columns=v{d.new.pk}",
        "compare detail": reverse("comparison_detail", args=[d.comparison.pk]),
    }


DESKTOP = [  # the keys of urls(), as test ids
    "home",
    "workspace settings",
    "prompts list",
    "prompt detail",
    "version detail",
    "version diff",
    "deploy",
    "builder",
    "run page",
    "history",
    "costs",
    "compare list",
    "compare new",
    "compare detail",
]
# Pages built to reflow on a phone (single column under 980 px); tables there scroll in their own box.
MOBILE = ["home", "prompts list", "prompt detail", "version detail", "run page"]


# On these pages a table's own scroll box is for phones only: at 1280 px the whole table shows.
TABLES_FIT = ["home", "prompts list", "prompt detail", "compare list", "deploy", "version detail"]
OVERFLOWING_BOXES = "[...document.querySelectorAll('.table-scroll')].filter(b => b.scrollWidth > b.clientWidth).length"


def page_width(chromium, live_server, user, url: str, width: int) -> tuple[int, int, int]:
    context = chromium.new_context(base_url=live_server.url, viewport={"width": width, "height": 900})
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        page.goto("/login/")
        page.fill("#id_username", user.get_username())
        page.fill("#id_password", "pw-" + user.get_username())
        page.click("button[type=submit]")
        page.wait_for_url(lambda u: "/login/" not in u)
        response = page.goto(url)
        assert response is not None and response.status == 200, f"{url} answered {response and response.status}"
        page.wait_for_load_state("networkidle")
        if os.environ.get("LAYOUT_SHOTS"):  # a directory to look at the pages in
            page.screenshot(path=f"{os.environ['LAYOUT_SHOTS']}/{url.strip('/').replace('/', '_')[:60]}-{width}.png")
        if os.environ.get("LAYOUT_DEBUG"):
            print(
                page.evaluate("""[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.table-scroll, .table-wrap'))
                .slice(0, 8).map(e => e.tagName + '.' + e.className + '#' + e.id + ' ' + Math.round(e.getBoundingClientRect().right))""")
            )
        return page.evaluate(f"[document.documentElement.scrollWidth, window.innerWidth, {OVERFLOWING_BOXES}]")
    finally:
        context.close()


@pytest.mark.parametrize("name", DESKTOP)
def test_long_text_does_not_widen_the_page_at_1280(name, chromium, live_server, long_data, editor):
    scroll_width, inner_width, scrolling_tables = page_width(chromium, live_server, editor, urls(long_data)[name], 1280)
    print(f"LAYOUT {name} @1280: scrollWidth={scroll_width}")
    assert scroll_width <= inner_width, f"{name} is {scroll_width} px wide in a {inner_width} px window"
    if name in TABLES_FIT:
        assert scrolling_tables == 0, f"{name}: a table is wider than the page and scrolls in its box"


@pytest.mark.parametrize("name", MOBILE)
def test_long_text_does_not_widen_the_page_on_a_phone(name, chromium, live_server, long_data, editor):
    scroll_width, inner_width, _ = page_width(chromium, live_server, editor, urls(long_data)[name], 390)
    print(f"LAYOUT {name} @390: scrollWidth={scroll_width}")
    assert scroll_width <= inner_width, f"{name} is {scroll_width} px wide in a {inner_width} px window"
