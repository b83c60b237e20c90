"""One journey through the version builder in headless Chromium, against the fake Maxim server."""

from __future__ import annotations

import re

import pytest

from prompts_app.models import Draft, Prompt, PromptVersion

pytestmark = pytest.mark.browser


@pytest.fixture
def served_prompt(fake_maxim, make_workspace, owner, editor):
    from prompts_app.models import Role

    workspace = make_workspace(owner=owner, maxim_id="ws_default", base_url=fake_maxim.base_url,
                               members=[(editor, Role.EDITOR)])
    known = fake_maxim.add_prompt("ws_default", "Support reply")
    return Prompt.objects.create(workspace=workspace, maxim_id=known["id"], name="Support reply")


def test_editor_builds_and_creates_a_version_with_a_variable_and_a_tool(page, browser_login, editor, served_prompt, fake_maxim):
    browser_login(editor)
    page.goto(f"/prompts/{served_prompt.pk}/build/")
    page.fill("#id_m-0-text", "You are the support agent of Acme.")
    page.fill("#id_m-1-text", "Hello, my name is {{customer}}.")
    page.fill("#id_temperature", "0.3")
    # The model suggestions follow the provider.
    page.select_option("#id_provider", "anthropic")
    page.wait_for_selector("#model-suggestions option[value^='claude']", state="attached")
    page.select_option("#id_provider", "openai")
    page.wait_for_selector("#model-suggestions option[value='gpt-4o-mini']", state="attached")

    # Checking shows each problem next to its field, nothing typed is lost.
    page.click("button[value=check]")
    page.wait_for_selector("#builder-problems")
    assert "Choose a model, e.g. gpt-4o." in page.locator("#builder-settings").inner_text()
    page.screenshot(path="/tmp/shots/builder-errors.png")
    page.fill("#id_model_name", "gpt-4o-mini")

    # A structural action re-renders the form over htmx: everything typed stays.
    page.click("#add-tool")
    page.wait_for_selector("#tool-0")
    assert page.input_value("#id_m-1-text") == "Hello, my name is {{customer}}."
    assert page.input_value("#id_temperature") == "0.3"
    page.fill("#id_t-0-name", "lookup_order")
    page.fill("#id_t-0-description", "Find an order by its id")
    page.fill("#id_t-0-parameters", '{"type": "object", "properties": {"order_id": {"type": "string"}}}')

    # The autosave re-renders the status with the live variable list and stores the draft.
    page.wait_for_selector("#builder-variables code.var:has-text('customer')")
    assert Draft.objects.filter(prompt=served_prompt, user=editor).exists()
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path="/tmp/shots/builder.png")

    page.click("#create-version")
    page.wait_for_url(re.compile(r"/versions/\d+/$"))
    version = PromptVersion.objects.get(prompt=served_prompt)
    assert page.url.endswith(f"/versions/{version.pk}/")
    assert "Created version 1 on Maxim." in page.content()
    assert page.locator("#version-messages").inner_text().count("Hello, my name is {{customer}}.") == 1
    assert "lookup_order" in page.locator("#version-tools").inner_text()
    page.screenshot(path="/tmp/shots/version.png", full_page=True)

    sent = fake_maxim.requests_to("/v1/prompts/versions", "POST")
    assert len(sent) == 1
    assert sent[0].body == {
        "promptId": served_prompt.maxim_id,
        "description": "",
        "modelName": "gpt-4o-mini",
        "modelProvider": "openai",
        "messages": [{"role": "system", "content": "You are the support agent of Acme."},
                     {"role": "user", "content": "Hello, my name is {{customer}}."}],
        "modelParameters": {"temperature": 0.3, "tools": [{"type": "function", "function": {
            "name": "lookup_order", "description": "Find an order by its id",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}}}}]},
    }
    assert version.source == PromptVersion.Source.CREATED and version.number == 1
    assert version.variables() == ["customer"]
