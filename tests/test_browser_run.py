"""Journeys in real Chromium: run a version from its page (from turns or from its variables alone) and
see what will be sent, the output, tokens and cost; long text never widens the page."""

from __future__ import annotations

import os

import pytest
from django.urls import reverse

from prompts_app.models import Membership, Prompt, PromptVersion, Role, Run, Workspace

pytestmark = pytest.mark.browser


def seed(fake_maxim, make_user, *, name: str, messages: list[dict]):
    editor = make_user("edna")
    owner = make_user("otto")
    maxim_prompt = fake_maxim.add_prompt("ws_default", name)
    maxim_version = fake_maxim.add_version(
        {
            "promptId": maxim_prompt["id"],
            "modelName": "gpt-4o",
            "modelProvider": "openai",
            "messages": messages,
            "modelParameters": {"temperature": 0.2},
        }
    )
    workspace = Workspace(name="Acme", maxim_id="ws_default", base_url=fake_maxim.base_url, created_by=owner)
    workspace.set_api_key(fake_maxim.api_key)
    workspace.save()
    Membership.objects.create(workspace=workspace, user=owner, role=Role.OWNER)
    Membership.objects.create(workspace=workspace, user=editor, role=Role.EDITOR)
    prompt = Prompt.objects.create(workspace=workspace, maxim_id=maxim_prompt["id"], name=name)
    version = PromptVersion.objects.create(
        prompt=prompt,
        maxim_id=maxim_version["id"],
        number=1,
        provider="openai",
        model_name="gpt-4o",
        model_parameters={"temperature": 0.2},
        messages=messages,
    )
    return editor, version


@pytest.fixture
def seeded_version(fake_maxim, make_user):
    return seed(
        fake_maxim,
        make_user,
        name="Support reply",
        messages=[
            {"role": "system", "content": "You are a support agent for {{company}}."},
            {"role": "user", "content": "Hello, I am {{name}}."},
        ],
    )


def test_an_editor_runs_a_version_from_its_page_and_sees_output_tokens_and_cost(
    page, browser_login, fake_maxim, seeded_version
):
    editor, version = seeded_version
    fake_maxim.run_delay = 0.3  # long enough for the spinner to show
    browser_login(editor)
    page.goto(reverse("version_detail", args=[version.pk]))

    page.fill("#id_var__company", "Acme")
    page.fill("#id_turn-0-content", "Where is my order?")
    page.click("button[data-shortcut-button]")  # {{name}} left empty
    page.get_by_text("Fill in a value for {{name}}.").wait_for()
    assert page.input_value("#id_turn-0-content") == "Where is my order?"
    os.makedirs("/tmp/shots", exist_ok=True)
    page.locator("#run-panel").screenshot(path="/tmp/shots/run_errors.png")
    assert fake_maxim.requests_to("/v1/prompts/run") == []
    page.fill("#id_var__name", "Ann")
    page.click("button[value=add-turn]")  # a second turn, without losing the first
    page.wait_for_selector("#id_turn-1-content")
    assert page.input_value("#id_turn-0-content") == "Where is my order?"
    assert page.input_value("#id_var__name") == "Ann"
    assert page.input_value("#id_turn-1-role") == "assistant"  # turns alternate by default
    page.select_option("#id_turn-1-role", "user")
    page.fill("#id_turn-1-content", "It was order 17.")
    page.locator("#run-estimate").filter(has_text="input tokens").wait_for()

    page.focus("#id_turn-1-content")
    page.keyboard.press("Control+Enter")
    page.locator("#run-spinner").wait_for(state="visible")
    result = page.locator("#run-result")
    result.filter(has_text="Echo: It was order 17.").wait_for()
    assert "Succeeded" in result.inner_text()
    run = Run.objects.get()
    assert f"{run.total_tokens} tokens" in result.inner_text()
    assert "$0.0000" in result.inner_text() or "$0.000" in result.inner_text()
    assert "per 1M tokens" in result.inner_text()
    page.screenshot(path="/tmp/shots/run.png", full_page=True)

    # Running again from the same form is a new run (the key was swapped with the result).
    page.keyboard.press("Control+Enter")
    page.wait_for_selector(f"#run-result a[href^='/runs/']:not([href='/runs/{run.pk}/'])")
    assert len(fake_maxim.requests_to("/v1/prompts/run")) == 2
    assert Run.objects.count() == 2

    page.click("#run-result a[href^='/runs/']")
    page.wait_for_url("**/runs/*/")
    assert "Body sent to Maxim" in page.content()
    page.screenshot(path="/tmp/shots/run_detail.png", full_page=True)


