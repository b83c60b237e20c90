"""Every main page in real Chromium under the strict Content-Security-Policy: no violation
is reported, and htmx (with eval off) and the page scripts still work."""

from __future__ import annotations

import os

import pytest
from django.urls import reverse
from django.utils import timezone

from prompts_app.models import Run
from prompts_app.services import compare
from prompts_app.services.compare import ColumnSpec
from tests.conftest import add_run, seed_fake

pytestmark = pytest.mark.browser

# Runs in every document before its own scripts: collects violations the page itself sees.
WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


@pytest.fixture
def csp_watch(page):
    console: list[str] = []
    page.on("console", lambda msg: console.append(msg.text) if msg.type in ("error", "warning") else None)
    page.context.add_init_script(WATCH)

    def check(where: str) -> None:
        page.wait_for_load_state("networkidle")
        seen = page.evaluate("window.__csp || []")
        refused = [text for text in console if "Content Security Policy" in text or "Refused to" in text]
        assert not seen and not refused, f"{where}: {seen} {refused}"

    return check


@pytest.fixture
def seeded(fake_maxim, workspace, owner):
    good, other = seed_fake(fake_maxim, workspace, ["gpt-4o", "gpt-4o-mini"])
    comparison, _ = compare.create_comparison(
        workspace=workspace,
        user=owner,
        columns=[ColumnSpec(good), ColumnSpec(other)],
        shared_input=True,
        input={"turns": [{"role": "user", "content": "Hi"}], "variables": {"company": "Acme"}},
        title="Tone check",
    )
    first, second = comparison.columns.all()
    add_run(comparison, first, 0, text="Hello from Acme")
    add_run(comparison, second, 0, text="Hi from Acme")
    run = Run.objects.create(
        workspace=workspace,
        prompt=good.prompt,
        version=good,
        user=owner,
        idempotency_key="csp-run",
        status=Run.Status.SUCCESS,
        provider="openai",
        model_name="gpt-4o",
        output_text="Echo: hi",
        prompt_tokens=5,
        completion_tokens=3,
        total_tokens=8,
        latency_ms=40.0,
        cost_nano=100,
        finished_at=timezone.now(),
    )
    return {"workspace": workspace, "version": good, "prompt": good.prompt, "comparison": comparison, "run": run}


def test_every_main_page_runs_under_the_policy_with_htmx_working(page, browser_login, csp_watch, seeded, owner):
    page.goto("/login/")
    csp_watch("login")
    browser_login(owner)
    workspace, prompt, version = seeded["workspace"], seeded["prompt"], seeded["version"]
    pages = {
        "home": reverse("home"),
        "connect": reverse("workspace_connect"),
        "settings": reverse("workspace_settings", args=[workspace.pk]),
        "prompts": reverse("prompt_list", args=[workspace.pk]),
        "prompt": reverse("prompt_detail", args=[prompt.pk]),
        "version": reverse("version_detail", args=[version.pk]),
        "builder": reverse("version_builder", args=[prompt.pk]),
        "run": reverse("run_detail", args=[seeded["run"].pk]),
        "history": reverse("run_history"),
        "costs": reverse("cost_review"),
        "compare new": reverse("comparison_new") + f"?workspace={workspace.pk}",
        "compare detail": reverse("comparison_detail", args=[seeded["comparison"].pk]),
        "audit": reverse("audit_log", args=[workspace.pk]),
    }
    os.makedirs("/tmp/shots", exist_ok=True)
    for name, url in pages.items():
        response = page.goto(url)
        assert response.status == 200, name
        assert "script-src 'self' 'nonce-" in response.headers["content-security-policy"]
        csp_watch(name)

    # htmx swaps still work with eval off: the version page's estimate loads itself (hx-trigger=load) ...
    page.goto(reverse("version_detail", args=[version.pk]))
    page.locator("#run-estimate").filter(has_text="input tokens").wait_for()
    # ... the history filters redraw the table as one types (debounced) ...
    page.goto(reverse("run_history"))
    page.evaluate("window.__samePage = true")
    page.locator("#id_q").press_sequentially("nothing like it", delay=60)
    page.wait_for_timeout(900)  # longer than the filter's 500 ms debounce
    page.wait_for_url("**q=nothing*")
    page.wait_for_load_state("networkidle")
    assert "40 ms" not in page.inner_text("main")
    assert page.evaluate("window.__samePage") is True
    csp_watch("history filter")
    # ... and an owner's invitation comes back into the members section without a reload.
    page.goto(reverse("workspace_settings", args=[workspace.pk]))
    page.evaluate("window.__samePage = true")
    page.get_by_label("Username or email").press_sequentially("mallory", delay=40)
    page.get_by_role("button", name="Invite").click()
    page.get_by_label("Invitation link").wait_for()
    assert page.evaluate("window.__samePage") is True
    assert page.get_by_role("table", name="Pending invitations").inner_text().count("mallory") == 1
    page.screenshot(path="/tmp/shots/csp-settings.png", full_page=True)
    csp_watch("invite")
    # The page script (static/js/app.js) runs: "?" opens the shortcuts list.
    page.locator("body").click(position={"x": 5, "y": 300})
    page.keyboard.press("?")
    page.get_by_role("dialog", name="Keyboard shortcuts").wait_for()
    csp_watch("shortcuts")