def test_a_person_runs_a_version_from_its_variables_alone_and_sees_what_will_be_sent(
    page, browser_login, fake_maxim, make_user
):
    editor, version = seed(
        fake_maxim,
        make_user,
        name="Complaints",
        messages=[
            {"role": "system", "content": "You answer complaints politely. The complaint: {{complaint}}"},
            {"role": "user", "content": "Customer says: {{complaint}}"},
        ],
    )
    browser_login(editor)
    page.goto(reverse("version_detail", args=[version.pk]))

    complaint = page.get_by_role("textbox", name="{{complaint}}")
    complaint.click()
    page.keyboard.type("My parcel is late", delay=60)
    page.wait_for_timeout(2_000)  # longer than the preview's debounce
    preview = page.get_by_role("region", name="What will be sent")
    assert "Customer says: My parcel is late" in preview.inner_text()
    assert "The complaint: My parcel is late" in preview.inner_text()
    assert "input tokens" in preview.inner_text()

    page.keyboard.press("Control+Enter")
    result = page.get_by_role("region", name="Run result")
    result.filter(has_text="Echo: Customer says: My parcel is late").wait_for()
    run = Run.objects.get()
    text = result.inner_text()
    assert "Succeeded" in text and f"{run.total_tokens} tokens" in text and run.total_tokens > 0
    assert "per 1M tokens" in text and " ms" in text
    assert fake_maxim.requests_to("/v1/prompts/run")[0].body["messages"][1]["content"] == (
        "Customer says: My parcel is late"
    )

    # Refused: the value is wiped. The reason shows as an alert and nothing is sent.
    complaint.click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Backspace")
    page.keyboard.press("Control+Enter")
    page.get_by_role("alert").filter(has_text="Fill in {{complaint}}").wait_for()
    page.get_by_role("region", name="What will be sent").filter(has_text="Missing 1 value").wait_for()
    assert len(fake_maxim.requests_to("/v1/prompts/run")) == 1

    # Then it goes through: no error is left above the new result.
    complaint = page.get_by_role("textbox", name="{{complaint}}")
    complaint.click()
    page.keyboard.type("Wrong size", delay=60)
    page.wait_for_timeout(1_000)
    page.keyboard.press("Control+Enter")
    page.get_by_role("region", name="Run result").filter(has_text="Echo: Customer says: Wrong size").wait_for()
    # The stale field error goes once the result has settled in (app.js clears it after the swap).
    page.locator("#run-panel").get_by_text("Fill in").first.wait_for(state="detached", timeout=5_000)
    assert page.get_by_role("alert").count() == 0
    assert "Fill in" not in page.locator("#run-panel").inner_text()
    assert len(fake_maxim.requests_to("/v1/prompts/run")) == 2
    page.screenshot(path="/tmp/shots/run_variables.png", full_page=True)


def test_a_long_name_and_a_long_unbroken_output_never_widen_the_page(page, browser_login, fake_maxim, make_user):
    name = "N" * 300
    editor, version = seed(fake_maxim, make_user, name=name, messages=[{"role": "system", "content": "Repeat."}])
    browser_login(editor)
    page.goto(reverse("version_run", args=[version.pk]))
    page.get_by_role("textbox", name="Turn 1").fill("x" * 100_000)  # a paste
    page.keyboard.press("Control+Enter")
    result = page.get_by_role("region", name="Run result")
    result.filter(has_text="Succeeded").wait_for()
    width = "document.documentElement.scrollWidth <= window.innerWidth"
    assert page.evaluate(width)
    output = result.locator("pre.run-text")
    assert len(output.text_content()) == len("Echo: ") + 100_000  # all of it, in a box that scrolls
    assert output.evaluate("e => e.scrollHeight > e.clientHeight && getComputedStyle(e).overflowY === 'auto'")

    page.goto(reverse("run_detail", args=[Run.objects.get().pk]))
    assert page.evaluate(width)
    page.screenshot(path="/tmp/shots/run_long.png", full_page=False)
